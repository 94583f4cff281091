#!/usr/bin/env bash
# Fuzzes the code that reads the wire with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# TARGETs: stream (the XMPP stream parser), typed (the typed-value decoder), protocol (protocol
# messages, the dispatch and fast-path extensions, service payloads); all three by default, each
# for SECONDS (default 60). Starts from the committed seeds in Fuzz/corpus/TARGET; what the
# fuzzer learns goes to .build/fuzz/corpus/TARGET (kept between runs), findings (the input that
# crashed or broke an invariant) to .build/fuzz/findings/. Exits 1 when there is a finding.
# The first build takes several minutes (every dependency is built with the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stream typed protocol)
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
for target in "${targets[@]}"; do
  case "$target" in stream|typed|protocol) ;; *) echo "fuzz.sh: unknown target '$target' (stream, typed, protocol)" >&2; exit 2 ;; esac
done

root=$PWD
work=$root/.build/fuzz
mkdir -p "$work/findings"
echo "== building the fuzz harness (release, -sanitize=fuzzer,address)"
# lld: gold fails on the sanitizer runtime's debug info.
if ! (cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -g -Xswiftc -use-ld=lld) > "$work/build.log" 2>&1; then
  grep -E "error" "$work/build.log" | head -20 >&2
  echo "fuzz.sh: the harness did not build (full log: $work/build.log); nothing was fuzzed" >&2
  exit 1
fi
grep -E "Build complete" "$work/build.log" || true
binary=$root/Fuzz/.build/release/vertebra-fuzz

status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target"
  log=$work/$target.log
  echo "== $target: ${seconds}s"
  if VERTEBRA_FUZZ_TARGET=$target "$binary" "$work/corpus/$target" "Fuzz/corpus/$target" \
      -dict=Fuzz/xml.dict -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/findings/$target-" > "$log" 2>&1; then
    runs=$(grep -E "stat::number_of_executed_units" "$log" | awk '{print $2}')
    cov=$(grep -E "^#[0-9]+.*cov:" "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
    echo "   $target: no findings; ${runs:-?} inputs run, coverage ${cov:-?} edges, corpus $(ls "$work/corpus/$target" | wc -l) inputs"
  else
    status=1
    echo "   $target: FINDING (log: $log)"
    grep -E "ERROR|invariant broken|Fatal error|artifact" "$log" | head -10 | sed 's/^/   /'
  fi
done
exit $status

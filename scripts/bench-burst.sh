#!/usr/bin/env bash
# bench-burst.sh [N] [RUNS]       e.g. scripts/bench-burst.sh 20000 3
#
# A burst far beyond the workers' capacity (release build): the embedded router on a free
# loopback port, two `vertebra worker` processes with --max-jobs 4 and a coordinator in the
# bench process. Every worker slot is first held by a sleep; then N echo jobs are submitted at
# once and wait, queued; the coordinator's CPU over a window with them queued is measured against
# the same window before the burst (slots held, nothing queued: the baseline); then the
# burst drains. Every job must end done. Runs RUNS times (default 3) and prints each JSON line
# and the range; raw lines go to bench-results/burst-*.jsonl.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XMPP="$ROOT/scripts/xmpp"
N=${1:-20000}
RUNS=${2:-3}
BIN="$ROOT/.build/release/vertebra"
if [ ! -x "$BIN" ]; then
  echo "bench-burst: building the release binary (swift build -c release)..." >&2
  (cd "$ROOT" && swift build -c release --product vertebra >&2) || exit 1
fi
mkdir -p "$ROOT/bench-results"
OUT="$ROOT/bench-results/burst-$(date +%Y%m%d-%H%M%S).jsonl"
dir=$(mktemp -d /tmp/vertebra-bench-burst.XXXXXX)
trap '"$XMPP/router-down.sh" "$dir" --purge >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
if ! VERTEBRA_BIN="$BIN" XMPP_PASSWORD=bench-secret XMPP_LOG_LEVEL=warning "$XMPP/router-up.sh" "$dir" 0 coordinator w1 w2 >/dev/null; then
  echo "bench-burst: the router did not start" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$dir/env"
(umask 077; echo bench-secret >"$dir/bench-password")
status=0
for run in $(seq 1 "$RUNS"); do
  echo "bench-burst: run $run of $RUNS: $N jobs, 2 workers x 4 slots..." >&2
  "$BIN" bench burst --server "127.0.0.1:$XMPP_PORT" --domain "$XMPP_DOMAIN" --password-file "$dir/bench-password" \
    --ca-file "$XMPP_CAFILE" -n "$N" | tee -a "$OUT" || status=1
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
if rows:
    def span(key, fmt):
        values = [r[key] for r in rows]
        return f"{fmt.format(min(values))} to {fmt.format(max(values))}"
    print(f"{len(rows)} runs of {rows[0]['jobs']} jobs: done {span('done', '{}')}, failed {span('failed', '{}')}; "
          f"coordinator CPU while they waited {span('waiting_cpu_share', '{:.2%}')} of one core "
          f"({span('waiting_cpu_s', '{:.3f}')} s in {rows[0]['window_s']} s; idle baseline {span('idle_cpu_s', '{:.3f}')} s, "
          f"ratio {span('waiting_vs_idle', '{:.1f}')}x); drained at {span('jobs_per_s_draining', '{:.0f}')} jobs/s; "
          f"resident {span('rss_kib_queued', '{}')} KiB with all queued")
PY
exit $status

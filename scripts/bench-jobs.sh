#!/usr/bin/env bash
# bench-jobs.sh [N] [SERVERS...]     e.g. scripts/bench-jobs.sh 5000 router prosody
#
# End-to-end no-op jobs (coordinator + two workers, journals on) through each server (default:
# router prosody), in one run: for each server starts a private instance on a free loopback port
# (accounts coordinator, w1, w2), runs `vertebra bench jobs` (release build) with N jobs per level
# at 1 and 256 in flight under durability normal and full, plus MEMORY_JOBS more jobs (default
# 100000) before measuring resident memory, and prints a table with each server's rate against
# the first server's. Raw JSON lines are kept in bench-results/jobs-*.jsonl.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XMPP="$ROOT/scripts/xmpp"
N=${1:-5000}
shift || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(router prosody)
MEMORY_JOBS=${MEMORY_JOBS:-100000}

BIN="$ROOT/.build/release/vertebra"
if [ ! -x "$BIN" ]; then
  echo "bench-jobs: building the release binary (swift build -c release)..." >&2
  (cd "$ROOT" && swift build -c release --product vertebra >&2) || exit 1
fi
mkdir -p "$ROOT/bench-results"
OUT="$ROOT/bench-results/jobs-$(date +%Y%m%d-%H%M%S).jsonl"
DIRS=()
cleanup() { local d; for d in "${DIRS[@]}"; do "$XMPP/${d%%:*}-down.sh" "${d#*:}" --purge >/dev/null 2>&1; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

for server in "${SERVERS[@]}"; do
  case $server in prosody | ejabberd | router) ;; *) echo "unknown server '$server' (router|prosody|ejabberd)" >&2; exit 2 ;; esac
  dir=$(mktemp -d "/tmp/vertebra-bench-jobs-$server.XXXXXX")
  DIRS+=("$server:$dir")
  level=warning
  [ "$server" = prosody ] && level=warn
  if ! VERTEBRA_BIN="$BIN" XMPP_PASSWORD=bench-secret XMPP_LOG_LEVEL=$level "$XMPP/$server-up.sh" "$dir" 0 coordinator w1 w2 >/dev/null; then
    echo "bench-jobs: $server did not start" >&2
    exit 1
  fi
  # shellcheck disable=SC1091
  . "$dir/env"
  echo bench-secret > "$dir/bench-password"
  echo "bench-jobs: $server on port $XMPP_PORT ($N jobs per level, then $MEMORY_JOBS for memory)..." >&2
  "$BIN" bench jobs --server "127.0.0.1:$XMPP_PORT" --domain "$XMPP_DOMAIN" --password-file "$dir/bench-password" \
    --ca-file "$XMPP_CAFILE" --label "$server" -n "$N" --memory-jobs "$MEMORY_JOBS" | tee -a "$OUT" >&2 || exit 1
  "$XMPP/$server-down.sh" "$dir" --purge >/dev/null 2>&1
done

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rates = [r for r in rows if "jobs_per_s" in r]
servers = list(dict.fromkeys(r["server"] for r in rates))
base = servers[0]
def find(server, durability, level):
    return next((r for r in rates if r["server"] == server and r["durability"] == durability and r["in_flight"] == level), None)
print(f"{'server':10} {'durability':10} {'in flight':>9} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs '+base:>12}")
for r in rates:
    b = find(base, r["durability"], r["in_flight"])
    ratio = r["jobs_per_s"] / b["jobs_per_s"] if b and b["jobs_per_s"] else 0
    print(f"{r['server']:10} {r['durability']:10} {r['in_flight']:>9} {r['jobs_per_s']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {ratio:>11.2f}x")
for m in (r for r in rows if "memory_after_jobs" in r):
    workers = ", ".join(f"{k / 1024:.1f}" for k in m["worker_kib"])
    print(f"{m['server']}: after {m['memory_after_jobs']} jobs: coordinator (+driver) {m['coordinator_and_driver_kib'] / 1024:.1f} MiB RSS, workers {workers} MiB RSS")
PY

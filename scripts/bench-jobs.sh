#!/usr/bin/env bash
# bench-jobs.sh [N] [SERVERS...]     e.g. scripts/bench-jobs.sh 5000 router prosody
#
# End-to-end no-op jobs (coordinator + two workers, journals on) through each server (default:
# router prosody), in one run: for each server starts a private instance on a free loopback port
# (accounts coordinator, w1, w2), runs `vertebra bench jobs` (release build) with N jobs per level
# at 1 and 256 in flight under durability normal and full, plus MEMORY_JOBS more jobs (default
# 100000) before measuring resident memory, and prints a table with each server's rate against
# the first server's. Raw JSON lines are kept in bench-results/jobs-*.jsonl.
#
# Then, in the same invocation, the Celery 5 + Redis baseline (scripts/bench-celery.sh, one run,
# the same N up to 5000; it installs redis-server and a Celery venv when missing), whose lines go
# to the same file, and a second table with our rates and latencies against Celery with Redis AOF
# everysec at the same in-flight level. CELERY=0 skips it. Last, scripts/bench-jobs-report.py
# prints the tables and plots jobs/s, p50 and p99 into bench-results/jobs-*.png (matplotlib in
# the same venv; PLOT=0 skips the plot).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XMPP="$ROOT/scripts/xmpp"
N=${1:-5000}
shift || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(router prosody)
MEMORY_JOBS=${MEMORY_JOBS:-100000}
CELERY=${CELERY:-1}
PLOT=${PLOT:-1}

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
  (umask 077; echo bench-secret > "$dir/bench-password")
  echo "bench-jobs: $server on port $XMPP_PORT ($N jobs per level, then $MEMORY_JOBS for memory)..." >&2
  "$BIN" bench jobs --server "127.0.0.1:$XMPP_PORT" --domain "$XMPP_DOMAIN" --password-file "$dir/bench-password" \
    --ca-file "$XMPP_CAFILE" --label "$server" -n "$N" --memory-jobs "$MEMORY_JOBS" | tee -a "$OUT" >&2 || exit 1
  "$XMPP/$server-down.sh" "$dir" --purge >/dev/null 2>&1
done

status=0
if [ "$CELERY" != 0 ]; then
  celery_n=$((N < 5000 ? N : 5000))
  echo "bench-jobs: the Celery + Redis baseline (scripts/bench-celery.sh $celery_n 1; CELERY=0 skips it)..." >&2
  if ! "$ROOT/scripts/bench-celery.sh" "$celery_n" 1 | tee -a "$OUT" >&2; then
    echo "bench-jobs: WARNING: the Celery baseline failed; the tables show ours alone" >&2
    status=1
  fi
fi

report=(python3 "$ROOT/scripts/bench-jobs-report.py" "$OUT")
if [ "$PLOT" = 0 ]; then
  report+=(--no-plot)
elif py=$("$ROOT/scripts/bench-venv.sh" 'matplotlib=matplotlib'); then
  report[0]=$py
else
  echo "bench-jobs: WARNING: no matplotlib, so no plot" >&2
fi
"${report[@]}" || status=1
echo "raw results: $OUT"
exit $status

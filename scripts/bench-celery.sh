#!/usr/bin/env bash
# bench-celery.sh [N] [RUNS]     e.g. scripts/bench-celery.sh 3000 3
#
# The Celery 5 + Redis baseline of scripts/bench-jobs.sh: the same no-op job (a task returning its
# argument), broker and result backend on a private redis-server on a free 127.0.0.1 port, late
# acks, prefetch 1, results stored, one worker (--pool solo --concurrency 1 -O fair, no gossip,
# mingle or heartbeat). Two Redis configurations in turn, each with a fresh Redis and worker:
#   celery-noaof          --appendonly no                          (durability "none")
#   celery-aof-everysec   --appendonly yes --appendfsync everysec  (durability "everysec", the
#                         match for Vertebra's `normal`)
# and for each (scripts/celery-bench/bench.py):
#   - 500 tasks one at a time, .get() each, after 50 warm-up (in_flight 1: p50/p99 latency);
#   - N tasks with at most 256 outstanding (in_flight 256, "mode":"window");
#   - N apply_async calls, then every result (in_flight N, "mode":"submit-all").
# N defaults to 3000, RUNS (repeats of all of it) to 3. Prints one JSON line per measurement on
# stdout, e.g. {"server":"celery-noaof","durability":"none","in_flight":1,"jobs":500,
# "jobs_per_s":...,"p50_ms":...,"p99_ms":...,"cpu_ms_per_job":...,"mode":"sequential","run":1}
# (cpu_ms_per_job: the worker, Redis and the client together); progress on stderr.
#
# Installs what is missing: Debian's redis-server (apt-get; sudo when not root) and a venv at
# ${CELERY_VENV:-$HOME/.cache/vertebra-bench/celery-venv} (first python3 on PATH) with
# celery[redis] (scripts/bench-venv.sh). Stops everything it started, removes its temp dirs.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APP="$ROOT/scripts/celery-bench"

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
case ${1:-} in -h | --help) usage; exit 0 ;; esac
N=${1:-3000}
RUNS=${2:-3}
for value in "$N" "$RUNS"; do
  [[ $value =~ ^[1-9][0-9]*$ ]] || { echo "bench-celery: N and RUNS must be positive integers (got '$value'); see --help" >&2; exit 2; }
done

# --- redis-server (Debian) --------------------------------------------------------------------
install_redis() {
  local sudo="" as=""
  [ "$(id -u)" -eq 0 ] || { sudo=sudo; as="sudo "; }
  if ! command -v apt-get >/dev/null; then
    echo "bench-celery: redis-server is not on PATH; install Redis (5 or later) with your package manager" >&2
    return 1
  fi
  echo "bench-celery: installing redis-server (apt-get install -y redis-server)..." >&2
  local log
  log=$(mktemp) || return 1
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "bench-celery: apt-get failed; install it by hand: ${as}apt-get update && ${as}apt-get install -y redis-server" >&2
    return 1
  fi
  rm -f "$log"
  # Where package scripts may start services, the install just started a system Redis on
  # 127.0.0.1:6379; this benchmark never uses it (like scripts/install-deps.sh with XMPP daemons).
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    if systemctl is-active --quiet redis-server.service || systemctl is-enabled --quiet redis-server.service 2>/dev/null; then
      echo "bench-celery: stopping and disabling the system redis-server the install started (re-enable: systemctl enable --now redis-server)" >&2
      $sudo systemctl disable --now --quiet redis-server.service || echo "bench-celery: WARNING: could not stop it" >&2
    fi
  elif pgrep -u redis -x redis-server >/dev/null 2>&1; then
    echo "bench-celery: stopping the system redis-server the install started (/etc/init.d/redis-server stop)" >&2
    $sudo /etc/init.d/redis-server stop >/dev/null 2>&1 || echo "bench-celery: WARNING: could not stop it" >&2
  fi
  command -v redis-server >/dev/null
}
command -v redis-server >/dev/null || install_redis || exit 1

# --- Celery in the private venv -----------------------------------------------------------------
# celery[redis], not `celery redis`: kombu's Redis transport also imports `packaging`.
PY=$("$ROOT/scripts/bench-venv.sh" 'celery,redis,packaging,kombu.transport.redis=celery[redis]>=5,<6') || exit 1
CELERY="$(dirname "$PY")/celery"
echo "bench-celery: $(redis-server --version | cut -d' ' -f1-3), celery $("$CELERY" --version 2>/dev/null | cut -d' ' -f1), $("$PY" --version)" >&2

# --- processes, cleanup -------------------------------------------------------------------------
PIDS=()
DIRS=()
stop_pid() { # PID: TERM, up to 10 s, then KILL
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
cleanup() {
  local pid dir
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  for dir in "${DIRS[@]}"; do rm -rf "$dir"; done
  PIDS=()
  DIRS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# measure LABEL DURABILITY RUN REDIS-ARGS...: a fresh Redis and worker, bench.py, both stopped
measure() {
  local label=$1 durability=$2 run=$3 dir port redis_pid worker_pid i status=0
  shift 3
  dir=$(mktemp -d "/tmp/vertebra-bench-celery.XXXXXX") || return 1
  DIRS+=("$dir")
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  (cd "$dir" && exec redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --daemonize no \
    --logfile "$dir/redis.log" "$@") </dev/null &
  redis_pid=$!
  PIDS+=("$redis_pid")
  for ((i = 0; i < 100; i++)); do
    "$PY" -c 'import redis, sys; redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=1).ping()' "$port" 2>/dev/null && break
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ((i == 100)) || ! kill -0 "$redis_pid" 2>/dev/null; then
    echo "bench-celery: redis-server did not start on 127.0.0.1:$port; its log:" >&2
    tail -n 20 "$dir/redis.log" >&2
    return 1
  fi
  export CELERY_BENCH_REDIS_URL="redis://127.0.0.1:$port/0"
  (cd "$APP" && PYTHONPATH="$APP" PYTHONDONTWRITEBYTECODE=1 exec "$CELERY" -A tasks worker --pool solo --concurrency 1 \
    --without-gossip --without-mingle --without-heartbeat -O fair -l warning) </dev/null >"$dir/worker.log" 2>&1 &
  worker_pid=$!
  PIDS+=("$worker_pid")
  echo "bench-celery: run $run/$RUNS, $label (redis $*, 127.0.0.1:$port): 500 one at a time, $N at 256 in flight, $N submitted at once..." >&2
  if ! (cd "$APP" && PYTHONPATH="$APP" PYTHONDONTWRITEBYTECODE=1 exec "$PY" bench.py --label "$label" --durability "$durability" \
    --run "$run" -n "$N" --pids "$worker_pid,$redis_pid"); then
    echo "bench-celery: $label failed; the worker's log:" >&2
    tail -n 30 "$dir/worker.log" >&2
    status=1
  fi
  stop_pid "$worker_pid"
  stop_pid "$redis_pid"
  PIDS=()
  rm -rf "$dir"
  DIRS=()
  return $status
}

status=0
for ((run = 1; run <= RUNS; run++)); do
  measure celery-noaof none "$run" --appendonly no || status=1
  measure celery-aof-everysec everysec "$run" --appendonly yes --appendfsync everysec || status=1
done
exit $status

#!/usr/bin/env python3
"""The client side of scripts/bench-celery.sh: no-op Celery tasks against a running worker.

Usage: bench.py --label L --durability D --run R -n N --pids WORKER,REDIS
Prints one JSON line per measurement, shaped like `vertebra bench jobs`:
  - in_flight 1 ("sequential"): LATENCY_JOBS tasks (after WARMUP), one at a time, .get() each;
  - in_flight WINDOW ("window"): N tasks, at most WINDOW outstanding (like the Swift bench);
  - in_flight N ("submit-all"): N apply_async calls, then every result.
A task's latency runs from just before apply_async to the return of its .get(); results are
awaited in submission order (the solo worker runs them in that order too).
cpu_ms_per_job: CPU of the worker, Redis and this client over the measurement, per task.
"""
import argparse
import json
import os
import sys
import time
from collections import deque

from celery.exceptions import TimeoutError as ResultTimeout
from tasks import echo

TIMEOUT = 120.0  # seconds for any one result
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU of the given processes (with reaped children) and of this one."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
    own = os.times()
    return total + own.user + own.system + own.children_user + own.children_system


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_ready(worker_pid, seconds=60.0):
    """A first round trip: the worker is consuming and results come back."""
    result = echo.apply_async(("ready",))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker_pid is not None and not alive(worker_pid):
            sys.exit("bench.py: the celery worker exited before answering (see its log)")
        try:
            return result.get(timeout=1.0)
        except ResultTimeout:
            pass
    sys.exit(f"bench.py: no answer from the celery worker within {seconds:.0f} s")


def sequential(count):
    latencies = []
    for _ in range(count):
        begin = time.perf_counter()
        echo.apply_async(("x",)).get(timeout=TIMEOUT)
        latencies.append(time.perf_counter() - begin)
    return latencies


def windowed(count, width):
    pending = deque()
    latencies = []

    def finish_oldest():
        begin, result = pending.popleft()
        result.get(timeout=TIMEOUT)
        latencies.append(time.perf_counter() - begin)

    for _ in range(count):
        if len(pending) >= width:
            finish_oldest()
        pending.append((time.perf_counter(), echo.apply_async(("x",))))
    while pending:
        finish_oldest()
    return latencies


def submit_all(count):
    return windowed(count, count)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True)
    parser.add_argument("--durability", required=True)
    parser.add_argument("--run", type=int, default=1)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--latency-jobs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--pids", default="", help="worker,redis: whose CPU counts (besides this client)")
    args = parser.parse_args()
    pids = [int(p) for p in args.pids.split(",") if p]

    wait_ready(pids[0] if pids else None)
    sequential(args.warmup)

    def measure(mode, in_flight, run):
        cpu, begin = cpu_seconds(pids), time.perf_counter()
        latencies = run()
        wall, cpu = time.perf_counter() - begin, cpu_seconds(pids) - cpu
        ordered = sorted(latencies)

        def percentile(p):
            return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0.0

        row = {"server": args.label, "durability": args.durability, "in_flight": in_flight, "jobs": len(latencies),
               "jobs_per_s": round(len(latencies) / max(wall, 1e-9)), "p50_ms": round(percentile(0.5), 2),
               "p99_ms": round(percentile(0.99), 2), "cpu_ms_per_job": round(cpu * 1000 / max(len(latencies), 1), 3),
               "mode": mode, "run": args.run}
        print(json.dumps(row, separators=(",", ":")), flush=True)

    measure("sequential", 1, lambda: sequential(args.latency_jobs))
    measure("window", args.window, lambda: windowed(args.n, args.window))
    measure("submit-all", args.n, lambda: submit_all(args.n))


if __name__ == "__main__":
    main()

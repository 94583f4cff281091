#!/usr/bin/env python3
"""latency-breakdown.py DIR [--levels]

Reads the stage marks that a build with docs/profiling/latency-probes.patch writes to DIR (one
file per process, `<CLOCK_MONOTONIC ns> <stage>` per line) during `vertebra bench jobs`, and
prints, for jobs run one at a time, the median time between consecutive stages across the
processes (coordinator + bench driver, worker; the router between `tx` and `rx`), and per
process how busy its journal was and what its commits cost.
"""
import collections
import glob
import os
import statistics
import sys

STAGES = {
    "b.start": "bench: dispatch() called", "c.begin": "coordinator: job prepared",
    "c.run": "coordinator: job task runs", "j.w": "journal: awaited write queued",
    "j.c0": "journal: commit starts", "j.begun": "journal: BEGIN done",
    "j.applied": "journal: records applied (SQL)", "j.c1": "journal: COMMIT done",
    "c.open": "coordinator: attempt journalled", "c.inbox": "coordinator: mailbox open",
    "c.sendop": "coordinator: op goes out", "x.saw": "client: sendAndWait on the loop",
    "tx": "client: bytes written", "rx": "client: stanza parsed",
    "iq.task": "client: request task runs", "w.recv": "worker: op received",
    "w.arr": "worker: checks done", "w.acc": "worker: op journalled",
    "w.wait": "worker: handler started, waiting", "w.out": "worker: handler ended",
    "w.inl": "worker: end journalled", "c.ans": "coordinator: answer back",
    "c.lazy": "coordinator: queued its records", "c.close0": "coordinator: attempt over",
    "c.close1": "coordinator: mailbox closed", "c.end": "coordinator: job ends",
    "b.done": "bench: dispatch() returned",
}


def read(directory):
    events = []
    for path in glob.glob(os.path.join(directory, "*.txt")):
        pid = os.path.basename(path).split(".")[0]
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit():
                    events.append((int(parts[0]), pid, parts[1]))
    events.sort()
    return events


def one_at_a_time(events):
    pids = sorted({e[1] for e in events})
    tag = {pid: f"P{index}" for index, pid in enumerate(pids)}
    jobs, current = [], None
    for event in events:
        if event[2] == "b.start":
            current = [event]
        elif current is not None:
            current.append(event)
            if event[2] == "b.done":
                jobs.append(current)
                current = None
    jobs = jobs[300:]  # warm-up
    if not jobs:
        print("no complete jobs: run the bench with --in-flight 1 and VERTEBRA_PROBE set")
        return
    shapes = collections.Counter(tuple(f"{tag[e[1]]}:{e[2]}" for e in job) for job in jobs)
    shape, count = shapes.most_common(1)[0]
    chosen = [job for job in jobs if tuple(f"{tag[e[1]]}:{e[2]}" for e in job) == shape]
    print(f"{len(jobs)} jobs one at a time; {count} of them took the most common path (shown); P0 = the bench process")
    print(f"{'from':>12} -> {'to':<12} {'p50 us':>8}  to stage")
    for index in range(1, len(shape)):
        gaps = [(job[index][0] - job[index - 1][0]) / 1000 for job in chosen]
        stage = shape[index].split(":", 1)[1]
        print(f"{shape[index - 1]:>12} -> {shape[index]:<12} {statistics.median(gaps):8.1f}  {STAGES.get(stage, '')}")
    totals = [(job[-1][0] - job[0][0]) / 1000 for job in chosen]
    print(f"{'':>12}    {'total':<12} {statistics.median(totals):8.1f}")
    slowest(shape, chosen, totals)


def slowest(shape, chosen, totals):
    """Where the slowest 1 % of those jobs lost their time: per stage, how far above its median
    the slow jobs' gap was on average, largest first."""
    if len(chosen) < 100:
        return
    cut = sorted(totals)[int(len(totals) * 0.99)]
    slow = [job for job, total in zip(chosen, totals) if total >= cut]
    excess = []
    for index in range(1, len(shape)):
        gaps = [(job[index][0] - job[index - 1][0]) / 1000 for job in chosen]
        median = statistics.median(gaps)
        slow_mean = statistics.mean((job[index][0] - job[index - 1][0]) / 1000 for job in slow)
        excess.append((slow_mean - median, shape[index - 1], shape[index]))
    print(f"\nthe slowest 1 % ({len(slow)} jobs, total >= {cut:.0f} us): stages furthest above their median")
    for extra, before, after in sorted(excess, reverse=True)[:6]:
        stage = after.split(":", 1)[1]
        print(f"{before:>12} -> {after:<12} {extra:+8.1f}  {STAGES.get(stage, '')}")


def journal_load(events):
    by_process = collections.defaultdict(list)
    for event in events:
        by_process[event[1]].append(event)
    print("\nper process: share of wall time its journal spent committing; per commit: SQL and COMMIT")
    for pid, marks in sorted(by_process.items()):
        span = (marks[-1][0] - marks[0][0]) / 1e9 or 1
        started = begun = applied = None
        busy = sql = commit = commits = 0
        for time, _, stage in marks:
            if stage == "j.c0":
                started = time
            elif stage == "j.begun":
                begun = time
            elif stage == "j.applied" and begun:
                applied, sql = time, sql + time - begun
            elif stage == "j.c1" and started:
                busy += time - started
                commit += time - (applied or time)
                commits += 1
        if commits:
            print(f"  pid {pid}: journal busy {busy / 1e9 / span * 100:.0f}% of {span:.1f} s, {commits} commits, "
                  f"SQL {sql / commits / 1e3:.0f} us and COMMIT {commit / commits / 1e3:.0f} us per commit")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    marks = read(sys.argv[1])
    one_at_a_time(marks)
    journal_load(marks)

#!/usr/bin/env python3
"""Tables and a plot from the JSON lines of scripts/bench-jobs.sh (and scripts/bench-celery.sh).

Usage: bench-jobs-report.py RESULTS.jsonl [--no-plot]

Prints our rows with each server's rate against the first server's, the memory lines, and, when
the file has Celery rows (server celery-*), our rows against Celery with Redis AOF everysec at
the same in-flight level. Unless --no-plot, draws jobs/s, p50 and p99 per in-flight level, ours
(per server and durability) beside Celery, into RESULTS.png; without matplotlib (or when drawing
fails) it prints a warning and the tables still stand.
"""
import json
import sys
from pathlib import Path

CELERY_MATCH = "celery-aof-everysec"  # the fair match for our `normal` durability


def is_celery(row):
    return row["server"].startswith("celery")


def median_row(rows):
    """One row per (server, durability, in_flight): with several runs, the median by jobs/s."""
    ordered = sorted(rows, key=lambda r: r["jobs_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def grouped(rows):
    keys = list(dict.fromkeys((r["server"], r["durability"], r["in_flight"]) for r in rows))
    return {key: median_row([r for r in rows if (r["server"], r["durability"], r["in_flight"]) == key]) for key in keys}


def ours_table(ours, memory):
    servers = list(dict.fromkeys(r["server"] for r in ours))
    base = servers[0]
    keyed = grouped(ours)
    print(f"{'server':10} {'durability':10} {'in flight':>9} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs ' + base:>12}")
    for r in ours:
        b = keyed.get((base, r["durability"], r["in_flight"]))
        ratio = r["jobs_per_s"] / b["jobs_per_s"] if b and b["jobs_per_s"] else 0
        print(f"{r['server']:10} {r['durability']:10} {r['in_flight']:>9} {r['jobs_per_s']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {ratio:>11.2f}x")
    counted = [r for r in ours if "stanzas_per_job" in r]
    if counted:
        print()
        print("per job: wire stanzas (IQ sets and results); the coordinator's and the two workers' journal commits, awaited")
        print("and queued writes and records, and KiB written (files and sockets, /proc/PID/io); CPU ms and context switches")
        print("across the bench process (coordinator + driver) and the workers")
        print(f"{'server':10} {'durability':10} {'in flight':>9} {'stanzas':>8} {'side':>12} {'commits':>8} {'awaited':>8} {'queued':>8} {'records':>8} {'KiB out':>8} {'CPU ms':>8} {'switches':>9}")
        for r in counted:
            sides = [("coordinator", "coordinator")] + ([("workers", "worker")] if "worker_commits_per_job" in r else [])
            for index, (side, key) in enumerate(sides):
                head = (f"{r['server']:10} {r['durability']:10} {r['in_flight']:>9} {r['stanzas_per_job']:>8.1f}" if index == 0
                        else f"{'':10} {'':10} {'':>9} {'':>8}")
                tail = (f" {r['cpu_ms_per_job']:>8.3f} {r.get('context_switches_per_job', 0):>9.1f}" if index == 0 else "")
                written = r.get(key + "_written_kib_per_job")
                written = f"{written:>8.1f}" if written is not None else f"{'-':>8}"
                print(f"{head} {side:>12} {r[key + '_commits_per_job']:>8.2f} {r[key + '_awaited_writes_per_job']:>8.2f} "
                      f"{r[key + '_lazy_writes_per_job']:>8.2f} {r[key + '_records_per_job']:>8.2f} {written}{tail}")
    for m in memory:
        workers = ", ".join(f"{k / 1024:.1f}" for k in m["worker_kib"])
        print(f"{m['server']}: after {m['memory_after_jobs']} jobs: coordinator (+driver) {m['coordinator_and_driver_kib'] / 1024:.1f} MiB RSS, workers {workers} MiB RSS")
        if "half_way_after_jobs" in m:
            grown = ", ".join(f"{(k - h) / 1024:+.1f}" for k, h in zip(m["worker_kib"], m["worker_kib_half_way"]))
            print(f"{'':{len(m['server'])}}  growth since {m['half_way_after_jobs']} jobs: coordinator (+driver) "
                  f"{(m['coordinator_and_driver_kib'] - m['coordinator_and_driver_kib_half_way']) / 1024:+.1f} MiB, workers {grown} MiB")


def celery_table(ours, celery):
    keyed = grouped(celery)
    runs = len({r.get("run", 1) for r in celery})
    print()
    print(f"Celery 5 + Redis (one solo worker, late acks, prefetch 1; {'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'}):")
    print(f"{'server':20} {'durability':10} {'in flight':>9} {'mode':>10} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/job':>10}")
    for (server, durability, level), r in keyed.items():
        cpu = f"{r['cpu_ms_per_job']:>10.2f}" if "cpu_ms_per_job" in r else f"{'-':>10}"
        print(f"{server:20} {durability:10} {level:>9} {r.get('mode', ''):>10} {r['jobs_per_s']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {cpu}")
    print()
    print(f"Ours against {CELERY_MATCH} at the same in-flight level:")
    print(f"{'server':10} {'durability':10} {'in flight':>9} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'vs celery jobs/s':>16} {'p50 vs celery':>13} {'p99 vs celery':>13}")
    for r in ours:
        c = keyed.get((CELERY_MATCH, "everysec", r["in_flight"]))
        head = f"{r['server']:10} {r['durability']:10} {r['in_flight']:>9} {r['jobs_per_s']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} | "
        if c is None:
            print(head + "(no Celery row at this level)")
            continue

        def ratio(ours_value, celery_value):
            return f"{ours_value / celery_value:.2f}x" if celery_value else "-"

        print(head + f"{ratio(r['jobs_per_s'], c['jobs_per_s']):>16} {ratio(r['p50_ms'], c['p50_ms']):>13} {ratio(r['p99_ms'], c['p99_ms']):>13}")
    print("vs celery jobs/s = ours / Celery (above 1: we are faster); p50/p99 vs celery = ours / Celery "
          "(below 1: our latency is lower). `full` fsyncs each commit; Celery's everysec does not.")


def plot(ours, celery, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"warning: no matplotlib in {sys.executable}; no plot (scripts/bench-venv.sh 'matplotlib=matplotlib' installs it)", file=sys.stderr)
        return
    try:
        levels = sorted({r["in_flight"] for r in ours} or {r["in_flight"] for r in celery if r.get("mode") != "submit-all"})
        rows = grouped(ours) | grouped([r for r in celery if r.get("mode") != "submit-all"])
        series = list(dict.fromkeys((server, durability) for server, durability, _ in rows))
        # a colour map per system (Celery: oranges), a shade per durability
        maps = [plt.cm.Blues, plt.cm.Greens, plt.cm.Purples, plt.cm.Greys]
        systems = list(dict.fromkeys("celery" if server.startswith("celery") else server for server, _ in series))
        ours_maps = {system: maps[i % len(maps)] for i, system in enumerate(s for s in systems if s != "celery")}
        colors, shades = {}, {}
        for server, durability in series:
            system = "celery" if server.startswith("celery") else server
            shade = [0.85, 0.55, 0.35][min(shades.setdefault(system, 0), 2)]
            shades[system] += 1
            colors[(server, durability)] = (plt.cm.Oranges if system == "celery" else ours_maps[system])(shade)
        figure, axes = plt.subplots(1, 3, figsize=(16, 5.5))
        width = 0.8 / max(len(series), 1)
        for axis, field, title in zip(axes, ("jobs_per_s", "p50_ms", "p99_ms"), ("jobs/s (higher is better)", "p50 latency, ms (lower is better)", "p99 latency, ms (lower is better)")):
            for i, (server, durability) in enumerate(series):
                xs, values = [], []
                for x, level in enumerate(levels):
                    row = rows.get((server, durability, level))
                    if row is not None:
                        xs.append(x + (i - (len(series) - 1) / 2) * width)
                        values.append(row[field])
                bars = axis.bar(xs, values, width, label=f"{server} / {durability}", color=colors[(server, durability)])
                axis.bar_label(bars, fmt="%.0f" if field == "jobs_per_s" else "%.3g", fontsize=7, rotation=90, padding=2)
            axis.set_xticks(range(len(levels)), [str(level) for level in levels])
            axis.set_xlabel("jobs in flight")
            axis.set_title(title)
            if field != "jobs_per_s":
                axis.set_yscale("log")
            axis.margins(y=0.2)
        axes[0].legend(fontsize=8)
        figure.suptitle(f"No-op jobs: Vertebra vs Celery 5 + Redis ({Path(path).stem})")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        print(f"plot: {path}")
    except Exception as error:  # a plot is a nicety: never fail the benchmark over it
        print(f"warning: could not draw {path}: {error}", file=sys.stderr)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--no-plot",) for a in sys.argv[1:] if a.startswith("--")):
        print(__doc__, file=sys.stderr)
        return 2
    results = Path(args[0])
    rows = [json.loads(line) for line in results.open() if line.strip().startswith("{")]
    rates = [r for r in rows if "jobs_per_s" in r]
    ours = [r for r in rates if not is_celery(r)]
    celery = [r for r in rates if is_celery(r)]
    if ours:
        ours_table(ours, [r for r in rows if "memory_after_jobs" in r])
    if celery:
        celery_table(ours, celery)
    if "--no-plot" not in sys.argv[1:] and rates:
        plot(ours, celery, results.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

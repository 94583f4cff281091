#!/usr/bin/env python3
"""Prints Natter beside slixmpp from the JSON lines of scripts/bench-iq.sh.
Usage: bench-iq-summary.py RESULTS.jsonl"""
import json
import sys


def main() -> int:
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
    keyed = {(r["server"], r["tls"], r["concurrency"], r["client"]): r for r in rows}
    print(f"{'server':9} {'tls':8} {'in flight':>9} | {'natter IQ/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'slixmpp IQ/s':>12} {'p50 ms':>7} {'p99 ms':>7} | {'throughput':>10} {'p99':>6}")
    for (server, tls, level, client), natter in sorted(keyed.items()):
        if client != "natter":
            continue
        slix = keyed.get((server, tls, level, "slixmpp"))
        if slix is None:
            print(f"{server:9} {tls:8} {level:>9} | {natter['iq_per_s']:>11.0f} (no slixmpp result)")
            continue
        speed = natter["iq_per_s"] / max(slix["iq_per_s"], 1e-9)
        tail = slix["p99_ms"] / max(natter["p99_ms"], 1e-9)
        print(f"{server:9} {tls:8} {level:>9} | {natter['iq_per_s']:>11.0f} {natter['p50_ms']:>7.2f} {natter['p99_ms']:>7.2f} | "
              f"{slix['iq_per_s']:>12.0f} {slix['p50_ms']:>7.2f} {slix['p99_ms']:>7.2f} | {speed:>9.2f}x {tail:>5.2f}x")
    print("throughput = natter IQ/s / slixmpp IQ/s; p99 = slixmpp p99 / natter p99 (above 1: natter's tail is lower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Adds up the XCTest and Swift Testing xunit reports of the `swift test` passes of one run.

Prints the failed tests, then "N passed, N failed" as the last line ("N passed, N failed,
N skipped" when any test was skipped). A skipped test is not a pass. A pass that listed its
tests beforehand (PASS.list, from `swift test list`) but reported fewer (it crashed, hung or
was stopped before writing its report) counts the missing ones as failed. Exits non-zero when
anything failed, when swift test itself failed, or when no test ran.
Usage: test-summary.py RESULTS_DIR SWIFT_TEST_EXIT_STATUS
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def read_reports(paths):
    """(passed names, failed names, skipped names) of the xunit files `paths`."""
    passed, failed, skipped = [], [], []
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as error:
            failed.append(f"{os.path.basename(path)} (unreadable report: {error})")
            continue
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '')}.{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(name)
            elif case.find("skipped") is not None:
                skipped.append(name)
            else:
                passed.append(name)
    return passed, failed, skipped


def listed_tests(path):
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle.read().splitlines() if line.strip()]


def main() -> int:
    results, status = sys.argv[1], int(sys.argv[2])
    passed, failed, skipped = 0, [], 0
    reports = sorted(glob.glob(os.path.join(results, "*.xml")))
    passes = {os.path.basename(p)[: -len(".list")] for p in glob.glob(os.path.join(results, "*.list"))}
    passes |= {os.path.basename(p).split(".xml")[0].removesuffix("-swift-testing") for p in reports}
    for name in sorted(passes):
        mine = [p for p in reports if os.path.basename(p) in (f"{name}.xml", f"{name}-swift-testing.xml")]
        ok, bad, skip = read_reports(mine)
        passed += len(ok)
        failed += bad
        skipped += len(skip)
        listing = os.path.join(results, f"{name}.list")
        if os.path.exists(listing):
            missing = len(listed_tests(listing)) - (len(ok) + len(bad) + len(skip))
            if missing > 0:
                failed += [f"{name}: {missing} listed tests wrote no result (crash, hang or timeout; see {results}/log.txt)"]
                # count each missing test, not one line
                failed += [None] * (missing - 1)
    for name in failed:
        if name is not None:
            print(f"FAILED: {name}")
    if status != 0 and not failed:
        print(f"swift test exited with status {status} (build failure or crash?); see {results}/log.txt")
        failed.append("swift test")
    if passed + len(failed) + skipped == 0:
        print("no test ran")
        failed.append("no tests")
    line = f"{passed} passed, {len(failed)} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

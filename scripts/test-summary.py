#!/usr/bin/env python3
"""Adds up the XCTest and Swift Testing xunit reports of one `swift test` run.

Prints the failed tests, then "N passed, N failed" as the last line; exits non-zero when
anything failed, when swift test itself failed, or when no test ran.
Usage: test-summary.py RESULTS_DIR SWIFT_TEST_EXIT_STATUS
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    results, status = sys.argv[1], int(sys.argv[2])
    passed, failed = 0, []
    for path in sorted(glob.glob(os.path.join(results, "*.xml"))):
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}.{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(name)
            else:
                passed += 1
    for name in failed:
        print(f"FAILED: {name}")
    if status != 0 and not failed:
        print(f"swift test exited with status {status} (build failure or crash?); see {results}/log.txt")
        failed.append("swift test")
    if passed + len(failed) == 0:
        print("no test ran")
        failed.append("no tests")
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

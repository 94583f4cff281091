#!/usr/bin/env bash
# Runs the whole test suite (swift test) and ends with the line "N passed, N failed".
# Extra arguments go to swift test, e.g. scripts/test.sh --filter StreamParserTests
set -uo pipefail
cd "$(dirname "$0")/.."

results=.build/test-results
rm -rf "$results"
mkdir -p "$results"
# A hung test must not hold CI for its whole 90 minutes: give up after 45.
timeout --signal=TERM --kill-after=30s 45m swift test --xunit-output "$results/xunit.xml" "$@" 2>&1 | tee "$results/log.txt"
status=${PIPESTATUS[0]}
[ "$status" -eq 124 ] && echo "test.sh: swift test ran over 45 minutes and was stopped"
python3 scripts/test-summary.py "$results" "$status"

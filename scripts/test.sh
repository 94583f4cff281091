#!/usr/bin/env bash
# Runs the whole test suite (swift test) and ends with the line "N passed, N failed".
# Extra arguments go to swift test, e.g. scripts/test.sh --filter StreamParserTests
set -uo pipefail
cd "$(dirname "$0")/.."

results=.build/test-results
rm -rf "$results"
mkdir -p "$results"
swift test --xunit-output "$results/xunit.xml" "$@" 2>&1 | tee "$results/log.txt"
status=${PIPESTATUS[0]}
python3 scripts/test-summary.py "$results" "$status"

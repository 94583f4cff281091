#!/bin/sh
# Builds the ceiling program and measures the raw-SQLite limit next to `vertebra bench journal`.
set -e
cd "$(dirname "$0")"
python3 - <<'PY'
import re
src = open('../../Sources/VertebraJournal/Schema/Schema.swift').read()
open('schema.sql', 'w').write("\n".join(re.findall(r'static let version\d = """\n(.*?)"""', src, re.S)))
PY
cc -O2 -o ceiling ceiling.c -lsqlite3 -lpthread
db="${TMPDIR:-/tmp}/journal-ceiling.sqlite"
for sync in FULL NORMAL; do
  for batch in 1 115 256; do ./ceiling "$db" $sync $batch 256 4; done
done
./ceiling "$db" NORMAL 256 256 4 4096 0
rm -f "$db" "$db-wal" "$db-shm"

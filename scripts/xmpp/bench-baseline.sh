#!/usr/bin/env bash
# bench-baseline.sh [N] [SERVERS...]      e.g. bench-baseline.sh 2000 prosody ejabberd
#
# The slixmpp baseline: for each server (default: prosody ejabberd), starts a private instance on
# a free loopback port (users bench-a, bench-b), runs slixmpp_iq_bench.py with N IQs per level
# (default 2000; levels 1 and 64) over a plaintext stream and over STARTTLS (certificate verified),
# then stops the server. Prints the JSON lines of slixmpp_iq_bench.py on stdout (one per server,
# TLS mode and concurrency level); progress on stderr. Takes ~10 s (Prosody) + ~20 s (ejabberd)
# for N=2000 on a quiet 2-core box. Exit status: non-zero if any run failed.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${1:-2000}
shift || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(prosody ejabberd)
DIRS=()
cleanup() { local d; for d in "${DIRS[@]}"; do "$HERE/${d%%:*}-down.sh" "${d#*:}" --purge >/dev/null 2>&1; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
for server in "${SERVERS[@]}"; do
  case $server in prosody | ejabberd) ;; *) echo "unknown server '$server' (prosody|ejabberd)" >&2; exit 2 ;; esac
  dir=$(mktemp -d "/tmp/xmpp-bench-$server.XXXXXX")
  DIRS+=("$server:$dir")
  if ! "$HERE/$server-up.sh" "$dir" 0 bench-a bench-b >/dev/null; then
    echo "bench-baseline: $server did not start" >&2
    status=1
    continue
  fi
  for tls in none starttls; do
    python3 "$HERE/slixmpp_iq_bench.py" --env "$dir/env" --tls "$tls" -n "$N" || status=1
  done
  "$HERE/$server-down.sh" "$dir" --purge || status=1
done
exit $status

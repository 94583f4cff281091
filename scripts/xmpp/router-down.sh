#!/usr/bin/env bash
# router-down.sh DIR [--purge]: stops the `vertebra router` started by router-up.sh DIR (SIGTERM
# to the PID in DIR/server.pid, only if it is still a vertebra process). --purge deletes DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"
[ $# -ge 1 ] && [ $# -le 2 ] || xmpp_die "usage: $0 DIR [--purge]"
DIR=$1 PURGE=${2:-}
[ -d "$DIR" ] || exit 0
if [ -s "$DIR/server.pid" ]; then
  xmpp_stop_pid "$(cat "$DIR/server.pid")" 'vertebra router' 15 || xmpp_die "could not stop the router"
  rm -f "$DIR/server.pid" "$DIR/env"
fi
if [ "$PURGE" = --purge ]; then rm -rf -- "$DIR"; fi

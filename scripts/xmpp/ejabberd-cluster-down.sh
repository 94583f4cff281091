#!/usr/bin/env bash
# ejabberd-cluster-down.sh DIR [--purge]
#
# Stops the cluster that ejabberd-cluster-up.sh DIR started: node 2, then node 1 (graceful,
# ejabberd-down.sh; node 1 last, so that it holds the newest Mnesia copy and can start alone next
# time), then the private epmd, each by the PID its script recorded and only if that process still
# is what it was (never by name). Safe to call on a half-started or already stopped cluster.
# --purge then deletes DIR. Exit status: 0 when everything is gone, 1 if something survived.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || xmpp_die "usage: $0 DIR [--purge]"
DIR=$1 PURGE=${2:-}
[ -z "$PURGE" ] || [ "$PURGE" = --purge ] || xmpp_die "usage: $0 DIR [--purge]"
[ -d "$DIR" ] || { xmpp_log "ejabberd-cluster-down: no directory $DIR; nothing to stop"; exit 0; }

rc=0
for n in 2 1; do
  if [ -d "$DIR/node$n" ]; then "$HERE/ejabberd-down.sh" "$DIR/node$n" || rc=1; fi
done
if [ -s "$DIR/epmd.pid" ]; then
  PID=$(cat "$DIR/epmd.pid")
  EPMD_PORT=$(cat "$DIR/epmd_port" 2>/dev/null || echo '[0-9]+')
  if xmpp_stop_pid "$PID" "epmd.* -port $EPMD_PORT( |$)" 5; then
    xmpp_log "ejabberd-cluster-down: stopped epmd PID $PID"
  else
    rc=1
  fi
fi
if [ $rc -eq 0 ]; then
  rm -f "$DIR/epmd.pid" "$DIR/env"
  if [ "$PURGE" = --purge ]; then rm -rf -- "$DIR"; fi
fi
exit $rc

#!/usr/bin/env bash
# prosody-down.sh DIR [--purge]
#
# Stops the Prosody started by prosody-up.sh DIR: SIGTERM to the PID in DIR/server.pid (only if
# that process is still a prosody), waits for a clean exit (~0.2 s), SIGKILL after 15 s. Never
# looks processes up by name, never touches anything else. --purge then deletes DIR.
# Exit status: 0 when the server is gone (or was not running), 1 if it could not be stopped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || xmpp_die "usage: $0 DIR [--purge]"
DIR=$1 PURGE=${2:-}
[ -z "$PURGE" ] || [ "$PURGE" = --purge ] || xmpp_die "usage: $0 DIR [--purge]"
[ -d "$DIR" ] || { xmpp_log "prosody-down: no directory $DIR; nothing to stop"; exit 0; }

if [ -s "$DIR/server.pid" ]; then
  PID=$(cat "$DIR/server.pid")
  xmpp_stop_pid "$PID" '(^|/)prosody( |$)|lua.*prosody' 15 || xmpp_die "could not stop prosody PID $PID"
  rm -f "$DIR/server.pid" "$DIR/prosody.pid" "$DIR/env"
  xmpp_log "prosody-down: stopped PID $PID"
else
  xmpp_log "prosody-down: no $DIR/server.pid; nothing to stop"
fi
if [ "$PURGE" = --purge ]; then rm -rf -- "$DIR"; fi

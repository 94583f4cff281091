#!/usr/bin/env bash
# ejabberd-down.sh DIR [--purge]
#
# Stops the ejabberd started by ejabberd-up.sh DIR: SIGTERM to the beam.smp PID in DIR/server.pid
# (only if that process is still the beam of DIR's node; Erlang treats SIGTERM as a graceful
# init:stop(), ~1.5 s), SIGKILL after 20 s. Then makes sure the ejabberdctl shell that started it
# (DIR/wrapper.pid) has exited too. Never looks processes up by name, never touches anything else.
# --purge then deletes DIR. Exit status: 0 when everything is gone, 1 if something survived.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || xmpp_die "usage: $0 DIR [--purge]"
DIR=$1 PURGE=${2:-}
[ -z "$PURGE" ] || [ "$PURGE" = --purge ] || xmpp_die "usage: $0 DIR [--purge]"
[ -d "$DIR" ] || { xmpp_log "ejabberd-down: no directory $DIR; nothing to stop"; exit 0; }

NODE=$(cat "$DIR/node" 2>/dev/null || echo ejabberd)
if [ -s "$DIR/server.pid" ]; then
  PID=$(cat "$DIR/server.pid")
  xmpp_stop_pid "$PID" "beam.*${NODE%@*}" 20 || xmpp_die "could not stop ejabberd PID $PID"
  xmpp_log "ejabberd-down: stopped PID $PID"
else
  xmpp_log "ejabberd-down: no $DIR/server.pid; nothing to stop"
fi
if [ -s "$DIR/wrapper.pid" ]; then
  # The wrapper exits by itself right after beam.smp; give it a moment, then stop it by PID.
  W=$(cat "$DIR/wrapper.pid")
  for _ in $(seq 30); do xmpp_alive "$W" || break; sleep 0.1; done
  xmpp_stop_pid "$W" ejabberdctl 5 || xmpp_die "could not stop the ejabberdctl wrapper PID $W"
fi
rm -f "$DIR/server.pid" "$DIR/wrapper.pid" "$DIR/env"
if [ "$PURGE" = --purge ]; then rm -rf -- "$DIR"; fi

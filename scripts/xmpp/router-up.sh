#!/usr/bin/env bash
# router-up.sh DIR PORT [USER[:PASSWORD]...]
#
# Starts `vertebra router` (the embedded XMPP server) like prosody-up.sh starts Prosody, for the
# benchmarks: all state in DIR (accounts, self-signed certificate), c2s on 127.0.0.1:PORT
# (0: a free port), STARTTLS optional (plaintext allowed on loopback) unless XMPP_TLS=required.
# Users get XMPP_PASSWORD (default 'secret') unless given as USER:PASSWORD. Writes DIR/env
# (XMPP_SERVER=router, XMPP_PORT, XMPP_DOMAIN, XMPP_CAFILE, ...) and prints the server PID.
# Binary: $VERTEBRA_BIN, else .build/release/vertebra, else .build/debug/vertebra.
# Stop it with router-down.sh DIR [--purge].
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 2 ] || xmpp_die "usage: $0 DIR PORT [USER[:PASSWORD]...]"
DIR=$1 PORT=$2
shift 2
DOMAIN=${XMPP_DOMAIN:-localhost}
PASS=${XMPP_PASSWORD:-secret}
TLS=${XMPP_TLS:-optional}
BIN=${VERTEBRA_BIN:-}
[ -n "$BIN" ] || { [ -x "$ROOT/.build/release/vertebra" ] && BIN=$ROOT/.build/release/vertebra; } || BIN=$ROOT/.build/debug/vertebra
[ -x "$BIN" ] || xmpp_die "no vertebra binary at $BIN (swift build -c release --product vertebra)"
for spec in "$@"; do xmpp_parse_user "$spec" "$PASS"; done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ "$PORT" = 0 ] && PORT=$(xmpp_free_port)
xmpp_port_listening "$PORT" && xmpp_die "port $PORT is already in use"
rm -f "$DIR/env" "$DIR/server.pid"
for spec in "$@"; do
  xmpp_parse_user "$spec" "$PASS"
  out=$(ROUTER_PW="$P" "$BIN" router adduser "$U" --state-dir "$DIR" --password-env ROUTER_PW 2>&1 ||
    ROUTER_PW="$P" "$BIN" router passwd "$U" --state-dir "$DIR" --password-env ROUTER_PW 2>&1) ||
    xmpp_die "adding $U failed: $out"
done
# Benchmarks open many loopback clients (idle_clients.py: 1,000): lift the per-address cap.
FLAGS=(--max-connections-per-address "${ROUTER_MAX_PER_ADDRESS:-100000}")
[ "$TLS" = required ] || FLAGS+=(--allow-plaintext)
: >"$DIR/console.log"
(xmpp_close_inherited_fds && exec nohup python3 "$HERE/unblock-signals.py" "$BIN" router --state-dir "$DIR" --port "$PORT" --domain "$DOMAIN" \
  --log-level "${ROUTER_LOG_LEVEL:-warning}" "${FLAGS[@]}" >>"$DIR/console.log" 2>&1 </dev/null) &
PID=$!
echo "$PID" >"$DIR/server.pid"
rc=0
xmpp_wait_port "$PORT" "$PID" 20 || rc=$?
if [ $rc -ne 0 ]; then
  tail -n 20 "$DIR/console.log" >&2 || true
  xmpp_stop_pid "$PID" vertebra 5 || true
  xmpp_die "vertebra router did not come up on 127.0.0.1:$PORT"
fi
xmpp_write_env "$DIR" router "$PORT" "$DOMAIN" "$PID" "$DIR/$DOMAIN.crt" "XMPP_TLS=$TLS"
xmpp_log "router up: pid $PID, c2s 127.0.0.1:$PORT, domain $DOMAIN, users: ${*%%:*}, dir $DIR"
echo "$PID"

#!/usr/bin/env bash
# ejabberd-cluster-up.sh DIR [USER[:PASSWORD] ...]
#
# Starts a two-node ejabberd cluster on loopback, all its state under DIR, for tests of
# "more than one server": node 1 (DIR/node1) and node 2 (DIR/node2) are two private ejabberds
# (ejabberd-up.sh, in its epmd mode) with their own c2s ports and node names
# (vertebra1-XXXX@localhost, vertebra2-XXXX@localhost, XXXX fixed per DIR), ONE Erlang cookie,
# ONE certificate (clients trust both nodes with one CA file) and a PRIVATE epmd on
# 127.0.0.1:<free port> (never the system epmd on 4369). Node 2 joins node 1
# (ejabberdctl join_cluster); the USERs are registered once and, living in the cluster's Mnesia,
# can log in on either node; a stanza to a JID bound on the other node crosses the cluster.
# Takes ~8-10 s (with a few users; ~0.8 s each). Prints the two beam.smp PIDs (node 1, node 2),
# one a line, and nothing else on stdout. On failure it stops whatever it started and exits 1.
#
# Every listener is on loopback: the c2s ports and the Erlang distribution ports on 127.0.0.1,
# the epmd on 127.0.0.1 (epmd itself always adds [::1] too).
#
#   ejabberd-cluster-node.sh DIR 2 kill     SIGKILL node 2's beam (a crash)
#   ejabberd-cluster-node.sh DIR 2 start    start it again, same DIR and c2s port: it rejoins
#   ejabberd-cluster-node.sh DIR N stop     graceful stop of one node
#   ejabberd-cluster-down.sh DIR [--purge]  stop both nodes and the epmd (by PID only)
#   DIR/node1/ctl, DIR/node2/ctl            ejabberdctl bound to each node (list_cluster, ...)
#
# DIR/env (KEY=VALUE, like ejabberd-up.sh's; rewritten by every node action):
#   XMPP_SERVER=ejabberd-cluster XMPP_HOST=127.0.0.1 XMPP_DOMAIN XMPP_TLS XMPP_DIR
#   XMPP_CAFILE           the one certificate both nodes present (empty with XMPP_TLS=off)
#   XMPP_PORT1 XMPP_PORT2 c2s ports;  XMPP_PID1 XMPP_PID2  beam PIDs (empty while a node is down)
#   XMPP_PORT XMPP_PID    node 1's again, for tools made for one server
#   EJABBERD_NODE1 EJABBERD_NODE2 EJABBERD_CTL1 EJABBERD_CTL2 EJABBERD_EPMD_PORT EJABBERD_EPMD_PID
#
# Environment knobs: those of ejabberd-up.sh (XMPP_DOMAIN, XMPP_TLS, XMPP_PASSWORD,
# XMPP_LOG_LEVEL, XMPP_SM_RESUME_TIMEOUT, EJABBERD_*; not EJABBERD_NODE/EJABBERD_DIST_PORT/
# EJABBERD_EPMD_PORT, which this script sets), kept in DIR/cluster.cfg so that a node restarted
# later gets the same configuration, plus EJABBERD_PORT1 / EJABBERD_PORT2 (c2s ports, default 0:
# free ones, then kept per DIR).
#
# Files: DIR/cluster.cfg DIR/.erlang.cookie DIR/certs/ DIR/epmd.pid DIR/epmd.log DIR/epmd_port
#        DIR/env DIR/node1/ DIR/node2/ (each an ejabberd-up.sh DIR, plus port and joined)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 1 ] || xmpp_die "usage: $0 DIR [USER[:PASSWORD] ...]"
[ -x /usr/sbin/ejabberdctl ] || xmpp_die "ejabberd is not installed (scripts/install-deps.sh, or apt-get install -y ejabberd)"
command -v epmd >/dev/null || xmpp_die "epmd is not installed (it comes with erlang-base, ejabberd's dependency)"
DIR=$1
shift
export XMPP_DOMAIN=${XMPP_DOMAIN:-localhost}
export XMPP_TLS=${XMPP_TLS:-optional}
PORT1=${EJABBERD_PORT1:-0} PORT2=${EJABBERD_PORT2:-0}
xmpp_check_domain "$XMPP_DOMAIN"
xmpp_check_tls "$XMPP_TLS"
xmpp_check_port "$PORT1"
xmpp_check_port "$PORT2"
for spec in "$@"; do xmpp_parse_user "$spec" "${XMPP_PASSWORD:-secret}"; done
[ -z "${EJABBERD_DIST_PORT:-}" ] || [ "$EJABBERD_DIST_PORT" = 0 ] ||
  xmpp_die "EJABBERD_DIST_PORT cannot be fixed for a cluster (its nodes find each other through the private epmd)"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[[ $DIR =~ ^[A-Za-z0-9/._+-]+$ ]] || xmpp_die "DIR '$DIR' may only contain [A-Za-z0-9/._+-] (it goes into Erlang/YAML/shell configs)"
for f in node1/server.pid node2/server.pid epmd.pid; do
  if [ -s "$DIR/$f" ] && xmpp_alive "$(cat "$DIR/$f")"; then
    xmpp_die "$DIR/$f: PID $(cat "$DIR/$f") still runs; stop the cluster first: $HERE/ejabberd-cluster-down.sh $DIR"
  fi
done
rm -f "$DIR/env" "$DIR/epmd.pid"

# Node names: fixed per DIR (each node's Mnesia schema is bound to its name and its peer's).
[ -s "$DIR/cluster_id" ] || od -An -N2 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/cluster_id"
ID=$(cat "$DIR/cluster_id")
NODE1=vertebra1-$ID@localhost NODE2=vertebra2-$ID@localhost
for n in 1 2; do
  want=vertebra$n-$ID@localhost
  if [ -s "$DIR/node$n/node" ] && [ "$(cat "$DIR/node$n/node")" != "$want" ]; then
    xmpp_die "$DIR/node$n belongs to node $(cat "$DIR/node$n/node"), not $want"
  fi
done

# One cookie, one certificate for both nodes (ejabberd-up.sh keeps an existing cookie and reuses
# an existing certificate for the domain instead of making its own).
if [ ! -s "$DIR/.erlang.cookie" ]; then
  (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/.erlang.cookie")
fi
chmod 400 "$DIR/.erlang.cookie"
for n in 1 2; do
  mkdir -p "$DIR/node$n"
  if [ ! -s "$DIR/node$n/.erlang.cookie" ]; then
    (umask 077 && cp "$DIR/.erlang.cookie" "$DIR/node$n/.erlang.cookie")
  fi
  cmp -s "$DIR/.erlang.cookie" "$DIR/node$n/.erlang.cookie" || xmpp_die "$DIR/node$n/.erlang.cookie is not the cluster's cookie"
done
if [ "$XMPP_TLS" != off ]; then
  xmpp_gen_cert "$DIR/certs" "$XMPP_DOMAIN"
  for n in 1 2; do
    mkdir -p "$DIR/node$n/certs"
    for ext in crt key; do
      cmp -s "$DIR/certs/$XMPP_DOMAIN.$ext" "$DIR/node$n/certs/$XMPP_DOMAIN.$ext" ||
        (umask 077 && cp -f "$DIR/certs/$XMPP_DOMAIN.$ext" "$DIR/node$n/certs/$XMPP_DOMAIN.$ext")
    done
    chmod 644 "$DIR/node$n/certs/$XMPP_DOMAIN.crt"
  done
fi

# The knobs, for every later start of a node (ejabberd-cluster-node.sh sources this; 0600: it may
# hold XMPP_PASSWORD).
(umask 077 && : >"$DIR/cluster.cfg.tmp")
{
  printf '# Generated by ejabberd-cluster-up.sh; sourced by ejabberd-cluster-node.sh.\n'
  printf 'CLUSTER_NODE1=%q\nCLUSTER_NODE2=%q\nCLUSTER_PORT1=%q\nCLUSTER_PORT2=%q\n' "$NODE1" "$NODE2" "$PORT1" "$PORT2"
  for knob in XMPP_DOMAIN XMPP_TLS XMPP_PASSWORD XMPP_LOG_LEVEL XMPP_SM_RESUME_TIMEOUT XMPP_START_TIMEOUT \
    EJABBERD_SM_RESUME_TIMEOUT EJABBERD_BUSY_WAIT EJABBERD_PASSWORD_FORMAT EJABBERD_MODULES_EXTRA EJABBERD_EXTRA; do
    [ -z "${!knob+x}" ] || printf 'export %s=%q\n' "$knob" "${!knob}"
  done
} >>"$DIR/cluster.cfg.tmp"

# The private epmd, on loopback only, on a free port (the same as last time if it is free).
EPMD_PORT=$(cat "$DIR/epmd_port" 2>/dev/null || true)
if ! [[ $EPMD_PORT =~ ^[0-9]+$ ]] || xmpp_port_listening "$EPMD_PORT"; then EPMD_PORT=$(xmpp_free_port); fi
echo "$EPMD_PORT" >"$DIR/epmd_port"
printf 'CLUSTER_EPMD_PORT=%q\n' "$EPMD_PORT" >>"$DIR/cluster.cfg.tmp"
mv "$DIR/cluster.cfg.tmp" "$DIR/cluster.cfg"

fail() {
  trap - ERR INT TERM
  xmpp_log "ERROR: $*"
  "$HERE/ejabberd-cluster-down.sh" "$DIR" >&2 || true
  exit 1
}
trap 'fail "interrupted"' INT TERM
trap 'fail "unexpected error (line $LINENO)"' ERR

: >"$DIR/epmd.log"
(cd "$DIR" && xmpp_close_inherited_fds && exec nohup python3 "$HERE/unblock-signals.py" \
  epmd -port "$EPMD_PORT" -address 127.0.0.1 >>"$DIR/epmd.log" 2>&1 </dev/null) &
EPMD_PID=$!
echo "$EPMD_PID" >"$DIR/epmd.pid"
rc=0
xmpp_wait_port "$EPMD_PORT" "$EPMD_PID" 10 || rc=$?
[ $rc -eq 0 ] || fail "epmd did not come up on 127.0.0.1:$EPMD_PORT: $(cat "$DIR/epmd.log")"
xmpp_port_owned_by "$EPMD_PORT" "$EPMD_PID" || fail "port $EPMD_PORT is held by another process, not by our epmd $EPMD_PID"

PID1=$("$HERE/ejabberd-cluster-node.sh" "$DIR" 1 start "$@") || fail "node 1 did not start"
PID2=$("$HERE/ejabberd-cluster-node.sh" "$DIR" 2 start) || fail "node 2 did not start or join"

# Loopback only: every listener of the epmd and of both beams.
bad=$(ss -ltnpH 2>/dev/null | grep -E "pid=($EPMD_PID|$PID1|$PID2)," | awk '{print $4}' |
  grep -vE '^(127\.0\.0\.1|\[::1\]):[0-9]+$' || true)
[ -z "$bad" ] || fail "listeners not on loopback: $bad"
# An account registered on node 1 is there on node 2.
if [ $# -gt 0 ]; then
  xmpp_parse_user "$1" secret
  "$DIR/node2/ctl" registered_users "$XMPP_DOMAIN" </dev/null 2>/dev/null | grep -qxF "$U" ||
    fail "user $U, registered on node 1, is not visible on node 2"
fi
trap - ERR INT TERM
# shellcheck disable=SC1091
. "$DIR/env"
xmpp_log "ejabberd cluster up: node 1 $NODE1 pid $PID1 c2s 127.0.0.1:$XMPP_PORT1; node 2 $NODE2 pid $PID2 c2s 127.0.0.1:$XMPP_PORT2; epmd 127.0.0.1:$EPMD_PORT pid $EPMD_PID; domain $XMPP_DOMAIN, tls $XMPP_TLS, users: ${*%%:*}, dir $DIR"
printf '%s\n%s\n' "$PID1" "$PID2"

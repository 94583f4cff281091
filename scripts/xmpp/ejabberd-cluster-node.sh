#!/usr/bin/env bash
# ejabberd-cluster-node.sh DIR N start|kill|stop [USER[:PASSWORD] ...]
#
# One node (N = 1 or 2) of the two-node ejabberd cluster that ejabberd-cluster-up.sh DIR set up:
#
#   start   starts node N under DIR/nodeN with its own node name, c2s port (the same one on every
#           start, so clients reconnect to it), the cluster's cookie, certificate and private epmd
#           (ejabberd-up.sh in epmd mode). If the other node runs, node N must end up in the
#           cluster: the first time it joins (ejabberdctl join_cluster OTHER), afterwards (a
#           restart with the same DIR, e.g. after `kill`) its Mnesia schema brings it back by
#           itself and the script waits until both nodes list each other. USERs are registered
#           (once is enough: the accounts live in the cluster's Mnesia, visible on both nodes).
#           ~2.5 s, plus ~1.5 s for a join, plus ~0.8 s per user. Prints the node's PID.
#   kill    SIGKILL to node N's beam.smp (a crash: no goodbye to the other node, no Mnesia
#           shutdown, clients' TCP connections just break). Only that PID, after checking that it
#           still is the beam of node N.
#   stop    graceful stop (ejabberd-down.sh DIR/nodeN).
#
# Each action rewrites DIR/env (see ejabberd-cluster-up.sh); a node that is down has an empty
# XMPP_PIDn there. The cluster's epmd must run (ejabberd-cluster-up.sh started it).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 3 ] || xmpp_die "usage: $0 DIR 1|2 start|kill|stop [USER[:PASSWORD] ...]"
DIR=$1 N=$2 ACTION=$3
shift 3
case $N in 1 | 2) ;; *) xmpp_die "N must be 1 or 2, not '$N'" ;; esac
case $ACTION in start | kill | stop) ;; *) xmpp_die "ACTION must be start, kill or stop, not '$ACTION'" ;; esac
[ "$ACTION" = start ] || [ $# -eq 0 ] || xmpp_die "users can only be given to start"
[ -s "$DIR/cluster.cfg" ] || xmpp_die "$DIR is not a cluster directory (no cluster.cfg); use ejabberd-cluster-up.sh"
DIR=$(cd "$DIR" && pwd)
# shellcheck disable=SC1091
. "$DIR/cluster.cfg" # CLUSTER_EPMD_PORT CLUSTER_NODE1 CLUSTER_NODE2 CLUSTER_PORT1 CLUSTER_PORT2 + exported knobs
NDIR=$DIR/node$N
OTHER=$((3 - N))
ODIR=$DIR/node$OTHER
NODE_VAR=CLUSTER_NODE$N OTHER_VAR=CLUSTER_NODE$OTHER
NODE=${!NODE_VAR} OTHER_NODE=${!OTHER_VAR}

# pid_of NODE_DIR: the live beam PID of that node, or nothing.
pid_of() {
  local pid
  pid=$(cat "$1/server.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && xmpp_alive "$pid" && echo "$pid"
  return 0
}

epmd_pid() {
  local pid
  pid=$(cat "$DIR/epmd.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && xmpp_alive "$pid" && xmpp_cmdline "$pid" | grep -q "epmd.* -port $CLUSTER_EPMD_PORT " && echo "$pid"
  return 0
}

# cluster_nodes NODE_DIR: the nodes that node's ejabberd sees running in its cluster, one a line.
cluster_nodes() { "$1/ctl" list_cluster 2>/dev/null </dev/null | tr -d "'" || true; }

# in_cluster NODE_DIR NODE: true if that node's ejabberd sees NODE running in its cluster.
in_cluster() {
  local nodes
  nodes=$(cluster_nodes "$1")
  grep -qxF "$2" <<<"$nodes"
}

write_env() {
  local p1 p2 port1 port2 ca=
  p1=$(pid_of "$DIR/node1") p2=$(pid_of "$DIR/node2")
  port1=$(cat "$DIR/node1/port" 2>/dev/null || true) port2=$(cat "$DIR/node2/port" 2>/dev/null || true)
  [ "$XMPP_TLS" = off ] || ca=$DIR/certs/$XMPP_DOMAIN.crt
  # XMPP_PORT/XMPP_PID are node 1's, for tools written for one server (xmpp-probe.py --env ...).
  xmpp_write_env "$DIR" ejabberd-cluster "$port1" "$XMPP_DOMAIN" "$p1" "$ca" "XMPP_TLS=$XMPP_TLS" \
    "XMPP_PORT1=$port1" "XMPP_PORT2=$port2" "XMPP_PID1=$p1" "XMPP_PID2=$p2" \
    "EJABBERD_NODE1=$CLUSTER_NODE1" "EJABBERD_NODE2=$CLUSTER_NODE2" \
    "EJABBERD_CTL1=$DIR/node1/ctl" "EJABBERD_CTL2=$DIR/node2/ctl" \
    "EJABBERD_EPMD_PORT=$CLUSTER_EPMD_PORT" "EJABBERD_EPMD_PID=$(epmd_pid)"
}

case $ACTION in
  kill)
    PID=$(pid_of "$NDIR")
    if [ -z "$PID" ]; then
      xmpp_log "ejabberd-cluster-node: node $N ($NODE) is not running; nothing to kill"
    else
      xmpp_cmdline "$PID" | grep -q "beam.*${NODE%@*}" || xmpp_die "PID $PID is not the beam of $NODE; not touching it"
      kill -KILL "$PID"
      for _ in $(seq 50); do xmpp_alive "$PID" || break; sleep 0.1; done
      xmpp_alive "$PID" && xmpp_die "node $N (PID $PID) survived SIGKILL"
      # The ejabberdctl shell that ran it exits by itself right after; stop it by PID otherwise.
      W=$(cat "$NDIR/wrapper.pid" 2>/dev/null || true)
      for _ in $(seq 30); do xmpp_alive "$W" || break; sleep 0.1; done
      xmpp_stop_pid "$W" ejabberdctl 5 || true
      rm -f "$NDIR/server.pid" "$NDIR/wrapper.pid" "$NDIR/env"
      xmpp_log "ejabberd-cluster-node: killed node $N ($NODE, PID $PID) with SIGKILL"
    fi
    write_env
    ;;
  stop)
    "$HERE/ejabberd-down.sh" "$NDIR"
    write_env
    ;;
  start)
    [ -n "$(epmd_pid)" ] || xmpp_die "the cluster's epmd (127.0.0.1:$CLUSTER_EPMD_PORT) is not running; start the cluster with ejabberd-cluster-up.sh $DIR"
    [ -z "$(pid_of "$NDIR")" ] || xmpp_die "node $N ($NODE) is already running (PID $(pid_of "$NDIR"))"
    PORT_VAR=CLUSTER_PORT$N
    PORT=$(cat "$NDIR/port" 2>/dev/null || echo "${!PORT_VAR}")
    mkdir -p "$NDIR"
    [ -s "$NDIR/node" ] || echo "$NODE" >"$NDIR/node" # ejabberd-up.sh keeps it for the DIR
    [ "$(cat "$NDIR/node")" = "$NODE" ] || xmpp_die "$NDIR belongs to node $(cat "$NDIR/node"), not $NODE"
    PID=$(EJABBERD_EPMD_PORT=$CLUSTER_EPMD_PORT EJABBERD_NODE=$NODE EJABBERD_DIST_PORT=0 \
      "$HERE/ejabberd-up.sh" "$NDIR" "$PORT" "$@")
    grep '^XMPP_PORT=' "$NDIR/env" | cut -d= -f2 >"$NDIR/port"

    # fail_stop MESSAGE: stop this node again (it is not in the cluster as it should be) and fail.
    fail_stop() {
      "$HERE/ejabberd-down.sh" "$NDIR" || true
      write_env
      xmpp_die "$*"
    }
    if [ -n "$(pid_of "$ODIR")" ]; then
      if in_cluster "$NDIR" "$OTHER_NODE"; then
        : # back in the cluster already (Mnesia reconnected while ejabberd started)
      elif [ -e "$NDIR/joined" ] || [ -e "$ODIR/joined" ]; then
        # Formed before: Mnesia's schema names the other node; wait for the reconnection.
        ok=
        for _ in $(seq 30); do
          if in_cluster "$NDIR" "$OTHER_NODE"; then ok=1; break; fi
          sleep 0.5
        done
        [ -n "$ok" ] || fail_stop "node $N ($NODE) did not rejoin $OTHER_NODE within ~30 s (see $NDIR/logs/ejabberd.log)"
      else
        out=$("$NDIR/ctl" join_cluster "$OTHER_NODE" 2>&1 </dev/null) || fail_stop "node $N ($NODE) could not join $OTHER_NODE: $out"
        : >"$NDIR/joined"
        # join_cluster restarts ejabberd's application on this node (same beam): wait for c2s.
        xmpp_wait_port "$(cat "$NDIR/port")" "$PID" 30 || fail_stop "node $N's c2s port did not come back after join_cluster"
        in_cluster "$NDIR" "$OTHER_NODE" || fail_stop "node $N ($NODE) joined, but does not list $OTHER_NODE as running"
      fi
      xmpp_log "ejabberd-cluster-node: node $N ($NODE) is in the cluster with $OTHER_NODE"
    fi
    write_env
    echo "$PID"
    ;;
esac

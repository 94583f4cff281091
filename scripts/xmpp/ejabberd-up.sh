#!/usr/bin/env bash
# ejabberd-up.sh DIR PORT [USER[:PASSWORD] ...]
#
# Starts a private ejabberd (Debian package `ejabberd`, 23.01 on Erlang/OTP 25) that keeps ALL its
# state under DIR (ejabberd.yml, ejabberdctl.cfg, self-signed cert, Mnesia spool, logs, pid) and
# listens ONLY on loopback: c2s on 127.0.0.1:PORT, plus the Erlang distribution port on 127.0.0.1
# that DIR/ctl needs. Epmd-less by default (EJABBERD_EPMD_PORT: a private epmd instead, for
# clusters), so never the shared epmd on 4369; no s2s, HTTP, STUN, MQTT or shapers;
# the system /etc/ejabberd is not used. Starts `ejabberdctl foreground` in the background, waits
# until PORT listens (~1.5-2 s), registers the users (~0.7 s each), writes DIR/env and prints the
# server (beam.smp) PID on stdout (and nothing else). Stop it with ejabberd-down.sh DIR.
#
#   PORT 0            pick a free port (read it from DIR/env)
#   USER              gets $XMPP_PASSWORD; USER:PASSWORD sets it. Re-running with the same DIR
#                     keeps the accounts (Mnesia) and resets the given passwords.
#   DIR/ctl ...       ejabberdctl bound to this instance: status, connected_users, register U D P,
#                     unregister U D, registered_users D, ...
#
# Environment knobs (all optional):
#   XMPP_DOMAIN=localhost       virtual host, also the certificate's CN/SAN
#   XMPP_TLS=optional           optional: STARTTLS offered, plaintext stream + auth allowed
#                               required: starttls_required;  off: no certificate, no STARTTLS
#   XMPP_PASSWORD=secret        password of users given without ":PASSWORD"
#   XMPP_LOG_LEVEL=info         none|emergency|alert|critical|error|warning|notice|info|debug
#   XMPP_SM_RESUME_TIMEOUT=300  XEP-0198 resumption window in seconds (mod_stream_mgmt
#                               resume_timeout; EJABBERD_SM_RESUME_TIMEOUT is an alias). 300 is
#                               ejabberd's default; when it expires, unacked stanzas bounce.
#   EJABBERD_BUSY_WAIT=0        0: +sbwt none (schedulers do not spin: honest CPU figures, and the
#                               clients keep their CPU on a 2-core box). 1: Erlang's default spinning
#   EJABBERD_PASSWORD_FORMAT=scram  scram (SCRAM-SHA-1 + PLAIN) | plain (adds SCRAM-SHA-256/512)
#   EJABBERD_NODE=              Erlang node name (default ejabberd-<random>@localhost; fixed per DIR
#                               on first start, because the Mnesia schema is bound to it)
#   EJABBERD_DIST_PORT=0        Erlang distribution port on 127.0.0.1 (0: a free one, kept per DIR)
#   EJABBERD_EPMD_PORT=         opt-in epmd mode, for clustering (ejabberd-cluster-up.sh): the node
#                               and DIR/ctl find nodes through a PRIVATE epmd that must already
#                               listen on 127.0.0.1:EJABBERD_EPMD_PORT (ERL_EPMD_PORT, -start_epmd
#                               false: no node ever starts an epmd). The distribution port is then
#                               any free one on 127.0.0.1 (EJABBERD_DIST_PORT must stay unset/0).
#                               Epmd-less nodes cannot cluster on one host: each one assumes that
#                               every other node listens on its own dist port.
#   EJABBERD_MODULES_EXTRA=''   extra YAML lines under `modules:` (indent them 2 spaces)
#   EJABBERD_EXTRA=''           extra top-level YAML appended to ejabberd.yml
#   XMPP_START_TIMEOUT=60       seconds to wait for the port
#
# Files: DIR/ejabberd.yml DIR/ejabberdctl.cfg DIR/vm.args DIR/inetrc DIR/.erlang.cookie
#        DIR/ejabberdctl (private copy, see below) DIR/ctl DIR/certs/ DIR/db/ (Mnesia) DIR/logs/
#        DIR/console.log DIR/server.pid (beam.smp) DIR/wrapper.pid DIR/node DIR/dist_port DIR/env
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ $# -ge 2 ] || xmpp_die "usage: $0 DIR PORT [USER[:PASSWORD] ...]"
[ -x /usr/sbin/ejabberdctl ] || xmpp_die "ejabberd is not installed (scripts/install-deps.sh, or apt-get install -y ejabberd)"
DIR=$1 PORT=$2
shift 2
DOMAIN=${XMPP_DOMAIN:-localhost}
TLS=${XMPP_TLS:-optional}
PASS=${XMPP_PASSWORD:-secret}
LEVEL=${XMPP_LOG_LEVEL:-info}
SM_TIMEOUT=${EJABBERD_SM_RESUME_TIMEOUT:-${XMPP_SM_RESUME_TIMEOUT:-300}}
PWFMT=${EJABBERD_PASSWORD_FORMAT:-scram}
BUSY_WAIT=${EJABBERD_BUSY_WAIT:-0}
TIMEOUT=${XMPP_START_TIMEOUT:-60}

xmpp_check_port "$PORT"
xmpp_check_domain "$DOMAIN"
xmpp_check_tls "$TLS"
xmpp_check_number XMPP_SM_RESUME_TIMEOUT "$SM_TIMEOUT"
xmpp_check_number XMPP_START_TIMEOUT "$TIMEOUT"
case $LEVEL in none | emergency | alert | critical | error | warning | notice | info | debug) ;;
  *) xmpp_die "XMPP_LOG_LEVEL must be none|emergency|alert|critical|error|warning|notice|info|debug for ejabberd" ;; esac
case $PWFMT in scram | plain) ;; *) xmpp_die "EJABBERD_PASSWORD_FORMAT must be scram|plain" ;; esac
case $BUSY_WAIT in 0 | 1) ;; *) xmpp_die "EJABBERD_BUSY_WAIT must be 0 or 1" ;; esac
for spec in "$@"; do xmpp_parse_user "$spec" "$PASS"; done # validate all before doing anything
[ "$PORT" != 0 ] && xmpp_port_listening "$PORT" && xmpp_die "port $PORT is already in use"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[[ $DIR =~ ^[A-Za-z0-9/._+-]+$ ]] || xmpp_die "DIR '$DIR' may only contain [A-Za-z0-9/._+-] (it goes into Erlang/YAML/shell configs)"
xmpp_check_dir_free "$DIR" "$HERE/ejabberd-down.sh"
[ "$PORT" = 0 ] && PORT=$(xmpp_free_port)
xmpp_port_listening "$PORT" && xmpp_die "port $PORT is already in use"
mkdir -p "$DIR/db" "$DIR/logs" "$DIR/certs"
rm -f "$DIR/env" "$DIR/server.pid" "$DIR/wrapper.pid"

# Node name: fixed per DIR, because the Mnesia schema in DIR/db is bound to it.
if [ ! -s "$DIR/node" ]; then
  echo "${EJABBERD_NODE:-ejabberd-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')@localhost}" >"$DIR/node"
fi
NODE=$(cat "$DIR/node")
if [ -n "${EJABBERD_NODE:-}" ] && [ "$EJABBERD_NODE" != "$NODE" ]; then
  xmpp_die "DIR already belongs to node $NODE (its Mnesia data is bound to it); EJABBERD_NODE=$EJABBERD_NODE needs a new DIR"
fi

# Erlang distribution: epmd-less. The node listens on a fixed port on 127.0.0.1 and the ctl VMs
# connect straight to it (ERL_DIST_PORT in ejabberdctl.cfg => -erl_epmd_port P -start_epmd false).
# Epmd mode (EJABBERD_EPMD_PORT): the node registers its (kernel-chosen, 127.0.0.1) dist port with
# the private epmd on that port, and peers and ctl VMs look it up there.
DPORT=${EJABBERD_DIST_PORT:-0}
xmpp_check_port "$DPORT"
EPMD_PORT=${EJABBERD_EPMD_PORT:-}
if [ -n "$EPMD_PORT" ]; then
  xmpp_check_port "$EPMD_PORT"
  [ "$EPMD_PORT" != 0 ] || xmpp_die "EJABBERD_EPMD_PORT must name the port of a running private epmd, not 0"
  [ "$EPMD_PORT" != 4369 ] || xmpp_die "EJABBERD_EPMD_PORT=4369 is the system epmd's port; start a private epmd on another one"
  [ "$DPORT" = 0 ] || xmpp_die "EJABBERD_DIST_PORT cannot be fixed in epmd mode (EJABBERD_EPMD_PORT)"
  [ "$EPMD_PORT" != "$PORT" ] || xmpp_die "the epmd port must differ from the c2s port"
  xmpp_port_listening "$EPMD_PORT" ||
    xmpp_die "no epmd listens on 127.0.0.1:$EPMD_PORT (EJABBERD_EPMD_PORT); start it first (ejabberd-cluster-up.sh does)"
  rm -f "$DIR/dist_port"
elif [ "$DPORT" = 0 ]; then
  if [ -s "$DIR/dist_port" ] && ! xmpp_port_listening "$(cat "$DIR/dist_port")"; then
    DPORT=$(cat "$DIR/dist_port")
  else
    DPORT=$(xmpp_free_port)
  fi
fi
if [ -z "$EPMD_PORT" ]; then
  [ "$DPORT" != "$PORT" ] || xmpp_die "the Erlang dist port must differ from the c2s port"
  xmpp_port_listening "$DPORT" && xmpp_die "Erlang dist port $DPORT is already in use"
  echo "$DPORT" >"$DIR/dist_port"
fi

# Erlang cookie: in DIR/.erlang.cookie, read via HOME=DIR (DIR/ctl sets it), so it never shows in
# `ps` (-setcookie would, even from an args file).
if [ ! -s "$DIR/.erlang.cookie" ]; then
  (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/.erlang.cookie")
fi
chmod 400 "$DIR/.erlang.cookie"

CERT_BLOCK='# XMPP_TLS=off: no certificate'
TLS_OPT='    # XMPP_TLS=off: no STARTTLS'
CAFILE=
if [ "$TLS" != off ]; then
  xmpp_gen_cert "$DIR/certs" "$DOMAIN"
  CERT_BLOCK="certfiles:
  - \"$DIR/certs/$DOMAIN.pem\""
  CAFILE=$DIR/certs/$DOMAIN.crt
  if [ "$TLS" = required ]; then TLS_OPT='    starttls_required: true'; else TLS_OPT='    starttls: true'; fi
fi

cat >"$DIR/ejabberd.yml" <<EOF
# Generated by scripts/xmpp/ejabberd-up.sh. Everything lives under $DIR.
loglevel: $LEVEL
log_rotate_count: 0
hosts:
  - "$DOMAIN"
$CERT_BLOCK
listen:
  -
    port: $PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024               # ejabberd's default listen backlog is 5
    max_stanza_size: 262144
$TLS_OPT
# No shaper on purpose: Debian's /etc/ejabberd/ejabberd.yml limits c2s to 3000 B/s ("normal").
# (ejabberd sets TCP_NODELAY on its listeners itself.)
auth_method: internal
auth_password_format: $PWFMT
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_disco: {}
  mod_ping: {}
  mod_stream_mgmt:
    resume_timeout: $SM_TIMEOUT
  mod_roster: {}
  mod_time: {}
  mod_version: {}
${EJABBERD_MODULES_EXTRA:-}
${EJABBERD_EXTRA:-}
EOF

if [ -f /etc/ejabberd/inetrc ]; then
  cp /etc/ejabberd/inetrc "$DIR/inetrc"
else
  printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' >"$DIR/inetrc"
fi
# vm.args goes (-args_file) to the server and to every ctl VM: bind distribution to loopback.
echo '-kernel inet_dist_use_interface {127,0,0,1}' >"$DIR/vm.args"
ERL_OPTS="-env ERL_CRASH_DUMP_BYTES 0"
[ "$BUSY_WAIT" = 1 ] || ERL_OPTS="$ERL_OPTS +sbwt none +sbwtdcpu none +sbwtdio none"
if [ -n "$EPMD_PORT" ]; then
  # Server and ctl VMs: use the private epmd, never start one (ejabberdctl exports ERL_EPMD_ADDRESS).
  ERL_OPTS="$ERL_OPTS -start_epmd false"
  DIST_CFG="export ERL_EPMD_PORT=$EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1"
else
  DIST_CFG="ERL_DIST_PORT=$DPORT"
fi
cat >"$DIR/ejabberdctl.cfg" <<EOF
# Generated by scripts/xmpp/ejabberd-up.sh; sourced by ejabberdctl.
ERLANG_NODE=$NODE
ERL_OPTIONS="$ERL_OPTS"
$DIST_CFG
EJABBERD_PID_PATH=$DIR/server.pid
EJABBERD_BYPASS_WARNINGS=true
SPOOL_DIR=$DIR/db
EOF
chmod 600 "$DIR/ejabberdctl.cfg"

# Debian's ejabberdctl runs everything as user 'ejabberd' (su from root, refuses anyone else);
# that user could not read a 0700 DIR such as mktemp -d makes. A private copy with INSTALLUSER=
# runs as the invoking user (and without the "not recommended to run as root" warning).
if [ "$(id -un)" = ejabberd ]; then
  CTL=/usr/sbin/ejabberdctl
else
  sed -e 's/^INSTALLUSER=ejabberd$/INSTALLUSER=/' \
    -e '/WARNING: It is not recommended to run ejabberd as root/d' /usr/sbin/ejabberdctl >"$DIR/ejabberdctl"
  grep -q '^INSTALLUSER=$' "$DIR/ejabberdctl" && bash -n "$DIR/ejabberdctl" ||
    xmpp_die "could not adapt /usr/sbin/ejabberdctl (its INSTALLUSER line changed?)"
  chmod 755 "$DIR/ejabberdctl"
  CTL=$DIR/ejabberdctl
fi
cat >"$DIR/ctl" <<EOF
#!/bin/sh
# ejabberdctl bound to the private instance in $DIR (generated by ejabberd-up.sh)
HOME='$DIR' exec '$CTL' --config-dir '$DIR' --logs '$DIR/logs' --spool '$DIR/db' "\$@"
EOF
chmod 755 "$DIR/ctl"

: >"$DIR/console.log"
(cd "$DIR" && xmpp_close_inherited_fds && exec nohup python3 "$HERE/unblock-signals.py" "$DIR/ctl" foreground >>"$DIR/console.log" 2>&1 </dev/null) &
WRAPPER=$!                       # the ejabberdctl shell; beam.smp is its child
echo "$WRAPPER" >"$DIR/wrapper.pid"
PID=

fail() {
  trap - ERR INT TERM
  xmpp_log "ERROR: $*"
  xmpp_log "--- tail of $DIR/console.log:"
  tail -n 30 "$DIR/console.log" >&2 2>/dev/null || true
  [ -z "$PID" ] && PID=$(cat "$DIR/server.pid" 2>/dev/null || true)
  if [ -n "$PID" ]; then xmpp_stop_pid "$PID" "beam.*${NODE%@*}" 20 || true; fi
  xmpp_stop_pid "$WRAPPER" ejabberdctl 5 || true
  rm -f "$DIR/server.pid" "$DIR/wrapper.pid"
  exit 1
}
trap 'fail "interrupted"' INT TERM
trap 'fail "unexpected error (line $LINENO)"' ERR

rc=0
xmpp_wait_port "$PORT" "$WRAPPER" "$TIMEOUT" || rc=$?
[ $rc -eq 0 ] || fail "ejabberd did not come up on 127.0.0.1:$PORT ($([ $rc = 2 ] && echo 'it exited' || echo "timeout ${TIMEOUT}s"))"
PID=$(cat "$DIR/server.pid" 2>/dev/null || true)
[[ $PID =~ ^[0-9]+$ ]] && xmpp_alive "$PID" || fail "ejabberd wrote no valid PID to $DIR/server.pid"
xmpp_cmdline "$PID" | grep -q "beam.*${NODE%@*}" || fail "PID $PID in $DIR/server.pid is not the beam of node $NODE"
xmpp_port_owned_by "$PORT" "$PID" || fail "port $PORT is held by another process, not by ejabberd $PID (free-port race?)"

for spec in "$@"; do
  xmpp_parse_user "$spec" "$PASS"
  out=$("$DIR/ctl" register "$U" "$DOMAIN" "$P" 2>&1 </dev/null) || {
    [[ $out == *"already registered"* ]] || fail "ejabberdctl register $U@$DOMAIN failed: $out"
    # change_password lives in mod_admin_extra (not loaded here): re-create the account instead.
    out=$("$DIR/ctl" unregister "$U" "$DOMAIN" 2>&1 </dev/null && "$DIR/ctl" register "$U" "$DOMAIN" "$P" 2>&1 </dev/null) ||
      fail "could not reset the password of $U@$DOMAIN: $out"
  }
done
trap - ERR INT TERM

if [ -n "$EPMD_PORT" ]; then
  DIST_ENV="EJABBERD_EPMD_PORT=$EPMD_PORT" DIST_LOG="epmd 127.0.0.1:$EPMD_PORT"
else
  DIST_ENV="EJABBERD_DIST_PORT=$DPORT" DIST_LOG="dist 127.0.0.1:$DPORT"
fi
xmpp_write_env "$DIR" ejabberd "$PORT" "$DOMAIN" "$PID" "$CAFILE" "XMPP_TLS=$TLS" \
  "EJABBERD_NODE=$NODE" "$DIST_ENV" "EJABBERD_CTL=$DIR/ctl"
xmpp_log "ejabberd up: pid $PID (node $NODE, $DIST_LOG), c2s 127.0.0.1:$PORT, domain $DOMAIN, tls $TLS, users: ${*%%:*}, dir $DIR"
echo "$PID"

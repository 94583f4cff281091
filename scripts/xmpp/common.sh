# shellcheck shell=bash
# Shared helpers for scripts/xmpp/*-up.sh and *-down.sh. Source it; do not run it.
#
# Everything here works on loopback only and signals processes only by an explicit PID whose
# command line has been checked, never by name.

xmpp_log() { echo "$*" >&2; }
xmpp_die() { echo "ERROR: $*" >&2; exit 1; }

# xmpp_check_port PORT: PORT must be 0 (= pick a free one) or 1..65535.
xmpp_check_port() {
  [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -le 65535 ] || xmpp_die "PORT must be 0 (free port) or 1-65535, not '$1'"
}

# xmpp_check_domain DOMAIN: a plain DNS name (it is written into Lua/YAML configs and a cert).
xmpp_check_domain() {
  [[ $1 =~ ^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$ ]] ||
    xmpp_die "XMPP_DOMAIN '$1' is not a plain DNS name"
}

# xmpp_check_tls MODE: optional | required | off.
xmpp_check_tls() {
  case $1 in optional | required | off) ;; *) xmpp_die "XMPP_TLS must be optional|required|off, not '$1'" ;; esac
}

# xmpp_check_number NAME VALUE: VALUE must be a non-negative integer.
xmpp_check_number() {
  [[ $2 =~ ^[0-9]+$ ]] || xmpp_die "$1 must be a non-negative integer, not '$2'"
}

# xmpp_free_port: print a TCP port that is free on 127.0.0.1 right now (the kernel picks it).
# There is a small race until the server binds it; the up scripts detect it (xmpp_port_owned_by).
xmpp_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# xmpp_port_listening PORT: true if some socket LISTENs on PORT (any address).
xmpp_port_listening() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnH "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# xmpp_port_owned_by PORT PID: false if `ss -p` shows that PORT's listener belongs to another
# process (a free-port race with a parallel test). True when ss cannot tell.
xmpp_port_owned_by() {
  command -v ss >/dev/null 2>&1 || return 0
  local out
  out=$(ss -ltnpH "sport = :$1" 2>/dev/null)
  [[ $out == *pid=* ]] || return 0
  [[ $out == *"pid=$2,"* ]]
}

# xmpp_alive PID: true if PID exists and is not a zombie (a PID 1 that is not an init system may
# reap orphans late, and a zombie has exited already).
xmpp_alive() {
  local st
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# xmpp_cmdline PID: the command line of PID, NULs turned into spaces.
xmpp_cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null; }

# xmpp_wait_port PORT PID TIMEOUT_S: wait until PORT listens. Returns 2 as soon as PID is gone,
# 1 on timeout.
xmpp_wait_port() {
  local port=$1 pid=$2 timeout=${3:-30} i
  for ((i = 0; i < timeout * 10; i++)); do
    xmpp_port_listening "$port" && return 0
    if [ -n "$pid" ] && ! xmpp_alive "$pid"; then return 2; fi
    sleep 0.1
  done
  return 1
}

# xmpp_stop_pid PID CMDLINE_REGEX [TIMEOUT_S]: SIGTERM, wait, SIGKILL after TIMEOUT_S (default 15).
# Signals PID only if its command line still matches CMDLINE_REGEX (guards against a recycled PID).
# Returns 0 once PID is gone (or was never ours), 1 if it survived even SIGKILL.
xmpp_stop_pid() {
  local pid=$1 re=$2 timeout=${3:-15} i
  [ -n "$pid" ] || return 0
  xmpp_alive "$pid" || return 0
  if ! xmpp_cmdline "$pid" | grep -Eq -- "$re"; then
    xmpp_log "WARN: PID $pid is not a '$re' process (any more); not touching it"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    xmpp_alive "$pid" || return 0
    sleep 0.1
  done
  xmpp_log "WARN: PID $pid did not exit ${timeout}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    xmpp_alive "$pid" || return 0
    sleep 0.1
  done
  xmpp_log "ERROR: PID $pid is still alive after SIGKILL"
  return 1
}

# xmpp_check_dir_free DIR DOWN_SCRIPT: refuse to reuse DIR while its server still runs.
xmpp_check_dir_free() {
  local pid
  [ -s "$1/server.pid" ] || return 0
  pid=$(cat "$1/server.pid")
  if xmpp_alive "$pid"; then
    xmpp_die "the server of $1 is still running (PID $pid); stop it first: $2 $1"
  fi
}

# xmpp_gen_cert DIR DOMAIN: self-signed RSA-2048 certificate DIR/DOMAIN.crt + DIR/DOMAIN.key
# (CN and SAN = DOMAIN and *.DOMAIN, 10 years), plus DIR/DOMAIN.pem = both (ejabberd wants one
# file). An existing pair for DOMAIN is reused, so clients that pinned XMPP_CAFILE keep working.
xmpp_gen_cert() {
  local dir=$1 domain=$2
  command -v openssl >/dev/null || xmpp_die "openssl is not installed (scripts/install-deps.sh)"
  mkdir -p "$dir"
  if [ ! -s "$dir/$domain.crt" ] || [ ! -s "$dir/$domain.key" ]; then
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$domain" \
      -addext "subjectAltName=DNS:$domain,DNS:*.$domain" \
      -keyout "$dir/$domain.key" -out "$dir/$domain.crt" >/dev/null 2>&1) ||
      xmpp_die "openssl could not create a certificate in $dir"
    chmod 644 "$dir/$domain.crt"
  fi
  (umask 077 && cat "$dir/$domain.crt" "$dir/$domain.key" >"$dir/$domain.pem")
}

# xmpp_parse_user SPEC DEFAULT_PASSWORD: sets U and P from "name:password" or "name".
xmpp_parse_user() {
  U=${1%%:*}
  if [[ $1 == *:* ]]; then P=${1#*:}; else P=$2; fi
  [[ $U =~ ^[A-Za-z0-9._-]+$ ]] || xmpp_die "user name '$U' must match [A-Za-z0-9._-]+"
  [ -n "$P" ] || xmpp_die "empty password for user '$U'"
}

# xmpp_env_line NAME VALUE: NAME=VALUE, the value bare when it is plain (so that other languages
# can read the file by splitting at the first '='), shell-quoted otherwise (e.g. a DIR with spaces).
xmpp_env_line() {
  if [[ $2 =~ ^[A-Za-z0-9/._+:@,-]*$ ]]; then printf '%s=%s\n' "$1" "$2"; else printf '%s=%q\n' "$1" "$2"; fi
}

# xmpp_write_env DIR SERVER PORT DOMAIN PID CAFILE [NAME=VALUE ...]: writes DIR/env atomically:
# KEY=VALUE lines that bash can source; no comments, no blank lines.
xmpp_write_env() {
  local dir=$1 kv
  {
    xmpp_env_line XMPP_SERVER "$2"
    xmpp_env_line XMPP_HOST 127.0.0.1
    xmpp_env_line XMPP_PORT "$3"
    xmpp_env_line XMPP_DOMAIN "$4"
    xmpp_env_line XMPP_PID "$5"
    xmpp_env_line XMPP_CAFILE "$6"
    xmpp_env_line XMPP_DIR "$dir"
    shift 6
    for kv in "$@"; do xmpp_env_line "${kv%%=*}" "${kv#*=}"; done
  } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
}

# xmpp_close_inherited_fds: close every fd above 2 of the current shell. Run it in the subshell
# that execs a server, so that a long-lived server never holds a socket or pipe of whoever called
# the up script (a test runner reading the script's output until EOF, for example).
xmpp_close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    [[ $fd =~ ^[0-9]+$ ]] && [ "$fd" -gt 2 ] || continue
    eval "exec $fd>&-" 2>/dev/null || true
  done
}

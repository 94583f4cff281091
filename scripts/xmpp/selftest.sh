#!/usr/bin/env bash
# selftest.sh [prosody] [ejabberd]   (default: both)
#
# End-to-end check of the up/down scripts: for each server and each XMPP_TLS mode it starts a
# private instance on a free loopback port, checks stdout (= PID only), DIR/env, the listeners
# (127.0.0.1 only, owned by the server), logs in with xmpp-probe.py (stdlib only; STARTTLS with
# certificate verification against XMPP_CAFILE, or plaintext), checks that bad logins fail, stops
# it and checks that no process of that instance is left. Takes ~5 s (Prosody) + ~30 s (ejabberd).
# Ends with "N passed, N failed"; exit status 0 only if nothing failed.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"
PROBE=(python3 "$HERE/xmpp-probe.py" --timeout 10)
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(prosody ejabberd)
passed=0 failed=0
WORK=$(mktemp -d /tmp/xmpp-selftest.XXXXXX)
CURRENT=

ok() { passed=$((passed + 1)); echo "  ok   $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
check_not() {
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then bad "$d"; else ok "$d"; fi
}
cleanup() { [ -z "$CURRENT" ] || "$HERE/${CURRENT%%:*}-down.sh" "${CURRENT#*:}" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

listening_owned() { xmpp_port_listening "$1" && xmpp_port_owned_by "$1" "$2"; }

# alive processes (not zombies) whose command line mentions DIR
leftovers() {
  local p out=
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] && continue
    xmpp_cmdline "$p" | grep -qF -- "$1" && xmpp_alive "$p" && out="$out $p"
  done
  echo "$out"
}

one() { # one SERVER TLS DOMAIN
  local server=$1 tls=$2 domain=$3 dir pid out
  dir=$WORK/$server-$tls
  echo "== $server, XMPP_TLS=$tls, XMPP_DOMAIN=$domain"
  local t0=$SECONDS
  out=$(XMPP_TLS=$tls XMPP_DOMAIN=$domain XMPP_PASSWORD=pw-default \
    "$HERE/$server-up.sh" "$dir" 0 bench-a bench-b 'carol:c:olon pw' 2>"$WORK/up.err")
  local rc=$?
  CURRENT=$server:$dir
  if [ $rc -ne 0 ]; then bad "$server-up.sh exits 0 (rc=$rc): $(tail -n 5 "$WORK/up.err")"; return; fi
  ok "$server-up.sh exits 0 ($((SECONDS - t0)) s)"
  if [[ $out =~ ^[0-9]+$ ]]; then ok "stdout is only the PID ($out)"; else bad "stdout is only the PID: '$out'"; return; fi
  pid=$out
  # shellcheck disable=SC1091
  . "$dir/env"
  check "DIR/env: XMPP_SERVER/HOST/DOMAIN/PID/DIR" test "$XMPP_SERVER:$XMPP_HOST:$XMPP_DOMAIN:$XMPP_PID:$XMPP_DIR" = "$server:127.0.0.1:$domain:$pid:$dir"
  check "server PID is alive" xmpp_alive "$pid"
  check "XMPP_PORT listens, owned by the server" listening_owned "$XMPP_PORT" "$pid"
  local listeners
  listeners=$(ss -ltnpH 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | sort | tr '\n' ' ')
  if [ -n "$listeners" ] && ! grep -qv '^127\.0\.0\.1:' <<<"$(tr ' ' '\n' <<<"$listeners" | grep .)"; then
    ok "all listeners on 127.0.0.1 ($listeners)"
  else
    bad "all listeners on 127.0.0.1 ($listeners)"
  fi
  case $tls in
    off)
      check "XMPP_CAFILE empty" test -z "$XMPP_CAFILE"
      check "plaintext login bench-a (default password)" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --tls none --user bench-a --password pw-default
      check_not "STARTTLS not offered" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --tls starttls
      ;;
    optional | required)
      check "XMPP_CAFILE has SAN DNS:$domain" bash -c "openssl x509 -in '$XMPP_CAFILE' -noout -ext subjectAltName | grep -q 'DNS:$domain'"
      check "STARTTLS + verified cert + login bench-b" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --cafile "$XMPP_CAFILE" --user bench-b --password pw-default
      check "STARTTLS login carol (password with ':' and ' ')" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --cafile "$XMPP_CAFILE" --user carol --password 'c:olon pw'
      check_not "wrong password refused" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --user bench-a --password nope
      check_not "cert does not verify against another CA" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --cafile "$OTHER_CA/$domain.crt"
      if [ "$tls" = optional ]; then
        check "plaintext login allowed" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --tls none --user bench-a --password pw-default
      else
        check_not "plaintext login refused" "${PROBE[@]}" --port "$XMPP_PORT" --domain "$domain" --tls none --user bench-a --password pw-default
        check "features say <starttls><required/>" bash -c "${PROBE[*]} --port $XMPP_PORT --domain $domain | grep -q '\"starttls_required\": true'"
      fi
      ;;
  esac
  check_not "second up on the same DIR is refused" "$HERE/$server-up.sh" "$dir" 0
  t0=$SECONDS
  check "$server-down.sh exits 0" "$HERE/$server-down.sh" "$dir"
  echo "       (down took $((SECONDS - t0)) s)"
  CURRENT=
  check_not "server PID gone" xmpp_alive "$pid"
  check_not "port $XMPP_PORT closed" xmpp_port_listening "$XMPP_PORT"
  local left; left=$(leftovers "$dir")
  if [ -z "$left" ]; then ok "no process of $dir left"; else bad "processes of $dir left:$left"; ps -o pid,stat,args -p "${left// /,}" | cut -c1-160; fi
  check "down --purge on a stopped DIR removes it" bash -c "'$HERE/$server-down.sh' '$dir' --purge && test ! -e '$dir'"
}

OTHER_CA=$WORK/other-ca   # an unrelated self-signed cert per domain: verification must fail with it
xmpp_gen_cert "$OTHER_CA" localhost
xmpp_gen_cert "$OTHER_CA" vertebra.test

for s in "${SERVERS[@]}"; do
  case $s in prosody | ejabberd) ;; *) echo "unknown server '$s' (prosody|ejabberd)" >&2; exit 2 ;; esac
  one "$s" optional localhost
  one "$s" required vertebra.test
  one "$s" off localhost
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

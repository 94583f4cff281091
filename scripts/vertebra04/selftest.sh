#!/usr/bin/env bash
# selftest.sh: peer.py against itself through a private Prosody (STARTTLS, verified certificate).
# Starts Prosody with users perf and req, runs `peer.py perform` as perf@D/p, then a series of
# `peer.py request` / `peer.py poke` runs, and checks exit codes and the JSON lines they print.
# Always stops Prosody (prosody-down.sh --purge) and the performer (by its PID) on exit.
# Exit status: 0 all checks passed, 1 otherwise. ~15 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XMPP=$HERE/../xmpp
PEER=$HERE/peer.py

D=$(mktemp -d)
PERF_PID=
cleanup() {
  [ -n "$PERF_PID" ] && kill "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null || true
  "$XMPP/prosody-down.sh" "$D" --purge >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$XMPP/prosody-up.sh" "$D" 0 perf req >/dev/null
# shellcheck disable=SC1091
. "$D/env"
printf '%s\n' "${XMPP_PASSWORD:-secret}" >"$D/password"
DOM=$XMPP_DOMAIN
CONN=(--port "$XMPP_PORT" --cafile "$XMPP_CAFILE" --password-file "$D/password")
PERF=perf@$DOM/p

FAILS=0 PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok   $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }

# jcheck FILE PYEXPR: evaluate PYEXPR over the JSON lines of FILE. Names available:
#   ev (all events), kinds (their "event" names in order), done (the last "done" event or {}),
#   by(name) (the events with that name).
jcheck() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
kinds = [e["event"] for e in ev]
done = next((e for e in reversed(ev) if e["event"] == "done"), {})
by = lambda name: [e for e in ev if e["event"] == name]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# t NAME RC PYEXPR -- peer.py ARGS...: run, compare the exit code, then the check.
t() {
  local name=$1 want=$2 expr=$3
  shift 4
  local out=$D/$name.out rc=0
  "$PEER" "$@" >"$out" 2>"$D/$name.err" || rc=$?
  if [ "$rc" != "$want" ]; then
    bad "$name: exit $rc, expected $want"; sed 's/^/     | /' "$out" "$D/$name.err"; return
  fi
  if jcheck "$out" "$expr"; then ok "$name"; else bad "$name: check failed: $expr"; sed 's/^/     | /' "$out"; fi
}

# wait_for FILE PYEXPR SECONDS
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    jcheck "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

"$PEER" perform "${CONN[@]}" --jid "$PERF" >"$D/perf.out" 2>"$D/perf.err" &
PERF_PID=$!
wait_for "$D/perf.out" "by('ready') and by('ready')[0]['tls']" 20 || { bad "performer not ready"; cat "$D/perf.err"; exit 1; }
ok "performer ready as $PERF over verified STARTTLS"

REQ=(request "${CONN[@]}" --jid "req@$DOM/r" --to "$PERF")

t upcase 0 "done['state']=='done' and done['data']==[{'response':'HELLO WORLD'}] and by('data')[0]['types']=={'response':'string'} and kinds[1:]==['op','accepted','ack','data','final','done']" \
  -- "${REQ[@]}" --op /test/upcase "text=hello world"
t count3 0 "done['state']=='done' and done['data']==[{'index':k} for k in range(3)] and all(e['types']=={'index':'i4'} for e in by('data'))" \
  -- "${REQ[@]}" --op /test/count n=i4:3
t count0-scope 0 "done['state']=='done' and done['data']==[] and kinds[1:]==['op','accepted','ack','final','done']" \
  -- "${REQ[@]}" --op /test/count n=i4:0 --scope single
t count-integer 0 "done['data']==[{'index':0},{'index':1}]" \
  -- "${REQ[@]}" --op /test/count n=integer:2
t fail 2 "done['state']=='failed' and done['error']=={'type':'fatal','message':'failed on purpose'} and kinds[1:]==['op','accepted','ack','error','done']" \
  -- "${REQ[@]}" --op /test/fail
t unknown-op 2 "done['condition']=='feature-not-implemented' and done['error_type']=='cancel' and 'accepted' not in kinds" \
  -- "${REQ[@]}" --op /test/nope
t missing-arg 2 "done['condition']=='bad-request'" -- "${REQ[@]}" --op /test/upcase
t wrong-type-arg 2 "done['condition']=='bad-request'" -- "${REQ[@]}" --op /test/count n=abc
t repeated-op 0 "len(by('accepted'))==2 and len({e['token'] for e in by('accepted')})==1 and len(by('ack'))==1 and done['data']==[{'response':'X'}]" \
  -- "${REQ[@]}" --op /test/upcase text=x --repeat-op
TOK=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["token"])' "$D/repeated-op.out")
if jcheck "$D/perf.out" "len([e for e in by('op') if e['token']=='$TOK'])==1 and [e['token'] for e in by('op-repeat')]==['$TOK'] and len([e for e in by('final') if e['token']=='$TOK'])==1"; then
  ok "repeated-op: performer ran it once and answered the repeat with the same A:B"
else bad "repeated-op: performer side"; fi
t cancel 2 "done['error']['type']=='cancel' and len(done['data'])==2 and by('cancel-accepted') and kinds.index('cancel')<kinds.index('error')" \
  -- "${REQ[@]}" --op /test/count n=i4:50 delay_ms=i4:100 --cancel-after 2
t timeout 3 "done['reason']=='timeout' and by('timeout')" \
  -- "${REQ[@]}" --op /test/count n=i4:3 delay_ms=i4:1500 --timeout 2.5
TOK=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["token"])' "$D/timeout.out")
if wait_for "$D/perf.out" "[e for e in by('iq-failed') if e['token']=='$TOK' and e['condition']=='service-unavailable']" 10; then
  ok "timeout: performer saw service-unavailable once the requester was gone"
else bad "timeout: performer side"; fi

# A stranger (another full JID) sends <data> for a live attempt: item-not-found, attempt unharmed.
"$PEER" request "${CONN[@]}" --jid "req@$DOM/r2" --to "$PERF" --op /test/count n=i4:3 delay_ms=i4:800 >"$D/live.out" 2>"$D/live.err" &
LIVE=$!
if wait_for "$D/live.out" "by('accepted')" 10; then
  TOK=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "accepted" in l][0]["token"])' "$D/live.out")
  t stranger-data 2 "by('answer')[0]['condition']=='item-not-found'" \
    -- poke "${CONN[@]}" --jid "perf@$DOM/intruder" --to "req@$DOM/r2" --xml "<data token='$TOK'><i4 name='index'>9</i4></data>"
  t stranger-cancel 2 "by('answer')[0]['condition']=='item-not-found'" \
    -- poke "${CONN[@]}" --jid "req@$DOM/intruder" --to "$PERF" --xml "<cancel token='$TOK'/>"
else bad "live requester not accepted"; fi
rc=0; wait "$LIVE" || rc=$?
if [ $rc = 0 ] && jcheck "$D/live.out" "done['data']==[{'index':k} for k in range(3)] and [e['from'] for e in by('rejected')]==['perf@$DOM/intruder']"; then
  ok "live attempt unharmed by the stranger"
else bad "live attempt (exit $rc)"; sed 's/^/     | /' "$D/live.out"; fi

# Raw stanzas the performer must refuse.
POKE=(poke "${CONN[@]}" --jid "req@$DOM/raw" --to "$PERF")
A=0123456789abcdef0123456789abcdef
t two-children 2 "by('answer')[0]['condition']=='bad-request'" -- "${POKE[@]}" --xml "<op type='/test/fail' token='$A'/><cancel token='$A:1'/>"
t short-token 2 "by('answer')[0]['condition']=='bad-request'" -- "${POKE[@]}" --xml "<op type='/test/upcase' token='abc'><string name='text'>x</string></op>"
t bad-scope 2 "by('answer')[0]['condition']=='bad-request'" -- "${POKE[@]}" --xml "<op type='/test/upcase' token='$A' scope='some'><string name='text'>x</string></op>"
t cancel-unknown 2 "by('answer')[0]['condition']=='item-not-found'" -- "${POKE[@]}" --xml "<cancel token='$A:ff'/>"
t ack-to-performer 2 "by('answer')[0]['condition']=='item-not-found'" -- "${POKE[@]}" --xml "<ack token='$A:ff'/>"
t bad-value 2 "by('answer')[0]['condition']=='bad-request'" -- "${POKE[@]}" --xml "<op type='/test/count' token='$A'><i4 name='n'>x1</i4></op>"
t op-result-shape 0 "[(c['ns'],c['name'],c['attrs']['token'][:33]) for c in by('answer')[0]['children']]==[('http://xmlschema.engineyard.com/agent/api','op','$A:')] and len(by('answer')[0]['children'][0]['attrs']['token'])>33" \
  -- "${POKE[@]}" --xml "<op type='/test/count' token='$A'><int name='n'>0</int></op>"

# TLS verification is real: without --cafile the self-signed certificate is refused (exit 1).
t no-cafile 1 "not ev" -- request --port "$XMPP_PORT" --password-file "$D/password" --jid "req@$DOM/r" --to "$PERF" --op /test/fail
grep -q "TLS certificate not valid" "$D/no-cafile.err" && ok "no-cafile: refused for the certificate" || bad "no-cafile: $(cat "$D/no-cafile.err")"

kill -TERM "$PERF_PID"
rc=0; wait "$PERF_PID" || rc=$?
PERF_PID=
if [ $rc = 0 ] && jcheck "$D/perf.out" "kinds[-1]=='stopped'"; then ok "performer stopped on SIGTERM"; else bad "performer exit $rc"; fi

echo "selftest: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]

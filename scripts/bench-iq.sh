#!/usr/bin/env bash
# bench-iq.sh [N] [SERVERS...]      e.g. scripts/bench-iq.sh 5000 prosody ejabberd
#
# Natter against slixmpp, same servers, same run: for each server (default: prosody ejabberd)
# starts a private instance on a free loopback port (users bench-a and bench-b), then for a
# plaintext stream and for STARTTLS (certificate verified) runs
#   - `vertebra bench iq` (two Natter clients, release build), and
#   - scripts/xmpp/slixmpp_iq_bench.py (two slixmpp clients),
# each with N IQs sequentially and N with 64 in flight (default N=5000), alternating the two
# clients, and prints a table with the ratios. Raw JSON lines are kept in bench-results/iq-*.jsonl.
# Builds the release binary first if it is missing (several minutes from clean).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XMPP="$ROOT/scripts/xmpp"
N=${1:-5000}
shift || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(prosody ejabberd)

BIN="$ROOT/.build/release/vertebra"
if [ ! -x "$BIN" ]; then
  echo "bench-iq: building the release binary (swift build -c release)..." >&2
  (cd "$ROOT" && swift build -c release --product vertebra >&2) || exit 1
fi
mkdir -p "$ROOT/bench-results"
OUT="$ROOT/bench-results/iq-$(date +%Y%m%d-%H%M%S).jsonl"
DIRS=()
cleanup() { local d; for d in "${DIRS[@]}"; do "$XMPP/${d%%:*}-down.sh" "${d#*:}" --purge >/dev/null 2>&1; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
for server in "${SERVERS[@]}"; do
  case $server in prosody | ejabberd | router) ;; *) echo "unknown server '$server' (prosody|ejabberd|router)" >&2; exit 2 ;; esac
  dir=$(mktemp -d "/tmp/vertebra-bench-$server.XXXXXX")
  DIRS+=("$server:$dir")
  if ! XMPP_PASSWORD=bench-secret "$XMPP/$server-up.sh" "$dir" 0 bench-a bench-b >/dev/null; then
    echo "bench-iq: $server did not start" >&2
    status=1
    continue
  fi
  # shellcheck disable=SC1091
  . "$dir/env"
  umask 077
  echo bench-secret >"$dir/password"
  for tls in none starttls; do
    ca=()
    [ "$tls" = starttls ] && ca=(--cafile "$XMPP_CAFILE")
    echo "bench-iq: $server, tls=$tls, natter" >&2
    "$BIN" bench iq --port "$XMPP_PORT" --domain "$XMPP_DOMAIN" --server "$server" --password-file "$dir/password" \
      --tls "$tls" "${ca[@]}" -n "$N" 2>/dev/null | tee -a "$OUT" >/dev/null || status=1
    echo "bench-iq: $server, tls=$tls, slixmpp" >&2
    python3 "$XMPP/slixmpp_iq_bench.py" --env "$dir/env" --password-file "$dir/password" --tls "$tls" -n "$N" \
      2>/dev/null | tee -a "$OUT" >/dev/null || status=1
  done
  "$XMPP/$server-down.sh" "$dir" --purge >/dev/null 2>&1 || status=1
done
python3 "$ROOT/scripts/bench-iq-summary.py" "$OUT"
echo "raw results: $OUT"
exit $status

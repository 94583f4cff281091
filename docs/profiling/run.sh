#!/usr/bin/env bash
# docs/profiling/run.sh [LEVELS] [N]
#
# Per-stage latency of the job path. Applies latency-probes.patch to the working tree (it must
# apply cleanly; it is reversed on exit, even on failure), builds the release binary, runs
# `vertebra bench jobs` through a private embedded router with the stage marks on, and prints
# latency-breakdown.py's tables. LEVELS: jobs in flight (1 by default: the stage table needs
# jobs one at a time; at 256 only the journal load table means something). An incremental
# release build and a minute or two of bench.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LEVELS=${1:-1} N=${2:-2000}
WORK=$(mktemp -d /tmp/vertebra-profile.XXXXXX)
git -C "$ROOT" apply --check "$HERE/latency-probes.patch" ||
  { echo "latency-probes.patch does not apply to this tree; refresh it (see docs/profiling/README.md)" >&2; exit 2; }
cleanup() {
  "$ROOT/scripts/xmpp/router-down.sh" "$WORK/router" --purge >/dev/null 2>&1 || true
  git -C "$ROOT" apply -R "$HERE/latency-probes.patch" || echo "could not reverse latency-probes.patch" >&2
}
git -C "$ROOT" apply "$HERE/latency-probes.patch"
trap cleanup EXIT
(cd "$ROOT" && swift build -c release --product vertebra 2>&1 | tail -1)
BIN=$ROOT/.build/release/vertebra
mkdir -p "$WORK/marks"
VERTEBRA_BIN="$BIN" XMPP_PASSWORD=profile-secret XMPP_LOG_LEVEL=warning \
  "$ROOT/scripts/xmpp/router-up.sh" "$WORK/router" 0 coordinator w1 w2 >/dev/null
. "$WORK/router/env"
(umask 077; echo profile-secret > "$WORK/password")
VERTEBRA_PROBE="$WORK/marks" "$BIN" bench jobs --server "127.0.0.1:$XMPP_PORT" --domain "$XMPP_DOMAIN" \
  --password-file "$WORK/password" --ca-file "$XMPP_CAFILE" --label router -n "$N" --in-flight "$LEVELS" \
  --durability normal
python3 "$HERE/latency-breakdown.py" "$WORK/marks"
echo "marks kept in $WORK/marks; the release binary now has no marks only after the next release build"

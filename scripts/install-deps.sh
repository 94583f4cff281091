#!/usr/bin/env bash
# Installs the system packages Vertebra builds and tests with (Debian/Ubuntu), if missing.
# Usage: scripts/install-deps.sh        (uses sudo when not root)
set -euo pipefail

packages=(
  pkg-config       # lets SwiftPM find the system libraries below
  libexpat1-dev    # CExpat: the streaming XML parser
  libsqlite3-dev   # CSQLite: the exchange journal
  libxml2-utils    # xmllint: tests validate emitted payloads against Schemas/*.xsd
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-deps: missing ${missing[*]}; install them with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

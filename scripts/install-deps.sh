#!/usr/bin/env bash
# Installs what Vertebra builds and tests with (Debian/Ubuntu), only what is missing:
#   - system packages: the C libraries and tools of the build and tests, plus real XMPP servers
#     (Prosody, ejabberd) that scripts/xmpp/ runs privately on loopback for interop tests and
#     benchmarks, openssl (their certificates) and iproute2 (`ss`, to watch their ports);
#   - slixmpp from PyPI (the Python XMPP client of scripts/xmpp/slixmpp_iq_bench.py), only if
#     `python3 -c 'import slixmpp'` fails.
# Usage: scripts/install-deps.sh        (uses sudo when not root)
#
# System daemons: on a machine whose init system lets package scripts start services (systemd
# without a denying /usr/sbin/policy-rc.d, or sysvinit), installing prosody/ejabberd starts
# system-wide servers on 0.0.0.0:5222 and more (ejabberd: 5223, 5269, 5280, 5443, 1883, and
# epmd on 4369). Vertebra never uses those: scripts/xmpp/*-up.sh run private instances. So
# right after installing them, this script stops, and on systemd disables, any such daemon that
# ITS OWN install just started. Services of packages that were installed before are left alone.
# Set VERTEBRA_KEEP_XMPP_DAEMONS=1 to leave even those running.
set -euo pipefail

packages=(
  pkg-config       # lets SwiftPM find the system libraries below
  libexpat1-dev    # CExpat: the streaming XML parser
  libsqlite3-dev   # CSQLite: the exchange journal
  libssl-dev       # CCrypto: the system libcrypto for SCRAM (hashes, HMAC, PBKDF2)
  libxml2-utils    # xmllint: tests validate emitted payloads against Schemas/*.xsd
  prosody          # XMPP server for interop tests (scripts/xmpp/prosody-up.sh)
  ejabberd         # XMPP server for interop tests (scripts/xmpp/ejabberd-up.sh)
  openssl          # self-signed certificates for those servers
  iproute2         # ss: the scripts wait for and check the servers' listening ports
  util-linux       # setpriv: a permission test runs a command as nobody
  chromium         # headless browser of the web view test (scripts/web-browser-test.py)
)
command -v python3 >/dev/null || packages+=(python3) # scripts/test-summary.py, scripts/xmpp/*.py
# pip only when this python3 has none (a pyenv/venv python3 brings its own)
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  packages+=(python3-pip)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done

# Which daemon-bearing packages are new in this run (only their services may be stopped below).
new_services=()
if [ ${#missing[@]} -gt 0 ]; then
  for package in "${missing[@]}"; do
    case $package in prosody | ejabberd) new_services+=("$package") ;; esac
  done
  # ejabberd pulls in erlang-base, whose epmd.socket/epmd.service systemd would start
  if [[ " ${missing[*]} " == *" ejabberd "* ]] && ! installed erlang-base; then
    new_services+=(epmd)
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
elif ! command -v apt-get >/dev/null; then
  echo "install-deps: missing ${missing[*]}; install them with your package manager" >&2
  exit 1
else
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- system XMPP daemons started by the install above -----------------------------------------
stop_new_daemons() {
  local svc unit pidfile stopped=()
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for svc in "${new_services[@]}"; do
      for unit in "$svc.service" "$svc.socket"; do
        systemctl list-unit-files "$unit" >/dev/null 2>&1 || continue
        if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
          echo "install-deps: the install enabled/started the system unit $unit; stopping and disabling it (Vertebra runs private servers; re-enable with: systemctl enable --now $unit)"
          $sudo systemctl disable --now --quiet "$unit" || echo "install-deps: WARNING: could not stop $unit" >&2
          stopped+=("$unit")
        fi
      done
    done
  else
    # sysvinit & co: Debian's daemons run as their own system user and write these PID files.
    # (Not `/etc/init.d/ejabberd status`: its ctl VM would itself start a system epmd.)
    for svc in "${new_services[@]}"; do
      case $svc in prosody) pidfile=/run/prosody/prosody.pid ;; ejabberd) pidfile=/run/ejabberd/ejabberd.pid ;; *) continue ;; esac
      if { [ -s "$pidfile" ] && $sudo kill -0 "$(cat "$pidfile")" 2>/dev/null; } || pgrep -u "$svc" >/dev/null 2>&1; then
        echo "install-deps: the $svc package started its system daemon; stopping it (/etc/init.d/$svc stop)"
        $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || echo "install-deps: WARNING: could not stop the $svc daemon" >&2
        stopped+=("$svc")
      fi
    done
  fi
  if [ ${#stopped[@]} -eq 0 ]; then
    echo "install-deps: no system XMPP daemon was started by the install (${new_services[*]})"
  fi
  if command -v ss >/dev/null && ss -ltnH 'sport = :5222' | grep -q .; then
    echo "install-deps: WARNING: something still listens on port 5222 (a system XMPP server?);" \
      "scripts/xmpp/ use their own ports, so tests are not affected" >&2
  fi
}
if [ ${#new_services[@]} -gt 0 ] && [ "${VERTEBRA_KEEP_XMPP_DAEMONS:-0}" != 1 ]; then
  stop_new_daemons
fi

# --- slixmpp (PyPI) ----------------------------------------------------------------------------
SLIXMPP_SPEC=${SLIXMPP_SPEC:-slixmpp==1.17.0} # the version the benchmark baseline was measured with
if python3 -c 'import slixmpp' 2>/dev/null; then
  echo "install-deps: slixmpp $(python3 -c 'import slixmpp; print(slixmpp.__version__)') present"
else
  echo "install-deps: installing $SLIXMPP_SPEC from PyPI with $(python3 -m pip --version | cut -d' ' -f1-2) ($(command -v python3))"
  pip_args=(install --quiet --disable-pip-version-check)
  # not root: a per-user install for this python3 (sudo could pick another python3)
  if [ "$(id -u)" -eq 0 ]; then pip_args+=(--root-user-action=ignore); else pip_args+=(--user); fi
  if ! out=$(python3 -m pip "${pip_args[@]}" "$SLIXMPP_SPEC" 2>&1); then
    if [[ $out == *externally-managed-environment* ]]; then
      # Debian 12's system python3 is "externally managed" (PEP 668); slixmpp is not in Debian
      # at this version, so install it anyway, as Debian's pip allows with this flag.
      echo "install-deps: python3 is externally managed (PEP 668); retrying with --break-system-packages"
      python3 -m pip "${pip_args[@]}" --break-system-packages "$SLIXMPP_SPEC"
    else
      echo "$out" >&2
      echo "install-deps: pip install $SLIXMPP_SPEC failed" >&2
      exit 1
    fi
  fi
  python3 -c 'import slixmpp' || { echo "install-deps: slixmpp still not importable by $(command -v python3)" >&2; exit 1; }
  echo "install-deps: slixmpp $(python3 -c 'import slixmpp; print(slixmpp.__version__)') installed"
fi

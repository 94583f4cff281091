#!/usr/bin/env bash
# bench-venv.sh MODULES=SPEC...     e.g. scripts/bench-venv.sh 'celery,redis=celery[redis]>=5,<6'
#
# The private Python environment of the benchmark baselines (Celery, and matplotlib for the
# plots): makes sure the venv at ${CELERY_VENV:-$HOME/.cache/vertebra-bench/celery-venv} exists
# (created with the first python3 on PATH) and that, for each argument, every module of MODULES
# (comma separated) imports in it; if one does not, pip-installs SPEC (a pip requirement) there.
# Prints the venv's python on stdout; progress and errors on stderr.
set -uo pipefail
VENV=${CELERY_VENV:-$HOME/.cache/vertebra-bench/celery-venv}
PY="$VENV/bin/python"

if ! "$PY" -c 'import sys' 2>/dev/null; then
  # none yet, or its interpreter is gone (e.g. a removed pyenv version): make it anew
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "bench-venv: $VENV exists but is not a venv; remove it or set CELERY_VENV" >&2
    exit 1
  fi
  base=$(command -v python3) || { echo "bench-venv: no python3 on PATH (install python3 and python3-venv)" >&2; exit 1; }
  echo "bench-venv: creating the venv $VENV with $base ($("$base" --version 2>&1))..." >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! "$base" -m venv "$VENV" >&2; then
    echo "bench-venv: could not create the venv; on Debian's python3 install python3-venv" \
      "(apt-get install -y python3-venv), then run: $base -m venv $VENV" >&2
    exit 1
  fi
fi

for arg in "$@"; do
  modules=${arg%%=*}
  spec=${arg#*=}
  imports="import ${modules//,/, }"
  "$PY" -c "$imports" 2>/dev/null && continue
  echo "bench-venv: installing $spec into $VENV (pip)..." >&2
  if ! "$PY" -m pip install --quiet --disable-pip-version-check "$spec" >&2 || ! "$PY" -c "$imports"; then
    echo "bench-venv: pip could not install $spec; run by hand: $PY -m pip install '$spec'" >&2
    exit 1
  fi
done
echo "$PY"

#!/usr/bin/env bash
# Runs the Python end-to-end suite (tests/e2e) against an already built
# metanode-node binary. It never builds the Rust code: the caller does, so
# this script can run beside a cargo build without competing for the CPU.
#
# Binary: $METANODE_BIN, else ${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}/debug/metanode-node.
# Extra arguments are passed to pytest (e.g. -k transfer, -x).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
export METANODE_BIN="${METANODE_BIN:-$target_dir/debug/metanode-node}"
if [ ! -x "$METANODE_BIN" ]; then
    echo "e2e: node binary not found at $METANODE_BIN (build it first, or set METANODE_BIN)" >&2
    exit 1
fi

venv=.venv
req=tests/e2e/requirements.txt

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Debian's python3 ships without ensurepip unless python3-venv is installed:
# `venv` then fails after creating bin/python, leaving a venv without pip. So
# a venv counts as usable only if its pip runs, and a failed `venv` is
# retried once after installing python3-venv.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        echo "e2e: python3 -m venv failed; installing python3-venv"
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
fi

# pip resolving an unchanged, fully pinned set still takes seconds (and the
# network), so compare the installed versions with the pins first.
requirements_satisfied() {
    "$venv/bin/python" - "$req" <<'PY'
import re, sys
from importlib.metadata import PackageNotFoundError, version

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    try:
        if version(norm(name.strip())) != pinned.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if ! requirements_satisfied; then
    echo "e2e: installing $req into $venv"
    start=$EPOCHREALTIME
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "e2e: pip install took $(elapsed "$start")s"
fi

start=$EPOCHREALTIME
status=0
"$venv/bin/python" -m pytest -q tests/e2e "$@" || status=$?
echo "e2e: pytest took $(elapsed "$start")s"
exit "$status"

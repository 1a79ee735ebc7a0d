#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build MetaNode: clang and
# libclang (RocksDB's bindings), python3 and libfaketime (a test's clock),
# after checking for a Rust toolchain. The Python venv (scripts/e2e.sh) and the Docker engine
# (scripts/docker-daemon.sh) are set up by the scripts that need them.
# Idempotent; safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# libfaketime: the catch-up test runs a node whose clock is a minute behind.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need_apt+=(faketime)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi

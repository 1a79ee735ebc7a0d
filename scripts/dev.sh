#!/usr/bin/env bash
# Starts a local MetaNode dev chain (one validator, funded test accounts,
# JSON-RPC on 127.0.0.1:8545). Extra arguments go to metanode-node.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
cargo build -p metanode-node
exec "$CARGO_TARGET_DIR/debug/metanode-node" --dev "$@"

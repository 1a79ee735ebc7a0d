#!/usr/bin/env bash
# Runs the whole MetaNode test suite: formatting, lints, unit and
# integration tests (which start real nodes on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets

#!/usr/bin/env bash
# Docker network test: the compose file from `metanode-node testnet
# --validators 4 --full-nodes 1` runs on the Docker engine with the
# offline-built image; a transfer sent to the full node's published 8545 is
# finalized; one validator is cut off its network and reconnected, and
# catches up. Needs the e2e venv (scripts/e2e.sh makes it) for eth_account.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/docker-compose-install.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
BIN="$CARGO_TARGET_DIR/debug/metanode-node"
IMAGE="$(scripts/docker-image.sh "$BIN")"
PROJECT="metanode-testnet-$$"
out="$(mktemp -d)"
# A free range of 50 loopback ports for the published endpoints.
BASE="$(scripts/free-port-range.py 50)"
cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then docker-compose -p "$PROJECT" -f "$out/net/docker-compose.yml" logs --tail 40 || true; fi
    docker-compose -p "$PROJECT" -f "$out/net/docker-compose.yml" down -v -t 5 >/dev/null 2>&1 || true
    rm -rf "$out"
    exit "$status"
}
trap cleanup EXIT
"$BIN" testnet --validators 4 --full-nodes 1 --out "$out/net" --base-port "$BASE" --block-time 500ms --image "$IMAGE" >/dev/null
docker-compose -p "$PROJECT" -f "$out/net/docker-compose.yml" up -d
rpc() { echo "http://127.0.0.1:$((BASE + 10 * $1))"; }
.venv/bin/python tests/docker/testnet_check.py "$PROJECT" "$out/net/docker-compose.yml" \
    "$(rpc 4)" "$(rpc 0)" "$(rpc 1)" "$(rpc 2)" "$(rpc 3)"
echo "1 passed, 0 failed"

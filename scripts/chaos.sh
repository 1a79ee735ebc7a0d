#!/usr/bin/env bash
# Chaos run (issue 11): a `metanode-node testnet --validators 4 --full-nodes 1`
# network under docker-compose, ETH transfers from `metanode-load` for
# CHAOS_SECONDS, and a driver (tests/docker/chaos.py) that every 10-20 s
# SIGKILLs and restarts a validator, SIGSTOPs one for 5-15 s, cuts one off
# the compose network for 5-15 s, or restarts the full node; one at a time.
# At the end: no fork, every receipt the load tool saw final still there on
# every node, every node at the tip. Exits non-zero on any failed check.
# See docs/CHAOS.md.
#
#   CHAOS_SECONDS  how long to perturb (default 600; scripts/test.sh runs 120)
#   CHAOS_SEED     the driver's RNG seed (default: random, printed) to replay a run
#   CHAOS_RATE     transfers per second the load tool sends (default 100)
#   CHAOS_REPORT   also write the Markdown report to this file
#   CHAOS_KINDS    perturbations to draw from (default kill,stop,cut,restart)
#   CHAOS_KEEP=1   keep the work directory (logs, record) even when the run passes
#   BIN_DIR        where metanode-node and metanode-load are (default $CARGO_TARGET_DIR/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}"
BIN_DIR="${BIN_DIR:-$CARGO_TARGET_DIR/debug}"
NODE="$BIN_DIR/metanode-node"
LOAD="$BIN_DIR/metanode-load"
[ -x "$NODE" ] && [ -x "$LOAD" ] || { echo "chaos: no metanode-node and metanode-load in $BIN_DIR (cargo build --workspace --bins)" >&2; exit 1; }
SECS="${CHAOS_SECONDS:-600}"
SEED="${CHAOS_SEED:-$(python3 -c 'import random; print(random.randrange(1 << 31))')}"
RATE="${CHAOS_RATE:-100}"
echo "chaos: seed $SEED (replay with CHAOS_SEED=$SEED), ${SECS}s, $RATE tx/s, binaries from $BIN_DIR"

scripts/docker-compose-install.sh
# A tag of its own, so a concurrent docker test rebuilding metanode:local does not swap the binary.
IMAGE="$(scripts/docker-image.sh "$NODE" metanode-chaos:local)"
PROJECT="metanode-chaos-$$"
work="$(mktemp -d /tmp/metanode-chaos.XXXXXX)"
BASE="$(scripts/free-port-range.py 50)"
compose() { docker-compose -p "$PROJECT" -f "$work/net/docker-compose.yml" "$@"; }
cleanup() {
    status=$?
    compose logs --no-color >"$work/nodes.log" 2>&1 || true
    if [ "$status" -ne 0 ]; then compose logs --no-color --tail 30 || true; fi
    compose down -v -t 5 >/dev/null 2>&1 || true
    if [ "$status" -ne 0 ] || [ "${CHAOS_KEEP:-0}" = 1 ]; then
        echo "chaos: logs, load record and report kept in $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
"$NODE" testnet --validators 4 --full-nodes 1 --out "$work/net" --base-port "$BASE" --block-time 500ms --image "$IMAGE" >/dev/null
compose up -d
rpc() { echo "http://127.0.0.1:$((BASE + 10 * $1))"; }
# The load goes to the full node first and moves on to the validators when
# its endpoint fails or stops advancing.
endpoints="$(rpc 4),$(rpc 0),$(rpc 1),$(rpc 2),$(rpc 3)"
python3 tests/docker/chaos.py --project "$PROJECT" --compose "$work/net/docker-compose.yml" --base "$BASE" \
    --seconds "$SECS" --seed "$SEED" --record "$work/record.txt" --load-log "$work/load.log" --report "$work/report.md" \
    -- "$LOAD" --rpc "$endpoints" --tolerate-errors \
    transfers --senders 200 --seconds "$SECS" --rate "$RATE" --paced --batch 100 --in-flight 2000 --record "$work/record.txt"
if [ -n "${CHAOS_REPORT:-}" ]; then cp "$work/report.md" "$CHAOS_REPORT"; fi
echo "1 passed, 0 failed"

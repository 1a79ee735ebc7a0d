#!/usr/bin/env bash
# Benchmarks a 4-validator network on loopback with release binaries:
#   1. empty-block catch-up: validators run with a short block time, then a
#      fresh full node syncs the history (blocks/s);
#   2. load: metanode-load sends ETH transfers to validator-0 for 60 s
#      (finalized tx/s, submit-to-finalized p50/p99, RSS per validator);
#   3. history catch-up: a fresh full node syncs the loaded chain (blocks/s, tx/s).
# Build first: cargo build --release --workspace --bins
#   usage: scripts/bench-testnet.sh [SECONDS] [RATE] [IN_FLIGHT]
# PHASES (default "empty load") picks the phases; history catch-up follows load.
# PIN=1 runs the validators on CPU 0 and the syncing node on CPU 1, so the
# node under test has a core of its own as it would on its own machine
# (unpinned, it shares both cores with four validators making 100 blocks/s).
# SERVE_BLOCK_TIME (e.g. 1s) restarts the validators at that block time once
# the empty history is made, so the node catches up from a network running
# at a realistic pace instead of one still making 100 blocks/s beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD="${1:-60}"
RATE="${2:-3000}"
# Transactions in flight (submitted, not yet final): with a closed loop,
# latency = in flight / throughput, so this sets the latency being measured.
IN_FLIGHT="${3:-2500}"
# BIN_DIR runs other binaries (e.g. an older build, for an A/B comparison).
target="${BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/metanode-target}/release}"
NODE="$target/metanode-node"
LOAD="$target/metanode-load"
[ -x "$NODE" ] && [ -x "$LOAD" ] || { echo "bench: build release binaries first" >&2; exit 1; }
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_base() { scripts/free-port-range.py 60; }
height() {
    curl -s -X POST -H 'content-type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$1" \
        | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["result"],16))' 2>/dev/null || echo 0
}
PHASES="${PHASES:-empty load}"
pin() { # cpu -> command prefix
    if [ "${PIN:-0}" = 1 ]; then echo "taskset -c $1"; fi
}
start_node() { # dir logname [cpu [extra flags...]] -> pid
    local dir="$1" log="$2" cpu="${3:-0}"
    shift $(($# < 3 ? $# : 3))
    # Consensus driver at info: its "Starting new round" lines count round changes.
    RUST_LOG=warn,arc_malachitebft_core_consensus::handle::driver=info $(pin "$cpu") "$NODE" --datadir "$dir" "$@" >>"$work/$log.log" 2>&1 &
    pids+=("$!")
    echo "$!"
}
wait_height() { # url height timeout_s
    local deadline=$((SECONDS + $3))
    until [ "$(height "$1")" -ge "$2" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "bench: $1 did not reach $2" >&2; return 1; }
        sleep 0.05
    done
}
catch_up() { # net_dir base label
    local url="http://127.0.0.1:$(($2 + 50))"
    local tip; tip="$(height "http://127.0.0.1:$2")"
    local t0; t0="$(date +%s.%N)"
    start_node "$1/fullnode-1" "$3-late" 1 >/dev/null
    wait_height "$url" 1 60
    local tf; tf="$(date +%s.%N)"
    wait_height "$url" "$tip" 600
    local t1; t1="$(date +%s.%N)"
    python3 - "$t0" "$t1" "$tip" "$3" "$url" "$tf" <<'PY'
import json, sys, urllib.request
t0, t1, tip, label, url, tf = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6])
def call(m, p):
    r = urllib.request.Request(url, data=json.dumps({"jsonrpc":"2.0","id":1,"method":m,"params":p}).encode(), headers={"content-type":"application/json"})
    return json.loads(urllib.request.urlopen(r).read())["result"]
txs = sum(int(call("eth_getBlockTransactionCountByNumber", [hex(n)]), 16) for n in range(1, tip + 1))
secs = t1 - t0
sync = t1 - tf
print(f"catch-up ({label}): {tip} blocks, {txs} transactions in {secs:.1f}s from process start = {tip/secs:.0f} blocks/s, {txs/secs:.0f} tx/s; "
      f"from the first synced block: {(tip-1)/sync:.0f} blocks/s")
PY
}

if [[ " $PHASES " == *" empty "* ]]; then
echo "== empty-block catch-up (PIN=${PIN:-0})"
base="$(free_base)"
"$NODE" testnet --validators 4 --full-nodes 2 --out "$work/empty" --base-port "$base" --block-time 10ms >/dev/null
evpids=()
for i in 0 1 2 3; do evpids+=("$(start_node "$work/empty/validator-$i" "empty-v$i")"); done
pids+=("${evpids[@]}")
wait_height "http://127.0.0.1:$base" 1 60
sleep 40
if [ -n "${SERVE_BLOCK_TIME:-}" ]; then
    made="$(height "http://127.0.0.1:$base")"
    kill "${evpids[@]}"; wait "${evpids[@]}" 2>/dev/null || true
    for i in 0 1 2 3; do pids+=("$(start_node "$work/empty/validator-$i" "empty-v$i" 0 --block-time "$SERVE_BLOCK_TIME")"); done
    wait_height "http://127.0.0.1:$base" "$((made + 1))" 60
    echo "validators made $made blocks, then restarted at a ${SERVE_BLOCK_TIME} block time"
fi
catch_up "$work/empty" "$base" "empty blocks"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=()
fi

[[ " $PHASES " == *" load "* ]] || exit 0
echo "== load: ${SECONDS_LOAD}s of transfers at up to ${RATE}/s"
base="$(free_base)"
"$NODE" testnet --validators 4 --full-nodes 2 --out "$work/load" --base-port "$base" --block-time 250ms >/dev/null
vpids=()
for i in 0 1 2 3; do vpids+=("$(start_node "$work/load/validator-$i" "load-v$i")"); done
pids+=("${vpids[@]}") # start_node ran in a command substitution: record the pids here too
wait_height "http://127.0.0.1:$base" 2 60
"$LOAD" --rpc "http://127.0.0.1:$base" --pid "$(IFS=,; echo "${vpids[*]}")" \
    transfers --senders 1000 --seconds "$SECONDS_LOAD" --rate "$RATE" --in-flight "$IN_FLIGHT" 2> "$work/load.err"
rounds="$(cat "$work"/load-v*.log | sed 's/\x1b\[[0-9;]*m//g' | grep "Starting new round" | grep -vc "round=0" || true)"
echo "round changes during the load run (all validators): $rounds"
echo "== history catch-up"
catch_up "$work/load" "$base" "loaded history"

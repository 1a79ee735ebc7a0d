"""Drives a `metanode-node testnet` network running under docker-compose.

Usage: testnet_check.py PROJECT COMPOSE_FILE FULLNODE_RPC VALIDATOR_RPC...

Checks, in order: blocks are finalized and agree across nodes; a transfer
sent to the full node's published 8545 is finalized; with one validator cut
off its Docker network the chain keeps finalizing; reconnected, the cut-off
validator catches up to the others.
"""

import json
import subprocess
import sys
import time
import urllib.request

from eth_account import Account

DEV_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    reply = json.loads(urllib.request.urlopen(req, timeout=10).read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def height(url):
    return int(rpc(url, "eth_blockNumber", []), 16)


def wait(what, timeout, check):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"docker-testnet: timed out waiting until {what}")


def same_chain(urls, upto):
    for n in range(1, upto + 1):
        hashes = {rpc(u, "eth_getBlockByNumber", [hex(n), False])["hash"] for u in urls}
        if len(hashes) != 1:
            raise SystemExit(f"docker-testnet: nodes disagree at block {n}: {hashes}")


def compose(project, file, *args):
    out = subprocess.run(["docker-compose", "-p", project, "-f", file, *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    project, file, full, *validators = sys.argv[1:]
    everyone = [full, *validators]
    for url in everyone:
        wait(f"{url} finalizes blocks", 120, lambda u=url: height(u) >= 3)
    same_chain(everyone, 3)
    print("docker-testnet: 5 nodes finalize the same blocks")

    account = Account.from_key(DEV_KEY_1)
    nonce = int(rpc(full, "eth_getTransactionCount", [account.address, "pending"]), 16)
    tx = account.sign_transaction({
        "chainId": 9928, "nonce": nonce, "to": "0x" + "42" * 20, "value": 7, "gas": 21000,
        "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2,
    })
    tx_hash = rpc(full, "eth_sendRawTransaction", ["0x" + tx.raw_transaction.hex().removeprefix("0x")])
    receipt = {}

    def included():
        nonlocal receipt
        receipt = rpc(full, "eth_getTransactionReceipt", [tx_hash])
        return receipt is not None

    wait("the transfer sent to the full node is finalized", 60, included)
    assert receipt["status"] == "0x1", receipt
    print(f"docker-testnet: transfer {tx_hash} finalized in block {int(receipt['blockNumber'], 16)}")

    cut = compose(project, file, "ps", "-q", "validator-3")
    network = f"{project}_metanode"
    subprocess.run(["docker", "network", "disconnect", network, cut], check=True)
    start = height(validators[0])
    for url in everyone[:-1]:
        wait("the chain keeps finalizing with one validator cut off", 60, lambda u=url: height(u) >= start + 5)
    print(f"docker-testnet: 3 validators went on from block {start} to {height(validators[0])} with validator-3 cut off")
    subprocess.run(["docker", "network", "connect", "--alias", "validator-3", network, cut], check=True)
    target = height(validators[0])
    wait("the reconnected validator catches up", 120, lambda: height(validators[3]) >= target)
    same_chain(everyone, target)
    print(f"docker-testnet: the reconnected validator caught up to block {target}")


if __name__ == "__main__":
    main()

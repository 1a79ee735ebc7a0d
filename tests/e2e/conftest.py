"""Fixtures for the end-to-end suite.

One real ``metanode-node --dev`` process serves the whole session: starting a
debug build takes a moment and the dev chain needs no reset between tests,
because every test deploys its own contract and asserts on differences
(balance before/after, nonce before/after) rather than on absolute values.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxReceipt

CHAIN_ID = 9928

# The public anvil/hardhat test mnemonic accounts 0 and 1, funded by --dev.
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)

# Generous: a debug build on a 2-core machine that may also be running cargo.
STARTUP_TIMEOUT_S = 60
SHUTDOWN_TIMEOUT_S = 20
RECEIPT_TIMEOUT_S = 30

# The banner line carrying the HTTP endpoint. The port is picked by the OS
# (--http.port 0), so this line is the only way to learn it.
HTTP_URL_LINE = re.compile(r"^JSON-RPC \(HTTP\):\s*(http://\S+)\s*$", re.MULTILINE)


def node_binary() -> Path:
    """Same lookup as scripts/e2e.sh, so pytest can also be run directly."""
    explicit = os.environ.get("METANODE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "metanode-target"
    return Path(target) / "debug" / "metanode-node"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "<no output>"


class Node:
    """A running metanode-node and where its output goes."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.datadir = workdir / "data"
        # Files rather than pipes: the node logs every block to stderr, and an
        # undrained pipe would eventually block it. The files also survive in
        # pytest's basetemp for post-mortems.
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [
                    str(binary),
                    "--dev",
                    "--datadir", str(self.datadir),
                    "--http.port", "0",
                    "--ws.port", "0",
                    "--metrics", "0",
                    "--block-time", "200ms",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.url = ""

    def describe(self) -> str:
        return (
            f"--- stdout ({self.stdout_path}) ---\n{_tail(self.stdout_path)}\n"
            f"--- stderr ({self.stderr_path}) ---\n{_tail(self.stderr_path)}"
        )

    def wait_for_http_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = HTTP_URL_LINE.search(self.stdout_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return self.url
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"metanode-node exited with {self.process.returncode} before "
                    f"printing its HTTP endpoint\n{self.describe()}"
                )
            time.sleep(0.05)
        raise RuntimeError(
            f"metanode-node printed no 'JSON-RPC (HTTP):' line within {timeout}s\n"
            f"{self.describe()}"
        )

    def stop(self, timeout: float) -> int:
        """SIGTERM and wait; SIGKILL only as a last resort so no node leaks."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(
                    f"metanode-node ignored SIGTERM for {timeout}s and was killed\n"
                    f"{self.describe()}"
                )
        return self.process.returncode


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory):
    binary = node_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"metanode-node not found at {binary}: build it first or set METANODE_BIN",
            pytrace=False,
        )
    node = Node(binary, tmp_path_factory.mktemp("metanode"))
    try:
        try:
            node.wait_for_http_url(STARTUP_TIMEOUT_S)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        yield node
    finally:
        code = node.stop(SHUTDOWN_TIMEOUT_S)
    # A clean shutdown is part of the contract (RocksDB must be flushed), so a
    # crash on SIGTERM is reported as an error of the last test.
    assert code == 0, f"metanode-node exited with {code} on SIGTERM\n{node.describe()}"


@pytest.fixture(scope="session")
def w3(node: Node) -> Web3:
    web3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
    # The banner is printed once the listener is bound, but be tolerant of a
    # node that announces the port a little before it serves requests.
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not web3.is_connected():
        if time.monotonic() > deadline:
            pytest.fail(f"no JSON-RPC answer at {node.url}\n{node.describe()}", pytrace=False)
        time.sleep(0.1)
    assert web3.eth.chain_id == CHAIN_ID
    return web3


@pytest.fixture(scope="session")
def deployer() -> LocalAccount:
    return Account.from_key(DEV_KEYS[0])


@pytest.fixture(scope="session")
def alice() -> LocalAccount:
    return Account.from_key(DEV_KEYS[1])


def eip1559_fees(w3: Web3) -> dict[str, int]:
    """Fee fields the way a wallet picks them: the node's suggested tip plus
    twice the next block's base fee, so the tx survives a base-fee rise."""
    tip = w3.eth.max_priority_fee
    # The last entry of baseFeePerGas is the base fee of the *next* block.
    next_base_fee = w3.eth.fee_history(1, "latest")["baseFeePerGas"][-1]
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * next_base_fee + tip}


class Wallet:
    """Local signing against the node, which has no eth_sendTransaction.

    Fields given by the caller win; missing ones are filled from the node
    (pending nonce, fee suggestion, gas estimate) as a wallet would, so the
    node's own answers are what make the transactions valid.
    """

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def build(self, account: LocalAccount, tx: dict[str, Any]) -> dict[str, Any]:
        tx = {"from": account.address, "value": 0, **tx}
        tx.setdefault("type", 2)
        tx.setdefault("chainId", CHAIN_ID)
        tx.setdefault("nonce", self.w3.eth.get_transaction_count(account.address, "pending"))
        for field, value in eip1559_fees(self.w3).items():
            tx.setdefault(field, value)
        if "gas" not in tx:
            # Estimate with the fee fields so the balance check matches the
            # real send; nonce/type/chainId do not affect execution.
            tx["gas"] = self.w3.eth.estimate_gas(
                {k: v for k, v in tx.items() if k not in ("nonce", "type", "chainId")}
            )
        return tx

    def sign(self, account: LocalAccount, tx: dict[str, Any]):
        return account.sign_transaction(self.build(account, tx))

    def send_signed(self, signed) -> bytes:
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        assert tx_hash == signed.hash, "eth_sendRawTransaction returned a different hash"
        return tx_hash

    def wait(self, tx_hash: bytes) -> TxReceipt:
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.05
        )

    def send(self, account: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
        return self.wait(self.send_signed(self.sign(account, tx)))


@pytest.fixture(scope="session")
def wallet(w3: Web3) -> Wallet:
    return Wallet(w3)

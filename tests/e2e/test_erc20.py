"""ERC-20 round trip against a real node, the way a dApp would drive it.

The token is compiled from source at test time (not checked in as bytecode)
so the suite always exercises what the current Vyper emits for the pinned
EVM version, and every write is a locally signed EIP-1559 transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import vyper
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt
from web3.utils import get_create_address

TOKEN_SOURCE = Path(__file__).parent / "contracts" / "Token.vy"
NAME, SYMBOL, DECIMALS = "MetaNode Test Token", "MNT", 18
SUPPLY = 1_000_000 * 10**DECIMALS
ZERO_ADDRESS = "0x" + "00" * 20
# An address with no key: a third party that only ever receives.
CAROL = Web3.to_checksum_address("0x" + "c0" * 20)
# Error(string) selector: a Vyper `assert ..., "reason"` reverts with it.
ERROR_STRING_SELECTOR = "0x08c379a0"


class Artifacts(NamedTuple):
    abi: list
    bytecode: str
    runtime: str


class Deployed(NamedTuple):
    token: Contract
    receipt: TxReceipt


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    out = vyper.compile_code(
        TOKEN_SOURCE.read_text(),
        contract_path=TOKEN_SOURCE,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return Artifacts(out["abi"], out["bytecode"], out["bytecode_runtime"])


def deploy(w3: Web3, wallet, deployer, artifacts: Artifacts) -> Deployed:
    factory = w3.eth.contract(abi=artifacts.abi, bytecode=artifacts.bytecode)
    data = factory.constructor(NAME, SYMBOL, DECIMALS, SUPPLY).data_in_transaction
    receipt = wallet.send(deployer, {"data": data})
    assert receipt.status == 1, receipt
    return Deployed(w3.eth.contract(address=receipt.contractAddress, abi=artifacts.abi), receipt)


@pytest.fixture
def deployed(w3, wallet, deployer, artifacts) -> Deployed:
    # A fresh token per test: tests stay independent on one shared chain.
    return deploy(w3, wallet, deployer, artifacts)


def call_tx(token: Contract, fn: str, *args) -> dict:
    return {"to": token.address, "data": token.encode_abi(fn, args=list(args))}


def test_deploy(w3, deployed, deployer, artifacts):
    token, receipt = deployed
    nonce = w3.eth.get_transaction(receipt.transactionHash)["nonce"]
    assert receipt.contractAddress == get_create_address(deployer.address, nonce)
    assert receipt.to is None
    # No immutables in Token.vy, so the stored code is exactly the runtime part.
    assert w3.eth.get_code(token.address).to_0x_hex() == artifacts.runtime

    assert token.functions.name().call() == NAME
    assert token.functions.symbol().call() == SYMBOL
    assert token.functions.decimals().call() == DECIMALS
    assert token.functions.totalSupply().call() == SUPPLY
    assert token.functions.balanceOf(deployer.address).call() == SUPPLY

    (mint,) = token.events.Transfer().process_receipt(receipt)
    assert mint.args.sender == ZERO_ADDRESS
    assert mint.args.receiver == deployer.address
    assert mint.args.value == SUPPLY


# Fields that identify a log; compared between the receipt and eth_getLogs,
# which must describe the same log identically.
LOG_FIELDS = (
    "address", "topics", "data", "blockNumber", "blockHash",
    "transactionHash", "transactionIndex", "logIndex", "removed",
)


def test_transfer_events_and_balances(w3, wallet, deployed, deployer, alice):
    token, deploy_receipt = deployed
    amount = 1234 * 10**DECIMALS
    receipt = wallet.send(deployer, call_tx(token, "transfer", alice.address, amount))
    assert receipt.status == 1

    # From the receipt.
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event.event == "Transfer"
    assert event.address == token.address
    assert event.blockNumber == receipt.blockNumber
    assert event.transactionHash == receipt.transactionHash
    assert (event.args.sender, event.args.receiver, event.args.value) == (
        deployer.address, alice.address, amount
    )

    # Raw eth_getLogs with an address and a topic filter on the indexed receiver.
    transfer_topic = Web3.keccak(text="Transfer(address,address,uint256)")
    alice_topic = "0x" + "00" * 12 + alice.address[2:].lower()
    logs = w3.eth.get_logs({
        "fromBlock": deploy_receipt.blockNumber,
        "toBlock": receipt.blockNumber,
        "address": token.address,
        "topics": [transfer_topic, None, alice_topic],
    })
    assert len(logs) == 1
    (receipt_log,) = receipt.logs
    for field in LOG_FIELDS:
        assert logs[0][field] == receipt_log[field], field
    assert token.events.Transfer().process_log(logs[0]).args == event.args

    # Contract-level get_logs: the mint from the deployment, then the transfer.
    events = token.events.Transfer.get_logs(from_block=deploy_receipt.blockNumber)
    assert [(e.args.sender, e.args.receiver, e.args.value) for e in events] == [
        (ZERO_ADDRESS, deployer.address, SUPPLY),
        (deployer.address, alice.address, amount),
    ]
    to_alice = token.events.Transfer.get_logs(
        from_block=deploy_receipt.blockNumber, argument_filters={"receiver": alice.address}
    )
    assert [e.transactionHash for e in to_alice] == [receipt.transactionHash]

    assert token.functions.balanceOf(deployer.address).call() == SUPPLY - amount
    assert token.functions.balanceOf(alice.address).call() == amount
    assert token.functions.totalSupply().call() == SUPPLY


def test_approve_and_transfer_from(wallet, deployed, deployer, alice):
    token, _ = deployed
    receipt = wallet.send(deployer, call_tx(token, "approve", alice.address, 500))
    (approval,) = token.events.Approval().process_receipt(receipt)
    assert (approval.args.owner, approval.args.spender, approval.args.value) == (
        deployer.address, alice.address, 500
    )
    assert token.functions.allowance(deployer.address, alice.address).call() == 500

    # Alice spends part of the allowance to pay Carol: spender, owner and
    # receiver are three different accounts.
    receipt = wallet.send(alice, call_tx(token, "transferFrom", deployer.address, CAROL, 200))
    assert receipt.status == 1
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args.sender, event.args.receiver, event.args.value) == (
        deployer.address, CAROL, 200
    )
    assert token.functions.allowance(deployer.address, alice.address).call() == 300
    assert token.functions.balanceOf(deployer.address).call() == SUPPLY - 200
    assert token.functions.balanceOf(CAROL).call() == 200
    assert token.functions.balanceOf(alice.address).call() == 0

    with pytest.raises(ContractLogicError, match="insufficient allowance"):
        token.functions.transferFrom(deployer.address, CAROL, 301).call({"from": alice.address})


def test_nonce_bookkeeping(w3, wallet, deployed, deployer, alice):
    token, _ = deployed
    start = w3.eth.get_transaction_count(deployer.address)
    assert w3.eth.get_transaction_count(deployer.address, "pending") == start

    # Two transactions in flight at once: 'pending' must count both whether
    # or not they have been sealed yet, so this holds without any sleeping.
    signed = [
        wallet.sign(deployer, {**call_tx(token, "transfer", alice.address, i + 1), "nonce": start + i})
        for i in range(2)
    ]
    hashes = [wallet.send_signed(s) for s in signed]
    assert w3.eth.get_transaction_count(deployer.address, "pending") == start + 2

    receipts = [wallet.wait(h) for h in hashes]
    assert [r.status for r in receipts] == [1, 1]
    assert [w3.eth.get_transaction(h)["nonce"] for h in hashes] == [start, start + 1]
    assert w3.eth.get_transaction_count(deployer.address) == start + 2
    assert w3.eth.get_transaction_count(deployer.address, "pending") == start + 2
    # Historical counts: before the first of the two was sealed, and at the last one.
    before = receipts[0].blockNumber - 1
    assert w3.eth.get_transaction_count(deployer.address, before) == start
    assert w3.eth.get_transaction_count(deployer.address, receipts[1].blockNumber) == start + 2

    # A replay of a used nonce is refused and changes nothing.
    stale = wallet.sign(deployer, {**call_tx(token, "transfer", alice.address, 5), "nonce": start})
    with pytest.raises(Web3RPCError) as excinfo:
        w3.eth.send_raw_transaction(stale.raw_transaction)
    assert "nonce too low" in excinfo.value.rpc_response["error"]["message"]
    assert w3.eth.get_transaction_count(deployer.address, "pending") == start + 2
    assert token.functions.balanceOf(alice.address).call() == 1 + 2


def test_eth_balance_pays_exactly_the_fee(w3, wallet, deployer, alice, artifacts):
    """Each tx costs its sender exactly gasUsed * effectiveGasPrice (+ value)."""

    def check(send, value=0):
        before = w3.eth.get_balance(deployer.address)
        receipt = send()
        after = w3.eth.get_balance(deployer.address)
        assert receipt.status == 1
        fee = receipt.gasUsed * receipt.effectiveGasPrice
        assert before - after == fee + value, (before, after, fee, value)

        # EIP-1559: effective price = base fee + tip, with the tip capped by
        # maxFeePerGas - baseFee.
        tx = w3.eth.get_transaction(receipt.transactionHash)
        base_fee = w3.eth.get_block(receipt.blockNumber).baseFeePerGas
        tip = min(tx.maxPriorityFeePerGas, tx.maxFeePerGas - base_fee)
        assert receipt.effectiveGasPrice == base_fee + tip
        assert receipt.gasUsed <= tx.gas
        # The same difference must show in historical state at the block edges.
        assert w3.eth.get_balance(deployer.address, receipt.blockNumber) == after
        assert w3.eth.get_balance(deployer.address, receipt.blockNumber - 1) == before
        return receipt

    deploy_receipt = check(lambda: deploy(w3, wallet, deployer, artifacts).receipt)
    token = w3.eth.contract(address=deploy_receipt.contractAddress, abi=artifacts.abi)
    check(lambda: wallet.send(deployer, call_tx(token, "transfer", alice.address, 10)))
    check(lambda: wallet.send(deployer, call_tx(token, "approve", alice.address, 10)))

    value = 10**15
    alice_before = w3.eth.get_balance(alice.address)
    check(lambda: wallet.send(deployer, {"to": alice.address, "value": value}), value=value)
    assert w3.eth.get_balance(alice.address) == alice_before + value


def test_revert_raises_contract_logic_error(deployed, deployer, alice):
    token, _ = deployed
    too_much = token.functions.balanceOf(deployer.address).call() + 1
    transfer = token.functions.transfer(alice.address, too_much)

    with pytest.raises(ContractLogicError, match="insufficient balance") as excinfo:
        transfer.call({"from": deployer.address})
    # The revert data must come back too, not just the message.
    assert excinfo.value.data.startswith(ERROR_STRING_SELECTOR)

    with pytest.raises(ContractLogicError, match="insufficient balance"):
        transfer.estimate_gas({"from": deployer.address})


def test_wrong_chain_id_is_rejected(w3, wallet, deployer, alice):
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    signed = wallet.sign(
        deployer, {"to": alice.address, "value": 1, "gas": 21_000, "chainId": w3.eth.chain_id + 1}
    )
    with pytest.raises(Web3RPCError) as excinfo:
        w3.eth.send_raw_transaction(signed.raw_transaction)
    assert "invalid chain id" in excinfo.value.rpc_response["error"]["message"].lower()

    # Rejected outright: not pooled, nonce untouched.
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(signed.hash)
    assert w3.eth.get_transaction_count(deployer.address, "pending") == nonce

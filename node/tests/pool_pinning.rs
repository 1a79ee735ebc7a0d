//! Pool pinning: 100 funded accounts each send 512 high-tip transactions
//! they cannot all pay for, and 20 rich accounts send future-nonce spam;
//! an honest account's ordinary transfer is still accepted and lands in the
//! next block. The node runs from a genesis funding exactly these accounts.

mod common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{Address, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use common::{net::parse_quantity, *};
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};

const GWEI: u128 = 1_000_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;
const SPAMMERS: usize = 100;
const SPAM_PER_ACCOUNT: u64 = 512;
const QUEUE_SPAMMERS: usize = 20;
const QUEUE_SPAM_PER_ACCOUNT: u64 = 256;
/// The spam's fee cap and tip: a hundred times what the honest transfer tips.
const SPAM_FEE: u128 = 200 * GWEI;
const SPAM_TIP: u128 = 100 * GWEI;
/// A spammer's balance pays for 11 of its transactions at their fee cap.
const SPAMMER_BALANCE: u128 = 5 * ETH / 100;
/// The pool's defaults, which the node runs with.
const MAX_QUEUED: usize = 1_024;
const MAX_QUEUED_PER_SENDER: usize = 64;

fn account(kind: u8, i: usize) -> PrivateKeySigner {
    let mut key = [0u8; 32];
    key[0] = kind;
    key[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    PrivateKeySigner::from_bytes(&B256::from(key)).unwrap()
}

fn spam(signer: &PrivateKeySigner, nonce: u64) -> String {
    let mut tx = TxEip1559 {
        chain_id: 9928,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: SPAM_FEE,
        max_priority_fee_per_gas: SPAM_TIP,
        to: TxKind::Call(Address::repeat_byte(0x55)),
        value: U256::from(1),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut tx).unwrap();
    alloy_primitives::hex::encode_prefixed(TxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718())
}

/// Sends `raws` as one JSON-RPC batch; returns how many the pool accepted.
fn send_batch(node: &TestNode, raws: &[String]) -> usize {
    let batch: Vec<Value> = raws
        .iter()
        .enumerate()
        .map(|(id, raw)| json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": [raw]}))
        .collect();
    let (status, answer) = node.raw(&Value::Array(batch).to_string());
    assert_eq!(status, 200, "batch refused: {answer}");
    let answers = answer.as_array().unwrap_or_else(|| panic!("not a batch answer: {answer}"));
    answers.iter().filter(|a| a.get("result").is_some()).count()
}

/// Transactions per sender in a `txpool_content` section.
fn per_sender(section: &Value) -> BTreeMap<Address, usize> {
    section
        .as_object()
        .map(|m| m.iter().map(|(a, txs)| (a.parse().unwrap(), txs.as_object().map_or(0, |t| t.len()))).collect())
        .unwrap_or_default()
}

#[test]
fn spam_that_cannot_pay_and_future_nonce_spam_do_not_keep_an_honest_transfer_out() {
    let spammers: Vec<PrivateKeySigner> = (0..SPAMMERS).map(|i| account(0xa1, i)).collect();
    let queue_spammers: Vec<PrivateKeySigner> = (0..QUEUE_SPAMMERS).map(|i| account(0xb2, i)).collect();
    let honest: PrivateKeySigner = DEV_KEY_0.parse().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut genesis = Genesis { gas_limit: 300_000_000, base_fee_per_gas: Some(GWEI), ..Default::default() };
    genesis.config.chain_id = 9928;
    let fund = |balance: u128| GenesisAccount { balance: U256::from(balance), ..Default::default() };
    genesis.alloc = spammers.iter().map(|s| (s.address(), fund(SPAMMER_BALANCE))).collect();
    genesis.alloc.extend(queue_spammers.iter().map(|s| (s.address(), fund(1_000 * ETH))));
    genesis.alloc.insert(honest.address(), fund(100 * ETH));
    // No validator list: in dev mode the node's own key is the one validator.
    std::fs::write(dir.path().join("genesis.json"), serde_json::to_string(&genesis).unwrap()).unwrap();
    let node = TestNode::start(dir.path(), &[]);
    node.wait_for_block(1);

    // Signed up front on both cores, so that sending is fast.
    let (pending_spam, queued_spam): (Vec<Vec<String>>, Vec<Vec<String>>) = std::thread::scope(|s| {
        let a = s.spawn(|| spammers.iter().map(|k| (0..SPAM_PER_ACCOUNT).map(|n| spam(k, n)).collect()).collect());
        let b = queue_spammers.iter().map(|k| (0..QUEUE_SPAM_PER_ACCOUNT).map(|n| spam(k, 10 + n)).collect()).collect();
        (a.join().unwrap(), b)
    });

    let mut accepted = 0;
    for raws in &pending_spam {
        let n = send_batch(&node, raws);
        assert!(n < 32, "a spammer got {n} of {SPAM_PER_ACCOUNT} transactions in with funds for about a dozen");
        accepted += n;
    }
    for raws in &queued_spam {
        send_batch(&node, raws);
    }
    // Whatever was accepted, a sender never holds more than it can pay for,
    // and the queue is capped per sender and in all.
    let content = node.rpc("txpool_content", json!([]));
    let pooled = |section: &str, addr: &Address| per_sender(&content[section]).get(addr).copied().unwrap_or(0);
    for s in &spammers {
        let held = pooled("pending", &s.address()) + pooled("queued", &s.address());
        assert!(held <= 11, "{} holds {held} transactions but can pay for 11", s.address());
    }
    let queued = per_sender(&content["queued"]);
    assert!(queued.values().all(|n| *n <= MAX_QUEUED_PER_SENDER), "over the per-sender queue cap: {queued:?}");
    assert!(queued.values().sum::<usize>() <= MAX_QUEUED, "over the global queue cap");
    let status = node.rpc("txpool_status", json!([]));
    assert_eq!(parse_quantity(&status["queued"]), MAX_QUEUED as u64, "the future-nonce spam fills the queue exactly");
    eprintln!("accepted {accepted} of {} spam transactions; pool {status}", SPAMMERS as u64 * SPAM_PER_ACCOUNT);

    // The honest transfer, tipping a hundredth of the spam: accepted, and in the next block.
    let head = parse_quantity(&node.rpc("eth_blockNumber", json!([])));
    let raw = signed_transfer(DEV_KEY_0, 0, Address::repeat_byte(0x42), 1_000);
    let hash = node.rpc("eth_sendRawTransaction", json!([raw]));
    let mut receipt = Value::Null;
    net::wait_until("the honest transfer is included", Duration::from_secs(30), || {
        receipt = node.rpc("eth_getTransactionReceipt", json!([hash]));
        !receipt.is_null()
    });
    assert_eq!(receipt["status"], json!("0x1"));
    // "Next block": the first block begun after the transfer arrived. The
    // block being built at that moment (head + 1) may already have taken
    // its transactions from the pool, so head + 2 is the latest it may be.
    let included = parse_quantity(&receipt["blockNumber"]);
    assert!(included <= head + 2, "sent at head {head}, included in block {included}");
}

//! The dev chain driven by a real Ethereum client (alloy) over HTTP and
//! WebSocket: transfers, a contract with logs and reverts, filters,
//! subscriptions, every pool rejection, and bad input.

mod common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::Encodable2718;
use alloy_network::{EthereumWallet, TransactionBuilder, TxSignerSync};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use alloy_rpc_types_eth::{Filter, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

const CHAIN_ID: u64 = 9928;
const GWEI: u128 = 1_000_000_000;

fn dev_signer(key: &str) -> PrivateKeySigner {
    key.parse().unwrap()
}

/// A contract assembled by hand (no compiler needed): a call whose first
/// byte is 0x01 reverts with `Error("nope")`; any other call stores the first
/// calldata word in slot 0 and logs it under topic keccak("Ping(uint256)").
fn test_contract_initcode() -> Bytes {
    let topic = keccak256("Ping(uint256)");
    let mut rt: Vec<u8> =
        vec![0x60, 0x00, 0x35, 0x80, 0x60, 0xf8, 0x1c, 0x60, 0x01, 0x14, 0x60, 0x00 /* dest */, 0x57];
    let dest_pos = 11;
    rt.extend([0x80, 0x60, 0x00, 0x55, 0x60, 0x00, 0x52, 0x7f]);
    rt.extend(topic.0);
    rt.extend([0x60, 0x20, 0x60, 0x00, 0xa1, 0x00]);
    rt[dest_pos] = rt.len() as u8;
    rt.push(0x5b);
    let mut selector = [0u8; 32];
    selector[..4].copy_from_slice(&[0x08, 0xc3, 0x79, 0xa0]);
    rt.push(0x7f);
    rt.extend(selector);
    rt.extend([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x04, 0x52, 0x60, 0x04, 0x60, 0x24, 0x52, 0x7f]);
    let mut reason = [0u8; 32];
    reason[..4].copy_from_slice(b"nope");
    rt.extend(reason);
    rt.extend([0x60, 0x44, 0x52, 0x60, 0x64, 0x60, 0x00, 0xfd]);
    let mut init = vec![0x60, rt.len() as u8, 0x80, 0x60, 12, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3];
    assert_eq!(init.len(), 11);
    init[4] = 11;
    init.extend(rt);
    init.into()
}

fn signed_1559(
    signer: &PrivateKeySigner,
    nonce: u64,
    gas: u64,
    to: TxKind,
    value: U256,
    chain_id: u64,
    fee: u128,
) -> Bytes {
    let mut tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: GWEI,
        to,
        value,
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut tx).unwrap();
    TxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718().into()
}

/// Sends a transaction through the wallet-filled provider and waits for its receipt.
async fn confirm(provider: &impl Provider, tx: TransactionRequest) -> alloy_rpc_types_eth::TransactionReceipt {
    provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap()
}

fn error_message(v: &serde_json::Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_contract_logs_filters_and_reverts() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &["--rpc.max-logs-range", "3"]);
    let signer = dev_signer(DEV_KEY_0);
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(node.http_url.parse().unwrap());

    assert_eq!(provider.get_chain_id().await.unwrap(), CHAIN_ID);
    let accounts = provider.get_accounts().await.unwrap();
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[0], me);
    let start_balance = provider.get_balance(me).await.unwrap();
    assert_eq!(start_balance, U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18)));

    // A plain transfer.
    let to = Address::repeat_byte(0x42);
    let value = U256::from(123_456_789u64);
    let receipt = confirm(&provider, TransactionRequest::default().with_to(to).with_value(value)).await;
    assert!(receipt.status());
    assert_eq!(receipt.gas_used, 21_000);
    assert_eq!(provider.get_balance(to).await.unwrap(), value);
    let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(provider.get_balance(me).await.unwrap(), start_balance - value - fee);
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), 1);
    let tx = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(tx.block_number, receipt.block_number);

    // Deploy the contract.
    let receipt = confirm(&provider, TransactionRequest::default().with_deploy_code(test_contract_initcode())).await;
    assert!(receipt.status());
    let contract = receipt.contract_address.expect("contract address");
    assert_eq!(contract, me.create(1));
    assert!(!provider.get_code_at(contract).await.unwrap().is_empty());

    // A log filter installed before the call sees the call's log.
    let filter = Filter::new().address(contract).event_signature(keccak256("Ping(uint256)"));
    let filter_id = provider.new_filter(&filter).await.unwrap();

    let word = B256::with_last_byte(7);
    let receipt =
        confirm(&provider, TransactionRequest::default().with_to(contract).with_input(Bytes::from(word.0.to_vec())))
            .await;
    assert!(receipt.status());
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].address(), contract);
    assert_eq!(logs[0].topics()[0], keccak256("Ping(uint256)"));
    assert_eq!(logs[0].data().data.as_ref(), word.as_slice());
    assert_eq!(provider.get_storage_at(contract, U256::ZERO).await.unwrap(), U256::from(7));

    let got: Vec<alloy_rpc_types_eth::Log> = provider.get_filter_changes(filter_id).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].transaction_hash, Some(receipt.transaction_hash));
    let again: Vec<alloy_rpc_types_eth::Log> = provider.get_filter_changes(filter_id).await.unwrap();
    assert!(again.is_empty(), "a poll returns each log once");
    let logs = provider.get_logs(&filter.clone().from_block(receipt.block_number.unwrap() - 1)).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert!(provider.uninstall_filter(filter_id).await.unwrap());

    // Revert: eth_call answers code 3 with the reason and the data.
    let mut revert_input = [0u8; 32];
    revert_input[0] = 1;
    let v = node.raw(
        &json!({"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":contract,"data":Bytes::from(revert_input.to_vec())},"latest"]})
            .to_string(),
    ).1;
    assert_eq!(v["error"]["code"], 3, "{v}");
    assert_eq!(error_message(&v), "execution reverted: nope");
    assert!(v["error"]["data"].as_str().unwrap().starts_with("0x08c379a0"));
    // eth_estimateGas reports the same revert.
    let v = node.raw(
        &json!({"jsonrpc":"2.0","id":1,"method":"eth_estimateGas","params":[{"from":me,"to":contract,"data":Bytes::from(revert_input.to_vec())}]})
            .to_string(),
    ).1;
    assert_eq!(v["error"]["code"], 3, "{v}");
    // A successful call's estimate is enough gas to run it.
    let est = provider
        .estimate_gas(
            TransactionRequest::default().with_from(me).with_to(contract).with_input(Bytes::from(word.0.to_vec())),
        )
        .await
        .unwrap();
    assert!(est > 21_000 && est < 100_000, "estimate {est}");

    // Historical state: the slot was zero before the call's block.
    let before = receipt.block_number.unwrap() - 1;
    let old = provider.get_storage_at(contract, U256::ZERO).block_id(before.into()).await.unwrap();
    assert_eq!(old, U256::ZERO);

    // Range cap on eth_getLogs.
    let v = node
        .raw(
            &json!({"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"0x989680"}]})
                .to_string(),
        )
        .1;
    assert!(error_message(&v).contains("exceeds max block range"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_new_heads_and_pending_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[]);
    for url in [node.http_url.replace("http://", "ws://"), node.ws_url.clone()] {
        let ws = ProviderBuilder::new().connect_ws(WsConnect::new(url)).await.unwrap();
        let mut heads = ws.subscribe_blocks().await.unwrap().into_stream();
        let first = tokio::time::timeout(Duration::from_secs(20), heads.next()).await.unwrap().unwrap();
        let second = tokio::time::timeout(Duration::from_secs(20), heads.next()).await.unwrap().unwrap();
        assert_eq!(second.number, first.number + 1);
        assert_eq!(second.parent_hash, first.hash);
    }
    let ws = ProviderBuilder::new().connect_ws(WsConnect::new(node.ws_url.clone())).await.unwrap();
    let mut pending = ws.subscribe_pending_transactions().await.unwrap().into_stream();
    let signer = dev_signer(DEV_KEY_1);
    let raw =
        signed_1559(&signer, 0, 21_000, TxKind::Call(Address::repeat_byte(9)), U256::from(1), CHAIN_ID, 100 * GWEI);
    let hash = ws.send_raw_transaction(&raw).await.unwrap().tx_hash().to_owned();
    let seen = tokio::time::timeout(Duration::from_secs(20), pending.next()).await.unwrap().unwrap();
    assert_eq!(seen, hash);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_pool_rejection_uses_geths_words_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[]);
    let signer = dev_signer(DEV_KEY_0);
    let provider = ProviderBuilder::new().connect_http(node.http_url.parse().unwrap());
    let to = TxKind::Call(Address::repeat_byte(1));
    let send = |raw: &Bytes| {
        node.raw(&json!({"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[raw]}).to_string()).1
    };

    // Nonce 0 goes in and is mined.
    let first = signed_1559(&signer, 0, 21_000, to, U256::from(1), CHAIN_ID, 100 * GWEI);
    let hash: B256 = serde_json::from_value(send(&first)["result"].clone()).unwrap();
    let receipt = loop {
        if let Some(r) = provider.get_transaction_receipt(hash).await.unwrap() {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(receipt.status());
    let head_before = provider.get_block_number().await.unwrap();

    assert_eq!(error_message(&send(&first)), "nonce too low");
    let poor = PrivateKeySigner::random();
    assert_eq!(
        error_message(&send(&signed_1559(&poor, 0, 21_000, to, U256::from(1), CHAIN_ID, 100 * GWEI))),
        "insufficient funds for gas * price + value"
    );
    assert_eq!(
        error_message(&send(&signed_1559(&signer, 1, 20_000, to, U256::ZERO, CHAIN_ID, 100 * GWEI))),
        "intrinsic gas too low"
    );
    assert_eq!(
        error_message(&send(&signed_1559(&signer, 1, 300_000_001, to, U256::ZERO, CHAIN_ID, 100 * GWEI))),
        "exceeds block gas limit"
    );
    assert_eq!(
        error_message(&send(&signed_1559(&signer, 1, 21_000, to, U256::ZERO, 1, 100 * GWEI))),
        "invalid chain id"
    );
    // A queued transaction (nonce gap) stays in the pool for the next two checks.
    let queued = signed_1559(&signer, 5, 21_000, to, U256::ZERO, CHAIN_ID, 100 * GWEI);
    assert!(send(&queued)["result"].is_string());
    assert_eq!(error_message(&send(&queued)), "already known");
    assert_eq!(
        error_message(&send(&signed_1559(&signer, 5, 21_000, to, U256::from(2), CHAIN_ID, 105 * GWEI))),
        "replacement transaction underpriced"
    );
    let status = node.rpc("txpool_status", json!([]));
    assert_eq!(status["queued"], "0x1");
    assert_eq!(status["pending"], "0x0");
    let content = node.rpc("txpool_content", json!([]));
    assert!(content["queued"][format!("{:?}", signer.address()).to_lowercase()]["5"].is_object(), "{content}");

    // Malformed RLP and a bad signature.
    let v = send(&Bytes::from(vec![0x02, 0xc0, 0x01]));
    assert_eq!(v["error"]["code"], -32000, "{v}");
    let mut legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 1,
        gas_limit: 21_000,
        gas_price: 100 * GWEI,
        to,
        ..Default::default()
    };
    let sig = alloy_primitives::Signature::new(U256::from(1), U256::MAX >> 1, false);
    let bad: Bytes = TxEnvelope::Legacy(legacy.clone().into_signed(sig)).encoded_2718().into();
    assert!(error_message(&send(&bad)).starts_with("invalid sender"), "{}", error_message(&send(&bad)));
    // Oversized transaction (> 128 KiB).
    let huge = vec![0x55u8; 130 * 1024];
    let mut big = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 1,
        gas_limit: 30_000_000,
        max_fee_per_gas: 100 * GWEI,
        to,
        input: huge.into(),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut big).unwrap();
    let raw: Bytes = TxEnvelope::Eip1559(big.into_signed(sig)).encoded_2718().into();
    assert!(error_message(&send(&raw)).contains("oversized data"));

    // None of it changed the chain's state: nonce still 1, no new balance at the recipient beyond the first.
    assert_eq!(provider.get_transaction_count(signer.address()).await.unwrap(), 1);
    assert_eq!(provider.get_balance(Address::repeat_byte(1)).await.unwrap(), U256::from(1));
    assert!(provider.get_block_number().await.unwrap() >= head_before);
    // The same transaction properly signed is accepted (so the rejection was the signature's).
    let sig = signer.sign_transaction_sync(&mut legacy).unwrap();
    let good: Bytes = TxEnvelope::Legacy(legacy.into_signed(sig)).encoded_2718().into();
    assert!(send(&good)["result"].is_string());
}

#[test]
fn bad_requests_get_json_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[]);
    let (_, v) = node.raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    let (_, v) = node.raw(r#"{"jsonrpc":"2.0","id":1,"method":"eth_nope","params":[]}"#);
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let (_, v) = node.raw(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["not-an-address"]}"#);
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // Batches answer every entry.
    let (_, v) = node
        .raw(r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"net_version"}]"#);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[1]["result"], "9928");
    // Requests over 10 MiB are refused before parsing.
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"web3_sha3","params":["0x{}"]}}"#, "00".repeat(6 << 20));
    let (status, v) = node.raw(&big);
    assert_eq!(status, 413, "{v}");
    // web3_sha3 and /health, /status.
    assert_eq!(node.rpc("web3_sha3", json!(["0x68656c6c6f"])), json!(format!("{:?}", keccak256("hello"))));
    let (status, body) = http_request(&node.http_url, "GET", "/health", "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_request(&node.http_url, "GET", "/status", "");
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(status["height"].is_u64() && status["latestHash"].is_string() && status["syncing"] == false, "{status}");
}

/// Dev account 2's key (the authority delegating its code in the 7702 test).
const DEV_KEY_2: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

#[tokio::test(flavor = "multi_thread")]
async fn all_transaction_types_block_tags_fees_and_log_subscriptions() {
    use alloy_consensus::{TxEip2930, TxEip7702};
    use alloy_eips::{eip2930::AccessList, eip7702::Authorization};
    use alloy_signer::SignerSync;

    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[]);
    let signer = dev_signer(DEV_KEY_1);
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(node.http_url.parse().unwrap());
    let ws = ProviderBuilder::new().connect_ws(WsConnect::new(node.ws_url.clone())).await.unwrap();
    let contract = confirm(&provider, TransactionRequest::default().with_deploy_code(test_contract_initcode()))
        .await
        .contract_address
        .unwrap();
    let mut logs = ws.subscribe_logs(&Filter::new().address(contract)).await.unwrap().into_stream();
    let wait = |hash: B256| {
        let provider = provider.clone();
        async move {
            for _ in 0..400 {
                if let Some(r) = provider.get_transaction_receipt(hash).await.unwrap() {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("transaction {hash} not mined");
        }
    };
    let word = |b: u8| Bytes::from(B256::with_last_byte(b).0.to_vec());

    // Legacy with EIP-155.
    let mut legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 1,
        gas_limit: 100_000,
        gas_price: 100 * GWEI,
        to: TxKind::Call(contract),
        input: word(1),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut legacy).unwrap();
    let raw: Bytes = TxEnvelope::Legacy(legacy.into_signed(sig)).encoded_2718().into();
    let r = wait(*provider.send_raw_transaction(&raw).await.unwrap().tx_hash()).await;
    assert!(r.status());
    // EIP-2930 with an access list naming the contract's slot 0.
    let mut t2930 = TxEip2930 {
        chain_id: CHAIN_ID,
        nonce: 2,
        gas_limit: 100_000,
        gas_price: 100 * GWEI,
        to: TxKind::Call(contract),
        input: word(2),
        access_list: AccessList(vec![alloy_eips::eip2930::AccessListItem {
            address: contract,
            storage_keys: vec![B256::ZERO],
        }]),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut t2930).unwrap();
    let raw: Bytes = TxEnvelope::Eip2930(t2930.into_signed(sig)).encoded_2718().into();
    let r = wait(*provider.send_raw_transaction(&raw).await.unwrap().tx_hash()).await;
    assert!(r.status());
    assert_eq!(r.inner.tx_type(), alloy_consensus::TxType::Eip2930);
    // EIP-7702: account 2 delegates its code to the contract; calling it then logs from account 2's address.
    let authority = dev_signer(DEV_KEY_2);
    let auth = Authorization { chain_id: U256::from(CHAIN_ID), address: contract, nonce: 0 };
    let auth_sig = authority.sign_hash_sync(&auth.signature_hash()).unwrap();
    let mut t7702 = TxEip7702 {
        chain_id: CHAIN_ID,
        nonce: 3,
        gas_limit: 200_000,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: authority.address(),
        input: word(3),
        authorization_list: vec![auth.into_signed(auth_sig)],
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut t7702).unwrap();
    let raw: Bytes = TxEnvelope::Eip7702(t7702.into_signed(sig)).encoded_2718().into();
    let r = wait(*provider.send_raw_transaction(&raw).await.unwrap().tx_hash()).await;
    assert!(r.status());
    assert_eq!(r.inner.logs()[0].address(), authority.address());
    let code = provider.get_code_at(authority.address()).await.unwrap();
    assert_eq!(&code[..3], &[0xef, 0x01, 0x00]);
    assert_eq!(&code[3..], contract.as_slice());

    // The logs subscription saw the two calls to the contract itself, in order.
    for expected in [1u8, 2] {
        let log = tokio::time::timeout(Duration::from_secs(20), logs.next()).await.unwrap().unwrap();
        assert_eq!(log.address(), contract);
        assert_eq!(log.data().data.as_ref(), B256::with_last_byte(expected).as_slice());
    }

    // Block tags: final blocks mean latest == safe == finalized; earliest is genesis.
    let num = |v: &serde_json::Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let latest = node.rpc("eth_getBlockByNumber", json!(["latest", true]));
    for tag in ["safe", "finalized", "pending"] {
        let b = node.rpc("eth_getBlockByNumber", json!([tag, false]));
        let head = num(&node.rpc("eth_blockNumber", json!([])));
        assert!(num(&b["number"]) >= num(&latest["number"]) && num(&b["number"]) <= head, "{tag} is not the head");
    }
    assert_eq!(node.rpc("eth_getBlockByNumber", json!(["earliest", false]))["number"], "0x0");
    let by_hash = node.rpc("eth_getBlockByHash", json!([latest["hash"], true]));
    assert_eq!(by_hash["hash"], latest["hash"]);
    assert!(node.rpc("eth_getBlockByNumber", json!(["0xffffff", false])).is_null());

    // Fees.
    let history = provider.get_fee_history(4, alloy_eips::BlockNumberOrTag::Latest, &[25.0, 75.0]).await.unwrap();
    assert_eq!(history.base_fee_per_gas.len(), history.gas_used_ratio.len() + 1);
    assert_eq!(history.reward.as_ref().unwrap()[0].len(), 2);
    let tip = provider.get_max_priority_fee_per_gas().await.unwrap();
    assert!(tip >= 1);
    let price = provider.get_gas_price().await.unwrap();
    assert!(price > tip);
    assert_eq!(node.rpc("eth_syncing", json!([])), json!(false));
    assert_eq!(node.rpc("net_listening", json!([])), json!(true));
    assert_eq!(node.rpc("net_peerCount", json!([])), json!("0x0"));
    assert!(node.rpc("web3_clientVersion", json!([])).as_str().unwrap().starts_with("metanode/"));
}

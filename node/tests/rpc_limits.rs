//! RPC abuse against a real node: oversized batches and batch answers, an
//! endless `eth_call`, a filter from block 0 on a long chain, huge
//! `eth_feeHistory` requests, thousands of filters and a thousand
//! WebSocket connections. Each gets its error or limit while a
//! well-behaved client's `eth_blockNumber` keeps answering quickly. And
//! the node's own `eth_gasPrice` is a price the node accepts, after busy
//! and after quiet blocks.

mod common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::Encodable2718;
use alloy_network::TxSignerSync;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHAIN_ID: u64 = 9928;
/// Init code that never ends: JUMPDEST; PUSH1 0; JUMP.
const ENDLESS_LOOP: [u8; 4] = [0x5b, 0x60, 0x00, 0x56];
/// The WebSocket limit of the abuse node.
const MAX_WS: usize = 200;

fn call(method: &str, params: Value) -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":method,"params":params})
}

fn message(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn quantity(v: &Value) -> u128 {
    u128::from_str_radix(v.as_str().unwrap_or_else(|| panic!("not a quantity: {v}")).trim_start_matches("0x"), 16)
        .unwrap()
}

/// Polls `eth_blockNumber` on its own thread (blocking sockets, so the
/// test's async load cannot delay it) until stopped; returns each latency
/// and every failure.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<Duration>, Vec<String>)>,
}

impl Watcher {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            let body = call("eth_blockNumber", json!([])).to_string();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, v) = http_post(&url, &body);
                latencies.push(started.elapsed());
                if status != 200 || v.get("result").is_none() {
                    failures.push(format!("{status} {v}"));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            (latencies, failures)
        });
        Self { stop, thread }
    }

    fn finish(self) -> (Vec<Duration>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Sends a WebSocket upgrade and reads the answer's status line; keeps the
/// socket open when the upgrade was accepted.
async fn ws_upgrade(addr: String) -> (u16, String, Option<tokio::net::TcpStream>) {
    let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("upgrade answered in time");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text, (status == 101).then_some(s))
}

/// A raw HTTP request with extra headers, returning status, headers and body.
fn http_with_headers(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req =
        format!("{method} / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_gets_its_limit_and_a_polite_client_is_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_with_block_time(
        dir.path(),
        "50ms",
        &[
            "--rpc.max-logs-range",
            "20",
            "--rpc.max-filters",
            "1000",
            "--rpc.gascap",
            "1000000000000",
            "--rpc.batch-response-max-size",
            "400000",
            "--http.max-connections",
            &MAX_WS.to_string(),
            "--http.api",
            "eth,net,web3,metanode",
            "--http.corsdomain",
            "https://app.example",
        ],
    );
    let url = node.http_url.clone();
    node.wait_for_block(1);
    let watcher = Watcher::start(url.clone());

    // A batch of 1,001 calls is refused as a whole, in geth's words; 1,000 is fine.
    let batch = |n: usize, method: &str, params: Value| {
        Value::Array((0..n).map(|i| json!({"jsonrpc":"2.0","id":i,"method":method,"params":params})).collect())
            .to_string()
    };
    let (_, v) = node.raw(&batch(1_001, "eth_blockNumber", json!([])));
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert_eq!(message(&v), "batch too large");
    let (_, v) = node.raw(&batch(1_000, "eth_blockNumber", json!([])));
    assert_eq!(v.as_array().map(Vec::len), Some(1_000), "a batch at the limit is answered");

    // A batch whose answers pass --rpc.batch-response-max-size (400 kB here).
    let (_, v) = node.raw(&batch(1_000, "eth_getBlockByNumber", json!(["latest", true])));
    assert_eq!(v["error"]["code"], -32003, "{}", &v.to_string()[..200.min(v.to_string().len())]);
    assert_eq!(message(&v), "response too large");

    // An endless loop under a huge gas cap is stopped by the 5 s EVM timeout.
    for method in ["eth_call", "eth_estimateGas"] {
        let started = Instant::now();
        let (_, v) = node.raw(
            &call(method, json!([{"data": Bytes::from_static(&ENDLESS_LOOP), "gas": "0xe8d4a51000"}, "latest"]))
                .to_string(),
        );
        let took = started.elapsed();
        assert_eq!(message(&v), "execution aborted (timeout = 5s)", "{method}: {v}");
        assert!(took < Duration::from_secs(6), "{method} answered after {took:?}");
        assert!(took >= Duration::from_secs(4), "{method} stopped early: {took:?}");
    }

    // A filter from block 0 on a chain longer than the range cap.
    node.wait_for_block(30);
    let id = node.rpc("eth_newFilter", json!([{"fromBlock": "0x0"}]));
    for method in ["eth_getFilterChanges", "eth_getFilterLogs"] {
        let (_, v) = node.raw(&call(method, json!([id])).to_string());
        assert_eq!(v["error"]["code"], -32005, "{method}: {v}");
        assert_eq!(message(&v), "query exceeds max block range 20", "{method}");
    }
    assert_eq!(node.rpc("eth_uninstallFilter", json!([id])), json!(true));
    // A filter from a recent block polls fine.
    let head = quantity(&node.rpc("eth_blockNumber", json!([])));
    let id = node.rpc("eth_newFilter", json!([{"fromBlock": format!("{:#x}", head - 5)}]));
    assert!(node.rpc("eth_getFilterChanges", json!([id])).is_array());

    // eth_feeHistory with 10,000 percentiles, or over 1,024 blocks.
    let percentiles: Vec<f64> = (0..10_000).map(|i| i as f64 / 100.0).collect();
    let (_, v) = node.raw(&call("eth_feeHistory", json!(["0x400", "latest", percentiles])).to_string());
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(message(&v), "too many reward percentiles: 10000 (limit 100)");
    let (_, v) = node.raw(&call("eth_feeHistory", json!(["0x401", "latest", []])).to_string());
    assert_eq!(message(&v), "block count 1025 exceeds the limit of 1024", "{v}");
    let ok = node.rpc("eth_feeHistory", json!(["0x400", "latest", [10.0, 50.0, 90.0]]));
    assert_eq!(ok["reward"].as_array().unwrap()[0].as_array().unwrap().len(), 3);

    // 2,000 filters from one client: 1,000 (one is installed already) and then the limit.
    let (_, first) = node.raw(&batch(999, "eth_newBlockFilter", json!([])));
    let ids: Vec<String> =
        first.as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 999);
    let (_, second) = node.raw(&batch(1_000, "eth_newBlockFilter", json!([])));
    for r in second.as_array().unwrap() {
        assert_eq!(r["error"]["code"], -32005, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().starts_with("too many filters installed (limit 1000)"), "{r}");
    }
    assert_eq!(node.rpc("eth_uninstallFilter", json!([ids[0]])), json!(true));
    assert!(node.rpc("eth_newBlockFilter", json!([])).is_string(), "a freed slot can be used");

    // --http.api: txpool is not served; --http.corsdomain: one origin allowed.
    let (_, v) = node.raw(&call("txpool_status", json!([])).to_string());
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let body = call("eth_chainId", json!([])).to_string();
    let ct = ("Content-Type", "application/json");
    let (status, head, _) = http_with_headers(&url, "POST", &[ct, ("Origin", "https://app.example")], &body);
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: https://app.example"), "{head}");
    let (_, head, _) = http_with_headers(&url, "POST", &[ct, ("Origin", "https://evil.example")], &body);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let preflight = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")];
    let (status, head, _) = http_with_headers(&url, "OPTIONS", &preflight, "");
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("access-control-allow-methods"), "{head}");
    let preflight = [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")];
    assert_eq!(http_with_headers(&url, "OPTIONS", &preflight, "").0, 403);

    // 1,000 WebSocket connections (at most 100 handshakes in flight from
    // this process): the first MAX_WS are kept, the rest refused with 429.
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let results: Vec<_> =
        futures::stream::iter(0..1_000).map(|_| ws_upgrade(addr.clone())).buffer_unordered(100).collect().await;
    let accepted = results.iter().filter(|r| r.0 == 101).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(accepted, MAX_WS, "statuses: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(refused.len(), 1_000 - MAX_WS);
    assert!(refused[0].1.contains("Too many connections"), "{}", refused[0].1);
    // Plain HTTP still answers while every WebSocket slot is taken.
    assert!(node.rpc("eth_blockNumber", json!([])).is_string());
    drop(results);
    // Closed connections free their slots.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = ws_upgrade(addr.clone()).await;
        if status == 101 {
            break;
        }
        assert!(Instant::now() < deadline, "slots not freed after the connections closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (latencies, failures) = watcher.finish();
    assert!(failures.is_empty(), "the polite client was refused: {failures:?}");
    let max = latencies.iter().max().copied().unwrap_or_default();
    let mut sorted = latencies.clone();
    sorted.sort();
    let p99 = sorted[sorted.len() * 99 / 100];
    eprintln!("eth_blockNumber: {} calls, p99 {p99:?}, max {max:?}", latencies.len());
    assert!(latencies.len() > 100, "only {} polls", latencies.len());
    assert!(max < Duration::from_millis(100), "slowest eth_blockNumber took {max:?} (p99 {p99:?})");
}

fn signer(key: &str) -> PrivateKeySigner {
    key.parse().unwrap()
}

/// Polls for a receipt.
fn receipt(node: &TestNode, hash: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = node.rpc("eth_getTransactionReceipt", json!([hash]));
        if !r.is_null() {
            return r;
        }
        assert!(Instant::now() < deadline, "transaction {hash} not included");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An EIP-1559 transaction from dev key 1 paying a 1 wei tip (so the tip
/// suggestion falls to almost nothing, as in the reported case).
fn send_1559(node: &TestNode, nonce: u64, gas: u64, to: TxKind, input: &[u8]) -> Value {
    let mut tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1,
        to,
        input: Bytes::copy_from_slice(input),
        ..Default::default()
    };
    let sig = signer(DEV_KEY_1).sign_transaction_sync(&mut tx).unwrap();
    let raw = Bytes::from(TxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718());
    node.rpc("eth_sendRawTransaction", json!([raw]))
}

#[test]
fn legacy_transaction_at_the_suggested_gas_price_is_accepted_after_busy_and_empty_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path(), &[]);
    node.wait_for_block(1);
    let me = signer(DEV_KEY_0);
    let to = Address::repeat_byte(0x77);
    let gas_limit = quantity(&node.rpc("eth_getBlockByNumber", json!(["latest", false]))["gasLimit"]) as u64;
    let (mut busy_nonce, mut my_nonce) = (0u64, 0u64);
    let mut saw_falling = false;
    let mut saw_rising = false;
    for (round, kind) in ["busy", "small", "empty", "busy", "busy", "small", "empty", "empty"].iter().enumerate() {
        match *kind {
            // Over half the block's gas: the next base fee rises.
            "busy" => {
                let h = send_1559(&node, busy_nonce, gas_limit * 2 / 3, TxKind::Create, &ENDLESS_LOOP);
                busy_nonce += 1;
                receipt(&node, &h);
            }
            // One transfer: the next base fee falls.
            "small" => {
                let h = send_1559(&node, busy_nonce, 21_000, TxKind::Call(to), &[]);
                busy_nonce += 1;
                receipt(&node, &h);
            }
            _ => {
                let head = quantity(&node.rpc("eth_blockNumber", json!([]))) as u64;
                node.wait_for_block(head + 2);
            }
        }
        let price = node.rpc("eth_gasPrice", json!([]));
        let latest = node.rpc("eth_getBlockByNumber", json!(["latest", false]));
        let base = quantity(&latest["baseFeePerGas"]);
        let used = quantity(&latest["gasUsed"]) as u64;
        if used > gas_limit / 2 {
            saw_rising = true;
        } else {
            saw_falling = true;
        }
        assert!(quantity(&price) >= base, "round {round} ({kind}): eth_gasPrice {price} below base fee {base}");
        let msg = json!({"from": me.address(), "to": to, "value": "0x1", "gasPrice": price});
        let mut estimate = 0;
        for tag in ["latest", "pending"] {
            let (_, v) = node.raw(&call("eth_estimateGas", json!([msg, tag])).to_string());
            assert!(v.get("error").is_none(), "round {round} ({kind}) estimateGas at {tag}: {v}");
            estimate = quantity(&v["result"]) as u64;
            let (_, v) = node.raw(&call("eth_call", json!([msg, tag])).to_string());
            assert!(v.get("error").is_none(), "round {round} ({kind}) eth_call at {tag}: {v}");
        }
        let mut tx = TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce: my_nonce,
            gas_price: quantity(&price),
            gas_limit: estimate,
            to: TxKind::Call(to),
            value: U256::from(1),
            ..Default::default()
        };
        let sig = me.sign_transaction_sync(&mut tx).unwrap();
        let raw = Bytes::from(TxEnvelope::Legacy(tx.into_signed(sig)).encoded_2718());
        let (_, v) = node.raw(&call("eth_sendRawTransaction", json!([raw])).to_string());
        assert!(v.get("error").is_none(), "round {round} ({kind}) send: {v}");
        my_nonce += 1;
        let r = receipt(&node, &v["result"]);
        assert_eq!(r["status"], "0x1", "round {round} ({kind})");
    }
    assert!(saw_rising && saw_falling, "both directions of the base fee were exercised");
}

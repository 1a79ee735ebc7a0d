//! Restarting on the same data directory after SIGTERM and after SIGKILL:
//! height, hashes, balances and state root are unchanged, and the chain goes on.

mod common;

use common::*;
use serde_json::{json, Value};

fn head(node: &TestNode) -> (u64, Value) {
    let block = node.rpc("eth_getBlockByNumber", json!(["latest", false]));
    let n = u64::from_str_radix(block["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    (n, block)
}

fn send_transfer(node: &TestNode, nonce: u64) {
    let raw = signed_transfer(DEV_KEY_0, nonce, alloy_primitives::Address::repeat_byte(0x77), 1000 + nonce);
    node.rpc("eth_sendRawTransaction", json!([raw]));
}

fn restart_keeps_everything(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let mut node = TestNode::start(&node_dir, &[]);
    for nonce in 0..3 {
        send_transfer(&node, nonce);
    }
    node.wait_for_block(4);
    // Wait until all three transfers are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while node.rpc("eth_getTransactionCount", json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]))
        != json!("0x3")
    {
        assert!(std::time::Instant::now() < deadline, "transfers not mined");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Everything RPC reported before the process died was committed and must survive.
    let (n, _) = head(&node);
    let before: Vec<Value> =
        (0..=n).map(|i| node.rpc("eth_getBlockByNumber", json!([format!("{i:#x}"), false]))).collect();
    let status = node.signal(signal);
    if signal == "TERM" {
        assert!(status.success(), "SIGTERM must shut down cleanly, got {status}");
    }
    let node2 = TestNode::start(&node_dir, &[]);
    let (n2, _) = head(&node2);
    assert!(n2 >= n, "restart lost blocks: head {n2} < {n}");
    for (i, b) in before.iter().enumerate() {
        let after = node2.rpc("eth_getBlockByNumber", json!([format!("{i:#x}"), false]));
        assert_eq!(after["hash"], b["hash"], "block {i} hash changed");
        assert_eq!(after["stateRoot"], b["stateRoot"], "block {i} state root changed");
    }
    let balance = node2.rpc("eth_getBalance", json!(["0x7777777777777777777777777777777777777777", "latest"]));
    assert_eq!(balance, json!(format!("{:#x}", 1000 + 1001 + 1002)));
    // The chain continues, and a transfer after restart is mined.
    send_transfer(&node2, 3);
    node2.wait_for_block(n2 + 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while node2.rpc("eth_getTransactionCount", json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]))
        != json!("0x4")
    {
        assert!(std::time::Instant::now() < deadline, "transfer after restart not mined");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn restart_after_sigterm_keeps_the_chain() {
    restart_keeps_everything("TERM");
}

#[test]
fn restart_after_sigkill_keeps_the_chain() {
    restart_keeps_everything("KILL");
}

#[test]
fn second_process_on_the_same_datadir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _node = TestNode::start(dir.path(), &[]);
    let out = std::process::Command::new(binary())
        .args(["--dev", "--http.port", "0", "--ws.port", "0", "--datadir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another metanode-node process"), "{err}");
}

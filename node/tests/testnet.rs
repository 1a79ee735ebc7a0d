//! A real 4-validator network on loopback, started from `metanode-node
//! testnet` output as separate processes: blocks finalize and every node
//! holds the same block at every height with a verifiable certificate; one
//! validator killed, the chain goes on; two of four killed, nothing is
//! finalized; both restarted, the chain resumes and they catch up; a full
//! node started late syncs from genesis to the tip.

mod common;

use common::*;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

const VALIDATORS: usize = 4;
const FULL_NODES: usize = 2;

/// A base port whose whole range (10 ports per node) is free right now.
fn free_base_port(nodes: usize) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 3_000) * 10;
        let all_free = (0..nodes as u16 * 10).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free port range found");
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    (nanos ^ std::process::id().rotate_left(16)) as u16
}

struct Net {
    _dir: tempfile::TempDir,
    out: PathBuf,
    base: u16,
}

impl Net {
    fn generate() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("net");
        let base = free_base_port(VALIDATORS + FULL_NODES);
        let status = Command::new(binary())
            .args(["testnet", "--validators", &VALIDATORS.to_string(), "--full-nodes", &FULL_NODES.to_string()])
            .args(["--base-port", &base.to_string(), "--block-time", "300ms", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "testnet generation failed");
        Net { _dir: dir, out, base }
    }

    fn node_dir(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    fn http(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.base + index as u16 * 10)
    }

    fn start(&self, index: usize) -> TestNode {
        let name =
            if index < VALIDATORS { format!("validator-{index}") } else { format!("fullnode-{}", index - VALIDATORS) };
        TestNode::start_configured(&self.node_dir(&name), &self.http(index), &[])
    }
}

fn height(node: &TestNode) -> u64 {
    parse_quantity(&node.rpc("eth_blockNumber", json!([])))
}

fn parse_quantity(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn block_hash(node: &TestNode, n: u64) -> Option<String> {
    let block = node.rpc("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]));
    block.get("hash").and_then(Value::as_str).map(str::to_string)
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every node has the same hash at every height up to the lowest head.
fn assert_same_chain(nodes: &[&TestNode]) -> u64 {
    let top = nodes.iter().map(|n| height(n)).min().unwrap();
    for h in 1..=top {
        let hashes: Vec<_> = nodes.iter().map(|n| block_hash(n, h)).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "nodes disagree at height {h}: {hashes:?}");
    }
    top
}

fn all(nodes: &[Option<TestNode>]) -> Vec<&TestNode> {
    nodes.iter().flatten().collect()
}

fn send_transfer(node: &TestNode, nonce: u64) -> String {
    let raw = signed_transfer(DEV_KEY_1, nonce, alloy_primitives::Address::repeat_byte(0x42), 7);
    node.rpc("eth_sendRawTransaction", json!([raw])).as_str().unwrap().to_string()
}

fn wait_receipt(node: &TestNode, hash: &str) -> Value {
    let mut receipt = Value::Null;
    wait_until("the transaction is included", Duration::from_secs(60), || {
        receipt = node.rpc("eth_getTransactionReceipt", json!([hash]));
        !receipt.is_null()
    });
    receipt
}

fn check_certificate(node: &TestNode, n: u64) {
    let cert = node.rpc("metanode_getCommit", json!([format!("0x{n:x}")]));
    assert_eq!(cert["height"], json!(n), "certificate of block {n}: {cert}");
    assert_eq!(cert["blockHash"].as_str(), block_hash(node, n).as_deref(), "certificate names another block");
    let signatures = cert["signatures"].as_array().unwrap();
    assert!(signatures.len() >= 3, "block {n} certified by {} of 4 validators", signatures.len());
}

#[test]
fn four_validators_finalize_survive_faults_and_catch_up() {
    let net = Net::generate();
    for name in ["validator-0", "validator-3", "fullnode-0"] {
        let dir = net.node_dir(name);
        for file in ["config.toml", "genesis.json", "keys/node_key.json"] {
            assert!(dir.join(file).exists(), "{name}/{file} missing");
        }
    }
    assert!(net.node_dir("validator-0").join("keys/validator_key.json").exists());
    assert!(!net.node_dir("fullnode-0").join("keys/validator_key.json").exists());
    assert!(net.out.join("docker-compose.yml").exists());

    let mut nodes: Vec<Option<TestNode>> = (0..VALIDATORS + 1).map(|i| Some(net.start(i))).collect();

    // Blocks are finalized and every node holds the same ones.
    for node in all(&nodes) {
        node.wait_for_block(5);
    }
    assert_same_chain(&all(&nodes));
    check_certificate(nodes[0].as_ref().unwrap(), 3);
    check_certificate(nodes[VALIDATORS].as_ref().unwrap(), 4);

    // A transaction sent to the full node reaches a proposer and is included.
    let full = nodes[VALIDATORS].as_ref().unwrap();
    let hash = send_transfer(full, 0);
    let receipt = wait_receipt(full, &hash);
    assert_eq!(receipt["status"], json!("0x1"));

    // One validator killed: the other three keep finalizing.
    nodes[3].as_mut().unwrap().signal("KILL");
    nodes[3] = None;
    let before = height(nodes[0].as_ref().unwrap());
    for node in all(&nodes) {
        node.wait_for_block(before + 5);
    }
    assert_same_chain(&all(&nodes));

    // Two of four down: no block can be finalized.
    nodes[2].as_mut().unwrap().signal("KILL");
    nodes[2] = None;
    std::thread::sleep(Duration::from_secs(2));
    let stalled: Vec<u64> = all(&nodes).iter().map(|n| height(n)).collect();
    std::thread::sleep(Duration::from_secs(4));
    let still: Vec<u64> = all(&nodes).iter().map(|n| height(n)).collect();
    assert_eq!(stalled, still, "blocks were finalized with half the validators down");
    assert_same_chain(&all(&nodes));

    // Both restarted: the chain resumes and they catch up.
    nodes[2] = Some(net.start(2));
    nodes[3] = Some(net.start(3));
    let resume_from = *still.iter().max().unwrap();
    for node in all(&nodes) {
        node.wait_for_block(resume_from + 5);
    }
    assert_same_chain(&all(&nodes));

    // A fresh full node started late syncs from genesis to the tip.
    let tip = height(nodes[0].as_ref().unwrap());
    let late = net.start(VALIDATORS + 1);
    late.wait_for_block(tip);
    let mut everyone = all(&nodes);
    everyone.push(&late);
    assert!(assert_same_chain(&everyone) >= tip);
    check_certificate(&late, tip);
}

//! A real 4-validator network on loopback, started from `metanode-node
//! testnet` output as separate processes: blocks finalize and every node
//! holds the same block at every height with a verifiable certificate; one
//! validator killed, the chain goes on; two of four killed, nothing is
//! finalized; both restarted, the chain resumes and they catch up; a full
//! node started late syncs from genesis to the tip. Validators that can
//! only reach each other through one hub finalize with `--consensus.relay`.

mod common;

use common::{net::*, *};
use serde_json::{json, Value};
use std::time::Duration;

const VALIDATORS: usize = 4;
const FULL_NODES: usize = 2;

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
    let net = Net::generate(VALIDATORS, FULL_NODES);
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
    // It knows where the validators are, and says it is no longer syncing.
    wait_until("the late node reports the validators' height", Duration::from_secs(20), || {
        let target = net
            .metrics(VALIDATORS + 1)
            .lines()
            .find_map(|l| l.strip_prefix("metanode_sync_target_height ").and_then(|v| v.trim().parse::<u64>().ok()));
        target.is_some_and(|t| t >= tip)
    });
    wait_until("eth_syncing is false at the tip", Duration::from_secs(20), || {
        late.rpc("eth_syncing", json!([])) == json!(false)
    });
    // Through kills, restarts and catch-up, no honest peer was taken for a bad one.
    for index in (0..=VALIDATORS).chain([VALIDATORS + 1]) {
        let metrics = net.metrics(index);
        let cut: Vec<&str> = metrics.lines().filter(|l| l.starts_with("metanode_disconnected_peers_total{")).collect();
        assert!(cut.is_empty(), "node {index} disconnected honest peers: {cut:?}");
    }
}

/// Validators 1 to 3 know only validator 0 (a star), so votes between them
/// must be relayed. With relaying on they decide each block themselves, live,
/// rather than waiting to fetch it from the hub by catch-up.
#[test]
fn validators_behind_one_hub_finalize_through_relays() {
    let net = Net::generate(VALIDATORS, 0);
    let hub = format!("/ip4/127.0.0.1/tcp/{}", net.port(0, 2));
    let nodes: Vec<TestNode> = (0..VALIDATORS)
        .map(|i| {
            let peers = if i == 0 { vec![] } else { vec!["--bootnodes", hub.as_str()] };
            net.start_with(i, &[&["--consensus.relay", "true"], peers.as_slice()].concat())
        })
        .collect();
    for node in &nodes {
        node.wait_for_block(12);
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let tip = assert_same_chain(&refs);
    for i in 1..VALIDATORS {
        let synced: u64 = net
            .metrics(i)
            .lines()
            .find_map(|l| l.strip_prefix("metanode_sync_blocks_total ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0);
        assert!(
            synced * 2 < tip,
            "validator-{i} fetched {synced} of {tip} blocks by catch-up instead of deciding them"
        );
    }
    // Each node counts the validators it reaches directly: the hub all three, a leaf only the hub.
    let peer_validators = |i: usize| -> Option<u64> {
        net.metrics(i)
            .lines()
            .find_map(|l| l.strip_prefix("metanode_consensus_peer_validators ").and_then(|n| n.trim().parse().ok()))
    };
    wait_until("the nodes count the validators they reach", Duration::from_secs(30), || {
        peer_validators(0) == Some(3) && (1..VALIDATORS).all(|i| peer_validators(i) == Some(1))
    });
}

/// libfaketime, which `scripts/setup.sh` installs (Debian's `faketime`).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn a_full_node_whose_clock_is_a_minute_behind_catches_up() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: run scripts/setup.sh (installs Debian's faketime)"
    );
    let net = Net::generate(1, 1);
    let validator = net.start(0);
    validator.wait_for_block(20);
    // Every block the validator made is more than 15 s ahead of this node's
    // clock: too far for a live proposal, fine for a certified block.
    let behind = net.start_env(
        1,
        &[],
        &[("LD_PRELOAD", LIBFAKETIME), ("FAKETIME", "-60s"), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")],
    );
    let clock: u64 = std::process::Command::new("date")
        .arg("+%s")
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", "-60s")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        .unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now - clock >= 59, "libfaketime did not move the clock back ({clock} vs {now})");
    let target = height(&validator) + 5;
    behind.wait_for_block(target);
    assert_same_chain(&[&validator, &behind]);
}

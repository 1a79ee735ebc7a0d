//! A `metanode-node testnet` network on loopback: generated into a temporary
//! directory on a free port range, its nodes started as processes.

use super::*;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

/// A base port whose whole range (10 ports per node) is free right now.
pub fn free_base_port(nodes: usize) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 3_000) * 10;
        let all_free = (0..nodes as u16 * 10).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free port range found");
}

pub fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    (nanos ^ std::process::id().rotate_left(16)) as u16
}

pub struct Net {
    _dir: tempfile::TempDir,
    pub out: PathBuf,
    pub base: u16,
    pub validators: usize,
}

impl Net {
    /// Writes a network of `validators` and `full_nodes` with a 300 ms block time.
    pub fn generate(validators: usize, full_nodes: usize) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("net");
        let base = free_base_port(validators + full_nodes);
        let status = Command::new(binary())
            .args(["testnet", "--validators", &validators.to_string(), "--full-nodes", &full_nodes.to_string()])
            .args(["--base-port", &base.to_string(), "--block-time", "300ms", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "testnet generation failed");
        Net { _dir: dir, out, base, validators }
    }

    /// The directory of node `name` (`validator-0`, `fullnode-1`, ...).
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Port `offset` of node `index` (0 http, 1 ws, 2 consensus, 3 metrics, 4 gossip).
    pub fn port(&self, index: usize, offset: u16) -> u16 {
        self.base + index as u16 * 10 + offset
    }

    /// Node `index`'s JSON-RPC URL; validators come first, then full nodes.
    pub fn http(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.port(index, 0))
    }

    /// Node `index`'s Prometheus text.
    pub fn metrics(&self, index: usize) -> String {
        http_request(&format!("http://127.0.0.1:{}", self.port(index, 3)), "GET", "/metrics", "").1
    }

    /// Starts node `index` from its directory.
    pub fn start(&self, index: usize) -> TestNode {
        self.start_with(index, &[])
    }

    /// Starts node `index` from its directory, with `extra` flags over its config.
    pub fn start_with(&self, index: usize, extra: &[&str]) -> TestNode {
        self.start_env(index, extra, &[])
    }

    /// Starts node `index` with `extra` flags and `env` variables.
    pub fn start_env(&self, index: usize, extra: &[&str], env: &[(&str, &str)]) -> TestNode {
        let name = if index < self.validators {
            format!("validator-{index}")
        } else {
            format!("fullnode-{}", index - self.validators)
        };
        TestNode::start_configured_env(&self.node_dir(&name), &self.http(index), extra, env)
    }
}

pub fn height(node: &TestNode) -> u64 {
    parse_quantity(&node.rpc("eth_blockNumber", json!([])))
}

pub fn parse_quantity(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

pub fn block_hash(node: &TestNode, n: u64) -> Option<String> {
    let block = node.rpc("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]));
    block.get("hash").and_then(Value::as_str).map(str::to_string)
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every node has the same hash at every height up to the lowest head.
pub fn assert_same_chain(nodes: &[&TestNode]) -> u64 {
    let top = nodes.iter().map(|n| height(n)).min().unwrap();
    for h in 1..=top {
        let hashes: Vec<_> = nodes.iter().map(|n| block_hash(n, h)).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "nodes disagree at height {h}: {hashes:?}");
    }
    top
}

pub fn all(nodes: &[Option<TestNode>]) -> Vec<&TestNode> {
    nodes.iter().flatten().collect()
}

//! Starting the real `metanode-node` binary on free loopback ports and
//! talking to it. Ports are chosen by the OS (port 0) and read back from the
//! node's start-up banner, so tests never collide on fixed ports.

#![allow(dead_code)]

pub mod net;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The dev account 0 private key, derived by the node from the public test mnemonic.
pub const DEV_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Dev account 1 private key.
pub const DEV_KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// A running node process, killed on drop.
pub struct TestNode {
    pub child: Child,
    pub http_url: String,
    pub ws_url: String,
    pub datadir: PathBuf,
    pub stdout_lines: mpsc::Receiver<String>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_metanode-node")
}

/// Spawns the node with test logging, its stdout read line by line on a thread.
fn spawn(mut cmd: Command) -> (Child, mpsc::Receiver<String>) {
    cmd.env_remove("METANODE_ROLE")
        .env("RUST_LOG", std::env::var("METANODE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawn metanode-node");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// A signed EIP-1559 transfer of `value` wei to `to` from the dev key `key`, as 0x-hex.
pub fn signed_transfer(key: &str, nonce: u64, to: alloy_primitives::Address, value: u64) -> String {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::Encodable2718;
    use alloy_network::TxSignerSync;
    let signer: alloy_signer_local::PrivateKeySigner = key.parse().unwrap();
    let mut tx = TxEip1559 {
        chain_id: 9928,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(to),
        value: alloy_primitives::U256::from(value),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut tx).unwrap();
    alloy_primitives::hex::encode_prefixed(TxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718())
}

impl TestNode {
    /// Starts `metanode-node --dev` on `datadir` with extra arguments.
    pub fn start(datadir: &Path, extra: &[&str]) -> TestNode {
        Self::start_with_block_time(datadir, "200ms", extra)
    }

    /// Like [`TestNode::start`] with another block time (a long chain quickly).
    pub fn start_with_block_time(datadir: &Path, block_time: &str, extra: &[&str]) -> TestNode {
        let mut cmd = Command::new(binary());
        cmd.args([
            "--dev",
            "--http.port",
            "0",
            "--ws.port",
            "0",
            "--metrics",
            "0",
            "--block-time",
            block_time,
            "--datadir",
        ])
        .arg(datadir)
        .args(extra);
        let (child, rx) = spawn(cmd);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut http, mut ws) = (None, None);
        while http.is_none() || ws.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("node did not print its endpoints in time"));
            if let Some(rest) = line.strip_prefix("JSON-RPC (HTTP): ") {
                http = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("WebSocket:       ") {
                ws = Some(rest.trim().to_string());
            }
        }
        TestNode {
            child,
            http_url: http.unwrap(),
            ws_url: ws.unwrap(),
            datadir: datadir.to_path_buf(),
            stdout_lines: rx,
        }
    }

    /// Starts `metanode-node --datadir <dir>` as the node's own config.toml
    /// describes it (a `testnet` directory), and waits until `http_url` answers.
    pub fn start_configured(datadir: &Path, http_url: &str, extra: &[&str]) -> TestNode {
        Self::start_configured_env(datadir, http_url, extra, &[])
    }

    /// [`TestNode::start_configured`] with extra environment variables.
    pub fn start_configured_env(datadir: &Path, http_url: &str, extra: &[&str], env: &[(&str, &str)]) -> TestNode {
        let mut cmd = Command::new(binary());
        cmd.arg("--datadir").arg(datadir).args(extra).envs(env.iter().copied());
        let (child, rx) = spawn(cmd);
        let node = TestNode {
            child,
            http_url: http_url.to_string(),
            ws_url: String::new(),
            datadir: datadir.to_path_buf(),
            stdout_lines: rx,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = http_url.trim_start_matches("http://").trim_end_matches('/').to_string();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "node in {} did not open {http_url}", datadir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    /// Sends a signal and waits for the process to exit.
    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let status = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{sig} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "node did not exit after SIG{sig}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A raw JSON-RPC call over HTTP returning the whole response object.
    pub fn raw(&self, body: &str) -> (u16, serde_json::Value) {
        http_post(&self.http_url, body)
    }

    /// A JSON-RPC call returning `result` (panics on error).
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string();
        let (_, v) = self.raw(&body);
        if let Some(e) = v.get("error") {
            panic!("{method} failed: {e}");
        }
        v["result"].clone()
    }

    /// Waits until the head is at least `n`.
    pub fn wait_for_block(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let head = u64::from_str_radix(
                self.rpc("eth_blockNumber", serde_json::json!([])).as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap();
            if head >= n {
                return;
            }
            assert!(Instant::now() < deadline, "chain did not reach block {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 POST (no client library, so tests can send malformed bodies).
pub fn http_post(url: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = http_request(url, "POST", "/", body);
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// Minimal HTTP/1.1 request returning status and body.
pub fn http_request(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body.as_bytes());
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Undo chunked transfer encoding if present.
    let body = if text.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(&body) } else { body };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

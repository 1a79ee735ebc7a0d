//! metanode-load: drives a running node over JSON-RPC and reports sustained
//! throughput.
//!
//! `transfers`: funds N senders from a dev account, pre-signs ETH transfers,
//! sends them in batched `eth_sendRawTransaction` requests while keeping a
//! bounded number in flight, and counts transactions in committed (final)
//! blocks per second. `call`: deploys a balanceOf-shaped contract and
//! measures `eth_call` requests per second over several connections.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_network::TxSignerSync;
use alloy_primitives::{hex, Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use metanode_benches::*;
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Dev account 0 of the public test mnemonic (funded by `metanode-node --dev`).
const DEV_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

#[derive(Parser)]
#[command(name = "metanode-load", about = "Load generator for a MetaNode JSON-RPC endpoint")]
struct Cli {
    /// JSON-RPC HTTP endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Key of a funded account that pays for setup.
    #[arg(long, default_value = DEV_KEY_0)]
    funder_key: String,
    /// Node process ids (comma-separated), to sample their resident memory.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Pre-signed ETH transfers over batched JSON-RPC.
    Transfers {
        /// Distinct senders.
        #[arg(long, default_value_t = 1000)]
        senders: u64,
        /// How long to send.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Transactions pre-signed per second of the run (an upper bound on the rate).
        #[arg(long, default_value_t = 7000)]
        rate: u64,
        /// Transactions per JSON-RPC batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Most transactions submitted but not yet in a block.
        #[arg(long, default_value_t = 20_000)]
        in_flight: u64,
    },
    /// eth_call of balanceOf over several connections.
    Call {
        /// Concurrent connections.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// How long to call.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

struct Rpc {
    url: String,
    http: reqwest::Client,
}

impl Rpc {
    fn new(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
        Ok(Self { url: url.to_string(), http })
    }

    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = self.http.post(&self.url).json(&body).send().await?.json().await?;
        if let Some(e) = v.get("error") {
            bail!("{method}: {e}");
        }
        Ok(v["result"].clone())
    }

    /// Sends raw transactions in one batch; returns how many were accepted.
    async fn send_batch(&self, raws: &[String]) -> anyhow::Result<usize> {
        let body: Vec<Value> = raws
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [r]}))
            .collect();
        let v: Value = self.http.post(&self.url).json(&body).send().await?.json().await?;
        let arr = v.as_array().context("batch answer is not an array")?;
        let errors: Vec<&Value> = arr.iter().filter_map(|r| r.get("error")).collect();
        if let Some(e) = errors.first() {
            eprintln!("load: {} of {} rejected, e.g. {e}", errors.len(), arr.len());
        }
        Ok(arr.len() - errors.len())
    }

    async fn u64(&self, method: &str, params: Value) -> anyhow::Result<u64> {
        let v = self.call(method, params).await?;
        let s = v.as_str().context("not a quantity")?;
        Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
    }

    /// The transaction hashes of block `n`.
    async fn block_tx_hashes(&self, n: u64) -> anyhow::Result<Vec<B256>> {
        let block = self.call("eth_getBlockByNumber", json!([format!("{n:#x}"), false])).await?;
        let txs = block["transactions"].as_array().context("block without transactions")?;
        txs.iter().map(|h| Ok(h.as_str().context("not a hash")?.parse()?)).collect()
    }
}

fn raw(tx: &TxEnvelope) -> String {
    hex::encode_prefixed(tx.encoded_2718())
}

fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

/// Sends `txs` from one account and waits until its nonce passes them.
async fn send_and_wait(rpc: &Rpc, from: Address, txs: &[TxEnvelope]) -> anyhow::Result<()> {
    for chunk in txs.chunks(500) {
        let raws: Vec<String> = chunk.iter().map(raw).collect();
        rpc.send_batch(&raws).await?;
    }
    // The pending nonce now counts everything just sent; wait for blocks to reach it.
    let target = rpc.u64("eth_getTransactionCount", json!([from, "pending"])).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rpc.u64("eth_getTransactionCount", json!([from, "latest"])).await? < target {
        if Instant::now() > deadline {
            bail!("setup transactions were not mined in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn transfers(
    cli: &Cli,
    senders: u64,
    seconds: u64,
    rate: u64,
    batch: usize,
    in_flight: u64,
) -> anyhow::Result<()> {
    let rpc = Rpc::new(&cli.rpc)?;
    let chain_id = rpc.u64("eth_chainId", json!([])).await?;
    let funder: PrivateKeySigner = cli.funder_key.parse().context("invalid --funder-key")?;
    let signers: Vec<_> = (0..senders).map(sender).collect();
    let nonce0 = rpc.u64("eth_getTransactionCount", json!([funder.address(), "pending"])).await?;
    // Senders get 9 ETH each (1,000 of them fit in a dev account's 10,000 ETH);
    // at a 100 gwei fee cap that covers over 4,000 transfers each.
    let max_fee = 100 * GWEI;
    let funding: Vec<TxEnvelope> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            transfer(&funder, chain_id, nonce0 + i as u64, s.address(), U256::from(9 * 10u128.pow(18)), max_fee)
        })
        .collect();
    eprintln!("load: funding {senders} senders");
    // In rounds below the pool's per-sender limit, each mined before the next.
    for round in funding.chunks(256) {
        send_and_wait(&rpc, funder.address(), round).await?;
    }
    let mut first_nonces = Vec::with_capacity(signers.len());
    for s in &signers {
        first_nonces.push(rpc.u64("eth_getTransactionCount", json!([s.address(), "pending"])).await?);
    }
    let per_sender = (seconds * rate).div_ceil(senders);
    eprintln!("load: pre-signing {} transfers", per_sender * senders);
    let t = Instant::now();
    let first = *first_nonces.iter().min().unwrap_or(&0);
    if first_nonces.iter().any(|n| *n != first) {
        bail!("senders have different nonces; use fresh senders");
    }
    let (hashes, txs): (Vec<B256>, Vec<String>) = tokio::task::spawn_blocking(move || {
        presign_transfers(&signers, chain_id, first, per_sender, max_fee).iter().map(|t| (*t.tx_hash(), raw(t))).unzip()
    })
    .await?;
    eprintln!("load: signed in {:.1}s; sending for up to {seconds}s", t.elapsed().as_secs_f64());

    let start_block = rpc.u64("eth_blockNumber", json!([])).await?;
    let mut next_block = start_block + 1;
    let (mut submitted, mut included) = (0u64, 0u64);
    let mut peak_rss = vec![0u64; cli.pid.len()];
    // Submission time of every sent transaction, for submit-to-finalized latency.
    let mut sent_at: HashMap<B256, Instant> = HashMap::with_capacity(txs.len());
    let mut latencies: Vec<Duration> = Vec::with_capacity(txs.len());
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut per_second = Vec::new();
    let mut window = 0u64;
    let mut cursor = 0usize;
    while start.elapsed() < Duration::from_secs(seconds) && (cursor < txs.len() || included < submitted) {
        if cursor < txs.len() && submitted - included < in_flight {
            let end = (cursor + batch).min(txs.len());
            let now = Instant::now();
            sent_at.extend(hashes[cursor..end].iter().map(|h| (*h, now)));
            submitted += rpc.send_batch(&txs[cursor..end]).await? as u64;
            cursor = end;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let head = rpc.u64("eth_blockNumber", json!([])).await?;
        while next_block <= head {
            let block = rpc.block_tx_hashes(next_block).await?;
            let seen = Instant::now();
            let n = block.len() as u64;
            latencies.extend(block.iter().filter_map(|h| sent_at.remove(h)).map(|t| seen - t));
            included += n;
            window += n;
            next_block += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            let rss: Vec<u64> = cli.pid.iter().map(|p| rss_mib(*p).unwrap_or(0)).collect();
            for (peak, now) in peak_rss.iter_mut().zip(&rss) {
                *peak = (*peak).max(*now);
            }
            eprintln!(
                "load: t={:>3}s finalized {window:>6} tx/s  in flight {:>6}  rss {:?} MiB",
                start.elapsed().as_secs(),
                submitted - included,
                rss
            );
            per_second.push(window);
            window = 0;
            last_report = Instant::now();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: usize| {
        latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1))).map(|d| d.as_millis())
    };
    println!(
        "transfers: {included} finalized of {submitted} submitted in {elapsed:.1}s = {:.0} tx/s sustained; blocks {}..{}; submit-to-finalized latency p50 {:?} ms p99 {:?} ms; peak RSS per node {:?} MiB",
        included as f64 / elapsed,
        start_block + 1,
        next_block - 1,
        pct(50),
        pct(99),
        peak_rss
    );
    Ok(())
}

/// balanceOf(address) as solc lays it out (mapping at slot 0), hand-assembled:
/// returns sload(keccak(address . 0)).
fn balance_of_runtime() -> Vec<u8> {
    vec![
        0x60, 0x04, 0x35, 0x60, 0x00, 0x52, // mstore(0, calldataload(4))
        0x60, 0x00, 0x60, 0x20, 0x52, // mstore(32, 0)
        0x60, 0x40, 0x60, 0x00, 0x20, // keccak256(0, 64)
        0x54, 0x60, 0x00, 0x52, // mstore(0, sload(..))
        0x60, 0x20, 0x60, 0x00, 0xf3, // return(0, 32)
    ]
}

async fn calls(cli: &Cli, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let rpc = Rpc::new(&cli.rpc)?;
    let chain_id = rpc.u64("eth_chainId", json!([])).await?;
    let funder: PrivateKeySigner = cli.funder_key.parse().context("invalid --funder-key")?;
    let rt = balance_of_runtime();
    let mut init = vec![0x60, rt.len() as u8, 0x80, 0x60, 11, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3];
    init.extend(&rt);
    let nonce = rpc.u64("eth_getTransactionCount", json!([funder.address(), "pending"])).await?;
    let mut tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 1_000 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Create,
        input: Bytes::from(init),
        ..Default::default()
    };
    let sig = funder.sign_transaction_sync(&mut tx)?;
    send_and_wait(&rpc, funder.address(), &[TxEnvelope::Eip1559(tx.into_signed(sig))]).await?;
    let contract = funder.address().create(nonce);
    let mut data = vec![0x70, 0xa0, 0x82, 0x31];
    data.extend([0u8; 12]);
    data.extend(funder.address().0);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to": contract, "data": Bytes::from(data)}, "latest"]});
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, body) = (cli.rpc.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let v: Value = http.post(&url).json(&body).send().await?.json().await?;
                if v.get("result").is_none() {
                    bail!("eth_call failed: {v}");
                }
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    println!(
        "call: {total} eth_call balanceOf in {seconds}s over {connections} connections = {:.0} req/s",
        total as f64 / seconds as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Transfers { senders, seconds, rate, batch, in_flight } => {
            transfers(&cli, senders, seconds, rate, batch, in_flight).await
        }
        Mode::Call { connections, seconds } => calls(&cli, connections, seconds).await,
    }
}

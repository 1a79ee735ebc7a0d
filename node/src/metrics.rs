//! The Prometheus endpoint: `GET /metrics` in the text exposition format,
//! gathered at scrape time from the chain, the pool and consensus.

use crate::chain::ChainService;
use anyhow::Context;
use metanode_consensus::ConsensusMetrics;
use metanode_p2p::TxGossip;
use std::{fmt::Write, net::SocketAddr, sync::Arc};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What a scrape reads.
pub struct MetricsSources {
    /// The chain head and the pool.
    pub chain: Arc<ChainService>,
    /// Consensus counters.
    pub consensus: Arc<ConsensusMetrics>,
    /// Transaction gossip, for its peer checks.
    pub gossip: Arc<TxGossip>,
}

impl MetricsSources {
    /// All metrics, in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let head = self.chain.head();
        let _ = writeln!(
            out,
            "# HELP metanode_chain_height Number of the last committed block.\n# TYPE metanode_chain_height gauge\nmetanode_chain_height {}",
            head.number()
        );
        let _ = writeln!(
            out,
            "# HELP metanode_txpool_transactions Transactions in the pool.\n# TYPE metanode_txpool_transactions gauge\nmetanode_txpool_transactions {}",
            self.chain.pool().len()
        );
        let status = self.chain.pool().status();
        let dropped = self.chain.pool().counters();
        let _ = writeln!(
            out,
            "# HELP metanode_txpool_queued Transactions in the pool waiting for a nonce gap to close.\n# TYPE metanode_txpool_queued gauge\nmetanode_txpool_queued {}",
            status.queued
        );
        let _ = writeln!(
            out,
            "# HELP metanode_txpool_dropped_total Transactions the pool dropped by its limits: evicted for better-paying ones, or queued past the lifetime.\n# TYPE metanode_txpool_dropped_total counter\nmetanode_txpool_dropped_total{{reason=\"evicted\"}} {}\nmetanode_txpool_dropped_total{{reason=\"expired\"}} {}",
            dropped.evicted, dropped.expired
        );
        let _ = writeln!(
            out,
            "# HELP metanode_p2p_banned_peers_total Gossip peers banned for sending invalid transactions.\n# TYPE metanode_p2p_banned_peers_total counter\nmetanode_p2p_banned_peers_total {}",
            self.gossip.banned_peers()
        );
        let _ = writeln!(
            out,
            "# HELP metanode_p2p_refused_connections_total Gossip connections refused: banned peers, or over the connection limits.\n# TYPE metanode_p2p_refused_connections_total counter\nmetanode_p2p_refused_connections_total {}",
            self.gossip.refused_connections()
        );
        let _ = writeln!(
            out,
            "# HELP metanode_p2p_rate_limited_messages_total Gossip messages ignored unjudged: their peer was over its rate, or too many were being judged.\n# TYPE metanode_p2p_rate_limited_messages_total counter\nmetanode_p2p_rate_limited_messages_total {}",
            self.gossip.rate_limited_messages()
        );
        let _ = writeln!(
            out,
            "# HELP metanode_p2p_foreign_peers_total Peers disconnected for being on another chain (genesis, chain id or validator set).\n# TYPE metanode_p2p_foreign_peers_total counter\nmetanode_p2p_foreign_peers_total {}",
            self.gossip.foreign_peers()
        );
        self.consensus.render(&mut out);
        out
    }
}

/// Binds the endpoint; returns the bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, sources: Arc<MetricsSources>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let sources = sources.clone();
            tokio::spawn(async move {
                let _ = answer(stream, &sources).await;
            });
        }
    });
    Ok(bound)
}

/// Answers one HTTP/1.x request and closes the connection.
async fn answer(mut stream: TcpStream, sources: &MetricsSources) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 || head.len() > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, body, kind) = match (method, path) {
        (b"GET", b"/metrics") | (b"GET", b"/") => ("200 OK", sources.render(), "text/plain; version=0.0.4"),
        (b"GET", _) => ("404 Not Found", "not found; metrics are at /metrics\n".to_string(), "text/plain"),
        _ => ("405 Method Not Allowed", "only GET\n".to_string(), "text/plain"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

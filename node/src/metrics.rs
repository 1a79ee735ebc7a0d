//! The Prometheus endpoint: `GET /metrics` in the text exposition format,
//! gathered at scrape time from the chain, the pool and consensus.

use crate::chain::ChainService;
use anyhow::Context;
use metanode_consensus::ConsensusMetrics;
use metanode_p2p::TxGossip;
use std::{fmt::Write, future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
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

/// Scrapes answered at once; further connections wait in the listen backlog.
const MAX_SCRAPES: usize = 16;
/// First pause after a failed accept; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Binds the endpoint; returns the bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, sources: Arc<MetricsSources>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let listener = Arc::new(listener);
    tokio::spawn(accept_loop(
        move || {
            let listener = listener.clone();
            async move { listener.accept().await.map(|(stream, _)| stream) }
        },
        MAX_SCRAPES,
        move |stream| {
            let sources = sources.clone();
            async move {
                let _ = answer(stream, &sources).await;
            }
        },
    ));
    Ok(bound)
}

/// Accepts connections and hands each to `handle`, at most `max` at once.
/// A failed accept (`EMFILE` when the process is out of descriptors, and
/// the like) is logged and followed by a growing pause: retrying at once
/// fails the same way and would spin a core.
async fn accept_loop<S, A, AF, H, HF>(mut accept: A, max: usize, handle: H)
where
    A: FnMut() -> AF,
    AF: Future<Output = std::io::Result<S>>,
    H: Fn(S) -> HF,
    HF: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    let mut backoff = MIN_BACKOFF;
    loop {
        // Waiting for a slot before accepting leaves extra connections in
        // the kernel's backlog instead of spawning without bound.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        match accept().await {
            Ok(stream) => {
                backoff = MIN_BACKOFF;
                let fut = handle(stream);
                tokio::spawn(async move {
                    fut.await;
                    drop(slot);
                });
            }
            Err(error) => {
                drop(slot);
                tracing::warn!(%error, retry_in = ?backoff, "metrics endpoint cannot accept a connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn failing_accepts_back_off_instead_of_spinning() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let run = accept_loop(
            move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Err::<(), _>(std::io::Error::from_raw_os_error(24)) } // EMFILE
            },
            4,
            |_: ()| async {},
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), run).await;
        let n = calls.load(Ordering::Relaxed);
        assert!(n <= 10, "{n} accept attempts in one second");
    }

    #[tokio::test]
    async fn at_most_max_connections_are_handled_at_once() {
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let run = accept_loop(
            move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            },
            3,
            |_: ()| std::future::pending::<()>(),
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), run).await;
        assert_eq!(accepted.load(Ordering::Relaxed), 3, "connections beyond the cap wait in the backlog");
    }
}

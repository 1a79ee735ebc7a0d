//! The chain as consensus sees it: [`ChainApp`] implements
//! [`metanode_consensus::Application`] over the [`ChainService`]. Blocks
//! travel as their Ethereum RLP encoding; execution runs on the blocking
//! pool so the consensus host keeps answering while a block executes.

use crate::chain::ChainService;
use alloy_primitives::B256;
use alloy_rlp::{Decodable, Encodable};
use async_trait::async_trait;
use bytes::Bytes;
use metanode_consensus::{AppError, Application, BlockOrigin, BlockRejected, BuiltBlock};
use metanode_execution::{ExecError, ExecutedBlock};
use metanode_primitives::{recover_senders, Block, CommitCertificate, SealedBlock};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// How far ahead of this node's clock a proposed block's timestamp may be.
const MAX_CLOCK_DRIFT_SECS: u64 = 15;
/// Executed blocks kept for their commit. Consensus bounds how many
/// proposals it executes per height; this bounds the cache regardless, and a
/// decided block that was not kept is simply executed again at commit.
const MAX_CACHED_EXECUTIONS: usize = 32;

/// The consensus application of a node.
pub struct ChainApp {
    chain: Arc<ChainService>,
    /// Blocks built or checked at the next height, by hash, so the commit
    /// does not execute them again.
    executed: Mutex<HashMap<B256, ExecutedBlock>>,
    /// When an idle proposer stops waiting for transactions.
    block_time: Duration,
    last_commit: Mutex<Instant>,
}

impl ChainApp {
    /// Consensus access to `chain`; a proposer with an empty pool waits up to
    /// `block_time` after the last commit for transactions before proposing
    /// an empty block.
    pub fn new(chain: Arc<ChainService>, block_time: Duration) -> Arc<Self> {
        Arc::new(Self {
            chain,
            executed: Mutex::new(HashMap::new()),
            block_time,
            last_commit: Mutex::new(Instant::now()),
        })
    }

    /// Keeps an executed block for its commit, up to [`MAX_CACHED_EXECUTIONS`].
    fn cache(&self, executed: ExecutedBlock) {
        let mut cached = self.executed.lock();
        if cached.len() < MAX_CACHED_EXECUTIONS || cached.contains_key(&executed.block.hash) {
            cached.insert(executed.block.hash, executed);
        }
    }

    /// Checks and executes a block at `height` on the blocking pool.
    async fn execute(&self, height: u64, block: Bytes, origin: BlockOrigin) -> Result<ExecutedBlock, BlockRejected> {
        let head = self.chain.head().number();
        if head + 1 != height {
            return Err(BlockRejected { hash: None, reason: format!("block {height} does not follow head {head}") });
        }
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || check(&chain, height, &block, origin))
            .await
            .map_err(|e| BlockRejected { hash: None, reason: format!("verification task failed: {e}") })?
    }

    fn encode(block: &SealedBlock) -> Bytes {
        let block = block.to_block();
        let mut out = Vec::with_capacity(block.length());
        block.encode(&mut out);
        Bytes::from(out)
    }
}

/// Decodes and checks a block at `height`, returning it executed.
fn check(chain: &ChainService, height: u64, bytes: &[u8], origin: BlockOrigin) -> Result<ExecutedBlock, BlockRejected> {
    let reject = |hash, reason: String| BlockRejected { hash, reason };
    let block = Block::decode(&mut &bytes[..]).map_err(|e| reject(None, format!("not a block: {e}")))?;
    let hash = block.header.hash_slow();
    if block.header.number != height {
        return Err(reject(Some(hash), format!("block number {} at height {height}", block.header.number)));
    }
    if !block.ommers.is_empty() || !block.withdrawals.is_empty() {
        return Err(reject(Some(hash), "ommers or withdrawals in a MetaNode block".into()));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    if origin == BlockOrigin::Proposal && block.header.timestamp > now + MAX_CLOCK_DRIFT_SECS {
        return Err(reject(Some(hash), format!("timestamp {} is ahead of this node's clock", block.header.timestamp)));
    }
    let senders = recover_senders(&block.transactions)
        .map_err(|(i, e)| reject(Some(hash), format!("transaction {i}: bad signature: {e}")))?;
    let sealed = SealedBlock { hash, header: block.header, transactions: block.transactions, senders };
    chain.verify(&sealed).map_err(|e| reject(Some(hash), e.to_string()))
}

fn app_error(e: impl std::fmt::Display) -> AppError {
    AppError(e.to_string())
}

#[async_trait]
impl Application for ChainApp {
    fn committed_height(&self) -> u64 {
        self.chain.head().number()
    }

    async fn build_block(&self, height: u64) -> Result<BuiltBlock, AppError> {
        let deadline = *self.last_commit.lock() + self.block_time;
        while !self.chain.pool().has_pending() {
            let notified = self.chain.tx_arrived.notified();
            if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
                break;
            }
        }
        let head = self.chain.head().number();
        if head + 1 != height {
            return Err(AppError(format!("asked to build block {height} on head {head}")));
        }
        let chain = self.chain.clone();
        let executed =
            tokio::task::spawn_blocking(move || chain.propose()).await.map_err(app_error)?.map_err(app_error)?;
        let built = BuiltBlock { hash: executed.block.hash, bytes: Self::encode(&executed.block) };
        self.cache(executed);
        Ok(built)
    }

    async fn verify_block(&self, height: u64, block: Bytes, origin: BlockOrigin) -> Result<B256, BlockRejected> {
        let executed = self.execute(height, block, origin).await?;
        let hash = executed.block.hash;
        self.cache(executed);
        Ok(hash)
    }

    async fn commit_block(&self, block: Bytes, certificate: CommitCertificate) -> Result<(), AppError> {
        let cached = self.executed.lock().remove(&certificate.block_hash);
        let executed = match cached {
            Some(executed) => executed,
            None => self.execute(certificate.height, block, BlockOrigin::Decided).await.map_err(app_error)?,
        };
        if executed.block.hash != certificate.block_hash {
            return Err(AppError(format!(
                "certificate is for {}, block is {}",
                certificate.block_hash, executed.block.hash
            )));
        }
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || chain.commit(executed, Some(&certificate)))
            .await
            .map_err(app_error)?
            .map_err(|e: ExecError| app_error(e))?;
        self.executed.lock().clear();
        *self.last_commit.lock() = Instant::now();
        Ok(())
    }

    fn decided_block(&self, height: u64) -> Result<Option<(Bytes, CommitCertificate)>, AppError> {
        let db = self.chain.executor().db();
        let Some(cert) = db.commit_certificate(height).map_err(app_error)? else { return Ok(None) };
        let Some(block) = db.sealed_block(height).map_err(app_error)? else { return Ok(None) };
        Ok(Some((Self::encode(&block), cert)))
    }

    fn earliest_height(&self) -> u64 {
        1
    }
}

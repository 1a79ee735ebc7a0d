//! The chain service: the one path by which blocks are produced, checked
//! and committed (build -> execute -> commit), and the notifications that
//! follow a commit (pool re-validation, RPC subscribers). Consensus drives
//! it through [`metanode_consensus::Application`] (see `consensus_app`), in
//! dev mode with a single validator.

use alloy_primitives::{Address, Bytes};
use metanode_execution::{txpool::TxPool, AtMost, BlockAttributes, ExecError, ExecutedBlock, Executor};
use metanode_primitives::{CommitCertificate, SealedBlock};
use metanode_rpc::{CommittedBlock, EthApi};
use parking_lot::Mutex;
use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};
use tokio::sync::Notify;

/// Produces and commits blocks.
pub struct ChainService {
    executor: Executor,
    pool: Arc<TxPool>,
    api: Arc<EthApi>,
    head: Mutex<SealedBlock>,
    coinbase: Address,
    /// Most transactions the proposer puts in one block.
    max_block_txs: usize,
    /// Woken whenever the pool accepts a transaction.
    pub tx_arrived: Arc<Notify>,
}

impl ChainService {
    /// The transaction pool.
    pub fn pool(&self) -> &Arc<TxPool> {
        &self.pool
    }

    /// The executor (and through it the database).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }
}

impl ChainService {
    /// A service continuing from `head`.
    pub fn new(
        executor: Executor,
        pool: Arc<TxPool>,
        api: Arc<EthApi>,
        head: SealedBlock,
        coinbase: Address,
        max_block_txs: usize,
    ) -> Arc<Self> {
        let tx_arrived = Arc::new(Notify::new());
        let notify = tx_arrived.clone();
        pool.on_new_transaction(move |_| notify.notify_one());
        Arc::new(Self { executor, pool, api, head: Mutex::new(head), coinbase, max_block_txs, tx_arrived })
    }

    /// The last committed block.
    pub fn head(&self) -> SealedBlock {
        self.head.lock().clone()
    }

    /// Builds the next block from the pool (the proposer's step).
    pub fn propose(&self) -> Result<ExecutedBlock, ExecError> {
        let parent = self.head();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let attrs = BlockAttributes {
            timestamp: now.max(parent.header.timestamp),
            beneficiary: self.coinbase,
            extra_data: Bytes::new(),
        };
        let base_fee = self.executor.next_header(&parent, &attrs).base_fee_per_gas.unwrap_or_default();
        let mut txs = AtMost::new(self.pool.best(base_fee), self.max_block_txs);
        self.executor.build(&parent, &attrs, &mut txs)
    }

    /// Re-executes a proposed or synced block on top of the head.
    pub fn verify(&self, block: &SealedBlock) -> Result<ExecutedBlock, ExecError> {
        self.executor.execute(block)
    }

    /// Commits a decided block with its certificate and tells everyone who cares.
    pub fn commit(&self, executed: ExecutedBlock, certificate: Option<&CommitCertificate>) -> Result<(), ExecError> {
        self.executor.commit(&executed, certificate)?;
        let block = executed.block;
        *self.head.lock() = block.clone();
        let state = self.executor.db().latest_state()?;
        self.pool.on_block(&state, block.header.gas_limit)?;
        tracing::info!(
            number = block.number(),
            hash = %block.hash,
            txs = block.transactions.len(),
            gas_used = block.header.gas_used,
            "committed block"
        );
        self.api.notify_block(CommittedBlock { block, receipts: executed.receipts });
        Ok(())
    }
}

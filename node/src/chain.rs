//! The chain service: the one path by which blocks are produced and
//! committed (build -> execute -> commit), and the notifications that follow
//! a commit (pool re-validation, RPC subscribers). Dev mode drives it with a
//! timer; BFT consensus will drive the same calls.

use alloy_primitives::{Address, Bytes};
use metanode_execution::{txpool::TxPool, BlockAttributes, ExecError, ExecutedBlock, Executor};
use metanode_primitives::SealedBlock;
use metanode_rpc::{CommittedBlock, EthApi};
use parking_lot::Mutex;
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{watch, Notify};

/// Produces and commits blocks.
pub struct ChainService {
    executor: Executor,
    pool: Arc<TxPool>,
    api: Arc<EthApi>,
    head: Mutex<SealedBlock>,
    coinbase: Address,
    /// Woken whenever the pool accepts a transaction.
    pub tx_arrived: Arc<Notify>,
}

impl ChainService {
    /// A service continuing from `head`.
    pub fn new(
        executor: Executor,
        pool: Arc<TxPool>,
        api: Arc<EthApi>,
        head: SealedBlock,
        coinbase: Address,
    ) -> Arc<Self> {
        let tx_arrived = Arc::new(Notify::new());
        let notify = tx_arrived.clone();
        pool.on_new_transaction(move |_| notify.notify_one());
        Arc::new(Self { executor, pool, api, head: Mutex::new(head), coinbase, tx_arrived })
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
        let mut txs = self.pool.best(base_fee);
        self.executor.build(&parent, &attrs, &mut txs)
    }

    /// Commits a decided block and tells everyone who cares.
    pub fn commit(&self, executed: ExecutedBlock) -> Result<(), ExecError> {
        self.executor.commit(&executed)?;
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

    /// The dev/single-validator block loop: seal as soon as the previous block
    /// is committed and the pool has executable transactions, otherwise every
    /// `block_time`. Stops when `shutdown` turns true, after the block in hand.
    pub async fn run_sealer(self: Arc<Self>, block_time: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut deadline = tokio::time::Instant::now() + block_time;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let ready = self.pool.has_pending();
            if !ready {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = self.tx_arrived.notified() => {
                        if !self.pool.has_pending() { continue; }
                    }
                    _ = shutdown.changed() => return,
                }
            }
            let this = self.clone();
            let result = tokio::task::spawn_blocking(move || {
                let executed = this.propose()?;
                let n = executed.block.transactions.len();
                this.commit(executed)?;
                Ok::<usize, ExecError>(n)
            })
            .await;
            match result {
                Ok(Ok(included)) => {
                    deadline = tokio::time::Instant::now() + block_time;
                    if included == 0 && ready {
                        // Pending transactions that cannot go in yet (fee cap
                        // below the base fee): wait for the next tick, do not spin.
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "block production failed; retrying after the block time");
                    tokio::time::sleep(block_time).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "block production task panicked");
                    return;
                }
            }
        }
    }
}

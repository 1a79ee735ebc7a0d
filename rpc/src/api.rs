//! The state behind the `eth_` namespace: chain database, executor, pool,
//! event channels and filters, with the lookups every method shares.

use crate::{error::*, filters::FilterManager};
use alloy_consensus::{Header, ReceiptEnvelope};
use alloy_primitives::{Address, B256};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag};
use jsonrpsee::types::ErrorObjectOwned;
use metanode_execution::{call::CallLimits, txpool::TxPool, Executor};
use metanode_primitives::{ChainSpec, SealedBlock};
use metanode_storage::{ChainDb, StateReader, StorageError};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use tokio::sync::broadcast;

/// A block as committed, with its receipts, for subscribers.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    /// The block.
    pub block: SealedBlock,
    /// Its receipts.
    pub receipts: Vec<ReceiptEnvelope>,
}

/// Limits and identity of the RPC service.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Most blocks one `eth_getLogs` may span.
    pub max_logs_range: u64,
    /// Accounts reported by `eth_accounts` (dev mode).
    pub accounts: Vec<Address>,
    /// `web3_clientVersion`.
    pub client_version: String,
    /// The digest peers must share (genesis, chain id, validator set), shown
    /// by `/status` so operators can compare nodes that will not connect.
    pub network_id: Option<String>,
    /// Gas cap and time budget of `eth_call` and `eth_estimateGas`.
    pub call_limits: CallLimits,
    /// Most poll filters installed at once.
    pub max_filters: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            call_limits: CallLimits::default(),
            max_filters: crate::filters::DEFAULT_MAX_FILTERS,
            max_logs_range: 10_000,
            accounts: Vec::new(),
            client_version: format!("metanode/v{}/{}", env!("CARGO_PKG_VERSION"), std::env::consts::OS),
            network_id: None,
        }
    }
}

/// Everything the RPC methods read from.
pub struct EthApi {
    pub(crate) db: Arc<ChainDb>,
    pub(crate) executor: Executor,
    pub(crate) pool: Arc<TxPool>,
    pub(crate) config: ApiConfig,
    pub(crate) new_blocks: broadcast::Sender<Arc<CommittedBlock>>,
    pub(crate) pending_txs: broadcast::Sender<B256>,
    pub(crate) filters: FilterManager,
    pub(crate) peers: AtomicUsize,
    /// The suggested tip, computed once per head (it decodes 20 blocks).
    pub(crate) tip_cache: parking_lot::Mutex<Option<(B256, u128)>>,
    /// How far behind the network this node is.
    sync: parking_lot::Mutex<SyncTracker>,
}

/// The network's height and where the current catch-up began.
#[derive(Debug, Default)]
struct SyncTracker {
    /// The highest block height peers are known to be at.
    network_height: u64,
    /// The head when the current catch-up began (`eth_syncing`'s startingBlock).
    start: Option<u64>,
}

impl SyncTracker {
    /// Progress with the head at `current`: `None` within one block of the
    /// network, which is the normal lag of a node that has seen votes for
    /// the next height before committing the current one.
    fn progress(&mut self, current: u64) -> Option<SyncProgress> {
        if self.network_height <= current + 1 {
            self.start = None;
            return None;
        }
        let starting = *self.start.get_or_insert(current);
        Some(SyncProgress { starting, current, highest: self.network_height })
    }
}

/// Progress of a catch-up, as `eth_syncing` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// The head when catch-up began.
    pub starting: u64,
    /// The head now.
    pub current: u64,
    /// The highest height seen from peers.
    pub highest: u64,
}

impl std::fmt::Debug for EthApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthApi").finish_non_exhaustive()
    }
}

impl EthApi {
    /// Wires the API to the chain and the pool.
    pub fn new(executor: Executor, pool: Arc<TxPool>, config: ApiConfig) -> Arc<Self> {
        let (new_blocks, _) = broadcast::channel(256);
        let (pending_txs, _) = broadcast::channel(16_384);
        let filters = FilterManager::new(config.max_filters, crate::filters::IDLE_TIMEOUT);
        let api = Arc::new(Self {
            db: executor.db().clone(),
            executor,
            pool: pool.clone(),
            config,
            new_blocks,
            pending_txs,
            filters,
            peers: AtomicUsize::new(0),
            tip_cache: parking_lot::Mutex::new(None),
            sync: parking_lot::Mutex::new(SyncTracker::default()),
        });
        let weak = Arc::downgrade(&api);
        pool.on_new_transaction(move |hash| {
            if let Some(api) = weak.upgrade() {
                let _ = api.pending_txs.send(hash);
                api.filters.push_pending(hash);
            }
        });
        api
    }

    /// Tells subscribers and filters about a committed block.
    pub fn notify_block(&self, block: CommittedBlock) {
        let _ = self.new_blocks.send(Arc::new(block));
    }

    /// Sets the peer count reported by `net_peerCount` and `/status`.
    pub fn set_peer_count(&self, n: usize) {
        self.peers.store(n, Ordering::Relaxed);
    }

    /// Records the highest height peers are known to be at (from consensus).
    pub fn set_network_height(&self, height: u64) {
        let mut sync = self.sync.lock();
        sync.network_height = sync.network_height.max(height);
    }

    /// `Some` while this node is more than one block behind its peers.
    pub fn sync_progress(&self) -> Result<Option<SyncProgress>, ErrorObjectOwned> {
        let current = self.head()?;
        Ok(self.sync.lock().progress(current))
    }

    /// The chain specification.
    pub fn spec(&self) -> &ChainSpec {
        self.executor.spec()
    }

    /// The current head number.
    pub fn head(&self) -> Result<u64, ErrorObjectOwned> {
        self.db.head_number().map_err(internal)?.ok_or_else(|| internal("database has no genesis"))
    }

    /// Resolves a tag or number to a block number (tags all mean the head:
    /// blocks are final as soon as they are committed).
    pub fn resolve_number(&self, tag: BlockNumberOrTag) -> Result<u64, ErrorObjectOwned> {
        match tag {
            BlockNumberOrTag::Earliest => Ok(0),
            BlockNumberOrTag::Number(n) => Ok(n),
            _ => self.head(),
        }
    }

    /// Resolves a block id to a number; `None` when a hash is unknown.
    pub fn resolve_id(&self, id: BlockId) -> Result<Option<u64>, ErrorObjectOwned> {
        match id {
            BlockId::Number(tag) => Ok(Some(self.resolve_number(tag)?)),
            BlockId::Hash(h) => self.db.block_number(&h.block_hash).map_err(internal),
        }
    }

    /// A block by number.
    pub fn block(&self, number: u64) -> Result<Option<SealedBlock>, ErrorObjectOwned> {
        self.db.sealed_block(number).map_err(internal)
    }

    /// The header of a block by number.
    pub fn header(&self, number: u64) -> Result<Option<Header>, ErrorObjectOwned> {
        self.db.header(number).map_err(internal)
    }

    /// State at a block id, with the header of that block.
    pub fn state_at(&self, id: Option<BlockId>) -> Result<(StateReader<'_>, Header), ErrorObjectOwned> {
        let id = id.unwrap_or_default();
        let number = self.resolve_id(id)?.ok_or_else(|| server_error("header not found"))?;
        let head = self.head()?;
        if number > head {
            return Err(server_error("header not found"));
        }
        let reader = if number == head && !matches!(id, BlockId::Hash(_)) {
            self.db.latest_state()
        } else {
            self.db.state_at(number)
        }
        .map_err(|e| match e {
            StorageError::HistoryPruned { .. } | StorageError::UnknownBlock(_) => server_error(e.to_string()),
            other => internal(other),
        })?;
        let header = self.header(reader.block())?.ok_or_else(|| server_error("header not found"))?;
        Ok((reader, header))
    }

    /// State and block environment for `eth_call` and `eth_estimateGas`: at
    /// `pending` the latest state in the environment of the block that comes
    /// next (its number, time and base fee), so a price good for the next
    /// block is judged against the next block's base fee; otherwise the
    /// block asked for.
    pub fn call_context(&self, id: Option<BlockId>) -> Result<(StateReader<'_>, Header), ErrorObjectOwned> {
        let (reader, header) = self.state_at(id)?;
        if !matches!(id, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok((reader, header));
        }
        let hash = self.db.block_hash(header.number).map_err(internal)?.unwrap_or_default();
        Ok((reader, pending_header(self.spec(), &header, hash, unix_now())))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The environment of the block after `parent` as far as it is known
/// before it is built: number, parent, time and the base fee it will have.
pub(crate) fn pending_header(spec: &ChainSpec, parent: &Header, parent_hash: B256, now: u64) -> Header {
    Header {
        parent_hash,
        number: parent.number + 1,
        timestamp: now.max(parent.timestamp),
        base_fee_per_gas: Some(spec.next_base_fee(parent)),
        gas_used: 0,
        ..parent.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncing_starts_more_than_one_block_behind_and_remembers_where() {
        let mut sync = SyncTracker::default();
        assert_eq!(sync.progress(0), None);
        sync.network_height = 11;
        assert_eq!(sync.progress(10), None, "one block behind is not syncing");
        sync.network_height = 500;
        assert_eq!(sync.progress(10), Some(SyncProgress { starting: 10, current: 10, highest: 500 }));
        assert_eq!(sync.progress(300), Some(SyncProgress { starting: 10, current: 300, highest: 500 }));
        assert_eq!(sync.progress(499), None, "caught up");
        sync.network_height = 900;
        assert_eq!(sync.progress(600), Some(SyncProgress { starting: 600, current: 600, highest: 900 }));
    }
}

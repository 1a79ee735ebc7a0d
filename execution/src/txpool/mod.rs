//! The transaction pool: per-sender nonce queues, fee-bump replacement, caps
//! on count, bytes and per-sender slots with eviction of the cheapest, and
//! re-validation against the state after every block.
//!
//! A sender's transactions form a *pending* run while their nonces are
//! contiguous from the sender's state nonce; the rest are *queued* until the
//! gap closes.

mod best;
mod error;
mod validate;

pub use validate::intrinsic_gas as validate_intrinsic_gas;

pub use best::BestTransactions;
pub use error::PoolError;

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{map::HashMap, Address, B256, U256};
use metanode_storage::{StateReader, StorageError};
use parking_lot::{Mutex, RwLock};
use std::{collections::BTreeMap, sync::Arc};

/// Pool limits.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most transactions held.
    pub max_count: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
    /// Most transactions held per sender.
    pub max_per_sender: usize,
    /// Minimum fee increase, in percent, to replace a transaction.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { max_count: 50_000, max_bytes: 128 << 20, max_per_sender: 512, price_bump_percent: 10 }
    }
}

/// Where the pool reads senders' nonces and balances.
pub trait AccountSource {
    /// Nonce and balance of `addr` (zeros for an absent account).
    fn nonce_balance(&self, addr: &Address) -> Result<(u64, U256), StorageError>;
}

impl AccountSource for StateReader<'_> {
    fn nonce_balance(&self, addr: &Address) -> Result<(u64, U256), StorageError> {
        Ok(self.account(addr)?.map(|a| (a.nonce, a.balance)).unwrap_or_default())
    }
}

/// A validated transaction in the pool.
#[derive(Debug)]
pub struct PoolTx {
    /// The transaction.
    pub tx: TxEnvelope,
    /// Its recovered signer.
    pub sender: Address,
    /// Its hash.
    pub hash: B256,
    /// Its nonce.
    pub nonce: u64,
    /// Encoded size.
    pub size: usize,
    /// Fee cap (gas price for legacy).
    pub max_fee: u128,
    /// Tip cap (gas price for legacy).
    pub max_tip: u128,
    /// gas * fee cap + value.
    pub cost: U256,
    seq: u64,
}

impl PoolTx {
    /// Tip per gas this transaction pays at `base_fee`.
    pub fn effective_tip(&self, base_fee: u64) -> u128 {
        self.max_fee.saturating_sub(u128::from(base_fee)).min(self.max_tip)
    }
}

#[derive(Debug, Default)]
struct SenderTxs {
    state_nonce: u64,
    balance: U256,
    txs: BTreeMap<u64, Arc<PoolTx>>,
}

impl SenderTxs {
    /// Transactions whose nonces run contiguously from the state nonce.
    fn pending(&self) -> impl Iterator<Item = &Arc<PoolTx>> {
        let mut next = self.state_nonce;
        self.txs.range(self.state_nonce..).map_while(move |(n, tx)| {
            (*n == next).then(|| {
                next += 1;
                tx
            })
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<B256, Arc<PoolTx>>,
    senders: HashMap<Address, SenderTxs>,
    bytes: usize,
    seq: u64,
}

type Listener = Box<dyn Fn(B256) + Send + Sync>;

/// The transaction pool.
pub struct TxPool {
    config: PoolConfig,
    chain_id: u64,
    block_gas_limit: RwLock<u64>,
    inner: RwLock<Inner>,
    listeners: Mutex<Vec<Listener>>,
}

impl std::fmt::Debug for TxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxPool").field("count", &self.inner.read().by_hash.len()).finish()
    }
}

/// Counts of pending and queued transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Executable now.
    pub pending: usize,
    /// Waiting for a nonce gap to close.
    pub queued: usize,
}

/// Per-sender, per-nonce listing of the pool.
pub type PoolListing = BTreeMap<Address, BTreeMap<u64, Arc<PoolTx>>>;

impl TxPool {
    /// An empty pool for `chain_id` with blocks of `block_gas_limit` gas.
    pub fn new(config: PoolConfig, chain_id: u64, block_gas_limit: u64) -> Self {
        Self {
            config,
            chain_id,
            block_gas_limit: RwLock::new(block_gas_limit),
            inner: RwLock::new(Inner::default()),
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// Calls `f` with the hash of every transaction the pool accepts.
    pub fn on_new_transaction(&self, f: impl Fn(B256) + Send + Sync + 'static) {
        self.listeners.lock().push(Box::new(f));
    }

    /// Validates and adds a transaction; returns its hash.
    pub fn add(&self, tx: TxEnvelope, state: &dyn AccountSource) -> Result<B256, PoolError> {
        let size = tx.encode_2718_len();
        let block_gas_limit = *self.block_gas_limit.read();
        let sender = validate::stateless(&tx, size, self.chain_id, block_gas_limit)?;
        let hash = *tx.tx_hash();
        let nonce = tx.nonce();
        let max_fee = tx.max_fee_per_gas();
        let max_tip = tx.max_priority_fee_per_gas().unwrap_or(max_fee);
        let cost = U256::from(tx.gas_limit()) * U256::from(max_fee) + tx.value();
        let mut inner = self.inner.write();
        if inner.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = inner.senders.entry(sender) {
            let (state_nonce, balance) = state.nonce_balance(&sender)?;
            slot.insert(SenderTxs { state_nonce, balance, txs: BTreeMap::new() });
        }
        inner.seq += 1;
        let seq = inner.seq;
        let bump = self.config.price_bump_percent;
        let max_per_sender = self.config.max_per_sender;
        let entry = inner.senders.get_mut(&sender).expect("inserted above");
        let check = (|| {
            if nonce < entry.state_nonce {
                return Err(PoolError::NonceTooLow);
            }
            if cost > entry.balance {
                return Err(PoolError::InsufficientFunds);
            }
            match entry.txs.get(&nonce) {
                Some(old) => {
                    let min_fee = old.max_fee * (100 + bump) / 100;
                    let min_tip = old.max_tip * (100 + bump) / 100;
                    if max_fee < min_fee || max_tip < min_tip {
                        return Err(PoolError::ReplacementUnderpriced);
                    }
                    Ok(Some(old.clone()))
                }
                None if entry.txs.len() >= max_per_sender => Err(PoolError::AccountLimit),
                None => Ok(None),
            }
        })();
        let replaced = match check {
            Ok(r) => r,
            Err(e) => {
                if entry.txs.is_empty() {
                    inner.senders.remove(&sender);
                }
                return Err(e);
            }
        };
        let pooled = Arc::new(PoolTx { tx, sender, hash, nonce, size, max_fee, max_tip, cost, seq });
        entry.txs.insert(nonce, pooled.clone());
        if let Some(old) = replaced {
            inner.by_hash.remove(&old.hash);
            inner.bytes -= old.size;
        }
        inner.by_hash.insert(hash, pooled);
        inner.bytes += size;
        while inner.by_hash.len() > self.config.max_count || inner.bytes > self.config.max_bytes {
            let victim = Self::cheapest_tail(&inner).ok_or(PoolError::PoolFull)?;
            Self::remove_tx(&mut inner, &victim);
            if victim.hash == hash {
                return Err(PoolError::PoolFull);
            }
        }
        drop(inner);
        for listener in self.listeners.lock().iter() {
            listener(hash);
        }
        Ok(hash)
    }

    /// The lowest-paying transaction among senders' last ones (evicting the
    /// last keeps the remaining nonces contiguous).
    fn cheapest_tail(inner: &Inner) -> Option<Arc<PoolTx>> {
        inner
            .senders
            .values()
            .filter_map(|s| s.txs.values().next_back())
            .min_by_key(|tx| (tx.max_tip, tx.max_fee, std::cmp::Reverse(tx.seq)))
            .cloned()
    }

    fn remove_tx(inner: &mut Inner, tx: &PoolTx) {
        if inner.by_hash.remove(&tx.hash).is_some() {
            inner.bytes -= tx.size;
        }
        if let Some(s) = inner.senders.get_mut(&tx.sender) {
            s.txs.remove(&tx.nonce);
            if s.txs.is_empty() {
                inner.senders.remove(&tx.sender);
            }
        }
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Arc<PoolTx>> {
        self.inner.read().by_hash.get(hash).cloned()
    }

    /// The nonce the sender's next transaction should use, counting pending ones.
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        let inner = self.inner.read();
        let s = inner.senders.get(sender)?;
        Some(s.pending().last().map(|t| t.nonce + 1).unwrap_or(s.state_nonce))
    }

    /// Whether any transaction is executable now.
    pub fn has_pending(&self) -> bool {
        self.inner.read().senders.values().any(|s| s.txs.contains_key(&s.state_nonce))
    }

    /// Pending and queued counts.
    pub fn status(&self) -> PoolStatus {
        let inner = self.inner.read();
        let pending: usize = inner.senders.values().map(|s| s.pending().count()).sum();
        PoolStatus { pending, queued: inner.by_hash.len() - pending }
    }

    /// Pending and queued transactions by sender and nonce.
    pub fn content(&self) -> (PoolListing, PoolListing) {
        let inner = self.inner.read();
        let (mut pending, mut queued) = (PoolListing::new(), PoolListing::new());
        for (addr, s) in inner.senders.iter() {
            let run: Vec<u64> = s.pending().map(|t| t.nonce).collect();
            for (n, tx) in &s.txs {
                let target = if run.contains(n) { &mut pending } else { &mut queued };
                target.entry(*addr).or_default().insert(*n, tx.clone());
            }
        }
        (pending, queued)
    }

    /// Executable transactions, best tip first, nonce order per sender.
    pub fn best(&self, base_fee: u64) -> BestTransactions {
        let inner = self.inner.read();
        let runs = inner.senders.values().map(|s| s.pending().cloned().collect::<Vec<_>>());
        BestTransactions::new(runs, base_fee)
    }

    /// Re-validates every sender against the state after a block: drops
    /// transactions whose nonce was used and those the sender can no longer pay for.
    pub fn on_block(&self, state: &dyn AccountSource, block_gas_limit: u64) -> Result<(), StorageError> {
        *self.block_gas_limit.write() = block_gas_limit;
        let mut inner = self.inner.write();
        let senders: Vec<Address> = inner.senders.keys().copied().collect();
        let mut dropped = Vec::new();
        for addr in senders {
            let (nonce, balance) = state.nonce_balance(&addr)?;
            let s = inner.senders.get_mut(&addr).expect("listed above");
            s.state_nonce = nonce;
            s.balance = balance;
            dropped.extend(s.txs.range(..nonce).map(|(_, t)| t.clone()));
            dropped.extend(
                s.txs
                    .range(nonce..)
                    .filter(|(_, t)| t.cost > balance || t.tx.gas_limit() > block_gas_limit)
                    .map(|(_, t)| t.clone()),
            );
        }
        for tx in dropped {
            Self::remove_tx(&mut inner, &tx);
        }
        Ok(())
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.inner.read().by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;

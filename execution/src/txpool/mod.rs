//! The transaction pool: per-sender nonce queues, fee-bump replacement,
//! geth's admission rules (cumulative cost, pending and queued caps,
//! eviction of the lowest-priced, expiry of queued transactions; see
//! `rules`), and re-validation against the state after every block.
//!
//! A sender's transactions form a *pending* run while their nonces are
//! contiguous from the sender's state nonce; the rest are *queued* until the
//! gap closes.
//!
//! State (RocksDB) is read before the pool's lock is taken, never under it,
//! so a slow read does not stall block building or other senders.

mod best;
mod config;
mod error;
mod rules;
mod sender;
mod validate;

pub use validate::intrinsic_gas as validate_intrinsic_gas;

pub use best::BestTransactions;
pub use config::PoolConfig;
pub use error::PoolError;

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{map::HashMap, Address, B256, U256};
use metanode_storage::{StateReader, StorageError};
use parking_lot::{Mutex, RwLock};
use sender::SenderTxs;
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

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

/// Where a transaction came from: gossip forwards what peers sent by
/// itself, so only local ones need publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOrigin {
    /// Sent to this node (JSON-RPC).
    Local,
    /// Received from a gossip peer.
    Peer,
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
    /// Where it came from.
    pub origin: TxOrigin,
    /// When it entered the pool (queued transactions expire after the lifetime).
    pub arrived: Instant,
    seq: u64,
}

impl PoolTx {
    /// Tip per gas this transaction pays at `base_fee`.
    pub fn effective_tip(&self, base_fee: u64) -> u128 {
        self.max_fee.saturating_sub(u128::from(base_fee)).min(self.max_tip)
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<B256, Arc<PoolTx>>,
    senders: HashMap<Address, SenderTxs>,
    bytes: usize,
    /// Queued transactions in all senders.
    queued: usize,
    seq: u64,
}

impl Inner {
    /// Runs `f` on `addr`'s transactions and keeps the pool's counts (and
    /// the sender's entry, dropped when empty) right.
    fn with_sender<R>(&mut self, addr: &Address, f: impl FnOnce(&mut SenderTxs) -> R) -> Option<R> {
        let s = self.senders.get_mut(addr)?;
        let before = s.queued_len();
        let r = f(s);
        s.refresh();
        self.queued = self.queued + s.queued_len() - before;
        if s.txs.is_empty() {
            self.senders.remove(addr);
        }
        Some(r)
    }

    /// Inserts `tx`, returning the transaction it replaced.
    fn insert(&mut self, tx: Arc<PoolTx>) -> Option<Arc<PoolTx>> {
        let replaced = self.with_sender(&tx.sender, |s| s.txs.insert(tx.nonce, tx.clone())).flatten();
        if let Some(old) = &replaced {
            self.by_hash.remove(&old.hash);
            self.bytes -= old.size;
        }
        self.bytes += tx.size;
        self.by_hash.insert(tx.hash, tx);
        replaced
    }

    fn remove(&mut self, tx: &PoolTx) {
        if self.by_hash.remove(&tx.hash).is_some() {
            self.bytes -= tx.size;
        }
        self.with_sender(&tx.sender, |s| s.txs.remove(&tx.nonce));
    }
}

type Listener = Box<dyn Fn(B256) + Send + Sync>;

/// Transactions the pool dropped by its rules rather than by inclusion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Evicted to make room for better-paying ones.
    pub evicted: u64,
    /// Queued for longer than the lifetime.
    pub expired: u64,
}

/// The transaction pool.
pub struct TxPool {
    config: PoolConfig,
    chain_id: u64,
    block_gas_limit: RwLock<u64>,
    inner: RwLock<Inner>,
    listeners: Mutex<Vec<Listener>>,
    evicted: AtomicU64,
    expired: AtomicU64,
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
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }

    /// Calls `f` with the hash of every transaction the pool accepts.
    pub fn on_new_transaction(&self, f: impl Fn(B256) + Send + Sync + 'static) {
        self.listeners.lock().push(Box::new(f));
    }

    /// Validates and adds a transaction sent to this node; returns its hash.
    pub fn add(&self, tx: TxEnvelope, state: &dyn AccountSource) -> Result<B256, PoolError> {
        self.add_from(tx, state, TxOrigin::Local)
    }

    /// Validates and adds a transaction a gossip peer sent; returns its hash.
    pub fn add_from_peer(&self, tx: TxEnvelope, state: &dyn AccountSource) -> Result<B256, PoolError> {
        self.add_from(tx, state, TxOrigin::Peer)
    }

    fn add_from(&self, tx: TxEnvelope, state: &dyn AccountSource, origin: TxOrigin) -> Result<B256, PoolError> {
        let size = tx.encode_2718_len();
        let block_gas_limit = *self.block_gas_limit.read();
        let sender = validate::stateless(&tx, size, self.chain_id, block_gas_limit)?;
        let hash = *tx.tx_hash();
        let max_fee = tx.max_fee_per_gas();
        let candidate = rules::Candidate {
            nonce: tx.nonce(),
            cost: U256::from(tx.gas_limit()) * U256::from(max_fee) + tx.value(),
            max_fee,
            max_tip: tx.max_priority_fee_per_gas().unwrap_or(max_fee),
        };
        // A sender new to the pool is read from the state before the write
        // lock is taken; if it vanished meanwhile (its last transaction was
        // included) it is read again.
        let mut fresh = None;
        let mut inner = loop {
            if fresh.is_none() && !self.inner.read().senders.contains_key(&sender) {
                fresh = Some(state.nonce_balance(&sender)?);
            }
            let inner = self.inner.write();
            if fresh.is_some() || inner.senders.contains_key(&sender) {
                break inner;
            }
        };
        if inner.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        inner.senders.entry(sender).or_insert_with(|| {
            let (state_nonce, balance) = fresh.unwrap_or_default();
            SenderTxs::new(state_nonce, balance)
        });
        let entry = &inner.senders[&sender];
        let replaced = match rules::admit(entry, &candidate, &self.config) {
            Ok(r) => r,
            Err(e) => {
                if entry.txs.is_empty() {
                    inner.senders.remove(&sender);
                }
                return Err(e);
            }
        };
        inner.seq += 1;
        let pooled = Arc::new(PoolTx {
            tx,
            sender,
            hash,
            nonce: candidate.nonce,
            size,
            max_fee: candidate.max_fee,
            max_tip: candidate.max_tip,
            cost: candidate.cost,
            origin,
            arrived: Instant::now(),
            seq: inner.seq,
        });
        inner.insert(pooled);
        let mut evicted = 0;
        while let Some(victim) = rules::victim(&inner, &self.config)? {
            if victim.hash == hash {
                // The newcomer pays least: the pool is as it was, but for
                // the cheaper ones already evicted to make room.
                match replaced {
                    // Swapped back in one step, so the sender never empties.
                    Some(old) => drop(inner.insert(old)),
                    None => inner.remove(&victim),
                }
                self.evicted.fetch_add(evicted, Ordering::Relaxed);
                return Err(PoolError::PoolFull);
            }
            inner.remove(&victim);
            tracing::trace!(hash = %victim.hash, sender = %victim.sender, "evicted from the pool");
            evicted += 1;
        }
        drop(inner);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        for listener in self.listeners.lock().iter() {
            listener(hash);
        }
        Ok(hash)
    }

    /// Evictions and expiries so far.
    pub fn counters(&self) -> PoolCounters {
        PoolCounters { evicted: self.evicted.load(Ordering::Relaxed), expired: self.expired.load(Ordering::Relaxed) }
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
        PoolStatus { pending: inner.by_hash.len() - inner.queued, queued: inner.queued }
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
    /// transactions whose nonce was used, those the sender can no longer pay
    /// for (cumulatively, in nonce order), those above the block gas limit,
    /// and queued ones older than the lifetime. The state is read before the
    /// pool is locked.
    pub fn on_block(&self, state: &dyn AccountSource, block_gas_limit: u64) -> Result<(), StorageError> {
        *self.block_gas_limit.write() = block_gas_limit;
        let senders: Vec<Address> = self.inner.read().senders.keys().copied().collect();
        let accounts = senders
            .into_iter()
            .map(|addr| Ok((addr, state.nonce_balance(&addr)?)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        let mut inner = self.inner.write();
        let mut dropped = Vec::new();
        for (addr, (nonce, balance)) in accounts {
            dropped.extend(
                inner.with_sender(&addr, |s| s.revalidate(nonce, balance, block_gas_limit)).unwrap_or_default(),
            );
        }
        for tx in dropped {
            if inner.by_hash.remove(&tx.hash).is_some() {
                inner.bytes -= tx.size;
            }
        }
        drop(inner);
        self.expire_queued(Instant::now());
        Ok(())
    }

    /// Drops queued transactions that arrived more than the lifetime before
    /// `now`, so that future-nonce spam cannot sit in the queue for ever.
    /// Returns how many went.
    pub fn expire_queued(&self, now: Instant) -> usize {
        let lifetime = self.config.lifetime;
        let mut inner = self.inner.write();
        let stale: Vec<Arc<PoolTx>> = inner
            .senders
            .values()
            .flat_map(|s| {
                let pending = s.pending_len();
                let run_end = s.state_nonce + pending as u64;
                s.txs
                    .range(run_end..)
                    .map(|(_, t)| t)
                    .filter(move |t| now.saturating_duration_since(t.arrived) > lifetime)
            })
            .cloned()
            .collect();
        for tx in &stale {
            inner.remove(tx);
        }
        drop(inner);
        self.expired.fetch_add(stale.len() as u64, Ordering::Relaxed);
        stale.len()
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

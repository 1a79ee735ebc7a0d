//! One sender's transactions: a nonce-ordered map whose contiguous run from
//! the account nonce is *pending* and whose rest is *queued*. The run's
//! length is cached so that the pool keeps exact pending and queued counts
//! without walking every sender.

use super::PoolTx;
use alloy_consensus::Transaction;
use alloy_primitives::U256;
use std::{collections::BTreeMap, sync::Arc};

#[derive(Debug, Default)]
pub(super) struct SenderTxs {
    /// The account nonce in the state the pool last read.
    pub(super) state_nonce: u64,
    /// The account balance in that state.
    pub(super) balance: U256,
    pub(super) txs: BTreeMap<u64, Arc<PoolTx>>,
    /// How many of `txs` form the pending run (kept by [`Self::refresh`]).
    pending_len: usize,
}

impl SenderTxs {
    pub(super) fn new(state_nonce: u64, balance: U256) -> Self {
        Self { state_nonce, balance, ..Default::default() }
    }

    /// Transactions whose nonces run contiguously from the state nonce.
    pub(super) fn pending(&self) -> impl Iterator<Item = &Arc<PoolTx>> {
        let mut next = self.state_nonce;
        self.txs.range(self.state_nonce..).map_while(move |(n, tx)| {
            (*n == next).then(|| {
                next += 1;
                tx
            })
        })
    }

    /// Number of pending transactions.
    pub(super) fn pending_len(&self) -> usize {
        self.pending_len
    }

    /// Number of queued transactions.
    pub(super) fn queued_len(&self) -> usize {
        self.txs.len() - self.pending_len
    }

    /// Whether a transaction at `nonce` would be pending (it continues or
    /// replaces part of the pending run).
    pub(super) fn would_be_pending(&self, nonce: u64) -> bool {
        nonce >= self.state_nonce && nonce - self.state_nonce <= self.pending_len as u64
    }

    /// The last transaction, if it is queued: evicting it leaves the
    /// remaining nonces as they were (no pending transaction becomes queued).
    pub(super) fn queued_tail(&self) -> Option<&Arc<PoolTx>> {
        (self.queued_len() > 0).then(|| self.txs.values().next_back()).flatten()
    }

    /// The last transaction, if it is pending (the sender has nothing queued).
    pub(super) fn pending_tail(&self) -> Option<&Arc<PoolTx>> {
        (self.queued_len() == 0).then(|| self.txs.values().next_back()).flatten()
    }

    /// What the sender's transactions other than the one at `except` could
    /// cost at most.
    pub(super) fn committed_cost(&self, except: u64) -> U256 {
        self.txs.iter().filter(|(n, _)| **n != except).fold(U256::ZERO, |sum, (_, t)| sum.saturating_add(t.cost))
    }

    /// Takes a new account nonce and balance after a block; returns the
    /// transactions that no longer belong: nonces used, above the block gas
    /// limit, or beyond what the balance pays for when the sender's
    /// transactions are paid in nonce order.
    pub(super) fn revalidate(&mut self, nonce: u64, balance: U256, block_gas_limit: u64) -> Vec<Arc<PoolTx>> {
        self.state_nonce = nonce;
        self.balance = balance;
        let kept = self.txs.split_off(&nonce);
        let mut gone: Vec<Arc<PoolTx>> = std::mem::replace(&mut self.txs, kept).into_values().collect();
        let mut spent = U256::ZERO;
        self.txs.retain(|_, t| {
            let keep = t.tx.gas_limit() <= block_gas_limit && spent.saturating_add(t.cost) <= balance;
            if keep {
                spent = spent.saturating_add(t.cost);
            } else {
                gone.push(t.clone());
            }
            keep
        });
        gone
    }

    /// Recomputes the pending run after the map or the state nonce changed.
    pub(super) fn refresh(&mut self) {
        self.pending_len = self.pending().count();
    }
}

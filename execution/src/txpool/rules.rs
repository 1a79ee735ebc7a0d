//! Admission and eviction, after geth's legacy pool:
//!
//! - a sender must be able to pay for all its transactions at once: the
//!   new one's gas * fee cap + value plus that of every other transaction
//!   it already has in the pool (minus the one it replaces);
//! - per sender, at most `max_per_sender` transactions, of which at most
//!   `max_queued_per_sender` queued;
//! - in all, at most `max_queued` queued and `max_count` transactions (and
//!   `max_bytes`): over a limit the lowest-priced transaction that can go
//!   without opening a nonce gap (a sender's last) is evicted; for the
//!   overall limits queued ones go first, so future-nonce spam never pushes
//!   out an executable transaction.

use super::{sender::SenderTxs, Inner, PoolConfig, PoolError, PoolTx};
use alloy_primitives::U256;
use std::{cmp::Reverse, sync::Arc};

/// The parts of a new transaction the rules look at.
pub(super) struct Candidate {
    pub(super) nonce: u64,
    pub(super) cost: U256,
    pub(super) max_fee: u128,
    pub(super) max_tip: u128,
}

/// Whether `sender` may add `new`; `Ok(Some(old))` when it replaces `old`.
pub(super) fn admit(
    sender: &SenderTxs,
    new: &Candidate,
    config: &PoolConfig,
) -> Result<Option<Arc<PoolTx>>, PoolError> {
    if new.nonce < sender.state_nonce {
        return Err(PoolError::NonceTooLow);
    }
    // Cumulative: what the sender's other pooled transactions may spend is
    // already promised, so N transactions each affordable alone are not
    // admitted when together they are not.
    if sender.committed_cost(new.nonce).saturating_add(new.cost) > sender.balance {
        return Err(PoolError::InsufficientFunds);
    }
    if let Some(old) = sender.txs.get(&new.nonce) {
        let bump = config.price_bump_percent;
        let min_fee = old.max_fee.saturating_mul(100 + bump) / 100;
        let min_tip = old.max_tip.saturating_mul(100 + bump) / 100;
        if new.max_fee < min_fee || new.max_tip < min_tip {
            return Err(PoolError::ReplacementUnderpriced);
        }
        return Ok(Some(old.clone()));
    }
    if sender.txs.len() >= config.max_per_sender {
        return Err(PoolError::AccountLimit);
    }
    if !sender.would_be_pending(new.nonce) && sender.queued_len() >= config.max_queued_per_sender {
        return Err(PoolError::AccountLimit);
    }
    Ok(None)
}

/// Cheapest first; among equals the newest first, so the earlier sender keeps its slot.
fn price(tx: &PoolTx) -> (u128, u128, Reverse<u64>) {
    (tx.max_tip, tx.max_fee, Reverse(tx.seq))
}

fn cheapest<'a>(tails: impl Iterator<Item = &'a Arc<PoolTx>>) -> Option<Arc<PoolTx>> {
    tails.min_by_key(|tx| price(tx)).cloned()
}

/// The transaction to evict, `Ok(None)` when the pool is within its limits.
pub(super) fn victim(inner: &Inner, config: &PoolConfig) -> Result<Option<Arc<PoolTx>>, PoolError> {
    let queued_tail = || cheapest(inner.senders.values().filter_map(SenderTxs::queued_tail));
    if inner.queued > config.max_queued {
        return queued_tail().map(Some).ok_or(PoolError::PoolFull);
    }
    if inner.by_hash.len() > config.max_count || inner.bytes > config.max_bytes {
        let victim = queued_tail().or_else(|| cheapest(inner.senders.values().filter_map(SenderTxs::pending_tail)));
        return victim.map(Some).ok_or(PoolError::PoolFull);
    }
    Ok(None)
}

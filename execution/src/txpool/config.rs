//! The pool's limits. They follow geth's legacy pool (pending and queued
//! transactions are capped separately, globally and per account, and queued
//! ones expire), with larger pending limits because one MetaNode block holds
//! thousands of transactions and load tests send hundreds per sender.

use std::time::Duration;

/// Pool limits.
///
/// *Pending* transactions are executable now (their nonces run on from the
/// sender's account nonce); *queued* ones wait behind a nonce gap. Queued
/// transactions cost a spammer nothing until the gap closes, so they get
/// their own, much smaller caps and a lifetime, and they never displace a
/// pending transaction.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most transactions held, pending and queued together (geth's
    /// GlobalSlots + GlobalQueue). When full, the lowest-priced transaction
    /// goes: a queued one first, a pending one only when none is queued.
    pub max_count: usize,
    /// Most encoded bytes held; over it, eviction as for `max_count`.
    pub max_bytes: usize,
    /// Most transactions one sender may hold, pending and queued together
    /// (a hard cap; geth's AccountSlots is a soft 16).
    pub max_per_sender: usize,
    /// Most queued transactions held in all (geth's GlobalQueue). When
    /// full, the lowest-priced queued transaction goes, or the new one is refused.
    pub max_queued: usize,
    /// Most queued transactions per sender (geth's AccountQueue).
    pub max_queued_per_sender: usize,
    /// How long a transaction may stay queued before it is dropped (geth's Lifetime).
    pub lifetime: Duration,
    /// Minimum fee increase, in percent, to replace a transaction.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_count: 50_000,
            max_bytes: 128 << 20,
            max_per_sender: 512,
            max_queued: 1_024,
            max_queued_per_sender: 64,
            lifetime: Duration::from_secs(3 * 3600),
            price_bump_percent: 10,
        }
    }
}

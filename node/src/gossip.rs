//! Connects the transaction pool to transaction gossip: every transaction
//! the pool accepts (from RPC or from a peer) is offered to peers, and every
//! transaction a peer sends is judged by the pool. Gossip's content-hash
//! message ids stop a transaction from echoing back.

use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use metanode_execution::txpool::{PoolError, TxPool};
use metanode_p2p::{GossipConfig, TxGossip, Verdict};
use metanode_primitives::{TxEnvelope, MAX_TX_SIZE};
use metanode_storage::ChainDb;
use std::sync::Arc;

/// Starts gossip and hooks it to `pool`.
pub fn start(config: GossipConfig, pool: Arc<TxPool>, db: Arc<ChainDb>) -> anyhow::Result<Arc<TxGossip>> {
    let judge_pool = pool.clone();
    let gossip = Arc::new(metanode_p2p::start(config, move |bytes| judge(&judge_pool, &db, bytes))?);
    let publisher = gossip.clone();
    let lookup = Arc::downgrade(&pool);
    pool.on_new_transaction(move |hash| {
        if let Some(tx) = lookup.upgrade().and_then(|p| p.get(&hash)) {
            publisher.publish(tx.tx.encoded_2718());
        }
    });
    Ok(gossip)
}

fn judge(pool: &TxPool, db: &ChainDb, bytes: &[u8]) -> Verdict {
    if bytes.len() > MAX_TX_SIZE {
        return Verdict::Reject;
    }
    let Ok(tx) = TxEnvelope::decode_2718_exact(bytes) else { return Verdict::Reject };
    let Ok(state) = db.latest_state() else { return Verdict::Ignore };
    match pool.add(tx, &state) {
        Ok(_) => Verdict::Accept,
        // Races with inclusion, replacement and full pools are normal; only
        // transactions no honest node would send count against the peer.
        Err(PoolError::InvalidSender(_))
        | Err(PoolError::InvalidChainId)
        | Err(PoolError::Unprotected)
        | Err(PoolError::Oversized(_))
        | Err(PoolError::Malformed(_))
        | Err(PoolError::TypeNotSupported)
        | Err(PoolError::IntrinsicGasTooLow)
        | Err(PoolError::TipAboveFeeCap) => Verdict::Reject,
        Err(_) => Verdict::Ignore,
    }
}

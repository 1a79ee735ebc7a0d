//! Connects the transaction pool to transaction gossip: every transaction
//! the pool accepts from this node's own clients is offered to peers, and
//! every transaction a peer sends is judged by the pool. A transaction a
//! peer sent is not published again: gossipsub forwards the peer's message
//! once the pool accepts it, so one copy goes on the wire, and content-hash
//! message ids stop it from echoing back.

use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use metanode_execution::txpool::{AccountSource, PoolError, TxOrigin, TxPool};
use metanode_p2p::{GossipConfig, TxGossip, Verdict};
use metanode_primitives::{TxEnvelope, MAX_TX_SIZE};
use metanode_storage::ChainDb;
use std::sync::Arc;

/// Starts gossip and hooks it to `pool`.
pub fn start(config: GossipConfig, pool: Arc<TxPool>, db: Arc<ChainDb>) -> anyhow::Result<Arc<TxGossip>> {
    let judge_pool = pool.clone();
    let gossip =
        Arc::new(metanode_p2p::start(config, move |bytes| judge(&judge_pool, bytes, || db.latest_state().ok()))?);
    let publisher = gossip.clone();
    publish_local(&pool, move |tx| publisher.publish(tx));
    Ok(gossip)
}

/// Hands every transaction the pool accepts from a local client to `publish`.
fn publish_local(pool: &Arc<TxPool>, publish: impl Fn(Vec<u8>) + Send + Sync + 'static) {
    let lookup = Arc::downgrade(pool);
    pool.on_new_transaction(move |hash| {
        let tx = lookup.upgrade().and_then(|p| p.get(&hash));
        if let Some(tx) = tx.filter(|t| t.origin == TxOrigin::Local) {
            publish(tx.tx.encoded_2718());
        }
    });
}

/// The pool's verdict on a transaction a peer sent; `state` is read only
/// for transactions that decode.
fn judge<S: AccountSource>(pool: &TxPool, bytes: &[u8], state: impl FnOnce() -> Option<S>) -> Verdict {
    if bytes.len() > MAX_TX_SIZE {
        return Verdict::Reject;
    }
    let Ok(tx) = TxEnvelope::decode_2718_exact(bytes) else { return Verdict::Reject };
    let Some(state) = state() else { return Verdict::Ignore };
    match pool.add_from_peer(tx, &state) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{Address, TxKind, U256};
    use metanode_execution::txpool::PoolConfig;
    use metanode_storage::StorageError;
    use parking_lot::Mutex;

    #[derive(Clone)]
    struct Funded(Address);

    impl AccountSource for Funded {
        fn nonce_balance(&self, addr: &Address) -> Result<(u64, U256), StorageError> {
            Ok(if *addr == self.0 { (0, U256::from(10u128.pow(20))) } else { (0, U256::ZERO) })
        }
    }

    fn transfer(signer: &alloy_signer_local::PrivateKeySigner, nonce: u64) -> TxEnvelope {
        use alloy_signer::SignerSync;
        let tx = TxEip1559 {
            chain_id: 9928,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(Address::repeat_byte(0x42)),
            value: U256::from(1),
            ..Default::default()
        };
        let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::Eip1559(tx.into_signed(sig))
    }

    #[test]
    fn transactions_from_peers_are_not_published_again() {
        let signer = alloy_signer_local::PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(7)).unwrap();
        let state = Funded(signer.address());
        let pool = Arc::new(TxPool::new(PoolConfig::default(), 9928, 30_000_000));
        let published = Arc::new(Mutex::new(Vec::new()));
        let sink = published.clone();
        publish_local(&pool, move |tx| sink.lock().push(tx));
        // From a peer: accepted, forwarded by gossipsub, not re-published.
        let from_peer = transfer(&signer, 0);
        assert_eq!(judge(&pool, &from_peer.encoded_2718(), || Some(state.clone())), Verdict::Accept);
        assert!(published.lock().is_empty(), "a transaction from a peer was published as a new message");
        // From a local client: published once.
        let local = transfer(&signer, 1);
        pool.add(local.clone(), &state).unwrap();
        assert_eq!(*published.lock(), vec![local.encoded_2718()]);
        // Garbage is the peer's fault.
        assert_eq!(judge(&pool, b"junk", || Some(state.clone())), Verdict::Reject);
    }
}

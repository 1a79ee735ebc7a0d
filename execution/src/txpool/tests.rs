use super::*;
use crate::executor::TransactionSource;
use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_network::TxSignerSync;
use alloy_primitives::{TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use std::{collections::HashMap as StdMap, time::Instant};

const CHAIN: u64 = 9928;
const GWEI: u128 = 1_000_000_000;

#[derive(Default)]
struct MockState(StdMap<Address, (u64, U256)>);

impl AccountSource for MockState {
    fn nonce_balance(&self, addr: &Address) -> Result<(u64, U256), StorageError> {
        Ok(self.0.get(addr).copied().unwrap_or_default())
    }
}

fn signer(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap()
}

fn tx(s: &PrivateKeySigner, nonce: u64, fee: u128, tip: u128) -> TxEnvelope {
    let mut t = TxEip1559 {
        chain_id: CHAIN,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(Address::repeat_byte(0xee)),
        value: U256::from(1),
        ..Default::default()
    };
    let sig = s.sign_transaction_sync(&mut t).unwrap();
    TxEnvelope::Eip1559(t.into_signed(sig))
}

fn funded(signers: &[&PrivateKeySigner]) -> MockState {
    let mut m = MockState::default();
    for s in signers {
        m.0.insert(s.address(), (0, U256::from(10u128.pow(20))));
    }
    m
}

fn pool() -> TxPool {
    TxPool::new(PoolConfig::default(), CHAIN, 30_000_000)
}

#[test]
fn best_orders_by_tip_and_keeps_nonce_order() {
    let (a, b) = (signer(1), signer(2));
    let state = funded(&[&a, &b]);
    let p = pool();
    // a: low tip at nonce 0, high tip at nonce 1; b: medium tip.
    p.add(tx(&a, 1, 100 * GWEI, 50 * GWEI), &state).unwrap();
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&b, 0, 100 * GWEI, 10 * GWEI), &state).unwrap();
    let mut best = p.best(0);
    let order: Vec<(Address, u64)> = std::iter::from_fn(|| best.next_tx()).map(|t| (t.sender, t.tx.nonce())).collect();
    assert_eq!(order, vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]);
}

#[test]
fn skipping_a_sender_drops_its_later_nonces() {
    let (a, b) = (signer(1), signer(2));
    let state = funded(&[&a, &b]);
    let p = pool();
    p.add(tx(&a, 0, 100 * GWEI, 20 * GWEI), &state).unwrap();
    p.add(tx(&a, 1, 100 * GWEI, 20 * GWEI), &state).unwrap();
    p.add(tx(&b, 0, 100 * GWEI, 10 * GWEI), &state).unwrap();
    let mut best = p.best(0);
    let first = best.next_tx().unwrap();
    assert_eq!(first.sender, a.address());
    best.skip_sender(a.address());
    let rest: Vec<Address> = std::iter::from_fn(|| best.next_tx()).map(|t| t.sender).collect();
    assert_eq!(rest, vec![b.address()]);
}

#[test]
fn replacement_needs_ten_percent_bump() {
    let a = signer(1);
    let state = funded(&[&a]);
    let p = pool();
    let h0 = p.add(tx(&a, 0, 100 * GWEI, 10 * GWEI), &state).unwrap();
    let err = p.add(tx(&a, 0, 109 * GWEI, 11 * GWEI), &state).unwrap_err();
    assert_eq!(err.to_string(), "replacement transaction underpriced");
    let h1 = p.add(tx(&a, 0, 110 * GWEI, 11 * GWEI), &state).unwrap();
    assert_eq!(p.len(), 1);
    assert!(p.get(&h0).is_none());
    assert!(p.get(&h1).is_some());
}

#[test]
fn geth_rejection_messages() {
    let (a, poor) = (signer(1), signer(3));
    let mut state = funded(&[&a]);
    state.0.insert(a.address(), (5, U256::from(10u128.pow(20))));
    let p = pool();
    let ok = tx(&a, 5, 100 * GWEI, GWEI);
    p.add(ok.clone(), &state).unwrap();
    assert_eq!(p.add(ok, &state).unwrap_err().to_string(), "already known");
    assert_eq!(p.add(tx(&a, 4, 100 * GWEI, GWEI), &state).unwrap_err().to_string(), "nonce too low");
    assert_eq!(
        p.add(tx(&poor, 0, 100 * GWEI, GWEI), &state).unwrap_err().to_string(),
        "insufficient funds for gas * price + value"
    );
    let mut low =
        TxEip1559 { chain_id: CHAIN, nonce: 6, gas_limit: 20_000, max_fee_per_gas: GWEI, ..Default::default() };
    let sig = a.sign_transaction_sync(&mut low).unwrap();
    assert_eq!(
        p.add(TxEnvelope::Eip1559(low.into_signed(sig)), &state).unwrap_err().to_string(),
        "intrinsic gas too low"
    );
    let mut big =
        TxEip1559 { chain_id: CHAIN, nonce: 6, gas_limit: 30_000_001, max_fee_per_gas: GWEI, ..Default::default() };
    let sig = a.sign_transaction_sync(&mut big).unwrap();
    assert_eq!(
        p.add(TxEnvelope::Eip1559(big.into_signed(sig)), &state).unwrap_err().to_string(),
        "exceeds block gas limit"
    );
    let mut other = TxLegacy { chain_id: Some(1), nonce: 6, gas_limit: 21_000, gas_price: GWEI, ..Default::default() };
    let sig = a.sign_transaction_sync(&mut other).unwrap();
    assert_eq!(p.add(TxEnvelope::Legacy(other.into_signed(sig)), &state).unwrap_err().to_string(), "invalid chain id");
    // Nothing rejected was kept.
    assert_eq!(p.len(), 1);
    assert_eq!(p.status(), PoolStatus { pending: 1, queued: 0 });
}

#[test]
fn gaps_queue_and_closing_them_makes_pending() {
    let a = signer(1);
    let state = funded(&[&a]);
    let p = pool();
    p.add(tx(&a, 1, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&a, 2, 100 * GWEI, GWEI), &state).unwrap();
    assert_eq!(p.status(), PoolStatus { pending: 0, queued: 2 });
    assert!(!p.has_pending());
    assert_eq!(p.pending_nonce(&a.address()), Some(0));
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    assert_eq!(p.status(), PoolStatus { pending: 3, queued: 0 });
    assert_eq!(p.pending_nonce(&a.address()), Some(3));
}

#[test]
fn full_pool_evicts_the_cheapest_or_rejects() {
    let signers: Vec<_> = (1..=4).map(signer).collect();
    let state = funded(&signers.iter().collect::<Vec<_>>());
    let p = TxPool::new(PoolConfig { max_count: 3, ..Default::default() }, CHAIN, 30_000_000);
    p.add(tx(&signers[0], 0, 100 * GWEI, 5 * GWEI), &state).unwrap();
    let cheap = p.add(tx(&signers[1], 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&signers[2], 0, 100 * GWEI, 3 * GWEI), &state).unwrap();
    // Cheaper than everything: rejected, pool unchanged.
    assert_eq!(p.add(tx(&signers[3], 0, 100 * GWEI, GWEI / 2), &state).unwrap_err().to_string(), "txpool is full");
    assert_eq!(p.len(), 3);
    // Pays more: the cheapest is evicted.
    p.add(tx(&signers[3], 0, 100 * GWEI, 4 * GWEI), &state).unwrap();
    assert_eq!(p.len(), 3);
    assert!(p.get(&cheap).is_none());
}

#[test]
fn revalidation_drops_mined_and_unpayable() {
    let (a, b) = (signer(1), signer(2));
    let mut state = funded(&[&a, &b]);
    let p = pool();
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&a, 1, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&b, 0, 100 * GWEI, GWEI), &state).unwrap();
    // a's nonce 0 mined; b drained.
    state.0.insert(a.address(), (1, U256::from(10u128.pow(20))));
    state.0.insert(b.address(), (0, U256::ZERO));
    p.on_block(&state, 30_000_000).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p.pending_nonce(&a.address()), Some(2));
    assert_eq!(p.pending_nonce(&b.address()), None);
}

/// What `tx(_, _, fee, _)` costs: 21,000 gas at the fee cap plus 1 wei.
fn cost(fee: u128) -> U256 {
    U256::from(21_000u128 * fee + 1)
}

fn with_config(config: PoolConfig) -> TxPool {
    TxPool::new(config, CHAIN, 30_000_000)
}

#[test]
fn funds_must_cover_all_of_a_senders_transactions_together() {
    let a = signer(1);
    let mut state = MockState::default();
    state.0.insert(a.address(), (0, cost(100 * GWEI) * U256::from(2) + U256::from(1_000)));
    let p = pool();
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&a, 1, 100 * GWEI, GWEI), &state).unwrap();
    // Each is affordable alone; the third is not affordable with the first two.
    let third = p.add(tx(&a, 2, 100 * GWEI, GWEI), &state).unwrap_err();
    assert_eq!(third.to_string(), "insufficient funds for gas * price + value");
    assert!(matches!(p.add(tx(&a, 7, 100 * GWEI, GWEI), &state), Err(PoolError::InsufficientFunds)));
    // A replacement is charged its own cost instead of the old one's: a bump
    // the balance cannot cover is refused, the original stays.
    assert!(matches!(p.add(tx(&a, 1, 200 * GWEI, 2 * GWEI), &state), Err(PoolError::InsufficientFunds)));
    assert_eq!(p.len(), 2);
}

#[test]
fn revalidation_pays_a_senders_transactions_in_nonce_order() {
    let a = signer(1);
    let mut state = funded(&[&a]);
    let p = pool();
    let hashes: Vec<B256> = (0..3).map(|n| p.add(tx(&a, n, 100 * GWEI, GWEI), &state).unwrap()).collect();
    // The balance drops to what two of them cost: the last one goes.
    state.0.insert(a.address(), (0, cost(100 * GWEI) * U256::from(2)));
    p.on_block(&state, 30_000_000).unwrap();
    assert!(p.get(&hashes[0]).is_some() && p.get(&hashes[1]).is_some());
    assert!(p.get(&hashes[2]).is_none());
    assert_eq!(p.status(), PoolStatus { pending: 2, queued: 0 });
}

#[test]
fn per_sender_caps_on_all_and_on_queued_transactions() {
    let a = signer(1);
    let state = funded(&[&a]);
    let p = with_config(PoolConfig { max_per_sender: 6, max_queued_per_sender: 3, ..Default::default() });
    for n in 1..=3 {
        p.add(tx(&a, n, 100 * GWEI, GWEI), &state).unwrap();
    }
    // A fourth queued one is over the queued cap ...
    assert_eq!(p.add(tx(&a, 4, 100 * GWEI, GWEI), &state).unwrap_err().to_string(), "account limit exceeded");
    assert_eq!(p.status(), PoolStatus { pending: 0, queued: 3 });
    // ... but closing the gap makes them pending, and the run may grow.
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    assert_eq!(p.status(), PoolStatus { pending: 4, queued: 0 });
    p.add(tx(&a, 4, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&a, 5, 100 * GWEI, GWEI), &state).unwrap();
    // Six in all is the sender's cap, pending or not.
    assert!(matches!(p.add(tx(&a, 6, 100 * GWEI, GWEI), &state), Err(PoolError::AccountLimit)));
    assert_eq!(p.status(), PoolStatus { pending: 6, queued: 0 });
}

#[test]
fn full_queue_evicts_the_lowest_priced_queued_transaction() {
    let signers: Vec<_> = (1..=5).map(signer).collect();
    let state = funded(&signers.iter().collect::<Vec<_>>());
    let p = with_config(PoolConfig { max_queued: 3, ..Default::default() });
    // A pending transaction paying little is not part of the queue's contest.
    let pending = p.add(tx(&signers[4], 0, 100 * GWEI, GWEI / 10), &state).unwrap();
    p.add(tx(&signers[0], 1, 100 * GWEI, 5 * GWEI), &state).unwrap();
    let cheap = p.add(tx(&signers[1], 1, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&signers[2], 1, 100 * GWEI, 3 * GWEI), &state).unwrap();
    // Cheaper than every queued one: refused.
    assert_eq!(p.add(tx(&signers[3], 1, 100 * GWEI, GWEI / 2), &state).unwrap_err().to_string(), "txpool is full");
    assert_eq!(p.status(), PoolStatus { pending: 1, queued: 3 });
    // Pays more than the cheapest queued one: that one goes.
    p.add(tx(&signers[3], 1, 100 * GWEI, 4 * GWEI), &state).unwrap();
    assert!(p.get(&cheap).is_none());
    assert!(p.get(&pending).is_some());
    assert_eq!(p.status(), PoolStatus { pending: 1, queued: 3 });
    assert_eq!(p.counters().evicted, 1);
}

#[test]
fn a_full_pool_evicts_queued_before_pending_and_never_for_a_queued_one() {
    let signers: Vec<_> = (1..=5).map(signer).collect();
    let state = funded(&signers.iter().collect::<Vec<_>>());
    let p = with_config(PoolConfig { max_count: 3, ..Default::default() });
    let low: Vec<B256> = (0..3).map(|i| p.add(tx(&signers[i], 0, 100 * GWEI, GWEI), &state).unwrap()).collect();
    // Full of pending transactions: a high-paying future-nonce one does not get in.
    let spam = p.add(tx(&signers[3], 5, 100 * GWEI, 50 * GWEI), &state).unwrap_err();
    assert_eq!(spam.to_string(), "txpool is full");
    assert!(low.iter().all(|h| p.get(h).is_some()));
    // An executable one that pays more takes the cheapest pending slot.
    p.add(tx(&signers[3], 0, 100 * GWEI, 2 * GWEI), &state).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(low.iter().filter(|h| p.get(h).is_some()).count(), 2);
    // With a queued transaction in the pool, it is the one to go, however well it pays.
    let p = with_config(PoolConfig { max_count: 3, ..Default::default() });
    p.add(tx(&signers[0], 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&signers[1], 0, 100 * GWEI, GWEI), &state).unwrap();
    let queued = p.add(tx(&signers[2], 3, 100 * GWEI, 90 * GWEI), &state).unwrap();
    p.add(tx(&signers[4], 0, 100 * GWEI, GWEI), &state).unwrap();
    assert!(p.get(&queued).is_none());
    assert_eq!(p.status(), PoolStatus { pending: 3, queued: 0 });
    assert_eq!(p.counters().evicted, 1);
}

#[test]
fn queued_transactions_expire_after_the_lifetime() {
    let a = signer(1);
    let state = funded(&[&a]);
    let p = pool();
    let pending = p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    let queued = p.add(tx(&a, 2, 100 * GWEI, GWEI), &state).unwrap();
    assert_eq!(p.expire_queued(Instant::now()), 0, "nothing is older than three hours yet");
    let later = Instant::now() + PoolConfig::default().lifetime + std::time::Duration::from_secs(1);
    assert_eq!(p.expire_queued(later), 1);
    assert!(p.get(&queued).is_none());
    assert!(p.get(&pending).is_some(), "pending transactions do not expire");
    assert_eq!(p.status(), PoolStatus { pending: 1, queued: 0 });
    assert_eq!(p.counters().expired, 1);
}

/// A state that fails the test when it is read while the pool is locked.
struct Unlocked<'a> {
    pool: &'a TxPool,
    state: MockState,
}

impl AccountSource for Unlocked<'_> {
    fn nonce_balance(&self, addr: &Address) -> Result<(u64, U256), StorageError> {
        assert!(self.pool.inner.try_write().is_some(), "state read under the pool's lock");
        self.state.nonce_balance(addr)
    }
}

#[test]
fn state_is_read_outside_the_pool_lock() {
    let (a, b) = (signer(1), signer(2));
    let p = pool();
    let state = Unlocked { pool: &p, state: funded(&[&a, &b]) };
    p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    p.add(tx(&b, 0, 100 * GWEI, GWEI), &state).unwrap();
    p.on_block(&state, 30_000_000).unwrap();
    assert_eq!(p.len(), 2);
}

#[test]
fn transactions_remember_where_they_came_from() {
    let (a, b) = (signer(1), signer(2));
    let state = funded(&[&a, &b]);
    let p = pool();
    let local = p.add(tx(&a, 0, 100 * GWEI, GWEI), &state).unwrap();
    let remote = p.add_from_peer(tx(&b, 0, 100 * GWEI, GWEI), &state).unwrap();
    assert_eq!(p.get(&local).unwrap().origin, TxOrigin::Local);
    assert_eq!(p.get(&remote).unwrap().origin, TxOrigin::Peer);
}

use super::*;
use crate::executor::TransactionSource;
use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_network::TxSignerSync;
use alloy_primitives::{TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use std::collections::HashMap as StdMap;

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

//! Checks that need no state: size, type, chain id, gas, fees, signature.

use super::PoolError;
use crate::env::SPEC;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::Address;
use metanode_primitives::{recover_sender, MAX_TX_SIZE};
use revm::context_interface::cfg::gas::calculate_initial_tx_gas;

/// Intrinsic gas of a transaction under Prague (including the EIP-7623 floor).
pub fn intrinsic_gas(tx: &TxEnvelope) -> u64 {
    let (accounts, slots) = tx
        .access_list()
        .map(|l| (l.len() as u64, l.iter().map(|i| i.storage_keys.len() as u64).sum()))
        .unwrap_or_default();
    let auths = tx.authorization_list().map(|a| a.len() as u64).unwrap_or_default();
    let gas = calculate_initial_tx_gas(SPEC, tx.input(), tx.is_create(), accounts, slots, auths, None);
    (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
}

/// Validates what can be validated without state and recovers the sender.
pub(super) fn stateless(
    tx: &TxEnvelope,
    size: usize,
    chain_id: u64,
    block_gas_limit: u64,
) -> Result<Address, PoolError> {
    if size > MAX_TX_SIZE {
        return Err(PoolError::Oversized(size));
    }
    match tx {
        TxEnvelope::Eip4844(_) => return Err(PoolError::TypeNotSupported),
        TxEnvelope::Eip7702(t) if t.tx().authorization_list.is_empty() => {
            return Err(PoolError::Malformed("EIP-7702 transaction with empty auth list"));
        }
        _ => {}
    }
    match tx.chain_id() {
        Some(id) if id != chain_id => return Err(PoolError::InvalidChainId),
        None => return Err(PoolError::Unprotected),
        _ => {}
    }
    if tx.gas_limit() > block_gas_limit {
        return Err(PoolError::ExceedsBlockGasLimit);
    }
    if tx.gas_limit() < intrinsic_gas(tx) {
        return Err(PoolError::IntrinsicGasTooLow);
    }
    if let Some(tip) = tx.max_priority_fee_per_gas() {
        if tip > tx.max_fee_per_gas() {
            return Err(PoolError::TipAboveFeeCap);
        }
    }
    Ok(recover_sender(tx)?)
}

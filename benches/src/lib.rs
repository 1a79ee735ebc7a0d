//! Shared fixtures for MetaNode's benchmarks and load tool: deterministic
//! sender keys, pre-signed transfers, and genesis builders.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use rayon::prelude::*;

/// The node's allocator, so the benches measure what the node runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 1 gwei.
pub const GWEI: u128 = 1_000_000_000;

/// The `i`-th benchmark sender: a key derived from a fixed seed, so runs repeat.
pub fn sender(i: u64) -> PrivateKeySigner {
    let mut seed = keccak256([b"metanode-bench-sender".as_slice(), &i.to_be_bytes()].concat());
    // A valid secp256k1 scalar: keccak output is below the order with overwhelming probability.
    seed.0[0] &= 0x7f;
    PrivateKeySigner::from_bytes(&seed).expect("valid key")
}

/// A signed EIP-1559 ETH transfer.
pub fn transfer(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
    max_fee: u128,
) -> TxEnvelope {
    let mut tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value,
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut tx).expect("signing cannot fail for a local key");
    TxEnvelope::Eip1559(tx.into_signed(sig))
}

/// `per_sender` transfers from each of `senders` senders (nonces from
/// `first_nonce`), interleaved round-robin, signed on all cores.
pub fn presign_transfers(
    senders: &[PrivateKeySigner],
    chain_id: u64,
    first_nonce: u64,
    per_sender: u64,
    max_fee: u128,
) -> Vec<TxEnvelope> {
    let jobs: Vec<(usize, u64)> =
        (0..per_sender).flat_map(|n| (0..senders.len()).map(move |s| (s, first_nonce + n))).collect();
    jobs.par_iter()
        .map(|&(s, nonce)| {
            let to = Address::from_word(keccak256((s as u64 * 1_000_003 + nonce).to_be_bytes()));
            transfer(&senders[s], chain_id, nonce, to, U256::from(1), max_fee)
        })
        .collect()
}

/// A genesis funding `accounts` with 1,000 ETH each.
pub fn funded_genesis(chain_id: u64, gas_limit: u64, accounts: impl IntoIterator<Item = Address>) -> Genesis {
    let mut genesis = Genesis { gas_limit, base_fee_per_gas: Some(GWEI), ..Default::default() };
    genesis.config.chain_id = chain_id;
    let balance = U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18));
    genesis.alloc = accounts.into_iter().map(|a| (a, GenesisAccount { balance, ..Default::default() })).collect();
    genesis
}

/// A pseudo-random address for filler accounts.
pub fn filler_address(i: u64) -> Address {
    Address::from_word(B256::from(keccak256([b"filler".as_slice(), &i.to_be_bytes()].concat())))
}

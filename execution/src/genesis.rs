//! Writing the genesis block, or checking that the stored one is ours.

use crate::{
    error::ExecError,
    executor::ExecutedBlock,
    root::state_root,
    state::{AccountEntry, AccountValue, PendingChanges},
};
use alloy_primitives::{keccak256, B256, U256};
use alloy_trie::KECCAK_EMPTY;
use metanode_primitives::{ChainSpec, SealedBlock};
use metanode_storage::{BlockWrite, ChainDb, StorageChange, StorageError};
use std::collections::BTreeMap;

/// The genesis block and its state for `spec`, computed without writing.
pub fn genesis_block(db: &ChainDb, spec: &ChainSpec) -> Result<ExecutedBlock, ExecError> {
    let mut accounts = BTreeMap::new();
    let mut storage: BTreeMap<_, Vec<StorageChange>> = BTreeMap::new();
    let mut codes = Vec::new();
    for (address, acc) in &spec.genesis.alloc {
        let code_hash = match &acc.code {
            Some(code) if !code.is_empty() => {
                let hash = keccak256(code);
                codes.push((hash, code.clone()));
                hash
            }
            _ => KECCAK_EMPTY,
        };
        let current = AccountValue { nonce: acc.nonce.unwrap_or_default(), balance: acc.balance, code_hash };
        accounts.insert(*address, AccountEntry { original: None, current: Some(current) });
        for (slot, value) in acc.storage.iter().flatten() {
            let new = U256::from_be_bytes(value.0);
            if !new.is_zero() {
                storage.entry(*address).or_default().push(StorageChange {
                    address: *address,
                    slot: *slot,
                    old: U256::ZERO,
                    new,
                });
            }
        }
    }
    codes.sort_by_key(|(h, _): &(B256, _)| *h);
    let reader = db.latest_state()?;
    let (root, diff, trie) = state_root(&reader, PendingChanges { accounts, storage, codes })?;
    let block = SealedBlock::new(spec.genesis_header(root), vec![], vec![]);
    Ok(ExecutedBlock { block, receipts: vec![], diff, trie })
}

/// Initialises an empty database with the genesis of `spec`, or verifies that
/// a non-empty one was initialised with the same genesis. Returns the genesis.
pub fn init_genesis(db: &ChainDb, spec: &ChainSpec) -> Result<SealedBlock, ExecError> {
    match db.genesis_hash()? {
        Some(stored) => {
            match db.chain_id()? {
                Some(id) if id != spec.chain_id => {
                    return Err(ExecError::ChainIdMismatch { stored: id, configured: spec.chain_id })
                }
                Some(_) => {}
                // Genesis and chain id are written in one batch: one without the other is not ours.
                None => {
                    let detail = "genesis recorded without a chain id".to_string();
                    return Err(StorageError::Corrupt { what: "chain id", detail }.into());
                }
            }
            let genesis = db.sealed_block(0)?.ok_or_else(|| ExecError::InvalidBlock {
                number: 0,
                reason: "genesis hash recorded but genesis block missing".into(),
            })?;
            let configured = spec.genesis_header(alloc_root(spec)).hash_slow();
            if stored != configured || genesis.hash != stored {
                return Err(ExecError::GenesisMismatch { stored, configured });
            }
            Ok(genesis)
        }
        None => {
            let executed = genesis_block(db, spec)?;
            let write = BlockWrite {
                block: &executed.block,
                receipts: &executed.receipts,
                state: &executed.diff,
                trie: &executed.trie,
                commit: None,
            };
            db.commit_genesis(write, spec.chain_id)?;
            Ok(executed.block)
        }
    }
}

/// The state root of `spec`'s alloc, computed in memory by alloy-trie's hash
/// builder (independent of our stored trie), to recognise our genesis.
pub fn alloc_root(spec: &ChainSpec) -> B256 {
    use alloy_consensus::proofs::{state_root_unhashed, storage_root_unhashed};
    state_root_unhashed(spec.genesis.alloc.iter().map(|(address, acc)| {
        let code_hash = acc.code.as_ref().filter(|c| !c.is_empty()).map(keccak256).unwrap_or(KECCAK_EMPTY);
        let slots =
            acc.storage.iter().flatten().map(|(k, v)| (*k, U256::from_be_bytes(v.0))).filter(|(_, v)| !v.is_zero());
        let account = alloy_trie::TrieAccount {
            nonce: acc.nonce.unwrap_or_default(),
            balance: acc.balance,
            storage_root: storage_root_unhashed(slots),
            code_hash,
        };
        (*address, account)
    }))
}

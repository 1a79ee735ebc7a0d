//! The state a block executes against: the committed state at its parent,
//! overlaid with what earlier transactions of the same block changed.
//!
//! The overlay keeps each account's and slot's value at the start of the
//! block, so that at the end it can hand storage the exact diff (old and new
//! values) that history and the trie need.

use alloy_primitives::{map::HashMap, Address, Bytes, B256, U256};
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY};
use metanode_storage::{AccountChange, StateDiff, StateReader, StorageChange, StorageError, StoredAccount};
use revm::{
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    state::{AccountInfo, EvmState},
};
use std::collections::{BTreeMap, HashSet};

/// A storage error surfaced through revm's database interface.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StateError(#[from] pub StorageError);

impl DBErrorMarker for StateError {}

/// The part of an account revm changes (the storage root is ours to compute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountValue {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountEntry {
    /// As committed at the parent block.
    pub original: Option<StoredAccount>,
    /// As of the last transaction executed.
    pub current: Option<AccountValue>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotEntry {
    pub original: U256,
    pub current: U256,
}

/// Committed state plus the block's pending changes; revm reads through it.
pub struct BlockState<'a> {
    reader: StateReader<'a>,
    pub(crate) accounts: HashMap<Address, AccountEntry>,
    pub(crate) storage: HashMap<(Address, U256), SlotEntry>,
    codes: HashMap<B256, Bytes>,
    /// Accounts whose whole committed storage was cleared in this block.
    wiped: HashSet<Address>,
}

impl std::fmt::Debug for BlockState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockState")
            .field("block", &self.reader.block())
            .field("accounts", &self.accounts.len())
            .finish()
    }
}

impl<'a> BlockState<'a> {
    /// An overlay with no changes yet.
    pub fn new(reader: StateReader<'a>) -> Self {
        Self {
            reader,
            accounts: HashMap::default(),
            storage: HashMap::default(),
            codes: HashMap::default(),
            wiped: HashSet::new(),
        }
    }

    /// The committed state underneath.
    pub fn reader(&self) -> &StateReader<'a> {
        &self.reader
    }

    fn entry(&mut self, addr: Address) -> Result<&mut AccountEntry, StorageError> {
        if !self.accounts.contains_key(&addr) {
            let original = self.reader.account(&addr)?;
            let current =
                original.as_ref().map(|a| AccountValue { nonce: a.nonce, balance: a.balance, code_hash: a.code_hash });
            self.accounts.insert(addr, AccountEntry { original, current });
        }
        Ok(self.accounts.get_mut(&addr).expect("inserted above"))
    }

    fn slot(&mut self, addr: Address, key: U256) -> Result<&mut SlotEntry, StorageError> {
        if !self.storage.contains_key(&(addr, key)) {
            let original = self.reader.storage(&addr, &B256::from(key))?;
            let current = if self.wiped.contains(&addr) { U256::ZERO } else { original };
            self.storage.insert((addr, key), SlotEntry { original, current });
        }
        Ok(self.storage.get_mut(&(addr, key)).expect("inserted above"))
    }

    /// Current account value (nonce, balance) as the pool and RPC see it.
    pub fn account_nonce_balance(&mut self, addr: Address) -> Result<(u64, U256), StorageError> {
        Ok(self.entry(addr)?.current.as_ref().map(|a| (a.nonce, a.balance)).unwrap_or_default())
    }

    /// Applies one transaction's state changes (revm's commit rules).
    pub fn commit(&mut self, changes: EvmState) -> Result<(), StorageError> {
        for (addr, account) in changes {
            if !account.is_touched() {
                continue;
            }
            if account.is_selfdestructed() {
                self.wipe_storage(addr);
                self.entry(addr)?.current = None;
                continue;
            }
            if account.is_created() {
                self.wipe_storage(addr);
            } else if account.is_empty() {
                // EIP-161: touched empty accounts are removed.
                self.entry(addr)?.current = None;
                continue;
            }
            let info = &account.info;
            if info.code_hash != KECCAK_EMPTY && !self.codes.contains_key(&info.code_hash) {
                if let Some(code) = &info.code {
                    if self.reader.code(&info.code_hash)?.is_none() {
                        self.codes.insert(info.code_hash, code.original_bytes());
                    }
                }
            }
            self.entry(addr)?.current =
                Some(AccountValue { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash });
            for (key, slot) in account.storage {
                if slot.is_changed() {
                    self.slot(addr, key)?.current = slot.present_value;
                }
            }
        }
        Ok(())
    }

    fn wipe_storage(&mut self, addr: Address) {
        self.wiped.insert(addr);
        for ((a, _), slot) in self.storage.iter_mut() {
            if *a == addr {
                slot.current = U256::ZERO;
            }
        }
    }

    /// The block's net changes: accounts whose value differs from the parent
    /// (storage roots still to be filled in by the state root step), slots
    /// whose value differs, and new code.
    pub(crate) fn into_changes_with_reader(mut self) -> Result<(StateReader<'a>, PendingChanges), StorageError> {
        // Slots of wiped accounts that were never loaded still have to go.
        for addr in self.wiped.clone() {
            for (slot, value) in self.reader.storage_slots(&addr)? {
                self.storage
                    .entry((addr, U256::from_be_bytes(slot.0)))
                    .or_insert(SlotEntry { original: value, current: U256::ZERO });
            }
        }
        let mut storage: BTreeMap<Address, Vec<StorageChange>> = BTreeMap::new();
        for ((address, key), s) in self.storage {
            if s.original != s.current {
                storage.entry(address).or_default().push(StorageChange {
                    address,
                    slot: B256::from(key),
                    old: s.original,
                    new: s.current,
                });
            }
        }
        let mut accounts = BTreeMap::new();
        for (addr, e) in self.accounts {
            let unchanged_value = match (&e.original, &e.current) {
                (None, None) => true,
                (Some(o), Some(c)) => o.nonce == c.nonce && o.balance == c.balance && o.code_hash == c.code_hash,
                _ => false,
            };
            if unchanged_value && !storage.contains_key(&addr) {
                continue;
            }
            accounts.insert(addr, e);
        }
        // An account whose storage changed must be in the account set even if
        // its own fields did not change, since its storage root did.
        for addr in storage.keys() {
            if !accounts.contains_key(addr) {
                let original = self.reader.account(addr)?;
                let current = original.as_ref().map(|a| AccountValue {
                    nonce: a.nonce,
                    balance: a.balance,
                    code_hash: a.code_hash,
                });
                accounts.insert(*addr, AccountEntry { original, current });
            }
        }
        let mut codes: Vec<(B256, Bytes)> = self.codes.into_iter().collect();
        codes.sort_by_key(|(h, _)| *h);
        Ok((self.reader, PendingChanges { accounts, storage, codes }))
    }
}

/// Net changes of a block before the trie step assigns storage roots.
pub(crate) struct PendingChanges {
    pub accounts: BTreeMap<Address, AccountEntry>,
    pub storage: BTreeMap<Address, Vec<StorageChange>>,
    pub codes: Vec<(B256, Bytes)>,
}

impl PendingChanges {
    /// Final diff given each changed account's new storage root.
    pub fn into_diff(self, storage_roots: &HashMap<Address, B256>) -> StateDiff {
        let accounts = self
            .accounts
            .into_iter()
            .filter_map(|(address, e)| {
                let new = e.current.map(|c| StoredAccount {
                    nonce: c.nonce,
                    balance: c.balance,
                    code_hash: c.code_hash,
                    storage_root: storage_roots
                        .get(&address)
                        .copied()
                        .or(e.original.as_ref().map(|o| o.storage_root))
                        .unwrap_or(EMPTY_ROOT_HASH),
                });
                (new != e.original).then_some(AccountChange { address, old: e.original, new })
            })
            .collect();
        StateDiff { accounts, storage: self.storage.into_values().flatten().collect(), codes: self.codes }
    }
}

impl revm::Database for BlockState<'_> {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.entry(address)?.current.as_ref().map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        let raw = match self.codes.get(&code_hash) {
            Some(c) => c.clone(),
            None => self
                .reader
                .code(&code_hash)?
                .ok_or_else(|| StorageError::Corrupt { what: "code", detail: format!("missing code {code_hash}") })?,
        };
        Bytecode::new_raw_checked(raw)
            .map_err(|e| StateError(StorageError::Corrupt { what: "code", detail: e.to_string() }))
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StateError> {
        Ok(self.slot(address, index)?.current)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StateError> {
        Ok(self.reader.block_hash(number)?.unwrap_or_default())
    }
}

//! Consistent reads of the world state, at the head or at a recent block.
//!
//! Plain state holds the head's values. History holds, for each block `n`
//! and each account or slot it changed, the value before `n`; the value at
//! block `b` is therefore the first history entry after `b`, or the plain
//! value when there is none. Every reader works on a RocksDB snapshot, so a
//! block committed mid-read never mixes two states.

use crate::{
    db::ChainDb,
    error::StorageError,
    keys::{
        account_history_key, decode_u64, num_key, storage_history_key, storage_key, storage_trie_key, CF_ACCOUNTS,
        CF_ACCOUNT_HISTORY, CF_ACCOUNT_TRIE, CF_CANONICAL, CF_CODE, CF_META, CF_STORAGE, CF_STORAGE_HISTORY,
        CF_STORAGE_TRIE, META_HEAD,
    },
};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Decodable;
use rocksdb::Snapshot;

/// An account as the state trie stores it: nonce, balance, storage root, code hash.
pub type StoredAccount = alloy_trie::TrieAccount;

pub(crate) fn decode_account(raw: &[u8]) -> Result<StoredAccount, StorageError> {
    StoredAccount::decode(&mut &raw[..]).map_err(|e| StorageError::corrupt("account", e))
}

pub(crate) fn decode_word(raw: &[u8]) -> Result<U256, StorageError> {
    if raw.len() > 32 {
        return Err(StorageError::corrupt("storage value", "longer than 32 bytes"));
    }
    Ok(U256::from_be_slice(raw))
}

/// Minimal big-endian bytes of a storage word; zero is the empty string.
pub(crate) fn encode_word(v: &U256) -> Vec<u8> {
    let bytes = v.to_be_bytes::<32>();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(32);
    bytes[first..].to_vec()
}

/// A view of the state at one block, fixed for its lifetime.
pub struct StateReader<'a> {
    db: &'a ChainDb,
    snap: Snapshot<'a>,
    block: u64,
    at_head: bool,
}

impl std::fmt::Debug for StateReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReader").field("block", &self.block).field("at_head", &self.at_head).finish()
    }
}

impl ChainDb {
    /// The state at the head as of now (the empty state before genesis).
    pub fn latest_state(&self) -> Result<StateReader<'_>, StorageError> {
        let snap = self.db.snapshot();
        let head = Self::snapshot_head(self, &snap)?.unwrap_or(0);
        Ok(StateReader { db: self, snap, block: head, at_head: true })
    }

    /// The state after block `block`, if it is within the kept history.
    pub fn state_at(&self, block: u64) -> Result<StateReader<'_>, StorageError> {
        let snap = self.db.snapshot();
        let head = Self::snapshot_head(self, &snap)?.ok_or(StorageError::UnknownBlock(block))?;
        if block > head {
            return Err(StorageError::UnknownBlock(block));
        }
        let oldest = self.oldest_state(head);
        if block < oldest {
            return Err(StorageError::HistoryPruned { requested: block, oldest, head });
        }
        Ok(StateReader { db: self, snap, block, at_head: block == head })
    }

    fn snapshot_head(&self, snap: &Snapshot<'_>) -> Result<Option<u64>, StorageError> {
        match snap.get_cf(self.cf(CF_META), META_HEAD)? {
            Some(raw) => Ok(Some(decode_u64(&raw).ok_or_else(|| StorageError::corrupt("head", "not 8 bytes"))?)),
            None => Ok(None),
        }
    }
}

impl<'a> StateReader<'a> {
    /// The block whose post-state this reader sees.
    pub fn block(&self) -> u64 {
        self.block
    }

    /// Whether this is the head's state (trie nodes are only kept for the head).
    pub fn is_head(&self) -> bool {
        self.at_head
    }

    /// First history entry at or after `from` whose key starts with `prefix`.
    fn history_after(&self, cf: &str, from: &[u8], prefix_len: usize) -> Result<Option<Vec<u8>>, StorageError> {
        let mut it = self.snap.raw_iterator_cf(self.db.cf(cf));
        it.seek(from);
        if let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.len() == prefix_len + 8 && k[..prefix_len] == from[..prefix_len] {
                return Ok(Some(v.to_vec()));
            }
        }
        it.status()?;
        Ok(None)
    }

    /// An account, or `None` if it does not exist at this block.
    pub fn account(&self, addr: &Address) -> Result<Option<StoredAccount>, StorageError> {
        if !self.at_head {
            let from = account_history_key(addr, self.block + 1);
            if let Some(old) = self.history_after(CF_ACCOUNT_HISTORY, &from, 20)? {
                return if old.is_empty() { Ok(None) } else { decode_account(&old).map(Some) };
            }
        }
        match self.snap.get_pinned_cf(self.db.cf(CF_ACCOUNTS), addr)? {
            Some(raw) => decode_account(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// A storage slot's value (zero when unset).
    pub fn storage(&self, addr: &Address, slot: &B256) -> Result<U256, StorageError> {
        if !self.at_head {
            let from = storage_history_key(addr, slot, self.block + 1);
            if let Some(old) = self.history_after(CF_STORAGE_HISTORY, &from, 52)? {
                return decode_word(&old);
            }
        }
        match self.snap.get_pinned_cf(self.db.cf(CF_STORAGE), storage_key(addr, slot))? {
            Some(raw) => decode_word(&raw),
            None => Ok(U256::ZERO),
        }
    }

    /// Every non-zero slot of an account at the head (used when storage is wiped).
    pub fn storage_slots(&self, addr: &Address) -> Result<Vec<(B256, U256)>, StorageError> {
        let mut out = Vec::new();
        let mut it = self.snap.raw_iterator_cf(self.db.cf(CF_STORAGE));
        it.seek(addr);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.len() != 52 || &k[..20] != addr.as_slice() {
                break;
            }
            out.push((B256::from_slice(&k[20..]), decode_word(v)?));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Contract code by hash (code is immutable, so any block sees the same).
    pub fn code(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        Ok(self.snap.get_cf(self.db.cf(CF_CODE), hash)?.map(Bytes::from))
    }

    /// Hash of canonical block `number`.
    pub fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        Ok(self.snap.get_pinned_cf(self.db.cf(CF_CANONICAL), num_key(number))?.map(|v| B256::from_slice(&v)))
    }

    /// RLP of the account-trie node at a nibble path (head state only).
    pub fn account_trie_node(&self, path: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.snap.get_cf(self.db.cf(CF_ACCOUNT_TRIE), path)?)
    }

    /// Many account-trie nodes in one batched read.
    pub fn account_trie_nodes(&self, paths: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let cf = self.db.cf(CF_ACCOUNT_TRIE);
        self.snap.multi_get_cf(paths.iter().map(|p| (cf, p))).into_iter().map(|r| r.map_err(Into::into)).collect()
    }

    /// Many storage-trie nodes of one account in one batched read.
    pub fn storage_trie_nodes(
        &self,
        hashed_addr: &B256,
        paths: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let cf = self.db.cf(CF_STORAGE_TRIE);
        let keys: Vec<Vec<u8>> = paths.iter().map(|p| storage_trie_key(hashed_addr, p)).collect();
        self.snap.multi_get_cf(keys.iter().map(|k| (cf, k))).into_iter().map(|r| r.map_err(Into::into)).collect()
    }

    /// RLP of a storage-trie node of the account with `hashed_addr` (head state only).
    pub fn storage_trie_node(&self, hashed_addr: &B256, path: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.snap.get_cf(self.db.cf(CF_STORAGE_TRIE), storage_trie_key(hashed_addr, path))?)
    }
}

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
        account_history_key, decode_hash, decode_u64, num_key, storage_history_key, storage_key, storage_trie_key,
        CF_ACCOUNTS, CF_ACCOUNT_HISTORY, CF_ACCOUNT_TRIE, CF_CANONICAL, CF_CODE, CF_META, CF_STORAGE,
        CF_STORAGE_HISTORY, CF_STORAGE_TRIE, META_HEAD, META_PRUNED,
    },
};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Decodable;
use rocksdb::{ReadOptions, Snapshot};
use std::borrow::Cow;

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
        let head = self.snapshot_u64(&snap, META_HEAD, "head")?.unwrap_or(0);
        Ok(StateReader { db: self, snap, block: head, at_head: true })
    }

    /// The state after block `block`, if it is within the kept history.
    pub fn state_at(&self, block: u64) -> Result<StateReader<'_>, StorageError> {
        let snap = self.db.snapshot();
        let head = self.snapshot_u64(&snap, META_HEAD, "head")?.ok_or(StorageError::UnknownBlock(block))?;
        if block > head {
            return Err(StorageError::UnknownBlock(block));
        }
        let oldest = self.snapshot_oldest(&snap, head)?;
        if block < oldest {
            return Err(StorageError::HistoryPruned { requested: block, oldest, head });
        }
        Ok(StateReader { db: self, snap, block, at_head: block == head })
    }

    /// Oldest block whose state can be read now (0 before genesis): the start
    /// of the configured window, but never a block whose history an earlier
    /// run already pruned (a larger window or archive mode cannot bring it back).
    pub fn oldest_state(&self) -> Result<u64, StorageError> {
        let snap = self.db.snapshot();
        let head = self.snapshot_u64(&snap, META_HEAD, "head")?.unwrap_or(0);
        self.snapshot_oldest(&snap, head)
    }

    /// The oldest readable block in `snap`, whose head is `head`; the mark is
    /// read from the same snapshot, so it matches the history the reader sees.
    fn snapshot_oldest(&self, snap: &Snapshot<'_>, head: u64) -> Result<u64, StorageError> {
        let pruned_to = self.snapshot_u64(snap, META_PRUNED, "pruned-to mark")?.unwrap_or(0);
        Ok(self.oldest_readable(head, pruned_to))
    }

    /// A number stored in the meta table under `key`, as of `snap`.
    fn snapshot_u64(&self, snap: &Snapshot<'_>, key: &[u8], what: &'static str) -> Result<Option<u64>, StorageError> {
        snap.get_pinned_cf(self.cf(CF_META), key)?
            .map(|v| decode_u64(&v).ok_or_else(|| StorageError::corrupt(what, "not 8 bytes")))
            .transpose()
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
            out.push((decode_hash("storage slot key", &k[20..])?, decode_word(v)?));
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
        self.snap
            .get_pinned_cf(self.db.cf(CF_CANONICAL), num_key(number))?
            .map(|v| decode_hash("block hash", &v))
            .transpose()
    }

    /// RLP of the trie node at a nibble path (head state only).
    pub fn trie_node(&self, trie: TrieId<'_>, path: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let key = trie.key(path);
        Ok(self.snap.get_cf(self.db.cf(trie.cf()), key.as_ref())?)
    }

    /// Reads many trie nodes of one trie in one batched lookup and hands each
    /// to `visit` (with its index in `paths`) straight from RocksDB's buffers,
    /// so the bytes are never copied. `paths` should be sorted: the lookup
    /// then walks each table block once.
    pub fn visit_trie_nodes<E: From<StorageError>>(
        &self,
        trie: TrieId<'_>,
        paths: &[Vec<u8>],
        mut visit: impl FnMut(usize, Option<&[u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        let keys: Vec<Cow<'_, [u8]>> = paths.iter().map(|p| trie.key(p)).collect();
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snap);
        let sorted = paths.is_sorted();
        let found = self.db.db.batched_multi_get_cf_opt(self.db.cf(trie.cf()), &keys, sorted, &opts);
        for (i, value) in found.into_iter().enumerate() {
            let value = value.map_err(StorageError::from)?;
            visit(i, value.as_deref())?;
        }
        Ok(())
    }
}

/// Which trie a node read addresses.
#[derive(Debug, Clone, Copy)]
pub enum TrieId<'k> {
    /// The account trie of the head state.
    Accounts,
    /// The storage trie of the account whose keccak256 address hash this is.
    Storage(&'k B256),
}

impl TrieId<'_> {
    fn cf(self) -> &'static str {
        match self {
            Self::Accounts => CF_ACCOUNT_TRIE,
            Self::Storage(_) => CF_STORAGE_TRIE,
        }
    }

    fn key<'p>(self, path: &'p [u8]) -> Cow<'p, [u8]> {
        match self {
            Self::Accounts => Cow::Borrowed(path),
            Self::Storage(owner) => Cow::Owned(storage_trie_key(owner, path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        keys::{num_key, CF_CANONICAL},
        test_util::{open, put_raw},
        HistoryMode, StorageError,
    };

    #[test]
    fn a_block_hash_of_the_wrong_length_is_corrupt_in_a_state_reader() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), HistoryMode::Archive);
        put_raw(&db, CF_CANONICAL, &num_key(3), &[0xab; 31]);
        let state = db.latest_state().unwrap();
        let err = state.block_hash(3).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { what: "block hash", .. }), "{err}");
    }
}

//! Committing a block: chain data, state, history and trie nodes in one
//! atomic, optionally fsynced, write batch.

use crate::{
    db::ChainDb,
    error::StorageError,
    keys::*,
    state::{encode_word, StoredAccount},
};
use alloy_consensus::ReceiptEnvelope;
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Encodable;
use metanode_primitives::{CommitCertificate, SealedBlock};
use rocksdb::{WriteBatch, WriteOptions};

/// A trie node to write (`Some(rlp)`) or delete (`None`) at a nibble path.
pub type NodeWrite = (Vec<u8>, Option<Vec<u8>>);

/// One account's value before and after a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    /// The account.
    pub address: Address,
    /// Value before the block (`None`: did not exist).
    pub old: Option<StoredAccount>,
    /// Value after the block (`None`: deleted).
    pub new: Option<StoredAccount>,
}

/// One storage slot's value before and after a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageChange {
    /// The account owning the slot.
    pub address: Address,
    /// The slot key.
    pub slot: B256,
    /// Value before the block.
    pub old: U256,
    /// Value after the block (zero deletes it).
    pub new: U256,
}

/// Everything a block changed in the state, with the old values kept so that
/// history can answer reads at earlier blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDiff {
    /// Changed accounts (storage roots already updated).
    pub accounts: Vec<AccountChange>,
    /// Changed storage slots.
    pub storage: Vec<StorageChange>,
    /// Code deployed in the block, by hash.
    pub codes: Vec<(B256, Bytes)>,
}

/// Trie nodes changed by a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrieWrites {
    /// Account-trie nodes.
    pub account_nodes: Vec<NodeWrite>,
    /// Storage-trie nodes, keyed by the keccak of the owning address.
    pub storage_nodes: Vec<(B256, NodeWrite)>,
}

/// A block ready to be committed, with all it derives.
#[derive(Debug, Clone, Copy)]
pub struct BlockWrite<'a> {
    /// The block.
    pub block: &'a SealedBlock,
    /// Its receipts, in transaction order.
    pub receipts: &'a [ReceiptEnvelope],
    /// Its state changes.
    pub state: &'a StateDiff,
    /// Its trie node changes.
    pub trie: &'a TrieWrites,
    /// The commit certificate that finalized it (none for genesis, or for a
    /// block committed without consensus in tests and benchmarks).
    pub commit: Option<&'a CommitCertificate>,
}

impl ChainDb {
    /// Writes a block and everything it changes atomically. The block must be
    /// the next after the head (or genesis on an empty database).
    pub fn commit_block(&self, w: BlockWrite<'_>) -> Result<(), StorageError> {
        self.write_block(w, None)
    }

    /// Writes the genesis block and records the chain id in the same atomic
    /// batch, so no crash can leave a genesis without its chain id.
    pub fn commit_genesis(&self, w: BlockWrite<'_>, chain_id: u64) -> Result<(), StorageError> {
        if w.block.number() != 0 {
            return Err(StorageError::NotNextBlock { head: 0, got: w.block.number() });
        }
        self.write_block(w, Some(chain_id))
    }

    fn write_block(&self, w: BlockWrite<'_>, chain_id: Option<u64>) -> Result<(), StorageError> {
        let n = w.block.number();
        match self.head_number()? {
            None if n == 0 => {}
            Some(head) if n == head + 1 => {}
            head => return Err(StorageError::NotNextBlock { head: head.unwrap_or(0), got: n }),
        }
        let mut batch = WriteBatch::default();
        self.put_chain(&mut batch, &w);
        self.put_state(&mut batch, n, w.state);
        for (path, node) in &w.trie.account_nodes {
            match node {
                Some(rlp) => batch.put_cf(self.cf(CF_ACCOUNT_TRIE), path, rlp),
                None => batch.delete_cf(self.cf(CF_ACCOUNT_TRIE), path),
            }
        }
        for (owner, (path, node)) in &w.trie.storage_nodes {
            let key = storage_trie_key(owner, path);
            match node {
                Some(rlp) => batch.put_cf(self.cf(CF_STORAGE_TRIE), key, rlp),
                None => batch.delete_cf(self.cf(CF_STORAGE_TRIE), key),
            }
        }
        let pruned_to = self.prune_step(&mut batch, n)?;
        batch.put_cf(self.cf(CF_META), META_PRUNED, num_key(pruned_to));
        batch.put_cf(self.cf(CF_META), META_HEAD, num_key(n));
        if n == 0 {
            batch.put_cf(self.cf(CF_META), META_GENESIS, w.block.hash);
        }
        if let Some(chain_id) = chain_id {
            batch.put_cf(self.cf(CF_META), META_CHAIN_ID, chain_id.to_be_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.opts.sync_writes);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    fn put_chain(&self, batch: &mut WriteBatch, w: &BlockWrite<'_>) {
        let n = w.block.number();
        let key = num_key(n);
        batch.put_cf(self.cf(CF_HEADERS), key, alloy_rlp::encode(&w.block.header));
        batch.put_cf(self.cf(CF_CANONICAL), key, w.block.hash);
        batch.put_cf(self.cf(CF_HASH_TO_NUMBER), w.block.hash, key);
        let mut body = Vec::new();
        w.block.transactions.encode(&mut body);
        batch.put_cf(self.cf(CF_BODIES), key, body);
        let senders: Vec<u8> = w.block.senders.iter().flat_map(|a| a.0 .0).collect();
        batch.put_cf(self.cf(CF_SENDERS), key, senders);
        let mut receipts = Vec::new();
        w.receipts.to_vec().encode(&mut receipts);
        batch.put_cf(self.cf(CF_RECEIPTS), key, receipts);
        for (i, tx) in w.block.transactions.iter().enumerate() {
            let mut loc = [0u8; 12];
            loc[..8].copy_from_slice(&key);
            loc[8..].copy_from_slice(&(i as u32).to_be_bytes());
            batch.put_cf(self.cf(CF_TX_INDEX), tx.tx_hash(), loc);
        }
        if let Some(commit) = w.commit {
            batch.put_cf(self.cf(CF_COMMITS), key, alloy_rlp::encode(commit));
        }
    }

    fn put_state(&self, batch: &mut WriteBatch, n: u64, diff: &StateDiff) {
        // Changeset: the keys this block touched, so pruning can find their history.
        let mut changeset = Vec::with_capacity(4 + diff.accounts.len() * 20 + diff.storage.len() * 52);
        changeset.extend_from_slice(&(diff.accounts.len() as u32).to_be_bytes());
        for c in &diff.accounts {
            match &c.new {
                Some(acc) => batch.put_cf(self.cf(CF_ACCOUNTS), c.address, alloy_rlp::encode(acc)),
                None => batch.delete_cf(self.cf(CF_ACCOUNTS), c.address),
            }
            if n > 0 {
                let old = c.old.as_ref().map(alloy_rlp::encode).unwrap_or_default();
                batch.put_cf(self.cf(CF_ACCOUNT_HISTORY), account_history_key(&c.address, n), old);
                changeset.extend_from_slice(c.address.as_slice());
            }
        }
        for c in &diff.storage {
            let key = storage_key(&c.address, &c.slot);
            if c.new.is_zero() {
                batch.delete_cf(self.cf(CF_STORAGE), key);
            } else {
                batch.put_cf(self.cf(CF_STORAGE), key, encode_word(&c.new));
            }
            if n > 0 {
                let hkey = storage_history_key(&c.address, &c.slot, n);
                batch.put_cf(self.cf(CF_STORAGE_HISTORY), hkey, encode_word(&c.old));
                changeset.extend_from_slice(&key);
            }
        }
        for (hash, code) in &diff.codes {
            batch.put_cf(self.cf(CF_CODE), hash, code);
        }
        if n > 0 {
            batch.put_cf(self.cf(CF_CHANGESETS), num_key(n), changeset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DbOptions, HistoryMode};
    use alloy_consensus::Header;

    fn block(n: u64) -> SealedBlock {
        SealedBlock::new(Header { number: n, ..Default::default() }, vec![], vec![])
    }

    fn account(balance: u64) -> StoredAccount {
        StoredAccount { balance: U256::from(balance), ..Default::default() }
    }

    #[test]
    fn history_window_serves_recent_states_and_prunes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DbOptions { history: HistoryMode::Window(3), sync_writes: false, ..Default::default() };
        let db = ChainDb::open(&dir.path().join("db"), opts).unwrap();
        let addr = Address::repeat_byte(7);
        let slot = B256::repeat_byte(1);
        let trie = TrieWrites::default();
        let mut prev: Option<StoredAccount> = None;
        for n in 0..10u64 {
            let diff = StateDiff {
                accounts: vec![AccountChange { address: addr, old: prev, new: Some(account(n * 10)) }],
                storage: vec![StorageChange {
                    address: addr,
                    slot,
                    old: if n == 0 { U256::ZERO } else { U256::from(n - 1) },
                    new: U256::from(n),
                }],
                codes: vec![],
            };
            let b = block(n);
            db.commit_block(BlockWrite { block: &b, receipts: &[], state: &diff, trie: &trie, commit: None }).unwrap();
            prev = Some(account(n * 10));
        }
        // Head 9, window 3: blocks 6..=9 readable.
        for n in 6..=9u64 {
            let s = db.state_at(n).unwrap();
            assert_eq!(s.account(&addr).unwrap().unwrap().balance, U256::from(n * 10), "block {n}");
            assert_eq!(s.storage(&addr, &slot).unwrap(), U256::from(n), "block {n}");
        }
        assert!(matches!(db.state_at(5), Err(StorageError::HistoryPruned { oldest: 6, .. })));
        assert!(matches!(db.state_at(10), Err(StorageError::UnknownBlock(10))));
        // Blocks that were pruned left no history rows behind.
        let rows = db.db.iterator_cf(db.cf(CF_ACCOUNT_HISTORY), rocksdb::IteratorMode::Start).count();
        assert_eq!(rows, 3);
    }

    /// Hands `commit` a write of `b` that changes no state.
    fn with_empty_write<R>(b: &SealedBlock, commit: impl FnOnce(BlockWrite<'_>) -> R) -> R {
        let (diff, trie) = (StateDiff::default(), TrieWrites::default());
        commit(BlockWrite { block: b, receipts: &[], state: &diff, trie: &trie, commit: None })
    }

    #[test]
    fn a_block_that_does_not_extend_the_head_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = ChainDb::open(&dir.path().join("db"), DbOptions::default()).unwrap();
        let err = with_empty_write(&block(1), |w| db.commit_block(w));
        assert!(matches!(err, Err(StorageError::NotNextBlock { .. })));
        assert_eq!(db.head_number().unwrap(), None);
    }

    #[test]
    fn genesis_and_chain_id_are_written_together() {
        let dir = tempfile::tempdir().unwrap();
        let db = ChainDb::open(&dir.path().join("db"), DbOptions::default()).unwrap();
        let err = with_empty_write(&block(1), |w| db.commit_genesis(w, 7));
        assert!(matches!(err, Err(StorageError::NotNextBlock { .. })));
        assert_eq!(db.chain_id().unwrap(), None);
        let genesis = block(0);
        with_empty_write(&genesis, |w| db.commit_genesis(w, 7)).unwrap();
        assert_eq!(db.chain_id().unwrap(), Some(7));
        assert_eq!(db.genesis_hash().unwrap(), Some(genesis.hash));
    }

    #[test]
    fn foreign_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let err = ChainDb::open(dir.path(), DbOptions::default()).unwrap_err();
        assert!(err.to_string().contains("holds no MetaNode database"), "{err}");
    }
}

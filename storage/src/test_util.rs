//! Helpers shared by the unit tests: temporary databases and raw writes that
//! bypass the typed API, to plant the damage a disk or a bug could leave.

use crate::{
    AccountChange, BlockWrite, ChainDb, DbOptions, HistoryMode, StateDiff, StorageChange, StoredAccount, TrieWrites,
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, U256};
use metanode_primitives::SealedBlock;
use std::path::Path;

/// Opens the database under `dir` with the given history and no fsync.
pub(crate) fn open(dir: &Path, history: HistoryMode) -> ChainDb {
    let opts = DbOptions { history, sync_writes: false, ..Default::default() };
    ChainDb::open(&dir.join("db"), opts).unwrap()
}

/// Writes `value` under `key` in column family `cf`, as a damaged disk might.
pub(crate) fn put_raw(db: &ChainDb, cf: &str, key: &[u8], value: &[u8]) {
    db.db.put_cf(db.cf(cf), key, value).unwrap();
}

/// The account every numbered block changes.
pub(crate) const ADDR: Address = Address::repeat_byte(7);
/// The slot every numbered block changes.
pub(crate) const SLOT: B256 = B256::repeat_byte(1);

fn account(balance: u64) -> StoredAccount {
    StoredAccount { balance: U256::from(balance), ..Default::default() }
}

/// Commits block `n`, which sets [`ADDR`]'s balance to `10 * n` and [`SLOT`]
/// to `n` (so the state at any block says which block it is), with the old
/// values that block `n - 1` left.
pub(crate) fn commit_numbered(db: &ChainDb, n: u64) {
    let old_balance = n.checked_sub(1).map(|p| account(p * 10));
    let diff = StateDiff {
        accounts: vec![AccountChange { address: ADDR, old: old_balance, new: Some(account(n * 10)) }],
        storage: vec![StorageChange {
            address: ADDR,
            slot: SLOT,
            old: U256::from(n.saturating_sub(1)),
            new: U256::from(n),
        }],
        codes: vec![],
    };
    let block = SealedBlock::new(Header { number: n, ..Default::default() }, vec![], vec![]);
    let trie = TrieWrites::default();
    db.commit_block(BlockWrite { block: &block, receipts: &[], state: &diff, trie: &trie, commit: None }).unwrap();
}

/// How many rows column family `cf` holds.
pub(crate) fn count_rows(db: &ChainDb, cf: &str) -> usize {
    db.db.iterator_cf(db.cf(cf), rocksdb::IteratorMode::Start).count()
}

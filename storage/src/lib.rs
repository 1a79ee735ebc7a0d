//! RocksDB persistence for MetaNode: the chain (headers, bodies, receipts,
//! transaction index), the plain state with a bounded window of history,
//! Merkle-Patricia trie nodes addressed by path, and contract code.
//!
//! A block and everything it changes are written in one atomic write batch,
//! so a crash at any point leaves either the whole block or none of it.

mod chain;
mod db;
mod error;
mod keys;
mod prune;
mod state;
#[cfg(test)]
mod test_util;
mod write;

pub use db::{ChainDb, DbOptions, HistoryMode};
pub use error::StorageError;
pub use state::{StateReader, StoredAccount, TrieId};
pub use write::{AccountChange, BlockWrite, NodeWrite, StateDiff, StorageChange, TrieWrites};

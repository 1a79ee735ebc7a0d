//! Execution errors.

use crate::trie::TrieError;
use metanode_storage::StorageError;

/// Why a block could not be built, executed or committed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A trie node was missing or corrupt.
    #[error(transparent)]
    Trie(#[from] TrieError),
    /// The EVM failed for a reason other than an invalid transaction.
    #[error("evm error: {0}")]
    Evm(String),
    /// A block is invalid; the reason says which rule it broke.
    #[error("invalid block {number}: {reason}")]
    InvalidBlock {
        /// Its number.
        number: u64,
        /// The rule it broke.
        reason: String,
    },
    /// The parent given is not the current head.
    #[error("cannot build on block {parent}: head is {head}")]
    NotOnHead {
        /// Parent asked for.
        parent: u64,
        /// Actual head.
        head: u64,
    },
    /// The data directory was initialised for another chain id.
    #[error("data directory holds chain id {stored}, but the genesis says {configured}; use another --datadir or the matching genesis.json")]
    ChainIdMismatch {
        /// Recorded chain id.
        stored: u64,
        /// Chain id of the configured genesis.
        configured: u64,
    },
    /// The genesis in the data directory differs from the configured one.
    #[error("data directory holds a chain with genesis {stored}, but the configured genesis hashes to {configured}; use another --datadir or the matching genesis.json")]
    GenesisMismatch {
        /// Stored genesis hash.
        stored: alloy_primitives::B256,
        /// Configured genesis hash.
        configured: alloy_primitives::B256,
    },
}

impl From<crate::state::StateError> for ExecError {
    fn from(e: crate::state::StateError) -> Self {
        Self::Storage(e.0)
    }
}

//! Storage errors. Every variant names what is wrong in words an operator can act on.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB itself reported an error.
    #[error("database error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The directory holds a database written by something else.
    #[error("{0}")]
    Foreign(String),
    /// A stored value could not be decoded.
    #[error("corrupt database: {what} ({detail})")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder's complaint.
        detail: String,
    },
    /// The requested historical state is outside the kept history window.
    #[error("historical state for block {requested} is not available (kept: blocks {oldest}..={head}); run with --archive or a larger --state.history")]
    HistoryPruned {
        /// Block asked for.
        requested: u64,
        /// Oldest block whose state can be read.
        oldest: u64,
        /// Current head.
        head: u64,
    },
    /// A block number beyond the head.
    #[error("block {0} not found")]
    UnknownBlock(u64),
    /// Writing a block that does not extend the head.
    #[error("block {got} does not extend head {head}")]
    NotNextBlock {
        /// Current head.
        head: u64,
        /// Number of the block being written.
        got: u64,
    },
}

impl StorageError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        Self::Corrupt { what, detail: detail.to_string() }
    }
}

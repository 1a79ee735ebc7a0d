//! Opening the database: column families, tuning, and refusing directories
//! that hold something other than a MetaNode chain.

use crate::{
    error::StorageError,
    keys::{
        decode_hash, decode_u64, ALL_CFS, CF_ACCOUNT_TRIE, CF_META, CF_STORAGE_TRIE, META_CHAIN_ID, META_GENESIS,
        META_HEAD, META_SCHEMA, SCHEMA,
    },
};
use alloy_primitives::B256;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DataBlockIndexType, Options, DB};
use std::path::{Path, PathBuf};

/// How much state history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryMode {
    /// State can be read at the last `n` blocks (and the head).
    Window(u64),
    /// Every block's state is kept.
    Archive,
}

/// Database tuning.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// State history kept for historical reads.
    pub history: HistoryMode,
    /// fsync every block commit (survives power loss, not just process death).
    pub sync_writes: bool,
    /// Size of the shared block cache.
    pub cache_bytes: usize,
    /// Budget for all memtables together; writes stall rather than exceed it,
    /// which is what keeps the node's memory bounded under sustained load.
    pub memtable_bytes: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            history: HistoryMode::Window(1024),
            sync_writes: true,
            cache_bytes: 256 << 20,
            memtable_bytes: 128 << 20,
        }
    }
}

/// Block-based tables sharing one block cache, with bloom filters.
fn table_options(cache: &Cache) -> BlockBasedOptions {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    table
}

/// The chain database: one RocksDB instance with a column family per table.
pub struct ChainDb {
    pub(crate) db: DB,
    pub(crate) opts: DbOptions,
    path: PathBuf,
}

impl std::fmt::Debug for ChainDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainDb").field("path", &self.path).finish()
    }
}

impl ChainDb {
    /// Opens (or creates) the database at `path`.
    ///
    /// A directory that exists and is not empty but holds no MetaNode database,
    /// or one written with another layout, is refused rather than reused.
    pub fn open(path: &Path, opts: DbOptions) -> Result<Self, StorageError> {
        let exists = path.join("CURRENT").exists();
        if !exists && path.exists() && path.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false) {
            return Err(StorageError::Foreign(format!(
                "{} is not empty and holds no MetaNode database; refusing to overwrite it",
                path.display()
            )));
        }
        let cache = Cache::new_lru_cache(opts.cache_bytes);
        let table = table_options(&cache);
        // Trie nodes are read by exact path on every state root: a hash index
        // inside each data block replaces the binary search over restart points.
        let mut trie_table = table_options(&cache);
        trie_table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
        trie_table.set_data_block_hash_ratio(0.75);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        cf_opts.set_write_buffer_size((opts.memtable_bytes / 4).max(4 << 20));
        let mut db_opts = cf_opts.clone();
        db_opts.set_db_write_buffer_size(opts.memtable_bytes);
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(512);
        db_opts.increase_parallelism(2);
        if exists {
            let found = DB::list_cf(&db_opts, path).map_err(|e| {
                StorageError::Foreign(format!("{} is not a readable RocksDB database: {e}", path.display()))
            })?;
            if !found.iter().any(|cf| cf == CF_META) {
                return Err(StorageError::Foreign(format!(
                    "{} holds a RocksDB database that is not a MetaNode chain (no '{CF_META}' table)",
                    path.display()
                )));
            }
        }
        let cfs = ALL_CFS.iter().map(|name| {
            let mut opts = cf_opts.clone();
            // Trie nodes are mostly hashes, which do not compress: skip the CPU.
            if *name == CF_ACCOUNT_TRIE || *name == CF_STORAGE_TRIE {
                opts.set_compression_type(rocksdb::DBCompressionType::None);
                opts.set_block_based_table_factory(&trie_table);
            }
            ColumnFamilyDescriptor::new(*name, opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("lock") || msg.contains("Resource temporarily unavailable") {
                StorageError::Foreign(format!("database {} is in use by another process: {msg}", path.display()))
            } else {
                StorageError::Rocks(e)
            }
        })?;
        let this = Self { db, opts, path: path.to_path_buf() };
        match this.db.get_cf(this.cf(CF_META), META_SCHEMA)? {
            Some(s) if s == SCHEMA => {}
            Some(s) => {
                return Err(StorageError::Foreign(format!(
                    "{} holds schema '{}', this build reads '{}'",
                    path.display(),
                    String::from_utf8_lossy(&s),
                    String::from_utf8_lossy(SCHEMA)
                )))
            }
            None if exists && this.db.get_cf(this.cf(CF_META), META_HEAD)?.is_some() => {
                return Err(StorageError::Foreign(format!("{} has no schema marker", path.display())))
            }
            None => this.db.put_cf(this.cf(CF_META), META_SCHEMA, SCHEMA)?,
        }
        this.check_prune_mark()?;
        Ok(this)
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every name in ALL_CFS is opened by `open`, so this cannot miss.
        self.db.cf_handle(name).expect("column family opened at start-up")
    }

    /// A number stored in the meta table under `key`; `what` names it if corrupt.
    pub(crate) fn meta_u64(&self, key: &[u8], what: &'static str) -> Result<Option<u64>, StorageError> {
        self.db
            .get_pinned_cf(self.cf(CF_META), key)?
            .map(|v| decode_u64(&v).ok_or_else(|| StorageError::corrupt(what, "not 8 bytes")))
            .transpose()
    }

    /// The number of the last committed block, or `None` before genesis.
    pub fn head_number(&self) -> Result<Option<u64>, StorageError> {
        self.meta_u64(META_HEAD, "head")
    }

    /// The genesis hash this database was initialised with.
    pub fn genesis_hash(&self) -> Result<Option<B256>, StorageError> {
        self.db.get_pinned_cf(self.cf(CF_META), META_GENESIS)?.map(|v| decode_hash("genesis hash", &v)).transpose()
    }

    /// The chain id recorded when the database was initialised (the genesis
    /// hash does not commit to it, so it is checked separately).
    pub fn chain_id(&self) -> Result<Option<u64>, StorageError> {
        self.meta_u64(META_CHAIN_ID, "chain id")
    }

    /// History kept for state reads.
    pub fn history(&self) -> HistoryMode {
        self.opts.history
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        keys::{CF_META, META_GENESIS},
        test_util::{open, put_raw},
        HistoryMode, StorageError,
    };

    #[test]
    fn a_genesis_hash_of_the_wrong_length_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), HistoryMode::Archive);
        put_raw(&db, CF_META, META_GENESIS, &[1, 2, 3]);
        let err = db.genesis_hash().unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { what: "genesis hash", .. }), "{err}");
    }
}

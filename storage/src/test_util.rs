//! Helpers shared by the unit tests: temporary databases and raw writes that
//! bypass the typed API, to plant the damage a disk or a bug could leave.

use crate::{ChainDb, DbOptions, HistoryMode};
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

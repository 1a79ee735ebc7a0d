//! Dropping state history that fell out of the kept window.
//!
//! Block `n` writes, for each account and slot it changed, the value before
//! `n` (see `state`), and a changeset listing those keys. Pruning block `p`
//! deletes both, so states before `p` can no longer be read.
//!
//! The meta key `pruned_to` is the low-water mark: every block up to it has
//! been pruned. It is written in the same batch as the deletions, so it
//! survives restarts and never runs ahead of them. Each commit prunes the
//! oldest unpruned blocks that fell out of the window, at most [`PRUNE_STEP`]
//! of them: a backlog (a window shrunk between runs, a node leaving archive
//! mode) drains over the following commits while every commit's write batch
//! stays small. Reads below the mark answer `HistoryPruned` whatever the
//! window now says, archive mode included, because that history is gone.

use crate::{
    db::{ChainDb, HistoryMode},
    error::StorageError,
    keys::{
        account_history_key, decode_hash, decode_u64, num_key, storage_history_key, CF_ACCOUNT_HISTORY, CF_CHANGESETS,
        CF_META, CF_STORAGE_HISTORY, META_PRUNED,
    },
};
use alloy_primitives::Address;
use rocksdb::WriteBatch;

/// Most blocks one commit prunes. In steady state a commit prunes one block
/// (the window moves by one); a backlog shrinks by `PRUNE_STEP - 1` blocks a
/// commit, and no commit's batch grows by more than this many blocks' history.
pub(crate) const PRUNE_STEP: u64 = 64;

impl ChainDb {
    /// The low-water mark: every block up to it has had its history dropped
    /// (0 when nothing has been: genesis writes no history).
    pub(crate) fn pruned_to(&self) -> Result<u64, StorageError> {
        Ok(self.meta_u64(META_PRUNED, "pruned-to mark")?.unwrap_or(0))
    }

    /// Oldest block whose state can be read at `head` when history up to
    /// `pruned_to` is gone: the window's start, but never below the mark.
    pub(crate) fn oldest_readable(&self, head: u64, pruned_to: u64) -> u64 {
        self.window_start(head).max(pruned_to)
    }

    /// Oldest block the configured history promises at `head` (0 in archive mode).
    fn window_start(&self, head: u64) -> u64 {
        match self.opts.history {
            HistoryMode::Archive => 0,
            HistoryMode::Window(n) => head.saturating_sub(n),
        }
    }

    /// The newest block whose history may be dropped once block `n` is the
    /// head; `None` in archive mode. Never `n` itself: its changeset is only in
    /// the batch being built, so a window of 0 drops it one commit later.
    fn prune_target(&self, n: u64) -> Option<u64> {
        match self.opts.history {
            HistoryMode::Archive => None,
            HistoryMode::Window(keep) => Some(n.saturating_sub(keep.max(1))),
        }
    }

    /// Adds to `batch` the pruning that committing block `n` does (the oldest
    /// unpruned blocks up to the window, at most [`PRUNE_STEP`]) and returns
    /// the mark to record with it.
    pub(crate) fn prune_step(&self, batch: &mut WriteBatch, n: u64) -> Result<u64, StorageError> {
        let mark = self.pruned_to()?;
        let Some(target) = self.prune_target(n) else { return Ok(mark) };
        let to = target.min(mark.saturating_add(PRUNE_STEP));
        if to <= mark {
            return Ok(mark);
        }
        self.prune_blocks(batch, mark + 1, to)?;
        Ok(to)
    }

    /// Drops the history of blocks `from..=to`; blocks whose changeset is
    /// already gone are skipped.
    fn prune_blocks(&self, batch: &mut WriteBatch, from: u64, to: u64) -> Result<(), StorageError> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_CHANGESETS));
        it.seek(num_key(from));
        while let (Some(key), Some(changeset)) = (it.key(), it.value()) {
            let p = decode_u64(key).ok_or_else(|| StorageError::corrupt("changeset key", "not 8 bytes"))?;
            if p > to {
                break;
            }
            self.prune_changeset(batch, p, changeset)?;
            batch.delete_cf(self.cf(CF_CHANGESETS), key);
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// Deletes the history entries block `p` wrote, as its changeset lists them.
    fn prune_changeset(&self, batch: &mut WriteBatch, p: u64, changeset: &[u8]) -> Result<(), StorageError> {
        let (accounts, slots) =
            split_changeset(changeset).ok_or_else(|| StorageError::corrupt("changeset", format!("block {p}")))?;
        for addr in accounts.chunks_exact(20) {
            batch.delete_cf(self.cf(CF_ACCOUNT_HISTORY), account_history_key(&Address::from_slice(addr), p));
        }
        for entry in slots.chunks_exact(52) {
            let (addr, slot) = entry.split_at(20);
            let slot = decode_hash("changeset slot", slot)?;
            batch.delete_cf(self.cf(CF_STORAGE_HISTORY), storage_history_key(&Address::from_slice(addr), &slot, p));
        }
        Ok(())
    }

    /// Run by `open`: records the mark if this database predates it, and says
    /// what the configured history means for a database pruned to it.
    pub(crate) fn check_prune_mark(&self) -> Result<(), StorageError> {
        let Some(head) = self.head_number()? else { return Ok(()) };
        let mark = match self.meta_u64(META_PRUNED, "pruned-to mark")? {
            Some(mark) => mark,
            None => {
                let mark = self.infer_pruned_to(head)?;
                self.db.put_cf(self.cf(CF_META), META_PRUNED, num_key(mark))?;
                mark
            }
        };
        self.log_history(head, mark);
        Ok(())
    }

    /// The mark of a database written before it was recorded. Every block
    /// after genesis writes a changeset and pruning went oldest first, so all
    /// blocks below the oldest changeset left were pruned; with none left,
    /// everything up to the head was. (Old code that ran with a shrunk window
    /// may also have left pruned blocks above it, all behind that window; the
    /// catch-up walks through them, skipping what is already gone.)
    fn infer_pruned_to(&self, head: u64) -> Result<u64, StorageError> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_CHANGESETS));
        it.seek_to_first();
        match it.key() {
            Some(key) => {
                let oldest = decode_u64(key).ok_or_else(|| StorageError::corrupt("changeset key", "not 8 bytes"))?;
                Ok(oldest.saturating_sub(1))
            }
            None => {
                it.status()?;
                Ok(head)
            }
        }
    }

    /// Tells the operator about a backlog to prune or history that is gone.
    fn log_history(&self, head: u64, mark: u64) {
        let backlog = self.prune_target(head).map_or(0, |target| target.saturating_sub(mark));
        if backlog > PRUNE_STEP {
            tracing::info!(
                backlog,
                pruned_to = mark,
                "state history is older than the configured window: pruning it {PRUNE_STEP} blocks per commit"
            );
        }
        if self.window_start(head) < mark {
            tracing::warn!(
                pruned_to = mark,
                "state history up to block {mark} was pruned by an earlier run: states before it cannot be read"
            );
        }
    }
}

/// Splits a changeset (a 4-byte big-endian account count, that many 20-byte
/// addresses, then 52-byte address-and-slot keys) into its two lists; `None`
/// when the lengths do not add up.
fn split_changeset(changeset: &[u8]) -> Option<(&[u8], &[u8])> {
    let (count, rest) = changeset.split_first_chunk::<4>()?;
    let accounts_len = usize::try_from(u32::from_be_bytes(*count)).ok()?.checked_mul(20)?;
    let (accounts, slots) = rest.split_at_checked(accounts_len)?;
    (slots.len() % 52 == 0).then_some((accounts, slots))
}

#[cfg(test)]
mod tests {
    use super::PRUNE_STEP;
    use crate::{
        keys::{CF_ACCOUNT_HISTORY, CF_CHANGESETS, CF_META, CF_STORAGE_HISTORY, META_PRUNED},
        test_util::{commit_numbered, count_rows, open, ADDR, SLOT},
        ChainDb, HistoryMode, StorageError,
    };
    use alloy_primitives::U256;
    use std::path::Path;

    /// Head of the archive database the backlog tests start from.
    const ARCHIVE_HEAD: u64 = 299;
    /// The window those tests shrink to.
    const WINDOW: u64 = 10;

    /// Blocks 0..=ARCHIVE_HEAD committed in archive mode: history for every block.
    fn archive_db(dir: &Path) {
        let db = open(dir, HistoryMode::Archive);
        for n in 0..=ARCHIVE_HEAD {
            commit_numbered(&db, n);
        }
        assert_eq!(count_rows(&db, CF_CHANGESETS), ARCHIVE_HEAD as usize);
    }

    /// Commits the next block and returns how many blocks' history is left.
    fn commit_next(db: &ChainDb) -> usize {
        commit_numbered(db, db.head_number().unwrap().unwrap() + 1);
        let rows = count_rows(db, CF_CHANGESETS);
        assert_eq!(count_rows(db, CF_ACCOUNT_HISTORY), rows);
        assert_eq!(count_rows(db, CF_STORAGE_HISTORY), rows);
        rows
    }

    /// Commits after the switch to WINDOW until only the window's history is
    /// left: the backlog shrinks by PRUNE_STEP - 1 a commit, as the window
    /// itself moves by one.
    fn commits_to_converge() -> u64 {
        (ARCHIVE_HEAD - WINDOW).div_ceil(PRUNE_STEP - 1)
    }

    /// The state at `block` reads as block `block` wrote it.
    fn assert_state_is(db: &ChainDb, block: u64) {
        let state = db.state_at(block).unwrap();
        assert_eq!(state.account(&ADDR).unwrap().unwrap().balance, U256::from(block * 10), "block {block}");
        assert_eq!(state.storage(&ADDR, &SLOT).unwrap(), U256::from(block), "block {block}");
    }

    #[test]
    fn leaving_archive_mode_prunes_the_backlog_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        archive_db(dir.path());
        let db = open(dir.path(), HistoryMode::Window(WINDOW));
        let converge = commits_to_converge();
        assert_eq!(converge, 5);
        for k in 1..converge {
            let rows = commit_next(&db);
            // Exactly PRUNE_STEP blocks pruned per commit: more history than the window is still there.
            assert_eq!(db.pruned_to().unwrap(), PRUNE_STEP * k, "commit {k}");
            assert_eq!(rows as u64, ARCHIVE_HEAD + k - PRUNE_STEP * k, "commit {k}");
            assert!(rows as u64 > WINDOW, "commit {k}: converged early");
        }
        assert_eq!(commit_next(&db) as u64, WINDOW, "not converged after {converge} commits");
        let head = ARCHIVE_HEAD + converge;
        assert_eq!(db.pruned_to().unwrap(), head - WINDOW);
        // From here on one block a commit, and the window reads as it should.
        assert_eq!(commit_next(&db) as u64, WINDOW);
        let head = head + 1;
        assert_state_is(&db, head - WINDOW);
        let err = db.state_at(head - WINDOW - 1).unwrap_err();
        assert!(matches!(err, StorageError::HistoryPruned { oldest, .. } if oldest == head - WINDOW), "{err}");
    }

    #[test]
    fn a_restart_in_the_middle_of_the_backlog_keeps_its_progress() {
        let dir = tempfile::tempdir().unwrap();
        archive_db(dir.path());
        let before_restart = 2;
        {
            let db = open(dir.path(), HistoryMode::Window(WINDOW));
            for _ in 0..before_restart {
                commit_next(&db);
            }
        }
        let db = open(dir.path(), HistoryMode::Window(WINDOW));
        assert_eq!(db.pruned_to().unwrap(), PRUNE_STEP * before_restart);
        let rest = commits_to_converge() - before_restart;
        for k in 1..rest {
            assert!(commit_next(&db) as u64 > WINDOW, "commit {k} after restart: converged early");
            assert_eq!(db.pruned_to().unwrap(), PRUNE_STEP * (before_restart + k));
        }
        assert_eq!(commit_next(&db) as u64, WINDOW, "restart lost pruning progress");
    }

    /// Blocks 0..=50 committed with a window of 10: history up to block 40 is gone.
    fn pruned_db(dir: &Path) {
        let db = open(dir, HistoryMode::Window(WINDOW));
        for n in 0..=50 {
            commit_numbered(&db, n);
        }
        assert_eq!(db.pruned_to().unwrap(), 40);
    }

    #[test]
    fn states_below_the_mark_are_pruned_in_archive_mode_and_with_a_larger_window() {
        let dir = tempfile::tempdir().unwrap();
        pruned_db(dir.path());
        for history in [HistoryMode::Archive, HistoryMode::Window(100)] {
            let db = open(dir.path(), history);
            assert_eq!(db.oldest_state().unwrap(), 40, "{history:?}");
            let err = db.state_at(39).unwrap_err();
            assert!(matches!(err, StorageError::HistoryPruned { oldest: 40, .. }), "{history:?}: {err}");
            assert_state_is(&db, 40);
            // Archive and the larger window keep everything from here on.
            commit_numbered(&db, db.head_number().unwrap().unwrap() + 1);
            assert_eq!(db.pruned_to().unwrap(), 40, "{history:?}");
        }
    }

    #[test]
    fn a_database_from_before_the_mark_gets_it_from_its_oldest_changeset() {
        let dir = tempfile::tempdir().unwrap();
        pruned_db(dir.path());
        {
            // What a database written before the mark existed looks like.
            let db = open(dir.path(), HistoryMode::Window(WINDOW));
            db.db.delete_cf(db.cf(CF_META), META_PRUNED).unwrap();
        }
        let db = open(dir.path(), HistoryMode::Archive);
        let recorded = db.db.get_cf(db.cf(CF_META), META_PRUNED).unwrap();
        assert_eq!(recorded.as_deref(), Some(&40u64.to_be_bytes()[..]));
        assert!(matches!(db.state_at(39), Err(StorageError::HistoryPruned { oldest: 40, .. })));
        assert_state_is(&db, 40);
    }

    #[test]
    fn a_window_of_zero_keeps_no_history_behind_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), HistoryMode::Window(0));
        for n in 0..=5 {
            commit_numbered(&db, n);
        }
        // Only the head's own changes, dropped by the next commit.
        assert_eq!(count_rows(&db, CF_CHANGESETS), 1);
        assert!(matches!(db.state_at(4), Err(StorageError::HistoryPruned { oldest: 5, .. })));
        assert!(db.state_at(5).is_ok());
    }
}

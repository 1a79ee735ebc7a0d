//! Poll-based filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`). Filters idle
//! for five minutes are dropped, as in geth.

use alloy_primitives::{B128, B256};
use alloy_rpc_types_eth::Filter;
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_PENDING_BUFFER: usize = 20_000;

/// What a filter watches and how far it has been polled.
#[derive(Debug, Clone)]
pub enum FilterKind {
    /// Logs matching a filter; `next_block` is the first block not yet returned.
    Logs {
        /// The filter.
        filter: Box<Filter>,
        /// First block not yet polled.
        next_block: u64,
    },
    /// New block hashes from `next_block` on.
    Blocks {
        /// First block not yet polled.
        next_block: u64,
    },
    /// Hashes of transactions that entered the pool since the last poll.
    PendingTransactions {
        /// Not yet returned.
        hashes: Vec<B256>,
    },
}

#[derive(Debug)]
struct Installed {
    kind: FilterKind,
    last_poll: Instant,
}

/// Installed filters by id.
#[derive(Debug, Default)]
pub struct FilterManager {
    filters: Mutex<HashMap<String, Installed>>,
}

impl FilterManager {
    /// Installs a filter and returns its id (`0x` + 32 hex digits).
    pub fn install(&self, kind: FilterKind) -> String {
        let id = format!("{:#x}", B128::random());
        let mut filters = self.filters.lock();
        filters.retain(|_, f| f.last_poll.elapsed() < IDLE_TIMEOUT);
        filters.insert(id.clone(), Installed { kind, last_poll: Instant::now() });
        id
    }

    /// Removes a filter; `false` if there was none.
    pub fn uninstall(&self, id: &str) -> bool {
        self.filters.lock().remove(&id.to_ascii_lowercase()).is_some()
    }

    /// Runs `f` on a filter's state (updating its poll time); `None` if unknown.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut FilterKind) -> R) -> Option<R> {
        let mut filters = self.filters.lock();
        let installed = filters.get_mut(&id.to_ascii_lowercase())?;
        installed.last_poll = Instant::now();
        Some(f(&mut installed.kind))
    }

    /// A copy of a filter's state.
    pub fn get(&self, id: &str) -> Option<FilterKind> {
        self.filters.lock().get(&id.to_ascii_lowercase()).map(|f| f.kind.clone())
    }

    /// Records a new pool transaction for pending-transaction filters.
    pub fn push_pending(&self, hash: B256) {
        for f in self.filters.lock().values_mut() {
            if let FilterKind::PendingTransactions { hashes } = &mut f.kind {
                if hashes.len() < MAX_PENDING_BUFFER {
                    hashes.push(hash);
                }
            }
        }
    }
}

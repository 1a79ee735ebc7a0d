//! Poll-based filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`). Filters idle
//! for five minutes are dropped, as in geth, by a sweep on a timer (so
//! abandoned filters do not wait for the next install), and the number
//! installed at once is capped so clients cannot grow the table without end.

use alloy_primitives::B256;
use alloy_rpc_types_eth::Filter;
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// geth's idle expiry.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default cap on filters installed at once.
pub const DEFAULT_MAX_FILTERS: usize = 10_000;
const MAX_PENDING_BUFFER: usize = 20_000;

/// Why a filter could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The table is full; idle filters are swept after [`IDLE_TIMEOUT`].
    #[error("too many filters installed (limit {0}); uninstall unused filters with eth_uninstallFilter")]
    TooMany(usize),
}

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
#[derive(Debug)]
pub struct FilterManager {
    filters: Mutex<HashMap<u128, Installed>>,
    max: usize,
    idle: Duration,
}

impl Default for FilterManager {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FILTERS, IDLE_TIMEOUT)
    }
}

/// A random id as geth writes them: `0x` and hex without leading zeros, so
/// clients that treat ids as quantities (alloy parses them into a U256 and
/// sends them back that way) send back exactly the same text.
pub fn random_id() -> (u128, String) {
    let id = u128::from_be_bytes(alloy_primitives::B128::random().0).max(1);
    (id, format!("{id:#x}"))
}

/// Reads an id back, with or without leading zeros; `None` if it is not one.
fn parse_id(id: &str) -> Option<u128> {
    let hex = id.strip_prefix("0x").or_else(|| id.strip_prefix("0X"))?;
    u128::from_str_radix(hex, 16).ok()
}

impl FilterManager {
    /// At most `max` filters at once, each dropped after `idle` without a poll.
    pub fn new(max: usize, idle: Duration) -> Self {
        Self { filters: Mutex::new(HashMap::new()), max, idle }
    }

    /// How long a filter may go unpolled.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Installs a filter and returns its id (`0x` + up to 32 hex digits).
    pub fn install(&self, kind: FilterKind) -> Result<String, FilterError> {
        let (key, id) = random_id();
        let mut filters = self.filters.lock();
        if filters.len() >= self.max {
            Self::drop_idle(&mut filters, self.idle);
            if filters.len() >= self.max {
                return Err(FilterError::TooMany(self.max));
            }
        }
        filters.insert(key, Installed { kind, last_poll: Instant::now() });
        Ok(id)
    }

    /// Drops filters idle for longer than the timeout; returns how many.
    /// Called on a timer by the server.
    pub fn sweep(&self) -> usize {
        let mut filters = self.filters.lock();
        let before = filters.len();
        Self::drop_idle(&mut filters, self.idle);
        before - filters.len()
    }

    fn drop_idle(filters: &mut HashMap<u128, Installed>, idle: Duration) {
        filters.retain(|_, f| f.last_poll.elapsed() < idle);
    }

    /// Removes a filter; `false` if there was none.
    pub fn uninstall(&self, id: &str) -> bool {
        parse_id(id).is_some_and(|key| self.filters.lock().remove(&key).is_some())
    }

    /// Runs `f` on a filter's state (updating its poll time); `None` if unknown.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut FilterKind) -> R) -> Option<R> {
        let mut filters = self.filters.lock();
        let installed = filters.get_mut(&parse_id(id)?)?;
        installed.last_poll = Instant::now();
        Some(f(&mut installed.kind))
    }

    /// A copy of a filter's state.
    pub fn get(&self, id: &str) -> Option<FilterKind> {
        self.filters.lock().get(&parse_id(id)?).map(|f| f.kind.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table_refuses_until_a_filter_goes() {
        let manager = FilterManager::new(2, IDLE_TIMEOUT);
        let a = manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
        manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
        let err = manager.install(FilterKind::Blocks { next_block: 1 }).unwrap_err();
        assert_eq!(err, FilterError::TooMany(2));
        assert!(err.to_string().contains("too many filters"), "{err}");
        assert!(manager.uninstall(&a));
        manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
    }

    #[test]
    fn sweep_drops_idle_filters_without_an_install() {
        let manager = FilterManager::new(10, Duration::from_millis(50));
        let idle = manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
        let polled = manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(manager.with(&polled, |_| ()).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(manager.sweep(), 1);
        assert!(manager.get(&idle).is_none());
        assert!(manager.get(&polled).is_some());
        assert_eq!(manager.sweep(), 0);
    }

    #[test]
    fn ids_are_found_with_or_without_leading_zeros() {
        let manager = FilterManager::default();
        let id = manager.install(FilterKind::Blocks { next_block: 1 }).unwrap();
        assert!(!id.starts_with("0x0"), "{id}");
        let padded = format!("0x{:0>32}", &id[2..]);
        assert!(manager.get(&padded).is_some());
        assert!(manager.get(&id.to_uppercase().replace("0X", "0x")).is_some());
        assert!(manager.get("not-an-id").is_none());
        assert!(manager.uninstall(&padded));
        assert!(manager.get(&id).is_none());
    }
}

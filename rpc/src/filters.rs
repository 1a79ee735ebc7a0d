//! Poll-based filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`). Filters idle
//! for five minutes are dropped, as in geth.

use alloy_primitives::B256;
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
    filters: Mutex<HashMap<u128, Installed>>,
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
    /// Installs a filter and returns its id (`0x` + up to 32 hex digits).
    pub fn install(&self, kind: FilterKind) -> String {
        let (key, id) = random_id();
        let mut filters = self.filters.lock();
        filters.retain(|_, f| f.last_poll.elapsed() < IDLE_TIMEOUT);
        filters.insert(key, Installed { kind, last_poll: Instant::now() });
        id
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
    fn ids_are_found_with_or_without_leading_zeros() {
        let manager = FilterManager::default();
        let id = manager.install(FilterKind::Blocks { next_block: 1 });
        assert!(!id.starts_with("0x0"), "{id}");
        let padded = format!("0x{:0>32}", &id[2..]);
        assert!(manager.get(&padded).is_some());
        assert!(manager.get(&id.to_uppercase().replace("0X", "0x")).is_some());
        assert!(manager.get("not-an-id").is_none());
        assert!(manager.uninstall(&padded));
        assert!(manager.get(&id).is_none());
    }
}

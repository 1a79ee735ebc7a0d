//! The state root step: update each changed account's storage trie (in
//! parallel), then the account trie, reading only the nodes on changed paths.

use crate::{
    state::PendingChanges,
    trie::{key_nibbles, NodeSource, TrieError, TrieUpdate},
};
use alloy_primitives::{keccak256, map::HashMap, Address, B256};
use metanode_storage::{NodeWrite, StateDiff, StateReader, StoredAccount, TrieWrites};
use rayon::prelude::*;

struct AccountTrie<'r, 'a>(&'r StateReader<'a>);

fn source_error(e: metanode_storage::StorageError) -> TrieError {
    TrieError::Source(e.to_string())
}

impl NodeSource for AccountTrie<'_, '_> {
    fn node(&self, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        self.0.account_trie_node(path).map_err(source_error)
    }

    fn nodes(&self, paths: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, TrieError> {
        self.0.account_trie_nodes(paths).map_err(source_error)
    }
}

struct StorageTrie<'r, 'a> {
    reader: &'r StateReader<'a>,
    owner: B256,
}

impl NodeSource for StorageTrie<'_, '_> {
    fn node(&self, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        self.reader.storage_trie_node(&self.owner, path).map_err(source_error)
    }

    fn nodes(&self, paths: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, TrieError> {
        self.reader.storage_trie_nodes(&self.owner, paths).map_err(source_error)
    }
}

/// Computes the post-block state root over `reader` (which must be the head
/// state the block executed on) and returns it with the diff and node writes.
pub(crate) fn state_root(
    reader: &StateReader<'_>,
    changes: PendingChanges,
) -> Result<(B256, StateDiff, TrieWrites), TrieError> {
    let storage_results: Vec<(Address, B256, B256, Vec<_>)> = changes
        .storage
        .par_iter()
        .map(|(addr, slots)| {
            let owner = keccak256(addr);
            let source = StorageTrie { reader, owner };
            let mut update = TrieUpdate::new(&source);
            let keys: Vec<[u8; 64]> = slots.iter().map(|c| key_nibbles(&keccak256(c.slot).0)).collect();
            update.prefetch(&keys)?;
            for (change, key) in slots.iter().zip(&keys) {
                if change.new.is_zero() {
                    update.delete(key)?;
                } else {
                    update.insert(key, alloy_rlp::encode(change.new))?;
                }
            }
            let (root, writes) = update.commit()?;
            Ok((*addr, owner, root, writes))
        })
        .collect::<Result<_, TrieError>>()?;

    let mut roots = HashMap::default();
    let mut trie = TrieWrites::default();
    for (addr, owner, root, writes) in storage_results {
        roots.insert(addr, root);
        trie.storage_nodes.extend(writes.into_iter().map(|w| (owner, w)));
    }
    let diff = changes.into_diff(&roots);

    let (root, writes) = account_trie_update(reader, diff.accounts.iter().map(|c| (c.address, c.new.as_ref())))?;
    trie.account_nodes = writes;
    Ok((root, diff, trie))
}

/// Applies account changes (`None` deletes) to the head's account trie and
/// returns the new state root with the node writes, reading only the nodes
/// on the changed paths. Public so benchmarks can time the root step alone.
pub fn account_trie_update<'x>(
    reader: &StateReader<'_>,
    accounts: impl IntoIterator<Item = (Address, Option<&'x StoredAccount>)>,
) -> Result<(B256, Vec<NodeWrite>), TrieError> {
    let source = AccountTrie(reader);
    let mut update = TrieUpdate::new(&source);
    let mut changes: Vec<([u8; 64], Option<&StoredAccount>)> =
        accounts.into_iter().map(|(address, account)| (key_nibbles(&keccak256(address).0), account)).collect();
    // Sorted keys walk neighbouring paths one after another.
    changes.sort_unstable_by_key(|c| c.0);
    let keys: Vec<[u8; 64]> = changes.iter().map(|(k, _)| *k).collect();
    update.prefetch(&keys)?;
    for (key, account) in changes {
        match account {
            Some(account) => update.insert(&key, alloy_rlp::encode(account))?,
            None => update.delete(&key)?,
        }
    }
    update.commit()
}

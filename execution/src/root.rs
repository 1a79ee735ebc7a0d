//! The state root step: update each changed account's storage trie (in
//! parallel), then the account trie, reading only the nodes on changed paths.

use crate::{
    state::PendingChanges,
    trie::{key_nibbles, NodeSource, NodeVisitor, TrieError, TrieUpdate},
};
use alloy_primitives::{keccak256, map::HashMap, Address, B256};
use metanode_storage::{NodeWrite, StateDiff, StateReader, StoredAccount, TrieId, TrieWrites};
use rayon::prelude::*;

/// The head's nodes of one trie, as the trie update reads them.
struct StoredTrie<'r, 'a> {
    reader: &'r StateReader<'a>,
    trie: TrieId<'r>,
}

impl From<metanode_storage::StorageError> for TrieError {
    fn from(e: metanode_storage::StorageError) -> Self {
        TrieError::Source(e.to_string())
    }
}

impl NodeSource for StoredTrie<'_, '_> {
    fn node(&self, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
        Ok(self.reader.trie_node(self.trie, path)?)
    }

    fn visit_nodes(&self, paths: &[Vec<u8>], visit: NodeVisitor<'_>) -> Result<(), TrieError> {
        self.reader.visit_trie_nodes(self.trie, paths, visit)
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
            let source = StoredTrie { reader, trie: TrieId::Storage(&owner) };
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
    let source = StoredTrie { reader, trie: TrieId::Accounts };
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

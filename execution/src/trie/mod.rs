//! Incremental Merkle-Patricia trie over path-addressed nodes.
//!
//! Every node is stored under its nibble path (like geth's path scheme), so an
//! update loads only the nodes on the paths of the keys it changes and writes
//! back only those: the cost of a state root grows with what a block touches,
//! not with the size of the state. Keys are always 32-byte hashes (secure trie),
//! so no key is a prefix of another and branches never hold values.

mod node;
mod update;

pub use node::{ChildRef, Node, TrieError};
pub use update::{NodeSource, NodeVisitor, NodeWrite, TrieUpdate};

/// Expands a 32-byte key into its 64 nibbles.
pub fn key_nibbles(key: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in key.iter().enumerate() {
        out[2 * i] = b >> 4;
        out[2 * i + 1] = b & 0x0f;
    }
    out
}

#[cfg(test)]
mod tests;

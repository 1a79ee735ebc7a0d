//! Column family names and key layouts. Numbers are big-endian so that keys
//! sort by block number.

use crate::error::StorageError;
use alloy_primitives::{Address, B256};

pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_HEADERS: &str = "headers";
pub(crate) const CF_CANONICAL: &str = "canonical";
pub(crate) const CF_HASH_TO_NUMBER: &str = "hash_to_number";
pub(crate) const CF_BODIES: &str = "bodies";
pub(crate) const CF_SENDERS: &str = "senders";
pub(crate) const CF_RECEIPTS: &str = "receipts";
pub(crate) const CF_TX_INDEX: &str = "tx_index";
pub(crate) const CF_ACCOUNTS: &str = "accounts";
pub(crate) const CF_STORAGE: &str = "storage";
pub(crate) const CF_CODE: &str = "code";
pub(crate) const CF_ACCOUNT_TRIE: &str = "account_trie";
pub(crate) const CF_STORAGE_TRIE: &str = "storage_trie";
pub(crate) const CF_ACCOUNT_HISTORY: &str = "account_history";
pub(crate) const CF_STORAGE_HISTORY: &str = "storage_history";
pub(crate) const CF_CHANGESETS: &str = "changesets";
pub(crate) const CF_COMMITS: &str = "commits";

pub(crate) const ALL_CFS: &[&str] = &[
    CF_META,
    CF_HEADERS,
    CF_CANONICAL,
    CF_HASH_TO_NUMBER,
    CF_BODIES,
    CF_SENDERS,
    CF_RECEIPTS,
    CF_TX_INDEX,
    CF_ACCOUNTS,
    CF_STORAGE,
    CF_CODE,
    CF_ACCOUNT_TRIE,
    CF_STORAGE_TRIE,
    CF_ACCOUNT_HISTORY,
    CF_STORAGE_HISTORY,
    CF_CHANGESETS,
    CF_COMMITS,
];

pub(crate) const META_SCHEMA: &[u8] = b"schema";
pub(crate) const META_HEAD: &[u8] = b"head";
pub(crate) const META_GENESIS: &[u8] = b"genesis";
pub(crate) const META_CHAIN_ID: &[u8] = b"chain_id";
/// The history low-water mark: the highest block whose state history has
/// been pruned (see `prune`).
pub(crate) const META_PRUNED: &[u8] = b"pruned_to";
/// Identifies a MetaNode database and its layout version.
pub(crate) const SCHEMA: &[u8] = b"metanode-chain-v1";

pub(crate) fn num_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn storage_key(addr: &Address, slot: &B256) -> [u8; 52] {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(addr.as_slice());
    k[20..].copy_from_slice(slot.as_slice());
    k
}

pub(crate) fn account_history_key(addr: &Address, block: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..20].copy_from_slice(addr.as_slice());
    k[20..].copy_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn storage_history_key(addr: &Address, slot: &B256, block: u64) -> [u8; 60] {
    let mut k = [0u8; 60];
    k[..52].copy_from_slice(&storage_key(addr, slot));
    k[52..].copy_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn storage_trie_key(hashed_addr: &B256, path: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + path.len());
    k.extend_from_slice(hashed_addr.as_slice());
    k.extend_from_slice(path);
    k
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// A 32-byte hash (block hash, slot key) read back from disk. Any other length
/// means the record is damaged; it is reported as `Corrupt` so the caller can
/// surface it, where `B256::from_slice` would bring the whole node down.
pub(crate) fn decode_hash(what: &'static str, bytes: &[u8]) -> Result<B256, StorageError> {
    <[u8; 32]>::try_from(bytes)
        .map(B256::from)
        .map_err(|_| StorageError::corrupt(what, format!("{} bytes, expected 32", bytes.len())))
}

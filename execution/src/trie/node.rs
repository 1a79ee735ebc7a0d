//! Trie nodes and their canonical Ethereum RLP encoding.

use alloy_primitives::{keccak256, B256};
use alloy_rlp::{Encodable, Header, EMPTY_STRING_CODE};

/// A stored node could not be decoded: the database is corrupt or not ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrieError {
    /// RLP of a stored node is malformed.
    #[error("corrupt trie node at path {path}: {reason}")]
    Corrupt {
        /// Hex nibble path of the node.
        path: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The node store failed.
    #[error("reading trie node: {0}")]
    Source(String),
    /// A node the trie structure says exists is missing.
    #[error("missing trie node at path {0}")]
    Missing(String),
}

/// How a parent refers to a child: by hash when the child's RLP is 32 bytes or
/// more, inline otherwise; `Dirty` marks a child changed in the current update
/// whose reference is computed when the update is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildRef {
    /// keccak256 of the child's RLP.
    Hash(B256),
    /// The child's RLP itself (shorter than 32 bytes).
    Inline(Vec<u8>),
    /// Changed; recomputed at commit.
    Dirty,
}

impl ChildRef {
    /// The reference to a node with this RLP encoding.
    pub fn for_rlp(rlp: &[u8]) -> Self {
        if rlp.len() < 32 {
            Self::Inline(rlp.to_vec())
        } else {
            Self::Hash(keccak256(rlp))
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hash(h) => h.encode(out),
            Self::Inline(rlp) => out.extend_from_slice(rlp),
            Self::Dirty => unreachable!("dirty child references are resolved before encoding"),
        }
    }

    fn length(&self) -> usize {
        match self {
            Self::Hash(_) => 33,
            Self::Inline(rlp) => rlp.len(),
            Self::Dirty => unreachable!("dirty child references are resolved before encoding"),
        }
    }
}

/// A trie node. Keys are nibble sequences (one nibble per byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The rest of a key and its value.
    Leaf {
        /// Remaining nibbles of the key below this node's path.
        key: Vec<u8>,
        /// The RLP-encoded value.
        value: Vec<u8>,
    },
    /// A shared run of nibbles leading to a branch.
    Extension {
        /// The shared nibbles.
        key: Vec<u8>,
        /// The branch at `path ++ key`.
        child: ChildRef,
    },
    /// Sixteen children, one per next nibble.
    Branch {
        /// `children[n]` lives at `path ++ [n]`.
        children: Box<[Option<ChildRef>; 16]>,
    },
}

/// Hex-prefix (compact) encoding of a key of at most 64 nibbles, on the stack.
fn hex_prefix(nibbles: &[u8], leaf: bool) -> ([u8; 33], usize) {
    let flag = if leaf { 2u8 } else { 0 };
    let mut out = [0u8; 33];
    let rest = if nibbles.len() % 2 == 1 {
        out[0] = ((flag | 1) << 4) | nibbles[0];
        &nibbles[1..]
    } else {
        out[0] = flag << 4;
        nibbles
    };
    for (slot, pair) in out[1..].iter_mut().zip(rest.chunks(2)) {
        *slot = (pair[0] << 4) | pair[1];
    }
    (out, 1 + rest.len() / 2)
}

/// A list header sized for `payload`, followed by room for the payload.
fn list_buffer(payload: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload + alloy_rlp::length_of_length(payload));
    Header { list: true, payload_length: payload }.encode(&mut out);
    out
}

/// RLP of a two-item node: the hex-prefixed key, then an item of
/// `second_len` bytes written by `second`.
fn encode_pair(key: &[u8], leaf: bool, second_len: usize, second: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let (hp, len) = hex_prefix(key, leaf);
    let hp = &hp[..len];
    let mut out = list_buffer(hp.length() + second_len);
    hp.encode(&mut out);
    second(&mut out);
    out
}

/// RLP of a leaf node.
pub(crate) fn encode_leaf(key: &[u8], value: &[u8]) -> Vec<u8> {
    encode_pair(key, true, value.length(), |out| value.encode(out))
}

/// RLP of an extension node; `child` must be resolved.
pub(crate) fn encode_extension(key: &[u8], child: &ChildRef) -> Vec<u8> {
    encode_pair(key, false, child.length(), |out| child.encode(out))
}

/// RLP of a branch node; every child must be resolved.
pub(crate) fn encode_branch(children: &[Option<ChildRef>; 16]) -> Vec<u8> {
    let payload: usize = children.iter().map(|c| c.as_ref().map_or(1, ChildRef::length)).sum::<usize>() + 1;
    let mut out = list_buffer(payload);
    for child in children {
        match child {
            Some(c) => c.encode(&mut out),
            None => out.push(EMPTY_STRING_CODE),
        }
    }
    out.push(EMPTY_STRING_CODE);
    out
}

fn decode_hex_prefix(bytes: &[u8]) -> Option<(Vec<u8>, bool)> {
    let first = *bytes.first()?;
    let flag = first >> 4;
    if flag > 3 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 2);
    if flag & 1 == 1 {
        out.push(first & 0x0f);
    } else if first & 0x0f != 0 {
        return None;
    }
    for b in &bytes[1..] {
        out.push(b >> 4);
        out.push(b & 0x0f);
    }
    Some((out, flag & 2 == 2))
}

/// One RLP item: whether it is a list, its payload and its whole encoding.
fn next_item<'a>(buf: &mut &'a [u8]) -> Option<(bool, &'a [u8], &'a [u8])> {
    let start = *buf;
    let header = Header::decode(buf).ok()?;
    if buf.len() < header.payload_length {
        return None;
    }
    let payload = &buf[..header.payload_length];
    *buf = &buf[header.payload_length..];
    let whole = &start[..start.len() - buf.len()];
    Some((header.list, payload, whole))
}

impl Node {
    /// Canonical RLP; every child reference must be resolved (not `Dirty`).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Leaf { key, value } => encode_leaf(key, value),
            Self::Extension { key, child } => encode_extension(key, child),
            Self::Branch { children } => encode_branch(children),
        }
    }

    /// Decodes a stored node; `path` only names the node in errors.
    pub fn decode(mut rlp: &[u8], path: &[u8]) -> Result<Self, TrieError> {
        let corrupt = |reason| TrieError::Corrupt { path: nibble_string(path), reason };
        let (list, mut payload, _) = next_item(&mut rlp).ok_or_else(|| corrupt("bad rlp"))?;
        if !list || !rlp.is_empty() {
            return Err(corrupt("node is not a single rlp list"));
        }
        // Items are borrowed from `rlp` and kept on the stack: decoding is on
        // the hot path of every state root.
        let mut items: [(bool, &[u8], &[u8]); 17] = [(false, &[], &[]); 17];
        let mut count = 0;
        while !payload.is_empty() {
            let item = next_item(&mut payload).ok_or_else(|| corrupt("bad rlp item"))?;
            *items.get_mut(count).ok_or_else(|| corrupt("node has neither 2 nor 17 items"))? = item;
            count += 1;
        }
        match count {
            2 => {
                let (l0, hp, _) = items[0];
                if l0 {
                    return Err(corrupt("hex-prefix key is a list"));
                }
                let (key, leaf) = decode_hex_prefix(hp).ok_or_else(|| corrupt("bad hex prefix"))?;
                let (l1, payload, whole) = items[1];
                if leaf {
                    if l1 {
                        return Err(corrupt("leaf value is a list"));
                    }
                    Ok(Self::Leaf { key, value: payload.to_vec() })
                } else {
                    let child = child_ref(l1, payload, whole).ok_or_else(|| corrupt("bad child"))?;
                    Ok(Self::Extension { key, child })
                }
            }
            17 => {
                let mut children: Box<[Option<ChildRef>; 16]> = Box::default();
                for (i, &(list, payload, whole)) in items[..16].iter().enumerate() {
                    if !list && payload.is_empty() {
                        continue;
                    }
                    children[i] = Some(child_ref(list, payload, whole).ok_or_else(|| corrupt("bad child"))?);
                }
                Ok(Self::Branch { children })
            }
            _ => Err(corrupt("node has neither 2 nor 17 items")),
        }
    }
}

fn child_ref(list: bool, payload: &[u8], whole: &[u8]) -> Option<ChildRef> {
    if list {
        Some(ChildRef::Inline(whole.to_vec()))
    } else if payload.len() == 32 {
        Some(ChildRef::Hash(B256::from_slice(payload)))
    } else {
        None
    }
}

/// Hex string of a nibble path, for messages.
pub(crate) fn nibble_string(path: &[u8]) -> String {
    if path.is_empty() {
        return "<root>".to_string();
    }
    path.iter().map(|n| char::from_digit(u32::from(*n), 16).unwrap_or('?')).collect()
}

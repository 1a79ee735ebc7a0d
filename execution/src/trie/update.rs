//! Applying inserts and deletes to a path-addressed trie and committing the
//! changed nodes with their new hashes.

use super::node::{encode_branch, encode_extension, encode_leaf, nibble_string, ChildRef, Node, TrieError};
use alloy_primitives::map::{HashMap, HashSet};
use alloy_primitives::{keccak256, B256};
use alloy_trie::EMPTY_ROOT_HASH;
use rayon::prelude::*;

/// Where the current (committed) nodes of one trie are read from.
pub trait NodeSource {
    /// The RLP of the node at `path` (nibbles), if there is one.
    fn node(&self, path: &[u8]) -> Result<Option<Vec<u8>>, TrieError>;

    /// Hands many nodes at once to `visit`, with their index in `paths`;
    /// stores override this with a batched read that does not copy the bytes.
    fn visit_nodes(&self, paths: &[Vec<u8>], visit: NodeVisitor<'_>) -> Result<(), TrieError> {
        for (i, path) in paths.iter().enumerate() {
            visit(i, self.node(path)?.as_deref())?;
        }
        Ok(())
    }
}

/// Receives the nodes of a batched read: the index of the path and the RLP found there.
pub type NodeVisitor<'v> = &'v mut dyn FnMut(usize, Option<&[u8]>) -> Result<(), TrieError>;

/// Levels below the root whose dirty children are hashed in parallel.
const PARALLEL_LEVELS: usize = 2;

/// A node to write (`Some(rlp)`) or delete (`None`) at a nibble path.
pub type NodeWrite = (Vec<u8>, Option<Vec<u8>>);

/// Pending changes to one trie. Nodes read are cached; nodes changed are kept
/// in `dirty` (with `None` for removed paths) until [`TrieUpdate::commit`].
pub struct TrieUpdate<'s, S: NodeSource + Sync + ?Sized> {
    source: &'s S,
    cache: HashMap<Vec<u8>, Node>,
    /// Paths known to hold no committed node.
    absent: HashSet<Vec<u8>>,
    dirty: HashMap<Vec<u8>, Option<Node>>,
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<'s, S: NodeSource + Sync + ?Sized> TrieUpdate<'s, S> {
    /// Starts an update over the trie whose nodes `source` holds.
    pub fn new(source: &'s S) -> Self {
        Self { source, cache: HashMap::default(), absent: HashSet::default(), dirty: HashMap::default() }
    }

    /// Loads, level by level with one batched read per level, every stored
    /// node on the paths of `keys`, so the inserts and deletes that follow
    /// find them in memory instead of reading one node at a time.
    pub fn prefetch(&mut self, keys: &[[u8; 64]]) -> Result<(), TrieError> {
        // About three nodes are read and changed per key in a large trie.
        self.cache.reserve(keys.len() * 3);
        self.dirty.reserve(keys.len() * 3);
        let mut active: Vec<(usize, usize)> = (0..keys.len()).map(|i| (i, 0)).collect();
        while !active.is_empty() {
            // Keys that share a path sit next to each other when sorted: each
            // shared path is looked up once, not once per key below it.
            let mut previous: &[u8] = &[0xff];
            let mut want: Vec<Vec<u8>> = Vec::new();
            for &(i, len) in &active {
                let path = &keys[i][..len];
                if path == previous {
                    continue;
                }
                previous = path;
                if !self.dirty.contains_key(path) && !self.cache.contains_key(path) && !self.absent.contains(path) {
                    want.push(path.to_vec());
                }
            }
            want.sort_unstable();
            want.dedup();
            if !want.is_empty() {
                // Large levels are read and decoded on all cores.
                let source = self.source;
                let chunk = want.len().div_ceil(rayon::current_num_threads()).max(256);
                let loaded: Vec<Vec<(Vec<u8>, Option<Node>)>> = want
                    .par_chunks_mut(chunk)
                    .map(|chunk| {
                        let paths: &[Vec<u8>] = chunk;
                        let mut nodes = Vec::with_capacity(paths.len());
                        source.visit_nodes(paths, &mut |i, rlp| {
                            nodes.push(rlp.map(|r| Node::decode(r, &paths[i])).transpose()?);
                            Ok(())
                        })?;
                        Ok(chunk.iter_mut().map(std::mem::take).zip(nodes).collect())
                    })
                    .collect::<Result<_, TrieError>>()?;
                for (path, node) in loaded.into_iter().flatten() {
                    match node {
                        Some(node) => {
                            self.cache.insert(path, node);
                        }
                        None => {
                            self.absent.insert(path);
                        }
                    }
                }
            }
            let mut previous: (&[u8], Option<&Node>) = (&[0xff], None);
            active.retain_mut(|(i, len)| {
                let key = &keys[*i];
                let path = &key[..*len];
                if path != previous.0 {
                    let node = match self.dirty.get(path) {
                        Some(n) => n.as_ref(),
                        None => self.cache.get(path),
                    };
                    previous = (path, node);
                }
                match previous.1 {
                    Some(Node::Branch { children }) if *len < key.len() && children[key[*len] as usize].is_some() => {
                        *len += 1;
                        true
                    }
                    Some(Node::Extension { key: ext, .. }) if key[*len..].starts_with(ext) => {
                        *len += ext.len();
                        true
                    }
                    _ => false,
                }
            });
        }
        Ok(())
    }

    /// The current node at `path`, remembering what a store read found.
    fn get(&mut self, path: &[u8]) -> Result<Option<Node>, TrieError> {
        let known = self.dirty.contains_key(path) || self.cache.contains_key(path) || self.absent.contains(path);
        let node = self.lookup(path)?;
        if !known {
            match &node {
                Some(n) => {
                    self.cache.insert(path.to_vec(), n.clone());
                }
                None => {
                    self.absent.insert(path.to_vec());
                }
            }
        }
        Ok(node)
    }

    /// The node at `path` for an edit that will `set` it again: moved out of
    /// the read cache rather than cloned.
    fn take(&mut self, path: &[u8]) -> Result<Option<Node>, TrieError> {
        if let Some(n) = self.dirty.get(path) {
            return Ok(n.clone());
        }
        if let Some(n) = self.cache.remove(path) {
            return Ok(Some(n));
        }
        self.lookup(path)
    }

    fn set(&mut self, path: Vec<u8>, node: Option<Node>) {
        self.dirty.insert(path, node);
    }

    /// Sets `key` (64 nibbles) to `value` (RLP of the value, non-empty).
    pub fn insert(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), TrieError> {
        debug_assert!(!value.is_empty());
        let mut path: Vec<u8> = Vec::with_capacity(key.len());
        loop {
            let rem = &key[path.len()..];
            // Fast path: a branch this update already changed is edited in place.
            if let Some(Some(Node::Branch { children })) = self.dirty.get_mut(path.as_slice()) {
                let nib = rem[0];
                let existed = children[nib as usize].is_some();
                children[nib as usize] = Some(ChildRef::Dirty);
                path.push(nib);
                if !existed {
                    self.set(path, Some(Node::Leaf { key: rem[1..].to_vec(), value }));
                    return Ok(());
                }
                continue;
            }
            match self.take(&path)? {
                None => {
                    self.set(path, Some(Node::Leaf { key: rem.to_vec(), value }));
                    return Ok(());
                }
                Some(Node::Leaf { key: k, value: v }) => {
                    if k == rem {
                        self.set(path, Some(Node::Leaf { key: k, value }));
                        return Ok(());
                    }
                    let cp = common_prefix(&k, rem);
                    let bpath = concat(&path, &rem[..cp]);
                    let mut children: Box<[Option<ChildRef>; 16]> = Box::default();
                    children[k[cp] as usize] = Some(ChildRef::Dirty);
                    children[rem[cp] as usize] = Some(ChildRef::Dirty);
                    self.set(concat(&bpath, &[k[cp]]), Some(Node::Leaf { key: k[cp + 1..].to_vec(), value: v }));
                    self.set(concat(&bpath, &[rem[cp]]), Some(Node::Leaf { key: rem[cp + 1..].to_vec(), value }));
                    self.set(bpath, Some(Node::Branch { children }));
                    if cp > 0 {
                        let ext = Node::Extension { key: rem[..cp].to_vec(), child: ChildRef::Dirty };
                        self.set(path, Some(ext));
                    }
                    return Ok(());
                }
                Some(Node::Extension { key: k, child }) => {
                    let cp = common_prefix(&k, rem);
                    if cp == k.len() {
                        let next = concat(&path, &k);
                        self.set(path, Some(Node::Extension { key: k, child: ChildRef::Dirty }));
                        path = next;
                        continue;
                    }
                    let bpath = concat(&path, &k[..cp]);
                    let mut children: Box<[Option<ChildRef>; 16]> = Box::default();
                    children[k[cp] as usize] = if cp + 1 == k.len() {
                        // The old child branch already lives at `bpath ++ [k[cp]]`.
                        Some(child)
                    } else {
                        let ext = Node::Extension { key: k[cp + 1..].to_vec(), child };
                        self.set(concat(&bpath, &[k[cp]]), Some(ext));
                        Some(ChildRef::Dirty)
                    };
                    children[rem[cp] as usize] = Some(ChildRef::Dirty);
                    self.set(concat(&bpath, &[rem[cp]]), Some(Node::Leaf { key: rem[cp + 1..].to_vec(), value }));
                    self.set(bpath, Some(Node::Branch { children }));
                    if cp > 0 {
                        let ext = Node::Extension { key: k[..cp].to_vec(), child: ChildRef::Dirty };
                        self.set(path, Some(ext));
                    }
                    return Ok(());
                }
                Some(Node::Branch { mut children }) => {
                    let nib = rem[0];
                    let existed = children[nib as usize].is_some();
                    children[nib as usize] = Some(ChildRef::Dirty);
                    self.set(path.clone(), Some(Node::Branch { children }));
                    path.push(nib);
                    if !existed {
                        self.set(path, Some(Node::Leaf { key: rem[1..].to_vec(), value }));
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Removes `key` (64 nibbles); absent keys are a no-op.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), TrieError> {
        // Walk down without changing anything, so a missing key changes nothing.
        let mut stack: Vec<(Vec<u8>, Node)> = Vec::new();
        let mut path: Vec<u8> = Vec::new();
        loop {
            let Some(node) = self.get(&path)? else { return Ok(()) };
            let rem = &key[path.len()..];
            match &node {
                Node::Leaf { key: k, .. } => {
                    if k.as_slice() != rem {
                        return Ok(());
                    }
                    break;
                }
                Node::Extension { key: k, .. } => {
                    if !rem.starts_with(k) {
                        return Ok(());
                    }
                    let next = concat(&path, k);
                    stack.push((std::mem::replace(&mut path, next), node));
                }
                Node::Branch { children } => {
                    let nib = rem[0];
                    if children[nib as usize].is_none() {
                        return Ok(());
                    }
                    let next = concat(&path, &[nib]);
                    stack.push((std::mem::replace(&mut path, next), node));
                }
            }
        }
        self.set(path.clone(), None);
        // Walk back up: `replacement` is what now stands at `child_path`.
        let mut child_path = path;
        let mut replacement: Option<Node> = None;
        while let Some((path, node)) = stack.pop() {
            let new_node = match node {
                Node::Branch { mut children } => {
                    let nib = child_path[path.len()] as usize;
                    if replacement.is_some() {
                        children[nib] = Some(ChildRef::Dirty);
                        Node::Branch { children }
                    } else {
                        children[nib] = None;
                        let remaining: Vec<usize> = (0..16).filter(|i| children[*i].is_some()).collect();
                        if remaining.len() >= 2 {
                            Node::Branch { children }
                        } else if let Some(&j) = remaining.first() {
                            let only = children[j].take().unwrap_or(ChildRef::Dirty);
                            self.collapse(&path, j as u8, only)?
                        } else {
                            return Err(TrieError::Corrupt {
                                path: nibble_string(&path),
                                reason: "branch with a single child",
                            });
                        }
                    }
                }
                Node::Extension { key: k, .. } => match replacement.take() {
                    Some(Node::Leaf { key: k2, value }) => {
                        self.set(child_path.clone(), None);
                        Node::Leaf { key: concat(&k, &k2), value }
                    }
                    Some(Node::Extension { key: k2, child }) => {
                        self.set(child_path.clone(), None);
                        Node::Extension { key: concat(&k, &k2), child }
                    }
                    Some(Node::Branch { .. }) => Node::Extension { key: k, child: ChildRef::Dirty },
                    None => {
                        return Err(TrieError::Corrupt {
                            path: nibble_string(&path),
                            reason: "extension above a removed leaf",
                        })
                    }
                },
                Node::Leaf { .. } => {
                    return Err(TrieError::Corrupt { path: nibble_string(&path), reason: "leaf above another node" })
                }
            };
            self.set(path.clone(), Some(new_node.clone()));
            replacement = Some(new_node);
            child_path = path;
        }
        Ok(())
    }

    /// A branch at `path` is left with one child `j`: fold it into a leaf or extension.
    fn collapse(&mut self, path: &[u8], j: u8, only: ChildRef) -> Result<Node, TrieError> {
        let cpath = concat(path, &[j]);
        let child = self.get(&cpath)?.ok_or_else(|| TrieError::Missing(nibble_string(&cpath)))?;
        Ok(match child {
            Node::Leaf { key, value } => {
                self.set(cpath, None);
                Node::Leaf { key: concat(&[j], &key), value }
            }
            Node::Extension { key, child } => {
                self.set(cpath, None);
                Node::Extension { key: concat(&[j], &key), child }
            }
            Node::Branch { .. } => Node::Extension { key: vec![j], child: only },
        })
    }

    /// Computes the new root and the node writes that make the store hold it.
    /// Subtries below the top levels are hashed on all cores.
    pub fn commit(self) -> Result<(B256, Vec<NodeWrite>), TrieError> {
        let mut writes = Vec::with_capacity(self.dirty.len());
        let root = match self.lookup(&[])? {
            None => EMPTY_ROOT_HASH,
            Some(_) => match self.hash_subtrie(&mut Vec::with_capacity(64), &mut writes, PARALLEL_LEVELS)? {
                ChildRef::Hash(hash) => hash,
                ChildRef::Inline(rlp) => keccak256(rlp),
                ChildRef::Dirty => unreachable!("hash_subtrie returns resolved references"),
            },
        };
        writes.extend(self.dirty.into_iter().filter(|(_, node)| node.is_none()).map(|(path, _)| (path, None)));
        Ok((root, writes))
    }

    /// The current node at `path` without caching it (usable from many threads).
    fn lookup(&self, path: &[u8]) -> Result<Option<Node>, TrieError> {
        if let Some(n) = self.dirty.get(path) {
            return Ok(n.clone());
        }
        if let Some(n) = self.cache.get(path) {
            return Ok(Some(n.clone()));
        }
        if self.absent.contains(path) {
            return Ok(None);
        }
        self.source.node(path)?.map(|rlp| Node::decode(&rlp, path)).transpose()
    }

    /// Resolves the dirty children below `path` depth-first, queues the RLP
    /// of every changed node as a write, and returns the reference this
    /// node's parent holds to it. Nodes are encoded where they are, never
    /// cloned; the top `parallel` levels fan their dirty children out.
    fn hash_subtrie(
        &self,
        path: &mut Vec<u8>,
        writes: &mut Vec<NodeWrite>,
        parallel: usize,
    ) -> Result<ChildRef, TrieError> {
        let missing = || TrieError::Missing(nibble_string(path));
        let loaded;
        let (node, changed) = match self.dirty.get(path.as_slice()) {
            Some(Some(node)) => (node, true),
            Some(None) => return Err(missing()),
            None => match self.cache.get(path.as_slice()) {
                Some(node) => (node, false),
                None => {
                    loaded = self.lookup(path)?.ok_or_else(missing)?;
                    (&loaded, false)
                }
            },
        };
        let rlp = match node {
            Node::Leaf { key, value } => encode_leaf(key, value),
            Node::Extension { key, child: ChildRef::Dirty } => {
                let len = path.len();
                path.extend_from_slice(key);
                let child = self.hash_subtrie(path, writes, parallel)?;
                path.truncate(len);
                encode_extension(key, &child)
            }
            Node::Extension { key, child } => encode_extension(key, child),
            Node::Branch { children } => {
                let mut resolved: [Option<ChildRef>; 16] = Default::default();
                let dirty: Vec<usize> = (0..16).filter(|i| children[*i] == Some(ChildRef::Dirty)).collect();
                if parallel > 0 && dirty.len() > 1 {
                    let done: Vec<(usize, ChildRef, Vec<NodeWrite>)> = dirty
                        .par_iter()
                        .map(|&i| {
                            let mut sub = path.clone();
                            sub.push(i as u8);
                            let mut sub_writes = Vec::new();
                            let child = self.hash_subtrie(&mut sub, &mut sub_writes, parallel - 1)?;
                            Ok((i, child, sub_writes))
                        })
                        .collect::<Result<_, TrieError>>()?;
                    for (i, child, sub_writes) in done {
                        resolved[i] = Some(child);
                        writes.extend(sub_writes);
                    }
                } else {
                    for &i in &dirty {
                        path.push(i as u8);
                        resolved[i] = Some(self.hash_subtrie(path, writes, parallel)?);
                        path.pop();
                    }
                }
                for (slot, child) in resolved.iter_mut().zip(children.iter()) {
                    if slot.is_none() {
                        slot.clone_from(child);
                    }
                }
                encode_branch(&resolved)
            }
        };
        let reference = ChildRef::for_rlp(&rlp);
        if changed {
            writes.push((path.clone(), Some(rlp)));
        }
        Ok(reference)
    }
}

//! The byte format of everything consensus sends or writes: a small, strict
//! binary encoding (fixed-width big-endian integers, length-prefixed byte
//! strings, one tag byte per enum). Decoding takes bytes from any peer, so
//! it never trusts a length: a list's count is checked against the bytes
//! that remain at the item type's smallest encoding, memory for a list is
//! reserved only up to [`PREALLOC_BYTES`] ahead of the items actually
//! decoded (an item can take more memory than bytes on the wire, so a count
//! bounded by bytes alone still multiplies), unknown tags and trailing bytes
//! are errors, and nothing panics.

use alloy_primitives::{Address, B256};

/// Memory reserved for a list before its items are decoded; beyond this the
/// list grows only with items actually read.
pub const PREALLOC_BYTES: usize = 64 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The input ended inside an item.
    #[error("input ends early: {0} more bytes needed")]
    Truncated(usize),
    /// An enum tag this version does not know.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// The kind of item.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// Bytes left after the item.
    #[error("{0} unexpected bytes after the message")]
    Trailing(usize),
    /// A field with a value that cannot be.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// More bytes than any honest encoding of the type takes; refused unread.
    #[error("{len} bytes is over the {max}-byte limit for this message")]
    Oversized {
        /// The input's length.
        len: usize,
        /// The type's [`Wire::MAX_BYTES`].
        max: usize,
    },
}

/// Appends encoded items.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Bytes of a length both sides know.
    pub fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
}

/// Reads encoded items from a slice, refusing anything malformed.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Succeeds only when everything was read.
    pub fn finish(self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(n - self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A count of items that each take at least `min_item_bytes` bytes,
    /// refused when the input left cannot hold that many.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        let needed = n.saturating_mul(min_item_bytes.max(1));
        if needed > self.buf.len() {
            return Err(WireError::Truncated(needed - self.buf.len()));
        }
        Ok(n)
    }
}

/// A type with a wire encoding.
pub trait Wire: Sized {
    /// The largest encoding a peer may send as one message of this type:
    /// anything longer is refused before decoding, so a flood of padded
    /// messages costs a length check, not a parse.
    const MAX_BYTES: usize = usize::MAX;
    /// The fewest bytes any encoding of the type takes, so a list's count
    /// can be checked against the input before any item is read.
    const MIN_BYTES: usize = 1;
    /// Appends the encoding.
    fn put(&self, w: &mut Writer);
    /// Reads one item.
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

/// The encoding of one item.
pub fn encode<T: Wire>(item: &T) -> Vec<u8> {
    let mut w = Writer::default();
    item.put(&mut w);
    w.finish()
}

/// Decodes exactly one item from `bytes`.
pub fn decode<T: Wire>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > T::MAX_BYTES {
        return Err(WireError::Oversized { len: bytes.len(), max: T::MAX_BYTES });
    }
    let mut r = Reader::new(bytes);
    let item = T::get(&mut r)?;
    r.finish()?;
    Ok(item)
}

impl Wire for () {
    fn put(&self, _: &mut Writer) {}
    fn get(_: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(())
    }
}

impl Wire for u64 {
    const MIN_BYTES: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.u64()
    }
}

impl Wire for B256 {
    const MIN_BYTES: usize = 32;
    fn put(&self, w: &mut Writer) {
        w.fixed(self.as_slice());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(B256::from(r.array::<32>()?))
    }
}

impl Wire for Address {
    const MIN_BYTES: usize = 20;
    fn put(&self, w: &mut Writer) {
        w.fixed(self.as_slice());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Address::from(r.array::<20>()?))
    }
}

impl Wire for Vec<u8> {
    const MIN_BYTES: usize = 4;
    fn put(&self, w: &mut Writer) {
        w.bytes(self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(r.bytes()?.to_vec())
    }
}

impl Wire for bytes::Bytes {
    const MIN_BYTES: usize = 4;
    fn put(&self, w: &mut Writer) {
        w.bytes(self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(bytes::Bytes::copy_from_slice(r.bytes()?))
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::get(r)?)),
            tag => Err(WireError::UnknownTag { what: "option", tag }),
        }
    }
}

/// Lists of items that are not bytes (a byte list is `Vec<u8>`, above): a
/// count, then the items. `u8` has no `Wire` impl, so the two never overlap.
impl<T: Wire> Wire for Vec<T> {
    const MIN_BYTES: usize = 4;
    fn put(&self, w: &mut Writer) {
        w.u32(self.len() as u32);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = r.count(T::MIN_BYTES)?;
        let mut out = Vec::with_capacity(n.min(PREALLOC_BYTES / std::mem::size_of::<T>().max(1)));
        for _ in 0..n {
            out.push(T::get(r)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_truncated_trailing_and_forged_counts() {
        let bytes = encode(&vec![1u8, 2, 3]);
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), vec![1, 2, 3]);
        assert!(matches!(decode::<Vec<u8>>(&bytes[..bytes.len() - 1]), Err(WireError::Truncated(1))));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode::<Vec<u8>>(&long), Err(WireError::Trailing(1)));
        // A list claiming four billion items in eight bytes is refused before allocating.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(Vec::<u64>::get(&mut r), Err(WireError::Truncated(_))));
        // Two u64s claimed in eight bytes: refused by the items' size, not just the count.
        let mut r = Reader::new(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(Vec::<u64>::get(&mut r), Err(WireError::Truncated(8))));
        assert!(matches!(decode::<Option<u64>>(&[7]), Err(WireError::UnknownTag { what: "option", tag: 7 })));
    }
}

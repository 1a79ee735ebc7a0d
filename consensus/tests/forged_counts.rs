//! A value-sync response whose element count is forged is refused without a
//! large allocation. This binary has its own allocator, which records the
//! largest single allocation made while decoding.

use metanode_consensus::{
    channel::app::types::{codec::Codec, sync::Response},
    MetaCodec, MetaContext,
};
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

struct Recording;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// A response: start height, then a list that claims `count` decided values,
/// padded with `padding` zero bytes.
fn forged(count: u32, padding: usize) -> bytes::Bytes {
    let mut out = 1u64.to_be_bytes().to_vec();
    out.extend_from_slice(&count.to_be_bytes());
    out.resize(out.len() + padding, 0);
    bytes::Bytes::from(out)
}

#[test]
fn forged_sync_response_counts_allocate_nothing_large() {
    let codec = MetaCodec::default();
    // Ten million values claimed in 10 MiB: each needs far more than one byte.
    let bytes = forged(10_000_000, 10 << 20);
    LARGEST.store(0, Ordering::Relaxed);
    let result = Codec::<Response<MetaContext>>::decode(&codec, bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(result.is_err(), "a forged count decoded");
    assert!(largest < 1 << 20, "decoding reserved {largest} bytes at once");

    // A count the bytes could hold (an empty block with an empty certificate
    // takes 49 bytes) whose first item is malformed (a round tag of 7):
    // memory is reserved only as items decode, not for the whole count.
    let mut bytes = forged(200_000, 200_000 * 49).to_vec();
    bytes[8 + 4 + 4 + 8] = 7;
    let bytes = bytes::Bytes::from(bytes);
    LARGEST.store(0, Ordering::Relaxed);
    let result = Codec::<Response<MetaContext>>::decode(&codec, bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(result.is_err(), "a malformed value decoded");
    assert!(largest < 1 << 20, "decoding reserved {largest} bytes at once");
}

#[test]
fn sync_responses_over_the_limit_are_refused_unread() {
    let codec = MetaCodec::default();
    let bytes = forged(0, 80 << 20);
    let err = Codec::<Response<MetaContext>>::decode(&codec, bytes).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

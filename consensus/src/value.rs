//! The value consensus decides on.

use alloy_primitives::B256;

/// The hash of a proposed block. Consensus only orders and certifies this
/// hash; the block itself is streamed in proposal parts and checked by
/// re-execution before a validator prevotes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockValue(pub B256);

impl malachitebft_core_types::Value for BlockValue {
    type Id = B256;

    fn id(&self) -> B256 {
        self.0
    }
}

//! The one narrow trait through which consensus drives the chain. Consensus
//! orders block hashes and moves block bytes; everything that understands a
//! block (building, re-executing, storing) is behind this trait, in `node`.

use alloy_primitives::B256;
use async_trait::async_trait;
use bytes::Bytes;
use metanode_primitives::CommitCertificate;

/// A block the application built: its hash (the value consensus votes on)
/// and its encoding (streamed to the other validators).
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    /// The block hash.
    pub hash: B256,
    /// The encoded block.
    pub bytes: Bytes,
}

/// Why a proposed block was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct BlockRejected {
    /// The block's hash if the bytes decoded far enough to have one; consensus
    /// then prevotes nil for it at once instead of waiting for a timeout.
    pub hash: Option<B256>,
    /// What was wrong, for the log.
    pub reason: String,
}

/// Where a block to verify comes from, which decides what is checked: a
/// live proposal is also held to this node's clock; a block the validators
/// already decided (catch-up, or a commit without a cached execution) is
/// not, or a node whose clock is behind could never catch up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOrigin {
    /// A proposal at the height consensus is deciding.
    Proposal,
    /// A block with a commit certificate.
    Decided,
}

/// A failure of the node itself (storage, execution engine), not of a peer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AppError(pub String);

/// What consensus asks of the chain.
#[async_trait]
pub trait Application: Send + Sync + 'static {
    /// The number of the last committed block (0 when only genesis exists).
    fn committed_height(&self) -> u64;

    /// Builds a block at `height` on top of the committed head (the proposer's step).
    async fn build_block(&self, height: u64) -> Result<BuiltBlock, AppError>;

    /// Re-executes a block on top of the committed head and checks its
    /// header (state root, receipts root, gas used, parent, and for a live
    /// proposal its timestamp against the local clock). `Ok` carries the
    /// block hash.
    async fn verify_block(&self, height: u64, block: Bytes, origin: BlockOrigin) -> Result<B256, BlockRejected>;

    /// Commits a decided block together with its certificate in one write.
    /// `block` is the encoding this node built or verified before.
    async fn commit_block(&self, block: Bytes, certificate: CommitCertificate) -> Result<(), AppError>;

    /// A committed block's encoding and certificate, served to peers catching up.
    fn decided_block(&self, height: u64) -> Result<Option<(Bytes, CommitCertificate)>, AppError>;

    /// The lowest height whose block and certificate this node can serve.
    fn earliest_height(&self) -> u64;
}

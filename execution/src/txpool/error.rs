//! Pool rejections, worded as geth words them so that clients' error handling
//! (which often matches on these strings) keeps working.

use metanode_primitives::SignatureError;
use metanode_storage::StorageError;

/// Why a transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Already in the pool.
    #[error("already known")]
    AlreadyKnown,
    /// Nonce below the sender's account nonce.
    #[error("nonce too low")]
    NonceTooLow,
    /// Balance below gas * fee cap + value.
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds,
    /// Same nonce, fee not bumped enough.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Gas limit below the intrinsic cost.
    #[error("intrinsic gas too low")]
    IntrinsicGasTooLow,
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit")]
    ExceedsBlockGasLimit,
    /// Signed for another chain.
    #[error("invalid chain id")]
    InvalidChainId,
    /// Legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    Unprotected,
    /// Encoded size above 128 KiB.
    #[error("oversized data: transaction size {0}, limit 131072")]
    Oversized(usize),
    /// Signature does not recover.
    #[error("invalid sender: {0}")]
    InvalidSender(#[from] SignatureError),
    /// Tip cap above fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Blob transactions need sidecars and blob gas accounting this chain does not run.
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// The sender already has the most transactions allowed.
    #[error("account limit exceeded")]
    AccountLimit,
    /// Full, and this transaction pays less than everything held.
    #[error("txpool is full")]
    PoolFull,
    /// 7702 transaction with no authorizations, or creating a contract.
    #[error("{0}")]
    Malformed(&'static str),
    /// State could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

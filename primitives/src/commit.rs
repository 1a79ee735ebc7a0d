//! The commit certificate stored with every finalized block: the precommit
//! signatures of more than two thirds of the voting power for that block.

use alloy_primitives::{Address, Bytes, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use serde::{Deserialize, Serialize};

/// One validator's precommit signature.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitSignature {
    /// The validator's address (last 20 bytes of keccak256 of its ed25519 key).
    pub validator: Address,
    /// The 64-byte ed25519 signature over the precommit's sign bytes.
    pub signature: Bytes,
}

/// Proof that a block was decided: anyone holding the validator set can
/// rebuild each precommit and check the signatures add up to 2f+1.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitCertificate {
    /// Block number.
    pub height: u64,
    /// The consensus round the block was decided in.
    pub round: u32,
    /// The decided block's hash.
    pub block_hash: B256,
    /// Precommit signatures, ordered by validator address.
    pub signatures: Vec<CommitSignature>,
}

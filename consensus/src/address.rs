//! Validator addresses.

use alloy_primitives::{keccak256, Address};
use ed25519_dalek::VerifyingKey;
use std::fmt;

/// A validator's address: the last 20 bytes of keccak256 of its ed25519
/// public key (the Ethereum rule applied to the consensus key), so operators
/// see familiar 0x-addresses in logs, genesis and `metanode_getCommit`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ValidatorAddress(pub Address);

impl ValidatorAddress {
    /// The address of the validator holding `key`.
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        Self(Address::from_slice(&keccak256(key.as_bytes())[12..]))
    }
}

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl malachitebft_core_types::Address for ValidatorAddress {}

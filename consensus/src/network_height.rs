//! How far the network has got, from the validators' own signed messages:
//! the catch-up target in logs, metrics and `eth_syncing`.
//!
//! Each validator's highest height is taken only from a message its key
//! signed, and the network height is the highest one that validators with
//! more than a third of the voting power have reached, so at least one
//! honest validator is there: up to a third of Byzantine power signing
//! votes for absurd heights cannot move the target.

use crate::{Height, MetaContext, SignatureVerifier, ValidatorAddress, ValidatorSet};
use malachitebft_app_channel::app::types::{
    core::{Proposal as _, Validator as _, ValidatorSet as _, Vote as _},
    SignedConsensusMsg,
};
use std::collections::HashMap;

/// The height a consensus message is for and the validator it claims to be from.
pub(crate) fn signed_at(msg: &SignedConsensusMsg<MetaContext>) -> (Height, ValidatorAddress) {
    match msg {
        SignedConsensusMsg::Vote(v) => (v.height(), *v.validator_address()),
        SignedConsensusMsg::Proposal(p) => (p.height(), *p.validator_address()),
    }
}

/// Whether `msg` carries a valid signature by `key` for `chain_id`.
pub(crate) fn signature_valid(
    chain_id: u64,
    msg: &SignedConsensusMsg<MetaContext>,
    key: &ed25519_dalek::VerifyingKey,
) -> bool {
    let (bytes, signature) = match msg {
        SignedConsensusMsg::Vote(v) => (v.message.sign_bytes(chain_id), &v.signature),
        SignedConsensusMsg::Proposal(p) => (p.message.sign_bytes(chain_id), &p.signature),
    };
    SignatureVerifier::verify_bytes(&bytes, signature, key)
}

/// The highest signed height seen per validator.
pub struct NetworkHeight {
    chain_id: u64,
    validators: ValidatorSet,
    highest: HashMap<ValidatorAddress, u64>,
}

impl NetworkHeight {
    /// Nothing seen yet, for the validators of `chain_id`.
    pub fn new(chain_id: u64, validators: ValidatorSet) -> Self {
        Self { chain_id, validators, highest: HashMap::new() }
    }

    /// Whether `address` is in the validator set.
    pub fn is_validator(&self, address: &ValidatorAddress) -> bool {
        self.validators.get_by_address(address).is_some()
    }

    /// Takes a peer's message into account; returns the network height when
    /// it changed. A message is verified only when it would raise its
    /// validator's height, so a validator costs one check per height.
    pub fn observe(&mut self, msg: &SignedConsensusMsg<MetaContext>) -> Option<u64> {
        let (height, from) = signed_at(msg);
        let validator = self.validators.get_by_address(&from)?;
        if self.highest.get(&from).is_some_and(|h| *h >= height.0) {
            return None;
        }
        if !signature_valid(self.chain_id, msg, validator.public_key()) {
            return None;
        }
        let before = self.height();
        self.highest.insert(from, height.0);
        let after = self.height();
        (after != before).then_some(after)
    }

    /// The highest height that validators with more than a third of the
    /// voting power have signed a message at; 0 before that much power is seen.
    pub fn height(&self) -> u64 {
        let total = self.validators.total_voting_power();
        let mut seen: Vec<(u64, u64)> = self
            .validators
            .validators()
            .iter()
            .filter_map(|v| self.highest.get(&v.address).map(|h| (*h, v.voting_power())))
            .collect();
        seen.sort_unstable_by_key(|(height, _)| std::cmp::Reverse(*height));
        let mut power = 0u64;
        for (height, p) in seen {
            power += p;
            if power * 3 > total {
                return height;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Validator, ValidatorKey, ValidatorSigner};
    use futures::executor::block_on;
    use malachitebft_app_channel::app::types::core::{Context, NilOrVal, Round};
    use malachitebft_signing::Signer;

    fn vote(key: &ValidatorKey, signer_key: &ValidatorKey, height: u64) -> SignedConsensusMsg<MetaContext> {
        let signer = ValidatorSigner::new(signer_key.signing_key.clone(), 7);
        let vote = MetaContext.new_prevote(Height(height), Round::new(0), NilOrVal::Nil, key.address());
        SignedConsensusMsg::Vote(block_on(signer.sign_vote(vote)).unwrap())
    }

    #[test]
    fn the_target_needs_a_third_of_the_power_and_real_signatures() {
        let keys: Vec<ValidatorKey> = (0..4).map(|_| ValidatorKey::generate()).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| Validator::new(k.signing_key.verifying_key(), 1))).unwrap();
        let mut net = NetworkHeight::new(7, set);
        // One Byzantine validator claims a huge height: one of four is not more than a third.
        assert_eq!(net.observe(&vote(&keys[0], &keys[0], 1_000_000)), None);
        assert_eq!(net.height(), 0);
        // A second validator at 50: two of four have reached 50.
        assert_eq!(net.observe(&vote(&keys[1], &keys[1], 50)), Some(50));
        // A forged message claiming validator 2 is not counted.
        let outsider = ValidatorKey::generate();
        assert_eq!(net.observe(&vote(&keys[2], &outsider, 60)), None);
        // Nor is a key outside the set.
        assert_eq!(net.observe(&vote(&outsider, &outsider, 60)), None);
        assert_eq!(net.observe(&vote(&keys[2], &keys[2], 60)), Some(60));
        assert_eq!(net.height(), 60);
        // Older heights change nothing.
        assert_eq!(net.observe(&vote(&keys[2], &keys[2], 10)), None);
    }
}

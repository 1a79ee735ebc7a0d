//! Validators, the validator set, and weighted proposer rotation.

use crate::{Height, MetaContext, ValidatorAddress};
use ed25519_dalek::VerifyingKey;
use malachitebft_core_types::VotingPower;
use std::sync::Arc;

/// A validator: its consensus key and voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Derived from the public key.
    pub address: ValidatorAddress,
    /// ed25519 consensus key.
    pub public_key: VerifyingKey,
    /// Voting power (> 0).
    pub voting_power: VotingPower,
}

impl Validator {
    /// A validator with `public_key` and `voting_power`.
    pub fn new(public_key: VerifyingKey, voting_power: VotingPower) -> Self {
        Self { address: ValidatorAddress::from_public_key(&public_key), public_key, voting_power }
    }
}

impl malachitebft_core_types::Validator<MetaContext> for Validator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }

    fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// Why a validator set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators: nothing could ever be decided.
    #[error("the validator set is empty")]
    Empty,
    /// A validator with no power cannot vote.
    #[error("validator {0} has zero voting power")]
    ZeroPower(ValidatorAddress),
    /// The same key twice would count its votes twice.
    #[error("validator {0} appears more than once")]
    Duplicate(ValidatorAddress),
    /// Total power must fit in a u64 with room for thresholds.
    #[error("total voting power overflows")]
    Overflow,
}

/// Slots in one proposer rotation; powers are scaled down to fit.
const MAX_ROTATION: u64 = 4096;

/// The validators of a chain, in canonical order (power descending, then
/// address ascending, as CometBFT orders them), with the proposer rotation
/// that follows from their powers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: VotingPower,
    /// Index into `validators` of the proposer of each slot of one rotation.
    rotation: Arc<[u32]>,
}

impl ValidatorSet {
    /// Checks and orders `validators` and derives the rotation.
    pub fn new(validators: impl IntoIterator<Item = Validator>) -> Result<Self, ValidatorSetError> {
        let mut validators: Vec<Validator> = validators.into_iter().collect();
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let mut total: VotingPower = 0;
        for v in &validators {
            if v.voting_power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.address));
            }
            // Malachite computes thresholds as 2/3 of the total: keep headroom.
            total =
                total.checked_add(v.voting_power).filter(|t| *t <= u64::MAX / 4).ok_or(ValidatorSetError::Overflow)?;
        }
        validators.sort_by(|a, b| b.voting_power.cmp(&a.voting_power).then(a.address.cmp(&b.address)));
        let mut seen: Vec<&ValidatorAddress> = validators.iter().map(|v| &v.address).collect();
        seen.sort();
        if let Some(pair) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(ValidatorSetError::Duplicate(*pair[0]));
        }
        let rotation = rotation(&validators, total);
        Ok(Self { validators, total_power: total, rotation })
    }

    /// The proposer of `round` at `height`. Heights walk through the
    /// rotation and each new round moves one slot further, so a proposer
    /// that is down costs one round, not the height.
    pub fn proposer(&self, height: Height, round: u32) -> &Validator {
        let slot = height.0.wrapping_add(u64::from(round)) % self.rotation.len() as u64;
        &self.validators[self.rotation[slot as usize] as usize]
    }

    /// The validators in canonical order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }
}

/// Smooth weighted round-robin over the (scaled) powers: each validator gets
/// slots in proportion to its power, spread out rather than in one run.
fn rotation(validators: &[Validator], total: VotingPower) -> Arc<[u32]> {
    let weights: Vec<i128> = validators
        .iter()
        .map(|v| {
            if total <= MAX_ROTATION {
                i128::from(v.voting_power)
            } else {
                (i128::from(v.voting_power) * i128::from(MAX_ROTATION) / i128::from(total)).max(1)
            }
        })
        .collect();
    let sum: i128 = weights.iter().sum();
    let mut current = vec![0i128; weights.len()];
    (0..sum)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            // Ties go to the earlier validator in canonical order.
            let (best, _) =
                current.iter().enumerate().fold((0, i128::MIN), |acc, (i, c)| if *c > acc.1 { (i, *c) } else { acc });
            current[best] -= sum;
            best as u32
        })
        .collect()
}

impl malachitebft_core_types::ValidatorSet<MetaContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.total_power
    }

    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn validator(seed: u8, power: u64) -> Validator {
        Validator::new(SigningKey::from_bytes(&[seed; 32]).verifying_key(), power)
    }

    #[test]
    fn equal_powers_rotate_round_robin() {
        let set = ValidatorSet::new((1..=4).map(|i| validator(i, 10))).unwrap();
        let proposers: Vec<_> = (1..=8).map(|h| set.proposer(Height(h), 0).address).collect();
        assert_eq!(proposers[..4], proposers[4..]);
        let mut distinct = proposers[..4].to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        // The next round at a height is the next slot.
        assert_eq!(set.proposer(Height(1), 1).address, set.proposer(Height(2), 0).address);
    }

    #[test]
    fn proposals_follow_voting_power_and_are_spread_out() {
        let set = ValidatorSet::new([validator(1, 3), validator(2, 1)]).unwrap();
        let heavy = set.validators()[0].address;
        let slots: Vec<bool> = (0..4).map(|h| set.proposer(Height(h), 0).address == heavy).collect();
        assert_eq!(slots.iter().filter(|s| **s).count(), 3);
        // Smooth: the light validator is not pushed to the end of a run of four.
        let big = ValidatorSet::new([validator(1, 5), validator(2, 5), validator(3, 1)]).unwrap();
        let counts = (0..11).fold([0; 3], |mut c, h| {
            let p = big.proposer(Height(h), 0).address;
            c[big.validators().iter().position(|v| v.address == p).unwrap()] += 1;
            c
        });
        assert_eq!(counts, [5, 5, 1]);
    }

    #[test]
    fn huge_powers_are_scaled_into_the_rotation() {
        let set = ValidatorSet::new([validator(1, 1 << 40), validator(2, 1 << 40), validator(3, 1)]).unwrap();
        assert!(set.rotation.len() as u64 <= MAX_ROTATION + 3);
        assert!(set.rotation.contains(&2), "every validator gets at least one slot");
    }

    #[test]
    fn unusable_sets_are_refused() {
        assert_eq!(ValidatorSet::new([]), Err(ValidatorSetError::Empty));
        let zero = validator(1, 0);
        assert_eq!(ValidatorSet::new([zero.clone()]), Err(ValidatorSetError::ZeroPower(zero.address)));
        let dup = validator(2, 1);
        assert_eq!(ValidatorSet::new([dup.clone(), dup.clone()]), Err(ValidatorSetError::Duplicate(dup.address)));
        assert_eq!(ValidatorSet::new([validator(1, u64::MAX), validator(2, 1)]), Err(ValidatorSetError::Overflow));
    }
}

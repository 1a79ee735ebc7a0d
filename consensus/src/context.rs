//! Malachite's `Context` for MetaNode.

use crate::{BlockValue, Ed25519, Height, Proposal, ProposalPart, Validator, ValidatorAddress, ValidatorSet, Vote};
use alloy_primitives::B256;
use malachitebft_core_types::{Context, LinearTimeouts, NilOrVal, Round, VoteType};

/// Ties Malachite's consensus to our types. Stateless: everything a decision
/// depends on (validator set, timeouts) comes per height from the
/// application, so one value serves every height.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaContext;

impl Context for MetaContext {
    type Address = ValidatorAddress;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockValue;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(&self, validator_set: &'a ValidatorSet, height: Height, round: Round) -> &'a Validator {
        validator_set.proposer(height, round.as_u32().unwrap_or(0))
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> Proposal {
        Proposal { height, round, value, pol_round, proposer: address }
    }

    fn new_prevote(&self, height: Height, round: Round, value: NilOrVal<B256>, address: ValidatorAddress) -> Vote {
        Vote { height, round, value, vote_type: VoteType::Prevote, validator: address, extension: None }
    }

    fn new_precommit(&self, height: Height, round: Round, value: NilOrVal<B256>, address: ValidatorAddress) -> Vote {
        Vote { height, round, value, vote_type: VoteType::Precommit, validator: address, extension: None }
    }
}

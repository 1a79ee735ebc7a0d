//! Prevotes and precommits.

use crate::{signing::sign_bytes_prefix, Height, MetaContext, ValidatorAddress};
use alloy_primitives::B256;
use malachitebft_core_types::{NilOrVal, Round, SignedExtension, VoteType};

/// A vote for a block hash (or nil) at one height and round.
#[derive(Clone, Debug)]
pub struct Vote {
    /// Height voted at.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// The block hash voted for, or nil.
    pub value: NilOrVal<B256>,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Who votes.
    pub validator: ValidatorAddress,
    /// Unused (vote extensions are disabled); kept because Malachite's vote type carries one.
    pub extension: Option<SignedExtension<MetaContext>>,
}

impl Vote {
    /// The bytes a validator signs. A pure function of height, round, type,
    /// value and voter, because Malachite rebuilds votes from certificates
    /// to check their signatures; the extension is not covered.
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        let mut out = sign_bytes_prefix(b"metanode/vote/v1", chain_id, self.height, self.round);
        out.push(match self.vote_type {
            VoteType::Prevote => 1,
            VoteType::Precommit => 2,
        });
        match &self.value {
            NilOrVal::Nil => out.push(0),
            NilOrVal::Val(hash) => {
                out.push(1);
                out.extend_from_slice(hash.as_slice());
            }
        }
        out.extend_from_slice(self.validator.0.as_slice());
        out
    }
}

/// Equality ignores the extension, as Malachite requires: replaying the WAL
/// compares a rebuilt vote with the recorded one.
impl PartialEq for Vote {
    fn eq(&self, other: &Self) -> bool {
        self.height == other.height
            && self.round == other.round
            && self.value == other.value
            && self.vote_type == other.vote_type
            && self.validator == other.validator
    }
}

impl Eq for Vote {}

impl malachitebft_core_types::Vote<MetaContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<B256> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<B256> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.validator
    }

    fn extension(&self) -> Option<&SignedExtension<MetaContext>> {
        self.extension.as_ref()
    }

    fn take_extension(&mut self) -> Option<SignedExtension<MetaContext>> {
        self.extension.take()
    }

    fn extend(self, extension: SignedExtension<MetaContext>) -> Self {
        Self { extension: Some(extension), ..self }
    }
}

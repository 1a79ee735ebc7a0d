//! Proposals and the parts a proposed block is streamed in.

use crate::{signing::sign_bytes_prefix, BlockValue, Height, MetaContext, Signature, ValidatorAddress};
use alloy_primitives::B256;
use malachitebft_core_types::Round;

/// A signed proposal names the block hash; the block follows as parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height proposed at.
    pub height: Height,
    /// Round proposed in.
    pub round: Round,
    /// The proposed block's hash.
    pub value: BlockValue,
    /// The round of the polka this value was locked in, or nil for a fresh block.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: ValidatorAddress,
}

impl Proposal {
    /// The bytes the proposer signs.
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        let mut out = sign_bytes_prefix(b"metanode/proposal/v1", chain_id, self.height, self.round);
        out.extend_from_slice(self.value.0.as_slice());
        out.extend_from_slice(&self.pol_round.as_i64().to_be_bytes());
        out.extend_from_slice(self.proposer.0.as_slice());
        out
    }
}

impl malachitebft_core_types::Proposal<MetaContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockValue {
        &self.value
    }

    fn take_value(self) -> BlockValue {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// Opens a proposal stream: who proposes what, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalInit {
    /// Height of the proposal.
    pub height: Height,
    /// Round of the proposal.
    pub round: Round,
    /// Polka round of a re-proposed value, or nil.
    pub pol_round: Round,
    /// The proposer, who signs the stream's end.
    pub proposer: ValidatorAddress,
}

/// The first part of a stream: the [`ProposalInit`], the keccak256 hash of
/// every data chunk to follow, and the proposer's signature over both. A
/// receiver checks it on arrival (the proposer of that height and round
/// signed it) and then each chunk against its hash, so junk is refused when
/// it arrives, not after a whole block's worth has been held, and a stream
/// relayed by several peers is assembled once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInit {
    /// Who proposes what, where.
    pub init: ProposalInit,
    /// keccak256 of each data chunk, in order.
    pub chunk_hashes: Vec<B256>,
    /// The proposer's signature over [`SignedInit::sign_bytes`].
    pub signature: Signature,
}

impl SignedInit {
    /// The bytes the proposer signs: the init fields and the chunk hashes,
    /// under the chain id.
    pub fn sign_bytes(chain_id: u64, init: &ProposalInit, chunk_hashes: &[B256]) -> Vec<u8> {
        let mut out = sign_bytes_prefix(b"metanode/proposal-init/v1", chain_id, init.height, init.round);
        out.reserve(chunk_hashes.len() * 32 + 32);
        out.extend_from_slice(&init.pol_round.as_i64().to_be_bytes());
        out.extend_from_slice(init.proposer.0.as_slice());
        out.extend_from_slice(&(chunk_hashes.len() as u32).to_be_bytes());
        for hash in chunk_hashes {
            out.extend_from_slice(hash.as_slice());
        }
        out
    }
}

/// Closes a proposal stream with the proposer's signature over the stream,
/// so a relaying peer cannot splice in a different block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalFin {
    /// Signature over [`ProposalPart::stream_sign_bytes`].
    pub signature: Signature,
}

/// One part of a streamed proposal: init, block bytes, fin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalPart {
    /// First part.
    Init(SignedInit),
    /// A chunk of the RLP-encoded block.
    Data(Vec<u8>),
    /// Last part.
    Fin(ProposalFin),
}

impl ProposalPart {
    /// The bytes the proposer signs in the fin part: the init fields and
    /// every data chunk in order, under the chain id.
    pub fn stream_sign_bytes(chain_id: u64, init: &ProposalInit, data: &[&[u8]]) -> Vec<u8> {
        let mut out = sign_bytes_prefix(b"metanode/proposal-stream/v1", chain_id, init.height, init.round);
        out.reserve(data.iter().map(|d| d.len() + 4).sum());
        out.extend_from_slice(&init.pol_round.as_i64().to_be_bytes());
        out.extend_from_slice(init.proposer.0.as_slice());
        for chunk in data {
            out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }
}

impl malachitebft_core_types::ProposalPart<MetaContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, Self::Init(_))
    }

    fn is_last(&self) -> bool {
        matches!(self, Self::Fin(_))
    }
}

//! [`MetaCodec`]: the one codec Malachite uses for the network, the WAL and
//! value sync. Every type goes through the [`Wire`] format, so what a node
//! writes to its WAL is byte-for-byte what it would send a peer.

use crate::{
    metrics::ConsensusMetrics,
    parts::{CHUNK_BYTES, MAX_BLOCK_BYTES},
    wire::{Reader, Wire, WireError, Writer},
    BlockValue, Height, MetaContext, Proposal, ProposalFin, ProposalInit, ProposalPart, Signature, SignedInit,
    ValidatorAddress, Vote,
};
use alloy_primitives::{Address, B256};
use bytes::Bytes;
use malachitebft_app_channel::app::{
    consensus::LivenessMsg,
    streaming::{StreamContent, StreamId, StreamMessage},
    types::{
        codec::{Codec, HasEncodedLen},
        core::{
            CommitCertificate, CommitSignature, ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal,
            PolkaCertificate, PolkaSignature, Round, RoundCertificate, RoundCertificateType, RoundSignature,
            SignedMessage, ValidatorProof, Validity, VoteType,
        },
        sync::{RawDecidedValue, Request, Response, Status},
        PeerId, ProposedValue, SignedConsensusMsg,
    },
};
use malachitebft_sync::{ValueRequest, ValueResponse};
use std::sync::Arc;

/// Room for a message's fixed fields (ids, heights, a signature) beside its payload.
const ENVELOPE_BYTES: usize = 1024;

/// The largest value-sync response: one block of the largest size a
/// proposal may have, with room for its certificate. Servers fill responses
/// up to a smaller soft size and never past this; the sync protocol is
/// configured with the same limit, so no peer can make a node read more.
pub const MAX_SYNC_RESPONSE_BYTES: usize = MAX_BLOCK_BYTES + (1 << 20);

/// Encodes and decodes every message consensus sends, stores or syncs.
///
/// The copy the network uses counts what it refuses (peers' malformed and
/// oversized messages, which Malachite then drops); the WAL's and sync's
/// copies count nothing.
#[derive(Clone, Default)]
pub struct MetaCodec {
    refusals: Option<Arc<ConsensusMetrics>>,
}

impl MetaCodec {
    /// A codec that counts every message it cannot decode in `metrics`.
    pub fn counting(metrics: Arc<ConsensusMetrics>) -> Self {
        Self { refusals: Some(metrics) }
    }
}

impl std::fmt::Debug for MetaCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCodec").field("counting", &self.refusals.is_some()).finish()
    }
}

impl<T: Wire + Send + Sync + 'static> Codec<T> for MetaCodec {
    type Error = WireError;

    fn decode(&self, bytes: Bytes) -> Result<T, WireError> {
        let result = crate::wire::decode(&bytes);
        if let (Err(e), Some(metrics)) = (&result, &self.refusals) {
            metrics.dropped_message(match e {
                WireError::Oversized { .. } => "oversized",
                _ => "malformed",
            });
        }
        result
    }

    fn encode(&self, msg: &T) -> Result<Bytes, WireError> {
        Ok(Bytes::from(crate::wire::encode(msg)))
    }
}

impl HasEncodedLen<Response<MetaContext>> for MetaCodec {
    fn encoded_len(&self, msg: &Response<MetaContext>) -> Result<usize, WireError> {
        Ok(crate::wire::encode(msg).len())
    }
}

/// `Wire` for a struct: its fields in order.
macro_rules! wire_struct {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {$(
        impl Wire for $ty {
            fn put(&self, w: &mut Writer) {
                $(self.$field.put(w);)*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(Self { $($field: Wire::get(r)?),* })
            }
        }
    )*};
}

wire_struct! {
    Vote { height, round, value, vote_type, validator, extension }
    Proposal { height, round, value, pol_round, proposer }
    PolkaSignature<MetaContext> { address, signature }
    PolkaCertificate<MetaContext> { height, round, value_id, polka_signatures }
    RoundSignature<MetaContext> { vote_type, value_id, address, signature }
    ProposedValue<MetaContext> { height, round, valid_round, proposer, value, validity }
    ValidatorProof<MetaContext> { public_key, peer_id, signature }
    CommitSignature<MetaContext> { address, signature }
    CommitCertificate<MetaContext> { height, round, value_id, commit_signatures }
    ExtendedCommitSignature<MetaContext> { address, signature, extension }
    ExtendedCommitCertificate<MetaContext> { height, round, value_id, commit_signatures }
    Status<MetaContext> { peer_id, tip_height, history_min_height }
    ProposalInit { height, round, pol_round, proposer }
    SignedInit { init, chunk_hashes, signature }
    ProposalFin { signature }
}

/// Reads an enum tag, or fails naming the enum.
fn tag_error<T>(what: &'static str, tag: u8) -> Result<T, WireError> {
    Err(WireError::UnknownTag { what, tag })
}

impl Wire for Height {
    const MIN_BYTES: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.u64(self.0);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Height(r.u64()?))
    }
}

impl Wire for Round {
    fn put(&self, w: &mut Writer) {
        match self {
            Round::Nil => w.u8(0),
            Round::Some(n) => {
                w.u8(1);
                w.u32(*n);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(Round::Nil),
            1 => Ok(Round::Some(r.u32()?)),
            tag => tag_error("round", tag),
        }
    }
}

impl Wire for RawDecidedValue<MetaContext> {
    /// The block's length prefix and a certificate with no signatures.
    const MIN_BYTES: usize = Bytes::MIN_BYTES + Height::MIN_BYTES + 1 + B256::MIN_BYTES + 4;
    fn put(&self, w: &mut Writer) {
        self.value_bytes.put(w);
        self.certificate.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self { value_bytes: Wire::get(r)?, certificate: Wire::get(r)? })
    }
}

impl Wire for ValidatorAddress {
    const MIN_BYTES: usize = 20;
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(ValidatorAddress(Address::get(r)?))
    }
}

impl Wire for BlockValue {
    const MIN_BYTES: usize = 32;
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(BlockValue(B256::get(r)?))
    }
}

impl Wire for Signature {
    const MIN_BYTES: usize = 64;
    fn put(&self, w: &mut Writer) {
        w.fixed(&self.0.to_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Signature(ed25519_dalek::Signature::from_bytes(&r.array::<64>()?)))
    }
}

impl Wire for NilOrVal<B256> {
    fn put(&self, w: &mut Writer) {
        match self {
            NilOrVal::Nil => w.u8(0),
            NilOrVal::Val(id) => {
                w.u8(1);
                id.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(NilOrVal::Nil),
            1 => Ok(NilOrVal::Val(B256::get(r)?)),
            tag => tag_error("nil-or-value", tag),
        }
    }
}

impl Wire for VoteType {
    fn put(&self, w: &mut Writer) {
        w.u8(match self {
            VoteType::Prevote => 1,
            VoteType::Precommit => 2,
        });
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            1 => Ok(VoteType::Prevote),
            2 => Ok(VoteType::Precommit),
            tag => tag_error("vote type", tag),
        }
    }
}

impl<M: Wire> Wire for SignedMessage<MetaContext, M> {
    fn put(&self, w: &mut Writer) {
        self.message.put(w);
        self.signature.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let message = M::get(r)?;
        Ok(SignedMessage::new(message, Signature::get(r)?))
    }
}

impl Wire for ProposalPart {
    fn put(&self, w: &mut Writer) {
        match self {
            ProposalPart::Init(init) => {
                w.u8(0);
                init.put(w);
            }
            ProposalPart::Data(data) => {
                w.u8(1);
                w.bytes(data);
            }
            ProposalPart::Fin(fin) => {
                w.u8(2);
                fin.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(ProposalPart::Init(SignedInit::get(r)?)),
            1 => Ok(ProposalPart::Data(r.bytes()?.to_vec())),
            2 => Ok(ProposalPart::Fin(ProposalFin::get(r)?)),
            tag => tag_error("proposal part", tag),
        }
    }
}

impl Wire for StreamMessage<ProposalPart> {
    /// One data chunk (the largest part) and its stream header.
    const MAX_BYTES: usize = CHUNK_BYTES + ENVELOPE_BYTES;
    fn put(&self, w: &mut Writer) {
        self.stream_id.to_bytes().put(w);
        w.u64(self.sequence);
        match &self.content {
            StreamContent::Data(part) => {
                w.u8(0);
                part.put(w);
            }
            StreamContent::Fin => w.u8(1),
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let stream_id = StreamId::new(Bytes::get(r)?);
        let sequence = r.u64()?;
        let content = match r.u8()? {
            0 => StreamContent::Data(ProposalPart::get(r)?),
            1 => StreamContent::Fin,
            tag => return tag_error("stream content", tag),
        };
        Ok(StreamMessage::new(stream_id, sequence, content))
    }
}

impl Wire for SignedConsensusMsg<MetaContext> {
    /// A vote or proposal carries fixed-size fields only (the value is a hash): about 150 bytes.
    const MAX_BYTES: usize = ENVELOPE_BYTES;
    fn put(&self, w: &mut Writer) {
        match self {
            SignedConsensusMsg::Vote(v) => {
                w.u8(0);
                v.put(w);
            }
            SignedConsensusMsg::Proposal(p) => {
                w.u8(1);
                p.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(SignedConsensusMsg::Vote(SignedMessage::get(r)?)),
            1 => Ok(SignedConsensusMsg::Proposal(SignedMessage::get(r)?)),
            tag => tag_error("consensus message", tag),
        }
    }
}

impl Wire for RoundCertificate<MetaContext> {
    fn put(&self, w: &mut Writer) {
        self.height.put(w);
        self.round.put(w);
        w.u8(match self.cert_type {
            RoundCertificateType::Skip => 0,
            RoundCertificateType::Precommit => 1,
        });
        self.round_signatures.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let height = Height::get(r)?;
        let round = Round::get(r)?;
        let cert_type = match r.u8()? {
            0 => RoundCertificateType::Skip,
            1 => RoundCertificateType::Precommit,
            tag => return tag_error("round certificate type", tag),
        };
        Ok(RoundCertificate { height, round, cert_type, round_signatures: Vec::get(r)? })
    }
}

impl Wire for LivenessMsg<MetaContext> {
    /// A round certificate holds one signature (~120 bytes) per validator: 1 MiB is some 8,000 validators.
    const MAX_BYTES: usize = 1 << 20;
    fn put(&self, w: &mut Writer) {
        match self {
            LivenessMsg::Vote(v) => {
                w.u8(0);
                v.put(w);
            }
            LivenessMsg::PolkaCertificate(c) => {
                w.u8(1);
                c.put(w);
            }
            LivenessMsg::SkipRoundCertificate(c) => {
                w.u8(2);
                c.put(w);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(LivenessMsg::Vote(SignedMessage::get(r)?)),
            1 => Ok(LivenessMsg::PolkaCertificate(PolkaCertificate::get(r)?)),
            2 => Ok(LivenessMsg::SkipRoundCertificate(RoundCertificate::get(r)?)),
            tag => tag_error("liveness message", tag),
        }
    }
}

impl Wire for Validity {
    fn put(&self, w: &mut Writer) {
        w.u8(u8::from(self.is_valid()));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(Validity::Invalid),
            1 => Ok(Validity::Valid),
            tag => tag_error("validity", tag),
        }
    }
}

impl Wire for PeerId {
    fn put(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        PeerId::from_bytes(r.bytes()?).map_err(|_| WireError::Invalid("peer id"))
    }
}

impl Wire for Request<MetaContext> {
    /// Two heights.
    const MAX_BYTES: usize = ENVELOPE_BYTES;
    fn put(&self, w: &mut Writer) {
        let Request::ValueRequest(req) = self;
        req.range.start().put(w);
        req.range.end().put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let start = Height::get(r)?;
        let end = Height::get(r)?;
        Ok(Request::ValueRequest(ValueRequest::new(start..=end)))
    }
}

impl Wire for Response<MetaContext> {
    const MAX_BYTES: usize = MAX_SYNC_RESPONSE_BYTES;
    fn put(&self, w: &mut Writer) {
        let Response::ValueResponse(resp) = self;
        resp.start_height.put(w);
        resp.values.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let start_height = Height::get(r)?;
        Ok(Response::ValueResponse(ValueResponse { start_height, values: Vec::get(r)? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parts, ValidatorKey, ValidatorSigner};
    use futures::executor::block_on;
    use malachitebft_app_channel::app::types::core::Context;
    use malachitebft_signing::Signer;

    fn signer() -> ValidatorSigner {
        ValidatorSigner::new(ValidatorKey::generate().signing_key, 7)
    }

    /// Encodes, decodes, and checks every strict prefix is refused.
    fn round_trip<T: Wire + PartialEq + std::fmt::Debug + Send + Sync + 'static>(item: T) {
        let bytes = Codec::<T>::encode(&MetaCodec::default(), &item).unwrap();
        assert_eq!(Codec::<T>::decode(&MetaCodec::default(), bytes.clone()).unwrap(), item);
        for cut in 0..bytes.len() {
            assert!(Codec::<T>::decode(&MetaCodec::default(), bytes.slice(..cut)).is_err(), "prefix {cut} decoded");
        }
    }

    #[test]
    fn every_message_kind_round_trips_and_truncations_fail() {
        let s = signer();
        let vote = MetaContext.new_prevote(Height(3), Round::new(1), NilOrVal::Val(B256::repeat_byte(1)), s.address());
        let signed_vote = block_on(s.sign_vote(vote)).unwrap();
        round_trip(SignedConsensusMsg::<MetaContext>::Vote(signed_vote.clone()));
        let proposal =
            MetaContext.new_proposal(Height(3), Round::new(1), BlockValue(B256::ZERO), Round::Nil, s.address());
        round_trip(SignedConsensusMsg::<MetaContext>::Proposal(block_on(s.sign_proposal(proposal)).unwrap()));
        let init =
            ProposalInit { height: Height(3), round: Round::new(0), pol_round: Round::Nil, proposer: s.address() };
        for msg in parts::split(init, &[5u8; 1000], 7, &s) {
            round_trip(msg);
        }
        round_trip(LivenessMsg::<MetaContext>::PolkaCertificate(PolkaCertificate {
            height: Height(3),
            round: Round::new(1),
            value_id: B256::repeat_byte(1),
            polka_signatures: vec![PolkaSignature { address: s.address(), signature: signed_vote.signature }],
        }));
        let cert = ExtendedCommitCertificate::<MetaContext> {
            height: Height(3),
            round: Round::new(0),
            value_id: B256::repeat_byte(2),
            commit_signatures: vec![ExtendedCommitSignature {
                address: s.address(),
                signature: signed_vote.signature,
                extension: None,
            }],
        };
        round_trip(Response::<MetaContext>::ValueResponse(ValueResponse {
            start_height: Height(3),
            values: vec![RawDecidedValue { value_bytes: Bytes::from_static(b"block"), certificate: cert }],
        }));
        round_trip(Request::<MetaContext>::ValueRequest(ValueRequest::new(Height(1)..=Height(9))));
    }

    #[test]
    fn garbage_never_panics_and_is_refused() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2_000usize {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let b = Bytes::from(bytes);
            let _ = Codec::<SignedConsensusMsg<MetaContext>>::decode(&MetaCodec::default(), b.clone());
            let _ = Codec::<StreamMessage<ProposalPart>>::decode(&MetaCodec::default(), b.clone());
            let _ = Codec::<LivenessMsg<MetaContext>>::decode(&MetaCodec::default(), b.clone());
            let _ = Codec::<Response<MetaContext>>::decode(&MetaCodec::default(), b.clone());
            let _ = Codec::<Status<MetaContext>>::decode(&MetaCodec::default(), b);
        }
        // A vote with an unknown type tag is an error naming the field.
        let err =
            Codec::<Vote>::decode(&MetaCodec::default(), Bytes::from(vec![0; 8 + 1 + 1 + 1 + 9 + 20 + 1])).unwrap_err();
        assert!(err.to_string().contains("tag"), "{err}");
    }

    #[test]
    fn the_network_codec_counts_what_it_refuses() {
        let metrics = Arc::new(ConsensusMetrics::default());
        let codec = MetaCodec::counting(metrics.clone());
        let s = signer();
        let vote = MetaContext.new_prevote(Height(3), Round::new(0), NilOrVal::Nil, s.address());
        let good =
            Codec::encode(&codec, &SignedConsensusMsg::<MetaContext>::Vote(block_on(s.sign_vote(vote)).unwrap()))
                .unwrap();
        assert!(Codec::<SignedConsensusMsg<MetaContext>>::decode(&codec, good.clone()).is_ok());
        // A valid vote padded to 64 KiB: refused by length before it is parsed.
        let mut padded = good.to_vec();
        padded.resize(64 * 1024, 0);
        let err = Codec::<SignedConsensusMsg<MetaContext>>::decode(&codec, Bytes::from(padded)).unwrap_err();
        assert!(matches!(err, WireError::Oversized { len: 65536, max: ENVELOPE_BYTES }), "{err}");
        assert!(Codec::<SignedConsensusMsg<MetaContext>>::decode(&codec, good.slice(..good.len() - 1)).is_err());
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("metanode_dropped_messages_total{reason=\"oversized\"} 1"), "{text}");
        assert!(text.contains("metanode_dropped_messages_total{reason=\"malformed\"} 1"), "{text}");
        // The WAL's codec counts nothing.
        let _ = Codec::<SignedConsensusMsg<MetaContext>>::decode(&MetaCodec::default(), Bytes::from_static(b"x"));
        let mut again = String::new();
        metrics.render(&mut again);
        assert_eq!(text, again);
    }
}

//! Proposal streams: cutting a block into signed parts, and putting the
//! parts that arrive (in any order, possibly twice, possibly through
//! different neighbours) back together.
//!
//! Nothing a peer sends is held on trust. A stream opens with a
//! [`SignedInit`] that names the chunk hashes and is signed by the proposer
//! of its height and round; it is checked when it arrives, and every chunk
//! is checked against its hash when it arrives. So what is held is only
//! what a validator signed, once per signed init however many peers relay
//! it, and a peer that sends anything else is caught by its first message.
//! Parts that come before their init are held in a small allowance per
//! peer, and no peer's parts ever evict another peer's.

use crate::{
    Height, ProposalFin, ProposalInit, ProposalPart, SignatureVerifier, SignedInit, ValidatorAddress, ValidatorSet,
    ValidatorSigner,
};
use alloy_primitives::{keccak256, B256};
use bytes::Bytes;
use malachitebft_app_channel::app::{
    streaming::{StreamContent, StreamId, StreamMessage},
    types::{core::Round, PeerId},
};
use std::collections::{HashMap, HashSet};

/// Block bytes per data part.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Largest encoded block accepted in a stream.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;
/// Most chunks one stream may announce.
const MAX_CHUNKS: usize = MAX_BLOCK_BYTES / CHUNK_BYTES;
/// Heights ahead of ours whose streams are accepted.
pub const FUTURE_HEIGHTS: u64 = 2;
/// Rounds ahead of the current one (or of round 0 at a future height)
/// whose streams are accepted.
pub const ROUND_WINDOW: u32 = 16;
/// Distinct signed inits kept for one proposer, height and round: the
/// first, and one more as evidence of equivocation; more are dropped.
const VERSIONS_PER_SLOT: usize = 2;
/// Streams one publisher may have open at once.
const STREAMS_PER_PEER: usize = 8;
/// Parts one publisher may send before their stream's init. The broadcast
/// transport sends each message on a substream of its own, up to 8 at once,
/// so an honest proposer's first chunks can overtake its init; this leaves
/// room for several times that.
const EARLY_PARTS_PER_PEER: usize = 32;
/// Bytes of parts held before their init, over all publishers.
const EARLY_BYTES_TOTAL: usize = 128 * 1024 * 1024;

/// A whole proposal stream, its init and every chunk checked.
#[derive(Debug, Clone)]
pub struct AssembledProposal {
    /// Who proposes what, where.
    pub init: ProposalInit,
    /// The block, in chunks.
    pub chunks: Vec<Vec<u8>>,
    /// The proposer's signature over the stream.
    pub fin: ProposalFin,
}

impl AssembledProposal {
    /// The block bytes.
    pub fn block(&self) -> Bytes {
        Bytes::from(self.chunks.concat())
    }
}

/// Why a part was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartError {
    /// The stream would exceed [`MAX_BLOCK_BYTES`].
    #[error("proposal stream exceeds {MAX_BLOCK_BYTES} bytes")]
    TooLarge,
    /// Parts in the wrong places (an init not first, a chunk past the announced end).
    #[error("malformed proposal stream: {0}")]
    Malformed(&'static str),
    /// The init names a validator that is not the proposer of its height and round.
    #[error("stream init from {claimed}, but the proposer is {expected}")]
    WrongProposer {
        /// Who the init names.
        claimed: ValidatorAddress,
        /// Who proposes at that height and round.
        expected: ValidatorAddress,
    },
    /// The init's signature is not the proposer's.
    #[error("stream init with a bad signature")]
    BadSignature,
    /// A chunk whose hash is not the one the signed init announced.
    #[error("chunk {0} does not match the signed init")]
    BadChunk(u64),
    /// More parts before their init than any honest publisher sends.
    #[error("more than {EARLY_PARTS_PER_PEER} parts before their stream's init")]
    TooEarly,
    /// Not wrong, not kept: a height or round outside the window, or a
    /// limit reached. The label is for the dropped-messages counter.
    #[error("proposal part not kept: {0}")]
    Ignored(&'static str),
}

impl PartError {
    /// Whether the part proves its publisher dishonest: honest validators
    /// send none of these, whatever their view of the chain.
    pub fn condemns_publisher(&self) -> bool {
        !matches!(self, Self::Ignored(_))
    }

    /// The label counted in `metanode_dropped_messages_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge | Self::Malformed(_) | Self::TooEarly => "proposal_part",
            Self::WrongProposer { .. } => "wrong_proposer",
            Self::BadSignature => "bad_signature",
            Self::BadChunk(_) => "bad_chunk",
            Self::Ignored(reason) => reason,
        }
    }
}

/// What streams are checked against: where consensus is, and who may propose.
pub struct StreamWindow<'a> {
    /// The chain the signatures are for.
    pub chain_id: u64,
    /// The height consensus is deciding.
    pub height: Height,
    /// The round consensus is in at that height.
    pub round: Round,
    /// The validators (the same at every height).
    pub validators: &'a ValidatorSet,
}

impl StreamWindow<'_> {
    /// Checks a stream's init: a height and round in the window, the
    /// proposer of that height and round, its signature. Returns the signed
    /// bytes, whose hash names the stream.
    fn check(&self, signed: &SignedInit) -> Result<Vec<u8>, PartError> {
        let init = &signed.init;
        if init.height < self.height {
            return Err(PartError::Ignored("stale"));
        }
        if init.height.0 > self.height.0 + FUTURE_HEIGHTS {
            return Err(PartError::Ignored("far_future"));
        }
        let Some(round) = init.round.as_u32() else { return Err(PartError::Malformed("init without a round")) };
        let base = if init.height == self.height { self.round.as_u32().unwrap_or(0) } else { 0 };
        if round > base.saturating_add(ROUND_WINDOW) {
            return Err(PartError::Ignored("far_future_round"));
        }
        if signed.chunk_hashes.is_empty() {
            return Err(PartError::Malformed("no block data"));
        }
        if signed.chunk_hashes.len() > MAX_CHUNKS {
            return Err(PartError::TooLarge);
        }
        let expected = self.validators.proposer(init.height, round);
        if init.proposer != expected.address {
            return Err(PartError::WrongProposer { claimed: init.proposer, expected: expected.address });
        }
        let bytes = SignedInit::sign_bytes(self.chain_id, init, &signed.chunk_hashes);
        if !SignatureVerifier::verify_bytes(&bytes, &signed.signature, &expected.public_key) {
            return Err(PartError::BadSignature);
        }
        Ok(bytes)
    }
}

/// The parts that carry one proposal, ready to publish.
pub fn split(
    init: ProposalInit,
    block: &[u8],
    chain_id: u64,
    signer: &ValidatorSigner,
) -> Vec<StreamMessage<ProposalPart>> {
    let id = stream_id(init.height, init.round);
    let chunks: Vec<&[u8]> = block.chunks(CHUNK_BYTES).collect();
    let chunk_hashes: Vec<B256> = chunks.iter().map(keccak256).collect();
    let init_signature = signer.sign_bytes(&SignedInit::sign_bytes(chain_id, &init, &chunk_hashes));
    let signature = signer.sign_bytes(&ProposalPart::stream_sign_bytes(chain_id, &init, &chunks));
    let mut parts = Vec::with_capacity(chunks.len() + 3);
    parts.push(ProposalPart::Init(SignedInit { init, chunk_hashes, signature: init_signature }));
    parts.extend(chunks.iter().map(|c| ProposalPart::Data(c.to_vec())));
    parts.push(ProposalPart::Fin(ProposalFin { signature }));
    let fin_seq = parts.len() as u64;
    let mut out: Vec<_> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p)))
        .collect();
    out.push(StreamMessage::new(id, fin_seq, StreamContent::Fin));
    out
}

/// A stream id unique per proposer, height and round.
fn stream_id(height: Height, round: Round) -> StreamId {
    let mut id = height.0.to_be_bytes().to_vec();
    id.extend_from_slice(&round.as_i64().to_be_bytes());
    StreamId::new(Bytes::from(id))
}

/// One signed init's block, chunk by chunk.
struct Assembly {
    init: ProposalInit,
    hashes: Vec<B256>,
    chunks: Vec<Option<Vec<u8>>>,
    missing: usize,
    fin: Option<ProposalFin>,
    /// Handed out already; later copies from other relays are ignored.
    done: bool,
}

impl Assembly {
    fn new(signed: SignedInit) -> Self {
        let n = signed.chunk_hashes.len();
        Self {
            init: signed.init,
            hashes: signed.chunk_hashes,
            chunks: vec![None; n],
            missing: n,
            fin: None,
            done: false,
        }
    }

    /// Takes one part at `seq` (0 is the init, then the chunks, then the fin).
    fn add(&mut self, seq: u64, part: ProposalPart) -> Result<Option<AssembledProposal>, PartError> {
        if self.done {
            return Ok(None);
        }
        let n = self.hashes.len() as u64;
        match part {
            ProposalPart::Init(_) => return Err(PartError::Malformed("init not first")),
            ProposalPart::Data(data) => {
                if seq == 0 || seq > n {
                    return Err(PartError::Malformed("chunk outside the announced stream"));
                }
                let i = (seq - 1) as usize;
                if keccak256(&data) != self.hashes[i] {
                    return Err(PartError::BadChunk(seq));
                }
                if self.chunks[i].is_none() {
                    self.chunks[i] = Some(data);
                    self.missing -= 1;
                }
            }
            ProposalPart::Fin(fin) => {
                if seq != n + 1 {
                    return Err(PartError::Malformed("fin not after the last chunk"));
                }
                self.fin.get_or_insert(fin);
            }
        }
        if self.missing > 0 || self.fin.is_none() {
            return Ok(None);
        }
        self.done = true;
        let chunks = std::mem::take(&mut self.chunks).into_iter().flatten().collect();
        let fin = self.fin.take().ok_or(PartError::Malformed("no fin"))?;
        Ok(Some(AssembledProposal { init: self.init.clone(), chunks, fin }))
    }
}

/// Parts a publisher sent before its stream's init.
#[derive(Default)]
struct EarlyParts {
    parts: Vec<(u64, ProposalPart)>,
    bytes: usize,
}

/// The proposer, height and round a stream is for.
type Slot = (ValidatorAddress, Height, Round);

/// Streams being assembled.
#[derive(Default)]
pub struct PartStreams {
    /// By the hash of their signed init.
    assemblies: HashMap<B256, Assembly>,
    /// Signed inits seen per slot; two means the proposer equivocated.
    slots: HashMap<Slot, Vec<B256>>,
    /// Which assembly each publisher's stream feeds.
    routes: HashMap<(PeerId, StreamId), B256>,
    /// Parts that came before their init, by publisher and stream.
    early: HashMap<(PeerId, StreamId), EarlyParts>,
    early_bytes: usize,
    /// Proposers seen signing two inits for one height and round, not yet reported.
    equivocations: Vec<Slot>,
}

impl PartStreams {
    /// Adds one message from `publisher`; returns the proposal once its stream is whole.
    pub fn insert(
        &mut self,
        publisher: PeerId,
        msg: StreamMessage<ProposalPart>,
        window: &StreamWindow<'_>,
    ) -> Result<Option<AssembledProposal>, PartError> {
        let key = (publisher, msg.stream_id);
        let StreamContent::Data(part) = msg.content else {
            // The stream's closing message: the fin part already said all there is.
            return Ok(None);
        };
        if let ProposalPart::Init(signed) = part {
            return self.open(key, msg.sequence, signed, window);
        }
        match self.routes.get(&key) {
            Some(digest) => match self.assemblies.get_mut(digest) {
                Some(assembly) => assembly.add(msg.sequence, part),
                None => Ok(None),
            },
            None => self.hold_early(key, msg.sequence, part),
        }
    }

    /// Proposers that signed two streams for one height and round since the last call.
    pub fn take_equivocations(&mut self) -> Vec<(ValidatorAddress, Height, Round)> {
        std::mem::take(&mut self.equivocations)
    }

    /// Checks an init and routes its publisher's stream to the assembly it signs.
    fn open(
        &mut self,
        key: (PeerId, StreamId),
        seq: u64,
        signed: SignedInit,
        window: &StreamWindow<'_>,
    ) -> Result<Option<AssembledProposal>, PartError> {
        if seq != 0 {
            return Err(PartError::Malformed("init not first"));
        }
        let digest = keccak256(window.check(&signed)?);
        match self.routes.get(&key) {
            // The same init again: a duplicate.
            Some(existing) if *existing == digest => return Ok(None),
            // Another signed init on the same stream (a proposer that signed
            // two blocks for one round): the stream now feeds the new one.
            Some(_) => {}
            None if self.routes.keys().filter(|(peer, _)| *peer == key.0).count() >= STREAMS_PER_PEER => {
                return Err(PartError::Ignored("streams_per_peer"));
            }
            None => {}
        }
        if !self.assemblies.contains_key(&digest) {
            let slot = (signed.init.proposer, signed.init.height, signed.init.round);
            let versions = self.slots.entry(slot).or_default();
            if versions.len() >= VERSIONS_PER_SLOT {
                return Err(PartError::Ignored("equivocation"));
            }
            versions.push(digest);
            if versions.len() > 1 {
                self.equivocations.push(slot);
            }
            self.assemblies.insert(digest, Assembly::new(signed));
        }
        self.routes.insert(key.clone(), digest);
        let mut done = None;
        if let Some(early) = self.early.remove(&key) {
            self.early_bytes -= early.bytes;
            for (seq, part) in early.parts {
                if let Some(assembly) = self.assemblies.get_mut(&digest) {
                    if let Some(whole) = assembly.add(seq, part)? {
                        done = Some(whole);
                    }
                }
            }
        }
        Ok(done)
    }

    /// Keeps a part whose init has not come yet, within the early allowance.
    fn hold_early(
        &mut self,
        key: (PeerId, StreamId),
        seq: u64,
        part: ProposalPart,
    ) -> Result<Option<AssembledProposal>, PartError> {
        let size = match &part {
            ProposalPart::Data(d) => d.len(),
            _ => 128,
        };
        if size > CHUNK_BYTES {
            return Err(PartError::TooLarge);
        }
        let held: usize =
            self.early.iter().filter(|((peer, _), _)| *peer == key.0).map(|(_, early)| early.parts.len()).sum();
        if held >= EARLY_PARTS_PER_PEER {
            return Err(PartError::TooEarly);
        }
        if self.early_bytes + size > EARLY_BYTES_TOTAL {
            return Err(PartError::Ignored("early_parts_full"));
        }
        let early = self.early.entry(key).or_default();
        early.parts.push((seq, part));
        early.bytes += size;
        self.early_bytes += size;
        Ok(None)
    }

    /// Drops everything for heights below `height`, and parts still waiting
    /// for an init (an honest init comes first, so they are junk by now).
    pub fn prune_below(&mut self, height: Height) {
        self.assemblies.retain(|_, a| a.init.height >= height);
        self.slots.retain(|(_, h, _), _| *h >= height);
        let live: HashSet<B256> = self.assemblies.keys().copied().collect();
        self.routes.retain(|_, digest| live.contains(digest));
        self.early.clear();
        self.early_bytes = 0;
    }

    /// Bytes of block data held, assembled or waiting for an init.
    pub fn held_bytes(&self) -> usize {
        let assembled: usize = self.assemblies.values().flat_map(|a| a.chunks.iter().flatten()).map(Vec::len).sum();
        assembled + self.early_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Validator, ValidatorKey};

    const CHAIN: u64 = 7;

    struct Net {
        keys: Vec<ValidatorKey>,
        validators: ValidatorSet,
    }

    impl Net {
        fn new() -> Self {
            let keys: Vec<ValidatorKey> = (0..4).map(|_| ValidatorKey::generate()).collect();
            let validators =
                ValidatorSet::new(keys.iter().map(|k| Validator::new(k.signing_key.verifying_key(), 1))).unwrap();
            Self { keys, validators }
        }

        fn window(&self, height: u64) -> StreamWindow<'_> {
            StreamWindow { chain_id: CHAIN, height: Height(height), round: Round::new(0), validators: &self.validators }
        }

        fn key_of(&self, address: ValidatorAddress) -> &ValidatorKey {
            self.keys.iter().find(|k| k.address() == address).unwrap()
        }

        /// The stream the rightful proposer of (height, round) sends, or `as_other` for another validator's.
        fn stream(&self, height: u64, round: u32, block: &[u8], as_other: bool) -> Vec<StreamMessage<ProposalPart>> {
            let proposer = self.validators.proposer(Height(height), round).address;
            let key = if as_other {
                self.keys.iter().find(|k| k.address() != proposer).unwrap()
            } else {
                self.key_of(proposer)
            };
            let init = ProposalInit {
                height: Height(height),
                round: Round::new(round),
                pol_round: Round::Nil,
                proposer: key.address(),
            };
            split(init, block, CHAIN, &ValidatorSigner::new(key.signing_key.clone(), CHAIN))
        }
    }

    fn peer(seed: u8) -> PeerId {
        let key = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([seed; 32]).unwrap();
        PeerId::from_bytes(&key.public().to_peer_id().to_bytes()).unwrap()
    }

    fn feed(
        streams: &mut PartStreams,
        from: PeerId,
        msgs: Vec<StreamMessage<ProposalPart>>,
        window: &StreamWindow<'_>,
    ) -> Result<Option<AssembledProposal>, PartError> {
        let mut done = None;
        for m in msgs {
            if let Some(p) = streams.insert(from, m, window)? {
                assert!(done.is_none(), "completed twice");
                done = Some(p);
            }
        }
        Ok(done)
    }

    #[test]
    fn reassembles_out_of_order_and_duplicated_parts() {
        let net = Net::new();
        let block = vec![7u8; CHUNK_BYTES * 2 + 10];
        let mut msgs = net.stream(5, 1, &block, false);
        assert_eq!(msgs.len(), 6); // init, 3 data, fin part, stream fin
        msgs.reverse();
        let dup = msgs[2].clone();
        msgs.insert(0, dup);
        let mut streams = PartStreams::default();
        let done = feed(&mut streams, peer(1), msgs, &net.window(5)).unwrap().expect("stream never completed");
        assert_eq!(done.block().as_ref(), block.as_slice());
        assert_eq!(done.init.height, Height(5));
        assert_eq!(streams.held_bytes(), 0);
    }

    #[test]
    fn one_stream_relayed_by_two_peers_is_assembled_once() {
        let net = Net::new();
        let block = vec![3u8; CHUNK_BYTES + 1];
        let msgs = net.stream(5, 0, &block, false);
        let mut streams = PartStreams::default();
        let window = net.window(5);
        // Half from one relay, all from another: one proposal, from whichever completes it.
        for m in msgs[..2].iter().cloned() {
            assert!(streams.insert(peer(1), m, &window).unwrap().is_none());
        }
        assert!(feed(&mut streams, peer(2), msgs.clone(), &window).unwrap().is_some());
        assert!(feed(&mut streams, peer(1), msgs[2..].to_vec(), &window).unwrap().is_none());
    }

    #[test]
    fn inits_are_checked_on_arrival() {
        let net = Net::new();
        let window = net.window(5);
        let mut streams = PartStreams::default();
        let first = |msgs: Vec<StreamMessage<ProposalPart>>| msgs.into_iter().next().unwrap();

        // Another validator's init: the wrong proposer.
        let err = streams.insert(peer(1), first(net.stream(5, 0, &[1], true)), &window).unwrap_err();
        assert!(matches!(err, PartError::WrongProposer { .. }) && err.condemns_publisher(), "{err}");

        // The proposer's init with a signature over other bytes.
        let mut msg = first(net.stream(5, 0, &[1], false));
        if let StreamContent::Data(ProposalPart::Init(signed)) = &mut msg.content {
            signed.chunk_hashes[0] = B256::repeat_byte(9);
        }
        assert_eq!(streams.insert(peer(1), msg, &window).unwrap_err(), PartError::BadSignature);

        // Heights and rounds outside the window: not kept, nobody blamed.
        for (height, round, reason) in
            [(4, 0, "stale"), (8, 0, "far_future"), (5, ROUND_WINDOW + 1, "far_future_round")]
        {
            let err = streams.insert(peer(1), first(net.stream(height, round, &[1], false)), &window).unwrap_err();
            assert_eq!(err, PartError::Ignored(reason));
            assert!(!err.condemns_publisher());
        }
        assert_eq!(streams.held_bytes(), 0);
    }

    #[test]
    fn junk_chunks_are_refused_on_arrival() {
        let net = Net::new();
        let window = net.window(5);
        let mut streams = PartStreams::default();
        let mut msgs = net.stream(5, 0, &vec![1u8; CHUNK_BYTES * 3], false);
        if let StreamContent::Data(ProposalPart::Data(d)) = &mut msgs[2].content {
            d[0] ^= 1;
        }
        assert!(streams.insert(peer(1), msgs[0].clone(), &window).unwrap().is_none());
        assert!(streams.insert(peer(1), msgs[1].clone(), &window).unwrap().is_none());
        assert_eq!(streams.insert(peer(1), msgs[2].clone(), &window).unwrap_err(), PartError::BadChunk(2));
        assert_eq!(streams.held_bytes(), CHUNK_BYTES);
    }

    #[test]
    fn parts_before_their_init_have_a_small_allowance_per_peer() {
        let net = Net::new();
        let window = net.window(5);
        let mut streams = PartStreams::default();
        let junk = |seq| {
            StreamMessage::new(
                StreamId::new(Bytes::from_static(b"x")),
                seq,
                StreamContent::Data(ProposalPart::Data(vec![0; CHUNK_BYTES])),
            )
        };
        for seq in 1..=EARLY_PARTS_PER_PEER as u64 {
            assert!(streams.insert(peer(1), junk(seq), &window).unwrap().is_none());
        }
        let err = streams.insert(peer(1), junk(99), &window).unwrap_err();
        assert_eq!(err, PartError::TooEarly);
        assert!(err.condemns_publisher());
        // Another peer's honest stream, init last, still assembles.
        let block = vec![5u8; CHUNK_BYTES + 3];
        let mut msgs = net.stream(5, 0, &block, false);
        msgs.rotate_left(1);
        let done = feed(&mut streams, peer(2), msgs, &window).unwrap().expect("honest stream");
        assert_eq!(done.block().as_ref(), block.as_slice());
        // Junk waiting for an init is dropped at the next height, whatever its stream id.
        streams.prune_below(Height(6));
        assert_eq!(streams.held_bytes(), 0);
    }

    #[test]
    fn a_second_signed_stream_for_one_slot_is_evidence_and_a_third_is_dropped() {
        let net = Net::new();
        let window = net.window(5);
        let mut streams = PartStreams::default();
        for (i, byte) in [1u8, 2].into_iter().enumerate() {
            let msgs = net.stream(5, 0, &[byte], false);
            assert!(feed(&mut streams, peer(i as u8 + 1), msgs, &window).unwrap().is_some());
        }
        let evidence = streams.take_equivocations();
        assert_eq!(evidence.len(), 1);
        assert_eq!(evidence[0].1, Height(5));
        let third = net.stream(5, 0, &[3], false).into_iter().next().unwrap();
        assert_eq!(streams.insert(peer(3), third, &window).unwrap_err(), PartError::Ignored("equivocation"));
    }

    #[test]
    fn oversized_inits_are_refused() {
        let net = Net::new();
        let window = net.window(5);
        let proposer = net.validators.proposer(Height(5), 0).address;
        let key = net.key_of(proposer);
        let init = ProposalInit { height: Height(5), round: Round::new(0), pol_round: Round::Nil, proposer };
        let chunk_hashes = vec![B256::ZERO; MAX_CHUNKS + 1];
        let signer = ValidatorSigner::new(key.signing_key.clone(), CHAIN);
        let signature = signer.sign_bytes(&SignedInit::sign_bytes(CHAIN, &init, &chunk_hashes));
        let msg = StreamMessage::new(
            stream_id(Height(5), Round::new(0)),
            0,
            StreamContent::Data(ProposalPart::Init(SignedInit { init, chunk_hashes, signature })),
        );
        assert_eq!(PartStreams::default().insert(peer(1), msg, &window).unwrap_err(), PartError::TooLarge);
    }
}

//! Proposal streams: cutting a block into signed parts, and putting the
//! parts that arrive (in any order, possibly twice, possibly through
//! different neighbours) back together. Bounded in streams, parts and bytes,
//! so a peer cannot make a node hold unlimited data.

use crate::{Height, ProposalFin, ProposalInit, ProposalPart, ValidatorSigner};
use bytes::Bytes;
use malachitebft_app_channel::app::{
    streaming::{StreamContent, StreamId, StreamMessage},
    types::{core::Round, PeerId},
};
use std::collections::{BTreeMap, HashMap};

/// Block bytes per data part.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Largest encoded block accepted in a stream.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;
/// Streams assembled at once; the oldest is dropped beyond this.
const MAX_STREAMS: usize = 64;

/// A whole proposal stream, not yet checked against the validator set.
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

/// Why a stream was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartError {
    /// The stream would exceed [`MAX_BLOCK_BYTES`].
    #[error("proposal stream exceeds {MAX_BLOCK_BYTES} bytes")]
    TooLarge,
    /// Parts in the wrong places (no init first, no fin last, two fins).
    #[error("malformed proposal stream: {0}")]
    Malformed(&'static str),
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
    let signature = signer.sign_bytes(&ProposalPart::stream_sign_bytes(chain_id, &init, &chunks));
    let mut parts = Vec::with_capacity(chunks.len() + 3);
    parts.push(ProposalPart::Init(init));
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

#[derive(Default)]
struct Stream {
    parts: BTreeMap<u64, ProposalPart>,
    /// Sequence number of the stream's closing message.
    end: Option<u64>,
    bytes: usize,
    /// Arrival order, for dropping the oldest stream.
    born: u64,
}

/// Streams being assembled, keyed by publisher and stream id.
#[derive(Default)]
pub struct PartStreams {
    streams: HashMap<(PeerId, StreamId), Stream>,
    clock: u64,
}

impl PartStreams {
    /// Adds one message from `publisher`; returns the proposal once its stream is whole.
    pub fn insert(
        &mut self,
        publisher: PeerId,
        msg: StreamMessage<ProposalPart>,
    ) -> Result<Option<AssembledProposal>, PartError> {
        let key = (publisher, msg.stream_id.clone());
        if !self.streams.contains_key(&key) && self.streams.len() >= MAX_STREAMS {
            if let Some(oldest) = self.streams.iter().min_by_key(|(_, s)| s.born).map(|(k, _)| k.clone()) {
                self.streams.remove(&oldest);
            }
        }
        self.clock += 1;
        let born = self.clock;
        let stream = self.streams.entry(key.clone()).or_insert_with(|| Stream { born, ..Default::default() });
        match msg.content {
            StreamContent::Fin => stream.end = Some(msg.sequence),
            StreamContent::Data(part) => {
                let size = match &part {
                    ProposalPart::Data(d) => d.len(),
                    _ => 128,
                };
                stream.bytes += size;
                if stream.bytes > MAX_BLOCK_BYTES || msg.sequence > (MAX_BLOCK_BYTES / CHUNK_BYTES * 2) as u64 {
                    self.streams.remove(&key);
                    return Err(PartError::TooLarge);
                }
                stream.parts.entry(msg.sequence).or_insert(part);
            }
        }
        let complete = matches!(stream.end, Some(end) if stream.parts.len() as u64 == end && stream.parts.keys().next_back() == Some(&(end.wrapping_sub(1))));
        if !complete {
            return Ok(None);
        }
        let stream = self.streams.remove(&key).unwrap_or_default();
        assemble(stream.parts.into_values().collect()).map(Some)
    }

    /// Drops every stream for heights below `height`.
    pub fn prune_below(&mut self, height: Height) {
        self.streams.retain(|(_, id), _| {
            let bytes = id.to_bytes();
            let stream_height = bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            stream_height.is_none_or(|h| h >= height.0)
        });
    }
}

fn assemble(parts: Vec<ProposalPart>) -> Result<AssembledProposal, PartError> {
    let mut iter = parts.into_iter();
    let Some(ProposalPart::Init(init)) = iter.next() else {
        return Err(PartError::Malformed("first part is not the init"));
    };
    let mut chunks = Vec::new();
    for part in iter {
        match part {
            ProposalPart::Data(d) => chunks.push(d),
            ProposalPart::Fin(_) if chunks.is_empty() => return Err(PartError::Malformed("no block data")),
            ProposalPart::Fin(fin) => return Ok(AssembledProposal { init, chunks, fin }),
            ProposalPart::Init(_) => return Err(PartError::Malformed("second init part")),
        }
    }
    Err(PartError::Malformed("last part is not the fin"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ValidatorAddress, ValidatorKey};

    fn init() -> ProposalInit {
        ProposalInit {
            height: Height(5),
            round: Round::new(1),
            pol_round: Round::Nil,
            proposer: ValidatorAddress(Default::default()),
        }
    }

    #[test]
    fn reassembles_out_of_order_and_duplicated_parts() {
        let signer = ValidatorSigner::new(ValidatorKey::generate().signing_key, 7);
        let block = vec![7u8; CHUNK_BYTES * 2 + 10];
        let mut msgs = split(init(), &block, 7, &signer);
        assert_eq!(msgs.len(), 6); // init, 3 data, fin part, stream fin
        msgs.reverse();
        let dup = msgs[2].clone();
        msgs.insert(0, dup);
        let key = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([7u8; 32]).unwrap();
        let peer = PeerId::from_bytes(&key.public().to_peer_id().to_bytes()).unwrap();
        let mut streams = PartStreams::default();
        let mut done = None;
        for m in msgs {
            if let Some(p) = streams.insert(peer, m).unwrap() {
                assert!(done.is_none(), "completed twice");
                done = Some(p);
            }
        }
        let done = done.expect("stream never completed");
        assert_eq!(done.block().as_ref(), block.as_slice());
        assert_eq!(done.init, init());
        assert!(streams.streams.is_empty());
    }

    #[test]
    fn refuses_streams_without_init_or_data() {
        let fin = ProposalPart::Fin(ProposalFin {
            signature: crate::Signature(ed25519_dalek::Signature::from_bytes(&[0; 64])),
        });
        assert!(assemble(vec![ProposalPart::Data(vec![1]), fin.clone()]).is_err());
        assert!(assemble(vec![ProposalPart::Init(init()), fin]).is_err());
        assert!(assemble(vec![ProposalPart::Init(init()), ProposalPart::Data(vec![1])]).is_err());
    }
}

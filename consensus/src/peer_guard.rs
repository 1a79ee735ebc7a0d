//! Cutting off consensus peers that send provably invalid messages.
//!
//! Malachite's engine verifies and drops bad messages itself, but it never
//! tells the application who sent them, and its network has no disconnect
//! request. Two public pieces of its network actor make one: it names the
//! delivering peer on every decoded message it hands to subscribers, and a
//! failed validator-proof verdict makes it close that peer's connections.
//! Consensus runs on Malachite's broadcast protocol, which never relays, so
//! the delivering peer is the author: an honest node is never blamed for
//! forwarding someone else's message (on gossipsub it would be).
//!
//! Proof of a bad peer: a vote or proposal signed by a key outside the
//! validator set, or whose signature does not verify; a proposal stream that
//! does not assemble, names the wrong proposer, or whose signature fails
//! (judged by the host, which sees the stream's sender). Not proof: messages
//! for heights far ahead, which honest validators send to a node that is
//! behind, and bytes that do not decode, which Malachite drops before
//! handing anything on, without naming the sender; both are counted only.
//!
//! A disconnected peer is refused again if it reconnects within [`BAN`].
//! With `relay` on (gossipsub, for validators that cannot all reach each
//! other) votes and proposals condemn nobody, since the delivering peer may
//! be an honest relay; proposal streams still name their libp2p publisher.

use crate::{
    metrics::ConsensusMetrics,
    network_height::{signature_valid, signed_at},
    MetaContext, ValidatorSet,
};
use malachitebft_app_channel::app::{
    engine::network::{NetworkEvent, NetworkMsg, NetworkRef},
    types::{
        core::{Validator as _, ValidatorSet as _},
        PeerId, SignedConsensusMsg,
    },
};
use malachitebft_network::validator_proof::ProofVerificationResult;
use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

/// How long a peer cut off for an invalid message is refused.
pub const BAN: Duration = Duration::from_secs(60);

/// Disconnects peers, counts why, and remembers them for [`BAN`]. Cloned
/// into the network watcher and the host, which judge different messages.
#[derive(Clone)]
pub struct PeerGuard {
    network: Option<NetworkRef<MetaContext>>,
    metrics: Arc<ConsensusMetrics>,
    banned: Arc<Mutex<HashMap<PeerId, Instant>>>,
}

impl PeerGuard {
    /// A guard that closes connections through Malachite's network actor.
    pub(crate) fn new(network: NetworkRef<MetaContext>, metrics: Arc<ConsensusMetrics>) -> Self {
        Self { network: Some(network), metrics, banned: Arc::default() }
    }

    /// A guard with no network to act on, for a host driven by tests: it
    /// still counts and remembers the peers it would disconnect.
    pub fn detached(metrics: Arc<ConsensusMetrics>) -> Self {
        Self { network: None, metrics, banned: Arc::default() }
    }

    /// Cuts `peer` off for sending an invalid message. Messages it sent
    /// before the cut took effect only extend the ban; a reconnection is
    /// turned away by the watcher.
    pub fn disconnect(&self, peer: PeerId, reason: &'static str) {
        let first = {
            let mut banned = self.banned.lock();
            let now = Instant::now();
            let first = banned.get(&peer).is_none_or(|until| *until <= now);
            banned.insert(peer, now + BAN);
            first
        };
        if first {
            self.metrics.peer_disconnected(reason);
            tracing::warn!(%peer, reason, ban_secs = BAN.as_secs(), "disconnecting a consensus peer that sent an invalid message (Malachite logs this as an invalid validator proof)");
            self.close(peer);
        }
    }

    /// Whether `peer` was cut off less than [`BAN`] ago.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        let mut banned = self.banned.lock();
        let now = Instant::now();
        banned.retain(|_, until| *until > now);
        banned.contains_key(peer)
    }

    fn close(&self, peer: PeerId) {
        let Some(network) = &self.network else { return };
        let verdict = NetworkMsg::ValidatorProofVerified {
            peer_id: peer,
            result: ProofVerificationResult::Invalid,
            public_key: None,
        };
        if let Err(e) = network.cast(verdict) {
            tracing::debug!(%peer, error = %e, "network actor gone; cannot disconnect");
        }
    }
}

/// What the watcher judges votes and proposals against.
pub(crate) struct WatchState {
    pub guard: PeerGuard,
    pub chain_id: u64,
    pub validators: ValidatorSet,
    /// False when consensus relays (gossipsub): the delivering peer may
    /// only have forwarded a bad vote, so votes condemn nobody.
    pub senders_are_authors: bool,
}

/// One network event, as the watcher actor receives it.
#[derive(Clone)]
pub(crate) struct Seen(NetworkEvent<MetaContext>);

impl From<NetworkEvent<MetaContext>> for Seen {
    fn from(event: NetworkEvent<MetaContext>) -> Self {
        Self(event)
    }
}

/// Subscribed to Malachite's network actor: judges every vote and proposal
/// with the peer that delivered it, and turns banned peers away on connect.
pub(crate) struct PeerWatch;

#[async_trait::async_trait]
impl Actor for PeerWatch {
    type Msg = Seen;
    type State = WatchState;
    type Arguments = WatchState;

    async fn pre_start(&self, _: ActorRef<Seen>, state: WatchState) -> Result<WatchState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _: ActorRef<Seen>,
        Seen(event): Seen,
        state: &mut WatchState,
    ) -> Result<(), ActorProcessingErr> {
        let (peer, msg) = match event {
            NetworkEvent::PeerConnected(peer) if state.guard.is_banned(&peer) => {
                tracing::info!(%peer, "refusing a consensus peer cut off for an invalid message");
                state.guard.close(peer);
                return Ok(());
            }
            _ if !state.senders_are_authors => return Ok(()),
            NetworkEvent::Vote(peer, vote) => (peer, SignedConsensusMsg::Vote(vote)),
            NetworkEvent::Proposal(peer, proposal) => (peer, SignedConsensusMsg::Proposal(proposal)),
            _ => return Ok(()),
        };
        if let Some(reason) = judge(state, &msg) {
            state.guard.disconnect(peer, reason);
        }
        Ok(())
    }
}

/// Why `msg` proves its sender bad, if it does.
fn judge(state: &WatchState, msg: &SignedConsensusMsg<MetaContext>) -> Option<&'static str> {
    let (_, signer) = signed_at(msg);
    let Some(validator) = state.validators.get_by_address(&signer) else {
        return Some("non_validator");
    };
    (!signature_valid(state.chain_id, msg, validator.public_key())).then_some("bad_signature")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Validator, ValidatorKey, ValidatorSigner};
    use futures::executor::block_on;
    use malachitebft_app_channel::app::types::core::{Context, NilOrVal, Round};
    use malachitebft_signing::Signer;

    fn prevote(claimed: &ValidatorKey, signer: &ValidatorKey, chain_id: u64) -> SignedConsensusMsg<MetaContext> {
        let signer = ValidatorSigner::new(signer.signing_key.clone(), chain_id);
        let vote = MetaContext.new_prevote(crate::Height(3), Round::new(0), NilOrVal::Nil, claimed.address());
        SignedConsensusMsg::Vote(block_on(signer.sign_vote(vote)).unwrap())
    }

    fn peer(seed: u8) -> PeerId {
        let key = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([seed; 32]).unwrap();
        PeerId::from_bytes(&key.public().to_peer_id().to_bytes()).unwrap()
    }

    #[test]
    fn only_provably_bad_messages_condemn_their_sender() {
        let keys: Vec<ValidatorKey> = (0..4).map(|_| ValidatorKey::generate()).collect();
        let validators =
            ValidatorSet::new(keys.iter().map(|k| Validator::new(k.signing_key.verifying_key(), 1))).unwrap();
        let metrics = Arc::new(ConsensusMetrics::default());
        let state = WatchState {
            guard: PeerGuard::detached(metrics.clone()),
            chain_id: 7,
            validators,
            senders_are_authors: true,
        };
        let outsider = ValidatorKey::generate();

        assert_eq!(judge(&state, &prevote(&keys[0], &keys[0], 7)), None);
        assert_eq!(judge(&state, &prevote(&keys[0], &outsider, 7)), Some("bad_signature"));
        // Signed for another chain: the signature does not verify on this one.
        assert_eq!(judge(&state, &prevote(&keys[0], &keys[0], 8)), Some("bad_signature"));
        assert_eq!(judge(&state, &prevote(&outsider, &outsider, 7)), Some("non_validator"));

        // A peer is counted once per ban, however many of its messages were in flight.
        let (bad, good) = (peer(1), peer(2));
        state.guard.disconnect(bad, "bad_signature");
        state.guard.disconnect(bad, "bad_signature");
        assert!(state.guard.is_banned(&bad));
        assert!(!state.guard.is_banned(&good));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("metanode_disconnected_peers_total{reason=\"bad_signature\"} 1"), "{out}");
    }
}

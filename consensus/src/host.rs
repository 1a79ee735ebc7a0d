//! The host side of Malachite's app channel: answers every request the
//! engine makes (start a height, propose, check a proposal, commit, serve
//! and accept synced blocks) by calling the [`Application`].

use crate::{
    app::BlockOrigin,
    app::{Application, BlockRejected, BuiltBlock},
    certificate::{self, to_chain},
    metrics::ConsensusMetrics,
    parts::{self, AssembledProposal, PartStreams, StreamWindow},
    peer_guard::PeerGuard,
    BlockValue, Height, MetaContext, ProposalInit, ProposalPart, SignatureVerifier, ValidatorSet, ValidatorSigner,
};
use alloy_primitives::B256;
use bytes::Bytes;
use malachitebft_app_channel::{
    app::{
        engine::host::{Next, SyncedValueOutcome},
        types::{
            core::{CommitCertificate, HeightParams, LinearTimeouts, Round, Validity},
            sync::RawDecidedValue,
            LocallyProposedValue, MisbehaviorEvidence, PeerId, ProposedValue,
        },
    },
    AppMsg, Channels, NetworkMsg, Reply,
};
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

/// Proposals kept per future height (each signed by its height's proposer).
const FUTURE_PROPOSALS: usize = 16;
/// Proposals one publisher may have queued per future height.
const FUTURE_PROPOSALS_PER_PEER: usize = 2;
/// Bytes of blocks a sync response is filled up to; one larger block still
/// goes alone (the codec's hard limit leaves room for the largest).
const SYNC_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Blocks re-executed per height: one per round is all an honest proposer
/// sends, so this bounds what a Byzantine one can make the node execute.
const EXECUTIONS_PER_HEIGHT: usize = 32;

/// What the host needs besides the application.
pub struct HostConfig {
    /// The chain the signatures are for.
    pub chain_id: u64,
    /// The validator set (from genesis; the same at every height).
    pub validators: ValidatorSet,
    /// This node's validator signer; `None` on a full node.
    pub signer: Option<Arc<ValidatorSigner>>,
    /// Consensus timeouts.
    pub timeouts: LinearTimeouts,
    /// Minimum time between the start of a height and its finalization.
    pub target_time: Option<Duration>,
}

/// A block a spawned build finished, back in the host loop.
struct Built {
    height: Height,
    round: Round,
    result: Result<BuiltBlock, String>,
    reply: Reply<LocallyProposedValue<MetaContext>>,
}

/// The host's state: one height at a time.
pub struct Host {
    app: Arc<dyn Application>,
    config: HostConfig,
    metrics: Arc<ConsensusMetrics>,
    height: Height,
    /// The round consensus is in at `height`.
    round: Round,
    /// Block bytes by hash for the current height: built here, or received and checked.
    blocks: HashMap<B256, Bytes>,
    /// Blocks this node proposed at the current height, by round.
    own: HashMap<Round, B256>,
    /// Values checked at the current height, for replays at round start.
    undecided: Vec<ProposedValue<MetaContext>>,
    /// The block each proposer's stream carried per round at the current
    /// height: a second block for the same round is equivocation, counted
    /// and never executed.
    proposed: HashMap<(Round, crate::ValidatorAddress), B256>,
    /// Blocks re-executed at the current height.
    executions: usize,
    streams: PartStreams,
    /// Proposals for the next heights, with the peer that sent each.
    future: BTreeMap<Height, Vec<(PeerId, AssembledProposal)>>,
    /// Cuts off the senders of streams that prove them bad.
    peers: PeerGuard,
    /// Catch-up progress for the log: when it was last reported, and the blocks synced then.
    sync_report: Option<(Instant, u64)>,
}

impl Host {
    /// A host for `app`.
    pub fn new(app: Arc<dyn Application>, config: HostConfig, metrics: Arc<ConsensusMetrics>) -> Self {
        let height = Height(app.committed_height() + 1);
        Self {
            app,
            config,
            height,
            round: Round::Nil,
            blocks: HashMap::new(),
            own: HashMap::new(),
            undecided: Vec::new(),
            proposed: HashMap::new(),
            executions: 0,
            streams: PartStreams::default(),
            future: BTreeMap::new(),
            peers: PeerGuard::detached(metrics.clone()),
            sync_report: None,
            metrics,
        }
    }

    /// Disconnects peers through `guard` (a new host only counts them).
    pub fn with_peer_guard(mut self, guard: PeerGuard) -> Self {
        self.peers = guard;
        self
    }

    fn params(&self) -> HeightParams<MetaContext> {
        HeightParams::new(self.config.validators.clone(), self.config.timeouts, self.config.target_time)
    }

    /// Serves the engine until it closes the channel.
    pub async fn run(mut self, mut channels: Channels<MetaContext>) {
        let (built_tx, mut built_rx) = mpsc::channel::<Built>(4);
        loop {
            tokio::select! {
                msg = channels.consensus.recv() => match msg {
                    Some(msg) => self.handle(msg, &channels.network, &built_tx).await,
                    None => break,
                },
                Some(built) = built_rx.recv() => self.finish_build(built, &channels.network).await,
            }
        }
        tracing::info!("consensus engine stopped");
    }

    async fn handle(
        &mut self,
        msg: AppMsg<MetaContext>,
        network: &mpsc::Sender<NetworkMsg<MetaContext>>,
        built_tx: &mpsc::Sender<Built>,
    ) {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let start = Height(self.app.committed_height() + 1);
                self.enter(start);
                tracing::info!(height = %start, validators = self.config.validators.validators().len(), "consensus ready");
                let _ = reply.send((start, self.params()));
            }
            AppMsg::StartedRound { height, round, proposer, role, reply_value } => {
                if height != self.height {
                    self.enter(height);
                }
                self.round = round;
                self.metrics.set_round(height.0, round.as_i64());
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                if let Some(pending) = self.future.remove(&height) {
                    for (_, proposal) in pending {
                        self.check_proposal(proposal).await;
                    }
                }
                let values = self.undecided.iter().filter(|v| v.round == round).cloned().collect();
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue { height, round, timeout: _, reply } => {
                if let Some(hash) = self.own.get(&round) {
                    // Asked again (e.g. after a restart replayed the WAL): same value.
                    let _ = reply.send(LocallyProposedValue::new(height, round, BlockValue(*hash)));
                    return;
                }
                let app = self.app.clone();
                let built_tx = built_tx.clone();
                tokio::spawn(async move {
                    let result = app.build_block(height.0).await.map_err(|e| e.to_string());
                    let _ = built_tx.send(Built { height, round, result, reply }).await;
                });
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { extensions, reply, .. } => {
                // Extensions are disabled, so none is expected; refuse any that arrive.
                let verdicts = extensions
                    .into_iter()
                    .map(|(addr, _)| {
                        (addr, Err(malachitebft_app_channel::app::consensus::VoteExtensionError::InvalidVoteExtension))
                    })
                    .collect();
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal { height, round, valid_round, address, value_id } => {
                let Some(signer) = self.config.signer.clone() else { return };
                if height != self.height || address != signer.address() {
                    return;
                }
                match self.blocks.get(&value_id).cloned() {
                    Some(block) => {
                        let init = ProposalInit { height, round, pol_round: valid_round, proposer: address };
                        self.publish(init, &block, &signer, network).await;
                    }
                    None => {
                        tracing::warn!(%height, %round, %value_id, "asked to re-stream a block this node does not hold")
                    }
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(self.app.earliest_height()));
            }
            AppMsg::ReceivedProposalPart { from, published_by, part, reply } => {
                let publisher = published_by.unwrap_or(from);
                let value = self.received_part(publisher, part).await;
                let _ = reply.send(value);
            }
            AppMsg::Decided { certificate, reply, .. } => {
                self.decided(&certificate).await;
                let _ = reply.send(());
            }
            AppMsg::Finalized { certificate, evidence, reply, .. } => {
                self.report(&evidence);
                let next = if self.app.committed_height() >= certificate.height.0 {
                    Next::Start(Height(certificate.height.0 + 1), self.params())
                } else {
                    tracing::error!(height = %certificate.height, "decided block was not committed; restarting the height");
                    Next::Restart(Height(self.app.committed_height() + 1), self.params())
                };
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValues { range, reply } => {
                // Reading and encoding up to a response's worth of blocks is
                // disk work: done on the blocking pool, the host loop goes on.
                let app = self.app.clone();
                let (start, end) = (*range.start(), *range.end());
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(decided_values(app.as_ref(), start, end));
                });
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let outcome = self.synced_value(height, round, proposer, value_bytes).await;
                let _ = reply.send(outcome);
            }
        }
    }

    /// Moves to `height`, dropping what belonged to earlier heights.
    fn enter(&mut self, height: Height) {
        self.height = height;
        self.round = Round::Nil;
        self.blocks.clear();
        self.own.clear();
        self.undecided.clear();
        self.proposed.clear();
        self.executions = 0;
        self.streams.prune_below(height);
        self.future = self.future.split_off(&height);
    }

    async fn finish_build(&mut self, built: Built, network: &mpsc::Sender<NetworkMsg<MetaContext>>) {
        let Built { height, round, result, reply } = built;
        if height != self.height {
            return;
        }
        let block = match result {
            Ok(block) => block,
            Err(e) => {
                // No reply: consensus times out the propose step and moves on.
                tracing::error!(%height, %round, error = %e, "cannot build a block");
                return;
            }
        };
        let Some(signer) = self.config.signer.clone() else { return };
        self.blocks.insert(block.hash, block.bytes.clone());
        self.own.insert(round, block.hash);
        self.undecided.push(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer: signer.address(),
            value: BlockValue(block.hash),
            validity: Validity::Valid,
        });
        let _ = reply.send(LocallyProposedValue::new(height, round, BlockValue(block.hash)));
        let init = ProposalInit { height, round, pol_round: Round::Nil, proposer: signer.address() };
        self.publish(init, &block.bytes, &signer, network).await;
    }

    async fn publish(
        &self,
        init: ProposalInit,
        block: &[u8],
        signer: &ValidatorSigner,
        network: &mpsc::Sender<NetworkMsg<MetaContext>>,
    ) {
        for msg in parts::split(init, block, self.config.chain_id, signer) {
            if network.send(NetworkMsg::PublishProposalPart(msg)).await.is_err() {
                return;
            }
        }
    }

    async fn received_part(
        &mut self,
        publisher: PeerId,
        part: malachitebft_app_channel::app::streaming::StreamMessage<ProposalPart>,
    ) -> Option<ProposedValue<MetaContext>> {
        let window = StreamWindow {
            chain_id: self.config.chain_id,
            height: self.height,
            round: self.round,
            validators: &self.config.validators,
        };
        let inserted = self.streams.insert(publisher, part, &window);
        for (proposer, height, round) in self.streams.take_equivocations() {
            self.metrics.equivocations(1);
            tracing::error!(validator = %proposer, %height, %round, "validator signed two different proposal streams (equivocation)");
        }
        let proposal = match inserted {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                self.metrics.dropped_message(e.reason());
                if e.condemns_publisher() {
                    tracing::warn!(%publisher, error = %e, "dropped a proposal stream");
                    self.peers.disconnect(publisher, e.reason());
                } else {
                    tracing::debug!(%publisher, error = %e, "proposal part not kept");
                }
                return None;
            }
        };
        if !self.authentic(publisher, &proposal) {
            return None;
        }
        let height = proposal.init.height;
        if height < self.height {
            return None;
        }
        if height > self.height {
            let queue = self.future.entry(height).or_default();
            let from_publisher = queue.iter().filter(|(p, _)| *p == publisher).count();
            if queue.len() < FUTURE_PROPOSALS && from_publisher < FUTURE_PROPOSALS_PER_PEER {
                queue.push((publisher, proposal));
            } else {
                self.metrics.dropped_message("future_queue_full");
            }
            return None;
        }
        self.check_proposal(proposal).await
    }

    /// Whether a whole stream is signed by the proposer of its height and
    /// round (its init was checked on arrival; this checks the fin's
    /// signature over every byte). A stream that fails condemns `publisher`.
    fn authentic(&self, publisher: PeerId, proposal: &AssembledProposal) -> bool {
        let init = &proposal.init;
        let expected = self.config.validators.proposer(init.height, init.round.as_u32().unwrap_or_default());
        if init.proposer != expected.address {
            self.metrics.dropped_message("wrong_proposer");
            tracing::warn!(height = %init.height, round = %init.round, claimed = %init.proposer, expected = %expected.address, "proposal from a validator that is not the proposer");
            self.peers.disconnect(publisher, "wrong_proposer");
            return false;
        }
        let refs: Vec<&[u8]> = proposal.chunks.iter().map(Vec::as_slice).collect();
        let signed = ProposalPart::stream_sign_bytes(self.config.chain_id, init, &refs);
        if !SignatureVerifier::verify_bytes(&signed, &proposal.fin.signature, &expected.public_key) {
            self.metrics.dropped_message("bad_signature");
            tracing::warn!(height = %init.height, round = %init.round, proposer = %init.proposer, "proposal stream with a bad signature");
            self.peers.disconnect(publisher, "bad_signature");
            return false;
        }
        true
    }

    /// Re-executes an authentic proposal at the current height. One block
    /// per proposer and round is executed; another block for a slot already
    /// seen is equivocation (counted when its stream opened) and is not
    /// executed, and no more than
    /// [`EXECUTIONS_PER_HEIGHT`] blocks are executed per height. A
    /// well-signed block that fails re-execution is for consensus to judge
    /// (it prevotes nil), not proof against the peer that relayed it.
    async fn check_proposal(&mut self, proposal: AssembledProposal) -> Option<ProposedValue<MetaContext>> {
        let block = proposal.block();
        let init = proposal.init;
        let hash_hint = alloy_primitives::keccak256(&block);
        match self.proposed.get(&(init.round, init.proposer)) {
            Some(seen) if *seen != hash_hint => {
                // Its second signed stream was counted as evidence when it opened.
                tracing::warn!(validator = %init.proposer, height = %init.height, round = %init.round, "a second block from one proposer in one round is not executed");
                return None;
            }
            Some(_) => return None,
            None => {}
        }
        if self.executions >= EXECUTIONS_PER_HEIGHT {
            self.metrics.dropped_message("executions_per_height");
            tracing::warn!(height = %init.height, round = %init.round, "too many proposals at this height; not executing more");
            return None;
        }
        self.proposed.insert((init.round, init.proposer), hash_hint);
        self.executions += 1;
        let validity = match self.app.verify_block(init.height.0, block.clone(), BlockOrigin::Proposal).await {
            Ok(hash) => {
                self.blocks.insert(hash, block);
                Some((hash, Validity::Valid))
            }
            Err(BlockRejected { hash, reason }) => {
                self.metrics.invalid_proposal();
                tracing::warn!(height = %init.height, round = %init.round, proposer = %init.proposer, ?hash, %reason, "invalid block proposed; prevoting nil");
                hash.map(|h| (h, Validity::Invalid))
            }
        };
        let (hash, validity) = validity?;
        let value = ProposedValue {
            height: init.height,
            round: init.round,
            valid_round: init.pol_round,
            proposer: init.proposer,
            value: BlockValue(hash),
            validity,
        };
        self.undecided.push(value.clone());
        Some(value)
    }

    async fn decided(&mut self, certificate: &CommitCertificate<MetaContext>) {
        let height = certificate.height;
        if self.app.committed_height() >= height.0 {
            return;
        }
        let Some(block) = self.blocks.get(&certificate.value_id).cloned() else {
            tracing::error!(%height, hash = %certificate.value_id, "decided a block this node does not hold");
            return;
        };
        let total = self.config.validators.validators().len();
        let signed = certificate.commit_signatures.len();
        self.metrics.set_validators(total, total.saturating_sub(signed));
        match self.app.commit_block(block, to_chain(certificate)).await {
            Ok(()) => self.metrics.committed(),
            Err(e) => tracing::error!(%height, error = %e, "cannot commit the decided block"),
        }
    }

    /// Logs and counts double votes and double proposals.
    fn report(&self, evidence: &MisbehaviorEvidence<MetaContext>) {
        if evidence.is_empty() {
            return;
        }
        for validator in self.config.validators.validators() {
            if let Some(votes) = evidence.votes.get(&validator.address) {
                self.metrics.equivocations(votes.len());
                for (first, second) in votes {
                    tracing::error!(validator = %validator.address, height = %first.height, round = %first.round, first = ?first.value, second = ?second.value, "validator signed two different votes (equivocation)");
                }
            }
            if let Some(proposals) = evidence.proposals.get(&validator.address) {
                self.metrics.equivocations(proposals.len());
                tracing::error!(validator = %validator.address, count = proposals.len(), "validator signed two different proposals (equivocation)");
            }
        }
    }

    /// Logs catch-up progress about once a second: height, target, blocks/s.
    fn report_sync_progress(&mut self, height: Height) {
        let synced = self.metrics.synced_blocks();
        let (since, before) = *self.sync_report.get_or_insert((Instant::now(), synced));
        let elapsed = since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let rate = (synced - before) as f64 / elapsed.as_secs_f64();
            let target = self.metrics.network_height().max(height.0);
            tracing::info!(%height, target, blocks_per_sec = format!("{rate:.0}"), "catching up");
            self.sync_report = Some((Instant::now(), synced));
        }
    }

    async fn synced_value(
        &mut self,
        height: Height,
        round: Round,
        proposer: crate::ValidatorAddress,
        block: Bytes,
    ) -> SyncedValueOutcome<MetaContext> {
        if height != self.height {
            self.enter(height);
        }
        if height.0 != self.app.committed_height() + 1 {
            return SyncedValueOutcome::LocalTransientError;
        }
        let (hash, validity) = match self.app.verify_block(height.0, block.clone(), BlockOrigin::Decided).await {
            Ok(hash) => {
                self.blocks.insert(hash, block);
                (hash, Validity::Valid)
            }
            Err(BlockRejected { hash: Some(hash), reason }) => {
                tracing::error!(%height, %hash, %reason, "a block certified by the validators does not execute here");
                (hash, Validity::Invalid)
            }
            Err(BlockRejected { hash: None, reason }) => {
                tracing::warn!(%height, %reason, "peer sent an undecodable block");
                return SyncedValueOutcome::PeerFault;
            }
        };
        self.metrics.synced();
        self.report_sync_progress(height);
        SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: BlockValue(hash),
            validity,
        })
    }
}

/// Committed blocks from `start` to `end` with their certificates, for a
/// peer catching up: filled up to [`SYNC_RESPONSE_BYTES`], never past the
/// codec's limit, and always at least one block if there is one.
fn decided_values(app: &dyn Application, start: Height, end: Height) -> Vec<RawDecidedValue<MetaContext>> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for h in start.0..=end.0 {
        let (block, cert) = match app.decided_block(h) {
            Ok(Some(found)) => found,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(height = h, error = %e, "cannot read a decided block for a peer");
                break;
            }
        };
        if !out.is_empty() && bytes + block.len() > SYNC_RESPONSE_BYTES {
            break;
        }
        let Ok(cert) = certificate::from_chain(&cert) else { break };
        bytes += block.len();
        out.push(RawDecidedValue { value_bytes: block, certificate: certificate::to_extended(cert) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{app::AppError, Validator, ValidatorKey};
    use async_trait::async_trait;
    use malachitebft_app_channel::app::streaming::{StreamContent, StreamMessage};
    use metanode_primitives::CommitCertificate as ChainCommit;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Accepts any block whose first byte is 1, and names it by that byte
    /// string's hash; counts executions; serves decided blocks slowly.
    #[derive(Default)]
    struct FakeChain {
        executions: AtomicUsize,
    }

    #[async_trait]
    impl Application for FakeChain {
        fn committed_height(&self) -> u64 {
            0
        }
        async fn build_block(&self, _: u64) -> Result<BuiltBlock, AppError> {
            Err(AppError("not used".into()))
        }
        async fn verify_block(&self, _: u64, block: Bytes, _: BlockOrigin) -> Result<B256, BlockRejected> {
            self.executions.fetch_add(1, Ordering::Relaxed);
            let hash = alloy_primitives::keccak256(&block);
            match block.first() {
                Some(1) => Ok(hash),
                _ => Err(BlockRejected { hash: Some(hash), reason: "state root mismatch".into() }),
            }
        }
        async fn commit_block(&self, _: Bytes, _: ChainCommit) -> Result<(), AppError> {
            Ok(())
        }
        fn decided_block(&self, _: u64) -> Result<Option<(Bytes, ChainCommit)>, AppError> {
            // A slow disk: the host loop must not wait for this.
            std::thread::sleep(Duration::from_millis(1500));
            Ok(None)
        }
        fn earliest_height(&self) -> u64 {
            1
        }
    }

    const CHAIN: u64 = 9928;

    fn setup() -> (Host, Vec<ValidatorKey>, Arc<FakeChain>) {
        let keys: Vec<ValidatorKey> = (0..4).map(|_| ValidatorKey::generate()).collect();
        let validators =
            ValidatorSet::new(keys.iter().map(|k| Validator::new(k.signing_key.verifying_key(), 1))).unwrap();
        let config = HostConfig {
            chain_id: CHAIN,
            validators,
            signer: None,
            timeouts: LinearTimeouts::default(),
            target_time: None,
        };
        let chain = Arc::new(FakeChain::default());
        (Host::new(chain.clone(), config, Arc::new(ConsensusMetrics::default())), keys, chain)
    }

    /// The stream for (height, round) signed by its proposer, or by another validator.
    fn stream(
        host: &Host,
        keys: &[ValidatorKey],
        (height, round): (u64, u32),
        signer_is_proposer: bool,
        block: &[u8],
    ) -> Vec<StreamMessage<ProposalPart>> {
        let proposer = host.config.validators.proposer(Height(height), round).address;
        let key = keys.iter().find(|k| (k.address() == proposer) == signer_is_proposer).unwrap();
        let init = ProposalInit {
            height: Height(height),
            round: Round::new(round),
            pol_round: Round::Nil,
            proposer: key.address(),
        };
        parts::split(init, block, CHAIN, &ValidatorSigner::new(key.signing_key.clone(), CHAIN))
    }

    fn peer(seed: u8) -> PeerId {
        let key = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([seed; 32]).unwrap();
        PeerId::from_bytes(&key.public().to_peer_id().to_bytes()).unwrap()
    }

    async fn deliver(
        host: &mut Host,
        from: PeerId,
        msgs: Vec<StreamMessage<ProposalPart>>,
    ) -> Option<ProposedValue<MetaContext>> {
        let mut out = None;
        for m in msgs {
            if let Some(v) = host.received_part(from, m).await {
                out = Some(v);
            }
        }
        out
    }

    fn rendered(host: &Host) -> String {
        let mut s = String::new();
        host.metrics.render(&mut s);
        s
    }

    #[tokio::test]
    async fn proposals_are_checked_before_consensus_sees_them() {
        let (mut host, keys, _) = setup();
        // From the proposer, a good block: a valid value.
        let msgs = stream(&host, &keys, (1, 0), true, &[1, 2, 3]);
        let value = deliver(&mut host, peer(9), msgs).await.expect("valid proposal");
        assert_eq!(value.validity, Validity::Valid);
        assert_eq!(value.value.0, alloy_primitives::keccak256([1u8, 2, 3]));

        // From the next round's proposer, a block that fails re-execution:
        // invalid, so consensus prevotes nil.
        let msgs = stream(&host, &keys, (1, 1), true, &[2, 2, 3]);
        let value = deliver(&mut host, peer(9), msgs).await.expect("judged proposal");
        assert_eq!(value.validity, Validity::Invalid);
        assert!(rendered(&host).contains("metanode_invalid_proposals_total 1"));

        // From a validator that is not the proposer: refused at its init, counted, sender cut off.
        let msgs = stream(&host, &keys, (1, 2), false, &[1, 9]);
        assert!(deliver(&mut host, peer(10), msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"wrong_proposer\"} 1"), "{}", rendered(&host));
        assert!(host.peers.is_banned(&peer(10)));

        // The proposer's stream with one data byte changed in flight: the chunk fails its signed hash.
        let mut msgs = stream(&host, &keys, (1, 3), true, &[1, 7, 7]);
        if let StreamContent::Data(ProposalPart::Data(d)) = &mut msgs[1].content {
            d[1] = 8;
        }
        assert!(deliver(&mut host, peer(11), msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"bad_chunk\"} 1"), "{}", rendered(&host));
        assert!(host.peers.is_banned(&peer(11)));

        // Far-future heights are dropped, near-future ones kept for later.
        let msgs = stream(&host, &keys, (9, 0), true, &[1]);
        assert!(deliver(&mut host, peer(9), msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"far_future\"} 1"));
        assert!(host.future.is_empty());
        let msgs = stream(&host, &keys, (2, 0), true, &[1]);
        assert!(deliver(&mut host, peer(9), msgs).await.is_none());
        assert_eq!(host.future.get(&Height(2)).map(Vec::len), Some(1));
        assert!(!host.peers.is_banned(&peer(9)));
    }

    #[tokio::test]
    async fn future_proposals_from_a_non_proposer_are_never_queued() {
        let (mut host, keys, _) = setup();
        for round in 0..4 {
            let msgs = stream(&host, &keys, (2, round), false, &[1]);
            assert!(deliver(&mut host, peer(12), msgs).await.is_none());
        }
        assert!(host.future.is_empty());
        assert!(host.peers.is_banned(&peer(12)));
    }

    #[tokio::test]
    async fn a_second_block_from_one_proposer_in_one_round_is_evidence_not_executed() {
        let (mut host, keys, chain) = setup();
        let msgs = stream(&host, &keys, (1, 0), true, &[1, 1]);
        assert!(deliver(&mut host, peer(9), msgs).await.is_some());
        for block in [[1u8, 2], [1, 3]] {
            let msgs = stream(&host, &keys, (1, 0), true, &block);
            assert!(deliver(&mut host, peer(9), msgs).await.is_none());
        }
        assert_eq!(chain.executions.load(Ordering::Relaxed), 1);
        assert!(rendered(&host).contains("metanode_equivocations_total"), "{}", rendered(&host));
        assert!(!rendered(&host).contains("metanode_equivocations_total 0"), "{}", rendered(&host));
    }

    #[tokio::test]
    async fn serving_a_sync_request_does_not_hold_up_the_host() {
        let (mut host, _, _) = setup();
        let (network, _net_rx) = mpsc::channel(4);
        let (built_tx, _built_rx) = mpsc::channel(4);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let started = Instant::now();
        let range = Height(1)..=Height(3);
        host.handle(AppMsg::GetDecidedValues { range, reply }, &network, &built_tx).await;
        assert!(started.elapsed() < Duration::from_millis(1000), "the host loop waited for the disk");
        assert!(answer.await.unwrap().is_empty());
    }
}

//! The host side of Malachite's app channel: answers every request the
//! engine makes (start a height, propose, check a proposal, commit, serve
//! and accept synced blocks) by calling the [`Application`].

use crate::{
    app::{Application, BlockRejected, BuiltBlock},
    certificate::{self, to_chain},
    metrics::ConsensusMetrics,
    parts::{self, AssembledProposal, PartStreams},
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

/// Heights ahead of ours whose proposals are kept until we get there.
const FUTURE_HEIGHTS: u64 = 2;
/// Proposals kept per future height.
const FUTURE_PROPOSALS: usize = 16;
/// Bytes of blocks returned in one sync response.
const SYNC_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

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
    /// Block bytes by hash for the current height: built here, or received and checked.
    blocks: HashMap<B256, Bytes>,
    /// Blocks this node proposed at the current height, by round.
    own: HashMap<Round, B256>,
    /// Values checked at the current height, for replays at round start.
    undecided: Vec<ProposedValue<MetaContext>>,
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
            blocks: HashMap::new(),
            own: HashMap::new(),
            undecided: Vec::new(),
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
                self.metrics.set_round(height.0, round.as_i64());
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                if let Some(pending) = self.future.remove(&height) {
                    for (publisher, proposal) in pending {
                        self.check_proposal(publisher, proposal).await;
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
                let _ = reply.send(self.decided_values(*range.start(), *range.end()));
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
        self.blocks.clear();
        self.own.clear();
        self.undecided.clear();
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
        let proposal = match self.streams.insert(publisher, part) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                self.metrics.dropped_message("proposal_part");
                tracing::warn!(%publisher, error = %e, "dropped a proposal stream");
                self.peers.disconnect(publisher, "proposal_part");
                return None;
            }
        };
        let height = proposal.init.height;
        if height < self.height {
            return None;
        }
        if height > self.height {
            if height.0 > self.height.0 + FUTURE_HEIGHTS {
                self.metrics.dropped_message("far_future");
                return None;
            }
            let queue = self.future.entry(height).or_default();
            if queue.len() < FUTURE_PROPOSALS {
                queue.push((publisher, proposal));
            }
            return None;
        }
        self.check_proposal(publisher, proposal).await
    }

    /// Checks a whole proposal at the current height: the right proposer, its
    /// signature over the stream, then the block by re-execution.
    /// A stream that fails either of the first two condemns `publisher`; a
    /// well-signed block that fails re-execution is for consensus to judge.
    async fn check_proposal(
        &mut self,
        publisher: PeerId,
        proposal: AssembledProposal,
    ) -> Option<ProposedValue<MetaContext>> {
        let init = &proposal.init;
        let expected = self.config.validators.proposer(init.height, init.round.as_u32().unwrap_or_default());
        if init.proposer != expected.address {
            self.metrics.dropped_message("wrong_proposer");
            tracing::warn!(height = %init.height, round = %init.round, claimed = %init.proposer, expected = %expected.address, "proposal from a validator that is not the proposer");
            self.peers.disconnect(publisher, "wrong_proposer");
            return None;
        }
        let refs: Vec<&[u8]> = proposal.chunks.iter().map(Vec::as_slice).collect();
        let signed = ProposalPart::stream_sign_bytes(self.config.chain_id, init, &refs);
        if !SignatureVerifier::verify_bytes(&signed, &proposal.fin.signature, &expected.public_key) {
            self.metrics.dropped_message("bad_signature");
            tracing::warn!(height = %init.height, round = %init.round, proposer = %init.proposer, "proposal stream with a bad signature");
            self.peers.disconnect(publisher, "bad_signature");
            return None;
        }
        let block = proposal.block();
        let init = proposal.init;
        let validity = match self.app.verify_block(init.height.0, block.clone()).await {
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

    fn decided_values(&self, start: Height, end: Height) -> Vec<RawDecidedValue<MetaContext>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for h in start.0..=end.0 {
            let (block, cert) = match self.app.decided_block(h) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(height = h, error = %e, "cannot read a decided block for a peer");
                    break;
                }
            };
            let Ok(cert) = certificate::from_chain(&cert) else { break };
            bytes += block.len();
            out.push(RawDecidedValue { value_bytes: block, certificate: certificate::to_extended(cert) });
            if bytes >= SYNC_RESPONSE_BYTES {
                break;
            }
        }
        out
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
        let (hash, validity) = match self.app.verify_block(height.0, block.clone()).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{app::AppError, Validator, ValidatorKey};
    use async_trait::async_trait;
    use malachitebft_app_channel::app::streaming::{StreamContent, StreamMessage};
    use metanode_primitives::CommitCertificate as ChainCommit;

    /// Accepts any block whose first byte is 1, and names it by that byte string's hash.
    struct FakeChain;

    #[async_trait]
    impl Application for FakeChain {
        fn committed_height(&self) -> u64 {
            0
        }
        async fn build_block(&self, _: u64) -> Result<BuiltBlock, AppError> {
            Err(AppError("not used".into()))
        }
        async fn verify_block(&self, _: u64, block: Bytes) -> Result<B256, BlockRejected> {
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
            Ok(None)
        }
        fn earliest_height(&self) -> u64 {
            1
        }
    }

    const CHAIN: u64 = 9928;

    fn setup() -> (Host, Vec<ValidatorKey>) {
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
        (Host::new(Arc::new(FakeChain), config, Arc::new(ConsensusMetrics::default())), keys)
    }

    fn stream(
        host: &Host,
        keys: &[ValidatorKey],
        signer_is_proposer: bool,
        block: &[u8],
    ) -> Vec<StreamMessage<ProposalPart>> {
        let proposer = host.config.validators.proposer(Height(1), 0).address;
        let key = keys.iter().find(|k| (k.address() == proposer) == signer_is_proposer).unwrap();
        let init =
            ProposalInit { height: Height(1), round: Round::new(0), pol_round: Round::Nil, proposer: key.address() };
        parts::split(init, block, CHAIN, &ValidatorSigner::new(key.signing_key.clone(), CHAIN))
    }

    fn peer() -> PeerId {
        let key = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([9u8; 32]).unwrap();
        PeerId::from_bytes(&key.public().to_peer_id().to_bytes()).unwrap()
    }

    async fn deliver(host: &mut Host, msgs: Vec<StreamMessage<ProposalPart>>) -> Option<ProposedValue<MetaContext>> {
        let mut out = None;
        for m in msgs {
            if let Some(v) = host.received_part(peer(), m).await {
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
        let (mut host, keys) = setup();
        // From the proposer, a good block: a valid value.
        let value = {
            let msgs = stream(&host, &keys, true, &[1, 2, 3]);
            deliver(&mut host, msgs).await
        }
        .expect("valid proposal");
        assert_eq!(value.validity, Validity::Valid);
        assert_eq!(value.value.0, alloy_primitives::keccak256([1u8, 2, 3]));

        // From the proposer, a block that fails re-execution: invalid, so consensus prevotes nil.
        let value = {
            let msgs = stream(&host, &keys, true, &[2, 2, 3]);
            deliver(&mut host, msgs).await
        }
        .expect("judged proposal");
        assert_eq!(value.validity, Validity::Invalid);
        assert!(rendered(&host).contains("metanode_invalid_proposals_total 1"));

        // From a validator that is not the proposer: dropped and counted.
        let msgs = stream(&host, &keys, false, &[1, 9]);
        assert!(deliver(&mut host, msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"wrong_proposer\"} 1"), "{}", rendered(&host));

        // The proposer's stream with one data byte changed in flight: the fin signature fails.
        let mut msgs = stream(&host, &keys, true, &[1, 7, 7]);
        if let StreamContent::Data(ProposalPart::Data(d)) = &mut msgs[1].content {
            d[1] = 8;
        }
        assert!(deliver(&mut host, msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"bad_signature\"} 1"));

        // Far-future heights are dropped, near-future ones kept for later.
        let proposer = host.config.validators.proposer(Height(9), 0).address;
        let key = keys.iter().find(|k| k.address() == proposer).unwrap();
        let init = ProposalInit { height: Height(9), round: Round::new(0), pol_round: Round::Nil, proposer };
        let msgs = parts::split(init, &[1], CHAIN, &ValidatorSigner::new(key.signing_key.clone(), CHAIN));
        assert!(deliver(&mut host, msgs).await.is_none());
        assert!(rendered(&host).contains("reason=\"far_future\"} 1"));
        assert!(host.future.is_empty());
    }
}

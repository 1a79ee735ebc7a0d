//! Starting Malachite's engine (network, WAL, consensus and sync actors) for
//! one node, and the host task that answers it.

use crate::{
    app::Application,
    codec::MetaCodec,
    guard::GuardedSigner,
    host::{Host, HostConfig},
    metrics::ConsensusMetrics,
    network_height::{signed_at, NetworkHeight},
    peer_guard::{PeerGuard, PeerWatch, WatchState},
    Ed25519, MetaContext, Proposal, Signature, SignatureVerifier, ValidatorAddress, ValidatorKey, ValidatorSet,
    ValidatorSigner, Vote,
};
use malachitebft_app_channel::app::types::core::{ValidatorProof, VoteExtensionScope};
use malachitebft_app_channel::{
    app::{
        config::{
            ConsensusConfig, DiscoveryConfig, NodeConfig, P2pConfig, ProtocolNames, PubSubProtocol, ValuePayload,
            ValueSyncConfig,
        },
        engine::network::NetworkMsg as EngineNetworkMsg,
        events::RxEvent,
        metrics::SharedRegistry,
        net::Multiaddr,
        types::{codec::Codec, core::LinearTimeouts, core::SigningScheme, Keypair},
    },
    ConsensusContext, EngineBuilder, EngineHandle, NetworkIdentity, NetworkRequest, RequestContext, Signer,
    SyncContext, WalContext,
};
use malachitebft_signing::{Error as VerifyError, VerificationResult, Verifier};
use ractor::Actor;
use std::{path::PathBuf, sync::Arc, time::Duration};

/// Future heights whose messages the engine keeps until it gets there;
/// messages beyond them are counted as dropped (the engine's bounded queue
/// evicts the highest heights first).
const BUFFERED_HEIGHTS: u64 = 16;

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A listen or peer address that is not a multiaddr.
    #[error("bad network address '{0}': {1}")]
    Address(String, String),
    /// The validator proof could not be made.
    #[error("cannot sign the validator proof: {0}")]
    Proof(String),
    /// Malachite refused to start.
    #[error("consensus engine failed to start: {0}")]
    Start(String),
}

/// Everything one node's consensus needs.
pub struct EngineConfig {
    /// A name for logs and peers.
    pub moniker: String,
    /// The chain id signatures are bound to.
    pub chain_id: u64,
    /// A digest of the genesis (block hash, chain id, validator set): part of
    /// every protocol name, so nodes of different chains cannot talk.
    pub network_id: String,
    /// The validator set.
    pub validators: ValidatorSet,
    /// This node's validator key; `None` runs a full node that follows and never votes.
    pub validator_key: Option<ValidatorKey>,
    /// The libp2p identity key (ed25519 seed).
    pub node_key: ValidatorKey,
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/26656`.
    pub listen: String,
    /// Peers to stay connected to.
    pub peers: Vec<String>,
    /// Relay consensus messages through peers (gossipsub) rather than send
    /// each straight to every connected peer (broadcast). Relaying reaches
    /// validators that are not directly connected, but a vote then arrives
    /// from a peer that need not be its author, so bad votes are only counted.
    pub relay: bool,
    /// The write-ahead log file.
    pub wal_path: PathBuf,
    /// The double-sign guard's state file (validators only).
    pub signer_state_path: PathBuf,
    /// Propose, prevote and precommit timeouts with their per-round growth.
    pub timeouts: LinearTimeouts,
    /// The shortest time between blocks; `None` finalizes as soon as decided.
    pub target_time: Option<Duration>,
}

/// A running consensus engine.
pub struct ConsensusHandle {
    /// Counters and gauges for the metrics endpoint.
    pub metrics: Arc<ConsensusMetrics>,
    /// The validator address (or the full node's network address).
    pub address: ValidatorAddress,
    engine: EngineHandle,
    host: tokio::task::JoinHandle<()>,
    events: tokio::task::JoinHandle<()>,
    reach: tokio::task::JoinHandle<()>,
    watch: ractor::ActorRef<crate::peer_guard::Seen>,
}

impl ConsensusHandle {
    /// Stops the engine and waits for its actors to exit.
    pub async fn stop(self) {
        self.engine.actor.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.engine.handle).await;
        self.host.abort();
        self.events.abort();
        self.reach.abort();
        self.watch.stop(None);
    }
}

/// Malachite's view of our configuration.
#[derive(Clone, Debug)]
struct NodeSettings {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for NodeSettings {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

fn multiaddr(s: &str) -> Result<Multiaddr, EngineError> {
    s.parse::<Multiaddr>().map_err(|e| EngineError::Address(s.to_string(), e.to_string()))
}

/// Protocol names carrying the network id.
fn protocol_names(network_id: &str) -> ProtocolNames {
    let d = ProtocolNames::default();
    let tag = |name: String| format!("/metanode/{network_id}{name}");
    ProtocolNames {
        consensus: tag(d.consensus),
        discovery_kad: tag(d.discovery_kad),
        discovery_regres: tag(d.discovery_regres),
        sync: tag(d.sync),
        validator_proof: tag(d.validator_proof),
    }
}

/// Starts the engine and the host for `app`.
pub async fn start(config: EngineConfig, app: Arc<dyn Application>) -> Result<ConsensusHandle, EngineError> {
    let keypair = Keypair::ed25519_from_bytes(config.node_key.signing_key.to_bytes())
        .map_err(|e| EngineError::Start(format!("node key: {e}")))?;
    let listen_addr = multiaddr(&config.listen)?;
    for file in [&config.wal_path, &config.signer_state_path] {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::Start(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    let persistent_peers = config.peers.iter().map(|p| multiaddr(p)).collect::<Result<Vec<_>, _>>()?;
    let settings = NodeSettings {
        moniker: config.moniker.clone(),
        consensus: ConsensusConfig {
            value_payload: ValuePayload::ProposalAndParts,
            queue_capacity: BUFFERED_HEIGHTS as usize,
            p2p: P2pConfig {
                listen_addr,
                persistent_peers,
                discovery: DiscoveryConfig { enabled: false, ..Default::default() },
                // Broadcast never relays: every message comes from its author,
                // so a bad one condemns the peer that sent it (see peer_guard).
                protocol: if config.relay { PubSubProtocol::default() } else { PubSubProtocol::Broadcast },
                protocol_names: protocol_names(&config.network_id),
                ..Default::default()
            },
            ..Default::default()
        },
        value_sync: ValueSyncConfig {
            enabled: true,
            status_update_interval: Duration::from_secs(1),
            batch_size: 100,
            parallel_requests: 8,
            // Our codec refuses more than this unread; servers never send more.
            max_response_size: bytesize::ByteSize::b(crate::codec::MAX_SYNC_RESPONSE_BYTES as u64),
            ..Default::default()
        },
    };

    let metrics = Arc::new(ConsensusMetrics::default());
    metrics.set_validators(config.validators.validators().len(), 0);
    let verifier = CountingVerifier { inner: SignatureVerifier::new(config.chain_id), metrics: metrics.clone() };
    let signer =
        config.validator_key.as_ref().map(|k| Arc::new(ValidatorSigner::new(k.signing_key.clone(), config.chain_id)));
    let (consensus_ctx, identity, address) = match &config.validator_key {
        Some(key) => {
            let address = key.address();
            let engine_signer = GuardedSigner::open(
                ValidatorSigner::new(key.signing_key.clone(), config.chain_id),
                config.chain_id,
                &config.signer_state_path,
            )
            .map_err(|e| EngineError::Start(e.to_string()))?;
            let public_key = Ed25519::encode_public_key(&key.signing_key.verifying_key());
            let proof = engine_signer
                .sign_validator_proof(public_key, keypair.public().to_peer_id().to_bytes())
                .await
                .map_err(|e| EngineError::Proof(format!("{e:?}")))?;
            let proof_bytes = MetaCodec::default().encode(&proof).map_err(|e| EngineError::Proof(e.to_string()))?;
            let identity =
                NetworkIdentity::new_validator(config.moniker.clone(), keypair, address.to_string(), proof_bytes);
            (ConsensusContext::new_validator(address, Box::new(verifier), Box::new(engine_signer)), identity, address)
        }
        None => {
            let address = config.node_key.address();
            let identity = NetworkIdentity::new(config.moniker.clone(), keypair, None);
            (ConsensusContext::new_full_node(address, Box::new(verifier)), identity, address)
        }
    };

    // The network actor is spawned here rather than by the engine builder so
    // that the peer guard holds a reference to it.
    let registry = SharedRegistry::global().with_moniker(settings.moniker.clone());
    let (network, tx_network) = malachitebft_app_channel::spawn::spawn_network_actor(
        identity,
        &settings.consensus,
        &settings.value_sync,
        &registry,
        MetaCodec::counting(metrics.clone()),
    )
    .await
    .map_err(|e| EngineError::Start(format!("{e:#}")))?;
    let guard = PeerGuard::new(network.clone(), metrics.clone());
    let (channels, engine) = EngineBuilder::new(MetaContext, settings)
        .with_default_wal(WalContext::new(config.wal_path.clone(), MetaCodec::default()))
        .with_custom_network(network.clone(), tx_network)
        .with_default_sync(SyncContext::new(MetaCodec::default()))
        .with_default_consensus(consensus_ctx)
        .with_default_request(RequestContext::new(100))
        .build()
        .await
        .map_err(|e| EngineError::Start(format!("{e:#}")))?;
    let watch_state = WatchState {
        guard: guard.clone(),
        chain_id: config.chain_id,
        validators: config.validators.clone(),
        senders_are_authors: !config.relay,
    };
    let (watch, _) = Actor::spawn(None, PeerWatch, watch_state)
        .await
        .map_err(|e| EngineError::Start(format!("peer watcher: {e}")))?;
    network
        .cast(EngineNetworkMsg::Subscribe(Box::new(watch.clone())))
        .map_err(|e| EngineError::Start(format!("peer watcher: {e}")))?;

    let events = tokio::spawn(watch_events(
        channels.events.subscribe(),
        metrics.clone(),
        NetworkHeight::new(config.chain_id, config.validators.clone()),
        config.validator_key.as_ref().map(|k| k.address()),
    ));
    let reach = tokio::spawn(watch_reach(
        channels.net_requests.clone(),
        config.validators.clone(),
        config.validator_key.as_ref().map(|k| k.address()),
        config.relay,
        metrics.clone(),
    ));
    let host_config = HostConfig {
        chain_id: config.chain_id,
        validators: config.validators,
        signer,
        timeouts: config.timeouts,
        target_time: config.target_time,
    };
    let host = tokio::spawn(Host::new(app, host_config, metrics.clone()).with_peer_guard(guard).run(channels));
    Ok(ConsensusHandle { metrics, address, engine, host, events, reach, watch })
}

/// How often the validators this node reaches directly are counted.
const REACH_INTERVAL: Duration = Duration::from_secs(10);

/// Counts the validators this node is directly connected to, from the
/// network's own record of verified validator proofs. Without relaying a
/// consensus message reaches only direct peers, so a validator that reaches
/// no more than 2/3 of the voting power (itself included) cannot help decide
/// a block: that gets a warning naming the likely causes, at most once a
/// minute.
async fn watch_reach(
    requests: tokio::sync::mpsc::Sender<NetworkRequest>,
    validators: ValidatorSet,
    own: Option<ValidatorAddress>,
    relay: bool,
    metrics: Arc<ConsensusMetrics>,
) {
    use malachitebft_app_channel::app::types::core::{Validator as _, ValidatorSet as _};
    let total = validators.total_voting_power();
    let mut last_warning: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(REACH_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Ok(Some(dump)) = NetworkRequest::dump_state(&requests).await else { continue };
        let reached: std::collections::HashSet<String> =
            dump.peers.values().filter_map(|p| p.consensus_address.clone()).collect();
        metrics.set_peer_validators(reached.len());
        let Some(own) = own.filter(|_| !relay) else { continue };
        let power: u64 = validators
            .validators()
            .iter()
            .filter(|v| v.address == own || reached.contains(&v.address.to_string()))
            .map(|v| v.voting_power())
            .sum();
        if power * 3 <= total * 2 && last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            last_warning = Some(std::time::Instant::now());
            tracing::warn!(reached = reached.len(), power, total, "this validator reaches validators with no more than 2/3 of the voting power, itself included, so it cannot help decide blocks: the others are down, or are not its direct peers (consensus messages are not relayed: list every validator in --bootnodes, or set --consensus.relay true)");
        }
    }
}

/// Follows the engine's events for the log and the metrics: the network's
/// height (the catch-up target); messages the engine will not use, counted
/// by reason (signed by a key outside the validator set, or for a height
/// beyond what it buffers); and messages signed with this node's own
/// validator key that this node did not send, which means another node runs
/// the same key.
async fn watch_events(
    mut events: RxEvent<MetaContext>,
    metrics: Arc<ConsensusMetrics>,
    mut network: NetworkHeight,
    own: Option<ValidatorAddress>,
) {
    use malachitebft_app_channel::app::engine::util::events::Event;
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        match events.recv().await {
            Ok(Event::Received(msg)) => {
                let (height, from) = signed_at(&msg);
                if !network.is_validator(&from) {
                    metrics.dropped_message("non_validator");
                    continue;
                }
                if let Some(target) = network.observe(&msg) {
                    metrics.set_network_height(target);
                }
                if Some(from) == own && last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warning = Some(std::time::Instant::now());
                    metrics.dropped_message("own_key_from_peer");
                    tracing::error!(validator = %from, %height, "DOUBLE-SIGNING RISK: another node on the network signs with this node's validator key; stop one of them now");
                }
                if height.0 > metrics.consensus_height().saturating_add(BUFFERED_HEIGHTS) {
                    metrics.dropped_message("far_future");
                }
            }
            Ok(Event::WalReplayBegin(height, count)) => {
                tracing::info!(%height, entries = count, "replaying the consensus WAL")
            }
            Ok(Event::WalReplayError(e)) => tracing::error!(error = %e, "consensus WAL replay failed"),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The verifier the engine calls for every signature a peer sends (votes,
/// proposals, certificates, validator proofs): ours, plus a count of the
/// ones that fail, which the engine then drops.
struct CountingVerifier {
    inner: SignatureVerifier,
    metrics: Arc<ConsensusMetrics>,
}

impl CountingVerifier {
    fn count(&self, result: Result<VerificationResult, VerifyError>) -> Result<VerificationResult, VerifyError> {
        if !matches!(result, Ok(VerificationResult::Valid)) {
            self.metrics.dropped_message("bad_signature");
        }
        result
    }
}

#[async_trait::async_trait]
impl Verifier<MetaContext> for CountingVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<VerificationResult, VerifyError> {
        self.count(self.inner.verify_signed_vote(vote, signature, public_key).await)
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<VerificationResult, VerifyError> {
        self.count(self.inner.verify_signed_proposal(proposal, signature, public_key).await)
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<MetaContext>,
        extension: &(),
        signature: &Signature,
        public_key: &ed25519_dalek::VerifyingKey,
    ) -> Result<VerificationResult, VerifyError> {
        self.count(self.inner.verify_signed_vote_extension(scope, extension, signature, public_key).await)
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<MetaContext>,
    ) -> Result<VerificationResult, VerifyError> {
        self.count(self.inner.verify_validator_proof(proof).await)
    }
}

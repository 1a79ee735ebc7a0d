//! MetaNode's own libp2p swarm (TCP + noise + yamux), separate from the
//! consensus network Malachite runs: transaction gossip, so a transaction
//! sent to any node reaches the proposers.
//!
//! Gossipsub carries batches of transactions on a topic named after the
//! network id (nodes of different chains never share a topic): whatever is
//! queued when the swarm gets to send goes out as one message, so a busy node
//! sends few large messages and an idle one sends each transaction at once.
//! Message ids are the keccak-256 of the content, so a message is forwarded
//! once however many peers send it; every transaction in it is judged by the
//! caller (the pool) before it is forwarded. Judging (signature recovery and
//! the pool's lock) runs on a thread of its own, never on the swarm task,
//! so the swarm keeps answering peers while a big batch is checked.
//!
//! Peers are held to [`PeerLimits`]: libp2p's connection limits, a per-peer
//! rate of transactions beyond which messages are ignored unjudged, a ban
//! with an expiry (disconnected, and refused when they dial again) for a peer
//! that keeps sending invalid transactions, and exponential backoff when a
//! configured peer cannot be reached or drops us.
//!
//! The identify handshake carries the network id (as protocol version) and
//! the chain id and genesis hash (in the agent string), so a peer started
//! from another genesis.json is named in an error and disconnected, where
//! the consensus network only warns of a protocol version mismatch.

mod batch;
mod peers;
mod worker;

pub use peers::PeerLimits;

use alloy_primitives::B256;
use batch::{claimed_len, encode_batch, message_id, MAX_BATCH_TXS};
use futures::StreamExt;
use libp2p::{
    allow_block_list::{self, BlockedPeers},
    connection_limits::{self, ConnectionLimits},
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode},
    identify, identity, noise,
    swarm::{dial_opts::DialOpts, DialError, ListenError, NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use peers::{Bans, RateLimiter, Redial};
use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use worker::{Judged, Work};

/// Why the swarm did not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A listen or peer address that is not a multiaddr.
    #[error("bad address '{0}': {1}")]
    Address(String, String),
    /// libp2p refused the configuration.
    #[error("p2p: {0}")]
    Setup(String),
}

/// What the receiver of a gossiped transaction decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New and valid: forward it.
    Accept,
    /// Already known or no longer useful: do not forward, do not blame the sender.
    Ignore,
    /// Malformed or invalid: do not forward, penalise the sender.
    Reject,
}

/// Settings of the swarm.
pub struct GossipConfig {
    /// Listen address, e.g. `/ip4/0.0.0.0/tcp/30303`.
    pub listen: String,
    /// Peers to dial at start and after they drop.
    pub peers: Vec<String>,
    /// Names the topic; nodes of other chains use another.
    pub network_id: String,
    /// The chain this node is on, told to peers so that one started from
    /// another genesis is named as such instead of silently never talking.
    pub chain: ChainIdentity,
    /// The node's ed25519 identity seed.
    pub node_key: [u8; 32],
    /// Largest message accepted or sent.
    pub max_message_bytes: usize,
    /// Connection limits, rate limits, bans and redial backoff.
    pub limits: PeerLimits,
}

/// What a node says about its chain in the identify handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainIdentity {
    /// The chain id.
    pub chain_id: u64,
    /// The hash of block 0.
    pub genesis_hash: B256,
}

impl ChainIdentity {
    /// The identify agent string: the client version and this chain.
    fn agent(&self) -> String {
        format!("metanode/{} chain={} genesis={}", env!("CARGO_PKG_VERSION"), self.chain_id, self.genesis_hash)
    }

    /// The chain in a peer's agent string, if it is a MetaNode's.
    fn from_agent(agent: &str) -> Option<Self> {
        let mut chain_id = None;
        let mut genesis_hash = None;
        for field in agent.split_whitespace() {
            if let Some(v) = field.strip_prefix("chain=") {
                chain_id = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("genesis=") {
                genesis_hash = v.parse().ok();
            }
        }
        Some(Self { chain_id: chain_id?, genesis_hash: genesis_hash? })
    }
}

/// Why a peer's chain differs from ours, in words an operator can act on.
fn chain_mismatch(ours: &ChainIdentity, theirs: Option<&ChainIdentity>) -> String {
    match theirs {
        None => "it is not a MetaNode, or too old to say which chain it is on".into(),
        Some(t) if t.genesis_hash != ours.genesis_hash => format!(
            "its genesis block is {} (chain id {}), ours is {} (chain id {}): the two nodes were started from different genesis.json files",
            t.genesis_hash, t.chain_id, ours.genesis_hash, ours.chain_id
        ),
        Some(t) if t.chain_id != ours.chain_id => {
            format!("its chain id is {}, ours is {}", t.chain_id, ours.chain_id)
        }
        Some(_) => "same genesis block and chain id, but another validator set in genesis.json".into(),
    }
}

/// Counts of what the swarm did to peers, for metrics.
#[derive(Debug, Default)]
struct Counters {
    foreign: AtomicU64,
    banned: AtomicU64,
    refused: AtomicU64,
    rate_limited: AtomicU64,
    published: AtomicU64,
}

/// A running gossip swarm.
pub struct TxGossip {
    outbound: mpsc::Sender<Vec<u8>>,
    peers: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl TxGossip {
    /// Publishes an encoded transaction; drops it (with a log line) when the
    /// swarm is too far behind, because the pool still holds it.
    pub fn publish(&self, tx: Vec<u8>) {
        match self.outbound.try_send(tx) {
            Ok(()) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => tracing::debug!("transaction gossip queue full; not forwarding a transaction"),
        }
    }

    /// Peers currently connected.
    pub fn peer_count(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Peers disconnected because they are on another chain (another
    /// genesis, chain id or validator set).
    pub fn foreign_peers(&self) -> u64 {
        self.counters.foreign.load(Ordering::Relaxed)
    }

    /// Peers banned for sending invalid transactions.
    pub fn banned_peers(&self) -> u64 {
        self.counters.banned.load(Ordering::Relaxed)
    }

    /// Connections refused: from banned peers, or over the connection limits.
    pub fn refused_connections(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }

    /// Messages ignored unjudged because their peer exceeded its rate, or
    /// too many were being judged already.
    pub fn rate_limited_messages(&self) -> u64 {
        self.counters.rate_limited.load(Ordering::Relaxed)
    }

    /// Transactions handed to [`Self::publish`] and queued for the swarm.
    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Stops the swarm.
    pub fn stop(&self) {
        self.task.abort();
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    blocked: allow_block_list::Behaviour<BlockedPeers>,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
}

fn multiaddr(s: &str) -> Result<Multiaddr, P2pError> {
    s.parse().map_err(|e: libp2p::multiaddr::Error| P2pError::Address(s.to_string(), e.to_string()))
}

/// Starts the swarm. `on_tx` judges every transaction a peer sends.
pub fn start(
    config: GossipConfig,
    on_tx: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static,
) -> Result<TxGossip, P2pError> {
    let listen = multiaddr(&config.listen)?;
    let peers = config.peers.iter().map(|p| multiaddr(p)).collect::<Result<Vec<_>, _>>()?;
    let keypair = identity::Keypair::ed25519_from_bytes(config.node_key).map_err(|e| P2pError::Setup(e.to_string()))?;
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(config.max_message_bytes)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .heartbeat_interval(Duration::from_millis(500))
        .message_id_fn(|m: &gossipsub::Message| MessageId::from(message_id(&m.data)))
        .build()
        .map_err(|e| P2pError::Setup(e.to_string()))?;
    let mut swarm: Swarm<Behaviour> = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_dns()
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_behaviour(|key| {
            let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
            let identify = identify::Behaviour::new(
                identify::Config::new(protocol_version(&config.network_id), key.public())
                    .with_agent_version(config.chain.agent()),
            );
            let max = Some(config.limits.max_peers);
            let limits = connection_limits::Behaviour::new(
                ConnectionLimits::default()
                    .with_max_established_incoming(max)
                    .with_max_established_outgoing(max)
                    .with_max_pending_incoming(max)
                    .with_max_pending_outgoing(max)
                    .with_max_established_per_peer(Some(2)),
            );
            Ok(Behaviour { limits, blocked: Default::default(), gossipsub, identify })
        })
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let topic = IdentTopic::new(format!("/metanode/{}/txs/1", config.network_id));
    swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(|e| P2pError::Setup(e.to_string()))?;
    swarm.listen_on(listen).map_err(|e| P2pError::Setup(e.to_string()))?;
    let (outbound, rx) = mpsc::channel(16_384);
    let count = Arc::new(AtomicUsize::new(0));
    let counters = Arc::new(Counters::default());
    let batch_bytes = config.max_message_bytes.saturating_sub(64 * 1024).max(config.max_message_bytes / 2);
    let limits = config.limits;
    let (judging, judged) =
        worker::spawn(Arc::new(on_tx), MAX_BACKLOG).map_err(|e| P2pError::Setup(format!("judging thread: {e}")))?;
    let state = SwarmState {
        topic,
        redial: Redial::new(peers, limits.redial_min, limits.redial_max, Instant::now()),
        rates: RateLimiter::new(limits.txs_per_second),
        bans: Bans::new(limits.max_rejects, limits.ban_duration),
        count: count.clone(),
        counters: counters.clone(),
        judging,
        judged,
        batch_bytes,
        chain: config.chain,
        protocol_version: protocol_version(&config.network_id),
    };
    let task = tokio::spawn(run(swarm, rx, state));
    Ok(TxGossip { outbound, peers: count, counters, task })
}

/// The identify protocol version: peers with another network id are on another chain.
fn protocol_version(network_id: &str) -> String {
    format!("/metanode/{network_id}/1")
}

/// What the swarm task holds besides the swarm.
struct SwarmState {
    topic: IdentTopic,
    redial: Redial,
    rates: RateLimiter,
    bans: Bans,
    count: Arc<AtomicUsize>,
    counters: Arc<Counters>,
    /// Messages to the judging thread.
    judging: std::sync::mpsc::SyncSender<Work>,
    /// Its verdicts.
    judged: mpsc::UnboundedReceiver<Judged>,
    batch_bytes: usize,
    chain: ChainIdentity,
    protocol_version: String,
}

/// How long a peer of another chain stays connected after its identify
/// arrives: long enough for ours to reach it.
const FOREIGN_GRACE: Duration = Duration::from_secs(1);
/// Messages waiting to be judged; more are ignored until the judge catches
/// up, so a flood cannot queue unbounded work.
const MAX_BACKLOG: usize = 256;

/// Whether a refused connection was refused by our bans or limits.
fn denied_by_us(cause: &libp2p::swarm::ConnectionDenied) -> bool {
    cause.downcast_ref::<allow_block_list::Blocked>().is_some()
        || cause.downcast_ref::<connection_limits::Exceeded>().is_some()
}

async fn run(mut swarm: Swarm<Behaviour>, mut outbound: mpsc::Receiver<Vec<u8>>, state: SwarmState) {
    let SwarmState {
        topic,
        mut redial,
        mut rates,
        mut bans,
        count,
        counters,
        judging,
        mut judged,
        batch_bytes,
        chain,
        protocol_version,
    } = state;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut connected: HashSet<PeerId> = HashSet::new();
    // Peers of another chain, disconnected a moment after we learn it, so
    // that our own identify answer reaches them and they log why too.
    let mut foreign: Vec<(Instant, PeerId)> = Vec::new();
    loop {
        tokio::select! {
            Some(tx) = outbound.recv() => {
                let mut size = tx.len();
                let mut batch = vec![tx];
                while batch.len() < MAX_BATCH_TXS && size < batch_bytes {
                    match outbound.try_recv() {
                        Ok(tx) => {
                            size += tx.len() + 4;
                            batch.push(tx);
                        }
                        Err(_) => break,
                    }
                }
                match swarm.behaviour_mut().gossipsub.publish(topic.clone(), encode_batch(&batch)) {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot gossip a transaction"),
                }
            }
            Some(Judged { id, source, verdict }) = judged.recv() => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => {
                        if bans.reject(source, Instant::now()) {
                            counters.banned.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(peer = %source, "banning a peer that keeps gossiping invalid transactions");
                            swarm.behaviour_mut().blocked.block_peer(source);
                        }
                        MessageAcceptance::Reject
                    }
                };
                swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
            }
            _ = tick.tick() => {
                let now = Instant::now();
                foreign.retain(|(due, peer)| {
                    if *due > now {
                        return true;
                    }
                    let _ = swarm.disconnect_peer_id(*peer);
                    false
                });
                if bans.any() {
                    for peer in bans.expire(now) {
                        tracing::info!(%peer, "ban over");
                        swarm.behaviour_mut().blocked.unblock_peer(peer);
                    }
                }
                for (index, addr) in redial.due(now, |p| connected.contains(p)) {
                    let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                    let id = opts.connection_id();
                    match swarm.dial(opts) {
                        Ok(()) => redial.dialing(index, id),
                        Err(e) => {
                            tracing::debug!(peer = %addr, error = %e, "cannot dial gossip peer");
                            redial.not_started(index, now);
                        }
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "transaction gossip listening"),
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
                    redial.established(connection_id, peer_id, Instant::now());
                    connected.insert(peer_id);
                    count.store(connected.len(), Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                    redial.ended(connection_id, Instant::now());
                    if num_established == 0 {
                        connected.remove(&peer_id);
                        rates.forget(&peer_id);
                        count.store(connected.len(), Ordering::Relaxed);
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                    redial.ended(connection_id, Instant::now());
                    if let DialError::Denied { cause } = &error {
                        if denied_by_us(cause) {
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tracing::debug!(%error, "gossip dial failed");
                }
                SwarmEvent::IncomingConnectionError { error: ListenError::Denied { cause }, peer_id, .. } => {
                    if denied_by_us(&cause) {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(peer = ?peer_id, %cause, "gossip connection refused");
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                    if info.protocol_version != protocol_version =>
                {
                    let why = chain_mismatch(&chain, ChainIdentity::from_agent(&info.agent_version).as_ref());
                    tracing::error!(peer = %peer_id, listen = ?info.listen_addrs, "peer is on another chain, disconnecting: {why}");
                    counters.foreign.fetch_add(1, Ordering::Relaxed);
                    foreign.push((Instant::now() + FOREIGN_GRACE, peer_id));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                })) => {
                    // Over its rate, or with the judge too far behind:
                    // ignored unjudged (not held against the peer).
                    let allowed = rates.allow(propagation_source, claimed_len(&message.data), Instant::now());
                    let work = Work { id: message_id.clone(), source: propagation_source, data: message.data };
                    if !allowed || judging.try_send(work).is_err() {
                        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn identity(genesis: u8) -> ChainIdentity {
        ChainIdentity { chain_id: 9928, genesis_hash: B256::repeat_byte(genesis) }
    }

    #[test]
    fn agent_strings_carry_the_chain_and_mismatches_are_explained() {
        let ours = identity(1);
        assert_eq!(ChainIdentity::from_agent(&ours.agent()), Some(ours.clone()));
        assert_eq!(ChainIdentity::from_agent("rust-libp2p/0.47"), None);
        let why = chain_mismatch(&ours, Some(&identity(2)));
        assert!(why.contains("different genesis.json") && why.contains(&B256::repeat_byte(2).to_string()), "{why}");
        let other_id = ChainIdentity { chain_id: 1, ..ours.clone() };
        assert!(chain_mismatch(&ours, Some(&other_id)).contains("chain id is 1, ours is 9928"));
        assert!(chain_mismatch(&ours, Some(&ours)).contains("validator set"));
        assert!(chain_mismatch(&ours, None).contains("not a MetaNode"));
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn node(key: u8, genesis: u8, network_id: &str, port: u16, peers: Vec<String>) -> TxGossip {
        let config = GossipConfig {
            listen: format!("/ip4/127.0.0.1/tcp/{port}"),
            peers,
            network_id: network_id.into(),
            chain: identity(genesis),
            node_key: [key; 32],
            max_message_bytes: 1 << 20,
            limits: PeerLimits::default(),
        };
        start(config, |_| Verdict::Accept).unwrap()
    }

    #[tokio::test]
    async fn a_peer_from_another_genesis_is_refused_by_both_sides() {
        let (port_a, port_b) = (free_port(), free_port());
        let a = node(1, 1, "aaaa", port_a, vec![]);
        let b = node(2, 2, "bbbb", port_b, vec![format!("/ip4/127.0.0.1/tcp/{port_a}")]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.foreign_peers() == 0 || b.foreign_peers() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the foreign peer was not refused");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Nodes of one chain stay connected.
        let port_c = free_port();
        let c = node(3, 1, "aaaa", port_c, vec![format!("/ip4/127.0.0.1/tcp/{port_a}")]);
        while c.peer_count() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "same-chain peers did not connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(c.peer_count(), 1);
        assert_eq!(c.foreign_peers(), 0);
        for n in [a, b, c] {
            n.stop();
        }
    }

    /// What a test node's judge saw.
    #[derive(Default)]
    struct Seen {
        accepted: Mutex<Vec<Vec<u8>>>,
        slow_started: std::sync::atomic::AtomicBool,
    }

    /// A node that accepts transactions starting with 1 (recording them),
    /// rejects those starting with 0xff, takes three seconds over those
    /// starting with 2, and ignores the rest.
    fn judging_node(key: u8, port: u16, peers: Vec<String>, limits: PeerLimits) -> (TxGossip, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let record = seen.clone();
        let config = GossipConfig {
            listen: format!("/ip4/127.0.0.1/tcp/{port}"),
            peers,
            network_id: "aaaa".into(),
            chain: identity(1),
            node_key: [key; 32],
            max_message_bytes: 1 << 20,
            limits,
        };
        let gossip = start(config, move |tx: &[u8]| match tx.first() {
            Some(1) => {
                record.accepted.lock().unwrap().push(tx.to_vec());
                Verdict::Accept
            }
            Some(2) => {
                record.slow_started.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(3));
                Verdict::Ignore
            }
            Some(0xff) => Verdict::Reject,
            _ => Verdict::Ignore,
        })
        .unwrap();
        (gossip, seen)
    }

    async fn wait(what: &str, secs: u64, ok: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn fast_redial() -> PeerLimits {
        PeerLimits {
            redial_min: Duration::from_millis(200),
            redial_max: Duration::from_millis(800),
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_sending_invalid_transactions_is_banned_until_expiry_and_valid_gossip_flows() {
        let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
        let ban = Duration::from_secs(5);
        let limits = PeerLimits { max_rejects: 2, ban_duration: ban, ..fast_redial() };
        let (a, seen) = judging_node(1, port_a, vec![], limits);
        let to_a = vec![format!("/ip4/127.0.0.1/tcp/{port_a}")];
        let (bad, _) = judging_node(2, port_b, to_a.clone(), fast_redial());
        let (good, _) = judging_node(3, port_c, to_a, fast_redial());
        wait("both peers connect", 20, || a.peer_count() == 2).await;

        // The bad peer gossips invalid transactions until it is banned.
        let mut i = 0u32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.banned_peers() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the peer sending invalid transactions was not banned");
            i += 1;
            bad.publish([&[0xff][..], &i.to_be_bytes()].concat());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let banned_at = tokio::time::Instant::now();
        wait("the banned peer is disconnected", 5, || a.peer_count() == 1).await;

        // While banned it keeps redialing and is refused; the honest peer's gossip still arrives.
        good.publish(vec![1, 7]);
        wait("valid gossip arrives", 10, || seen.accepted.lock().unwrap().contains(&vec![1, 7])).await;
        wait("the banned peer's redial is refused", 10, || a.refused_connections() > 0).await;
        while banned_at.elapsed() < ban - Duration::from_millis(1_500) {
            assert_eq!(a.peer_count(), 1, "a banned peer got back in before its ban expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(a.banned_peers(), 1);

        // After the ban it is let in again.
        wait("the peer reconnects after its ban", 20, || a.peer_count() == 2).await;
        assert!(banned_at.elapsed() >= ban - Duration::from_millis(300), "reconnected after {:?}", banned_at.elapsed());
        for n in [a, bad, good] {
            n.stop();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_limit_are_refused() {
        let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
        let (a, _) = judging_node(1, port_a, vec![], PeerLimits { max_peers: 1, ..fast_redial() });
        let to_a = vec![format!("/ip4/127.0.0.1/tcp/{port_a}")];
        let (b, _) = judging_node(2, port_b, to_a.clone(), fast_redial());
        wait("the first peer connects", 20, || a.peer_count() == 1).await;
        let (c, _) = judging_node(3, port_c, to_a, fast_redial());
        wait("the second peer is refused", 20, || a.refused_connections() > 0).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(a.peer_count(), 1, "a second peer got in over the limit");
        for n in [a, b, c] {
            n.stop();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_swarm_keeps_serving_peers_while_a_message_is_judged() {
        let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
        let (a, seen) = judging_node(1, port_a, vec![], fast_redial());
        let to_a = vec![format!("/ip4/127.0.0.1/tcp/{port_a}")];
        let (b, _) = judging_node(2, port_b, to_a.clone(), fast_redial());
        wait("the first peer connects", 20, || a.peer_count() == 1).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut i = 0u8;
        while !seen.slow_started.load(Ordering::SeqCst) {
            assert!(tokio::time::Instant::now() < deadline, "the slow message never reached the judge");
            i = i.wrapping_add(1);
            b.publish(vec![2, i]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The judge is busy for three seconds; the swarm still takes a new peer.
        let busy_since = tokio::time::Instant::now();
        let (c, _) = judging_node(3, port_c, to_a, fast_redial());
        wait("a new peer connects while the judge is busy", 10, || a.peer_count() == 2).await;
        assert!(busy_since.elapsed() < Duration::from_secs(3), "connected only after {:?}", busy_since.elapsed());
        for n in [a, b, c] {
            n.stop();
        }
    }
}

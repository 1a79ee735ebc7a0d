//! MetaNode's own libp2p swarm (TCP + noise + yamux), separate from the
//! consensus network Malachite runs: transaction gossip, so a transaction
//! sent to any node reaches the proposers.
//!
//! Gossipsub carries batches of transactions on a topic named after the
//! network id (nodes of different chains never share a topic): whatever is
//! queued when the swarm gets to send goes out as one message, so a busy node
//! sends few large messages and an idle one sends each transaction at once.
//! Message ids are the hash of the content, so a message is forwarded once
//! however many peers send it; every transaction in it is judged by the
//! caller (the pool) before it is forwarded, and a peer that keeps sending
//! invalid transactions is disconnected.
//!
//! The identify handshake carries the network id (as protocol version) and
//! the chain id and genesis hash (in the agent string), so a peer started
//! from another genesis.json is named in an error and disconnected, where
//! the consensus network only warns of a protocol version mismatch.

use alloy_primitives::B256;
use futures::StreamExt;
use libp2p::{
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode},
    identify, identity, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::sync::mpsc;

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

/// A running gossip swarm.
pub struct TxGossip {
    outbound: mpsc::Sender<Vec<u8>>,
    peers: Arc<AtomicUsize>,
    foreign_peers: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TxGossip {
    /// Publishes an encoded transaction; drops it (with a log line) when the
    /// swarm is too far behind, because the pool still holds it.
    pub fn publish(&self, tx: Vec<u8>) {
        if self.outbound.try_send(tx).is_err() {
            tracing::debug!("transaction gossip queue full; not forwarding a transaction");
        }
    }

    /// Peers currently connected.
    pub fn peer_count(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Peers disconnected because they are on another chain (another
    /// genesis, chain id or validator set).
    pub fn foreign_peers(&self) -> u64 {
        self.foreign_peers.load(Ordering::Relaxed)
    }

    /// Stops the swarm.
    pub fn stop(&self) {
        self.task.abort();
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
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
        .message_id_fn(|m: &gossipsub::Message| {
            let mut h = DefaultHasher::new();
            m.data.hash(&mut h);
            gossipsub::MessageId::from(h.finish().to_be_bytes().to_vec())
        })
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
            Ok(Behaviour { gossipsub, identify })
        })
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let topic = IdentTopic::new(format!("/metanode/{}/txs/1", config.network_id));
    swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(|e| P2pError::Setup(e.to_string()))?;
    swarm.listen_on(listen).map_err(|e| P2pError::Setup(e.to_string()))?;
    for peer in &peers {
        if let Err(e) = swarm.dial(peer.clone()) {
            tracing::debug!(%peer, error = %e, "cannot dial gossip peer yet");
        }
    }
    let (outbound, rx) = mpsc::channel(16_384);
    let count = Arc::new(AtomicUsize::new(0));
    let foreign_peers = Arc::new(AtomicU64::new(0));
    let batch_bytes = config.max_message_bytes.saturating_sub(64 * 1024).max(config.max_message_bytes / 2);
    let state = SwarmState {
        topic,
        peers,
        count: count.clone(),
        foreign_peers: foreign_peers.clone(),
        judge: Box::new(on_tx),
        batch_bytes,
        chain: config.chain,
        protocol_version: protocol_version(&config.network_id),
    };
    let task = tokio::spawn(run(swarm, rx, state));
    Ok(TxGossip { outbound, peers: count, foreign_peers, task })
}

/// The identify protocol version: peers with another network id are on another chain.
fn protocol_version(network_id: &str) -> String {
    format!("/metanode/{network_id}/1")
}

/// What the swarm task holds besides the swarm.
struct SwarmState {
    topic: IdentTopic,
    peers: Vec<Multiaddr>,
    count: Arc<AtomicUsize>,
    foreign_peers: Arc<AtomicU64>,
    judge: Judge,
    batch_bytes: usize,
    chain: ChainIdentity,
    protocol_version: String,
}

/// How long a peer of another chain stays connected after its identify
/// arrives: long enough for ours to reach it.
const FOREIGN_GRACE: Duration = Duration::from_secs(1);
/// Invalid messages a peer may send before it is disconnected.
const MAX_REJECTS: u32 = 16;
/// Most transactions in one gossip message.
const MAX_BATCH_TXS: usize = 2_048;

/// A batch: a u32 count, then each transaction as a u32 length and its bytes.
fn encode_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + txs.iter().map(|t| t.len() + 4).sum::<usize>());
    out.extend_from_slice(&(txs.len() as u32).to_be_bytes());
    for tx in txs {
        out.extend_from_slice(&(tx.len() as u32).to_be_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// The transactions of a batch, or `None` if the bytes are not exactly one.
fn decode_batch(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
        bytes = tail;
        Some(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    if count == 0 || count > MAX_BATCH_TXS {
        return None;
    }
    let mut txs = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        txs.push(take(len)?);
    }
    if !bytes.is_empty() {
        return None;
    }
    Some(txs)
}

/// One verdict for a message from the verdicts on its transactions.
fn judge_batch(data: &[u8], judge: &Judge) -> Verdict {
    let Some(txs) = decode_batch(data) else { return Verdict::Reject };
    let mut verdict = Verdict::Ignore;
    for tx in txs {
        match judge(tx) {
            Verdict::Reject => return Verdict::Reject,
            Verdict::Accept => verdict = Verdict::Accept,
            Verdict::Ignore => {}
        }
    }
    verdict
}

type Judge = Box<dyn Fn(&[u8]) -> Verdict + Send + Sync>;

async fn run(mut swarm: Swarm<Behaviour>, mut outbound: mpsc::Receiver<Vec<u8>>, state: SwarmState) {
    let SwarmState { topic, peers, count, foreign_peers, judge, batch_bytes, chain, protocol_version } = state;
    let mut redial = tokio::time::interval(Duration::from_secs(5));
    let mut connected: HashSet<PeerId> = HashSet::new();
    let mut rejects: HashMap<PeerId, u32> = HashMap::new();
    // Peers of another chain, disconnected a moment after we learn it, so
    // that our own identify answer reaches them and they log why too.
    let mut foreign: Vec<(tokio::time::Instant, PeerId)> = Vec::new();
    let mut sweep = tokio::time::interval(Duration::from_millis(250));
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
            _ = sweep.tick(), if !foreign.is_empty() => {
                let now = tokio::time::Instant::now();
                foreign.retain(|(due, peer)| {
                    if *due > now {
                        return true;
                    }
                    let _ = swarm.disconnect_peer_id(*peer);
                    false
                });
            }
            _ = redial.tick() => {
                if connected.len() < peers.len() {
                    for peer in &peers {
                        let _ = swarm.dial(peer.clone());
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "transaction gossip listening"),
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    connected.insert(peer_id);
                    count.store(connected.len(), Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    connected.remove(&peer_id);
                    count.store(connected.len(), Ordering::Relaxed);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                    if info.protocol_version != protocol_version =>
                {
                    let why = chain_mismatch(&chain, ChainIdentity::from_agent(&info.agent_version).as_ref());
                    tracing::error!(peer = %peer_id, listen = ?info.listen_addrs, "peer is on another chain, disconnecting: {why}");
                    foreign_peers.fetch_add(1, Ordering::Relaxed);
                    foreign.push((tokio::time::Instant::now() + FOREIGN_GRACE, peer_id));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                })) => {
                    let acceptance = match judge_batch(&message.data, &judge) {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                        Verdict::Reject => {
                            let n = rejects.entry(propagation_source).or_default();
                            *n += 1;
                            if *n >= MAX_REJECTS {
                                tracing::warn!(peer = %propagation_source, "disconnecting a peer that keeps gossiping invalid transactions");
                                let _ = swarm.disconnect_peer_id(propagation_source);
                                rejects.remove(&propagation_source);
                            }
                            MessageAcceptance::Reject
                        }
                    };
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        acceptance,
                    );
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_malformed_ones_are_refused() {
        let txs = vec![vec![1u8, 2, 3], vec![], vec![9u8; 300]];
        let bytes = encode_batch(&txs);
        let back: Vec<Vec<u8>> = decode_batch(&bytes).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(back, txs);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_none());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_batch(&long).is_none());
        assert!(decode_batch(&[0, 0, 0, 0]).is_none());
        assert!(decode_batch(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]).is_none());
    }

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

    #[test]
    fn one_bad_transaction_rejects_the_message() {
        let judge: Judge = Box::new(|tx: &[u8]| match tx.first() {
            Some(1) => Verdict::Accept,
            Some(2) => Verdict::Ignore,
            _ => Verdict::Reject,
        });
        assert_eq!(judge_batch(&encode_batch(&[vec![1], vec![2]]), &judge), Verdict::Accept);
        assert_eq!(judge_batch(&encode_batch(&[vec![2], vec![2]]), &judge), Verdict::Ignore);
        assert_eq!(judge_batch(&encode_batch(&[vec![1], vec![3]]), &judge), Verdict::Reject);
        assert_eq!(judge_batch(b"junk", &judge), Verdict::Reject);
    }
}

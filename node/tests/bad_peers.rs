//! Hostile peers on the consensus network of a real 4-validator testnet.
//! They speak Malachite's broadcast protocol under the same protocol names,
//! so the node lets them in, and publish what no honest node sends. What
//! cannot prove its sender bad (a validator's vote for a far-future height,
//! an oversized message, undecodable bytes) is dropped and counted by reason
//! in `metanode_dropped_messages_total`, and the sender stays connected. A
//! vote whose signature is not the claimed validator's, or one signed by a
//! key outside the validator set, is dropped, counted, and gets its sender
//! disconnected (`metanode_disconnected_peers_total`) and refused when it
//! dials again. The chain keeps finalizing throughout. A node of another
//! chain that dials a validator's gossip port is named and disconnected.

mod common;

use common::{net::*, *};
use libp2p::{
    futures::StreamExt,
    identify, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, Swarm, SwarmBuilder,
};
use libp2p_scatter::Topic;
use metanode_consensus::{
    channel::app::{
        streaming::{StreamContent, StreamId, StreamMessage},
        types::{codec::Codec, SignedConsensusMsg},
    },
    core::{Context, NilOrVal, Round},
    signing_traits::Signer,
    Height, MetaCodec, MetaContext, ProposalInit, ProposalPart, SignedInit, ValidatorAddress, ValidatorKey,
    ValidatorSigner,
};
use serde_json::json;
use std::time::{Duration, Instant};

const CHAIN_ID: u64 = 9928;
/// What is dropped and counted without proving who sent it.
const UNPROVEN: [&str; 3] = ["far_future", "oversized", "malformed"];

#[derive(NetworkBehaviour)]
struct Rogue {
    identify: identify::Behaviour,
    ping: libp2p::ping::Behaviour,
    broadcast: libp2p_scatter::Behaviour,
}

type RogueSwarm = Swarm<Rogue>;

/// A libp2p peer with identity `seed` that passes the node's identify check
/// (it knows the network id from `/status`) and can broadcast on the
/// consensus channels.
fn rogue_swarm(network_id: &str, seed: u8) -> RogueSwarm {
    let protocol_version = format!("/metanode/{network_id}/malachitebft-core-consensus/v1beta1");
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes([seed; 32]).unwrap();
    SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| Rogue {
            identify: identify::Behaviour::new(identify::Config::new(protocol_version, key.public())),
            ping: libp2p::ping::Behaviour::default(),
            broadcast: libp2p_scatter::Behaviour::new(Default::default()),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

/// Runs `swarm` until an event satisfies `done` (true) or `within` passes (false).
async fn drive_until(
    swarm: &mut RogueSwarm,
    within: Duration,
    mut done: impl FnMut(&SwarmEvent<RogueEvent>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(event) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
        if done(&event) {
            return true;
        }
    }
    false
}

/// Dials node 0's consensus port and waits until the node has announced
/// that it takes the consensus channel from us.
async fn connect(net: &Net, swarm: &mut RogueSwarm, consensus: &Topic) {
    swarm.dial(consensus_addr(net)).unwrap();
    let subscribed = drive_until(swarm, Duration::from_secs(30), |e| {
        matches!(e, SwarmEvent::Behaviour(RogueEvent::Broadcast(libp2p_scatter::Event::Subscribed(_, t))) if t == consensus)
    })
    .await;
    assert!(subscribed, "the node never announced the consensus channel to the rogue peer");
}

/// Node 0's consensus listen address.
fn consensus_addr(net: &Net) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{}", net.port(0, 2)).parse().unwrap()
}

/// Drives `swarm` until node 0 closes its connection, then checks that the
/// node counted one disconnection for `reason` and dropped more messages for
/// it than `dropped_before` (the engine drops future-height ones when it
/// gets there).
async fn expect_cut_off(net: &Net, swarm: &mut RogueSwarm, reason: &str, dropped_before: u64) {
    assert!(
        drive_until(swarm, Duration::from_secs(15), closed).await,
        "the node kept a peer that sent {reason} messages"
    );
    assert_eq!(disconnected(net, 0, reason), 1);
    wait_until(&format!("the node drops the {reason} messages"), Duration::from_secs(30), || {
        dropped(net, 0, reason) > dropped_before
    });
}

fn closed(event: &SwarmEvent<RogueEvent>) -> bool {
    matches!(event, SwarmEvent::ConnectionClosed { .. })
}

/// A prevote at `height` claiming to be from `claimed`, signed by `signer`, in wire bytes.
async fn vote(signer: &ValidatorSigner, claimed: ValidatorAddress, height: u64, round: u32) -> Vec<u8> {
    let vote = MetaContext.new_prevote(Height(height), Round::new(round), NilOrVal::Nil, claimed);
    let signed = signer.sign_vote(vote).await.unwrap();
    Codec::encode(&MetaCodec::default(), &SignedConsensusMsg::<MetaContext>::Vote(signed)).unwrap().to_vec()
}

/// The value of the sample `series` (name and labels) in node `index`'s metrics; 0 if absent.
fn sample(net: &Net, index: usize, series: &str) -> u64 {
    let needle = format!("{series} ");
    net.metrics(index)
        .lines()
        .find_map(|l| l.strip_prefix(needle.as_str()).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// How many messages node `index` dropped for `reason`.
fn dropped(net: &Net, index: usize, reason: &str) -> u64 {
    sample(net, index, &format!("metanode_dropped_messages_total{{reason=\"{reason}\"}}"))
}

/// How many peers node `index` disconnected for `reason`.
fn disconnected(net: &Net, index: usize, reason: &str) -> u64 {
    sample(net, index, &format!("metanode_disconnected_peers_total{{reason=\"{reason}\"}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_consensus_messages_are_dropped_counted_and_their_senders_cut_off() {
    let net = Net::generate(4, 0);
    let nodes: Vec<TestNode> = (0..4).map(|i| net.start(i)).collect();
    for node in &nodes {
        node.wait_for_block(3);
    }
    let status: serde_json::Value = serde_json::from_str(&http_request(&net.http(0), "GET", "/status", "").1).unwrap();
    let network_id = status["networkId"].as_str().expect("/status names the network id").to_string();
    let consensus = Topic::new(b"/consensus");
    let parts = Topic::new(b"/proposal_parts");
    let outsider = ValidatorSigner::new(ValidatorKey::generate().signing_key, CHAIN_ID);
    let validator_1 = ValidatorKey::load(&net.node_dir("validator-1").join("keys/validator_key.json")).unwrap();
    let validator_3 = ValidatorKey::load(&net.node_dir("validator-3").join("keys/validator_key.json")).unwrap();
    let validator_3 = ValidatorSigner::new(validator_3.signing_key, CHAIN_ID);
    let start_height = height(&nodes[0]) + 1;

    // 1. What proves nothing about its sender: counted, and the sender stays.
    let mut rogue = rogue_swarm(&network_id, 0x66);
    connect(&net, &mut rogue, &consensus).await;
    let before: Vec<u64> = UNPROVEN.iter().map(|r| dropped(&net, 0, r)).collect();
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut round = 0u32;
    loop {
        let h = height(&nodes[0]) + 1;
        // A validator's own, well-signed vote for a height a hundred thousand blocks ahead.
        let far = vote(&validator_3, validator_3.address(), h + 100_000, round).await;
        // A well-formed vote padded to 8 KiB, and bytes that are no message at all.
        let mut padded = vote(&validator_3, validator_3.address(), h, round + 1000).await;
        padded.resize(8 * 1024, round as u8);
        let messages = [
            (&consensus, far),
            (&consensus, padded),
            (&consensus, format!("not a consensus message {round}").into_bytes()),
            (&parts, format!("not a proposal part {round}").into_bytes()),
        ];
        for (topic, data) in messages {
            rogue.behaviour_mut().broadcast.broadcast(topic, data.into());
        }
        round += 1;
        let cut = drive_until(&mut rogue, Duration::from_millis(500), closed).await;
        assert!(!cut, "a peer was disconnected for messages that prove nothing about it");
        let counted: Vec<u64> = UNPROVEN.iter().map(|r| dropped(&net, 0, r)).collect();
        if counted.iter().zip(&before).all(|(now, was)| now > was) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every kind of bad message was counted: {before:?} before, {counted:?} now ({UNPROVEN:?})"
        );
    }
    assert_eq!(disconnected(&net, 0, "bad_signature"), 0);

    // 2. Votes signed by an outsider but claiming validator-1: a forged
    // signature. The sender is cut off at once; the engine drops the votes
    // when it reaches their heights.
    let forged_before = dropped(&net, 0, "bad_signature");
    let h = height(&nodes[0]) + 1;
    for ahead in 0..8 {
        let forged = vote(&outsider, validator_1.address(), h + ahead, 0).await;
        rogue.behaviour_mut().broadcast.broadcast(&consensus, forged.into());
    }
    expect_cut_off(&net, &mut rogue, "bad_signature", forged_before).await;
    // Dialing again within the ban, once the cut is long done: let in, then turned away.
    assert!(
        !drive_until(&mut rogue, Duration::from_secs(1), |e| matches!(e, SwarmEvent::ConnectionEstablished { .. }))
            .await
    );
    rogue.dial(consensus_addr(&net)).unwrap();
    assert!(drive_until(&mut rogue, Duration::from_secs(15), closed).await, "a banned peer was let back in");

    // 3. From another peer, a vote signed by a key in no validator set.
    let mut stranger = rogue_swarm(&network_id, 0x67);
    connect(&net, &mut stranger, &consensus).await;
    let strangers_before = dropped(&net, 0, "non_validator");
    let h = height(&nodes[0]) + 1;
    let unknown = vote(&outsider, outsider.address(), h, 0).await;
    stranger.behaviour_mut().broadcast.broadcast(&consensus, unknown.into());
    expect_cut_off(&net, &mut stranger, "non_validator", strangers_before).await;

    // The chain kept finalizing through all of it, and every node agrees.
    for node in &nodes {
        node.wait_for_block(start_height + 5);
        assert_eq!(node.rpc("eth_chainId", json!([])), json!("0x26c8"));
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    assert!(assert_same_chain(&refs) >= start_height + 5);
}

#[test]
fn a_node_from_another_genesis_is_refused() {
    let net = Net::generate(1, 0);
    let validator = net.start(0);
    validator.wait_for_block(1);
    // A dev chain has another validator set (the genesis block itself is the
    // same: it does not commit to the set); point its gossip at the validator.
    let dir = tempfile::tempdir().unwrap();
    let peer = format!("/ip4/127.0.0.1/tcp/{}", net.port(0, 4));
    let foreign = TestNode::start(dir.path(), &["--p2p.peers", &peer]);
    wait_until("the validator refuses the foreign node", Duration::from_secs(30), || {
        sample(&net, 0, "metanode_p2p_foreign_peers_total") > 0
    });
    // Both go on with their own chains, whose network ids differ.
    foreign.wait_for_block(2);
    validator.wait_for_block(height(&validator) + 2);
    let network_id = |url: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&http_request(url, "GET", "/status", "").1).unwrap()["networkId"]
            .clone()
    };
    assert_ne!(network_id(&foreign.http_url), network_id(&validator.http_url));
}

/// Peak resident memory of a node's process in bytes (VmHWM in /proc).
fn peak_rss(node: &TestNode) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

/// One proposal-stream message in wire bytes.
fn part_bytes(stream: &[u8], seq: u64, part: ProposalPart) -> Vec<u8> {
    let msg = StreamMessage::new(StreamId::new(bytes::Bytes::copy_from_slice(stream)), seq, StreamContent::Data(part));
    Codec::encode(&MetaCodec::default(), &msg).unwrap().to_vec()
}

/// A stream id as honest proposers make them: height, then round.
fn stream_id(height: u64, round: u32) -> Vec<u8> {
    [height.to_be_bytes(), i64::from(round).to_be_bytes()].concat()
}

/// Broadcasts `messages` from `swarm`, a few at a time so the swarm keeps
/// up; stops early when the node closes the connection. Returns whether it did.
async fn flood(swarm: &mut RogueSwarm, topic: &Topic, messages: impl Iterator<Item = Vec<u8>>) -> bool {
    for (i, data) in messages.enumerate() {
        swarm.behaviour_mut().broadcast.broadcast(topic, data.into());
        if i % 8 == 7 && drive_until(swarm, Duration::from_millis(20), closed).await {
            return true;
        }
    }
    drive_until(swarm, Duration::from_secs(15), closed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_stream_floods_are_bounded_and_their_senders_cut_off() {
    const MIB: usize = 1 << 20;
    let net = Net::generate(4, 0);
    let nodes: Vec<TestNode> = (0..4).map(|i| net.start(i)).collect();
    for node in &nodes {
        node.wait_for_block(3);
    }
    let status: serde_json::Value = serde_json::from_str(&http_request(&net.http(0), "GET", "/status", "").1).unwrap();
    let network_id = status["networkId"].as_str().unwrap().to_string();
    let parts = Topic::new(b"/proposal_parts");
    let consensus = Topic::new(b"/consensus");
    let outsider = ValidatorSigner::new(ValidatorKey::generate().signing_key, CHAIN_ID);
    let keys: Vec<ValidatorKey> = (0..4)
        .map(|i| ValidatorKey::load(&net.node_dir(&format!("validator-{i}")).join("keys/validator_key.json")).unwrap())
        .collect();
    let set = metanode_consensus::ValidatorSet::new(
        keys.iter().map(|k| metanode_consensus::Validator::new(k.signing_key.verifying_key(), 1)),
    )
    .unwrap();
    let (h0, t0) = (height(&nodes[0]), Instant::now());
    let junk = vec![0xAB; 256 * 1024];

    // 1. 200 streams of 64 MiB that never finish, parts without an init:
    // the sender is cut off within its small allowance.
    let mut flooder = rogue_swarm(&network_id, 0x70);
    connect(&net, &mut flooder, &consensus).await;
    let h = height(&nodes[0]) + 1;
    let messages = (0..256u64).flat_map(|seq| {
        let junk = junk.clone();
        (0..200u32).map(move |s| part_bytes(&stream_id(h, s), seq + 1, ProposalPart::Data(junk.clone())))
    });
    assert!(flood(&mut flooder, &parts, messages.take(6_000)).await, "a peer flooding unopened streams was kept");

    // 2. 200 streams that open with an init claiming the proposer, signed by
    // a key outside the set, then 64 MiB each: cut off at the first init.
    let mut forger = rogue_swarm(&network_id, 0x71);
    connect(&net, &mut forger, &consensus).await;
    let h = height(&nodes[0]) + 1;
    let messages = (0..200u32).flat_map(|round| {
        let proposer = set.proposer(Height(h), round).address;
        let init = ProposalInit { height: Height(h), round: Round::new(round), pol_round: Round::Nil, proposer };
        let hashes = vec![alloy_primitives::keccak256(&junk); 256];
        let signature = outsider.sign_bytes(&SignedInit::sign_bytes(CHAIN_ID, &init, &hashes));
        let id = stream_id(h, round);
        let opening = part_bytes(&id, 0, ProposalPart::Init(SignedInit { init, chunk_hashes: hashes, signature }));
        let junk = junk.clone();
        std::iter::once(opening).chain((1..=256).map(move |seq| part_bytes(&id, seq, ProposalPart::Data(junk.clone()))))
    });
    assert!(flood(&mut forger, &parts, messages.take(6_000)).await, "a peer forging stream inits was kept");

    // 3. A validator's own, well-signed streams for the next heights, in
    // rounds it does not propose: refused at the init, and the sender cut off.
    let mut impostor = rogue_swarm(&network_id, 0x72);
    connect(&net, &mut impostor, &consensus).await;
    let signer = ValidatorSigner::new(keys[3].signing_key.clone(), CHAIN_ID);
    let h = height(&nodes[0]);
    let streams: Vec<Vec<u8>> = (h + 1..=h + 2)
        .flat_map(|height| (0..8u32).map(move |round| (height, round)))
        .filter(|(height, round)| set.proposer(Height(*height), *round).address != signer.address())
        .flat_map(|(height, round)| {
            let init = ProposalInit {
                height: Height(height),
                round: Round::new(round),
                pol_round: Round::Nil,
                proposer: signer.address(),
            };
            metanode_consensus::parts::split(init, &vec![1u8; 4 * MIB], CHAIN_ID, &signer)
                .into_iter()
                .map(|m| Codec::encode(&MetaCodec::default(), &m).unwrap().to_vec())
        })
        .collect();
    assert!(flood(&mut impostor, &parts, streams.into_iter()).await, "a validator streaming out of turn was kept");
    // Each message travels on a substream of its own, so a flood's chunks can
    // overtake its init: an attacker is cut off for whichever comes first,
    // its init (bad signature, out of turn) or parts past the allowance.
    let cut: u64 = ["bad_signature", "wrong_proposer", "proposal_part"].iter().map(|r| disconnected(&net, 0, r)).sum();
    assert_eq!(cut, 3, "each of the three attackers is cut off once");

    // The chain kept finalizing at (a third of) its 300 ms block time
    // throughout, every validator stayed well under 1 GiB, and all agree.
    let elapsed = t0.elapsed();
    let made = height(&nodes[0]) - h0;
    let nominal = elapsed.as_millis() as u64 / 300;
    assert!(made * 3 >= nominal, "{made} blocks in {elapsed:?} under attack (nominal {nominal})");
    for (i, node) in nodes.iter().enumerate() {
        let peak = peak_rss(node);
        assert!(peak < 1 << 30, "validator {i} peaked at {} MiB", peak >> 20);
    }
    for node in &nodes {
        node.wait_for_block(height(&nodes[0]) + 2);
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    assert_same_chain(&refs);
}

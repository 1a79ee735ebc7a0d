//! A hostile peer on the consensus network of a real 4-validator testnet.
//! It speaks Malachite's gossip (the same protocol names, so the node lets
//! it in) and publishes what no honest node sends: votes whose signature is
//! not the claimed validator's, votes signed by a key outside the validator
//! set, a validator's vote for a far-future height, an oversized message
//! and undecodable bytes. The node drops each kind and counts it by reason
//! in `metanode_dropped_messages_total`, and the chain keeps finalizing.
//! A node of another chain that dials a validator's gossip port is named
//! and disconnected.

mod common;

use common::{net::*, *};
use libp2p::{
    futures::StreamExt,
    gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode},
    identify, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, Swarm, SwarmBuilder,
};
use metanode_consensus::{
    channel::app::types::{codec::Codec, SignedConsensusMsg},
    core::{Context, NilOrVal, Round},
    signing_traits::Signer,
    Height, MetaCodec, MetaContext, ValidatorAddress, ValidatorKey, ValidatorSigner,
};
use serde_json::json;
use std::time::{Duration, Instant};

const CHAIN_ID: u64 = 9928;
const REASONS: [&str; 5] = ["bad_signature", "non_validator", "far_future", "oversized", "malformed"];

#[derive(NetworkBehaviour)]
struct Rogue {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: libp2p::ping::Behaviour,
    broadcast: libp2p_scatter::Behaviour,
}

/// A libp2p peer that passes the node's identify check (it knows the
/// network id from `/status`) and can publish on the consensus topics.
fn rogue_swarm(network_id: &str) -> Swarm<Rogue> {
    let protocol_version = format!("/metanode/{network_id}/malachitebft-core-consensus/v1beta1");
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes([0x66; 32]).unwrap();
    SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(1 << 20)
                .validation_mode(ValidationMode::Strict)
                .build()
                .unwrap();
            Rogue {
                gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config).unwrap(),
                identify: identify::Behaviour::new(identify::Config::new(protocol_version, key.public())),
                ping: libp2p::ping::Behaviour::default(),
                broadcast: libp2p_scatter::Behaviour::new(Default::default()),
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_consensus_messages_are_dropped_counted_and_harmless() {
    let net = Net::generate(4, 0);
    let nodes: Vec<TestNode> = (0..4).map(|i| net.start(i)).collect();
    for node in &nodes {
        node.wait_for_block(3);
    }
    let before: Vec<u64> = REASONS.iter().map(|r| dropped(&net, 0, r)).collect();

    let status: serde_json::Value = serde_json::from_str(&http_request(&net.http(0), "GET", "/status", "").1).unwrap();
    let network_id = status["networkId"].as_str().expect("/status names the network id").to_string();
    let mut swarm = rogue_swarm(&network_id);
    let target: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", net.port(0, 2)).parse().unwrap();
    swarm.dial(target).unwrap();
    let consensus = IdentTopic::new("/consensus");
    let parts = IdentTopic::new("/proposal_parts");
    swarm.behaviour_mut().gossipsub.subscribe(&consensus).unwrap();
    swarm.behaviour_mut().gossipsub.subscribe(&parts).unwrap();

    // Wait until the node has told us it listens on the consensus topic.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), swarm.select_next_some())
            .await
            .expect("the node never subscribed the rogue peer to /consensus");
        if let SwarmEvent::Behaviour(RogueEvent::Gossipsub(gossipsub::Event::Subscribed { topic, .. })) = event {
            if topic == consensus.hash() {
                break;
            }
        }
    }

    let outsider = ValidatorSigner::new(ValidatorKey::generate().signing_key, CHAIN_ID);
    let validator_1 = ValidatorKey::load(&net.node_dir("validator-1").join("keys/validator_key.json")).unwrap();
    let validator_3 = ValidatorKey::load(&net.node_dir("validator-3").join("keys/validator_key.json")).unwrap();
    let validator_3 = ValidatorSigner::new(validator_3.signing_key, CHAIN_ID);
    let start_height = height(&nodes[0]) + 1;
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut round = 0u32;
    loop {
        let h = height(&nodes[0]) + 1;
        let mut messages = Vec::new();
        for ahead in 0..8 {
            // Signed by an outsider but claiming validator-1: a bad signature,
            // checked when the node reaches that height.
            messages.push((&consensus, vote(&outsider, validator_1.address(), h + ahead, round).await));
        }
        // Signed by a key that is in no validator set.
        messages.push((&consensus, vote(&outsider, outsider.address(), h, round).await));
        // A validator's own vote, for a height a hundred thousand blocks ahead.
        messages.push((&consensus, vote(&validator_3, validator_3.address(), h + 100_000, round).await));
        // A well-formed vote padded to 8 KiB, and bytes that are no message at all.
        let mut padded = vote(&outsider, outsider.address(), h, round + 1000).await;
        padded.resize(8 * 1024, round as u8);
        messages.push((&consensus, padded));
        messages.push((&consensus, format!("not a consensus message {round}").into_bytes()));
        messages.push((&parts, format!("not a proposal part {round}").into_bytes()));
        for (topic, data) in messages {
            let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data);
        }
        round += 1;

        // Drive the swarm for a while so the messages go out.
        let pause = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                _ = swarm.select_next_some() => {}
            }
        }
        let counted: Vec<u64> = REASONS.iter().map(|r| dropped(&net, 0, r)).collect();
        if counted.iter().zip(&before).all(|(now, was)| now > was) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every kind of bad message was counted: {:?} before, {:?} now ({REASONS:?})",
            before,
            counted
        );
    }

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

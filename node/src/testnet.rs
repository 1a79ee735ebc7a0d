//! `metanode-node testnet`: writes a ready-to-run local network. One
//! directory per node (config.toml, genesis.json, keys), one shared genesis
//! with the validator set and the dev accounts funded, and a
//! docker-compose.yml that runs every node from the one image. The same
//! directories run as plain processes on loopback with
//! `metanode-node --datadir <dir>`: each config.toml holds that node's role,
//! loopback ports and peers; compose overrides them with `METANODE_*`
//! variables for the container network.

use crate::{config::Config, config::Role, dev, keys};
use anyhow::{bail, Context};
use metanode_consensus::ValidatorKey;
use std::{fmt::Write, net::IpAddr, path::PathBuf};

/// Ports one node uses, at `base + index * PORTS_PER_NODE + offset`.
const PORTS_PER_NODE: u16 = 10;
const HTTP_OFFSET: u16 = 0;
const WS_OFFSET: u16 = 1;
const CONSENSUS_OFFSET: u16 = 2;
const METRICS_OFFSET: u16 = 3;
const P2P_OFFSET: u16 = 4;

/// Arguments of `metanode-node testnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of full nodes (role blockchain).
    #[arg(long = "full-nodes", default_value_t = 0)]
    pub full_nodes: usize,
    /// Output directory (must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// First port of the loopback layout; node i uses base + 10*i + {0 http, 1 ws, 2 consensus, 3 metrics, 4 gossip}.
    #[arg(long = "base-port", default_value_t = 27000)]
    pub base_port: u16,
    /// Chain id.
    #[arg(long = "chain-id", default_value_t = metanode_primitives::DEFAULT_CHAIN_ID)]
    pub chain_id: u64,
    /// Block time written to every config.
    #[arg(long = "block-time", default_value = "1s")]
    pub block_time: String,
    /// Image the compose file runs.
    #[arg(long, default_value = "metanode:latest")]
    pub image: String,
}

/// One node of the generated network.
struct NodePlan {
    name: String,
    role: Role,
    index: u16,
    validator_key: Option<ValidatorKey>,
}

impl NodePlan {
    fn port(&self, base: u16, offset: u16) -> u16 {
        base + self.index * PORTS_PER_NODE + offset
    }
}

/// Writes the network and prints how to start it.
pub fn generate(args: &TestnetArgs) -> anyhow::Result<()> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let total = args.validators + args.full_nodes;
    let last_port = u32::from(args.base_port) + total as u32 * u32::from(PORTS_PER_NODE);
    if last_port > u32::from(u16::MAX) {
        bail!("--base-port {} leaves no room for {total} nodes", args.base_port);
    }
    crate::config::parse_duration(&args.block_time).map_err(|e| anyhow::anyhow!("--block-time: {e}"))?;
    if args.out.exists() && args.out.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty; choose a new --out directory", args.out.display());
    }
    let mut nodes: Vec<NodePlan> = (0..args.validators)
        .map(|i| NodePlan {
            name: format!("validator-{i}"),
            role: Role::Validator,
            index: i as u16,
            validator_key: Some(ValidatorKey::generate()),
        })
        .collect();
    nodes.extend((0..args.full_nodes).map(|i| NodePlan {
        name: format!("fullnode-{i}"),
        role: Role::Blockchain,
        index: (args.validators + i) as u16,
        validator_key: None,
    }));

    let accounts: Vec<_> = dev::dev_signers()?.iter().map(|s| s.address()).collect();
    let genesis = dev::dev_genesis(args.chain_id, &accounts);
    let validators: Vec<_> =
        nodes.iter().filter_map(|n| n.validator_key.as_ref().map(|k| dev::genesis_validator(k, &n.name))).collect();
    let genesis_text = dev::genesis_json(&genesis, &validators)?;

    for node in &nodes {
        let dir = args.out.join(&node.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("genesis.json"), &genesis_text)?;
        keys::load_or_create(&keys::node_key_path(&dir))?;
        if let Some(key) = &node.validator_key {
            key.save(&keys::validator_key_path(&dir))?;
        }
        let mut config = Config { role: node.role, block_time: args.block_time.clone(), ..Config::default() };
        config.chain_id = Some(args.chain_id);
        config.http.port = node.port(args.base_port, HTTP_OFFSET);
        config.ws.port = node.port(args.base_port, WS_OFFSET);
        config.metrics.port = node.port(args.base_port, METRICS_OFFSET);
        config.consensus.addr = Some(IpAddr::from([127, 0, 0, 1]));
        config.consensus.port = Some(node.port(args.base_port, CONSENSUS_OFFSET));
        config.consensus.moniker = Some(node.name.clone());
        config.consensus.peers = nodes
            .iter()
            .filter(|other| other.index != node.index)
            .map(|other| format!("/ip4/127.0.0.1/tcp/{}", other.port(args.base_port, CONSENSUS_OFFSET)))
            .collect();
        config.p2p.addr = Some(IpAddr::from([127, 0, 0, 1]));
        config.p2p.port = Some(node.port(args.base_port, P2P_OFFSET));
        config.p2p.peers = nodes
            .iter()
            .filter(|other| other.index != node.index)
            .map(|other| format!("/ip4/127.0.0.1/tcp/{}", other.port(args.base_port, P2P_OFFSET)))
            .collect();
        std::fs::write(dir.join("config.toml"), config.to_toml())?;
    }
    std::fs::write(args.out.join("docker-compose.yml"), compose_file(args, &nodes))?;
    print!("{}", summary(args, &nodes));
    Ok(())
}

/// The compose file: every node from one image, its directory mounted at
/// /data, role and container-network peers from the environment, JSON-RPC
/// and metrics published on loopback at the same ports as the process layout.
fn compose_file(args: &TestnetArgs, nodes: &[NodePlan]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Generated by `metanode-node testnet`. Start with: docker compose up -d");
    // Version 3.8 so that docker-compose 1.x (Debian's) reads it as well as compose v2.
    let _ = writeln!(out, "version: \"3.8\"\nservices:");
    for node in nodes {
        let others = || nodes.iter().filter(|o| o.index != node.index);
        let peers: Vec<String> = others().map(|o| format!("/dns4/{}/tcp/26656", o.name)).collect();
        let gossip_peers: Vec<String> = others().map(|o| format!("/dns4/{}/tcp/30303", o.name)).collect();
        let _ = writeln!(out, "  {}:", node.name);
        let _ = writeln!(out, "    image: {}", args.image);
        let _ = writeln!(out, "    hostname: {}", node.name);
        let _ = writeln!(out, "    environment:");
        let _ = writeln!(out, "      METANODE_ROLE: {}", node.role);
        let _ = writeln!(out, "      METANODE_DATADIR: /data");
        let _ = writeln!(out, "      METANODE_HTTP_ADDR: 0.0.0.0");
        let _ = writeln!(out, "      METANODE_HTTP_PORT: \"8545\"");
        let _ = writeln!(out, "      METANODE_WS_ADDR: 0.0.0.0");
        let _ = writeln!(out, "      METANODE_WS_PORT: \"8546\"");
        let _ = writeln!(out, "      METANODE_CONSENSUS_ADDR: 0.0.0.0");
        let _ = writeln!(out, "      METANODE_CONSENSUS_PORT: \"26656\"");
        let _ = writeln!(out, "      METANODE_METRICS_ADDR: 0.0.0.0");
        let _ = writeln!(out, "      METANODE_METRICS: \"9001\"");
        let _ = writeln!(out, "      METANODE_BOOTNODES: \"{}\"", peers.join(","));
        let _ = writeln!(out, "      METANODE_P2P_ADDR: 0.0.0.0");
        let _ = writeln!(out, "      METANODE_P2P_PORT: \"30303\"");
        let _ = writeln!(out, "      METANODE_P2P_PEERS: \"{}\"", gossip_peers.join(","));
        let _ = writeln!(out, "    volumes:\n      - ./{}:/data", node.name);
        let _ = writeln!(out, "    ports:");
        let _ = writeln!(out, "      - \"127.0.0.1:{}:8545\"", node.port(args.base_port, HTTP_OFFSET));
        let _ = writeln!(out, "      - \"127.0.0.1:{}:9001\"", node.port(args.base_port, METRICS_OFFSET));
        let _ = writeln!(out, "    networks: [metanode]");
        let _ = writeln!(out, "    stop_grace_period: 20s");
    }
    let _ = writeln!(out, "networks:\n  metanode: {{}}");
    out
}

fn summary(args: &TestnetArgs, nodes: &[NodePlan]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Wrote a {}-validator, {}-full-node testnet (chain id {}) to {}\n",
        args.validators,
        args.full_nodes,
        args.chain_id,
        args.out.display()
    );
    let _ = writeln!(s, "Start with Docker:   cd {} && docker compose up -d", args.out.display());
    let _ =
        writeln!(s, "Or as processes:     metanode-node --datadir {}/<node>   (one per node)\n", args.out.display());
    let _ = writeln!(s, "{:<14} {:<11} {:<28} {:<28} {:<8}", "node", "role", "JSON-RPC", "metrics", "p2p");
    for n in nodes {
        let _ = writeln!(
            s,
            "{:<14} {:<11} {:<28} {:<28} {:<8}",
            n.name,
            n.role.to_string(),
            format!("http://127.0.0.1:{}", n.port(args.base_port, HTTP_OFFSET)),
            format!("http://127.0.0.1:{}/metrics", n.port(args.base_port, METRICS_OFFSET)),
            n.port(args.base_port, CONSENSUS_OFFSET)
        );
    }
    let _ = writeln!(s, "\nThe funded accounts are the public TEST ONLY dev accounts (see `metanode-node --dev`).");
    s
}

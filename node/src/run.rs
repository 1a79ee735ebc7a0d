//! Starting the node: resolve configuration, lock and open the data
//! directory, load or create the genesis, start RPC and block production,
//! and shut down cleanly on SIGINT/SIGTERM.

use crate::{
    chain::ChainService,
    cli::{default_datadir, RunArgs},
    config::{Config, LogFormat, Role, SUPPORTED_ROLES},
    consensus_app::ChainApp,
    dev, gossip, keys,
    metrics::{self, MetricsSources},
};
use anyhow::{bail, Context};
use metanode_consensus::{core::LinearTimeouts, EngineConfig, Validator, ValidatorKey, ValidatorSet};
use metanode_execution::{init_genesis, txpool::TxPool, Executor};
use metanode_p2p::{ChainIdentity, GossipConfig, PeerLimits};
use metanode_primitives::ChainSpec;
use metanode_rpc::{ApiConfig, CallLimits, EthApi, ServerOptions};
use metanode_storage::{ChainDb, DbOptions, HistoryMode};
use std::{
    fs::File,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

/// An exclusive lock on a data directory, held for the life of the process.
struct DataDirLock {
    _file: File,
}

fn lock_datadir(dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "data directory {} is in use by another metanode-node process; stop it or choose another --datadir",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Malachite and libp2p log every step of every height at info; below the
/// node's own level unless the operator names them in `--log.level`.
const QUIET_DEPENDENCIES: &str = "arc_malachitebft=warn,libp2p=warn,ractor=warn";

fn init_logging(config: &Config, is_dev: bool) -> anyhow::Result<()> {
    let level = &config.log.level;
    let mut directives = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => env,
        _ => format!("{QUIET_DEPENDENCIES},{level}"),
    };
    if is_dev {
        // One validator has no peers: every publish "fails" with NoPeersSubscribedToTopic.
        directives.push_str(",arc_malachitebft_network=off");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid log filter '{directives}'"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Terminal => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// The genesis to use: an explicit file, the data directory's, or (dev mode)
/// a generated one whose only validator is `dev_validator`.
fn load_genesis(config: &Config, datadir: &Path, dev_validator: Option<&ValidatorKey>) -> anyhow::Result<ChainSpec> {
    let path = config.genesis.clone().unwrap_or_else(|| datadir.join("genesis.json"));
    let spec = if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read genesis {}", path.display()))?;
        ChainSpec::from_json(&text).with_context(|| format!("genesis {} is broken", path.display()))?
    } else if config.genesis.is_some() {
        bail!("genesis file {} does not exist", path.display());
    } else if let Some(validator) = dev_validator {
        let accounts: Vec<_> = dev::dev_signers()?.iter().map(|s| s.address()).collect();
        let genesis = dev::dev_genesis(config.chain_id.unwrap_or(metanode_primitives::DEFAULT_CHAIN_ID), &accounts);
        let text = dev::genesis_json(&genesis, &[dev::genesis_validator(validator, "dev")])?;
        std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        ChainSpec::from_json(&text)?
    } else {
        bail!(
            "no genesis: {} does not exist. Run `metanode-node init --datadir {}`, pass --genesis FILE, or use --dev",
            path.display(),
            datadir.display()
        );
    };
    if let Some(id) = config.chain_id {
        if id != spec.chain_id {
            bail!("--chain-id {id} does not match the genesis chain id {}", spec.chain_id);
        }
    }
    Ok(spec)
}

fn open_db(config: &Config, datadir: &Path) -> anyhow::Result<ChainDb> {
    let history = if config.state.archive { HistoryMode::Archive } else { HistoryMode::Window(config.state.history) };
    let path = datadir.join("db");
    ChainDb::open(&path, DbOptions { history, ..Default::default() })
        .with_context(|| format!("cannot open the chain database in {}", path.display()))
}

/// `metanode-node init`: writes genesis.json and config.toml and initialises the database.
pub fn init(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let datadir = config.datadir.clone().unwrap_or_else(default_datadir);
    let _lock = lock_datadir(&datadir)?;
    let genesis_path = datadir.join("genesis.json");
    let validator = keys::load_or_create(&keys::validator_key_path(&datadir))?;
    keys::load_or_create(&keys::node_key_path(&datadir))?;
    if config.genesis.is_none() && !genesis_path.exists() {
        // A fresh one-validator chain: funded with the public test accounts, like --dev.
        let accounts: Vec<_> = dev::dev_signers()?.iter().map(|s| s.address()).collect();
        let genesis = dev::dev_genesis(config.chain_id.unwrap_or(metanode_primitives::DEFAULT_CHAIN_ID), &accounts);
        std::fs::write(
            &genesis_path,
            dev::genesis_json(&genesis, &[dev::genesis_validator(&validator, "validator-0")])?,
        )?;
        println!("wrote {} (funds the public TEST ONLY accounts; replace alloc for real use)", genesis_path.display());
    }
    let spec = load_genesis(&config, &datadir, None)?;
    let config_path = datadir.join("config.toml");
    if !config_path.exists() {
        let mut written = config.clone();
        written.datadir = None;
        std::fs::write(&config_path, written.to_toml())?;
        println!("wrote {}", config_path.display());
    }
    let db = open_db(&config, &datadir)?;
    let genesis = init_genesis(&db, &spec).context("cannot initialise the genesis")?;
    println!("initialised chain {} with genesis {} in {}", spec.chain_id, genesis.hash, datadir.display());
    Ok(())
}

/// `metanode-node [node]`: runs until SIGINT or SIGTERM.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_logging(&config, args.dev)?;
    if !SUPPORTED_ROLES.contains(&config.role) {
        let supported: Vec<String> = SUPPORTED_ROLES.iter().map(|r| r.to_string()).collect();
        bail!("role '{}' is not supported by this build; supported roles: {}", config.role, supported.join(", "));
    }
    let is_dev = args.dev;
    if is_dev && config.role != Role::Validator {
        bail!("--dev runs the chain's only validator; it cannot run with --role {}", config.role);
    }
    // Dev mode without --datadir runs in a temporary directory removed on exit.
    let temp = if is_dev && config.datadir.is_none() {
        Some(
            tempfile::Builder::new()
                .prefix("metanode-dev-")
                .tempdir()
                .context("cannot create a temporary data directory")?,
        )
    } else {
        None
    };
    let datadir: PathBuf = match &temp {
        Some(t) => t.path().to_path_buf(),
        None => config.datadir.clone().unwrap_or_else(default_datadir),
    };
    let _lock = lock_datadir(&datadir)?;
    let node_key = keys::load_or_create(&keys::node_key_path(&datadir))?;
    let dev_key = if is_dev { Some(keys::load_or_create(&keys::validator_key_path(&datadir))?) } else { None };
    let spec = Arc::new(load_genesis(&config, &datadir, dev_key.as_ref())?);
    let validator_key = match config.role {
        Role::Validator if is_dev => dev_key.clone(),
        Role::Validator => {
            let path = keys::validator_key_path(&datadir);
            if !path.exists() {
                bail!(
                    "role 'validator' needs a validator key at {}; create one with `metanode-node init --datadir {}` or `metanode-node testnet`, or run with --role blockchain",
                    path.display(),
                    datadir.display()
                );
            }
            Some(ValidatorKey::load(&path).with_context(|| format!("cannot use validator key {}", path.display()))?)
        }
        _ => None,
    };
    let validators = validator_set(&spec, dev_key.as_ref())?;
    if let Some(key) = &validator_key {
        if !validators.validators().iter().any(|v| v.address == key.address()) {
            bail!(
                "validator key {} is not in the genesis validator set; run with --role blockchain to follow the chain without voting",
                key.address()
            );
        }
    }
    let db = Arc::new(open_db(&config, &datadir)?);
    let genesis = init_genesis(&db, &spec).context("cannot initialise the genesis")?;
    let head_number = db.head_number()?.unwrap_or_default();
    let head = db.sealed_block(head_number)?.context("head block missing from the database")?;
    tracing::info!(chain_id = spec.chain_id, genesis = %genesis.hash, head = head_number, head_hash = %head.hash, state_root = %head.header.state_root, validators = validators.validators().len(), role = %config.role, "chain loaded");

    let block_time = config.block_time()?;
    let timeouts = consensus_timeouts(&config, block_time)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let executor = Executor::new(db.clone(), spec.clone());
        let pool = Arc::new(TxPool::new(config.txpool.pool_config()?, spec.chain_id, head.header.gas_limit));
        let signers = if is_dev { dev::dev_signers()? } else { Vec::new() };
        let default_addr = if is_dev { IpAddr::from([127, 0, 0, 1]) } else { IpAddr::from([0, 0, 0, 0]) };
        let net_id = network_id(genesis.hash, &spec);
        // Peers with another genesis, chain id or validator set have another id:
        // the consensus network refuses them, transaction gossip names the
        // difference; the id in the log and in /status lets operators compare.
        tracing::info!(network_id = %net_id, "network id (genesis, chain id and validator set digest)");
        let api_config = ApiConfig {
            max_logs_range: config.rpc.max_logs_range,
            call_limits: CallLimits { gas_cap: config.rpc.gascap, timeout: config.rpc.evm_timeout()? },
            max_filters: config.rpc.max_filters,
            accounts: signers.iter().map(|s| s.address()).collect(),
            network_id: Some(net_id.clone()),
            ..Default::default()
        };
        let api = EthApi::new(executor.clone(), pool.clone(), api_config);
        let servers = metanode_rpc::start(
            api.clone(),
            &ServerOptions {
                http_addr: SocketAddr::new(config.http.addr, config.http.port),
                ws_addr: Some(SocketAddr::new(config.ws.addr, config.ws.port)),
                max_request_bytes: config.rpc.max_request_size,
                max_response_bytes: config.rpc.max_response_size,
                max_connections: config.http.max_connections,
                batch_request_limit: config.rpc.batch_request_limit,
                batch_response_max_bytes: config.rpc.batch_response_max_size,
                apis: config.http.api.clone(),
                cors_domains: config.http.corsdomain.clone(),
            },
        )
        .await
        .context("cannot start JSON-RPC")?;
        tracing::info!(http = %servers.http_addr, ws = ?servers.ws_addr, "JSON-RPC listening");
        let gossip_ip = config.p2p.addr.unwrap_or(default_addr);
        let gossip = gossip::start(
            GossipConfig {
                listen: format!(
                    "/{}/{gossip_ip}/tcp/{}",
                    ip_proto(gossip_ip),
                    config.p2p.port.unwrap_or(if is_dev { 0 } else { DEFAULT_P2P_PORT })
                ),
                peers: config.p2p.peers.clone(),
                network_id: net_id.clone(),
                chain: ChainIdentity { chain_id: spec.chain_id, genesis_hash: genesis.hash },
                node_key: node_key.signing_key.to_bytes(),
                max_message_bytes: 1 << 20,
                limits: PeerLimits { max_peers: config.p2p.max_peers, ..Default::default() },
            },
            pool.clone(),
            db.clone(),
        )
        .context("cannot start transaction gossip")?;
        let coinbase = config.coinbase.unwrap_or_default();
        let service = ChainService::new(executor, pool, api.clone(), head, coinbase, config.block_max_txs);
        let app = ChainApp::new(service.clone(), block_time);

        let listen_ip = config.consensus.addr.unwrap_or(default_addr);
        let listen_port = config.consensus.port.unwrap_or(if is_dev { 0 } else { DEFAULT_CONSENSUS_PORT });
        let engine_config = EngineConfig {
            moniker: config.consensus.moniker.clone().unwrap_or_else(|| format!("node-{}", node_key.address())),
            chain_id: spec.chain_id,
            network_id: net_id,
            validators,
            validator_key,
            node_key,
            listen: format!("/{}/{listen_ip}/tcp/{listen_port}", ip_proto(listen_ip)),
            peers: config.consensus.peers.clone(),
            relay: config.consensus.relay,
            wal_path: datadir.join("consensus").join("wal"),
            signer_state_path: datadir.join("consensus").join("priv_validator_state.json"),
            timeouts,
            target_time: None,
        };
        let consensus = metanode_consensus::start(engine_config, app).await.context("cannot start consensus")?;
        tracing::info!(address = %consensus.address, "consensus started");
        let peer_watch = {
            let (gossip, api, metrics) = (gossip.clone(), api.clone(), consensus.metrics.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    api.set_peer_count(gossip.peer_count());
                    api.set_network_height(metrics.network_height());
                    metrics.set_peers(gossip.peer_count());
                }
            })
        };
        let metrics_addr = if config.metrics.enabled {
            let sources = Arc::new(MetricsSources {
                chain: service.clone(),
                consensus: consensus.metrics.clone(),
                gossip: gossip.clone(),
            });
            let addr = metrics::serve(SocketAddr::new(config.metrics.addr, config.metrics.port), sources).await?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
            Some(addr)
        } else {
            None
        };
        if is_dev {
            let ws = servers.ws_addr.map(|a| a.to_string());
            print!("{}", dev::banner(&signers, spec.chain_id, &servers.http_addr.to_string(), ws.as_deref(), &datadir));
        }
        if let Some(addr) = metrics_addr {
            println!("Metrics:         http://{addr}/metrics");
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        peer_watch.abort();
        consensus.stop().await;
        gossip.stop();
        servers.stop().await;
        tracing::info!(head = service.head().number(), "stopped cleanly");
        anyhow::Ok(())
    });
    drop(temp);
    result
}

/// The default consensus network port.
const DEFAULT_CONSENSUS_PORT: u16 = 26656;
/// The default transaction gossip port.
const DEFAULT_P2P_PORT: u16 = 30303;

/// The multiaddr protocol of an IP address.
fn ip_proto(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "ip6"
    } else {
        "ip4"
    }
}

/// The validator set named in the genesis; in dev mode a genesis without one
/// (written by an older build) gets the local key as its only validator.
fn validator_set(spec: &ChainSpec, dev_validator: Option<&ValidatorKey>) -> anyhow::Result<ValidatorSet> {
    if spec.validators.is_empty() {
        if let Some(key) = dev_validator {
            return Ok(ValidatorSet::new([Validator::new(key.signing_key.verifying_key(), 1)])?);
        }
        bail!("the genesis names no validators (top-level \"validators\" list); a chain needs at least one");
    }
    let members = spec
        .validators
        .iter()
        .map(|v| {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&v.public_key.0)
                .map_err(|e| anyhow::anyhow!("genesis validator {} has an invalid ed25519 key: {e}", v.public_key))?;
            Ok(Validator::new(key, v.power))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ValidatorSet::new(members).context("the genesis validator set is unusable")
}

/// A short digest of everything peers must agree on before they talk: the
/// genesis block, the chain id and the validator set.
fn network_id(genesis_hash: alloy_primitives::B256, spec: &ChainSpec) -> String {
    let mut bytes = genesis_hash.to_vec();
    bytes.extend_from_slice(&spec.chain_id.to_be_bytes());
    for v in &spec.validators {
        bytes.extend_from_slice(v.public_key.as_slice());
        bytes.extend_from_slice(&v.power.to_be_bytes());
    }
    hex::encode(&alloy_primitives::keccak256(&bytes)[..8])
}

/// Tendermint timeouts from the config. An idle proposer waits up to the
/// block time for transactions, so the propose timeout is raised above it.
fn consensus_timeouts(config: &Config, block_time: Duration) -> anyhow::Result<LinearTimeouts> {
    let t = config.consensus.timeouts()?;
    let floor = block_time + Duration::from_secs(1);
    let propose = if t.propose.0 < floor {
        tracing::info!(configured = ?t.propose.0, used = ?floor, "propose timeout raised above the block time");
        floor
    } else {
        t.propose.0
    };
    Ok(LinearTimeouts {
        propose,
        propose_delta: t.propose.1,
        prevote: t.prevote.0,
        prevote_delta: t.prevote.1,
        precommit: t.precommit.0,
        precommit_delta: t.precommit.1,
        ..LinearTimeouts::default()
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the node");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

//! Starting the node: resolve configuration, lock and open the data
//! directory, load or create the genesis, start RPC and block production,
//! and shut down cleanly on SIGINT/SIGTERM.

use crate::{
    chain::ChainService,
    cli::{default_datadir, RunArgs},
    config::{Config, LogFormat, SUPPORTED_ROLES},
    dev,
};
use anyhow::{bail, Context};
use metanode_execution::{
    init_genesis,
    txpool::{PoolConfig, TxPool},
    Executor,
};
use metanode_primitives::ChainSpec;
use metanode_rpc::{ApiConfig, EthApi, ServerOptions};
use metanode_storage::{ChainDb, DbOptions, HistoryMode};
use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio::sync::watch;

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

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .with_context(|| format!("invalid log level '{}'", config.log.level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Terminal => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// The genesis to use: an explicit file, the data directory's, or (dev mode) a generated one.
fn load_genesis(config: &Config, datadir: &Path, is_dev: bool) -> anyhow::Result<ChainSpec> {
    let path = config.genesis.clone().unwrap_or_else(|| datadir.join("genesis.json"));
    let spec = if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read genesis {}", path.display()))?;
        ChainSpec::from_json(&text).with_context(|| format!("genesis {} is broken", path.display()))?
    } else if config.genesis.is_some() {
        bail!("genesis file {} does not exist", path.display());
    } else if is_dev {
        let accounts: Vec<_> = dev::dev_signers()?.iter().map(|s| s.address()).collect();
        let genesis = dev::dev_genesis(config.chain_id.unwrap_or(metanode_primitives::DEFAULT_CHAIN_ID), &accounts);
        let text = serde_json::to_string_pretty(&genesis)?;
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
    if config.genesis.is_none() && !genesis_path.exists() {
        // A fresh chain: funded with the public test accounts, like --dev.
        let accounts: Vec<_> = dev::dev_signers()?.iter().map(|s| s.address()).collect();
        let genesis = dev::dev_genesis(config.chain_id.unwrap_or(metanode_primitives::DEFAULT_CHAIN_ID), &accounts);
        std::fs::write(&genesis_path, serde_json::to_string_pretty(&genesis)?)?;
        println!("wrote {} (funds the public TEST ONLY accounts; replace alloc for real use)", genesis_path.display());
    }
    let spec = load_genesis(&config, &datadir, false)?;
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
    init_logging(&config)?;
    if !SUPPORTED_ROLES.contains(&config.role) {
        let supported: Vec<String> = SUPPORTED_ROLES.iter().map(|r| r.to_string()).collect();
        bail!("role '{}' is not supported by this build; supported roles: {}", config.role, supported.join(", "));
    }
    let is_dev = args.dev;
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
    let spec = Arc::new(load_genesis(&config, &datadir, is_dev)?);
    let db = Arc::new(open_db(&config, &datadir)?);
    let genesis = init_genesis(&db, &spec).context("cannot initialise the genesis")?;
    let head_number = db.head_number()?.unwrap_or_default();
    let head = db.sealed_block(head_number)?.context("head block missing from the database")?;
    tracing::info!(chain_id = spec.chain_id, genesis = %genesis.hash, head = head_number, head_hash = %head.hash, state_root = %head.header.state_root, "chain loaded");

    let block_time = config.block_time()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let executor = Executor::new(db.clone(), spec.clone());
        let pool_config = PoolConfig {
            max_count: config.txpool.max_count,
            max_bytes: config.txpool.max_bytes,
            max_per_sender: config.txpool.max_per_sender,
            price_bump_percent: config.txpool.price_bump,
        };
        let pool = Arc::new(TxPool::new(pool_config, spec.chain_id, head.header.gas_limit));
        let signers = if is_dev { dev::dev_signers()? } else { Vec::new() };
        let api_config = ApiConfig {
            max_logs_range: config.rpc.max_logs_range,
            accounts: signers.iter().map(|s| s.address()).collect(),
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
                max_connections: config.rpc.max_connections,
            },
        )
        .await
        .context("cannot start JSON-RPC")?;
        tracing::info!(http = %servers.http_addr, ws = ?servers.ws_addr, "JSON-RPC listening");
        if is_dev {
            let ws = servers.ws_addr.map(|a| a.to_string());
            print!("{}", dev::banner(&signers, spec.chain_id, &servers.http_addr.to_string(), ws.as_deref(), &datadir));
        }
        let coinbase = config.coinbase.unwrap_or_default();
        let service = ChainService::new(executor, pool, api, head, coinbase);
        let (stop_tx, stop_rx) = watch::channel(false);
        let sealer = tokio::spawn(service.clone().run_sealer(block_time, stop_rx));
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = sealer.await;
        servers.stop().await;
        tracing::info!(head = service.head().number(), "stopped cleanly");
        anyhow::Ok(())
    });
    drop(temp);
    result
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

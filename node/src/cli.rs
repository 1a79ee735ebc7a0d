//! Command line: `metanode-node [node]`, `init`, `config`, `version`, with
//! dotted flags in the style of reth (`--http.port`), each also readable
//! from a `METANODE_*` variable.

use crate::config::{Config, ConfigError, LogFormat};
use clap::{Args, Parser, Subcommand};
use std::{net::IpAddr, path::PathBuf};

/// MetaNode: one binary for an EVM chain with BFT finality, agreements and content-addressed storage.
#[derive(Debug, Parser)]
#[command(name = "metanode-node", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: run the node).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Node options when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node.
    Node(RunArgs),
    /// Write genesis.json and config.toml into a data directory and initialise its database.
    Init(RunArgs),
    /// Print the effective configuration (flags > env > file > defaults) as TOML.
    Config(RunArgs),
    /// Write a local network (one directory per node and a docker-compose.yml).
    Testnet(crate::testnet::TestnetArgs),
    /// Print the version.
    Version,
}

/// Options shared by `node`, `init` and `config`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Configuration file (default: <datadir>/config.toml when it exists).
    #[arg(long, env = "METANODE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One-validator development chain with funded test accounts (TEST ONLY).
    #[arg(long, env = "METANODE_DEV")]
    pub dev: bool,
    /// Role(s) to run: blockchain, validator, agreement, ipfs, all.
    #[arg(long, env = "METANODE_ROLE")]
    pub role: Option<String>,
    /// Data directory (dev mode: a temporary one when absent).
    #[arg(long, env = "METANODE_DATADIR", value_name = "DIR")]
    pub datadir: Option<PathBuf>,
    /// Genesis file in geth's genesis.json format (default: <datadir>/genesis.json).
    #[arg(long, env = "METANODE_GENESIS", value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Chain id of a generated genesis (default 9928).
    #[arg(long = "chain-id", env = "METANODE_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Seal a block at least this often, e.g. 1s or 250ms.
    #[arg(long = "block-time", env = "METANODE_BLOCK_TIME")]
    pub block_time: Option<String>,
    /// Fee recipient of produced blocks.
    #[arg(long, env = "METANODE_COINBASE")]
    pub coinbase: Option<alloy_primitives::Address>,
    /// JSON-RPC HTTP listen address.
    #[arg(long = "http.addr", env = "METANODE_HTTP_ADDR")]
    pub http_addr: Option<IpAddr>,
    /// JSON-RPC HTTP (and WebSocket) port.
    #[arg(long = "http.port", env = "METANODE_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// WebSocket listen address.
    #[arg(long = "ws.addr", env = "METANODE_WS_ADDR")]
    pub ws_addr: Option<IpAddr>,
    /// WebSocket-only port.
    #[arg(long = "ws.port", env = "METANODE_WS_PORT")]
    pub ws_port: Option<u16>,
    /// Largest JSON-RPC request body in bytes.
    #[arg(long = "rpc.max-request-size", env = "METANODE_RPC_MAX_REQUEST_SIZE")]
    pub rpc_max_request_size: Option<u32>,
    /// Most blocks one eth_getLogs (or a log filter's poll) may span.
    #[arg(long = "rpc.max-logs-range", env = "METANODE_RPC_MAX_LOGS_RANGE")]
    pub rpc_max_logs_range: Option<u64>,
    /// Most gas one eth_call / eth_estimateGas may use (0: no cap).
    #[arg(long = "rpc.gascap", env = "METANODE_RPC_GASCAP")]
    pub rpc_gascap: Option<u64>,
    /// Time budget of one eth_call / eth_estimateGas, e.g. 5s (0: none).
    #[arg(long = "rpc.evmtimeout", env = "METANODE_RPC_EVMTIMEOUT")]
    pub rpc_evmtimeout: Option<String>,
    /// Most calls in one JSON-RPC batch.
    #[arg(long = "rpc.batch-request-limit", env = "METANODE_RPC_BATCH_REQUEST_LIMIT")]
    pub rpc_batch_request_limit: Option<u32>,
    /// Most bytes of answers to one JSON-RPC batch.
    #[arg(long = "rpc.batch-response-max-size", env = "METANODE_RPC_BATCH_RESPONSE_MAX_SIZE")]
    pub rpc_batch_response_max_size: Option<u32>,
    /// Most poll filters (eth_newFilter and friends) installed at once.
    #[arg(long = "rpc.max-filters", env = "METANODE_RPC_MAX_FILTERS")]
    pub rpc_max_filters: Option<usize>,
    /// Most WebSocket connections per RPC server.
    #[arg(long = "http.max-connections", env = "METANODE_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<u32>,
    /// Namespaces served, comma-separated (eth,net,web3,txpool,metanode).
    #[arg(long = "http.api", env = "METANODE_HTTP_API", value_delimiter = ',')]
    pub http_api: Option<Vec<String>>,
    /// Origins browsers may call from, comma-separated (* for any).
    #[arg(long = "http.corsdomain", env = "METANODE_HTTP_CORSDOMAIN", value_delimiter = ',')]
    pub http_corsdomain: Option<Vec<String>>,
    /// Blocks of state history kept for historical reads.
    #[arg(long = "state.history", env = "METANODE_STATE_HISTORY")]
    pub state_history: Option<u64>,
    /// Keep the state history of every block.
    #[arg(long, env = "METANODE_ARCHIVE")]
    pub archive: bool,
    /// Most transactions in the pool.
    #[arg(long = "txpool.max-count", env = "METANODE_TXPOOL_MAX_COUNT")]
    pub txpool_max_count: Option<usize>,
    /// Most transactions per sender in the pool, pending and queued.
    #[arg(long = "txpool.max-per-sender", env = "METANODE_TXPOOL_MAX_PER_SENDER")]
    pub txpool_max_per_sender: Option<usize>,
    /// Most queued (future-nonce) transactions in the pool.
    #[arg(long = "txpool.max-queued", env = "METANODE_TXPOOL_MAX_QUEUED")]
    pub txpool_max_queued: Option<usize>,
    /// Most queued transactions per sender.
    #[arg(long = "txpool.max-queued-per-sender", env = "METANODE_TXPOOL_MAX_QUEUED_PER_SENDER")]
    pub txpool_max_queued_per_sender: Option<usize>,
    /// How long a transaction may stay queued, e.g. 3h or 30m.
    #[arg(long = "txpool.lifetime", env = "METANODE_TXPOOL_LIFETIME")]
    pub txpool_lifetime: Option<String>,
    /// Log format.
    #[arg(long = "log.format", env = "METANODE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or metanode_execution=debug.
    #[arg(long = "log.level", env = "METANODE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Consensus network listen address.
    #[arg(long = "consensus.addr", env = "METANODE_CONSENSUS_ADDR")]
    pub consensus_addr: Option<IpAddr>,
    /// Consensus network listen port (default 26656; a free port in dev mode).
    #[arg(long = "consensus.port", env = "METANODE_CONSENSUS_PORT")]
    pub consensus_port: Option<u16>,
    /// Peers to keep connected to, comma-separated multiaddrs (/ip4/10.0.0.2/tcp/26656).
    #[arg(long, env = "METANODE_BOOTNODES", value_delimiter = ',')]
    pub bootnodes: Option<Vec<String>>,
    /// Relay consensus messages through peers (gossipsub) instead of sending
    /// them straight to every connected peer: for validators that cannot all
    /// reach each other. Peers sending invalid votes are then counted but not
    /// disconnected, since a relay is not the author.
    #[arg(long = "consensus.relay", env = "METANODE_CONSENSUS_RELAY")]
    pub consensus_relay: Option<bool>,
    /// Most transactions a proposer puts in one block.
    #[arg(long = "block.max-txs", env = "METANODE_BLOCK_MAX_TXS")]
    pub block_max_txs: Option<usize>,
    /// Transaction gossip listen address.
    #[arg(long = "p2p.addr", env = "METANODE_P2P_ADDR")]
    pub p2p_addr: Option<IpAddr>,
    /// Transaction gossip listen port (default 30303; a free port in dev mode).
    #[arg(long = "p2p.port", env = "METANODE_P2P_PORT")]
    pub p2p_port: Option<u16>,
    /// Transaction gossip peers, comma-separated multiaddrs (/ip4/10.0.0.2/tcp/30303).
    #[arg(long = "p2p.peers", env = "METANODE_P2P_PEERS", value_delimiter = ',')]
    pub p2p_peers: Option<Vec<String>>,
    /// Most inbound transaction gossip connections (and, separately, outbound ones).
    #[arg(long = "p2p.max-peers", env = "METANODE_P2P_MAX_PEERS")]
    pub p2p_max_peers: Option<u32>,
    /// Name shown to peers and in logs.
    #[arg(long, env = "METANODE_MONIKER")]
    pub moniker: Option<String>,
    /// Prometheus metrics port (0 picks a free port).
    #[arg(long = "metrics", env = "METANODE_METRICS")]
    pub metrics_port: Option<u16>,
    /// Prometheus metrics listen address.
    #[arg(long = "metrics.addr", env = "METANODE_METRICS_ADDR")]
    pub metrics_addr: Option<IpAddr>,
    /// Do not serve metrics.
    #[arg(long = "metrics.off", env = "METANODE_METRICS_OFF")]
    pub metrics_off: bool,
}

/// Default data directory outside dev mode.
pub fn default_datadir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".metanode")
}

impl RunArgs {
    /// The effective configuration: defaults, then the file, then these
    /// arguments (which clap already filled from flags or the environment).
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match (&self.config, &self.datadir) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(d)) if d.join("config.toml").exists() => Some(d.join("config.toml")),
            (None, None) if !self.dev && default_datadir().join("config.toml").exists() => {
                Some(default_datadir().join("config.toml"))
            }
            _ => None,
        };
        let mut c = match file {
            Some(p) => Config::from_file(&p)?,
            None => Config::default(),
        };
        if let Some(r) = &self.role {
            c.role = r.parse().map_err(|message| ConfigError::Value { key: "role", message })?;
        }
        macro_rules! set {
            ($field:expr, $value:expr) => {
                if let Some(v) = $value.clone() {
                    $field = v;
                }
            };
        }
        if self.datadir.is_some() {
            c.datadir = self.datadir.clone();
        }
        if self.genesis.is_some() {
            c.genesis = self.genesis.clone();
        }
        if self.chain_id.is_some() {
            c.chain_id = self.chain_id;
        }
        if self.coinbase.is_some() {
            c.coinbase = self.coinbase;
        }
        set!(c.block_time, self.block_time);
        set!(c.block_max_txs, self.block_max_txs);
        if c.block_max_txs == 0 {
            return Err(ConfigError::Value { key: "block.max-txs", message: "must be at least 1".into() });
        }
        set!(c.http.addr, self.http_addr);
        set!(c.http.port, self.http_port);
        set!(c.ws.addr, self.ws_addr);
        set!(c.ws.port, self.ws_port);
        set!(c.rpc.max_request_size, self.rpc_max_request_size);
        set!(c.rpc.max_logs_range, self.rpc_max_logs_range);
        set!(c.rpc.gascap, self.rpc_gascap);
        set!(c.rpc.evmtimeout, self.rpc_evmtimeout);
        set!(c.rpc.batch_request_limit, self.rpc_batch_request_limit);
        set!(c.rpc.batch_response_max_size, self.rpc_batch_response_max_size);
        set!(c.rpc.max_filters, self.rpc_max_filters);
        set!(c.http.max_connections, self.http_max_connections);
        set!(c.http.api, self.http_api.as_ref().map(|v| v.iter().map(|a| a.trim().to_ascii_lowercase()).collect()));
        set!(c.http.corsdomain, self.http_corsdomain);
        c.rpc.validate()?;
        c.http.validate()?;
        set!(c.state.history, self.state_history);
        set!(c.txpool.max_count, self.txpool_max_count);
        set!(c.txpool.max_per_sender, self.txpool_max_per_sender);
        set!(c.txpool.max_queued, self.txpool_max_queued);
        set!(c.txpool.max_queued_per_sender, self.txpool_max_queued_per_sender);
        set!(c.txpool.lifetime, self.txpool_lifetime);
        c.txpool.pool_config()?;
        set!(c.log.format, self.log_format);
        set!(c.log.level, self.log_level);
        if self.consensus_addr.is_some() {
            c.consensus.addr = self.consensus_addr;
        }
        set!(c.consensus.peers, self.bootnodes);
        set!(c.consensus.relay, self.consensus_relay);
        if self.consensus_port.is_some() {
            c.consensus.port = self.consensus_port;
        }
        if self.p2p_addr.is_some() {
            c.p2p.addr = self.p2p_addr;
        }
        if self.p2p_port.is_some() {
            c.p2p.port = self.p2p_port;
        }
        set!(c.p2p.peers, self.p2p_peers);
        set!(c.p2p.max_peers, self.p2p_max_peers);
        if c.p2p.max_peers == 0 {
            return Err(ConfigError::Value { key: "p2p.max-peers", message: "must be at least 1".into() });
        }
        if self.moniker.is_some() {
            c.consensus.moniker = self.moniker.clone();
        }
        set!(c.metrics.port, self.metrics_port);
        set!(c.metrics.addr, self.metrics_addr);
        if self.metrics_off {
            c.metrics.enabled = false;
        }
        c.consensus.timeouts()?;
        if self.archive {
            c.state.archive = true;
        }
        c.block_time()?;
        if c.chain_id == Some(0) {
            return Err(ConfigError::Value { key: "chain-id", message: "must be non-zero".into() });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "block_time = \"2s\"\n[http]\nport = 9000\n[ws]\nport = 9001\n")
            .unwrap();
        let args = RunArgs { datadir: Some(dir.path().into()), http_port: Some(7000), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(c.http.port, 7000, "flag wins over file");
        assert_eq!(c.ws.port, 9001, "file wins over default");
        assert_eq!(c.block_time, "2s");
        assert_eq!(c.rpc.max_logs_range, 10_000, "default kept");
    }

    #[test]
    fn txpool_and_p2p_limits_flags_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[txpool]\nmax_queued = 100\nmax_queued_per_sender = 8\n[p2p]\nmax_peers = 7\n",
        )
        .unwrap();
        let args = RunArgs {
            datadir: Some(dir.path().into()),
            txpool_max_queued: Some(200),
            txpool_lifetime: Some("90m".into()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.txpool.max_queued, 200, "flag wins over file");
        assert_eq!(c.txpool.max_queued_per_sender, 8, "file wins over default");
        assert_eq!(c.txpool.lifetime, "90m");
        assert_eq!(c.p2p.max_peers, 7);
        assert_eq!(RunArgs::default().resolve().unwrap().txpool.max_queued, 1_024, "default");
        let bad = RunArgs { txpool_lifetime: Some("soon".into()), ..Default::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("txpool.lifetime"));
    }

    #[test]
    fn limit_flags_read_their_environment_variables() {
        use clap::Parser;
        // Only variables no other test sets: tests share the process environment.
        std::env::set_var("METANODE_TXPOOL_MAX_QUEUED_PER_SENDER", "3");
        std::env::set_var("METANODE_P2P_MAX_PEERS", "9");
        let cli = Cli::try_parse_from(["metanode-node", "--p2p.max-peers", "11"]).unwrap();
        std::env::remove_var("METANODE_TXPOOL_MAX_QUEUED_PER_SENDER");
        std::env::remove_var("METANODE_P2P_MAX_PEERS");
        assert_eq!(cli.run.txpool_max_queued_per_sender, Some(3), "env is read");
        assert_eq!(cli.run.p2p_max_peers, Some(11), "flag wins over env");
    }

    #[test]
    fn rpc_limit_flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[rpc]\ngascap = 1000\nevmtimeout = \"2s\"\n[http]\napi = [\"eth\"]\nmax_connections = 7\n",
        )
        .unwrap();
        let args = RunArgs {
            datadir: Some(dir.path().into()),
            rpc_gascap: Some(2000),
            http_corsdomain: Some(vec!["*".into()]),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.rpc.gascap, 2000, "flag wins");
        assert_eq!(c.rpc.evmtimeout, "2s", "file wins over default");
        assert_eq!(c.http.api, vec!["eth".to_string()]);
        assert_eq!(c.http.max_connections, 7);
        assert_eq!(c.http.corsdomain, vec!["*".to_string()]);
        let bad = RunArgs { http_api: Some(vec!["eth".into(), "admin".into()]), ..Default::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("http.api"));
        let bad = RunArgs { rpc_evmtimeout: Some("soon".into()), ..Default::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("rpc.evmtimeout"));
    }

    #[test]
    fn bad_values_are_refused() {
        let args = RunArgs { block_time: Some("soon".into()), ..Default::default() };
        assert!(args.resolve().unwrap_err().to_string().contains("block-time"));
        let args = RunArgs { role: Some("miner".into()), ..Default::default() };
        assert!(args.resolve().unwrap_err().to_string().contains("unknown role"));
    }
}

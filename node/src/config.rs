//! The node's configuration and how it is assembled: command-line flags win
//! over `METANODE_*` environment variables, which win over `config.toml`,
//! which wins over the defaults. Unknown keys in the file are errors.

use serde::{Deserialize, Serialize};
use std::{net::IpAddr, path::PathBuf, time::Duration};

/// What a node runs. Several issues add roles; this build names them all so
/// that a typo is told apart from a role not built yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full node that follows consensus without voting.
    Blockchain,
    /// Full node that also proposes and votes.
    Validator,
    /// Full node plus the agreement index.
    Agreement,
    /// Content-addressed storage only.
    Ipfs,
    /// Every role.
    All,
}

/// Roles this build can run.
pub const SUPPORTED_ROLES: &[Role] = &[Role::Validator, Role::Blockchain];

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blockchain" => Ok(Self::Blockchain),
            "validator" => Ok(Self::Validator),
            "agreement" => Ok(Self::Agreement),
            "ipfs" => Ok(Self::Ipfs),
            "all" => Ok(Self::All),
            other => {
                Err(format!("unknown role '{other}': expected one of blockchain, validator, agreement, ipfs, all"))
            }
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::Blockchain => "blockchain",
            Self::Validator => "validator",
            Self::Agreement => "agreement",
            Self::Ipfs => "ipfs",
            Self::All => "all",
        };
        f.write_str(s)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Terminal,
    /// One JSON object per line.
    Json,
}

/// `[http]` in config.toml: the JSON-RPC HTTP (+WebSocket) endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub addr: IpAddr,
    /// Listen port.
    pub port: u16,
    /// Most WebSocket connections per server (HTTP requests in flight get
    /// a fixed headroom above it, so open WebSockets cannot lock them out).
    pub max_connections: u32,
    /// Namespaces served (reth's `--http.api`), also on the WebSocket port.
    pub api: Vec<String>,
    /// Origins browsers may call from (`*` for any); empty sends no CORS headers.
    pub corsdomain: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: IpAddr::from([127, 0, 0, 1]),
            port: 8545,
            max_connections: 1_000,
            api: metanode_rpc::NAMESPACES.iter().map(|n| n.to_string()).collect(),
            corsdomain: Vec::new(),
        }
    }
}

/// `[ws]` in config.toml: the WebSocket-only endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Listen address.
    pub addr: IpAddr,
    /// Listen port.
    pub port: u16,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self { addr: IpAddr::from([127, 0, 0, 1]), port: 8546 }
    }
}

/// `[rpc]` in config.toml: limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Largest request body in bytes.
    pub max_request_size: u32,
    /// Largest response body in bytes.
    pub max_response_size: u32,
    /// Most blocks one `eth_getLogs` (and a log filter's poll) may span.
    pub max_logs_range: u64,
    /// Most gas one `eth_call` / `eth_estimateGas` may use; 0 for no cap (geth's `--rpc.gascap`).
    pub gascap: u64,
    /// Wall-clock budget of one `eth_call` / `eth_estimateGas`, e.g. "5s"; "0" for none.
    pub evmtimeout: String,
    /// Most calls in one batch.
    pub batch_request_limit: u32,
    /// Most bytes of answers to one batch.
    pub batch_response_max_size: u32,
    /// Most poll filters installed at once.
    pub max_filters: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_request_size: 10 << 20,
            max_response_size: 100 << 20,
            max_logs_range: 10_000,
            gascap: 50_000_000,
            evmtimeout: "5s".into(),
            batch_request_limit: 1_000,
            batch_response_max_size: 25_000_000,
            max_filters: metanode_rpc::DEFAULT_MAX_FILTERS,
        }
    }
}

impl RpcConfig {
    /// The EVM time budget; `None` when switched off with "0".
    pub fn evm_timeout(&self) -> Result<Option<Duration>, ConfigError> {
        if matches!(self.evmtimeout.trim(), "0" | "0s" | "0ms") {
            return Ok(None);
        }
        parse_duration(&self.evmtimeout)
            .map(Some)
            .map_err(|message| ConfigError::Value { key: "rpc.evmtimeout", message })
    }

    /// Checks the limits that must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.evm_timeout()?;
        let positive = [
            ("rpc.batch-request-limit", self.batch_request_limit as u64),
            ("rpc.batch-response-max-size", self.batch_response_max_size as u64),
            ("rpc.max-filters", self.max_filters as u64),
            ("rpc.max-logs-range", self.max_logs_range),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::Value { key, message: "must be at least 1".into() });
            }
        }
        Ok(())
    }
}

impl HttpConfig {
    /// Checks the namespaces and the connection limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bad) = self.api.iter().find(|a| !metanode_rpc::NAMESPACES.contains(&a.as_str())) {
            return Err(ConfigError::Value {
                key: "http.api",
                message: format!("unknown namespace '{bad}' (have {})", metanode_rpc::NAMESPACES.join(", ")),
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Value { key: "http.max-connections", message: "must be at least 1".into() });
        }
        Ok(())
    }
}

/// `[state]` in config.toml: history kept for historical reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Blocks of state history kept.
    pub history: u64,
    /// Keep all history.
    pub archive: bool,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { history: 1024, archive: false }
    }
}

/// `[txpool]` in config.toml (see `metanode_execution::txpool::PoolConfig`
/// for what each limit guards against).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TxPoolConfig {
    /// Most transactions held, pending and queued.
    pub max_count: usize,
    /// Most bytes held.
    pub max_bytes: usize,
    /// Most transactions per sender, pending and queued.
    pub max_per_sender: usize,
    /// Most queued (future-nonce) transactions in all.
    pub max_queued: usize,
    /// Most queued transactions per sender.
    pub max_queued_per_sender: usize,
    /// How long a transaction may stay queued, e.g. "3h" or "30m".
    pub lifetime: String,
    /// Minimum replacement fee bump in percent.
    pub price_bump: u128,
}

impl Default for TxPoolConfig {
    fn default() -> Self {
        let d = metanode_execution::txpool::PoolConfig::default();
        Self {
            max_count: d.max_count,
            max_bytes: d.max_bytes,
            max_per_sender: d.max_per_sender,
            max_queued: d.max_queued,
            max_queued_per_sender: d.max_queued_per_sender,
            lifetime: format!("{}h", d.lifetime.as_secs() / 3600),
            price_bump: d.price_bump_percent,
        }
    }
}

impl TxPoolConfig {
    /// The pool's limits, checked.
    pub fn pool_config(&self) -> Result<metanode_execution::txpool::PoolConfig, ConfigError> {
        let at_least_one = |key: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError::Value { key, message: "must be at least 1".into() })
            } else {
                Ok(v)
            }
        };
        Ok(metanode_execution::txpool::PoolConfig {
            max_count: at_least_one("txpool.max-count", self.max_count)?,
            max_bytes: at_least_one("txpool max_bytes", self.max_bytes)?,
            max_per_sender: at_least_one("txpool.max-per-sender", self.max_per_sender)?,
            max_queued: self.max_queued,
            max_queued_per_sender: self.max_queued_per_sender,
            lifetime: parse_duration_up_to(&self.lifetime, Duration::from_secs(30 * 24 * 3600))
                .map_err(|message| ConfigError::Value { key: "txpool.lifetime", message })?,
            price_bump_percent: self.price_bump,
        })
    }
}

/// `[consensus]` in config.toml: the validator network and Tendermint timeouts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// Listen address of the consensus network; 0.0.0.0 when unset (127.0.0.1 in dev mode).
    pub addr: Option<IpAddr>,
    /// Listen port; 26656 when unset (a free port in dev mode).
    pub port: Option<u16>,
    /// Peers to stay connected to, as multiaddrs (`/ip4/10.0.0.2/tcp/26656`).
    pub peers: Vec<String>,
    /// Relay consensus messages through peers (gossipsub). Off: each message
    /// goes straight to every connected peer, so validators must connect to
    /// each other directly, and a peer that sends an invalid vote is known to
    /// be its author and is disconnected.
    pub relay: bool,
    /// Name shown to peers and in logs.
    pub moniker: Option<String>,
    /// Wait for a proposal in round 0 (e.g. "3s").
    pub timeout_propose: String,
    /// Added to the propose timeout per round.
    pub timeout_propose_delta: String,
    /// Wait for more prevotes after 2/3 of any.
    pub timeout_prevote: String,
    /// Added to the prevote timeout per round.
    pub timeout_prevote_delta: String,
    /// Wait for more precommits after 2/3 of any.
    pub timeout_precommit: String,
    /// Added to the precommit timeout per round.
    pub timeout_precommit_delta: String,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            addr: None,
            port: None,
            peers: Vec::new(),
            relay: false,
            moniker: None,
            timeout_propose: "3s".into(),
            timeout_propose_delta: "500ms".into(),
            timeout_prevote: "1s".into(),
            timeout_prevote_delta: "500ms".into(),
            timeout_precommit: "1s".into(),
            timeout_precommit_delta: "500ms".into(),
        }
    }
}

/// The consensus timeouts, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Propose timeout and per-round delta.
    pub propose: (Duration, Duration),
    /// Prevote timeout and per-round delta.
    pub prevote: (Duration, Duration),
    /// Precommit timeout and per-round delta.
    pub precommit: (Duration, Duration),
}

impl ConsensusConfig {
    /// Parses the timeouts.
    pub fn timeouts(&self) -> Result<Timeouts, ConfigError> {
        let p = |key: &'static str, v: &str| parse_duration(v).map_err(|message| ConfigError::Value { key, message });
        Ok(Timeouts {
            propose: (
                p("timeout-propose", &self.timeout_propose)?,
                p("timeout-propose-delta", &self.timeout_propose_delta)?,
            ),
            prevote: (
                p("timeout-prevote", &self.timeout_prevote)?,
                p("timeout-prevote-delta", &self.timeout_prevote_delta)?,
            ),
            precommit: (
                p("timeout-precommit", &self.timeout_precommit)?,
                p("timeout-precommit-delta", &self.timeout_precommit_delta)?,
            ),
        })
    }
}

/// `[p2p]` in config.toml: MetaNode's own libp2p network (transaction gossip).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Listen address; 0.0.0.0 when unset (127.0.0.1 in dev mode).
    pub addr: Option<IpAddr>,
    /// Listen port; 30303 when unset (a free port in dev mode).
    pub port: Option<u16>,
    /// Peers to dial, as multiaddrs (`/ip4/10.0.0.2/tcp/30303`).
    pub peers: Vec<String>,
    /// Most inbound connections, and separately most outbound ones.
    pub max_peers: u32,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self { addr: None, port: None, peers: Vec::new(), max_peers: metanode_p2p::PeerLimits::default().max_peers }
    }
}

/// `[metrics]` in config.toml: the Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve metrics at all.
    pub enabled: bool,
    /// Listen address.
    pub addr: IpAddr,
    /// Listen port.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, addr: IpAddr::from([127, 0, 0, 1]), port: 9001 }
    }
}

/// `[log]` in config.toml.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `metanode=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Terminal, level: "info".into() }
    }
}

/// The effective configuration of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What the node runs.
    pub role: Role,
    /// Data directory.
    pub datadir: Option<PathBuf>,
    /// Genesis file; `<datadir>/genesis.json` when absent.
    pub genesis: Option<PathBuf>,
    /// Chain id of generated (dev) genesis; must match a given genesis.
    pub chain_id: Option<u64>,
    /// Seal a block at least this often (e.g. "1s", "250ms").
    pub block_time: String,
    /// Fee recipient of produced blocks.
    pub coinbase: Option<alloy_primitives::Address>,
    /// Most transactions a proposer puts in one block, so that every
    /// validator re-executes it well within the propose timeout.
    pub block_max_txs: usize,
    /// JSON-RPC HTTP.
    pub http: HttpConfig,
    /// JSON-RPC WebSocket.
    pub ws: WsConfig,
    /// RPC limits.
    pub rpc: RpcConfig,
    /// State history.
    pub state: StateConfig,
    /// Pool limits.
    pub txpool: TxPoolConfig,
    /// Consensus network and timeouts.
    pub consensus: ConsensusConfig,
    /// Transaction gossip network.
    pub p2p: P2pConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            role: Role::Validator,
            datadir: None,
            genesis: None,
            chain_id: None,
            block_time: "1s".into(),
            coinbase: None,
            block_max_txs: 3_000,
            http: HttpConfig::default(),
            ws: WsConfig::default(),
            rpc: RpcConfig::default(),
            state: StateConfig::default(),
            txpool: TxPoolConfig::default(),
            consensus: ConsensusConfig::default(),
            p2p: P2pConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this config (includes unknown keys).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// Which file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid {key}: {message}")]
    Value {
        /// Which setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads a config.toml.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// The block interval.
    pub fn block_time(&self) -> Result<Duration, ConfigError> {
        parse_duration(&self.block_time).map_err(|message| ConfigError::Value { key: "block-time", message })
    }

    /// The config as TOML, as `metanode-node config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Parses "250ms", "1s", "1.5s", "2m" or a plain number of seconds, up to an hour.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_up_to(s, Duration::from_secs(3600))
}

/// Parses a duration in ms, s, m or h (a plain number is seconds), from 1ms to `max`.
pub fn parse_duration_up_to(s: &str, max: Duration) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a duration like 250ms or 1s"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m or h)")),
    };
    let limit = max.as_secs_f64();
    if !(secs.is_finite() && secs > 0.0 && secs <= limit) {
        return Err(format!("'{s}' must be between 1ms and {}", human(max)));
    }
    let d = Duration::from_secs_f64(secs);
    if d < Duration::from_millis(1) {
        return Err(format!("'{s}' must be at least 1ms"));
    }
    Ok(d)
}

/// A whole number of days, hours, minutes or seconds.
fn human(d: Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").unwrap_err().contains("between 1ms and 1h"));
        assert_eq!(parse_duration_up_to("3h", Duration::from_secs(86_400)).unwrap(), Duration::from_secs(3 * 3600));
    }

    #[test]
    fn txpool_limits_from_the_file() {
        let c: Config =
            toml::from_str("[txpool]\nmax_queued = 10\nmax_queued_per_sender = 2\nlifetime = \"30m\"\n").unwrap();
        let p = c.txpool.pool_config().unwrap();
        assert_eq!((p.max_queued, p.max_queued_per_sender, p.lifetime), (10, 2, Duration::from_secs(1800)));
        assert_eq!(Config::default().txpool.pool_config().unwrap().lifetime, Duration::from_secs(3 * 3600));
        let bad = TxPoolConfig { lifetime: "forever".into(), ..Default::default() };
        assert!(bad.pool_config().unwrap_err().to_string().contains("txpool.lifetime"));
        let zero = TxPoolConfig { max_count: 0, ..Default::default() };
        assert!(zero.pool_config().unwrap_err().to_string().contains("txpool.max-count"));
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "block_time = \"1s\"\nblok_time = \"2s\"\n").unwrap();
        let err = Config::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("blok_time"), "{err}");
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config { chain_id: Some(5), ..Default::default() };
        let back: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn rpc_limits_have_geths_defaults_and_are_checked() {
        let c = Config::default();
        assert_eq!(c.rpc.gascap, 50_000_000);
        assert_eq!(c.rpc.evm_timeout().unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(c.rpc.batch_request_limit, 1_000);
        assert_eq!(c.rpc.batch_response_max_size, 25_000_000);
        let off = RpcConfig { evmtimeout: "0".into(), ..Default::default() };
        assert_eq!(off.evm_timeout().unwrap(), None);
        let bad = HttpConfig { api: vec!["eth".into(), "admin".into()], ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("admin"));
    }

    #[test]
    fn roles_parse_and_reject() {
        assert_eq!("Validator".parse::<Role>().unwrap(), Role::Validator);
        let err = "miner".parse::<Role>().unwrap_err();
        assert!(err.contains("unknown role 'miner'"), "{err}");
    }
}

//! Ethereum JSON-RPC for MetaNode over HTTP and WebSocket (jsonrpsee):
//! the `eth_`, `net_`, `web3_`, `txpool_` namespaces, filters, subscriptions,
//! batches and request limits, plus `GET /health` and `GET /status`.

mod api;
mod batch;
mod conn_limit;
mod convert;
mod cors;
mod error;
mod eth;
mod filters;
mod pubsub;
mod server;

pub use api::{ApiConfig, CommittedBlock, EthApi};
pub use batch::{BATCH_TOO_LARGE, RESPONSE_TOO_LARGE};
pub use conn_limit::HTTP_HEADROOM;
pub use eth::{MAX_FEE_HISTORY, MAX_FEE_HISTORY_PERCENTILES};
pub use filters::{DEFAULT_MAX_FILTERS, IDLE_TIMEOUT as FILTER_IDLE_TIMEOUT};
pub use metanode_execution::call::CallLimits;
pub use server::{build_module, start, RpcServers, ServerOptions, NAMESPACES};

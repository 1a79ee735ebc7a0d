//! Ethereum JSON-RPC for MetaNode over HTTP and WebSocket (jsonrpsee):
//! the `eth_`, `net_`, `web3_`, `txpool_` namespaces, filters, subscriptions,
//! batches and request limits, plus `GET /health` and `GET /status`.

mod api;
mod convert;
mod error;
mod eth;
mod filters;
mod pubsub;
mod server;

pub use api::{ApiConfig, CommittedBlock, EthApi};
pub use server::{build_module, start, RpcServers, ServerOptions};

//! Starting the HTTP+WebSocket server on the RPC port and the WebSocket-only
//! server, with `GET /health` and `GET /status` answered beside JSON-RPC.

use crate::{
    api::EthApi,
    batch::{BatchLimitLayer, BatchLimits},
    conn_limit::{WsLimitLayer, HTTP_HEADROOM},
    cors::CorsLayer,
    error::internal,
    pubsub::HexIdProvider,
};
use alloy_rpc_types_eth::BlockNumberOrTag;
use jsonrpsee::core::RpcResult;
use jsonrpsee::{
    core::BoxError,
    server::{
        middleware::rpc::RpcServiceBuilder, HttpBody, HttpRequest, HttpResponse, Server, ServerConfig, ServerHandle,
    },
    Methods, RpcModule,
};
use metanode_primitives::CommitCertificate;
use serde_json::json;
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// The namespaces this server has; `--http.api` picks among them.
pub const NAMESPACES: &[&str] = &["eth", "net", "web3", "txpool", "metanode"];

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// HTTP + WebSocket.
    pub http_addr: SocketAddr,
    /// WebSocket only; `None` to not start it.
    pub ws_addr: Option<SocketAddr>,
    /// Largest request body accepted.
    pub max_request_bytes: u32,
    /// Largest response produced.
    pub max_response_bytes: u32,
    /// WebSocket connections per server; plain HTTP requests in flight get
    /// [`HTTP_HEADROOM`] more so open WebSockets cannot lock them out.
    pub max_connections: u32,
    /// Most calls in one batch.
    pub batch_request_limit: u32,
    /// Most bytes of answers to one batch.
    pub batch_response_max_bytes: u32,
    /// Namespaces served (of [`NAMESPACES`]); the others answer "method not found".
    pub apis: Vec<String>,
    /// Origins browsers may call from (`*` for any); empty sends no CORS headers.
    pub cors_domains: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8545)),
            ws_addr: None,
            max_request_bytes: 10 << 20,
            max_response_bytes: 100 << 20,
            max_connections: 1_000,
            batch_request_limit: 1_000,
            batch_response_max_bytes: 25_000_000,
            apis: NAMESPACES.iter().map(|n| n.to_string()).collect(),
            cors_domains: Vec::new(),
        }
    }
}

/// Running servers; dropping this stops them.
#[derive(Debug)]
pub struct RpcServers {
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound WebSocket address.
    pub ws_addr: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
    _sweeper: AbortOnDrop,
}

/// The filter sweeper's task, stopped with the servers.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drops idle filters on a timer, a tenth of the idle timeout apart (at
/// most a minute), so abandoned filters go even when nobody installs one.
fn spawn_filter_sweeper(api: Arc<EthApi>) -> AbortOnDrop {
    let period = (api.filters.idle_timeout() / 10)
        .clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(60));
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dropped = api.filters.sweep();
            if dropped > 0 {
                tracing::debug!(dropped, "idle filters dropped");
            }
        }
    }))
}

impl RpcServers {
    /// Stops accepting and waits for connections to finish.
    pub async fn stop(self) {
        for h in &self.handles {
            let _ = h.stop();
        }
        for h in self.handles {
            h.stopped().await;
        }
    }
}

/// The whole method table.
pub fn build_module(api: Arc<EthApi>) -> Result<RpcModule<Arc<EthApi>>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(api);
    crate::eth::register(&mut module)?;
    crate::pubsub::register(&mut module)?;
    module.register_method("metanode_status", |_, api, _| status_json(api))?;
    module.register_method("metanode_getCommit", |p, api, _| -> RpcResult<Option<CommitCertificate>> {
        let tag: BlockNumberOrTag = p.sequence().next()?;
        let n = api.resolve_number(tag)?;
        api.db.commit_certificate(n).map_err(internal)
    })?;
    Ok(module)
}

fn status_json(api: &EthApi) -> serde_json::Value {
    let head = api.head().unwrap_or_default();
    let hash = |n| api.db.block_hash(n).ok().flatten().unwrap_or_default();
    let sync = api.sync_progress().ok().flatten();
    json!({
        "height": head,
        "latestHash": hash(head),
        "genesisHash": hash(0),
        "chainId": api.spec().chain_id,
        "networkId": api.config.network_id,
        "peers": api.peers.load(std::sync::atomic::Ordering::Relaxed),
        "syncing": sync.is_some(),
        "highestBlock": sync.map_or(head, |s| s.highest),
    })
}

/// Removes the methods of namespaces not in `apis`.
fn keep_namespaces(module: &mut RpcModule<Arc<EthApi>>, apis: &[String]) -> std::io::Result<()> {
    if let Some(unknown) = apis.iter().find(|a| !NAMESPACES.contains(&a.as_str())) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown API namespace '{unknown}' (have {})", NAMESPACES.join(", ")),
        ));
    }
    let names: Vec<&'static str> = module.method_names().collect();
    for name in names {
        let ns = name.split('_').next().unwrap_or(name);
        if !apis.iter().any(|a| a == ns) {
            module.remove_method(name);
        }
    }
    Ok(())
}

/// Starts the servers.
pub async fn start(api: Arc<EthApi>, opts: &ServerOptions) -> std::io::Result<RpcServers> {
    let mut module = build_module(api.clone()).map_err(std::io::Error::other)?;
    keep_namespaces(&mut module, &opts.apis)?;
    let methods: Methods = module.into();
    let batch = BatchLimits {
        max_calls: opts.batch_request_limit as usize,
        max_response_bytes: opts.batch_response_max_bytes as usize,
    };
    let config = |ws_only: bool| {
        // Batches are limited by `BatchLimitLayer`, which answers in geth's words.
        let b = ServerConfig::builder()
            .max_request_body_size(opts.max_request_bytes)
            .max_response_body_size(opts.max_response_bytes)
            .max_connections(opts.max_connections.saturating_add(HTTP_HEADROOM))
            .set_id_provider(HexIdProvider);
        if ws_only {
            b.ws_only().build()
        } else {
            b.build()
        }
    };
    let http = Server::builder()
        .set_config(config(false))
        .set_rpc_middleware(RpcServiceBuilder::new().layer(BatchLimitLayer(batch)))
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(CorsLayer::new(&opts.cors_domains))
                .layer(WsLimitLayer::new(opts.max_connections))
                .layer(GetRoutesLayer(api.clone())),
        )
        .build(opts.http_addr)
        .await?;
    let http_addr = http.local_addr()?;
    let mut handles = vec![http.start(methods.clone())];
    let ws_addr = match opts.ws_addr {
        Some(addr) => {
            let ws = Server::builder()
                .set_config(config(true))
                .set_rpc_middleware(RpcServiceBuilder::new().layer(BatchLimitLayer(batch)))
                .set_http_middleware(
                    tower::ServiceBuilder::new()
                        .layer(CorsLayer::new(&opts.cors_domains))
                        .layer(WsLimitLayer::new(opts.max_connections)),
                )
                .build(addr)
                .await?;
            let bound = ws.local_addr()?;
            handles.push(ws.start(methods));
            Some(bound)
        }
        None => None,
    };
    Ok(RpcServers { http_addr, ws_addr, handles, _sweeper: spawn_filter_sweeper(api) })
}

/// The future every HTTP middleware layer of ours returns.
pub(crate) type HttpFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

/// Answers `GET /health` and `GET /status`; passes everything else to JSON-RPC.
#[derive(Clone)]
struct GetRoutesLayer(Arc<EthApi>);

impl<S> tower::Layer<S> for GetRoutesLayer {
    type Service = GetRoutes<S>;
    fn layer(&self, inner: S) -> GetRoutes<S> {
        GetRoutes { inner, api: self.0.clone() }
    }
}

#[derive(Clone)]
struct GetRoutes<S> {
    inner: S,
    api: Arc<EthApi>,
}

impl<S> tower::Service<HttpRequest> for GetRoutes<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = HttpFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        if req.method() == http::Method::GET {
            let body = match req.uri().path() {
                "/health" => Some(match self.api.head() {
                    Ok(h) => (http::StatusCode::OK, json!({ "status": "ok", "height": h })),
                    Err(e) => {
                        (http::StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "error", "error": e.message() }))
                    }
                }),
                "/status" => Some((http::StatusCode::OK, status_json(&self.api))),
                _ => None,
            };
            if let Some((status, body)) = body {
                let rsp = http::Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(HttpBody::from(body.to_string()));
                return Box::pin(async move { rsp.map_err(|e| Box::new(e) as BoxError) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

//! `--http.max-connections` for WebSocket connections, with headroom for
//! plain HTTP: jsonrpsee counts an open WebSocket and an HTTP request in
//! flight against one limit, so a client holding many WebSockets open could
//! lock every HTTP client out. Upgrades are counted here against the
//! configured limit and refused beyond it; the server's own limit is set
//! [`HTTP_HEADROOM`] higher, which is always left to HTTP requests.

use crate::server::HttpFuture;
use jsonrpsee::{
    core::BoxError,
    server::{HttpBody, HttpRequest, HttpResponse},
};
use std::{
    sync::Arc,
    task::{Context, Poll},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections beyond `--http.max-connections` kept for plain HTTP requests.
pub const HTTP_HEADROOM: u32 = 64;

/// Counts WebSocket connections against a limit.
#[derive(Debug, Clone)]
pub struct WsLimitLayer {
    slots: Arc<Semaphore>,
    max: u32,
}

impl WsLimitLayer {
    /// At most `max` WebSocket connections at once.
    pub fn new(max: u32) -> Self {
        Self { slots: Arc::new(Semaphore::new(max as usize)), max }
    }
}

/// Held in the request's extensions, which jsonrpsee keeps with the
/// WebSocket connection until it closes; dropping it frees the slot.
#[derive(Debug, Clone)]
pub struct WsSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

impl<S> tower::Layer<S> for WsLimitLayer {
    type Service = WsLimit<S>;
    fn layer(&self, inner: S) -> WsLimit<S> {
        WsLimit { inner, layer: self.clone() }
    }
}

/// The service made by [`WsLimitLayer`].
#[derive(Debug, Clone)]
pub struct WsLimit<S> {
    inner: S,
    layer: WsLimitLayer,
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

impl<S> tower::Service<HttpRequest> for WsLimit<S>
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

    fn call(&mut self, mut req: HttpRequest) -> HttpFuture {
        if is_upgrade(&req) {
            match self.layer.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    req.extensions_mut().insert(WsSlot(Arc::new(permit)));
                }
                Err(_) => {
                    tracing::debug!(limit = self.layer.max, "websocket connection refused");
                    let rsp = http::Response::builder()
                        .status(http::StatusCode::TOO_MANY_REQUESTS)
                        .header(http::header::CONTENT_TYPE, "text/plain")
                        .body(HttpBody::from(format!(
                            "Too many connections. Please try again later. (limit {})",
                            self.layer.max
                        )));
                    return Box::pin(async move { rsp.map_err(|e| Box::new(e) as BoxError) });
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}

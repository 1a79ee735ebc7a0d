//! `--http.corsdomain`: which web origins a browser may let call the node.
//! Without the flag no CORS headers are sent (browsers refuse cross-origin
//! reads, as with geth's default); with it, allowed origins get
//! `Access-Control-Allow-Origin` and preflights are answered here.

use crate::server::HttpFuture;
use jsonrpsee::{
    core::BoxError,
    server::{HttpBody, HttpRequest, HttpResponse},
};
use std::{
    sync::Arc,
    task::{Context, Poll},
};

/// Allowed origins; `*` allows any.
#[derive(Debug, Clone, Default)]
pub struct CorsLayer {
    origins: Arc<Vec<String>>,
}

impl CorsLayer {
    /// Allows `origins` (compared without case; `*` for any).
    pub fn new(origins: &[String]) -> Self {
        Self { origins: Arc::new(origins.iter().map(|o| o.trim().to_ascii_lowercase()).collect()) }
    }

    /// The value of `Access-Control-Allow-Origin` for `origin`, if allowed.
    fn allow(&self, origin: &str) -> Option<String> {
        if self.origins.iter().any(|o| o == "*") {
            return Some("*".into());
        }
        let lower = origin.to_ascii_lowercase();
        self.origins.contains(&lower).then(|| origin.to_string())
    }
}

impl<S> tower::Layer<S> for CorsLayer {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Cors<S> {
        Cors { inner, layer: self.clone() }
    }
}

/// The service made by [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: S,
    layer: CorsLayer,
}

impl<S> tower::Service<HttpRequest> for Cors<S>
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

    fn call(&mut self, req: HttpRequest) -> HttpFuture {
        let origin = req.headers().get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(origin) = origin.filter(|_| !self.layer.origins.is_empty()) else {
            return Box::pin(self.inner.call(req));
        };
        let allowed = self.layer.allow(&origin);
        let preflight = req.method() == http::Method::OPTIONS
            && req.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let rsp = match allowed {
                Some(allow) => {
                    let headers = req
                        .headers()
                        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
                        .cloned()
                        .unwrap_or(http::HeaderValue::from_static("content-type"));
                    http::Response::builder()
                        .status(http::StatusCode::NO_CONTENT)
                        .header(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow)
                        .header(http::header::ACCESS_CONTROL_ALLOW_METHODS, "POST, GET, OPTIONS")
                        .header(http::header::ACCESS_CONTROL_ALLOW_HEADERS, headers)
                        .header(http::header::ACCESS_CONTROL_MAX_AGE, "600")
                        .header(http::header::VARY, "Origin")
                        .body(HttpBody::empty())
                }
                None => http::Response::builder()
                    .status(http::StatusCode::FORBIDDEN)
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .body(HttpBody::from(format!("origin {origin} is not allowed (--http.corsdomain)"))),
            };
            return Box::pin(async move { rsp.map_err(|e| Box::new(e) as BoxError) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut rsp = fut.await?;
            if let Some(allow) = allowed.and_then(|a| http::HeaderValue::from_str(&a).ok()) {
                rsp.headers_mut().insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
                rsp.headers_mut().insert(http::header::VARY, http::HeaderValue::from_static("Origin"));
            }
            Ok(rsp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_without_case_and_star_allows_all() {
        let layer = CorsLayer::new(&["https://App.example".into()]);
        assert_eq!(layer.allow("https://app.example").as_deref(), Some("https://app.example"));
        assert_eq!(layer.allow("https://evil.example"), None);
        assert_eq!(CorsLayer::new(&["*".into()]).allow("https://any").as_deref(), Some("*"));
    }
}

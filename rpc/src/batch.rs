//! Batch limits with geth's names and words: at most `--rpc.batch-request-limit`
//! calls per batch ("batch too large") and at most
//! `--rpc.batch-response-max-size` bytes of answers ("response too large"),
//! so one request cannot make the node do unbounded work or buffer an
//! unbounded reply. Calls outside batches pass straight through.

use jsonrpsee::{
    core::middleware::{Batch, BatchEntry, Notification, RpcServiceT},
    types::{ErrorObject, Id, Request},
    BatchResponseBuilder, MethodResponse,
};
use std::future::Future;

/// geth's code and text for a batch with too many calls (`invalid request`).
pub const BATCH_TOO_LARGE: (i32, &str) = (-32600, "batch too large");
/// geth's code and text for a batch whose answers are too large.
pub const RESPONSE_TOO_LARGE: (i32, &str) = (-32003, "response too large");

/// How large batches may be.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most calls in one batch.
    pub max_calls: usize,
    /// Most bytes of answers to one batch.
    pub max_response_bytes: usize,
}

/// The RPC middleware layer applying [`BatchLimits`].
#[derive(Debug, Clone, Copy)]
pub struct BatchLimitLayer(pub BatchLimits);

impl<S> tower::Layer<S> for BatchLimitLayer {
    type Service = BatchLimit<S>;
    fn layer(&self, inner: S) -> BatchLimit<S> {
        BatchLimit { inner, limits: self.0 }
    }
}

/// The service made by [`BatchLimitLayer`].
#[derive(Debug, Clone)]
pub struct BatchLimit<S> {
    inner: S,
    limits: BatchLimits,
}

fn error(id: Id<'_>, (code, msg): (i32, &'static str)) -> MethodResponse {
    MethodResponse::error(id, ErrorObject::borrowed(code, msg, None))
}

impl<S> RpcServiceT for BatchLimit<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let (inner, limits) = (self.inner.clone(), self.limits);
        async move {
            if batch.len() > limits.max_calls {
                tracing::debug!(calls = batch.len(), limit = limits.max_calls, "batch refused");
                return error(Id::Null, BATCH_TOO_LARGE);
            }
            let mut answers = BatchResponseBuilder::new_with_limit(limits.max_response_bytes);
            let mut got_notification = false;
            for entry in batch.into_iter() {
                let answer = match entry {
                    Ok(BatchEntry::Call(req)) => inner.call(req).await,
                    Ok(BatchEntry::Notification(n)) => {
                        got_notification = true;
                        inner.notification(n).await;
                        continue;
                    }
                    Err(err) => {
                        let (err, id) = err.into_parts();
                        MethodResponse::error(id, err)
                    }
                };
                if answers.append(answer).is_err() {
                    tracing::debug!(limit = limits.max_response_bytes, "batch response refused");
                    return error(Id::Null, RESPONSE_TOO_LARGE);
                }
            }
            if answers.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(answers.finish())
            }
        }
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

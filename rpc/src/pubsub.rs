//! `eth_subscribe`: `newHeads`, `logs` and `newPendingTransactions` over WebSocket.

use crate::{
    api::EthApi,
    convert::{block_logs, rpc_header, rpc_pending_tx},
    error::invalid_params,
};
use alloy_rpc_types_eth::{
    pubsub::{Params as SubParams, SubscriptionKind},
    Filter,
};
use jsonrpsee::{
    core::SubscriptionError, server::IdProvider, types::SubscriptionId, PendingSubscriptionSink, RpcModule,
    SubscriptionMessage, SubscriptionSink,
};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Subscription ids as Ethereum clients expect them: `0x` and 32 hex digits.
#[derive(Debug, Clone, Copy)]
pub struct HexIdProvider;

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        SubscriptionId::Str(crate::filters::random_id().1.into())
    }
}

async fn send<T: Serialize>(sink: &SubscriptionSink, value: &T) -> Result<bool, SubscriptionError> {
    let raw = serde_json::value::to_raw_value(value).map_err(|e| SubscriptionError::from(e.to_string()))?;
    Ok(sink.send(SubscriptionMessage::from(raw)).await.is_ok())
}

/// Forwards items from `rx` (mapped by `f` into zero or more messages) until
/// the client goes away.
async fn pump<T: Clone, M: Serialize>(
    sink: SubscriptionSink,
    mut rx: Receiver<T>,
    f: impl Fn(T) -> Vec<M>,
) -> Result<(), SubscriptionError> {
    loop {
        tokio::select! {
            _ = sink.closed() => return Ok(()),
            item = rx.recv() => match item {
                Ok(item) => {
                    for msg in f(item) {
                        if !send(&sink, &msg).await? {
                            return Ok(());
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "subscriber lagging"),
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}

/// Registers `eth_subscribe` / `eth_unsubscribe`.
pub fn register(module: &mut RpcModule<Arc<EthApi>>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending: PendingSubscriptionSink, api, _| async move {
            let mut seq = params.sequence();
            let kind: SubscriptionKind = match seq.next() {
                Ok(k) => k,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let extra: Option<serde_json::Value> = seq.optional_next().unwrap_or(None);
            let api: Arc<EthApi> = (*api).clone();
            match kind {
                SubscriptionKind::NewHeads => {
                    let rx = api.new_blocks.subscribe();
                    let sink = pending.accept().await?;
                    pump(sink, rx, |b| vec![rpc_header(&b.block.header, b.block.hash, None)]).await
                }
                SubscriptionKind::Logs => {
                    let filter = match extra.map(SubParams::from_json_value) {
                        None => Filter::default(),
                        Some(Ok(SubParams::Logs(f))) => *f,
                        Some(_) => {
                            pending.reject(invalid_params("invalid logs filter")).await;
                            return Ok(());
                        }
                    };
                    let rx = api.new_blocks.subscribe();
                    let sink = pending.accept().await?;
                    pump(sink, rx, move |b| {
                        if !filter.matches_bloom(b.block.header.logs_bloom) {
                            return Vec::new();
                        }
                        block_logs(&b.block, &b.receipts)
                            .into_iter()
                            .flatten()
                            .filter(|l| filter.rpc_matches(l))
                            .collect()
                    })
                    .await
                }
                SubscriptionKind::NewPendingTransactions => {
                    let full = matches!(extra.map(SubParams::from_json_value), Some(Ok(SubParams::Bool(true))));
                    let rx = api.pending_txs.subscribe();
                    let sink = pending.accept().await?;
                    let pool = api.pool.clone();
                    pump(sink, rx, move |hash| {
                        if full {
                            pool.get(&hash)
                                .map(|t| serde_json::to_value(rpc_pending_tx(&t.tx, t.sender)).unwrap_or_default())
                                .into_iter()
                                .collect()
                        } else {
                            vec![serde_json::to_value(hash).unwrap_or_default()]
                        }
                    })
                    .await
                }
                other => {
                    pending.reject(invalid_params(format!("unsupported subscription: {other:?}"))).await;
                    Ok(())
                }
            }
        },
    )?;
    Ok(())
}

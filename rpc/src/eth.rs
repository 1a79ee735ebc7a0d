//! The `eth_`, `net_`, `web3_` and `txpool_` methods.

use crate::{
    api::EthApi,
    convert::{block_logs, rpc_block, rpc_pending_tx, rpc_receipt, rpc_receipts, rpc_tx},
    error::*,
    filters::FilterKind,
};
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::Decodable2718;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256, U64};
use alloy_rpc_types_eth::{
    BlockId, BlockNumberOrTag, FeeHistory, Filter, FilterBlockOption, FilterChanges, Index, Log, TransactionRequest,
};
use jsonrpsee::{
    types::{ErrorObjectOwned, Params},
    RpcModule,
};
use metanode_execution::call::{self, CallOutcome, CallRequest};
use metanode_primitives::MAX_TX_SIZE;
use serde_json::{json, Value};
use std::{collections::BTreeMap, sync::Arc};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Suggested tip when recent blocks carry no transactions (1 gwei, like geth's default).
const DEFAULT_TIP: u128 = 1_000_000_000;
/// Blocks sampled for the tip suggestion.
const TIP_SAMPLE_BLOCKS: u64 = 20;
/// Most blocks one `eth_feeHistory` may ask for (geth's and reth's limit).
pub const MAX_FEE_HISTORY: u64 = 1024;
/// Most reward percentiles one `eth_feeHistory` may ask for: each costs a
/// pass over every block's receipts.
pub const MAX_FEE_HISTORY_PERCENTILES: usize = 100;

fn to_call_request(req: TransactionRequest) -> RpcResult<CallRequest> {
    let input = req.input.try_into_unique_input().map_err(|e| invalid_params(e.to_string()))?.unwrap_or_default();
    Ok(CallRequest {
        from: req.from,
        to: match req.to {
            Some(TxKind::Call(a)) => Some(a),
            _ => None,
        },
        gas: req.gas,
        gas_price: req.gas_price,
        max_fee_per_gas: req.max_fee_per_gas,
        max_priority_fee_per_gas: req.max_priority_fee_per_gas,
        value: req.value,
        input,
        nonce: req.nonce,
        access_list: req.access_list,
        authorization_list: req.authorization_list,
    })
}

fn outcome_error(outcome: CallOutcome, cap: u64) -> ErrorObjectOwned {
    match outcome {
        CallOutcome::Revert { output, .. } => reverted(&output),
        CallOutcome::Halt { reason, .. } if reason.contains("OutOfGas") => {
            server_error(format!("gas required exceeds allowance ({cap})"))
        }
        CallOutcome::Halt { reason, .. } => server_error(format!("execution halted: {reason}")),
        CallOutcome::Success { .. } => internal("success treated as failure"),
    }
}

fn call_error(e: call::CallError) -> ErrorObjectOwned {
    match e {
        call::CallError::Invalid(msg) => server_error(msg),
        e @ call::CallError::Timeout(_) => server_error(e.to_string()),
        other => internal(other),
    }
}

impl EthApi {
    fn block_by_id(&self, id: BlockId, full: bool) -> RpcResult<Option<Value>> {
        let Some(n) = self.resolve_id(id)? else { return Ok(None) };
        Ok(self.block(n)?.map(|b| serde_json::to_value(rpc_block(&b, full)).unwrap_or(Value::Null)))
    }

    fn nonce(&self, addr: Address, id: Option<BlockId>) -> RpcResult<U64> {
        if matches!(id, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            if let Some(n) = self.pool.pending_nonce(&addr) {
                return Ok(U64::from(n));
            }
        }
        let (state, _) = self.state_at(id)?;
        Ok(U64::from(state.account(&addr).map_err(internal)?.map(|a| a.nonce).unwrap_or_default()))
    }

    fn send_raw(&self, raw: Bytes) -> RpcResult<B256> {
        if raw.len() > MAX_TX_SIZE {
            return Err(server_error(format!("oversized data: transaction size {}, limit {MAX_TX_SIZE}", raw.len())));
        }
        let tx = TxEnvelope::decode_2718_exact(&raw)
            .map_err(|e| server_error(format!("rlp: failed to decode transaction: {e}")))?;
        let state = self.db.latest_state().map_err(internal)?;
        self.pool.add(tx, &state).map_err(|e| match e {
            metanode_execution::txpool::PoolError::Storage(s) => internal(s),
            other => server_error(other.to_string()),
        })
    }

    /// The tip suggestion, computed once per head and cached: it decodes
    /// [`TIP_SAMPLE_BLOCKS`] blocks.
    fn suggested_tip(&self) -> RpcResult<u128> {
        let head = self.head()?;
        let hash = self.db.block_hash(head).map_err(internal)?.unwrap_or_default();
        if let Some((cached_for, tip)) = *self.tip_cache.lock() {
            if cached_for == hash {
                return Ok(tip);
            }
        }
        let tip = self.compute_tip(head)?;
        *self.tip_cache.lock() = Some((hash, tip));
        Ok(tip)
    }

    fn compute_tip(&self, head: u64) -> RpcResult<u128> {
        let mut tips = Vec::new();
        for n in head.saturating_sub(TIP_SAMPLE_BLOCKS - 1)..=head {
            if let Some(b) = self.block(n)? {
                let base = b.header.base_fee_per_gas.unwrap_or_default();
                tips.extend(b.transactions.iter().filter_map(|t| t.effective_tip_per_gas(base)));
            }
        }
        if tips.is_empty() {
            return Ok(DEFAULT_TIP);
        }
        tips.sort_unstable();
        Ok(tips[(tips.len() - 1) * 60 / 100].max(1))
    }

    /// `eth_gasPrice`: the suggested tip on top of the larger of the head's
    /// base fee and the next block's. Clients check a price against the
    /// latest block (`eth_estimateGas` and `eth_call` at `latest`), the pool's
    /// builder against the next one; after a block under its gas target the
    /// next base fee is lower than the head's and a price built on it alone
    /// was refused at `latest`, after a full one it is higher. The larger
    /// base clears both.
    fn gas_price(&self) -> RpcResult<u128> {
        let head = self.header(self.head()?)?.ok_or_else(|| internal("head header missing"))?;
        let base = head.base_fee_per_gas.unwrap_or_default().max(self.spec().next_base_fee(&head));
        Ok(u128::from(base) + self.suggested_tip()?)
    }

    fn fee_history(
        &self,
        count: u64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        if count > MAX_FEE_HISTORY {
            return Err(invalid_params(format!("block count {count} exceeds the limit of {MAX_FEE_HISTORY}")));
        }
        if let Some(p) = &percentiles {
            if p.len() > MAX_FEE_HISTORY_PERCENTILES {
                return Err(invalid_params(format!(
                    "too many reward percentiles: {} (limit {MAX_FEE_HISTORY_PERCENTILES})",
                    p.len()
                )));
            }
            if p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]) {
                return Err(invalid_params("reward percentiles must be ascending values in [0, 100]"));
            }
        }
        let newest = self.resolve_number(newest)?.min(self.head()?);
        if count == 0 {
            return Ok(FeeHistory { oldest_block: newest, ..Default::default() });
        }
        let oldest = newest.saturating_sub(count - 1);
        let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
        let mut rewards = Vec::new();
        let mut last_header = None;
        for n in oldest..=newest {
            let block = self.block(n)?.ok_or_else(|| internal("block missing"))?;
            let h = &block.header;
            history.base_fee_per_gas.push(u128::from(h.base_fee_per_gas.unwrap_or_default()));
            history.gas_used_ratio.push(if h.gas_limit == 0 { 0.0 } else { h.gas_used as f64 / h.gas_limit as f64 });
            if let Some(p) = &percentiles {
                let receipts = self.db.receipts(n).map_err(internal)?.unwrap_or_default();
                rewards.push(block_rewards(&block, &receipts, p));
            }
            last_header = Some(block.header);
        }
        if let Some(h) = last_header {
            history.base_fee_per_gas.push(u128::from(self.spec().next_base_fee(&h)));
        }
        history.reward = percentiles.map(|_| rewards);
        Ok(history)
    }

    fn logs(&self, filter: &Filter) -> RpcResult<Vec<Log>> {
        let head = self.head()?;
        let (from, to) = match &filter.block_option {
            FilterBlockOption::AtBlockHash(h) => {
                let n = self.db.block_number(h).map_err(internal)?.ok_or_else(|| server_error("unknown block"))?;
                (n, n)
            }
            FilterBlockOption::Range { from_block, to_block } => {
                let from = self.resolve_number(from_block.unwrap_or_default())?;
                let to = self.resolve_number(to_block.unwrap_or_default())?.min(head);
                (from, to)
            }
        };
        if from > to {
            return Ok(Vec::new());
        }
        self.check_range(from, to)?;
        self.logs_in_range(filter, from, to)
    }

    /// The block-range cap of `eth_getLogs`, which filters honour too.
    fn check_range(&self, from: u64, to: u64) -> RpcResult<()> {
        if to >= from && to - from + 1 > self.config.max_logs_range {
            return Err(limit_exceeded(format!("query exceeds max block range {}", self.config.max_logs_range)));
        }
        Ok(())
    }

    /// `eth_getFilterChanges`: what happened since the last poll. A log
    /// filter whose unpolled range is over the cap is refused (and not
    /// advanced), like an `eth_getLogs` over that range.
    fn filter_changes(&self, id: &str) -> RpcResult<FilterChanges> {
        let head = self.head()?;
        let polled = self.filters.with(id, |k| -> RpcResult<FilterKind> {
            let snapshot = k.clone();
            match k {
                FilterKind::Logs { next_block, filter } => {
                    let to = filter.block_option.get_to_block().and_then(|t| t.as_number()).unwrap_or(head).min(head);
                    self.check_range(*next_block, to)?;
                    *next_block = (*next_block).max(to + 1);
                }
                FilterKind::Blocks { next_block } => *next_block = head + 1,
                FilterKind::PendingTransactions { hashes } => hashes.clear(),
            }
            Ok(snapshot)
        });
        match polled.ok_or_else(|| server_error("filter not found"))?? {
            FilterKind::Logs { filter, next_block } => {
                let to = filter.block_option.get_to_block().and_then(|t| t.as_number()).unwrap_or(head).min(head);
                if next_block > to {
                    return Ok(FilterChanges::Empty);
                }
                Ok(FilterChanges::Logs(self.logs_in_range(&filter, next_block, to)?))
            }
            FilterKind::Blocks { next_block } => {
                let mut hashes = Vec::new();
                for n in next_block..=head {
                    if let Some(h) = self.db.block_hash(n).map_err(internal)? {
                        hashes.push(h);
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
            FilterKind::PendingTransactions { hashes } => Ok(FilterChanges::Hashes(hashes)),
        }
    }

    fn install_filter(&self, kind: FilterKind) -> RpcResult<String> {
        self.filters.install(kind).map_err(|e| limit_exceeded(e.to_string()))
    }

    pub(crate) fn logs_in_range(&self, filter: &Filter, from: u64, to: u64) -> RpcResult<Vec<Log>> {
        let mut out = Vec::new();
        for n in from..=to {
            let Some(header) = self.header(n)? else { break };
            if !filter.matches_bloom(header.logs_bloom) {
                continue;
            }
            let Some(block) = self.block(n)? else { break };
            let receipts = self.db.receipts(n).map_err(internal)?.unwrap_or_default();
            out.extend(block_logs(&block, &receipts).into_iter().flatten().filter(|l| filter.rpc_matches(l)));
        }
        Ok(out)
    }
}

fn block_rewards(
    block: &metanode_primitives::SealedBlock,
    receipts: &[alloy_consensus::ReceiptEnvelope],
    percentiles: &[f64],
) -> Vec<u128> {
    let base = block.header.base_fee_per_gas.unwrap_or_default();
    let mut prev = 0u64;
    let mut tips: Vec<(u128, u64)> = block
        .transactions
        .iter()
        .zip(receipts)
        .map(|(tx, r)| {
            let used = r.cumulative_gas_used() - prev;
            prev = r.cumulative_gas_used();
            (tx.effective_tip_per_gas(base).unwrap_or_default(), used)
        })
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, g)| g).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut acc = 0u64;
            for (tip, gas) in &tips {
                acc += gas;
                if acc >= threshold {
                    return *tip;
                }
            }
            tips.last().map(|t| t.0).unwrap_or_default()
        })
        .collect()
}

fn seq_block_id(seq: &mut jsonrpsee::types::params::ParamsSequence<'_>) -> RpcResult<Option<BlockId>> {
    seq.optional_next::<BlockId>()
}

/// Registers every method of the `eth_`, `net_`, `web3_` and `txpool_` namespaces.
pub fn register(module: &mut RpcModule<Arc<EthApi>>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("eth_chainId", |_, api, _| -> RpcResult<U64> { Ok(U64::from(api.spec().chain_id)) })?;
    module.register_method("net_version", |_, api, _| -> RpcResult<String> { Ok(api.spec().chain_id.to_string()) })?;
    module.register_method("net_listening", |_, _, _| -> RpcResult<bool> { Ok(true) })?;
    module.register_method("net_peerCount", |_, api, _| -> RpcResult<U64> {
        Ok(U64::from(api.peers.load(std::sync::atomic::Ordering::Relaxed)))
    })?;
    module.register_method("web3_clientVersion", |_, api, _| -> RpcResult<String> {
        Ok(api.config.client_version.clone())
    })?;
    module.register_method("web3_sha3", |p: Params<'_>, _, _| -> RpcResult<B256> {
        let data: Bytes = p.sequence().next()?;
        Ok(keccak256(&data))
    })?;
    module.register_method("eth_blockNumber", |_, api, _| -> RpcResult<U64> { Ok(U64::from(api.head()?)) })?;
    module.register_method("eth_syncing", |_, api, _| -> RpcResult<Value> {
        Ok(match api.sync_progress()? {
            None => Value::Bool(false),
            Some(p) => json!({
                "startingBlock": U64::from(p.starting),
                "currentBlock": U64::from(p.current),
                "highestBlock": U64::from(p.highest),
            }),
        })
    })?;
    module
        .register_method("eth_accounts", |_, api, _| -> RpcResult<Vec<Address>> { Ok(api.config.accounts.clone()) })?;
    module.register_blocking_method("eth_getBlockByNumber", |p, api, _| -> RpcResult<Option<Value>> {
        let mut seq = p.sequence();
        let tag: BlockNumberOrTag = seq.next()?;
        let full: Option<bool> = seq.optional_next()?;
        api.block_by_id(BlockId::Number(tag), full.unwrap_or(false))
    })?;
    module.register_blocking_method("eth_getBlockByHash", |p, api, _| -> RpcResult<Option<Value>> {
        let mut seq = p.sequence();
        let hash: B256 = seq.next()?;
        let full: Option<bool> = seq.optional_next()?;
        api.block_by_id(BlockId::from(hash), full.unwrap_or(false))
    })?;
    module.register_method("eth_getBlockTransactionCountByNumber", |p, api, _| -> RpcResult<Option<U64>> {
        let tag: BlockNumberOrTag = p.sequence().next()?;
        let n = api.resolve_number(tag)?;
        Ok(api.block(n)?.map(|b| U64::from(b.transactions.len())))
    })?;
    module.register_method("eth_getBlockTransactionCountByHash", |p, api, _| -> RpcResult<Option<U64>> {
        let hash: B256 = p.sequence().next()?;
        let Some(n) = api.db.block_number(&hash).map_err(internal)? else { return Ok(None) };
        Ok(api.block(n)?.map(|b| U64::from(b.transactions.len())))
    })?;
    module.register_method("eth_getTransactionCount", |p, api, _| -> RpcResult<U64> {
        let mut seq = p.sequence();
        let addr: Address = seq.next()?;
        api.nonce(addr, seq_block_id(&mut seq)?)
    })?;
    module.register_method("eth_getBalance", |p, api, _| -> RpcResult<U256> {
        let mut seq = p.sequence();
        let addr: Address = seq.next()?;
        let (state, _) = api.state_at(seq_block_id(&mut seq)?)?;
        Ok(state.account(&addr).map_err(internal)?.map(|a| a.balance).unwrap_or_default())
    })?;
    module.register_method("eth_getCode", |p, api, _| -> RpcResult<Bytes> {
        let mut seq = p.sequence();
        let addr: Address = seq.next()?;
        let (state, _) = api.state_at(seq_block_id(&mut seq)?)?;
        let Some(acc) = state.account(&addr).map_err(internal)? else { return Ok(Bytes::new()) };
        Ok(state.code(&acc.code_hash).map_err(internal)?.unwrap_or_default())
    })?;
    module.register_method("eth_getStorageAt", |p, api, _| -> RpcResult<B256> {
        let mut seq = p.sequence();
        let addr: Address = seq.next()?;
        let slot: U256 = seq.next()?;
        let (state, _) = api.state_at(seq_block_id(&mut seq)?)?;
        Ok(B256::from(state.storage(&addr, &B256::from(slot)).map_err(internal)?))
    })?;
    module.register_blocking_method("eth_call", |p, api, _| -> RpcResult<Bytes> {
        let mut seq = p.sequence();
        let req = to_call_request(seq.next()?)?;
        let (state, header) = api.call_context(seq_block_id(&mut seq)?)?;
        let limits = api.config.call_limits;
        let gas = limits.allowance(req.gas, header.gas_limit);
        match call::call(api.spec(), state, &header, &req, &limits).map_err(call_error)? {
            CallOutcome::Success { output, .. } => Ok(output),
            other => Err(outcome_error(other, gas)),
        }
    })?;
    module.register_blocking_method("eth_estimateGas", |p, api, _| -> RpcResult<U64> {
        let mut seq = p.sequence();
        let req = to_call_request(seq.next()?)?;
        let id = seq_block_id(&mut seq)?;
        let (state, header) = api.call_context(id)?;
        let number = state.block();
        drop(state);
        let reader =
            || if number == api.head().unwrap_or(number) { api.db.latest_state() } else { api.db.state_at(number) };
        let limits = api.config.call_limits;
        let cap = limits.allowance(req.gas, header.gas_limit);
        match call::estimate_gas(api.spec(), reader, &header, &req, &limits).map_err(call_error)? {
            Ok(gas) => Ok(U64::from(gas)),
            Err(outcome) => Err(outcome_error(outcome, cap)),
        }
    })?;
    // Methods that read many blocks run on the blocking pool, not on the
    // async workers that every other client's requests need.
    module.register_blocking_method("eth_gasPrice", |_, api, _| -> RpcResult<U256> {
        Ok(U256::from(api.gas_price()?))
    })?;
    module.register_blocking_method("eth_maxPriorityFeePerGas", |_, api, _| -> RpcResult<U256> {
        Ok(U256::from(api.suggested_tip()?))
    })?;
    module.register_blocking_method("eth_feeHistory", |p, api, _| -> RpcResult<FeeHistory> {
        let mut seq = p.sequence();
        let count: U64 = seq.next()?;
        let newest: BlockNumberOrTag = seq.next()?;
        let percentiles: Option<Vec<f64>> = seq.optional_next()?;
        api.fee_history(count.to(), newest, percentiles)
    })?;
    module.register_method("eth_sendRawTransaction", |p, api, _| -> RpcResult<B256> {
        let raw: Bytes = p.sequence().next()?;
        api.send_raw(raw)
    })?;
    module.register_method("eth_getTransactionByHash", |p, api, _| -> RpcResult<Option<Value>> {
        let hash: B256 = p.sequence().next()?;
        if let Some((n, i)) = api.db.transaction_location(&hash).map_err(internal)? {
            let block = api.block(n)?.ok_or_else(|| internal("indexed block missing"))?;
            return Ok(rpc_tx(&block, i as usize).map(|t| serde_json::to_value(t).unwrap_or_default()));
        }
        Ok(api.pool.get(&hash).map(|t| serde_json::to_value(rpc_pending_tx(&t.tx, t.sender)).unwrap_or_default()))
    })?;
    module.register_method("eth_getTransactionByBlockNumberAndIndex", |p, api, _| -> RpcResult<Option<Value>> {
        let mut seq = p.sequence();
        let tag: BlockNumberOrTag = seq.next()?;
        let index: Index = seq.next()?;
        let n = api.resolve_number(tag)?;
        Ok(api.block(n)?.and_then(|b| rpc_tx(&b, index.0)).map(|t| serde_json::to_value(t).unwrap_or_default()))
    })?;
    module.register_method("eth_getTransactionByBlockHashAndIndex", |p, api, _| -> RpcResult<Option<Value>> {
        let mut seq = p.sequence();
        let hash: B256 = seq.next()?;
        let index: Index = seq.next()?;
        let Some(n) = api.db.block_number(&hash).map_err(internal)? else { return Ok(None) };
        Ok(api.block(n)?.and_then(|b| rpc_tx(&b, index.0)).map(|t| serde_json::to_value(t).unwrap_or_default()))
    })?;
    module.register_blocking_method("eth_getTransactionReceipt", |p, api, _| -> RpcResult<Option<Value>> {
        let hash: B256 = p.sequence().next()?;
        let Some((n, i)) = api.db.transaction_location(&hash).map_err(internal)? else { return Ok(None) };
        let block = api.block(n)?.ok_or_else(|| internal("indexed block missing"))?;
        let receipts = api.db.receipts(n).map_err(internal)?.unwrap_or_default();
        Ok(rpc_receipt(&block, &receipts, i as usize).map(|r| serde_json::to_value(r).unwrap_or_default()))
    })?;
    module.register_blocking_method("eth_getBlockReceipts", |p, api, _| -> RpcResult<Option<Value>> {
        let id: BlockId = p.sequence().next()?;
        let Some(n) = api.resolve_id(id)? else { return Ok(None) };
        let Some(block) = api.block(n)? else { return Ok(None) };
        let receipts = api.db.receipts(n).map_err(internal)?.unwrap_or_default();
        Ok(Some(serde_json::to_value(rpc_receipts(&block, &receipts)).unwrap_or_default()))
    })?;
    module.register_blocking_method("eth_getLogs", |p, api, _| -> RpcResult<Vec<Log>> {
        let filter: Filter = p.sequence().next()?;
        api.logs(&filter)
    })?;
    module.register_method("eth_newFilter", |p, api, _| -> RpcResult<String> {
        let filter: Filter = p.sequence().next()?;
        let head = api.head()?;
        let next_block = match filter.block_option.get_from_block() {
            Some(tag) => api.resolve_number(*tag)?,
            None => head + 1,
        };
        api.install_filter(FilterKind::Logs { filter: Box::new(filter), next_block })
    })?;
    module.register_method("eth_newBlockFilter", |_, api, _| -> RpcResult<String> {
        api.install_filter(FilterKind::Blocks { next_block: api.head()? + 1 })
    })?;
    module.register_method("eth_newPendingTransactionFilter", |_, api, _| -> RpcResult<String> {
        api.install_filter(FilterKind::PendingTransactions { hashes: Vec::new() })
    })?;
    module.register_method("eth_uninstallFilter", |p, api, _| -> RpcResult<bool> {
        let id: String = p.sequence().next()?;
        Ok(api.filters.uninstall(&id))
    })?;
    module.register_blocking_method("eth_getFilterChanges", |p, api, _| -> RpcResult<FilterChanges> {
        let id: String = p.sequence().next()?;
        api.filter_changes(&id)
    })?;
    module.register_blocking_method("eth_getFilterLogs", |p, api, _| -> RpcResult<Vec<Log>> {
        let id: String = p.sequence().next()?;
        match api.filters.get(&id) {
            Some(FilterKind::Logs { filter, .. }) => api.logs(&filter),
            Some(_) => Err(server_error("filter is not a log filter")),
            None => Err(server_error("filter not found")),
        }
    })?;
    module.register_method("txpool_status", |_, api, _| -> RpcResult<Value> {
        let s = api.pool.status();
        Ok(json!({ "pending": U64::from(s.pending), "queued": U64::from(s.queued) }))
    })?;
    module.register_blocking_method("txpool_content", |_, api, _| -> RpcResult<Value> {
        let (pending, queued) = api.pool.content();
        let render = |listing: metanode_execution::txpool::PoolListing| -> BTreeMap<Address, BTreeMap<String, Value>> {
            listing
                .into_iter()
                .map(|(addr, txs)| {
                    let txs = txs
                        .into_iter()
                        .map(|(n, t)| {
                            (n.to_string(), serde_json::to_value(rpc_pending_tx(&t.tx, t.sender)).unwrap_or_default())
                        })
                        .collect();
                    (addr, txs)
                })
                .collect()
        };
        Ok(json!({ "pending": render(pending), "queued": render(queued) }))
    })?;
    Ok(())
}

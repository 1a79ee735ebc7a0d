//! `eth_call` and `eth_estimateGas`: executing a message against a state
//! without committing anything.

use crate::{deadline::Deadline, env::evm_env, state::BlockState};
use alloy_consensus::Header;
use alloy_eips::eip2930::AccessList;
use alloy_eips::eip7702::SignedAuthorization;
use alloy_evm::{EthEvmFactory, Evm, EvmFactory};
use alloy_primitives::{Address, Bytes, Log, TxKind, U256};
use metanode_primitives::ChainSpec;
use metanode_storage::{StateReader, StorageError};
use revm::context::{
    either::Either,
    result::{EVMError, ExecutionResult, InvalidTransaction},
    TxEnv,
};
use std::time::Duration;

/// What one `eth_call` or `eth_estimateGas` may spend: geth's `--rpc.gascap`
/// and `--rpc.evmtimeout`, so one request cannot hold a worker for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Most gas one call may use; 0 means no cap (as in geth).
    pub gas_cap: u64,
    /// Wall-clock budget of the whole request; `None` means none.
    pub timeout: Option<Duration>,
}

impl Default for CallLimits {
    /// geth's and reth's defaults: 50,000,000 gas and 5 s.
    fn default() -> Self {
        Self { gas_cap: 50_000_000, timeout: Some(Duration::from_secs(5)) }
    }
}

impl CallLimits {
    /// The one gas rule for calls and estimates: the gas asked for, or the
    /// block's gas limit when none is given, never more than the cap.
    pub fn allowance(&self, requested: Option<u64>, block_gas_limit: u64) -> u64 {
        let gas = requested.unwrap_or(block_gas_limit);
        if self.gas_cap == 0 {
            gas
        } else {
            gas.min(self.gas_cap)
        }
    }
}

/// A message to execute, as `eth_call` and `eth_estimateGas` receive it.
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    /// Sender (zero address when absent).
    pub from: Option<Address>,
    /// Recipient; `None` creates a contract.
    pub to: Option<Address>,
    /// Gas limit; the block gas limit when absent.
    pub gas: Option<u64>,
    /// Legacy gas price.
    pub gas_price: Option<u128>,
    /// EIP-1559 fee cap.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 tip cap.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Wei sent.
    pub value: Option<U256>,
    /// Calldata or init code.
    pub input: Bytes,
    /// Nonce (ignored: calls never check it).
    pub nonce: Option<u64>,
    /// EIP-2930 access list.
    pub access_list: Option<AccessList>,
    /// EIP-7702 authorizations.
    pub authorization_list: Option<Vec<SignedAuthorization>>,
}

/// The result of executing a message.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    /// Finished normally.
    Success {
        /// Return data.
        output: Bytes,
        /// Gas used.
        gas_used: u64,
        /// Logs emitted.
        logs: Vec<Log>,
    },
    /// `REVERT` with its data.
    Revert {
        /// Revert data (often `Error(string)`).
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// Exceptional halt (out of gas, invalid opcode, ...).
    Halt {
        /// Why.
        reason: String,
        /// Gas used (all of it).
        gas_used: u64,
    },
}

/// Why a message could not be executed at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The message is invalid (fees, funds, gas); the text uses geth's words.
    #[error("{0}")]
    Invalid(String),
    /// The state could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Any other EVM failure.
    #[error("evm error: {0}")]
    Evm(String),
    /// The wall-clock budget ran out and the EVM was stopped (geth's words).
    #[error("execution aborted (timeout = {})", go_duration(*.0))]
    Timeout(Duration),
}

/// A duration as Go prints it (`5s`, `1.5s`, `250ms`), so the timeout
/// message reads exactly like geth's.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}µs", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if d.subsec_millis() == 0 {
        format!("{}s", ms / 1000)
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{}s", text.trim_end_matches('0'))
    }
}

/// geth's wording for a transaction validation failure.
pub fn invalid_tx_message(e: &InvalidTransaction) -> String {
    match e {
        InvalidTransaction::LackOfFundForMaxFee { .. } => "insufficient funds for gas * price + value".into(),
        InvalidTransaction::NonceTooLow { .. } => "nonce too low".into(),
        InvalidTransaction::NonceTooHigh { .. } => "nonce too high".into(),
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. }
        | InvalidTransaction::GasFloorMoreThanGasLimit { .. } => "intrinsic gas too low".into(),
        InvalidTransaction::CallerGasLimitMoreThanBlock => "exceeds block gas limit".into(),
        InvalidTransaction::GasPriceLessThanBasefee => "max fee per gas less than block base fee".into(),
        InvalidTransaction::PriorityFeeGreaterThanMaxFee => {
            "max priority fee per gas higher than max fee per gas".into()
        }
        InvalidTransaction::InvalidChainId | InvalidTransaction::MissingChainId => "invalid chain id".into(),
        other => other.to_string(),
    }
}

fn tx_env(spec: &ChainSpec, header: &Header, req: &CallRequest, gas_limit: u64) -> TxEnv {
    let fee_cap = req.max_fee_per_gas.or(req.gas_price).unwrap_or(0);
    let tip = req.max_priority_fee_per_gas;
    let (tx_type, auths) = match &req.authorization_list {
        Some(list) if req.to.is_some() => (4u8, list.iter().cloned().map(Either::Left).collect()),
        _ if req.max_fee_per_gas.is_some() || tip.is_some() => (2u8, Vec::new()),
        _ if req.access_list.is_some() => (1u8, Vec::new()),
        _ => (0u8, Vec::new()),
    };
    let _ = header;
    TxEnv {
        tx_type,
        caller: req.from.unwrap_or_default(),
        gas_limit,
        gas_price: fee_cap,
        kind: req.to.map_or(TxKind::Create, TxKind::Call),
        value: req.value.unwrap_or_default(),
        data: req.input.clone(),
        nonce: 0,
        chain_id: Some(spec.chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        gas_priority_fee: if tx_type >= 2 { Some(tip.unwrap_or(0).min(fee_cap)) } else { None },
        blob_hashes: Vec::new(),
        max_fee_per_blob_gas: 0,
        authorization_list: auths,
    }
}

/// Executes `req` on `reader`'s state in the environment of `header` (the
/// block the call pretends to run in), with `gas_limit` gas, stopping the
/// EVM when `deadline` passes.
pub fn call_with_gas(
    spec: &ChainSpec,
    reader: StateReader<'_>,
    header: &Header,
    req: &CallRequest,
    gas_limit: u64,
    deadline: &mut Deadline,
) -> Result<CallOutcome, CallError> {
    if deadline.expired() {
        return Err(CallError::Timeout(deadline.timeout()));
    }
    let mut env = evm_env(spec, header);
    env.cfg_env.disable_nonce_check = true;
    env.cfg_env.disable_eip3607 = true;
    // The gas cap, not the block's gas limit, bounds a call (as in geth).
    env.cfg_env.disable_block_gas_limit = true;
    // Like geth: a call without a gas price pays nothing and needs no base fee.
    if req.max_fee_per_gas.or(req.gas_price).unwrap_or(0) == 0 {
        env.cfg_env.disable_base_fee = true;
    }
    let tx = tx_env(spec, header, req, gas_limit);
    let mut state = BlockState::new(reader);
    let mut evm = EthEvmFactory::default().create_evm_with_inspector(&mut state, env, &mut *deadline);
    let result = evm.transact(tx);
    drop(evm);
    if deadline.expired() {
        return Err(CallError::Timeout(deadline.timeout()));
    }
    let result = match result {
        Ok(r) => r.result,
        Err(EVMError::Transaction(e)) => return Err(CallError::Invalid(invalid_tx_message(&e))),
        Err(EVMError::Database(e)) => return Err(CallError::Storage(e.0)),
        Err(e) => return Err(CallError::Evm(e.to_string())),
    };
    let gas_used = result.tx_gas_used();
    Ok(match result {
        ExecutionResult::Success { output, logs, .. } => {
            CallOutcome::Success { output: output.into_data(), gas_used, logs }
        }
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halt { reason: format!("{reason:?}"), gas_used },
    })
}

/// `eth_call`: with the gas [`CallLimits::allowance`] gives, within the time budget.
pub fn call(
    spec: &ChainSpec,
    reader: StateReader<'_>,
    header: &Header,
    req: &CallRequest,
    limits: &CallLimits,
) -> Result<CallOutcome, CallError> {
    let gas = limits.allowance(req.gas, header.gas_limit);
    call_with_gas(spec, reader, header, req, gas, &mut Deadline::after(limits.timeout))
}

/// `eth_estimateGas`: the least gas with which the message succeeds, found by
/// binary search between what it used and the cap. Fails with the outcome of
/// the run at the cap when the message cannot succeed at all. The time
/// budget covers the whole search.
pub fn estimate_gas<'a>(
    spec: &ChainSpec,
    reader: impl Fn() -> Result<StateReader<'a>, StorageError>,
    header: &Header,
    req: &CallRequest,
    limits: &CallLimits,
) -> Result<Result<u64, CallOutcome>, CallError> {
    let cap = limits.allowance(req.gas, header.gas_limit);
    let mut deadline = Deadline::after(limits.timeout);
    let first = call_with_gas(spec, reader()?, header, req, cap, &mut deadline)?;
    let used = match first {
        CallOutcome::Success { gas_used, .. } => gas_used,
        other => return Ok(Err(other)),
    };
    // Plain transfers to accounts without code need exactly what they used.
    let mut lo = used.saturating_sub(1);
    let mut hi = cap;
    // Most calls succeed with what they used plus the 63/64 reserve; try that first.
    let optimistic = used.saturating_add(2300).saturating_mul(64) / 63;
    let mut succeeds = |gas: u64| -> Result<bool, CallError> {
        match call_with_gas(spec, reader()?, header, req, gas, &mut deadline) {
            Ok(CallOutcome::Success { .. }) => Ok(true),
            Ok(_) | Err(CallError::Invalid(_)) => Ok(false),
            Err(e) => Err(e),
        }
    };
    if optimistic < hi {
        if succeeds(optimistic)? {
            hi = optimistic;
        } else {
            lo = optimistic;
        }
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if succeeds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Ok(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gas_rule_for_calls_and_estimates() {
        let limits = CallLimits { gas_cap: 50_000_000, timeout: None };
        assert_eq!(limits.allowance(None, 30_000_000), 30_000_000, "block gas limit when none is asked");
        assert_eq!(limits.allowance(Some(21_000), 30_000_000), 21_000);
        assert_eq!(limits.allowance(Some(40_000_000), 30_000_000), 40_000_000, "the cap, not the block, bounds it");
        assert_eq!(limits.allowance(Some(u64::MAX), 30_000_000), 50_000_000);
        let uncapped = CallLimits { gas_cap: 0, timeout: None };
        assert_eq!(uncapped.allowance(Some(u64::MAX), 30_000_000), u64::MAX, "0 means no cap");
    }

    #[test]
    fn timeout_reads_like_geth() {
        assert_eq!(CallError::Timeout(Duration::from_secs(5)).to_string(), "execution aborted (timeout = 5s)");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
    }
}

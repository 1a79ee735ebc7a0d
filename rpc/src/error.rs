//! JSON-RPC error objects with the codes Ethereum clients expect.

use alloy_primitives::Bytes;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};

/// geth's generic server error code (pool rejections, invalid calls).
pub const SERVER_ERROR: i32 = -32000;
/// Invalid params.
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// A request exceeds a configured limit (block range, result count).
pub const LIMIT_EXCEEDED: i32 = -32005;
/// Execution reverted (EIP-1474 / geth).
pub const EXECUTION_REVERTED: i32 = 3;

/// -32000 with a message.
pub fn server_error(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(SERVER_ERROR, msg.into(), None::<()>)
}

/// -32005 for a request over a configured limit.
pub fn limit_exceeded(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(LIMIT_EXCEEDED, msg.into(), None::<()>)
}

/// -32602 with a message.
pub fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(INVALID_PARAMS, msg.into(), None::<()>)
}

/// -32603 for failures that are ours, not the caller's.
pub fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::warn!(%err, "internal error answering rpc");
    ErrorObject::owned(INTERNAL_ERROR, err.to_string(), None::<()>)
}

/// Code 3 `execution reverted[: reason]` with the revert data, as geth answers.
pub fn reverted(output: &Bytes) -> ErrorObjectOwned {
    // alloy renders `Error(string)` as "revert: <reason>"; geth shows the bare reason.
    let reason = alloy_sol_types::decode_revert_reason(output)
        .map(|r| r.strip_prefix("revert: ").map(str::to_string).unwrap_or(r));
    let msg = match reason {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".to_string(),
    };
    ErrorObject::owned(EXECUTION_REVERTED, msg, Some(output.clone()))
}

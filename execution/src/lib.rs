//! Block execution on revm: building and re-executing blocks, receipts, the
//! incremental state root, `eth_call`, and the transaction pool.
//!
//! Knows nothing of the network: it is driven by whoever decides blocks
//! (dev sealer or consensus) and by RPC.

pub mod call;
mod deadline;
mod env;
mod error;
mod executor;
mod genesis;
mod root;
mod state;
pub mod trie;
pub mod txpool;

pub use env::{evm_env, SPEC};
pub use error::ExecError;
pub use executor::{AtMost, BlockAttributes, ExecutedBlock, Executor, TransactionSource};
pub use genesis::{alloc_root, genesis_block, init_genesis};
pub use root::account_trie_update;
pub use state::{BlockState, StateError};
pub use txpool::validate_intrinsic_gas as intrinsic_gas;

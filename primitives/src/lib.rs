//! Types every MetaNode crate agrees on: blocks and their hashes, recovered
//! transactions, the chain specification built from a geth `genesis.json`.
//!
//! Only alloy types are used underneath so that blocks, transactions and
//! receipts are byte-for-byte the Ethereum encodings clients already parse.

mod block;
mod chainspec;
mod commit;
mod recover;

pub use block::{Block, BlockBody, SealedBlock};
pub use chainspec::{ChainSpec, ChainSpecError, GenesisValidator, DEFAULT_CHAIN_ID, DEFAULT_GAS_LIMIT};
pub use commit::{CommitCertificate, CommitSignature};
pub use recover::{recover_sender, recover_senders, RecoveredTx, SignatureError};

pub use alloy_consensus::{Header, Receipt, ReceiptEnvelope, TxEnvelope, TxType};
pub use alloy_genesis::Genesis;
pub use alloy_primitives::{Address, Bloom, Bytes, B256, U256};

/// Largest encoded transaction the node accepts (geth's `txMaxSize`, 128 KiB).
pub const MAX_TX_SIZE: usize = 128 * 1024;

//! Tendermint BFT for MetaNode, on Malachite (`arc-malachitebft-*` 0.8.2).
//!
//! This crate owns what Malachite leaves to the application: the
//! [`MetaContext`] that fixes our heights, values, votes, proposals and
//! validator set; ed25519 signing (`ed25519-dalek`) with chain-id domain
//! separation, so a vote for one chain can never count on another; weighted
//! proposer rotation; and validator key files. It knows nothing of the EVM:
//! the value consensus agrees on is a block hash, and blocks travel as
//! opaque bytes in proposal parts.

mod address;
mod context;
mod height;
mod keys;
mod proposal;
mod signing;
mod validator;
mod value;
mod vote;

pub use address::ValidatorAddress;
pub use context::MetaContext;
pub use height::Height;
pub use keys::{KeyError, ValidatorKey};
pub use proposal::{Proposal, ProposalFin, ProposalInit, ProposalPart};
pub use signing::{Ed25519, Signature, SignatureVerifier, SigningError, ValidatorSigner};
pub use validator::{Validator, ValidatorSet, ValidatorSetError};
pub use value::BlockValue;
pub use vote::Vote;

/// Malachite's core types, re-exported so users of this crate name one version.
pub use malachitebft_core_types as core;
/// Malachite's signing traits (`Signer`, `Verifier`, `VerifierExt`).
pub use malachitebft_signing as signing_traits;

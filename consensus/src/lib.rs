//! Tendermint BFT for MetaNode, on Malachite (`arc-malachitebft-*` 0.8.2).
//!
//! This crate owns what Malachite leaves to the application: the
//! [`MetaContext`] that fixes our heights, values, votes, proposals and
//! validator set; ed25519 signing (`ed25519-dalek`) with chain-id domain
//! separation, so a vote for one chain can never count on another; weighted
//! proposer rotation; validator key files; the wire codec; proposal
//! streaming; and the host that answers Malachite's engine. It knows nothing
//! of the EVM: the value consensus agrees on is a block hash, blocks travel
//! as opaque bytes, and the chain is reached through one trait,
//! [`Application`].

mod address;
mod app;
pub mod certificate;
mod codec;
mod context;
mod engine;
mod guard;
mod height;
mod host;
mod keys;
mod metrics;
mod network_height;
pub mod parts;
mod peer_guard;
mod proposal;
mod signing;
mod validator;
mod value;
mod vote;
pub mod wire;

pub use address::ValidatorAddress;
pub use app::{AppError, Application, BlockOrigin, BlockRejected, BuiltBlock};
pub use codec::MetaCodec;
pub use context::MetaContext;
pub use engine::{start, ConsensusHandle, EngineConfig, EngineError};
pub use guard::{GuardError, GuardedSigner, LastSigned};
pub use height::Height;
pub use host::{Host, HostConfig};
pub use keys::{KeyError, ValidatorKey};
pub use metrics::ConsensusMetrics;
pub use peer_guard::{PeerGuard, BAN};
pub use proposal::{Proposal, ProposalFin, ProposalInit, ProposalPart, SignedInit};
pub use signing::{Ed25519, Signature, SignatureVerifier, SigningError, ValidatorSigner};
pub use validator::{Validator, ValidatorSet, ValidatorSetError};
pub use value::BlockValue;
pub use vote::Vote;

/// Malachite's app-channel API, for driving a [`Host`] directly in tests.
pub use malachitebft_app_channel as channel;
/// Malachite's core types, re-exported so users of this crate name one version.
pub use malachitebft_core_types as core;
/// Malachite's signing traits (`Signer`, `Verifier`, `VerifierExt`).
pub use malachitebft_signing as signing_traits;

//! Double-sign protection that survives crashes: the height, round and step
//! of the last thing this validator signed, kept in a file (like CometBFT's
//! `priv_validator_state.json`) and made durable before a signature is
//! handed out. Asked to sign again at the same height, round and step, the
//! guard returns the same signature for the same bytes and refuses anything
//! else; it also refuses to go back to an earlier step. The write and its
//! fsync run on tokio's blocking pool, so a slow disk stalls only the vote
//! waiting for it, never the async workers the rest of the node runs on.

use crate::{signing::ValidatorSigner, MetaContext, Proposal, Signature, ValidatorAddress, Vote};
use alloy_primitives::{keccak256, B256};
use async_trait::async_trait;
use malachitebft_core_types::{SignedMessage, ValidatorProof, VoteExtensionScope, VoteType};
use malachitebft_signing::{Error, Signer};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Steps within a round, in the order a validator signs them.
const STEP_PROPOSE: u8 = 1;
const STEP_PREVOTE: u8 = 2;
const STEP_PRECOMMIT: u8 = 3;

/// The last signed height, round and step, and what was signed there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSigned {
    /// Height.
    pub height: u64,
    /// Round (-1 before anything was signed).
    pub round: i64,
    /// 1 propose, 2 prevote, 3 precommit (0 before anything was signed).
    pub step: u8,
    /// keccak256 of the signed bytes.
    pub sign_bytes_hash: B256,
    /// The signature given out, returned again for the same bytes.
    pub signature: String,
}

/// Why a signature was refused or the state file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The state file could not be read or written.
    #[error("validator state file {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("validator state file {path} is corrupt: {reason}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Signing would contradict something already signed.
    #[error("refusing to sign at height {height} round {round} step {step}: {reason} (last signed: height {} round {} step {})", last.height, last.round, last.step)]
    Conflict {
        /// Requested height.
        height: u64,
        /// Requested round.
        round: i64,
        /// Requested step.
        step: u8,
        /// Why.
        reason: &'static str,
        /// What was signed last.
        last: LastSigned,
    },
}

/// A [`ValidatorSigner`] that never signs two different messages for one
/// height, round and step, across restarts.
pub struct GuardedSigner {
    guard: Arc<Guard>,
}

/// The signer and its durable record, shared with the blocking task that
/// signs and persists.
struct Guard {
    inner: ValidatorSigner,
    chain_id: u64,
    path: PathBuf,
    last: Mutex<LastSigned>,
}

impl GuardedSigner {
    /// Wraps `inner`, keeping state in `path` (read if it exists).
    pub fn open(inner: ValidatorSigner, chain_id: u64, path: &Path) -> Result<Self, GuardError> {
        let last = match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| GuardError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LastSigned { round: -1, ..Default::default() },
            Err(source) => return Err(GuardError::Io { path: path.to_path_buf(), source }),
        };
        let guard = Guard { inner, chain_id, path: path.to_path_buf(), last: Mutex::new(last) };
        Ok(Self { guard: Arc::new(guard) })
    }

    /// The validator's address.
    pub fn address(&self) -> ValidatorAddress {
        self.guard.inner.address()
    }

    /// What was signed last.
    pub fn last_signed(&self) -> LastSigned {
        self.guard.last.lock().clone()
    }

    /// Signs `bytes` at (height, round, step) if that contradicts nothing
    /// signed before, recording it durably first.
    pub fn sign_step(&self, height: u64, round: i64, step: u8, bytes: &[u8]) -> Result<Signature, GuardError> {
        self.guard.sign_step(height, round, step, bytes)
    }

    /// [`Self::sign_step`] on tokio's blocking pool when there is a runtime
    /// (inline otherwise); the signature is returned only once its record
    /// is on disk either way.
    async fn sign_durably(&self, height: u64, round: i64, step: u8, bytes: Vec<u8>) -> Result<Signature, GuardError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.guard.sign_step(height, round, step, &bytes);
        }
        let guard = self.guard.clone();
        let path = guard.path.clone();
        tokio::task::spawn_blocking(move || guard.sign_step(height, round, step, &bytes))
            .await
            .map_err(|e| GuardError::Io { path, source: std::io::Error::other(e) })?
    }
}

impl Guard {
    fn sign_step(&self, height: u64, round: i64, step: u8, bytes: &[u8]) -> Result<Signature, GuardError> {
        let hash = keccak256(bytes);
        let mut last = self.last.lock();
        let requested = (height, round, step);
        let previous = (last.height, last.round, last.step);
        let conflict = |reason| GuardError::Conflict { height, round, step, reason, last: last.clone() };
        if requested < previous {
            return Err(conflict("an earlier step than one already signed"));
        }
        if requested == previous {
            if last.sign_bytes_hash != hash {
                return Err(conflict("a different message at a step already signed (double sign)"));
            }
            let raw = hex::decode(&last.signature).map_err(|_| conflict("stored signature is unreadable"))?;
            let raw: [u8; 64] = raw.try_into().map_err(|_| conflict("stored signature is unreadable"))?;
            return Ok(Signature(ed25519_dalek::Signature::from_bytes(&raw)));
        }
        let signature = self.inner.sign_bytes(bytes);
        let next =
            LastSigned { height, round, step, sign_bytes_hash: hash, signature: hex::encode(signature.0.to_bytes()) };
        self.persist(&next)?;
        *last = next;
        Ok(signature)
    }

    /// Writes the state to a temporary file, syncs it and renames it over the
    /// old one, so a crash leaves either the old or the new state.
    fn persist(&self, state: &LastSigned) -> Result<(), GuardError> {
        let io = |source| GuardError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(state).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(&text).and_then(|_| file.sync_all()).map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        #[cfg(test)]
        tests::PERSISTED_ON.with(|t| t.set(true));
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

fn refused(e: GuardError) -> Error {
    tracing::error!(error = %e, "signature refused by the double-sign guard");
    Error::from_source(e)
}

#[async_trait]
impl Signer<MetaContext> for GuardedSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<MetaContext, Vote>, Error> {
        let step = match vote.vote_type {
            VoteType::Prevote => STEP_PREVOTE,
            VoteType::Precommit => STEP_PRECOMMIT,
        };
        let bytes = vote.sign_bytes(self.guard.chain_id);
        let signature = self.sign_durably(vote.height.0, vote.round.as_i64(), step, bytes).await.map_err(refused)?;
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<MetaContext, Proposal>, Error> {
        let bytes = proposal.sign_bytes(self.guard.chain_id);
        let (height, round) = (proposal.height.0, proposal.round.as_i64());
        let signature = self.sign_durably(height, round, STEP_PROPOSE, bytes).await.map_err(refused)?;
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<MetaContext>,
        extension: (),
    ) -> Result<SignedMessage<MetaContext, ()>, Error> {
        self.guard.inner.sign_vote_extension(scope, extension).await
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<MetaContext>, Error> {
        self.guard.inner.sign_validator_proof(public_key, peer_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Height, ValidatorKey};
    use malachitebft_core_types::{NilOrVal, Round};

    fn vote(height: u64, round: u32, value: Option<u8>, signer: &GuardedSigner) -> Vote {
        Vote {
            height: Height(height),
            round: Round::new(round),
            value: value.map(|v| NilOrVal::Val(B256::repeat_byte(v))).unwrap_or(NilOrVal::Nil),
            vote_type: VoteType::Prevote,
            validator: signer.address(),
            extension: None,
        }
    }

    #[test]
    fn never_signs_two_different_votes_for_one_step_even_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_state.json");
        let key = ValidatorKey::generate();
        let open = || GuardedSigner::open(ValidatorSigner::new(key.signing_key.clone(), 1), 1, &path).unwrap();
        let guard = open();
        let first = futures::executor::block_on(guard.sign_vote(vote(5, 0, Some(1), &guard))).unwrap();
        // Same vote again: the same signature.
        let again = futures::executor::block_on(guard.sign_vote(vote(5, 0, Some(1), &guard))).unwrap();
        assert_eq!(first.signature, again.signature);
        drop(guard);

        // After a "crash": a different vote for the same step is refused,
        // and so is going back to an earlier height.
        let guard = open();
        assert_eq!(guard.last_signed().height, 5);
        assert!(futures::executor::block_on(guard.sign_vote(vote(5, 0, Some(2), &guard))).is_err());
        assert!(futures::executor::block_on(guard.sign_vote(vote(5, 0, None, &guard))).is_err());
        assert!(futures::executor::block_on(guard.sign_vote(vote(4, 3, Some(1), &guard))).is_err());
        // Later rounds and heights are fine.
        assert!(futures::executor::block_on(guard.sign_vote(vote(5, 1, None, &guard))).is_ok());
        assert!(futures::executor::block_on(guard.sign_vote(vote(6, 0, Some(3), &guard))).is_ok());
    }

    thread_local! {
        /// Whether this thread wrote the guard's state.
        pub(super) static PERSISTED_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_state_is_written_off_the_async_thread_before_the_vote_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("priv_validator_state.json");
        let key = ValidatorKey::generate();
        let guard = GuardedSigner::open(ValidatorSigner::new(key.signing_key.clone(), 1), 1, &path).unwrap();
        let signed = guard.sign_vote(vote(7, 2, Some(1), &guard)).await.unwrap();
        // The runtime's one thread never did the write; a blocking-pool thread did.
        assert!(!PERSISTED_ON.with(|t| t.get()), "the state file was written on the async thread");
        // And it was durable when the signature came back.
        let on_disk: LastSigned = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((on_disk.height, on_disk.round, on_disk.step), (7, 2, STEP_PREVOTE));
        assert_eq!(on_disk.signature, hex::encode(signed.signature.0.to_bytes()));
    }

    #[test]
    fn a_corrupt_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{not json").unwrap();
        let key = ValidatorKey::generate();
        let err = GuardedSigner::open(ValidatorSigner::new(key.signing_key, 1), 1, &path).err().unwrap();
        assert!(matches!(err, GuardError::Corrupt { .. }), "{err}");
    }
}

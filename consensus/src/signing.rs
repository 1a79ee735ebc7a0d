//! ed25519 signing of votes, proposals and validator proofs.
//!
//! Every signed message starts with a domain tag and the chain id, so a
//! signature made for one kind of message or one chain verifies for no other.

use crate::{Height, MetaContext, Proposal, ValidatorAddress, Vote};
use async_trait::async_trait;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use malachitebft_core_types::{Round, SignedMessage, SigningScheme, ValidatorProof, VoteExtensionScope};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};
use std::cmp::Ordering;

/// Malachite's signing scheme for our context: ed25519 via `ed25519-dalek`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

/// An ed25519 signature, ordered by its bytes (Malachite keeps signatures in
/// ordered collections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(pub ed25519_dalek::Signature);

impl Ord for Signature {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.to_bytes().cmp(&other.0.to_bytes())
    }
}

impl PartialOrd for Signature {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A key or signature could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// Wrong length or not a valid curve point.
    #[error("invalid ed25519 {what}: {reason}")]
    Invalid {
        /// "signature" or "public key".
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
}

impl SigningScheme for Ed25519 {
    type DecodingError = SigningError;
    type Signature = Signature;
    type PublicKey = VerifyingKey;
    type PrivateKey = SigningKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, SigningError> {
        ed25519_dalek::Signature::from_slice(bytes)
            .map(Signature)
            .map_err(|e| SigningError::Invalid { what: "signature", reason: e.to_string() })
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_bytes().to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey, SigningError> {
        VerifyingKey::try_from(bytes).map_err(|e| SigningError::Invalid { what: "public key", reason: e.to_string() })
    }

    fn encode_public_key(public_key: &VerifyingKey) -> Vec<u8> {
        public_key.to_bytes().to_vec()
    }
}

/// The start of every signed message: a domain tag naming the kind of
/// message, the chain id, and the height and round it belongs to.
pub(crate) fn sign_bytes_prefix(domain: &[u8], chain_id: u64, height: Height, round: Round) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(domain);
    out.extend_from_slice(&chain_id.to_be_bytes());
    out.extend_from_slice(&height.0.to_be_bytes());
    out.extend_from_slice(&round.as_i64().to_be_bytes());
    out
}

fn extension_sign_bytes(chain_id: u64, scope: &VoteExtensionScope<MetaContext>) -> Vec<u8> {
    let mut out = sign_bytes_prefix(b"metanode/vote-extension/v1", chain_id, scope.height, scope.round);
    out.extend_from_slice(scope.value_id.as_slice());
    out.extend_from_slice(scope.validator_address.0.as_slice());
    out
}

/// Signs for one validator on one chain.
pub struct ValidatorSigner {
    key: SigningKey,
    chain_id: u64,
}

impl ValidatorSigner {
    /// A signer with `key` for the chain `chain_id`.
    pub fn new(key: SigningKey, chain_id: u64) -> Self {
        Self { key, chain_id }
    }

    /// The validator's address.
    pub fn address(&self) -> ValidatorAddress {
        ValidatorAddress::from_public_key(&self.key.verifying_key())
    }

    /// Signs raw bytes that already carry a domain tag and the chain id
    /// (the proposal stream's fin part).
    pub fn sign_bytes(&self, bytes: &[u8]) -> Signature {
        Signature(self.key.sign(bytes))
    }
}

#[async_trait]
impl Signer<MetaContext> for ValidatorSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<MetaContext, Vote>, Error> {
        let signature = self.sign_bytes(&vote.sign_bytes(self.chain_id));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<MetaContext, Proposal>, Error> {
        let signature = self.sign_bytes(&proposal.sign_bytes(self.chain_id));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<MetaContext>,
        extension: (),
    ) -> Result<SignedMessage<MetaContext, ()>, Error> {
        let signature = self.sign_bytes(&extension_sign_bytes(self.chain_id, &scope));
        Ok(SignedMessage::new(extension, signature))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<MetaContext>, Error> {
        let signature = self.sign_bytes(&ValidatorProof::<MetaContext>::signing_bytes(&public_key, &peer_id));
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// Checks signatures made on one chain.
#[derive(Clone, Copy, Debug)]
pub struct SignatureVerifier {
    chain_id: u64,
}

impl SignatureVerifier {
    /// A verifier for the chain `chain_id`.
    pub fn new(chain_id: u64) -> Self {
        Self { chain_id }
    }

    /// Whether `signature` is `key`'s strict ed25519 signature of `bytes`.
    pub fn verify_bytes(bytes: &[u8], signature: &Signature, key: &VerifyingKey) -> bool {
        key.verify_strict(bytes, &signature.0).is_ok()
    }
}

#[async_trait]
impl Verifier<MetaContext> for SignatureVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, Error> {
        Ok(VerificationResult::from_bool(Self::verify_bytes(&vote.sign_bytes(self.chain_id), signature, public_key)))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, Error> {
        let bytes = proposal.sign_bytes(self.chain_id);
        Ok(VerificationResult::from_bool(Self::verify_bytes(&bytes, signature, public_key)))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<MetaContext>,
        _extension: &(),
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, Error> {
        let bytes = extension_sign_bytes(self.chain_id, scope);
        Ok(VerificationResult::from_bool(Self::verify_bytes(&bytes, signature, public_key)))
    }

    async fn verify_validator_proof(&self, proof: &ValidatorProof<MetaContext>) -> Result<VerificationResult, Error> {
        let Ok(key) = Ed25519::decode_public_key(&proof.public_key) else {
            return Ok(VerificationResult::Invalid);
        };
        Ok(VerificationResult::from_bool(Self::verify_bytes(&proof.preimage(), &proof.signature, &key)))
    }
}

//! Converting Malachite's commit certificates to the chain's own
//! [`CommitCertificate`] (stored with each block, served over RPC) and back,
//! and checking one against a validator set.

use crate::{Height, MetaContext, Signature, SignatureVerifier, ValidatorAddress, ValidatorSet};
use alloy_primitives::Bytes;
use malachitebft_core_types::{
    CommitCertificate as MalCommit, CommitSignature as MalSignature, ExtendedCommitCertificate,
    ExtendedCommitSignature, Round, ThresholdParams,
};
use malachitebft_signing::VerifierExt;
use metanode_primitives::{CommitCertificate, CommitSignature};

/// Why a stored or received certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A signature that is not 64 bytes.
    #[error("signature of {0} is not 64 bytes")]
    BadSignature(alloy_primitives::Address),
    /// Not signed by more than 2/3 of the voting power, or a bad signature.
    #[error("certificate does not verify: {0}")]
    Invalid(String),
}

/// The chain's form of a Malachite certificate.
pub fn to_chain(cert: &MalCommit<MetaContext>) -> CommitCertificate {
    CommitCertificate {
        height: cert.height.0,
        round: cert.round.as_u32().unwrap_or_default(),
        block_hash: cert.value_id,
        signatures: cert
            .commit_signatures
            .iter()
            .map(|s| CommitSignature { validator: s.address.0, signature: Bytes::from(s.signature.0.to_bytes()) })
            .collect(),
    }
}

/// Malachite's form of a stored certificate.
pub fn from_chain(cert: &CommitCertificate) -> Result<MalCommit<MetaContext>, CertificateError> {
    let commit_signatures = cert
        .signatures
        .iter()
        .map(|s| {
            let bytes: [u8; 64] =
                s.signature.as_ref().try_into().map_err(|_| CertificateError::BadSignature(s.validator))?;
            Ok(MalSignature {
                address: ValidatorAddress(s.validator),
                signature: Signature(ed25519_dalek::Signature::from_bytes(&bytes)),
            })
        })
        .collect::<Result<Vec<_>, CertificateError>>()?;
    Ok(MalCommit {
        height: Height(cert.height),
        round: Round::new(cert.round),
        value_id: cert.block_hash,
        commit_signatures,
    })
}

/// The certificate value sync carries (vote extensions are disabled, so none).
pub fn to_extended(cert: MalCommit<MetaContext>) -> ExtendedCommitCertificate<MetaContext> {
    ExtendedCommitCertificate {
        height: cert.height,
        round: cert.round,
        value_id: cert.value_id,
        commit_signatures: cert
            .commit_signatures
            .into_iter()
            .map(|s| ExtendedCommitSignature { address: s.address, signature: s.signature, extension: None })
            .collect(),
    }
}

/// Checks that more than 2/3 of `validators`' power signed `cert` on chain `chain_id`.
pub async fn verify(
    cert: &CommitCertificate,
    validators: &ValidatorSet,
    chain_id: u64,
) -> Result<(), CertificateError> {
    let mal = from_chain(cert)?;
    SignatureVerifier::new(chain_id)
        .verify_commit_certificate(&MetaContext, &mal, validators, ThresholdParams::default())
        .await
        .map_err(|e| CertificateError::Invalid(format!("{e:?}")))
}

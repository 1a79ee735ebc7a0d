//! Commit certificates made with our signer verify with Malachite's own
//! certificate check only with 2f+1 of the power, on the right chain, for
//! the value actually signed.

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use futures::executor::block_on;
use metanode_consensus::core::{CommitCertificate, Context, NilOrVal, Round, SignedVote, ThresholdParams};
use metanode_consensus::signing_traits::{Signer, Verifier, VerifierExt};
use metanode_consensus::{Height, MetaContext, SignatureVerifier, Validator, ValidatorSet, ValidatorSigner};

const CHAIN: u64 = 9928;

fn keys() -> Vec<SigningKey> {
    (1..=4u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
}

fn set(keys: &[SigningKey]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|k| Validator::new(k.verifying_key(), 10))).unwrap()
}

fn precommits(keys: &[SigningKey], chain: u64, height: u64, value: B256) -> Vec<SignedVote<MetaContext>> {
    keys.iter()
        .map(|k| {
            let signer = ValidatorSigner::new(k.clone(), chain);
            let vote = MetaContext.new_precommit(Height(height), Round::new(0), NilOrVal::Val(value), signer.address());
            block_on(signer.sign_vote(vote)).unwrap()
        })
        .collect()
}

fn verify(cert: &CommitCertificate<MetaContext>, set: &ValidatorSet) -> bool {
    let verifier = SignatureVerifier::new(CHAIN);
    block_on(verifier.verify_commit_certificate(&MetaContext, cert, set, ThresholdParams::default())).is_ok()
}

#[test]
fn three_of_four_precommits_make_a_valid_certificate() {
    let keys = keys();
    let set = set(&keys);
    let value = B256::repeat_byte(7);
    let cert = CommitCertificate::new(Height(5), Round::new(0), value, precommits(&keys[..3], CHAIN, 5, value));
    assert_eq!(cert.commit_signatures.len(), 3);
    assert!(verify(&cert, &set));
}

#[test]
fn two_of_four_precommits_are_not_enough() {
    let keys = keys();
    let value = B256::repeat_byte(7);
    let cert = CommitCertificate::new(Height(5), Round::new(0), value, precommits(&keys[..2], CHAIN, 5, value));
    assert!(!verify(&cert, &set(&keys)));
}

#[test]
fn signatures_from_another_chain_or_for_another_value_do_not_count() {
    let keys = keys();
    let set = set(&keys);
    let value = B256::repeat_byte(7);
    let other_chain = CommitCertificate::new(Height(5), Round::new(0), value, precommits(&keys, CHAIN + 1, 5, value));
    assert!(!verify(&other_chain, &set));
    let mut relabelled = CommitCertificate::new(Height(5), Round::new(0), value, precommits(&keys, CHAIN, 5, value));
    relabelled.value_id = B256::repeat_byte(8);
    assert!(!verify(&relabelled, &set));
    let mut moved = CommitCertificate::new(Height(5), Round::new(0), value, precommits(&keys, CHAIN, 5, value));
    moved.height = Height(6);
    assert!(!verify(&moved, &set));
}

#[test]
fn votes_and_proposals_verify_only_unchanged() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let signer = ValidatorSigner::new(key.clone(), CHAIN);
    let verifier = SignatureVerifier::new(CHAIN);
    let pk = key.verifying_key();
    let vote = MetaContext.new_prevote(Height(3), Round::new(1), NilOrVal::Nil, signer.address());
    let signed = block_on(signer.sign_vote(vote.clone())).unwrap();
    assert!(block_on(verifier.verify_signed_vote(&vote, &signed.signature, &pk)).unwrap().is_valid());
    let mut changed = vote.clone();
    changed.value = NilOrVal::Val(B256::ZERO);
    assert!(block_on(verifier.verify_signed_vote(&changed, &signed.signature, &pk)).unwrap().is_invalid());

    let proposal = MetaContext.new_proposal(
        Height(3),
        Round::new(1),
        metanode_consensus::BlockValue(B256::repeat_byte(1)),
        Round::Nil,
        signer.address(),
    );
    let signed = block_on(signer.sign_proposal(proposal.clone())).unwrap();
    assert!(block_on(verifier.verify_signed_proposal(&proposal, &signed.signature, &pk)).unwrap().is_valid());
    // A vote signature is no proposal signature (domain separation).
    let vote_sig = block_on(signer.sign_vote(vote)).unwrap().signature;
    assert!(block_on(verifier.verify_signed_proposal(&proposal, &vote_sig, &pk)).unwrap().is_invalid());
}

//! Sender recovery with libsecp256k1 (the `secp256k1` crate), which is several
//! times faster than pure-Rust recovery and dominates block import cost.

use alloy_consensus::TxEnvelope;
use alloy_primitives::{keccak256, Address, B256, U256};
use rayon::prelude::*;
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message, SECP256K1,
};

/// Half the secp256k1 group order: signatures with a larger `s` are malleable
/// and rejected since Homestead (EIP-2).
const SECP256K1N_HALF: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// Why a signature does not yield a sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `s` is above n/2 (EIP-2) or `r`/`s` is zero or out of range.
    #[error("invalid transaction signature: s value out of range")]
    MalleableS,
    /// The curve arithmetic found no public key.
    #[error("invalid transaction signature: public key recovery failed")]
    Unrecoverable,
}

/// A transaction whose signer has been recovered once and is carried along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredTx {
    /// The signed transaction.
    pub tx: TxEnvelope,
    /// Who signed it.
    pub sender: Address,
}

impl RecoveredTx {
    /// The transaction hash.
    pub fn hash(&self) -> B256 {
        *self.tx.tx_hash()
    }
}

/// Recovers the signer of one transaction.
pub fn recover_sender(tx: &TxEnvelope) -> Result<Address, SignatureError> {
    let sig = tx.signature();
    let (r, s) = (sig.r(), sig.s());
    if r.is_zero() || s.is_zero() || s > SECP256K1N_HALF {
        return Err(SignatureError::MalleableS);
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&r.to_be_bytes::<32>());
    compact[32..].copy_from_slice(&s.to_be_bytes::<32>());
    let recid = RecoveryId::try_from(sig.v() as i32).map_err(|_| SignatureError::Unrecoverable)?;
    let rsig = RecoverableSignature::from_compact(&compact, recid).map_err(|_| SignatureError::Unrecoverable)?;
    let msg = Message::from_digest(tx.signature_hash().0);
    let pubkey = SECP256K1.recover_ecdsa(msg, &rsig).map_err(|_| SignatureError::Unrecoverable)?;
    let uncompressed = pubkey.serialize_uncompressed();
    Ok(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}

/// Recovers the signers of many transactions on all cores, keeping order.
pub fn recover_senders(txs: &[TxEnvelope]) -> Result<Vec<Address>, (usize, SignatureError)> {
    txs.par_iter().enumerate().map(|(i, tx)| recover_sender(tx).map_err(|e| (i, e))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
    use alloy_primitives::{Signature, TxKind};

    fn signed_legacy(sig: Signature) -> TxEnvelope {
        let tx = TxLegacy {
            chain_id: Some(1),
            nonce: 0,
            gas_price: 1,
            gas_limit: 21000,
            to: TxKind::Call(Address::ZERO),
            value: U256::ZERO,
            input: Default::default(),
        };
        TxEnvelope::Legacy(tx.into_signed(sig))
    }

    #[test]
    fn matches_reference_recovery() {
        use alloy_consensus::transaction::SignerRecoverable;
        // A signature taken from a real mainnet-style signing of the tx above is not
        // needed: any valid low-s (r, s) yields some key, and both libraries must agree.
        let tx = TxEip1559 { chain_id: 9928, gas_limit: 21000, ..Default::default() };
        for i in 1u64..20 {
            let sig = Signature::new(U256::from(i * 7919), U256::from(i * 104729), i % 2 == 0);
            let env = TxEnvelope::Eip1559(tx.clone().into_signed(sig));
            let ours = recover_sender(&env).ok();
            assert_eq!(ours, env.recover_signer().ok(), "sig {i}");
        }
    }

    #[test]
    fn recovers_a_real_signer() {
        use alloy_network::TxSignerSync;
        let signer = alloy_signer_local::PrivateKeySigner::random();
        let mut tx = TxEip1559 { chain_id: 9928, gas_limit: 21000, ..Default::default() };
        let sig = signer.sign_transaction_sync(&mut tx).unwrap();
        let env = TxEnvelope::Eip1559(tx.into_signed(sig));
        assert_eq!(recover_sender(&env), Ok(signer.address()));
        let many = vec![env.clone(); 64];
        assert_eq!(recover_senders(&many).unwrap(), vec![signer.address(); 64]);
    }

    #[test]
    fn rejects_high_s_and_zero() {
        let high = Signature::new(U256::from(5), SECP256K1N_HALF + U256::from(1), false);
        assert_eq!(recover_sender(&signed_legacy(high)), Err(SignatureError::MalleableS));
        let zero = Signature::new(U256::ZERO, U256::from(1), false);
        assert_eq!(recover_sender(&signed_legacy(zero)), Err(SignatureError::MalleableS));
    }
}

//! Blocks as Ethereum encodes them, plus the hash and senders we keep beside them.

use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip4895::Withdrawals;
use alloy_primitives::{Address, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// The body of a block in Ethereum's post-Shanghai wire form: transactions,
/// an (always empty) ommer list and an (always empty) withdrawal list.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable, RlpDecodable)]
pub struct BlockBody {
    /// Transactions in execution order.
    pub transactions: Vec<TxEnvelope>,
    /// Ommers never exist under BFT finality; kept so the RLP matches Ethereum's.
    pub ommers: Vec<Header>,
    /// Withdrawals never exist here either; kept for the same reason.
    pub withdrawals: Withdrawals,
}

/// A full block: `rlp([header, transactions, ommers, withdrawals])`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Block {
    /// The header, whose keccak is the block hash.
    pub header: Header,
    /// Transactions in execution order.
    pub transactions: Vec<TxEnvelope>,
    /// Always empty (see [`BlockBody`]).
    pub ommers: Vec<Header>,
    /// Always empty (see [`BlockBody`]).
    pub withdrawals: Withdrawals,
}

impl Block {
    /// A block with no ommers and no withdrawals.
    pub fn new(header: Header, transactions: Vec<TxEnvelope>) -> Self {
        Self { header, transactions, ommers: Vec::new(), withdrawals: Withdrawals::default() }
    }
}

/// A block whose hash has been computed and whose transaction senders are known,
/// so neither is recomputed by every reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// keccak256 of the RLP header.
    pub hash: B256,
    /// The header.
    pub header: Header,
    /// Transactions in execution order.
    pub transactions: Vec<TxEnvelope>,
    /// `senders[i]` signed `transactions[i]`.
    pub senders: Vec<Address>,
}

impl SealedBlock {
    /// Seals a header and body by hashing the header.
    pub fn new(header: Header, transactions: Vec<TxEnvelope>, senders: Vec<Address>) -> Self {
        let hash = header.hash_slow();
        Self { hash, header, transactions, senders }
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// The Ethereum wire form of this block.
    pub fn to_block(&self) -> Block {
        Block::new(self.header.clone(), self.transactions.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Signed, TxLegacy};
    use alloy_primitives::{Signature, TxKind, U256};
    use alloy_rlp::{Decodable, Encodable};

    #[test]
    fn block_rlp_round_trip() {
        let tx = TxLegacy {
            chain_id: Some(9928),
            nonce: 7,
            gas_price: 1_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(Address::repeat_byte(0x11)),
            value: U256::from(5),
            input: Default::default(),
        };
        let sig = Signature::new(U256::from(1), U256::from(2), false);
        let env = TxEnvelope::Legacy(Signed::new_unhashed(tx, sig));
        let header = Header { number: 3, gas_limit: 30_000_000, ..Default::default() };
        let block = Block::new(header, vec![env]);
        let mut buf = Vec::new();
        block.encode(&mut buf);
        let decoded = Block::decode(&mut buf.as_slice()).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.header.hash_slow(), block.header.hash_slow());
    }

    #[test]
    fn truncated_block_rlp_is_an_error() {
        let block = Block::new(Header::default(), vec![]);
        let mut buf = Vec::new();
        block.encode(&mut buf);
        buf.truncate(buf.len() - 3);
        assert!(Block::decode(&mut buf.as_slice()).is_err());
    }
}

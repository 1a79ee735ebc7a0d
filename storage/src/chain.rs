//! Reading blocks, receipts and the transaction index.

use crate::{
    db::ChainDb,
    error::StorageError,
    keys::{
        decode_u64, num_key, CF_BODIES, CF_CANONICAL, CF_COMMITS, CF_HASH_TO_NUMBER, CF_HEADERS, CF_RECEIPTS,
        CF_SENDERS, CF_TX_INDEX,
    },
};
use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Address, B256};
use alloy_rlp::Decodable;
use metanode_primitives::{CommitCertificate, SealedBlock};

impl ChainDb {
    /// The commit certificate of block `number`, if it was finalized by consensus.
    pub fn commit_certificate(&self, number: u64) -> Result<Option<CommitCertificate>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_COMMITS), num_key(number))? {
            Some(raw) => Ok(Some(
                CommitCertificate::decode(&mut &raw[..]).map_err(|e| StorageError::corrupt("commit certificate", e))?,
            )),
            None => Ok(None),
        }
    }

    /// The header of canonical block `number`.
    pub fn header(&self, number: u64) -> Result<Option<Header>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_HEADERS), num_key(number))? {
            Some(raw) => Ok(Some(Header::decode(&mut &raw[..]).map_err(|e| StorageError::corrupt("header", e))?)),
            None => Ok(None),
        }
    }

    /// The hash of canonical block `number`.
    pub fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        Ok(self.db.get_pinned_cf(self.cf(CF_CANONICAL), num_key(number))?.map(|v| B256::from_slice(&v)))
    }

    /// The number of the block with `hash`.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_HASH_TO_NUMBER), hash)? {
            Some(v) => Ok(Some(decode_u64(&v).ok_or_else(|| StorageError::corrupt("hash index", "not 8 bytes"))?)),
            None => Ok(None),
        }
    }

    /// The transactions of block `number`.
    pub fn transactions(&self, number: u64) -> Result<Option<Vec<TxEnvelope>>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_BODIES), num_key(number))? {
            Some(raw) => {
                Ok(Some(Vec::<TxEnvelope>::decode(&mut &raw[..]).map_err(|e| StorageError::corrupt("body", e))?))
            }
            None => Ok(None),
        }
    }

    /// The recovered senders of block `number`, in transaction order.
    pub fn senders(&self, number: u64) -> Result<Option<Vec<Address>>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_SENDERS), num_key(number))? {
            Some(raw) if raw.len() % 20 == 0 => Ok(Some(raw.chunks(20).map(Address::from_slice).collect())),
            Some(_) => Err(StorageError::corrupt("senders", "length not a multiple of 20")),
            None => Ok(None),
        }
    }

    /// A whole block with its hash and senders.
    pub fn sealed_block(&self, number: u64) -> Result<Option<SealedBlock>, StorageError> {
        let (Some(header), Some(hash)) = (self.header(number)?, self.block_hash(number)?) else {
            return Ok(None);
        };
        let txs = self.transactions(number)?.ok_or_else(|| StorageError::corrupt("body", "missing"))?;
        let senders = self.senders(number)?.ok_or_else(|| StorageError::corrupt("senders", "missing"))?;
        Ok(Some(SealedBlock { hash, header, transactions: txs, senders }))
    }

    /// The receipts of block `number`, in transaction order.
    pub fn receipts(&self, number: u64) -> Result<Option<Vec<ReceiptEnvelope>>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_RECEIPTS), num_key(number))? {
            Some(raw) => Ok(Some(
                Vec::<ReceiptEnvelope>::decode(&mut &raw[..]).map_err(|e| StorageError::corrupt("receipts", e))?,
            )),
            None => Ok(None),
        }
    }

    /// Where a transaction was included: (block number, index in block).
    pub fn transaction_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_TX_INDEX), hash)? {
            Some(v) if v.len() == 12 => {
                let n = decode_u64(&v[..8]).unwrap_or_default();
                let i = u32::from_be_bytes([v[8], v[9], v[10], v[11]]);
                Ok(Some((n, i)))
            }
            Some(_) => Err(StorageError::corrupt("tx index", "not 12 bytes")),
            None => Ok(None),
        }
    }
}

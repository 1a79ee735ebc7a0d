//! Reading blocks, receipts and the transaction index.

use crate::{
    db::ChainDb,
    error::StorageError,
    keys::{
        decode_hash, decode_u64, num_key, CF_BODIES, CF_CANONICAL, CF_COMMITS, CF_HASH_TO_NUMBER, CF_HEADERS,
        CF_RECEIPTS, CF_SENDERS, CF_TX_INDEX,
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
        self.db
            .get_pinned_cf(self.cf(CF_CANONICAL), num_key(number))?
            .map(|v| decode_hash("block hash", &v))
            .transpose()
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
            Some(v) => {
                decode_tx_location(&v).map(Some).ok_or_else(|| StorageError::corrupt("tx index", "not 12 bytes"))
            }
            None => Ok(None),
        }
    }
}

/// A transaction index entry: block number (8 bytes) then index in the block
/// (4 bytes), both big-endian; `None` when the entry is not 12 bytes.
fn decode_tx_location(v: &[u8]) -> Option<(u64, u32)> {
    let (number, index) = v.split_first_chunk::<8>()?;
    let index: [u8; 4] = index.try_into().ok()?;
    Some((u64::from_be_bytes(*number), u32::from_be_bytes(index)))
}

#[cfg(test)]
mod tests {
    use crate::{
        keys::{num_key, CF_CANONICAL},
        test_util::{open, put_raw},
        HistoryMode, StorageError,
    };

    #[test]
    fn a_block_hash_of_the_wrong_length_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), HistoryMode::Archive);
        put_raw(&db, CF_CANONICAL, &num_key(1), b"short");
        put_raw(&db, CF_CANONICAL, &num_key(2), &[7u8; 33]);
        for n in [1, 2] {
            let err = db.block_hash(n).unwrap_err();
            assert!(matches!(err, StorageError::Corrupt { what: "block hash", .. }), "block {n}: {err}");
            // The whole-block read goes through the same decoder.
            assert!(matches!(db.sealed_block(n), Err(StorageError::Corrupt { .. })), "block {n}");
        }
    }
}

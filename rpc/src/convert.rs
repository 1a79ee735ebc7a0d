//! Turning stored blocks, transactions and receipts into their JSON-RPC forms.

use alloy_consensus::{
    transaction::{Recovered, TransactionInfo, TransactionMeta},
    Eip658Value, Header, Receipt, ReceiptEnvelope, Sealed, Transaction as _, TxEnvelope,
};
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt};
use metanode_primitives::SealedBlock;

/// The RPC header of a sealed block.
pub fn rpc_header(header: &Header, hash: B256, size: Option<u64>) -> RpcHeader {
    RpcHeader::from_consensus(Sealed::new_unchecked(header.clone(), hash), None, size.map(U256::from))
}

/// The RPC form of a transaction included at `index` of `block`.
pub fn rpc_tx(block: &SealedBlock, index: usize) -> Option<Transaction> {
    let tx = block.transactions.get(index)?;
    let sender = *block.senders.get(index)?;
    let info = TransactionInfo {
        hash: Some(*tx.tx_hash()),
        index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        base_fee: block.header.base_fee_per_gas,
        block_timestamp: Some(block.header.timestamp),
    };
    Some(Transaction::from_transaction(Recovered::new_unchecked(tx.clone(), sender), info))
}

/// The RPC form of a pooled (not yet included) transaction.
pub fn rpc_pending_tx(tx: &TxEnvelope, sender: Address) -> Transaction {
    let info = TransactionInfo { hash: Some(*tx.tx_hash()), ..Default::default() };
    Transaction::from_transaction(Recovered::new_unchecked(tx.clone(), sender), info)
}

/// The RPC block, with full transactions or only their hashes.
pub fn rpc_block(block: &SealedBlock, full: bool) -> Block {
    let size = alloy_rlp::Encodable::length(&block.to_block()) as u64;
    let header = rpc_header(&block.header, block.hash, Some(size));
    let transactions = if full {
        BlockTransactions::Full((0..block.transactions.len()).filter_map(|i| rpc_tx(block, i)).collect())
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|t| *t.tx_hash()).collect())
    };
    Block::new(header, transactions).with_withdrawals(Some(Default::default()))
}

/// Logs of a block's receipts with their positions filled in.
pub fn block_logs(block: &SealedBlock, receipts: &[ReceiptEnvelope]) -> Vec<Vec<Log>> {
    let mut prior = 0usize;
    block
        .transactions
        .iter()
        .zip(receipts)
        .enumerate()
        .map(|(i, (tx, r))| {
            let logs = Log::collect_for_receipt(prior, meta(block, i, tx), r.logs().iter().cloned());
            prior += logs.len();
            logs
        })
        .collect()
}

fn meta(block: &SealedBlock, index: usize, tx: &TxEnvelope) -> TransactionMeta {
    TransactionMeta {
        tx_hash: *tx.tx_hash(),
        index: index as u64,
        block_hash: block.hash,
        block_number: block.header.number,
        base_fee: block.header.base_fee_per_gas,
        excess_blob_gas: None,
        timestamp: block.header.timestamp,
    }
}

/// All receipts of a block in RPC form.
pub fn rpc_receipts(block: &SealedBlock, receipts: &[ReceiptEnvelope]) -> Vec<TransactionReceipt> {
    let mut prior_logs = 0usize;
    let mut prev_cumulative = 0u64;
    (0..block.transactions.len().min(receipts.len()))
        .filter_map(|i| {
            let r = receipt_at(block, receipts, i, prior_logs, prev_cumulative);
            prior_logs += receipts[i].logs().len();
            prev_cumulative = receipts[i].cumulative_gas_used();
            r
        })
        .collect()
}

/// The receipt of the transaction at `index` alone: `eth_getTransactionReceipt`
/// need not build every receipt of the block to return one.
pub fn rpc_receipt(block: &SealedBlock, receipts: &[ReceiptEnvelope], index: usize) -> Option<TransactionReceipt> {
    let earlier = receipts.get(..index)?;
    let prior_logs = earlier.iter().map(|r| r.logs().len()).sum();
    let prev_cumulative = earlier.last().map_or(0, |r| r.cumulative_gas_used());
    receipt_at(block, receipts, index, prior_logs, prev_cumulative)
}

/// One receipt, given the logs and gas of the transactions before it.
fn receipt_at(
    block: &SealedBlock,
    receipts: &[ReceiptEnvelope],
    i: usize,
    prior_logs: usize,
    prev_cumulative: u64,
) -> Option<TransactionReceipt> {
    let tx = block.transactions.get(i)?;
    let r = receipts.get(i)?;
    let from = *block.senders.get(i)?;
    let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
    let logs = Log::collect_for_receipt(prior_logs, meta(block, i, tx), r.logs().iter().cloned());
    let cumulative = r.cumulative_gas_used();
    let receipt = Receipt { status: Eip658Value::Eip658(r.status()), cumulative_gas_used: cumulative, logs };
    let inner = ReceiptEnvelope::from_typed(r.tx_type(), receipt.with_bloom());
    Some(TransactionReceipt {
        inner,
        transaction_hash: *tx.tx_hash(),
        transaction_index: Some(i as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        gas_used: cumulative.saturating_sub(prev_cumulative),
        effective_gas_price: tx.effective_gas_price(Some(base_fee)),
        blob_gas_used: None,
        blob_gas_price: None,
        from,
        to: tx.to(),
        contract_address: tx.kind().is_create().then(|| from.create(tx.nonce())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Signed, TxLegacy};
    use alloy_primitives::{Log as PrimLog, Signature, TxKind};

    fn block_of_three() -> (SealedBlock, Vec<ReceiptEnvelope>) {
        let mut txs = Vec::new();
        let mut receipts = Vec::new();
        let mut cumulative = 0;
        for nonce in 0..3u64 {
            let tx = TxLegacy { nonce, gas_limit: 50_000, to: TxKind::Call(Address::ZERO), ..Default::default() };
            let hash = B256::with_last_byte(nonce as u8 + 1);
            txs.push(TxEnvelope::Legacy(Signed::new_unchecked(tx, Signature::test_signature(), hash)));
            cumulative += 21_000 + nonce * 1000;
            let logs = (0..=nonce).map(|_| PrimLog::empty()).collect();
            let receipt = Receipt { status: Eip658Value::Eip658(true), cumulative_gas_used: cumulative, logs };
            receipts.push(ReceiptEnvelope::Legacy(receipt.with_bloom()));
        }
        let senders = vec![Address::with_last_byte(9); 3];
        (SealedBlock::new(Header::default(), txs, senders), receipts)
    }

    #[test]
    fn one_receipt_equals_that_receipt_of_the_whole_block() {
        let (block, receipts) = block_of_three();
        let all = rpc_receipts(&block, &receipts);
        assert_eq!(all.len(), 3);
        for (i, expected) in all.iter().enumerate() {
            assert_eq!(rpc_receipt(&block, &receipts, i).as_ref(), Some(expected), "receipt {i}");
        }
        assert_eq!(all[2].gas_used, 23_000);
        assert_eq!(all[2].inner.logs()[0].log_index, Some(3), "log index counts earlier receipts' logs");
        assert!(rpc_receipt(&block, &receipts, 3).is_none());
    }
}

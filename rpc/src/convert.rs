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
    let logs = block_logs(block, receipts);
    let mut prev_cumulative = 0u64;
    let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
    block
        .transactions
        .iter()
        .zip(receipts)
        .zip(logs)
        .enumerate()
        .map(|(i, ((tx, r), logs))| {
            let from = block.senders[i];
            let cumulative = r.cumulative_gas_used();
            let gas_used = cumulative - prev_cumulative;
            prev_cumulative = cumulative;
            let receipt = Receipt { status: Eip658Value::Eip658(r.status()), cumulative_gas_used: cumulative, logs };
            let inner = ReceiptEnvelope::from_typed(r.tx_type(), receipt.with_bloom());
            TransactionReceipt {
                inner,
                transaction_hash: *tx.tx_hash(),
                transaction_index: Some(i as u64),
                block_hash: Some(block.hash),
                block_number: Some(block.header.number),
                gas_used,
                effective_gas_price: tx.effective_gas_price(Some(base_fee)),
                blob_gas_used: None,
                blob_gas_price: None,
                from,
                to: tx.to(),
                contract_address: tx.kind().is_create().then(|| from.create(tx.nonce())),
            }
        })
        .collect()
}

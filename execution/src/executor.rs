//! Building, re-executing and committing blocks. Dev mode and (later) BFT
//! consensus both go through these three steps: a proposer `build`s, every
//! validator `execute`s the proposal to check it, and the decided block is
//! `commit`ted.

use crate::{env::evm_env, error::ExecError, root::state_root, state::BlockState};
use alloy_consensus::{
    proofs::{calculate_receipt_root, calculate_transaction_root},
    transaction::Recovered,
    Eip658Value, Header, Receipt, ReceiptEnvelope, Transaction, TxEnvelope,
};
use alloy_eips::Typed2718;
use alloy_evm::{EthEvmFactory, Evm, EvmFactory};
use alloy_primitives::{keccak256, Address, Bloom, Bytes};
use metanode_primitives::{ChainSpec, CommitCertificate, RecoveredTx, SealedBlock};
use metanode_storage::{BlockWrite, ChainDb, StateDiff, TrieWrites};
use revm::context::result::{EVMError, ExecutionResult};
use std::sync::Arc;

/// What a proposer chooses for a new block beyond what the parent dictates.
#[derive(Debug, Clone)]
pub struct BlockAttributes {
    /// Seconds since the epoch; never below the parent's.
    pub timestamp: u64,
    /// Receives priority fees.
    pub beneficiary: Address,
    /// Free-form header bytes (at most 32).
    pub extra_data: Bytes,
}

/// A source of transactions for a block being built, best first.
pub trait TransactionSource {
    /// The next transaction to try.
    fn next_tx(&mut self) -> Option<RecoveredTx>;
    /// The last transaction of `sender` could not be included: skip the rest
    /// of that sender's transactions in this block.
    fn skip_sender(&mut self, sender: Address);
}

/// A source that yields at most `limit` transactions that end up in the
/// block (skipped ones do not count): keeps blocks small enough for every
/// validator to re-execute within the propose timeout.
pub struct AtMost<S> {
    inner: S,
    left: usize,
}

impl<S: TransactionSource> AtMost<S> {
    /// At most `limit` included transactions from `inner`.
    pub fn new(inner: S, limit: usize) -> Self {
        Self { inner, left: limit }
    }
}

impl<S: TransactionSource> TransactionSource for AtMost<S> {
    fn next_tx(&mut self) -> Option<RecoveredTx> {
        self.left = self.left.checked_sub(1)?;
        self.inner.next_tx()
    }

    fn skip_sender(&mut self, sender: Address) {
        self.left += 1;
        self.inner.skip_sender(sender);
    }
}

impl TransactionSource for std::vec::IntoIter<RecoveredTx> {
    fn next_tx(&mut self) -> Option<RecoveredTx> {
        self.next()
    }
    fn skip_sender(&mut self, _sender: Address) {}
}

/// A block that has been executed and rooted but not yet committed.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The sealed block.
    pub block: SealedBlock,
    /// Receipts in transaction order.
    pub receipts: Vec<ReceiptEnvelope>,
    /// State changes with old values.
    pub diff: StateDiff,
    /// Trie node changes.
    pub trie: TrieWrites,
}

/// Executes blocks against the chain database.
#[derive(Debug, Clone)]
pub struct Executor {
    db: Arc<ChainDb>,
    spec: Arc<ChainSpec>,
}

struct Executed {
    transactions: Vec<TxEnvelope>,
    senders: Vec<Address>,
    receipts: Vec<ReceiptEnvelope>,
    gas_used: u64,
}

impl Executor {
    /// An executor over `db` following `spec`.
    pub fn new(db: Arc<ChainDb>, spec: Arc<ChainSpec>) -> Self {
        Self { db, spec }
    }

    /// The chain specification.
    pub fn spec(&self) -> &Arc<ChainSpec> {
        &self.spec
    }

    /// The database.
    pub fn db(&self) -> &Arc<ChainDb> {
        &self.db
    }

    /// The header template of the block after `parent`: everything but the
    /// execution results.
    pub fn next_header(&self, parent: &SealedBlock, attrs: &BlockAttributes) -> Header {
        Header {
            parent_hash: parent.hash,
            beneficiary: attrs.beneficiary,
            number: parent.header.number + 1,
            gas_limit: parent.header.gas_limit,
            timestamp: attrs.timestamp.max(parent.header.timestamp),
            extra_data: attrs.extra_data.clone(),
            // Deterministic per block; no beacon chain supplies randomness here.
            mix_hash: keccak256(parent.hash),
            base_fee_per_gas: Some(self.spec.next_base_fee(&parent.header)),
            ..ChainSpec::prague_header_template()
        }
    }

    /// Builds the next block on top of the head from `source`, skipping
    /// transactions that are invalid or do not fit.
    pub fn build(
        &self,
        parent: &SealedBlock,
        attrs: &BlockAttributes,
        source: &mut dyn TransactionSource,
    ) -> Result<ExecutedBlock, ExecError> {
        let reader = self.db.latest_state()?;
        if reader.block() != parent.number() {
            return Err(ExecError::NotOnHead { parent: parent.number(), head: reader.block() });
        }
        let mut header = self.next_header(parent, attrs);
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        let mut state = BlockState::new(reader);
        let mut out = Executed { transactions: Vec::new(), senders: Vec::new(), receipts: Vec::new(), gas_used: 0 };
        {
            let mut evm = EthEvmFactory::default().create_evm(&mut state, evm_env(&self.spec, &header));
            while let Some(tx) = source.next_tx() {
                let remaining = header.gas_limit - out.gas_used;
                if tx.tx.gas_limit() > remaining || tx.tx.max_fee_per_gas() < u128::from(base_fee) {
                    source.skip_sender(tx.sender);
                    continue;
                }
                let recovered = Recovered::new_unchecked(&tx.tx, tx.sender);
                match evm.transact(recovered) {
                    Ok(result) => {
                        evm.db_mut().commit(result.state)?;
                        push_receipt(&mut out, tx, result.result);
                    }
                    Err(EVMError::Transaction(e)) => {
                        tracing::debug!(hash = %tx.hash(), error = %e, "skipping transaction");
                        source.skip_sender(tx.sender);
                    }
                    Err(e) => return Err(ExecError::Evm(e.to_string())),
                }
            }
        }
        self.seal(&mut header, state, out)
    }

    /// Re-executes a proposed or synced block on top of the head and checks
    /// every execution result in its header.
    pub fn execute(&self, block: &SealedBlock) -> Result<ExecutedBlock, ExecError> {
        let invalid = |reason: String| ExecError::InvalidBlock { number: block.number(), reason };
        let reader = self.db.latest_state()?;
        let parent = self.db.sealed_block(reader.block())?.ok_or_else(|| invalid("parent block missing".into()))?;
        if block.hash != block.header.hash_slow() {
            return Err(invalid("block hash does not match header".into()));
        }
        if block.header.parent_hash != parent.hash || block.number() != parent.number() + 1 {
            return Err(invalid(format!("does not extend head {} ({})", parent.number(), parent.hash)));
        }
        let expected = self.next_header(
            &parent,
            &BlockAttributes {
                timestamp: block.header.timestamp,
                beneficiary: block.header.beneficiary,
                extra_data: block.header.extra_data.clone(),
            },
        );
        if block.header.timestamp < parent.header.timestamp {
            return Err(invalid("timestamp before parent's".into()));
        }
        if block.header.extra_data.len() > 32 {
            return Err(invalid("extra data longer than 32 bytes".into()));
        }
        if block.header.base_fee_per_gas != expected.base_fee_per_gas {
            return Err(invalid(format!(
                "base fee {:?}, expected {:?}",
                block.header.base_fee_per_gas, expected.base_fee_per_gas
            )));
        }
        if block.header.gas_limit != expected.gas_limit {
            return Err(invalid("gas limit differs from parent".into()));
        }
        if block.senders.len() != block.transactions.len() {
            return Err(invalid("senders do not match transactions".into()));
        }
        if block.header.mix_hash != expected.mix_hash {
            return Err(invalid(format!(
                "mix hash {}, expected keccak256(parent hash) {}",
                block.header.mix_hash, expected.mix_hash
            )));
        }
        let mut header = expected;
        let mut state = BlockState::new(reader);
        let mut out = Executed { transactions: Vec::new(), senders: Vec::new(), receipts: Vec::new(), gas_used: 0 };
        {
            let mut evm = EthEvmFactory::default().create_evm(&mut state, evm_env(&self.spec, &header));
            for (i, (tx, sender)) in block.transactions.iter().zip(&block.senders).enumerate() {
                if tx.gas_limit() > header.gas_limit - out.gas_used {
                    return Err(invalid(format!("transaction {i} exceeds the remaining block gas")));
                }
                let result = match evm.transact(Recovered::new_unchecked(tx, *sender)) {
                    Ok(r) => r,
                    Err(EVMError::Transaction(e)) => return Err(invalid(format!("transaction {i}: {e}"))),
                    Err(e) => return Err(ExecError::Evm(e.to_string())),
                };
                evm.db_mut().commit(result.state)?;
                push_receipt(&mut out, RecoveredTx { tx: tx.clone(), sender: *sender }, result.result);
            }
        }
        let executed = self.seal(&mut header, state, out)?;
        let got = &executed.block.header;
        for (what, ours, theirs) in [
            ("state root", got.state_root, block.header.state_root),
            ("receipts root", got.receipts_root, block.header.receipts_root),
            ("transactions root", got.transactions_root, block.header.transactions_root),
        ] {
            if ours != theirs {
                return Err(invalid(format!("{what} mismatch: computed {ours}, block has {theirs}")));
            }
        }
        if got.gas_used != block.header.gas_used || got.logs_bloom != block.header.logs_bloom {
            return Err(invalid(format!(
                "gas used {} vs {} or logs bloom differ",
                got.gas_used, block.header.gas_used
            )));
        }
        if executed.block.hash != block.hash {
            return Err(invalid("header fields differ from the re-executed block".into()));
        }
        Ok(executed)
    }

    fn seal(&self, header: &mut Header, state: BlockState<'_>, out: Executed) -> Result<ExecutedBlock, ExecError> {
        debug_assert_eq!(state.reader().block() + 1, header.number);
        let (reader, changes) = state.into_changes_with_reader()?;
        let (root, diff, trie) = state_root(&reader, changes)?;
        header.state_root = root;
        header.transactions_root = calculate_transaction_root(&out.transactions);
        header.receipts_root = calculate_receipt_root(&out.receipts);
        header.logs_bloom = out.receipts.iter().fold(Bloom::ZERO, |acc, r| acc | *r.logs_bloom());
        header.gas_used = out.gas_used;
        let block = SealedBlock::new(header.clone(), out.transactions, out.senders);
        Ok(ExecutedBlock { block, receipts: out.receipts, diff, trie })
    }

    /// Commits an executed block atomically, with the certificate that
    /// finalized it when there is one.
    pub fn commit(&self, executed: &ExecutedBlock, commit: Option<&CommitCertificate>) -> Result<(), ExecError> {
        self.db.commit_block(BlockWrite {
            block: &executed.block,
            receipts: &executed.receipts,
            state: &executed.diff,
            trie: &executed.trie,
            commit,
        })?;
        Ok(())
    }
}

fn push_receipt(out: &mut Executed, tx: RecoveredTx, result: ExecutionResult) {
    out.gas_used += result.tx_gas_used();
    let success = result.is_success();
    let logs = result.into_logs();
    let receipt = Receipt { status: Eip658Value::Eip658(success), cumulative_gas_used: out.gas_used, logs };
    let ty = alloy_consensus::TxType::try_from(tx.tx.ty()).unwrap_or(alloy_consensus::TxType::Legacy);
    out.receipts.push(ReceiptEnvelope::from_typed(ty, receipt.with_bloom()));
    out.transactions.push(tx.tx);
    out.senders.push(tx.sender);
}

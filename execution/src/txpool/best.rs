//! Iterating executable transactions best-tip-first while keeping each
//! sender's nonce order.

use super::PoolTx;
use crate::executor::TransactionSource;
use alloy_primitives::{map::HashMap, Address};
use metanode_primitives::RecoveredTx;
use std::{cmp::Reverse, collections::BinaryHeap, collections::VecDeque, sync::Arc};

/// A snapshot of the pool's pending transactions, consumed best first.
pub struct BestTransactions {
    base_fee: u64,
    queues: HashMap<Address, VecDeque<Arc<PoolTx>>>,
    /// (effective tip, earlier arrival first, sender)
    heap: BinaryHeap<(u128, Reverse<u64>, Address)>,
}

impl BestTransactions {
    pub(super) fn new(runs: impl Iterator<Item = Vec<Arc<PoolTx>>>, base_fee: u64) -> Self {
        let mut this = Self { base_fee, queues: HashMap::default(), heap: BinaryHeap::new() };
        for run in runs {
            let Some(first) = run.first() else { continue };
            let sender = first.sender;
            this.queues.insert(sender, run.into());
            this.push_head(sender);
        }
        this
    }

    fn push_head(&mut self, sender: Address) {
        if let Some(tx) = self.queues.get(&sender).and_then(|q| q.front()) {
            self.heap.push((tx.effective_tip(self.base_fee), Reverse(tx.seq), sender));
        }
    }

    /// Next transaction as a pool entry.
    pub fn next_pooled(&mut self) -> Option<Arc<PoolTx>> {
        let (_, _, sender) = self.heap.pop()?;
        let tx = self.queues.get_mut(&sender)?.pop_front()?;
        self.push_head(sender);
        Some(tx)
    }
}

impl TransactionSource for BestTransactions {
    fn next_tx(&mut self) -> Option<RecoveredTx> {
        self.next_pooled().map(|t| RecoveredTx { tx: t.tx.clone(), sender: t.sender })
    }

    fn skip_sender(&mut self, sender: Address) {
        // Its queued successors cannot run without it; the heap entry (if any)
        // finds an empty queue and yields nothing.
        if let Some(q) = self.queues.get_mut(&sender) {
            q.clear();
        }
        self.heap.retain(|(_, _, s)| *s != sender);
    }
}

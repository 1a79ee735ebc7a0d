//! A block of 10,000 pre-signed ETH transfers from 1,000 senders, imported
//! the way a validator imports a proposal: senders recovered in parallel,
//! executed, rooted and committed. Target: >= 15,000 tx/s.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metanode_benches::*;
use metanode_execution::{init_genesis, BlockAttributes, Executor};
use metanode_primitives::{recover_senders, ChainSpec, RecoveredTx, SealedBlock};
use metanode_storage::{ChainDb, DbOptions};
use std::sync::Arc;

const SENDERS: u64 = 1_000;
const PER_SENDER: u64 = 10;

fn open(spec: &ChainSpec) -> (tempfile::TempDir, Arc<ChainDb>) {
    let dir = tempfile::tempdir().unwrap();
    // fsync on: the benchmark pays for durable commits like the node does.
    let db = ChainDb::open(&dir.path().join("db"), DbOptions::default()).unwrap();
    init_genesis(&db, spec).unwrap();
    (dir, Arc::new(db))
}

fn bench(c: &mut Criterion) {
    let senders: Vec<_> = (0..SENDERS).map(sender).collect();
    let spec = Arc::new(
        ChainSpec::from_genesis(funded_genesis(9928, 300_000_000, senders.iter().map(|s| s.address()))).unwrap(),
    );
    let txs = presign_transfers(&senders, 9928, 0, PER_SENDER, 100 * GWEI);
    // The proposer builds the block once; every iteration imports it afresh.
    let (_dir, db) = open(&spec);
    let proposer = Executor::new(db.clone(), spec.clone());
    let parent = db.sealed_block(0).unwrap().unwrap();
    let attrs = BlockAttributes { timestamp: 1, beneficiary: Default::default(), extra_data: Default::default() };
    let recovered: Vec<RecoveredTx> = txs
        .iter()
        .cloned()
        .zip(recover_senders(&txs).unwrap())
        .map(|(tx, sender)| RecoveredTx { tx, sender })
        .collect();
    let built = proposer.build(&parent, &attrs, &mut recovered.into_iter()).unwrap();
    assert_eq!(built.block.transactions.len(), (SENDERS * PER_SENDER) as usize);
    let header = built.block.header.clone();
    let body = built.block.transactions.clone();

    let mut group = c.benchmark_group("block_import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SENDERS * PER_SENDER));
    group.bench_function("10k_transfers_1k_senders", |b| {
        b.iter_batched(
            || open(&spec),
            |(dir, db)| {
                let senders = recover_senders(&body).unwrap();
                let block = SealedBlock::new(header.clone(), body.clone(), senders);
                let executor = Executor::new(db, spec.clone());
                let executed = executor.execute(&block).unwrap();
                executor.commit(&executed, None).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

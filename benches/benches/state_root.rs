//! State root of a block touching 10,000 accounts in a state of 1,000,000
//! accounts, computed incrementally from stored trie nodes. Target: <= 100 ms.

use alloy_primitives::U256;
use alloy_trie::TrieAccount;
use criterion::{criterion_group, criterion_main, Criterion};
use metanode_benches::*;
use metanode_execution::{account_trie_update, init_genesis};
use metanode_primitives::ChainSpec;
use metanode_storage::{ChainDb, DbOptions};

fn accounts() -> u64 {
    // `cargo test` runs benches once as a smoke test (no --bench flag): use a
    // small state there. METANODE_BENCH_ACCOUNTS overrides either default.
    let default = if std::env::args().any(|a| a == "--bench") { 1_000_000 } else { 20_000 };
    std::env::var("METANODE_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bench(c: &mut Criterion) {
    let n = accounts();
    let dir = tempfile::tempdir().unwrap();
    let db = ChainDb::open(&dir.path().join("db"), DbOptions { sync_writes: false, ..Default::default() }).unwrap();
    let spec = ChainSpec::from_genesis(funded_genesis(9928, 30_000_000, (0..n).map(filler_address))).unwrap();
    init_genesis(&db, &spec).unwrap();
    let reader = db.latest_state().unwrap();
    // 10,000 existing accounts spread over the key space get new balances.
    let touched: Vec<_> = (0..10_000u64)
        .map(|i| {
            let addr = filler_address(i * (n / 10_000).max(1));
            let mut acc: TrieAccount = reader.account(&addr).unwrap().expect("filler account exists");
            acc.balance += U256::from(1);
            (addr, acc)
        })
        .collect();
    let mut group = c.benchmark_group("state_root");
    group.sample_size(10);
    group.bench_function(format!("10k_touched_of_{n}"), |b| {
        b.iter(|| account_trie_update(&reader, touched.iter().map(|(a, acc)| (*a, Some(acc)))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

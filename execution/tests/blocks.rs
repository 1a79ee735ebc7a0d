//! Build a block on one database, re-execute it on another, and check the
//! incrementally computed state root against a from-scratch computation.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use metanode_execution::{alloc_root, init_genesis, BlockAttributes, ExecError, Executor};
use metanode_primitives::{ChainSpec, RecoveredTx};
use metanode_storage::{ChainDb, DbOptions};
use std::{collections::BTreeMap, sync::Arc};

const GWEI: u128 = 1_000_000_000;

/// Runtime code: `sstore(calldataload(0), calldataload(32))`.
const STORE_CODE: [u8; 7] = [0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55];

fn signers() -> Vec<PrivateKeySigner> {
    (1..=4u8).map(|i| PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap()).collect()
}

fn store_contract() -> Address {
    Address::repeat_byte(0xcc)
}

fn spec() -> Arc<ChainSpec> {
    let mut genesis = Genesis { gas_limit: 30_000_000, base_fee_per_gas: Some(GWEI), ..Default::default() };
    genesis.config.chain_id = 9928;
    for s in signers() {
        genesis.alloc.insert(s.address(), GenesisAccount { balance: U256::from(10u128.pow(21)), ..Default::default() });
    }
    let mut storage = BTreeMap::new();
    storage.insert(B256::with_last_byte(1), B256::with_last_byte(0x11));
    storage.insert(B256::with_last_byte(2), B256::with_last_byte(0x22));
    genesis.alloc.insert(
        store_contract(),
        GenesisAccount { code: Some(Bytes::from(STORE_CODE.to_vec())), storage: Some(storage), ..Default::default() },
    );
    Arc::new(ChainSpec::from_genesis(genesis).unwrap())
}

fn open(dir: &std::path::Path, spec: &ChainSpec) -> Arc<ChainDb> {
    let db = ChainDb::open(dir, DbOptions { sync_writes: false, ..Default::default() }).unwrap();
    init_genesis(&db, spec).unwrap();
    Arc::new(db)
}

fn tx(s: &PrivateKeySigner, nonce: u64, to: Address, value: u64, input: Vec<u8>, gas: u64) -> RecoveredTx {
    let mut t = TxEip1559 {
        chain_id: 9928,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value: U256::from(value),
        input: input.into(),
        ..Default::default()
    };
    let sig = s.sign_transaction_sync(&mut t).unwrap();
    RecoveredTx { tx: TxEnvelope::Eip1559(t.into_signed(sig)), sender: s.address() }
}

fn store_call(key: u8, value: u8) -> Vec<u8> {
    let mut data = vec![0u8; 64];
    data[31] = key;
    data[63] = value;
    data
}

/// Root of the state as it now stands, recomputed from scratch with
/// alloy-trie's hash builder over every account the test knows of.
fn full_root(db: &ChainDb, spec: &ChainSpec, addresses: &[Address]) -> B256 {
    let state = db.latest_state().unwrap();
    let mut genesis = spec.genesis.clone();
    genesis.alloc.clear();
    for a in addresses {
        let Some(acc) = state.account(a).unwrap() else { continue };
        let code = state.code(&acc.code_hash).unwrap();
        let storage: BTreeMap<B256, B256> =
            state.storage_slots(a).unwrap().into_iter().map(|(k, v)| (k, B256::from(v))).collect();
        genesis.alloc.insert(
            *a,
            GenesisAccount {
                balance: acc.balance,
                nonce: Some(acc.nonce),
                code,
                storage: (!storage.is_empty()).then_some(storage),
                private_key: None,
            },
        );
    }
    alloc_root(&ChainSpec::from_genesis(genesis).unwrap())
}

#[test]
fn built_block_re_executes_identically_and_roots_match_full_recompute() {
    let spec = spec();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, db_b) = (open(dir_a.path(), &spec), open(dir_b.path(), &spec));
    let (exec_a, exec_b) = (Executor::new(db_a.clone(), spec.clone()), Executor::new(db_b.clone(), spec.clone()));
    let s = signers();
    let fresh = Address::repeat_byte(0x99);
    let coinbase = Address::repeat_byte(0xfe);
    let mut known: Vec<Address> = s.iter().map(|x| x.address()).collect();
    known.extend([store_contract(), fresh, coinbase]);
    assert_eq!(full_root(&db_a, &spec, &known), db_a.header(0).unwrap().unwrap().state_root);

    for round in 0..3u64 {
        let txs = vec![
            tx(&s[0], round, fresh, 1_000 + round, vec![], 21_000),
            tx(&s[1], round, store_contract(), 0, store_call(3 + round as u8, 0x33), 100_000),
            // Overwrite slot 1 and clear slot 2 (a deletion in the storage trie).
            tx(&s[2], round, store_contract(), 0, store_call(1, 0x44 + round as u8), 100_000),
            tx(&s[3], round, store_contract(), 0, store_call(2, 0), 100_000),
            // An invalid one (nonce gap) is skipped, not fatal.
            tx(&s[3], round + 5, fresh, 1, vec![], 21_000),
        ];
        let parent = db_a.sealed_block(round).unwrap().unwrap();
        let attrs = BlockAttributes { timestamp: 1_000 + round, beneficiary: coinbase, extra_data: Bytes::new() };
        let built = exec_a.build(&parent, &attrs, &mut txs.into_iter()).unwrap();
        assert_eq!(built.block.transactions.len(), 4, "round {round}");
        assert!(built.receipts.iter().all(|r| r.status()), "round {round}");
        exec_a.commit(&built, None).unwrap();

        let verified = exec_b.execute(&built.block).unwrap();
        assert_eq!(verified.block.hash, built.block.hash);
        exec_b.commit(&verified, None).unwrap();

        let root = built.block.header.state_root;
        assert_eq!(
            full_root(&db_a, &spec, &known),
            root,
            "incremental root differs from full recompute in round {round}"
        );
        assert_eq!(full_root(&db_b, &spec, &known), root);
    }
    let state = db_a.latest_state().unwrap();
    assert_eq!(state.storage(&store_contract(), &B256::with_last_byte(2)).unwrap(), U256::ZERO);
    assert_eq!(state.storage(&store_contract(), &B256::with_last_byte(1)).unwrap(), U256::from(0x46));
    assert_eq!(state.account(&fresh).unwrap().unwrap().balance, U256::from(1_000 + 1_001 + 1_002));
    // History: slot 1 as it was after block 1.
    let at1 = db_a.state_at(1).unwrap();
    assert_eq!(at1.storage(&store_contract(), &B256::with_last_byte(1)).unwrap(), U256::from(0x44));
}

#[test]
fn tampered_blocks_are_rejected_and_change_nothing() {
    let spec = spec();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, db_b) = (open(dir_a.path(), &spec), open(dir_b.path(), &spec));
    let exec_a = Executor::new(db_a.clone(), spec.clone());
    let exec_b = Executor::new(db_b.clone(), spec.clone());
    let s = signers();
    let parent = db_a.sealed_block(0).unwrap().unwrap();
    let attrs = BlockAttributes { timestamp: 5, beneficiary: Address::ZERO, extra_data: Bytes::new() };
    let txs = vec![tx(&s[0], 0, Address::repeat_byte(7), 5, vec![], 21_000)];
    let built = exec_a.build(&parent, &attrs, &mut txs.into_iter()).unwrap();

    let mut bad_root = built.block.clone();
    bad_root.header.state_root = keccak256("wrong");
    bad_root.hash = bad_root.header.hash_slow();
    let err = exec_b.execute(&bad_root).unwrap_err();
    assert!(matches!(&err, ExecError::InvalidBlock { reason, .. } if reason.contains("state root")), "{err}");

    let mut bad_fee = built.block.clone();
    bad_fee.header.base_fee_per_gas = Some(1);
    bad_fee.hash = bad_fee.header.hash_slow();
    assert!(exec_b.execute(&bad_fee).unwrap_err().to_string().contains("base fee"));

    // prevrandao is keccak256(parent hash), not the proposer's choice: a
    // proposer that picked its own would steer contracts that read it.
    let mut bad_mix = built.block.clone();
    bad_mix.header.mix_hash = keccak256("chosen by the proposer");
    bad_mix.hash = bad_mix.header.hash_slow();
    let err = exec_b.execute(&bad_mix).unwrap_err();
    assert!(matches!(&err, ExecError::InvalidBlock { reason, .. } if reason.contains("mix hash")), "{err}");

    // A transaction signed for another chain makes the block invalid.
    let mut foreign = TxLegacy {
        chain_id: Some(1),
        gas_limit: 21_000,
        gas_price: 10 * GWEI,
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    };
    let sig = s[1].sign_transaction_sync(&mut foreign).unwrap();
    let mut bad_tx = built.block.clone();
    bad_tx.transactions.push(TxEnvelope::Legacy(foreign.into_signed(sig)));
    bad_tx.senders.push(s[1].address());
    bad_tx.hash = bad_tx.header.hash_slow();
    assert!(matches!(exec_b.execute(&bad_tx), Err(ExecError::InvalidBlock { .. })));

    // Nothing was written to B.
    assert_eq!(db_b.head_number().unwrap(), Some(0));
    assert_eq!(db_b.latest_state().unwrap().account(&Address::repeat_byte(7)).unwrap(), None);
    // The untampered block still verifies.
    exec_b.execute(&built.block).unwrap();
}

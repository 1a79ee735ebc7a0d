//! The EVM environment for a block: Prague rules, our chain id, the header's values.

use alloy_consensus::Header;
use alloy_evm::EvmEnv;
use alloy_primitives::U256;
use metanode_primitives::ChainSpec;
use revm::{
    context::{BlockEnv, CfgEnv},
    context_interface::block::BlobExcessGasAndPrice,
    primitives::{eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE, hardfork::SpecId},
};

/// The hard fork every MetaNode block runs under.
pub const SPEC: SpecId = SpecId::PRAGUE;

/// The EVM environment for executing `header`'s block.
pub fn evm_env(spec: &ChainSpec, header: &Header) -> EvmEnv {
    let mut cfg = CfgEnv::new_with_spec(SPEC).with_chain_id(spec.chain_id);
    // Prague has no per-transaction gas cap (EIP-7825 starts with Osaka).
    cfg.tx_gas_limit_cap = Some(u64::MAX);
    let block = BlockEnv {
        number: U256::from(header.number),
        beneficiary: header.beneficiary,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit,
        basefee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: U256::ZERO,
        prevrandao: Some(header.mix_hash),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
            header.excess_blob_gas.unwrap_or_default(),
            BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
        )),
        slot_num: 0,
    };
    EvmEnv::new(cfg, block)
}

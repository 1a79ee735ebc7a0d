//! The chain specification: a geth `genesis.json` plus the rules MetaNode
//! applies on top of it (Prague from genesis, EIP-1559 base fee).

use alloy_consensus::{constants::EMPTY_WITHDRAWALS, Header, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_eips::{eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH};
use alloy_genesis::Genesis;
use alloy_primitives::{B256, B64};

/// MetaNode's default chain id.
pub const DEFAULT_CHAIN_ID: u64 = 9928;
/// Default block gas limit: high enough for 10,000 transfers in one block.
pub const DEFAULT_GAS_LIMIT: u64 = 300_000_000;
/// geth's initial base fee, used when the genesis names none.
const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// Why a genesis cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// Not JSON, or JSON that is not a geth genesis.
    #[error("genesis is not a valid geth genesis.json: {0}")]
    Parse(#[from] serde_json::Error),
    /// `config.chainId` missing or zero.
    #[error("genesis config.chainId must be set and non-zero")]
    MissingChainId,
    /// A block gas limit below one plain transfer.
    #[error("genesis gasLimit {0} is below 21000; no transaction would fit")]
    GasLimitTooLow(u64),
    /// A base fee that does not fit the header's u64 field.
    #[error("genesis baseFeePerGas {0} does not fit in 64 bits")]
    BaseFeeTooLarge(u128),
    /// The `validators` list is malformed.
    #[error("genesis validators: {0}")]
    Validators(String),
}

/// A member of the genesis validator set, as `genesis.json` lists it under
/// the top-level `validators` key (geth ignores the key; MetaNode requires it
/// outside dev mode).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisValidator {
    /// The ed25519 public key, 32 bytes.
    pub public_key: B256,
    /// Voting power; the set decides with more than 2/3 of the total.
    pub power: u64,
    /// A name for logs and dashboards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A validated genesis and the parameters derived from it.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The genesis as read; `alloc` seeds the state.
    pub genesis: Genesis,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Base fee of the genesis block.
    pub initial_base_fee: u64,
    /// EIP-1559 elasticity and change denominator.
    pub base_fee_params: BaseFeeParams,
    /// The validator set at genesis (empty when the genesis names none).
    pub validators: Vec<GenesisValidator>,
}

impl ChainSpec {
    /// Validates a genesis.
    pub fn from_genesis(genesis: Genesis) -> Result<Self, ChainSpecError> {
        let chain_id = genesis.config.chain_id;
        if chain_id == 0 {
            return Err(ChainSpecError::MissingChainId);
        }
        if genesis.gas_limit < 21_000 {
            return Err(ChainSpecError::GasLimitTooLow(genesis.gas_limit));
        }
        let initial_base_fee = match genesis.base_fee_per_gas {
            Some(fee) => u64::try_from(fee).map_err(|_| ChainSpecError::BaseFeeTooLarge(fee))?,
            None => INITIAL_BASE_FEE,
        };
        Ok(Self {
            genesis,
            chain_id,
            initial_base_fee,
            base_fee_params: BaseFeeParams::ethereum(),
            validators: Vec::new(),
        })
    }

    /// Parses and validates a `genesis.json` text. A missing `config.chainId`
    /// is an error here (alloy would default it to mainnet's 1).
    pub fn from_json(json: &str) -> Result<Self, ChainSpecError> {
        let value: serde_json::Value = serde_json::from_str(json)?;
        if value.pointer("/config/chainId").is_none() {
            return Err(ChainSpecError::MissingChainId);
        }
        let validators = match value.get("validators") {
            None => Vec::new(),
            Some(list) => serde_json::from_value::<Vec<GenesisValidator>>(list.clone())
                .map_err(|e| ChainSpecError::Validators(e.to_string()))?,
        };
        let mut spec = Self::from_genesis(serde_json::from_value(value)?)?;
        spec.validators = validators;
        Ok(spec)
    }

    /// A header with every post-merge field a Prague block carries set to
    /// its empty value (no ommers, withdrawals, blobs, beacon root or
    /// requests exist on this chain), so clients see the fields they expect.
    pub fn prague_header_template() -> Header {
        Header {
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            nonce: B64::ZERO,
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            ..Default::default()
        }
    }

    /// The genesis header for a given state root (computed by the state store
    /// from `alloc`).
    pub fn genesis_header(&self, state_root: B256) -> Header {
        let g = &self.genesis;
        Header {
            beneficiary: g.coinbase,
            state_root,
            difficulty: g.difficulty,
            gas_limit: g.gas_limit,
            timestamp: g.timestamp,
            extra_data: g.extra_data.clone(),
            mix_hash: g.mix_hash,
            nonce: B64::from(g.nonce),
            base_fee_per_gas: Some(self.initial_base_fee),
            ..Self::prague_header_template()
        }
    }

    /// The base fee of the block after `parent` (EIP-1559).
    pub fn next_base_fee(&self, parent: &Header) -> u64 {
        parent.next_block_base_fee(self.base_fee_params).unwrap_or(self.initial_base_fee)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_geth_genesis() {
        let spec = ChainSpec::from_json(
            r#"{"config":{"chainId":9928},"gasLimit":"0x1c9c380","difficulty":"0x0",
               "alloc":{"0x1111111111111111111111111111111111111111":{"balance":"0x10"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.chain_id, 9928);
        assert_eq!(spec.initial_base_fee, INITIAL_BASE_FEE);
        assert_eq!(spec.genesis.alloc.len(), 1);
        let header = spec.genesis_header(EMPTY_ROOT_HASH);
        assert_eq!(header.gas_limit, 30_000_000);
    }

    #[test]
    fn rejects_broken_genesis() {
        assert!(matches!(ChainSpec::from_json("{"), Err(ChainSpecError::Parse(_))));
        assert!(matches!(
            ChainSpec::from_json(r#"{"config":{},"gasLimit":"0x1c9c380","alloc":{}}"#),
            Err(ChainSpecError::MissingChainId)
        ));
        assert!(matches!(
            ChainSpec::from_json(r#"{"config":{"chainId":5},"gasLimit":"0x10","alloc":{}}"#),
            Err(ChainSpecError::GasLimitTooLow(16))
        ));
    }

    #[test]
    fn reads_the_validator_set() {
        let key = "0x".to_string() + &"ab".repeat(32);
        let json = format!(
            r#"{{"config":{{"chainId":5}},"gasLimit":"0x1c9c380","validators":[{{"publicKey":"{key}","power":10,"name":"v0"}}]}}"#
        );
        let spec = ChainSpec::from_json(&json).unwrap();
        assert_eq!(spec.validators.len(), 1);
        assert_eq!(spec.validators[0].power, 10);
        let bad = json.replace("\"power\":10", "\"power\":\"ten\"");
        assert!(matches!(ChainSpec::from_json(&bad), Err(ChainSpecError::Validators(_))));
    }

    #[test]
    fn base_fee_follows_eip1559() {
        let spec = ChainSpec::from_json(r#"{"config":{"chainId":5},"gasLimit":"0x1c9c380"}"#).unwrap();
        let mut parent = spec.genesis_header(EMPTY_ROOT_HASH);
        // Empty parent: base fee falls by 1/8.
        assert_eq!(spec.next_base_fee(&parent), 875_000_000);
        // Full parent: rises by 1/8.
        parent.gas_used = parent.gas_limit;
        assert_eq!(spec.next_base_fee(&parent), 1_125_000_000);
        // Exactly at target: unchanged.
        parent.gas_used = parent.gas_limit / 2;
        assert_eq!(spec.next_base_fee(&parent), 1_000_000_000);
    }
}

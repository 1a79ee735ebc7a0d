//! Dev mode: the well-known test accounts (the mnemonic anvil and hardhat
//! use), a genesis funding them, and the banner that says TEST ONLY.

use alloy_genesis::{Genesis, GenesisAccount};
use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner};
use metanode_consensus::ValidatorKey;
use metanode_primitives::{GenesisValidator, DEFAULT_GAS_LIMIT};

/// The public test mnemonic. Anything sent to its accounts on a real network is lost.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// How many accounts are derived and funded.
pub const DEV_ACCOUNTS: u32 = 10;
/// 10,000 ETH each.
pub const DEV_BALANCE_WEI: u128 = 10_000 * 1_000_000_000_000_000_000;

/// The dev accounts, derived at m/44'/60'/0'/0/i.
pub fn dev_signers() -> anyhow::Result<Vec<PrivateKeySigner>> {
    (0..DEV_ACCOUNTS)
        .map(|i| MnemonicBuilder::try_from_phrase_nth(DEV_MNEMONIC, i).map_err(anyhow::Error::from))
        .collect()
}

/// A genesis for `chain_id` funding `accounts`; timestamp 0 so the same
/// inputs give the same genesis hash on every start.
pub fn dev_genesis(chain_id: u64, accounts: &[Address]) -> Genesis {
    let mut genesis =
        Genesis { gas_limit: DEFAULT_GAS_LIMIT, base_fee_per_gas: Some(1_000_000_000), ..Default::default() };
    genesis.config.chain_id = chain_id;
    genesis.alloc = accounts
        .iter()
        .map(|a| (*a, GenesisAccount { balance: U256::from(DEV_BALANCE_WEI), ..Default::default() }))
        .collect();
    genesis
}

/// A genesis validator entry for `key` with power 1.
pub fn genesis_validator(key: &ValidatorKey, name: &str) -> GenesisValidator {
    GenesisValidator {
        public_key: B256::from(key.signing_key.verifying_key().to_bytes()),
        power: 1,
        name: Some(name.to_string()),
    }
}

/// `genesis.json` text: the geth genesis plus MetaNode's top-level `validators` list.
pub fn genesis_json(genesis: &Genesis, validators: &[GenesisValidator]) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(genesis)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("validators".into(), serde_json::to_value(validators)?);
    }
    Ok(serde_json::to_string_pretty(&value)?)
}

/// The text printed when a dev chain starts.
pub fn banner(
    signers: &[PrivateKeySigner],
    chain_id: u64,
    http: &str,
    ws: Option<&str>,
    datadir: &std::path::Path,
) -> String {
    let mut s = String::new();
    s.push_str("\n================================================================================\n");
    s.push_str("  MetaNode dev chain -- TEST ONLY. These keys are public: never use them on a\n");
    s.push_str("  network with real value.\n");
    s.push_str("================================================================================\n\n");
    s.push_str("Available accounts (10,000 ETH each)\n");
    for (i, sg) in signers.iter().enumerate() {
        s.push_str(&format!("({i}) {}\n", sg.address()));
    }
    s.push_str("\nPrivate keys\n");
    for (i, sg) in signers.iter().enumerate() {
        let key: B256 = sg.to_bytes();
        s.push_str(&format!("({i}) {key}\n"));
    }
    s.push_str(&format!("\nMnemonic:        {DEV_MNEMONIC}\nDerivation path: m/44'/60'/0'/0/<index>\n"));
    s.push_str(&format!("\nChain id:        {chain_id}\nJSON-RPC (HTTP): http://{http}\n"));
    s.push_str(&format!("JSON-RPC (WS):   ws://{http}\n"));
    if let Some(ws) = ws {
        s.push_str(&format!("WebSocket:       ws://{ws}\n"));
    }
    s.push_str(&format!("Health:          http://{http}/health\nData directory:  {}\n\n", datadir.display()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_well_known_accounts() {
        let signers = dev_signers().unwrap();
        assert_eq!(signers.len(), 10);
        // The first and last accounts every anvil/hardhat user knows.
        assert_eq!(signers[0].address(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().unwrap());
        assert_eq!(signers[9].address(), "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720".parse::<Address>().unwrap());
    }
}

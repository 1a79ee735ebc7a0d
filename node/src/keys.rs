//! The node's key files in `<datadir>/keys`: the libp2p identity
//! (`node_key.json`, created on first start) and the validator key
//! (`validator_key.json`, made by `init` or `testnet`; never created
//! silently outside dev mode, because a validator must know its key).

use anyhow::Context;
use metanode_consensus::ValidatorKey;
use std::path::{Path, PathBuf};

/// `<datadir>/keys`.
pub fn keys_dir(datadir: &Path) -> PathBuf {
    datadir.join("keys")
}

/// The node key file.
pub fn node_key_path(datadir: &Path) -> PathBuf {
    keys_dir(datadir).join("node_key.json")
}

/// The validator key file.
pub fn validator_key_path(datadir: &Path) -> PathBuf {
    keys_dir(datadir).join("validator_key.json")
}

/// Loads the key at `path`, or creates it (mode 0600, in a 0700 directory) when absent.
pub fn load_or_create(path: &Path) -> anyhow::Result<ValidatorKey> {
    if path.exists() {
        return ValidatorKey::load(path).with_context(|| format!("cannot use key file {}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", dir.display()))?;
        }
    }
    let key = ValidatorKey::generate();
    key.save(path).with_context(|| format!("cannot write key file {}", path.display()))?;
    Ok(key)
}

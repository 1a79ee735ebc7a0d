//! Validator key files (`<datadir>/keys/validator_key.json`), in the spirit
//! of CometBFT's `priv_validator_key.json`: readable by the owner only.

use crate::ValidatorAddress;
use ed25519_dalek::SigningKey;
use std::{fs, io::Write, path::Path, path::PathBuf};

/// A validator key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing failed.
    #[error("validator key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may read the key: anyone on the machine could sign as this validator.
    #[error("validator key {path} has permissions {mode:o}; it must be readable by its owner only (chmod 600)")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a key file of ours.
    #[error("validator key {path} is malformed: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    address: ValidatorAddress,
    public_key: String,
    private_key: String,
}

/// A validator's ed25519 signing key.
#[derive(Clone)]
pub struct ValidatorKey {
    /// The key.
    pub signing_key: SigningKey,
}

impl std::fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorKey").field("address", &self.address()).finish_non_exhaustive()
    }
}

impl ValidatorKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self { signing_key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()) }
    }

    /// The validator's address.
    pub fn address(&self) -> ValidatorAddress {
        ValidatorAddress::from_public_key(&self.signing_key.verifying_key())
    }

    /// Writes the key to `path`, creating it readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let file = KeyFile {
            address: self.address(),
            public_key: hex::encode(self.signing_key.verifying_key().as_bytes()),
            private_key: hex::encode(self.signing_key.to_bytes()),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(path).map_err(io)?;
        out.write_all(json.as_bytes()).and_then(|_| out.sync_all()).map_err(io)
    }

    /// Reads a key file, refusing one that others can read or whose fields
    /// disagree with each other.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let format = |reason: String| KeyError::Format { path: path.to_path_buf(), reason };
        let meta = fs::metadata(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
            }
        }
        let _ = meta;
        let raw = fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
        let file: KeyFile = serde_json::from_str(&raw).map_err(|e| format(e.to_string()))?;
        let secret: [u8; 32] = hex::decode(file.private_key.trim_start_matches("0x"))
            .map_err(|e| format(format!("private_key: {e}")))?
            .try_into()
            .map_err(|_| format("private_key: not 32 bytes".into()))?;
        let key = Self { signing_key: SigningKey::from_bytes(&secret) };
        let public_key = hex::encode(key.signing_key.verifying_key().as_bytes());
        if !public_key.eq_ignore_ascii_case(file.public_key.trim_start_matches("0x")) {
            return Err(format("public_key does not belong to private_key".into()));
        }
        if key.address() != file.address {
            return Err(format(format!(
                "address {} does not belong to the key (expected {})",
                file.address,
                key.address()
            )));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_key_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator_key.json");
        let key = ValidatorKey::generate();
        key.save(&path).unwrap();
        assert_eq!(ValidatorKey::load(&path).unwrap().address(), key.address());
        // Never overwritten.
        assert!(matches!(ValidatorKey::generate().save(&path), Err(KeyError::Io { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator_key.json");
        ValidatorKey::generate().save(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ValidatorKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("644"), "{err}");
    }

    #[test]
    fn malformed_or_inconsistent_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            fs::write(&path, body).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            path
        };
        let not_json = write("a", "hello");
        assert!(matches!(ValidatorKey::load(&not_json), Err(KeyError::Format { .. })));
        let key = ValidatorKey::generate();
        let other = ValidatorKey::generate();
        let mismatched = write(
            "b",
            &serde_json::json!({
                "address": other.address(),
                "public_key": hex::encode(key.signing_key.verifying_key().as_bytes()),
                "private_key": hex::encode(key.signing_key.to_bytes()),
            })
            .to_string(),
        );
        let err = ValidatorKey::load(&mismatched).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }
}

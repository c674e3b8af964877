//! The signing keys of the central bank and the operators for a data directory. In production each
//! party holds its own key in its own hardware; the embedded default keeps them in `DIR/keys`, one
//! file each, so that a single machine can play every part.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::certs::KeyPair;
use crate::ids::OperatorId;

#[derive(Debug, Error)]
pub enum KeyringError {
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not a valid SM2 secret key (64 hex digits)")]
    Malformed { path: PathBuf },
}

pub struct Keyring {
    dir: PathBuf,
}

impl Keyring {
    pub fn new(data_dir: &Path) -> Keyring {
        Keyring {
            dir: data_dir.join("keys"),
        }
    }

    pub fn central_bank(&self) -> Result<KeyPair, KeyringError> {
        self.load_or_create("central-bank")
    }

    pub fn operator(&self, id: OperatorId) -> Result<KeyPair, KeyringError> {
        self.load_or_create(&id.to_string())
    }

    fn load_or_create(&self, name: &str) -> Result<KeyPair, KeyringError> {
        let path = self.dir.join(format!("{name}.key"));
        let io = |source| KeyringError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = decode_hex(text.trim())
                    .ok_or_else(|| KeyringError::Malformed { path: path.clone() })?;
                KeyPair::from_secret_bytes(&bytes)
                    .map_err(|_| KeyringError::Malformed { path: path.clone() })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir).map_err(io)?;
                let key = KeyPair::generate();
                let hex: String = key
                    .secret_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let mut file = fs::File::create(&path).map_err(io)?;
                file.write_all(hex.as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(io)?;
                Ok(key)
            }
            Err(error) => Err(io(error)),
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

//! The signing keys of the central bank and the operators for a data directory. In production each
//! party holds its own key in its own hardware; the embedded default keeps them in `DIR/keys`, one
//! file each, so that a single machine can play every part.
//!
//! Every secret file (`*.key`, `*.token`, `token-secret`, `*.code-secret`, and the command line's
//! profiles) is its owner's alone: written 0600 in a 0700 directory. A secret found readable by
//! others is tightened back and a warning names it (`secure_secret`): refusing to start would
//! leave a deployment made by an older build down, while the warning tells its operator the file
//! was open and its secret should be replaced.

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
        match secure_secret(&path).and_then(|()| fs::read_to_string(&path)) {
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
                write_secret(&path, &hex).map_err(io)?;
                Ok(key)
            }
            Err(error) => Err(io(error)),
        }
    }
}

/// Mode of a secret file: its owner reads and writes it, no one else.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of the directory of secrets.
pub const SECRET_DIR_MODE: u32 = 0o700;

/// Writes a new secret file, 0600 from its first byte, in a 0700 directory.
pub fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
        secure(dir, SECRET_DIR_MODE)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, SECRET_FILE_MODE);
    let mut file = options.open(path)?;
    // A file that existed keeps its mode through `open`: set it.
    secure(path, SECRET_FILE_MODE)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Tightens a secret file someone loosened back to 0600, with a warning; a missing file is
/// left for its writer.
pub fn secure_secret(path: &Path) -> std::io::Result<()> {
    match fs::metadata(path) {
        Ok(_) => secure(path, SECRET_FILE_MODE),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Tightens the directory of secrets and every file in it; the files tightened.
pub fn secure_secrets_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut tightened = Vec::new();
    if !dir.exists() {
        return Ok(tightened);
    }
    if loosened(dir, SECRET_DIR_MODE)? {
        tightened.push(dir.to_path_buf());
    }
    secure(dir, SECRET_DIR_MODE)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            if loosened(&path, SECRET_FILE_MODE)? {
                tightened.push(path.clone());
            }
            secure(&path, SECRET_FILE_MODE)?;
        }
    }
    Ok(tightened)
}

#[cfg(unix)]
fn loosened(path: &Path, mode: u32) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(path)?.permissions().mode() & 0o777 & !mode != 0)
}

#[cfg(not(unix))]
fn loosened(_: &Path, _: u32) -> std::io::Result<bool> {
    Ok(false)
}

/// Sets `mode` if others may read or write the file; warns that they could.
fn secure(path: &Path, mode: u32) -> std::io::Result<()> {
    if let Some(was) = tighten(path, mode)? {
        tracing::warn!(
            path = %path.display(),
            "secret was mode {was:o}, readable by others: tightened to {mode:o}; replace it if it may have been read"
        );
    }
    Ok(())
}

/// Sets `mode` on a file others may read or write; the mode it had, if it was changed.
#[cfg(unix)]
pub fn tighten(path: &Path, mode: u32) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    if !loosened(path, mode)? {
        return Ok(None);
    }
    let was = fs::metadata(path)?.permissions().mode() & 0o777;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(Some(was))
}

#[cfg(not(unix))]
pub fn tighten(_: &Path, _: u32) -> std::io::Result<Option<u32>> {
    Ok(None)
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

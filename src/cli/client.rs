//! What the wallet and merchant commands share: failures shown as every command shows them
//! (`error: detail [CODE]`) with the server's own codes, profile files only their owner may read, operator tokens from a data
//! directory, and QR codes drawn in the terminal.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use ecny::channels::{render_half_blocks, render_png, QrError, RenderError};
use ecny::error::CommandError;
use ecny::ids::OperatorId;

/// Pixels per module in the PNG files the commands write: what a till's screen shows.
pub const PNG_MODULE_PX: u32 = 6;
/// Where `ecny serve` keeps its data unless told otherwise; the operators' tokens are in its keys.
pub use ecny::server::config::DATA_DEFAULT;

/// A refusal or local error, with a stable code like the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub detail: String,
}

impl Failure {
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::coded(&self.detail, &self.code))
    }
}

impl From<QrError> for Failure {
    fn from(error: QrError) -> Failure {
        Failure::new(error.code(), error.to_string())
    }
}

impl From<RenderError> for Failure {
    fn from(error: RenderError) -> Failure {
        Failure::new(error.code(), error.to_string())
    }
}

impl From<CommandError> for Failure {
    fn from(error: CommandError) -> Failure {
        Failure::new(error.code(), error.to_string())
    }
}

/// Prints a failure as every command does (`error: detail [CODE]`) and turns it into the exit
/// code.
pub fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => super::exit_with_error(&failure.to_string()),
    }
}

fn io_failure(code: &str, path: &Path, error: std::io::Error) -> Failure {
    Failure::new(code, format!("{}: {error}", path.display()))
}

/// Saves `value` as JSON that only its owner may read or write (0600): a wallet profile holds
/// the holder's signing key, a merchant profile its tokens.
pub fn save_private<T: Serialize>(path: &Path, value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).expect("a profile serializes");
    // Written beside and renamed over: a crash leaves the old profile or the new, never half.
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&staged)?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&staged, path)
    };
    write().map_err(|error| io_failure("PROFILE_UNWRITABLE", path, error))
}

/// Reads a profile; a missing one says how to make it.
pub fn load_profile<T: DeserializeOwned>(
    path: &Path,
    kind: &str,
    how_to_make: &str,
) -> Result<T, Failure> {
    // A profile holds a signing key or tokens: someone else's read access is closed, loudly.
    if let Ok(Some(was)) = ecny::keyring::tighten(path, ecny::keyring::SECRET_FILE_MODE) {
        eprintln!(
            "warning: {} was mode {was:o}, readable by others; now 0600. Replace its secrets if they may have been read",
            path.display()
        );
    }
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::new(
                "PROFILE_MISSING",
                format!(
                    "no {kind} profile at {}; {how_to_make}, or pass --profile FILE",
                    path.display()
                ),
            ))
        }
        Err(error) => return Err(io_failure("PROFILE_UNREADABLE", path, error)),
    };
    serde_json::from_str(&text).map_err(|error| {
        Failure::new(
            "PROFILE_DAMAGED",
            format!("{} is not a {kind} profile: {error}", path.display()),
        )
    })
}

/// A value from a profile, parsed into its type.
pub fn profile_field<T: std::str::FromStr>(
    path: &Path,
    name: &str,
    text: &str,
) -> Result<T, Failure>
where
    T::Err: fmt::Display,
{
    text.parse().map_err(|error: T::Err| {
        Failure::new(
            "PROFILE_DAMAGED",
            format!("{}: {name}: {error}", path.display()),
        )
    })
}

/// The operator's bearer token: as given, or from the server's data directory.
pub fn operator_token(
    given: Option<&str>,
    data: &Path,
    operator: OperatorId,
) -> Result<String, Failure> {
    if let Some(token) = given {
        return Ok(token.trim().to_string());
    }
    let path = data.join("keys").join(format!("{operator}.token"));
    let token = fs::read_to_string(&path).map_err(|error| {
        Failure::new(
            "TOKEN_MISSING",
            format!(
                "cannot read {operator}'s token at {}: {error}; pass --data DIR (the server's data directory) or --token",
                path.display()
            ),
        )
    })?;
    Ok(token.trim().to_string())
}

/// A string field of a server's answer.
pub fn text<'a>(value: &'a Value, name: &str) -> Result<&'a str, Failure> {
    value[name].as_str().ok_or_else(|| {
        Failure::new(
            "RESPONSE_MALFORMED",
            format!("the server's answer has no {name:?}: {value}"),
        )
    })
}

/// A field of a server's answer parsed into its type: an amount, an id.
pub fn answer_field<T: std::str::FromStr>(value: &Value, name: &str) -> Result<T, Failure> {
    text(value, name)?.parse().map_err(|_| {
        Failure::new(
            "RESPONSE_MALFORMED",
            format!("the server's {name:?} is not what it should be: {value}"),
        )
    })
}

/// Draws `payload` as a QR code in the terminal.
pub fn draw_qr(payload: &str) -> Result<(), Failure> {
    print!("{}", render_half_blocks(payload)?);
    Ok(())
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    fs::write(path, bytes).map_err(|error| io_failure("FILE_UNWRITABLE", path, error))
}

/// Writes `payload` as a PNG a phone's camera (or `ecny wallet pay --qr-png`) reads.
pub fn write_png(path: &Path, payload: &str) -> Result<(), Failure> {
    write_file(path, &render_png(payload, PNG_MODULE_PX)?)
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let value = serde_json::json!({ "secret_key": "00ff" });
        save_private(&path, &value).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read: Value = load_profile(&path, "wallet", "open one").unwrap();
        assert_eq!(read, value);
        // Saving again over a file someone loosened makes it private again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            save_private(&path, &value).unwrap();
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Reading one someone loosened makes it private again, too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let _: Value = load_profile(&path, "wallet", "open one").unwrap();
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let missing =
            load_profile::<Value>(&dir.path().join("nope.json"), "wallet", "open one").unwrap_err();
        assert_eq!(missing.code, "PROFILE_MISSING");
        assert!(missing.detail.contains("nope.json; open one"), "{missing}");
        fs::write(&path, "{").unwrap();
        let damaged = load_profile::<Value>(&path, "wallet", "open one").unwrap_err();
        assert_eq!(damaged.code, "PROFILE_DAMAGED");
    }

    #[test]
    fn order_references_travel_in_a_path_intact() {
        assert_eq!(path_segment("TILL-0001"), "TILL-0001");
        assert_eq!(path_segment("A/B 1?#%"), "A%2FB%201%3F%23%25");
    }
}

//! Who is calling. Each operator and the central bank hold a bearer token, kept in
//! `DIR/keys/OPxx.token` and `DIR/keys/central-bank.token` and created on first start. A wallet
//! holder's authority is not a token: it is the SM2 signature on the command itself.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};

use crate::ids::OperatorId;

use super::problem::Problem;

/// Random bytes in a token; 32 bytes is beyond guessing.
const TOKEN_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    CentralBank,
    Operator(OperatorId),
}

/// The tokens of every party this server knows.
pub struct Tokens {
    central_bank: String,
    operators: Vec<(OperatorId, String)>,
}

impl Tokens {
    /// Loads each party's token from `DIR/keys`, creating the missing ones.
    pub fn load_or_create(data_dir: &Path, operators: &[OperatorId]) -> std::io::Result<Tokens> {
        let dir = data_dir.join("keys");
        let central_bank = load_or_create(&dir.join("central-bank.token"))?;
        let operators = operators
            .iter()
            .map(|id| Ok((*id, load_or_create(&dir.join(format!("{id}.token")))?)))
            .collect::<std::io::Result<_>>()?;
        Ok(Tokens {
            central_bank,
            operators,
        })
    }

    /// The caller named by an `Authorization: Bearer` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Problem::unauthenticated(
                    "send `Authorization: Bearer <token>` (see DIR/keys/*.token)",
                )
            })?;
        // Every token is compared, so timing does not tell which party nearly matched.
        let mut found = None;
        if constant_time_eq(presented.trim(), &self.central_bank) {
            found = Some(Caller::CentralBank);
        }
        for (id, token) in &self.operators {
            if constant_time_eq(presented.trim(), token) {
                found = Some(Caller::Operator(*id));
            }
        }
        found.ok_or_else(|| Problem::unauthenticated("the bearer token is not known here"))
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

fn load_or_create(path: &PathBuf) -> std::io::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_persist_and_name_their_party() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[OperatorId(1)]).unwrap();
        let again = Tokens::load_or_create(dir.path(), &[OperatorId(1)]).unwrap();
        assert_eq!(tokens.operators, again.operators);
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", tokens.operators[0].1);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).unwrap(),
        );
        assert_eq!(
            tokens.authenticate(&headers),
            Ok(Caller::Operator(OperatorId(1)))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            tokens.authenticate(&headers).unwrap_err().code,
            "UNAUTHENTICATED"
        );
    }
}

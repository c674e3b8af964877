//! Who is calling. Each operator and the central bank hold a bearer token, kept in
//! `DIR/keys/OPxx.token` and `DIR/keys/central-bank.token` and created on first start. A wallet
//! holder's authority is not a token: it is the SM2 signature on the command itself.
//!
//! Merchants and their terminals (tills, scan guns, couriers' handhelds) get their tokens when
//! they are onboarded: `M00000001.<mac>` and `M00000001-T0002.<mac>`, the mac an HMAC-SM3 of the
//! name under the server's token secret (`DIR/keys/token-secret`). Nothing per merchant is stored,
//! so a restart loses none; rotating the secret revokes every merchant and terminal token at once.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};

use crate::channels::payment_code::hmac_sm3;
use crate::ids::{MerchantId, OperatorId};

use super::problem::Problem;

/// Random bytes in a token; 32 bytes is beyond guessing.
const TOKEN_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    CentralBank,
    Operator(OperatorId),
    Merchant(MerchantId),
    /// A merchant's terminal, by its number at the merchant.
    Terminal {
        merchant: MerchantId,
        terminal: u16,
    },
}

impl Caller {
    /// The merchant this caller speaks for, if it is a merchant or one of its terminals.
    pub fn merchant(self) -> Option<MerchantId> {
        match self {
            Caller::Merchant(id) | Caller::Terminal { merchant: id, .. } => Some(id),
            _ => None,
        }
    }
}

/// The tokens of every party this server knows.
pub struct Tokens {
    central_bank: String,
    operators: Vec<(OperatorId, String)>,
    /// Key of the merchants' and terminals' token macs.
    secret: [u8; 32],
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
        let secret_hex = load_or_create(&dir.join("token-secret"))?;
        let secret = decode_secret(&secret_hex).ok_or_else(|| {
            std::io::Error::other(format!(
                "{} is not 64 hex digits",
                dir.join("token-secret").display()
            ))
        })?;
        Ok(Tokens {
            central_bank,
            operators,
            secret,
        })
    }

    /// The bearer token of a merchant or one of its terminals.
    pub fn token_for(&self, caller: Caller) -> Option<String> {
        let name = match caller {
            Caller::Merchant(id) => id.to_string(),
            Caller::Terminal { merchant, terminal } => format!("{merchant}-T{terminal:04}"),
            _ => return None,
        };
        Some(format!("{name}.{}", self.mac_hex(&name)))
    }

    fn mac_hex(&self, name: &str) -> String {
        hmac_sm3(&self.secret, &[b"ecny-token-v1:", name.as_bytes()])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A merchant's or terminal's token, if `presented` is one and its mac is right.
    fn derived(&self, presented: &str) -> Option<Caller> {
        let (name, _mac) = presented.split_once('.')?;
        let caller = match name.split_once("-T") {
            None => Caller::Merchant(name.parse().ok()?),
            Some((merchant, terminal)) if terminal.len() == 4 => Caller::Terminal {
                merchant: merchant.parse().ok()?,
                terminal: terminal.parse().ok().filter(|n| *n > 0)?,
            },
            Some(_) => return None,
        };
        // The canonical spelling only, so one party has one token.
        let expected = self.token_for(caller)?;
        constant_time_eq(presented, &expected).then_some(caller)
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
        if found.is_none() {
            found = self.derived(presented.trim());
        }
        found.ok_or_else(|| Problem::unauthenticated("the bearer token is not known here"))
    }
}

fn decode_secret(hex: &str) -> Option<[u8; 32]> {
    let mut secret = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(secret)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

pub(super) fn load_or_create(path: &PathBuf) -> std::io::Result<String> {
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

    #[test]
    fn merchant_and_terminal_tokens_name_their_party_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[]).unwrap();
        let shop = Caller::Merchant(MerchantId(7));
        let courier = Caller::Terminal {
            merchant: MerchantId(7),
            terminal: 2,
        };
        let again = Tokens::load_or_create(dir.path(), &[]).unwrap();
        let present = |tokens: &Tokens, token: &str| {
            let mut headers = HeaderMap::new();
            let bearer = format!("Bearer {token}");
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&bearer).unwrap(),
            );
            tokens.authenticate(&headers).map_err(|p| p.code)
        };
        for caller in [shop, courier] {
            let token = tokens.token_for(caller).unwrap();
            assert_eq!(present(&again, &token), Ok(caller));
        }
        let token = tokens.token_for(shop).unwrap();
        let forged = format!("M00000008{}", &token[9..]);
        assert_eq!(present(&tokens, &forged), Err("UNAUTHENTICATED"));
        let mut flipped = token.clone();
        flipped.pop();
        flipped.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(present(&tokens, &flipped), Err("UNAUTHENTICATED"));
        assert_eq!(present(&tokens, "M7.00"), Err("UNAUTHENTICATED"));
        let other_dir = tempfile::tempdir().unwrap();
        let other = Tokens::load_or_create(other_dir.path(), &[]).unwrap();
        assert_eq!(present(&other, &token), Err("UNAUTHENTICATED"));
    }
}

//! Request fields parsed the same way by every handler: amounts, ids and holders' signatures, each
//! refused as a 422 problem that names the field.

use std::str::FromStr;

use axum::http::StatusCode;

use crate::amount::Amount;
use crate::certs::{PublicKey, Signature};
use crate::ids::IdParseError;

use super::gateway::HolderSignature;
use super::problem::Problem;

pub fn unprocessable(code: &'static str, detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

/// Yuan with at most two decimals, e.g. "66.60".
pub fn amount_field(name: &str, text: &str) -> Result<Amount, Problem> {
    text.parse::<Amount>()
        .map_err(|error| unprocessable("MALFORMED_AMOUNT", format!("{name}: {error}")))
}

/// A typed id in a body, e.g. `W0000000001`.
pub fn id_field<T: FromStr<Err = IdParseError>>(name: &str, text: &str) -> Result<T, Problem> {
    text.parse()
        .map_err(|error: IdParseError| unprocessable("MALFORMED_ID", format!("{name}: {error}")))
}

/// The holder's public key (66 hex digits), SM2 signature (128 hex digits) and the end of its
/// window.
pub fn holder_signature(
    public_key: &str,
    signature: &str,
    not_after_ms: u64,
) -> Result<HolderSignature, Problem> {
    Ok(HolderSignature {
        public_key: PublicKey::from_hex(public_key).map_err(|error| {
            unprocessable("MALFORMED_PUBLIC_KEY", format!("public_key: {error}"))
        })?,
        signature: Signature::from_hex(signature)
            .map_err(|error| unprocessable("MALFORMED_SIGNATURE", format!("signature: {error}")))?,
        not_after_ms,
    })
}

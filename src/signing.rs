//! What a holder's signature is bound to besides the command it signs: the deployment (whose
//! central bank's ledger), the wallet's operator, and a validity window that closes at
//! `not_after_ms`. A signature made for another deployment, for another operator, or long ago
//! cannot be replayed: the state machine refuses it at the log entry's time with a stable code,
//! whatever the operator tier let through.
//!
//! The bytes a holder signs (`Command::signing_bytes`), little-endian:
//!
//! | bytes | field                                                                    |
//! |-------|--------------------------------------------------------------------------|
//! | 15    | `ECNY-COMMAND-v2`, the domain                                            |
//! | 16    | deployment id: the first 16 bytes of SM3(`ECNY-DEPLOYMENT-v1` ‖ the central bank's compressed SM2 key) |
//! | 2     | the wallet's operator id (u16)                                           |
//! | 8     | `not_after_ms` (u64, Unix milliseconds): the last instant the signature is good |
//! | rest  | the command's body: its tag and fields, without the signature envelope    |
//!
//! SM2 signs them with the GM/T 0009 default user id `1234567812345678`; the signature is r ‖ s,
//! 32 bytes each, big-endian. `docs/signing.md` lists every signed command's body with test
//! vectors that a test checks.
//!
//! A window is at most [`SIGNATURE_WINDOW_MS_MAX`] long at the moment the command is logged, so
//! nothing signed stays good for long; a client that retries after its window closed signs again
//! with a fresh one, and idempotency (which digests the body, not the window) still answers the
//! first result.

use std::fmt;

use crate::certs::{sm3_parts, PublicKey};
use crate::error::CommandError;
use crate::ids::OperatorId;

/// Longest a holder's signature may stay good, counted from the log entry that carries it.
pub const SIGNATURE_WINDOW_MS_MAX: u64 = 10 * 60 * 1000;
/// The window this project's own clients (the CLI, demos, tests) sign for: room for a slow network
/// and a clock a little off, well inside the longest.
pub const SIGNATURE_WINDOW_MS_CLIENT: u64 = 5 * 60 * 1000;
/// Bytes of a deployment id: a truncated SM3, plenty to tell deployments apart.
pub const DEPLOYMENT_ID_BYTES: usize = 16;
const DEPLOYMENT_DOMAIN: &[u8] = b"ECNY-DEPLOYMENT-v1";

/// One deployment of the platform: one genesis, one central bank key.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DeploymentId(pub [u8; DEPLOYMENT_ID_BYTES]);

impl DeploymentId {
    /// The id of the deployment whose genesis installed `central_bank_key`.
    pub fn of_central_bank(central_bank_key: &PublicKey) -> DeploymentId {
        let digest = sm3_parts(&[DEPLOYMENT_DOMAIN, &central_bank_key.0]);
        let mut id = [0u8; DEPLOYMENT_ID_BYTES];
        id.copy_from_slice(&digest[..DEPLOYMENT_ID_BYTES]);
        DeploymentId(id)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Exactly 32 hex digits.
    pub fn from_hex(text: &str) -> Option<DeploymentId> {
        if text.len() != DEPLOYMENT_ID_BYTES * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut id = [0u8; DEPLOYMENT_ID_BYTES];
        for (byte, pair) in id.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(DeploymentId(id))
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeploymentId({})", self.to_hex())
    }
}

/// Where a signature is good: a deployment and the signing wallet's operator. Signers get it
/// from the server (`GET /v1/context` and the wallet's operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SigningContext {
    pub deployment: DeploymentId,
    pub operator: OperatorId,
}

/// Refuses a window that has closed at `now_ms`, or that reaches further than the longest one.
pub fn check_window(not_after_ms: u64, now_ms: u64) -> Result<(), CommandError> {
    if now_ms > not_after_ms {
        return Err(CommandError::SignatureExpired {
            not_after_ms,
            now_ms,
        });
    }
    if not_after_ms - now_ms > SIGNATURE_WINDOW_MS_MAX {
        return Err(CommandError::SignatureWindowTooLong {
            not_after_ms,
            now_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::KeyPair;

    #[test]
    fn a_window_is_good_until_its_end_and_never_longer_than_the_most() {
        let now = 1_795_406_400_000;
        assert_eq!(check_window(now, now), Ok(()));
        assert_eq!(check_window(now + SIGNATURE_WINDOW_MS_MAX, now), Ok(()));
        let late = check_window(now - 1, now).unwrap_err();
        assert_eq!(late.code(), "SIGNATURE_EXPIRED");
        let long = check_window(now + SIGNATURE_WINDOW_MS_MAX + 1, now).unwrap_err();
        assert_eq!(long.code(), "SIGNATURE_WINDOW_TOO_LONG");
    }

    #[test]
    fn deployment_ids_differ_by_central_bank_and_print_as_hex() {
        let one = DeploymentId::of_central_bank(&KeyPair::from_seed(b"cb-1").public_key());
        let two = DeploymentId::of_central_bank(&KeyPair::from_seed(b"cb-2").public_key());
        assert_ne!(one, two);
        assert_eq!(one.to_hex().len(), 32);
        assert_eq!(DeploymentId::from_hex(&one.to_hex()), Some(one));
        assert_eq!(DeploymentId::from_hex(&one.to_hex()[1..]), None);
        assert_eq!(DeploymentId::from_hex(&"g".repeat(32)), None);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::certs::{sm3, KeyPair};
    use crate::channels::acquiring::PaymentChannel;
    use crate::command::Command;
    use crate::ids::{ContractId, IdempotencyKey, MerchantId, SubWalletId, WalletId};
    use crate::programs::contracts::Template;
    use crate::wallet::sub_wallet::SubWalletLimits;

    /// What `docs/signing.md` documents.
    const DOC: &str = include_str!("../docs/signing.md");

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// One of each signed command, as the document's vectors show them.
    fn documented_commands() -> Vec<(&'static str, Command)> {
        let key = IdempotencyKey(0x123e4567_e89b_12d3_a456_426614174000);
        let (w1, w2) = (WalletId(1), WalletId(2));
        let yuan = |text: &str| text.parse::<Amount>().expect("a documented amount");
        let holder = KeyPair::from_seed(b"ecny/docs/holder").public_key();
        vec![
            (
                "Open a wallet at OP01 for 13800138000 with PUBLIC_KEY",
                Command::OpenWallet {
                    operator: OperatorId(1),
                    phone: 13_800_138_000.into(),
                    public_key: holder,
                },
            ),
            (
                "Pay 66.60 from W0000000001 to W0000000002",
                Command::Pay {
                    payer: w1,
                    payee: w2,
                    amount: yuan("66.60"),
                    key,
                    auth: None,
                },
            ),
            (
                "Exchange 500.00 of deposits into W0000000001",
                Command::Exchange {
                    wallet: w1,
                    amount: yuan("500"),
                    key,
                    auth: None,
                },
            ),
            (
                "Deposit 100.00 back from W0000000001",
                Command::DepositBack {
                    wallet: w1,
                    amount: yuan("100"),
                    key,
                    auth: None,
                },
            ),
            (
                "Hold 10.00 for W0000000002 for a minute",
                Command::Hold {
                    payer: w1,
                    payee: w2,
                    amount: yuan("10"),
                    timeout_ms: 60_000,
                    key,
                    auth: None,
                },
            ),
            (
                "Pay order SZ20240501-0007 of M00000001 by its QR",
                Command::PayMerchant {
                    payer: w1,
                    merchant: MerchantId(1),
                    amount: yuan("66.60"),
                    channel: PaymentChannel::DynamicQr,
                    terminal: 0,
                    order: Some("SZ20240501-0007".into()),
                    key,
                    auth: None,
                },
            ),
            (
                "Push a sub-wallet to M00000001",
                Command::OpenSubWallet {
                    wallet: w1,
                    merchant: MerchantId(1),
                    limits: SubWalletLimits {
                        per_payment: yuan("200"),
                        daily: yuan("300"),
                    },
                    auth: None,
                },
            ),
            (
                "Close sub-wallet SW00000001",
                Command::SetSubWallet {
                    sub_wallet: SubWalletId(1),
                    limits: SubWalletLimits {
                        per_payment: yuan("200"),
                        daily: yuan("500"),
                    },
                    open: false,
                    auth: None,
                },
            ),
            (
                "Open a prepaid term of 40 lessons at 25.00",
                Command::OpenContract {
                    payer: w1,
                    payee: w2,
                    template: Template::Prepaid {
                        units: 40,
                        unit_price: yuan("25"),
                    },
                    purpose: "piano, autumn term".into(),
                    key,
                    auth: None,
                },
            ),
            (
                "Confirm 3 lessons of C00000001",
                Command::ConfirmContract {
                    contract: ContractId(1),
                    units: 3,
                    key,
                    auth: None,
                },
            ),
            (
                "Cancel C00000001 as its payer",
                Command::CancelContract {
                    contract: ContractId(1),
                    by_payee: false,
                    auth: None,
                },
            ),
        ]
    }

    /// The document's test-vector section as the implementation computes it.
    fn vectors() -> String {
        let holder = KeyPair::from_seed(b"ecny/docs/holder");
        let central_bank = KeyPair::from_seed(b"ecny/docs/central-bank").public_key();
        let context = SigningContext {
            deployment: DeploymentId::of_central_bank(&central_bank),
            operator: OperatorId(1),
        };
        let not_after_ms = 1_795_406_700_000;
        let mut out = format!(
            "- `SECRET`: `{}`\n- `PUBLIC_KEY`: `{}`\n- `CENTRAL_BANK`: `{}`\n- deployment id: `{}`\n",
            holder.secret_hex(),
            holder.public_key().to_hex(),
            central_bank.to_hex(),
            context.deployment.to_hex(),
        );
        for (title, command) in documented_commands() {
            let mut body = crate::codec::Writer::new();
            command.encode_body(&mut body);
            let bytes = command.signing_bytes(&context, not_after_ms);
            let signature = holder.sign(&bytes);
            holder
                .public_key()
                .verify(&bytes, &signature)
                .expect("the documented signature verifies");
            // Another GM/T 0003 implementation, with the same default user id, agrees.
            let theirs = efficient_sm2::KeyPair::new(&holder.secret_bytes()).expect("a key");
            let their_signature =
                efficient_sm2::Signature::new(&signature.0[..32], &signature.0[32..])
                    .expect("r and s");
            assert!(their_signature.verify(&theirs.public_key(), &bytes).is_ok());
            out.push_str(&format!(
                "\n### {title}\n\n- body: `{}`\n- signing bytes: `{}`\n- SM3 of the signing bytes: `{}`\n- idempotency digest: `{}`\n- signature: `{}`\n",
                hex(&body.bytes),
                hex(&bytes),
                hex(&sm3(&bytes)),
                hex(&command.digest()),
                signature.to_hex(),
            ));
        }
        out
    }

    #[test]
    fn the_documented_signing_bytes_digests_and_signatures_are_the_implementations() {
        let expected = vectors();
        assert!(
            DOC.contains(&expected),
            "docs/signing.md's test vectors should read:\n{expected}"
        );
    }

    #[test]
    fn the_body_leaves_out_the_envelope_and_the_digest_the_window() {
        let holder = KeyPair::from_seed(b"ecny/docs/holder");
        let context = SigningContext {
            deployment: DeploymentId([1; 16]),
            operator: OperatorId(1),
        };
        for (_, command) in documented_commands() {
            let early = command.clone().sign(&holder, &context, 1_000);
            let later = command.clone().sign(&holder, &context, 2_000);
            assert_eq!(early.digest(), command.digest());
            assert_eq!(later.digest(), command.digest());
            let mut body = crate::codec::Writer::new();
            later.encode_body(&mut body);
            let bytes = command.signing_bytes(&context, 2_000);
            assert!(bytes.ends_with(&body.bytes));
            assert_eq!(bytes.len(), 15 + 16 + 2 + 8 + body.bytes.len());
            // Moving the window, the deployment or the operator breaks the signature.
            let Some(auth) = later.auth().copied() else {
                // Opening a wallet carries no envelope: the desk checks its signature itself.
                assert!(matches!(command, Command::OpenWallet { .. }));
                continue;
            };
            let moved = [
                (context, 2_001),
                (
                    SigningContext {
                        deployment: DeploymentId([2; 16]),
                        ..context
                    },
                    2_000,
                ),
                (
                    SigningContext {
                        operator: OperatorId(2),
                        ..context
                    },
                    2_000,
                ),
            ];
            for (other, not_after_ms) in moved {
                let message = command.signing_bytes(&other, not_after_ms);
                assert!(auth.public_key.verify(&message, &auth.signature).is_err());
            }
        }
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

//! Dual offline: hardware wallets that pay each other over NFC with no network on either side.
//!
//! Each hardware wallet is a secure element (SE) running one [`applet::Applet`]; phones only
//! relay APDUs between two SEs ([`protocol::Relay`]). A tap is one power-up of both cards. One
//! payment, payer P and payee Q:
//!
//! 1. SELECT both; each answers with its device id, how many paid records still wait for a
//!    receipt, and its session nonce for this tap. Any such record for the other side is
//!    re-presented first (recovery).
//! 2. Q: REQUEST PAYMENT for P's device and session → a fresh nonce for the amount, signed by Q.
//! 3. P: PAY with the signed challenge and Q's chain → P checks the chain (root → operator →
//!    device, not revoked, not expired), that the challenge is signed by Q for this card and this
//!    tap and agrees with its clock, that it has not paid in this tap, and its caps (per payment,
//!    daily, spent since its last sync); then debits, bumps its counter and logs the signed
//!    record as unacknowledged, all in one SE transaction, and answers the signed record.
//! 4. Q: RECEIVE with the record and P's chain → Q checks the chain, the signature and that
//!    the nonce is its own outstanding (or recently superseded) challenge for P, then credits,
//!    retires the nonce and logs the record in one transaction, and answers a signed receipt.
//! 5. P: ACKNOWLEDGE with the receipt → the record is marked acknowledged.
//!
//! Each SE remembers the operator and peer device certificates whose signatures it verified
//! (serial + SM3 of the exact bytes, bounded, cleared by every new revocation list), so a tap
//! with a known operator costs 5 SM2 verifications instead of 7, and with a known peer 3;
//! validity, issuer and revocation are still checked on every tap.
//!
//! Online, a card syncs: the center hands out a nonce, the card attests over it (ATTEST SYNC:
//! its balance, counters and a digest of every entry it keeps, signed), the center books what
//! the card attests ([`settlement`]), and the operator's confirmation, naming that attestation,
//! clears the card's log and starts a new spending period. A load order names the card's
//! attestation the same way, so a copy of the card cannot apply it.
//!
//! Unload (value back to the online wallet): UNLOAD debits the SE, bumps its unload sequence
//! and keeps the signed unload, all in one SE transaction, until a sync confirmation covers it;
//! READ RECORD on short file 2 reads it again if the phone lost the answer. The center credits
//! the wallet once per (device, unload sequence), never above what it believes the card holds.
//!
//! Tearing invariant: for every cut (any APDU boundary, any persistent write of either SE),
//! once both SEs have met again (or synced), the payment happened exactly once — P debited and
//! Q credited, one record each — or not at all: neither balance changed and no record exists.
//! It holds because P's debit and Q's credit are each atomic, Q credits a nonce at most once
//! (the credit retires it in the same transaction), and P keeps its signed record, with Q's key
//! to check the receipt, until Q's receipt arrives or the center confirms it.

pub mod apdu;
pub mod applet;
pub mod card;
pub mod error;
pub mod issuer;
pub mod link;
pub mod messages;
pub mod nvm;
pub mod profiles;
pub mod protocol;
pub mod state;
pub mod tearing;

#[cfg(test)]
mod testkit;

pub use applet::{Applet, PersistentState, AID};
pub use error::OfflineError;
pub use protocol::{Relay, RelayError};
pub mod settlement;

//! The card as its applet, persistent state and messages all know it: the protocol version,
//! what a secure element can keep, and how long it may stay offline.

use crate::time::DAY_S;

/// The applet protocol's version, recorded in the card's state and answered to SELECT.
pub const PROTOCOL_VERSION: u8 = 3;
/// Records kept until the center confirms them; a full log refuses payments until sync.
pub const RECORDS_MAX: usize = 64;
/// Signed unloads kept until the center confirms them; the phone is online when it unloads,
/// so more than a few waiting means something is wrong and the card stops unloading.
pub const UNLOADS_PENDING_MAX: usize = 4;
/// Operator certificates whose signature the card remembers having verified: every operator
/// in the system fits (e-CNY has about ten).
pub const OPERATOR_CERTS_CACHED_MAX: usize = 16;
/// Peer device certificates remembered, oldest dropped first: a shop's regular customers, a
/// customer's regular shops.
pub const DEVICE_CERTS_CACHED_MAX: usize = 16;
/// Challenges superseded before being paid that a payee still honours once, so a torn tap
/// can finish on the next contact.
pub const RECENT_CHALLENGES_MAX: usize = 8;
/// How far past its last trusted time (a sync confirmation or a revocation list) a phone's or
/// reader's clock may be before the card refuses to transact: a card is offline a week at most,
/// and a clock set forward gains at most a week of daily caps, each day's only once.
pub const OFFLINE_PERIOD_MAX_S: u32 = 7 * DAY_S;
/// Beijing days one offline period can name: the floor's day and the seven after it.
pub const OFFLINE_DAYS_MAX: usize = (OFFLINE_PERIOD_MAX_S / DAY_S) as usize + 1;
/// Two phones' clocks in one tap agree within this: a challenge older or newer is refused.
pub const CHALLENGE_CLOCK_SKEW_S: u32 = 300;

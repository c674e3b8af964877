//! Consumer-presented one-time payment codes: the 18 digits (and the QR of the same digits) a
//! wallet shows at the till, which the merchant's scan gun reads and the operator redeems for the
//! paying wallet.
//!
//! Digit layout, `28 OO BBBBBBBBBBBBBB`:
//!
//! | digits | meaning                                                                  |
//! |--------|--------------------------------------------------------------------------|
//! | 1–2    | `28`, the e-CNY payment-code prefix                                      |
//! | 3–4    | operator id, 00–99, so the POS routes the code without asking anyone      |
//! | 5–18   | body: `wallet × 23_283 + mac`, enciphered over 0..10^14 by the operator   |
//!
//! `mac` is HMAC-SM3 of the wallet id and the 30-second time step under the wallet's own code key,
//! reduced mod 23,283 (the room 10^14 leaves after a 32-bit wallet id). The cipher is a 10-round
//! Feistel network on two 7-digit halves keyed by the operator's mask key, so a merchant sees
//! neither the wallet id nor any link between two codes of one wallet, while the operator recovers
//! the wallet without a table. Codes of the current and previous step redeem.
//!
//! Each code is charged once, ever. The operator only identifies the wallet and the step; the
//! charge is a command in the log (`Command::ChargePaymentCode`), and the registration center
//! keeps each wallet's high-water mark — the last step charged — in its state, snapshotted and
//! replayed: a code of that step or an older one is refused `CODE_REUSED`, across restarts, with
//! one number per wallet instead of a set of every code. So a wallet pays by code at most once a
//! step; its next code is the next step's. A charge also takes no more than its operator's
//! password-free cap (`SetCodePaymentCap`, 1,000 yuan unless set): past it the holder confirms in
//! the app instead. A till's retry of a charge (same Idempotency-Key) answers the first charge
//! while the code is within the stale lookback (five minutes), even after the code expired.
//!
//! Guessing odds: a made-up body deciphers to some wallet and mac; it redeems only if the mac is
//! that wallet's for one of the two live steps, at most 2 in 23,283 (about 1 in 11,600) per try.
//! A terminal may fail 5 times a minute and all of one merchant's terminals together 20 times
//! (28,800 tries a day), so at most about 2.5 expected hits per merchant per day however many
//! terminals it adds, less by the share of wallet ids in use; the analysis center must watch
//! failure rates across merchants, and the password-free cap bounds what each hit can take.
//! A stale match counts as a failure too, once the center refuses it. A merchant that spends its
//! budget waits alone: the limiter keeps each merchant's latest failures apart (20 at most), so no
//! merchant's terminals can crowd out another's.
//!
//! The issuer holds the operator's code secret, so it runs at the operator (which sends a wallet
//! its next codes while online) or in a secure element, never in a phone app: the mask key would
//! unmask every wallet's codes.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use thiserror::Error;

use crate::amount::Amount;
use crate::certs::{sm3, sm3_parts};
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{MerchantId, OperatorId, WalletId};

/// Every code is this many digits, as Chinese wallet payment codes are.
pub const PAYMENT_CODE_DIGITS: usize = 18;
/// The first two digits of every e-CNY payment code.
pub const PAYMENT_CODE_PREFIX: &str = "28";
/// Operators numbered above this cannot be routed in two digits.
pub const PAYMENT_CODE_OPERATOR_MAX: u16 = 99;
/// A code belongs to one time step.
pub const CODE_STEP_S: u64 = 30;
/// Steps a code redeems in: its own and the next (the verifier accepts current and previous).
pub const CODE_VALID_STEPS: u64 = 2;
/// Codes this many steps old or fewer are reported stale rather than unknown.
pub const CODE_STALE_LOOKBACK_STEPS: u64 = 10;
/// Failed redemptions a terminal may make per window before it is refused outright.
pub const GUESS_FAILURES_PER_WINDOW_MAX: usize = 5;
/// Failed redemptions all of one merchant's terminals together may make per window: past it every
/// terminal of that merchant (and no other merchant's) waits out the window.
pub const GUESS_FAILURES_PER_MERCHANT_WINDOW_MAX: usize = 20;
/// The rate-limit window.
pub const GUESS_WINDOW_S: u64 = 60;
/// Merchants tracked at once, each with at most its budget of failures; when every one failed
/// within the window, a merchant not yet tracked is refused (fail closed) until one is quiet. Only
/// an operator onboards merchants, so filling it takes that many merchants guessing at once.
pub const GUESS_MERCHANTS_MAX: usize = 65_536;
/// The password-free cap of an operator that has not set its own: the most one code payment takes
/// without the holder's confirmation.
pub const PASSWORD_FREE_CAP_DEFAULT: Amount = Amount::from_yuan(1_000);

/// The 14-digit body.
const BODY_SPACE: u64 = 100_000_000_000_000;
/// MAC values per wallet: what 10^14 leaves after 2^32 wallet ids.
const MAC_SPACE: u64 = BODY_SPACE / (1 << 32);
const WALLET_SPACE: u64 = 1 << 32;
const FEISTEL_HALF_SPACE: u64 = 10_000_000;
const FEISTEL_ROUNDS: u8 = 10;
/// SM3 compresses 64-byte blocks; HMAC pads its key to one block.
const SM3_BLOCK_BYTES: usize = 64;
const HMAC_IPAD: u8 = 0x36;
const HMAC_OPAD: u8 = 0x5c;

const _: () = assert!(MAC_SPACE == 23_283);
const _: () = assert!(GUESS_FAILURES_PER_WINDOW_MAX <= GUESS_FAILURES_PER_MERCHANT_WINDOW_MAX);
// A merchant's day of guessing: 20 a minute is 28,800 tries, about 2.5 expected hits a day.
const _: () = assert!(GUESS_FAILURES_PER_MERCHANT_WINDOW_MAX as u64 * 1_440 <= 30_000);
const _: () = assert!(WALLET_SPACE * MAC_SPACE <= BODY_SPACE);
const _: () = assert!(FEISTEL_HALF_SPACE * FEISTEL_HALF_SPACE == BODY_SPACE);

/// Why a payment code was refused; `code()` is stable across releases.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    #[error("not an e-CNY payment code: {0}")]
    Malformed(String),
    #[error("payment code is {steps_old} steps ({CODE_STEP_S} s each) old; ask for a fresh one")]
    Stale { steps_old: u64 },
    #[error("payment code was already used; ask for a fresh one")]
    Reused,
    #[error("payment code matches no wallet")]
    Unknown,
    #[error("terminal {terminal} failed too many codes; retry in {retry_after_s} s")]
    RateLimited { terminal: u64, retry_after_s: u64 },
    #[error(
        "operator {0} is above {PAYMENT_CODE_OPERATOR_MAX} and cannot be routed by payment code"
    )]
    OperatorOutOfRange(OperatorId),
}

impl CodeError {
    /// Machine-readable code shown alike by the API, the CLI and web pages.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Malformed(_) => "CODE_MALFORMED",
            CodeError::Stale { .. } => "CODE_STALE",
            CodeError::Reused => "CODE_REUSED",
            CodeError::Unknown => "CODE_UNKNOWN",
            CodeError::RateLimited { .. } => "CODE_RATE_LIMITED",
            CodeError::OperatorOutOfRange(_) => "CODE_OPERATOR_OUT_OF_RANGE",
        }
    }
}

/// HMAC (RFC 2104) over SM3, of the concatenation of `message`.
pub fn hmac_sm3(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; SM3_BLOCK_BYTES];
    if key.len() > SM3_BLOCK_BYTES {
        block[..32].copy_from_slice(&sm3(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key = block.map(|b| b ^ HMAC_IPAD);
    let outer_key = block.map(|b| b ^ HMAC_OPAD);
    let mut inner_parts: Vec<&[u8]> = Vec::with_capacity(message.len() + 1);
    inner_parts.push(&inner_key);
    inner_parts.extend_from_slice(message);
    let inner = sm3_parts(&inner_parts);
    sm3_parts(&[&outer_key, &inner])
}

fn first_u64(digest: &[u8; 32]) -> u64 {
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The operator's secret for payment codes; every wallet's code key is derived from it.
#[derive(Clone)]
pub struct OperatorCodeSecret([u8; 32]);

impl OperatorCodeSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> OperatorCodeSecret {
        OperatorCodeSecret(bytes)
    }
}

/// Never printed: a log line must not leak it.
impl fmt::Debug for OperatorCodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorCodeSecret(..)")
    }
}

/// The keys issuer and verifier share.
#[derive(Clone)]
struct CodeKeys {
    operator: OperatorId,
    secret: [u8; 32],
    mask_key: [u8; 32],
}

impl CodeKeys {
    fn new(operator: OperatorId, secret: &OperatorCodeSecret) -> Result<CodeKeys, CodeError> {
        if operator.0 > PAYMENT_CODE_OPERATOR_MAX {
            return Err(CodeError::OperatorOutOfRange(operator));
        }
        let mask_key = sm3_parts(&[
            b"ecny/payment-code/mask",
            &secret.0,
            &operator.0.to_be_bytes(),
        ]);
        Ok(CodeKeys {
            operator,
            secret: secret.0,
            mask_key,
        })
    }

    /// The wallet's own code key; the operator recomputes it, so nothing per wallet is stored.
    fn wallet_key(&self, wallet: WalletId) -> [u8; 32] {
        sm3_parts(&[
            b"ecny/payment-code/wallet",
            &self.secret,
            &wallet.0.to_be_bytes(),
        ])
    }

    fn mac(&self, wallet: WalletId, step: u64) -> u64 {
        let key = self.wallet_key(wallet);
        let tag = hmac_sm3(
            &key,
            &[
                b"ecny/payment-code/mac",
                &wallet.0.to_be_bytes(),
                &step.to_be_bytes(),
            ],
        );
        first_u64(&tag) % MAC_SPACE
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let tag = hmac_sm3(
            &self.mask_key,
            &[b"ecny/payment-code/round", &[round], &half.to_be_bytes()],
        );
        first_u64(&tag) % FEISTEL_HALF_SPACE
    }

    /// A permutation of 0..10^14: Feistel rounds on two 7-digit halves, adding mod 10^7.
    fn encipher(&self, plain: u64) -> u64 {
        debug_assert!(plain < BODY_SPACE);
        let (mut left, mut right) = (plain / FEISTEL_HALF_SPACE, plain % FEISTEL_HALF_SPACE);
        for round in 0..FEISTEL_ROUNDS {
            let mixed = (left + self.round(round, right)) % FEISTEL_HALF_SPACE;
            (left, right) = (right, mixed);
        }
        left * FEISTEL_HALF_SPACE + right
    }

    fn decipher(&self, body: u64) -> u64 {
        debug_assert!(body < BODY_SPACE);
        let (mut left, mut right) = (body / FEISTEL_HALF_SPACE, body % FEISTEL_HALF_SPACE);
        for round in (0..FEISTEL_ROUNDS).rev() {
            let unmixed =
                (right + FEISTEL_HALF_SPACE - self.round(round, left)) % FEISTEL_HALF_SPACE;
            (left, right) = (unmixed, left);
        }
        left * FEISTEL_HALF_SPACE + right
    }

    fn digits(&self, wallet: WalletId, step: u64) -> String {
        let body = self.encipher(u64::from(wallet.0) * MAC_SPACE + self.mac(wallet, step));
        let digits = format!("{PAYMENT_CODE_PREFIX}{:02}{body:014}", self.operator.0);
        debug_assert_eq!(digits.len(), PAYMENT_CODE_DIGITS);
        digits
    }

    /// The body of a code routed to this operator.
    fn body(&self, code: &str) -> Result<u64, CodeError> {
        if code.len() != PAYMENT_CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            let what = format!("a payment code is {PAYMENT_CODE_DIGITS} digits");
            return Err(CodeError::Malformed(what));
        }
        let (prefix, rest) = code.split_at(PAYMENT_CODE_PREFIX.len());
        if prefix != PAYMENT_CODE_PREFIX {
            let what = format!("prefix {prefix}; e-CNY codes start {PAYMENT_CODE_PREFIX}");
            return Err(CodeError::Malformed(what));
        }
        let (operator, body) = rest.split_at(2);
        if operator != format!("{:02}", self.operator.0) {
            let what = format!(
                "code of operator {operator} sent to operator {}",
                self.operator
            );
            return Err(CodeError::Malformed(what));
        }
        Ok(body.parse().expect("14 ASCII digits fit u64"))
    }
}

/// A code for the wallet to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentCode {
    /// 18 digits, shown under the barcode.
    pub digits: String,
    /// What the QR encodes: the same digits, so barcode, QR and typed digits redeem alike.
    pub qr_text: String,
    /// The first second the code no longer redeems; the wallet refreshes before then.
    pub valid_until_s: u64,
}

/// Makes payment codes for an operator's wallets.
#[derive(Clone)]
pub struct PaymentCodeIssuer {
    keys: CodeKeys,
}

impl PaymentCodeIssuer {
    pub fn new(operator: OperatorId, secret: &OperatorCodeSecret) -> Result<Self, CodeError> {
        Ok(PaymentCodeIssuer {
            keys: CodeKeys::new(operator, secret)?,
        })
    }

    /// The wallet's code for the time step holding `now_s` (Unix seconds, handed in).
    pub fn code_for(&self, wallet: WalletId, now_s: u64) -> PaymentCode {
        let step = now_s / CODE_STEP_S;
        let digits = self.keys.digits(wallet, step);
        PaymentCode {
            qr_text: digits.clone(),
            digits,
            valid_until_s: (step + CODE_VALID_STEPS).saturating_mul(CODE_STEP_S),
        }
    }
}

/// Checks that a code of `step` can still be charged at `now_ms` (entry time): this step's or the
/// previous one's.
pub fn check_live(step: u64, now_ms: u64) -> Result<(), CodeError> {
    let now_step = now_ms / 1000 / CODE_STEP_S;
    match now_step.checked_sub(step) {
        // A code from a step not yet begun was made up, or by a clock far ahead.
        None => Err(CodeError::Unknown),
        Some(steps_old) if steps_old >= CODE_VALID_STEPS => Err(CodeError::Stale { steps_old }),
        Some(_) => Ok(()),
    }
}

/// Each wallet's last charged step: its codes are taken once each, in step order, and an older
/// one never. One number per wallet that ever paid by code, however long the platform runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeMarks {
    last_step: HashMap<WalletId, u64>,
}

impl CodeMarks {
    /// Refuses a code of `step` when the wallet was charged a code of that step or a later one.
    pub fn check(&self, wallet: WalletId, step: u64) -> Result<(), CodeError> {
        match self.last_step.get(&wallet) {
            Some(&last) if step <= last => Err(CodeError::Reused),
            _ => Ok(()),
        }
    }

    /// Records a charge of the wallet's code of `step`, checked first.
    pub fn mark(&mut self, wallet: WalletId, step: u64) {
        debug_assert!(self.check(wallet, step).is_ok());
        self.last_step.insert(wallet, step);
    }

    pub fn len(&self) -> usize {
        self.last_step.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_step.is_empty()
    }

    /// In wallet order, so equal states encode alike.
    pub fn encode(&self, out: &mut Writer) {
        let mut marks: Vec<(WalletId, u64)> =
            self.last_step.iter().map(|(w, s)| (*w, *s)).collect();
        marks.sort_unstable();
        out.u64(marks.len() as u64);
        for (wallet, step) in marks {
            out.u32(wallet.0).u64(step);
        }
    }

    pub fn decode(input: &mut Reader<'_>) -> Result<CodeMarks, DecodeError> {
        let count = input.u64("code mark count")?;
        let mut marks = CodeMarks::default();
        for _ in 0..count {
            let wallet = WalletId(input.u32("code mark wallet")?);
            marks.last_step.insert(wallet, input.u64("code mark step")?);
        }
        Ok(marks)
    }
}

/// A till as the guess limiter knows it: its merchant's number in the high bits, its terminal
/// number at the merchant in the low 16 (`till_key`).
pub fn till_key(merchant: MerchantId, terminal: u16) -> u64 {
    (u64::from(merchant.0) << 16) | u64::from(terminal)
}

/// One merchant's latest failed redemptions, across its terminals: (Unix seconds, terminal).
#[derive(Debug, Default)]
struct MerchantGuesses {
    failures: VecDeque<(u64, u16)>,
}

impl MerchantGuesses {
    /// When the merchant, or this terminal of it, may try again if it has spent its failures
    /// within the window.
    fn reopens_at_s(&self, terminal: u16, now_s: u64) -> Option<u64> {
        let window_start_s = now_s.saturating_sub(GUESS_WINDOW_S);
        let recent = |&&(at_s, _): &&(u64, u16)| at_s > window_start_s;
        let merchant_spent = self.failures.len() >= GUESS_FAILURES_PER_MERCHANT_WINDOW_MAX
            && self.failures.iter().all(|f| recent(&f));
        let merchant = merchant_spent
            .then(|| self.failures.front().map(|f| f.0))
            .flatten();
        let own: Vec<u64> = self
            .failures
            .iter()
            .filter(|f| f.1 == terminal && recent(f))
            .map(|f| f.0)
            .collect();
        let terminal = (own.len() >= GUESS_FAILURES_PER_WINDOW_MAX)
            .then(|| own[own.len() - GUESS_FAILURES_PER_WINDOW_MAX]);
        merchant
            .into_iter()
            .chain(terminal)
            .map(|at_s| at_s.saturating_add(GUESS_WINDOW_S))
            .filter(|reopens_at_s| now_s < *reopens_at_s)
            .max()
    }

    fn quiet(&self, now_s: u64) -> bool {
        let window_start_s = now_s.saturating_sub(GUESS_WINDOW_S);
        self.failures.back().is_none_or(|f| f.0 <= window_start_s)
    }
}

/// Failed redemptions over a sliding window, per terminal and per merchant. A merchant's terminals
/// share one budget, so many terminals guess no faster than a few, and a merchant that spends it
/// waits alone: another merchant's tills are never refused for it.
#[derive(Debug, Default)]
pub struct GuessLimiter {
    merchants: HashMap<u32, MerchantGuesses>,
}

impl GuessLimiter {
    pub fn new() -> GuessLimiter {
        GuessLimiter::default()
    }

    /// Refuses a till (`till_key`) whose terminal failed the maximum within the window, or whose
    /// merchant did, until the window passes.
    pub fn check(&mut self, till: u64, now_s: u64) -> Result<(), CodeError> {
        let limited = |retry_after_s| CodeError::RateLimited {
            terminal: till,
            retry_after_s,
        };
        let (merchant, terminal) = split(till);
        let Some(guesses) = self.merchants.get(&merchant) else {
            return if self.has_room(now_s) {
                Ok(())
            } else {
                Err(limited(GUESS_WINDOW_S))
            };
        };
        match guesses.reopens_at_s(terminal, now_s) {
            Some(reopens_at_s) => Err(limited(reopens_at_s - now_s)),
            None => Ok(()),
        }
    }

    /// Counts a failure against the till and its merchant; only the merchant's latest few are kept.
    pub fn record_failure(&mut self, till: u64, now_s: u64) {
        let (merchant, terminal) = split(till);
        if !self.merchants.contains_key(&merchant) && !self.has_room(now_s) {
            return;
        }
        let failures = &mut self.merchants.entry(merchant).or_default().failures;
        failures.push_back((now_s, terminal));
        if failures.len() > GUESS_FAILURES_PER_MERCHANT_WINDOW_MAX {
            failures.pop_front();
        }
    }

    pub fn merchants_tracked(&self) -> usize {
        self.merchants.len()
    }

    /// Makes room for a new merchant by forgetting those whose failures are all outside the window.
    fn has_room(&mut self, now_s: u64) -> bool {
        if self.merchants.len() < GUESS_MERCHANTS_MAX {
            return true;
        }
        self.merchants.retain(|_, guesses| !guesses.quiet(now_s));
        self.merchants.len() < GUESS_MERCHANTS_MAX
    }
}

fn split(till: u64) -> (u32, u16) {
    ((till >> 16) as u32, till as u16)
}

/// Where a code's mac matched.
enum Match {
    Found { wallet: WalletId, step: u64 },
    Nothing,
}

/// A code read at a till: the wallet it belongs to and the step it was made for. Whether it can
/// still be charged is the registration center's to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeRead {
    pub wallet: WalletId,
    pub step: u64,
}

/// Reads payment codes at the operator: routing, mac and the guess limit. It holds nothing per
/// code: single use is the registration center's.
pub struct PaymentCodeVerifier {
    keys: CodeKeys,
    limiter: GuessLimiter,
    /// Latest time seen; an earlier `now_s` is read as this.
    latest_s: u64,
}

impl PaymentCodeVerifier {
    pub fn new(operator: OperatorId, secret: &OperatorCodeSecret) -> Result<Self, CodeError> {
        Ok(PaymentCodeVerifier {
            keys: CodeKeys::new(operator, secret)?,
            limiter: GuessLimiter::new(),
            latest_s: 0,
        })
    }

    /// The wallet and step of a scanned code, live or up to the stale lookback old (so a till's
    /// retry can still be answered); `now_s` is Unix seconds handed in.
    pub fn identify(
        &mut self,
        code: &str,
        terminal: u64,
        now_s: u64,
    ) -> Result<CodeRead, CodeError> {
        self.latest_s = self.latest_s.max(now_s);
        let now_s = self.latest_s;
        self.limiter.check(terminal, now_s)?;
        let body = self.keys.body(code)?;
        match self.find(body, now_s / CODE_STEP_S) {
            Match::Found { wallet, step } => Ok(CodeRead { wallet, step }),
            Match::Nothing => {
                self.limiter.record_failure(terminal, now_s);
                Err(CodeError::Unknown)
            }
        }
    }

    /// Counts a code the center refused as stale against the terminal that read it.
    pub fn record_failure(&mut self, terminal: u64, now_s: u64) {
        self.limiter
            .record_failure(terminal, now_s.max(self.latest_s));
    }

    /// Deciphers once, then tries the mac for the newest steps first, back to the lookback.
    fn find(&self, body: u64, now_step: u64) -> Match {
        let plain = self.keys.decipher(body);
        if plain >= WALLET_SPACE * MAC_SPACE {
            return Match::Nothing;
        }
        let wallet = WalletId((plain / MAC_SPACE) as u32);
        let mac = plain % MAC_SPACE;
        for steps_old in 0..=CODE_STALE_LOOKBACK_STEPS {
            let Some(step) = now_step.checked_sub(steps_old) else {
                break;
            };
            if self.keys.mac(wallet, step) == mac {
                return Match::Found { wallet, step };
            }
        }
        Match::Nothing
    }

    pub fn limiter(&self) -> &GuessLimiter {
        &self.limiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHOP_TILL: u64 = 7;
    /// 2024-05-01 12:00:00 UTC, the start of a step.
    const NOON_S: u64 = 1_714_564_800;

    fn secret() -> OperatorCodeSecret {
        OperatorCodeSecret::from_bytes([0x5a; 32])
    }

    fn issuer() -> PaymentCodeIssuer {
        PaymentCodeIssuer::new(OperatorId(3), &secret()).unwrap()
    }

    fn verifier() -> PaymentCodeVerifier {
        PaymentCodeVerifier::new(OperatorId(3), &secret()).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sm3_matches_published_vectors() {
        let jefe = hmac_sm3(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex(&jefe),
            "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882"
        );
        let hi = hmac_sm3(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(&hi),
            "51b00d1fb49832bfb01c3ce27848e59f871d9ba938dc563b338ca964755cce70"
        );
        let long_key = hmac_sm3(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&long_key),
            "b4fd844e13342002f0b2e0690ea7741f1497d993a70494cea601e657bedf67a0"
        );
    }

    #[test]
    fn a_code_names_its_wallet_and_step_and_is_charged_once_in_step_order() {
        assert_eq!(NOON_S % CODE_STEP_S, 0);
        let code = issuer().code_for(WalletId(42), NOON_S + 5);
        assert_eq!(code.digits.len(), PAYMENT_CODE_DIGITS);
        assert!(code.digits.starts_with("2803"), "{}", code.digits);
        assert_eq!(code.qr_text, code.digits);
        assert_eq!(code.valid_until_s, NOON_S + 60);
        let step = NOON_S / CODE_STEP_S;
        let read = verifier().identify(&code.digits, SHOP_TILL, NOON_S + 9);
        assert_eq!(
            read,
            Ok(CodeRead {
                wallet: WalletId(42),
                step
            })
        );
        let mut marks = CodeMarks::default();
        assert_eq!(marks.check(WalletId(42), step), Ok(()));
        marks.mark(WalletId(42), step);
        // The same code, or an older one still showing on a phone, never again.
        assert_eq!(marks.check(WalletId(42), step), Err(CodeError::Reused));
        assert_eq!(marks.check(WalletId(42), step - 1), Err(CodeError::Reused));
        assert_eq!(marks.check(WalletId(42), step + 1), Ok(()));
        assert_eq!(marks.check(WalletId(43), step), Ok(()));
        let mut out = Writer::new();
        marks.encode(&mut out);
        assert_eq!(CodeMarks::decode(&mut Reader::new(&out.bytes)), Ok(marks));
    }

    #[test]
    fn a_code_charges_in_its_own_step_and_the_next_then_is_stale() {
        let step = NOON_S / CODE_STEP_S;
        let at_ms = |s: u64| s * 1000;
        assert_eq!(check_live(step, at_ms(NOON_S)), Ok(()));
        assert_eq!(check_live(step, at_ms(NOON_S + 59)), Ok(()));
        assert_eq!(
            check_live(step, at_ms(NOON_S + 60)),
            Err(CodeError::Stale { steps_old: 2 })
        );
        assert_eq!(check_live(step + 1, at_ms(NOON_S)), Err(CodeError::Unknown));
        // A code read within the lookback is still named, so a till's retry can be answered.
        let issuer = issuer();
        let old = issuer.code_for(WalletId(43), NOON_S);
        let read = verifier()
            .identify(&old.digits, SHOP_TILL, NOON_S + 60 * 4)
            .unwrap();
        assert_eq!((read.wallet, read.step), (WalletId(43), step));
        let ancient = issuer.code_for(WalletId(44), NOON_S - 3600);
        let error = verifier().identify(&ancient.digits, 9, NOON_S + 60);
        assert_eq!(error, Err(CodeError::Unknown));
        // A phone whose clock runs a step ahead shows a code the operator does not yet accept.
        let early = issuer.code_for(WalletId(45), NOON_S + 30);
        let error = verifier().identify(&early.digits, 9, NOON_S);
        assert_eq!(error, Err(CodeError::Unknown));
    }

    #[test]
    fn made_up_and_misrouted_codes_are_refused() {
        let mut verifier = verifier();
        for (terminal, guess) in [
            "280300000000000000",
            "280399999999999999",
            "280312345678901234",
        ]
        .iter()
        .enumerate()
        {
            // Three shops' tills.
            let till = till_key(MerchantId(terminal as u32 + 1), 1);
            let error = verifier.identify(guess, till, NOON_S).unwrap_err();
            assert_eq!(error.code(), "CODE_UNKNOWN", "{guess}");
        }
        for bad in [
            "",
            "2803",
            "2803123456789012345",
            "28031234567890123x",
            "１８",
            "290312345678901234",
            "280412345678901234",
        ] {
            let error = verifier.identify(bad, SHOP_TILL, NOON_S).unwrap_err();
            assert_eq!(error.code(), "CODE_MALFORMED", "{bad:?}");
        }
        // Malformed codes are not guesses at a wallet: only the three unknown ones counted.
        assert_eq!(verifier.limiter().merchants_tracked(), 3);
        let error = PaymentCodeIssuer::new(OperatorId(100), &secret())
            .err()
            .unwrap();
        assert_eq!(error.code(), "CODE_OPERATOR_OUT_OF_RANGE");
    }

    #[test]
    fn a_guessing_terminal_is_shut_out_for_the_window_even_with_a_real_code() {
        let issuer = issuer();
        let mut verifier = verifier();
        for guess in 0..GUESS_FAILURES_PER_WINDOW_MAX as u64 {
            let code = format!("2803{:014}", 31_415_926_535 + guess);
            assert_eq!(
                verifier.identify(&code, SHOP_TILL, NOON_S + guess),
                Err(CodeError::Unknown)
            );
        }
        let real = issuer.code_for(WalletId(42), NOON_S + 10);
        let error = verifier
            .identify(&real.digits, SHOP_TILL, NOON_S + 10)
            .unwrap_err();
        assert_eq!(
            error,
            CodeError::RateLimited {
                terminal: SHOP_TILL,
                retry_after_s: 50
            }
        );
        assert_eq!(error.code(), "CODE_RATE_LIMITED");
        let other_till = verifier.identify(&real.digits, SHOP_TILL + 1, NOON_S + 10);
        assert_eq!(other_till.map(|read| read.wallet), Ok(WalletId(42)));
        let fresh = issuer.code_for(WalletId(43), NOON_S + 60);
        let error = verifier
            .identify(&fresh.digits, SHOP_TILL, NOON_S + 59)
            .unwrap_err();
        assert_eq!(error.code(), "CODE_RATE_LIMITED");
        let reopened = verifier.identify(&fresh.digits, SHOP_TILL, NOON_S + 60);
        assert_eq!(reopened.map(|read| read.wallet), Ok(WalletId(43)));
        // A stale code the center refused counts against the till that read it.
        for second in 0..GUESS_FAILURES_PER_WINDOW_MAX as u64 {
            verifier.record_failure(SHOP_TILL + 2, NOON_S + 60 + second);
        }
        let error = verifier
            .identify(&fresh.digits, SHOP_TILL + 2, NOON_S + 70)
            .unwrap_err();
        assert_eq!(error.code(), "CODE_RATE_LIMITED");
    }

    #[test]
    fn codes_differ_by_wallet_and_by_step() {
        let issuer = issuer();
        let a = issuer.code_for(WalletId(42), NOON_S);
        let b = issuer.code_for(WalletId(43), NOON_S);
        let later = issuer.code_for(WalletId(42), NOON_S + 30);
        assert_ne!(a.digits, b.digits);
        assert_ne!(a.digits, later.digits);
        assert_eq!(a, issuer.code_for(WalletId(42), NOON_S + 29));
        let other_operator = PaymentCodeIssuer::new(OperatorId(4), &secret()).unwrap();
        assert_ne!(
            a.digits[4..],
            other_operator.code_for(WalletId(42), NOON_S).digits[4..]
        );
    }

    #[test]
    fn one_merchants_terminals_cannot_lock_out_another_merchant() {
        let mut limiter = GuessLimiter::new();
        let till = |merchant: u32, terminal: u16| till_key(MerchantId(merchant), terminal);
        // Merchant 1's terminals fail as fast as each may, from every terminal number there is.
        for terminal in 0..=u16::MAX {
            limiter.record_failure(till(1, terminal), NOON_S);
        }
        assert_eq!(limiter.merchants_tracked(), 1);
        // Merchant 2's honest till is not locked out by it.
        assert_eq!(limiter.check(till(2, 1), NOON_S + 1), Ok(()));
        // Merchant 1 is: past its own budget every one of its terminals waits out the window.
        let error = limiter.check(till(1, 7), NOON_S + 1).unwrap_err();
        assert_eq!(error.code(), "CODE_RATE_LIMITED");
        assert_eq!(limiter.check(till(1, 7), NOON_S + GUESS_WINDOW_S), Ok(()));
    }

    #[test]
    fn the_merchant_table_makes_room_from_quiet_merchants() {
        let mut limiter = GuessLimiter::new();
        for merchant in 0..GUESS_MERCHANTS_MAX as u32 {
            limiter.record_failure(till_key(MerchantId(merchant), 1), NOON_S);
        }
        assert_eq!(limiter.merchants_tracked(), GUESS_MERCHANTS_MAX);
        let newcomer = till_key(MerchantId(u32::MAX), 1);
        let error = limiter.check(newcomer, NOON_S + 1).unwrap_err();
        assert_eq!(error.code(), "CODE_RATE_LIMITED");
        assert_eq!(limiter.check(newcomer, NOON_S + GUESS_WINDOW_S), Ok(()));
        assert_eq!(limiter.merchants_tracked(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn hmac_sm3_agrees_with_an_independent_implementation(
            key in prop::collection::vec(any::<u8>(), 0..150),
            message in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            prop_assert_eq!(hmac_sm3(&key, &[&message]), gmcrypto_core::hmac::hmac_sm3(&key, &message));
        }

        #[test]
        fn the_body_cipher_is_a_permutation(plain in 0..BODY_SPACE) {
            let keys = CodeKeys::new(OperatorId(3), &secret()).unwrap();
            let body = keys.encipher(plain);
            prop_assert!(body < BODY_SPACE);
            prop_assert_eq!(keys.decipher(body), plain);
        }

        #[test]
        fn every_wallet_redeems_its_code_within_the_window(
            wallet in any::<u32>(),
            now_s in 0..u64::MAX / 2,
            delay_s in 0..CODE_STEP_S,
        ) {
            let code = issuer().code_for(WalletId(wallet), now_s);
            let read = verifier().identify(&code.digits, SHOP_TILL, now_s + delay_s);
            prop_assert_eq!(read, Ok(CodeRead { wallet: WalletId(wallet), step: now_s / CODE_STEP_S }));
        }

        #[test]
        fn arbitrary_input_never_panics(
            text in "(2803)?[0-9]{0,20}|\\PC{0,30}",
            terminal in any::<u64>(),
            now_s in any::<u64>(),
        ) {
            let _ = verifier().identify(&text, terminal, now_s);
        }
    }
}

//! Who is calling. The central bank and each operator's administrator hold a bearer token, kept in
//! `DIR/keys/central-bank.token` and `DIR/keys/OPxx.token` and created on first start.
//!
//! Every other credential is derived, never stored: staff (`ST000001.<mac>`), merchants
//! (`M00000001.<mac>`), terminals (`M00000001-T0002.<mac>`) and holders' sessions
//! (`W0000000001.<expires_s>.<mac>`), each mac an HMAC-SM3 under the server's token secret
//! (`DIR/keys/token-secret`). A staff, merchant or terminal mac covers the credential's
//! generation in the log's `CredentialBook`, so revoking one (a command, durable like any other)
//! bumps the generation and the old token stops working, after a restart too. A holder gets a
//! session by signing a challenge with the wallet's key; money-moving commands carry the holder's
//! signature and need no session.
//!
//! A client address that presents more than a set number of wrong tokens a minute is turned away
//! with 429 until its minute is over, so tokens cannot be guessed at network speed.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::channels::payment_code::hmac_sm3;
use crate::ids::{MerchantId, OperatorId, StaffId, WalletId};
use crate::parties::{CredentialBook, CredentialSubject, Party, StaffRole};

use super::problem::Problem;

/// Random bytes in a token; 32 bytes is beyond guessing.
const TOKEN_BYTES: usize = 32;
/// Wrong tokens one client address may present in a window before it is turned away.
pub const AUTH_FAILURES_PER_MINUTE_DEFAULT: u32 = 20;
/// The window those failures are counted over.
pub const AUTH_FAILURE_WINDOW_MS: u64 = 60_000;
/// Client addresses whose failures are counted apart; past this, new ones share one count.
pub const AUTH_FAILURE_ADDRESSES_MAX: usize = 4_096;
/// How long a holder's session lasts: long enough to use the app, short enough that a leaked
/// one soon dies.
pub const SESSION_TTL_S: u64 = 15 * 60;
/// How long a challenge may wait for the holder's signature.
pub const CHALLENGE_TTL_S: u64 = 120;
/// Used challenges remembered at once, each until it expires: 833 sessions a second for the whole
/// of a challenge's life. Past it new sessions wait (fail closed) rather than forget one.
pub const CHALLENGES_USED_MAX: usize = 100_000;
/// The staff id an operator's administrator token (`DIR/keys/OPxx.token`) stands for.
pub const ADMINISTRATOR_FILE_STAFF: StaffId = StaffId(0);

/// The tokens of every party this server knows.
pub struct Tokens {
    central_bank: String,
    /// Grows when the central bank admits an operator while serving.
    administrators: RwLock<Vec<(OperatorId, String)>>,
    /// `DIR/keys`, where an admitted operator's administrator token is written.
    dir: PathBuf,
    /// Key of every derived token's mac.
    secret: [u8; 32],
    /// The log's staff records and generations, as of the last credential command.
    book: Arc<RwLock<CredentialBook>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    /// Loads each party's token from `DIR/keys`, creating the missing ones.
    pub fn load_or_create(data_dir: &Path, operators: &[OperatorId]) -> std::io::Result<Tokens> {
        let dir = data_dir.join("keys");
        let central_bank = load_or_create(&dir.join("central-bank.token"))?;
        let administrators = operators
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
            administrators: RwLock::new(administrators),
            dir,
            secret,
            book: Arc::new(RwLock::new(CredentialBook::default())),
        })
    }

    /// An operator admitted while serving: its administrator's token is written to
    /// `DIR/keys/OPxx.token` and accepted from now on.
    pub fn admit_administrator(&self, id: OperatorId) -> std::io::Result<()> {
        let token = load_or_create(&self.dir.join(format!("{id}.token")))?;
        let mut administrators = self.administrators.write().expect("administrators lock");
        if !administrators.iter().any(|(known, _)| *known == id) {
            administrators.push((id, token));
        }
        Ok(())
    }

    /// The credential book this server checks tokens against; the gateway refreshes it.
    pub fn book(&self) -> Arc<RwLock<CredentialBook>> {
        self.book.clone()
    }

    fn mac_hex(&self, parts: &[&[u8]]) -> String {
        hex(&hmac_sm3(&self.secret, parts))
    }

    fn subject_name(subject: CredentialSubject) -> String {
        match subject {
            CredentialSubject::Staff(id) => id.to_string(),
            CredentialSubject::Merchant(id) => id.to_string(),
            CredentialSubject::Terminal { merchant, terminal } => {
                format!("{merchant}-T{terminal:04}")
            }
        }
    }

    /// The token of a staff member, merchant or terminal at a generation.
    fn token_at(&self, subject: CredentialSubject, generation: u32) -> String {
        let name = Self::subject_name(subject);
        // Generation 0 keeps the first form, so tokens handed out before any revocation hold.
        let suffix = if generation == 0 {
            String::new()
        } else {
            format!(":g{generation}")
        };
        let mac = self.mac_hex(&[b"ecny-token-v1:", name.as_bytes(), suffix.as_bytes()]);
        format!("{name}.{mac}")
    }

    /// The current bearer token of a staff member, merchant or terminal.
    pub fn token_for(&self, subject: CredentialSubject) -> String {
        let generation = self.book.read().expect("book lock").generation(subject);
        self.token_at(subject, generation)
    }

    /// A holder's session for `wallet` until `expires_s` (Unix seconds).
    pub fn session_for(&self, wallet: WalletId, expires_s: u64) -> String {
        let name = format!("{wallet}.{expires_s}");
        let mac = self.mac_hex(&[b"ecny-session-v1:", name.as_bytes()]);
        format!("{name}.{mac}")
    }

    /// A challenge for `wallet`'s holder to sign, good until `expires_s`.
    pub fn challenge_for(&self, wallet: WalletId, expires_s: u64, nonce: &[u8; 16]) -> String {
        let body = format!("{expires_s}.{}", hex(nonce));
        let mac = self.mac_hex(&[
            b"ecny-challenge-v1:",
            wallet.to_string().as_bytes(),
            b":",
            body.as_bytes(),
        ]);
        format!("{body}.{mac}")
    }

    /// Whether `challenge` is one this server made for `wallet` and still live at `now_s`.
    pub fn check_challenge(
        &self,
        wallet: WalletId,
        challenge: &str,
        now_s: u64,
    ) -> Result<(), AuthFailure> {
        let mut parts = challenge.splitn(3, '.');
        let (Some(expires), Some(nonce), Some(_)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthFailure::ChallengeInvalid);
        };
        let expires_s: u64 = expires.parse().map_err(|_| AuthFailure::ChallengeInvalid)?;
        let nonce = decode_nonce(nonce).ok_or(AuthFailure::ChallengeInvalid)?;
        if !constant_time_eq(challenge, &self.challenge_for(wallet, expires_s, &nonce)) {
            return Err(AuthFailure::ChallengeInvalid);
        }
        if now_s >= expires_s {
            return Err(AuthFailure::ChallengeExpired);
        }
        Ok(())
    }

    /// The party a derived token names, if its mac is right for its current generation.
    fn derived(&self, presented: &str, now_s: u64) -> Result<Party, AuthFailure> {
        let (name, _mac) = presented.split_once('.').ok_or(AuthFailure::UnknownToken)?;
        if name.starts_with('W') {
            return self.session(presented, now_s);
        }
        let book = self.book.read().expect("book lock");
        let (subject, party) = if name.starts_with("ST") {
            let id: StaffId = name.parse().map_err(|_| AuthFailure::UnknownToken)?;
            let record = book.staff(id).map_err(|_| AuthFailure::UnknownToken)?;
            let party = Party::Staff {
                operator: record.operator,
                staff: id,
                role: record.role,
            };
            (CredentialSubject::Staff(id), party)
        } else {
            match name.split_once("-T") {
                None => {
                    let id: MerchantId = name.parse().map_err(|_| AuthFailure::UnknownToken)?;
                    (CredentialSubject::Merchant(id), Party::Merchant(id))
                }
                Some((merchant, terminal)) if terminal.len() == 4 => {
                    let merchant: MerchantId =
                        merchant.parse().map_err(|_| AuthFailure::UnknownToken)?;
                    let terminal: u16 = terminal
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(AuthFailure::UnknownToken)?;
                    (
                        CredentialSubject::Terminal { merchant, terminal },
                        Party::Terminal { merchant, terminal },
                    )
                }
                Some(_) => return Err(AuthFailure::UnknownToken),
            }
        };
        let current = book.generation(subject);
        let revoked_staff = matches!(subject, CredentialSubject::Staff(id)
            if book.staff(id).is_ok_and(|record| record.revoked));
        drop(book);
        // The canonical spelling only, so one party has one token.
        if !revoked_staff && constant_time_eq(presented, &self.token_at(subject, current)) {
            return Ok(party);
        }
        // A token of an earlier generation is known but revoked: say so, and do not count it.
        if (0..current)
            .any(|generation| constant_time_eq(presented, &self.token_at(subject, generation)))
        {
            return Err(AuthFailure::Revoked);
        }
        Err(AuthFailure::UnknownToken)
    }

    fn session(&self, presented: &str, now_s: u64) -> Result<Party, AuthFailure> {
        let mut parts = presented.splitn(3, '.');
        let (Some(wallet), Some(expires), Some(_)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthFailure::UnknownToken);
        };
        let wallet: WalletId = wallet.parse().map_err(|_| AuthFailure::UnknownToken)?;
        let expires_s: u64 = expires.parse().map_err(|_| AuthFailure::UnknownToken)?;
        if !constant_time_eq(presented, &self.session_for(wallet, expires_s)) {
            return Err(AuthFailure::UnknownToken);
        }
        if now_s >= expires_s {
            return Err(AuthFailure::SessionExpired);
        }
        Ok(Party::Holder(wallet))
    }

    /// The caller named by an `Authorization: Bearer` header (no header: anonymous), with wrong
    /// tokens counted against the client's address `peer`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        limiter: &AuthFailureLimiter,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<Party, Problem> {
        // A client over its limit learns nothing more, not even that a token is right.
        limiter
            .check(peer, now)
            .map_err(Problem::too_many_auth_failures)?;
        match self.identify(headers, super::gateway::now_s()) {
            Ok(party) => Ok(party),
            Err(AuthFailure::UnknownToken) => {
                limiter
                    .record_failure(peer, now)
                    .map_err(Problem::too_many_auth_failures)?;
                Err(AuthFailure::UnknownToken.problem())
            }
            Err(failure) => Err(failure.problem()),
        }
    }

    fn identify(&self, headers: &HeaderMap, now_s: u64) -> Result<Party, AuthFailure> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Party::Anonymous);
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(AuthFailure::NoBearerToken)?
            .trim();
        // Every file token is compared, so timing does not tell which party nearly matched.
        let mut found = None;
        if constant_time_eq(presented, &self.central_bank) {
            found = Some(Party::CentralBank);
        }
        for (id, token) in self
            .administrators
            .read()
            .expect("administrators lock")
            .iter()
        {
            if constant_time_eq(presented, token) {
                found = Some(Party::Staff {
                    operator: *id,
                    staff: ADMINISTRATOR_FILE_STAFF,
                    role: StaffRole::Administrator,
                });
            }
        }
        match found {
            Some(party) => Ok(party),
            None => self.derived(presented, now_s),
        }
    }
}

fn decode_nonce(text: &str) -> Option<[u8; 16]> {
    let mut nonce = [0u8; 16];
    if text.len() != 32 {
        return None;
    }
    for (i, byte) in nonce.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(nonce)
}

/// Why a request is not authenticated; only a wrong token counts as a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    NoBearerToken,
    UnknownToken,
    /// A token this server made, since revoked.
    Revoked,
    SessionExpired,
    ChallengeInvalid,
    ChallengeExpired,
    /// Already exchanged for a session.
    ChallengeUsed,
    /// Too many live challenges used at once to remember another.
    ChallengesBusy,
}

impl AuthFailure {
    pub fn problem(self) -> Problem {
        use axum::http::StatusCode;
        match self {
            AuthFailure::NoBearerToken => Problem::unauthenticated(
                "send `Authorization: Bearer <token>`, or no Authorization header at all",
            ),
            AuthFailure::UnknownToken => {
                Problem::unauthenticated("the bearer token is not known here")
            }
            AuthFailure::Revoked => Problem::new(
                StatusCode::UNAUTHORIZED,
                "CREDENTIAL_REVOKED",
                "this token was revoked; ask the operator's administrator (or the merchant, for a terminal) for the new one",
            ),
            AuthFailure::SessionExpired => Problem::new(
                StatusCode::UNAUTHORIZED,
                "SESSION_EXPIRED",
                "the holder's session has expired; sign a new challenge (POST /v1/sessions/challenges)",
            ),
            AuthFailure::ChallengeInvalid => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "CHALLENGE_INVALID",
                "the challenge is not one this server made for this wallet",
            ),
            AuthFailure::ChallengeExpired => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "CHALLENGE_EXPIRED",
                "the challenge has expired; ask for a new one",
            ),
            AuthFailure::ChallengeUsed => Problem::new(
                StatusCode::CONFLICT,
                "CHALLENGE_USED",
                "this challenge already opened a session; ask for a new one",
            ),
            AuthFailure::ChallengesBusy => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CHALLENGES_BUSY",
                "too many sessions are being opened at once; try again in a minute",
            ),
        }
    }
}

/// Challenges already exchanged for a session, each remembered until it expires, so a signed
/// challenge opens one session only. Challenges issued before this server started are refused
/// outright: it did not see them used.
pub struct UsedChallenges {
    started_s: u64,
    used: Mutex<HashMap<[u8; 16], u64>>,
}

impl UsedChallenges {
    pub fn new(started_s: u64) -> UsedChallenges {
        UsedChallenges {
            started_s,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Marks a live, verified challenge used; refuses one used before or issued before start.
    pub fn claim(&self, challenge: &str, now_s: u64) -> Result<(), AuthFailure> {
        let mut parts = challenge.splitn(3, '.');
        let (Some(expires), Some(nonce)) = (parts.next(), parts.next()) else {
            return Err(AuthFailure::ChallengeInvalid);
        };
        let expires_s: u64 = expires.parse().map_err(|_| AuthFailure::ChallengeInvalid)?;
        let nonce = decode_nonce(nonce).ok_or(AuthFailure::ChallengeInvalid)?;
        if expires_s.saturating_sub(CHALLENGE_TTL_S) < self.started_s {
            return Err(AuthFailure::ChallengeExpired);
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.contains_key(&nonce) {
            return Err(AuthFailure::ChallengeUsed);
        }
        if used.len() >= CHALLENGES_USED_MAX {
            used.retain(|_, expires_s| *expires_s > now_s);
            if used.len() >= CHALLENGES_USED_MAX {
                return Err(AuthFailure::ChallengesBusy);
            }
        }
        used.insert(nonce, expires_s);
        Ok(())
    }
}

/// Wrong tokens per client address in fixed one-minute windows. Memory is bounded: at most
/// `AUTH_FAILURE_ADDRESSES_MAX` addresses are counted apart; when the table is full of windows
/// still running, further addresses (and clients whose address is unknown) share one count, so
/// flooding from many addresses neither grows the table nor frees a blocked address.
pub struct AuthFailureLimiter {
    failures_per_window_max: u32,
    windows: Mutex<FailureWindows>,
}

#[derive(Default)]
struct FailureWindows {
    by_address: HashMap<IpAddr, FailureWindow>,
    shared: Option<FailureWindow>,
}

#[derive(Clone, Copy, Debug)]
struct FailureWindow {
    opened_at: Instant,
    failures: u32,
}

impl FailureWindow {
    fn is_over(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.opened_at)
            >= Duration::from_millis(AUTH_FAILURE_WINDOW_MS)
    }

    /// Time until the window is over, in whole seconds as `Retry-After` counts, at least 1.
    fn retry_after(&self, now: Instant) -> Duration {
        let end = self.opened_at + Duration::from_millis(AUTH_FAILURE_WINDOW_MS);
        let left = end.saturating_duration_since(now);
        let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Duration::from_secs(seconds.max(1))
    }
}

/// Where one client's failures are counted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counter {
    Address(IpAddr),
    Shared,
}

impl FailureWindows {
    fn window(&self, counter: Counter) -> Option<&FailureWindow> {
        match counter {
            Counter::Address(ip) => self.by_address.get(&ip),
            Counter::Shared => self.shared.as_ref(),
        }
    }

    fn has_room(&self) -> bool {
        self.by_address.len() < AUTH_FAILURE_ADDRESSES_MAX
    }

    /// The counter of `peer`: its own if it has one or there is room for one. `make_room` drops
    /// finished windows first when the table is full.
    fn counter(&mut self, peer: Option<IpAddr>, now: Instant, make_room: bool) -> Counter {
        let Some(ip) = peer.map(counted_as) else {
            return Counter::Shared;
        };
        if self.by_address.contains_key(&ip) || self.has_room() {
            return Counter::Address(ip);
        }
        if make_room {
            self.by_address.retain(|_, window| !window.is_over(now));
        }
        if self.has_room() {
            Counter::Address(ip)
        } else {
            Counter::Shared
        }
    }
}

impl AuthFailureLimiter {
    pub fn new(failures_per_window_max: u32) -> AuthFailureLimiter {
        assert!(
            failures_per_window_max > 0,
            "a limit of 0 would refuse every typo"
        );
        AuthFailureLimiter {
            failures_per_window_max,
            windows: Mutex::new(FailureWindows::default()),
        }
    }

    fn blocked(&self, window: Option<&FailureWindow>, now: Instant) -> Option<Duration> {
        window
            .filter(|w| !w.is_over(now) && w.failures > self.failures_per_window_max)
            .map(|w| w.retry_after(now))
    }

    /// `Err(retry_after)` while this client is over its limit.
    pub fn check(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut windows = self.windows.lock().expect("limiter lock");
        let mut counter = windows.counter(peer, now, false);
        // Sweeping the table costs a pass over it: only when the shared count would refuse.
        if counter == Counter::Shared && self.blocked(windows.shared.as_ref(), now).is_some() {
            counter = windows.counter(peer, now, true);
        }
        match self.blocked(windows.window(counter), now) {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Counts one wrong token; `Err(retry_after)` when it takes the client over its limit.
    pub fn record_failure(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut windows = self.windows.lock().expect("limiter lock");
        let counter = windows.counter(peer, now, true);
        let fresh = FailureWindow {
            opened_at: now,
            failures: 0,
        };
        let window = match counter {
            Counter::Address(ip) => windows.by_address.entry(ip).or_insert(fresh),
            Counter::Shared => windows.shared.get_or_insert(fresh),
        };
        if window.is_over(now) {
            *window = fresh;
        }
        window.failures = window.failures.saturating_add(1);
        let window = *window;
        debug_assert!(windows.by_address.len() <= AUTH_FAILURE_ADDRESSES_MAX);
        match self.blocked(Some(&window), now) {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Addresses whose failures are counted apart.
    pub fn addresses_counted(&self) -> usize {
        self.windows.lock().expect("limiter lock").by_address.len()
    }
}

/// The key an address is counted under: IPv6 by its /64, which one subscriber usually holds whole.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
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
    crate::keyring::secure_secret(path)?;
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::keyring::write_secret(path, &token)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn present(tokens: &Tokens, token: &str, now_s: u64) -> Result<Party, &'static str> {
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {token}");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).unwrap(),
        );
        tokens
            .identify(&headers, now_s)
            .map_err(|failure| failure.problem().code)
    }

    #[test]
    fn tokens_persist_and_name_their_party() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[OperatorId(1)]).unwrap();
        let again = Tokens::load_or_create(dir.path(), &[OperatorId(1)]).unwrap();
        assert_eq!(
            *tokens.administrators.read().unwrap(),
            *again.administrators.read().unwrap()
        );
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", tokens.administrators.read().unwrap()[0].1);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).unwrap(),
        );
        let limiter = AuthFailureLimiter::new(AUTH_FAILURES_PER_MINUTE_DEFAULT);
        let now = Instant::now();
        assert_eq!(
            tokens.authenticate(&headers, &limiter, None, now),
            Ok(Party::Staff {
                operator: OperatorId(1),
                staff: ADMINISTRATOR_FILE_STAFF,
                role: StaffRole::Administrator
            })
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            tokens
                .authenticate(&headers, &limiter, None, now)
                .unwrap_err()
                .code,
            "UNAUTHENTICATED"
        );
        assert_eq!(
            tokens.authenticate(&HeaderMap::new(), &limiter, None, now),
            Ok(Party::Anonymous)
        );
    }

    #[test]
    fn derived_tokens_name_their_party_survive_a_restart_and_die_when_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[]).unwrap();
        let shop = CredentialSubject::Merchant(MerchantId(7));
        let courier = CredentialSubject::Terminal {
            merchant: MerchantId(7),
            terminal: 2,
        };
        let again = Tokens::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(
            present(&again, &tokens.token_for(shop), 0),
            Ok(Party::Merchant(MerchantId(7)))
        );
        assert_eq!(
            present(&again, &tokens.token_for(courier), 0),
            Ok(Party::Terminal {
                merchant: MerchantId(7),
                terminal: 2
            })
        );
        let token = tokens.token_for(shop);
        let forged = format!("M00000008{}", &token[9..]);
        assert_eq!(present(&tokens, &forged, 0), Err("UNAUTHENTICATED"));
        let mut flipped = token.clone();
        flipped.pop();
        flipped.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(present(&tokens, &flipped, 0), Err("UNAUTHENTICATED"));
        assert_eq!(present(&tokens, "M7.00", 0), Err("UNAUTHENTICATED"));
        let other_dir = tempfile::tempdir().unwrap();
        let other = Tokens::load_or_create(other_dir.path(), &[]).unwrap();
        assert_eq!(present(&other, &token, 0), Err("UNAUTHENTICATED"));
        // Revoking the shop's token replaces it; the old one is known as revoked.
        tokens.book.write().unwrap().revoke(shop).unwrap();
        assert_eq!(present(&tokens, &token, 0), Err("CREDENTIAL_REVOKED"));
        assert_eq!(
            present(&tokens, &tokens.token_for(shop), 0),
            Ok(Party::Merchant(MerchantId(7)))
        );
        // A staff member's token works until revoked, then never again.
        let teller = tokens
            .book
            .write()
            .unwrap()
            .add_staff(OperatorId(1), StaffRole::Teller, "desk 1".into())
            .unwrap();
        let badge = tokens.token_for(CredentialSubject::Staff(teller));
        assert!(matches!(
            present(&tokens, &badge, 0),
            Ok(Party::Staff {
                role: StaffRole::Teller,
                ..
            })
        ));
        tokens
            .book
            .write()
            .unwrap()
            .revoke(CredentialSubject::Staff(teller))
            .unwrap();
        assert_eq!(present(&tokens, &badge, 0), Err("CREDENTIAL_REVOKED"));
        assert_eq!(
            present(
                &tokens,
                &tokens.token_for(CredentialSubject::Staff(teller)),
                0
            ),
            Err("UNAUTHENTICATED")
        );
    }

    #[test]
    fn a_session_names_its_wallet_until_it_expires_and_a_challenge_binds_its_wallet() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[]).unwrap();
        let session = tokens.session_for(WalletId(3), 1_000);
        assert_eq!(
            present(&tokens, &session, 999),
            Ok(Party::Holder(WalletId(3)))
        );
        assert_eq!(present(&tokens, &session, 1_000), Err("SESSION_EXPIRED"));
        let longer = session.replace(".1000.", ".9999.");
        assert_eq!(present(&tokens, &longer, 999), Err("UNAUTHENTICATED"));
        let challenge = tokens.challenge_for(WalletId(3), 500, &[7; 16]);
        assert_eq!(tokens.check_challenge(WalletId(3), &challenge, 499), Ok(()));
        assert_eq!(
            tokens.check_challenge(WalletId(4), &challenge, 499),
            Err(AuthFailure::ChallengeInvalid)
        );
        assert_eq!(
            tokens.check_challenge(WalletId(3), &challenge, 500),
            Err(AuthFailure::ChallengeExpired)
        );
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_is_turned_away_after_its_limit_until_its_minute_is_over() {
        let limiter = AuthFailureLimiter::new(3);
        let start = Instant::now();
        let guesser = ip("203.0.113.7");
        for n in 0..3 {
            let at = start + Duration::from_secs(n);
            assert_eq!(limiter.record_failure(guesser, at), Ok(()));
            assert_eq!(limiter.check(guesser, at), Ok(()));
        }
        let fourth = start + Duration::from_millis(10_500);
        assert_eq!(
            limiter.record_failure(guesser, fourth),
            Err(Duration::from_secs(50))
        );
        assert_eq!(
            limiter.check(guesser, start + Duration::from_secs(59)),
            Err(Duration::from_secs(1))
        );
        // Others are not affected, and the minute ends.
        assert_eq!(limiter.check(ip("203.0.113.8"), fourth), Ok(()));
        let next_minute = start + Duration::from_secs(60);
        assert_eq!(limiter.check(guesser, next_minute), Ok(()));
        assert_eq!(limiter.record_failure(guesser, next_minute), Ok(()));
    }

    #[test]
    fn the_limiter_holds_a_bounded_number_of_addresses() {
        let limiter = AuthFailureLimiter::new(2);
        let start = Instant::now();
        let blocked = ip("198.51.100.1");
        for _ in 0..3 {
            let _ = limiter.record_failure(blocked, start);
        }
        assert!(limiter.check(blocked, start).is_err());
        for n in 0..(AUTH_FAILURE_ADDRESSES_MAX as u32 * 2) {
            let address = Some(IpAddr::V4((0x0a00_0000 + n).into()));
            let _ = limiter.record_failure(address, start + Duration::from_secs(1));
        }
        assert_eq!(limiter.addresses_counted(), AUTH_FAILURE_ADDRESSES_MAX);
        // The flood neither freed the blocked address nor let the overflow guess freely.
        assert!(limiter
            .check(blocked, start + Duration::from_secs(2))
            .is_err());
        assert!(limiter
            .check(ip("10.255.255.255"), start + Duration::from_secs(2))
            .is_err());
        // Finished windows make room again.
        let later = start + Duration::from_secs(120);
        assert_eq!(limiter.record_failure(ip("192.0.2.1"), later), Ok(()));
        assert_eq!(limiter.addresses_counted(), 1);
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_count() {
        let limiter = AuthFailureLimiter::new(1);
        let now = Instant::now();
        assert_eq!(limiter.record_failure(ip("2001:db8::1"), now), Ok(()));
        assert!(limiter.record_failure(ip("2001:db8::2"), now).is_err());
        assert_eq!(limiter.check(ip("2001:db8:0:1::1"), now), Ok(()));
    }

    #[test]
    fn only_wrong_tokens_count_and_a_blocked_address_cannot_use_a_right_one() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load_or_create(dir.path(), &[OperatorId(1)]).unwrap();
        let limiter = AuthFailureLimiter::new(1);
        let now = Instant::now();
        let peer = ip("192.0.2.9");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        for _ in 0..3 {
            let not_bearer = tokens.authenticate(&headers, &limiter, peer, now);
            assert_eq!(not_bearer.unwrap_err().status.as_u16(), 401);
        }
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        let wrong = tokens.authenticate(&headers, &limiter, peer, now);
        assert_eq!(wrong.unwrap_err().status.as_u16(), 401);
        let over = tokens
            .authenticate(&headers, &limiter, peer, now)
            .unwrap_err();
        assert_eq!(
            (over.status.as_u16(), over.code),
            (429, "TOO_MANY_AUTH_FAILURES")
        );
        let bearer = format!("Bearer {}", tokens.administrators.read().unwrap()[0].1);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).unwrap(),
        );
        let right = tokens.authenticate(&headers, &limiter, peer, now);
        assert_eq!(right.unwrap_err().status.as_u16(), 429);
        let elsewhere = tokens.authenticate(&headers, &limiter, ip("192.0.2.10"), now);
        assert!(matches!(elsewhere, Ok(Party::Staff { .. })));
    }
}

//! Who is calling. Each operator and the central bank hold a bearer token, kept in
//! `DIR/keys/OPxx.token` and `DIR/keys/central-bank.token` and created on first start. A wallet
//! holder's authority is not a token: it is the SM2 signature on the command itself.
//!
//! Merchants and their terminals (tills, scan guns, couriers' handhelds) get their tokens when
//! they are onboarded: `M00000001.<mac>` and `M00000001-T0002.<mac>`, the mac an HMAC-SM3 of the
//! name under the server's token secret (`DIR/keys/token-secret`). Nothing per merchant is stored,
//! so a restart loses none; rotating the secret revokes every merchant and terminal token at once.
//!
//! A client address that presents more than a set number of wrong tokens a minute is turned away
//! with 429 until its minute is over, so tokens cannot be guessed at network speed.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::channels::payment_code::hmac_sm3;
use crate::ids::{MerchantId, OperatorId};

use super::problem::Problem;

/// Random bytes in a token; 32 bytes is beyond guessing.
const TOKEN_BYTES: usize = 32;
/// Wrong tokens one client address may present in a window before it is turned away.
pub const AUTH_FAILURES_PER_MINUTE_DEFAULT: u32 = 20;
/// The window those failures are counted over.
pub const AUTH_FAILURE_WINDOW_MS: u64 = 60_000;
/// Client addresses whose failures are counted apart; past this, new ones share one count.
pub const AUTH_FAILURE_ADDRESSES_MAX: usize = 4_096;

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

/// Who a token speaks for, in words: problem details name the caller this way.
impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::CentralBank => f.write_str("the central bank"),
            Caller::Operator(id) => write!(f, "operator {id}"),
            Caller::Merchant(id) => write!(f, "merchant {id}"),
            Caller::Terminal { merchant, terminal } => {
                write!(f, "terminal {terminal} of merchant {merchant}")
            }
        }
    }
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

    /// The caller named by an `Authorization: Bearer` header, with wrong tokens counted against
    /// the client's address `peer`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        limiter: &AuthFailureLimiter,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<Caller, Problem> {
        // A client over its limit learns nothing more, not even that a token is right.
        limiter
            .check(peer, now)
            .map_err(Problem::too_many_auth_failures)?;
        match self.identify(headers) {
            Ok(caller) => Ok(caller),
            Err(AuthFailure::UnknownToken) => {
                limiter
                    .record_failure(peer, now)
                    .map_err(Problem::too_many_auth_failures)?;
                Err(AuthFailure::UnknownToken.problem())
            }
            Err(failure) => Err(failure.problem()),
        }
    }

    fn identify(&self, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(AuthFailure::NoBearerToken)?;
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
        found.ok_or(AuthFailure::UnknownToken)
    }
}

/// Why a request is not authenticated; only a wrong token counts as a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthFailure {
    NoBearerToken,
    UnknownToken,
}

impl AuthFailure {
    fn problem(self) -> Problem {
        match self {
            AuthFailure::NoBearerToken => Problem::unauthenticated(
                "send `Authorization: Bearer <token>` (see DIR/keys/*.token)",
            ),
            AuthFailure::UnknownToken => {
                Problem::unauthenticated("the bearer token is not known here")
            }
        }
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
        let limiter = AuthFailureLimiter::new(AUTH_FAILURES_PER_MINUTE_DEFAULT);
        let now = Instant::now();
        assert_eq!(
            tokens.authenticate(&headers, &limiter, None, now),
            Ok(Caller::Operator(OperatorId(1)))
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
            tokens
                .identify(&headers)
                .map_err(|failure| failure.problem().code)
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
        for _ in 0..3 {
            let missing = tokens.authenticate(&headers, &limiter, peer, now);
            assert_eq!(missing.unwrap_err().status.as_u16(), 401);
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
        let bearer = format!("Bearer {}", tokens.operators[0].1);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer).unwrap(),
        );
        let right = tokens.authenticate(&headers, &limiter, peer, now);
        assert_eq!(right.unwrap_err().status.as_u16(), 429);
        let elsewhere = tokens.authenticate(&headers, &limiter, ip("192.0.2.10"), now);
        assert_eq!(elsewhere, Ok(Caller::Operator(OperatorId(1))));
    }
}

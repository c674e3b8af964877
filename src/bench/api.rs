//! `ecny bench api`: holder-signed payments per second through `ecny serve` over loopback HTTP,
//! from many keep-alive connections, beside the operator tier's own signed rate measured on the
//! same data in the same run, so that the ratio shows what HTTP and per-request commits cost.
//!
//! The client is a few lines of HTTP/1.1 over std's `TcpStream`, one thread per connection: it
//! sends the prepared request bytes and reads the answer, so its own cost per payment is small
//! next to the server's SM2 work.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use thiserror::Error;

use crate::amount::Amount;
use crate::audit::audit;
use crate::certs::{KeyPair, PublicKey};
use crate::command::Command;
use crate::ids::{IdempotencyKey, OperatorId, WalletId};
use crate::platform::{Platform, PlatformError};
use crate::server::{Server, ServerConfig, ServerError};
use crate::signing::{DeploymentId, SigningContext, SIGNATURE_WINDOW_MS_CLIENT};

use super::{percentiles, populate, signed};
use crate::progress::progress;
use crate::rng::SplitMix;

/// Longest response head the client accepts; the server's are a few hundred bytes.
const RESPONSE_HEAD_BYTES_MAX: usize = 8 * 1024;
/// A payment that takes longer than this to answer fails the run rather than hanging it.
const RESPONSE_TIMEOUT_MS: u64 = 30_000;
/// Idempotency keys of the benchmark's payments, apart from the set-up's.
const FIRST_PAYMENT_KEY: u128 = 3 << 100;

pub struct ApiBenchConfig {
    /// Funded class-4 wallets, split between two operators; every one pays and is paid.
    pub wallets: usize,
    /// Holder-signed payments sent over HTTP.
    pub payments: usize,
    /// Keep-alive connections sending them at once.
    pub connections: usize,
    /// Holder-signed transfers through the operator tier without HTTP, for the ratio.
    pub ledger_signed: usize,
}

pub struct ApiBenchReport {
    pub payments: usize,
    pub elapsed: Duration,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub ledger_signed: usize,
    pub ledger_elapsed: Duration,
}

impl ApiBenchReport {
    pub fn payments_per_second(&self) -> f64 {
        self.payments as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ledger_signed_per_second(&self) -> f64 {
        self.ledger_signed as f64 / self.ledger_elapsed.as_secs_f64()
    }

    /// HTTP payments/s over the operator tier's signed transfers/s.
    pub fn ratio(&self) -> f64 {
        self.payments_per_second() / self.ledger_signed_per_second()
    }
}

#[derive(Debug, Error)]
pub enum ApiBenchError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("HTTP client: {0}")]
    Client(#[from] std::io::Error),
    #[error("the server answered a payment with {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("only {done} of {sent} payments were acknowledged")]
    Incomplete { done: usize, sent: usize },
    #[error("the audit after the run is not clean:\n{0}")]
    Audit(String),
}

/// Runs the benchmark in `dir`, which should be empty.
pub fn api(dir: &Path, config: &ApiBenchConfig) -> Result<ApiBenchReport, ApiBenchError> {
    assert!(config.wallets >= 2 && config.connections >= 1);
    // Keys on disk, not seeded: the server loads the operators' keys from `DIR/keys`.
    let (mut platform, _) = Platform::open(dir)?;
    let bar = progress(config.wallets as u64, "deriving holder keys");
    let holders: Vec<KeyPair> = (0..config.wallets)
        .map(|i| {
            bar.inc(1);
            KeyPair::from_seed(format!("bench-api/holder/{i}").as_bytes())
        })
        .collect();
    bar.finish_and_clear();
    let wallets = populate(&mut platform, &holders)?;
    let by_key: HashMap<PublicKey, &KeyPair> =
        holders.iter().map(|key| (key.public_key(), key)).collect();
    let payers: Vec<(WalletId, OperatorId, &KeyPair)> = wallets
        .iter()
        .map(|&(wallet, op)| {
            let key = platform
                .state()
                .wallet_key(wallet)
                .map_err(PlatformError::Refused)?;
            Ok((wallet, op, by_key[key]))
        })
        .collect::<Result<_, PlatformError>>()?;
    let (ledger_signed, ledger_elapsed) = signed(&mut platform, &payers, config.ledger_signed)?;
    let deployment = platform.state().deployment();
    drop(platform);

    let server = Server::start(&ServerConfig {
        data: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })?;
    let not_after_ms = crate::server::gateway::now_ms() + SIGNATURE_WINDOW_MS_CLIENT;
    let window = (deployment, not_after_ms);
    let requests = prepare_requests(server.addr(), &payers, window, config.payments);
    let (mut latencies, elapsed) = drive(server.addr(), requests, config.connections)?;
    server.stop()?;

    let (platform, _) = Platform::open(dir)?;
    let report = audit(platform.state());
    if !report.is_clean() {
        return Err(ApiBenchError::Audit(report.to_string()));
    }
    let (latency_p50, latency_p99) = percentiles(&mut latencies);
    Ok(ApiBenchReport {
        payments: config.payments,
        elapsed,
        latency_p50,
        latency_p99,
        ledger_signed,
        ledger_elapsed,
    })
}

/// Whole HTTP requests, each a payment between two random wallets signed by its payer, on every
/// core: signing is the phones' work, done before the clock starts.
pub(super) fn prepare_requests(
    addr: SocketAddr,
    payers: &[(WalletId, OperatorId, &KeyPair)],
    window: (DeploymentId, u64),
    payments: usize,
) -> Vec<Vec<u8>> {
    let mut random = SplitMix(23);
    let orders: Vec<(usize, WalletId, Amount)> = (0..payments)
        .map(|_| {
            let payer = random.below(payers.len() as u64) as usize;
            let offset = 1 + random.below(payers.len() as u64 - 1) as usize;
            let payee = payers[(payer + offset) % payers.len()].0;
            (payer, payee, Amount::from_fen(1 + random.below(100) as i64))
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = progress(payments as u64, "signing payments");
    let chunk = payments.div_ceil(threads).max(1);
    let requests = std::thread::scope(|scope| {
        let workers: Vec<_> = orders
            .chunks(chunk)
            .enumerate()
            .map(|(part, orders)| {
                let bar = bar.clone();
                scope.spawn(move || {
                    orders
                        .iter()
                        .enumerate()
                        .map(|(n, &(payer, payee, amount))| {
                            let key =
                                IdempotencyKey(FIRST_PAYMENT_KEY + (part * chunk + n) as u128);
                            bar.inc(1);
                            let order = (payee, amount, key);
                            payment_request(addr, payers[payer], order, window)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("signing thread"))
            .collect()
    });
    bar.finish_and_clear();
    requests
}

fn payment_request(
    addr: SocketAddr,
    (payer, op, holder): (WalletId, OperatorId, &KeyPair),
    (payee, amount, key): (WalletId, Amount, IdempotencyKey),
    (deployment, not_after_ms): (DeploymentId, u64),
) -> Vec<u8> {
    let command = Command::Pay {
        payer,
        payee,
        amount,
        key,
        auth: None,
    };
    let context = SigningContext {
        deployment,
        operator: op,
    };
    let signature = holder.sign(&command.signing_bytes(&context, not_after_ms));
    let body = serde_json::json!({
        "payer": payer.to_string(),
        "payee": payee.to_string(),
        "amount": amount.to_string(),
        "public_key": holder.public_key().to_hex(),
        "signature": signature.to_hex(),
        "not_after_ms": not_after_ms,
    })
    .to_string();
    // The holder's signature is the authority: no bearer token.
    format!(
        "POST /v1/payments HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {len}\r\n\r\n{body}",
        len = body.len(),
    )
    .into_bytes()
}

/// Sends the requests from `connections` keep-alive connections at once, each waiting for an
/// answer before its next request; returns every request's latency and the wall time.
pub(super) fn drive(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    connections: usize,
) -> Result<(Vec<Duration>, Duration), ApiBenchError> {
    let connections = connections.min(requests.len()).max(1);
    let sent = requests.len();
    let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); connections];
    for (n, request) in requests.into_iter().enumerate() {
        shares[n % connections].push(request);
    }
    let bar = progress(sent as u64, "payments over HTTP");
    // Everyone connects first; the clock starts when the last one is ready.
    let ready = Barrier::new(connections + 1);
    let (answers, elapsed) = std::thread::scope(|scope| {
        let clients: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let (bar, ready) = (bar.clone(), &ready);
                scope.spawn(move || client(addr, share, ready, &bar))
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        let answers: Vec<_> = clients
            .into_iter()
            .map(|client| client.join().expect("client thread"))
            .collect();
        (answers, started.elapsed())
    });
    bar.finish_and_clear();
    let mut latencies = Vec::with_capacity(sent);
    for answer in answers {
        latencies.extend(answer?);
    }
    if latencies.len() != sent {
        return Err(ApiBenchError::Incomplete {
            done: latencies.len(),
            sent,
        });
    }
    Ok((latencies, elapsed))
}

/// One keep-alive connection sending its share in order. It always reaches the barrier, even
/// when it cannot connect, so that the others are not left waiting.
fn client(
    addr: SocketAddr,
    share: Vec<Vec<u8>>,
    ready: &Barrier,
    bar: &ProgressBar,
) -> Result<Vec<Duration>, ApiBenchError> {
    let connected = TcpStream::connect(addr).and_then(|stream| {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(RESPONSE_TIMEOUT_MS)))?;
        Ok(stream)
    });
    ready.wait();
    let mut stream = connected?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut latencies = Vec::with_capacity(share.len());
    for request in &share {
        let started = Instant::now();
        stream.write_all(request)?;
        let (status, body) = read_response(&mut reader)?;
        latencies.push(started.elapsed());
        if status != 201 {
            return Err(ApiBenchError::Refused {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        bar.inc(1);
    }
    Ok(latencies)
}

/// Status and body of one HTTP/1.1 response with a `Content-Length` (what the server sends).
fn read_response(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    let (mut status, mut length, mut head_bytes) = (None, None, 0);
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        head_bytes += read;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if head_bytes > RESPONSE_HEAD_BYTES_MAX {
            return Err(invalid("response head too long"));
        }
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        if status.is_none() {
            status = text
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok());
            if status.is_none() {
                return Err(invalid("no status line"));
            }
        } else if let Some((name, value)) = text.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| invalid("no Content-Length"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status.expect("set before the head ends"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_read_to_its_length_and_the_next_one_follows() {
        let two = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}\
HTTP/1.1 409 Conflict\r\nContent-Length: 5\r\n\r\nabcde";
        let mut reader = BufReader::new(&two[..]);
        assert_eq!(read_response(&mut reader).unwrap(), (201, b"{}".to_vec()));
        assert_eq!(
            read_response(&mut reader).unwrap(),
            (409, b"abcde".to_vec())
        );
        assert!(read_response(&mut reader).is_err());
    }

    #[test]
    fn a_small_run_pays_every_payment_over_http_and_keeps_the_books() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApiBenchConfig {
            wallets: 40,
            payments: 120,
            connections: 8,
            ledger_signed: 40,
        };
        let report = api(dir.path(), &config).unwrap();
        assert_eq!(report.payments, 120);
        assert!(report.payments_per_second() > 0.0 && report.ratio() > 0.0);
        assert!(report.latency_p50 <= report.latency_p99);
    }
}

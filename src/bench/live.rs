//! `ecny bench live`: time and the analysis center on a running server under load. Recurring
//! payments fall due every few milliseconds while holder-signed payments arrive over HTTP from
//! many connections, and some after the load has stopped, when only the scheduler's entries
//! bring them; each one's lateness is how long after its due time the ledger booked it.
//! Freshness is how long after a transfer's time in the ledger the live analysis center had it
//! in its figures.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::audit::audit;
use crate::certs::KeyPair;
use crate::command::{Command, Outcome};
use crate::ids::{IdempotencyKey, WalletId};
use crate::ledger::{Event, TransferKind};
use crate::platform::{Platform, PlatformError};
use crate::programs::contracts::Template;
use crate::server::{Server, ServerConfig};
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
use crate::time::{system_now_ms, MINUTE_MS};

use super::api::{drive, prepare_requests, ApiBenchError};
use super::populate;
use crate::progress::progress;

/// Idempotency keys of the benchmark's contracts, apart from the payments'.
const FIRST_CONTRACT_KEY: u128 = 5 << 100;
/// How long after the server starts the first recurring payment falls due.
const FIRST_DUE_AFTER_MS: u64 = 3_000;
/// Longest the benchmark waits for the scheduler and the analysis center to catch up.
const CATCH_UP_WAIT_MS: u64 = 60_000;

pub struct LiveBenchConfig {
    /// Funded class-4 wallets, split between two operators.
    pub wallets: usize,
    /// Holder-signed payments sent over HTTP: the load.
    pub payments: usize,
    pub connections: usize,
    /// Recurring payments (one contract each), due one after another across `due_over_ms`.
    pub contracts: usize,
    pub due_over_ms: u64,
}

/// Lateness and freshness, each as milliseconds, sorted.
pub struct LiveBenchReport {
    pub payments: usize,
    pub load: Duration,
    /// Recurring payments due while the load ran, and after it.
    pub late_under_load_ms: Vec<u64>,
    pub late_idle_ms: Vec<u64>,
    pub scheduler_ticks: u64,
    pub freshness_ms: Vec<u64>,
}

/// The value at `percent` of sorted samples (nearest rank); 0 for none.
pub fn percentile(sorted: &[u64], percent: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

pub fn live(dir: &Path, config: &LiveBenchConfig) -> Result<LiveBenchReport, ApiBenchError> {
    assert!(config.wallets >= 2 * config.contracts.max(1) && config.connections >= 1);
    let (mut platform, _) = Platform::open(dir)?;
    let holders: Vec<KeyPair> = (0..config.wallets)
        .map(|i| KeyPair::from_seed(format!("bench-live/holder/{i}").as_bytes()))
        .collect();
    let wallets = populate(&mut platform, &holders)?;
    let key_of = |wallet: WalletId, platform: &Platform| -> Result<&KeyPair, PlatformError> {
        let key = platform
            .state()
            .wallet_key(wallet)
            .map_err(PlatformError::Refused)?;
        Ok(holders
            .iter()
            .find(|holder| holder.public_key() == *key)
            .expect("every wallet's key is a holder's"))
    };
    let payers = wallets
        .iter()
        .map(|&(wallet, op)| Ok((wallet, op, key_of(wallet, &platform)?)))
        .collect::<Result<Vec<_>, PlatformError>>()?;
    let deployment = platform.state().deployment();
    let not_after_ms = system_now_ms() + SIGNATURE_WINDOW_MS_CLIENT;
    // The Host header names no port the server checks; requests are signed before it starts.
    let placeholder = "127.0.0.1:80".parse().expect("an address");
    let requests = prepare_requests(
        placeholder,
        &payers,
        (deployment, not_after_ms),
        config.payments,
    );
    let first_due_ms = system_now_ms() + FIRST_DUE_AFTER_MS;
    let dues = open_contracts(&mut platform, &payers, config, first_due_ms)?;
    drop(platform);

    let server = Server::start(&ServerConfig {
        data: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })?;
    // The set-up's transfers are not the load's: read them, then forget their freshness.
    catch_up(&server)?;
    server.analytics().books().take_freshness_ms();
    let load_started_ms = system_now_ms();
    let (_, load) = drive(server.addr(), requests, config.connections)?;
    let load_ended_ms = load_started_ms + load.as_millis() as u64;
    // Then quiet: what falls due now only the scheduler's entries bring.
    let last_due = dues.iter().map(|(_, due)| *due).max().unwrap_or(0);
    while system_now_ms() <= last_due + 100 {
        std::thread::sleep(Duration::from_millis(50));
    }
    catch_up(&server)?;
    let mut freshness_ms = server.analytics().books().take_freshness_ms();
    let scheduler_ticks = server.due().ticks();
    server.stop()?;

    let (platform, _) = Platform::open(dir)?;
    let report = audit(platform.state());
    if !report.is_clean() {
        return Err(ApiBenchError::Audit(report.to_string()));
    }
    let (mut late_under_load_ms, mut late_idle_ms) = (Vec::new(), Vec::new());
    for (wallet, due) in &dues {
        let account = platform
            .state()
            .wallet(*wallet)
            .map_err(PlatformError::Refused)?
            .account;
        let booked = platform
            .state()
            .ledger()
            .events()
            .iter()
            .find_map(|event| match event {
                Event::Transfer(t)
                    if t.kind == TransferKind::ScheduledPayment && t.debit == account =>
                {
                    Some(t.timestamp_ms)
                }
                _ => None,
            });
        let Some(booked) = booked else {
            return Err(ApiBenchError::Incomplete {
                done: 0,
                sent: dues.len(),
            });
        };
        let late = booked.saturating_sub(*due);
        if *due <= load_ended_ms {
            late_under_load_ms.push(late);
        } else {
            late_idle_ms.push(late);
        }
    }
    late_under_load_ms.sort_unstable();
    late_idle_ms.sort_unstable();
    freshness_ms.sort_unstable();
    Ok(LiveBenchReport {
        payments: config.payments,
        load,
        late_under_load_ms,
        late_idle_ms,
        scheduler_ticks,
        freshness_ms,
    })
}

/// One recurring payment of ¥0.01 from each of the first `contracts` payers to the next wallet,
/// due one after another from `first_due_ms`; each payer's wallet and its due time.
fn open_contracts(
    platform: &mut Platform,
    payers: &[(WalletId, crate::ids::OperatorId, &KeyPair)],
    config: &LiveBenchConfig,
    first_due_ms: u64,
) -> Result<Vec<(WalletId, u64)>, PlatformError> {
    let step_ms = config.due_over_ms / config.contracts.max(1) as u64;
    let bar = progress(config.contracts as u64, "opening recurring payments");
    let mut dues = Vec::with_capacity(config.contracts);
    for i in 0..config.contracts {
        let (payer, op, key) = payers[2 * i];
        let due = first_due_ms + i as u64 * step_ms;
        let command = Command::OpenContract {
            payer,
            payee: payers[2 * i + 1].0,
            template: Template::Recurring {
                amount: crate::amount::Amount::from_fen(1),
                first_ms: due,
                every_ms: 24 * 60 * MINUTE_MS,
                count: 1,
            },
            purpose: "bench wages".into(),
            key: IdempotencyKey(FIRST_CONTRACT_KEY + i as u128),
            auth: None,
        };
        let command = platform.sign_as_holder(command, key, op);
        match platform.one(op, command)? {
            Ok(Outcome::Contract(_)) => dues.push((payer, due)),
            Ok(other) => unreachable!("a contract opened as {other:?}"),
            Err(refused) => return Err(PlatformError::Refused(refused)),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(dues)
}

/// Waits until the analysis center has read every commit the node reported.
fn catch_up(server: &Server) -> Result<(), ApiBenchError> {
    let started = Instant::now();
    while !server.analytics().is_caught_up() {
        if started.elapsed() > Duration::from_millis(CATCH_UP_WAIT_MS) {
            return Err(ApiBenchError::Incomplete {
                done: server.analytics().books().events_read() as usize,
                sent: 0,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

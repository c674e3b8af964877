//! `ecny crash-campaign`: the real `ecny serve` on one data directory, under concurrent
//! holder-signed payments over HTTP, killed with SIGKILL at a random moment, restarted, and
//! checked — round after round, bounded by a count and by time.
//!
//! Each payment is what `ecny wallet pay-wallet` sends: `Command::Pay` signed with the payer's
//! SM2 key for the server's stated context (`GET /v1/context`), an `Idempotency-Key`, and the
//! client's one resend with the same key when a connection fails. Every request ends one of
//! three ways: booked (2xx, a transfer id), refused (a problem: nothing may have moved), or
//! unanswered (the server died first: it may or may not be durable).
//!
//! After every restart, before any new load:
//! - every booked payment of the round before reads back (`GET /v1/transfers/{id}`, as the
//!   central bank) with its payer, payee and amount: acknowledged means durable;
//! - every unanswered request is sent again with the same key and body: the answer is the one
//!   transfer it booked (before the crash or now) or a refusal, and a second resend answers the
//!   same: a retry never books twice;
//! - every wallet's balance equals its opening balance plus what the campaign was told it
//!   received minus what it was told it paid, to the fen: nothing lost, nothing doubled, and a
//!   refusal moved nothing;
//! - the server's audit is clean.
//!
//! At the end the data directory is read without the server (`Node::read_only`): its audit is
//! clean and it holds exactly as many payments as the campaign was told were booked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::audit::audit;
use ecny::bench::populate;
use ecny::certs::{KeyPair, PublicKey};
use ecny::command::Command;
use ecny::ids::{EventId, IdempotencyKey, OperatorId, WalletId};
use ecny::ledger::{Event, TransferKind};
use ecny::node::Node;
use ecny::platform::Platform;
use ecny::rng::SplitMix;
use ecny::state_machine::StateMachine;

use super::client::{answer_field, Failure};
use super::http::Api;
use super::wallet::signed_fields;

/// Wallets paying each other, split between two operators; each opens with 1,000 yuan.
const CAMPAIGN_WALLETS: usize = 128;
/// Client threads paying at once, each on its own keep-alive connection.
const CLIENTS: usize = 8;
/// Largest payment; far under every class-4 limit, so refusals are rare and have a reason.
const PAYMENT_FEN_MAX: u64 = 500;
/// The kill comes this long after the load starts, drawn uniformly.
const KILL_AFTER_MS_MIN: u64 = 10;
const KILL_AFTER_MS_MAX: u64 = 600;
/// Longest a restart may take (a debug build replaying a long log) before the campaign fails.
const START_WAIT_MS: u64 = 120_000;
/// Server output lines kept to show with a failure.
const SERVER_LINES_KEPT: usize = 40;
/// Idempotency keys: the seed in the top 64 bits, then round, client and payment.
const KEY_ROUND_SHIFT: u32 = 40;
const KEY_CLIENT_SHIFT: u32 = 32;

#[derive(Args)]
pub struct CrashCampaignArgs {
    /// Kill-and-restart rounds at most.
    #[arg(long, default_value_t = 100)]
    rounds: u64,
    /// Stop starting rounds after this many seconds.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Seed of the payments, their parties and the moments of the kills.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// New or empty data directory, kept afterwards. Default: a fresh one under the system's
    /// temporary directory, removed when the campaign passes and kept (and named) when it fails.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// A holder with a wallet and the key that signs for it.
struct Holder {
    wallet: WalletId,
    operator: OperatorId,
    key: KeyPair,
}

/// One payment as sent: enough to resend it byte for byte and to book it in the model.
#[derive(Clone)]
struct Sent {
    key: IdempotencyKey,
    payer: WalletId,
    payee: WalletId,
    amount: Amount,
    body: Value,
}

enum Answer {
    Booked(EventId),
    Refused(String),
    Unanswered,
}

/// What the campaign was told, and what it follows from.
#[derive(Default)]
struct Model {
    balances: HashMap<WalletId, i64>,
    booked: HashMap<IdempotencyKey, EventId>,
    /// Payments the set-up made (funding the wallets), before the campaign's own.
    setup_payments: usize,
    acknowledged_checked: usize,
    retried: usize,
    retried_booked: usize,
    refused: usize,
}

impl Model {
    fn book(&mut self, sent: &Sent, transfer: EventId) -> Result<(), Failure> {
        if let Some(earlier) = self.booked.insert(sent.key, transfer) {
            return Err(lost(format!(
                "key {} was answered with transfer {earlier} and then {transfer}",
                sent.key
            )));
        }
        *self.balances.entry(sent.payer).or_default() -= sent.amount.fen();
        *self.balances.entry(sent.payee).or_default() += sent.amount.fen();
        Ok(())
    }
}

fn lost(detail: String) -> Failure {
    Failure::new("CRASH_CAMPAIGN_FAILED", detail)
}

pub fn run(args: CrashCampaignArgs) -> Result<(), Failure> {
    let (dir, scratch) = match &args.data {
        Some(dir) => (dir.clone(), false),
        None => {
            let since_epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            let name = format!("ecny-crash-campaign-{}-{since_epoch}", std::process::id());
            (std::env::temp_dir().join(name), true)
        }
    };
    let result = campaign(&dir, &args);
    match &result {
        // What failed is worth reading: the directory stays.
        Err(_) => eprintln!("data directory kept for inspection: {}", dir.display()),
        Ok(()) if scratch => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(()) => {}
    }
    result
}

fn campaign(dir: &Path, args: &CrashCampaignArgs) -> Result<(), Failure> {
    let (holders, mut model) = set_up(dir, args.seed)?;
    let started = Instant::now();
    let mut random = SplitMix(args.seed);
    let (mut booked, mut unanswered) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    loop {
        let mut server = Served::start(dir)?;
        // The server writes the central bank's token on its first start.
        let central_bank = std::fs::read_to_string(dir.join("keys/central-bank.token"))
            .map_err(|e| Failure::new("TOKEN_MISSING", e.to_string()))?;
        let checked = check_after_restart(
            &server,
            central_bank.trim(),
            (&booked, &unanswered),
            &mut model,
        );
        if let Err(failure) = checked {
            server.kill();
            return Err(server.explain(failure));
        }
        if rounds == args.rounds || started.elapsed() >= Duration::from_secs(args.seconds) {
            server.kill();
            break;
        }
        rounds += 1;
        let kill_after =
            KILL_AFTER_MS_MIN + random.below(KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN + 1);
        let sent = load_and_kill(&mut server, &holders, (args.seed, rounds), kill_after)?;
        (booked, unanswered) = (Vec::new(), Vec::new());
        for (sent, answer) in sent {
            match answer {
                Answer::Booked(transfer) => {
                    model.book(&sent, transfer)?;
                    booked.push((sent, transfer));
                }
                Answer::Refused(_) => model.refused += 1,
                Answer::Unanswered => unanswered.push(sent),
            }
        }
        println!(
            "round {rounds}: killed after {kill_after} ms, {} booked, {} unanswered",
            booked.len(),
            unanswered.len()
        );
    }
    check_at_rest(dir, &model)?;
    println!(
        "{rounds} rounds survived in {:.0} s: {} acknowledged payments checked after restarts, 0 lost; {} unanswered requests retried, {} of them answered with one transfer and the rest refused, none booked twice; {} refused in all; {} payments in the ledger; audit clean",
        started.elapsed().as_secs_f64(),
        model.acknowledged_checked,
        model.retried,
        model.retried_booked,
        model.refused,
        model.booked.len(),
    );
    Ok(())
}

/// Two operators and funded class-4 wallets whose keys the campaign holds; the opening balances.
fn set_up(dir: &Path, seed: u64) -> Result<(Vec<Holder>, Model), Failure> {
    let refused = |e: &dyn std::fmt::Display| Failure::new("SETUP_FAILED", e.to_string());
    let (mut platform, _) = Platform::open(dir).map_err(|e| refused(&e))?;
    if !platform.state().operators().is_empty() {
        return Err(Failure::new(
            "DATA_DIR_NOT_EMPTY",
            format!(
                "{} already holds a ledger; give a new or empty directory",
                dir.display()
            ),
        ));
    }
    let keys: Vec<KeyPair> = (0..CAMPAIGN_WALLETS)
        .map(|i| KeyPair::from_seed(format!("crash-campaign/{seed}/holder/{i}").as_bytes()))
        .collect();
    let opened = populate(&mut platform, &keys).map_err(|e| refused(&e))?;
    let mut by_key: HashMap<PublicKey, KeyPair> = keys
        .into_iter()
        .map(|key| (key.public_key(), key))
        .collect();
    let mut model = Model {
        setup_payments: payments_in(platform.state()),
        ..Model::default()
    };
    let mut holders = Vec::with_capacity(opened.len());
    for (wallet, operator) in opened {
        let state = platform.state();
        let public = state.wallet_key(wallet).map_err(|e| refused(&e))?;
        let key = by_key.remove(public).expect("every wallet has its own key");
        let balance = state.balance(wallet).map_err(|e| refused(&e))?;
        model.balances.insert(wallet, balance.fen());
        holders.push(Holder {
            wallet,
            operator,
            key,
        });
    }
    Ok((holders, model))
}

/// `ecny serve` on the campaign's directory, its output lines kept for a failure's report.
struct Served {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Served {
    fn start(dir: &Path) -> Result<Served, Failure> {
        let exe = std::env::current_exe()
            .map_err(|e| Failure::new("EXECUTABLE_UNKNOWN", e.to_string()))?;
        let mut child = Process::new(exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log",
                "warn",
                "--data",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::new("SERVER_NOT_STARTED", e.to_string()))?;
        let (sender, lines) = mpsc::channel();
        let outputs: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for output in outputs {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_millis(START_WAIT_MS);
        let mut heard = Vec::new();
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| {
                    let _ = child.kill();
                    Failure::new(
                        "SERVER_NOT_STARTED",
                        format!(
                            "ecny serve did not start after a crash:\n{}",
                            heard.join("\n")
                        ),
                    )
                })?;
            if let Some(rest) = line.strip_prefix("ecny serving on ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                return Ok(Served { child, url, lines });
            }
            heard.push(line);
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown path runs, as when power fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The failure with the server's last lines of output.
    fn explain(&self, failure: Failure) -> Failure {
        let heard: Vec<String> = self.lines.try_iter().collect();
        let tail = &heard[heard.len().saturating_sub(SERVER_LINES_KEPT)..];
        if tail.is_empty() {
            return failure;
        }
        Failure::new(
            failure.code,
            format!("{}\nserver output:\n{}", failure.detail, tail.join("\n")),
        )
    }
}

/// Clients pay until the server is killed `kill_after_ms` into the load; every request sent,
/// with how it ended.
fn load_and_kill(
    server: &mut Served,
    holders: &[Holder],
    (seed, round): (u64, u64),
    kill_after_ms: u64,
) -> Result<Vec<(Sent, Answer)>, Failure> {
    // The holder's app: no bearer token, the signature is the authority.
    let api = Api::new(&server.url, "")?;
    let killed = AtomicBool::new(false);
    let sent = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for client in 0..CLIENTS as u64 {
            let (api, killed, sent) = (&api, &killed, &sent);
            scope.spawn(move || {
                let mut random = SplitMix(seed ^ round << 16 ^ client);
                for n in 0u128.. {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = IdempotencyKey(
                        u128::from(seed) << 64
                            | u128::from(round) << KEY_ROUND_SHIFT
                            | u128::from(client) << KEY_CLIENT_SHIFT
                            | n,
                    );
                    let Some(outcome) = pay_once(api, holders, &mut random, key) else {
                        break; // the context could not be read: the server is gone
                    };
                    sent.lock().expect("no client panics").push(outcome);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        server.kill();
        killed.store(true, Ordering::SeqCst);
    });
    Ok(sent.into_inner().expect("no client panics"))
}

/// One payment between two random holders, signed and sent as `ecny wallet pay-wallet` does;
/// `None` when it could not be signed because the server's context did not answer.
fn pay_once(
    api: &Api,
    holders: &[Holder],
    random: &mut SplitMix,
    key: IdempotencyKey,
) -> Option<(Sent, Answer)> {
    let index = random.below(holders.len() as u64) as usize;
    let offset = 1 + random.below(holders.len() as u64 - 1) as usize;
    let payer = &holders[index];
    let payee = holders[(index + offset) % holders.len()].wallet;
    let amount = Amount::from_fen(1 + random.below(PAYMENT_FEN_MAX) as i64);
    let command = Command::Pay {
        payer: payer.wallet,
        payee,
        amount,
        key,
        auth: None,
    };
    let body = json!({
        "payer": payer.wallet.to_string(),
        "payee": payee.to_string(),
        "amount": amount.to_string(),
    });
    let body = signed_fields(api, &payer.key, payer.operator, &command, body).ok()?;
    let sent = Sent {
        key,
        payer: payer.wallet,
        payee,
        amount,
        body,
    };
    let answer = send(api, &sent);
    Some((sent, answer))
}

fn send(api: &Api, sent: &Sent) -> Answer {
    match api.post_keyed("/v1/payments", sent.key, &sent.body) {
        Ok(paid) => match answer_field::<EventId>(&paid, "transfer") {
            Ok(transfer) => Answer::Booked(transfer),
            Err(failure) => Answer::Refused(failure.code),
        },
        Err(failure) if failure.code == "SERVER_UNREACHABLE" => Answer::Unanswered,
        Err(failure) => Answer::Refused(failure.code),
    }
}

/// Everything the previous round was told, checked against the restarted server.
fn check_after_restart(
    server: &Served,
    central_bank: &str,
    (booked, unanswered): (&[(Sent, EventId)], &[Sent]),
    model: &mut Model,
) -> Result<(), Failure> {
    let regulator = Api::new(&server.url, central_bank)?;
    for (sent, transfer) in booked {
        let read = regulator
            .get(&format!("/v1/transfers/{transfer}"))
            .map_err(|f| {
                lost(format!(
                    "acknowledged payment {transfer} (key {}) is missing after the restart: {f}",
                    sent.key
                ))
            })?;
        let expected = json!({
            "transfer": transfer.to_string(),
            "kind": "payment",
            "amount": sent.amount.to_string(),
            "from": sent.payer.to_string(),
            "to": sent.payee.to_string(),
        });
        for (field, value) in expected.as_object().expect("an object") {
            if &read[field] != value {
                return Err(lost(format!(
                    "acknowledged payment {transfer} reads back as {read}, not {expected}"
                )));
            }
        }
        model.acknowledged_checked += 1;
    }
    let holder = Api::new(&server.url, "")?;
    for sent in unanswered {
        let first = send(&holder, sent);
        let again = send(&holder, sent);
        model.retried += 1;
        match (first, again) {
            (Answer::Booked(transfer), Answer::Booked(same)) if transfer == same => {
                model.book(sent, transfer)?;
                model.retried_booked += 1;
            }
            (Answer::Refused(_), Answer::Refused(_)) => model.refused += 1,
            (first, again) => {
                return Err(lost(format!(
                    "the retries of key {} after the restart were answered {}, then {}",
                    sent.key,
                    describe(&first),
                    describe(&again)
                )))
            }
        }
    }
    check_balances(&regulator, model)?;
    let report = regulator.get("/v1/audit")?;
    if report["clean"] != json!(true) {
        return Err(lost(format!(
            "the audit after a restart is not clean: {report}"
        )));
    }
    Ok(())
}

fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Booked(transfer) => format!("transfer {transfer}"),
        Answer::Refused(code) => format!("refused {code}"),
        Answer::Unanswered => "nothing (no answer)".to_string(),
    }
}

/// Every wallet holds its opening balance plus what it was told it received minus what it was
/// told it paid.
fn check_balances(regulator: &Api, model: &Model) -> Result<(), Failure> {
    for (&wallet, &expected) in &model.balances {
        let view = regulator.get(&format!("/v1/wallets/{wallet}"))?;
        let balance: Amount = answer_field(&view, "balance")?;
        if balance.fen() != expected {
            return Err(lost(format!(
                "{wallet} holds {balance}, but the answers it was given add up to {}",
                Amount::from_fen(expected)
            )));
        }
    }
    Ok(())
}

/// The data directory read without the server: the audit, and one payment per booked key.
fn check_at_rest(dir: &Path, model: &Model) -> Result<(), Failure> {
    let (state, _) = Node::read_only(dir).map_err(|e| lost(e.to_string()))?;
    let report = audit(&state);
    if !report.is_clean() {
        return Err(lost(format!("the audit of the data directory:\n{report}")));
    }
    let payments = payments_in(&state) - model.setup_payments;
    if payments != model.booked.len() {
        return Err(lost(format!(
            "the ledger holds {payments} payments; the campaign was told of {}",
            model.booked.len()
        )));
    }
    Ok(())
}

fn payments_in(state: &StateMachine) -> usize {
    state
        .ledger()
        .events()
        .iter()
        .filter(|event| matches!(event, Event::Transfer(t) if t.kind == TransferKind::Payment))
        .count()
}

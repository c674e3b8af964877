//! Crash test: a child process pays under load and is killed with SIGKILL at random moments.
//! After each kill the data directory is opened: every transfer the child heard acknowledged is
//! there exactly as acknowledged, a retry of it returns the same transfer, and the audit holds.
//! Rounds: ECNY_CRASH_ROUNDS (default 6); `ECNY_CRASH_ROUNDS=300 cargo test --release --test crash`
//! is the long run.

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ecny::amount::Amount;
use ecny::audit::audit;
use ecny::bench::holder_key;
use ecny::command::{Command, Outcome};
use ecny::ids::{EventId, IdempotencyKey, OperatorId, WalletId};
use ecny::ledger::Event;
use ecny::node::SystemClock;
use ecny::platform::Platform;
use ecny::rng::SplitMix;

struct Ack {
    payer: WalletId,
    payee: WalletId,
    amount: Amount,
    key: IdempotencyKey,
    event: EventId,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line.strip_prefix("ACK ")?.split(' ');
    let mut next = || fields.next().and_then(|f| f.parse::<u128>().ok());
    Some(Ack {
        payer: WalletId(next()? as u32),
        payee: WalletId(next()? as u32),
        amount: Amount::from_fen(next()? as i64),
        key: IdempotencyKey(next()?),
        event: EventId(next()? as u64),
    })
}

/// Runs the load generator until it has been up for `run_for`, then kills it; returns its acks.
fn run_and_kill(dir: &std::path::Path, seed: u64, run_for: Duration) -> Vec<Ack> {
    let mut child = Process::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["crash-load", "--data"])
        .arg(dir)
        .args(["--seed", &seed.to_string()])
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start load generator");
    let stdout = child.stdout.take().unwrap();
    let (lines, inbox) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Wait until it is up (set-up of a fresh directory can take a moment), then let it run.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match inbox.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.starts_with("READY") => break,
            Ok(_) => {}
            Err(_) if Instant::now() > deadline => panic!("load generator did not start"),
            Err(_) => assert!(
                child.try_wait().unwrap().is_none(),
                "load generator exited early"
            ),
        }
    }
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    reader.join().unwrap();
    inbox
        .try_iter()
        .filter_map(|line| parse_ack(&line))
        .collect()
}

fn check_acks_survived(dir: &std::path::Path, acks: &[Ack]) {
    let (mut platform, _) =
        Platform::open_seeded(dir, "crash", Box::new(SystemClock)).expect("restart after SIGKILL");
    let state = platform.state();
    for ack in acks {
        let Some(Event::Transfer(transfer)) = state.ledger().event(ack.event) else {
            panic!(
                "acknowledged transfer {} is missing after the crash",
                ack.event
            );
        };
        assert_eq!(
            transfer.debit,
            state.wallet(ack.payer).unwrap().account,
            "transfer {}",
            ack.event
        );
        assert_eq!(
            transfer.credit,
            state.wallet(ack.payee).unwrap().account,
            "transfer {}",
            ack.event
        );
        assert_eq!(transfer.amount, ack.amount, "transfer {}", ack.event);
    }
    let report = audit(state);
    assert!(report.is_clean(), "audit after crash:\n{report}");
    // A client that never heard back retries: it gets the same transfer, not a second one.
    let events_before = platform.state().ledger().events().len();
    for ack in acks.iter().rev().take(3) {
        let op: OperatorId = platform.state().wallet(ack.payer).unwrap().operator;
        let registered = *platform.state().wallet_key(ack.payer).unwrap();
        let holder = (0..)
            .map(holder_key)
            .find(|key| key.public_key() == registered)
            .unwrap();
        let retry = Command::Pay {
            payer: ack.payer,
            payee: ack.payee,
            amount: ack.amount,
            key: ack.key,
            auth: None,
        };
        // Signed again, with a fresh window: still the same payment.
        let retry = platform.sign_as_holder(retry, &holder, op);
        let result = platform.one(op, retry).unwrap();
        assert_eq!(result, Ok(Outcome::Transfer(ack.event)));
    }
    assert_eq!(
        platform.state().ledger().events().len(),
        events_before,
        "a retry moved money"
    );
}

#[test]
fn every_acknowledged_transfer_survives_sigkill() {
    let rounds: u64 = std::env::var("ECNY_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let mut random = SplitMix(0xC0FFEE);
    let mut total = 0;
    for round in 1..=rounds {
        let run_for = Duration::from_millis(50 + random.below(400));
        let acks = run_and_kill(dir.path(), round, run_for);
        total += acks.len();
        check_acks_survived(dir.path(), &acks);
    }
    assert!(
        total > 0,
        "the load generator acknowledged nothing in {rounds} rounds"
    );
    eprintln!("{rounds} SIGKILL rounds, {total} acknowledged transfers, all present");
}

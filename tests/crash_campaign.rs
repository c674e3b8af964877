//! The crash campaign with real processes, bounded: `ecny crash-campaign` runs the real
//! `ecny serve` under holder-signed HTTP payments, kills it with SIGKILL at random moments and
//! restarts it on the same data directory; it exits non-zero naming the first acknowledged
//! payment lost, retry booked twice, balance off by a fen or unclean audit. Here: 20 rounds, at
//! most 60 s, then the data directory it leaves is audited again on its own. The long run is
//! `ecny crash-campaign --rounds 500 --seconds 1800` on a release build.

#![cfg(unix)]

use std::process::Command;

use ecny::audit::audit;
use ecny::ledger::{Event, TransferKind};
use ecny::node::Node;

const ROUNDS: u64 = 20;
const SECONDS: u64 = 60;

/// The number before `marker` in the campaign's summary line.
fn figure(summary: &str, marker: &str) -> usize {
    let before = &summary[..summary
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {summary}"))];
    before
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number before {marker:?} in {summary}"))
}

#[test]
fn every_acknowledged_payment_survives_sigkill_of_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["crash-campaign", "--rounds", &ROUNDS.to_string()])
        .args(["--seconds", &SECONDS.to_string(), "--seed", "17", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap();
    eprintln!("{summary}");
    let rounds = figure(summary, "rounds survived");
    let checked = figure(summary, "acknowledged payments checked");
    let booked = figure(summary, "payments in the ledger");
    assert!(summary.contains(", 0 lost;"), "{summary}");
    assert!(summary.contains("none booked twice"), "{summary}");
    // Time bounds the run; a machine this slow still gets several kills in.
    assert!(rounds >= 5 && rounds as u64 <= ROUNDS, "{summary}");
    assert!(checked > 0 && booked >= checked, "{summary}");
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("round "))
            .count(),
        rounds
    );

    // The directory it left, read on its own: clean, and at least every payment it checked.
    let (state, _) = Node::read_only(&data).unwrap();
    let report = audit(&state);
    assert!(report.is_clean(), "{report}");
    let payments = state
        .ledger()
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Transfer(t) if t.kind == TransferKind::Payment))
        .count();
    assert!(payments >= booked, "{payments} payments, {booked} booked");
}

#[test]
fn a_directory_that_already_holds_a_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    ecny::platform::Platform::open(dir.path())
        .unwrap()
        .0
        .create_operator("Jiangnan Commercial Bank")
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["crash-campaign", "--rounds", "1", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[DATA_DIR_NOT_EMPTY]"), "{stderr}");
}

//! The narrated walk-throughs run start to finish on fresh directories, every step behaving as
//! told and the audit clean at the end, in words meant for people: no type's insides (`Some(…)`,
//! `Err(…)`, `WalletId(5)`), no raw epoch times. The data directory they share with `ecny serve`.

use std::path::Path;
use std::process::{Command, Output};

/// Fails on text only a programmer should see: Rust's Debug formatting of enums and structs
/// (`Some(CounterReused)`, `Err(UnknownWallet(WalletId(5)))`, `Side::Payer`, `Foo { a: 1 }`), a
/// card's status word as the card says it (`SW 6A84`), and a time as a bare count of
/// milliseconds.
fn assert_plain(text: &str) {
    for line in text.lines() {
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut rest = line;
        while let Some(start) = rest.find(is_word) {
            let tail = &rest[start..];
            let end = tail.find(|c: char| !is_word(c)).unwrap_or(tail.len());
            let (word, after) = tail.split_at(end);
            let camel = word.starts_with(|c: char| c.is_ascii_uppercase())
                && word.chars().any(|c| c.is_ascii_lowercase())
                && word.chars().skip(1).any(|c| c.is_ascii_uppercase());
            let debug_call = matches!(word, "Some" | "Ok" | "Err") && after.starts_with('(')
                || word == "None" && (after.is_empty() || after.starts_with([')', ',', ' ']));
            let capital = word.starts_with(|c: char| c.is_ascii_uppercase());
            let debug_type = camel && (after.starts_with('(') || after.starts_with(" {"))
                || capital && after.starts_with("::");
            assert!(!(debug_call || debug_type), "internal text in: {line}");
            let status_word = word == "SW"
                && after.len() >= 5
                && after[1..5].bytes().all(|b| b.is_ascii_hexdigit());
            assert!(
                !status_word,
                "a card's status word with no words in: {line}"
            );
            let millis = word.len() >= 12
                && word.bytes().all(|b| b.is_ascii_digit())
                && after.trim_start().starts_with("ms");
            assert!(!millis, "a raw epoch time in: {line}");
            rest = after;
        }
    }
}

#[test]
fn the_plain_text_check_catches_what_it_is_for() {
    for internal in [
        "card 7 blocked (Some(CounterReused))",
        "expected REGISTRATION_NOT_OPEN, got Err(UnknownWallet(WalletId(5)))",
        "refused by the payer's secure element with SW 6A84 (not enough memory space)",
        "registration is open from 1795406400000 ms",
        "step Side::Payer",
        "got None",
        "TornTail { offset: 5 }",
    ] {
        let caught = std::panic::catch_unwind(|| assert_plain(internal));
        assert!(caught.is_err(), "{internal:?} passed as plain");
    }
    assert_plain("card D000000000000001 blocked: a cloned secure element [OFFLINE_COUNTER_REUSED]");
    assert_plain("W0000000005 pays ¥66.60 (the packet pays) at 2026-12-13 12:00:00 Beijing time");
}

#[test]
fn the_online_demo_tells_its_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    ecny::demo::run(dir.path(), &mut |line| lines.push(line.to_string())).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("LIMIT_SINGLE_PAYMENT"), "{text}");
    for code in [
        "ORDER_ALREADY_PAID",
        "REFUND_EXCEEDS_PAYMENT",
        "SUB_WALLET_CLOSED",
    ] {
        assert!(text.contains(code), "{code}: {text}");
    }
    assert!(
        text.contains("gross 232.00, refunds 20.00, net 212.00"),
        "{text}"
    );
    assert!(text.contains("every invariant holds"), "{text}");
    assert!(text.contains("identical"), "{text}");
    assert_plain(&text);
}

#[test]
fn the_offline_demo_tells_its_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    ecny::demo::offline::run(dir.path(), &mut |line| lines.push(line.to_string())).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("OFFLINE_DAILY_CAP"), "{text}");
    assert!(text.contains("CERT_REVOKED"), "{text}");
    assert!(text.contains("1 device(s) blocked"), "{text}");
    assert!(text.contains("every invariant holds"), "{text}");
    assert!(
        text.contains("blocked: two different records signed with one counter: a cloned secure element [OFFLINE_COUNTER_REUSED]"),
        "{text}"
    );
    assert!(
        text.contains("the card's offline spending limit for today is used up [OFFLINE_DAILY_CAP]"),
        "{text}"
    );
    assert_plain(&text);
}

#[test]
fn the_campaign_demo_speaks_plainly_and_refuses_a_size_it_cannot_tell() {
    let dir = tempfile::tempdir().unwrap();
    let size = ecny::demo::campaign::CampaignDemoSize {
        registrants: 400,
        packets: 40,
    };
    let mut lines = Vec::new();
    ecny::demo::campaign::run(&dir.path().join("small"), &size, &mut |line| {
        lines.push(line.to_string())
    })
    .unwrap();
    let text = lines.join("\n");
    assert!(text.contains("REGISTRATION_NOT_OPEN"), "{text}");
    assert!(text.contains("Beijing time"), "{text}");
    assert_plain(&text);
    let none = ecny(
        dir.path(),
        &["campaign", "demo", "--data", "none", "--registrants", "0"],
    );
    let said = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success());
    assert!(
        said.starts_with("error: --registrants must be at least 2"),
        "{said}"
    );
    assert_plain(&said);
}

fn ecny(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecny"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn demo_serve_and_audit_share_one_default_data_directory() {
    let cwd = tempfile::tempdir().unwrap();
    // `ecny serve` on a new directory says it has no operators, and how to get some.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .current_dir(cwd.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "warn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(serve.stderr.take().unwrap());
    let mut warning = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut warning).unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(
        warning.starts_with("warning: ecny-data holds no operators")
            && warning.contains("run `ecny demo` to fill the directory with two funded operators"),
        "{warning}"
    );
    // The demo then fills that directory (it holds nothing of value), and audit reads it.
    let demo = ecny(cwd.path(), &["demo"]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(String::from_utf8_lossy(&demo.stdout).contains("The data directory ecny-data holds"));
    let audit = ecny(cwd.path(), &["audit"]);
    assert!(audit.status.success());
    assert!(String::from_utf8_lossy(&audit.stdout).contains("OP01"));
    // A directory with operators that no demo made is never cleared.
    std::fs::remove_file(cwd.path().join("ecny-data/.ecny-demo")).unwrap();
    let refused = ecny(cwd.path(), &["demo"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("holds a ledger with operators that no demo made"),
        "{said}"
    );
    assert!(cwd.path().join("ecny-data/log").exists());
}

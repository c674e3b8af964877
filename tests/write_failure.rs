//! A disk that refuses a write (full, or a file-size limit) under a running `ecny serve`: the node
//! says why in its log, stops saying it is ready, shows nothing that is not durable, and after a
//! restart every acknowledged wallet is there and the refused one is not.
//!
//! The real binary runs under a file-size limit (`RLIMIT_FSIZE`) a few kilobytes above its log:
//! the kernel then refuses the write that crosses it (`EFBIG`), as a full disk refuses with
//! `ENOSPC`, on the same path through the log.

#![cfg(unix)]

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ecny::certs::KeyPair;
use ecny::ids::WalletId;
use ecny::platform::Platform;
use serde_json::json;

/// Room left in the log's file before the kernel refuses: a few dozen wallets.
const HEADROOM_BYTES: u64 = 16 * 1024;
const START_WAIT_MS: u64 = 15_000;
/// Wallets opened at most before the limit must have been hit.
const WALLETS_TRIED_MAX: u32 = 2_000;

fn largest_log_segment(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .max()
        .unwrap()
}

/// `ecny serve` with every file it writes limited to `limit_bytes`; its output lines go to the
/// returned channel.
fn serve_limited(dir: &Path, limit_bytes: u64) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecny"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "info",
            "--data",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: limit_bytes,
                rlim_max: limit_bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A write past the limit then fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut server = command.spawn().unwrap();
    let (lines, heard) = mpsc::channel();
    for stream in [
        Box::new(server.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(server.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    let banner = loop {
        let line = heard
            .recv_timeout(Duration::from_millis(START_WAIT_MS))
            .expect("ecny serve prints its banner");
        if let Some(rest) = line.strip_prefix("ecny serving on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    (server, banner.parse().unwrap(), heard)
}

#[test]
fn a_refused_write_is_logged_makes_the_node_unready_and_loses_only_the_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut platform, _) = Platform::open(dir.path()).unwrap();
        served::two_funded_operators(&mut platform);
    }
    let limit = largest_log_segment(dir.path()) + HEADROOM_BYTES;
    let (mut server, addr, output) = serve_limited(dir.path(), limit);
    // The administrator registers a teller, who opens the wallets at the counter.
    let admin = std::fs::read_to_string(dir.path().join("keys/OP01.token")).unwrap();
    let admin = format!("Bearer {}", admin.trim());
    let teller = http_client::send(
        addr,
        "POST",
        "/v1/operators/OP01/staff",
        &[
            ("Authorization", admin.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"role":"teller","label":"counter 1"}"#,
    )
    .ok(201);
    let bearer = format!("Bearer {}", teller["token"].as_str().unwrap());
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];

    let mut acknowledged: Vec<(WalletId, u64)> = Vec::new();
    let refused_phone = loop {
        let phone = 13_900_000_000 + acknowledged.len() as u64;
        assert!(
            acknowledged.len() < WALLETS_TRIED_MAX as usize,
            "the file-size limit was never hit"
        );
        let body = json!({
            "phone": phone.to_string(),
            "public_key": KeyPair::generate().public_key().to_hex(),
        });
        let reply = http_client::send(
            addr,
            "POST",
            "/v1/operators/OP01/wallets",
            &auth,
            body.to_string().as_bytes(),
        );
        if reply.status == 201 {
            let wallet = reply.json()["wallet"].as_str().unwrap().parse().unwrap();
            acknowledged.push((wallet, phone));
            continue;
        }
        reply.problem(503, "NODE_POISONED");
        break phone;
    };
    assert!(!acknowledged.is_empty());

    // Not ready, and no read shows what memory holds beyond the disk.
    http_client::send(addr, "GET", "/readyz", &[], b"").problem(503, "NOT_READY");
    let (last, _) = *acknowledged.last().unwrap();
    let next = WalletId(last.0 + 1);
    http_client::send(addr, "GET", &format!("/v1/wallets/{next}"), &auth, b"")
        .problem(503, "NODE_POISONED");
    http_client::send(addr, "GET", &format!("/v1/wallets/{last}"), &auth, b"")
        .problem(503, "NODE_POISONED");

    server.kill().unwrap();
    server.wait().unwrap();
    let said: Vec<String> = output.try_iter().collect();
    assert!(
        said.iter()
            .any(|line| line.contains("a write failed") && line.contains("File too large")),
        "the cause of the failure is in the server's log:\n{}",
        said.join("\n")
    );

    // After a restart (no limit): every acknowledged wallet, not the refused one, the audit clean.
    let (platform, _) = Platform::open(dir.path()).unwrap();
    for (wallet, phone) in &acknowledged {
        assert_eq!(platform.wallet_by_phone(*phone, None).unwrap(), *wallet);
    }
    assert!(platform.wallet_by_phone(refused_phone, None).is_err());
    let state = platform.state();
    assert!(state.wallet(next).is_err());
    assert!(ecny::audit::audit(state).is_clean());
}

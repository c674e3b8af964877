//! `ecny serve` as a service manager runs it: SIGTERM stops it cleanly, with exit status 0, and
//! the data directory opens again with the same state.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STOP_WAIT_MS: u64 = 15_000;

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Log lines and the banner share standard output; keep draining it so the server never
    // blocks on a full pipe.
    let (banner, heard) = std::sync::mpsc::channel();
    let stdout = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("ecny serving on ") {
                let _ = banner.send(line);
            }
        }
    });
    let line = heard
        .recv_timeout(Duration::from_millis(STOP_WAIT_MS))
        .unwrap();
    assert!(
        line.starts_with("ecny serving on http://127.0.0.1:"),
        "{line}"
    );
    let sent = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_millis(STOP_WAIT_MS),
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let (platform, _) = ecny::platform::Platform::open(dir.path()).unwrap();
    assert!(ecny::audit::audit(platform.state()).is_clean());
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_ecny"))
        .arg("demo")
        .arg("--data")
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(demo.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    // The reader is gone (as `| head -1` would be); the demo's next lines have nowhere to go.
    let output = demo.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}

//! Time on a running server: a firm's monthly wages (a recurring contract) and a buyer's escrow
//! happen at their time with no other traffic — the scheduler submits an empty entry when they
//! fall due — exactly once, and the same when the log is replayed. First with a clock the test
//! moves (the server in this process), then against the real `ecny serve` on the machine's clock,
//! the contract opened over HTTP. Each ends with the audit.

#[path = "support/banked.rs"]
mod banked;
#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::command::{Command, Outcome};
use ecny::ids::{ContractId, IdempotencyKey, WalletId};
use ecny::node::Node;
use ecny::platform::Platform;
use ecny::programs::contracts::Template;
use ecny::server::{Server, ServerConfig};
use ecny::time::{SharedClock, DAY_MS, HOUR_MS, MINUTE_MS};
use ecny::wallet::WalletClass;

use banked::{banked, Person};
use http_client::send;

/// 2026-11-23 12:00 Beijing time.
const START_MS: u64 = 1_795_406_400_000;
/// Longest a test waits for what it expects before it gives up (a hang guard, not a timing).
const WAIT_MS_MAX: u64 = 30_000;

/// The tests run one at a time: a server process spawned while the other test opens its data
/// directory would hold that directory's lock for a moment (a forked child shares it until it
/// executes).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn yuan(text: &str) -> Amount {
    text.parse().unwrap()
}

/// A holder-signed contract opened through the platform.
fn open_contract(
    platform: &mut Platform,
    payer: &Person,
    payee: WalletId,
    template: Template,
    key: u128,
) -> ContractId {
    let command = Command::OpenContract {
        payer: payer.wallet,
        payee,
        template,
        purpose: "wages".into(),
        key: IdempotencyKey(key),
        auth: None,
    };
    let command = platform.sign_as_holder(command, &payer.key, payer.operator);
    match platform.one(payer.operator, command).unwrap() {
        Ok(Outcome::Contract(id)) => id,
        other => panic!("{other:?}"),
    }
}

/// GET as the central bank.
fn read(addr: SocketAddr, central_bank: &str, path: &str) -> Value {
    let bearer = format!("Bearer {central_bank}");
    send(addr, "GET", path, &[("Authorization", &bearer)], b"").ok(200)
}

/// Reads `path` until `done` holds of it; what it read last.
fn wait_for(addr: SocketAddr, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let value = read(addr, token, path);
        if done(&value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_millis(WAIT_MS_MAX),
            "{path} never got there: {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn balance(addr: SocketAddr, token: &str, wallet: WalletId) -> String {
    read(addr, token, &format!("/v1/wallets/{wallet}"))["balance"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn wages_and_an_escrow_deadline_happen_at_their_time_with_no_other_traffic() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (clock, time) = SharedClock::manual(START_MS);
    let (mut platform, _) = Platform::open_with_clock(dir.path(), Box::new(clock.clone())).unwrap();
    let [jiangnan, lakeside] = served::two_funded_operators(&mut platform);
    let firm = banked(
        &mut platform,
        jiangnan,
        13_800_000_001,
        WalletClass::Two,
        "20000",
    );
    let worker = banked(
        &mut platform,
        lakeside,
        13_900_000_002,
        WalletClass::Two,
        "1",
    );
    let buyer = banked(
        &mut platform,
        lakeside,
        13_900_000_003,
        WalletClass::Two,
        "1000",
    );
    let payday = START_MS + HOUR_MS;
    let wages = Template::Recurring {
        amount: yuan("6000"),
        first_ms: payday,
        every_ms: 30 * DAY_MS,
        count: 2,
    };
    let wages = open_contract(&mut platform, &firm, worker.wallet, wages, 1);
    let deadline = START_MS + 2 * HOUR_MS;
    let escrow = Template::Escrow {
        amount: yuan("300"),
        deadline_ms: deadline,
    };
    let escrow = open_contract(&mut platform, &buyer, firm.wallet, escrow, 2);
    let entries_before = platform.state().entries_applied();
    drop(platform);

    let server = Server::start(&ServerConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        clock,
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let bank = std::fs::read_to_string(dir.path().join("keys/central-bank.token")).unwrap();
    let wages_path = format!("/v1/contracts/{wages}");
    let escrow_path = format!("/v1/contracts/{escrow}");

    // A minute before payday nothing is due: nothing moves.
    time.store(payday - MINUTE_MS, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(balance(addr, &bank, worker.wallet), "1.00");
    assert_eq!(read(addr, &bank, &wages_path)["delivered"], 0);

    // Payday: the wage is paid with no request but the reads, and only once.
    time.store(payday, Ordering::SeqCst);
    let paid = wait_for(addr, &bank, &wages_path, |c| c["delivered"] == 1);
    assert_eq!(paid["released"], "6000.00");
    assert_eq!(paid["next_run_ms"], payday + 30 * DAY_MS);
    assert_eq!(balance(addr, &bank, worker.wallet), "6001.00");
    assert_eq!(read(addr, &bank, &escrow_path)["status"], "active");

    // The escrow's deadline passes unconfirmed: the buyer's 300 comes back on time.
    time.store(deadline, Ordering::SeqCst);
    wait_for(addr, &bank, &escrow_path, |c| c["status"] == "expired");
    assert_eq!(balance(addr, &bank, buyer.wallet), "1000.00");

    // A month later the second and last wage; then the contract is done.
    time.store(payday + 30 * DAY_MS, Ordering::SeqCst);
    let done = wait_for(addr, &bank, &wages_path, |c| c["status"] == "completed");
    assert_eq!(
        (done["delivered"].as_u64(), done["missed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(balance(addr, &bank, worker.wallet), "12001.00");
    assert_eq!(balance(addr, &bank, firm.wallet), "8000.00");

    // Nothing waits on time any more: a year passes without a single entry.
    time.store(payday + 365 * DAY_MS, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    let audit = read(addr, &bank, "/v1/audit");
    assert_eq!(audit["clean"], true, "{audit}");
    let metrics = send(addr, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("\necny_scheduler_entries_total 3\n"),
        "{metrics}"
    );
    server.stop().unwrap();

    // One empty entry per time something fell due, and the log replays to what the server showed.
    let (state, _) = Node::read_only(dir.path()).unwrap();
    assert_eq!(state.entries_applied() - entries_before, 3);
    assert_eq!(state.next_due_ms(), None);
    assert_eq!(state.balance(worker.wallet).unwrap(), yuan("12001"));
    assert_eq!(state.balance(buyer.wallet).unwrap(), yuan("1000"));
    let wages = state.contracts().get(wages).unwrap();
    assert_eq!((wages.delivered, wages.missed), (2, 0));
    let (again, _) = Node::read_only(dir.path()).unwrap();
    assert_eq!(again.state_hash(), state.state_hash());
    assert!(ecny::audit::audit(&state).is_clean());
}

/// `ecny serve` on `data`, its URL from the banner; the process is killed when dropped.
struct RealServer {
    process: std::process::Child,
    addr: SocketAddr,
}

impl RealServer {
    fn start(data: &Path) -> RealServer {
        let mut process = Process::new(env!("CARGO_BIN_EXE_ecny"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (banner, heard) = std::sync::mpsc::channel();
        let stdout = process.stdout.take().unwrap();
        // Keep draining standard output so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ecny serving on http://") {
                    let _ = banner.send(url.split_whitespace().next().unwrap().to_string());
                }
            }
        });
        let addr = heard
            .recv_timeout(Duration::from_millis(WAIT_MS_MAX))
            .unwrap()
            .trim_end_matches('/')
            .parse()
            .unwrap();
        RealServer { process, addr }
    }

    /// Stops it as a service manager would and waits.
    fn stop(mut self) {
        let sent = Process::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        assert!(self.process.wait().unwrap().success());
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[cfg(unix)]
#[test]
fn the_real_server_pays_a_wage_at_its_time_with_no_other_traffic() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (mut platform, _) = Platform::open(dir.path()).unwrap();
    let [jiangnan, lakeside] = served::two_funded_operators(&mut platform);
    let firm = banked(
        &mut platform,
        jiangnan,
        13_800_000_011,
        WalletClass::Two,
        "9000",
    );
    let worker = banked(
        &mut platform,
        lakeside,
        13_900_000_012,
        WalletClass::Two,
        "1",
    );
    drop(platform);
    let server = RealServer::start(dir.path());
    let addr = server.addr;
    let bank = std::fs::read_to_string(dir.path().join("keys/central-bank.token")).unwrap();

    // The firm signs a wage of ¥4,500.00 due two seconds from now by the server's clock.
    let context = send(addr, "GET", "/v1/context", &[], b"").ok(200);
    let now_ms = context["now_ms"].as_u64().unwrap();
    let deployment = ecny::signing::DeploymentId::from_hex(context["deployment"].as_str().unwrap());
    let signing = ecny::signing::SigningContext {
        deployment: deployment.unwrap(),
        operator: jiangnan,
    };
    let payday = now_ms + 2_000;
    let key = IdempotencyKey(77);
    let command = Command::OpenContract {
        payer: firm.wallet,
        payee: worker.wallet,
        template: Template::Recurring {
            amount: yuan("4500"),
            first_ms: payday,
            every_ms: 30 * DAY_MS,
            count: 1,
        },
        purpose: "wages".into(),
        key,
        auth: None,
    };
    let not_after_ms = now_ms + 5 * MINUTE_MS;
    let signature = firm
        .key
        .sign(&command.signing_bytes(&signing, not_after_ms));
    let body = json!({
        "payer": firm.wallet.to_string(), "payee": worker.wallet.to_string(),
        "template": "recurring", "purpose": "wages", "amount": "4500.00",
        "first_ms": payday, "every_ms": 30 * DAY_MS, "count": 1,
        "public_key": firm.key.public_key().to_hex(), "signature": signature.to_hex(),
        "not_after_ms": not_after_ms,
    });
    let key_header = key.to_string();
    let opened = send(
        addr,
        "POST",
        "/v1/contracts",
        &[
            ("Idempotency-Key", &key_header),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .ok(201);
    assert_eq!(opened["delivered"], 0);
    let path = format!("/v1/contracts/{}", opened["contract"].as_str().unwrap());

    // Nobody pays, asks or submits anything: the wage arrives at its time all the same, once.
    let done = wait_for(addr, &bank, &path, |c| c["status"] == "completed");
    assert_eq!(
        (done["delivered"].as_u64(), done["missed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(balance(addr, &bank, worker.wallet), "4501.00");
    assert_eq!(balance(addr, &bank, firm.wallet), "4500.00");
    let audit = read(addr, &bank, "/v1/audit");
    assert_eq!(audit["clean"], true, "{audit}");
    server.stop();

    // The payment is in the log at or after its time, and replays the same.
    let (state, _) = Node::read_only(dir.path()).unwrap();
    let paid = state
        .ledger()
        .events()
        .iter()
        .filter_map(|event| match event {
            ecny::ledger::Event::Transfer(t)
                if t.kind == ecny::ledger::TransferKind::ScheduledPayment =>
            {
                Some(t.timestamp_ms)
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(paid.len(), 1);
    assert!(
        paid[0] >= payday,
        "paid at {} before payday {payday}",
        paid[0]
    );
    assert_eq!(state.balance(worker.wallet).unwrap(), yuan("4501"));
    assert!(ecny::audit::audit(&state).is_clean());
}

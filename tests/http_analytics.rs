//! The analysis center on a running server, over real HTTP: statistics, alerts and statements
//! read while `ecny serve` runs, kept up to date as payments arrive. The central bank reads every
//! figure and alert by pseudonymous wallet ids; an operator its own; a statement goes to the
//! wallet's holder, its operator's staff and the central bank, and to no one else. Bad requests
//! get a problem code listed in /openapi.json, and the audit stays clean.

#[path = "support/banked.rs"]
mod banked;
#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use ecny::command::Command;
use ecny::ids::{IdempotencyKey, WalletId};
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig};
use ecny::signing::{DeploymentId, SigningContext};
use ecny::time::{china_day, format_day, system_now_ms};
use ecny::wallet::WalletClass;

use banked::{banked, pay, Person};
use http_client::{send, Reply};

/// Longest a test waits for what it expects before it gives up (a hang guard, not a timing).
const WAIT_MS_MAX: u64 = 30_000;

struct Lab {
    addr: SocketAddr,
    /// Problems met: method, route, status, code.
    met: Vec<(String, String, u16, String)>,
}

impl Lab {
    fn get(&mut self, route: &str, path: &str, token: Option<&str>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        let reply = send(self.addr, "GET", path, &headers, b"");
        if reply.status >= 400 {
            let code = reply.json()["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.met
                .push(("GET".into(), route.into(), reply.status, code));
        }
        reply
    }

    /// Reads `path` until `done` holds of it; what it read last.
    fn wait_for(&mut self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let value = self.get(path, path, Some(token)).ok(200);
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
}

/// The row of `table` and `key` in a statistics answer: (count, amount).
fn row(statistics: &Value, table: &str, key: &str) -> Option<(u64, String)> {
    statistics["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|row| {
            (row["table"] == table && row["key"] == key).then(|| {
                (
                    row["count"].as_u64().unwrap(),
                    row["amount"].as_str().unwrap().to_string(),
                )
            })
        })
}

/// A payment signed by `payer` and sent over HTTP.
fn pay_over_http(addr: SocketAddr, payer: &Person, payee: WalletId, amount: &str, key: u128) {
    let context = send(addr, "GET", "/v1/context", &[], b"").ok(200);
    let signing = SigningContext {
        deployment: DeploymentId::from_hex(context["deployment"].as_str().unwrap()).unwrap(),
        operator: payer.operator,
    };
    let not_after_ms = context["now_ms"].as_u64().unwrap() + 5 * 60 * 1000;
    let key = IdempotencyKey(key);
    let command = Command::Pay {
        payer: payer.wallet,
        payee,
        amount: amount.parse().unwrap(),
        key,
        auth: None,
    };
    let signature = payer
        .key
        .sign(&command.signing_bytes(&signing, not_after_ms));
    let body = json!({ "payer": payer.wallet.to_string(), "payee": payee.to_string(),
        "amount": amount, "public_key": payer.key.public_key().to_hex(),
        "signature": signature.to_hex(), "not_after_ms": not_after_ms });
    let key = key.to_string();
    send(
        addr,
        "POST",
        "/v1/payments",
        &[
            ("Idempotency-Key", &key),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .ok(201);
}

#[test]
fn the_analysis_center_reads_a_running_server_as_each_party_may() {
    let dir = tempfile::tempdir().unwrap();
    let (mut platform, _) = Platform::open(dir.path()).unwrap();
    let [jiangnan, lakeside] = served::two_funded_operators(&mut platform);
    let alice = banked(
        &mut platform,
        jiangnan,
        13_800_000_001,
        WalletClass::One,
        "100000",
    );
    let carol = banked(
        &mut platform,
        jiangnan,
        13_800_000_003,
        WalletClass::Two,
        "1",
    );
    let bob = banked(
        &mut platform,
        lakeside,
        13_900_000_002,
        WalletClass::Two,
        "1",
    );
    // Already in the log when the server starts: the center reads it once, then follows.
    pay(&mut platform, &alice, carol.wallet, "100.00", 1);
    drop(platform);
    let server = Server::start(&ServerConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })
    .unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
    let (bank, jiangnan_admin, lakeside_admin) = (
        read("central-bank.token"),
        read("OP01.token"),
        read("OP02.token"),
    );
    let lakeside_compliance =
        served::register_staff(&server, 1, &lakeside_admin, "compliance_officer");
    let jiangnan_teller = served::register_staff(&server, 0, &jiangnan_admin, "teller");
    let mut lab = Lab {
        addr: server.addr(),
        met: Vec::new(),
    };
    let stats = "/v1/analytics/statistics";
    let alerts = "/v1/analytics/alerts";

    let before = lab.wait_for(stats, &bank, |s| {
        row(s, "total", "transactions").is_some_and(|(count, _)| count == 1)
    });
    assert_eq!(before["scope"], "all");
    assert!(lab
        .get(alerts, alerts, Some(&bank))
        .ok(200)
        .as_array()
        .unwrap()
        .is_empty());

    // A large payment across operators, made while the server runs: the figures and the alert
    // follow without anyone re-reading the log.
    pay_over_http(lab.addr, &alice, bob.wallet, "60000.00", 2);
    let after = lab.wait_for(stats, &bank, |s| {
        row(s, "total", "transactions").is_some_and(|(count, _)| count == 2)
    });
    assert_eq!(
        row(&after, "total", "transactions"),
        Some((2, "60100.00".into()))
    );
    assert_eq!(
        row(&after, "channel", "person_to_person"),
        Some((2, "60100.00".into()))
    );
    assert_eq!(
        row(&after, "operator", "OP01"),
        Some((2, "60100.00".into()))
    );
    assert!(after["events_read"].as_u64().unwrap() > before["events_read"].as_u64().unwrap());
    let raised = lab.wait_for(alerts, &bank, |a| !a.as_array().unwrap().is_empty());
    let alert = &raised[0];
    assert_eq!(alert["rule"], "LARGE_VALUE");
    assert_eq!(alert["wallet"], alice.wallet.to_string());
    assert_eq!(alert["operator"], "OP01");
    assert_eq!(alert["amount"], "60000.00");
    assert_eq!(alert["status"], "open");
    // Pseudonymous: ids, never a name or a phone number.
    let text = raised.to_string();
    assert!(
        !text.contains("Zhang") && !text.contains("13800000001"),
        "{text}"
    );

    // An operator sees its own: Lakeside's compliance officer the payment its wallet received,
    // and no alert about another operator's wallet; Jiangnan's administrator both payments.
    let own = lab.get(stats, stats, Some(&lakeside_compliance)).ok(200);
    assert_eq!(own["scope"], "OP02");
    assert_eq!(
        row(&own, "total", "transactions"),
        Some((1, "60000.00".into()))
    );
    assert_eq!(row(&own, "wallets", "opened"), None);
    let own_alerts = lab.get(alerts, alerts, Some(&lakeside_compliance)).ok(200);
    assert!(own_alerts.as_array().unwrap().is_empty(), "{own_alerts}");
    let jiangnan_own = lab.get(stats, stats, Some(&jiangnan_admin)).ok(200);
    assert_eq!(
        row(&jiangnan_own, "total", "transactions"),
        Some((2, "60100.00".into()))
    );
    // Alerts are the compliance officer's to work, not the administrator's or a teller's.
    lab.get(alerts, alerts, Some(&jiangnan_admin))
        .problem(403, "ROLE_NOT_ALLOWED");
    lab.get(stats, stats, Some(&jiangnan_teller))
        .problem(403, "ROLE_NOT_ALLOWED");
    lab.get(stats, stats, None).problem(401, "UNAUTHENTICATED");
    let alice_session = served::open_session(&server, alice.wallet, &alice.key);
    lab.get(alerts, alerts, Some(&alice_session))
        .problem(403, "PARTY_NOT_ALLOWED");

    // Statements: camt.053 of the wallet's days, to those who may see the wallet.
    let today = china_day(system_now_ms());
    let (from, to) = (format_day(today - 1), format_day(today + 1));
    let route = "/v1/wallets/{id}/statement";
    let path = |wallet: WalletId, from: &str, to: &str| {
        format!("/v1/wallets/{wallet}/statement?from={from}&to={to}")
    };
    for token in [&bank, &jiangnan_teller, &alice_session] {
        let reply = lab.get(route, &path(alice.wallet, &from, &to), Some(token));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/xml"));
        let xml = reply.text();
        assert!(xml.contains("urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"));
        assert!(
            xml.contains(">60000.00<") && xml.contains(">100.00<"),
            "{xml}"
        );
        assert!(!xml.contains("Zhang"), "{xml}");
    }
    // Another operator's staff and another holder are told the wallet is unknown to them.
    let bob_session = served::open_session(&server, bob.wallet, &bob.key);
    for token in [&lakeside_compliance, &bob_session] {
        lab.get(route, &path(alice.wallet, &from, &to), Some(token))
            .problem(404, "UNKNOWN_WALLET");
    }
    lab.get(route, &path(WalletId(999), &from, &to), Some(&bank))
        .problem(404, "UNKNOWN_WALLET");
    lab.get(route, &path(alice.wallet, &to, &from), Some(&bank))
        .problem(422, "STATEMENT_DAYS_REVERSED");
    lab.get(
        route,
        &path(alice.wallet, "2024-01-01", "2025-06-30"),
        Some(&bank),
    )
    .problem(422, "STATEMENT_TOO_LONG");
    lab.get(route, &path(alice.wallet, "2024-02-30", &to), Some(&bank))
        .problem(400, "MALFORMED_DATE");
    let no_days = format!("/v1/wallets/{}/statement", alice.wallet);
    lab.get(route, &no_days, Some(&bank))
        .problem(400, "MALFORMED_QUERY");
    lab.get(
        route,
        "/v1/wallets/nobody/statement?from=2026-01-01&to=2026-01-02",
        Some(&bank),
    )
    .problem(400, "MALFORMED_ID");

    // The same from a terminal: `ecny analyze --server` and `ecny statement --server`.
    let url = format!("http://{}", lab.addr);
    let data = dir.path().to_str().unwrap();
    let ecny = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ecny"))
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    // The data directory is the server's: reading it directly is refused, with where to ask.
    let (ok, _, said) = ecny(&["analyze", "--data", data]);
    assert!(
        !ok && said.contains("--server URL") && said.ends_with("[DATA_DIR_LOCKED]\n"),
        "{said}"
    );
    let (ok, shown, _) = ecny(&["analyze", "--server", &url, "--data", data]);
    assert!(ok, "{shown}");
    assert!(shown.contains("all figures"), "{shown}");
    assert!(
        shown.contains("person_to_person") && shown.contains("¥60,100.00"),
        "{shown}"
    );
    assert!(
        shown.contains("alerts: 1") && shown.contains("LARGE_VALUE@"),
        "{shown}"
    );
    let (ok, shown, _) = ecny(&["analyze", "--server", &url, "--token", &jiangnan_admin]);
    assert!(ok, "{shown}");
    assert!(shown.contains("OP01 figures"), "{shown}");
    assert!(
        shown.contains("alerts: not shown to this credential"),
        "{shown}"
    );
    let wallet = alice.wallet.to_string();
    let statement = [
        "statement",
        "--server",
        &url,
        "--data",
        data,
        "--wallet",
        &wallet,
    ];
    let (ok, xml, _) = ecny(&[&statement[..], &["--from", &from, "--to", &to]].concat());
    assert!(ok && xml.contains(">60000.00<"), "{xml}");
    let (ok, _, said) = ecny(&[&statement[..], &["--from", &to, "--to", &from]].concat());
    assert!(!ok && said.contains("[STATEMENT_DAYS_REVERSED]"), "{said}");
    let (ok, _, said) = ecny(&["analyze", "--server", &url, "--token", "not-a-token"]);
    assert!(
        !ok && said.starts_with("error: ") && said.contains("[UNAUTHENTICATED]"),
        "{said}"
    );

    // Every problem met is listed for its route and status.
    let document = send(lab.addr, "GET", "/openapi.json", &[], b"").ok(200);
    for (method, route, status, code) in &lab.met {
        let listed = &document["paths"][route][method.to_ascii_lowercase()]["responses"]
            [status.to_string()]["x-problem-codes"];
        assert!(
            listed
                .as_array()
                .is_some_and(|codes| codes.iter().any(|c| c == code.as_str())),
            "{method} {route} {status} {code} is not listed: {listed}"
        );
    }
    // Reading moved nothing; every invariant holds.
    let audit = lab.get("/v1/audit", "/v1/audit", Some(&bank)).ok(200);
    assert_eq!(audit["clean"], true, "{audit}");
    let balance = lab
        .get(
            "/v1/wallets/{id}",
            &format!("/v1/wallets/{}", bob.wallet),
            Some(&bank),
        )
        .ok(200);
    assert_eq!(balance["balance"], "60001.00");
}

//! The HTTP API over real sockets: a server started on 127.0.0.1 port 0 per test, a plain
//! HTTP/1.1 client on std's TcpStream so that malformed requests can be sent as they are.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use ecny::certs::KeyPair;
use ecny::command::{Command, Outcome};
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig, REQUEST_BODY_BYTES_MAX};
use serde_json::{json, Value};

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;
use http_client::{send, send_on, Reply};

/// A connection to `addr` from another loopback address, as a second client machine would be.
fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{local}:0").parse().unwrap())?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// A funded world on disk, then a server over it.
struct World {
    _dir: tempfile::TempDir,
    server: Server,
    tokens: [String; 2],
    central_bank: String,
    /// Class-4 wallet at OP01 holding ¥3,000.00.
    alice: (WalletId, KeyPair),
    /// Class-4 wallet at OP02, empty.
    bob: (WalletId, KeyPair),
}

fn seed(dir: &Path) -> ((WalletId, KeyPair), (WalletId, KeyPair)) {
    let (mut platform, _) = Platform::open(dir).unwrap();
    let ops = served::two_funded_operators(&mut platform);
    let mut open = |op: OperatorId, phone: u64| {
        let key = KeyPair::generate();
        let command = Command::OpenWallet {
            operator: op,
            phone,
            public_key: key.public_key(),
        };
        let Ok(Outcome::Wallet(wallet)) = platform.one(op, command).unwrap() else {
            panic!()
        };
        (wallet, key)
    };
    let alice = open(ops[0], 13_800_000_001);
    let bob = open(ops[1], 13_900_000_002);
    let Ok(Outcome::Account(account)) = platform
        .one(ops[0], Command::OpenDepositAccount { operator: ops[0] })
        .unwrap()
    else {
        panic!()
    };
    for command in [
        Command::CashDeposit {
            account,
            amount: "5000".parse().unwrap(),
        },
        Command::BindBankAccount {
            wallet: alice.0,
            account,
        },
        Command::Exchange {
            wallet: alice.0,
            amount: "3000".parse().unwrap(),
            key: IdempotencyKey(1),
            auth: None,
        }
        .sign(&alice.1),
    ] {
        platform.one(ops[0], command).unwrap().unwrap();
    }
    (alice, bob)
}

impl World {
    fn new() -> World {
        World::configured(ServerConfig::default())
    }

    /// A world whose server runs with `config`, on its own data directory and a free port.
    fn configured(config: ServerConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = seed(dir.path());
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..config
        })
        .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
        World {
            tokens: [read("OP01.token"), read("OP02.token")],
            central_bank: read("central-bank.token"),
            server,
            _dir: dir,
            alice,
            bob,
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        send(
            self.server.addr(),
            "GET",
            path,
            &[("Authorization", &World::bearer(token))],
            b"",
        )
    }

    fn post(&self, path: &str, token: &str, key: Option<&str>, body: &[u8]) -> Reply {
        let auth = World::bearer(token);
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        send(self.server.addr(), "POST", path, &headers, body)
    }

    /// A payment body signed by `key` over the Pay command with this idempotency key.
    fn payment(
        payer: WalletId,
        payee: WalletId,
        amount: &str,
        idempotency: &str,
        key: &KeyPair,
    ) -> Vec<u8> {
        let command = Command::Pay {
            payer,
            payee,
            amount: amount.parse().unwrap(),
            key: idempotency.parse().unwrap(),
            auth: None,
        };
        let signature = key.sign(&command.signing_bytes());
        json!({
            "payer": payer.to_string(),
            "payee": payee.to_string(),
            "amount": amount,
            "public_key": key.public_key().to_hex(),
            "signature": signature.to_hex(),
        })
        .to_string()
        .into_bytes()
    }

    fn pay(&self, token: &str, idempotency: &str, body: &[u8]) -> Reply {
        self.post("/v1/payments", token, Some(idempotency), body)
    }

    fn balance(&self, token: &str, wallet: WalletId) -> String {
        let reply = self.get(&format!("/v1/wallets/{wallet}"), token);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["balance"].as_str().unwrap().to_string()
    }

    fn assert_audit_clean(&self) {
        let reply = self.get("/v1/audit", &self.central_bank);
        assert_eq!(reply.status, 200, "{}", reply.text());
        let report = reply.json();
        assert_eq!(report["clean"], true, "{report}");
        assert_eq!(report["violations"], json!([]));
    }
}

const KEY_1: &str = "123e4567-e89b-12d3-a456-426614174000";

#[test]
fn health_readiness_and_metrics_answer_with_a_request_id() {
    let world = World::new();
    let addr = world.server.addr();
    let health = send(
        addr,
        "GET",
        "/healthz",
        &[("x-request-id", "trace-42")],
        b"",
    );
    assert_eq!(
        (health.status, health.header("x-request-id")),
        (200, Some("trace-42"))
    );
    let ready = send(addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.header("x-request-id").map(str::len), Some(16));
    let metrics = send(addr, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(metrics
        .text()
        .contains(r#"ecny_http_requests_total{method="GET",route="/healthz",status="200"} 1"#));
    assert!(metrics.text().contains("ecny_payments_committed_total 0"));
    assert!(metrics
        .text()
        .contains("# TYPE ecny_commit_seconds histogram"));
}

#[test]
fn a_new_holder_opens_a_wallet_and_is_paid_66_60_across_operators() {
    let world = World::new();
    let holder = KeyPair::generate();
    let opened = world.post(
        "/v1/operators/OP02/wallets",
        &world.tokens[1],
        None,
        json!({ "phone": "13912345678", "public_key": holder.public_key().to_hex() })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(opened.status, 201, "{}", opened.text());
    let wallet: WalletId = opened.json()["wallet"].as_str().unwrap().parse().unwrap();
    assert_eq!(opened.json()["class"], 4);

    let (alice, alice_key) = &world.alice;
    let body = World::payment(*alice, wallet, "66.60", KEY_1, alice_key);
    let paid = world.pay(&world.tokens[0], KEY_1, &body);
    assert_eq!(paid.status, 201, "{}", paid.text());
    assert!(paid.json()["transfer"].as_str().unwrap().starts_with('T'));
    assert_eq!(paid.json()["amount"], "66.60");

    assert_eq!(world.balance(&world.tokens[1], wallet), "66.60");
    assert_eq!(world.balance(&world.tokens[0], *alice), "2933.40");
    let view = world
        .get(&format!("/v1/wallets/{wallet}"), &world.tokens[1])
        .json();
    assert_eq!(
        (view["class"].as_u64(), view["status"].as_str()),
        (Some(4), Some("active"))
    );
    let metrics = send(world.server.addr(), "GET", "/metrics", &[], b"");
    assert!(metrics.text().contains("ecny_payments_committed_total 1"));
    assert!(metrics.text().contains("ecny_commit_seconds_count 2"));
    world.assert_audit_clean();

    let again = world.post(
        "/v1/operators/OP02/wallets",
        &world.tokens[1],
        None,
        json!({ "phone": "13912345678", "public_key": holder.public_key().to_hex() })
            .to_string()
            .as_bytes(),
    );
    again.problem(409, "PHONE_TAKEN");
}

#[test]
fn a_retry_answers_the_first_transfer_and_a_changed_body_is_a_conflict() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "10.00", KEY_1, key);
    let first = world.pay(&world.tokens[0], KEY_1, &body);
    assert_eq!(first.status, 201, "{}", first.text());
    let retry = world.pay(&world.tokens[0], KEY_1, &body);
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(first.json()["transfer"], retry.json()["transfer"]);

    let changed = World::payment(*alice, world.bob.0, "20.00", KEY_1, key);
    world
        .pay(&world.tokens[0], KEY_1, &changed)
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(world.balance(&world.tokens[1], world.bob.0), "10.00");
    world.assert_audit_clean();
}

#[test]
fn a_payment_without_an_idempotency_key_is_refused() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "1.00", KEY_1, key);
    world
        .post("/v1/payments", &world.tokens[0], None, &body)
        .problem(400, "IDEMPOTENCY_KEY_MISSING");
    world
        .pay(&world.tokens[0], "not-a-key", &body)
        .problem(400, "IDEMPOTENCY_KEY_MALFORMED");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
}

#[test]
fn malformed_bodies_are_problems_not_plain_text() {
    let world = World::new();
    let token = &world.tokens[0];
    world
        .pay(token, KEY_1, b"{\"payer\": ")
        .problem(400, "JSON_SYNTAX");
    let wrong_types =
        json!({ "payer": 1, "payee": "W2", "amount": 66.6, "public_key": "", "signature": "" });
    world
        .pay(token, KEY_1, wrong_types.to_string().as_bytes())
        .problem(422, "JSON_DATA");
    let unknown_field = json!({ "phone": "13912345678", "public_key": "00", "pin": "1234" });
    world
        .post(
            "/v1/operators/OP01/wallets",
            token,
            None,
            unknown_field.to_string().as_bytes(),
        )
        .problem(422, "JSON_DATA");

    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "1.00", KEY_1, key);
    let auth = World::bearer(token);
    let as_text = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain"),
        ("Idempotency-Key", KEY_1),
    ];
    send(world.server.addr(), "POST", "/v1/payments", &as_text, &body)
        .problem(415, "CONTENT_TYPE_UNSUPPORTED");

    let huge = vec![b' '; REQUEST_BODY_BYTES_MAX + 1];
    world
        .pay(token, KEY_1, &huge)
        .problem(413, "BODY_TOO_LARGE");

    let mut bad_amount: Value = serde_json::from_slice(&body).unwrap();
    bad_amount["amount"] = json!("66.666");
    world
        .pay(token, KEY_1, bad_amount.to_string().as_bytes())
        .problem(422, "MALFORMED_AMOUNT");
    let bad_phone = json!({ "phone": "12345", "public_key": key.public_key().to_hex() });
    world
        .post(
            "/v1/operators/OP01/wallets",
            token,
            None,
            bad_phone.to_string().as_bytes(),
        )
        .problem(422, "MALFORMED_PHONE");
    assert_eq!(world.balance(token, *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn a_forged_signature_is_refused_and_nothing_moves() {
    let world = World::new();
    let (alice, _) = &world.alice;
    let thief = KeyPair::generate();
    let forged = World::payment(*alice, world.bob.0, "500.00", KEY_1, &thief);
    world
        .pay(&world.tokens[0], KEY_1, &forged)
        .problem(403, "SIGNATURE_INVALID");
    let (_, key) = &world.alice;
    let mut tampered: Value =
        serde_json::from_slice(&World::payment(*alice, world.bob.0, "1.00", KEY_1, key)).unwrap();
    tampered["amount"] = json!("1000.00");
    world
        .pay(&world.tokens[0], KEY_1, tampered.to_string().as_bytes())
        .problem(403, "SIGNATURE_INVALID");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn a_class_4_wallet_cannot_pay_above_its_single_payment_limit() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "2000.01", KEY_1, key);
    world
        .pay(&world.tokens[0], KEY_1, &body)
        .problem(422, "LIMIT_SINGLE_PAYMENT");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn unknown_wallets_and_routes_are_404_problems() {
    let world = World::new();
    let token = &world.tokens[0];
    world
        .get("/v1/wallets/W0000009999", token)
        .problem(404, "UNKNOWN_WALLET");
    world
        .get("/v1/wallets/alice", token)
        .problem(400, "MALFORMED_ID");
    world
        .get("/v1/nothing-here", token)
        .problem(404, "ROUTE_NOT_FOUND");
    send(world.server.addr(), "DELETE", "/v1/payments", &[], b"")
        .problem(405, "METHOD_NOT_ALLOWED");
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, WalletId(9999), "1.00", KEY_1, key);
    world
        .pay(token, KEY_1, &body)
        .problem(404, "UNKNOWN_WALLET");
}

#[test]
fn operator_b_cannot_read_or_pay_from_operator_a_wallets() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let other = &world.tokens[1];
    world
        .get(&format!("/v1/wallets/{alice}"), other)
        .problem(403, "NOT_YOUR_WALLET");
    let body = World::payment(*alice, world.bob.0, "5.00", KEY_1, key);
    world
        .pay(other, KEY_1, &body)
        .problem(403, "NOT_YOUR_WALLET");
    let holder = KeyPair::generate();
    let open = json!({ "phone": "13712345678", "public_key": holder.public_key().to_hex() });
    world
        .post(
            "/v1/operators/OP01/wallets",
            other,
            None,
            open.to_string().as_bytes(),
        )
        .problem(403, "NOT_YOUR_OPERATOR");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn callers_without_the_right_token_are_turned_away() {
    let world = World::new();
    let addr = world.server.addr();
    let anonymous = send(
        addr,
        "GET",
        &format!("/v1/wallets/{}", world.alice.0),
        &[],
        b"",
    );
    anonymous.problem(401, "UNAUTHENTICATED");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    world
        .get("/v1/audit", "guessed")
        .problem(401, "UNAUTHENTICATED");
    world
        .get("/v1/audit", &world.tokens[0])
        .problem(403, "CENTRAL_BANK_ONLY");
    world
        .get(
            &format!("/v1/wallets/{}", world.alice.0),
            &world.central_bank,
        )
        .problem(403, "OPERATOR_ONLY");
    // Authentication comes before the body is read.
    world
        .pay("guessed", KEY_1, b"{")
        .problem(401, "UNAUTHENTICATED");
}

#[test]
fn an_address_guessing_tokens_is_turned_away_for_the_rest_of_its_minute() {
    let world = World::configured(ServerConfig {
        auth_failures_per_minute_max: 3,
        ..ServerConfig::default()
    });
    let wallet = format!("/v1/wallets/{}", world.alice.0);
    for guess in ["guess-1", "guess-2", "guess-3"] {
        world.get(&wallet, guess).problem(401, "UNAUTHENTICATED");
    }
    // A missing header is not a guess.
    let anonymous = send(world.server.addr(), "GET", &wallet, &[], b"");
    anonymous.problem(401, "UNAUTHENTICATED");

    let refused = world.get(&wallet, "guess-4");
    refused.problem(429, "TOO_MANY_AUTH_FAILURES");
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Even the right token is refused from there until the minute is over.
    world
        .get(&wallet, &world.tokens[0])
        .problem(429, "TOO_MANY_AUTH_FAILURES");
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "1.00", KEY_1, key);
    world
        .pay(&world.tokens[0], KEY_1, &body)
        .problem(429, "TOO_MANY_AUTH_FAILURES");
    assert_eq!(
        send(world.server.addr(), "GET", "/healthz", &[], b"").status,
        200
    );

    // Another client address is not held responsible.
    let auth = World::bearer(&world.tokens[0]);
    let other = connect_from("127.0.0.2", world.server.addr());
    let reply = send_on(other, "GET", &wallet, &[("Authorization", &auth)], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["balance"], "3000.00");
    let metrics = send(world.server.addr(), "GET", "/metrics", &[], b"");
    assert!(metrics
        .text()
        .contains(r#"route="/v1/wallets/{id}",status="429"} 2"#));
}

#[test]
fn the_body_limit_is_the_configured_one() {
    let world = World::configured(ServerConfig {
        body_limit_bytes: 2048,
        ..ServerConfig::default()
    });
    let too_big = vec![b' '; 2049];
    world
        .pay(&world.tokens[0], KEY_1, &too_big)
        .problem(413, "BODY_TOO_LARGE");
    let (alice, key) = &world.alice;
    let body = World::payment(*alice, world.bob.0, "1.00", KEY_1, key);
    assert_eq!(world.pay(&world.tokens[0], KEY_1, &body).status, 201);
}

/// `ecny serve` as a process in `cwd` with `args`, these environment variables and no inherited
/// `ECNY_*`.
fn ecny_serve(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ecny"));
    command.current_dir(cwd).arg("serve").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("ECNY_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The address and token directory `ecny serve` announces on stdout.
fn announced(child: &mut std::process::Child) -> (SocketAddr, std::path::PathBuf) {
    use std::io::BufRead;
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ecny serving on http://") {
            let (addr, rest) = rest.split_once(' ').unwrap();
            let keys = rest.rsplit_once("tokens in ").unwrap().1;
            return (addr.parse().unwrap(), keys.into());
        }
    }
    panic!("ecny serve stopped before it listened");
}

#[test]
fn ecny_serve_takes_flags_over_the_environment_over_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ecny.toml");
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = {:?}\nlog = \"warn\"\nbody_limit_bytes = 2048\nauth_failures_per_minute_max = 5\n",
            from_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = ecny_serve(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--auth-failures-per-minute-max",
            "2",
        ],
        &[
            ("ECNY_DATA", from_env.to_str().unwrap()),
            ("ECNY_AUTH_FAILURES_PER_MINUTE_MAX", "1"),
        ],
    );
    let (addr, keys) = announced(&mut child);
    // The data directory from the environment, over the file's.
    assert_eq!(keys, from_env.join("keys"));
    assert!(from_env.join("keys/central-bank.token").exists() && !from_file.exists());
    let central_bank = std::fs::read_to_string(keys.join("central-bank.token")).unwrap();
    let auth = format!("Bearer {central_bank}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", KEY_1),
    ];
    // The body limit from the file, where nothing else sets it.
    send(addr, "POST", "/v1/payments", &headers, &[b' '; 2049]).problem(413, "BODY_TOO_LARGE");
    send(addr, "POST", "/v1/payments", &headers, &[b' '; 2048]).problem(400, "JSON_SYNTAX");
    // The failure limit from the flag, over the environment's and the file's.
    for _ in 0..2 {
        send(
            addr,
            "GET",
            "/v1/audit",
            &[("Authorization", "Bearer x")],
            b"",
        )
        .problem(401, "UNAUTHENTICATED");
    }
    send(
        addr,
        "GET",
        "/v1/audit",
        &[("Authorization", "Bearer x")],
        b"",
    )
    .problem(429, "TOO_MANY_AUTH_FAILURES");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn ecny_serve_names_the_file_and_line_of_a_malformed_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ecny.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nbody_limit_bytes = lots\n",
    )
    .unwrap();
    let child = ecny_serve(dir.path(), &["--config", config.to_str().unwrap()], &[]);
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("config file {}, line 2", config.display())),
        "{stderr}"
    );

    let child = ecny_serve(dir.path(), &[], &[("ECNY_BODY_LIMIT_BYTES", "10")]);
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ECNY_BODY_LIMIT_BYTES"), "{stderr}");
}

#[test]
fn the_openapi_document_covers_every_route_and_docs_load_it() {
    let world = World::new();
    let addr = world.server.addr();
    let document = send(addr, "GET", "/openapi.json", &[], b"").json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in ecny::server::openapi::PATHS {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        document["paths"].as_object().unwrap().len(),
        ecny::server::openapi::PATHS.len()
    );
    assert!(document["components"]["schemas"]["Problem"]["properties"]["code"].is_object());
    // Every operation behind a token documents the token check's answers.
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if operation.get("security").is_some() {
                let responses = &operation["responses"];
                for status in ["401", "429"] {
                    let problem = &responses[status]["content"]["application/problem+json"];
                    assert!(problem.is_object(), "{method} {path} lacks {status}");
                }
                assert!(responses["429"]["headers"]["Retry-After"].is_object());
            }
        }
    }
    let docs = send(addr, "GET", "/docs", &[], b"");
    assert_eq!(docs.status, 200);
    assert!(docs
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(docs.text().contains("fetch('/openapi.json')") && !docs.text().contains("https://"));
}

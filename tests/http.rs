//! The HTTP API over real sockets: a server started on 127.0.0.1 port 0 per test, a plain
//! HTTP/1.1 client on std's TcpStream so that malformed requests can be sent as they are.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use ecny::certs::KeyPair;
use ecny::command::{Command, Outcome};
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig, REQUEST_BODY_BYTES_MAX};
use ecny::signing::{DeploymentId, SigningContext};
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
            phone: phone.into(),
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
        platform.sign_as_holder(
            Command::BindBankAccount {
                wallet: alice.0,
                account,
                auth: None,
            },
            &alice.1,
            ops[0],
        ),
        platform.sign_as_holder(
            Command::Exchange {
                wallet: alice.0,
                amount: "3000".parse().unwrap(),
                key: IdempotencyKey(1),
                auth: None,
            },
            &alice.1,
            ops[0],
        ),
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

    /// `token` empty: no Authorization header (a holder's signed command needs none).
    fn get(&self, path: &str, token: &str) -> Reply {
        let auth = World::bearer(token);
        let headers: Vec<(&str, &str)> = if token.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth.as_str())]
        };
        send(self.server.addr(), "GET", path, &headers, b"")
    }

    fn post(&self, path: &str, token: &str, key: Option<&str>, body: &[u8]) -> Reply {
        let auth = World::bearer(token);
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        send(self.server.addr(), "POST", path, &headers, body)
    }

    /// What a holder at OP01 (Alice) signs for, as this server states it, and the end of a window
    /// `window_ms` long by the server's clock.
    fn window(&self, window_ms: u64) -> (SigningContext, u64) {
        self.window_at(OperatorId(1), window_ms)
    }

    /// What a holder at `operator` signs for.
    fn window_at(&self, operator: OperatorId, window_ms: u64) -> (SigningContext, u64) {
        let stated = send(self.server.addr(), "GET", "/v1/context", &[], b"").ok(200);
        let deployment = DeploymentId::from_hex(stated["deployment"].as_str().unwrap()).unwrap();
        let context = SigningContext {
            deployment,
            operator,
        };
        (context, stated["now_ms"].as_u64().unwrap() + window_ms)
    }

    /// A payment body signed by `key` over the Pay command with this idempotency key, good for
    /// five minutes.
    fn payment(
        &self,
        payer: WalletId,
        payee: WalletId,
        amount: &str,
        idempotency: &str,
        key: &KeyPair,
    ) -> Vec<u8> {
        self.payment_for(OperatorId(1), payer, payee, amount, idempotency, key)
    }

    /// A payment body signed naming `operator` in its context.
    fn payment_for(
        &self,
        operator: OperatorId,
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
        let (context, not_after_ms) = self.window_at(operator, 5 * 60 * 1000);
        let signature = key.sign(&command.signing_bytes(&context, not_after_ms));
        json!({
            "payer": payer.to_string(),
            "payee": payee.to_string(),
            "amount": amount,
            "public_key": key.public_key().to_hex(),
            "signature": signature.to_hex(),
            "not_after_ms": not_after_ms,
        })
        .to_string()
        .into_bytes()
    }

    /// The holder's session, from a challenge signed with the wallet's key.
    fn session(&self, wallet: WalletId, key: &KeyPair) -> String {
        let asked = json!({ "wallet": wallet.to_string() }).to_string();
        let challenge = self
            .post("/v1/sessions/challenges", "", None, asked.as_bytes())
            .ok(201);
        let challenge = challenge["challenge"].as_str().unwrap();
        let signature = key.sign(&ecny::parties::session_signing_bytes(wallet, challenge));
        let opened = json!({ "wallet": wallet.to_string(), "challenge": challenge,
            "signature": signature.to_hex() });
        let session = self
            .post("/v1/sessions", "", None, opened.to_string().as_bytes())
            .ok(201);
        session["token"].as_str().unwrap().to_string()
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
    // The app proves it holds the key by signing the opening; no operator token.
    let open = Command::OpenWallet {
        operator: OperatorId(2),
        phone: 13_912_345_678.into(),
        public_key: holder.public_key(),
    };
    let (context, not_after_ms) = world.window_at(OperatorId(2), 5 * 60 * 1000);
    let signed_open = json!({
        "phone": "13912345678",
        "public_key": holder.public_key().to_hex(),
        "signature": holder.sign(&open.signing_bytes(&context, not_after_ms)).to_hex(),
        "not_after_ms": not_after_ms,
    });
    world
        .post(
            "/v1/operators/OP02/wallets",
            "",
            None,
            json!({ "phone": "13912345678", "public_key": holder.public_key().to_hex() })
                .to_string()
                .as_bytes(),
        )
        .problem(403, "SIGNATURE_MISSING");
    // An administrator is not a teller.
    world
        .post(
            "/v1/operators/OP02/wallets",
            &world.tokens[1],
            None,
            signed_open.to_string().as_bytes(),
        )
        .problem(403, "ROLE_NOT_ALLOWED");
    let opened = world.post(
        "/v1/operators/OP02/wallets",
        "",
        None,
        signed_open.to_string().as_bytes(),
    );
    assert_eq!(opened.status, 201, "{}", opened.text());
    let wallet: WalletId = opened.json()["wallet"].as_str().unwrap().parse().unwrap();
    assert_eq!(opened.json()["class"], 4);

    let (alice, alice_key) = &world.alice;
    let body = world.payment(*alice, wallet, "66.60", KEY_1, alice_key);
    let paid = world.pay("", KEY_1, &body);
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
        "",
        None,
        signed_open.to_string().as_bytes(),
    );
    again.problem(409, "PHONE_TAKEN");
}

#[test]
fn a_retry_answers_the_first_transfer_and_a_changed_body_is_a_conflict() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = world.payment(*alice, world.bob.0, "10.00", KEY_1, key);
    let first = world.pay("", KEY_1, &body);
    assert_eq!(first.status, 201, "{}", first.text());
    let retry = world.pay("", KEY_1, &body);
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(first.json()["transfer"], retry.json()["transfer"]);

    let changed = world.payment(*alice, world.bob.0, "20.00", KEY_1, key);
    world
        .pay("", KEY_1, &changed)
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(world.balance(&world.tokens[1], world.bob.0), "10.00");
    world.assert_audit_clean();
}

#[test]
fn a_payment_without_an_idempotency_key_is_refused() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = world.payment(*alice, world.bob.0, "1.00", KEY_1, key);
    world
        .post("/v1/payments", "", None, &body)
        .problem(400, "IDEMPOTENCY_KEY_MISSING");
    world
        .pay("", "not-a-key", &body)
        .problem(400, "IDEMPOTENCY_KEY_MALFORMED");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
}

#[test]
fn malformed_bodies_are_problems_not_plain_text() {
    let world = World::new();
    let token = "";
    world
        .pay("", KEY_1, b"{\"payer\": ")
        .problem(400, "JSON_SYNTAX");
    let wrong_types =
        json!({ "payer": 1, "payee": "W2", "amount": 66.6, "public_key": "", "signature": "" });
    world
        .pay("", KEY_1, wrong_types.to_string().as_bytes())
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
    let body = world.payment(*alice, world.bob.0, "1.00", KEY_1, key);
    let as_text = [("Content-Type", "text/plain"), ("Idempotency-Key", KEY_1)];
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
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn an_amount_or_idempotency_key_outside_its_one_syntax_is_refused_and_moves_nothing() {
    let world = World::new();
    let (alice, key) = &world.alice;
    // "1,50" once read as 150.00: the holder signs what the server would have taken it for.
    let command = Command::Pay {
        payer: *alice,
        payee: world.bob.0,
        amount: ecny::Amount::from_yuan(150),
        key: KEY_1.parse().unwrap(),
        auth: None,
    };
    let mut body: Value =
        serde_json::from_slice(&world.payment(*alice, world.bob.0, "150.00", KEY_1, key)).unwrap();
    let (context, not_after_ms) = world.window(5 * 60 * 1000);
    body["signature"] = json!(key
        .sign(&command.signing_bytes(&context, not_after_ms))
        .to_hex());
    body["not_after_ms"] = json!(not_after_ms);
    for amount in ["1,50", "1,000", "¥150", "150.00 "] {
        body["amount"] = json!(amount);
        world
            .pay("", KEY_1, body.to_string().as_bytes())
            .problem(422, "MALFORMED_AMOUNT");
    }
    // One syntax for keys: 1 to 32 hex digits, or a UUID with its four dashes in place.
    let good = world.payment(*alice, world.bob.0, "1.00", KEY_1, key);
    for stray in [
        "+123e4567e89b12d3a456426614174000",
        "-123e4567e89b12d3a456426614174000",
        "123e4567e89b12d3a456-426614174000",
        "123e-4567-e89b-12d3-a456426614174000",
        "--1",
        "+1",
        "0x1f",
    ] {
        world
            .pay("", stray, &good)
            .problem(400, "IDEMPOTENCY_KEY_MALFORMED");
    }
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn a_payment_signed_for_a_closed_or_overlong_window_is_refused_and_moves_nothing() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let (context, now_ms) = world.window(0);
    let stated = send(world.server.addr(), "GET", "/v1/context", &[], b"").ok(200);
    assert_eq!(stated["signature_window_ms_max"], 600_000);
    for (not_after_ms, code) in [
        (now_ms - 1_000, "SIGNATURE_EXPIRED"),
        (now_ms + 11 * 60 * 1000, "SIGNATURE_WINDOW_TOO_LONG"),
    ] {
        let command = Command::Pay {
            payer: *alice,
            payee: world.bob.0,
            amount: "5.00".parse().unwrap(),
            key: KEY_1.parse().unwrap(),
            auth: None,
        };
        let body = json!({
            "payer": alice.to_string(),
            "payee": world.bob.0.to_string(),
            "amount": "5.00",
            "public_key": key.public_key().to_hex(),
            "signature": key.sign(&command.signing_bytes(&context, not_after_ms)).to_hex(),
            "not_after_ms": not_after_ms,
        });
        world
            .pay("", KEY_1, body.to_string().as_bytes())
            .problem(403, code);
    }
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn a_transfer_is_read_by_its_id_by_its_parties_only() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = world.payment(*alice, world.bob.0, "66.60", KEY_1, key);
    let paid = world.pay("", KEY_1, &body).ok(201);
    let path = format!("/v1/transfers/{}", paid["transfer"].as_str().unwrap());
    let alice_session = world.session(*alice, key);
    let bob_session = world.session(world.bob.0, &world.bob.1);
    for token in [
        &world.tokens[0],
        &world.tokens[1],
        &world.central_bank,
        &alice_session,
        &bob_session,
    ] {
        let read = world.get(&path, token).ok(200);
        assert_eq!(read["transfer"], paid["transfer"]);
        assert_eq!(
            (read["kind"].as_str(), read["amount"].as_str()),
            (Some("payment"), Some("66.60"))
        );
        assert_eq!(read["from"], alice.to_string());
        assert_eq!(read["to"], world.bob.0.to_string());
    }
    // An exchange of Alice's touches only OP01's books: OP02 is no party to it, and cannot tell
    // it from a transfer that does not exist.
    let command = Command::Exchange {
        wallet: *alice,
        amount: "10.00".parse().unwrap(),
        key: IdempotencyKey(0xe1),
        auth: None,
    };
    let (context, not_after_ms) = world.window(5 * 60 * 1000);
    let body = json!({
        "amount": "10.00",
        "public_key": key.public_key().to_hex(),
        "signature": key.sign(&command.signing_bytes(&context, not_after_ms)).to_hex(),
        "not_after_ms": not_after_ms,
    });
    let exchanged = world
        .post(
            &format!("/v1/wallets/{alice}/exchange"),
            "",
            Some("e1"),
            body.to_string().as_bytes(),
        )
        .ok(201);
    let path = format!("/v1/transfers/{}", exchanged["transfer"].as_str().unwrap());
    for token in [&world.tokens[0], &alice_session] {
        assert_eq!(world.get(&path, token).ok(200)["kind"], "exchange");
    }
    for stranger in [&world.tokens[1], &bob_session] {
        world.get(&path, stranger).problem(404, "UNKNOWN_TRANSFER");
    }
    world
        .get("/v1/transfers/T999999999999", &world.tokens[0])
        .problem(404, "UNKNOWN_TRANSFER");
    world
        .get(&path, "not-a-token")
        .problem(401, "UNAUTHENTICATED");
}

#[test]
fn a_signed_challenge_opens_one_session_and_is_not_replayed_for_more() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let asked = json!({ "wallet": alice.to_string() }).to_string();
    let challenge = world
        .post("/v1/sessions/challenges", "", None, asked.as_bytes())
        .ok(201);
    let challenge = challenge["challenge"].as_str().unwrap();
    let signature = key.sign(&ecny::parties::session_signing_bytes(*alice, challenge));
    let opened = json!({ "wallet": alice.to_string(), "challenge": challenge,
        "signature": signature.to_hex() })
    .to_string();
    let session = world
        .post("/v1/sessions", "", None, opened.as_bytes())
        .ok(201);
    assert!(session["token"]
        .as_str()
        .unwrap()
        .starts_with("W0000000001."));
    // Whoever saw the signed challenge cannot mint another session with it while it is live.
    world
        .post("/v1/sessions", "", None, opened.as_bytes())
        .problem(409, "CHALLENGE_USED");
    // A wrong signature does not use up the holder's challenge.
    let other = world
        .post("/v1/sessions/challenges", "", None, asked.as_bytes())
        .ok(201);
    let other = other["challenge"].as_str().unwrap();
    let forged = KeyPair::generate().sign(&ecny::parties::session_signing_bytes(*alice, other));
    let forged = json!({ "wallet": alice.to_string(), "challenge": other,
        "signature": forged.to_hex() })
    .to_string();
    world
        .post("/v1/sessions", "", None, forged.as_bytes())
        .problem(403, "SIGNATURE_INVALID");
    let signature = key.sign(&ecny::parties::session_signing_bytes(*alice, other));
    let honest = json!({ "wallet": alice.to_string(), "challenge": other,
        "signature": signature.to_hex() })
    .to_string();
    world
        .post("/v1/sessions", "", None, honest.as_bytes())
        .ok(201);
}

#[test]
fn a_forged_signature_is_refused_and_nothing_moves() {
    let world = World::new();
    let (alice, _) = &world.alice;
    let thief = KeyPair::generate();
    let forged = world.payment(*alice, world.bob.0, "500.00", KEY_1, &thief);
    world
        .pay("", KEY_1, &forged)
        .problem(403, "SIGNATURE_INVALID");
    let (_, key) = &world.alice;
    let mut tampered: Value =
        serde_json::from_slice(&world.payment(*alice, world.bob.0, "1.00", KEY_1, key)).unwrap();
    tampered["amount"] = json!("1000.00");
    world
        .pay("", KEY_1, tampered.to_string().as_bytes())
        .problem(403, "SIGNATURE_INVALID");
    assert_eq!(world.balance(&world.tokens[0], *alice), "3000.00");
    world.assert_audit_clean();
}

#[test]
fn a_class_4_wallet_cannot_pay_above_its_single_payment_limit() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let body = world.payment(*alice, world.bob.0, "2000.01", KEY_1, key);
    world
        .pay("", KEY_1, &body)
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
    let body = world.payment(*alice, WalletId(9999), "1.00", KEY_1, key);
    world.pay("", KEY_1, &body).problem(404, "UNKNOWN_WALLET");
}

#[test]
fn operator_b_cannot_read_or_pay_from_operator_a_wallets() {
    let world = World::new();
    let (alice, key) = &world.alice;
    let other = &world.tokens[1];
    // Another operator hears of the wallet as of one that does not exist.
    world
        .get(&format!("/v1/wallets/{alice}"), other)
        .problem(404, "UNKNOWN_WALLET");
    let body = world.payment(*alice, world.bob.0, "5.00", KEY_1, key);
    world.pay(other, KEY_1, &body).problem(403, "HOLDER_ONLY");
    // Alice's own signature made naming another operator does not hold for her wallet at OP01.
    let foreign = world.payment_for(OperatorId(2), *alice, world.bob.0, "5.00", KEY_1, key);
    world
        .pay("", KEY_1, &foreign)
        .problem(403, "SIGNATURE_INVALID");
    let holder = KeyPair::generate();
    let open = json!({ "phone": "13712345678", "public_key": holder.public_key().to_hex() });
    world
        .post(
            "/v1/operators/OP01/wallets",
            other,
            None,
            open.to_string().as_bytes(),
        )
        .problem(403, "ROLE_NOT_ALLOWED");
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
    // The central bank reads everything pseudonymous.
    let read = world.get(
        &format!("/v1/wallets/{}", world.alice.0),
        &world.central_bank,
    );
    assert_eq!(read.status, 200, "{}", read.text());
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
    let body = world.payment(*alice, world.bob.0, "1.00", KEY_1, key);
    world
        .pay("", KEY_1, &body)
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
        .pay("", KEY_1, &too_big)
        .problem(413, "BODY_TOO_LARGE");
    let (alice, key) = &world.alice;
    let body = world.payment(*alice, world.bob.0, "1.00", KEY_1, key);
    assert_eq!(world.pay("", KEY_1, &body).status, 201);
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
    let _ = auth;
    let headers = [
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

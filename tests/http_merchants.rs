//! The acquiring flows over real HTTP against a server started per test: merchant QR (static and
//! dynamic, rendered to PNG and read back by a QR decoder), the NFC tap zone, cash on delivery,
//! payment codes at a scan gun, sub-wallets, refunds and the settlement report; every denial and
//! bad input; the audit after each.

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::net::SocketAddr;
use std::path::Path;

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::channels::emvco::MerchantQr;
use ecny::channels::payment_request::{request_payment, RequestRead};
use ecny::command::{Command, Entry, Outcome};
use ecny::ids::{IdempotencyKey, MerchantId, OperatorId, SubWalletId, WalletId};
use ecny::platform::Platform;
use ecny::server::{Server, ServerConfig};
use ecny::signing::{DeploymentId, SigningContext};
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::WalletClass;
use http_client::{send, Reply};
use serde_json::{json, Value};

struct Holder {
    wallet: WalletId,
    key: KeyPair,
}

struct World {
    dir: tempfile::TempDir,
    server: Server,
    /// OP01's and OP02's administrators' bearer tokens.
    operators: [String; 2],
    /// A compliance officer at OP01 and one at OP02.
    compliance: [String; 2],
    central_bank: String,
    /// A class 2 wallet at OP01 a merchant can settle into.
    shop_wallet: WalletId,
    /// The shop owner's own session, for that wallet.
    shop_session: String,
    /// A class 3 wallet at OP02 holding ¥2,000.00.
    li: Holder,
    /// Li's session: Li's app reads with it (the payment code, the wallet).
    li_session: String,
    next_key: u128,
}

fn seed(dir: &Path) -> (Holder, Holder) {
    let (mut platform, _) = Platform::open(dir).unwrap();
    let ops = served::two_funded_operators(&mut platform);
    let mut banked = |op: OperatorId, phone: u64, class: WalletClass, cash: &str| {
        let key = KeyPair::generate();
        let open = Command::OpenWallet {
            operator: op,
            phone: phone.into(),
            public_key: key.public_key(),
        };
        let Ok(Outcome::Wallet(wallet)) = platform.one(op, open).unwrap() else {
            panic!("wallet refused")
        };
        let Ok(Outcome::Account(account)) = platform
            .one(op, Command::OpenDepositAccount { operator: op })
            .unwrap()
        else {
            panic!("account refused")
        };
        for command in [
            Command::CashDeposit {
                account,
                amount: "5000".parse().unwrap(),
            },
            platform.sign_as_holder(
                Command::BindBankAccount {
                    wallet,
                    account,
                    auth: None,
                },
                &key,
                op,
            ),
            Command::UpgradeWallet {
                wallet,
                to: class,
                name: Some("Zhang San".into()),
                id_number: Some("110101199003074514".into()),
                in_person: false,
            },
            platform.sign_as_holder(
                Command::Exchange {
                    wallet,
                    amount: cash.parse().unwrap(),
                    key: IdempotencyKey(phone as u128),
                    auth: None,
                },
                &key,
                op,
            ),
        ] {
            platform.one(op, command).unwrap().unwrap();
        }
        Holder { wallet, key }
    };
    let shop = banked(ops[0], 13_800_000_001, WalletClass::Two, "1");
    let li = banked(ops[1], 13_900_000_002, WalletClass::Three, "2000");
    (shop, li)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (shop, li) = seed(dir.path());
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        })
        .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
        let operators = [read("OP01.token"), read("OP02.token")];
        let compliance = [0, 1]
            .map(|op| served::register_staff(&server, op, &operators[op], "compliance_officer"));
        World {
            shop_session: served::open_session(&server, shop.wallet, &shop.key),
            li_session: served::open_session(&server, li.wallet, &li.key),
            operators,
            compliance,
            central_bank: read("central-bank.token"),
            server,
            dir,
            shop_wallet: shop.wallet,
            li,
            next_key: 1,
        }
    }

    /// The same data directory served again after a clean stop: what survives is what the log
    /// and the snapshots hold.
    fn restarted(self) -> World {
        let World {
            dir,
            server,
            operators,
            compliance,
            central_bank,
            shop_wallet,
            shop_session,
            li,
            li_session,
            next_key,
        } = self;
        drop(server);
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        })
        .unwrap();
        World {
            dir,
            server,
            operators,
            compliance,
            central_bank,
            shop_wallet,
            shop_session,
            li,
            li_session,
            next_key,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `body` with `signer`'s public key, signature over `command` (over nothing if the wallet
    /// could not build one) and window's end: signed for this server's deployment and Li's
    /// operator, good for five minutes by the server's clock.
    fn signed(&self, signer: &KeyPair, command: Option<&Command>, body: Value) -> Value {
        self.signed_for(OperatorId(2), signer, command, body)
    }

    /// Signed naming `operator` in the context.
    fn signed_for(
        &self,
        operator: OperatorId,
        signer: &KeyPair,
        command: Option<&Command>,
        mut body: Value,
    ) -> Value {
        let stated = send(self.addr(), "GET", "/v1/context", &[], b"").ok(200);
        let context = SigningContext {
            deployment: DeploymentId::from_hex(stated["deployment"].as_str().unwrap()).unwrap(),
            operator,
        };
        let not_after_ms = stated["now_ms"].as_u64().unwrap() + 5 * 60 * 1000;
        let signed = command.map_or_else(Vec::new, |c| c.signing_bytes(&context, not_after_ms));
        body["public_key"] = json!(signer.public_key().to_hex());
        body["signature"] = json!(signer.sign(&signed).to_hex());
        body["not_after_ms"] = json!(not_after_ms);
        body
    }

    /// Li's payment code now, as Li's app shows it (with Li's session).
    fn li_code(&self) -> String {
        let path = format!("/v1/wallets/{}/payment-code", self.li.wallet);
        let shown = self.get(&path, &self.li_session).ok(200);
        shown["code"].as_str().unwrap().to_string()
    }

    fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(0xabc0_0000 + self.next_key)
    }

    /// `token` empty: no Authorization header.
    fn get(&self, path: &str, token: &str) -> Reply {
        let auth = bearer(token);
        let headers: Vec<(&str, &str)> = if token.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth.as_str())]
        };
        send(self.addr(), "GET", path, &headers, b"")
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        key: Option<IdempotencyKey>,
        body: &Value,
    ) -> Reply {
        self.raw(method, path, token, key, body.to_string().as_bytes())
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        key: Option<IdempotencyKey>,
        body: &[u8],
    ) -> Reply {
        // `token` empty: no Authorization header (a holder's signed command needs none).
        let auth = bearer(token);
        let key = key.map(|k| k.to_string());
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        if let Some(key) = &key {
            headers.push(("Idempotency-Key", key.as_str()));
        }
        send(self.addr(), method, path, &headers, body)
    }

    /// Onboards the shop at OP01; its token.
    fn onboard(&self) -> (MerchantId, String) {
        let body = json!({
            "wallet": self.shop_wallet.to_string(),
            "name": "Pingjiang Snacks",
            "mcc": "5814",
            "region": 320500,
        });
        let reply = self
            .call(
                "POST",
                "/v1/operators/OP01/merchants",
                &self.operators[0],
                None,
                &body,
            )
            .ok(201);
        assert_eq!(reply["qr"].as_str().unwrap()[..6].to_string(), "000201");
        let id = reply["merchant"].as_str().unwrap().parse().unwrap();
        (id, reply["token"].as_str().unwrap().to_string())
    }

    fn terminal(&self, merchant: MerchantId, token: &str, kind: &str) -> String {
        let reply = self
            .call(
                "POST",
                &format!("/v1/merchants/{merchant}/terminals"),
                token,
                None,
                &json!({ "kind": kind }),
            )
            .ok(201);
        assert_eq!(reply["kind"], kind);
        reply["token"].as_str().unwrap().to_string()
    }

    /// Li's app pays a request (a QR payload) as Li signed it.
    fn pay_request(&mut self, payload: &str, typed: Option<&str>, read: &str) -> Reply {
        let key = self.key();
        self.pay_request_with(payload, typed, read, key, &self.li.key.clone())
    }

    fn pay_request_with(
        &self,
        payload: &str,
        typed: Option<&str>,
        read: &str,
        key: IdempotencyKey,
        signer: &KeyPair,
    ) -> Reply {
        // The wallet builds the command from the request it read, as the server will.
        let how = if read == "tapped" {
            RequestRead::Tapped
        } else {
            RequestRead::Scanned
        };
        let typed_amount = typed.map(|t| t.parse::<Amount>().unwrap());
        let command = MerchantQr::parse(payload).ok().and_then(|request| {
            request_payment(self.li.wallet, &request, typed_amount, how, key).ok()
        });
        // What the wallet cannot build it still sends, signed over nothing, for the server to judge.
        let body = json!({
            "payer": self.li.wallet.to_string(),
            "request": payload,
            "read": read,
        });
        let mut body = self.signed(signer, command.as_ref(), body);
        if let Some(typed) = typed {
            body["amount"] = json!(typed);
        }
        // Li's signature is the authority: Li's app sends no token.
        self.call("POST", "/v1/request-payments", "", Some(key), &body)
    }

    fn balance(&self, op: usize, wallet: WalletId) -> String {
        self.get(&format!("/v1/wallets/{wallet}"), &self.operators[op])
            .ok(200)["balance"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn assert_audit_clean(&self) {
        let report = self.get("/v1/audit", &self.central_bank).ok(200);
        assert_eq!(report["clean"], true, "{report}");
    }
}

#[test]
fn a_printed_qr_rendered_to_png_is_read_back_parsed_and_paid() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let png = world.get(
        &format!("/v1/merchants/{shop}/qr?format=png"),
        &world.operators[1].clone(),
    );
    assert_eq!(
        (png.status, png.header("content-type")),
        (200, Some("image/png"))
    );
    let decoded = ecny::channels::decode_png(&png.body).unwrap();
    assert_eq!(decoded.len(), 1);
    let svg = world.get(&format!("/v1/merchants/{shop}/qr?format=svg"), &token);
    assert!(svg.text().contains("<svg"));
    let paid = world
        .pay_request(&decoded[0], Some("66.60"), "scanned")
        .ok(201);
    assert_eq!(
        (paid["merchant"].as_str(), paid["amount"].as_str()),
        (Some(shop.to_string().as_str()), Some("66.60"))
    );
    assert_eq!(paid["name"], "Pingjiang Snacks");
    assert_eq!(world.balance(1, world.li.wallet), "1933.40");
    assert_eq!(world.balance(0, world.shop_wallet), "67.60");
    // A printed QR needs the amount the payer typed.
    world
        .pay_request(&decoded[0], None, "scanned")
        .problem(422, "AMOUNT_REQUIRED");
    // The merchant sees the payment, never the payer.
    let listed = world
        .get(&format!("/v1/merchants/{shop}/payments"), &token)
        .ok(200);
    let payments = listed["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["channel"], "static_qr");
    assert!(!listed.to_string().contains(&world.li.wallet.to_string()));
    world.assert_audit_clean();
}

#[test]
fn an_order_qr_is_paid_once_and_damaged_or_expired_ones_move_nothing() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let till = world.terminal(shop, &token, "pos");
    let order = world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &till,
            None,
            &json!({ "reference": "TILL-0001", "amount": "120.00" }),
        )
        .ok(201);
    assert_eq!(
        (order["status"].as_str(), order["terminal"].as_u64()),
        (Some("open"), Some(1))
    );
    let payload = order["qr"].as_str().unwrap().to_string();

    // One altered character: the CRC catches it and nothing moves.
    let damaged = payload.replacen("120.00", "020.00", 1);
    world
        .pay_request(&damaged, None, "scanned")
        .problem(422, "QR_CRC_MISMATCH");
    // An amount that disagrees with the order is refused with the order's amount.
    let key = world.key();
    let signer = world.li.key.clone();
    world
        .pay_request_with(&payload, Some("12.00"), "scanned", key, &signer)
        .problem(422, "ORDER_AMOUNT_MISMATCH");
    // A signature by any key but the wallet's own moves nothing.
    world
        .pay_request_with(&payload, None, "scanned", key, &KeyPair::generate())
        .problem(403, "SIGNATURE_INVALID");
    assert_eq!(world.balance(1, world.li.wallet), "2000.00");

    let paid = world.pay_request(&payload, None, "scanned").ok(201);
    assert_eq!(paid["order"], "TILL-0001");
    world
        .pay_request(&payload, None, "scanned")
        .problem(409, "ORDER_ALREADY_PAID");
    let status = world
        .get(&format!("/v1/merchants/{shop}/orders/TILL-0001"), &token)
        .ok(200);
    assert_eq!(
        (status["status"].as_str(), status["transfer"].clone()),
        (Some("paid"), paid["transfer"].clone())
    );

    // The order's PNG, read back by the decoder, carries the same payload.
    let png = world.get(
        &format!("/v1/merchants/{shop}/qr?format=png&order=TILL-0001"),
        &till,
    );
    assert_eq!(
        ecny::channels::decode_png(&png.body).unwrap(),
        vec![payload.clone()]
    );

    // An order that expires in a second.
    let short = world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &till,
            None,
            &json!({ "reference": "TILL-0002", "amount": "5.00", "valid_s": 1 }),
        )
        .ok(201);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    world
        .pay_request(short["qr"].as_str().unwrap(), None, "scanned")
        .problem(422, "QR_EXPIRED");
    assert_eq!(world.balance(1, world.li.wallet), "1880.00");
    world.assert_audit_clean();
}

#[test]
fn the_tap_zone_tag_and_the_couriers_qr_pay_and_deliver() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let tag = world.get(
        &format!("/v1/merchants/{shop}/tap-zone"),
        &world.operators[1].clone(),
    );
    assert_eq!(tag.header("content-type"), Some("application/octet-stream"));
    let request = ecny::channels::read_tap_zone(&tag.body).unwrap();
    let paid = world
        .pay_request(&request.encode().unwrap(), Some("8.00"), "tapped")
        .ok(201);

    let courier = world.terminal(shop, &token, "courier");
    let till = world.terminal(shop, &token, "pos");
    let body = json!({ "reference": "COD-77", "amount": "35.50", "cash_on_delivery": true });
    world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &till,
            None,
            &body,
        )
        .problem(422, "TERMINAL_KIND_WRONG");
    let order = world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &courier,
            None,
            &body,
        )
        .ok(201);
    assert!(order["cash_on_delivery"].as_bool().unwrap());
    world
        .pay_request(order["qr"].as_str().unwrap(), None, "scanned")
        .ok(201);
    let status = world
        .get(&format!("/v1/merchants/{shop}/orders/COD-77"), &courier)
        .ok(200);
    assert_eq!(status["status"], "delivered");

    let report = world
        .get(&format!("/v1/merchants/{shop}/settlement"), &token)
        .ok(200);
    assert_eq!(
        (report["payments"].as_u64(), report["gross"].as_str()),
        (Some(2), Some("43.50"))
    );
    let channels: Vec<&str> = report["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["tap_zone", "cash_on_delivery"]);
    assert!(paid["transfer"].as_str().unwrap().starts_with('T'));
    world.assert_audit_clean();
}

#[test]
fn a_payment_code_pays_once_at_a_scan_gun_and_guessing_is_rate_limited() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let gun = world.terminal(shop, &token, "scan_gun");
    let li = world.li.wallet;
    // Only Li shows Li's code: not another operator, not even Li's own operator's staff, and
    // another holder hears of Li's wallet as of none.
    let code_path = format!("/v1/wallets/{li}/payment-code");
    for staff in [&world.operators[0], &world.operators[1]] {
        world.get(&code_path, staff).problem(403, "HOLDER_ONLY");
    }
    world
        .get(&code_path, &world.shop_session)
        .problem(404, "UNKNOWN_WALLET");
    let shown = world.get(&code_path, &world.li_session).ok(200);
    let code = shown["code"].as_str().unwrap().to_string();
    assert_eq!((code.len(), &code[..4]), (18, "2802"));

    let path = format!("/v1/merchants/{shop}/code-payments");
    let body = json!({ "code": code, "amount": "18.00" });
    let key = world.key();
    // A merchant's own token is not a code reader: codes are read at terminals.
    world
        .call("POST", &path, &token, Some(key), &body)
        .problem(403, "TERMINAL_ONLY");
    let first = world.call("POST", &path, &gun, Some(key), &body).ok(201);
    // The till retries after a lost answer: the same charge, not a second one.
    let retry = world.call("POST", &path, &gun, Some(key), &body).ok(201);
    assert_eq!(first["transfer"], retry["transfer"]);
    let again = world.key();
    world
        .call("POST", &path, &gun, Some(again), &body)
        .problem(409, "CODE_REUSED");
    assert_eq!(world.balance(1, li), "1982.00");

    // Made-up codes: refused, then the terminal is locked out for a while.
    for guess in 0..5 {
        let made_up =
            json!({ "code": format!("2802{:014}", 12_345_678_901u64 + guess), "amount": "1.00" });
        let key = world.key();
        world
            .call("POST", &path, &gun, Some(key), &made_up)
            .problem(422, "CODE_UNKNOWN");
    }
    let key = world.key();
    let fresh = world.get(&code_path, &world.li_session).ok(200);
    let locked = json!({ "code": fresh["code"], "amount": "1.00" });
    let limited = world.call("POST", &path, &gun, Some(key), &locked);
    limited.problem(429, "CODE_RATE_LIMITED");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let key = world.key();
    world
        .call(
            "POST",
            &path,
            &gun,
            Some(key),
            &json!({ "code": "12345", "amount": "1.00" }),
        )
        .problem(422, "CODE_MALFORMED");
    assert_eq!(world.balance(1, li), "1982.00");
    world.assert_audit_clean();
}

#[test]
fn one_merchants_guessing_terminals_lock_out_that_merchant_alone() {
    let mut world = World::new();
    let (guesser, guesser_token) = world.onboard();
    let (honest, honest_token) = world.onboard();
    let honest_gun = world.terminal(honest, &honest_token, "scan_gun");
    // The guessing merchant adds terminals and fails from each as often as one terminal may,
    // past what all of a merchant's terminals together may.
    let guns: Vec<String> = (0..6)
        .map(|_| world.terminal(guesser, &guesser_token, "scan_gun"))
        .collect();
    let path = format!("/v1/merchants/{guesser}/code-payments");
    let mut failed = 0;
    for (n, gun) in guns.iter().enumerate().take(5) {
        for guess in 0..5u64 {
            let code = format!("2802{:014}", 12_345_678_901u64 + 10 * n as u64 + guess);
            let key = world.key();
            let reply = world.call(
                "POST",
                &path,
                gun,
                Some(key),
                &json!({ "code": code, "amount": "1.00" }),
            );
            if reply.status == 422 {
                reply.problem(422, "CODE_UNKNOWN");
                failed += 1;
            } else {
                reply.problem(429, "CODE_RATE_LIMITED");
            }
        }
    }
    assert_eq!(failed, 20, "a merchant's terminals share one budget");
    // A fresh terminal of the same merchant is refused too, even with a real code.
    let key = world.key();
    world
        .call(
            "POST",
            &path,
            &guns[5],
            Some(key),
            &json!({ "code": world.li_code(), "amount": "1.00" }),
        )
        .problem(429, "CODE_RATE_LIMITED");
    // Another merchant's till charges Li's code as ever.
    let key = world.key();
    world
        .call(
            "POST",
            &format!("/v1/merchants/{honest}/code-payments"),
            &honest_gun,
            Some(key),
            &json!({ "code": world.li_code(), "amount": "18.00" }),
        )
        .ok(201);
    assert_eq!(world.balance(1, world.li.wallet), "1982.00");
    world.assert_audit_clean();
}

#[test]
fn a_code_is_charged_once_ever_across_a_restart_and_twenty_identical_charges_share_one_answer() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let gun = world.terminal(shop, &token, "scan_gun");
    let path = format!("/v1/merchants/{shop}/code-payments");
    let body = json!({ "code": world.li_code(), "amount": "18.00" });
    // Twenty tills' worth of the same charge at once (one till retrying hard): one charge.
    let key = world.key();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| world.call("POST", &path, &gun, Some(key), &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let answers: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|reply| reply.ok(201)["transfer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(world.balance(1, world.li.wallet), "1982.00");

    // What is spent stays spent: after a restart the code is still used, the first key still
    // answers the first charge.
    let mut world = world.restarted();
    let again = world.key();
    world
        .call("POST", &path, &gun, Some(again), &body)
        .problem(409, "CODE_REUSED");
    let retry = world.call("POST", &path, &gun, Some(key), &body).ok(201);
    assert_eq!(
        Some(retry["transfer"].as_str().unwrap()),
        answers.first().map(String::as_str)
    );
    assert_eq!(world.balance(1, world.li.wallet), "1982.00");
    world.assert_audit_clean();
}

#[test]
fn a_payment_code_takes_no_more_than_the_password_free_cap() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let gun = world.terminal(shop, &token, "scan_gun");
    let path = format!("/v1/merchants/{shop}/code-payments");
    // Below Li's class-3 single-payment limit (5,000) but above the cap (1,000 by default).
    let key = world.key();
    let over = json!({ "code": world.li_code(), "amount": "1000.01" });
    world
        .call("POST", &path, &gun, Some(key), &over)
        .problem(422, "LIMIT_PASSWORD_FREE");
    let key = world.key();
    let at_cap = json!({ "code": world.li_code(), "amount": "1000.00" });
    world.call("POST", &path, &gun, Some(key), &at_cap).ok(201);
    assert_eq!(world.balance(1, world.li.wallet), "1000.00");
    world.assert_audit_clean();
}

#[test]
fn the_operators_administrator_sets_the_password_free_cap_and_no_one_else_does() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let gun = world.terminal(shop, &token, "scan_gun");
    let cap_path = "/v1/operators/OP02/code-payment-cap";
    let lower = json!({ "cap": "500.00" });
    // Another operator's administrator, a compliance officer, a merchant: refused.
    world
        .call("PUT", cap_path, &world.operators[0].clone(), None, &lower)
        .problem(403, "NOT_YOUR_OPERATOR");
    world
        .call("PUT", cap_path, &world.compliance[1].clone(), None, &lower)
        .problem(403, "ROLE_NOT_ALLOWED");
    world
        .call("PUT", cap_path, &token, None, &lower)
        .problem(403, "STAFF_ONLY");
    for bad in ["0", "-1", "1,000", "abc"] {
        let body = json!({ "cap": bad });
        let reply = world.call("PUT", cap_path, &world.operators[1].clone(), None, &body);
        assert_eq!(reply.status, 422, "{bad}: {}", reply.text());
    }
    let set = world
        .call("PUT", cap_path, &world.operators[1].clone(), None, &lower)
        .ok(200);
    assert_eq!(
        (set["operator"].as_str(), set["cap"].as_str()),
        (Some("OP02"), Some("500.00"))
    );
    // Anyone reads it with the operator's limits; a charge above it is refused, at it goes.
    let limits = world.get("/v1/operators/OP02/limits", "").ok(200);
    assert_eq!(limits["code_payment_cap"], "500.00");
    let path = format!("/v1/merchants/{shop}/code-payments");
    let key = world.key();
    let over = json!({ "code": world.li_code(), "amount": "500.01" });
    world
        .call("POST", &path, &gun, Some(key), &over)
        .problem(422, "LIMIT_PASSWORD_FREE");
    let key = world.key();
    let at_cap = json!({ "code": world.li_code(), "amount": "500.00" });
    world.call("POST", &path, &gun, Some(key), &at_cap).ok(201);
    assert_eq!(world.balance(1, world.li.wallet), "1500.00");
    world.assert_audit_clean();
}

#[test]
fn a_sub_wallet_pays_a_shop_within_limits_the_holder_sets_and_closes() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let li = world.li.wallet;
    let limits = SubWalletLimits {
        per_payment: "200".parse().unwrap(),
        daily: "300".parse().unwrap(),
    };
    let open = Command::OpenSubWallet {
        wallet: li,
        merchant: shop,
        limits,
        auth: None,
    };
    let body = json!({
        "merchant": shop.to_string(),
        "per_payment": "200",
        "daily": "300",
    });
    let body = world.signed(&world.li.key, Some(&open), body);
    let path = format!("/v1/wallets/{li}/sub-wallets");
    // No operator's staff may submit what Li signed; Li's signature made naming another operator
    // does not hold for Li's wallet; a forged signature is refused.
    for staff in [&world.operators[0], &world.operators[1]] {
        world
            .call("POST", &path, staff, None, &body)
            .problem(403, "HOLDER_ONLY");
    }
    let elsewhere = world.signed_for(
        OperatorId(1),
        &world.li.key,
        Some(&open),
        json!({ "merchant": shop.to_string(), "per_payment": "200", "daily": "300" }),
    );
    world
        .call("POST", &path, "", None, &elsewhere)
        .problem(403, "SIGNATURE_INVALID");
    let mut forged = body.clone();
    forged["daily"] = json!("3000");
    world
        .call("POST", &path, "", None, &forged)
        .problem(403, "SIGNATURE_INVALID");
    let opened = world.call("POST", &path, "", None, &body).ok(201);
    let sub: SubWalletId = opened["sub_wallet"].as_str().unwrap().parse().unwrap();

    // The shop sees the token and limits, never Li's wallet.
    let seen = world
        .get(&format!("/v1/merchants/{shop}/sub-wallets"), &token)
        .ok(200);
    assert_eq!(seen[0]["sub_wallet"], sub.to_string());
    assert!(seen[0].get("wallet").is_none() && !seen.to_string().contains(&li.to_string()));
    // A merchant reading a holder's wallet is turned away.
    world
        .get(&format!("/v1/wallets/{li}"), &token)
        .problem(403, "PARTY_NOT_ALLOWED");

    let charges = format!("/v1/merchants/{shop}/sub-wallet-charges");
    let charge = |amount: &str| json!({ "sub_wallet": sub.to_string(), "amount": amount });
    let key = world.key();
    world
        .call("POST", &charges, &token, Some(key), &charge("150"))
        .ok(201);
    let key = world.key();
    world
        .call("POST", &charges, &token, Some(key), &charge("200.01"))
        .problem(422, "SUB_WALLET_LIMIT_SINGLE");
    let key = world.key();
    world
        .call("POST", &charges, &token, Some(key), &charge("150.01"))
        .problem(422, "SUB_WALLET_LIMIT_DAILY");

    // Li closes it: refused at once.
    let close = Command::SetSubWallet {
        sub_wallet: sub,
        limits,
        open: false,
        auth: None,
    };
    let body = json!({
        "per_payment": "200",
        "daily": "300",
        "open": false,
    });
    let body = world.signed(&world.li.key, Some(&close), body);
    let closed = world
        .call("PUT", &format!("/v1/sub-wallets/{sub}"), "", None, &body)
        .ok(200);
    assert_eq!(closed["open"], false);
    let key = world.key();
    world
        .call("POST", &charges, &token, Some(key), &charge("1"))
        .problem(422, "SUB_WALLET_CLOSED");
    assert_eq!(world.balance(1, li), "1850.00");
    world.assert_audit_clean();
}

#[test]
fn refunds_go_back_along_the_payment_and_only_the_payee_gives_them() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let request = world
        .get(&format!("/v1/merchants/{shop}/qr"), &token)
        .ok(200);
    let payload = request["qr"].as_str().unwrap().to_string();
    let paid = world
        .pay_request(&payload, Some("100.00"), "scanned")
        .ok(201);
    let payment = paid["transfer"].as_str().unwrap().to_string();
    let path = format!("/v1/merchants/{shop}/refunds");
    let key = world.key();
    let refund = |amount: &str| json!({ "payment": payment, "amount": amount });
    let first = world
        .call("POST", &path, &token, Some(key), &refund("30.00"))
        .ok(201);
    assert_eq!(first["payment"], payment);
    // The same key with another body is a conflict, not a second refund.
    world
        .call("POST", &path, &token, Some(key), &refund("31.00"))
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    let key = world.key();
    world
        .call("POST", &path, &token, Some(key), &refund("70.01"))
        .problem(422, "REFUND_EXCEEDS_PAYMENT");
    assert_eq!(world.balance(1, world.li.wallet), "1930.00");

    // Another merchant cannot refund this sale, nor can the operator's token act as the shop.
    let other = world
        .call(
            "POST",
            "/v1/operators/OP01/merchants",
            &world.operators[0].clone(),
            None,
            &json!({ "wallet": world.shop_wallet.to_string(), "name": "Other", "mcc": "5411", "region": 320500 }),
        )
        .ok(201);
    let other_token = other["token"].as_str().unwrap();
    let other_id = other["merchant"].as_str().unwrap();
    let key = world.key();
    world
        .call(
            "POST",
            &format!("/v1/merchants/{other_id}/refunds"),
            other_token,
            Some(key),
            &refund("1"),
        )
        .problem(404, "NOT_A_MERCHANT_PAYMENT");
    world
        .call("POST", &path, other_token, Some(key), &refund("1"))
        .problem(403, "NOT_YOUR_MERCHANT");
    world
        .call(
            "POST",
            &path,
            &world.operators[0].clone(),
            Some(key),
            &refund("1"),
        )
        .problem(403, "MERCHANT_ONLY");

    let report = world
        .get(&format!("/v1/merchants/{shop}/settlement"), &token)
        .ok(200);
    assert_eq!(
        (
            report["gross"].as_str(),
            report["refunded"].as_str(),
            report["net"].as_str()
        ),
        (Some("100.00"), Some("30.00"), Some("70.00"))
    );
    world
        .get(
            &format!("/v1/merchants/{shop}/settlement?date=2026-02-30"),
            &token,
        )
        .problem(400, "MALFORMED_DATE");
    world
        .get(&format!("/v1/merchants/{shop}/settlement?day=1"), &token)
        .problem(400, "MALFORMED_QUERY");
    world.assert_audit_clean();
}

#[test]
fn bad_input_to_every_acquiring_endpoint_is_a_clear_problem_and_moves_nothing() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let op2 = world.operators[1].clone();
    let op1 = world.operators[0].clone();
    let key = Some(world.key());
    let posts: [(&str, String, &str, Option<IdempotencyKey>); 8] = [
        ("POST", "/v1/operators/OP01/merchants".into(), &op1, None),
        (
            "POST",
            format!("/v1/merchants/{shop}/terminals"),
            &token,
            None,
        ),
        ("POST", format!("/v1/merchants/{shop}/orders"), &token, None),
        (
            "POST",
            format!("/v1/merchants/{shop}/sub-wallet-charges"),
            &token,
            key,
        ),
        ("POST", format!("/v1/merchants/{shop}/refunds"), &token, key),
        // A holder's signed commands come with no token.
        ("POST", "/v1/request-payments".into(), "", key),
        (
            "POST",
            format!("/v1/wallets/{}/sub-wallets", world.li.wallet),
            "",
            None,
        ),
        ("PUT", "/v1/sub-wallets/SW00000001".into(), "", None),
    ];
    for (method, path, caller, key) in &posts {
        world
            .raw(method, path, caller, *key, b"{\"")
            .problem(400, "JSON_SYNTAX");
        world
            .raw(method, path, caller, *key, b"[1,2,3]")
            .problem(422, "JSON_DATA");
        world
            .raw(method, path, caller, *key, b"{\"amount\": 5}")
            .problem(422, "JSON_DATA");
        let huge = vec![b' '; ecny::server::REQUEST_BODY_BYTES_MAX + 1];
        world
            .raw(method, path, caller, *key, &huge)
            .problem(413, "BODY_TOO_LARGE");
    }
    // Money-moving requests need their idempotency key.
    let gun = world.terminal(shop, &token, "scan_gun");
    for (path, caller) in [
        (format!("/v1/merchants/{shop}/sub-wallet-charges"), &token),
        (format!("/v1/merchants/{shop}/refunds"), &token),
        (format!("/v1/merchants/{shop}/code-payments"), &gun),
    ] {
        world
            .raw("POST", &path, caller, None, b"{}")
            .problem(400, "IDEMPOTENCY_KEY_MISSING");
    }
    world
        .pay_request("000201not a qr", Some("1"), "scanned")
        .problem(422, "QR_MALFORMED");
    world
        .pay_request("hello", Some("1"), "scanned")
        .problem(422, "QR_MALFORMED");
    let bad_onboard = |field: &str, value: Value| {
        let mut body = json!({ "wallet": world.shop_wallet.to_string(), "name": "Shop", "mcc": "5411", "region": 320500 });
        body[field] = value;
        world.call("POST", "/v1/operators/OP01/merchants", &op1, None, &body)
    };
    bad_onboard("mcc", json!("54")).problem(422, "MALFORMED_MCC");
    bad_onboard("region", json!(32)).problem(422, "MALFORMED_REGION");
    bad_onboard("name", json!("")).problem(422, "MALFORMED_MERCHANT_NAME");
    // Text longer than the log can encode is refused before anything signs or encodes it.
    bad_onboard("name", json!("店".repeat(300))).problem(422, "TEXT_TOO_LONG");
    bad_onboard("wallet", json!("W0000000099")).problem(404, "UNKNOWN_WALLET");
    world
        .call(
            "POST",
            "/v1/operators/OP01/merchants",
            &op2,
            None,
            &json!({ "wallet": "W1", "name": "x", "mcc": "5411", "region": 320500 }),
        )
        .problem(403, "NOT_YOUR_OPERATOR");
    world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/terminals"),
            &token,
            None,
            &json!({ "kind": "toaster" }),
        )
        .problem(422, "MALFORMED_TERMINAL_KIND");
    world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &token,
            None,
            &json!({ "reference": "A", "amount": "1", "valid_s": 0 }),
        )
        .problem(422, "ORDER_VALIDITY_OUT_OF_RANGE");
    world
        .call(
            "POST",
            &format!("/v1/merchants/{shop}/orders"),
            &token,
            None,
            &json!({ "reference": "", "amount": "1" }),
        )
        .problem(422, "MALFORMED_ORDER_REFERENCE");
    world
        .get("/v1/merchants/M00000099", &token)
        .problem(404, "UNKNOWN_MERCHANT");
    world
        .get("/v1/merchants/nope", &token)
        .problem(400, "MALFORMED_ID");
    world
        .get(&format!("/v1/merchants/{shop}/orders/NOPE"), &token)
        .problem(404, "UNKNOWN_ORDER");
    world
        .get(&format!("/v1/merchants/{shop}/qr?format=gif"), &token)
        .problem(400, "MALFORMED_FORMAT");
    world
        .get(&format!("/v1/merchants/{shop}"), "M00000001.forged")
        .problem(401, "UNAUTHENTICATED");
    assert_eq!(world.balance(1, world.li.wallet), "2000.00");
    assert!(world.dir.path().join("keys").join("token-secret").exists());
    world.assert_audit_clean();
}

#[test]
fn a_prepaid_term_is_opened_confirmed_and_cancelled_and_the_regulator_reads_it() {
    let mut world = World::new();
    let (_, merchant_token) = world.onboard();
    let li = world.li.wallet;
    let school = world.shop_wallet;
    let template = ecny::programs::contracts::Template::Prepaid {
        units: 40,
        unit_price: "25.00".parse().unwrap(),
    };
    let key = world.key();
    let open = Command::OpenContract {
        payer: li,
        payee: school,
        template,
        purpose: "piano, autumn term".into(),
        key,
        auth: None,
    };
    let body = json!({
        "payer": li.to_string(), "payee": school.to_string(), "template": "prepaid",
        "purpose": "piano, autumn term", "units": 40, "unit_price": "25.00",
    });
    let body = world.signed(&world.li.key, Some(&open), body);
    // Li's app sends Li's signature and no token; OP02's staff read with their own.
    let (li_app, op2) = ("", world.operators[1].clone());
    let opened = world
        .call("POST", "/v1/contracts", li_app, Some(key), &body)
        .ok(201);
    assert_eq!(
        (opened["status"].as_str(), opened["holding"].as_str()),
        (Some("active"), Some("1000.00"))
    );
    // A retry answers the same contract; the same key on other terms is a conflict.
    let again = world
        .call("POST", "/v1/contracts", li_app, Some(key), &body)
        .ok(201);
    assert_eq!(again["contract"], opened["contract"]);
    let mut other = body.clone();
    other["units"] = json!(41);
    world
        .call("POST", "/v1/contracts", li_app, Some(key), &other)
        .problem(403, "SIGNATURE_INVALID");
    assert_eq!(world.balance(1, li), "1000.00");

    let id: ecny::ids::ContractId = opened["contract"].as_str().unwrap().parse().unwrap();
    let key = world.key();
    let confirm = Command::ConfirmContract {
        contract: id,
        units: 3,
        key,
        auth: None,
    };
    let body = world.signed(&world.li.key, Some(&confirm), json!({ "units": 3 }));
    let confirmed = world
        .call(
            "POST",
            &format!("/v1/contracts/{id}/confirm"),
            li_app,
            Some(key),
            &body,
        )
        .ok(201);
    assert_eq!(confirmed["contract"]["holding"], "925.00");

    // The regulator and the school's operator read it; a merchant token may not.
    let seen = world
        .get(&format!("/v1/contracts/{id}"), &world.central_bank.clone())
        .ok(200);
    assert_eq!(
        (seen["delivered"].as_u64(), seen["released"].as_str()),
        (Some(3), Some("75.00"))
    );
    world
        .get(&format!("/v1/contracts/{id}"), &world.operators[0].clone())
        .ok(200);
    world
        .get(&format!("/v1/contracts/{id}"), &merchant_token)
        .problem(403, "PARTY_NOT_ALLOWED");
    world
        .get("/v1/contracts/C00000099", &op2)
        .problem(404, "UNKNOWN_CONTRACT");

    let cancel = Command::CancelContract {
        contract: id,
        by_payee: false,
        auth: None,
    };
    let body = world.signed(&world.li.key, Some(&cancel), json!({ "by": "payer" }));
    let cancelled = world
        .call(
            "POST",
            &format!("/v1/contracts/{id}/cancel"),
            li_app,
            None,
            &body,
        )
        .ok(200);
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["refunded"].as_str()),
        (Some("cancelled"), Some("925.00"))
    );
    assert_eq!(world.balance(1, li), "1925.00");
    let key = world.key();
    let lottery = json!({ "payer": "W1", "payee": "W2", "template": "lottery", "purpose": "",
        "public_key": "00", "signature": "00", "not_after_ms": 0 });
    world
        .call("POST", "/v1/contracts", li_app, Some(key), &lottery)
        .problem(422, "MALFORMED_TEMPLATE");
    world.assert_audit_clean();
}

#[test]
fn concurrent_payments_gathered_into_shared_batches_each_get_their_own_answer() {
    let mut world = World::new();
    let (shop, token) = world.onboard();
    let payload = world
        .get(&format!("/v1/merchants/{shop}/qr"), &token)
        .ok(200)["qr"]
        .as_str()
        .unwrap()
        .to_string();
    let request = MerchantQr::parse(&payload).unwrap();
    // Distinct keys, one refused by its amount, all sent at once from many threads.
    let bodies: Vec<(IdempotencyKey, Value)> = (0..32u32)
        .map(|n| {
            let key = world.key();
            let amount = if n == 7 { "5000.00" } else { "1.00" };
            let typed = Some(amount.parse::<Amount>().unwrap());
            let command =
                request_payment(world.li.wallet, &request, typed, RequestRead::Scanned, key)
                    .unwrap();
            let body = json!({
                "payer": world.li.wallet.to_string(), "request": payload, "amount": amount,
            });
            let body = world.signed(&world.li.key, Some(&command), body);
            (key, body)
        })
        .collect();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|(key, body)| {
                let world = &world;
                scope
                    .spawn(move || world.call("POST", "/v1/request-payments", "", Some(*key), body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut transfers = std::collections::BTreeSet::new();
    for (n, reply) in replies.iter().enumerate() {
        if n == 7 {
            reply.problem(422, "INSUFFICIENT_FUNDS");
        } else {
            transfers.insert(reply.ok(201)["transfer"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(transfers.len(), 31, "every payment has its own transfer");
    assert_eq!(world.balance(1, world.li.wallet), "1969.00");
    world.assert_audit_clean();
    // The log shows the batching: the 32 payments went in fewer log entries than payments.
    let World { server, dir, .. } = world;
    server.stop().unwrap();
    let mut per_entry = Vec::new();
    let log = ecny::storage::CommandLog::open(&dir.path().join("log"), 0, |_, payload: &[u8]| {
        let entry = Entry::decode(payload)?;
        let mut payments = 0;
        for command in entry.commands()? {
            payments += usize::from(matches!(command?, Command::PayMerchant { .. }));
        }
        if payments > 0 {
            per_entry.push(payments);
        }
        Ok::<(), ecny::codec::DecodeError>(())
    });
    drop(log.expect("the log reads back"));
    assert_eq!(
        per_entry.iter().sum::<usize>(),
        32,
        "every payment was logged once"
    );
    assert!(
        per_entry.iter().any(|&n| n > 1),
        "no two payments shared a batch: {per_entry:?}"
    );
}

#[test]
fn only_the_wallets_operator_links_it_to_a_person_with_a_reason_and_the_regulator_sees_the_log() {
    let world = World::new();
    let (_, merchant_token) = world.onboard();
    let li = world.li.wallet;
    let path = format!("/v1/wallets/{li}/deanonymize");
    let reason = json!({ "reason": "Suzhou PSB case 2026-118, request of 20 November" });
    let [op1, op2] = world.compliance.clone();
    // Another operator's compliance officer hears of the wallet as of none; Li's own operator's
    // administrator is not a compliance officer; the central bank and a merchant are not staff.
    world
        .call("POST", &path, &op1, None, &reason)
        .problem(404, "UNKNOWN_WALLET");
    world
        .call("POST", &path, &world.operators[1], None, &reason)
        .problem(403, "ROLE_NOT_ALLOWED");
    world
        .call("POST", &path, &world.central_bank, None, &reason)
        .problem(403, "STAFF_ONLY");
    world
        .call("POST", &path, &merchant_token, None, &reason)
        .problem(403, "STAFF_ONLY");
    world
        .call("POST", &path, &op2, None, &json!({ "reason": "   " }))
        .problem(422, "DEANONYMIZATION_REASON_INVALID");
    let disclosed = world.call("POST", &path, &op2, None, &reason).ok(201);
    assert_eq!(disclosed["name"], "Zhang San");
    assert_eq!(disclosed["phone"], "13900000002");
    // The regulator sees who looked and why, never who it was; another operator sees nothing.
    let log = world
        .get("/v1/deanonymizations", &world.central_bank)
        .ok(200);
    assert_eq!(
        log.as_array().unwrap().len(),
        1,
        "refused requests are not logged"
    );
    assert_eq!(log[0]["operator"], "OP02");
    assert_eq!(log[0]["reason"], reason["reason"]);
    assert!(!log.to_string().contains("Zhang San") && !log.to_string().contains("13900000002"));
    assert_eq!(world.get("/v1/deanonymizations", &op1).ok(200), json!([]));
    world.assert_audit_clean();
}

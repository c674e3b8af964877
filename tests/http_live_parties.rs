//! Every party's job on a running server, with the real `ecny` binary as each party's client: the
//! central bank admits an operator while serving (its desk and its administrator's token work at
//! once, no restart), funds, issues to it, redeems, suspends and reinstates it, and reads the
//! money in circulation by operator and form; a holder deposits back, reads a paged history,
//! freezes a lost phone's wallet (a teller unfreezes it), and closes the wallet with its balance
//! returned to the bound account, and pays a phone number at another operator. Other parties are
//! refused, bad input gets its code and moves nothing, and every story ends with a clean audit.
//! Most stories serve from the library's server on a loopback port; one runs `ecny serve` itself.

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use ecny::certs::KeyPair;
use ecny::command::Command;
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use http_client::{send, Reply};
use serde_json::{json, Value};
use served::{open_session, Served};

struct Desk {
    served: Served,
    work: tempfile::TempDir,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            served: Served::start(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn data(&self) -> &Path {
        self.served.dir.path()
    }

    /// Runs `ecny` with `--server` after the subcommand; (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Process::new(env!("CARGO_BIN_EXE_ecny"))
            .args(args)
            .current_dir(self.work.path())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args);
        assert!(success, "ecny {args:?} failed:\n{stdout}{stderr}");
        stdout
    }

    fn fails(&self, args: &[&str], code: &str) {
        let (success, stdout, stderr) = self.run(args);
        assert!(!success, "ecny {args:?} succeeded:\n{stdout}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&format!(" [{code}]")),
            "ecny {args:?} said:\n{stderr}"
        );
    }

    /// `ecny central-bank …` with the central bank's token from the data directory.
    fn central_bank(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = vec![
            "central-bank".into(),
            "--server".into(),
            self.served.url(),
            "--data".into(),
            self.data().to_str().unwrap().into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    fn wallet(&self, profile: &str, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = vec![
            "wallet".into(),
            "--profile".into(),
            profile.into(),
            "--server".into(),
            self.served.url(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    fn open_wallet(&self, profile: &str, operator: &str, phone: &str) -> WalletId {
        let opened = self.ok(&refs(
            &self.wallet(profile, &["open", "--operator", operator, "--phone", phone]),
        ));
        word_after(&opened, "opened wallet ").parse().unwrap()
    }

    /// A staff profile for a token the fixture registered.
    fn staff_profile(&self, name: &str, operator: &str, token: &str) {
        let profile = json!({ "server": self.served.url(), "operator": operator,
            "staff": "ST000001", "role": "teller", "token": token });
        std::fs::write(self.path(name), profile.to_string()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let owner_only = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(self.path(name), owner_only).unwrap();
        }
    }

    fn holder_key(&self, profile: &str) -> KeyPair {
        let text = std::fs::read_to_string(self.path(profile)).unwrap();
        let profile: Value = serde_json::from_str(&text).unwrap();
        KeyPair::from_secret_hex(profile["secret_key"].as_str().unwrap()).unwrap()
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        self.keyed(method, path, token, body, None)
    }

    fn keyed(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<IdempotencyKey>,
    ) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let key = key.map(|k| k.to_string());
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        if let Some(key) = &key {
            headers.push(("Idempotency-Key", key.as_str()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        send(
            self.served.server.addr(),
            method,
            path,
            &headers,
            bytes.as_bytes(),
        )
    }

    fn circulation(&self) -> Value {
        let cb = self.served.central_bank.clone();
        self.call("GET", "/v1/circulation", Some(&cb), None).ok(200)
    }

    fn balance(&self, wallet: WalletId) -> String {
        let cb = self.served.central_bank.clone();
        let view = self
            .call("GET", &format!("/v1/wallets/{wallet}"), Some(&cb), None)
            .ok(200);
        view["balance"].as_str().unwrap().to_string()
    }

    /// `ecny audit` beside the running server, and the audit over HTTP: both clean.
    fn audit_is_clean(&self) {
        let out = self.ok(&["audit", "--data", self.data().to_str().unwrap()]);
        assert!(!out.is_empty());
        let cb = self.served.central_bank.clone();
        let report = self.call("GET", "/v1/audit", Some(&cb), None).ok(200);
        assert_eq!(report["clean"], true, "{report}");
    }
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn word_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in:\n{text}"))
        + marker.len();
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', ')', ':'])
        .to_string()
}

fn operator_entry<'a>(circulation: &'a Value, operator: &str) -> &'a Value {
    circulation["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["operator"] == operator)
        .unwrap_or_else(|| panic!("{operator} not in {circulation}"))
}

#[test]
fn the_central_bank_admits_an_operator_while_serving_and_issues_to_it_without_a_restart() {
    let desk = Desk::new();
    let cb = |args: &[&str]| desk.central_bank(args);
    let admitted = desk.ok(&refs(&cb(&["admit", "--name", "Taihu Rural Bank"])));
    assert!(
        admitted.contains("admitted OP03 Taihu Rural Bank"),
        "{admitted}"
    );

    // Its administrator's token works at once: it registers a teller.
    let admin = std::fs::read_to_string(desk.data().join("keys/OP03.token")).unwrap();
    let teller = desk
        .call(
            "POST",
            "/v1/operators/OP03/staff",
            Some(admin.trim()),
            Some(&json!({ "role": "teller", "label": "Wuxi branch" })),
        )
        .ok(201);
    desk.staff_profile("teller3.json", "OP03", teller["token"].as_str().unwrap());

    desk.ok(&refs(&cb(&[
        "fund",
        "--operator",
        "OP03",
        "--amount",
        "1000000",
    ])));
    let issued = desk.ok(&refs(&cb(&[
        "issue",
        "--operator",
        "OP03",
        "--amount",
        "300000",
    ])));
    assert!(issued.contains("issued ¥300,000.00 for OP03"), "{issued}");

    // A holder opens a wallet at the new operator and exchanges deposits out of its vault.
    let wallet = desk.open_wallet("zhou.json", "OP03", "13600000003");
    desk.ok(&[
        "staff",
        "--profile",
        "teller3.json",
        "bank-account",
        "--wallet",
        &wallet.to_string(),
        "--cash",
        "2000",
    ]);
    desk.ok(&refs(
        &desk.wallet("zhou.json", &["top-up", "--amount", "800"]),
    ));
    assert_eq!(desk.balance(wallet), "800.00");

    let read = desk.circulation();
    let op3 = operator_entry(&read, "OP03");
    assert_eq!(op3["reserves"], "700000.00");
    assert_eq!(op3["backing"], "300000.00");
    assert_eq!(op3["circulation"]["wallets"], "800.00");
    assert_eq!(op3["circulation"]["vaults"], "299200.00");
    assert_eq!(op3["circulation"]["total"], "300000.00");
    assert_eq!(read["circulation"]["total"], read["issued_net"]);
    assert_eq!(read["issued_net"], "1300000.00");
    let printed = desk.ok(&refs(&cb(&["circulation"])));
    assert!(
        printed.contains("OP03 Taihu Rural Bank: reserves ¥700,000.00, backing ¥300,000.00"),
        "{printed}"
    );

    // Redemption comes out of the vault; more than the vault holds moves nothing.
    desk.ok(&refs(&cb(&[
        "redeem",
        "--operator",
        "OP03",
        "--amount",
        "100000",
    ])));
    desk.fails(
        &refs(&cb(&["redeem", "--operator", "OP03", "--amount", "250000"])),
        "REDEMPTION_EXCEEDS_BACKING",
    );
    // The holder's ¥800.00 is out of the vault: the vault cannot give back all the backing.
    desk.fails(
        &refs(&cb(&["redeem", "--operator", "OP03", "--amount", "199500"])),
        "VAULT_INSUFFICIENT",
    );
    desk.fails(
        &refs(&cb(&["issue", "--operator", "OP03", "--amount", "900000"])),
        "INSUFFICIENT_RESERVES",
    );
    let after = desk.circulation();
    assert_eq!(after["issued_net"], "1200000.00");
    assert_eq!(operator_entry(&after, "OP03")["backing"], "200000.00");

    // Suspended: nothing new comes in, the holder can still take money out; then reinstated.
    let suspended = desk.ok(&refs(&cb(&["suspend", "--operator", "OP03"])));
    assert!(suspended.contains("OP03 is suspended"), "{suspended}");
    desk.fails(
        &refs(&desk.wallet("zhou.json", &["top-up", "--amount", "10"])),
        "OPERATOR_SUSPENDED",
    );
    desk.fails(
        &refs(&cb(&["issue", "--operator", "OP03", "--amount", "10"])),
        "OPERATOR_SUSPENDED",
    );
    desk.ok(&refs(
        &desk.wallet("zhou.json", &["deposit-back", "--amount", "100"]),
    ));
    assert_eq!(desk.balance(wallet), "700.00");
    assert_eq!(
        operator_entry(&desk.circulation(), "OP03")["suspended"],
        true
    );
    desk.ok(&refs(&cb(&["reinstate", "--operator", "OP03"])));
    desk.ok(&refs(
        &desk.wallet("zhou.json", &["top-up", "--amount", "10"]),
    ));
    assert_eq!(desk.balance(wallet), "710.00");
    desk.audit_is_clean();
}

#[test]
fn only_the_central_bank_may_and_bad_input_moves_nothing() {
    let desk = Desk::new();
    let before = desk.circulation();
    let admin = desk.served.operators[0].clone();
    let teller = desk.served.tellers[0].clone();
    let key = KeyPair::generate();
    let wallet: WalletId = desk
        .call(
            "POST",
            "/v1/operators/OP01/wallets",
            Some(&teller),
            Some(&json!({ "phone": "13500000001", "public_key": key.public_key().to_hex() })),
        )
        .ok(201)["wallet"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let session = open_session(&desk.served.server, wallet, &key);
    let amount = json!({ "amount": "1000.00" });
    for (token, code) in [
        (Some(admin.as_str()), "CENTRAL_BANK_ONLY"),
        (Some(teller.as_str()), "CENTRAL_BANK_ONLY"),
        (Some(session.as_str()), "CENTRAL_BANK_ONLY"),
        (None, "UNAUTHENTICATED"),
    ] {
        let status = if token.is_some() { 403 } else { 401 };
        let (name, suspend) = (
            json!({ "name": "Rogue Bank" }),
            json!({ "suspended": true }),
        );
        let tries: [(&str, &str, Option<&Value>); 6] = [
            ("POST", "/v1/operators", Some(&name)),
            ("POST", "/v1/operators/OP01/reserves", Some(&amount)),
            ("POST", "/v1/operators/OP01/issuance", Some(&amount)),
            ("POST", "/v1/operators/OP01/redemption", Some(&amount)),
            ("PUT", "/v1/operators/OP02/suspension", Some(&suspend)),
            ("GET", "/v1/circulation", None),
        ];
        for (method, path, body) in tries {
            desk.call(method, path, token, body).problem(status, code);
        }
    }
    // An operator's token with the central bank's client is refused too.
    desk.fails(
        &[
            "central-bank",
            "--server",
            &desk.served.url(),
            "--token",
            &admin,
            "admit",
            "--name",
            "Rogue Bank",
        ],
        "CENTRAL_BANK_ONLY",
    );
    let cb = desk.served.central_bank.clone();
    let bad: [(&str, &str, Value, u16, &str); 7] = [
        (
            "POST",
            "/v1/operators",
            json!({ "name": "  " }),
            422,
            "OPERATOR_NAME_INVALID",
        ),
        (
            "POST",
            "/v1/operators",
            json!({ "name": "x".repeat(129) }),
            422,
            "OPERATOR_NAME_INVALID",
        ),
        (
            "POST",
            "/v1/operators/OP01/issuance",
            json!({ "amount": "1,50" }),
            422,
            "MALFORMED_AMOUNT",
        ),
        (
            "POST",
            "/v1/operators/OP01/issuance",
            json!({ "amount": "0" }),
            422,
            "AMOUNT_NOT_POSITIVE",
        ),
        (
            "POST",
            "/v1/operators/OP09/issuance",
            json!({ "amount": "1.00" }),
            404,
            "UNKNOWN_OPERATOR",
        ),
        (
            "POST",
            "/v1/operators/OP01/redemption",
            json!({ "amount": "600000" }),
            422,
            "REDEMPTION_EXCEEDS_BACKING",
        ),
        (
            "PUT",
            "/v1/operators/OP09/suspension",
            json!({ "suspended": true }),
            404,
            "UNKNOWN_OPERATOR",
        ),
    ];
    for (method, path, body, status, code) in bad {
        desk.call(method, path, Some(&cb), Some(&body))
            .problem(status, code);
    }
    desk.call(
        "POST",
        "/v1/operators",
        Some(&cb),
        Some(&json!({ "name": 7 })),
    )
    .problem(422, "JSON_DATA");
    assert_eq!(
        desk.circulation(),
        before,
        "nothing moved, no operator admitted"
    );
    assert!(!desk.data().join("keys/OP03.token").exists());
    desk.audit_is_clean();
}

#[test]
fn a_holders_day_deposit_back_history_lost_phone_and_close() {
    let desk = Desk::new();
    desk.staff_profile("teller1.json", "OP01", &desk.served.tellers[0]);
    let li = desk.open_wallet("li.json", "OP01", "13900000011");
    let wu = desk.open_wallet("wu.json", "OP02", "13900000012");
    desk.ok(&[
        "staff",
        "--profile",
        "teller1.json",
        "bank-account",
        "--wallet",
        &li.to_string(),
        "--cash",
        "1000",
    ]);
    desk.ok(&refs(
        &desk.wallet("li.json", &["top-up", "--amount", "500"]),
    ));
    desk.ok(&refs(&desk.wallet(
        "li.json",
        &["pay-wallet", "--to", &wu.to_string(), "--amount", "50"],
    )));
    let back = desk.ok(&refs(
        &desk.wallet("li.json", &["deposit-back", "--amount", "100"]),
    ));
    assert!(back.contains("deposited ¥100.00 back"), "{back}");
    assert_eq!(desk.balance(li), "350.00");

    // History: newest first, by kind, a page at a time.
    let all = desk.ok(&refs(&desk.wallet("li.json", &["history"])));
    let kinds: Vec<&str> = all
        .lines()
        .map(|line| line.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(kinds, ["deposit_back", "payment", "exchange"], "{all}");
    assert!(all.contains(&format!("-¥50.00 {wu}")), "{all}");
    let payments = desk.ok(&refs(
        &desk.wallet("li.json", &["history", "--kind", "payment"]),
    ));
    assert_eq!(payments.lines().count(), 1, "{payments}");
    let first = desk.ok(&refs(&desk.wallet("li.json", &["history", "--limit", "2"])));
    let cursor = word_after(&first, "more: --cursor ");
    let rest = desk.ok(&refs(
        &desk.wallet("li.json", &["history", "--limit", "2", "--cursor", &cursor]),
    ));
    assert!(rest.lines().next().unwrap().contains("exchange"), "{rest}");
    assert!(!rest.contains("more:"), "{rest}");
    let today = ecny::time::format_day(ecny::time::china_day(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    ));
    let none = desk.ok(&refs(
        &desk.wallet("li.json", &["history", "--to", "2020-01-01"]),
    ));
    assert_eq!(none.trim(), "no transfers");
    let dated = desk.ok(&refs(
        &desk.wallet("li.json", &["history", "--from", &today, "--to", &today]),
    ));
    assert_eq!(dated.lines().count(), 3, "{dated}");

    // Bad history queries, and readers that may not see it.
    let li_key = desk.holder_key("li.json");
    let session = open_session(&desk.served.server, li, &li_key);
    let wu_session = open_session(&desk.served.server, wu, &desk.holder_key("wu.json"));
    let history = format!("/v1/wallets/{li}/history");
    for (query, code) in [
        ("kind=gift", "MALFORMED_KIND"),
        ("cursor=nonsense", "CURSOR_INVALID"),
        ("cursor=T000000000001", "CURSOR_INVALID"),
        ("from=2026-13-01", "MALFORMED_DATE"),
        ("limit=0", "MALFORMED_QUERY"),
    ] {
        desk.call("GET", &format!("{history}?{query}"), Some(&session), None)
            .problem(400, code);
    }
    desk.call("GET", &history, Some(&wu_session), None)
        .problem(404, "UNKNOWN_WALLET");
    desk.call("GET", &history, Some(&desk.served.tellers[1].clone()), None)
        .problem(404, "UNKNOWN_WALLET");
    desk.call("GET", &history, None, None)
        .problem(401, "UNAUTHENTICATED");
    let cb = desk.served.central_bank.clone();
    let seen = desk.call("GET", &history, Some(&cb), None).ok(200);
    assert_eq!(seen["entries"].as_array().unwrap().len(), 3);

    // Deposit back: bad input and other signers move nothing; a replay answers the first.
    let deposit = |amount: &str, key: IdempotencyKey, signer: &KeyPair| {
        let command = Command::DepositBack {
            wallet: li,
            amount: amount.parse().unwrap(),
            key,
            auth: None,
        };
        let body = desk
            .served
            .signed(OperatorId(1), signer, &command, json!({ "amount": amount }));
        desk.keyed(
            "POST",
            &format!("/v1/wallets/{li}/deposit-back"),
            None,
            Some(&body),
            Some(key),
        )
    };
    let first = deposit("10.00", IdempotencyKey(71), &li_key).ok(201);
    let again = deposit("10.00", IdempotencyKey(71), &li_key).ok(201);
    assert_eq!(first["transfer"], again["transfer"]);
    deposit("11.00", IdempotencyKey(71), &li_key).problem(409, "IDEMPOTENCY_KEY_REUSED");
    deposit("10.00", IdempotencyKey(72), &KeyPair::generate()).problem(403, "SIGNATURE_INVALID");
    deposit("5000.00", IdempotencyKey(73), &li_key).problem(422, "INSUFFICIENT_FUNDS");
    deposit("0", IdempotencyKey(74), &li_key).problem(422, "AMOUNT_NOT_POSITIVE");
    let unsigned = json!({ "amount": "1.00", "public_key": li_key.public_key().to_hex(),
        "signature": "00".repeat(64), "not_after_ms": 1 });
    desk.keyed(
        "POST",
        &format!("/v1/wallets/{li}/deposit-back"),
        Some(&desk.served.tellers[0].clone()),
        Some(&unsigned),
        Some(IdempotencyKey(75)),
    )
    .problem(403, "HOLDER_ONLY");
    assert_eq!(desk.balance(li), "340.00");

    // A lost phone: the holder freezes; nothing moves out; only a teller of its operator unfreezes.
    let frozen = desk.ok(&refs(&desk.wallet("li.json", &["freeze"])));
    assert!(frozen.contains("is frozen"), "{frozen}");
    desk.fails(
        &refs(&desk.wallet(
            "li.json",
            &["pay-wallet", "--to", &wu.to_string(), "--amount", "1"],
        )),
        "WALLET_FROZEN",
    );
    let unfreeze = format!("/v1/wallets/{li}/unfreeze");
    desk.call("POST", &unfreeze, Some(&session), Some(&json!({})))
        .problem(403, "STAFF_ONLY");
    desk.call(
        "POST",
        &unfreeze,
        Some(&desk.served.tellers[1].clone()),
        Some(&json!({})),
    )
    .problem(404, "UNKNOWN_WALLET");
    desk.call(
        "POST",
        &unfreeze,
        Some(&desk.served.kyc_officers[0].clone()),
        Some(&json!({})),
    )
    .problem(403, "ROLE_NOT_ALLOWED");
    let freeze = Command::SetWalletStatus {
        wallet: wu,
        status: ecny::wallet::WalletStatus::Frozen,
    };
    // Someone else's key cannot freeze a wallet; a half-given signature is refused.
    let forged = desk
        .served
        .signed(OperatorId(2), &li_key, &freeze, json!({}));
    desk.call(
        "POST",
        &format!("/v1/wallets/{wu}/freeze"),
        None,
        Some(&forged),
    )
    .problem(403, "SIGNATURE_INVALID");
    desk.call(
        "POST",
        &format!("/v1/wallets/{wu}/freeze"),
        None,
        Some(&json!({ "public_key": li_key.public_key().to_hex() })),
    )
    .problem(422, "SIGNATURE_INCOMPLETE");
    desk.call(
        "POST",
        &format!("/v1/wallets/{wu}/freeze"),
        None,
        Some(&json!({})),
    )
    .problem(403, "SIGNATURE_MISSING");
    let wu_view = desk
        .call("GET", &format!("/v1/wallets/{wu}"), Some(&cb), None)
        .ok(200);
    assert_eq!(wu_view["status"], "active");
    let unfrozen = desk.ok(&[
        "staff",
        "--profile",
        "teller1.json",
        "unfreeze",
        "--wallet",
        &li.to_string(),
    ]);
    assert!(unfrozen.contains("is active"), "{unfrozen}");
    desk.ok(&refs(&desk.wallet(
        "li.json",
        &["pay-wallet", "--to", &wu.to_string(), "--amount", "1"],
    )));

    // Closing: without a bound account the wallet stays open with its money; with one, the
    // balance goes back to the bank.
    desk.fails(
        &refs(&desk.wallet("wu.json", &["close"])),
        "NO_BOUND_BANK_ACCOUNT",
    );
    assert_eq!(desk.balance(wu), "51.00");
    let closed = desk.ok(&refs(&desk.wallet("li.json", &["close"])));
    assert!(closed.contains("¥339.00 went back"), "{closed}");
    assert_eq!(desk.balance(li), "0.00");
    desk.fails(
        &refs(&desk.wallet(
            "li.json",
            &["pay-wallet", "--to", &wu.to_string(), "--amount", "1"],
        )),
        "WALLET_CLOSED",
    );
    let last = desk
        .call("GET", &format!("{history}?limit=1"), Some(&cb), None)
        .ok(200);
    assert_eq!(last["entries"][0]["kind"], "close_wallet");
    assert_eq!(last["entries"][0]["amount"], "339.00");
    desk.audit_is_clean();
}

#[test]
fn a_merchants_history_never_names_who_paid_it() {
    let desk = Desk::new();
    let (teller, kyc) = (
        desk.served.tellers[0].clone(),
        desk.served.kyc_officers[0].clone(),
    );
    let admin = desk.served.operators[0].clone();
    let owner_key = KeyPair::generate();
    let shop_wallet: WalletId = desk
        .call(
            "POST",
            "/v1/operators/OP01/wallets",
            Some(&teller),
            Some(&json!({ "phone": "13700000021", "public_key": owner_key.public_key().to_hex() })),
        )
        .ok(201)["wallet"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    desk.keyed(
        "POST",
        &format!("/v1/wallets/{shop_wallet}/bank-account"),
        Some(&teller),
        Some(&json!({ "cash": "100.00" })),
        Some(IdempotencyKey(901)),
    )
    .ok(201);
    desk.call(
        "POST",
        &format!("/v1/wallets/{shop_wallet}/kyc"),
        Some(&kyc),
        Some(&json!({ "class": 2, "name": "Wang Wu", "id_number": "110101199003074514" })),
    )
    .ok(200);
    let shop = desk
        .call(
            "POST",
            "/v1/operators/OP01/merchants",
            Some(&admin),
            Some(
                &json!({ "wallet": shop_wallet.to_string(), "name": "Pingjiang Snacks",
                "mcc": "5814", "region": 320500 }),
            ),
        )
        .ok(201);
    let qr = shop["qr"].as_str().unwrap().to_string();

    let li = desk.open_wallet("li.json", "OP02", "13900000021");
    let teller2 = desk.served.tellers[1].clone();
    desk.keyed(
        "POST",
        &format!("/v1/wallets/{li}/bank-account"),
        Some(&teller2),
        Some(&json!({ "cash": "100.00" })),
        Some(IdempotencyKey(902)),
    )
    .ok(201);
    desk.ok(&refs(
        &desk.wallet("li.json", &["top-up", "--amount", "50"]),
    ));
    desk.ok(&refs(
        &desk.wallet("li.json", &["pay", "--qr", &qr, "--amount", "12.00"]),
    ));

    // The payer sees whom it paid; the shop's owner sees the money, never the payer.
    let payer_view = desk.ok(&refs(&desk.wallet("li.json", &["history", "--limit", "1"])));
    assert!(
        payer_view.contains(&shop_wallet.to_string()),
        "{payer_view}"
    );
    let owner = open_session(&desk.served.server, shop_wallet, &owner_key);
    let page = desk
        .call(
            "GET",
            &format!("/v1/wallets/{shop_wallet}/history"),
            Some(&owner),
            None,
        )
        .ok(200);
    let entries = page["entries"].as_array().unwrap();
    let paid = entries
        .iter()
        .find(|entry| entry["direction"] == "in" && entry["amount"] == "12.00")
        .unwrap_or_else(|| panic!("{page}"));
    assert!(paid.get("counterparty").is_none(), "{paid}");
    assert!(!page.to_string().contains(&li.to_string()), "{page}");
    // Its operator's staff read the same page, payers unnamed too.
    let staff_page = desk
        .call(
            "GET",
            &format!("/v1/wallets/{shop_wallet}/history"),
            Some(&teller),
            None,
        )
        .ok(200);
    assert!(
        !staff_page.to_string().contains(&li.to_string()),
        "{staff_page}"
    );
    // The merchant's own credential does not read wallets' histories at all.
    let merchant = shop["token"].as_str().unwrap().to_string();
    desk.call(
        "GET",
        &format!("/v1/wallets/{shop_wallet}/history"),
        Some(&merchant),
        None,
    )
    .problem(403, "PARTY_NOT_ALLOWED");
    desk.audit_is_clean();
}

#[test]
fn an_operator_admitted_and_suspended_while_serving_stays_so_after_a_snapshot_and_a_restart() {
    let Desk { served, work } = Desk::new();
    let cb = served.central_bank.clone();
    let call =
        |server: &ecny::server::Server, method: &str, path: &str, token: &str, body: Value| {
            let bearer = format!("Bearer {token}");
            let text = body.to_string();
            send(
                server.addr(),
                method,
                path,
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/json"),
                ],
                text.as_bytes(),
            )
        };
    call(
        &served.server,
        "POST",
        "/v1/operators",
        &cb,
        json!({ "name": "Taihu Rural Bank" }),
    )
    .ok(201);
    call(
        &served.server,
        "POST",
        "/v1/operators/OP03/reserves",
        &cb,
        json!({ "amount": "5000" }),
    )
    .ok(201);
    call(
        &served.server,
        "POST",
        "/v1/operators/OP03/issuance",
        &cb,
        json!({ "amount": "2000" }),
    )
    .ok(201);
    call(
        &served.server,
        "PUT",
        "/v1/operators/OP03/suspension",
        &cb,
        json!({ "suspended": true }),
    )
    .ok(200);
    let served::Served { dir, server, .. } = served;
    server.stop().unwrap();
    let snapshot = Process::new(env!("CARGO_BIN_EXE_ecny"))
        .args(["snapshot", "--data"])
        .arg(dir.path())
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    let server = ecny::server::Server::start(&ecny::server::ServerConfig {
        data: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .unwrap();
    let circulation = call(&server, "GET", "/v1/circulation", &cb, json!(null)).ok(200);
    let op3 = operator_entry(&circulation, "OP03");
    assert_eq!(op3["suspended"], true, "{circulation}");
    assert_eq!(op3["circulation"]["vaults"], "2000.00");
    call(
        &server,
        "POST",
        "/v1/operators/OP03/issuance",
        &cb,
        json!({ "amount": "1" }),
    )
    .problem(409, "OPERATOR_SUSPENDED");
    let admin = std::fs::read_to_string(dir.path().join("keys/OP03.token")).unwrap();
    call(
        &server,
        "GET",
        "/v1/operators/OP03/staff",
        admin.trim(),
        json!(null),
    )
    .ok(200);
    call(
        &server,
        "PUT",
        "/v1/operators/OP03/suspension",
        &cb,
        json!({ "suspended": false }),
    )
    .ok(200);
    call(
        &server,
        "POST",
        "/v1/operators/OP03/issuance",
        &cb,
        json!({ "amount": "1" }),
    )
    .ok(201);
    let audit = call(&server, "GET", "/v1/audit", &cb, json!(null)).ok(200);
    assert_eq!(audit["clean"], true, "{audit}");
}

#[test]
fn a_holder_pays_a_phone_number_at_another_operator_and_look_ups_are_counted() {
    let desk = Desk::new();
    let li = desk.open_wallet("li.json", "OP01", "13900000031");
    let wu = desk.open_wallet("wu.json", "OP02", "13900000032");
    desk.keyed(
        "POST",
        &format!("/v1/wallets/{li}/bank-account"),
        Some(&desk.served.tellers[0].clone()),
        Some(&json!({ "cash": "100.00" })),
        Some(IdempotencyKey(911)),
    )
    .ok(201);
    desk.ok(&refs(
        &desk.wallet("li.json", &["top-up", "--amount", "80"]),
    ));
    let paid = desk.ok(&refs(&desk.wallet(
        "li.json",
        &["pay-phone", "--phone", "13900000032", "--amount", "12.50"],
    )));
    assert!(
        paid.contains(&format!("13900000032 is {wu} at OP02")),
        "{paid}"
    );
    assert_eq!(desk.balance(wu), "12.50");
    assert_eq!(desk.balance(li), "67.50");

    // An unknown number moves nothing; a malformed one is refused before any look-up.
    desk.fails(
        &refs(&desk.wallet(
            "li.json",
            &["pay-phone", "--phone", "13900000099", "--amount", "1"],
        )),
        "UNKNOWN_PHONE",
    );
    let session = open_session(&desk.served.server, li, &desk.holder_key("li.json"));
    let lookups = format!("/v1/wallets/{li}/phone-lookups");
    desk.call(
        "POST",
        &lookups,
        Some(&session),
        Some(&json!({ "phone": "1390000" })),
    )
    .problem(422, "MALFORMED_PHONE");
    // Only the holder looks up, and only from its own wallet.
    let wu_session = open_session(&desk.served.server, wu, &desk.holder_key("wu.json"));
    let asked = json!({ "phone": "13900000031" });
    desk.call("POST", &lookups, Some(&wu_session), Some(&asked))
        .problem(404, "UNKNOWN_WALLET");
    desk.call(
        "POST",
        &lookups,
        Some(&desk.served.tellers[0].clone()),
        Some(&asked),
    )
    .problem(403, "HOLDER_ONLY");
    desk.call("POST", &lookups, None, Some(&asked))
        .problem(401, "UNAUTHENTICATED");
    // Found or not, each look-up counts: numbers cannot be walked.
    let mut answered = 2; // the payment's look-up and the unknown number's
    while answered < ecny::server::holders::PHONE_LOOKUPS_PER_HOUR {
        desk.call("POST", &lookups, Some(&session), Some(&asked))
            .ok(200);
        answered += 1;
    }
    let refused = desk.call("POST", &lookups, Some(&session), Some(&asked));
    assert!(refused.header("retry-after").is_some());
    refused.problem(429, "PHONE_LOOKUP_RATE_LIMITED");
    // Another holder's allowance is its own.
    let asked_by_wu = json!({ "phone": "13900000031" });
    let found = desk
        .call(
            "POST",
            &format!("/v1/wallets/{wu}/phone-lookups"),
            Some(&wu_session),
            Some(&asked_by_wu),
        )
        .ok(200);
    assert_eq!(found["wallet"], li.to_string());
    assert_eq!(found["operator"], "OP01");
    assert_eq!(desk.balance(li), "67.50");
    desk.audit_is_clean();
}

/// `ecny serve`, the real binary, on `dir`; stopped (SIGKILL) and waited for when dropped.
struct ServeProcess {
    child: std::process::Child,
    url: String,
}

impl ServeProcess {
    fn start(dir: &Path) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Process::new(env!("CARGO_BIN_EXE_ecny"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (banner, heard) = std::sync::mpsc::channel();
        // Log lines share standard output: keep draining it so the server never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ecny serving on ") {
                    let url = url
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = banner.send(url);
                }
            }
        });
        let url = heard
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("ecny serve says where it listens");
        ServeProcess { child, url }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_real_server_serves_an_operator_the_central_bank_admits_with_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut platform, _) = ecny::platform::Platform::open(dir.path()).unwrap();
        served::two_funded_operators(&mut platform);
    }
    let serve = ServeProcess::start(dir.path());
    let work = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let output = Process::new(env!("CARGO_BIN_EXE_ecny"))
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "ecny {args:?}:\n{stdout}{stderr}");
        stdout
    };
    let cb = |args: &[&str]| {
        let mut all = vec!["central-bank", "--server", &serve.url, "--data", &data];
        all.extend_from_slice(args);
        run(&all)
    };
    let admitted = cb(&["admit", "--name", "Taihu Rural Bank"]);
    assert!(admitted.contains("admitted OP03"), "{admitted}");
    cb(&["fund", "--operator", "OP03", "--amount", "20000"]);
    cb(&["issue", "--operator", "OP03", "--amount", "10000"]);
    // The new operator's administrator registers a teller at once, from its token file.
    let added = run(&[
        "staff",
        "--profile",
        "teller.json",
        "--server",
        &serve.url,
        "add",
        "--operator",
        "OP03",
        "--role",
        "teller",
        "--label",
        "Wuxi branch",
        "--data",
        &data,
    ]);
    assert!(added.contains("(teller, Wuxi branch)"), "{added}");
    let opened = run(&[
        "wallet",
        "--profile",
        "zhou.json",
        "--server",
        &serve.url,
        "open",
        "--operator",
        "OP03",
        "--phone",
        "13600000009",
    ]);
    let wallet = word_after(&opened, "opened wallet ");
    run(&[
        "staff",
        "--profile",
        "teller.json",
        "bank-account",
        "--wallet",
        &wallet,
        "--cash",
        "300",
    ]);
    run(&[
        "wallet",
        "--profile",
        "zhou.json",
        "top-up",
        "--amount",
        "120",
    ]);
    let history = run(&["wallet", "--profile", "zhou.json", "history"]);
    assert!(
        history.contains("exchange") && history.contains("+¥120.00"),
        "{history}"
    );
    let circulation = cb(&["circulation"]);
    assert!(
        circulation.contains("OP03 Taihu Rural Bank: reserves ¥10,000.00, backing ¥10,000.00; ¥10,000.00 in all: wallets ¥120.00, vaults ¥9,880.00"),
        "{circulation}"
    );
    let audit = run(&["audit", "--data", &data]);
    assert!(!audit.is_empty());
    drop(serve);
    let (platform, _) = ecny::platform::Platform::open(dir.path()).unwrap();
    assert!(ecny::audit::audit(platform.state()).is_clean());
    assert_eq!(platform.state().operators().len(), 3);
}

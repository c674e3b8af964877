//! The operator's counter over real HTTP: a newcomer's wallet gets a bank account with cash, a
//! class upgrade and e-CNY exchanged from the deposits, as the holder signed; only the wallet's
//! own operator serves it, and bad input moves nothing.

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use ecny::certs::KeyPair;
use ecny::command::Command;
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::signing::{DeploymentId, SigningContext};
use http_client::{send, Reply};
use serde_json::{json, Value};
use served::Served;

struct Counter {
    served: Served,
}

impl Counter {
    fn call(&self, path: &str, token: &str, key: Option<IdempotencyKey>, body: &Value) -> Reply {
        let auth = format!("Bearer {token}");
        let key = key.map(|k| k.to_string());
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(key) = &key {
            headers.push(("Idempotency-Key", key.as_str()));
        }
        send(
            self.served.server.addr(),
            "POST",
            path,
            &headers,
            body.to_string().as_bytes(),
        )
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        send(
            self.served.server.addr(),
            "GET",
            path,
            &[("Authorization", &auth)],
            b"",
        )
    }

    /// A class-4 wallet at OP01 (`op` 0) or OP02 (`op` 1).
    fn open_wallet(&self, op: usize, phone: &str, key: &KeyPair) -> WalletId {
        let reply = self
            .call(
                &format!("/v1/operators/OP0{}/wallets", op + 1),
                &self.served.operators[op],
                None,
                &json!({ "phone": phone, "public_key": key.public_key().to_hex() }),
            )
            .ok(201);
        reply["wallet"].as_str().unwrap().parse().unwrap()
    }

    /// An exchange signed for a wallet at OP01, good for five minutes by the server's clock.
    fn exchange_body(
        &self,
        wallet: WalletId,
        amount: &str,
        key: IdempotencyKey,
        signer: &KeyPair,
    ) -> Value {
        let command = Command::Exchange {
            wallet,
            amount: amount.parse().unwrap(),
            key,
            auth: None,
        };
        let stated = send(self.served.server.addr(), "GET", "/v1/context", &[], b"").ok(200);
        let context = SigningContext {
            deployment: DeploymentId::from_hex(stated["deployment"].as_str().unwrap()).unwrap(),
            operator: OperatorId(1),
        };
        let not_after_ms = stated["now_ms"].as_u64().unwrap() + 5 * 60 * 1000;
        json!({
            "amount": amount,
            "public_key": signer.public_key().to_hex(),
            "signature": signer.sign(&command.signing_bytes(&context, not_after_ms)).to_hex(),
            "not_after_ms": not_after_ms,
        })
    }

    fn audit(&self) -> Value {
        let report = self.get("/v1/audit", &self.served.central_bank).ok(200);
        assert_eq!(report["clean"], true, "{report}");
        report
    }
}

#[test]
fn a_newcomer_gets_a_bank_account_class_two_and_e_cny_at_the_counter() {
    let counter = Counter {
        served: Served::start(),
    };
    let op1 = counter.served.operators[0].clone();
    let holder = KeyPair::generate();
    let wallet = counter.open_wallet(0, "13800138000", &holder);

    let opened = counter
        .call(
            &format!("/v1/wallets/{wallet}/bank-account"),
            &op1,
            None,
            &json!({ "cash": "5000.00" }),
        )
        .ok(201);
    assert_eq!(opened["cash"], "5000.00");
    assert!(opened["account"].as_str().unwrap().starts_with('A'));
    // A second account is refused rather than opened beside the first.
    counter
        .call(
            &format!("/v1/wallets/{wallet}/bank-account"),
            &op1,
            None,
            &json!({ "cash": "1.00" }),
        )
        .problem(409, "BANK_ACCOUNT_ALREADY_BOUND");

    let kyc = format!("/v1/wallets/{wallet}/kyc");
    counter
        .call(&kyc, &op1, None, &json!({ "class": 2, "name": "Wang Wu" }))
        .problem(422, "KYC_INCOMPLETE");
    let upgraded = counter
        .call(
            &kyc,
            &op1,
            None,
            &json!({ "class": 2, "name": "Wang Wu", "id_number": "110101199003074512" }),
        )
        .ok(200);
    assert_eq!(
        (upgraded["class"].as_u64(), upgraded["balance"].as_str()),
        (Some(2), Some("0.00"))
    );
    counter
        .call(&kyc, &op1, None, &json!({ "class": 1 }))
        .problem(422, "KYC_INCOMPLETE");

    let exchange = format!("/v1/wallets/{wallet}/exchange");
    let key = IdempotencyKey(0x7e57_0001);
    let body = counter.exchange_body(wallet, "500.00", key, &holder);
    let first = counter.call(&exchange, &op1, Some(key), &body).ok(201);
    // A retry after a lost answer is the first transfer, not a second exchange.
    let retry = counter.call(&exchange, &op1, Some(key), &body).ok(201);
    assert_eq!(first["transfer"], retry["transfer"]);
    let other = counter.exchange_body(wallet, "600.00", key, &holder);
    counter
        .call(&exchange, &op1, Some(key), &other)
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    let key = IdempotencyKey(0x7e57_0002);
    let too_much = counter.exchange_body(wallet, "4500.01", key, &holder);
    counter
        .call(&exchange, &op1, Some(key), &too_much)
        .problem(422, "INSUFFICIENT_FUNDS");
    let shown = counter.get(&format!("/v1/wallets/{wallet}"), &op1).ok(200);
    assert_eq!(shown["balance"], "500.00");
    let report = counter.audit();
    assert_eq!(report["deposits_total"], "4500.00");
}

#[test]
fn only_the_wallets_operator_serves_it_and_bad_input_moves_nothing() {
    let counter = Counter {
        served: Served::start(),
    };
    let [op1, op2] = counter.served.operators.clone();
    let central_bank = counter.served.central_bank.clone();
    let holder = KeyPair::generate();
    let wallet = counter.open_wallet(0, "13800138001", &holder);
    let bank = format!("/v1/wallets/{wallet}/bank-account");
    let kyc = format!("/v1/wallets/{wallet}/kyc");
    let exchange = format!("/v1/wallets/{wallet}/exchange");
    let key = IdempotencyKey(0x7e57_0100);
    let signed = counter.exchange_body(wallet, "10.00", key, &holder);
    let statement = json!({ "class": 3, "name": "Wang Wu", "id_number": "110101199003074512" });

    // Another operator's token, and the central bank's, are turned away at every window.
    counter
        .call(&bank, &op2, None, &json!({ "cash": "100" }))
        .problem(403, "NOT_YOUR_WALLET");
    counter
        .call(&kyc, &op2, None, &statement)
        .problem(403, "NOT_YOUR_WALLET");
    // The holder's signature names OP01: at OP02's desk it does not hold.
    counter
        .call(&exchange, &op2, Some(key), &signed)
        .problem(403, "SIGNATURE_INVALID");
    counter
        .call(&bank, &central_bank, None, &json!({ "cash": "100" }))
        .problem(403, "OPERATOR_ONLY");
    counter
        .call(&bank, "guessed", None, &json!({ "cash": "100" }))
        .problem(401, "UNAUTHENTICATED");

    // Without a bound account there is nothing to exchange from.
    counter
        .call(&exchange, &op1, Some(key), &signed)
        .problem(422, "NO_BOUND_BANK_ACCOUNT");
    counter
        .call(&exchange, &op1, None, &signed)
        .problem(400, "IDEMPOTENCY_KEY_MISSING");
    for (cash, code) in [("abc", "MALFORMED_AMOUNT"), ("0", "AMOUNT_NOT_POSITIVE")] {
        counter
            .call(&bank, &op1, None, &json!({ "cash": cash }))
            .problem(422, code);
    }
    counter
        .call(
            "/v1/wallets/W0000000099/bank-account",
            &op1,
            None,
            &json!({ "cash": "1" }),
        )
        .problem(404, "UNKNOWN_WALLET");
    counter
        .call(&kyc, &op1, None, &json!({ "class": 7 }))
        .problem(422, "MALFORMED_CLASS");
    counter
        .call(
            &kyc,
            &op1,
            None,
            &json!({ "class": 2, "name": "Wang Wu", "id_number": "110101199003074512" }),
        )
        .problem(422, "KYC_INCOMPLETE");
    counter
        .call(&bank, &op1, None, &json!({ "cash": "1", "extra": true }))
        .problem(422, "JSON_DATA");
    let report = counter.audit();
    assert_eq!(report["deposits_total"], "0.00");

    counter
        .call(&bank, &op1, None, &json!({ "cash": "100" }))
        .ok(201);
    // A signature by any key but the wallet's own moves nothing.
    let forged = counter.exchange_body(wallet, "10.00", key, &KeyPair::generate());
    counter
        .call(&exchange, &op1, Some(key), &forged)
        .problem(403, "SIGNATURE_INVALID");
    let mut tampered = signed.clone();
    tampered["amount"] = json!("90.00");
    counter
        .call(&exchange, &op1, Some(key), &tampered)
        .problem(403, "SIGNATURE_INVALID");
    counter.call(&exchange, &op1, Some(key), &signed).ok(201);
    let shown = counter.get(&format!("/v1/wallets/{wallet}"), &op1).ok(200);
    assert_eq!(shown["balance"], "10.00");
    assert_eq!(counter.audit()["deposits_total"], "90.00");
}

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
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
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
                &self.served.tellers[op],
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
        self.exchange_body_for(OperatorId(1), wallet, amount, key, signer)
    }

    /// An exchange signed naming `operator` in its context.
    fn exchange_body_for(
        &self,
        operator: OperatorId,
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
            operator,
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
    let teller = counter.served.tellers[0].clone();
    let officer = counter.served.kyc_officers[0].clone();
    let holder = KeyPair::generate();
    let wallet = counter.open_wallet(0, "13800138000", &holder);

    let opened = counter
        .call(
            &format!("/v1/wallets/{wallet}/bank-account"),
            &teller,
            Some(IdempotencyKey(0xb0)),
            &json!({ "cash": "5000.00" }),
        )
        .ok(201);
    assert_eq!(opened["cash"], "5000.00");
    assert!(opened["account"].as_str().unwrap().starts_with('A'));
    // A second account is refused rather than opened beside the first.
    counter
        .call(
            &format!("/v1/wallets/{wallet}/bank-account"),
            &teller,
            Some(IdempotencyKey(0xb1)),
            &json!({ "cash": "1.00" }),
        )
        .problem(409, "BANK_ACCOUNT_ALREADY_BOUND");

    let kyc = format!("/v1/wallets/{wallet}/kyc");
    counter
        .call(
            &kyc,
            &officer,
            None,
            &json!({ "class": 2, "name": "Wang Wu" }),
        )
        .problem(422, "KYC_INCOMPLETE");
    let upgraded = counter
        .call(
            &kyc,
            &officer,
            None,
            &json!({ "class": 2, "name": "Wang Wu", "id_number": "110101199003074514" }),
        )
        .ok(200);
    assert_eq!(
        (upgraded["class"].as_u64(), upgraded["balance"].as_str()),
        (Some(2), Some("0.00"))
    );
    counter
        .call(&kyc, &officer, None, &json!({ "class": 1 }))
        .problem(422, "KYC_INCOMPLETE");

    let exchange = format!("/v1/wallets/{wallet}/exchange");
    let key = IdempotencyKey(0x7e57_0001);
    let body = counter.exchange_body(wallet, "500.00", key, &holder);
    let first = counter.call(&exchange, "", Some(key), &body).ok(201);
    // A retry after a lost answer is the first transfer, not a second exchange.
    let retry = counter.call(&exchange, "", Some(key), &body).ok(201);
    assert_eq!(first["transfer"], retry["transfer"]);
    let other = counter.exchange_body(wallet, "600.00", key, &holder);
    counter
        .call(&exchange, "", Some(key), &other)
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    let key = IdempotencyKey(0x7e57_0002);
    let too_much = counter.exchange_body(wallet, "4500.01", key, &holder);
    counter
        .call(&exchange, "", Some(key), &too_much)
        .problem(422, "INSUFFICIENT_FUNDS");
    let shown = counter
        .get(&format!("/v1/wallets/{wallet}"), &officer)
        .ok(200);
    assert_eq!(shown["balance"], "500.00");
    let report = counter.audit();
    assert_eq!(report["deposits_total"], "4500.00");
}

#[test]
fn only_the_wallets_operator_serves_it_and_bad_input_moves_nothing() {
    let counter = Counter {
        served: Served::start(),
    };
    let op2 = counter.served.tellers[1].clone();
    let teller = counter.served.tellers[0].clone();
    let officer = counter.served.kyc_officers[0].clone();
    let central_bank = counter.served.central_bank.clone();
    let holder = KeyPair::generate();
    let wallet = counter.open_wallet(0, "13800138001", &holder);
    let bank = format!("/v1/wallets/{wallet}/bank-account");
    let kyc = format!("/v1/wallets/{wallet}/kyc");
    let exchange = format!("/v1/wallets/{wallet}/exchange");
    let key = IdempotencyKey(0x7e57_0100);
    let signed = counter.exchange_body(wallet, "10.00", key, &holder);
    let statement = json!({ "class": 3, "name": "Wang Wu", "id_number": "110101199003074514" });

    // Another operator's teller hears of the wallet as unknown; other parties and roles are
    // turned away at every window.
    counter
        .call(&bank, &op2, Some(key), &json!({ "cash": "100" }))
        .problem(404, "UNKNOWN_WALLET");
    counter
        .call(&kyc, &counter.served.kyc_officers[1], None, &statement)
        .problem(404, "UNKNOWN_WALLET");
    counter
        .call(&exchange, &op2, Some(key), &signed)
        .problem(403, "HOLDER_ONLY");
    // The holder's own signature made for OP02's context does not hold for a wallet at OP01.
    let foreign = counter.exchange_body_for(OperatorId(2), wallet, "10.00", key, &holder);
    counter
        .call(&exchange, "", Some(key), &foreign)
        .problem(403, "SIGNATURE_INVALID");
    counter
        .call(&bank, &central_bank, Some(key), &json!({ "cash": "100" }))
        .problem(403, "STAFF_ONLY");
    counter
        .call(&bank, &officer, Some(key), &json!({ "cash": "100" }))
        .problem(403, "ROLE_NOT_ALLOWED");
    counter
        .call(&kyc, &teller, None, &statement)
        .problem(403, "ROLE_NOT_ALLOWED");
    counter
        .call(&bank, "guessed", Some(key), &json!({ "cash": "100" }))
        .problem(401, "UNAUTHENTICATED");

    // Without a bound account there is nothing to exchange from.
    counter
        .call(&exchange, "", Some(key), &signed)
        .problem(422, "NO_BOUND_BANK_ACCOUNT");
    counter
        .call(&exchange, "", None, &signed)
        .problem(400, "IDEMPOTENCY_KEY_MISSING");
    for (cash, code) in [("abc", "MALFORMED_AMOUNT"), ("0", "AMOUNT_NOT_POSITIVE")] {
        counter
            .call(
                &bank,
                &teller,
                Some(IdempotencyKey(0xba)),
                &json!({ "cash": cash }),
            )
            .problem(422, code);
    }
    counter
        .call(
            "/v1/wallets/W0000000099/bank-account",
            &teller,
            Some(key),
            &json!({ "cash": "1" }),
        )
        .problem(404, "UNKNOWN_WALLET");
    counter
        .call(&kyc, &officer, None, &json!({ "class": 7 }))
        .problem(422, "MALFORMED_CLASS");
    counter
        .call(
            &kyc,
            &officer,
            None,
            &json!({ "class": 2, "name": "Wang Wu", "id_number": "110101199003074514" }),
        )
        .problem(422, "KYC_INCOMPLETE");
    // Cash at the counter is counted in the open, one deposit at most the counter's maximum:
    // a teller cannot conjure deposits with a number.
    for cash in ["999999999", "50000.01"] {
        counter
            .call(
                &bank,
                &teller,
                Some(IdempotencyKey(0xca5)),
                &json!({ "cash": cash }),
            )
            .problem(422, "CASH_DEPOSIT_TOO_LARGE");
    }
    // An ID number whose check character does not match its digits is no ID number.
    for bad in ["110101199003074515", "AAAAAAAAAAAAAAAAAA"] {
        counter
            .call(
                &kyc,
                &officer,
                None,
                &json!({ "class": 3, "name": "Wang Wu", "id_number": bad }),
            )
            .problem(422, "ID_NUMBER_INVALID");
    }
    counter
        .call(
            &bank,
            &teller,
            Some(IdempotencyKey(0xba)),
            &json!({ "cash": "1", "extra": true }),
        )
        .problem(422, "JSON_DATA");
    let report = counter.audit();
    assert_eq!(report["deposits_total"], "0.00");

    counter
        .call(
            &bank,
            &teller,
            Some(IdempotencyKey(0xba)),
            &json!({ "cash": "100" }),
        )
        .ok(201);
    // A signature by any key but the wallet's own moves nothing.
    let forged = counter.exchange_body(wallet, "10.00", key, &KeyPair::generate());
    counter
        .call(&exchange, "", Some(key), &forged)
        .problem(403, "SIGNATURE_INVALID");
    let mut tampered = signed.clone();
    tampered["amount"] = json!("90.00");
    counter
        .call(&exchange, "", Some(key), &tampered)
        .problem(403, "SIGNATURE_INVALID");
    counter.call(&exchange, "", Some(key), &signed).ok(201);
    let shown = counter
        .get(&format!("/v1/wallets/{wallet}"), &officer)
        .ok(200);
    assert_eq!(shown["balance"], "10.00");
    assert_eq!(counter.audit()["deposits_total"], "90.00");
}

#[test]
fn ten_tellers_pressing_open_at_once_open_one_account_and_a_retry_answers_it() {
    let counter = std::sync::Arc::new(Counter {
        served: Served::start(),
    });
    let teller = counter.served.tellers[0].clone();
    let holder = KeyPair::generate();
    let wallet = counter.open_wallet(0, "13800138002", &holder);
    let bank = format!("/v1/wallets/{wallet}/bank-account");
    let key = IdempotencyKey(0x0c0_0001);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let (counter, teller, bank) = (counter.clone(), teller.clone(), bank.clone());
                scope.spawn(move || {
                    let reply =
                        counter.call(&bank, &teller, Some(key), &json!({ "cash": "5000.00" }));
                    (reply.status, reply.json())
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    let accounts: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["account"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(accounts.len(), 1, "{answers:?}");
    // Another key finds the wallet banked; the same key with another sum is a conflict.
    counter
        .call(
            &bank,
            &teller,
            Some(IdempotencyKey(0x0c0_0002)),
            &json!({ "cash": "5000.00" }),
        )
        .problem(409, "BANK_ACCOUNT_ALREADY_BOUND");
    counter
        .call(&bank, &teller, Some(key), &json!({ "cash": "1.00" }))
        .problem(409, "IDEMPOTENCY_KEY_REUSED");
    // Exactly one deposit of 5,000 went in, and it is bound.
    assert_eq!(counter.audit()["deposits_total"], "5000.00");
    let exchange = counter.exchange_body(wallet, "100.00", IdempotencyKey(3), &holder);
    counter
        .call(
            &format!("/v1/wallets/{wallet}/exchange"),
            "",
            Some(IdempotencyKey(3)),
            &exchange,
        )
        .ok(201);
}

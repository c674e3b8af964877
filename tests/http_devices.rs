//! Hardware wallets on a live server over real HTTP: the operator issues a phone's secure
//! element bound to a holder's wallet (the holder signs the binding) and a shop's visitor card;
//! the holder loads it (signed), pays the shop applet to applet with no network, both sync their
//! attested records and get the operator's confirmation back, the holder unloads; a cloned card
//! is caught at sync and blocked, a lost one blocked by its operator, and the next terminal
//! refuses the clone once it loads the revocation list. Other parties cannot do any of it, bad
//! input moves nothing, and the audit is clean at the end.

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use ecny::certs::device::{CompactCertificate, RevocationList};
use ecny::certs::{KeyPair, PublicKey};
use ecny::command::Command;
use ecny::ids::{DeviceId, IdempotencyKey, OperatorId, WalletId};
use ecny::offline::applet::{Applet, Personalization};
use ecny::offline::messages::{LoadAuthorization, Nonce, SyncConfirmation, Wire, NONCE_BYTES};
use ecny::offline::profiles::{Profile, WalletForm};
use ecny::offline::protocol::Relay;
use http_client::{send, Reply};
use serde_json::{json, Value};
use served::Served;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Card {
    id: DeviceId,
    applet: Applet,
    load_seq: u32,
}

struct Desk {
    served: Served,
    /// The cards' clock: a minute on per tap.
    now_s: u32,
}

impl Desk {
    fn call(&self, method: &str, path: &str, token: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        send(self.served.server.addr(), method, path, &headers, &body)
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call("POST", path, token, body)
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, token, &Value::Null)
    }

    /// A wallet at OP01 with `yuan` of e-CNY exchanged from cash paid in at the counter, and
    /// its holder's session.
    fn funded_wallet(&self, phone: &str, key: &KeyPair, yuan: &str) -> (WalletId, String) {
        let teller = &self.served.tellers[0];
        let opened = self
            .post(
                "/v1/operators/OP01/wallets",
                teller,
                &json!({ "phone": phone, "public_key": key.public_key().to_hex() }),
            )
            .ok(201);
        let wallet: WalletId = opened["wallet"].as_str().unwrap().parse().unwrap();
        let auth = format!("Bearer {teller}");
        send(
            self.served.server.addr(),
            "POST",
            &format!("/v1/wallets/{wallet}/bank-account"),
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
                ("Idempotency-Key", &format!("{:x}", wallet.0 + 0x100)),
            ],
            json!({ "cash": yuan }).to_string().as_bytes(),
        )
        .ok(201);
        let idempotency = IdempotencyKey(u128::from(wallet.0) + 0x200);
        let command = Command::Exchange {
            wallet,
            amount: yuan.parse().unwrap(),
            key: idempotency,
            auth: None,
        };
        let body = self
            .served
            .signed(OperatorId(1), key, &command, json!({ "amount": yuan }));
        send(
            self.served.server.addr(),
            "POST",
            &format!("/v1/wallets/{wallet}/exchange"),
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &idempotency.to_string()),
            ],
            body.to_string().as_bytes(),
        )
        .ok(201);
        let session = served::open_session(&self.served.server, wallet, key);
        (wallet, session)
    }

    fn balance(&self, wallet: WalletId, session: &str) -> String {
        self.get(&format!("/v1/wallets/{wallet}"), session).ok(200)["balance"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The body that issues `device` of `form`, signed by the holder of `wallet` when bound.
    fn issue_body(
        &self,
        op: OperatorId,
        device: DeviceId,
        device_key: &KeyPair,
        form: WalletForm,
        wallet: Option<(WalletId, &KeyPair)>,
    ) -> Value {
        let body = json!({
            "device": device.to_string(),
            "device_public_key": device_key.public_key().to_hex(),
            "form": ecny::server::devices::form_code(form),
            "wallet": wallet.map(|(w, _)| w.to_string()),
        });
        match wallet {
            Some((wallet, holder)) => {
                let command = Command::RegisterDevice {
                    operator: op,
                    device,
                    public_key: device_key.public_key(),
                    wallet: Some(wallet),
                    caps: Profile::new(form).caps(),
                    auth: None,
                };
                self.served.signed(op, holder, &command, body)
            }
            None => body,
        }
    }

    /// Issues a card over HTTP and personalizes its applet from the certificates answered.
    fn issue(
        &self,
        op: OperatorId,
        id: u64,
        form: WalletForm,
        wallet: Option<(WalletId, &KeyPair)>,
    ) -> Card {
        let device = DeviceId(id);
        let device_key = KeyPair::from_seed(format!("http devices/{id}").as_bytes());
        let body = self.issue_body(op, device, &device_key, form, wallet);
        let teller = &self.served.tellers[op.0 as usize - 1];
        let issued = self
            .post(&format!("/v1/operators/{op}/devices"), teller, &body)
            .ok(201);
        let cert = |field: &str| {
            CompactCertificate::decode(&hex(issued[field].as_str().unwrap())).unwrap()
        };
        let applet = Applet::personalize(Personalization {
            device_key,
            device_cert: cert("certificate"),
            operator_cert: cert("operator_certificate"),
            root: PublicKey::from_hex(issued["root"].as_str().unwrap()).unwrap(),
            issued_at_s: issued["issued_at_s"].as_u64().unwrap() as u32,
        })
        .unwrap();
        Card {
            id: device,
            applet,
            load_seq: 0,
        }
    }

    /// The body of a load the holder signs, with the card's attestation the order will name.
    fn load_body(&self, card: &mut Card, yuan: &str, holder: Option<&KeyPair>) -> Value {
        let attested = Relay::new()
            .attest(&mut card.applet, Nonce([7; NONCE_BYTES]))
            .unwrap();
        let body = json!({
            "load_seq": card.load_seq + 1,
            "amount": yuan,
            "attestation": to_hex(&attested.encode()),
        });
        match holder {
            Some(holder) => {
                let command = Command::LoadDevice {
                    device: card.id,
                    load_seq: card.load_seq + 1,
                    amount: yuan.parse().unwrap(),
                    auth: None,
                };
                self.served.signed(OperatorId(1), holder, &command, body)
            }
            None => body,
        }
    }

    fn load(&self, card: &mut Card, yuan: &str, token: &str, holder: Option<&KeyPair>) {
        let body = self.load_body(card, yuan, holder);
        let loaded = self
            .post(&format!("/v1/devices/{}/loads", card.id), token, &body)
            .ok(201);
        let order =
            LoadAuthorization::decode(&hex(loaded["authorization"].as_str().unwrap())).unwrap();
        Relay::new().load(&mut card.applet, &order).unwrap();
        card.load_seq += 1;
    }

    fn tap(&mut self, payer: &mut Card, payee: &mut Card, yuan: &str) {
        self.now_s += 60;
        Relay::new()
            .pay(
                &mut payer.applet,
                &mut payee.applet,
                yuan.parse().unwrap(),
                self.now_s,
            )
            .unwrap();
    }

    /// The card's sync over HTTP: nonce, attestation, the operator's confirmation back to it.
    fn sync(&self, card: &mut Card, token: &str) -> Value {
        let begun = self
            .post(
                &format!("/v1/devices/{}/sync-nonce", card.id),
                token,
                &Value::Null,
            )
            .ok(200);
        let nonce = Nonce::decode(&hex(begun["nonce"].as_str().unwrap())).unwrap();
        let attested = Relay::new().attest(&mut card.applet, nonce).unwrap();
        let body = json!({ "sync": to_hex(&attested.encode()) });
        let synced = self
            .post(&format!("/v1/devices/{}/syncs", card.id), token, &body)
            .ok(200);
        if let Some(confirmation) = synced["confirmation"].as_str() {
            let confirmation = SyncConfirmation::decode(&hex(confirmation)).unwrap();
            Relay::new()
                .confirm_sync(&mut card.applet, &confirmation)
                .unwrap();
        }
        synced
    }

    fn audit(&self) {
        let report = self.get("/v1/audit", &self.served.central_bank).ok(200);
        assert_eq!(report["clean"], true, "{report}");
    }
}

#[test]
fn a_hardware_wallet_is_issued_loaded_paid_offline_synced_unloaded_and_a_clone_is_refused() {
    let mut desk = Desk {
        served: Served::start(),
        now_s: 0,
    };
    let (op1, op2) = (OperatorId(1), OperatorId(2));
    let li_key = KeyPair::from_seed(b"http devices/li");
    let (li, li_session) = desk.funded_wallet("13800138000", &li_key, "2000.00");
    let mut phone = desk.issue(op1, 1, WalletForm::PhoneEse, Some((li, &li_key)));
    let mut shop = desk.issue(op2, 2, WalletForm::VisitorCard, None);
    // Ahead of the server's clock for the whole test, as the cards' clocks never go back.
    desk.now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 600;

    // Loaded as Li signed, from his wallet.
    desk.load(&mut phone, "500.00", "", Some(&li_key));
    assert_eq!(desk.balance(li, &li_session), "1500.00");
    let status = desk
        .get(&format!("/v1/devices/{}", phone.id), &li_session)
        .ok(200);
    assert_eq!(status["loaded"], "500.00");
    assert_eq!(status["wallet"], li.to_string());
    assert!(status["blocked"].is_null());

    // Paid offline, applet to applet; each side syncs when back online.
    desk.tap(&mut phone, &mut shop, "66.60");
    let shop_teller = desk.served.tellers[1].clone();
    let synced = desk.sync(&mut shop, &shop_teller);
    assert_eq!(synced["settled"], 1, "{synced}");
    assert!(synced["confirmation"].is_string());
    let synced = desk.sync(&mut phone, &li_session);
    assert_eq!(synced["blocked"], 0, "{synced}");
    let status = desk
        .get(&format!("/v1/devices/{}", phone.id), &li_session)
        .ok(200);
    assert_eq!(status["paid"], "66.60");
    assert_eq!(status["believed_balance"], "433.40");

    // Back into the wallet, as the card signed its unload.
    desk.now_s += 60;
    let unload = Relay::new()
        .unload(&mut phone.applet, "100.00".parse().unwrap(), desk.now_s)
        .unwrap();
    let body = json!({ "unload": to_hex(&unload.encode()) });
    let path = format!("/v1/devices/{}/unloads", phone.id);
    desk.post(&path, &li_session, &body).ok(201);
    assert_eq!(desk.balance(li, &li_session), "1600.00");
    // The same unload again is the first one's answer, not a second credit.
    desk.post(&path, &li_session, &body).ok(201);
    assert_eq!(desk.balance(li, &li_session), "1600.00");

    // A cloned card pays twice with one counter: caught at the second shop's sync, blocked.
    let mut card = desk.issue(op1, 3, WalletForm::ContactlessCard, Some((li, &li_key)));
    let mut shop_a = desk.issue(op2, 4, WalletForm::VisitorCard, None);
    let mut shop_b = desk.issue(op1, 5, WalletForm::VisitorCard, None);
    let mut next_terminal = desk.issue(op2, 6, WalletForm::VisitorCard, None);
    desk.load(&mut card, "100.00", &li_session, Some(&li_key));
    let mut clone = Card {
        id: card.id,
        applet: card.applet.clone_card(),
        load_seq: card.load_seq,
    };
    desk.tap(&mut card, &mut shop_a, "80.00");
    desk.tap(&mut clone, &mut shop_b, "90.00");
    desk.sync(&mut shop_a, &shop_teller);
    let caught = desk.sync(&mut shop_b, &desk.served.tellers[0].clone());
    assert_eq!(caught["blocked"], 1, "{caught}");
    let status = desk
        .get(&format!("/v1/devices/{}", card.id), &desk.served.tellers[0])
        .ok(200);
    assert_eq!(status["blocked"], "OFFLINE_COUNTER_REUSED");

    // Li reports his phone lost: its operator blocks it.
    let blocked = desk
        .post(
            &format!("/v1/devices/{}/block", phone.id),
            &desk.served.tellers[0],
            &Value::Null,
        )
        .ok(200);
    assert_eq!(blocked["blocked"], "DEVICE_REPORTED");

    // The next terminal downloads the list and refuses the clone.
    let listed = desk.get("/v1/revocations", "").ok(200);
    let names: Vec<&str> = listed["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [phone.id.to_string(), card.id.to_string()],
        "{listed}"
    );
    let list = RevocationList::decode(&hex(listed["list"].as_str().unwrap())).unwrap();
    Relay::new()
        .update_revocation(&mut next_terminal.applet, &list)
        .unwrap();
    desk.now_s += 60;
    let refused = Relay::new().pay(
        &mut clone.applet,
        &mut next_terminal.applet,
        "5.00".parse().unwrap(),
        desk.now_s,
    );
    let refused = refused.expect_err("the next terminal took the clone's payment");
    assert_eq!(refused.code(), Some("CERT_REVOKED"), "{refused}");
    desk.audit();
}

#[test]
fn other_parties_cannot_and_bad_input_moves_nothing() {
    let desk = Desk {
        served: Served::start(),
        now_s: 0,
    };
    let op1 = OperatorId(1);
    let li_key = KeyPair::from_seed(b"http devices/li");
    let (li, li_session) = desk.funded_wallet("13800138000", &li_key, "1000.00");
    let mallory_key = KeyPair::from_seed(b"http devices/mallory");
    let (_, mallory_session) = desk.funded_wallet("13900139000", &mallory_key, "10.00");
    let teller = desk.served.tellers[0].clone();
    let other_teller = desk.served.tellers[1].clone();

    // A binding the holder did not sign, or signed by someone else, is refused.
    let device_key = KeyPair::from_seed(b"http devices/refused");
    let unsigned = desk.issue_body(op1, DeviceId(11), &device_key, WalletForm::PhoneEse, None);
    let mut unsigned = unsigned;
    unsigned["wallet"] = json!(li.to_string());
    desk.post("/v1/operators/OP01/devices", &teller, &unsigned)
        .problem(403, "SIGNATURE_REQUIRED");
    let forged = desk.issue_body(
        op1,
        DeviceId(11),
        &device_key,
        WalletForm::PhoneEse,
        Some((li, &mallory_key)),
    );
    desk.post("/v1/operators/OP01/devices", &teller, &forged)
        .problem(403, "SIGNATURE_INVALID");
    // Another operator's teller, or the holder itself, cannot issue at OP01.
    let signed = desk.issue_body(
        op1,
        DeviceId(11),
        &device_key,
        WalletForm::PhoneEse,
        Some((li, &li_key)),
    );
    desk.post("/v1/operators/OP01/devices", &other_teller, &signed)
        .problem(403, "NOT_YOUR_OPERATOR");
    desk.post("/v1/operators/OP01/devices", &li_session, &signed)
        .problem(403, "STAFF_ONLY");
    let mut bad_form = signed.clone();
    bad_form["form"] = json!("wristband");
    desk.post("/v1/operators/OP01/devices", &teller, &bad_form)
        .problem(422, "MALFORMED_FORM");
    let mut card = desk.issue(op1, 11, WalletForm::PhoneEse, Some((li, &li_key)));
    desk.post("/v1/operators/OP01/devices", &teller, &signed)
        .problem(409, "DEVICE_EXISTS");

    // Only its holder reads it; another holder or operator hears of no such card.
    let path = format!("/v1/devices/{}", card.id);
    desk.get(&path, &mallory_session)
        .problem(404, "UNKNOWN_DEVICE");
    desk.get(&path, &other_teller)
        .problem(404, "UNKNOWN_DEVICE");
    desk.get(&path, "").problem(401, "UNAUTHENTICATED");

    // A load signed by another key, or replayed, or malformed, moves nothing.
    let forged = desk.load_body(&mut card, "100.00", Some(&mallory_key));
    let loads = format!("/v1/devices/{}/loads", card.id);
    desk.post(&loads, "", &forged)
        .problem(403, "SIGNATURE_INVALID");
    let mut garbled = desk.load_body(&mut card, "100.00", Some(&li_key));
    garbled["attestation"] = json!("zz");
    desk.post(&loads, "", &garbled)
        .problem(422, "MALFORMED_MESSAGE");
    desk.post(
        &loads,
        &mallory_session,
        &desk.load_body(&mut card, "100.00", Some(&li_key)),
    )
    .problem(404, "UNKNOWN_WALLET");
    assert_eq!(desk.balance(li, &li_session), "1000.00");
    desk.load(&mut card, "100.00", "", Some(&li_key));
    assert_eq!(desk.balance(li, &li_session), "900.00");

    // Another card's attestation cannot carry a load order for this one.
    let mut other = desk.issue(op1, 12, WalletForm::VisitorCard, None);
    let mut borrowed = desk.load_body(&mut card, "50.00", Some(&li_key));
    let attested = Relay::new()
        .attest(&mut other.applet, Nonce([1; NONCE_BYTES]))
        .unwrap();
    borrowed["attestation"] = json!(to_hex(&attested.encode()));
    desk.post(&loads, "", &borrowed)
        .problem(403, "DEVICE_MISMATCH");
    // A visitor card is loaded with cash at its operator's counter only.
    let cash = desk.load_body(&mut other, "20.00", None);
    desk.post(
        &format!("/v1/devices/{}/loads", other.id),
        &li_session,
        &cash,
    )
    .problem(403, "VISITOR_CARD_AT_COUNTER");
    desk.post(
        &format!("/v1/devices/{}/loads", other.id),
        &other_teller,
        &cash,
    )
    .problem(403, "NOT_YOUR_OPERATOR");

    // A sync replayed after its nonce was used is refused.
    let begun = desk
        .post(
            &format!("/v1/devices/{}/sync-nonce", card.id),
            &li_session,
            &Value::Null,
        )
        .ok(200);
    let nonce = Nonce::decode(&hex(begun["nonce"].as_str().unwrap())).unwrap();
    let attested = Relay::new().attest(&mut card.applet, nonce).unwrap();
    let body = json!({ "sync": to_hex(&attested.encode()) });
    let syncs = format!("/v1/devices/{}/syncs", card.id);
    desk.post(&syncs, &mallory_session, &body)
        .problem(404, "UNKNOWN_DEVICE");
    desk.post(&syncs, &li_session, &body).ok(200);
    desk.post(&syncs, &li_session, &body)
        .problem(422, "SYNC_NONCE_UNKNOWN");

    // Only its operator's staff block it.
    let block = format!("/v1/devices/{}/block", card.id);
    desk.post(&block, &li_session, &Value::Null)
        .problem(403, "STAFF_ONLY");
    desk.post(&block, &other_teller, &Value::Null)
        .problem(404, "UNKNOWN_DEVICE");
    desk.post(&block, &teller, &Value::Null).ok(200);
    // A blocked card loads nothing more.
    desk.post(
        &loads,
        "",
        &desk.load_body(&mut card, "10.00", Some(&li_key)),
    )
    .problem(422, "DEVICE_BLOCKED");
    assert_eq!(desk.balance(li, &li_session), "900.00");
    desk.audit();
}

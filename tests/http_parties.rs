//! Every party acts only as itself, over real HTTP: the central bank, an operator's teller, KYC
//! officer, compliance officer and administrator, a holder with a session, a merchant, its four
//! kinds of terminal and an anonymous caller each try every operation of the API, and each
//! refusal is the one `parties::Operation::decide` says, with its stable code. Every code met is
//! one `/openapi.json` lists for that operation and status.

#[path = "support/http_client.rs"]
#[allow(dead_code)]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::collections::{BTreeSet, HashMap};

use ecny::certs::KeyPair;
use ecny::channels::acquiring::TerminalKind;
use ecny::command::Command;
use ecny::ids::{IdempotencyKey, OperatorId, WalletId};
use ecny::parties::{session_signing_bytes, Operation, PartyKind, StaffRole};
use http_client::{send, Reply};
use serde_json::{json, Value};
use served::Served;

const VALID_ID: &str = "110101199003074514";
const OP01: OperatorId = OperatorId(1);

struct Lab {
    served: Served,
    next_key: u128,
    /// (method, route, status, code) of every problem met.
    met: BTreeSet<(String, String, u16, String)>,
}

impl Lab {
    fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.next_key += 1;
        let key = IdempotencyKey(self.next_key).to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Idempotency-Key", key.as_str())];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
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

    fn ok(&mut self, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let reply = self.call(method, path, token, Some(&body));
        assert!(
            reply.status < 300,
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        reply.json()
    }

    fn staff(&mut self, role: &str) -> String {
        let admin = self.served.operators[0].clone();
        let added = self.ok(
            "POST",
            "/v1/operators/OP01/staff",
            Some(&admin),
            json!({ "role": role, "label": format!("{role} desk") }),
        );
        added["token"].as_str().unwrap().to_string()
    }

    fn open_wallet(&mut self, teller: &str, phone: &str, key: &KeyPair) -> WalletId {
        let opened = self.ok(
            "POST",
            "/v1/operators/OP01/wallets",
            Some(teller),
            json!({ "phone": phone, "public_key": key.public_key().to_hex() }),
        );
        opened["wallet"].as_str().unwrap().parse().unwrap()
    }

    fn session(&mut self, wallet: WalletId, key: &KeyPair) -> String {
        let challenge = self.ok(
            "POST",
            "/v1/sessions/challenges",
            None,
            json!({ "wallet": wallet.to_string() }),
        );
        let challenge = challenge["challenge"].as_str().unwrap().to_string();
        let signature = key.sign(&session_signing_bytes(wallet, &challenge));
        let session = self.ok(
            "POST",
            "/v1/sessions",
            None,
            json!({ "wallet": wallet.to_string(), "challenge": challenge, "signature": signature.to_hex() }),
        );
        session["token"].as_str().unwrap().to_string()
    }
}

/// The world every party's attempt runs against: all of it at OP01, all of it the parties' own.
struct Fixture {
    tokens: HashMap<&'static str, String>,
    holder: (WalletId, KeyPair),
    merchant: String,
    contract: String,
    /// The holder's exchange: a transfer the holder and OP01's staff are parties to.
    transfer: String,
    sub_wallet: String,
    throwaway_staff: String,
    /// RP000001, sponsored by the holder, taking registrations for an hour; its file.
    campaign_file: Value,
}

/// A one-packet campaign for `sponsor`'s wallet, registration open for an hour from `now_ms`.
fn campaign_file(sponsor: WalletId, now_ms: u64) -> Value {
    use ecny::programs::campaign::{
        Campaign, CampaignTerms, Eligibility, RegionCode, Sponsor, Window,
    };
    let closes = now_ms + 3_600_000;
    let terms = CampaignTerms {
        id: ecny::ids::CampaignId(1),
        name: "Matrix red packets".into(),
        sponsor: Sponsor {
            name: "Matrix city".into(),
            wallet: sponsor,
        },
        budget: "1.00".parse().unwrap(),
        packet_count: 1,
        packet_value: "1.00".parse().unwrap(),
        region: RegionCode::new(320_500).unwrap(),
        eligibility: Eligibility::default(),
        registration: Window {
            opens_at_ms: now_ms,
            closes_at_ms: closes,
        },
        validity: Window {
            opens_at_ms: closes,
            closes_at_ms: closes + 3_600_000,
        },
        offline_trial: false,
        seed_commitment: ecny::programs::lottery::Seed::from_bytes([3; 32]).commitment(),
    };
    serde_json::from_str(&Campaign::new(terms).unwrap().to_json()).unwrap()
}

fn kind_key(kind: PartyKind) -> &'static str {
    match kind {
        PartyKind::CentralBank => "central_bank",
        PartyKind::Staff(StaffRole::Teller) => "teller",
        PartyKind::Staff(StaffRole::KycOfficer) => "kyc_officer",
        PartyKind::Staff(StaffRole::ComplianceOfficer) => "compliance_officer",
        PartyKind::Staff(StaffRole::Administrator) => "administrator",
        PartyKind::Holder => "holder",
        PartyKind::Merchant => "merchant",
        PartyKind::Terminal(TerminalKind::Pos) => "pos",
        PartyKind::Terminal(TerminalKind::ScanGun) => "scan_gun",
        PartyKind::Terminal(TerminalKind::Courier) => "courier",
        PartyKind::Terminal(TerminalKind::OnlineShop) => "online_shop",
        PartyKind::Anonymous => "anonymous",
    }
}

fn fixture(lab: &mut Lab) -> Fixture {
    let mut tokens = HashMap::new();
    tokens.insert("central_bank", lab.served.central_bank.clone());
    for role in [
        "teller",
        "kyc_officer",
        "compliance_officer",
        "administrator",
    ] {
        let token = lab.staff(role);
        tokens.insert(role, token);
    }
    let teller = tokens["teller"].clone();
    let kyc = tokens["kyc_officer"].clone();
    // A merchant's settlement wallet, class 2.
    let shop_key = KeyPair::generate();
    let shop_wallet = lab.open_wallet(&teller, "13700000001", &shop_key);
    lab.ok(
        "POST",
        &format!("/v1/wallets/{shop_wallet}/bank-account"),
        Some(&teller),
        json!({ "cash": "100.00" }),
    );
    lab.ok(
        "POST",
        &format!("/v1/wallets/{shop_wallet}/kyc"),
        Some(&kyc),
        json!({ "class": 2, "name": "Wang Wu", "id_number": VALID_ID }),
    );
    let admin = tokens["administrator"].clone();
    let merchant = lab.ok("POST", "/v1/operators/OP01/merchants", Some(&admin),
        json!({ "wallet": shop_wallet.to_string(), "name": "Pingjiang Snacks", "mcc": "5814", "region": 320500 }));
    let merchant_id = merchant["merchant"].as_str().unwrap().to_string();
    let merchant_token = merchant["token"].as_str().unwrap().to_string();
    for kind in ["pos", "scan_gun", "courier", "online_shop"] {
        let added = lab.ok(
            "POST",
            &format!("/v1/merchants/{merchant_id}/terminals"),
            Some(&merchant_token),
            json!({ "kind": kind }),
        );
        tokens.insert(
            match kind {
                "pos" => "pos",
                "scan_gun" => "scan_gun",
                "courier" => "courier",
                _ => "online_shop",
            },
            added["token"].as_str().unwrap().to_string(),
        );
    }
    tokens.insert("merchant", merchant_token);
    // The holder: funded, with a session, a sub-wallet and a contract.
    let key = KeyPair::generate();
    let wallet = lab.open_wallet(&teller, "13700000002", &key);
    lab.ok(
        "POST",
        &format!("/v1/wallets/{wallet}/bank-account"),
        Some(&teller),
        json!({ "cash": "1000.00" }),
    );
    let exchange = exchange_body(
        &lab.served,
        wallet,
        "500.00",
        IdempotencyKey(1 << 100),
        &key,
    );
    let reply = send(
        lab.served.server.addr(),
        "POST",
        &format!("/v1/wallets/{wallet}/exchange"),
        &[
            ("Idempotency-Key", &IdempotencyKey(1 << 100).to_string()),
            ("Content-Type", "application/json"),
        ],
        exchange.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let transfer = reply.json()["transfer"].as_str().unwrap().to_string();
    let session = lab.session(wallet, &key);
    tokens.insert("holder", session);
    let open_sub = Command::OpenSubWallet {
        wallet,
        merchant: merchant_id.parse().unwrap(),
        limits: ecny::wallet::sub_wallet::SubWalletLimits {
            per_payment: "50.00".parse().unwrap(),
            daily: "100.00".parse().unwrap(),
        },
        auth: None,
    };
    let body = json!({ "merchant": merchant_id, "per_payment": "50.00", "daily": "100.00" });
    let body = lab.served.signed(OP01, &key, &open_sub, body);
    let sub = lab.ok(
        "POST",
        &format!("/v1/wallets/{wallet}/sub-wallets"),
        None,
        body,
    );
    let contract_key = IdempotencyKey(1 << 101);
    let open_contract = Command::OpenContract {
        payer: wallet,
        payee: shop_wallet,
        template: ecny::programs::contracts::Template::Prepaid {
            units: 10,
            unit_price: "5.00".parse().unwrap(),
        },
        purpose: "lessons".into(),
        key: contract_key,
        auth: None,
    };
    let reply = send(
        lab.served.server.addr(),
        "POST",
        "/v1/contracts",
        &[
            ("Idempotency-Key", &contract_key.to_string()),
            ("Content-Type", "application/json"),
        ],
        lab.served
            .signed(
                OP01,
                &key,
                &open_contract,
                json!({ "payer": wallet.to_string(),
            "payee": shop_wallet.to_string(), "template": "prepaid", "purpose": "lessons",
            "units": 10, "unit_price": "5.00" }),
            )
            .to_string()
            .as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let order = lab.ok(
        "POST",
        &format!("/v1/merchants/{merchant_id}/orders"),
        Some(&tokens["pos"].clone()),
        json!({ "reference": "ORD-1", "amount": "12.00" }),
    );
    assert_eq!(order["status"], "open");
    // A visitor card at OP01: the device every device operation names.
    lab.ok(
        "POST",
        "/v1/operators/OP01/devices",
        Some(&teller),
        json!({ "device": "D000000000001", "form": "visitor_card",
            "device_public_key": KeyPair::generate().public_key().to_hex() }),
    );
    let throwaway = lab.ok(
        "POST",
        "/v1/operators/OP01/staff",
        Some(&admin),
        json!({ "role": "teller", "label": "leaving" }),
    );
    let now_ms = lab.call("GET", "/v1/context", None, None).json()["now_ms"]
        .as_u64()
        .unwrap();
    let campaign_file = campaign_file(wallet, now_ms);
    lab.ok("POST", "/v1/campaigns", Some(&admin), campaign_file.clone());
    Fixture {
        campaign_file,
        tokens,
        holder: (wallet, key),
        merchant: merchant_id,
        contract: reply.json()["contract"].as_str().unwrap().to_string(),
        transfer,
        sub_wallet: sub["sub_wallet"].as_str().unwrap().to_string(),
        throwaway_staff: throwaway["staff"].as_str().unwrap().to_string(),
    }
}

fn exchange_body(
    served: &Served,
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
    served.signed(OP01, signer, &command, json!({ "amount": amount }))
}

/// The request each operation is tried with: path and body, naming the fixture's own things.
fn request(op: Operation, f: &Fixture, served: &Served) -> (String, Option<Value>) {
    use Operation::*;
    let (wallet, key) = (&f.holder.0, &f.holder.1);
    let m = &f.merchant;
    let signed = |command: Command, body: Value| Some(served.signed(OP01, key, &command, body));
    let (_, route) = op.route();
    let path = route
        .replace("{op}", "OP01")
        .replace(
            "{id}",
            &if route.starts_with("/v1/contracts") {
                f.contract.clone()
            } else if route.starts_with("/v1/transfers") {
                f.transfer.clone()
            } else {
                wallet.to_string()
            },
        )
        .replace("{m}", m)
        .replace("{reference}", "ORD-1")
        .replace("{sw}", &f.sub_wallet)
        .replace("{s}", &f.throwaway_staff)
        .replace("{t}", "1")
        .replace("{d}", "D000000000001")
        .replace("{c}", "RP000001");
    let body = match op {
        CreateChallenge => Some(json!({ "wallet": wallet.to_string() })),
        OpenSession => Some(
            json!({ "wallet": wallet.to_string(), "challenge": "1.00.00", "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        OpenWallet => Some(
            json!({ "phone": "13799999999", "public_key": KeyPair::generate().public_key().to_hex() }),
        ),
        Pay => signed(
            Command::Pay {
                payer: *wallet,
                payee: WalletId(1),
                amount: "0.01".parse().unwrap(),
                key: IdempotencyKey(1),
                auth: None,
            },
            json!({ "payer": wallet.to_string(), "payee": "W0000000001", "amount": "0.01" }),
        ),
        AddStaff => Some(json!({ "role": "teller", "label": "matrix" })),
        SetCodePaymentCap => Some(json!({ "cap": "1000.00" })),
        OnboardMerchant => Some(
            json!({ "wallet": "W0000000001", "name": "Again", "mcc": "5814", "region": 320500 }),
        ),
        AddTerminal => Some(json!({ "kind": "pos" })),
        CreateOrder => {
            Some(json!({ "reference": format!("M-{}", rand_suffix()), "amount": "1.00" }))
        }
        ChargeCode => Some(json!({ "code": "280100000000000000", "amount": "1.00" })),
        ChargeSubWallet => Some(json!({ "sub_wallet": f.sub_wallet, "amount": "0.01" })),
        Refund => Some(json!({ "payment": "T000000000001", "amount": "0.01" })),
        PayRequest => Some(
            json!({ "payer": wallet.to_string(), "request": "000201", "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        OpenSubWallet => Some(
            json!({ "merchant": m, "per_payment": "1.00", "daily": "2.00", "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        SetSubWallet => Some(
            json!({ "per_payment": "1.00", "daily": "2.00", "open": true, "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        OpenContract => Some(
            json!({ "payer": wallet.to_string(), "payee": "W0000000001", "template": "escrow", "purpose": "x", "amount": "1.00", "deadline_ms": 1, "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        ConfirmContract => Some(
            json!({ "units": 1, "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        CancelContract => Some(
            json!({ "by": "payer", "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        OpenBankAccount => Some(json!({ "cash": "1.00" })),
        UpgradeWallet => Some(json!({ "class": 3, "name": "Li Lei", "id_number": VALID_ID })),
        Exchange => Some(
            json!({ "amount": "0.01", "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        Deanonymize => Some(json!({ "reason": "case (2026) Su 05 No. 1" })),
        CreateCampaign => Some(f.campaign_file.clone()),
        FundCampaign => signed(
            Command::FundCampaign {
                campaign: ecny::ids::CampaignId(1),
                auth: None,
            },
            json!({}),
        ),
        RegisterForCampaign => signed(
            Command::RegisterForCampaign {
                campaign: ecny::ids::CampaignId(1),
                wallet: *wallet,
                offline_trial: false,
            },
            json!({ "wallet": wallet.to_string() }),
        ),
        DrawCampaign => Some(json!({ "seed": "00".repeat(32) })),
        AdmitOperator => Some(json!({ "name": format!("Matrix Bank {}", rand_suffix()) })),
        FundReserves | Issue | Redeem => Some(json!({ "amount": "1.00" })),
        // Reinstating a serving operator: allowed, and leaves the fixture's operator serving.
        SuspendOperator => Some(json!({ "suspended": false })),
        LookupPhone => Some(json!({ "phone": "13700000001" })),
        DepositBack => Some(
            json!({ "amount": "0.01", "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        // A teller freezes and then unfreezes; a holder's made-up signature freezes nothing.
        FreezeWallet | UnfreezeWallet | CloseWallet => Some(
            json!({ "public_key": key.public_key().to_hex(), "signature": "00".repeat(64), "not_after_ms": 1 }),
        ),
        RevokeStaff | ReplaceMerchantToken | ReplaceTerminalToken => Some(json!({})),
        IssueDevice => Some(
            json!({ "device": format!("D{:012}", 100 + rand_suffix()), "form": "visitor_card",
                "device_public_key": KeyPair::generate().public_key().to_hex() }),
        ),
        LoadDevice => Some(json!({ "load_seq": 1, "amount": "1.00", "attestation": "00" })),
        UnloadDevice => Some(json!({ "unload": "00" })),
        SyncDevice => Some(json!({ "sync": "00" })),
        _ => None,
    };
    let path = match op {
        ReadOrderQr => format!("{path}?order=ORD-1"),
        _ => path,
    };
    (path, body)
}

fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn every_party_tries_every_operation_and_each_refusal_is_the_tables() {
    let mut lab = Lab {
        served: Served::start(),
        next_key: 0,
        met: BTreeSet::new(),
    };
    let mut f = fixture(&mut lab);
    let all_denials: BTreeSet<&str> = Operation::ALL
        .iter()
        .flat_map(|op| op.denial_codes())
        .collect();
    // Operations that replace credentials go last: they change the tokens the others use.
    let mut order: Vec<Operation> = Operation::ALL.to_vec();
    order.sort_by_key(|op| {
        matches!(
            op,
            Operation::ReplaceMerchantToken
                | Operation::ReplaceTerminalToken
                | Operation::RevokeStaff
        )
    });
    let (mut cells, mut denials) = (0, 0);
    for op in order {
        for kind in PartyKind::ALL {
            let (path, body) = request(op, &f, &lab.served);
            let token = f.tokens.get(kind_key(kind)).cloned();
            let reply = lab.call(op.route().0, &path, token.as_deref(), body.as_ref());
            cells += 1;
            let code = if reply.status >= 400 {
                reply.json()["code"].as_str().unwrap_or("").to_string()
            } else {
                String::new()
            };
            if reply.status >= 400 {
                lab.met.insert((
                    op.route().0.to_string(),
                    op.route().1.to_string(),
                    reply.status,
                    code.clone(),
                ));
            }
            match op.decide(kind) {
                Err(denial) => {
                    denials += 1;
                    let status = if denial.code() == "UNAUTHENTICATED" {
                        401
                    } else {
                        403
                    };
                    assert_eq!(
                        (reply.status, code.as_str()),
                        (status, denial.code()),
                        "{op:?} by {}: {}",
                        kind.name(),
                        reply.text()
                    );
                }
                Ok(()) => {
                    assert!(
                        !(reply.status == 401
                            || reply.status == 403 && all_denials.contains(code.as_str())),
                        "{op:?} by {} was refused: {}",
                        kind.name(),
                        reply.text()
                    );
                    if reply.status == 201 {
                        let answer = reply.json();
                        // A replaced token is the one its owner uses from now on.
                        match op {
                            Operation::ReplaceMerchantToken => {
                                f.tokens
                                    .insert("merchant", answer["token"].as_str().unwrap().into());
                            }
                            Operation::ReplaceTerminalToken => {
                                f.tokens
                                    .insert("pos", answer["token"].as_str().unwrap().into());
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    println!(
        "{} operations × {} parties = {cells} cells, {denials} denials asserted",
        Operation::ALL.len(),
        PartyKind::ALL.len()
    );
    assert_eq!(cells, Operation::ALL.len() * PartyKind::ALL.len());
    assert!(denials > 300, "{denials}");

    // Every code met is listed for its operation and status in the document.
    let document = lab.call("GET", "/openapi.json", None, None).json();
    let mut missing = Vec::new();
    for (method, route, status, code) in &lab.met {
        let listed = &document["paths"][route][method.to_ascii_lowercase()]["responses"]
            [status.to_string()]["x-problem-codes"];
        let listed: Vec<&str> = listed
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !listed.contains(&code.as_str()) {
            missing.push(format!("{method} {route} {status} {code}"));
        }
    }
    println!(
        "{} distinct problems met, each listed in /openapi.json",
        lab.met.len()
    );
    assert!(
        missing.is_empty(),
        "not in the document:\n{}",
        missing.join("\n")
    );
    let audit = lab
        .call(
            "GET",
            "/v1/audit",
            Some(&lab.served.central_bank.clone()),
            None,
        )
        .json();
    assert_eq!(audit["clean"], true, "{audit}");
}

//! A city's red-packet campaign over real HTTP, from creation to expiry: the city's operator
//! publishes it, the city's wallet signs the funding, people register from their wallets (a
//! second wallet of the same person refused), the list and the draw are published and verified
//! by `ecny lottery verify`, every winner is told in Chinese through a test SMS gateway (which
//! refuses once, so the outbox retries), the packet shows in the wallet, pays first at an eligible
//! shop and not at another, the city reads redemption live, and the rest goes back to the city at
//! expiry. Bad input for each operation is refused with its code and moves nothing; the audit is
//! clean at the end of each test.

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::channels::emvco::MerchantQr;
use ecny::channels::payment_request::{request_payment, RequestRead};
use ecny::command::{Command, Outcome};
use ecny::ids::{CampaignId, IdempotencyKey, MerchantId, OperatorId, WalletId};
use ecny::platform::Platform;
use ecny::programs::campaign::{Campaign, CampaignTerms, Eligibility, RegionCode, Sponsor, Window};
use ecny::programs::lottery::Seed;
use ecny::server::{Server, ServerConfig};
use ecny::signing::{DeploymentId, SigningContext};
use ecny::wallet::WalletClass;
use http_client::{send, Reply};
use serde_json::{json, Value};

const PACKETS: u32 = 3;
const PACKET_VALUE: &str = "50.00";
/// Long enough for every registration of the test on a loaded machine.
const REGISTRATION_MS: u64 = 8_000;
const VALIDITY_MS: u64 = 8_000;

#[derive(Clone)]
struct Holder {
    wallet: WalletId,
    key: KeyPair,
    operator: OperatorId,
    phone: u64,
}

/// What the test SMS gateway received, and whether it refuses the next message.
#[derive(Default)]
struct Inbox {
    messages: Vec<Value>,
    refuse_next: bool,
}

/// A small SMS gateway on a loopback port: it answers 503 once when told to, then 200.
fn sms_gateway(inbox: Arc<Mutex<Inbox>>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    use axum::http::StatusCode;
    use axum::routing::post;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route(
                "/sms",
                post(move |body: String| {
                    let inbox = inbox.clone();
                    async move {
                        let mut inbox = inbox.lock().unwrap();
                        if inbox.refuse_next {
                            inbox.refuse_next = false;
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        inbox.messages.push(serde_json::from_str(&body).unwrap());
                        StatusCode::OK
                    }
                }),
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    (addr.recv().unwrap(), stop)
}

/// The city (class 2, ¥1,000 at OP01), five citizens with ¥100 each at either operator — the
/// fifth a second wallet of the fourth's holder — and two shops' wallets at OP01.
struct People {
    city: Holder,
    citizens: Vec<Holder>,
    shops: [WalletId; 2],
}

fn seed(dir: &Path) -> People {
    let (mut platform, _) = Platform::open(dir).unwrap();
    let ops = served::two_funded_operators(&mut platform);
    let mut banked =
        |op: OperatorId, phone: u64, class: WalletClass, id_first17: &str, cash: &str| {
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
                    id_number: Some(ecny::wallet::id_number_from(id_first17).into()),
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
            Holder {
                wallet,
                key,
                operator: op,
                phone,
            }
        };
    let city = banked(
        ops[0],
        13_800_000_100,
        WalletClass::Two,
        "32050219800101001",
        "1000",
    );
    let shops = [
        banked(
            ops[0],
            13_800_000_201,
            WalletClass::Two,
            "32050219800101003",
            "1",
        )
        .wallet,
        banked(
            ops[0],
            13_800_000_202,
            WalletClass::Two,
            "31010119800101001",
            "1",
        )
        .wallet,
    ];
    let ids = [
        "32050219900101001",
        "32050219900101003",
        "32050219900101005",
        "32050219900101007",
    ];
    let mut citizens: Vec<Holder> = (0..4)
        .map(|i| {
            banked(
                ops[i % 2],
                13_900_000_001 + i as u64,
                WalletClass::Three,
                ids[i],
                "100",
            )
        })
        .collect();
    // The fourth citizen's second wallet, at the same operator and with the same ID number.
    citizens.push(banked(
        ops[1],
        13_900_000_099,
        WalletClass::Three,
        ids[3],
        "100",
    ));
    People {
        city,
        citizens,
        shops,
    }
}

struct City {
    _dir: tempfile::TempDir,
    server: Server,
    people: People,
    /// OP01's and OP02's administrators.
    operators: [String; 2],
    #[allow(dead_code)]
    teller: String,
    central_bank: String,
    inbox: Arc<Mutex<Inbox>>,
    _gateway_stop: tokio::sync::oneshot::Sender<()>,
    seed: Seed,
    next_key: u128,
}

impl City {
    fn start() -> City {
        let dir = tempfile::tempdir().unwrap();
        let people = seed(dir.path());
        let inbox = Arc::new(Mutex::new(Inbox {
            refuse_next: true,
            ..Inbox::default()
        }));
        let (gateway, gateway_stop) = sms_gateway(inbox.clone());
        let server = Server::start(&ServerConfig {
            data: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            sms_gateway: Some(format!("http://{gateway}/sms")),
            ..ServerConfig::default()
        })
        .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("keys").join(name)).unwrap();
        let operators = [read("OP01.token"), read("OP02.token")];
        let teller = served::register_staff(&server, 0, &operators[0], "teller");
        City {
            central_bank: read("central-bank.token"),
            _dir: dir,
            server,
            people,
            operators,
            teller,
            inbox,
            _gateway_stop: gateway_stop,
            seed: Seed::from_bytes([0x5a; 32]),
            next_key: 1,
        }
    }

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
        send(self.server.addr(), method, path, &headers, &body)
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, token, &Value::Null)
    }

    fn now_ms(&self) -> u64 {
        self.get("/v1/context", "").ok(200)["now_ms"]
            .as_u64()
            .unwrap()
    }

    /// `body` signed over `command` by `signer` for `operator`'s context.
    fn signed(
        &self,
        operator: OperatorId,
        signer: &KeyPair,
        command: &Command,
        mut body: Value,
    ) -> Value {
        let stated = self.get("/v1/context", "").ok(200);
        let context = SigningContext {
            deployment: DeploymentId::from_hex(stated["deployment"].as_str().unwrap()).unwrap(),
            operator,
        };
        let not_after_ms = stated["now_ms"].as_u64().unwrap() + 5 * 60 * 1000;
        body["public_key"] = json!(signer.public_key().to_hex());
        body["signature"] = json!(signer
            .sign(&command.signing_bytes(&context, not_after_ms))
            .to_hex());
        body["not_after_ms"] = json!(not_after_ms);
        body
    }

    /// The city's campaign file: packets valid anywhere in Suzhou, registration open from now.
    fn campaign_file(&self, id: u32, opens_at_ms: u64) -> Value {
        let closes = opens_at_ms + REGISTRATION_MS;
        let value: Amount = PACKET_VALUE.parse().unwrap();
        let terms = CampaignTerms {
            id: CampaignId(id),
            name: "姑苏消费红包".into(),
            sponsor: Sponsor {
                name: "苏州市人民政府".into(),
                wallet: self.people.city.wallet,
            },
            budget: Amount::from_fen(value.fen() * i64::from(PACKETS)),
            packet_count: PACKETS,
            packet_value: value,
            region: RegionCode::new(320_500).unwrap(),
            eligibility: Eligibility::default(),
            registration: Window {
                opens_at_ms,
                closes_at_ms: closes,
            },
            validity: Window {
                opens_at_ms: closes,
                closes_at_ms: closes + VALIDITY_MS,
            },
            offline_trial: false,
            seed_commitment: self.seed.commitment(),
        };
        serde_json::from_str(&Campaign::new(terms).unwrap().to_json()).unwrap()
    }

    fn fund_body(&self, campaign: CampaignId, signer: &KeyPair) -> Value {
        let command = Command::FundCampaign {
            campaign,
            auth: None,
        };
        self.signed(self.people.city.operator, signer, &command, json!({}))
    }

    fn register_body(&self, campaign: CampaignId, holder: &Holder, signer: &KeyPair) -> Value {
        let command = Command::RegisterForCampaign {
            campaign,
            wallet: holder.wallet,
            offline_trial: false,
        };
        self.signed(
            holder.operator,
            signer,
            &command,
            json!({ "wallet": holder.wallet.to_string() }),
        )
    }

    fn balance(&self, holder: &Holder) -> String {
        let op = holder.operator.index() - 1;
        self.get(
            &format!("/v1/wallets/{}", holder.wallet),
            &self.operators[op],
        )
        .ok(200)["balance"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn onboard(&self, wallet: WalletId, name: &str, region: u32) -> MerchantId {
        let body =
            json!({ "wallet": wallet.to_string(), "name": name, "mcc": "5814", "region": region });
        let reply = self
            .call(
                "POST",
                "/v1/operators/OP01/merchants",
                &self.operators[0],
                &body,
            )
            .ok(201);
        reply["merchant"].as_str().unwrap().parse().unwrap()
    }

    /// `holder` pays `amount` at `shop` by scanning its printed QR.
    fn pay_at(&mut self, holder: &Holder, shop: MerchantId, amount: &str) -> Reply {
        let payload = self.get(&format!("/v1/merchants/{shop}/qr"), "").ok(200)["qr"]
            .as_str()
            .unwrap()
            .to_string();
        let key = IdempotencyKey(0xca11_0000 + self.next_key);
        self.next_key += 1;
        let request = MerchantQr::parse(&payload).unwrap();
        let command = request_payment(
            holder.wallet,
            &request,
            Some(amount.parse().unwrap()),
            RequestRead::Scanned,
            key,
        )
        .unwrap();
        let body = json!({ "payer": holder.wallet.to_string(), "request": payload, "read": "scanned", "amount": amount });
        let body = self.signed(holder.operator, &holder.key, &command, body);
        let key_text = key.to_string();
        send(
            self.server.addr(),
            "POST",
            "/v1/request-payments",
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &key_text),
            ],
            body.to_string().as_bytes(),
        )
    }

    fn audit(&self) {
        let report = self.get("/v1/audit", &self.central_bank).ok(200);
        assert_eq!(report["clean"], true, "{report}");
    }

    fn wait_until(&self, at_ms: u64) {
        while self.now_ms() < at_ms {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs the `ecny` binary with `args` and a final path argument; its standard output.
fn ecny_command(args: &[&str], path: &Path) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ecny"))
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_citys_campaign_from_creation_to_expiry_over_http() {
    let mut city = City::start();
    let admin = city.operators[0].clone();
    let people = city.people.citizens.clone();
    let sponsor = city.people.city.clone();
    let shop_in_town = city.onboard(city.people.shops[0], "Pingjiang Snacks", 320_508);
    let shop_elsewhere = city.onboard(city.people.shops[1], "Bund Coffee", 310_101);

    let opens = city.now_ms();
    let file = city.campaign_file(1, opens);
    let created = city.call("POST", "/v1/campaigns", &admin, &file).ok(201);
    assert_eq!(created["campaign"], "RP000001");
    assert_eq!(created["status"], "open");
    assert_eq!(created["seed_commitment"], city.seed.commitment().to_hex());
    let campaign = CampaignId(1);

    let funded = city
        .call(
            "POST",
            "/v1/campaigns/RP000001/funding",
            "",
            &city.fund_body(campaign, &sponsor.key),
        )
        .ok(201);
    assert!(funded["funding_transfer"]
        .as_str()
        .unwrap()
        .starts_with('T'));
    assert_eq!(city.balance(&sponsor), "850.00");

    for citizen in &people[..4] {
        let body = city.register_body(campaign, citizen, &citizen.key);
        city.call("POST", "/v1/campaigns/RP000001/registrations", "", &body)
            .ok(201);
    }
    // The fourth citizen's second wallet: one registration per person.
    let body = city.register_body(campaign, &people[4], &people[4].key);
    city.call("POST", "/v1/campaigns/RP000001/registrations", "", &body)
        .problem(409, "CAMPAIGN_IDENTITY_REGISTERED");
    let published = city.get("/v1/campaigns/RP000001", "").ok(200);
    assert_eq!(published["registrations"], 4);
    let list = city.get("/v1/campaigns/RP000001/registrations", "");
    assert_eq!(list.status, 200);
    assert_eq!(list.text().lines().count(), 4);
    assert!(!list.text().contains(&people[4].wallet.to_string()));

    city.wait_until(opens + REGISTRATION_MS);
    let drawn = city
        .call(
            "POST",
            "/v1/campaigns/RP000001/draw",
            &admin,
            &json!({ "seed": city.seed.to_hex() }),
        )
        .ok(201);
    assert_eq!(drawn["winners"], PACKETS);
    assert_eq!(drawn["notices_queued"], PACKETS);

    // Anyone fetches the three published files with the client and re-runs the draw.
    let files = tempfile::tempdir().unwrap();
    let url = format!("http://{}", city.server.addr());
    let fetched = ecny_command(
        &[
            "campaign",
            "fetch",
            "--server",
            &url,
            "--campaign",
            "RP000001",
            "--out",
        ],
        files.path(),
    );
    assert!(fetched.contains("draw.json"), "{fetched}");
    let draw = city.get("/v1/campaigns/RP000001/draw", "");
    assert_eq!(draw.status, 200, "{}", draw.text());
    assert_eq!(
        std::fs::read_to_string(files.path().join("draw.json")).unwrap(),
        draw.text()
    );
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_ecny"))
        .arg("lottery")
        .arg("verify")
        .arg("--campaign")
        .arg(files.path().join("campaign.json"))
        .arg("--registrants")
        .arg(files.path().join("registrants.txt"))
        .arg("--draw")
        .arg(files.path().join("draw.json"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let winners: Vec<WalletId> = draw.json()["winners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(winners.len(), PACKETS as usize);

    // Every winner is told, in Chinese, at the phone number the wallet was opened with; the
    // gateway's first refusal was retried.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let outbox = city.get("/v1/campaigns/RP000001/notices", &admin).ok(200);
        if outbox["delivered"] == PACKETS {
            assert_eq!(
                (outbox["queued"].as_u64(), outbox["failed"].as_u64()),
                (Some(3), Some(0))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every winner was told: {outbox}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    {
        let inbox = city.inbox.lock().unwrap();
        assert_eq!(inbox.messages.len(), PACKETS as usize);
        for (index, winner) in winners.iter().enumerate() {
            let holder = people.iter().find(|h| h.wallet == *winner).unwrap();
            let message = inbox
                .messages
                .iter()
                .find(|m| m["wallet"] == winner.to_string())
                .unwrap_or_else(|| panic!("no message for {winner}"));
            assert_eq!(message["to"], holder.phone.to_string());
            assert_eq!(message["id"], format!("RP000001-{}", index + 1));
            let text = message["text"].as_str().unwrap();
            assert!(text.starts_with("【苏州市人民政府】"), "{text}");
            assert!(
                text.contains(&format!("您的数字人民币钱包{winner}抽中")),
                "{text}"
            );
            assert!(
                text.contains(&format!("第{}号红包¥50.00", index + 1)),
                "{text}"
            );
        }
    }
    // The gateway's refusal was retried: four attempts for three notices, over both operators'
    // views of the outbox (each operator's staff see their own wallets' notices).
    assert!(!city.inbox.lock().unwrap().refuse_next);
    let attempts: u64 = city
        .operators
        .iter()
        .flat_map(|token| {
            let outbox = city.get("/v1/campaigns/RP000001/notices", token).ok(200);
            outbox["notices"].as_array().unwrap().clone()
        })
        .map(|notice| {
            assert_eq!(notice["status"], "delivered");
            notice["attempts"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(attempts, u64::from(PACKETS) + 1);

    // The packet in the winner's wallet: amount, where, until when.
    let winner = people
        .iter()
        .find(|h| h.wallet == winners[0])
        .unwrap()
        .clone();
    let session = served::open_session(&city.server, winner.wallet, &winner.key);
    let shown = city
        .get(&format!("/v1/wallets/{}/packets", winner.wallet), &session)
        .ok(200);
    assert_eq!(shown["total"], PACKET_VALUE);
    let packet = &shown["packets"][0];
    assert_eq!(packet["value"], PACKET_VALUE);
    assert_eq!(packet["status"], "usable");
    assert_eq!(packet["eligible"]["region"], "320500");
    assert_eq!(
        packet["expires_at_ms"],
        opens + REGISTRATION_MS + VALIDITY_MS
    );
    // Someone else's session does not see it.
    let other = people
        .iter()
        .find(|h| !winners.contains(&h.wallet))
        .unwrap();
    let other_session = served::open_session(&city.server, other.wallet, &other.key);
    city.get(
        &format!("/v1/wallets/{}/packets", winner.wallet),
        &other_session,
    )
    .problem(404, "UNKNOWN_WALLET");

    // Paying in Suzhou spends the packet first; in Shanghai the wallet pays.
    let before = city.balance(&winner);
    city.pay_at(&winner, shop_in_town, "30.00").ok(201);
    assert_eq!(city.balance(&winner), before);
    city.pay_at(&winner, shop_elsewhere, "10.00").ok(201);
    let paid_own: Amount = before.parse::<Amount>().unwrap();
    assert_eq!(
        city.balance(&winner),
        Amount::from_fen(paid_own.fen() - 1000).to_string()
    );
    let shown = city
        .get(&format!("/v1/wallets/{}/packets", winner.wallet), &session)
        .ok(200);
    assert_eq!(shown["total"], "20.00");

    // The city reads redemption as it happens; another operator's staff may not.
    let report = city
        .get("/v1/campaigns/RP000001/redemption", &admin)
        .ok(200);
    assert_eq!(
        (report["payments"].as_u64(), report["spent"].as_str()),
        (Some(1), Some("30.00"))
    );
    city.get("/v1/campaigns/RP000001/redemption", &city.operators[1])
        .problem(403, "NOT_YOUR_OPERATOR");
    let url = format!("http://{}", city.server.addr());
    let live = ecny_command(
        &[
            "campaign",
            "redemption",
            "--server",
            &url,
            "--token",
            &admin,
            "--campaign",
            "RP000001",
            "--data",
        ],
        city._dir.path(),
    );
    assert!(
        live.contains("1 of 3 packets used in 1 payments, 30.00 spent"),
        "{live}"
    );
    city.get("/v1/campaigns/RP000001/redemption", &city.central_bank)
        .ok(200);

    // At expiry what is unspent goes back to the city, with the next entry the center applies.
    city.wait_until(opens + REGISTRATION_MS + VALIDITY_MS);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = city
            .get("/v1/campaigns/RP000001/redemption", &admin)
            .ok(200);
        if report["status"] == "expired" {
            assert_eq!(report["returned"], "120.00");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign did not expire: {report}"
        );
        city.pay_at(&winner, shop_elsewhere, "0.01").ok(201);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(city.balance(&sponsor), "970.00");
    let shown = city
        .get(&format!("/v1/wallets/{}/packets", winner.wallet), &session)
        .ok(200);
    assert_eq!(shown["packets"][0]["status"], "expired");
    city.audit();
}

#[test]
fn bad_input_and_the_wrong_parties_are_refused_and_move_nothing() {
    let city = City::start();
    let admin = city.operators[0].clone();
    let other_admin = city.operators[1].clone();
    let sponsor = city.people.city.clone();
    let citizen = city.people.citizens[0].clone();
    let stranger = city.people.citizens[1].clone();
    let opens = city.now_ms();
    let file = city.campaign_file(1, opens);

    // Publishing: only the sponsor's operator's administrator, only sound terms, ids in order.
    city.call("POST", "/v1/campaigns", &city.teller, &file)
        .problem(403, "ROLE_NOT_ALLOWED");
    city.call("POST", "/v1/campaigns", &other_admin, &file)
        .problem(403, "NOT_YOUR_OPERATOR");
    city.call("POST", "/v1/campaigns", "", &file)
        .problem(401, "UNAUTHENTICATED");
    let mut unbalanced = file.clone();
    unbalanced["budget"] = json!("149.99");
    city.call("POST", "/v1/campaigns", &admin, &unbalanced)
        .problem(422, "CAMPAIGN_BUDGET_MISMATCH");
    let mut extra = file.clone();
    extra["bonus"] = json!(true);
    city.call("POST", "/v1/campaigns", &admin, &extra)
        .problem(422, "CAMPAIGN_FILE_MALFORMED");
    city.call(
        "POST",
        "/v1/campaigns",
        &admin,
        &city.campaign_file(2, opens),
    )
    .problem(422, "CAMPAIGN_ID_NOT_NEXT");
    city.get("/v1/campaigns/RP000001", "")
        .problem(404, "UNKNOWN_CAMPAIGN");
    city.get("/v1/campaigns/XP1", "")
        .problem(400, "MALFORMED_ID");
    city.call("POST", "/v1/campaigns", &admin, &file).ok(201);
    let campaign = CampaignId(1);

    // Funding: the sponsor's key alone; an operator's token cannot carry it.
    let forged = city.fund_body(campaign, &citizen.key);
    city.call("POST", "/v1/campaigns/RP000001/funding", "", &forged)
        .problem(403, "SIGNATURE_INVALID");
    let signed = city.fund_body(campaign, &sponsor.key);
    city.call("POST", "/v1/campaigns/RP000001/funding", &admin, &signed)
        .problem(403, "HOLDER_ONLY");
    let mut garbled = signed.clone();
    garbled["signature"] = json!("zz");
    city.call("POST", "/v1/campaigns/RP000001/funding", "", &garbled)
        .problem(422, "MALFORMED_SIGNATURE");
    assert_eq!(city.balance(&sponsor), "1000.00");

    // Registering: the wallet's own key, from the wallet's own session or none.
    let register = "/v1/campaigns/RP000001/registrations";
    city.call(
        "POST",
        register,
        "",
        &city.register_body(campaign, &citizen, &stranger.key),
    )
    .problem(403, "SIGNATURE_INVALID");
    let stranger_session = served::open_session(&city.server, stranger.wallet, &stranger.key);
    city.call(
        "POST",
        register,
        &stranger_session,
        &city.register_body(campaign, &citizen, &citizen.key),
    )
    .problem(404, "UNKNOWN_WALLET");
    let mut bad_wallet = city.register_body(campaign, &citizen, &citizen.key);
    bad_wallet["wallet"] = json!("W-1");
    city.call("POST", register, "", &bad_wallet)
        .problem(422, "MALFORMED_ID");
    city.call(
        "POST",
        "/v1/campaigns/RP000009/registrations",
        "",
        &city.register_body(CampaignId(9), &citizen, &citizen.key),
    )
    .problem(404, "UNKNOWN_CAMPAIGN");
    assert_eq!(city.get(register, "").text(), "");

    // The draw: not before registration closes, not by another operator, only the committed seed.
    let draw = "/v1/campaigns/RP000001/draw";
    let seed = json!({ "seed": city.seed.to_hex() });
    city.call("POST", draw, &admin, &seed)
        .problem(422, "REGISTRATION_STILL_OPEN");
    city.call("POST", draw, &other_admin, &seed)
        .problem(403, "NOT_YOUR_OPERATOR");
    city.call("POST", draw, &admin, &json!({ "seed": "00" }))
        .problem(422, "SEED_MALFORMED");
    city.get(draw, "").problem(409, "CAMPAIGN_NOT_DRAWN");
    city.get("/v1/campaigns/RP000001/notices", &city.central_bank)
        .problem(403, "STAFF_ONLY");
    city.get(
        &format!("/v1/wallets/{}/packets", citizen.wallet),
        &stranger_session,
    )
    .problem(404, "UNKNOWN_WALLET");

    city.wait_until(opens + REGISTRATION_MS);
    city.call(
        "POST",
        register,
        "",
        &city.register_body(campaign, &citizen, &citizen.key),
    )
    .problem(422, "REGISTRATION_NOT_OPEN");
    city.call(
        "POST",
        draw,
        &admin,
        &json!({ "seed": Seed::from_bytes([1; 32]).to_hex() }),
    )
    .problem(422, "SEED_COMMITMENT_MISMATCH");
    city.call("POST", draw, &admin, &seed)
        .problem(422, "CAMPAIGN_NOT_FUNDED");
    // Nothing moved: the city's money is where it was, the campaign still open and undrawn.
    assert_eq!(city.balance(&sponsor), "1000.00");
    let published = city.get("/v1/campaigns/RP000001", "").ok(200);
    assert_eq!(
        (
            published["status"].as_str(),
            published["registrations"].as_u64()
        ),
        (Some("open"), Some(0))
    );
    assert!(published.get("funding_transfer").is_none());
    city.audit();
}

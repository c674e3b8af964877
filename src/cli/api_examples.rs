//! `ecny api-examples`: one valid request for every operation of the API, made on a running
//! server by the party the authorization table (`parties::Operation::decide`) lets do it, for an
//! API fuzzer to replay. It sets up the parties first (staff by role, holders with keys and
//! sessions, a merchant with terminals, the central bank's token), then writes
//!
//! - `openapi.json`: the server's document with each request added as a named `examples` entry
//!   (its path parameters, query, `Idempotency-Key` and body), named after the operation;
//! - `schemathesis.toml`: which credential (and which path parameters) each operation is tried
//!   with.
//!
//! Single-use things (a payment code, a challenge, an order, an idempotency key, a contract to
//! cancel) belong to one example each, so the examples may be replayed in any order. Holders'
//! signatures are good for the server's whole window (10 minutes) from the end of the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::certs::device::CompactCertificate;
use ecny::certs::PublicKey;
use ecny::certs::{encode_hex, KeyPair};
use ecny::channels::acquiring::TerminalKind;
use ecny::channels::emvco::MerchantQr;
use ecny::channels::payment_request::{request_payment, RequestRead};
use ecny::command::Command;
use ecny::ids::{CampaignId, ContractId, DeviceId, MerchantId, OperatorId, SubWalletId, WalletId};
use ecny::offline::applet::{Applet, Personalization};
use ecny::offline::messages::{LoadAuthorization, Nonce, Wire, NONCE_BYTES};
use ecny::offline::profiles::{Profile, WalletForm};
use ecny::offline::protocol::Relay;
use ecny::parties::{session_signing_bytes, Operation, PartyKind, StaffRole};
use ecny::programs::campaign::{Campaign, CampaignTerms, Eligibility, RegionCode, Sponsor, Window};
use ecny::programs::contracts::Template;
use ecny::programs::lottery::Seed;
use ecny::server::devices::form_code;
use ecny::signing::{DeploymentId, SigningContext};
use ecny::wallet::sub_wallet::SubWalletLimits;

use super::client::{answer_field, operator_token, text, write_file, Failure, DATA_DEFAULT};
use super::http::{fresh_key, uuid_text, Api, SERVER_DEFAULT};

/// The operator the parties are set up at: the demo's first.
const OPERATOR: OperatorId = OperatorId(1);
/// Where the document's and the configuration's names come from.
pub const DOCUMENT_FILE: &str = "openapi.json";
pub const SCHEMATHESIS_FILE: &str = "schemathesis.toml";
/// The extension of each documented operation that lists its examples by name and party.
pub const MADE_EXAMPLES: &str = "x-ecny-examples";

#[derive(Args)]
pub struct ApiExamplesArgs {
    /// The running server to set the parties up on.
    #[arg(long, default_value = SERVER_DEFAULT)]
    server: String,
    /// The server's data directory: OP01's administrator token and the central bank's are read
    /// from its keys.
    #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
    data: PathBuf,
    /// Where openapi.json and schemathesis.toml go (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Who makes an operation's example, among those the table allows: a holder for what is the
/// holder's, the merchant for the shop's, then staff, then the central bank.
const PREFERENCE: [PartyKind; 9] = [
    PartyKind::Holder,
    PartyKind::Merchant,
    PartyKind::Terminal(TerminalKind::ScanGun),
    PartyKind::Staff(StaffRole::Teller),
    PartyKind::Staff(StaffRole::KycOfficer),
    PartyKind::Staff(StaffRole::ComplianceOfficer),
    PartyKind::Staff(StaffRole::Administrator),
    PartyKind::CentralBank,
    PartyKind::Anonymous,
];

/// The party whose credential an operation is tried with. It is one per route (the printed and
/// an order's QR share one), so it is a party every operation there admits; public routes get
/// none.
pub fn maker(operation: Operation) -> PartyKind {
    let sharing: Vec<Operation> = Operation::ALL
        .into_iter()
        .filter(|other| other.route() == operation.route())
        .collect();
    if sharing.iter().all(|op| op.denial_codes().is_empty()) {
        return PartyKind::Anonymous;
    }
    match operation {
        // A teller at the counter, the new holder's key signing: an operation tried with no
        // credential would be sent with whatever credential the operation before it used.
        Operation::OpenWallet => PartyKind::Staff(StaffRole::Teller),
        // The administrator, at a shop of its own: replacing the merchant's or its scan gun's
        // token would take the credential the other examples use.
        Operation::ReplaceMerchantToken | Operation::ReplaceTerminalToken => {
            PartyKind::Staff(StaffRole::Administrator)
        }
        _ => PREFERENCE
            .into_iter()
            .find(|kind| sharing.iter().all(|op| op.decide(*kind).is_ok()))
            .unwrap_or(PartyKind::Anonymous),
    }
}

/// One request, ready to send: everything but the server's address.
#[derive(Clone, Debug)]
pub struct Example {
    pub operation: Operation,
    pub party: PartyKind,
    /// The bearer token it is sent with; none for a public operation or a signature alone.
    pub token: Option<String>,
    pub path: Vec<(&'static str, String)>,
    pub query: Vec<(&'static str, String)>,
    pub idempotency_key: Option<String>,
    pub body: Option<Value>,
}

impl Example {
    /// The example's name in the document: the operation's.
    pub fn name(&self) -> String {
        format!("{:?}", self.operation)
    }

    fn path(mut self, name: &'static str, value: impl ToString) -> Example {
        self.path.push((name, value.to_string()));
        self
    }

    fn query(mut self, name: &'static str, value: impl ToString) -> Example {
        self.query.push((name, value.to_string()));
        self
    }

    fn keyed(mut self, key: ecny::ids::IdempotencyKey) -> Example {
        self.idempotency_key = Some(uuid_text(key));
        self
    }

    fn body(mut self, body: Value) -> Example {
        self.body = Some(body);
        self
    }
}

struct Staff {
    token: String,
    api: Api,
}

struct Holder {
    wallet: WalletId,
    key: KeyPair,
    session: Option<String>,
}

/// The shop the examples buy from, and one whose tokens the administrator replaces.
struct Shop {
    id: MerchantId,
    token: String,
    /// Its printed QR's payload.
    qr: String,
    /// A terminal: the scan gun at the first shop, a till at the second.
    terminal: u16,
    terminal_token: String,
}

/// The parties on the server, and what the examples are made with.
struct Setup {
    server: String,
    anonymous: Api,
    admin: Api,
    admin_token: String,
    central_bank_token: String,
    teller: Staff,
    kyc_officer: Staff,
    compliance_officer: Staff,
    /// Phone numbers and identity numbers: fresh ones from a random start, so a second run on the
    /// same server meets no wallet of the first.
    next_phone: u64,
    next_person: u64,
}

pub fn run(args: ApiExamplesArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.out).map_err(|error| {
        Failure::new(
            "FILE_UNWRITABLE",
            format!("{}: {error}", args.out.display()),
        )
    })?;
    let admin_token = operator_token(None, &args.data, OPERATOR)?;
    let central_bank_token = read_token(&args.data, "central-bank.token")?;
    let anonymous = Api::new(&args.server, "")?;
    let document = anonymous.get("/openapi.json")?;
    let mut setup = Setup::new(&args.server, admin_token, central_bank_token)?;
    let examples = setup.examples()?;
    for example in &examples {
        check_party(example)?;
    }
    let missing: Vec<String> = Operation::ALL
        .into_iter()
        .filter(|operation| !examples.iter().any(|e| e.operation == *operation))
        .map(|operation| format!("{operation:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::new(
            "EXAMPLE_MISSING",
            format!("no example for {}", missing.join(", ")),
        ));
    }
    let document = with_examples(document, &examples)?;
    let document_path = args.out.join(DOCUMENT_FILE);
    let mut document_text =
        serde_json::to_string_pretty(&document).expect("a JSON value serializes");
    document_text.push('\n');
    write_file(&document_path, document_text.as_bytes())?;
    let config_path = args.out.join(SCHEMATHESIS_FILE);
    write_file(&config_path, schemathesis_config(&examples)?.as_bytes())?;
    let operations = examples
        .iter()
        .map(|example| example.operation.route())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    println!(
        "{} examples for {operations} documented operations, in {}; credentials in {}",
        examples.len(),
        document_path.display(),
        config_path.display()
    );
    Ok(())
}

fn read_token(data: &Path, name: &str) -> Result<String, Failure> {
    let path = data.join("keys").join(name);
    std::fs::read_to_string(&path)
        .map(|token| token.trim().to_string())
        .map_err(|error| {
            Failure::new(
                "TOKEN_MISSING",
                format!(
                    "cannot read {}: {error}; pass --data DIR (the server's data directory)",
                    path.display()
                ),
            )
        })
}

/// The example is made by the party its operation is tried with, and the table lets it.
fn check_party(example: &Example) -> Result<(), Failure> {
    let expected = maker(example.operation);
    let allowed = example.operation.decide(example.party).is_ok()
        || example.operation.denial_codes().is_empty();
    if example.party != expected || !allowed {
        return Err(Failure::new(
            "EXAMPLE_PARTY_WRONG",
            format!(
                "{:?} was made as {}; the table wants {}",
                example.operation,
                example.party.name(),
                expected.name()
            ),
        ));
    }
    Ok(())
}

/// 1 to `bound` - 1, from the operating system's random source.
fn random_below(bound: u64) -> Result<u64, Failure> {
    let key = fresh_key()?;
    Ok((key.0 % u128::from(bound - 1)) as u64 + 1)
}

impl Setup {
    fn new(
        server: &str,
        admin_token: String,
        central_bank_token: String,
    ) -> Result<Setup, Failure> {
        let admin = Api::new(server, &admin_token)?;
        let staff = |role: &str| -> Result<Staff, Failure> {
            let added = admin.post(
                &format!("/v1/operators/{OPERATOR}/staff"),
                &json!({ "role": role, "label": format!("examples {role}") }),
            )?;
            let token = text(&added, "token")?.to_string();
            Ok(Staff {
                api: Api::new(server, &token)?,
                token,
            })
        };
        Ok(Setup {
            teller: staff("teller")?,
            kyc_officer: staff("kyc_officer")?,
            compliance_officer: staff("compliance_officer")?,
            server: server.to_string(),
            anonymous: Api::new(server, "")?,
            admin,
            admin_token,
            central_bank_token,
            // 139 and eight digits; a run takes a few dozen.
            next_phone: 13_900_000_000 + random_below(90_000_000)?,
            next_person: random_below(10_000_000_000)?,
        })
    }

    /// The holder's public key, signature over `command` and its window's end as request fields:
    /// for the server's deployment and OP01, good for the longest window the server allows.
    fn signed(&self, key: &KeyPair, command: &Command, mut body: Value) -> Result<Value, Failure> {
        let stated = self.anonymous.get("/v1/context")?;
        let deployment = DeploymentId::from_hex(text(&stated, "deployment")?).ok_or_else(|| {
            Failure::new(
                "RESPONSE_MALFORMED",
                format!("the server's deployment is not 32 hex digits: {stated}"),
            )
        })?;
        let number = |name: &str| {
            stated[name].as_u64().ok_or_else(|| {
                Failure::new(
                    "RESPONSE_MALFORMED",
                    format!("the server's context has no {name}: {stated}"),
                )
            })
        };
        let not_after_ms = number("now_ms")? + number("signature_window_ms_max")?;
        let context = SigningContext {
            deployment,
            operator: OPERATOR,
        };
        let signature = key.sign(&command.signing_bytes(&context, not_after_ms));
        body["public_key"] = json!(key.public_key().to_hex());
        body["signature"] = json!(signature.to_hex());
        body["not_after_ms"] = json!(not_after_ms);
        Ok(body)
    }

    fn phone(&mut self) -> String {
        self.next_phone += 1;
        self.next_phone.to_string()
    }

    /// A resident ID number nobody else on the server has (the check character included).
    fn id_number(&mut self) -> String {
        self.next_person += 1;
        ecny::wallet::id_number_from(&format!("3205{:013}", self.next_person))
    }

    /// The body that opens a class-4 wallet with a new key, signed by that key.
    fn open_wallet_body(&mut self) -> Result<(KeyPair, Value), Failure> {
        let key = KeyPair::generate();
        let phone = self.phone();
        let command = Command::OpenWallet {
            operator: OPERATOR,
            phone: ecny::wallet::parse_phone(&phone)?.into(),
            public_key: key.public_key(),
        };
        let body = self.signed(&key, &command, json!({ "phone": phone }))?;
        Ok((key, body))
    }

    fn holder(&mut self) -> Result<Holder, Failure> {
        let (key, body) = self.open_wallet_body()?;
        let opened = self
            .anonymous
            .post(&format!("/v1/operators/{OPERATOR}/wallets"), &body)?;
        Ok(Holder {
            wallet: answer_field(&opened, "wallet")?,
            key,
            session: None,
        })
    }

    /// A challenge for the holder, signed with the wallet's key: an open-session request.
    fn session_request(&self, holder: &Holder) -> Result<Value, Failure> {
        let asked = self.anonymous.post(
            "/v1/sessions/challenges",
            &json!({ "wallet": holder.wallet.to_string() }),
        )?;
        let challenge = text(&asked, "challenge")?.to_string();
        let signature = holder
            .key
            .sign(&session_signing_bytes(holder.wallet, &challenge));
        Ok(json!({
            "wallet": holder.wallet.to_string(),
            "challenge": challenge,
            "signature": signature.to_hex(),
        }))
    }

    fn open_session(&self, holder: &mut Holder) -> Result<(), Failure> {
        let request = self.session_request(holder)?;
        let opened = self.anonymous.post("/v1/sessions", &request)?;
        holder.session = Some(text(&opened, "token")?.to_string());
        Ok(())
    }

    /// A teller opens a deposit account with `cash` and binds it to the wallet.
    fn bank_account(&self, holder: &Holder, cash: &str) -> Result<(), Failure> {
        self.teller.api.post_keyed(
            &format!("/v1/wallets/{}/bank-account", holder.wallet),
            fresh_key()?,
            &json!({ "cash": cash }),
        )?;
        Ok(())
    }

    /// A KYC officer verifies a name and ID number: class 3, or 2 with a bank account.
    fn verify(&mut self, holder: &Holder, class: u8) -> Result<(), Failure> {
        let id_number = self.id_number();
        self.kyc_officer.api.post(
            &format!("/v1/wallets/{}/kyc", holder.wallet),
            &json!({ "class": class, "name": "Chen Jing", "id_number": id_number }),
        )?;
        Ok(())
    }

    /// A class-2 wallet: a bank account with `cash`, a verified identity.
    fn verified_holder(&mut self, cash: &str) -> Result<Holder, Failure> {
        let holder = self.holder()?;
        self.bank_account(&holder, cash)?;
        self.verify(&holder, 2)?;
        Ok(holder)
    }

    /// The holder's signed exchange of `amount` of bank deposits, under a fresh key.
    fn exchange_body(
        &self,
        holder: &Holder,
        amount: Amount,
    ) -> Result<(ecny::ids::IdempotencyKey, Value), Failure> {
        let key = fresh_key()?;
        let command = Command::Exchange {
            wallet: holder.wallet,
            amount,
            key,
            auth: None,
        };
        let body = json!({ "amount": amount.to_string() });
        Ok((key, self.signed(&holder.key, &command, body)?))
    }

    fn shop(
        &mut self,
        owner: &Holder,
        name: &str,
        terminal: TerminalKind,
    ) -> Result<Shop, Failure> {
        let onboarded = self.admin.post(
            &format!("/v1/operators/{OPERATOR}/merchants"),
            &onboard_body(owner, name),
        )?;
        let id: MerchantId = answer_field(&onboarded, "merchant")?;
        let token = text(&onboarded, "token")?.to_string();
        let merchant = Api::new(&self.server, &token)?;
        let added = merchant.post(
            &format!("/v1/merchants/{id}/terminals"),
            &json!({ "kind": terminal.as_str() }),
        )?;
        Ok(Shop {
            id,
            qr: text(&onboarded, "qr")?.to_string(),
            terminal: added["terminal"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| {
                    Failure::new(
                        "RESPONSE_MALFORMED",
                        format!("no terminal number in {added}"),
                    )
                })?,
            terminal_token: text(&added, "token")?.to_string(),
            token,
        })
    }

    /// The payer's signed request payment of `amount` at the shop's printed QR.
    fn pay_printed_qr(
        &self,
        payer: &Holder,
        shop: &Shop,
        amount: Amount,
    ) -> Result<(ecny::ids::IdempotencyKey, Value), Failure> {
        let key = fresh_key()?;
        let request = MerchantQr::parse(&shop.qr)?;
        let command = request_payment(
            payer.wallet,
            &request,
            Some(amount),
            RequestRead::Scanned,
            key,
        )?;
        let body = json!({
            "payer": payer.wallet.to_string(),
            "request": shop.qr,
            "amount": amount.to_string(),
            "read": "scanned",
        });
        Ok((key, self.signed(&payer.key, &command, body)?))
    }

    fn sub_wallet_body(
        &self,
        payer: &Holder,
        shop: &Shop,
        limits: SubWalletLimits,
    ) -> Result<Value, Failure> {
        let command = Command::OpenSubWallet {
            wallet: payer.wallet,
            merchant: shop.id,
            limits,
            auth: None,
        };
        let body = json!({
            "merchant": shop.id.to_string(),
            "per_payment": limits.per_payment.to_string(),
            "daily": limits.daily.to_string(),
        });
        self.signed(&payer.key, &command, body)
    }

    fn open_sub_wallet(&self, payer: &Holder, shop: &Shop) -> Result<SubWalletId, Failure> {
        let body = self.sub_wallet_body(payer, shop, limits("200", "500")?)?;
        let opened = self
            .anonymous
            .post(&format!("/v1/wallets/{}/sub-wallets", payer.wallet), &body)?;
        answer_field(&opened, "sub_wallet")
    }

    /// A prepaid term the payer signs: `units` lessons at `unit_price` from the payer to the payee.
    fn contract_body(
        &self,
        payer: &Holder,
        payee: &Holder,
        units: u32,
        unit_price: Amount,
    ) -> Result<(ecny::ids::IdempotencyKey, Value), Failure> {
        let key = fresh_key()?;
        let purpose = format!("{units} lessons");
        let command = Command::OpenContract {
            payer: payer.wallet,
            payee: payee.wallet,
            template: Template::Prepaid { units, unit_price },
            purpose: purpose.clone(),
            key,
            auth: None,
        };
        let body = json!({
            "payer": payer.wallet.to_string(),
            "payee": payee.wallet.to_string(),
            "template": "prepaid",
            "purpose": purpose,
            "units": units,
            "unit_price": unit_price.to_string(),
        });
        Ok((key, self.signed(&payer.key, &command, body)?))
    }

    fn open_contract(
        &self,
        payer: &Holder,
        payee: &Holder,
        units: u32,
        unit_price: Amount,
    ) -> Result<ContractId, Failure> {
        let (key, body) = self.contract_body(payer, payee, units, unit_price)?;
        let opened = self.anonymous.post_keyed("/v1/contracts", key, &body)?;
        answer_field(&opened, "contract")
    }

    /// A phone's secure element issued at the counter, bound to `holder`'s wallet as its holder
    /// signed, and personalized from the certificates the server answered.
    fn card(&self, holder: &Holder) -> Result<(DeviceId, Applet), Failure> {
        let device = DeviceId(random_below(100_000_000_000)?);
        let device_key = KeyPair::from_seed(&fresh_key()?.0.to_le_bytes());
        let form = WalletForm::PhoneEse;
        let command = Command::RegisterDevice {
            operator: OPERATOR,
            device,
            public_key: device_key.public_key(),
            wallet: Some(holder.wallet),
            caps: Profile::new(form).caps(),
            auth: None,
        };
        let body = json!({
            "device": device.to_string(),
            "device_public_key": device_key.public_key().to_hex(),
            "form": form_code(form),
            "wallet": holder.wallet.to_string(),
        });
        let body = self.signed(&holder.key, &command, body)?;
        let issued = self
            .teller
            .api
            .post(&format!("/v1/operators/{OPERATOR}/devices"), &body)?;
        let cert = |field: &str| {
            CompactCertificate::decode(&unhex(text(&issued, field)?)?)
                .map_err(|e| Failure::new("RESPONSE_MALFORMED", format!("{field}: {e}")))
        };
        let root = PublicKey::from_hex(text(&issued, "root")?)
            .map_err(|e| Failure::new("RESPONSE_MALFORMED", format!("root: {e}")))?;
        let applet = Applet::personalize(Personalization {
            device_key,
            device_cert: cert("certificate")?,
            operator_cert: cert("operator_certificate")?,
            root,
            issued_at_s: issued["issued_at_s"].as_u64().unwrap_or(0) as u32,
        })
        .map_err(|e| Failure::new("CARD_REFUSED", e.to_string()))?;
        Ok((device, applet))
    }

    /// A holder-signed load of `card` (its `load_seq`-th), with the card's attestation.
    fn load_body(
        &self,
        holder: &Holder,
        (device, card): (DeviceId, &mut Applet),
        load_seq: u32,
        yuan: &str,
    ) -> Result<Value, Failure> {
        let attested = Relay::new()
            .attest(card, Nonce([load_seq as u8; NONCE_BYTES]))
            .map_err(|e| Failure::new("CARD_REFUSED", e.to_string()))?;
        let command = Command::LoadDevice {
            device,
            load_seq,
            amount: amount(yuan)?,
            auth: None,
        };
        let body = json!({
            "load_seq": load_seq,
            "amount": yuan,
            "attestation": encode_hex(&attested.encode()),
        });
        self.signed(&holder.key, &command, body)
    }

    /// Loads `card` over HTTP (its first load) and applies the operator's order to it.
    fn load_card(
        &self,
        holder: &Holder,
        (device, card): (DeviceId, &mut Applet),
        yuan: &str,
    ) -> Result<(), Failure> {
        let body = self.load_body(holder, (device, card), 1, yuan)?;
        let loaded = self
            .anonymous
            .post(&format!("/v1/devices/{device}/loads"), &body)?;
        let order = LoadAuthorization::decode(&unhex(text(&loaded, "authorization")?)?)
            .map_err(|e| Failure::new("RESPONSE_MALFORMED", format!("authorization: {e}")))?;
        Relay::new()
            .load(card, &order)
            .map_err(|e| Failure::new("CARD_REFUSED", e.to_string()))
    }

    /// An example of `operation` as its maker, `holder` being the holder it concerns.
    fn example(
        &self,
        operation: Operation,
        holder: Option<&Holder>,
        shop: &Shop,
    ) -> Result<Example, Failure> {
        let party = maker(operation);
        let token = match party {
            PartyKind::Anonymous => None,
            PartyKind::CentralBank => Some(self.central_bank_token.clone()),
            PartyKind::Staff(StaffRole::Administrator) => Some(self.admin_token.clone()),
            PartyKind::Staff(StaffRole::Teller) => Some(self.teller.token.clone()),
            PartyKind::Staff(StaffRole::KycOfficer) => Some(self.kyc_officer.token.clone()),
            PartyKind::Staff(StaffRole::ComplianceOfficer) => {
                Some(self.compliance_officer.token.clone())
            }
            PartyKind::Holder => holder.and_then(|holder| holder.session.clone()),
            PartyKind::Merchant => Some(shop.token.clone()),
            PartyKind::Terminal(TerminalKind::ScanGun) => Some(shop.terminal_token.clone()),
            PartyKind::Terminal(_) => None,
        };
        if token.is_none() && party != PartyKind::Anonymous {
            return Err(Failure::new(
                "EXAMPLE_PARTY_WRONG",
                format!("no {} credential for {operation:?}", party.name()),
            ));
        }
        Ok(Example {
            operation,
            party,
            token,
            path: Vec::new(),
            query: Vec::new(),
            idempotency_key: None,
            body: None,
        })
    }

    /// A red-packet campaign of one ¥1.00 packet for `sponsor`'s wallet, published by the
    /// administrator, registration open for `registration_ms` from now, and the seed behind its
    /// commitment.
    fn campaign(
        &self,
        id: CampaignId,
        sponsor: &Holder,
        registration_ms: u64,
    ) -> Result<Seed, Failure> {
        let seed = Seed::from_bytes(
            fresh_key()?
                .0
                .to_le_bytes()
                .repeat(2)
                .try_into()
                .map_err(|_| Failure::new("SEED_MALFORMED", "a seed is 32 bytes".to_string()))?,
        );
        let now = self.anonymous.get("/v1/context")?["now_ms"]
            .as_u64()
            .ok_or_else(|| Failure::new("RESPONSE_MALFORMED", "no now_ms in the context"))?;
        let closes = now + registration_ms;
        let terms = CampaignTerms {
            id,
            name: "Examples red packets".into(),
            sponsor: Sponsor {
                name: "Examples city".into(),
                wallet: sponsor.wallet,
            },
            budget: amount("1")?,
            packet_count: 1,
            packet_value: amount("1")?,
            region: RegionCode::new(320_500).expect("Suzhou is a region"),
            eligibility: Eligibility::default(),
            registration: Window {
                opens_at_ms: now,
                closes_at_ms: closes,
            },
            validity: Window {
                opens_at_ms: closes,
                closes_at_ms: closes + 24 * 3_600_000,
            },
            offline_trial: false,
            seed_commitment: seed.commitment(),
        };
        let file = Campaign::new(terms)
            .map_err(|error| Failure::new(error.code(), error.to_string()))?
            .to_json();
        let file: Value = serde_json::from_str(&file)
            .map_err(|error| Failure::new("CAMPAIGN_FILE_MALFORMED", error.to_string()))?;
        self.admin.post("/v1/campaigns", &file)?;
        Ok(seed)
    }

    fn fund_campaign_body(&self, id: CampaignId, sponsor: &Holder) -> Result<Value, Failure> {
        let command = Command::FundCampaign {
            campaign: id,
            auth: None,
        };
        self.signed(&sponsor.key, &command, json!({}))
    }

    fn register_body(&self, id: CampaignId, holder: &Holder) -> Result<Value, Failure> {
        let command = Command::RegisterForCampaign {
            campaign: id,
            wallet: holder.wallet,
            offline_trial: false,
        };
        self.signed(
            &holder.key,
            &command,
            json!({ "wallet": holder.wallet.to_string() }),
        )
    }

    /// The next campaign id on the server: the first that is not there yet.
    fn next_campaign(&self) -> CampaignId {
        let mut id = 1;
        while self
            .anonymous
            .get(&format!("/v1/campaigns/{}", CampaignId(id)))
            .is_ok()
        {
            id += 1;
        }
        CampaignId(id)
    }

    /// Sets up the parties and makes one example per operation (two at the QR route).
    fn examples(&mut self) -> Result<Vec<Example>, Failure> {
        use Operation::*;
        let op = OPERATOR.to_string();
        let revocable = {
            let added = self.admin.post(
                &format!("/v1/operators/{OPERATOR}/staff"),
                &json!({ "role": "teller", "label": "examples revocable" }),
            )?;
            text(&added, "staff")?.to_string()
        };

        // The payer: class 2, with deposits exchanged into e-CNY and a session for reads.
        let mut payer = self.verified_holder("5000")?;
        let (key, exchange) = self.exchange_body(&payer, amount("2000")?)?;
        let exchanged = self.anonymous.post_keyed(
            &format!("/v1/wallets/{}/exchange", payer.wallet),
            key,
            &exchange,
        )?;
        let exchange_transfer = text(&exchanged, "transfer")?.to_string();
        self.open_session(&mut payer)?;
        let payee = self.holder()?;
        let owner = self.verified_holder("100")?;
        let shop = self.shop(&owner, "Examples Grocer", TerminalKind::ScanGun)?;
        let token_owner = self.verified_holder("100")?;
        let token_shop = self.shop(&token_owner, "Examples Keys", TerminalKind::Pos)?;
        let new_owner = self.verified_holder("100")?;
        let unbanked = self.holder()?;
        let mut upgrading = self.holder()?;
        self.open_session(&mut upgrading)?;

        let (key, paid) = self.pay_printed_qr(&payer, &shop, amount("20")?)?;
        let paid = self
            .anonymous
            .post_keyed("/v1/request-payments", key, &paid)?;
        let refundable = text(&paid, "transfer")?.to_string();
        let merchant = Api::new(&self.server, &shop.token)?;
        let order = format!("EX-{}", random_below(1_000_000_000)?);
        merchant.post(
            &format!("/v1/merchants/{}/orders", shop.id),
            &json!({ "reference": order, "amount": "18.00", "valid_s": 86_400 }),
        )?;
        let limits_changed = self.open_sub_wallet(&payer, &shop)?;
        let charged = self.open_sub_wallet(&payer, &shop)?;
        let confirmed = self.open_contract(&payer, &payee, 10, amount("5")?)?;
        let cancelled = self.open_contract(&payer, &payee, 2, amount("1")?)?;

        // Red packets: one campaign to draw and one drawn (registration just closed, both funded,
        // the payer registered), one still open to fund and register for, and the next to create.
        let mut sponsor = self.verified_holder("100")?;
        let (key, exchange) = self.exchange_body(&sponsor, amount("10")?)?;
        self.anonymous.post_keyed(
            &format!("/v1/wallets/{}/exchange", sponsor.wallet),
            key,
            &exchange,
        )?;
        self.open_session(&mut sponsor)?;
        let mut registrant = self.holder()?;
        self.open_session(&mut registrant)?;
        let to_draw = self.next_campaign();
        let drawn = CampaignId(to_draw.0 + 1);
        let open = CampaignId(to_draw.0 + 2);
        let closing_ms = 2_000;
        let draw_seed = self.campaign(to_draw, &sponsor, closing_ms)?;
        let drawn_seed = self.campaign(drawn, &sponsor, closing_ms)?;
        for id in [to_draw, drawn] {
            self.anonymous.post(
                &format!("/v1/campaigns/{id}/funding"),
                &self.fund_campaign_body(id, &sponsor)?,
            )?;
            self.anonymous.post(
                &format!("/v1/campaigns/{id}/registrations"),
                &self.register_body(id, &payer)?,
            )?;
        }
        self.campaign(open, &sponsor, 3_600_000)?;
        std::thread::sleep(std::time::Duration::from_millis(closing_ms + 500));
        self.admin.post(
            &format!("/v1/campaigns/{drawn}/draw"),
            &json!({ "seed": drawn_seed.to_hex() }),
        )?;
        let create_seed = Seed::from_bytes([7; 32]);
        let next_file = {
            let now = self.anonymous.get("/v1/context")?["now_ms"]
                .as_u64()
                .unwrap_or(0);
            let terms = CampaignTerms {
                id: CampaignId(open.0 + 1),
                name: "Examples spring red packets".into(),
                sponsor: Sponsor {
                    name: "Examples city".into(),
                    wallet: sponsor.wallet,
                },
                budget: amount("2")?,
                packet_count: 2,
                packet_value: amount("1")?,
                region: RegionCode::new(320_500).expect("Suzhou is a region"),
                eligibility: Eligibility::default(),
                registration: Window {
                    opens_at_ms: now,
                    closes_at_ms: now + 30 * 24 * 3_600_000,
                },
                validity: Window {
                    opens_at_ms: now + 30 * 24 * 3_600_000,
                    closes_at_ms: now + 60 * 24 * 3_600_000,
                },
                offline_trial: false,
                seed_commitment: create_seed.commitment(),
            };
            let file = Campaign::new(terms)
                .map_err(|error| Failure::new(error.code(), error.to_string()))?
                .to_json();
            serde_json::from_str::<Value>(&file)
                .map_err(|error| Failure::new("CAMPAIGN_FILE_MALFORMED", error.to_string()))?
        };

        let mut examples = Vec::new();
        let mut add = |example: Example| examples.push(example);
        add(self
            .example(CreateCampaign, none_holder(), &shop)?
            .body(next_file));
        add(self
            .example(ReadCampaign, none_holder(), &shop)?
            .path("c", drawn));
        add(self
            .example(FundCampaign, Some(&sponsor), &shop)?
            .path("c", open)
            .body(self.fund_campaign_body(open, &sponsor)?));
        add(self
            .example(RegisterForCampaign, Some(&registrant), &shop)?
            .path("c", open)
            .body(self.register_body(open, &registrant)?));
        add(self
            .example(ReadRegistrations, none_holder(), &shop)?
            .path("c", drawn));
        add(self
            .example(DrawCampaign, none_holder(), &shop)?
            .path("c", to_draw)
            .body(json!({ "seed": draw_seed.to_hex() })));
        add(self
            .example(ReadDraw, none_holder(), &shop)?
            .path("c", drawn));
        add(self
            .example(ReadRedemption, none_holder(), &shop)?
            .path("c", drawn));
        add(self
            .example(ReadNotices, none_holder(), &shop)?
            .path("c", drawn));
        add(self
            .example(ReadPackets, Some(&payer), &shop)?
            .path("id", payer.wallet));
        let none: Option<&Holder> = None;
        for public in [Health, Ready, Metrics, OpenApi, Docs, ReadContext] {
            add(self.example(public, none, &shop)?);
        }
        add(self.example(ReadLimits, none, &shop)?.path("op", &op));
        add(self
            .example(SetCodePaymentCap, none, &shop)?
            .path("op", &op)
            .body(json!({ "cap": "500.00" })));
        add(self
            .example(CreateChallenge, none, &shop)?
            .body(json!({ "wallet": payer.wallet.to_string() })));
        let (_, opening) = self.open_wallet_body()?;
        add(self
            .example(OpenWallet, none, &shop)?
            .path("op", &op)
            .body(opening));
        add(self
            .example(ReadWallet, Some(&payer), &shop)?
            .path("id", payer.wallet));
        let key = fresh_key()?;
        let pay = Command::Pay {
            payer: payer.wallet,
            payee: payee.wallet,
            amount: amount("6.60")?,
            key,
            auth: None,
        };
        let pay_body = json!({
            "payer": payer.wallet.to_string(),
            "payee": payee.wallet.to_string(),
            "amount": "6.60",
        });
        add(self
            .example(Pay, Some(&payer), &shop)?
            .keyed(key)
            .body(self.signed(&payer.key, &pay, pay_body)?));
        add(self
            .example(ReadTransfer, Some(&payer), &shop)?
            .path("id", &exchange_transfer));
        add(self.example(Audit, none, &shop)?);
        add(self
            .example(AddStaff, none, &shop)?
            .path("op", &op)
            .body(json!({ "role": "teller", "label": "examples new desk" })));
        add(self.example(ListStaff, none, &shop)?.path("op", &op));
        add(self
            .example(RevokeStaff, none, &shop)?
            .path("op", &op)
            .path("s", &revocable));
        add(self
            .example(OnboardMerchant, none, &shop)?
            .path("op", &op)
            .body(onboard_body(&new_owner, "Examples Teahouse")));
        add(self.example(ReadMerchant, none, &shop)?.path("m", shop.id));
        add(self
            .example(ReplaceMerchantToken, none, &shop)?
            .path("m", token_shop.id));
        add(self
            .example(AddTerminal, none, &shop)?
            .path("m", shop.id)
            .body(json!({ "kind": "pos" })));
        add(self
            .example(ReplaceTerminalToken, none, &shop)?
            .path("m", token_shop.id)
            .path("t", token_shop.terminal));
        add(self.example(ReadPrintedQr, none, &shop)?.path("m", shop.id));
        add(self
            .example(ReadOrderQr, none, &shop)?
            .path("m", shop.id)
            .query("order", &order));
        add(self.example(ReadTapZone, none, &shop)?.path("m", shop.id));
        add(self
            .example(CreateOrder, none, &shop)?
            .path("m", shop.id)
            .body(json!({ "reference": format!("{order}-NEW"), "amount": "18.00" })));
        add(self
            .example(ReadOrder, none, &shop)?
            .path("m", shop.id)
            .path("reference", &order));
        add(self
            .example(ListMerchantSubWallets, none, &shop)?
            .path("m", shop.id));
        add(self
            .example(ChargeSubWallet, none, &shop)?
            .path("m", shop.id)
            .keyed(fresh_key()?)
            .body(json!({ "sub_wallet": charged.to_string(), "amount": "8.00" })));
        add(self
            .example(Refund, none, &shop)?
            .path("m", shop.id)
            .keyed(fresh_key()?)
            .body(json!({ "payment": refundable, "amount": "5.00" })));
        add(self.example(ListPayments, none, &shop)?.path("m", shop.id));
        add(self
            .example(ReadSettlement, none, &shop)?
            .path("m", shop.id));
        let (key, request_payment) = self.pay_printed_qr(&payer, &shop, amount("3")?)?;
        add(self
            .example(PayRequest, Some(&payer), &shop)?
            .keyed(key)
            .body(request_payment));
        add(self
            .example(ReadPaymentCode, Some(&payer), &shop)?
            .path("id", payer.wallet));
        add(self
            .example(ListWalletSubWallets, Some(&payer), &shop)?
            .path("id", payer.wallet));
        add(self
            .example(OpenSubWallet, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .body(self.sub_wallet_body(&payer, &shop, limits("100", "300")?)?));
        let changed = limits("150", "400")?;
        let set = Command::SetSubWallet {
            sub_wallet: limits_changed,
            limits: changed,
            open: true,
            auth: None,
        };
        let set_body = json!({
            "per_payment": changed.per_payment.to_string(),
            "daily": changed.daily.to_string(),
            "open": true,
        });
        add(self
            .example(SetSubWallet, Some(&payer), &shop)?
            .path("sw", limits_changed)
            .body(self.signed(&payer.key, &set, set_body)?));
        let (key, contract) = self.contract_body(&payer, &payee, 4, amount("2.50")?)?;
        add(self
            .example(OpenContract, Some(&payer), &shop)?
            .keyed(key)
            .body(contract));
        add(self
            .example(ReadContract, Some(&payer), &shop)?
            .path("id", confirmed));
        let key = fresh_key()?;
        let confirm = Command::ConfirmContract {
            contract: confirmed,
            units: 1,
            key,
            auth: None,
        };
        add(self
            .example(ConfirmContract, Some(&payer), &shop)?
            .path("id", confirmed)
            .keyed(key)
            .body(self.signed(&payer.key, &confirm, json!({ "units": 1 }))?));
        let cancel = Command::CancelContract {
            contract: cancelled,
            by_payee: false,
            auth: None,
        };
        add(self
            .example(CancelContract, Some(&payer), &shop)?
            .path("id", cancelled)
            .body(self.signed(&payer.key, &cancel, json!({ "by": "payer" }))?));
        add(self
            .example(OpenBankAccount, none, &shop)?
            .path("id", unbanked.wallet)
            .keyed(fresh_key()?)
            .body(json!({ "cash": "300.00" })));
        let id_number = self.id_number();
        add(self
            .example(UpgradeWallet, Some(&upgrading), &shop)?
            .path("id", upgrading.wallet)
            .body(json!({ "class": 3, "name": "Lin Tao", "id_number": id_number })));
        let (key, exchange) = self.exchange_body(&payer, amount("100")?)?;
        add(self
            .example(Exchange, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .keyed(key)
            .body(exchange));
        add(self
            .example(Deanonymize, none, &shop)?
            .path("id", payer.wallet)
            .body(json!({ "reason": "examples: case 2026-0001, public security bureau request" })));
        add(self.example(ReadDeanonymizations, none, &shop)?);
        add(self.example(ReadStatistics, none, &shop)?);
        add(self.example(ListAlerts, none, &shop)?);
        let today = ecny::time::format_day(ecny::time::china_day(ecny::time::system_now_ms()));
        add(self
            .example(ReadStatement, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .query("from", &today)
            .query("to", &today));

        // The central bank: an operator admitted, funded, issued to, redeemed from, another
        // reinstated, and circulation read.
        add(self
            .example(AdmitOperator, none, &shop)?
            .body(json!({ "name": format!("Examples Bank {}", random_below(1_000_000)?) })));
        for operation in [FundReserves, Issue, Redeem] {
            add(self
                .example(operation, none, &shop)?
                .path("op", &op)
                .body(json!({ "amount": "100.00" })));
        }
        // At the other operator, reinstated: every other example acts at OP01.
        add(self
            .example(SuspendOperator, none, &shop)?
            .path("op", "OP02")
            .body(json!({ "suspended": false })));
        add(self.example(ReadCirculation, none, &shop)?);

        // The holder's everyday operations: money back to the bank, the history, a lost phone
        // frozen and unfrozen, a wallet closed with its balance returned.
        let key = fresh_key()?;
        let deposit_back = Command::DepositBack {
            wallet: payer.wallet,
            amount: amount("10")?,
            key,
            auth: None,
        };
        add(self
            .example(DepositBack, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .keyed(key)
            .body(self.signed(&payer.key, &deposit_back, json!({ "amount": "10.00" }))?));
        add(self
            .example(ReadHistory, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .query("limit", 20));
        // A wallet to find by its phone number: the number the last opened wallet was given.
        self.holder()?;
        let by_phone = self.next_phone.to_string();
        add(self
            .example(LookupPhone, Some(&payer), &shop)?
            .path("id", payer.wallet)
            .body(json!({ "phone": by_phone })));
        let mut losing = self.holder()?;
        self.open_session(&mut losing)?;
        let freeze = Command::SetWalletStatus {
            wallet: losing.wallet,
            status: ecny::wallet::WalletStatus::Frozen,
        };
        add(self
            .example(FreezeWallet, Some(&losing), &shop)?
            .path("id", losing.wallet)
            .body(self.signed(&losing.key, &freeze, json!({}))?));
        add(self
            .example(UnfreezeWallet, none, &shop)?
            .path("id", losing.wallet)
            .body(json!({})));
        let mut leaving = self.holder()?;
        self.open_session(&mut leaving)?;
        self.bank_account(&leaving, "100")?;
        let (key, exchange) = self.exchange_body(&leaving, amount("40")?)?;
        self.anonymous.post_keyed(
            &format!("/v1/wallets/{}/exchange", leaving.wallet),
            key,
            &exchange,
        )?;
        let close = Command::CloseWallet {
            wallet: leaving.wallet,
        };
        add(self
            .example(CloseWallet, Some(&leaving), &shop)?
            .path("id", leaving.wallet)
            .body(self.signed(&leaving.key, &close, json!({}))?));

        // Hardware wallets: one card loaded and unloaded, one mid-sync, one to block.
        let (device, mut card) = self.card(&payer)?;
        self.load_card(&payer, (device, &mut card), "100.00")?;
        let (syncing, mut syncing_card) = self.card(&payer)?;
        let (blockable, _) = self.card(&payer)?;
        let (new_device, new_card) = {
            let key = KeyPair::from_seed(&fresh_key()?.0.to_le_bytes());
            (DeviceId(random_below(100_000_000_000)?), key)
        };
        let register = Command::RegisterDevice {
            operator: OPERATOR,
            device: new_device,
            public_key: new_card.public_key(),
            wallet: Some(payer.wallet),
            caps: Profile::new(WalletForm::SimCard).caps(),
            auth: None,
        };
        let issue = json!({
            "device": new_device.to_string(),
            "device_public_key": new_card.public_key().to_hex(),
            "form": form_code(WalletForm::SimCard),
            "wallet": payer.wallet.to_string(),
        });
        add(self
            .example(IssueDevice, none, &shop)?
            .path("op", &op)
            .body(self.signed(&payer.key, &register, issue)?));
        add(self
            .example(ReadDevice, Some(&payer), &shop)?
            .path("d", device));
        add(self
            .example(LoadDevice, Some(&payer), &shop)?
            .path("d", device)
            .body(self.load_body(&payer, (device, &mut card), 2, "50.00")?));
        let unload = Relay::new()
            .unload(
                &mut card,
                amount("30")?,
                (ecny::server::gateway::now_ms() / 1000) as u32,
            )
            .map_err(|e| Failure::new("CARD_REFUSED", e.to_string()))?;
        add(self
            .example(UnloadDevice, Some(&payer), &shop)?
            .path("d", device)
            .body(json!({ "unload": encode_hex(&unload.encode()) })));
        add(self
            .example(BeginSync, Some(&payer), &shop)?
            .path("d", device));
        let holder_api = Api::new(&self.server, payer.session.as_deref().unwrap_or_default())?;
        let begun = holder_api.post(&format!("/v1/devices/{syncing}/sync-nonce"), &json!({}))?;
        let nonce = Nonce::decode(&unhex(text(&begun, "nonce")?)?)
            .map_err(|e| Failure::new("RESPONSE_MALFORMED", format!("nonce: {e}")))?;
        let attested = Relay::new()
            .attest(&mut syncing_card, nonce)
            .map_err(|e| Failure::new("CARD_REFUSED", e.to_string()))?;
        add(self
            .example(SyncDevice, Some(&payer), &shop)?
            .path("d", syncing)
            .body(json!({ "sync": encode_hex(&attested.encode()) })));
        add(self.example(BlockDevice, none, &shop)?.path("d", blockable));
        add(self.example(ReadRevocations, none, &shop)?);

        // Last, as they are short-lived: a challenge lives two minutes, a payment code a minute.
        add(self
            .example(OpenSession, none, &shop)?
            .body(self.session_request(&payer)?));
        let reads = Api::new(&self.server, payer.session.as_deref().unwrap_or_default())?;
        let code = reads.get(&format!("/v1/wallets/{}/payment-code", payer.wallet))?;
        add(self
            .example(ChargeCode, none, &shop)?
            .path("m", shop.id)
            .keyed(fresh_key()?)
            .body(json!({ "code": text(&code, "code")?, "amount": "12.00" })));
        Ok(examples)
    }
}

/// A card's message from its hex in an answer.
fn unhex(text: &str) -> Result<Vec<u8>, Failure> {
    let malformed = || Failure::new("RESPONSE_MALFORMED", format!("not hex: {text}"));
    if !text.len().is_multiple_of(2) {
        return Err(malformed());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| malformed()))
        .collect()
}

fn none_holder() -> Option<&'static Holder> {
    None
}

fn amount(text: &str) -> Result<Amount, Failure> {
    text.parse().map_err(|error: ecny::amount::AmountError| {
        Failure::new("MALFORMED_AMOUNT", error.to_string())
    })
}

fn limits(per_payment: &str, daily: &str) -> Result<SubWalletLimits, Failure> {
    Ok(SubWalletLimits {
        per_payment: amount(per_payment)?,
        daily: amount(daily)?,
    })
}

fn onboard_body(owner: &Holder, name: &str) -> Value {
    json!({ "wallet": owner.wallet.to_string(), "name": name, "mcc": "5411", "region": 320_508 })
}

/// Drops the illustrative `example`s (OP01, W0000000001, …) from what a request sends, so a
/// fuzzer's examples phase sends this server's live requests and nothing made up beside them.
fn strip_examples(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("example");
            map.remove("examples");
            map.values_mut().for_each(strip_examples);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_examples),
        _ => {}
    }
}

/// The server's document with each example added to its operation under the operation's name:
/// path parameters, query, the idempotency key and the body.
pub fn with_examples(mut document: Value, examples: &[Example]) -> Result<Value, Failure> {
    let undocumented = |what: String| Failure::new("EXAMPLE_UNDOCUMENTED", what);
    // Request schemas the bodies refer to, whose illustrations go too.
    let mut referenced = Vec::new();
    for example in examples {
        let (method, path) = example.operation.route();
        let entry = document["paths"]
            .get_mut(path)
            .and_then(|operations| operations.get_mut(method.to_ascii_lowercase()))
            .ok_or_else(|| undocumented(format!("{method} {path} is not in the document")))?;
        let name = example.name();
        let summary = format!("as the {}", example.party.name());
        // Listed even where there is nothing to fill in (a bare GET), so a reader (and the test)
        // sees every operation's example.
        let listed = &mut entry[MADE_EXAMPLES];
        if !listed.is_array() {
            *listed = json!([]);
        }
        if let Some(listed) = listed.as_array_mut() {
            listed.push(json!({ "name": name, "party": example.party.name() }));
        }
        let mut parameters: Vec<(&str, &str, String)> = Vec::new();
        parameters.extend(example.path.iter().map(|(n, v)| ("path", *n, v.clone())));
        parameters.extend(example.query.iter().map(|(n, v)| ("query", *n, v.clone())));
        if let Some(key) = &example.idempotency_key {
            parameters.push(("header", "Idempotency-Key", key.clone()));
        }
        let declared = entry.get_mut("parameters").and_then(Value::as_array_mut);
        let declared = match declared {
            Some(declared) => declared,
            None if parameters.is_empty() => &mut Vec::new(),
            None => {
                return Err(undocumented(format!(
                    "{method} {path} declares no parameters"
                )))
            }
        };
        declared.iter_mut().for_each(|parameter| {
            if let Some(object) = parameter.as_object_mut() {
                object.remove("example");
                object.get_mut("schema").map(strip_examples);
            }
        });
        for (location, parameter, value) in parameters {
            let found = declared
                .iter_mut()
                .find(|p| p["in"] == location && p["name"] == parameter)
                .ok_or_else(|| {
                    undocumented(format!(
                        "{method} {path} has no {location} parameter {parameter}"
                    ))
                })?;
            found["examples"][&name] = json!({ "summary": summary, "value": value });
        }
        if let Some(body) = &example.body {
            let media = entry
                .pointer_mut("/requestBody/content/application~1json")
                .ok_or_else(|| undocumented(format!("{method} {path} takes no JSON body")))?;
            if let Some(reference) = media["schema"]["$ref"].as_str() {
                referenced.push(reference.to_string());
            }
            strip_examples(&mut media["schema"]);
            media["examples"][&name] = json!({ "summary": summary, "value": body });
        }
    }
    for reference in referenced {
        if let Some(schema) = reference
            .strip_prefix("#/components/schemas/")
            .and_then(|name| document["components"]["schemas"].get_mut(name))
        {
            strip_examples(schema);
        }
    }
    Ok(document)
}

/// A TOML basic string.
/// A regular expression matching exactly one operation's name ("POST /v1/operators"): a plain
/// name would also select every longer route it begins ("POST /v1/operators/{op}/wallets") and
/// hand that route this one's credential.
fn exact_name_regex(name: &str) -> String {
    let mut regex = String::from("^");
    for c in name.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            regex.push('\\');
        }
        regex.push(c);
    }
    regex.push('$');
    regex
}

fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// schemathesis.toml: each operation tried with its maker's credential and its example's path
/// parameters (so generated requests reach the objects set up for it, too).
pub fn schemathesis_config(examples: &[Example]) -> Result<String, Failure> {
    // Per route: the credential, and the path parameters by name.
    type Tried<'a> = (&'a Option<String>, BTreeMap<&'a str, &'a str>);
    let mut routes: BTreeMap<(&str, &str), Tried> = BTreeMap::new();
    for example in examples {
        let route = example.operation.route();
        let (token, parameters) = routes
            .entry(route)
            .or_insert((&example.token, BTreeMap::new()));
        if *token != &example.token {
            return Err(Failure::new(
                "EXAMPLE_PARTY_WRONG",
                format!("{} {} is tried with two credentials", route.0, route.1),
            ));
        }
        for (name, value) in &example.path {
            parameters.insert(name, value);
        }
    }
    let mut out = String::from(
        "# Written by `ecny api-examples`: each operation tried as the party its example was made by\n\
         # (the authorization table's), at the objects set up for it.\n",
    );
    for ((method, path), (token, parameters)) in routes {
        if token.is_none() && parameters.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n[[operations]]\ninclude-name-regex = {}\n",
            toml_string(&exact_name_regex(&format!("{method} {path}")))
        );
        if let Some(token) = token {
            let _ = writeln!(
                out,
                "headers = {{ Authorization = {} }}",
                toml_string(&format!("Bearer {token}"))
            );
        }
        if !parameters.is_empty() {
            let fields: Vec<String> = parameters
                .iter()
                .map(|(name, value)| {
                    format!(
                        "{} = {}",
                        toml_string(&format!("path.{name}")),
                        toml_string(value)
                    )
                })
                .collect();
            let _ = writeln!(out, "parameters = {{ {} }}", fields.join(", "));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_made_by_a_party_the_table_allows_and_one_per_route() {
        for operation in Operation::ALL {
            let party = maker(operation);
            if !operation.denial_codes().is_empty() {
                assert!(
                    operation.decide(party).is_ok(),
                    "{operation:?} as {party:?}"
                );
            }
            for other in Operation::ALL {
                if other.route() == operation.route() {
                    assert_eq!(maker(other), party, "{operation:?} and {other:?}");
                }
            }
        }
        assert_eq!(maker(Operation::Pay), PartyKind::Holder);
        assert_eq!(maker(Operation::Audit), PartyKind::CentralBank);
        assert_eq!(
            maker(Operation::ChargeCode),
            PartyKind::Terminal(TerminalKind::ScanGun)
        );
        assert_eq!(maker(Operation::ReadPrintedQr), PartyKind::Merchant);
        assert_eq!(maker(Operation::Health), PartyKind::Anonymous);
        assert_eq!(
            maker(Operation::ReplaceMerchantToken),
            PartyKind::Staff(StaffRole::Administrator)
        );
    }

    fn example(operation: Operation, token: Option<&str>) -> Example {
        Example {
            operation,
            party: maker(operation),
            token: token.map(str::to_string),
            path: Vec::new(),
            query: Vec::new(),
            idempotency_key: None,
            body: None,
        }
    }

    #[test]
    fn examples_replace_the_illustrations_and_name_their_operation() {
        let document = ecny::server::openapi::document();
        let pay = example(Operation::Pay, Some("W0000000009.1.mac"))
            .keyed(ecny::ids::IdempotencyKey(7))
            .body(json!({ "payer": "W0000000009" }));
        let read =
            example(Operation::ReadWallet, Some("W0000000009.1.mac")).path("id", "W0000000009");
        let written = with_examples(document, &[pay, read]).unwrap();
        let entry = &written["paths"]["/v1/payments"]["post"];
        let media = &entry["requestBody"]["content"]["application/json"];
        assert_eq!(media["examples"]["Pay"]["value"]["payer"], "W0000000009");
        let schema = &written["components"]["schemas"]["PaymentRequest"];
        assert!(
            schema["properties"]["payer"].get("example").is_none(),
            "{schema}"
        );
        let key = entry["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert_eq!(
            key["examples"]["Pay"]["value"],
            "00000000-0000-0000-0000-000000000007"
        );
        let id = &written["paths"]["/v1/wallets/{id}"]["get"]["parameters"][0];
        assert_eq!(id["examples"]["ReadWallet"]["value"], "W0000000009");
        assert!(id["schema"].get("example").is_none());

        let missing = example(Operation::ReadWallet, None).query("nope", "1");
        let refused = with_examples(ecny::server::openapi::document(), &[missing]).unwrap_err();
        assert_eq!(refused.code, "EXAMPLE_UNDOCUMENTED");
    }

    #[test]
    fn the_configuration_gives_each_route_its_credential_and_path() {
        let examples = [
            example(Operation::Health, None),
            example(Operation::ReadPrintedQr, Some("M00000003.mac")).path("m", "M00000003"),
            example(Operation::ReadOrderQr, Some("M00000003.mac"))
                .path("m", "M00000003")
                .query("order", "EX-1"),
            example(Operation::Audit, Some("cb\"token")),
        ];
        let config = schemathesis_config(&examples).unwrap();
        let parsed: toml::Table = config.parse().unwrap();
        let operations = parsed["operations"].as_array().unwrap();
        assert_eq!(operations.len(), 2, "{config}");
        assert_eq!(
            operations[0]["include-name-regex"].as_str(),
            Some("^GET /v1/audit$")
        );
        assert_eq!(
            operations[0]["headers"]["Authorization"].as_str(),
            Some("Bearer cb\"token")
        );
        assert_eq!(
            operations[1]["parameters"]["path.m"].as_str(),
            Some("M00000003")
        );
        let clash = [
            example(Operation::ReadPrintedQr, Some("a")),
            example(Operation::ReadOrderQr, Some("b")),
        ];
        assert_eq!(
            schemathesis_config(&clash).unwrap_err().code,
            "EXAMPLE_PARTY_WRONG"
        );
    }
}

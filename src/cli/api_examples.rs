//! `ecny api-examples` (hidden; for CI): what an API fuzzer needs to reach the success paths of a
//! server on a demo data directory. Before the server starts, it adds to the directory a payer
//! and a payee with keys it knows, a shop with terminals, an order, a sale, a sub-wallet and
//! two contracts; then it writes
//!
//! - `openapi.json`: the server's own document, each operation given an example request made of
//!   those real ids, holder-signed where the operation needs a signature;
//! - `schemathesis.toml`: the token each operation is called with (the operator's, the central
//!   bank's, the shop's, its scan gun's);
//! - `success.txt`: `METHOD route` of each operation whose example must succeed, for the run to
//!   check against the server's request counters afterwards.
//!
//! One-time payment codes are minted by the server and last a minute, so a scan gun's charge has
//! no fixed example.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::channels::acquiring::{
    city_of_region, request_payment, PaymentChannel, RequestRead, TerminalKind,
};
use ecny::channels::emvco::{Mcc, MerchantQr, QrKind};
use ecny::command::{Command, Outcome};
use ecny::ids::{
    ContractId, EventId, IdempotencyKey, MerchantId, OperatorId, SubWalletId, WalletId,
};
use ecny::platform::Platform;
use ecny::programs::contracts::Template;
use ecny::server::auth::{Caller, Tokens};
use ecny::server::openapi;
use ecny::wallet::sub_wallet::SubWalletLimits;
use ecny::wallet::WalletClass;

/// The operator everything here belongs to.
const OPERATOR: OperatorId = OperatorId(1);
const SHOP_REGION: u32 = 320_500;
/// How long the example order stays payable.
const ORDER_VALID_MS: u64 = 365 * 86_400_000;

/// Who calls an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Operator,
    CentralBank,
    Merchant,
    ScanGun,
}

/// The ids and keys the examples are made of.
struct World {
    payer: WalletId,
    payer_key: KeyPair,
    payee: WalletId,
    newcomer: WalletId,
    shop: MerchantId,
    shop_qr: MerchantQr,
    sale: EventId,
    sub_wallet: SubWalletId,
    to_confirm: ContractId,
    to_cancel: ContractId,
}

fn yuan(text: &str) -> Amount {
    text.parse().expect("a literal amount")
}

/// Keys of the examples: fixed, so each example is one request, sent again as a retry.
fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey(0xA91E_0000_0000_0000_0000_0000_0000_0000 | n)
}

pub fn run(data: &Path, out: &Path) -> Result<(), String> {
    let (world, now_ms) = populate(data)?;
    let tokens = Tokens::load_or_create(data, &[OperatorId(1), OperatorId(2)])
        .map_err(|e| format!("tokens in {}: {e}", data.join("keys").display()))?;
    let token = |caller| {
        tokens
            .token_for(caller)
            .expect("a token for every caller here")
    };
    let read = |name: &str| {
        std::fs::read_to_string(data.join("keys").join(name))
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{name}: {e}"))
    };
    let tokens_by_role = [
        (Role::Operator, read("OP01.token")?),
        (Role::CentralBank, read("central-bank.token")?),
        (Role::Merchant, token(Caller::Merchant(world.shop))),
        (
            Role::ScanGun,
            token(Caller::Terminal {
                merchant: world.shop,
                terminal: 2,
            }),
        ),
    ];
    let examples = examples(&world, now_ms)?;
    let mut document = openapi::document();
    for example in &examples {
        apply(&mut document, example)?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write(
        "openapi.json",
        serde_json::to_string_pretty(&document).expect("JSON"),
    )?;
    write("schemathesis.toml", config(&examples, &tokens_by_role))?;
    let success: String = examples
        .iter()
        .map(|e| format!("{} {}\n", e.method.to_uppercase(), e.path))
        .collect();
    write("success.txt", success)?;
    println!(
        "{} operations given examples from {}: payer {}, payee {}, shop {}; files in {}",
        examples.len(),
        data.display(),
        world.payer,
        world.payee,
        world.shop,
        out.display()
    );
    Ok(())
}

/// OP01's desk: submits one command and answers its outcome, or why it was refused.
struct Desk(Platform);

impl Desk {
    fn run(&mut self, command: Command) -> Result<Outcome, String> {
        self.0
            .one(OPERATOR, command)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e} [{}]", e.code()))
    }

    /// A class-2 wallet with a bound bank account holding `cash`.
    fn banked(&mut self, phone: u64, key: &KeyPair, cash: &str) -> Result<WalletId, String> {
        let wallet = self.wallet(phone, key)?;
        let Outcome::Account(account) =
            self.run(Command::OpenDepositAccount { operator: OPERATOR })?
        else {
            return Err("no account".into());
        };
        self.run(Command::CashDeposit {
            account,
            amount: yuan(cash),
        })?;
        self.run(Command::BindBankAccount { wallet, account })?;
        self.run(Command::UpgradeWallet {
            wallet,
            to: WalletClass::Two,
            name: Some("Example Holder".into()),
            id_number: Some("110101199003074512".into()),
            in_person: false,
        })?;
        Ok(wallet)
    }

    fn wallet(&mut self, phone: u64, key: &KeyPair) -> Result<WalletId, String> {
        match self.run(Command::OpenWallet {
            operator: OPERATOR,
            phone,
            public_key: key.public_key(),
        })? {
            Outcome::Wallet(wallet) => Ok(wallet),
            _ => Err("no wallet".into()),
        }
    }
}

/// Adds the parties and what they did to the directory, as OP01 submits it.
fn populate(data: &Path) -> Result<(World, u64), String> {
    let (platform, _) = Platform::open(data).map_err(|e| e.to_string())?;
    let mut desk = Desk(platform);
    let payer_key = KeyPair::from_seed(b"api-examples/payer");
    let payer = desk.banked(13_700_000_101, &payer_key, "50000")?;
    let payee = desk.banked(
        13_700_000_102,
        &KeyPair::from_seed(b"api-examples/payee"),
        "100",
    )?;
    let newcomer = desk.wallet(
        13_700_000_103,
        &KeyPair::from_seed(b"api-examples/newcomer"),
    )?;
    desk.run(
        Command::Exchange {
            wallet: payer,
            amount: yuan("20000"),
            key: key(1),
            auth: None,
        }
        .sign(&payer_key),
    )?;
    // The platform stamps entries with the system clock; the order lasts a year from now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as u64;
    let (shop, shop_qr) = open_shop(&mut desk, payee, now_ms)?;
    let sale = match desk.run(
        Command::PayMerchant {
            payer,
            merchant: shop,
            amount: yuan("50.00"),
            channel: PaymentChannel::StaticQr,
            terminal: 0,
            order: None,
            key: key(2),
            auth: None,
        }
        .sign(&payer_key),
    )? {
        Outcome::Transfer(sale) => sale,
        _ => return Err("no sale".into()),
    };
    let mut world = World {
        payer,
        payer_key,
        payee,
        newcomer,
        shop,
        shop_qr,
        sale,
        sub_wallet: SubWalletId(0),
        to_confirm: ContractId(0),
        to_cancel: ContractId(0),
    };
    open_programs(&mut desk, &mut world)?;
    Ok((world, now_ms))
}

/// A shop settling into `wallet`, with a till, a scan gun and a web checkout, and an open order;
/// its printed QR.
fn open_shop(
    desk: &mut Desk,
    wallet: WalletId,
    now_ms: u64,
) -> Result<(MerchantId, MerchantQr), String> {
    let (name, mcc) = ("API Example Shop", Mcc::new(5814).expect("4 digits"));
    let Outcome::Merchant(shop) = desk.run(Command::OnboardMerchant {
        operator: OPERATOR,
        wallet,
        name: name.into(),
        mcc,
        region: SHOP_REGION,
    })?
    else {
        return Err("no merchant".into());
    };
    for kind in [
        TerminalKind::Pos,
        TerminalKind::ScanGun,
        TerminalKind::OnlineShop,
    ] {
        desk.run(Command::AddTerminal {
            merchant: shop,
            kind,
        })?;
    }
    desk.run(Command::CreateOrder {
        merchant: shop,
        reference: "API-ORDER-1".into(),
        amount: yuan("1.00"),
        expires_at_ms: now_ms + ORDER_VALID_MS,
        terminal: 1,
        cash_on_delivery: false,
    })?;
    let qr = MerchantQr {
        kind: QrKind::Static,
        operator: OPERATOR,
        merchant: shop,
        name: name.into(),
        city: city_of_region(SHOP_REGION),
        mcc,
    };
    Ok((shop, qr))
}

/// The payer's sub-wallet at the shop, and two prepaid terms: one to confirm, one to cancel.
fn open_programs(desk: &mut Desk, world: &mut World) -> Result<(), String> {
    let key_pair = world.payer_key.clone();
    let Outcome::SubWallet(sub_wallet) = desk.run(
        Command::OpenSubWallet {
            wallet: world.payer,
            merchant: world.shop,
            limits: SubWalletLimits {
                per_payment: yuan("200"),
                daily: yuan("500"),
            },
            auth: None,
        }
        .sign(&key_pair),
    )?
    else {
        return Err("no sub-wallet".into());
    };
    let (payer, payee) = (world.payer, world.payee);
    let mut contract = |n: u128| -> Result<ContractId, String> {
        let open = Command::OpenContract {
            payer,
            payee,
            template: Template::Prepaid {
                units: 10,
                unit_price: yuan("1.00"),
            },
            purpose: format!("API example term {n}"),
            key: key(n),
            auth: None,
        };
        match desk.run(open.sign(&key_pair))? {
            Outcome::Contract(id) => Ok(id),
            _ => Err("no contract".into()),
        }
    };
    world.sub_wallet = sub_wallet;
    world.to_confirm = contract(3)?;
    world.to_cancel = contract(4)?;
    Ok(())
}

/// One operation's example request.
struct Example {
    method: &'static str,
    path: &'static str,
    role: Role,
    parameters: Vec<(&'static str, String)>,
    body: Option<Value>,
}

fn example(method: &'static str, path: &'static str, role: Role) -> Example {
    Example {
        method,
        path,
        role,
        parameters: Vec::new(),
        body: None,
    }
}

impl Example {
    fn with(mut self, name: &'static str, value: impl ToString) -> Example {
        self.parameters.push((name, value.to_string()));
        self
    }

    fn body(mut self, body: Value) -> Example {
        self.body = Some(body);
        self
    }
}

/// A holder's signature over a command, as the API takes it.
fn signed(body: Value, command: &Command, key: &KeyPair) -> Value {
    let mut body = body;
    body["public_key"] = json!(key.public_key().to_hex());
    body["signature"] = json!(key.sign(&command.signing_bytes()).to_hex());
    body
}

fn examples(w: &World, now_ms: u64) -> Result<Vec<Example>, String> {
    let (payer, payee, shop, sw) = (w.payer, w.payee, w.shop, w.sub_wallet);
    let pay = Command::Pay {
        payer,
        payee,
        amount: yuan("1.00"),
        key: key(10),
        auth: None,
    };
    let scanned = request_payment(
        payer,
        &w.shop_qr,
        Some(yuan("1.00")),
        RequestRead::Scanned,
        key(11),
    )
    .map_err(|e| e.to_string())?;
    let open_sub_wallet = Command::OpenSubWallet {
        wallet: payer,
        merchant: shop,
        limits: SubWalletLimits {
            per_payment: yuan("100"),
            daily: yuan("300"),
        },
        auth: None,
    };
    let set_sub_wallet = Command::SetSubWallet {
        sub_wallet: sw,
        limits: SubWalletLimits {
            per_payment: yuan("150"),
            daily: yuan("400"),
        },
        open: true,
        auth: None,
    };
    let open_contract = Command::OpenContract {
        payer,
        payee,
        template: Template::Prepaid {
            units: 5,
            unit_price: yuan("1.00"),
        },
        purpose: "API example lessons".into(),
        key: key(12),
        auth: None,
    };
    let confirm = Command::ConfirmContract {
        contract: w.to_confirm,
        units: 1,
        key: key(13),
        auth: None,
    };
    let cancel = Command::CancelContract {
        contract: w.to_cancel,
        by_payee: false,
        auth: None,
    };
    let exchange = Command::Exchange {
        wallet: payer,
        amount: yuan("10.00"),
        key: key(14),
        auth: None,
    };
    let k = &w.payer_key;
    let today = ecny::wallet::format_day(ecny::wallet::china_day(now_ms));
    Ok(vec![
        example("post", "/v1/operators/{op}/wallets", Role::Operator)
            .with("op", OPERATOR)
            .body(json!({ "phone": "13700000199", "public_key": KeyPair::from_seed(b"api-examples/opened").public_key().to_hex() })),
        example("get", "/v1/wallets/{id}", Role::Operator).with("id", payer),
        example("post", "/v1/payments", Role::Operator)
            .with("Idempotency-Key", key(10))
            .body(signed(json!({ "payer": payer.to_string(), "payee": payee.to_string(), "amount": "1.00" }), &pay, k)),
        example("get", "/v1/audit", Role::CentralBank),
        example("post", "/v1/operators/{op}/merchants", Role::Operator)
            .with("op", OPERATOR)
            .body(json!({ "wallet": payee.to_string(), "name": "API Example Kiosk", "mcc": "5411", "region": SHOP_REGION })),
        example("get", "/v1/merchants/{m}", Role::Merchant).with("m", shop),
        example("post", "/v1/merchants/{m}/terminals", Role::Merchant)
            .with("m", shop)
            .body(json!({ "kind": "courier" })),
        example("get", "/v1/merchants/{m}/qr", Role::Merchant).with("m", shop).with("format", "json"),
        example("get", "/v1/merchants/{m}/tap-zone", Role::Merchant).with("m", shop),
        example("post", "/v1/merchants/{m}/orders", Role::Merchant)
            .with("m", shop)
            .body(json!({ "reference": "API-ORDER-2", "amount": "2.00" })),
        example("get", "/v1/merchants/{m}/orders/{reference}", Role::Merchant)
            .with("m", shop)
            .with("reference", "API-ORDER-1"),
        example("get", "/v1/merchants/{m}/sub-wallets", Role::Merchant).with("m", shop),
        example("post", "/v1/merchants/{m}/sub-wallet-charges", Role::Merchant)
            .with("m", shop)
            .with("Idempotency-Key", key(15))
            .body(json!({ "sub_wallet": sw.to_string(), "amount": "1.00" })),
        example("post", "/v1/merchants/{m}/refunds", Role::Merchant)
            .with("m", shop)
            .with("Idempotency-Key", key(16))
            .body(json!({ "payment": w.sale.to_string(), "amount": "1.00" })),
        example("get", "/v1/merchants/{m}/payments", Role::Merchant).with("m", shop).with("date", &today),
        example("get", "/v1/merchants/{m}/settlement", Role::Merchant).with("m", shop).with("date", &today),
        example("post", "/v1/request-payments", Role::Operator)
            .with("Idempotency-Key", key(11))
            .body(signed(
                json!({ "payer": payer.to_string(), "request": w.shop_qr.encode().map_err(|e| e.to_string())?, "amount": "1.00", "read": "scanned" }),
                &scanned,
                k,
            )),
        example("get", "/v1/wallets/{id}/payment-code", Role::Operator).with("id", payer),
        example("post", "/v1/wallets/{id}/sub-wallets", Role::Operator)
            .with("id", payer)
            .body(signed(json!({ "merchant": shop.to_string(), "per_payment": "100.00", "daily": "300.00" }), &open_sub_wallet, k)),
        example("get", "/v1/wallets/{id}/sub-wallets", Role::Operator).with("id", payer),
        example("put", "/v1/sub-wallets/{sw}", Role::Operator)
            .with("sw", sw)
            .body(signed(json!({ "per_payment": "150.00", "daily": "400.00", "open": true }), &set_sub_wallet, k)),
        example("post", "/v1/contracts", Role::Operator)
            .with("Idempotency-Key", key(12))
            .body(signed(
                json!({ "payer": payer.to_string(), "payee": payee.to_string(), "template": "prepaid", "purpose": "API example lessons", "units": 5, "unit_price": "1.00" }),
                &open_contract,
                k,
            )),
        example("get", "/v1/contracts/{id}", Role::CentralBank).with("id", w.to_confirm),
        example("post", "/v1/contracts/{id}/confirm", Role::Operator)
            .with("id", w.to_confirm)
            .with("Idempotency-Key", key(13))
            .body(signed(json!({ "units": 1 }), &confirm, k)),
        example("post", "/v1/contracts/{id}/cancel", Role::Operator)
            .with("id", w.to_cancel)
            .body(signed(json!({ "by": "payer" }), &cancel, k)),
        example("post", "/v1/wallets/{id}/bank-account", Role::Operator)
            .with("id", w.newcomer)
            .body(json!({ "cash": "100.00" })),
        example("post", "/v1/wallets/{id}/kyc", Role::Operator)
            .with("id", w.newcomer)
            .body(json!({ "class": 3, "name": "Example Newcomer", "id_number": "110101199003074512" })),
        example("post", "/v1/wallets/{id}/exchange", Role::Operator)
            .with("id", payer)
            .with("Idempotency-Key", key(14))
            .body(signed(json!({ "amount": "10.00" }), &exchange, k)),
        example("post", "/v1/wallets/{id}/deanonymize", Role::Operator)
            .with("id", payer)
            .body(json!({ "reason": "API example: court order 2026-001" })),
        example("get", "/v1/deanonymizations", Role::CentralBank),
    ])
}

/// Puts an example into the document: each named parameter's `example`, the body's `example`.
fn apply(document: &mut Value, example: &Example) -> Result<(), String> {
    let missing = || format!("{} {} is not in the document", example.method, example.path);
    let operation = document["paths"]
        .get_mut(example.path)
        .and_then(|p| p.get_mut(example.method))
        .ok_or_else(missing)?;
    for (name, value) in &example.parameters {
        let parameter = operation["parameters"]
            .as_array_mut()
            .and_then(|all| all.iter_mut().find(|p| p["name"] == *name))
            .ok_or_else(|| {
                format!(
                    "{} {} has no parameter {name}",
                    example.method, example.path
                )
            })?;
        // The operation's own example, in place of the generic one its schema carries.
        parameter["example"] = json!(value);
        if let Some(schema) = parameter["schema"].as_object_mut() {
            schema.remove("example");
        }
    }
    if let Some(body) = &example.body {
        let content = operation["requestBody"]["content"]["application/json"]
            .as_object_mut()
            .ok_or_else(|| format!("{} {} takes no JSON body", example.method, example.path))?;
        content.insert("example".into(), body.clone());
    }
    Ok(())
}

/// The schemathesis configuration: the operator's token by default; each other operation with
/// the token of who calls it.
fn config(examples: &[Example], tokens: &[(Role, String)]) -> String {
    let token = |role: Role| {
        &tokens
            .iter()
            .find(|(r, _)| *r == role)
            .expect("every role")
            .1
    };
    let mut toml =
        String::from("# Written by `ecny api-examples`: which token calls which operation.\n");
    let _ = writeln!(
        toml,
        "headers = {{ Authorization = \"Bearer {}\" }}\n",
        token(Role::Operator)
    );
    let others = examples
        .iter()
        .filter(|e| e.role != Role::Operator)
        .map(|e| (e.method, e.path, e.role))
        // A scan gun's charge has no example (its code lasts a minute) but its token.
        .chain([("post", "/v1/merchants/{m}/code-payments", Role::ScanGun)]);
    for (method, path, role) in others {
        let _ = writeln!(
            toml,
            "[[operations]]\ninclude-name = \"{} {path}\"\nheaders = {{ Authorization = \"Bearer {}\" }}\n",
            method.to_uppercase(),
            token(role)
        );
    }
    toml
}

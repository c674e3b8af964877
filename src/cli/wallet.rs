//! `ecny wallet`: the holder's app against a running `ecny serve`. It holds the holder's SM2 key
//! and nothing of the operator's: it signs every money-moving or mandate-changing request with the
//! key, and reads (balance, payment code, sub-wallets) with a short session it opens by signing
//! the server's challenge. Key and session stay in the profile file (0600).

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::certs::KeyPair;
use ecny::channels::decode_png;
use ecny::channels::emvco::{MerchantQr, QrKind};
use ecny::channels::payment_request::{request_payment, RequestRead};
use ecny::channels::render::DECODE_PNG_BYTES_MAX;
use ecny::command::Command;
use ecny::error::CommandError;
use ecny::ids::{CampaignId, MerchantId, OperatorId, SubWalletId, WalletId};
use ecny::parties::session_signing_bytes;
use ecny::signing::{DeploymentId, SigningContext, SIGNATURE_WINDOW_MS_CLIENT};
use ecny::time::china_clock;
use ecny::wallet::sub_wallet::SubWalletLimits;

use super::client::{
    answer_field, draw_qr, load_profile, profile_field, save_private, text, Failure,
};
use super::http::{fresh_key, Api, SERVER_DEFAULT};

pub const PROFILE_DEFAULT: &str = "ecny-wallet.json";

#[derive(Args)]
pub struct WalletArgs {
    /// The profile with the wallet's id, the holder's signing key and session.
    #[arg(long, global = true, default_value = PROFILE_DEFAULT)]
    profile: PathBuf,
    /// The server; default: the profile's, or http://127.0.0.1:8080 when opening.
    #[arg(long, global = true)]
    server: Option<String>,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Open a class-4 wallet with a phone number: makes the signing key and saves the profile.
    Open {
        /// The operator to open at, e.g. OP01.
        #[arg(long)]
        operator: OperatorId,
        /// Mainland mobile number, e.g. 13800138000.
        #[arg(long)]
        phone: String,
    },
    /// The wallet's class, status and balance.
    Balance,
    /// Pay a merchant's QR code: its payload, or a PNG of it.
    #[command(group(ArgGroup::new("request").required(true).args(["qr", "qr_png"])))]
    Pay {
        /// The EMVCo payload the QR carries (000201…).
        #[arg(long)]
        qr: Option<String>,
        /// A PNG picture of the QR code.
        #[arg(long)]
        qr_png: Option<PathBuf>,
        /// Yuan to pay: needed for a shop's printed QR, checked against an order's.
        #[arg(long)]
        amount: Option<Amount>,
        /// The request was read from the NFC tap zone rather than scanned.
        #[arg(long)]
        tapped: bool,
    },
    /// Pay another wallet by its id.
    PayWallet {
        /// The payee's wallet id, e.g. W0000000003.
        #[arg(long)]
        to: WalletId,
        /// Yuan to pay, e.g. 66.60.
        #[arg(long)]
        amount: Amount,
    },
    /// Pay a phone number, at any operator: the wallet it opens is looked up, then paid.
    PayPhone {
        /// The payee's mainland mobile number, e.g. 13900000012.
        #[arg(long)]
        phone: String,
        /// Yuan to pay, e.g. 66.60.
        #[arg(long)]
        amount: Amount,
    },
    /// Show the one-time payment code (digits and QR) for a till's scan gun.
    Code,
    /// Push a sub-wallet to a merchant's app, change its limits or close it.
    #[command(subcommand)]
    SubWallet(SubWalletCommand),
    /// The sub-wallets pushed to merchants.
    SubWallets,
    /// Exchange bank deposits into e-CNY (needs a bound bank account).
    TopUp {
        /// Yuan of bank deposits to exchange, e.g. 2000.
        #[arg(long)]
        amount: Amount,
    },
    /// Turn e-CNY back into deposits at the bound bank account.
    DepositBack {
        /// Yuan of e-CNY to deposit back, e.g. 200.
        #[arg(long)]
        amount: Amount,
    },
    /// The wallet's transfers, newest first, a page at a time.
    History {
        /// First day, YYYY-MM-DD (China time).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (China time).
        #[arg(long)]
        to: Option<String>,
        /// Only one kind of transfer, e.g. payment, exchange, deposit_back.
        #[arg(long)]
        kind: Option<String>,
        /// The next page: the cursor the previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        /// Entries a page, 1 to 200.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Report the phone lost: freeze the wallet (signed with this profile's key, from any device
    /// that holds it). Unfreezing is at the operator's counter.
    Freeze,
    /// Close the wallet for good: its balance goes back to the bound bank account.
    Close,
    /// Register this wallet for a red-packet campaign's lottery, signed with the wallet's key
    /// (one registration per person).
    Register {
        /// The campaign, e.g. RP000001.
        #[arg(long)]
        campaign: CampaignId,
        /// Opt in to the campaign's offline hardware-wallet trial, where it offers one.
        #[arg(long)]
        offline_trial: bool,
    },
    /// Fund a campaign this wallet sponsors: its whole budget into the campaign's pool.
    FundCampaign {
        /// The campaign, e.g. RP000001.
        #[arg(long)]
        campaign: CampaignId,
    },
    /// The red packets in this wallet: value, what is left, where they pay and until when.
    Packets,
    /// Raise the wallet's class remotely (3: name and ID; 2: also a bound bank account). Class 1
    /// is verified in person by a KYC officer at a branch (`ecny staff kyc`).
    Kyc {
        /// The class to reach: 3, or 2 with a bound bank account (class 1 is verified in person
        /// at the counter, by staff).
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
        class: u8,
        /// Real name, when the operator does not have it yet.
        #[arg(long)]
        name: Option<String>,
        /// 18-character resident ID number, when the operator does not have it yet.
        #[arg(long)]
        id_number: Option<String>,
    },
}

#[derive(Subcommand)]
enum SubWalletCommand {
    /// Push a sub-wallet to a merchant: it may charge within these limits.
    Open {
        /// The shop to push it to, e.g. M00000002.
        #[arg(long)]
        merchant: MerchantId,
        /// Most one charge may take.
        #[arg(long)]
        per_payment: Amount,
        /// Most all charges may take in a day.
        #[arg(long)]
        daily: Amount,
    },
    /// Change a sub-wallet's limits.
    Limits {
        /// The sub-wallet, e.g. SW00000003.
        sub_wallet: SubWalletId,
        /// Most one charge may take.
        #[arg(long)]
        per_payment: Amount,
        /// Most all charges may take in a day.
        #[arg(long)]
        daily: Amount,
    },
    /// Close a sub-wallet for good: the merchant can charge it no more.
    Close {
        /// The sub-wallet, e.g. SW00000003.
        sub_wallet: SubWalletId,
    },
}

/// The wallet profile as saved.
#[derive(Serialize, Deserialize)]
struct WalletProfile {
    server: String,
    operator: String,
    phone: String,
    /// The holder's SM2 secret key: whoever reads this file can spend from the wallet.
    secret_key: String,
    /// Absent until the operator has opened the wallet.
    wallet: Option<String>,
    /// The holder's read session and when it expires (Unix seconds); renewed when near its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_expires_at_s: Option<u64>,
}

const HOW_TO_OPEN: &str =
    "open a wallet with `ecny wallet open --operator OP01 --phone 13800138000`";

/// Seconds before its end a session is renewed rather than used.
const SESSION_RENEW_BEFORE_S: u64 = 60;

/// The holder's app, ready to sign and send.
struct Holder {
    /// Without a bearer token: signed commands carry the holder's authority.
    api: Api,
    /// With the holder's session: reads.
    reads: Api,
    wallet: WalletId,
    operator: OperatorId,
    key: KeyPair,
}

pub fn run(args: WalletArgs) -> Result<(), Failure> {
    if let WalletCommand::Open { operator, phone } = &args.command {
        return open(&args, *operator, phone);
    }
    let holder = Holder::load(&args)?;
    match args.command {
        WalletCommand::Open { .. } => unreachable!("handled above"),
        WalletCommand::Balance => holder.balance(),
        WalletCommand::Pay {
            qr,
            qr_png,
            amount,
            tapped,
        } => {
            let payload = match (qr, qr_png) {
                (Some(payload), _) => payload,
                (None, Some(path)) => read_qr_png(&path)?,
                (None, None) => unreachable!("clap requires --qr or --qr-png"),
            };
            let read = if tapped {
                RequestRead::Tapped
            } else {
                RequestRead::Scanned
            };
            holder.pay_request(&payload, amount, read)
        }
        WalletCommand::PayWallet { to, amount } => holder.pay_wallet(to, amount),
        WalletCommand::PayPhone { phone, amount } => {
            let found = holder.reads.post(
                &format!("/v1/wallets/{}/phone-lookups", holder.wallet),
                &json!({ "phone": phone }),
            )?;
            let payee: WalletId = answer_field(&found, "wallet")?;
            println!("{phone} is {payee} at {}", text(&found, "operator")?);
            holder.pay_wallet(payee, amount)
        }
        WalletCommand::Code => holder.payment_code(),
        WalletCommand::SubWallet(command) => holder.sub_wallet(command),
        WalletCommand::SubWallets => holder.list_sub_wallets(),
        WalletCommand::TopUp { amount } => holder.top_up(amount),
        WalletCommand::Register {
            campaign,
            offline_trial,
        } => holder.register(campaign, offline_trial),
        WalletCommand::FundCampaign { campaign } => holder.fund_campaign(campaign),
        WalletCommand::Packets => holder.packets(),
        WalletCommand::DepositBack { amount } => holder.deposit_back(amount),
        WalletCommand::History {
            from,
            to,
            kind,
            cursor,
            limit,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (name, value) in [
                ("from", from),
                ("to", to),
                ("kind", kind),
                ("cursor", cursor),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", super::client::path_segment(&value)));
                }
            }
            holder.history(&query.join("&"))
        }
        WalletCommand::Freeze => holder.freeze(),
        WalletCommand::Close => holder.close(),
        WalletCommand::Kyc {
            class,
            name,
            id_number,
        } => holder.kyc(json!({ "class": class, "name": name, "id_number": id_number })),
    }
}

/// Makes the key, saves it before asking the operator, then records the wallet it opened.
fn open(args: &WalletArgs, operator: OperatorId, phone: &str) -> Result<(), Failure> {
    let earlier: Option<WalletProfile> = if args.profile.exists() {
        Some(load_profile(&args.profile, "wallet", HOW_TO_OPEN)?)
    } else {
        None
    };
    if let Some(wallet) = earlier.as_ref().and_then(|p| p.wallet.as_deref()) {
        return Err(Failure::new(
            "PROFILE_EXISTS",
            format!(
                "{} already holds wallet {wallet}; pass --profile FILE to open another",
                args.profile.display()
            ),
        ));
    }
    // An earlier open that got no answer left its key: use it again, never a second one.
    let retrying = earlier.is_some();
    let secret_key = match earlier {
        Some(profile) => profile.secret_key,
        None => KeyPair::generate().secret_hex(),
    };
    let mut profile = WalletProfile {
        server: args.server.clone().unwrap_or_else(|| SERVER_DEFAULT.into()),
        operator: operator.to_string(),
        phone: phone.to_string(),
        secret_key,
        wallet: None,
        session: None,
        session_expires_at_s: None,
    };
    save_private(&args.profile, &profile)?;
    let key = holder_key(&args.profile, &profile)?;
    let api = Api::new(&profile.server, "")?;
    let phone_number = ecny::wallet::parse_phone(&profile.phone)?;
    // The signature proves to the operator that this app holds the key it registers.
    let command = Command::OpenWallet {
        operator,
        phone: phone_number.into(),
        public_key: key.public_key(),
    };
    let body = signed_fields(
        &api,
        &key,
        operator,
        &command,
        json!({ "phone": profile.phone }),
    )?;
    let opened = match api.post(
        &format!("/v1/operators/{}/wallets", profile.operator),
        &body,
    ) {
        Ok(opened) => opened,
        Err(failure) => {
            // The server refused: no wallet holds this key, so the key goes too.
            if !retrying && failure.code != "SERVER_UNREACHABLE" {
                let _ = std::fs::remove_file(&args.profile);
            }
            return Err(failure);
        }
    };
    let wallet = text(&opened, "wallet")?.to_string();
    profile.wallet = Some(wallet.clone());
    save_private(&args.profile, &profile).map_err(|failure| {
        Failure::new(
            failure.code,
            format!("{}; the wallet opened is {wallet}", failure.detail),
        )
    })?;
    println!(
        "opened wallet {wallet} at {} (class 4: phone number only)",
        profile.operator
    );
    println!(
        "profile saved to {} — it holds your signing key; keep it private",
        args.profile.display()
    );
    let named = if args.profile == Path::new(PROFILE_DEFAULT) {
        String::new()
    } else {
        format!(" --profile {}", args.profile.display())
    };
    println!("next: a teller opens your bank account at the counter (`ecny staff bank-account --wallet {wallet} --cash 5000`), then `ecny wallet{named} top-up --amount 500`");
    Ok(())
}

/// The holder's public key, signature over `command` and its window's end, as request fields:
/// signed for the server's deployment and the wallet's operator, good for the clients' window by
/// the server's clock (a phone's own clock may be off).
pub(super) fn signed_fields(
    api: &Api,
    key: &KeyPair,
    operator: OperatorId,
    command: &Command,
    mut body: Value,
) -> Result<Value, Failure> {
    let stated = api.get("/v1/context")?;
    let deployment = DeploymentId::from_hex(text(&stated, "deployment")?).ok_or_else(|| {
        Failure::new(
            "RESPONSE_MALFORMED",
            format!("the server's deployment is not 32 hex digits: {stated}"),
        )
    })?;
    let now_ms = stated["now_ms"].as_u64().ok_or_else(|| {
        Failure::new(
            "RESPONSE_MALFORMED",
            format!("the server's context has no now_ms: {stated}"),
        )
    })?;
    let context = SigningContext {
        deployment,
        operator,
    };
    let not_after_ms = now_ms + SIGNATURE_WINDOW_MS_CLIENT;
    let signature = key.sign(&command.signing_bytes(&context, not_after_ms));
    body["public_key"] = json!(key.public_key().to_hex());
    body["signature"] = json!(signature.to_hex());
    body["not_after_ms"] = json!(not_after_ms);
    Ok(body)
}

/// The profile's session if it has a while to run; else a new one, from a challenge signed with
/// the wallet's key, saved back to the profile.
fn session(
    api: &Api,
    path: &Path,
    mut profile: WalletProfile,
    wallet: WalletId,
    key: &KeyPair,
) -> Result<String, Failure> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    if let (Some(token), Some(expires)) = (&profile.session, profile.session_expires_at_s) {
        if expires > now_s + SESSION_RENEW_BEFORE_S {
            return Ok(token.clone());
        }
    }
    let asked = api.post(
        "/v1/sessions/challenges",
        &json!({ "wallet": wallet.to_string() }),
    )?;
    let challenge = text(&asked, "challenge")?.to_string();
    let signature = key.sign(&session_signing_bytes(wallet, &challenge));
    let opened = api.post(
        "/v1/sessions",
        &json!({
            "wallet": wallet.to_string(),
            "challenge": challenge,
            "signature": signature.to_hex(),
        }),
    )?;
    let token = text(&opened, "token")?.to_string();
    profile.session = Some(token.clone());
    profile.session_expires_at_s = opened["expires_at_s"].as_u64();
    save_private(path, &profile)?;
    Ok(token)
}

fn holder_key(path: &Path, profile: &WalletProfile) -> Result<KeyPair, Failure> {
    KeyPair::from_secret_hex(&profile.secret_key).map_err(|error| {
        Failure::new(
            "PROFILE_DAMAGED",
            format!("{}: secret_key: {error}", path.display()),
        )
    })
}

/// The one merchant request a PNG shows.
fn read_qr_png(path: &Path) -> Result<String, Failure> {
    let unreadable = |detail: String| Failure::new("QR_IMAGE_UNREADABLE", detail);
    let size = std::fs::metadata(path)
        .map_err(|error| unreadable(format!("{}: {error}", path.display())))?
        .len();
    if size > DECODE_PNG_BYTES_MAX as u64 {
        return Err(unreadable(format!(
            "{}: {size} bytes; at most {DECODE_PNG_BYTES_MAX}",
            path.display()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|error| unreadable(format!("{}: {error}", path.display())))?;
    let mut texts = decode_png(&bytes)?;
    if texts.len() > 1 {
        return Err(Failure::new(
            "QR_AMBIGUOUS",
            format!(
                "{} shows {} QR codes; crop it to the one to pay",
                path.display(),
                texts.len()
            ),
        ));
    }
    Ok(texts.remove(0))
}

fn limits_body(limits: SubWalletLimits) -> Value {
    json!({ "per_payment": limits.per_payment.to_string(), "daily": limits.daily.to_string() })
}

impl Holder {
    fn load(args: &WalletArgs) -> Result<Holder, Failure> {
        let profile: WalletProfile = load_profile(&args.profile, "wallet", HOW_TO_OPEN)?;
        let wallet = profile.wallet.as_deref().ok_or_else(|| {
            Failure::new(
                "WALLET_NOT_OPENED",
                format!(
                    "{} holds a key but no wallet yet: the operator did not answer; run `ecny wallet open` again",
                    args.profile.display()
                ),
            )
        })?;
        let server = args
            .server
            .as_deref()
            .unwrap_or(&profile.server)
            .to_string();
        let wallet: WalletId = profile_field(&args.profile, "wallet", wallet)?;
        let key = holder_key(&args.profile, &profile)?;
        let api = Api::new(&server, "")?;
        let operator = profile_field(&args.profile, "operator", &profile.operator)?;
        let session = session(&api, &args.profile, profile, wallet, &key)?;
        Ok(Holder {
            reads: Api::new(&server, &session)?,
            api,
            wallet,
            operator,
            key,
        })
    }

    /// The holder's public key, signature over `command` and its window's end, as request
    /// fields: signed for the server's deployment and the wallet's operator, good for the
    /// clients' window by the server's clock (a phone's own clock may be off).
    fn signed(&self, command: &Command, body: Value) -> Result<Value, Failure> {
        signed_fields(&self.api, &self.key, self.operator, command, body)
    }

    fn register(&self, campaign: CampaignId, offline_trial: bool) -> Result<(), Failure> {
        let command = Command::RegisterForCampaign {
            campaign,
            wallet: self.wallet,
            offline_trial,
        };
        let body = json!({ "wallet": self.wallet.to_string(), "offline_trial": offline_trial });
        let answer = self.api.post(
            &format!("/v1/campaigns/{campaign}/registrations"),
            &self.signed(&command, body)?,
        )?;
        println!(
            "{} registered for {campaign} \"{}\"; the draw is after {}",
            self.wallet,
            text(&answer, "name")?,
            china_clock(answer["registration_closes_at_ms"].as_u64().unwrap_or(0))
        );
        Ok(())
    }

    fn fund_campaign(&self, campaign: CampaignId) -> Result<(), Failure> {
        let command = Command::FundCampaign {
            campaign,
            auth: None,
        };
        let answer = self.api.post(
            &format!("/v1/campaigns/{campaign}/funding"),
            &self.signed(&command, json!({}))?,
        )?;
        println!(
            "{campaign} funded with {} by transfer {}",
            text(&answer, "budget")?,
            text(&answer, "funding_transfer")?
        );
        Ok(())
    }

    fn packets(&self) -> Result<(), Failure> {
        let view = self
            .reads
            .get(&format!("/v1/wallets/{}/packets", self.wallet))?;
        let packets = view["packets"].as_array().cloned().unwrap_or_default();
        if packets.is_empty() {
            println!("{}: no red packets", self.wallet);
            return Ok(());
        }
        println!(
            "{}: red packets worth {}",
            self.wallet,
            text(&view, "total")?
        );
        for packet in &packets {
            let eligible = &packet["eligible"];
            let merchants: Vec<&str> = eligible["merchants"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "  {} #{} \"{}\" from {}: {} of {} left, {}, until {} Beijing time; pays in region {}{}",
                text(packet, "campaign")?,
                packet["packet"],
                text(packet, "name")?,
                text(packet, "sponsor")?,
                text(packet, "balance")?,
                text(packet, "value")?,
                text(packet, "status")?,
                text(packet, "expires_at")?,
                text(eligible, "region")?,
                if merchants.is_empty() {
                    String::new()
                } else {
                    format!(" and at {}", merchants.join(", "))
                }
            );
        }
        Ok(())
    }

    fn wallet_view(&self) -> Result<Value, Failure> {
        self.reads.get(&format!("/v1/wallets/{}", self.wallet))
    }

    fn balance_line(&self) -> Result<String, Failure> {
        let view = self.wallet_view()?;
        let balance: Amount = answer_field(&view, "balance")?;
        Ok(format!(
            "{} at {}: class {}, {}, balance {}",
            self.wallet,
            text(&view, "operator")?,
            view["class"],
            text(&view, "status")?,
            balance.yuan_sign()
        ))
    }

    fn balance(&self) -> Result<(), Failure> {
        println!("{}", self.balance_line()?);
        Ok(())
    }

    fn pay_request(
        &self,
        payload: &str,
        typed: Option<Amount>,
        read: RequestRead,
    ) -> Result<(), Failure> {
        // The payload is checked here first (format, CRC): a damaged code never leaves the phone.
        let request = MerchantQr::parse(payload)?;
        let key = fresh_key()?;
        let command =
            request_payment(self.wallet, &request, typed, read, key).map_err(|error| {
                let hint = matches!(error, CommandError::AmountRequired)
                    .then_some("; pass --amount")
                    .unwrap_or_default();
                Failure::new(error.code(), format!("{error}{hint}"))
            })?;
        let mut body = json!({
            "payer": self.wallet.to_string(),
            "request": payload,
            "read": if read == RequestRead::Tapped { "tapped" } else { "scanned" },
        });
        if let Some(typed) = typed {
            body["amount"] = json!(typed.to_string());
        }
        let paid =
            self.api
                .post_keyed("/v1/request-payments", key, &self.signed(&command, body)?)?;
        let amount: Amount = answer_field(&paid, "amount")?;
        let order = match &request.kind {
            QrKind::Dynamic { order_id, .. } => format!(" for order {order_id}"),
            QrKind::Static => String::new(),
        };
        println!(
            "paid {} to {} ({}){order}",
            amount.yuan_sign(),
            text(&paid, "name")?,
            text(&paid, "merchant")?
        );
        println!("transfer {}", text(&paid, "transfer")?);
        Ok(())
    }

    fn pay_wallet(&self, payee: WalletId, amount: Amount) -> Result<(), Failure> {
        let key = fresh_key()?;
        let command = Command::Pay {
            payer: self.wallet,
            payee,
            amount,
            key,
            auth: None,
        };
        let body = json!({
            "payer": self.wallet.to_string(),
            "payee": payee.to_string(),
            "amount": amount.to_string(),
        });
        let paid = self
            .api
            .post_keyed("/v1/payments", key, &self.signed(&command, body)?)?;
        println!("paid {} to {payee}", amount.yuan_sign());
        println!("transfer {}", text(&paid, "transfer")?);
        Ok(())
    }

    fn payment_code(&self) -> Result<(), Failure> {
        let shown = self
            .reads
            .get(&format!("/v1/wallets/{}/payment-code", self.wallet))?;
        let digits = text(&shown, "code")?;
        let valid_until = shown["valid_until_s"].as_u64().unwrap_or(0);
        let grouped: Vec<String> = digits
            .as_bytes()
            .chunks(4)
            .map(|group| String::from_utf8_lossy(group).into_owned())
            .collect();
        // The QR carries the same digits, so the scan gun reads either.
        draw_qr(digits)?;
        println!("payment code {}", grouped.join(" "));
        println!(
            "valid until {} China time; show it to the till's scan gun, once",
            china_clock(valid_until)
        );
        Ok(())
    }

    fn sub_wallet(&self, command: SubWalletCommand) -> Result<(), Failure> {
        match command {
            SubWalletCommand::Open {
                merchant,
                per_payment,
                daily,
            } => {
                let limits = SubWalletLimits { per_payment, daily };
                let command = Command::OpenSubWallet {
                    wallet: self.wallet,
                    merchant,
                    limits,
                    auth: None,
                };
                let mut body = limits_body(limits);
                body["merchant"] = json!(merchant.to_string());
                let opened = self.api.post(
                    &format!("/v1/wallets/{}/sub-wallets", self.wallet),
                    &self.signed(&command, body)?,
                )?;
                println!(
                    "pushed sub-wallet {} to {merchant}: up to {} a payment, {} a day",
                    text(&opened, "sub_wallet")?,
                    per_payment.yuan_sign(),
                    daily.yuan_sign()
                );
                Ok(())
            }
            SubWalletCommand::Limits {
                sub_wallet,
                per_payment,
                daily,
            } => self.set_sub_wallet(sub_wallet, SubWalletLimits { per_payment, daily }, true),
            SubWalletCommand::Close { sub_wallet } => {
                // Closing signs the limits it has now: only `open` changes.
                let current = self.sub_wallets()?;
                let found = current
                    .iter()
                    .find(|sub| sub["sub_wallet"] == sub_wallet.to_string())
                    .ok_or(CommandError::UnknownSubWallet(sub_wallet))?;
                let limits = SubWalletLimits {
                    per_payment: answer_field(found, "per_payment")?,
                    daily: answer_field(found, "daily")?,
                };
                self.set_sub_wallet(sub_wallet, limits, false)
            }
        }
    }

    fn set_sub_wallet(
        &self,
        sub_wallet: SubWalletId,
        limits: SubWalletLimits,
        open: bool,
    ) -> Result<(), Failure> {
        let command = Command::SetSubWallet {
            sub_wallet,
            limits,
            open,
            auth: None,
        };
        let mut body = limits_body(limits);
        body["open"] = json!(open);
        let now = self.api.put(
            &format!("/v1/sub-wallets/{sub_wallet}"),
            &self.signed(&command, body)?,
        )?;
        println!("{}", sub_wallet_line(&now)?);
        Ok(())
    }

    fn sub_wallets(&self) -> Result<Vec<Value>, Failure> {
        let listed = self
            .reads
            .get(&format!("/v1/wallets/{}/sub-wallets", self.wallet))?;
        Ok(listed.as_array().cloned().unwrap_or_default())
    }

    fn list_sub_wallets(&self) -> Result<(), Failure> {
        let listed = self.sub_wallets()?;
        if listed.is_empty() {
            println!("no sub-wallets; push one with `ecny wallet sub-wallet open --merchant M… --per-payment 200 --daily 500`");
        }
        for sub in &listed {
            println!("{}", sub_wallet_line(sub)?);
        }
        Ok(())
    }

    fn top_up(&self, amount: Amount) -> Result<(), Failure> {
        let key = fresh_key()?;
        let command = Command::Exchange {
            wallet: self.wallet,
            amount,
            key,
            auth: None,
        };
        let body = json!({ "amount": amount.to_string() });
        let exchanged = self.api.post_keyed(
            &format!("/v1/wallets/{}/exchange", self.wallet),
            key,
            &self.signed(&command, body)?,
        )?;
        println!(
            "exchanged {} of bank deposits into e-CNY (transfer {})",
            amount.yuan_sign(),
            text(&exchanged, "transfer")?
        );
        println!("{}", self.balance_line()?);
        Ok(())
    }

    fn deposit_back(&self, amount: Amount) -> Result<(), Failure> {
        let key = fresh_key()?;
        let command = Command::DepositBack {
            wallet: self.wallet,
            amount,
            key,
            auth: None,
        };
        let body = json!({ "amount": amount.to_string() });
        let deposited = self.api.post_keyed(
            &format!("/v1/wallets/{}/deposit-back", self.wallet),
            key,
            &self.signed(&command, body)?,
        )?;
        println!(
            "deposited {} back into the bound bank account (transfer {})",
            amount.yuan_sign(),
            text(&deposited, "transfer")?
        );
        println!("{}", self.balance_line()?);
        Ok(())
    }

    fn history(&self, query: &str) -> Result<(), Failure> {
        let page = self
            .reads
            .get(&format!("/v1/wallets/{}/history?{query}", self.wallet))?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            println!("no transfers");
        }
        for entry in &entries {
            let amount: Amount = answer_field(entry, "amount")?;
            let sign = if text(entry, "direction")? == "in" {
                "+"
            } else {
                "-"
            };
            let counterparty = entry["counterparty"]
                .as_str()
                .map(|wallet| format!(" {wallet}"))
                .unwrap_or_default();
            println!(
                "{} {} {:<18} {sign}{}{counterparty}",
                text(entry, "transfer")?,
                text(entry, "at")?,
                text(entry, "kind")?,
                amount.yuan_sign()
            );
        }
        if let Some(cursor) = page["next_cursor"].as_str() {
            println!("more: --cursor {cursor}");
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), Failure> {
        let command = Command::SetWalletStatus {
            wallet: self.wallet,
            status: ecny::wallet::WalletStatus::Frozen,
        };
        let frozen = self.api.post(
            &format!("/v1/wallets/{}/freeze", self.wallet),
            &self.signed(&command, json!({}))?,
        )?;
        println!(
            "{} is {}: nothing moves out of it until the operator's counter unfreezes it",
            self.wallet,
            text(&frozen, "status")?
        );
        Ok(())
    }

    fn close(&self) -> Result<(), Failure> {
        let command = Command::CloseWallet {
            wallet: self.wallet,
        };
        let closed = self.api.post(
            &format!("/v1/wallets/{}/close", self.wallet),
            &self.signed(&command, json!({}))?,
        )?;
        let returned: Amount = answer_field(&closed, "returned")?;
        println!(
            "{} is closed; {} went back to the bound bank account",
            self.wallet,
            returned.yuan_sign()
        );
        Ok(())
    }

    fn kyc(&self, statement: Value) -> Result<(), Failure> {
        self.reads
            .post(&format!("/v1/wallets/{}/kyc", self.wallet), &statement)?;
        println!("{}", self.balance_line()?);
        Ok(())
    }
}

fn sub_wallet_line(sub: &Value) -> Result<String, Failure> {
    let amount = |name: &str| answer_field::<Amount>(sub, name).map(|a| a.yuan_sign().to_string());
    Ok(format!(
        "{} at {}: up to {} a payment, {} a day, {} charged today, {}",
        text(sub, "sub_wallet")?,
        text(sub, "merchant")?,
        amount("per_payment")?,
        amount("daily")?,
        amount("charged_today")?,
        if sub["open"] == true {
            "open"
        } else {
            "closed"
        }
    ))
}

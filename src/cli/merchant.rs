//! `ecny merchant`: a shop against a running `ecny serve`. Its operator onboards it once; from then
//! on it speaks with its own token and its terminals' (a till presents orders, a scan gun reads
//! payment codes, a courier's handheld presents cash-on-delivery orders), all kept in the profile
//! file (0600).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::channels::acquiring::TerminalKind;
use ecny::channels::emvco::Mcc;
use ecny::channels::render_svg;
use ecny::ids::{EventId, MerchantId, OperatorId, SubWalletId, WalletId};
use ecny::time::china_clock;

use super::client::{
    answer_field, draw_qr, load_profile, operator_token, path_segment, profile_field, save_private,
    text, write_file, write_png, Failure, DATA_DEFAULT, PNG_MODULE_PX,
};
use super::http::{fresh_key, Api, SERVER_DEFAULT};

pub const PROFILE_DEFAULT: &str = "ecny-merchant.json";

#[derive(Args)]
pub struct MerchantArgs {
    /// The profile with the merchant's id and the tokens of the merchant and its terminals.
    #[arg(long, global = true, default_value = PROFILE_DEFAULT)]
    profile: PathBuf,
    /// The server; default: the profile's, or http://127.0.0.1:8080 when onboarding.
    #[arg(long, global = true)]
    server: Option<String>,
    #[command(subcommand)]
    command: MerchantCommand,
}

#[derive(Subcommand)]
enum MerchantCommand {
    /// The operator signs the merchant up; saves the merchant's token in the profile.
    Onboard {
        /// The operator, e.g. OP01; the settlement wallet must be its own.
        #[arg(long)]
        operator: OperatorId,
        /// The class-2 (or better) wallet the merchant settles into.
        #[arg(long)]
        wallet: WalletId,
        /// The name payers see, at most 25 characters.
        #[arg(long)]
        name: String,
        /// ISO 18245 merchant category code, e.g. 5814 (fast food).
        #[arg(long)]
        mcc: Mcc,
        /// GB/T 2260 region code, e.g. 320500 (Suzhou).
        #[arg(long)]
        region: u32,
        /// The server's data directory, to read the operator's token from its keys.
        #[arg(long, default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// The operator's bearer token instead of DIR/keys/OPxx.token.
        #[arg(long)]
        token: Option<String>,
    },
    /// Register a terminal; its token is saved in the profile.
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// The printed QR for the shop's stand (payers type the amount), drawn here.
    Qr {
        /// Also write the QR as a PNG file.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Also write the QR as an SVG file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Present an order as a dynamic QR at the till (or, with --courier, at the door).
    Order {
        /// The shop's own order reference, e.g. TILL-0001 (printable ASCII, at most 25).
        #[arg(long)]
        reference: String,
        /// Yuan the order asks, e.g. 66.60.
        #[arg(long)]
        amount: Amount,
        /// Cash on delivery, presented by the courier's handheld.
        #[arg(long)]
        courier: bool,
        /// Seconds the order stays payable (default 900).
        #[arg(long)]
        valid_s: Option<u64>,
        /// Also write the order's QR as a PNG.
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// An order's status: open, paid or delivered.
    OrderStatus {
        /// The order's reference, as given to `ecny merchant order`.
        reference: String,
    },
    /// Charge a customer's payment code, as the shop's scan gun.
    ChargeCode {
        /// The 18 digits under the customer's code.
        #[arg(long)]
        code: String,
        /// Yuan to charge, e.g. 18.00.
        #[arg(long)]
        amount: Amount,
    },
    /// Charge a sub-wallet a customer pushed to the shop.
    Charge {
        /// The sub-wallet the customer pushed, e.g. SW00000001.
        #[arg(long)]
        sub_wallet: SubWalletId,
        /// Yuan to charge, within the sub-wallet's limits.
        #[arg(long)]
        amount: Amount,
        /// The shop's order reference, if the charge is for one.
        #[arg(long)]
        order: Option<String>,
    },
    /// Give back all or part of a payment, to the wallet that paid it.
    Refund {
        /// The payment's transfer id.
        #[arg(long)]
        payment: EventId,
        /// Yuan to give back, at most what the payment has left.
        #[arg(long)]
        amount: Amount,
    },
    /// The day's payments received.
    Payments {
        /// YYYY-MM-DD in China time; today by default.
        #[arg(long)]
        date: Option<String>,
    },
    /// The day's settlement: gross, refunds, net, by channel.
    Settlement {
        /// YYYY-MM-DD in China time; today by default.
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Subcommand)]
enum TerminalCommand {
    /// Register a till (pos), scan gun, courier's handheld or web checkout (online_shop).
    Add {
        /// pos, scan_gun, courier or online_shop.
        #[arg(long, value_parser = terminal_kind)]
        kind: TerminalKind,
    },
}

fn terminal_kind(text: &str) -> Result<TerminalKind, String> {
    TerminalKind::parse(text)
        .ok_or_else(|| format!("{text:?} is not pos, scan_gun, courier or online_shop"))
}

/// The merchant profile as saved.
#[derive(Serialize, Deserialize)]
struct MerchantProfile {
    server: String,
    operator: String,
    merchant: String,
    name: String,
    /// The merchant's own bearer token: whoever reads this file can refund its sales.
    token: String,
    terminals: Vec<TerminalEntry>,
}

#[derive(Serialize, Deserialize)]
struct TerminalEntry {
    terminal: u16,
    kind: String,
    token: String,
}

const HOW_TO_ONBOARD: &str = "onboard with `ecny merchant onboard --operator OP01 --wallet W… --name … --mcc 5814 --region 320500`";

/// The shop's back office, ready to send.
struct Shop {
    profile_path: PathBuf,
    profile: MerchantProfile,
    server: String,
    merchant: MerchantId,
}

pub fn run(args: MerchantArgs) -> Result<(), Failure> {
    if let MerchantCommand::Onboard {
        operator,
        wallet,
        name,
        mcc,
        region,
        data,
        token,
    } = args.command
    {
        let token = operator_token(token.as_deref(), &data, operator)?;
        let server = args.server.unwrap_or_else(|| SERVER_DEFAULT.into());
        let body = json!({ "wallet": wallet.to_string(), "name": name, "mcc": mcc.to_string(), "region": region });
        return onboard(&args.profile, server, operator, &token, &body);
    }
    let shop = Shop::load(&args.profile, args.server)?;
    match args.command {
        MerchantCommand::Onboard { .. } => unreachable!("handled above"),
        MerchantCommand::Terminal(TerminalCommand::Add { kind }) => shop.add_terminal(kind),
        MerchantCommand::Qr { png, svg } => shop.printed_qr(png.as_deref(), svg.as_deref()),
        MerchantCommand::Order {
            reference,
            amount,
            courier,
            valid_s,
            png,
        } => {
            let mut body = json!({ "reference": reference, "amount": amount.to_string() });
            if courier {
                body["cash_on_delivery"] = json!(true);
            }
            if let Some(valid_s) = valid_s {
                body["valid_s"] = json!(valid_s);
            }
            shop.order(&body, courier, png.as_deref())
        }
        MerchantCommand::OrderStatus { reference } => shop.order_status(&reference),
        MerchantCommand::ChargeCode { code, amount } => shop.charge_code(&code, amount),
        MerchantCommand::Charge {
            sub_wallet,
            amount,
            order,
        } => shop.charge_sub_wallet(sub_wallet, amount, order),
        MerchantCommand::Refund { payment, amount } => shop.refund(payment, amount),
        MerchantCommand::Payments { date } => shop.payments(date.as_deref()),
        MerchantCommand::Settlement { date } => shop.settlement(date.as_deref()),
    }
}

fn onboard(
    path: &Path,
    server: String,
    operator: OperatorId,
    operator_token: &str,
    body: &Value,
) -> Result<(), Failure> {
    if path.exists() {
        return Err(Failure::new(
            "PROFILE_EXISTS",
            format!(
                "{} already holds a merchant; pass --profile FILE to onboard another",
                path.display()
            ),
        ));
    }
    let api = Api::new(&server, operator_token)?;
    let onboarded = api.post(&format!("/v1/operators/{operator}/merchants"), body)?;
    let profile = MerchantProfile {
        server,
        operator: operator.to_string(),
        merchant: text(&onboarded, "merchant")?.to_string(),
        name: text(&onboarded, "name")?.to_string(),
        token: text(&onboarded, "token")?.to_string(),
        terminals: Vec::new(),
    };
    save_or_show(path, &profile, &profile.token)?;
    println!(
        "onboarded {} as merchant {} at {operator}, settling into {}",
        profile.name,
        profile.merchant,
        text(&onboarded, "wallet")?
    );
    println!(
        "profile saved to {} — it holds the merchant's token; keep it private",
        path.display()
    );
    println!("next: `ecny merchant terminal add --kind pos`, then `ecny merchant order --reference TILL-0001 --amount 66.60`");
    Ok(())
}

/// Saves the profile; if it cannot be, shows the new token, which the server gives only once.
fn save_or_show(path: &Path, profile: &MerchantProfile, token: &str) -> Result<(), Failure> {
    save_private(path, profile).map_err(|failure| {
        Failure::new(
            failure.code,
            format!(
                "{}; keep this token, it is not shown again: {token}",
                failure.detail
            ),
        )
    })
}

impl Shop {
    fn load(path: &Path, server: Option<String>) -> Result<Shop, Failure> {
        let profile: MerchantProfile = load_profile(path, "merchant", HOW_TO_ONBOARD)?;
        Ok(Shop {
            profile_path: path.to_path_buf(),
            merchant: profile_field(path, "merchant", &profile.merchant)?,
            server: server.unwrap_or_else(|| profile.server.clone()),
            profile,
        })
    }

    /// Speaks as the merchant itself.
    fn api(&self) -> Result<Api, Failure> {
        Api::new(&self.server, &self.profile.token)
    }

    /// Speaks as the first terminal of one of `kinds`, in that order of preference.
    fn terminal_api(&self, kinds: &[TerminalKind]) -> Result<(Api, u16), Failure> {
        let entry = kinds
            .iter()
            .find_map(|kind| {
                self.profile
                    .terminals
                    .iter()
                    .find(|entry| entry.kind == kind.as_str())
            })
            .ok_or_else(|| {
                Failure::new(
                    "TERMINAL_MISSING",
                    format!(
                        "{} has no {} terminal; add one with `ecny merchant terminal add --kind {}`",
                        self.merchant,
                        kinds[0].as_str(),
                        kinds[0].as_str()
                    ),
                )
            })?;
        Ok((Api::new(&self.server, &entry.token)?, entry.terminal))
    }

    fn endpoint(&self, tail: &str) -> String {
        format!("/v1/merchants/{}{tail}", self.merchant)
    }

    fn add_terminal(mut self, kind: TerminalKind) -> Result<(), Failure> {
        let added = self.api()?.post(
            &self.endpoint("/terminals"),
            &json!({ "kind": kind.as_str() }),
        )?;
        let terminal = added["terminal"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok());
        let entry = TerminalEntry {
            terminal: terminal.ok_or_else(|| {
                Failure::new(
                    "RESPONSE_MALFORMED",
                    format!("no terminal number in {added}"),
                )
            })?,
            kind: kind.as_str().to_string(),
            token: text(&added, "token")?.to_string(),
        };
        let (number, token) = (entry.terminal, entry.token.clone());
        self.profile.terminals.push(entry);
        save_or_show(&self.profile_path, &self.profile, &token)?;
        println!(
            "added terminal {number} ({}) to {}; its token is in {}",
            kind.as_str(),
            self.merchant,
            self.profile_path.display()
        );
        Ok(())
    }

    fn printed_qr(&self, png: Option<&Path>, svg: Option<&Path>) -> Result<(), Failure> {
        let shown = self.api()?.get(&self.endpoint("/qr"))?;
        let payload = text(&shown, "qr")?;
        draw_qr(payload)?;
        println!(
            "the printed QR of {} ({}): payers scan it and type the amount",
            self.profile.name, self.merchant
        );
        println!("payload {payload}");
        if let Some(path) = png {
            write_png(path, payload)?;
            println!("PNG written to {}", path.display());
        }
        if let Some(path) = svg {
            write_file(path, render_svg(payload, PNG_MODULE_PX)?.as_bytes())?;
            println!("SVG written to {}", path.display());
        }
        Ok(())
    }

    fn order(&self, body: &Value, courier: bool, png: Option<&Path>) -> Result<(), Failure> {
        // A courier's handheld presents cash on delivery; a till otherwise, or the shop itself.
        let (api, _) = if courier {
            self.terminal_api(&[TerminalKind::Courier])?
        } else {
            self.terminal_api(&[TerminalKind::Pos])
                .or_else(|_| self.api().map(|api| (api, 0)))?
        };
        let order = api.post(&self.endpoint("/orders"), body)?;
        let payload = text(&order, "qr")?;
        let amount: Amount = answer_field(&order, "amount")?;
        let expires_s = order["expires_at_ms"].as_u64().unwrap_or(0) / 1000;
        draw_qr(payload)?;
        println!(
            "order {} for {}, payable until {} China time{}",
            text(&order, "reference")?,
            amount.yuan_sign(),
            china_clock(expires_s),
            if courier { " (cash on delivery)" } else { "" }
        );
        println!("payload {payload}");
        if let Some(path) = png {
            write_png(path, payload)?;
            println!("PNG written to {}", path.display());
        }
        Ok(())
    }

    fn order_status(&self, reference: &str) -> Result<(), Failure> {
        let order = self
            .api()?
            .get(&self.endpoint(&format!("/orders/{}", path_segment(reference))))?;
        let amount: Amount = answer_field(&order, "amount")?;
        let transfer = order["transfer"]
            .as_str()
            .map(|t| format!(", transfer {t}"))
            .unwrap_or_default();
        println!(
            "order {}: {}, {}{transfer}",
            text(&order, "reference")?,
            text(&order, "status")?,
            amount.yuan_sign()
        );
        Ok(())
    }

    fn charge_code(&self, code: &str, amount: Amount) -> Result<(), Failure> {
        let (api, terminal) = self.terminal_api(&[TerminalKind::ScanGun, TerminalKind::Pos])?;
        let body = json!({ "code": code, "amount": amount.to_string() });
        let charged = api.post_keyed(&self.endpoint("/code-payments"), fresh_key()?, &body)?;
        println!(
            "charged {} by payment code at terminal {terminal}",
            amount.yuan_sign()
        );
        println!("transfer {}", text(&charged, "transfer")?);
        Ok(())
    }

    fn charge_sub_wallet(
        &self,
        sub_wallet: SubWalletId,
        amount: Amount,
        order: Option<String>,
    ) -> Result<(), Failure> {
        let mut body =
            json!({ "sub_wallet": sub_wallet.to_string(), "amount": amount.to_string() });
        if let Some(order) = order {
            body["order"] = json!(order);
        }
        let charged =
            self.api()?
                .post_keyed(&self.endpoint("/sub-wallet-charges"), fresh_key()?, &body)?;
        println!("charged {} to sub-wallet {sub_wallet}", amount.yuan_sign());
        println!("transfer {}", text(&charged, "transfer")?);
        Ok(())
    }

    fn refund(&self, payment: EventId, amount: Amount) -> Result<(), Failure> {
        let body = json!({ "payment": payment.to_string(), "amount": amount.to_string() });
        let refunded = self
            .api()?
            .post_keyed(&self.endpoint("/refunds"), fresh_key()?, &body)?;
        println!(
            "refunded {} of payment {payment} to the wallet that paid it",
            amount.yuan_sign()
        );
        println!("transfer {}", text(&refunded, "transfer")?);
        Ok(())
    }

    fn day_query(date: Option<&str>) -> String {
        date.map(|day| format!("?date={}", path_segment(day)))
            .unwrap_or_default()
    }

    fn payments(&self, date: Option<&str>) -> Result<(), Failure> {
        let listed = self
            .api()?
            .get(&self.endpoint(&format!("/payments{}", Self::day_query(date))))?;
        let payments = listed["payments"].as_array().cloned().unwrap_or_default();
        println!(
            "{} payment(s) to {} on {}",
            payments.len(),
            self.merchant,
            text(&listed, "date")?
        );
        for payment in &payments {
            let amount: Amount = answer_field(payment, "amount")?;
            let refunded: Amount = answer_field(payment, "refunded")?;
            let mut line = format!(
                "{} {} {:>12} {}",
                text(payment, "transfer")?,
                china_clock(payment["at_ms"].as_u64().unwrap_or(0) / 1000),
                amount.yuan_sign().to_string(),
                text(payment, "channel")?
            );
            // Terminal 0 is the merchant itself: a printed QR, a sub-wallet charge.
            if let Some(terminal) = payment["terminal"].as_u64().filter(|t| *t > 0) {
                line.push_str(&format!(" terminal {terminal}"));
            }
            if let Some(order) = payment["order"].as_str() {
                line.push_str(&format!(" order {order}"));
            }
            if let Some(sub) = payment["sub_wallet"].as_str() {
                line.push_str(&format!(" sub-wallet {sub}"));
            }
            if refunded.is_positive() {
                line.push_str(&format!(" refunded {}", refunded.yuan_sign()));
            }
            println!("{line}");
        }
        Ok(())
    }

    fn settlement(&self, date: Option<&str>) -> Result<(), Failure> {
        let report = self
            .api()?
            .get(&self.endpoint(&format!("/settlement{}", Self::day_query(date))))?;
        // A day's net is below zero when refunds of earlier days' payments outweigh its takings.
        let yuan = |name: &str| -> Result<String, Failure> {
            let field = text(&report, name)?;
            let amount = Amount::parse_signed(field).map_err(|_| {
                Failure::new(
                    "RESPONSE_MALFORMED",
                    format!("the server's {name:?} is not an amount: {report}"),
                )
            })?;
            Ok(amount.yuan_sign().to_string())
        };
        println!(
            "settlement of {} for {}",
            self.merchant,
            text(&report, "date")?
        );
        println!("payments {}: gross {}", report["payments"], yuan("gross")?);
        println!(
            "refunds {}: refunded {}",
            report["refunds"],
            yuan("refunded")?
        );
        println!("net {}", yuan("net")?);
        for line in report["by_channel"].as_array().cloned().unwrap_or_default() {
            let amount: Amount = answer_field(&line, "amount")?;
            println!(
                "  {:<18} {:>4} {:>14}",
                text(&line, "channel")?,
                line["payments"],
                amount.yuan_sign().to_string()
            );
        }
        Ok(())
    }
}

//! `ecny staff`: an operator's people against a running `ecny serve`. The administrator (who holds
//! `DIR/keys/OPxx.token`) registers each staff member with one role and saves that member's own
//! credential in a profile (0600); a teller opens bank accounts with the holder's cash, a KYC
//! officer verifies identities (class 1 in person). No staff credential ever goes into a
//! holder's wallet profile.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use ecny::amount::Amount;
use ecny::ids::{OperatorId, StaffId, WalletId};

use super::client::{load_profile, operator_token, save_private, text, Failure, DATA_DEFAULT};
use super::http::{fresh_key, Api, SERVER_DEFAULT};

pub const PROFILE_DEFAULT: &str = "ecny-staff.json";

#[derive(Args)]
pub struct StaffArgs {
    /// The staff member's profile: the operator, the role and the member's own credential.
    #[arg(long, global = true, default_value = PROFILE_DEFAULT)]
    profile: PathBuf,
    /// The server; default: the profile's, or http://127.0.0.1:8080 when adding.
    #[arg(long, global = true)]
    server: Option<String>,
    #[command(subcommand)]
    command: StaffCommand,
}

#[derive(Subcommand)]
enum StaffCommand {
    /// The administrator registers a staff member; the member's credential goes in --profile.
    Add {
        /// The operator the staff member works for, e.g. OP01.
        #[arg(long)]
        operator: OperatorId,
        /// teller, kyc_officer, compliance_officer or administrator.
        #[arg(long)]
        role: String,
        /// A desk or badge number (stored in the log: never a customer's data).
        #[arg(long)]
        label: String,
        /// The server's data directory, to read the administrator's token from its keys.
        #[arg(long, default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
    /// The administrator revokes a staff member's credential for good.
    Revoke {
        /// The operator the staff member works for, e.g. OP01.
        #[arg(long)]
        operator: OperatorId,
        /// The staff member whose credential stops working, e.g. ST000003.
        #[arg(long)]
        staff: StaffId,
        /// The server's data directory, to read the administrator's token from its keys.
        #[arg(long, default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
    /// A teller: a deposit account opened with the holder's cash, bound to the wallet, at once.
    BankAccount {
        /// The holder's wallet the new account is bound to, e.g. W0000000005.
        #[arg(long)]
        wallet: WalletId,
        /// Yuan paid in, e.g. 5000.
        #[arg(long)]
        cash: Amount,
    },
    /// A KYC officer raises a wallet's class: name and ID (3), a bound bank account (2), in
    /// person at the branch (1).
    Kyc {
        /// The holder's wallet, e.g. W0000000005.
        #[arg(long)]
        wallet: WalletId,
        /// The class to reach: 3, 2 or 1.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
        class: u8,
        /// The holder's real name, as on the ID card.
        #[arg(long)]
        name: Option<String>,
        /// The 18-character resident ID number (GB 11643, check character included).
        #[arg(long)]
        id_number: Option<String>,
        /// The holder is at the counter with an ID card (class 1 needs it).
        #[arg(long)]
        in_person: bool,
    },
    /// A teller freezes a wallet on its holder's call (a lost phone).
    Freeze {
        /// The holder's wallet, e.g. W0000000005.
        #[arg(long)]
        wallet: WalletId,
    },
    /// A teller unfreezes a wallet, its holder's identity checked at the counter.
    Unfreeze {
        /// The holder's wallet, e.g. W0000000005.
        #[arg(long)]
        wallet: WalletId,
    },
}

#[derive(Serialize, Deserialize)]
struct StaffProfile {
    server: String,
    operator: String,
    staff: String,
    role: String,
    /// The member's own credential: whoever reads this file acts in this role.
    token: String,
}

const HOW_TO_ADD: &str =
    "the administrator adds you with `ecny staff add --operator OP01 --role teller --label …`";

pub fn run(args: StaffArgs) -> Result<(), Failure> {
    let server = args.server.clone();
    match args.command {
        StaffCommand::Add {
            operator,
            role,
            label,
            data,
        } => {
            let server = server.unwrap_or_else(|| SERVER_DEFAULT.into());
            let admin = Api::new(&server, &operator_token(None, &data, operator)?)?;
            let added = admin.post(
                &format!("/v1/operators/{operator}/staff"),
                &json!({ "role": role, "label": label }),
            )?;
            let profile = StaffProfile {
                server,
                operator: operator.to_string(),
                staff: text(&added, "staff")?.to_string(),
                role: text(&added, "role")?.to_string(),
                token: text(&added, "token")?.to_string(),
            };
            save_private(&args.profile, &profile)?;
            println!(
                "registered {} ({}, {label}) at {operator}; credential saved to {} (0600)",
                profile.staff,
                profile.role,
                args.profile.display()
            );
            Ok(())
        }
        StaffCommand::Revoke {
            operator,
            staff,
            data,
        } => {
            let server = server.unwrap_or_else(|| SERVER_DEFAULT.into());
            let admin = Api::new(&server, &operator_token(None, &data, operator)?)?;
            admin.post(
                &format!("/v1/operators/{operator}/staff/{staff}/revoke"),
                &json!({}),
            )?;
            println!("revoked {staff}'s credential at {operator}: it works no more");
            Ok(())
        }
        StaffCommand::BankAccount { wallet, cash } => {
            let api = member(&args.profile, server)?;
            let key = fresh_key()?;
            let opened = api.post_keyed(
                &format!("/v1/wallets/{wallet}/bank-account"),
                key,
                &json!({ "cash": cash.to_string() }),
            )?;
            println!(
                "opened deposit account {} with {} in cash, bound to {wallet}",
                text(&opened, "account")?,
                cash.yuan_sign()
            );
            Ok(())
        }
        StaffCommand::Kyc {
            wallet,
            class,
            name,
            id_number,
            in_person,
        } => {
            let api = member(&args.profile, server)?;
            let now = api.post(
                &format!("/v1/wallets/{wallet}/kyc"),
                &json!({ "class": class, "name": name, "id_number": id_number, "in_person": in_person }),
            )?;
            println!("{wallet} is now class {}", now["class"]);
            Ok(())
        }
        StaffCommand::Freeze { wallet } => set_frozen(&args.profile, server, wallet, "freeze"),
        StaffCommand::Unfreeze { wallet } => set_frozen(&args.profile, server, wallet, "unfreeze"),
    }
}

fn set_frozen(
    profile: &std::path::Path,
    server: Option<String>,
    wallet: WalletId,
    action: &str,
) -> Result<(), Failure> {
    let api = member(profile, server)?;
    let now = api.post(&format!("/v1/wallets/{wallet}/{action}"), &json!({}))?;
    println!("{wallet} is {}", text(&now, "status")?);
    Ok(())
}

fn member(path: &std::path::Path, server: Option<String>) -> Result<Api, Failure> {
    let profile: StaffProfile = load_profile(path, "staff", HOW_TO_ADD)?;
    Api::new(server.as_deref().unwrap_or(&profile.server), &profile.token)
}

//! `ecny central-bank`: the central bank against a running `ecny serve`, with its token from the
//! server's data directory (`DIR/keys/central-bank.token`) or `--token`: admit an operator, bring
//! in its reserves, issue and redeem, suspend and reinstate it, read the money in circulation.

use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use ecny::amount::Amount;
use ecny::ids::OperatorId;

use super::client::{answer_field, text, Failure, DATA_DEFAULT};
use super::http::{Api, SERVER_DEFAULT};

#[derive(Args)]
pub struct CentralBankArgs {
    /// The server.
    #[arg(long, global = true, default_value = SERVER_DEFAULT)]
    server: String,
    /// The server's data directory, to read the central bank's token from its keys.
    #[arg(long, global = true, default_value = DATA_DEFAULT)]
    data: PathBuf,
    /// The central bank's token, instead of reading it from --data.
    #[arg(long, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: CentralBankCommand,
}

#[derive(Subcommand)]
enum CentralBankCommand {
    /// Admit an operator: its key, accounts and desk, serving at once.
    Admit {
        /// The operator's name, e.g. "Taihu Rural Bank".
        #[arg(long)]
        name: String,
    },
    /// Bring an operator's reserves into its account at the central bank.
    Fund {
        /// The operator, e.g. OP03.
        #[arg(long)]
        operator: OperatorId,
        /// Yuan, e.g. 1000000.
        #[arg(long)]
        amount: Amount,
    },
    /// Issue e-CNY to an operator against its reserves.
    Issue {
        /// The operator, e.g. OP03.
        #[arg(long)]
        operator: OperatorId,
        /// Yuan, e.g. 500000.
        #[arg(long)]
        amount: Amount,
    },
    /// Redeem e-CNY from an operator's vault; its reserves come back.
    Redeem {
        /// The operator, e.g. OP03.
        #[arg(long)]
        operator: OperatorId,
        /// Yuan, e.g. 500000.
        #[arg(long)]
        amount: Amount,
    },
    /// Suspend an operator: it takes on no new money; its holders may still take theirs out.
    Suspend {
        /// The operator, e.g. OP03.
        #[arg(long)]
        operator: OperatorId,
    },
    /// Reinstate a suspended operator.
    Reinstate {
        /// The operator, e.g. OP03.
        #[arg(long)]
        operator: OperatorId,
    },
    /// Money in circulation by operator and by form.
    Circulation,
}

fn central_bank_token(given: Option<&str>, data: &Path) -> Result<String, Failure> {
    if let Some(token) = given {
        return Ok(token.trim().to_string());
    }
    let path = data.join("keys").join("central-bank.token");
    let token = fs::read_to_string(&path).map_err(|error| {
        Failure::new(
            "TOKEN_MISSING",
            format!(
                "cannot read the central bank's token at {}: {error}; pass --data DIR (the server's data directory) or --token",
                path.display()
            ),
        )
    })?;
    Ok(token.trim().to_string())
}

pub fn run(args: CentralBankArgs) -> Result<(), Failure> {
    let api = Api::new(
        &args.server,
        &central_bank_token(args.token.as_deref(), &args.data)?,
    )?;
    let transfer = |path: &str, operator: OperatorId, amount: Amount, done: &str| {
        let answer = api.post(
            &format!("/v1/operators/{operator}/{path}"),
            &json!({ "amount": amount.to_string() }),
        )?;
        println!(
            "{done} {} for {operator} (transfer {})",
            amount.yuan_sign(),
            text(&answer, "transfer")?
        );
        Ok(())
    };
    match args.command {
        CentralBankCommand::Admit { name } => {
            let admitted = api.post("/v1/operators", &json!({ "name": name }))?;
            println!(
                "admitted {} {}: serving now; its administrator's token is in DIR/{}",
                text(&admitted, "operator")?,
                text(&admitted, "name")?,
                text(&admitted, "administrator_token_file")?
            );
            Ok(())
        }
        CentralBankCommand::Fund { operator, amount } => {
            transfer("reserves", operator, amount, "reserves in:")
        }
        CentralBankCommand::Issue { operator, amount } => {
            transfer("issuance", operator, amount, "issued")
        }
        CentralBankCommand::Redeem { operator, amount } => {
            transfer("redemption", operator, amount, "redeemed")
        }
        CentralBankCommand::Suspend { operator } => suspend(&api, operator, true),
        CentralBankCommand::Reinstate { operator } => suspend(&api, operator, false),
        CentralBankCommand::Circulation => circulation(&api),
    }
}

fn suspend(api: &Api, operator: OperatorId, suspended: bool) -> Result<(), Failure> {
    let answer = api.put(
        &format!("/v1/operators/{operator}/suspension"),
        &json!({ "suspended": suspended }),
    )?;
    let standing = if answer["suspended"] == true {
        "suspended"
    } else {
        "serving"
    };
    println!("{operator} is {standing}");
    Ok(())
}

fn forms_line(forms: &Value) -> Result<String, Failure> {
    let amount =
        |name: &str| answer_field::<Amount>(forms, name).map(|a| a.yuan_sign().to_string());
    Ok(format!(
        "{} in all: wallets {}, vaults {}, offline {}, escrow {}, red packets {}",
        amount("total")?,
        amount("wallets")?,
        amount("vaults")?,
        amount("offline_float")?,
        amount("escrow")?,
        amount("red_packets")?
    ))
}

fn circulation(api: &Api) -> Result<(), Failure> {
    let read = api.get("/v1/circulation")?;
    let issued: Amount = answer_field(&read, "issued_net")?;
    println!("issued net of redemptions: {}", issued.yuan_sign());
    println!("in circulation: {}", forms_line(&read["circulation"])?);
    for op in read["operators"].as_array().cloned().unwrap_or_default() {
        let reserves: Amount = answer_field(&op, "reserves")?;
        let backing: Amount = answer_field(&op, "backing")?;
        println!(
            "{} {}{}: reserves {}, backing {}; {}",
            text(&op, "operator")?,
            text(&op, "name")?,
            if op["suspended"] == true {
                " (suspended)"
            } else {
                ""
            },
            reserves.yuan_sign(),
            backing.yuan_sign(),
            forms_line(&op["circulation"])?
        );
    }
    Ok(())
}

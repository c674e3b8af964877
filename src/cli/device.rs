//! `ecny device`: hardware wallets against a running `ecny serve`, as the counter and the
//! holder's phone relay them. The card itself signs on the card: this client carries its messages
//! (attestations, unloads, syncs, as hex) to the server and prints what the operator signed back
//! for it (certificates, load orders, sync confirmations).

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use ecny::ids::{DeviceId, OperatorId, WalletId};

use super::client::Failure;
use super::http::{Api, SERVER_DEFAULT};

#[derive(Args)]
pub struct DeviceArgs {
    /// The server.
    #[arg(long, global = true, default_value = SERVER_DEFAULT)]
    server: String,
    /// The bearer token: a teller's to issue, block or load a visitor card; the holder's session
    /// to read, sync or unload its own card; none where the holder's signature is the authority.
    #[arg(long, global = true, default_value = "")]
    token: String,
    #[command(subcommand)]
    command: DeviceCommand,
}

/// The holder's signature, as its app made it over the command's signing bytes.
#[derive(Args)]
struct HolderSigned {
    /// The holder's SM2 public key (66 hex digits).
    #[arg(long, requires = "signature")]
    public_key: Option<String>,
    /// The holder's SM2 signature (128 hex digits).
    #[arg(long, requires = "not_after_ms")]
    signature: Option<String>,
    /// The last Unix millisecond the signature is good.
    #[arg(long)]
    not_after_ms: Option<u64>,
}

impl HolderSigned {
    fn add_to(&self, body: &mut Value) {
        if let (Some(key), Some(signature), Some(not_after_ms)) =
            (&self.public_key, &self.signature, self.not_after_ms)
        {
            body["public_key"] = json!(key);
            body["signature"] = json!(signature);
            body["not_after_ms"] = json!(not_after_ms);
        }
    }
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// A teller issues a card: bound to a wallet as its holder signed, or a visitor card.
    Issue {
        /// The issuing operator, e.g. OP01.
        #[arg(long)]
        operator: OperatorId,
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
        /// The card's SM2 public key (66 hex digits), made on the card.
        #[arg(long)]
        device_public_key: String,
        /// phone_ese, sim_card, contactless_card, student_card or visitor_card.
        #[arg(long)]
        form: String,
        /// A student card's guardian daily cap, in yuan.
        #[arg(long)]
        daily_cap: Option<String>,
        /// The wallet the card draws on; none for a visitor card.
        #[arg(long)]
        wallet: Option<WalletId>,
        #[command(flatten)]
        signed: HolderSigned,
    },
    /// Load a card (the holder signs; a visitor card at its operator's counter); prints the
    /// operator's load order for the card.
    Load {
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
        /// The load's number: the last booked plus one.
        #[arg(long)]
        load_seq: u32,
        /// Yuan, e.g. 500.00.
        #[arg(long)]
        amount: String,
        /// The card's attestation of its state (hex).
        #[arg(long)]
        attestation: String,
        #[command(flatten)]
        signed: HolderSigned,
    },
    /// Book the card's signed unload (hex).
    Unload {
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
        /// The card's signed unload (hex).
        #[arg(long)]
        unload: String,
    },
    /// Without --sync: the center's nonce for the card to attest over. With --sync: upload the
    /// card's attested records; prints the report and the operator's confirmation for the card.
    Sync {
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
        /// The card's attested sync over the center's nonce (hex).
        #[arg(long)]
        sync: Option<String>,
    },
    /// The card as the center books it.
    Status {
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
    },
    /// Its operator blocks a lost or stolen card.
    Block {
        /// The card, e.g. D000000000001.
        #[arg(long)]
        device: DeviceId,
    },
    /// The central bank's signed list of blocked cards, for a terminal to load.
    Revocations,
}

pub fn run(args: DeviceArgs) -> Result<(), Failure> {
    let api = Api::new(&args.server, &args.token)?;
    let answer = match args.command {
        DeviceCommand::Issue {
            operator,
            device,
            device_public_key,
            form,
            daily_cap,
            wallet,
            signed,
        } => {
            let mut body = json!({
                "device": device.to_string(),
                "device_public_key": device_public_key,
                "form": form,
            });
            if let Some(cap) = daily_cap {
                body["daily_cap"] = json!(cap);
            }
            if let Some(wallet) = wallet {
                body["wallet"] = json!(wallet.to_string());
            }
            signed.add_to(&mut body);
            api.post(&format!("/v1/operators/{operator}/devices"), &body)?
        }
        DeviceCommand::Load {
            device,
            load_seq,
            amount,
            attestation,
            signed,
        } => {
            let mut body = json!({
                "load_seq": load_seq,
                "amount": amount,
                "attestation": attestation,
            });
            signed.add_to(&mut body);
            api.post(&format!("/v1/devices/{device}/loads"), &body)?
        }
        DeviceCommand::Unload { device, unload } => api.post(
            &format!("/v1/devices/{device}/unloads"),
            &json!({ "unload": unload }),
        )?,
        DeviceCommand::Sync { device, sync: None } => {
            api.post(&format!("/v1/devices/{device}/sync-nonce"), &json!({}))?
        }
        DeviceCommand::Sync {
            device,
            sync: Some(sync),
        } => api.post(
            &format!("/v1/devices/{device}/syncs"),
            &json!({ "sync": sync }),
        )?,
        DeviceCommand::Status { device } => api.get(&format!("/v1/devices/{device}"))?,
        DeviceCommand::Block { device } => {
            api.post(&format!("/v1/devices/{device}/block"), &json!({}))?
        }
        DeviceCommand::Revocations => api.get("/v1/revocations")?,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&answer).unwrap_or_else(|_| answer.to_string())
    );
    Ok(())
}

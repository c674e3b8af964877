//! `ecny campaign …` and `ecny bench campaign`: red-packet campaigns in the ledger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use ecny::bench::campaign::campaign as bench_campaign;
use ecny::demo::campaign::{self as demo, CampaignDemoSize, CAMPAIGN_DEMO_REGISTRANTS_MIN};
use ecny::ids::{CampaignId, OperatorId};
use ecny::time::china_clock;
use serde_json::{json, Value};

use super::client::{operator_token, text, write_file, Failure};
use super::http::{Api, SERVER_DEFAULT};
use ecny::programs::campaign::CAMPAIGN_PACKETS_MAX;
use ecny::server::config::DATA_DEFAULT;

use super::coded;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Suzhou's red-packet campaign end to end on a fresh data directory: funding, registration
    /// through the operators, the draw and the packets handed out, spending at eligible (and not
    /// eligible) merchants, expiry returning the unspent to the city, the redemption report and
    /// the audit. Writes the published campaign, registrant list and draw into DIR/RP000001 for
    /// `ecny lottery verify`.
    Demo {
        /// Data directory: new, empty, made by a demo (recreated) or without operators.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// Registrants, each with an anonymous wallet of its own.
        #[arg(long, default_value_t = 1_000_000)]
        registrants: u32,
        /// Packets of 200 yuan.
        #[arg(long, default_value_t = 100_000)]
        packets: u32,
    },
    /// Publish a campaign file on a running server, as the sponsor's operator's administrator
    /// (its token from --token or DIR/keys/OPxx.token).
    Publish {
        #[command(flatten)]
        operator: OperatorArgs,
        /// The campaign file (JSON), e.g. from `ecny lottery sample`.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Reveal the sponsor's seed on a running server: the center draws, and every winner is told
    /// by SMS.
    Draw {
        #[command(flatten)]
        operator: OperatorArgs,
        /// The campaign, e.g. RP000001.
        #[arg(long)]
        campaign: CampaignId,
        /// The seed, 64 hex digits, matching the published commitment.
        #[arg(long)]
        seed: String,
    },
    /// Download a campaign's published files from a running server into DIR: campaign.json,
    /// registrants.txt and (once drawn) draw.json, for `ecny lottery verify`.
    Fetch {
        /// The running server's address.
        #[arg(long, default_value = SERVER_DEFAULT)]
        server: String,
        /// The campaign, e.g. RP000001.
        #[arg(long)]
        campaign: CampaignId,
        /// Where to write the files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A campaign's redemption as it happens, from a running server (the sponsor's operator).
    Redemption {
        #[command(flatten)]
        operator: OperatorArgs,
        /// The campaign, e.g. RP000001.
        #[arg(long)]
        campaign: CampaignId,
    },
    /// The redemption report of each campaign on a data directory: packets used, amounts spent,
    /// by merchant category and by channel, and what went back to the sponsor.
    Report {
        /// Data directory holding the campaigns.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// Only this campaign, e.g. RP000001.
        #[arg(long)]
        campaign: Option<String>,
    },
}

/// The server and the operator administrator's credential.
#[derive(clap::Args)]
pub struct OperatorArgs {
    /// The running server's address.
    #[arg(long, default_value = SERVER_DEFAULT)]
    server: String,
    /// The sponsor's operator.
    #[arg(long, default_value = "OP01")]
    operator: OperatorId,
    /// The administrator's bearer token; else read from DIR/keys/OPxx.token.
    #[arg(long)]
    token: Option<String>,
    /// The server's data directory, for the token.
    #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
    data: PathBuf,
}

impl OperatorArgs {
    fn api(&self) -> Result<Api, Failure> {
        let token = operator_token(self.token.as_deref(), &self.data, self.operator)?;
        Api::new(&self.server, &token)
    }
}

/// The client commands against a running server, apart from those on a data directory.
pub fn is_client(command: &CampaignCommand) -> bool {
    matches!(
        command,
        CampaignCommand::Publish { .. }
            | CampaignCommand::Draw { .. }
            | CampaignCommand::Fetch { .. }
            | CampaignCommand::Redemption { .. }
    )
}

/// `publish`, `draw`, `fetch` and `redemption` against `--server`.
pub fn run_client(command: CampaignCommand) -> Result<(), Failure> {
    match command {
        CampaignCommand::Publish { operator, file } => {
            let text = std::fs::read_to_string(&file).map_err(|error| {
                Failure::new("FILE_UNREADABLE", format!("{}: {error}", file.display()))
            })?;
            let body: Value = serde_json::from_str(&text).map_err(|error| {
                Failure::new(
                    "CAMPAIGN_FILE_MALFORMED",
                    format!("{}: {error}", file.display()),
                )
            })?;
            let answer = operator.api()?.post("/v1/campaigns", &body)?;
            println!(
                "published {} \"{}\": {} packets of {}, registration until {}, seed commitment {}",
                text_of(&answer, "campaign")?,
                text_of(&answer, "name")?,
                answer["packet_count"],
                text_of(&answer, "packet_value")?,
                china_clock(answer["registration_closes_at_ms"].as_u64().unwrap_or(0)),
                text_of(&answer, "seed_commitment")?
            );
            Ok(())
        }
        CampaignCommand::Draw {
            operator,
            campaign,
            seed,
        } => {
            let answer = operator.api()?.post(
                &format!("/v1/campaigns/{campaign}/draw"),
                &json!({ "seed": seed }),
            )?;
            println!(
                "{campaign} drawn: {} winners, {} notices queued for the SMS gateway",
                answer["winners"], answer["notices_queued"]
            );
            Ok(())
        }
        CampaignCommand::Fetch {
            server,
            campaign,
            out,
        } => fetch(&server, campaign, &out),
        CampaignCommand::Redemption { operator, campaign } => {
            let answer = operator
                .api()?
                .get(&format!("/v1/campaigns/{campaign}/redemption"))?;
            println!(
                "{campaign} ({}): {} of {} packets used in {} payments, {} spent, {} unspent, {} back with the sponsor",
                text_of(&answer, "status")?,
                answer["packets_used"],
                answer["packets_drawn"],
                answer["payments"],
                text_of(&answer, "spent")?,
                text_of(&answer, "unspent")?,
                text_of(&answer, "returned")?
            );
            Ok(())
        }
        _ => unreachable!("not a client command"),
    }
}

/// The published files, as plain GETs (the list and draw are not JSON objects of the API's).
fn fetch(server: &str, campaign: CampaignId, out: &Path) -> Result<(), Failure> {
    let get = |path: &str| -> Result<Option<String>, Failure> {
        let url = format!("{}{path}", server.trim_end_matches('/'));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(&url)
            .call()
            .map_err(|error| Failure::new("SERVER_UNREACHABLE", format!("{url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|error| Failure::new("RESPONSE_MALFORMED", format!("{url}: {error}")))?;
        match status {
            200 => Ok(Some(body)),
            409 => Ok(None),
            _ => {
                let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                Err(Failure::new(
                    problem["code"].as_str().unwrap_or("HTTP_ERROR").to_string(),
                    problem["detail"].as_str().unwrap_or(&body).to_string(),
                ))
            }
        }
    };
    let view = get(&format!("/v1/campaigns/{campaign}"))?.unwrap_or_default();
    let view: Value = serde_json::from_str(&view)
        .map_err(|error| Failure::new("RESPONSE_MALFORMED", error.to_string()))?;
    std::fs::create_dir_all(out)
        .map_err(|error| Failure::new("OUT_UNWRITABLE", format!("{}: {error}", out.display())))?;
    let terms = serde_json::to_string_pretty(&view["terms"])
        .map_err(|error| Failure::new("RESPONSE_MALFORMED", error.to_string()))?;
    write_file(&out.join("campaign.json"), format!("{terms}\n").as_bytes())?;
    let list = get(&format!("/v1/campaigns/{campaign}/registrations"))?.unwrap_or_default();
    write_file(&out.join("registrants.txt"), list.as_bytes())?;
    match get(&format!("/v1/campaigns/{campaign}/draw"))? {
        Some(draw) => {
            write_file(&out.join("draw.json"), draw.as_bytes())?;
            println!(
                "{campaign}: campaign.json, registrants.txt ({} registrants) and draw.json in {}; check with `ecny lottery verify`",
                list.lines().count(),
                out.display()
            );
        }
        None => println!(
            "{campaign}: campaign.json and registrants.txt ({} so far) in {}; not drawn yet",
            list.lines().count(),
            out.display()
        ),
    }
    Ok(())
}

fn text_of<'a>(value: &'a Value, name: &str) -> Result<&'a str, Failure> {
    text(value, name)
}

pub fn run(command: CampaignCommand) -> Result<(), String> {
    match command {
        CampaignCommand::Demo {
            data,
            registrants,
            packets,
        } => {
            if packets == 0 || packets > CAMPAIGN_PACKETS_MAX {
                return Err(format!("--packets must be 1 to {CAMPAIGN_PACKETS_MAX}"));
            }
            if registrants < CAMPAIGN_DEMO_REGISTRANTS_MIN {
                return Err(format!(
                    "--registrants must be at least {CAMPAIGN_DEMO_REGISTRANTS_MIN}: the story spends two winners' packets"
                ));
            }
            let dir = super::demo_dir(&data)?;
            let size = CampaignDemoSize {
                registrants,
                packets,
            };
            demo::run(&dir, &size, &mut |line| println!("{line}"))
                .map_err(|e| format!("campaign demo failed: {e}"))
        }
        CampaignCommand::Report { data, campaign } => run_report(&data, campaign.as_deref()),
        client => run_client(client).map_err(|failure| failure.to_string()),
    }
}

fn run_report(data: &Path, only: Option<&str>) -> Result<(), String> {
    let only: Option<CampaignId> = only
        .map(|text| text.parse().map_err(|e| format!("--campaign: {e}")))
        .transpose()?;
    let state = super::read_existing(data)?;
    let campaigns = state.red_packets().campaigns();
    if campaigns.is_empty() {
        println!(
            "{} holds no red-packet campaigns; `ecny campaign demo` makes one",
            data.display()
        );
        return Ok(());
    }
    for book in campaigns {
        if only.is_some_and(|id| id != book.id()) {
            continue;
        }
        let report = state
            .redemption_report(book.id())
            .map_err(|e| coded(&e, e.code()))?;
        println!("{report}\n");
    }
    if let Some(id) = only {
        state.campaign(id).map_err(|e| coded(&e, e.code()))?;
    }
    Ok(())
}

pub fn run_bench(registrants: usize, packets: u32, campaigns: u32) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench campaign`.");
    }
    if packets == 0 || packets > CAMPAIGN_PACKETS_MAX || campaigns == 0 {
        return Err(format!(
            "need 1..={CAMPAIGN_PACKETS_MAX} packets and at least one campaign"
        ));
    }
    println!(
        "ecny bench campaign: {campaigns} campaigns of {packets} packets among {registrants} registrants, on the state machine"
    );
    let mut report = bench_campaign(registrants, packets, campaigns);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let winners = registrants.min(packets as usize);
    let (low, median, high) = spread(&mut report.distribution);
    println!(
        "distribution (draw re-run over {registrants} registrations, {winners} packet accounts opened and funded): median {:.1} ms (min {:.1}, max {:.1})",
        ms(median),
        ms(low),
        ms(high)
    );
    let (low, median, high) = spread(&mut report.expiry);
    println!(
        "expiry (each packet's remainder swept into the pool, the pool returned): median {:.1} ms (min {:.1}, max {:.1})",
        ms(median),
        ms(low),
        ms(high)
    );
    println!(
        "payments to an eligible merchant paid from packets: {:.0}/s ({} payments)",
        report.packet_payments as f64 / report.packet_payments_elapsed.as_secs_f64(),
        report.packet_payments
    );
    Ok(())
}

fn spread(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    (
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

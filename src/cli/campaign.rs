//! `ecny campaign …` and `ecny bench campaign`: red-packet campaigns in the ledger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use ecny::bench::campaign::campaign as bench_campaign;
use ecny::demo::campaign::{self as demo, CampaignDemoSize, CAMPAIGN_DEMO_REGISTRANTS_MIN};
use ecny::ids::CampaignId;
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

//! `ecny lottery …` and `ecny bench lottery`: files in and out around `ecny::programs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Subcommand;

use ecny::ids::WalletId;
use ecny::programs::campaign::CAMPAIGN_PACKETS_MAX;
use ecny::programs::lottery::REGISTRANTS_MAX;
use ecny::time::DAY_MS;

use super::coded;
use ecny::programs::{
    winner_notices, Campaign, CampaignError, CampaignTerms, Draw, LotteryError, Registrant,
    RegistrantList, Seed, Window,
};

#[derive(Subcommand)]
pub enum LotteryCommand {
    /// Make a fresh secret seed and print it with the commitment to publish in the campaign
    /// file; with --seed, print the commitment of that seed.
    Seed {
        /// A seed made before (64 hex digits), to print its commitment.
        #[arg(long)]
        seed: Option<String>,
    },
    /// Write an example campaign whose registration has just closed, its registrant list and the
    /// sponsor's secret seed into DIR (campaign.json, registrants.txt, seed.hex).
    Sample {
        /// Registrants to make up (distinct pseudonymous wallet ids, one in five opted in to the
        /// offline-wallet trial).
        #[arg(long, default_value_t = 1_000_000)]
        registrants: usize,
        /// Packets of 200 yuan.
        #[arg(long, default_value_t = 100_000)]
        packets: u32,
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "ecny-lottery")]
        dir: PathBuf,
    },
    /// Reveal the seed and draw the winners; writes the draw file to publish.
    Draw {
        /// The published campaign file (JSON).
        #[arg(long)]
        campaign: PathBuf,
        /// The registrant file: one wallet id a line, e.g. W0000000001.
        #[arg(long)]
        registrants: PathBuf,
        /// The sponsor's seed, 64 hex digits; must match the campaign's commitment.
        #[arg(long)]
        seed: String,
        /// Where to write the draw file (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Also write the winners' SMS outbox here, one JSON object a line.
        #[arg(long)]
        outbox: Option<PathBuf>,
    },
    /// Re-run a published draw from the campaign and registrant files and check every winner.
    /// Exits non-zero, naming what differs, if it does not verify.
    Verify {
        /// The published campaign file (JSON), with the seed commitment.
        #[arg(long)]
        campaign: PathBuf,
        /// The published registrant file, in any order.
        #[arg(long)]
        registrants: PathBuf,
        /// The published draw file (JSON), with the revealed seed and the winners.
        #[arg(long)]
        draw: PathBuf,
    },
}

pub fn run(command: LotteryCommand) -> Result<(), String> {
    match command {
        LotteryCommand::Seed { seed } => run_seed(seed),
        LotteryCommand::Sample {
            registrants,
            packets,
            dir,
        } => run_sample(registrants, packets, &dir),
        LotteryCommand::Draw {
            campaign,
            registrants,
            seed,
            out,
            outbox,
        } => run_draw(&campaign, &registrants, &seed, &out, outbox.as_deref()),
        LotteryCommand::Verify {
            campaign,
            registrants,
            draw,
        } => run_verify(&campaign, &registrants, &draw),
    }
}

fn run_seed(seed: Option<String>) -> Result<(), String> {
    let seed = match seed {
        Some(hex) => Seed::from_hex(&hex).map_err(lottery_error)?,
        None => fresh_seed()?,
    };
    println!(
        "seed:       {}  (keep secret until registration closes)",
        seed.to_hex()
    );
    println!(
        "commitment: {}  (publish in the campaign file)",
        seed.commitment()
    );
    Ok(())
}

fn fresh_seed() -> Result<Seed, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no system randomness for a seed: {e}"))?;
    Ok(Seed::from_bytes(bytes))
}

fn run_sample(registrants: usize, packets: u32, dir: &Path) -> Result<(), String> {
    if registrants > REGISTRANTS_MAX {
        return Err(format!("at most {REGISTRANTS_MAX} registrants"));
    }
    if packets == 0 || packets > CAMPAIGN_PACKETS_MAX {
        return Err(format!("packets must be from 1 to {CAMPAIGN_PACKETS_MAX}"));
    }
    let seed = fresh_seed()?;
    let now_ms = now_ms()?;
    // Registration just closed, so the draw may run at once; packets are valid from tomorrow.
    let registration = Window {
        opens_at_ms: now_ms.saturating_sub(3 * DAY_MS),
        closes_at_ms: now_ms,
    };
    let validity = Window {
        opens_at_ms: now_ms + DAY_MS,
        closes_at_ms: now_ms + 17 * DAY_MS,
    };
    let terms = CampaignTerms::suzhou_pilot(packets, seed.commitment(), registration, validity);
    let campaign = Campaign::new(terms).map_err(campaign_error)?;
    let list = RegistrantList::from_registrations(sample_registrants(registrants))
        .map_err(lottery_error)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(&dir.join("campaign.json"), &campaign.to_json())?;
    write(&dir.join("registrants.txt"), &list.to_text())?;
    write(&dir.join("seed.hex"), &format!("{}\n", seed.to_hex()))?;
    let d = dir.display();
    println!(
        "wrote {d}/campaign.json ({} packets of {}), {d}/registrants.txt ({} registrants) and the sponsor's secret {d}/seed.hex",
        campaign.packet_count(),
        campaign.terms().packet_value.yuan_sign(),
        list.len()
    );
    println!("next: ecny lottery draw --campaign {d}/campaign.json --registrants {d}/registrants.txt --seed $(cat {d}/seed.hex) --out {d}/draw.json");
    Ok(())
}

/// Distinct made-up wallet ids spread over the id space, from a fixed generator so two runs
/// give the same list.
fn sample_registrants(count: usize) -> Vec<Registrant> {
    let mut generator = SampleGenerator(0x05ee_d0f5);
    let spacing = (u64::from(u32::MAX) / (count as u64 + 1)).clamp(1, 1_000);
    let mut wallet = 0u64;
    (0..count)
        .map(|_| {
            let draw = generator.next();
            wallet += 1 + draw % spacing;
            Registrant {
                wallet: WalletId(u32::try_from(wallet).expect("spacing keeps ids in u32")),
                offline_trial: (draw >> 32).is_multiple_of(5),
            }
        })
        .collect()
}

/// splitmix64: fast and well mixed; ample for made-up data, never for a draw.
struct SampleGenerator(u64);

impl SampleGenerator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Shuffles `items` (Fisher–Yates; the slight modulo bias does not matter for test data).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn run_draw(
    campaign_path: &Path,
    registrants_path: &Path,
    seed: &str,
    out: &Path,
    outbox: Option<&Path>,
) -> Result<(), String> {
    let campaign = read_campaign(campaign_path)?;
    let list = read_registrants(registrants_path)?;
    let seed = Seed::from_hex(seed).map_err(lottery_error)?;
    let started = Instant::now();
    let draw = Draw::run(&campaign, &list, seed, now_ms()?).map_err(lottery_error)?;
    let elapsed = started.elapsed();
    write(out, &draw.to_json())?;
    println!(
        "{}: {} registrants (list digest {}), {} packets of {}",
        campaign.id(),
        list.len(),
        list.digest(),
        campaign.packet_count(),
        campaign.terms().packet_value.yuan_sign()
    );
    println!(
        "drew {} winners in {:.1} ms; wrote {}",
        draw.winners.len(),
        elapsed.as_secs_f64() * 1000.0,
        out.display()
    );
    if let Some(path) = outbox {
        let mut lines = String::new();
        for sms in winner_notices(&campaign, &draw) {
            let line = serde_json::json!({
                "campaign": sms.campaign.to_string(),
                "packet": sms.packet,
                "wallet": sms.wallet.to_string(),
                "text": sms.text,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        write(path, &lines)?;
        println!(
            "wrote {} SMS texts for the winners' operators to {}",
            draw.winners.len(),
            path.display()
        );
    }
    Ok(())
}

fn run_verify(
    campaign_path: &Path,
    registrants_path: &Path,
    draw_path: &Path,
) -> Result<(), String> {
    let campaign = read_campaign(campaign_path)?;
    let list = read_registrants(registrants_path)?;
    let draw = Draw::from_json(&read(draw_path)?)
        .map_err(|e| coded(format!("{}: {e}", draw_path.display()), e.code()))?;
    let winners = draw
        .verify(&campaign, &list)
        .map_err(|e| coded(format!("draw does not verify: {e}"), e.code()))?;
    println!("seed matches the commitment {}", campaign.seed_commitment());
    println!(
        "registrant list matches: {} registrants, digest {}",
        list.len(),
        list.digest()
    );
    println!("verified: {winners} winners");
    Ok(())
}

/// `ecny bench lottery`: draw time for `registrants` and `packets`, median of `runs`.
pub fn run_bench(registrants: usize, packets: u32, runs: usize) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench lottery`.");
    }
    if registrants > REGISTRANTS_MAX || packets == 0 || packets > CAMPAIGN_PACKETS_MAX || runs == 0
    {
        return Err(format!("need 0..={REGISTRANTS_MAX} registrants, 1..={CAMPAIGN_PACKETS_MAX} packets and at least one run"));
    }
    println!("ecny bench lottery: {registrants} registrants, {packets} packets, {runs} runs");
    let registration = Window {
        opens_at_ms: 0,
        closes_at_ms: DAY_MS,
    };
    let validity = Window {
        opens_at_ms: DAY_MS,
        closes_at_ms: 2 * DAY_MS,
    };
    let mut registrations = sample_registrants(registrants);
    // Registrations arrive in no particular order: the canonical list must sort them.
    SampleGenerator(1).shuffle(&mut registrations);
    let (mut canonical, mut drawing, mut verifying) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let seed = Seed::from_bytes([run as u8; 32]);
        let terms = CampaignTerms::suzhou_pilot(packets, seed.commitment(), registration, validity);
        let campaign = Campaign::new(terms).map_err(|e| e.to_string())?;

        let started = Instant::now();
        let list =
            RegistrantList::from_registrations(registrations.clone()).map_err(|e| e.to_string())?;
        canonical.push(started.elapsed());

        let started = Instant::now();
        let draw = Draw::run(&campaign, &list, seed, DAY_MS).map_err(|e| e.to_string())?;
        drawing.push(started.elapsed());

        let started = Instant::now();
        let verified = draw.verify(&campaign, &list).map_err(|e| e.to_string())?;
        verifying.push(started.elapsed());
        assert_eq!(verified, registrants.min(packets as usize));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "draw ({} winners from the canonical list): median {:>8.1} ms",
        registrants.min(packets as usize),
        ms(median(&mut drawing))
    );
    println!(
        "canonical list (sort, de-duplicate, SM3 digest): median {:>8.1} ms",
        ms(median(&mut canonical))
    );
    println!(
        "verify (re-run the draw, compare every winner): median {:>8.1} ms",
        ms(median(&mut verifying))
    );
    Ok(())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn read_campaign(path: &Path) -> Result<Campaign, String> {
    Campaign::from_json(&read(path)?)
        .map_err(|e| coded(format!("{}: {e}", path.display()), e.code()))
}

fn read_registrants(path: &Path) -> Result<RegistrantList, String> {
    RegistrantList::parse(&read(path)?)
        .map_err(|e| coded(format!("{}: {e}", path.display()), e.code()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn now_ms() -> Result<u64, String> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_string())?;
    u64::try_from(since_epoch.as_millis())
        .map_err(|_| "the system clock is far in the future".to_string())
}

/// A lottery error with its stable code, as every `ecny` command shows errors.
fn lottery_error(error: LotteryError) -> String {
    coded(&error, error.code())
}

fn campaign_error(error: CampaignError) -> String {
    coded(&error, error.code())
}

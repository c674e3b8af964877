//! Command-line interface of `ecny`.

mod analytics;
mod api_examples;
mod campaign;
mod central_bank;
mod client;
mod crash_campaign;
mod device;
mod http;
mod load;
mod lottery;
mod merchant;
mod sim;
mod staff;
mod wallet;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use ecny::audit::audit;
use ecny::bench::api::ApiBenchConfig;
use ecny::bench::{self, LedgerBenchConfig};
use ecny::demo;
use ecny::node::Node;
use ecny::server::config::{self, ServeSettings, DATA_DEFAULT};
use ecny::server::Server;
use ecny::state_machine::StateMachine;

/// ecny — a retail central-bank digital currency platform (e-CNY in shape): the central bank
/// issues, operators run wallets, and a durable double-entry ledger records every fen.
#[derive(Parser)]
#[command(
    name = "ecny",
    version,
    about,
    long_about = None,
    after_help = "Start with `ecny demo`, then `ecny audit`; every command's --data defaults to ./ecny-data; `ecny offline demo` for hardware wallets; `ecny lottery sample` for red-packet lotteries; `ecny serve` with `ecny wallet` and `ecny merchant` to play both sides of a payment."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the system on a fresh data directory: issuance to two operators, wallets,
    /// exchange, payments across operators, a class-4 limit, deposit back, audit and restart.
    Demo {
        /// Data directory: new, empty, made by a demo (recreated) or without operators.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
    /// Check every invariant on a data directory and print the money supply by ledger and
    /// by operator. Exits non-zero if an invariant is broken.
    Audit {
        /// Data directory to audit.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
    /// Write a snapshot of a data directory so the next start replays only what comes after.
    Snapshot {
        /// Data directory to snapshot.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
    /// Serve the HTTP API (see /docs). Operators authenticate with the bearer token in
    /// DIR/keys/OPxx.token, the central bank with DIR/keys/central-bank.token (created on first
    /// start). Stops cleanly on ctrl-c. Each setting comes from its flag, else its ECNY_*
    /// environment variable, else the config file, else its default.
    Serve {
        /// TOML file with any of: listen, data, log, body_limit_bytes,
        /// auth_failures_per_minute_max, client_timeout_ms [env: ECNY_CONFIG]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory [env: ECNY_DATA] [default: ecny-data]
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free one [env: ECNY_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Log filter, e.g. "info,ecny=debug" [env: ECNY_LOG, then RUST_LOG] [default: info]
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
        /// Largest request body in bytes [env: ECNY_BODY_LIMIT_BYTES] [default: 65536]
        #[arg(long, value_name = "BYTES", value_parser = config::parse_body_limit_bytes)]
        body_limit_bytes: Option<usize>,
        /// Wrong bearer tokens one client address may present a minute before it is answered 429
        /// [env: ECNY_AUTH_FAILURES_PER_MINUTE_MAX] [default: 20]
        #[arg(long, value_name = "COUNT", value_parser = config::parse_auth_failures_per_minute)]
        auth_failures_per_minute_max: Option<u32>,
        /// Milliseconds a client may take over a request's headers or body, or stay idle on a
        /// keep-alive connection, before it is cut off [env: ECNY_CLIENT_TIMEOUT_MS]
        /// [default: 10000]
        #[arg(long, value_name = "MS", value_parser = config::parse_client_timeout_ms)]
        client_timeout_ms: Option<u64>,
        /// URL the winners' red-packet SMS notices are POSTed to as JSON, retried with backoff
        /// [env: ECNY_SMS_GATEWAY]
        #[arg(long, value_name = "URL")]
        sms_gateway: Option<String>,
    },
    /// A holder's wallet app against a running `ecny serve`: open, bank account and top-up, pay
    /// QR codes and wallets, show payment codes, push sub-wallets to shops.
    Wallet(wallet::WalletArgs),
    /// A merchant against a running `ecny serve`: onboard, terminals, printed and order QR codes,
    /// charge payment codes and sub-wallets, refund, payments and settlement.
    Merchant(merchant::MerchantArgs),
    /// Hardware wallets against a running `ecny serve`: issue, load, unload, sync, status, block,
    /// the revocation list; the card's own messages carried as hex.
    Device(device::DeviceArgs),
    /// An operator's staff against a running `ecny serve`: the administrator registers and
    /// revokes staff; a teller opens bank accounts with cash; a KYC officer verifies identities.
    Staff(staff::StaffArgs),
    /// The central bank against a running `ecny serve`: admit operators (serving at once),
    /// reserves, issuance and redemption, suspension, money in circulation by operator and form.
    CentralBank(central_bank::CentralBankArgs),
    /// One valid request for every API operation, made on a running `ecny serve` by the party
    /// allowed to: sets up staff, holders, a merchant and its terminals, then writes the server's
    /// OpenAPI document with these requests as examples, and schemathesis.toml with each
    /// operation's credential.
    ApiExamples(api_examples::ApiExamplesArgs),
    /// Dual offline: hardware wallets that pay each other with no network.
    #[command(subcommand)]
    Offline(OfflineCommand),
    /// Red-packet lottery: commit to a seed, draw winners reproducibly, verify a published draw.
    #[command(subcommand)]
    Lottery(lottery::LotteryCommand),
    /// Red-packet campaigns in the ledger: a narrated campaign, redemption reports.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Measure throughput and footprint (build with --release).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A synthetic city through the real platform: wallets at three operators, merchants, a
    /// month of payments on every channel, labelled suspicious patterns mixed in.
    Simulate {
        /// People, each with a wallet at one of three operators.
        #[arg(long, default_value_t = 10_000)]
        wallets: usize,
        /// Merchants, across twelve categories and Suzhou's districts.
        #[arg(long, default_value_t = 500)]
        merchants: usize,
        /// Days of traffic, from 2024-03-01.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// The same seed gives the same city, ledger and labels.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// New or empty data directory.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// Where the labels go. Default: DIR/labels.csv.
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// The analysis center over a data directory's ledger: statistics, alerts with their
    /// explanations, and precision and recall per rule against labels.
    Analyze {
        /// Data directory holding the ledger (with --server: where the central bank's token is).
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// Labels from `ecny simulate`, to score the rules against.
        #[arg(long, conflicts_with = "server")]
        labels: Option<PathBuf>,
        /// Write statistics.csv and alerts.csv into this directory.
        #[arg(long, conflicts_with = "server")]
        csv: Option<PathBuf>,
        /// Read a running `ecny serve`'s analysis center instead of the data directory.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// With --server: a staff member's token (an operator's own figures); the central
        /// bank's, from DIR/keys, otherwise.
        #[arg(long, requires = "server")]
        token: Option<String>,
    },
    /// One wallet's account statement as ISO 20022 camt.053.001.08 XML, on standard output.
    Statement {
        /// Data directory holding the ledger.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// Wallet id, e.g. W0000000042.
        #[arg(long)]
        wallet: String,
        /// First day, YYYY-MM-DD (China time).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (China time).
        #[arg(long)]
        to: String,
        /// Ask a running `ecny serve` instead of reading the data directory.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// With --server: a holder's session or a staff member's token; the central bank's,
        /// from DIR/keys, otherwise.
        #[arg(long, requires = "server")]
        token: Option<String>,
    },
    /// Work an alert: explain it, then close it with a reason. Kept in DIR/analytics.
    #[command(subcommand)]
    Alerts(analytics::AlertsCommand),
    /// Crash campaign: the real `ecny serve` under holder-signed HTTP payments, killed with
    /// SIGKILL at random moments and restarted on the same data directory, round after round;
    /// after each restart every acknowledged payment is read back, every unanswered one retried
    /// under its key, every balance and the audit checked.
    CrashCampaign(crash_campaign::CrashCampaignArgs),
    /// The whole system in process under a seeded random workload with faults injected
    /// (crashes around group commits, torn and lost writes, corrupted snapshots, dropped,
    /// duplicated, delayed and reordered requests, torn and cloned secure elements, terminals'
    /// clocks ahead), checked after every step against what every party was told.
    Sim(sim::SimArgs),
    /// Load generator for the crash test: pays in a loop and prints each acknowledged transfer.
    #[command(hide = true)]
    CrashLoad {
        /// Data directory the load writes to.
        #[arg(long)]
        data: PathBuf,
        /// Seed of the payments' amounts and parties.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum OfflineCommand {
    /// Two phones in airplane mode pay 66.60 at a snack shop; a SIM wallet pays a phone bill; a
    /// student card pays at the canteen; a cloned card is caught at sync. Ends with the audit.
    Demo {
        /// Data directory: new, empty, made by a demo (recreated) or without operators.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The registration center with durable group commit, fed operator batches; then
    /// SM2-signed transfers through the operator tier; then a restart from the log.
    Ledger {
        /// Wallets, split between two operators.
        #[arg(long, default_value_t = 100_000)]
        wallets: usize,
        /// Holder-signed transfers in operator batches straight into the center, which verifies
        /// each signature at its door (signed before the clock starts).
        #[arg(long, default_value_t = 200_000)]
        transfers: usize,
        /// Holder-signed transfers verified by the operator tier.
        #[arg(long, default_value_t = 20_000)]
        signed: usize,
        /// Operator batches of 8,192 transfers per group commit (one fdatasync each).
        #[arg(long, default_value_t = 4)]
        batches_per_commit: usize,
        /// Scratch data directory (removed first). Default: a fresh directory under /tmp.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Holder-signed payments per second through `ecny serve` over loopback HTTP from many
    /// keep-alive connections, with latency, beside the operator tier's signed rate measured in
    /// the same run.
    Api {
        /// Funded class-4 wallets, split between two operators.
        #[arg(long, default_value_t = 10_000)]
        wallets: usize,
        /// Holder-signed payments sent over HTTP (signed before the clock starts).
        #[arg(long, default_value_t = 60_000)]
        payments: usize,
        /// Keep-alive connections sending at once.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Holder-signed transfers through the operator tier without HTTP, for the ratio.
        #[arg(long, default_value_t = 20_000)]
        signed: usize,
    },
    /// Time and the analysis center on a running server under HTTP load: how late recurring
    /// payments are booked (while payments arrive, and after, when only the scheduler's entries
    /// bring them) and how fresh the live statistics are, event to figure.
    Live {
        /// Funded class-4 wallets, split between two operators.
        #[arg(long, default_value_t = 4_000)]
        wallets: usize,
        /// Holder-signed payments sent over HTTP: the load.
        #[arg(long, default_value_t = 20_000)]
        payments: usize,
        /// Keep-alive connections sending at once.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Recurring payments, one contract each (at most half the wallets).
        #[arg(long, default_value_t = 1_000)]
        contracts: usize,
        /// Milliseconds over which they fall due, one after another, from 3 s after the start.
        #[arg(long, default_value_t = 10_000)]
        due_over_ms: u64,
    },
    /// Red packets through `ecny serve`: holder-signed registrations per second over HTTP, and
    /// the time from the draw to every winner's SMS at a local gateway.
    Packets {
        /// Registrations sent over HTTP, each by its own wallet.
        #[arg(long, default_value_t = 20_000)]
        registrations: usize,
        /// Winners drawn and told by SMS.
        #[arg(long, default_value_t = 100_000)]
        winners: u32,
        /// Keep-alive connections sending registrations at once.
        #[arg(long, default_value_t = 16)]
        connections: usize,
    },
    /// Offline records settled per second at sync: through the operator tier (SM2 per record)
    /// and into the registration center alone.
    Offline {
        /// Secure elements, each with its certificate and wallet.
        #[arg(long, default_value_t = 1_000)]
        devices: usize,
        /// Offline records settled at sync.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
    },
    /// Offline records settled per second through `ecny serve`: every card's sync over loopback
    /// HTTP (the center's nonce, then the card's attestation), one request after another.
    Devices {
        /// Visitor cards, half at each operator.
        #[arg(long, default_value_t = 200)]
        devices: usize,
        /// Offline payments among them, each reported by its payer and its payee.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
    /// Memory per wallet with many class-4 wallets in the state machine.
    Memory {
        /// Class-4 wallets opened in the state machine.
        #[arg(long, default_value_t = 10_000_000)]
        wallets: usize,
    },
    /// Red-packet lottery: draw, canonical list and verify times (median of several runs).
    Lottery {
        /// Registrations, distinct wallets arriving in no particular order.
        #[arg(long, default_value_t = 1_000_000)]
        registrants: usize,
        /// Packets, one winner each.
        #[arg(long, default_value_t = 100_000)]
        packets: u32,
        /// Draws timed; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Red-packet campaigns in the registration center: distribution (the draw re-run and the
    /// packets handed out), payments from packets, expiry; one sample per campaign.
    Campaign {
        /// Registrants, each registered for every campaign.
        #[arg(long, default_value_t = 1_000_000)]
        registrants: usize,
        /// Packets of 200 yuan per campaign.
        #[arg(long, default_value_t = 100_000)]
        packets: u32,
        /// Campaigns, one sample each.
        #[arg(long, default_value_t = 5)]
        campaigns: u32,
    },
}

/// `ecny … | head`: when the reader goes away, stop as Unix tools do instead of panicking in
/// `println!`. The server keeps Rust's default (writes fail, the process goes on).
fn quit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread exists; it only resets one signal's
    // disposition to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Lets a value that looks like a negative number (`--amount -5`) reach its option's parser,
/// which says why it is refused, instead of being taken for an unknown flag.
fn negative_numbers_reach_the_parsers(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let takes_values = arg.get_action().takes_values();
            arg.allow_negative_numbers(takes_values)
        })
        .mut_subcommands(negative_numbers_reach_the_parsers)
}

fn parse_arguments() -> Cli {
    let parsed = negative_numbers_reach_the_parsers(Cli::command())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    parsed.unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit() // --help and --version, on standard output
        }
        exit_with_error(&argument_error(&error));
        std::process::exit(USAGE_EXIT_CODE)
    })
}

/// What shells and the argument parser use for a command line that does not parse.
const USAGE_EXIT_CODE: i32 = 2;

/// An argument that does not parse, in the one error form: the parser's message with the code
/// of what was wrong (`MALFORMED_AMOUNT`, `MALFORMED_ID`, else `ARGUMENT_INVALID`), then its tip.
fn argument_error(error: &clap::Error) -> String {
    let source = std::error::Error::source(error);
    let code = if source.is_some_and(|s| s.is::<ecny::amount::AmountError>()) {
        "MALFORMED_AMOUNT"
    } else if source.is_some_and(|s| s.is::<ecny::ids::IdParseError>()) {
        "MALFORMED_ID"
    } else {
        "ARGUMENT_INVALID"
    };
    let rendered = error.render().to_string();
    let text = rendered.trim_start_matches("error: ").trim_end();
    let (message, tip) = text.split_once("\n\n").unwrap_or((text, ""));
    format!("{}\n\n{tip}", coded(message, code))
        .trim_end()
        .to_string()
}

pub fn main() -> ExitCode {
    let cli = parse_arguments();
    if !matches!(cli.command, Command::Serve { .. }) {
        quit_quietly_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Wallet(args) => return client::finish(wallet::run(args)),
        Command::Campaign(command) if campaign::is_client(&command) => {
            return client::finish(campaign::run_client(command))
        }
        Command::Merchant(args) => return client::finish(merchant::run(args)),
        Command::Device(args) => return client::finish(device::run(args)),
        Command::Staff(args) => return client::finish(staff::run(args)),
        Command::CentralBank(args) => return client::finish(central_bank::run(args)),
        Command::ApiExamples(args) => return client::finish(api_examples::run(args)),
        Command::CrashCampaign(args) => return client::finish(crash_campaign::run(args)),
        Command::Demo { data } => run_demo(&data),
        Command::Offline(OfflineCommand::Demo { data }) => run_offline_demo(&data),
        Command::Audit { data } => run_audit(&data),
        Command::Snapshot { data } => run_snapshot(&data),
        Command::Serve {
            config,
            data,
            listen,
            log,
            body_limit_bytes,
            auth_failures_per_minute_max,
            client_timeout_ms,
            sms_gateway,
        } => {
            let flags = ServeSettings {
                listen,
                data,
                log,
                body_limit_bytes,
                auth_failures_per_minute_max,
                client_timeout_ms,
                sms_gateway,
            };
            run_serve(flags, config.as_deref())
        }
        Command::Bench(BenchCommand::Ledger {
            wallets,
            transfers,
            signed,
            batches_per_commit,
            data,
        }) => {
            let config = LedgerBenchConfig {
                wallets,
                transfers,
                signed_transfers: signed,
                batches_per_commit,
            };
            run_bench_ledger(data, &config)
        }
        Command::Bench(BenchCommand::Api {
            wallets,
            payments,
            connections,
            signed,
        }) => run_bench_api(&ApiBenchConfig {
            wallets,
            payments,
            connections,
            ledger_signed: signed,
        }),
        Command::Bench(BenchCommand::Live {
            wallets,
            payments,
            connections,
            contracts,
            due_over_ms,
        }) => run_bench_live(&bench::live::LiveBenchConfig {
            wallets,
            payments,
            connections,
            contracts,
            due_over_ms,
        }),
        Command::Bench(BenchCommand::Memory { wallets }) => run_bench_memory(wallets),
        Command::Bench(BenchCommand::Packets {
            registrations,
            winners,
            connections,
        }) => run_bench_packets(&bench::packets::PacketsBenchConfig {
            registrations,
            winners,
            connections,
        }),
        Command::Bench(BenchCommand::Offline { devices, records }) => {
            run_bench_offline(devices, records)
        }
        Command::Bench(BenchCommand::Devices { devices, records }) => {
            run_bench_devices(devices, records)
        }
        Command::Bench(BenchCommand::Lottery {
            registrants,
            packets,
            runs,
        }) => lottery::run_bench(registrants, packets, runs),
        Command::Bench(BenchCommand::Campaign {
            registrants,
            packets,
            campaigns,
        }) => campaign::run_bench(registrants, packets, campaigns),
        Command::Lottery(command) => lottery::run(command),
        Command::Campaign(command) => campaign::run(command),
        Command::CrashLoad { data, seed } => load::run(&data, seed),
        Command::Sim(args) => sim::run(args),
        Command::Simulate {
            wallets,
            merchants,
            days,
            seed,
            data,
            labels,
        } => {
            let config = ecny::city::SimulationConfig {
                wallets,
                merchants,
                days,
                seed,
            };
            analytics::run_simulate(&data, &config, labels)
        }
        Command::Analyze {
            data,
            server: Some(server),
            token,
            ..
        } => analytics::run_analyze_remote(&server, token.as_deref(), &data),
        Command::Analyze {
            data, labels, csv, ..
        } => analytics::run_analyze(&data, labels, csv),
        Command::Statement {
            data,
            wallet,
            from,
            to,
            server: Some(server),
            token,
        } => {
            analytics::run_statement_remote(&server, token.as_deref(), &data, &wallet, (&from, &to))
        }
        Command::Statement {
            data,
            wallet,
            from,
            to,
            ..
        } => analytics::run_statement(&data, &wallet, &from, &to),
        Command::Alerts(command) => analytics::run_alerts(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => exit_with_error(&message),
    }
}

/// A failure with its stable code, as every command shows it: `message [CODE]`.
pub fn coded(message: impl std::fmt::Display, code: &str) -> String {
    format!("{message} [{code}]")
}

/// The one place a command's failure reaches the terminal: `error: message [CODE]` on standard
/// error (the form the argument parser's own errors take), and a non-zero exit.
pub fn exit_with_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Marks a directory the demo created, so that only such a directory is ever recreated.
const DEMO_MARKER: &str = ".ecny-demo";

fn run_demo(data: &Path) -> Result<(), String> {
    let dir = demo_dir(data)?;
    demo::run(&dir, &mut |line| println!("{line}")).map_err(|e| format!("demo failed: {e}"))?;
    println!(
        "\nThe data directory {} holds the durable log; try `ecny audit{}`, or `ecny serve{}` to play both sides.",
        dir.display(),
        data_flag(&dir),
        data_flag(&dir),
    );
    Ok(())
}

fn run_offline_demo(data: &Path) -> Result<(), String> {
    let dir = demo_dir(data)?;
    demo::offline::run(&dir, &mut |line| println!("{line}"))
        .map_err(|e| format!("offline demo failed: {e}"))
}

/// ` --data DIR` to repeat in a hint, or nothing for the default directory.
fn data_flag(dir: &Path) -> String {
    if dir == Path::new(DATA_DEFAULT) {
        String::new()
    } else {
        format!(" --data {}", dir.display())
    }
}

/// A fresh directory for a demo: `dir` if new or empty; recreated when a demo made it or when it
/// holds a ledger without operators (what `ecny serve` leaves on a new directory). Anything else
/// may hold someone's money and is refused.
fn demo_dir(dir: &Path) -> Result<PathBuf, String> {
    let occupied = dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .next()
            .is_some();
    if occupied {
        if !dir.join(DEMO_MARKER).exists() && !holds_no_operators(dir)? {
            return Err(format!(
                "{} holds a ledger with operators that no demo made; pass --data with a new path",
                dir.display()
            ));
        }
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        b"made by an ecny demo; recreated on each run\n",
    )
    .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Whether `dir` holds an ecny ledger in which no operator was ever admitted.
fn holds_no_operators(dir: &Path) -> Result<bool, String> {
    if !dir.join("log").exists() {
        return Ok(false);
    }
    let (node, _) = Node::open(dir).map_err(|e| coded(&e, e.code()))?;
    Ok(node.state().operators().is_empty())
}

fn require_data(data: &Path) -> Result<(), String> {
    if data.join("log").exists() {
        return Ok(());
    }
    Err(format!(
        "{} holds no ecny data (no log directory); run `ecny demo --data {}` to make some",
        data.display(),
        data.display()
    ))
}

/// Opens the data directory as its owner: takes its lock, cuts a torn tail, sets a damaged
/// snapshot aside.
fn open_existing(data: &Path) -> Result<Node, String> {
    require_data(data)?;
    let (node, recovery) = Node::open(data).map_err(|e| coded(&e, e.code()))?;
    for damaged in &recovery.damaged_snapshots {
        println!(
            "note: set a damaged snapshot aside as {} ({}); recovered from an older one and the log",
            damaged.path.display(),
            damaged.reason
        );
    }
    if let Some(torn) = &recovery.log.torn_tail {
        println!(
            "note: cut a torn tail of {} bytes at offset {} in {} (an unacknowledged write)",
            torn.bytes_cut,
            torn.offset,
            torn.segment.display()
        );
    }
    Ok(node)
}

/// Reads the data directory without changing it and without its lock, so it works beside a
/// running `ecny serve`: for audits and reports.
fn read_existing(data: &Path) -> Result<StateMachine, String> {
    require_data(data)?;
    let (state, recovery) = Node::read_only(data).map_err(|e| coded(&e, e.code()))?;
    for damaged in &recovery.damaged_snapshots {
        println!(
            "note: snapshot {} is damaged ({}); read from an older one and the log",
            damaged.path.display(),
            damaged.reason
        );
    }
    if let Some(torn) = &recovery.log.torn_tail {
        println!(
            "note: read up to offset {} of {}; the {} bytes after it are an incomplete write \
             (left as they are: the node cuts them when it next starts)",
            torn.offset,
            torn.segment.display(),
            torn.bytes_cut
        );
    }
    Ok(state)
}

fn run_audit(data: &Path) -> Result<(), String> {
    let state = read_existing(data)?;
    let report = audit(&state);
    println!("{report}");
    if report.is_clean() {
        Ok(())
    } else {
        Err(format!("{} invariant(s) broken", report.violations.len()))
    }
}

fn run_serve(flags: ServeSettings, config_file: Option<&Path>) -> Result<(), String> {
    let config = config::resolve(flags, config_file, &|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .map_err(|e| format!("log filter {:?} is not valid: {e}", config.log_filter))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let server = Server::start(&config.server).map_err(|e| e.to_string())?;
    println!(
        "ecny serving on http://{} (docs at /docs); tokens in {}",
        server.addr(),
        config.server.data.join("keys").display()
    );
    if server.operators().is_empty() {
        eprintln!("{}", no_operators_warning(&config.server.data));
    }
    server.wait().map_err(|e| e.to_string())
}

/// What `ecny serve` says on a data directory without operators: nothing but the central bank
/// can act there, so it says how to get a directory that has some.
fn no_operators_warning(data: &Path) -> String {
    let flag = data_flag(data);
    format!(
        "warning: {} holds no operators, so there is no operator token: opening a wallet or \
         onboarding a shop will fail. Stop the server (ctrl-c), run `ecny demo{flag}` to fill \
         the directory with two funded operators (OP01 Jiangnan, OP02 Lakeside), then start \
         `ecny serve{flag}` again.",
        data.display()
    )
}

fn run_snapshot(data: &Path) -> Result<(), String> {
    let mut node = open_existing(data)?;
    let path = node.snapshot().map_err(|e| e.to_string())?;
    println!("snapshot written: {}", path.display());
    Ok(())
}

fn run_bench_ledger(data: Option<PathBuf>, config: &LedgerBenchConfig) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench ledger`.");
    }
    let dir = data
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ecny-bench-{}", std::process::id())));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    println!(
        "ecny bench ledger: {} wallets, {} transfers into the center, {} through the operator tier, data in {}",
        config.wallets,
        config.transfers,
        config.signed_transfers,
        dir.display()
    );
    let report = bench::ledger(&dir, config).map_err(|e| e.to_string())?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "center's door (digests, operator and holder signatures, every core): {:>12.0} transfers/s",
        report.door_per_second()
    );
    println!(
        "durable transfers/s behind the door (apply, log, group commit): {:>12.0}",
        report.transfers_per_second()
    );
    println!(
        "  door then apply, one after the other in one process: {:.0} transfers/s (the door is stateless and scales out over processes)",
        report.transfers as f64 / (report.door_elapsed + report.elapsed).as_secs_f64()
    );
    println!(
        "  accepted {} of {} in {:.2} s; commit latency p50 {:.2} ms, p99 {:.2} ms",
        report.accepted,
        report.transfers,
        report.elapsed.as_secs_f64(),
        ms(report.commit_p50),
        ms(report.commit_p99)
    );
    println!(
        "  log bytes per transfer: {:.1}",
        report.log_bytes_per_transfer
    );
    if let Some(bytes) = report.bytes_per_wallet {
        println!(
            "  resident bytes per wallet (state, keys, phone index, funding history): {bytes:.0}"
        );
    }
    // Two cores, and each signature verified twice: by the operator tier and at the center's door.
    let ceiling = report.verify_per_core;
    println!(
        "SM2 verifications/s on one core: {:>12.0}",
        report.verify_per_core
    );
    println!(
        "signed transfers/s through the operator tier: {:>12.0}  ({:.0} % of 2 cores × per-core verify rate / 2 verifications)",
        report.signed_per_second(),
        100.0 * report.signed_per_second() / ceiling
    );
    println!(
        "restart: replayed {} log entries in {:.2} s",
        report.recovered_entries,
        report.recovery.as_secs_f64()
    );
    println!(
        "restart from a snapshot of the same state: {:.2} s",
        report.snapshot_recovery.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn run_bench_live(config: &bench::live::LiveBenchConfig) -> Result<(), String> {
    use bench::live::percentile;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench live`.");
    }
    if config.connections == 0
        || config.payments == 0
        || config.wallets < 2 * config.contracts.max(1)
    {
        return Err(
            "bench live needs a connection, a payment, and two wallets for each contract".into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("ecny-bench-live-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    println!(
        "ecny bench live: {} wallets, {} signed payments over HTTP from {} connections, {} recurring payments due over {} ms, data in {}",
        config.wallets,
        config.payments,
        config.connections,
        config.contracts,
        config.due_over_ms,
        dir.display()
    );
    let result = bench::live::live(&dir, config);
    std::fs::remove_dir_all(&dir).ok();
    let report = result.map_err(|e| e.to_string())?;
    println!(
        "load: {} payments in {:.2} s ({:.0}/s)",
        report.payments,
        report.load.as_secs_f64(),
        report.payments as f64 / report.load.as_secs_f64()
    );
    let show = |what: &str, samples: &[u64]| {
        println!(
            "{what}: {} samples, p50 {} ms, p99 {} ms, max {} ms",
            samples.len(),
            percentile(samples, 50),
            percentile(samples, 99),
            samples.last().copied().unwrap_or(0)
        );
    };
    show(
        "scheduler lateness under load (due to booked)",
        &report.late_under_load_ms,
    );
    show(
        "scheduler lateness with no traffic (due to booked)",
        &report.late_idle_ms,
    );
    println!("  the scheduler's entries: {}", report.scheduler_ticks);
    show(
        "statistics freshness (transfer to figure)",
        &report.freshness_ms,
    );
    Ok(())
}

fn run_bench_packets(config: &bench::packets::PacketsBenchConfig) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench packets`.");
    }
    if config.registrations == 0 || config.winners == 0 || config.connections == 0 {
        return Err(
            "bench packets needs at least 1 registration, 1 winner and 1 connection".into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("ecny-bench-packets-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    println!(
        "ecny bench packets: {} signed registrations over HTTP from {} keep-alive connections, then {} winners told by SMS; data in {}",
        config.registrations,
        config.connections,
        config.winners,
        dir.display()
    );
    let result = bench::packets::packets(&dir, config);
    std::fs::remove_dir_all(&dir).ok();
    let report = result.map_err(|e| e.to_string())?;
    println!(
        "registrations: {:.0}/s ({} in {:.2} s)",
        report.registrations_per_second(),
        report.registrations,
        report.registration_elapsed.as_secs_f64()
    );
    println!(
        "draw to every winner told: {:.2} s for {} winners ({:.0} SMS/s through the outbox's webhook)",
        report.notify_elapsed.as_secs_f64(),
        report.winners,
        f64::from(report.winners) / report.notify_elapsed.as_secs_f64()
    );
    Ok(())
}

fn run_bench_api(config: &ApiBenchConfig) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures mean little. Use `cargo run --release -- bench api`.");
    }
    if config.wallets < 2
        || config.connections == 0
        || config.payments == 0
        || config.ledger_signed == 0
    {
        return Err(
            "bench api needs at least 2 wallets, 1 connection, 1 payment and 1 signed transfer"
                .into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("ecny-bench-api-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    println!(
        "ecny bench api: {} wallets, {} signed payments over HTTP from {} keep-alive connections, data in {}",
        config.wallets,
        config.payments,
        config.connections,
        dir.display()
    );
    let result = bench::api::api(&dir, config);
    std::fs::remove_dir_all(&dir).ok();
    let report = result.map_err(|e| e.to_string())?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "signed payments/s over HTTP: {:>12.0}",
        report.payments_per_second()
    );
    println!(
        "  {} payments answered 201 in {:.2} s; latency p50 {:.2} ms, p99 {:.2} ms",
        report.payments,
        report.elapsed.as_secs_f64(),
        ms(report.latency_p50),
        ms(report.latency_p99)
    );
    println!(
        "signed transfers/s through the operator tier, no HTTP (as in bench ledger): {:>12.0}",
        report.ledger_signed_per_second()
    );
    println!(
        "HTTP over the operator tier: {:.2} ({:.0} %)",
        report.ratio(),
        100.0 * report.ratio()
    );
    Ok(())
}

fn run_bench_offline(devices: usize, records: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ecny-bench-offline-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    }
    println!("ecny bench offline: {devices} secure elements, {records} offline records");
    let report = bench::offline_sync(&dir, devices, records).map_err(|e| e.to_string())?;
    let rate = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!(
        "records settled/s through the operator tier and the center (SE signatures verified by both): {:>10.0}",
        rate(report.records, report.verified_elapsed)
    );
    println!(
        "records settled/s by the registration center, SE signatures checked at its door: {:>10.0}",
        rate(report.center_records, report.center_elapsed)
    );
    println!(
        "  ({} SE signatures verified for {} records, each reported by both sides)",
        report.center_verifications, report.center_records
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn run_bench_devices(devices: usize, records: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ecny-bench-devices-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    }
    println!("ecny bench devices: {devices} visitor cards, {records} offline payments, synced through ecny serve");
    let report = bench::device_sync_http(&dir, devices, records).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&dir).ok();
    let seconds = report.elapsed.as_secs_f64();
    println!(
        "offline records settled/s through the live server: {:>10.0} ({} payments settled in {:.2} s)",
        report.settled as f64 / seconds,
        report.settled,
        seconds
    );
    println!(
        "records reported/s (payer's and payee's copies): {:>10.0} ({} in {} syncs, {:.2} ms a sync)",
        report.reported as f64 / seconds,
        report.reported,
        report.syncs,
        seconds * 1000.0 / report.syncs.max(1) as f64
    );
    Ok(())
}

fn run_bench_memory(wallets: usize) -> Result<(), String> {
    println!("ecny bench memory: {wallets} class-4 wallets in the state machine");
    let (bytes, state) = bench::memory_per_wallet(wallets);
    println!(
        "resident bytes per wallet: {bytes:.0} (wallets: {})",
        state.wallets().len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument of every command, with the command's path.
    fn options_without_help(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            options_without_help(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn a_negative_amount_reaches_the_amount_parser_and_hears_why() {
        let command = super::negative_numbers_reach_the_parsers(Cli::command());
        let refused = command
            .try_get_matches_from(["ecny", "wallet", "top-up", "--amount", "-5"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("amount \"-5\" has a sign; an amount takes no sign"),
            "{refused}"
        );
        let command = super::negative_numbers_reach_the_parsers(Cli::command());
        let matches = command
            .try_get_matches_from(["ecny", "wallet", "top-up", "--amount", "5"])
            .unwrap();
        assert!(<Cli as clap::FromArgMatches>::from_arg_matches(&matches).is_ok());
    }

    #[test]
    fn an_argument_that_does_not_parse_is_shown_with_its_code() {
        let refuse = |args: &[&str]| {
            let error = super::negative_numbers_reach_the_parsers(Cli::command())
                .try_get_matches_from(args)
                .unwrap_err();
            super::argument_error(&error)
        };
        let amount = refuse(&["ecny", "wallet", "top-up", "--amount", "1,000"]);
        assert!(
            amount.starts_with("invalid value '1,000' for '--amount <AMOUNT>': amount \"1,000\"")
                && amount.contains("e.g. 66.60 or 1000 [MALFORMED_AMOUNT]"),
            "{amount}"
        );
        let id = refuse(&[
            "ecny",
            "wallet",
            "pay-wallet",
            "--to",
            "W12x",
            "--amount",
            "1",
        ]);
        assert!(id.contains("[MALFORMED_ID]"), "{id}");
        let unknown = refuse(&["ecny", "demo", "--colour"]);
        assert!(
            unknown.starts_with("unexpected argument '--colour' found [ARGUMENT_INVALID]"),
            "{unknown}"
        );
    }

    #[test]
    fn every_option_of_every_command_says_what_it_is() {
        let mut missing = Vec::new();
        options_without_help(&Cli::command(), "ecny", &mut missing);
        assert!(
            missing.is_empty(),
            "options without help:\n{}",
            missing.join("\n")
        );
    }
}

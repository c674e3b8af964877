//! `ecny simulate`, `ecny analyze`, `ecny statement` and `ecny alerts`: the analysis center on
//! the command line. Wiring only; the work is in `ecny::analytics`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;

use ecny::analytics::alerts::{alerts_csv, journal_header, journal_line, AlertBook, CloseReason};
use ecny::analytics::index::{
    write_index, AnalysisIndex, IndexError, IndexFile, LogPosition, INDEX_FILE,
};
use ecny::analytics::rules::RuleConfig;
use ecny::analytics::statement::{camt053, check_days};
use ecny::analytics::statistics::statistics_csv;
use ecny::analytics::AnalysisCenter;
use ecny::audit::audit;
use ecny::city::{evaluate, labels_csv, read_labels_csv, simulate, SimulationConfig};
use ecny::ids::WalletId;
use ecny::server::config::DATA_DEFAULT;
use ecny::time::parse_day;

use ecny::amount::Amount;

use super::http::Api;
use super::{coded, open_existing};

/// Where an analysis center keeps the analysts' work on a data directory.
fn journal_path(data: &Path) -> PathBuf {
    data.join("analytics").join("alert-journal.csv")
}

pub fn run_simulate(
    data: &Path,
    config: &SimulationConfig,
    labels: Option<PathBuf>,
) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use `cargo run --release -- simulate` for a city of any size.");
    }
    if data.exists()
        && std::fs::read_dir(data)
            .map_err(|e| e.to_string())?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty; simulate into a new or empty directory",
            data.display()
        ));
    }
    println!(
        "ecny simulate: {} people, {} merchants, {} day(s) from 2024-03-01, seed {}, data in {}",
        config.wallets,
        config.merchants,
        config.days,
        config.seed,
        data.display()
    );
    let report = simulate(data, config).map_err(|e| e.to_string())?;
    let labels = labels.unwrap_or_else(|| data.join("labels.csv"));
    std::fs::write(&labels, labels_csv(&report.labels))
        .map_err(|e| format!("cannot write {}: {e}", labels.display()))?;
    let seconds = report.traffic.as_secs_f64();
    println!(
        "set-up {:.1} s; traffic: {} commands ({} accepted) in {:.1} s: {:.0} commands/s, {} ledger events",
        report.setup.as_secs_f64(),
        report.commands,
        report.accepted,
        seconds,
        report.commands as f64 / seconds.max(1e-9),
        report.events
    );
    println!(
        "offline taps between secure elements: {}",
        report.offline_taps
    );
    if !report.refused.is_empty() {
        let refused: Vec<String> = report
            .refused
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        println!(
            "refused (the generator's shadow balances mispredicted): {}",
            refused.join(", ")
        );
    }
    println!(
        "{} labelled episodes ({} with a refused step, {} planned but not staged) written to {}",
        report.labels.len(),
        report.episodes_with_refusals,
        report.episodes_not_staged,
        labels.display()
    );
    let node = open_existing(data)?;
    let audit = audit(node.state());
    if !audit.is_clean() {
        return Err(format!(
            "audit after the simulation: {} invariant(s) broken",
            audit.violations.len()
        ));
    }
    println!("audit: every invariant holds");
    println!(
        "next: ecny analyze --data {} --labels {}",
        data.display(),
        labels.display()
    );
    Ok(())
}

pub fn run_analyze(
    data: &Path,
    labels: Option<PathBuf>,
    csv: Option<PathBuf>,
) -> Result<(), String> {
    let started = Instant::now();
    let node = open_existing(data).map_err(|e| served_hint(e, "analyze"))?;
    let replayed = started.elapsed();
    let mut center = AnalysisCenter::new(RuleConfig::default());
    let started = Instant::now();
    let events = center.follow(node.state());
    let followed = started.elapsed();
    write_index_of(data, &node, &center)?;
    let journal = journal_path(data);
    if journal.exists() {
        let text = std::fs::read_to_string(&journal).map_err(|e| e.to_string())?;
        let actions = center
            .alerts_mut()
            .apply_journal(&text)
            .map_err(|e| coded(format!("{}: {e}", journal.display()), e.code()))?;
        println!(
            "analysts' journal: {actions} action(s) replayed from {}",
            journal.display()
        );
    }
    println!(
        "read {events} ledger events in {:.2} s: {:.0} events/s through the rules and statistics (log replay {:.2} s)",
        followed.as_secs_f64(),
        events as f64 / followed.as_secs_f64().max(1e-9),
        replayed.as_secs_f64()
    );
    println!();
    print!("{}", center.statistics().summary(center.directory()));
    println!();
    print_alerts(&center);
    if let Some(path) = labels {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let labels = read_labels_csv(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("\nagainst {} labelled episodes (by wallet):", labels.len());
        println!(
            "  {:<20} {:>7} {:>8} {:>9} {:>10} {:>8}",
            "rule", "alerts", "flagged", "labelled", "precision", "recall"
        );
        for score in evaluate(center.alerts(), &labels) {
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            println!(
                "  {:<20} {:>7} {:>8} {:>9} {:>10} {:>8}{}",
                score.rule.code(),
                score.alerts,
                score.flagged_wallets,
                score.labelled_wallets,
                show(score.precision()),
                show(score.recall()),
                if score.flagged_with_other_label > 0 {
                    format!(
                        "  ({} flagged carry another pattern's label)",
                        score.flagged_with_other_label
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    if let Some(dir) = csv {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let rows = center.statistics().rows(center.directory());
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write("statistics.csv", statistics_csv(&rows))?;
        write("alerts.csv", alerts_csv(center.alerts().all()))?;
        println!("\nwrote statistics.csv and alerts.csv to {}", dir.display());
    }
    Ok(())
}

/// A data directory a running server holds: say where to ask instead.
fn served_hint(error: String, command: &str) -> String {
    match error.strip_suffix(" [DATA_DIR_LOCKED]") {
        Some(message) => coded(
            format!("{message}; a running `ecny serve` holds it: ask the server with `ecny {command} --server URL`"),
            "DATA_DIR_LOCKED",
        ),
        None => error,
    }
}

/// The token a remote read goes with: as given, or the central bank's from the data directory.
fn reader_token(token: Option<&str>, data: &Path) -> Result<String, String> {
    if let Some(token) = token {
        return Ok(token.trim().to_string());
    }
    let path = data.join("keys").join("central-bank.token");
    std::fs::read_to_string(&path)
        .map(|token| token.trim().to_string())
        .map_err(|error| {
            coded(
                format!(
                    "cannot read the central bank's token at {}: {error}; pass --data DIR (the server's data directory) or --token",
                    path.display()
                ),
                "TOKEN_MISSING",
            )
        })
}

/// `ecny analyze --server URL`: the live analysis center of a running server, as the caller
/// may see it.
pub fn run_analyze_remote(server: &str, token: Option<&str>, data: &Path) -> Result<(), String> {
    let api = Api::new(server, &reader_token(token, data)?).map_err(|e| e.to_string())?;
    let statistics = api
        .get("/v1/analytics/statistics")
        .map_err(|e| e.to_string())?;
    let alerts = api.get("/v1/analytics/alerts").map_err(|e| e.to_string());
    let scope = statistics["scope"].as_str().unwrap_or("all");
    println!(
        "the analysis center of {server}: {} figures, {} ledger events read",
        if scope == "all" { "all" } else { scope },
        statistics["events_read"]
    );
    let rows = statistics["rows"].as_array().cloned().unwrap_or_default();
    let mut table = "";
    for row in &rows {
        let this = row["table"].as_str().unwrap_or_default();
        if this != table {
            table = this;
            println!("by {table}:");
        }
        let amount: Option<Amount> = row["amount"].as_str().and_then(|a| a.parse().ok());
        println!(
            "  {:<20} {:>10} {:>22}",
            row["key"].as_str().unwrap_or_default(),
            row["count"],
            amount.map_or_else(String::new, |a| a.yuan_sign().to_string())
        );
    }
    // An administrator reads the figures but not the alerts, which are the compliance
    // officer's: said, not failed.
    match alerts {
        Ok(alerts) => {
            let alerts = alerts.as_array().cloned().unwrap_or_default();
            println!("alerts: {}", alerts.len());
            for alert in &alerts {
                println!(
                    "  {} [{}] {} — {}",
                    alert["key"].as_str().unwrap_or_default(),
                    alert["status"].as_str().unwrap_or_default(),
                    ecny::time::china_time(alert["at_ms"].as_u64().unwrap_or_default()),
                    alert["explanation"].as_str().unwrap_or_default()
                );
            }
        }
        Err(refused) => println!("alerts: not shown to this credential ({refused})"),
    }
    Ok(())
}

/// `ecny statement --server URL`: the statement from a running server.
pub fn run_statement_remote(
    server: &str,
    token: Option<&str>,
    data: &Path,
    wallet: &str,
    (from, to): (&str, &str),
) -> Result<(), String> {
    let wallet: WalletId = wallet.parse().map_err(|e| format!("--wallet: {e}"))?;
    for (name, text) in [("--from", from), ("--to", to)] {
        if parse_day(text).is_none() {
            return Err(coded(
                format!("{name} {text:?} is not a date YYYY-MM-DD"),
                "MALFORMED_DATE",
            ));
        }
    }
    let api = Api::new(server, &reader_token(token, data)?).map_err(|e| e.to_string())?;
    let xml = api
        .get_text(&format!(
            "/v1/wallets/{wallet}/statement?from={from}&to={to}"
        ))
        .map_err(|e| e.to_string())?;
    print!("{xml}");
    Ok(())
}

fn print_alerts(center: &AnalysisCenter) {
    let alerts = center.alerts().all();
    println!("alerts: {}", alerts.len());
    for rule in ecny::analytics::rules::Rule::ALL {
        let mine: Vec<_> = alerts.iter().filter(|a| a.rule == rule).collect();
        println!("  {:<20} {:>6}", rule.code(), mine.len());
        for alert in mine.iter().take(2) {
            println!("      {alert}");
        }
    }
}

pub fn run_statement(data: &Path, wallet: &str, from: &str, to: &str) -> Result<(), String> {
    let wallet: WalletId = wallet.parse().map_err(|e| format!("--wallet: {e}"))?;
    let day = |text: &str, what: &str| {
        parse_day(text).ok_or_else(|| format!("{what} {text:?} is not a date YYYY-MM-DD"))
    };
    let (from, to) = (day(from, "--from")?, day(to, "--to")?);
    // The range is checked before anything is read.
    check_days(from, to).map_err(|e| coded(&e, e.code()))?;
    let index = fresh_index(data).map_err(|e| served_hint(e, "statement"))?;
    let found = index
        .statement(wallet, (from, to))
        .map_err(|e| coded(&e, e.code()))?;
    print!(
        "{}",
        camt053(&found, &index.directory(), index.last_timestamp_ms())
    );
    Ok(())
}

/// The analysis index of `data`, fresh for its log: read when it is, else built from one replay
/// of the log (a spinner shows it on a terminal) and written for the next command.
fn fresh_index(data: &Path) -> Result<IndexFile, String> {
    let coded_index = |e: IndexError| coded(&e, e.code());
    let position = LogPosition::of(data).map_err(coded_index)?;
    if let Some(index) = IndexFile::open_fresh(data, &position).map_err(coded_index)? {
        return Ok(index);
    }
    eprintln!(
        "note: reading the whole log once to build the analysis index {}; later commands read the index",
        data.join(INDEX_FILE).display()
    );
    let (node, center) = analysed(data)?;
    write_index_of(data, &node, &center)?;
    drop(node);
    let position = LogPosition::of(data).map_err(coded_index)?;
    IndexFile::open_fresh(data, &position)
        .map_err(coded_index)?
        .ok_or_else(|| {
            format!(
                "{} changed while its index was built; try again",
                data.display()
            )
        })
}

/// The node and the rules run over its whole stream, with a spinner on a terminal.
fn analysed(data: &Path) -> Result<(ecny::node::Node, AnalysisCenter), String> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(SPINNER_TICK_MS));
    spinner.set_message(format!("replaying the log of {}", data.display()));
    let node = open_existing(data);
    let node = match node {
        Ok(node) => node,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(error);
        }
    };
    spinner.set_message(format!(
        "running the rules over {} ledger events",
        node.state().ledger().events().len()
    ));
    let mut center = AnalysisCenter::new(RuleConfig::default());
    center.follow(node.state());
    spinner.finish_and_clear();
    Ok((node, center))
}

/// Writes the index of what `center` derived from `node`'s state, stamped with the log's
/// position while the node still holds the data directory.
fn write_index_of(
    data: &Path,
    node: &ecny::node::Node,
    center: &AnalysisCenter,
) -> Result<(), String> {
    let coded_index = |e: IndexError| coded(&e, e.code());
    let position = LogPosition::of(data).map_err(coded_index)?;
    let index = AnalysisIndex::build(
        node.state(),
        center.directory(),
        center.alerts().all().to_vec(),
        position,
    );
    write_index(data, &index).map_err(coded_index)
}

/// How often the spinner of a long read moves.
const SPINNER_TICK_MS: u64 = 120;

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Record what an analyst found about an alert (replaces an earlier explanation).
    Explain {
        /// Data directory holding the ledger.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// The alert's key, e.g. FAN_IN@T000000123456 (see `ecny analyze`).
        #[arg(long)]
        alert: String,
        /// What the analyst found, in at most 2,000 characters.
        #[arg(long)]
        note: String,
    },
    /// Close an explained alert: not_suspicious, reported or duplicate.
    Close {
        /// Data directory holding the ledger.
        #[arg(long, value_name = "DIR", default_value = DATA_DEFAULT)]
        data: PathBuf,
        /// The alert's key, e.g. FAN_IN@T000000123456 (see `ecny analyze`).
        #[arg(long)]
        alert: String,
        /// not_suspicious, reported or duplicate.
        #[arg(long)]
        reason: String,
        /// Why it is closed, in at most 2,000 characters.
        #[arg(long)]
        note: String,
    },
}

/// Checks the action against the alerts derived now and the journal so far, then appends it.
pub fn run_alerts(command: AlertsCommand) -> Result<(), String> {
    let (data, alert, reason, note) = match command {
        AlertsCommand::Explain { data, alert, note } => (data, alert, None, note),
        AlertsCommand::Close {
            data,
            alert,
            reason,
            note,
        } => {
            let reason = CloseReason::parse(&reason).ok_or_else(|| {
                format!("--reason {reason:?} is not one of not_suspicious, reported, duplicate")
            })?;
            (data, alert, Some(reason), note)
        }
    };
    let index = fresh_index(&data)?;
    let mut book = AlertBook::from_alerts(index.alerts().to_vec());
    let path = journal_path(&data);
    let journal = std::fs::read_to_string(&path).unwrap_or_default();
    if !journal.is_empty() {
        book.apply_journal(&journal)
            .map_err(|e| coded(format!("{}: {e}", path.display()), e.code()))?;
    }
    let applied = match reason {
        None => book.explain(&alert, &note),
        Some(reason) => book.close(&alert, reason, &note),
    };
    applied.map_err(|e| coded(&e, e.code()))?;
    // Appended, never rewritten: what analysts wrote before stays as they wrote it.
    std::fs::create_dir_all(path.parent().expect("journal has a parent"))
        .map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut line = if journal.is_empty() {
        journal_header()
    } else {
        String::new()
    };
    line.push_str(&journal_line(&alert, reason, &note));
    std::io::Write::write_all(&mut file, line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{}", book.get(&alert).expect("applied above"));
    Ok(())
}

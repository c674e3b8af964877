//! The analysis center on a simulated city: every rule catches its labelled pattern and leaves
//! benign traffic alone, the audit holds after the simulation, following the stream in pieces
//! gives what reading it once gives, the CSV exports read back, and account statements follow the
//! camt.053.001.08 schema (element order, required elements, formats) and add up. `.ci/run`
//! also validates statements against the published XSD with xmllint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ecny::analytics::alerts::{alerts_csv, read_alerts_csv};
use ecny::analytics::rules::{Rule, RuleConfig};
use ecny::analytics::statement::{camt053, statement};
use ecny::analytics::statistics::{read_statistics_csv, statistics_csv};
use ecny::analytics::{AnalysisCenter, Directory};
use ecny::audit::audit;
use ecny::city::{
    evaluate, labels_csv, read_labels_csv, simulate, Label, Pattern, SimulationConfig,
    SimulationReport,
};
use ecny::node::Node;
use ecny::state_machine::StateMachine;
use ecny::storage::CommandLog;
use ecny::time::{china_day, parse_day};

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

/// An element of a statement as written: name, attributes, text and children in order.
#[derive(Debug)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn at(&self, path: &[&str]) -> Result<&Element, String> {
        path.iter().try_fold(self, |element, name| {
            element
                .child(name)
                .ok_or_else(|| format!("{} has no {name}", element.name))
        })
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the XML the statement writer produces (a declaration, elements with attributes and
/// escaped text; nothing else): well-formed or an error naming what is wrong.
fn parse_xml(xml: &str) -> Result<Element, String> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .ok_or("no UTF-8 XML declaration")?;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        let close = rest[open..].find('>').ok_or("a tag is not closed")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(text)?);
        } else if !text.trim().is_empty() {
            return Err(format!("text outside the document: {text:?}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let element = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if element.name != name {
                return Err(format!("</{name}> closes <{}>", element.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None if root.is_none() => root = Some(element),
                None => return Err("two root elements".into()),
            }
        } else {
            let mut parts = tag.split(' ');
            let name = parts.next().unwrap_or_default().to_string();
            let attributes = parts
                .map(|part| {
                    let (key, value) = part.split_once('=').ok_or(format!("attribute {part:?}"))?;
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .ok_or(format!("attribute {part:?} is not quoted"))?;
                    Ok((key.to_string(), unescape(value)?))
                })
                .collect::<Result<_, String>>()?;
            stack.push(Element {
                name,
                attributes,
                text: String::new(),
                children: Vec::new(),
            });
        }
    }
    if !stack.is_empty() || !rest.trim().is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(';')
            .ok_or(format!("a bare & in {text:?}"))?
            + at;
        out.push(match &rest[at..=end] {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            "&apos;" => '\'',
            other => return Err(format!("unknown entity {other}")),
        });
        rest = &rest[end + 1..];
    }
    if rest.contains('<') || rest.contains('>') {
        return Err(format!("unescaped markup in {text:?}"));
    }
    out.push_str(rest);
    Ok(out)
}

/// The child sequences of camt.053.001.08 for every element a statement uses, in the schema's
/// order; `?` marks an optional child, `*` a repeatable optional one, `+` a repeatable
/// required one. Taken from the published XSD (BankToCustomerStatementV08 and the types it
/// uses); a child not listed for its parent is not allowed there.
const CAMT053_SEQUENCES: &[(&str, &[&str])] = &[
    ("Document", &["BkToCstmrStmt"]),
    ("BkToCstmrStmt", &["GrpHdr", "Stmt+", "SplmtryData*"]),
    (
        "GrpHdr",
        &[
            "MsgId",
            "CreDtTm",
            "MsgRcpt?",
            "MsgPgntn?",
            "OrgnlBizQry?",
            "AddtlInf?",
        ],
    ),
    (
        "Stmt",
        &[
            "Id",
            "StmtPgntn?",
            "ElctrncSeqNb?",
            "RptgSeq?",
            "LglSeqNb?",
            "CreDtTm?",
            "FrToDt?",
            "CpyDplctInd?",
            "RptgSrc?",
            "Acct",
            "RltdAcct?",
            "Intrst*",
            "Bal+",
            "TxsSummry?",
            "Ntry*",
            "AddtlStmtInf?",
        ],
    ),
    ("FrToDt", &["FrDtTm", "ToDtTm"]),
    (
        "Acct",
        &["Id", "Tp?", "Ccy?", "Nm?", "Prxy?", "Ownr?", "Svcr?"],
    ),
    ("Svcr", &["FinInstnId", "BrnchId?"]),
    (
        "FinInstnId",
        &["BICFI?", "ClrSysMmbId?", "LEI?", "Nm?", "PstlAdr?", "Othr?"],
    ),
    ("Othr", &["Id", "SchmeNm?", "Issr?"]),
    ("SchmeNm", &["Prtry"]),
    (
        "Bal",
        &["Tp", "CdtLine*", "Amt", "CdtDbtInd", "Dt", "Avlbty*"],
    ),
    ("Tp", &["CdOrPrtry", "SubTp?"]),
    ("CdOrPrtry", &["Cd"]),
    ("Dt", &["Dt"]),
    (
        "TxsSummry",
        &[
            "TtlNtries?",
            "TtlCdtNtries?",
            "TtlDbtNtries?",
            "TtlNtriesPerBkTxCd*",
        ],
    ),
    ("TtlNtries", &["NbOfNtries?", "Sum?", "TtlNetNtry?"]),
    ("TtlNetNtry", &["Amt", "CdtDbtInd"]),
    ("TtlCdtNtries", &["NbOfNtries?", "Sum?"]),
    ("TtlDbtNtries", &["NbOfNtries?", "Sum?"]),
    (
        "Ntry",
        &[
            "NtryRef?",
            "Amt",
            "CdtDbtInd",
            "RvslInd?",
            "Sts",
            "BookgDt?",
            "ValDt?",
            "AcctSvcrRef?",
            "Avlbty*",
            "BkTxCd",
            "ComssnWvrInd?",
            "AddtlInfInd?",
            "AmtDtls?",
            "Chrgs?",
            "TechInptChanl?",
            "Intrst?",
            "CardTx?",
            "NtryDtls*",
            "AddtlNtryInf?",
        ],
    ),
    ("Sts", &["Cd"]),
    ("BookgDt", &["DtTm"]),
    ("ValDt", &["Dt"]),
    ("BkTxCd", &["Domn?", "Prtry?"]),
    ("Prtry", &["Cd", "Issr?"]),
    ("NtryDtls", &["Btch?", "TxDtls*"]),
    (
        "TxDtls",
        &[
            "Refs?",
            "Amt?",
            "CdtDbtInd?",
            "AmtDtls?",
            "Avlbty*",
            "BkTxCd?",
            "Chrgs?",
            "Intrst?",
            "RltdPties?",
            "RltdAgts?",
            "LclInstrm?",
            "Purp?",
            "RltdRmtInf*",
            "RmtInf?",
            "RltdDts?",
            "RltdPric?",
            "RltdQties*",
            "FinInstrmId?",
            "Tax?",
            "RtrInf?",
            "CorpActn?",
            "SfkpgAcct?",
            "CshDpst*",
            "CardTx?",
            "AddtlTxInf?",
            "SplmtryData*",
        ],
    ),
    (
        "Refs",
        &[
            "MsgId?",
            "AcctSvcrRef?",
            "PmtInfId?",
            "InstrId?",
            "EndToEndId?",
            "UETR?",
            "TxId?",
            "MndtId?",
            "ChqNb?",
            "ClrSysRef?",
            "AcctOwnrTxId?",
            "AcctSvcrTxId?",
            "MktInfrstrTxId?",
            "PrcgId?",
            "Prtry*",
        ],
    ),
    (
        "RltdPties",
        &[
            "InitgPty?",
            "Dbtr?",
            "DbtrAcct?",
            "UltmtDbtr?",
            "Cdtr?",
            "CdtrAcct?",
            "UltmtCdtr?",
            "TradgPty?",
            "Prtry*",
        ],
    ),
    ("DbtrAcct", &["Id", "Tp?", "Ccy?", "Nm?", "Prxy?"]),
    ("CdtrAcct", &["Id", "Tp?", "Ccy?", "Nm?", "Prxy?"]),
];

/// Elements whose sequence depends on where they sit: an account's `Id` is a choice, a
/// statement's `Id` is text; a balance's `Dt` holds a date choice, a value date's `Dt` is a date.
fn sequence_of(parent: &str, element: &Element) -> Option<&'static [&'static str]> {
    match (parent, element.name.as_str()) {
        ("Acct" | "DbtrAcct" | "CdtrAcct", "Id") => Some(&["IBAN?", "Othr?"]),
        ("Bal", "Dt") => Some(&["Dt?", "DtTm?"]),
        ("BkTxCd", "Prtry") => Some(&["Cd", "Issr?"]),
        ("SchmeNm", "Prtry") | ("CdOrPrtry" | "Sts" | "Prtry", "Cd") | ("ValDt" | "Dt", "Dt") => {
            None
        }
        (_, name) if element.children.is_empty() && !element.text.is_empty() => {
            let _ = name;
            None
        }
        (_, name) => CAMT053_SEQUENCES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, sequence)| *sequence),
    }
}

/// Children in the schema's order, each at most as often as allowed, every required one there.
fn check_order(parent: &str, element: &Element) -> Result<(), String> {
    let Some(sequence) = sequence_of(parent, element) else {
        return match element.children.first() {
            Some(child) => Err(format!(
                "{} holds {} but is a value",
                element.name, child.name
            )),
            None => Ok(()),
        };
    };
    let mut position = 0;
    let mut seen_here = 0;
    for child in &element.children {
        loop {
            let slot = sequence.get(position).ok_or_else(|| {
                format!(
                    "{} may not hold {} here (order: {:?})",
                    element.name, child.name, sequence
                )
            })?;
            let (name, repeats, optional) = match slot.as_bytes().last() {
                Some(b'?') => (&slot[..slot.len() - 1], false, true),
                Some(b'*') => (&slot[..slot.len() - 1], true, true),
                Some(b'+') => (&slot[..slot.len() - 1], true, false),
                _ => (*slot, false, false),
            };
            if name == child.name && (repeats || seen_here == 0) {
                seen_here += 1;
                break;
            }
            if !optional && seen_here == 0 {
                return Err(format!(
                    "{} lacks {name} before {}",
                    element.name, child.name
                ));
            }
            position += 1;
            seen_here = 0;
        }
    }
    for slot in &sequence[position + usize::from(seen_here > 0)..] {
        if !slot.ends_with(['?', '*']) {
            return Err(format!("{} lacks {slot}", element.name));
        }
    }
    element
        .children
        .iter()
        .try_for_each(|child| check_order(&element.name, child))
}

/// Yuan with exactly two decimals, as CNY amounts are written.
fn fen_of(text: &str) -> Result<i64, String> {
    let (yuan, fen) = text
        .split_once('.')
        .ok_or(format!("amount {text:?} has no decimals"))?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(yuan) || fen.len() != 2 || !digits(fen) || (yuan.len() > 1 && yuan.starts_with('0'))
    {
        return Err(format!("amount {text:?} is not yuan with two decimals"));
    }
    Ok(yuan.parse::<i64>().map_err(|e| e.to_string())? * 100 + fen.parse::<i64>().unwrap())
}

/// An amount with its direction: credits positive, debits negative.
fn signed_fen(element: &Element) -> Result<i64, String> {
    let amount = element.at(&["Amt"])?;
    if amount.attribute("Ccy").is_some_and(|ccy| ccy != "CNY") {
        return Err(format!("{} in {:?}", element.name, amount.attribute("Ccy")));
    }
    let fen = fen_of(&amount.text)?;
    match element.at(&["CdtDbtInd"])?.text.as_str() {
        "CRDT" => Ok(fen),
        "DBIT" => Ok(-fen),
        other => Err(format!("CdtDbtInd {other:?}")),
    }
}

fn is_china_time(text: &str) -> bool {
    ecny::time::parse_china_time(text).is_some()
}

/// What xmllint would check against the published XSD, for what a statement uses — structure,
/// element order, required elements, lengths, formats — and what it cannot: the balances, the
/// summary and every entry add up, amounts are CNY with two decimals. An error names the first
/// thing wrong.
fn check_camt053(xml: &str) -> Result<Element, String> {
    let document = parse_xml(xml)?;
    if document.name != "Document"
        || document.attribute("xmlns") != Some(ecny::analytics::statement::CAMT053_NAMESPACE)
    {
        return Err(format!(
            "root {} in {:?}",
            document.name,
            document.attribute("xmlns")
        ));
    }
    check_order("", &document)?;
    let statement = document.at(&["BkToCstmrStmt", "Stmt"])?;
    for (path, max) in [
        (&["BkToCstmrStmt", "GrpHdr", "MsgId"][..], 35),
        (&["BkToCstmrStmt", "Stmt", "Id"][..], 35),
    ] {
        let text = &document.at(path)?.text;
        if text.is_empty() || text.chars().count() > max {
            return Err(format!(
                "{} {text:?} is not 1 to {max} characters",
                path.join("/")
            ));
        }
    }
    for path in [
        &["GrpHdr", "CreDtTm"][..],
        &["Stmt", "CreDtTm"],
        &["Stmt", "FrToDt", "FrDtTm"],
        &["Stmt", "FrToDt", "ToDtTm"],
    ] {
        let text = &document.at(&["BkToCstmrStmt"])?.at(path)?.text;
        if !is_china_time(text) {
            return Err(format!(
                "{} {text:?} is not an ISO date and time",
                path.join("/")
            ));
        }
    }
    let balance = |code: &str| -> Result<i64, String> {
        let found = statement
            .children("Bal")
            .find(|b| {
                b.at(&["Tp", "CdOrPrtry", "Cd"])
                    .is_ok_and(|c| c.text == code)
            })
            .ok_or(format!("no {code} balance"))?;
        signed_fen(found)
    };
    let (opening, closing) = (balance("OPBD")?, balance("CLBD")?);
    let (mut credits, mut debits) = ((0u64, 0i64), (0u64, 0i64));
    for entry in statement.children("Ntry") {
        let fen = signed_fen(entry)?;
        let details = entry.at(&["NtryDtls", "TxDtls"])?;
        if signed_fen(details)? != fen {
            return Err(format!(
                "entry {} and its details differ",
                entry.at(&["NtryRef"])?.text
            ));
        }
        if !is_china_time(&entry.at(&["BookgDt", "DtTm"])?.text) {
            return Err("a booking time is not an ISO date and time".into());
        }
        let information = &details.at(&["AddtlTxInf"])?.text;
        if information.is_empty() || information.chars().count() > 500 {
            return Err(format!(
                "AddtlTxInf {information:?} is not 1 to 500 characters"
            ));
        }
        let tally = if fen >= 0 { &mut credits } else { &mut debits };
        tally.0 += 1;
        tally.1 += fen.abs();
    }
    if opening + credits.1 - debits.1 != closing {
        return Err(format!(
            "opening {opening} + credits {} − debits {} ≠ closing {closing} (fen)",
            credits.1, debits.1
        ));
    }
    let summary = statement.at(&["TxsSummry"])?;
    let number = |path: &[&str]| -> Result<u64, String> {
        summary
            .at(path)?
            .text
            .parse()
            .map_err(|_| format!("{} is not a count", path.join("/")))
    };
    let sum = |path: &[&str]| fen_of(&summary.at(path)?.text);
    let expected = [
        (
            number(&["TtlNtries", "NbOfNtries"])?,
            credits.0 + debits.0,
            "entries",
        ),
        (
            number(&["TtlCdtNtries", "NbOfNtries"])?,
            credits.0,
            "credit entries",
        ),
        (
            number(&["TtlDbtNtries", "NbOfNtries"])?,
            debits.0,
            "debit entries",
        ),
        (
            sum(&["TtlNtries", "Sum"])? as u64,
            (credits.1 + debits.1) as u64,
            "sum of entries",
        ),
        (
            sum(&["TtlCdtNtries", "Sum"])? as u64,
            credits.1 as u64,
            "sum of credits",
        ),
        (
            sum(&["TtlDbtNtries", "Sum"])? as u64,
            debits.1 as u64,
            "sum of debits",
        ),
    ];
    for (written, counted, what) in expected {
        if written != counted {
            return Err(format!(
                "the summary says {written} {what}, the entries {counted}"
            ));
        }
    }
    if signed_fen(summary.at(&["TtlNtries", "TtlNetNtry"])?)? != credits.1 - debits.1 {
        return Err("the summary's net entry is not credits less debits".into());
    }
    Ok(document)
}

/// Writes a statement where `ECNY_STATEMENTS_OUT` says, for a schema validator to read too.
fn keep_for_validation(xml: &str, name: &str) {
    if let Some(dir) = std::env::var_os("ECNY_STATEMENTS_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), xml).unwrap();
    }
}

fn assert_valid_camt053(xml: &str, name: &str) -> Element {
    keep_for_validation(xml, name);
    check_camt053(xml).unwrap_or_else(|why| panic!("{name} is not a valid camt.053: {why}\n{xml}"))
}

#[test]
fn statements_follow_the_camt053_schema_and_add_up() {
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
        assert_valid_camt053(&xml, &format!("camt053-{wallet}.xml"));
    }
    // A day in the middle: its closing balance is the next day's opening.
    let day = statement(state, &directory, merchant, (first + 3, first + 3)).unwrap();
    let next = statement(state, &directory, merchant, (first + 4, first + 4)).unwrap();
    assert_eq!(day.closing, next.opening);
    // An empty statement is still a valid one.
    let quiet = statement(state, &directory, merchant, (first + 30, first + 30)).unwrap();
    assert!(quiet.entries.is_empty());
    let empty = assert_valid_camt053(
        &camt053(&quiet, &directory, state.last_timestamp_ms()),
        "camt053-empty.xml",
    );
    assert_eq!(
        empty
            .at(&["BkToCstmrStmt", "Stmt"])
            .unwrap()
            .children("Ntry")
            .count(),
        0
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
    // `analyze` left the analysis index: the analysts' commands read it, not the log.
    assert!(dir.join("city/analytics/index.bin").exists());
    let replays = |err: &str| err.contains("note: reading the whole log once");
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
    assert!(!replays(&err), "{err}");
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
    assert!(!replays(&err), "{err}");
    assert_valid_camt053(&xml, "camt053-cli.xml");
    // Without its index, the first command rebuilds it once and says so; the next reads it.
    std::fs::remove_file(dir.join("city/analytics/index.bin")).unwrap();
    let statement_args = [
        "statement",
        "--data",
        data,
        "--wallet",
        "W0000000001",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
    ];
    let (ok, again, err) = ecny(&statement_args);
    assert!(ok && replays(&err) && again == xml, "{err}");
    let (ok, again, err) = ecny(&statement_args);
    assert!(ok && !replays(&err) && again == xml, "{err}");
    // A date range is checked before anything is read: here there is nothing to read.
    let (ok, _, err) = ecny(&[
        "statement",
        "--data",
        dir.join("nothing-here").to_str().unwrap(),
        "--wallet",
        "W1",
        "--from",
        "2024-03-01",
        "--to",
        "2025-03-02",
    ]);
    assert!(!ok && err.contains("[STATEMENT_TOO_LONG]"), "{err}");
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

#[test]
fn the_statement_check_refuses_what_the_schema_or_the_arithmetic_refuses() {
    let city = city();
    let directory = Directory::from_state(&city.state);
    let merchant = directory.merchants()[0].wallet;
    let first = parse_day("2024-03-01").unwrap();
    let found = statement(&city.state, &directory, merchant, (first, first + 7)).unwrap();
    let xml = camt053(&found, &directory, city.state.last_timestamp_ms());
    check_camt053(&xml).unwrap();
    let entry_amount = {
        let at = xml.find("<Ntry><NtryRef>").unwrap();
        let amount_at = xml[at..].find("<Amt Ccy=\"CNY\">").unwrap() + at + 15;
        let end = xml[amount_at..].find('<').unwrap() + amount_at;
        (amount_at, end)
    };
    let closing = {
        let at = xml.find("<Cd>CLBD</Cd>").unwrap();
        let amount_at = xml[at..].find("<Amt Ccy=\"CNY\">").unwrap() + at + 15;
        let end = xml[amount_at..].find('<').unwrap() + amount_at;
        (amount_at, end)
    };
    let replaced =
        |(from, to): (usize, usize), with: &str| format!("{}{with}{}", &xml[..from], &xml[to..]);
    let closing_fen = fen_of(&xml[closing.0..closing.1]).unwrap() + 1;
    let cases: Vec<(String, &str)> = vec![
        (
            xml.replacen("<Sts><Cd>BOOK</Cd></Sts><BookgDt>", "<BookgDt>", 1)
                .replacen("</BookgDt>", "</BookgDt><Sts><Cd>BOOK</Cd></Sts>", 1),
            "Ntry lacks Sts before BookgDt",
        ),
        (
            replaced(
                entry_amount,
                &format!("{}0", &xml[entry_amount.0..entry_amount.1]),
            ),
            "is not yuan with two decimals",
        ),
        (
            replaced(
                closing,
                &format!("{}.{:02}", closing_fen / 100, closing_fen % 100),
            ),
            "≠ closing",
        ),
        (
            xml.replacen(
                "<TtlCdtNtries><NbOfNtries>",
                "<TtlCdtNtries><NbOfNtries>9",
                1,
            ),
            "credit entries",
        ),
        (
            xml.replacen("<TxsSummry>", "<Remark>hello</Remark><TxsSummry>", 1),
            "Stmt may not hold Remark",
        ),
        (
            {
                let (from, to) = (
                    xml.find("<Acct>").unwrap(),
                    xml.find("</Acct>").unwrap() + 7,
                );
                format!("{}{}", &xml[..from], &xml[to..])
            },
            "Stmt lacks Acct",
        ),
        (xml.replacen("</Ntry>", "", 1), "closes <Ntry>"),
        (
            xml.replacen("+08:00</CreDtTm>", "</CreDtTm>", 1),
            "is not an ISO date and time",
        ),
    ];
    for (broken, why) in cases {
        let refused = check_camt053(&broken).expect_err(why);
        assert!(refused.contains(why), "expected {why:?}, got {refused:?}");
    }
}

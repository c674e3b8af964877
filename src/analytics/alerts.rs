//! Alerts an operator can work: each opens from a rule's finding, is explained by an analyst, and
//! is closed with a reason. Closed is final; closing needs an explanation first, so every closed
//! alert says what was found and why it was closed.
//!
//! Alerts are derived from the ledger's stream, so they need no storage of their own: replaying
//! the stream with the same rules gives the same alerts under the same keys (the analysis index
//! keeps them derived, so analysts need not replay the log, and rebuilds them). What cannot be
//! derived is the analysts' work, so that alone is kept, as an append-only journal (CSV) that is
//! replayed through the same workflow checks: nothing an analyst wrote is ever overwritten.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::amount::Amount;
use crate::analytics::csv::{self, CsvError};
use crate::analytics::rules::{Finding, Rule};
use crate::analytics::Movement;
use crate::ids::{DeviceId, EventId, OperatorId, WalletId};
use crate::time::{china_time, parse_china_time};

/// Longest note an analyst may write.
pub const NOTE_CHARS_MAX: usize = 2_000;

/// Why an alert was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Legitimate activity: the explanation shows why.
    NotSuspicious,
    /// A suspicious-transaction report was filed with the regulator.
    Reported,
    /// The same activity is already worked under another alert.
    Duplicate,
}

impl CloseReason {
    pub const ALL: [CloseReason; 3] = [
        CloseReason::NotSuspicious,
        CloseReason::Reported,
        CloseReason::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::NotSuspicious => "not_suspicious",
            CloseReason::Reported => "reported",
            CloseReason::Duplicate => "duplicate",
        }
    }

    pub fn parse(text: &str) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Explained { note: String },
    Closed { reason: CloseReason, note: String },
}

impl AlertStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Explained { .. } => "explained",
            AlertStatus::Closed { .. } => "closed",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AlertError {
    #[error("no alert {0}")]
    Unknown(String),
    #[error("alert {0} is closed; a closed alert stays closed")]
    Closed(String),
    #[error("alert {0} must be explained before it is closed")]
    NotExplained(String),
    #[error("a note must say something, in at most {NOTE_CHARS_MAX} characters")]
    NoteEmpty,
    #[error("{0:?} is not a close reason (not_suspicious, reported, duplicate)")]
    UnknownReason(String),
    #[error("journal: {0}")]
    Journal(#[from] CsvError),
}

impl AlertError {
    pub fn code(&self) -> &'static str {
        match self {
            AlertError::Unknown(_) => "ALERT_UNKNOWN",
            AlertError::Closed(_) => "ALERT_CLOSED",
            AlertError::NotExplained(_) => "ALERT_NOT_EXPLAINED",
            AlertError::NoteEmpty => "ALERT_NOTE_EMPTY",
            AlertError::UnknownReason(_) => "ALERT_REASON_UNKNOWN",
            AlertError::Journal(error) => error.code(),
        }
    }
}

/// One alert: a finding with its place in the workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// `RULE@T…`: the rule and the event that made it fire; the same on every replay.
    pub key: String,
    pub rule: Rule,
    pub wallet: Option<WalletId>,
    pub device: Option<DeviceId>,
    pub operator: Option<OperatorId>,
    pub at_ms: u64,
    pub amount: Amount,
    pub transfers: Vec<EventId>,
    pub explanation: String,
    pub status: AlertStatus,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {} — {}",
            self.key,
            self.status.as_str(),
            china_time(self.at_ms),
            self.explanation
        )
    }
}

pub fn alert_key(rule: Rule, trigger: EventId) -> String {
    format!("{}@{trigger}", rule.code())
}

/// Every alert raised, in the order raised, with the workflow on top.
#[derive(Clone, Debug, Default)]
pub struct AlertBook {
    alerts: Vec<Alert>,
    by_key: HashMap<String, usize>,
}

fn check_note(note: &str) -> Result<String, AlertError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > NOTE_CHARS_MAX {
        return Err(AlertError::NoteEmpty);
    }
    Ok(note.to_string())
}

impl AlertBook {
    /// A book of alerts derived before, as kept in the analysis index.
    pub fn from_alerts(alerts: Vec<Alert>) -> AlertBook {
        let by_key = alerts
            .iter()
            .enumerate()
            .map(|(i, alert)| (alert.key.clone(), i))
            .collect();
        AlertBook { alerts, by_key }
    }

    pub fn raise(&mut self, finding: Finding) {
        let key = alert_key(finding.rule, finding.trigger);
        debug_assert!(
            !self.by_key.contains_key(&key),
            "one alert per rule and event"
        );
        self.by_key.insert(key.clone(), self.alerts.len());
        self.alerts.push(Alert {
            key,
            rule: finding.rule,
            wallet: finding.wallet,
            device: finding.device,
            operator: finding.operator,
            at_ms: finding.at_ms,
            amount: finding.amount,
            transfers: finding.transfers,
            explanation: finding.explanation,
            status: AlertStatus::Open,
        });
    }

    /// A loss cover paid in the same sync as a block, after it: it belongs to that block's alert.
    pub fn attach_loss_cover(&mut self, cover: &Movement) {
        let found = self.alerts.iter_mut().rev().take(16).find(|a| {
            a.rule == Rule::OfflineAnomaly
                && a.at_ms == cover.at_ms
                && a.operator == Some(cover.operator)
        });
        if let Some(alert) = found {
            if !alert.transfers.contains(&cover.event) {
                alert.transfers.push(cover.event);
                alert.amount = Amount::from_fen(alert.amount.fen() + cover.amount.fen());
            }
        }
    }

    pub fn all(&self) -> &[Alert] {
        &self.alerts
    }

    pub fn get(&self, key: &str) -> Option<&Alert> {
        self.by_key.get(key).map(|i| &self.alerts[*i])
    }

    fn get_mut(&mut self, key: &str) -> Result<&mut Alert, AlertError> {
        match self.by_key.get(key) {
            Some(&i) => Ok(&mut self.alerts[i]),
            None => Err(AlertError::Unknown(key.to_string())),
        }
    }

    /// An analyst says what they found. A later explanation replaces an earlier one.
    pub fn explain(&mut self, key: &str, note: &str) -> Result<(), AlertError> {
        let note = check_note(note)?;
        let alert = self.get_mut(key)?;
        if let AlertStatus::Closed { .. } = alert.status {
            return Err(AlertError::Closed(key.to_string()));
        }
        alert.status = AlertStatus::Explained { note };
        Ok(())
    }

    /// Closes an explained alert with a reason and a note.
    pub fn close(&mut self, key: &str, reason: CloseReason, note: &str) -> Result<(), AlertError> {
        let note = check_note(note)?;
        let alert = self.get_mut(key)?;
        match alert.status {
            AlertStatus::Open => Err(AlertError::NotExplained(key.to_string())),
            AlertStatus::Closed { .. } => Err(AlertError::Closed(key.to_string())),
            AlertStatus::Explained { .. } => {
                alert.status = AlertStatus::Closed { reason, note };
                Ok(())
            }
        }
    }

    pub fn count_by_rule(&self, rule: Rule) -> usize {
        self.alerts.iter().filter(|a| a.rule == rule).count()
    }

    /// Replays an analysts' journal through the workflow; returns how many actions it held.
    pub fn apply_journal(&mut self, text: &str) -> Result<usize, AlertError> {
        let rows = csv::parse_table(text, &JOURNAL_HEADER)?;
        for row in &rows {
            match row[1].as_str() {
                "explain" => self.explain(&row[0], &row[3])?,
                "close" => {
                    let reason = CloseReason::parse(&row[2])
                        .ok_or_else(|| AlertError::UnknownReason(row[2].clone()))?;
                    self.close(&row[0], reason, &row[3])?
                }
                other => {
                    return Err(AlertError::Journal(CsvError::Field {
                        line: 0,
                        what: "journal action",
                        text: other.to_string(),
                    }))
                }
            }
        }
        Ok(rows.len())
    }
}

const JOURNAL_HEADER: [&str; 4] = ["alert", "action", "reason", "note"];

/// The journal's header line, for a new journal file.
pub fn journal_header() -> String {
    csv::record(&JOURNAL_HEADER)
}

/// One journal line: an explanation (`reason` None) or a closing.
pub fn journal_line(key: &str, reason: Option<CloseReason>, note: &str) -> String {
    match reason {
        None => csv::record(&[key, "explain", "", note]),
        Some(reason) => csv::record(&[key, "close", reason.as_str(), note]),
    }
}

const ALERTS_HEADER: [&str; 12] = [
    "alert",
    "rule",
    "wallet",
    "device",
    "operator",
    "at",
    "amount_cny",
    "transfers",
    "status",
    "close_reason",
    "note",
    "explanation",
];

/// Every alert as CSV, one row each, transfers space-separated.
pub fn alerts_csv(alerts: &[Alert]) -> String {
    let mut out = csv::record(&ALERTS_HEADER);
    for alert in alerts {
        let show = |id: Option<String>| id.unwrap_or_default();
        let (reason, note) = match &alert.status {
            AlertStatus::Open => ("", ""),
            AlertStatus::Explained { note } => ("", note.as_str()),
            AlertStatus::Closed { reason, note } => (reason.as_str(), note.as_str()),
        };
        let transfers: Vec<String> = alert.transfers.iter().map(|t| t.to_string()).collect();
        out.push_str(&csv::record(&[
            &alert.key,
            alert.rule.code(),
            &show(alert.wallet.map(|w| w.to_string())),
            &show(alert.device.map(|d| d.to_string())),
            &show(alert.operator.map(|o| o.to_string())),
            &china_time(alert.at_ms),
            &alert.amount.to_string(),
            &transfers.join(" "),
            alert.status.as_str(),
            reason,
            note,
            &alert.explanation,
        ]));
    }
    out
}

/// Reads what [`alerts_csv`] wrote.
pub fn read_alerts_csv(text: &str) -> Result<Vec<Alert>, CsvError> {
    let rows = csv::parse_table(text, &ALERTS_HEADER)?;
    let mut alerts = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let line = index + 2;
        let bad = |what: &'static str, text: &str| CsvError::Field {
            line,
            what,
            text: text.to_string(),
        };
        fn optional<T: std::str::FromStr>(text: &str) -> Result<Option<T>, ()> {
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| ())
        }
        let status = match (row[8].as_str(), row[9].as_str()) {
            ("open", "") => AlertStatus::Open,
            ("explained", "") => AlertStatus::Explained {
                note: row[10].clone(),
            },
            ("closed", reason) => AlertStatus::Closed {
                reason: CloseReason::parse(reason).ok_or_else(|| bad("close reason", reason))?,
                note: row[10].clone(),
            },
            (status, _) => return Err(bad("status", status)),
        };
        let transfers = row[7]
            .split_whitespace()
            .map(|t| t.parse().map_err(|_| bad("transfer", t)))
            .collect::<Result<Vec<EventId>, _>>()?;
        alerts.push(Alert {
            key: row[0].clone(),
            rule: Rule::parse(&row[1]).ok_or_else(|| bad("rule", &row[1]))?,
            wallet: optional(&row[2]).map_err(|_| bad("wallet", &row[2]))?,
            device: optional(&row[3]).map_err(|_| bad("device", &row[3]))?,
            operator: optional(&row[4]).map_err(|_| bad("operator", &row[4]))?,
            at_ms: parse_china_time(&row[5]).ok_or_else(|| bad("time", &row[5]))?,
            amount: row[6].parse().map_err(|_| bad("amount", &row[6]))?,
            transfers,
            explanation: row[11].clone(),
            status,
        });
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: Rule, trigger: u64) -> Finding {
        Finding {
            rule,
            trigger: EventId(trigger),
            wallet: Some(WalletId(7)),
            device: None,
            operator: Some(OperatorId(1)),
            at_ms: 1_709_251_200_123,
            amount: Amount::from_yuan(80_000),
            transfers: vec![EventId(trigger)],
            explanation: "W0000000007 paid ¥80,000.00 to W0000000009, in one transfer.".into(),
        }
    }

    #[test]
    fn an_alert_is_explained_then_closed_with_a_reason_and_stays_closed() {
        let mut book = AlertBook::default();
        book.raise(finding(Rule::LargeValue, 41));
        let key = "LARGE_VALUE@T000000000041";
        assert_eq!(book.get(key).unwrap().status, AlertStatus::Open);
        let early = book.close(key, CloseReason::NotSuspicious, "car purchase");
        assert_eq!(early.unwrap_err().code(), "ALERT_NOT_EXPLAINED");
        assert_eq!(
            book.explain(key, "  ").unwrap_err().code(),
            "ALERT_NOTE_EMPTY"
        );
        book.explain(key, "invoice from a car dealer seen").unwrap();
        book.close(key, CloseReason::NotSuspicious, "a car, paid once")
            .unwrap();
        assert_eq!(
            book.get(key).unwrap().status,
            AlertStatus::Closed {
                reason: CloseReason::NotSuspicious,
                note: "a car, paid once".into()
            }
        );
        assert_eq!(
            book.explain(key, "more").unwrap_err().code(),
            "ALERT_CLOSED"
        );
        let again = book.close(key, CloseReason::Reported, "x");
        assert_eq!(again.unwrap_err().code(), "ALERT_CLOSED");
        assert_eq!(
            book.explain("FAN_IN@T1", "x").unwrap_err().code(),
            "ALERT_UNKNOWN"
        );
    }

    #[test]
    fn the_journal_replays_the_analysts_work_onto_rederived_alerts() {
        let derive = || {
            let mut book = AlertBook::default();
            book.raise(finding(Rule::LargeValue, 41));
            book.raise(finding(Rule::Structuring, 57));
            book
        };
        let mut journal = journal_header();
        journal.push_str(&journal_line(
            "STRUCTURING@T000000000057",
            None,
            "3 payments, one payee, \"tuition\"",
        ));
        journal.push_str(&journal_line(
            "STRUCTURING@T000000000057",
            Some(CloseReason::Reported),
            "STR filed",
        ));
        let mut book = derive();
        assert_eq!(book.apply_journal(&journal).unwrap(), 2);
        assert!(matches!(
            book.get("STRUCTURING@T000000000057").unwrap().status,
            AlertStatus::Closed {
                reason: CloseReason::Reported,
                ..
            }
        ));
        assert_eq!(
            book.get("LARGE_VALUE@T000000000041").unwrap().status,
            AlertStatus::Open
        );
        // A journal that breaks the workflow is refused, not half applied silently.
        let mut bad = journal_header();
        bad.push_str(&journal_line(
            "LARGE_VALUE@T000000000041",
            Some(CloseReason::Duplicate),
            "x",
        ));
        assert_eq!(
            derive().apply_journal(&bad).unwrap_err().code(),
            "ALERT_NOT_EXPLAINED"
        );
    }

    #[test]
    fn alerts_round_trip_through_csv() {
        let mut book = AlertBook::default();
        book.raise(finding(Rule::LargeValue, 41));
        book.raise(Finding {
            device: Some(DeviceId(9)),
            wallet: None,
            transfers: vec![],
            ..finding(Rule::OfflineAnomaly, 90)
        });
        book.raise(finding(Rule::FanIn, 93));
        book.explain("FAN_IN@T000000000093", "collects, for a club, \"dues\"")
            .unwrap();
        book.explain("LARGE_VALUE@T000000000041", "car").unwrap();
        book.close(
            "LARGE_VALUE@T000000000041",
            CloseReason::NotSuspicious,
            "car, once",
        )
        .unwrap();
        let text = alerts_csv(book.all());
        assert_eq!(read_alerts_csv(&text).unwrap(), book.all());
    }
}

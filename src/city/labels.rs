//! The city's ground truth: which wallets played which pattern when, as `labels.csv` keeps it.

use super::*;

/// A suspicious pattern the generator mixes in, and the rule meant to catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    LargeValue,
    Structuring,
    RapidPassThrough,
    FanInMule,
    FanOutDistributor,
    VelocityBurst,
    OfflineClone,
}

impl Pattern {
    pub const ALL: [Pattern; 7] = [
        Pattern::LargeValue,
        Pattern::Structuring,
        Pattern::RapidPassThrough,
        Pattern::FanInMule,
        Pattern::FanOutDistributor,
        Pattern::VelocityBurst,
        Pattern::OfflineClone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::LargeValue => "large_value",
            Pattern::Structuring => "structuring",
            Pattern::RapidPassThrough => "rapid_pass_through",
            Pattern::FanInMule => "fan_in_mule",
            Pattern::FanOutDistributor => "fan_out_distributor",
            Pattern::VelocityBurst => "velocity_burst",
            Pattern::OfflineClone => "offline_clone",
        }
    }

    pub fn parse(text: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn rule(self) -> Rule {
        match self {
            Pattern::LargeValue => Rule::LargeValue,
            Pattern::Structuring => Rule::Structuring,
            Pattern::RapidPassThrough => Rule::RapidPassThrough,
            Pattern::FanInMule => Rule::FanIn,
            Pattern::FanOutDistributor => Rule::FanOut,
            Pattern::VelocityBurst => Rule::Velocity,
            Pattern::OfflineClone => Rule::OfflineAnomaly,
        }
    }
}

/// One labelled episode: which wallet did what, when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub pattern: Pattern,
    pub wallet: WalletId,
    pub from_ms: u64,
    pub to_ms: u64,
}

const LABELS_HEADER: [&str; 4] = ["pattern", "wallet", "from", "to"];

pub fn labels_csv(labels: &[Label]) -> String {
    let mut out = csv::record(&LABELS_HEADER);
    for label in labels {
        out.push_str(&csv::record(&[
            label.pattern.as_str(),
            &label.wallet.to_string(),
            &china_time(label.from_ms),
            &china_time(label.to_ms),
        ]));
    }
    out
}

pub fn read_labels_csv(text: &str) -> Result<Vec<Label>, CsvError> {
    let rows = csv::parse_table(text, &LABELS_HEADER)?;
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let bad = |what: &'static str, text: &str| CsvError::Field {
                line: index + 2,
                what,
                text: text.to_string(),
            };
            Ok(Label {
                pattern: Pattern::parse(&row[0]).ok_or_else(|| bad("pattern", &row[0]))?,
                wallet: row[1].parse().map_err(|_| bad("wallet", &row[1]))?,
                from_ms: parse_china_time(&row[2]).ok_or_else(|| bad("time", &row[2]))?,
                to_ms: parse_china_time(&row[3]).ok_or_else(|| bad("time", &row[3]))?,
            })
        })
        .collect()
}

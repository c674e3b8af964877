//! The figures the seeds quote, kept up to date from the stream: transactions and amounts by
//! China-time day, by channel, by operator, by merchant region and category; active wallets per
//! day; merchants onboarded and paid; and the conversions in and out of e-CNY. A transaction is a
//! payment between parties: person to person, to a merchant on any channel, or an offline payment
//! between two operators' secure elements settled at sync (an offline payment between two secure
//! elements of one operator moves nothing in the ledger, so it is not counted).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::amount::Amount;
use crate::analytics::csv::{self, CsvError};
use crate::analytics::{Directory, Flow, Movement};
use crate::ids::{OperatorId, WalletId};
use crate::time::{china_day, format_day, parse_day};

/// A count and the money it moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub amount: Amount,
}

impl Tally {
    fn add(&mut self, amount: Amount) {
        self.count += 1;
        self.amount = Amount::from_fen(self.amount.fen() + amount.fen());
    }
}

/// How a transaction was made, as the statistics count channels.
pub fn channel_name(flow: Flow) -> &'static str {
    match flow {
        Flow::PersonToPerson => "person_to_person",
        Flow::Merchant { channel, .. } => channel.as_str(),
        Flow::OfflineSettlement => "offline_settlement",
        Flow::Refund => "refund",
        Flow::Exchange => "exchange",
        Flow::DepositBack => "deposit_back",
        Flow::DeviceLoad => "device_load",
        Flow::DeviceUnload => "device_unload",
        Flow::OfflineReversal => "offline_reversal",
        Flow::OfflineLossCover => "offline_loss_cover",
        Flow::Scheduled => "scheduled",
        Flow::ContractRelease => "contract_release",
        Flow::RedPacket => "red_packet",
        Flow::Other => "other",
    }
}

#[derive(Clone, Debug, Default)]
pub struct Statistics {
    by_day: BTreeMap<u32, Tally>,
    active_by_day: BTreeMap<u32, u64>,
    by_channel: BTreeMap<&'static str, Tally>,
    by_operator: BTreeMap<OperatorId, Tally>,
    by_region: BTreeMap<u32, Tally>,
    by_mcc: BTreeMap<u16, Tally>,
    /// Money into and out of e-CNY and secure elements, and refunds: not transactions.
    movements: BTreeMap<&'static str, Tally>,
    /// The last day each wallet was active (0: never), indexed by wallet id. The stream is in
    /// time order, so a wallet is counted once per day without a set per day.
    last_active_day: Vec<u32>,
    merchants_paid: Vec<bool>,
    merchants_paid_count: u64,
    total: Tally,
}

/// One line of the statistics table: what CSV exports and reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatRow {
    /// `day`, `channel`, `operator`, `region`, `mcc`, `active_wallets`, `merchants`, `movement`
    /// or `total`.
    pub table: String,
    pub key: String,
    pub count: u64,
    pub amount: Amount,
}

impl Statistics {
    pub fn record(&mut self, movement: &Movement, directory: &Directory) {
        if !movement.flow.is_payment() {
            if movement.flow != Flow::Other {
                self.movements
                    .entry(channel_name(movement.flow))
                    .or_default()
                    .add(movement.amount);
            }
            return;
        }
        let day = china_day(movement.at_ms);
        self.total.add(movement.amount);
        self.by_day.entry(day).or_default().add(movement.amount);
        self.by_channel
            .entry(channel_name(movement.flow))
            .or_default()
            .add(movement.amount);
        self.by_operator
            .entry(movement.operator)
            .or_default()
            .add(movement.amount);
        if let Flow::Merchant { merchant, .. } = movement.flow {
            if let Some(profile) = directory.merchant(merchant) {
                self.by_region
                    .entry(profile.region)
                    .or_default()
                    .add(movement.amount);
                self.by_mcc
                    .entry(profile.mcc.code())
                    .or_default()
                    .add(movement.amount);
            }
            let index = merchant.index();
            if index >= self.merchants_paid.len() {
                self.merchants_paid.resize(index + 1, false);
            }
            if !self.merchants_paid[index] {
                self.merchants_paid[index] = true;
                self.merchants_paid_count += 1;
            }
        }
        for wallet in [movement.payer, movement.payee].into_iter().flatten() {
            self.mark_active(wallet, day);
        }
    }

    fn mark_active(&mut self, wallet: WalletId, day: u32) {
        let index = wallet.index();
        if index >= self.last_active_day.len() {
            self.last_active_day.resize(index + 1, 0);
        }
        if self.last_active_day[index] != day {
            self.last_active_day[index] = day;
            *self.active_by_day.entry(day).or_default() += 1;
        }
    }

    pub fn total(&self) -> Tally {
        self.total
    }

    pub fn by_day(&self) -> &BTreeMap<u32, Tally> {
        &self.by_day
    }

    pub fn by_channel(&self) -> &BTreeMap<&'static str, Tally> {
        &self.by_channel
    }

    pub fn by_operator(&self) -> &BTreeMap<OperatorId, Tally> {
        &self.by_operator
    }

    pub fn by_region(&self) -> &BTreeMap<u32, Tally> {
        &self.by_region
    }

    pub fn active_wallets(&self, day: u32) -> u64 {
        self.active_by_day.get(&day).copied().unwrap_or(0)
    }

    pub fn merchants_paid(&self) -> u64 {
        self.merchants_paid_count
    }

    /// Every figure as rows, in a stable order.
    pub fn rows(&self, directory: &Directory) -> Vec<StatRow> {
        let row = |table: &str, key: String, tally: Tally| StatRow {
            table: table.to_string(),
            key,
            count: tally.count,
            amount: tally.amount,
        };
        let count = |table: &str, key: &str, count: u64| StatRow {
            table: table.to_string(),
            key: key.to_string(),
            count,
            amount: Amount::ZERO,
        };
        let mut rows = vec![row("total", "transactions".into(), self.total)];
        rows.extend(
            self.by_day
                .iter()
                .map(|(d, t)| row("day", format_day(*d), *t)),
        );
        rows.extend(
            self.active_by_day
                .iter()
                .map(|(d, n)| count("active_wallets", &format_day(*d), *n)),
        );
        rows.extend(
            self.by_channel
                .iter()
                .map(|(c, t)| row("channel", c.to_string(), *t)),
        );
        rows.extend(
            self.by_operator
                .iter()
                .map(|(o, t)| row("operator", o.to_string(), *t)),
        );
        rows.extend(
            self.by_region
                .iter()
                .map(|(r, t)| row("region", format!("{r:06}"), *t)),
        );
        rows.extend(
            self.by_mcc
                .iter()
                .map(|(m, t)| row("mcc", format!("{m:04}"), *t)),
        );
        rows.push(count(
            "merchants",
            "onboarded",
            directory.merchants().len() as u64,
        ));
        rows.push(count("merchants", "paid", self.merchants_paid_count));
        rows.push(count("wallets", "opened", directory.wallet_count() as u64));
        rows.extend(
            self.movements
                .iter()
                .map(|(m, t)| row("movement", m.to_string(), *t)),
        );
        rows
    }

    /// The figures for people: totals, then each table.
    pub fn summary(&self, directory: &Directory) -> String {
        let mut out = String::new();
        let days = self.by_day.len().max(1) as u64;
        let active: u64 = self.active_by_day.values().sum();
        let _ = writeln!(
            out,
            "transactions: {} for {} over {} day(s); {} wallets opened, {} active on an average day; {} merchants onboarded, {} paid",
            self.total.count,
            self.total.amount.yuan_sign(),
            self.by_day.len(),
            directory.wallet_count(),
            active / days,
            directory.merchants().len(),
            self.merchants_paid_count
        );
        let mut table = |title: &str, lines: Vec<(String, Tally)>| {
            let _ = writeln!(out, "by {title}:");
            for (key, tally) in lines {
                let _ = writeln!(
                    out,
                    "  {key:<20} {:>10} {:>22}",
                    tally.count,
                    tally.amount.yuan_sign().to_string()
                );
            }
        };
        table(
            "channel",
            self.by_channel
                .iter()
                .map(|(k, t)| (k.to_string(), *t))
                .collect(),
        );
        table(
            "operator",
            self.by_operator
                .iter()
                .map(|(k, t)| (k.to_string(), *t))
                .collect(),
        );
        table(
            "merchant region",
            self.by_region
                .iter()
                .map(|(k, t)| (format!("{k:06}"), *t))
                .collect(),
        );
        table(
            "day (China time)",
            self.by_day
                .iter()
                .map(|(d, t)| {
                    let key = format!("{} ({} active)", format_day(*d), self.active_wallets(*d));
                    (key, *t)
                })
                .collect(),
        );
        table(
            "movement in and out of e-CNY",
            self.movements
                .iter()
                .map(|(k, t)| (k.to_string(), *t))
                .collect(),
        );
        out
    }
}

const STATISTICS_HEADER: [&str; 4] = ["table", "key", "count", "amount_cny"];

pub fn statistics_csv(rows: &[StatRow]) -> String {
    let mut out = csv::record(&STATISTICS_HEADER);
    for row in rows {
        let count = row.count.to_string();
        let amount = row.amount.to_string();
        out.push_str(&csv::record(&[&row.table, &row.key, &count, &amount]));
    }
    out
}

/// Reads what [`statistics_csv`] wrote; days must be real dates.
pub fn read_statistics_csv(text: &str) -> Result<Vec<StatRow>, CsvError> {
    let rows = csv::parse_table(text, &STATISTICS_HEADER)?;
    rows.into_iter()
        .enumerate()
        .map(|(index, row)| {
            let bad = |what: &'static str, text: &str| CsvError::Field {
                line: index + 2,
                what,
                text: text.to_string(),
            };
            if matches!(row[0].as_str(), "day" | "active_wallets") && parse_day(&row[1]).is_none() {
                return Err(bad("day", &row[1]));
            }
            Ok(StatRow {
                count: row[2].parse().map_err(|_| bad("count", &row[2]))?,
                amount: row[3].parse().map_err(|_| bad("amount", &row[3]))?,
                table: row[0].clone(),
                key: row[1].clone(),
            })
        })
        .collect()
}

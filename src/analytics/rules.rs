//! AML and fraud rules over the stream of movements, each keeping bounded state per wallet in
//! sliding windows, each finding explained: which rule, which wallet, which transfers, and a
//! sentence saying why.
//!
//! - large value: one payment at or above the threshold (a report, not a suspicion);
//! - structuring: several payments just under the threshold within days;
//! - rapid pass-through: money received and most of it sent on within minutes;
//! - fan-in and fan-out: many distinct person-to-person counterparties around one wallet in a day;
//! - velocity: a wallet's payments in an hour far above its own history;
//! - offline anomaly: a secure element blocked at sync as cloned or overspent.

use std::collections::VecDeque;
use std::fmt;

use crate::amount::Amount;
use crate::analytics::{DeviceBlocked, Directory, Flow, Movement};
use crate::ids::{DeviceId, EventId, OperatorId, WalletId};
use crate::ledger::BlockReason;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Most entries one wallet's window keeps; past it the oldest go first. Far above every
/// threshold, so a truncated window still crosses a threshold the full one would.
pub const WINDOW_ENTRIES_MAX: usize = 256;
/// Transfers one finding lists; the explanation gives the full count.
pub const FINDING_TRANSFERS_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    LargeValue = 0,
    Structuring = 1,
    RapidPassThrough = 2,
    FanIn = 3,
    FanOut = 4,
    Velocity = 5,
    OfflineAnomaly = 6,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::LargeValue,
        Rule::Structuring,
        Rule::RapidPassThrough,
        Rule::FanIn,
        Rule::FanOut,
        Rule::Velocity,
        Rule::OfflineAnomaly,
    ];

    /// Stable code, shown in alerts, CSV and labels.
    pub fn code(self) -> &'static str {
        match self {
            Rule::LargeValue => "LARGE_VALUE",
            Rule::Structuring => "STRUCTURING",
            Rule::RapidPassThrough => "RAPID_PASS_THROUGH",
            Rule::FanIn => "FAN_IN",
            Rule::FanOut => "FAN_OUT",
            Rule::Velocity => "VELOCITY",
            Rule::OfflineAnomaly => "OFFLINE_ANOMALY",
        }
    }

    pub fn parse(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.code() == code)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// The rules' thresholds and windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    /// A single payment at or above this is a large-value transfer (¥50,000 by default).
    pub large_value_threshold: Amount,
    /// Payments from this share of the threshold up to just under it count towards structuring.
    pub structuring_band_percent: u8,
    pub structuring_payments_min: usize,
    pub structuring_window_ms: u64,
    pub rapid_window_ms: u64,
    /// Money received within the window that makes pass-through worth a look.
    pub rapid_inflow_min: Amount,
    /// Sent on as a share of what came in: "most of it", and not far more (a merchant sweeping
    /// a day's takings sends far more than its last half hour brought).
    pub rapid_sent_percent_min: u8,
    pub rapid_sent_percent_max: u16,
    pub fan_window_ms: u64,
    pub fan_counterparties_min: usize,
    /// Total within the window: a street vendor paid by many for snacks is not a mule.
    pub fan_amount_min: Amount,
    pub velocity_window_ms: u64,
    pub velocity_payments_min: usize,
    /// How many times its usual hourly rate a wallet must pay at to stand out.
    pub velocity_factor: u32,
    /// History a wallet needs before its usual rate means anything.
    pub velocity_history_min_ms: u64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            large_value_threshold: Amount::from_yuan(50_000),
            structuring_band_percent: 80,
            structuring_payments_min: 3,
            structuring_window_ms: 7 * DAY_MS,
            rapid_window_ms: 30 * MINUTE_MS,
            rapid_inflow_min: Amount::from_yuan(5_000),
            rapid_sent_percent_min: 80,
            rapid_sent_percent_max: 125,
            fan_window_ms: DAY_MS,
            fan_counterparties_min: 10,
            fan_amount_min: Amount::from_yuan(10_000),
            velocity_window_ms: HOUR_MS,
            velocity_payments_min: 20,
            velocity_factor: 10,
            velocity_history_min_ms: 3 * DAY_MS,
        }
    }
}

impl RuleConfig {
    fn structuring_floor(&self) -> Amount {
        Amount::from_fen(
            self.large_value_threshold.fen() * i64::from(self.structuring_band_percent) / 100,
        )
    }

    /// How long a rule stays quiet on a wallet after it fired, so one episode is one alert.
    fn quiet_ms(&self, rule: Rule) -> u64 {
        match rule {
            Rule::LargeValue | Rule::OfflineAnomaly => 0,
            Rule::Structuring => self.structuring_window_ms,
            Rule::RapidPassThrough => self.rapid_window_ms,
            Rule::FanIn | Rule::FanOut => self.fan_window_ms,
            Rule::Velocity => self.velocity_window_ms,
        }
    }
}

/// What a rule found: the raw material of an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The event that made the rule fire; with the rule, the alert's stable key.
    pub trigger: EventId,
    pub wallet: Option<WalletId>,
    pub device: Option<DeviceId>,
    pub operator: Option<OperatorId>,
    pub at_ms: u64,
    /// The money the finding is about (the payment, the band payments, what came in, …).
    pub amount: Amount,
    pub transfers: Vec<EventId>,
    pub explanation: String,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    at_ms: u64,
    event: EventId,
    amount: Amount,
    counterparty: Option<WalletId>,
}

/// One wallet's sliding windows.
#[derive(Clone, Debug, Default)]
struct WalletWindows {
    band_payments: VecDeque<Entry>,
    inflows: VecDeque<Entry>,
    outflows: VecDeque<Entry>,
    senders: VecDeque<Entry>,
    receivers: VecDeque<Entry>,
    recent_payments: VecDeque<Entry>,
    first_payment_ms: Option<u64>,
    payments_total: u64,
    quiet_until_ms: [u64; 7],
}

fn push_bounded(window: &mut VecDeque<Entry>, entry: Entry) {
    if window.len() == WINDOW_ENTRIES_MAX {
        window.pop_front();
    }
    window.push_back(entry);
}

/// Drops entries older than `window_ms` before `now_ms`.
fn prune(window: &mut VecDeque<Entry>, now_ms: u64, window_ms: u64) {
    let oldest = now_ms.saturating_sub(window_ms);
    while window.front().is_some_and(|e| e.at_ms < oldest) {
        window.pop_front();
    }
}

fn total(window: &VecDeque<Entry>) -> Amount {
    Amount::from_fen(window.iter().map(|e| e.amount.fen()).sum())
}

fn events(windows: &[&VecDeque<Entry>]) -> Vec<EventId> {
    let mut all: Vec<EventId> = windows
        .iter()
        .flat_map(|w| w.iter().map(|e| e.event))
        .collect();
    all.sort_unstable();
    all.dedup();
    all.truncate(FINDING_TRANSFERS_MAX);
    all
}

fn distinct_counterparties(window: &VecDeque<Entry>) -> usize {
    let mut parties: Vec<WalletId> = window.iter().filter_map(|e| e.counterparty).collect();
    parties.sort_unstable();
    parties.dedup();
    parties.len()
}

fn duration(ms: u64) -> String {
    match ms {
        ms if ms % DAY_MS == 0 && ms >= DAY_MS => match ms / DAY_MS {
            1 => "24 hours".to_string(),
            days => format!("{days} days"),
        },
        ms if ms % HOUR_MS == 0 && ms >= HOUR_MS => match ms / HOUR_MS {
            1 => "one hour".to_string(),
            hours => format!("{hours} hours"),
        },
        ms => format!("{} minutes", ms / MINUTE_MS),
    }
}

/// The rules with their per-wallet state. Feed it movements in stream order.
pub struct RuleEngine {
    config: RuleConfig,
    /// Indexed by wallet id; grown as wallets appear.
    wallets: Vec<WalletWindows>,
}

impl RuleEngine {
    pub fn new(config: RuleConfig) -> RuleEngine {
        RuleEngine {
            config,
            wallets: Vec::new(),
        }
    }

    pub fn config(&self) -> &RuleConfig {
        &self.config
    }

    fn windows(&mut self, wallet: WalletId) -> &mut WalletWindows {
        let index = wallet.index();
        if index >= self.wallets.len() {
            self.wallets.resize_with(index + 1, WalletWindows::default);
        }
        &mut self.wallets[index]
    }

    /// Whether `rule` may fire on `wallet` now; if so, it stays quiet for its window after.
    fn may_fire(&mut self, wallet: WalletId, rule: Rule, now_ms: u64) -> bool {
        let quiet = self.config.quiet_ms(rule);
        let windows = self.windows(wallet);
        if now_ms < windows.quiet_until_ms[rule as usize] {
            return false;
        }
        windows.quiet_until_ms[rule as usize] = now_ms + quiet;
        true
    }

    /// Runs every rule a movement concerns; returns what they found.
    pub fn observe(&mut self, movement: &Movement, directory: &Directory) -> Vec<Finding> {
        let mut found = Vec::new();
        let between_wallets = matches!(movement.flow, Flow::PersonToPerson | Flow::Merchant { .. });
        if between_wallets {
            let (Some(payer), Some(payee)) = (movement.payer, movement.payee) else {
                return found;
            };
            found.extend(self.large_value(payer, payee, movement));
            found.extend(self.structuring(payer, movement));
            found.extend(self.velocity(payer, movement));
            if movement.flow == Flow::PersonToPerson {
                found.extend(self.fan(Rule::FanIn, payee, payer, movement, directory));
                found.extend(self.fan(Rule::FanOut, payer, payee, movement, directory));
            }
            self.inflow(payee, movement);
        }
        let sends_on =
            between_wallets || matches!(movement.flow, Flow::DepositBack | Flow::DeviceLoad);
        if let (true, Some(payer)) = (sends_on, movement.payer) {
            found.extend(self.rapid_outflow(payer, movement));
        }
        found
    }

    fn large_value(
        &mut self,
        payer: WalletId,
        payee: WalletId,
        movement: &Movement,
    ) -> Option<Finding> {
        let threshold = self.config.large_value_threshold;
        if movement.amount < threshold {
            return None;
        }
        Some(Finding {
            rule: Rule::LargeValue,
            trigger: movement.event,
            wallet: Some(payer),
            device: None,
            operator: Some(movement.operator),
            at_ms: movement.at_ms,
            amount: movement.amount,
            transfers: vec![movement.event],
            explanation: format!(
                "{payer} paid {} to {payee} in one transfer, at or above the {} large-value threshold.",
                movement.amount.yuan_sign(),
                threshold.yuan_sign()
            ),
        })
    }

    fn structuring(&mut self, payer: WalletId, movement: &Movement) -> Option<Finding> {
        let (floor, threshold) = (
            self.config.structuring_floor(),
            self.config.large_value_threshold,
        );
        if movement.amount < floor || movement.amount >= threshold {
            return None;
        }
        let (window_ms, needed) = (
            self.config.structuring_window_ms,
            self.config.structuring_payments_min,
        );
        let windows = self.windows(payer);
        prune(&mut windows.band_payments, movement.at_ms, window_ms);
        push_bounded(&mut windows.band_payments, entry(movement, movement.payee));
        let count = windows.band_payments.len();
        if count < needed || !self.may_fire(payer, Rule::Structuring, movement.at_ms) {
            return None;
        }
        let windows = self.windows(payer);
        let sum = total(&windows.band_payments);
        let transfers = events(&[&windows.band_payments]);
        windows.band_payments.clear();
        Some(Finding {
            rule: Rule::Structuring,
            trigger: movement.event,
            wallet: Some(payer),
            device: None,
            operator: Some(movement.operator),
            at_ms: movement.at_ms,
            amount: sum,
            transfers,
            explanation: format!(
                "{payer} made {count} payments between {} and {} within {} ({} in all), each just under the {} large-value threshold.",
                floor.yuan_sign(),
                Amount::from_fen(threshold.fen() - 1).yuan_sign(),
                duration(window_ms),
                sum.yuan_sign(),
                threshold.yuan_sign()
            ),
        })
    }

    fn inflow(&mut self, payee: WalletId, movement: &Movement) {
        let window_ms = self.config.rapid_window_ms;
        let windows = self.windows(payee);
        prune(&mut windows.inflows, movement.at_ms, window_ms);
        push_bounded(&mut windows.inflows, entry(movement, movement.payer));
    }

    fn rapid_outflow(&mut self, payer: WalletId, movement: &Movement) -> Option<Finding> {
        let config = self.config;
        let windows = self.windows(payer);
        prune(&mut windows.inflows, movement.at_ms, config.rapid_window_ms);
        prune(
            &mut windows.outflows,
            movement.at_ms,
            config.rapid_window_ms,
        );
        push_bounded(&mut windows.outflows, entry(movement, movement.payee));
        let (came_in, went_out) = (total(&windows.inflows), total(&windows.outflows));
        let sent_percent = i128::from(went_out.fen()) * 100;
        let inflow = i128::from(came_in.fen());
        let most_of_it = sent_percent >= inflow * i128::from(config.rapid_sent_percent_min)
            && sent_percent <= inflow * i128::from(config.rapid_sent_percent_max);
        if came_in < config.rapid_inflow_min
            || !most_of_it
            || !self.may_fire(payer, Rule::RapidPassThrough, movement.at_ms)
        {
            return None;
        }
        let windows = self.windows(payer);
        let first_in = windows.inflows.front().map_or(movement.at_ms, |e| e.at_ms);
        let transfers = events(&[&windows.inflows, &windows.outflows]);
        let minutes = (movement.at_ms.saturating_sub(first_in)).div_ceil(MINUTE_MS);
        let explanation = format!(
            "{payer} received {} and sent {} on ({}% of it) within {minutes} minutes.",
            came_in.yuan_sign(),
            went_out.yuan_sign(),
            sent_percent / inflow.max(1)
        );
        windows.inflows.clear();
        windows.outflows.clear();
        Some(Finding {
            rule: Rule::RapidPassThrough,
            trigger: movement.event,
            wallet: Some(payer),
            device: None,
            operator: Some(movement.operator),
            at_ms: movement.at_ms,
            amount: came_in,
            transfers,
            explanation,
        })
    }

    /// Fan-in watches a payee's distinct payers; fan-out a payer's distinct payees. Merchants'
    /// wallets are left out: being paid by many is what a shop is for.
    fn fan(
        &mut self,
        rule: Rule,
        wallet: WalletId,
        counterparty: WalletId,
        movement: &Movement,
        directory: &Directory,
    ) -> Option<Finding> {
        if directory.merchant_of_wallet(wallet).is_some() {
            return None;
        }
        let config = self.config;
        let windows = self.windows(wallet);
        let window = match rule {
            Rule::FanIn => &mut windows.senders,
            _ => &mut windows.receivers,
        };
        prune(window, movement.at_ms, config.fan_window_ms);
        push_bounded(window, entry(movement, Some(counterparty)));
        if window.len() < config.fan_counterparties_min {
            return None;
        }
        let distinct = distinct_counterparties(window);
        let sum = total(window);
        if distinct < config.fan_counterparties_min
            || sum < config.fan_amount_min
            || !self.may_fire(wallet, rule, movement.at_ms)
        {
            return None;
        }
        let windows = self.windows(wallet);
        let window = match rule {
            Rule::FanIn => &mut windows.senders,
            _ => &mut windows.receivers,
        };
        let transfers = events(&[window]);
        window.clear();
        let what = match rule {
            Rule::FanIn => "received person-to-person payments from",
            _ => "sent person-to-person payments to",
        };
        Some(Finding {
            rule,
            trigger: movement.event,
            wallet: Some(wallet),
            device: None,
            operator: directory.wallet_operator(wallet),
            at_ms: movement.at_ms,
            amount: sum,
            transfers,
            explanation: format!(
                "{wallet} {what} {distinct} different wallets within {} ({} in all).",
                duration(config.fan_window_ms),
                sum.yuan_sign()
            ),
        })
    }

    fn velocity(&mut self, payer: WalletId, movement: &Movement) -> Option<Finding> {
        let config = self.config;
        let windows = self.windows(payer);
        let first = *windows.first_payment_ms.get_or_insert(movement.at_ms);
        windows.payments_total += 1;
        prune(
            &mut windows.recent_payments,
            movement.at_ms,
            config.velocity_window_ms,
        );
        push_bounded(
            &mut windows.recent_payments,
            entry(movement, movement.payee),
        );
        let count = windows.recent_payments.len();
        let window_start = windows.recent_payments.front().map_or(0, |e| e.at_ms);
        let history_ms = window_start.saturating_sub(first);
        if count < config.velocity_payments_min || history_ms < config.velocity_history_min_ms {
            return None;
        }
        let before = windows.payments_total - count as u64;
        // count / window ≥ factor × before / history, in integers.
        let fast = count as u128 * u128::from(history_ms)
            >= u128::from(config.velocity_factor)
                * u128::from(before)
                * u128::from(config.velocity_window_ms);
        if !fast || !self.may_fire(payer, Rule::Velocity, movement.at_ms) {
            return None;
        }
        let windows = self.windows(payer);
        let transfers = events(&[&windows.recent_payments]);
        let sum = total(&windows.recent_payments);
        let hourly = before as f64 * HOUR_MS as f64 / history_ms as f64;
        let days = history_ms as f64 / DAY_MS as f64;
        Some(Finding {
            rule: Rule::Velocity,
            trigger: movement.event,
            wallet: Some(payer),
            device: None,
            operator: Some(movement.operator),
            at_ms: movement.at_ms,
            amount: sum,
            transfers,
            explanation: format!(
                "{payer} made {count} payments ({}) within {}, against {hourly:.2} an hour over its previous {days:.1} days.",
                sum.yuan_sign(),
                duration(config.velocity_window_ms),
            ),
        })
    }

    /// A secure element the registration center blocked at sync, with the loss covers its
    /// issuer paid in the same sync so far (later ones are attached to the alert as they come).
    pub fn device_blocked(&self, blocked: &DeviceBlocked, covers: &[Movement]) -> Finding {
        let owner = match blocked.wallet {
            Some(wallet) => format!("of wallet {wallet}"),
            None => "with no online wallet".to_string(),
        };
        let why = match blocked.reason {
            BlockReason::CounterReused => {
                "two different offline payments carried one counter, so it was cloned"
            }
            BlockReason::Overspent => {
                "it spent more offline than was ever loaded or paid to it, so it was rolled back or cloned"
            }
            BlockReason::RolledBack => {
                "its own signed counters went back below what it had already spent, so it was restored from an older copy"
            }
            BlockReason::ReportedByIssuer => {
                "its issuer blocked it on its holder's report that it was lost or stolen"
            }
        };
        Finding {
            rule: Rule::OfflineAnomaly,
            trigger: blocked.event,
            wallet: blocked.wallet,
            device: Some(blocked.device),
            operator: blocked.operator,
            at_ms: blocked.at_ms,
            amount: Amount::from_fen(covers.iter().map(|c| c.amount.fen()).sum()),
            transfers: covers.iter().map(|c| c.event).collect(),
            explanation: format!(
                "Secure element {} {owner} was blocked at sync ({}): {why}. Its issuer covers any overspend from its vault; covers paid in that sync are this alert's transfers.",
                blocked.device,
                blocked.reason.code()
            ),
        }
    }
}

fn entry(movement: &Movement, counterparty: Option<WalletId>) -> Entry {
    Entry {
        at_ms: movement.at_ms,
        event: movement.event,
        amount: movement.amount,
        counterparty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_709_251_200_000;

    fn yuan(y: i64) -> Amount {
        Amount::from_yuan(y)
    }

    struct Feed {
        engine: RuleEngine,
        directory: Directory,
        next_event: u64,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                engine: RuleEngine::new(RuleConfig::default()),
                directory: Directory::default(),
                next_event: 1,
            }
        }

        fn movement(
            &mut self,
            at_ms: u64,
            payer: u32,
            payee: u32,
            amount: Amount,
            flow: Flow,
        ) -> Vec<Finding> {
            self.next_event += 1;
            let movement = Movement {
                event: EventId(self.next_event),
                at_ms,
                amount,
                payer: (payer > 0).then_some(WalletId(payer)),
                payee: (payee > 0).then_some(WalletId(payee)),
                operator: OperatorId(1),
                flow,
            };
            self.engine.observe(&movement, &self.directory)
        }

        fn pay(&mut self, at_ms: u64, payer: u32, payee: u32, amount: Amount) -> Vec<Finding> {
            self.movement(at_ms, payer, payee, amount, Flow::PersonToPerson)
        }

        fn rules(found: &[Finding]) -> Vec<Rule> {
            found.iter().map(|f| f.rule).collect()
        }
    }

    #[test]
    fn a_payment_of_the_threshold_is_large_value_and_a_fen_less_is_not() {
        let mut feed = Feed::new();
        assert!(feed.pay(T0, 1, 2, Amount::from_fen(4_999_999)).is_empty());
        let found = feed.pay(T0, 1, 2, yuan(50_000));
        assert_eq!(Feed::rules(&found), vec![Rule::LargeValue]);
        assert_eq!(found[0].wallet, Some(WalletId(1)));
        assert_eq!(
            found[0].explanation,
            "W0000000001 paid ¥50,000.00 to W0000000002 in one transfer, at or above the ¥50,000.00 large-value threshold."
        );
    }

    #[test]
    fn three_payments_just_under_the_threshold_within_a_week_are_structuring_once() {
        let mut feed = Feed::new();
        assert!(feed.pay(T0, 1, 2, yuan(48_000)).is_empty());
        assert!(feed.pay(T0 + 2 * DAY_MS, 1, 3, yuan(45_500)).is_empty());
        let found = feed.pay(T0 + 6 * DAY_MS, 1, 2, yuan(49_900));
        assert_eq!(Feed::rules(&found), vec![Rule::Structuring]);
        assert_eq!(found[0].transfers.len(), 3);
        assert_eq!(found[0].amount, yuan(143_400));
        assert!(found[0]
            .explanation
            .contains("3 payments between ¥40,000.00 and ¥49,999.99 within 7 days"));
        // The same episode does not alert again while its window lasts.
        assert!(feed
            .pay(T0 + 6 * DAY_MS + HOUR_MS, 1, 2, yuan(41_000))
            .is_empty());
        // Spread over more than a week, three such payments are not structuring.
        let mut feed = Feed::new();
        for week in 0..3 {
            assert!(feed
                .pay(T0 + week * 8 * DAY_MS, 5, 6, yuan(45_000))
                .is_empty());
        }
    }

    #[test]
    fn money_in_and_mostly_out_within_minutes_is_rapid_pass_through() {
        let mut feed = Feed::new();
        assert!(feed.pay(T0, 1, 2, yuan(20_000)).is_empty());
        let found = feed.pay(T0 + 12 * MINUTE_MS, 2, 3, yuan(19_000));
        assert_eq!(Feed::rules(&found), vec![Rule::RapidPassThrough]);
        assert_eq!(found[0].wallet, Some(WalletId(2)));
        assert_eq!(found[0].transfers.len(), 2);
        assert!(found[0]
            .explanation
            .contains("received ¥20,000.00 and sent ¥19,000.00 on (95% of it) within 12 minutes"));
        // Sent on an hour later: outside the window.
        let mut feed = Feed::new();
        feed.pay(T0, 1, 2, yuan(20_000));
        assert!(feed.pay(T0 + HOUR_MS, 2, 3, yuan(19_000)).is_empty());
        // A shop sweeping a day's takings sends far more than its last half hour brought.
        let mut feed = Feed::new();
        feed.pay(T0, 1, 2, yuan(6_000));
        assert!(feed
            .movement(T0 + MINUTE_MS, 2, 0, yuan(90_000), Flow::DepositBack)
            .is_empty());
        // Household sums stay under the inflow floor.
        let mut feed = Feed::new();
        feed.pay(T0, 1, 2, yuan(4_000));
        assert!(feed.pay(T0 + 10 * MINUTE_MS, 2, 3, yuan(3_600)).is_empty());
    }

    #[test]
    fn many_distinct_payers_into_one_wallet_in_a_day_is_fan_in_when_the_sums_add_up() {
        let mut feed = Feed::new();
        let mut found = Vec::new();
        for payer in 0..10 {
            found = feed.pay(T0 + payer * HOUR_MS, 100 + payer as u32, 1, yuan(1_200));
        }
        assert_eq!(Feed::rules(&found), vec![Rule::FanIn]);
        assert!(found[0]
            .explanation
            .contains("from 10 different wallets within 24 hours (¥12,000.00 in all)"));
        // A street vendor: as many payers, a snack each.
        let mut feed = Feed::new();
        for payer in 0..15 {
            assert!(feed
                .pay(T0 + payer * MINUTE_MS, 100 + payer as u32, 1, yuan(30))
                .is_empty());
        }
        // The same friend ten times is one counterparty.
        let mut feed = Feed::new();
        for n in 0..10 {
            assert!(feed.pay(T0 + n * MINUTE_MS, 100, 1, yuan(1_500)).is_empty());
        }
    }

    #[test]
    fn paying_many_distinct_wallets_in_a_day_is_fan_out() {
        let mut feed = Feed::new();
        let found: Vec<Finding> = (0..12)
            .flat_map(|n| feed.pay(T0 + n * 10 * MINUTE_MS, 1, 200 + n as u32, yuan(1_000)))
            .collect();
        assert_eq!(Feed::rules(&found), vec![Rule::FanOut]);
        assert_eq!(found[0].transfers.len(), 10);
    }

    #[test]
    fn a_burst_far_above_a_wallets_own_history_is_velocity() {
        let mut feed = Feed::new();
        let shop = Flow::Merchant {
            merchant: crate::ids::MerchantId(1),
            channel: crate::channels::acquiring::PaymentChannel::StaticQr,
        };
        for day in 0..5 {
            for n in 0..2 {
                assert!(feed
                    .movement(T0 + day * DAY_MS + n * 3 * HOUR_MS, 1, 9, yuan(30), shop)
                    .is_empty());
            }
        }
        let burst = T0 + 5 * DAY_MS;
        let found: Vec<Finding> = (0..25)
            .flat_map(|n| feed.movement(burst + n * 2 * MINUTE_MS, 1, 9, yuan(20), shop))
            .collect();
        assert_eq!(Feed::rules(&found), vec![Rule::Velocity]);
        assert!(found[0]
            .explanation
            .starts_with("W0000000001 made 20 payments (¥400.00) within one hour"));
        // The same burst from a wallet with no history to compare against is not flagged.
        let mut feed = Feed::new();
        for n in 0..25 {
            assert!(feed
                .movement(burst + n * 2 * MINUTE_MS, 2, 9, yuan(20), shop)
                .is_empty());
        }
    }

    #[test]
    fn windows_stay_bounded_whatever_one_wallet_does() {
        let mut feed = Feed::new();
        for n in 0..5_000u64 {
            feed.pay(T0 + n * 1_000, 1 + (n % 3_000) as u32, 7, yuan(1));
            feed.pay(T0 + n * 1_000, 7, 1 + (n % 3_000) as u32, yuan(1));
        }
        let windows = &feed.engine.wallets[7];
        for window in [
            &windows.inflows,
            &windows.outflows,
            &windows.senders,
            &windows.receivers,
            &windows.recent_payments,
        ] {
            assert!(window.len() <= WINDOW_ENTRIES_MAX);
        }
    }
}

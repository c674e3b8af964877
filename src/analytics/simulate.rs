//! `ecny simulate`: a synthetic city driven through the real platform, so that the rules can be
//! measured. Wallets at three operators in every KYC class, merchants with categories, regions
//! and terminals, and a month of payments on every channel: person to person, printed and order
//! QR codes, tap zones, payment codes at scan guns, sub-wallet charges, cash on delivery, and
//! dual-offline taps between secure elements settled at sync. Mixed in, labelled: structuring,
//! fan-in mules, fan-out distributors, rapid pass-through, large-value transfers, velocity bursts
//! and cloned secure elements; and benign near misses (a car deposit just under the threshold, a
//! street vendor paid by many, a dinner bill split, festival red envelopes, a busy shopper) that
//! look like the patterns without crossing them.
//!
//! Deterministic from the seed: the same seed gives the same commands at the same simulated
//! times, the same log and the same labels. Time is the simulated clock's: each five minutes of
//! the simulated day are one operator batch per operator, many batches per group commit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::amount::Amount;
use crate::analytics::alerts::AlertBook;
use crate::analytics::csv::{self, CsvError};
use crate::analytics::rules::Rule;
use crate::analytics::{china_time, parse_china_time};
use crate::bench::{progress, SplitMix};
use crate::certs::KeyPair;
use crate::channels::acquiring::{merchant_payment, PaidAt, PaymentChannel, TerminalKind};
use crate::channels::emvco::Mcc;
use crate::channels::payment_code::{CODE_STEP_S, PASSWORD_FREE_CAP_DEFAULT};
use crate::command::{Command, CommandResult, Origin, Outcome, Submission};
use crate::ids::{
    AccountId, DeviceId, IdempotencyKey, MerchantId, OperatorId, SubWalletId, WalletId,
};
use crate::node::Clock;
use crate::offline::applet::Applet;
use crate::offline::issuer::{OperatorIssuer, SyncError};
use crate::offline::profiles::{Profile, WalletForm};
use crate::offline::protocol::Relay;
use crate::platform::{seeded_issuers, seeded_key, Platform, PlatformError};
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
use crate::wallet::sub_wallet::SubWalletLimits;
use crate::wallet::{days_from_civil, ClassLimits, WalletClass};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;
/// The first simulated day, 2024-03-01, at midnight China time.
pub fn simulation_start_ms() -> u64 {
    days_from_civil(2024, 3, 1) as u64 * DAY_MS - 8 * HOUR_MS
}
/// Each operator's commands of one tick form one batch, applied at the tick's time: the
/// simulation's resolution. Steps that depend on each other are planned a tick apart or more.
const TICK_MS: u64 = 5 * MINUTE_MS;
/// Operator batches per group commit (one fdatasync each).
const GROUP_SUBMISSIONS_MAX: usize = 128;
/// Commands per batch while opening wallets.
const SETUP_BATCH_COMMANDS: usize = 4_096;
pub const SIMULATION_WALLETS_MIN: usize = 200;
pub const SIMULATION_WALLETS_MAX: usize = 2_000_000;
pub const SIMULATION_MERCHANTS_MIN: usize = 12;
pub const SIMULATION_DAYS_MAX: u32 = 366;
const OPERATOR_NAMES: [&str; 3] = [
    "Jiangnan Commercial Bank",
    "Lakeside Digital Bank",
    "Harbour Mobile Wallet",
];
/// Suzhou's districts and county-level cities (GB/T 2260).
const REGIONS: [u32; 8] = [
    320505, 320506, 320507, 320508, 320509, 320581, 320582, 320583,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimulationConfig {
    pub wallets: usize,
    pub merchants: usize,
    pub days: u32,
    pub seed: u64,
}

impl SimulationConfig {
    pub fn check(&self) -> Result<(), SimulationError> {
        let bad = |what: String| Err(SimulationError::Config(what));
        if !(SIMULATION_WALLETS_MIN..=SIMULATION_WALLETS_MAX).contains(&self.wallets) {
            return bad(format!(
                "--wallets must be between {SIMULATION_WALLETS_MIN} and {SIMULATION_WALLETS_MAX}"
            ));
        }
        if self.merchants < SIMULATION_MERCHANTS_MIN || self.merchants > self.wallets / 4 {
            return bad(format!(
                "--merchants must be at least {SIMULATION_MERCHANTS_MIN} and at most a quarter of the wallets"
            ));
        }
        if !(1..=SIMULATION_DAYS_MAX).contains(&self.days) {
            return bad(format!(
                "--days must be between 1 and {SIMULATION_DAYS_MAX}"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum SimulationError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("simulation set-up refused: {what} ({code})")]
    Refused { what: String, code: &'static str },
    #[error("secure element: {0}")]
    Offline(String),
}

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

/// How one rule did against the labels, counted by wallet: a wallet the rule flagged is a true
/// positive when it carries the rule's own pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleScore {
    pub rule: Rule,
    pub alerts: usize,
    pub flagged_wallets: usize,
    pub true_positives: usize,
    /// Flagged wallets that carry another pattern's label: suspicious, just not this way.
    pub flagged_with_other_label: usize,
    pub labelled_wallets: usize,
}

impl RuleScore {
    pub fn precision(&self) -> Option<f64> {
        (self.flagged_wallets > 0).then(|| self.true_positives as f64 / self.flagged_wallets as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.labelled_wallets > 0)
            .then(|| self.true_positives as f64 / self.labelled_wallets as f64)
    }
}

/// Precision and recall of each rule against the generator's labels.
pub fn evaluate(alerts: &AlertBook, labels: &[Label]) -> Vec<RuleScore> {
    use std::collections::BTreeSet;
    Rule::ALL
        .into_iter()
        .map(|rule| {
            let flagged: BTreeSet<WalletId> = alerts
                .all()
                .iter()
                .filter(|a| a.rule == rule)
                .filter_map(|a| a.wallet)
                .collect();
            let labelled: BTreeSet<WalletId> = labels
                .iter()
                .filter(|l| l.pattern.rule() == rule)
                .map(|l| l.wallet)
                .collect();
            let any_label: BTreeSet<WalletId> = labels.iter().map(|l| l.wallet).collect();
            let true_positives = flagged.intersection(&labelled).count();
            RuleScore {
                rule,
                alerts: alerts.count_by_rule(rule),
                flagged_wallets: flagged.len(),
                true_positives,
                flagged_with_other_label: flagged
                    .iter()
                    .filter(|w| !labelled.contains(w) && any_label.contains(w))
                    .count(),
                labelled_wallets: labelled.len(),
            }
        })
        .collect()
}

#[derive(Clone, Debug, Default)]
pub struct SimulationReport {
    pub commands: u64,
    pub accepted: u64,
    /// Refused commands by error code: the generator keeps within limits from a shadow of each
    /// balance, so these are the few it mispredicted.
    pub refused: BTreeMap<&'static str, u64>,
    /// Labelled episodes with a refused step (their labels stay: the rule may still see them).
    pub episodes_with_refusals: usize,
    /// Planned episodes the city could not stage, left out of the labels.
    pub episodes_not_staged: usize,
    pub offline_taps: u64,
    pub labels: Vec<Label>,
    pub events: usize,
    pub setup: Duration,
    pub traffic: Duration,
}

/// The payment-code step of an action at `at`, whose tick is logged at its start.
fn code_step_at(at: u64) -> u64 {
    at / TICK_MS * TICK_MS / 1000 / CODE_STEP_S
}

/// A clock that gives each submission the simulated time it was scheduled for.
struct ScheduledClock {
    times: Arc<Mutex<VecDeque<u64>>>,
    last: u64,
}

impl Clock for ScheduledClock {
    fn now_ms(&mut self) -> u64 {
        if let Some(next) = self.times.lock().expect("clock queue").pop_front() {
            self.last = next;
        }
        self.last
    }
}

/// SplitMix with the draws a city needs.
struct Random(SplitMix);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0.below(bound.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.0.below(100) < percent
    }

    /// Inclusive.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.0.below(high - low + 1)
    }

    /// Log-uniform between two yuan amounts, to the fen: many small payments, few large.
    fn yuan(&mut self, low: i64, high: i64) -> Amount {
        let unit = (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = ((low * 100) as f64, (high * 100) as f64);
        let fen = (low.ln() + unit * (high.ln() - low.ln())).exp().round() as i64;
        Amount::from_fen(fen.clamp(low as i64, high as i64))
    }

    /// A moment of the day, weighted towards meals and commutes.
    fn time_of_day(&mut self) -> u64 {
        const WEIGHTS: [u64; 24] = [
            1, 1, 0, 0, 0, 1, 3, 8, 10, 8, 7, 9, 14, 10, 7, 7, 8, 10, 14, 13, 10, 7, 4, 2,
        ];
        let mut draw = self.0.below(WEIGHTS.iter().sum());
        let hour = WEIGHTS
            .iter()
            .position(|w| {
                if draw < *w {
                    return true;
                }
                draw -= w;
                false
            })
            .unwrap_or(12) as u64;
        hour * HOUR_MS + self.0.below(HOUR_MS)
    }
}

/// A command due at a simulated time, under the operator (or central bank) that submits it.
struct Action {
    at_ms: u64,
    origin: Origin,
    command: Command,
    /// The labelled episode it belongs to, to count refused steps.
    episode: Option<usize>,
}

/// Submits actions minute by minute through the node, one operator batch per operator per
/// minute, many batches per group commit.
struct Driver {
    platform: Platform,
    times: Arc<Mutex<VecDeque<u64>>>,
    central_bank: KeyPair,
    operator_keys: Vec<KeyPair>,
    /// Each wallet's holder key: the center books a holder's money only on its signature.
    holders: HashMap<WalletId, KeyPair>,
    next_key: u128,
    report: SimulationReport,
    refused_episodes: BTreeMap<usize, u32>,
}

impl Driver {
    /// Signs every command that moves a holder's money as its holder would for an entry logged
    /// at `at_ms`; a command whose wallet the state does not know stays unsigned, and refused.
    fn sign_holders(&self, commands: &mut [Command], at_ms: u64) {
        let state = self.platform.state();
        for command in commands.iter_mut().filter(|c| c.needs_holder_signature()) {
            let Ok(Some(wallet)) = state.holder_signer(command) else {
                continue;
            };
            let (Some(key), Ok(holder)) = (self.holders.get(&wallet), state.wallet(wallet)) else {
                continue;
            };
            let context = state.signing_context(holder.operator);
            *command = command
                .clone()
                .sign(key, &context, at_ms + SIGNATURE_WINDOW_MS_CLIENT);
        }
    }

    fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(self.next_key)
    }

    fn signer(&self, origin: Origin) -> &KeyPair {
        match origin {
            Origin::Operator(op) => &self.operator_keys[op.0 as usize - 1],
            Origin::CentralBank => &self.central_bank,
        }
    }

    /// One batch now, its results returned: for set-up steps whose ids later steps need.
    fn batch(
        &mut self,
        at_ms: u64,
        origin: Origin,
        mut commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, SimulationError> {
        self.sign_holders(&mut commands, at_ms);
        self.times.lock().expect("clock queue").push_back(at_ms);
        let submission = Submission::new(origin, &commands, self.signer(origin));
        let results = self
            .platform
            .node_mut()
            .submit(vec![submission])
            .map_err(PlatformError::Node)?
            .remove(0)
            .map_err(PlatformError::Refused)?;
        self.report.commands += results.len() as u64;
        self.report.accepted += results.iter().filter(|r| r.is_ok()).count() as u64;
        Ok(results)
    }

    /// Runs actions in time order; those of one tick and one operator form one batch.
    fn run(&mut self, mut actions: Vec<Action>) -> Result<(), SimulationError> {
        actions.sort_by_key(|a| (a.at_ms / TICK_MS, origin_rank(a.origin), a.at_ms));
        let mut group: Vec<(u64, Submission, Vec<Option<usize>>)> = Vec::new();
        let mut start = 0;
        while start < actions.len() {
            let (tick, origin) = (actions[start].at_ms / TICK_MS, actions[start].origin);
            let end = start
                + actions[start..]
                    .iter()
                    .take_while(|a| a.at_ms / TICK_MS == tick && a.origin == origin)
                    .count();
            let mut commands: Vec<Command> = actions[start..end]
                .iter()
                .map(|a| a.command.clone())
                .collect();
            self.sign_holders(&mut commands, tick * TICK_MS);
            let episodes = actions[start..end].iter().map(|a| a.episode).collect();
            let submission = Submission::new(origin, &commands, self.signer(origin));
            group.push((tick * TICK_MS, submission, episodes));
            if group.len() == GROUP_SUBMISSIONS_MAX {
                self.commit(std::mem::take(&mut group))?;
            }
            start = end;
        }
        self.commit(group)
    }

    fn commit(
        &mut self,
        group: Vec<(u64, Submission, Vec<Option<usize>>)>,
    ) -> Result<(), SimulationError> {
        if group.is_empty() {
            return Ok(());
        }
        let mut submissions = Vec::with_capacity(group.len());
        let mut episodes = Vec::with_capacity(group.len());
        {
            let mut times = self.times.lock().expect("clock queue");
            for (at, submission, tags) in group {
                times.push_back(at);
                submissions.push(submission);
                episodes.push(tags);
            }
        }
        let outcomes = self
            .platform
            .node_mut()
            .submit(submissions)
            .map_err(PlatformError::Node)?;
        assert!(
            self.times.lock().expect("clock queue").is_empty(),
            "every submission took its scheduled time"
        );
        for (outcome, tags) in outcomes.into_iter().zip(episodes) {
            let results = outcome.map_err(PlatformError::Refused)?;
            for (result, tag) in results.iter().zip(tags) {
                self.report.commands += 1;
                match result {
                    Ok(_) => self.report.accepted += 1,
                    Err(error) => {
                        *self.report.refused.entry(error.code()).or_default() += 1;
                        if let Some(episode) = tag {
                            *self.refused_episodes.entry(episode).or_default() += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn origin_rank(origin: Origin) -> u16 {
    match origin {
        Origin::CentralBank => 0,
        Origin::Operator(op) => op.0,
    }
}

fn refused(what: &str, result: &CommandResult) -> SimulationError {
    SimulationError::Refused {
        what: what.to_string(),
        code: result
            .as_ref()
            .err()
            .map_or("UNEXPECTED_OUTCOME", |e| e.code()),
    }
}

/// What a person in the city does and is: the generator's shadow of the ledger, refreshed from
/// the state every night.
#[derive(Clone, Debug)]
struct Person {
    wallet: WalletId,
    operator: OperatorId,
    class: WalletClass,
    /// Spendable: last night's balance, less what was spent since, plus exchanges.
    balance: i64,
    /// Received today: counted against the balance cap, not spent before the ledger has it.
    incoming: i64,
    spent_today: i64,
    friends: [u32; 6],
    sub_wallet: Option<(SubWalletId, usize)>,
    role: Role,
    /// The payment-code step last charged: a wallet's code is taken once a step.
    last_code_step: Option<u64>,
}

/// Who a person is in the simulation. Everyone pays and gets paid as people do; actors also
/// play their part in a labelled pattern and are kept out of the near misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Benign,
    Actor(Pattern),
    /// Sends the money a pass-through actor moves on; unlabelled, as a victim would be.
    Source,
}

impl Person {
    fn limits(&self) -> ClassLimits {
        ClassLimits::default_for(self.class)
    }

    fn can_pay(&self, amount: Amount) -> bool {
        let limits = self.limits();
        let fen = amount.fen();
        fen <= self.balance
            && limits.single_payment.is_none_or(|l| fen <= l.fen())
            && limits
                .daily
                .is_none_or(|l| self.spent_today + fen <= l.fen())
    }

    fn can_receive(&self, amount: Amount) -> bool {
        self.limits()
            .balance_cap
            .is_none_or(|cap| self.balance + self.incoming + amount.fen() <= cap.fen())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShopKind {
    Store,
    Online,
    Delivery,
}

#[derive(Clone, Debug)]
struct Shop {
    id: MerchantId,
    wallet: WalletId,
    operator: OperatorId,
    kind: ShopKind,
    /// Typical payment range in yuan.
    range: (i64, i64),
    /// Terminal numbers: POS till, scan gun, courier or web checkout.
    pos: u16,
    scan_gun: u16,
    remote: u16,
    balance: i64,
}

/// Merchant categories: code, kind, typical yuan range.
const CATEGORIES: [(u16, ShopKind, (i64, i64)); 12] = [
    (5411, ShopKind::Store, (10, 400)),
    (5812, ShopKind::Store, (30, 400)),
    (5814, ShopKind::Store, (8, 60)),
    (5499, ShopKind::Store, (3, 80)),
    (5541, ShopKind::Store, (100, 500)),
    (4121, ShopKind::Store, (12, 120)),
    (5912, ShopKind::Store, (15, 300)),
    (5651, ShopKind::Store, (60, 1_200)),
    (8299, ShopKind::Store, (200, 1_900)),
    (5732, ShopKind::Online, (100, 1_900)),
    (5399, ShopKind::Online, (15, 600)),
    (5811, ShopKind::Delivery, (20, 150)),
];

/// A secure element in the city: a holder's card or phone, or a merchant's phone.
struct Card {
    id: DeviceId,
    applet: Applet,
    operator: OperatorId,
    key: KeyPair,
    owner: usize,
    balance: i64,
    blocked: bool,
}

/// An episode of a labelled pattern, or one step of one, due on a day.
#[derive(Clone, Copy, Debug)]
struct Episode {
    day: u32,
    pattern: Pattern,
    actor: usize,
    label: usize,
}

struct City {
    random: Random,
    driver: Driver,
    people: Vec<Person>,
    shops: Vec<Shop>,
    /// People at least class 3 and not actors: feeders, recipients and near misses.
    verified: Vec<usize>,
    issuers: Vec<OperatorIssuer>,
    cards: Vec<Card>,
    shop_cards: Vec<Card>,
    episodes: Vec<Episode>,
    labels: Vec<Label>,
    /// Actions planned for a later day.
    later: Vec<(u32, Action)>,
    orders: u64,
    start_ms: u64,
    days: u32,
}

/// Runs the simulation into `dir` (new or empty) and returns what it did, labels included.
pub fn simulate(
    dir: &Path,
    config: &SimulationConfig,
) -> Result<SimulationReport, SimulationError> {
    config.check()?;
    if dir.join("log").exists() {
        return Err(SimulationError::Config(format!(
            "{} already holds a ledger; simulate into a new or empty directory",
            dir.display()
        )));
    }
    let started = Instant::now();
    let mut city = City::found(dir, config)?;
    city.populate(config)?;
    city.driver.report.setup = started.elapsed();
    let started = Instant::now();
    let bar = progress(u64::from(config.days), "simulated days");
    for day in 0..config.days {
        city.day(day)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    city.driver.report.traffic = started.elapsed();
    let mut report = std::mem::take(&mut city.driver.report);
    report.episodes_with_refusals = city
        .driver
        .refused_episodes
        .keys()
        .map(|e| city.episodes[*e].label)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    report.events = city.driver.platform.state().ledger().events().len();
    // An episode the city could not stage (a card spent down before its copy was made) is
    // no episode: it is left out of the labels rather than counted as a miss.
    report.episodes_not_staged = city.labels.iter().filter(|l| l.to_ms == 0).count();
    report.labels = city.labels.into_iter().filter(|l| l.to_ms > 0).collect();
    Ok(report)
}

impl City {
    /// The platform on its simulated clock, three operators with reserves and e-CNY.
    fn found(dir: &Path, config: &SimulationConfig) -> Result<City, SimulationError> {
        let seed = format!("simulate-{}", config.seed);
        let start_ms = simulation_start_ms();
        let setup_ms = start_ms - DAY_MS + 9 * HOUR_MS;
        let times = Arc::new(Mutex::new(VecDeque::from([setup_ms])));
        let clock = ScheduledClock {
            times: times.clone(),
            last: setup_ms,
        };
        let (mut platform, _) = Platform::open_seeded(dir, &seed, Box::new(clock))?;
        let mut operator_keys = Vec::new();
        for name in OPERATOR_NAMES {
            times.lock().expect("clock queue").push_back(setup_ms);
            let id = platform.create_operator(name)?;
            operator_keys.push(seeded_key(&seed, &id.to_string()));
        }
        let start_s = (start_ms / 1000) as u32;
        let issuers = seeded_issuers(&seed, 3, (start_s - 30 * 86_400, start_s + 1_800 * 86_400));
        let driver = Driver {
            platform,
            times,
            central_bank: seeded_key(&seed, "central-bank"),
            operator_keys,
            holders: HashMap::new(),
            next_key: 0,
            report: SimulationReport::default(),
            refused_episodes: BTreeMap::new(),
        };
        let mut city = City {
            random: Random(SplitMix(config.seed)),
            driver,
            people: Vec::new(),
            shops: Vec::new(),
            verified: Vec::new(),
            issuers,
            cards: Vec::new(),
            shop_cards: Vec::new(),
            episodes: Vec::new(),
            labels: Vec::new(),
            later: Vec::new(),
            orders: 0,
            start_ms,
            days: config.days,
        };
        // Enough e-CNY for every exchange of the month; unused issuance stays in the vaults.
        let budget = Amount::from_yuan(config.wallets as i64 * 60_000 + 100_000_000);
        let mut commands = Vec::new();
        for op in 1..=3 {
            let operator = OperatorId(op);
            commands.push(Command::FundReserves {
                operator,
                amount: budget,
            });
            commands.push(Command::Issue {
                operator,
                amount: budget,
            });
        }
        for result in city.driver.batch(setup_ms, Origin::CentralBank, commands)? {
            result.map_err(|e| SimulationError::Refused {
                what: "issuance".into(),
                code: e.code(),
            })?;
        }
        Ok(city)
    }

    fn setup_ms(&self) -> u64 {
        self.start_ms - DAY_MS + 10 * HOUR_MS
    }

    fn populate(&mut self, config: &SimulationConfig) -> Result<(), SimulationError> {
        let classes = self.draw_classes(config.wallets);
        let bar = progress(config.wallets as u64, "opening wallets");
        for chunk in (0..config.wallets)
            .collect::<Vec<_>>()
            .chunks(SETUP_BATCH_COMMANDS)
        {
            for op in 1..=3u16 {
                let mine: Vec<usize> = chunk
                    .iter()
                    .copied()
                    .filter(|i| i % 3 == op as usize - 1)
                    .collect();
                let opened = self.open_wallets(OperatorId(op), &mine, &classes)?;
                for (index, wallet) in mine.iter().zip(opened) {
                    self.people.push(Person {
                        wallet,
                        operator: OperatorId(op),
                        class: classes[*index].0,
                        balance: 0,
                        incoming: 0,
                        spent_today: 0,
                        friends: [0; 6],
                        sub_wallet: None,
                        role: classes[*index].1,
                        last_code_step: None,
                    });
                }
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        // Friends within a neighbourhood of the list, so circles overlap as they do.
        let people = self.people.len();
        for i in 0..people {
            for f in 0..6 {
                let near = (i + 1 + self.random.below(40)) % people;
                self.people[i].friends[f] = near as u32;
            }
        }
        self.verified = (0..people)
            .filter(|i| {
                self.people[*i].role == Role::Benign && self.people[*i].class <= WalletClass::Three
            })
            .collect();
        self.open_shops(config.merchants)?;
        self.open_sub_wallets()?;
        self.issue_cards(config.wallets)?;
        self.refresh_balances();
        self.plan_episodes(config.wallets);
        Ok(())
    }

    /// Each person's class and role.
    fn draw_classes(&mut self, wallets: usize) -> Vec<(WalletClass, Role)> {
        let mut classes: Vec<(WalletClass, Role)> = (0..wallets)
            .map(|_| {
                let class = match self.random.below(100) {
                    0..=54 => WalletClass::Four,
                    55..=84 => WalletClass::Three,
                    85..=96 => WalletClass::Two,
                    _ => WalletClass::One,
                };
                (class, Role::Benign)
            })
            .collect();
        let per_pattern = actors_per_pattern(wallets);
        // Actors sit at the end of the list; velocity bursts come from ordinary class-3 wallets,
        // the other patterns need class 1's limits.
        let roles = [
            Role::Actor(Pattern::LargeValue),
            Role::Actor(Pattern::Structuring),
            Role::Actor(Pattern::RapidPassThrough),
            Role::Source,
            Role::Actor(Pattern::FanInMule),
            Role::Actor(Pattern::FanOutDistributor),
            Role::Actor(Pattern::VelocityBurst),
        ];
        let actors = per_pattern * roles.len();
        for (k, slot) in classes[wallets - actors..].iter_mut().enumerate() {
            let role = roles[k / per_pattern];
            let class = match role {
                Role::Actor(Pattern::VelocityBurst) => WalletClass::Three,
                _ => WalletClass::One,
            };
            *slot = (class, role);
        }
        classes
    }

    fn open_wallets(
        &mut self,
        op: OperatorId,
        indices: &[usize],
        classes: &[(WalletClass, Role)],
    ) -> Result<Vec<WalletId>, SimulationError> {
        let mut commands = Vec::with_capacity(indices.len() * 2);
        let keys: Vec<KeyPair> = indices.iter().map(|i| resident_key(*i)).collect();
        for (&i, key) in indices.iter().zip(&keys) {
            commands.push(Command::OpenWallet {
                operator: op,
                phone: (13_000_000_000 + i as u64).into(),
                public_key: key.public_key(),
            });
            commands.push(Command::OpenDepositAccount { operator: op });
        }
        let at = self.setup_ms();
        let results = self.driver.batch(at, Origin::Operator(op), commands)?;
        let mut opened = Vec::with_capacity(indices.len());
        let mut funding = Vec::with_capacity(indices.len() * 4);
        for ((pair, &i), key) in results.chunks(2).zip(indices).zip(keys) {
            let (Ok(Outcome::Wallet(wallet)), Ok(Outcome::Account(account))) = (&pair[0], &pair[1])
            else {
                return Err(refused("open wallet", &pair[0]));
            };
            self.driver.holders.insert(*wallet, key);
            let class = classes[i].0;
            let name = format!("Resident {i:07}");
            self.fund(&mut funding, (*wallet, *account), class, name, i)?;
            opened.push(*wallet);
        }
        for result in self.driver.batch(at, Origin::Operator(op), funding)? {
            result.map_err(|e| SimulationError::Refused {
                what: "fund wallet".into(),
                code: e.code(),
            })?;
        }
        Ok(opened)
    }

    /// Bank deposit, bound account, KYC up to the class, and a first exchange into e-CNY.
    fn fund(
        &mut self,
        commands: &mut Vec<Command>,
        (wallet, account): (WalletId, AccountId),
        class: WalletClass,
        name: String,
        index: usize,
    ) -> Result<(), SimulationError> {
        let (deposit, first) = match class {
            WalletClass::Four => (20_000, self.random.yuan(800, 2_500)),
            WalletClass::Three => (60_000, self.random.yuan(2_000, 6_000)),
            WalletClass::Two => (400_000, self.random.yuan(5_000, 30_000)),
            WalletClass::One => (5_000_000, self.random.yuan(20_000, 80_000)),
        };
        commands.push(Command::CashDeposit {
            account,
            amount: Amount::from_yuan(deposit),
        });
        commands.push(Command::BindBankAccount { wallet, account });
        if class != WalletClass::Four {
            commands.push(Command::UpgradeWallet {
                wallet,
                to: class,
                name: Some(name.into()),
                id_number: Some(crate::wallet::id_number_from(&format!("3205{index:013}")).into()),
                in_person: class == WalletClass::One,
            });
        }
        let key = self.driver.key();
        commands.push(Command::Exchange {
            wallet,
            amount: first,
            key,
            auth: None,
        });
        Ok(())
    }
}

/// The key of resident `index`'s wallet.
fn resident_key(index: usize) -> KeyPair {
    KeyPair::from_seed(format!("simulate/resident/{index}").as_bytes())
}

/// The key of merchant `index`'s settlement wallet.
fn merchant_key(index: usize) -> KeyPair {
    KeyPair::from_seed(format!("simulate/merchant/{index}").as_bytes())
}

/// Actors per labelled pattern: one per thousand wallets, at least two.
fn actors_per_pattern(wallets: usize) -> usize {
    (wallets / 1_000).max(2)
}

impl City {
    /// Merchants: a class-2 wallet each, onboarded with a category and a region, with a till
    /// and a scan gun, and a courier's device or a web checkout where their trade has one.
    fn open_shops(&mut self, merchants: usize) -> Result<(), SimulationError> {
        const WEIGHTS: [usize; 12] = [14, 12, 10, 12, 4, 6, 6, 6, 3, 4, 6, 6];
        let at = self.setup_ms();
        for op in 1..=3u16 {
            let operator = OperatorId(op);
            let mine: Vec<usize> = (0..merchants)
                .filter(|i| i % 3 == op as usize - 1)
                .collect();
            let mut commands = Vec::new();
            let keys: Vec<KeyPair> = mine.iter().map(|i| merchant_key(*i)).collect();
            for (&i, key) in mine.iter().zip(&keys) {
                commands.push(Command::OpenWallet {
                    operator,
                    phone: (18_000_000_000 + i as u64).into(),
                    public_key: key.public_key(),
                });
                commands.push(Command::OpenDepositAccount { operator });
            }
            let results = self
                .driver
                .batch(at, Origin::Operator(operator), commands)?;
            let mut setup = Vec::new();
            let mut wallets = Vec::new();
            for ((pair, &i), key) in results.chunks(2).zip(&mine).zip(keys) {
                let (Ok(Outcome::Wallet(wallet)), Ok(Outcome::Account(account))) =
                    (&pair[0], &pair[1])
                else {
                    return Err(refused("open merchant wallet", &pair[0]));
                };
                self.driver.holders.insert(*wallet, key);
                // Every category at least once, then by how common each trade is.
                let category = if i < CATEGORIES.len() {
                    i
                } else {
                    let mut draw = self.random.below(WEIGHTS.iter().sum());
                    WEIGHTS
                        .iter()
                        .position(|w| {
                            let hit = draw < *w;
                            draw = draw.saturating_sub(*w);
                            hit
                        })
                        .unwrap_or(0)
                };
                let (code, kind, range) = CATEGORIES[category];
                setup.push(Command::CashDeposit {
                    account: *account,
                    amount: Amount::from_yuan(1_000),
                });
                setup.push(Command::BindBankAccount {
                    wallet: *wallet,
                    account: *account,
                });
                setup.push(Command::UpgradeWallet {
                    wallet: *wallet,
                    to: WalletClass::Two,
                    // The shop's owner, as a resident ID names them.
                    name: Some(format!("Merchant {i:06}").into()),
                    id_number: Some(
                        crate::wallet::id_number_from(&format!("4401{:013}", i)).into(),
                    ),
                    in_person: false,
                });
                setup.push(Command::OnboardMerchant {
                    operator,
                    wallet: *wallet,
                    name: format!("Shop {i:05}"),
                    mcc: Mcc::new(code).expect("four digits"),
                    region: REGIONS[self.random.below(REGIONS.len())],
                });
                wallets.push((*wallet, kind, range));
            }
            let results = self.driver.batch(at, Origin::Operator(operator), setup)?;
            let mut terminals = Vec::new();
            for (chunk, (wallet, kind, range)) in results.chunks(4).zip(wallets) {
                let Ok(Outcome::Merchant(id)) = &chunk[3] else {
                    return Err(refused("onboard merchant", &chunk[3]));
                };
                let remote = match kind {
                    ShopKind::Store => None,
                    ShopKind::Online => Some(TerminalKind::OnlineShop),
                    ShopKind::Delivery => Some(TerminalKind::Courier),
                };
                for kind in [Some(TerminalKind::Pos), Some(TerminalKind::ScanGun), remote]
                    .into_iter()
                    .flatten()
                {
                    terminals.push(Command::AddTerminal {
                        merchant: *id,
                        kind,
                    });
                }
                self.shops.push(Shop {
                    id: *id,
                    wallet,
                    operator,
                    kind,
                    range,
                    pos: 1,
                    scan_gun: 2,
                    remote: if remote.is_some() { 3 } else { 0 },
                    balance: 0,
                });
            }
            for result in self
                .driver
                .batch(at, Origin::Operator(operator), terminals)?
            {
                result.map_err(|e| SimulationError::Refused {
                    what: "terminal".into(),
                    code: e.code(),
                })?;
            }
        }
        Ok(())
    }

    /// A fifth of the people push a sub-wallet to an online shop they use.
    fn open_sub_wallets(&mut self) -> Result<(), SimulationError> {
        let online: Vec<usize> = (0..self.shops.len())
            .filter(|s| self.shops[*s].kind == ShopKind::Online)
            .collect();
        let limits = SubWalletLimits {
            per_payment: Amount::from_yuan(800),
            daily: Amount::from_yuan(1_500),
        };
        for op in 1..=3u16 {
            let mut holders = Vec::new();
            let mut commands = Vec::new();
            for (i, person) in self.people.iter().enumerate() {
                if person.operator != OperatorId(op) || self.random.below(5) != 0 {
                    continue;
                }
                let shop = online[self.random.below(online.len())];
                commands.push(Command::OpenSubWallet {
                    wallet: person.wallet,
                    merchant: self.shops[shop].id,
                    limits,
                    auth: None,
                });
                holders.push((i, shop));
            }
            let at = self.setup_ms();
            let results = self
                .driver
                .batch(at, Origin::Operator(OperatorId(op)), commands)?;
            for (result, (person, shop)) in results.iter().zip(holders) {
                let Ok(Outcome::SubWallet(id)) = result else {
                    return Err(refused("open sub-wallet", result));
                };
                self.people[person].sub_wallet = Some((*id, shop));
            }
        }
        Ok(())
    }

    /// Hardware wallets: phones and cards for some people, phones at a dozen merchants'
    /// counters to take offline payments.
    fn issue_cards(&mut self, wallets: usize) -> Result<(), SimulationError> {
        let now_s = (self.setup_ms() / 1000) as u32;
        let holders = (wallets / 250).max(4);
        let candidates: Vec<usize> = (0..self.people.len())
            .filter(|i| {
                self.people[*i].role == Role::Benign && self.people[*i].class <= WalletClass::Three
            })
            .collect();
        let mut registrations: BTreeMap<u16, Vec<Command>> = BTreeMap::new();
        for n in 0..holders.min(candidates.len()) {
            let owner = candidates[(n * 7919) % candidates.len()];
            let form = if n % 2 == 0 {
                WalletForm::PhoneEse
            } else {
                WalletForm::ContactlessCard
            };
            let (card, register) = self.issue_card(
                DeviceId(1 + n as u64),
                owner,
                self.people[owner].wallet,
                self.people[owner].operator,
                form,
                now_s,
            )?;
            registrations
                .entry(card.operator.0)
                .or_default()
                .push(register);
            self.cards.push(card);
        }
        for n in 0..12.min(self.shops.len()) {
            let shop = &self.shops[n];
            let (id, wallet, operator) = (DeviceId(100_001 + n as u64), shop.wallet, shop.operator);
            let (card, register) =
                self.issue_card(id, n, wallet, operator, WalletForm::PhoneEse, now_s)?;
            registrations.entry(operator.0).or_default().push(register);
            self.shop_cards.push(card);
        }
        let at = self.setup_ms();
        for (op, commands) in registrations {
            for result in self
                .driver
                .batch(at, Origin::Operator(OperatorId(op)), commands)?
            {
                result.map_err(|e| SimulationError::Refused {
                    what: "register device".into(),
                    code: e.code(),
                })?;
            }
        }
        Ok(())
    }

    fn issue_card(
        &mut self,
        id: DeviceId,
        owner: usize,
        wallet: WalletId,
        operator: OperatorId,
        form: WalletForm,
        now_s: u32,
    ) -> Result<(Card, Command), SimulationError> {
        let key =
            KeyPair::from_seed(format!("simulate/device/{}/{}", self.random.0 .0, id.0).as_bytes());
        let profile = Profile::new(form);
        let applet = self.issuers[operator.0 as usize - 1]
            .issue(&profile, id, key.clone(), id.0, now_s)
            .map_err(|e| SimulationError::Offline(e.to_string()))?;
        let register = Command::RegisterDevice {
            operator,
            device: id,
            public_key: key.public_key(),
            wallet: Some(wallet),
            caps: profile.caps(),
        };
        Ok((
            Card {
                id,
                applet,
                operator,
                key,
                owner,
                balance: 0,
                blocked: false,
            },
            register,
        ))
    }

    /// The shadows take the ledger's word every night.
    fn refresh_balances(&mut self) {
        let state = self.driver.platform.state();
        for person in &mut self.people {
            person.balance = state.balance(person.wallet).map_or(0, |b| b.fen());
            person.spent_today = 0;
            person.incoming = 0;
        }
        for shop in &mut self.shops {
            shop.balance = state.balance(shop.wallet).map_or(0, |b| b.fen());
        }
    }

    /// When each actor plays its part. Each episode gets its label now; its times are filled in
    /// as it happens.
    fn plan_episodes(&mut self, wallets: usize) {
        let days = self.days;
        let actors: Vec<(usize, Pattern)> = (0..self.people.len())
            .filter_map(|i| match self.people[i].role {
                Role::Actor(pattern) => Some((i, pattern)),
                _ => None,
            })
            .collect();
        for (actor, pattern) in actors {
            // Velocity needs days of ordinary history to stand out from.
            let first_day = if pattern == Pattern::VelocityBurst {
                4
            } else {
                0
            };
            if first_day >= days {
                continue;
            }
            let steps = match pattern {
                Pattern::Structuring => 3 + self.random.below(3),
                Pattern::RapidPassThrough => 1 + self.random.below(2),
                _ => 1,
            };
            let label = self.new_label(pattern, actor);
            let mut day = first_day + self.random.below((days - first_day) as usize) as u32;
            for _ in 0..steps {
                self.episodes.push(Episode {
                    day,
                    pattern,
                    actor,
                    label,
                });
                // Structuring spreads over days; pass-through repeats a few days later.
                let gap = if pattern == Pattern::Structuring {
                    self.random.below(2)
                } else {
                    3 + self.random.below(5)
                };
                day = (day + gap as u32).min(days - 1);
            }
        }
        let clones = (wallets / 5_000).max(1).min(self.cards.len() / 2);
        for n in 0..clones {
            let card = (n * 2 + 1) % self.cards.len();
            let owner = self.cards[card].owner;
            let label = self.new_label(Pattern::OfflineClone, owner);
            let day = self.random.below(days as usize) as u32;
            self.episodes.push(Episode {
                day,
                pattern: Pattern::OfflineClone,
                actor: card,
                label,
            });
        }
    }

    fn new_label(&mut self, pattern: Pattern, person: usize) -> usize {
        self.labels.push(Label {
            pattern,
            wallet: self.people[person].wallet,
            from_ms: u64::MAX,
            to_ms: 0,
        });
        self.labels.len() - 1
    }

    fn mark(&mut self, label: usize, at_ms: u64) {
        let label = &mut self.labels[label];
        label.from_ms = label.from_ms.min(at_ms);
        label.to_ms = label.to_ms.max(at_ms);
    }
}

/// How a person pays at a store.
#[derive(Clone, Copy)]
enum StoreChannel {
    Printed,
    Code,
    Tap,
    Order,
}

impl City {
    fn day_ms(&self, day: u32) -> u64 {
        self.start_ms + u64::from(day) * DAY_MS
    }

    fn action(origin: OperatorId, at_ms: u64, command: Command, episode: Option<usize>) -> Action {
        Action {
            at_ms,
            origin: Origin::Operator(origin),
            command,
            episode,
        }
    }

    fn exchange(
        &mut self,
        at: u64,
        person: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let p = &mut self.people[person];
        p.balance += amount.fen();
        let command = Command::Exchange {
            wallet: p.wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    fn deposit_back(
        &mut self,
        at: u64,
        person: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let p = &mut self.people[person];
        p.balance -= amount.fen();
        let command = Command::DepositBack {
            wallet: p.wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    /// A person-to-person payment, if the shadows say it will go through.
    fn pay(
        &mut self,
        at: u64,
        payer: usize,
        payee: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Option<Action> {
        if payer == payee
            || !self.people[payer].can_pay(amount)
            || !self.people[payee].can_receive(amount)
        {
            return None;
        }
        Some(self.pay_anyway(at, payer, payee, amount, episode))
    }

    /// A payment whose payer is known to hold the money by then (it received it earlier).
    fn pay_anyway(
        &mut self,
        at: u64,
        payer: usize,
        payee: usize,
        amount: Amount,
        episode: Option<usize>,
    ) -> Action {
        let key = self.driver.key();
        let payee_wallet = self.people[payee].wallet;
        self.people[payee].incoming += amount.fen();
        let p = &mut self.people[payer];
        p.balance -= amount.fen();
        p.spent_today += amount.fen();
        let command = Command::Pay {
            payer: p.wallet,
            payee: payee_wallet,
            amount,
            key,
            auth: None,
        };
        City::action(p.operator, at, command, episode)
    }

    /// A payment at a merchant on the channel its trade and the payer's habits give.
    fn shop(
        &mut self,
        at: u64,
        payer: usize,
        shop: usize,
        amount: Amount,
        via: StoreChannel,
        episode: Option<usize>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.people[payer].can_pay(amount) {
            return actions;
        }
        let s = self.shops[shop].clone();
        let sub_wallet = self.people[payer]
            .sub_wallet
            .filter(|(_, at_shop)| *at_shop == shop);
        let (channel, terminal, order) = match (s.kind, via, sub_wallet) {
            (ShopKind::Online, _, Some((id, _))) if amount <= Amount::from_yuan(800) => {
                let key = self.driver.key();
                let p = &self.people[payer];
                let command = Command::ChargeSubWallet {
                    sub_wallet: id,
                    merchant: s.id,
                    amount,
                    order: None,
                    key,
                };
                actions.push(City::action(p.operator, at, command, episode));
                self.spend_at(payer, shop, amount);
                return actions;
            }
            (ShopKind::Online, ..) => (PaymentChannel::DynamicQr, s.remote, true),
            (ShopKind::Delivery, ..) => (PaymentChannel::CashOnDelivery, s.remote, true),
            (ShopKind::Store, StoreChannel::Printed, _) => (PaymentChannel::StaticQr, 0, false),
            (ShopKind::Store, StoreChannel::Code, _) if self.code_usable(payer, at, amount) => {
                (PaymentChannel::PaymentCode, s.scan_gun, false)
            }
            // Above the password-free cap, or a second code in one step: the printed QR.
            (ShopKind::Store, StoreChannel::Code, _) => (PaymentChannel::StaticQr, 0, false),
            (ShopKind::Store, StoreChannel::Tap, _) => (PaymentChannel::TapZone, 0, false),
            (ShopKind::Store, StoreChannel::Order, _) => (PaymentChannel::DynamicQr, s.pos, true),
        };
        let reference = order.then(|| {
            self.orders += 1;
            format!("ORD{:010}", self.orders)
        });
        if let Some(reference) = &reference {
            // The till or courier shows the order a tick before the customer pays it.
            let create = Command::CreateOrder {
                merchant: s.id,
                reference: reference.clone(),
                amount,
                expires_at_ms: at + 15 * MINUTE_MS,
                terminal,
                cash_on_delivery: channel == PaymentChannel::CashOnDelivery,
            };
            actions.push(City::action(s.operator, at - TICK_MS, create, episode));
        }
        let key = self.driver.key();
        if channel == PaymentChannel::PaymentCode {
            self.people[payer].last_code_step = Some(code_step_at(at));
        }
        let p = &self.people[payer];
        let paid_at = PaidAt {
            merchant: s.id,
            channel,
            terminal,
            order: reference,
        };
        // A tick's actions are logged at its start: the code shown is that step's.
        let command = merchant_payment(p.wallet, paid_at, amount, key, at / TICK_MS * TICK_MS);
        actions.push(City::action(p.operator, at, command, episode));
        self.spend_at(payer, shop, amount);
        actions
    }

    /// Whether `payer` may pay `amount` by code at `at`: within the cap, once a step.
    fn code_usable(&self, payer: usize, at: u64, amount: Amount) -> bool {
        amount <= PASSWORD_FREE_CAP_DEFAULT
            && self.people[payer].last_code_step != Some(code_step_at(at))
    }

    fn spend_at(&mut self, payer: usize, shop: usize, amount: Amount) {
        let p = &mut self.people[payer];
        p.balance -= amount.fen();
        p.spent_today += amount.fen();
        self.shops[shop].balance += amount.fen();
    }

    fn store_channel(&mut self) -> StoreChannel {
        match self.random.below(100) {
            0..=39 => StoreChannel::Printed,
            40..=74 => StoreChannel::Code,
            75..=89 => StoreChannel::Tap,
            _ => StoreChannel::Order,
        }
    }

    fn day(&mut self, day: u32) -> Result<(), SimulationError> {
        let day_ms = self.day_ms(day);
        let (mut actions, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|(d, _)| *d == day);
        self.later = later;
        let mut actions: Vec<Action> = actions.drain(..).map(|(_, a)| a).collect();
        self.top_ups_and_sweeps(day_ms, &mut actions);
        self.everyday_payments(day_ms, &mut actions);
        self.near_misses(day, day_ms, &mut actions);
        let today: Vec<(usize, Episode)> = self
            .episodes
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, e)| e.day == day)
            .collect();
        for (index, episode) in today {
            self.play(index, episode, day_ms, &mut actions)?;
        }
        let syncs = self.offline_day(day, day_ms, &mut actions)?;
        // A day's plan stays within the day: the next day starts where this one ended.
        let next_day = day_ms + DAY_MS;
        assert!(
            actions.iter().all(|a| a.at_ms < next_day),
            "an action was planned past midnight"
        );
        self.driver.run(actions)?;
        // Syncs are round trips between card and center; they run once the day's plan has.
        for (at_ms, index, shop) in syncs {
            self.sync(at_ms, index, shop)?;
        }
        self.refresh_balances();
        Ok(())
    }

    /// Before dawn: people running low exchange deposits into e-CNY; merchants deposit
    /// yesterday's takings back into their bank accounts.
    fn top_ups_and_sweeps(&mut self, day_ms: u64, actions: &mut Vec<Action>) {
        for i in 0..self.people.len() {
            let p = &self.people[i];
            let (low, top_up) = match p.class {
                WalletClass::Four => (400, 1_500),
                WalletClass::Three => (1_000, 4_000),
                WalletClass::Two => (3_000, 10_000),
                WalletClass::One => (5_000, 20_000),
            };
            let amount = Amount::from_yuan(top_up);
            if p.balance < Amount::from_yuan(low).fen() && p.can_receive(amount) {
                let at = day_ms + 4 * HOUR_MS + self.random.below(HOUR_MS as usize) as u64;
                actions.push(self.exchange(at, i, amount, None));
            }
        }
        for i in 0..self.shops.len() {
            let shop = &self.shops[i];
            if shop.balance > Amount::from_yuan(3_000).fen() {
                let amount = Amount::from_fen(shop.balance / 10 * 9);
                let at = day_ms + 3 * HOUR_MS + self.random.below(HOUR_MS as usize) as u64;
                let key = self.driver.key();
                let command = Command::DepositBack {
                    wallet: shop.wallet,
                    amount,
                    key,
                    auth: None,
                };
                actions.push(City::action(shop.operator, at, command, None));
                self.shops[i].balance -= amount.fen();
            }
        }
    }

    /// Shopping and paying friends: a couple of payments a day, more for verified wallets.
    fn everyday_payments(&mut self, day_ms: u64, actions: &mut Vec<Action>) {
        for i in 0..self.people.len() {
            let chance = match self.people[i].class {
                WalletClass::Four => 25,
                WalletClass::Three => 40,
                _ => 50,
            };
            let count = (0..6).filter(|_| self.random.chance(chance)).count();
            for _ in 0..count {
                let at = day_ms + self.random.time_of_day();
                if self.random.chance(72) {
                    let shop = self.random.below(self.shops.len());
                    let (low, high) = self.shops[shop].range;
                    let amount = self.random.yuan(low, high);
                    let via = self.store_channel();
                    actions.extend(self.shop(at, i, shop, amount, via, None));
                } else {
                    let friend = self.people[i].friends[self.random.below(6)] as usize;
                    let amount =
                        if self.people[i].class <= WalletClass::Three && self.random.chance(10) {
                            self.random.yuan(300, 1_500)
                        } else {
                            self.random.yuan(5, 300)
                        };
                    actions.extend(self.pay(at, i, friend, amount, None));
                }
            }
        }
    }
}

impl City {
    /// How many of something happen today, for `per_thousand_a_month` per thousand people.
    fn today(&mut self, per_thousand_a_month: usize) -> usize {
        let monthly = self.people.len() * per_thousand_a_month;
        let per_day = monthly / 30_000;
        let remainder = (monthly % 30_000) as u64;
        per_day + usize::from(self.random.0.below(30_000) < remainder)
    }

    fn any_verified(&mut self) -> usize {
        self.verified[self.random.below(self.verified.len())]
    }

    /// Ordinary people doing things that look a little like the patterns without being them.
    fn near_misses(&mut self, day: u32, day_ms: u64, actions: &mut Vec<Action>) {
        // A car deposit or a renovation: one payment just under the threshold.
        for _ in 0..self.today(2) {
            let (payer, payee) = (self.any_verified(), self.any_verified());
            if self.people[payer].class > WalletClass::Two
                || self.people[payee].class > WalletClass::Two
            {
                continue;
            }
            let amount = self.random.yuan(40_000, 49_000);
            let at = day_ms + 10 * HOUR_MS + self.random.below(8 * HOUR_MS as usize) as u64;
            actions.push(self.exchange(at - 5 * MINUTE_MS, payer, amount, None));
            actions.extend(self.pay(at, payer, payee, amount, None));
        }
        // A street vendor with no merchant sign-up, paid for snacks by a dozen passers-by.
        for _ in 0..self.today(3) {
            let vendor = self.any_verified();
            let customers = 10 + self.random.below(9);
            let lunch = day_ms + 11 * HOUR_MS;
            for _ in 0..customers {
                let customer = self.random.below(self.people.len());
                let amount = self.random.yuan(5, 40);
                let at = lunch + self.random.below(3 * HOUR_MS as usize) as u64;
                actions.extend(self.pay(at, customer, vendor, amount, None));
            }
        }
        // A dinner bill split: friends pay the one who paid.
        for _ in 0..self.today(10) {
            let host = self.any_verified();
            let friends = self.people[host].friends;
            let evening = day_ms + 20 * HOUR_MS;
            for friend in friends.into_iter().take(5 + self.random.below(2)) {
                let amount = self.random.yuan(40, 200);
                let at = evening + self.random.below(HOUR_MS as usize) as u64;
                actions.extend(self.pay(at, friend as usize, host, amount, None));
            }
        }
        // Rent shared through one flatmate: in and straight on, but a household's sums.
        for _ in 0..self.today(1) {
            let (flatmate, landlord, other) = (
                self.any_verified(),
                self.any_verified(),
                self.any_verified(),
            );
            let amount = self.random.yuan(1_500, 4_500);
            let at = day_ms + 9 * HOUR_MS + self.random.below(10 * HOUR_MS as usize) as u64;
            if let Some(paid) = self.pay(at, other, flatmate, amount, None) {
                actions.push(paid);
                let on = Amount::from_fen(amount.fen() / 10 * 9);
                let later = at + TICK_MS + self.random.below(15 * MINUTE_MS as usize) as u64;
                actions.extend(self.pay(later, flatmate, landlord, on, None));
            }
        }
        // A busy market morning: a dozen stalls within the hour.
        for _ in 0..self.today(2) {
            let shopper = self.any_verified();
            let morning = day_ms + 8 * HOUR_MS;
            for _ in 0..8 + self.random.below(7) {
                let shop = self.random.below(self.shops.len());
                let amount = self.random.yuan(5, 60);
                let at = morning + self.random.below(HOUR_MS as usize) as u64;
                actions.extend(self.shop(at, shopper, shop, amount, StoreChannel::Printed, None));
            }
        }
        // Payday (the 15th): a small employer with no payroll service pays a dozen staff from
        // its owner's wallet. Legitimate, and over the fan-out thresholds: what an analyst
        // explains and closes as not suspicious.
        if day == 14 {
            for _ in 0..self.people.len() / 10_000 {
                let employers: Vec<usize> = (0..64).map(|_| self.any_verified()).collect();
                let Some(owner) = employers
                    .into_iter()
                    .find(|p| self.people[*p].class <= WalletClass::Two)
                else {
                    continue;
                };
                let payday = day_ms + 17 * HOUR_MS;
                actions.push(self.exchange(
                    payday - 5 * MINUTE_MS,
                    owner,
                    Amount::from_yuan(60_000),
                    None,
                ));
                for _ in 0..12 {
                    let wage = self.random.yuan(3_000, 4_800);
                    let at = payday + self.random.below(HOUR_MS as usize) as u64;
                    if let Some(staff) = self.receiver(wage, false, owner) {
                        actions.extend(self.pay(at, owner, staff, wage, None));
                    }
                }
            }
        }
        // The Lantern Festival (the 10th simulated day): red envelopes to family.
        if day == 9 {
            for _ in 0..self.people.len() / 100 {
                let giver = self.any_verified();
                let friends = self.people[giver].friends;
                for relative in friends.into_iter().take(5 + self.random.below(2)) {
                    let amount = self.random.yuan(8, 200);
                    let at = day_ms + 19 * HOUR_MS + self.random.below(2 * HOUR_MS as usize) as u64;
                    actions.extend(self.pay(at, giver, relative as usize, amount, None));
                }
            }
        }
    }

    /// A verified person, not `not`, who can take `amount` now; class 1 or 2 when `large`.
    fn receiver(&mut self, amount: Amount, large: bool, not: usize) -> Option<usize> {
        for _ in 0..64 {
            let candidate = self.any_verified();
            let p = &self.people[candidate];
            if candidate != not && (!large || p.class <= WalletClass::Two) && p.can_receive(amount)
            {
                return Some(candidate);
            }
        }
        None
    }

    /// One step of a labelled pattern.
    fn play(
        &mut self,
        index: usize,
        episode: Episode,
        day_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Result<(), SimulationError> {
        let (actor, tag) = (episode.actor, Some(index));
        let start = day_ms + 9 * HOUR_MS + self.random.below(9 * HOUR_MS as usize) as u64;
        if episode.pattern != Pattern::OfflineClone {
            self.mark(episode.label, start);
        }
        match episode.pattern {
            Pattern::LargeValue => {
                let amount = Amount::from_yuan(self.random.between(500, 3_000) as i64 * 100);
                let Some(payee) = self.receiver(amount, true, actor) else {
                    return Ok(());
                };
                actions.push(self.exchange(start - 5 * MINUTE_MS, actor, amount, tag));
                actions.extend(self.pay(start, actor, payee, amount, tag));
            }
            Pattern::Structuring => {
                let amount = self.random.yuan(40_000, 49_900);
                let Some(payee) = self.receiver(amount, true, actor) else {
                    return Ok(());
                };
                actions.push(self.exchange(start - 5 * MINUTE_MS, actor, amount, tag));
                actions.extend(self.pay(start, actor, payee, amount, tag));
            }
            Pattern::RapidPassThrough => self.pass_through(start, actor, tag, actions),
            Pattern::FanInMule => self.fan_in(start, episode, tag, actions),
            Pattern::FanOutDistributor => {
                let recipients = 13 + self.random.below(8);
                let span = (1 + self.random.below(5)) as u64 * HOUR_MS;
                actions.push(self.exchange(
                    start - 5 * MINUTE_MS,
                    actor,
                    Amount::from_yuan(60_000),
                    tag,
                ));
                for _ in 0..recipients {
                    let amount = self.random.yuan(800, 3_000);
                    let at = start + self.random.below(span as usize) as u64;
                    let Some(payee) = self.receiver(amount, false, actor) else {
                        continue;
                    };
                    self.mark(episode.label, at);
                    actions.extend(self.pay(at, actor, payee, amount, tag));
                }
            }
            Pattern::VelocityBurst => {
                let payments = 25 + self.random.below(21);
                let span = (30 + self.random.below(26)) as u64 * MINUTE_MS;
                let budget = Amount::from_yuan(6_000);
                if self.people[actor].can_receive(budget) {
                    actions.push(self.exchange(start - 10 * MINUTE_MS, actor, budget, tag));
                }
                for _ in 0..payments {
                    let shop = self.random.below(self.shops.len());
                    let amount = self.random.yuan(5, 120);
                    let at = start + self.random.below(span as usize) as u64;
                    self.mark(episode.label, at);
                    actions.extend(self.shop(at, actor, shop, amount, StoreChannel::Printed, tag));
                }
            }
            Pattern::OfflineClone => self.clone_card(start, episode, actions)?,
        }
        Ok(())
    }

    /// Money arrives from a source and most of it leaves again within minutes.
    fn pass_through(
        &mut self,
        start: u64,
        actor: usize,
        tag: Option<usize>,
        actions: &mut Vec<Action>,
    ) {
        let sources: Vec<usize> = (0..self.people.len())
            .filter(|i| self.people[*i].role == Role::Source)
            .collect();
        let source = sources[self.random.below(sources.len())];
        let amount = self.random.yuan(8_000, 38_000);
        actions.push(self.exchange(start - 5 * MINUTE_MS, source, amount, tag));
        let Some(arrived) = self.pay(start, source, actor, amount, tag) else {
            return;
        };
        actions.push(arrived);
        let on = Amount::from_fen(amount.fen() * self.random.between(85, 99) as i64 / 100);
        let later = start + TICK_MS + self.random.below(15 * MINUTE_MS as usize) as u64;
        if self.random.chance(50) {
            actions.push(self.deposit_back(later, actor, on, tag));
        } else if let Some(sink) = self.receiver(on, true, actor) {
            actions.push(self.pay_anyway(later, actor, sink, on, tag));
        }
    }

    /// Many victims pay one mule within hours; it cashes out the next day.
    fn fan_in(
        &mut self,
        start: u64,
        episode: Episode,
        tag: Option<usize>,
        actions: &mut Vec<Action>,
    ) {
        let feeders = 13 + self.random.below(10);
        let span = (2 + self.random.below(4)) as u64 * HOUR_MS;
        let mut collected = 0;
        for _ in 0..feeders {
            let feeder = self.any_verified();
            let amount = self.random.yuan(800, 3_000);
            let at = start + self.random.below(span as usize) as u64;
            if let Some(paid) = self.pay(at, feeder, episode.actor, amount, tag) {
                self.mark(episode.label, at);
                collected += amount.fen();
                actions.push(paid);
            }
        }
        // Cashed out next morning, if the month lasts that long.
        if episode.day + 1 < self.days {
            let at = self.day_ms(episode.day + 1) + 10 * HOUR_MS;
            let cash_out = Amount::from_fen(collected / 100 * 95);
            if cash_out.is_positive() {
                let action = self.deposit_back(at, episode.actor, cash_out, tag);
                self.later.push((episode.day + 1, action));
            }
        }
    }
}

/// What an offline payer loads into its secure element on the first morning.
const OFFLINE_LOAD: Amount = Amount::from_yuan(300);

impl City {
    /// Offline: loads on the first morning, taps at merchants' phones through the day (no
    /// network on either side); answers the syncs due that day, the holders' phones in the
    /// evening and the merchants' at night, as (time, card, whether a merchant's).
    fn offline_day(
        &mut self,
        day: u32,
        day_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Result<Vec<(u64, usize, bool)>, SimulationError> {
        if day == 0 {
            for c in 0..self.cards.len() {
                let card = &self.cards[c];
                let owner = &self.people[card.owner];
                if owner.balance < OFFLINE_LOAD.fen() {
                    continue;
                }
                let at = day_ms + 8 * HOUR_MS;
                let command = Command::LoadDevice {
                    device: card.id,
                    load_seq: 1,
                    amount: OFFLINE_LOAD,
                };
                actions.push(City::action(card.operator, at, command, None));
                let issuer = &self.issuers[card.operator.0 as usize - 1];
                let card = &mut self.cards[c];
                issuer
                    .load_card(&mut card.applet, (card.id, 1, OFFLINE_LOAD))
                    .map_err(|e| SimulationError::Offline(e.to_string()))?;
                card.balance = OFFLINE_LOAD.fen();
                self.people[card.owner].balance -= OFFLINE_LOAD.fen();
            }
        }
        let mut taps: Vec<(u64, usize, usize)> = Vec::new();
        for c in 0..self.cards.len() {
            if !self.cards[c].blocked && self.random.chance(25) {
                let at = day_ms + 10 * HOUR_MS + self.random.below(10 * HOUR_MS as usize) as u64;
                taps.push((at, c, self.random.below(self.shop_cards.len())));
            }
        }
        taps.sort_unstable();
        for (at, card, shop) in taps {
            let amount = self.random.yuan(5, 40);
            self.tap(at, card, shop, amount)?;
        }
        let holders =
            (0..self.cards.len()).map(|c| (day_ms + 21 * HOUR_MS + c as u64 * 1000, c, false));
        let shops =
            (0..self.shop_cards.len()).map(|s| (day_ms + 23 * HOUR_MS + s as u64 * 1000, s, true));
        Ok(holders.chain(shops).collect())
    }

    /// One offline payment between two secure elements, if both can take it.
    fn tap(
        &mut self,
        at_ms: u64,
        card: usize,
        shop: usize,
        amount: Amount,
    ) -> Result<bool, SimulationError> {
        let payee_cap = self.shop_cards[shop].applet_cap();
        if self.cards[card].balance < amount.fen()
            || self.shop_cards[shop].balance + amount.fen() > payee_cap
        {
            return Ok(false);
        }
        let (payer, payee) = (&mut self.cards[card], &mut self.shop_cards[shop]);
        Relay::new()
            .pay(
                &mut payer.applet,
                &mut payee.applet,
                amount,
                (at_ms / 1000) as u32,
            )
            .map_err(|e| {
                SimulationError::Offline(format!("tap {} → {}: {e}", payer.id, payee.id))
            })?;
        payer.balance -= amount.fen();
        payee.balance += amount.fen();
        self.driver.report.offline_taps += 1;
        Ok(true)
    }

    /// A secure element attests what it did over the center's nonce; the center settles it;
    /// the operator confirms it back to the card.
    fn sync(&mut self, at_ms: u64, index: usize, shop: bool) -> Result<(), SimulationError> {
        let card = if shop {
            &mut self.shop_cards[index]
        } else {
            &mut self.cards[index]
        };
        let driver = &mut self.driver;
        let origin = Origin::Operator(card.operator);
        let mut center = |command: Command| {
            driver
                .batch(at_ms, origin, vec![command])
                .map(|mut results| results.remove(0))
                .map_err(|e| SyncError::Unreachable(e.to_string()))
        };
        let issuer = &self.issuers[card.operator.0 as usize - 1];
        issuer
            .sync_card(
                &mut card.applet,
                (card.id, card.key.public_key()),
                &mut center,
            )
            .map(|_| ())
            .map_err(|error| SimulationError::Offline(format!("sync {}: {error}", card.id)))
    }

    /// Someone copies a holder's card; the copy and the card each pay a different merchant
    /// with the same counter. The second merchant's sync gives the copy away.
    fn clone_card(
        &mut self,
        start: u64,
        episode: Episode,
        _actions: &mut [Action],
    ) -> Result<(), SimulationError> {
        let card = episode.actor;
        if self.cards[card].blocked
            || self.cards[card].balance < 100 * 100
            || self.shop_cards.len() < 2
        {
            return Ok(());
        }
        let copy = self.cards[card].applet.clone_card();
        let amount = self.random.yuan(20, 45);
        // Two merchants' phones with room for the payment: the card pays one, its copy the other.
        let shops: Vec<usize> = (0..self.shop_cards.len())
            .filter(|s| {
                self.shop_cards[*s].balance + amount.fen() <= self.shop_cards[*s].applet_cap()
            })
            .take(2)
            .collect();
        if shops.len() < 2 || !self.tap(start, card, shops[0], amount)? {
            return Ok(());
        }
        let original = std::mem::replace(&mut self.cards[card].applet, copy);
        let balance = self.cards[card].balance;
        self.cards[card].balance += amount.fen();
        let spent = self.tap(start + MINUTE_MS, card, shops[1], amount)?;
        self.cards[card].applet = original;
        self.cards[card].balance = balance;
        self.cards[card].blocked = spent;
        if spent {
            self.mark(episode.label, start);
        }
        Ok(())
    }
}

impl Card {
    fn applet_cap(&self) -> i64 {
        WalletForm::PhoneEse.default_caps().balance_cap.fen()
    }
}

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
//!
//! Who lives here is in `people`; `setup` founds the city before the first day; `everyday`,
//! `patterns` and `offline` plan each day's actions; `driver` submits them; `labels` is the
//! ground truth written to `labels.csv` and `scores` measures the rules against it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::amount::Amount;
use crate::analytics::alerts::AlertBook;
use crate::analytics::csv::{self, CsvError};
use crate::analytics::rules::Rule;
use crate::certs::KeyPair;
use crate::channels::acquiring::{PaymentChannel, TerminalKind};
use crate::channels::emvco::Mcc;
use crate::channels::payment_code::{CODE_STEP_S, PASSWORD_FREE_CAP_DEFAULT};
use crate::channels::payment_request::{merchant_payment, PaidAt};
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
use crate::progress::progress;
use crate::rng::SplitMix;
use crate::signing::SIGNATURE_WINDOW_MS_CLIENT;
use crate::time::{
    china_midnight_ms, china_time, days_from_civil, parse_china_time, DAY_MS, HOUR_MS, MINUTE_MS,
};
use crate::wallet::sub_wallet::SubWalletLimits;
use crate::wallet::{ClassLimits, WalletClass};

mod driver;
mod everyday;
mod labels;
mod offline;
mod patterns;
mod people;
mod scores;
mod setup;

pub use self::labels::{labels_csv, read_labels_csv, Label, Pattern};
pub use self::scores::{evaluate, RuleScore};

use self::driver::*;
use self::everyday::StoreChannel;
use self::people::*;
use self::setup::actors_per_pattern;

/// The first simulated day, 2024-03-01, at midnight China time.
pub fn simulation_start_ms() -> u64 {
    china_midnight_ms(days_from_civil(2024, 3, 1) as u32)
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
        commands.push(Command::BindBankAccount {
            wallet,
            account,
            auth: None,
        });
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

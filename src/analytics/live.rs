//! The analysis center beside a running node: statistics, alerts and statements readable while
//! `ecny serve` runs, kept up to date as entries are applied rather than by re-reading the log.
//!
//! The node tells the center that entries arrived ([`LiveCenter::arrived`], from the node's
//! observer). A follower thread then asks the node, between commits, for what is new: on the
//! node's thread only the cheap part — the directory's new wallets and merchants, and a copy of
//! at most [`FOLLOW_EVENTS_PER_ROUND_MAX`] new events — so the node waits for no rule. The rules
//! and statistics run on the follower's thread. Every event is read once, in order, and only
//! durable state is read (a query waits for the write in flight).
//!
//! Parties see it as the rest of the platform shows them: the central bank every figure and
//! alert, by pseudonymous wallet ids; an operator the payments its own wallets made or received
//! and the alerts about its own wallets.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::analytics::alerts::Alert;
use crate::analytics::rules::RuleConfig;
use crate::analytics::statistics::{StatRow, Statistics};
use crate::analytics::{AnalysisCenter, Directory, Movement};
use crate::ids::{EventId, OperatorId};
use crate::ledger::Event;
use crate::node::{NodeError, NodeHandle};
use crate::state_machine::StateMachine;
use crate::time::SharedClock;

/// Most events one round copies out on the node's thread: bounds how long a commit waits.
pub const FOLLOW_EVENTS_PER_ROUND_MAX: usize = 16_384;
/// Longest the follower sleeps without looking for new entries, should a wake-up be missed.
const FOLLOW_WAKE_MS_MAX: u64 = 1_000;
/// Freshness samples kept for `ecny bench`; older ones are dropped.
const FRESHNESS_SAMPLES_MAX: usize = 1 << 20;

/// New events copied out of the state, and where they start in the stream.
pub struct Arrivals {
    first: EventId,
    events: Vec<Event>,
}

/// The center and the figures kept per operator.
pub struct LiveBooks {
    center: AnalysisCenter,
    /// Each operator's own figures: payments its wallets made or received.
    by_operator: BTreeMap<OperatorId, Statistics>,
    /// Milliseconds from each transfer's time in the ledger to its figures, oldest first.
    freshness_ms: Vec<u64>,
}

impl LiveBooks {
    fn new(config: RuleConfig) -> LiveBooks {
        LiveBooks {
            center: AnalysisCenter::new(config),
            by_operator: BTreeMap::new(),
            freshness_ms: Vec::new(),
        }
    }

    /// On the node's thread: the directory's news and a copy of up to `max` new events.
    fn take_in(&mut self, state: &StateMachine, max: usize) -> Arrivals {
        self.center.refresh_directory(state);
        let first = self.center.cursor();
        let events = state.ledger().events_from(first);
        Arrivals {
            first,
            events: events[..events.len().min(max)].to_vec(),
        }
    }

    /// On the follower's thread: the rules and statistics over what was copied out.
    fn observe(&mut self, arrivals: &Arrivals, now_ms: u64) {
        let LiveBooks {
            center,
            by_operator,
            freshness_ms,
        } = self;
        let record = |movement: &Movement, directory: &Directory| {
            if freshness_ms.len() < FRESHNESS_SAMPLES_MAX {
                freshness_ms.push(now_ms.saturating_sub(movement.at_ms));
            }
            let operator_of = |wallet: Option<_>| wallet.and_then(|w| directory.wallet_operator(w));
            let payer = operator_of(movement.payer);
            // Both sides at one operator: counted once for it.
            let payee = operator_of(movement.payee).filter(|op| Some(*op) != payer);
            for operator in [payer, payee].into_iter().flatten() {
                by_operator
                    .entry(operator)
                    .or_default()
                    .record(movement, directory);
            }
        };
        center.observe_events(arrivals.first, &arrivals.events, record);
    }

    /// Every event read so far: where the next round starts.
    pub fn events_read(&self) -> u64 {
        self.center.cursor().0
    }

    /// The figures as rows: every one for the central bank (`None`), an operator's own else.
    pub fn statistics_rows(&self, operator: Option<OperatorId>) -> Vec<StatRow> {
        let directory = self.center.directory();
        match operator {
            None => self.center.statistics().rows(directory),
            Some(operator) => self
                .by_operator
                .get(&operator)
                .cloned()
                .unwrap_or_default()
                .rows(directory)
                .into_iter()
                // Counts of the whole platform's wallets and merchants are not an operator's.
                .filter(|row| row.table != "wallets" && row.table != "merchants")
                .collect(),
        }
    }

    /// The alerts: every one for the central bank, those about an operator's wallets else.
    pub fn alerts(&self, operator: Option<OperatorId>) -> Vec<Alert> {
        self.center
            .alerts()
            .all()
            .iter()
            .filter(|alert| operator.is_none() || alert.operator == operator)
            .cloned()
            .collect()
    }

    /// The pseudonymous directory, as of the last round or [`LiveCenter::directory_now`].
    pub fn directory(&self) -> &Directory {
        self.center.directory()
    }

    /// The freshness samples gathered since the last call.
    pub fn take_freshness_ms(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.freshness_ms)
    }
}

#[derive(Default)]
struct Wake {
    arrived: bool,
    /// A round is under way.
    following: bool,
    stopped: bool,
}

/// The live center, shared by the follower, the node's observer and the HTTP handlers.
pub struct LiveCenter {
    books: Mutex<LiveBooks>,
    wake: Mutex<Wake>,
    changed: Condvar,
}

impl LiveCenter {
    pub fn new(config: RuleConfig) -> Arc<LiveCenter> {
        Arc::new(LiveCenter {
            books: Mutex::new(LiveBooks::new(config)),
            // A new center has the whole log to read.
            wake: Mutex::new(Wake {
                arrived: true,
                ..Wake::default()
            }),
            changed: Condvar::new(),
        })
    }

    /// Called by the node's observer after a commit: there may be new events.
    pub fn arrived(&self) {
        self.wake.lock().expect("live wake").arrived = true;
        self.changed.notify_one();
    }

    /// The books, for a read.
    pub fn books(&self) -> MutexGuard<'_, LiveBooks> {
        self.books.lock().expect("live books")
    }

    /// On the node's thread, with `state` durable: the directory brought up to date, so that a
    /// statement finds a wallet opened since the last round.
    pub fn directory_now(&self, state: &StateMachine) -> MutexGuard<'_, LiveBooks> {
        let mut books = self.books();
        books.center.refresh_directory(state);
        books
    }

    /// Reads up to [`FOLLOW_EVENTS_PER_ROUND_MAX`] new events from `node`; how many.
    pub fn follow_round(
        self: &Arc<Self>,
        node: &NodeHandle,
        clock: &SharedClock,
    ) -> Result<usize, NodeError> {
        let live = self.clone();
        let arrivals =
            node.query(move |state| live.books().take_in(state, FOLLOW_EVENTS_PER_ROUND_MAX))?;
        let read = arrivals.events.len();
        if read > 0 {
            self.books().observe(&arrivals, clock.read_ms());
        }
        Ok(read)
    }

    /// Starts the follower: a round whenever entries arrive, until stopped.
    pub fn start_follower(self: &Arc<Self>, node: NodeHandle, clock: SharedClock) -> Follower {
        let live = self.clone();
        let thread = thread::Builder::new()
            .name("ecny-analytics".into())
            .spawn(move || live.run_follower(&node, &clock))
            .expect("an analytics thread starts");
        Follower {
            live: self.clone(),
            thread: Some(thread),
        }
    }

    fn run_follower(self: &Arc<Self>, node: &NodeHandle, clock: &SharedClock) {
        loop {
            let mut wake = self.wake.lock().expect("live wake");
            if !wake.arrived && !wake.stopped {
                wake = self
                    .changed
                    .wait_timeout(wake, Duration::from_millis(FOLLOW_WAKE_MS_MAX))
                    .expect("live wake")
                    .0;
            }
            if wake.stopped {
                return;
            }
            wake.arrived = false;
            wake.following = true;
            drop(wake);
            // Until caught up: a backlog (a server started on a long log) takes many rounds.
            loop {
                match self.follow_round(node, clock) {
                    Ok(FOLLOW_EVENTS_PER_ROUND_MAX) => continue,
                    Ok(_) => break,
                    Err(NodeError::Stopped) => return,
                    Err(error) => {
                        // A poisoned node answers no read; the figures stay as they were.
                        tracing::warn!(%error, "the analysis center cannot read the node");
                        break;
                    }
                }
            }
            self.wake.lock().expect("live wake").following = false;
        }
    }

    /// Whether every commit the node has reported so far has been read.
    pub fn is_caught_up(&self) -> bool {
        let wake = self.wake.lock().expect("live wake");
        !wake.arrived && !wake.following
    }
}

/// The follower's thread; stopping it lets go of its node handle.
pub struct Follower {
    live: Arc<LiveCenter>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Follower {
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.live.wake.lock().expect("live wake").stopped = true;
        self.live.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the analytics thread panicked");
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.shut_down();
    }
}

//! The city's hands on the platform: a scheduled clock, seeded randomness, and the driver that
//! submits each tick's actions as operator batches and group commits.

use super::*;

/// The payment-code step of an action at `at`, whose tick is logged at its start.
pub(super) fn code_step_at(at: u64) -> u64 {
    at / TICK_MS * TICK_MS / 1000 / CODE_STEP_S
}

/// A clock that gives each submission the simulated time it was scheduled for.
pub(super) struct ScheduledClock {
    pub(super) times: Arc<Mutex<VecDeque<u64>>>,
    pub(super) last: u64,
}

impl Clock for ScheduledClock {
    fn now_ms(&mut self) -> u64 {
        if let Some(next) = self.times.lock().expect("clock queue").pop_front() {
            self.last = next;
        }
        self.last
    }
}

/// SplitMix with the draws a city (and the whole-system simulation) needs.
pub(crate) struct Random(pub(crate) SplitMix);

impl Random {
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0.below(bound.max(1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.0.below(100) < percent
    }

    /// Inclusive.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.0.below(high - low + 1)
    }

    /// Log-uniform between two yuan amounts, to the fen: many small payments, few large.
    pub(crate) fn yuan(&mut self, low: i64, high: i64) -> Amount {
        let unit = (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = ((low * 100) as f64, (high * 100) as f64);
        let fen = (low.ln() + unit * (high.ln() - low.ln())).exp().round() as i64;
        Amount::from_fen(fen.clamp(low as i64, high as i64))
    }

    /// A moment of the day, weighted towards meals and commutes.
    pub(crate) fn time_of_day(&mut self) -> u64 {
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
pub(super) struct Action {
    pub(super) at_ms: u64,
    pub(super) origin: Origin,
    pub(super) command: Command,
    /// The labelled episode it belongs to, to count refused steps.
    pub(super) episode: Option<usize>,
}

/// Submits actions minute by minute through the node, one operator batch per operator per
/// minute, many batches per group commit.
pub(super) struct Driver {
    pub(super) platform: Platform,
    pub(super) times: Arc<Mutex<VecDeque<u64>>>,
    pub(super) central_bank: KeyPair,
    pub(super) operator_keys: Vec<KeyPair>,
    /// Each wallet's holder key: the center books a holder's money only on its signature.
    pub(super) holders: HashMap<WalletId, KeyPair>,
    pub(super) next_key: u128,
    pub(super) report: SimulationReport,
    pub(super) refused_episodes: BTreeMap<usize, u32>,
}

impl Driver {
    /// Signs every command that moves a holder's money as its holder would for an entry logged
    /// at `at_ms`; a command whose wallet the state does not know stays unsigned, and refused.
    pub(super) fn sign_holders(&self, commands: &mut [Command], at_ms: u64) {
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

    pub(super) fn key(&mut self) -> IdempotencyKey {
        self.next_key += 1;
        IdempotencyKey(self.next_key)
    }

    pub(super) fn signer(&self, origin: Origin) -> &KeyPair {
        match origin {
            Origin::Operator(op) => &self.operator_keys[op.0 as usize - 1],
            Origin::CentralBank => &self.central_bank,
        }
    }

    /// One batch now, its results returned: for set-up steps whose ids later steps need.
    pub(super) fn batch(
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
    pub(super) fn run(&mut self, mut actions: Vec<Action>) -> Result<(), SimulationError> {
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

    pub(super) fn commit(
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

pub(super) fn origin_rank(origin: Origin) -> u16 {
    match origin {
        Origin::CentralBank => 0,
        Origin::Operator(op) => op.0,
    }
}

pub(super) fn refused(what: &str, result: &CommandResult) -> SimulationError {
    SimulationError::Refused {
        what: what.to_string(),
        code: result
            .as_ref()
            .err()
            .map_or("UNEXPECTED_OUTCOME", |e| e.code()),
    }
}

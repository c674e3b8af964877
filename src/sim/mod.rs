//! `ecny sim`: the whole system driven in process by a random workload from one seed, with
//! faults injected, and checked after every step against a model of what every party was told.
//!
//! The system is the real platform on a scratch data directory (`world`): the central bank, two
//! operators, banked holders who sign with their SM2 keys, shops, escrow contracts, and
//! hardware wallets that pay each other offline and sync (`offline`). Each step time passes,
//! clients send new requests (`workload`), the network drops, duplicates, delays and reorders
//! them, the center takes what arrives in one group commit, and the process may die around it:
//! after the write and before the answer, mid group commit with a torn or zeroed tail, before
//! the write, at rest, or with its newest snapshot corrupted (`faults`). A client that heard no
//! answer sends its request again under the same key. Offline, taps are torn and cards cloned,
//! and terminals' clocks run ahead.
//!
//! The model (`model`) is built from answers alone; after every step the checks (`checks`) hold
//! the ledger to it: an acknowledged transfer is never lost or doubled across any restart, a
//! refusal moved nothing, every balance equals the model's, a retry answers what the first
//! answer said, and the audit of every invariant holds.
//!
//! Deterministic from the seed: one seeded random source, a clock only the simulation moves,
//! one thread. A failure names its seed and step, and `ecny sim --seed S` replays it exactly;
//! every run's trace (what was sent, what the network did, every answer, every fault, the state
//! hash after each step) is digested, so two runs of one seed can be compared.

mod checks;
mod faults;
mod model;
mod offline;
mod workload;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sm3::{Digest, Sm3};
use thiserror::Error;

use crate::city::{simulation_start_ms, Random};
use crate::command::{Command, CommandResult};
use crate::ids::OperatorId;
use crate::progress::progress;
use crate::rng::SplitMix;
use crate::time::{HOUR_MS, MINUTE_MS};

pub use self::checks::Checks;
pub use self::faults::FaultKind;
pub use self::model::Sabotage;

use self::faults::{Crash, Fate};
use self::model::{Model, Told};
use self::offline::Offline;
use self::workload::Request;
use self::world::World;

/// Steps per seed unless told otherwise.
pub const STEPS_DEFAULT: u32 = 200;
/// Chance per step of a snapshot, and of a kill and restart at rest.
const SNAPSHOT_PERCENT: u64 = 4;
const RESTART_AT_REST_PERCENT: u64 = 4;
/// Chance per step of an offline round (taps, tears, clones, syncs).
const OFFLINE_PERCENT: u64 = 30;

/// What one seed's run did.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub steps: u32,
    /// Requests clients made, and copies of them the center took (sends, retries, duplicates).
    pub requests: u64,
    pub deliveries: u64,
    /// First successes, repeated successes (retries and duplicates), refusals by code.
    pub booked: u64,
    pub again: u64,
    pub refused: BTreeMap<&'static str, u64>,
    /// Clients whose own late copy (delayed past its signature's window) was answered with a
    /// refusal although a duplicate had booked it: told "refused" for money that moved.
    pub told_refused_after_booked: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<FaultKind, u64>,
    pub snapshots: u64,
    pub restarts: u64,
    pub offline_taps: u64,
    pub offline_syncs: u64,
    pub checks: Checks,
    /// SM3 over the run's trace: the same seed gives the same digest.
    pub trace_digest: [u8; 32],
}

/// A check that failed: which seed, which step, what, and how to replay it.
#[derive(Debug, Error)]
#[error("seed {seed}, step {step}: {what}\nreplay with: ecny sim --seed {seed} --steps {steps}")]
pub struct SimFailure {
    pub seed: u64,
    pub step: u32,
    pub steps: u32,
    pub what: String,
}

/// Totals over many seeds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    pub steps: u64,
    pub requests: u64,
    pub deliveries: u64,
    pub booked: u64,
    pub again: u64,
    pub refused: u64,
    pub told_refused_after_booked: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<FaultKind, u64>,
    pub snapshots: u64,
    pub restarts: u64,
    pub offline_taps: u64,
    pub offline_syncs: u64,
    pub checks: Checks,
    /// SM3 over the seeds' trace digests in order: one line to compare two runs by.
    pub trace_digest: [u8; 32],
}

impl Summary {
    pub fn add(&mut self, report: &SeedReport) {
        self.seeds += 1;
        self.steps += u64::from(report.steps);
        self.requests += report.requests;
        self.deliveries += report.deliveries;
        self.booked += report.booked;
        self.again += report.again;
        self.refused += report.refused.values().sum::<u64>();
        for (code, count) in &report.told_refused_after_booked {
            *self.told_refused_after_booked.entry(code).or_default() += count;
        }
        for (kind, count) in &report.faults {
            *self.faults.entry(*kind).or_default() += count;
        }
        self.snapshots += report.snapshots;
        self.restarts += report.restarts;
        self.offline_taps += report.offline_taps;
        self.offline_syncs += report.offline_syncs;
        self.checks.add(&report.checks);
        let mut digest = Sm3::new();
        digest.update(self.trace_digest);
        digest.update(report.trace_digest);
        self.trace_digest = digest.finalize().into();
    }

    pub fn trace_digest_hex(&self) -> String {
        hex(&self.trace_digest)
    }

    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} seeds, {} steps: {} requests, {} copies delivered; {} booked, {} answered again, {} refused",
            self.seeds, self.steps, self.requests, self.deliveries, self.booked, self.again, self.refused
        )?;
        writeln!(
            f,
            "{} snapshots, {} restarts; offline: {} taps, {} syncs",
            self.snapshots, self.restarts, self.offline_taps, self.offline_syncs
        )?;
        for (code, count) in &self.told_refused_after_booked {
            writeln!(
                f,
                "{count} late copies of booked requests answered {code} to their own client"
            )?;
        }
        writeln!(f, "faults injected: {}", self.faults_total())?;
        for (kind, count) in &self.faults {
            writeln!(f, "  {count:>8}  {kind}")?;
        }
        let c = &self.checks;
        write!(
            f,
            "checks made: {} (balances {}, acknowledged transfers {}, answers {}, audits {}, recoveries {}, offline {})",
            c.total(),
            c.balances,
            c.acknowledged,
            c.answers,
            c.audits,
            c.recoveries,
            c.offline
        )
    }
}

/// Runs `seeds` one after another, `steps` each; stops at the first failure. A progress bar
/// counts seeds on long runs.
pub fn run_seeds(seeds: &[u64], steps: u32) -> Result<Summary, SimFailure> {
    let bar = progress(seeds.len() as u64, "seeds");
    let mut summary = Summary::default();
    for &seed in seeds {
        let report = run_seed(seed, steps)?;
        summary.add(&report);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(summary)
}

pub fn run_seed(seed: u64, steps: u32) -> Result<SeedReport, SimFailure> {
    run_seed_with(seed, steps, None)
}

/// One seed's run, with a planted bug if `sabotage` says so.
pub fn run_seed_with(
    seed: u64,
    steps: u32,
    sabotage: Option<Sabotage>,
) -> Result<SeedReport, SimFailure> {
    let failed = |step: u32| {
        move |what: String| SimFailure {
            seed,
            step,
            steps,
            what,
        }
    };
    let mut simulation = Simulation::new(seed, steps, sabotage).map_err(failed(0))?;
    for step in 1..=steps {
        simulation.step = step;
        simulation.run_step().map_err(failed(step))?;
    }
    simulation.finish().map_err(failed(steps))
}

/// One copy of a request on the wire.
#[derive(Clone)]
struct Copy {
    request: u64,
    operator: OperatorId,
    command: Command,
    /// The client's own send (its answer is what the client hears), or the network's duplicate.
    own: bool,
    /// Signed this step: a booked request must be answered booked.
    fresh: bool,
    answer_lost: bool,
}

struct Simulation {
    steps: u32,
    step: u32,
    random: Random,
    world: World,
    model: Model,
    offline: Offline,
    /// Every request made, by id; `done` those whose client heard an answer.
    requests: BTreeMap<u64, Request>,
    done: BTreeSet<u64>,
    /// Requests to send (again) at the next step.
    outbox: Vec<u64>,
    /// Copies held back, with the step they arrive at.
    network: Vec<(u32, Copy)>,
    sabotage: Option<Sabotage>,
    /// The newest snapshot is intact (a corrupted one is set aside at the next start).
    snapshot_intact: bool,
    /// Acknowledged transfers read back since the last restart.
    acknowledged_read: usize,
    report: SeedReport,
    trace: Sm3,
}

impl Simulation {
    fn new(seed: u64, steps: u32, sabotage: Option<Sabotage>) -> Result<Simulation, String> {
        let mut world = World::found(seed, simulation_start_ms())?;
        let mut model = Model::after_setup(&world, sabotage)?;
        let offline = Offline::issue(&mut world, &mut model)?;
        let random = Random(SplitMix(seed));
        let mut simulation = Simulation {
            steps,
            step: 0,
            random,
            world,
            model,
            offline,
            requests: BTreeMap::new(),
            done: BTreeSet::new(),
            outbox: Vec::new(),
            network: Vec::new(),
            sabotage,
            snapshot_intact: false,
            acknowledged_read: 0,
            report: SeedReport {
                seed,
                steps,
                ..SeedReport::default()
            },
            trace: Sm3::new(),
        };
        simulation.check()?;
        Ok(simulation)
    }

    fn trace(&mut self, line: impl fmt::Display) {
        self.trace
            .update(format!("{} {line}\n", self.step).as_bytes());
    }

    fn fault(&mut self, kind: FaultKind) {
        *self.report.faults.entry(kind).or_default() += 1;
        self.trace(format_args!("fault {kind:?}"));
    }

    fn run_step(&mut self) -> Result<(), String> {
        self.pass_time();
        for _ in 0..1 + self.random.below(4) {
            self.new_request();
        }
        let mut arriving = Vec::new();
        for id in std::mem::take(&mut self.outbox) {
            let copy = self.send(id);
            let fate = faults::fate(&mut self.random);
            self.trace(format_args!("send {id} {fate:?}"));
            match fate {
                Fate::Deliver => arriving.push(copy),
                Fate::Drop => {
                    self.fault(FaultKind::RequestDropped);
                    self.outbox.push(id);
                }
                Fate::Delay(steps) => {
                    self.fault(FaultKind::RequestDelayed);
                    self.network.push((self.step + steps, copy));
                }
                Fate::Duplicate(later) => {
                    self.fault(FaultKind::RequestDuplicated);
                    let duplicate = Copy {
                        own: false,
                        ..copy.clone()
                    };
                    arriving.push(copy);
                    if later == 0 {
                        arriving.push(duplicate);
                    } else {
                        self.network.push((self.step + later, duplicate));
                    }
                }
                Fate::AnswerLost => {
                    self.fault(FaultKind::AnswerLost);
                    arriving.push(Copy {
                        answer_lost: true,
                        ..copy
                    });
                }
            }
        }
        let step = self.step;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|(at, _)| *at <= step);
        self.network = later;
        arriving.extend(due.into_iter().map(|(_, copy)| Copy {
            fresh: false,
            ..copy
        }));
        self.reorder(&mut arriving);
        let crash = faults::crash(&mut self.random);
        self.deliver(arriving, crash)?;
        if self.random.chance(OFFLINE_PERCENT) {
            self.offline_round()?;
        }
        self.at_rest()?;
        self.check()
    }

    /// Taps, tears, clones and syncs of the hardware wallets; their faults and trace lines
    /// join the run's.
    fn offline_round(&mut self) -> Result<(), String> {
        let (taps, syncs) = (self.offline.taps, self.offline.syncs);
        let round = self.offline.round(
            &mut self.random,
            &mut self.world,
            &mut self.model,
            &mut self.report.checks,
        );
        for kind in std::mem::take(&mut self.offline.faults) {
            self.report.restarts += u64::from(kind == FaultKind::SyncCrash);
            self.fault(kind);
        }
        for line in std::mem::take(&mut self.offline.trace) {
            self.trace(line);
        }
        self.report.offline_taps += self.offline.taps - taps;
        self.report.offline_syncs += self.offline.syncs - syncs;
        // A sync cut by a crash restarted the process: read everything back again.
        self.acknowledged_read = 0;
        round
    }

    fn pass_time(&mut self) {
        let ms = match self.random.below(100) {
            0..=69 => self.random.between(1_000, 30_000),
            70..=94 => self.random.between(MINUTE_MS, 20 * MINUTE_MS),
            _ => self.random.between(6 * HOUR_MS, 30 * HOUR_MS),
        };
        self.world.advance_ms(ms);
        self.trace(format_args!("time {}", self.world.now_ms()));
    }

    fn new_request(&mut self) {
        let escrows = self.model.open_escrows();
        let intent = workload::draw(&mut self.random, &self.world, &escrows);
        match intent {
            workload::Intent::SignedByAnother { .. } => self.fault(FaultKind::WrongSigner),
            workload::Intent::ForeignOperator { .. } => self.fault(FaultKind::WrongOperator),
            _ => {}
        }
        let id = self.report.requests;
        self.report.requests += 1;
        let key = self.world.key();
        self.trace(format_args!("request {id} {intent:?} key {}", key.0));
        self.requests.insert(id, Request { intent, key });
        self.outbox.push(id);
    }

    /// The client's copy of request `id`, signed now.
    fn send(&self, id: u64) -> Copy {
        let (operator, command) = workload::command(&self.world, &self.requests[&id]);
        Copy {
            request: id,
            operator,
            command,
            own: true,
            fresh: true,
            answer_lost: false,
        }
    }

    /// Shuffles what arrives together; counts a reordering when the order changed.
    fn reorder(&mut self, copies: &mut [Copy]) {
        if copies.len() < 2 {
            return;
        }
        let before: Vec<u64> = copies.iter().map(|c| c.request).collect();
        for i in (1..copies.len()).rev() {
            let j = self.random.below(i + 1);
            copies.swap(i, j);
        }
        if copies.iter().map(|c| c.request).ne(before) {
            self.fault(FaultKind::Reordered);
        }
    }

    /// One group commit of `copies`, one batch per operator in order of arrival; `crash` kills
    /// the process around it. Whoever heard no answer sends again under the same key.
    fn deliver(&mut self, copies: Vec<Copy>, crash: Option<Crash>) -> Result<(), String> {
        if copies.is_empty() {
            return Ok(());
        }
        self.report.deliveries += copies.len() as u64;
        let mut batches: Vec<(OperatorId, Vec<Command>)> = Vec::new();
        let mut placed: Vec<Vec<usize>> = Vec::new();
        for (i, copy) in copies.iter().enumerate() {
            match batches.iter().position(|(op, _)| *op == copy.operator) {
                Some(b) => {
                    batches[b].1.push(copy.command.clone());
                    placed[b].push(i);
                }
                None => {
                    batches.push((copy.operator, vec![copy.command.clone()]));
                    placed.push(vec![i]);
                }
            }
        }
        let (segment, length_before) = self.world.active_segment()?;
        let hash_before = self.world.state().state_hash();
        let outcomes = self
            .world
            .submit(&batches)
            .map_err(|e| format!("group commit failed [{}]: {e}", e.code()))?;
        if let Some(crash) = crash {
            return self.crash(crash, &copies, (segment, length_before), hash_before);
        }
        let mut again = Vec::new();
        for (outcome, indices) in outcomes.into_iter().zip(placed) {
            let results =
                outcome.map_err(|e| format!("a batch was refused whole: {} ({e})", e.code()))?;
            for (result, i) in results.iter().zip(indices) {
                let copy = &copies[i];
                self.heard(copy, result)?;
                if copy.own && copy.answer_lost {
                    again.push(copy.request);
                }
            }
        }
        self.retry_now(again)
    }

    /// Records the center's answer to one copy; the client hears it if the copy was its own
    /// and the answer got through.
    fn heard(&mut self, copy: &Copy, result: &CommandResult) -> Result<(), String> {
        let request = &self.requests[&copy.request];
        let told = self.model.answer(request, result, copy.fresh)?;
        self.report.checks.answers += 1;
        match told {
            Told::Booked => self.report.booked += 1,
            Told::Again => self.report.again += 1,
            Told::Refused(code) => *self.report.refused.entry(code).or_default() += 1,
            Told::RefusedAfterBooked(code) => {
                *self.report.refused.entry(code).or_default() += 1;
                if copy.own {
                    *self
                        .report
                        .told_refused_after_booked
                        .entry(code)
                        .or_default() += 1;
                }
            }
        }
        self.trace(format_args!(
            "answer {} own {} fresh {} {result:?}",
            copy.request, copy.own, copy.fresh
        ));
        if copy.own && !copy.answer_lost {
            self.done.insert(copy.request);
        }
        Ok(())
    }

    /// The process dies around the group commit just made; the disk keeps what `crash` says;
    /// it starts again; every client with a copy in the group sends its request again.
    fn crash(
        &mut self,
        crash: Crash,
        copies: &[Copy],
        (segment, length_before): (std::path::PathBuf, u64),
        hash_before: [u8; 32],
    ) -> Result<(), String> {
        self.fault(crash.kind());
        let (_, length_after) = self.world.active_segment()?;
        self.world.kill();
        let written = length_after.saturating_sub(length_before).max(1);
        let damage = match crash {
            _ if self.sabotage == Some(Sabotage::LyingDisk) => {
                // Acknowledged bytes go too: the checks must notice.
                let into = 1 + self.random.0.below(length_before.clamp(1, 4_096));
                faults::cut(&segment, length_before.saturating_sub(into))
            }
            Crash::BeforeAnswer => Ok(()),
            Crash::TornTail => faults::cut(&segment, length_before + self.random.0.below(written)),
            Crash::LostWrite => faults::cut(&segment, length_before),
            Crash::ZeroedTail => faults::cut_and_zero(
                &segment,
                length_before + self.random.0.below(written),
                1 + self.random.0.below(4_096),
            ),
        };
        damage.map_err(|e| format!("damaging {}: {e}", segment.display()))?;
        let recovery = self.world.restart()?;
        self.report.restarts += 1;
        self.acknowledged_read = 0;
        if crash == Crash::LostWrite && self.sabotage != Some(Sabotage::LyingDisk) {
            checks::same_state(&self.world, hash_before, &recovery, &mut self.report.checks)?;
        }
        let cut = recovery
            .log
            .torn_tail
            .as_ref()
            .map(|t| (t.offset, t.bytes_cut));
        self.trace(format_args!(
            "restart replayed {} cut {cut:?}",
            recovery.log.entries_replayed
        ));
        let in_doubt: BTreeSet<u64> = copies.iter().map(|c| c.request).collect();
        self.retry_now(in_doubt.into_iter().collect())
    }

    /// Clients send these requests again now, signed afresh under their keys, until each hears
    /// an answer (no faults on the way: the next step brings new ones).
    fn retry_now(&mut self, ids: Vec<u64>) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let copies: Vec<Copy> = ids.iter().map(|id| self.send(*id)).collect();
        // A retry that finds its request already answered changes nothing: the same answer.
        self.deliver(copies, None)
    }

    /// Snapshots, and kills at rest, some with the newest snapshot corrupted.
    fn at_rest(&mut self) -> Result<(), String> {
        if self.random.chance(SNAPSHOT_PERCENT) {
            self.world.snapshot()?;
            self.report.snapshots += 1;
            self.snapshot_intact = true;
            self.trace("snapshot");
        }
        if !self.random.chance(RESTART_AT_REST_PERCENT) {
            return Ok(());
        }
        let hash_before = self.world.state().state_hash();
        let corrupt = self.snapshot_intact && self.random.chance(50);
        if corrupt {
            let newest = self
                .world
                .newest_snapshot()?
                .ok_or("a snapshot was taken but none is on disk")?;
            self.world.kill();
            let at = self.random.0.next_u64();
            faults::flip_byte(&newest, at).map_err(|e| format!("{}: {e}", newest.display()))?;
            self.fault(FaultKind::CorruptSnapshot);
            self.snapshot_intact = false;
        } else {
            self.fault(FaultKind::RestartAtRest);
        }
        let recovery = self.world.restart()?;
        self.report.restarts += 1;
        self.acknowledged_read = 0;
        if corrupt && recovery.damaged_snapshots.is_empty() {
            return Err("a corrupted snapshot was loaded as if intact".into());
        }
        checks::same_state(&self.world, hash_before, &recovery, &mut self.report.checks)
    }

    /// The ledger against the model, every acknowledged transfer since the last restart, the
    /// audit; the state's hash goes into the trace.
    fn check(&mut self) -> Result<(), String> {
        checks::balances(&self.world, &self.model, &mut self.report.checks)?;
        checks::acknowledged(
            &self.world,
            &self.model,
            self.acknowledged_read,
            &mut self.report.checks,
        )?;
        self.acknowledged_read = self.model.acknowledged.len();
        checks::audited(&self.world, &mut self.report.checks)?;
        let hash = self.world.state().state_hash();
        self.trace(format_args!("state {}", hex(&hash)));
        Ok(())
    }

    /// Everything still on the wire arrives, every client still waiting sends again, and the
    /// last checks run.
    fn finish(mut self) -> Result<SeedReport, String> {
        self.step = self.steps + 1;
        let held: Vec<Copy> = std::mem::take(&mut self.network)
            .into_iter()
            .map(|(_, copy)| Copy {
                fresh: false,
                ..copy
            })
            .collect();
        self.deliver(held, None)?;
        let waiting: Vec<u64> = std::mem::take(&mut self.outbox);
        self.retry_now(waiting)?;
        let unanswered: Vec<u64> = self
            .requests
            .keys()
            .filter(|id| !self.done.contains(id))
            .copied()
            .collect();
        if !unanswered.is_empty() {
            return Err(format!("requests never answered: {unanswered:?}"));
        }
        self.acknowledged_read = 0;
        self.check()?;
        self.report.trace_digest = self.trace.clone().finalize().into();
        Ok(self.report)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

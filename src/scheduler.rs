//! Time on a running server. Whatever happens at a time — a hold or an escrow timing out, a
//! recurring payment falling due, a red-packet campaign ending — happens inside the state
//! machine when it applies the first log entry stamped at or after that time
//! (`StateMachine::next_due_ms`). Traffic brings such entries; with none, the scheduler submits
//! one: an empty batch signed by the central bank, stamped by the node's clock. The work then
//! happens once (the state machine takes it off its books as it does it), on time, and the same
//! on replay (the entry and its time are in the log).
//!
//! The node shows the scheduler its state after every commit (`NodeHandle::spawn_observed`),
//! waking it when work falls due sooner than it was waiting for; the scheduler sleeps until the
//! next due time, and looks at the clock at least every [`SCHEDULER_WAKE_MS_MAX`] (every
//! [`SCHEDULER_WAKE_MS_MANUAL`] on a clock a test moves, which wakes no one).

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::certs::KeyPair;
use crate::command::{Origin, Submission};
use crate::node::{NodeError, NodeHandle};
use crate::state_machine::StateMachine;
use crate::time::SharedClock;

/// Longest the scheduler sleeps without looking at the machine's clock again: bounds what a
/// clock set forward costs.
pub const SCHEDULER_WAKE_MS_MAX: u64 = 1_000;
/// The same on a clock a test moves.
pub const SCHEDULER_WAKE_MS_MANUAL: u64 = 50;
/// Pause after a tick the node could not take (a failed write), before trying again.
const SCHEDULER_RETRY_MS: u64 = 1_000;

#[derive(Debug, Default)]
struct Due {
    /// The state's next due time as of the last commit.
    next_due_ms: Option<u64>,
    /// Entries the state has applied, as of the same group.
    entries_applied: u64,
    stopped: bool,
}

/// What the node thread tells the scheduler, and the scheduler's own counts.
#[derive(Debug, Default)]
pub struct DueWatch {
    due: Mutex<Due>,
    changed: Condvar,
    ticks: std::sync::atomic::AtomicU64,
}

impl DueWatch {
    /// Takes in the state after a commit: when its time-driven work next falls due.
    pub fn observe(&self, state: &StateMachine) {
        let next_due_ms = state.next_due_ms();
        let mut due = self.due.lock().expect("due watch");
        let earlier = match (next_due_ms, due.next_due_ms) {
            (Some(new), Some(old)) => new < old,
            (new, old) => new.is_some() && old.is_none(),
        };
        due.next_due_ms = next_due_ms;
        due.entries_applied = state.entries_applied();
        drop(due);
        // A sleeping scheduler only needs waking when the work it waits for moved closer.
        if earlier {
            self.changed.notify_all();
        }
    }

    /// The next due time as of the last commit.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.due.lock().expect("due watch").next_due_ms
    }

    /// Empty entries the scheduler has submitted.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn stop(&self) {
        self.due.lock().expect("due watch").stopped = true;
        self.changed.notify_all();
    }
}

/// What the scheduler does next, given the due time, the clock and what it last did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Submit an empty entry: work is due.
    Tick,
    /// Nothing due yet: look again after this long at most.
    Sleep(u64),
}

/// The scheduler's rule: tick when work is due at `now_ms`, unless the last tick was made with
/// the same state (it is still being applied; ticking again would only add an empty entry),
/// else sleep until the work is due, at most `wake_ms_max`.
pub fn next_step(
    next_due_ms: Option<u64>,
    now_ms: u64,
    (entries_applied, ticked_at_entries): (u64, Option<u64>),
    wake_ms_max: u64,
) -> Step {
    match next_due_ms {
        Some(due) if due <= now_ms && ticked_at_entries != Some(entries_applied) => Step::Tick,
        Some(due) if due > now_ms => Step::Sleep((due - now_ms).min(wake_ms_max)),
        _ => Step::Sleep(wake_ms_max),
    }
}

/// The scheduler's thread; stopping it lets go of its node handle.
pub struct Scheduler {
    watch: Arc<DueWatch>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Scheduler {
    /// Starts submitting empty entries, signed by `central_bank`, to `node` whenever `watch`
    /// (fed by the node's observer) says work is due by `clock`.
    pub fn start(
        node: NodeHandle,
        central_bank: KeyPair,
        clock: SharedClock,
        watch: Arc<DueWatch>,
    ) -> Scheduler {
        let shared = watch.clone();
        let thread = thread::Builder::new()
            .name("ecny-scheduler".into())
            .spawn(move || run(&node, &central_bank, &clock, &shared))
            .expect("a scheduler thread starts");
        Scheduler {
            watch,
            thread: Some(thread),
        }
    }

    /// Stops the thread and waits for it; a tick in flight finishes first.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.watch.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the scheduler thread panicked");
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn run(node: &NodeHandle, central_bank: &KeyPair, clock: &SharedClock, watch: &DueWatch) {
    let wake_ms_max = match clock {
        SharedClock::System => SCHEDULER_WAKE_MS_MAX,
        SharedClock::Manual(_) => SCHEDULER_WAKE_MS_MANUAL,
    };
    let mut ticked_at_entries = None;
    loop {
        let due = watch.due.lock().expect("due watch");
        if due.stopped {
            return;
        }
        let step = next_step(
            due.next_due_ms,
            clock.read_ms(),
            (due.entries_applied, ticked_at_entries),
            wake_ms_max,
        );
        let entries_applied = due.entries_applied;
        let Step::Sleep(ms) = step else {
            drop(due);
            ticked_at_entries = Some(entries_applied);
            if !tick(node, central_bank, watch) {
                return;
            }
            continue;
        };
        let (due, _) = watch
            .changed
            .wait_timeout(due, Duration::from_millis(ms))
            .expect("due watch");
        if due.stopped {
            return;
        }
    }
}

/// Submits one empty entry; false when the node has stopped.
fn tick(node: &NodeHandle, central_bank: &KeyPair, watch: &DueWatch) -> bool {
    let submission = Submission::new(Origin::CentralBank, &[], central_bank);
    match node.submit(submission) {
        Ok(Ok(_)) => {
            watch
                .ticks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
        Ok(Err(refused)) => {
            // The central bank's own key refused: said, and tried again after a pause.
            tracing::error!(%refused, code = refused.code(), "the scheduler's entry was refused");
            thread::sleep(Duration::from_millis(SCHEDULER_RETRY_MS));
            true
        }
        Err(NodeError::Stopped) => false,
        Err(error) => {
            tracing::error!(%error, code = error.code(), "the scheduler's entry was not committed");
            thread::sleep(Duration::from_millis(SCHEDULER_RETRY_MS));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_only_when_work_is_due_and_not_twice_for_one_state() {
        assert_eq!(next_step(None, 1_000, (7, None), 50), Step::Sleep(50));
        assert_eq!(
            next_step(Some(1_020), 1_000, (7, None), 50),
            Step::Sleep(20)
        );
        assert_eq!(
            next_step(Some(9_000), 1_000, (7, None), 50),
            Step::Sleep(50)
        );
        assert_eq!(
            next_step(Some(9_000), 1_000, (7, None), 1_000),
            Step::Sleep(1_000)
        );
        assert_eq!(next_step(Some(1_000), 1_000, (7, None), 50), Step::Tick);
        assert_eq!(next_step(Some(400), 1_000, (7, Some(6)), 50), Step::Tick);
        // The state the last tick saw has not moved on: wait for it rather than tick again.
        assert_eq!(
            next_step(Some(400), 1_000, (7, Some(7)), 50),
            Step::Sleep(50)
        );
    }
}

//! A durable node: the state machine behind the command log. Submissions are validated (one
//! signature per batch), appended, applied, and made durable together with one fdatasync (group
//! commit); only then does anyone hear the results. Start-up loads the newest snapshot and replays
//! the log after it.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};
use std::thread;
use std::time::Instant;

use thiserror::Error;

use crate::codec::DecodeError;
use crate::command::{CommandResult, Submission};
use crate::error::CommandError;
use crate::state_machine::{StateMachine, Validated, Validator};
use crate::storage::log::SealedWrite;
use crate::storage::log::{OpenError, RecoveryReport};
use crate::storage::{snapshot, CommandLog, StorageError};
pub use crate::time::{Clock, ManualClock, SystemClock};

/// Most submissions one group commit takes; bounds the latency a batch adds to its first client.
pub const GROUP_COMMIT_SUBMISSIONS_MAX: usize = 256;
/// Queue of submissions waiting for the node thread; a full queue pushes back on clients.
pub const SUBMIT_QUEUE_DEPTH_MAX: usize = 1024;
/// Log bytes since the last snapshot after which a node writes one by itself, between group
/// commits: a restart then replays at most about this much of the log (about 1.7 million
/// holder-signed transfers), whatever the history.
pub const SNAPSHOT_AFTER_LOG_BYTES_DEFAULT: u64 = 256 << 20;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("log entry {seq} does not decode ({source}); the log was written by an incompatible version or is corrupt")]
    Replay { seq: u64, source: DecodeError },
    #[error("snapshot {path} does not decode ({source})")]
    Snapshot { path: PathBuf, source: DecodeError },
    #[error("the node stopped after a failed write; restart it to recover from the log")]
    Poisoned,
    #[error("snapshot {newest} is damaged ({reason}) and no older snapshot with the log since it remains: {log}")]
    SnapshotsExhausted {
        newest: PathBuf,
        reason: String,
        log: String,
    },
    #[error("the node thread has stopped")]
    Stopped,
}

impl NodeError {
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Storage(error) => error.code(),
            NodeError::Replay { .. } => "LOG_UNREADABLE",
            NodeError::Snapshot { .. } => "SNAPSHOT_UNREADABLE",
            NodeError::Poisoned => "NODE_POISONED",
            NodeError::SnapshotsExhausted { .. } => "SNAPSHOTS_EXHAUSTED",
            NodeError::Stopped => "NODE_STOPPED",
        }
    }
}

/// What start-up found.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub snapshot_seq: Option<u64>,
    /// Newer snapshots that were damaged and recovered without, with why; a repairing open
    /// renames each aside (`….damaged`).
    pub damaged_snapshots: Vec<DamagedSnapshot>,
    pub log: RecoveryReport,
    pub elapsed: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct DamagedSnapshot {
    /// Where it is now: set aside by a repairing open, in place for a reader.
    pub path: PathBuf,
    pub reason: String,
}

/// Whether opening may change the data directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Repair,
    ReadOnly,
}

/// The state a snapshot gave, before the log's replay.
struct Restored {
    state: StateMachine,
    seq: Option<u64>,
    damaged: Vec<DamagedSnapshot>,
}

/// A log that cannot be replayed from the restored snapshot: when a damaged snapshot was
/// skipped, its damage is the cause worth naming (the log was pruned up to it).
fn explain(damaged: &[DamagedSnapshot], error: OpenError<NodeError>) -> NodeError {
    let error = match error {
        OpenError::Storage(error) => NodeError::Storage(error),
        OpenError::Apply { source, .. } => source,
    };
    match (&error, damaged.first()) {
        (NodeError::Storage(StorageError::MissingEntries { .. }), Some(damaged)) => {
            NodeError::SnapshotsExhausted {
                newest: damaged.path.clone(),
                reason: damaged.reason.clone(),
                log: error.to_string(),
            }
        }
        _ => error,
    }
}

/// The newest snapshot that reads, verifies and decodes. A damaged one is skipped for the
/// next older (the node keeps the log since the older one for exactly this); with `Repair` it
/// is renamed aside so it is never chosen again.
fn restore(dir: &Path, access: Access) -> Result<Restored, NodeError> {
    let mut damaged = Vec::new();
    for candidate in snapshot::newest_first(dir)? {
        let decoded = candidate.read().map_err(NodeError::from).and_then(|found| {
            StateMachine::decode_snapshot(&found.state).map_err(|source| NodeError::Snapshot {
                path: found.path.clone(),
                source,
            })
        });
        match decoded {
            Ok(state) => {
                return Ok(Restored {
                    state,
                    seq: Some(candidate.seq),
                    damaged,
                })
            }
            Err(error) => {
                let path = match access {
                    Access::Repair => candidate.set_aside()?,
                    Access::ReadOnly => candidate.path.clone(),
                };
                tracing::warn!(snapshot = %candidate.path.display(), %error,
                    "a damaged snapshot is skipped; recovering from an older one and the log");
                damaged.push(DamagedSnapshot {
                    path,
                    reason: error.to_string(),
                });
            }
        }
    }
    Ok(Restored {
        state: StateMachine::default(),
        seq: None,
        damaged,
    })
}

/// What a pipelined node does next.
pub enum NextGroup<T> {
    /// Submissions to commit together, with a tag handed back when they are durable.
    Group(Vec<Validated>, T),
    /// Nothing to do right now.
    Idle,
    /// No more work: finish what is in flight and return.
    Closed,
}

/// The outcome of one submission: refused whole (bad batch signature) or one result per command.
pub type SubmissionResult = Result<Vec<CommandResult>, CommandError>;

pub struct Node {
    state: StateMachine,
    log: CommandLog,
    dir: PathBuf,
    clock: Box<dyn Clock>,
    entry: Vec<u8>,
    poisoned: bool,
    /// Log bytes after which the node snapshots by itself; `None`: only when asked.
    snapshot_after_bytes: Option<u64>,
    /// Log bytes not yet covered by a snapshot: those replayed at start, then those written
    /// since `written_at_snapshot` (the log's count when the last snapshot was written).
    replayed_bytes: u64,
    written_at_snapshot: u64,
}

impl Node {
    pub fn open(dir: &Path) -> Result<(Node, Recovery), NodeError> {
        Node::open_with_clock(dir, Box::new(SystemClock))
    }

    pub fn open_with_clock(
        dir: &Path,
        clock: Box<dyn Clock>,
    ) -> Result<(Node, Recovery), NodeError> {
        let started = Instant::now();
        let snapshots = dir.join("snapshots");
        snapshot::remove_temp_files(&snapshots)?;
        let Restored {
            mut state,
            seq,
            damaged,
        } = restore(&snapshots, Access::Repair)?;
        let mut results = Vec::new();
        let mut replayed_bytes = 0u64;
        let replay = |seq: u64, payload: &[u8]| {
            results.clear();
            replayed_bytes += payload.len() as u64;
            state
                .apply_entry(payload, &mut results)
                .map_err(|source| NodeError::Replay { seq, source })
        };
        let opened = CommandLog::open(&dir.join("log"), seq.unwrap_or(0), replay);
        let (log, report) = opened.map_err(|error| explain(&damaged, error))?;
        let node = Node {
            state,
            log,
            dir: dir.to_path_buf(),
            clock,
            entry: Vec::new(),
            poisoned: false,
            snapshot_after_bytes: Some(SNAPSHOT_AFTER_LOG_BYTES_DEFAULT),
            replayed_bytes,
            written_at_snapshot: 0,
        };
        let recovery = Recovery {
            snapshot_seq: seq,
            damaged_snapshots: damaged,
            log: report,
            elapsed: started.elapsed(),
        };
        Ok((node, recovery))
    }

    /// The state a data directory holds, read without changing anything on disk and without
    /// the node's lock, so it works beside a running server: for audits and reports. A torn
    /// tail (or a write in progress) is where reading stops; a damaged snapshot is skipped for
    /// an older one when the log still reaches back to it.
    pub fn read_only(dir: &Path) -> Result<(StateMachine, Recovery), NodeError> {
        let started = Instant::now();
        let Restored {
            mut state,
            seq,
            damaged,
        } = restore(&dir.join("snapshots"), Access::ReadOnly)?;
        let mut results = Vec::new();
        let replay = |seq: u64, payload: &[u8]| {
            results.clear();
            state
                .apply_entry(payload, &mut results)
                .map_err(|source| NodeError::Replay { seq, source })
        };
        let read = CommandLog::read(&dir.join("log"), seq.unwrap_or(0), replay);
        let report = read.map_err(|error| explain(&damaged, error))?;
        let recovery = Recovery {
            snapshot_seq: seq,
            damaged_snapshots: damaged,
            log: report,
            elapsed: started.elapsed(),
        };
        Ok((state, recovery))
    }

    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    /// The node's clock now: the time the next entry will carry, give or take.
    pub fn now_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn last_durable_seq(&self) -> u64 {
        self.log.last_durable_seq()
    }

    pub fn log_bytes_written(&self) -> u64 {
        self.log.bytes_written()
    }

    /// Group commit: every submission is validated, logged and applied, then one fdatasync makes
    /// them all durable before any result is returned.
    pub fn submit(
        &mut self,
        submissions: Vec<Submission>,
    ) -> Result<Vec<SubmissionResult>, NodeError> {
        let mut outcomes: Vec<Option<SubmissionResult>> = Vec::with_capacity(submissions.len());
        let mut accepted = Vec::with_capacity(submissions.len());
        for submission in submissions {
            match self.state.validate(submission) {
                Ok(submission) => {
                    accepted.push(submission);
                    outcomes.push(None);
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        let mut applied = self.submit_validated(&accepted)?.into_iter();
        let mut next_applied = || applied.next().expect("one result per accepted submission");
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Ok(next_applied())))
            .collect())
    }

    /// Group commit of submissions validated elsewhere (on the callers' threads).
    pub fn submit_validated(
        &mut self,
        submissions: &[Validated],
    ) -> Result<Vec<Vec<CommandResult>>, NodeError> {
        let outcomes = self.apply_group(submissions)?;
        if let Err(error) = self.log.commit() {
            // Memory is now ahead of the disk; only a restart (a replay) is trustworthy.
            self.poisoned = true;
            return Err(error.into());
        }
        self.snapshot_if_due();
        Ok(outcomes)
    }

    /// Sets the log bytes after which the node snapshots by itself (`None`: only when asked).
    pub fn set_snapshot_after_bytes(&mut self, bytes: Option<u64>) {
        self.snapshot_after_bytes = bytes;
    }

    /// Log bytes a restart would replay now: those not yet covered by a snapshot.
    pub fn log_bytes_since_snapshot(&self) -> u64 {
        self.replayed_bytes + (self.log.bytes_written() - self.written_at_snapshot)
    }

    /// Writes a snapshot if the log has grown past the node's threshold since the last one.
    /// Called only when everything applied is durable. A snapshot that fails is said and tried
    /// again a threshold later: the log still holds everything, so nothing is at risk.
    fn snapshot_if_due(&mut self) {
        let Some(after) = self.snapshot_after_bytes else {
            return;
        };
        if self.poisoned || self.log_bytes_since_snapshot() < after {
            return;
        }
        let started = Instant::now();
        match self.snapshot() {
            Ok(path) => tracing::info!(
                path = %path.display(),
                millis = started.elapsed().as_millis() as u64,
                "snapshot written by itself: a restart replays only what comes after"
            ),
            Err(error) => {
                tracing::error!(%error, code = error.code(), "automatic snapshot failed");
                self.replayed_bytes = 0;
                self.written_at_snapshot = self.log.bytes_written();
            }
        }
    }

    /// Logs and applies a group without waiting for the disk; a commit or a sealed write then
    /// makes it durable. Results must not reach anyone before that write is durable.
    fn apply_group(
        &mut self,
        submissions: &[Validated],
    ) -> Result<Vec<Vec<CommandResult>>, NodeError> {
        if self.poisoned {
            return Err(NodeError::Poisoned);
        }
        let mut outcomes = Vec::with_capacity(submissions.len());
        for submission in submissions {
            match self.log_and_apply(submission) {
                Ok(results) => outcomes.push(results),
                Err(error) => {
                    self.poisoned = true;
                    return Err(error);
                }
            }
        }
        Ok(outcomes)
    }

    fn finish_write(&mut self, written: &mpsc::Receiver<SealedWrite>) -> Result<(), NodeError> {
        let sealed = written
            .recv()
            .expect("the writer thread returns every sealed write");
        self.log.complete(sealed).map(|_| ()).map_err(|error| {
            // Memory is ahead of the disk; only a restart (a replay) is trustworthy.
            self.poisoned = true;
            error.into()
        })
    }

    /// Group commits with each group's write and fdatasync (on a writer thread) overlapped with
    /// applying the next group: on two cores the disk's latency then costs no CPU time.
    /// `next(may_block, state)` gives the next group; `may_block` is false while a write is in
    /// flight, so that a lull completes it rather than waiting for more work, and `state` is
    /// handed in only then (nothing in flight: everything visible is durable). `durable(tag,
    /// results, state)` is called once per group, in order, after its write is durable.
    pub fn run_pipelined<T>(
        &mut self,
        mut next: impl FnMut(Option<&StateMachine>) -> NextGroup<T>,
        mut durable: impl FnMut(T, Result<Vec<Vec<CommandResult>>, NodeError>, &StateMachine),
    ) {
        let (to_writer, writer_inbox) = mpsc::sync_channel::<SealedWrite>(1);
        let (written, written_inbox) = mpsc::sync_channel::<SealedWrite>(1);
        thread::scope(|scope| {
            scope.spawn(move || {
                for mut sealed in writer_inbox {
                    sealed.write_and_sync();
                    if written.send(sealed).is_err() {
                        break;
                    }
                }
            });
            let mut in_flight: Option<(T, Vec<Vec<CommandResult>>)> = None;
            loop {
                if in_flight.is_none() {
                    self.snapshot_if_due();
                }
                let settled = in_flight.is_none().then_some(&self.state);
                let (group, tag) = match next(settled) {
                    NextGroup::Group(group, tag) => (group, tag),
                    NextGroup::Idle | NextGroup::Closed if in_flight.is_some() => {
                        let (tag, results) = in_flight.take().expect("checked");
                        let outcome = self.finish_write(&written_inbox).map(|()| results);
                        durable(tag, outcome, &self.state);
                        continue;
                    }
                    NextGroup::Idle => continue,
                    NextGroup::Closed => break,
                };
                let applied = self.apply_group(&group);
                if let Some((tag, results)) = in_flight.take() {
                    let outcome = self.finish_write(&written_inbox).map(|()| results);
                    durable(tag, outcome, &self.state);
                }
                let sealed = applied.and_then(|results| Ok((results, self.log.seal()?)));
                match sealed {
                    Ok((results, Some(write))) => {
                        to_writer.send(write).expect("the writer thread is alive");
                        in_flight = Some((tag, results));
                    }
                    Ok((results, None)) => durable(tag, Ok(results), &self.state),
                    Err(error) => {
                        self.poisoned = true;
                        durable(tag, Err(error), &self.state);
                    }
                }
            }
            drop(to_writer);
        });
    }

    fn log_and_apply(&mut self, validated: &Validated) -> Result<Vec<CommandResult>, NodeError> {
        let timestamp = self.clock.now_ms().max(self.state.last_timestamp_ms());
        self.entry.clear();
        validated
            .submission()
            .encode_entry(timestamp, &mut self.entry);
        self.log.append(&self.entry)?;
        let mut results = Vec::new();
        self.state
            .apply_validated_entry(&self.entry, validated.digests(), &mut results)
            .expect("a validated entry decodes");
        Ok(results)
    }

    /// Writes a snapshot of the current state and starts a new log segment. Start-up after this
    /// replays only what came later. The log is kept back to the previous snapshot, never just
    /// to this one: if this snapshot is later damaged, the previous one and the log since it
    /// still recover every entry.
    pub fn snapshot(&mut self) -> Result<PathBuf, NodeError> {
        let seq = self.log.last_durable_seq();
        let dir = self.dir.join("snapshots");
        let path = snapshot::write(&dir, seq, &self.state.encode_snapshot())?;
        self.log.rotate()?;
        self.replayed_bytes = 0;
        self.written_at_snapshot = self.log.bytes_written();
        let kept = snapshot::newest_first(&dir)?;
        if let Some(previous) = kept.iter().find(|kept| kept.seq < seq) {
            self.log.remove_segments_through(previous.seq)?;
        }
        Ok(path)
    }
}

/// A read, handed the durable state, or why there is none to read (a failed write left memory
/// ahead of the disk).
type Query = Box<dyn FnOnce(Result<&StateMachine, NodeError>) + Send>;

enum Request {
    Submit(
        Validated,
        mpsc::SyncSender<Result<SubmissionResult, NodeError>>,
    ),
    Query(Query),
}

/// A node on its own thread, shared by many clients: each client validates its submission on its
/// own thread, and what arrives while a commit is in flight is committed together in the next.
#[derive(Clone)]
pub struct NodeHandle {
    requests: mpsc::SyncSender<Request>,
    validator: Arc<RwLock<Validator>>,
}

impl NodeHandle {
    pub fn spawn(node: Node) -> (NodeHandle, thread::JoinHandle<Node>) {
        NodeHandle::spawn_observed(node, Box::new(|_: &StateMachine| {}))
    }

    /// As `spawn`, with `observer` shown the state on the node's thread at start and after
    /// every group commit (a pipelined node may already have applied the next group, not yet
    /// durable): how the scheduler learns when work next falls due and the analysis center that
    /// entries arrived, to read them with a query, which sees only what is durable. It must be
    /// quick; the next group waits for it.
    pub fn spawn_observed(
        mut node: Node,
        mut observer: Box<dyn FnMut(&StateMachine) + Send>,
    ) -> (NodeHandle, thread::JoinHandle<Node>) {
        let (requests, inbox) = mpsc::sync_channel::<Request>(SUBMIT_QUEUE_DEPTH_MAX);
        let validator = Arc::new(RwLock::new(node.state.validator()));
        let shared = validator.clone();
        let thread = thread::Builder::new()
            .name("ecny-node".into())
            .spawn(move || {
                observer(&node.state);
                run_node(&mut node, inbox, &shared, &mut *observer);
                node
            })
            .expect("spawn node thread");
        (
            NodeHandle {
                requests,
                validator,
            },
            thread,
        )
    }

    /// Validates here, submits, and waits until the submission is durable.
    pub fn submit(&self, submission: Submission) -> Result<SubmissionResult, NodeError> {
        let validated = match self
            .validator
            .read()
            .expect("validator lock")
            .validate(submission)
        {
            Ok(validated) => validated,
            Err(error) => return Ok(Err(error)),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::Submit(validated, reply))
            .map_err(|_| NodeError::Stopped)?;
        answer.recv().map_err(|_| NodeError::Stopped)?
    }

    /// Reads the state between commits: only what is durable. After a failed write nothing is
    /// read (`NodeError::Poisoned`): memory may hold what the disk lost.
    pub fn query<T: Send + 'static>(
        &self,
        read: impl FnOnce(&StateMachine) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let query: Query = Box::new(move |state| {
            let _ = reply.send(state.map(read));
        });
        self.requests
            .send(Request::Query(query))
            .map_err(|_| NodeError::Stopped)?;
        answer.recv().map_err(|_| NodeError::Stopped)?
    }
}

fn run_node(
    node: &mut Node,
    inbox: mpsc::Receiver<Request>,
    validator: &RwLock<Validator>,
    observer: &mut (dyn FnMut(&StateMachine) + Send),
) {
    type Replies = Vec<mpsc::SyncSender<Result<SubmissionResult, NodeError>>>;
    let mut deferred: Vec<Query> = Vec::new();
    let poisoned = std::cell::Cell::new(false);
    // Queries see only durable state: they wait while a write is in flight, and after a failed
    // write they see none.
    let answer = |query: Query, state: &StateMachine| match poisoned.get() {
        false => query(Ok(state)),
        true => query(Err(NodeError::Poisoned)),
    };
    let next = |settled: Option<&StateMachine>| -> NextGroup<Replies> {
        if let Some(state) = settled {
            deferred.drain(..).for_each(|query| answer(query, state));
        }
        let first = if settled.is_some() {
            inbox.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            inbox.try_recv()
        };
        let mut request = match first {
            Ok(request) => Some(request),
            Err(mpsc::TryRecvError::Empty) => return NextGroup::Idle,
            Err(mpsc::TryRecvError::Disconnected) => return NextGroup::Closed,
        };
        let (mut batch, mut replies) = (Vec::new(), Replies::new());
        while let Some(taken) = request.take() {
            match taken {
                Request::Submit(submission, reply) => {
                    batch.push(submission);
                    replies.push(reply);
                }
                Request::Query(query) => match settled {
                    Some(state) => answer(query, state),
                    None => deferred.push(query),
                },
            }
            if batch.len() < GROUP_COMMIT_SUBMISSIONS_MAX {
                request = inbox.try_recv().ok();
            }
        }
        if batch.is_empty() {
            return NextGroup::Idle;
        }
        NextGroup::Group(batch, replies)
    };
    let durable = |replies: Replies,
                   outcome: Result<Vec<Vec<CommandResult>>, NodeError>,
                   state: &StateMachine| {
        // New operators or a new central bank key: let callers validate against them before
        // they hear that the command creating them is done.
        let current = state.validator();
        if *validator.read().expect("validator lock") != current {
            *validator.write().expect("validator lock") = current;
        }
        match outcome {
            Ok(outcomes) => {
                // Before the replies: a scheduler that hears its entry is done finds the due
                // time that entry left.
                observer(state);
                for (reply, results) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(Ok(results)));
                }
            }
            Err(error) => {
                if !poisoned.replace(true) {
                    // The cause (ENOSPC, EIO, …) is said once, where an operator looks for it.
                    tracing::error!(%error, code = error.code(),
                        "a write failed: the node refuses every request until it is restarted");
                }
                for reply in replies {
                    let _ = reply.send(Err(NodeError::Poisoned));
                }
            }
        }
    };
    node.run_pipelined(next, durable);
}

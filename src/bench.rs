//! `ecny bench`: throughput and footprint of the registration center, measured in release builds.
//! Also the shared set-up (a populated platform) that the crash test's load generator uses.

pub mod api;
pub mod campaign;
pub mod live;
pub mod packets;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::amount::Amount;
use crate::certs::{KeyPair, PublicKey, Verifier};
use crate::command::{Command, Origin, Outcome, Submission};
use crate::ids::{IdempotencyKey, OperatorId, WalletId};
use crate::node::NextGroup;
use crate::platform::{Platform, PlatformError};
use crate::progress::progress;
use crate::rng::SplitMix;
use crate::signing::{SigningContext, SIGNATURE_WINDOW_MS_CLIENT, SIGNATURE_WINDOW_MS_MAX};
use crate::state_machine::{StateMachine, Validated, Validator};

/// Commands per operator batch handed to the center.
pub const BENCH_BATCH_COMMANDS: usize = 8_192;
/// Opening balance of every benchmark wallet.
pub const BENCH_OPENING_BALANCE: Amount = Amount::from_yuan(1_000);

/// The key of benchmark holder `index`, derived from a seed so that a run's set-up and its
/// payments hold the same keys.
pub fn holder_key(index: usize) -> KeyPair {
    KeyPair::from_seed(format!("bench/holder/{index}").as_bytes())
}

/// Keys the holders of a city opened in bulk (benchmarks, demos, tests) share: deriving a key for
/// each of a million wallets would take longer than anything they then do.
pub const BULK_HOLDER_KEYS: usize = 1_024;

/// The key of wallet `wallet`'s holder in a city whose wallets are opened in bulk: the key of
/// its id modulo [`BULK_HOLDER_KEYS`], derived once per process. Each wallet still registers its
/// key and signs with it; the center checks every signature against the wallet's own key.
pub fn wallet_holder_key(wallet: WalletId) -> &'static KeyPair {
    static KEYS: std::sync::OnceLock<Vec<KeyPair>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..BULK_HOLDER_KEYS)
            .map(|n| KeyPair::from_seed(format!("bulk/holder/{n}").as_bytes()))
            .collect()
    });
    &keys[wallet.0 as usize % BULK_HOLDER_KEYS]
}

/// Each wallet with its holder's key, found among `keys` by the key the wallet registered.
pub fn with_holders<'a>(
    state: &StateMachine,
    wallets: &[(WalletId, OperatorId)],
    keys: &'a [KeyPair],
) -> Vec<(WalletId, OperatorId, &'a KeyPair)> {
    let by_key: HashMap<PublicKey, &KeyPair> =
        keys.iter().map(|key| (key.public_key(), key)).collect();
    wallets
        .iter()
        .map(|&(wallet, op)| {
            let registered = state.wallet_key(wallet).expect("a populated wallet");
            (wallet, op, by_key[registered])
        })
        .collect()
}

/// Signs every command as the holder `signer(i)` of command i would, on every core: the phones'
/// work, done before a benchmark's clock starts.
pub fn sign_all<'k>(
    commands: Vec<Command>,
    signer: &(dyn Fn(usize) -> (&'k KeyPair, SigningContext) + Sync),
    not_after_ms: u64,
) -> Vec<Command> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = commands.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Command>> = Vec::new();
    let mut rest = commands;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        chunks.push(rest);
        rest = tail;
    }
    std::thread::scope(|scope| {
        let mut first = 0;
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let offset = first;
                first += chunk.len();
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .enumerate()
                        .map(|(i, command)| {
                            let (key, context) = signer(offset + i);
                            command.sign(key, &context, not_after_ms)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("signing thread"))
            .collect()
    })
}

/// A wallet key that is never used to sign, for wallets that only receive or only take
/// operator-driven commands (a counter exchange): such set-ups need only a well-formed key.
pub fn placeholder_key(index: u64) -> PublicKey {
    let mut key = [0u8; 33];
    key[0] = 2;
    key[1..9].copy_from_slice(&index.to_le_bytes());
    PublicKey(key)
}

/// Two operators with reserves and e-CNY, and a funded wallet for each of `holders` (wallet i
/// registers `holders[i]`, which signs its first exchange), split between them.
pub fn populate(
    platform: &mut Platform,
    holders: &[KeyPair],
) -> Result<Vec<(WalletId, OperatorId)>, PlatformError> {
    let wallets = holders.len();
    let operators = [
        platform.create_operator("Jiangnan Commercial Bank")?,
        platform.create_operator("Lakeside Digital Bank")?,
    ];
    let per_operator = Amount::from_fen(
        BENCH_OPENING_BALANCE.fen() * wallets as i64 + Amount::from_yuan(1_000_000).fen(),
    );
    for op in operators {
        let commands = vec![
            Command::FundReserves {
                operator: op,
                amount: per_operator,
            },
            Command::Issue {
                operator: op,
                amount: per_operator,
            },
        ];
        for result in platform.as_central_bank(commands)? {
            result.map_err(PlatformError::Refused)?;
        }
    }
    let bar = progress(wallets as u64, "opening wallets");
    let mut opened = Vec::with_capacity(wallets);
    let chunk = BENCH_BATCH_COMMANDS / 2;
    for start in (0..wallets).step_by(chunk) {
        for (index, op) in operators.into_iter().enumerate() {
            let mine: Vec<usize> = (start..(start + chunk).min(wallets))
                .filter(|i| i % 2 == index)
                .collect();
            opened.extend(open_funded(platform, op, &mine, holders)?);
        }
        bar.inc(chunk.min(wallets - start) as u64);
    }
    bar.finish_and_clear();
    Ok(opened)
}

fn open_funded(
    platform: &mut Platform,
    op: OperatorId,
    indices: &[usize],
    holders: &[KeyPair],
) -> Result<Vec<(WalletId, OperatorId)>, PlatformError> {
    let mut commands = Vec::with_capacity(indices.len() * 2);
    for &i in indices {
        commands.push(Command::OpenWallet {
            operator: op,
            phone: (13_000_000_000 + i as u64).into(),
            public_key: holders[i].public_key(),
        });
        commands.push(Command::OpenDepositAccount { operator: op });
    }
    let results = platform.as_operator(op, commands)?;
    let mut funding = Vec::with_capacity(indices.len() * 3);
    let mut holders_own = Vec::with_capacity(indices.len() * 2);
    let mut opened = Vec::with_capacity(indices.len());
    for pair in results.chunks(2) {
        let (Ok(Outcome::Wallet(wallet)), Ok(Outcome::Account(account))) = (&pair[0], &pair[1])
        else {
            panic!("benchmark set-up refused: {pair:?}");
        };
        funding.push(Command::CashDeposit {
            account: *account,
            amount: BENCH_OPENING_BALANCE,
        });
        holders_own.push(Command::BindBankAccount {
            wallet: *wallet,
            account: *account,
            auth: None,
        });
        holders_own.push(Command::Exchange {
            wallet: *wallet,
            amount: BENCH_OPENING_BALANCE,
            key: IdempotencyKey(u128::MAX),
            auth: None,
        });
        opened.push((*wallet, op));
    }
    // Each holder signs the binding of its bank account and the exchange of its deposits.
    let context = platform.state().signing_context(op);
    let not_after_ms = platform.node_mut().now_ms() + SIGNATURE_WINDOW_MS_CLIENT;
    let signer = |n: usize| (&holders[indices[n / 2]], context);
    funding.extend(sign_all(holders_own, &signer, not_after_ms));
    for result in platform.as_operator(op, funding)? {
        result.map_err(PlatformError::Refused)?;
    }
    Ok(opened)
}

/// Random payments between the given wallets, each signed by its payer's holder for the window
/// closing at `not_after_ms` (before the clock starts), in operator batches signed by each
/// payer's operator. Amounts 0.01 to 10.00 keep every wallet far from its limits.
pub fn payment_batches(
    state: &StateMachine,
    wallets: &[(WalletId, OperatorId, &KeyPair)],
    transfers: usize,
    (first_key, seed): (u128, u64),
    operator_keys: &[KeyPair],
    not_after_ms: u64,
) -> Vec<Submission> {
    let mut random = SplitMix(seed);
    let mut payments = Vec::with_capacity(transfers);
    let mut payers = Vec::with_capacity(transfers);
    for n in 0..transfers {
        let payer_at = random.below(wallets.len() as u64) as usize;
        let (payer, _, _) = wallets[payer_at];
        let mut payee = wallets[random.below(wallets.len() as u64) as usize].0;
        if payee == payer {
            payee = wallets[(payer.0 as usize) % wallets.len()].0;
        }
        let amount = Amount::from_fen(1 + random.below(1_000) as i64);
        payments.push(Command::Pay {
            payer,
            payee,
            amount,
            key: IdempotencyKey(first_key + n as u128),
            auth: None,
        });
        payers.push(payer_at);
    }
    let signer = |i: usize| {
        let (_, op, key) = wallets[payers[i]];
        (key, state.signing_context(op))
    };
    let payments = sign_all(payments, &signer, not_after_ms);
    let mut per_operator: Vec<Vec<Command>> = vec![Vec::new(); operator_keys.len()];
    let mut batches = Vec::with_capacity(transfers / BENCH_BATCH_COMMANDS + 2);
    for (command, payer_at) in payments.into_iter().zip(payers) {
        let op = wallets[payer_at].1;
        let queue = &mut per_operator[op.0 as usize - 1];
        queue.push(command);
        if queue.len() == BENCH_BATCH_COMMANDS {
            batches.push(Submission::new(
                Origin::Operator(op),
                queue,
                &operator_keys[op.0 as usize - 1],
            ));
            queue.clear();
        }
    }
    for (index, queue) in per_operator.iter().enumerate() {
        if !queue.is_empty() {
            batches.push(Submission::new(
                Origin::Operator(OperatorId(index as u16 + 1)),
                queue,
                &operator_keys[index],
            ));
        }
    }
    batches
}

/// Median and 99th percentile of a set of durations.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Resident memory of this process, from /proc (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub struct LedgerBenchConfig {
    pub wallets: usize,
    pub transfers: usize,
    pub signed_transfers: usize,
    /// Operator batches per group commit (one fdatasync each).
    pub batches_per_commit: usize,
}

pub struct LedgerBenchReport {
    pub transfers: usize,
    pub accepted: usize,
    pub elapsed: Duration,
    pub commit_p50: Duration,
    pub commit_p99: Duration,
    pub bytes_per_wallet: Option<f64>,
    pub log_bytes_per_transfer: f64,
    pub verify_per_core: f64,
    /// The center's door alone: every batch's digests, operator signature and holder signatures
    /// checked on every core, timed apart from the apply path behind it.
    pub door_elapsed: Duration,
    pub signed_transfers: usize,
    pub signed_elapsed: Duration,
    pub recovery: Duration,
    pub snapshot_recovery: Duration,
    pub recovered_entries: u64,
}

impl LedgerBenchReport {
    pub fn transfers_per_second(&self) -> f64 {
        self.transfers as f64 / self.elapsed.as_secs_f64()
    }

    /// Transfers/s through the center's door (stateless: a center adds door processes to add
    /// door throughput).
    pub fn door_per_second(&self) -> f64 {
        self.transfers as f64 / self.door_elapsed.as_secs_f64()
    }

    pub fn signed_per_second(&self) -> f64 {
        self.signed_transfers as f64 / self.signed_elapsed.as_secs_f64()
    }
}

/// Runs the ledger benchmark in `dir` (which should be empty).
pub fn ledger(dir: &Path, config: &LedgerBenchConfig) -> Result<LedgerBenchReport, PlatformError> {
    let clock = Box::new(crate::node::SystemClock);
    let (mut platform, _) = Platform::open_seeded(dir, "bench", clock)?;
    let bar = progress(config.wallets as u64, "deriving holder keys");
    let holders: Vec<KeyPair> = (0..config.wallets)
        .map(|i| {
            bar.inc(1);
            holder_key(i)
        })
        .collect();
    bar.finish_and_clear();
    let rss_before = resident_bytes();
    let wallets = populate(&mut platform, &holders)?;
    let bytes_per_wallet = resident_bytes()
        .zip(rss_before)
        .map(|(after, before)| (after.saturating_sub(before)) as f64 / config.wallets as f64);
    let operator_keys: Vec<KeyPair> = (1..=2)
        .map(|id| KeyPair::from_seed(format!("bench/{}", OperatorId(id)).as_bytes()))
        .collect();

    // Every payment carries its holder's signature, which the center verifies at its door: the
    // window is as long as the center takes, and the run must end inside it.
    let wallets = with_holders(platform.state(), &wallets, &holders);
    let not_after_ms = platform.node_mut().now_ms() + SIGNATURE_WINDOW_MS_MAX;
    let batches = payment_batches(
        platform.state(),
        &wallets,
        config.transfers,
        (1, 7),
        &operator_keys,
        not_after_ms,
    );
    let (validated, door_elapsed) = pass_door(platform.state().validator(), batches);
    let log_before = platform.node_mut().log_bytes_written();
    let (accepted, elapsed, mut latencies) =
        feed(&mut platform, validated, config.batches_per_commit)?;
    let log_bytes = platform.node_mut().log_bytes_written() - log_before;
    let (commit_p50, commit_p99) = percentiles(&mut latencies);

    let verify_per_core = measure_verify_per_core(400);
    let (signed_transfers, signed_elapsed) =
        signed(&mut platform, &wallets, config.signed_transfers)?;

    drop(platform);
    let started = Instant::now();
    let (platform, recovery) =
        Platform::open_seeded(dir, "bench", Box::new(crate::node::SystemClock))?;
    let recovery_time = started.elapsed();
    // The same state again, from a snapshot instead of the whole log.
    let mut platform = platform;
    platform
        .node_mut()
        .snapshot()
        .map_err(PlatformError::Node)?;
    drop(platform);
    let started = Instant::now();
    let (platform, _) = Platform::open_seeded(dir, "bench", Box::new(crate::node::SystemClock))?;
    let snapshot_recovery = started.elapsed();
    drop(platform);
    Ok(LedgerBenchReport {
        snapshot_recovery,
        transfers: config.transfers,
        accepted,
        elapsed,
        commit_p50,
        commit_p99,
        bytes_per_wallet,
        log_bytes_per_transfer: log_bytes as f64 / config.transfers.max(1) as f64,
        verify_per_core,
        door_elapsed,
        signed_transfers,
        signed_elapsed,
        recovery: recovery_time,
        recovered_entries: recovery.log.entries_replayed,
    })
}

/// Passes every batch through the center's door (its SM3 digests, the operator's signature and
/// each holder's signature, on every core), timed on its own. The door is stateless and scales
/// out over processes; the apply path behind it is one thread, so the two are measured apart.
fn pass_door(validator: Validator, batches: Vec<Submission>) -> (Vec<Validated>, Duration) {
    let bar = progress(batches.len() as u64, "batches through the door");
    let started = Instant::now();
    let validated = batches
        .into_iter()
        .map(|batch| {
            bar.inc(1);
            validator
                .validate(batch)
                .unwrap_or_else(|error| panic!("benchmark batch refused at the door: {error}"))
        })
        .collect();
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    (validated, elapsed)
}

/// Feeds batches that passed the door to the center, up to `per_commit` batches per group
/// commit; each group's write and fdatasync overlap with applying the next group.
fn feed(
    platform: &mut Platform,
    batches: Vec<Validated>,
    per_commit: usize,
) -> Result<(usize, Duration, Vec<Duration>), PlatformError> {
    let total: usize = batches
        .iter()
        .map(|b| {
            let commands = &b.submission().commands;
            u32::from_le_bytes(commands[..4].try_into().expect("count")) as usize
        })
        .sum();
    let bar = progress(total as u64, "durable transfers");
    let mut queue = batches.into_iter();
    let (mut latencies, mut accepted, mut failure) = (Vec::new(), 0, None);
    let started = Instant::now();
    let next = |settled: Option<&crate::state_machine::StateMachine>| {
        let group: Vec<Validated> = queue.by_ref().take(per_commit.max(1)).collect();
        match (group.is_empty(), settled.is_some()) {
            (false, _) => NextGroup::Group(group, Instant::now()),
            (true, true) => NextGroup::Closed,
            (true, false) => NextGroup::Idle,
        }
    };
    let durable =
        |applied_at: Instant,
         outcome: Result<Vec<Vec<crate::command::CommandResult>>, crate::node::NodeError>,
         _: &crate::state_machine::StateMachine| {
            latencies.push(applied_at.elapsed());
            match outcome {
                Ok(groups) => {
                    for results in groups {
                        bar.inc(results.len() as u64);
                        accepted += results.iter().filter(|r| r.is_ok()).count();
                    }
                }
                Err(error) => failure = Some(error),
            }
        };
    platform.node_mut().run_pipelined(next, durable);
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if let Some(error) = failure {
        return Err(error.into());
    }
    Ok((accepted, elapsed, latencies))
}

/// Single-core SM2 verifications per second, measured now on this machine: the median of five
/// rounds of `signatures` verifications with a pre-parsed key.
pub fn measure_verify_per_core(signatures: usize) -> f64 {
    let key = KeyPair::from_seed(b"verify-rate");
    let messages: Vec<[u8; 64]> = (0..signatures).map(|i| [i as u8; 64]).collect();
    let signed: Vec<_> = messages.iter().map(|m| key.sign(m)).collect();
    let verifier = Verifier::new(&key.public_key()).expect("valid key");
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            for (message, signature) in messages.iter().zip(&signed) {
                verifier
                    .verify(message, signature)
                    .expect("signature verifies");
            }
            signatures as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[2]
}

/// Holder-signed payments through the operator tier (verification on every core) into the
/// center (which verifies them again at its door). Clients' signing happens before the clock
/// starts: it is the phones' work.
fn signed(
    platform: &mut Platform,
    wallets: &[(WalletId, OperatorId, &KeyPair)],
    transfers: usize,
) -> Result<(usize, Duration), PlatformError> {
    let signers = 64.min(wallets.len());
    let keys: Vec<KeyPair> = (0..signers)
        .map(|i| KeyPair::from_seed(format!("bench-holder/{i}").as_bytes()))
        .collect();
    let (mut opened, operators) = (Vec::new(), [OperatorId(1), OperatorId(2)]);
    for (i, key) in keys.iter().enumerate() {
        let op = operators[i % 2];
        let command = Command::OpenWallet {
            operator: op,
            phone: (15_000_000_000 + i as u64).into(),
            public_key: key.public_key(),
        };
        if let Ok(Outcome::Wallet(wallet)) = platform.one(op, command)? {
            opened.push((wallet, op, key));
        }
    }
    let mut random = SplitMix(11);
    let mut commands: Vec<Vec<Command>> = vec![Vec::new(), Vec::new()];
    for n in 0..transfers {
        let (payer, op, key) = &opened[random.below(opened.len() as u64) as usize];
        let payee = wallets[random.below(wallets.len() as u64) as usize].0;
        let pay = Command::Pay {
            payer: *payer,
            payee,
            amount: Amount::from_fen(1),
            key: IdempotencyKey(1 << 100 | n as u128),
            auth: None,
        };
        let signed = platform.sign_as_holder(pay, key, *op);
        commands[op.0 as usize - 1].push(signed);
    }
    // Signed payers hold nothing yet: fund them from the populated wallets first.
    for (n, (payer, op, _)) in opened.iter().enumerate() {
        let (source, source_op, source_key) = wallets
            .iter()
            .filter(|(_, o, _)| o == op)
            .nth(n / 2)
            .copied()
            .expect("enough wallets per operator");
        let fund = Command::Pay {
            payer: source,
            payee: *payer,
            amount: Amount::from_yuan(100),
            key: IdempotencyKey(1 << 101 | payer.0 as u128),
            auth: None,
        };
        let fund = platform.sign_as_holder(fund, source_key, source_op);
        platform
            .one(source_op, fund)?
            .map_err(PlatformError::Refused)?;
    }
    let bar = progress(transfers as u64, "signed transfers");
    let started = Instant::now();
    let mut done = 0;
    for (index, per_op) in commands.iter().enumerate() {
        for chunk in per_op.chunks(2_048) {
            let results = platform.as_operator(OperatorId(index as u16 + 1), chunk.to_vec())?;
            done += results.iter().filter(|r| r.is_ok()).count();
            bar.inc(chunk.len() as u64);
        }
    }
    bar.finish_and_clear();
    Ok((done, started.elapsed()))
}

/// Memory of `wallets` class-4 wallets in the state machine, measured as growth of resident memory.
pub fn memory_per_wallet(wallets: usize) -> (f64, StateMachine) {
    let mut state = StateMachine::default();
    let central_bank = KeyPair::from_seed(b"memory/central-bank");
    let operator = KeyPair::from_seed(b"memory/operator");
    let apply = |state: &mut StateMachine, origin, commands: &[Command], signer: &KeyPair| {
        let submission = Submission::new(origin, commands, signer);
        let mut entry = Vec::new();
        submission.encode_entry(1, &mut entry);
        let mut results = Vec::new();
        state
            .apply_entry(&entry, &mut results)
            .expect("entry decodes");
        results
    };
    let genesis = [
        Command::Genesis {
            central_bank_key: central_bank.public_key(),
        },
        Command::CreateOperator {
            name: "memory".into(),
            public_key: operator.public_key(),
        },
    ];
    apply(&mut state, Origin::CentralBank, &genesis, &central_bank);
    let before = resident_bytes().unwrap_or(0);
    let bar = progress(wallets as u64, "opening wallets");
    let mut commands = Vec::with_capacity(BENCH_BATCH_COMMANDS);
    for start in (0..wallets).step_by(BENCH_BATCH_COMMANDS) {
        commands.clear();
        for i in start..(start + BENCH_BATCH_COMMANDS).min(wallets) {
            commands.push(Command::OpenWallet {
                operator: OperatorId(1),
                phone: (13_000_000_000 + i as u64).into(),
                public_key: placeholder_key(i as u64),
            });
        }
        apply(
            &mut state,
            Origin::Operator(OperatorId(1)),
            &commands,
            &operator,
        );
        bar.inc(commands.len() as u64);
    }
    bar.finish_and_clear();
    let after = resident_bytes().unwrap_or(0);
    (after.saturating_sub(before) as f64 / wallets as f64, state)
}

/// What `ecny bench offline` measured.
pub struct OfflineBenchReport {
    pub records: usize,
    /// Through the operator tier (every SE signature verified on every core), the center's door
    /// (every one verified again) and the state machine.
    pub verified_elapsed: Duration,
    /// Into the center alone, in operator-signed batches: its door verifies each sync's
    /// attestation and the payer's SE signature on every record a payee reports, on every core.
    pub center_records: usize,
    pub center_elapsed: Duration,
    /// SE signatures the center's door verified in the second phase.
    pub center_verifications: usize,
}

/// A secure element as the benchmark plays it: its key and the log it would attest.
struct BenchCard {
    key: KeyPair,
    counter: u32,
    synced_through: u32,
    log: Vec<crate::offline::messages::LogEntry>,
}

impl BenchCard {
    fn next_seq(&self) -> u32 {
        self.synced_through + self.log.len() as u32 + 1
    }
}

/// Settlement of offline records at sync: `devices` secure elements (visitor cards, half at each
/// operator) loaded from the vaults, and `records` payments between them, each logged by its
/// payer (with the payee's receipt) and by its payee, signed and attested as their SEs sign.
/// Both sides sync: a record settles once and is a duplicate the second time.
pub fn offline_sync(
    dir: &Path,
    devices: usize,
    records: usize,
) -> Result<OfflineBenchReport, PlatformError> {
    let (mut platform, _) =
        Platform::open_seeded(dir, "bench-offline", Box::new(crate::node::SystemClock))?;
    let operators = [
        platform.create_operator("Jiangnan Commercial Bank")?,
        platform.create_operator("Lakeside Digital Bank")?,
    ];
    for op in operators {
        let funding = vec![
            Command::FundReserves {
                operator: op,
                amount: Amount::from_yuan(100_000_000),
            },
            Command::Issue {
                operator: op,
                amount: Amount::from_yuan(100_000_000),
            },
        ];
        for result in platform.as_central_bank(funding)? {
            result.map_err(PlatformError::Refused)?;
        }
    }
    let mut cards = register_bench_cards(&mut platform, operators, devices)?;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u32;
    let mut random = SplitMix(3);
    let mut verified_elapsed = Duration::ZERO;
    let mut made = 0;
    while made < records {
        made += log_bench_payments(&mut cards, &mut random, records - made, now_s);
        let syncs = bench_syncs(&mut platform, operators, &mut cards)?;
        let started = Instant::now();
        for (op, commands) in syncs {
            for chunk in commands.chunks(64) {
                for result in platform.as_operator(op, chunk.to_vec())? {
                    result.map_err(PlatformError::Refused)?;
                }
            }
        }
        verified_elapsed += started.elapsed();
    }

    let center_records = records * 4;
    let mut center_elapsed = Duration::ZERO;
    let mut center_verifications = 0;
    let mut made = 0;
    while made < center_records {
        made += log_bench_payments(&mut cards, &mut random, center_records - made, now_s);
        let syncs = bench_syncs(&mut platform, operators, &mut cards)?;
        let submissions: Vec<Submission> = syncs
            .into_iter()
            .flat_map(|(op, commands)| {
                let key = crate::platform::seeded_key("bench-offline", &op.to_string());
                center_verifications += commands
                    .iter()
                    .map(|c| crate::command::se_signatures(c).map_or(0, |s| s.len()))
                    .sum::<usize>();
                commands
                    .chunks(64)
                    .map(|chunk| Submission::new(Origin::Operator(op), chunk, &key))
                    .collect::<Vec<_>>()
            })
            .collect();
        let started = Instant::now();
        for outcome in platform.node_mut().submit(submissions)? {
            for result in outcome.map_err(PlatformError::Refused)? {
                result.map_err(PlatformError::Refused)?;
            }
        }
        center_elapsed += started.elapsed();
    }
    let report = crate::audit::audit(platform.state());
    assert!(
        report.is_clean(),
        "audit after the offline benchmark:\n{report}"
    );
    assert_eq!(
        platform.state().devices().held_records(),
        0,
        "every record settled"
    );
    Ok(OfflineBenchReport {
        records,
        verified_elapsed,
        center_records,
        center_elapsed,
        center_verifications,
    })
}

/// Registers `devices` visitor cards, alternating between the two operators, each loaded.
fn register_bench_cards(
    platform: &mut Platform,
    operators: [OperatorId; 2],
    devices: usize,
) -> Result<Vec<BenchCard>, PlatformError> {
    use crate::certs::device::DeviceCaps;
    use crate::ids::DeviceId;
    let caps = DeviceCaps {
        per_payment_cap: Amount::from_yuan(1_000),
        balance_cap: Amount::from_yuan(1_000_000),
        daily_cap: None,
        payments_before_sync: u16::MAX,
        spend_before_sync: Amount::from_yuan(1_000_000),
    };
    let mut cards = Vec::with_capacity(devices);
    for i in 0..devices {
        let key = KeyPair::from_seed(format!("bench-offline/device/{i}").as_bytes());
        let register = Command::RegisterDevice {
            operator: operators[i % 2],
            device: DeviceId(i as u64 + 1),
            public_key: key.public_key(),
            wallet: None,
            caps,
            auth: None,
        };
        // Visitor cards loaded against cash at the counter: no wallet, so no holder signs.
        let load = Command::LoadDevice {
            device: DeviceId(i as u64 + 1),
            load_seq: 1,
            amount: Amount::from_yuan(100_000),
            auth: None,
        };
        for result in platform.as_operator(operators[i % 2], vec![register, load])? {
            result.map_err(PlatformError::Refused)?;
        }
        cards.push(BenchCard {
            key,
            counter: 0,
            synced_through: 0,
            log: Vec::new(),
        });
    }
    Ok(cards)
}

/// Logs up to `wanted` payments between random cards, as their SEs would: a paid entry with the
/// payee's receipt at the payer, a received entry at the payee; a card's log holds what an SE's
/// does. Returns how many were logged.
fn log_bench_payments(
    cards: &mut [BenchCard],
    random: &mut SplitMix,
    wanted: usize,
    time_s: u32,
) -> usize {
    use crate::ids::DeviceId;
    use crate::offline::applet::RECORDS_MAX;
    use crate::offline::messages::{EntryRole, LogEntry, Nonce, PaymentRecord, SignedRecord};
    let devices = cards.len();
    let mut logged = 0;
    for _ in 0..wanted.min(devices * RECORDS_MAX / 4) {
        let payer = random.below(devices as u64) as usize;
        let payee = (payer + 1 + random.below(devices as u64 - 1) as usize) % devices;
        if cards[payer].log.len() == RECORDS_MAX || cards[payee].log.len() == RECORDS_MAX {
            continue;
        }
        cards[payer].counter += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&random.next_u64().to_le_bytes());
        let record = PaymentRecord {
            payer: DeviceId(payer as u64 + 1),
            counter: cards[payer].counter,
            payee: DeviceId(payee as u64 + 1),
            nonce: Nonce(nonce),
            amount: Amount::from_fen(1 + random.below(10_000) as i64),
            time_s,
        };
        let signed = SignedRecord {
            record,
            signature: cards[payer].key.sign(&record.digest()),
        };
        let (payer_key, payee_key) = (cards[payer].key.public_key(), cards[payee].key.public_key());
        let paid = LogEntry {
            seq: cards[payer].next_seq(),
            role: EntryRole::Paid,
            signed,
            peer_key: payee_key,
            acknowledged: true,
        };
        cards[payer].log.push(paid);
        let received = LogEntry {
            seq: cards[payee].next_seq(),
            role: EntryRole::Received,
            signed,
            peer_key: payer_key,
            acknowledged: true,
        };
        cards[payee].log.push(received);
        logged += 1;
    }
    logged
}

/// Opens a sync for every card with something logged, and answers each card's attested sync
/// command, by operator; the cards' logs are then confirmed (emptied).
fn bench_syncs(
    platform: &mut Platform,
    operators: [OperatorId; 2],
    cards: &mut [BenchCard],
) -> Result<Vec<(OperatorId, Vec<Command>)>, PlatformError> {
    use crate::ids::DeviceId;
    let mut per_operator: Vec<(OperatorId, Vec<Command>)> =
        operators.iter().map(|op| (*op, Vec::new())).collect();
    for (side, (op, commands)) in per_operator.iter_mut().enumerate() {
        let mine: Vec<usize> = (side..cards.len())
            .step_by(2)
            .filter(|i| !cards[*i].log.is_empty())
            .collect();
        let begins = mine
            .iter()
            .map(|i| Command::BeginSync {
                device: DeviceId(*i as u64 + 1),
            })
            .collect();
        let nonces = platform.as_operator(*op, begins)?;
        for (i, nonce) in mine.into_iter().zip(nonces) {
            let Ok(Outcome::SyncNonce(nonce)) = nonce else {
                return Err(PlatformError::Refused(nonce.err().unwrap_or(
                    crate::CommandError::SyncNonceUnknown(DeviceId(i as u64 + 1)),
                )));
            };
            let card = &mut cards[i];
            let (sync, device_key) = bench_attested_sync(card, DeviceId(i as u64 + 1), nonce);
            commands.push(Command::SyncOffline { sync, device_key });
        }
    }
    Ok(per_operator)
}

/// What `card` attests over the center's `nonce`: everything it logged since its last sync,
/// which it then counts as synced.
fn bench_attested_sync(
    card: &mut BenchCard,
    device: crate::ids::DeviceId,
    nonce: crate::offline::messages::Nonce,
) -> (crate::offline::messages::AttestedSync, PublicKey) {
    use crate::certs::Signature;
    use crate::offline::messages::{AttestedSync, EntryRole, SyncAttestation};
    let paid = card.log.iter().filter(|e| e.role == EntryRole::Paid);
    let mut attestation = SyncAttestation {
        device,
        nonce,
        balance: Amount::ZERO,
        counter: card.counter,
        load_seq: 1,
        unload_seq: 0,
        synced_through: card.synced_through,
        next_log_seq: card.next_seq(),
        last_sync_s: 0,
        clock_floor_s: 0,
        payments_since_sync: paid.clone().count() as u32,
        spent_since_sync: paid.map(|e| e.signed.record.amount).sum(),
        blocked: false,
        entries_digest: SyncAttestation::entries_digest(&card.log, &[]),
        signature: Signature([0; 64]),
    };
    attestation.signature = card.key.sign(&attestation.digest());
    let log = std::mem::take(&mut card.log);
    card.synced_through += log.len() as u32;
    let sync = AttestedSync {
        attestation,
        log,
        unloads: Vec::new(),
    };
    (sync, card.key.public_key())
}

/// Why `ecny bench devices` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeviceBenchError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error("over HTTP: {0}")]
    Http(String),
}

/// What `ecny bench devices` measured: cards' syncs through `ecny serve` over loopback HTTP.
pub struct DeviceSyncBenchReport {
    /// Records the cards reported (each payment twice: by its payer and by its payee).
    pub reported: usize,
    /// Payments the center settled from them.
    pub settled: usize,
    pub syncs: usize,
    pub elapsed: Duration,
}

/// Offline records through the live server: `devices` visitor cards (half at each operator)
/// log `records` payments among themselves, then every card syncs over HTTP as its operator's
/// staff relays it (`POST /v1/devices/{d}/sync-nonce`, then `/syncs` with the attestation).
pub fn device_sync_http(
    dir: &Path,
    devices: usize,
    records: usize,
) -> Result<DeviceSyncBenchReport, DeviceBenchError> {
    use crate::ids::DeviceId;
    use crate::offline::messages::{Nonce, Wire};
    let (mut platform, _) = Platform::open(dir)?;
    let operators = [
        platform.create_operator("Jiangnan Commercial Bank")?,
        platform.create_operator("Lakeside Digital Bank")?,
    ];
    for op in operators {
        let funding = vec![
            Command::FundReserves {
                operator: op,
                amount: Amount::from_yuan(100_000_000),
            },
            Command::Issue {
                operator: op,
                amount: Amount::from_yuan(100_000_000),
            },
        ];
        for result in platform.as_central_bank(funding)? {
            result.map_err(PlatformError::Refused)?;
        }
    }
    let mut cards = register_bench_cards(&mut platform, operators, devices)?;
    drop(platform);
    let server = crate::server::Server::start(&crate::server::ServerConfig {
        data: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..crate::server::ServerConfig::default()
    })?;
    let token = |op: OperatorId| {
        std::fs::read_to_string(dir.join("keys").join(format!("{op}.token")))
            .map(|t| t.trim().to_string())
            .map_err(|e| DeviceBenchError::Http(format!("the operator's token: {e}")))
    };
    let tokens = [token(operators[0])?, token(operators[1])?];
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u32;
    let mut random = SplitMix(5);
    let (mut reported, mut settled, mut syncs) = (0, 0, 0);
    let mut elapsed = Duration::ZERO;
    let mut made = 0;
    while made < records {
        made += log_bench_payments(&mut cards, &mut random, records - made, now_s);
        let started = Instant::now();
        for i in 0..cards.len() {
            if cards[i].log.is_empty() {
                continue;
            }
            let device = DeviceId(i as u64 + 1);
            let token = &tokens[i % 2];
            let begun = http_post(
                server.addr(),
                &format!("/v1/devices/{device}/sync-nonce"),
                token,
                "",
            )?;
            let nonce_hex = begun["nonce"].as_str().unwrap_or_default();
            let mut nonce = [0u8; crate::offline::messages::NONCE_BYTES];
            crate::certs::decode_hex(nonce_hex, &mut nonce)
                .map_err(|e| DeviceBenchError::Http(format!("the sync nonce: {e}")))?;
            let (sync, _) = bench_attested_sync(&mut cards[i], device, Nonce(nonce));
            reported += sync.log.len();
            let body = serde_json::json!({ "sync": crate::certs::encode_hex(&sync.encode()) });
            let synced = http_post(
                server.addr(),
                &format!("/v1/devices/{device}/syncs"),
                token,
                &body.to_string(),
            )?;
            settled += synced["settled"].as_u64().unwrap_or(0) as usize;
            syncs += 1;
        }
        elapsed += started.elapsed();
    }
    server.stop()?;
    Ok(DeviceSyncBenchReport {
        reported,
        settled,
        syncs,
        elapsed,
    })
}

/// One POST over its own loopback connection; a refusal fails the run.
fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &str,
) -> Result<serde_json::Value, DeviceBenchError> {
    use std::io::{Read, Write};
    let failed = |e: std::io::Error| DeviceBenchError::Http(format!("{path}: {e}"));
    let mut stream = std::net::TcpStream::connect(addr).map_err(failed)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(failed)?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).map_err(failed)?;
    let (head, answer) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    if !head.starts_with("HTTP/1.1 2") {
        return Err(DeviceBenchError::Http(format!("{path}: {head} {answer}")));
    }
    serde_json::from_str(answer).map_err(|e| DeviceBenchError::Http(format!("{path}: {e}")))
}

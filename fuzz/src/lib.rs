//! What ecny's fuzz targets share: the byte scripts structured inputs are written in, scratch
//! directories, and the seed corpus each target writes from the project's own encoders.
//!
//! A target whose input has structure (a sequence of taps, a log directory) reads it as a
//! [`Script`]: little-endian integers and length-prefixed byte strings, read front to back until
//! the input runs out. Its seeds are written with a [`ScriptWriter`] in the same layout, so a
//! seed is a real example (a tap that pays, a log that recovers) and libFuzzer mutates from there.
//!
//! Seeds: run a target with `ECNY_FUZZ_SEEDS=DIR` and it writes its seeds into `DIR` and exits
//! (`fuzz/seed_corpus.sh` does it for every target).

use std::path::{Path, PathBuf};

/// Where a target writes its seeds when asked to.
pub const SEEDS_ENV: &str = "ECNY_FUZZ_SEEDS";

/// A structured input, read front to back; every read is `None` once the input runs out.
pub struct Script<'a> {
    bytes: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(bytes: &'a [u8]) -> Script<'a> {
        Script { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array().map(u8::from_le_bytes)
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_le_bytes)
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_le_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    /// A byte string: a `u16` length, then that many bytes (or what is left).
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.u16()?).min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    /// A byte string read as UTF-8 text.
    pub fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// Writes what a [`Script`] reads.
#[derive(Default)]
pub struct ScriptWriter {
    pub bytes: Vec<u8>,
}

impl ScriptWriter {
    pub fn new() -> ScriptWriter {
        ScriptWriter::default()
    }

    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn i32(&mut self, value: i32) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.raw(&value.to_le_bytes())
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u16::try_from(bytes.len()).expect("a script's byte string fits a u16 length");
        self.u16(len).raw(bytes)
    }

    /// Bytes as they are, for the end of a script (what [`Script::rest`] reads).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// A temporary directory on tmpfs where there is one, so that fsyncs cost nothing.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let builder = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(Path::new("/dev/shm"));
    builder.unwrap_or_else(|_| tempfile::tempdir().expect("a temporary directory"))
}

/// A directory for the whole life of the fuzzing process (`PREFIX-PID`, on tmpfs where there is
/// one). libFuzzer ends the process without running destructors, so each call first removes
/// what processes that are gone left behind.
pub fn process_dir(prefix: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let stale = |name: &str| {
        let pid = name.strip_prefix(prefix)?.strip_prefix('-')?;
        let alive = Path::new("/proc").join(pid).exists();
        (pid.bytes().all(|b| b.is_ascii_digit()) && !alive).then_some(())
    };
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if stale(&entry.file_name().to_string_lossy()).is_some() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the process's directory");
    dir
}

/// When `ECNY_FUZZ_SEEDS` names a directory, writes the target's seeds there and ends the
/// process; otherwise does nothing. Called from a target's `init`.
pub fn write_seeds_if_asked(seeds: impl FnOnce() -> Vec<(&'static str, Vec<u8>)>) {
    let Some(dir) = std::env::var_os(SEEDS_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the seed directory");
    let seeds = seeds();
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    }
    eprintln!("wrote {} seeds to {}", seeds.len(), dir.display());
    std::process::exit(0);
}

pub mod offline {
    //! A small dual-offline world: a central bank, two operators and three loaded hardware
    //! wallets of different forms, made once per process (personalization and loads cost SM2).

    use std::sync::OnceLock;

    use ecny::certs::device::CompactCertificate;
    use ecny::certs::KeyPair;
    use ecny::ids::{DeviceId, OperatorId};
    use ecny::offline::apdu::ResponseApdu;
    use ecny::offline::applet::{cla, ins, tag, Applet};
    use ecny::offline::issuer::OperatorIssuer;
    use ecny::offline::profiles::{Profile, WalletForm};
    use ecny::offline::protocol::select_apdu;
    use ecny::Amount;

    /// 2023-11-14 22:13:20 UTC, the cards' issuance time.
    pub const NOW_S: u32 = 1_700_000_000;
    const YEAR_S: u32 = 365 * 86_400;
    pub const CARDS: usize = 3;

    pub struct World {
        pub central_bank: KeyPair,
        pub issuers: Vec<OperatorIssuer>,
        /// Each card's issuing operator, as an index into `issuers`.
        pub operator_of: [usize; CARDS],
        pub device_keys: Vec<KeyPair>,
        /// A phone eSE with 300 yuan, a contactless card with 50, a student card with 20.
        pub cards: Vec<Applet>,
        /// Each card's device and operator certificates, as GET DATA reads them.
        pub chains: Vec<(CompactCertificate, CompactCertificate)>,
    }

    pub fn device(card: usize) -> DeviceId {
        DeviceId(card as u64 + 1)
    }

    pub fn world() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(|| {
            let central_bank = KeyPair::from_seed(b"fuzz central bank");
            let issuers: Vec<OperatorIssuer> = (1u16..=2)
                .map(|id| {
                    let key = KeyPair::from_seed(format!("fuzz operator {id}").as_bytes());
                    let validity = (NOW_S - YEAR_S, NOW_S + 10 * YEAR_S);
                    OperatorIssuer::certify(
                        &central_bank,
                        OperatorId(id),
                        key,
                        u64::from(id),
                        validity,
                    )
                })
                .collect();
            let student = Profile::student_card(Amount::from_yuan(100)).expect("a valid cap");
            let plan = [
                (0, Profile::new(WalletForm::PhoneEse), 300),
                (1, Profile::new(WalletForm::ContactlessCard), 50),
                (0, student, 20),
            ];
            let device_keys: Vec<KeyPair> = (0..CARDS)
                .map(|card| KeyPair::from_seed(format!("fuzz device {card}").as_bytes()))
                .collect();
            let cards: Vec<Applet> = plan
                .iter()
                .enumerate()
                .map(|(card, (operator, profile, yuan))| {
                    let issuer = &issuers[*operator];
                    let key = device_keys[card].clone();
                    let mut applet = issuer
                        .issue(profile, device(card), key, 100 + card as u64, NOW_S)
                        .expect("a fresh chain verifies");
                    issuer
                        .load_card(&mut applet, (device(card), 1, Amount::from_yuan(*yuan)))
                        .expect("within caps");
                    applet
                })
                .collect();
            let chains = cards
                .iter()
                .map(|card| {
                    (
                        read_certificate(card, tag::DEVICE_CERT),
                        read_certificate(card, tag::OPERATOR_CERT),
                    )
                })
                .collect();
            World {
                central_bank,
                issuers,
                operator_of: [0, 1, 0],
                device_keys,
                cards,
                chains,
            }
        })
    }

    /// A certificate as a phone reads it from the card: SELECT, then GET DATA.
    fn read_certificate(card: &Applet, which: u16) -> CompactCertificate {
        let mut probe = card.clone();
        probe.power_up();
        let selected = ResponseApdu::parse(&probe.process(&select_apdu().encode()));
        assert!(selected.is_some_and(|answer| answer.sw.is_success()));
        let [p1, p2] = which.to_be_bytes();
        let answer = probe.process(&[cla::PROPRIETARY, ins::GET_DATA, p1, p2, 0x00]);
        let response = ResponseApdu::parse(&answer).expect("a status word");
        CompactCertificate::decode(&response.data).expect("the card's own certificate decodes")
    }
}

pub mod ledger {
    //! A small registration center built from real log entries: the central bank, an operator,
    //! two wallets, a bank account and an exchange. Deterministic, for seeds.

    use ecny::certs::KeyPair;
    use ecny::command::{Command, CommandResult, Origin, Outcome, Submission};
    use ecny::ids::{IdempotencyKey, OperatorId};
    use ecny::state_machine::StateMachine;
    use ecny::Amount;

    /// 2026-11-23 00:00 UTC.
    pub const ENTRY_TIME_MS: u64 = 1_795_392_000_000;

    /// The log entries that build the state, in order, and the state they build.
    pub fn small_state() -> (Vec<Vec<u8>>, StateMachine) {
        let (bank, operator) = (
            KeyPair::from_seed(b"fuzz central bank"),
            KeyPair::from_seed(b"fuzz operator 1"),
        );
        let op = OperatorId(1);
        let batches = [
            (
                Origin::CentralBank,
                &bank,
                vec![
                    Command::Genesis {
                        central_bank_key: bank.public_key(),
                    },
                    Command::CreateOperator {
                        name: "Jiangnan Bank".into(),
                        public_key: operator.public_key(),
                    },
                    Command::FundReserves {
                        operator: op,
                        amount: Amount::from_yuan(1_000),
                    },
                    Command::Issue {
                        operator: op,
                        amount: Amount::from_yuan(500),
                    },
                ],
            ),
            (
                Origin::Operator(op),
                &operator,
                vec![
                    Command::OpenWallet {
                        operator: op,
                        phone: 13_800_000_001.into(),
                        public_key: operator.public_key(),
                    },
                    Command::OpenWallet {
                        operator: op,
                        phone: 13_800_000_002.into(),
                        public_key: operator.public_key(),
                    },
                    Command::OpenDepositAccount { operator: op },
                ],
            ),
        ];
        let mut state = StateMachine::default();
        let mut entries = Vec::new();
        let mut account = None;
        for (index, (origin, signer, commands)) in batches.into_iter().enumerate() {
            let (entry, results) = apply(&mut state, origin, signer, &commands, index);
            entries.push(entry);
            account = results.into_iter().find_map(|result| match result {
                Ok(Outcome::Account(account)) => Some(account),
                _ => None,
            });
        }
        let account = account.expect("the operator opened a deposit account");
        let wallet = ecny::ids::WalletId(1);
        let funding = [
            Command::CashDeposit {
                account,
                amount: Amount::from_yuan(100),
            },
            // The wallet's holder (whose key the seed's wallets share with their operator) signs
            // the binding and the exchange of its own deposits: the center books neither unsigned.
            Command::BindBankAccount {
                wallet,
                account,
                auth: None,
            }
            .sign(
                &operator,
                &state.signing_context(op),
                ENTRY_TIME_MS + 2_000 + ecny::signing::SIGNATURE_WINDOW_MS_CLIENT,
            ),
            Command::Exchange {
                wallet,
                amount: Amount::from_yuan(100),
                key: IdempotencyKey(1),
                auth: None,
            }
            .sign(
                &operator,
                &state.signing_context(op),
                ENTRY_TIME_MS + 2_000 + ecny::signing::SIGNATURE_WINDOW_MS_CLIENT,
            ),
        ];
        let origin = Origin::Operator(op);
        entries.push(apply(&mut state, origin, &operator, &funding, 2).0);
        (entries, state)
    }

    fn apply(
        state: &mut StateMachine,
        origin: Origin,
        signer: &KeyPair,
        commands: &[Command],
        index: usize,
    ) -> (Vec<u8>, Vec<CommandResult>) {
        let validated = state
            .validate(Submission::new(origin, commands, signer))
            .expect("a signed batch validates");
        let mut entry = Vec::new();
        validated
            .submission()
            .encode_entry(ENTRY_TIME_MS + index as u64 * 1_000, &mut entry);
        let mut results = Vec::new();
        state.apply_entry(&entry, &mut results).expect("applies");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        (entry, results)
    }
}

//! The analysis index: what the analysts' commands need, kept beside the data in
//! `DIR/analytics/index.bin`, so that explaining an alert or writing one wallet's statement reads
//! a few kilobytes instead of replaying the whole log. Alerts are a pure function of the stream
//! and statements of one account's history, so both can be derived once per log and kept.
//!
//! # Freshness
//!
//! The index is stamped with the log's [`LogPosition`]: the name, length and modification time
//! of every log segment and snapshot file. The log only grows, so a position that differs in
//! anything means entries the index has not seen: the index is rebuilt from one replay. A
//! missing file, another format version or a damaged file are rebuilt the same way.
//!
//! # Format (all integers little-endian, as `codec` writes them)
//!
//! | part | contents |
//! |---|---|
//! | header | magic `ECNYIDX1`, the log position (file count u32, then per file: name, length u64, modification time u64 ns), the last ledger time u64 ms, the number of wallets u32, of entries u64 |
//! | alerts | the alerts the rules raised, before any analyst's work, as `alerts_csv` writes them: length u64, UTF-8 |
//! | merchants | count u32, then per merchant: id u32, operator u16, wallet u32, MCC u16, region u32 |
//! | wallets | per wallet in id order: operator u16, balance now i64 fen, first entry u64, entry count u32 |
//! | entries | [`ENTRY_BYTES`] each, grouped by wallet, oldest first: event u64, time u64 ms, amount i64 fen, credit u8, flow u8, merchant u32, channel u8, counterparty wallet u32 (0: none) |
//!
//! Entries have a fixed size, so a statement reads only its wallet's run of them.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use thiserror::Error;

use crate::amount::Amount;
use crate::analytics::alerts::{alerts_csv, read_alerts_csv, Alert};
use crate::analytics::statement::{check_days, Statement, StatementEntry, StatementError};
use crate::analytics::{classify, Directory, Flow, MerchantProfile};
use crate::channels::acquiring::PaymentChannel;
use crate::channels::emvco::Mcc;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{EventId, MerchantId, OperatorId, WalletId};
use crate::ledger::TransferKind;
use crate::state_machine::StateMachine;
use crate::time::china_day;

const INDEX_MAGIC: &[u8; 8] = b"ECNYIDX1";
/// Bytes of one statement entry in the file.
pub const ENTRY_BYTES: usize = 8 + 8 + 8 + 1 + 1 + 4 + 1 + 4;
const WALLET_BYTES: usize = 2 + 8 + 8 + 4;
/// Where the index lives in a data directory.
pub const INDEX_FILE: &str = "analytics/index.bin";

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({source}); remove it and it is rebuilt from the log")]
    Damaged { path: PathBuf, source: DecodeError },
    #[error(transparent)]
    Statement(#[from] StatementError),
}

impl IndexError {
    pub fn code(&self) -> &'static str {
        match self {
            IndexError::Io { .. } => "ANALYSIS_INDEX_IO",
            IndexError::Damaged { .. } => "ANALYSIS_INDEX_DAMAGED",
            IndexError::Statement(error) => error.code(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the log stands: every segment and snapshot file, with its length and when it last
/// changed. Cheap to take (file metadata only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPosition(Vec<(String, u64, u64)>);

impl LogPosition {
    pub fn of(data: &Path) -> Result<LogPosition, IndexError> {
        let mut files = Vec::new();
        for dir in ["log", "snapshots"] {
            let dir = data.join(dir);
            let Ok(listing) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in listing {
                let entry = entry.map_err(io(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "LOCK" {
                    continue;
                }
                let meta = entry.metadata().map_err(io(&entry.path()))?;
                let changed = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as u64);
                files.push((name, meta.len(), changed));
            }
        }
        files.sort();
        Ok(LogPosition(files))
    }

    fn encode(&self, out: &mut Writer) {
        out.u32(self.0.len() as u32);
        for (name, len, changed) in &self.0 {
            out.str(name).u64(*len).u64(*changed);
        }
    }

    fn decode(input: &mut Reader<'_>) -> Result<LogPosition, DecodeError> {
        let count = input.u32("position files")?;
        let files = (0..count)
            .map(|_| {
                Ok((
                    input.string("file name")?,
                    input.u64("file length")?,
                    input.u64("file time")?,
                ))
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(LogPosition(files))
    }
}

/// One wallet's place in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WalletRow {
    operator: OperatorId,
    balance: Amount,
    first: u64,
    count: u32,
}

/// What the analysts' commands read, derived from one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisIndex {
    pub position: LogPosition,
    pub last_timestamp_ms: u64,
    /// The alerts as the rules raised them, before any analyst worked them.
    pub alerts: Vec<Alert>,
    merchants: Vec<MerchantProfile>,
    wallets: Vec<WalletRow>,
    entries: Vec<StatementEntry>,
}

impl AnalysisIndex {
    /// Builds the index from a state, the directory and the alerts derived from it.
    pub fn build(
        state: &StateMachine,
        directory: &Directory,
        alerts: Vec<Alert>,
        position: LogPosition,
    ) -> AnalysisIndex {
        let ledger = state.ledger();
        let mut wallets = Vec::with_capacity(directory.wallet_count());
        let mut entries = Vec::new();
        for index in 0..directory.wallet_count() {
            let wallet = StateMachine::wallet_id_at(index);
            let account = directory.account_of(wallet).expect("listed wallet");
            let first = entries.len() as u64;
            let history = ledger.history(account).expect("a wallet's account exists");
            for (event, transfer) in history {
                if matches!(
                    transfer.kind,
                    TransferKind::PendingHold | TransferKind::PendingVoid
                ) {
                    continue;
                }
                entries.push(entry_of(event, transfer, account, directory));
            }
            entries[first as usize..].reverse();
            wallets.push(WalletRow {
                operator: directory.wallet_operator(wallet).expect("listed wallet"),
                balance: ledger.account(account).expect("exists").balance,
                first,
                count: (entries.len() as u64 - first) as u32,
            });
        }
        AnalysisIndex {
            position,
            last_timestamp_ms: state.last_timestamp_ms(),
            alerts,
            merchants: directory.merchants().to_vec(),
            wallets,
            entries,
        }
    }

    /// A directory holding what statements need of it: the merchants.
    pub fn directory(&self) -> Directory {
        Directory::of_merchants(self.merchants.clone())
    }

    /// The statement of `wallet` over a range of China-time days, from the index alone.
    pub fn statement(
        &self,
        wallet: WalletId,
        days: (u32, u32),
    ) -> Result<Statement, StatementError> {
        let row = self.row(wallet)?;
        let first = row.first as usize;
        statement_of(
            wallet,
            row,
            &self.entries[first..first + row.count as usize],
            days,
        )
    }

    fn row(&self, wallet: WalletId) -> Result<WalletRow, StatementError> {
        (wallet.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.wallets.get(i))
            .copied()
            .ok_or(StatementError::UnknownWallet(wallet))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::with_capacity(1024 + self.entries.len() * ENTRY_BYTES);
        out.raw(INDEX_MAGIC);
        self.position.encode(&mut out);
        out.u64(self.last_timestamp_ms)
            .u32(self.wallets.len() as u32)
            .u64(self.entries.len() as u64);
        let alerts = alerts_csv(&self.alerts);
        out.u64(alerts.len() as u64).raw(alerts.as_bytes());
        out.u32(self.merchants.len() as u32);
        for m in &self.merchants {
            out.u32(m.id.0)
                .u16(m.operator.0)
                .u32(m.wallet.0)
                .u16(m.mcc.code())
                .u32(m.region);
        }
        for w in &self.wallets {
            out.u16(w.operator.0)
                .i64(w.balance.fen())
                .u64(w.first)
                .u32(w.count);
        }
        for entry in &self.entries {
            encode_entry(entry, &mut out);
        }
        out.bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<AnalysisIndex, DecodeError> {
        let mut input = Reader::new(bytes);
        let (head, wallet_count, entry_count) = decode_head(&mut input)?;
        let wallets = (0..wallet_count)
            .map(|_| decode_wallet(&mut input))
            .collect::<Result<_, _>>()?;
        let entries = (0..entry_count)
            .map(|_| decode_entry(&mut input))
            .collect::<Result<_, _>>()?;
        if !input.is_empty() {
            return Err(DecodeError {
                what: "bytes after the index",
                offset: input.offset(),
            });
        }
        Ok(AnalysisIndex {
            wallets,
            entries,
            ..head
        })
    }
}

/// The header, alerts and merchants; with the counts of wallets and entries that follow.
fn decode_head(input: &mut Reader<'_>) -> Result<(AnalysisIndex, u32, u64), DecodeError> {
    if input.array::<8>("index magic")? != *INDEX_MAGIC {
        return Err(DecodeError {
            what: "index magic",
            offset: 0,
        });
    }
    let position = LogPosition::decode(input)?;
    let last_timestamp_ms = input.u64("last time")?;
    let wallet_count = input.u32("wallet count")?;
    let entry_count = input.u64("entry count")?;
    let alerts_len = input.u64("alerts length")?;
    let alerts_len = usize::try_from(alerts_len).map_err(|_| DecodeError {
        what: "alerts length",
        offset: input.offset(),
    })?;
    let alerts = std::str::from_utf8(input.take(alerts_len, "alerts")?)
        .ok()
        .and_then(|text| read_alerts_csv(text).ok())
        .ok_or(DecodeError {
            what: "alerts",
            offset: input.offset(),
        })?;
    let merchant_count = input.u32("merchant count")?;
    let merchants = (0..merchant_count)
        .map(|_| {
            Ok(MerchantProfile {
                id: MerchantId(input.u32("merchant")?),
                operator: OperatorId(input.u16("merchant operator")?),
                wallet: WalletId(input.u32("merchant wallet")?),
                mcc: Mcc::new(input.u16("mcc")?).ok_or(DecodeError {
                    what: "mcc",
                    offset: input.offset(),
                })?,
                region: input.u32("region")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    let head = AnalysisIndex {
        position,
        last_timestamp_ms,
        alerts,
        merchants,
        wallets: Vec::new(),
        entries: Vec::new(),
    };
    Ok((head, wallet_count, entry_count))
}

fn decode_wallet(input: &mut Reader<'_>) -> Result<WalletRow, DecodeError> {
    Ok(WalletRow {
        operator: OperatorId(input.u16("wallet operator")?),
        balance: Amount::from_fen(input.i64("wallet balance")?),
        first: input.u64("first entry")?,
        count: input.u32("entry count")?,
    })
}

fn entry_of(
    event: EventId,
    transfer: &crate::ledger::Transfer,
    account: crate::ids::AccountId,
    directory: &Directory,
) -> StatementEntry {
    let credit = transfer.credit == account;
    let movement = classify(event, transfer, directory);
    StatementEntry {
        event,
        at_ms: transfer.timestamp_ms,
        amount: transfer.amount,
        credit,
        flow: movement.flow,
        counterparty: if credit {
            movement.payer
        } else {
            movement.payee
        },
    }
}

/// Flows in the order of their tag in the file.
const FLOW_TAGS: [Flow; 13] = [
    Flow::PersonToPerson,
    Flow::Refund,
    Flow::OfflineSettlement,
    Flow::Exchange,
    Flow::DepositBack,
    Flow::DeviceLoad,
    Flow::DeviceUnload,
    Flow::OfflineReversal,
    Flow::OfflineLossCover,
    Flow::Scheduled,
    Flow::ContractRelease,
    Flow::RedPacket,
    Flow::Other,
];
/// The tag of `Flow::Merchant`, whose merchant and channel follow.
const MERCHANT_FLOW_TAG: u8 = 100;

fn encode_entry(entry: &StatementEntry, out: &mut Writer) {
    let (tag, merchant, channel) = match entry.flow {
        Flow::Merchant { merchant, channel } => (MERCHANT_FLOW_TAG, merchant.0, channel as u8),
        flow => {
            let tag = FLOW_TAGS
                .iter()
                .position(|f| *f == flow)
                .expect("every flow has a tag");
            (tag as u8, 0, 0)
        }
    };
    out.u64(entry.event.0)
        .u64(entry.at_ms)
        .i64(entry.amount.fen())
        .u8(u8::from(entry.credit))
        .u8(tag)
        .u32(merchant)
        .u8(channel)
        .u32(entry.counterparty.map_or(0, |w| w.0));
}

fn decode_entry(input: &mut Reader<'_>) -> Result<StatementEntry, DecodeError> {
    let event = EventId(input.u64("entry event")?);
    let at_ms = input.u64("entry time")?;
    let amount = Amount::from_fen(input.i64("entry amount")?);
    let credit = input.bool("entry credit")?;
    let (tag, merchant, channel) = (
        input.u8("entry flow")?,
        input.u32("entry merchant")?,
        input.u8("entry channel")?,
    );
    let bad = |what| DecodeError {
        what,
        offset: input.offset(),
    };
    let flow = if tag == MERCHANT_FLOW_TAG {
        Flow::Merchant {
            merchant: MerchantId(merchant),
            channel: PaymentChannel::from_u8(channel).ok_or_else(|| bad("entry channel"))?,
        }
    } else {
        *FLOW_TAGS
            .get(tag as usize)
            .ok_or_else(|| bad("entry flow"))?
    };
    let counterparty = input.u32("entry counterparty")?;
    Ok(StatementEntry {
        event,
        at_ms,
        amount,
        credit,
        flow,
        counterparty: (counterparty != 0).then_some(WalletId(counterparty)),
    })
}

/// A statement from a wallet's entries (oldest first) and its balance now: walk back from now,
/// undoing what came after the range; what is in it is the statement.
fn statement_of(
    wallet: WalletId,
    row: WalletRow,
    entries: &[StatementEntry],
    (from_day, to_day): (u32, u32),
) -> Result<Statement, StatementError> {
    check_days(from_day, to_day)?;
    let (mut opening, mut closing) = (row.balance.fen(), row.balance.fen());
    let mut kept = Vec::new();
    for entry in entries.iter().rev() {
        let day = china_day(entry.at_ms);
        if day < from_day {
            break;
        }
        let signed = if entry.credit {
            entry.amount.fen()
        } else {
            -entry.amount.fen()
        };
        opening -= signed;
        if day > to_day {
            closing -= signed;
        } else {
            kept.push(*entry);
        }
    }
    kept.reverse();
    Ok(Statement {
        wallet,
        operator: row.operator,
        from_day,
        to_day,
        opening: Amount::from_fen(opening),
        closing: Amount::from_fen(closing),
        entries: kept,
    })
}

/// Reads the index's header and one wallet's entries, not the rest: what one statement needs.
pub struct IndexFile {
    path: PathBuf,
    head: AnalysisIndex,
    wallets_at: u64,
    entries_at: u64,
    wallet_count: u32,
}

impl IndexFile {
    /// Opens the index of a data directory if it exists and is for `position`.
    pub fn open_fresh(
        data: &Path,
        position: &LogPosition,
    ) -> Result<Option<IndexFile>, IndexError> {
        let path = data.join(INDEX_FILE);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&path)(error)),
        };
        // The head is small next to the entries: read in growing chunks until it decodes.
        let mut head_bytes = Vec::new();
        let mut chunk = 64 * 1024;
        loop {
            head_bytes.clear();
            file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
            (&mut file)
                .take(chunk)
                .read_to_end(&mut head_bytes)
                .map_err(io(&path))?;
            let mut input = Reader::new(&head_bytes);
            match decode_head(&mut input) {
                Ok((head, wallet_count, _)) => {
                    if head.position != *position {
                        return Ok(None);
                    }
                    let wallets_at = input.offset() as u64;
                    return Ok(Some(IndexFile {
                        path,
                        head,
                        wallets_at,
                        entries_at: wallets_at + u64::from(wallet_count) * WALLET_BYTES as u64,
                        wallet_count,
                    }));
                }
                Err(_) if head_bytes.len() as u64 == chunk => chunk *= 4,
                // Another version or a damaged file: rebuilt like a missing one.
                Err(_) => return Ok(None),
            }
        }
    }

    pub fn alerts(&self) -> &[Alert] {
        &self.head.alerts
    }

    pub fn last_timestamp_ms(&self) -> u64 {
        self.head.last_timestamp_ms
    }

    pub fn directory(&self) -> Directory {
        self.head.directory()
    }

    /// One wallet's statement, reading only its row and its entries.
    pub fn statement(&self, wallet: WalletId, days: (u32, u32)) -> Result<Statement, IndexError> {
        check_days(days.0, days.1)?;
        let index = (wallet.0 as u64)
            .checked_sub(1)
            .filter(|i| *i < u64::from(self.wallet_count))
            .ok_or(StatementError::UnknownWallet(wallet))?;
        let mut file = File::open(&self.path).map_err(io(&self.path))?;
        let mut read_at = |at: u64, len: usize| -> Result<Vec<u8>, IndexError> {
            let mut bytes = vec![0u8; len];
            file.seek(SeekFrom::Start(at)).map_err(io(&self.path))?;
            file.read_exact(&mut bytes).map_err(io(&self.path))?;
            Ok(bytes)
        };
        let damaged = |source| IndexError::Damaged {
            path: self.path.clone(),
            source,
        };
        let row_bytes = read_at(self.wallets_at + index * WALLET_BYTES as u64, WALLET_BYTES)?;
        let row = decode_wallet(&mut Reader::new(&row_bytes)).map_err(damaged)?;
        let entry_bytes = read_at(
            self.entries_at + row.first * ENTRY_BYTES as u64,
            row.count as usize * ENTRY_BYTES,
        )?;
        let mut input = Reader::new(&entry_bytes);
        let entries = (0..row.count)
            .map(|_| decode_entry(&mut input))
            .collect::<Result<Vec<_>, _>>()
            .map_err(damaged)?;
        Ok(statement_of(wallet, row, &entries, days)?)
    }
}

/// Writes the index beside the data, replacing the old one whole (written aside, then renamed).
pub fn write_index(data: &Path, index: &AnalysisIndex) -> Result<(), IndexError> {
    let path = data.join(INDEX_FILE);
    let dir = path.parent().expect("the index has a directory");
    fs::create_dir_all(dir).map_err(io(dir))?;
    let staged = path.with_extension("bin.new");
    fs::write(&staged, index.encode()).map_err(io(&staged))?;
    fs::rename(&staged, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::rules::RuleConfig;
    use crate::analytics::statement::statement;
    use crate::analytics::AnalysisCenter;
    use crate::city::{simulate, SimulationConfig};
    use crate::node::Node;
    use crate::time::parse_day;

    /// A small simulated city, its state, and its index written beside it.
    fn city() -> (tempfile::TempDir, StateMachine, AnalysisIndex) {
        let dir = tempfile::tempdir().unwrap();
        let config = SimulationConfig {
            wallets: 200,
            merchants: 12,
            days: 3,
            seed: 5,
        };
        simulate(dir.path(), &config).unwrap();
        let node = Node::open(dir.path()).unwrap().0;
        let mut center = AnalysisCenter::new(RuleConfig::default());
        center.follow(node.state());
        let position = LogPosition::of(dir.path()).unwrap();
        let index = AnalysisIndex::build(
            node.state(),
            center.directory(),
            center.alerts().all().to_vec(),
            position,
        );
        write_index(dir.path(), &index).unwrap();
        let state = node.state().clone();
        (dir, state, index)
    }

    #[test]
    fn statements_from_the_index_are_the_statements_from_the_ledger() {
        let (dir, state, index) = city();
        let directory = Directory::from_state(&state);
        let first = parse_day("2024-03-01").unwrap();
        let ranges = [
            (first, first + 2),
            (first + 1, first + 1),
            (first + 2, first + 40),
            (first - 5, first - 1),
        ];
        let position = LogPosition::of(dir.path()).unwrap();
        let file = IndexFile::open_fresh(dir.path(), &position)
            .unwrap()
            .expect("the index is fresh");
        let mut entries = 0;
        for i in 0..directory.wallet_count() {
            let wallet = StateMachine::wallet_id_at(i);
            for days in ranges {
                let expected = statement(&state, &directory, wallet, days).unwrap();
                entries += expected.entries.len();
                assert_eq!(index.statement(wallet, days).unwrap(), expected);
                assert_eq!(file.statement(wallet, days).unwrap(), expected);
            }
        }
        assert!(
            entries > 1_000,
            "the city's statements hold entries: {entries}"
        );
        assert_eq!(file.alerts(), index.alerts.as_slice());
        assert!(!index.alerts.is_empty());
        assert_eq!(file.last_timestamp_ms(), state.last_timestamp_ms());
        let unknown = file
            .statement(WalletId(100_000), (first, first))
            .unwrap_err();
        assert_eq!(unknown.code(), "UNKNOWN_WALLET");
        let reversed = file.statement(WalletId(1), (first + 1, first)).unwrap_err();
        assert_eq!(reversed.code(), "STATEMENT_DAYS_REVERSED");
    }

    #[test]
    fn the_index_round_trips_and_is_stale_once_the_log_moves_or_it_is_damaged() {
        let (dir, _, index) = city();
        assert_eq!(AnalysisIndex::decode(&index.encode()).unwrap(), index);
        let position = LogPosition::of(dir.path()).unwrap();
        assert!(IndexFile::open_fresh(dir.path(), &position)
            .unwrap()
            .is_some());
        // The log grows: the index no longer speaks for it.
        let segment = fs::read_dir(dir.path().join("log"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "ecnylog"))
            .unwrap();
        let mut grown = fs::OpenOptions::new().append(true).open(&segment).unwrap();
        std::io::Write::write_all(&mut grown, b"more").unwrap();
        let moved = LogPosition::of(dir.path()).unwrap();
        assert_ne!(moved, position);
        assert!(IndexFile::open_fresh(dir.path(), &moved).unwrap().is_none());
        // A damaged or foreign file is rebuilt, not trusted.
        let path = dir.path().join(INDEX_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(IndexFile::open_fresh(dir.path(), &position)
            .unwrap()
            .is_none());
        assert!(AnalysisIndex::decode(&bytes).is_err());
        fs::remove_file(&path).unwrap();
        assert!(IndexFile::open_fresh(dir.path(), &position)
            .unwrap()
            .is_none());
    }
}

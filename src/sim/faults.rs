//! The faults the simulation injects: what the network does to each request, how the process
//! dies around a group commit, and the damage a crash leaves on disk.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::city::Random;

/// Every fault and hostile act the simulation counts, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The process died after the group's log write was durable, before anyone heard back.
    CrashBeforeAnswer,
    /// The process died in the middle of a group commit: the unsynced tail is cut at a random
    /// byte (a torn frame).
    TornTail,
    /// The process died before the group's write reached the disk: all of it is gone.
    LostWrite,
    /// A torn tail the file system padded with zeros (the size grew, the data never came).
    ZeroedTail,
    /// A kill and restart with nothing in flight.
    RestartAtRest,
    /// A flipped byte in the newest snapshot, found at the next start.
    CorruptSnapshot,
    /// A request lost on its way: the client sends it again later under the same key.
    RequestDropped,
    /// The center answered, the client never heard it: it sends the request again.
    AnswerLost,
    /// The network delivered a request twice, the copy maybe much later.
    RequestDuplicated,
    /// A request held back for a few steps, then delivered among newer ones.
    RequestDelayed,
    /// A group whose requests arrived in another order than they were sent.
    Reordered,
    /// A holder's payment signed by someone else's key.
    WrongSigner,
    /// An operator submitting a payment from a wallet another operator runs.
    WrongOperator,
    /// A payer's offline card cut off mid-tap (power or link), then met again.
    SeTearing,
    /// A copy of a payer's card paying a second time with the same counter.
    ClonedSe,
    /// A merchant terminal whose clock runs ahead of the center's.
    TerminalClockAhead,
    /// The process died after the center booked a card's sync, before the card heard back.
    SyncCrash,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CrashBeforeAnswer => "crash after the log write, before the answer",
            FaultKind::TornTail => "crash mid group commit, torn tail",
            FaultKind::LostWrite => "crash before the write, lost write",
            FaultKind::ZeroedTail => "crash mid group commit, zeroed tail",
            FaultKind::RestartAtRest => "kill and restart at rest",
            FaultKind::CorruptSnapshot => "corrupted newest snapshot",
            FaultKind::RequestDropped => "request dropped",
            FaultKind::AnswerLost => "answer lost",
            FaultKind::RequestDuplicated => "request duplicated",
            FaultKind::RequestDelayed => "request delayed",
            FaultKind::Reordered => "group reordered",
            FaultKind::WrongSigner => "payment signed by another holder",
            FaultKind::WrongOperator => "payment submitted by another operator",
            FaultKind::SeTearing => "secure element torn mid-tap",
            FaultKind::ClonedSe => "cloned secure element",
            FaultKind::TerminalClockAhead => "terminal clock ahead",
            FaultKind::SyncCrash => "crash after a sync was booked, before the card heard",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the network does to one request the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Deliver,
    Drop,
    /// Delivered this many steps later.
    Delay(u32),
    /// Delivered now, and a copy this many steps later (0: now as well).
    Duplicate(u32),
    AnswerLost,
}

pub(super) fn fate(random: &mut Random) -> Fate {
    match random.below(100) {
        0..=73 => Fate::Deliver,
        74..=79 => Fate::Drop,
        80..=85 => Fate::Delay(1 + random.below(3) as u32),
        86..=92 => Fate::Duplicate(random.below(4) as u32),
        _ => Fate::AnswerLost,
    }
}

/// How the process dies around one group commit, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Crash {
    BeforeAnswer,
    TornTail,
    LostWrite,
    ZeroedTail,
}

impl Crash {
    pub(super) fn kind(self) -> FaultKind {
        match self {
            Crash::BeforeAnswer => FaultKind::CrashBeforeAnswer,
            Crash::TornTail => FaultKind::TornTail,
            Crash::LostWrite => FaultKind::LostWrite,
            Crash::ZeroedTail => FaultKind::ZeroedTail,
        }
    }
}

pub(super) fn crash(random: &mut Random) -> Option<Crash> {
    if !random.chance(8) {
        return None;
    }
    Some(match random.below(4) {
        0 => Crash::BeforeAnswer,
        1 => Crash::TornTail,
        2 => Crash::LostWrite,
        _ => Crash::ZeroedTail,
    })
}

/// Cuts `segment` to `length` bytes: what survives of writes the disk never made durable.
pub(super) fn cut(segment: &Path, length: u64) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(segment)?
        .set_len(length)
}

/// Cuts `segment` to `length` and pads it with `zeros` zero bytes, as a file system does
/// that extended the file before a crash but never wrote its data.
pub(super) fn cut_and_zero(segment: &Path, length: u64, zeros: u64) -> std::io::Result<()> {
    cut(segment, length)?;
    let mut file = OpenOptions::new().write(true).open(segment)?;
    file.seek(SeekFrom::Start(length))?;
    file.write_all(&vec![0u8; zeros as usize])
}

/// Flips one bit of the byte at `at` (taken modulo the file's length) in `file`.
pub(super) fn flip_byte(file: &Path, at: u64) -> std::io::Result<()> {
    let mut bytes = fs::read(file)?;
    if bytes.is_empty() {
        return Ok(());
    }
    let at = (at % bytes.len() as u64) as usize;
    bytes[at] ^= 0x10;
    fs::write(file, bytes)
}

//! Append-only, checksummed command log with group commit.
//!
//! # Layout
//!
//! The log is a directory of segment files named `log-{first_seq:020}.ecnylog`, where
//! `first_seq` is the sequence number of the segment's first entry. Sequence numbers start
//! at 1 and are contiguous across segments. The directory also holds a `LOCK` file that an
//! open log keeps exclusively locked.
//!
//! # Frame format
//!
//! A segment has no file header; it is a plain sequence of frames. All integers are
//! little-endian; both checksums are CRC-32 (IEEE) as computed by `crc32fast`.
//!
//! | offset | bytes         | field                                          |
//! |--------|---------------|------------------------------------------------|
//! | 0      | 4             | magic `b"ECNF"`                                |
//! | 4      | 4             | payload length in bytes (u32)                  |
//! | 8      | 8             | sequence number (u64)                          |
//! | 16     | 4             | CRC-32 of the payload (u32)                    |
//! | 20     | 4             | CRC-32 of header bytes 0..20 (u32)             |
//! | 24     | payload length| payload                                        |
//!
//! The header checksum means a damaged length or sequence field is detected as damage
//! instead of being trusted and misreading the rest of the file.
//!
//! # Recovery
//!
//! Opening scans every segment in order. At the first bad frame (short header, bad magic,
//! bad header checksum, oversized length, payload past end of file, payload checksum
//! mismatch, or unexpected sequence number) at offset X:
//!
//! * in the last segment, if no plausible frame header with a sequence number above the
//!   last good one exists after X, the bytes from X on are a torn tail left by a crash
//!   during the final write: the file is truncated at X and the cut is reported;
//! * otherwise the log is corrupt and opening fails without modifying any file.
//!
//! A log that ends (after such a cut) before the entry the caller's snapshot reaches is refused
//! as missing entries, and then nothing is cut: the bad bytes were durable entries.
//!
//! `CommandLog::read` applies the same rules without the lock and without writing: a torn tail
//! is where reading stops (it may be a write the owner has not finished), reported, not cut.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::storage::files::{ensure_directory, io_error, sync_directory, StorageError};

/// Largest payload one entry may carry.
pub const ENTRY_PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Size of the fixed frame header that precedes every payload.
pub const FRAME_HEADER_BYTES: usize = 24;

const FRAME_MAGIC: [u8; 4] = *b"ECNF";
/// The header checksum covers everything in the header before itself.
const HEADER_CHECKSUMMED_BYTES: usize = 20;
/// Recovery reads segments in chunks this large so replay runs at disk speed.
const RECOVERY_READ_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// A commit buffer grown past this by a huge batch is shrunk back after the commit.
const PENDING_BUFFER_BYTES_RETAINED_MAX: usize = 16 * 1024 * 1024;
const SEGMENT_FILE_PREFIX: &str = "log-";
const SEGMENT_FILE_SUFFIX: &str = ".ecnylog";
const SEGMENT_NAME_SEQ_DIGITS: usize = 20;
const LOCK_FILE_NAME: &str = "LOCK";

/// What recovery found while opening the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Entries passed to the callback (those with seq > `replay_after`).
    pub entries_replayed: u64,
    /// Sequence number of the last durable entry; 0 if the log never held one.
    pub last_seq: u64,
    /// The incomplete final write that was cut off, if any.
    pub torn_tail: Option<TornTail>,
}

/// An incomplete final write found at the end of the last segment: truncated away by the log's
/// owner, only reported by a read-only reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Byte offset of the first bad frame; after a repairing open the file ends here.
    pub offset: u64,
    pub bytes_cut: u64,
}

/// Failure to open the log: either storage trouble or the replay callback's own error.
#[derive(Debug, thiserror::Error)]
pub enum OpenError<E> {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("applying log entry {seq} during recovery failed: {source}")]
    Apply { seq: u64, source: E },
}

impl<E> OpenError<E> {
    /// Stable machine-readable code, matching [`StorageError::code`] for storage failures.
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::Storage(error) => error.code(),
            OpenError::Apply { .. } => "LOG_REPLAY_FAILED",
        }
    }
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
}

/// Entries sealed for one write and fdatasync on another thread.
pub struct SealedWrite {
    file: File,
    segment: PathBuf,
    bytes: Vec<u8>,
    last_seq: u64,
    result: Option<io::Result<()>>,
}

impl SealedWrite {
    /// One write, one fdatasync. Runs on the writer thread.
    pub fn write_and_sync(&mut self) {
        self.result = Some(
            self.file
                .write_all(&self.bytes)
                .and_then(|()| self.file.sync_data()),
        );
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

/// An open, exclusively locked command log. Appends are buffered until `commit`.
#[derive(Debug)]
pub struct CommandLog {
    dir: PathBuf,
    /// Held only for its exclusive lock, which lasts as long as this handle.
    _lock: File,
    /// Oldest first; the last one is the active segment that commits append to.
    segments: Vec<Segment>,
    active: File,
    active_bytes: u64,
    pending: Vec<u8>,
    /// A sealed group being written on another thread; its buffer comes back on `complete`.
    in_flight: bool,
    spare: Vec<u8>,
    next_seq: u64,
    durable_seq: u64,
    bytes_written: u64,
    poisoned: bool,
}

impl CommandLog {
    /// Opens (creating the directory and first segment if needed), scans every segment in
    /// order, calls `on_entry(seq, payload)` for every entry with seq > `replay_after`, cuts a
    /// torn tail, and refuses corruption before the tail.
    ///
    /// A log with no segments starts at `replay_after + 1`, continuing after the snapshot
    /// the caller restored from. A log that cannot supply every entry after `replay_after`,
    /// or that ends before it, is refused.
    pub fn open<E>(
        dir: &Path,
        replay_after: u64,
        mut on_entry: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(CommandLog, RecoveryReport), OpenError<E>> {
        assert!(replay_after < u64::MAX, "replay_after out of range");
        ensure_directory(dir)?;
        let lock = lock_directory(dir)?;
        let mut segments = list_segments(dir)?;
        if segments.is_empty() {
            segments.push(create_segment(dir, replay_after + 1)?);
        }
        check_log_reaches_back(dir, &segments[0], replay_after)?;
        let replay = replay_segments(&segments, replay_after, Access::Repair, &mut on_entry)?;
        let last_seq = replay.next_seq - 1;
        if last_seq < replay_after {
            return Err(StorageError::MissingEntries {
                dir: dir.to_path_buf(),
                first_missing: last_seq + 1,
                last_missing: replay_after,
            }
            .into());
        }
        let active_path = &segments.last().expect("at least one segment").path;
        let active = open_for_append(active_path)?;
        let active_bytes = active.metadata().map_err(io_error(active_path))?.len();
        let log = CommandLog {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments,
            active,
            active_bytes,
            pending: Vec::new(),
            in_flight: false,
            spare: Vec::new(),
            next_seq: replay.next_seq,
            durable_seq: last_seq,
            bytes_written: 0,
            poisoned: false,
        };
        let report = RecoveryReport {
            entries_replayed: replay.entries_replayed,
            last_seq,
            torn_tail: replay.torn_tail,
        };
        Ok((log, report))
    }

    /// Reads the log as `open` does, calling `on_entry` for every entry after `replay_after`,
    /// but changes nothing on disk and takes no lock: for audits and reports beside a running
    /// node. A torn tail (or the owner's write in progress) ends the reading and is reported,
    /// not cut; corruption before it is refused as `open` refuses it.
    pub fn read<E>(
        dir: &Path,
        replay_after: u64,
        mut on_entry: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<RecoveryReport, OpenError<E>> {
        let segments = if dir.exists() {
            list_segments(dir)?
        } else {
            Vec::new()
        };
        let Some(oldest) = segments.first() else {
            return Ok(RecoveryReport {
                entries_replayed: 0,
                last_seq: replay_after,
                torn_tail: None,
            });
        };
        check_log_reaches_back(dir, oldest, replay_after)?;
        let replay = replay_segments(&segments, replay_after, Access::ReadOnly, &mut on_entry)?;
        let last_seq = replay.next_seq - 1;
        if last_seq < replay_after {
            return Err(StorageError::MissingEntries {
                dir: dir.to_path_buf(),
                first_missing: last_seq + 1,
                last_missing: replay_after,
            }
            .into());
        }
        Ok(RecoveryReport {
            entries_replayed: replay.entries_replayed,
            last_seq,
            torn_tail: replay.torn_tail,
        })
    }

    /// Buffers one entry in memory; returns its sequence number. Nothing is durable yet.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, StorageError> {
        self.check_not_poisoned()?;
        if payload.len() > ENTRY_PAYLOAD_BYTES_MAX {
            return Err(StorageError::EntryTooLarge {
                bytes: payload.len(),
                max: ENTRY_PAYLOAD_BYTES_MAX,
            });
        }
        let seq = self.next_seq;
        assert!(seq < u64::MAX, "log sequence numbers exhausted");
        self.pending
            .extend_from_slice(&encode_frame_header(seq, payload));
        self.pending.extend_from_slice(payload);
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes every buffered entry with one write and one fdatasync: group commit.
    ///
    /// After a failure the log is poisoned: the kernel may have dropped the dirty pages, so
    /// only a reopen, which re-reads the files, knows what is durable.
    pub fn commit(&mut self) -> Result<(), StorageError> {
        self.check_not_poisoned()?;
        assert!(
            !self.in_flight,
            "commit while a sealed write is in flight would reorder writes"
        );
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self
            .active
            .write_all(&self.pending)
            .and_then(|()| self.active.sync_data());
        if let Err(source) = written {
            self.poisoned = true;
            return Err(StorageError::Io {
                path: self.active_segment().path.clone(),
                source,
            });
        }
        let batch_bytes = self.pending.len() as u64;
        self.bytes_written += batch_bytes;
        self.active_bytes += batch_bytes;
        self.durable_seq = self.next_seq - 1;
        self.pending.clear();
        self.pending.shrink_to(PENDING_BUFFER_BYTES_RETAINED_MAX);
        Ok(())
    }

    /// Takes every buffered entry as one write to run on another thread, so that the next group
    /// can be applied while this one reaches the disk. At most one is in flight; hand it back
    /// with `complete`. Returns `None` when nothing is buffered.
    pub fn seal(&mut self) -> Result<Option<SealedWrite>, StorageError> {
        self.check_not_poisoned()?;
        assert!(
            !self.in_flight,
            "one sealed write at a time keeps the log in order"
        );
        if self.pending.is_empty() {
            return Ok(None);
        }
        let segment = self.active_segment().path.clone();
        let file = self.active.try_clone().map_err(io_error(&segment))?;
        let bytes = std::mem::replace(&mut self.pending, std::mem::take(&mut self.spare));
        self.in_flight = true;
        Ok(Some(SealedWrite {
            file,
            segment,
            bytes,
            last_seq: self.next_seq - 1,
            result: None,
        }))
    }

    /// Records the outcome of a sealed write. A failed write poisons the log, as in `commit`.
    pub fn complete(&mut self, mut sealed: SealedWrite) -> Result<u64, StorageError> {
        assert!(self.in_flight, "complete without a sealed write");
        self.in_flight = false;
        match sealed.result.take() {
            Some(Ok(())) => {}
            Some(Err(source)) => {
                self.poisoned = true;
                return Err(StorageError::Io {
                    path: sealed.segment,
                    source,
                });
            }
            None => panic!("a sealed write came back unwritten"),
        }
        let batch_bytes = sealed.bytes.len() as u64;
        self.bytes_written += batch_bytes;
        self.active_bytes += batch_bytes;
        self.durable_seq = sealed.last_seq;
        sealed.bytes.clear();
        sealed.bytes.shrink_to(PENDING_BUFFER_BYTES_RETAINED_MAX);
        self.spare = sealed.bytes;
        Ok(self.durable_seq)
    }

    /// Sequence number of the last committed entry; 0 if there is none.
    pub fn last_durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Sequence number the next `append` will return.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Commits buffered entries, then starts a new segment (called after a snapshot, so old
    /// segments can be dropped). Does nothing if the active segment holds no entries.
    pub fn rotate(&mut self) -> Result<(), StorageError> {
        self.commit()?;
        if self.active_segment().first_seq == self.next_seq {
            return Ok(());
        }
        // A half-done rotation would leave a segment file the in-memory state does not
        // know about; appending elsewhere would then make the log look corrupt on reopen.
        let rotated = create_segment(&self.dir, self.next_seq)
            .and_then(|segment| Ok((open_for_append(&segment.path)?, segment)));
        let (active, segment) = rotated.inspect_err(|_| self.poisoned = true)?;
        self.segments.push(segment);
        self.active = active;
        self.active_bytes = 0;
        Ok(())
    }

    /// Deletes whole segments whose entries are all <= `seq`; never the active segment.
    /// Returns how many segments were deleted.
    pub fn remove_segments_through(&mut self, seq: u64) -> Result<usize, StorageError> {
        let mut removed = 0;
        // Oldest first, so a failure part-way still leaves a contiguous log.
        while self.segments.len() > 1 && self.segments[1].first_seq - 1 <= seq {
            let oldest = &self.segments[0].path;
            fs::remove_file(oldest).map_err(io_error(oldest))?;
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            sync_directory(&self.dir)?;
        }
        Ok(removed)
    }

    /// Bytes this handle has committed to disk since it was opened.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Size in bytes of the active segment's committed contents.
    pub fn active_segment_bytes(&self) -> u64 {
        self.active_bytes
    }

    /// Number of segment files, including the active one.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn active_segment(&self) -> &Segment {
        self.segments.last().expect("an open log has a segment")
    }

    fn check_not_poisoned(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    payload_len: usize,
    seq: u64,
    payload_crc: u32,
}

fn encode_frame_header(seq: u64, payload: &[u8]) -> [u8; FRAME_HEADER_BYTES] {
    let payload_len =
        u32::try_from(payload.len()).expect("payload length is bounded by the entry limit");
    let mut header = [0u8; FRAME_HEADER_BYTES];
    header[0..4].copy_from_slice(&FRAME_MAGIC);
    header[4..8].copy_from_slice(&payload_len.to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header[..HEADER_CHECKSUMMED_BYTES]);
    header[20..24].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// Validates magic, header checksum and length bound; returns the reason on failure.
fn decode_frame_header(bytes: &[u8]) -> Result<FrameHeader, &'static str> {
    assert!(
        bytes.len() >= FRAME_HEADER_BYTES,
        "caller passes a full header"
    );
    if bytes[0..4] != FRAME_MAGIC {
        return Err("bad frame magic");
    }
    let header_crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..HEADER_CHECKSUMMED_BYTES]) != header_crc {
        return Err("frame header checksum mismatch");
    }
    let payload_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if payload_len > ENTRY_PAYLOAD_BYTES_MAX {
        return Err("payload length exceeds the entry limit");
    }
    Ok(FrameHeader {
        payload_len,
        seq: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        payload_crc: u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")),
    })
}

fn segment_file_name(first_seq: u64) -> String {
    format!("{SEGMENT_FILE_PREFIX}{first_seq:020}{SEGMENT_FILE_SUFFIX}")
}

fn parse_segment_seq_digits(digits: &str) -> Option<u64> {
    if digits.len() != SEGMENT_NAME_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&first_seq| first_seq >= 1)
}

/// Lists segment files sorted by first sequence number; other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<Segment>, StorageError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let file_name = entry.file_name();
        let Some(digits) = file_name.to_str().and_then(|name| {
            name.strip_prefix(SEGMENT_FILE_PREFIX)?
                .strip_suffix(SEGMENT_FILE_SUFFIX)
        }) else {
            continue;
        };
        let path = entry.path();
        let Some(first_seq) = parse_segment_seq_digits(digits) else {
            return Err(StorageError::Corrupt {
                segment: path,
                offset: 0,
                reason: "segment file name does not encode a valid sequence number".into(),
            });
        };
        segments.push(Segment { first_seq, path });
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

fn lock_directory(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(StorageError::Io { path, source }),
    }
}

/// Creates an empty segment and makes its existence durable.
fn create_segment(dir: &Path, first_seq: u64) -> Result<Segment, StorageError> {
    let path = dir.join(segment_file_name(first_seq));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error(&path))?;
    sync_directory(dir)?;
    Ok(Segment { first_seq, path })
}

fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_error(path))
}

/// Refuses a log whose oldest segment starts after the first entry replay needs.
fn check_log_reaches_back(
    dir: &Path,
    oldest: &Segment,
    replay_after: u64,
) -> Result<(), StorageError> {
    if oldest.first_seq > replay_after + 1 {
        return Err(StorageError::MissingEntries {
            dir: dir.to_path_buf(),
            first_missing: replay_after + 1,
            last_missing: oldest.first_seq - 1,
        });
    }
    Ok(())
}

/// Progress of recovery across segments.
struct Replay {
    entries_replayed: u64,
    /// The sequence number the next valid frame must carry.
    next_seq: u64,
    torn_tail: Option<TornTail>,
}

struct BadFrame {
    offset: u64,
    reason: String,
}

fn replay_segments<E>(
    segments: &[Segment],
    replay_after: u64,
    access: Access,
    on_entry: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<Replay, OpenError<E>> {
    let mut buffer = vec![0u8; RECOVERY_READ_BUFFER_BYTES];
    let mut replay = Replay {
        entries_replayed: 0,
        next_seq: segments[0].first_seq,
        torn_tail: None,
    };
    for (index, segment) in segments.iter().enumerate() {
        check_segment_start(segment, replay.next_seq)?;
        let is_last = index + 1 == segments.len();
        let context = SegmentContext {
            segment,
            is_last,
            replay_after,
            access,
        };
        replay_segment(&context, &mut buffer, on_entry, &mut replay)?;
    }
    Ok(replay)
}

fn check_segment_start(segment: &Segment, expected_seq: u64) -> Result<(), StorageError> {
    if segment.first_seq == expected_seq {
        return Ok(());
    }
    let relation = if segment.first_seq > expected_seq {
        "gap"
    } else {
        "overlap"
    };
    Err(StorageError::Corrupt {
        segment: segment.path.clone(),
        offset: 0,
        reason: format!(
            "segment starts at sequence {} but the previous segment ends at {}: \
             sequence {relation} between segments",
            segment.first_seq,
            expected_seq - 1
        ),
    })
}

struct SegmentContext<'a> {
    segment: &'a Segment,
    is_last: bool,
    replay_after: u64,
    access: Access,
}

/// Whether recovery may change the files it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// The log's owner: a torn tail is cut so appends continue after the last good frame.
    Repair,
    /// A reader beside the owner (or instead of it): nothing is written; a torn tail, or a
    /// write still in progress, is where reading stops.
    ReadOnly,
}

/// Replays one segment; cuts a torn tail in the last segment, refuses any other damage.
fn replay_segment<E>(
    context: &SegmentContext<'_>,
    buffer: &mut Vec<u8>,
    on_entry: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    replay: &mut Replay,
) -> Result<(), OpenError<E>> {
    let path = &context.segment.path;
    let mut file = OpenOptions::new()
        .read(true)
        .write(context.is_last && context.access == Access::Repair)
        .open(path)
        .map_err(io_error(path))?;
    let file_len = file.metadata().map_err(io_error(path))?.len();
    let mut reader = SegmentReader::new(&mut file, path, buffer);
    let Some(bad) = scan_frames(
        &mut reader,
        file_len,
        context.replay_after,
        on_entry,
        replay,
    )?
    else {
        return Ok(());
    };
    let later_header = context.is_last
        && later_frame_header_exists(&mut file, path, bad.offset + 1, file_len, replay, buffer)?;
    if !context.is_last || later_header {
        return Err(StorageError::Corrupt {
            segment: path.clone(),
            offset: bad.offset,
            reason: bad.reason,
        }
        .into());
    }
    // A log that ends before the snapshot's position is refused by the caller: then the bad
    // bytes are not a torn write after everything durable but entries the snapshot covers,
    // and they stay on disk for a repair.
    let reaches_snapshot = replay.next_seq > context.replay_after;
    if context.access == Access::Repair && reaches_snapshot {
        file.set_len(bad.offset)
            .and_then(|()| file.sync_all())
            .map_err(io_error(path))?;
    }
    replay.torn_tail = Some(TornTail {
        segment: path.clone(),
        offset: bad.offset,
        bytes_cut: file_len - bad.offset,
    });
    Ok(())
}

/// Validates and replays frames until the end of the segment or the first bad frame.
fn scan_frames<E>(
    reader: &mut SegmentReader<'_>,
    file_len: u64,
    replay_after: u64,
    on_entry: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    replay: &mut Replay,
) -> Result<Option<BadFrame>, OpenError<E>> {
    loop {
        let offset = reader.offset;
        let bad = |reason: &str| {
            Some(BadFrame {
                offset,
                reason: reason.to_string(),
            })
        };
        let remaining_bytes = file_len - offset;
        if remaining_bytes == 0 {
            return Ok(None);
        }
        if remaining_bytes < FRAME_HEADER_BYTES as u64 {
            return Ok(bad("short frame header"));
        }
        let header = match decode_frame_header(reader.fill(FRAME_HEADER_BYTES)?) {
            Ok(header) => header,
            Err(reason) => return Ok(bad(reason)),
        };
        let frame_bytes = FRAME_HEADER_BYTES + header.payload_len;
        if remaining_bytes < frame_bytes as u64 {
            return Ok(bad("payload extends past end of file"));
        }
        let payload = &reader.fill(frame_bytes)?[FRAME_HEADER_BYTES..];
        if crc32fast::hash(payload) != header.payload_crc {
            return Ok(bad("payload checksum mismatch"));
        }
        if header.seq != replay.next_seq {
            let reason = format!(
                "sequence number {} where {} was expected",
                header.seq, replay.next_seq
            );
            return Ok(bad(&reason));
        }
        if header.seq > replay_after {
            on_entry(header.seq, payload).map_err(|source| OpenError::Apply {
                seq: header.seq,
                source,
            })?;
            replay.entries_replayed += 1;
        }
        reader.consume(frame_bytes);
        replay.next_seq += 1;
    }
}

/// Looks for a plausible frame header after a bad frame. One that carries a sequence number
/// beyond the last good entry proves later writes reached disk, so the damage is not a torn
/// final write. Stale frames from reused disk blocks carry older numbers and do not count.
fn later_frame_header_exists(
    file: &mut File,
    path: &Path,
    from: u64,
    file_len: u64,
    replay: &Replay,
    buffer: &mut [u8],
) -> Result<bool, StorageError> {
    assert!(buffer.len() > FRAME_HEADER_BYTES, "scan buffer too small");
    let mut chunk_start = from;
    while chunk_start + FRAME_HEADER_BYTES as u64 <= file_len {
        let chunk_len = usize::try_from(file_len - chunk_start)
            .map_or(buffer.len(), |left| left.min(buffer.len()));
        let chunk = &mut buffer[..chunk_len];
        file.seek(SeekFrom::Start(chunk_start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(io_error(path))?;
        let found = chunk.windows(FRAME_HEADER_BYTES).any(|window| {
            window[..FRAME_MAGIC.len()] == FRAME_MAGIC
                && decode_frame_header(window).is_ok_and(|header| header.seq >= replay.next_seq)
        });
        if found {
            return Ok(true);
        }
        // Overlap chunks so a header straddling a chunk boundary is still seen.
        chunk_start += (chunk_len - (FRAME_HEADER_BYTES - 1)) as u64;
    }
    Ok(false)
}

/// Sequential reader that keeps each requested frame contiguous in one reusable buffer,
/// refilling it with large reads.
struct SegmentReader<'a> {
    file: &'a mut File,
    path: &'a Path,
    buffer: &'a mut Vec<u8>,
    /// First unconsumed byte in `buffer`.
    start: usize,
    /// One past the last byte read into `buffer`.
    end: usize,
    /// File offset of `buffer[start]`.
    offset: u64,
}

impl<'a> SegmentReader<'a> {
    fn new(file: &'a mut File, path: &'a Path, buffer: &'a mut Vec<u8>) -> SegmentReader<'a> {
        SegmentReader {
            file,
            path,
            buffer,
            start: 0,
            end: 0,
            offset: 0,
        }
    }

    /// Returns the next `wanted` bytes without consuming them. The caller has checked that
    /// the file holds them, so running out means the file changed under us.
    fn fill(&mut self, wanted: usize) -> Result<&[u8], StorageError> {
        if self.end - self.start < wanted {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buffer.len() < wanted {
                self.buffer.resize(wanted, 0);
            }
            while self.end < wanted {
                match self.file.read(&mut self.buffer[self.end..]) {
                    Ok(0) => return Err(self.shrank_error()),
                    Ok(read) => self.end += read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(io_error(self.path)(error)),
                }
            }
        }
        Ok(&self.buffer[self.start..self.start + wanted])
    }

    fn consume(&mut self, bytes: usize) {
        assert!(self.start + bytes <= self.end, "consumed bytes never read");
        self.start += bytes;
        self.offset += bytes as u64;
    }

    fn shrank_error(&self) -> StorageError {
        StorageError::Io {
            path: self.path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment shrank while it was being read",
            ),
        }
    }
}

#[cfg(test)]
mod sealed_tests {
    use super::*;

    #[test]
    fn a_sealed_write_completed_elsewhere_is_durable_and_replays() {
        let dir = std::env::temp_dir().join(format!("ecny-sealed-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (mut log, _) = CommandLog::open(&dir, 0, |_, _| Ok::<(), ()>(())).unwrap();
        log.append(b"first").unwrap();
        let mut sealed = log.seal().unwrap().unwrap();
        // The next group is buffered while the first is written on another thread.
        log.append(b"second").unwrap();
        std::thread::spawn(move || {
            sealed.write_and_sync();
            sealed
        })
        .join()
        .map(|sealed| assert_eq!(log.complete(sealed).unwrap(), 1))
        .unwrap();
        assert_eq!(log.last_durable_seq(), 1);
        let mut sealed = log.seal().unwrap().unwrap();
        sealed.write_and_sync();
        assert_eq!(log.complete(sealed).unwrap(), 2);
        assert!(log.seal().unwrap().is_none());
        drop(log);
        let mut seen = Vec::new();
        CommandLog::open(&dir, 0, |_, payload| {
            seen.push(payload.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![b"first".to_vec(), b"second".to_vec()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::ScratchDir;
    use proptest::prelude::*;
    use std::convert::Infallible;

    type Entries = Vec<(u64, Vec<u8>)>;

    fn try_open(
        dir: &Path,
        replay_after: u64,
    ) -> Result<(CommandLog, RecoveryReport, Entries), OpenError<Infallible>> {
        let mut entries = Vec::new();
        let (log, report) = CommandLog::open(dir, replay_after, |seq, payload| {
            entries.push((seq, payload.to_vec()));
            Ok::<(), Infallible>(())
        })?;
        Ok((log, report, entries))
    }

    fn open_collect(dir: &Path, replay_after: u64) -> (CommandLog, RecoveryReport, Entries) {
        try_open(dir, replay_after).expect("open log")
    }

    fn open_storage_error(dir: &Path, replay_after: u64) -> StorageError {
        match try_open(dir, replay_after) {
            Err(OpenError::Storage(error)) => error,
            Err(OpenError::Apply { .. }) => unreachable!("callback never fails"),
            Ok(_) => panic!("open unexpectedly succeeded"),
        }
    }

    fn payload_for(seq: u64) -> Vec<u8> {
        let len = (seq as usize * 7) % 50 + 1;
        (0..len)
            .map(|i| (seq as u8).wrapping_mul(31) ^ i as u8)
            .collect()
    }

    fn append_committed(log: &mut CommandLog, seqs: std::ops::RangeInclusive<u64>) {
        for seq in seqs {
            assert_eq!(log.append(&payload_for(seq)).unwrap(), seq);
        }
        log.commit().unwrap();
    }

    fn expected_entries(seqs: std::ops::RangeInclusive<u64>) -> Entries {
        seqs.map(|seq| (seq, payload_for(seq))).collect()
    }

    fn segment_paths(dir: &Path) -> Vec<PathBuf> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|segment| segment.path)
            .collect()
    }

    /// Byte offset of each frame in a segment holding `seqs` written by `append_committed`.
    fn frame_offsets(seqs: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        let mut offset = 0;
        seqs.map(|seq| {
            let start = offset;
            offset += (FRAME_HEADER_BYTES + payload_for(seq).len()) as u64;
            start
        })
        .collect()
    }

    fn flip_byte(path: &Path, offset: u64) -> Vec<u8> {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x40;
        fs::write(path, &bytes).unwrap();
        bytes
    }

    fn expect_corrupt(error: StorageError, path: &Path, offset: u64, reason: &str) {
        match &error {
            StorageError::Corrupt {
                segment,
                offset: found_offset,
                reason: found_reason,
            } => {
                assert_eq!(segment, path);
                assert_eq!(*found_offset, offset);
                assert!(found_reason.contains(reason), "reason: {found_reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&format!("at byte offset {offset} ")),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn round_trip_across_commits_and_rotate() {
        let scratch = ScratchDir::new("round-trip");
        let dir = scratch.path().join("nested").join("log");
        {
            let (mut log, report, entries) = open_collect(&dir, 0);
            assert_eq!(report.last_seq, 0);
            assert_eq!(report.torn_tail, None);
            assert!(entries.is_empty());
            append_committed(&mut log, 1..=3);
            append_committed(&mut log, 4..=4);
            log.rotate().unwrap();
            append_committed(&mut log, 5..=9);
            assert_eq!(log.last_durable_seq(), 9);
            assert_eq!(log.segment_count(), 2);
            assert!(log.bytes_written() > 0);
        }
        let (log, report, entries) = open_collect(&dir, 0);
        assert_eq!(entries, expected_entries(1..=9));
        assert_eq!(report.entries_replayed, 9);
        assert_eq!(report.last_seq, 9);
        assert_eq!(report.torn_tail, None);
        assert_eq!(log.last_durable_seq(), 9);
        assert_eq!(log.next_seq(), 10);
        assert_eq!(segment_paths(&dir).len(), 2);
    }

    #[test]
    fn uncommitted_entries_are_lost_on_reopen() {
        let scratch = ScratchDir::new("uncommitted");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            append_committed(&mut log, 1..=2);
            log.append(b"never committed").unwrap();
            assert_eq!(log.last_durable_seq(), 2);
        }
        let (mut log, _, entries) = open_collect(scratch.path(), 0);
        assert_eq!(entries, expected_entries(1..=2));
        assert_eq!(log.append(&payload_for(3)).unwrap(), 3);
    }

    #[test]
    fn replay_after_skips_entries() {
        let scratch = ScratchDir::new("replay-after");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            append_committed(&mut log, 1..=3);
            log.rotate().unwrap();
            append_committed(&mut log, 4..=6);
        }
        let (_, report, entries) = open_collect(scratch.path(), 4);
        assert_eq!(entries, expected_entries(5..=6));
        assert_eq!(report.entries_replayed, 2);
        assert_eq!(report.last_seq, 6);
        drop(entries);
        let (_, report, entries) = open_collect(scratch.path(), 6);
        assert!(entries.is_empty());
        assert_eq!(report.last_seq, 6);
    }

    #[test]
    fn an_open_refused_for_missing_entries_leaves_a_damaged_tail_on_disk() {
        // The last entry, 5, is damaged while the snapshot says 5: it looks like a torn write,
        // but recovery must refuse without cutting it away, so the bytes stay for a repair.
        let scratch = ScratchDir::new("missing-keeps-tail");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            append_committed(&mut log, 1..=5);
        }
        let path = segment_paths(scratch.path()).remove(0);
        let fifth = frame_offsets(1..=5)[4];
        let damaged = flip_byte(&path, fifth + FRAME_HEADER_BYTES as u64);
        let error = open_storage_error(scratch.path(), 5);
        assert!(
            matches!(error, StorageError::MissingEntries { .. }),
            "{error:?}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            damaged,
            "a refused open cut the log"
        );
        // A reader sees the same and changes nothing either.
        let read = CommandLog::read(scratch.path(), 5, |_, _| Ok::<(), Infallible>(()));
        assert!(read.is_err());
        assert_eq!(fs::read(&path).unwrap(), damaged);
    }

    #[test]
    fn rotate_of_empty_segment_is_a_no_op() {
        let scratch = ScratchDir::new("rotate-empty");
        let (mut log, _, _) = open_collect(scratch.path(), 0);
        log.rotate().unwrap();
        assert_eq!(log.segment_count(), 1);
        append_committed(&mut log, 1..=1);
        log.rotate().unwrap();
        log.rotate().unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(log.active_segment_bytes(), 0);
    }

    #[test]
    fn rotate_commits_buffered_entries() {
        let scratch = ScratchDir::new("rotate-commits");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            log.append(&payload_for(1)).unwrap();
            log.rotate().unwrap();
            assert_eq!(log.last_durable_seq(), 1);
        }
        let (_, _, entries) = open_collect(scratch.path(), 0);
        assert_eq!(entries, expected_entries(1..=1));
    }

    #[test]
    fn remove_segments_through_deletes_only_fully_covered_segments() {
        let scratch = ScratchDir::new("remove");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
            log.rotate().unwrap();
            append_committed(&mut log, 4..=6);
            log.rotate().unwrap();
            append_committed(&mut log, 7..=8);
            assert_eq!(log.remove_segments_through(2).unwrap(), 0);
            assert_eq!(log.remove_segments_through(5).unwrap(), 1);
            assert_eq!(segment_paths(dir).len(), 2);
            assert_eq!(log.remove_segments_through(100).unwrap(), 1);
            assert_eq!(log.segment_count(), 1);
            append_committed(&mut log, 9..=9);
        }
        let (_, _, entries) = open_collect(dir, 6);
        assert_eq!(entries, expected_entries(7..=9));
        let error = open_storage_error(dir, 0);
        assert!(matches!(
            error,
            StorageError::MissingEntries {
                first_missing: 1,
                last_missing: 6,
                ..
            }
        ));
        assert_eq!(error.code(), "LOG_ENTRIES_MISSING");
    }

    #[test]
    fn fresh_log_continues_after_snapshot_sequence() {
        let scratch = ScratchDir::new("fresh-after-snapshot");
        {
            let (mut log, report, _) = open_collect(scratch.path(), 10);
            assert_eq!(report.last_seq, 10);
            assert_eq!(log.append(b"first").unwrap(), 11);
            log.commit().unwrap();
        }
        let (_, _, entries) = open_collect(scratch.path(), 10);
        assert_eq!(entries, vec![(11, b"first".to_vec())]);
    }

    #[test]
    fn log_ending_before_replay_point_is_refused() {
        let scratch = ScratchDir::new("behind-snapshot");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            append_committed(&mut log, 1..=3);
        }
        let error = open_storage_error(scratch.path(), 5);
        assert!(matches!(
            error,
            StorageError::MissingEntries {
                first_missing: 4,
                last_missing: 5,
                ..
            }
        ));
    }

    #[test]
    fn torn_tail_at_every_length_of_last_frame_is_cut() {
        let scratch = ScratchDir::new("torn-every-length");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
            log.rotate().unwrap();
            append_committed(&mut log, 4..=6);
        }
        let last_segment = segment_paths(dir).pop().unwrap();
        let original = fs::read(&last_segment).unwrap();
        let last_frame_bytes = FRAME_HEADER_BYTES + payload_for(6).len();
        let last_frame_start = original.len() - last_frame_bytes;
        for kept_bytes in 0..last_frame_bytes {
            fs::write(&last_segment, &original[..last_frame_start + kept_bytes]).unwrap();
            let (mut log, report, entries) = open_collect(dir, 0);
            assert_eq!(entries, expected_entries(1..=5), "kept {kept_bytes}");
            assert_eq!(report.last_seq, 5);
            let expected_tail = (kept_bytes > 0).then(|| TornTail {
                segment: last_segment.clone(),
                offset: last_frame_start as u64,
                bytes_cut: kept_bytes as u64,
            });
            assert_eq!(report.torn_tail, expected_tail, "kept {kept_bytes}");
            let truncated_len = fs::metadata(&last_segment).unwrap().len();
            assert_eq!(truncated_len, last_frame_start as u64);
            assert_eq!(log.append(b"after the cut").unwrap(), 6);
            log.commit().unwrap();
            drop(log);
            let (_, report, entries) = open_collect(dir, 0);
            assert_eq!(report.torn_tail, None);
            assert_eq!(entries.len(), 6);
            assert_eq!(entries[5], (6, b"after the cut".to_vec()));
        }
    }

    #[test]
    fn torn_tail_with_garbage_payload_is_cut() {
        let scratch = ScratchDir::new("torn-garbage");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=4);
        }
        let segment = segment_paths(dir).pop().unwrap();
        let mut bytes = fs::read(&segment).unwrap();
        let last_frame_start = frame_offsets(1..=4)[3] as usize;
        for byte in &mut bytes[last_frame_start + FRAME_HEADER_BYTES..] {
            *byte = 0xA5;
        }
        fs::write(&segment, &bytes).unwrap();
        let (_, report, entries) = open_collect(dir, 0);
        assert_eq!(entries, expected_entries(1..=3));
        let torn = report.torn_tail.expect("torn tail reported");
        assert_eq!(torn.offset, last_frame_start as u64);
        assert_eq!(torn.bytes_cut, (bytes.len() - last_frame_start) as u64);
    }

    #[test]
    fn zero_filled_tail_is_cut() {
        let scratch = ScratchDir::new("torn-zeros");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=4);
        }
        let segment = segment_paths(dir).pop().unwrap();
        let mut bytes = fs::read(&segment).unwrap();
        let clean_len = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        fs::write(&segment, &bytes).unwrap();
        let (_, report, entries) = open_collect(dir, 0);
        assert_eq!(entries, expected_entries(1..=4));
        let expected_tail = TornTail {
            segment: segment.clone(),
            offset: clean_len,
            bytes_cut: 4096,
        };
        assert_eq!(report.torn_tail, Some(expected_tail));
        assert_eq!(fs::metadata(&segment).unwrap().len(), clean_len);
    }

    #[test]
    fn stale_frame_with_old_sequence_at_tail_is_cut() {
        let scratch = ScratchDir::new("torn-stale");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
        }
        let segment = segment_paths(dir).pop().unwrap();
        let mut bytes = fs::read(&segment).unwrap();
        let clean_len = bytes.len() as u64;
        let stale_payload = payload_for(2);
        bytes.extend_from_slice(&encode_frame_header(2, &stale_payload));
        bytes.extend_from_slice(&stale_payload);
        fs::write(&segment, &bytes).unwrap();
        let (_, report, entries) = open_collect(dir, 0);
        assert_eq!(entries, expected_entries(1..=3));
        assert_eq!(report.torn_tail.map(|torn| torn.offset), Some(clean_len));
    }

    fn check_earlier_frame_flip(label: &str, byte_in_frame: usize, reason: &str) {
        let scratch = ScratchDir::new(label);
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
            append_committed(&mut log, 4..=6);
        }
        let segment = segment_paths(dir).pop().unwrap();
        let bad_frame_offset = frame_offsets(1..=6)[2];
        let damaged = flip_byte(&segment, bad_frame_offset + byte_in_frame as u64);
        let error = open_storage_error(dir, 0);
        expect_corrupt(error, &segment, bad_frame_offset, reason);
        assert_eq!(
            fs::read(&segment).unwrap(),
            damaged,
            "file must stay untouched"
        );
        let error = open_storage_error(dir, 0);
        assert_eq!(error.code(), "LOG_CORRUPT");
    }

    #[test]
    fn flipped_length_byte_in_earlier_frame_is_corruption() {
        check_earlier_frame_flip("flip-length", 5, "frame header checksum mismatch");
    }

    #[test]
    fn flipped_sequence_byte_in_earlier_frame_is_corruption() {
        check_earlier_frame_flip("flip-seq", 9, "frame header checksum mismatch");
    }

    #[test]
    fn flipped_magic_byte_in_earlier_frame_is_corruption() {
        check_earlier_frame_flip("flip-magic", 0, "bad frame magic");
    }

    #[test]
    fn flipped_payload_byte_in_earlier_frame_is_corruption() {
        check_earlier_frame_flip(
            "flip-payload",
            FRAME_HEADER_BYTES + 1,
            "payload checksum mismatch",
        );
    }

    #[test]
    fn flipped_byte_in_non_last_segment_is_corruption() {
        let scratch = ScratchDir::new("flip-non-last");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
            log.rotate().unwrap();
            append_committed(&mut log, 4..=5);
        }
        let first_segment = segment_paths(dir).remove(0);
        // Even the final frame of a sealed segment cannot be a torn tail.
        let last_frame_offset = frame_offsets(1..=3)[2];
        let damaged = flip_byte(
            &first_segment,
            last_frame_offset + FRAME_HEADER_BYTES as u64,
        );
        let error = open_storage_error(dir, 0);
        expect_corrupt(
            error,
            &first_segment,
            last_frame_offset,
            "payload checksum mismatch",
        );
        assert_eq!(fs::read(&first_segment).unwrap(), damaged);
    }

    #[test]
    fn truncated_non_last_segment_is_corruption() {
        let scratch = ScratchDir::new("truncate-non-last");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=3);
            log.rotate().unwrap();
            append_committed(&mut log, 4..=5);
        }
        let first_segment = segment_paths(dir).remove(0);
        let len = fs::metadata(&first_segment).unwrap().len();
        let file = OpenOptions::new().write(true).open(&first_segment).unwrap();
        file.set_len(len - 3).unwrap();
        let error = open_storage_error(dir, 0);
        let last_frame_offset = frame_offsets(1..=3)[2];
        expect_corrupt(
            error,
            &first_segment,
            last_frame_offset,
            "payload extends past end of file",
        );
    }

    #[test]
    fn sequence_gap_between_segments_is_corruption() {
        let scratch = ScratchDir::new("segment-gap");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            for first in [1, 3, 5] {
                append_committed(&mut log, first..=first + 1);
                log.rotate().unwrap();
            }
        }
        let segments = segment_paths(dir);
        fs::remove_file(&segments[1]).unwrap();
        let error = open_storage_error(dir, 0);
        expect_corrupt(error, &segments[2], 0, "gap");
    }

    #[test]
    fn sequence_repetition_inside_segment_before_valid_frames_is_corruption() {
        let scratch = ScratchDir::new("seq-repeat");
        let dir = scratch.path();
        {
            let (mut log, _, _) = open_collect(dir, 0);
            append_committed(&mut log, 1..=2);
        }
        let segment = segment_paths(dir).pop().unwrap();
        let mut bytes = fs::read(&segment).unwrap();
        let repeated_offset = bytes.len() as u64;
        for seq in [2, 3] {
            bytes.extend_from_slice(&encode_frame_header(seq, &payload_for(seq)));
            bytes.extend_from_slice(&payload_for(seq));
        }
        fs::write(&segment, &bytes).unwrap();
        let error = open_storage_error(dir, 0);
        expect_corrupt(error, &segment, repeated_offset, "sequence number 2");
    }

    #[test]
    fn second_open_of_same_directory_is_locked() {
        let scratch = ScratchDir::new("locked");
        let (first, _, _) = open_collect(scratch.path(), 0);
        let error = open_storage_error(scratch.path(), 0);
        assert!(matches!(error, StorageError::Locked { .. }));
        assert_eq!(error.code(), "DATA_DIR_LOCKED");
        assert!(error.to_string().contains("locked by another process"));
        drop(first);
        open_collect(scratch.path(), 0);
    }

    #[test]
    fn oversized_entry_is_rejected() {
        let scratch = ScratchDir::new("too-large");
        let (mut log, _, _) = open_collect(scratch.path(), 0);
        let payload = vec![0u8; ENTRY_PAYLOAD_BYTES_MAX + 1];
        let error = log.append(&payload).unwrap_err();
        assert!(matches!(
            error,
            StorageError::EntryTooLarge {
                bytes,
                max: ENTRY_PAYLOAD_BYTES_MAX
            } if bytes == ENTRY_PAYLOAD_BYTES_MAX + 1
        ));
        assert_eq!(log.append(b"small").unwrap(), 1);
    }

    #[test]
    fn entries_larger_than_read_buffer_replay_intact() {
        let scratch = ScratchDir::new("large-entries");
        let big: Vec<u8> = (0..RECOVERY_READ_BUFFER_BYTES + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            log.append(b"small before").unwrap();
            log.append(&big).unwrap();
            log.append(b"small after").unwrap();
            log.commit().unwrap();
        }
        let (_, _, entries) = open_collect(scratch.path(), 0);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].1, b"small before");
        assert!(entries[1].1 == big);
        assert_eq!(entries[2].1, b"small after");
    }

    #[test]
    fn callback_error_aborts_open() {
        #[derive(Debug, thiserror::Error)]
        #[error("state machine rejected the command")]
        struct Rejected;

        let scratch = ScratchDir::new("callback-error");
        {
            let (mut log, _, _) = open_collect(scratch.path(), 0);
            append_committed(&mut log, 1..=3);
        }
        let result = CommandLog::open(scratch.path(), 0, |seq, _| {
            if seq == 2 {
                Err(Rejected)
            } else {
                Ok(())
            }
        });
        let Err(error) = result else {
            panic!("open should fail")
        };
        assert!(matches!(error, OpenError::Apply { seq: 2, .. }));
        assert_eq!(error.code(), "LOG_REPLAY_FAILED");
        assert!(error.to_string().contains("entry 2"));
    }

    #[test]
    fn malformed_segment_name_is_refused() {
        let scratch = ScratchDir::new("bad-name");
        fs::write(scratch.path().join("log-12.ecnylog"), b"").unwrap();
        let error = open_storage_error(scratch.path(), 0);
        assert!(matches!(error, StorageError::Corrupt { .. }));
    }

    #[test]
    fn frame_header_round_trips() {
        let header = encode_frame_header(42, b"payload");
        let decoded = decode_frame_header(&header).unwrap();
        assert_eq!(
            decoded,
            FrameHeader {
                payload_len: 7,
                seq: 42,
                payload_crc: crc32fast::hash(b"payload"),
            }
        );
    }

    /// One step of the property test: append these payloads, then maybe commit or rotate.
    #[derive(Debug, Clone)]
    struct Batch {
        payloads: Vec<Vec<u8>>,
        commit: bool,
        rotate: bool,
    }

    fn batch_strategy() -> impl Strategy<Value = Batch> {
        let payload = prop::collection::vec(any::<u8>(), 0..700);
        (
            prop::collection::vec(payload, 0..6),
            any::<bool>(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(payloads, commit, rotate)| Batch {
                payloads,
                commit,
                rotate,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn reopen_replays_exactly_committed_payloads(
            batches in prop::collection::vec(batch_strategy(), 1..10)
        ) {
            let scratch = ScratchDir::new("prop");
            let mut appended: Vec<Vec<u8>> = Vec::new();
            let mut committed_count = 0;
            {
                let (mut log, _, _) = open_collect(scratch.path(), 0);
                for batch in &batches {
                    for payload in &batch.payloads {
                        log.append(payload).unwrap();
                        appended.push(payload.clone());
                    }
                    if batch.rotate {
                        log.rotate().unwrap();
                        committed_count = appended.len();
                    } else if batch.commit {
                        log.commit().unwrap();
                        committed_count = appended.len();
                    }
                    prop_assert_eq!(log.last_durable_seq(), committed_count as u64);
                }
            }
            let (_, report, entries) = open_collect(scratch.path(), 0);
            prop_assert_eq!(report.torn_tail, None);
            prop_assert_eq!(report.last_seq, committed_count as u64);
            let expected: Entries = appended[..committed_count]
                .iter()
                .enumerate()
                .map(|(index, payload)| (index as u64 + 1, payload.clone()))
                .collect();
            prop_assert_eq!(entries, expected);
        }
    }
}

//! Atomic, checksummed snapshots of the state machine's encoded state.
//!
//! A snapshot file is named `snapshot-{seq:020}.ecnysnap`, where `seq` is the sequence number
//! of the last log entry the state includes. It holds a fixed header then the state bytes.
//! All integers are little-endian; checksums are CRC-32 (IEEE) as computed by `crc32fast`.
//!
//! | offset | bytes        | field                                   |
//! |--------|--------------|-----------------------------------------|
//! | 0      | 8            | magic `b"ECNYSNAP"`                     |
//! | 8      | 8            | sequence number (u64)                   |
//! | 16     | 8            | state length in bytes (u64)             |
//! | 24     | 4            | CRC-32 of the state (u32)               |
//! | 28     | 4            | CRC-32 of header bytes 0..28 (u32)      |
//! | 32     | state length | state                                   |
//!
//! Snapshots are written to a `.tmp` file, fsynced, renamed into place and the directory
//! fsynced, so a crash leaves either the complete new snapshot or none.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::files::{ensure_directory, io_error, sync_directory, StorageError};

/// Size of the fixed header that precedes the state bytes.
pub const SNAPSHOT_HEADER_BYTES: usize = 32;
/// How many of the newest snapshots `write` leaves on disk.
pub const SNAPSHOTS_KEPT_COUNT: usize = 2;

const SNAPSHOT_MAGIC: [u8; 8] = *b"ECNYSNAP";
/// The header checksum covers everything in the header before itself.
const HEADER_CHECKSUMMED_BYTES: usize = 28;
const SNAPSHOT_FILE_PREFIX: &str = "snapshot-";
const SNAPSHOT_FILE_SUFFIX: &str = ".ecnysnap";
const TEMP_FILE_SUFFIX: &str = ".ecnysnap.tmp";
const SNAPSHOT_NAME_SEQ_DIGITS: usize = 20;

/// A verified snapshot read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Sequence number of the last log entry included in `state`.
    pub seq: u64,
    pub state: Vec<u8>,
    pub path: PathBuf,
}

/// Writes `snapshot-{seq:020}.ecnysnap` atomically and returns its path, then deletes all but
/// the newest `SNAPSHOTS_KEPT_COUNT` snapshots (by sequence number).
pub fn write(dir: &Path, seq: u64, state: &[u8]) -> Result<PathBuf, StorageError> {
    ensure_directory(dir)?;
    let final_path = dir.join(snapshot_file_name(seq));
    let temp_path = dir.join(format!("{SNAPSHOT_FILE_PREFIX}{seq:020}{TEMP_FILE_SUFFIX}"));
    if let Err(error) = write_synced(&temp_path, &encode_header(seq, state), state) {
        // Best effort: a leftover temp file is harmless and `latest` removes it anyway.
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))?;
    sync_directory(dir)?;
    prune_old_snapshots(dir)?;
    Ok(final_path)
}

/// Returns the newest snapshot, verified. A newest snapshot that fails verification is an
/// error naming the file: silently falling back to an older one would hide data loss (a node
/// that falls back does so knowingly, through `newest_first`). Leftover temp files from
/// interrupted writes are deleted.
pub fn latest(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    remove_temp_files(dir)?;
    match newest_first(dir)?.first() {
        Some(newest) => newest.read().map(Some),
        None => Ok(None),
    }
}

/// The snapshots in `dir`, newest first, unread; an absent directory has none. Changes nothing
/// on disk.
pub fn newest_first(dir: &Path) -> Result<Vec<SnapshotFile>, StorageError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut snapshots = list_directory(dir)?.snapshots;
    snapshots.reverse();
    Ok(snapshots)
}

/// Deletes what interrupted writes left behind.
pub fn remove_temp_files(dir: &Path) -> Result<(), StorageError> {
    if !dir.exists() {
        return Ok(());
    }
    for temp_path in &list_directory(dir)?.temp_files {
        fs::remove_file(temp_path).map_err(io_error(temp_path))?;
    }
    Ok(())
}

fn snapshot_file_name(seq: u64) -> String {
    format!("{SNAPSHOT_FILE_PREFIX}{seq:020}{SNAPSHOT_FILE_SUFFIX}")
}

fn encode_header(seq: u64, state: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..24].copy_from_slice(&(state.len() as u64).to_le_bytes());
    header[24..28].copy_from_slice(&crc32fast::hash(state).to_le_bytes());
    let header_crc = crc32fast::hash(&header[..HEADER_CHECKSUMMED_BYTES]);
    header[28..32].copy_from_slice(&header_crc.to_le_bytes());
    header
}

fn write_synced(path: &Path, header: &[u8], state: &[u8]) -> Result<(), StorageError> {
    let mut file = File::create(path).map_err(io_error(path))?;
    file.write_all(header)
        .and_then(|()| file.write_all(state))
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))
}

/// A snapshot file found on disk, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Sequence number of the last log entry the snapshot includes, from its name.
    pub seq: u64,
    pub path: PathBuf,
}

/// Suffix a node gives a snapshot it found damaged and recovered without: it stays on disk for
/// inspection but is no longer a snapshot.
pub const SET_ASIDE_SUFFIX: &str = ".damaged";

impl SnapshotFile {
    /// Reads and verifies the file.
    pub fn read(&self) -> Result<Snapshot, StorageError> {
        read_verified(self)
    }

    /// Renames a damaged snapshot out of the way (`….ecnysnap.damaged`), durably.
    pub fn set_aside(&self) -> Result<PathBuf, StorageError> {
        let mut aside = self.path.clone().into_os_string();
        aside.push(SET_ASIDE_SUFFIX);
        let aside = PathBuf::from(aside);
        fs::rename(&self.path, &aside).map_err(io_error(&aside))?;
        if let Some(dir) = self.path.parent() {
            sync_directory(dir)?;
        }
        Ok(aside)
    }
}

struct Listing {
    /// Sorted by sequence number, oldest first.
    snapshots: Vec<SnapshotFile>,
    temp_files: Vec<PathBuf>,
}

fn list_directory(dir: &Path) -> Result<Listing, StorageError> {
    let mut listing = Listing {
        snapshots: Vec::new(),
        temp_files: Vec::new(),
    };
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|name| name.strip_prefix(SNAPSHOT_FILE_PREFIX))
        else {
            continue;
        };
        if rest.ends_with(TEMP_FILE_SUFFIX) {
            listing.temp_files.push(entry.path());
        } else if let Some(digits) = rest.strip_suffix(SNAPSHOT_FILE_SUFFIX) {
            let path = entry.path();
            let seq = parse_seq_digits(digits).ok_or_else(|| StorageError::Corrupt {
                segment: path.clone(),
                offset: 0,
                reason: "snapshot file name does not encode a sequence number".into(),
            })?;
            listing.snapshots.push(SnapshotFile { seq, path });
        }
    }
    listing.snapshots.sort_by_key(|snapshot| snapshot.seq);
    Ok(listing)
}

fn parse_seq_digits(digits: &str) -> Option<u64> {
    if digits.len() != SNAPSHOT_NAME_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn prune_old_snapshots(dir: &Path) -> Result<(), StorageError> {
    let snapshots = list_directory(dir)?.snapshots;
    let excess_count = snapshots.len().saturating_sub(SNAPSHOTS_KEPT_COUNT);
    for old in &snapshots[..excess_count] {
        fs::remove_file(&old.path).map_err(io_error(&old.path))?;
    }
    if excess_count > 0 {
        sync_directory(dir)?;
    }
    Ok(())
}

fn read_verified(file: &SnapshotFile) -> Result<Snapshot, StorageError> {
    let mut bytes = fs::read(&file.path).map_err(io_error(&file.path))?;
    verify(file.seq, &bytes).map_err(|reason| StorageError::Corrupt {
        segment: file.path.clone(),
        offset: 0,
        reason,
    })?;
    // Drop the header in place rather than copying the (possibly large) state.
    bytes.drain(..SNAPSHOT_HEADER_BYTES);
    Ok(Snapshot {
        seq: file.seq,
        state: bytes,
        path: file.path.clone(),
    })
}

/// Checks header and state against each other and the file name; returns why not on failure.
fn verify(name_seq: u64, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(format!(
            "file is {} bytes, shorter than the snapshot header",
            bytes.len()
        ));
    }
    let field_u64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let field_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic".into());
    }
    if crc32fast::hash(&bytes[..HEADER_CHECKSUMMED_BYTES]) != field_u32(28) {
        return Err("snapshot header checksum mismatch".into());
    }
    let header_seq = field_u64(8);
    if header_seq != name_seq {
        return Err(format!(
            "header sequence {header_seq} does not match the file name's {name_seq}"
        ));
    }
    let state = &bytes[SNAPSHOT_HEADER_BYTES..];
    let state_len = field_u64(16);
    if state_len != state.len() as u64 {
        return Err(format!(
            "header says {state_len} state bytes but the file holds {}",
            state.len()
        ));
    }
    if crc32fast::hash(state) != field_u32(24) {
        return Err("state checksum mismatch".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::ScratchDir;

    fn snapshot_seqs(dir: &Path) -> Vec<u64> {
        list_directory(dir)
            .unwrap()
            .snapshots
            .iter()
            .map(|snapshot| snapshot.seq)
            .collect()
    }

    #[test]
    fn write_then_latest_round_trips() {
        let scratch = ScratchDir::new("snap-round-trip");
        let dir = scratch.path().join("snapshots");
        let path = write(&dir, 17, b"ledger state").unwrap();
        assert_eq!(path, dir.join("snapshot-00000000000000000017.ecnysnap"));
        let snapshot = latest(&dir).unwrap().expect("a snapshot");
        assert_eq!(
            snapshot,
            Snapshot {
                seq: 17,
                state: b"ledger state".to_vec(),
                path,
            }
        );
    }

    #[test]
    fn empty_state_round_trips() {
        let scratch = ScratchDir::new("snap-empty-state");
        write(scratch.path(), 1, b"").unwrap();
        let snapshot = latest(scratch.path()).unwrap().expect("a snapshot");
        assert!(snapshot.state.is_empty());
    }

    #[test]
    fn latest_of_missing_or_empty_directory_is_none() {
        let scratch = ScratchDir::new("snap-none");
        assert_eq!(latest(scratch.path()).unwrap(), None);
        assert_eq!(latest(&scratch.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn only_two_newest_snapshots_are_kept() {
        let scratch = ScratchDir::new("snap-keep-two");
        for seq in [5, 9, 12, 30] {
            write(scratch.path(), seq, &seq.to_le_bytes()).unwrap();
        }
        assert_eq!(snapshot_seqs(scratch.path()), vec![12, 30]);
        let snapshot = latest(scratch.path()).unwrap().unwrap();
        assert_eq!(snapshot.seq, 30);
        assert_eq!(snapshot.state, 30u64.to_le_bytes());
    }

    #[test]
    fn corrupt_newest_snapshot_is_an_error_naming_the_file() {
        let scratch = ScratchDir::new("snap-corrupt");
        write(scratch.path(), 3, b"older state").unwrap();
        let newest = write(scratch.path(), 8, b"newer state").unwrap();
        let mut bytes = fs::read(&newest).unwrap();
        bytes[SNAPSHOT_HEADER_BYTES + 2] ^= 0x01;
        fs::write(&newest, &bytes).unwrap();
        let error = latest(scratch.path()).unwrap_err();
        match &error {
            StorageError::Corrupt {
                segment,
                offset,
                reason,
            } => {
                assert_eq!(segment, &newest);
                assert_eq!(*offset, 0);
                assert_eq!(reason, "state checksum mismatch");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        assert_eq!(error.code(), "SNAPSHOT_CORRUPT");
        assert!(error.to_string().contains(&newest.display().to_string()));
    }

    #[test]
    fn truncated_newest_snapshot_is_an_error() {
        let scratch = ScratchDir::new("snap-truncated");
        let newest = write(scratch.path(), 4, b"some state bytes").unwrap();
        let bytes = fs::read(&newest).unwrap();
        fs::write(&newest, &bytes[..bytes.len() - 1]).unwrap();
        let error = latest(scratch.path()).unwrap_err();
        assert!(error.to_string().contains("state bytes but the file holds"));
        fs::write(&newest, &bytes[..10]).unwrap();
        let error = latest(scratch.path()).unwrap_err();
        assert!(error
            .to_string()
            .contains("shorter than the snapshot header"));
    }

    #[test]
    fn renamed_snapshot_with_mismatched_sequence_is_an_error() {
        let scratch = ScratchDir::new("snap-renamed");
        let written = write(scratch.path(), 4, b"state").unwrap();
        let renamed = scratch.path().join(snapshot_file_name(6));
        fs::rename(&written, &renamed).unwrap();
        let error = latest(scratch.path()).unwrap_err();
        assert!(error.to_string().contains("does not match the file name"));
    }

    #[test]
    fn leftover_temp_files_are_ignored_and_removed() {
        let scratch = ScratchDir::new("snap-temp");
        write(scratch.path(), 2, b"good state").unwrap();
        let temp_path = scratch
            .path()
            .join(format!("snapshot-{:020}{TEMP_FILE_SUFFIX}", 9));
        fs::write(&temp_path, b"half-written garbage").unwrap();
        let snapshot = latest(scratch.path()).unwrap().expect("a snapshot");
        assert_eq!(snapshot.seq, 2);
        assert_eq!(snapshot.state, b"good state");
        assert!(!temp_path.exists());
    }
}

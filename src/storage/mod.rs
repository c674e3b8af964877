//! Durable embedded storage for the deterministic state machine: an append-only,
//! checksummed command log with group commit ([`log`]) plus atomic snapshots ([`snapshot`]).
//!
//! This module deals only in opaque payload bytes tagged with sequence numbers; encoding
//! commands and state is the caller's job.

pub mod log;
pub mod snapshot;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::storage::log::{CommandLog, OpenError, RecoveryReport, TornTail};
pub use crate::storage::snapshot::Snapshot;

/// Everything that can go wrong in durable storage; `code()` gives a stable identifier.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "{} {} is corrupt at byte offset {offset} ({reason}); refusing to start — \
         restore the file from a replica or backup",
        file_kind(segment),
        segment.display()
    )]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error(
        "data directory {} is locked by another process (it holds {}/LOCK); \
         stop the other instance before starting this one",
        dir.display(),
        dir.display()
    )]
    Locked { dir: PathBuf },

    #[error("log entry of {bytes} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge { bytes: usize, max: usize },

    #[error(
        "log in {} lacks entries {first_missing}..={last_missing}, which recovery needs; \
         refusing to start — restore the log directory from a replica or backup",
        dir.display()
    )]
    MissingEntries {
        dir: PathBuf,
        first_missing: u64,
        last_missing: u64,
    },

    #[error(
        "log in {} is unusable after an earlier failed write or fsync; \
         its on-disk state is unknown — restart the process to recover from disk",
        dir.display()
    )]
    Poisoned { dir: PathBuf },
}

impl StorageError {
    /// Stable machine-readable code for logs, metrics and operator tooling.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "STORAGE_IO",
            StorageError::Corrupt { segment, .. } if is_snapshot_path(segment) => {
                "SNAPSHOT_CORRUPT"
            }
            StorageError::Corrupt { .. } => "LOG_CORRUPT",
            StorageError::Locked { .. } => "DATA_DIR_LOCKED",
            StorageError::EntryTooLarge { .. } => "ENTRY_TOO_LARGE",
            StorageError::MissingEntries { .. } => "LOG_ENTRIES_MISSING",
            StorageError::Poisoned { .. } => "LOG_POISONED",
        }
    }
}

fn is_snapshot_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == snapshot::SNAPSHOT_EXTENSION)
}

fn file_kind(path: &Path) -> &'static str {
    if is_snapshot_path(path) {
        "snapshot"
    } else {
        "log segment"
    }
}

/// Builds a `map_err` adapter that attaches the path an I/O error happened on.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a directory's entries (created, renamed or removed files) durable.
pub(crate) fn sync_directory(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))
}

/// Creates `dir` if missing and makes its existence durable in the parent directory.
pub(crate) fn ensure_directory(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A unique scratch directory under the system temp dir, removed on drop.
    pub(crate) struct ScratchDir {
        path: PathBuf,
    }

    impl ScratchDir {
        pub(crate) fn new(label: &str) -> ScratchDir {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock before 1970")
                .as_nanos();
            let unique = format!(
                "ecny-storage-{label}-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(unique);
            std::fs::create_dir_all(&path).expect("create scratch dir");
            ScratchDir { path }
        }

        pub(crate) fn path(&self) -> &Path {
            &self.path
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_message_names_file_offset_and_reason() {
        let error = StorageError::Corrupt {
            segment: PathBuf::from("/data/log-00000000000000000001.ecnylog"),
            offset: 12345,
            reason: "payload checksum mismatch".to_string(),
        };
        assert_eq!(
            error.to_string(),
            "log segment /data/log-00000000000000000001.ecnylog is corrupt at byte offset 12345 \
             (payload checksum mismatch); refusing to start — restore the file from a replica \
             or backup"
        );
        assert_eq!(error.code(), "LOG_CORRUPT");
    }

    #[test]
    fn codes_are_stable() {
        let snapshot_corrupt = StorageError::Corrupt {
            segment: PathBuf::from("/data/snapshot-00000000000000000007.ecnysnap"),
            offset: 0,
            reason: "state checksum mismatch".to_string(),
        };
        assert_eq!(snapshot_corrupt.code(), "SNAPSHOT_CORRUPT");
        assert!(snapshot_corrupt.to_string().starts_with("snapshot /data/"));
        let locked = StorageError::Locked {
            dir: PathBuf::from("/data"),
        };
        assert_eq!(locked.code(), "DATA_DIR_LOCKED");
        let too_large = StorageError::EntryTooLarge { bytes: 2, max: 1 };
        assert_eq!(too_large.code(), "ENTRY_TOO_LARGE");
        let io = StorageError::Io {
            path: PathBuf::from("/data"),
            source: io::Error::other("disk on fire"),
        };
        assert_eq!(io.code(), "STORAGE_IO");
    }
}

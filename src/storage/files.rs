//! The storage package's own ground: its error type and the file-system steps the log and the
//! snapshots share (durable directories, I/O errors that name their path).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A snapshot file's extension; log segments have another.
pub(crate) const SNAPSHOT_EXTENSION: &str = "ecnysnap";

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
        .is_some_and(|extension| extension == SNAPSHOT_EXTENSION)
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

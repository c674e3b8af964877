//! Durable embedded storage for the deterministic state machine: an append-only,
//! checksummed command log with group commit ([`log`]) plus atomic snapshots ([`snapshot`]).
//!
//! This module deals only in opaque payload bytes tagged with sequence numbers; encoding
//! commands and state is the caller's job.

pub mod files;
pub mod log;
pub mod snapshot;

pub use crate::storage::files::StorageError;
pub use crate::storage::log::{CommandLog, OpenError, RecoveryReport, TornTail};
pub use crate::storage::snapshot::Snapshot;

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
    use std::io;
    use std::path::PathBuf;

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

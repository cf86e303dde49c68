//! Persistence: what a server writes to disk so that it never loses an acknowledged
//! edit. Data flows one way into it (the replica's accepted messages) and out of it only
//! at start-up (recovery).
//!
//! - [`journal`]: append-only segment files of length-prefixed, CRC32C-checksummed
//!   MessagePack messages, with a configurable fsync policy ([`FsyncPolicy`]), and
//!   recovery that stops cleanly at a torn or corrupt tail and reports it.
//! - [`durable`]: [`DurableReplica`], a replica over a directory of snapshots
//!   ([`crate::snapshot`]) and a journal: journal before apply, periodic snapshots with
//!   journal truncation, and start-up from the newest valid snapshot plus the journal
//!   after it.
//! - [`log`]: [`SceneLog`], the trait a server writes a scene's accepted messages
//!   through (append, group commit, read after a position, snapshot), with
//!   [`LocalLog`] (the journal and snapshot directory above) and [`MemoryLog`].
//!
//! Invariant: every message whose [`journal::Journal::append`] returned under
//! [`FsyncPolicy::EveryMessage`] is recovered, and recovery never yields a message that
//! was not appended (every frame is checksummed; a damaged one ends its segment).

pub mod durable;
pub mod journal;
pub mod log;

use std::path::PathBuf;
use std::time::Duration;

pub use durable::DurableReplica;
pub use journal::{Damage, Journal, JournalOptions, Recovery, read_journal};
pub use log::{
    DurableOptions, LocalLog, MemoryLog, SceneLog, SkippedSnapshot, SnapshotWriter,
    SnapshotWritten, StartReport, group_commit,
};

/// When the journal asks the OS to put appended bytes on stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every `append` returns: an acknowledged message survives a crash.
    EveryMessage,
    /// At most this long after an append (checked on the next append, and on
    /// [`journal::Journal::sync`] / drop): a crash loses at most that window.
    Every(Duration),
    /// Never explicitly (the OS writes back when it likes; a crash of the machine may
    /// lose anything not yet written back, a crash of the process loses nothing).
    Never,
}

/// What went wrong reading or writing persistent state.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with this format's magic bytes.
    #[error("{path}: not a vuer-rtc {what} (bad magic bytes)")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
    },
    /// The file was written by a newer format version than this build reads.
    #[error("{path}: format version {found} is newer than this build reads ({supported})")]
    FutureVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The directory holds no journal to read: it is missing, is not a directory, or
    /// has no segment file.
    #[error("{path}: not a vuer-rtc journal ({reason})")]
    NotAJournal {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// A message is too large to be framed.
    #[error("message {id:?} encodes to {bytes} bytes, over the frame limit of {limit}")]
    TooLarge {
        /// The message id.
        id: String,
        /// Its encoded size.
        bytes: usize,
        /// The largest frame the journal writes or reads.
        limit: usize,
    },
}

impl PersistError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> PersistError {
        PersistError::Io {
            path: path.into(),
            source,
        }
    }
}

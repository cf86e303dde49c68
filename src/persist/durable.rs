//! [`DurableReplica`]: a [`Replica`] that survives crashes — every accepted message is
//! journaled before it is applied, a snapshot is written every so often, and start-up
//! is "newest valid snapshot + the journal after it".
//!
//! Directory layout:
//!
//! ```text
//! DIR/journal/00000000000000000000.seg …   the journal (journal.rs)
//! DIR/snapshots/00000000000000001000.snap  a snapshot holding journal indexes < 1000
//! ```
//!
//! Invariants:
//! - a snapshot named `N` holds the effect of every journal message with index `< N`,
//!   and is written atomically (temporary file, fsync, rename, directory fsync);
//! - the newest [`DurableOptions::keep_snapshots`] snapshots are kept, and the journal
//!   is truncated only before the *oldest* kept one: if the newest snapshot is damaged,
//!   recovery falls back to an older one and still finds every message after it;
//! - only messages the replica accepts are journaled: a copy of a held message or a
//!   rejected one (a conflict, a used stamp, older than the base) never is;
//! - a message is appended (and, under [`FsyncPolicy::EveryMessage`](super::FsyncPolicy::EveryMessage), synced) before
//!   the replica applies it, so an acknowledged message is never lost; replaying a
//!   message the snapshot already holds is a no-op (the replica drops duplicates).

use std::path::{Path, PathBuf};

use super::PersistError;
use super::log::{DurableOptions, LocalLog, SceneLog, StartReport};
use crate::op::Message;
use crate::{BatchReport, Replica};

/// A replica backed by a directory of snapshots and a journal (see the module doc).
#[derive(Debug)]
pub struct DurableReplica {
    log: LocalLog,
    replica: Replica,
}

impl DurableReplica {
    /// Opens (or creates) `dir`: restores the newest snapshot that opens, then
    /// applies the journal messages after it.
    ///
    /// # Errors
    /// I/O errors, or a journal segment that is foreign or from a future version.
    /// Damaged snapshots and a damaged journal tail are not errors: they are skipped
    /// and listed in the [`StartReport`].
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::persist::{DurableOptions, DurableReplica};
    /// use vuer_rtc::op::{Message, Op};
    /// let dir = std::env::temp_dir().join(format!("vuer-rtc-durable-doc-{}", std::process::id()));
    /// let msg = Message {
    ///     id: "a:1".into(), client: "a".into(), clock: [("a".to_string(), 1)].into(), lt: 1, ts: 0.0,
    ///     ops: vec![Op::node_insert("", "obj", "Mesh")],
    /// };
    /// let (mut d, _) = DurableReplica::open(&dir, DurableOptions::default()).unwrap();
    /// d.apply(vec![msg]).unwrap();
    /// d.checkpoint().unwrap();
    /// let state = d.replica().to_json();
    /// drop(d);
    /// let (again, report) = DurableReplica::open(&dir, DurableOptions::default()).unwrap();
    /// assert_eq!(again.replica().to_json(), state);
    /// assert!(report.snapshot.is_some());
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(
        dir: impl AsRef<Path>,
        options: DurableOptions,
    ) -> Result<(DurableReplica, StartReport), PersistError> {
        let (log, replica, report) = LocalLog::open(dir, options)?;
        Ok((DurableReplica { log, replica }, report))
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// Decides which messages the replica accepts ([`Replica::screen`]), journals
    /// those, then applies them: duplicates and rejected messages (reported in the
    /// [`BatchReport`]) never reach the journal. When this returns
    /// under [`FsyncPolicy::EveryMessage`](super::FsyncPolicy::EveryMessage), every message is on stable storage. Writes a
    /// snapshot when [`DurableOptions::snapshot_every`] messages were journaled since
    /// the last one.
    ///
    /// # Errors
    /// Journal I/O errors: then nothing was applied (messages journaled before the
    /// error are applied on the next start).
    pub fn apply(&mut self, msgs: Vec<Message>) -> Result<BatchReport, PersistError> {
        // Decide, journal, then apply: only what the replica accepts reaches the
        // journal (a copy or a rejected message never does), and it is on disk
        // before it is applied.
        let (fresh, screened) = self.replica.screen(msgs);
        self.log.append(&fresh)?;
        let mut report = self.replica.apply_owned(fresh);
        debug_assert!(report.rejected.is_empty(), "{report:?}");
        report.duplicates += screened.duplicates;
        report.rejected.splice(0..0, screened.rejected);
        if self.log.snapshot_due() {
            self.checkpoint()?;
        }
        Ok(report)
    }

    /// Folds stable messages into the replica's base ([`Replica::compact`]); the next
    /// snapshot is the smaller for it.
    pub fn compact(&mut self) -> crate::CompactReport {
        self.replica.compact()
    }

    /// Writes a snapshot of everything journaled so far, removes snapshots beyond
    /// [`DurableOptions::keep_snapshots`] and the journal segments the oldest kept one
    /// covers. Returns the snapshot's path.
    ///
    /// # Errors
    /// I/O errors (the previous snapshots and the journal are then untouched).
    pub fn checkpoint(&mut self) -> Result<PathBuf, PersistError> {
        self.log.write_snapshot(&self.replica)
    }

    /// Puts everything journaled so far on stable storage.
    ///
    /// # Errors
    /// The OS's `fsync` error.
    pub fn sync(&mut self) -> Result<(), PersistError> {
        self.log.commit()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }
}

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

use std::fs;
use std::path::{Path, PathBuf};

use super::PersistError;
use super::journal::{Damage, Journal, JournalOptions};
use crate::op::Message;
use crate::snapshot::{SnapshotBuf, SnapshotError};
use crate::{BatchReport, Replica};

/// How a [`DurableReplica`] writes.
#[derive(Clone, Debug, PartialEq)]
pub struct DurableOptions {
    /// The journal's fsync policy and segment size.
    pub journal: JournalOptions,
    /// Write a snapshot (and truncate the journal) after this many journaled
    /// messages; `None`: only on [`DurableReplica::checkpoint`].
    pub snapshot_every: Option<u64>,
    /// Snapshots kept (at least 1; 2 lets recovery survive a damaged newest one).
    pub keep_snapshots: usize,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            journal: JournalOptions::default(),
            snapshot_every: Some(100_000),
            keep_snapshots: 2,
        }
    }
}

/// A snapshot file recovery could not use.
#[derive(Debug)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: SnapshotError,
}

/// What [`DurableReplica::open`] found.
#[derive(Debug, Default)]
pub struct StartReport {
    /// The snapshot the replica started from, with the journal index it covers.
    pub snapshot: Option<(PathBuf, u64)>,
    /// Newer snapshots that could not be used (damaged, foreign, future version).
    pub skipped: Vec<SkippedSnapshot>,
    /// Journal messages applied after the snapshot.
    pub replayed: usize,
    /// Damage found in the journal (a torn or corrupt tail ends its segment).
    pub damage: Vec<Damage>,
    /// What applying the journal did (rejected messages stay rejected).
    pub report: BatchReport,
}

/// A replica backed by a directory of snapshots and a journal (see the module doc).
#[derive(Debug)]
pub struct DurableReplica {
    dir: PathBuf,
    replica: Replica,
    journal: Journal,
    options: DurableOptions,
    since_snapshot: u64,
}

fn snapshot_name(index: u64) -> String {
    format!("{index:020}.snap")
}

/// The snapshots in `dir`, newest first.
fn snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| PersistError::io(dir, e))? {
        let entry = entry.map_err(|e| PersistError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".snap"))
            && stem.len() == 20
            && let Ok(index) = stem.parse::<u64>()
        {
            out.push((index, entry.path()));
        }
    }
    out.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    Ok(out)
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
        let dir = dir.as_ref().to_owned();
        let snap_dir = dir.join("snapshots");
        fs::create_dir_all(&snap_dir).map_err(|e| PersistError::io(&snap_dir, e))?;
        let mut report = StartReport::default();
        let mut replica = None;
        let mut from = 0;
        for (index, path) in snapshots(&snap_dir)? {
            let restored = SnapshotBuf::read(&path).and_then(|b| Replica::from_snapshot(&b));
            match restored {
                Ok(r) => {
                    replica = Some(r);
                    from = index;
                    report.snapshot = Some((path, index));
                    break;
                }
                Err(error) => report.skipped.push(SkippedSnapshot { path, error }),
            }
        }
        let mut replica = replica.unwrap_or_default();
        let (mut journal, recovery) = Journal::open(&dir.join("journal"), options.journal)?;
        // The journal's files may be gone while a snapshot holds their messages: new
        // messages must still be numbered after it.
        journal.skip_to(from)?;
        let after: Vec<Message> = recovery
            .messages
            .into_iter()
            .filter(|(i, _)| *i >= from)
            .map(|(_, m)| m)
            .collect();
        report.replayed = after.len();
        report.damage = recovery.damage;
        report.report = replica.apply_owned(after);
        let since_snapshot = journal.next_index() - from.min(journal.next_index());
        Ok((
            DurableReplica {
                dir,
                replica,
                journal,
                options,
                since_snapshot,
            },
            report,
        ))
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
        for m in &fresh {
            self.journal.append(m)?;
        }
        self.since_snapshot += fresh.len() as u64;
        let mut report = self.replica.apply_owned(fresh);
        debug_assert!(report.rejected.is_empty(), "{report:?}");
        report.duplicates += screened.duplicates;
        report.rejected.splice(0..0, screened.rejected);
        if self
            .options
            .snapshot_every
            .is_some_and(|n| self.since_snapshot >= n.max(1))
        {
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
        self.journal.sync()?;
        let index = self.journal.next_index();
        let snap_dir = self.dir.join("snapshots");
        let path = snap_dir.join(snapshot_name(index));
        self.replica
            .snapshot()
            .write_atomic(&path)
            .map_err(|e| match e {
                SnapshotError::Io(source) => PersistError::io(&path, source),
                other => PersistError::io(&path, std::io::Error::other(other.to_string())),
            })?;
        self.since_snapshot = 0;
        let all = snapshots(&snap_dir)?;
        let keep = self.options.keep_snapshots.max(1);
        for (_, old) in all.iter().skip(keep) {
            fs::remove_file(old).map_err(|e| PersistError::io(old, e))?;
        }
        if let Some(&(oldest, _)) = all.get(keep - 1).or(all.last()) {
            self.journal.truncate_before(oldest)?;
        }
        Ok(path)
    }

    /// Puts everything journaled so far on stable storage.
    ///
    /// # Errors
    /// The OS's `fsync` error.
    pub fn sync(&mut self) -> Result<(), PersistError> {
        self.journal.sync()
    }
}

//! [`SceneLog`]: where a server puts a scene's accepted messages before it acknowledges
//! them — a small trait so that the storage can change (a local journal today, a
//! replicated stream later) while the scene's logic stays the same.
//!
//! A log is a sequence of accepted messages, each at a *position* (0, 1, …), plus
//! snapshots of the replica that hold every message below some position. Its
//! implementations here:
//!
//! - [`LocalLog`]: a directory with a [`Journal`] and snapshot files — the embedded
//!   default, no external service;
//! - [`MemoryLog`]: nothing kept (a server run with `--memory`).
//!
//! Invariants (each implementation keeps them):
//! - positions are dense and never reused: [`SceneLog::append`] gives `msgs[i]` the
//!   position `position() + i` as it was before the call;
//! - once [`SceneLog::commit`] returns `Ok`, every message appended before it is on
//!   stable storage ([`LocalLog`]: one `fsync` for all of them, the group commit) and
//!   will be part of what [`LocalLog::open`] recovers;
//! - a snapshot written by [`SceneLog::snapshot`] holds every message appended before
//!   it; truncation removes only messages that the *oldest* kept snapshot holds;
//! - a snapshot begun with [`SceneLog::begin_snapshot`] is named by the position at
//!   that moment (everything before it synced first) and written from a copy of the
//!   replica taken at that moment, off the owner's thread, while appends go on; until
//!   [`SceneLog::finish_snapshot`] nothing is truncated, and a crash before it leaves
//!   the older snapshots and the whole journal in place.

use std::fs;
use std::path::{Path, PathBuf};

use super::journal::{Damage, Journal, JournalOptions, read_journal};
use super::{FsyncPolicy, PersistError};
use crate::Replica;
use crate::op::{Limits, Message};
use crate::snapshot::{SnapshotBuf, SnapshotError};

/// A scene's log of accepted messages (see the module doc).
pub trait SceneLog: Send + std::fmt::Debug {
    /// Appends accepted messages in order; returns the position of the first. They are
    /// durable once [`SceneLog::commit`] returns.
    ///
    /// # Errors
    /// I/O errors: the messages from the failing one on were not appended.
    fn append(&mut self, msgs: &[Message]) -> Result<u64, PersistError>;

    /// [`SceneLog::append`] of messages the caller has already encoded with
    /// [`crate::wire::encode_message`] (MessagePack), `encoded[i]` for `msgs[i]`: a log
    /// that stores that encoding takes the bytes as they are (one encoding per message
    /// for a server that also broadcasts them). The default ignores them.
    ///
    /// # Errors
    /// As [`SceneLog::append`].
    fn append_encoded(
        &mut self,
        msgs: &[Message],
        encoded: &[Vec<u8>],
    ) -> Result<u64, PersistError> {
        let _ = encoded;
        self.append(msgs)
    }

    /// Puts every appended message on stable storage (the group commit).
    ///
    /// # Errors
    /// The storage's error; nothing appended since the last commit may be relied on.
    fn commit(&mut self) -> Result<(), PersistError>;

    /// The held messages at positions `≥ from`, in order, with their positions
    /// (messages below the oldest kept snapshot may be truncated away).
    ///
    /// # Errors
    /// I/O errors.
    fn read_from(&self, from: u64) -> Result<Vec<(u64, Message)>, PersistError>;

    /// Writes a snapshot of `replica`, which must hold every appended message, and
    /// truncates what older snapshots make redundant.
    ///
    /// # Errors
    /// I/O errors (the earlier snapshots and the journal are then untouched).
    fn snapshot(&mut self, replica: &Replica) -> Result<(), PersistError>;

    /// Begins a snapshot that is written elsewhere while appends go on (a server's
    /// scene keeps merging meanwhile): everything appended so far is put on stable
    /// storage first (so a snapshot never names a position the journal could lose on a
    /// crash), then the returned writer must be given a copy of the replica as it is
    /// *now* (holding every appended message and nothing more), and what it returns
    /// handed to [`SceneLog::finish_snapshot`]. `Ok(None)`: this log writes snapshots
    /// only through [`SceneLog::snapshot`] (the default).
    ///
    /// # Errors
    /// The storage's error from putting the appended messages on stable storage.
    fn begin_snapshot(&mut self) -> Result<Option<SnapshotWriter>, PersistError> {
        Ok(None)
    }

    /// Ends a snapshot begun with [`SceneLog::begin_snapshot`] once its writer
    /// succeeded: removes what older snapshots and the journal no longer need.
    ///
    /// # Errors
    /// I/O errors while pruning (the new snapshot is in place; nothing is lost).
    fn finish_snapshot(&mut self, written: SnapshotWritten) -> Result<(), PersistError> {
        let _ = written;
        Ok(())
    }

    /// True when enough messages were appended since the last snapshot that the
    /// owner should write one ([`DurableOptions::snapshot_every`]).
    fn snapshot_due(&self) -> bool;

    /// The position the next appended message gets.
    fn position(&self) -> u64;

    /// Bytes the log holds on its storage (journal and snapshots), for metrics.
    fn stored_bytes(&self) -> u64;
}

/// How a [`LocalLog`] (and a [`super::DurableReplica`]) writes.
#[derive(Clone, Debug, PartialEq)]
pub struct DurableOptions {
    /// The journal's fsync policy and segment size.
    pub journal: JournalOptions,
    /// Write a snapshot (and truncate the journal) after this many journaled
    /// messages; `None`: only when asked.
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

/// What opening a log recovered.
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
    pub report: crate::BatchReport,
}

/// A log in a local directory:
///
/// ```text
/// DIR/journal/00000000000000000000.seg …   the journal (journal.rs)
/// DIR/snapshots/00000000000000001000.snap  a snapshot holding journal indexes < 1000
/// ```
///
/// Snapshots are written atomically (temporary file, fsync, rename, directory fsync);
/// the newest [`DurableOptions::keep_snapshots`] are kept, and the journal is truncated
/// only before the *oldest* kept one: if the newest snapshot is damaged, recovery falls
/// back to an older one and still finds every message after it.
#[derive(Debug)]
pub struct LocalLog {
    dir: PathBuf,
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

/// The total size of the regular files directly in `dir` (0 when it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

/// Writes one snapshot file, off the log's owner (see [`SceneLog::begin_snapshot`]).
#[derive(Debug)]
#[must_use = "a begun snapshot is written with SnapshotWriter::write"]
pub struct SnapshotWriter {
    path: PathBuf,
}

/// A snapshot file a [`SnapshotWriter`] put in place.
#[derive(Debug)]
pub struct SnapshotWritten {
    path: PathBuf,
}

impl SnapshotWriter {
    /// Writes the snapshot of `replica` (atomically: a temporary file renamed into
    /// place). Touches nothing but that file, so it may run on another thread while the
    /// log appends.
    ///
    /// # Errors
    /// I/O errors (no snapshot file is then in place).
    pub fn write(self, replica: &Replica) -> Result<SnapshotWritten, PersistError> {
        let path = self.path;
        replica
            .snapshot()
            .write_atomic(&path)
            .map_err(|e| match e {
                SnapshotError::Io(source) => PersistError::io(&path, source),
                other => PersistError::io(&path, std::io::Error::other(other.to_string())),
            })?;
        Ok(SnapshotWritten { path })
    }
}

impl SnapshotWritten {
    /// The snapshot file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LocalLog {
    /// Opens (or creates) the log in `dir` and recovers its replica: the newest
    /// snapshot that opens, then the journal messages after it.
    ///
    /// # Errors
    /// I/O errors, or a journal segment that is foreign or from a future version.
    /// Damaged snapshots and a damaged journal tail are not errors: they are skipped
    /// and listed in the [`StartReport`].
    pub fn open(
        dir: impl AsRef<Path>,
        options: DurableOptions,
    ) -> Result<(LocalLog, Replica, StartReport), PersistError> {
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
        // Recovery replays without compacting: the owner decides when (a server waits
        // for its sessions).
        let auto = replica.auto_compact_every();
        replica.set_auto_compact(None);
        report.report = replica.apply_owned(after);
        replica.set_auto_compact(auto);
        let since_snapshot = journal.next_index() - from.min(journal.next_index());
        let log = LocalLog {
            dir,
            journal,
            options,
            since_snapshot,
        };
        Ok((log, replica, report))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot of `replica` (holding every appended message) and returns its
    /// path; removes snapshots beyond [`DurableOptions::keep_snapshots`] and the journal
    /// segments the oldest kept one covers.
    ///
    /// # Errors
    /// I/O errors (the previous snapshots and the journal are then untouched).
    pub fn write_snapshot(&mut self, replica: &Replica) -> Result<PathBuf, PersistError> {
        self.journal.sync()?;
        let written = self.begin().write(replica)?;
        let path = written.path.clone();
        self.finish(written)?;
        Ok(path)
    }

    /// The writer of a snapshot at the current position.
    fn begin(&mut self) -> SnapshotWriter {
        self.since_snapshot = 0;
        let index = self.journal.next_index();
        SnapshotWriter {
            path: self.dir.join("snapshots").join(snapshot_name(index)),
        }
    }

    /// Keeps the newest snapshots and the journal segments the oldest kept one needs.
    fn finish(&mut self, _written: SnapshotWritten) -> Result<(), PersistError> {
        let snap_dir = self.dir.join("snapshots");
        let all = snapshots(&snap_dir)?;
        let keep = self.options.keep_snapshots.max(1);
        for (_, old) in all.iter().skip(keep) {
            fs::remove_file(old).map_err(|e| PersistError::io(old, e))?;
        }
        if let Some(&(oldest, _)) = all.get(keep - 1).or(all.last()) {
            self.journal.truncate_before(oldest)?;
        }
        Ok(())
    }
}

impl SceneLog for LocalLog {
    fn append(&mut self, msgs: &[Message]) -> Result<u64, PersistError> {
        let encoded: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| crate::wire::encode_message(m, crate::wire::Format::MessagePack))
            .collect();
        self.append_encoded(msgs, &encoded)
    }

    /// One write for the batch (see [`Journal::append_encoded`]).
    fn append_encoded(
        &mut self,
        msgs: &[Message],
        encoded: &[Vec<u8>],
    ) -> Result<u64, PersistError> {
        if encoded.len() != msgs.len() {
            return self.append(msgs);
        }
        let batch: Vec<(&str, &[u8])> = msgs
            .iter()
            .zip(encoded)
            .map(|(m, e)| (m.id.as_str(), e.as_slice()))
            .collect();
        let first = self.journal.append_encoded(&batch)?;
        self.since_snapshot += msgs.len() as u64;
        Ok(first)
    }

    fn commit(&mut self) -> Result<(), PersistError> {
        self.journal.sync()
    }

    fn read_from(&self, from: u64) -> Result<Vec<(u64, Message)>, PersistError> {
        let dir = self.dir.join("journal");
        match read_journal(&dir, &Limits::default()) {
            Ok(r) => Ok(r.messages.into_iter().filter(|(i, _)| *i >= from).collect()),
            // Nothing appended yet: no segment file.
            Err(PersistError::NotAJournal { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn snapshot(&mut self, replica: &Replica) -> Result<(), PersistError> {
        self.write_snapshot(replica).map(|_| ())
    }

    fn begin_snapshot(&mut self) -> Result<Option<SnapshotWriter>, PersistError> {
        self.journal.sync()?;
        Ok(Some(self.begin()))
    }

    fn finish_snapshot(&mut self, written: SnapshotWritten) -> Result<(), PersistError> {
        self.finish(written)
    }

    fn snapshot_due(&self) -> bool {
        self.options
            .snapshot_every
            .is_some_and(|n| self.since_snapshot >= n.max(1))
    }

    fn position(&self) -> u64 {
        self.journal.next_index()
    }

    fn stored_bytes(&self) -> u64 {
        dir_bytes(&self.dir.join("journal")) + dir_bytes(&self.dir.join("snapshots"))
    }
}

/// A log that keeps nothing: positions are counted, nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryLog {
    next: u64,
}

impl SceneLog for MemoryLog {
    fn append(&mut self, msgs: &[Message]) -> Result<u64, PersistError> {
        let first = self.next;
        self.next += msgs.len() as u64;
        Ok(first)
    }

    fn commit(&mut self) -> Result<(), PersistError> {
        Ok(())
    }

    fn read_from(&self, _from: u64) -> Result<Vec<(u64, Message)>, PersistError> {
        Ok(Vec::new())
    }

    fn snapshot(&mut self, _replica: &Replica) -> Result<(), PersistError> {
        Ok(())
    }

    fn snapshot_due(&self) -> bool {
        false
    }

    fn position(&self) -> u64 {
        self.next
    }

    fn stored_bytes(&self) -> u64 {
        0
    }
}

/// The journal options a server uses: appends are synced only by
/// [`SceneLog::commit`], once per batch.
pub fn group_commit(segment_bytes: u64) -> JournalOptions {
    JournalOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes,
    }
}

//! The on-disk journal: a directory of append-only segment files.
//!
//! A segment is named after the index of its first message (`00000000000000000042.seg`,
//! indexes count every message ever appended to the journal, from 0) and holds:
//!
//! ```text
//! header  "VRTCJNL\0"  format version (u32 LE)  0 (u32 LE)           16 bytes
//! frame   payload length n (u32 LE)  CRC32C of (length ‖ payload) (u32 LE)  payload
//! frame   …
//! ```
//!
//! where a payload is one message in MessagePack (`wire::encode_message`). Appends go
//! to the newest segment; a new one starts when it passes
//! [`JournalOptions::segment_bytes`] and every time a journal is opened (an old
//! segment is never appended to, so a torn tail stays where it is until recovery
//! truncates it).
//!
//! Recovery reads the segments in index order and each one frame by frame. A frame that
//! is cut short, fails its checksum, claims more than [`MAX_FRAME`] bytes or does not
//! decode ends its segment: the rest of that file cannot be framed again. It is
//! reported as a [`Damage`], and the following segments are still read (each starts
//! on a frame boundary). On open for writing, a damaged tail of the *newest* segment
//! (what a crash leaves) is cut off so the directory reads clean again.
//!
//! Invariants: a frame is written with one `write_all` after its segment's header;
//! recovery yields exactly the frames whose checksum holds, in append order, up to the
//! first damaged frame of each segment.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{FsyncPolicy, PersistError};
use crate::op::{Limits, Message};
use crate::wire::{self, Format};

/// The segment header's magic bytes.
pub const MAGIC: [u8; 8] = *b"VRTCJNL\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Header bytes at the start of a segment.
pub const HEADER: usize = 16;
/// Frame prefix: length and checksum.
pub const FRAME_PREFIX: usize = 8;
/// The largest payload a frame may hold (a larger length is damage, not an
/// allocation).
pub const MAX_FRAME: usize = 64 << 20;

/// How a [`Journal`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// When appends reach stable storage.
    pub fsync: FsyncPolicy,
    /// A segment that reaches this many bytes is closed; the next append starts a new
    /// one (truncation removes whole segments).
    pub segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            fsync: FsyncPolicy::EveryMessage,
            segment_bytes: 64 << 20,
        }
    }
}

/// A damaged frame: where recovery stopped reading one segment, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset of the damaged frame (or of the header) in it.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

/// What recovery read from a journal directory.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The intact messages, in append order, each with its journal index.
    pub messages: Vec<(u64, Message)>,
    /// Where a segment ended early: a torn tail after a crash, or corruption.
    pub damage: Vec<Damage>,
    /// One past the largest index held (the index the next append gets).
    pub next_index: u64,
}

/// An open journal, appending to its newest segment (see the module doc).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    options: JournalOptions,
    // The segment appends go to: its path, file and size; `None` until the first
    // append after open or rotation.
    current: Option<(PathBuf, File, u64)>,
    next_index: u64,
    // Bytes appended but not yet synced, and when the oldest of them was written.
    unsynced_since: Option<Instant>,
    frame: Vec<u8>,
}

/// The segment file for the message with index `first`.
fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

/// The segments of `dir`, sorted by their first index.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| PersistError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PersistError::io(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if stem.len() == 20
            && let Ok(first) = stem.parse::<u64>()
        {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Frames `payload`: length, CRC32C of length and payload, payload.
fn frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    out.clear();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

fn header() -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// What one segment holds: its messages (with their indexes), the length of its intact
/// prefix, and the damage that ended it early, if any.
type SegmentRead = (Vec<(u64, Message)>, usize, Option<Damage>);

/// Reads one segment's bytes (its first message has index `first`).
fn read_segment(
    path: &Path,
    bytes: &[u8],
    first: u64,
    limits: &Limits,
) -> Result<SegmentRead, PersistError> {
    let damage = |offset: usize, reason: String| Damage {
        segment: path.to_owned(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < HEADER {
        // A crash right after creating the file: nothing in it was acknowledged.
        let d = damage(
            0,
            format!("header cut short ({} of {HEADER} bytes)", bytes.len()),
        );
        return Ok((Vec::new(), 0, Some(d)));
    }
    if bytes[..8] != MAGIC {
        return Err(PersistError::Foreign {
            path: path.to_owned(),
            what: "journal segment",
        });
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(word);
    if version > VERSION {
        return Err(PersistError::FutureVersion {
            path: path.to_owned(),
            found: version,
            supported: VERSION,
        });
    }
    let mut messages = Vec::new();
    let mut at = HEADER;
    let mut index = first;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < FRAME_PREFIX {
            let d = damage(at, format!("frame prefix cut short ({} bytes)", rest.len()));
            return Ok((messages, at, Some(d)));
        }
        word.copy_from_slice(&rest[..4]);
        let len = u32::from_le_bytes(word) as usize;
        word.copy_from_slice(&rest[4..8]);
        let crc = u32::from_le_bytes(word);
        if len > MAX_FRAME {
            let d = damage(
                at,
                format!("frame length {len} over the limit of {MAX_FRAME}"),
            );
            return Ok((messages, at, Some(d)));
        }
        let Some(payload) = rest.get(FRAME_PREFIX..FRAME_PREFIX + len) else {
            let d = damage(
                at,
                format!(
                    "frame cut short ({} of {len} payload bytes)",
                    rest.len() - FRAME_PREFIX
                ),
            );
            return Ok((messages, at, Some(d)));
        };
        if crc32c::crc32c_append(crc32c::crc32c(&rest[..4]), payload) != crc {
            let d = damage(at, "checksum mismatch".to_owned());
            return Ok((messages, at, Some(d)));
        }
        match wire::decode_message(payload, Format::MessagePack, limits) {
            Ok(m) => messages.push((index, m)),
            Err(e) => {
                let d = damage(
                    at,
                    format!("checksum holds but the message does not decode: {e}"),
                );
                return Ok((messages, at, Some(d)));
            }
        }
        index += 1;
        at += FRAME_PREFIX + len;
    }
    Ok((messages, at, None))
}

/// Reads every intact message of the journal in `dir` (see the module doc). Changes
/// nothing on disk.
///
/// # Errors
/// [`PersistError::NotAJournal`] when `dir` is missing, is not a directory or holds no
/// segment file (a journal has one from its first append on: nothing to recover is not
/// an empty journal but a wrong path); I/O errors; a segment that is not a journal
/// segment, or one from a newer format.
pub fn read_journal(dir: &Path, limits: &Limits) -> Result<Recovery, PersistError> {
    let not_a_journal = |reason| PersistError::NotAJournal {
        path: dir.to_owned(),
        reason,
    };
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_a_journal("no such directory"));
        }
        Err(e) => return Err(PersistError::io(dir, e)),
        Ok(m) if !m.is_dir() => return Err(not_a_journal("not a directory")),
        Ok(_) => {}
    }
    let segs = segments(dir)?;
    if segs.is_empty() {
        return Err(not_a_journal("no segment files"));
    }
    read_segments(segs, limits).map(|(r, _)| r)
}

/// The newest segment as recovery read it.
struct Newest {
    path: PathBuf,
    /// Bytes up to the end of its last intact frame.
    intact: usize,
    /// Intact messages in it.
    messages: usize,
}

/// Reads `segs` (sorted by first index), and what the newest segment holds.
fn read_segments(
    segs: Vec<(u64, PathBuf)>,
    limits: &Limits,
) -> Result<(Recovery, Option<Newest>), PersistError> {
    let mut out = Recovery::default();
    let mut newest = None;
    for (first, path) in segs {
        let bytes = fs::read(&path).map_err(|e| PersistError::io(&path, e))?;
        let (msgs, intact, damage) = read_segment(&path, &bytes, first, limits)?;
        let (end, messages) = (first + msgs.len() as u64, msgs.len());
        out.next_index = out.next_index.max(end).max(first);
        out.messages.extend(msgs);
        out.damage.extend(damage);
        newest = Some(Newest {
            path,
            intact,
            messages,
        });
    }
    Ok((out, newest))
}

impl Journal {
    /// Opens (creating it if needed) the journal in `dir` for appending, after reading
    /// what it holds. A damaged tail of the newest segment is cut off (it is reported
    /// in the returned [`Recovery`]); appends go to a new segment.
    ///
    /// # Errors
    /// I/O errors, a segment that is not a journal segment, or one from a newer format
    /// (as [`read_journal`]; a directory without segments is a new journal here).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::persist::{Journal, JournalOptions, read_journal};
    /// use vuer_rtc::op::Limits;
    /// let dir = std::env::temp_dir().join(format!("vuer-rtc-doc-{}", std::process::id()));
    /// let json = serde_json::json!({"id": "a:1", "client": "a", "lt": 1, "ops": []});
    /// let msg = vuer_rtc::wire::message_from_json(&json, &Limits::default()).unwrap();
    /// let (mut journal, recovered) = Journal::open(&dir, JournalOptions::default()).unwrap();
    /// assert!(recovered.messages.is_empty());
    /// journal.append(&msg).unwrap();
    /// drop(journal);
    /// let again = read_journal(&dir, &Limits::default()).unwrap();
    /// assert_eq!(again.messages[0].1.id, "a:1");
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Journal, Recovery), PersistError> {
        fs::create_dir_all(dir).map_err(|e| PersistError::io(dir, e))?;
        // A directory without segments is a new, empty journal here.
        let (recovery, newest) = read_segments(segments(dir)?, &Limits::default())?;
        if let Some(Newest {
            path, messages: 0, ..
        }) = &newest
        {
            // A segment created just before a crash, with no message in it: appends go
            // to a new segment with the same first index, so this one goes.
            fs::remove_file(path)
                .and_then(|()| File::open(dir).and_then(|d| d.sync_all()))
                .map_err(|e| PersistError::io(path, e))?;
        } else if let Some(Newest { path, intact, .. }) = newest
            && recovery.damage.iter().any(|d| d.segment == path)
        {
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| PersistError::io(&path, e))?;
            f.set_len(intact as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| PersistError::io(&path, e))?;
        }
        let journal = Journal {
            dir: dir.to_owned(),
            options,
            current: None,
            next_index: recovery.next_index,
            unsynced_since: None,
            frame: Vec::new(),
        };
        Ok((journal, recovery))
    }

    /// The index the next appended message gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Makes the next appended message get at least `index` (after a snapshot that
    /// covers every index below it, when the journal's own files were lost). The open
    /// segment is closed so that the next one starts at `index`.
    ///
    /// # Errors
    /// The `fsync` of the closed segment.
    pub fn skip_to(&mut self, index: u64) -> Result<(), PersistError> {
        if index > self.next_index {
            if self.current.is_some() {
                self.sync()?;
                self.current = None;
            }
            self.next_index = index;
        }
        Ok(())
    }

    /// Appends `msg`; returns its index. Under [`FsyncPolicy::EveryMessage`] the message
    /// is on stable storage when this returns.
    ///
    /// # Errors
    /// I/O errors (the message may then be partly written; recovery drops it), or a
    /// message over [`MAX_FRAME`] bytes (nothing written).
    pub fn append(&mut self, msg: &Message) -> Result<u64, PersistError> {
        let payload = wire::encode_message(msg, Format::MessagePack);
        self.append_encoded(&[(msg.id.as_str(), payload.as_slice())])
    }

    /// Appends a batch of messages already encoded by [`wire::encode_message`]
    /// (MessagePack), each with its id (for errors): one write per batch (per segment
    /// when the batch crosses into a new one) and, under the fsync policy, at most one
    /// sync. Returns the index of the first. The payloads are trusted to be messages:
    /// a reader validates them as it reads them back.
    ///
    /// # Errors
    /// A payload over [`MAX_FRAME`] bytes (nothing written); I/O errors (the batch may
    /// then be partly written: recovery keeps the whole frames and drops a torn one).
    pub fn append_encoded(&mut self, batch: &[(&str, &[u8])]) -> Result<u64, PersistError> {
        if let Some((id, p)) = batch.iter().find(|(_, p)| p.len() > MAX_FRAME) {
            return Err(PersistError::TooLarge {
                id: (*id).to_owned(),
                bytes: p.len(),
                limit: MAX_FRAME,
            });
        }
        let first = self.next_index;
        if batch.is_empty() {
            return Ok(first);
        }
        let mut buf = std::mem::take(&mut self.frame);
        buf.clear();
        let mut one = Vec::new();
        let result = (|| {
            for (_, payload) in batch {
                let size = self.current.as_ref().map_or(0, |c| c.2) + buf.len() as u64;
                if self.current.is_some() && size >= self.options.segment_bytes {
                    // Roll: what is buffered goes to the full segment, the next message
                    // starts a new one named by its index.
                    self.write_raw(&buf)?;
                    buf.clear();
                    self.sync()?;
                    self.current = None;
                }
                if self.current.is_none() {
                    self.current = Some(self.new_segment()?);
                }
                frame_into(&mut one, payload);
                buf.extend_from_slice(&one);
                self.next_index += 1;
            }
            self.write_raw(&buf)
        })();
        self.frame = buf;
        result?;
        match self.options.fsync {
            FsyncPolicy::EveryMessage => self.sync()?,
            FsyncPolicy::Every(window) => match self.unsynced_since {
                Some(t) if t.elapsed() >= window => self.sync()?,
                Some(_) => {}
                None => self.unsynced_since = Some(Instant::now()),
            },
            FsyncPolicy::Never => {}
        }
        Ok(first)
    }

    /// Writes `bytes` (whole frames) to the current segment (none: nothing to do).
    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), PersistError> {
        let Some((path, file, size)) = self.current.as_mut() else {
            return Ok(());
        };
        if bytes.is_empty() {
            return Ok(());
        }
        file.write_all(bytes)
            .map_err(|e| PersistError::io(path.as_path(), e))?;
        *size += bytes.len() as u64;
        Ok(())
    }

    /// Creates the segment for the next index, header written and the directory entry
    /// synced (so the file survives a crash once its frames are synced).
    fn new_segment(&mut self) -> Result<(PathBuf, File, u64), PersistError> {
        let path = self.dir.join(segment_name(self.next_index));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| PersistError::io(&path, e))?;
        file.write_all(&header())
            .and_then(|()| file.sync_all())
            .map_err(|e| PersistError::io(&path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| PersistError::io(&self.dir, e))?;
        Ok((path, file, HEADER as u64))
    }

    /// Puts everything appended so far on stable storage.
    ///
    /// # Errors
    /// The OS's `fsync` error.
    pub fn sync(&mut self) -> Result<(), PersistError> {
        if let Some((path, file, _)) = self.current.as_ref() {
            file.sync_data()
                .map_err(|e| PersistError::io(path.as_path(), e))?;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// Removes every segment whose messages all have indexes below `index` (after a
    /// snapshot that covers them). The segment being appended to is kept. Returns how
    /// many files were removed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn truncate_before(&mut self, index: u64) -> Result<usize, PersistError> {
        let segs = segments(&self.dir)?;
        let current = self.current.as_ref().map(|c| c.0.clone());
        let mut removed = 0;
        for (k, (_, path)) in segs.iter().enumerate() {
            // A segment ends where the next one starts.
            let Some(&(next_first, _)) = segs.get(k + 1) else {
                break;
            };
            if next_first <= index && Some(path) != current.as_ref() {
                fs::remove_file(path).map_err(|e| PersistError::io(path, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| PersistError::io(&self.dir, e))?;
        }
        Ok(removed)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.options.fsync != FsyncPolicy::Never {
            // Best effort: an error here has nobody to go to.
            let _ = self.sync();
        }
    }
}

#[cfg(test)]
mod tests;

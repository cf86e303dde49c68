//! Snapshots: a whole [`Replica`](crate::Replica) as one zero-copy `rkyv` archive.
//!
//! - [`Replica::snapshot`](crate::Replica::snapshot) writes one;
//! - [`SnapshotView::open`] reads nodes, properties, children and the scene tree
//!   straight from the bytes (an mmap or a file read into a [`SnapshotBuf`]), without
//!   deserializing: every access is a bounds-checked array read;
//! - [`Replica::from_snapshot`](crate::Replica::from_snapshot) restores a live replica
//!   that goes on exactly like the original (late messages, undo, compaction).
//!
//! File layout (`docs/format.md`): a 32-byte header, then the archive.
//!
//! | bytes  | field                                              |
//! |--------|----------------------------------------------------|
//! | 0..8   | magic `VRTCSNAP`                                   |
//! | 8..12  | format version (u32 LE), [`FORMAT_VERSION`]        |
//! | 12..16 | flags (u32 LE), 0 (anything else is refused)       |
//! | 16..24 | archive length in bytes (u64 LE)                   |
//! | 24..28 | CRC32C of the archive (u32 LE)                     |
//! | 28..32 | reserved, 0 (anything else is refused)             |
//!
//! Invariants:
//! - untrusted bytes are only ever read through [`SnapshotView::open`]: header checks
//!   (foreign, future version, truncated), the checksum, then rkyv's checked access.
//!   None of these can panic or read out of bounds; a bad file is a [`SnapshotError`];
//! - the only unchecked path is the `unsafe` [`SnapshotView::open_unchecked`], for
//!   bytes this process wrote (its contract is on the function);
//! - the archive starts 32 bytes into the buffer, so a 16-aligned buffer gives an
//!   aligned archive; a misaligned one is refused ([`SnapshotError::Misaligned`]), never
//!   read.

mod format;
mod restore;
mod seq;
mod view;
mod write;

use std::path::Path;

use rkyv::util::AlignedVec;

pub use view::{ColumnInfo, NodeView, PropRef, SnapshotInfo, SnapshotView};

/// The first 8 bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"VRTCSNAP";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes before the archive.
pub const HEADER_LEN: usize = 32;

/// Why a snapshot could not be opened or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not start with the snapshot magic.
    #[error("not a vuer-rtc snapshot (bad magic)")]
    Foreign,
    /// Written by a newer build.
    #[error("snapshot format version {found} is newer than this build's ({supported})")]
    FutureVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Fewer bytes than the header says.
    #[error("snapshot truncated: {expected} bytes expected, {got} present")]
    Truncated {
        /// Bytes the header announces (header included).
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The checksum does not match: the bytes were damaged.
    #[error("snapshot corrupted: checksum {found:#010x}, expected {expected:#010x}")]
    Checksum {
        /// CRC32C in the header.
        expected: u32,
        /// CRC32C of the bytes.
        found: u32,
    },
    /// The archive's structure or content is invalid.
    #[error("snapshot invalid: {0}")]
    Invalid(String),
    /// The buffer is not 16-byte aligned (read files into a [`SnapshotBuf`]).
    #[error("snapshot buffer is not 16-byte aligned; read it into a SnapshotBuf")]
    Misaligned,
    /// Reading or writing the file failed.
    #[error("snapshot i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Snapshot bytes in a 16-byte aligned buffer, ready for [`SnapshotView::open`].
#[derive(Clone, Debug, Default)]
pub struct SnapshotBuf(AlignedVec<16>);

impl SnapshotBuf {
    /// Copies `bytes` into an aligned buffer.
    pub fn from_bytes(bytes: &[u8]) -> SnapshotBuf {
        let mut v = AlignedVec::<16>::with_capacity(bytes.len());
        v.extend_from_slice(bytes);
        SnapshotBuf(v)
    }

    /// Reads a snapshot file.
    ///
    /// # Errors
    /// The file could not be read.
    pub fn read(path: impl AsRef<Path>) -> Result<SnapshotBuf, SnapshotError> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut v = AlignedVec::<16>::with_capacity(usize::try_from(len).unwrap_or(0));
        std::io::copy(&mut f, &mut v)?;
        Ok(SnapshotBuf(v))
    }

    /// Writes the bytes to `path` atomically: a temporary file in the same directory,
    /// synced, then renamed over `path` (and the directory synced), so a crash leaves
    /// either the old file or the new one.
    ///
    /// # Errors
    /// Writing, syncing or renaming failed.
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        use std::io::Write;
        let path = path.as_ref();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.0)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Directories cannot be synced on every platform; the rename stands anyway.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for SnapshotBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SnapshotBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The header's fields, checked against the buffer: returns the archive bytes and the
/// stored checksum.
fn split_header(bytes: &[u8]) -> Result<(&[u8], u32), SnapshotError> {
    let word = |at: usize| -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(SnapshotError::Foreign);
    }
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::Truncated {
            expected: HEADER_LEN as u64,
            got: bytes.len() as u64,
        });
    }
    let version = word(8);
    if version > FORMAT_VERSION {
        return Err(SnapshotError::FutureVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(SnapshotError::Invalid("format version 0".into()));
    }
    if word(12) != 0 || word(28) != 0 {
        return Err(SnapshotError::Invalid(format!(
            "unknown header flags {:#x} / reserved word {:#x}",
            word(12),
            word(28)
        )));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let expected = len.saturating_add(HEADER_LEN as u64);
    if (bytes.len() as u64) < expected {
        return Err(SnapshotError::Truncated {
            expected,
            got: bytes.len() as u64,
        });
    }
    if (bytes.len() as u64) > expected {
        return Err(SnapshotError::Invalid(format!(
            "{} bytes after the archive",
            bytes.len() as u64 - expected
        )));
    }
    if bytes.as_ptr().align_offset(16) != 0 {
        return Err(SnapshotError::Misaligned);
    }
    Ok((&bytes[HEADER_LEN..], word(24)))
}

/// Prepends the header to an archive written after [`HEADER_LEN`] placeholder bytes.
fn finish_header(buf: &mut AlignedVec<16>) {
    let archive_len = (buf.len() - HEADER_LEN) as u64;
    let crc = crc32c::crc32c(&buf[HEADER_LEN..]);
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&archive_len.to_le_bytes());
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    buf[..HEADER_LEN].copy_from_slice(&h);
}

#[cfg(test)]
mod tests;

//! The byte-level fuzz checks (`apply_json`, `apply_msgpack`, `snapshot`, `journal`),
//! free of fuzzing dependencies so that the root crate's `tests/fuzz_regressions.rs`
//! runs the saved regression inputs through exactly these functions (it includes this
//! file with `#[path]`). Each panics when an invariant fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "fuzz checks panic on purpose"
)]

use std::path::PathBuf;
use std::sync::OnceLock;

use vuer_rtc::op::{Limits, Message};
use vuer_rtc::persist::journal::{HEADER, MAGIC, VERSION};
use vuer_rtc::persist::{Journal, JournalOptions, read_journal};
use vuer_rtc::replica::Replica;
use vuer_rtc::snapshot::{SnapshotBuf, SnapshotView};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{apply_messages, create_empty_graph};

/// Journals up to this many messages are also replayed one message at a time (longer
/// ones only as a batch, to keep an execution fast).
const ONE_BY_ONE_MAX: usize = 64;

/// The messages a replica holds, in journal slot order.
pub fn journal_messages(r: &Replica) -> Vec<Message> {
    r.journaled_messages()
}

/// The state of the sequential model over `msgs`.
pub fn model_json(msgs: &[Message]) -> String {
    let mut g = create_empty_graph();
    apply_messages(&mut g, msgs);
    g.to_json()
}

/// `decode(encode(msgs)) == msgs` in both formats.
pub fn assert_round_trip(msgs: &[Message]) {
    for format in [Format::Json, Format::MessagePack] {
        let bytes = wire::encode_messages(msgs, format);
        let back = wire::decode_messages(&bytes, format, &Limits::default())
            .unwrap_or_else(|e| panic!("{format:?} re-decode of held messages failed: {e}"));
        assert!(back == msgs, "{format:?} round trip changed the messages");
    }
}

/// `apply_bytes` never panics, `to_json` parses, and the journal (re-encoded) gives the
/// same state when applied again as a batch, through `apply_messages`, and one message
/// at a time in journal order and newest first.
pub fn check_apply(data: &[u8], format: Format) {
    let mut r = Replica::new();
    let report = r.apply_bytes(data, format);
    let json = r.to_json();
    serde_json::from_str::<serde_json::Value>(&json).expect("to_json is not JSON");
    let msgs = journal_messages(&r);
    assert_eq!(report.accepted, msgs.len(), "accepted != journal length");
    if msgs.is_empty() {
        return;
    }
    assert_round_trip(&msgs);

    // The journal, encoded and applied again as one batch.
    let bytes = wire::encode_messages(&msgs, Format::MessagePack);
    let mut again = Replica::new();
    let rep = again.apply_bytes(&bytes, Format::MessagePack);
    assert!(
        rep.rejected.is_empty(),
        "re-applying the journal rejected {:?}",
        rep.rejected
    );
    assert_eq!(
        again.to_json(),
        json,
        "journal re-applied as a batch differs"
    );

    // The sequential model on the accepted messages.
    assert_eq!(
        model_json(&msgs),
        json,
        "apply_messages differs from the replica"
    );

    // One message per batch, in journal order and newest arrival first (then every
    // message but the first is late).
    if msgs.len() <= ONE_BY_ONE_MAX {
        let mut fwd = Replica::new();
        for m in &msgs {
            fwd.apply_message(m);
        }
        assert_eq!(fwd.to_json(), json, "one-by-one delivery differs");
        let mut rev = Replica::new();
        for m in msgs.iter().rev() {
            rev.apply_message(m);
        }
        assert_eq!(rev.to_json(), json, "reversed one-by-one delivery differs");
    }
}

/// The magic of a snapshot header.
const SNAP_MAGIC: &[u8; 8] = b"VRTCSNAP";
/// Snapshot header bytes.
const SNAP_HEADER: usize = 32;

/// Rewrites a snapshot header so that it is valid for the bytes after it (magic,
/// version 1, flags 0, length, CRC32C), letting the fuzzer reach the archive checks.
pub fn fix_snapshot_header(bytes: &mut Vec<u8>) {
    if bytes.len() < SNAP_HEADER {
        bytes.resize(SNAP_HEADER, 0);
    }
    let len = (bytes.len() - SNAP_HEADER) as u64;
    let crc = crc32c::crc32c(&bytes[SNAP_HEADER..]);
    bytes[0..8].copy_from_slice(SNAP_MAGIC);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&0u32.to_le_bytes());
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    bytes[28..32].copy_from_slice(&0u32.to_le_bytes());
}

/// Walks everything a view offers.
fn walk_view(view: &SnapshotView<'_>) -> String {
    let json = view.to_json();
    serde_json::from_str::<serde_json::Value>(&json).expect("view to_json is not JSON");
    let _ = view.info();
    let _ = view.len();
    if let Some(root) = view.root() {
        let _ = root.key();
    }
    for p in view.paths() {
        let _ = view.vec3_cells(p).count();
    }
    for n in view.nodes() {
        let _ = (n.row(), n.key(), n.tag(), n.name(), n.deleted());
        let _ = n.parent().map(|p| p.key());
        let _ = n.children().count();
        for (path, v) in n.properties() {
            let _ = (v.to_json(), v.as_number(), v.as_vec3(), v.as_str());
            let _ = n.get(path);
        }
        let _ = n.to_json();
        let _ = view.node(n.key()).map(|m| m.row());
    }
    json
}

/// The `snapshot` check. The first byte picks the mode: odd rewrites the 32-byte header
/// to be valid for the rest (see [`fix_snapshot_header`]); even uses the rest as it is.
pub fn check_snapshot(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        fix_snapshot_header(&mut bytes);
    }
    let buf = SnapshotBuf::from_bytes(&bytes);
    if let Ok(view) = SnapshotView::open(buf.as_bytes()) {
        walk_view(&view);
    }
    // Misaligned too: from_snapshot copies such a buffer first.
    let restored = if mode & 2 == 2 {
        Replica::from_snapshot(&bytes)
    } else {
        Replica::from_snapshot(buf.as_bytes())
    };
    let Ok(r) = restored else {
        return;
    };
    let json = r.to_json();
    serde_json::from_str::<serde_json::Value>(&json).expect("restored to_json is not JSON");
    let snap = r.snapshot();
    let view = SnapshotView::open(snap.as_bytes())
        .unwrap_or_else(|e| panic!("a restored replica's snapshot does not reopen: {e}"));
    assert_eq!(walk_view(&view), json, "view of the re-snapshot differs");
    let again = Replica::from_snapshot(snap.as_bytes())
        .unwrap_or_else(|e| panic!("a restored replica's snapshot does not restore: {e}"));
    assert_eq!(again.to_json(), json, "restore of the re-snapshot differs");
}

/// A per-process directory the `journal` target writes its one segment into (under
/// `/dev/shm` when it exists).
fn journal_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs when there is one: `Journal::open` syncs the segment it cuts.
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("vuer-rtc-fuzz-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

/// Rewrites the checksum of every whole frame after the header of `seg`.
pub fn fix_frame_crcs(seg: &mut [u8]) {
    let mut at = HEADER;
    while at + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e <= seg.len()) else {
            return;
        };
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seg[at..at + 4]), &seg[at + 8..end]);
        seg[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// The segment file the `journal` check builds from an input: the first byte picks the
/// mode (bit 0: put a valid 16-byte header in front of the rest; bit 1: fix the
/// checksums of the frames after the header).
pub fn journal_segment(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    let mut seg = Vec::with_capacity(rest.len() + HEADER);
    if mode & 1 == 1 {
        seg.extend_from_slice(&MAGIC);
        seg.extend_from_slice(&VERSION.to_le_bytes());
        seg.extend_from_slice(&0u32.to_le_bytes());
    }
    seg.extend_from_slice(rest);
    if mode & 2 == 2 {
        fix_frame_crcs(&mut seg);
    }
    Some(seg)
}

/// `read_journal` and `Journal::open` never panic and agree, and every recovered message
/// round-trips; see [`journal_segment`] for the input's modes.
pub fn check_journal(data: &[u8]) {
    let Some(seg) = journal_segment(data) else {
        return;
    };
    let dir = journal_dir();
    let file = dir.join("00000000000000000000.seg");
    std::fs::write(&file, &seg).expect("write segment");
    let limits = Limits::default();
    let Ok(rec) = read_journal(dir, &limits) else {
        return;
    };
    assert!(rec.damage.len() <= 1, "one segment, more than one damage");
    let msgs: Vec<Message> = rec.messages.iter().map(|(_, m)| m.clone()).collect();
    for (k, (i, _)) in rec.messages.iter().enumerate() {
        assert_eq!(*i, k as u64, "journal indexes not consecutive from 0");
    }
    assert_eq!(rec.next_index, msgs.len() as u64, "next_index");
    // Each message by itself, as the journal writes it (encode_message).
    for m in &msgs {
        for format in [Format::Json, Format::MessagePack] {
            let b = wire::encode_message(m, format);
            let back = wire::decode_message(&b, format, &limits)
                .unwrap_or_else(|e| panic!("{format:?} re-decode of a recovered message: {e}"));
            assert!(
                back == *m,
                "{format:?} round trip changed a recovered message"
            );
        }
    }
    // Opening for append cuts a damaged tail off; what it reads, and what is read after
    // the cut, are the same messages.
    let opts = JournalOptions {
        fsync: vuer_rtc::persist::FsyncPolicy::Never,
        ..JournalOptions::default()
    };
    if let Ok((journal, rec2)) = Journal::open(dir, opts) {
        drop(journal);
        assert!(
            rec2.messages == rec.messages,
            "Journal::open read other messages"
        );
        let rec3 = read_journal(dir, &limits).expect("re-read after open");
        assert!(rec3.messages == rec.messages, "messages changed by the cut");
    }
    // Journal::open may have added nothing but must not leave other segments; clear any.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

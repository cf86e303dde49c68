//! Journal tests: round trips, rotation and truncation, and damaged files (torn tails at
//! every length, flipped bits, foreign and future files, random bytes) that recovery
//! reads without panicking, yielding only messages that were appended.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::wire::message_from_json;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("vuer-rtc-journal-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn msg(i: u64) -> Message {
    let v = json!({
        "id": format!("c:{i}"), "client": "c", "clock": {"c": i}, "lt": i, "ts": 0.5,
        "ops": [{"ot": "number.set", "key": "n", "path": format!("p{}", i % 7), "value": i}],
    });
    message_from_json(&v, &Limits::default()).unwrap()
}

fn ids(r: &Recovery) -> Vec<(u64, String)> {
    r.messages.iter().map(|(i, m)| (*i, m.id.clone())).collect()
}

fn write(dir: &Path, range: std::ops::Range<u64>, options: JournalOptions) -> Journal {
    let (mut j, _) = Journal::open(dir, options).unwrap();
    for i in range {
        assert_eq!(j.append(&msg(i)).unwrap(), j.next_index() - 1);
    }
    j
}

#[test]
fn appends_come_back_in_order_across_reopens() {
    let d = TempDir::new("reopen");
    drop(write(&d.0, 0..5, JournalOptions::default()));
    let (mut j, r) = Journal::open(&d.0, JournalOptions::default()).unwrap();
    assert_eq!(r.next_index, 5);
    assert!(r.damage.is_empty());
    for i in 5..8 {
        assert_eq!(j.append(&msg(i)).unwrap(), i);
    }
    drop(j);
    let r = read_journal(&d.0, &Limits::default()).unwrap();
    let want: Vec<(u64, String)> = (0..8).map(|i| (i, format!("c:{i}"))).collect();
    assert_eq!(ids(&r), want);
    assert_eq!(r.messages[3].1, msg(3), "the message round-trips whole");
    // Each open appends to a new segment.
    assert_eq!(segments(&d.0).unwrap().len(), 2);
}

#[test]
fn segments_rotate_and_truncate_by_index() {
    let d = TempDir::new("rotate");
    let options = JournalOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 300,
    };
    let mut j = write(&d.0, 0..40, options);
    let segs = segments(&d.0).unwrap();
    assert!(segs.len() > 4, "{} segments", segs.len());
    let cut = segs[3].0;
    let removed = j.truncate_before(cut).unwrap();
    assert_eq!(removed, 3);
    j.sync().unwrap();
    let r = read_journal(&d.0, &Limits::default()).unwrap();
    let want: Vec<(u64, String)> = (cut..40).map(|i| (i, format!("c:{i}"))).collect();
    assert_eq!(ids(&r), want);
    // A bound inside a segment keeps that segment.
    assert_eq!(j.truncate_before(cut + 1).unwrap(), 0);
}

#[test]
fn a_torn_tail_at_every_length_loses_only_the_torn_frame() {
    let d = TempDir::new("torn");
    drop(write(&d.0, 0..3, JournalOptions::default()));
    let (_, path) = segments(&d.0).unwrap().remove(0);
    let full = fs::read(&path).unwrap();
    for len in 0..=full.len() {
        fs::write(&path, &full[..len]).unwrap();
        let r = read_journal(&d.0, &Limits::default()).unwrap();
        // Exactly the frames wholly inside the first `len` bytes, and damage unless
        // the cut falls on a frame boundary.
        let held = whole_frames(&full, len);
        let want: Vec<(u64, String)> = (0..held as u64).map(|i| (i, format!("c:{i}"))).collect();
        assert_eq!(ids(&r), want, "cut at {len}");
        let clean = len >= HEADER && whole_frames_end(&full, held) == len;
        assert_eq!(
            r.damage.len(),
            usize::from(!clean),
            "cut at {len}: {:?}",
            r.damage
        );
    }
    // Opening cuts the torn tail off; the next read is clean and appends continue.
    fs::write(&path, &full[..full.len() - 3]).unwrap();
    let (mut j, r) = Journal::open(&d.0, JournalOptions::default()).unwrap();
    assert_eq!((r.messages.len(), r.damage.len(), r.next_index), (2, 1, 2));
    assert_eq!(j.append(&msg(9)).unwrap(), 2);
    drop(j);
    let r = read_journal(&d.0, &Limits::default()).unwrap();
    assert!(r.damage.is_empty(), "{:?}", r.damage);
    assert_eq!(
        ids(&r),
        vec![(0, "c:0".into()), (1, "c:1".into()), (2, "c:9".into())]
    );
}

/// How many whole frames the first `len` bytes of segment `full` hold.
fn whole_frames(full: &[u8], len: usize) -> usize {
    let mut n = 0;
    while whole_frames_end(full, n + 1) <= len && whole_frames_end(full, n + 1) <= full.len() {
        n += 1;
        if whole_frames_end(full, n) == full.len() {
            break;
        }
    }
    n
}

/// Where the first `n` frames of segment `full` end.
fn whole_frames_end(full: &[u8], n: usize) -> usize {
    let mut at = HEADER;
    for _ in 0..n {
        if at + 4 > full.len() {
            return usize::MAX;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(&full[at..at + 4]);
        at += FRAME_PREFIX + u32::from_le_bytes(w) as usize;
    }
    at
}

#[test]
fn foreign_and_future_files_are_errors() {
    let d = TempDir::new("foreign");
    fs::create_dir_all(&d.0).unwrap();
    let path = d.0.join(segment_name(0));
    fs::write(&path, b"PK\x03\x04 not a journal at all").unwrap();
    assert!(matches!(
        read_journal(&d.0, &Limits::default()),
        Err(PersistError::Foreign { .. })
    ));
    let mut h = header();
    h[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    fs::write(&path, h).unwrap();
    let e = read_journal(&d.0, &Limits::default()).unwrap_err();
    assert!(matches!(e, PersistError::FutureVersion { found, .. } if found == VERSION + 1));
    assert!(e.to_string().contains("newer"), "{e}");
    // Other files in the directory are not segments.
    fs::write(&path, header()).unwrap();
    fs::write(d.0.join("notes.txt"), b"hello").unwrap();
    assert!(
        read_journal(&d.0, &Limits::default())
            .unwrap()
            .messages
            .is_empty()
    );
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(64))]

    #[test]
    fn flipped_bits_never_invent_a_message(flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let d = TempDir::new("flip");
        drop(write(&d.0, 0..6, JournalOptions { fsync: FsyncPolicy::Never, ..JournalOptions::default() }));
        let (_, path) = segments(&d.0).unwrap().remove(0);
        let mut bytes = fs::read(&path).unwrap();
        for (i, bit) in &flips {
            let k = HEADER + i.index(bytes.len() - HEADER);
            bytes[k] ^= 1 << bit;
        }
        fs::write(&path, &bytes).unwrap();
        let r = read_journal(&d.0, &Limits::default()).unwrap();
        // An intact prefix, every message exactly as appended, and the damage reported.
        for (i, m) in &r.messages {
            prop_assert_eq!(m, &msg(*i));
        }
        prop_assert!(r.messages.iter().enumerate().all(|(k, (i, _))| k as u64 == *i));
        prop_assert!(r.messages.len() < 6);
        prop_assert_eq!(r.damage.len(), 1);
    }

    #[test]
    fn checksummed_garbage_is_damage_not_a_panic(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..6),
    ) {
        // Frames whose checksum holds over random payloads: the decoder meets untrusted
        // MessagePack, and a payload that is not a valid message ends the segment.
        let d = TempDir::new("garbage");
        fs::create_dir_all(&d.0).unwrap();
        let mut bytes = header().to_vec();
        let mut frame = Vec::new();
        for p in &payloads {
            frame_into(&mut frame, p);
            bytes.extend_from_slice(&frame);
        }
        fs::write(d.0.join(segment_name(0)), &bytes).unwrap();
        let r = read_journal(&d.0, &Limits::default()).unwrap();
        let decodable = payloads
            .iter()
            .take_while(|p| wire::decode_message(p, Format::MessagePack, &Limits::default()).is_ok())
            .count();
        prop_assert_eq!(r.messages.len(), decodable);
        prop_assert_eq!(r.damage.len(), usize::from(decodable < payloads.len()));
    }

    #[test]
    fn checksummed_near_messages_decode_or_are_damage(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        // A valid message with a few bytes changed, framed with a correct checksum:
        // deeper paths of the decoder on untrusted bytes.
        let d = TempDir::new("near");
        fs::create_dir_all(&d.0).unwrap();
        let mut payload = wire::encode_message(&msg(3), Format::MessagePack);
        for (i, b) in &edits {
            let k = i.index(payload.len());
            payload[k] = *b;
        }
        let mut bytes = header().to_vec();
        let mut frame = Vec::new();
        frame_into(&mut frame, &payload);
        bytes.extend_from_slice(&frame);
        fs::write(d.0.join(segment_name(0)), &bytes).unwrap();
        let r = read_journal(&d.0, &Limits::default()).unwrap();
        match wire::decode_message(&payload, Format::MessagePack, &Limits::default()) {
            Ok(m) => prop_assert_eq!(r.messages, vec![(0, m)]),
            Err(_) => prop_assert_eq!((r.messages.len(), r.damage.len()), (0, 1)),
        }
    }

    #[test]
    fn random_bytes_after_a_header_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let d = TempDir::new("random");
        fs::create_dir_all(&d.0).unwrap();
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(&body);
        fs::write(d.0.join(segment_name(0)), &bytes).unwrap();
        let r = read_journal(&d.0, &Limits::default()).unwrap();
        prop_assert!(r.damage.len() <= 1);
        // Random frames essentially never pass CRC32C; if one does, it still had to
        // decode as a valid message.
        prop_assert!(r.messages.len() <= body.len() / FRAME_PREFIX);
    }
}

#[test]
fn what_is_not_a_journal_is_an_error() {
    let d = TempDir::new("not-a-journal");
    let reason = |r: Result<Recovery, PersistError>| match r {
        Err(PersistError::NotAJournal { path, reason }) => {
            assert_eq!(path, d.0);
            reason
        }
        other => panic!("not a journal, got {other:?}"),
    };
    assert_eq!(
        reason(read_journal(&d.0, &Limits::default())),
        "no such directory"
    );
    fs::write(&d.0, b"a file").unwrap();
    assert_eq!(
        reason(read_journal(&d.0, &Limits::default())),
        "not a directory"
    );
    fs::remove_file(&d.0).unwrap();
    fs::create_dir_all(&d.0).unwrap();
    fs::write(d.0.join("notes.txt"), b"hello").unwrap();
    let e = read_journal(&d.0, &Limits::default());
    assert_eq!(reason(e), "no segment files");
    // Opening for writing makes no segment until the first append: still not a journal
    // to read, but a journal to append to.
    drop(Journal::open(&d.0, JournalOptions::default()).unwrap());
    assert_eq!(
        reason(read_journal(&d.0, &Limits::default())),
        "no segment files"
    );
    drop(write(&d.0, 0..1, JournalOptions::default()));
    assert_eq!(
        ids(&read_journal(&d.0, &Limits::default()).unwrap()),
        [(0, "c:0".to_owned())]
    );
}

#[test]
fn a_batch_is_the_same_journal_as_its_messages_one_by_one() {
    let options = JournalOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 300,
    };
    let (one, batched) = (TempDir::new("one"), TempDir::new("batched"));
    drop(write(&one.0, 0..40, options));
    let (mut j, _) = Journal::open(&batched.0, options).unwrap();
    let payloads: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                format!("c:{i}"),
                wire::encode_message(&msg(i), Format::MessagePack),
            )
        })
        .collect();
    // Batches of 1, 7, 0 and 32 messages, crossing segment boundaries inside a batch.
    let mut at = 0;
    for n in [1, 7, 0, 32] {
        let batch: Vec<(&str, &[u8])> = payloads[at..at + n]
            .iter()
            .map(|(id, p)| (id.as_str(), p.as_slice()))
            .collect();
        assert_eq!(j.append_encoded(&batch).unwrap(), at as u64);
        at += n;
    }
    assert_eq!(j.next_index(), 40);
    drop(j);
    let (a, b) = (
        read_journal(&one.0, &Limits::default()).unwrap(),
        read_journal(&batched.0, &Limits::default()).unwrap(),
    );
    assert_eq!(ids(&a), ids(&b));
    assert!(b.damage.is_empty());
    // The same segments: each named by the index of its first message, same bytes.
    let (sa, sb) = (segments(&one.0).unwrap(), segments(&batched.0).unwrap());
    assert_eq!(
        sa.iter().map(|s| s.0).collect::<Vec<_>>(),
        sb.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    for ((_, pa), (_, pb)) in sa.iter().zip(&sb) {
        assert_eq!(fs::read(pa).unwrap(), fs::read(pb).unwrap());
    }
    // A payload over the frame limit: an error, and nothing written.
    let (mut j, _) = Journal::open(&batched.0, options).unwrap();
    let big = vec![0u8; MAX_FRAME + 1];
    let before = segments(&batched.0).unwrap().len();
    assert!(matches!(
        j.append_encoded(&[("ok", &payloads[0].1), ("big", &big)]),
        Err(PersistError::TooLarge { .. })
    ));
    assert_eq!(j.next_index(), 40);
    assert_eq!(segments(&batched.0).unwrap().len(), before);
}

/// A crash right after a new segment was created (its header synced, no frame yet)
/// leaves a segment with no message whose name the next segment wants: reopening
/// removes it, and appending goes on with nothing lost.
#[test]
fn an_empty_segment_left_by_a_crash_does_not_block_appends() {
    let tmp = TempDir::new("empty-segment");
    drop(write(&tmp.0, 0..3, JournalOptions::default()));
    let (mut j, _) = Journal::open(&tmp.0, JournalOptions::default()).unwrap();
    // What a kill between `new_segment` and the first frame leaves behind.
    drop(j.new_segment().unwrap());
    drop(j);
    assert_eq!(segments(&tmp.0).unwrap().len(), 2);
    let (mut j, recovered) = Journal::open(&tmp.0, JournalOptions::default()).unwrap();
    assert_eq!(recovered.next_index, 3);
    assert_eq!(j.append(&msg(3)).unwrap(), 3);
    j.sync().unwrap();
    drop(j);
    let r = read_journal(&tmp.0, &Limits::default()).unwrap();
    let want: Vec<(u64, String)> = (0..4).map(|i| (i, format!("c:{i}"))).collect();
    assert_eq!(ids(&r), want);
    assert!(r.damage.is_empty(), "{:?}", r.damage);
}

//! Opening damaged and hostile snapshots: every failure is a [`SnapshotError`], never a
//! panic, and never a replica that differs from the original.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
#![allow(
    unsafe_code,
    reason = "exercises SnapshotView::open_unchecked on bytes it wrote"
)]

use proptest::prelude::*;

use super::*;
use crate::Replica;
use crate::op::{Message, Op};

fn sample() -> Replica {
    let m = |client: &str, lt, ops| Message {
        id: format!("{client}:{lt}"),
        client: client.into(),
        clock: [(client.to_string(), lt)].into(),
        lt,
        ts: lt as f64,
        ops,
    };
    let mut r = Replica::new();
    r.apply_batch(&[
        m(
            "a",
            1,
            vec![
                Op::node_insert("", "root", "Scene"),
                Op::node_insert("root", "cube", "Mesh"),
                Op::vector3_set("cube", "position", [1.0, -0.0, 3.5]),
                Op::number_set("cube", "hp", f64::MAX),
                Op::new("cube", "label", crate::op::OpKind::TextInit("hello".into())),
            ],
        ),
        m("b", 2, vec![Op::number_add("cube", "hp", f64::MAX)]),
        m("a", 3, vec![Op::node_insert("root", "gone", "Mesh")]),
        m("b", 4, vec![Op::node_remove("root", "gone")]),
    ]);
    r
}

fn reseal(bytes: &mut [u8]) {
    let crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn sample_round_trips_with_special_floats() {
    let r = sample();
    let snap = r.snapshot();
    let view = SnapshotView::open(&snap).unwrap();
    assert_eq!(view.to_json(), r.to_json());
    let hp = view.node("cube").unwrap().get("hp").unwrap();
    assert_eq!(hp.as_number(), Some(f64::INFINITY));
    let pos = view.node("cube").unwrap().get("position").unwrap();
    assert_eq!(
        pos.as_vec3().map(|v| v[1].to_bits()),
        Some((-0.0f32).to_bits())
    );
    assert!(view.node("gone").unwrap().deleted());
    let back = Replica::from_snapshot(&snap).unwrap();
    assert_eq!(back.to_json(), r.to_json());
    assert_eq!(back.snapshot().as_bytes(), snap.as_bytes());
}

#[test]
fn header_errors_are_named() {
    let snap = sample().snapshot();
    let mut b = SnapshotBuf::from_bytes(&snap);
    assert!(matches!(
        SnapshotView::open(b"hello world"),
        Err(SnapshotError::Foreign)
    ));
    assert!(matches!(
        SnapshotView::open(&[]),
        Err(SnapshotError::Foreign)
    ));
    b.0[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        SnapshotView::open(&b),
        Err(SnapshotError::FutureVersion { found, .. }) if found == FORMAT_VERSION + 1
    ));
    assert!(matches!(
        Replica::from_snapshot(&b),
        Err(SnapshotError::FutureVersion { .. })
    ));
    let mut extra = SnapshotBuf::from_bytes(&snap);
    extra.0.extend_from_slice(&[0]);
    assert!(matches!(
        SnapshotView::open(&extra),
        Err(SnapshotError::Invalid(_))
    ));
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let snap = sample().snapshot();
    for n in 0..snap.len() {
        let cut = SnapshotBuf::from_bytes(&snap[..n]);
        let err = SnapshotView::open(&cut).expect_err("a cut snapshot must not open");
        assert!(
            matches!(
                err,
                SnapshotError::Truncated { .. } | SnapshotError::Foreign
            ),
            "{n}: {err}"
        );
        assert!(Replica::from_snapshot(&cut).is_err());
    }
}

#[test]
fn misaligned_buffers_are_refused_by_the_view() {
    let snap = sample().snapshot();
    let mut v = vec![0u8; snap.len() + 8];
    let at = (0..8)
        .find(|&i| v[i..].as_ptr().align_offset(16) != 0)
        .unwrap();
    v[at..at + snap.len()].copy_from_slice(&snap);
    let s = &v[at..at + snap.len()];
    assert!(matches!(
        SnapshotView::open(s),
        Err(SnapshotError::Misaligned)
    ));
    assert_eq!(
        Replica::from_snapshot(s).unwrap().to_json(),
        sample().to_json()
    );
}

#[test]
fn trusted_open_reads_what_checked_open_reads() {
    let r = sample();
    let snap = r.snapshot();
    // SAFETY: `snap` is exactly what `Replica::snapshot` returned, unchanged.
    let view = unsafe { SnapshotView::open_unchecked(&snap) }.unwrap();
    assert_eq!(view.to_json(), r.to_json());
    // The header is still checked.
    // SAFETY: a foreign buffer is refused before any archive access.
    let foreign = unsafe { SnapshotView::open_unchecked(b"not a snapshot at all, clearly!!") };
    assert!(matches!(foreign, Err(SnapshotError::Foreign)));
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(256))]

    /// A flipped bit anywhere is caught (by the header checks or the checksum).
    #[test]
    fn flipped_bits_are_caught(bit in any::<proptest::sample::Index>()) {
        let snap = sample().snapshot();
        let mut b = SnapshotBuf::from_bytes(&snap);
        let i = bit.index(b.len() * 8);
        b.0[i / 8] ^= 1 << (i % 8);
        prop_assert!(SnapshotView::open(&b).is_err());
        prop_assert!(Replica::from_snapshot(&b).is_err());
    }

    /// Damage with a valid checksum (a crafted file): opening, reading every node and
    /// restoring never panic; a restore that succeeds gives a replica that works.
    #[test]
    fn resealed_damage_never_panics(
        flips in prop::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let snap = sample().snapshot();
        let mut b = SnapshotBuf::from_bytes(&snap);
        let body = b.len() - HEADER_LEN;
        for (at, x) in flips {
            b.0[HEADER_LEN + at.index(body)] ^= x | 1;
        }
        reseal(&mut b.0);
        if let Ok(view) = SnapshotView::open(&b) {
            let _ = view.to_json();
            let _ = view.info();
            for n in view.nodes() {
                let _ = (n.parent(), n.children().count(), n.get("hp"), n.deleted());
            }
        }
        if let Ok(mut r) = Replica::from_snapshot(&b) {
            let _ = r.to_json();
            r.apply_message(&Message {
                id: "z:9".into(),
                client: "z".into(),
                clock: Default::default(),
                lt: 9,
                ts: 9.0,
                ops: vec![Op::node_insert("root", "late", "Mesh"), Op::number_add("cube", "hp", 1.0)],
            });
            r.compact();
        }
    }

    /// Random bytes behind a valid header never panic.
    #[test]
    fn random_archives_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut b = SnapshotBuf::from_bytes(&[0u8; HEADER_LEN]);
        b.0.extend_from_slice(&body);
        let len = body.len() as u64;
        b.0[..8].copy_from_slice(&MAGIC);
        b.0[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.0[16..24].copy_from_slice(&len.to_le_bytes());
        reseal(&mut b.0);
        if let Ok(view) = SnapshotView::open(&b) {
            let _ = view.to_json();
        }
        let _ = Replica::from_snapshot(&b);
    }
}

//! Snapshots against the replica they were taken from: random histories (every op
//! kind, text, undo, late and duplicated deliveries, compaction at random points)
//! → `snapshot()` → the view and the restored replica must equal the original, byte
//! for byte, and the restored replica must go on exactly like the original.
//!
//! Seeded; scale with `PROPTEST_CASES` (see `support::proptest_config`).

use proptest::prelude::*;
use vuer_rtc::Replica;
use vuer_rtc::op::Message;
use vuer_rtc::snapshot::{SnapshotBuf, SnapshotView};

use crate::convergence::{CLIENTS, history};
use crate::support::{Rng, shuffled_with_duplicates};

/// Applies `msgs` in random batches, compacting after some when `compact` is set.
fn feed(r: &mut Replica, msgs: &[Message], rng: &mut Rng, compact: bool) {
    let mut i = 0;
    while i < msgs.len() {
        let end = (i + 1 + rng.below(4)).min(msgs.len());
        r.apply_batch(&msgs[i..end]);
        if compact && rng.below(3) == 0 {
            r.compact();
        }
        i = end;
    }
}

/// Everything observable about a replica, for equality checks.
fn observe(r: &Replica) -> (String, String, u64, String) {
    (
        r.to_json(),
        format!("{:?}", r.clock()),
        r.lt(),
        format!("{:?} {:?}", r.stats(), r.compacted_through()),
    )
}

fn assert_same_as_view(r: &Replica, snap: &SnapshotBuf) {
    let view = SnapshotView::open(snap).expect("open");
    assert_eq!(view.to_json(), r.to_json());
    let g = r.graph();
    assert_eq!(view.len(), g.len());
    assert_eq!(
        view.root().map(|n| n.key().to_owned()),
        g.root().map(|n| n.key().to_owned())
    );
    for n in g.iter() {
        let v = view.node(n.key()).expect("every node is found by key");
        assert_eq!(v.key(), n.key());
        assert_eq!(v.tag(), n.tag());
        assert_eq!(v.deleted(), n.deleted());
        assert_eq!(v.parent().map(|p| p.key()), n.parent().map(|p| p.key()));
        let kids: Vec<_> = v.children().map(|c| c.key()).collect();
        let want: Vec<_> = n.children().map(|c| c.key()).collect();
        assert_eq!(kids, want);
        for (p, val) in n.properties() {
            assert_eq!(
                v.get(p).map(|x| x.to_json()),
                Some(val.to_json()),
                "{}.{p}",
                n.key()
            );
        }
    }
    assert!(view.node("no such key").is_none());
}

proptest! {
    #![proptest_config(crate::support::proptest_config(192))]

    #[test]
    fn snapshot_view_and_restore_equal_the_original(
        msgs in history(),
        split in 0usize..32,
        seed in any::<u64>(),
        compact in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let order = shuffled_with_duplicates(&msgs, seed);
        let split = split.min(order.len());
        let mut r = Replica::new();
        if compact {
            for c in CLIENTS {
                r.register_client(c);
            }
        }
        feed(&mut r, &order[..split], &mut rng, compact);

        let snap = r.snapshot();
        assert_same_as_view(&r, &snap);
        let mut back = Replica::from_snapshot(&snap).expect("restore");
        back.graph().dbg_check(true);
        prop_assert_eq!(observe(&back), observe(&r));
        // Everything is restored, bookkeeping included: the same snapshot again.
        prop_assert!(back.snapshot().as_bytes() == snap.as_bytes(), "snapshot of the restored replica differs");
        // A misaligned copy restores too (it is copied into an aligned buffer).
        let mut shifted = vec![0u8; snap.len() + 1];
        shifted[1..].copy_from_slice(&snap);
        prop_assert_eq!(Replica::from_snapshot(&shifted[1..]).map(|b| b.to_json()).ok(), Some(r.to_json()));

        // The rest of the history (late messages, duplicates, undo) and compaction: the
        // restored replica must answer exactly like the original.
        // Same batches, same compaction points for both.
        feed(&mut r, &order[split..], &mut Rng::new(seed ^ 1), compact);
        feed(&mut back, &order[split..], &mut Rng::new(seed ^ 1), compact);
        back.graph().dbg_check(true);
        prop_assert_eq!(observe(&back), observe(&r));
        r.compact();
        back.compact();
        prop_assert_eq!(observe(&back), observe(&r));
        prop_assert!(back.snapshot().as_bytes() == r.snapshot().as_bytes());
    }
}

#[test]
fn empty_replica_round_trips() {
    let r = Replica::new();
    let snap = r.snapshot();
    let view = SnapshotView::open(&snap).unwrap();
    assert!(view.is_empty());
    assert!(view.root().is_none());
    assert_eq!(view.to_json(), r.to_json());
    let back = Replica::from_snapshot(&snap).unwrap();
    assert_eq!(observe(&back), observe(&r));
}

proptest! {
    #![proptest_config(crate::support::proptest_config(64))]

    /// A client store started from a server's snapshot bytes follows the server: it
    /// receives the rest of the history (late messages, undo of messages the snapshot
    /// holds, duplicates) and shows the server's state.
    #[test]
    fn a_store_from_snapshot_bytes_follows_the_server(
        msgs in history(),
        split in 0usize..32,
        seed in any::<u64>(),
    ) {
        let order = shuffled_with_duplicates(&msgs, seed);
        let split = split.min(order.len());
        let mut server = Replica::new();
        server.apply_batch(&order[..split]);
        let mut bob = vuer_rtc::store::GraphStore::init_from_snapshot("bob", &server.snapshot()).unwrap();
        prop_assert_eq!(bob.graph().to_json(), server.to_json());
        for m in &order[split..] {
            server.apply_message(m);
            let _ = bob.receive(m.clone());
        }
        prop_assert_eq!(bob.graph().to_json(), server.to_json());
    }
}

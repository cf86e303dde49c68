//! `Replica` against the sequential model: random multi-client histories (every
//! non-text op, concurrent and tied lts, undo/redo, racing moves and inserts) delivered
//! to three replicas in different random orders, batch splits and duplicates must give
//! the model's state (`apply_messages` of the whole set), byte for byte.
//!
//! Seeded; scale with `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (see `support::proptest_config`).

use proptest::prelude::*;
use vuer_rtc::op::Message;
use vuer_rtc::replica::Replica;

use crate::convergence::{history, state};
use crate::support::{Rng, msg, shuffled_with_duplicates};

/// Feeds `msgs` to a fresh replica in random batches.
fn feed(msgs: &[Message], seed: u64) -> Replica {
    let mut rng = Rng(seed);
    let order = shuffled_with_duplicates(msgs, seed);
    let mut r = Replica::new();
    let mut i = 0;
    while i < order.len() {
        let n = 1 + rng.below(4);
        let end = (i + n).min(order.len());
        let report = r.apply_batch(&order[i..end]);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        r.graph().dbg_check(true);
        i = end;
    }
    r
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn replicas_match_the_model(msgs in history(), seeds in any::<[u64; 3]>()) {
        let model = state(&msgs);
        for seed in seeds {
            let r = feed(&msgs, seed);
            prop_assert_eq!(r.to_json(), model.clone(), "seed {}", seed);
        }
    }
}

#[test]
fn late_insert_releases_waiting_ops() {
    use vuer_rtc::op::Op;
    let insert = msg(
        "a",
        1,
        1.0,
        vec![
            Op::node_insert("", "n", "Mesh"),
            Op::number_set("n", "hp", 10.0),
        ],
    );
    let add = msg("b", 2, 2.0, vec![Op::number_add("n", "hp", 5.0)]);
    let mut r = Replica::new();
    r.apply_message(&add);
    assert!(r.graph().node("n").is_none());
    let rep = r.apply_message(&insert);
    assert_eq!(rep.late, 1);
    assert_eq!(r.to_json(), state(&[insert, add]));
}

#[test]
fn late_set_before_add_is_recomputed() {
    use vuer_rtc::op::Op;
    let ins = msg("a", 1, 1.0, vec![Op::node_insert("", "n", "Mesh")]);
    let set5 = msg("a", 5, 1.0, vec![Op::number_set("n", "x", 5.0)]);
    let add = msg("a", 7, 1.0, vec![Op::number_add("n", "x", 1.0)]);
    let set6 = msg("b", 6, 1.0, vec![Op::number_set("n", "x", 100.0)]);
    let mut r = Replica::new();
    r.apply_batch(&[ins.clone(), set5.clone(), add.clone()]);
    let rep = r.apply_message(&set6);
    assert_eq!(rep.late, 1);
    assert_eq!(rep.recomputed_cells, 1);
    let x = r.graph().node("n").unwrap().get("x").unwrap().as_number();
    assert_eq!(x, Some(101.0));
    assert_eq!(r.to_json(), state(&[ins, set5, add, set6]));
}

#[test]
fn undo_then_redo_across_batches() {
    use vuer_rtc::op::Op;
    let ins = msg(
        "a",
        1,
        1.0,
        vec![
            Op::node_insert("", "n", "Mesh"),
            Op::number_set("n", "x", 1.0),
        ],
    );
    let add = msg("a", 2, 1.0, vec![Op::number_add("n", "x", 10.0)]);
    let undo = msg("b", 3, 1.0, vec![Op::meta_undo("a:2")]);
    let redo = msg("c", 4, 1.0, vec![Op::meta_redo("a:2")]);
    let mut r = Replica::new();
    r.apply_batch(&[ins.clone(), add.clone()]);
    let rep = r.apply_message(&undo);
    assert_eq!(rep.toggled, 1);
    assert_eq!(
        r.graph().node("n").unwrap().get("x").unwrap().as_number(),
        Some(1.0)
    );
    r.apply_message(&redo);
    assert_eq!(
        r.graph().node("n").unwrap().get("x").unwrap().as_number(),
        Some(11.0)
    );
    // Undoing the insert removes the node and everything on it.
    let undo_ins = msg("d", 5, 1.0, vec![Op::meta_undo("a:1")]);
    r.apply_message(&undo_ins);
    assert!(r.graph().node("n").is_none());
    assert_eq!(r.to_json(), state(&[ins, add, undo, redo, undo_ins]));
}

#[test]
fn stamp_reuse_is_rejected() {
    use vuer_rtc::op::Op;
    let a = msg("a", 1, 1.0, vec![Op::node_insert("", "n", "Mesh")]);
    let mut b = msg("a", 1, 1.0, vec![Op::node_insert("", "m", "Mesh")]);
    b.id = "other".into();
    let mut r = Replica::new();
    r.apply_batch(&[a]);
    let rep = r.apply_batch(&[b]);
    assert_eq!(rep.rejected.len(), 1);
    assert!(
        rep.rejected[0].to_string().contains("already used"),
        "{}",
        rep.rejected[0]
    );
}

#[test]
fn inset_then_set_in_one_message_after_a_late_insert() {
    // Regression (found by `replicas_match_the_model`): the inset's LWW write must
    // shadow the same message's later set when the cell is recomputed.
    use vuer_rtc::op::{NodeSpec, Op, OpKind};
    let ins = msg("Mia", 1, 1.0, vec![Op::node_insert("", "b", "G")]);
    let inset = Op::new(
        "a",
        "children",
        OpKind::NodeInset(NodeSpec {
            key: "b".into(),
            tag: None,
            name: None,
            children: vec![],
            props: [("p".to_owned(), serde_json::json!(0))]
                .into_iter()
                .collect(),
        }),
    );
    let both = msg(
        "Mia",
        2,
        1.0,
        vec![inset, Op::vector3_set("b", "p", [1.0, 1.0, 1.0])],
    );
    let mut r = Replica::new();
    r.apply_message(&both);
    r.apply_message(&ins);
    assert_eq!(r.to_json(), state(&[ins, both]));
}

#[test]
fn thread_count_and_batch_split_do_not_change_a_single_bit() {
    use vuer_rtc::workload::Workload;
    let w = Workload::standard().with_messages(4_000);
    let (scene, edits) = (w.scene(), w.edits());
    let mut all = scene.clone();
    all.extend(edits.iter().cloned());
    let model = state(&all);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for batch in [700, 2_000] {
            let json = pool.install(|| {
                let mut r = Replica::new();
                r.apply_batch(&scene);
                for chunk in edits.chunks(batch) {
                    let rep = r.apply_batch(chunk);
                    assert!(rep.rejected.is_empty());
                }
                r.graph().dbg_check(false);
                r.to_json()
            });
            assert_eq!(json, model, "threads {threads}, batches of {batch}");
        }
    }
}

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

/// A message from its parts that numbers itself `seq` in its client's `clock` entry
/// (what compaction's stability rule counts).
fn counted(client: &str, lt: u64, seq: u64, ops: Vec<vuer_rtc::op::Op>) -> Message {
    let mut m = msg(client, lt, 1.0, ops);
    m.clock.insert(client.into(), seq);
    m
}

/// Feeds `msgs` to a fresh replica in random batches, compacting after some of them
/// when `compact` is set.
fn feed(msgs: &[Message], seed: u64, compact: bool) -> Replica {
    let mut rng = Rng::new(seed);
    let order = shuffled_with_duplicates(msgs, seed);
    let mut r = Replica::new();
    if compact {
        // The server knows its sessions: compaction waits for each of them.
        for c in crate::convergence::CLIENTS {
            r.register_client(c);
        }
    }
    let mut i = 0;
    while i < order.len() {
        let n = 1 + rng.below(4);
        let end = (i + n).min(order.len());
        let report = r.apply_batch(&order[i..end]);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        r.graph().dbg_check(true);
        if compact && rng.below(2) == 0 {
            r.compact();
            r.graph().dbg_check(true);
        }
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
            let r = feed(&msgs, seed, false);
            prop_assert_eq!(r.to_json(), model.clone(), "seed {}", seed);
        }
    }

    /// One message per call from MessagePack bytes (the fast reader and the records
    /// built from its views, for messages of the common shape) gives the model's state,
    /// and the journal gives back exactly the messages it was fed.
    #[test]
    fn one_encoded_message_per_call_matches_the_model(msgs in history(), seed in any::<u64>()) {
        use vuer_rtc::wire::{self, Format};
        let model = state(&msgs);
        let mut r = Replica::new();
        for m in shuffled_with_duplicates(&msgs, seed) {
            let report = r.apply_bytes(&wire::encode_message(&m, Format::MessagePack), Format::MessagePack);
            prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        }
        r.graph().dbg_check(true);
        prop_assert_eq!(r.to_json(), model);
        let mut held = r.journaled_messages();
        held.sort_by(|a, b| a.id.cmp(&b.id));
        let mut fed = msgs.clone();
        fed.sort_by(|a, b| a.id.cmp(&b.id));
        prop_assert_eq!(held, fed);
    }

    #[test]
    fn compaction_at_any_point_keeps_the_model_state(msgs in history(), seeds in any::<[u64; 2]>()) {
        // Undo of a compacted message does nothing (documented), so this property is
        // about histories without meta ops.
        let msgs: Vec<Message> = msgs
            .into_iter()
            .map(|mut m| {
                m.ops.retain(|op| !op.kind.is_meta());
                m
            })
            .collect();
        let model = state(&msgs);
        for seed in seeds {
            let mut r = feed(&msgs, seed, true);
            prop_assert_eq!(r.to_json(), model.clone(), "seed {}", seed);
            // Once everything has arrived, compaction keeps the state too.
            r.compact();
            prop_assert_eq!(r.to_json(), model.clone(), "seed {} after a final compaction", seed);
        }
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    /// What a server sends a joining client (its compacted base and the journal after
    /// it) starts a replica that shows the server's state at once, and stays equal to
    /// it while the rest of the messages arrive — late ones and undo included.
    #[test]
    fn a_client_joining_at_the_join_point_converges(msgs in history(), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let order = shuffled_with_duplicates(&msgs, seed);
        let mut server = Replica::new();
        for c in crate::convergence::CLIENTS {
            server.register_client(c);
        }
        let cut = rng.below(order.len() + 1);
        let mut i = 0;
        while i < cut {
            let end = (i + 1 + rng.below(4)).min(cut);
            server.apply_batch(&order[i..end]);
            if rng.below(2) == 0 {
                server.compact();
            }
            i = end;
        }
        let join = server.join_point();
        prop_assert!(join.tail.windows(2).all(|w| (w[0].lt, &w[0].client) < (w[1].lt, &w[1].client)));
        let tail: Vec<Message> = join.tail.iter().map(|m| (*m).clone()).collect();
        let mut client = Replica::from_base(join.graph, &join.clock, join.through);
        let report = client.apply_owned(tail);
        prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        prop_assert_eq!(client.to_json(), server.to_json(), "at the join (cut {})", cut);
        // The server forwards what it accepts, in its order.
        for m in &order[cut..] {
            let accepted = server.apply_message(m).accepted;
            if accepted == 1 {
                let r = client.apply_message(m);
                prop_assert!(r.rejected.is_empty(), "{:?}", r.rejected);
            }
        }
        prop_assert_eq!(client.to_json(), server.to_json(), "after the rest");
    }
}

/// Long histories of two nodes' cells: mostly additive ops (dozens in a row with no
/// reset, so a late one refolds from a checkpoint a recompute left behind), with sets,
/// undo/redo, and node `b` removed and created again now and then.
fn long_history() -> impl Strategy<Value = Vec<Message>> {
    use vuer_rtc::op::{Op, OpKind};
    let key = || prop::sample::select(&["a", "b"][..]);
    let num = prop_oneof![
        8 => (-40i32..40).prop_map(|i| OpKind::NumberAdd(f64::from(i) / 8.0)),
        1 => (-40i32..40).prop_map(|i| OpKind::NumberSet(f64::from(i))),
        1 => (-40i32..40).prop_map(|i| OpKind::NumberMax(f64::from(i))),
        1 => (-4i32..4).prop_map(|i| OpKind::NumberMultiply(f64::from(i) / 2.0)),
    ];
    let v = || {
        (-8i32..8, -8i32..8, -8i32..8)
            .prop_map(|(x, y, z)| [x as f32 / 4.0, y as f32 / 4.0, z as f32 / 4.0])
    };
    let vec =
        prop_oneof![6 => v().prop_map(OpKind::Vector3Add), 1 => v().prop_map(OpKind::Vector3Set)];
    let target = || {
        (
            prop::sample::select(&crate::convergence::CLIENTS[..]),
            2u64..120,
        )
            .prop_map(|(c, lt)| format!("{c}:{lt}"))
    };
    let b_props = || {
        [("p".to_string(), serde_json::json!(1))]
            .into_iter()
            .collect()
    };
    let op = prop_oneof![
        10 => (key(), num).prop_map(|(k, kind)| Op::new(k, "p", kind)),
        5 => (key(), vec).prop_map(|(k, kind)| Op::new(k, "q", kind)),
        2 => target().prop_map(Op::meta_undo),
        1 => target().prop_map(Op::meta_redo),
        1 => Just(Op::node_remove("scene", "b")),
        1 => Just(Op::node_insert_with("scene", "b", "Mesh", b_props())),
    ];
    prop::collection::vec(
        (
            prop::sample::select(&crate::convergence::CLIENTS[..]),
            2u64..120,
            Just(1.0),
            prop::collection::vec(op, 1..3),
        ),
        60..200,
    )
    .prop_map(|mut raw| {
        let props = |p: serde_json::Value, q: serde_json::Value| {
            [("p".to_string(), p), ("q".to_string(), q)]
                .into_iter()
                .collect()
        };
        // A root first: the root's cells take the general path (no checkpoints).
        let setup = vec![
            vuer_rtc::op::Op::node_insert("", "scene", "Scene"),
            vuer_rtc::op::Op::node_insert_with(
                "scene",
                "a",
                "Mesh",
                props(serde_json::json!(0), serde_json::json!([0, 0, 0])),
            ),
            vuer_rtc::op::Op::node_insert_with(
                "scene",
                "b",
                "Mesh",
                props(serde_json::json!(2), serde_json::json!([1, 1, 1])),
            ),
        ];
        raw.insert(0, ("Mia", 1, 1.0, setup));
        crate::convergence::numbered(raw)
    })
}

/// `msgs` sorted by Lamport time, then each message moved a few places later with
/// probability 1/3: the order a server sees from concurrent writers.
fn nearly_in_order(msgs: &[Message], seed: u64) -> Vec<Message> {
    let mut rng = Rng::new(seed);
    let mut out = msgs.to_vec();
    out.sort_by(|a, b| (a.lt, &a.client).cmp(&(b.lt, &b.client)));
    for i in 0..out.len() {
        if rng.below(3) == 0 {
            let j = (i + 1 + rng.below(3)).min(out.len() - 1);
            out.swap(i, j);
        }
    }
    out
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    /// Long histories where most messages are late by a little (a server's view of
    /// concurrent writers) or by a lot (shuffled), one message per call: the refolds
    /// that start at checkpoints give the model's state, and so does compaction.
    #[test]
    fn late_ops_on_long_additive_histories_match_the_model(msgs in long_history(), seed in any::<u64>()) {
        let model = state(&msgs);
        for order in [nearly_in_order(&msgs, seed), shuffled_with_duplicates(&msgs, seed)] {
            let mut r = Replica::new();
            for m in &order {
                let report = r.apply_message(m);
                prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            }
            r.graph().dbg_check(true);
            prop_assert_eq!(r.to_json(), model.clone());
        }
        // Compaction (undo of a compacted message does nothing: no meta ops here).
        let plain: Vec<Message> = msgs
            .into_iter()
            .map(|mut m| {
                m.ops.retain(|op| !op.kind.is_meta());
                m
            })
            .collect();
        let model = state(&plain);
        let mut r = Replica::new();
        for c in crate::convergence::CLIENTS {
            r.register_client(c);
        }
        let mut rng = Rng::new(seed);
        for m in nearly_in_order(&plain, seed) {
            r.apply_message(&m);
            if rng.below(8) == 0 {
                r.compact();
            }
        }
        prop_assert_eq!(r.to_json(), model);
    }
}

/// A late op on an additive cell refolds the ops after its position plus at most one
/// checkpoint interval, not the cell's whole history: 2,000 `number.add`s with every
/// other one arriving one place late cost a bounded refold each.
#[test]
fn a_late_add_refolds_a_bounded_suffix_not_the_whole_history() {
    use vuer_rtc::op::Op;
    use vuer_rtc::replica::MARK_EVERY;
    let n = 2000u64;
    let setup = vec![
        Op::node_insert("", "scene", "Scene"),
        Op::node_insert_with(
            "scene",
            "a",
            "Mesh",
            [("p".to_string(), serde_json::json!(0))]
                .into_iter()
                .collect(),
        ),
    ];
    let mut raw = vec![("Mia", 1, 1.0, setup)];
    for j in 0..n {
        let client = if j % 2 == 0 { "alice" } else { "bob" };
        let add = Op::number_add("a", "p", (j % 7) as f64 / 8.0);
        raw.push((client, 2 + j, 1.0, vec![add]));
    }
    let msgs = crate::convergence::numbered(raw);
    let mut order = msgs.clone();
    for pair in order[1..].chunks_mut(2) {
        pair.reverse();
    }
    let mut r = Replica::new();
    let (mut late, mut refolded) = (0, 0);
    for m in &order {
        let report = r.apply_message(m);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        late += report.late;
        refolded += report.refolded_ops;
    }
    assert_eq!(r.to_json(), state(&msgs));
    assert_eq!(late, n as usize / 2);
    // Without checkpoints this is about n²/4 (a million).
    let bound = late * (MARK_EVERY + 4);
    assert!(
        refolded <= bound,
        "refolded {refolded} ops for {late} late ones (bound {bound})"
    );
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

#[test]
fn compaction_evicts_silent_clients_and_rejects_their_very_late_messages() {
    use vuer_rtc::error::RejectError;
    use vuer_rtc::op::Op;
    let mut r = Replica::new();
    r.set_horizon(10);
    r.register_client("late");
    r.apply_message(&counted(
        "a",
        1,
        1,
        vec![
            Op::node_insert("", "n", "Mesh"),
            Op::number_set("n", "x", 1.0),
        ],
    ));
    for lt in 2..30 {
        r.apply_message(&counted("a", lt, lt, vec![Op::number_add("n", "x", 1.0)]));
    }
    // `b` is active: its first message (lt 25) bounds what is stable.
    r.apply_message(&counted("b", 25, 1, vec![Op::number_add("n", "x", 0.0)]));
    // `late` is known but silent: it holds compaction back until the horizon evicts it.
    let rep = r.compact();
    assert!(rep.messages > 0, "{rep:?}");
    let through = r.compacted_through().unwrap();
    assert_eq!(through, 25);
    assert!(r.stats().messages < 29);
    assert_eq!(
        r.graph().node("n").unwrap().get("x").unwrap().as_number(),
        Some(29.0)
    );

    // A copy of a compacted message is a duplicate, not a new edit.
    let copy = counted("a", 2, 2, vec![Op::number_add("n", "x", 1.0)]);
    let rep = r.apply_message(&copy);
    assert_eq!((rep.duplicates, rep.accepted), (1, 0));
    // The evicted client's very late message cannot be placed any more.
    let rep = r.apply_message(&counted(
        "late",
        3,
        1,
        vec![Op::number_add("n", "x", 100.0)],
    ));
    assert!(
        matches!(rep.rejected[..], [RejectError::Compacted { .. }]),
        "{:?}",
        rep.rejected
    );
    assert_eq!(
        r.graph().node("n").unwrap().get("x").unwrap().as_number(),
        Some(29.0)
    );
    // A late message above the compacted base still lands where its stamp says.
    let rep = r.apply_message(&counted(
        "b",
        27,
        2,
        vec![Op::number_multiply("n", "x", 2.0)],
    ));
    assert_eq!(rep.late, 1);
    let mut all: Vec<Message> = vec![counted(
        "a",
        1,
        1,
        vec![
            Op::node_insert("", "n", "Mesh"),
            Op::number_set("n", "x", 1.0),
        ],
    )];
    all.extend((2..30).map(|lt| counted("a", lt, lt, vec![Op::number_add("n", "x", 1.0)])));
    all.push(counted("b", 25, 1, vec![Op::number_add("n", "x", 0.0)]));
    all.push(counted(
        "b",
        27,
        2,
        vec![Op::number_multiply("n", "x", 2.0)],
    ));
    assert_eq!(r.to_json(), state(&all));
}

#[test]
fn compaction_keeps_the_journal_bounded_on_a_stream() {
    use vuer_rtc::workload::Workload;
    // 20,000 messages from 1,000 clients in batches of 1,000, compacting after each:
    // the journal stays far below the stream length and the state is the model's.
    // (`vuer-rtc bench --messages 1000000 --compact-every 1 --horizon 5000` streams 1M.)
    let w = Workload::standard().with_messages(20_000);
    let (scene, edits) = (w.scene(), w.edits());
    let mut r = Replica::new();
    r.set_horizon(5_000);
    r.apply_batch(&scene);
    let mut peak = 0;
    for chunk in edits.chunks(1_000) {
        assert!(r.apply_batch(chunk).rejected.is_empty());
        peak = peak.max(r.stats().messages);
        r.compact();
    }
    assert!(peak < 12_000, "peak journal {peak}");
    assert!(r.stats().messages < 8_000, "journal {}", r.stats().messages);
    let mut all = scene;
    all.extend(edits);
    assert_eq!(r.to_json(), state(&all));
}

/// Workload A in small (1,000 nodes, 100 authors): the scene's author sends the scene
/// and falls silent. A replica left at its defaults (no `compact` call anywhere)
/// evicts the author after the default horizon and compacts by itself, so its journal
/// stays bounded instead of holding the whole stream; the state is the model's.
#[test]
fn a_default_replica_stays_bounded_when_the_scene_author_falls_silent() {
    use vuer_rtc::replica::{DEFAULT_AUTO_COMPACT, DEFAULT_HORIZON};
    use vuer_rtc::wire::{Format, encode_message};
    use vuer_rtc::workload::SceneA;
    let a = SceneA {
        nodes: 1_000,
        messages: 40_000,
        writes: 2,
        authors: 100,
        seed: 7,
    };
    let (scene, edits) = (a.scene(), a.messages());
    let mut r = Replica::new();
    r.apply_batch(&scene);
    let (mut peak, mut compacted) = (0, 0);
    for m in &edits {
        let report = r.apply_bytes(&encode_message(m, Format::MessagePack), Format::MessagePack);
        assert_eq!(report.accepted, 1, "{report:?}");
        compacted += report.compacted;
        peak = peak.max(r.stats().messages);
    }
    let bound = (DEFAULT_HORIZON + 2 * DEFAULT_AUTO_COMPACT) as usize;
    assert!(bound < edits.len(), "the stream is longer than the bound");
    assert!(peak <= bound, "peak journal {peak} > {bound}");
    let end = r.stats().messages;
    assert!(
        end <= 2 * DEFAULT_AUTO_COMPACT as usize + a.authors,
        "journal {end}"
    );
    assert!(
        compacted + end >= edits.len(),
        "{compacted} compacted, {end} held"
    );
    let mut all = scene;
    all.extend(edits);
    assert_eq!(r.to_json(), state(&all));
}

/// The standard workload (a fifth of its messages late) through a replica at its
/// defaults, in batches of 100: automatic compaction rejects nothing and changes
/// nothing (the state is the model's, and that of a replica that never compacts).
#[test]
fn automatic_compaction_changes_nothing_on_a_stream_with_late_messages() {
    use vuer_rtc::workload::Workload;
    let w = Workload::standard().with_messages(20_000);
    let (scene, edits) = (w.scene(), w.edits());
    let mut auto = Replica::new();
    let mut never = Replica::new();
    never.set_auto_compact(None);
    let mut compacted = 0;
    for chunk in std::iter::once(&scene[..]).chain(edits.chunks(100)) {
        let report = auto.apply_batch(chunk);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        compacted += report.compacted;
        assert!(never.apply_batch(chunk).rejected.is_empty());
    }
    assert!(compacted > edits.len() / 2, "compacted only {compacted}");
    assert_eq!(never.stats().messages, scene.len() + edits.len());
    assert_eq!(auto.to_json(), never.to_json());
    let mut all = scene;
    all.extend(edits);
    assert_eq!(auto.to_json(), state(&all));
}

/// Compaction's general path (a node whose histories hold a multi-cell op, here an
/// `object.update` at `.`) must fold an additive cell's stable ops once: after the
/// bases are read off, only the ops after the compaction point go back into the
/// histories. A late op then recomputes the cell from its base.
#[test]
fn compaction_of_a_node_on_the_general_path_folds_each_stable_op_once() {
    use serde_json::json;
    use vuer_rtc::op::{Op, OpKind};
    let update = OpKind::ObjectUpdate(json!({"p": 3}).as_object().cloned().unwrap_or_default());
    let mut all = vec![
        counted("Mia", 1, 1, vec![Op::node_insert("", "a", "Group")]),
        counted("Mia", 2, 2, vec![Op::node_insert("a", "e", "Mesh")]),
        counted("Mia", 3, 3, vec![Op::new("e", ".", update)]),
        counted(
            "Mia",
            4,
            4,
            vec![Op::new("e", "q", OpKind::ArrayPush(json!(0)))],
        ),
        counted("Mia", 6, 5, vec![Op::number_add("e", "p", 1.0)]),
    ];
    let mut r = Replica::new();
    r.register_client("Mia");
    r.apply_batch(&all);
    let report = r.compact_through(5);
    assert_eq!(report.messages, 4, "{report:?}");
    assert_eq!(r.to_json(), state(&all), "after compaction");
    let newer = counted(
        "Mia",
        7,
        6,
        vec![Op::new("e", "q", OpKind::ArrayPush(json!(1)))],
    );
    let late = counted(
        "bob",
        6,
        1,
        vec![Op::new("e", "q", OpKind::ArrayPush(json!(2)))],
    );
    r.apply_batch(std::slice::from_ref(&newer));
    assert_eq!(r.apply_batch(std::slice::from_ref(&late)).late, 1);
    all.extend([newer, late]);
    assert_eq!(r.to_json(), state(&all), "after a late op");
}

/// An undo whose Lamport time is older than its target's (a client clock running
/// behind) is not compacted before its target: a client joining at the join point
/// (base and journal after it) must still see the target undone.
#[test]
fn an_undo_older_than_its_target_is_not_compacted_before_it() {
    use vuer_rtc::op::Op;
    let msgs = [
        counted("alice", 8, 1, vec![Op::node_insert("", "c", "Mesh")]),
        counted("alice", 9, 2, vec![Op::number_set("c", "q", 0.0)]),
        counted("Mia", 1, 1, vec![Op::meta_undo("alice:9")]),
    ];
    let mut server = Replica::new();
    server.register_client("alice");
    server.register_client("Mia");
    server.apply_batch(&msgs);
    server.compact();
    let join = server.join_point();
    let tail: Vec<Message> = join.tail.iter().map(|m| (*m).clone()).collect();
    let mut client = Replica::from_base(join.graph, &join.clock, join.through);
    assert!(client.apply_owned(tail).rejected.is_empty());
    assert_eq!(client.to_json(), server.to_json());
    assert_eq!(server.to_json(), state(&msgs));
}

#[test]
fn inset_then_set_in_one_message_of_a_batch_keeps_the_first_write() {
    // `node.inset` writes `d.p` first; the `color.set` after it in the same message
    // loses (first write of a message wins). The cell's fold must not start at the set.
    use std::collections::BTreeMap;
    use vuer_rtc::op::{NodeSpec, Op, OpKind};
    let spec = |key: &str, props: BTreeMap<String, serde_json::Value>| NodeSpec {
        key: key.into(),
        tag: None,
        name: None,
        children: vec![],
        props,
    };
    let props = BTreeMap::from([("p".to_string(), serde_json::json!(0))]);
    let msgs = vec![
        msg(
            "Mia",
            8,
            1.0,
            vec![
                Op::new("a", "children", OpKind::NodeInset(spec("d", props))),
                Op::color_set("d", "p", ""),
            ],
        ),
        msg(
            "alice",
            7,
            1.0,
            vec![Op::new(
                "",
                "children",
                OpKind::NodeInsert(spec("d", BTreeMap::new())),
            )],
        ),
        msg(
            "Mia",
            7,
            1.0,
            vec![Op::new(
                "",
                "children",
                OpKind::NodeInsert(spec("a", BTreeMap::new())),
            )],
        ),
    ];
    let model = state(&msgs);
    assert!(model.contains(r#""p":0"#), "{model}");
    let mut r = Replica::new();
    r.apply_batch(&msgs);
    assert_eq!(r.to_json(), model);
}

#[test]
fn string_set_on_a_text_path_wins_over_a_later_set_of_its_message() {
    // `transform.position` holds text somewhere, so `string.set` there is no reset (it
    // keeps a text's CRDT); it still writes first in its message and wins.
    use vuer_rtc::op::Op;
    let msgs = vec![
        msg("Mia", 1, 1.0, vec![Op::node_insert("", "c", "Mesh")]),
        msg(
            "Mia",
            2,
            1.0,
            vec![Op::new(
                "a",
                "transform.position",
                vuer_rtc::op::OpKind::TextInit(String::new()),
            )],
        ),
        msg(
            "Mia",
            3,
            1.0,
            vec![
                Op::string_set("c", "transform.position", ""),
                Op::quaternion_set("c", "transform.position", [0.0; 4]),
            ],
        ),
    ];
    let model = state(&msgs);
    assert!(model.contains(r#""transform.position":"""#), "{model}");
    let mut r = Replica::new();
    r.apply_batch(&msgs);
    assert_eq!(r.to_json(), model);
}

/// A registered session holds compaction back until its heartbeat says what it holds;
/// a heartbeat with nothing, or with messages of its own not yet here, changes nothing.
#[test]
fn a_heartbeat_lets_compaction_pass_a_session_that_holds_everything() {
    use std::collections::BTreeMap;
    use vuer_rtc::op::Op;
    let counted = |client: &str, seq: u64, lt: u64, ops: Vec<Op>| {
        let mut m = msg(client, lt, 0.0, ops);
        m.clock = [(client.to_string(), seq)].into();
        m
    };
    let mut r = Replica::new();
    r.register_client("reader");
    r.register_client("offline");
    r.apply_message(&counted("b", 1, 1, vec![Op::node_insert("", "n", "Mesh")]));
    for seq in 2..=20 {
        r.apply_message(&counted(
            "b",
            seq,
            seq,
            vec![Op::number_add("n", "hp", 1.0)],
        ));
    }
    let clock = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|&(c, n)| (c.to_string(), n)).collect()
    };
    // The sessions may still send from Lamport time 0: nothing is stable.
    assert_eq!(r.compact().messages, 0);
    r.note_heartbeat("reader", &clock(&[]));
    assert_eq!(r.compact().messages, 0);
    // `offline` has two messages of its own the replica has not seen: no change.
    r.note_heartbeat("offline", &clock(&[("b", 20), ("offline", 2)]));
    r.note_heartbeat("reader", &clock(&[("b", 20)]));
    assert_eq!(r.compact().messages, 0, "offline still holds it back");
    // Once `offline` reports nothing outstanding, all of `b`'s 20 messages are stable.
    r.note_heartbeat("offline", &clock(&[("b", 20)]));
    let report = r.compact();
    assert_eq!((report.messages, report.through), (20, Some(20)));
    // A session's next message comes after what it held, and is taken.
    let next = counted("reader", 1, 21, vec![Op::number_add("n", "hp", 1.0)]);
    assert!(r.apply_message(&next).rejected.is_empty());
    let hp = r.graph().node("n").and_then(|n| n.get("hp")?.as_number());
    assert_eq!(hp, Some(20.0));
}

//! The telemetry fast path: a [`Writer`]'s commit is exactly the message a peer
//! receives, a bad commit applies nothing, and the change feed names every cell and
//! node record that changed, whatever path the change took (in-order merge, late
//! messages, undo, compaction, writer commits).
//!
//! Seeded; scale with `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (see `support::proptest_config`).

use std::collections::BTreeMap;

use proptest::prelude::*;
use vuer_rtc::column::Row;
use vuer_rtc::error::{DecodeError, RejectError};
use vuer_rtc::op::{Json, Message, Op};
use vuer_rtc::replica::Replica;
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{SceneGraph, Writer};

use crate::convergence::history;

#[path = "../examples/telemetry.rs"]
mod ex_telemetry;

#[test]
fn the_telemetry_example_runs_as_written() {
    ex_telemetry::main().unwrap();
}
use crate::support::{Rng, msg, shuffled_with_duplicates};

/// A scene of `n` nodes `n0 …` under a root, with `position`, `rotation` and `hp`.
fn scene(n: usize) -> Vec<Message> {
    let mut ops = vec![Op::node_insert("", "root", "Scene")];
    for k in 0..n {
        let props: BTreeMap<String, Json> = [
            ("position".to_owned(), serde_json::json!([0.5, 0.0, 0.0])),
            (
                "rotation".to_owned(),
                serde_json::json!([0.0, 0.0, 0.0, 1.0]),
            ),
            ("hp".to_owned(), serde_json::json!(100)),
        ]
        .into_iter()
        .collect();
        ops.push(Op::node_insert_with("root", format!("n{k}"), "Mesh", props));
    }
    let mut m = msg("author", 1, 1.0, ops);
    m.clock.insert("author".into(), 1);
    vec![m]
}

/// Fills `w` with a bit of every typed write, on `r`'s handles (and one to a node
/// that does not exist).
fn fill(r: &mut Replica, w: &mut Writer, t: f32) {
    let (pos, rot, hp, on) = (
        r.path_id("position"),
        r.path_id("rotation"),
        r.path_id("hp"),
        r.path_id("on"),
    );
    for k in 0..5 {
        let n = r.key_id(&format!("n{k}"));
        w.set_vec3(n, pos, [t, k as f32, -t]);
        w.multiply_quat(n, rot, [0.0, 0.0, 0.6, 0.8]);
        w.add_number(n, hp, -1.5);
        w.set_bool(n, on, k % 2 == 0);
    }
    let n0 = r.key_id("n0");
    w.set_vec3(n0, pos, [9.0, 9.0, 9.0]); // a second write of one cell in one message
    w.add_vec3(n0, pos, [1.0, 0.0, 0.0]);
    w.set_euler(r.key_id("root"), r.path_id("tilt"), [0.1, 0.2, 0.3]);
    w.set_number(r.key_id(""), r.path_id("g"), 9.81);
    w.set_quat(r.key_id("ghost"), rot, [0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn a_commit_is_the_message_a_peer_receives() {
    let mut a = Replica::new();
    let mut b = Replica::new();
    a.apply_batch(&scene(8));
    b.apply_batch(&scene(8));
    let mut w = a.writer("tele");
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, &scene(8));
    for tick in 1..=3u8 {
        fill(&mut a, &mut w, f32::from(tick));
        let n = w.len();
        let done = a.commit(&mut w, f64::from(tick)).unwrap().unwrap();
        assert!(w.is_empty());
        assert_eq!(
            (done.id.as_str(), done.seq),
            (format!("tele:{}", done.lt).as_str(), u64::from(tick))
        );
        let sent = a.journaled_message(&done.id).unwrap();
        assert_eq!(sent.ops.len(), n);
        assert_eq!(sent.clock.get("tele"), Some(&u64::from(tick)));
        // The peer decodes the bytes and lands on the same state, with the same
        // warnings (the write to `ghost`).
        let got = b.apply_bytes(
            &wire::encode_message(&sent, Format::MessagePack),
            Format::MessagePack,
        );
        assert_eq!((got.accepted, got.rejected.len()), (1, 0));
        assert_eq!(got.warnings, done.report.warnings);
        assert_eq!(done.report.warnings.len(), 1, "{:?}", done.report.warnings);
        assert_eq!(a.to_json(), b.to_json());
        vuer_rtc::apply_messages(&mut model, &[sent]);
        assert_eq!(a.to_json(), model.to_json());
    }
    let n0 = a.graph().node("n0").unwrap();
    // Within a message the first `set` of a cell holds (equal stamps), then the add.
    assert_eq!(
        n0.get("position").unwrap().to_json(),
        serde_json::json!([4, 0, -3])
    );
    assert_eq!(n0.get("hp").unwrap().to_json(), serde_json::json!(95.5));
    // An empty writer commits nothing.
    assert_eq!(a.commit(&mut w, 4.0), Ok(None));
}

/// Automatic compaction never folds the message a commit just made: the producer
/// can still send it, even when the writer is the scene's only client (everything
/// stable at once) and the replica compacts after every message.
#[test]
fn a_committed_message_stays_journaled_until_the_next_call() {
    let mut r = Replica::new();
    r.set_auto_compact(Some(1));
    r.apply_batch(&scene(3));
    let (n0, pos) = (r.key_id("n0"), r.path_id("position"));
    let mut w = r.writer("author");
    let mut ids = Vec::new();
    for t in 0..3u8 {
        w.set_vec3(n0, pos, [f32::from(t), 0.0, 0.0]);
        let done = r.commit(&mut w, 0.0).unwrap().unwrap();
        assert!(r.journaled_message(&done.id).is_some(), "tick {t}");
        ids.push(done.id);
    }
    // The earlier ticks were folded by the later commits' compactions.
    assert!(r.journaled_message(&ids[0]).is_none());
    assert_eq!(r.stats().messages, 1);
}

#[test]
fn a_bad_commit_applies_nothing_and_keeps_the_buffer() {
    let mut r = Replica::new();
    r.apply_batch(&scene(3));
    let before = r.to_json();
    let (n1, pos) = (r.key_id("n1"), r.path_id("position"));
    let mut w = r.writer("tele");
    w.set_vec3(n1, pos, [1.0, 2.0, 3.0]);
    w.set_vec3(n1, pos, [f32::NAN, 0.0, 0.0]);
    let Err(RejectError::Invalid(DecodeError::Op {
        msg_id,
        op_index,
        ot,
        ..
    })) = r.commit(&mut w, 0.0)
    else {
        panic!("a NaN must be refused");
    };
    assert_eq!(
        (msg_id.as_str(), op_index, ot.as_deref()),
        ("tele:2", 1, Some("vector3.set"))
    );
    assert_eq!((w.len(), r.to_json()), (2, before.clone()));
    assert_eq!(r.stats().messages, 1);

    // A handle another replica handed out, beyond this one's tables.
    let mut other = Replica::new();
    other.apply_batch(&scene(50));
    let far = other.key_id("n49");
    w.clear();
    w.set_vec3(far, pos, [1.0, 1.0, 1.0]);
    let e = r.commit(&mut w, 0.0).unwrap_err();
    assert!(e.to_string().contains("was not handed out"), "{e}");
    assert_eq!(r.to_json(), before);

    // Another client already used the id the commit would take.
    let squatter = msg("x", 2, 0.0, vec![Op::number_set("n0", "hp", 1.0)]);
    let squatter = Message {
        id: "tele:3".into(),
        ..squatter
    };
    r.apply_batch(&[squatter]);
    let after = r.to_json();
    w.clear();
    w.set_vec3(n1, pos, [1.0, 1.0, 1.0]);
    assert!(matches!(
        r.commit(&mut w, 0.0),
        Err(RejectError::Conflict { .. })
    ));
    assert_eq!((w.len(), r.to_json()), (1, after));
    // The writer can go on once the clash is behind it.
    r.apply_batch(&[msg("x", 3, 0.0, vec![])]);
    assert!(r.commit(&mut w, 0.0).unwrap().is_some());
    // A writer without a client name makes messages no peer would take.
    let mut nameless = Writer::new("");
    nameless.set_vec3(n1, pos, [1.0, 1.0, 1.0]);
    let e = r.commit(&mut nameless, 0.0).unwrap_err();
    assert!(e.to_string().contains("non-empty client"), "{e}");
    assert_eq!(nameless.len(), 1);
    // A non-finite payload of a kind with fields besides `value`.
    w.clear();
    let euler = vuer_rtc::replica::record::Body::Vector3ApplyEuler {
        angles: [0.0, f32::INFINITY, 0.0],
        order: Default::default(),
        intrinsic: true,
    };
    assert!(w.push(n1, pos, euler).is_ok());
    let e = r.commit(&mut w, 0.0).unwrap_err();
    assert!(e.to_string().contains("not a finite number"), "{e}");
    w.clear();
    // A wall clock the wire cannot carry.
    w.set_vec3(n1, pos, [2.0, 2.0, 2.0]);
    let e = r.commit(&mut w, f64::NAN).unwrap_err();
    assert!(e.to_string().contains("not a finite number"), "{e}");
    assert_eq!(w.len(), 1);
    // Pushing a whole op is refused at once.
    let whole = vuer_rtc::replica::record::Body::Whole(Box::new(Op::number_set("n0", "hp", 1.0)));
    assert!(w.push(n1, pos, whole).is_err());
}

proptest! {
    #![proptest_config(crate::support::proptest_config(64))]

    /// `encode_journaled` writes exactly the bytes of `encode_message` of the
    /// rebuilt message: random typed writes (integral and fractional, negative, huge
    /// and tiny numbers, every inline kind, the root key), and the scene's own message
    /// (node ops: the general encoder).
    #[test]
    fn encoded_records_are_the_encoders_bytes(
        writes in prop::collection::vec((0usize..6, 0u8..17, any::<u32>(), -5i32..5), 1..60),
        ts in prop_oneof![Just(0.0), Just(3.0), Just(1.25e-3), Just(-7.5), Just(1e300)],
    ) {
        let mut r = Replica::new();
        r.apply_batch(&scene(4));
        let mut w = r.writer("tele");
        for &(k, kind, bits, small) in &writes {
            let key = if k == 5 { r.key_id("") } else { r.key_id(&format!("n{k}")) };
            let path = r.path_id(&format!("p{kind}"));
            // A float from random bits (finite), or a small integer.
            let f = f32::from_bits(bits);
            let x = if f.is_finite() && bits % 3 != 0 { f } else { small as f32 };
            let d = f64::from(x) * if bits % 5 == 0 { 1e17 } else { 1.0 };
            use vuer_rtc::replica::record::Body as B;
            let body = match kind {
                0 => B::NumberSet(d),
                1 => B::NumberAdd(d),
                2 => B::NumberMultiply(d),
                3 => B::NumberMin(d),
                4 => B::NumberMax(d),
                5 => B::Vector3Set([x, -x, 0.5]),
                6 => B::Vector3Add([x, 1.0, f32::MIN_POSITIVE]),
                7 => B::Vector3Multiply([x, x, x]),
                8 => B::Vector3ApplyQuaternion([0.0, x, 0.0, 1.0]),
                9 => B::EulerSet([x, 0.0, -0.0]),
                10 => B::EulerAdd([x, 2.0, 3.0]),
                11 => B::QuaternionSet([x, 0.0, 0.0, 1.0]),
                12 => B::QuaternionMultiply([0.0, 0.0, x, 1.0]),
                13 => B::BooleanSet(bits % 2 == 0),
                14 => B::BooleanOr(true),
                15 => B::BooleanAnd(false),
                _ => B::BooleanXor(bits % 2 == 1),
            };
            prop_assert!(w.push(key, path, body).is_ok());
        }
        let done = r.commit(&mut w, ts).unwrap().unwrap();
        let want = wire::encode_message(&r.journaled_message(&done.id).unwrap(), Format::MessagePack);
        prop_assert_eq!(r.encode_journaled(&done.id, Format::MessagePack).unwrap(), want);
        let json = wire::encode_message(&r.journaled_message(&done.id).unwrap(), Format::Json);
        prop_assert_eq!(r.encode_journaled(&done.id, Format::Json).unwrap(), json);
        let first = scene(4).remove(0);
        prop_assert_eq!(
            r.encode_journaled(&first.id, Format::MessagePack).unwrap(),
            wire::encode_message(&first, Format::MessagePack)
        );
        prop_assert!(r.encode_journaled("nope", Format::MessagePack).is_none());
    }
}

/// Every cell `(path, row) → (value, stamp)` and every node record `row → record`.
type State = (BTreeMap<(usize, u32), String>, BTreeMap<u32, String>);

/// The [`State`] of `g`.
fn cells_and_nodes(g: &SceneGraph) -> State {
    let mut cells = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for n in g.iter() {
        let row = g.row_of(n.key()).unwrap();
        let children: Vec<&str> = n.children().map(|c| c.key()).collect();
        nodes.insert(
            row.0,
            format!(
                "{} {} {} {} {:?} {children:?}",
                n.key(),
                n.tag(),
                n.name(),
                n.deleted(),
                n.parent().map(|p| p.key())
            ),
        );
        for (p, col) in g.properties().columns().iter().enumerate() {
            if let Some((v, s)) = col.get(row) {
                cells.insert((p, row.0), format!("{v:?} {s:?}"));
            }
        }
    }
    (cells, nodes)
}

/// Asserts that `changes` holds every difference between two states.
fn covers(changes: &vuer_rtc::Changes, before: &State, after: &State) {
    let keys: std::collections::BTreeSet<_> = before.0.keys().chain(after.0.keys()).collect();
    for &&(p, row) in &keys {
        if before.0.get(&(p, row)) != after.0.get(&(p, row)) {
            assert!(
                changes
                    .columns()
                    .iter()
                    .any(|(id, bits)| id.index() == p && bits.contains(Row(row))),
                "cell of path #{p} at row {row} changed ({:?} -> {:?}) but is not in the feed",
                before.0.get(&(p, row)),
                after.0.get(&(p, row))
            );
        }
    }
    let rows: std::collections::BTreeSet<_> = before.1.keys().chain(after.1.keys()).collect();
    for &&row in &rows {
        if before.1.get(&row) != after.1.get(&row) {
            assert!(
                changes.nodes().contains(Row(row)),
                "node row {row} changed ({:?} -> {:?}) but is not in the feed",
                before.1.get(&row),
                after.1.get(&row)
            );
        }
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config(128))]

    /// Random histories in random batches, with duplicates, late messages, undo and
    /// compaction, interleaved with writer commits: after each step the feed holds
    /// every cell and node record that changed.
    #[test]
    fn the_change_feed_names_every_change(msgs in history(), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let order = shuffled_with_duplicates(&msgs, seed);
        let mut r = Replica::new();
        // Compaction waits for every client of the history (none of their messages
        // is then too late to place).
        for c in crate::convergence::CLIENTS {
            r.register_client(c);
        }
        let mut w = r.writer("feed-writer");
        let mut state = cells_and_nodes(r.graph());
        let mut i = 0;
        while i < order.len() {
            let end = (i + 1 + rng.below(4)).min(order.len());
            let report = r.apply_batch(&order[i..end]);
            prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            match rng.below(4) {
                0 => {
                    r.compact();
                }
                1 => {
                    let keys: Vec<String> = r.graph().iter().map(|n| n.key().to_owned()).collect();
                    for k in keys.iter().take(3) {
                        let (kid, pid) = (r.key_id(k), r.path_id("p"));
                        w.add_number(kid, pid, 1.0);
                    }
                    r.commit(&mut w, 0.0).unwrap();
                }
                _ => {}
            }
            let changes = r.take_changes();
            let next = cells_and_nodes(r.graph());
            covers(&changes, &state, &next);
            // Nothing happened since: an empty feed.
            prop_assert!(r.take_changes().is_empty());
            state = next;
            i = end;
        }
    }
}

//! Untrusted input never breaks a replica, a store or a journal (issue: integers from
//! the wire, conflicting copies, the durable journal, memory-bounded decoding).
//!
//! Every test here reproduces an input that once broke state or panicked.

use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use vuer_rtc::error::RejectError;
use vuer_rtc::op::{Limits, MAX_SAFE_INT, Message};
use vuer_rtc::persist::{DurableOptions, DurableReplica, read_journal};
use vuer_rtc::replica::Replica;
use vuer_rtc::store::GraphStore;
use vuer_rtc::wire::{self, Format};

use crate::support;

const EXTREMES: [u64; 6] = [
    0,
    MAX_SAFE_INT,
    MAX_SAFE_INT + 1,
    u32::MAX as u64 - 1,
    u32::MAX as u64,
    u64::MAX,
];

fn encode(v: &Json, format: Format) -> Vec<u8> {
    match format {
        Format::Json => serde_json::to_vec(v).unwrap(),
        Format::MessagePack => rmp_serde::to_vec_named(v).unwrap(),
    }
}

/// `v` with the legacy field names (`sessionId`, `lamportTime`, `timestamp`, `otype`).
fn legacy(v: &Json) -> Json {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for (new, old) in [
            ("client", "sessionId"),
            ("lt", "lamportTime"),
            ("ts", "timestamp"),
        ] {
            if let Some(x) = m.remove(new) {
                m.insert(old.into(), x);
            }
        }
        if let Some(Json::Array(ops)) = m.get_mut("ops") {
            for op in ops {
                if let Some(o) = op.as_object_mut()
                    && let Some(x) = o.remove("ot")
                {
                    o.insert("otype".into(), x);
                }
            }
        }
    }
    v
}

/// Decodes `msg` in both codecs and both spellings: all four must agree.
fn decode_all_ways(msg: &Json) -> Result<Message, String> {
    let mut results = Vec::new();
    for v in [msg.clone(), legacy(msg)] {
        for f in [Format::Json, Format::MessagePack] {
            results.push(
                wire::decode_message(&encode(&v, f), f, &Limits::default())
                    .map_err(|e| e.to_string()),
            );
        }
    }
    for r in &results[1..] {
        assert_eq!(r.is_ok(), results[0].is_ok(), "{msg}: {results:?}");
    }
    results.swap_remove(0)
}

fn base_msg(lt: u64) -> Json {
    json!({"id": format!("a:{lt}"), "client": "a", "lt": lt, "ts": 1.0, "ops": []})
}

/// Where an integer enters: a message field or an op field, and whether the bound
/// (2^53 − 1, or the text id space) lets `x` through.
fn with_integer(slot: usize, x: u64) -> (Json, bool) {
    let safe = x <= MAX_SAFE_INT;
    let mut m = base_msg(7);
    let op = |v: Json| json!([v]);
    match slot {
        0 => {
            m["lt"] = json!(x);
            m["id"] = json!("a:x");
        }
        1 => m["clock"] = json!({"a": x}),
        2 => m["clock"] = json!({"a": 1, "b": x}),
        3 => {
            m["ops"] = op(
                json!({"ot": "text.insert", "key": "n", "path": "t", "id": "a:0",
                                  "value": [null, "hello"], "seq": x, "ts": 1.0}),
            )
        }
        4 => {
            // A text id of `x` with five characters: `x + 5` must fit in 32 bits.
            m["ops"] = op(json!({"ot": "text.insert", "key": "n", "path": "t",
                                  "id": format!("a:{x}"), "value": [null, "hello"], "seq": 1}));
            return (
                m,
                x.checked_add(5).is_some_and(|e| e <= u64::from(u32::MAX)),
            );
        }
        5 => {
            m["ops"] = op(json!({"ot": "text.delete", "key": "n", "path": "t",
                                  "rm": [["a:3", x]]}));
            return (
                m,
                x.checked_add(3).is_some_and(|e| e <= u64::from(u32::MAX)),
            );
        }
        6 => {
            m["ops"] = op(json!({"ot": "text.delete", "key": "n", "path": "t",
                                  "rm": [[format!("a:{x}"), 2]]}));
            return (
                m,
                x.checked_add(2).is_some_and(|e| e <= u64::from(u32::MAX)),
            );
        }
        7 => {
            m["ops"] = op(json!({"ot": "text.insert", "key": "n", "path": "t",
                                  "position": x, "value": "hi"}))
        }
        8 => {
            m["ops"] = op(json!({"ot": "text.delete", "key": "n", "path": "t",
                                  "position": 1, "length": x}))
        }
        9 => {
            m["ops"] = op(
                json!({"ot": "string.insert", "key": "n", "path": "s", "index": x, "value": "z"}),
            )
        }
        10 => {
            m["ops"] = op(json!({"ot": "string.cut", "key": "n", "path": "s", "from": 1, "to": x}))
        }
        11 => {
            m["ops"] = op(json!({"ot": "array.move", "key": "n", "path": "a", "from": x, "to": 0}))
        }
        12 => {
            m["ops"] = op(
                json!({"ot": "text.insert", "key": "n", "path": "t", "id": "b:1",
                                  "value": [format!("a:{x}"), "q"], "seq": 3}),
            );
            // An anchor is any 32-bit id (it may simply not be held).
            return (m, x <= u64::from(u32::MAX));
        }
        _ => unreachable!(),
    }
    (m, safe)
}

const SLOTS: usize = 13;

/// The scene every extreme message lands on: a node with a text, a string and an
/// array, and a few characters typed by `a` and `b`.
fn scene() -> Vec<Message> {
    let v = json!([
        {"id": "s:1", "client": "s", "lt": 1, "ts": 0.5, "clock": {"s": 1}, "ops": [
            {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "T"}},
            {"ot": "text.init", "key": "n", "path": "t", "value": ""},
            {"ot": "string.set", "key": "n", "path": "s", "value": "abc"},
            {"ot": "array.set", "key": "n", "path": "a", "value": [1, 2, 3]}
        ]},
        {"id": "a:2", "client": "a", "lt": 2, "ts": 0.6, "clock": {"a": 1}, "ops": [
            {"ot": "text.insert", "key": "n", "path": "t", "id": "a:0", "value": [null, "hello"], "seq": 2, "ts": 0.6}
        ]}
    ]);
    wire::decode_messages(
        &serde_json::to_vec(&v).unwrap(),
        Format::Json,
        &Limits::default(),
    )
    .unwrap()
}

/// Feeds `m` to a replica and a store on the scene, then edits on: nothing panics
/// (debug builds check every overflow), and the replica equals the model.
fn exercise(m: Message) {
    let mut msgs = scene();
    msgs.push(m);
    let mut r = Replica::new();
    r.apply_batch(&msgs);
    let mut model = vuer_rtc::SceneGraph::default();
    vuer_rtc::apply_messages(&mut model, &msgs);
    assert_eq!(r.to_json(), model.to_json());

    let mut store = GraphStore::new("a");
    let _ = store.receive_batch(msgs.clone());
    for op in [
        json!({"ot": "text.insert", "key": "n", "path": "t", "position": 1, "value": "X"}),
        json!({"ot": "text.delete", "key": "n", "path": "t", "position": 0, "length": 2}),
        json!({"ot": "number.set", "key": "n", "path": "x", "value": 1.0}),
    ] {
        let op = vuer_rtc::op::Op::from_json(&op).unwrap();
        if store.edit(op).is_ok()
            && let Some(sent) = store.commit("")
        {
            // What a store sends always decodes again.
            let bytes = wire::encode_message(&sent, Format::MessagePack);
            wire::decode_message(&bytes, Format::MessagePack, &Limits::default()).unwrap();
            r.apply_message(&sent);
        }
    }
    let _ = store.undo();
    let _ = store.redo();
    r.to_json();
}

/// Decodes the message with integer `x` in `slot`: accepted exactly when within the
/// bound (in both codecs and spellings), and an accepted one breaks nothing.
fn check_integer(slot: usize, x: u64) -> Result<(), TestCaseError> {
    let (msg, ok) = with_integer(slot, x);
    match decode_all_ways(&msg) {
        Ok(m) => {
            prop_assert!(ok, "accepted out of bounds: {msg}");
            exercise(m);
        }
        Err(e) => {
            prop_assert!(!ok, "rejected in bounds: {msg}: {e}");
            prop_assert!(e.contains("a:") || e.contains("#0"), "{e}");
        }
    }
    Ok(())
}

#[test]
fn extreme_integers_are_bounded_at_decode_everywhere_they_enter() {
    for slot in 0..SLOTS {
        for x in EXTREMES {
            for d in [0, 1, 2] {
                for v in [x.saturating_sub(d), x.saturating_add(d)] {
                    check_integer(slot, v).unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    /// Any integer, near the bounds or anywhere.
    #[test]
    fn any_integer_is_bounded_at_decode(
        slot in 0..SLOTS,
        x in prop_oneof![
            any::<u64>(),
            (0..EXTREMES.len(), -3i64..=3).prop_map(|(k, d)| EXTREMES[k].saturating_add_signed(d)),
        ],
    ) {
        check_integer(slot, x)?;
    }
}

#[test]
fn a_store_at_the_last_lamport_time_refuses_to_edit_instead_of_wrapping() {
    let mut store = GraphStore::new("b");
    let top = decode_all_ways(
        &json!({"id": "a:top", "client": "a", "lt": MAX_SAFE_INT, "ops": [
            {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "T"}}
        ]}),
    )
    .unwrap();
    store.receive(top).unwrap();
    assert_eq!(store.lt(), MAX_SAFE_INT);
    let e = store
        .edit(vuer_rtc::op::Op::number_set("n", "x", 1.0))
        .unwrap_err();
    assert!(e.to_string().contains("2^53"), "{e}");
    assert_eq!(store.commit(""), None);
    assert_eq!(store.undo(), None);
    // One past it never decodes.
    let e = decode_all_ways(&base_msg(MAX_SAFE_INT + 1)).unwrap_err();
    assert!(e.contains("`lt`") && e.contains("2^53"), "{e}");
}

#[test]
fn text_ids_at_the_end_of_the_id_space_never_wrap() {
    // The five ids 4294967290..=4294967294 fit; typing on as `a` has no id left.
    let edge = decode_all_ways(&json!({"id": "a:9", "client": "a", "lt": 9, "ops": [
        {"ot": "text.insert", "key": "n", "path": "t", "id": "a:4294967290", "value": [null, "hello"], "seq": 9}
    ]}))
    .unwrap();
    let mut msgs = scene();
    msgs.truncate(1);
    msgs.push(edge);
    let later = json!([
        {"id": "b:10", "client": "b", "lt": 10, "ops": [
            {"ot": "text.delete", "key": "n", "path": "t", "rm": [["a:4294967292", 3]]},
            {"ot": "text.insert", "key": "n", "path": "t", "id": "b:0", "value": ["a:4294967291", "X"], "seq": 10}
        ]},
        {"id": "a:11", "client": "a", "lt": 11, "ops": [
            {"ot": "text.insert", "key": "n", "path": "t", "position": 1, "value": "Y"}
        ]}
    ]);
    msgs.extend(
        wire::decode_messages(
            &serde_json::to_vec(&later).unwrap(),
            Format::Json,
            &Limits::default(),
        )
        .unwrap(),
    );
    let mut r = Replica::new();
    let report = r.apply_batch(&msgs);
    assert!(report.rejected.is_empty(), "{report:?}");
    let t = r
        .graph()
        .node("n")
        .unwrap()
        .get("t")
        .unwrap()
        .as_str()
        .map(|s| s.to_string());
    // `a` cannot type a sixth id: its position insert does nothing, on every replica.
    assert_eq!(t.as_deref(), Some("heX"));
    exercise(msgs[1].clone());
    // Past the end: rejected at decode, in both paths (fast and generic) and codecs.
    for extra in [json!({}), json!({"ts": 1.5}), json!({"index": null})] {
        let mut op = json!({"ot": "text.insert", "key": "n", "path": "t", "id": "a:4294967294",
                            "value": [null, "hello"], "seq": 9});
        for (k, v) in extra.as_object().unwrap() {
            op[k] = v.clone();
        }
        let e = decode_all_ways(&json!({"id": "a:9", "client": "a", "lt": 9, "ops": [op]}))
            .unwrap_err();
        assert!(e.contains("runs past the last character id"), "{e}");
    }
}

fn msg(id: &str, client: &str, lt: u64, clock: u64, h: f64) -> Message {
    Message {
        id: id.into(),
        client: client.into(),
        clock: [(client.to_string(), clock)].into(),
        lt,
        ts: 1.0,
        ops: vec![vuer_rtc::op::Op::number_set("n", "h", h)],
    }
}

fn insert() -> Message {
    Message {
        id: "s:1".into(),
        client: "s".into(),
        clock: [("s".to_string(), 1)].into(),
        lt: 1,
        ts: 0.0,
        ops: vec![vuer_rtc::op::Op::node_insert("", "n", "Mesh")],
    }
}

#[test]
fn conflicting_copies_are_rejected_in_every_order_and_batch_split() {
    let x = msg("x", "b", 2, 1, 1.0);
    let x2 = msg("x", "b", 2, 1, 999.0);
    // Another id on x's stamp; another id on x's clock counter.
    let stamp = msg("y", "b", 2, 2, 5.0);
    let counter = msg("z", "b", 3, 1, 6.0);
    for rival in [x2, stamp, counter] {
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [2, 1, 0]] {
            let all = [insert(), x.clone(), rival.clone()];
            let msgs: Vec<Message> = order.iter().map(|&i| all[i].clone()).collect();
            let first = msgs
                .iter()
                .position(|m| m.id == x.id || m.id == rival.id)
                .unwrap();
            let (winner, loser) = if msgs[first] == x {
                (&x, &rival)
            } else {
                (&rival, &x)
            };
            for split in 1..=3 {
                let mut r = Replica::new();
                let mut rejected = Vec::new();
                for chunk in msgs.chunks(split) {
                    let report = r.apply_batch(chunk);
                    rejected.extend(report.rejected);
                }
                assert_eq!(rejected.len(), 1, "{order:?} split {split}: {rejected:?}");
                let e = rejected[0].to_string();
                assert!(
                    e.contains(&format!("{:?}", loser.id))
                        && e.contains(&format!("{:?}", winner.id)),
                    "{e}"
                );
                assert!(matches!(
                    rejected[0],
                    RejectError::Conflict { .. } | RejectError::StampInUse { .. }
                ));
                let h = r.graph().node("n").unwrap().get("h").unwrap().as_number();
                assert_eq!(h, winner.ops[0].kind.clone().number_value(), "{order:?}");
                // The store rejects it too.
                let mut store = GraphStore::new("c");
                let mut errs = 0;
                for m in &msgs {
                    errs += usize::from(store.receive(m.clone()).is_err());
                }
                assert_eq!(errs, 1);
            }
        }
    }
    // An exact copy is still a duplicate.
    let mut r = Replica::new();
    let report = r.apply_batch(&[insert(), x.clone(), x.clone()]);
    assert_eq!(
        (report.accepted, report.duplicates, report.rejected.len()),
        (2, 1, 0)
    );
    assert_eq!(r.apply_message(&x).duplicates, 1);
}

trait NumberValue {
    fn number_value(self) -> Option<f64>;
}

impl NumberValue for vuer_rtc::op::OpKind {
    fn number_value(self) -> Option<f64> {
        match self {
            vuer_rtc::op::OpKind::NumberSet(x) => Some(x),
            _ => None,
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vuer-rtc"))
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vuer-rtc-untrusted-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn replay_exits_1_naming_the_conflict_in_either_order() {
    let dir = tmp_dir("replay");
    let x = msg("x", "b", 2, 1, 1.0);
    let x2 = msg("x", "b", 2, 1, 999.0);
    for msgs in [[insert(), x.clone(), x2.clone()], [insert(), x2, x]] {
        let f = dir.join("conflict.json");
        std::fs::write(&f, wire::encode_messages(&msgs, Format::Json)).unwrap();
        let (code, out, err) = run(bin().arg("replay").arg(&f));
        assert_eq!(code, 1, "{out}");
        assert!(err.contains("conflicts with held message \"x\""), "{err}");
        assert!(out.is_empty());
    }
}

/// `x`, a message with its id and other content, and one on its stamp.
fn rivals() -> [Message; 3] {
    [
        msg("x", "b", 2, 1, 1.0),
        msg("x", "b", 2, 1, 999.0),
        msg("y", "b", 2, 2, 5.0),
    ]
}

#[test]
fn the_durable_journal_holds_only_accepted_messages_across_restarts() {
    let dir = tmp_dir("durable");
    let [x, conflict, stamp] = rivals();
    let later = msg("w", "b", 4, 3, 7.0);
    let options = DurableOptions::default();
    {
        let (mut d, _) = DurableReplica::open(&dir, options.clone()).unwrap();
        let r = d
            .apply(vec![insert(), x.clone(), x.clone(), conflict.clone()])
            .unwrap();
        assert_eq!(
            (r.accepted, r.duplicates, r.rejected.len()),
            (2, 1, 1),
            "{r:?}"
        );
        d.sync().unwrap();
    }
    {
        let (mut d, start) = DurableReplica::open(&dir, options.clone()).unwrap();
        assert_eq!(start.replayed, 2);
        for m in [x.clone(), conflict, stamp, insert()] {
            let r = d.apply(vec![m]).unwrap();
            assert_eq!(r.accepted, 0, "{r:?}");
        }
        assert_eq!(d.apply(vec![later.clone()]).unwrap().accepted, 1);
        d.sync().unwrap();
    }
    let journaled: Vec<String> = read_journal(&dir.join("journal"), &Limits::default())
        .unwrap()
        .messages
        .into_iter()
        .map(|(_, m)| m.id)
        .collect();
    assert_eq!(journaled, ["s:1", "x", "w"]);
}

#[test]
fn durable_apply_prints_each_fate_and_journals_only_the_applied() {
    let dir = tmp_dir("durable-cli");
    let [x, conflict, stamp] = rivals();
    let mut v: Vec<Json> = [insert(), x.clone(), x, conflict, stamp]
        .iter()
        .map(wire::message_to_json)
        .collect();
    v.push(json!({"id": "bad", "client": "b", "lt": 9, "ops": [{"ot": "number.set", "key": "n", "path": "h", "value": "no"}]}));
    let f = dir.join("in.json");
    std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    let state = dir.join("state");
    for round in 0..2 {
        let (code, out, err) = run(bin().arg("durable").arg("apply").arg(&state).arg(&f));
        assert_eq!(code, 1, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        let first = if round == 0 { "applied" } else { "duplicate" };
        assert_eq!(lines.len(), 6, "{out}");
        assert_eq!(lines[0], format!("{first} s:1"));
        assert_eq!(lines[1], format!("{first} x"));
        assert_eq!(lines[2], "duplicate x");
        assert!(
            lines[3].starts_with("rejected x: ") && lines[3].contains("conflicts"),
            "{out}"
        );
        assert!(
            lines[4].starts_with("rejected y: ") && lines[4].contains("stamp"),
            "{out}"
        );
        assert!(
            lines[5].starts_with("rejected #5: ") && lines[5].contains("\"bad\""),
            "{out}"
        );
        assert!(err.contains("3 message(s) rejected"), "{err}");
    }
    let (code, out, err) = run(bin().arg("journal").arg("read").arg(state.join("journal")));
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = serde_json::from_str::<Vec<Json>>(&out)
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["s:1", "x"]);
}

/// A message of `n` small ops, about 62 bytes each in JSON.
fn huge_message(n: usize) -> Json {
    let op = json!({"ot": "number.set", "key": "node-1", "path": "position.x", "value": 1.5});
    json!([{"id": "huge", "client": "a", "lt": 1, "ops": vec![op; n]}])
}

#[test]
fn a_message_over_the_limits_is_refused_before_it_is_decoded() {
    // 10^6 ops (62 MB of JSON): refused while scanned, in both formats, allocating a
    // small fraction of its size (it used to take 1.3 GB, 1.7 GB in MessagePack).
    let v = huge_message(1_000_000);
    for f in [Format::Json, Format::MessagePack] {
        let bytes = encode(&v, f);
        assert!(bytes.len() > 30_000_000);
        let (r, peak) =
            support::peak_alloc(|| wire::decode_messages(&bytes, f, &Limits::default()));
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("\"huge\"") && e.contains("1000000 ops exceed the limit of 100000"),
            "{e}"
        );
        assert!(peak < 1 << 20, "{f:?}: {peak} bytes allocated");
        let mut replica = Replica::new();
        let (report, peak) = support::peak_alloc(|| replica.apply_bytes(&bytes, f));
        assert_eq!(report.rejected.len(), 1);
        assert!(peak < 1 << 20, "{f:?}: {peak} bytes allocated");
    }
    // Under the op limit but over the byte limit.
    let v = huge_message(50_000);
    let lim = Limits {
        max_message_bytes: 1 << 20,
        ..Limits::default()
    };
    for f in [Format::Json, Format::MessagePack] {
        let bytes = encode(&v, f);
        let (r, peak) = support::peak_alloc(|| wire::decode_messages(&bytes, f, &lim));
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("bytes exceed the limit of 1048576 bytes per message"),
            "{e}"
        );
        assert!(peak < 1 << 16, "{f:?}: {peak} bytes allocated");
    }
}

#[test]
fn a_text_insert_reusing_held_ids_is_refused() {
    use vuer_rtc::text::{Applied, InsertOp, ItemId, TextDoc};
    let ins = |seq: u32, anchor: Option<(&str, u32)>, content: &str| InsertOp {
        id: ItemId {
            agent: "a".into(),
            seq,
        },
        anchor: anchor.map(|(a, s)| ItemId {
            agent: a.into(),
            seq: s,
        }),
        content: content.into(),
        lamport: u64::from(seq) + 1,
        ts: 1.0,
    };
    let mut d = TextDoc::new();
    // Ids 9 and 10 wait for their anchor `b:0`.
    assert_eq!(
        d.apply_insert(&ins(9, Some(("b", 0)), "zz")),
        Applied::Pending
    );
    assert_eq!(d.apply_insert(&ins(10, None, "abc")), Applied::Done);
    // Ids 8, 9, 10: 10 is held.
    assert_eq!(d.apply_insert(&ins(8, None, "xyz")), Applied::Invalid);
    // The waiting insert is released with its anchor, and refused: 10 is held.
    assert_eq!(
        d.apply_insert(&InsertOp {
            id: ItemId {
                agent: "b".into(),
                seq: 0
            },
            anchor: None,
            content: "B".into(),
            lamport: 50,
            ts: 1.0,
        }),
        Applied::Done
    );
    assert_eq!(d.text(), "Babc");
    // Ids 13.. are free: accepted.
    assert_eq!(
        d.apply_insert(&ins(13, Some(("a", 12)), "d")),
        Applied::Done
    );
    assert_eq!(d.text(), "Babcd");
    let dels = d.delete(0, 5);
    assert_eq!(dels.iter().map(|r| r.len).sum::<u32>(), 5);
    assert_eq!(d.text(), "");
}

#[test]
fn max_depth_means_the_same_for_json_and_msgpack_on_the_command_line() {
    let dir = tmp_dir("depth");
    let mut value = json!(1);
    for _ in 0..300 {
        value = json!([value]);
    }
    let v = json!([{"id": "deep", "client": "a", "lt": 1, "ops": [
        {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "T"}},
        {"ot": "array.set", "key": "n", "path": "p", "value": value}
    ]}]);
    let mp = dir.join("deep.msgpack");
    std::fs::write(&mp, encode(&v, Format::MessagePack)).unwrap();
    let js = dir.join("deep.json");
    let out = bin()
        .args([
            "convert",
            "--from",
            "msgpack",
            "--to",
            "json",
            "--max-depth",
            "301",
        ])
        .arg(&mp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&js, &out.stdout).unwrap();
    for (file, fmt) in [(&js, "json"), (&mp, "msgpack")] {
        let (code, out, err) = run(bin()
            .args(["replay", "--format", fmt, "--max-depth", "300"])
            .arg(file));
        assert_eq!(code, 0, "{fmt}: {err}");
        assert!(out.contains("\"p\""));
        let (code, _, err) = run(bin()
            .args(["replay", "--format", fmt, "--max-depth", "299"])
            .arg(file));
        assert_eq!(code, 1, "{fmt}");
        assert!(
            err.contains("\"deep\" op #1 (array.set)")
                && err.contains("nesting depth exceeds the limit of 299"),
            "{fmt}: {err}"
        );
    }
    // Past the cap, clap says so.
    let (code, _, err) = run(bin().args(["replay", "--max-depth", "513"]).arg(&js));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn nan_in_msgpack_is_reported_as_nan() {
    let dir = tmp_dir("nan");
    let v = json!([{"id": "m", "client": "a", "lt": 1, "ops": [
        {"ot": "number.set", "key": "n", "path": "x", "value": 0.25}
    ]}]);
    let mut b = encode(&v, Format::MessagePack);
    let mut needle = vec![0xcb];
    needle.extend_from_slice(&0.25f64.to_bits().to_be_bytes());
    let at = b.windows(9).position(|w| w == needle).unwrap();
    b[at + 1..at + 9].copy_from_slice(&f64::NAN.to_bits().to_be_bytes());
    let f = dir.join("nan.msgpack");
    std::fs::write(&f, b).unwrap();
    let (code, _, err) = run(bin().args(["replay", "--format", "msgpack"]).arg(&f));
    assert_eq!(code, 1);
    assert!(
        err.contains("\"m\" op #0 (number.set)")
            && err.contains("`value`: NaN is not a finite number"),
        "{err}"
    );
}

#[test]
fn messages_built_in_code_keep_the_bound_too_and_snapshots_are_held_to_it() {
    // A message that never went through the decoder.
    let mut m = msg("big", "a", MAX_SAFE_INT + 1, 1, 1.0);
    let mut r = Replica::new();
    let report = r.apply_message(&m);
    assert_eq!(report.accepted, 0);
    assert!(
        report.rejected[0]
            .to_string()
            .contains("`lt` 9007199254740992"),
        "{report:?}"
    );
    m.lt = 5;
    m.clock.insert("b".into(), u64::MAX);
    let report = r.apply_batch(&[insert(), m]);
    assert_eq!(report.accepted, 1);
    assert!(
        report.rejected[0].to_string().contains("`clock.b`"),
        "{report:?}"
    );
    let mut store = GraphStore::new("c");
    assert!(store.receive(msg("x", "a", u64::MAX, 1, 1.0)).is_err());
    // A replica based past the bound (built in code) snapshots, but never restores.
    let base = Replica::from_base(
        vuer_rtc::SceneGraph::default(),
        &Default::default(),
        u64::MAX,
    );
    let bytes = base.snapshot();
    let e = Replica::from_snapshot(bytes.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2^53"), "{e}");
    let ok = Replica::from_base(
        vuer_rtc::SceneGraph::default(),
        &Default::default(),
        MAX_SAFE_INT,
    );
    assert!(Replica::from_snapshot(ok.snapshot().as_bytes()).is_ok());
}

//! Op semantics through the public API: each test states a history and the state it
//! must produce. `check` replays messages in canonical order and compares one property.

use serde_json::{Value as Json, json};
use vuer_rtc::column::ValueRef;
use vuer_rtc::error::WarningKind;
use vuer_rtc::op::{Limits, Op};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Message, OpMeta, SceneGraph, apply_messages, apply_operation, create_empty_graph};

use crate::support::msg;

fn replay(msgs: &[Message]) -> SceneGraph {
    let mut g = create_empty_graph();
    apply_messages(&mut g, msgs);
    g.dbg_check(true);
    g
}

fn prop(g: &SceneGraph, key: &str, path: &str) -> Option<Json> {
    g.node(key)?.get(path).map(ValueRef::to_json)
}

fn children(g: &SceneGraph, key: &str) -> Vec<String> {
    g.node(key)
        .unwrap()
        .children()
        .map(|c| c.key().to_owned())
        .collect()
}

fn scene() -> Message {
    msg(
        "alice",
        1,
        1.0,
        vec![
            Op::node_insert("", "scene", "Scene"),
            Op::node_insert("scene", "obj", "Mesh"),
            Op::number_set("obj", "health", 100.0),
        ],
    )
}

#[test]
fn two_clients_converge_to_65() {
    let a = msg(
        "alice",
        2,
        2.0,
        vec![Op::number_add("obj", "health", -25.0)],
    );
    let b = msg("bob", 2, 2.0, vec![Op::number_add("obj", "health", -10.0)]);
    let g1 = replay(&[scene(), a.clone(), b.clone()]);
    let g2 = replay(&[b, a, scene()]);
    assert_eq!(prop(&g1, "obj", "health"), Some(json!(65)));
    assert_eq!(g1.to_json(), g2.to_json());
}

#[test]
fn set_versus_concurrent_add_is_order_independent() {
    // The reference gives 15 on one replica and 10 on the other; we give one answer.
    let set = msg("alice", 2, 2.0, vec![Op::number_set("obj", "x", 10.0)]);
    let add = msg("bob", 2, 2.0, vec![Op::number_add("obj", "x", 5.0)]);
    let g1 = replay(&[scene(), set.clone(), add.clone()]);
    let g2 = replay(&[scene(), add, set]);
    // (2, alice) < (2, bob): set, then add.
    assert_eq!(prop(&g1, "obj", "x"), Some(json!(15)));
    assert_eq!(g1.to_json(), g2.to_json());
}

#[test]
fn lww_first_write_in_a_message_wins_and_ties_break_on_client() {
    let m = msg(
        "alice",
        2,
        2.0,
        vec![
            Op::number_set("obj", "x", 1.0),
            Op::number_add("obj", "x", 10.0),
            Op::number_set("obj", "x", 2.0),
        ],
    );
    let g = replay(&[scene(), m]);
    assert_eq!(prop(&g, "obj", "x"), Some(json!(11)));
    // Same lt: "bob" > "alice" wins, whatever the order.
    let a = msg("alice", 5, 5.0, vec![Op::string_set("obj", "s", "alice")]);
    let b = msg("bob", 5, 5.0, vec![Op::string_set("obj", "s", "bob")]);
    assert_eq!(
        prop(&replay(&[scene(), b.clone(), a.clone()]), "obj", "s"),
        Some(json!("bob"))
    );
    assert_eq!(
        prop(&replay(&[scene(), a, b]), "obj", "s"),
        Some(json!("bob"))
    );
}

#[test]
fn concurrent_insert_of_one_key_keeps_the_oldest_stamp() {
    let a = msg(
        "alice",
        2,
        5.0,
        vec![Op::node_insert("scene", "k", "FromAlice")],
    );
    let b = msg(
        "bob",
        2,
        3.0,
        vec![Op::node_insert("scene", "k", "FromBob")],
    );
    let orders = [vec![scene(), a.clone(), b.clone()], vec![b, a, scene()]];
    for order in &orders {
        let g = replay(order);
        assert_eq!(g.node("k").unwrap().tag(), "FromAlice");
    }
}

#[test]
fn concurrent_moves_never_make_a_cycle() {
    let setup = msg(
        "alice",
        1,
        1.0,
        vec![
            Op::node_insert("", "root", "Scene"),
            Op::node_insert("root", "a", "Group"),
            Op::node_insert("root", "b", "Group"),
        ],
    );
    let ab = msg("alice", 2, 2.0, vec![Op::node_move("root", "a", "b")]);
    let ba = msg("bob", 2, 2.0, vec![Op::node_move("root", "b", "a")]);
    let g = replay(&[ba.clone(), setup.clone(), ab.clone()]);
    // alice's move comes first; bob's would close a cycle and is skipped.
    assert_eq!(children(&g, "root"), ["b"]);
    assert_eq!(children(&g, "b"), ["a"]);
    assert_eq!(g.to_json(), replay(&[setup, ab, ba]).to_json());

    // Moving a node under itself or its descendant is reported and skipped.
    let mut g = create_empty_graph();
    let meta = OpMeta {
        client: "a",
        lt: 1,
        ts: 0.0,
    };
    apply_operation(&mut g, &Op::node_insert("", "p", "G"), &meta);
    apply_operation(&mut g, &Op::node_insert("p", "c", "G"), &meta);
    assert!(matches!(
        apply_operation(&mut g, &Op::node_move("", "p", "c"), &meta),
        Some(WarningKind::Cycle { .. })
    ));
    assert!(matches!(
        apply_operation(&mut g, &Op::node_move("", "p", "p"), &meta),
        Some(WarningKind::Cycle { .. })
    ));
}

#[test]
fn move_and_remove_use_the_actual_parent() {
    let setup = msg(
        "alice",
        1,
        1.0,
        vec![
            Op::node_insert("", "root", "Scene"),
            Op::node_insert("root", "a", "G"),
            Op::node_insert("root", "b", "G"),
            Op::node_insert("a", "x", "G"),
        ],
    );
    // op.key names the wrong parent: the node still leaves its real parent.
    let mv = msg("alice", 2, 2.0, vec![Op::node_move("b", "x", "b")]);
    let g = replay(&[setup.clone(), mv.clone()]);
    assert_eq!(children(&g, "a"), Vec::<String>::new());
    assert_eq!(children(&g, "b"), ["x"]);
    let rm = msg("alice", 3, 3.0, vec![Op::node_remove("root", "x")]);
    let g = replay(&[setup, mv, rm]);
    assert_eq!(children(&g, "b"), Vec::<String>::new());
    assert!(g.node("x").unwrap().deleted());
    assert!(g.node("x").unwrap().parent().is_none());
}

#[test]
fn flat_node_forms() {
    let mut g = create_empty_graph();
    let meta = OpMeta {
        client: "a",
        lt: 1,
        ts: 0.0,
    };
    for v in [
        json!({"otype": "node.insert", "key": ".", "path": "children", "value": {"key": "g", "tag": "Group"}}),
        json!({"otype": "node.insert", "key": ".", "path": "children", "value": {"key": "c", "tag": "Mesh"}}),
        json!({"otype": "node.move", "key": "c", "to": "g", "toPath": "children"}),
    ] {
        assert_eq!(
            apply_operation(&mut g, &Op::from_json(&v).unwrap(), &meta),
            None,
            "{v}"
        );
    }
    assert_eq!(children(&g, "g"), ["c"]);
    apply_operation(
        &mut g,
        &Op::from_json(&json!({"otype": "node.remove", "key": "c", "path": "."})).unwrap(),
        &meta,
    );
    assert!(g.node("c").unwrap().deleted());
}

#[test]
fn ops_on_missing_or_deleted_nodes_do_nothing() {
    let rm = msg("alice", 2, 2.0, vec![Op::node_remove("scene", "obj")]);
    let after = msg(
        "bob",
        3,
        3.0,
        vec![
            Op::number_set("obj", "health", 1.0),
            Op::number_add("ghost", "health", 1.0),
            Op::node_move("", "obj", "scene"),
            Op::node_insert("scene", "obj", "Again"),
        ],
    );
    let mut g = create_empty_graph();
    let report = apply_messages(&mut g, &[scene(), rm, after]);
    let obj = g.node("obj").unwrap();
    assert!(obj.deleted());
    assert_eq!(obj.tag(), "Mesh", "no resurrection");
    assert_eq!(
        obj.get("health"),
        Some(ValueRef::Number(100.0)),
        "tombstone keeps its props"
    );
    let reasons: Vec<_> = report.warnings.iter().map(|w| &w.reason).collect();
    assert!(
        matches!(
            reasons[..],
            [
                WarningKind::DeletedNode(_),
                WarningKind::MissingNode(_),
                WarningKind::DeletedNode(_),
                WarningKind::DeletedNode(_)
            ]
        ),
        "{reasons:?}"
    );
    // A deleted node can still be a parent.
    let ins = msg("carol", 4, 4.0, vec![Op::node_insert("obj", "child", "G")]);
    let mut g2 = create_empty_graph();
    apply_messages(
        &mut g2,
        &[
            scene(),
            msg("alice", 2, 2.0, vec![Op::node_remove("scene", "obj")]),
            ins,
        ],
    );
    assert_eq!(children(&g2, "obj"), ["child"]);
}

#[test]
fn children_order_by_created_ts_then_key() {
    let a = msg(
        "alice",
        2,
        9.0,
        vec![
            Op::node_insert("scene", "zz", "G"),
            Op::node_insert("scene", "aa", "G"),
        ],
    );
    let b = msg("bob", 3, 1.0, vec![Op::node_insert("scene", "mm", "G")]);
    let g = replay(&[scene(), a, b]);
    assert_eq!(children(&g, "scene"), ["mm", "obj", "aa", "zz"]);
}

#[test]
fn root_is_first_node_and_root_keys_target_it() {
    let m = msg(
        "alice",
        1,
        1.0,
        vec![
            Op::node_insert("", "first", "Scene"),
            Op::node_insert("", "second", "Scene"),
            Op::number_set(".", "gravity", -9.75),
            Op::number_set("", "speed", 2.0),
        ],
    );
    let g = replay(&[m]);
    assert_eq!(g.root().unwrap().key(), "first");
    assert_eq!(prop(&g, "first", "gravity"), Some(json!(-9.75)));
    assert_eq!(prop(&g, "first", "speed"), Some(json!(2)));
    assert_eq!(g.to_json_value()["rootKey"], json!("first"));
    assert_eq!(
        create_empty_graph().to_json(),
        r#"{"nodes":{},"rootKey":""}"#
    );
}

#[test]
fn two_dtypes_on_one_path_fall_back_without_panicking() {
    let m = msg(
        "alice",
        2,
        2.0,
        vec![
            Op::node_insert("scene", "o2", "Mesh"),
            Op::vector3_set("obj", "p", [1.0, 2.0, 3.0]),
            Op::string_set("o2", "p", "text"),
            Op::number_add("o2", "p", 1.0),
        ],
    );
    let mut g = create_empty_graph();
    let r = apply_messages(&mut g, &[scene(), m]);
    assert_eq!(
        g.node("obj").unwrap().get("p"),
        Some(ValueRef::Vec3([1.0, 2.0, 3.0]))
    );
    assert_eq!(g.node("o2").unwrap().get("p"), Some(ValueRef::Str("text")));
    assert!(matches!(
        r.warnings[0].reason,
        WarningKind::TypeMismatch {
            ot: "number.add",
            ..
        }
    ));
    // A later set of another type replaces the value; additive ops then use the new type.
    let m2 = msg(
        "bob",
        3,
        3.0,
        vec![
            Op::number_set("o2", "p", 4.0),
            Op::number_multiply("o2", "p", 2.0),
        ],
    );
    let mut g = create_empty_graph();
    apply_messages(
        &mut g,
        &[
            scene(),
            msg(
                "alice",
                2,
                2.0,
                vec![
                    Op::node_insert("scene", "o2", "M"),
                    Op::string_set("o2", "p", "t"),
                ],
            ),
            m2,
        ],
    );
    assert_eq!(prop(&g, "o2", "p"), Some(json!(8)));
}

#[test]
fn object_ops() {
    let m = msg("alice", 2, 2.0, vec![
        Op::from_json(&json!({"ot": "object.set", "key": "obj", "path": "config", "value": {"a": {"x": 1}, "tmp": 1}})).unwrap(),
        Op::from_json(&json!({"ot": "object.merge", "key": "obj", "path": "config", "value": {"a": {"y": 2}}})).unwrap(),
        Op::from_json(&json!({"ot": "object.update", "key": "obj", "path": "config", "value": {"b": 3}})).unwrap(),
        Op::from_json(&json!({"ot": "object.remove", "key": "obj", "path": "config.tmp"})).unwrap(),
        Op::from_json(&json!({"ot": "object.merge", "key": "obj", "path": ".", "value": {"name": "n", "key": "no", "tag": "no", "children": ["no"], "visible": true}})).unwrap(),
        Op::from_json(&json!({"ot": "object.update", "key": "obj", "path": ".", "value": {"opacity": 0.5}})).unwrap(),
    ]);
    let g = replay(&[scene(), m]);
    assert_eq!(
        prop(&g, "obj", "config"),
        Some(json!({"a": {"x": 1, "y": 2}, "b": 3}))
    );
    let obj = g.node("obj").unwrap();
    assert_eq!((obj.key(), obj.tag(), obj.name()), ("obj", "Mesh", ""));
    assert_eq!(prop(&g, "obj", "name"), Some(json!("n")));
    assert_eq!(prop(&g, "obj", "visible"), Some(json!(true)));
    assert_eq!(prop(&g, "obj", "opacity"), Some(json!(0.5)));
    assert_eq!(obj.children().len(), 0);
    // object.remove of an exact (dotted) property name removes that property.
    let m = msg(
        "bob",
        3,
        3.0,
        vec![
            Op::number_set("obj", "meta.author", 1.0),
            Op::from_json(&json!({"ot": "object.remove", "key": "obj", "path": "meta.author"}))
                .unwrap(),
        ],
    );
    assert_eq!(prop(&replay(&[scene(), m]), "obj", "meta.author"), None);
}

#[test]
fn upsert_and_inset() {
    let m = msg("alice", 2, 2.0, vec![
        Op::number_set("obj", "x", 1.0),
        Op::from_json(&json!({"ot": "node.upsert", "key": "scene", "path": "children", "value": {"key": "obj", "style": {"a": 1}, "x": 5}})).unwrap(),
        Op::from_json(&json!({"ot": "node.upsert", "key": "scene", "path": "children", "value": {"key": "new", "tag": "Group", "style": {"b": 2}}})).unwrap(),
        Op::from_json(&json!({"ot": "node.upsert", "key": "scene", "path": "children", "value": {"key": "new", "style": {"c": 3}}})).unwrap(),
    ]);
    let g = replay(&[scene(), m]);
    assert_eq!(prop(&g, "obj", "x"), Some(json!(5)), "upsert merges props");
    assert_eq!(prop(&g, "new", "style"), Some(json!({"b": 2, "c": 3})));
    assert_eq!(children(&g, "scene"), ["obj", "new"]);
    let inset = msg("bob", 3, 3.0, vec![
        Op::from_json(&json!({"ot": "node.inset", "key": "scene", "path": "children", "value": {"key": "obj", "tag": "Light", "x": 7}})).unwrap(),
    ]);
    let g = replay(&[scene(), inset]);
    assert_eq!(g.node("obj").unwrap().tag(), "Light");
    assert_eq!(prop(&g, "obj", "x"), Some(json!(7)));
}

#[test]
fn rotations_and_colours() {
    let m = msg("alice", 2, 2.0, vec![
        Op::vector3_set("obj", "dir", [1.0, 0.0, 0.0]),
        Op::from_json(&json!({"ot": "vector3.applyEuler", "key": "obj", "path": "dir", "value": [0, std::f64::consts::FRAC_PI_2, 0]})).unwrap(),
        Op::quaternion_multiply("obj", "rot", [0.0, 0.0, 0.0, 1.0]),
        Op::color_set("obj", "c", "#FF0000"),
        Op::color_blend("obj", "c", "#0000ff", 0.5),
        Op::color_set("obj", "c2", "#ff0000"),
    ]);
    let g = replay(&[scene(), m]);
    let dir = g
        .node("obj")
        .unwrap()
        .get("dir")
        .unwrap()
        .as_vec3()
        .unwrap();
    assert!(
        (dir[0]).abs() < 1e-6 && (dir[2] + 1.0).abs() < 1e-6,
        "{dir:?}"
    );
    assert_eq!(prop(&g, "obj", "rot"), Some(json!([0, 0, 0, 1])));
    assert_eq!(
        prop(&g, "obj", "c"),
        Some(json!("#800080")),
        "blend of #FF0000 and #0000ff"
    );
    assert_eq!(
        g.node("obj").unwrap().get("c2"),
        Some(ValueRef::Color(vuer_rtc::column::Rgb(0xff0000)))
    );
}

#[test]
fn undo_and_redo_in_replay() {
    let set = msg(
        "alice",
        2,
        2.0,
        vec![Op::number_add("obj", "health", -50.0)],
    );
    let undo = msg("bob", 3, 3.0, vec![Op::meta_undo("alice:2")]);
    let redo = msg("alice", 4, 4.0, vec![Op::meta_redo("alice:2")]);
    assert_eq!(
        prop(
            &replay(&[scene(), set.clone(), undo.clone()]),
            "obj",
            "health"
        ),
        Some(json!(100))
    );
    assert_eq!(
        prop(
            &replay(&[redo.clone(), undo.clone(), set.clone(), scene()]),
            "obj",
            "health"
        ),
        Some(json!(50))
    );
    // Undo issued "before" its target (smaller stamp) still applies.
    let early = msg("zed", 1, 0.5, vec![Op::meta_undo("alice:2")]);
    assert_eq!(
        prop(&replay(&[scene(), set, early]), "obj", "health"),
        Some(json!(100))
    );
}

#[test]
fn both_spellings_and_both_encodings_give_one_state() {
    let legacy = br#"[{"id": "a:1", "sessionId": "a", "lamportTime": 1, "timestamp": 1.0, "clock": {"a": 1}, "ops": [
        {"otype": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "Mesh", "position": [0, 1, 0]}},
        {"otype": "vector3.add", "key": "n", "path": "position", "value": [1, 1, 1]}]}]"#;
    let compressed = br#"[{"id": "a:1", "client": "a", "lt": 1, "ts": 1.0, "clock": {"a": 1}, "ops": [
        {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "Mesh", "position": [0, 1, 0]}},
        {"ot": "vector3.add", "key": "n", "path": "position", "value": [1, 1, 1]}]}]"#;
    let a = wire::decode_messages(legacy, Format::Json, &Limits::default()).unwrap();
    let b = wire::decode_messages(compressed, Format::Json, &Limits::default()).unwrap();
    let mp = wire::encode_messages(&a, Format::MessagePack);
    let c = wire::decode_messages(&mp, Format::MessagePack, &Limits::default()).unwrap();
    let s = replay(&a).to_json();
    assert_eq!(s, replay(&b).to_json());
    assert_eq!(s, replay(&c).to_json());
    assert_eq!(prop(&replay(&a), "n", "position"), Some(json!([1, 2, 1])));
}

#[test]
fn insert_under_itself_is_a_cycle_not_a_hang() {
    // Regression: a node.insert whose parent key is its own key used to attach the
    // node to itself, and the next ancestor walk never ended.
    let mut g = create_empty_graph();
    let meta = OpMeta {
        client: "a",
        lt: 1,
        ts: 0.0,
    };
    let w = apply_operation(&mut g, &Op::node_insert("x", "x", "G"), &meta);
    assert!(matches!(w, Some(WarningKind::Cycle { .. })), "{w:?}");
    assert!(g.node("x").unwrap().parent().is_none());
    apply_operation(&mut g, &Op::node_insert("x", "y", "G"), &meta);
    g.dbg_check(true);
}

#[test]
fn ops_that_do_nothing_warn_alike_in_the_model_and_the_replica() {
    use vuer_rtc::{OpKind, Replica};
    let cut = |from, to| Op::new("obj", "label", OpKind::StringCut { from, to });
    let later = msg(
        "bob",
        2,
        2.0,
        vec![
            Op::string_set("obj", "label", "abc"),
            Op::node_insert("scene", "obj", "Again"),
            // Not a no-op: upsert updates the node.
            Op::from_json(
                &json!({"ot": "node.upsert", "key": "scene", "path": "children",
                "value": {"key": "obj", "tag": "Mesh"}}),
            )
            .unwrap(),
            cut(5, 9),
            cut(1, 1),
            cut(1, 99),
        ],
    );
    let history = [scene(), later];
    let mut g = create_empty_graph();
    let model = apply_messages(&mut g, &history);
    let reasons: Vec<String> = model.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        [
            r#"message "bob:2" op #1: node `obj` already exists: insert ignored"#,
            r#"message "bob:2" op #3: `string.cut` index 5 is out of range for length 3 at `label`"#,
        ]
    );
    assert_eq!(prop(&g, "obj", "label"), Some(json!("a")));
    assert_eq!(
        g.node("obj").unwrap().tag(),
        "Mesh",
        "the insert did nothing"
    );
    // In order, one message at a time and all at once: the replica's warnings are the
    // model's.
    let mut one = Replica::new();
    let mut warnings = Vec::new();
    for m in &history {
        warnings.extend(one.apply_batch(std::slice::from_ref(m)).warnings);
    }
    assert_eq!(warnings, model.warnings);
    let mut all = Replica::new();
    assert_eq!(all.apply_batch(&history).warnings, model.warnings);
    assert_eq!(one.to_json(), g.to_json());
}

#[test]
fn undo_of_an_unknown_message_warns_in_the_model() {
    let undo = msg(
        "bob",
        2,
        2.0,
        vec![Op::meta_undo("alice:1"), Op::meta_undo("ghost:7")],
    );
    let redo = msg(
        "carol",
        3,
        3.0,
        vec![
            Op::number_add("obj", "health", 1.0),
            Op::meta_redo("ghost:8"),
        ],
    );
    let report = apply_messages(&mut create_empty_graph(), &[undo, scene(), redo]);
    let reasons: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        [
            r#"message "bob:2" op #1: `meta.undo` targets `ghost:7`, which no message has: nothing to do"#,
            r#"message "carol:3" op #0: node `obj` does not exist"#,
            r#"message "carol:3" op #1: `meta.redo` targets `ghost:8`, which no message has: nothing to do"#,
        ]
    );
}

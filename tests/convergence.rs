//! Convergence property: for random multi-client histories (every op kind, text in
//! position form included,
//! concurrent and tied Lamport times, undo/redo, moves racing into cycles, inserts
//! racing on one key), any delivery order with any duplicates gives a byte-identical
//! `to_json()`, and the wire round trip (JSON and MessagePack) changes nothing.
//!
//! Seeded; scale with `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (see `support::proptest_config`).

use proptest::prelude::*;
use serde_json::json;
use vuer_rtc::op::{EulerOrder, Json, Limits, Message, NodeOpForm, NodeSpec, Op, OpKind, TextEdit};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{apply_messages, create_empty_graph};

const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const PATHS: [&str; 4] = ["p", "q", "transform.position", "tags"];
pub const CLIENTS: [&str; 4] = ["Mia", "alice", "bob", "c-1"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(&KEYS[..]).prop_map(str::to_owned)
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(&PATHS[..]).prop_map(str::to_owned)
}

fn eighth() -> impl Strategy<Value = f32> {
    (-16i32..16).prop_map(|i| i as f32 / 8.0)
}

fn vec3() -> impl Strategy<Value = [f32; 3]> {
    [eighth(), eighth(), eighth()]
}

fn quat() -> impl Strategy<Value = [f32; 4]> {
    [eighth(), eighth(), eighth(), eighth()]
}

fn number() -> impl Strategy<Value = f64> {
    (-100i32..100).prop_map(|i| f64::from(i) / 4.0)
}

fn small_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        (0i32..4).prop_map(|i| json!(i)),
        prop::sample::select(&["x", "y", "z"][..]).prop_map(|s| json!(s)),
        Just(json!({"k": 1})),
        Just(json!(null)),
    ]
}

fn object() -> impl Strategy<Value = serde_json::Map<String, Json>> {
    prop::collection::btree_map(
        prop::sample::select(&["x", "y", "name", "key", "p"][..]).prop_map(str::to_owned),
        prop_oneof![
            small_json(),
            Just(json!({"n": {"m": 2}})),
            Just(json!({"n": {"o": 3}}))
        ],
        0..3,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(&["", "ab", "héllo", "#ff0000", "#00FF00", "red"][..])
        .prop_map(str::to_owned)
}

fn idx() -> impl Strategy<Value = i64> {
    -4i64..6
}

fn spec() -> impl Strategy<Value = NodeSpec> {
    (
        key(),
        prop::option::of(prop::sample::select(&["Mesh", "Group"][..])),
        prop::collection::vec(key(), 0..2),
        object(),
    )
        .prop_map(|(key, tag, children, props)| NodeSpec {
            key,
            tag: tag.map(str::to_owned),
            name: None,
            children,
            props: props
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "key" | "tag" | "name" | "children"))
                .collect(),
        })
}

fn prop_kind() -> impl Strategy<Value = OpKind> {
    use OpKind::*;
    prop_oneof![
        number().prop_map(NumberSet),
        number().prop_map(NumberAdd),
        number().prop_map(NumberMultiply),
        number().prop_map(NumberMin),
        number().prop_map(NumberMax),
        vec3().prop_map(Vector3Set),
        vec3().prop_map(Vector3Add),
        vec3().prop_map(Vector3Multiply),
        quat().prop_map(Vector3ApplyQuaternion),
        (
            vec3(),
            prop::sample::select(&EulerOrder::ALL[..]),
            any::<bool>()
        )
            .prop_map(|(angles, (order, _), intrinsic)| {
                Vector3ApplyEuler {
                    angles,
                    order,
                    intrinsic,
                }
            }),
        vec3().prop_map(EulerSet),
        vec3().prop_map(EulerAdd),
        quat().prop_map(QuaternionSet),
        quat().prop_map(QuaternionMultiply),
        text().prop_map(ColorSet),
        (text(), prop::sample::select(&[0.0, 0.25, 0.5, 1.0][..]))
            .prop_map(|(value, alpha)| ColorBlend { value, alpha }),
        text().prop_map(StringSet),
        (text(), text()).prop_map(|(value, separator)| StringConcat { value, separator }),
        (text(), idx()).prop_map(|(value, index)| StringInsert { value, index }),
        (idx(), idx()).prop_map(|(from, to)| StringCut { from, to }),
        (idx(), idx(), text()).prop_map(|(from, to, value)| StringReplace { from, to, value }),
        (idx(), idx(), idx()).prop_map(|(from, to, index)| StringMove { from, to, index }),
        any::<bool>().prop_map(BooleanSet),
        any::<bool>().prop_map(BooleanOr),
        any::<bool>().prop_map(BooleanAnd),
        any::<bool>().prop_map(BooleanXor),
        prop::collection::vec(small_json(), 0..3).prop_map(ArraySet),
        small_json().prop_map(ArrayPush),
        (small_json(), idx()).prop_map(|(value, index)| ArrayInsert { value, index }),
        (prop::option::of(small_json()), prop::option::of(idx()))
            .prop_filter("value or index", |(v, i)| v.is_some() || i.is_some())
            .prop_map(|(value, index)| ArrayRemove { value, index }),
        (idx(), idx()).prop_map(|(from, to)| ArrayMove { from, to }),
        prop::collection::vec(small_json(), 0..3).prop_map(ArrayUnion),
        object().prop_map(ObjectSet),
        object().prop_map(ObjectUpdate),
        object().prop_map(ObjectMerge),
        prop::option::of(prop::sample::select(&["x", "n"][..])).prop_map(|f| ObjectRemove {
            field: f.map(str::to_owned)
        }),
        text().prop_map(TextInit),
        (0u64..8, text()).prop_map(|(position, value)| TextInsert(TextEdit::At {
            position,
            length: 0,
            value
        })),
        (0u64..8, 0u64..4).prop_map(|(position, length)| TextDelete(TextEdit::At {
            position,
            length,
            value: String::new()
        })),
        (0u64..8, 0u64..4, text()).prop_map(|(position, length, value)| TextReplace(
            TextEdit::At {
                position,
                length,
                value
            }
        )),
    ]
}

/// A random op of any kind but `meta.*` (what a client may put in its edit buffer).
pub fn edit_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key(), path(), prop_kind()).prop_map(|(k, p, kind)| Op::new(k, p, kind)),
        1 => (key(), object()).prop_map(|(k, m)| Op::new(k, ".", OpKind::ObjectMerge(m))),
        1 => (key(), object()).prop_map(|(k, m)| Op::new(k, ".", OpKind::ObjectUpdate(m))),
        1 => (key(), path()).prop_map(|(k, p)| Op::new(k, p, OpKind::ObjectRemove { field: None })),
        3 => (prop::option::of(key()), spec()).prop_map(|(parent, s)| Op::new(parent.unwrap_or_default(), "children", OpKind::NodeInsert(s))),
        1 => (key(), spec()).prop_map(|(parent, s)| Op::new(parent, "children", OpKind::NodeUpsert(s))),
        1 => (key(), spec()).prop_map(|(parent, s)| Op::new(parent, "children", OpKind::NodeInset(s))),
        1 => (key(), key()).prop_map(|(p, n)| Op::new(p, "children", OpKind::NodeRemove { node: n, form: NodeOpForm::Nested })),
        3 => (key(), key(), key()).prop_map(|(old, n, np)| Op::node_move(old, n, np)),
    ]
}

fn op(targets: Vec<String>) -> impl Strategy<Value = Op> {
    let target = prop::sample::select(targets);
    prop_oneof![
        24 => edit_op(),
        1 => target.clone().prop_map(Op::meta_undo),
        1 => target.prop_map(Op::meta_redo),
    ]
}

/// A random history: distinct `(lt, client)` per message, ids `client:lt`.
pub fn history() -> impl Strategy<Value = Vec<Message>> {
    let targets: Vec<String> = CLIENTS
        .iter()
        .flat_map(|c| (1..10).map(move |lt| format!("{c}:{lt}")))
        .collect();
    prop::collection::vec(
        (
            prop::sample::select(&CLIENTS[..]),
            1u64..10,
            prop::sample::select(&[1.0, 1.5, 2.0][..]),
            prop::collection::vec(op(targets), 1..5),
        ),
        1..24,
    )
    .prop_map(numbered)
}

/// Messages from raw `(client, lt, ts, ops)` tuples: the first of each `(client, lt)`
/// kept, ids `client:lt`, and each client numbering its messages in its own clock
/// entry, in Lamport order, as a real client does (compaction relies on it).
pub fn numbered(raw: Vec<(&str, u64, f64, Vec<Op>)>) -> Vec<Message> {
    let mut seen = std::collections::HashSet::new();
    let mut msgs: Vec<Message> = raw
        .into_iter()
        .filter(|(c, lt, _, _)| seen.insert((c.to_string(), *lt)))
        .map(|(c, lt, ts, ops)| crate::support::msg(c, lt, ts, ops))
        .collect();
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by_key(|&i| msgs[i].lt);
    let mut next: std::collections::HashMap<String, u64> = Default::default();
    for i in order {
        let n = next.entry(msgs[i].client.clone()).or_insert(0);
        *n += 1;
        let client = msgs[i].client.clone();
        msgs[i].clock.insert(client, *n);
    }
    msgs
}

pub fn state(msgs: &[Message]) -> String {
    let mut g = create_empty_graph();
    apply_messages(&mut g, msgs);
    g.dbg_check(true);
    g.to_json()
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn delivery_order_and_duplicates_do_not_matter(msgs in history(), seed in any::<u64>()) {
        let base = state(&msgs);
        let shuffled = crate::support::shuffled_with_duplicates(&msgs, seed);
        prop_assert_eq!(state(&shuffled), base);
    }

    #[test]
    fn wire_round_trip_preserves_state(msgs in history()) {
        let base = state(&msgs);
        for f in [Format::Json, Format::MessagePack] {
            let bytes = wire::encode_messages(&msgs, f);
            let back = wire::decode_messages(&bytes, f, &Limits::default()).unwrap();
            prop_assert_eq!(&back, &msgs);
            prop_assert_eq!(state(&back), base.clone());
        }
    }
}

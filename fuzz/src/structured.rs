//! The `structured` target's generator and check: an `arbitrary` [`Input`] becomes a
//! small history (up to 4 clients, 6 node keys, every op kind including `text.*` in
//! position and CRDT form, `meta.undo`/`meta.redo`), delivered with duplicates, in a
//! shuffled order and in random batches to a [`Replica`]; its `to_json()` must be
//! byte-identical to `apply_messages` of the set, also after a wire round trip.
//!
//! Every message gets a unique id `client:lt` and a unique `(lt, client)` stamp (the
//! engine's promise covers only such sets). CRDT text ids are unique per agent unless
//! [`Input::wild`] is set, which draws them from a tiny pool so they collide.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use serde_json::json;
use vuer_rtc::op::{Message, Op};
use vuer_rtc::replica::Replica;
use vuer_rtc::wire::{self, Format};

type J = serde_json::Value;

const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const PATHS: [&str; 5] = ["p", "q", "transform.position", "tags", "t"];
const TEXT_PATHS: [&str; 3] = ["t", "t", "p"];
const CLIENTS: [&str; 4] = ["Mia", "alice", "bob", "c-1"];
const AGENTS: [&str; 3] = ["x", "y", "Mia"];
const STRS: [&str; 8] = ["", "ab", "héllo", "#ff0000", "#00FF00", "red", "日本", "z"];
const MAX_MSGS: usize = 16;
const MAX_OPS: usize = 4;
const MAX_LT: u8 = 16;

/// One op, before it is given its node key, path and payload strings.
#[derive(Arbitrary, Debug, Clone)]
pub enum OpSpec {
    /// `number.*`.
    Number { verb: u8, key: u8, path: u8, v: i8 },
    /// `vector3.*` / `euler.*` on three components.
    Vec3 {
        verb: u8,
        key: u8,
        path: u8,
        v: [i8; 3],
        order: u8,
        intrinsic: bool,
    },
    /// `vector3.applyQuaternion`, `quaternion.*`.
    Quat {
        verb: u8,
        key: u8,
        path: u8,
        v: [i8; 4],
    },
    /// `color.*`.
    Color {
        verb: u8,
        key: u8,
        path: u8,
        s: u8,
        alpha: u8,
    },
    /// `string.*`.
    Str {
        verb: u8,
        key: u8,
        path: u8,
        s: u8,
        sep: u8,
        a: i8,
        b: i8,
        c: i8,
    },
    /// `boolean.*`.
    Bool {
        verb: u8,
        key: u8,
        path: u8,
        b: bool,
    },
    /// `array.*`.
    Array {
        verb: u8,
        key: u8,
        path: u8,
        v: u8,
        a: i8,
        b: i8,
        by_index: bool,
    },
    /// `object.set` / `object.update` / `object.merge`, on a path or on `.`.
    Object {
        verb: u8,
        key: u8,
        path: u8,
        dot: bool,
        fields: u8,
    },
    /// `object.remove`.
    ObjectRemove {
        key: u8,
        path: u8,
        field: Option<u8>,
    },
    /// `node.insert` / `node.upsert` / `node.inset`.
    NodeInsert {
        verb: u8,
        parent: u8,
        key: u8,
        tag: Option<bool>,
        children: u8,
        props: u8,
    },
    /// `node.remove`, nested or flat.
    NodeRemove { flat: bool, parent: u8, node: u8 },
    /// `node.move`, nested or flat.
    NodeMove {
        flat: bool,
        old: u8,
        node: u8,
        new_parent: u8,
    },
    /// `text.init`.
    TextInit { key: u8, path: u8, s: u8 },
    /// `text.insert` / `text.delete` / `text.replace` in position form.
    TextAt {
        verb: u8,
        key: u8,
        path: u8,
        position: u8,
        length: u8,
        s: u8,
    },
    /// `text.insert` / `text.delete` / `text.replace` in CRDT form.
    TextCrdt {
        verb: u8,
        key: u8,
        path: u8,
        anchor: u8,
        s: u8,
        seq: u8,
        ts: u8,
        rm: Vec<(u8, u8)>,
    },
    /// `meta.undo` (makes its message a meta message).
    Undo { target: u8 },
    /// `meta.redo` (makes its message a meta message).
    Redo { target: u8 },
}

/// One message before it is stamped.
#[derive(Arbitrary, Debug, Clone)]
pub struct MsgSpec {
    /// Index into the client names.
    pub client: u8,
    /// Lamport time (1..=16; moved up to the next free one for its client).
    pub lt: u8,
    /// Wall clock.
    pub ts: u8,
    /// Whether the message carries its client's `clock` counter.
    pub clock: bool,
    /// The ops (at most 4 are used).
    pub ops: Vec<OpSpec>,
}

/// A whole fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// CRDT text ids from a tiny pool (colliding), instead of unique per agent.
    pub wild: bool,
    /// The messages (at most 16 are used).
    pub msgs: Vec<MsgSpec>,
    /// Indexes of messages delivered a second time.
    pub dups: Vec<u8>,
    /// Swap choices for the delivery shuffle.
    pub order: Vec<u8>,
    /// Batch lengths (0 = 1).
    pub splits: Vec<u8>,
}

fn pick<'a>(xs: &[&'a str], i: u8) -> &'a str {
    xs[usize::from(i) % xs.len()]
}

/// A node key; one in seven is the root key `""`.
fn key(i: u8) -> &'static str {
    if i % 7 == 6 { "" } else { pick(&KEYS, i) }
}

fn node_key(i: u8) -> &'static str {
    pick(&KEYS, i)
}

fn eighth(i: i8) -> f64 {
    f64::from(i % 32) / 8.0
}

fn small_json(i: u8) -> J {
    match i % 6 {
        0 => json!(i / 6 % 4),
        1 => json!(pick(&["x", "y", "z"], i / 6)),
        2 => json!({"k": 1}),
        3 => J::Null,
        4 => json!([1, "x"]),
        _ => json!({"n": {"m": i / 6 % 3}}),
    }
}

fn object(bits: u8) -> serde_json::Map<String, J> {
    let names = ["x", "y", "name", "key", "p", "tag", "children", "n"];
    let mut m = serde_json::Map::new();
    for (k, name) in names.iter().enumerate() {
        if bits & (1 << k) != 0 {
            m.insert((*name).to_owned(), small_json(bits.rotate_left(k as u32)));
        }
    }
    m
}

/// Allocates CRDT item ids.
struct Ids {
    wild: bool,
    next: BTreeMap<&'static str, u32>,
    given: Vec<(String, u32)>,
}

impl Ids {
    fn id(&self, agent: &str, seq: u32) -> String {
        format!("{agent}:{seq}")
    }

    /// The id of the first of `n` new characters of `agent`.
    fn alloc(&mut self, agent: &'static str, n: u32, salt: u8) -> String {
        if self.wild {
            return self.id(agent, u32::from(salt % 4));
        }
        let next = self.next.entry(agent).or_insert(0);
        let first = *next;
        *next += n.max(1);
        self.given.push((agent.to_owned(), first));
        self.id(agent, first)
    }

    /// An id that was given out (or, for one choice in eight, one that never is).
    fn existing(&self, i: u8) -> String {
        if self.given.is_empty() || i % 8 == 7 {
            return self.id(pick(&AGENTS, i), 900 + u32::from(i % 3));
        }
        let (a, s) = &self.given[usize::from(i / 8) % self.given.len()];
        self.id(a, s + u32::from(i % 3))
    }
}

fn op_json(spec: &OpSpec, ids: &mut Ids, targets: &[String]) -> J {
    use OpSpec::*;
    match spec {
        Number {
            verb,
            key: k,
            path,
            v,
        } => {
            let ot = pick(&["set", "add", "multiply", "min", "max"], *verb);
            json!({"ot": format!("number.{ot}"), "key": key(*k), "path": pick(&PATHS, *path), "value": f64::from(*v) / 4.0})
        }
        Vec3 {
            verb,
            key: k,
            path,
            v,
            order,
            intrinsic,
        } => {
            let ot = pick(
                &[
                    "vector3.set",
                    "vector3.add",
                    "vector3.multiply",
                    "vector3.applyEuler",
                    "euler.set",
                    "euler.add",
                ],
                *verb,
            );
            let value: Vec<f64> = v.iter().map(|&x| eighth(x)).collect();
            let mut o =
                json!({"ot": ot, "key": key(*k), "path": pick(&PATHS, *path), "value": value});
            if ot == "vector3.applyEuler" {
                o["order"] = json!(pick(&["XYZ", "YXZ", "ZXY", "ZYX", "YZX", "XZY"], *order));
                o["intrinsic"] = json!(intrinsic);
            }
            o
        }
        Quat {
            verb,
            key: k,
            path,
            v,
        } => {
            let ot = pick(
                &[
                    "vector3.applyQuaternion",
                    "quaternion.set",
                    "quaternion.multiply",
                ],
                *verb,
            );
            let value: Vec<f64> = v.iter().map(|&x| eighth(x)).collect();
            json!({"ot": ot, "key": key(*k), "path": pick(&PATHS, *path), "value": value})
        }
        Color {
            verb,
            key: k,
            path,
            s,
            alpha,
        } => {
            if verb % 2 == 0 {
                json!({"ot": "color.set", "key": key(*k), "path": pick(&PATHS, *path), "value": pick(&STRS, *s)})
            } else {
                json!({"ot": "color.blend", "key": key(*k), "path": pick(&PATHS, *path), "value": pick(&STRS, *s), "alpha": f64::from(alpha % 5) / 4.0})
            }
        }
        Str {
            verb,
            key: k,
            path,
            s,
            sep,
            a,
            b,
            c,
        } => {
            let base = json!({"key": key(*k), "path": pick(&PATHS, *path)});
            let mut o = base;
            let (a, b, c) = (i64::from(a % 6), i64::from(b % 6), i64::from(c % 6));
            match verb % 6 {
                0 => {
                    o["ot"] = json!("string.set");
                    o["value"] = json!(pick(&STRS, *s));
                }
                1 => {
                    o["ot"] = json!("string.concat");
                    o["value"] = json!(pick(&STRS, *s));
                    o["separator"] = json!(pick(&STRS, *sep));
                }
                2 => {
                    o["ot"] = json!("string.insert");
                    o["value"] = json!(pick(&STRS, *s));
                    o["index"] = json!(a);
                }
                3 => {
                    o["ot"] = json!("string.cut");
                    o["from"] = json!(a);
                    o["to"] = json!(b);
                }
                4 => {
                    o["ot"] = json!("string.replace");
                    o["value"] = json!(pick(&STRS, *s));
                    o["from"] = json!(a);
                    o["to"] = json!(b);
                }
                _ => {
                    o["ot"] = json!("string.move");
                    o["from"] = json!(a);
                    o["to"] = json!(b);
                    o["index"] = json!(c);
                }
            }
            o
        }
        Bool {
            verb,
            key: k,
            path,
            b,
        } => {
            let ot = pick(&["set", "or", "and", "xor"], *verb);
            json!({"ot": format!("boolean.{ot}"), "key": key(*k), "path": pick(&PATHS, *path), "value": b})
        }
        Array {
            verb,
            key: k,
            path,
            v,
            a,
            b,
            by_index,
        } => {
            let mut o = json!({"key": key(*k), "path": pick(&PATHS, *path)});
            let (a, b) = (i64::from(a % 6), i64::from(b % 6));
            let arr: Vec<J> = (0..v % 3)
                .map(|i| small_json(v.wrapping_add(i * 37)))
                .collect();
            match verb % 6 {
                0 => {
                    o["ot"] = json!("array.set");
                    o["value"] = json!(arr);
                }
                1 => {
                    o["ot"] = json!("array.push");
                    o["value"] = small_json(*v);
                }
                2 => {
                    o["ot"] = json!("array.insert");
                    o["value"] = small_json(*v);
                    o["index"] = json!(a);
                }
                3 => {
                    o["ot"] = json!("array.remove");
                    if *by_index {
                        o["index"] = json!(a);
                    } else {
                        o["value"] = small_json(*v);
                    }
                }
                4 => {
                    o["ot"] = json!("array.move");
                    o["from"] = json!(a);
                    o["to"] = json!(b);
                }
                _ => {
                    o["ot"] = json!("array.union");
                    o["value"] = json!(arr);
                }
            }
            o
        }
        Object {
            verb,
            key: k,
            path,
            dot,
            fields,
        } => {
            let ot = pick(&["object.set", "object.update", "object.merge"], *verb);
            let path = if *dot && ot != "object.set" {
                "."
            } else {
                pick(&PATHS, *path)
            };
            json!({"ot": ot, "key": key(*k), "path": path, "value": object(*fields)})
        }
        ObjectRemove {
            key: k,
            path,
            field,
        } => {
            let mut o = json!({"ot": "object.remove", "key": key(*k), "path": pick(&["p", "q", "p.x", "tags", "n.m"], *path)});
            if let Some(f) = field {
                o["value"] = json!(pick(&["x", "n", "y"], *f));
            }
            o
        }
        NodeInsert {
            verb,
            parent,
            key: k,
            tag,
            children,
            props,
        } => {
            let ot = pick(&["node.insert", "node.upsert", "node.inset"], *verb);
            let mut value = object(*props);
            for f in ["key", "tag", "children"] {
                value.remove(f);
            }
            value.insert("key".into(), json!(node_key(*k)));
            if let Some(t) = tag {
                value.insert("tag".into(), json!(if *t { "Mesh" } else { "Group" }));
            }
            let kids: Vec<&str> = (0..6)
                .filter(|i| children & (1 << i) != 0 && children & 0xC0 == 0xC0)
                .map(|i| KEYS[i])
                .collect();
            if !kids.is_empty() {
                value.insert("children".into(), json!(kids));
            }
            json!({"ot": ot, "key": key(*parent), "path": "children", "value": value})
        }
        NodeRemove { flat, parent, node } => {
            if *flat {
                json!({"ot": "node.remove", "key": node_key(*node), "path": "."})
            } else {
                json!({"ot": "node.remove", "key": key(*parent), "path": "children", "value": node_key(*node)})
            }
        }
        NodeMove {
            flat,
            old,
            node,
            new_parent,
        } => {
            if *flat {
                json!({"ot": "node.move", "key": node_key(*node), "path": ".", "to": key(*new_parent), "toPath": "children"})
            } else {
                json!({"ot": "node.move", "key": key(*old), "path": "children", "value": {"nodeKey": node_key(*node), "newParent": key(*new_parent)}})
            }
        }
        TextInit { key: k, path, s } => {
            json!({"ot": "text.init", "key": key(*k), "path": pick(&TEXT_PATHS, *path), "value": pick(&STRS, *s)})
        }
        TextAt {
            verb,
            key: k,
            path,
            position,
            length,
            s,
        } => {
            let ot = pick(&["text.insert", "text.delete", "text.replace"], *verb);
            let mut o = json!({"ot": ot, "key": key(*k), "path": pick(&TEXT_PATHS, *path), "position": position % 10});
            if ot != "text.insert" {
                o["length"] = json!(length % 5);
            }
            if ot != "text.delete" {
                o["value"] = json!(pick(&STRS, *s));
            }
            o
        }
        TextCrdt {
            verb,
            key: k,
            path,
            anchor,
            s,
            seq,
            ts,
            rm,
        } => {
            let ot = pick(&["text.insert", "text.delete", "text.replace"], *verb);
            let mut o = json!({"ot": ot, "key": key(*k), "path": pick(&TEXT_PATHS, *path)});
            if ot != "text.insert" {
                let mut ranges: Vec<J> = rm
                    .iter()
                    .take(2)
                    .map(|&(i, n)| json!([ids.existing(i), u32::from(n % 4)]))
                    .collect();
                if ranges.is_empty() {
                    ranges.push(json!([ids.existing(*anchor), 1]));
                }
                o["rm"] = json!(ranges);
            }
            if ot != "text.delete" {
                let content = match pick(&STRS, *s) {
                    "" => "w",
                    c => c,
                };
                let anchor = if anchor % 4 == 0 {
                    J::Null
                } else {
                    json!(ids.existing(*anchor))
                };
                let agent = pick(&AGENTS, *verb / 3);
                let n = content.chars().count() as u32;
                o["id"] = json!(ids.alloc(agent, n, *seq));
                o["value"] = json!([anchor, content]);
                o["seq"] = json!(seq % 24);
                o["ts"] = json!(f64::from(*ts % 8) / 2.0);
            }
            o
        }
        Undo { target } | Redo { target } => {
            let ot = if matches!(spec, Undo { .. }) {
                "meta.undo"
            } else {
                "meta.redo"
            };
            let t = if usize::from(*target) < targets.len() * 15 {
                targets[usize::from(*target) % targets.len()].clone()
            } else {
                format!("ghost:{target}")
            };
            json!({"ot": ot, "key": "_meta", "path": "_meta", "targetMsgId": t})
        }
    }
}

/// The messages of `input`: unique ids and stamps, valid ops only.
pub fn messages(input: &Input) -> Vec<Message> {
    let specs = &input.msgs[..input.msgs.len().min(MAX_MSGS)];
    // Stamps first, so meta ops can target any message.
    let mut used = BTreeSet::new();
    let mut stamps = Vec::new();
    for m in specs {
        let client = pick(&CLIENTS, m.client);
        let mut lt = u64::from(m.lt % MAX_LT) + 1;
        while !used.insert((lt, client)) {
            lt += 1;
        }
        stamps.push((client, lt));
    }
    let targets: Vec<String> = stamps.iter().map(|(c, lt)| format!("{c}:{lt}")).collect();
    let mut ids = Ids {
        wild: input.wild,
        next: BTreeMap::new(),
        given: Vec::new(),
    };
    let mut counters: BTreeMap<&str, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (m, &(client, lt)) in specs.iter().zip(&stamps) {
        let first_meta = matches!(
            m.ops.first(),
            Some(OpSpec::Undo { .. } | OpSpec::Redo { .. })
        );
        let specs: Vec<&OpSpec> = if first_meta {
            m.ops.iter().take(1).collect()
        } else {
            m.ops
                .iter()
                .filter(|o| !matches!(o, OpSpec::Undo { .. } | OpSpec::Redo { .. }))
                .take(MAX_OPS)
                .collect()
        };
        let ops: Vec<Op> = specs
            .into_iter()
            .filter_map(|s| Op::from_json(&op_json(s, &mut ids, &targets)).ok())
            .collect();
        let n = counters.entry(client).or_insert(0);
        *n += 1;
        let clock = if m.clock {
            [(client.to_owned(), *n)].into()
        } else {
            BTreeMap::new()
        };
        out.push(Message {
            id: format!("{client}:{lt}"),
            client: client.to_owned(),
            clock,
            lt,
            ts: f64::from(m.ts) / 4.0,
            ops,
        });
    }
    out
}

/// The delivery of `input`: its messages with duplicates, shuffled, cut into batches.
pub fn delivery(input: &Input, msgs: &[Message]) -> Vec<Vec<Message>> {
    let mut seq: Vec<Message> = msgs.to_vec();
    if !msgs.is_empty() {
        for &d in input.dups.iter().take(4) {
            seq.push(msgs[usize::from(d) % msgs.len()].clone());
        }
    }
    let n = seq.len();
    for (i, &o) in input.order.iter().enumerate().take(n.saturating_sub(1)) {
        let j = i + usize::from(o) % (n - i);
        seq.swap(i, j);
    }
    let mut batches = Vec::new();
    let mut splits = input.splits.iter();
    let mut rest = seq.as_slice();
    while !rest.is_empty() {
        let len = splits
            .next()
            .map_or(rest.len(), |&s| usize::from(s % 8).max(1));
        let (b, r) = rest.split_at(len.min(rest.len()));
        batches.push(b.to_vec());
        rest = r;
    }
    batches
}

/// The `structured` check.
pub fn check(input: &Input) {
    let msgs = messages(input);
    let want = crate::model_json(&msgs);
    let batches = delivery(input, &msgs);
    let mut r = Replica::new();
    for b in &batches {
        let rep = r.apply_batch(b);
        assert!(rep.rejected.is_empty(), "rejected {:?}", rep.rejected);
    }
    let got = r.to_json();
    assert_eq!(
        got, want,
        "replica (batches {batches:#?}) differs from apply_messages"
    );

    crate::assert_round_trip(&msgs);
    // The same delivery as bytes, in each format, one batch per call.
    for format in [Format::Json, Format::MessagePack] {
        let mut w = Replica::new();
        for b in &batches {
            w.apply_bytes(&wire::encode_messages(b, format), format);
        }
        assert_eq!(
            w.to_json(),
            want,
            "{format:?} delivery differs from apply_messages"
        );
    }
}

/// Runs the check on raw fuzz bytes.
pub fn check_bytes(data: &[u8]) {
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        check(&input);
    }
}

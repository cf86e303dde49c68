//! Replica → archive: the graph as flat per-row arrays, columns as typed arrays with
//! compressed stamps, the bookkeeping and journal as MessagePack.
//!
//! Invariant: the output is a function of the replica's state alone (hash maps are
//! written in sorted order), so equal replicas give equal bytes.

use rayon::prelude::*;
use rkyv::util::AlignedVec;

use super::format::{
    BaseCol, Bases, Col, Created, DynCell, NONE, Names, Nodes, Removed, Snap, Stamps, U32s, Values,
};
use super::view::set_bits;
use super::{HEADER_LEN, SnapshotBuf, finish_header};
use crate::Replica;
use crate::column::{Column, PathColumn, Row, TypedColumn};
use crate::graph::SceneGraph;
use crate::ids::{PathId, Stamp};
use crate::replica::bases::BaseStore;
use crate::replica::parts::{ValueRec, same_bits};
use crate::wire::{self, Format};

impl Names {
    /// Collects items into one buffer.
    fn collect<'a, B: AsRef<[u8]> + 'a>(items: impl IntoIterator<Item = B>) -> Names {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for it in items {
            bytes.extend_from_slice(it.as_ref());
            ends.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        Names {
            bytes,
            ends: U32s::encode(ends),
        }
    }
}

/// Packs booleans into 64-bit words.
pub(super) fn bitmap(bits: impl ExactSizeIterator<Item = bool>) -> Vec<u64> {
    let mut words = vec![0u64; bits.len().div_ceil(64)];
    for (i, b) in bits.enumerate() {
        if b {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    words
}

/// A string's first 8 bytes as a big-endian number: comparing two of them orders
/// the strings by those bytes without touching the heap.
fn prefix(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// Interns strings in first-seen order, remembering the last one (nodes come in runs
/// of one tag).
#[derive(Default)]
struct Dict<'a> {
    index: ahash::AHashMap<&'a str, u32>,
    order: Vec<&'a str>,
    last: Option<(&'a str, u32)>,
}

impl<'a> Dict<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some((l, i)) = self.last
            && l == s
        {
            return i;
        }
        let order = &mut self.order;
        let i = *self.index.entry(s).or_insert_with(|| {
            order.push(s);
            u32::try_from(order.len() - 1).unwrap_or(NONE)
        });
        self.last = Some((s, i));
        i
    }
}

fn nodes(g: &SceneGraph) -> Nodes {
    let n_rows = g.rows.len();
    let row_of = |k: crate::ids::NodeKey| g.nodes.get(k).map_or(NONE, |n| n.row.0);
    let mut kid = Vec::with_capacity(n_rows);
    let (mut tags, mut names) = (Dict::default(), Dict::default());
    let (mut tag, mut name) = (Vec::with_capacity(n_rows), Vec::with_capacity(n_rows));
    let mut parent = Vec::with_capacity(n_rows);
    let mut child_start = Vec::with_capacity(n_rows + 1);
    let mut children = Vec::with_capacity(n_rows);
    let mut created_at: Vec<Created> = Vec::new();
    let mut created = Vec::with_capacity(n_rows);
    let mut created_op = Vec::with_capacity(n_rows);
    let mut removed = Vec::new();
    let mut by_key: Vec<(u64, &str, u32)> = Vec::with_capacity(g.nodes.len());
    child_start.push(0);
    // One pass over the rows, in creation order.
    for r in &g.rows {
        let Some(n) = r.and_then(|k| g.nodes.get(k)) else {
            kid.push(NONE);
            tag.push(tags.id(""));
            name.push(names.id(""));
            parent.push(NONE);
            child_start.push(u32::try_from(children.len()).unwrap_or(NONE));
            created.push(created_at.len().saturating_sub(1) as u32);
            created_op.push(0);
            continue;
        };
        kid.push(n.kid.index() as u32);
        tag.push(tags.id(&n.tag));
        name.push(names.id(&n.name));
        parent.push(n.parent.map_or(NONE, row_of));
        children.extend(n.children.iter().map(|&c| row_of(c)));
        child_start.push(u32::try_from(children.len()).unwrap_or(NONE));
        let s = n.created.stamp;
        let c = Created {
            lt: s.lt,
            ts: n.created_ts,
            client: s.client.index() as u32,
        };
        // Nodes are created message by message: the previous entry usually matches.
        let same =
            |x: &Created| x.lt == c.lt && x.client == c.client && x.ts.to_bits() == c.ts.to_bits();
        if !created_at.last().is_some_and(same) {
            created_at.push(c);
        }
        created.push(u32::try_from(created_at.len() - 1).unwrap_or(NONE));
        created_op.push(n.created.op);
        if let Some(p) = n.removed {
            removed.push(Removed {
                lt: p.stamp.lt,
                row: n.row.0,
                client: p.stamp.client.index() as u32,
                op: p.op,
            });
        }
        by_key.push((prefix(&n.key), &n.key, n.row.0));
    }
    by_key.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    Nodes {
        kid: U32s::encode(kid),
        tags: Names::collect(tags.order.iter().map(|s| s.as_bytes())),
        tag: U32s::encode(tag),
        names: Names::collect(names.order.iter().map(|s| s.as_bytes())),
        name: U32s::encode(name),
        parent: U32s::encode(parent),
        child_start: U32s::encode(child_start),
        children: U32s::encode(children),
        created_at,
        created: U32s::encode(created),
        created_op: U32s::encode(created_op),
        removed,
        root: g.root.map_or(NONE, row_of),
        by_key: U32s::encode(by_key.into_iter().map(|(_, _, r)| r).collect()),
    }
}

fn stamps(s: &[Stamp], present: &[bool]) -> Stamps {
    let mut it = s.iter().zip(present).filter(|(_, p)| **p).map(|(s, _)| *s);
    let first = it.next().unwrap_or(Stamp::ZERO);
    if it.all(|x| x == first) {
        return Stamps::Same(first.lt, first.client.index() as u32);
    }
    Stamps::Each(
        s.iter().map(|x| x.lt).collect(),
        s.iter().map(|x| x.client.index() as u32).collect(),
    )
}

fn msgpack<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Plain records into memory: cannot fail.
    rmp_serde::to_vec(v).unwrap_or_default()
}

/// The typed part of a column: values, stamps, presence, length.
fn typed(c: &TypedColumn) -> (Values, Stamps, Vec<u64>, usize) {
    fn parts<T: Default, V>(
        c: &Column<T>,
        f: impl FnOnce(&[T]) -> V,
    ) -> (V, Stamps, Vec<u64>, usize) {
        let (v, s, p) = c.parts();
        (f(v), stamps(s, p), bitmap(p.iter().copied()), v.len())
    }
    match c {
        TypedColumn::Empty => (Values::Empty, Stamps::default(), Vec::new(), 0),
        TypedColumn::F64(c) => {
            let (v, s, p, n) = parts(c, |v| v.to_vec());
            (Values::F64(v), s, p, n)
        }
        TypedColumn::F32x3(c) => {
            let (v, s, p, n) = parts(c, |v| v.to_vec());
            (Values::F32x3(v), s, p, n)
        }
        TypedColumn::F32x4(c) => {
            let (v, s, p, n) = parts(c, |v| v.to_vec());
            (Values::F32x4(v), s, p, n)
        }
        TypedColumn::Rgb(c) => {
            let (v, s, p, n) = parts(c, |v| v.to_vec());
            (Values::Rgb(v), s, p, n)
        }
        TypedColumn::Bool(c) => {
            let (v, s, p, n) = parts(c, |v| bitmap(v.iter().copied()));
            (Values::Bool(v), s, p, n)
        }
        TypedColumn::Str(c) => {
            let (v, s, p, n) = parts(c, |v| Names::collect(v.iter().map(String::as_bytes)));
            (Values::Str(v), s, p, n)
        }
        TypedColumn::Json(c) => {
            let (v, s, p, n) = parts(c, |v| Names::collect(v.iter().map(msgpack)));
            (Values::Json(v), s, p, n)
        }
        TypedColumn::Text(c) => {
            let (v, s, p, n) = parts(c, |v| {
                let shown = Names::collect(v.iter().map(|t| t.visible().into_owned()));
                let (_, _, present) = c.parts();
                let docs = Names::collect(v.iter().zip(present).map(|(t, &p)| {
                    if p {
                        msgpack(&ValueRec::of(crate::column::ValueRef::Text(t)))
                    } else {
                        Vec::new()
                    }
                }));
                (shown, docs)
            });
            (Values::Text(v.0, v.1), s, p, n)
        }
    }
}

impl Replica {
    /// The whole replica as a snapshot: open it with
    /// [`SnapshotView::open`](crate::snapshot::SnapshotView::open), restore it with
    /// [`Replica::from_snapshot`]. The bytes are a function of the state: equal
    /// replicas give equal snapshots.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{Replica, snapshot::SnapshotView};
    /// use vuer_rtc::op::{Message, Op};
    /// let msg = Message {
    ///     id: "a:1".into(), client: "a".into(), clock: [("a".to_string(), 1)].into(), lt: 1, ts: 0.0,
    ///     ops: vec![Op::node_insert("", "obj", "Mesh"), Op::number_set("obj", "hp", 100.0)],
    /// };
    /// let mut r = Replica::new();
    /// r.apply_message(&msg);
    /// let snap = r.snapshot();
    /// let view = SnapshotView::open(&snap).unwrap();
    /// assert_eq!(view.node("obj").unwrap().get("hp").unwrap().as_number(), Some(100.0));
    /// assert_eq!(view.to_json(), r.to_json());
    /// let back = Replica::from_snapshot(&snap).unwrap();
    /// assert_eq!(back.to_json(), r.to_json());
    /// ```
    pub fn snapshot(&self) -> SnapshotBuf {
        let g = self.graph();
        let (parts, messages) = self.to_parts();
        let columns = g.props.columns().par_iter().map(col).collect();
        let bases = bases(g, self.bases());
        let snap = Snap {
            clients: Names::collect(g.clients.names().map(str::as_bytes)),
            keys: Names::collect(g.keys.names().map(str::as_bytes)),
            paths: Names::collect(g.paths.names().map(str::as_bytes)),
            nodes: nodes(g),
            columns,
            bases,
            messages: Names::collect(
                messages
                    .iter()
                    .map(|m| wire::encode_message(m, Format::MessagePack)),
            ),
            parts: msgpack(&parts),
        };
        let mut buf = AlignedVec::<16>::with_capacity(estimate(&snap) + HEADER_LEN);
        buf.extend_from_slice(&[0u8; HEADER_LEN]);
        // Serializing plain vectors into memory cannot fail.
        let mut buf =
            rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&snap, buf).unwrap_or_default();
        if buf.len() < HEADER_LEN {
            buf = AlignedVec::new();
            buf.extend_from_slice(&[0u8; HEADER_LEN]);
        }
        finish_header(&mut buf);
        SnapshotBuf(buf)
    }
}

/// One path column: typed arrays, stamps, presence, and the cells of other kinds.
fn col(c: &PathColumn) -> Col {
    let (values, stamps, present, len) = typed(c.primary());
    let mut dynamic: Vec<DynCell> = c
        .dynamic()
        .map(|(Row(row), v, s)| DynCell {
            lt: s.lt,
            row,
            client: s.client.index() as u32,
            value: msgpack(&ValueRec::of(v.as_ref())),
        })
        .collect();
    dynamic.sort_unstable_by_key(|d| d.row);
    Col {
        len: u32::try_from(len).unwrap_or(NONE),
        present,
        values,
        stamps,
        dynamic,
    }
}

/// The compaction bases: per path, the slots with a base, those whose base is the
/// node's current cell (stored as one bit), and the values of the others.
fn bases(g: &SceneGraph, store: &BaseStore) -> Bases {
    let (kids, has, values) = store.parts();
    // Slot → row of the slot's node (NONE: no node).
    let rows: Vec<u32> = kids
        .iter()
        .map(|&k| g.node_of(k).map_or(NONE, |n| g.nodes[n].row.0))
        .collect();
    let paths = has
        .par_iter()
        .enumerate()
        .map(|(p, has)| {
            let p = PathId::from_index(p);
            let mut same = vec![0u64; has.len()];
            let mut rest_slots = Vec::new();
            let mut rest = PathColumn::default();
            for slot in set_bits(has) {
                let base = values.get(p, Row(slot as u32));
                let row = rows.get(slot).copied().unwrap_or(NONE);
                let current = (row != NONE).then(|| g.props.get(p, Row(row))).flatten();
                let is_same = match (base, current) {
                    (Some((v, s)), Some((c, cs))) => s == cs && same_bits(v, c),
                    _ => false,
                };
                if is_same {
                    same[slot / 64] |= 1 << (slot % 64);
                } else {
                    let i = Row(u32::try_from(rest_slots.len()).unwrap_or(NONE));
                    rest_slots.push(slot as u32);
                    if let Some((v, s)) = base {
                        rest.set(i, v.to_owned(), s);
                    }
                }
            }
            BaseCol {
                has: has.clone(),
                same,
                rest_len: u32::try_from(rest_slots.len()).unwrap_or(NONE),
                rest_slots: U32s::encode(rest_slots),
                rest: col(&rest),
            }
        })
        .collect();
    Bases {
        kids: U32s::encode(kids.iter().map(|k| k.index() as u32).collect()),
        paths,
    }
}

/// A generous guess of the archive size, so the buffer is allocated once.
fn estimate(s: &Snap) -> usize {
    let names = |n: &Names| n.bytes.len() + n.ends.bytes() + 32;
    let n = &s.nodes;
    let mut total = names(&s.clients) + names(&s.keys) + names(&s.paths) + names(&s.messages);
    total += s.parts.len() + 64;
    for u in [
        &n.kid,
        &n.tag,
        &n.name,
        &n.parent,
        &n.child_start,
        &n.children,
    ] {
        total += u.bytes() + 32;
    }
    total += names(&n.tags) + names(&n.names) + n.by_key.bytes();
    total += n.created.bytes() + n.created_op.bytes() + 24 * n.created_at.len();
    total += 24 * n.removed.len() + 256;
    for b in &s.bases.paths {
        total += 16 * b.has.len() + b.rest_slots.bytes() + 256 + 24 * b.rest_len as usize;
    }
    for c in s
        .columns
        .iter()
        .chain(s.bases.paths.iter().map(|b| &b.rest))
    {
        total += 128 + 8 * c.present.len();
        total += match &c.values {
            Values::Empty => 0,
            Values::F64(v) => 8 * v.len(),
            Values::F32x3(v) => 12 * v.len(),
            Values::F32x4(v) => 16 * v.len(),
            Values::Rgb(v) => 4 * v.len(),
            Values::Bool(v) => 8 * v.len(),
            Values::Str(v) | Values::Json(v) => names(v),
            Values::Text(a, b) => names(a) + names(b),
        };
        total += match &c.stamps {
            Stamps::Same(..) => 16,
            Stamps::Each(a, b) => 8 * a.len() + 4 * b.len() + 16,
        };
        total += c.dynamic.iter().map(|d| d.value.len() + 32).sum::<usize>();
    }
    total
}

//! Replica → archive: the graph as flat per-row arrays, columns as typed arrays with
//! compressed stamps, the bookkeeping and journal as MessagePack.
//!
//! Invariant: the output is a function of the replica's state alone (hash maps are
//! written in sorted order), so equal replicas give equal bytes.

use rayon::prelude::*;
use rkyv::util::AlignedVec;

use super::format::{
    Col, Created, DynCell, Ids, NONE, Names, Nodes, Removed, Snap, Stamps, Values,
};
use super::{HEADER_LEN, SnapshotBuf, finish_header};
use crate::Replica;
use crate::column::{Column, Row, TypedColumn};
use crate::graph::SceneGraph;
use crate::ids::{KeyId, PathId, Stamp};
use crate::replica::parts::{ValueRec, same_bits};
use crate::wire::{self, Format};

impl Names {
    /// Collects items into one buffer.
    fn collect<'a, B: AsRef<[u8]> + 'a>(items: impl IntoIterator<Item = B>) -> Names {
        let mut n = Names::default();
        for it in items {
            n.bytes.extend_from_slice(it.as_ref());
            n.ends
                .push(u32::try_from(n.bytes.len()).unwrap_or(u32::MAX));
        }
        n
    }
}

/// `Ids::Same` when every entry is equal (or there are none), else `Ids::Each`.
fn ids(v: Vec<u32>) -> Ids {
    match v.first() {
        None => Ids::Same(0),
        Some(&f) if v.iter().all(|&x| x == f) => Ids::Same(f),
        Some(_) => Ids::Each(v),
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

/// Interns strings into a dictionary, returning per-item indices.
fn dictionary<'a>(items: impl Iterator<Item = &'a str>) -> (Names, Vec<u32>) {
    let mut seen: ahash::AHashMap<&str, u32> = ahash::AHashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let idx = items
        .map(|s| {
            *seen.entry(s).or_insert_with(|| {
                order.push(s);
                u32::try_from(order.len() - 1).unwrap_or(u32::MAX)
            })
        })
        .collect();
    (Names::collect(order), idx)
}

fn nodes(g: &SceneGraph) -> Nodes {
    let rows = &g.rows;
    let node = |r: &Option<crate::ids::NodeKey>| r.and_then(|k| g.nodes.get(k));
    let row_of = |k: crate::ids::NodeKey| g.nodes.get(k).map_or(NONE, |n| n.row.0);
    let kid = rows
        .iter()
        .map(|r| node(r).map_or(NONE, |n| n.kid.index() as u32))
        .collect();
    let (tags, tag) = dictionary(rows.iter().map(|r| node(r).map_or("", |n| n.tag.as_str())));
    let (names, name) = dictionary(rows.iter().map(|r| node(r).map_or("", |n| n.name.as_str())));
    let parent = rows
        .iter()
        .map(|r| node(r).and_then(|n| n.parent).map_or(NONE, row_of))
        .collect();
    let mut child_start = Vec::with_capacity(rows.len() + 1);
    let mut children = Vec::with_capacity(rows.len());
    child_start.push(0);
    for r in rows {
        if let Some(n) = node(r) {
            children.extend(n.children.iter().map(|&c| row_of(c)));
        }
        child_start.push(u32::try_from(children.len()).unwrap_or(NONE));
    }
    let mut created_at: Vec<Created> = Vec::new();
    let mut created = Vec::with_capacity(rows.len());
    let mut created_op = Vec::with_capacity(rows.len());
    for r in rows {
        let (c, op) = node(r).map_or((Created::default(), 0), |n| {
            let s = n.created.stamp;
            let c = Created {
                lt: s.lt,
                ts: n.created_ts,
                client: s.client.index() as u32,
            };
            (c, n.created.op)
        });
        // Nodes are created message by message: the previous entry usually matches.
        let same =
            |x: &Created| x.lt == c.lt && x.client == c.client && x.ts.to_bits() == c.ts.to_bits();
        if !created_at.last().is_some_and(same) {
            created_at.push(c);
        }
        created.push(u32::try_from(created_at.len() - 1).unwrap_or(NONE));
        created_op.push(op);
    }
    let removed = rows
        .iter()
        .filter_map(|r| {
            let n = node(r)?;
            let p = n.removed?;
            Some(Removed {
                lt: p.stamp.lt,
                row: n.row.0,
                client: p.stamp.client.index() as u32,
                op: p.op,
            })
        })
        .collect();
    let mut by_key: Vec<(&str, u32)> = g.nodes.values().map(|n| (&*n.key, n.row.0)).collect();
    by_key.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    Nodes {
        kid,
        tags,
        tag: ids(tag),
        names,
        name: ids(name),
        parent,
        child_start,
        children,
        created_at,
        created: ids(created),
        created_op: ids(created_op),
        removed,
        root: g.root.map_or(NONE, row_of),
        by_key: by_key.into_iter().map(|(_, r)| r).collect(),
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
        let n_paths = g.props.columns().len();
        let n_rows = g.rows.len();
        // Per path: the rows whose base is their current cell.
        let mut implicit: Vec<Vec<u32>> = vec![Vec::new(); n_paths];
        let (parts, messages) = self.to_parts(|kid: KeyId, p: PathId, (v, s)| {
            let Some(node) = g.node_of(kid) else {
                return false;
            };
            let row = g.nodes[node].row;
            let same = g
                .props
                .get(p, row)
                .is_some_and(|(cur, st)| st == *s && same_bits(cur, v.as_ref()));
            if same && let Some(list) = implicit.get_mut(p.index()) {
                list.push(row.0);
                return true;
            }
            false
        });
        let columns = g
            .props
            .columns()
            .par_iter()
            .zip(implicit.into_par_iter())
            .map(|(c, rows)| {
                let (values, stamps, present, len) = typed(c.primary());
                // Over every row: a dynamic cell may lie beyond the typed column.
                let mut base = vec![
                    0u64;
                    if rows.is_empty() {
                        0
                    } else {
                        n_rows.div_ceil(64)
                    }
                ];
                for r in rows {
                    if let Some(w) = base.get_mut(r as usize / 64) {
                        *w |= 1 << (r % 64);
                    }
                }
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
                    base_current: base,
                    dynamic,
                }
            })
            .collect();
        let snap = Snap {
            clients: Names::collect(g.clients.names().map(str::as_bytes)),
            keys: Names::collect(g.keys.names().map(str::as_bytes)),
            paths: Names::collect(g.paths.names().map(str::as_bytes)),
            nodes: nodes(g),
            columns,
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

/// A generous guess of the archive size, so the buffer is allocated once.
fn estimate(s: &Snap) -> usize {
    let names = |n: &Names| n.bytes.len() + 4 * n.ends.len() + 16;
    let ids = |i: &Ids| match i {
        Ids::Same(_) => 8,
        Ids::Each(v) => 4 * v.len() + 8,
    };
    let n = &s.nodes;
    let mut total = names(&s.clients) + names(&s.keys) + names(&s.paths) + names(&s.messages);
    total += s.parts.len() + 64;
    total += 4 * (n.kid.len() + n.parent.len() + n.child_start.len() + n.children.len());
    total += names(&n.tags) + names(&n.names) + ids(&n.tag) + ids(&n.name);
    total += ids(&n.created) + ids(&n.created_op) + 24 * n.created_at.len();
    total += 24 * n.removed.len() + 4 * n.by_key.len() + 256;
    for c in &s.columns {
        total += 128 + 8 * (c.present.len() + c.base_current.len());
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

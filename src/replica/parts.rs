//! A replica's bookkeeping (everything but the graph and the journaled messages) as
//! plain records, and its validated rebuild: the part of a snapshot a reader never
//! looks at but a restored replica needs to go on exactly like the original
//! (late messages, undo, compaction).
//!
//! Invariants:
//! - [`Replica::to_parts`] followed by [`Replica::from_parts`] gives a replica that
//!   answers every later call exactly like the original (tested in `tests/snapshot.rs`);
//! - ids in the records are the graph's table indices and node rows, never slotmap
//!   keys (those are process-local); journal slots keep their numbers;
//! - [`Replica::from_parts`] checks every index it is given and refuses the whole
//!   input on the first bad one: it never panics and never builds a replica whose
//!   later calls could.

use ahash::AHashSet;
use serde::{Deserialize, Serialize};

use super::Replica;
use super::bases::BaseStore;
use super::index::CellIndex;
use super::journal::{ClientLog, Entry, Head, Journal, MetaState, OpRef};
use super::structure::{StructEntry, Structure};
use crate::apply::Effect;
use crate::column::{Rgb, TextCell, Value, ValueRef};
use crate::graph::SceneGraph;
use crate::ids::{ClientId, KeyId, NodeKey, PathId, Pos, Stamp};
use crate::op::{Json, Limits, MAX_SAFE_INT, Message};
use crate::text::{TextDoc, TextParts};

/// A stamp as `(lt, client index)`.
pub type StampRec = (u64, u32);

/// A position as `(lt, client index, op index)`.
pub type PosRec = (u64, u32, u32);

/// A cell history: key index, path index, op references `(slot, op)`.
pub type CellRec = (u32, u32, Vec<(u32, u32)>);

/// A property value as a plain record (floats keep their bits; text keeps its CRDT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueRec {
    /// A number.
    Number(f64),
    /// A 3-vector.
    Vec3([f32; 3]),
    /// A quaternion.
    Quat([f32; 4]),
    /// A packed colour.
    Color(u32),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// Any other JSON value.
    Json(Json),
    /// A collaborative text: its CRDT and the plain string shown over it, if any.
    Text(Box<TextParts>, Option<String>),
}

impl ValueRec {
    /// The record of a value.
    pub fn of(v: ValueRef<'_>) -> ValueRec {
        match v {
            ValueRef::Number(x) => ValueRec::Number(x),
            ValueRef::Vec3(x) => ValueRec::Vec3(x),
            ValueRef::Quat(x) => ValueRec::Quat(x),
            ValueRef::Color(c) => ValueRec::Color(c.0),
            ValueRef::Bool(b) => ValueRec::Bool(b),
            ValueRef::Str(s) => ValueRec::Str(s.to_owned()),
            ValueRef::Json(j) => ValueRec::Json(j.clone()),
            ValueRef::Text(t) => ValueRec::Text(Box::new(t.doc.to_parts()), t.shown.clone()),
        }
    }

    /// The value again; an invalid text is an error.
    pub fn into_value(self) -> Result<Value, String> {
        Ok(match self {
            ValueRec::Number(x) => Value::Number(x),
            ValueRec::Vec3(x) => Value::Vec3(x),
            ValueRec::Quat(x) => Value::Quat(x),
            ValueRec::Color(c) => Value::Color(Rgb(c & 0x00ff_ffff)),
            ValueRec::Bool(b) => Value::Bool(b),
            ValueRec::Str(s) => Value::Str(s),
            ValueRec::Json(j) => Value::Json(j),
            ValueRec::Text(parts, shown) => {
                let doc = TextDoc::from_parts(*parts).map_err(|e| e.to_string())?;
                Value::Text(Box::new(TextCell { doc, shown }))
            }
        })
    }
}

/// True when two values are the same bit for bit (unlike `==`, which equates `0.0`
/// and `-0.0` and compares texts by what they show). JSON and text values are never
/// called the same: a snapshot stores them explicitly.
pub fn same_bits(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Number(x), ValueRef::Number(y)) => x.to_bits() == y.to_bits(),
        (ValueRef::Vec3(x), ValueRef::Vec3(y)) => x.map(f32::to_bits) == y.map(f32::to_bits),
        (ValueRef::Quat(x), ValueRef::Quat(y)) => x.map(f32::to_bits) == y.map(f32::to_bits),
        (ValueRef::Color(x), ValueRef::Color(y)) => x == y,
        (ValueRef::Bool(x), ValueRef::Bool(y)) => x == y,
        (ValueRef::Str(x), ValueRef::Str(y)) => x == y,
        _ => false,
    }
}

/// A structural effect, nodes named by row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EffectRec {
    /// `Effect::Created`.
    Created(u32),
    /// `Effect::Reparented`.
    Reparented(u32, Option<u32>),
    /// `Effect::Tombstoned`.
    Tombstoned(u32, Option<u32>),
    /// `Effect::Renamed`.
    Renamed(u32, String, String),
}

/// What the journal knows of one client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRec {
    /// Client index.
    pub client: u32,
    /// Unbroken prefix of its counters, and the Lamport time of the last of them.
    pub prefix: (u64, u64),
    /// Counters received beyond the prefix, with their Lamport times, ascending.
    pub ahead: Vec<(u64, u64)>,
    /// Highest Lamport time received.
    pub last_lt: u64,
    /// A message came without its own counter.
    pub untracked: bool,
}

/// A replica's bookkeeping (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaParts {
    /// Newest stamp held.
    pub frontier: Option<StampRec>,
    /// Lamport time compacted through.
    pub compacted_through: Option<u64>,
    /// Compaction horizon.
    pub horizon: u64,
    /// Decode limits: ops per message, string bytes, collection length, depth.
    pub limits: [u64; 4],
    /// Journal slots (live and free).
    pub slots: u32,
    /// Free slots, in reuse order.
    pub free: Vec<u32>,
    /// Live slots in ascending order with their undo state; the messages travel
    /// separately, in the same order.
    pub live: Vec<(u32, bool)>,
    /// Newest meta op per target id: target, position, undo.
    pub meta: Vec<(String, PosRec, bool)>,
    /// Per-client logs, by client index.
    pub clients: Vec<ClientRec>,
    /// The structural log: op reference (slot, op) and effects.
    pub structure: Vec<((u32, u32), Vec<EffectRec>)>,
    /// Per-cell histories (key index, path index, op references), empty ones included.
    pub cells: Vec<CellRec>,
    /// Cells with an `object.remove` in their history.
    pub linked: Vec<(u32, u32)>,
    /// Paths a text op ever targeted.
    pub text_paths: Vec<u32>,
    /// Decode limit: bytes per message (absent in older archives: the default).
    #[serde(default)]
    pub max_message_bytes: Option<u64>,
}

fn stamp_rec(s: Stamp) -> StampRec {
    (s.lt, s.client.index() as u32)
}

fn row_of(graph: &SceneGraph, n: NodeKey) -> u32 {
    graph.nodes.get(n).map_or(u32::MAX, |n| n.row.0)
}

impl Replica {
    /// The bookkeeping as records, and the journaled messages (in the order of
    /// [`ReplicaParts::live`]). The compaction bases are not in it: they are columns
    /// ([`Replica::bases`]).
    pub(crate) fn to_parts(&self) -> (ReplicaParts, Vec<Message>) {
        let g = &self.graph;
        let j = &self.journal;
        let mut free_set = vec![false; j.entries.len()];
        for &f in &j.free {
            if let Some(x) = free_set.get_mut(f as usize) {
                *x = true;
            }
        }
        let mut live = Vec::with_capacity(j.len());
        let mut msgs = Vec::with_capacity(j.len());
        for (i, (e, h)) in j.entries.iter().zip(&j.heads).enumerate() {
            if !free_set[i] {
                live.push((i as u32, h.undone));
                msgs.push(e.to_message(g.clients.name(h.stamp.client), self.names()));
            }
        }
        let mut meta: Vec<_> = j
            .meta
            .iter()
            .map(|(t, m)| {
                let (lt, c) = stamp_rec(m.pos.stamp);
                (t.to_string(), (lt, c, m.pos.op), m.undo)
            })
            .collect();
        meta.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut clients: Vec<_> = j
            .clients
            .iter()
            .map(|(c, l)| ClientRec {
                client: c.index() as u32,
                prefix: (l.prefix, l.prefix_lt),
                ahead: l.ahead.iter().map(|(&a, &b)| (a, b)).collect(),
                last_lt: l.last_lt,
                untracked: l.untracked,
            })
            .collect();
        clients.sort_unstable_by_key(|c| c.client);
        let structure = self
            .structure
            .entries
            .iter()
            .map(|e| {
                let effects = e
                    .effects
                    .iter()
                    .map(|eff| match eff {
                        Effect::Created(n) => EffectRec::Created(row_of(g, *n)),
                        Effect::Reparented { node, from } => {
                            EffectRec::Reparented(row_of(g, *node), from.map(|f| row_of(g, f)))
                        }
                        Effect::Tombstoned { node, from } => {
                            EffectRec::Tombstoned(row_of(g, *node), from.map(|f| row_of(g, f)))
                        }
                        Effect::Renamed { node, tag, name } => {
                            EffectRec::Renamed(row_of(g, *node), tag.clone(), name.clone())
                        }
                    })
                    .collect();
                ((e.r.msg, e.r.op), effects)
            })
            .collect();
        let ix = &self.index;
        let mut cells: Vec<_> = ix
            .histories()
            .map(|(k, p, h)| {
                let refs = h.iter().map(|r| (r.msg, r.op)).collect();
                (k.index() as u32, p.index() as u32, refs)
            })
            .collect();
        cells.sort_unstable_by_key(|c| (c.0, c.1));
        let mut linked: Vec<_> = ix
            .linked
            .iter()
            .map(|(k, p)| (k.index() as u32, p.index() as u32))
            .collect();
        linked.sort_unstable();
        let mut text_paths: Vec<_> = ix.text_paths.iter().map(|p| p.index() as u32).collect();
        text_paths.sort_unstable();
        let l = &self.limits;
        let parts = ReplicaParts {
            frontier: self.frontier.map(stamp_rec),
            compacted_through: self.compacted_through,
            horizon: self.horizon,
            limits: [
                l.max_ops_per_message,
                l.max_string_bytes,
                l.max_collection_len,
                l.max_depth,
            ]
            .map(|x| x as u64),
            max_message_bytes: Some(l.max_message_bytes as u64),
            slots: j.entries.len() as u32,
            free: j.free.clone(),
            live,
            meta,
            clients,
            structure,
            cells,
            linked,
            text_paths,
        };
        (parts, msgs)
    }

    /// The compaction bases.
    pub(crate) fn bases(&self) -> &BaseStore {
        &self.index.bases
    }

    /// Rebuilds a replica from its graph, its bookkeeping, its journaled messages (in
    /// the order of [`ReplicaParts::live`]) and its compaction bases.
    ///
    /// # Errors
    /// A description of the first index or record that does not fit the graph.
    pub(crate) fn from_parts(
        graph: SceneGraph,
        parts: ReplicaParts,
        messages: Vec<Message>,
        bases: BaseStore,
    ) -> Result<Replica, String> {
        let n_clients = graph.clients.len();
        let n_keys = graph.keys.len();
        let n_paths = graph.paths.len();
        let client = |c: u32| -> Result<ClientId, String> {
            if (c as usize) < n_clients {
                Ok(ClientId::from_index(c))
            } else {
                Err(format!(
                    "client index {c} out of range ({n_clients} clients)"
                ))
            }
        };
        // Every Lamport time and counter keeps the wire's bound (`op::MAX_SAFE_INT`).
        let safe = |what: &str, x: u64| -> Result<u64, String> {
            if x <= MAX_SAFE_INT {
                Ok(x)
            } else {
                Err(format!("{what} {x} is beyond 2^53 − 1"))
            }
        };
        let stamp = |(lt, c): StampRec| -> Result<Stamp, String> {
            Ok(Stamp {
                lt: safe("Lamport time", lt)?,
                client: client(c)?,
            })
        };
        let key = |k: u32| -> Result<KeyId, String> {
            if (k as usize) < n_keys {
                Ok(KeyId::from_index(k))
            } else {
                Err(format!("key index {k} out of range ({n_keys} keys)"))
            }
        };
        let path = |p: u32| -> Result<PathId, String> {
            if (p as usize) < n_paths {
                Ok(PathId::from_index(p as usize))
            } else {
                Err(format!("path index {p} out of range ({n_paths} paths)"))
            }
        };
        // Journal.
        let slots = parts.slots as usize;
        if parts.live.len() != messages.len() {
            return Err(format!(
                "{} journal entries but {} messages",
                parts.live.len(),
                messages.len()
            ));
        }
        if parts.live.len() + parts.free.len() != slots {
            return Err(format!(
                "{} live and {} free journal slots do not make {slots}",
                parts.live.len(),
                parts.free.len()
            ));
        }
        let mut journal = Journal::default();
        let mut filled = vec![false; slots];
        journal.entries = (0..slots).map(|_| Entry::placeholder()).collect();
        journal.heads = vec![
            Head {
                stamp: Stamp::ZERO,
                undone: true,
            };
            slots
        ];
        let mut g = graph;
        for (&(slot, undone), msg) in parts.live.iter().zip(messages) {
            let s = slot as usize;
            if s >= slots || std::mem::replace(&mut filled[s], true) {
                return Err(format!("journal slot {slot} out of range or repeated"));
            }
            let c = g
                .clients
                .get(&msg.client)
                .ok_or_else(|| format!("message {}: client not in the table", msg.id))?;
            let st = Stamp {
                lt: msg.lt,
                client: c,
            };
            if journal.by_stamp.insert(st, slot).is_some()
                || journal.by_id.insert(msg.id.as_str().into(), slot).is_some()
            {
                return Err(format!("message {}: id or stamp repeated", msg.id));
            }
            let mut ids = Vec::with_capacity(msg.ops.len());
            for op in &msg.ops {
                ids.push(op_ids(&mut g, op));
            }
            journal.entries[s] = Entry::new(msg, ids);
            journal.heads[s] = Head { stamp: st, undone };
        }
        for &f in &parts.free {
            let s = f as usize;
            if s >= slots || std::mem::replace(&mut filled[s], true) {
                return Err(format!("free journal slot {f} out of range or repeated"));
            }
        }
        journal.free = parts.free;
        let graph = g;
        let node = |row: u32| -> Result<NodeKey, String> {
            graph
                .rows
                .get(row as usize)
                .copied()
                .flatten()
                .ok_or_else(|| format!("node row {row} does not exist"))
        };

        // Restoring the journal interned keys and paths, never clients: `client` holds.
        for (target, (lt, c, op), undo) in parts.meta {
            let pos = Pos {
                stamp: stamp((lt, c))?,
                op,
            };
            journal.meta.insert(target.into(), MetaState { pos, undo });
        }
        for c in parts.clients {
            for x in [c.prefix.0, c.prefix.1, c.last_lt]
                .into_iter()
                .chain(c.ahead.iter().flat_map(|&(a, b)| [a, b]))
            {
                safe("client log entry", x)?;
            }
            let log = ClientLog {
                prefix: c.prefix.0,
                prefix_lt: c.prefix.1,
                ahead: c.ahead.into_iter().collect(),
                last_lt: c.last_lt,
                untracked: c.untracked,
                // What heartbeats said is not kept: a restarted replica waits again.
                seen_lt: 0,
                recent: Default::default(),
            };
            if journal.clients.insert(client(c.client)?, log).is_some() {
                return Err(format!("client {} logged twice", c.client));
            }
        }
        // An op reference must name an op of a live slot.
        let live: AHashSet<u32> = parts.live.iter().map(|&(s, _)| s).collect();
        let op_ref = |(msg, op): (u32, u32)| -> Result<OpRef, String> {
            let ok = live.contains(&msg) && (op as usize) < journal.entries[msg as usize].len();
            if ok {
                Ok(OpRef { msg, op })
            } else {
                Err(format!("op reference ({msg}, {op}) names no journaled op"))
            }
        };

        // Structural log.
        let mut structure = Structure::default();
        for (r, effects) in parts.structure {
            let r = op_ref(r)?;
            if !journal.body(r).is_node() {
                return Err(format!(
                    "structural log entry ({}, {}) is no node op",
                    r.msg, r.op
                ));
            }
            let effects = effects
                .into_iter()
                .map(|e| {
                    Ok(match e {
                        EffectRec::Created(n) => Effect::Created(node(n)?),
                        EffectRec::Reparented(n, f) => Effect::Reparented {
                            node: node(n)?,
                            from: f.map(node).transpose()?,
                        },
                        EffectRec::Tombstoned(n, f) => Effect::Tombstoned {
                            node: node(n)?,
                            from: f.map(node).transpose()?,
                        },
                        EffectRec::Renamed(n, tag, name) => Effect::Renamed {
                            node: node(n)?,
                            tag,
                            name,
                        },
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            structure.entries.push(StructEntry { r, effects });
        }

        // Cell index.
        let mut index = CellIndex::default();
        for (k, p, refs) in parts.cells {
            let (k, p) = (key(k)?, path(p)?);
            let refs = refs
                .into_iter()
                .map(op_ref)
                .collect::<Result<Vec<_>, _>>()?;
            if !index.restore(k, p, refs) {
                return Err("a cell history is listed twice".into());
            }
        }
        for (k, p) in parts.linked {
            index.linked.insert((key(k)?, path(p)?));
        }
        for p in parts.text_paths {
            index.text_paths.insert(path(p)?);
        }
        index.bases = bases;

        let [ops, strings, coll, depth] = parts
            .limits
            .map(|x| usize::try_from(x).unwrap_or(usize::MAX));
        let frontier = parts.frontier.map(stamp).transpose()?;
        if let Some(t) = parts.compacted_through {
            safe("compacted-through time", t)?;
        }
        let ops_at_compact = journal.ops_pushed;
        Ok(Replica {
            graph,
            journal,
            index,
            structure,
            frontier,
            limits: Limits {
                max_ops_per_message: ops,
                max_string_bytes: strings,
                max_collection_len: coll,
                max_depth: depth,
                max_message_bytes: parts
                    .max_message_bytes
                    .map_or(Limits::default().max_message_bytes, |x| {
                        usize::try_from(x).unwrap_or(usize::MAX)
                    }),
            },
            horizon: parts.horizon,
            compacted_through: parts.compacted_through,
            auto_compact: Some(super::DEFAULT_AUTO_COMPACT),
            since_compact: 0,
            ops_at_compact,
        })
    }
}

/// [`Replica::op_ids`] on a bare graph (restore runs before a replica exists).
pub(super) fn op_ids(graph: &mut SceneGraph, op: &crate::op::Op) -> (KeyId, PathId) {
    use crate::op::OpKind::*;
    let key = match &op.kind {
        NodeInsert(s) | NodeUpsert(s) | NodeInset(s) => graph.keys.intern(&s.key),
        NodeRemove { .. } | NodeMove { .. } | MetaUndo { .. } | MetaRedo { .. } => KeyId::ROOT,
        _ if crate::op::is_root_key(&op.key) => KeyId::ROOT,
        _ => graph.keys.intern(&op.key),
    };
    (key, graph.path_id(&op.path))
}

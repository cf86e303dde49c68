//! Applying ops to a [`SceneGraph`]: the low-level API of the seeds
//! (`apply_operation`, `apply_message`, `apply_messages`, `create_empty_graph`).
//!
//! This is the sequential model of DESIGN.md §4: [`apply_messages`] dedupes, sorts
//! canonically, drops undone messages ([`crate::batch::plan`]) and applies the rest one
//! op at a time. Every replica that holds the same set of messages therefore prints the
//! same [`SceneGraph::to_json`], bit for bit.
//!
//! Invariants:
//! - applying a (validated) op never fails and never panics; an op that does nothing
//!   returns a [`WarningKind`] saying why, and leaves the graph unchanged;
//! - an LWW op writes only when its stamp is strictly greater than the cell's (so in
//!   one message the first write to a cell wins); other ops keep the cell's stamp;
//! - ops on missing or deleted nodes do nothing; `node.insert` of an existing key does
//!   nothing (and warns); `node.move` never creates a cycle; `node.remove`/`node.move` act on the
//!   node's *actual* parent (`op.key` is informational).
//!
//! Single-cell semantics live in [`fold`](mod@fold); this file resolves nodes, stamps and the
//! multi-cell ops (node ops, `object.*` at path `.`, `object.remove`).

pub mod fold;

use std::cmp::Ordering;

use ahash::AHashSet;

use crate::batch;
use crate::column::Value;
use crate::error::{Warning, WarningKind};
use crate::graph::SceneGraph;
use crate::ids::{KeyId, NodeKey, PathId, Pos, Stamp};
use crate::op::{Json, Message, NodeSpec, Op, OpKind, is_root_key};
use fold::{Fold, deep_merge, fold};

/// The envelope fields an op is applied with: who sent it, when.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpMeta<'a> {
    /// The sending client.
    pub client: &'a str,
    /// The message's Lamport time.
    pub lt: u64,
    /// The message's wall clock (orders children).
    pub ts: f64,
}

impl Message {
    /// The envelope of this message's ops.
    pub fn meta(&self) -> OpMeta<'_> {
        OpMeta {
            client: &self.client,
            lt: self.lt,
            ts: self.ts,
        }
    }
}

/// What applying messages did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    /// Messages applied.
    pub messages: usize,
    /// Ops applied (including those that only produced a warning).
    pub ops: usize,
    /// Messages dropped as duplicates of an id already present.
    pub duplicates: usize,
    /// Messages skipped because they are undone.
    pub undone: usize,
    /// Ops that did nothing, and why.
    pub warnings: Vec<Warning>,
}

/// An empty scene graph.
pub fn create_empty_graph() -> SceneGraph {
    SceneGraph::new()
}

/// Applies one op, stamped with `meta`. Returns `None` when the op took effect (or was
/// an idempotent repeat), or the reason it did nothing.
///
/// `meta.*` ops do nothing here: undo is a property of a *set* of messages, handled by
/// [`apply_messages`] (and by the replica).
///
/// # Examples
/// ```
/// use vuer_rtc::{create_empty_graph, apply_operation, OpMeta, op::Op};
/// let mut g = create_empty_graph();
/// let meta = OpMeta { client: "alice", lt: 1, ts: 0.0 };
/// assert!(apply_operation(&mut g, &Op::node_insert("", "obj", "Mesh"), &meta).is_none());
/// assert!(apply_operation(&mut g, &Op::number_add("obj", "health", 10.0), &meta).is_none());
/// assert!(apply_operation(&mut g, &Op::number_add("ghost", "health", 1.0), &meta).is_some());
/// ```
pub fn apply_operation(graph: &mut SceneGraph, op: &Op, meta: &OpMeta<'_>) -> Option<WarningKind> {
    let stamp = Stamp {
        lt: meta.lt,
        client: graph.clients.intern(meta.client),
    };
    let ctx = Ctx {
        pos: Pos::new(stamp, 0),
        ts: meta.ts,
        write_props: true,
    };
    apply_op(graph, op, &ctx, &mut Vec::new())
}

/// Applies every op of one message, in array order. Duplicates and undo are not
/// considered (use [`apply_messages`] for a set of messages).
pub fn apply_message(graph: &mut SceneGraph, msg: &Message) -> ApplyReport {
    let mut report = ApplyReport::default();
    apply_into(graph, msg, &mut report);
    report
}

/// Applies a set of messages in canonical order: duplicates dropped, sorted by
/// `(lt, client)`, undone messages skipped (DESIGN.md §4). The result does not depend
/// on the order of `messages`.
///
/// # Examples
/// ```
/// use vuer_rtc::{create_empty_graph, apply_messages, op::{Message, Op}};
/// let msg = |id: &str, client: &str, lt, ops| Message {
///     id: id.into(), client: client.into(), clock: Default::default(), lt, ts: 0.0, ops,
/// };
/// let a = msg("a:1", "a", 1, vec![Op::node_insert("", "obj", "Mesh"), Op::number_set("obj", "hp", 100.0)]);
/// let b = msg("b:2", "b", 2, vec![Op::number_add("obj", "hp", -25.0)]);
/// let c = msg("c:2", "c", 2, vec![Op::number_add("obj", "hp", -10.0)]);
/// let mut g1 = create_empty_graph();
/// let mut g2 = create_empty_graph();
/// apply_messages(&mut g1, &[a.clone(), b.clone(), c.clone()]);
/// apply_messages(&mut g2, &[c, b, a]);
/// assert_eq!(g1.to_json(), g2.to_json());
/// assert_eq!(g1.node("obj").unwrap().get("hp").and_then(|v| v.as_number()), Some(65.0));
/// ```
pub fn apply_messages(graph: &mut SceneGraph, messages: &[Message]) -> ApplyReport {
    let plan = batch::plan(messages);
    let mut report = ApplyReport {
        duplicates: plan.duplicates,
        undone: plan.undone.len(),
        ..ApplyReport::default()
    };
    // Meta ops act whatever message carries them (undone and meta-only ones too): those
    // aimed at no message of the set warn, in canonical order with the other warnings.
    let held: AHashSet<&str> = plan
        .apply
        .iter()
        .chain(&plan.undone)
        .chain(&plan.meta)
        .map(|m| m.id.as_str())
        .collect();
    let mut all: Vec<(&Message, bool)> = plan.apply.iter().map(|&m| (m, true)).collect();
    all.extend(plan.undone.iter().chain(&plan.meta).map(|&m| (m, false)));
    all.sort_by(|a, b| batch::canonical_cmp(a.0, b.0));
    for (msg, apply) in all {
        let start = report.warnings.len();
        if apply {
            apply_into(graph, msg, &mut report);
        }
        let mut meta = false;
        for (op_index, op) in msg.ops.iter().enumerate() {
            if let Some(reason) = unknown_target(op, &held) {
                meta = true;
                report.warnings.push(Warning {
                    msg_id: msg.id.clone(),
                    op_index,
                    reason,
                });
            }
        }
        if meta {
            // A message that mixes data and meta ops: its warnings in op order.
            report.warnings[start..].sort_by_key(|w| w.op_index);
        }
    }
    report
}

/// The warning of a `meta.undo`/`meta.redo` whose target is not in `held`.
fn unknown_target(op: &Op, held: &AHashSet<&str>) -> Option<WarningKind> {
    match &op.kind {
        OpKind::MetaUndo { target } | OpKind::MetaRedo { target }
            if !held.contains(target.as_str()) =>
        {
            Some(WarningKind::UnknownTarget {
                ot: op.kind.ot(),
                target: target.clone(),
            })
        }
        _ => None,
    }
}

fn apply_into(graph: &mut SceneGraph, msg: &Message, report: &mut ApplyReport) {
    let stamp = Stamp {
        lt: msg.lt,
        client: graph.clients.intern(&msg.client),
    };
    let mut effects = Vec::new();
    for (op_index, op) in msg.ops.iter().enumerate() {
        let ctx = Ctx {
            pos: Pos::new(stamp, op_index),
            ts: msg.ts,
            write_props: true,
        };
        effects.clear();
        if let Some(reason) = apply_op(graph, op, &ctx, &mut effects) {
            report.warnings.push(Warning {
                msg_id: msg.id.clone(),
                op_index,
                reason,
            });
        }
    }
    report.messages += 1;
    report.ops += msg.ops.len();
}

/// Where an op sits in the total order, and what to apply of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    /// The op's position (its message's stamp and its index).
    pub pos: Pos,
    /// The message's wall clock (orders children of created nodes).
    pub ts: f64,
    /// False when only the structure is replayed: node ops then leave properties to
    /// the caller (the replica recomputes cells from their own histories).
    pub write_props: bool,
}

/// A structural change made by a node op, recorded so it can be undone (the
/// undo-do-redo of Kleppmann et al.'s move operation).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// The node was created.
    Created(NodeKey),
    /// The node's parent changed; `from` is the previous parent.
    Reparented {
        node: NodeKey,
        from: Option<NodeKey>,
    },
    /// The node was tombstoned; `from` is the parent it was detached from.
    Tombstoned {
        node: NodeKey,
        from: Option<NodeKey>,
    },
    /// The node's tag/name changed; these are the previous ones.
    Renamed {
        node: NodeKey,
        tag: String,
        name: String,
    },
}

/// Reverts one [`Effect`]. Effects must be undone in the reverse order they were made.
pub(crate) fn undo_effect(graph: &mut SceneGraph, effect: Effect) {
    match effect {
        Effect::Created(n) => graph.uncreate(n),
        Effect::Reparented { node, from } => {
            graph.detach(node);
            if let Some(p) = from {
                graph.attach(node, p);
            }
        }
        Effect::Tombstoned { node, from } => {
            graph.untombstone(node);
            if let Some(p) = from {
                graph.attach(node, p);
            }
        }
        Effect::Renamed { node, tag, name } => {
            let n = &mut graph.nodes[node];
            n.tag = tag;
            n.name = name;
            graph.touch(node);
        }
    }
}

/// Applies one op at `ctx.pos`, recording structural changes in `effects`.
pub(crate) fn apply_op(
    graph: &mut SceneGraph,
    op: &Op,
    ctx: &Ctx,
    effects: &mut Vec<Effect>,
) -> Option<WarningKind> {
    use OpKind::*;
    match &op.kind {
        NodeInsert(spec) => insert_node(graph, &op.key, spec, ctx, Mode::Insert, effects),
        NodeUpsert(spec) => insert_node(graph, &op.key, spec, ctx, Mode::Upsert, effects),
        NodeInset(spec) => insert_node(graph, &op.key, spec, ctx, Mode::Inset, effects),
        NodeRemove { node, .. } => remove_node(graph, node, ctx.pos, effects),
        NodeMove {
            node, new_parent, ..
        } => move_node(graph, node, new_parent, effects),
        MetaUndo { .. } | MetaRedo { .. } => None,
        _ => match live_target(graph, &op.key) {
            Ok(node) => {
                let pid = graph.path_id(&op.path);
                apply_props(graph, node, op, pid, ctx.pos, &|_| true)
            }
            Err(w) => Some(w),
        },
    }
}

/// Applies the property part of `op` (at `pos`; `pid` is its interned `path`) to `node`,
/// touching only the paths `cells` accepts. No liveness check: the caller knows the node was alive at `pos`.
/// For `node.insert`/`upsert`/`inset` this writes the node's initial properties when
/// `pos` is the node's creation, and merges/sets them otherwise.
pub(crate) fn apply_props(
    graph: &mut SceneGraph,
    node: NodeKey,
    op: &Op,
    pid: PathId,
    pos: Pos,
    cells: &dyn Fn(PathId) -> bool,
) -> Option<WarningKind> {
    use OpKind::*;
    let stamp = pos.stamp;
    match &op.kind {
        NodeInsert(spec) | NodeUpsert(spec) | NodeInset(spec) => {
            let mode = match &op.kind {
                NodeInsert(_) => Mode::Insert,
                NodeUpsert(_) => Mode::Upsert,
                _ => Mode::Inset,
            };
            let creating = graph.nodes[node].created == pos;
            node_props(graph, node, spec, mode, creating, stamp, cells);
            None
        }
        NodeRemove { .. } | NodeMove { .. } | MetaUndo { .. } | MetaRedo { .. } => None,
        ObjectMerge(m) if op.path == "." => {
            merge_into_node(graph, node, m, Merge::Deep, cells);
            None
        }
        ObjectUpdate(m) if op.path == "." => {
            merge_into_node(graph, node, m, Merge::Shallow, cells);
            None
        }
        ObjectRemove { field } => {
            object_remove(graph, node, &op.path, field.as_deref(), cells);
            None
        }
        kind if cells(pid) => set_cell(graph, node, pid, kind, stamp),
        _ => None,
    }
}

/// The live node a property op on the interned target `kid` reaches
/// ([`KeyId::ROOT`] = the root), or the warning for an op written with `key`.
pub(crate) fn node_for(graph: &SceneGraph, kid: KeyId, key: &str) -> Result<NodeKey, WarningKind> {
    let node = if kid == KeyId::ROOT {
        graph.root
    } else {
        graph.node_of(kid)
    };
    match node {
        None => Err(WarningKind::MissingNode(key.to_owned())),
        Some(n) if graph.nodes[n].deleted() => Err(WarningKind::DeletedNode(key.to_owned())),
        Some(n) => Ok(n),
    }
}

/// Resolves a property op's target: the root keys name the graph's root node.
fn live_target(graph: &SceneGraph, key: &str) -> Result<NodeKey, WarningKind> {
    let id = if is_root_key(key) {
        graph.root
    } else {
        graph.node_id(key)
    };
    let Some(id) = id else {
        return Err(WarningKind::MissingNode(key.to_owned()));
    };
    if graph.nodes[id].deleted() {
        return Err(WarningKind::DeletedNode(key.to_owned()));
    }
    Ok(id)
}

/// What one single-cell op does to a cell holding `cur`.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing: an LWW write that lost to the cell's stamp.
    Skip,
    /// Write this value and stamp.
    Write(Value, Stamp),
    /// Nothing, for this reason.
    Keep(WarningKind),
}

/// The single-cell step shared by the op-by-op path and the batched run fold: an LWW
/// op writes only when its stamp is strictly greater than the cell's (or the cell is
/// absent) and then takes the op's stamp; other ops keep the cell's stamp.
pub(crate) fn step(
    clients: &crate::ids::ClientTable,
    path: &str,
    kind: &OpKind,
    stamp: Stamp,
    cur: Option<(crate::column::ValueRef<'_>, Stamp)>,
) -> Step {
    let cur_stamp = cur.map_or(Stamp::ZERO, |(_, s)| s);
    if kind.is_text() {
        // Text ops never touch the LWW record.
        let agent = clients.name(stamp.client);
        return match fold::fold_text(kind, agent, stamp.lt, cur.map(|(v, _)| v)) {
            Fold::Write(v) => Step::Write(v, cur_stamp),
            Fold::Keep(w) => Step::Keep(w),
        };
    }
    let lww = kind.is_lww();
    if lww && cur.is_some() && clients.cmp_stamps(stamp, cur_stamp) != Ordering::Greater {
        return Step::Skip;
    }
    match fold(kind, path, cur.map(|(v, _)| v)) {
        Fold::Write(v) => Step::Write(v, if lww { stamp } else { cur_stamp }),
        Fold::Keep(w) => Step::Keep(w),
    }
}

/// What [`step_owned`] did to the cell.
#[derive(Debug)]
pub(crate) enum Stepped {
    /// The cell is as it was.
    Unchanged,
    /// The cell changed.
    Changed,
    /// The cell is as it was, for this reason.
    Kept(WarningKind),
}

/// [`step`] on an owned cell: the same result, but a `text.*` op edits the cell's text
/// in place instead of copying the whole text first.
pub(crate) fn step_owned(
    clients: &crate::ids::ClientTable,
    path: &str,
    kind: &OpKind,
    stamp: Stamp,
    cur: &mut Option<(Value, Stamp)>,
) -> Stepped {
    if kind.is_text() {
        let agent = clients.name(stamp.client);
        return match cur {
            Some((Value::Text(cell), _)) => {
                fold::apply_text(cell, kind, agent, stamp.lt);
                Stepped::Changed
            }
            _ if matches!(kind, OpKind::TextDelete(_)) => Stepped::Kept(WarningKind::Ignored(
                "`text.delete` on a property with no text".into(),
            )),
            _ => {
                let mut cell = crate::column::TextCell::default();
                fold::apply_text(&mut cell, kind, agent, stamp.lt);
                let st = cur.as_ref().map_or(Stamp::ZERO, |(_, s)| *s);
                *cur = Some((Value::Text(Box::new(cell)), st));
                Stepped::Changed
            }
        };
    }
    match step(
        clients,
        path,
        kind,
        stamp,
        cur.as_ref().map(|(v, s)| (v.as_ref(), *s)),
    ) {
        Step::Skip => Stepped::Unchanged,
        Step::Write(v, s) => {
            *cur = Some((v, s));
            Stepped::Changed
        }
        Step::Keep(w) => Stepped::Kept(w),
    }
}

/// True for the ops whose whole effect is one cell `(op.key, op.path)` (everything but
/// node ops, meta ops, `object.remove`, and `object.merge`/`update` at `.`).
pub(crate) fn is_single_cell(op: &Op) -> bool {
    use OpKind::*;
    match &op.kind {
        ObjectMerge(_) | ObjectUpdate(_) => op.path != ".",
        ObjectRemove { .. } => false,
        k => !k.is_node() && !k.is_meta(),
    }
}

/// Folds a single-cell op into (node, path), honouring LWW stamps.
/// An LWW write of `value` at `stamp` to a cell (what [`step`] does for an LWW set,
/// whose value ignores the cell's): skipped when the cell's stamp is not older.
pub(crate) fn set_lww(
    graph: &mut SceneGraph,
    node: NodeKey,
    pid: PathId,
    value: Value,
    stamp: Stamp,
) {
    let row = graph.nodes[node].row;
    let clients = &graph.clients;
    graph.props.set_lww(pid, row, value, stamp, |s| {
        clients.cmp_stamps(stamp, s) == Ordering::Greater
    });
}

pub(crate) fn set_cell(
    graph: &mut SceneGraph,
    node: NodeKey,
    pid: PathId,
    kind: &OpKind,
    stamp: Stamp,
) -> Option<WarningKind> {
    if kind.is_text() {
        // In place: take the text out, edit it, put it back.
        let mut cur = graph.take_cell(node, pid);
        let path = graph.paths.name(pid);
        let r = step_owned(&graph.clients, path, kind, stamp, &mut cur);
        if let Some((v, s)) = cur {
            graph.write(node, pid, v, s);
        }
        return match r {
            Stepped::Kept(w) => Some(w),
            Stepped::Changed | Stepped::Unchanged => None,
        };
    }
    let path = graph.paths.name(pid);
    match step(&graph.clients, path, kind, stamp, graph.cell(node, pid)) {
        Step::Skip => None,
        Step::Write(v, s) => {
            graph.write(node, pid, v, s);
            None
        }
        Step::Keep(w) => Some(w),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Merge {
    Deep,
    Shallow,
}

/// The keys `object.merge`/`object.update` at `.` never write.
pub(crate) fn is_reserved_prop(k: &str) -> bool {
    matches!(k, "key" | "tag" | "children" | "_crdt")
}

/// `object.merge` / `object.update` at path `.`: each key of `m` is a property.
fn merge_into_node(
    graph: &mut SceneGraph,
    node: NodeKey,
    m: &serde_json::Map<String, Json>,
    how: Merge,
    cells: &dyn Fn(PathId) -> bool,
) {
    for (k, v) in m {
        if is_reserved_prop(k) {
            continue;
        }
        let pid = graph.path_id(k);
        if !cells(pid) {
            continue;
        }
        let cur = graph.cell(node, pid);
        let stamp = cur.map_or(Stamp::ZERO, |(_, s)| s);
        let new = match (how, cur.and_then(|(c, _)| c.as_object()), v) {
            (Merge::Deep, Some(base), Json::Object(patch)) => {
                let mut merged = base.clone();
                deep_merge(&mut merged, patch);
                Json::Object(merged)
            }
            _ => v.clone(),
        };
        graph.write(node, pid, Value::from_json(new), stamp);
    }
}

/// The property paths an `object.remove` at `path` may touch: the path itself, then
/// every dotted prefix, longest first.
pub(crate) fn object_remove_candidates(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once(path).chain(path.rmatch_indices('.').map(move |(i, _)| &path[..i]))
}

/// `object.remove`: property `path` if it exists, else the nested key named by the
/// rest of the path inside an object property (`a.b` → key `b` of property `a`).
/// With an explicit `field`, removes that key from the object property `path`.
fn object_remove(
    graph: &mut SceneGraph,
    node: NodeKey,
    path: &str,
    field: Option<&str>,
    cells: &dyn Fn(PathId) -> bool,
) {
    if let Some(field) = field {
        if graph.paths.get(path).is_some_and(cells) {
            remove_nested(graph, node, path, &[field]);
        }
        return;
    }
    for prop in object_remove_candidates(path) {
        if !graph.paths.get(prop).is_some_and(cells) {
            continue;
        }
        if prop.len() == path.len() {
            if let Some(pid) = graph.paths.get(path)
                && graph.remove_cell(node, pid)
            {
                return;
            }
        } else {
            let segs: Vec<&str> = path[prop.len() + 1..].split('.').collect();
            if remove_nested(graph, node, prop, &segs) {
                return;
            }
        }
    }
}

/// Removes `segs` (a key path) from the object stored at property `prop`.
fn remove_nested(graph: &mut SceneGraph, node: NodeKey, prop: &str, segs: &[&str]) -> bool {
    let Some(pid) = graph.paths.get(prop) else {
        return false;
    };
    let Some((cur, stamp)) = graph.cell(node, pid) else {
        return false;
    };
    let Some(obj) = cur.as_object() else {
        return false;
    };
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut obj = obj.clone();
    let mut at = &mut obj;
    for s in parents {
        match at.get_mut(*s) {
            Some(Json::Object(o)) => at = o,
            _ => return false,
        }
    }
    if at.remove(*last).is_none() {
        return false;
    }
    graph.write(node, pid, Value::Json(Json::Object(obj)), stamp);
    true
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Insert,
    Upsert,
    Inset,
}

fn insert_node(
    graph: &mut SceneGraph,
    parent_key: &str,
    spec: &NodeSpec,
    ctx: &Ctx,
    mode: Mode,
    effects: &mut Vec<Effect>,
) -> Option<WarningKind> {
    if let Some(id) = graph.node_id(&spec.key) {
        return match mode {
            // Idempotent by key, even for a tombstone (no resurrection): nothing to do.
            _ if graph.nodes[id].deleted() => Some(WarningKind::DeletedNode(spec.key.clone())),
            Mode::Insert => Some(WarningKind::Exists(spec.key.clone())),
            Mode::Upsert | Mode::Inset => {
                rename(graph, id, spec, effects);
                if ctx.write_props {
                    node_props(graph, id, spec, mode, false, ctx.pos.stamp, &|_| true);
                }
                adopt_children(graph, id, &spec.children, effects)
            }
        };
    }
    let id = graph.create(
        &spec.key,
        spec.tag.clone().unwrap_or_default(),
        spec.name.clone().unwrap_or_default(),
        ctx.ts,
        ctx.pos,
    );
    effects.push(Effect::Created(id));
    if ctx.write_props {
        node_props(graph, id, spec, mode, true, ctx.pos.stamp, &|_| true);
    }
    let mut warning = None;
    if !is_root_key(parent_key) {
        match graph.node_id(parent_key) {
            // A new node is nobody's ancestor, so only `parent == itself` is a cycle.
            Some(p) if p == id => {
                warning = Some(WarningKind::Cycle {
                    node: spec.key.clone(),
                    new_parent: parent_key.to_owned(),
                });
            }
            Some(p) => {
                graph.attach(id, p);
                effects.push(Effect::Reparented {
                    node: id,
                    from: None,
                });
            }
            None => warning = Some(WarningKind::MissingNode(parent_key.to_owned())),
        }
    }
    adopt_children(graph, id, &spec.children, effects).or(warning)
}

/// `node.upsert`/`node.inset` on an existing node replace `tag`/`name` when given.
fn rename(graph: &mut SceneGraph, id: NodeKey, spec: &NodeSpec, effects: &mut Vec<Effect>) {
    if spec.tag.is_none() && spec.name.is_none() {
        return;
    }
    graph.touch(id);
    let n = &mut graph.nodes[id];
    effects.push(Effect::Renamed {
        node: id,
        tag: n.tag.clone(),
        name: n.name.clone(),
    });
    if let Some(t) = &spec.tag {
        n.tag.clone_from(t);
    }
    if let Some(nm) = &spec.name {
        n.name.clone_from(nm);
    }
}

/// The property part of `node.insert`/`upsert`/`inset`. On creation every prop is an
/// initial value (no LWW stamp). On an existing node, `node.upsert` merges props
/// (like `object.merge` at `.`), `node.inset` sets them (LWW) and `node.insert` does
/// nothing.
fn node_props(
    graph: &mut SceneGraph,
    id: NodeKey,
    spec: &NodeSpec,
    mode: Mode,
    creating: bool,
    stamp: Stamp,
    cells: &dyn Fn(PathId) -> bool,
) {
    match (creating, mode) {
        (true, _) => {
            for (k, v) in &spec.props {
                let pid = graph.path_id(k);
                if cells(pid) {
                    graph.write(id, pid, Value::from_json(v.clone()), Stamp::ZERO);
                }
            }
        }
        (false, Mode::Insert) => {}
        (false, Mode::Upsert) => {
            let m: serde_json::Map<String, Json> = spec
                .props
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            merge_into_node(graph, id, &m, Merge::Deep, cells);
        }
        (false, Mode::Inset) => {
            for (k, v) in &spec.props {
                let pid = graph.path_id(k);
                if !cells(pid) {
                    continue;
                }
                let cur = graph.cell(id, pid).map(|(_, s)| s);
                if cur.is_none_or(|s| graph.clients.cmp_stamps(stamp, s) == Ordering::Greater) {
                    graph.write(id, pid, Value::from_json(v.clone()), stamp);
                }
            }
        }
    }
}

/// Moves each listed existing node under `parent` (cycle-safe, like `node.move`).
fn adopt_children(
    graph: &mut SceneGraph,
    parent: NodeKey,
    children: &[String],
    effects: &mut Vec<Effect>,
) -> Option<WarningKind> {
    let mut first = None;
    for c in children {
        let pk = graph.nodes[parent].key.to_string();
        if let Some(w) = move_node(graph, c, &pk, effects) {
            first.get_or_insert(w);
        }
    }
    first
}

fn remove_node(
    graph: &mut SceneGraph,
    key: &str,
    pos: Pos,
    effects: &mut Vec<Effect>,
) -> Option<WarningKind> {
    let Some(id) = graph.node_id(key) else {
        return Some(WarningKind::MissingNode(key.to_owned()));
    };
    if !graph.nodes[id].deleted() {
        let from = graph.nodes[id].parent;
        graph.tombstone(id, pos);
        effects.push(Effect::Tombstoned { node: id, from });
    }
    None
}

fn move_node(
    graph: &mut SceneGraph,
    key: &str,
    new_parent: &str,
    effects: &mut Vec<Effect>,
) -> Option<WarningKind> {
    let Some(id) = graph.node_id(key) else {
        return Some(WarningKind::MissingNode(key.to_owned()));
    };
    if graph.nodes[id].deleted() {
        return Some(WarningKind::DeletedNode(key.to_owned()));
    }
    let Some(p) = graph.node_id(new_parent) else {
        return Some(WarningKind::MissingNode(new_parent.to_owned()));
    };
    if graph.nodes[id].parent == Some(p) {
        return None;
    }
    if graph.is_ancestor_or_self(id, p) {
        return Some(WarningKind::Cycle {
            node: key.to_owned(),
            new_parent: new_parent.to_owned(),
        });
    }
    let from = graph.nodes[id].parent;
    graph.detach(id);
    graph.attach(id, p);
    effects.push(Effect::Reparented { node: id, from });
    None
}

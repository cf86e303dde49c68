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
//!   nothing; `node.move` never creates a cycle; `node.remove`/`node.move` act on the
//!   node's *actual* parent (`op.key` is informational).
//!
//! Single-cell semantics live in [`fold`]; this file resolves nodes, stamps and the
//! multi-cell ops (node ops, `object.*` at path `.`, `object.remove`).

pub mod fold;

use std::cmp::Ordering;

use crate::batch;
use crate::column::Value;
use crate::error::{Warning, WarningKind};
use crate::graph::SceneGraph;
use crate::ids::{NodeKey, Stamp};
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
    apply_stamped(graph, op, stamp, meta.ts)
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
    for msg in plan.apply {
        apply_into(graph, msg, &mut report);
    }
    report
}

fn apply_into(graph: &mut SceneGraph, msg: &Message, report: &mut ApplyReport) {
    let stamp = Stamp {
        lt: msg.lt,
        client: graph.clients.intern(&msg.client),
    };
    for (op_index, op) in msg.ops.iter().enumerate() {
        if let Some(reason) = apply_stamped(graph, op, stamp, msg.ts) {
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

/// Applies one op with an interned stamp.
pub(crate) fn apply_stamped(
    graph: &mut SceneGraph,
    op: &Op,
    stamp: Stamp,
    ts: f64,
) -> Option<WarningKind> {
    use OpKind::*;
    match &op.kind {
        NodeInsert(spec) => insert_node(graph, &op.key, spec, stamp, ts, Mode::Insert),
        NodeUpsert(spec) => insert_node(graph, &op.key, spec, stamp, ts, Mode::Upsert),
        NodeInset(spec) => insert_node(graph, &op.key, spec, stamp, ts, Mode::Inset),
        NodeRemove { node, .. } => remove_node(graph, node),
        NodeMove {
            node, new_parent, ..
        } => move_node(graph, node, new_parent),
        MetaUndo { .. } | MetaRedo { .. } => None,
        _ => {
            let node = match live_target(graph, &op.key) {
                Ok(n) => n,
                Err(w) => return Some(w),
            };
            match &op.kind {
                ObjectMerge(m) if op.path == "." => {
                    merge_into_node(graph, node, m, Merge::Deep);
                    None
                }
                ObjectUpdate(m) if op.path == "." => {
                    merge_into_node(graph, node, m, Merge::Shallow);
                    None
                }
                ObjectRemove { field } => {
                    object_remove(graph, node, &op.path, field.as_deref());
                    None
                }
                kind => set_cell(graph, node, &op.path, kind, stamp),
            }
        }
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
    if graph.nodes[id].deleted {
        return Err(WarningKind::DeletedNode(key.to_owned()));
    }
    Ok(id)
}

/// Folds a single-cell op into (node, path), honouring LWW stamps.
fn set_cell(
    graph: &mut SceneGraph,
    node: NodeKey,
    path: &str,
    kind: &OpKind,
    stamp: Stamp,
) -> Option<WarningKind> {
    let pid = graph.path_id(path);
    let cur = graph.cell(node, pid);
    let cur_stamp = cur.map_or(Stamp::ZERO, |(_, s)| s);
    let lww = kind.is_lww();
    if lww && cur.is_some() && graph.clients.cmp_stamps(stamp, cur_stamp) != Ordering::Greater {
        // An older (or same-message) write loses: nothing to do, nothing to report.
        return None;
    }
    match fold(kind, path, cur.map(|(v, _)| v)) {
        Fold::Write(v) => {
            graph.write(node, pid, v, if lww { stamp } else { cur_stamp });
            None
        }
        Fold::Keep(w) => Some(w),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Merge {
    Deep,
    Shallow,
}

/// `object.merge` / `object.update` at path `.`: each key of `m` is a property.
fn merge_into_node(
    graph: &mut SceneGraph,
    node: NodeKey,
    m: &serde_json::Map<String, Json>,
    how: Merge,
) {
    for (k, v) in m {
        if matches!(k.as_str(), "key" | "tag" | "children" | "_crdt") {
            continue;
        }
        let pid = graph.path_id(k);
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

/// `object.remove`: property `path` if it exists, else the nested key named by the
/// rest of the path inside an object property (`a.b` → key `b` of property `a`).
/// With an explicit `field`, removes that key from the object property `path`.
fn object_remove(graph: &mut SceneGraph, node: NodeKey, path: &str, field: Option<&str>) {
    if let Some(field) = field {
        remove_nested(graph, node, path, &[field]);
        return;
    }
    if let Some(pid) = graph.paths.get(path)
        && graph.remove_cell(node, pid)
    {
        return;
    }
    // Try the longest existing object property that prefixes the path.
    let dots: Vec<usize> = path.match_indices('.').map(|(i, _)| i).collect();
    for &i in dots.iter().rev() {
        let (prop, rest) = (&path[..i], &path[i + 1..]);
        let segs: Vec<&str> = rest.split('.').collect();
        if remove_nested(graph, node, prop, &segs) {
            return;
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
    stamp: Stamp,
    ts: f64,
    mode: Mode,
) -> Option<WarningKind> {
    if let Some(id) = graph.node_id(&spec.key) {
        return match mode {
            // Idempotent by key, even for a tombstone: no resurrection.
            Mode::Insert => None,
            _ if graph.nodes[id].deleted => Some(WarningKind::DeletedNode(spec.key.clone())),
            Mode::Upsert | Mode::Inset => {
                update_existing(graph, id, spec, stamp, mode);
                adopt_children(graph, id, &spec.children)
            }
        };
    }
    let id = graph.create(
        &spec.key,
        spec.tag.clone().unwrap_or_default(),
        spec.name.clone().unwrap_or_default(),
        ts,
    );
    for (k, v) in &spec.props {
        let pid = graph.path_id(k);
        graph.write(id, pid, Value::from_json(v.clone()), Stamp::ZERO);
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
            Some(p) => graph.attach(id, p),
            None => warning = Some(WarningKind::MissingNode(parent_key.to_owned())),
        }
    }
    adopt_children(graph, id, &spec.children).or(warning)
}

/// `node.upsert` merges props (like `object.merge` at `.`); `node.inset` sets them
/// (LWW). Both replace `tag`/`name` when given.
fn update_existing(graph: &mut SceneGraph, id: NodeKey, spec: &NodeSpec, stamp: Stamp, mode: Mode) {
    if let Some(t) = &spec.tag {
        graph.nodes[id].tag.clone_from(t);
    }
    if let Some(n) = &spec.name {
        graph.nodes[id].name.clone_from(n);
    }
    match mode {
        Mode::Upsert => {
            let m: serde_json::Map<String, Json> = spec
                .props
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            merge_into_node(graph, id, &m, Merge::Deep);
        }
        _ => {
            for (k, v) in &spec.props {
                let pid = graph.path_id(k);
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
) -> Option<WarningKind> {
    let mut first = None;
    for c in children {
        let pk = graph.nodes[parent].key.to_string();
        if let Some(w) = move_node(graph, c, &pk) {
            first.get_or_insert(w);
        }
    }
    first
}

fn remove_node(graph: &mut SceneGraph, key: &str) -> Option<WarningKind> {
    let Some(id) = graph.node_id(key) else {
        return Some(WarningKind::MissingNode(key.to_owned()));
    };
    if !graph.nodes[id].deleted {
        graph.tombstone(id);
    }
    None
}

fn move_node(graph: &mut SceneGraph, key: &str, new_parent: &str) -> Option<WarningKind> {
    let Some(id) = graph.node_id(key) else {
        return Some(WarningKind::MissingNode(key.to_owned()));
    };
    if graph.nodes[id].deleted {
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
    graph.detach(id);
    graph.attach(id, p);
    None
}

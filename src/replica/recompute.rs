//! Recomputing cells from their histories after a late op, an undo/redo, or a change of
//! a node's lifetime.
//!
//! A cell's value is the fold, in position order, of the ops in its history that are
//! not undone and fall inside its node's lifetime (`created ≤ pos < removed`). Instead
//! of folding the whole history, the fold starts at the last *reset*: an op after which
//! the cell no longer depends on what came before: the node's creation, an LWW `set`
//! of the cell, a `node.inset` of it (also LWW), or an `object.remove` of exactly that
//! path. Inside one message only the
//! first `set` of a cell wins, so the fold starts at the first reset of the last
//! message that has one. An LWW cell whose newest op is a `set` costs O(1); other
//! cells cost the ops since their last reset.
//!
//! An additive cell (`number.add`, `vector3.add`, …) has no reset, so a fold of its
//! history records *checkpoints* on the way ([`Marks`]: the value after every
//! [`MARK_EVERY`]-th op) and the next recompute starts from the newest checkpoint
//! before the late op instead of the history's start: a late op on a long additive
//! history refolds at most `MARK_EVERY` ops more than the ops after it. Checkpoints
//! are valid only under the undo epoch and node lifetime they were folded under; text
//! paths and the root's cells keep none.
//!
//! `object.remove` of `a.b` acts on `a.b` or, failing that, on `a`: such cells are
//! recomputed together as a *group*, from the node's creation.
//!
//! Invariant: after [`recompute`], each cell equals what the sequential model
//! ([`crate::apply_messages`] on the same set of messages) gives.

use std::cmp::Ordering;

use ahash::AHashSet;

use super::index::{CellIndex, Folded, MARK_EVERY, Marks};
use super::journal::{Journal, OpRef};
use crate::apply::{is_single_cell, object_remove_candidates, step_owned};
use crate::column::Value;
use crate::graph::SceneGraph;
use crate::ids::{KeyId, NodeKey, PathId, Stamp};
use crate::op::OpKind;

/// Expands `path` to every path an `object.remove` in the histories ties it to.
fn group(
    index: &CellIndex,
    journal: &Journal,
    graph: &mut SceneGraph,
    keys: [KeyId; 2],
    path: PathId,
) -> Vec<PathId> {
    let mut out = vec![path];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        i += 1;
        for key in keys {
            if !index.is_linked(key, p) {
                continue;
            }
            for &r in index.history(key, p) {
                if let OpKind::ObjectRemove { field: None } = *journal.kind(r) {
                    let path = journal.rec(r).path(&graph.paths).to_owned();
                    for c in object_remove_candidates(&path) {
                        let id = graph.path_id(c);
                        if !out.contains(&id) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Where a fold over `items` (ops in position order; `op` reads each one's reference)
/// starts, given `last`, the index of its last reset: at the *first* reset of that
/// op's message, since inside one message only the first `set` of a cell wins.
///
/// `None` when an op of that message before its first reset `blocks`: an LWW write that
/// is not a reset (a `string.set` on a text path keeps the text's CRDT), which wins over
/// the reset but depends on what came before. The fold must then start from the
/// beginning (the cell's base).
pub(super) fn fold_start<T>(
    items: &[T],
    last: usize,
    op: impl Fn(&T) -> OpRef,
    is_reset: impl Fn(OpRef) -> bool,
    blocks: impl Fn(OpRef) -> bool,
) -> Option<usize> {
    let msg = op(&items[last]).msg;
    let first_of_msg = items[..last]
        .iter()
        .rposition(|x| op(x).msg != msg)
        .map_or(0, |i| i + 1);
    let first = (first_of_msg..=last)
        .find(|&i| is_reset(op(&items[i])))
        .unwrap_or(last);
    if items[first_of_msg..first].iter().any(|x| blocks(op(x))) {
        return None;
    }
    Some(first)
}

/// What a [`recompute`] cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Refold {
    /// Cells recomputed.
    pub cells: usize,
    /// Ops folded again to recompute them.
    pub ops: usize,
}

/// Recomputes the given cells of the node named `key` (the root for [`KeyId::ROOT`]).
pub fn recompute(
    graph: &mut SceneGraph,
    journal: &Journal,
    index: &mut CellIndex,
    key: KeyId,
    paths: &[PathId],
) -> Refold {
    let node = if key == KeyId::ROOT {
        graph.root
    } else {
        graph.node_of(key)
    };
    let Some(node) = node else {
        // The node does not exist: it has no cells (uncreate cleared them).
        return Refold::default();
    };
    let kid = graph.nodes[node].kid;
    let is_root = graph.root == Some(node);
    let hist_keys = if is_root {
        [kid, KeyId::ROOT]
    } else {
        [kid, kid]
    };
    let mut cost = Refold::default();
    // Cells of a non-root node untied to others: the typed single-cell fold.
    let mut rest = Vec::new();
    for &p in paths {
        let folded = if is_root || index.is_linked(kid, p) {
            None
        } else {
            recompute_cell(graph, journal, index, node, p)
        };
        match folded {
            Some(ops) => {
                cost.cells += 1;
                cost.ops += ops;
            }
            None => rest.push(p),
        }
    }
    let mut done: AHashSet<PathId> = AHashSet::new();
    for &p in &rest {
        if done.contains(&p) {
            continue;
        }
        let g = group(index, journal, graph, hist_keys, p);
        done.extend(g.iter().copied());
        cost.cells += g.len();
        cost.ops += recompute_group(graph, journal, index, node, hist_keys, &g);
    }
    cost
}

/// Recomputes one cell of a non-root node whose history is made of single-cell ops (and
/// the node's creation) from its last reset or checkpoint with the typed [`step`],
/// writing the cell once and leaving checkpoints of the fold behind (so the next late
/// op refolds a bounded suffix). Returns how many ops it folded, or `None`, touching
/// nothing, when the history needs the general path.
fn recompute_cell(
    graph: &mut SceneGraph,
    journal: &Journal,
    index: &mut CellIndex,
    node: NodeKey,
    p: PathId,
) -> Option<usize> {
    let kid = graph.nodes[node].kid;
    let mut marks = Vec::new();
    let folded = fold_cell(
        graph,
        journal,
        index,
        node,
        p,
        index.history(kid, p),
        Some(&mut marks),
    );
    let (value, ops) = folded?;
    match value {
        Some((v, s)) => graph.write(node, p, v, s),
        None => {
            graph.remove_cell(node, p);
        }
    }
    if let Some(&(first, _)) = marks.first()
        && let Some(slot) = index.marks_mut(kid, p)
    {
        let n = &graph.nodes[node];
        let (created, removed, epoch) = (n.created, n.removed, journal.undo_epoch());
        match slot {
            // The marks still valid before the first new one stay.
            Some(m) if m.valid(epoch, created, removed) => {
                m.drop_from(first as usize);
                m.at.append(&mut marks);
            }
            _ => {
                *slot = Some(Box::new(Marks {
                    epoch,
                    created,
                    removed,
                    at: marks,
                }));
            }
        }
    }
    Some(ops)
}

/// The value (`None`: absent) that cell `p` of `node` (not the root) gets from its base
/// and the ops `refs` (a prefix of its history, in position order), folded from the
/// last reset or the newest checkpoint ([`Marks`]) at most `refs.len()` ops in,
/// whichever is later, and how many ops that fold read. `None` when an op needs the
/// general path (see [`recompute_cell`]). With `record`, the value after every [`MARK_EVERY`]-th op the
/// fold passes (from its start on) is pushed there, as new checkpoints.
pub(super) fn fold_cell(
    graph: &SceneGraph,
    journal: &Journal,
    index: &CellIndex,
    node: NodeKey,
    p: PathId,
    refs: &[OpRef],
    mut record: Option<&mut Vec<(u32, Folded)>>,
) -> Option<(Folded, usize)> {
    let n = &graph.nodes[node];
    let (kid, created, removed) = (n.kid, n.created, n.removed);
    let clients = &graph.clients;
    let text_path = index.is_text_path(p);
    let counts = |r: OpRef| {
        let pos = journal.pos(r);
        !journal.is_undone(r)
            && clients.cmp_pos(pos, created) != Ordering::Less
            && removed.is_none_or(|rm| clients.cmp_pos(pos, rm) == Ordering::Less)
    };
    // Only single-cell ops and the creation qualify; the creation and LWW sets reset.
    enum Class {
        Reset,
        Fold,
        Other,
    }
    let class = |r: OpRef| {
        if journal.pos(r) == created {
            return Class::Reset;
        }
        let rec = journal.rec(r);
        match rec.whole() {
            Some(op) => match &op.kind {
                OpKind::NodeInsert(_) => Class::Fold, // no effect on an existing node
                _ if !is_single_cell(op) => Class::Other,
                k if k.resets_cell(text_path) => Class::Reset,
                _ => Class::Fold,
            },
            None if rec.body.resets_cell(text_path) => Class::Reset,
            None => Class::Fold,
        }
    };
    // The newest checkpoint this fold may start from (never on text: its value is the
    // whole CRDT, and whether a `string.set` resets depends on the path's history).
    let mark = if text_path {
        None
    } else {
        index
            .marks(kid, p)
            .and_then(|m| m.best(refs.len(), journal.undo_epoch(), created, removed))
    };
    let floor = mark.map_or(0, |(at, _)| at);
    // The last reset after the checkpoint, then the first reset of its message (only
    // the first `set` of a message wins).
    let mut last_reset = None;
    for (i, &r) in refs.iter().enumerate().skip(floor).rev() {
        if !counts(r) {
            continue;
        }
        match class(r) {
            Class::Reset => {
                last_reset = Some(i);
                break;
            }
            Class::Fold => {}
            Class::Other => return None,
        }
    }
    // An op of that message before the reset that is not foldable here (a
    // `node.inset` writing the cell first, say) needs the general path.
    if let Some(last) = last_reset {
        let msg = refs[last].msg;
        let same_msg = refs[..last].iter().rev().take_while(|r| r.msg == msg);
        if same_msg
            .into_iter()
            .any(|&r| counts(r) && matches!(class(r), Class::Other))
        {
            return None;
        }
    }
    let blocks =
        |r: OpRef| counts(r) && journal.body(r).is_lww() && !matches!(class(r), Class::Reset);
    let last_reset = last_reset.and_then(|last| {
        fold_start(
            refs,
            last,
            |&r| r,
            |r| counts(r) && matches!(class(r), Class::Reset),
            blocks,
        )
    });
    // Without a reset: from the checkpoint, else from the base (every op after the
    // start must be foldable here too).
    let start = last_reset.unwrap_or(floor);
    if last_reset.is_none()
        && refs[start..]
            .iter()
            .any(|&r| counts(r) && matches!(class(r), Class::Other))
    {
        return None;
    }
    let mut cur: Folded = match (last_reset, mark, index.base(kid, p)) {
        (Some(_), _, _) => None,
        (None, Some((_, v)), _) => v.clone(),
        (None, None, Some(Some((v, st)))) => Some((v.to_owned(), st)),
        (None, None, _) => None,
    };
    // The value before op `start` is the cell's after `start` ops unless the fold
    // starts at a reset (the ops before it were skipped).
    let first_mark = start + usize::from(last_reset.is_some());
    if text_path {
        record = None;
    }
    let path = graph.paths.name(p);
    for (j, &r) in refs.iter().enumerate().skip(start) {
        if let Some(out) = record.as_deref_mut()
            && j >= first_mark
            && j > floor
            && j % MARK_EVERY == 0
            && let Ok(at) = u32::try_from(j)
        {
            out.push((at, cur.clone()));
        }
        if !counts(r) {
            continue;
        }
        let pos = journal.pos(r);
        match &*journal.kind(r) {
            OpKind::NodeInsert(spec) | OpKind::NodeUpsert(spec) | OpKind::NodeInset(spec) => {
                // Only the creation is foldable here: it writes the initial value.
                if pos == created
                    && let Some(v) = spec.props.get(path)
                {
                    cur = Some((Value::from_json(v.clone()), Stamp::ZERO));
                }
            }
            kind => {
                step_owned(clients, path, kind, pos.stamp, &mut cur);
            }
        }
    }
    Some((cur, refs.len() - start))
}

fn recompute_group(
    graph: &mut SceneGraph,
    journal: &Journal,
    index: &CellIndex,
    node: NodeKey,
    hist_keys: [KeyId; 2],
    paths: &[PathId],
) -> usize {
    // One cell of a non-root node: its history is already sorted; fold it in place.
    // Otherwise merge the histories involved.
    let merged: Vec<OpRef>;
    let refs: &[OpRef] = match paths {
        [p] if hist_keys[0] == hist_keys[1] => index.history(hist_keys[0], *p),
        _ => {
            let mut v = Vec::new();
            for &p in paths {
                v.extend_from_slice(index.history(hist_keys[0], p));
                if hist_keys[1] != hist_keys[0] {
                    v.extend_from_slice(index.history(hist_keys[1], p));
                }
            }
            let clients = &graph.clients;
            v.sort_by(|&a, &b| clients.cmp_pos(journal.pos(a), journal.pos(b)));
            v.dedup();
            merged = v;
            &merged
        }
    };

    let clients = &graph.clients;
    let (created, removed) = {
        let n = &graph.nodes[node];
        (n.created, n.removed)
    };
    let counts = |r: OpRef| {
        let pos = journal.pos(r);
        !journal.is_undone(r)
            && clients.cmp_pos(pos, created) != Ordering::Less
            && removed.is_none_or(|rm| clients.cmp_pos(pos, rm) == Ordering::Less)
    };
    let single = match paths {
        [p] => Some(graph.paths.name(*p)),
        _ => None,
    };
    let text_path = paths.iter().any(|&p| index.is_text_path(p));
    let op_paths = &graph.paths;
    let is_reset = |r: OpRef| -> bool {
        if journal.pos(r) == created {
            return true;
        }
        let Some(path) = single else {
            return false;
        };
        // Ops whose write to the cell ignores its previous value and sets its stamp:
        // LWW sets, `node.inset` props (LWW) and `object.remove` of exactly this path.
        let rec = journal.rec(r);
        match rec.whole().map(|op| &op.kind) {
            Some(OpKind::NodeInset(spec)) => spec.props.contains_key(path),
            Some(OpKind::ObjectRemove { field: None }) => rec.path(op_paths) == path,
            _ => rec.body.resets_cell(text_path) && rec.path(op_paths) == path,
        }
    };
    // The fold starts at the last reset; inside one message only the first `set` wins,
    // so at that message's first reset.
    let blocks = |r: OpRef| counts(r) && journal.body(r).is_lww() && !is_reset(r);
    let last_reset = refs
        .iter()
        .rposition(|&r| counts(r) && is_reset(r))
        .and_then(|last| fold_start(refs, last, |&r| r, |r| counts(r) && is_reset(r), blocks));
    let start = last_reset.unwrap_or(0);
    let todo: Vec<OpRef> = refs[start..]
        .iter()
        .copied()
        .filter(|&r| counts(r))
        .collect();

    // Without a reset the fold starts from the cell's value at the compaction point (or
    // absent, at the node's creation).
    let kid = graph.nodes[node].kid;
    for &p in paths {
        match (last_reset, index.base(kid, p)) {
            (None, Some(Some((v, st)))) => graph.write(node, p, v.to_owned(), st),
            _ => {
                graph.remove_cell(node, p);
            }
        }
    }
    let filter = |p: PathId| paths.contains(&p);
    for &r in &todo {
        journal
            .rec(r)
            .apply_props(graph, node, journal.pos(r), &filter);
    }
    todo.len()
}

//! The structural log: every node op (insert, upsert, inset, remove, move) in position
//! order, with the [`Effect`]s it had, so a late node op can be placed where its stamp
//! says by undo-do-redo (Kleppmann et al., "A highly-available move operation for
//! replicated trees", 2021): undo every later op's effects, apply the late op, redo
//! the later ops against the new state.
//!
//! Invariants:
//! - `entries` is sorted by position;
//! - replaying `entries` in order with [`apply_op`] (properties off) from an empty
//!   graph gives the current structure, and `entries[i].effects` are exactly the
//!   effects entry *i* had in that replay (empty for undone messages);
//! - hence the hierarchy is always the sequential model's, so `node.move` never
//!   closes a cycle whatever the arrival order.
//!
//! Properties are not touched here: the caller recomputes the cells of every node
//! whose existence, creation or removal position changed ([`Restructured`]).

use std::cmp::Ordering;

use ahash::AHashSet;

use super::journal::{Journal, OpRef};
use crate::apply::{Ctx, Effect, apply_op, undo_effect};
use crate::graph::SceneGraph;
use crate::ids::Pos;
use crate::op::OpKind;

/// One node op and what it did.
#[derive(Clone, Debug)]
pub struct StructEntry {
    /// The op.
    pub r: OpRef,
    /// Its structural effects, in the order they were made.
    pub effects: Vec<Effect>,
}

/// What a replay changed, for the caller to recompute.
#[derive(Debug, Default)]
pub struct Restructured {
    /// Keys of nodes whose cells must be recomputed.
    pub dirty: Vec<String>,
    /// The root key before the replay, when the root changed.
    pub old_root: Option<Option<String>>,
}

/// The structural log.
#[derive(Clone, Debug, Default)]
pub struct Structure {
    pub(super) entries: Vec<StructEntry>,
}

fn liveness(graph: &SceneGraph, key: &str) -> Option<(Pos, Option<Pos>)> {
    graph.node_id(key).map(|id| {
        let n = &graph.nodes[id];
        (n.created, n.removed)
    })
}

fn mentioned(journal: &Journal, r: OpRef, out: &mut Vec<String>) {
    match &*journal.kind(r) {
        OpKind::NodeInsert(s) | OpKind::NodeUpsert(s) | OpKind::NodeInset(s) => {
            out.push(s.key.clone());
            out.extend(s.children.iter().cloned());
        }
        OpKind::NodeRemove { node, .. } => out.push(node.clone()),
        OpKind::NodeMove { node, .. } => out.push(node.clone()),
        _ => {}
    }
}

impl Structure {
    /// Number of logged node ops.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries of messages with `lt ≤ s` (compaction: they can no longer be
    /// undone, since nothing older can arrive). They form a prefix of the log.
    pub fn drop_through(&mut self, s: u64, journal: &Journal) {
        let n = self
            .entries
            .partition_point(|e| journal.stamp(e.r.msg).lt <= s);
        self.entries.drain(..n);
    }

    /// Appends an op applied in order, with its effects.
    pub fn push(&mut self, r: OpRef, effects: Vec<Effect>) {
        self.entries.push(StructEntry { r, effects });
    }

    /// Inserts a late op (not applied yet) at its position; returns its index.
    pub fn insert(&mut self, r: OpRef, journal: &Journal, graph: &SceneGraph) -> usize {
        let pos = journal.pos(r);
        let at = self.first_at_or_after(pos, journal, graph);
        self.entries.insert(
            at,
            StructEntry {
                r,
                effects: Vec::new(),
            },
        );
        at
    }

    /// Index of the first entry at or after `pos`.
    pub fn first_at_or_after(&self, pos: Pos, journal: &Journal, graph: &SceneGraph) -> usize {
        self.entries
            .partition_point(|e| graph.clients.cmp_pos(journal.pos(e.r), pos) == Ordering::Less)
    }

    /// Undoes the effects of entries `from..` (newest first) and replays them in order
    /// against the current graph (undone messages have no effect).
    pub fn replay_from(
        &mut self,
        from: usize,
        graph: &mut SceneGraph,
        journal: &Journal,
    ) -> Restructured {
        let tail = &mut self.entries[from..];
        let mut keys = Vec::new();
        for e in tail.iter() {
            mentioned(journal, e.r, &mut keys);
        }
        keys.sort_unstable();
        keys.dedup();
        let before: Vec<_> = keys.iter().map(|k| liveness(graph, k)).collect();
        let root_before = graph.root().map(|r| r.key().to_owned());

        let mut recreated = AHashSet::new();
        for e in tail.iter_mut().rev() {
            for eff in e.effects.drain(..).rev() {
                if let Effect::Created(n) = eff {
                    recreated.insert(graph.nodes[n].key.to_string());
                }
                undo_effect(graph, eff);
            }
        }
        for e in tail.iter_mut() {
            let head = journal.head(e.r.msg);
            if head.undone {
                continue;
            }
            let ctx = Ctx {
                pos: journal.pos(e.r),
                ts: journal.entry(e.r.msg).ts,
                write_props: false,
            };
            if let Some(op) = journal.rec(e.r).whole() {
                apply_op(graph, op, &ctx, &mut e.effects);
            }
        }

        let mut out = Restructured::default();
        for (k, b) in keys.iter().zip(before) {
            let after = liveness(graph, k);
            if after != b || (after.is_some() && recreated.contains(k.as_str())) {
                out.dirty.push(k.clone());
            }
        }
        let root_after = graph.root().map(|r| r.key().to_owned());
        if root_after != root_before {
            out.old_root = Some(root_before);
        }
        out
    }
}

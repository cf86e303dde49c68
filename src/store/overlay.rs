//! The optimistic layer: the edit buffer applied on top of the replica's graph, with
//! an undo log so that it can be lifted off again before the replica next runs.
//!
//! Invariants:
//! - while applied, the graph equals the replica's state with the buffered ops applied
//!   after it, op `i` at position `(stamp, i)` — exactly what every replica will compute
//!   once the buffer is committed at that stamp (which is newer than everything held);
//! - `log` records, in the order they were made, the previous value of every cell the
//!   buffered ops may have written (taken just before each op) and every structural
//!   [`Effect`]; lifting undoes them in reverse, which restores the replica's graph
//!   exactly (values and stamps), so the replica's own invariants hold whenever it runs.
//!
//! Cost: applying or lifting is O(buffered ops); nothing here is proportional to the
//! size of the scene.

use crate::apply::fold::resolve_text;
use crate::apply::{Ctx, Effect, apply_op, undo_effect};
use crate::column::Value;
use crate::graph::SceneGraph;
use crate::ids::{NodeKey, PathId, Pos, Stamp};
use ahash::AHashMap;

use crate::op::{Op, OpKind, TextEdit, is_root_key};
use crate::replica::touched;

/// One change to undo when lifting.
#[derive(Clone, Debug)]
enum Undo {
    /// A cell as it was before a buffered op (`None`: absent).
    Cell {
        node: NodeKey,
        path: PathId,
        old: Option<(Value, Stamp)>,
    },
    /// A structural change made by buffered op number `.0`.
    Effect(u32, Effect),
}

/// The undo log of the buffered ops currently applied to the graph.
#[derive(Clone, Debug, Default)]
pub(super) struct Overlay {
    log: Vec<Undo>,
    applied: usize,
    // Per applied op, its CRDT form when it is a position-form text op (what the
    // commit sends instead, so every replica integrates the same ids).
    resolved: Vec<Option<Op>>,
    // Per text property (key, path): the next character id this client has not used.
    // Kept across lifts and commits, so ids never repeat, even when an earlier op of
    // this client is undone or did nothing (its ids are then missing from the text).
    text_next: AHashMap<(String, String), u32>,
    // The wall clock every buffered op is applied with (set by the first apply after a
    // lift), so the committed message can carry the same `ts`.
    ts: f64,
}

impl Overlay {
    /// Number of buffered ops currently applied.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// The wall clock the applied ops were applied with.
    pub fn ts(&self) -> f64 {
        self.ts
    }

    /// Applies `ops[self.applied()..]` to `graph`, op `i` at position `(stamp, i)`,
    /// recording how to undo each. The wall clock is `ts` when nothing is applied yet,
    /// else the one the applied ops got.
    pub fn apply(&mut self, graph: &mut SceneGraph, ops: &[Op], stamp: Stamp, ts: f64) {
        if self.applied == 0 {
            self.ts = ts;
        }
        let ts = self.ts;
        let mut effects = Vec::new();
        self.resolved.truncate(self.applied);
        for (i, op) in ops.iter().enumerate().skip(self.applied) {
            let resolved = if op.kind.is_text() {
                self.resolve(graph, op, stamp)
            } else {
                None
            };
            let op = resolved.as_ref().unwrap_or(op);
            self.save_cells(graph, op);
            let ctx = Ctx {
                pos: Pos::new(stamp, i),
                ts,
                write_props: true,
            };
            effects.clear();
            // An op that does nothing (a missing node, a type mismatch) is kept in the
            // buffer: it is sent, and every replica ignores it the same way.
            let _ = apply_op(graph, op, &ctx, &mut effects);
            let k = u32::try_from(i).unwrap_or(u32::MAX);
            self.log
                .extend(effects.drain(..).map(|e| Undo::Effect(k, e)));
            self.resolved.push(resolved);
        }
        self.applied = ops.len();
    }

    /// Replaces each buffered op of `ops` (all applied) by the form it was applied in.
    pub fn take_resolved(&mut self, ops: &mut [Op]) {
        for (op, r) in ops.iter_mut().zip(self.resolved.iter_mut()) {
            if let Some(r) = r.take() {
                *op = r;
            }
        }
    }

    /// Restores the graph to what it was before any buffered op was applied.
    pub fn lift(&mut self, graph: &mut SceneGraph) {
        while let Some(u) = self.log.pop() {
            match u {
                Undo::Effect(_, e) => undo_effect(graph, e),
                Undo::Cell { node, path, old } => {
                    if !graph.nodes.contains_key(node) {
                        continue;
                    }
                    match old {
                        Some((v, s)) => graph.write(node, path, v, s),
                        None => {
                            graph.remove_cell(node, path);
                        }
                    }
                }
            }
        }
        self.applied = 0;
        self.resolved.clear();
    }

    /// The structural effects of each applied op (for a replica adopting the applied
    /// ops as a committed message). The overlay is unchanged.
    pub fn effects(&self) -> Vec<Vec<Effect>> {
        let mut out = vec![Vec::new(); self.applied];
        for u in &self.log {
            if let Undo::Effect(k, e) = u
                && let Some(slot) = out.get_mut(*k as usize)
            {
                slot.push(e.clone());
            }
        }
        out
    }

    /// Forgets the applied ops: they are now part of the graph for good (committed and
    /// adopted by the replica).
    pub fn forget(&mut self) {
        self.log.clear();
        self.applied = 0;
        self.resolved.clear();
    }

    /// Records the current value of every cell `op` may write.
    fn save_cells(&mut self, graph: &mut SceneGraph, op: &Op) {
        let Some((key, paths)) = touched(op) else {
            return;
        };
        let node = if is_root_key(key) {
            graph.root
        } else {
            graph.node_id(key)
        };
        let Some(node) = node else {
            return;
        };
        for p in paths {
            let path = graph.path_id(p);
            let old = graph.cell(node, path).map(|(v, s)| (v.to_owned(), s));
            self.log.push(Undo::Cell { node, path, old });
        }
    }
}

impl Overlay {
    /// The CRDT form a position-form text op will be sent in: resolved against the text
    /// it edits (as this client, at the pending stamp, with ids it never used). `None`
    /// when it is sent as it is.
    fn resolve(&mut self, graph: &SceneGraph, op: &Op, stamp: Stamp) -> Option<Op> {
        let node = if is_root_key(&op.key) {
            graph.root
        } else {
            graph.node_id(&op.key)
        };
        let cur = node
            .filter(|&n| !graph.nodes[n].deleted())
            .and_then(|n| graph.cell(n, graph.paths.get(&op.path)?).map(|(v, _)| v));
        let agent = graph.clients.name(stamp.client);
        let cell = (op.key.clone(), op.path.clone());
        let min_seq = self.text_next.get(&cell).copied().unwrap_or(0);
        let kind = resolve_text(&op.kind, agent, stamp.lt, cur, min_seq)?;
        if let OpKind::TextInsert(TextEdit::Crdt {
            insert: Some(ins), ..
        })
        | OpKind::TextReplace(TextEdit::Crdt {
            insert: Some(ins), ..
        }) = &kind
        {
            let n = u32::try_from(ins.content.chars().count()).unwrap_or(u32::MAX);
            self.text_next.insert(cell, ins.id.seq.saturating_add(n));
        }
        Some(Op {
            key: op.key.clone(),
            path: op.path.clone(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::OpMeta;
    use crate::apply::apply_operation;
    use std::collections::BTreeMap;

    fn base() -> SceneGraph {
        let mut g = SceneGraph::new();
        let meta = OpMeta {
            client: "a",
            lt: 1,
            ts: 1.0,
        };
        let mut props = BTreeMap::new();
        props.insert("hp".to_string(), serde_json::json!(100));
        props.insert("cfg".to_string(), serde_json::json!({"a": {"b": 1}}));
        apply_operation(&mut g, &Op::node_insert("", "root", "Scene"), &meta);
        apply_operation(
            &mut g,
            &Op::node_insert_with("root", "obj", "Mesh", props),
            &meta,
        );
        g
    }

    #[test]
    fn lift_restores_the_graph_exactly() {
        let mut g = base();
        let before = g.to_json();
        let me = g.clients.intern("me");
        let stamp = Stamp { lt: 2, client: me };
        let mut map = serde_json::Map::new();
        map.insert("hp".into(), serde_json::json!(5));
        map.insert("new".into(), serde_json::json!(true));
        let mut ops = vec![
            Op::number_set("obj", "hp", 1.0),
            Op::number_add("obj", "hp", -25.0),
            Op::node_insert("obj", "child", "Mesh"),
            Op::vector3_set("child", "position", [1.0, 2.0, 3.0]),
            Op::object_merge("obj", ".", map),
            Op::new(
                "obj",
                "cfg.a.b",
                crate::op::OpKind::ObjectRemove { field: None },
            ),
            Op::node_move("root", "child", "root"),
            Op::node_remove("root", "obj"),
            Op::string_set("", "title", "scene"),
        ];
        let hp_stamp = {
            let obj = g.node_id("obj").unwrap();
            let hp = g.path_id("hp");
            g.cell(obj, hp).unwrap().1
        };
        // An LWW write gives the cell the overlay's stamp; lifting must take it back.
        ops.push(Op::number_set("obj", "hp", 1.0));
        let mut o = Overlay::default();
        o.apply(&mut g, &ops[..3], stamp, 2.0);
        assert_eq!(o.applied(), 3);
        o.apply(&mut g, &ops, stamp, 2.0);
        assert_eq!(o.applied(), ops.len());
        assert_ne!(g.to_json(), before);
        assert!(g.node("obj").unwrap().deleted());
        o.lift(&mut g);
        assert_eq!(g.to_json(), before);
        assert!(g.node("child").is_none());
        // Stamps are restored too.
        let obj = g.node_id("obj").unwrap();
        let hp = g.path_id("hp");
        assert_eq!(g.cell(obj, hp).unwrap().1, hp_stamp);
        g.dbg_check(true);
    }
}

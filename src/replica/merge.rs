//! The batched merge of in-order messages (newer than everything held).
//!
//! 1. **Structural pass**, in position order: node ops are applied (structure only) and
//!    logged; every op is listed in its cells' histories.
//! 2. **Single-cell ops** (typed property ops: everything but node, meta,
//!    `object.remove` and `object.*` at `.`) whose node is alive at their position are
//!    collected as `(path, row, op)` and stably sorted by `(path, row)`, which keeps
//!    position order inside each cell's *run*.
//! 3. **Run fold**: each run starts at its last reset (the first LWW write of the last
//!    message that writes the cell: a run of `vector3.set` costs one write) and folds
//!    the rest with [`step`], exactly the model's per-op semantics.
//! 4. Cells touched by multi-cell ops (node props, `object.*` at `.`, `object.remove`)
//!    are recomputed from their histories instead ([`super::recompute`]).
//!
//! Invariant: the result equals applying the messages one op at a time (the model);
//! `tests/replica.rs` checks it against [`crate::apply_messages`].

use ahash::AHashSet;

use super::index::touched;
use rayon::prelude::*;

use super::journal::{Journal, OpRef};
use super::{BatchReport, Replica, recompute};
use crate::apply::{Ctx, Step, apply_op, is_single_cell, step};
use crate::column::{PathColumn, Row};
use crate::error::{Warning, WarningKind};
use crate::ids::{ClientTable, KeyId, PathId, Pos};

impl Replica {
    /// Applies journal entries `tail` (in canonical order, all newer than everything
    /// else held) with the batched merge.
    pub(super) fn apply_tail(&mut self, tail: &[u32], report: &mut BatchReport) {
        let mut simple: Vec<Placed> = Vec::new();
        let mut dirty: AHashSet<(KeyId, PathId)> = AHashSet::new();
        let mut warnings: Vec<(OpRef, WarningKind)> = Vec::new();
        let mut effects = Vec::new();

        for &i in tail {
            let (undone, stamp, ts, n) = {
                let (e, h) = (self.journal.entry(i), self.journal.head(i));
                (h.undone, h.stamp, e.msg.ts, e.msg.ops.len())
            };
            for k in 0..n {
                let r = OpRef {
                    msg: i,
                    op: u32::try_from(k).unwrap_or(u32::MAX),
                };
                let op = self.journal.op(r);
                let single = is_single_cell(op);
                let (kid, pid) = self.journal.entry(i).ids[k];
                if single {
                    self.index
                        .insert(kid, pid, r, &self.journal, &self.graph.clients);
                } else if let Some((key, paths)) = touched(op) {
                    let kid = self.graph.keys.intern(key);
                    for p in paths {
                        let pid = self.graph.path_id(p);
                        self.index
                            .insert(kid, pid, r, &self.journal, &self.graph.clients);
                        if !undone {
                            dirty.insert((kid, pid));
                        }
                    }
                }
                let pos = Pos::new(stamp, k);
                if op.kind.is_node() {
                    effects.clear();
                    if !undone {
                        let ctx = Ctx {
                            pos,
                            ts,
                            write_props: false,
                        };
                        if let Some(w) = apply_op(&mut self.graph, op, &ctx, &mut effects) {
                            warnings.push((r, w));
                        }
                    }
                    self.structure.push(r, std::mem::take(&mut effects));
                    continue;
                }
                if undone || !single {
                    continue;
                }
                // The node the op reaches at its position: the structure applied so far
                // is the model's structure at `pos`.
                let node = if kid == KeyId::ROOT {
                    self.graph.root
                } else {
                    self.graph.node_of(kid)
                };
                match node {
                    None => warnings.push((r, WarningKind::MissingNode(op.key.clone()))),
                    Some(n) if self.graph.nodes[n].deleted() => {
                        warnings.push((r, WarningKind::DeletedNode(op.key.clone())));
                    }
                    Some(n) => simple.push((pid, self.graph.nodes[n].row, r)),
                }
            }
        }

        // Cells that multi-cell ops touched are recomputed from history, not folded.
        let mut dirty_rows: AHashSet<(PathId, Row)> = AHashSet::new();
        for &(kid, pid) in &dirty {
            let node = if kid == KeyId::ROOT {
                self.graph.root
            } else {
                self.graph.node_of(kid)
            };
            if let Some(n) = node {
                dirty_rows.insert((pid, self.graph.nodes[n].row));
            }
        }

        // Stable by construction: `simple` is in position order, so sorting on
        // (path, row, index) with the unstable (faster) sort keeps each run in order.
        let mut keyed: Vec<(u64, u32)> = simple
            .iter()
            .enumerate()
            .map(|(i, &(p, row, _))| {
                let key = (u64::from(u32::try_from(p.index()).unwrap_or(u32::MAX)) << 32)
                    | u64::from(row.0);
                (key, u32::try_from(i).unwrap_or(u32::MAX))
            })
            .collect();
        keyed.sort_unstable();
        let simple: Vec<Placed> = keyed.into_iter().map(|(_, i)| simple[i as usize]).collect();
        warnings.extend(self.fold_runs(&simple, &dirty_rows));

        let mut by_key: Vec<(KeyId, PathId)> = dirty.into_iter().collect();
        by_key.sort_unstable();
        let mut i = 0;
        while i < by_key.len() {
            let k = by_key[i].0;
            let paths: Vec<PathId> = by_key[i..]
                .iter()
                .take_while(|x| x.0 == k)
                .map(|x| x.1)
                .collect();
            i += paths.len();
            report.recomputed_cells +=
                recompute::recompute(&mut self.graph, &self.journal, &self.index, k, &paths);
        }

        let clients = &self.graph.clients;
        let journal = &self.journal;
        warnings.sort_by(|a, b| clients.cmp_pos(journal.pos(a.0), journal.pos(b.0)));
        report
            .warnings
            .extend(warnings.into_iter().map(|(r, reason)| Warning {
                msg_id: journal.entry(r.msg).msg.id.clone(),
                op_index: r.op as usize,
                reason,
            }));
    }

    /// Folds every run of `simple` (sorted by `(path, row)`) whose cell is not in `skip`,
    /// one rayon task per column. Returns the warnings.
    fn fold_runs(
        &mut self,
        simple: &[(PathId, Row, OpRef)],
        skip: &AHashSet<(PathId, Row)>,
    ) -> Vec<(OpRef, WarningKind)> {
        // Split `simple` into per-column slices.
        let mut per_col: Vec<(PathId, &[Placed])> = Vec::new();
        let mut i = 0;
        while i < simple.len() {
            let pid = simple[i].0;
            let n = simple[i..].iter().take_while(|x| x.0 == pid).count();
            per_col.push((pid, &simple[i..i + n]));
            i += n;
        }
        let Some(&(last, _)) = per_col.last() else {
            return Vec::new();
        };
        let journal = &self.journal;
        let graph = &mut self.graph;
        let (clients, paths) = (&graph.clients, &graph.paths);
        let columns = graph.props.columns_mut(last.index() + 1);
        // Pair each touched column with its ops (both in path order).
        let mut work: Vec<(&mut PathColumn, &str, &[Placed])> = Vec::new();
        let mut next = per_col.into_iter().peekable();
        for (idx, col) in columns.iter_mut().enumerate() {
            if let Some(&(pid, ops)) = next.peek()
                && pid.index() == idx
            {
                work.push((col, paths.name(pid), ops));
                next.next();
            }
        }
        let fold_column = |(col, path, ops): (&mut PathColumn, &str, &[Placed])| {
            let mut warnings = Vec::new();
            let mut i = 0;
            while i < ops.len() {
                let (pid, row, _) = ops[i];
                let n = ops[i..].iter().take_while(|x| x.1 == row).count();
                if !skip.contains(&(pid, row)) {
                    fold_run(
                        col,
                        row,
                        path,
                        &ops[i..i + n],
                        journal,
                        clients,
                        &mut warnings,
                    );
                }
                i += n;
            }
            warnings
        };
        if simple.len() >= PARALLEL_MIN_OPS && work.len() > 1 {
            work.into_par_iter().map(fold_column).flatten().collect()
        } else {
            work.into_iter().flat_map(fold_column).collect()
        }
    }
}

/// A single-cell op placed in its cell: `(path, row, op)`.
type Placed = (PathId, Row, OpRef);

/// Below this many single-cell ops a batch is folded on the calling thread.
const PARALLEL_MIN_OPS: usize = 4_096;

/// Folds one cell's run of single-cell ops (position order) into the cell.
fn fold_run(
    col: &mut PathColumn,
    row: Row,
    path: &str,
    run: &[Placed],
    journal: &Journal,
    clients: &ClientTable,
    warnings: &mut Vec<(OpRef, WarningKind)>,
) {
    // Start at the first LWW write of the last message that has one: everything before
    // it is overwritten (in order, that write always beats the cell's stamp).
    let is_reset = |r: OpRef| journal.op(r).kind.is_lww();
    let from = match run.iter().rposition(|x| is_reset(x.2)) {
        None => 0,
        Some(last) => recompute::fold_start(run, last, |x| x.2, is_reset),
    };
    let mut cur = col.get(row).map(|(v, s)| (v.to_owned(), s));
    let mut changed = false;
    for &(_, _, r) in &run[from..] {
        let stamp = journal.stamp(r.msg);
        match step(
            clients,
            path,
            &journal.op(r).kind,
            stamp,
            cur.as_ref().map(|(v, s)| (v.as_ref(), *s)),
        ) {
            Step::Skip => {}
            Step::Write(v, s) => {
                cur = Some((v, s));
                changed = true;
            }
            Step::Keep(w) => warnings.push((r, w)),
        }
    }
    if changed && let Some((v, s)) = cur {
        col.set(row, v, s);
    }
}

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

use super::index::touched;
use rayon::prelude::*;

use std::collections::BTreeMap;

use super::journal::{Entry, Journal, OpRef};
use super::record::Rec;
use super::{BatchReport, IdSet, Replica, recompute};
use crate::apply::{
    Ctx, Effect, Stepped, apply_op, is_single_cell, node_for, set_cell, set_lww, step_owned,
};
use crate::column::{PathColumn, Row};
use crate::error::{Warning, WarningKind};
use crate::ids::{ClientTable, KeyId, PathId, Pos, Stamp};
use crate::op::{Message, Op, is_root_key};
use crate::wire::fast::MessageView;

impl Replica {
    /// Journals `msg` whose ops the caller already applied to this replica's graph, in
    /// order, exactly as [`crate::apply::apply_op`] does: op `i` at position
    /// `(stamp, i)` with the message's `ts`, its structural effects in `effects[i]`
    /// (the store's optimistic overlay, when it commits). The graph is left as it is:
    /// by the merge invariant it already equals what applying `msg` would give.
    ///
    /// Only for a message newer than everything held, with a fresh id and stamp, no
    /// meta ops and no undo/redo aimed at it; otherwise nothing changes and it is
    /// handed back.
    pub(crate) fn adopt_applied(
        &mut self,
        msg: Message,
        effects: Vec<Vec<Effect>>,
    ) -> Result<(), Message> {
        if effects.len() != msg.ops.len() {
            return Err(msg);
        }
        let (i, _) = self.journal_in_order(msg)?;
        for (k, effects) in effects.into_iter().enumerate() {
            let r = OpRef {
                msg: i,
                op: u32::try_from(k).unwrap_or(u32::MAX),
            };
            self.index_op(r, |_, _| {});
            if self.journal.body(r).is_node() {
                self.structure.push(r, effects);
            }
        }
        Ok(())
    }

    /// The fast path for one message newer than everything held (a client store's
    /// receive, or a server fed message by message): journaled, then applied op by op
    /// exactly as the model does ([`apply_op`] at `(stamp, i)`), then indexed. No sort,
    /// no run building. By the merge invariant the result is the batched merge's.
    ///
    /// Hands the message back (nothing changed) unless it is in order, of a fresh id,
    /// stamp and client counter, not aimed at by a seen undo/redo, and free of meta ops;
    /// the caller then takes the general path.
    pub(super) fn try_apply_single(
        &mut self,
        msg: Message,
        report: &mut BatchReport,
    ) -> Result<(), Message> {
        let ts = msg.ts;
        let (i, stamp) = self.journal_in_order(msg)?;
        self.apply_entry(i, stamp, ts, report);
        Ok(())
    }

    /// [`Replica::try_apply_single`] of a message read in place by the fast reader:
    /// its records are built straight from the view (no [`Message`], no `String` per
    /// op). False, with nothing changed, when the message needs the general path.
    pub(super) fn try_apply_view(&mut self, v: &MessageView<'_>, report: &mut BatchReport) -> bool {
        let stamp = Stamp {
            lt: v.lt,
            client: self.graph.clients.intern(v.client),
        };
        // A view's integers are within the wire's bound and its ops carry no meta op.
        if !self.fresh_in_order(stamp, v.id, v.own_seq()) {
            return false;
        }
        let mut others = BTreeMap::new();
        for &(name, n) in &v.clock {
            if name != v.client {
                let id = self.graph.clients.intern(name);
                self.journal.know_client(id, v.lt);
                others.insert(name.to_owned(), n);
            }
        }
        // A message names few paths: remember them instead of hashing each again.
        let mut seen: Vec<(&str, PathId)> = Vec::with_capacity(4);
        let ops = v
            .ops
            .iter()
            .map(|o| {
                let kid = if is_root_key(o.key) {
                    KeyId::ROOT
                } else {
                    self.graph.keys.intern(o.key)
                };
                let pid = match seen.iter().find(|(p, _)| *p == o.path) {
                    Some(&(_, pid)) => pid,
                    None => {
                        let pid = self.graph.path_id(o.path);
                        if seen.len() < 4 {
                            seen.push((o.path, pid));
                        }
                        pid
                    }
                };
                let ids = (kid, pid);
                if o.key == "." {
                    // The root alias is journaled whole (see `record.rs`).
                    Rec::new(Op::new(o.key, o.path, o.body.kind().clone()), ids)
                } else {
                    Rec {
                        ids,
                        body: o.body.clone(),
                    }
                }
            })
            .collect();
        let entry = Entry {
            id: v.id.into(),
            lt: v.lt,
            ts: v.ts,
            seq: v.own_seq(),
            others: (!others.is_empty()).then(|| Box::new(others)),
            ops,
        };
        let i = self.journal.push_entry(entry, stamp);
        self.frontier = Some(stamp);
        self.apply_entry(i, stamp, v.ts, report);
        true
    }

    /// Applies the freshly journaled in-order entry `i` op by op, as the model does,
    /// and indexes it.
    pub(super) fn apply_entry(&mut self, i: u32, stamp: Stamp, ts: f64, report: &mut BatchReport) {
        report.accepted += 1;
        let n = self.journal.entry(i).len();
        let mut effects = Vec::new();
        for k in 0..n {
            let r = OpRef {
                msg: i,
                op: u32::try_from(k).unwrap_or(u32::MAX),
            };
            // Multi-cell (`Some(true)`), whole single-cell (`Some(false)`) or inline.
            let whole = self.journal.rec(r).whole().map(|op| !is_single_cell(op));
            let warning = match whole {
                Some(true) => {
                    self.index_op(r, |_, _| {});
                    let Some(op) = self.journal.rec(r).whole() else {
                        continue;
                    };
                    let ctx = Ctx {
                        pos: Pos::new(stamp, k),
                        ts,
                        write_props: true,
                    };
                    effects.clear();
                    let w = apply_op(&mut self.graph, op, &ctx, &mut effects);
                    if op.kind.is_node() {
                        self.structure.push(r, std::mem::take(&mut effects));
                    }
                    w
                }
                _ => {
                    let (kid, pid) = self.journal.rec(r).ids;
                    // The entry is the newest held: its ops go last in their histories.
                    // A whole single-cell op (a string, a JSON value) may mark its
                    // cell linked or text, which `insert` records.
                    if whole.is_none() {
                        self.index.push_newest(kid, pid, r);
                    } else {
                        self.index
                            .insert(kid, pid, r, &self.journal, &self.graph.clients);
                    }
                    let rec = self.journal.rec(r);
                    match node_for(&self.graph, kid, rec.key(&self.graph.keys)) {
                        Err(w) => Some(w),
                        Ok(n) => match rec.lww_value() {
                            Some(v) => {
                                set_lww(&mut self.graph, n, pid, v, stamp);
                                None
                            }
                            None => set_cell(&mut self.graph, n, pid, &rec.kind(), stamp),
                        },
                    }
                }
            };
            if let Some(reason) = warning {
                report.warnings.push(Warning {
                    msg_id: self.journal.entry(i).id.to_string(),
                    op_index: k,
                    reason,
                });
            }
        }
    }

    /// True when a message of this stamp, id and own counter is newer than everything
    /// held, of a fresh id, stamp and counter, above the compacted base and not aimed
    /// at by a seen undo/redo: what the in-order fast paths take.
    pub(super) fn fresh_in_order(&self, stamp: Stamp, id: &str, seq: Option<u64>) -> bool {
        let clients = &self.graph.clients;
        let newer = self
            .frontier
            .is_none_or(|f| clients.cmp_stamps(stamp, f) == std::cmp::Ordering::Greater);
        newer
            && seq.is_none_or(|seq| !self.journal.seen_seq(stamp.client, seq))
            && self.compacted_through.is_none_or(|c| stamp.lt > c)
            && !self.journal.contains(id)
            && !self.journal.has_meta(id)
            && self.journal.id_at(stamp).is_none()
    }

    /// Journals `msg` when [`Replica::fresh_in_order`] says so and it keeps the wire's
    /// integer bound and has no meta ops (the fast paths above); hands it back
    /// otherwise, with nothing changed. Returns its journal slot and stamp; the
    /// frontier moves to it.
    fn journal_in_order(&mut self, msg: Message) -> Result<(u32, Stamp), Message> {
        let stamp = Stamp {
            lt: msg.lt,
            client: self.graph.clients.intern(&msg.client),
        };
        if !self.fresh_in_order(stamp, &msg.id, msg.clock.get(&msg.client).copied())
            || super::beyond_bound(&msg).is_some()
            || msg.ops.iter().any(|op| op.kind.is_meta())
        {
            return Err(msg);
        }
        for name in msg.clock.keys() {
            if name != &msg.client {
                let id = self.graph.clients.intern(name);
                self.journal.know_client(id, msg.lt);
            }
        }
        let ids = msg.ops.iter().map(|op| self.op_ids(op)).collect();
        let i = self.journal.push(msg, stamp, ids);
        self.frontier = Some(stamp);
        Ok((i, stamp))
    }

    /// Lists op `r` in the histories of the cells it touches; `multi` sees each cell of
    /// a multi-cell op (node props, `object.*` at `.`, `object.remove`).
    fn index_op(&mut self, r: OpRef, mut multi: impl FnMut(KeyId, PathId)) {
        let (cells, many) = self.cells_of_op(r);
        for (kid, pid) in cells {
            self.index
                .insert(kid, pid, r, &self.journal, &self.graph.clients);
            if many {
                multi(kid, pid);
            }
        }
    }

    /// The cells op `r` may touch, and whether it is a multi-cell op. A single-cell op
    /// (the common case) costs no allocation.
    pub(super) fn cells_of_op(&mut self, r: OpRef) -> (OpCells, bool) {
        let rec = self.journal.rec(r);
        match rec.whole() {
            Some(op) if !is_single_cell(op) => {
                let mut v = Vec::new();
                if let Some((key, paths)) = touched(op) {
                    let kid = self.graph.keys.intern(key);
                    for p in paths {
                        v.push((kid, self.graph.path_id(p)));
                    }
                }
                (None.into_iter().chain(v), true)
            }
            _ => (Some(rec.ids).into_iter().chain(Vec::new()), false),
        }
    }

    /// Applies journal entries `tail` (in canonical order, all newer than everything
    /// else held) with the batched merge.
    pub(super) fn apply_tail(&mut self, tail: &[u32], report: &mut BatchReport) {
        let mut simple: Vec<Placed> = Vec::new();
        let mut dirty: IdSet<(KeyId, PathId)> = IdSet::default();
        let mut warnings: Vec<(OpRef, WarningKind)> = Vec::new();
        let mut effects = Vec::new();

        for &i in tail {
            let (undone, stamp, ts, n) = {
                let (e, h) = (self.journal.entry(i), self.journal.head(i));
                (h.undone, h.stamp, e.ts, e.len())
            };
            for k in 0..n {
                let r = OpRef {
                    msg: i,
                    op: u32::try_from(k).unwrap_or(u32::MAX),
                };
                self.index_op(r, |kid, pid| {
                    if !undone {
                        dirty.insert((kid, pid));
                    }
                });
                let rec = self.journal.rec(r);
                let (kid, pid) = rec.ids;
                let pos = Pos::new(stamp, k);
                if let Some(op) = rec.whole() {
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
                    if !is_single_cell(op) {
                        continue;
                    }
                }
                if undone {
                    continue;
                }
                // The node the op reaches at its position: the structure applied so far
                // is the model's structure at `pos`.
                match node_for(&self.graph, kid, rec.key(&self.graph.keys)) {
                    Err(w) => warnings.push((r, w)),
                    Ok(n) => simple.push((pid, self.graph.nodes[n].row, r)),
                }
            }
        }

        // Cells that multi-cell ops touched are recomputed from history, not folded.
        let mut dirty_rows: IdSet<(PathId, Row)> = IdSet::default();
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
            let cost =
                recompute::recompute(&mut self.graph, &self.journal, &mut self.index, k, &paths);
            report.recomputed_cells += cost.cells;
            report.refolded_ops += cost.ops;
        }

        let clients = &self.graph.clients;
        let journal = &self.journal;
        warnings.sort_by(|a, b| clients.cmp_pos(journal.pos(a.0), journal.pos(b.0)));
        report
            .warnings
            .extend(warnings.into_iter().map(|(r, reason)| Warning {
                msg_id: journal.entry(r.msg).id.to_string(),
                op_index: r.op as usize,
                reason,
            }));
    }

    /// Folds every run of `simple` (sorted by `(path, row)`) whose cell is not in `skip`,
    /// one rayon task per column. Returns the warnings.
    fn fold_runs(
        &mut self,
        simple: &[(PathId, Row, OpRef)],
        skip: &IdSet<(PathId, Row)>,
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
        let index = &self.index;
        let mut work: Vec<Work<'_>> = Vec::new();
        let mut next = per_col.into_iter().peekable();
        for (idx, col) in columns.iter_mut().enumerate() {
            if let Some(&(pid, ops)) = next.peek()
                && pid.index() == idx
            {
                work.push((col, paths.name(pid), index.is_text_path(pid), ops));
                next.next();
            }
        }
        let fold_column = |(col, path, text_path, ops): Work<'_>| {
            let mut warnings = Vec::new();
            let mut i = 0;
            while i < ops.len() {
                let (pid, row, _) = ops[i];
                let n = ops[i..].iter().take_while(|x| x.1 == row).count();
                if !skip.contains(&(pid, row)) {
                    fold_run(
                        col,
                        row,
                        Column { path, text_path },
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

/// The cells of one op ([`Replica::cells_of_op`]): one inline, or a list.
pub(super) type OpCells =
    std::iter::Chain<std::option::IntoIter<(KeyId, PathId)>, std::vec::IntoIter<(KeyId, PathId)>>;

/// A single-cell op placed in its cell: `(path, row, op)`.
type Placed = (PathId, Row, OpRef);

/// The path of a column, and whether a text op ever targeted it.
#[derive(Clone, Copy)]
struct Column<'a> {
    path: &'a str,
    text_path: bool,
}

/// One column's share of a batch: the column, its path, whether it holds text, its runs.
type Work<'a> = (&'a mut PathColumn, &'a str, bool, &'a [Placed]);

/// Below this many single-cell ops a batch is folded on the calling thread.
const PARALLEL_MIN_OPS: usize = 4_096;

/// Folds one cell's run of single-cell ops (position order) into the cell.
fn fold_run(
    col: &mut PathColumn,
    row: Row,
    Column { path, text_path }: Column<'_>,
    run: &[Placed],
    journal: &Journal,
    clients: &ClientTable,
    warnings: &mut Vec<(OpRef, WarningKind)>,
) {
    // Start at the first LWW write of the last message that has one: everything before
    // it is overwritten (in order, that write always beats the cell's stamp).
    let is_reset = |r: OpRef| journal.body(r).resets_cell(text_path);
    let blocks = |r: OpRef| journal.body(r).is_lww() && !is_reset(r);
    let from = run
        .iter()
        .rposition(|x| is_reset(x.2))
        .and_then(|last| recompute::fold_start(run, last, |x| x.2, is_reset, blocks))
        .unwrap_or(0);
    // A text cell is edited in place: take it out instead of copying it.
    let texts = run[from..].iter().any(|x| journal.body(x.2).is_text());
    let mut cur = if texts {
        col.take(row)
    } else {
        col.get(row).map(|(v, s)| (v.to_owned(), s))
    };
    let mut changed = texts;
    for &(_, _, r) in &run[from..] {
        let stamp = journal.stamp(r.msg);
        match step_owned(clients, path, &journal.kind(r), stamp, &mut cur) {
            Stepped::Unchanged => {}
            Stepped::Changed => changed = true,
            Stepped::Kept(w) => warnings.push((r, w)),
        }
    }
    if changed && let Some((v, s)) = cur {
        col.set(row, v, s);
    }
}

//! Compaction: folding the stable prefix of the journal into the base.
//!
//! A message is *stable* when no message ordered before it can still arrive. Each
//! client numbers its messages in its own `clock` entry (`clock[client]` = 1, 2, …);
//! once messages `1..=n` of a client have arrived, every later message of that client
//! has a greater Lamport time than message `n` (a client's clock only grows). So with
//! `S` = the least such Lamport time over the clients heard from recently, every
//! message with `lt ≤ S` is stable ([`super::journal::Journal::stable_lt`]).
//!
//! Compacting through `S`:
//! 1. every cell that stable ops touch gets a *base*: its value at `S`, computed by
//!    recomputing it from its history cut at `S` (then it is recomputed again with the
//!    rest of its history, which leaves the state unchanged);
//! 2. the stable ops leave the cell histories, the stable node ops leave the structural
//!    log, and the stable messages leave the journal (their slots are reused).
//!
//! After compaction, recompute starts from a cell's base when its remaining history
//! has no reset, so every later late message still lands where its stamp says.
//!
//! What it costs: clients silent for more than the *horizon* (in Lamport ticks behind
//! the newest message) are evicted and no longer hold `S` back. A message of theirs
//! that arrives later with `lt ≤ S` (older than the compacted base) cannot be placed
//! any more and is rejected with [`crate::error::RejectError::Compacted`]; its client
//! must resync (take the current state and send its edits again as new messages).
//! Copies of compacted messages are recognised by their `clock` counter and dropped as
//! duplicates. `meta.undo`/`meta.redo` of a compacted message do nothing.

use super::journal::OpRef;
use super::{Replica, recompute};
use crate::ids::{KeyId, PathId};

/// What one [`Replica::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The Lamport time compacted through (`None`: nothing was stable).
    pub through: Option<u64>,
    /// Messages folded into the base and dropped from the journal.
    pub messages: usize,
    /// Cells whose history was cut.
    pub cells: usize,
}

impl Replica {
    /// Folds every stable message into the base (see the module doc). Cheap when
    /// nothing new is stable; call it after batches, or every few batches.
    pub fn compact(&mut self) -> CompactReport {
        self.compact_through(u64::MAX)
    }

    /// [`Replica::compact`], folding nothing newer than Lamport time `limit` (a client
    /// store keeps its unacknowledged messages out of the base this way).
    pub fn compact_through(&mut self, limit: u64) -> CompactReport {
        let mut report = CompactReport::default();
        let Some(frontier) = self.frontier else {
            return report;
        };
        let Some(s) = self.journal.stable_lt(frontier.lt, self.horizon) else {
            return report;
        };
        let s = s.min(limit);
        if s == 0 {
            return report;
        }
        if self.compacted_through.is_some_and(|c| s <= c) {
            return report;
        }
        let stable: Vec<u32> = self
            .journal
            .live()
            .filter(|&i| self.journal.stamp(i).lt <= s)
            .collect();
        report.through = Some(s);
        self.compacted_through = Some(s);
        if stable.is_empty() {
            return report;
        }

        // 1. Cells the stable ops touch (sorted, once each), grouped by the node they
        //    belong to (ROOT-listed cells belong to the root).
        let mut cells: Vec<(KeyId, PathId)> = Vec::new();
        for &i in &stable {
            cells.extend(self.cells_of(i).into_iter().map(|(k, p, _)| (k, p)));
        }
        cells.sort_unstable();
        cells.dedup();
        let root_kid = self.graph.root.map(|r| self.graph.nodes[r].kid);
        let mut owned: Vec<(KeyId, PathId)> = cells
            .iter()
            .filter_map(|&(k, p)| {
                let real = if k == KeyId::ROOT { root_kid? } else { k };
                self.graph.node_of(real).map(|_| (real, p))
            })
            .collect();
        owned.sort_unstable();
        owned.dedup();
        let mut by_node: Vec<(KeyId, Vec<PathId>)> = Vec::new();
        for (k, p) in owned {
            match by_node.last_mut() {
                Some((last, paths)) if *last == k => paths.push(p),
                _ => by_node.push((k, vec![p])),
            }
        }
        // `object.remove` ties cells of a node together: take the whole node then.
        for (kid, paths) in &mut by_node {
            if paths
                .iter()
                .any(|&p| self.index.is_linked(*kid, p) || self.index.is_linked(KeyId::ROOT, p))
            {
                paths.extend(self.index.paths(*kid));
                paths.sort_unstable();
                paths.dedup();
            }
        }

        // 2. Bases: a cell's value at S. A foldable history (single-cell ops) folds its
        //    stable prefix without touching the graph; otherwise recompute the node's
        //    cells with histories cut at S, read them off, put the rest of the
        //    histories back and recompute again.
        let is_stable = |journal: &super::journal::Journal, r: OpRef| journal.stamp(r.msg).lt <= s;
        for (kid, paths) in &by_node {
            let kid = *kid;
            // Cells with a foldable history: fold the stable prefix, nothing to undo.
            if Some(kid) != root_kid
                && !paths.iter().any(|&p| self.index.is_linked(kid, p))
                && let Some(node) = self.graph.node_of(kid)
            {
                let bases: Option<Vec<_>> = paths
                    .iter()
                    .map(|&p| {
                        let h = self.index.history(kid, p);
                        let cut = h.partition_point(|&r| is_stable(&self.journal, r));
                        let base = recompute::fold_cell(
                            &self.graph,
                            &self.journal,
                            &self.index,
                            node,
                            p,
                            &h[..cut],
                            None,
                        )?
                        .0;
                        Some((p, base))
                    })
                    .collect();
                if let Some(bases) = bases {
                    for (p, base) in bases {
                        self.index.set_base(kid, p, base);
                    }
                    continue;
                }
            }
            let mut hist_keys = vec![kid];
            if Some(kid) == root_kid {
                hist_keys.push(KeyId::ROOT);
            }
            let mut saved = Vec::new();
            for &p in paths {
                for &hk in &hist_keys {
                    let h = self.index.take(hk, p);
                    let cut = h.partition_point(|&r| is_stable(&self.journal, r));
                    self.index.put(hk, p, h[..cut].to_vec());
                    saved.push((hk, p, h[cut..].to_vec()));
                }
            }
            recompute::recompute(&mut self.graph, &self.journal, &mut self.index, kid, paths);
            let Some(node) = self.graph.node_of(kid) else {
                continue;
            };
            for &p in paths {
                let base = self.graph.cell(node, p).map(|(v, st)| (v.to_owned(), st));
                self.index.set_base(kid, p, base);
            }
            for (hk, p, rest) in saved {
                self.index.put(hk, p, rest);
            }
            recompute::recompute(&mut self.graph, &self.journal, &mut self.index, kid, paths);
        }

        // 3. Drop the stable ops everywhere, then the messages.
        // Histories are in position order, so the stable ops are a prefix.
        for &(k, p) in &cells {
            let mut h = self.index.take(k, p);
            let cut = h.partition_point(|&r| is_stable(&self.journal, r));
            h.drain(..cut);
            self.index.put_cut(k, p, h);
        }
        report.cells = cells.len();
        self.structure.drop_through(s, &self.journal);
        for &i in &stable {
            self.journal.remove(i);
        }
        report.messages = stable.len();
        report
    }
}

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
//! `S` is lowered below a `meta.undo`/`meta.redo` it would fold while that op's target
//! is journaled after `S` or has not arrived (within the horizon): a client that joins
//! from the base and the journal after it must still see the target's undo state.
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

use super::index::{CellIndex, Folded};
use super::journal::{Journal, OpRef};
use super::{Replica, recompute};
use crate::ids::{KeyId, NodeKey, PathId};

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
        let s = self.meta_floor(s.min(limit), frontier.lt);
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

        // 1. Keys the stable ops touch, each once (a bitmap over key indices, no sort).
        //    Histories are in position order, so a cell's stable ops are a prefix.
        let mut seen: Vec<u64> = Vec::new();
        let mut keys: Vec<KeyId> = Vec::new();
        for &i in &stable {
            for op in 0..self.journal.entry(i).len() {
                let r = OpRef {
                    msg: i,
                    op: u32::try_from(op).unwrap_or(u32::MAX),
                };
                // An inline op touches its own cell; a whole one may touch several.
                if self.journal.rec(r).whole().is_none() {
                    let k = self.journal.rec(r).ids.0;
                    if set_bit(&mut seen, k.index()) {
                        keys.push(k);
                    }
                    continue;
                }
                for (k, _) in self.cells_of_op(r).0 {
                    if set_bit(&mut seen, k.index()) {
                        keys.push(k);
                    }
                }
            }
        }
        let root_kid = self.graph.root.map(|r| self.graph.nodes[r].kid);
        let cut_paths = |index: &CellIndex, journal: &Journal, k: KeyId| -> Vec<PathId> {
            index.cells.get(k.index()).map_or_else(Vec::new, |hs| {
                hs.iter()
                    .filter(|h| {
                        h.refs
                            .first()
                            .is_some_and(|&r| journal.stamp(r.msg).lt <= s)
                    })
                    .map(|h| h.path)
                    .collect()
            })
        };

        // 2. Bases: a cell's value at S. A node's cells with foldable histories fold
        //    their stable prefixes without touching the graph (and lose them at once).
        let mut general: Vec<(KeyId, Vec<PathId>)> = Vec::new();
        let mut root_touched = false;
        for &k in &keys {
            let paths = cut_paths(&self.index, &self.journal, k);
            report.cells += paths.len();
            if k == KeyId::ROOT || Some(k) == root_kid {
                root_touched = true;
                continue;
            }
            let Some(node) = self.graph.node_of(k) else {
                continue; // ops waiting for a node that never came: no cell to keep
            };
            if paths.iter().any(|&p| self.index.is_linked(k, p)) {
                general.push((k, paths));
                continue;
            }
            match self.stable_bases(node, k, &paths, s) {
                Some(bases) => {
                    for (p, base) in bases {
                        self.index.set_base(k, p, base);
                        self.drop_stable(k, p, s);
                    }
                }
                None => general.push((k, paths)),
            }
        }
        // The root (its properties are listed under ROOT and under its own key), and
        // nodes whose cells an `object.remove` ties together or whose histories need
        // the general path.
        if root_touched && let Some(rk) = root_kid {
            let mut paths = cut_paths(&self.index, &self.journal, KeyId::ROOT);
            paths.extend(cut_paths(&self.index, &self.journal, rk));
            general.push((rk, paths));
        }
        for (kid, mut paths) in general {
            if paths
                .iter()
                .any(|&p| self.index.is_linked(kid, p) || self.index.is_linked(KeyId::ROOT, p))
            {
                paths.extend(self.index.paths(kid));
            }
            paths.sort_unstable();
            paths.dedup();
            let mut hist_keys = vec![kid];
            if Some(kid) == root_kid {
                hist_keys.push(KeyId::ROOT);
            }
            self.general_bases(kid, &hist_keys, &paths, s);
        }

        // 3. Drop the stable ops still listed (those of keys without a node), then the
        //    stable node ops and the messages.
        for &k in &keys {
            for p in cut_paths(&self.index, &self.journal, k) {
                self.drop_stable(k, p, s);
            }
        }
        self.structure.drop_through(s, &self.journal);
        for &i in &stable {
            self.journal.remove(i);
        }
        report.messages = stable.len();
        report
    }

    /// `s` lowered below every meta op it would fold whose target is journaled after
    /// `s`, or has not arrived yet and the meta op is within the horizon of the
    /// frontier `newest`: the join point (the base and the journal after it) would lose
    /// that target's undo state, so the meta op's message stays until its target is
    /// stable too. (An undo normally comes after its target; only a clock running
    /// behind, or a target still on its way, puts it before.) A meta op whose target
    /// never comes holds compaction back no longer than the horizon.
    fn meta_floor(&self, mut s: u64, newest: u64) -> u64 {
        loop {
            let lowered = self.journal.meta.iter().fold(s, |s, (target, m)| {
                let lt = m.pos.stamp.lt;
                let hold = lt <= s
                    && match self.journal.slot(target) {
                        Some(t) => self.journal.stamp(t).lt > s,
                        None => lt.saturating_add(self.horizon) >= newest,
                    };
                if hold { lt.saturating_sub(1) } else { s }
            });
            if lowered == s {
                return s;
            }
            s = lowered;
        }
    }

    /// The bases at Lamport time `s` of cells `paths` of `node` (key `kid`, not the
    /// root), folded from their histories' stable prefixes; `None` when one needs the
    /// general path.
    fn stable_bases(
        &self,
        node: NodeKey,
        kid: KeyId,
        paths: &[PathId],
        s: u64,
    ) -> Option<Vec<(PathId, Folded)>> {
        let alive = self.graph.nodes[node].removed.is_none();
        paths
            .iter()
            .map(|&p| {
                let h = self.index.history(kid, p);
                let cut = stable_len(&self.journal, h, s);
                if alive && cut == h.len() && !self.index.is_text_path(p) {
                    // The whole history is stable: the cell's value is its fold, which
                    // is the base (the recompute invariant; checked in debug builds).
                    let now = self.graph.cell(node, p).map(|(v, st)| (v.to_owned(), st));
                    debug_assert!(
                        self.fold(node, p, h).is_none_or(|v| v == now),
                        "a fully stable cell's value is the fold of its history"
                    );
                    return Some((p, now));
                }
                let prefix = &h[..cut];
                if alive && let Some(base) = self.last_set(node, p, prefix) {
                    debug_assert!(
                        self.fold(node, p, prefix).is_some_and(|v| v == base),
                        "a prefix ending in a counted set folds to that set"
                    );
                    return Some((p, base));
                }
                Some((p, self.fold(node, p, prefix)?))
            })
            .collect()
    }

    /// The value of cell `p` of `node` folded from the history `refs` alone (`None`
    /// when the history needs the general path).
    fn fold(&self, node: NodeKey, p: PathId, refs: &[OpRef]) -> Option<Folded> {
        recompute::fold_cell(&self.graph, &self.journal, &self.index, node, p, refs, None)
            .map(|(v, _)| v)
    }

    /// The fold of the history prefix `refs` of cell `p` of the live `node`, read off
    /// its last op when that op is an LWW set that counts (not undone, after the node's
    /// creation, the only op of its message in the prefix, not on a text path): in
    /// position order its stamp beats everything before it, so the cell is its value.
    /// `None` when the prefix needs the fold.
    fn last_set(&self, node: NodeKey, p: PathId, refs: &[OpRef]) -> Option<Folded> {
        let (&last, before) = refs.split_last()?;
        let value = self.journal.rec(last).lww_value()?;
        let same_message = before.last().is_some_and(|r| r.msg == last.msg);
        let created = self.graph.nodes[node].created;
        let pos = self.journal.pos(last);
        let counts = !self.journal.is_undone(last)
            && self.graph.clients.cmp_pos(pos, created) == std::cmp::Ordering::Greater;
        (counts && !same_message && !self.index.is_text_path(p)).then_some(Some((value, pos.stamp)))
    }

    /// The general path to the bases at `s` of node `kid`'s cells `paths` (histories
    /// listed under `hist_keys`): recompute with the histories cut at `s`, read the
    /// cells off as bases, put the rest of the histories back and recompute again
    /// from the bases (which leaves the state as it was).
    fn general_bases(&mut self, kid: KeyId, hist_keys: &[KeyId], paths: &[PathId], s: u64) {
        let mut saved = Vec::new();
        for &p in paths {
            for &hk in hist_keys {
                let mut h = self.index.take(hk, p);
                let rest = h.split_off(stable_len(&self.journal, &h, s));
                self.index.put(hk, p, h);
                saved.push((hk, p, rest));
            }
        }
        recompute::recompute(&mut self.graph, &self.journal, &mut self.index, kid, paths);
        if let Some(node) = self.graph.node_of(kid) {
            for &p in paths {
                let base = self.graph.cell(node, p).map(|(v, st)| (v.to_owned(), st));
                self.index.set_base(kid, p, base);
            }
        }
        for (hk, p, rest) in saved {
            self.index.put_cut(hk, p, rest);
        }
        recompute::recompute(&mut self.graph, &self.journal, &mut self.index, kid, paths);
    }

    /// Drops the stable prefix (`lt ≤ s`) of the history of (`k`, `p`); an emptied
    /// history of a cell with a base goes.
    fn drop_stable(&mut self, k: KeyId, p: PathId, s: u64) {
        let mut h = self.index.take(k, p);
        h.drain(..stable_len(&self.journal, &h, s));
        self.index.put_cut(k, p, h);
    }
}

/// How many ops at the start of `h` (in position order) are stable, `lt ≤ s`.
fn stable_len(journal: &Journal, h: &[OpRef], s: u64) -> usize {
    h.partition_point(|&r| journal.stamp(r.msg).lt <= s)
}

/// Sets bit `i` of `bits` (growing it); true when it was clear.
fn set_bit(bits: &mut Vec<u64>, i: usize) -> bool {
    if i / 64 >= bits.len() {
        bits.resize(i / 64 + 1, 0);
    }
    let (w, b) = (i / 64, 1u64 << (i % 64));
    let was = bits[w] & b != 0;
    bits[w] |= b;
    !was
}

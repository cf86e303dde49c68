//! Per-cell op histories: for every (node key, path), the journaled ops that touch it,
//! in position order. A late op is placed where its stamp says and only the cells it
//! touches are recomputed from their histories ([`super::recompute`]).
//!
//! Invariants:
//! - `cells[k][p]` is sorted by position and holds each [`OpRef`] at most once;
//! - an op is listed under every cell [`touched`] names for it (an `object.remove` under
//!   its path *and* each dotted prefix, since it may act on any of them);
//! - property ops on a root key are listed under [`KeyId::ROOT`], not under a node: the
//!   node they reach is whichever is the root at their position.

use std::cmp::Ordering;

use ahash::AHashSet;

use super::bases::BaseStore;
use super::journal::{Journal, OpRef};
use crate::apply::{is_reserved_prop, object_remove_candidates};
use crate::column::{Value, ValueRef};
use crate::ids::{ClientTable, KeyId, PathId, Stamp};
use crate::op::{Op, OpKind};

/// The node key an op's property effects land on (`""` for the root keys), and the
/// paths they may touch.
pub fn touched(op: &Op) -> Option<(&str, Vec<&str>)> {
    use OpKind::*;
    let target = if crate::op::is_root_key(&op.key) {
        ""
    } else {
        op.key.as_str()
    };
    Some(match &op.kind {
        NodeInsert(s) | NodeUpsert(s) | NodeInset(s) => {
            (s.key.as_str(), s.props.keys().map(String::as_str).collect())
        }
        NodeRemove { .. } | NodeMove { .. } | MetaUndo { .. } | MetaRedo { .. } => return None,
        ObjectMerge(m) | ObjectUpdate(m) if op.path == "." => (
            target,
            m.keys()
                .map(String::as_str)
                .filter(|k| !is_reserved_prop(k))
                .collect(),
        ),
        ObjectRemove { field: None } => (
            op.key.as_str(),
            object_remove_candidates(&op.path).collect(),
        ),
        _ => (op.key.as_str(), vec![op.path.as_str()]),
    })
}

/// Every cell's history.
#[derive(Clone, Debug, Default)]
pub struct CellIndex {
    // cells[k] lists the histories of key k's cells, `(path, refs)`, each path once, in
    // the order the cells were first touched (a node has few paths: a short scan beats
    // hashing the pair).
    pub(super) cells: Vec<Vec<(PathId, Vec<OpRef>)>>,
    // Cells whose history holds an `object.remove` that may act on another cell.
    pub(super) linked: AHashSet<(KeyId, PathId)>,
    // The value (None = absent) of a node's cell at the compaction point, for cells
    // whose history was cut there. Keyed by the node's own key, never ROOT.
    pub(super) bases: BaseStore,
    // Paths that a `text.*` op ever targeted: a `string.set` there keeps the text's CRDT,
    // so it is not a reset (see [`crate::op::OpKind::resets_cell`]).
    pub(super) text_paths: AHashSet<PathId>,
}

impl CellIndex {
    /// The history of (`key`, `path`), created empty when missing.
    fn slot(&mut self, key: KeyId, path: PathId) -> &mut Vec<OpRef> {
        let k = key.index();
        if self.cells.len() <= k {
            self.cells.resize_with(k + 1, Vec::new);
        }
        let cells = &mut self.cells[k];
        let i = match cells.iter().position(|(p, _)| *p == path) {
            Some(i) => i,
            None => {
                cells.push((path, Vec::new()));
                cells.len() - 1
            }
        };
        &mut cells[i].1
    }

    fn find(&self, key: KeyId, path: PathId) -> Option<&Vec<OpRef>> {
        self.cells
            .get(key.index())?
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, h)| h)
    }

    /// Lists `r` in the history of (`key`, `path`), in position order.
    pub fn insert(
        &mut self,
        key: KeyId,
        path: PathId,
        r: OpRef,
        journal: &Journal,
        clients: &ClientTable,
    ) {
        if let Some(op) = journal.rec(r).whole() {
            match op.kind {
                OpKind::ObjectRemove { field: None } => {
                    self.linked.insert((key, path));
                }
                ref k if k.is_text() => {
                    self.text_paths.insert(path);
                }
                _ => {}
            }
        }
        let h = self.slot(key, path);
        let pos = journal.pos(r);
        // Fast path: in-order arrival appends.
        match h.last() {
            None => h.push(r),
            Some(&last) if clients.cmp_pos(journal.pos(last), pos) == Ordering::Less => h.push(r),
            Some(_) => {
                let at =
                    h.partition_point(|&x| clients.cmp_pos(journal.pos(x), pos) == Ordering::Less);
                if h.get(at) != Some(&r) {
                    h.insert(at, r);
                }
            }
        }
    }

    /// Every history: `(key, path, refs)`.
    pub fn histories(&self) -> impl Iterator<Item = (KeyId, PathId, &[OpRef])> + '_ {
        self.cells.iter().enumerate().flat_map(|(k, cells)| {
            let k = KeyId::from_index(u32::try_from(k).unwrap_or(u32::MAX));
            cells.iter().map(move |(p, h)| (k, *p, h.as_slice()))
        })
    }

    /// Sets the history of (`key`, `path`) when it has none yet; false when it had one.
    pub fn restore(&mut self, key: KeyId, path: PathId, refs: Vec<OpRef>) -> bool {
        if self.find(key, path).is_some() {
            return false;
        }
        *self.slot(key, path) = refs;
        true
    }

    /// True when a `text.*` op ever targeted `path` (on any node).
    pub fn is_text_path(&self, path: PathId) -> bool {
        !self.text_paths.is_empty() && self.text_paths.contains(&path)
    }

    /// Marks `path` as holding text (a snapshot's text cell).
    pub fn mark_text_path(&mut self, path: PathId) {
        self.text_paths.insert(path);
    }

    /// The history of one cell (empty when never touched).
    pub fn history(&self, key: KeyId, path: PathId) -> &[OpRef] {
        self.find(key, path).map_or(&[], Vec::as_slice)
    }

    /// True when the cell's history holds an `object.remove` (which may tie it to other
    /// cells of the node).
    pub fn is_linked(&self, key: KeyId, path: PathId) -> bool {
        self.linked.contains(&(key, path))
    }

    /// Every path with a history or a base under `key`.
    pub fn paths(&self, key: KeyId) -> Vec<PathId> {
        let mut out: Vec<PathId> = self
            .cells
            .get(key.index())
            .map(|c| c.iter().map(|(p, _)| *p).collect())
            .unwrap_or_default();
        if !self.bases.is_empty() {
            let n = out.len();
            out.extend(self.bases.paths_of(key));
            if out.len() > n {
                out.sort_unstable();
                out.dedup();
            }
        }
        out
    }

    /// The cell's value at the compaction point: `None` when its history was never cut
    /// (it starts absent at the node's creation), `Some(None)` when it was absent.
    pub fn base(&self, key: KeyId, path: PathId) -> Option<Option<(ValueRef<'_>, Stamp)>> {
        self.bases.get(key, path)
    }

    /// Records the cell's value at the compaction point.
    pub fn set_base(&mut self, key: KeyId, path: PathId, base: Option<(Value, Stamp)>) {
        self.bases.set(key, path, base);
    }

    /// Takes a cell's history out (to be put back with [`CellIndex::put`]).
    pub fn take(&mut self, key: KeyId, path: PathId) -> Vec<OpRef> {
        match self.find(key, path) {
            Some(_) => std::mem::take(self.slot(key, path)),
            None => Vec::new(),
        }
    }

    /// Puts a (sorted) history back.
    pub fn put(&mut self, key: KeyId, path: PathId, h: Vec<OpRef>) {
        if self.find(key, path).is_some() {
            *self.slot(key, path) = h;
        }
    }

    /// Puts a history back after compaction cut it: an emptied one is dropped (the
    /// cell stays listed under its key through its base).
    pub fn put_cut(&mut self, key: KeyId, path: PathId, h: Vec<OpRef>) {
        if !h.is_empty() || self.bases.get(key, path).is_none() {
            self.put(key, path, h);
            return;
        }
        if let Some(cells) = self.cells.get_mut(key.index()) {
            cells.retain(|(p, _)| *p != path);
        }
    }

    /// Number of cells with a base value.
    pub fn bases_len(&self) -> usize {
        self.bases.len()
    }

    /// Total number of listed op references (for memory reports).
    pub fn len(&self) -> usize {
        self.cells.iter().flatten().map(|(_, h)| h.len()).sum()
    }
}

//! Per-cell op histories: for every (node key, path), the journaled ops that touch it,
//! in position order. A late op is placed where its stamp says and only the cells it
//! touches are recomputed from their histories ([`super::recompute`]).
//!
//! Invariants:
//! - `cells[k][p]` is sorted by position and holds each [`OpRef`] at most once;
//! - an op is listed under every cell [`touched`] names for it (an `object.remove` under
//!   its path *and* each dotted prefix, since it may act on any of them);
//! - property ops on a root key are listed under [`KeyId::ROOT`], not under a node: the
//!   node they reach is whichever is the root at their position;
//! - a history's [`Marks`] (checkpoints) hold the cell's value after the first `n` ops
//!   of the history for some `n`: listing an op at index `j` drops every mark past `j`
//!   (their prefix changed), replacing or cutting a history drops them all, and a
//!   mark is used only under the undo epoch and node lifetime it was folded under.

use std::cmp::Ordering;

use ahash::AHashSet;

use super::bases::BaseStore;
use super::journal::{Journal, OpRef};
use crate::apply::{is_reserved_prop, object_remove_candidates};
use crate::column::{Value, ValueRef};
use crate::ids::{ClientTable, KeyId, PathId, Pos, Stamp};
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

/// How many ops of a history lie between two of its marks: a late op refolds at most
/// this many ops more than the ops after its own position.
pub const MARK_EVERY: usize = 32;

/// A cell's folded value with the stamp that wrote it; `None` while unset.
pub type Folded = Option<(Value, Stamp)>;

/// Checkpoints of one cell's fold (see the module doc): the value after the first `n`
/// ops of its history, for increasing `n`, each folded under `epoch` (the journal's
/// undo epoch) with the node living from `created` until `removed`.
#[derive(Clone, Debug)]
pub struct Marks {
    pub(super) epoch: u64,
    pub(super) created: Pos,
    pub(super) removed: Option<Pos>,
    pub(super) at: Vec<(u32, Folded)>,
}

impl Marks {
    /// The newest mark at most `n` ops in, when the marks were folded under `epoch`
    /// and the lifetime `created..removed`.
    pub fn best(
        &self,
        n: usize,
        epoch: u64,
        created: Pos,
        removed: Option<Pos>,
    ) -> Option<(usize, &Folded)> {
        if !self.valid(epoch, created, removed) {
            return None;
        }
        let i = self.at.partition_point(|&(at, _)| at as usize <= n);
        let (at, v) = self.at.get(i.checked_sub(1)?)?;
        Some((*at as usize, v))
    }

    /// True when the marks were folded under undo epoch `epoch` and the lifetime
    /// `created..removed`.
    pub fn valid(&self, epoch: u64, created: Pos, removed: Option<Pos>) -> bool {
        self.epoch == epoch && self.created == created && self.removed == removed
    }

    /// Drops the marks at `n` ops or more (their prefix changed).
    pub fn drop_from(&mut self, n: usize) {
        let keep = self.at.partition_point(|&(at, _)| (at as usize) < n);
        self.at.truncate(keep);
    }
}

/// One cell's history.
#[derive(Clone, Debug)]
pub(super) struct Hist {
    pub(super) path: PathId,
    pub(super) refs: Vec<OpRef>,
    // Only for cells a recompute folded (late ops, undo): most cells never have any.
    pub(super) marks: Option<Box<Marks>>,
}

impl Hist {
    fn new(path: PathId, refs: Vec<OpRef>) -> Hist {
        Hist {
            path,
            refs,
            marks: None,
        }
    }
}

/// Every cell's history.
#[derive(Clone, Debug, Default)]
pub struct CellIndex {
    // cells[k] lists the histories of key k's cells, each path once, in the order the
    // cells were first touched (a node has few paths: a short scan beats hashing the
    // pair).
    pub(super) cells: Vec<Vec<Hist>>,
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
    fn slot(&mut self, key: KeyId, path: PathId) -> &mut Hist {
        let k = key.index();
        if self.cells.len() <= k {
            self.cells.resize_with(k + 1, Vec::new);
        }
        let cells = &mut self.cells[k];
        let i = match cells.iter().position(|h| h.path == path) {
            Some(i) => i,
            None => {
                cells.push(Hist::new(path, Vec::new()));
                cells.len() - 1
            }
        };
        &mut cells[i]
    }

    fn find(&self, key: KeyId, path: PathId) -> Option<&Hist> {
        self.cells.get(key.index())?.iter().find(|h| h.path == path)
    }

    fn find_mut(&mut self, key: KeyId, path: PathId) -> Option<&mut Hist> {
        self.cells
            .get_mut(key.index())?
            .iter_mut()
            .find(|h| h.path == path)
    }

    /// The checkpoints of (`key`, `path`)'s fold, if a recompute left any.
    pub fn marks(&self, key: KeyId, path: PathId) -> Option<&Marks> {
        self.find(key, path)?.marks.as_deref()
    }

    /// The checkpoints of (`key`, `path`)'s fold, to replace or extend (`None` when
    /// the cell has no history).
    pub fn marks_mut(&mut self, key: KeyId, path: PathId) -> Option<&mut Option<Box<Marks>>> {
        Some(&mut self.find_mut(key, path)?.marks)
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
        let hist = self.slot(key, path);
        let h = &mut hist.refs;
        let pos = journal.pos(r);
        // Fast path: in-order arrival appends (every mark stays: their prefixes hold).
        match h.last() {
            None => h.push(r),
            Some(&last) if clients.cmp_pos(journal.pos(last), pos) == Ordering::Less => h.push(r),
            Some(_) => {
                let at =
                    h.partition_point(|&x| clients.cmp_pos(journal.pos(x), pos) == Ordering::Less);
                if h.get(at) != Some(&r) {
                    h.insert(at, r);
                    if let Some(m) = &mut hist.marks {
                        m.drop_from(at + 1);
                    }
                }
            }
        }
    }

    /// Lists `r`, an op with an inline body of the newest message held, in the history
    /// of (`key`, `path`): it goes last, so no position is compared and no mark drops.
    #[inline]
    pub fn push_newest(&mut self, key: KeyId, path: PathId, r: OpRef) {
        self.slot(key, path).refs.push(r);
    }

    /// Every history: `(key, path, refs)`.
    pub fn histories(&self) -> impl Iterator<Item = (KeyId, PathId, &[OpRef])> + '_ {
        self.cells.iter().enumerate().flat_map(|(k, cells)| {
            let k = KeyId::from_index(u32::try_from(k).unwrap_or(u32::MAX));
            cells.iter().map(move |h| (k, h.path, h.refs.as_slice()))
        })
    }

    /// Sets the history of (`key`, `path`) when it has none yet; false when it had one.
    pub fn restore(&mut self, key: KeyId, path: PathId, refs: Vec<OpRef>) -> bool {
        if self.find(key, path).is_some() {
            return false;
        }
        self.slot(key, path).refs = refs;
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
        self.find(key, path).map_or(&[], |h| h.refs.as_slice())
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
            .map(|c| c.iter().map(|h| h.path).collect())
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
        if let Some(m) = self.marks_mut(key, path) {
            *m = None;
        }
        self.bases.set(key, path, base);
    }

    /// Takes a cell's history out (to be put back with [`CellIndex::put`]).
    pub fn take(&mut self, key: KeyId, path: PathId) -> Vec<OpRef> {
        match self.find_mut(key, path) {
            Some(h) => {
                h.marks = None;
                std::mem::take(&mut h.refs)
            }
            None => Vec::new(),
        }
    }

    /// Puts a (sorted) history back.
    pub fn put(&mut self, key: KeyId, path: PathId, refs: Vec<OpRef>) {
        if let Some(h) = self.find_mut(key, path) {
            h.refs = refs;
            h.marks = None;
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
            cells.retain(|h| h.path != path);
        }
    }

    /// Number of cells with a base value.
    pub fn bases_len(&self) -> usize {
        self.bases.len()
    }

    /// Total number of listed op references (for memory reports).
    pub fn len(&self) -> usize {
        self.cells.iter().flatten().map(|h| h.refs.len()).sum()
    }
}

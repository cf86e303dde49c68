//! [`Changes`]: the change feed a renderer reads once per frame instead of the whole
//! scene — per property column, the rows written since the last frame, as a bitmap.
//!
//! The bits are set by the column store and the structural primitives as they write
//! (one OR per write, whatever path the write took: in-order merge, late-message
//! recompute, undo, compaction's rewrites, a [`crate::Writer`] commit), and taken
//! by [`crate::SceneGraph::take_changes`] / [`crate::Replica::take_changes`].
//!
//! Invariant: every cell whose value or stamp differs from what it was at the previous
//! take is in its column's bitmap, and every node whose record changed is in `nodes`
//! (tested against a diff of the whole state in `tests/writer.rs`).

use crate::column::{Row, RowBits};
use crate::ids::PathId;

/// What changed in a scene graph since the previous take (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub(crate) columns: Vec<(PathId, RowBits)>,
    pub(crate) nodes: RowBits,
}

impl Changes {
    /// Per property path that had a write, the rows written, in path order. A path's
    /// name is [`crate::ids::PathTable::name`] of [`crate::SceneGraph::paths`]; a row's
    /// node is [`crate::SceneGraph::key_of_row`], its cell the column's entry at that row.
    pub fn columns(&self) -> &[(PathId, RowBits)] {
        &self.columns
    }

    /// The rows written in one path's column (`None`: nothing written there).
    pub fn column(&self, path: PathId) -> Option<&RowBits> {
        self.columns
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, bits)| bits)
    }

    /// True when `(path, row)` was written.
    pub fn contains(&self, path: PathId, row: Row) -> bool {
        self.column(path).is_some_and(|b| b.contains(row))
    }

    /// Rows whose node was created, removed, tombstoned, revived, renamed, moved, or
    /// gained or lost a child.
    pub fn nodes(&self) -> &RowBits {
        &self.nodes
    }

    /// Number of cells written (over all columns).
    pub fn cells(&self) -> usize {
        self.columns.iter().map(|(_, b)| b.len()).sum()
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.nodes.is_empty()
    }

    /// Adds everything of `other` (a consumer that skipped frames merges their feeds).
    pub fn merge(&mut self, other: &Changes) {
        for (p, bits) in &other.columns {
            match self.columns.iter_mut().find(|(q, _)| q == p) {
                Some((_, mine)) => mine.union(bits),
                None => self.columns.push((*p, bits.clone())),
            }
        }
        self.columns.sort_by_key(|(p, _)| *p);
        self.nodes.union(&other.nodes);
    }
}

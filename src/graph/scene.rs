//! [`SceneGraph`]: nodes in a slotmap arena, their hierarchy, and their property columns.
//!
//! Invariants (checked by [`SceneGraph::dbg_check`]):
//! - `by_kid[node.kid] == Some(id)` and `keys.name(node.kid) == node.key` for every
//!   node, and `by_kid[k] == None` for every other key;
//! - every node has at most one parent: `c ∈ p.children ⇔ c.parent == Some(p)`;
//! - `children` is sorted by `(created_ts, key)` (the reference's order);
//! - the parent links have no cycle;
//! - a tombstoned node has no parent; it keeps its children and properties;
//! - `root` is the live-or-tombstoned node with the smallest creation position;
//! - `rows[node.row] == Some(id)`; a row freed by [`SceneGraph::uncreate`] is `None` and
//!   holds no cell;
//! - `dirty_nodes` holds the row of every node the primitives below created, removed,
//!   tombstoned, revived, renamed, attached or detached (and of every parent that
//!   gained or lost a child) since the last [`SceneGraph::take_changes`].
//!
//! The structural primitives here (`create`, `attach`, `detach`, `tombstone`,
//! `is_ancestor`) enforce these invariants; *when* to call them (idempotent insert,
//! cycle-safe move, …) is decided by [`crate::apply`].

use std::cmp::Ordering;

use slotmap::SlotMap;

use super::Changes;
use crate::column::{PropertyStore, Row, RowBits, Value, ValueRef};
use crate::ids::{ClientTable, KeyId, KeyTable, NodeKey, PathId, PathTable, Pos, Stamp};

/// One node of the scene.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) key: Box<str>,
    pub(crate) kid: KeyId,
    pub(crate) tag: String,
    pub(crate) name: String,
    pub(crate) parent: Option<NodeKey>,
    // Sorted by (created_ts, key).
    pub(crate) children: Vec<NodeKey>,
    // Some(pos of the node.remove that tombstoned it); deleted ⇔ removed.is_some().
    pub(crate) removed: Option<Pos>,
    pub(crate) created_ts: f64,
    // Position of the op that created the node.
    pub(crate) created: Pos,
    pub(crate) row: Row,
}

impl Node {
    /// True for a tombstone.
    pub(crate) fn deleted(&self) -> bool {
        self.removed.is_some()
    }
}

/// A scene graph: nodes, hierarchy and typed property columns.
///
/// Build one with [`crate::create_empty_graph`] and change it with
/// [`crate::apply_operation`], [`crate::apply_message`] or [`crate::apply_messages`].
#[derive(Clone, Debug, Default)]
pub struct SceneGraph {
    pub(crate) nodes: SlotMap<NodeKey, Node>,
    // Every node key ever named (by a node or an op), interned.
    pub(crate) keys: KeyTable,
    // by_kid[kid] == Some(node) for the node with that key.
    pub(crate) by_kid: Vec<Option<NodeKey>>,
    // rows[node.row] == Some(node id); None for a row freed by `uncreate`.
    pub(crate) rows: Vec<Option<NodeKey>>,
    pub(crate) root: Option<NodeKey>,
    pub(crate) paths: PathTable,
    pub(crate) clients: ClientTable,
    pub(crate) props: PropertyStore,
    // Rows of the nodes whose record changed since the change feed last took them (not
    // state: never snapshotted or compared).
    pub(crate) dirty_nodes: RowBits,
}

impl SceneGraph {
    /// An empty graph.
    pub fn new() -> SceneGraph {
        SceneGraph::default()
    }

    /// The arena id of a node key.
    pub fn node_id(&self, key: &str) -> Option<NodeKey> {
        self.node_of(self.keys.get(key)?)
    }

    /// The arena id of the node with an interned key.
    pub(crate) fn node_of(&self, kid: KeyId) -> Option<NodeKey> {
        self.by_kid.get(kid.index()).copied().flatten()
    }

    /// Number of nodes, tombstones included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node was ever created.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The interned client names.
    pub fn clients(&self) -> &ClientTable {
        &self.clients
    }

    /// The interned property paths.
    pub fn paths(&self) -> &PathTable {
        &self.paths
    }

    /// The property columns.
    pub fn properties(&self) -> &PropertyStore {
        &self.props
    }

    // ----- structural primitives (used by `apply`) -----

    /// Creates a parentless node at `pos`. The caller has checked that `key` is new.
    pub(crate) fn create(
        &mut self,
        key: &str,
        tag: String,
        name: String,
        ts: f64,
        pos: Pos,
    ) -> NodeKey {
        let row = Row(u32::try_from(self.rows.len()).unwrap_or(u32::MAX));
        let kid = self.keys.intern(key);
        let id = self.nodes.insert(Node {
            key: key.into(),
            kid,
            tag,
            name,
            parent: None,
            children: Vec::new(),
            removed: None,
            created_ts: ts,
            created: pos,
            row,
        });
        if self.by_kid.len() <= kid.index() {
            self.by_kid.resize(kid.index() + 1, None);
        }
        self.by_kid[kid.index()] = Some(id);
        self.rows.push(Some(id));
        self.dirty_nodes.mark(row);
        let earlier =
            |r: NodeKey| self.clients.cmp_pos(self.nodes[r].created, pos) == Ordering::Less;
        if !self.root.is_some_and(earlier) {
            self.root = Some(id);
        }
        id
    }

    /// Removes a node that has no parent and no children, with all its cells: the
    /// inverse of [`SceneGraph::create`] (used when a late op rewinds the structure).
    pub(crate) fn uncreate(&mut self, node: NodeKey) {
        debug_assert!(self.nodes[node].parent.is_none() && self.nodes[node].children.is_empty());
        let Some(n) = self.nodes.remove(node) else {
            return;
        };
        self.props.clear_row(n.row);
        self.dirty_nodes.mark(n.row);
        if let Some(slot) = self.by_kid.get_mut(n.kid.index()) {
            *slot = None;
        }
        if let Some(slot) = self.rows.get_mut(n.row.index()) {
            *slot = None;
        }
        if self.root == Some(node) {
            self.root = self
                .nodes
                .iter()
                .min_by(|a, b| self.clients.cmp_pos(a.1.created, b.1.created))
                .map(|(k, _)| k);
        }
    }

    fn child_order(&self, a: NodeKey, b: NodeKey) -> Ordering {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        na.created_ts
            .total_cmp(&nb.created_ts)
            .then_with(|| na.key.cmp(&nb.key))
    }

    /// Makes `child` (which must have no parent) a child of `parent`, in sorted position.
    pub(crate) fn attach(&mut self, child: NodeKey, parent: NodeKey) {
        debug_assert!(self.nodes[child].parent.is_none());
        let siblings = &self.nodes[parent].children;
        let pos = siblings
            .binary_search_by(|&s| self.child_order(s, child))
            .unwrap_or_else(|p| p);
        self.nodes[parent].children.insert(pos, child);
        self.nodes[child].parent = Some(parent);
        self.touch(child);
        self.touch(parent);
    }

    /// Detaches `child` from its actual parent, if any.
    pub(crate) fn detach(&mut self, child: NodeKey) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
            self.touch(child);
            self.touch(p);
        }
    }

    /// Marks `node`'s record changed for the change feed (see the module doc).
    pub(crate) fn touch(&mut self, node: NodeKey) {
        if let Some(n) = self.nodes.get(node) {
            self.dirty_nodes.mark(n.row);
        }
    }

    /// What changed since the last call: per column, the rows whose cell was written
    /// or removed, and the rows whose node record (existence, parent, children,
    /// tombstone, tag, name) changed. A renderer calls it once per frame and reads
    /// just those cells. It may over-report (a cell written back to the value it
    /// had), never under-report. A graph made by a snapshot restore starts with nothing
    /// to report: read it whole first.
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            columns: self.props.take_changes(),
            nodes: self.dirty_nodes.take(),
        }
    }

    /// The key of the node at `row` (`None` for a row freed by a rewound creation).
    pub fn key_of_row(&self, row: Row) -> Option<&str> {
        let id = (*self.rows.get(row.index())?)?;
        Some(&self.nodes.get(id)?.key)
    }

    /// The row of a node key: its index in every property column.
    pub fn row_of(&self, key: &str) -> Option<Row> {
        Some(self.nodes.get(self.node_id(key)?)?.row)
    }

    /// True when `ancestor` is `node` or one of its ancestors.
    pub(crate) fn is_ancestor_or_self(&self, ancestor: NodeKey, node: NodeKey) -> bool {
        let mut cur = Some(node);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.nodes[c].parent;
        }
        false
    }

    /// Tombstones `node` at `pos`: detached from its parent, marked deleted, props kept.
    pub(crate) fn tombstone(&mut self, node: NodeKey, pos: Pos) {
        self.detach(node);
        self.nodes[node].removed = Some(pos);
        self.touch(node);
    }

    /// Reverts [`SceneGraph::tombstone`] (the caller re-attaches the parent).
    pub(crate) fn untombstone(&mut self, node: NodeKey) {
        self.nodes[node].removed = None;
        self.touch(node);
    }

    /// Interns a path.
    pub(crate) fn path_id(&mut self, path: &str) -> PathId {
        self.paths.intern(path)
    }

    /// Reads a cell.
    pub(crate) fn cell(&self, node: NodeKey, path: PathId) -> Option<(ValueRef<'_>, Stamp)> {
        self.props.get(path, self.nodes[node].row)
    }

    /// Writes a cell with an explicit stamp.
    pub(crate) fn write(&mut self, node: NodeKey, path: PathId, value: Value, stamp: Stamp) {
        let row = self.nodes[node].row;
        self.props.set(path, row, value, stamp);
    }

    /// Takes a cell out (to be edited in place and written back).
    pub(crate) fn take_cell(&mut self, node: NodeKey, path: PathId) -> Option<(Value, Stamp)> {
        let row = self.nodes[node].row;
        self.props.take(path, row)
    }

    /// Removes a cell.
    pub(crate) fn remove_cell(&mut self, node: NodeKey, path: PathId) -> bool {
        let row = self.nodes[node].row;
        self.props.take(path, row).is_some()
    }

    /// Walks every invariant of the module doc; panics with a description on violation.
    /// `deep` also checks the children order and acyclicity (O(n · depth)).
    pub fn dbg_check(&self, deep: bool) {
        assert_eq!(
            self.by_kid.iter().flatten().count(),
            self.nodes.len(),
            "by_kid size"
        );
        assert_eq!(
            self.rows.iter().flatten().count(),
            self.nodes.len(),
            "rows size"
        );
        if let Some(r) = self.root {
            for (_, n) in &self.nodes {
                assert_ne!(
                    self.clients.cmp_pos(n.created, self.nodes[r].created),
                    Ordering::Less,
                    "{} was created before the root",
                    n.key
                );
            }
        } else {
            assert!(self.nodes.is_empty(), "nodes but no root");
        }
        for (id, n) in &self.nodes {
            assert_eq!(self.node_of(n.kid), Some(id), "by_kid of {}", n.key);
            assert_eq!(self.keys.name(n.kid), &*n.key, "interned key of {}", n.key);
            assert_eq!(
                self.rows.get(n.row.index()),
                Some(&Some(id)),
                "row of {}",
                n.key
            );
            if let Some(p) = n.parent {
                assert!(!n.deleted(), "tombstone {} has a parent", n.key);
                assert!(
                    self.nodes[p].children.contains(&id),
                    "{} not in its parent's children",
                    n.key
                );
            }
            for &c in &n.children {
                assert_eq!(
                    self.nodes[c].parent,
                    Some(id),
                    "child {} of {}",
                    self.nodes[c].key,
                    n.key
                );
            }
            if deep {
                for w in n.children.windows(2) {
                    assert_eq!(
                        self.child_order(w[0], w[1]),
                        Ordering::Less,
                        "children of {} unsorted",
                        n.key
                    );
                }
                let mut steps = 0;
                let mut cur = n.parent;
                while let Some(c) = cur {
                    steps += 1;
                    assert!(steps <= self.nodes.len(), "cycle through {}", n.key);
                    cur = self.nodes[c].parent;
                }
            }
        }
    }
}

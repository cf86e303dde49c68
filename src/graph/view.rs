//! Read access: [`NodeRef`] views and the canonical JSON state.
//!
//! The canonical form is the one of `conformance/README.md`:
//! `{"nodes": {KEY: {"tag", "name", "children", "deleted", "properties"}}, "rootKey"}`
//! with object keys sorted, `children` in hierarchy order and numbers printed by
//! [`crate::op::number`]. Two graphs with the same state print the same bytes.

use serde_json::Map;

use super::scene::{Node, SceneGraph};
use crate::column::ValueRef;
use crate::ids::NodeKey;
use crate::op::Json;

/// A borrowed view of one node.
#[derive(Clone, Copy)]
pub struct NodeRef<'g> {
    graph: &'g SceneGraph,
    id: NodeKey,
    node: &'g Node,
}

impl std::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRef")
            .field("key", &self.key())
            .field("tag", &self.tag())
            .field("deleted", &self.deleted())
            .finish()
    }
}

impl<'g> NodeRef<'g> {
    /// The node's key (its wire identity).
    pub fn key(&self) -> &'g str {
        &self.node.key
    }

    /// The arena id (local to this process).
    pub fn id(&self) -> NodeKey {
        self.id
    }

    /// The node's tag (`""` when none was given).
    pub fn tag(&self) -> &'g str {
        &self.node.tag
    }

    /// The node's name (`""` when none was given).
    pub fn name(&self) -> &'g str {
        &self.node.name
    }

    /// True for a tombstone.
    pub fn deleted(&self) -> bool {
        self.node.deleted()
    }

    /// The `ts` of the message that created the node.
    pub fn created_ts(&self) -> f64 {
        self.node.created_ts
    }

    /// The parent, if any.
    pub fn parent(&self) -> Option<NodeRef<'g>> {
        self.node.parent.map(|p| self.graph.view(p))
    }

    /// The children, in order `(created_ts, key)`.
    pub fn children(&self) -> impl ExactSizeIterator<Item = NodeRef<'g>> + 'g {
        let g = self.graph;
        self.node.children.iter().map(move |&c| g.view(c))
    }

    /// A property, typed by how it was stored (see [`ValueRef`]).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{create_empty_graph, apply_operation, OpMeta, op::Op, column::ValueRef};
    /// let mut g = create_empty_graph();
    /// let meta = OpMeta { client: "a", lt: 1, ts: 0.0 };
    /// apply_operation(&mut g, &Op::node_insert("", "cube", "Mesh"), &meta);
    /// apply_operation(&mut g, &Op::vector3_set("cube", "position", [3.0, 2.0, 1.0]), &meta);
    /// assert_eq!(g.node("cube").unwrap().get("position"), Some(ValueRef::Vec3([3.0, 2.0, 1.0])));
    /// ```
    pub fn get(&self, path: &str) -> Option<ValueRef<'g>> {
        let id = self.graph.paths.get(path)?;
        self.graph.props.get(id, self.node.row).map(|(v, _)| v)
    }

    /// Every property, sorted by path.
    pub fn properties(&self) -> Vec<(&'g str, ValueRef<'g>)> {
        let g = self.graph;
        let mut v: Vec<_> = g
            .props
            .row(self.node.row)
            .map(|(p, val)| (g.paths.name(p), val))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// The node in the canonical JSON form.
    pub fn to_json(&self) -> Json {
        let mut props = Map::new();
        for (p, v) in self.properties() {
            props.insert(p.to_owned(), v.to_json());
        }
        let mut m = Map::new();
        m.insert("tag".into(), Json::String(self.tag().into()));
        m.insert("name".into(), Json::String(self.name().into()));
        m.insert(
            "children".into(),
            Json::Array(
                self.children()
                    .map(|c| Json::String(c.key().into()))
                    .collect(),
            ),
        );
        m.insert("deleted".into(), Json::Bool(self.deleted()));
        m.insert("properties".into(), Json::Object(props));
        Json::Object(m)
    }
}

impl SceneGraph {
    fn view(&self, id: NodeKey) -> NodeRef<'_> {
        NodeRef {
            graph: self,
            id,
            node: &self.nodes[id],
        }
    }

    /// The node with this key (tombstones included; check [`NodeRef::deleted`]).
    pub fn node(&self, key: &str) -> Option<NodeRef<'_>> {
        self.node_id(key).map(|id| self.view(id))
    }

    /// The node with this arena id.
    pub fn node_by_id(&self, id: NodeKey) -> Option<NodeRef<'_>> {
        self.nodes.contains_key(id).then(|| self.view(id))
    }

    /// The root: the first node ever created.
    pub fn root(&self) -> Option<NodeRef<'_>> {
        self.root.map(|r| self.view(r))
    }

    /// Every node (tombstones included), in creation order.
    pub fn iter(&self) -> impl Iterator<Item = NodeRef<'_>> + '_ {
        self.rows.iter().flatten().map(|&id| self.view(id))
    }

    /// The canonical state as a JSON value.
    pub fn to_json_value(&self) -> Json {
        let mut nodes = Map::new();
        for n in self.iter() {
            nodes.insert(n.key().to_owned(), n.to_json());
        }
        let mut m = Map::new();
        m.insert("nodes".into(), Json::Object(nodes));
        m.insert(
            "rootKey".into(),
            Json::String(self.root().map_or("", |r| r.key()).to_owned()),
        );
        Json::Object(m)
    }

    /// The canonical state as compact JSON text: identical bytes for identical states.
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    /// The canonical state as indented JSON text.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_json_value()).unwrap_or_default()
    }
}

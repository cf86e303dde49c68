//! The typed operation model: [`Message`], [`Op`] and one [`OpKind`] variant per `dtype.verb`.
//!
//! Owns the vocabulary every later stage speaks. A decoded op is *typed*: a
//! `vector3.set` carries `[f32; 3]`, a `color.blend` a colour string and an alpha, a
//! `node.move` the node and its new parent, whichever of the two wire forms it came in.
//!
//! Invariants (established by [`parse`], relied on by every apply stage):
//! - every float in an `OpKind` is finite;
//! - `NodeSpec::key` is non-empty; `NodeSpec::props` never holds `key`, `tag`, `name`
//!   or `children`;
//! - `ObjectSet`/`ObjectUpdate`/`ObjectMerge` carry an object, `ArraySet`/`ArrayUnion`
//!   an array;
//! - values respect the [`Limits`] they were parsed with.
//!
//! This module does not read bytes (that is [`crate::wire`]) and knows no merge rule
//! (that is [`crate::apply`]). Read [`fields`] (the flat wire shape) and [`parse`] next.

pub mod body;
pub mod build;
pub mod fields;
pub mod number;
pub mod parse;

use std::collections::BTreeMap;

pub use fields::OpFields;
pub use parse::Limits;

pub use crate::ids::MAX_SAFE_INT;

/// A JSON value: the payload of array, object and node ops.
pub type Json = serde_json::Value;

/// A CRDT message: one client's batch of ops, stamped `(lt, client)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Unique message id (the reference uses `"client:lt"`).
    pub id: String,
    /// The sending client (wire: `client`, legacy `sessionId`).
    pub client: String,
    /// The sender's vector clock (informational for replay).
    pub clock: BTreeMap<String, u64>,
    /// Lamport time (wire: `lt`, legacy `lamportTime`).
    pub lt: u64,
    /// Wall clock, seconds (wire: `ts`, legacy `timestamp`). Orders children.
    pub ts: f64,
    /// The operations, applied in array order.
    pub ops: Vec<Op>,
}

impl Message {
    /// True when every op of the message is a `meta.*` op.
    pub fn is_meta_only(&self) -> bool {
        !self.ops.is_empty() && self.ops.iter().all(|op| op.kind.is_meta())
    }
}

/// One operation: a target node key, a property path and a typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Target node key. `""` and `"."` name the root (see [`is_root_key`]).
    pub key: String,
    /// Property path, a flat string that may contain dots.
    pub path: String,
    /// What the op does, with its typed payload.
    pub kind: OpKind,
}

/// True for the keys that name the root: `""` and `"."` (a missing key decodes to `""`).
pub fn is_root_key(key: &str) -> bool {
    key.is_empty() || key == "."
}

/// Euler rotation order for `vector3.applyEuler`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EulerOrder {
    /// X, then Y, then Z (the default).
    #[default]
    Xyz,
    /// Y, X, Z (first-person cameras).
    Yxz,
    /// Z, X, Y.
    Zxy,
    /// Z, Y, X (aerospace).
    Zyx,
    /// Y, Z, X.
    Yzx,
    /// X, Z, Y.
    Xzy,
}

impl EulerOrder {
    /// All orders, in their wire spelling.
    pub const ALL: [(EulerOrder, &'static str); 6] = [
        (EulerOrder::Xyz, "XYZ"),
        (EulerOrder::Yxz, "YXZ"),
        (EulerOrder::Zxy, "ZXY"),
        (EulerOrder::Zyx, "ZYX"),
        (EulerOrder::Yzx, "YZX"),
        (EulerOrder::Xzy, "XZY"),
    ];

    /// Parses `"XYZ"` … `"XZY"`.
    pub fn parse(s: &str) -> Option<EulerOrder> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(o, _)| *o)
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("XYZ", |(_, n)| n)
    }

    /// The reversed order (`XYZ` → `ZYX`): extrinsic rotation uses it.
    pub fn reversed(self) -> EulerOrder {
        match self {
            EulerOrder::Xyz => EulerOrder::Zyx,
            EulerOrder::Yxz => EulerOrder::Zxy,
            EulerOrder::Zxy => EulerOrder::Yxz,
            EulerOrder::Zyx => EulerOrder::Xyz,
            EulerOrder::Yzx => EulerOrder::Xzy,
            EulerOrder::Xzy => EulerOrder::Yzx,
        }
    }
}

/// The payload of `node.insert`, `node.upsert` and `node.inset`.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// The new node's key (non-empty).
    pub key: String,
    /// `tag`, if given (defaults to `""` on insert).
    pub tag: Option<String>,
    /// `name`, if given (defaults to `""` on insert).
    pub name: Option<String>,
    /// Keys of existing nodes to adopt as children, if given.
    pub children: Vec<String>,
    /// Every other field: initial properties, in key order.
    pub props: BTreeMap<String, Json>,
}

/// Which wire form a `node.remove` / `node.move` came in, so it is written back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeOpForm {
    /// `{key: parent, path: "children", value: …}`.
    #[default]
    Nested,
    /// `{key: node, path: ".", to: …}` / `{key: node, path: "."}`.
    Flat,
}

/// The payload of `text.insert` / `text.delete` / `text.replace`, in one of the
/// reference's two forms.
#[derive(Clone, Debug, PartialEq)]
pub enum TextEdit {
    /// Local (position) form: resolved against the text where the op applies.
    /// Positions and lengths count Unicode code points and are clamped to the text;
    /// `length` is 0 for an insert and `value` empty for a delete.
    At {
        /// Code-point position.
        position: u64,
        /// Code points to delete from `position`.
        length: u64,
        /// Text to insert at `position`.
        value: String,
    },
    /// CRDT (network) form: deleted id ranges, then an insert, integrated as they are.
    Crdt {
        /// Deleted id ranges (`rm`).
        rm: Vec<crate::text::DeleteRange>,
        /// The insert (`id`, `value: [anchor, content]`, `seq`, `ts`), if any.
        insert: Option<crate::text::InsertOp>,
    },
}

/// What an op does, one variant per `dtype.verb`, with typed payloads.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OpKind {
    /// `number.set` (LWW).
    NumberSet(f64),
    /// `number.add` (default 0).
    NumberAdd(f64),
    /// `number.multiply` (default 1).
    NumberMultiply(f64),
    /// `number.min` (default +∞).
    NumberMin(f64),
    /// `number.max` (default −∞).
    NumberMax(f64),

    /// `vector3.set` (LWW).
    Vector3Set([f32; 3]),
    /// `vector3.add` (default `[0,0,0]`).
    Vector3Add([f32; 3]),
    /// `vector3.multiply` (default `[1,1,1]`), component-wise.
    Vector3Multiply([f32; 3]),
    /// `vector3.applyQuaternion`: rotate by `[x, y, z, w]` (not normalised).
    Vector3ApplyQuaternion([f32; 4]),
    /// `vector3.applyEuler`: rotate by Euler angles in radians.
    Vector3ApplyEuler {
        /// `[x, y, z]` radians.
        angles: [f32; 3],
        /// Rotation order (default XYZ).
        order: EulerOrder,
        /// Intrinsic (default) or extrinsic (= reversed order).
        intrinsic: bool,
    },

    /// `euler.set` (LWW).
    EulerSet([f32; 3]),
    /// `euler.add` (default `[0,0,0]`).
    EulerAdd([f32; 3]),

    /// `quaternion.set` (LWW), `[x, y, z, w]`.
    QuaternionSet([f32; 4]),
    /// `quaternion.multiply`: `current × value` (default identity).
    QuaternionMultiply([f32; 4]),

    /// `color.set` (LWW): the string is stored as given.
    ColorSet(String),
    /// `color.blend` towards `value` by `alpha` (default 0.5).
    ColorBlend {
        /// Target colour (`#rrggbb`; anything else counts as black).
        value: String,
        /// Blend factor.
        alpha: f64,
    },

    /// `string.set` (LWW).
    StringSet(String),
    /// `string.concat` with a separator (default `""`).
    StringConcat {
        /// Appended text.
        value: String,
        /// Put between a non-empty current value and `value`.
        separator: String,
    },
    /// `string.insert` at a code-point `index` (negative counts from the end).
    StringInsert {
        /// Inserted text.
        value: String,
        /// Code-point index.
        index: i64,
    },
    /// `string.cut`: remove code points `from..to`.
    StringCut {
        /// Start (inclusive).
        from: i64,
        /// End (exclusive).
        to: i64,
    },
    /// `string.replace`: replace code points `from..to` with `value`.
    StringReplace {
        /// Start (inclusive).
        from: i64,
        /// End (exclusive).
        to: i64,
        /// Replacement.
        value: String,
    },
    /// `string.move`: move code points `from..to` to `index` (counted after removal).
    StringMove {
        /// Start (inclusive).
        from: i64,
        /// End (exclusive).
        to: i64,
        /// Destination index in the string after removal.
        index: i64,
    },

    /// `boolean.set` (LWW).
    BooleanSet(bool),
    /// `boolean.or` (default false).
    BooleanOr(bool),
    /// `boolean.and` (default true).
    BooleanAnd(bool),
    /// `boolean.xor` (default false).
    BooleanXor(bool),

    /// `array.set` (LWW).
    ArraySet(Vec<Json>),
    /// `array.push`: append the value as one element.
    ArrayPush(Json),
    /// `array.insert` the value as one element at `index`.
    ArrayInsert {
        /// The element.
        value: Json,
        /// Index (negative counts from the end).
        index: i64,
    },
    /// `array.remove`: the element at `index` if given, else every element equal to `value`.
    ArrayRemove {
        /// Elements equal to this are removed (when `index` is absent).
        value: Option<Json>,
        /// Index to remove.
        index: Option<i64>,
    },
    /// `array.move` the element at `from` to `to` (counted after removal).
    ArrayMove {
        /// Source index.
        from: i64,
        /// Destination index.
        to: i64,
    },
    /// `array.union`: append each element not already present.
    ArrayUnion(Vec<Json>),

    /// `object.set` (LWW).
    ObjectSet(serde_json::Map<String, Json>),
    /// `object.update`: shallow merge (path `.` = the node's own properties).
    ObjectUpdate(serde_json::Map<String, Json>),
    /// `object.merge`: recursive per-key merge (path `.` = the node's own properties).
    ObjectMerge(serde_json::Map<String, Json>),
    /// `object.remove`: remove property `path`, or key `b` of object property `a` for `a.b`.
    ObjectRemove {
        /// Key to remove from the object at `path`, when given instead of a dotted path.
        field: Option<String>,
    },

    /// `node.insert` under `op.key` (idempotent by key).
    NodeInsert(NodeSpec),
    /// `node.remove`: tombstone the node.
    NodeRemove {
        /// The node to remove.
        node: String,
        /// The wire form it came in.
        form: NodeOpForm,
    },
    /// `node.upsert`: insert, or merge props into the existing node.
    NodeUpsert(NodeSpec),
    /// `node.inset`: insert, or set props on the existing node.
    NodeInset(NodeSpec),
    /// `node.move` the node under a new parent (never closes a cycle).
    NodeMove {
        /// The node to move.
        node: String,
        /// Its new parent.
        new_parent: String,
        /// `toPath` of the flat form (informational).
        to_path: Option<String>,
        /// The wire form it came in.
        form: NodeOpForm,
    },

    /// `text.init`: create the text property (an existing text gets `value` prepended).
    TextInit(String),
    /// `text.insert` (position form: `position`, `value`; CRDT form: `id`,
    /// `value: [anchor, content]`, `seq`, `ts`).
    TextInsert(TextEdit),
    /// `text.delete` (position form: `position`, `length`; CRDT form: `rm`).
    TextDelete(TextEdit),
    /// `text.replace`: a delete then an insert at the same place (select-and-type).
    TextReplace(TextEdit),

    /// `meta.undo` of the message `target`.
    MetaUndo {
        /// The targeted message id.
        target: String,
    },
    /// `meta.redo` of the message `target`.
    MetaRedo {
        /// The targeted message id.
        target: String,
    },
}

impl OpKind {
    /// The `ot` string, e.g. `"vector3.set"`.
    pub fn ot(&self) -> &'static str {
        use OpKind::*;
        match self {
            NumberSet(_) => "number.set",
            NumberAdd(_) => "number.add",
            NumberMultiply(_) => "number.multiply",
            NumberMin(_) => "number.min",
            NumberMax(_) => "number.max",
            Vector3Set(_) => "vector3.set",
            Vector3Add(_) => "vector3.add",
            Vector3Multiply(_) => "vector3.multiply",
            Vector3ApplyQuaternion(_) => "vector3.applyQuaternion",
            Vector3ApplyEuler { .. } => "vector3.applyEuler",
            EulerSet(_) => "euler.set",
            EulerAdd(_) => "euler.add",
            QuaternionSet(_) => "quaternion.set",
            QuaternionMultiply(_) => "quaternion.multiply",
            ColorSet(_) => "color.set",
            ColorBlend { .. } => "color.blend",
            StringSet(_) => "string.set",
            StringConcat { .. } => "string.concat",
            StringInsert { .. } => "string.insert",
            StringCut { .. } => "string.cut",
            StringReplace { .. } => "string.replace",
            StringMove { .. } => "string.move",
            BooleanSet(_) => "boolean.set",
            BooleanOr(_) => "boolean.or",
            BooleanAnd(_) => "boolean.and",
            BooleanXor(_) => "boolean.xor",
            ArraySet(_) => "array.set",
            ArrayPush(_) => "array.push",
            ArrayInsert { .. } => "array.insert",
            ArrayRemove { .. } => "array.remove",
            ArrayMove { .. } => "array.move",
            ArrayUnion(_) => "array.union",
            ObjectSet(_) => "object.set",
            ObjectUpdate(_) => "object.update",
            ObjectMerge(_) => "object.merge",
            ObjectRemove { .. } => "object.remove",
            NodeInsert(_) => "node.insert",
            NodeRemove { .. } => "node.remove",
            NodeUpsert(_) => "node.upsert",
            NodeInset(_) => "node.inset",
            NodeMove { .. } => "node.move",
            TextInit(_) => "text.init",
            TextInsert(_) => "text.insert",
            TextDelete(_) => "text.delete",
            TextReplace(_) => "text.replace",
            MetaUndo { .. } => "meta.undo",
            MetaRedo { .. } => "meta.redo",
        }
    }

    /// True for last-writer-wins ops (`*.set`): they compare and update the cell's stamp.
    pub fn is_lww(&self) -> bool {
        use OpKind::*;
        matches!(
            self,
            NumberSet(_)
                | Vector3Set(_)
                | EulerSet(_)
                | QuaternionSet(_)
                | ColorSet(_)
                | StringSet(_)
                | BooleanSet(_)
                | ArraySet(_)
                | ObjectSet(_)
        )
    }

    /// True when the op's write ignores the cell's previous value (a fold may start at
    /// it): the LWW sets, except `string.set` on a path that holds collaborative text
    /// (`text_path`), which keeps the text's CRDT.
    pub fn resets_cell(&self, text_path: bool) -> bool {
        self.is_lww() && !(text_path && matches!(self, OpKind::StringSet(_)))
    }

    /// True for `text.*` ops.
    pub fn is_text(&self) -> bool {
        use OpKind::*;
        matches!(
            self,
            TextInit(_) | TextInsert(_) | TextDelete(_) | TextReplace(_)
        )
    }

    /// True for structural ops (`node.*`).
    pub fn is_node(&self) -> bool {
        use OpKind::*;
        matches!(
            self,
            NodeInsert(_) | NodeRemove { .. } | NodeUpsert(_) | NodeInset(_) | NodeMove { .. }
        )
    }

    /// True for `meta.undo` / `meta.redo`.
    pub fn is_meta(&self) -> bool {
        matches!(self, OpKind::MetaUndo { .. } | OpKind::MetaRedo { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euler_orders_round_trip_and_reverse() {
        for (o, s) in EulerOrder::ALL {
            assert_eq!(EulerOrder::parse(s), Some(o));
            assert_eq!(o.as_str(), s);
            let rev: String = s.chars().rev().collect();
            assert_eq!(o.reversed().as_str(), rev);
        }
        assert_eq!(EulerOrder::parse("xyz"), None);
    }

    #[test]
    fn root_keys() {
        assert!(is_root_key(""));
        assert!(is_root_key("."));
        assert!(!is_root_key("scene"));
    }
}

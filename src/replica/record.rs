//! The journal's form of an op: a 32-byte record instead of an owned [`Op`].
//!
//! A [`Rec`] holds the interned cell the op touches (`ids`: target key and path, see
//! [`super::journal::Entry`]) and a [`Body`]. The ops that carry a small fixed payload
//! (numbers, vectors, quaternions, Euler angles, booleans, `string.cut`, `array.move`)
//! keep it inline, with no string and no allocation: their key is the target's
//! interned name and their path the interned path, so the owned op is rebuilt exactly
//! from the tables ([`Rec::to_op`]). Every other op (node ops, strings, JSON payloads,
//! text, meta ops, and any op written on the root alias `"."`) is kept whole, boxed.
//!
//! Invariants:
//! - `Rec::new(op, ids).to_op(keys, paths) == op` whenever `ids` are `op`'s interned
//!   ids (tested for every kind below);
//! - an inline body is always a single-cell property op
//!   ([`crate::apply::is_single_cell`]), so the replica never needs its key string to
//!   find the cells it touches;
//! - `size_of::<Rec>() == 32`.

use crate::apply::{apply_props, set_cell};
use crate::column::Value;
use crate::error::WarningKind;
use crate::graph::SceneGraph;
use crate::ids::{KeyId, KeyTable, NodeKey, PathId, PathTable, Pos};
use crate::op::Op;
pub use crate::op::body::{Body, Kind};
#[cfg(test)]
use crate::op::{EulerOrder, OpKind};

/// One journaled op: its interned cell and its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Rec {
    /// The interned target key and path (see [`super::journal::Entry`]).
    pub ids: (KeyId, PathId),
    /// The payload.
    pub body: Body,
}

impl Rec {
    /// The record of `op`, whose interned ids are `ids`.
    #[inline]
    pub fn new(op: Op, ids: (KeyId, PathId)) -> Rec {
        // The root alias "." is not the root key's name (""): such an op stays whole,
        // so it is rebuilt with the key it came with.
        let body = match Body::inline(&op.kind) {
            Some(b) if op.key != "." => b,
            _ => Body::Whole(Box::new(op)),
        };
        Rec { ids, body }
    }

    /// The op's kind.
    pub fn kind(&self) -> Kind<'_> {
        self.body.kind()
    }

    /// The whole op, when it is kept whole.
    pub fn whole(&self) -> Option<&Op> {
        match &self.body {
            Body::Whole(op) => Some(op),
            _ => None,
        }
    }

    /// The op's key as it came: the target's name for an inline body.
    pub fn key<'a>(&'a self, keys: &'a KeyTable) -> &'a str {
        match &self.body {
            Body::Whole(op) => &op.key,
            _ => keys.name(self.ids.0),
        }
    }

    /// The op's path as it came.
    pub fn path<'a>(&'a self, paths: &'a PathTable) -> &'a str {
        match &self.body {
            Body::Whole(op) => &op.path,
            _ => paths.name(self.ids.1),
        }
    }

    /// The owned op, exactly as it was journaled.
    pub fn to_op(&self, keys: &KeyTable, paths: &PathTable) -> Op {
        match &self.body {
            Body::Whole(op) => (**op).clone(),
            b => Op {
                key: keys.name(self.ids.0).to_owned(),
                path: paths.name(self.ids.1).to_owned(),
                kind: b.kind().clone(),
            },
        }
    }

    /// True when this record is `op`'s (compared without building anything).
    pub fn is(&self, op: &Op, keys: &KeyTable, paths: &PathTable) -> bool {
        match &self.body {
            Body::Whole(w) => **w == *op,
            b => {
                *b.kind() == op.kind
                    && keys.name(self.ids.0) == op.key
                    && paths.name(self.ids.1) == op.path
            }
        }
    }

    /// Applies the property part of the op to `node` at `pos`, restricted to the
    /// paths `cells` accepts ([`crate::apply::apply_props`]).
    pub fn apply_props(
        &self,
        graph: &mut SceneGraph,
        node: NodeKey,
        pos: Pos,
        cells: &dyn Fn(PathId) -> bool,
    ) -> Option<WarningKind> {
        match &self.body {
            Body::Whole(op) => apply_props(graph, node, op, self.ids.1, pos, cells),
            b if cells(self.ids.1) => set_cell(graph, node, self.ids.1, &b.kind(), pos.stamp),
            _ => None,
        }
    }

    /// The value an inline LWW set writes (it ignores the cell's current value), or
    /// `None` for every other op: what `fold` gives for these kinds, without it.
    pub fn lww_value(&self) -> Option<Value> {
        Some(match self.body {
            Body::NumberSet(x) => Value::Number(x),
            Body::Vector3Set(v) | Body::EulerSet(v) => Value::Vec3(v),
            Body::QuaternionSet(q) => Value::Quat(q),
            Body::BooleanSet(b) => Value::Bool(b),
            _ => return None,
        })
    }

    /// Heap bytes this record owns beyond its own 32 (an estimate for whole ops).
    pub fn heap_bytes(&self) -> usize {
        match &self.body {
            Body::Whole(op) => std::mem::size_of::<Op>() + op.key.len() + op.path.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Json;
    use std::collections::BTreeMap;

    #[test]
    fn a_record_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Rec>(), 32);
        assert_eq!(std::mem::size_of::<Body>(), 24);
    }

    fn ops() -> Vec<Op> {
        vec![
            Op::number_set("n", "health", 3.5),
            Op::number_add("n", "health", -1.0),
            Op::new("n", "x", OpKind::NumberMultiply(2.0)),
            Op::new("n", "x", OpKind::NumberMin(2.0)),
            Op::new("n", "x", OpKind::NumberMax(2.0)),
            Op::vector3_set("n", "position", [1.0, 2.0, 3.0]),
            Op::new("n", "p", OpKind::Vector3Add([1.0, 0.0, 0.0])),
            Op::new("n", "p", OpKind::Vector3Multiply([1.0, 0.5, 0.0])),
            Op::new(
                "n",
                "p",
                OpKind::Vector3ApplyQuaternion([0.0, 0.0, 0.0, 1.0]),
            ),
            Op::new(
                "n",
                "p",
                OpKind::Vector3ApplyEuler {
                    angles: [0.1, 0.2, 0.3],
                    order: EulerOrder::default(),
                    intrinsic: false,
                },
            ),
            Op::new("n", "r", OpKind::EulerSet([0.1, 0.2, 0.3])),
            Op::new("n", "r", OpKind::EulerAdd([0.1, 0.2, 0.3])),
            Op::new("n", "q", OpKind::QuaternionSet([0.0, 0.0, 0.0, 1.0])),
            Op::quaternion_multiply("n", "q", [0.0, 1.0, 0.0, 0.0]),
            Op::new("n", "b", OpKind::BooleanSet(true)),
            Op::new("n", "b", OpKind::BooleanOr(true)),
            Op::new("n", "b", OpKind::BooleanAnd(false)),
            Op::new("n", "b", OpKind::BooleanXor(true)),
            Op::new("n", "s", OpKind::StringCut { from: 1, to: -1 }),
            Op::new("n", "a", OpKind::ArrayMove { from: 0, to: 3 }),
            // Whole ops.
            Op::new("n", "s", OpKind::StringSet("hi".into())),
            Op::new("n", "a", OpKind::ArrayPush(Json::from(1))),
            Op::node_insert_with("", "m", "Mesh", BTreeMap::new()),
            Op::node_remove("", "m"),
            Op::meta_undo("c:1"),
            // The root alias: inline kind, kept whole to keep its key.
            Op::number_set(".", "x", 1.0),
            Op::number_set("", "x", 1.0),
        ]
    }

    #[test]
    fn every_op_is_rebuilt_exactly() {
        let (mut keys, mut paths) = (KeyTable::default(), PathTable::default());
        let mut inline = 0;
        for op in ops() {
            let ids = (
                if op.key == "." {
                    KeyId::ROOT
                } else {
                    keys.intern(&op.key)
                },
                paths.intern(&op.path),
            );
            let rec = Rec::new(op.clone(), ids);
            assert_eq!(rec.to_op(&keys, &paths), op);
            assert!(rec.is(&op, &keys, &paths));
            assert_eq!(*rec.kind(), op.kind);
            let b = &rec.body;
            assert_eq!(b.is_lww(), op.kind.is_lww(), "{op:?}");
            assert_eq!(b.is_text(), op.kind.is_text());
            assert_eq!(b.is_node(), op.kind.is_node());
            assert_eq!(b.is_meta(), op.kind.is_meta());
            for t in [false, true] {
                assert_eq!(b.resets_cell(t), op.kind.resets_cell(t));
            }
            assert_eq!(rec.key(&keys), op.key);
            assert_eq!(rec.path(&paths), op.path);
            if let Some(v) = rec.lww_value() {
                let crate::apply::fold::Fold::Write(folded) =
                    crate::apply::fold::fold(&op.kind, &op.path, None)
                else {
                    panic!("{op:?} is a set")
                };
                assert_eq!(v, folded, "{op:?}");
            }
            if rec.whole().is_none() {
                inline += 1;
                assert!(crate::apply::is_single_cell(&op), "{op:?}");
            }
            let mut other = op.clone();
            other.path.push('!');
            assert!(!rec.is(&other, &keys, &paths));
        }
        assert_eq!(inline, 21, "every small fixed payload is inline");
    }
}

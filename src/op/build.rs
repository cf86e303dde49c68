//! Typed constructors for ops, so Rust callers need no JSON:
//! `Op::vector3_set("cube", "position", [3.0, 2.0, 1.0])`.
//!
//! Each constructor builds exactly what [`super::parse::parse_op`] would produce from
//! the equivalent wire op. Constructors do not validate: a non-finite float passed here
//! is the caller's bug and is rejected when the op is encoded and decoded again.

use std::collections::BTreeMap;

use super::{EulerOrder, Json, NodeOpForm, NodeSpec, Op, OpFields, OpKind};
use crate::error::OpError;

macro_rules! simple {
    ($($(#[$doc:meta])* $fn:ident($t:ty) => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fn(key: impl Into<String>, path: impl Into<String>, value: $t) -> Op {
                Op::new(key, path, OpKind::$variant(value.into()))
            }
        )*
    };
}

impl Op {
    /// An op from its parts.
    pub fn new(key: impl Into<String>, path: impl Into<String>, kind: OpKind) -> Op {
        Op {
            key: key.into(),
            path: path.into(),
            kind,
        }
    }

    /// Parses one op from its JSON form, as the seeds write them
    /// (`{"otype": "vector3.set", "key": "cube", "path": "position", "value": [1, 2, 3]}`).
    ///
    /// # Errors
    /// [`OpError`] when a field is missing, of the wrong type or out of range.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::op::{Op, OpKind};
    /// let op = Op::from_json(&serde_json::json!(
    ///     {"otype": "number.add", "key": "obj", "path": "health", "value": -25}
    /// )).unwrap();
    /// assert_eq!(op, Op::number_add("obj", "health", -25.0));
    /// ```
    pub fn from_json(value: &Json) -> Result<Op, OpError> {
        let fields: OpFields =
            serde_json::from_value(value.clone()).map_err(|e| OpError::Invalid {
                field: "op",
                reason: e.to_string(),
            })?;
        super::parse::parse_op(&fields, &super::Limits::default())
    }

    /// Checks what the typed constructors leave to the caller: every float of the
    /// payload is finite (the wire has no NaN or ∞, so such an op could not be sent).
    ///
    /// # Errors
    /// [`OpError::Invalid`] naming the field.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::op::Op;
    /// assert!(Op::number_add("n", "x", 1.0).validate().is_ok());
    /// assert!(Op::vector3_set("n", "p", [f32::NAN, 0.0, 0.0]).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), OpError> {
        use OpKind::*;
        let finite3 = |v: &[f32; 3]| v.iter().all(|x| x.is_finite());
        let finite4 = |v: &[f32; 4]| v.iter().all(|x| x.is_finite());
        let (ok, field) = match &self.kind {
            NumberSet(x) | NumberAdd(x) | NumberMultiply(x) | NumberMin(x) | NumberMax(x) => {
                (x.is_finite(), "value")
            }
            ColorBlend { alpha, .. } => (alpha.is_finite(), "alpha"),
            Vector3Set(v) | Vector3Add(v) | Vector3Multiply(v) | EulerSet(v) | EulerAdd(v) => {
                (finite3(v), "value")
            }
            Vector3ApplyEuler { angles, .. } => (finite3(angles), "value"),
            Vector3ApplyQuaternion(q) | QuaternionSet(q) | QuaternionMultiply(q) => {
                (finite4(q), "value")
            }
            _ => (true, "value"),
        };
        if ok {
            Ok(())
        } else {
            Err(OpError::Invalid {
                field,
                reason: "not a finite number".into(),
            })
        }
    }

    /// The op's JSON wire form (compressed spelling, `ot`).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(OpFields::from_op(self)).unwrap_or(Json::Null)
    }

    simple! {
        /// `number.set` (LWW).
        number_set(f64) => NumberSet;
        /// `number.add`.
        number_add(f64) => NumberAdd;
        /// `number.multiply`.
        number_multiply(f64) => NumberMultiply;
        /// `number.min`.
        number_min(f64) => NumberMin;
        /// `number.max`.
        number_max(f64) => NumberMax;
        /// `vector3.set` (LWW).
        vector3_set([f32; 3]) => Vector3Set;
        /// `vector3.add`.
        vector3_add([f32; 3]) => Vector3Add;
        /// `vector3.multiply`.
        vector3_multiply([f32; 3]) => Vector3Multiply;
        /// `vector3.applyQuaternion`.
        vector3_apply_quaternion([f32; 4]) => Vector3ApplyQuaternion;
        /// `euler.set` (LWW).
        euler_set([f32; 3]) => EulerSet;
        /// `euler.add`.
        euler_add([f32; 3]) => EulerAdd;
        /// `quaternion.set` (LWW).
        quaternion_set([f32; 4]) => QuaternionSet;
        /// `quaternion.multiply`.
        quaternion_multiply([f32; 4]) => QuaternionMultiply;
        /// `color.set` (LWW).
        color_set(&str) => ColorSet;
        /// `string.set` (LWW).
        string_set(&str) => StringSet;
        /// `boolean.set` (LWW).
        boolean_set(bool) => BooleanSet;
        /// `boolean.or`.
        boolean_or(bool) => BooleanOr;
        /// `boolean.and`.
        boolean_and(bool) => BooleanAnd;
        /// `boolean.xor`.
        boolean_xor(bool) => BooleanXor;
        /// `array.set` (LWW).
        array_set(Vec<Json>) => ArraySet;
        /// `array.push`.
        array_push(Json) => ArrayPush;
        /// `array.union`.
        array_union(Vec<Json>) => ArrayUnion;
        /// `object.set` (LWW).
        object_set(serde_json::Map<String, Json>) => ObjectSet;
        /// `object.update`.
        object_update(serde_json::Map<String, Json>) => ObjectUpdate;
        /// `object.merge`.
        object_merge(serde_json::Map<String, Json>) => ObjectMerge;
    }

    /// `vector3.applyEuler` with an order and intrinsic/extrinsic flag.
    pub fn vector3_apply_euler(
        key: impl Into<String>,
        path: impl Into<String>,
        angles: [f32; 3],
        order: EulerOrder,
        intrinsic: bool,
    ) -> Op {
        Op::new(
            key,
            path,
            OpKind::Vector3ApplyEuler {
                angles,
                order,
                intrinsic,
            },
        )
    }

    /// `color.blend` towards `value` by `alpha`.
    pub fn color_blend(
        key: impl Into<String>,
        path: impl Into<String>,
        value: &str,
        alpha: f64,
    ) -> Op {
        Op::new(
            key,
            path,
            OpKind::ColorBlend {
                value: value.into(),
                alpha,
            },
        )
    }

    /// `string.concat` with a separator.
    pub fn string_concat(
        key: impl Into<String>,
        path: impl Into<String>,
        value: &str,
        separator: &str,
    ) -> Op {
        Op::new(
            key,
            path,
            OpKind::StringConcat {
                value: value.into(),
                separator: separator.into(),
            },
        )
    }

    /// `node.insert` of a node `key` with `tag` under `parent` (`""` = top level).
    pub fn node_insert(parent: impl Into<String>, key: impl Into<String>, tag: &str) -> Op {
        Op::node_insert_with(parent, key, tag, BTreeMap::new())
    }

    /// `node.insert` with initial properties.
    pub fn node_insert_with(
        parent: impl Into<String>,
        key: impl Into<String>,
        tag: &str,
        props: BTreeMap<String, Json>,
    ) -> Op {
        Op::new(
            parent,
            "children",
            OpKind::NodeInsert(NodeSpec {
                key: key.into(),
                tag: Some(tag.into()),
                name: None,
                children: Vec::new(),
                props,
            }),
        )
    }

    /// `node.remove` of `node` (nested form, parent key informational).
    pub fn node_remove(parent: impl Into<String>, node: impl Into<String>) -> Op {
        Op::new(
            parent,
            "children",
            OpKind::NodeRemove {
                node: node.into(),
                form: NodeOpForm::Nested,
            },
        )
    }

    /// `node.move` of `node` under `new_parent` (nested form).
    pub fn node_move(
        old_parent: impl Into<String>,
        node: impl Into<String>,
        new_parent: impl Into<String>,
    ) -> Op {
        Op::new(
            old_parent,
            "children",
            OpKind::NodeMove {
                node: node.into(),
                new_parent: new_parent.into(),
                to_path: None,
                form: NodeOpForm::Nested,
            },
        )
    }

    /// `meta.undo` of message `target`.
    pub fn meta_undo(target: impl Into<String>) -> Op {
        Op::new(
            "_meta",
            "_meta",
            OpKind::MetaUndo {
                target: target.into(),
            },
        )
    }

    /// `meta.redo` of message `target`.
    pub fn meta_redo(target: impl Into<String>) -> Op {
        Op::new(
            "_meta",
            "_meta",
            OpKind::MetaRedo {
                target: target.into(),
            },
        )
    }
}

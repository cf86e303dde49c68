//! The flat wire shape of an op: every field optional and untyped.
//!
//! [`OpFields`] is what the codecs in [`crate::wire`] read and write. Reading never
//! fails on a field's *type* (every field is a JSON value), so a wrong type is reported
//! by [`super::parse`] with the message id and op index, not as an anonymous serde
//! error. Unknown fields are ignored. `otype` is accepted for `ot`; output always uses
//! `ot`.
//!
//! [`OpFields::from_op`] is the inverse of [`super::parse::parse_op`]:
//! `parse_op(from_op(op)) == op` for every valid op (tested in `parse`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::{Json, NodeOpForm, NodeSpec, Op, OpKind, TextEdit};

/// An op as it stands on the wire: `ot`, `key`, `path`, `value` plus flat extras.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpFields {
    /// `"dtype.verb"` (legacy spelling `otype`).
    #[serde(alias = "otype", skip_serializing_if = "Option::is_none")]
    pub ot: Option<Json>,
    /// Target node key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Json>,
    /// Property path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Json>,
    /// The op's value. An explicit `null` is kept (`Some(Json::Null)`): it is a
    /// valid element for `array.push`, unlike a missing value.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub value: Option<Json>,
    /// `string.concat` separator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<Json>,
    /// `color.blend` factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<Json>,
    /// Index for string/array ops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Json>,
    /// Range start / move source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Json>,
    /// Range end / move destination / new parent of a flat `node.move`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Json>,
    /// Euler order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Json>,
    /// Intrinsic (true) or extrinsic Euler rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intrinsic: Option<Json>,
    /// Path under the new parent of a flat `node.move`.
    #[serde(rename = "toPath", skip_serializing_if = "Option::is_none")]
    pub to_path: Option<Json>,
    /// Target message of `meta.undo` / `meta.redo`.
    #[serde(rename = "targetMsgId", skip_serializing_if = "Option::is_none")]
    pub target_msg_id: Option<Json>,
    /// Text CRDT item id (`"agent:seq"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Json>,
    /// Text CRDT sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<Json>,
    /// Text CRDT timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<Json>,
    /// Text CRDT deletions `[[id, len], …]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rm: Option<Json>,
    /// Local text position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Json>,
    /// Local text length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<Json>,
}

/// Deserializes a present field as `Some`, even when it is `null`.
fn present_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

fn f32s(v: &[f32]) -> Json {
    Json::Array(v.iter().map(|&x| super::number::f32_to_json(x)).collect())
}

fn num(x: f64) -> Json {
    super::number::f64_to_json(x)
}

fn spec_json(spec: &NodeSpec) -> Json {
    let mut m = Map::new();
    m.insert("key".into(), Json::String(spec.key.clone()));
    if let Some(t) = &spec.tag {
        m.insert("tag".into(), Json::String(t.clone()));
    }
    if let Some(n) = &spec.name {
        m.insert("name".into(), Json::String(n.clone()));
    }
    if !spec.children.is_empty() {
        m.insert("children".into(), json!(spec.children));
    }
    for (k, v) in &spec.props {
        m.insert(k.clone(), v.clone());
    }
    Json::Object(m)
}

impl OpFields {
    /// The wire form of a typed op, in the compressed spelling (`ot`).
    pub fn from_op(op: &Op) -> OpFields {
        use OpKind::*;
        let mut f = OpFields {
            ot: Some(Json::String(op.kind.ot().into())),
            key: Some(Json::String(op.key.clone())),
            path: Some(Json::String(op.path.clone())),
            ..OpFields::default()
        };
        let s = |x: &str| Some(Json::String(x.to_owned()));
        let i = |x: i64| Some(Json::from(x));
        match &op.kind {
            NumberSet(x) | NumberAdd(x) | NumberMultiply(x) | NumberMin(x) | NumberMax(x) => {
                f.value = Some(num(*x))
            }
            Vector3Set(v) | Vector3Add(v) | Vector3Multiply(v) | EulerSet(v) | EulerAdd(v) => {
                f.value = Some(f32s(v))
            }
            Vector3ApplyQuaternion(q) | QuaternionSet(q) | QuaternionMultiply(q) => {
                f.value = Some(f32s(q))
            }
            Vector3ApplyEuler {
                angles,
                order,
                intrinsic,
            } => {
                f.value = Some(f32s(angles));
                f.order = s(order.as_str());
                f.intrinsic = Some(Json::Bool(*intrinsic));
            }
            ColorSet(v) | StringSet(v) => f.value = s(v),
            ColorBlend { value, alpha } => {
                f.value = s(value);
                f.alpha = Some(num(*alpha));
            }
            StringConcat { value, separator } => {
                f.value = s(value);
                if !separator.is_empty() {
                    f.separator = s(separator);
                }
            }
            StringInsert { value, index } => {
                f.value = s(value);
                f.index = i(*index);
            }
            StringCut { from, to } => {
                f.from = i(*from);
                f.to = i(*to);
            }
            StringReplace { from, to, value } => {
                f.from = i(*from);
                f.to = i(*to);
                f.value = s(value);
            }
            StringMove { from, to, index } => {
                f.from = i(*from);
                f.to = i(*to);
                f.index = i(*index);
            }
            BooleanSet(b) | BooleanOr(b) | BooleanAnd(b) | BooleanXor(b) => {
                f.value = Some(Json::Bool(*b))
            }
            ArraySet(a) | ArrayUnion(a) => f.value = Some(Json::Array(a.clone())),
            ArrayPush(v) => f.value = Some(v.clone()),
            ArrayInsert { value, index } => {
                f.value = Some(value.clone());
                f.index = i(*index);
            }
            ArrayRemove { value, index } => {
                f.value = value.clone();
                f.index = index.and_then(i);
            }
            ArrayMove { from, to } => {
                f.from = i(*from);
                f.to = i(*to);
            }
            ObjectSet(m) | ObjectUpdate(m) | ObjectMerge(m) => {
                f.value = Some(Json::Object(m.clone()))
            }
            ObjectRemove { field } => f.value = field.as_deref().and_then(s),
            NodeInsert(spec) | NodeUpsert(spec) | NodeInset(spec) => {
                f.value = Some(spec_json(spec))
            }
            NodeRemove { node, form } => match form {
                NodeOpForm::Nested => f.value = s(node),
                // The path the op came with (`"."` in the reference's spelling) is
                // written back as it was: decode(encode(op)) == op.
                NodeOpForm::Flat => f.key = s(node),
            },
            NodeMove {
                node,
                new_parent,
                to_path,
                form,
            } => match form {
                NodeOpForm::Nested => {
                    f.value = Some(json!({"nodeKey": node, "newParent": new_parent}));
                }
                NodeOpForm::Flat => {
                    f.key = s(node);
                    f.to = s(new_parent);
                    f.to_path = to_path.as_deref().and_then(s);
                }
            },
            TextInit(v) => f.value = s(v),
            TextInsert(e) | TextDelete(e) | TextReplace(e) => match e {
                TextEdit::At {
                    position,
                    length,
                    value,
                } => {
                    f.position = Some(Json::from(*position));
                    if !matches!(op.kind, TextInsert(_)) {
                        f.length = Some(Json::from(*length));
                    }
                    if !matches!(op.kind, TextDelete(_)) {
                        f.value = s(value);
                    }
                }
                TextEdit::Crdt { rm, insert } => {
                    if !matches!(op.kind, TextInsert(_)) {
                        f.rm = Some(Json::Array(
                            rm.iter()
                                .map(|r| json!([r.id.to_string(), r.len]))
                                .collect(),
                        ));
                    }
                    if let Some(ins) = insert {
                        f.id = s(&ins.id.to_string());
                        f.value = Some(json!([
                            ins.anchor.as_ref().map(ToString::to_string),
                            ins.content
                        ]));
                        f.seq = Some(Json::from(ins.lamport));
                        f.ts = Some(num(ins.ts));
                    }
                }
            },
            MetaUndo { target } | MetaRedo { target } => f.target_msg_id = s(target),
        }
        f
    }
}

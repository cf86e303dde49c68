//! Validation: [`OpFields`] (untyped) → [`Op`] (typed), or an [`OpError`].
//!
//! Every check the apply stages rely on happens here, before anything is applied:
//! known `ot`, required fields present, JSON types right, floats finite (and within
//! `f32` range for vector/quaternion payloads), Euler order valid, sizes within
//! [`Limits`]. A message is valid only if all its ops are; see [`crate::wire`].

use std::collections::BTreeMap;

use super::{EulerOrder, Json, MAX_SAFE_INT, NodeOpForm, NodeSpec, Op, OpFields, OpKind, TextEdit};
use crate::error::OpError;
use crate::text::{DeleteRange, InsertOp, ItemId};

/// Size limits applied to untrusted input. The defaults suit a scene editor; raise them
/// for bulk imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most ops in one message.
    pub max_ops_per_message: usize,
    /// Longest string (key, path, id or value), in bytes.
    pub max_string_bytes: usize,
    /// Most elements in one array or entries in one object.
    pub max_collection_len: usize,
    /// Deepest nesting of arrays/objects inside a value (at most
    /// [`crate::wire::MAX_DEPTH`]; a larger value acts as that one).
    pub max_depth: usize,
    /// Largest encoded size of one message, in bytes (JSON or MessagePack): a message
    /// over it is rejected before any of it is decoded.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops_per_message: 100_000,
            max_string_bytes: 16 << 20,
            max_collection_len: 1 << 20,
            max_depth: 64,
            max_message_bytes: 32 << 20,
        }
    }
}

type R<T> = Result<T, OpError>;

/// A short rendering of a JSON value for error messages.
pub(crate) fn describe(v: &Json) -> String {
    let s = match v {
        Json::Null => return "null".into(),
        Json::Bool(b) => return format!("boolean {b}"),
        Json::Number(n) => return format!("number {n}"),
        Json::String(_) => "string ",
        Json::Array(_) => "array ",
        Json::Object(_) => "object ",
    };
    let mut body = v.to_string();
    if body.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|&i| body.is_char_boundary(i))
            .unwrap_or(0);
        body.truncate(cut);
        body.push('…');
    }
    format!("{s}{body}")
}

fn req<'a>(v: &'a Option<Json>, field: &'static str) -> R<&'a Json> {
    v.as_ref().ok_or(OpError::MissingField(field))
}

fn wrong(field: &'static str, expected: &'static str, got: &Json) -> OpError {
    OpError::WrongType {
        field,
        expected,
        got: describe(got),
    }
}

fn string(v: &Json, field: &'static str, lim: &Limits) -> R<String> {
    match v {
        Json::String(s) if s.len() > lim.max_string_bytes => Err(OpError::TooLarge {
            field,
            what: "string length in bytes",
            limit: lim.max_string_bytes,
        }),
        Json::String(s) => Ok(s.clone()),
        other => Err(wrong(field, "a string", other)),
    }
}

fn req_string(v: &Option<Json>, field: &'static str, lim: &Limits) -> R<String> {
    string(req(v, field)?, field, lim)
}

fn opt_string(v: &Option<Json>, field: &'static str, lim: &Limits) -> R<Option<String>> {
    v.as_ref().map(|v| string(v, field, lim)).transpose()
}

pub(crate) fn number(v: &Json, field: &'static str) -> R<f64> {
    match v {
        Json::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| OpError::Invalid {
                field,
                reason: format!("{n} is not a finite number"),
            }),
        other => Err(wrong(field, "a finite number", other)),
    }
}

/// An integer within `±MAX_SAFE_INT` (integral floats such as `2.0` included).
fn integer(v: &Json, field: &'static str) -> R<i64> {
    if let Some(i) = v.as_i64() {
        return if i.unsigned_abs() <= MAX_SAFE_INT {
            Ok(i)
        } else {
            Err(beyond_safe(field, &i.to_string()))
        };
    }
    if let Some(u) = v.as_u64() {
        return Err(beyond_safe(field, &u.to_string()));
    }
    let x = number(v, field)?;
    #[expect(clippy::cast_precision_loss, reason = "2^53 − 1 is exact in f64")]
    let max = MAX_SAFE_INT as f64;
    if x.fract() == 0.0 && x.abs() > max {
        return Err(beyond_safe(field, &x.to_string()));
    }
    if x.fract() == 0.0 {
        // Integral floats (`2.0`) are accepted as indices.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "checked integral and in range"
        )]
        return Ok(x as i64);
    }
    Err(OpError::Invalid {
        field,
        reason: format!("{x} is not an integer index"),
    })
}

/// The error for an integer outside `±MAX_SAFE_INT`.
pub(crate) fn beyond_safe(field: &'static str, shown: &str) -> OpError {
    OpError::Invalid {
        field,
        reason: beyond_safe_reason(shown),
    }
}

/// Why an integer outside `±MAX_SAFE_INT` is refused.
pub(crate) fn beyond_safe_reason(shown: &str) -> String {
    format!("{shown} is beyond 2^53 − 1, the largest integer every client represents exactly")
}

/// Checks that an insert's character ids fit in the 32-bit counters: the id of its
/// last character, `id.seq + chars − 1`, is at most `u32::MAX − 1`, so the id after
/// it is representable too.
pub(crate) fn insert_ids_fit(op: &InsertOp) -> R<()> {
    let n = op.content.chars().count();
    let fits = u32::try_from(n)
        .ok()
        .and_then(|n| op.id.seq.checked_add(n))
        .is_some();
    if fits {
        Ok(())
    } else {
        Err(OpError::Invalid {
            field: "id",
            reason: format!(
                "{} with {n} characters runs past the last character id ({})",
                op.id,
                u32::MAX
            ),
        })
    }
}

fn boolean(v: &Json, field: &'static str) -> R<bool> {
    v.as_bool().ok_or_else(|| wrong(field, "a boolean", v))
}

fn floats<const N: usize>(v: &Json, field: &'static str, expected: &'static str) -> R<[f32; N]> {
    let arr = match v {
        Json::Array(a) if a.len() == N => a,
        other => return Err(wrong(field, expected, other)),
    };
    let mut out = [0.0f32; N];
    for (slot, x) in out.iter_mut().zip(arr) {
        let x = match x {
            Json::Number(_) => number(x, field)?,
            _ => return Err(wrong(field, expected, v)),
        };
        #[expect(
            clippy::cast_possible_truncation,
            reason = "payloads are f32 by design"
        )]
        let y = x as f32;
        if !y.is_finite() {
            return Err(OpError::Invalid {
                field,
                reason: format!("{x} overflows a 32-bit float"),
            });
        }
        *slot = y;
    }
    Ok(out)
}

/// Checks nesting depth, collection sizes and string sizes of a JSON value.
pub(crate) fn check_value(v: &Json, field: &'static str, lim: &Limits) -> R<()> {
    fn walk(v: &Json, depth: usize, field: &'static str, lim: &Limits) -> R<()> {
        match v {
            Json::String(s) if s.len() > lim.max_string_bytes => Err(OpError::TooLarge {
                field,
                what: "string length in bytes",
                limit: lim.max_string_bytes,
            }),
            Json::Array(_) | Json::Object(_) if depth >= lim.max_depth => Err(OpError::TooLarge {
                field,
                what: "nesting depth",
                limit: lim.max_depth,
            }),
            Json::Array(a) => {
                if a.len() > lim.max_collection_len {
                    return Err(OpError::TooLarge {
                        field,
                        what: "array length",
                        limit: lim.max_collection_len,
                    });
                }
                a.iter().try_for_each(|x| walk(x, depth + 1, field, lim))
            }
            Json::Object(m) => {
                if m.len() > lim.max_collection_len {
                    return Err(OpError::TooLarge {
                        field,
                        what: "object size",
                        limit: lim.max_collection_len,
                    });
                }
                m.iter().try_for_each(|(k, x)| {
                    if k.len() > lim.max_string_bytes {
                        return Err(OpError::TooLarge {
                            field,
                            what: "object key length in bytes",
                            limit: lim.max_string_bytes,
                        });
                    }
                    walk(x, depth + 1, field, lim)
                })
            }
            _ => Ok(()),
        }
    }
    walk(v, 0, field, lim)
}

fn any_value(v: &Option<Json>, lim: &Limits) -> R<Json> {
    let v = req(v, "value")?;
    check_value(v, "value", lim)?;
    Ok(v.clone())
}

fn array(v: &Option<Json>, lim: &Limits) -> R<Vec<Json>> {
    match req(v, "value")? {
        a @ Json::Array(items) => {
            check_value(a, "value", lim)?;
            Ok(items.clone())
        }
        other => Err(wrong("value", "an array", other)),
    }
}

fn object(v: &Option<Json>, lim: &Limits) -> R<serde_json::Map<String, Json>> {
    match req(v, "value")? {
        o @ Json::Object(m) => {
            check_value(o, "value", lim)?;
            Ok(m.clone())
        }
        other => Err(wrong("value", "an object", other)),
    }
}

fn node_spec(v: &Option<Json>, lim: &Limits) -> R<NodeSpec> {
    let obj = match req(v, "value")? {
        o @ Json::Object(m) => {
            check_value(o, "value", lim)?;
            m
        }
        other => return Err(wrong("value", "a node object {key, tag, …}", other)),
    };
    let key = match obj.get("key") {
        Some(Json::String(s)) if !s.is_empty() => s.clone(),
        Some(Json::String(_)) => {
            return Err(OpError::Invalid {
                field: "value.key",
                reason: "a node key must not be empty".into(),
            });
        }
        Some(other) => return Err(wrong("value.key", "a string", other)),
        None => return Err(OpError::MissingField("value.key")),
    };
    let text = |name: &'static str| -> R<Option<String>> {
        match obj.get(name.trim_start_matches("value.")) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong(name, "a string", other)),
        }
    };
    let tag = text("value.tag")?;
    let name = text("value.name")?;
    let children = match obj.get("children") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|c| match c {
                Json::String(s) => Ok(s.clone()),
                other => Err(wrong("value.children", "an array of node keys", other)),
            })
            .collect::<R<_>>()?,
        Some(other) => return Err(wrong("value.children", "an array of node keys", other)),
    };
    let props: BTreeMap<String, Json> = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "key" | "tag" | "name" | "children"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(NodeSpec {
        key,
        tag,
        name,
        children,
        props,
    })
}

fn opt_index(v: &Option<Json>, field: &'static str) -> R<Option<i64>> {
    v.as_ref().map(|v| integer(v, field)).transpose()
}

fn req_index(v: &Option<Json>, field: &'static str) -> R<i64> {
    integer(req(v, field)?, field)
}

/// Reads the `ot` of an op, if it is a string (for error messages).
pub fn ot_of(f: &OpFields) -> Option<String> {
    f.ot.as_ref().and_then(|o| o.as_str()).map(str::to_owned)
}

/// Validates one op. The error carries the op's `ot` when it was readable.
pub fn parse_op(f: &OpFields, lim: &Limits) -> R<Op> {
    parse_op_taking(&mut f.clone(), lim)
}

fn take_string(v: Option<Json>, field: &'static str, lim: &Limits) -> R<Option<String>> {
    match v {
        None => Ok(None),
        Some(Json::String(s)) if s.len() > lim.max_string_bytes => Err(OpError::TooLarge {
            field,
            what: "string length in bytes",
            limit: lim.max_string_bytes,
        }),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(field, "a string", &other)),
    }
}

/// [`parse_op`] that moves `key` and `path` out of `f` instead of copying them (the
/// rest of `f`, `ot` included, stays for error reporting).
pub fn parse_op_taking(f: &mut OpFields, lim: &Limits) -> R<Op> {
    let key = take_string(f.key.take(), "key", lim)?.unwrap_or_default();
    let path_given = take_string(f.path.take(), "path", lim)?;
    let kind = parse_kind(f, &key, lim)?;
    // Property ops need a path; node and meta ops do not. `object.update`/`merge`
    // default to `.` (the node's own properties), as in the reference.
    let path = match path_given {
        Some(p) => p,
        None if kind.is_node() || kind.is_meta() => String::new(),
        None if matches!(kind, OpKind::ObjectMerge(_) | OpKind::ObjectUpdate(_)) => ".".into(),
        None => return Err(OpError::MissingField("path")),
    };
    Ok(Op { key, path, kind })
}

/// A non-negative code-point count or position.
pub(crate) fn count(v: &Json, field: &'static str) -> R<u64> {
    let i = integer(v, field)?;
    u64::try_from(i).map_err(|_| OpError::Invalid {
        field,
        reason: format!("{i} is negative"),
    })
}

/// A text item id `"agent:seq"`.
fn item_id(v: &Json, field: &'static str, lim: &Limits) -> R<ItemId> {
    match v {
        Json::String(s) => item_id_str(s, field, lim),
        other => Err(wrong(field, "a string", other)),
    }
}

/// A text item id `"agent:seq"`, from its string.
pub(crate) fn item_id_str(s: &str, field: &'static str, lim: &Limits) -> R<ItemId> {
    if s.len() > lim.max_string_bytes {
        return Err(OpError::TooLarge {
            field,
            what: "string length in bytes",
            limit: lim.max_string_bytes,
        });
    }
    ItemId::parse(s).ok_or_else(|| OpError::Invalid {
        field,
        reason: format!("{s:?} is not an item id \"agent:seq\""),
    })
}

/// The deleted ranges of a CRDT-form text op: `[[id, length], …]`.
pub(crate) fn delete_ranges(rm: &Json, lim: &Limits) -> R<Vec<DeleteRange>> {
    let arr = match rm {
        Json::Array(a) => a,
        other => return Err(wrong("rm", "an array of [id, length] pairs", other)),
    };
    if arr.len() > lim.max_collection_len {
        return Err(OpError::TooLarge {
            field: "rm",
            what: "array length",
            limit: lim.max_collection_len,
        });
    }
    arr.iter()
        .map(|pair| match pair {
            Json::Array(p) if p.len() == 2 => {
                let id = item_id(&p[0], "rm", lim)?;
                let len = count(&p[1], "rm")?;
                // The range's ids, `id.seq .. id.seq + len`, fit in the 32-bit counters.
                match u32::try_from(len)
                    .ok()
                    .filter(|&n| id.seq.checked_add(n).is_some())
                {
                    Some(len) => Ok(DeleteRange { id, len }),
                    None => Err(OpError::Invalid {
                        field: "rm",
                        reason: format!(
                            "{id} with length {len} runs past the last character id ({})",
                            u32::MAX
                        ),
                    }),
                }
            }
            other => Err(wrong("rm", "an [id, length] pair", other)),
        })
        .collect()
}

/// The text of a position-form insert: a string, or `[null, string]`.
fn insert_text(v: &Json, lim: &Limits) -> R<String> {
    match v {
        Json::Array(a) if a.len() == 2 && a[0].is_null() => string(&a[1], "value", lim),
        other => string(other, "value", lim),
    }
}

/// The payload of `text.insert` / `text.delete` / `text.replace`, in the form the
/// reference's dispatcher picks: the CRDT form when its fields are there, else the
/// position form.
fn text_edit(f: &OpFields, ot: &str, lim: &Limits) -> R<TextEdit> {
    let v = &f.value;
    let present = |x: &Option<Json>| x.as_ref().is_some_and(|j| !j.is_null());
    let wants_insert = ot != "text.delete";
    let wants_delete = ot != "text.insert";
    let crdt = if wants_insert {
        present(&f.id) && present(v) && present(&f.seq) && (!wants_delete || present(&f.rm))
    } else {
        present(&f.rm)
    };
    if crdt {
        let rm = if wants_delete {
            delete_ranges(req(&f.rm, "rm")?, lim)?
        } else {
            Vec::new()
        };
        let insert = if wants_insert {
            let pair = match req(v, "value")? {
                Json::Array(p) if p.len() == 2 => p,
                other => return Err(wrong("value", "an [anchor, content] pair", other)),
            };
            let anchor = match &pair[0] {
                Json::Null => None,
                a => Some(item_id(a, "value", lim)?),
            };
            let ts = match &f.ts {
                None | Some(Json::Null) => 0.0,
                Some(t) => number(t, "ts")?,
            };
            let op = InsertOp {
                id: item_id(req(&f.id, "id")?, "id", lim)?,
                anchor,
                content: string(&pair[1], "value", lim)?,
                lamport: count(req(&f.seq, "seq")?, "seq")?,
                ts,
            };
            insert_ids_fit(&op)?;
            Some(op)
        } else {
            None
        };
        return Ok(TextEdit::Crdt { rm, insert });
    }
    let position = count(req(&f.position, "position")?, "position")?;
    let length = if wants_delete {
        count(req(&f.length, "length")?, "length")?
    } else {
        0
    };
    let value = if wants_insert {
        insert_text(req(v, "value")?, lim)?
    } else {
        String::new()
    };
    Ok(TextEdit::At {
        position,
        length,
        value,
    })
}

fn parse_kind(f: &OpFields, key: &str, lim: &Limits) -> R<OpKind> {
    use OpKind::*;
    let ot = match &f.ot {
        None => return Err(OpError::MissingOt),
        Some(Json::String(s)) => s.as_str(),
        Some(other) => return Err(wrong("ot", "a string \"dtype.verb\"", other)),
    };
    let v = &f.value;
    let num = || number(req(v, "value")?, "value");
    let vec3 = || floats::<3>(req(v, "value")?, "value", "an array of 3 finite numbers");
    let quat = || {
        floats::<4>(
            req(v, "value")?,
            "value",
            "an array of 4 finite numbers [x, y, z, w]",
        )
    };
    let text = || req_string(v, "value", lim);
    let flag = || boolean(req(v, "value")?, "value");

    let kind = match ot {
        "number.set" => NumberSet(num()?),
        "number.add" => NumberAdd(num()?),
        "number.multiply" => NumberMultiply(num()?),
        "number.min" => NumberMin(num()?),
        "number.max" => NumberMax(num()?),
        "vector3.set" => Vector3Set(vec3()?),
        "vector3.add" => Vector3Add(vec3()?),
        "vector3.multiply" => Vector3Multiply(vec3()?),
        "vector3.applyQuaternion" => Vector3ApplyQuaternion(quat()?),
        "vector3.applyEuler" => Vector3ApplyEuler {
            angles: vec3()?,
            order: match &f.order {
                None => EulerOrder::Xyz,
                Some(Json::String(s)) => EulerOrder::parse(s).ok_or_else(|| OpError::Invalid {
                    field: "order",
                    reason: format!(
                        "unknown Euler order {s:?} (expected XYZ, YXZ, ZXY, ZYX, YZX or XZY)"
                    ),
                })?,
                Some(other) => return Err(wrong("order", "a string such as \"XYZ\"", other)),
            },
            intrinsic: match &f.intrinsic {
                None => true,
                Some(b) => boolean(b, "intrinsic")?,
            },
        },
        "euler.set" => EulerSet(vec3()?),
        "euler.add" => EulerAdd(vec3()?),
        "quaternion.set" => QuaternionSet(quat()?),
        "quaternion.multiply" => QuaternionMultiply(quat()?),
        "color.set" => ColorSet(text()?),
        "color.blend" => ColorBlend {
            value: text()?,
            alpha: match &f.alpha {
                None => 0.5,
                Some(a) => number(a, "alpha")?,
            },
        },
        "string.set" => StringSet(text()?),
        "string.concat" => StringConcat {
            value: text()?,
            separator: opt_string(&f.separator, "separator", lim)?.unwrap_or_default(),
        },
        "string.insert" => StringInsert {
            value: text()?,
            index: req_index(&f.index, "index")?,
        },
        "string.cut" => StringCut {
            from: req_index(&f.from, "from")?,
            to: req_index(&f.to, "to")?,
        },
        "string.replace" => StringReplace {
            from: req_index(&f.from, "from")?,
            to: req_index(&f.to, "to")?,
            value: text()?,
        },
        "string.move" => StringMove {
            from: req_index(&f.from, "from")?,
            to: req_index(&f.to, "to")?,
            index: req_index(&f.index, "index")?,
        },
        "boolean.set" => BooleanSet(flag()?),
        "boolean.or" => BooleanOr(flag()?),
        "boolean.and" => BooleanAnd(flag()?),
        "boolean.xor" => BooleanXor(flag()?),
        "array.set" => ArraySet(array(v, lim)?),
        "array.push" => ArrayPush(any_value(v, lim)?),
        "array.insert" => ArrayInsert {
            value: any_value(v, lim)?,
            index: req_index(&f.index, "index")?,
        },
        "array.remove" => {
            let index = opt_index(&f.index, "index")?;
            let value = match (v, index) {
                (Some(_), _) => Some(any_value(v, lim)?),
                (None, Some(_)) => None,
                (None, None) => return Err(OpError::MissingField("value (or index)")),
            };
            ArrayRemove { value, index }
        }
        "array.move" => ArrayMove {
            from: req_index(&f.from, "from")?,
            to: req_index(&f.to, "to")?,
        },
        "array.union" => ArrayUnion(array(v, lim)?),
        "object.set" => ObjectSet(object(v, lim)?),
        "object.update" => ObjectUpdate(object(v, lim)?),
        "object.merge" => ObjectMerge(object(v, lim)?),
        "object.remove" => ObjectRemove {
            field: opt_string(v, "value", lim)?,
        },
        "node.insert" => NodeInsert(node_spec(v, lim)?),
        "node.upsert" => NodeUpsert(node_spec(v, lim)?),
        "node.inset" => NodeInset(node_spec(v, lim)?),
        "node.remove" => match v {
            Some(Json::String(s)) => NodeRemove {
                node: s.clone(),
                form: NodeOpForm::Nested,
            },
            Some(other) => return Err(wrong("value", "the key of the node to remove", other)),
            None if !super::is_root_key(key) => NodeRemove {
                node: key.to_owned(),
                form: NodeOpForm::Flat,
            },
            None => return Err(OpError::MissingField("value (the node to remove)")),
        },
        "node.move" => match (v, &f.to) {
            (Some(Json::Object(m)), _) => {
                let field = |name: &'static str| match m.get(name.trim_start_matches("value.")) {
                    Some(Json::String(s)) => Ok(s.clone()),
                    Some(other) => Err(wrong(name, "a node key", other)),
                    None => Err(OpError::MissingField(name)),
                };
                NodeMove {
                    node: field("value.nodeKey")?,
                    new_parent: field("value.newParent")?,
                    to_path: None,
                    form: NodeOpForm::Nested,
                }
            }
            (Some(other), _) => {
                return Err(wrong("value", "an object {nodeKey, newParent}", other));
            }
            (None, Some(to)) => {
                if super::is_root_key(key) {
                    return Err(OpError::MissingField("key (the node to move)"));
                }
                NodeMove {
                    node: key.to_owned(),
                    new_parent: string(to, "to", lim)?,
                    to_path: opt_string(&f.to_path, "toPath", lim)?,
                    form: NodeOpForm::Flat,
                }
            }
            (None, None) => return Err(OpError::MissingField("value (or to)")),
        },
        "meta.undo" => MetaUndo {
            target: req_string(&f.target_msg_id, "targetMsgId", lim)?,
        },
        "meta.redo" => MetaRedo {
            target: req_string(&f.target_msg_id, "targetMsgId", lim)?,
        },
        "text.init" => TextInit(match v {
            None | Some(Json::Null) => String::new(),
            Some(x) => string(x, "value", lim)?,
        }),
        "text.insert" | "text.delete" | "text.replace" => {
            let edit = text_edit(f, ot, lim)?;
            match ot {
                "text.insert" => TextInsert(edit),
                "text.delete" => TextDelete(edit),
                _ => TextReplace(edit),
            }
        }
        other => return Err(OpError::UnknownOt(other.to_owned())),
    };
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Json) -> R<Op> {
        let f: OpFields = serde_json::from_value(v).map_err(|e| OpError::Invalid {
            field: "op",
            reason: e.to_string(),
        })?;
        parse_op(&f, &Limits::default())
    }

    #[test]
    fn both_spellings_of_ot() {
        let a = parse(json!({"ot": "number.add", "key": "n", "path": "x", "value": 2})).unwrap();
        let b = parse(json!({"otype": "number.add", "key": "n", "path": "x", "value": 2})).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.kind, OpKind::NumberAdd(2.0));
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse(json!({"ot": "vector3.set", "key": "n", "path": "p", "value": "abc"}))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("expected an array of 3 finite numbers"),
            "{e}"
        );
        let e = parse(json!({"ot": "vector3.set", "key": "n", "path": "p", "value": [1, 2]}))
            .unwrap_err();
        assert!(matches!(e, OpError::WrongType { field: "value", .. }));
        let e =
            parse(json!({"ot": "number.set", "key": "n", "path": "p", "value": true})).unwrap_err();
        assert!(matches!(e, OpError::WrongType { .. }));
        let e =
            parse(json!({"ot": "vector3.set", "key": "n", "path": "p", "value": [1e300, 0, 0]}))
                .unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }

    #[test]
    fn unknown_missing_and_unsupported() {
        assert_eq!(
            parse(json!({"ot": "number.frob", "key": "n", "path": "p", "value": 1})).unwrap_err(),
            OpError::UnknownOt("number.frob".into())
        );
        assert_eq!(parse(json!({"key": "n"})).unwrap_err(), OpError::MissingOt);
        assert_eq!(
            parse(json!({"ot": "number.set", "key": "n", "path": "p"})).unwrap_err(),
            OpError::MissingField("value")
        );
        assert_eq!(
            parse(json!({"ot": "number.set", "key": "n", "value": 1})).unwrap_err(),
            OpError::MissingField("path")
        );
        assert!(matches!(
            parse(json!({"ot": "text.insert", "key": "n", "path": "t", "value": "x"})),
            Err(OpError::MissingField("position"))
        ));
        assert!(matches!(
            parse(
                json!({"ot": "text.delete", "key": "n", "path": "t", "position": -1, "length": 1})
            ),
            Err(OpError::Invalid {
                field: "position",
                ..
            })
        ));
        assert!(matches!(
            parse(
                json!({"ot": "text.insert", "key": "n", "path": "t", "id": "nocolon",
                "value": [null, "x"], "seq": 1})
            ),
            Err(OpError::Invalid { field: "id", .. })
        ));
        let e = parse(json!({"ot": "vector3.applyEuler", "key": "n", "path": "d",
            "value": [0, 1, 0], "order": "QQQ"}))
        .unwrap_err();
        assert!(e.to_string().contains("unknown Euler order"), "{e}");
    }

    #[test]
    fn node_op_forms() {
        let nested = parse(json!({"ot": "node.move", "key": "old", "path": "children",
            "value": {"nodeKey": "c", "newParent": "p"}}))
        .unwrap();
        let flat =
            parse(json!({"ot": "node.move", "key": "c", "to": "p", "toPath": "children"})).unwrap();
        match (&nested.kind, &flat.kind) {
            (
                OpKind::NodeMove {
                    node: a,
                    new_parent: pa,
                    ..
                },
                OpKind::NodeMove {
                    node: b,
                    new_parent: pb,
                    ..
                },
            ) => {
                assert_eq!((a, pa), (b, pb));
            }
            other => panic!("{other:?}"),
        }
        let r1 = parse(json!({"ot": "node.remove", "key": "p", "path": "children", "value": "c"}))
            .unwrap();
        let r2 = parse(json!({"ot": "node.remove", "key": "c", "path": "."})).unwrap();
        assert!(matches!(&r1.kind, OpKind::NodeRemove { node, .. } if node == "c"));
        assert!(matches!(&r2.kind, OpKind::NodeRemove { node, .. } if node == "c"));
    }

    #[test]
    fn node_spec_splits_core_fields_from_props() {
        let op = parse(json!({"ot": "node.insert", "key": "", "path": "children",
            "value": {"key": "cube", "tag": "Mesh", "position": [0, 1, 0], "name": "C"}}))
        .unwrap();
        let OpKind::NodeInsert(spec) = op.kind else {
            panic!("not an insert")
        };
        assert_eq!(spec.key, "cube");
        assert_eq!(spec.tag.as_deref(), Some("Mesh"));
        assert_eq!(spec.name.as_deref(), Some("C"));
        assert_eq!(spec.props.keys().collect::<Vec<_>>(), vec!["position"]);
        assert!(parse(json!({"ot": "node.insert", "key": "", "value": {"tag": "x"}})).is_err());
    }

    #[test]
    fn limits_bound_depth_and_size() {
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        let e =
            parse(json!({"ot": "array.push", "key": "n", "path": "p", "value": deep})).unwrap_err();
        assert!(matches!(
            e,
            OpError::TooLarge {
                what: "nesting depth",
                ..
            }
        ));
    }

    #[test]
    fn from_op_round_trips() {
        let ops = [
            json!({"ot": "vector3.applyEuler", "key": "a", "path": "d", "value": [0.5, 1, 0], "order": "YXZ", "intrinsic": false}),
            json!({"ot": "color.blend", "key": "a", "path": "c", "value": "#00ff00", "alpha": 0.25}),
            json!({"ot": "string.move", "key": "a", "path": "s", "from": 0, "to": 5, "index": -1}),
            json!({"ot": "array.remove", "key": "a", "path": "s", "index": 2}),
            json!({"ot": "node.move", "key": "c", "to": "p", "toPath": "children"}),
            json!({"ot": "node.remove", "key": "c", "path": "."}),
            json!({"ot": "node.insert", "key": "", "path": "children", "value": {"key": "k", "tag": "T", "children": ["x"], "p": {"a": 1}}}),
            json!({"ot": "meta.undo", "key": "_meta", "path": "_meta", "targetMsgId": "m1"}),
            json!({"ot": "object.merge", "key": "a", "path": ".", "value": {"x": 1}}),
            json!({"ot": "text.init", "key": "a", "path": "t", "value": "hi"}),
            json!({"ot": "text.insert", "key": "a", "path": "t", "position": 2, "value": [null, "x"]}),
            json!({"ot": "text.delete", "key": "a", "path": "t", "position": 0, "length": 3}),
            json!({"ot": "text.replace", "key": "a", "path": "t", "position": 1, "length": 1, "value": "y"}),
            json!({"ot": "text.insert", "key": "a", "path": "t", "id": "bob:3", "value": ["a:b:1", "xyz"], "seq": 4, "ts": 1.5}),
            json!({"ot": "text.delete", "key": "a", "path": "t", "rm": [["bob:0", 2], ["al:7", 1]]}),
            json!({"ot": "text.replace", "key": "a", "path": "t", "rm": [["bob:0", 2]], "id": "bob:9", "value": [null, "q"], "seq": 5, "ts": 2}),
        ];
        for v in ops {
            let op = parse(v.clone()).unwrap();
            let back = parse_op(&OpFields::from_op(&op), &Limits::default()).unwrap();
            assert_eq!(op, back, "{v}");
        }
    }
}

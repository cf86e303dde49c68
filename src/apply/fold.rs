//! The semantics of every single-cell property op, as a pure function
//! `fold(op, current) → new value`.
//!
//! "current" is the cell's value before the op, `None` when absent; an absent cell
//! starts from the op's default (DESIGN.md §3). A current value of another type makes
//! an additive op a deterministic no-op ([`Fold::Keep`] with a warning); an LWW `set`
//! always produces its value (whether it *wins* is decided by the caller from stamps).
//!
//! String indices count Unicode code points. Index rules:
//! - a range bound (`from`, `to` of the string ops) that is negative counts from the
//!   end (`len + n`), then is clamped to `0..=len`;
//! - an element index (`array.remove`'s `index`, `array.move`'s `from`) that is
//!   negative counts from the end; out of range, the op does nothing and warns;
//! - an insertion point (`string.insert`, `array.insert`, the destination of a move)
//!   that is negative means `len + 1 + n` (so `-1` appends), then is clamped; a move's
//!   destination is counted in the sequence *after* the moved part was removed.
//!
//! Nothing here touches the graph; [`super`] reads the cell, calls [`fold`], writes back.

use std::borrow::Cow;

use crate::column::kernels::{
    euler_to_quat, quat_mul, rgb_blend, vec3_add, vec3_apply_quat, vec3_mul,
};
use crate::column::{Rgb, TextCell, Value, ValueRef};
use crate::error::WarningKind;
use crate::op::{Json, OpKind, TextEdit};

/// The outcome of folding one op into a cell.
#[derive(Debug, PartialEq)]
pub enum Fold {
    /// Write this value.
    Write(Value),
    /// Leave the cell as it is, for this reason.
    Keep(WarningKind),
}

/// Deep equality with numbers compared by value (`1 == 1.0`), never bool == number.
pub fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Merges `patch` into `base` recursively: where both hold an object under the same key
/// the objects merge, anything else is replaced by the patch's value.
pub fn deep_merge(base: &mut serde_json::Map<String, Json>, patch: &serde_json::Map<String, Json>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Json::Object(b)), Json::Object(p)) => deep_merge(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A range bound: negative counts from the end, then clamped to `0..=len`.
fn bound(i: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let j = if i < 0 { len_i.saturating_add(i) } else { i };
    usize::try_from(j.clamp(0, len_i)).unwrap_or(0)
}

/// Whether range bound `i` (negative counts from the end) lies in `0..=len` as given,
/// before [`bound`] clamps it.
fn in_bounds(i: i64, len: usize) -> bool {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let j = if i < 0 { len_i.saturating_add(i) } else { i };
    (0..=len_i).contains(&j)
}

/// An insertion point: negative `n` means `len + 1 + n`, then clamped to `0..=len`.
fn insertion(i: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let j = if i < 0 {
        len_i.saturating_add(1).saturating_add(i)
    } else {
        i
    };
    usize::try_from(j.clamp(0, len_i)).unwrap_or(0)
}

/// An element index: negative counts from the end; `None` when out of range.
fn element(i: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let j = if i < 0 { len_i.checked_add(i)? } else { i };
    (0..len_i)
        .contains(&j)
        .then(|| usize::try_from(j).ok())
        .flatten()
}

fn mismatch(ot: &'static str, path: &str, found: ValueRef<'_>) -> Fold {
    Fold::Keep(WarningKind::TypeMismatch {
        ot,
        path: path.to_owned(),
        found: found.type_name(),
    })
}

/// Reads the current value through a type view, with the op's default when absent.
fn current<'a, T>(
    cur: Option<ValueRef<'a>>,
    view: impl FnOnce(ValueRef<'a>) -> Option<T>,
    default: impl FnOnce() -> T,
) -> Result<T, ValueRef<'a>> {
    match cur {
        None => Ok(default()),
        Some(v) => view(v).ok_or(v),
    }
}

fn string_chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// Folds a single-cell property op into the current value. Node, meta and
/// whole-node object ops (`path == "."`) are not single-cell ops and must not come here.
pub fn fold(kind: &OpKind, path: &str, cur: Option<ValueRef<'_>>) -> Fold {
    use OpKind::*;
    let ot = kind.ot();
    macro_rules! typed {
        ($view:expr, $default:expr) => {
            match current(cur, $view, $default) {
                Ok(v) => v,
                Err(found) => return mismatch(ot, path, found),
            }
        };
    }
    let value = match kind {
        TextInit(_) | TextInsert(_) | TextDelete(_) | TextReplace(_) => {
            return Fold::Keep(WarningKind::Ignored(format!(
                "`{ot}` needs its message's stamp: apply it with `step`/`fold_text`"
            )));
        }
        NumberSet(x) => Value::Number(*x),
        NumberAdd(x) => Value::Number(typed!(ValueRef::as_number, || 0.0) + x),
        NumberMultiply(x) => Value::Number(typed!(ValueRef::as_number, || 1.0) * x),
        NumberMin(x) => Value::Number(typed!(ValueRef::as_number, || f64::INFINITY).min(*x)),
        NumberMax(x) => Value::Number(typed!(ValueRef::as_number, || f64::NEG_INFINITY).max(*x)),

        Vector3Set(v) | EulerSet(v) => Value::Vec3(*v),
        Vector3Add(v) | EulerAdd(v) => {
            Value::Vec3(vec3_add(typed!(ValueRef::as_vec3, || [0.0; 3]), *v))
        }
        Vector3Multiply(v) => Value::Vec3(vec3_mul(typed!(ValueRef::as_vec3, || [1.0; 3]), *v)),
        Vector3ApplyQuaternion(q) => {
            Value::Vec3(vec3_apply_quat(typed!(ValueRef::as_vec3, || [0.0; 3]), *q))
        }
        Vector3ApplyEuler {
            angles,
            order,
            intrinsic,
        } => {
            let v = typed!(ValueRef::as_vec3, || [0.0; 3]);
            Value::Vec3(vec3_apply_quat(
                v,
                euler_to_quat(*angles, *order, *intrinsic),
            ))
        }

        QuaternionSet(q) => Value::Quat(*q),
        QuaternionMultiply(q) => Value::Quat(quat_mul(
            typed!(ValueRef::as_quat, || [0.0, 0.0, 0.0, 1.0]),
            *q,
        )),

        ColorSet(s) => Value::color(s.clone()),
        ColorBlend { value, alpha } => {
            let c: Cow<'_, str> = typed!(ValueRef::as_str, || Cow::Borrowed(value.as_str()));
            let black = Rgb(0);
            let a = Rgb::parse(&c).unwrap_or(black);
            let b = Rgb::parse(value).unwrap_or(black);
            Value::Color(rgb_blend(a, b, *alpha))
        }

        StringSet(s) => Value::Str(s.clone()),
        StringConcat { value, separator } => {
            let c = typed!(ValueRef::as_str, || Cow::Borrowed(""));
            if c.is_empty() {
                Value::Str(value.clone())
            } else {
                Value::Str(format!("{c}{separator}{value}"))
            }
        }
        StringInsert { value, index } => {
            let mut s = string_chars(&typed!(ValueRef::as_str, || Cow::Borrowed("")));
            let at = insertion(*index, s.len());
            s.splice(at..at, value.chars());
            Value::Str(s.into_iter().collect())
        }
        StringCut { from, to } => {
            let mut s = string_chars(&typed!(ValueRef::as_str, || Cow::Borrowed("")));
            let (f, t) = (bound(*from, s.len()), bound(*to, s.len()));
            if f < t {
                s.drain(f..t);
            } else if cur.is_some()
                && let Some(index) = [*from, *to].into_iter().find(|&i| !in_bounds(i, s.len()))
            {
                // A range wholly outside the string cuts nothing: the op does nothing.
                // (On an absent property it still writes the default, "".)
                return Fold::Keep(WarningKind::OutOfRange {
                    ot,
                    path: path.to_owned(),
                    index,
                    len: s.len(),
                });
            }
            Value::Str(s.into_iter().collect())
        }
        StringReplace { from, to, value } => {
            let mut s = string_chars(&typed!(ValueRef::as_str, || Cow::Borrowed("")));
            let f = bound(*from, s.len());
            let t = bound(*to, s.len()).max(f);
            s.splice(f..t, value.chars());
            Value::Str(s.into_iter().collect())
        }
        StringMove { from, to, index } => {
            let mut s = string_chars(&typed!(ValueRef::as_str, || Cow::Borrowed("")));
            let f = bound(*from, s.len());
            let t = bound(*to, s.len()).max(f);
            let moved: Vec<char> = s.drain(f..t).collect();
            let at = insertion(*index, s.len());
            s.splice(at..at, moved);
            Value::Str(s.into_iter().collect())
        }

        BooleanSet(b) => Value::Bool(*b),
        BooleanOr(b) => Value::Bool(typed!(ValueRef::as_bool, || false) || *b),
        BooleanAnd(b) => Value::Bool(typed!(ValueRef::as_bool, || true) && *b),
        BooleanXor(b) => Value::Bool(typed!(ValueRef::as_bool, || false) ^ *b),

        ArraySet(a) => Value::Json(Json::Array(a.clone())),
        ArrayPush(v) => {
            let mut a = typed!(ValueRef::as_array, Vec::new);
            a.push(v.clone());
            Value::Json(Json::Array(a))
        }
        ArrayInsert { value, index } => {
            let mut a = typed!(ValueRef::as_array, Vec::new);
            let at = insertion(*index, a.len());
            a.insert(at, value.clone());
            Value::Json(Json::Array(a))
        }
        ArrayRemove { value, index } => {
            let mut a = typed!(ValueRef::as_array, Vec::new);
            match (index, value) {
                (Some(i), _) => match element(*i, a.len()) {
                    Some(at) => {
                        a.remove(at);
                    }
                    None => {
                        return Fold::Keep(WarningKind::OutOfRange {
                            ot,
                            path: path.to_owned(),
                            index: *i,
                            len: a.len(),
                        });
                    }
                },
                (None, Some(v)) => a.retain(|x| !json_eq(x, v)),
                (None, None) => {}
            }
            Value::Json(Json::Array(a))
        }
        ArrayMove { from, to } => {
            let mut a = typed!(ValueRef::as_array, Vec::new);
            let Some(f) = element(*from, a.len()) else {
                return Fold::Keep(WarningKind::OutOfRange {
                    ot,
                    path: path.to_owned(),
                    index: *from,
                    len: a.len(),
                });
            };
            let item = a.remove(f);
            let at = insertion(*to, a.len());
            a.insert(at, item);
            Value::Json(Json::Array(a))
        }
        ArrayUnion(items) => {
            let mut a = typed!(ValueRef::as_array, Vec::new);
            for it in items {
                if !a.iter().any(|x| json_eq(x, it)) {
                    a.push(it.clone());
                }
            }
            Value::Json(Json::Array(a))
        }

        ObjectSet(m) => Value::Json(Json::Object(m.clone())),
        ObjectUpdate(m) => {
            let mut o = typed!(
                |v: ValueRef<'_>| v.as_object().cloned(),
                serde_json::Map::new
            );
            for (k, v) in m {
                o.insert(k.clone(), v.clone());
            }
            Value::Json(Json::Object(o))
        }
        ObjectMerge(m) => {
            let mut o = typed!(
                |v: ValueRef<'_>| v.as_object().cloned(),
                serde_json::Map::new
            );
            deep_merge(&mut o, m);
            Value::Json(Json::Object(o))
        }

        ObjectRemove { .. }
        | NodeInsert(_)
        | NodeRemove { .. }
        | NodeUpsert(_)
        | NodeInset(_)
        | NodeMove { .. }
        | MetaUndo { .. }
        | MetaRedo { .. } => {
            return Fold::Keep(WarningKind::Ignored(format!(
                "`{ot}` is not a single-cell op"
            )));
        }
    };
    // A string op on a collaborative text shows its result but keeps the text's CRDT
    // (the reference keeps its rope beside the property).
    if let (Some(ValueRef::Text(t)), Value::Str(shown)) = (cur, &value)
        && matches!(
            kind,
            StringSet(_)
                | StringConcat { .. }
                | StringInsert { .. }
                | StringCut { .. }
                | StringReplace { .. }
                | StringMove { .. }
        )
    {
        return Fold::Write(Value::Text(Box::new(TextCell {
            doc: t.doc.clone(),
            shown: Some(shown.clone()),
        })));
    }
    Fold::Write(value)
}

/// A `text.*` op on a cell holding `cur`, made by `agent` in a message at Lamport time
/// `lt`: the cell's text (a new, empty one when the cell holds no text) with the op
/// applied, showing the text again.
///
/// Position-form ops are resolved against the text as it stands, as `agent`, with the
/// Lamport number the text gives and `lt` as the wall clock (deterministic, so every
/// replica resolves them alike). `text.delete` on a cell with no text does nothing, as
/// in the reference.
pub fn fold_text(kind: &OpKind, agent: &str, lt: u64, cur: Option<ValueRef<'_>>) -> Fold {
    let mut cell = match cur {
        Some(ValueRef::Text(t)) => t.clone(),
        _ if matches!(kind, OpKind::TextDelete(_)) => {
            return Fold::Keep(WarningKind::Ignored(
                "`text.delete` on a property with no text".into(),
            ));
        }
        _ => TextCell::default(),
    };
    apply_text(&mut cell, kind, agent, lt);
    Fold::Write(Value::Text(Box::new(cell)))
}

/// The CRDT form of a `text.init` with text or a position-form `text.insert`/`delete`/`replace` made by `agent`
/// at Lamport time `lt` on a cell holding `cur`: what applying it there does, as ids,
/// so that any replica (the Python reference included) integrates it alike. New ids
/// start at `min_seq` at least (see [`crate::text::TextDoc::insert_from`]). `None` for
/// other ops, ops already in CRDT form, and ops that change nothing.
pub fn resolve_text(
    kind: &OpKind,
    agent: &str,
    lt: u64,
    cur: Option<ValueRef<'_>>,
    min_seq: u32,
) -> Option<OpKind> {
    #[expect(clippy::cast_precision_loss, reason = "a Lamport time as a wall clock")]
    let ts = lt as f64;
    let empty = crate::text::TextDoc::new();
    // `text.init` with text prepends it: the same as a CRDT insert at the front (an
    // empty one only creates the text, and is sent as it is).
    if let OpKind::TextInit(value) = kind {
        let doc = match cur {
            Some(ValueRef::Text(t)) => &t.doc,
            _ => &empty,
        };
        let insert = doc.plan_insert(agent, 0, value, ts, min_seq)?;
        return Some(OpKind::TextInsert(TextEdit::Crdt {
            rm: Vec::new(),
            insert: Some(insert),
        }));
    }
    let (OpKind::TextInsert(TextEdit::At {
        position,
        length,
        value,
    })
    | OpKind::TextDelete(TextEdit::At {
        position,
        length,
        value,
    })
    | OpKind::TextReplace(TextEdit::At {
        position,
        length,
        value,
    })) = kind
    else {
        return None;
    };
    let doc = match cur {
        Some(ValueRef::Text(t)) => &t.doc,
        _ if matches!(kind, OpKind::TextDelete(_)) => return None,
        _ => &empty,
    };
    let at = |p: u64| usize::try_from(p).unwrap_or(usize::MAX);
    // Read-only: what deleting then inserting would send (the delete changes neither
    // the anchor before `position`, nor the Lamport number, nor the agent's next id).
    let rm = if *length > 0 {
        doc.plan_delete(at(*position), at(*length))
    } else {
        Vec::new()
    };
    let insert = doc.plan_insert(agent, at(*position), value, ts, min_seq);
    if rm.is_empty() && insert.is_none() {
        return None; // Changes nothing: the position form says so as well.
    }
    let edit = TextEdit::Crdt { rm, insert };
    Some(match kind {
        OpKind::TextInsert(_) => OpKind::TextInsert(edit),
        OpKind::TextDelete(_) => OpKind::TextDelete(edit),
        _ => OpKind::TextReplace(edit),
    })
}

/// Applies a `text.*` op to `cell` in place (see [`fold_text`]).
pub fn apply_text(cell: &mut TextCell, kind: &OpKind, agent: &str, lt: u64) {
    #[expect(clippy::cast_precision_loss, reason = "a Lamport time as a wall clock")]
    let ts = lt as f64;
    let doc = &mut cell.doc;
    let at = |p: u64| usize::try_from(p).unwrap_or(usize::MAX);
    match kind {
        OpKind::TextInit(value) => {
            doc.insert(agent, 0, value, ts);
        }
        OpKind::TextInsert(e) | OpKind::TextDelete(e) | OpKind::TextReplace(e) => match e {
            TextEdit::At {
                position,
                length,
                value,
            } => {
                if *length > 0 {
                    doc.delete(at(*position), at(*length));
                }
                doc.insert(agent, at(*position), value, ts);
            }
            TextEdit::Crdt { rm, insert } => {
                if !rm.is_empty() {
                    doc.apply_delete(rm);
                }
                if let Some(op) = insert {
                    doc.apply_insert(op);
                }
            }
        },
        _ => return,
    }
    cell.shown = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(kind: OpKind, cur: Option<Value>) -> Fold {
        fold(&kind, "p", cur.as_ref().map(Value::as_ref))
    }

    fn write(kind: OpKind, cur: Option<Value>) -> Value {
        match run(kind, cur) {
            Fold::Write(v) => v,
            Fold::Keep(w) => panic!("kept: {w}"),
        }
    }

    fn s(x: &str) -> Option<Value> {
        Some(Value::Str(x.into()))
    }

    fn arr(v: Json) -> Option<Value> {
        Some(Value::Json(v))
    }

    #[test]
    fn defaults_on_absent_cells() {
        assert_eq!(write(OpKind::NumberAdd(2.0), None), Value::Number(2.0));
        assert_eq!(write(OpKind::NumberMultiply(2.0), None), Value::Number(2.0));
        assert_eq!(write(OpKind::NumberMin(5.0), None), Value::Number(5.0));
        assert_eq!(write(OpKind::NumberMax(-5.0), None), Value::Number(-5.0));
        assert_eq!(
            write(OpKind::Vector3Add([1.0, 2.0, 3.0]), None),
            Value::Vec3([1.0, 2.0, 3.0])
        );
        assert_eq!(
            write(OpKind::Vector3Multiply([2.0; 3]), None),
            Value::Vec3([2.0; 3])
        );
        assert_eq!(
            write(OpKind::QuaternionMultiply([0.0, 1.0, 0.0, 0.0]), None),
            Value::Quat([0.0, 1.0, 0.0, 0.0])
        );
        assert_eq!(write(OpKind::BooleanOr(false), None), Value::Bool(false));
        assert_eq!(write(OpKind::BooleanAnd(true), None), Value::Bool(true));
        assert_eq!(write(OpKind::BooleanXor(true), None), Value::Bool(true));
        assert_eq!(
            write(
                OpKind::StringConcat {
                    value: "a".into(),
                    separator: "\n".into()
                },
                None
            ),
            Value::Str("a".into())
        );
        assert_eq!(
            write(
                OpKind::ArrayRemove {
                    value: Some(json!(1)),
                    index: None
                },
                None
            ),
            Value::Json(json!([]))
        );
        assert_eq!(
            write(OpKind::ObjectMerge(Default::default()), None),
            Value::Json(json!({}))
        );
        assert_eq!(
            write(OpKind::Vector3ApplyQuaternion([0.0, 0.0, 0.0, 1.0]), None),
            Value::Vec3([0.0; 3])
        );
    }

    #[test]
    fn seed_move_examples() {
        let abcd = || arr(json!(["a", "b", "c", "d"]));
        for to in [2, -2] {
            assert_eq!(
                write(OpKind::ArrayMove { from: 0, to }, abcd()),
                Value::Json(json!(["b", "c", "a", "d"])),
                "to {to}"
            );
        }
        for index in [6, -1] {
            assert_eq!(
                write(
                    OpKind::StringMove {
                        from: 0,
                        to: 5,
                        index
                    },
                    s("Hello World")
                ),
                Value::Str(" WorldHello".into()),
                "index {index}"
            );
        }
    }

    #[test]
    fn string_ops_count_code_points() {
        assert_eq!(
            write(
                OpKind::StringInsert {
                    value: "é".into(),
                    index: 1
                },
                s("añb")
            ),
            Value::Str("aéñb".into())
        );
        assert_eq!(
            write(OpKind::StringCut { from: 1, to: 2 }, s("añb")),
            Value::Str("ab".into())
        );
        assert_eq!(
            write(
                OpKind::StringReplace {
                    from: 0,
                    to: 5,
                    value: "Hi".into()
                },
                s("Hello World")
            ),
            Value::Str("Hi World".into())
        );
        assert_eq!(
            write(
                OpKind::StringInsert {
                    value: "!".into(),
                    index: -1
                },
                s("abc")
            ),
            Value::Str("abc!".into())
        );
        assert_eq!(
            write(OpKind::StringCut { from: -3, to: 99 }, s("abcdef")),
            Value::Str("abc".into())
        );
        // A range wholly outside the string cuts nothing and says so; an empty or
        // inverted range inside it is a plain no-op write.
        for (from, to, index) in [(5, 9, 5), (3, 9, 9), (-9, -7, -9)] {
            assert!(
                matches!(
                    run(OpKind::StringCut { from, to }, s("abc")),
                    Fold::Keep(WarningKind::OutOfRange { ot: "string.cut", index: i, len: 3, .. }) if i == index
                ),
                "{from}..{to}"
            );
        }
        for (from, to) in [(1, 1), (2, 1), (3, 3)] {
            assert_eq!(
                write(OpKind::StringCut { from, to }, s("abc")),
                Value::Str("abc".into())
            );
        }
        // On an absent property the cut writes the default, as the other string ops do.
        assert_eq!(
            write(OpKind::StringCut { from: 2, to: 5 }, None),
            Value::Str(String::new())
        );
        assert_eq!(
            write(
                OpKind::StringConcat {
                    value: "b".into(),
                    separator: "-".into()
                },
                s("a")
            ),
            Value::Str("a-b".into())
        );
    }

    #[test]
    fn array_ops() {
        assert_eq!(
            write(
                OpKind::ArrayUnion(vec![json!(2), json!(3), json!(3)]),
                arr(json!([1, 2, 2]))
            ),
            Value::Json(json!([1, 2, 2, 3]))
        );
        assert_eq!(
            write(
                OpKind::ArrayRemove {
                    value: Some(json!({"a": 1})),
                    index: None
                },
                arr(json!([{"a": 1.0}, 2, {"a": 1}]))
            ),
            Value::Json(json!([2]))
        );
        assert_eq!(
            write(
                OpKind::ArrayRemove {
                    value: None,
                    index: Some(-1)
                },
                arr(json!([1, 2, 3]))
            ),
            Value::Json(json!([1, 2]))
        );
        assert!(matches!(
            run(
                OpKind::ArrayRemove {
                    value: None,
                    index: Some(5)
                },
                arr(json!([1]))
            ),
            Fold::Keep(WarningKind::OutOfRange { .. })
        ));
        assert_eq!(
            write(
                OpKind::ArrayInsert {
                    value: json!("x"),
                    index: 1
                },
                arr(json!([1, 2]))
            ),
            Value::Json(json!([1, "x", 2]))
        );
        // A vector is an array of 3 numbers: push makes it a 4-element array.
        assert_eq!(
            write(
                OpKind::ArrayPush(json!(4)),
                Some(Value::Vec3([1.0, 2.0, 0.5]))
            ),
            Value::Json(json!([1, 2, 0.5, 4]))
        );
    }

    #[test]
    fn colour_blend() {
        assert_eq!(
            write(
                OpKind::ColorBlend {
                    value: "#0000ff".into(),
                    alpha: 0.5
                },
                s("#FF0000")
            ),
            Value::Color(Rgb(0x80_00_80))
        );
        // Absent: blends the value with itself (lower-cased).
        assert_eq!(
            write(
                OpKind::ColorBlend {
                    value: "#FF0000".into(),
                    alpha: 0.5
                },
                None
            ),
            Value::Color(Rgb(0xff_00_00))
        );
        // Unparseable counts as black.
        assert_eq!(
            write(
                OpKind::ColorBlend {
                    value: "#020202".into(),
                    alpha: 0.5
                },
                s("red")
            ),
            Value::Color(Rgb(0x01_01_01))
        );
        assert_eq!(
            write(OpKind::ColorSet("#FF0000".into()), None),
            Value::Str("#FF0000".into())
        );
    }

    #[test]
    fn additive_on_other_type_is_a_noop() {
        assert!(matches!(
            run(OpKind::NumberAdd(1.0), s("x")),
            Fold::Keep(WarningKind::TypeMismatch {
                found: "string",
                ..
            })
        ));
        assert!(matches!(
            run(OpKind::Vector3Add([1.0; 3]), Some(Value::Quat([0.0; 4]))),
            Fold::Keep(_)
        ));
        assert!(matches!(
            run(OpKind::BooleanOr(true), Some(Value::Number(1.0))),
            Fold::Keep(_)
        ));
        assert!(matches!(
            run(OpKind::ArrayPush(json!(1)), s("abc")),
            Fold::Keep(_)
        ));
        // An LWW set of another type replaces the value.
        assert_eq!(write(OpKind::NumberSet(1.0), s("x")), Value::Number(1.0));
    }

    #[test]
    fn deep_merge_merges_nested_objects_only() {
        let cur = arr(json!({"a": {"x": 1, "y": 2}, "b": [1], "c": 1}));
        let patch = json!({"a": {"y": 3, "z": 4}, "b": [2], "d": {"e": 1}});
        let Json::Object(p) = patch else {
            unreachable!()
        };
        assert_eq!(
            write(OpKind::ObjectMerge(p), cur),
            Value::Json(json!({"a": {"x": 1, "y": 3, "z": 4}, "b": [2], "c": 1, "d": {"e": 1}}))
        );
    }
}

//! The decode-side shape of an op: [`WireOp`], read straight from the input bytes.
//!
//! [`crate::op::OpFields`] holds every field as a [`Json`] value, which costs an
//! allocation per string and per array. [`WireOp`] borrows strings from the input
//! ([`Field::Str`]) and keeps arrays of up to four numbers inline ([`Field::Nums`]), so
//! the common ops (`number.*`, `vector3.*`, `euler.*`, `quaternion.*`, `boolean.*`,
//! `color.set`, `string.set`) become typed [`Op`]s with no intermediate allocation
//! ([`WireOp::into_op`]).
//!
//! Invariant: [`WireOp::into_op`] gives exactly what [`parse_op_taking`] gives on the
//! same op read as [`OpFields`] ([`WireOp::into_fields`]): the fast path accepts only
//! inputs that pass every check of the slow path and otherwise hands over to it, so
//! errors are always the slow path's (tested below).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::error::OpError;
use crate::op::parse::{
    count, delete_ranges, insert_ids_fit, item_id_str, number as parse_number, parse_op_taking,
};
use crate::op::{Json, Limits, Op, OpFields, OpKind, TextEdit};
use crate::text::InsertOp;

/// One field value as read from the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'a> {
    /// A string, borrowed from the input when it has no escapes.
    Str(Cow<'a, str>),
    /// An array of at most four numbers, inline.
    Nums([Number; 4], u8),
    /// Anything else (scalars cost no allocation here).
    Json(Json),
}

impl Field<'_> {
    /// The field as a JSON value (what the slow path reads).
    pub(crate) fn into_json(self) -> Json {
        match self {
            Field::Str(s) => Json::String(s.into_owned()),
            Field::Nums(xs, n) => Json::Array(
                xs.into_iter()
                    .take(usize::from(n))
                    .map(Json::Number)
                    .collect(),
            ),
            Field::Json(v) => v,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// An array element: a number kept inline, or any other value.
enum Elem {
    Num(Number),
    Other(Json),
}

impl<'de> Deserialize<'de> for Elem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_u64<E>(self, x: u64) -> Result<Elem, E> {
                Ok(Elem::Num(x.into()))
            }
            fn visit_i64<E>(self, x: i64) -> Result<Elem, E> {
                Ok(Elem::Num(x.into()))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Elem, E> {
                Ok(Number::from_f64(x).map_or(Elem::Other(Json::Null), Elem::Num))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Elem, E> {
                Ok(Elem::Other(Json::Bool(b)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Elem, E> {
                Ok(Elem::Other(Json::String(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Elem, E> {
                Ok(Elem::Other(Json::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Elem, E> {
                Ok(Elem::Other(Json::Null))
            }
            fn visit_none<E>(self) -> Result<Elem, E> {
                Ok(Elem::Other(Json::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Elem, D::Error> {
                Elem::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Elem, A::Error> {
                Json::deserialize(SeqAccessDeserializer::new(seq)).map(Elem::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Elem, A::Error> {
                Json::deserialize(MapAccessDeserializer::new(map)).map(Elem::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s)))
            }
            fn visit_u64<E>(self, x: u64) -> Result<Field<'de>, E> {
                Ok(Field::Json(Json::Number(x.into())))
            }
            fn visit_i64<E>(self, x: i64) -> Result<Field<'de>, E> {
                Ok(Field::Json(Json::Number(x.into())))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Field<'de>, E> {
                Ok(Field::Json(
                    Number::from_f64(x).map_or(Json::Null, Json::Number),
                ))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Field<'de>, E> {
                Ok(Field::Json(Json::Bool(b)))
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Json(Json::Null))
            }
            fn visit_none<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Json(Json::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
                Field::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                let mut nums: [Number; 4] = std::array::from_fn(|_| Number::from(0u8));
                let mut n = 0u8;
                let mut rest: Option<Vec<Json>> = None;
                while let Some(e) = seq.next_element::<Elem>()? {
                    match (&mut rest, e) {
                        (None, Elem::Num(x)) if n < 4 => {
                            nums[usize::from(n)] = x;
                            n += 1;
                        }
                        (None, e) => {
                            let mut v: Vec<Json> = nums
                                .iter()
                                .take(usize::from(n))
                                .cloned()
                                .map(Json::Number)
                                .collect();
                            v.push(elem_json(e));
                            rest = Some(v);
                        }
                        (Some(v), e) => v.push(elem_json(e)),
                    }
                }
                Ok(match rest {
                    Some(v) => Field::Json(Json::Array(v)),
                    None => Field::Nums(nums, n),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
                Json::deserialize(MapAccessDeserializer::new(map)).map(Field::Json)
            }
        }
        d.deserialize_any(V)
    }
}

fn elem_json(e: Elem) -> Json {
    match e {
        Elem::Num(x) => Json::Number(x),
        Elem::Other(v) => v,
    }
}

/// Deserializes a present field as `Some`, even when it is `null`.
fn present<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Field<'a>>, D::Error> {
    Field::deserialize(d).map(Some)
}

/// An op as read from the input; see the module doc. The fields the fast path never
/// reads are boxed: they are rare, and a small struct is cheap to move.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireOp<'a> {
    #[serde(alias = "otype", borrow)]
    ot: Option<Field<'a>>,
    #[serde(borrow)]
    key: Option<Field<'a>>,
    #[serde(borrow)]
    path: Option<Field<'a>>,
    #[serde(borrow, deserialize_with = "present")]
    value: Option<Field<'a>>,
    separator: Option<Box<Json>>,
    alpha: Option<Box<Json>>,
    index: Option<Box<Json>>,
    from: Option<Box<Json>>,
    to: Option<Box<Json>>,
    order: Option<Box<Json>>,
    intrinsic: Option<Box<Json>>,
    #[serde(rename = "toPath")]
    to_path: Option<Box<Json>>,
    #[serde(rename = "targetMsgId")]
    target_msg_id: Option<Box<Json>>,
    #[serde(borrow)]
    id: Option<Field<'a>>,
    #[serde(borrow)]
    seq: Option<Field<'a>>,
    #[serde(borrow)]
    ts: Option<Field<'a>>,
    rm: Option<Box<Json>>,
    position: Option<Box<Json>>,
    length: Option<Box<Json>>,
}

/// The `N` numbers of `f` as finite `f32`s, if it is exactly that.
fn floats<const N: usize>(f: Option<&Field>) -> Option<[f32; N]> {
    let Some(Field::Nums(xs, n)) = f else {
        return None;
    };
    if usize::from(*n) != N {
        return None;
    }
    let mut out = [0.0f32; N];
    for (slot, x) in out.iter_mut().zip(xs) {
        let x = x.as_f64().filter(|x| x.is_finite())?;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "payloads are f32 by design (checked finite below)"
        )]
        let y = x as f32;
        if !y.is_finite() {
            return None;
        }
        *slot = y;
    }
    Some(out)
}

fn number(f: Option<&Field>) -> Option<f64> {
    match f {
        Some(Field::Json(Json::Number(n))) => n.as_f64().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn boolean(f: Option<&Field>) -> Option<bool> {
    match f {
        Some(Field::Json(Json::Bool(b))) => Some(*b),
        _ => None,
    }
}

impl<'a> WireOp<'a> {
    /// The op as [`OpFields`] (for the slow path).
    pub(crate) fn into_fields(self) -> OpFields {
        let j = |f: Option<Field>| f.map(Field::into_json);
        OpFields {
            ot: j(self.ot),
            key: j(self.key),
            path: j(self.path),
            value: j(self.value),
            separator: self.separator.map(|b| *b),
            alpha: self.alpha.map(|b| *b),
            index: self.index.map(|b| *b),
            from: self.from.map(|b| *b),
            to: self.to.map(|b| *b),
            order: self.order.map(|b| *b),
            intrinsic: self.intrinsic.map(|b| *b),
            to_path: self.to_path.map(|b| *b),
            target_msg_id: self.target_msg_id.map(|b| *b),
            id: j(self.id),
            seq: j(self.seq),
            ts: j(self.ts),
            rm: self.rm.map(|b| *b),
            position: self.position.map(|b| *b),
            length: self.length.map(|b| *b),
        }
    }

    /// True when only `ot`, `key`, `path` and `value` are present (the fast path's
    /// ops take no other field, and another field may change the result).
    fn is_plain(&self) -> bool {
        self.separator.is_none()
            && self.alpha.is_none()
            && self.index.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.order.is_none()
            && self.intrinsic.is_none()
            && self.to_path.is_none()
            && self.target_msg_id.is_none()
            && self.id.is_none()
            && self.seq.is_none()
            && self.ts.is_none()
            && self.rm.is_none()
            && self.position.is_none()
            && self.length.is_none()
    }

    /// The typed op without building [`OpFields`], or `None` for the slow path.
    fn fast_kind(&self, lim: &Limits) -> Option<OpKind> {
        use OpKind::*;
        if !self.is_plain() {
            return None;
        }
        let v = self.value.as_ref();
        let text = || match v {
            Some(Field::Str(s)) if s.len() <= lim.max_string_bytes => Some(s.clone().into_owned()),
            _ => None,
        };
        Some(match self.ot.as_ref()?.as_str()? {
            "number.set" => NumberSet(number(v)?),
            "number.add" => NumberAdd(number(v)?),
            "number.multiply" => NumberMultiply(number(v)?),
            "number.min" => NumberMin(number(v)?),
            "number.max" => NumberMax(number(v)?),
            "vector3.set" => Vector3Set(floats(v)?),
            "vector3.add" => Vector3Add(floats(v)?),
            "vector3.multiply" => Vector3Multiply(floats(v)?),
            "vector3.applyQuaternion" => Vector3ApplyQuaternion(floats(v)?),
            "euler.set" => EulerSet(floats(v)?),
            "euler.add" => EulerAdd(floats(v)?),
            "quaternion.set" => QuaternionSet(floats(v)?),
            "quaternion.multiply" => QuaternionMultiply(floats(v)?),
            "boolean.set" => BooleanSet(boolean(v)?),
            "boolean.or" => BooleanOr(boolean(v)?),
            "boolean.and" => BooleanAnd(boolean(v)?),
            "boolean.xor" => BooleanXor(boolean(v)?),
            "color.set" => ColorSet(text()?),
            "string.set" => StringSet(text()?),
            _ => return None,
        })
    }

    /// `text.insert` / `text.delete` in CRDT form with exactly the fields peers send
    /// (`id`, `value: [anchor, content]`, `seq`, optional `ts`; or `rm`), all valid: the
    /// typed op without building [`OpFields`]. `None` for anything else, changing
    /// nothing (the slow path decides and reports).
    fn fast_text(&mut self, lim: &Limits) -> Option<OpKind> {
        let insert = match self.ot.as_ref()?.as_str()? {
            "text.insert" => true,
            "text.delete" => false,
            _ => return None,
        };
        let others = self.separator.is_some()
            || self.alpha.is_some()
            || self.index.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.order.is_some()
            || self.intrinsic.is_some()
            || self.to_path.is_some()
            || self.target_msg_id.is_some()
            || self.position.is_some()
            || self.length.is_some();
        if others {
            return None;
        }
        if !insert {
            if self.id.is_some() || self.seq.is_some() || self.ts.is_some() || self.value.is_some()
            {
                return None;
            }
            let rm = delete_ranges(self.rm.as_deref()?, lim).ok()?;
            return Some(OpKind::TextDelete(TextEdit::Crdt { rm, insert: None }));
        }
        if self.rm.is_some() {
            return None;
        }
        let id = item_id_str(self.id.as_ref()?.as_str()?, "id", lim).ok()?;
        let lamport = match self.seq.as_ref()? {
            Field::Json(j) => count(j, "seq").ok()?,
            _ => return None,
        };
        let ts = match &self.ts {
            None | Some(Field::Json(Json::Null)) => 0.0,
            Some(Field::Json(j)) => parse_number(j, "ts").ok()?,
            Some(_) => return None,
        };
        let Some(Field::Json(Json::Array(pair))) = &mut self.value else {
            return None;
        };
        let [anchor, Json::String(content)] = pair.as_mut_slice() else {
            return None;
        };
        if content.len() > lim.max_string_bytes {
            return None;
        }
        let anchor = match anchor {
            Json::Null => None,
            Json::String(a) => Some(item_id_str(a, "value", lim).ok()?),
            _ => return None,
        };
        let op = InsertOp {
            id,
            anchor,
            content: std::mem::take(content),
            lamport,
            ts,
        };
        if insert_ids_fit(&op).is_err() {
            // Hand the content back: the slow path reports the error.
            *content = op.content;
            return None;
        }
        Some(OpKind::TextInsert(TextEdit::Crdt {
            rm: Vec::new(),
            insert: Some(op),
        }))
    }

    /// Validates the op (see [`parse_op_taking`]). On error, also returns the `ot`.
    pub(crate) fn into_op(mut self, lim: &Limits) -> Result<Op, (Option<String>, OpError)> {
        let short = |f: &Option<Field>| match f {
            Some(Field::Str(s)) if s.len() <= lim.max_string_bytes => Some(()),
            _ => None,
        };
        let plain = short(&self.key).is_some() && short(&self.path).is_some();
        let fast = if plain {
            self.fast_text(lim).or_else(|| self.fast_kind(lim))
        } else {
            None
        };
        if let Some(kind) = fast {
            let s = |f: Option<Field>| match f {
                Some(Field::Str(s)) => s.into_owned(),
                _ => String::new(),
            };
            return Ok(Op {
                key: s(self.key),
                path: s(self.path),
                kind,
            });
        }
        let mut f = self.into_fields();
        parse_op_taking(&mut f, lim).map_err(|e| (crate::op::parse::ot_of(&f), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fast = Result<Op, (Option<String>, OpError)>;

    /// Both paths on one op given as JSON text.
    fn both(op: &str) -> (Fast, Result<Op, OpError>) {
        let lim = Limits::default();
        let fast: WireOp = serde_json::from_str(op).unwrap();
        let slow: OpFields = serde_json::from_str(op).unwrap();
        (fast.into_op(&lim), parse_op_taking(&mut slow.clone(), &lim))
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        for op in [
            r#"{"ot":"vector3.set","key":"a","path":"position","value":[1,2.5,-3]}"#,
            r#"{"ot":"vector3.set","key":"a","path":"position","value":[1,2]}"#,
            r#"{"ot":"vector3.set","key":"a","path":"position","value":[1,2,3,4]}"#,
            r#"{"ot":"vector3.set","key":"a","path":"position","value":[1,2,"x"]}"#,
            r#"{"ot":"vector3.set","key":"a","path":"position","value":[1,2,1e300]}"#,
            r#"{"ot":"quaternion.multiply","key":"a","path":"r","value":[0,0,0,1]}"#,
            r#"{"ot":"quaternion.multiply","key":"a","path":"r","value":[0,0,0,1,5,6]}"#,
            r#"{"ot":"number.add","key":"a","path":"hp","value":-2}"#,
            r#"{"ot":"number.add","key":"a","path":"hp","value":"2"}"#,
            r#"{"ot":"number.add","key":"a","path":"hp"}"#,
            r#"{"ot":"number.add","key":"a","path":"hp","value":null}"#,
            r#"{"otype":"number.set","key":"a","path":"hp","value":1.5}"#,
            r#"{"ot":"number.set","key":"a","value":1.5}"#,
            r#"{"ot":"number.set","key":7,"path":"hp","value":1.5}"#,
            r#"{"ot":"boolean.xor","key":"a","path":"on","value":true}"#,
            r##"{"ot":"color.set","key":"a","path":"c","value":"#ff0000"}"##,
            r#"{"ot":"string.set","key":"a","path":"s","value":"caf\u00e9"}"#,
            r#"{"ot":"vector3.applyEuler","key":"a","path":"p","value":[0,1,0],"order":"ZYX"}"#,
            r#"{"ot":"array.push","key":"a","path":"l","value":[1,[2],{"x":3}]}"#,
            r#"{"ot":"node.insert","key":"","value":{"key":"n","tag":"Mesh","position":[1,2,3]}}"#,
            r#"{"ot":"number.set","key":"a","path":"hp","value":1,"index":2}"#,
            r#"{"ot":7,"key":"a","path":"hp","value":1}"#,
            r#"{"key":"a","path":"hp","value":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":["a:b:1","xyz"],"seq":4,"ts":1.5}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":[null,"xyz"],"seq":4}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":[null,"xyz"],"seq":4,"ts":null}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":[null,"x"],"seq":4.0,"ts":2}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":[null,"x"],"seq":-1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":[null,"x"],"seq":1,"ts":"x"}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"nocolon","value":[null,"x"],"seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":7,"value":[null,"x"],"seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":["bad","x"],"seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":[null,5],"seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":[null],"seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":"x","seq":1}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":[null,"x"]}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","id":"b:1","value":[null,"x"],"seq":1,"rm":[]}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","position":2,"value":"x"}"#,
            r#"{"ot":"text.insert","key":"a","path":"t","position":2,"value":"x","id":"b:1","seq":1}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["bob:0",2],["al:7",1]]}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["bob:0",-2]]}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["bob:0",5000000000]]}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["bob",1]]}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":"x"}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":null,"position":0,"length":1}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["b:0",1]],"id":"b:1"}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","position":0,"length":1}"#,
            r#"{"ot":"text.replace","key":"a","path":"t","rm":[["b:0",1]],"id":"b:9","value":[null,"q"],"seq":5,"ts":2}"#,
            r#"{"ot":"text.insert","path":"t","id":"b:1","value":[null,"x"],"seq":1}"#,
        ] {
            let (fast, slow) = both(op);
            match (fast, slow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{op}"),
                (Err((_, a)), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{op}"),
                (a, b) => panic!("{op}: fast {a:?} vs slow {b:?}"),
            }
        }
    }

    #[test]
    fn crdt_text_ops_take_the_fast_path() {
        let lim = Limits::default();
        for op in [
            r#"{"ot":"text.insert","key":"a","path":"t","id":"bob:3","value":["a:1","xyz"],"seq":4,"ts":1.5}"#,
            r#"{"ot":"text.delete","key":"a","path":"t","rm":[["bob:0",2]]}"#,
        ] {
            let mut w: WireOp = serde_json::from_str(op).unwrap();
            assert!(w.fast_text(&lim).is_some(), "{op}");
        }
    }

    #[test]
    fn arrays_keep_every_element() {
        let f: Field = serde_json::from_str(r#"[1, 2, 3, 4, 5, "x", [6]]"#).unwrap();
        assert_eq!(f.into_json(), serde_json::json!([1, 2, 3, 4, 5, "x", [6]]));
        let f: Field = serde_json::from_str("[1.5, -2]").unwrap();
        assert_eq!(f.into_json(), serde_json::json!([1.5, -2]));
    }

    #[test]
    fn strings_are_borrowed_when_possible() {
        let f: Field = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(f, Field::Str(Cow::Borrowed("plain"))));
        let f: Field = serde_json::from_str(r#""esc\"aped""#).unwrap();
        assert!(matches!(f, Field::Str(Cow::Owned(_))));
    }
}

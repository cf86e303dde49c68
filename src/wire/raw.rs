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
use crate::op::parse::parse_op_taking;
use crate::op::{Json, Limits, Op, OpFields, OpKind};

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
    id: Option<Box<Json>>,
    seq: Option<Box<Json>>,
    ts: Option<Box<Json>>,
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
            id: self.id.map(|b| *b),
            seq: self.seq.map(|b| *b),
            ts: self.ts.map(|b| *b),
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

    /// Validates the op (see [`parse_op_taking`]). On error, also returns the `ot`.
    pub(crate) fn into_op(self, lim: &Limits) -> Result<Op, (Option<String>, OpError)> {
        let short = |f: &Option<Field>| match f {
            Some(Field::Str(s)) if s.len() <= lim.max_string_bytes => Some(()),
            _ => None,
        };
        if short(&self.key).is_some()
            && short(&self.path).is_some()
            && let Some(kind) = self.fast_kind(lim)
        {
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

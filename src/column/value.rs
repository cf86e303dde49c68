//! Property values: [`Value`] (owned, written into a column) and [`ValueRef`] (borrowed,
//! read out of one), plus their JSON forms.
//!
//! The variant is the storage *kind* ([`Kind`]): a value written by `vector3.*` lives
//! in the `f32x3` column, a `#rrggbb` written by `color.*` as packed RGB, and so on.
//! Reads are typed by kind; the `as_*` views implement the DESIGN.md type rules
//! ("a vector3 is an array of 3 numbers", "an array is any array", …) across kinds, so
//! an op never depends on *how* a value happens to be stored.
//!
//! Invariants:
//! - every `f64`/`f32` held here is finite, except results of arithmetic that
//!   overflowed (they print as JSON `null`);
//! - JSON output is canonical: integral floats print as integers (`1`, not `1.0`) and
//!   `f32` components print with their shortest round-trip decimal (`0.1`, not
//!   `0.10000000149011612`).

use std::borrow::Cow;

use crate::op::Json;
pub use crate::op::number::{f32_to_f64, f32_to_json, f64_to_json};

/// A colour packed as `0x00RRGGBB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb(pub u32);

impl Rgb {
    /// Builds a colour from channels.
    pub fn from_channels([r, g, b]: [u8; 3]) -> Rgb {
        Rgb((u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b))
    }

    /// The three channels.
    pub fn channels(self) -> [u8; 3] {
        let [_, r, g, b] = self.0.to_be_bytes();
        [r, g, b]
    }

    /// Parses `#?rrggbb`, case-insensitive (the reference's `hexToRgb`).
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#').unwrap_or(s);
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok().map(Rgb)
    }

    /// Parses only the canonical form `#rrggbb` (lower case): the strings that can be
    /// stored packed and printed back identically.
    pub fn parse_canonical(s: &str) -> Option<Rgb> {
        let ok = s.len() == 7
            && s.starts_with('#')
            && s.bytes()
                .skip(1)
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok { Rgb::parse(s) } else { None }
    }

    /// Lower-case `#rrggbb`.
    pub fn to_hex(self) -> String {
        format!("#{:06x}", self.0 & 0x00ff_ffff)
    }
}

/// The storage kind of a value: which typed column can hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `f64`.
    F64,
    /// `[f32; 3]` (vector3, euler).
    F32x3,
    /// `[f32; 4]` (quaternion).
    F32x4,
    /// Packed `#rrggbb`.
    Rgb,
    /// `bool`.
    Bool,
    /// UTF-8 string.
    Str,
    /// Any JSON value (arrays, objects, and whatever fits no typed column).
    Json,
    /// A collaborative text ([`TextCell`]).
    Text,
}

/// A collaborative text property: the sequence CRDT, and what the property shows.
///
/// `text.*` ops edit `doc` and show its text. A `string.set` or `string.concat` on the
/// property shows a plain string instead (`shown`) but keeps `doc`, as the reference
/// keeps its rope: the next text op edits `doc` and shows its text again.
#[derive(Clone, Debug, Default)]
pub struct TextCell {
    /// The sequence CRDT.
    pub doc: crate::text::TextDoc,
    /// A plain string written over the text, shown until the next text op.
    pub shown: Option<String>,
}

impl TextCell {
    /// What the property shows.
    pub fn visible(&self) -> Cow<'_, str> {
        match &self.shown {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.doc.text()),
        }
    }
}

impl PartialEq for TextCell {
    /// Equal when they show the same string.
    fn eq(&self, other: &TextCell) -> bool {
        self.visible() == other.visible()
    }
}

/// An owned property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Number(f64),
    /// A 3-vector or Euler angles.
    Vec3([f32; 3]),
    /// A quaternion `[x, y, z, w]`.
    Quat([f32; 4]),
    /// A colour stored packed (prints as `#rrggbb`).
    Color(Rgb),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// Any other JSON value.
    Json(Json),
    /// A collaborative text.
    Text(Box<TextCell>),
}

/// A borrowed property value, as read from a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// A number.
    Number(f64),
    /// A 3-vector or Euler angles.
    Vec3([f32; 3]),
    /// A quaternion `[x, y, z, w]`.
    Quat([f32; 4]),
    /// A colour (prints as `#rrggbb`).
    Color(Rgb),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
    /// Any other JSON value.
    Json(&'a Json),
    /// A collaborative text.
    Text(&'a TextCell),
}

fn json_f32s<const N: usize>(v: &Json) -> Option<[f32; N]> {
    let a = v.as_array()?;
    if a.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (o, x) in out.iter_mut().zip(a) {
        if !x.is_number() {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "vector math is f32 by design"
        )]
        {
            *o = x.as_f64()? as f32;
        }
    }
    Some(out)
}

fn exact_f32s<const N: usize>(a: &[Json]) -> Option<[f32; N]> {
    if a.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (o, x) in out.iter_mut().zip(a) {
        let d = match x {
            Json::Number(n) => n.as_f64()?,
            _ => return None,
        };
        #[expect(clippy::cast_possible_truncation, reason = "checked exact below")]
        let f = d as f32;
        if f64::from(f) != d {
            return None;
        }
        *o = f;
    }
    Some(out)
}

impl Value {
    /// The storage kind.
    pub fn kind(&self) -> Kind {
        self.as_ref().kind()
    }

    /// Borrows the value.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Number(x) => ValueRef::Number(*x),
            Value::Vec3(v) => ValueRef::Vec3(*v),
            Value::Quat(q) => ValueRef::Quat(*q),
            Value::Color(c) => ValueRef::Color(*c),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Str(s) => ValueRef::Str(s),
            Value::Json(j) => ValueRef::Json(j),
            Value::Text(t) => ValueRef::Text(t),
        }
    }

    /// Stores an untyped JSON value (a `node.insert` property) in the tightest kind that
    /// reproduces it exactly: numbers as `f64` (integers up to 2^53), booleans, strings,
    /// arrays of 3 or 4 numbers that are exact in `f32` as vectors/quaternions, the rest
    /// as JSON.
    pub fn from_json(v: Json) -> Value {
        match v {
            Json::Bool(b) => Value::Bool(b),
            Json::String(s) => Value::Str(s),
            Json::Number(ref n) => match n.as_f64() {
                Some(x) if n.is_f64() || x.abs() < 9.007_199_254_740_992e15 => Value::Number(x),
                _ => Value::Json(v),
            },
            Json::Array(ref a) => {
                if let Some(v3) = exact_f32s::<3>(a) {
                    Value::Vec3(v3)
                } else if let Some(q) = exact_f32s::<4>(a) {
                    Value::Quat(q)
                } else {
                    Value::Json(v)
                }
            }
            other => Value::Json(other),
        }
    }

    /// Stores a string written by a `color.*` op: packed when it is canonical
    /// `#rrggbb`, verbatim otherwise (`#FF0000`, `red`, …).
    pub fn color(s: String) -> Value {
        match Rgb::parse_canonical(&s) {
            Some(c) => Value::Color(c),
            None => Value::Str(s),
        }
    }
}

impl<'a> ValueRef<'a> {
    /// The storage kind.
    pub fn kind(self) -> Kind {
        match self {
            ValueRef::Number(_) => Kind::F64,
            ValueRef::Vec3(_) => Kind::F32x3,
            ValueRef::Quat(_) => Kind::F32x4,
            ValueRef::Color(_) => Kind::Rgb,
            ValueRef::Bool(_) => Kind::Bool,
            ValueRef::Str(_) => Kind::Str,
            ValueRef::Json(_) => Kind::Json,
            ValueRef::Text(_) => Kind::Text,
        }
    }

    /// Copies into an owned value.
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Number(x) => Value::Number(x),
            ValueRef::Vec3(v) => Value::Vec3(v),
            ValueRef::Quat(q) => Value::Quat(q),
            ValueRef::Color(c) => Value::Color(c),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Str(s) => Value::Str(s.to_owned()),
            ValueRef::Json(j) => Value::Json(j.clone()),
            ValueRef::Text(t) => Value::Text(Box::new(t.clone())),
        }
    }

    /// The value as JSON, in canonical form.
    pub fn to_json(self) -> Json {
        match self {
            ValueRef::Number(x) => f64_to_json(x),
            ValueRef::Vec3(v) => Json::Array(v.iter().map(|&x| f32_to_json(x)).collect()),
            ValueRef::Quat(q) => Json::Array(q.iter().map(|&x| f32_to_json(x)).collect()),
            ValueRef::Color(c) => Json::String(c.to_hex()),
            ValueRef::Bool(b) => Json::Bool(b),
            ValueRef::Str(s) => Json::String(s.to_owned()),
            ValueRef::Json(j) => j.clone(),
            ValueRef::Text(t) => Json::String(t.visible().into_owned()),
        }
    }

    /// A word for the value's type, for warnings.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Number(_) => "number",
            ValueRef::Vec3(_) => "vector3",
            ValueRef::Quat(_) => "quaternion",
            ValueRef::Color(_) => "color",
            ValueRef::Bool(_) => "boolean",
            ValueRef::Str(_) => "string",
            ValueRef::Json(Json::Null) => "null",
            ValueRef::Json(Json::Bool(_)) => "boolean",
            ValueRef::Json(Json::Number(_)) => "number",
            ValueRef::Json(Json::String(_)) => "string",
            ValueRef::Json(Json::Array(_)) => "array",
            ValueRef::Json(Json::Object(_)) => "object",
            ValueRef::Text(_) => "text",
        }
    }

    /// A number (never a boolean).
    pub fn as_number(self) -> Option<f64> {
        match self {
            ValueRef::Number(x) => Some(x),
            ValueRef::Json(Json::Number(n)) => n.as_f64(),
            _ => None,
        }
    }

    /// An array of exactly 3 numbers.
    pub fn as_vec3(self) -> Option<[f32; 3]> {
        match self {
            ValueRef::Vec3(v) => Some(v),
            ValueRef::Json(j) => json_f32s::<3>(j),
            _ => None,
        }
    }

    /// An array of exactly 4 numbers.
    pub fn as_quat(self) -> Option<[f32; 4]> {
        match self {
            ValueRef::Quat(q) => Some(q),
            ValueRef::Json(j) => json_f32s::<4>(j),
            _ => None,
        }
    }

    /// A string (a packed colour reads as its `#rrggbb`).
    pub fn as_str(self) -> Option<Cow<'a, str>> {
        match self {
            ValueRef::Str(s) => Some(Cow::Borrowed(s)),
            ValueRef::Color(c) => Some(Cow::Owned(c.to_hex())),
            ValueRef::Json(Json::String(s)) => Some(Cow::Borrowed(s)),
            ValueRef::Text(t) => Some(t.visible()),
            _ => None,
        }
    }

    /// A boolean.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(b),
            ValueRef::Json(Json::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// Any array, as JSON elements.
    pub fn as_array(self) -> Option<Vec<Json>> {
        match self {
            ValueRef::Vec3(v) => Some(v.iter().map(|&x| f32_to_json(x)).collect()),
            ValueRef::Quat(q) => Some(q.iter().map(|&x| f32_to_json(x)).collect()),
            ValueRef::Json(Json::Array(a)) => Some(a.clone()),
            _ => None,
        }
    }

    /// An object.
    pub fn as_object(self) -> Option<&'a serde_json::Map<String, Json>> {
        match self {
            ValueRef::Json(Json::Object(m)) => Some(m),
            _ => None,
        }
    }
}

impl serde::Serialize for ValueRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_canonically() {
        assert_eq!(f64_to_json(65.0).to_string(), "65");
        assert_eq!(f64_to_json(0.5).to_string(), "0.5");
        assert_eq!(f32_to_json(0.1).to_string(), "0.1");
        assert_eq!(f32_to_json(-2.625).to_string(), "-2.625");
        assert_eq!(f64_to_json(f64::INFINITY), Json::Null);
    }

    #[test]
    fn from_json_picks_exact_kinds() {
        assert_eq!(
            Value::from_json(json!([0, 1, 0])),
            Value::Vec3([0.0, 1.0, 0.0])
        );
        assert_eq!(
            Value::from_json(json!([0, 0, 0, 1])),
            Value::Quat([0.0, 0.0, 0.0, 1.0])
        );
        // 0.1 is not exact in f32: kept as JSON so it prints back unchanged.
        assert!(matches!(
            Value::from_json(json!([0.1, 1, 0])),
            Value::Json(_)
        ));
        assert!(matches!(Value::from_json(json!([1, 2])), Value::Json(_)));
        assert_eq!(Value::from_json(json!(3)), Value::Number(3.0));
        assert!(matches!(Value::from_json(json!(u64::MAX)), Value::Json(_)));
        assert_eq!(Value::from_json(json!("x")), Value::Str("x".into()));
    }

    #[test]
    fn colours() {
        assert_eq!(Rgb::parse("FF0000"), Some(Rgb(0xff0000)));
        assert_eq!(Rgb::parse("#00ff0g"), None);
        assert_eq!(Rgb::parse_canonical("#FF0000"), None);
        assert_eq!(Value::color("#ff0000".into()), Value::Color(Rgb(0xff0000)));
        assert_eq!(Value::color("red".into()), Value::Str("red".into()));
        assert_eq!(Rgb(0x0a0b0c).to_hex(), "#0a0b0c");
        assert_eq!(Rgb::from_channels([1, 2, 3]).channels(), [1, 2, 3]);
    }

    #[test]
    fn type_views_follow_the_design_rules() {
        let j = json!([1, 2, 3]);
        assert_eq!(ValueRef::Json(&j).as_vec3(), Some([1.0, 2.0, 3.0]));
        assert_eq!(
            ValueRef::Vec3([1.0, 2.0, 3.0]).as_array().map(|a| a.len()),
            Some(3)
        );
        assert_eq!(ValueRef::Bool(true).as_number(), None);
        assert_eq!(
            ValueRef::Color(Rgb(0xff)).as_str().as_deref(),
            Some("#0000ff")
        );
    }
}

//! The fast MessagePack reader: one pass over the bytes of a message of the common
//! shape, validating as it reads, straight into [`MessageView`] (strings borrowed
//! from the input, payloads as [`Body`]), with no `serde` value, no `String` and no
//! [`crate::op::Op`] per op.
//!
//! The common shape: a map of `id`, `client`, `clock`, `lt`, `ts` and `ops` (either
//! spelling), each at most once; `ops` an array of maps of exactly `ot` (or `otype`),
//! `key`, `path` and `value`, where `ot` is one of the ops with an inline [`Body`]
//! (`number.*`, `vector3.set|add|multiply|applyQuaternion`, `euler.set|add`,
//! `quaternion.*`, `boolean.*`). Anything else — another field or op, a `nil`, a
//! `bin`, a duplicate key, a value out of a [`Limits`] bound, an integer beyond
//! ±2^53 − 1, a float that is not finite, more than 1,024 clock entries, more ops than
//! the bytes could hold, bytes after the message — makes the reader
//! decline (`None`): the caller takes the general decoder, which accepts or reports
//! the message exactly as before.
//!
//! [`super::decode_messages`] (and so every MessagePack decode of the crate) tries this
//! reader first.
//!
//! Invariant: whenever [`read_message`] returns a view, the general decoder
//! ([`super::decode_messages`] without this reader) accepts the same bytes with the same limits and gives the same message
//! ([`MessageView::to_message`]); the reader never panics on any input (both tested
//! below, on the common shape, on every single-byte change of it, and on random
//! bytes).

use crate::op::body::Body;
use crate::op::{Limits, MAX_SAFE_INT, Message, Op};

/// A message read in place (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView<'a> {
    /// The message id (non-empty).
    pub id: &'a str,
    /// The sender (non-empty).
    pub client: &'a str,
    /// The vector clock, in the order the bytes give it (keys distinct).
    pub clock: Vec<(&'a str, u64)>,
    /// Lamport time.
    pub lt: u64,
    /// Wall-clock timestamp.
    pub ts: f64,
    /// The ops.
    pub ops: Vec<OpView<'a>>,
}

/// One op of a [`MessageView`]: always one with an inline [`Body`].
#[derive(Debug, Clone, PartialEq)]
pub struct OpView<'a> {
    /// Target node key.
    pub key: &'a str,
    /// Property path.
    pub path: &'a str,
    /// The payload (never [`Body::Whole`]).
    pub body: Body,
}

impl MessageView<'_> {
    /// The owned message.
    pub fn to_message(&self) -> Message {
        Message {
            id: self.id.to_owned(),
            client: self.client.to_owned(),
            clock: self.clock.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
            lt: self.lt,
            ts: self.ts,
            ops: self
                .ops
                .iter()
                .map(|o| Op::new(o.key, o.path, o.body.kind().clone()))
                .collect(),
        }
    }

    /// `clock[client]`, the message's own counter.
    pub fn own_seq(&self) -> Option<u64> {
        self.clock
            .iter()
            .find(|(k, _)| *k == self.client)
            .map(|&(_, v)| v)
    }
}

/// Reads one message of the common shape that fills `bytes` exactly; `None` to
/// decline (see the module doc).
pub fn read_message<'a>(bytes: &'a [u8], lim: &Limits) -> Option<MessageView<'a>> {
    // The fixed containers of the shape (the message's 6 fields, an op's 4, a value's
    // 4 numbers) and their nesting are within these bounds; below them, decline.
    if bytes.len() > lim.max_message_bytes || lim.max_depth < 2 || lim.max_collection_len < 6 {
        return None;
    }
    let mut r = Reader { b: bytes, at: 0 };
    let m = r.message(lim)?;
    (r.at == bytes.len()).then_some(m)
}

/// Reads an array of messages of the common shape, or one such message, that fills
/// `bytes` exactly (what [`super::decode_messages`] takes); `None` to decline when any
/// of them is not of that shape.
pub fn read_messages<'a>(bytes: &'a [u8], lim: &Limits) -> Option<Vec<MessageView<'a>>> {
    if lim.max_depth < 2 || lim.max_collection_len < 6 {
        return None;
    }
    let mut r = Reader { b: bytes, at: 0 };
    let out = match bytes.first()? {
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = r.array()?;
            if n > lim.max_collection_len {
                return None;
            }
            let mut out = Vec::with_capacity(n.min(FAST_MAX_LEN));
            for _ in 0..n {
                let start = r.at;
                out.push(r.message(lim)?);
                if r.at - start > lim.max_message_bytes {
                    return None;
                }
            }
            out
        }
        _ => {
            let m = r.message(lim)?;
            if r.at > lim.max_message_bytes {
                return None;
            }
            vec![m]
        }
    };
    (r.at == bytes.len()).then_some(out)
}

/// `b` as a `str` when it is UTF-8. Keys and paths are short and almost always
/// ASCII, where the general validation costs more than the check.
#[allow(
    unsafe_code,
    reason = "skips re-validating bytes already checked to be ASCII"
)]
fn utf8(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8 (the test
        // `strings_are_checked_utf8` covers ASCII, other UTF-8 and invalid bytes).
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        std::str::from_utf8(b).ok()
    }
}

/// The most clock entries of a message the reader takes: what it holds for a message
/// it then finds over a limit is at most this many entries, as the general decoder
/// allocates nothing for such a message.
const FAST_MAX_LEN: usize = 1_024;

/// The fewest bytes an op of the common shape takes (a fixmap, the four names, the
/// shortest `ot`, one-byte key, path and value). An `ops` array announcing more ops
/// than the bytes left (or a message within [`Limits::max_message_bytes`]) could hold
/// is declined before anything is allocated, so the views of a message (56 bytes per
/// op) never take more than about twice the bytes they are read from, however many
/// ops it has (a telemetry writer's message of 20,000 ops reads here too).
const MIN_OP_BYTES: usize = 32;

/// A number as read.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Num {
    /// As the general decoder's JSON number gives it to `as_f64` (finite only).
    fn f64(self) -> Option<f64> {
        let x = match self {
            Num::Int(i) => i as f64,
            Num::Uint(u) => u as f64,
            Num::Float(f) => f,
        };
        x.is_finite().then_some(x)
    }

    /// A non-negative integer (`as_u64`), within the wire's bound.
    fn count(self) -> Option<u64> {
        let n = match self {
            Num::Int(i) => u64::try_from(i).ok()?,
            Num::Uint(u) => u,
            Num::Float(_) => return None,
        };
        (n <= MAX_SAFE_INT).then_some(n)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.at)?;
        self.at += 1;
        Some(x)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn len_u16(&mut self) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len_u32(&mut self) -> Option<usize> {
        usize::try_from(u32::from_be_bytes(self.be()?)).ok()
    }

    fn str(&mut self, lim: &Limits) -> Option<&'a str> {
        utf8(self.raw_str(lim)?)
    }

    /// A string's bytes, not yet checked to be UTF-8 (for field names and `ot`,
    /// which are compared with ASCII names and never kept).
    fn raw_str(&mut self, lim: &Limits) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => self.len_u16()?,
            0xdb => self.len_u32()?,
            _ => return None,
        };
        if n > lim.max_string_bytes {
            return None;
        }
        self.take(n)
    }

    fn map(&mut self, lim: &Limits) -> Option<usize> {
        let n = match self.byte()? {
            m @ 0x80..=0x8f => usize::from(m & 0x0f),
            0xde => self.len_u16()?,
            0xdf => self.len_u32()?,
            _ => return None,
        };
        (n <= lim.max_collection_len).then_some(n)
    }

    /// An array's length (the caller checks it against its own limit).
    fn array(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x90..=0x9f => Some(usize::from(m & 0x0f)),
            0xdc => self.len_u16(),
            0xdd => self.len_u32(),
            _ => None,
        }
    }

    fn num(&mut self) -> Option<Num> {
        let n = match self.byte()? {
            m @ 0x00..=0x7f => Num::Uint(u64::from(m)),
            m @ 0xe0..=0xff => Num::Int(i64::from(m as i8)),
            0xcc => Num::Uint(u64::from(self.byte()?)),
            0xcd => Num::Uint(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Num::Uint(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Num::Uint(u64::from_be_bytes(self.be()?)),
            0xd0 => Num::Int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Num::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Num::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Num::Int(i64::from_be_bytes(self.be()?)),
            0xca => Num::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Num::Float(f64::from_be_bytes(self.be()?)),
            _ => return None,
        };
        // The wire's integer bound holds for every integer of a message.
        match n {
            Num::Int(i) if i.unsigned_abs() > MAX_SAFE_INT => None,
            Num::Uint(u) if u > MAX_SAFE_INT => None,
            Num::Float(f) if !f.is_finite() => None,
            n => Some(n),
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.byte()? {
            0xc2 => Some(false),
            0xc3 => Some(true),
            _ => None,
        }
    }

    /// Exactly `N` numbers, each a finite `f32` (as the general decoder converts them).
    fn floats<const N: usize>(&mut self) -> Option<[f32; N]> {
        // The common encoding first: a fixarray of `N` float64s, read at fixed offsets.
        if let Some(b) = self.b.get(self.at..self.at + 1 + 9 * N)
            && usize::from(b[0]) == 0x90 + N
        {
            let mut out = [0.0f32; N];
            let mut all = true;
            for (k, slot) in out.iter_mut().enumerate() {
                let e = &b[1 + 9 * k..1 + 9 * (k + 1)];
                all &= e[0] == 0xcb;
                let mut be = [0u8; 8];
                be.copy_from_slice(&e[1..]);
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "payloads are f32 by design (checked finite)"
                )]
                let y = f64::from_be_bytes(be) as f32;
                all &= y.is_finite();
                *slot = y;
            }
            if all {
                self.at += 1 + 9 * N;
                return Some(out);
            }
        }
        if self.array()? != N {
            return None;
        }
        let mut out = [0.0f32; N];
        for slot in &mut out {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "payloads are f32 by design (checked finite)"
            )]
            let y = self.num()?.f64()? as f32;
            if !y.is_finite() {
                return None;
            }
            *slot = y;
        }
        Some(out)
    }

    fn message(&mut self, lim: &Limits) -> Option<MessageView<'a>> {
        let fields = self.map(lim)?;
        let (mut id, mut client, mut clock, mut lt, mut ts, mut ops) =
            (None, None, None, None, None, None);
        for _ in 0..fields {
            // `set` refuses a field seen before (in either spelling).
            fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
                slot.is_none().then(|| *slot = Some(v))
            }
            match self.raw_str(lim)? {
                b"id" => set(&mut id, self.str(lim).filter(|s| !s.is_empty())?)?,
                b"client" | b"sessionId" => {
                    set(&mut client, self.str(lim).filter(|s| !s.is_empty())?)?;
                }
                b"clock" => {
                    let n = self.map(lim)?;
                    if n > FAST_MAX_LEN {
                        return None;
                    }
                    let mut c: Vec<(&str, u64)> = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = self.str(lim)?;
                        let v = self.num()?.count()?;
                        if c.iter().any(|(x, _)| *x == k) {
                            return None;
                        }
                        c.push((k, v));
                    }
                    set(&mut clock, c)?;
                }
                b"lt" | b"lamportTime" => set(&mut lt, self.num()?.count()?)?,
                b"ts" | b"timestamp" => set(&mut ts, self.num()?.f64()?)?,
                b"ops" => {
                    let n = self.array()?;
                    if n > lim.max_ops_per_message {
                        return None;
                    }
                    // More ops than the bytes left could hold: not a message of the
                    // common shape (the general decoder reports it).
                    let room = (self.b.len() - self.at).min(lim.max_message_bytes);
                    if n > room / MIN_OP_BYTES {
                        return None;
                    }
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(self.op(lim)?);
                    }
                    set(&mut ops, v)?;
                }
                _ => return None,
            }
        }
        Some(MessageView {
            id: id?,
            client: client?,
            clock: clock.unwrap_or_default(),
            lt: lt?,
            ts: ts.unwrap_or(0.0),
            ops: ops?,
        })
    }

    fn op(&mut self, lim: &Limits) -> Option<OpView<'a>> {
        let start = self.at;
        if let Some(v) = self.op_as_written(lim) {
            return Some(v);
        }
        // Another field order or spelling (or a bad op, which the loop below refuses
        // the same way).
        self.at = start;
        self.op_any_order(lim)
    }

    /// The next bytes are `lit`: skipped.
    #[inline]
    fn expect(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.at.checked_add(lit.len())?;
        (self.b.get(self.at..end)? == lit).then(|| self.at = end)
    }

    /// An op as this crate (and the reference's MessagePack) writes it: a map of
    /// `ot`, `key`, `path`, `value` in that order, names as fixstrs: the names are
    /// compared as four byte strings, not read and dispatched one by one.
    #[inline]
    fn op_as_written(&mut self, lim: &Limits) -> Option<OpView<'a>> {
        self.expect(&[0x84, 0xa2, b'o', b't'])?;
        let ot = Ot::of(self.raw_str(lim)?)?;
        self.expect(&[0xa3, b'k', b'e', b'y'])?;
        let key = self.str(lim)?;
        self.expect(&[0xa4, b'p', b'a', b't', b'h'])?;
        let path = self.str(lim)?;
        self.expect(&[0xa5, b'v', b'a', b'l', b'u', b'e'])?;
        let body = self.body(ot)?;
        Some(OpView { key, path, body })
    }

    /// An op whose four fields come in any order, in either spelling of `ot`.
    fn op_any_order(&mut self, lim: &Limits) -> Option<OpView<'a>> {
        if self.map(lim)? != 4 {
            return None;
        }
        let (mut ot, mut key, mut path, mut body, mut value) = (None, None, None, None, None);
        for _ in 0..4 {
            match self.raw_str(lim)? {
                b"ot" | b"otype" if ot.is_none() => ot = Some(Ot::of(self.raw_str(lim)?)?),
                b"key" if key.is_none() => key = Some(self.str(lim)?),
                b"path" if path.is_none() => path = Some(self.str(lim)?),
                b"value" if value.is_none() && body.is_none() => match ot {
                    // `ot` came first (as this crate writes ops): read the value now.
                    Some(ot) => body = Some(self.body(ot)?),
                    // Otherwise remember where it starts and skip it for now.
                    None => {
                        value = Some(self.at);
                        self.skip_value()?;
                    }
                },
                _ => return None,
            }
        }
        let (ot, key, path) = (ot?, key?, path?);
        let body = match (body, value) {
            (Some(b), _) => b,
            (None, Some(at)) => {
                let end = std::mem::replace(&mut self.at, at);
                let b = self.body(ot)?;
                // The value must be exactly what was skipped.
                if self.at != end {
                    return None;
                }
                b
            }
            (None, None) => return None,
        };
        Some(OpView { key, path, body })
    }

    /// Skips a value of the shapes an inline op's value may have: a scalar, or an
    /// array of at most four scalars.
    fn skip_value(&mut self) -> Option<()> {
        match self.b.get(self.at)? {
            0xc2 | 0xc3 => {
                self.at += 1;
            }
            0x90..=0x9f => {
                let n = self.array()?;
                if n > 4 {
                    return None;
                }
                for _ in 0..n {
                    self.num()?;
                }
            }
            _ => {
                self.num()?;
            }
        }
        Some(())
    }

    fn body(&mut self, ot: Ot) -> Option<Body> {
        Some(match ot {
            Ot::NumberSet => Body::NumberSet(self.num()?.f64()?),
            Ot::NumberAdd => Body::NumberAdd(self.num()?.f64()?),
            Ot::NumberMultiply => Body::NumberMultiply(self.num()?.f64()?),
            Ot::NumberMin => Body::NumberMin(self.num()?.f64()?),
            Ot::NumberMax => Body::NumberMax(self.num()?.f64()?),
            Ot::Vector3Set => Body::Vector3Set(self.floats()?),
            Ot::Vector3Add => Body::Vector3Add(self.floats()?),
            Ot::Vector3Multiply => Body::Vector3Multiply(self.floats()?),
            Ot::Vector3ApplyQuaternion => Body::Vector3ApplyQuaternion(self.floats()?),
            Ot::EulerSet => Body::EulerSet(self.floats()?),
            Ot::EulerAdd => Body::EulerAdd(self.floats()?),
            Ot::QuaternionSet => Body::QuaternionSet(self.floats()?),
            Ot::QuaternionMultiply => Body::QuaternionMultiply(self.floats()?),
            Ot::BooleanSet => Body::BooleanSet(self.boolean()?),
            Ot::BooleanOr => Body::BooleanOr(self.boolean()?),
            Ot::BooleanAnd => Body::BooleanAnd(self.boolean()?),
            Ot::BooleanXor => Body::BooleanXor(self.boolean()?),
        })
    }
}

/// The `ot`s of the common shape.
#[derive(Clone, Copy)]
enum Ot {
    NumberSet,
    NumberAdd,
    NumberMultiply,
    NumberMin,
    NumberMax,
    Vector3Set,
    Vector3Add,
    Vector3Multiply,
    Vector3ApplyQuaternion,
    EulerSet,
    EulerAdd,
    QuaternionSet,
    QuaternionMultiply,
    BooleanSet,
    BooleanOr,
    BooleanAnd,
    BooleanXor,
}

impl Ot {
    /// The `ot` spelled `b` (one match on the whole name: by length, then bytes).
    fn of(b: &[u8]) -> Option<Ot> {
        Some(match b {
            b"number.set" => Ot::NumberSet,
            b"number.add" => Ot::NumberAdd,
            b"number.multiply" => Ot::NumberMultiply,
            b"number.min" => Ot::NumberMin,
            b"number.max" => Ot::NumberMax,
            b"vector3.set" => Ot::Vector3Set,
            b"vector3.add" => Ot::Vector3Add,
            b"vector3.multiply" => Ot::Vector3Multiply,
            b"vector3.applyQuaternion" => Ot::Vector3ApplyQuaternion,
            b"euler.set" => Ot::EulerSet,
            b"euler.add" => Ot::EulerAdd,
            b"quaternion.set" => Ot::QuaternionSet,
            b"quaternion.multiply" => Ot::QuaternionMultiply,
            b"boolean.set" => Ot::BooleanSet,
            b"boolean.or" => Ot::BooleanOr,
            b"boolean.and" => Ot::BooleanAnd,
            b"boolean.xor" => Ot::BooleanXor,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpKind;
    use crate::wire::{Format, encode_message};

    /// One message through the general decoder (not the fast reader).
    fn decode_message(bytes: &[u8], format: Format, lim: &Limits) -> Result<Message, String> {
        let mut v =
            crate::wire::decode_messages_general(bytes, format, lim).map_err(|e| e.to_string())?;
        if v.len() == 1 {
            Ok(v.remove(0))
        } else {
            Err(format!("{} messages", v.len()))
        }
    }
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn sample() -> Message {
        Message {
            id: "alice:7".into(),
            client: "alice".into(),
            clock: BTreeMap::from([("alice".into(), 3), ("bob".into(), 9)]),
            lt: 7,
            ts: 1.25,
            ops: vec![
                Op::vector3_set("n1", "position", [1.5, -2.0, 3.25]),
                Op::number_set("n2", "health", 42.5),
                Op::number_add("n2", "health", -1.0),
                Op::quaternion_multiply("n3", "rotation", [0.0, 0.5, 0.0, 0.75]),
                Op::new("n4", "on", OpKind::BooleanXor(true)),
                Op::new("", "root.x", OpKind::NumberMax(1e300)),
            ],
        }
    }

    /// The reader's answer agrees with the general decoder's: a view only where the
    /// decoder accepts the same message.
    fn agrees(bytes: &[u8], lim: &Limits) -> Result<bool, String> {
        let Some(view) = read_message(bytes, lim) else {
            return Ok(false);
        };
        match decode_message(bytes, Format::MessagePack, lim) {
            Ok(m) if m == view.to_message() => Ok(true),
            Ok(m) => Err(format!("read {:?}, decoded {m:?}", view.to_message())),
            Err(e) => Err(format!(
                "read {:?}, the decoder refused: {e}",
                view.to_message()
            )),
        }
    }

    #[test]
    fn the_common_shape_is_read_as_the_decoder_reads_it() {
        let m = sample();
        let bytes = encode_message(&m, Format::MessagePack);
        let view = read_message(&bytes, &Limits::default()).unwrap();
        assert_eq!(view.to_message(), m);
        assert_eq!(view.own_seq(), Some(3));
        assert!(agrees(&bytes, &Limits::default()).unwrap());
    }

    #[test]
    fn strings_are_checked_utf8() {
        assert_eq!(utf8(b"position"), Some("position"));
        assert_eq!(utf8("café".as_bytes()), Some("café"));
        assert_eq!(utf8(&[b'a', 0xff, b'b']), None);
        let lim = Limits::default();
        let mut m = sample();
        m.ops[0].key = "nœud".into();
        let bytes = encode_message(&m, Format::MessagePack);
        assert_eq!(read_message(&bytes, &lim).unwrap().ops[0].key, "nœud");
        // The same bytes with the key's first byte broken are not UTF-8.
        let at = bytes.windows(3).position(|w| w == "nœ".as_bytes()).unwrap() + 1;
        let mut bad = bytes.clone();
        bad[at] = 0xff;
        assert!(read_message(&bad, &lim).is_none());
        assert!(decode_message(&bad, Format::MessagePack, &lim).is_err());
    }

    #[test]
    fn other_shapes_are_declined() {
        let lim = Limits::default();
        let mut with_text = sample();
        with_text
            .ops
            .push(Op::new("n", "s", OpKind::StringSet("x".into())));
        let mut node = sample();
        node.ops.push(Op::node_insert("", "m", "Mesh"));
        for m in [with_text, node] {
            assert!(read_message(&encode_message(&m, Format::MessagePack), &lim).is_none());
        }
        let bytes = encode_message(&sample(), Format::MessagePack);
        let mut trailing = bytes.clone();
        trailing.push(0xc0);
        assert!(read_message(&trailing, &lim).is_none());
        let tight = Limits {
            max_string_bytes: 4,
            ..Limits::default()
        };
        assert!(read_message(&bytes, &tight).is_none());
        let few = Limits {
            max_ops_per_message: 5,
            ..Limits::default()
        };
        assert!(read_message(&bytes, &few).is_none());
        let small = Limits {
            max_message_bytes: bytes.len() - 1,
            ..Limits::default()
        };
        assert!(read_message(&bytes, &small).is_none());
    }

    #[test]
    fn arrays_of_messages_are_read_as_the_decoder_reads_them() {
        let lim = Limits::default();
        let mut b = sample();
        b.id = "bob:8".into();
        b.client = "bob".into();
        let msgs = vec![sample(), b];
        let bytes = crate::wire::encode_messages(&msgs, Format::MessagePack);
        let views = read_messages(&bytes, &lim).unwrap();
        let read: Vec<Message> = views.iter().map(MessageView::to_message).collect();
        assert_eq!(read, msgs);
        assert_eq!(
            crate::wire::decode_messages_general(&bytes, Format::MessagePack, &lim).unwrap(),
            msgs
        );
        let one = encode_message(&msgs[0], Format::MessagePack);
        assert_eq!(read_messages(&one, &lim).unwrap().len(), 1);
        let mut with_node = msgs.clone();
        with_node[1].ops.push(Op::node_insert("", "m", "Mesh"));
        let bytes = crate::wire::encode_messages(&with_node, Format::MessagePack);
        assert!(read_messages(&bytes, &lim).is_none());
        let small = Limits {
            max_message_bytes: one.len() - 1,
            ..Limits::default()
        };
        let bytes = crate::wire::encode_messages(&msgs, Format::MessagePack);
        assert!(read_messages(&bytes, &small).is_none());
    }

    #[test]
    fn every_byte_changed_still_agrees() {
        let lim = Limits::default();
        let bytes = encode_message(&sample(), Format::MessagePack);
        let mut read = 0;
        for i in 0..bytes.len() {
            for x in [
                0x00u8, 0x01, 0x7f, 0x80, 0x93, 0xa1, 0xc0, 0xc3, 0xca, 0xcb, 0xcf, 0xd3, 0xff,
            ] {
                let mut b = bytes.clone();
                b[i] = x;
                read += usize::from(agrees(&b, &lim).unwrap());
                b.truncate(i);
                assert!(!agrees(&b, &lim).unwrap() || i == bytes.len());
            }
        }
        assert!(read > 0, "some changes keep the common shape");
    }

    proptest! {
    #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn random_bytes_never_panic_and_agree(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(agrees(&bytes, &Limits::default()).is_ok());
        }

        #[test]
        fn random_common_messages_are_read(
            lt in 0u64..MAX_SAFE_INT,
            seq in 0u64..1000,
            xs in proptest::collection::vec((-1e30f32..1e30f32, any::<i32>(), any::<bool>()), 0..20),
        ) {
            let ops = xs.iter().enumerate().map(|(i, &(x, n, b))| match i % 4 {
                0 => Op::vector3_set(format!("n{n}"), "position", [x, -x, 0.5]),
                1 => Op::number_set(format!("n{n}"), "health", f64::from(n)),
                2 => Op::new(format!("n{n}"), "on", OpKind::BooleanSet(b)),
                _ => Op::number_add("", "x", f64::from(x)),
            }).collect();
            let m = Message {
                id: format!("c:{lt}"),
                client: "c".into(),
                clock: BTreeMap::from([("c".into(), seq)]),
                lt,
                ts: lt as f64 / 3.0,
                ops,
            };
            let bytes = encode_message(&m, Format::MessagePack);
            let view = read_message(&bytes, &Limits::default());
            prop_assert!(view.is_some());
            prop_assert!(agrees(&bytes, &Limits::default()).unwrap());
        }
    }
}

#[cfg(test)]
mod workload_tests {
    use crate::wire::{Format, encode_message};

    #[test]
    fn workload_a_messages_take_the_fast_reader() {
        let a = crate::workload::SceneA::standard().with_messages(50);
        for m in a.messages() {
            let bytes = encode_message(&m, Format::MessagePack);
            let view = super::read_message(&bytes, &crate::op::Limits::default());
            assert!(view.is_some(), "{m:?} {bytes:?}");
            let one = crate::wire::encode_messages(std::slice::from_ref(&m), Format::MessagePack);
            assert!(super::read_messages(&one, &crate::op::Limits::default()).is_some());
        }
    }

    /// A telemetry tick (a writer's message of 20,000 ops, the shortest `ot`s
    /// included) reads in place, equal to the general decoder's message; an `ops`
    /// array announcing more ops than its bytes could hold is declined.
    #[test]
    fn a_whole_scene_tick_takes_the_fast_reader() {
        use crate::op::{Limits, Op};
        let mut m = crate::workload::props_scene(1_000).remove(0);
        m.ops = (0..20_000)
            .map(|k| match k % 4 {
                0 => Op::vector3_set(format!("n{k}"), "position", [1.0, 2.0, 3.0]),
                1 => Op::number_set("", "", 1.0),
                2 => Op::new("", "", crate::op::OpKind::BooleanOr(true)),
                _ => Op::new("", "", crate::op::OpKind::EulerAdd([0.0; 3])),
            })
            .collect();
        let bytes = encode_message(&m, Format::MessagePack);
        let view = super::read_message(&bytes, &Limits::default()).expect("fast");
        assert_eq!(view.to_message(), m);
        // The same header announcing 2^16 ops in the bytes of 20,000.
        let at = bytes.windows(4).position(|w| w == b"\xa3ops").unwrap() + 4;
        let mut lying = bytes.clone();
        assert_eq!(lying[at], 0xdc);
        lying[at + 1..at + 3].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(super::read_message(&lying, &Limits::default()).is_none());
    }
}

//! JSON and MessagePack codecs for messages (serde, `serde_json`, `rmp-serde`).
//!
//! Input accepts both field spellings (`client`/`sessionId`, `lt`/`lamportTime`,
//! `ts`/`timestamp`, `ot`/`otype`); output always writes the compressed one. Both
//! encodings carry the same shape: an array of message objects, or one message object.
//! MessagePack output uses maps with field names (`rmp_serde::to_vec_named`), as the
//! reference's `msgpack.packb` does.
//!
//! Invariants:
//! - decoding never panics; a message is returned only if *every* op in it is valid;
//! - every error names the message (id, or index when the id is unreadable), the op
//!   index and the reason ([`DecodeError`]);
//! - `decode(encode(msgs)) == msgs` for every valid message list.
//!
//! The fast path deserializes straight into typed envelopes; only when it fails is the
//! input re-read as a generic value to pinpoint the failing message and op.
//! This module knows no merge rule. Read [`crate::batch`] next.

pub mod fast;
mod raw;
mod scan;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, DecodeResult};
use crate::op::parse::{beyond_safe_reason, describe};
use crate::op::{Json, Limits, MAX_SAFE_INT, Message, OpFields};
use raw::WireOp;
pub use scan::MAX_DEPTH;
use scan::Scanned;

/// A wire encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// UTF-8 JSON.
    #[default]
    Json,
    /// MessagePack.
    MessagePack,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::MessagePack => "MessagePack",
        }
    }
}

/// A message as it stands on the wire, every field untyped so that type errors are
/// reported by [`validate_message`] with context.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMessage<'a> {
    id: Option<Json>,
    #[serde(alias = "sessionId")]
    client: Option<Json>,
    clock: Option<Json>,
    #[serde(alias = "lamportTime")]
    lt: Option<Json>,
    #[serde(alias = "timestamp")]
    ts: Option<Json>,
    #[serde(borrow)]
    ops: Option<Vec<WireOp<'a>>>,
}

/// The compressed output shape of a message.
#[derive(Serialize)]
struct WireMessage<'a> {
    id: &'a str,
    client: &'a str,
    clock: &'a BTreeMap<String, u64>,
    lt: u64,
    ts: Json,
    ops: Vec<OpFields>,
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(m: &'a Message) -> Self {
        WireMessage {
            id: &m.id,
            client: &m.client,
            clock: &m.clock,
            lt: m.lt,
            ts: crate::op::number::f64_to_json(m.ts),
            ops: m.ops.iter().map(OpFields::from_op).collect(),
        }
    }
}

/// A message as it goes out (the compressed spelling, as [`encode_message`] writes
/// it), to embed in a larger serde structure (a protocol frame) without building a
/// JSON value first.
#[derive(Clone, Copy, Debug)]
pub struct OutMessage<'a>(pub &'a Message);

impl Serialize for OutMessage<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireMessage::from(self.0).serialize(s)
    }
}

fn msg_err(index: usize, id: Option<&str>, reason: impl Into<String>) -> DecodeError {
    DecodeError::Message {
        index,
        id: id.map(str::to_owned),
        reason: reason.into(),
    }
}

fn validate_message(index: usize, mut raw: RawMessage<'_>, lim: &Limits) -> DecodeResult<Message> {
    let id = match raw.id.take() {
        Some(Json::String(s)) if !s.is_empty() && s.len() <= lim.max_string_bytes => s,
        Some(Json::String(s)) if s.is_empty() => {
            return Err(msg_err(index, None, "field `id` must not be empty"));
        }
        Some(Json::String(_)) => {
            return Err(msg_err(
                index,
                None,
                format!("field `id` exceeds {} bytes", lim.max_string_bytes),
            ));
        }
        Some(other) => {
            return Err(msg_err(
                index,
                None,
                format!("field `id`: expected a string, got {}", describe(&other)),
            ));
        }
        None => return Err(msg_err(index, None, "missing field `id`")),
    };
    let fail = |reason: String| Err(msg_err(index, Some(&id), reason));
    let client = match raw.client.take() {
        Some(Json::String(s)) if !s.is_empty() && s.len() <= lim.max_string_bytes => s,
        Some(Json::String(_)) => return fail("field `client` must be a non-empty string".into()),
        Some(other) => {
            return fail(format!(
                "field `client`: expected a string, got {}",
                describe(&other)
            ));
        }
        None => return fail("missing field `client` (or legacy `sessionId`)".into()),
    };
    let lt = match &raw.lt {
        Some(v) => match v.as_u64() {
            Some(lt) if lt > MAX_SAFE_INT => {
                return fail(format!(
                    "field `lt`: {}",
                    beyond_safe_reason(&lt.to_string())
                ));
            }
            Some(lt) => lt,
            None => {
                return fail(format!(
                    "field `lt`: expected a non-negative integer, got {}",
                    describe(v)
                ));
            }
        },
        None => return fail("missing field `lt` (or legacy `lamportTime`)".into()),
    };
    let ts = match &raw.ts {
        None => 0.0,
        Some(v) => match v.as_f64().filter(|t| t.is_finite()) {
            Some(t) if v.is_number() => t,
            _ => {
                return fail(format!(
                    "field `ts`: expected a finite number of seconds, got {}",
                    describe(v)
                ));
            }
        },
    };
    let mut clock = BTreeMap::new();
    match raw.clock.take() {
        None => {}
        Some(Json::Object(m)) => {
            if m.len() > lim.max_collection_len {
                return fail(format!(
                    "field `clock` has more than {} entries",
                    lim.max_collection_len
                ));
            }
            for (k, v) in m {
                match v.as_u64() {
                    Some(c) if c > MAX_SAFE_INT => {
                        return fail(format!(
                            "field `clock.{k}`: {}",
                            beyond_safe_reason(&c.to_string())
                        ));
                    }
                    Some(c) => {
                        clock.insert(k, c);
                    }
                    None => {
                        return fail(format!(
                            "field `clock.{k}`: expected a non-negative integer, got {}",
                            describe(&v)
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return fail(format!(
                "field `clock`: expected an object {{client: counter}}, got {}",
                describe(&other)
            ));
        }
    }
    let Some(raw_ops) = raw.ops else {
        return fail("missing field `ops`".into());
    };
    if raw_ops.len() > lim.max_ops_per_message {
        return fail(format!(
            "{} ops exceed the limit of {} per message",
            raw_ops.len(),
            lim.max_ops_per_message
        ));
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (op_index, f) in raw_ops.into_iter().enumerate() {
        match f.into_op(lim) {
            Ok(op) => ops.push(op),
            Err((ot, reason)) => {
                return Err(DecodeError::Op {
                    msg_id: id,
                    op_index,
                    ot,
                    reason,
                });
            }
        }
    }
    Ok(Message {
        id,
        client,
        clock,
        lt,
        ts,
        ops,
    })
}

/// Deserializes `bytes` whole. The JSON recursion limit is lifted: callers hand over
/// only bytes [`scan`] passed, whose nesting is bounded by the limits (capped at
/// [`MAX_DEPTH`]), so `--max-depth` means the same in both formats.
pub(crate) fn typed<'a, T: Deserialize<'a>>(bytes: &'a [u8], format: Format) -> Result<T, String> {
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            de.disable_recursion_limit();
            let v = T::deserialize(&mut de).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())?;
            Ok(v)
        }
        Format::MessagePack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(MAX_DEPTH + 16);
            T::deserialize(&mut de).map_err(|e| e.to_string())
        }
    }
}

fn syntax(format: Format, detail: String) -> DecodeError {
    DecodeError::Syntax {
        format: format.name(),
        detail,
    }
}

/// A generic parse of bytes the scan passed (a message's span).
fn parse_generic(bytes: &[u8], format: Format) -> DecodeResult<Json> {
    typed::<Json>(bytes, format).map_err(|d| syntax(format, d))
}

/// Why bytes the scan could not walk are unreadable: serde's own account, with its
/// default recursion limits (the scan vouches for nothing here).
fn malformed(bytes: &[u8], format: Format) -> DecodeError {
    let generic = match format {
        Format::Json => serde_json::from_slice::<Json>(bytes).map_err(|e| e.to_string()),
        Format::MessagePack => rmp_serde::from_slice::<Json>(bytes).map_err(|e| e.to_string()),
    };
    match generic {
        Err(detail) => syntax(format, detail),
        Ok(Json::Array(_) | Json::Object(_)) => {
            syntax(format, "unexpected bytes after the top-level value".into())
        }
        Ok(other) => DecodeError::NotMessages {
            got: describe(&other),
        },
    }
}

/// Finds which op (or field) made the typed decode of one message fail, from a
/// generic parse of its bytes.
fn locate_error(index: usize, bytes: &[u8], format: Format, original: String) -> DecodeError {
    let item = match parse_generic(bytes, format) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if !item.is_object() {
        return msg_err(
            index,
            None,
            format!("expected a message object, got {}", describe(&item)),
        );
    }
    locate_in(index, &item).unwrap_or_else(|| syntax(format, original))
}

/// The error of a message object whose typed decode fails (`None` when it does not).
fn locate_in(index: usize, item: &Json) -> Option<DecodeError> {
    let e = RawMessage::deserialize(item).err()?;
    let id = item.get("id").and_then(Json::as_str);
    if let Some(Json::Array(ops)) = item.get("ops") {
        for (op_index, op) in ops.iter().enumerate() {
            let reason = if op.is_object() {
                match OpFields::deserialize(op) {
                    Ok(_) => continue,
                    Err(e) => e.to_string(),
                }
            } else {
                format!("expected an op object, got {}", describe(op))
            };
            return Some(DecodeError::Op {
                msg_id: id.unwrap_or("<no id>").to_owned(),
                op_index,
                ot: op
                    .get("ot")
                    .or_else(|| op.get("otype"))
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                reason: crate::error::OpError::Invalid {
                    field: "op",
                    reason,
                },
            });
        }
    }
    Some(msg_err(index, id, e.to_string()))
}

/// One message's typed envelope, or why it cannot be read.
type RawResult<'a> = Result<RawMessage<'a>, DecodeError>;

/// The typed envelope of message `index`, from its bytes.
fn typed_one(index: usize, bytes: &[u8], format: Format) -> RawResult<'_> {
    typed::<RawMessage>(bytes, format).map_err(|e| locate_error(index, bytes, format, e))
}

/// Scans `bytes` (limits first, see [`scan`]), then reads every message's typed
/// envelope: one result per message, or an error when the input as a whole is
/// unreadable.
fn decode_raw<'a>(
    bytes: &'a [u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<Vec<RawResult<'a>>> {
    let items = match scan::scan(bytes, format, limits) {
        Scanned::Malformed => return Err(malformed(bytes, format)),
        Scanned::Broken(e) => return Err(e),
        Scanned::One(item) => vec![item],
        Scanned::Array(items) => {
            // Every message keeps the limits: one typed pass over the whole array.
            if items.iter().all(|i| i.error.is_none())
                && let Ok(all) = typed::<Vec<RawMessage>>(bytes, format)
            {
                return Ok(all.into_iter().map(Ok).collect());
            }
            items
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item.error {
            Some(e) => Err(e),
            None => match bytes.get(item.span) {
                Some(b) => typed_one(i, b, format),
                None => Err(msg_err(i, None, "message bytes out of range")),
            },
        })
        .collect())
}

/// Decodes an array of messages (or one message object), all or nothing: the first
/// invalid message makes the whole call fail.
///
/// # Errors
/// [`DecodeError`] naming the message id, op index and reason.
///
/// # Examples
/// ```
/// use vuer_rtc::wire::{decode_messages, Format};
/// let bytes = br#"[{"id": "a:1", "sessionId": "a", "lamportTime": 1, "timestamp": 0.5,
///                   "ops": [{"otype": "number.set", "key": "n", "path": "x", "value": 1}]}]"#;
/// let msgs = decode_messages(bytes, Format::Json, &Default::default()).unwrap();
/// assert_eq!(msgs[0].client, "a");
/// ```
pub fn decode_messages(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<Vec<Message>> {
    if let Some(views) = fast_views(bytes, format, limits) {
        return Ok(views.iter().map(fast::MessageView::to_message).collect());
    }
    decode_messages_general(bytes, format, limits)
}

/// The messages of `bytes` read by the fast reader, when it takes them all.
fn fast_views<'a>(
    bytes: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Option<Vec<fast::MessageView<'a>>> {
    match format {
        Format::MessagePack => fast::read_messages(bytes, limits),
        Format::Json => None,
    }
}

/// [`decode_messages`] without the fast reader (what the fast reader is tested against).
pub(crate) fn decode_messages_general(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<Vec<Message>> {
    decode_raw(bytes, format, limits)?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| raw.and_then(|raw| validate_message(i, raw, limits)))
        .collect()
}

/// Decodes messages one by one: valid messages are returned, each invalid one is
/// reported by its own error. A syntax error in the bytes fails the whole call.
///
/// # Errors
/// [`DecodeError::Syntax`] / [`DecodeError::NotMessages`] when the input as a whole is
/// unreadable.
pub fn decode_messages_lenient(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<(Vec<Message>, Vec<DecodeError>)> {
    split_results(decode_each(bytes, format, limits)?)
}

/// [`decode_messages_lenient`] without the fast reader, for a caller that already
/// tried it on these bytes.
pub(crate) fn decode_messages_lenient_general(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<(Vec<Message>, Vec<DecodeError>)> {
    split_results(decode_each_general(bytes, format, limits)?)
}

fn split_results(
    each: Vec<DecodeResult<Message>>,
) -> DecodeResult<(Vec<Message>, Vec<DecodeError>)> {
    let mut ok = Vec::with_capacity(each.len());
    let mut errs = Vec::new();
    for r in each {
        match r {
            Ok(m) => ok.push(m),
            Err(e) => errs.push(e),
        }
    }
    Ok((ok, errs))
}

/// Decodes messages one by one: one result per message, in input order (what a
/// command that reports per message needs). A syntax error in the bytes, or a limit
/// broken where the bytes cannot be read on, fails the whole call.
///
/// # Errors
/// [`DecodeError::Syntax`] / [`DecodeError::NotMessages`] when the input as a whole is
/// unreadable.
///
/// # Examples
/// ```
/// use vuer_rtc::wire::{decode_each, Format};
/// let bytes = br#"[{"id": "a:1", "client": "a", "lt": 1, "ops": []},
///                  {"id": "a:2", "client": "a", "lt": -2, "ops": []}]"#;
/// let each = decode_each(bytes, Format::Json, &Default::default()).unwrap();
/// assert!(each[0].is_ok());
/// assert!(each[1].as_ref().unwrap_err().to_string().contains("`lt`"));
/// ```
pub fn decode_each(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<Vec<DecodeResult<Message>>> {
    if let Some(views) = fast_views(bytes, format, limits) {
        return Ok(views.iter().map(|v| Ok(v.to_message())).collect());
    }
    decode_each_general(bytes, format, limits)
}

/// [`decode_each`] without the fast reader.
fn decode_each_general(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> DecodeResult<Vec<DecodeResult<Message>>> {
    Ok(decode_raw(bytes, format, limits)?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| raw.and_then(|raw| validate_message(i, raw, limits)))
        .collect())
}

fn locate_error_one(index: usize, item: &Json) -> DecodeError {
    if !item.is_object() {
        return msg_err(
            index,
            None,
            format!("expected a message object, got {}", describe(item)),
        );
    }
    locate_in(index, item).unwrap_or_else(|| msg_err(index, None, "not a valid message"))
}

/// Decodes exactly one message object.
///
/// # Errors
/// [`DecodeError`] naming the op index and reason.
pub fn decode_message(bytes: &[u8], format: Format, limits: &Limits) -> DecodeResult<Message> {
    let mut v = decode_messages(bytes, format, limits)?;
    match v.len() {
        1 => Ok(v.remove(0)),
        n => Err(DecodeError::NotMessages {
            got: format!("{n} messages where one was expected"),
        }),
    }
}

/// Converts a JSON value (one message object) into a validated message.
///
/// # Errors
/// [`DecodeError`] naming the op index and reason.
pub fn message_from_json(value: &Json, limits: &Limits) -> DecodeResult<Message> {
    match RawMessage::deserialize(value) {
        Ok(raw) => validate_message(0, raw, limits),
        Err(_) => Err(locate_error_one(0, value)),
    }
}

/// The JSON value of a message, in the compressed spelling.
pub fn message_to_json(msg: &Message) -> Json {
    serde_json::to_value(WireMessage::from(msg)).unwrap_or(Json::Null)
}

/// Encodes one message.
pub fn encode_message(msg: &Message, format: Format) -> Vec<u8> {
    encode(&WireMessage::from(msg), format)
}

/// Encodes a list of messages as an array.
pub fn encode_messages(msgs: &[Message], format: Format) -> Vec<u8> {
    let wire: Vec<WireMessage<'_>> = msgs.iter().map(WireMessage::from).collect();
    encode(&wire, format)
}

fn encode<T: Serialize>(value: &T, format: Format) -> Vec<u8> {
    // Serializing these plain structs into memory cannot fail: every map key is a
    // string and every number finite.
    match format {
        Format::Json => serde_json::to_vec(value).unwrap_or_default(),
        Format::MessagePack => rmp_serde::to_vec_named(value).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Op, OpKind};

    const LEGACY: &[u8] = br#"[{"id": "a:1", "sessionId": "a", "lamportTime": 3, "timestamp": 1.5,
        "clock": {"a": 1}, "ops": [{"otype": "vector3.set", "key": "c", "path": "p", "value": [1, 2, 3], "extra": 9}]}]"#;
    const COMPRESSED: &[u8] = br#"[{"id": "a:1", "client": "a", "lt": 3, "ts": 1.5,
        "clock": {"a": 1}, "ops": [{"ot": "vector3.set", "key": "c", "path": "p", "value": [1, 2, 3]}]}]"#;

    fn dec(b: &[u8]) -> DecodeResult<Vec<Message>> {
        decode_messages(b, Format::Json, &Limits::default())
    }

    #[test]
    fn floats_round_trip_through_json_bit_for_bit() {
        // Wall clocks order children: a replica that decodes a different `ts` than its
        // peer encoded can order them differently. Shortest-repr printing plus exact
        // parsing (`float_roundtrip`) keeps every bit.
        let mut rng = crate::workload::SplitMix64::new(5);
        let mut msgs = dec(COMPRESSED).unwrap();
        for k in 0..1_000 {
            let ts = f64::from_bits(rng.next_u64() >> 2) + 0.013_000_000_000_000_001 * f64::from(k);
            if !ts.is_finite() {
                continue;
            }
            msgs[0].ts = ts;
            msgs[0].ops[0] = Op {
                key: "c".into(),
                path: "n".into(),
                kind: OpKind::NumberSet(ts),
            };
            let back = dec(&encode_messages(&msgs, Format::Json)).unwrap();
            assert_eq!(back[0].ts.to_bits(), ts.to_bits(), "{ts:e}");
            assert_eq!(back, msgs);
        }
    }

    #[test]
    fn both_spellings_decode_alike_and_encode_compressed() {
        let a = dec(LEGACY).unwrap();
        let b = dec(COMPRESSED).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].ops[0], Op::vector3_set("c", "p", [1.0, 2.0, 3.0]));
        let out = String::from_utf8(encode_messages(&a, Format::Json)).unwrap();
        assert!(
            out.contains("\"client\":\"a\"") && out.contains("\"ot\":\"vector3.set\""),
            "{out}"
        );
        assert!(
            !out.contains("sessionId") && !out.contains("otype"),
            "{out}"
        );
    }

    #[test]
    fn msgpack_round_trip() {
        let a = dec(LEGACY).unwrap();
        let bytes = encode_messages(&a, Format::MessagePack);
        let b = decode_messages(&bytes, Format::MessagePack, &Limits::default()).unwrap();
        assert_eq!(a, b);
        let one = encode_message(&a[0], Format::MessagePack);
        assert_eq!(
            decode_message(&one, Format::MessagePack, &Limits::default()).unwrap(),
            a[0]
        );
    }

    #[test]
    fn errors_name_message_and_op() {
        let bad = br#"[{"id": "ok", "client": "a", "lt": 1, "ops": []},
            {"id": "m2", "client": "a", "lt": 2, "ops": [{"ot": "number.set", "key": "n", "path": "x", "value": 1},
                                                     {"ot": "vector3.set", "key": "n", "path": "p", "value": "abc"}]}]"#;
        let e = dec(bad).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("\"m2\"") && s.contains("op #1") && s.contains("vector3.set"),
            "{s}"
        );

        let e = dec(br#"[{"id": "m3", "client": "a", "lt": 1, "ops": [{"ot": "number.set"}, 5]}]"#)
            .unwrap_err();
        assert!(e.to_string().contains("op #1"), "{e}");

        let e = dec(br#"[{"id": "m4", "client": "a", "lt": -1, "ops": []}]"#).unwrap_err();
        assert!(
            e.to_string().contains("\"m4\"") && e.to_string().contains("`lt`"),
            "{e}"
        );

        let e = dec(
            br#"[{"id": "m5", "client": "a", "lt": 1, "ops": [{"ot": "teleport", "key": "n"}]}]"#,
        )
        .unwrap_err();
        assert!(matches!(e, DecodeError::Op { op_index: 0, .. }), "{e}");
        assert!(
            e.to_string().contains("unknown operation type `teleport`"),
            "{e}"
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        assert!(matches!(
            dec(b"[{\"id\": \"x\", "),
            Err(DecodeError::Syntax { .. })
        ));
        assert!(matches!(dec(b"42"), Err(DecodeError::NotMessages { .. })));
        assert!(matches!(
            dec(b"[1]"),
            Err(DecodeError::Message { index: 0, .. })
        ));
        assert!(matches!(
            decode_messages(&[0xc1, 0x00], Format::MessagePack, &Limits::default()),
            Err(DecodeError::Syntax { .. })
        ));
    }

    #[test]
    fn lenient_keeps_valid_messages() {
        let mixed = br#"[{"id": "ok", "client": "a", "lt": 1, "ops": []},
            {"id": "bad", "client": "a", "lt": 2, "ops": [{"ot": "nope", "key": "n", "path": "p"}]},
            {"id": "ok2", "client": "a", "lt": 3, "ops": [5]}]"#;
        let (ok, errs) = decode_messages_lenient(mixed, Format::Json, &Limits::default()).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn one_object_is_accepted() {
        let m = decode_message(
            br#"{"id": "x", "client": "a", "lt": 1, "ops": [{"ot": "meta.undo", "key": "_meta", "path": "_meta", "targetMsgId": "y"}]}"#,
            Format::Json,
            &Limits::default(),
        )
        .unwrap();
        assert!(matches!(&m.ops[0].kind, OpKind::MetaUndo { target } if target == "y"));
    }
}

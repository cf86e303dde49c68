//! The frames of the sync protocol (`docs/protocol.md`): what a client and the
//! server (`vuer-rtc serve`) exchange over a WebSocket, one map per frame, its kind in
//! `mtype`. Binary frames are MessagePack ([`Encoding::MessagePack`]), text frames
//! JSON ([`Encoding::Json`]), same shapes; either may come wrapped in the Vuer
//! visualization server's framing ([`Framing::Vuer`]).
//!
//! Invariants:
//! - decoding never panics, and bounds a frame before serde builds anything of it:
//!   its nesting first (`bounded.rs`), then each field is parsed from its own bytes
//!   (the frame is never parsed whole);
//! - a message (a `crdt`'s `msg`; `broadcast`, `broadcast-batch` and the `state`
//!   journal) is decoded from its own bytes by [`wire::decode_message`] /
//!   [`wire::decode_messages`] with the caller's [`Limits`]: the wire's bounded
//!   pre-pass (sizes, counts, depth, `max_message_bytes`) runs before any of it is
//!   built, and the message is validated whole, exactly as the wire validates it;
//! - every decoding error starts with a stable code ([`FrameErrorKind::code`]) and
//!   names the message id (and op index) where readable;
//! - messages go out in the short spelling (`client`, `lt`, `ts`, `ot`), written
//!   straight into the frame ([`wire::OutMessage`]), never through a JSON value;
//! - `decode(encode(frame)) == frame` for every frame, in both encodings and framings.

mod bloom;
mod bounded;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{DecodeError, OpError};
use crate::op::parse::describe;
use crate::op::{Json, Limits, Message};
use crate::wire::{self, Format, MAX_DEPTH, OutMessage};
pub use bloom::BloomFilter;

/// A vector clock: per client, how many of its messages are held.
pub type Clock = BTreeMap<String, u64>;

/// How a frame is encoded (the WebSocket frame type says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary frames: one MessagePack map.
    MessagePack,
    /// Text frames: one JSON object.
    Json,
}

impl Encoding {
    fn format(self) -> Format {
        match self {
            Encoding::MessagePack => Format::MessagePack,
            Encoding::Json => Format::Json,
        }
    }
}

/// How a frame is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// The map itself: `{mtype, …}`.
    #[default]
    Plain,
    /// The Vuer server's RTC events: `{etype: "RTC", value: {mtype, …}}` from clients,
    /// `{etype: "RTC", data: {mtype, …}}` from the server (either key is read).
    Vuer,
}

/// A frame a client sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientFrame {
    /// `{mtype: "crdt", msg}`: one message to merge.
    Crdt(Message),
    /// `{mtype: "sync", vectorClock, filter?, count?}`: send what I lack.
    Sync {
        /// Per client, how many of its messages the client holds.
        vector_clock: Clock,
        /// The ids the client holds, for messages without clock counters.
        filter: Option<BloomFilter>,
    },
    /// `{mtype: "heartbeat", client, vectorClock}`: I am here.
    Heartbeat {
        /// The client's name.
        client: String,
        /// Its clock.
        vector_clock: Clock,
    },
    /// `{mtype: "sync-check", requestId}`: tell me your clock and state hash.
    SyncCheck {
        /// Echoed in the `sync-status` answer.
        request_id: String,
    },
}

/// What a `state` frame's snapshot carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SnapshotBody<'a> {
    /// The base as canonical state JSON (`{nodes, rootKey}`).
    Graph(&'a Json),
    /// The engine's snapshot bytes of the whole replica (fast join).
    Bytes(&'a [u8]),
}

/// The `snapshot` of a `state` frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateSnapshot<'a> {
    /// The state.
    pub body: SnapshotBody<'a>,
    /// Per client, how many of its messages the snapshot holds.
    pub vector_clock: &'a Clock,
    /// The Lamport time it holds everything through.
    pub lt: u64,
    /// How many of the scene's accepted messages it holds.
    pub journal_index: u64,
}

/// The `status` of a `sync-status` frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncStatus<'a> {
    /// The server's clock.
    pub vector_clock: &'a Clock,
    /// Its Lamport time.
    pub lt: u64,
    /// The hash of its canonical state JSON (`Replica::state_hash`).
    pub hash: u64,
}

/// A frame the server sends (borrowed, to encode).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServerFrame<'a> {
    /// `{mtype: "state", snapshot, journal}`.
    State {
        /// The snapshot.
        snapshot: StateSnapshot<'a>,
        /// The messages after it, in canonical order.
        journal: &'a [&'a Message],
    },
    /// `{mtype: "ack", msgId, serverSeq}`.
    Ack {
        /// The acknowledged message.
        msg_id: &'a str,
        /// Its position in the scene's log, from 1 (0: it was already held).
        server_seq: u64,
    },
    /// `{mtype: "error", msgId, error}`.
    Error {
        /// The refused message, when its id was readable.
        msg_id: Option<&'a str>,
        /// `"<code>: <reason>"`.
        error: &'a str,
    },
    /// `{mtype: "broadcast", msg}`.
    Broadcast {
        /// Another client's message.
        msg: &'a Message,
    },
    /// `{mtype: "broadcast-batch", msgs}`.
    BroadcastBatch {
        /// The messages of one merged batch.
        msgs: &'a [&'a Message],
    },
    /// `{mtype: "sync-status", requestId, status}`.
    SyncStatus {
        /// The `sync-check`'s id.
        request_id: &'a str,
        /// The server's clock, Lamport time and state hash.
        status: Option<SyncStatus<'a>>,
    },
    /// `{mtype: "heartbeat", client, vectorClock}`.
    Heartbeat {
        /// Who sends it.
        client: &'a str,
        /// A clock.
        vector_clock: &'a Clock,
    },
}

/// A decoded `state` snapshot (owned).
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedBody {
    /// Canonical state JSON.
    Graph(Json),
    /// Engine snapshot bytes.
    Bytes(Vec<u8>),
}

/// A decoded `state` snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedSnapshot {
    /// The state.
    pub body: OwnedBody,
    /// Per client, how many of its messages the snapshot holds.
    pub vector_clock: Clock,
    /// The Lamport time it holds everything through.
    pub lt: u64,
    /// How many of the scene's accepted messages it holds.
    pub journal_index: u64,
}

/// A decoded `sync-status`.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedSyncStatus {
    /// The server's clock.
    pub vector_clock: Clock,
    /// Its Lamport time.
    pub lt: u64,
    /// Its state hash.
    pub hash: u64,
}

/// A frame from the server, decoded (what a client reads).
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// `state`.
    State {
        /// The snapshot.
        snapshot: OwnedSnapshot,
        /// The messages after it.
        journal: Vec<Message>,
    },
    /// `ack`.
    Ack {
        /// The message.
        msg_id: String,
        /// Its position (0: already held).
        server_seq: u64,
    },
    /// `error`.
    Error {
        /// The refused message.
        msg_id: Option<String>,
        /// `"<code>: <reason>"`.
        error: String,
    },
    /// `broadcast`.
    Broadcast(Message),
    /// `broadcast-batch`.
    BroadcastBatch(Vec<Message>),
    /// `sync-status`.
    SyncStatus {
        /// The `sync-check`'s id.
        request_id: String,
        /// The status.
        status: Option<OwnedSyncStatus>,
    },
    /// `heartbeat`.
    Heartbeat {
        /// Who sent it.
        client: String,
        /// Its clock.
        vector_clock: Clock,
    },
}

/// What was wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The bytes are not a well-formed map.
    Malformed,
    /// `mtype` is missing or unknown.
    UnknownMtype,
    /// A field is missing.
    MissingField,
    /// A field has the wrong type.
    WrongType,
    /// The `msg` is not a valid message.
    InvalidMessage,
    /// A value breaks a limit.
    TooLarge,
}

impl FrameErrorKind {
    /// The stable code that starts the `error` text.
    pub fn code(self) -> &'static str {
        match self {
            FrameErrorKind::Malformed => "malformed",
            FrameErrorKind::UnknownMtype => "unknown_mtype",
            FrameErrorKind::MissingField => "missing_field",
            FrameErrorKind::WrongType => "wrong_type",
            FrameErrorKind::InvalidMessage => "invalid_message",
            FrameErrorKind::TooLarge => "too_large",
        }
    }
}

/// A frame that could not be decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}: {reason}", kind.code())]
pub struct FrameError {
    /// The id of the message in it, when readable.
    pub msg_id: Option<String>,
    /// What kind of problem.
    pub kind: FrameErrorKind,
    /// Why, for people.
    pub reason: String,
}

impl FrameError {
    fn new(kind: FrameErrorKind, reason: impl Into<String>) -> FrameError {
        FrameError {
            msg_id: None,
            kind,
            reason: reason.into(),
        }
    }
}

impl From<DecodeError> for FrameError {
    /// A message that failed [`crate::wire`]'s validation: `too_large` when it broke a
    /// limit, `malformed` when its bytes do not parse, else `invalid_message`; the
    /// reason is the [`DecodeError`]'s text (it names the message id and op index).
    fn from(e: DecodeError) -> FrameError {
        let (msg_id, kind) = match &e {
            DecodeError::Syntax { .. } => (None, FrameErrorKind::Malformed),
            DecodeError::NotMessages { .. } => (None, FrameErrorKind::WrongType),
            DecodeError::Message { id, reason, .. } => (
                id.clone(),
                // The wire's limit texts: "… exceed(s) the limit …", "… exceeds N
                // bytes", "… has more than N entries" (see `wire::scan`).
                if reason.contains("exceed") || reason.contains("has more than") {
                    FrameErrorKind::TooLarge
                } else {
                    FrameErrorKind::InvalidMessage
                },
            ),
            DecodeError::Op { msg_id, reason, .. } => (
                Some(msg_id.clone()),
                if matches!(reason, OpError::TooLarge { .. }) {
                    FrameErrorKind::TooLarge
                } else {
                    FrameErrorKind::InvalidMessage
                },
            ),
        };
        FrameError {
            msg_id: msg_id.filter(|id| id != "<no id>"),
            kind,
            reason: e.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Decoding
//
// A frame is never parsed whole. `bounded::check` bounds its nesting; then
// `bounded::map_entries` finds each key's value bytes, and each field is parsed from
// its own bytes: a message (`msg`, each of `msgs` and `journal`) by the wire decoder,
// with its bounded pre-pass and the caller's limits; a small field into a JSON value
// (safe: the nesting is bounded); bytes (`filter`, `snapshot.bytes`) straight into a
// buffer. Values of keys the frame does not use are checked for syntax and dropped.

/// Bytes: MessagePack bin, a base64 string (JSON) or an array of byte numbers.
#[derive(Debug, Default)]
struct Blob(Vec<u8>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes (MessagePack bin, or base64 in JSON)")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                base64_decode(v)
                    .map(Blob)
                    .ok_or_else(|| E::custom("a string that is not base64"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Blob(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes one value from exactly `bytes` ([`wire::typed`]: recursion limits
/// lifted; only frames that passed [`bounded::check`] get here).
fn typed<'a, T: Deserialize<'a>>(bytes: &'a [u8], format: Format) -> Result<T, String> {
    wire::typed(bytes, format)
}

fn walk_error(w: bounded::Walk) -> FrameError {
    match w {
        bounded::Walk::TooDeep(d) => FrameError::new(
            FrameErrorKind::TooLarge,
            format!("the frame nests deeper than {d} levels"),
        ),
        bounded::Walk::Malformed(why) => FrameError::new(FrameErrorKind::Malformed, why),
    }
}

fn missing(field: &str) -> FrameError {
    FrameError::new(
        FrameErrorKind::MissingField,
        format!("missing field `{field}`"),
    )
}

fn wrong(field: &str, expected: &str, got: &Json) -> FrameError {
    FrameError::new(
        FrameErrorKind::WrongType,
        format!(
            "field `{field}`: expected {expected}, got {}",
            describe(got)
        ),
    )
}

fn too_large(field: &str, what: String) -> FrameError {
    FrameError::new(FrameErrorKind::TooLarge, format!("field `{field}`: {what}"))
}

/// One map of a frame: each key with its value's bytes.
struct Fields<'a> {
    format: Format,
    /// `prefix.` for the fields of a nested map (`snapshot.`), in errors.
    prefix: &'static str,
    entries: Vec<(String, &'a [u8])>,
    /// Which entries a decoder read (the others are checked by [`Fields::finish`]).
    used: Vec<bool>,
}

impl<'a> Fields<'a> {
    fn of(bytes: &'a [u8], format: Format, prefix: &'static str) -> Result<Self, FrameError> {
        let entries = bounded::map_entries(bytes, format).map_err(walk_error)?;
        // A set, not a pairwise scan: a frame may carry many (unknown) keys.
        let mut seen = ahash::AHashSet::with_capacity(entries.len());
        for (k, _) in &entries {
            if !seen.insert(k.as_str()) {
                return Err(FrameError::new(
                    FrameErrorKind::Malformed,
                    format!("duplicate field `{prefix}{k}`"),
                ));
            }
        }
        let used = vec![false; entries.len()];
        Ok(Fields {
            format,
            prefix,
            entries,
            used,
        })
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The bytes of `key`'s value; `None` when absent or null.
    fn span(&mut self, key: &str) -> Option<&'a [u8]> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        let span = self.entries[i].1;
        (!bounded::is_null(span, self.format)).then_some(span)
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    fn parse<T: Deserialize<'a>>(&self, key: &str, span: &'a [u8]) -> Result<T, FrameError> {
        typed(span, self.format).map_err(|e| {
            FrameError::new(
                FrameErrorKind::Malformed,
                format!("field `{}`: {e}", self.name(key)),
            )
        })
    }

    /// `key`'s value as a JSON value (`None`: absent or null).
    fn json(&mut self, key: &str) -> Result<Option<Json>, FrameError> {
        match self.span(key) {
            None => Ok(None),
            Some(span) => self.parse(key, span).map(Some),
        }
    }

    fn string(&mut self, key: &str, limits: &Limits) -> Result<String, FrameError> {
        match self.json(key)? {
            None => Err(missing(&self.name(key))),
            Some(Json::String(s)) if s.len() > limits.max_string_bytes => Err(too_large(
                &self.name(key),
                format!(
                    "{} bytes exceed the limit of {}",
                    s.len(),
                    limits.max_string_bytes
                ),
            )),
            Some(Json::String(s)) => Ok(s),
            Some(other) => Err(wrong(&self.name(key), "a string", &other)),
        }
    }

    fn opt_string(&mut self, key: &str, limits: &Limits) -> Result<Option<String>, FrameError> {
        if self.span(key).is_none() {
            return Ok(None);
        }
        self.string(key, limits).map(Some)
    }

    /// A non-negative integer; `default` when absent (`None`: required).
    fn uint(&mut self, key: &str, default: Option<u64>) -> Result<u64, FrameError> {
        match (self.json(key)?, default) {
            (None, Some(d)) => Ok(d),
            (None, None) => Err(missing(&self.name(key))),
            (Some(v), _) => uint(&self.name(key), &v),
        }
    }

    /// A vector clock; empty when absent.
    fn clock(&mut self, key: &str, limits: &Limits) -> Result<Clock, FrameError> {
        let name = self.name(key);
        match self.json(key)? {
            None => Ok(Clock::new()),
            Some(Json::Object(map)) => {
                if map.len() > limits.max_collection_len {
                    return Err(too_large(
                        &name,
                        format!(
                            "{} entries exceed the limit of {}",
                            map.len(),
                            limits.max_collection_len
                        ),
                    ));
                }
                map.into_iter()
                    .map(|(k, v)| {
                        if k.len() > limits.max_string_bytes {
                            return Err(too_large(
                                &name,
                                format!("a key exceeds {} bytes", limits.max_string_bytes),
                            ));
                        }
                        uint(&format!("{name}.{k}"), &v).map(|n| (k, n))
                    })
                    .collect()
            }
            Some(other) => Err(wrong(&name, "a map of client to count", &other)),
        }
    }

    /// Bytes (bin, or base64 in JSON); `None` when absent or null.
    fn blob(&mut self, key: &str) -> Result<Option<Vec<u8>>, FrameError> {
        match self.span(key) {
            None => Ok(None),
            Some(span) => self.parse::<Blob>(key, span).map(|b| Some(b.0)),
        }
    }

    /// A nested map; `None` when absent or null.
    fn map(&mut self, key: &str, prefix: &'static str) -> Result<Option<Fields<'a>>, FrameError> {
        match self.span(key) {
            None => Ok(None),
            Some(span) if bounded::is_map(span, self.format) => {
                Fields::of(span, self.format, prefix).map(Some)
            }
            Some(span) => {
                let got: Json = self.parse(key, span)?;
                Err(wrong(&self.name(key), "a map", &got))
            }
        }
    }

    /// One message, through the wire decoder (its pre-pass first).
    fn message(&mut self, key: &str, limits: &Limits) -> Result<Message, FrameError> {
        let Some(span) = self.span(key) else {
            return Err(missing(&self.name(key)));
        };
        if !bounded::is_map(span, self.format) {
            let got: Json = self.parse(key, span)?;
            return Err(wrong(&self.name(key), "a message map", &got));
        }
        wire::decode_message(span, self.format, limits).map_err(|e| {
            let mut e = FrameError::from(e);
            // Name the message even when the wire error could not (a syntax error).
            e.msg_id = e.msg_id.or_else(|| read_id(span, self.format));
            e
        })
    }

    /// An array of messages, through the wire decoder; empty when absent.
    fn messages(&mut self, key: &str, limits: &Limits) -> Result<Vec<Message>, FrameError> {
        let Some(span) = self.span(key) else {
            return Ok(Vec::new());
        };
        if !bounded::is_array(span, self.format) {
            let got: Json = self.parse(key, span)?;
            return Err(wrong(&self.name(key), "an array of messages", &got));
        }
        wire::decode_messages(span, self.format, limits).map_err(FrameError::from)
    }

    /// Checks the syntax of the values no decoder read (they are dropped).
    fn finish(self) -> Result<(), FrameError> {
        for ((k, span), used) in self.entries.iter().zip(&self.used) {
            if !used {
                typed::<de::IgnoredAny>(span, self.format).map_err(|e| {
                    FrameError::new(
                        FrameErrorKind::Malformed,
                        format!("field `{}{k}`: {e}", self.prefix),
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// A message's `id`, read without decoding the message (for errors).
fn read_id(span: &[u8], format: Format) -> Option<String> {
    let entries = bounded::map_entries(span, format).ok()?;
    let (_, id) = entries.into_iter().find(|(k, _)| k == "id")?;
    typed::<String>(id, format).ok()
}

fn uint(field: &str, v: &Json) -> Result<u64, FrameError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    // A whole float (some clients write every number as a double).
    match v.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 2f64.powi(64) => Ok(f as u64),
        _ => Err(wrong(field, "a non-negative integer", v)),
    }
}

/// Bounds the bytes, finds the frame's map (inside the Vuer wrapper, if any) and its
/// `mtype`.
fn open<'a>(
    bytes: &'a [u8],
    encoding: Encoding,
    limits: &Limits,
) -> Result<(Fields<'a>, Framing, String), FrameError> {
    let format = encoding.format();
    // Above a message's own levels: the Vuer wrapper, the frame, `journal`.
    let depth = limits.max_depth.min(MAX_DEPTH) + 6;
    bounded::check(bytes, format, depth).map_err(walk_error)?;
    let mut fields = Fields::of(bytes, format, "")?;
    let mut framing = Framing::Plain;
    if !fields.has("mtype") && fields.has("etype") {
        match fields.json("etype")? {
            Some(Json::String(e)) if e == "RTC" => {}
            other => {
                return Err(FrameError::new(
                    FrameErrorKind::UnknownMtype,
                    format!(
                        "etype {} is not \"RTC\"",
                        other.as_ref().map_or("null".into(), describe)
                    ),
                ));
            }
        }
        let key = if fields.has("value") { "value" } else { "data" };
        let inner = fields
            .map(key, "")?
            .ok_or_else(|| missing("value` (or `data"))?;
        fields.finish()?;
        fields = inner;
        framing = Framing::Vuer;
    }
    let mtype = match fields.json("mtype")? {
        None => {
            return Err(FrameError::new(
                FrameErrorKind::UnknownMtype,
                "missing `mtype`",
            ));
        }
        Some(Json::String(s)) => s,
        Some(other) => return Err(wrong("mtype", "a string", &other)),
    };
    Ok((fields, framing, mtype))
}

/// Decodes one frame from a client; also tells which framing it used.
///
/// # Errors
/// [`FrameError`] (see [`FrameErrorKind`]); the `crdt` message's errors name its id
/// and op index.
///
/// # Examples
/// ```
/// use vuer_rtc::protocol::{decode_client_frame, ClientFrame, Encoding, Framing};
/// let bytes = br#"{"mtype": "crdt", "msg": {"id": "a:1", "sessionId": "a", "lamportTime": 1,
///                  "ops": [{"otype": "number.set", "key": "n", "path": "x", "value": 1}]}}"#;
/// let (frame, framing) = decode_client_frame(bytes, Encoding::Json, &Default::default()).unwrap();
/// assert!(matches!(frame, ClientFrame::Crdt(m) if m.client == "a"));
/// assert_eq!(framing, Framing::Plain);
/// ```
pub fn decode_client_frame(
    bytes: &[u8],
    encoding: Encoding,
    limits: &Limits,
) -> Result<(ClientFrame, Framing), FrameError> {
    let (mut f, framing, mtype) = open(bytes, encoding, limits)?;
    let frame = match mtype.as_str() {
        "crdt" => ClientFrame::Crdt(f.message("msg", limits)?),
        "sync" => {
            let vector_clock = f.clock("vectorClock", limits)?;
            let filter = match f.blob("filter")? {
                None => None,
                Some(bits) if bits.len() > limits.max_string_bytes => {
                    return Err(too_large(
                        "filter",
                        format!(
                            "{} bytes exceed the limit of {}",
                            bits.len(),
                            limits.max_string_bytes
                        ),
                    ));
                }
                Some(bits) => Some(BloomFilter::from_parts(bits, f.uint("count", Some(0))?)),
            };
            ClientFrame::Sync {
                vector_clock,
                filter,
            }
        }
        "heartbeat" => ClientFrame::Heartbeat {
            client: f.string("client", limits)?,
            vector_clock: f.clock("vectorClock", limits)?,
        },
        "sync-check" => ClientFrame::SyncCheck {
            request_id: f.string("requestId", limits)?,
        },
        other => {
            return Err(FrameError::new(
                FrameErrorKind::UnknownMtype,
                format!(
                    "unknown mtype {other:?} (a client sends crdt, sync, heartbeat or sync-check)"
                ),
            ));
        }
    };
    f.finish()?;
    Ok((frame, framing))
}

/// The head of a message in a broadcast frame, read without its ops
/// ([`scan_broadcast`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MessageHead<'a> {
    /// `id`.
    pub id: &'a str,
    /// `client`.
    pub client: &'a str,
    /// `lt`.
    pub lt: u64,
    /// `ts` (seconds).
    pub ts: f64,
}

/// Reads the heads (id, client, Lamport time, timestamp) of the messages of a
/// MessagePack `broadcast` or `broadcast-batch` frame in the plain framing, calling
/// `each` for each in order, without building or validating the ops: for load
/// generators, relays and monitors that only count and time what a server they trust
/// sends. A `broadcast`'s ops are not even walked when the head fields come first (the
/// short spelling this crate writes).
///
/// Returns `None` for any other frame (and for JSON or the Vuer framing): decode those
/// with [`decode_server_frame`]; `Some(Ok(n))` with the number of messages read; and
/// `Some(Err(_))` for a broken frame (messages before the break were given to `each`).
/// Never panics.
pub fn scan_broadcast<'a>(
    bytes: &'a [u8],
    encoding: Encoding,
    mut each: impl FnMut(MessageHead<'a>),
) -> Option<Result<usize, FrameError>> {
    let (batch, body) = match broadcast_body(bytes, encoding)? {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    let broken = |why: &str| FrameError::new(FrameErrorKind::Malformed, why.to_owned());
    let head = |m: &'a [u8]| -> Result<MessageHead<'a>, FrameError> {
        let (mut id, mut client, mut lt, mut ts) = (None, None, None, None);
        for e in bounded::mp_map(m).map_err(walk_error)? {
            let (k, v) = e.map_err(walk_error)?;
            match k {
                Some("id") => id = bounded::mp_str_at(v),
                Some("client") => client = bounded::mp_str_at(v),
                Some("lt") => lt = bounded::mp_number_at(v),
                Some("ts") => ts = bounded::mp_number_at(v),
                _ => {}
            }
            if let (Some(id), Some(client), Some(lt), Some(ts)) = (id, client, lt, ts) {
                return Ok(MessageHead {
                    id,
                    client,
                    // Lamport times are integers below 2^53 on the wire.
                    lt: lt as u64,
                    ts,
                });
            }
        }
        Err(broken("a message without id, client, lt and ts"))
    };
    if !batch {
        return Some(head(body).map(|h| {
            each(h);
            1
        }));
    }
    let items = match bounded::mp_array(body) {
        Ok(items) => items,
        Err(w) => return Some(Err(walk_error(w))),
    };
    let mut n = 0;
    for item in items {
        match item.map_err(walk_error).and_then(head) {
            Ok(h) => {
                each(h);
                n += 1;
            }
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(n))
}

/// How many messages a MessagePack `broadcast` (1) or `broadcast-batch` frame in the
/// plain framing holds, read from the array's header alone (nothing else of the frame
/// is walked or checked). `None` for any other frame, as [`scan_broadcast`].
pub fn count_broadcast(bytes: &[u8], encoding: Encoding) -> Option<Result<usize, FrameError>> {
    Some(match broadcast_body(bytes, encoding)? {
        Ok((false, _)) => Ok(1),
        Ok((true, body)) => bounded::mp_array(body)
            .map(|items| items.len())
            .map_err(walk_error),
        Err(e) => Err(e),
    })
}

/// Whether a frame is a `broadcast-batch` (else a `broadcast`), and its `msgs` / `msg`
/// value; `None` for any other frame, JSON, or the Vuer framing.
fn broadcast_body(bytes: &[u8], encoding: Encoding) -> Option<Result<(bool, &[u8]), FrameError>> {
    if encoding != Encoding::MessagePack {
        return None;
    }
    let mut entries = bounded::mp_map(bytes).ok()?;
    let (Some("mtype"), mtype) = entries.next()?.ok()? else {
        return None;
    };
    let batch = match bounded::mp_str_at(mtype)? {
        "broadcast" => false,
        "broadcast-batch" => true,
        _ => return None,
    };
    let want = if batch { "msgs" } else { "msg" };
    Some(loop {
        match entries.next() {
            None => break Err(missing(want)),
            Some(Err(w)) => break Err(walk_error(w)),
            Some(Ok((Some(k), v))) if k == want => break Ok((batch, v)),
            Some(Ok(_)) => {}
        }
    })
}

/// Decodes one frame from the server (what a client reads). Messages (`broadcast`,
/// `broadcast-batch`, the `state` journal) are validated as [`decode_client_frame`]
/// validates a `crdt` message.
///
/// # Errors
/// [`FrameError`], as [`decode_client_frame`].
pub fn decode_server_frame(
    bytes: &[u8],
    encoding: Encoding,
    limits: &Limits,
) -> Result<(ServerMessage, Framing), FrameError> {
    let (mut f, framing, mtype) = open(bytes, encoding, limits)?;
    let frame = match mtype.as_str() {
        "state" => {
            let mut s = f
                .map("snapshot", "snapshot.")?
                .ok_or_else(|| missing("snapshot"))?;
            let body = match s.blob("bytes")? {
                Some(b) => OwnedBody::Bytes(b),
                None => {
                    OwnedBody::Graph(s.json("graph")?.ok_or_else(|| missing("snapshot.graph"))?)
                }
            };
            let snapshot = OwnedSnapshot {
                body,
                vector_clock: s.clock("vectorClock", limits)?,
                lt: s.uint("lt", Some(0))?,
                journal_index: s.uint("journalIndex", Some(0))?,
            };
            // `format` names the body ("vuer-rtc-snapshot"); `bytes` says it already.
            let _ = s.span("format");
            s.finish()?;
            ServerMessage::State {
                snapshot,
                journal: f.messages("journal", limits)?,
            }
        }
        "ack" => ServerMessage::Ack {
            msg_id: f.string("msgId", limits)?,
            server_seq: f.uint("serverSeq", Some(0))?,
        },
        "error" => ServerMessage::Error {
            msg_id: f.opt_string("msgId", limits)?,
            error: f.string("error", limits)?,
        },
        "broadcast" => ServerMessage::Broadcast(f.message("msg", limits)?),
        "broadcast-batch" => ServerMessage::BroadcastBatch(f.messages("msgs", limits)?),
        "sync-status" => ServerMessage::SyncStatus {
            request_id: f.string("requestId", limits)?,
            status: match f.map("status", "status.")? {
                None => None,
                Some(mut s) => {
                    let hash = s.string("hash", limits)?;
                    let status = OwnedSyncStatus {
                        vector_clock: s.clock("vectorClock", limits)?,
                        lt: s.uint("lt", None)?,
                        hash: parse_hash(&hash).ok_or_else(|| {
                            wrong("status.hash", "16 hex digits", &Json::String(hash))
                        })?,
                    };
                    s.finish()?;
                    Some(status)
                }
            },
        },
        "heartbeat" => ServerMessage::Heartbeat {
            client: f.string("client", limits)?,
            vector_clock: f.clock("vectorClock", limits)?,
        },
        other => {
            return Err(FrameError::new(
                FrameErrorKind::UnknownMtype,
                format!("unknown mtype {other:?} from a server"),
            ));
        }
    };
    f.finish()?;
    Ok((frame, framing))
}

/// 1 to 16 hex digits (either case), nothing else.
fn parse_hash(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

// ---------------------------------------------------------------------------------
// Encoding

/// Bytes as MessagePack bin, or base64 in JSON.
struct Bin<'a> {
    bytes: &'a [u8],
    base64: bool,
}

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.base64 {
            s.serialize_str(&base64_encode(self.bytes))
        } else {
            s.serialize_bytes(self.bytes)
        }
    }
}

struct Msgs<'a>(&'a [&'a Message]);

impl Serialize for Msgs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| OutMessage(m)))
    }
}

#[derive(Serialize)]
struct OutSnapshot<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<&'a Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<Bin<'a>>,
    #[serde(rename = "vectorClock")]
    vector_clock: &'a Clock,
    lt: u64,
    #[serde(rename = "journalIndex")]
    journal_index: u64,
}

#[derive(Serialize)]
struct OutStatus<'a> {
    #[serde(rename = "vectorClock")]
    vector_clock: &'a Clock,
    lt: u64,
    hash: String,
}

/// Every field of every out-going frame; absent ones are left out.
#[derive(Default, Serialize)]
struct OutFrame<'a> {
    mtype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgs: Option<Msgs<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<OutSnapshot<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<Msgs<'a>>,
    #[serde(rename = "msgId", skip_serializing_if = "Option::is_none")]
    msg_id: Option<Option<&'a str>>,
    #[serde(rename = "serverSeq", skip_serializing_if = "Option::is_none")]
    server_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Option<OutStatus<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(rename = "vectorClock", skip_serializing_if = "Option::is_none")]
    vector_clock: Option<&'a Clock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<Bin<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

#[derive(Serialize)]
struct Wrapped<'a> {
    etype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a OutFrame<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a OutFrame<'a>>,
}

fn write(frame: &OutFrame<'_>, encoding: Encoding, framing: Framing, from_server: bool) -> Vec<u8> {
    fn enc<T: Serialize>(v: &T, encoding: Encoding) -> Vec<u8> {
        // Serializing these plain structs into memory cannot fail: every map key is a
        // string and every number finite.
        match encoding {
            Encoding::Json => serde_json::to_vec(v).unwrap_or_default(),
            Encoding::MessagePack => rmp_serde::to_vec_named(v).unwrap_or_default(),
        }
    }
    match framing {
        Framing::Plain => enc(frame, encoding),
        Framing::Vuer => {
            let w = Wrapped {
                etype: "RTC",
                value: (!from_server).then_some(frame),
                data: from_server.then_some(frame),
            };
            enc(&w, encoding)
        }
    }
}

/// Encodes a server frame.
///
/// # Examples
/// ```
/// use vuer_rtc::protocol::{encode_server_frame, decode_server_frame, Encoding, Framing, ServerFrame, ServerMessage};
/// let bytes = encode_server_frame(&ServerFrame::Ack { msg_id: "a:1", server_seq: 7 }, Encoding::Json, Framing::Vuer);
/// assert_eq!(bytes, br#"{"etype":"RTC","data":{"mtype":"ack","msgId":"a:1","serverSeq":7}}"#);
/// let (back, _) = decode_server_frame(&bytes, Encoding::Json, &Default::default()).unwrap();
/// assert_eq!(back, ServerMessage::Ack { msg_id: "a:1".into(), server_seq: 7 });
/// ```
pub fn encode_server_frame(
    frame: &ServerFrame<'_>,
    encoding: Encoding,
    framing: Framing,
) -> Vec<u8> {
    let base64 = encoding == Encoding::Json;
    let out = match *frame {
        ServerFrame::State { snapshot, journal } => {
            let (graph, format, bytes) = match snapshot.body {
                SnapshotBody::Graph(g) => (Some(g), None, None),
                SnapshotBody::Bytes(b) => (
                    None,
                    Some("vuer-rtc-snapshot"),
                    Some(Bin { bytes: b, base64 }),
                ),
            };
            OutFrame {
                mtype: "state",
                snapshot: Some(OutSnapshot {
                    graph,
                    format,
                    bytes,
                    vector_clock: snapshot.vector_clock,
                    lt: snapshot.lt,
                    journal_index: snapshot.journal_index,
                }),
                journal: Some(Msgs(journal)),
                ..OutFrame::default()
            }
        }
        ServerFrame::Ack { msg_id, server_seq } => OutFrame {
            mtype: "ack",
            msg_id: Some(Some(msg_id)),
            server_seq: Some(server_seq),
            ..OutFrame::default()
        },
        ServerFrame::Error { msg_id, error } => OutFrame {
            mtype: "error",
            msg_id: Some(msg_id),
            error: Some(error),
            ..OutFrame::default()
        },
        ServerFrame::Broadcast { msg } => OutFrame {
            mtype: "broadcast",
            msg: Some(OutMessage(msg)),
            ..OutFrame::default()
        },
        ServerFrame::BroadcastBatch { msgs } => OutFrame {
            mtype: "broadcast-batch",
            msgs: Some(Msgs(msgs)),
            ..OutFrame::default()
        },
        ServerFrame::SyncStatus { request_id, status } => OutFrame {
            mtype: "sync-status",
            request_id: Some(request_id),
            status: Some(status.map(|s| OutStatus {
                vector_clock: s.vector_clock,
                lt: s.lt,
                hash: format!("{:016x}", s.hash),
            })),
            ..OutFrame::default()
        },
        ServerFrame::Heartbeat {
            client,
            vector_clock,
        } => OutFrame {
            mtype: "heartbeat",
            client: Some(client),
            vector_clock: Some(vector_clock),
            ..OutFrame::default()
        },
    };
    write(&out, encoding, framing, true)
}

/// The MessagePack `broadcast` frame of one message already encoded by
/// [`wire::encode_message`] (MessagePack): the bytes [`encode_server_frame`] writes for
/// it, without encoding the message again (a server that journals those same bytes
/// encodes each message once).
pub fn encode_broadcast_encoded(msg: &[u8], framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 32);
    frame_head(&mut out, framing, "broadcast", "msg");
    out.extend_from_slice(msg);
    out
}

/// The MessagePack `broadcast-batch` frame of messages already encoded by
/// [`wire::encode_message`] (MessagePack), as [`encode_broadcast_encoded`].
pub fn encode_broadcast_batch_encoded(msgs: &[&[u8]], framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(msgs.iter().map(|m| m.len()).sum::<usize>() + 40);
    frame_head(&mut out, framing, "broadcast-batch", "msgs");
    match msgs.len() {
        n @ 0..=15 => out.push(0x90 | n as u8),
        n @ 16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdd);
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    for m in msgs {
        out.extend_from_slice(m);
    }
    out
}

/// `{etype: "RTC", data: ` (Vuer framing) then `{mtype: <mtype>, <key>: ` in
/// MessagePack, as `rmp_serde` writes the frame structs (two-entry maps, short keys).
fn frame_head(out: &mut Vec<u8>, framing: Framing, mtype: &str, key: &str) {
    fn fixstr(out: &mut Vec<u8>, s: &str) {
        // Only the constant names above: all shorter than 32 bytes.
        out.push(0xa0 | (s.len() as u8 & 0x1f));
        out.extend_from_slice(s.as_bytes());
    }
    if framing == Framing::Vuer {
        out.push(0x82);
        fixstr(out, "etype");
        fixstr(out, "RTC");
        fixstr(out, "data");
    }
    out.push(0x82);
    fixstr(out, "mtype");
    fixstr(out, mtype);
    fixstr(out, key);
}

/// Encodes a client frame.
///
/// # Examples
/// ```
/// use vuer_rtc::protocol::{encode_client_frame, ClientFrame, Encoding, Framing};
/// let bytes = encode_client_frame(&ClientFrame::SyncCheck { request_id: "r1".into() }, Encoding::Json, Framing::Plain);
/// assert_eq!(bytes, br#"{"mtype":"sync-check","requestId":"r1"}"#);
/// ```
pub fn encode_client_frame(frame: &ClientFrame, encoding: Encoding, framing: Framing) -> Vec<u8> {
    let base64 = encoding == Encoding::Json;
    let out = match frame {
        ClientFrame::Crdt(msg) => OutFrame {
            mtype: "crdt",
            msg: Some(OutMessage(msg)),
            ..OutFrame::default()
        },
        ClientFrame::Sync {
            vector_clock,
            filter,
        } => OutFrame {
            mtype: "sync",
            vector_clock: Some(vector_clock),
            filter: filter.as_ref().map(|f| Bin {
                bytes: f.bytes(),
                base64,
            }),
            count: filter.as_ref().map(BloomFilter::count),
            ..OutFrame::default()
        },
        ClientFrame::Heartbeat {
            client,
            vector_clock,
        } => OutFrame {
            mtype: "heartbeat",
            client: Some(client),
            vector_clock: Some(vector_clock),
            ..OutFrame::default()
        },
        ClientFrame::SyncCheck { request_id } => OutFrame {
            mtype: "sync-check",
            request_id: Some(request_id),
            ..OutFrame::default()
        },
    };
    write(&out, encoding, framing, false)
}

// ---------------------------------------------------------------------------------
// Base64 (standard alphabet, padded), for bytes in JSON frames.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, chunk) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests;

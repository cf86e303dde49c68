//! The bounded pre-pass: [`scan`] walks untrusted bytes once, before serde builds
//! anything, and checks every limit that bounds memory.
//!
//! It allocates nothing per value (a stack of at most `max_depth + 4` frames and one
//! record per message), so a hostile input costs its own bytes and no more until it
//! has passed. Per message (an element of the top-level array, or the one top-level
//! object) it checks, in both formats:
//!
//! - the encoded size ≤ [`Limits::max_message_bytes`];
//! - the `ops` array's length ≤ [`Limits::max_ops_per_message`];
//! - every other array's length and object's entry count ≤
//!   [`Limits::max_collection_len`];
//! - every string's length in bytes (decoded: JSON escapes count as the bytes they
//!   stand for) ≤ [`Limits::max_string_bytes`];
//! - nesting: a container inside an op's field value at value depth *d* (the value
//!   itself is depth 0, as in [`crate::op::parse`]) needs *d* < `max_depth`; a
//!   container anywhere else in a message may nest as deep as an op value's
//!   outermost level would. `max_depth` is capped at [`MAX_DEPTH`];
//! - MessagePack floats are finite (JSON has no spelling for NaN or ∞).
//!
//! A message that breaks a limit gets the error here, naming its id (read wherever it
//! stands in the message), the op index and the field; nothing of it is decoded. The
//! scan also yields each message's byte span, so the messages that pass can be
//! decoded alone.
//!
//! Invariant: the scan never rejects a message that [`super::decode_messages`] would
//! accept with the same limits except for a limit the typed decoder does not check
//! (a string, array or NaN inside a field the decoder ignores). A message the scan
//! passes nests at most `max_depth + 4` containers deep, so the typed decoders run
//! without their own recursion limits.
//!
//! Syntax is not this module's business: where the bytes are not well-formed, the
//! scan answers [`Scanned::Malformed`] and serde reports the precise error — after
//! the scan has seen that everything before the defect keeps the limits.

use std::ops::Range;

use super::Format;
use crate::error::{DecodeError, OpError};
use crate::op::Limits;

/// The deepest value nesting any [`Limits`] may allow: a larger `max_depth` acts as
/// this one (deep recursion in the decoders would otherwise overflow the stack).
pub const MAX_DEPTH: usize = 512;

/// Containers above an op's field value: the top array, the message, `ops`, the op.
const ABOVE_VALUE: usize = 4;

/// One message's bytes and, when it breaks a limit, why.
#[derive(Debug)]
pub(crate) struct Item {
    /// Where the message's encoded value lies in the input.
    pub span: Range<usize>,
    /// The limit it breaks, if any.
    pub error: Option<DecodeError>,
}

/// What the scan found.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// The top value is an array (one item per element).
    Array(Vec<Item>),
    /// The top value is one object (one item).
    One(Item),
    /// Not well-formed, or not an array or object at the top: leave it to serde.
    Malformed,
    /// A limit broken inside a value the scan could not finish (the bytes end or go
    /// wrong after it): the error of that message.
    Broken(DecodeError),
}

/// Walks `bytes` (see the module doc).
pub(crate) fn scan(bytes: &[u8], format: Format, limits: &Limits) -> Scanned {
    let mut s = Scanner {
        bytes,
        pos: 0,
        lim: limits,
        max_frames: limits.max_depth.min(MAX_DEPTH) + ABOVE_VALUE,
        stack: Vec::new(),
        items: Vec::new(),
        msg: None,
        top_array: false,
    };
    let done = match format {
        Format::Json => s.json(),
        Format::MessagePack => s.msgpack(),
    };
    match done {
        Ok(()) if s.top_array => Scanned::Array(s.items),
        Ok(()) => match s.items.pop() {
            Some(item) if s.items.is_empty() => Scanned::One(item),
            _ => Scanned::Malformed,
        },
        Err(Stop) => {
            // A limit broken before the bytes went wrong wins over the syntax error:
            // that part is never handed to serde.
            let index = s.items.len();
            let open = s
                .msg
                .take()
                .and_then(|m| m.finish(bytes, index, bytes.len(), limits));
            match open.or_else(|| s.items.into_iter().find_map(|i| i.error)) {
                Some(e) => Scanned::Broken(e),
                None => Scanned::Malformed,
            }
        }
    }
}

/// The scan cannot go on: the bytes end early or are not well-formed.
struct Stop;

/// What a container is, by where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The top-level array of messages.
    Top,
    /// A message object.
    Message,
    /// A message's `ops` array.
    Ops,
    /// One op object.
    Op,
    /// Anything else.
    Other,
}

/// The key whose value comes next, where it matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// No key read yet, or one nobody asks about.
    None,
    /// A message's `id`.
    Id,
    /// A message's `ops`.
    Ops,
    /// An op's `ot` / `otype`.
    Ot,
    /// Another key, by its place in the input (named only in an error).
    Raw(usize, usize),
}

#[derive(Debug)]
struct Frame {
    role: Role,
    map: bool,
    /// Elements (arrays) or entries (objects) seen so far.
    count: usize,
    /// Objects: the key of the value being read.
    key: Key,
    /// JSON objects: the next string is a key. MessagePack: the next value is a key.
    expect_key: bool,
    /// MessagePack: values still to read (entries count twice).
    remaining: u64,
}

impl Frame {
    fn new(role: Role, map: bool, remaining: u64) -> Frame {
        Frame {
            role,
            map,
            count: 0,
            key: Key::None,
            expect_key: map,
            remaining,
        }
    }
}

/// A broken limit, as found (the message id may come later in the message).
#[derive(Debug)]
struct Problem {
    /// The op it is in (index, and its `ot` when read before the problem).
    op: Option<(usize, Option<String>)>,
    /// The field (an op's field, or a message-level field).
    field: &'static str,
    what: What,
}

#[derive(Debug)]
enum What {
    Depth,
    Collection,
    StringLen,
    NonFinite(f64),
    Ops,
}

/// A string value's place in the input, and whether it has JSON escapes.
type StrAt = (usize, usize, bool);

/// The message being scanned.
#[derive(Debug)]
struct Msg {
    start: usize,
    /// Where its `id` string is (read only for an error).
    id: Option<StrAt>,
    /// Ops seen (or declared, in MessagePack).
    ops: u64,
    /// The op being read, and where its `ot` is when read.
    op: Option<(usize, Option<StrAt>)>,
    problem: Option<Problem>,
}

/// The string at `at`, decoded (only for error messages).
fn text_at(bytes: &[u8], at: Option<StrAt>, lim: &Limits) -> Option<String> {
    let (start, end, escaped) = at?;
    let raw = bytes.get(start..end)?;
    if raw.len() > lim.max_string_bytes {
        return None;
    }
    if escaped {
        json_unescape(raw).and_then(|b| String::from_utf8(b).ok())
    } else {
        std::str::from_utf8(raw).ok().map(str::to_owned)
    }
}

impl Msg {
    /// The error of a finished message (`end` = one past its last byte), if any.
    fn finish(self, bytes: &[u8], index: usize, end: usize, lim: &Limits) -> Option<DecodeError> {
        if self.problem.is_none() && end.saturating_sub(self.start) <= lim.max_message_bytes {
            return None;
        }
        let id = text_at(bytes, self.id, lim);
        let size = end.saturating_sub(self.start);
        let message = |reason: String| DecodeError::Message {
            index,
            id: id.clone(),
            reason,
        };
        let Some(p) = self.problem else {
            return (size > lim.max_message_bytes).then(|| {
                message(format!(
                    "{size} bytes exceed the limit of {} bytes per message",
                    lim.max_message_bytes
                ))
            });
        };
        if let What::Ops = p.what {
            return Some(message(format!(
                "{} ops exceed the limit of {} per message",
                self.ops, lim.max_ops_per_message
            )));
        }
        let reason = match p.what {
            What::Depth => OpError::TooLarge {
                field: p.field,
                what: "nesting depth",
                limit: lim.max_depth.min(MAX_DEPTH),
            },
            What::Collection => OpError::TooLarge {
                field: p.field,
                what: "array length",
                limit: lim.max_collection_len,
            },
            What::StringLen => OpError::TooLarge {
                field: p.field,
                what: "string length in bytes",
                limit: lim.max_string_bytes,
            },
            What::NonFinite(x) => OpError::Invalid {
                field: p.field,
                reason: format!("{x} is not a finite number"),
            },
            What::Ops => return None,
        };
        Some(match p.op {
            Some((op_index, ot)) => DecodeError::Op {
                msg_id: id.unwrap_or_else(|| "<no id>".into()),
                op_index,
                ot,
                reason,
            },
            None => message(reason.to_string()),
        })
    }
}

/// The op fields named in errors (any other key reads as `op`).
const OP_FIELDS: &[&str] = &[
    "key",
    "path",
    "value",
    "separator",
    "alpha",
    "index",
    "from",
    "to",
    "order",
    "intrinsic",
    "toPath",
    "targetMsgId",
    "id",
    "seq",
    "ts",
    "rm",
    "position",
    "length",
];

/// The message fields named in errors.
const MESSAGE_FIELDS: &[&str] = &[
    "client",
    "sessionId",
    "clock",
    "lt",
    "lamportTime",
    "ts",
    "timestamp",
];

struct Scanner<'a, 'l> {
    bytes: &'a [u8],
    pos: usize,
    lim: &'l Limits,
    /// Deepest stack allowed: `max_depth` (capped) plus the containers above a value.
    max_frames: usize,
    stack: Vec<Frame>,
    items: Vec<Item>,
    msg: Option<Msg>,
    top_array: bool,
}

impl<'a> Scanner<'a, '_> {
    /// Records a problem in the current message (the first one counts).
    fn problem(&mut self, what: What) {
        let Some(msg) = &mut self.msg else { return };
        if msg.problem.is_some() {
            return;
        }
        // The field: the op-level key inside an op, else the message-level key.
        let bytes = self.bytes;
        let key_at = |role: Role| {
            let names = if role == Role::Op {
                OP_FIELDS
            } else {
                MESSAGE_FIELDS
            };
            self.stack
                .iter()
                .find(|f| f.role == role)
                .map(|f| match f.key {
                    Key::Raw(a, b) => names
                        .iter()
                        .find(|n| bytes.get(a..b) == Some(n.as_bytes()))
                        .copied()
                        .unwrap_or(""),
                    Key::Id => "id",
                    Key::Ops => "ops",
                    Key::Ot => "ot",
                    Key::None => "",
                })
        };
        let field = match key_at(Role::Op) {
            Some("") => "op",
            Some(f) => f,
            None => match key_at(Role::Message) {
                Some("") | None => "message",
                Some(f) => f,
            },
        };
        let op = if self.stack.iter().any(|f| f.role == Role::Op) {
            msg.op.map(|(i, ot)| (i, text_at(bytes, ot, self.lim)))
        } else {
            None
        };
        msg.problem = Some(Problem { op, field, what });
    }

    /// The role of a container opened as the next value of the innermost frame.
    fn child_role(&self, map: bool) -> Role {
        match (self.stack.last(), map) {
            (None, true) => Role::Message,
            (Some(f), _) => match (f.role, map) {
                (Role::Top, true) => Role::Message,
                (Role::Message, false) if f.key == Key::Ops => Role::Ops,
                (Role::Ops, true) => Role::Op,
                _ => Role::Other,
            },
            (None, false) => Role::Top,
        }
    }

    /// A value starts in the innermost frame: counts it, starts a message or an op.
    #[inline(always)]
    fn value_starts(&mut self) {
        // The common cases: a field's value (objects count their keys instead), an
        // element inside a value (vectors, arrays).
        if let Some(f) = self.stack.last_mut() {
            if f.map {
                return;
            }
            if f.role == Role::Other {
                f.count += 1;
                if f.count > self.lim.max_collection_len {
                    self.problem(What::Collection);
                }
                return;
            }
        }
        self.value_starts_above();
    }

    /// [`Scanner::value_starts`] in a message, its `ops`, an op or the top array.
    fn value_starts_above(&mut self) {
        let at = self.pos;
        let Some(f) = self.stack.last_mut() else {
            self.msg = Some(Msg {
                start: at,
                id: None,
                ops: 0,
                op: None,
                problem: None,
            });
            return;
        };
        if !f.map {
            f.count += 1;
        }
        let count = f.count;
        match f.role {
            Role::Top => {
                self.msg = Some(Msg {
                    start: at,
                    id: None,
                    ops: 0,
                    op: None,
                    problem: None,
                });
            }
            Role::Ops => {
                if let Some(m) = &mut self.msg {
                    m.op = Some((count - 1, None));
                }
                self.count_ops(count as u64);
                if count > self.lim.max_ops_per_message {
                    self.problem(What::Ops);
                }
            }
            Role::Message | Role::Op | Role::Other => {
                if !f.map && count > self.lim.max_collection_len {
                    self.problem(What::Collection);
                }
            }
        }
    }

    fn count_ops(&mut self, n: u64) {
        if let Some(m) = &mut self.msg {
            m.ops = m.ops.max(n);
        }
    }

    /// A key was read in the innermost (object) frame: `raw` (decoded), found at
    /// `at` in the input.
    #[inline(always)]
    fn key_read(&mut self, raw: &[u8], at: Range<usize>) {
        let Some(f) = self.stack.last_mut() else {
            return;
        };
        f.count += 1;
        f.key = match f.role {
            // A message's and an op's own fields are no collection: unknown ones are
            // skipped unread, and the message's size bounds them.
            Role::Other => {
                f.key = Key::None;
                if f.count > self.lim.max_collection_len {
                    self.problem(What::Collection);
                }
                return;
            }
            Role::Message => match raw {
                b"id" => Key::Id,
                b"ops" => Key::Ops,
                _ => Key::Raw(at.start, at.end),
            },
            Role::Op => match raw {
                b"ot" | b"otype" => Key::Ot,
                _ => Key::Raw(at.start, at.end),
            },
            Role::Top | Role::Ops => Key::None,
        };
    }

    /// A string value was read at `at`: notes where a message's id and an op's
    /// `ot` are.
    #[inline(always)]
    fn string_value(&mut self, at: Range<usize>, escaped: bool) {
        let Some(f) = self.stack.last() else { return };
        let (role, key) = (f.role, f.key);
        let Some(m) = &mut self.msg else { return };
        match (role, key) {
            (Role::Message, Key::Id) => m.id = Some((at.start, at.end, escaped)),
            (Role::Op, Key::Ot) if !escaped => {
                if let Some((_, ot)) = &mut m.op {
                    *ot = Some((at.start, at.end, false));
                }
            }
            _ => {}
        }
    }

    /// A string of `len` decoded bytes: checks the limit.
    #[inline(always)]
    fn string_len(&mut self, len: u64) {
        if len > self.lim.max_string_bytes as u64 {
            self.problem(What::StringLen);
        }
    }

    /// Opens a container as the next value; false when it is too deep (the caller
    /// skips it whole).
    fn open(&mut self, map: bool, remaining: u64) -> bool {
        let role = self.child_role(map);
        if self.stack.is_empty() && !map {
            self.top_array = true;
            self.stack.push(Frame::new(Role::Top, false, remaining));
            return true;
        }
        self.value_starts();
        if self.stack.len() >= self.max_frames {
            self.problem(What::Depth);
            return false;
        }
        self.stack.push(Frame::new(role, map, remaining));
        true
    }

    /// A container closed (its frame is popped); `end` = one past its last byte.
    fn close(&mut self, end: usize) {
        // (An op's index and `ot` are replaced when the next op starts.)
        if self.stack.pop().is_some() {
            self.value_ends(end);
        }
    }

    /// A value ended in the innermost frame (after a scalar, or a closed container).
    #[inline(always)]
    fn value_ends(&mut self, end: usize) {
        if let Some(f) = self.stack.last_mut()
            && f.role != Role::Top
        {
            if f.map {
                f.key = Key::None;
            }
            return;
        }
        if let Some(m) = self.msg.take() {
            let index = self.items.len();
            let span = m.start..end;
            let error = m.finish(self.bytes, index, end, self.lim);
            self.items.push(Item { span, error });
        }
        if let Some(f) = self.stack.last_mut()
            && f.map
        {
            f.key = Key::None;
        }
    }

    // ---------------------------------------------------------------- JSON

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn json(&mut self) -> Result<(), Stop> {
        self.skip_ws();
        if !matches!(self.peek(), Some(b'[' | b'{')) {
            return Err(Stop);
        }
        loop {
            self.skip_ws();
            let Some(b) = self.peek() else {
                return Err(Stop);
            };
            match b {
                b'[' | b'{' => {
                    if self.open(b == b'{', 0) {
                        self.pos += 1;
                    } else {
                        self.skip_json_value()?;
                        self.value_ends(self.pos);
                    }
                }
                b']' | b'}' => {
                    self.pos += 1;
                    self.close(self.pos);
                    if self.stack.is_empty() {
                        self.skip_ws();
                        return if self.pos == self.bytes.len() {
                            Ok(())
                        } else {
                            Err(Stop)
                        };
                    }
                    self.json_after_value();
                }
                b',' => {
                    self.pos += 1;
                    if let Some(f) = self.stack.last_mut() {
                        f.expect_key = f.map;
                    }
                }
                b':' => {
                    self.pos += 1;
                    if let Some(f) = self.stack.last_mut() {
                        f.expect_key = false;
                    }
                }
                b'"' => {
                    let at = self.pos;
                    let is_key = self.stack.last().is_some_and(|f| f.map && f.expect_key);
                    let (len, escaped) = self.json_string()?;
                    let body = at + 1..self.pos - 1;
                    self.string_len(len);
                    if is_key {
                        let bytes: &'a [u8] = self.bytes;
                        let raw = bytes.get(body.clone()).unwrap_or_default();
                        match (escaped, self.stack.last().map(|f| f.role)) {
                            (true, Some(Role::Message | Role::Op)) => {
                                let decoded = json_unescape(raw);
                                self.key_read(decoded.as_deref().unwrap_or(raw), body);
                            }
                            _ => self.key_read(raw, body),
                        }
                        // The colon after the key, read here rather than by the loop.
                        self.skip_ws();
                        if self.peek() == Some(b':') {
                            self.pos += 1;
                            if let Some(f) = self.stack.last_mut() {
                                f.expect_key = false;
                            }
                        }
                    } else {
                        let end = self.pos;
                        self.pos = at;
                        self.value_starts();
                        self.pos = end;
                        self.string_value(body, escaped);
                        self.value_ends(end);
                        self.json_after_value();
                    }
                }
                _ => {
                    self.value_starts();
                    let rest = self.bytes.get(self.pos..).unwrap_or_default();
                    self.pos += rest
                        .iter()
                        .position(|&c| DELIMITER[usize::from(c)])
                        .unwrap_or(rest.len());
                    self.value_ends(self.pos);
                    self.json_after_value();
                }
            }
        }
    }

    /// After a value: reads the comma that may follow (the loop reads anything else).
    #[inline(always)]
    fn json_after_value(&mut self) {
        self.skip_ws();
        if self.peek() == Some(b',') {
            self.pos += 1;
            if let Some(f) = self.stack.last_mut() {
                f.expect_key = f.map;
            }
        }
    }

    /// Reads a JSON string from its opening quote; returns its decoded length in
    /// bytes and whether it has escapes. `pos` ends after the closing quote.
    fn json_string(&mut self) -> Result<(u64, bool), Stop> {
        self.pos += 1;
        let mut len = 0u64;
        let mut escaped = false;
        loop {
            let rest = self.bytes.get(self.pos..).ok_or(Stop)?;
            // Most strings are short: a plain loop first, then memchr for long ones.
            let head = &rest[..rest.len().min(24)];
            let i = match head.iter().position(|&c| c == b'"' || c == b'\\') {
                Some(i) => i,
                None => memchr::memchr2(b'"', b'\\', rest).ok_or(Stop)?,
            };
            len += i as u64;
            self.pos += i + 1;
            if rest[i] == b'"' {
                return Ok((len, escaped));
            }
            escaped = true;
            let Some(e) = self.peek() else {
                return Err(Stop);
            };
            self.pos += 1;
            if e == b'u' {
                let unit = self.hex4()?;
                len += match unit {
                    0..=0x7f => 1,
                    0x80..=0x7ff => 2,
                    // A high surrogate with its low half: one 4-byte scalar.
                    0xd800..=0xdbff if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") => {
                        self.pos += 2;
                        self.hex4()?;
                        4
                    }
                    _ => 3,
                };
            } else {
                len += 1;
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(Stop)?;
        let s = std::str::from_utf8(digits).map_err(|_| Stop)?;
        let v = u32::from_str_radix(s, 16).map_err(|_| Stop)?;
        self.pos += 4;
        Ok(v)
    }

    /// Skips one JSON value whole (a container too deep to walk), counting brackets.
    fn skip_json_value(&mut self) -> Result<(), Stop> {
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek() else {
                return Err(Stop);
            };
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b']' | b'}' => {
                    depth = depth.checked_sub(1).ok_or(Stop)?;
                    self.pos += 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'"' => {
                    self.json_string()?;
                }
                _ => self.pos += 1,
            }
        }
    }

    // ---------------------------------------------------------- MessagePack

    fn take(&mut self, n: u64) -> Result<&'a [u8], Stop> {
        let bytes: &'a [u8] = self.bytes;
        let n = usize::try_from(n).map_err(|_| Stop)?;
        let end = self.pos.checked_add(n).ok_or(Stop)?;
        let s = bytes.get(self.pos..end).ok_or(Stop)?;
        self.pos = end;
        Ok(s)
    }

    #[inline(always)]
    fn be<const N: usize>(&mut self) -> Result<u64, Stop> {
        let b: [u8; N] = self
            .bytes
            .get(self.pos..self.pos + N)
            .and_then(|s| s.try_into().ok())
            .ok_or(Stop)?;
        self.pos += N;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// Reads one MessagePack marker and what follows it up to the payload.
    #[inline(always)]
    fn mp_marker(&mut self) -> Result<Marker, Stop> {
        let b = self.peek().ok_or(Stop)?;
        self.pos += 1;
        Ok(match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Marker::Scalar,
            0x80..=0x8f => Marker::Map(u64::from(b & 0x0f)),
            0x90..=0x9f => Marker::Array(u64::from(b & 0x0f)),
            0xa0..=0xbf => Marker::Str(u64::from(b & 0x1f)),
            0xc1 => return Err(Stop),
            0xc4 => Marker::Bytes(self.be::<1>()?),
            0xc5 => Marker::Bytes(self.be::<2>()?),
            0xc6 => Marker::Bytes(self.be::<4>()?),
            0xc7 => Marker::Bytes(self.be::<1>()? + 1),
            0xc8 => Marker::Bytes(self.be::<2>()? + 1),
            0xc9 => Marker::Bytes(self.be::<4>()? + 1),
            0xca => {
                let bits = u32::try_from(self.be::<4>()?).map_err(|_| Stop)?;
                Marker::Float(f64::from(f32::from_bits(bits)))
            }
            0xcb => Marker::Float(f64::from_bits(self.be::<8>()?)),
            0xcc | 0xd0 => Marker::Bytes(1),
            0xcd | 0xd1 => Marker::Bytes(2),
            0xce | 0xd2 => Marker::Bytes(4),
            0xcf | 0xd3 => Marker::Bytes(8),
            0xd4 => Marker::Bytes(2),
            0xd5 => Marker::Bytes(3),
            0xd6 => Marker::Bytes(5),
            0xd7 => Marker::Bytes(9),
            0xd8 => Marker::Bytes(17),
            0xd9 => Marker::Str(self.be::<1>()?),
            0xda => Marker::Str(self.be::<2>()?),
            0xdb => Marker::Str(self.be::<4>()?),
            0xdc => Marker::Array(self.be::<2>()?),
            0xdd => Marker::Array(self.be::<4>()?),
            0xde => Marker::Map(self.be::<2>()?),
            0xdf => Marker::Map(self.be::<4>()?),
        })
    }

    fn msgpack(&mut self) -> Result<(), Stop> {
        match self.peek() {
            Some(0x80..=0x9f | 0xdc..=0xdf) => {}
            _ => return Err(Stop),
        }
        loop {
            // Close every finished container.
            while let Some(f) = self.stack.last() {
                if f.remaining > 0 {
                    break;
                }
                self.close(self.pos);
            }
            if self.stack.is_empty() && (self.top_array || !self.items.is_empty()) {
                return if self.pos == self.bytes.len() {
                    Ok(())
                } else {
                    Err(Stop)
                };
            }
            let is_key = match self.stack.last_mut() {
                Some(f) => {
                    f.remaining -= 1;
                    let k = f.map && f.expect_key;
                    if f.map {
                        f.expect_key = !f.expect_key;
                    }
                    k
                }
                None => false,
            };
            let start = self.pos;
            match self.mp_marker()? {
                Marker::Array(n) | Marker::Map(n) => {
                    let map = matches!(self.bytes.get(start), Some(0x80..=0x8f | 0xde | 0xdf));
                    let values = if map { n.saturating_mul(2) } else { n };
                    // Every value takes a byte at least.
                    if values > (self.bytes.len() - self.pos) as u64 {
                        return Err(Stop);
                    }
                    if is_key {
                        self.key_read(b"", start..start);
                    }
                    let saved = self.pos;
                    self.pos = start;
                    let role = self.child_role(map);
                    let walk = self.open(map, values);
                    self.pos = saved;
                    if walk {
                        // Declared lengths are checked before any element is read.
                        match role {
                            Role::Ops => {
                                self.count_ops(n);
                                if n > self.lim.max_ops_per_message as u64 {
                                    self.problem(What::Ops);
                                }
                            }
                            Role::Other => {
                                if n > self.lim.max_collection_len as u64 {
                                    self.problem(What::Collection);
                                }
                            }
                            // A message's and an op's own fields are no collection.
                            Role::Message | Role::Op | Role::Top => {}
                        }
                    } else {
                        self.skip_mp_values(values)?;
                        self.value_ends(self.pos);
                    }
                }
                Marker::Str(n) => {
                    let raw = self.take(n)?;
                    let end = self.pos;
                    let body = end - raw.len()..end;
                    if is_key {
                        self.string_len(n);
                        self.key_read(raw, body);
                    } else {
                        self.pos = start;
                        self.value_starts();
                        self.pos = end;
                        self.string_len(n);
                        self.string_value(body, false);
                        self.value_ends(end);
                    }
                }
                other => {
                    if let Marker::Bytes(n) = other {
                        self.take(n)?;
                    }
                    if is_key {
                        self.key_read(b"", start..start);
                    } else {
                        let end = self.pos;
                        self.pos = start;
                        self.value_starts();
                        self.pos = end;
                        if let Marker::Float(x) = other
                            && !x.is_finite()
                        {
                            self.problem(What::NonFinite(x));
                        }
                        self.value_ends(end);
                    }
                }
            }
        }
    }

    /// Skips `n` MessagePack values whole, with one counter of values still to read.
    fn skip_mp_values(&mut self, mut n: u64) -> Result<(), Stop> {
        while n > 0 {
            n -= 1;
            let start = self.pos;
            match self.mp_marker()? {
                Marker::Array(k) => n = n.saturating_add(k),
                Marker::Map(k) => n = n.saturating_add(k.saturating_mul(2)),
                Marker::Str(k) | Marker::Bytes(k) => {
                    self.take(k)?;
                }
                Marker::Float(_) | Marker::Scalar => {}
            }
            if n > (self.bytes.len() - self.pos) as u64 || self.pos == start {
                return Err(Stop);
            }
        }
        Ok(())
    }
}

/// A MessagePack marker, with the length it announces.
#[derive(Clone, Copy, Debug)]
enum Marker {
    /// nil, booleans, fixints.
    Scalar,
    /// `n` payload bytes follow (integers, bin, ext).
    Bytes(u64),
    /// A string of `n` bytes.
    Str(u64),
    /// A float.
    Float(f64),
    /// An array of `n` values.
    Array(u64),
    /// A map of `n` entries.
    Map(u64),
}

/// The bytes that end a JSON scalar token (numbers, `true`, `false`, `null`).
static DELIMITER: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let ends = b",]}: \t\n\r";
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

/// A JSON string body with escapes, decoded (keys are compared decoded).
fn json_unescape(raw: &[u8]) -> Option<Vec<u8>> {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .ok()
        .map(String::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode_messages;
    use serde_json::json;

    fn msgpack(v: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    /// Both encodings of `v`, decoded with `lim`: the error strings (or "ok").
    fn both(v: &serde_json::Value, lim: &Limits) -> [String; 2] {
        let j = serde_json::to_vec(v).unwrap();
        let m = msgpack(v);
        [(j, Format::Json), (m, Format::MessagePack)].map(|(b, f)| {
            match decode_messages(&b, f, lim) {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            }
        })
    }

    /// Limits of `n` ops per message, and a small op to fill messages with.
    fn ops_limit(n: usize) -> (Limits, serde_json::Value) {
        let lim = Limits {
            max_ops_per_message: n,
            ..Limits::default()
        };
        (
            lim,
            json!({"ot": "number.set", "key": "n", "path": "p", "value": 1}),
        )
    }

    fn nested(depth: usize) -> serde_json::Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    }

    fn msg(ops: serde_json::Value) -> serde_json::Value {
        json!([{"client": "a", "lt": 1, "ops": ops, "id": "late-id"}])
    }

    #[test]
    fn depth_means_the_same_in_both_formats_at_any_value() {
        for max_depth in [1, 3, 64, 127, 128, 200, 500, MAX_DEPTH] {
            let lim = Limits {
                max_depth,
                max_collection_len: 4,
                ..Limits::default()
            };
            let ok = msg(
                json!([{"ot": "array.set", "key": "n", "path": "p", "value": nested(max_depth)}]),
            );
            assert_eq!(both(&ok, &lim), ["ok", "ok"], "depth {max_depth}");
            let deep = msg(
                json!([{"ot": "array.set", "key": "n", "path": "p", "value": nested(max_depth + 1)}]),
            );
            for e in both(&deep, &lim) {
                assert!(
                    e.contains("\"late-id\"")
                        && e.contains("op #0 (array.set)")
                        && e.contains("`value`: nesting depth exceeds the limit"),
                    "depth {max_depth}: {e}"
                );
            }
        }
    }

    #[test]
    fn a_larger_max_depth_acts_as_the_cap() {
        let lim = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        let deep = msg(
            json!([{"ot": "array.set", "key": "n", "path": "p", "value": nested(MAX_DEPTH + 1)}]),
        );
        for e in both(&deep, &lim) {
            assert!(e.contains(&format!("limit of {MAX_DEPTH}")), "{e}");
        }
    }

    #[test]
    fn op_counts_are_checked_as_read_and_name_the_message() {
        let (lim, op) = ops_limit(3);
        let three = msg(json!([op, op, op]));
        assert_eq!(both(&three, &lim), ["ok", "ok"]);
        let five = msg(json!([op, op, op, op, op]));
        for e in both(&five, &lim) {
            assert!(
                e.contains("\"late-id\"") && e.contains("5 ops exceed the limit of 3"),
                "{e}"
            );
        }
    }

    #[test]
    fn collections_and_strings_are_bounded_where_they_stand() {
        let lim = Limits {
            max_collection_len: 3,
            max_string_bytes: 12,
            ..Limits::default()
        };
        let long = msg(json!([
            {"ot": "number.set", "key": "n", "path": "p", "value": 1},
            {"ot": "array.set", "key": "n", "path": "p", "value": [1, 2, 3, 4]}
        ]));
        for e in both(&long, &lim) {
            assert!(
                e.contains("op #1 (array.set)")
                    && e.contains("`value`: array length exceeds the limit of 3"),
                "{e}"
            );
        }
        let object = msg(
            json!([{"ot": "object.set", "key": "n", "path": "p", "value": {"a": 1, "b": 2, "c": 3, "d": 4}}]),
        );
        for e in both(&object, &lim) {
            assert!(
                e.contains("op #0 (object.set)") && e.contains("array length"),
                "{e}"
            );
        }
        let string =
            msg(json!([{"ot": "string.set", "key": "n", "path": "p", "value": "1234567890abc"}]));
        for e in both(&string, &lim) {
            assert!(
                e.contains("`value`: string length in bytes exceeds the limit of 12"),
                "{e}"
            );
        }
        // Escapes count as the bytes they stand for: 12 decoded bytes pass.
        let escaped = br#"[{"id": "m", "client": "a", "lt": 1, "ops": [{"ot": "string.set", "key": "n", "path": "p", "value": "\u00e9\u00e9\n\"\ud83d\ude00ab"}]}]"#;
        assert!(decode_messages(escaped, Format::Json, &lim).is_ok());
        let nine = br#"[{"id": "m", "client": "a", "lt": 1, "ops": [{"ot": "string.set", "key": "n", "path": "p", "value": "\u00e9\u00e9\n\"\ud83d\ude00abc"}]}]"#;
        assert!(decode_messages(nine, Format::Json, &lim).is_err());
        // The messages array itself is not a collection under the limit.
        let many = serde_json::Value::Array(
            (0..10)
                .map(|i| json!({"id": format!("m{i}"), "client": "a", "lt": i + 1, "ops": []}))
                .collect(),
        );
        assert_eq!(both(&many, &lim), ["ok", "ok"]);
    }

    #[test]
    fn message_bytes_are_bounded() {
        let v =
            msg(json!([{"ot": "string.set", "key": "n", "path": "p", "value": "x".repeat(500)}]));
        let lim = Limits {
            max_message_bytes: 400,
            ..Limits::default()
        };
        for e in both(&v, &lim) {
            assert!(
                e.contains("\"late-id\"")
                    && e.contains("exceed the limit of 400 bytes per message"),
                "{e}"
            );
        }
        let lim = Limits {
            max_message_bytes: 600,
            ..Limits::default()
        };
        assert_eq!(both(&v, &lim), ["ok", "ok"]);
    }

    #[test]
    fn msgpack_non_finite_floats_are_named() {
        for (bits, name) in [
            (f64::NAN.to_bits(), "NaN"),
            (f64::INFINITY.to_bits(), "inf"),
            (f64::NEG_INFINITY.to_bits(), "-inf"),
        ] {
            let v = msg(json!([{"ot": "number.set", "key": "n", "path": "p", "value": 1.5}]));
            let mut b = msgpack(&v);
            let mut needle = vec![0xcb];
            needle.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
            let at = b.windows(9).position(|w| w == needle).unwrap();
            b[at + 1..at + 9].copy_from_slice(&bits.to_be_bytes());
            let e = decode_messages(&b, Format::MessagePack, &Limits::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("op #0 (number.set)")
                    && e.contains(&format!("`value`: {name} is not a finite number")),
                "{e}"
            );
        }
        // As an f32 inside a vector, and in the message's `ts`.
        let v = json!({"id": "m", "client": "a", "lt": 1, "ts": 2.5, "ops": []});
        let mut b = msgpack(&v);
        let mut needle = vec![0xcb];
        needle.extend_from_slice(&2.5f64.to_bits().to_be_bytes());
        let at = b.windows(9).position(|w| w == needle).unwrap();
        b.splice(at..at + 9, [0xca, 0x7f, 0xc0, 0, 0]);
        let e = decode_messages(&b, Format::MessagePack, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"m\"") && e.contains("`ts`: NaN"), "{e}");
    }

    #[test]
    fn broken_and_truncated_inputs_never_panic() {
        let v = msg(
            json!([{"ot": "vector3.set", "key": "n", "path": "p", "value": [1, 2.5, -3]},
                        {"ot": "text.insert", "key": "n", "path": "t", "id": "a:1", "value": [null, "hé\"llo"], "seq": 2}]),
        );
        for bytes in [serde_json::to_vec(&v).unwrap(), msgpack(&v)] {
            for cut in 0..bytes.len() {
                for f in [Format::Json, Format::MessagePack] {
                    let _ = scan(&bytes[..cut], f, &Limits::default());
                    let _ = decode_messages(&bytes[..cut], f, &Limits::default());
                }
            }
            let mut rng = crate::workload::SplitMix64::new(11);
            for _ in 0..2_000 {
                let mut b = bytes.clone();
                let i = (rng.next_u64() as usize) % b.len();
                b[i] = rng.next_u64() as u8;
                for f in [Format::Json, Format::MessagePack] {
                    let _ = decode_messages(&b, f, &Limits::default());
                }
            }
        }
    }

    #[test]
    fn a_limit_broken_before_truncation_is_reported_not_the_syntax() {
        let (lim, op) = ops_limit(2);
        let v = json!([{"id": "big", "client": "a", "lt": 1, "ops": [op, op, op, op]}]);
        for (b, f) in [
            (serde_json::to_vec(&v).unwrap(), Format::Json),
            (msgpack(&v), Format::MessagePack),
        ] {
            let e = decode_messages(&b[..b.len() - 3], f, &lim)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("\"big\"") && e.contains("exceed the limit of 2"),
                "{e}"
            );
        }
    }

    #[test]
    fn spans_cover_each_message() {
        let b = br#" [ {"id": "a", "ops": []} , 5, {"id": "b"} ] "#;
        let Scanned::Array(items) = scan(b, Format::Json, &Limits::default()) else {
            panic!("not an array");
        };
        let spans: Vec<&[u8]> = items.iter().map(|i| &b[i.span.clone()]).collect();
        assert_eq!(
            spans,
            [&br#"{"id": "a", "ops": []}"#[..], b"5", br#"{"id": "b"}"#]
        );
        assert!(matches!(
            scan(b"[1] x", Format::Json, &Limits::default()),
            Scanned::Malformed
        ));
        assert!(matches!(
            scan(b"7", Format::Json, &Limits::default()),
            Scanned::Malformed
        ));
    }
}

//! Error and warning types shared by every stage.
//!
//! - [`DecodeError`]: bytes or fields that do not make a valid message. Always names
//!   the message (id, or its index in the input when the id itself is unreadable),
//!   the op index and the reason, so a user can find the offending op.
//! - [`OpError`]: why one op is invalid (the reason part of a [`DecodeError`]).
//! - [`Warning`]: a valid op that did nothing, or only part of what it asked (an
//!   additive op on a value of another type, a move that would close a cycle, an op on
//!   a missing node; a `node.insert` whose parent is missing still creates the node,
//!   parentless). Warnings are deterministic and are never a reason to reject input.
//!
//! Invariant: producing an error never mutates a graph; validation runs before apply.

use thiserror::Error;

/// Why a single op is invalid.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum OpError {
    /// The op has neither `ot` nor `otype`.
    #[error("missing `ot` (or legacy `otype`)")]
    MissingOt,
    /// The `ot` string names no known operation.
    #[error("unknown operation type `{0}`")]
    UnknownOt(String),
    /// A required field is absent (or null).
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}`: expected {expected}, got {got}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What was expected, in words.
        expected: &'static str,
        /// A short rendering of what came.
        got: String,
    },
    /// A field is well-typed but its value is not allowed.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field name.
        field: &'static str,
        /// Why the value is not allowed.
        reason: String,
    },
    /// A value exceeds a configured limit.
    #[error("field `{field}`: {what} exceeds the limit of {limit}")]
    TooLarge {
        /// The field name.
        field: &'static str,
        /// What was measured (bytes, elements, depth).
        what: &'static str,
        /// The configured limit.
        limit: usize,
    },
}

/// Input that does not decode into valid messages.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not well-formed JSON / MessagePack at all.
    #[error("malformed {format}: {detail}")]
    Syntax {
        /// `"JSON"` or `"MessagePack"`.
        format: &'static str,
        /// The parser's description, with position where known.
        detail: String,
    },
    /// The top-level value is neither a message nor an array of messages.
    #[error("expected an array of messages (or one message object), got {got}")]
    NotMessages {
        /// A short rendering of what came.
        got: String,
    },
    /// A message-level field is missing or wrong.
    #[error("message {} (#{index} in the input): {reason}", id.as_deref().map_or("<no id>".to_string(), |i| format!("{i:?}")))]
    Message {
        /// Index of the message in the input array.
        index: usize,
        /// The message id, when it could be read.
        id: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// One op of a message is invalid; the whole message is rejected.
    #[error("message {msg_id:?} op #{op_index}{}: {reason}", ot.as_deref().map_or(String::new(), |o| format!(" ({o})")))]
    Op {
        /// The message id.
        msg_id: String,
        /// Index of the op inside the message's `ops`.
        op_index: usize,
        /// The op's `ot`, when it could be read.
        ot: Option<String>,
        /// What is wrong.
        reason: OpError,
    },
}

/// A valid op that did nothing, or only part of what it asked (the first reason is
/// reported). The sequential model ([`crate::apply_messages`]) reports the same warnings
/// for the same set of messages; a [`crate::Replica`] reports those of the ops it
/// applies in order (see [`crate::replica`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The message id.
    pub msg_id: String,
    /// Index of the op inside the message.
    pub op_index: usize,
    /// Why nothing happened.
    pub reason: WarningKind,
}

/// Why a valid op did nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// The op targets a node that does not exist.
    #[error("node `{0}` does not exist")]
    MissingNode(String),
    /// The op targets a tombstoned node.
    #[error("node `{0}` is deleted")]
    DeletedNode(String),
    /// An additive op found a value of another type at its path.
    #[error("`{ot}` on a {found} value at `{path}`: left unchanged")]
    TypeMismatch {
        /// The op type.
        ot: &'static str,
        /// The property path.
        path: String,
        /// The type found there.
        found: &'static str,
    },
    /// An index-based op pointed outside the value.
    #[error("`{ot}` index {index} is out of range for length {len} at `{path}`")]
    OutOfRange {
        /// The op type.
        ot: &'static str,
        /// The property path.
        path: String,
        /// The offending index.
        index: i64,
        /// The length of the value.
        len: usize,
    },
    /// A `node.move` that would make a node its own ancestor.
    #[error("moving `{node}` under `{new_parent}` would create a cycle: skipped")]
    Cycle {
        /// The node.
        node: String,
        /// The requested parent.
        new_parent: String,
    },
    /// A `node.insert` of a key that already names a live node (`node.upsert` and
    /// `node.inset` update it instead).
    #[error("node `{0}` already exists: insert ignored")]
    Exists(String),
    /// A `meta.undo`/`meta.redo` whose target id no message of the set has. Only the
    /// sequential model reports it: a replica cannot know, since the target may still
    /// arrive (and then the meta op takes effect).
    #[error("`{ot}` targets `{target}`, which no message has: nothing to do")]
    UnknownTarget {
        /// The op type.
        ot: &'static str,
        /// The target message id.
        target: String,
    },
    /// The op's path cannot be written (e.g. `object.merge` at `.` with `key`).
    #[error("{0}")]
    Ignored(String),
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message {:?} op #{}: {}",
            self.msg_id, self.op_index, self.reason
        )
    }
}

/// Result alias for decoding.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// Why a replica did not accept a message.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RejectError {
    /// The message (or the bytes it came in) is invalid.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// Another message already holds this `(lt, client)` stamp: the total order would
    /// be ambiguous. A client must never reuse a Lamport time.
    #[error(
        "message {msg_id:?}: stamp (lt {lt}, client {client:?}) is already used by message {other:?}"
    )]
    StampInUse {
        /// The rejected message.
        msg_id: String,
        /// Its Lamport time.
        lt: u64,
        /// Its client.
        client: String,
        /// The message that holds the stamp.
        other: String,
    },
    /// Another message already holds this message's id with other content, or its
    /// client's `clock` counter: accepting it would make the outcome depend on which
    /// copy arrived first. A client must never reuse a message id or a clock counter
    /// (a server enforces it for its clients); order independence is promised for
    /// sets of messages with unique ids, stamps and counters.
    #[error(
        "message {msg_id:?} conflicts with held message {other:?}: {what}; a client must never reuse a message id or a clock counter"
    )]
    Conflict {
        /// The rejected message.
        msg_id: String,
        /// The held message it conflicts with.
        other: String,
        /// What they share and how they differ.
        what: String,
    },
    /// The message is older than the replica's compacted base (its client was evicted
    /// after the compaction horizon): it can no longer be placed in order. The client
    /// must resync and send its edits again as new messages.
    #[error(
        "message {msg_id:?} (lt {lt}) is older than the compacted base (lt <= {through}): resync the client"
    )]
    Compacted {
        /// The rejected message.
        msg_id: String,
        /// Its Lamport time.
        lt: u64,
        /// The Lamport time the replica compacted through.
        through: u64,
    },
}

impl RejectError {
    /// The id of the rejected message, when it could be read.
    pub fn msg_id(&self) -> Option<&str> {
        match self {
            RejectError::Invalid(DecodeError::Message { id, .. }) => id.as_deref(),
            RejectError::Invalid(DecodeError::Op { msg_id, .. }) => Some(msg_id),
            RejectError::Invalid(_) => None,
            RejectError::StampInUse { msg_id, .. }
            | RejectError::Conflict { msg_id, .. }
            | RejectError::Compacted { msg_id, .. } => Some(msg_id),
        }
    }

    /// A short stable name of the reason (`invalid`, `stamp_in_use`, `conflict`,
    /// `compacted`): the prefix of a server's `error` text and a metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            RejectError::Invalid(_) => "invalid",
            RejectError::StampInUse { .. } => "stamp_in_use",
            RejectError::Conflict { .. } => "conflict",
            RejectError::Compacted { .. } => "compacted",
        }
    }
}

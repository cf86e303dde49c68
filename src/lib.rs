//! # vuer-rtc
//!
//! A data-oriented, columnar CRDT engine for shared 3D scene graphs. Many clients edit
//! one scene at once; every replica that holds the same set of messages shows the same
//! scene, bit for bit.
//!
//! ## Bird's-eye view
//!
//! Data flows one way:
//!
//! ```text
//! bytes ─▶ wire (JSON / MessagePack) ─▶ op (typed Op, validated whole-message)
//!       ─▶ batch (dedupe, sort by (lt, client), undo rule)
//!       ─▶ apply (node ops on graph/, property ops folded into column/)
//!       ─▶ graph (SceneGraph: slotmap nodes + typed columns) ─▶ to_json / NodeRef
//!       ─▶ replica (journal, late messages, undo, compaction) ─▶ store (client API)
//! ```
//!
//! - [`ids`]: interned clients and paths, [`ids::Stamp`] `(lt, client)`, [`ids::NodeKey`].
//! - [`op`]: the typed op model, one [`op::OpKind`] variant per `dtype.verb`.
//! - [`wire`]: codecs; both field spellings in, the compressed one out.
//! - [`batch`]: the canonical order of a set of messages.
//! - [`column`](mod@column): struct-of-arrays property columns with per-cell stamps.
//! - [`graph`]: the hierarchy and the read API.
//! - [`apply`]: what each op does.
//! - [`replica`]: messages in any order, in batches, with late-message recompute,
//!   undo and compaction.
//! - [`text`]: the text CRDT behind `text.*` ops (no dependency on the rest).
//! - [`store`]: the client API of the guide ([`store::create_graph`], `edit`, `commit`,
//!   `receive`, `undo`, …) on a replica, with optimistic local edits.
//!
//! ## Example
//!
//! ```
//! use vuer_rtc::{apply_messages, create_empty_graph, wire};
//!
//! let bytes = br#"[
//!   {"id": "alice:1", "client": "alice", "lt": 1, "ts": 1.0, "ops": [
//!     {"ot": "node.insert", "key": "", "path": "children",
//!      "value": {"key": "obj", "tag": "Mesh", "health": 100}}]},
//!   {"id": "bob:2", "client": "bob", "lt": 2, "ts": 2.0, "ops": [
//!     {"ot": "number.add", "key": "obj", "path": "health", "value": -10}]},
//!   {"id": "alice:2", "client": "alice", "lt": 2, "ts": 2.0, "ops": [
//!     {"ot": "number.add", "key": "obj", "path": "health", "value": -25}]}
//! ]"#;
//! let messages = wire::decode_messages(bytes, wire::Format::Json, &Default::default())?;
//! let mut graph = create_empty_graph();
//! apply_messages(&mut graph, &messages);
//! let health = graph.node("obj").and_then(|n| n.get("health")).and_then(|v| v.as_number());
//! assert_eq!(health, Some(65.0));
//! # Ok::<(), vuer_rtc::error::DecodeError>(())
//! ```
//!
//! ## Performance characteristics
//!
//! Node lookup by key is one `ahash` probe; a property read or write is one probe of the
//! path table plus an index into a dense column. `to_json` is O(nodes × paths).

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")
)]

pub mod apply;
pub mod batch;
#[cfg(feature = "client")]
pub mod client;
pub mod column;
pub mod error;
pub mod graph;
pub mod ids;
#[cfg(feature = "loadtest")]
pub mod loadtest;
pub mod op;
pub mod persist;
pub mod protocol;
pub mod replica;
#[cfg(feature = "server")]
pub mod server;
pub mod snapshot;
pub mod store;
pub mod text;
pub mod wire;
pub mod workload;

// The seeded proptest configuration of the unit tests (shared with `tests/support.rs`).
#[cfg(test)]
pub(crate) mod test_support;

pub use apply::{
    ApplyReport, OpMeta, apply_message, apply_messages, apply_operation, create_empty_graph,
};
pub use graph::{Changes, NodeRef, SceneGraph};
pub use op::{Message, Op, OpKind};
pub use replica::{BatchReport, Committed, CompactReport, Replica, ReplicaStats, Writer};
pub use store::{GraphStore, create_graph};

//! The integration test binary: one binary, one module per area.
//! Try not to add more binaries; add a module here instead.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

// Shared helpers: seeded RNG, tolerant JSON comparison, message builders.
mod support;

// The public conformance cases, in file order and shuffled/duplicated.
mod conformance;
// Proptest: random histories, shuffled/duplicated deliveries → identical state.
mod convergence;
// Malformed input never panics and never half-applies.
mod decode_garbage;
// Op semantics through the public API (races, cycles, missing nodes, spellings).
mod ops;
// Replica: any delivery order, batch split and thread count gives the model's state.
mod replica;
// The telemetry writer and the change feed.
mod writer;
// GraphStore: the guide's examples, multi-store convergence with undo, offline, compaction.
mod store;
// The text CRDT against the Python reference (ignored unless VUER_RTC_REFERENCE_PYTHON
// is set at build time; see build.rs).
mod text_interop;
// The `vuer-rtc` binary: replay output, exit codes, error lines.
mod cli;
// The on-disk journal under a writer killed at random points.
mod persist;
// Snapshots: view and restore equal the original and go on alike.
mod snapshot;
// Untrusted input: integer bounds, conflicting copies, the durable journal, memory.
mod untrusted;
// Repository hygiene: module docs, seeded proptests, layering, rayon/unsafe allowlists,
// README snippets that match the examples.
mod tidy;
// Inputs the cargo-fuzz targets (fuzz/) once crashed on, through the same checks.
mod fuzz_regressions;
// The sync server over real WebSockets on loopback: protocol bytes, auth, limits,
// durability across a restart.
#[cfg(feature = "server")]
mod server;
// Server policies: idle unload and recovery, ack modes, scene and per-scene connection limits.
#[cfg(feature = "server")]
mod server_policies;

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
// GraphStore: the guide's examples, multi-store convergence with undo, offline, compaction.
mod store;
// The text CRDT against the Python reference (needs VUER_RTC_REFERENCE_PYTHON).
mod text_interop;
// The `vuer-rtc` binary: replay output, exit codes, error lines.
mod cli;
// The on-disk journal under a writer killed at random points.
mod persist;
// Snapshots: view and restore equal the original and go on alike.
mod snapshot;
// Every Rust file opens with a `//!` module doc.
mod tidy;
// Inputs the cargo-fuzz targets (fuzz/) once crashed on, through the same checks.
mod fuzz_regressions;

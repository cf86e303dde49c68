//! Criterion benchmarks for `vuer-rtc`: one module per pipeline stage, all in one binary.
//!
//! | module                  | bench ids                                      |
//! |-------------------------|------------------------------------------------|
//! | [`stages::decode`]      | `decode/json/10k`, `decode/msgpack/10k`        |
//! | [`stages::graph_apply`] | `graph_apply/apply_messages/10k`,              |
//! |                         | `graph_apply/apply_message_seq/10k`            |
//! | [`stages::snapshot`]    | `snapshot/to_json/1k`, `snapshot/{write,open,open_unchecked,read_positions,restore,replay,json_write,json_parse}/1m` |
//! | [`stages::kernels`]     | `kernels/{quat_mul,apply_quat,vec3_add}/{scalar,simd}/1k` |
//! | [`stages::replica`]     | `replica/{standard,vector3_set,undo_1pct,json,msgpack}/20k` |
//! |                         | `replica/scene_a_one_by_one/{msgpack,decoded}/20k` |
//! | [`stages::store`]       | `store/{receive,receive_pending,receive_batch,edit_commit}/10k` |
//! | [`stages::persist`]     | `persist/journal_append/{never,every}`, `persist/journal_read/10k` |
//! | [`stages::telemetry`]   | `telemetry/{tick,tick_and_feed}/10k`           |
//! | [`stages::text`]        | `text/{local,local_ops,remote,remote_encoded,replica}/{automerge-paper,seph-blog1}`, `text/concurrent/friendsforever` |
//!
//! The inputs are built by [`stages::workload`] from a seeded PRNG, so every run sees
//! the same bytes. Results and the machine they were measured on are in `perf/README.md`.
//!
//! Reproduce:
//! - smoke test (each bench once): `cargo bench --bench main -- --test`
//! - measure: `cargo bench --bench main -- --warm-up-time 1 --measurement-time 3`
//! - one stage: `cargo bench --bench main -- graph_apply/`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(
    unsafe_code,
    reason = "snapshot/open_unchecked measures the trusted path"
)]

// The same allocator as the `vuer-rtc` binary, so the numbers match `vuer-rtc bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The stage modules live in `benches/stages/`, not next to this file: Cargo would turn
// every `benches/*.rs` into a bench target of its own.
mod stages {
    pub mod decode;
    pub mod graph_apply;
    pub mod kernels;
    pub mod persist;
    pub mod replica;
    pub mod snapshot;
    pub mod store;
    pub mod telemetry;
    pub mod text;
    pub mod traces;
    pub mod workload;
}

criterion::criterion_main!(
    stages::decode::benches,
    stages::graph_apply::benches,
    stages::snapshot::benches,
    stages::replica::benches,
    stages::store::benches,
    stages::telemetry::benches,
    stages::text::benches,
    stages::persist::benches,
    stages::kernels::benches
);

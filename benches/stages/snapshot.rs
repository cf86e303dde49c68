//! Snapshots and their alternatives.
//!
//! - `snapshot/to_json/1k`: [`vuer_rtc::SceneGraph::to_json`] (canonical compact JSON
//!   text) of the 1,000-node scene after the whole edit mix of
//!   [`crate::stages::workload`] was applied with `apply_messages` (each node holds
//!   `position`, `rotation` and `health`). Throughput is in nodes.
//! - `snapshot/*/1m`: the 1,000,000-node scene of [`vuer_rtc::workload::props_scene`] (a tree of fan-out 10;
//!   per node `position` [f32; 3], `rotation` quaternion, `color` `#rrggbb` and `mass`,
//!   inserted by 1,000 messages of 1,000 `node.insert`s, then compacted: the state a
//!   server snapshots). Throughput is in bytes of the snapshot (so criterion prints
//!   GB/s of archive), except `read_positions` (in nodes):
//!   - `write`: [`Replica::snapshot`] (build, serialize, checksum);
//!   - `open`: [`SnapshotView::open`] with full validation (header, CRC32C, rkyv's
//!     checked access);
//!   - `open_unchecked`: the trusted path (header only);
//!   - `read_positions`: every `position` through an opened view;
//!   - `restore`: [`Replica::from_snapshot`];
//!   - `json_write` / `json_parse`: the same state as canonical JSON text
//!     ([`Replica::to_json`]) and parsing it back into a `serde_json::Value` (a lower
//!     bound for any JSON restore: nothing is rebuilt);
//!   - `replay`: the alternative to a snapshot: decoding the 1,000 messages from
//!     MessagePack and applying them to a fresh replica (throughput in snapshot bytes
//!     too, to compare with `restore`).
//!
//!   Setup prints the snapshot's size and bytes per node.
//!
//! Reproduce: `cargo bench --bench main -- snapshot/` (one: `-- snapshot/restore/1m`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::{Json, Limits};
use vuer_rtc::snapshot::SnapshotView;
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Replica, SceneGraph, apply_messages};

use crate::stages::workload::{NODES, edit_messages, warm_graph};

#[inline(never)]
fn to_json(graph: &SceneGraph) -> String {
    graph.to_json()
}

fn snapshot_benches(c: &mut Criterion) {
    let mut graph = warm_graph();
    let report = apply_messages(&mut graph, &edit_messages());
    assert!(report.warnings.is_empty());
    assert_eq!(graph.len(), NODES);

    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Elements(NODES as u64));
    group.bench_function(BenchmarkId::new("to_json", "1k"), |b| {
        b.iter(|| to_json(black_box(&graph)));
    });
    group.finish();
}

/// Nodes in the big scene.
pub const BIG: usize = 1_000_000;

fn replay(encoded: &[Vec<u8>]) -> Replica {
    let msgs = encoded
        .iter()
        .map(|b| wire::decode_message(b, Format::MessagePack, &Limits::default()).unwrap())
        .collect();
    let mut r = Replica::new();
    r.apply_owned(msgs);
    r
}

fn big_benches(c: &mut Criterion) {
    let msgs = vuer_rtc::workload::props_scene(BIG);
    let encoded: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| wire::encode_message(m, Format::MessagePack))
        .collect();
    let mut replica = Replica::new();
    replica.apply_owned(msgs);
    replica.compact();
    assert_eq!(replica.graph().len(), BIG);
    assert_eq!(replica.journal().len(), 0, "the scene compacts completely");
    let snap = replica.snapshot();
    let bytes = snap.len() as u64;
    let json = replica.to_json();
    eprintln!(
        "snapshot of {BIG} nodes: {bytes} bytes ({:.1} bytes/node); canonical JSON {} bytes ({:.1} bytes/node); journal {} bytes of MessagePack",
        bytes as f64 / BIG as f64,
        json.len(),
        json.len() as f64 / BIG as f64,
        encoded.iter().map(Vec::len).sum::<usize>(),
    );

    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(BenchmarkId::new("write", "1m"), |b| {
        b.iter(|| black_box(&replica).snapshot())
    });
    group.bench_function(BenchmarkId::new("open", "1m"), |b| {
        b.iter(|| SnapshotView::open(black_box(&snap)).unwrap().len())
    });
    group.bench_function(BenchmarkId::new("open_unchecked", "1m"), |b| {
        b.iter(|| {
            // SAFETY: `snap` is exactly what `Replica::snapshot` returned above, unchanged.
            let view = unsafe { SnapshotView::open_unchecked(black_box(&snap)) };
            view.unwrap().len()
        })
    });
    group.bench_function(BenchmarkId::new("restore", "1m"), |b| {
        b.iter(|| Replica::from_snapshot(black_box(&snap)).unwrap())
    });
    group.bench_function(BenchmarkId::new("replay", "1m"), |b| {
        b.iter(|| replay(black_box(&encoded)))
    });
    group.bench_function(BenchmarkId::new("json_write", "1m"), |b| {
        b.iter(|| black_box(&replica).to_json())
    });
    group.bench_function(BenchmarkId::new("json_parse", "1m"), |b| {
        b.iter(|| serde_json::from_str::<Json>(black_box(&json)).unwrap())
    });
    group.throughput(Throughput::Elements(BIG as u64));
    let view = SnapshotView::open(&snap).unwrap();
    group.bench_function(BenchmarkId::new("read_positions", "1m"), |b| {
        b.iter(|| {
            let mut sum = 0.0f32;
            for (_, p) in black_box(&view).vec3_cells("position") {
                sum += p[0] + p[1] + p[2];
            }
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, snapshot_benches, big_benches);

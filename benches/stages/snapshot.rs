//! `snapshot/to_json/1k`: [`vuer_rtc::SceneGraph::to_json`] (canonical compact JSON
//! text) of the 1,000-node scene after the whole edit mix of [`crate::stages::workload`] was
//! applied with `apply_messages` (each node holds `position`, `rotation` and `health`).
//!
//! The graph is built once in setup; each iteration serializes it and the `String` is
//! dropped inside the timed loop. Throughput is in nodes.
//!
//! Reproduce: `cargo bench --bench main -- snapshot/`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::{SceneGraph, apply_messages};

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

criterion_group!(benches, snapshot_benches);

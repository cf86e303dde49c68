//! `graph_apply/{apply_messages,apply_message_seq}/10k`: applying the 10,000-message ×
//! 10-op edit mix of [`crate::stages::workload`] (100,000 ops) to the warm 1,000-node scene.
//!
//! - `apply_messages`: [`vuer_rtc::apply_messages`] on the whole slice: dedupe, sort by
//!   `(lt, client)` (file order is interleaved, so the sort does real work), undo check,
//!   then apply.
//! - `apply_message_seq`: [`vuer_rtc::apply_message`] once per message, in file order,
//!   no sort; this gives a different (valid) final state and is only for comparison.
//!
//! The warm graph (10 insert messages, 1,000 nodes with `position`, `rotation` and
//! `health` columns) is built once in setup; every iteration gets a fresh clone from
//! `iter_batched(.., BatchSize::LargeInput)`, so neither the clone nor the drop of the
//! graph is timed. Setup checks that all 100,000 ops apply without a warning.
//! Throughput is in ops.
//!
//! Reproduce: `cargo bench --bench main -- graph_apply/`

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::Message;
use vuer_rtc::{ApplyReport, SceneGraph, apply_message, apply_messages};

use crate::stages::workload::{TOTAL_OPS, edit_messages, warm_graph};

#[inline(never)]
fn apply_all(graph: &mut SceneGraph, msgs: &[Message]) -> ApplyReport {
    apply_messages(graph, msgs)
}

#[inline(never)]
fn apply_sequential(graph: &mut SceneGraph, msgs: &[Message]) -> usize {
    let mut ops = 0;
    for msg in msgs {
        ops += apply_message(graph, msg).ops;
    }
    ops
}

fn graph_apply_benches(c: &mut Criterion) {
    let warm = warm_graph();
    let msgs = edit_messages();

    // Correctness checks, outside any timing.
    let report = apply_all(&mut warm.clone(), &msgs);
    assert_eq!(report.ops, TOTAL_OPS);
    assert!(report.warnings.is_empty(), "{:?}", &report.warnings[..1]);
    assert_eq!(apply_sequential(&mut warm.clone(), &msgs), TOTAL_OPS);

    let mut group = c.benchmark_group("graph_apply");
    group.sample_size(20);
    group.throughput(Throughput::Elements(TOTAL_OPS as u64));
    group.bench_function(BenchmarkId::new("apply_messages", "10k"), |b| {
        b.iter_batched(
            || warm.clone(),
            |mut g| {
                let report = apply_all(&mut g, black_box(&msgs));
                (g, report)
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function(BenchmarkId::new("apply_message_seq", "10k"), |b| {
        b.iter_batched(
            || warm.clone(),
            |mut g| {
                let ops = apply_sequential(&mut g, black_box(&msgs));
                (g, ops)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, graph_apply_benches);

//! `telemetry/{tick,tick_and_feed}/10k`: the telemetry workload of
//! [`vuer_rtc::workload::Telemetry`] — a [`vuer_rtc::Writer`] sets `position` and
//! `rotation` of every node of a 10,000-node scene, one message of 20,000 writes per
//! tick, 50 ticks per iteration (1,000,000 writes: the automatic compaction, every
//! 1,000,000 ops, runs once per iteration). `tick_and_feed` also takes the change feed
//! after every tick (a renderer at the tick rate). Filling the writer is timed (it is
//! what a producer does); building the scene replica and cloning it are not
//! (`iter_batched`, `LargeInput`). Throughput is in property writes.
//!
//! Reproduce: `cargo bench --bench main -- telemetry/`; the whole 1,000-tick run is
//! `vuer-rtc telemetry`, see `perf/README.md`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use vuer_rtc::Replica;
use vuer_rtc::workload::Telemetry;

const TICKS: usize = 50;

#[inline(never)]
fn ticks(mut r: Replica, feed: bool) -> Replica {
    let (keys, pos, rot) = Telemetry::standard().handles(&mut r);
    let mut w = r.writer("author");
    for t in 1..=TICKS {
        Telemetry::fill(t, &keys, pos, rot, &mut w);
        r.commit(&mut w, 0.0).unwrap();
        if feed {
            black_box(r.take_changes());
        }
    }
    r
}

fn telemetry_benches(c: &mut Criterion) {
    let t = Telemetry::standard();
    let base = t.replica();
    let mut group = c.benchmark_group("telemetry");
    group.sample_size(10);
    group.throughput(Throughput::Elements((2 * t.nodes * TICKS) as u64));
    for (name, feed) in [("tick/10k", false), ("tick_and_feed/10k", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(|| base.clone(), |r| ticks(r, feed), BatchSize::LargeInput);
        });
    }
    group.finish();
}

criterion_group!(benches, telemetry_benches);

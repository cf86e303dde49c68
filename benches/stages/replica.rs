//! `replica/{standard,vector3_set,undo_1pct,json,msgpack}/20k`: the standard merge
//! workload of [`vuer_rtc::workload::Workload::standard`] scaled to 20,000 messages x 10
//! ops (200,000 ops: half `vector3.set`, a quarter `number.add`, a quarter
//! `quaternion.multiply`, on a 10,000-node scene, 1,000 clients, lagging clients so about
//! a fifth of the messages land late), fed to a warm [`Replica`] in batches of 1,000
//! messages in arrival order.
//!
//! - `standard`: pre-decoded messages handed over with `apply_owned`;
//! - `vector3_set`: the same with only `vector3.set`;
//! - `undo_1pct`: the standard mix with 1 % of messages followed by an undo;
//! - `json` / `msgpack`: the standard mix from encoded bytes (`apply_bytes`).
//!
//! `replica/scene_a_one_by_one/{msgpack,decoded}/20k`: workload A of `perf/peers`
//! ([`vuer_rtc::workload::SceneA`]: a flat 10,000-node scene, 20,000 messages x 10 LWW
//! writes of `position` / `health` from 1,000 authors), one message per call, from
//! MessagePack bytes (`apply_bytes`: the fast reader) or pre-decoded (`apply_owned`).
//!
//! Setup builds the scene replica and the batches; cloning the replica and the batches
//! is not timed (`iter_batched`, `LargeInput`). Throughput is in edit ops. The
//! full-size workload (100,000 messages) is `vuer-rtc bench`, see `perf/README.md`.
//!
//! Reproduce: `cargo bench --bench main -- replica/`

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::Replica;
use vuer_rtc::op::Message;
use vuer_rtc::wire::{self, Format};
use vuer_rtc::workload::{Mix, SceneA, Workload};

const MESSAGES: usize = 20_000;
const BATCH: usize = 1_000;

#[inline(never)]
fn feed(mut r: Replica, batches: Vec<Vec<Message>>) -> Replica {
    for b in batches {
        let rep = r.apply_owned(b);
        assert!(rep.rejected.is_empty());
    }
    r
}

#[inline(never)]
fn feed_bytes(mut r: Replica, batches: &[Vec<u8>], format: Format) -> Replica {
    for b in batches {
        let rep = r.apply_bytes(b, format);
        assert!(rep.rejected.is_empty());
    }
    r
}

fn replica_benches(c: &mut Criterion) {
    let base = Workload::standard().with_messages(MESSAGES);
    let mut warm = Replica::new();
    warm.apply_batch(&base.scene());
    let mut group = c.benchmark_group("replica");
    group.sample_size(10);

    let mut v3 = base;
    v3.mix = Mix::Vector3Set;
    let mut undo = base;
    undo.undo = 0.01;
    for (variant, w) in [
        ("standard", &base),
        ("vector3_set", &v3),
        ("undo_1pct", &undo),
    ] {
        let edits = w.edits();
        let ops: usize = edits.iter().map(|m| m.ops.len()).sum();
        let batches: Vec<Vec<Message>> = edits.chunks(BATCH).map(<[Message]>::to_vec).collect();
        group.throughput(Throughput::Elements(ops as u64));
        group.bench_function(BenchmarkId::new(variant, "20k"), |b| {
            b.iter_batched(
                || (warm.clone(), batches.clone()),
                |(r, bs)| black_box(feed(r, bs)),
                BatchSize::LargeInput,
            );
        });
    }

    let edits = base.edits();
    let ops: usize = edits.iter().map(|m| m.ops.len()).sum();
    group.throughput(Throughput::Elements(ops as u64));
    for (variant, format) in [("json", Format::Json), ("msgpack", Format::MessagePack)] {
        let encoded: Vec<Vec<u8>> = edits
            .chunks(BATCH)
            .map(|b| wire::encode_messages(b, format))
            .collect();
        group.bench_function(BenchmarkId::new(variant, "20k"), |b| {
            b.iter_batched(
                || warm.clone(),
                |r| black_box(feed_bytes(r, &encoded, format)),
                BatchSize::LargeInput,
            );
        });
    }

    let a = SceneA::standard().with_messages(MESSAGES);
    let mut warm_a = Replica::new();
    warm_a.apply_batch(&a.scene());
    let msgs = a.messages();
    group.throughput(Throughput::Elements((MESSAGES * a.writes) as u64));
    let encoded: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| wire::encode_message(m, Format::MessagePack))
        .collect();
    group.bench_function(BenchmarkId::new("scene_a_one_by_one/msgpack", "20k"), |b| {
        b.iter_batched(
            || warm_a.clone(),
            |r| black_box(feed_bytes(r, &encoded, Format::MessagePack)),
            BatchSize::LargeInput,
        );
    });
    let singles: Vec<Vec<Message>> = msgs.iter().map(|m| vec![m.clone()]).collect();
    group.bench_function(BenchmarkId::new("scene_a_one_by_one/decoded", "20k"), |b| {
        b.iter_batched(
            || (warm_a.clone(), singles.clone()),
            |(r, bs)| black_box(feed(r, bs)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, replica_benches);

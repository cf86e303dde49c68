//! `store/{receive,receive_pending,receive_batch}/10k` and `store/edit_commit/10k`: the
//! client store ([`GraphStore`]) on the 1,000-node scene of [`crate::stages::workload`].
//!
//! - `receive`: [`Workload::relayed`] — 10,000 remote messages of 10 `vector3.set`
//!   (`position` of uniformly random nodes) from 100 clients, `lt` 11, 12, … in relay
//!   order, each with its client's own `clock` counter — handed to
//!   [`GraphStore::receive`] one by one.
//!   Throughput is in messages (the target: ≥ 300,000 messages/s).
//! - `receive_pending`: the same with two uncommitted edits in the buffer (a
//!   `vector3.set` and a `number.add` on nodes the messages also write), so every
//!   receive lifts and re-applies the optimistic overlay.
//! - `receive_batch`: the same messages in batches of 100 ([`GraphStore::receive_batch`]).
//! - `edit_commit`: 1,000 rounds of 10 `vector3.set` edits (random nodes) and one
//!   [`GraphStore::commit`]. Throughput is in edit ops (target: ≥ 1,000,000 ops/s).
//!
//! Setup (not timed, `iter_batched` with `LargeInput`): a store that received the scene
//! and a copy of the messages. Dropping them is not timed either.
//!
//! Reproduce: `cargo bench --bench main -- store/`

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::{Message, Op};
use vuer_rtc::store::GraphStore;

use vuer_rtc::workload::Workload;

use crate::stages::workload::{INSERT_MESSAGES, NODES, SplitMix64};

const MESSAGES: usize = 10_000;
const OPS: usize = 10;
const ROUNDS: usize = 1_000;

/// The workload: 1,000 nodes, 100 clients, 10,000 relayed messages of 10 ops.
pub fn workload() -> Workload {
    let mut w = Workload::standard().with_messages(MESSAGES);
    w.nodes = NODES;
    w.clients = 100;
    w.ops_per_message = OPS;
    w
}

/// A store for `me` that holds the 1,000-node scene.
pub fn scene_store(me: &str) -> GraphStore {
    let mut s = GraphStore::new(me);
    let report = s.receive_batch(workload().scene());
    assert_eq!(report.accepted, INSERT_MESSAGES);
    s
}

#[inline(never)]
fn receive_all(mut s: GraphStore, msgs: Vec<Message>) -> GraphStore {
    for m in msgs {
        let r = s.receive(m);
        debug_assert!(r.is_ok());
    }
    s
}

#[inline(never)]
fn edit_commit(mut s: GraphStore, edits: &[Vec<Op>]) -> GraphStore {
    for round in edits {
        for op in round {
            let r = s.edit(op.clone());
            debug_assert!(r.is_ok());
        }
        black_box(s.commit(""));
    }
    s
}

fn store_benches(c: &mut Criterion) {
    let msgs = workload().relayed();
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MESSAGES as u64));

    let base = scene_store("me");
    let expected = {
        let s = receive_all(scene_store("me"), msgs.clone());
        s.graph().to_json()
    };
    group.bench_function(BenchmarkId::new("receive", "10k"), |b| {
        b.iter_batched(
            || (scene_store("me"), msgs.clone()),
            |(s, m)| receive_all(s, m),
            BatchSize::LargeInput,
        );
    });

    let pending = || {
        let mut s = scene_store("me");
        s.edit(Op::vector3_set("n1", "position", [1.0, 2.0, 3.0]))
            .unwrap();
        s.edit(Op::number_add("n2", "health", -1.0)).unwrap();
        s
    };
    group.bench_function(BenchmarkId::new("receive_pending", "10k"), |b| {
        b.iter_batched(
            || (pending(), msgs.clone()),
            |(s, m)| receive_all(s, m),
            BatchSize::LargeInput,
        );
    });

    let batches: Vec<Vec<Message>> = msgs.chunks(100).map(<[Message]>::to_vec).collect();
    {
        let mut s = scene_store("me");
        for b in batches.clone() {
            s.receive_batch(b);
        }
        assert_eq!(s.graph().to_json(), expected, "batched = one by one");
    }
    group.bench_function(BenchmarkId::new("receive_batch", "10k"), |b| {
        b.iter_batched(
            || (scene_store("me"), batches.clone()),
            |(mut s, bs)| {
                for b in bs {
                    s.receive_batch(b);
                }
                s
            },
            BatchSize::LargeInput,
        );
    });

    let mut rng = SplitMix64::new(0x5EED);
    let edits: Vec<Vec<Op>> = (0..ROUNDS)
        .map(|_| {
            (0..OPS)
                .map(|_| {
                    let v = [rng.unit_f32(), rng.unit_f32(), rng.unit_f32()];
                    Op::vector3_set(format!("n{}", rng.below(NODES)), "position", v)
                })
                .collect()
        })
        .collect();
    drop(base);
    group.throughput(Throughput::Elements((ROUNDS * OPS) as u64));
    group.bench_function(BenchmarkId::new("edit_commit", "10k"), |b| {
        b.iter_batched(
            || scene_store("me"),
            |s| edit_commit(s, &edits),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, store_benches);

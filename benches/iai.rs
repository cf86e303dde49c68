//! Instruction counts (iai-callgrind, valgrind) for the merge kernel: stable on a noisy
//! machine, so a change in them is a change in the code.
//!
//! - `merge_batch`: one batch of 1,000 standard-workload messages (10,000 ops) applied
//!   to a replica that already holds the 10,000-node scene and 2,000 earlier messages
//!   (so some of the batch lands late);
//! - `scene_a_bytes`: 1,000 messages of workload A ([`vuer_rtc::workload::SceneA`], 10
//!   LWW writes each) applied one per call from MessagePack bytes (`apply_bytes`, the
//!   fast reader) to a replica holding the 10,000-node scene: divide by 10,000 for the
//!   instructions per write;
//! - `telemetry_ticks`: 50 ticks of the telemetry workload
//!   ([`vuer_rtc::workload::Telemetry`]: a [`vuer_rtc::Writer`] sets `position` and
//!   `rotation` of all 10,000 nodes per tick, one commit each), filling included, with
//!   the one automatic compaction those 1,000,000 writes trigger: divide by 1,000,000
//!   for the instructions per write;
//! - `store_receive`: 1,000 messages of [`Workload::relayed`] (10 `vector3.set` each)
//!   received one by one by a client store holding the 1,000-node scene;
//! - `store_edit_commit`: 100 rounds of 10 `vector3.set` edits and a commit on that store;
//! - `quat_mul_{scalar,simd}`, `apply_quat_scalar`: 1,000 chained kernel calls;
//! - `text_local`: the automerge-paper editing trace (259,778 edits) replayed as local
//!   edits (`TextDoc::replace`);
//! - `text_remote`: the CRDT ops of that replay integrated into an empty document.
//! - `snapshot_{write,open,restore}`: [`Replica::snapshot`], `SnapshotView::open`
//!   (full validation) and [`Replica::from_snapshot`] of the compacted 10,000-node
//!   scene of [`vuer_rtc::workload::props_scene`] (the criterion benches run the 1M one).
//!
//! Setup (building the replica and the batch) runs outside the measured function.
//!
//! Reproduce: `cargo install iai-callgrind-runner --version 0.16.1` once, then
//! `cargo bench --bench iai`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(
    missing_docs,
    reason = "the iai-callgrind macros generate undocumented modules"
)]

// The same allocator as the `vuer-rtc` binary, so the numbers match `vuer-rtc bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use iai_callgrind::{library_benchmark, library_benchmark_group, main};
use vuer_rtc::Replica;
use vuer_rtc::column::kernels::{quat_mul_scalar, quat_mul_simd, vec3_apply_quat_scalar};
use vuer_rtc::op::{Message, Op};
use vuer_rtc::store::GraphStore;
use vuer_rtc::text::{DeleteRange, InsertOp, TextDoc};
use vuer_rtc::workload::{SplitMix64, Workload};

fn warm_replica_and_batch() -> (Replica, Vec<Message>) {
    let w = Workload::standard().with_messages(3_000);
    let edits = w.edits();
    let mut r = Replica::new();
    r.apply_batch(&w.scene());
    r.apply_batch(&edits[..2_000]);
    (r, edits[2_000..].to_vec())
}

fn store_workload() -> Workload {
    let mut w = Workload::standard().with_messages(1_000);
    w.nodes = 1_000;
    w.clients = 100;
    w
}

fn scene_store() -> GraphStore {
    let mut s = GraphStore::new("me");
    s.receive_batch(store_workload().scene());
    s
}

fn store_and_messages() -> (GraphStore, Vec<Message>) {
    (scene_store(), store_workload().relayed())
}

fn store_and_edits() -> (GraphStore, Vec<Vec<Op>>) {
    let mut rng = SplitMix64::new(11);
    let edits = (0..100)
        .map(|_| {
            (0..10)
                .map(|_| {
                    let v = [rng.unit_f32(), rng.unit_f32(), rng.unit_f32()];
                    Op::vector3_set(format!("n{}", rng.below(1_000)), "position", v)
                })
                .collect()
        })
        .collect();
    (scene_store(), edits)
}

#[library_benchmark]
#[bench::relayed_1k(store_and_messages())]
fn store_receive((mut s, msgs): (GraphStore, Vec<Message>)) -> GraphStore {
    for m in black_box(msgs) {
        assert!(s.receive(m).is_ok());
    }
    s
}

#[library_benchmark]
#[bench::rounds_100(store_and_edits())]
fn store_edit_commit((mut s, edits): (GraphStore, Vec<Vec<Op>>)) -> GraphStore {
    for round in black_box(edits) {
        for op in round {
            assert!(s.edit(op).is_ok());
        }
        black_box(s.commit(""));
    }
    s
}

// The trace loader of the criterion benches (a path module: `benches/*.rs` would each
// become a bench target).
#[allow(
    dead_code,
    reason = "the criterion benches read the concurrent traces' fields"
)]
#[path = "stages/traces.rs"]
mod traces;

/// Every patch of automerge-paper, in order, and its final text.
fn paper_and_end() -> (Vec<(usize, usize, String)>, String) {
    let t = traces::load("automerge-paper");
    let start = (!t.start.is_empty()).then(|| (0, 0, t.start.clone()));
    let patches = start
        .into_iter()
        .chain(t.txns.into_iter().flat_map(|x| x.patches))
        .collect();
    (patches, t.end)
}

fn paper() -> Vec<(usize, usize, String)> {
    paper_and_end().0
}

/// The CRDT ops the local replay of automerge-paper sends (checked against the
/// trace's final text).
fn paper_ops() -> Vec<(Vec<DeleteRange>, Option<InsertOp>)> {
    let (patches, end) = paper_and_end();
    let mut d = TextDoc::new();
    let ops = patches
        .into_iter()
        .map(|(pos, del, ins)| {
            let rm = if del > 0 {
                d.delete(pos, del)
            } else {
                Vec::new()
            };
            (rm, d.insert("seph", pos, &ins, 0.0))
        })
        .collect();
    assert_eq!(d.text(), end);
    ops
}

#[library_benchmark]
#[bench::automerge_paper(paper())]
fn text_local(patches: Vec<(usize, usize, String)>) -> TextDoc {
    let mut d = TextDoc::new();
    for (pos, del, ins) in black_box(&patches) {
        d.replace("seph", *pos, *del, ins, 0.0);
    }
    d
}

#[library_benchmark]
#[bench::automerge_paper(paper_ops())]
fn text_remote(ops: Vec<(Vec<DeleteRange>, Option<InsertOp>)>) -> TextDoc {
    let mut d = TextDoc::new();
    for (rm, ins) in black_box(&ops) {
        if !rm.is_empty() {
            d.apply_delete(rm);
        }
        if let Some(op) = ins {
            d.apply_insert(op);
        }
    }
    d
}

fn quats() -> Vec<[f32; 4]> {
    let mut rng = SplitMix64::new(7);
    (0..1_000)
        .map(|_| {
            [
                rng.unit_f32(),
                rng.unit_f32(),
                rng.unit_f32(),
                rng.unit_f32(),
            ]
        })
        .collect()
}

fn scene_a_replica_and_bytes() -> (Replica, Vec<Vec<u8>>) {
    let a = vuer_rtc::workload::SceneA::standard().with_messages(1_000);
    let mut r = Replica::new();
    r.apply_batch(&a.scene());
    let bytes = a
        .messages()
        .iter()
        .map(|m| vuer_rtc::wire::encode_message(m, vuer_rtc::wire::Format::MessagePack))
        .collect();
    (r, bytes)
}

#[library_benchmark]
#[bench::writes_10k(scene_a_replica_and_bytes())]
fn scene_a_bytes((mut r, bytes): (Replica, Vec<Vec<u8>>)) -> Replica {
    for b in black_box(&bytes) {
        let report = r.apply_bytes(b, vuer_rtc::wire::Format::MessagePack);
        assert_eq!(report.accepted, 1);
    }
    r
}

type TelemetrySetup = (
    Replica,
    Vec<vuer_rtc::ids::KeyId>,
    vuer_rtc::ids::PathId,
    vuer_rtc::ids::PathId,
);

fn telemetry_replica() -> TelemetrySetup {
    let t = vuer_rtc::workload::Telemetry::standard();
    let mut r = t.replica();
    let (keys, pos, rot) = t.handles(&mut r);
    (r, keys, pos, rot)
}

#[library_benchmark]
#[bench::writes_1m(telemetry_replica())]
fn telemetry_ticks((mut r, keys, pos, rot): TelemetrySetup) -> Replica {
    let mut w = r.writer("author");
    for t in 1..=50 {
        vuer_rtc::workload::Telemetry::fill(t, black_box(&keys), pos, rot, &mut w);
        r.commit(&mut w, 0.0).unwrap();
    }
    r
}

#[library_benchmark]
#[bench::standard_1k(warm_replica_and_batch())]
fn merge_batch((mut r, batch): (Replica, Vec<Message>)) -> Replica {
    let report = r.apply_owned(black_box(batch));
    assert!(report.rejected.is_empty());
    r
}

#[library_benchmark]
#[bench::chain_1k(quats())]
fn quat_mul_scalar_chain(qs: Vec<[f32; 4]>) -> [f32; 4] {
    qs.iter().fold([0.0, 0.0, 0.0, 1.0], |acc, q| {
        quat_mul_scalar(acc, black_box(*q))
    })
}

#[library_benchmark]
#[bench::chain_1k(quats())]
fn quat_mul_simd_chain(qs: Vec<[f32; 4]>) -> [f32; 4] {
    qs.iter().fold([0.0, 0.0, 0.0, 1.0], |acc, q| {
        quat_mul_simd(acc, black_box(*q))
    })
}

#[library_benchmark]
#[bench::chain_1k(quats())]
fn apply_quat_scalar_chain(qs: Vec<[f32; 4]>) -> [f32; 3] {
    qs.iter().fold([1.0, 0.0, 0.0], |acc, q| {
        vec3_apply_quat_scalar(acc, black_box(*q))
    })
}

library_benchmark_group!(
    name = merge;
    benchmarks = merge_batch, scene_a_bytes, telemetry_ticks, store_receive, store_edit_commit, quat_mul_scalar_chain, quat_mul_simd_chain, apply_quat_scalar_chain
);

fn compacted_scene() -> Replica {
    let mut r = Replica::new();
    r.apply_owned(vuer_rtc::workload::props_scene(10_000));
    r.compact();
    r
}

fn scene_snapshot() -> vuer_rtc::snapshot::SnapshotBuf {
    compacted_scene().snapshot()
}

#[library_benchmark]
#[bench::scene_10k(compacted_scene())]
fn snapshot_write(r: Replica) -> vuer_rtc::snapshot::SnapshotBuf {
    black_box(&r).snapshot()
}

#[library_benchmark]
#[bench::scene_10k(scene_snapshot())]
fn snapshot_open(snap: vuer_rtc::snapshot::SnapshotBuf) -> usize {
    vuer_rtc::snapshot::SnapshotView::open(black_box(&snap))
        .unwrap()
        .len()
}

#[library_benchmark]
#[bench::scene_10k(scene_snapshot())]
fn snapshot_restore(snap: vuer_rtc::snapshot::SnapshotBuf) -> Replica {
    Replica::from_snapshot(black_box(&snap)).unwrap()
}

library_benchmark_group!(
    name = snapshot;
    benchmarks = snapshot_write, snapshot_open, snapshot_restore
);

library_benchmark_group!(
    name = text;
    benchmarks = text_local, text_remote
);

main!(library_benchmark_groups = merge, text, snapshot);

//! Deterministic workloads shared by every bench module.
//!
//! - The scene: [`NODES`] = 1,000 nodes `n0` … `n999` in a tree of fan-out 10 (`n0` is
//!   the root, `nK`'s parent is `n((K-1)/10)`), each inserted with `position = [0,0,0]`,
//!   `rotation = [0,0,0,1]` and `health = 100`, in [`INSERT_MESSAGES`] = 10 messages of
//!   100 `node.insert` ops from client `author` (`lt` 1 … 10).
//! - The edit mix: [`MESSAGES`] = 10,000 messages × [`OPS_PER_MESSAGE`] = 10 ops, from
//!   [`CLIENTS`] = 100 clients (`c00` … `c99`), 100 messages each. Even op slots are
//!   `vector3.set` on `position`; odd slots alternate `number.add` on `health` and
//!   `quaternion.multiply` (unit quaternions) on `rotation`, so the 100,000 ops are exactly
//!   50,000 / 25,000 / 25,000. Target nodes are uniform over the 1,000 nodes.
//! - Lamport times: client `c`'s k-th message (k = 0 … 99) has `lt = 11 + k` and id
//!   `c:lt`. The file order is a seeded random merge of the 100 per-client queues, so
//!   `lt`s from different clients interleave and file order is not the canonical
//!   `(lt, client)` order.
//!
//! Every input comes from [`SplitMix64`] with a fixed seed: the same bytes every run.
//!
//! Reproduce (every bench that uses it): `cargo bench --bench main`

use std::collections::BTreeMap;

use vuer_rtc::op::{Message, Op};
use vuer_rtc::{SceneGraph, apply_messages, create_empty_graph};

/// Nodes in the scene.
pub const NODES: usize = 1_000;
/// Messages that insert the scene.
pub const INSERT_MESSAGES: usize = 10;
/// Edit messages.
pub const MESSAGES: usize = 10_000;
/// Ops per edit message.
pub const OPS_PER_MESSAGE: usize = 10;
/// Total edit ops.
pub const TOTAL_OPS: usize = MESSAGES * OPS_PER_MESSAGE;
/// Distinct editing clients.
pub const CLIENTS: usize = 100;

const SEED: u64 = 0x5EED_0F7E_5CE4_E5B1;

pub use vuer_rtc::workload::SplitMix64;

fn node_key(k: usize) -> String {
    format!("n{k}")
}

/// The 10 messages that insert the 1,000-node scene: the library's
/// [`vuer_rtc::workload::Workload::scene`] with [`NODES`] nodes.
pub fn insert_messages() -> Vec<Message> {
    let mut w = vuer_rtc::workload::Workload::standard();
    w.nodes = NODES;
    let msgs = w.scene();
    debug_assert_eq!(msgs.len(), INSERT_MESSAGES);
    msgs
}

/// The 10,000 × 10 edit mix, in (interleaved) file order.
pub fn edit_messages() -> Vec<Message> {
    let mut rng = SplitMix64::new(SEED);
    let per_client = MESSAGES / CLIENTS;
    let lt_base = INSERT_MESSAGES as u64 + 1;
    // next[c] = how many messages client c has sent so far.
    let mut next = vec![0usize; CLIENTS];
    let mut live: Vec<usize> = (0..CLIENTS).collect();
    let mut out = Vec::with_capacity(MESSAGES);
    while !live.is_empty() {
        let slot = rng.below(live.len());
        let c = live[slot];
        let k = next[c];
        next[c] += 1;
        if next[c] == per_client {
            live.swap_remove(slot);
        }
        let i = out.len();
        let ops = (0..OPS_PER_MESSAGE)
            .map(|j| {
                let key = node_key(rng.below(NODES));
                if j % 2 == 0 {
                    let v = [rng.unit_f32(), rng.unit_f32(), rng.unit_f32()];
                    Op::vector3_set(key, "position", v.map(|x| x * 10.0))
                } else if (i + j / 2) % 2 == 0 {
                    let delta = rng.below(21) as f64 - 10.0;
                    Op::number_add(key, "health", delta)
                } else {
                    Op::quaternion_multiply(key, "rotation", unit_quaternion(&mut rng))
                }
            })
            .collect();
        let client = format!("c{c:02}");
        let lt = lt_base + k as u64;
        out.push(Message {
            id: format!("{client}:{lt}"),
            client,
            clock: BTreeMap::new(),
            lt,
            ts: lt as f64,
            ops,
        });
    }
    out
}

fn unit_quaternion(rng: &mut SplitMix64) -> [f32; 4] {
    loop {
        let q = [
            rng.unit_f32(),
            rng.unit_f32(),
            rng.unit_f32(),
            rng.unit_f32(),
        ];
        let n2: f32 = q.iter().map(|x| x * x).sum();
        if n2 > 0.01 && n2 <= 1.0 {
            let n = n2.sqrt();
            return q.map(|x| x / n);
        }
    }
}

/// The scene after the insert messages: the warm starting state for `graph_apply`.
pub fn warm_graph() -> SceneGraph {
    let mut graph = create_empty_graph();
    let report = apply_messages(&mut graph, &insert_messages());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(graph.len(), NODES);
    graph
}

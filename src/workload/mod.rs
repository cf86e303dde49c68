//! Reproducible workloads for benchmarks and soak tests (the "benchmark harness" user).
//!
//! [`Workload::standard`] is the standard merge workload of the project: a 10,000-node
//! scene, 1,000 clients, 100,000 messages × 10 ops (half `vector3.set` on `position`, a
//! quarter `number.add` on `health`, a quarter `quaternion.multiply` on `rotation`),
//! in arrival order with realistic Lamport interleaving: each client stamps a message
//! with one more than the highest Lamport time it has *seen*, and 40 % of the messages
//! are sent by clients that lag behind (they have not seen the last 1–2,000 messages
//! yet), so that about 20 % of the messages land late in batches of 1,000.
//!
//! [`Telemetry`] (`telemetry.rs`) is the embedded high-frequency workload: a
//! [`crate::Writer`] updating the position and rotation of every node of a scene per
//! tick, with a renderer reading the change feed.
//!
//! Invariants: the same [`Workload`] always produces the same messages (seeded
//! splitmix64, no global state); ids are `client:lt` and `(lt, client)` pairs are unique.

mod telemetry;

pub use telemetry::{Telemetry, TelemetryRun};

use std::collections::{BTreeMap, VecDeque};

use crate::op::{Json, Message, Op};

/// Message `client:lt` at wall clock `lt`, numbered `seq` in its client's own `clock`
/// entry.
fn counted(client: String, lt: u64, seq: u64, ops: Vec<Op>) -> Message {
    Message {
        id: format!("{client}:{lt}"),
        clock: BTreeMap::from([(client.clone(), seq)]),
        client,
        lt,
        ts: lt as f64,
        ops,
    }
}

/// splitmix64 (Steele, Lea & Flood 2014): a tiny, seedable PRNG.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// Uniform in `[-1, 1)` with 24 bits, exact in `f32`.
    pub fn unit_f32(&mut self) -> f32 {
        let bits = (self.next_u64() >> 40) as u32;
        let x = bits as f32 / (1u32 << 23) as f32;
        x - 1.0
    }
}

/// The op mix of the edit messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Half `vector3.set` on `position`, a quarter `number.add` on `health`, a quarter
    /// `quaternion.multiply` on `rotation`.
    Standard,
    /// Only `vector3.set` on `position`.
    Vector3Set,
}

/// A parametrised merge workload.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Nodes in the scene.
    pub nodes: usize,
    /// Editing clients.
    pub clients: usize,
    /// Edit messages.
    pub messages: usize,
    /// Ops per edit message.
    pub ops_per_message: usize,
    /// Fraction of messages sent by a lagging client (they land late).
    pub lagging: f64,
    /// Fraction of edit messages that are followed by an undo of a recent message.
    pub undo: f64,
    /// The op mix.
    pub mix: Mix,
    /// PRNG seed.
    pub seed: u64,
}

impl Workload {
    /// The standard workload (see the module doc).
    pub fn standard() -> Workload {
        Workload {
            nodes: 10_000,
            clients: 1_000,
            messages: 100_000,
            ops_per_message: 10,
            lagging: 0.4,
            undo: 0.0,
            mix: Mix::Standard,
            seed: 0x5EED_0F7E_5CE4_E5B1,
        }
    }

    /// The same workload scaled down to `messages` edit messages.
    pub fn with_messages(mut self, messages: usize) -> Workload {
        self.messages = messages;
        self
    }

    fn node_key(k: usize) -> String {
        format!("n{k}")
    }

    /// The messages that insert the scene (client `author`, `lt` 1 …): a tree of
    /// fan-out 10, each node with `position`, `rotation` and `health`.
    pub fn scene(&self) -> Vec<Message> {
        author_messages(self.nodes, 100, false, |k| {
            let parent = if k == 0 {
                String::new()
            } else {
                Self::node_key((k - 1) / 10)
            };
            let props = BTreeMap::from([
                ("position".to_owned(), Json::from(vec![0, 0, 0])),
                ("rotation".to_owned(), Json::from(vec![0, 0, 0, 1])),
                ("health".to_owned(), Json::from(100)),
            ]);
            Op::node_insert_with(parent, Self::node_key(k), "Mesh", props)
        })
    }

    /// The client-store workload: what a store receives from the server. Message `i`
    /// comes from client `i mod clients`, with `lt` one more than the previous message
    /// (the server relays in Lamport order, after [`Workload::scene`]), its client's own
    /// `clock` counter, and `ops_per_message` × `vector3.set` of `position` on uniformly
    /// random nodes. `mix`, `lagging` and `undo` are not used.
    pub fn relayed(&self) -> Vec<Message> {
        let mut rng = SplitMix64::new(self.seed ^ 0x0057_0AE5);
        let first_lt = self.nodes.div_ceil(100) as u64 + 1;
        let clients = self.clients.max(1);
        (0..self.messages)
            .map(|i| {
                let client = format!("c{:04}", i % clients);
                let lt = first_lt + i as u64;
                let ops = (0..self.ops_per_message)
                    .map(|_| {
                        let v = [rng.unit_f32(), rng.unit_f32(), rng.unit_f32()];
                        Op::vector3_set(Self::node_key(rng.below(self.nodes)), "position", v)
                    })
                    .collect();
                counted(client, lt, (i / clients + 1) as u64, ops)
            })
            .collect()
    }

    /// The edit messages, in arrival order.
    pub fn edits(&self) -> Vec<Message> {
        self.stream().collect()
    }

    /// The edit messages of [`Workload::edits`], made one at a time (a streaming
    /// harness holds one batch, not the whole workload).
    pub fn stream(&self) -> Edits {
        let first_lt = self.nodes.div_ceil(100) as u64 + 1;
        Edits {
            w: *self,
            rng: SplitMix64::new(self.seed),
            i: 0,
            history: VecDeque::from([first_lt]),
            history_len: 1,
            client_lt: vec![0; self.clients],
            client_seq: vec![0; self.clients],
            recent: VecDeque::new(),
            undo: None,
        }
    }
}

/// How far back a lagging client's view of the stream reaches, in messages.
const MAX_LAG: usize = 2_000;
/// How many recent messages an undo picks its target from.
const UNDO_WINDOW: usize = 32;

/// The edit messages of a [`Workload`], one at a time ([`Workload::stream`]).
pub struct Edits {
    w: Workload,
    rng: SplitMix64,
    // Edit messages made so far.
    i: usize,
    // The highest lt sent after each of the last messages (`history_len` in all).
    history: VecDeque<u64>,
    history_len: usize,
    client_lt: Vec<u64>,
    // Each client numbers its messages in its own clock entry.
    client_seq: Vec<u64>,
    // The ids of the last edit messages (undo targets).
    recent: VecDeque<String>,
    // The undo that follows the message just made, if any.
    undo: Option<Message>,
}

impl Edits {
    /// The highest lt sent `back` messages ago (the first one when the stream is
    /// shorter).
    fn seen(&self, back: usize) -> u64 {
        let at = self.history_len.saturating_sub(1 + back);
        let first_held = self.history_len - self.history.len();
        self.history[at.saturating_sub(first_held)]
    }

    fn push_history(&mut self, lt: u64) {
        self.history.push_back(lt);
        self.history_len += 1;
        if self.history.len() > MAX_LAG + 2 {
            self.history.pop_front();
        }
    }
}

impl Iterator for Edits {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if let Some(u) = self.undo.take() {
            return Some(u);
        }
        let w = self.w;
        if self.i >= w.messages {
            return None;
        }
        let i = self.i;
        self.i += 1;
        let rng = &mut self.rng;
        let c = rng.below(w.clients);
        let lagging = (rng.below(1 << 20) as f64) < w.lagging * (1u64 << 20) as f64;
        let lag = if lagging { 1 + rng.below(MAX_LAG) } else { 0 };
        let seen = self.seen(lag);
        let lt = self.client_lt[c].max(seen) + 1;
        self.client_lt[c] = lt;
        let newest = self.seen(0).max(lt);
        self.push_history(newest);
        let client = format!("c{c:04}");
        let rng = &mut self.rng;
        let mut ops = Vec::with_capacity(w.ops_per_message);
        for k in 0..w.ops_per_message {
            let node = Workload::node_key(rng.below(w.nodes));
            let op = match (w.mix, k % 4) {
                (Mix::Vector3Set, _) | (_, 0 | 2) => Op::vector3_set(
                    node,
                    "position",
                    [
                        rng.unit_f32() * 8.0,
                        rng.unit_f32() * 8.0,
                        rng.unit_f32() * 8.0,
                    ],
                ),
                (_, 1) => Op::number_add(node, "health", (rng.below(21) as f64) - 10.0),
                _ => {
                    let t = rng.unit_f32();
                    let (s, co) = (t * 0.5).sin_cos();
                    Op::quaternion_multiply(node, "rotation", [0.0, s, 0.0, co])
                }
            };
            ops.push(op);
        }
        let id = format!("{client}:{lt}");
        self.recent.push_back(id.clone());
        if self.recent.len() > UNDO_WINDOW {
            self.recent.pop_front();
        }
        self.client_seq[c] += 1;
        let msg = Message {
            id,
            client: client.clone(),
            clock: BTreeMap::from([(client.clone(), self.client_seq[c])]),
            lt,
            ts: i as f64 * 0.001,
            ops,
        };
        let undo = (self.rng.below(1 << 20) as f64) < w.undo * (1u64 << 20) as f64;
        if undo {
            let back = self.rng.below(self.recent.len().min(UNDO_WINDOW));
            let target = self.recent[self.recent.len() - 1 - back].clone();
            let lt = self.client_lt[c].max(self.seen(0)) + 1;
            self.client_lt[c] = lt;
            self.push_history(lt);
            self.client_seq[c] += 1;
            self.undo = Some(Message {
                id: format!("{client}:{lt}"),
                client: client.clone(),
                clock: BTreeMap::from([(client, self.client_seq[c])]),
                lt,
                ts: i as f64 * 0.001,
                ops: vec![Op::meta_undo(target)],
            });
        }
        Some(msg)
    }
}

/// The messages that build the snapshot benchmarks' scene of `nodes` nodes (a
/// multiple of 1,000): a tree of fan-out 10 (`n0` the root), each node a `Mesh` with
/// `position` and a unit quaternion `rotation` (random `f32`s, so they land in typed
/// columns), `color` (`#rrggbb`) and `mass`, inserted by messages of 1,000
/// `node.insert`s from client `author`, with its `clock` counter, so a replica can
/// compact them all.
pub fn props_scene(nodes: usize) -> Vec<Message> {
    let mut rng = SplitMix64::new(0x5CE4_E000_0001);
    // Values are f32 (what a client sends for vectors), so they land in typed columns.
    let mut f = move || rng.unit_f32() * 100.0 - 50.0;
    author_messages(nodes, 1_000, true, |k| {
        let parent = if k == 0 {
            String::new()
        } else {
            format!("n{}", (k - 1) / 10)
        };
        let (x, y, z) = (f(), f(), f());
        let len = (x * x + y * y + z * z + 1.0).sqrt();
        let props = BTreeMap::from([
            ("position".to_owned(), Json::from(vec![x, y, z])),
            (
                "rotation".to_owned(),
                Json::from(vec![x / len, y / len, z / len, 1.0 / len]),
            ),
            (
                "color".to_owned(),
                Json::from(format!("#{:06x}", (k * 2_654_435_761) & 0xff_ffff)),
            ),
            ("mass".to_owned(), Json::from(f().abs())),
        ]);
        Op::node_insert_with(parent, format!("n{k}"), "Mesh", props)
    })
}

/// The messages of client `author` that create `nodes` nodes, `per` per message
/// (`lt` 1, 2, …), node `k` made by `insert(k)`; with `counted`, each message carries
/// the author's own clock counter.
fn author_messages(
    nodes: usize,
    per: usize,
    counted: bool,
    mut insert: impl FnMut(usize) -> Op,
) -> Vec<Message> {
    (0..nodes.div_ceil(per))
        .map(|m| {
            let ops = (m * per..((m + 1) * per).min(nodes))
                .map(&mut insert)
                .collect();
            let lt = m as u64 + 1;
            Message {
                id: format!("author:{lt}"),
                client: "author".into(),
                clock: if counted {
                    BTreeMap::from([("author".to_owned(), lt)])
                } else {
                    BTreeMap::new()
                },
                lt,
                ts: lt as f64,
                ops,
            }
        })
        .collect()
}

/// Workload A of the side-by-side comparison with other CRDTs (`perf/peers`): a flat
/// scene of `nodes` nodes `n0 … n{nodes-1}` under the root, each with `position`
/// `[0, 0, 0]` and `health` `100`, created by client `author`; then `messages` messages
/// of `writes` writes each. Write *k* of a message targets a uniformly random node not
/// yet written by that message (so no message writes a cell twice: systems differ on
/// which of two writes of one cell in one update wins — this engine keeps the first,
/// as the reference does, a map update the last): even *k* set `position` to a random
/// `[x, y, z]` (`vector3.set`), odd *k* set `health` to a random number (`number.set`). Message *j* is authored by client `c{j mod authors}`
/// and stamped `lt = base + j`, in the order a server relays them.
///
/// The writes are also available as plain records ([`SceneA::writes`]), so that another
/// system can encode the same edits in its own form.
///
/// Invariants: the same parameters always give the same writes; ids are `client:lt`
/// and every `(lt, client)` is unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneA {
    /// Nodes in the scene.
    pub nodes: usize,
    /// Edit messages.
    pub messages: usize,
    /// Writes per message.
    pub writes: usize,
    /// Distinct authors of the edit messages.
    pub authors: usize,
    /// PRNG seed.
    pub seed: u64,
}

/// One write of [`SceneA`], in no system's encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SceneWrite {
    /// The target node: `n{node}`.
    pub node: u32,
    /// What is written.
    pub value: SceneValue,
}

/// The value of a [`SceneWrite`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SceneValue {
    /// `position` = this.
    Position([f32; 3]),
    /// `health` = this.
    Health(f64),
}

impl SceneA {
    /// 10,000 nodes, 100,000 messages × 10 writes, 1,000 authors.
    pub fn standard() -> SceneA {
        SceneA {
            nodes: 10_000,
            messages: 100_000,
            writes: 10,
            authors: 1_000,
            seed: 0xA5CE_4E00_0000_0001,
        }
    }

    /// The same with `messages` edit messages.
    pub fn with_messages(mut self, messages: usize) -> SceneA {
        self.messages = messages;
        self
    }

    /// The same with `authors` authors.
    pub fn with_authors(mut self, authors: usize) -> SceneA {
        self.authors = authors.max(1);
        self
    }

    /// Lamport time of the first edit message (the scene messages come before it).
    pub fn first_lt(&self) -> u64 {
        self.nodes.div_ceil(1_000) as u64 + 1
    }

    /// The author of edit message `j`.
    pub fn author(&self, j: usize) -> String {
        format!("c{}", j % self.authors.max(1))
    }

    /// Every write, message by message: `writes()[j * self.writes + k]` is write `k` of
    /// message `j`.
    pub fn writes(&self) -> Vec<SceneWrite> {
        let mut rng = SplitMix64::new(self.seed);
        let nodes = self.nodes.max(1);
        // The nodes written so far by the current message: a message writes each node
        // at most once (while the scene has nodes enough), so no system's rule for two
        // writes of one cell in one update decides the outcome.
        let mut used: Vec<u32> = Vec::with_capacity(self.writes);
        (0..self.messages * self.writes)
            .map(|i| {
                if i % self.writes.max(1) == 0 {
                    used.clear();
                }
                let mut node = rng.below(nodes) as u32;
                while used.contains(&node) && used.len() < nodes {
                    node = rng.below(nodes) as u32;
                }
                used.push(node);
                let value = if (i % self.writes).is_multiple_of(2) {
                    SceneValue::Position([
                        rng.unit_f32() * 100.0,
                        rng.unit_f32() * 100.0,
                        rng.unit_f32() * 100.0,
                    ])
                } else {
                    SceneValue::Health(rng.below(1_000_000) as f64 / 100.0)
                };
                SceneWrite { node, value }
            })
            .collect()
    }

    /// The messages that create the scene: `node.insert`s of 1,000 nodes each from
    /// client `author`, with its own clock counter.
    pub fn scene(&self) -> Vec<Message> {
        author_messages(self.nodes, 1_000, true, |k| {
            let props = BTreeMap::from([
                ("position".to_owned(), Json::from(vec![0, 0, 0])),
                ("health".to_owned(), Json::from(100)),
            ]);
            Op::node_insert_with("", format!("n{k}"), "Mesh", props)
        })
    }

    /// The edit messages as this engine's [`Message`]s, in relay order, each with its
    /// author's own clock counter.
    pub fn messages(&self) -> Vec<Message> {
        self.stream().collect()
    }

    /// [`SceneA::messages`], made one at a time as they are taken (the writes are
    /// made up front: 24 bytes each).
    pub fn stream(&self) -> impl Iterator<Item = Message> + use<> {
        let writes = self.writes();
        let first = self.first_lt();
        let (authors, per) = (self.authors.max(1), self.writes.max(1));
        let a = self.clone();
        (0..writes.len().div_ceil(per)).map(move |j| {
            let client = a.author(j);
            let lt = first + j as u64;
            let ops = writes[j * per..((j + 1) * per).min(writes.len())]
                .iter()
                .map(|w| {
                    let node = format!("n{}", w.node);
                    match w.value {
                        SceneValue::Position(v) => Op::vector3_set(node, "position", v),
                        SceneValue::Health(h) => Op::number_set(node, "health", h),
                    }
                })
                .collect();
            counted(client, lt, (j / authors + 1) as u64, ops)
        })
    }

    /// The final `(position, health)` of every node after all the writes, computed
    /// from the plain records (the last write wins, in message order): what every
    /// system must end with.
    pub fn expected(&self) -> Vec<([f32; 3], f64)> {
        let mut out = vec![([0.0; 3], 100.0); self.nodes];
        for w in self.writes() {
            if let Some(slot) = out.get_mut(w.node as usize) {
                match w.value {
                    SceneValue::Position(p) => slot.0 = p,
                    SceneValue::Health(h) => slot.1 = h,
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream keeps bounded state however long it runs, while lagging messages
    /// still reach back up to `MAX_LAG` messages and undos target recent messages.
    #[test]
    fn the_stream_holds_bounded_state() {
        let mut w = Workload::standard().with_messages(20_000);
        w.undo = 0.05;
        let mut s = w.stream();
        let (mut n, mut undos, mut newest, mut behind) = (0, 0, 0u64, 0u64);
        for m in s.by_ref() {
            n += 1;
            if matches!(m.ops[0].kind, crate::op::OpKind::MetaUndo { .. }) {
                undos += 1;
            }
            behind = behind.max(newest.saturating_sub(m.lt));
            newest = newest.max(m.lt);
        }
        assert!(s.history.len() <= MAX_LAG + 2, "{}", s.history.len());
        assert!(s.recent.len() <= UNDO_WINDOW);
        assert_eq!(n, 20_000 + undos);
        assert!(undos > 500, "{undos} undos");
        assert!(behind > 100, "lagging messages land late: {behind}");
    }

    #[test]
    fn deterministic_and_unique() {
        let w = Workload::standard().with_messages(2_000);
        let a = w.edits();
        assert_eq!(a, w.edits());
        let mut ids: Vec<_> = a.iter().map(|m| (m.lt, m.client.clone())).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), a.len());
        assert_eq!(
            w.scene().iter().map(|m| m.ops.len()).sum::<usize>(),
            w.nodes
        );
    }

    #[test]
    fn about_a_fifth_lands_late_in_batches_of_1000() {
        let msgs = Workload::standard().with_messages(20_000).edits();
        let mut frontier = 0;
        let mut late = 0;
        for batch in msgs.chunks(1_000) {
            late += batch.iter().filter(|m| m.lt < frontier).count();
            frontier = frontier.max(batch.iter().map(|m| m.lt).max().unwrap_or(0));
        }
        let frac = late as f64 / msgs.len() as f64;
        assert!((0.1..0.3).contains(&frac), "late fraction {frac}");
    }

    #[test]
    fn scene_a_is_deterministic_and_the_model_agrees_with_the_engine() {
        let a = SceneA::standard().with_messages(300).with_authors(7);
        assert_eq!(a.writes(), a.writes());
        // No message writes a node twice (on 100,000 messages, unconstrained draws
        // would give about 45 such pairs per 10,000 messages).
        let big = SceneA::standard().with_messages(20_000).writes();
        for m in big.chunks(10) {
            let mut nodes: Vec<u32> = m.iter().map(|w| w.node).collect();
            nodes.sort_unstable();
            nodes.dedup();
            assert_eq!(nodes.len(), 10);
        }
        let msgs = a.messages();
        assert_eq!(msgs.len(), 300);
        assert!(msgs.iter().all(|m| m.ops.len() == 10));
        let mut stamps: Vec<_> = msgs.iter().map(|m| (m.lt, m.client.clone())).collect();
        stamps.sort();
        stamps.dedup();
        assert_eq!(stamps.len(), msgs.len());
        let mut g = crate::SceneGraph::new();
        crate::apply_messages(&mut g, &a.scene());
        crate::apply_messages(&mut g, &msgs);
        let expected = a.expected();
        let changed = expected.iter().filter(|e| e.1 != 100.0).count();
        assert!(changed > 100, "the writes reach many nodes");
        for (k, (pos, health)) in expected.iter().enumerate() {
            let node = g.node(&format!("n{k}")).unwrap();
            let num = |j: &crate::op::Json| j.as_f64().unwrap();
            let p = node.get("position").unwrap().to_json();
            let got: Vec<f32> = p
                .as_array()
                .unwrap()
                .iter()
                .map(|j| num(j) as f32)
                .collect();
            assert_eq!(got, pos.to_vec(), "n{k} position");
            assert_eq!(num(&node.get("health").unwrap().to_json()), *health, "n{k}");
        }
    }
}

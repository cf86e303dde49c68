//! vuer-rtc on workload A: a [`Replica`] fed MessagePack messages, and a
//! [`GraphStore`] for local edits.
//!
//! The sender side is [`SceneA::messages`](vuer_rtc::workload::SceneA::messages): its
//! messages already carry their author (`c{j mod authors}`), Lamport time and clock,
//! as a server relays them; each is encoded alone with `wire::encode_message`. The
//! receiver is a clone of a replica that applied [`SceneA::scene`](vuer_rtc::workload::SceneA::scene).

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use vuer_rtc::op::{Limits, Message, Op};
use vuer_rtc::snapshot::SnapshotBuf;
use vuer_rtc::wire::{decode_message, encode_message, encode_messages, Format};
use vuer_rtc::workload::{SceneValue, SceneWrite};
use vuer_rtc::{GraphStore, Replica};

use super::model::{verify, NodeState, Row, Scene, Work};
use super::run::bar;

pub struct Vuer {
    scene: Vec<Message>,
    base: Replica,
    messages: Vec<Message>,
    updates: Vec<Vec<u8>>,
    names: Vec<String>,
}

/// A local editor: a store on the base scene and the node keys.
pub struct Local {
    store: GraphStore,
    names: Vec<String>,
}

fn read(g: &vuer_rtc::SceneGraph, node: usize) -> Option<NodeState> {
    let n = g.node(&format!("n{node}"))?;
    let p = n.get("position")?.as_vec3()?;
    let h = n.get("health")?.as_number()?;
    Some((p, h))
}

impl Scene for Vuer {
    const NAME: &'static str = "vuer-rtc";
    const MODEL: &'static str = "scene graph: 10,000 `node.insert` children of the root, \
        `position` a typed vector3 column, `health` a number column; each write a \
        `vector3.set` / `number.set` op; one MessagePack message per message (encode_message)";
    type Doc = Replica;
    type Local = Local;
    type Batch = Vec<u8>;
    type Snap = SnapshotBuf;

    fn prepare(work: &Work, pb: &ProgressBar) -> Self {
        let scene = work.a.scene();
        let mut base = Replica::new();
        base.apply_batch(&scene);
        let messages = work.a.messages();
        let updates = messages
            .iter()
            .enumerate()
            .map(|(j, m)| {
                if j % 1024 == 0 {
                    pb.set_position(j as u64);
                }
                encode_message(m, Format::MessagePack)
            })
            .collect();
        Vuer {
            scene,
            base,
            messages,
            updates,
            names: (0..work.a.nodes).map(|k| format!("n{k}")).collect(),
        }
    }

    fn updates(&self) -> &[Vec<u8>] {
        &self.updates
    }

    fn base_bytes(&self) -> usize {
        encode_messages(&self.scene, Format::MessagePack).len()
    }

    fn receiver(&self) -> Replica {
        self.base.clone()
    }

    fn import(doc: &mut Replica, update: &[u8]) {
        let report = doc.apply_bytes(update, Format::MessagePack);
        debug_assert_eq!(report.accepted, 1, "{report:?}");
    }

    fn batch(&self, range: Range<usize>) -> Vec<u8> {
        encode_messages(&self.messages[range], Format::MessagePack)
    }

    fn import_batch(doc: &mut Replica, batch: &Vec<u8>) {
        let report = doc.apply_bytes(batch, Format::MessagePack);
        debug_assert!(report.rejected.is_empty(), "{report:?}");
    }

    fn local(&self) -> Local {
        let mut store = GraphStore::new("local");
        store.receive_batch(self.scene.clone());
        Local {
            store,
            names: self.names.clone(),
        }
    }

    fn edit(local: &mut Local, writes: &[SceneWrite]) {
        for w in writes {
            let key = local.names[w.node as usize].clone();
            let op = match w.value {
                SceneValue::Position(p) => Op::vector3_set(key, "position", p),
                SceneValue::Health(h) => Op::number_set(key, "health", h),
            };
            let edited = local.store.edit(op);
            debug_assert!(edited.is_ok(), "{edited:?}");
        }
        local.store.commit("");
    }

    fn read(doc: &Replica, node: usize) -> Option<NodeState> {
        read(doc.graph(), node)
    }

    fn read_local(local: &Local, node: usize) -> Option<NodeState> {
        read(local.store.graph(), node)
    }

    fn snapshot(doc: &mut Replica) -> SnapshotBuf {
        doc.snapshot()
    }

    fn load(snap: &[u8]) -> Replica {
        Replica::from_snapshot(snap).expect("vuer-rtc: own snapshot loads")
    }

    fn compact(doc: &mut Replica) -> Option<String> {
        // The scene's author sent nothing since the scene: a server would have its
        // heartbeat (it holds everything), so it no longer holds compaction back.
        let clock = doc.clock();
        doc.note_heartbeat("author", &clock);
        let r = doc.compact();
        Some(format!(
            "Replica::compact after the base author's heartbeat: through lt {:?}, {} messages, {} cells",
            r.through, r.messages, r.cells
        ))
    }

    fn extra_rows(&self, work: &Work, runs: usize, expected: &[NodeState]) -> Vec<Row> {
        let n = self.updates.len();
        let writes = work.writes.len();
        let mut rows = Vec::new();

        // Decode only: the wire step of A1.
        let limits = Limits::default();
        let pb = bar(Self::NAME, "decode only, 1 message per call", n);
        let mut best = Duration::MAX;
        for _ in 0..runs.max(1) {
            pb.reset();
            let t0 = Instant::now();
            for (j, u) in self.updates.iter().enumerate() {
                let m = decode_message(u, Format::MessagePack, &limits);
                black_box(m.is_ok());
                drop(black_box(m));
                if j % 1024 == 1023 {
                    pb.inc(1024);
                }
            }
            best = best.min(t0.elapsed());
        }
        pb.finish_and_clear();
        rows.push(super::model::Row {
            id: "decode".into(),
            what: "wire::decode_message only, 1 message per call".into(),
            secs: best.as_secs_f64(),
            writes,
            check: "-".into(),
        });

        // Apply pre-decoded: the merge step of A1.
        let pb = bar(Self::NAME, "apply pre-decoded, 1 message/call", n);
        let mut best = Duration::MAX;
        let mut check = String::new();
        for _ in 0..runs.max(1) {
            pb.reset();
            let mut r = self.base.clone();
            let msgs: Vec<Vec<Message>> = self.messages.iter().map(|m| vec![m.clone()]).collect();
            let t0 = Instant::now();
            for (j, m) in msgs.into_iter().enumerate() {
                r.apply_owned(m);
                if j % 1024 == 1023 {
                    pb.inc(1024);
                }
            }
            best = best.min(t0.elapsed());
            check = verify(expected, |k| read(r.graph(), k));
        }
        pb.finish_and_clear();
        rows.push(super::model::Row {
            id: "apply".into(),
            what: "Replica::apply_owned of decoded messages, 1 per call".into(),
            secs: best.as_secs_f64(),
            writes,
            check,
        });
        rows
    }
}

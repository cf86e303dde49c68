//! automerge on workload A: the root map holds one map object per node; `health` an
//! `F64` scalar and `position` one `Bytes` scalar of 3 little-endian `f32`s (12 bytes).
//! automerge has no array scalar, and a nested list object would cost 3 ops per write
//! (4 with a new object); one scalar keeps every write one op, as in the other systems.
//!
//! Client ids: one sender `AutoCommit` authors every message; before message *j* it
//! `set_actor(j mod authors + 1)`, so each message is one change of its actor (its next
//! `seq`), depending on the heads before it; the update is that change's bytes
//! (`get_last_local_change().raw_bytes()`, what `save_incremental` would return).

use std::ops::Range;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use indicatif::ProgressBar;
use vuer_rtc::workload::{SceneValue, SceneWrite};

use super::model::{NodeState, Scene, Work};

const BASE: u64 = 1 << 40;
const LOCAL: u64 = (1 << 40) + 2;

fn actor(id: u64) -> ActorId {
    ActorId::from(id.to_be_bytes().as_slice())
}

fn position(p: [f32; 3]) -> ScalarValue {
    let mut b = Vec::with_capacity(12);
    for x in p {
        b.extend_from_slice(&x.to_le_bytes());
    }
    ScalarValue::Bytes(b)
}

fn value(v: SceneValue) -> (&'static str, ScalarValue) {
    match v {
        SceneValue::Position(p) => ("position", position(p)),
        SceneValue::Health(h) => ("health", ScalarValue::F64(h)),
    }
}

pub struct Automerge {
    base: Vec<u8>,
    updates: Vec<Vec<u8>>,
}

/// A local editor: the document and each node's object id.
pub struct Local {
    doc: AutoCommit,
    nodes: Vec<ObjId>,
}

fn node_ids(doc: &AutoCommit, nodes: usize) -> Vec<ObjId> {
    (0..nodes)
        .map(|k| match doc.get(ROOT, format!("n{k}")) {
            Ok(Some((Value::Object(ObjType::Map), id))) => id,
            other => panic!("automerge: n{k} is {other:?}"),
        })
        .collect()
}

fn read(doc: &AutoCommit, node: usize) -> Option<NodeState> {
    let Ok(Some((Value::Object(ObjType::Map), obj))) = doc.get(ROOT, format!("n{node}")) else {
        return None;
    };
    let p = match doc.get(&obj, "position").ok()??.0 {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Bytes(b) if b.len() == 12 => {
                let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                [f(0), f(4), f(8)]
            }
            _ => return None,
        },
        Value::Object(_) => return None,
    };
    let h = match doc.get(&obj, "health").ok()??.0 {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::F64(h) => *h,
            ScalarValue::Int(h) => *h as f64,
            _ => return None,
        },
        Value::Object(_) => return None,
    };
    Some((p, h))
}

impl Scene for Automerge {
    const NAME: &'static str = "automerge";
    const MODEL: &'static str = "root map of node map objects; `position` one Bytes scalar of 3 \
        f32 LE, `health` one F64 scalar; one sender AutoCommit, `set_actor(author)` before \
        each message, one commit per message, the update is that change's raw bytes";
    type Doc = AutoCommit;
    type Local = Local;
    type Batch = Vec<u8>;
    type Snap = Vec<u8>;

    fn prepare(work: &Work, pb: &ProgressBar) -> Self {
        let mut doc = AutoCommit::new();
        doc.set_actor(actor(BASE));
        let nodes: Vec<ObjId> = (0..work.a.nodes)
            .map(|k| {
                let m = doc
                    .put_object(ROOT, format!("n{k}"), ObjType::Map)
                    .expect("automerge: node");
                doc.put(&m, "position", position([0.0; 3]))
                    .expect("automerge: position");
                doc.put(&m, "health", 100.0f64).expect("automerge: health");
                m
            })
            .collect();
        doc.commit();
        let base = doc.save();
        let mut updates = Vec::with_capacity(work.messages());
        for j in 0..work.messages() {
            doc.set_actor(actor(work.author(j) as u64 + 1));
            for w in work.message(j) {
                let (key, v) = value(w.value);
                doc.put(&nodes[w.node as usize], key, v)
                    .expect("automerge: write");
            }
            doc.commit();
            let change = doc.get_last_local_change().expect("automerge: change");
            updates.push(change.raw_bytes().to_vec());
            if j % 1024 == 0 {
                pb.set_position(j as u64);
            }
        }
        Automerge { base, updates }
    }

    fn updates(&self) -> &[Vec<u8>] {
        &self.updates
    }

    fn base_bytes(&self) -> usize {
        self.base.len()
    }

    fn receiver(&self) -> AutoCommit {
        AutoCommit::load(&self.base).expect("automerge: load base")
    }

    fn import(doc: &mut AutoCommit, update: &[u8]) {
        doc.load_incremental(update).expect("automerge: load_incremental");
    }

    fn batch(&self, range: Range<usize>) -> Vec<u8> {
        self.updates[range].concat()
    }

    /// `load_incremental` of the concatenated change chunks.
    fn import_batch(doc: &mut AutoCommit, batch: &Vec<u8>) {
        doc.load_incremental(batch).expect("automerge: load_incremental");
    }

    fn local(&self) -> Local {
        let mut doc = AutoCommit::load(&self.base).expect("automerge: load base");
        doc.set_actor(actor(LOCAL));
        let count = doc.length(ROOT);
        let nodes = node_ids(&doc, count);
        Local { doc, nodes }
    }

    fn edit(local: &mut Local, writes: &[SceneWrite]) {
        for w in writes {
            let (key, v) = value(w.value);
            local
                .doc
                .put(&local.nodes[w.node as usize], key, v)
                .expect("automerge: write");
        }
        local.doc.commit();
    }

    fn read(doc: &AutoCommit, node: usize) -> Option<NodeState> {
        read(doc, node)
    }

    fn read_local(local: &Local, node: usize) -> Option<NodeState> {
        read(&local.doc, node)
    }

    fn snapshot(doc: &mut AutoCommit) -> Vec<u8> {
        doc.save()
    }

    fn load(snap: &[u8]) -> AutoCommit {
        AutoCommit::load(snap).expect("automerge: load snapshot")
    }
}

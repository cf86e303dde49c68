//! loro on workload A: a root map `nodes` of one child `LoroMap` per node, `position`
//! one list value of 3 doubles and `health` one double (one map op per write).
//!
//! Client ids: one sender document authors every message; before message *j* it
//! `set_peer_id(j mod authors + 1)` (allowed between commits), so each message is one
//! change of its author, with the Lamport time and dependencies of everything before
//! it; the update is `export(ExportMode::updates(&vv_before))`.

use std::ops::Range;

use indicatif::ProgressBar;
use loro::{Container, ExportMode, LoroDoc, LoroMap, LoroValue, ValueOrContainer};
use vuer_rtc::workload::{SceneValue, SceneWrite};

use super::model::{NodeState, Scene, Work};

const BASE: u64 = 1 << 40;
const LOCAL: u64 = (1 << 40) + 2;

fn value(v: SceneValue) -> (&'static str, LoroValue) {
    match v {
        SceneValue::Position(p) => (
            "position",
            LoroValue::from(p.map(f64::from).to_vec()),
        ),
        SceneValue::Health(h) => ("health", LoroValue::Double(h)),
    }
}

pub struct Loro {
    base: Vec<u8>,
    updates: Vec<Vec<u8>>,
}

/// A local editor: the document and each node's map.
pub struct Local {
    doc: LoroDoc,
    nodes: Vec<LoroMap>,
}

fn node_maps(doc: &LoroDoc, nodes: usize) -> Vec<LoroMap> {
    let root = doc.get_map("nodes");
    (0..nodes)
        .map(|k| match root.get(&format!("n{k}")) {
            Some(ValueOrContainer::Container(Container::Map(m))) => m,
            other => panic!("loro: n{k} is {other:?}"),
        })
        .collect()
}

fn read(doc: &LoroDoc, node: usize) -> Option<NodeState> {
    let Some(ValueOrContainer::Container(Container::Map(m))) =
        doc.get_map("nodes").get(&format!("n{node}"))
    else {
        return None;
    };
    let num = |v: &LoroValue| match v {
        LoroValue::Double(x) => Some(*x),
        LoroValue::I64(x) => Some(*x as f64),
        _ => None,
    };
    let p = match m.get("position")? {
        ValueOrContainer::Value(LoroValue::List(l)) if l.len() == 3 => [
            num(&l[0])? as f32,
            num(&l[1])? as f32,
            num(&l[2])? as f32,
        ],
        _ => return None,
    };
    let h = match m.get("health")? {
        ValueOrContainer::Value(v) => num(&v)?,
        _ => return None,
    };
    Some((p, h))
}

impl Scene for Loro {
    const NAME: &'static str = "loro";
    const MODEL: &'static str = "root map `nodes` of child LoroMaps; `position` one list value \
        of 3 doubles, `health` one double; one sender doc, `set_peer_id(author)` before \
        each message, one commit and one `export(ExportMode::updates(vv_before))` per message";
    type Doc = LoroDoc;
    type Local = Local;
    type Batch = Vec<Vec<u8>>;
    type Snap = Vec<u8>;

    fn prepare(work: &Work, pb: &ProgressBar) -> Self {
        let doc = LoroDoc::new();
        doc.set_peer_id(BASE).expect("loro: peer id");
        let root = doc.get_map("nodes");
        let nodes: Vec<LoroMap> = (0..work.a.nodes)
            .map(|k| {
                let m = root
                    .insert_container(&format!("n{k}"), LoroMap::new())
                    .expect("loro: insert node");
                m.insert("position", LoroValue::from(vec![0.0f64; 3]))
                    .expect("loro: position");
                m.insert("health", 100.0f64).expect("loro: health");
                m
            })
            .collect();
        doc.commit();
        let base = doc.export(ExportMode::Snapshot).expect("loro: base snapshot");
        let mut updates = Vec::with_capacity(work.messages());
        for j in 0..work.messages() {
            doc.set_peer_id(work.author(j) as u64 + 1)
                .expect("loro: peer id");
            let vv = doc.oplog_vv();
            for w in work.message(j) {
                let (key, v) = value(w.value);
                nodes[w.node as usize].insert(key, v).expect("loro: write");
            }
            doc.commit();
            updates.push(doc.export(ExportMode::updates(&vv)).expect("loro: export"));
            if j % 1024 == 0 {
                pb.set_position(j as u64);
            }
        }
        Loro { base, updates }
    }

    fn updates(&self) -> &[Vec<u8>] {
        &self.updates
    }

    fn base_bytes(&self) -> usize {
        self.base.len()
    }

    fn receiver(&self) -> LoroDoc {
        LoroDoc::from_snapshot(&self.base).expect("loro: load base")
    }

    fn import(doc: &mut LoroDoc, update: &[u8]) {
        doc.import(update).expect("loro: import");
    }

    fn batch(&self, range: Range<usize>) -> Vec<Vec<u8>> {
        self.updates[range].to_vec()
    }

    /// `LoroDoc::import_batch`.
    fn import_batch(doc: &mut LoroDoc, batch: &Vec<Vec<u8>>) {
        doc.import_batch(batch).expect("loro: import_batch");
    }

    fn local(&self) -> Local {
        let doc = LoroDoc::from_snapshot(&self.base).expect("loro: load base");
        doc.set_peer_id(LOCAL).expect("loro: peer id");
        let count = doc.get_map("nodes").len();
        let nodes = node_maps(&doc, count);
        Local { doc, nodes }
    }

    fn edit(local: &mut Local, writes: &[SceneWrite]) {
        for w in writes {
            let (key, v) = value(w.value);
            local.nodes[w.node as usize]
                .insert(key, v)
                .expect("loro: write");
        }
        local.doc.commit();
    }

    fn read(doc: &LoroDoc, node: usize) -> Option<NodeState> {
        read(doc, node)
    }

    fn read_local(local: &Local, node: usize) -> Option<NodeState> {
        read(&local.doc, node)
    }

    fn snapshot(doc: &mut LoroDoc) -> Vec<u8> {
        doc.export(ExportMode::Snapshot).expect("loro: snapshot")
    }

    fn load(snap: &[u8]) -> LoroDoc {
        LoroDoc::from_snapshot(snap).expect("loro: load snapshot")
    }
}

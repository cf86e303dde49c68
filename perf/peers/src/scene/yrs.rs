//! yrs on workload A: a root map `nodes` of one nested map per node, `position` one
//! `Any` array of 3 numbers and `health` one `Any` number (the cheapest natural model:
//! one map item per write).
//!
//! yrs fixes a document's client id when the document is made (`Options::client_id`;
//! the store's field is private), so one sender document cannot author message *j* as
//! client *j* mod 1,000, and 1,000 forked sender documents would make the writes
//! concurrent (yrs would then pick map winners by client id, not by message order) unless
//! each fork first received every earlier message: 1,000 copies of a 1,000,000-item
//! history. So the harness writes each message's update itself, with yrs's own lib0 v1
//! `EncoderV1`, exactly as a yrs client `c` that has seen every earlier message would
//! send it from `transact_mut` + `encode_update_v1`: one block section for client `c`
//! (its next clock), one map item per write whose left origin is the key's current item,
//! and the delete set of the overwritten items. [`check_against_yrs`] compares these bytes
//! with yrs's own output for the first messages of a one-author run at every setup (and
//! panics on a difference), and the final state of every row is checked against the
//! expected state.

use std::ops::Range;
use std::sync::Arc;

use indicatif::ProgressBar;
use vuer_rtc::workload::{SceneA, SceneValue, SceneWrite};
use yrs::block::{ClientID, BLOCK_ITEM_ANY_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB, ID};
use yrs::encoding::write::Write;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::{Any, Doc, Number, Map, MapPrelim, MapRef, Out, ReadTxn, StateVector, Transact, Update};

use super::model::{NodeState, Scene, Work};

/// Client id of the base scene's author.
const BASE: u64 = 1 << 40;
/// Client ids of receivers and of the local editor (they author nothing else).
const RECEIVER: u64 = (1 << 40) + 1;
const LOCAL: u64 = (1 << 40) + 2;

/// Client id of author `c`.
fn author_id(c: usize) -> ClientID {
    ClientID::new(c as u64 + 1)
}

fn position(p: [f32; 3]) -> Any {
    Any::Array(Arc::from(
        p.map(|x| Any::Number(Number::Float(f64::from(x)))).to_vec(),
    ))
}

fn value(v: SceneValue) -> (&'static str, usize, Any) {
    match v {
        SceneValue::Position(p) => ("position", 0, position(p)),
        SceneValue::Health(h) => ("health", 1, Any::Number(Number::Float(h))),
    }
}

pub struct Yrs {
    base: Vec<u8>,
    updates: Vec<Vec<u8>>,
}

/// A local editor: the document and each node's map.
pub struct Local {
    doc: Doc,
    nodes: Vec<MapRef>,
}

/// The base scene, authored by client `BASE` in one transaction: node `k`'s map item
/// gets clock `3k`, its `position` `3k + 1` and its `health` `3k + 2`.
fn base_doc(nodes: usize) -> Doc {
    let doc = Doc::with_client_id(BASE);
    let root = doc.get_or_insert_map("nodes");
    let mut txn = doc.transact_mut();
    for k in 0..nodes {
        let m = root.insert(&mut txn, format!("n{k}"), MapPrelim::default());
        m.insert(&mut txn, "position", position([0.0; 3]));
        m.insert(&mut txn, "health", Any::Number(Number::Float(100.0)));
    }
    drop(txn);
    doc
}

fn load(update: &[u8], client: u64) -> Doc {
    let doc = Doc::with_client_id(client);
    let u = Update::decode_v1(update).expect("yrs: decode base");
    doc.transact_mut().apply_update(u).expect("yrs: apply base");
    doc
}

/// Writes the per-message updates of `work` (see the module doc). Also returns the
/// length of each update's block section (for [`check_against_yrs`]).
fn encode_updates(work: &Work, pb: Option<&ProgressBar>) -> (Vec<Vec<u8>>, Vec<usize>) {
    let base = ClientID::new(BASE);
    // The current item of (node, position) and (node, health).
    let mut current: Vec<[ID; 2]> = (0..work.a.nodes as u32)
        .map(|k| [ID::new(base, 3 * k + 1), ID::new(base, 3 * k + 2)])
        .collect();
    let mut clocks = vec![0u32; work.a.authors.max(1)];
    let mut updates = Vec::with_capacity(work.messages());
    let mut split = Vec::with_capacity(work.messages());
    let mut deleted: Vec<(u64, u32)> = Vec::new();
    for j in 0..work.messages() {
        let c = work.author(j);
        let client = author_id(c);
        let writes = work.message(j);
        let mut e = EncoderV1::new();
        // Blocks: one client, `writes.len()` items from its next clock.
        e.write_var(1u32);
        e.write_var(writes.len() as u32);
        e.write_client(client);
        e.write_var(clocks[c]);
        deleted.clear();
        for w in writes {
            let (_, slot, any) = value(w.value);
            let cell = &mut current[w.node as usize][slot];
            e.write_info(HAS_ORIGIN | HAS_PARENT_SUB | BLOCK_ITEM_ANY_REF_NUMBER);
            e.write_left_id(cell);
            e.write_len(1);
            e.write_any(&any);
            deleted.push((cell.client.get(), cell.clock));
            *cell = ID::new(client, clocks[c]);
            clocks[c] += 1;
        }
        let mut bytes = e.to_vec();
        split.push(bytes.len());
        // Delete set: the overwritten items, per client, adjacent clocks merged.
        deleted.sort_unstable();
        let mut ds: Vec<(u64, Vec<(u32, u32)>)> = Vec::new();
        for &(cl, ck) in &deleted {
            match ds.last_mut() {
                Some((c0, ranges)) if *c0 == cl => match ranges.last_mut() {
                    Some((s, len)) if *s + *len == ck => *len += 1,
                    _ => ranges.push((ck, 1)),
                },
                _ => ds.push((cl, vec![(ck, 1)])),
            }
        }
        let mut e = EncoderV1::new();
        e.write_var(ds.len() as u32);
        for (cl, ranges) in &ds {
            e.write_var(*cl);
            e.write_var(ranges.len() as u32);
            for &(s, len) in ranges {
                e.write_ds_clock(s);
                e.write_ds_len(len);
            }
        }
        bytes.extend_from_slice(&e.to_vec());
        updates.push(bytes);
        if let Some(pb) = pb {
            if j % 1024 == 0 {
                pb.set_position(j as u64);
            }
        }
    }
    (updates, split)
}

/// Reads a lib0 var uint.
fn var(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        shift += 7;
        if x & 0x80 == 0 {
            return v;
        }
    }
}

/// A v1 delete set as a sorted list of `(client, clock, len)`.
fn delete_set(b: &[u8]) -> Vec<(u64, u64, u64)> {
    let mut at = 0;
    let mut out = Vec::new();
    for _ in 0..var(b, &mut at) {
        let client = var(b, &mut at);
        for _ in 0..var(b, &mut at) {
            let clock = var(b, &mut at);
            out.push((client, clock, var(b, &mut at)));
        }
    }
    out.sort_unstable();
    out
}

/// Compares the hand-written updates of the first messages of a one-author run with
/// what a yrs document of that author's client id sends for the same edits: the
/// block sections byte for byte, the delete sets as sets (yrs writes their clients in
/// hash-map order).
///
/// # Panics
/// On any difference: the harness would otherwise time bytes yrs never sends.
fn check_against_yrs(a: &SceneA, base: &[u8]) {
    let work = Work::new(a.clone().with_authors(1).with_messages(a.messages.min(300)));
    let (mine, split) = encode_updates(&work, None);
    let doc = load(base, author_id(0).get());
    let root = doc.get_or_insert_map("nodes");
    let nodes: Vec<MapRef> = {
        let txn = doc.transact();
        (0..work.a.nodes)
            .map(|k| match root.get(&txn, &format!("n{k}")) {
                Some(Out::YMap(m)) => m,
                other => panic!("yrs: n{k} is {other:?}"),
            })
            .collect()
    };
    for j in 0..work.messages() {
        let mut txn = doc.transact_mut();
        for w in work.message(j) {
            let (key, _, any) = value(w.value);
            nodes[w.node as usize].insert(&mut txn, key, any);
        }
        let theirs = txn.encode_update_v1();
        drop(txn);
        let s = split[j];
        assert!(
            theirs.len() >= s && theirs[..s] == mine[j][..s],
            "yrs: hand-written update {j} differs from yrs's blocks"
        );
        assert_eq!(
            delete_set(&theirs[s..]),
            delete_set(&mine[j][s..]),
            "yrs: hand-written update {j} differs from yrs's delete set"
        );
    }
}

fn read_node<T: ReadTxn>(root: &MapRef, txn: &T, node: usize) -> Option<NodeState> {
    let Some(Out::YMap(m)) = root.get(txn, &format!("n{node}")) else {
        return None;
    };
    let num = |a: &Any| match a {
        Any::Number(x) => x.as_f64(),
        _ => None,
    };
    let p = match m.get(txn, "position")? {
        Out::Any(Any::Array(a)) if a.len() == 3 => [
            num(&a[0])? as f32,
            num(&a[1])? as f32,
            num(&a[2])? as f32,
        ],
        _ => return None,
    };
    let h = match m.get(txn, "health")? {
        Out::Any(a) => num(&a)?,
        _ => return None,
    };
    Some((p, h))
}

fn read_doc(doc: &Doc, node: usize) -> Option<NodeState> {
    let root = doc.get_or_insert_map("nodes");
    let txn = doc.transact();
    read_node(&root, &txn, node)
}

impl Scene for Yrs {
    const NAME: &'static str = "yrs";
    const MODEL: &'static str = "root map `nodes` of nested maps; `position` one Any array of \
        3 numbers, `health` one Any number; one lib0 v1 update per message, as client \
        `c` would send it (written by the harness with yrs's EncoderV1 and checked byte \
        for byte against yrs's own encode_update_v1; see yrs.rs)";
    type Doc = Doc;
    type Local = Local;
    type Batch = Vec<Vec<u8>>;
    type Snap = Vec<u8>;

    fn prepare(work: &Work, pb: &ProgressBar) -> Self {
        let doc = base_doc(work.a.nodes);
        let base = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        drop(doc);
        check_against_yrs(&work.a, &base);
        let (updates, _) = encode_updates(work, Some(pb));
        Yrs { base, updates }
    }

    fn updates(&self) -> &[Vec<u8>] {
        &self.updates
    }

    fn base_bytes(&self) -> usize {
        self.base.len()
    }

    fn receiver(&self) -> Doc {
        load(&self.base, RECEIVER)
    }

    fn import(doc: &mut Doc, update: &[u8]) {
        let u = Update::decode_v1(update).expect("yrs: decode update");
        doc.transact_mut().apply_update(u).expect("yrs: apply update");
    }

    fn batch(&self, range: Range<usize>) -> Vec<Vec<u8>> {
        self.updates[range].to_vec()
    }

    /// Decodes and applies the updates one after another inside one transaction.
    fn import_batch(doc: &mut Doc, batch: &Vec<Vec<u8>>) {
        let mut txn = doc.transact_mut();
        for update in batch {
            let u = Update::decode_v1(update).expect("yrs: decode update");
            txn.apply_update(u).expect("yrs: apply update");
        }
    }

    fn local(&self) -> Local {
        let doc = load(&self.base, LOCAL);
        let root = doc.get_or_insert_map("nodes");
        let nodes = {
            let txn = doc.transact();
            let count = root.len(&txn) as usize;
            (0..count)
                .map(|k| match root.get(&txn, &format!("n{k}")) {
                    Some(Out::YMap(m)) => m,
                    other => panic!("yrs: n{k} is {other:?}"),
                })
                .collect()
        };
        Local { doc, nodes }
    }

    fn edit(local: &mut Local, writes: &[SceneWrite]) {
        let mut txn = local.doc.transact_mut();
        for w in writes {
            let (key, _, any) = value(w.value);
            local.nodes[w.node as usize].insert(&mut txn, key, any);
        }
    }

    fn read(doc: &Doc, node: usize) -> Option<NodeState> {
        read_doc(doc, node)
    }

    fn read_local(local: &Local, node: usize) -> Option<NodeState> {
        read_doc(&local.doc, node)
    }

    fn snapshot(doc: &mut Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn load(snap: &[u8]) -> Doc {
        load(snap, RECEIVER)
    }
}

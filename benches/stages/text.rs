//! `text/{local,remote}/{automerge-paper,seph-blog1}` and `text/concurrent/friendsforever`:
//! the text CRDT ([`TextDoc`]) on the public editing traces in `benches/data/` (CC BY
//! 4.0, see `benches/data/README.md`).
//!
//! - `local`: every patch `[pos, del, ins]` of the trace applied as one agent's local
//!   edits (`TextDoc::replace`, as a replica replays position-form ops: no wire form).
//! - `local_ops`: the same, as a client makes them: `delete` then `insert`, each
//!   returning its CRDT op in wire form (kept: they are the history).
//! - `remote`: the CRDT ops the local replay produced (decoded, in order) integrated
//!   into an empty document: the merge of the full history.
//! - `remote_encoded`: the same history as the wire carries it — one MessagePack
//!   message per op (`text.insert` / `text.delete` in CRDT form on node `doc`, path
//!   `body`), all in one buffer — decoded (`wire::decode_messages`, validation
//!   included) and integrated into an empty document.
//! - `replica`: that buffer applied to an empty [`Replica`] (`apply_bytes`): the whole
//!   engine, journal and graph included.
//! - `concurrent`: friendsforever, two agents typing at once. Each transaction is
//!   applied on its agent's copy after merging exactly the transactions it descends
//!   from (its `parents`, transitively); the timed part is the whole replay with the
//!   merges. Setup checks that the merged text equals the trace's `endContent`.
//!
//! Setup checks every local and remote replay against `endContent` and prints the
//! memory after the local replay (heap bytes per inserted character).
//!
//! Reproduce: `cargo bench --bench main -- text/`

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::{Limits, Message, Op, OpKind, TextEdit};
use vuer_rtc::replica::Replica;
use vuer_rtc::text::{DeleteRange, InsertOp, TextDoc};
use vuer_rtc::wire::{Format, decode_messages, encode_messages};

pub use super::traces::{Trace, Txn, load};

/// A CRDT op a replay produced.
#[derive(Clone)]
pub enum Sent {
    /// An insert.
    Ins(InsertOp),
    /// Deletes.
    Del(Vec<DeleteRange>),
}

fn apply(d: &mut TextDoc, op: &Sent) {
    match op {
        Sent::Ins(i) => {
            d.apply_insert(i);
        }
        Sent::Del(rm) => {
            d.apply_delete(rm);
        }
    }
}

/// Applies one transaction's patches as `agent`'s local edits; pushes the ops to `out`.
fn local(d: &mut TextDoc, agent: &str, txn: &Txn, out: &mut Vec<Sent>) {
    for (pos, del, ins) in &txn.patches {
        if *del > 0 {
            out.push(Sent::Del(d.delete(*pos, *del)));
        }
        if let Some(op) = d.insert(agent, *pos, ins, 0.0) {
            out.push(Sent::Ins(op));
        }
    }
}

/// The sequential trace as one agent's local edits.
#[inline(never)]
pub fn local_replay(t: &Trace) -> (TextDoc, Vec<Sent>) {
    let mut d = TextDoc::new();
    let mut ops = Vec::with_capacity(t.txns.len());
    if let Some(op) = d.insert("start", 0, &t.start, 0.0) {
        ops.push(Sent::Ins(op));
    }
    for txn in &t.txns {
        local(&mut d, "seph", txn, &mut ops);
    }
    (d, ops)
}

/// The sequential trace as a replica replays it: local edits, no wire form.
#[inline(never)]
pub fn replace_replay(t: &Trace) -> TextDoc {
    let mut d = TextDoc::new();
    d.replace("start", 0, 0, &t.start, 0.0);
    for txn in &t.txns {
        for (pos, del, ins) in &txn.patches {
            d.replace("seph", *pos, *del, ins, 0.0);
        }
    }
    d
}

/// `ops` as the wire carries them: one MessagePack message per op, the node `doc`
/// created by the first.
pub fn encode(ops: &[Sent]) -> Vec<u8> {
    let mut msgs = Vec::with_capacity(ops.len() + 1);
    let create = serde_json::json!({
        "id": "seph:0", "client": "seph", "lt": 0, "ts": 0.0,
        "ops": [{"otype": "node.insert", "key": "", "path": "children",
                 "value": {"key": "doc", "tag": "Text"}}],
    });
    msgs.push(vuer_rtc::wire::message_from_json(&create, &Limits::default()).expect("a node"));
    for (i, op) in ops.iter().enumerate() {
        let kind = match op {
            Sent::Ins(x) => OpKind::TextInsert(TextEdit::Crdt {
                rm: Vec::new(),
                insert: Some(x.clone()),
            }),
            Sent::Del(rm) => OpKind::TextDelete(TextEdit::Crdt {
                rm: rm.clone(),
                insert: None,
            }),
        };
        let lt = i as u64 + 1;
        msgs.push(Message {
            id: format!("seph:{lt}"),
            client: "seph".into(),
            clock: [("seph".to_owned(), lt)].into(),
            lt,
            ts: 0.0,
            ops: vec![Op {
                key: "doc".into(),
                path: "body".into(),
                kind,
            }],
        });
    }
    encode_messages(&msgs, Format::MessagePack)
}

/// Decodes `bytes` and integrates every text op into an empty document.
#[inline(never)]
pub fn encoded_replay(bytes: &[u8]) -> TextDoc {
    let msgs = decode_messages(bytes, Format::MessagePack, &Limits::default()).expect("valid");
    let mut d = TextDoc::new();
    for op in msgs.iter().flat_map(|m| &m.ops) {
        match &op.kind {
            OpKind::TextInsert(TextEdit::Crdt { rm, insert })
            | OpKind::TextDelete(TextEdit::Crdt { rm, insert }) => {
                if !rm.is_empty() {
                    d.apply_delete(rm);
                }
                if let Some(i) = insert {
                    d.apply_insert(i);
                }
            }
            _ => {}
        }
    }
    d
}

/// Integrates `ops` into an empty document.
#[inline(never)]
pub fn remote_replay(ops: &[Sent]) -> TextDoc {
    let mut d = TextDoc::new();
    for op in ops {
        apply(&mut d, op);
    }
    d
}

/// The concurrent trace: each agent edits its copy, merging what each transaction
/// descends from first. Returns the fully merged document.
#[inline(never)]
pub fn concurrent_replay(t: &Trace) -> TextDoc {
    let agents = t.txns.iter().map(|x| x.agent).max().map_or(1, |a| a + 1);
    let names: Vec<String> = (0..agents).map(|a| format!("agent{a}")).collect();
    let mut docs: Vec<TextDoc> = (0..agents).map(|_| TextDoc::new()).collect();
    let mut has: Vec<Vec<bool>> = vec![vec![false; t.txns.len()]; agents];
    let mut ops: Vec<Vec<Sent>> = Vec::with_capacity(t.txns.len());
    let mut stack = Vec::new();
    let mut todo = Vec::new();
    for (i, txn) in t.txns.iter().enumerate() {
        let a = txn.agent;
        // Everything this transaction descends from that agent `a` lacks.
        stack.extend(txn.parents.iter().copied());
        while let Some(p) = stack.pop() {
            if has[a][p] {
                continue;
            }
            has[a][p] = true;
            todo.push(p);
            stack.extend(t.txns[p].parents.iter().copied());
        }
        todo.sort_unstable();
        for &p in &todo {
            for op in &ops[p] {
                apply(&mut docs[a], op);
            }
        }
        todo.clear();
        let mut mine = Vec::new();
        local(&mut docs[a], &names[a], txn, &mut mine);
        has[a][i] = true;
        ops.push(mine);
    }
    remote_replay(&ops.into_iter().flatten().collect::<Vec<_>>())
}

fn text_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("text");
    group.sample_size(10);
    for name in ["automerge-paper", "seph-blog1"] {
        let t = load(name);
        let (doc, ops) = local_replay(&t);
        assert_eq!(doc.text(), t.end, "{name}: local replay");
        let doc = replace_replay(&t);
        assert_eq!(doc.text(), t.end, "{name}: local replay (replace)");
        assert_eq!(remote_replay(&ops).text(), t.end, "{name}: remote replay");
        let bytes = encode(&ops);
        assert_eq!(
            encoded_replay(&bytes).text(),
            t.end,
            "{name}: encoded replay"
        );
        let mut r = Replica::new();
        let report = r.apply_bytes(&bytes, Format::MessagePack);
        assert!(
            report.rejected.is_empty(),
            "{name}: replica rejected {:?}",
            report.rejected.first()
        );
        let shown = r.graph().to_json_value();
        assert_eq!(
            shown["nodes"]["doc"]["properties"]["body"],
            t.end.as_str(),
            "{name}: replica"
        );
        let inserted: usize = t
            .txns
            .iter()
            .flat_map(|x| &x.patches)
            .map(|p| p.2.chars().count())
            .sum::<usize>()
            + t.start.chars().count();
        eprintln!(
            "text/{name}: {} edits, {inserted} inserted chars, {} spans, {} heap bytes after the local replay ({:.1} bytes per inserted char)",
            t.txns.len(),
            doc.span_count(),
            doc.heap_bytes(),
            doc.heap_bytes() as f64 / inserted as f64
        );
        group.throughput(Throughput::Elements(t.txns.len() as u64));
        group.bench_function(BenchmarkId::new("local", name), |b| {
            b.iter_with_large_drop(|| replace_replay(black_box(&t)));
        });
        group.bench_function(BenchmarkId::new("local_ops", name), |b| {
            b.iter_with_large_drop(|| local_replay(black_box(&t)));
        });
        group.bench_function(BenchmarkId::new("remote", name), |b| {
            b.iter_batched(
                || (),
                |()| remote_replay(black_box(&ops)),
                BatchSize::LargeInput,
            );
        });
        eprintln!(
            "text/{name}: {} encoded bytes ({} messages)",
            bytes.len(),
            ops.len() + 1
        );
        group.bench_function(BenchmarkId::new("remote_encoded", name), |b| {
            b.iter_with_large_drop(|| encoded_replay(black_box(&bytes)));
        });
        group.bench_function(BenchmarkId::new("replica", name), |b| {
            b.iter_with_large_drop(|| {
                let mut r = Replica::new();
                r.apply_bytes(black_box(&bytes), Format::MessagePack);
                r
            });
        });
    }
    let t = load("friendsforever");
    let merged = concurrent_replay(&t);
    assert_eq!(merged.text(), t.end, "friendsforever: merged text");
    eprintln!(
        "text/friendsforever: {} transactions; the merged text equals endContent",
        t.txns.len()
    );
    group.throughput(Throughput::Elements(t.txns.len() as u64));
    group.bench_function(BenchmarkId::new("concurrent", "friendsforever"), |b| {
        b.iter_with_large_drop(|| concurrent_replay(black_box(&t)));
    });
    group.finish();
}

criterion_group!(benches, text_benches);

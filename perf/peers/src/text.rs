//! The text traces: public editing traces (`benches/data/*.json.gz`, CC BY 4.0, from
//! the editing-traces collection) replayed through `vuer_rtc::text::TextDoc` and other
//! text CRDT crates in one run. Prints the best time of N replays per engine plus the
//! live heap the finished document holds.
//!
//! Command line: `[text] [--runs N] [--engine NAME ...] [trace-name ...]` (default
//! traces: automerge-paper seph-blog1; default runs: 5). Nothing here knows about the
//! scene workload (`scene/`).

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::ReadDoc;
use serde::Deserialize;
use vuer_rtc::op::{Limits, Message, Op as WireOp, OpKind, TextEdit};
use vuer_rtc::text::{DeleteRange, InsertOp, TextDoc};
use vuer_rtc::wire::{decode_messages, encode_messages, Format};
use yrs::{GetString, Text, Transact};

use crate::alloc::live_bytes;

// ---------------------------------------------------------------------------------
// Traces.

#[derive(Deserialize)]
struct RawTrace {
    #[serde(rename = "startContent")]
    start: String,
    #[serde(rename = "endContent")]
    end: String,
    txns: Vec<RawTxn>,
}

#[derive(Deserialize)]
struct RawTxn {
    patches: Vec<(usize, usize, String)>,
}

/// One edit: delete `del` code points at `pos`, then insert `ins` at `pos`.
struct Patch {
    pos: usize,
    del: usize,
    ins: String,
}

struct Trace {
    name: String,
    /// Every patch in order; a non-empty start text becomes a first insert at 0.
    patches: Vec<Patch>,
    end: String,
    inserted: usize,
    deleted: usize,
    /// Every character is in the Basic Multilingual Plane (UTF-16 offsets equal
    /// code-point offsets).
    bmp_only: bool,
}

/// Loads `benches/data/{name}.json.gz` of the main crate. Panics on a missing or
/// malformed trace: they are bundled files.
fn load(name: &str) -> Trace {
    let path = format!(
        "{}/../../benches/data/{name}.json.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .unwrap_or_else(|e| panic!("gunzip {path}: {e}"));
    let raw: RawTrace = serde_json::from_str(&json).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    let mut patches = Vec::new();
    if !raw.start.is_empty() {
        patches.push(Patch {
            pos: 0,
            del: 0,
            ins: raw.start,
        });
    }
    for txn in raw.txns {
        for (pos, del, ins) in txn.patches {
            patches.push(Patch { pos, del, ins });
        }
    }
    let inserted = patches.iter().map(|p| p.ins.chars().count()).sum();
    let deleted = patches.iter().map(|p| p.del).sum();
    let bmp_only = patches
        .iter()
        .flat_map(|p| p.ins.chars())
        .all(|c| (c as u32) < 0x1_0000);
    Trace {
        name: name.to_owned(),
        patches,
        end: raw.end,
        inserted,
        deleted,
        bmp_only,
    }
}

// ---------------------------------------------------------------------------------
// Measuring.

/// The result of one engine on one trace.
struct Outcome {
    best: Duration,
    /// Live heap bytes held by the finished document (this thread's allocations).
    live: isize,
    /// The final text of the last run.
    text: String,
}

/// Runs `replay` `runs` times (dropping each document outside the timed part) and
/// keeps the best time. `text` reads the final text of the last run.
fn measure<D>(
    runs: usize,
    mut replay: impl FnMut() -> Result<D, String>,
    text: impl Fn(&D) -> Result<String, String>,
) -> Result<Outcome, String> {
    let mut best = Duration::MAX;
    let mut live = 0;
    let mut last = None;
    for _ in 0..runs.max(1) {
        drop(last.take());
        let before = live_bytes();
        let t0 = Instant::now();
        let doc = black_box(replay()?);
        best = best.min(t0.elapsed());
        live = live_bytes() - before;
        last = Some(doc);
    }
    let doc = last.ok_or("no run")?;
    Ok(Outcome {
        best,
        live,
        text: text(&doc)?,
    })
}

fn report(trace: &Trace, engine: &str, outcome: Result<Outcome, String>, note: &str) {
    match outcome {
        Err(e) => println!("  {engine:<22} FAILED: {e}"),
        Ok(o) => {
            let check = if o.text == trace.end {
                "ok".to_owned()
            } else {
                mismatch(&o.text, &trace.end)
            };
            let ms = o.best.as_secs_f64() * 1e3;
            let per_char = o.live as f64 / trace.inserted.max(1) as f64;
            println!(
                "  {engine:<22} {ms:>10.2} ms  {:>10.2} MiB live  {per_char:>7.1} B/ins  {check}{note}",
                o.live as f64 / (1024.0 * 1024.0),
            );
        }
    }
}

/// A short description of where `got` first differs from `want`.
fn mismatch(got: &str, want: &str) -> String {
    let at = got
        .chars()
        .zip(want.chars())
        .take_while(|(a, b)| a == b)
        .count();
    format!(
        "MISMATCH: final text differs at char {at} (got {} chars, want {})",
        got.chars().count(),
        want.chars().count()
    )
}

// ---------------------------------------------------------------------------------
// Engines.

/// A CRDT op of ours, in the order the local replay produced it.
enum Op {
    Insert(InsertOp),
    Delete(Vec<DeleteRange>),
}

/// Local edits as a replica replays them: no wire form built.
fn ours_local(trace: &Trace) -> TextDoc {
    let mut d = TextDoc::new();
    for p in &trace.patches {
        d.replace("seph", p.pos, p.del, &p.ins, 0.0);
    }
    d
}

/// Local edits as a client makes them: each one's CRDT form built (and kept).
fn ours_ops(trace: &Trace) -> Vec<Op> {
    let mut d = TextDoc::new();
    let mut ops = Vec::new();
    for p in &trace.patches {
        if p.del > 0 {
            let rm = d.delete(p.pos, p.del);
            if !rm.is_empty() {
                ops.push(Op::Delete(rm));
            }
        }
        if let Some(op) = d.insert("seph", p.pos, &p.ins, 0.0) {
            ops.push(Op::Insert(op));
        }
    }
    ops
}

fn ours_remote(ops: &[Op]) -> TextDoc {
    let mut d = TextDoc::new();
    for op in ops {
        match op {
            Op::Insert(op) => {
                d.apply_insert(op);
            }
            Op::Delete(rm) => {
                d.apply_delete(rm);
            }
        }
    }
    d
}

/// `ops` as the wire carries them: one MessagePack message per op (CRDT form, node
/// `doc`, path `body`), all in one buffer.
fn encode(ops: &[Op]) -> Vec<u8> {
    let msgs: Vec<Message> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let edit = match op {
                Op::Insert(x) => OpKind::TextInsert(TextEdit::Crdt {
                    rm: Vec::new(),
                    insert: Some(x.clone()),
                }),
                Op::Delete(rm) => OpKind::TextDelete(TextEdit::Crdt {
                    rm: rm.clone(),
                    insert: None,
                }),
            };
            let lt = i as u64 + 1;
            Message {
                id: format!("seph:{lt}"),
                client: "seph".into(),
                clock: [("seph".to_owned(), lt)].into(),
                lt,
                ts: 0.0,
                ops: vec![WireOp {
                    key: "doc".into(),
                    path: "body".into(),
                    kind: edit,
                }],
            }
        })
        .collect();
    encode_messages(&msgs, Format::MessagePack)
}

/// Decodes (and validates) the messages, then integrates their text ops.
fn ours_encoded(bytes: &[u8]) -> Result<TextDoc, String> {
    let msgs = decode_messages(bytes, Format::MessagePack, &Limits::default())
        .map_err(|e| e.to_string())?;
    let mut d = TextDoc::new();
    for op in msgs.iter().flat_map(|m| &m.ops) {
        if let OpKind::TextInsert(TextEdit::Crdt { rm, insert })
        | OpKind::TextDelete(TextEdit::Crdt { rm, insert }) = &op.kind
        {
            if !rm.is_empty() {
                d.apply_delete(rm);
            }
            if let Some(i) = insert {
                d.apply_insert(i);
            }
        }
    }
    Ok(d)
}

fn diamond(trace: &Trace) -> diamond_types::list::ListCRDT {
    let mut d = diamond_types::list::ListCRDT::new();
    let agent = d.get_or_create_agent_id("seph");
    for p in &trace.patches {
        if p.del > 0 {
            d.delete_without_content(agent, p.pos..p.pos + p.del);
        }
        if !p.ins.is_empty() {
            d.insert(agent, p.pos, &p.ins);
        }
    }
    d
}

/// One yrs transaction per patch, UTF-16 offsets (equal to code points for BMP-only
/// traces).
fn yrs_replay(trace: &Trace) -> (yrs::Doc, yrs::TextRef) {
    let doc = yrs::Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::default()
    });
    let text = doc.get_or_insert_text("text");
    for p in &trace.patches {
        let mut txn = doc.transact_mut();
        if p.del > 0 {
            text.remove_range(&mut txn, p.pos as u32, p.del as u32);
        }
        if !p.ins.is_empty() {
            text.insert(&mut txn, p.pos as u32, &p.ins);
        }
    }
    (doc, text)
}

fn loro_replay(trace: &Trace) -> Result<(loro::LoroDoc, loro::LoroText), String> {
    let doc = loro::LoroDoc::new();
    let text = doc.get_text("text");
    for p in &trace.patches {
        if p.del > 0 {
            text.delete(p.pos, p.del).map_err(|e| e.to_string())?;
        }
        if !p.ins.is_empty() {
            text.insert(p.pos, &p.ins).map_err(|e| e.to_string())?;
        }
    }
    Ok((doc, text))
}

fn automerge_replay(trace: &Trace) -> Result<(automerge::AutoCommit, automerge::ObjId), String> {
    let mut doc =
        automerge::AutoCommit::new_with_encoding(automerge::TextEncoding::UnicodeCodePoint);
    let text = doc
        .put_object(automerge::ROOT, "text", automerge::ObjType::Text)
        .map_err(|e| e.to_string())?;
    for p in &trace.patches {
        doc.splice_text(&text, p.pos, p.del as isize, &p.ins)
            .map_err(|e| e.to_string())?;
    }
    Ok((doc, text))
}

/// Whether `engine` was asked for (`--engine` filters; none given: every engine).
fn wanted(only: &[String], engine: &str) -> bool {
    only.is_empty() || only.iter().any(|o| engine.starts_with(o.as_str()))
}

fn run_trace(trace: &Trace, runs: usize, only: &[String]) {
    println!(
        "{}: {} patches, {} chars inserted, {} deleted, final {} chars; best of {runs}",
        trace.name,
        trace.patches.len(),
        trace.inserted,
        trace.deleted,
        trace.end.chars().count(),
    );

    // Ours, local edits.
    if wanted(only, "vuer-rtc") {
        let outcome = measure(runs, || Ok(ours_local(trace)), |d| Ok(d.text()));
        let own = ours_local(trace).heap_bytes();
        let note = format!(
            "  (heap_bytes(): {own} B, {:.1} B/ins)",
            own as f64 / trace.inserted.max(1) as f64
        );
        report(trace, "vuer-rtc local", outcome, &note);

        // Ours, local edits building their CRDT ops (the ops are kept: live bytes
        // include them).
        let outcome = measure(
            runs,
            || Ok(ours_ops(trace)),
            |ops| Ok(ours_remote(ops).text()),
        );
        report(
            trace,
            "vuer-rtc local + ops",
            outcome,
            "  (live includes the ops)",
        );

        // Ours, remote: the ops of one local replay applied to a fresh document.
        let ops = ours_ops(trace);
        let outcome = measure(runs, || Ok(ours_remote(&ops)), |d| Ok(d.text()));
        report(
            trace,
            "vuer-rtc remote merge",
            outcome,
            &format!("  ({} ops)", ops.len()),
        );
        let bytes = encode(&ops);
        drop(ops);
        let outcome = measure(runs, || ours_encoded(&bytes), |d| Ok(d.text()));
        report(
            trace,
            "vuer-rtc remote encoded",
            outcome,
            &format!("  ({} MessagePack bytes)", bytes.len()),
        );
    }

    if wanted(only, "diamond-types") {
        let outcome = measure(
            runs,
            || Ok(diamond(trace)),
            |d| Ok(d.branch.content().to_string()),
        );
        report(trace, "diamond-types", outcome, "");
    }

    if !wanted(only, "yrs") {
    } else if trace.bmp_only {
        let outcome = measure(
            runs,
            || Ok(yrs_replay(trace)),
            |(doc, text)| Ok(text.get_string(&doc.transact())),
        );
        report(trace, "yrs", outcome, "");
    } else {
        println!("  yrs                    skipped: trace has non-BMP characters (UTF-16 offsets)");
    }

    if wanted(only, "loro") {
        let outcome = measure(
            runs,
            || loro_replay(trace),
            |(_, text)| Ok(text.to_string()),
        );
        report(trace, "loro", outcome, "");
    }

    if wanted(only, "automerge") {
        let outcome = measure(
            runs,
            || automerge_replay(trace),
            |(doc, text)| doc.text(text).map_err(|e| e.to_string()),
        );
        report(trace, "automerge", outcome, "");
    }
    println!();
}

/// The text command line: `[--runs N] [--engine NAME ...] [trace-name ...]`.
pub fn main(mut args: impl Iterator<Item = String>) {
    let mut runs = 5;
    let mut names = Vec::new();
    let mut only = Vec::new();
    while let Some(a) = args.next() {
        if a == "--runs" {
            match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => runs = n,
                None => {
                    eprintln!("--runs needs a number");
                    std::process::exit(2);
                }
            }
        } else if a == "--engine" {
            match args.next() {
                Some(e) => only.push(e),
                None => {
                    eprintln!(
                        "--engine needs a name (vuer-rtc, diamond-types, yrs, loro, automerge)"
                    );
                    std::process::exit(2);
                }
            }
        } else {
            names.push(a);
        }
    }
    if names.is_empty() {
        names = vec!["automerge-paper".to_owned(), "seph-blog1".to_owned()];
    }
    for name in &names {
        run_trace(&load(name), runs, &only);
    }
}

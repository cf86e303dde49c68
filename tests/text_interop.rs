//! Interop of the text CRDT with the Python reference (vuer-rtc 0.0.2 `TextRope`):
//! the reference's agents edit concurrently and this crate integrates their CRDT-form
//! ops to the same text (in their order, and shuffled, since ops wait for their
//! anchors here); and the reverse: ops made here, integrated by the reference.
//!
//! Needs the reference: set `VUER_RTC_REFERENCE_PYTHON` to a Python with
//! `vuer-rtc==0.0.2` installed (`.ci/run` does). The build script turns that variable
//! into `cfg(reference_python)`: without it these tests are ignored, and `cargo test`
//! shows the reason; with it they run, and an interpreter that does not start or lacks
//! the package fails them.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use vuer_rtc::text::{Applied, DeleteRange, InsertOp, ItemId, TextDoc};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/text_reference.py"
);

/// The reference interpreter: `VUER_RTC_REFERENCE_PYTHON` as it is now, or as it was
/// at build time (a test that runs was built with it set).
fn python() -> String {
    std::env::var("VUER_RTC_REFERENCE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| option_env!("VUER_RTC_REFERENCE_PYTHON").map(str::to_owned))
        .expect("VUER_RTC_REFERENCE_PYTHON names the reference Python")
}

fn run(py: &str, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = Command::new(py)
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("the reference Python {py:?} does not start: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    } else {
        drop(child.stdin.take());
    }
    // The reference loops forever on some inputs (a delete past the end): give up.
    let start = std::time::Instant::now();
    while child.try_wait().expect("poll").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the reference did not finish in 60 s: {args:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("reference output");
    assert!(
        out.status.success(),
        "the reference Python {py:?} failed ({args:?}): is vuer-rtc 0.0.2 installed there?"
    );
    serde_json::from_slice(&out.stdout).expect("reference prints JSON")
}

enum Wire {
    Ins(InsertOp),
    Del(Vec<DeleteRange>),
}

fn id(v: &Value) -> ItemId {
    ItemId::parse(v.as_str().expect("id string")).expect("agent:seq")
}

fn from_wire(op: &Value) -> Wire {
    if op["ot"] == "text.insert" {
        Wire::Ins(InsertOp {
            id: id(&op["id"]),
            anchor: (!op["value"][0].is_null()).then(|| id(&op["value"][0])),
            content: op["value"][1].as_str().expect("content").to_owned(),
            lamport: op["seq"].as_u64().expect("seq"),
            ts: op["ts"].as_f64().expect("ts"),
        })
    } else {
        Wire::Del(
            op["rm"]
                .as_array()
                .expect("rm")
                .iter()
                .map(|r| DeleteRange {
                    id: id(&r[0]),
                    len: u32::try_from(r[1].as_u64().expect("len")).expect("len"),
                })
                .collect(),
        )
    }
}

fn to_wire(op: &Wire) -> Value {
    match op {
        Wire::Ins(i) => json!({
            "ot": "text.insert", "id": i.id.to_string(),
            "value": [i.anchor.as_ref().map(ToString::to_string), i.content],
            "seq": i.lamport, "ts": i.ts,
        }),
        Wire::Del(rm) => json!({
            "ot": "text.delete",
            "rm": rm.iter().map(|r| json!([r.id.to_string(), r.len])).collect::<Vec<_>>(),
        }),
    }
}

fn apply(d: &mut TextDoc, op: &Wire) -> Applied {
    match op {
        Wire::Ins(i) => d.apply_insert(i),
        Wire::Del(rm) => d.apply_delete(rm),
    }
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
#[cfg_attr(
    not(reference_python),
    ignore = "needs the Python reference: set VUER_RTC_REFERENCE_PYTHON=/path/to/python with vuer-rtc 0.0.2 installed"
)]
fn reference_ops_integrate_to_the_reference_text() {
    let py = python();
    for seed in 1..=40u64 {
        let out = run(&py, &["generate", &seed.to_string(), "80"], None);
        let ops: Vec<Wire> = out["ops"]
            .as_array()
            .expect("ops")
            .iter()
            .map(from_wire)
            .collect();
        let expected = out["text"].as_str().expect("text");
        let mut d = TextDoc::new();
        for op in &ops {
            assert_eq!(apply(&mut d, op), Applied::Done, "seed {seed}: in order");
        }
        assert_eq!(d.text(), expected, "seed {seed}: in the reference's order");
        let mut d = TextDoc::new();
        for k in shuffled(ops.len(), seed) {
            apply(&mut d, &ops[k]);
        }
        assert_eq!(d.pending(), 0, "seed {seed}");
        assert_eq!(d.text(), expected, "seed {seed}: shuffled");
    }
}

#[test]
#[cfg_attr(
    not(reference_python),
    ignore = "needs the Python reference: set VUER_RTC_REFERENCE_PYTHON=/path/to/python with vuer-rtc 0.0.2 installed"
)]
fn our_ops_integrate_to_our_text_in_the_reference() {
    let py = python();
    let words = ["a", "bc", "héllo", "中文", "x", "Ωmega!"];
    for seed in 1..=40u64 {
        let agents = ["alice", "bob", "Carol"];
        let mut docs = [TextDoc::new(), TextDoc::new(), TextDoc::new()];
        let mut seen = [0usize; 3];
        let mut log: Vec<Wire> = Vec::new();
        let mut x = seed;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for step in 0..80u32 {
            let i = next(3) as usize;
            if next(10) < 4 {
                for op in &log[seen[i]..] {
                    apply(&mut docs[i], op);
                }
                seen[i] = log.len();
            }
            let len = docs[i].len() as u64;
            let op = if next(10) < 7 || len == 0 {
                let w = words[next(words.len() as u64) as usize];
                docs[i]
                    .insert(agents[i], next(len + 1) as usize, w, f64::from(step) * 0.25)
                    .map(Wire::Ins)
            } else {
                let rm = docs[i].delete(next(len) as usize, 1 + next(3) as usize);
                (!rm.is_empty()).then_some(Wire::Del(rm))
            };
            if let Some(op) = op {
                if seen[i] == log.len() {
                    seen[i] += 1;
                }
                log.push(op);
            }
        }
        let mut d = TextDoc::new();
        for op in &log {
            apply(&mut d, op);
        }
        let wire = Value::Array(log.iter().map(to_wire).collect()).to_string();
        let out = run(&py, &["apply"], Some(&wire));
        assert_eq!(out["text"].as_str(), Some(d.text().as_str()), "seed {seed}");
    }
}

#[test]
#[cfg_attr(
    not(reference_python),
    ignore = "needs the Python reference: set VUER_RTC_REFERENCE_PYTHON=/path/to/python with vuer-rtc 0.0.2 installed"
)]
fn store_commits_integrate_in_the_reference() {
    use vuer_rtc::op::{Message, Op, OpKind, TextEdit};
    use vuer_rtc::store::GraphStore;
    let py = python();
    let words = ["a", "bc", "héllo", "中文", "x"];
    for seed in 1..=20u64 {
        let names = ["alice", "bob", "Carol"];
        let mut stores: Vec<GraphStore> = names.iter().map(|n| GraphStore::new(*n)).collect();
        stores[0]
            .edit(Op::node_insert("", "doc", "Doc"))
            .expect("edit");
        // `text.init` with text is sent in CRDT form too.
        stores[0]
            .edit(Op::new("doc", "body", OpKind::TextInit("Hi ".into())))
            .expect("edit");
        let mut log: Vec<Message> = vec![stores[0].commit("").expect("commit")];
        // Everyone has the node before editing its text (an edit stamped before the
        // node's creation does nothing in the scene, unlike in a bare text CRDT).
        for s in &mut stores[1..] {
            s.receive(log[0].clone()).expect("receive");
        }
        let mut seen = [1usize, 1, 1];
        let mut x = seed;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for _ in 0..60 {
            let i = next(3) as usize;
            if next(10) < 4 {
                for m in &log[seen[i]..] {
                    stores[i].receive(m.clone()).expect("receive");
                }
                seen[i] = log.len();
            }
            let len = stores[i]
                .graph()
                .node("doc")
                .and_then(|n| n.get("body"))
                .and_then(|v| v.as_str().map(|s| s.chars().count()))
                .unwrap_or(0) as u64;
            let edit = if next(10) < 7 || len == 0 {
                let w = words[next(words.len() as u64) as usize];
                OpKind::TextInsert(TextEdit::At {
                    position: next(len + 1),
                    length: 0,
                    value: w.into(),
                })
            } else {
                OpKind::TextDelete(TextEdit::At {
                    position: next(len),
                    length: 1 + next(3),
                    value: String::new(),
                })
            };
            if stores[i].edit(Op::new("doc", "body", edit)).is_err() {
                continue;
            }
            if let Some(m) = stores[i].commit("") {
                if seen[i] == log.len() {
                    seen[i] += 1;
                }
                log.push(m);
            }
        }
        for (i, s) in stores.iter_mut().enumerate() {
            for m in &log[seen[i]..] {
                s.receive(m.clone()).expect("receive");
            }
        }
        let ours = stores[0]
            .graph()
            .node("doc")
            .and_then(|n| n.get("body"))
            .and_then(|v| v.as_str().map(|s| s.into_owned()))
            .unwrap_or_default();
        let wire: Vec<Value> = log
            .iter()
            .flat_map(|m| m.ops.iter())
            .filter(|op| op.kind.is_text())
            .map(|op| {
                let mut v = op.to_json();
                assert!(v.get("position").is_none(), "sent in CRDT form: {v}");
                if v["ot"] == "text.replace" {
                    v["ot"] = json!("text.insert");
                }
                v
            })
            .collect();
        let out = run(&py, &["apply"], Some(&Value::Array(wire).to_string()));
        assert_eq!(out["text"].as_str(), Some(ours.as_str()), "seed {seed}");
    }
}

//! What one system's child process measures, in this order: untimed setup; row A1
//! (whose first run also gives the live heap of the receiver before and after the
//! writes); rows A1b, A2 and the system's extra rows; the snapshot of A1's final
//! document; compaction of that document (vuer-rtc); row A1 by number of authors.
//! Each row is the best of up to `runs` runs, and stops repeating once it has spent
//! [`BUDGET`]. Every timed part is checked against the expected final state outside
//! the timer.
//!
//! Invariant: the timer covers only [`Scene::import`], [`Scene::import_batch`],
//! [`Scene::edit`], [`Scene::snapshot`] and [`Scene::load`] calls (plus a progress-bar
//! increment every 1,024 messages); documents are built and dropped outside it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vuer_rtc::workload::SceneA;

use super::model::{verify, Memory, NodeState, Report, Row, Scale, Scene, Snapshot, Work};
use crate::alloc::live_bytes;

/// What the driver asked a child for.
pub struct Config {
    pub messages: usize,
    pub runs: usize,
    pub scaling: bool,
}

/// The authors of the scaling rows.
pub const AUTHORS: [usize; 4] = [1, 100, 1_000, 10_000];

/// Messages between two progress-bar updates.
const TICK: usize = 1_024;

/// A progress bar on stderr of `len` steps.
pub fn bar(system: &str, what: &str, len: usize) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "{prefix:>10} {msg:<34} [{bar:30}] {pos:>7}/{len:7} {elapsed_precise}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(system.to_owned());
    pb.set_message(what.to_owned());
    pb
}

/// A row stops repeating once its timed runs have taken this long in total, so that
/// the slow rows of a slow system run once.
pub const BUDGET: Duration = Duration::from_secs(10);

/// Runs `timed` on a fresh `setup()` value up to `runs` times (fewer once [`BUDGET`]
/// is spent); keeps the best time and the last value (for the check). `first` sees
/// the live heap the first value holds right after `setup()` and right after `timed`.
fn best<D>(
    runs: usize,
    pb: &ProgressBar,
    mut setup: impl FnMut() -> D,
    mut timed: impl FnMut(&mut D, &ProgressBar),
    mut first: impl FnMut(isize, isize),
) -> (Duration, D) {
    let mut best = Duration::MAX;
    let mut spent = Duration::ZERO;
    let mut last = None;
    for run in 0..runs.max(1) {
        if run > 0 && spent >= BUDGET {
            break;
        }
        drop(last.take());
        pb.reset();
        let before = live_bytes();
        let mut d = setup();
        let built = live_bytes() - before;
        let t0 = Instant::now();
        timed(&mut d, pb);
        let t = t0.elapsed();
        if run == 0 {
            first(built, live_bytes() - before);
        }
        spent += t;
        best = best.min(t);
        last = Some(d);
    }
    pb.finish_and_clear();
    (best, last.expect("at least one run"))
}

/// Imports every update, one per call.
fn import_all<S: Scene>(doc: &mut S::Doc, updates: &[Vec<u8>], pb: &ProgressBar) {
    for (j, u) in updates.iter().enumerate() {
        S::import(doc, u);
        if j % TICK == TICK - 1 {
            pb.inc(TICK as u64);
        }
    }
}

fn row(id: &str, what: String, secs: Duration, writes: usize, check: String) -> Row {
    Row {
        id: id.to_owned(),
        what,
        secs: secs.as_secs_f64(),
        writes,
        check,
    }
}

/// Measures system `S` on workload A with `cfg.messages` messages.
pub fn run<S: Scene>(cfg: &Config) -> Report {
    let name = S::NAME;
    let work = Work::new(SceneA::standard().with_messages(cfg.messages));
    let expected = work.a.expected();
    let n = work.messages();
    let writes = work.writes.len();

    // Untimed setup: the sender side.
    let pb = bar(name, "setup: base + 1 update per message", n);
    let t0 = Instant::now();
    let s = S::prepare(&work, &pb);
    let setup_secs = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let update_bytes = s.updates().iter().map(Vec::len).sum();

    let mut rows = Vec::new();

    // A1: one update per call. The first run also gives the receiver's heap.
    let mut memory = Memory::default();
    let pb = bar(name, "A1: 1 update per call", n);
    let (t, doc) = best(
        cfg.runs,
        &pb,
        || s.receiver(),
        |d, pb| import_all::<S>(d, s.updates(), pb),
        |base, after| {
            memory.base = base as i64;
            memory.after = after as i64;
        },
    );
    let check = verify(&expected, |k| S::read(&doc, k));
    memory.check = check.clone();
    rows.push(row("a1", "1 update per call".into(), t, writes, check));
    let mut final_doc = doc;

    // A1b: all in one call, and 1,000 per call.
    let all = s.batch(0..n);
    let pb = bar(name, "A1b: all updates in 1 call", 1);
    let (t, doc) = best(cfg.runs, &pb, || s.receiver(), |d, _| S::import_batch(d, &all), |_, _| ());
    let check = verify(&expected, |k| S::read(&doc, k));
    drop((doc, all));
    rows.push(row("a1b-all", "all updates in 1 call".into(), t, writes, check));

    let batches: Vec<S::Batch> = (0..n)
        .step_by(1_000)
        .map(|i| s.batch(i..(i + 1_000).min(n)))
        .collect();
    let pb = bar(name, "A1b: 1,000 updates per call", batches.len());
    let (t, doc) = best(
        cfg.runs,
        &pb,
        || s.receiver(),
        |d, pb| {
            for b in &batches {
                S::import_batch(d, b);
                pb.inc(1);
            }
        },
        |_, _| (),
    );
    let check = verify(&expected, |k| S::read(&doc, k));
    drop((doc, batches));
    rows.push(row("a1b-1000", "1,000 updates per call".into(), t, writes, check));

    // A2: the same writes as local edits, one commit per message.
    let pb = bar(name, "A2: local edits, 1 commit/message", n);
    let (t, local) = best(
        cfg.runs,
        &pb,
        || s.local(),
        |l, pb| {
            for j in 0..n {
                S::edit(l, work.message(j));
                if j % TICK == TICK - 1 {
                    pb.inc(TICK as u64);
                }
            }
        },
        |_, _| (),
    );
    let check = verify(&expected, |k| S::read_local(&local, k));
    drop(local);
    rows.push(row("a2", "local edits, 1 commit per message".into(), t, writes, check));

    rows.extend(s.extra_rows(&work, cfg.runs, &expected));

    // Snapshot of the final document of row A1.
    let snapshot = snapshot::<S>(&mut final_doc, cfg.runs, &expected, work.a.nodes);
    // Compaction, where the system has one, of that final document.
    let before = live_bytes();
    if let Some(note) = S::compact(&mut final_doc) {
        memory.compacted = Some(memory.after + (live_bytes() - before) as i64);
        memory.compact_note = Some(note);
        let c = verify(&expected, |k| S::read(&final_doc, k));
        if c != memory.check {
            memory.check = format!("{}; after compaction: {c}", memory.check);
        }
    }
    drop(final_doc);
    let base_bytes = s.base_bytes();
    drop(s);

    // A1 by number of authors (A1 above is the 1,000-author point).
    let mut scaling = Vec::new();
    if cfg.scaling {
        for authors in AUTHORS {
            if authors == work.a.authors {
                scaling.push(Scale {
                    authors,
                    secs: rows[0].secs,
                    writes,
                    update_bytes,
                    check: rows[0].check.clone(),
                });
                continue;
            }
            let w = Work::new(work.a.clone().with_authors(authors));
            let pb = bar(name, &format!("scaling: setup, {authors} authors"), n);
            let s = S::prepare(&w, &pb);
            pb.finish_and_clear();
            let pb = bar(name, &format!("scaling: A1, {authors} authors"), n);
            let (t, doc) = best(
                cfg.runs,
                &pb,
                || s.receiver(),
                |d, pb| import_all::<S>(d, s.updates(), pb),
                |_, _| (),
            );
            scaling.push(Scale {
                authors,
                secs: t.as_secs_f64(),
                writes,
                update_bytes: s.updates().iter().map(Vec::len).sum(),
                check: verify(&expected, |k| S::read(&doc, k)),
            });
        }
    }

    Report {
        system: name.to_owned(),
        model: S::MODEL.to_owned(),
        nodes: work.a.nodes,
        messages: n,
        writes_per_message: work.a.writes,
        authors: work.a.authors,
        setup_secs,
        update_bytes,
        base_bytes,
        rows,
        memory,
        snapshot,
        scaling,
    }
}

fn snapshot<S: Scene>(doc: &mut S::Doc, runs: usize, expected: &[NodeState], nodes: usize) -> Snapshot {
    let mut encode = Duration::MAX;
    let mut snap = None;
    for _ in 0..runs.max(1) {
        drop(snap.take());
        let t0 = Instant::now();
        let s = black_box(S::snapshot(doc));
        encode = encode.min(t0.elapsed());
        snap = Some(s);
    }
    let snap = snap.expect("at least one run");
    let bytes = snap.as_ref();
    let (mut load, mut load_read) = (Duration::MAX, Duration::MAX);
    let mut check = String::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let d = black_box(S::load(bytes));
        load = load.min(t0.elapsed());
        drop(d);
        let t0 = Instant::now();
        let d = S::load(bytes);
        let mut sum = 0.0;
        for k in 0..nodes {
            if let Some((p, h)) = S::read(&d, k) {
                sum += f64::from(p[0]) + h;
            }
        }
        black_box(sum);
        load_read = load_read.min(t0.elapsed());
        check = verify(expected, |k| S::read(&d, k));
    }
    Snapshot {
        bytes: bytes.len(),
        encode_secs: encode.as_secs_f64(),
        load_secs: load.as_secs_f64(),
        load_read_secs: load_read.as_secs_f64(),
        check,
    }
}

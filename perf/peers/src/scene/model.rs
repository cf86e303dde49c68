//! The [`Scene`] trait that each system implements, the workload every system gets,
//! and the result records a child process hands back to the driver (as JSON).
//!
//! Nothing here times anything (`run.rs` does) or knows a particular system.

use std::ops::Range;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use vuer_rtc::workload::{SceneA, SceneWrite};

/// A node's final state: `(position, health)`.
pub type NodeState = ([f32; 3], f64);

/// Workload A with its plain write records, computed once.
pub struct Work {
    /// The parameters.
    pub a: SceneA,
    /// `writes[j * a.writes + k]` is write `k` of message `j`.
    pub writes: Vec<SceneWrite>,
}

impl Work {
    /// The workload of these parameters.
    pub fn new(a: SceneA) -> Work {
        let writes = a.writes();
        Work { a, writes }
    }

    /// The writes of message `j`.
    pub fn message(&self, j: usize) -> &[SceneWrite] {
        let w = self.a.writes;
        &self.writes[j * w..(j + 1) * w]
    }

    /// The index of the author of message `j` (`0..authors`): client `c{index}`.
    pub fn author(&self, j: usize) -> usize {
        j % self.a.authors.max(1)
    }

    /// Edit messages.
    pub fn messages(&self) -> usize {
        self.a.messages
    }
}

/// One system under test. Every method but `import`, `import_batch` and `edit` runs
/// outside the timer.
pub trait Scene: Sized {
    /// The name in the tables.
    const NAME: &'static str;
    /// How the system models the scene and authors the messages (for the README).
    const MODEL: &'static str;
    /// A replica that receives updates.
    type Doc;
    /// A document edited locally (row A2).
    type Local;
    /// The payload of several messages for one import call, built outside the timer.
    type Batch;
    /// An encoded snapshot.
    type Snap: AsRef<[u8]>;

    /// The sender side: builds the base scene and one update per message, each in the
    /// system's own update encoding, message `j` authored by client `work.author(j)`.
    fn prepare(work: &Work, pb: &ProgressBar) -> Self;
    /// The per-message updates, in message order.
    fn updates(&self) -> &[Vec<u8>];
    /// Bytes of the base scene as a receiver loads it.
    fn base_bytes(&self) -> usize;
    /// A fresh receiving replica that holds the base scene.
    fn receiver(&self) -> Self::Doc;
    /// Timed: imports one update.
    fn import(doc: &mut Self::Doc, update: &[u8]);
    /// The payload of messages `range` for [`Scene::import_batch`].
    fn batch(&self, range: Range<usize>) -> Self::Batch;
    /// Timed: imports a batch in one call.
    fn import_batch(doc: &mut Self::Doc, batch: &Self::Batch);
    /// A fresh local document that holds the base scene (row A2).
    fn local(&self) -> Self::Local;
    /// Timed: one message's writes as local edits, committed as one change.
    fn edit(local: &mut Self::Local, writes: &[SceneWrite]);
    /// The state of node `n{node}` on a receiver.
    fn read(doc: &Self::Doc, node: usize) -> Option<NodeState>;
    /// The state of node `n{node}` on a local document.
    fn read_local(local: &Self::Local, node: usize) -> Option<NodeState>;
    /// Timed: encodes a snapshot of the whole document.
    fn snapshot(doc: &mut Self::Doc) -> Self::Snap;
    /// Timed: loads a snapshot.
    fn load(snap: &[u8]) -> Self::Doc;
    /// Folds history into the state where the system offers it (vuer-rtc's
    /// compaction); `None` where it does not.
    fn compact(_doc: &mut Self::Doc) -> Option<String> {
        None
    }
    /// Rows only this system has (vuer-rtc: decode only, apply pre-decoded).
    fn extra_rows(&self, _work: &Work, _runs: usize, _expected: &[NodeState]) -> Vec<Row> {
        Vec::new()
    }
}

/// One timed measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// Short id shared across systems (`a1`, `a1b-all`, `a1b-1000`, `a2`, …).
    pub id: String,
    /// What was timed, for this system.
    pub what: String,
    /// Best wall time, seconds.
    pub secs: f64,
    /// Property writes in the timed part.
    pub writes: usize,
    /// `ok` or `MISMATCH …`.
    pub check: String,
}

/// Heap held by a receiver (live bytes of the counting allocator).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Memory {
    /// The base scene only.
    pub base: i64,
    /// After every write arrived (one update per call).
    pub after: i64,
    /// After compaction, where the system has one.
    pub compacted: Option<i64>,
    /// What compaction did.
    pub compact_note: Option<String>,
    /// The final-state check of that receiver.
    pub check: String,
}

/// Snapshot of the final document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Encoded size.
    pub bytes: usize,
    /// Best encode time, seconds.
    pub encode_secs: f64,
    /// Best load time, seconds.
    pub load_secs: f64,
    /// Best time of load and then reading every node's two properties, seconds.
    pub load_read_secs: f64,
    /// The final-state check of a loaded document.
    pub check: String,
}

/// Row A1 with a given number of authors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    /// Distinct authors.
    pub authors: usize,
    /// Best wall time, seconds.
    pub secs: f64,
    /// Property writes.
    pub writes: usize,
    /// Total bytes of the updates.
    pub update_bytes: usize,
    /// `ok` or `MISMATCH …`.
    pub check: String,
}

/// Everything one system's child process measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The system.
    pub system: String,
    /// How it models the scene.
    pub model: String,
    /// Nodes, messages, writes per message, authors.
    pub nodes: usize,
    pub messages: usize,
    pub writes_per_message: usize,
    pub authors: usize,
    /// Untimed sender-side setup, seconds (informational).
    pub setup_secs: f64,
    /// Total bytes of the per-message updates.
    pub update_bytes: usize,
    /// Bytes of the base scene as the receiver loads it.
    pub base_bytes: usize,
    /// Timed rows.
    pub rows: Vec<Row>,
    /// Heap of a receiver.
    pub memory: Memory,
    /// Snapshot of the final document.
    pub snapshot: Snapshot,
    /// Row A1 by number of authors.
    pub scaling: Vec<Scale>,
}

/// Compares every node of a document with the expected final state: `ok`, or
/// `MISMATCH` with the count and the first differing node.
pub fn verify(expected: &[NodeState], read: impl Fn(usize) -> Option<NodeState>) -> String {
    let mut bad = 0;
    let mut first = None;
    for (k, want) in expected.iter().enumerate() {
        let got = read(k);
        // Positions compare as f32, health as f64.
        if got.as_ref() != Some(want) {
            bad += 1;
            first.get_or_insert((k, got, *want));
        }
    }
    match first {
        None => "ok".to_owned(),
        Some((k, got, want)) => {
            format!("MISMATCH: {bad} nodes differ; first n{k}: got {got:?}, want {want:?}")
        }
    }
}

//! A text's logical content as plain records ([`TextParts`]), for snapshots: what
//! [`TextDoc::to_parts`] exports and [`TextDoc::from_parts`] restores. The chunk layout,
//! the Fenwick tree, the id index and the cursor are not part of it; they are rebuilt.
//!
//! Invariant: `TextDoc::from_parts(d.to_parts())` holds the same characters as `d` (ids,
//! anchors, Lamport numbers, wall clocks, tombstones and text, in order) and the same
//! waiting ops, so every later op has the same effect on both (tested). Parts from
//! outside the process are validated whole; invalid parts are an error, never a panic
//! or a half-built document.

use super::tree::{Span, Tree};
use super::{CharId, MAX_PENDING, TextDoc, Waiting};
use crate::ids::Interner;

/// One span: a run of one agent's consecutive ids, each character after the first
/// anchored on the previous one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpanRecord {
    /// Agent, an index into [`TextParts::agents`].
    pub agent: u32,
    /// Id of the first character.
    pub seq: u32,
    /// Characters (at least one).
    pub len: u32,
    /// Lamport number of the first character.
    pub lamport: u64,
    /// How the Lamport number grows along the span: 0 or 1 per character.
    pub step: u8,
    /// Anchor of the first character (`None`: the front).
    pub anchor: Option<CharId>,
    /// Wall clock of the insert.
    pub ts: f64,
    /// Tombstone.
    pub deleted: bool,
}

/// A remote insert waiting for its anchor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingInsert {
    /// Id of its first character.
    pub id: CharId,
    /// The anchor it waits for.
    pub anchor: CharId,
    /// Its text.
    pub content: String,
    /// Its Lamport number.
    pub lamport: u64,
    /// Its wall clock.
    pub ts: f64,
}

/// The logical content of a [`TextDoc`] (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextParts {
    /// Agent names, by interned id (no repeats).
    pub agents: Vec<String>,
    /// Every span in document order, tombstones included.
    pub spans: Vec<SpanRecord>,
    /// The spans' texts concatenated in document order (tombstones' too).
    pub text: String,
    /// The greatest Lamport number seen.
    pub max_lamport: u64,
    /// Remote inserts waiting for their anchor.
    pub waiting: Vec<PendingInsert>,
    /// Deleted id ranges not held yet: `(agent, start, end)`.
    pub pending_deletes: Vec<(u32, u32, u32)>,
}

/// Why [`TextDoc::from_parts`] refused its input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid text parts: {0}")]
pub struct InvalidParts(pub String);

fn bad<T>(reason: String) -> Result<T, InvalidParts> {
    Err(InvalidParts(reason))
}

impl TextDoc {
    /// The document's logical content (see [`TextParts`]).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::text::TextDoc;
    /// let mut d = TextDoc::new();
    /// d.replace("a", 0, 0, "Hello world", 1.0);
    /// d.replace("b", 5, 6, "!", 2.0);
    /// let back = TextDoc::from_parts(d.to_parts()).unwrap();
    /// assert_eq!(back.text(), "Hello!");
    /// assert_eq!(back.dump(), d.dump());
    /// ```
    pub fn to_parts(&self) -> TextParts {
        let mut text = String::new();
        let spans = self
            .tree
            .spans()
            .map(|(s, t)| {
                text.push_str(t);
                SpanRecord {
                    agent: s.agent,
                    seq: s.seq,
                    len: s.len,
                    lamport: s.lamport,
                    step: s.step,
                    anchor: s.anchor,
                    ts: s.ts,
                    deleted: s.deleted,
                }
            })
            .collect();
        TextParts {
            agents: self.agents.names().map(str::to_owned).collect(),
            spans,
            text,
            max_lamport: self.max_lamport,
            waiting: self
                .waiting
                .iter()
                .map(|w| PendingInsert {
                    id: w.id,
                    anchor: w.anchor,
                    content: w.content.clone(),
                    lamport: w.lamport,
                    ts: w.ts,
                })
                .collect(),
            pending_deletes: self.pending_deletes.clone(),
        }
    }

    /// Rebuilds a document from its parts, checking them whole first.
    ///
    /// # Errors
    /// [`InvalidParts`] naming what is wrong: a repeated agent name, an agent index out
    /// of range, an empty or overflowing span, a step other than 0 or 1, two spans
    /// sharing an id, a text whose length does not match the spans, an empty or
    /// excess waiting op, or an empty pending delete.
    pub fn from_parts(parts: TextParts) -> Result<TextDoc, InvalidParts> {
        let mut agents = Interner::default();
        for (i, name) in parts.agents.iter().enumerate() {
            if agents.intern(name) as usize != i {
                return bad(format!("agent {name:?} is listed twice"));
            }
        }
        let n_agents = agents.count();
        let agent_ok = |a: u32| (a as usize) < n_agents;
        let mut ranges = Vec::with_capacity(parts.spans.len());
        let mut chars: u64 = 0;
        let mut max_lamport = parts.max_lamport;
        for (k, s) in parts.spans.iter().enumerate() {
            let end = s.seq.checked_add(s.len);
            let last = u64::from(s.len.saturating_sub(1))
                .checked_mul(u64::from(s.step))
                .and_then(|d| s.lamport.checked_add(d));
            let ok = agent_ok(s.agent)
                && s.len > 0
                && end.is_some()
                && s.step <= 1
                && last.is_some()
                && s.anchor.is_none_or(|a| agent_ok(a.agent));
            let (Some(end), Some(last), true) = (end, last, ok) else {
                return bad(format!("span {k} is malformed: {s:?}"));
            };
            ranges.push((s.agent, s.seq, end));
            chars += u64::from(s.len);
            max_lamport = max_lamport.max(last);
        }
        ranges.sort_unstable();
        if let Some(w) = ranges
            .windows(2)
            .find(|w| w[0].0 == w[1].0 && w[1].1 < w[0].2)
        {
            return bad(format!("spans share ids of agent {}: {w:?}", w[0].0));
        }
        let text_chars = parts.text.chars().count() as u64;
        if text_chars != chars {
            return bad(format!(
                "the text has {text_chars} characters, the spans {chars}"
            ));
        }
        if parts.waiting.len() + parts.pending_deletes.len() > MAX_PENDING {
            return bad(format!("more than {MAX_PENDING} pending ops"));
        }
        for w in &parts.waiting {
            if !agent_ok(w.id.agent)
                || !agent_ok(w.anchor.agent)
                || w.content.is_empty()
                || super::ids_fit(w.id.seq, &w.content).is_none()
            {
                return bad(format!("waiting insert {:?} is malformed", w.id));
            }
            max_lamport = max_lamport.max(w.lamport);
        }
        if let Some(d) = parts
            .pending_deletes
            .iter()
            .find(|&&(a, s, e)| !agent_ok(a) || s >= e)
        {
            return bad(format!("pending delete {d:?} is malformed"));
        }
        let mut ends = vec![0u32; n_agents];
        for &(a, _, e) in &ranges {
            ends[a as usize] = ends[a as usize].max(e);
        }
        let spans = parts
            .spans
            .into_iter()
            .map(|s| Span {
                agent: s.agent,
                seq: s.seq,
                len: s.len,
                lamport: s.lamport,
                step: s.step,
                anchor: s.anchor,
                ts: s.ts,
                deleted: s.deleted,
                bytes: (0, 0),
            })
            .collect();
        Ok(TextDoc {
            agents,
            tree: Tree::from_spans(spans, parts.text),
            max_lamport,
            waiting: parts
                .waiting
                .into_iter()
                .map(|w| Waiting {
                    id: w.id,
                    anchor: w.anchor,
                    content: w.content,
                    lamport: w.lamport,
                    ts: w.ts,
                })
                .collect(),
            pending_deletes: parts.pending_deletes,
            ends,
            last_agent: 0,
            cursor: None,
        })
    }
}

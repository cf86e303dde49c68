//! The text CRDT: an RGA/YATA sequence with run-length spans, wire-compatible with the
//! reference's `TextRope` (DESIGN.md §6). No dependency on columns or the graph.
//!
//! A document is a sequence of characters, each with an id `(agent, seq)` (the agent's
//! own character counter), an *anchor* (the character it was typed after, or none for
//! the front), a Lamport number `lamport` (the reference's `seq` field: one more than
//! the largest seen when it was made) and a wall clock `ts`. Deleted characters stay as
//! tombstones. Characters are stored in [`Span`]s: runs of one agent's consecutive ids
//! in which each character is anchored on the previous one (a multi-character insert, or
//! a run of typing), so a span integrates, splits and deletes as a unit.
//!
//! Ordering rule (the reference's `_integrate`, so both place concurrent inserts
//! identically): a new insert goes right after its anchor, then skips every item that
//! sorts before it. Scanning forward it stops before the first item that (a) has a lower
//! `lamport`, or (b) is anchored before the new item's anchor, or (c) has the same anchor
//! and `lamport` and a later `ts` (equal `ts`: a greater id string). Items anchored
//! inside what was already skipped belong to a skipped subtree and are skipped too.
//!
//! Layout (see [`tree`]): spans live in chunks of at most [`tree::CHUNK`] spans, kept
//! in document order with per-chunk visible character counts (a Fenwick tree finds a
//! position's chunk); a per-agent run-length index ([`index`]) maps ids to chunks;
//! adjacent tombstones join. Positions count Unicode code points. The text bytes live
//! in one append-only buffer per document; spans hold byte ranges into it.
//!
//! A local edit finds its place by position alone: its Lamport number is above every
//! other, so it goes right after its anchor with no id lookup or sibling scan.
//! Typing on where the last insert ended (a local insert at that position, a remote one
//! anchored on its last character) reuses the place it ended at (a cursor kept with the
//! tree's generation; any change invalidates it).
//!
//! Invariants:
//! - every span's anchor is the last character of the span before it in the *reference's*
//!   item order (a split keeps the right part anchored on the left part's last char);
//! - ids never repeat: an insert whose first id is held is a duplicate and is ignored;
//! - a remote insert whose anchor is not held yet waits (up to [`MAX_PENDING`] ops) and
//!   is integrated as soon as its anchor arrives; a delete of ids not held yet waits too.

pub mod index;
pub mod parts;
pub mod tree;

pub use parts::{InvalidParts, PendingInsert, SpanRecord, TextParts};

use std::fmt;

use crate::ids::Interner;

use tree::{Loc, Span, Tree};

/// Pending remote ops a document holds at most (inserts waiting for their anchor,
/// deletes of ids not held yet). Beyond it, new waiting ops are dropped and reported.
pub const MAX_PENDING: usize = 100_000;

/// A character id: the agent (interned per document) and its character counter.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CharId {
    /// Interned agent.
    pub agent: u32,
    /// The agent's character counter.
    pub seq: u32,
}

/// A character id in its wire form: agent name and counter (`"agent:seq"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    /// The agent (a client id).
    pub agent: String,
    /// The agent's character counter.
    pub seq: u32,
}

impl ItemId {
    /// Parses `"agent:seq"` (the last colon splits; the agent may contain colons).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::text::ItemId;
    /// assert_eq!(ItemId::parse("a:b:7"), Some(ItemId { agent: "a:b".into(), seq: 7 }));
    /// assert_eq!(ItemId::parse("nope"), None);
    /// ```
    pub fn parse(s: &str) -> Option<ItemId> {
        let (agent, seq) = s.rsplit_once(':')?;
        Some(ItemId {
            agent: agent.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agent, self.seq)
    }
}

/// An insert in CRDT form (the wire's `id`, `value: [anchor, content]`, `seq`, `ts`).
#[derive(Clone, Debug, PartialEq)]
pub struct InsertOp {
    /// Id of the first inserted character.
    pub id: ItemId,
    /// The character it goes after (`None`: the front).
    pub anchor: Option<ItemId>,
    /// The inserted text.
    pub content: String,
    /// Lamport number (the wire's `seq`).
    pub lamport: u64,
    /// Wall clock, seconds.
    pub ts: f64,
}

/// A deleted id range in wire form (`rm: [[id, len], …]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteRange {
    /// First deleted id.
    pub id: ItemId,
    /// Number of consecutive ids of that agent.
    pub len: u32,
}

/// What applying a remote op did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Integrated (with any ops that were waiting for it).
    Done,
    /// Already held: ignored.
    Duplicate,
    /// Its anchor (or deleted ids) are not held yet: it waits.
    Pending,
    /// It would wait, but [`MAX_PENDING`] ops already wait: dropped.
    Dropped,
    /// Its ids run past the 32-bit character counter (`seq + length`), which the wire
    /// decoder refuses: ignored.
    Invalid,
}

/// The end (one past the last id) of `text` inserted from id `seq`, when it fits
/// the 32-bit counter.
fn ids_fit(seq: u32, text: &str) -> Option<u32> {
    u32::try_from(text.chars().count())
        .ok()
        .and_then(|n| seq.checked_add(n))
}

/// The Lamport number after `max`: one more, but never past what the wire accepts
/// ([`crate::ids::MAX_SAFE_INT`]; a tie there is broken by wall clock and id).
fn next_lamport(max: u64) -> u64 {
    max.saturating_add(1).min(crate::ids::MAX_SAFE_INT)
}

/// A remote insert waiting for its anchor.
#[derive(Clone, Debug)]
struct Waiting {
    id: CharId,
    anchor: CharId,
    content: String,
    lamport: u64,
    ts: f64,
}

/// One collaborative text (see the module doc).
///
/// # Examples
/// Two agents type concurrently at the front; both documents converge:
/// ```
/// use vuer_rtc::text::TextDoc;
/// let mut a = TextDoc::new();
/// let mut b = TextDoc::new();
/// let hello = a.insert("alice", 0, "Hello", 1.0).unwrap();
/// b.apply_insert(&hello);
/// let x = a.insert("alice", 5, "!", 2.0).unwrap();
/// let y = b.insert("bob", 5, "?", 2.5).unwrap();
/// a.apply_insert(&y);
/// b.apply_insert(&x);
/// assert_eq!(a.text(), b.text());
/// assert_eq!(a.text(), "Hello!?"); // same anchor and seq: earlier ts first
/// ```
#[derive(Clone, Debug, Default)]
pub struct TextDoc {
    agents: Interner,
    tree: Tree,
    max_lamport: u64,
    waiting: Vec<Waiting>,
    // Deleted id ranges not held yet: (agent, start, end).
    pending_deletes: Vec<(u32, u32, u32)>,
    // Per interned agent: one past the largest id integrated.
    ends: Vec<u32>,
    // The agent interned last (see `agent`).
    last_agent: u32,
    // Where the last insert ended (see `Cursor`).
    cursor: Option<Cursor>,
}

/// Where the last insert ended: its last character and the place right after it, valid
/// while the tree's generation is the one recorded (any change bumps it). The next
/// local insert at `pos`, or remote insert anchored on `last`, starts there without a
/// lookup: that is how typing goes.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    generation: u64,
    /// The visible position right after it (local inserts only).
    pos: Option<u64>,
    last: CharId,
    at: Loc,
}

impl TextDoc {
    /// An empty document.
    pub fn new() -> TextDoc {
        TextDoc::default()
    }

    /// The visible text.
    pub fn text(&self) -> String {
        self.tree.text()
    }

    /// Visible length in code points.
    pub fn len(&self) -> usize {
        usize::try_from(self.tree.visible()).unwrap_or(usize::MAX)
    }

    /// True when no character is visible.
    pub fn is_empty(&self) -> bool {
        self.tree.visible() == 0
    }

    /// Number of spans (tombstones included), for memory reports.
    pub fn span_count(&self) -> usize {
        self.tree.span_count()
    }

    /// Remote ops waiting for their anchor or their deleted ids.
    pub fn pending(&self) -> usize {
        self.waiting.len() + self.pending_deletes.len()
    }

    /// The greatest Lamport number seen.
    pub fn max_lamport(&self) -> u64 {
        self.max_lamport
    }

    /// Approximate heap bytes used (text buffer, spans, index).
    pub fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
    }

    fn wire_id(&self, id: CharId) -> ItemId {
        ItemId {
            agent: self.agents.name(id.agent as usize).to_owned(),
            seq: id.seq,
        }
    }

    /// The interned id of agent `name`; the last one is remembered, as runs of ops
    /// come from one agent.
    fn agent(&mut self, name: &str) -> u32 {
        if self.agents.name(self.last_agent as usize) == name && !name.is_empty() {
            return self.last_agent;
        }
        let a = self.agents.intern(name);
        self.last_agent = a;
        a
    }

    /// The id the next character typed by `agent` gets: one past the largest it holds.
    fn next_seq(&self, agent: u32) -> u32 {
        self.ends.get(agent as usize).copied().unwrap_or(0)
    }

    /// Inserts `text` at visible position `pos` (clamped to the length) as `agent`,
    /// returning the op in CRDT form for the other replicas; `None` for empty text.
    /// The new text goes right after the visible character at `pos − 1` (the front for
    /// 0).
    pub fn insert(&mut self, agent: &str, pos: usize, text: &str, ts: f64) -> Option<InsertOp> {
        self.insert_from(agent, pos, text, ts, 0)
    }

    /// [`TextDoc::insert`] with ids from `min_seq` on at least: an agent that made ops
    /// this document does not hold (undone ones, say) passes the next id it has not
    /// used, so its ids never repeat.
    pub fn insert_from(
        &mut self,
        agent: &str,
        pos: usize,
        text: &str,
        ts: f64,
        min_seq: u32,
    ) -> Option<InsertOp> {
        if text.is_empty() {
            return None;
        }
        let (id, anchor, lamport) = self.local_insert(agent, pos, text, ts, min_seq)?;
        Some(self.insert_op(agent, id.seq, anchor, text, lamport, ts))
    }

    /// Integrates a local insert of non-empty `text`; returns its first id, anchor and
    /// Lamport number. `None` (nothing changed) when the agent's character ids would
    /// run past the 32-bit counter.
    fn local_insert(
        &mut self,
        agent: &str,
        pos: usize,
        text: &str,
        ts: f64,
        min_seq: u32,
    ) -> Option<(CharId, Option<CharId>, u64)> {
        let a = self.agent(agent);
        let id = CharId {
            agent: a,
            seq: self.next_seq(a).max(min_seq),
        };
        ids_fit(id.seq, text)?;
        let lamport = next_lamport(self.max_lamport);
        self.max_lamport = lamport;
        // Its Lamport number is above every other, so it goes right after its anchor:
        // the place the position lookup found, no id lookup or sibling scan needed.
        // Typing on where the last local insert ended needs no lookup at all.
        let pos = (pos as u64).min(self.tree.visible());
        let cached = match self.cursor.take() {
            Some(c) if c.generation == self.tree.generation() && c.pos == Some(pos) => self
                .tree
                .visible_before(c.at)
                .map(|last| (Some(last), c.at)),
            _ => None,
        };
        let (anchor, start) = match (cached, pos.checked_sub(1)) {
            (Some(hit), _) => hit,
            (None, None) => (None, Loc::FRONT),
            (None, Some(p)) => match self.tree.split_after_visible(p) {
                Some((c, at)) => (Some(c), at),
                None => (None, Loc::FRONT),
            },
        };
        let n = text.chars().count() as u64;
        self.cursor = self
            .place_span(start, id, anchor, text, lamport, ts)
            .map(|c| Cursor {
                pos: Some(pos + n),
                ..c
            });
        Some((id, anchor, lamport))
    }

    /// What [`TextDoc::insert_from`] would send, without changing the document: the
    /// CRDT form of inserting `text` at `pos` as `agent`.
    pub fn plan_insert(
        &self,
        agent: &str,
        pos: usize,
        text: &str,
        ts: f64,
        min_seq: u32,
    ) -> Option<InsertOp> {
        if text.is_empty() {
            return None;
        }
        let (anchor, seq, lamport) = self.place(self.agents.get(agent), pos, min_seq);
        ids_fit(seq, text)?;
        Some(self.insert_op(agent, seq, anchor, text, lamport, ts))
    }

    /// Where a local insert at `pos` by `agent` goes: its anchor (the visible character
    /// before `pos`, clamped), its first id (the agent's next, at least `min_seq`) and
    /// its Lamport number (one more than any seen).
    fn place(&self, agent: Option<u32>, pos: usize, min_seq: u32) -> (Option<CharId>, u32, u64) {
        let pos = (pos as u64).min(self.tree.visible());
        let anchor = if pos == 0 {
            None
        } else {
            self.tree.visible_char(pos - 1)
        };
        let seq = agent.map_or(0, |a| self.next_seq(a)).max(min_seq);
        (anchor, seq, next_lamport(self.max_lamport))
    }

    /// An insert in wire form.
    fn insert_op(
        &self,
        agent: &str,
        seq: u32,
        anchor: Option<CharId>,
        text: &str,
        lamport: u64,
        ts: f64,
    ) -> InsertOp {
        InsertOp {
            id: ItemId {
                agent: agent.to_owned(),
                seq,
            },
            anchor: anchor.map(|c| self.wire_id(c)),
            content: text.to_owned(),
            lamport,
            ts,
        }
    }

    /// What [`TextDoc::delete`] would send, without changing the document.
    pub fn plan_delete(&self, pos: usize, len: usize) -> Vec<DeleteRange> {
        self.tree
            .visible_runs(pos as u64, len as u64)
            .into_iter()
            .map(|(c, n)| DeleteRange {
                id: self.wire_id(c),
                len: n,
            })
            .collect()
    }

    /// Deletes `len` visible characters from `pos` (clamped to the text), returning the
    /// deleted id ranges in wire form (consecutive ids of one agent merged).
    pub fn delete(&mut self, pos: usize, len: usize) -> Vec<DeleteRange> {
        let mut runs: Vec<(CharId, u32)> = Vec::new();
        self.tree
            .delete_visible(pos as u64, len as u64, |first, n| match runs.last_mut() {
                Some((c, l)) if c.agent == first.agent && c.seq + *l == first.seq => *l += n,
                _ => runs.push((first, n)),
            });
        runs.into_iter()
            .map(|(c, n)| DeleteRange {
                id: self.wire_id(c),
                len: n,
            })
            .collect()
    }

    /// Replaces `len` visible characters from `pos` (clamped) with `text`, typed by
    /// `agent` at wall clock `ts`: [`TextDoc::delete`] then [`TextDoc::insert`] without
    /// building their wire form, for replicas that apply a position-form edit nobody
    /// needs the CRDT form of (replaying a message, say).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::text::TextDoc;
    /// let mut d = TextDoc::new();
    /// d.replace("a", 0, 0, "Hello world", 1.0);
    /// d.replace("a", 6, 5, "there", 2.0);
    /// assert_eq!(d.text(), "Hello there");
    /// ```
    pub fn replace(&mut self, agent: &str, pos: usize, len: usize, text: &str, ts: f64) {
        if len > 0 {
            self.tree.delete_visible(pos as u64, len as u64, |_, _| {});
        }
        if !text.is_empty() {
            // Ids exhausted: the insert does nothing (deterministically, everywhere).
            let _ = self.local_insert(agent, pos, text, ts, 0);
        }
    }

    /// Applies a remote insert (see [`Applied`]).
    pub fn apply_insert(&mut self, op: &InsertOp) -> Applied {
        self.max_lamport = self.max_lamport.max(op.lamport);
        if op.content.is_empty() {
            return Applied::Duplicate;
        }
        if ids_fit(op.id.seq, &op.content).is_none() {
            return Applied::Invalid;
        }
        let a = self.agent(&op.id.agent);
        let id = CharId {
            agent: a,
            seq: op.id.seq,
        };
        if self.holds(id) || self.waiting.iter().any(|w| w.id == id) {
            return Applied::Duplicate;
        }
        if self.overlaps(id, &op.content) {
            return Applied::Invalid;
        }
        let anchor = op.anchor.as_ref().map(|an| CharId {
            agent: self.agent(&an.agent),
            seq: an.seq,
        });
        if !self.integrate(id, anchor, &op.content, op.lamport, op.ts)
            && let Some(anchor) = anchor
        {
            if self.waiting.len() + self.pending_deletes.len() >= MAX_PENDING {
                return Applied::Dropped;
            }
            self.waiting.push(Waiting {
                id,
                anchor,
                content: op.content.clone(),
                lamport: op.lamport,
                ts: op.ts,
            });
            return Applied::Pending;
        }
        self.release_waiting();
        Applied::Done
    }

    /// Whether inserting `text` from `id` would reuse an id already held (ids never
    /// repeat: such an insert is refused). Ids at or past the agent's largest are free,
    /// the common case, with no lookup.
    fn overlaps(&self, id: CharId, text: &str) -> bool {
        if id.seq >= self.next_seq(id.agent) {
            return false;
        }
        let end = ids_fit(id.seq, text).unwrap_or(u32::MAX);
        self.tree.next_held(id.agent, id.seq, end).is_some()
    }

    /// Whether character `id` is integrated.
    fn holds(&self, id: CharId) -> bool {
        id.seq < self.next_seq(id.agent) && self.tree.locate(id).is_some()
    }

    /// Applies remote deletes (id ranges). Ranges not held yet wait for their inserts.
    pub fn apply_delete(&mut self, rm: &[DeleteRange]) -> Applied {
        let mut out = Applied::Done;
        for r in rm {
            let a = self.agent(&r.id.agent);
            let end = r.id.seq.saturating_add(r.len);
            for (s, e) in self.tree.delete_ids(a, r.id.seq, end) {
                if self.waiting.len() + self.pending_deletes.len() >= MAX_PENDING {
                    out = Applied::Dropped;
                    continue;
                }
                self.pending_deletes.push((a, s, e));
                if out == Applied::Done {
                    out = Applied::Pending;
                }
            }
        }
        out
    }

    /// Integrates every waiting insert whose anchor is now held, repeatedly.
    fn release_waiting(&mut self) {
        loop {
            let ready = self.waiting.iter().position(|w| self.holds(w.anchor));
            let Some(i) = ready else { break };
            let w = self.waiting.swap_remove(i);
            if !self.holds(w.id) && !self.overlaps(w.id, &w.content) {
                self.integrate(w.id, Some(w.anchor), &w.content, w.lamport, w.ts);
            }
        }
    }

    /// Places a new span (see the ordering rule in the module doc), then applies any
    /// pending deletes of its ids. False (changing nothing) when its anchor is not held.
    fn integrate(
        &mut self,
        id: CharId,
        anchor: Option<CharId>,
        text: &str,
        lamport: u64,
        ts: f64,
    ) -> bool {
        // Start right after the anchor (split so the anchor ends its span): where the
        // last insert ended when it is the anchor.
        let cursor = self.cursor.take();
        let start = match anchor {
            None => Loc::FRONT,
            Some(a) => match cursor {
                Some(c) if c.generation == self.tree.generation() && c.last == a => c.at,
                _ => match self.tree.split_after(a) {
                    Some(at) => at,
                    None => return false,
                },
            },
        };
        let agents = &self.agents;
        let id_string = |c: CharId| format!("{}:{}", agents.name(c.agent as usize), c.seq);
        let mut scanned: Vec<(u32, u32, u32)> = Vec::new();
        let mut at = start;
        let tree = &self.tree;
        while let Some(ex) = tree.span_at(at) {
            if lamport > ex.lamport {
                break;
            }
            let same_parent = ex.anchor == anchor;
            // The reference's `existing_parent_ordinal < parent_ordinal`: the existing
            // item is anchored before our anchor. Its anchor precedes it, so it is either
            // our anchor, inside what this scan skipped (after ours), or before ours.
            let before = match (ex.anchor, anchor) {
                (None, ours) => ours.is_some(),
                (Some(_), None) => false,
                (Some(c), Some(ours)) => {
                    c != ours
                        && !scanned
                            .iter()
                            .any(|&(ag, s, e)| ag == c.agent && (s..e).contains(&c.seq))
                }
            };
            if before {
                break;
            }
            if same_parent && lamport == ex.lamport {
                if ts < ex.ts {
                    break;
                }
                // Equal wall clocks too (rare): the id strings decide.
                if ts == ex.ts && id_string(id) < id_string(ex.first()) {
                    break;
                }
            }
            scanned.push((ex.agent, ex.seq, ex.seq + ex.len));
            at = tree.next(at);
        }
        self.cursor = self.place_span(at, id, anchor, text, lamport, ts);
        true
    }

    /// Puts a new span at `at` (extending the span before it when it continues a run
    /// of typing), then applies any pending deletes of its ids. Returns where it ended
    /// if nothing else changed since.
    fn place_span(
        &mut self,
        at: Loc,
        id: CharId,
        anchor: Option<CharId>,
        text: &str,
        lamport: u64,
        ts: f64,
    ) -> Option<Cursor> {
        let len = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
        let span = Span {
            agent: id.agent,
            seq: id.seq,
            len,
            lamport,
            step: 0,
            anchor,
            ts,
            deleted: false,
            bytes: (0, 0),
        };
        let mut after = if self.tree.try_extend(at, &span, text) {
            Some(at)
        } else {
            Some(self.tree.insert_span(at, span, text))
        };
        if self.tree.settle() {
            after = None;
        }
        let end = id.seq.saturating_add(len);
        let a = id.agent as usize;
        if self.ends.len() <= a {
            self.ends.resize(a + 1, 0);
        }
        self.ends[a] = self.ends[a].max(end);
        // Deletes that arrived before this insert.
        if !self.pending_deletes.is_empty() {
            let hits: Vec<(u32, u32, u32)> = self
                .pending_deletes
                .iter()
                .copied()
                .filter(|&(a, s, e)| a == id.agent && s < end && id.seq < e)
                .collect();
            if !hits.is_empty() {
                after = None;
                self.pending_deletes
                    .retain(|&(a, s, e)| !(a == id.agent && s < end && id.seq < e));
                for (a, s, e) in hits {
                    for rest in self.tree.delete_ids(a, s, e) {
                        self.pending_deletes.push((a, rest.0, rest.1));
                    }
                }
            }
        }
        after.filter(|_| len > 0).map(|at| Cursor {
            generation: self.tree.generation(),
            pos: None,
            last: CharId {
                agent: id.agent,
                seq: end - 1,
            },
            at,
        })
    }

    /// Every span as `(id, anchor, lamport, deleted, text)`, in document order (tests,
    /// debugging).
    pub fn dump(&self) -> Vec<(ItemId, Option<ItemId>, u64, bool, String)> {
        self.tree
            .spans()
            .map(|(s, text)| {
                (
                    self.wire_id(s.first()),
                    s.anchor.map(|a| self.wire_id(a)),
                    s.lamport,
                    s.deleted,
                    text.to_owned(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

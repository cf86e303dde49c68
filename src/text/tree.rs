//! Spans in document order: chunks of at most [`CHUNK`] spans with their visible
//! character counts, an order of chunks, and a B-tree index from each span's first id to
//! its chunk. Finding a visible position walks the chunk counts, then one chunk; finding
//! an id is one index lookup, then one chunk.
//!
//! Invariants:
//! - `order` lists every chunk id once; `rank[order[i]] == i`;
//! - `index[s.first()] == c` for every span `s` of chunk `c`, and nothing else is in it;
//! - `chunks[c].visible` is the number of visible characters of chunk `c`, and `visible`
//!   their sum; `fen` is the Fenwick tree of those counts in `order`;
//! - spans of one agent never overlap in ids; `text[s.bytes]` holds span `s`'s text.

use std::collections::BTreeMap;

use super::CharId;

/// Spans per chunk before it is split in two.
pub const CHUNK: usize = 64;

/// A run of one agent's consecutive ids, each character anchored on the previous one.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// Interned agent.
    pub agent: u32,
    /// Id of the first character.
    pub seq: u32,
    /// Characters (code points).
    pub len: u32,
    /// Lamport number of the first character.
    pub lamport: u64,
    /// How the Lamport number grows along the span: 0 for one multi-character insert,
    /// 1 for a run of typing (each character one more than the previous).
    pub step: u8,
    /// Anchor of the first character (the others are anchored on their predecessor).
    pub anchor: Option<CharId>,
    /// Wall clock of the insert.
    pub ts: f64,
    /// Tombstone.
    pub deleted: bool,
    /// Byte range of the text in the document's buffer.
    pub bytes: (u32, u32),
}

impl Span {
    /// Id of the first character.
    pub fn first(&self) -> CharId {
        CharId {
            agent: self.agent,
            seq: self.seq,
        }
    }

    /// Lamport number of the character at `offset`.
    pub fn lamport_at(&self, offset: u32) -> u64 {
        self.lamport + u64::from(offset) * u64::from(self.step)
    }

    fn visible(&self) -> u64 {
        if self.deleted { 0 } else { u64::from(self.len) }
    }
}

/// A place between spans: before span `idx` of the chunk at position `rank` of the
/// order (or after its last span when `idx` is its length). Valid until the next change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Position of the chunk in the order.
    pub rank: u32,
    /// Index of the span in the chunk.
    pub idx: u32,
}

impl Loc {
    /// The front of the document.
    pub const FRONT: Loc = Loc { rank: 0, idx: 0 };
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    spans: Vec<Span>,
    visible: u64,
}

/// The span sequence (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Tree {
    text: String,
    chunks: Vec<Chunk>,
    order: Vec<u32>,
    rank: Vec<u32>,
    index: BTreeMap<CharId, u32>,
    visible: u64,
    // Fenwick tree over the chunks' visible counts, by rank (1-based): finds the chunk
    // of a visible position in O(log chunks).
    fen: Vec<u64>,
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

impl Tree {
    /// Visible characters.
    pub fn visible(&self) -> u64 {
        self.visible
    }

    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.index.len()
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        let spans: usize = self
            .chunks
            .iter()
            .map(|c| c.spans.capacity() * std::mem::size_of::<Span>())
            .sum();
        // A B-tree entry costs about its key and value plus node overhead.
        let index = self.index.len() * (std::mem::size_of::<(CharId, u32)>() + 8);
        self.text.capacity() + spans + index + self.order.capacity() * 8
    }

    fn chunk_at(&self, rank: u32) -> Option<&Chunk> {
        let cid = *self.order.get(rank as usize)?;
        self.chunks.get(cid as usize)
    }

    /// `loc` moved past chunk ends to the span it is before, if any.
    fn norm(&self, mut loc: Loc) -> Option<Loc> {
        loop {
            let c = self.chunk_at(loc.rank)?;
            if (loc.idx as usize) < c.spans.len() {
                return Some(loc);
            }
            loc = Loc {
                rank: loc.rank + 1,
                idx: 0,
            };
        }
    }

    /// The span right after `loc`, if any.
    pub fn span_at(&self, loc: Loc) -> Option<&Span> {
        let l = self.norm(loc)?;
        self.chunk_at(l.rank)?.spans.get(l.idx as usize)
    }

    /// The place after the span right after `loc`.
    pub fn next(&self, loc: Loc) -> Loc {
        match self.norm(loc) {
            Some(l) => Loc {
                rank: l.rank,
                idx: l.idx + 1,
            },
            None => loc,
        }
    }

    /// Where the character `id` is: its span's place and its offset in the span.
    pub fn locate(&self, id: CharId) -> Option<(Loc, u32)> {
        let (&first, &cid) = self.index.range(..=id).next_back()?;
        if first.agent != id.agent {
            return None;
        }
        let chunk = self.chunks.get(cid as usize)?;
        let idx = chunk.spans.iter().position(|s| s.first() == first)?;
        let span = &chunk.spans[idx];
        let off = id.seq - first.seq;
        if off >= span.len {
            return None;
        }
        let rank = *self.rank.get(cid as usize)?;
        Some((
            Loc {
                rank,
                idx: to_u32(idx),
            },
            off,
        ))
    }

    /// One past the largest id `agent` has used (0 when none).
    pub fn agent_end(&self, agent: u32) -> u32 {
        let lo = CharId { agent, seq: 0 };
        let hi = CharId {
            agent,
            seq: u32::MAX,
        };
        let Some((&first, &cid)) = self.index.range(lo..=hi).next_back() else {
            return 0;
        };
        self.chunks
            .get(cid as usize)
            .and_then(|c| c.spans.iter().find(|s| s.first() == first))
            .map_or(0, |s| s.seq + s.len)
    }

    /// Splits the span at `loc` (normalized) so that its first `k` characters stay and
    /// the rest becomes the next span (anchored on the last kept character).
    fn split(&mut self, loc: Loc, k: u32) {
        let Some(&cid) = self.order.get(loc.rank as usize) else {
            return;
        };
        let Some(chunk) = self.chunks.get_mut(cid as usize) else {
            return;
        };
        let Some(span) = chunk.spans.get_mut(loc.idx as usize) else {
            return;
        };
        if k == 0 || k >= span.len {
            return;
        }
        let (b0, b1) = span.bytes;
        let s = &self.text[b0 as usize..b1 as usize];
        let off = if s.len() == span.len as usize {
            k as usize
        } else {
            s.char_indices().nth(k as usize).map_or(s.len(), |(i, _)| i)
        };
        let mid = b0 + to_u32(off);
        let right = Span {
            agent: span.agent,
            seq: span.seq + k,
            len: span.len - k,
            lamport: span.lamport_at(k),
            step: span.step,
            anchor: Some(CharId {
                agent: span.agent,
                seq: span.seq + k - 1,
            }),
            ts: span.ts,
            deleted: span.deleted,
            bytes: (mid, b1),
        };
        span.len = k;
        span.bytes = (b0, mid);
        let first = right.first();
        chunk.spans.insert(loc.idx as usize + 1, right);
        self.index.insert(first, cid);
    }

    /// Splits so that `id` ends its span; returns the place right after it. `id` must
    /// be held (else the front is returned).
    pub fn split_after(&mut self, id: CharId) -> Loc {
        let Some((loc, off)) = self.locate(id) else {
            return Loc::FRONT;
        };
        self.split(loc, off + 1);
        Loc {
            rank: loc.rank,
            idx: loc.idx + 1,
        }
    }

    /// Appends a one-character insert to the span right before `loc` when it continues
    /// a run of typing there: same agent and wall clock, the next id, anchored on the
    /// span's last character, the next Lamport number, and its text right after the
    /// span's in the buffer. Returns false (changing nothing) otherwise.
    pub fn try_extend(&mut self, loc: Loc, span: &Span, text: &str) -> bool {
        if span.len != 1 || loc.idx == 0 {
            return false;
        }
        let Some(&cid) = self.order.get(loc.rank as usize) else {
            return false;
        };
        let end = to_u32(self.text.len());
        let Some(prev) = self
            .chunks
            .get_mut(cid as usize)
            .and_then(|c| c.spans.get_mut(loc.idx as usize - 1))
        else {
            return false;
        };
        let last = CharId {
            agent: prev.agent,
            seq: prev.seq + prev.len - 1,
        };
        let ok = !prev.deleted
            && prev.agent == span.agent
            && prev.seq + prev.len == span.seq
            && span.anchor == Some(last)
            && prev.ts == span.ts
            && (prev.len == 1 || prev.step == 1)
            && span.lamport == prev.lamport_at(prev.len - 1) + 1
            && prev.bytes.1 == end;
        if !ok {
            return false;
        }
        prev.step = 1;
        prev.len += 1;
        self.text.push_str(text);
        prev.bytes.1 = to_u32(self.text.len());
        self.add_visible(cid, 1);
        true
    }

    /// Adds `delta` visible characters to chunk `cid` (and the totals).
    fn add_visible(&mut self, cid: u32, delta: i64) {
        let c = &mut self.chunks[cid as usize];
        c.visible = c.visible.wrapping_add_signed(delta);
        self.visible = self.visible.wrapping_add_signed(delta);
        let mut i = self.rank[cid as usize] as usize + 1;
        while i < self.fen.len() {
            self.fen[i] = self.fen[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Rebuilds the Fenwick tree from the chunks' counts (after the order changed).
    fn rebuild_fen(&mut self) {
        let n = self.order.len();
        self.fen.clear();
        self.fen.resize(n + 1, 0);
        for (r, &cid) in self.order.iter().enumerate() {
            self.fen[r + 1] += self.chunks[cid as usize].visible;
            let parent = (r + 1) + ((r + 1) & (r + 1).wrapping_neg());
            if parent <= n {
                self.fen[parent] += self.fen[r + 1];
            }
        }
    }

    /// Inserts `span` (whose `bytes` are set here) with `text` at `loc`.
    pub fn insert_span(&mut self, loc: Loc, mut span: Span, text: &str) {
        let b0 = to_u32(self.text.len());
        self.text.push_str(text);
        span.bytes = (b0, to_u32(self.text.len()));
        if self.order.is_empty() {
            self.chunks.push(Chunk::default());
            self.order.push(0);
            self.rank.push(0);
            self.rebuild_fen();
        }
        let (rank, idx) = if loc.rank as usize >= self.order.len() {
            let r = self.order.len() - 1;
            let len = self.chunk_at(to_u32(r)).map_or(0, |c| c.spans.len());
            (r, len)
        } else {
            (loc.rank as usize, loc.idx as usize)
        };
        let cid = self.order[rank];
        let vis = span.visible();
        let first = span.first();
        let chunk = &mut self.chunks[cid as usize];
        let idx = idx.min(chunk.spans.len());
        chunk.spans.insert(idx, span);
        self.add_visible(cid, i64::try_from(vis).unwrap_or(i64::MAX));
        self.index.insert(first, cid);
        self.rebalance(cid);
    }

    /// Splits chunk `cid` in halves while it holds more than [`CHUNK`] spans.
    fn rebalance(&mut self, cid: u32) {
        let Some(chunk) = self.chunks.get_mut(cid as usize) else {
            return;
        };
        if chunk.spans.len() <= CHUNK {
            return;
        }
        let half = chunk.spans.len() / 2;
        let moved: Vec<Span> = chunk.spans.drain(half..).collect();
        let moved_vis: u64 = moved.iter().map(Span::visible).sum();
        chunk.visible -= moved_vis;
        let new_id = to_u32(self.chunks.len());
        for s in &moved {
            self.index.insert(s.first(), new_id);
        }
        self.chunks.push(Chunk {
            spans: moved,
            visible: moved_vis,
        });
        let at = self.rank[cid as usize] as usize + 1;
        self.order.insert(at, new_id);
        self.rank.push(0);
        for (i, &c) in self.order.iter().enumerate().skip(at - 1) {
            self.rank[c as usize] = to_u32(i);
        }
        self.rebuild_fen();
        // Both halves may still be too big after many splits without inserts.
        self.rebalance(cid);
        self.rebalance(new_id);
    }

    /// The visible character at `pos` (0-based), if any.
    pub fn visible_char(&self, pos: u64) -> Option<CharId> {
        let (loc, off) = self.find_visible(pos)?;
        let s = self.span_at(loc)?;
        Some(CharId {
            agent: s.agent,
            seq: s.seq + off,
        })
    }

    /// The span holding visible position `pos` and the offset in it.
    fn find_visible(&self, mut pos: u64) -> Option<(Loc, u32)> {
        if pos >= self.visible {
            return None;
        }
        // The chunk: the longest prefix of ranks with at most `pos` visible characters.
        let n = self.fen.len() - 1;
        let mut rank = 0usize;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = rank + step;
            if next <= n && self.fen[next] <= pos {
                rank = next;
                pos -= self.fen[next];
            }
            step >>= 1;
        }
        {
            let c = &self.chunks[*self.order.get(rank)? as usize];
            for (idx, s) in c.spans.iter().enumerate() {
                let v = s.visible();
                if pos < v {
                    return Some((
                        Loc {
                            rank: to_u32(rank),
                            idx: to_u32(idx),
                        },
                        u32::try_from(pos).unwrap_or(u32::MAX),
                    ));
                }
                pos -= v;
            }
        }
        None
    }

    /// The ids of the `len` visible characters from `pos` (clamped), as `(first, len)`
    /// runs with consecutive ids of one agent merged: what [`Tree::delete_visible`]
    /// would delete, without changing anything.
    pub fn visible_runs(&self, pos: u64, len: u64) -> Vec<(CharId, u32)> {
        let mut out: Vec<(CharId, u32)> = Vec::new();
        let mut remaining = len.min(self.visible.saturating_sub(pos));
        let Some((start, mut off)) = self.find_visible(pos) else {
            return out;
        };
        let mut at = Some(start);
        while remaining > 0 {
            let Some(loc) = at.and_then(|l| self.norm(l)) else {
                break;
            };
            let Some(s) = self.span_at(loc) else {
                break;
            };
            if !s.deleted {
                let n = u64::from(s.len - off).min(remaining);
                let first = CharId {
                    agent: s.agent,
                    seq: s.seq + off,
                };
                let n32 = u32::try_from(n).unwrap_or(u32::MAX);
                match out.last_mut() {
                    Some((c, l)) if c.agent == first.agent && c.seq + *l == first.seq => *l += n32,
                    _ => out.push((first, n32)),
                }
                remaining -= n;
            }
            off = 0;
            at = Some(Loc {
                rank: loc.rank,
                idx: loc.idx + 1,
            });
        }
        out
    }

    /// Marks the span at `loc` (normalized) deleted; returns its first id and length.
    fn tombstone(&mut self, loc: Loc) -> Option<(CharId, u32)> {
        let cid = *self.order.get(loc.rank as usize)?;
        let chunk = self.chunks.get_mut(cid as usize)?;
        let s = chunk.spans.get_mut(loc.idx as usize)?;
        let (first, len, was_visible) = (s.first(), s.len, !s.deleted);
        s.deleted = true;
        if was_visible {
            self.add_visible(cid, -i64::from(len));
        }
        Some((first, len))
    }

    /// Deletes `len` visible characters from `pos` (clamped). Returns the deleted ids
    /// as `(first, len)` runs, consecutive ids of one agent merged.
    pub fn delete_visible(&mut self, pos: u64, len: u64) -> Vec<(CharId, u32)> {
        let mut out: Vec<(CharId, u32)> = Vec::new();
        let mut remaining = len.min(self.visible.saturating_sub(pos));
        let mut touched = Vec::new();
        while remaining > 0 {
            let Some((mut loc, off)) = self.find_visible(pos) else {
                break;
            };
            if off > 0 {
                self.split(loc, off);
                loc.idx += 1;
            }
            let Some(span_len) = self.span_at(loc).map(|s| s.len) else {
                break;
            };
            if u64::from(span_len) > remaining {
                self.split(loc, u32::try_from(remaining).unwrap_or(u32::MAX));
            }
            let Some((first, n)) = self.tombstone(loc) else {
                break;
            };
            touched.push(self.order[loc.rank as usize]);
            match out.last_mut() {
                Some((c, l)) if c.agent == first.agent && c.seq + *l == first.seq => *l += n,
                _ => out.push((first, n)),
            }
            remaining -= u64::from(n);
        }
        touched.sort_unstable();
        touched.dedup();
        for cid in touched {
            self.rebalance(cid);
        }
        out
    }

    /// Deletes ids `start..end` of `agent`. Returns the sub-ranges not held (yet).
    pub fn delete_ids(&mut self, agent: u32, start: u32, end: u32) -> Vec<(u32, u32)> {
        let mut missing = Vec::new();
        let mut touched = Vec::new();
        let mut at = start;
        while at < end {
            match self.locate(CharId { agent, seq: at }) {
                Some((mut loc, off)) => {
                    if off > 0 {
                        self.split(loc, off);
                        loc.idx += 1;
                    }
                    let Some(span_len) = self.span_at(loc).map(|s| s.len) else {
                        break;
                    };
                    if at + span_len > end {
                        self.split(loc, end - at);
                    }
                    let Some((_, n)) = self.tombstone(loc) else {
                        break;
                    };
                    touched.push(self.order[loc.rank as usize]);
                    at += n;
                }
                None => {
                    let next = self
                        .index
                        .range(CharId { agent, seq: at }..CharId { agent, seq: end })
                        .next()
                        .map(|(c, _)| c.seq);
                    match next {
                        Some(n) => {
                            missing.push((at, n));
                            at = n;
                        }
                        None => {
                            missing.push((at, end));
                            break;
                        }
                    }
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for cid in touched {
            self.rebalance(cid);
        }
        missing
    }

    /// Every span with its text, in document order.
    pub fn spans(&self) -> impl Iterator<Item = (&Span, &str)> + '_ {
        self.order.iter().flat_map(move |&cid| {
            self.chunks[cid as usize]
                .spans
                .iter()
                .map(move |s| (s, &self.text[s.bytes.0 as usize..s.bytes.1 as usize]))
        })
    }

    /// The visible text.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(usize::try_from(self.visible).unwrap_or(0));
        for (s, t) in self.spans() {
            if !s.deleted {
                out.push_str(t);
            }
        }
        out
    }
}

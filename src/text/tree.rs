//! Spans in document order: chunks of at most [`CHUNK`] spans with their visible
//! character counts, an order of chunks, and the run-length id index
//! ([`super::index`]) from ids to chunks. Finding a visible position walks a Fenwick
//! tree of the chunk counts, then one chunk; finding an id is one index lookup, then one
//! chunk. Adjacent tombstones that continue each other are joined (`joins`), so
//! a run of backspaces leaves one span, not one per character.
//!
//! Invariants (checked by `Tree::check` in the tests):
//! - `order` lists every chunk id once; `rank[order[i]] == i`;
//! - `index.get(id) == c` for every id of every span of chunk `c`; `spans` counts them;
//! - after [`Tree::settle`] (which every edit ends with) no chunk holds more than
//!   [`CHUNK`] spans;
//! - `chunks[c].visible` is the number of visible characters of chunk `c`, and `visible`
//!   their sum; `fen` is the Fenwick tree of those counts in `order`;
//! - spans of one agent never overlap in ids (an insert whose ids overlap held ones is
//!   refused: `TextDoc::apply_insert`); `text[s.bytes]` holds span `s`'s text;
//! - `s.seq + s.len <= u32::MAX` for every span (the wire refuses inserts past the id
//!   space and local inserts stop there), so `seq + k` for `k <= len` never overflows.

use super::CharId;
use super::index::IdIndex;

/// Spans per chunk before it is split in two.
pub const CHUNK: usize = 32;

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

/// The Lamport step of `l` and `r` joined into one span, if `r` continues `l`: both
/// tombstones, the same agent and wall clock, `r`'s ids right after `l`'s, `r` anchored
/// on `l`'s last character, one step (0 or 1) that fits both Lamport runs, and `r`'s
/// text right after `l`'s in the buffer. A joined span orders, splits and deletes
/// exactly as the two did.
fn joins(l: &Span, r: &Span) -> Option<u8> {
    let chained = l.deleted
        && r.deleted
        && l.agent == r.agent
        && r.seq == l.seq + l.len
        && r.anchor
            == Some(CharId {
                agent: l.agent,
                seq: r.seq - 1,
            })
        && l.ts == r.ts
        && l.bytes.1 == r.bytes.0;
    if !chained {
        return None;
    }
    let step = if l.len > 1 {
        l.step
    } else if r.len > 1 {
        r.step
    } else {
        u8::try_from(r.lamport.checked_sub(l.lamport)?).ok()?
    };
    let fits = step <= 1
        && (l.len == 1 || l.step == step)
        && (r.len == 1 || r.step == step)
        && r.lamport == l.lamport + u64::from(l.len) * u64::from(step);
    fits.then_some(step)
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
    index: IdIndex,
    spans: usize,
    visible: u64,
    // Fenwick tree over the chunks' visible counts, by rank (1-based): finds the chunk
    // of a visible position in O(log chunks).
    fen: Vec<u64>,
    // Chunks past CHUNK spans, split by `settle`.
    overfull: Vec<u32>,
    // Bumped by every change: a place remembered with it is valid while it is equal.
    generation: u64,
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
        self.spans
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        let spans: usize = self
            .chunks
            .iter()
            .map(|c| c.spans.capacity() * std::mem::size_of::<Span>())
            .sum();
        // A B-tree entry costs about its key and value plus node overhead.
        let index = self.index.run_count() * (std::mem::size_of::<(CharId, u32)>() + 8);
        let order = (self.order.capacity() + self.rank.capacity()) * 4 + self.fen.capacity() * 8;
        self.text.capacity() + spans + index + order + self.chunks.capacity() * 32
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
        let cid = self.index.get(id)?;
        let chunk = self.chunks.get(cid as usize)?;
        let idx = chunk
            .spans
            .iter()
            .position(|s| s.agent == id.agent && s.seq <= id.seq && id.seq - s.seq < s.len)?;
        let off = id.seq - chunk.spans[idx].seq;
        let rank = *self.rank.get(cid as usize)?;
        Some((
            Loc {
                rank,
                idx: to_u32(idx),
            },
            off,
        ))
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
        self.generation += 1;
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
        chunk.spans.insert(loc.idx as usize + 1, right);
        self.spans += 1;
        self.grew(cid);
    }

    /// Splits so that `id` ends its span; returns the place right after it (`None`
    /// when `id` is not held).
    pub fn split_after(&mut self, id: CharId) -> Option<Loc> {
        let (loc, off) = self.locate(id)?;
        self.split(loc, off + 1);
        Some(Loc {
            rank: loc.rank,
            idx: loc.idx + 1,
        })
    }

    /// Splits so that the visible character at `pos` ends its span; returns its id and
    /// the place right after it (`None` past the end).
    pub fn split_after_visible(&mut self, pos: u64) -> Option<(CharId, Loc)> {
        let (loc, off) = self.find_visible(pos)?;
        let s = self.span_at(loc)?;
        let id = CharId {
            agent: s.agent,
            seq: s.seq + off,
        };
        self.split(loc, off + 1);
        Some((
            id,
            Loc {
                rank: loc.rank,
                idx: loc.idx + 1,
            },
        ))
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
        self.index.extend(span.agent, span.seq, cid);
        self.add_visible(cid, 1);
        true
    }

    /// The count of changes so far: a [`Loc`] taken at one generation is valid while
    /// the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds `delta` visible characters to chunk `cid` (and the totals).
    fn add_visible(&mut self, cid: u32, delta: i64) {
        self.generation += 1;
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
    /// Returns the place right after it (until the next change).
    pub fn insert_span(&mut self, loc: Loc, mut span: Span, text: &str) -> Loc {
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
        let (agent, seq, len) = (span.agent, span.seq, span.len);
        let chunk = &mut self.chunks[cid as usize];
        let idx = idx.min(chunk.spans.len());
        chunk.spans.insert(idx, span);
        self.spans += 1;
        self.add_visible(cid, i64::try_from(vis).unwrap_or(i64::MAX));
        self.index.assign(agent, seq, seq.saturating_add(len), cid);
        self.grew(cid);
        Loc {
            rank: to_u32(rank),
            idx: to_u32(idx + 1),
        }
    }

    /// Notes that chunk `cid` gained spans: [`Tree::settle`] splits it if overfull.
    fn grew(&mut self, cid: u32) {
        let over = self
            .chunks
            .get(cid as usize)
            .is_some_and(|c| c.spans.len() > CHUNK);
        if over && !self.overfull.contains(&cid) {
            self.overfull.push(cid);
        }
    }

    /// Splits every chunk that grew past [`CHUNK`] spans; true if it split any (places
    /// are invalid then). Each edit ends with it, so chunks exceed the bound only within
    /// one edit.
    pub fn settle(&mut self) -> bool {
        let any = !self.overfull.is_empty();
        while let Some(cid) = self.overfull.pop() {
            self.rebalance(cid);
        }
        any
    }

    /// The last character of the span right before `loc` in its chunk, if visible.
    pub fn visible_before(&self, loc: Loc) -> Option<CharId> {
        let s = self
            .chunk_at(loc.rank)?
            .spans
            .get((loc.idx as usize).checked_sub(1)?)?;
        (!s.deleted).then_some(CharId {
            agent: s.agent,
            seq: s.seq + s.len - 1,
        })
    }

    /// Splits chunk `cid` in halves while it holds more than [`CHUNK`] spans.
    fn rebalance(&mut self, cid: u32) {
        let Some(chunk) = self.chunks.get_mut(cid as usize) else {
            return;
        };
        if chunk.spans.len() <= CHUNK {
            return;
        }
        self.generation += 1;
        let half = chunk.spans.len() / 2;
        let moved: Vec<Span> = chunk.spans.drain(half..).collect();
        let moved_vis: u64 = moved.iter().map(Span::visible).sum();
        chunk.visible -= moved_vis;
        let new_id = to_u32(self.chunks.len());
        // Their id ranges, adjacent ones joined: one index update per run.
        let mut ranges: Vec<(u32, u32, u32)> = moved
            .iter()
            .map(|s| (s.agent, s.seq, s.seq.saturating_add(s.len)))
            .collect();
        ranges.sort_unstable();
        let mut run: Option<(u32, u32, u32)> = None;
        for (a, s, e) in ranges {
            run = match run {
                Some((ra, rs, re)) if ra == a && re == s => Some((ra, rs, e)),
                Some((ra, rs, re)) => {
                    self.index.assign(ra, rs, re, new_id);
                    Some((a, s, e))
                }
                None => Some((a, s, e)),
            };
        }
        if let Some((a, s, e)) = run {
            self.index.assign(a, s, e, new_id);
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

    /// Marks the span at `loc` (normalized) deleted and joins it with a neighbouring
    /// tombstone it continues (see [`joins`]); returns its first id and length.
    fn tombstone(&mut self, loc: Loc) -> Option<(CharId, u32)> {
        let cid = *self.order.get(loc.rank as usize)?;
        let chunk = self.chunks.get_mut(cid as usize)?;
        let idx = loc.idx as usize;
        let s = chunk.spans.get_mut(idx)?;
        let (first, len, was_visible) = (s.first(), s.len, !s.deleted);
        s.deleted = true;
        // Join the next span into this one, then this one into the previous.
        let mut gone = 0;
        for at in [idx + 1, idx] {
            if at == 0 || at >= chunk.spans.len() {
                continue;
            }
            if let Some(step) = joins(&chunk.spans[at - 1], &chunk.spans[at]) {
                let r = chunk.spans.remove(at);
                let l = &mut chunk.spans[at - 1];
                l.step = step;
                l.len += r.len;
                l.bytes.1 = r.bytes.1;
                gone += 1;
            }
        }
        self.spans -= gone;
        if was_visible {
            self.add_visible(cid, -i64::from(len));
        }
        Some((first, len))
    }

    /// Deletes `len` visible characters from `pos` (clamped), calling `deleted` with
    /// each deleted run of ids `(first, len)` in document order.
    pub fn delete_visible(&mut self, pos: u64, len: u64, mut deleted: impl FnMut(CharId, u32)) {
        let mut remaining = len.min(self.visible.saturating_sub(pos));
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
            deleted(first, n);
            remaining -= u64::from(n);
        }
        self.settle();
    }

    /// Deletes ids `start..end` of `agent`. Returns the sub-ranges not held (yet).
    pub fn delete_ids(&mut self, agent: u32, start: u32, end: u32) -> Vec<(u32, u32)> {
        let mut missing = Vec::new();
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
                    at += n;
                }
                None => match self.next_held(agent, at, end) {
                    Some(n) => {
                        missing.push((at, n));
                        at = n;
                    }
                    None => {
                        missing.push((at, end));
                        break;
                    }
                },
            }
        }
        self.settle();
        missing
    }

    /// The smallest id of `agent` in `from..end` that is held.
    pub fn next_held(&self, agent: u32, from: u32, end: u32) -> Option<u32> {
        let mut runs = self.index.runs(agent, from, end).peekable();
        let mut best: Option<u32> = None;
        while let Some((start, cid)) = runs.next() {
            // Every held id below the next run's start is in the runs seen so far.
            let run_end = runs.peek().map_or(end, |r| r.0);
            if let Some(c) = self.chunks.get(cid as usize) {
                for s in &c.spans {
                    if s.agent == agent && s.seq < run_end && s.seq + s.len > start {
                        let first = s.seq.max(start);
                        best = Some(best.map_or(first, |b| b.min(first)));
                    }
                }
            }
            if best.is_some_and(|b| b < run_end) {
                break;
            }
        }
        best
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

    /// A tree holding `spans` in this order, with their texts concatenated in `text`
    /// (each span's `bytes` is set here). The caller has checked that the spans'
    /// lengths match `text` and that no two spans of one agent share an id.
    pub fn from_spans(spans: Vec<Span>, text: String) -> Tree {
        let mut t = Tree {
            text,
            ..Tree::default()
        };
        // Chunks three quarters full: room to grow before the first split.
        let per = (CHUNK * 3 / 4).max(1);
        let mut at = 0usize;
        let mut spans = spans.into_iter().peekable();
        while spans.peek().is_some() {
            let cid = to_u32(t.chunks.len());
            let mut chunk = Chunk::default();
            for mut s in spans.by_ref().take(per) {
                let text = t.text.get(at..).unwrap_or("");
                let n = text
                    .char_indices()
                    .nth(s.len as usize)
                    .map_or(text.len(), |(i, _)| i);
                s.bytes = (to_u32(at), to_u32(at + n));
                at += n;
                chunk.visible += s.visible();
                t.index
                    .assign(s.agent, s.seq, s.seq.saturating_add(s.len), cid);
                chunk.spans.push(s);
            }
            t.spans += chunk.spans.len();
            t.visible += chunk.visible;
            t.chunks.push(chunk);
            t.order.push(cid);
            t.rank.push(cid);
        }
        t.rebuild_fen();
        t
    }

    /// Checks every invariant of the module doc (tests).
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let mut spans = 0;
        let mut visible = 0;
        for (r, &cid) in self.order.iter().enumerate() {
            if self.rank[cid as usize] as usize != r {
                return Err(format!("rank of chunk {cid} is not {r}"));
            }
            let c = &self.chunks[cid as usize];
            if c.spans.len() > CHUNK {
                return Err(format!("chunk {cid} holds {} spans", c.spans.len()));
            }
            let v: u64 = c.spans.iter().map(Span::visible).sum();
            if v != c.visible {
                return Err(format!(
                    "chunk {cid} counts {} visible, holds {v}",
                    c.visible
                ));
            }
            // The Fenwick prefix up to this rank.
            let (mut i, mut prefix) = (r + 1, 0);
            while i > 0 {
                prefix += self.fen[i];
                i &= i - 1;
            }
            if prefix != visible + v {
                return Err(format!("Fenwick prefix at rank {r} is {prefix}"));
            }
            visible += v;
            spans += c.spans.len();
            for s in &c.spans {
                let text = &self.text[s.bytes.0 as usize..s.bytes.1 as usize];
                if text.chars().count() != s.len as usize || s.len == 0 {
                    return Err(format!("span {:?} holds {text:?}", s.first()));
                }
                for seq in [s.seq, s.seq + s.len - 1] {
                    let id = CharId {
                        agent: s.agent,
                        seq,
                    };
                    if self.index.get(id) != Some(cid) {
                        return Err(format!(
                            "index sends {id:?} to {:?}, not {cid}",
                            self.index.get(id)
                        ));
                    }
                }
            }
        }
        if spans != self.spans || visible != self.visible {
            return Err(format!("totals: {spans} spans, {visible} visible"));
        }
        Ok(())
    }
}

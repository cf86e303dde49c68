//! The per-agent id index: which chunk holds each character id, stored as runs.
//!
//! An entry `(agent, seq) → chunk` says that the ids of `agent` from `seq` up to the
//! next entry of that agent (or without end) are in `chunk` when held at all. A run of
//! typing, and every span split from it, stays one entry as long as its pieces stay in
//! one chunk: splitting, joining and tombstoning spans never touch the index; only a
//! new span in another chunk than its ids' run, or spans moving to a new chunk, do.
//!
//! Invariants: for every held id, [`IdIndex::get`] gives the chunk that holds it (ids
//! not held may map to any chunk, or none: callers check the chunk); every run of an
//! agent starts below `ends[agent]`, one past the largest id assigned.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::CharId;

/// Run-length map from character ids to chunk ids (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct IdIndex {
    runs: BTreeMap<CharId, u32>,
    // Per agent: one past the largest id ever assigned (nothing is held beyond it).
    ends: Vec<u32>,
}

impl IdIndex {
    /// Number of runs.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The chunk that holds `id`, if it is held.
    pub fn get(&self, id: CharId) -> Option<u32> {
        let (k, &c) = self.runs.range(..=id).next_back()?;
        (k.agent == id.agent).then_some(c)
    }

    /// Maps id `seq` of `agent` to `chunk`, where id `seq − 1` already is (a run of
    /// typing grew by one): free when `seq` is a new id, as every run ends below the
    /// largest id assigned.
    pub fn extend(&mut self, agent: u32, seq: u32, chunk: u32) {
        match self.ends.get_mut(agent as usize) {
            Some(end) if seq == *end => *end = seq.saturating_add(1),
            _ => self.assign(agent, seq, seq.saturating_add(1), chunk),
        }
    }

    /// Maps ids `start..end` of `agent` to `chunk`, leaving every other id as it was.
    pub fn assign(&mut self, agent: u32, start: u32, end: u32, chunk: u32) {
        if start >= end {
            return;
        }
        let s = CharId { agent, seq: start };
        let e = CharId { agent, seq: end };
        let a = agent as usize;
        if self.ends.len() <= a {
            self.ends.resize(a + 1, 0);
        }
        let old_end = self.ends[a];
        self.ends[a] = old_end.max(end);
        // Already so: one run of `chunk` starts before `start` and covers `..=end`.
        if let Some((k, &c)) = self.runs.range(..=e).next_back()
            && k.agent == agent
            && k.seq < start
            && c == chunk
        {
            return;
        }
        // Past every id assigned before nothing is held: no run resumes after `end`.
        let tail = if end >= old_end { None } else { self.get(e) };
        let before = self
            .runs
            .range(..s)
            .next_back()
            .filter(|(k, _)| k.agent == agent)
            .map(|(_, &c)| c);
        loop {
            let Some(k) = self.inner_keys(s, e).next() else {
                break;
            };
            self.runs.remove(&k);
        }
        if before != Some(chunk) {
            self.runs.insert(s, chunk);
        }
        match tail {
            Some(t) if t != chunk => {
                self.runs.insert(e, t);
            }
            _ => {}
        }
    }

    /// Keys in `s..=e`.
    fn inner_keys(&self, s: CharId, e: CharId) -> impl Iterator<Item = CharId> + '_ {
        self.runs
            .range((Bound::Included(s), Bound::Included(e)))
            .map(|(k, _)| *k)
    }

    /// The runs of `agent` that cover ids `from..end`, in id order: `(first id of the
    /// run clipped to from, chunk)`.
    pub fn runs(&self, agent: u32, from: u32, end: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        let f = CharId { agent, seq: from };
        let first = self
            .runs
            .range(..=f)
            .next_back()
            .filter(|(k, _)| k.agent == agent)
            .map(|(_, &c)| (from, c));
        let rest = self
            .runs
            .range((
                Bound::Excluded(f),
                Bound::Excluded(CharId { agent, seq: end }),
            ))
            .map(|(k, &c)| (k.seq, c));
        first.into_iter().chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn typing_in_one_chunk_is_one_run() {
        let mut ix = IdIndex::default();
        for seq in 0..100 {
            ix.assign(0, seq, seq + 1, 7);
        }
        assert_eq!(ix.run_count(), 1);
        assert_eq!(ix.get(CharId { agent: 0, seq: 50 }), Some(7));
        assert_eq!(ix.get(CharId { agent: 1, seq: 50 }), None);
        ix.assign(0, 40, 60, 9);
        assert_eq!(ix.run_count(), 3);
        assert_eq!(ix.get(CharId { agent: 0, seq: 39 }), Some(7));
        assert_eq!(ix.get(CharId { agent: 0, seq: 40 }), Some(9));
        assert_eq!(ix.get(CharId { agent: 0, seq: 60 }), Some(7));
        ix.assign(0, 40, 60, 7);
        assert_eq!(ix.run_count(), 1);
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn agrees_with_a_plain_map(
            ops in prop::collection::vec((0u32..3, 0u32..60, 1u32..12, 0u32..4), 1..80)
        ) {
            let mut ix = IdIndex::default();
            let mut model: HashMap<(u32, u32), u32> = HashMap::new();
            for &(agent, start, n, chunk) in &ops {
                ix.assign(agent, start, start + n, chunk);
                for seq in start..start + n {
                    model.insert((agent, seq), chunk);
                }
                for (&(agent, seq), &c) in &model {
                    prop_assert_eq!(ix.get(CharId { agent, seq }), Some(c));
                }
            }
            // The runs over a range name every chunk its mapped ids are in.
            for agent in 0..3 {
                let runs: Vec<(u32, u32)> = ix.runs(agent, 10, 40).collect();
                for seq in 10..40 {
                    if let Some(&c) = model.get(&(agent, seq)) {
                        let run = runs.iter().rev().find(|r| r.0 <= seq);
                        prop_assert_eq!(run.map(|r| r.1), Some(c));
                    }
                }
            }
        }
    }
}

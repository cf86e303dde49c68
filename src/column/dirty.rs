//! [`RowBits`]: a growable bitmap over rows, the change feed's unit (one per column,
//! one for the node records; see [`crate::graph::Changes`]).
//!
//! Invariant: a bit is set for every row [`RowBits::mark`]ed since the last
//! [`RowBits::take`], and for no other row; marking costs one shift and one OR (plus a
//! resize when the row is beyond every row marked before).

use super::Row;

/// A set of rows as a bitmap (bit `r % 64` of word `r / 64`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowBits {
    words: Vec<u64>,
}

impl RowBits {
    /// Adds `row`.
    #[inline]
    pub fn mark(&mut self, row: Row) {
        let (w, b) = (row.index() / 64, row.index() % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    /// True when `row` is in the set.
    pub fn contains(&self, row: Row) -> bool {
        self.words
            .get(row.index() / 64)
            .is_some_and(|w| w & (1 << (row.index() % 64)) != 0)
    }

    /// True when no row is in the set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of rows in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The rows in the set, ascending.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let base = u32::try_from(i * 64).unwrap_or(u32::MAX);
            Ones(w).map(move |b| Row(base.saturating_add(b)))
        })
    }

    /// The bitmap's words: bit `r % 64` of word `r / 64` is row `r` (for a renderer
    /// that scans 64 rows at a time).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The set, leaving this one empty.
    pub fn take(&mut self) -> RowBits {
        std::mem::take(self)
    }

    /// Adds every row of `other`.
    pub fn union(&mut self, other: &RowBits) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
}

/// The set bits of a word, lowest first.
struct Ones(u64);

impl Iterator for Ones {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let b = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_kept_until_taken() {
        let mut s = RowBits::default();
        assert!(s.is_empty());
        for r in [3, 0, 64, 200, 3] {
            s.mark(Row(r));
        }
        assert_eq!(s.len(), 4);
        assert!(s.contains(Row(64)) && !s.contains(Row(65)) && !s.contains(Row(10_000)));
        let rows: Vec<u32> = s.rows().map(|r| r.0).collect();
        assert_eq!(rows, [0, 3, 64, 200]);
        let taken = s.take();
        assert!(s.is_empty() && s.rows().next().is_none());
        assert_eq!(taken.len(), 4);
        let mut u = RowBits::default();
        u.mark(Row(1));
        u.union(&taken);
        assert_eq!(
            u.rows().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 3, 64, 200]
        );
    }
}

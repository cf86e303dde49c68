//! [`BaseStore`]: the compaction bases (a cell's value at the compaction point), stored
//! the way the graph stores properties — one typed column per path — rather than one
//! hash-map entry per cell. A compacted million-node scene has millions of bases;
//! here they cost a few bytes each, are written by appending to flat arrays, and
//! snapshot and restore as arrays.
//!
//! Invariants:
//! - every node key with a base has a *slot* (`slot_of[kid]`), handed out densely on
//!   its first base and never taken back; `kid_of[slot]` is the inverse;
//! - `has[p]` is a bitmap over slots: bit `s` set ⇔ cell (`kid_of[s]`, `p`) has a base;
//!   the base is the cell of row `s` in `values` at path `p` when present there, and
//!   "absent" when not;
//! - `len` counts the set bits over all paths.

use crate::column::{PropertyStore, Row, Value, ValueRef};
use crate::ids::{KeyId, PathId, Stamp};

const NO_SLOT: u32 = u32::MAX;

/// Compaction bases by (node key, path) (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct BaseStore {
    slot_of: Vec<u32>,
    kid_of: Vec<KeyId>,
    has: Vec<Vec<u64>>,
    values: PropertyStore,
    len: usize,
}

impl BaseStore {
    /// The base of cell (`kid`, `path`): `None` when it has none, `Some(None)` when it
    /// was absent at the compaction point.
    #[inline]
    pub fn get(&self, kid: KeyId, path: PathId) -> Option<Option<(ValueRef<'_>, Stamp)>> {
        let slot = *self.slot_of.get(kid.index())?;
        if slot == NO_SLOT {
            return None;
        }
        let words = self.has.get(path.index())?;
        let w = words.get(slot as usize / 64)?;
        if w >> (slot % 64) & 1 == 0 {
            return None;
        }
        Some(self.values.get(path, Row(slot)))
    }

    /// The slot of `kid`, handed out on first use.
    fn slot(&mut self, kid: KeyId) -> u32 {
        let i = kid.index();
        if i >= self.slot_of.len() {
            self.slot_of.resize(i + 1, NO_SLOT);
        }
        if self.slot_of[i] == NO_SLOT {
            self.slot_of[i] = u32::try_from(self.kid_of.len()).unwrap_or(NO_SLOT);
            self.kid_of.push(kid);
        }
        self.slot_of[i]
    }

    /// Records the base of cell (`kid`, `path`) (`None`: absent).
    pub fn set(&mut self, kid: KeyId, path: PathId, base: Option<(Value, Stamp)>) {
        let slot = self.slot(kid);
        let p = path.index();
        if p >= self.has.len() {
            self.has.resize_with(p + 1, Vec::new);
        }
        let words = &mut self.has[p];
        let w = slot as usize / 64;
        if w >= words.len() {
            words.resize(w + 1, 0);
        }
        let bit = 1u64 << (slot % 64);
        if words[w] & bit == 0 {
            words[w] |= bit;
            self.len += 1;
        }
        match base {
            Some((v, s)) => self.values.set(path, Row(slot), v, s),
            None => {
                self.values.take(path, Row(slot));
            }
        }
    }

    /// Number of cells with a base.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no cell has a base.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every path with a base under `kid`.
    pub fn paths_of(&self, kid: KeyId) -> impl Iterator<Item = PathId> + '_ {
        let slot = self.slot_of.get(kid.index()).copied().unwrap_or(NO_SLOT);
        self.has.iter().enumerate().filter_map(move |(p, words)| {
            let on = slot != NO_SLOT
                && words
                    .get(slot as usize / 64)
                    .is_some_and(|w| w >> (slot % 64) & 1 == 1);
            on.then(|| PathId::from_index(p))
        })
    }

    /// The parts: the key of each slot, the per-path bitmaps over slots, the values
    /// (rows are slots).
    pub(crate) fn parts(&self) -> (&[KeyId], &[Vec<u64>], &PropertyStore) {
        (&self.kid_of, &self.has, &self.values)
    }

    /// A store from its parts (see [`BaseStore::parts`]); `n_keys` bounds the key ids.
    ///
    /// # Errors
    /// A key with two slots, a key id out of range, or a bitmap longer than the slots.
    pub(crate) fn from_parts(
        kid_of: Vec<KeyId>,
        has: Vec<Vec<u64>>,
        values: PropertyStore,
        n_keys: usize,
    ) -> Result<BaseStore, String> {
        let mut slot_of = vec![NO_SLOT; n_keys];
        for (s, k) in kid_of.iter().enumerate() {
            let slot = slot_of
                .get_mut(k.index())
                .ok_or_else(|| format!("base key index {} out of range", k.index()))?;
            if *slot != NO_SLOT {
                return Err(format!("base key index {} has two slots", k.index()));
            }
            *slot = s as u32;
        }
        let words = kid_of.len().div_ceil(64);
        let mut len = 0;
        for h in &has {
            if h.len() > words {
                return Err("base bitmap longer than the slots".into());
            }
            len += h.iter().map(|w| w.count_ones() as usize).sum::<usize>();
        }
        // Bits past the last slot would name no key.
        let tail = kid_of.len() % 64;
        if tail != 0
            && has
                .iter()
                .any(|h| h.get(words - 1).is_some_and(|w| w >> tail != 0))
        {
            return Err("base bitmap names a slot past the last".into());
        }
        Ok(BaseStore {
            slot_of,
            kid_of,
            has,
            values,
            len,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::ids::PathTable;

    #[test]
    fn bases_are_kept_per_cell() {
        let mut paths = PathTable::default();
        let (p, q) = (paths.intern("p"), paths.intern("q"));
        let (a, b) = (KeyId::from_index(3), KeyId::from_index(1));
        let st = Stamp::ZERO;
        let mut s = BaseStore::default();
        assert_eq!(s.get(a, p), None);
        s.set(a, p, Some((Value::Number(1.0), st)));
        s.set(b, q, None);
        s.set(a, q, Some((Value::Str("x".into()), st)));
        assert_eq!(s.get(a, p), Some(Some((ValueRef::Number(1.0), st))));
        assert_eq!(s.get(b, q), Some(None));
        assert_eq!(s.get(b, p), None);
        assert_eq!(s.len(), 3);
        s.set(a, p, None);
        assert_eq!(s.get(a, p), Some(None));
        assert_eq!(s.len(), 3);
        assert_eq!(s.paths_of(a).collect::<Vec<_>>(), vec![p, q]);
        let (kids, has, values) = s.parts();
        let back = BaseStore::from_parts(kids.to_vec(), has.to_vec(), values.clone(), 4).unwrap();
        assert_eq!(back.get(a, q), s.get(a, q));
        assert_eq!(back.len(), 3);
        assert!(BaseStore::from_parts(vec![a, a], vec![], PropertyStore::default(), 4).is_err());
        assert!(
            BaseStore::from_parts(vec![a], vec![vec![2]], PropertyStore::default(), 4).is_err()
        );
    }
}

//! [`U32s`]: a sequence of `u32` stored in the smallest of three forms — one value for
//! all, every value, or arithmetic runs (`base + k·step` for the `k`-th entry of a
//! run). Row-indexed arrays of a scene are mostly runs: keys interned in row order,
//! children numbered consecutively, the nodes of one message created at one stamp,
//! string ends of equal-length names.
//!
//! Invariants: `len` is the sequence's length; in [`U32Enc::Runs`], runs are sorted by
//! `start`, the first starts at 0, and run `k` covers `start[k]..start[k+1]` (the last
//! up to `len`). Reads of an index past `len`, or of a malformed run list, are `None`.

use rkyv::{Archive, Serialize};

/// An encoded `u32` sequence.
#[derive(Archive, Serialize, Debug, Default)]
pub struct U32s {
    /// Number of entries.
    pub len: u32,
    /// The entries.
    pub enc: U32Enc,
}

/// How a [`U32s`] stores its entries.
#[derive(Archive, Serialize, Debug)]
pub enum U32Enc {
    /// Every entry is this value.
    Same(u32),
    /// Every entry, in order.
    Each(Vec<u32>),
    /// Arithmetic runs.
    Runs(Vec<Run>),
}

impl Default for U32Enc {
    fn default() -> Self {
        U32Enc::Same(0)
    }
}

/// One arithmetic run: entry `start + k` is `base + k·step` (wrapping).
#[derive(Archive, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First index of the run.
    pub start: u32,
    /// Its value.
    pub base: u32,
    /// The difference between consecutive entries (wrapping).
    pub step: u32,
}

impl U32s {
    /// Encodes `v` in its smallest form.
    pub fn encode(v: Vec<u32>) -> U32s {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        let Some(&first) = v.first() else {
            return U32s::default();
        };
        if v.iter().all(|&x| x == first) {
            return U32s {
                len,
                enc: U32Enc::Same(first),
            };
        }
        // Greedy runs (12 bytes each); give up once they would take half the plain form.
        let budget = v.len() / 2;
        let mut runs = Vec::new();
        let mut i = 0;
        while i < v.len() {
            if runs.len() * 3 >= budget {
                return U32s {
                    len,
                    enc: U32Enc::Each(v),
                };
            }
            let step = v.get(i + 1).map_or(0, |&n| n.wrapping_sub(v[i]));
            let mut j = i + 1;
            while j < v.len() && v[j] == v[j - 1].wrapping_add(step) {
                j += 1;
            }
            runs.push(Run {
                start: i as u32,
                base: v[i],
                step,
            });
            i = j;
        }
        U32s {
            len,
            enc: U32Enc::Runs(runs),
        }
    }

    /// Bytes the encoding takes in the archive (for size reports).
    pub fn bytes(&self) -> usize {
        match &self.enc {
            U32Enc::Same(_) => 4,
            U32Enc::Each(v) => 4 * v.len(),
            U32Enc::Runs(r) => 12 * r.len(),
        }
    }
}

impl ArchivedU32s {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len.to_native() as usize
    }

    /// Entry `i`.
    pub fn at(&self, i: usize) -> Option<u32> {
        if i >= self.len() {
            return None;
        }
        match &self.enc {
            ArchivedU32Enc::Same(x) => Some(x.to_native()),
            ArchivedU32Enc::Each(v) => v.get(i).map(|x| x.to_native()),
            ArchivedU32Enc::Runs(runs) => {
                let k = runs.partition_point(|r| r.start.to_native() as usize <= i);
                let r = runs.get(k.checked_sub(1)?)?;
                let off = (i - r.start.to_native() as usize) as u32;
                Some(
                    r.base
                        .to_native()
                        .wrapping_add(off.wrapping_mul(r.step.to_native())),
                )
            }
        }
    }

    /// Every entry, decoded in one pass; `None` when the encoding is malformed or
    /// claims more than `max` entries (a crafted length must not allocate gigabytes).
    pub fn to_vec(&self, max: usize) -> Option<Vec<u32>> {
        let n = self.len();
        if n > max {
            return None;
        }
        match &self.enc {
            ArchivedU32Enc::Same(x) => Some(vec![x.to_native(); n]),
            ArchivedU32Enc::Each(v) => {
                (v.len() == n).then(|| v.iter().map(|x| x.to_native()).collect())
            }
            ArchivedU32Enc::Runs(runs) => {
                let mut out = Vec::with_capacity(n);
                for (k, r) in runs.iter().enumerate() {
                    let start = r.start.to_native() as usize;
                    let end = runs.get(k + 1).map_or(n, |x| x.start.to_native() as usize);
                    if start != out.len() || end < start || end > n {
                        return None;
                    }
                    let (base, step) = (r.base.to_native(), r.step.to_native());
                    let mut x = base;
                    for _ in start..end {
                        out.push(x);
                        x = x.wrapping_add(step);
                    }
                }
                (out.len() == n).then_some(out)
            }
        }
    }

    /// Bytes the encoding takes (for size reports).
    pub fn bytes(&self) -> usize {
        match &self.enc {
            ArchivedU32Enc::Same(_) => 4,
            ArchivedU32Enc::Each(v) => 4 * v.len(),
            ArchivedU32Enc::Runs(r) => 12 * r.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(v: Vec<u32>) -> (Vec<u32>, Vec<Option<u32>>, usize) {
        let enc = U32s::encode(v.clone());
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&enc).unwrap_or_default();
        let a = rkyv::access::<ArchivedU32s, rkyv::rancor::Error>(&bytes);
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        let at = (0..=v.len()).map(|i| a.at(i)).collect();
        (a.to_vec(usize::MAX).unwrap_or_default(), at, a.bytes())
    }

    #[test]
    fn runs_compress_ramps_and_steps() {
        let ramp: Vec<u32> = (5..10_005).collect();
        let (back, at, bytes) = round_trip(ramp.clone());
        assert_eq!(back, ramp);
        assert_eq!(at[10_000], None);
        assert_eq!(bytes, 12);
        // Parents of a fan-out-10 tree: runs of ten equal values.
        let parents: Vec<u32> = (1..10_001u32).map(|k| (k - 1) / 10).collect();
        let (back, _, bytes) = round_trip(parents.clone());
        let enc = U32s::encode(parents.clone());
        let buf = rkyv::to_bytes::<rkyv::rancor::Error>(&enc).unwrap_or_default();
        let a = rkyv::access::<ArchivedU32s, rkyv::rancor::Error>(&buf)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.to_vec(parents.len() - 1), None, "over the bound");
        assert_eq!(back, parents);
        assert!(bytes < 4 * parents.len() / 2, "{bytes}");
        let wrap = vec![u32::MAX, 0, 1, 2, u32::MAX];
        assert_eq!(round_trip(wrap.clone()).0, wrap);
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn any_sequence_round_trips(v in prop::collection::vec(prop_oneof![0u32..4, any::<u32>()], 0..200)) {
            let (back, at, _) = round_trip(v.clone());
            prop_assert_eq!(&back, &v);
            let want: Vec<Option<u32>> = v.iter().copied().map(Some).chain([None]).collect();
            prop_assert_eq!(at, want);
        }
    }
}

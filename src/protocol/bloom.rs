//! The Bloom filter of `sync` (`filter`, `count`): a client that does not number its
//! messages sends the ids it holds this way (the format is in `docs/protocol.md`).
//!
//! Invariant: no false negatives — every inserted id is reported as contained.

/// A Bloom filter over message ids (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BloomFilter {
    bits: Vec<u8>,
    count: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(bytes: &[u8], seed: u64) -> u64 {
    bytes
        .iter()
        .fold(seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

impl BloomFilter {
    /// An empty filter sized for `n` ids at false-positive rate `p` (clamped to
    /// `1e-9..0.5`); at least 64 bits.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::protocol::BloomFilter;
    /// let f = BloomFilter::with_capacity(1000, 0.01);
    /// assert!(!f.contains("alice:1"));
    /// let f = BloomFilter::of(["alice:1", "bob:2"], 0.01);
    /// assert!(f.contains("alice:1"));
    /// ```
    pub fn with_capacity(n: usize, p: f64) -> BloomFilter {
        let p = p.clamp(1e-9, 0.5);
        let ln2 = std::f64::consts::LN_2;
        let m = (-(n.max(1) as f64) * p.ln() / (ln2 * ln2)).ceil().max(64.0);
        // Rounded up to whole bytes; the cast saturates for absurd sizes.
        let bytes = ((m as u64).div_ceil(8)) as usize;
        BloomFilter {
            bits: vec![0; bytes],
            count: 0,
        }
    }

    /// A filter as it came in a `sync` frame.
    pub fn from_parts(bits: Vec<u8>, count: u64) -> BloomFilter {
        BloomFilter { bits, count }
    }

    /// The bit array.
    pub fn bytes(&self) -> &[u8] {
        &self.bits
    }

    /// How many ids were inserted.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn m(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    fn k(&self) -> u64 {
        let k = (self.m() as f64 / self.count.max(1) as f64 * std::f64::consts::LN_2).round();
        (k as u64).clamp(1, 16)
    }

    fn positions(&self, id: &str, k: u64) -> impl Iterator<Item = u64> + use<> {
        let m = self.m().max(1);
        let h1 = fnv(id.as_bytes(), FNV_OFFSET);
        let h2 = fnv(&[0xff], fnv(id.as_bytes(), FNV_OFFSET)) | 1;
        (0..k).map(move |j| h1.wrapping_add(j.wrapping_mul(h2)) % m)
    }

    fn set_all(&mut self, id: &str) {
        let k = self.k();
        for bit in self.positions(id, k) {
            self.bits[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// True when `id` may have been inserted (false: it certainly was not).
    pub fn contains(&self, id: &str) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        self.positions(id, self.k())
            .all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    /// A filter of `ids`, sized for them at rate `p`. (The hash count depends on the
    /// number of ids, so a filter is built whole, never added to.)
    pub fn of<'a>(ids: impl IntoIterator<Item = &'a str>, p: f64) -> BloomFilter {
        let ids: Vec<&str> = ids.into_iter().collect();
        let mut f = BloomFilter::with_capacity(ids.len(), p);
        f.count = ids.len() as u64;
        for id in ids {
            f.set_all(id);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_about_the_asked_false_positive_rate() {
        let ids: Vec<String> = (0..10_000)
            .map(|i| format!("client-{}:{i}", i % 37))
            .collect();
        let f = BloomFilter::of(ids.iter().map(String::as_str), 0.01);
        assert!(ids.iter().all(|id| f.contains(id)));
        let fp = (0..10_000)
            .filter(|i| f.contains(&format!("other-{i}:{i}")))
            .count();
        assert!(fp < 300, "{fp} false positives in 10,000 (asked 1%)");
        // The wire form gives the same answers.
        let g = BloomFilter::from_parts(f.bytes().to_vec(), f.count());
        assert!(ids.iter().all(|id| g.contains(id)));
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let f = BloomFilter::from_parts(Vec::new(), 0);
        assert!(!f.contains("a:1"));
        let f = BloomFilter::with_capacity(0, 0.01);
        assert!(!f.contains("a:1"));
    }
}

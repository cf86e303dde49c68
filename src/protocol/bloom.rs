//! The Bloom filter of `sync` (`filter`, `count`): a client that does not number its
//! messages sends the ids it holds this way.
//!
//! Format (also in `docs/protocol.md`; there is no other implementation to match):
//! the filter is a bit array of *m* = 8 × `bytes().len()` bits, bit *i* being bit
//! *i* mod 8 (least significant first) of byte *i* / 8; `count` is the number of ids
//! inserted. The number of hashes is *k* = clamp(round(*m* / max(`count`, 1) × ln 2),
//! 1, 16). For an id's UTF-8 bytes, *h1* = FNV-1a 64 of the bytes and *h2* = FNV-1a
//! 64 of the bytes followed by one `0xFF` byte, with its lowest bit set; the id sets
//! bits (*h1* + *j* × *h2*) mod *m* for *j* = 0 … *k* − 1, in wrapping 64-bit
//! arithmetic.
//!
//! Invariant: no false negatives — every inserted id is reported as contained, by
//! this filter and by any filter rebuilt from its wire form ([`BloomFilter::from_parts`]).
//! *k* only shrinks as ids are added, and an id's bits for *k* hashes include those
//! for fewer, so bits set earlier never miss.

/// A Bloom filter over message ids (see the module doc).
#[derive(Clone)]
pub struct BloomFilter {
    bits: Vec<u8>,
    count: u64,
    /// `(h1, h2)` of every id inserted here (not sent): when *k* drops, the bits are
    /// set again from them, so the filter equals one built whole ([`BloomFilter::of`]).
    /// Empty for a filter from the wire, whose ids are unknown.
    hashes: Vec<(u64, u64)>,
}

/// Filters compare by their wire form (bits and count).
impl PartialEq for BloomFilter {
    fn eq(&self, other: &BloomFilter) -> bool {
        self.bits == other.bits && self.count == other.count
    }
}

impl Eq for BloomFilter {}

impl std::fmt::Debug for BloomFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BloomFilter")
            .field("bits", &self.m())
            .field("count", &self.count)
            .field("k", &self.k())
            .finish()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The largest filter [`BloomFilter::with_capacity`] makes: 2^31 bits (256 MiB).
const MAX_BITS: f64 = (1u64 << 31) as f64;

fn fnv(bytes: &[u8], seed: u64) -> u64 {
    bytes
        .iter()
        .fold(seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// `(h1, h2)` of an id.
fn hashes(id: &str) -> (u64, u64) {
    let h1 = fnv(id.as_bytes(), FNV_OFFSET);
    (h1, fnv(&[0xff], h1) | 1)
}

impl BloomFilter {
    /// An empty filter sized for `n` ids at false-positive rate `p` (clamped to
    /// `1e-9..=0.5`; NaN reads as 0.5): *m* = ⌈−*n* ln *p* / (ln 2)²⌉ bits, at
    /// least 64 and at most 2^31, rounded up to whole bytes.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::protocol::BloomFilter;
    /// let mut f = BloomFilter::with_capacity(1000, 0.01);
    /// assert!(!f.contains("alice:1"));
    /// f.insert("alice:1");
    /// assert!(f.contains("alice:1"));
    /// let g = BloomFilter::of(["alice:1", "bob:2"], 0.01);
    /// assert!(g.contains("bob:2"));
    /// ```
    pub fn with_capacity(n: usize, p: f64) -> BloomFilter {
        // A NaN rate asks for the smallest filter.
        let p = if p.is_nan() { 0.5 } else { p.clamp(1e-9, 0.5) };
        let ln2 = std::f64::consts::LN_2;
        let m = (-(n.max(1) as f64) * p.ln() / (ln2 * ln2))
            .ceil()
            .clamp(64.0, MAX_BITS);
        BloomFilter {
            bits: vec![0; (m as u64).div_ceil(8) as usize],
            count: 0,
            hashes: Vec::new(),
        }
    }

    /// A filter as it came in a `sync` frame (`filter`, `count`).
    pub fn from_parts(bits: Vec<u8>, count: u64) -> BloomFilter {
        BloomFilter {
            bits,
            count,
            hashes: Vec::new(),
        }
    }

    /// A filter of `ids`, sized for them at rate `p`.
    pub fn of<'a>(ids: impl IntoIterator<Item = &'a str>, p: f64) -> BloomFilter {
        let hashes: Vec<(u64, u64)> = ids.into_iter().map(hashes).collect();
        let mut f = BloomFilter::with_capacity(hashes.len(), p);
        f.count = hashes.len() as u64;
        f.hashes = hashes;
        f.set_known(f.k());
        f
    }

    /// Adds an id. The result is the filter [`BloomFilter::of`] would build from all
    /// ids inserted so far (into a filter of this size), whatever the order; into a
    /// filter from the wire it only adds bits (no false negatives either way). A
    /// filter of no bits (from the wire) grows to 64.
    pub fn insert(&mut self, id: &str) {
        if self.bits.is_empty() {
            self.bits = vec![0; 8];
        }
        let before = self.k();
        self.count = self.count.saturating_add(1);
        let k = self.k();
        let h = hashes(id);
        self.hashes.push(h);
        if k != before && self.hashes.len() as u64 == self.count {
            // Fewer hashes now: set the bits of every id again (at most 15 times in
            // a filter's life, as k goes from 16 down to 1).
            self.bits.fill(0);
            self.set_known(k);
        } else {
            self.set(h, k);
        }
    }

    /// The bit array, as sent in `filter`.
    pub fn bytes(&self) -> &[u8] {
        &self.bits
    }

    /// How many ids were inserted, as sent in `count`.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when `id` may have been inserted (false: it certainly was not).
    pub fn contains(&self, id: &str) -> bool {
        let m = self.m();
        if m == 0 {
            return false;
        }
        let (h1, h2) = hashes(id);
        (0..self.k()).all(|j| {
            let bit = h1.wrapping_add(j.wrapping_mul(h2)) % m;
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }

    fn m(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    fn k(&self) -> u64 {
        let k = (self.m() as f64 / self.count.max(1) as f64 * std::f64::consts::LN_2).round();
        (k as u64).clamp(1, 16)
    }

    fn set(&mut self, (h1, h2): (u64, u64), k: u64) {
        let m = self.m();
        if m == 0 {
            return;
        }
        for j in 0..k {
            let bit = h1.wrapping_add(j.wrapping_mul(h2)) % m;
            if let Some(b) = self.bits.get_mut((bit / 8) as usize) {
                *b |= 1 << (bit % 8);
            }
        }
    }

    fn set_known(&mut self, k: u64) {
        let hashes = std::mem::take(&mut self.hashes);
        for &h in &hashes {
            self.set(h, k);
        }
        self.hashes = hashes;
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
        assert!(
            (30..300).contains(&fp),
            "{fp} false positives in 10,000 (asked 1%)"
        );
        // The wire form gives the same answers.
        let g = BloomFilter::from_parts(f.bytes().to_vec(), f.count());
        assert!(ids.iter().all(|id| g.contains(id)));
        assert_eq!(f, g);
    }

    #[test]
    fn inserting_one_by_one_builds_the_same_filter() {
        let ids: Vec<String> = (0..3_000).map(|i| format!("c{}:{i}", i % 5)).collect();
        let mut f = BloomFilter::with_capacity(ids.len(), 0.02);
        for (n, id) in ids.iter().enumerate() {
            f.insert(id);
            // No false negatives at any point, here and in the wire form.
            if n % 500 == 0 {
                let g = BloomFilter::from_parts(f.bytes().to_vec(), f.count());
                assert!(ids[..=n].iter().all(|id| f.contains(id) && g.contains(id)));
            }
        }
        assert_eq!(f, BloomFilter::of(ids.iter().map(String::as_str), 0.02));

        // Into a filter from the wire: bits are only added.
        let mut w = BloomFilter::from_parts(f.bytes().to_vec(), f.count());
        w.insert("late:1");
        assert!(w.contains("late:1") && ids.iter().all(|id| w.contains(id)));
        let mut e = BloomFilter::from_parts(Vec::new(), 0);
        e.insert("x:1");
        assert!(e.contains("x:1") && e.bytes().len() == 8);
    }

    #[test]
    fn sizes_and_the_hash_count_follow_the_format() {
        // -1000 ln 0.01 / ln² 2 = 9585.06 → 9586 bits → 1199 bytes; k = 7.
        let f = BloomFilter::of((0..1000).map(|_| "x"), 0.01);
        assert_eq!(f.bytes().len(), 1199);
        assert_eq!(f.k(), 7);
        assert_eq!(BloomFilter::with_capacity(0, 0.01).bytes().len(), 8);
        assert_eq!(BloomFilter::with_capacity(1, f64::NAN).bytes().len(), 8);
        assert_eq!(BloomFilter::from_parts(vec![0; 8], 0).k(), 16);
        assert_eq!(BloomFilter::from_parts(vec![0; 8], 1_000).k(), 1);
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(hashes("a").0, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hashes("a").1 & 1, 1);
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let f = BloomFilter::from_parts(Vec::new(), 0);
        assert!(!f.contains("a:1"));
        let f = BloomFilter::with_capacity(0, 0.01);
        assert!(!f.contains("a:1"));
    }
}

//! Helpers shared by the integration tests.

use serde_json::Value as Json;
use vuer_rtc::op::{Message, Op};
use vuer_rtc::workload::SplitMix64;

/// The crate's seeded PRNG, with a shuffle for reproducible delivery orders.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Shuffles `msgs` and inserts duplicates of about a fifth of them.
pub fn shuffled_with_duplicates(msgs: &[Message], seed: u64) -> Vec<Message> {
    let mut rng = Rng::new(seed);
    let mut out = msgs.to_vec();
    for _ in 0..msgs.len().div_ceil(5) {
        if !msgs.is_empty() {
            out.push(msgs[rng.below(msgs.len())].clone());
        }
    }
    rng.shuffle(&mut out);
    out
}

/// The checker's comparison: key order ignored, arrays in order, numbers within
/// `max(1e-6, 1e-5·max(|a|, |b|))`, everything else exact. Returns the first difference.
pub fn first_diff(expected: &Json, actual: &Json, path: &str) -> Option<String> {
    match (expected, actual) {
        (Json::Number(a), Json::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let tol = f64::max(1e-6, 1e-5 * a.abs().max(b.abs()));
            ((a - b).abs() > tol).then(|| format!("{path}: expected {a}, got {b}"))
        }
        (Json::Object(e), Json::Object(a)) => {
            for k in e.keys() {
                if !a.contains_key(k) {
                    return Some(format!("{path}.{k}: missing"));
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    return Some(format!("{path}.{k}: unexpected"));
                }
            }
            e.iter()
                .find_map(|(k, v)| first_diff(v, &a[k], &format!("{path}.{k}")))
        }
        (Json::Array(e), Json::Array(a)) => {
            if e.len() != a.len() {
                return Some(format!(
                    "{path}: expected {} elements, got {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .find_map(|(i, (x, y))| first_diff(x, y, &format!("{path}[{i}]")))
        }
        (e, a) => (e != a).then(|| format!("{path}: expected {e}, got {a}")),
    }
}

/// A message from its parts.
pub fn msg(client: &str, lt: u64, ts: f64, ops: Vec<Op>) -> Message {
    Message {
        id: format!("{client}:{lt}"),
        client: client.into(),
        clock: Default::default(),
        lt,
        ts,
        ops,
    }
}

// The one seeded proptest configuration, shared with the crate's unit tests.
#[path = "../src/test_support.rs"]
mod seeded;

/// The proptest configuration of the property suites: [`seeded::proptest_config`]
/// (seeded, scaled by `PROPTEST_CASES` / `PROPTEST_RNG_SEED`), without failure files.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        failure_persistence: None,
        ..seeded::proptest_config(cases)
    }
}

/// Counts the bytes each thread allocates, so a test can bound what one call costs
/// (the allocations of other test threads do not count).
pub struct CountingAlloc;

#[expect(
    unsafe_code,
    reason = "a counting allocator is how a test measures what a decode allocates"
)]
mod counting {

    use super::CountingAlloc;

    thread_local! {
        pub(super) static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
        pub(super) static PEAK: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    }

    // SAFETY: every call is forwarded to the system allocator unchanged; the counters are
    // const-initialised thread locals, which never allocate.
    unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            note(layout.size() as isize);
            // SAFETY: forwarded with the caller's layout.
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            note(-(layout.size() as isize));
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
            note(new as isize - layout.size() as isize);
            // SAFETY: forwarded with the caller's pointer, layout and size.
            unsafe { std::alloc::System.realloc(ptr, layout, new) }
        }
    }

    fn note(delta: isize) {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + delta;
            live.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
    }

    #[global_allocator]
    static ALLOC: CountingAlloc = CountingAlloc;
}
use counting::{LIVE, PEAK};

/// Runs `f` and returns its result with the most bytes it held allocated at once on
/// this thread (beyond what was live when it started).
pub fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(std::cell::Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(std::cell::Cell::get);
    (out, usize::try_from(peak - base).unwrap_or(0))
}

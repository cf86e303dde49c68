//! Test-only: the one proptest configuration of every property test, the crate's unit
//! tests (`crate::test_support`, behind `#[cfg(test)]`) and the integration suites
//! (`tests/support.rs` includes this file) alike.
//!
//! Seeded, so CI runs the same cases every time, and scaled by environment variables
//! for long runs:
//! - `PROPTEST_CASES=N` (default: the `cases` the test asks for);
//! - `PROPTEST_RNG_SEED=N` for another fixed seed, or `random` for a fresh one.
//!
//! Failures persist as proptest does by default (`proptest-regressions/`, beside the
//! source path), and the saved cases run first; the integration suites switch that off.

/// The seed every property test starts from unless `PROPTEST_RNG_SEED` says otherwise.
pub const SEED: u64 = 0x5EED;

/// The configuration of a property test that asks for `cases` cases (see the module
/// doc).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(s) => RngSeed::Fixed(s.parse().unwrap_or(SEED)),
        None => RngSeed::Fixed(SEED),
    };
    Config {
        cases,
        rng_seed,
        ..Config::default()
    }
}

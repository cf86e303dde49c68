//! Fuzz target: JSON bytes → `Replica::apply_bytes` never panics; the state JSON
//! parses; the journal re-encoded and re-applied (batch, reversed one by one) and
//! `apply_messages` on it give the same `to_json()` (`vuer_rtc_fuzz::check_apply`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vuer_rtc_fuzz::check_apply(data, vuer_rtc::wire::Format::Json);
});

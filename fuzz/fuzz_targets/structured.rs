//! Fuzz target: `arbitrary` histories (every op kind, `text.*` in position and CRDT
//! form, undo/redo, duplicates, shuffled delivery, random batches) → a `Replica` fed
//! the batches and `apply_messages` on the set print byte-identical `to_json()`, also
//! when delivered as JSON and MessagePack bytes (`vuer_rtc_fuzz::structured`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vuer_rtc_fuzz::structured::check_bytes(data);
});

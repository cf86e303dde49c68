//! Fuzz target: bytes → `SnapshotView::open` (walked whole) and `Replica::from_snapshot`
//! never panic; a restored replica's `snapshot()` reopens and restores to the same state.
//! The first byte picks the mode: bit 0 rewrites the header (magic, version, length,
//! CRC32C) to fit the rest, bit 1 hands `from_snapshot` a possibly misaligned buffer
//! (`vuer_rtc_fuzz::check_snapshot`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vuer_rtc_fuzz::check_snapshot(data);
});

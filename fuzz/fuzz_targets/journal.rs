//! Fuzz target: bytes as a journal segment file → `read_journal` and `Journal::open`
//! never panic and recover the same messages, each of which round-trips through JSON and
//! MessagePack. The first byte picks the mode: bit 0 puts a valid 16-byte header in
//! front, bit 1 fixes every frame's CRC32C (`vuer_rtc_fuzz::check_journal`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vuer_rtc_fuzz::check_journal(data);
});

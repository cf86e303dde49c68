//! The checks behind the fuzz targets in `fuzz_targets/` (one function per target, so a
//! target file is one line and the checks can be run on a saved input by hand):
//!
//! - [`check_apply`]: bytes → `Replica::apply_bytes` never panics, the state JSON parses,
//!   and the journal re-encoded, re-decoded and re-applied (as a batch, one by one in
//!   reverse, and through the sequential model `apply_messages`) gives the same state.
//! - [`check_snapshot`]: bytes → `SnapshotView::open` (walked whole) and
//!   `Replica::from_snapshot` never panic; a restored replica's own snapshot reopens and
//!   restores to the same state.
//! - [`check_journal`]: bytes as a journal segment → `read_journal` and `Journal::open`
//!   never panic, agree, and every recovered message round-trips through both codecs.
//! - [`structured`]: generated histories → a replica fed shuffled batches with
//!   duplicates agrees with `apply_messages`, byte for byte.
//!
//! Every check panics (which libFuzzer reports as a crash) when an invariant fails.

pub mod checks;
pub mod structured;

pub use checks::*;

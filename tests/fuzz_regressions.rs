//! Fuzz regressions: every input saved under `tests/fuzz_regressions/<target>/` goes
//! through the same check as its cargo-fuzz target (`fuzz/src/checks.rs`, included
//! here; see docs/fuzzing.md). Each crash the fuzzers found is saved there; the five
//! found on 2026-12-02 (a reused and a zero own clock counter, a root-alias cell lost
//! on a late root insert, a flat `node.remove` path changed by the round trip) also
//! have a test of their own, so a regression names its bug.

use std::path::{Path, PathBuf};

use vuer_rtc::wire::Format;

#[allow(
    dead_code,
    reason = "shared with the fuzz crate; not every check is used here"
)]
#[path = "../fuzz/src/checks.rs"]
mod checks;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// Runs one saved input (`<target>/<file>`) through its target's check.
fn run(rel: &str) {
    let path = dir().join(rel);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match rel.split('/').next() {
        Some("apply_json") => checks::check_apply(&data, Format::Json),
        Some("apply_msgpack") => checks::check_apply(&data, Format::MessagePack),
        Some("snapshot") => checks::check_snapshot(&data),
        Some("journal") => checks::check_journal(&data),
        other => panic!("{rel}: no check for target {other:?}"),
    }
}

#[test]
fn saved_fuzz_inputs_pass_their_checks() {
    let mut n = 0;
    for target in std::fs::read_dir(dir()).unwrap().flatten() {
        for file in std::fs::read_dir(target.path()).unwrap().flatten() {
            let rel = format!(
                "{}/{}",
                target.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            run(&rel);
            n += 1;
        }
    }
    assert!(n >= 5, "the saved inputs are missing: {n}");
    println!("{n} saved fuzz inputs checked");
}

#[test]
fn clock_counter_reuse() {
    run("apply_json/clock-counter-reuse.json");
}

#[test]
fn clock_counter_zero() {
    run("apply_json/clock-counter-zero.json");
}

#[test]
fn root_alias_late_insert() {
    run("apply_json/root-alias-late-insert.json");
}

#[test]
fn flat_remove_path_round_trip() {
    run("apply_json/flat-remove-path.json");
}

#[test]
fn flat_remove_path_journal() {
    run("journal/flat-remove-path.seg");
}

#[test]
fn overlapping_child_ranges_cannot_blow_up_a_snapshot_walk() {
    // A crafted archive whose nodes all claim the same children made the view's
    // `to_json` build a gigabyte from 3.6 KB; `SnapshotView::open` now refuses it.
    let (_, peak) = crate::support::peak_alloc(|| run("snapshot/overlapping-child-ranges"));
    assert!(peak < 64 << 20, "{peak} bytes allocated");
}

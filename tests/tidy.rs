//! Repository hygiene: every Rust file opens with a `//!` module doc that says what it
//! owns (rust-analyzer's tidy check, STYLE.md §3).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 10);
    let missing: Vec<_> = files
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
}

/// `proptest!` blocks in `dir`'s Rust files whose first line is not `config`.
fn unseeded_proptests(dir: &Path, config: &str) -> (usize, Vec<String>) {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let (mut blocks, mut bad) = (0, Vec::new());
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() != "proptest! {" {
                continue;
            }
            blocks += 1;
            let first = lines[i + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty());
            if !first.is_some_and(|f| f.starts_with(config)) {
                bad.push(format!("{}:{}", p.display(), i + 1));
            }
        }
    }
    (blocks, bad)
}

/// Every property test is seeded, in the crate (`crate::test_support`) as in the
/// integration suites (`crate::support`, which includes the same file): CI runs the
/// same cases every time.
#[test]
fn every_proptest_is_seeded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, config, at_least) in [
        (
            "src",
            "#![proptest_config(crate::test_support::proptest_config(",
            6,
        ),
        (
            "tests",
            "#![proptest_config(crate::support::proptest_config(",
            7,
        ),
    ] {
        let (blocks, bad) = unseeded_proptests(&root.join(dir), config);
        assert!(
            blocks >= at_least,
            "{dir}: only {blocks} proptest! blocks found"
        );
        assert!(
            bad.is_empty(),
            "proptest! blocks that do not start with `{config}…`: {bad:?}"
        );
    }
}

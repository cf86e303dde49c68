//! Repository hygiene, executable so that `docs/ARCHITECTURE.md` cannot drift (STYLE.md
//! §3, §8; rust-analyzer's `xtask/src/tidy.rs`):
//!
//! - every Rust file opens with a `//!` module doc that says what it owns;
//! - every `proptest!` block is seeded;
//! - the layering: which `crate::` module each module of `src/` may name ([`LAYERS`]),
//!   and the two boundaries that go below module level ([`THROUGH`]);
//! - the allowlists of the files that may use rayon ([`RAYON`]) and `unsafe`
//!   ([`UNSAFE`]), each with its reason, and a `// SAFETY:` comment on every `unsafe`
//!   block;
//! - the README's code that mirrors an example (`<!-- mirrors examples/X.rs -->` before
//!   the block) is an excerpt of that example, so it compiles and runs.
//!
//! The scans read code only: comments, string literals and unit-test code (a
//! `#[cfg(test)] mod … {` block runs to the end of its file, `tests.rs` files) are
//! blanked first, so docs may mention anything.

use std::collections::{BTreeMap, BTreeSet};
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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under the given top-level directories, sorted, with its path
/// relative to the crate root (`/`-separated).
fn files_under(dirs: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for d in dirs {
        rust_files(&root().join(d), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let mut files = files_under(&["src", "tests", "benches", "examples"]);
    files.push((
        "build.rs".into(),
        std::fs::read_to_string(root().join("build.rs")).unwrap(),
    ));
    assert!(files.len() > 10);
    let missing: Vec<_> = files
        .iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(p, _)| p)
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
}

// ---------------------------------------------------------------------------------------
// Code only: comments and string literals blanked.

/// `text` with comments, string and char literals replaced by spaces (newlines kept, so
/// line numbers stay). Good enough for this crate's code: no nested block comments.
fn code_of(text: &str) -> String {
    scrub(text, false)
}

/// Copies the literal quoted by `q` that starts at `c[i]` through `blank` (escapes
/// included); returns the index after its closing quote.
fn copy_quoted(
    c: &[char],
    mut i: usize,
    q: char,
    out: &mut String,
    blank: &dyn Fn(&mut String, char),
) -> usize {
    out.push(q);
    i += 1;
    while i < c.len() && c[i] != q {
        if c[i] == '\\' {
            blank(out, c[i]);
            i += 1;
        }
        if i < c.len() {
            blank(out, c[i]);
            i += 1;
        }
    }
    out.push(q);
    i + 1
}

/// `text` with comments removed (`keep_strings`) or also string and char literals
/// blanked.
fn scrub(text: &str, keep_strings: bool) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank_comment = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let blank = |out: &mut String, ch: char| {
        out.push(if keep_strings || ch == '\n' { ch } else { ' ' });
    };
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                blank_comment(&mut out, c[i]);
                i += 1;
            }
            i += 2;
        } else if at(0) == 'r'
            && !ident_before
            && (at(1) == '"'
                || (at(1) == '#' && {
                    let mut k = 1;
                    while at(k) == '#' {
                        k += 1;
                    }
                    at(k) == '"'
                }))
        {
            let mut hashes = 0;
            i += 1;
            while c[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            out.push('"');
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            out.push('"');
        } else if at(0) == '"' {
            i = copy_quoted(&c, i, '"', &mut out, &blank);
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A char literal (a lifetime has no closing quote right after one char).
            i = copy_quoted(&c, i, '\'', &mut out, &blank);
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The non-test code of a file: [`code_of`], cut where a `#[cfg(test)] mod … {` block
/// starts (unit tests sit at the bottom of each file); empty for a `tests.rs`.
fn library_code(path: &str, text: &str) -> String {
    if path.ends_with("/tests.rs") {
        return String::new();
    }
    let code = code_of(text);
    let lines: Vec<&str> = code.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines.get(i + 1).is_some_and(|l| {
                    let l = l.trim();
                    l.starts_with("mod ") && l.ends_with('{')
                })
        })
        .unwrap_or(lines.len());
    lines[..end].join("\n")
}

// ---------------------------------------------------------------------------------------
// Layering.

/// Which `crate::` modules the code of each part of `src/` may name (besides itself,
/// `ids` and `error`'s siblings listed explicitly). The key is a path under `src/`
/// without `.rs`; a file takes the longest key that prefixes it. It is the data flow of
/// `docs/ARCHITECTURE.md`: `wire` decodes into `op`; `batch` orders; `apply` is the op
/// semantics over `graph` + `column`; `replica` merges; `snapshot`, `persist` and
/// `store` sit on top; `text` and `ids` are leaves used by many. The table itself must
/// have no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("ids", &[]),
    ("error", &[]),
    ("text", &["ids"]),
    // `text` for the wire types of CRDT-form text ops.
    // `ids` for `MAX_SAFE_INT`, the bound of every integer from outside.
    ("op", &["error", "ids", "text"]),
    ("wire", &["error", "op", "text"]),
    ("batch", &["op"]),
    // `op` for `Json`, `EulerOrder` and the number formatting; `text` because a cell can
    // hold a `TextDoc` (`Value::Text`).
    ("column", &["ids", "op", "text"]),
    ("graph", &["column", "ids", "op"]),
    (
        "apply",
        &["batch", "column", "error", "graph", "ids", "op", "text"],
    ),
    (
        "replica",
        &[
            "apply", "column", "error", "graph", "ids", "op", "text", "wire",
        ],
    ),
    (
        "snapshot",
        &["column", "graph", "ids", "op", "replica", "text", "wire"],
    ),
    // The journal uses `wire` and nothing of the replica.
    ("persist/journal", &["op", "wire"]),
    ("persist", &["op", "replica", "snapshot", "wire"]),
    (
        "store",
        &[
            "apply", "column", "error", "graph", "ids", "op", "replica", "snapshot", "wire",
        ],
    ),
    ("workload", &["error", "ids", "op", "replica", "wire"]),
    // The frames of the sync protocol: messages through `wire`, nothing of the replica.
    ("protocol", &["error", "op", "wire"]),
    (
        "server",
        &[
            "error", "ids", "op", "persist", "protocol", "replica", "snapshot", "wire",
        ],
    ),
    ("client", &["error", "op", "protocol", "store", "wire"]),
    // The load generator: light connections through `protocol`, full replicas through
    // `client`; `workload` for the seeded PRNG.
    ("loadtest", &["client", "op", "protocol", "workload"]),
];

/// Boundaries below module level: code of the first part names the second module only
/// through these paths (`crate::` left out; a capitalised name is a root re-export).
const THROUGH: &[(&str, &str, &[&str])] = &[
    // The snapshot reads the replica's internals only as plain records.
    (
        "snapshot",
        "replica",
        &["Replica", "replica::parts", "replica::bases"],
    ),
    // The durable replica uses the replica through its public API only.
    (
        "persist",
        "replica",
        &["Replica", "BatchReport", "CompactReport", "ReplicaStats"],
    ),
];

/// The modules `src/lib.rs` re-exports each root item from (`pub use m::{A, b}`).
fn root_items() -> BTreeMap<String, String> {
    let lib = code_of(&std::fs::read_to_string(root().join("src/lib.rs")).unwrap());
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let (module, items) = rest.split_once("::").unwrap();
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split_whitespace().last().unwrap_or("");
            if !name.is_empty() {
                out.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

/// Every `crate::…` path in `code` with its line: `crate::{a::b, C}` gives `a::b` and
/// `C`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let path_end = |s: &str| {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(s.len())
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `some_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group (nested groups belong to their item).
            let (mut depth, mut start) = (0, 0);
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        let item = group[start..k].trim();
                        if !item.is_empty() {
                            out.push((line_of(at), item[..path_end(item)].to_owned()));
                        }
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let item = group[start..k].trim();
                        out.push((line_of(at), item[..path_end(item)].to_owned()));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push((
                line_of(at),
                rest[..path_end(rest)].trim_end_matches(':').to_owned(),
            ));
        }
    }
    out
}

/// The part of `src/` a file belongs to: the longest [`LAYERS`] key that prefixes it.
fn part_of(rel: &str) -> Option<&'static str> {
    let p = rel.strip_prefix("src/")?.trim_end_matches(".rs");
    LAYERS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| p == *k || p.starts_with(&format!("{k}/")))
        .max_by_key(|k| k.len())
}

/// The layering violations of the library code in `files` (relative path, text).
fn layering_violations(files: &[(String, String)]) -> Vec<String> {
    let items = root_items();
    let mut bad = Vec::new();
    for (rel, text) in files {
        if rel == "src/lib.rs" || rel == "src/test_support.rs" || rel.starts_with("src/bin/") {
            continue;
        }
        let Some(part) = part_of(rel) else {
            bad.push(format!("{rel}: not in tidy.rs LAYERS (add its module)"));
            continue;
        };
        let own = part.split('/').next().unwrap();
        let allowed = LAYERS.iter().find(|(k, _)| *k == part).unwrap().1;
        for (line, path) in crate_paths(&library_code(rel, text)) {
            let first = path.split("::").next().unwrap_or("");
            let module = if LAYERS.iter().any(|(k, _)| *k == first) {
                first.to_owned()
            } else if let Some(m) = items.get(first) {
                m.clone()
            } else {
                bad.push(format!(
                    "{rel}:{line}: `crate::{path}` names no module or root item"
                ));
                continue;
            };
            if module == own {
                continue;
            }
            if !allowed.contains(&module.as_str()) {
                bad.push(format!(
                    "{rel}:{line}: `crate::{path}`: {part} may not use `{module}` (tidy.rs LAYERS)"
                ));
                continue;
            }
            for (from, to, via) in THROUGH {
                if *from == own
                    && module == *to
                    && !via
                        .iter()
                        .any(|v| path == *v || path.starts_with(&format!("{v}::")))
                {
                    bad.push(format!(
                        "{rel}:{line}: `crate::{path}`: {from} uses {to} only through {via:?} (tidy.rs THROUGH)"
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn modules_use_only_the_modules_below_them() {
    let files = files_under(&["src"]);
    assert!(files.len() > 40, "{} files", files.len());
    let bad = layering_violations(&files);
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));

    // The table itself flows one way: no module reaches itself.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, deps) in LAYERS {
        let own = k.split('/').next().unwrap();
        edges
            .entry(own)
            .or_default()
            .extend(deps.iter().filter(|d| **d != own));
    }
    fn reaches<'a>(
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        from: &'a str,
        target: &str,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        edges
            .get(from)
            .into_iter()
            .flatten()
            .any(|&d| d == target || (seen.insert(d) && reaches(edges, d, target, seen)))
    }
    for m in edges.keys() {
        assert!(
            !reaches(&edges, m, m, &mut BTreeSet::new()),
            "LAYERS has a cycle through `{m}`"
        );
    }
}

#[test]
fn the_layering_check_catches_a_forbidden_import() {
    // What the check sees, on made-up files: each forbidden form is reported with its
    // file and line; the allowed ones are not.
    let files = [
        (
            "src/graph/scene.rs".to_owned(),
            "//! doc: crate::replica is fine in a comment\nuse crate::column::Value;\nuse crate::{ids::KeyId,\n    apply::step};\nlet s = \"crate::store\";\n".to_owned(),
        ),
        (
            "src/snapshot/write.rs".to_owned(),
            "use crate::Replica;\nuse crate::replica::parts::ValueRec;\nuse crate::replica::merge::Placed;\n".to_owned(),
        ),
        (
            "src/persist/journal.rs".to_owned(),
            "use crate::wire;\nfn f() -> crate::BatchReport { todo!() }\n#[cfg(test)]\nmod tests {\n    use crate::replica::Replica;\n}\n".to_owned(),
        ),
    ];
    let bad = layering_violations(&files);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(
        bad[0].starts_with("src/graph/scene.rs:3: `crate::apply::step`"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].starts_with("src/snapshot/write.rs:3: `crate::replica::merge::Placed`"),
        "{}",
        bad[1]
    );
    assert!(
        bad[2].starts_with(
            "src/persist/journal.rs:2: `crate::BatchReport`: persist/journal may not use `replica`"
        ),
        "{}",
        bad[2]
    );
}

// ---------------------------------------------------------------------------------------
// Allowlists.

/// The files whose code may use rayon, and why. Everything else runs on the calling
/// thread.
const RAYON: &[(&str, &str)] = &[
    (
        "src/replica/merge.rs",
        "the batched merge folds the columns in parallel, one task per column",
    ),
    (
        "src/snapshot/write.rs",
        "snapshot writing sorts the node keys and encodes the columns in parallel",
    ),
    (
        "src/bin/vuer-rtc.rs",
        "`--threads N` installs a rayon pool of N workers around the command",
    ),
    (
        "tests/replica.rs",
        "checks that pools of 1 and 2 threads give the model's bytes",
    ),
];

/// The files whose code may contain `unsafe` (or opt into `unsafe_code`), and why.
/// Unsafe code is denied crate-wide (`Cargo.toml [lints.rust]`).
const UNSAFE: &[(&str, &str)] = &[
    (
        "src/snapshot/view.rs",
        "`SnapshotView::open_unchecked`: rkyv's unchecked access, O(1), for bytes this process wrote",
    ),
    ("src/snapshot/tests.rs", "tests `open_unchecked`"),
    (
        "src/wire/fast.rs",
        "`utf8`: `from_utf8_unchecked` on bytes just checked to be ASCII (tested with ASCII, other UTF-8 and invalid bytes)",
    ),
    (
        "benches/main.rs",
        "opts the bench binary into `unsafe_code` for `open_unchecked`",
    ),
    ("benches/stages/snapshot.rs", "measures `open_unchecked`"),
    (
        "src/bin/cli/alloc.rs",
        "the binary's global allocator: mimalloc with an optional count of live bytes (`bench`'s replica heap)",
    ),
    (
        "tests/support.rs",
        "a counting global allocator: how a test bounds what one decode allocates",
    ),
];

fn uses_rayon(code: &str) -> Vec<usize> {
    let words = [
        "rayon",
        "par_iter",
        "into_par_iter",
        "par_iter_mut",
        "par_bridge",
    ];
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| {
                    words.contains(&w)
                        || w.starts_with("par_sort")
                        || w.starts_with("par_chunks")
                        || w.starts_with("par_extend")
                })
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn uses_unsafe(code: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == "unsafe" || w == "unsafe_code")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Files (outside `allow`) whose code `uses` something, and allowed files that no
/// longer do.
fn allowlist_violations(
    files: &[(String, String)],
    allow: &[(&str, &str)],
    uses: fn(&str) -> Vec<usize>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, text) in files {
        let lines = uses(&code_of(text));
        let allowed = allow.iter().any(|(f, _)| f == rel);
        if !lines.is_empty() && !allowed {
            bad.push(format!("{rel}: lines {lines:?} (not allowlisted)"));
        }
        if lines.is_empty() && allowed {
            bad.push(format!("{rel}: allowlisted but no longer uses it"));
        }
    }
    for (f, _) in allow {
        if !files.iter().any(|(rel, _)| rel == f) {
            bad.push(format!("{f}: allowlisted but missing"));
        }
    }
    bad
}

/// `unsafe {` blocks not directly under a `// SAFETY:` comment.
fn undocumented_unsafe_blocks(rel: &str, text: &str) -> Vec<String> {
    let code = code_of(text);
    let (code, text): (Vec<&str>, Vec<&str>) = (code.lines().collect(), text.lines().collect());
    let mut bad = Vec::new();
    for (i, l) in code.iter().enumerate() {
        if !l.contains("unsafe {") {
            continue;
        }
        let comment: Vec<&str> = text[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("//"))
            .collect();
        if !comment.iter().any(|c| c.starts_with("// SAFETY:")) {
            bad.push(format!(
                "{rel}:{}: `unsafe` block without a `// SAFETY:` comment",
                i + 1
            ));
        }
    }
    bad
}

fn all_code_files() -> Vec<(String, String)> {
    let mut files = files_under(&["src", "tests", "benches", "examples"]);
    // This file names what it looks for.
    files.retain(|(rel, _)| rel != "tests/tidy.rs");
    files
}

#[test]
fn only_allowlisted_files_use_rayon() {
    let bad = allowlist_violations(&all_code_files(), RAYON, uses_rayon);
    assert!(
        bad.is_empty(),
        "rayon outside tidy.rs RAYON:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_allowlisted_files_use_unsafe_and_every_block_says_why() {
    let files = all_code_files();
    let bad = allowlist_violations(&files, UNSAFE, uses_unsafe);
    assert!(
        bad.is_empty(),
        "unsafe outside tidy.rs UNSAFE:\n{}",
        bad.join("\n")
    );
    let bad: Vec<String> = files
        .iter()
        .flat_map(|(rel, text)| undocumented_unsafe_blocks(rel, text))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("unsafe_code = \"deny\""),
        "Cargo.toml denies unsafe_code"
    );
}

#[test]
fn the_allowlist_checks_catch_a_stray_use() {
    let files = [
        (
            "src/apply/mod.rs".to_owned(),
            "//! rayon and unsafe in a comment are fine\nlet s = \"unsafe { par_iter }\";\nlet x = v.par_iter().sum();\nlet y = unsafe { f() };\n".to_owned(),
        ),
        ("src/replica/merge.rs".to_owned(), "use rayon::prelude::*;\n".to_owned()),
        ("src/snapshot/write.rs".to_owned(), "fn f() {}\n".to_owned()),
    ];
    let rayon = allowlist_violations(&files, RAYON, uses_rayon);
    assert_eq!(
        rayon,
        [
            "src/apply/mod.rs: lines [3] (not allowlisted)",
            "src/snapshot/write.rs: allowlisted but no longer uses it",
            "src/bin/vuer-rtc.rs: allowlisted but missing",
            "tests/replica.rs: allowlisted but missing",
        ]
    );
    let unsafe_ = allowlist_violations(&files[..1], &[], uses_unsafe);
    assert_eq!(unsafe_, ["src/apply/mod.rs: lines [4] (not allowlisted)"]);
    assert_eq!(
        undocumented_unsafe_blocks(&files[0].0, &files[0].1),
        ["src/apply/mod.rs:4: `unsafe` block without a `// SAFETY:` comment"]
    );
    let documented =
        "// SAFETY: f has no preconditions.\n// (A second line.)\nlet y = unsafe { f() };\n";
    assert!(undocumented_unsafe_blocks("x.rs", documented).is_empty());
}

// ---------------------------------------------------------------------------------------
// Seeded proptests.

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
        let (blocks, bad) = unseeded_proptests(&root().join(dir), config);
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

// ---------------------------------------------------------------------------------------
// README code that mirrors the examples.

/// Code with comments dropped, every whitespace character removed, and the commas
/// that only end a list (before a closing bracket, or ending the text) dropped: what
/// rustfmt changes when it wraps a line.
fn squeezed(code: &str) -> String {
    let s: String = scrub(code, true)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let s = s.replace(",)", ")").replace(",]", "]").replace(",}", "}");
    s.strip_suffix(',').unwrap_or(&s).to_owned()
}

/// Where a README block that mirrors `example` is not an excerpt of it: each line of
/// the block (comments dropped, whitespace removed) must be found in the example's code
/// (the same way), in order.
fn excerpt_mismatches(block: &str, example: &str) -> Vec<String> {
    let ex = squeezed(example);
    let mut from = 0;
    let mut bad = Vec::new();
    for line in block.lines() {
        let l = squeezed(line);
        if l.is_empty() {
            continue;
        }
        match ex[from..].find(&l) {
            Some(k) => from += k + l.len(),
            None => bad.push(line.trim().to_owned()),
        }
    }
    bad
}

/// The README's `rust` blocks under a `<!-- mirrors examples/X.rs -->` line.
fn mirrored_blocks(readme: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        let Some(file) = l
            .trim()
            .strip_prefix("<!-- mirrors ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(lines.next().map(str::trim), Some("```rust"), "after {l}");
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push((file.to_owned(), block.join("\n")));
    }
    out
}

#[test]
fn readme_code_is_an_excerpt_of_the_examples() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = mirrored_blocks(&readme);
    assert!(
        blocks.len() >= 8,
        "only {} mirrored README blocks",
        blocks.len()
    );
    let mut bad = Vec::new();
    for (file, block) in &blocks {
        let example = std::fs::read_to_string(root().join(file))
            .unwrap_or_else(|e| panic!("README mirrors {file}: {e}"));
        for line in excerpt_mismatches(block, &example) {
            bad.push(format!("README line not in {file} (in order): {line}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_excerpt_check_catches_a_drift() {
    let example = "fn main() {\n    // Create.\n    let mut s = create_graph(\"a\", |m| {\n        send(m);\n    });\n    s.commit(\"x\"); // the first\n    s.undo();\n}\n";
    let good = "let mut s = create_graph(\"a\", |m| { send(m); });\ns.commit(\"x\");   // a README comment\n\ns.undo();";
    assert!(excerpt_mismatches(good, example).is_empty());
    assert_eq!(
        excerpt_mismatches("s.undo();\ns.commit(\"x\");", example),
        ["s.commit(\"x\");"],
        "out of order"
    );
    assert_eq!(
        excerpt_mismatches("s.commit(\"y\");", example),
        ["s.commit(\"y\");"],
        "a string differs"
    );
}

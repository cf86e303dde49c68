//! The `vuer-rtc` binary: `replay` prints the canonical state whatever the file order,
//! and malformed input exits non-zero with one error line and no output.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vuer-rtc"))
}

fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vuer-rtc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn replay(args: &[&str]) -> (i32, String, String) {
    let out = bin().arg("replay").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn example() -> String {
    format!("{}/examples/scene.json", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn replay_example_is_order_independent() {
    let (code, out, err) = replay(&[&example()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nodes"]["cube"]["properties"]["health"], 65);

    let mut msgs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(example()).unwrap()).unwrap();
    msgs.reverse();
    let rev = tmp("reversed.json", &serde_json::to_vec(&msgs).unwrap());
    let (code, out2, _) = replay(&[rev.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out, out2);
    for b in ["1", "3"] {
        let (code, out3, err) = replay(&["--batch", b, rev.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, out3, "--batch {b}");
    }
}

#[test]
fn stdin_and_msgpack() {
    let (_, expected, _) = replay(&[&example()]);
    let mp = bin()
        .args(["convert", &example(), "--to", "msgpack"])
        .output()
        .unwrap();
    assert!(mp.status.success());
    let mut child = bin()
        .args(["replay", "-", "--format", "msgpack"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&mp.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn malformed_input_exits_nonzero_with_one_line() {
    let cases: [(&str, &[u8], &[&str]); 4] = [
        ("truncated.json", br#"[{"id": "a:1", "client": "a", "lt": 1, "ops": [{"ot": "#, &["malformed JSON"]),
        (
            "wrong.json",
            br#"[{"id": "a:1", "client": "a", "lt": 1, "ops": [{"ot": "vector3.set", "key": "n", "path": "p", "value": "up"}]}]"#,
            &["\"a:1\"", "op #0", "vector3.set"],
        ),
        (
            "unknown.json",
            br#"[{"id": "a:1", "client": "a", "lt": 1, "ops": [{"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n"}}, {"ot": "warp.drive", "key": "n"}]}]"#,
            &["\"a:1\"", "op #1", "warp.drive"],
        ),
        ("empty.json", b"", &["malformed JSON"]),
    ];
    for (name, bytes, needles) in cases {
        let p = tmp(name, bytes);
        let (code, out, err) = replay(&[p.to_str().unwrap()]);
        assert_ne!(code, 0, "{name}");
        assert!(out.is_empty(), "{name}: partial output {out}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: {err} lacks {n}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let (code, _, err) = replay(&["/nonexistent/file.json"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn workload_output_replays() {
    let out = bin()
        .args(["workload", "--messages", "50", "--nodes", "200"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let msgs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        msgs.len(),
        2 + 50,
        "2 scene messages of 100 inserts, then 50 edits"
    );
    let p = tmp("workload.json", &out.stdout);
    let (code, state, err) = replay(&["--batch", "7", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(v["nodes"].as_object().unwrap().len(), 200);
}

fn vuer(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A fresh path in the test's temp directory (nothing written).
fn tmp_path(name: &str) -> String {
    let p = tmp(name, b"");
    std::fs::remove_file(&p).unwrap();
    p.to_str().unwrap().to_owned()
}

/// `snapshot create INPUT -o OUT`, checking its one line; returns OUT.
fn create(input: &str, out: &str) -> String {
    let (code, stdout, err) = vuer(&["snapshot", "create", input, "-o", out]);
    assert_eq!(code, 0, "snapshot create {input}: {err}");
    assert!(
        stdout.starts_with(&format!("wrote {out}: ")) && stdout.ends_with(" journaled messages\n"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    out.to_owned()
}

fn dump(snap: &str) -> String {
    let (code, out, err) = vuer(&["snapshot", "dump", snap]);
    assert_eq!(code, 0, "snapshot dump {snap}: {err}");
    out
}

fn inspect_json(snap: &str) -> serde_json::Value {
    let (code, out, err) = vuer(&["snapshot", "inspect", "--json", snap]);
    assert_eq!(code, 0, "snapshot inspect --json {snap}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The messages of every public conformance case (the copies in `tests/conformance/`,
/// as `tests/conformance.rs` reads them), each written to its own file (named after
/// `prefix`, so that tests running at the same time do not rewrite each other's files).
fn case_files(prefix: &str) -> Vec<(String, std::path::PathBuf)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the conformance cases are missing: {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 100,
        "expected the public cases in {}, found {}",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let case: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let msgs = serde_json::to_vec(&case["messages"]).unwrap();
            (name.clone(), tmp(&format!("{prefix}-{name}.json"), &msgs))
        })
        .collect()
}

#[test]
fn snapshot_dump_prints_what_replay_prints_for_every_case() {
    let (mut checked, mut refused) = (0, Vec::new());
    for (name, file) in case_files("dump") {
        let file = file.to_str().unwrap();
        let (code, expected, err) = replay(&[file]);
        if code != 0 {
            refused.push(format!("{name}: {err}"));
            continue;
        }
        let snap = create(file, &tmp_path(&format!("case-{name}.snap")));
        assert_eq!(dump(&snap), expected, "{name}: dump differs from replay");
        let (code, pretty, err) = vuer(&["snapshot", "dump", "--pretty", &snap]);
        assert_eq!(code, 0, "{name}: {err}");
        let (_, replay_pretty, _) = replay(&["--pretty", file]);
        assert_eq!(pretty, replay_pretty, "{name}: dump --pretty differs");

        let state: serde_json::Value = serde_json::from_str(&expected).unwrap();
        let info = inspect_json(&snap);
        assert_eq!(
            info["nodes"].as_u64(),
            Some(state["nodes"].as_object().unwrap().len() as u64),
            "{name}: inspect --json nodes"
        );
        checked += 1;
    }
    let _ = writeln!(
        std::io::stderr(),
        "snapshot cli: {checked} cases dumped as replayed, {} refused by replay",
        refused.len()
    );
    assert!(
        refused.is_empty(),
        "replay refused cases:\n{}",
        refused.join("\n")
    );
    assert!(checked >= 100, "too few cases ran: {checked}");
}

#[test]
fn snapshot_from_a_journal_directory_equals_one_from_the_file() {
    let biggest = case_files("journal")
        .into_iter()
        .max_by_key(|(_, p)| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .1;
    for (i, file) in [std::path::PathBuf::from(example()), biggest]
        .iter()
        .enumerate()
    {
        let file = file.to_str().unwrap();
        let dir = tmp_path(&format!("journal-{i}"));
        let (code, out, err) = vuer(&["journal", "append", &dir, file, "--fsync", "never"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("appended 0 "), "{out}");

        let from_file = create(file, &tmp_path(&format!("from-file-{i}.snap")));
        let from_dir = create(&dir, &tmp_path(&format!("from-dir-{i}.snap")));
        let (_, expected, _) = replay(&[file]);
        assert_eq!(dump(&from_file), expected, "{file}");
        assert_eq!(dump(&from_dir), expected, "{file}: from the journal");
        assert_eq!(
            inspect_json(&from_dir)["messages"],
            inspect_json(&from_file)["messages"]
        );
    }
}

#[test]
fn snapshot_inspect_prints_the_node_count() {
    let (_, state, _) = replay(&[&example()]);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let nodes = state["nodes"].as_object().unwrap().len();
    let tombstones = state["nodes"]
        .as_object()
        .unwrap()
        .values()
        .filter(|n| n["deleted"] == true)
        .count();
    let snap = create(&example(), &tmp_path("inspect.snap"));

    let (code, out, err) = vuer(&["snapshot", "inspect", &snap]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l == format!("nodes           {nodes} ({tombstones} tombstones)")),
        "{out}"
    );
    for needle in [
        "format version  1",
        "columns (",
        "sections",
        "bytes per node",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }

    let info = inspect_json(&snap);
    assert_eq!(info["nodes"].as_u64(), Some(nodes as u64), "{info}");
    assert_eq!(info["tombstones"].as_u64(), Some(tombstones as u64));
    assert_eq!(
        info["bytes"].as_u64(),
        Some(std::fs::metadata(&snap).unwrap().len())
    );
    let sections: u64 = info["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(sections), info["bytes"].as_u64(), "{info}");
}

#[test]
fn snapshot_commands_refuse_bad_files_with_one_error_line() {
    let snap = create(&example(), &tmp_path("good.snap"));
    let good = std::fs::read(&snap).unwrap();
    let mut bad: Vec<(String, Vec<u8>)> = vec![
        ("foreign".into(), std::fs::read(example()).unwrap()),
        ("empty".into(), Vec::new()),
        ("extra byte".into(), [&good[..], b"\0"].concat()),
    ];
    for len in [4, 20, 31, 32, 33, good.len() / 2, good.len() - 1] {
        bad.push((format!("truncated to {len}"), good[..len].to_vec()));
    }
    let step = (good.len() / 16).max(1);
    for at in [0, 8, 12, 16, 24, 28]
        .into_iter()
        .chain((32..good.len()).step_by(step))
    {
        let mut b = good.clone();
        b[at] ^= 0x04;
        bad.push((format!("byte {at} flipped"), b));
    }
    for (i, (what, bytes)) in bad.iter().enumerate() {
        let p = tmp(&format!("bad-{i}.snap"), bytes);
        for cmd in [&["dump"][..], &["inspect"], &["inspect", "--json"]] {
            let (code, out, err) = vuer(&[&["snapshot"], cmd, &[p.to_str().unwrap()]].concat());
            assert_ne!(code, 0, "{what}: {cmd:?} accepted it");
            assert!(out.is_empty(), "{what}: {cmd:?} printed {out}");
            assert!(err.starts_with("error: "), "{what}: {cmd:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: {cmd:?}: {err}");
            assert!(!err.contains("panicked"), "{what}: {cmd:?}: {err}");
        }
    }
    let (code, _, err) = vuer(&["snapshot", "dump", "/nonexistent/file.snap"]);
    assert_ne!(code, 0);
    assert!(err.starts_with("error: cannot read"), "{err}");
}

/// A fresh, empty directory in the test's temp directory.
fn empty_dir(name: &str) -> String {
    let p = tmp_path(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn journal_read_refuses_what_is_not_a_journal() {
    let empty = empty_dir("not-a-journal");
    std::fs::write(format!("{empty}/notes.txt"), b"hello").unwrap();
    for dir in ["/no/such/journal/dir", empty.as_str()] {
        let (code, out, err) = vuer(&["journal", "read", dir]);
        assert_eq!(code, 1, "journal read {dir}: {out}{err}");
        assert!(out.is_empty(), "journal read {dir}: printed {out}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(dir), "the error names {dir}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn snapshot_create_refuses_an_empty_directory() {
    let empty = empty_dir("empty-input");
    let out = tmp_path("from-empty.snap");
    let (code, stdout, err) = vuer(&["snapshot", "create", &empty, "-o", &out]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(err.contains(&empty), "the error names the directory: {err}");
    assert!(
        !std::path::Path::new(&out).exists(),
        "no snapshot written for a directory that is not a journal"
    );
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    // `vuer-rtc workload | head -c 100`: the reader goes away after a few bytes.
    let mut child = bin()
        .args(["workload", "--messages", "20000", "--nodes", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.is_empty(), "nothing on stderr: {err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    let msgs = tmp("range.json", b"[]");
    let msgs = msgs.to_str().unwrap();
    let dir = tmp_path("range-durable");
    let jdir = tmp_path("range-journal");
    let cases: Vec<Vec<&str>> = vec![
        vec!["durable", "apply", &dir, msgs, "--snapshot-every", "0"],
        vec!["durable", "apply", &dir, msgs, "--keep", "0"],
        vec!["durable", "apply", &dir, msgs, "--segment-bytes", "0"],
        vec!["journal", "append", &jdir, msgs, "--segment-bytes", "0"],
        vec!["bench", "--undo", "2"],
        vec!["bench", "--undo=-0.5"],
        vec!["bench", "--undo", "NaN"],
        vec!["bench", "--batch", "0"],
        vec!["bench", "--threads", "0"],
        vec!["workload", "--clients", "0"],
        vec!["workload", "--nodes", "0"],
        vec!["replay", msgs, "--batch", "0"],
    ];
    for args in cases {
        let (code, out, err) = vuer(&args);
        assert_eq!(code, 2, "{args:?} is a usage error: {out}{err}");
        assert!(err.starts_with("error: invalid value"), "{args:?}: {err}");
    }
    // The bounds themselves are accepted.
    for args in [
        vec!["bench", "--undo", "1", "--messages", "1"],
        vec!["bench", "--undo", "0", "--messages", "1"],
    ] {
        let (code, _, err) = vuer(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert!(!std::path::Path::new(&dir).exists(), "nothing was opened");
}

#[test]
fn replay_warnings_name_ops_that_did_nothing() {
    let msgs = tmp(
        "nothing.json",
        br#"[
  {"id": "a:1", "client": "a", "lt": 1, "ops": [
    {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "label": "abc"}},
    {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n"}},
    {"ot": "string.cut", "key": "n", "path": "label", "from": 7, "to": 9}]},
  {"id": "b:2", "client": "b", "lt": 2, "ops": [{"ot": "meta.undo", "targetMsgId": "zz:9"}]}
]"#,
    );
    let (code, out, err) = replay(&["--warnings", msgs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""label":"abc""#), "{out}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            r#"warning: message "a:1" op #1: node `n` already exists: insert ignored"#,
            r#"warning: message "a:1" op #2: `string.cut` index 7 is out of range for length 3 at `label`"#,
            r#"warning: message "b:2" op #0: `meta.undo` targets `zz:9`, which no message has: nothing to do"#,
        ]
    );
}

/// `loadtest --spawn` starts its own durable server, loads it, prints one JSON report
/// with the fields the docs promise, and exits 0 because the run converged; against
/// no server it exits 1 with one error line.
#[test]
fn loadtest_spawns_a_server_and_reports_in_json() {
    let out = bin()
        .args([
            "loadtest",
            "--spawn",
            "--clients",
            "6",
            "--writers",
            "2",
            "--rate",
            "30",
            "--ops",
            "3",
            "--nodes",
            "5",
            "--duration",
            "0.6",
            "--verify",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["converged"], true, "{r:#}");
    assert_eq!(r["lost"], 0);
    assert_eq!(r["errors"], 0);
    for key in [
        "ack_p99_ms",
        "delivery_p99_ms",
        "delivered_per_s",
        "acked_per_s",
    ] {
        assert!(r[key].as_f64().is_some_and(|x| x >= 0.0), "{key}: {r:#}");
    }
    assert!(r["acked"].as_u64().unwrap() > 0);
    if std::path::Path::new("/proc/self/status").exists() {
        assert!(r["server"]["rss_connected"].as_u64().unwrap() > 0, "{r:#}");
    }

    // Port 9 (discard) on loopback: nothing listens; the setup fails cleanly.
    let out = bin()
        .args(["loadtest", "--url", "ws://127.0.0.1:9", "--duration", "0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: setting up the scene failed"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// The number after `key` in a bench line (`replica heap 15.6 MB`).
fn number_after(line: &str, key: &str) -> f64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line}"))
        + key.len();
    line[at..]
        .trim_start()
        .split([' ', ',', ')'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn bench_reports_the_replica_heap_and_telemetry_runs() {
    // The replica's heap (what dropping it frees) grows with what it keeps: a journal
    // of every message when it never compacts, a short one by default.
    let heap = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--mix",
            "scene-a",
            "--messages",
            "3000",
            "--batch",
            "1",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = vuer(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("state hash"), "{out}");
        number_after(&out, "replica heap")
    };
    let kept = heap(&["--auto-compact", "0"]);
    let compacted = heap(&["--auto-compact", "1000"]);
    assert!(
        compacted > 0.5,
        "a 10,000-node scene is megabytes: {compacted}"
    );
    assert!(
        kept > compacted + 1.0,
        "3,000 journaled messages cost more: {kept} vs {compacted}"
    );

    let (code, out, err) = vuer(&[
        "telemetry",
        "--nodes",
        "200",
        "--ticks",
        "32",
        "--frame-every",
        "8",
    ]);
    assert_eq!(code, 0, "{err}");
    // Four frames, each told about both cells of every node.
    assert_eq!(number_after(&out, "renderer fed"), 4.0 * 400.0, "{out}");
}

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

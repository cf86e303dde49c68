//! The public conformance cases (`tests/conformance/*.json`), text cases included:
//! every case must give the expected scene, and the same scene (byte for byte) with its
//! messages shuffled and duplicated, through a `Replica` in batches of 1, 7 and 1,000,
//! and after a MessagePack round trip.

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value as Json;
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Replica, apply_messages, create_empty_graph, op::Limits};

use crate::support::{first_diff, shuffled_with_duplicates};

fn cases() -> Vec<(String, Json)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 100,
        "expected the public cases in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let case: Json = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (name, case)
        })
        .collect()
}

fn has_text(case: &Json) -> bool {
    case["messages"].as_array().unwrap().iter().any(|m| {
        m["ops"].as_array().unwrap().iter().any(|op| {
            op.get("ot")
                .or_else(|| op.get("otype"))
                .and_then(Json::as_str)
                .is_some_and(|ot| ot.starts_with("text."))
        })
    })
}

fn replay(messages: &[vuer_rtc::Message]) -> String {
    let mut g = create_empty_graph();
    apply_messages(&mut g, messages);
    g.dbg_check(true);
    g.to_json()
}

#[test]
fn public_cases() {
    let (mut passed, mut with_text, mut failed) = (0, 0, Vec::new());
    for (name, case) in cases() {
        if has_text(&case) {
            with_text += 1;
        }
        let bytes = serde_json::to_vec(&case["messages"]).unwrap();
        let msgs = wire::decode_messages(&bytes, Format::Json, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = replay(&msgs);
        let actual: Json = serde_json::from_str(&out).unwrap();
        match first_diff(&case["expected"], &actual, "$") {
            None => passed += 1,
            Some(d) => failed.push(format!("{name}: {d}")),
        }

        // Delivery order and duplicates do not matter, byte for byte.
        for seed in [1, 2] {
            let shuffled = shuffled_with_duplicates(&msgs, seed);
            assert_eq!(replay(&shuffled), out, "{name}: shuffled (seed {seed})");
        }
        // The replica reaches the same bytes in any delivery order and batch split.
        for (seed, batch) in [(3, 1), (4, 7), (5, 1000)] {
            let shuffled = shuffled_with_duplicates(&msgs, seed);
            let mut r = Replica::new();
            for chunk in shuffled.chunks(batch) {
                let rep = r.apply_batch(chunk);
                assert!(rep.rejected.is_empty(), "{name}: {:?}", rep.rejected);
            }
            r.graph().dbg_check(true);
            assert_eq!(
                r.to_json(),
                out,
                "{name}: replica, batches of {batch} (seed {seed})"
            );
        }
        // MessagePack carries the same messages.
        let mp = wire::encode_messages(&msgs, Format::MessagePack);
        let back = wire::decode_messages(&mp, Format::MessagePack, &Limits::default()).unwrap();
        assert_eq!(back, msgs, "{name}: msgpack round trip");
    }
    // Written to the stderr handle directly so the count shows even when the test
    // harness captures output.
    let _ = writeln!(
        std::io::stderr(),
        "conformance: {passed} passed ({with_text} with text ops), {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
    assert!(passed >= 130, "too few cases ran: {passed}");
    assert!(with_text >= 70, "too few text cases: {with_text}");
}

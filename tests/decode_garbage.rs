//! Malformed input never panics and never half-applies: truncations, bit flips, wrong
//! types, unknown ops, non-finite numbers and oversized values are all rejected with an
//! error that names the message and op, before anything is applied.

use proptest::prelude::*;
use vuer_rtc::error::DecodeError;
use vuer_rtc::op::Limits;
use vuer_rtc::wire::{self, Format};

const GOOD: &str = r##"[
 {"id": "a:1", "client": "a", "lt": 1, "ts": 1.0, "ops": [
   {"ot": "node.insert", "key": "", "path": "children", "value": {"key": "cube", "tag": "Mesh", "position": [0, 1, 0]}},
   {"ot": "vector3.set", "key": "cube", "path": "position", "value": [3, 2, 1]}]},
 {"id": "b:2", "client": "b", "lt": 2, "ts": 2.0, "ops": [
   {"ot": "number.add", "key": "cube", "path": "health", "value": -10},
   {"ot": "color.blend", "key": "cube", "path": "color", "value": "#0000ff", "alpha": 0.5}]}
]"##;

fn decode(bytes: &[u8], f: Format) -> Result<Vec<vuer_rtc::Message>, DecodeError> {
    wire::decode_messages(bytes, f, &Limits::default())
}

fn err(json: &str) -> String {
    decode(json.as_bytes(), Format::Json)
        .unwrap_err()
        .to_string()
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    assert!(decode(GOOD.as_bytes(), Format::Json).is_ok());
    for n in 0..GOOD.len() {
        if GOOD.is_char_boundary(n) {
            // A truncation is either still valid JSON (impossible here before the end) or an error.
            assert!(
                decode(&GOOD.as_bytes()[..n], Format::Json).is_err(),
                "prefix {n}"
            );
        }
    }
    let mp = wire::encode_messages(
        &decode(GOOD.as_bytes(), Format::Json).unwrap(),
        Format::MessagePack,
    );
    for n in 0..mp.len() {
        assert!(
            decode(&mp[..n], Format::MessagePack).is_err(),
            "msgpack prefix {n}"
        );
    }
}

#[test]
fn wrong_types_name_message_and_op() {
    let e = err(r#"[{"id": "m1", "client": "a", "lt": 1, "ops": [
        {"ot": "number.set", "key": "n", "path": "x", "value": 1},
        {"ot": "vector3.set", "key": "n", "path": "p", "value": "abc"}]}]"#);
    assert!(
        e.contains("\"m1\"") && e.contains("op #1") && e.contains("vector3.set"),
        "{e}"
    );
    let e = err(
        r#"[{"id": "m2", "client": "a", "lt": 1, "ops": [{"ot": "boolean.or", "key": "n", "path": "x", "value": 1}]}]"#,
    );
    assert!(e.contains("expected a boolean"), "{e}");
    let e = err(
        r#"[{"id": "m3", "client": "a", "lt": 1, "ops": [{"ot": "array.union", "key": "n", "path": "x", "value": 1}]}]"#,
    );
    assert!(e.contains("expected an array"), "{e}");
    let e = err(
        r#"[{"id": "m4", "client": "a", "lt": 1, "ops": [{"ot": "node.insert", "key": "", "path": "children", "value": {"tag": "x"}}]}]"#,
    );
    assert!(e.contains("value.key"), "{e}");
    let e = err(
        r#"[{"id": "m5", "client": "a", "lt": 1, "ops": [{"ot": "node.move", "key": "x", "path": "children", "value": {"nodeKey": "c"}}]}]"#,
    );
    assert!(e.contains("newParent"), "{e}");
}

#[test]
fn unknown_ot_and_missing_fields() {
    let e = err(
        r#"[{"id": "m1", "client": "a", "lt": 1, "ops": [{"ot": "vector4.set", "key": "n", "path": "x", "value": 1}]}]"#,
    );
    assert!(e.contains("unknown operation type `vector4.set`"), "{e}");
    let e = err(
        r#"[{"id": "m1", "client": "a", "lt": 1, "ops": [{"key": "n", "path": "x", "value": 1}]}]"#,
    );
    assert!(e.contains("missing `ot`"), "{e}");
    let e = err(r#"[{"client": "a", "lt": 1, "ops": []}]"#);
    assert!(e.contains("missing field `id`"), "{e}");
    let e = err(r#"[{"id": "m1", "lt": 1, "ops": []}]"#);
    assert!(e.contains("\"m1\"") && e.contains("`client`"), "{e}");
    let e = err(r#"[{"id": "m1", "client": "a", "ops": []}]"#);
    assert!(e.contains("`lt`"), "{e}");
    let e = err(r#"[{"id": "m1", "client": "a", "lt": 1}]"#);
    assert!(e.contains("`ops`"), "{e}");
    let e = err(r#"[{"id": "m1", "client": "a", "lt": 1, "ops": {}}]"#);
    assert!(e.contains("\"m1\""), "{e}");
}

#[test]
fn non_finite_numbers_are_rejected() {
    // JSON cannot spell NaN; a number too large for f64 is a syntax error.
    assert!(matches!(
        decode(br#"[{"id": "m", "client": "a", "lt": 1, "ops": [{"ot": "number.set", "key": "n", "path": "x", "value": 1e999}]}]"#, Format::Json),
        Err(DecodeError::Syntax { .. })
    ));
    // MessagePack can carry NaN and infinity.
    #[derive(serde::Serialize)]
    struct M<'a> {
        id: &'a str,
        client: &'a str,
        lt: u64,
        ops: Vec<O<'a>>,
    }
    #[derive(serde::Serialize)]
    struct O<'a> {
        ot: &'a str,
        key: &'a str,
        path: &'a str,
        value: Vec<f64>,
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let m = [M {
            id: "nan",
            client: "a",
            lt: 1,
            ops: vec![O {
                ot: "vector3.set",
                key: "n",
                path: "p",
                value: vec![0.0, bad, 0.0],
            }],
        }];
        let bytes = rmp_serde::to_vec_named(&m).unwrap();
        let e = decode(&bytes, Format::MessagePack).unwrap_err().to_string();
        assert!(e.contains("\"nan\"") && e.contains("op #0"), "{e}");
    }
}

#[test]
fn limits_are_enforced() {
    let lim = Limits {
        max_ops_per_message: 2,
        max_depth: 3,
        ..Limits::default()
    };
    let e = wire::decode_messages(
        br#"[{"id": "m", "client": "a", "lt": 1, "ops": [{"ot": "meta.undo", "targetMsgId": "x"}, {"ot": "meta.undo", "targetMsgId": "x"}, {"ot": "meta.undo", "targetMsgId": "x"}]}]"#,
        Format::Json,
        &lim,
    )
    .unwrap_err();
    assert!(e.to_string().contains("exceed the limit"), "{e}");
    let e = wire::decode_messages(
        br#"[{"id": "m", "client": "a", "lt": 1, "ops": [{"ot": "array.push", "key": "n", "path": "x", "value": [[[[1]]]]}]}]"#,
        Format::Json,
        &lim,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nesting depth"), "{e}");
    // serde_json's own recursion limit protects the parser from stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(decode(deep.as_bytes(), Format::Json).is_err());
}

proptest! {
    #![proptest_config(crate::support::proptest_config(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, Format::Json);
        let _ = decode(&bytes, Format::MessagePack);
        let _ = wire::decode_messages_lenient(&bytes, Format::Json, &Limits::default());
    }

    #[test]
    fn bit_flips_never_panic(pos in 0usize..GOOD.len(), bit in 0u8..8) {
        let mut b = GOOD.as_bytes().to_vec();
        b[pos] ^= 1 << bit;
        let _ = decode(&b, Format::Json);
        let mut mp = wire::encode_messages(&decode(GOOD.as_bytes(), Format::Json).unwrap(), Format::MessagePack);
        let p = pos % mp.len();
        mp[p] ^= 1 << bit;
        let _ = decode(&mp, Format::MessagePack);
    }
}

#[test]
fn replica_rejects_bad_messages_whole_and_keeps_the_good_ones() {
    use vuer_rtc::Replica;
    let mixed = br#"[
      {"id": "a:1", "client": "a", "lt": 1, "ops": [{"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "Mesh"}}]},
      {"id": "a:2", "client": "a", "lt": 2, "ops": [{"ot": "number.set", "key": "n", "path": "x", "value": 1},
                                                {"ot": "vector3.set", "key": "n", "path": "p", "value": "up"}]},
      {"id": "a:3", "client": "a", "lt": 3, "ops": [{"ot": "number.add", "key": "n", "path": "y", "value": 2}]}
    ]"#;
    let mut r = Replica::new();
    let rep = r.apply_bytes(mixed, Format::Json);
    assert_eq!(rep.accepted, 2);
    assert_eq!(rep.rejected.len(), 1);
    let e = rep.rejected[0].to_string();
    assert!(e.contains("\"a:2\"") && e.contains("op #1"), "{e}");
    // Nothing of the rejected message applied: its valid first op is not there.
    let n = r.graph().node("n").unwrap();
    assert_eq!(n.get("x"), None);
    assert_eq!(n.get("y").and_then(|v| v.as_number()), Some(2.0));
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn garbage_never_changes_a_replica(bytes in prop::collection::vec(any::<u8>(), 0..200), flip in 0usize..GOOD.len()) {
        use vuer_rtc::Replica;
        let mut r = Replica::new();
        r.apply_bytes(GOOD.as_bytes(), Format::Json);
        let before = r.to_json();
        let rep = r.apply_bytes(&bytes, Format::Json);
        prop_assert_eq!(rep.accepted, 0);
        prop_assert_eq!(r.to_json(), before.clone());
        let rep = r.apply_bytes(&bytes, Format::MessagePack);
        prop_assert_eq!(rep.accepted, 0);
        prop_assert_eq!(r.to_json(), before.clone());
        // A bit-flipped copy of already-held messages either fails or is a duplicate
        // or a new valid message; it never panics.
        let mut b = GOOD.as_bytes().to_vec();
        b[flip] ^= 0x20;
        let _ = r.apply_bytes(&b, Format::Json);
    }
}

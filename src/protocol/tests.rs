//! The frame codec against itself: round trips in every encoding and framing, the
//! out-going spelling, and bad, deep, truncated and random frames (never a panic).

use proptest::prelude::*;

use super::*;
use crate::op::Op;

fn msg(client: &str, lt: u64) -> Message {
    Message {
        id: format!("{client}:{lt}"),
        client: client.into(),
        clock: [(client.to_string(), lt)].into(),
        lt,
        ts: 1.5,
        ops: vec![
            Op::node_insert("", "n", "Mesh"),
            Op::number_add("n", "hp", -2.5),
        ],
    }
}

const CODECS: [(Encoding, Framing); 4] = [
    (Encoding::MessagePack, Framing::Plain),
    (Encoding::MessagePack, Framing::Vuer),
    (Encoding::Json, Framing::Plain),
    (Encoding::Json, Framing::Vuer),
];

fn lim() -> Limits {
    Limits::default()
}

#[test]
fn client_frames_round_trip() {
    let clock: Clock = [("a".to_string(), 3), ("b".to_string(), 1)].into();
    let frames = [
        ClientFrame::Crdt(msg("a", 4)),
        ClientFrame::Sync {
            vector_clock: clock.clone(),
            filter: None,
        },
        ClientFrame::Sync {
            vector_clock: Clock::new(),
            filter: Some(BloomFilter::of(["a:1", "b:2"], 0.01)),
        },
        ClientFrame::Heartbeat {
            client: "a".into(),
            vector_clock: clock,
        },
        ClientFrame::SyncCheck {
            request_id: "r-1".into(),
        },
    ];
    for (enc, framing) in CODECS {
        for f in &frames {
            let bytes = encode_client_frame(f, enc, framing);
            let (back, used) = decode_client_frame(&bytes, enc, &lim()).unwrap();
            assert_eq!(&back, f, "{enc:?} {framing:?}");
            assert_eq!(used, framing);
        }
    }
}

#[test]
fn server_frames_round_trip() {
    let (a, b) = (msg("a", 1), msg("b", 2));
    let clock: Clock = [("a".to_string(), 1)].into();
    let graph = serde_json::json!({"nodes": {"n": {"tag": "Mesh"}}, "rootKey": ""});
    let snap_bytes = vec![0u8, 1, 2, 250, 255];
    let journal = [&a, &b];
    let frames = [
        ServerFrame::State {
            snapshot: StateSnapshot {
                body: SnapshotBody::Graph(&graph),
                vector_clock: &clock,
                lt: 3,
                journal_index: 9,
            },
            journal: &journal,
        },
        ServerFrame::State {
            snapshot: StateSnapshot {
                body: SnapshotBody::Bytes(&snap_bytes),
                vector_clock: &clock,
                lt: 3,
                journal_index: 9,
            },
            journal: &[],
        },
        ServerFrame::Ack {
            msg_id: "a:1",
            server_seq: 12,
        },
        ServerFrame::Error {
            msg_id: Some("a:1"),
            error: "conflict: …",
        },
        ServerFrame::Error {
            msg_id: None,
            error: "malformed: x",
        },
        ServerFrame::Broadcast { msg: &a },
        ServerFrame::BroadcastBatch { msgs: &journal },
        ServerFrame::SyncStatus {
            request_id: "r",
            status: Some(SyncStatus {
                vector_clock: &clock,
                lt: 5,
                hash: 0xdead_beef_0000_0001,
            }),
        },
        ServerFrame::SyncStatus {
            request_id: "r",
            status: None,
        },
        ServerFrame::Heartbeat {
            client: "server",
            vector_clock: &clock,
        },
    ];
    for (enc, framing) in CODECS {
        for f in &frames {
            let bytes = encode_server_frame(f, enc, framing);
            let (back, used) = decode_server_frame(&bytes, enc, &lim())
                .unwrap_or_else(|e| panic!("{f:?} {enc:?}: {e}"));
            assert_eq!(used, framing);
            let same = match (f, &back) {
                (
                    ServerFrame::State { snapshot, journal },
                    ServerMessage::State {
                        snapshot: s,
                        journal: j,
                    },
                ) => {
                    let body = match (snapshot.body, &s.body) {
                        (SnapshotBody::Graph(g), OwnedBody::Graph(h)) => g == h,
                        (SnapshotBody::Bytes(b), OwnedBody::Bytes(c)) => b == c.as_slice(),
                        _ => false,
                    };
                    body && snapshot.vector_clock == &s.vector_clock
                        && snapshot.lt == s.lt
                        && snapshot.journal_index == s.journal_index
                        && journal.iter().map(|m| (*m).clone()).collect::<Vec<_>>() == *j
                }
                (
                    ServerFrame::Ack { msg_id, server_seq },
                    ServerMessage::Ack {
                        msg_id: m,
                        server_seq: s,
                    },
                ) => msg_id == m && server_seq == s,
                (
                    ServerFrame::Error { msg_id, error },
                    ServerMessage::Error {
                        msg_id: m,
                        error: e,
                    },
                ) => msg_id.map(str::to_owned) == *m && error == e,
                (ServerFrame::Broadcast { msg }, ServerMessage::Broadcast(m)) => *msg == m,
                (ServerFrame::BroadcastBatch { msgs }, ServerMessage::BroadcastBatch(m)) => {
                    msgs.iter().map(|x| (*x).clone()).collect::<Vec<_>>() == *m
                }
                (
                    ServerFrame::SyncStatus { request_id, status },
                    ServerMessage::SyncStatus {
                        request_id: r,
                        status: s,
                    },
                ) => {
                    request_id == r
                        && match (status, s) {
                            (Some(a), Some(b)) => {
                                a.vector_clock == &b.vector_clock
                                    && a.lt == b.lt
                                    && a.hash == b.hash
                            }
                            (None, None) => true,
                            _ => false,
                        }
                }
                (
                    ServerFrame::Heartbeat {
                        client,
                        vector_clock,
                    },
                    ServerMessage::Heartbeat {
                        client: c,
                        vector_clock: v,
                    },
                ) => client == c && *vector_clock == v,
                _ => false,
            };
            assert!(same, "{f:?} came back as {back:?} ({enc:?} {framing:?})");
        }
    }
}

#[test]
fn messages_go_out_in_the_short_spelling_and_legacy_comes_in() {
    let m = msg("alice", 2);
    let bytes = encode_server_frame(
        &ServerFrame::Broadcast { msg: &m },
        Encoding::MessagePack,
        Framing::Plain,
    );
    let v: Json = rmp_serde::from_slice(&bytes).unwrap();
    let out = &v["msg"];
    for k in ["id", "client", "clock", "lt", "ts", "ops"] {
        assert!(out.get(k).is_some(), "{k} in {out}");
    }
    assert!(out.get("sessionId").is_none() && out.get("lamportTime").is_none());
    assert_eq!(out["ops"][0]["ot"], "node.insert");
    assert!(out["ops"][0].get("otype").is_none());

    let legacy = br#"{"mtype": "crdt", "msg": {"id": "a:1", "sessionId": "a", "lamportTime": 1, "timestamp": 2.0,
        "clock": {"a": 1}, "ops": [{"otype": "number.set", "key": "n", "path": "x", "value": 1}]}}"#;
    let (f, _) = decode_client_frame(legacy, Encoding::Json, &lim()).unwrap();
    let ClientFrame::Crdt(m) = f else {
        panic!("{f:?}")
    };
    assert_eq!((m.client.as_str(), m.lt, m.ts), ("a", 1, 2.0));
}

#[test]
fn bad_frames_are_errors_with_codes() {
    let cases: &[(&[u8], FrameErrorKind)] = &[
        (b"not json", FrameErrorKind::Malformed),
        (b"[1, 2]", FrameErrorKind::Malformed),
        (br#"{"x": 1}"#, FrameErrorKind::UnknownMtype),
        (br#"{"mtype": "launch"}"#, FrameErrorKind::UnknownMtype),
        (br#"{"mtype": 5}"#, FrameErrorKind::WrongType),
        (br#"{"mtype": "crdt"}"#, FrameErrorKind::MissingField),
        (br#"{"mtype": "sync-check"}"#, FrameErrorKind::MissingField),
        (
            br#"{"mtype": "sync-check", "requestId": 3}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"mtype": "sync", "vectorClock": {"a": -1}}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"mtype": "sync", "vectorClock": [1]}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"etype": "OTHER", "value": {"mtype": "sync"}}"#,
            FrameErrorKind::UnknownMtype,
        ),
        (br#"{"etype": "RTC"}"#, FrameErrorKind::MissingField),
    ];
    for (bytes, kind) in cases {
        let e = decode_client_frame(bytes, Encoding::Json, &lim()).unwrap_err();
        assert_eq!(e.kind, *kind, "{}: {e}", String::from_utf8_lossy(bytes));
        assert!(e.to_string().starts_with(kind.code()), "{e}");
    }
}

#[test]
fn an_invalid_message_names_its_id_and_op() {
    let bad = br#"{"mtype": "crdt", "msg": {"id": "a:7", "client": "a", "lt": 7,
        "ops": [{"ot": "number.set", "key": "n", "path": "x", "value": 1},
                {"ot": "number.set", "key": "n", "path": "x", "value": "high"}]}}"#;
    let e = decode_client_frame(bad, Encoding::Json, &lim()).unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::InvalidMessage);
    assert_eq!(e.msg_id.as_deref(), Some("a:7"));
    let text = e.to_string();
    assert!(
        text.starts_with("invalid_message: ") && text.contains("op #1"),
        "{text}"
    );
}

#[test]
fn deep_and_truncated_frames_are_errors_not_crashes() {
    let deep = format!(r#"{{"mtype": "crdt", "msg": {}"#, "[".repeat(100_000));
    let e = decode_client_frame(deep.as_bytes(), Encoding::Json, &lim()).unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::TooLarge);
    let mut mp = rmp_serde::to_vec_named(&serde_json::json!({"mtype": "crdt"})).unwrap();
    mp.extend(std::iter::repeat_n(0x91u8, 100_000));
    assert!(decode_client_frame(&mp, Encoding::MessagePack, &lim()).is_err());
    let good = encode_client_frame(
        &ClientFrame::Crdt(msg("a", 1)),
        Encoding::MessagePack,
        Framing::Plain,
    );
    for cut in 0..good.len() {
        assert!(decode_client_frame(&good[..cut], Encoding::MessagePack, &lim()).is_err());
    }
}

#[test]
fn base64_round_trips() {
    for n in 0..40u8 {
        let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        let s = base64_encode(&bytes);
        assert_eq!(base64_decode(&s), Some(bytes));
    }
    assert_eq!(base64_encode(b"Man"), "TWFu");
    assert_eq!(base64_encode(b"Ma"), "TWE=");
    assert_eq!(base64_decode("TQ=="), Some(b"M".to_vec()));
    assert_eq!(base64_decode("T=Q="), None);
    assert_eq!(base64_decode("abc"), None);
}

/// A `crdt` frame around message JSON `m`, in `enc` (MessagePack via a JSON value).
fn crdt_frame(m: &str, enc: Encoding, framing: Framing) -> Vec<u8> {
    let json = match framing {
        Framing::Plain => format!(r#"{{"mtype": "crdt", "msg": {m}}}"#),
        Framing::Vuer => format!(r#"{{"etype": "RTC", "value": {{"mtype": "crdt", "msg": {m}}}}}"#),
    };
    match enc {
        Encoding::Json => json.into_bytes(),
        Encoding::MessagePack => {
            let mut de = serde_json::Deserializer::from_str(&json);
            de.disable_recursion_limit();
            let v = Json::deserialize(&mut de).unwrap();
            // Writing has no depth limit (only reading does).
            rmp_serde::to_vec_named(&v).unwrap()
        }
    }
}

#[test]
fn a_crdt_message_keeps_every_wire_limit() {
    let m = msg("a", 1);
    let small = Limits {
        max_message_bytes: 60,
        ..lim()
    };
    for (enc, framing) in CODECS {
        let bytes = encode_client_frame(&ClientFrame::Crdt(m.clone()), enc, framing);
        let e = decode_client_frame(&bytes, enc, &small).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::TooLarge, "{e}");
        assert_eq!(e.msg_id.as_deref(), Some("a:1"));
        assert!(
            e.to_string().starts_with("too_large: message \"a:1\""),
            "{e}"
        );
    }
    let few = Limits {
        max_ops_per_message: 1,
        max_string_bytes: 8,
        ..lim()
    };
    let e = decode_client_frame(
        &encode_client_frame(&ClientFrame::Crdt(m), Encoding::MessagePack, Framing::Plain),
        Encoding::MessagePack,
        &few,
    )
    .unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::TooLarge, "{e}");
    // A long string in an op: named by op index.
    let long = format!(
        r#"{{"id": "a:2", "client": "a", "lt": 2, "ops": [{{"ot": "string.set", "key": "n", "path": "p", "value": "{}"}}]}}"#,
        "x".repeat(20)
    );
    for enc in [Encoding::Json, Encoding::MessagePack] {
        let e =
            decode_client_frame(&crdt_frame(&long, enc, Framing::Plain), enc, &few).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::TooLarge, "{e}");
        assert!(e.to_string().contains("\"a:2\" op #0"), "{e}");
    }
}

#[test]
fn nesting_means_what_it_means_on_the_wire() {
    // Deeper than serde_json's default recursion limit (128), within `max_depth`.
    let deep = Limits {
        max_depth: 300,
        ..lim()
    };
    let value = |d: usize| format!("{}1{}", "[".repeat(d), "]".repeat(d));
    let m = |d: usize| {
        format!(
            r#"{{"id": "a:1", "client": "a", "lt": 1, "ops": [{{"ot": "array.set", "key": "n", "path": "x", "value": [{}]}}]}}"#,
            value(d)
        )
    };
    for (enc, framing) in CODECS {
        let (f, used) = decode_client_frame(&crdt_frame(&m(250), enc, framing), enc, &deep)
            .unwrap_or_else(|e| panic!("{enc:?} {framing:?}: {e}"));
        assert!(matches!(f, ClientFrame::Crdt(ref m) if m.id == "a:1"));
        assert_eq!(used, framing);
        // Past the limit: the wire's error, naming the op.
        let e = decode_client_frame(&crdt_frame(&m(300), enc, framing), enc, &deep).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::TooLarge, "{e}");
        assert!(e.to_string().contains("\"a:1\" op #0"), "{e}");
        assert_eq!(e.msg_id.as_deref(), Some("a:1"));
    }
}

#[test]
fn a_msgpack_nan_is_named_by_the_wire_prepass() {
    let mut m = msg("a", 1);
    m.ops[1] = Op::number_set("n", "hp", 1.25);
    let mut bytes =
        encode_client_frame(&ClientFrame::Crdt(m), Encoding::MessagePack, Framing::Plain);
    // The float64 1.25 of op #1 becomes NaN.
    let one = [&[0xcb][..], &1.25f64.to_be_bytes()].concat();
    let at = bytes.windows(9).position(|w| w == one).unwrap();
    bytes[at + 1..at + 9].copy_from_slice(&f64::NAN.to_be_bytes());
    let e = decode_client_frame(&bytes, Encoding::MessagePack, &lim()).unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::InvalidMessage, "{e}");
    assert!(
        e.to_string().contains("op #1") && e.to_string().contains("finite"),
        "{e}"
    );
}

#[test]
fn fields_of_the_wrong_shape_and_odd_frames() {
    let cases: &[(&[u8], FrameErrorKind)] = &[
        (
            br#"{"mtype": "crdt", "msg": [1]}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"mtype": "crdt", "msg": "a:1"}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"mtype": "crdt", "msg": null}"#,
            FrameErrorKind::MissingField,
        ),
        (
            br#"{"mtype": "sync", "filter": 5}"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"mtype": "sync", "filter": "not base64!"}"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"mtype": "heartbeat", "vectorClock": {}}"#,
            FrameErrorKind::MissingField,
        ),
        (
            br#"{"mtype": "sync-check", "requestId": "r"} x"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"mtype": "sync-check", "requestId": "r", "requestId": "s"}"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"mtype": "sync-check", "requestId": "r", "junk": [1 2]}"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"etype": "RTC", "value": 3}"#,
            FrameErrorKind::WrongType,
        ),
        (
            br#"{"etype": "RTC", "value": {"x": 1}}"#,
            FrameErrorKind::UnknownMtype,
        ),
        (
            br#"{"mtype": "crdt", "msg": {"id": "a:9", "client": "a", "lt": 1, "ops": [1 2]}}"#,
            FrameErrorKind::Malformed,
        ),
        (
            br#"{"mtype": "crdt", "msg": {"id": "a:9", "client": "a", "lt": 1, "ops": [7]}}"#,
            FrameErrorKind::InvalidMessage,
        ),
        (
            br#"{"mtype": "crdt", "msg": {"id": "a:9", "client": "a", "lt": "1", "ops": []}}"#,
            FrameErrorKind::InvalidMessage,
        ),
    ];
    for (bytes, kind) in cases {
        let e = decode_client_frame(bytes, Encoding::Json, &lim()).unwrap_err();
        assert_eq!(e.kind, *kind, "{}: {e}", String::from_utf8_lossy(bytes));
        assert!(e.to_string().starts_with(kind.code()), "{e}");
        if String::from_utf8_lossy(bytes).contains("a:9") {
            assert_eq!(e.msg_id.as_deref(), Some("a:9"), "{e}");
        }
    }
    // Unknown fields are ignored; `data` works from a client, `value` from a server.
    let (f, framing) = decode_client_frame(
        br#"{"etype": "RTC", "data": {"mtype": "sync-check", "requestId": "r", "extra": {"a": [1]}}, "ts": 5}"#,
        Encoding::Json,
        &lim(),
    )
    .unwrap();
    assert_eq!(
        (f, framing),
        (
            ClientFrame::SyncCheck {
                request_id: "r".into()
            },
            Framing::Vuer
        )
    );
    let (s, framing) = decode_server_frame(
        br#"{"etype": "RTC", "value": {"mtype": "ack", "msgId": "a:1", "serverSeq": 2.0}}"#,
        Encoding::Json,
        &lim(),
    )
    .unwrap();
    assert_eq!(framing, Framing::Vuer);
    assert_eq!(
        s,
        ServerMessage::Ack {
            msg_id: "a:1".into(),
            server_seq: 2
        }
    );
    // A filter over `max_string_bytes`.
    let f = ClientFrame::Sync {
        vector_clock: Clock::new(),
        filter: Some(BloomFilter::with_capacity(1000, 0.01)),
    };
    let tight = Limits {
        max_string_bytes: 100,
        ..lim()
    };
    for (enc, framing) in CODECS {
        let e =
            decode_client_frame(&encode_client_frame(&f, enc, framing), enc, &tight).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::TooLarge, "{e}");
    }
}

#[test]
fn server_frames_validate_their_messages() {
    let bad = r#"{"id": "b:3", "client": "b", "lt": 3, "ops": [{"ot": "number.set", "key": "n", "path": "x", "value": 1}, {"ot": "nope"}]}"#;
    let good = r#"{"id": "b:2", "client": "b", "lt": 2, "ops": []}"#;
    let frames = [
        format!(r#"{{"mtype": "broadcast", "msg": {bad}}}"#),
        format!(r#"{{"mtype": "broadcast-batch", "msgs": [{good}, {bad}]}}"#),
        format!(
            r#"{{"mtype": "state", "snapshot": {{"graph": {{}}, "vectorClock": {{}}, "lt": 0, "journalIndex": 0}}, "journal": [{good}, {bad}]}}"#
        ),
    ];
    for f in &frames {
        let e = decode_server_frame(f.as_bytes(), Encoding::Json, &lim()).unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::InvalidMessage, "{e}");
        assert_eq!(e.msg_id.as_deref(), Some("b:3"));
        assert!(e.to_string().contains("op #1"), "{e}");
    }
    let e = decode_server_frame(
        br#"{"mtype": "broadcast-batch", "msgs": {"id": "b:2"}}"#,
        Encoding::Json,
        &lim(),
    )
    .unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::WrongType, "{e}");
    let e = decode_server_frame(
        br#"{"mtype": "sync-status", "requestId": "r", "status": {"vectorClock": {}, "lt": 1, "hash": "+1"}}"#,
        Encoding::Json,
        &lim(),
    )
    .unwrap_err();
    assert_eq!(e.kind, FrameErrorKind::WrongType, "{e}");
}

#[test]
fn encoded_frames_are_exactly_these_bytes() {
    let m = Message {
        id: "a:1".into(),
        client: "a".into(),
        clock: [("a".to_string(), 1)].into(),
        lt: 1,
        ts: 0.5,
        ops: vec![Op::number_set("n", "x", 2.0)],
    };
    let clock: Clock = [("a".to_string(), 1)].into();
    let graph = serde_json::json!({"nodes": {}});
    let cases: [(ServerFrame<'_>, &str); 5] = [
        (
            ServerFrame::Broadcast { msg: &m },
            r#"{"mtype":"broadcast","msg":{"id":"a:1","client":"a","clock":{"a":1},"lt":1,"ts":0.5,"ops":[{"ot":"number.set","key":"n","path":"x","value":2}]}}"#,
        ),
        (
            ServerFrame::Error {
                msg_id: None,
                error: "malformed: x",
            },
            r#"{"mtype":"error","msgId":null,"error":"malformed: x"}"#,
        ),
        (
            ServerFrame::SyncStatus {
                request_id: "r",
                status: Some(SyncStatus {
                    vector_clock: &clock,
                    lt: 4,
                    hash: 0xab,
                }),
            },
            r#"{"mtype":"sync-status","requestId":"r","status":{"vectorClock":{"a":1},"lt":4,"hash":"00000000000000ab"}}"#,
        ),
        (
            ServerFrame::State {
                snapshot: StateSnapshot {
                    body: SnapshotBody::Bytes(b"snap"),
                    vector_clock: &clock,
                    lt: 1,
                    journal_index: 1,
                },
                journal: &[],
            },
            r#"{"mtype":"state","snapshot":{"format":"vuer-rtc-snapshot","bytes":"c25hcA==","vectorClock":{"a":1},"lt":1,"journalIndex":1},"journal":[]}"#,
        ),
        (
            ServerFrame::State {
                snapshot: StateSnapshot {
                    body: SnapshotBody::Graph(&graph),
                    vector_clock: &clock,
                    lt: 0,
                    journal_index: 0,
                },
                journal: &[&m],
            },
            r#"{"mtype":"state","snapshot":{"graph":{"nodes":{}},"vectorClock":{"a":1},"lt":0,"journalIndex":0},"journal":[{"id":"a:1","client":"a","clock":{"a":1},"lt":1,"ts":0.5,"ops":[{"ot":"number.set","key":"n","path":"x","value":2}]}]}"#,
        ),
    ];
    for (f, want) in cases {
        let got = encode_server_frame(&f, Encoding::Json, Framing::Plain);
        assert_eq!(String::from_utf8(got).unwrap(), want);
        // MessagePack: the same map, floats as float64, bytes as bin.
        let mp = encode_server_frame(&f, Encoding::MessagePack, Framing::Plain);
        if let ServerFrame::State {
            snapshot:
                StateSnapshot {
                    body: SnapshotBody::Bytes(b),
                    ..
                },
            ..
        } = f
        {
            let bin = [&[0xc4, b.len() as u8][..], b].concat();
            assert!(mp.windows(bin.len()).any(|w| w == bin.as_slice()));
        } else {
            let v: Json = rmp_serde::from_slice(&mp).unwrap();
            assert_eq!(v, serde_json::from_str::<Json>(want).unwrap());
        }
    }
    let f = encode_server_frame(
        &ServerFrame::Broadcast { msg: &m },
        Encoding::MessagePack,
        Framing::Plain,
    );
    let ts = [&[0xcb][..], &0.5f64.to_be_bytes()].concat();
    assert!(f.windows(9).any(|w| w == ts.as_slice()), "ts is a float64");
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_client_frame(&bytes, Encoding::MessagePack, &lim());
        let _ = decode_client_frame(&bytes, Encoding::Json, &lim());
        let _ = decode_server_frame(&bytes, Encoding::MessagePack, &lim());
        let _ = decode_server_frame(&bytes, Encoding::Json, &lim());
    }

    #[test]
    fn mutated_frames_never_panic(at in 0usize..200, byte in any::<u8>()) {
        let good = encode_client_frame(&ClientFrame::Crdt(msg("a", 1)), Encoding::MessagePack, Framing::Vuer);
        let mut bad = good.clone();
        let i = at % bad.len();
        bad[i] = byte;
        let _ = decode_client_frame(&bad, Encoding::MessagePack, &lim());
    }

    #[test]
    fn mutated_json_frames_never_panic(at in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let good = encode_client_frame(&ClientFrame::Crdt(msg("a", 1)), Encoding::Json, Framing::Vuer);
        let mut bad = good.clone();
        let i = at % bad.len();
        bad[i] = byte;
        let _ = decode_client_frame(&bad, Encoding::Json, &lim());
        bad.truncate(cut % bad.len());
        prop_assert!(decode_client_frame(&bad, Encoding::Json, &lim()).is_err());
    }

    #[test]
    fn mutated_and_truncated_server_frames_never_panic(
        at in 0usize..2000, byte in any::<u8>(), cut in 0usize..2000, json in any::<bool>()
    ) {
        let (a, b) = (msg("a", 1), msg("b", 2));
        let clock: Clock = [("a".to_string(), 1)].into();
        let graph = serde_json::json!({"nodes": {"n": {"tag": "Mesh", "p": [1, [2, {"q": 3}]]}}});
        let frame = ServerFrame::State {
            snapshot: StateSnapshot {
                body: SnapshotBody::Graph(&graph),
                vector_clock: &clock,
                lt: 1,
                journal_index: 2,
            },
            journal: &[&a, &b],
        };
        let enc = if json { Encoding::Json } else { Encoding::MessagePack };
        let good = encode_server_frame(&frame, enc, Framing::Vuer);
        let mut bad = good.clone();
        let i = at % bad.len();
        bad[i] = byte;
        let _ = decode_server_frame(&bad, enc, &lim());
        let _ = decode_client_frame(&bad, enc, &lim());
        prop_assert!(decode_server_frame(&good[..cut % good.len()], enc, &lim()).is_err());
    }
}

#[test]
fn scan_broadcast_reads_the_heads_the_full_decoder_reads() {
    let (a, b, c) = (msg("a", 1), msg("b", 7), msg("c", 300));
    let heads = |bytes: &[u8], enc| {
        let mut got = Vec::new();
        let n = scan_broadcast(bytes, enc, |h| {
            got.push((h.id.to_owned(), h.client.to_owned(), h.lt, h.ts))
        });
        (n.map(|r| r.map_err(|e| e.to_string())), got)
    };
    let want = |ms: &[&Message]| -> Vec<(String, String, u64, f64)> {
        ms.iter()
            .map(|m| (m.id.clone(), m.client.clone(), m.lt, m.ts))
            .collect()
    };
    let one = encode_server_frame(
        &ServerFrame::Broadcast { msg: &c },
        Encoding::MessagePack,
        Framing::Plain,
    );
    assert_eq!(
        heads(&one, Encoding::MessagePack),
        (Some(Ok(1)), want(&[&c]))
    );
    let batch = encode_server_frame(
        &ServerFrame::BroadcastBatch {
            msgs: &[&a, &b, &c],
        },
        Encoding::MessagePack,
        Framing::Plain,
    );
    assert_eq!(
        heads(&batch, Encoding::MessagePack),
        (Some(Ok(3)), want(&[&a, &b, &c]))
    );
    // Other frames, JSON and the Vuer framing are left to the full decoder.
    let ack = encode_server_frame(
        &ServerFrame::Ack {
            msg_id: "a:1",
            server_seq: 3,
        },
        Encoding::MessagePack,
        Framing::Plain,
    );
    assert_eq!(heads(&ack, Encoding::MessagePack).0, None);
    for (enc, framing) in [
        (Encoding::Json, Framing::Plain),
        (Encoding::MessagePack, Framing::Vuer),
    ] {
        let f = encode_server_frame(&ServerFrame::Broadcast { msg: &a }, enc, framing);
        assert_eq!(heads(&f, enc).0, None);
    }
    // Broken frames: an error or nothing, never a panic; never more heads than messages.
    for cut in 0..batch.len() {
        let (n, got) = heads(&batch[..cut], Encoding::MessagePack);
        assert!(got.len() <= 3);
        if let Some(Ok(n)) = n {
            assert_eq!(n, got.len());
        }
    }
    // A broadcast of a message without its head fields is an error.
    let mut headless = vec![0x82, 0xa5];
    headless.extend(b"mtype");
    headless.push(0xa9);
    headless.extend(b"broadcast");
    headless.push(0xa3);
    headless.extend(b"msg");
    headless.extend([
        0x82, 0xa2, b'i', b'd', 0xa1, b'x', 0xa3, b'o', b'p', b's', 0x90,
    ]);
    assert!(matches!(
        heads(&headless, Encoding::MessagePack).0,
        Some(Err(_))
    ));
}

#[test]
fn count_broadcast_reads_the_array_header() {
    let (a, b) = (msg("a", 1), msg("b", 2));
    let enc = Encoding::MessagePack;
    let one = encode_server_frame(&ServerFrame::Broadcast { msg: &a }, enc, Framing::Plain);
    let two = encode_server_frame(
        &ServerFrame::BroadcastBatch { msgs: &[&a, &b] },
        enc,
        Framing::Plain,
    );
    let none = encode_server_frame(
        &ServerFrame::BroadcastBatch { msgs: &[] },
        enc,
        Framing::Plain,
    );
    assert_eq!(count_broadcast(&one, enc).map(Result::ok), Some(Some(1)));
    assert_eq!(count_broadcast(&two, enc).map(Result::ok), Some(Some(2)));
    assert_eq!(count_broadcast(&none, enc).map(Result::ok), Some(Some(0)));
    let ack = encode_server_frame(
        &ServerFrame::Ack {
            msg_id: "a:1",
            server_seq: 1,
        },
        enc,
        Framing::Plain,
    );
    assert!(count_broadcast(&ack, enc).is_none());
    assert!(count_broadcast(&two, Encoding::Json).is_none());
    for cut in 0..two.len() {
        let _ = count_broadcast(&two[..cut], enc);
    }
}

#[test]
fn broadcasts_of_encoded_messages_are_the_encoder_s_bytes() {
    let many: Vec<Message> = (1..=20).map(|i| msg("a", i)).collect();
    let enc: Vec<Vec<u8>> = many
        .iter()
        .map(|m| wire::encode_message(m, Format::MessagePack))
        .collect();
    for framing in [Framing::Plain, Framing::Vuer] {
        let one = encode_server_frame(
            &ServerFrame::Broadcast { msg: &many[0] },
            Encoding::MessagePack,
            framing,
        );
        assert_eq!(encode_broadcast_encoded(&enc[0], framing), one);
        // 0, 3 and 20 messages: the array header's short and long forms.
        for n in [0, 3, 20] {
            let refs: Vec<&Message> = many[..n].iter().collect();
            let want = encode_server_frame(
                &ServerFrame::BroadcastBatch { msgs: &refs },
                Encoding::MessagePack,
                framing,
            );
            let bytes: Vec<&[u8]> = enc[..n].iter().map(Vec::as_slice).collect();
            assert_eq!(encode_broadcast_batch_encoded(&bytes, framing), want, "{n}");
        }
    }
}

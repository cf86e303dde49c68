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
}

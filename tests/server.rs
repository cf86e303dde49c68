//! `vuer_rtc::server` over real WebSockets on loopback (tokio-tungstenite clients):
//! the protocol's frames as bytes, convergence through the server, rejections, auth,
//! limits, slow consumers, and durability across a restart. Every test binds port 0,
//! is bounded in time (each receive has a timeout) and stops its server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use vuer_rtc::op::{Limits, Message, Op};
use vuer_rtc::protocol::{
    ClientFrame, Clock, Encoding, Framing, OwnedBody, ServerMessage, decode_server_frame,
    encode_client_frame,
};
use vuer_rtc::server::{
    self, Access, AuthConfig, Claims, RunningServer, ServerConfig, Storage, make_token,
};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

#[path = "../examples/serve_and_connect.rs"]
mod ex_serve_and_connect;

/// The guide's Two-Client example over the network, through `SyncClient`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_and_connect_example_converges() {
    ex_serve_and_connect::run().await.unwrap();
}

/// A `SyncClient` that loses its connection (the server closes it as a slow
/// consumer is the same path) reconnects, syncs and resends what was not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_client_reconnects_syncs_and_resends() {
    use vuer_rtc::client::{ClientOptions, SyncClient};
    let dir =
        std::env::temp_dir().join(format!("vuer-rtc-client-reconnect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.storage = Storage::Dir(dir.clone());
    let server = server::start(cfg.clone()).await.unwrap();
    let addr = server.addr();
    let url = format!("ws://{addr}/scenes/r");
    let mut alice = SyncClient::connect(&url, "alice", ClientOptions::default())
        .await
        .unwrap();
    alice.with_store(|s| {
        s.edit(Op::node_insert("", "n", "Mesh")).unwrap();
        s.commit("create");
    });
    alice.flush(WAIT).await.unwrap();
    // The server goes away; alice edits offline.
    server.shutdown().await;
    alice.with_store(|s| {
        s.edit(Op::number_set("n", "hp", 3.0)).unwrap();
        s.commit("offline");
    });
    assert_eq!(alice.with_store(|s| s.unacked_messages().len()), 1);
    // Back on the same address: bob writes meanwhile; alice reconnects by herself.
    cfg.listen = addr;
    let server = server::start(cfg).await.unwrap();
    let mut bob = SyncClient::connect(&url, "bob", ClientOptions::default())
        .await
        .unwrap();
    bob.with_store(|s| {
        s.edit(Op::number_add("n", "hp", 1.0)).unwrap();
        s.commit("bob");
    });
    bob.flush(WAIT).await.unwrap();
    alice.flush(WAIT).await.unwrap();
    let a = alice.check(WAIT).await.unwrap();
    let b = bob.check(WAIT).await.unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(alice.with_store(|s| s.replica().state_hash()), a.hash);
    assert_eq!(bob.with_store(|s| s.replica().state_hash()), a.hash);
    assert_eq!(
        alice.with_store(|s| s.graph().node("n").and_then(|n| n.get("hp")?.as_number())),
        Some(4.0)
    );
    alice.close().await;
    bob.close().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

pub(crate) fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: Storage::Memory,
        ..ServerConfig::default()
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    encoding: Encoding,
    framing: Framing,
}

impl Client {
    async fn connect(server: &RunningServer, path_and_query: &str) -> Client {
        let url = format!("ws://{}{}", server.addr(), path_and_query);
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(&url))
            .await
            .unwrap()
            .unwrap();
        let encoding = if path_and_query.contains("encoding=json") {
            Encoding::Json
        } else {
            Encoding::MessagePack
        };
        let framing = if path_and_query.contains("framing=vuer") {
            Framing::Vuer
        } else {
            Framing::Plain
        };
        Client {
            ws,
            encoding,
            framing,
        }
    }

    async fn send_raw(&mut self, bytes: Vec<u8>) {
        let frame = match self.encoding {
            Encoding::MessagePack => Ws::Binary(bytes.into()),
            Encoding::Json => Ws::Text(String::from_utf8(bytes).unwrap().into()),
        };
        self.ws.send(frame).await.unwrap();
    }

    async fn send(&mut self, f: &ClientFrame) {
        let bytes = encode_client_frame(f, self.encoding, self.framing);
        self.send_raw(bytes).await;
    }

    /// The next data frame, checked to come in this client's encoding and framing.
    async fn recv(&mut self) -> ServerMessage {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            let frame = next
                .expect("the connection open")
                .expect("a readable frame");
            let (bytes, enc) = match frame {
                Ws::Binary(b) => (b.to_vec(), Encoding::MessagePack),
                Ws::Text(t) => (t.as_bytes().to_vec(), Encoding::Json),
                Ws::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            };
            assert_eq!(enc, self.encoding, "frame encoding");
            let (m, framing) = decode_server_frame(&bytes, enc, &Limits::default()).unwrap();
            assert_eq!(framing, self.framing, "frame framing");
            return m;
        }
    }

    /// Reads until the server closes; returns the close code.
    async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close in time")
            {
                Some(Ok(Ws::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    async fn state(&mut self) -> (OwnedBody, Vec<Message>) {
        match self.recv().await {
            ServerMessage::State { snapshot, journal } => (snapshot.body, journal),
            other => panic!("expected state, got {other:?}"),
        }
    }

    async fn hash(&mut self, id: &str) -> u64 {
        self.send(&ClientFrame::SyncCheck {
            request_id: id.into(),
        })
        .await;
        loop {
            if let ServerMessage::SyncStatus { request_id, status } = self.recv().await {
                assert_eq!(request_id, id);
                return status.unwrap().hash;
            }
        }
    }
}

pub(crate) fn msg(client: &str, seq: u64, lt: u64, ops: Vec<Op>) -> Message {
    Message {
        id: format!("{client}:{lt}"),
        client: client.into(),
        clock: [(client.to_string(), seq)].into(),
        lt,
        ts: lt as f64,
        ops,
    }
}

/// `GET path` over a plain TCP connection: the status and the (de-chunked) body.
pub(crate) async fn http_get(server: &RunningServer, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = out[body_at..].to_vec();
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[line + 2..line + 2 + n]);
        b = &b[line + 2 + n + 2..];
    }
}

/// The value of the Prometheus sample `name` (exactly, labels included) in `/metrics`;
/// 0 when absent.
pub(crate) async fn metric(server: &RunningServer, name: &str) -> f64 {
    let (status, body) = http_get(server, "/metrics").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name).then(|| v.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_through_the_server() {
    let server = server::start(config()).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/demo").await;
    let (body, journal) = a.state().await;
    assert!(journal.is_empty());
    assert!(matches!(body, OwnedBody::Graph(_)));
    let mut b = Client::connect(&server, "/scenes/demo").await;
    b.state().await;

    let create = msg(
        "alice",
        1,
        1,
        vec![
            Op::node_insert("", "cube", "Mesh"),
            Op::number_set("cube", "hp", 100.0),
        ],
    );
    a.send(&ClientFrame::Crdt(create.clone())).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Ack {
            msg_id: "alice:1".into(),
            server_seq: 1
        }
    );
    assert_eq!(b.recv().await, ServerMessage::Broadcast(create.clone()));

    let hit = msg("bob", 1, 2, vec![Op::number_add("cube", "hp", -10.0)]);
    b.send(&ClientFrame::Crdt(hit.clone())).await;
    assert_eq!(
        b.recv().await,
        ServerMessage::Ack {
            msg_id: "bob:2".into(),
            server_seq: 2
        }
    );
    assert_eq!(a.recv().await, ServerMessage::Broadcast(hit.clone()));

    // A resend is acknowledged again (serverSeq 0) and reaches no one.
    a.send(&ClientFrame::Crdt(create.clone())).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Ack {
            msg_id: "alice:1".into(),
            server_seq: 0
        }
    );

    let (ha, hb) = (a.hash("1").await, b.hash("2").await);
    assert_eq!(ha, hb);
    // The server's state, over HTTP, is the model's.
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, &[create, hit]);
    let (status, body) = http_get(&server, "/scenes/demo").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), model.to_json());
    assert_eq!(ha, vuer_rtc::replica::state_hash(&model.to_json()));

    // A third client joins with the journal.
    let mut c = Client::connect(&server, "/scenes/demo").await;
    let (_, journal) = c.state().await;
    assert_eq!(
        journal.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["alice:1", "bob:2"]
    );
    server.shutdown().await;
    assert_eq!(a.closed().await, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_vuer_framing_are_answered_in_kind() {
    let server = server::start(config()).await.unwrap();
    let mut v = Client::connect(&server, "/scenes/s?encoding=json&framing=vuer").await;
    v.state().await;
    // The raw bytes: the Vuer server's envelope, `data` going out.
    let m = msg("vee", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    v.send(&ClientFrame::Crdt(m)).await;
    let next = tokio::time::timeout(WAIT, v.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Ws::Text(t) = next else {
        panic!("{next:?}")
    };
    assert_eq!(
        t.as_str(),
        r#"{"etype":"RTC","data":{"mtype":"ack","msgId":"vee:1","serverSeq":1}}"#
    );
    // A plain msgpack client of the same scene gets the message in its own codec.
    let mut p = Client::connect(&server, "/scenes/s").await;
    let (_, journal) = p.state().await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].ops[0].kind.ot(), "node.insert");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_change_nothing() {
    let server = server::start(config()).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/x").await;
    a.state().await;
    let mut b = Client::connect(&server, "/scenes/x").await;
    b.state().await;

    a.send_raw(vec![0xc1, 0x00]).await;
    let ServerMessage::Error { error, .. } = a.recv().await else {
        panic!()
    };
    assert!(error.starts_with("malformed: "), "{error}");

    let bad = br#"{"mtype": "crdt", "msg": {"id": "a:1", "client": "a", "lt": 1, "ops": [{"ot": "node.insert", "key": "", "path": "children", "value": {"key": "n", "tag": "M"}}, {"ot": "number.set", "key": "n", "path": "x", "value": "no"}]}}"#;
    let mut j = Client::connect(&server, "/scenes/x?encoding=json&join=none").await;
    j.send_raw(bad.to_vec()).await;
    let ServerMessage::Error { msg_id, error } = j.recv().await else {
        panic!()
    };
    assert_eq!(msg_id.as_deref(), Some("a:1"));
    assert!(
        error.starts_with("invalid_message: ") && error.contains("op #1"),
        "{error}"
    );

    // A conflicting copy: rejected with the replica's reason, never broadcast.
    let good = msg("a", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    a.send(&ClientFrame::Crdt(good.clone())).await;
    assert!(matches!(a.recv().await, ServerMessage::Ack { .. }));
    assert_eq!(b.recv().await, ServerMessage::Broadcast(good.clone()));
    let mut other = good.clone();
    other.ops = vec![Op::node_insert("", "m", "Mesh")];
    a.send(&ClientFrame::Crdt(other)).await;
    let ServerMessage::Error { msg_id, error } = a.recv().await else {
        panic!()
    };
    assert_eq!(msg_id.as_deref(), Some("a:1"));
    assert!(error.starts_with("conflict: "), "{error}");
    // Another client on this connection: refused.
    a.send(&ClientFrame::Crdt(msg("mallory", 1, 2, vec![])))
        .await;
    let ServerMessage::Error { error, .. } = a.recv().await else {
        panic!()
    };
    assert!(error.starts_with("client_mismatch: "), "{error}");
    // b saw nothing but the good message: its next frame answers its own check.
    let hb = b.hash("after").await;
    assert_eq!(hb, a.hash("a").await);
    let (_, body) = http_get(&server, "/scenes/x").await;
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, &[good]);
    assert_eq!(String::from_utf8(body).unwrap(), model.to_json());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_only_their_connection() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 4096;
    let server = server::start(cfg).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/x").await;
    a.state().await;
    let mut b = Client::connect(&server, "/scenes/x").await;
    b.state().await;
    let big = msg(
        "a",
        1,
        1,
        vec![Op::string_set("", "note", &"x".repeat(10_000))],
    );
    a.send(&ClientFrame::Crdt(big)).await;
    assert_eq!(a.closed().await, Some(1009));
    let m = msg("b", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    b.send(&ClientFrame::Crdt(m)).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::Ack { server_seq: 1, .. }
    ));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_scenes_and_writes() {
    let mut cfg = config();
    cfg.auth = Some(AuthConfig::new("k"));
    let server = server::start(cfg).await.unwrap();
    let token = |scene: &str, access| {
        let claims = Claims {
            scene: Some(scene.into()),
            prefix: None,
            access,
            exp: 4_000_000_000,
            sub: None,
        };
        make_token(b"k", &claims).unwrap()
    };
    let url = |p: &str| format!("ws://{}{}", server.addr(), p);
    for bad in ["/scenes/a", "/scenes/a?token=nope"] {
        let e = connect_async(url(bad)).await.unwrap_err().to_string();
        assert!(e.contains("401"), "{bad}: {e}");
    }
    let e = connect_async(url(&format!(
        "/scenes/b?token={}",
        token("a", Access::Write)
    )))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    let wrong_key = make_token(
        b"other",
        &Claims {
            scene: Some("a".into()),
            prefix: None,
            access: Access::Write,
            exp: 4_000_000_000,
            sub: None,
        },
    )
    .unwrap();
    assert!(
        connect_async(url(&format!("/scenes/a?token={wrong_key}")))
            .await
            .is_err()
    );

    let mut r = Client::connect(
        &server,
        &format!("/scenes/a?token={}", token("a", Access::Read)),
    )
    .await;
    r.state().await;
    r.send(&ClientFrame::Crdt(msg("r", 1, 1, vec![]))).await;
    let ServerMessage::Error { error, .. } = r.recv().await else {
        panic!()
    };
    assert!(error.starts_with("read_only: "), "{error}");
    let mut w = Client::connect(
        &server,
        &format!("/scenes/a?token={}", token("a", Access::Write)),
    )
    .await;
    w.state().await;
    w.send(&ClientFrame::Crdt(msg(
        "w",
        1,
        1,
        vec![Op::node_insert("", "n", "Mesh")],
    )))
    .await;
    assert!(matches!(
        w.recv().await,
        ServerMessage::Ack { server_seq: 1, .. }
    ));
    assert!(matches!(r.recv().await, ServerMessage::Broadcast(_)));
    // HTTP reads need a token too.
    assert_eq!(http_get(&server, "/scenes/a").await.0, 401);
    assert_eq!(
        http_get(
            &server,
            &format!("/scenes/a?token={}", token("a", Access::Read))
        )
        .await
        .0,
        200
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_refuses_the_excess() {
    let mut cfg = config();
    cfg.limits.msgs_per_sec = 1;
    cfg.limits.burst = 2;
    let server = server::start(cfg).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/x?join=none").await;
    for lt in 1..=5 {
        a.send(&ClientFrame::Crdt(msg("a", lt, lt, vec![]))).await;
    }
    let (mut acks, mut limited) = (0, 0);
    for _ in 0..5 {
        match a.recv().await {
            ServerMessage::Ack { .. } => acks += 1,
            ServerMessage::Error { error, .. } if error.starts_with("rate_limited: ") => {
                limited += 1
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((acks, limited), (2, 3));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sends_only_what_the_client_lacks() {
    let server = server::start(config()).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/x?join=none").await;
    let msgs = [
        msg("a", 1, 1, vec![Op::node_insert("", "n", "Mesh")]),
        msg("a", 2, 2, vec![Op::number_set("n", "hp", 1.0)]),
        msg("b", 1, 3, vec![Op::number_add("n", "hp", 1.0)]),
    ];
    let mut b = Client::connect(&server, "/scenes/x?join=none").await;
    // Joining is asynchronous: a round trip shows b has joined.
    b.hash("joined").await;
    for m in &msgs {
        let (c, other) = if m.client == "a" {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        c.send(&ClientFrame::Crdt(m.clone())).await;
        assert!(matches!(c.recv().await, ServerMessage::Ack { .. }));
        assert!(matches!(other.recv().await, ServerMessage::Broadcast(_)));
    }
    // A returning client that holds a:1 only.
    let mut r = Client::connect(&server, "/scenes/x?join=none").await;
    let clock: Clock = [("a".to_string(), 1)].into();
    r.send(&ClientFrame::Sync {
        vector_clock: clock,
        filter: None,
    })
    .await;
    r.send(&ClientFrame::SyncCheck {
        request_id: "done".into(),
    })
    .await;
    let mut got = Vec::new();
    loop {
        match r.recv().await {
            ServerMessage::Broadcast(m) => got.push(m.id),
            ServerMessage::SyncStatus { request_id, .. } => {
                assert_eq!(request_id, "done");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, ["a:2", "b:3"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_the_scene_goes_on() {
    let mut cfg = config();
    cfg.limits.send_queue_bytes = 64 << 10;
    cfg.limits.msgs_per_sec = 100_000;
    cfg.limits.burst = 100_000;
    let server = server::start(cfg).await.unwrap();
    let mut slow = Client::connect(&server, "/scenes/x").await;
    slow.state().await;
    let mut w = Client::connect(&server, "/scenes/x?join=none").await;
    let pad = "p".repeat(16 << 10);
    // Far more than the socket buffers hold: the slow reader's queue must overflow.
    let n = 2000u64;
    for lt in 1..=n {
        w.send(&ClientFrame::Crdt(msg(
            "w",
            lt,
            lt,
            vec![Op::string_set("", "pad", &pad)],
        )))
        .await;
    }
    let mut acks = 0;
    while acks < n {
        if let ServerMessage::Ack { .. } = w.recv().await {
            acks += 1;
        }
    }
    assert_eq!(slow.closed().await, Some(4008));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("vuer-rtc-server-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.storage = Storage::Dir(dir.clone());
    cfg.snapshot_every = 7;
    let server = server::start(cfg.clone()).await.unwrap();
    let mut a = Client::connect(&server, "/scenes/kept?join=none").await;
    let mut sent = vec![msg("a", 1, 1, vec![Op::node_insert("", "n", "Mesh")])];
    for lt in 2..=20 {
        sent.push(msg("a", lt, lt, vec![Op::number_add("n", "hp", 1.0)]));
    }
    for m in &sent {
        a.send(&ClientFrame::Crdt(m.clone())).await;
        assert!(matches!(a.recv().await, ServerMessage::Ack { .. }));
    }
    server.shutdown().await;
    assert!(
        dir.join("kept")
            .join("snapshots")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );

    let server = server::start(cfg).await.unwrap();
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, &sent);
    let (status, body) = http_get(&server, "/scenes/kept").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), model.to_json());
    assert_eq!(http_get(&server, "/scenes/missing").await.0, 404);
    let (_, list) = http_get(&server, "/scenes").await;
    assert!(String::from_utf8_lossy(&list).contains("\"kept\""));
    let (status, metrics) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&metrics).contains("vuer_rtc_connections"));
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The reference interpreter (see `tests/text_interop.rs`).
fn reference_python() -> String {
    std::env::var("VUER_RTC_REFERENCE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| option_env!("VUER_RTC_REFERENCE_PYTHON").map(str::to_owned))
        .expect("VUER_RTC_REFERENCE_PYTHON names the reference Python")
}

/// Three GraphStores of the Python reference (a client no one here wrote) edit one
/// scene through the server — property and node ops, concurrent text inserts at one
/// place and an offline delete, one offline period with sync and resend — while a
/// Rust GraphStore listens; all end with the server's scene.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(reference_python),
    ignore = "needs VUER_RTC_REFERENCE_PYTHON with vuer-rtc==0.0.2, websockets and msgpack (.ci/run sets it)"
)]
async fn python_reference_clients_converge_through_the_server() {
    let server = server::start(config()).await.unwrap();
    // A Rust store listening to the scene.
    let mut rust = Client::connect(&server, "/scenes/ref").await;
    rust.state().await;
    let mut store = vuer_rtc::GraphStore::new("rusty");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/server_reference.py"
    );
    let url = format!("ws://{}/scenes/ref", server.addr());
    let child = tokio::process::Command::new(reference_python())
        .arg(script)
        .arg(&url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the reference Python starts");
    // Meanwhile the Rust store takes every broadcast.
    let listen = async {
        loop {
            match tokio::time::timeout(Duration::from_millis(500), rust.ws.next()).await {
                Ok(Some(Ok(Ws::Binary(b)))) => {
                    let (m, _) =
                        decode_server_frame(&b, Encoding::MessagePack, &Limits::default()).unwrap();
                    if let ServerMessage::Broadcast(m) = m {
                        store.receive(m).unwrap();
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(_) => panic!("the Rust client's connection ended"),
                Err(_) => {}
            }
        }
    };
    let out = tokio::select! {
        out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()) => out.expect("the reference finishes in 60 s").unwrap(),
        () = listen => unreachable!(),
    };
    assert!(
        out.status.success(),
        "the reference script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Drain what the Rust client has left, then compare everyone with the server.
    let hash = rust.hash("rust").await;
    while let Ok(Some(Ok(Ws::Binary(b)))) =
        tokio::time::timeout(Duration::from_millis(200), rust.ws.next()).await
    {
        if let (ServerMessage::Broadcast(m), _) =
            decode_server_frame(&b, Encoding::MessagePack, &Limits::default()).unwrap()
        {
            store.receive(m).unwrap();
        }
    }
    let (_, body) = http_get(&server, "/scenes/ref").await;
    let state: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        store.graph().to_json(),
        String::from_utf8(body.clone()).unwrap(),
        "the Rust store"
    );
    for (name, h) in report["hashes"].as_object().unwrap() {
        assert_eq!(
            u64::from_str_radix(h.as_str().unwrap(), 16).unwrap(),
            hash,
            "{name}'s last status"
        );
    }
    let server_nodes = state["nodes"].as_object().unwrap();
    for (name, nodes) in report["nodes"].as_object().unwrap() {
        let nodes = nodes.as_object().unwrap();
        assert_eq!(nodes.len(), server_nodes.len(), "{name}: {nodes:?}");
        for (key, n) in nodes {
            let s = &server_nodes[key];
            assert_eq!(n["tag"], s["tag"], "{name} {key}");
            assert_eq!(n["deleted"], s["deleted"], "{name} {key}");
            let ours = s["properties"].as_object().unwrap();
            let theirs = n["properties"].as_object().unwrap();
            assert_eq!(
                theirs.len(),
                ours.len(),
                "{name} {key}: {theirs:?} vs {ours:?}"
            );
            for (p, v) in theirs {
                let w = &ours[p];
                let same = match (v.as_f64(), w.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => crate::support::first_diff(v, w, p).is_none(),
                };
                assert!(same, "{name} {key}.{p}: reference {v}, server {w}");
            }
        }
    }
    // The values the edits make (the reference agrees with the server on each).
    let cube = &server_nodes["cube"]["properties"];
    assert_eq!(cube["health"], 64.0);
    assert_eq!(cube["color"], "#00ff00");
    // Text: "hello" and "wörld" inserted at 0 concurrently, two characters deleted
    // offline at 1, "¡" inserted at 0: eleven characters, whatever the rope's order.
    let label = server_nodes["doc"]["properties"]["label"].as_str().unwrap();
    assert_eq!(label.chars().count(), 1 + 10 - 2, "{label}");
    assert!(label.starts_with('¡'), "{label}");
    server.shutdown().await;
}

/// A `vuer-rtc serve` process on `dir` (durable acks); returns it and its address.
async fn spawn_serve(dir: &std::path::Path) -> (tokio::process::Child, std::net::SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vuer-rtc"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ack",
            "durable",
            "--snapshot-every",
            "150",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--rate", "100000", "--burst", "100000"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("vuer-rtc serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(WAIT, tokio::io::BufReader::new(stdout).read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .and_then(|r| r.strip_suffix("/scenes/{scene}"))
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// `serve --ack durable` under a stream of writes is killed with SIGKILL at random
/// points, six times: after each restart every message any client saw acknowledged is
/// in the recovered state, nothing that was never sent appears, and the writer
/// reconnects, syncs, resends what was not acknowledged and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let dir = std::env::temp_dir().join(format!("vuer-rtc-server-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = crate::support::Rng::new(0x5eed);
    let mut acked = std::collections::BTreeSet::new();
    let mut sent: Vec<Message> = Vec::new();
    let set = |i: u64| {
        msg(
            "w",
            i,
            i,
            vec![Op::number_set("n", format!("m{i}"), i as f64)],
        )
    };
    for round in 0..6 {
        let (mut child, addr) = spawn_serve(&dir).await;
        let server_url = format!("ws://{addr}/scenes/crash?join=none");
        let (ws, _) = connect_async(&server_url).await.unwrap();
        let mut w = Client {
            ws,
            encoding: Encoding::MessagePack,
            framing: Framing::Plain,
        };
        // What the recovered server holds: every acknowledged message, no other.
        let state = http_state(addr).await;
        let props = state["nodes"]["n"]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if round > 0 {
            assert!(
                state["nodes"].get("n").is_some(),
                "round {round}: the acked insert lost"
            );
        }
        for i in acked.iter().filter(|&&i| i > 1) {
            assert!(
                props.contains_key(&format!("m{i}")),
                "round {round}: acked m{i} lost"
            );
        }
        for p in props.keys() {
            let i: u64 = p[1..].parse().unwrap();
            assert!(
                sent.iter().any(|m| m.lt == i),
                "round {round}: {p} was never sent"
            );
        }
        if round == 0 {
            let create = msg("w", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
            w.send(&ClientFrame::Crdt(create.clone())).await;
            assert!(matches!(w.recv().await, ServerMessage::Ack { .. }));
            sent.push(create);
            acked.insert(1);
        } else {
            // Resend what was never acknowledged (copies of held ones are acked again).
            for m in sent.iter().filter(|m| !acked.contains(&m.lt)) {
                w.send(&ClientFrame::Crdt(m.clone())).await;
            }
        }
        // Stream new writes, reading acks, and kill the server at a random point.
        let kill_after = Duration::from_millis(30 + rng.below(250) as u64);
        let started = tokio::time::Instant::now();
        let mut next = sent.len() as u64 + 1;
        loop {
            if started.elapsed() >= kill_after {
                child.start_kill().unwrap();
                let _ = child.wait().await;
                break;
            }
            for _ in 0..20 {
                let m = set(next);
                next += 1;
                w.send(&ClientFrame::Crdt(m.clone())).await;
                sent.push(m);
            }
            while let Ok(Some(Ok(Ws::Binary(b)))) =
                tokio::time::timeout(Duration::from_millis(2), w.ws.next()).await
            {
                if let (ServerMessage::Ack { msg_id, .. }, _) =
                    decode_server_frame(&b, Encoding::MessagePack, &Limits::default()).unwrap()
                {
                    acked.insert(msg_id[2..].parse::<u64>().unwrap());
                }
            }
        }
        eprintln!(
            "round {round}: {} sent, {} acked before the kill",
            sent.len(),
            acked.len()
        );
        // Acks already in the socket were sent by the server before it died: count them.
        while let Ok(Some(Ok(Ws::Binary(b)))) =
            tokio::time::timeout(Duration::from_millis(100), w.ws.next()).await
        {
            if let Ok((ServerMessage::Ack { msg_id, .. }, _)) =
                decode_server_frame(&b, Encoding::MessagePack, &Limits::default())
            {
                acked.insert(msg_id[2..].parse::<u64>().unwrap());
            }
        }
    }
    // Last start: resend the rest, and everything sent is there, once.
    let (mut child, addr) = spawn_serve(&dir).await;
    let (ws, _) = connect_async(format!("ws://{addr}/scenes/crash?join=none"))
        .await
        .unwrap();
    let mut w = Client {
        ws,
        encoding: Encoding::MessagePack,
        framing: Framing::Plain,
    };
    let before = http_state(addr).await;
    let held = before["nodes"]["n"]["properties"]
        .as_object()
        .map_or(0, |p| p.len());
    assert!(
        held >= acked.len() - 1,
        "{held} held, {} acked",
        acked.len()
    );
    let missing: Vec<&Message> = sent.iter().filter(|m| !acked.contains(&m.lt)).collect();
    for m in &missing {
        w.send(&ClientFrame::Crdt((*m).clone())).await;
    }
    for _ in &missing {
        assert!(matches!(w.recv().await, ServerMessage::Ack { .. }));
    }
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, &sent);
    let after = http_state(addr).await;
    assert_eq!(
        after,
        serde_json::from_str::<serde_json::Value>(&model.to_json()).unwrap()
    );
    assert!(
        acked.len() > 20,
        "the runs acknowledged only {} messages",
        acked.len()
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn http_state(addr: std::net::SocketAddr) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /scenes/crash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    if text.starts_with("HTTP/1.1 404") {
        return serde_json::json!({"nodes": {}});
    }
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = out[at..].to_vec();
    if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    serde_json::from_slice(&body).unwrap()
}

/// Messages without clock counters are caught up by the Bloom filter of held ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_by_bloom_filter_for_uncounted_messages() {
    use vuer_rtc::protocol::BloomFilter;
    let server = server::start(config()).await.unwrap();
    let mut u = Client::connect(&server, "/scenes/b?join=none").await;
    let uncounted = |lt: u64, ops| Message {
        clock: Clock::new(),
        ..msg("u", 0, lt, ops)
    };
    let sent = [
        uncounted(1, vec![Op::node_insert("", "n", "Mesh")]),
        uncounted(2, vec![Op::number_set("n", "hp", 1.0)]),
        uncounted(3, vec![Op::number_set("n", "mp", 2.0)]),
    ];
    for m in &sent {
        u.send(&ClientFrame::Crdt(m.clone())).await;
        assert!(matches!(u.recv().await, ServerMessage::Ack { .. }));
    }
    let mut r = Client::connect(&server, "/scenes/b?join=none").await;
    let filter = BloomFilter::of(["u:1", "u:3"], 0.001);
    r.send(&ClientFrame::Sync {
        vector_clock: Clock::new(),
        filter: Some(filter),
    })
    .await;
    r.send(&ClientFrame::SyncCheck {
        request_id: "end".into(),
    })
    .await;
    let mut got = Vec::new();
    loop {
        match r.recv().await {
            ServerMessage::Broadcast(m) => got.push(m.id),
            ServerMessage::SyncStatus { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, ["u:2"]);
    server.shutdown().await;
}

/// The load generator against a server in this process: light and tracked
/// connections, batch and single broadcast frames, full replicas compared with the
/// server; everything acked arrives everywhere and the report says so.
#[cfg(feature = "loadtest")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_converges_and_accounts_for_every_message() {
    use vuer_rtc::loadtest::{self, LoadConfig, Phase};
    let server = server::start(ServerConfig {
        compact_every: 10,
        ..config()
    })
    .await
    .unwrap();
    for batch in [true, false] {
        let cfg = LoadConfig {
            url: format!("ws://{}", server.addr()),
            clients: 12,
            writers: 3,
            rate: 40.0,
            ops: 4,
            nodes: 8,
            duration: Duration::from_millis(800),
            conns_per_task: 5,
            heartbeat: Duration::from_millis(200),
            drain: Duration::from_secs(10),
            verify: 1,
            track: 4,
            batch,
            ..LoadConfig::default()
        };
        let mut phases = Vec::new();
        let r = loadtest::run(&cfg, |p| {
            if phases.last() != Some(&p.phase) {
                phases.push(p.phase);
            }
        })
        .await
        .unwrap();
        assert!(r.converged, "{r:#?}");
        assert_eq!(phases.last(), Some(&Phase::Done));
        assert_eq!(
            (r.connected, r.disconnected, r.lost, r.errors),
            (12, 0, 0, 0)
        );
        assert!(r.sent >= 3 * 20, "{} sent", r.sent);
        assert_eq!(r.acked, r.sent);
        let per_msg = if batch { 12 } else { 11 };
        assert_eq!(r.delivered, r.acked * per_msg);
        assert_eq!(r.ack.count, r.acked);
        // Tracked connections time what they get from other writers.
        assert!(r.delivery.count > 0 && r.delivery.count < r.delivered);
        assert_eq!((r.verified, r.verified_equal), (1, 1));
        assert!(r.server_hash.is_some());
    }
    // The sessions' heartbeats (readers that never write among them) let the scene
    // compact as it goes.
    assert!(metric(&server, "vuer_rtc_compacted_messages_total").await > 0.0);
    // A bad configuration is an error, not a run.
    let bad = LoadConfig {
        url: format!("ws://{}", server.addr()),
        writers: 5,
        clients: 2,
        ..LoadConfig::default()
    };
    assert!(loadtest::run(&bad, |_| {}).await.is_err());
    server.shutdown().await;
}

/// A `SyncClient` that was offline while the server compacted past its clock (it was
/// evicted by the horizon) gets a full `state` in answer to its `sync`: it rejoins from
/// the server's snapshot and keeps its offline edit, which the server took only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_client_behind_the_compacted_base_rejoins_and_keeps_its_edits() {
    use vuer_rtc::client::{ClientOptions, SyncClient};
    let dir = std::env::temp_dir().join(format!("vuer-rtc-client-rejoin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.storage = Storage::Dir(dir.clone());
    cfg.compact_every = 1;
    cfg.horizon = 3;
    let server = server::start(cfg.clone()).await.unwrap();
    let addr = server.addr();
    let url = format!("ws://{addr}/scenes/r");
    let mut alice = SyncClient::connect(&url, "alice", ClientOptions::default())
        .await
        .unwrap();
    alice.with_store(|s| {
        s.edit(Op::node_insert("", "n", "Mesh")).unwrap();
        s.edit(Op::number_set("n", "hp", 10.0)).unwrap();
        s.commit("create");
    });
    alice.flush(WAIT).await.unwrap();
    // The server goes away; alice edits offline (at her stale Lamport time).
    server.shutdown().await;
    alice.with_store(|s| {
        s.edit(Op::number_add("n", "hp", 5.0)).unwrap();
        s.edit(Op::string_set("n", "by", "alice offline")).unwrap();
        s.commit("offline");
    });
    let offline_lt = alice.with_store(|s| s.lt());
    assert_eq!(alice.with_store(|s| s.unacked_messages().len()), 1);
    let (events_tx, events) = std::sync::mpsc::channel();
    let _sub = alice.with_store(|s| {
        s.subscribe(move |e| {
            let _ = events_tx.send(e.clone());
        })
    });
    // Alice's address refuses her meanwhile (and is not given to the other server).
    let hold = tokio::net::TcpListener::bind(addr).await.unwrap();
    let refuse = tokio::spawn(async move {
        while let Ok((conn, _)) = hold.accept().await {
            drop(conn);
        }
    });
    // On another address, bob writes more than the horizon: alice is evicted and the
    // server compacts past everything she holds.
    let elsewhere = server::start(cfg.clone()).await.unwrap();
    let bob_url = format!("ws://{}/scenes/r", elsewhere.addr());
    let bob = SyncClient::connect(&bob_url, "bob", ClientOptions::default())
        .await
        .unwrap();
    for i in 0..10 {
        bob.with_store(|s| {
            s.edit(Op::number_add("n", "hp", 1.0)).unwrap();
            s.edit(Op::number_set("n", "i", f64::from(i))).unwrap();
            s.commit("bob");
        });
        bob.flush(WAIT).await.unwrap();
    }
    bob.close().await;
    // The compacted base is past alice's offline edit, and holds bob's messages.
    let mut probe = Client::connect(&elsewhere, "/scenes/r?join=state").await;
    match probe.recv().await {
        ServerMessage::State { snapshot, .. } => {
            assert!(snapshot.lt > offline_lt, "{} <= {offline_lt}", snapshot.lt);
            assert!(snapshot.vector_clock.get("bob").copied().unwrap_or(0) > 0);
        }
        other => panic!("expected state, got {other:?}"),
    }
    drop(probe);
    elsewhere.shutdown().await;
    refuse.abort();
    let _ = refuse.await;
    // Back on alice's address: she reconnects by herself, is behind, and rejoins.
    cfg.listen = addr;
    let server = server::start(cfg).await.unwrap();
    alice.flush(WAIT).await.unwrap();
    let mut bob = SyncClient::connect(&url, "bob", ClientOptions::default())
        .await
        .unwrap();
    bob.with_store(|s| {
        s.edit(Op::number_add("n", "hp", 100.0)).unwrap();
        s.commit("bob again");
    });
    bob.flush(WAIT).await.unwrap();
    let a = alice.check(WAIT).await.unwrap();
    let b = bob.check(WAIT).await.unwrap();
    assert_eq!(a.hash, b.hash);
    assert_eq!(alice.with_store(|s| s.replica().state_hash()), a.hash);
    assert_eq!(bob.with_store(|s| s.replica().state_hash()), a.hash);
    // Alice's offline edit is in both, once: 10 + 5 + 10 × 1 + 100.
    for c in [&alice, &bob] {
        let (hp, by) = c.with_store(|s| {
            let n = s.graph().node("n").unwrap();
            (
                n.get("hp").and_then(|v| v.as_number()),
                n.get("by").and_then(|v| v.as_str().map(|t| t.into_owned())),
            )
        });
        assert_eq!(hp, Some(125.0));
        assert_eq!(by.as_deref(), Some("alice offline"));
    }
    assert!(alice.errors().is_empty(), "{:?}", alice.errors());
    // She rejoined from the snapshot, her offline edit committed again as a new message.
    let rejoined: Vec<_> = events
        .try_iter()
        .filter(|e| matches!(e, vuer_rtc::store::StoreEvent::Rejoined { .. }))
        .collect();
    assert_eq!(
        rejoined,
        [vuer_rtc::store::StoreEvent::Rejoined { reissued: 1 }]
    );
    alice.close().await;
    bob.close().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The blocking façade: two clients in plain threads (no async code of the caller's)
/// edit one scene through a server and converge.
#[test]
fn blocking_clients_converge_without_async_code() {
    use vuer_rtc::client::{ClientOptions, blocking};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server::start(config())).unwrap();
    let url = format!("ws://{}/scenes/blocking", server.addr());
    let mut alice = blocking::SyncClient::connect(&url, "alice", ClientOptions::default()).unwrap();
    alice.with_store(|s| {
        s.edit(Op::node_insert("", "n", "Mesh")).unwrap();
        s.edit(Op::number_set("n", "hp", 10.0)).unwrap();
        s.commit("create");
    });
    alice.flush(WAIT).unwrap();
    let url2 = url.clone();
    let bob = std::thread::spawn(move || {
        let mut bob =
            blocking::SyncClient::connect(&url2, "bob", ClientOptions::default()).unwrap();
        bob.with_store(|s| {
            s.edit(Op::number_add("n", "hp", 5.0)).unwrap();
            s.commit("add");
        });
        bob.flush(WAIT).unwrap();
        let status = bob.check(WAIT).unwrap();
        (status.hash, bob.with_store(|s| s.replica().state_hash()))
    })
    .join()
    .unwrap();
    let a = alice.check(WAIT).unwrap();
    assert_eq!(bob, (a.hash, a.hash));
    assert_eq!(alice.with_store(|s| s.replica().state_hash()), a.hash);
    assert_eq!(
        alice.with_store(|s| s.graph().node("n").and_then(|n| n.get("hp")?.as_number())),
        Some(15.0)
    );
    assert!(alice.errors().is_empty());
    alice.close();
    // A bad URL is an error, not a hang.
    assert!(blocking::SyncClient::connect("http://x", "c", ClientOptions::default()).is_err());
    rt.block_on(server.shutdown());
}

/// A connected `SyncClient` that wrote once and then only reads does not stall the
/// scene's compaction: its heartbeats say what it holds. Without heartbeats the scene
/// compacts nothing past its last message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_client_heartbeats_let_the_scene_compact() {
    use vuer_rtc::client::{ClientOptions, SyncClient};
    async fn compacted(heartbeat: Duration) -> f64 {
        let server = server::start(ServerConfig {
            compact_every: 5,
            ..config()
        })
        .await
        .unwrap();
        let url = format!("ws://{}/scenes/hb", server.addr());
        let options = ClientOptions {
            heartbeat,
            ..ClientOptions::default()
        };
        let alice = SyncClient::connect(&url, "alice", options.clone())
            .await
            .unwrap();
        alice.with_store(|s| {
            s.edit(Op::node_insert("", "n", "Mesh")).unwrap();
            s.commit("create");
        });
        alice.flush(WAIT).await.unwrap();
        let bob = SyncClient::connect(&url, "bob", options).await.unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                bob.with_store(|s| {
                    s.edit(Op::number_add("n", "hp", 1.0)).unwrap();
                    s.commit("add");
                });
            }
        };
        write(30);
        bob.flush(WAIT).await.unwrap();
        // Time for a few heartbeats, then more messages to trigger compaction (with
        // heartbeats, a few more rounds on a loaded machine, until a deadline).
        tokio::time::sleep(Duration::from_millis(300)).await;
        write(10);
        bob.flush(WAIT).await.unwrap();
        let mut compacted = metric(&server, "vuer_rtc_compacted_messages_total").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !heartbeat.is_zero() && compacted < 31.0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            write(5);
            bob.flush(WAIT).await.unwrap();
            compacted = metric(&server, "vuer_rtc_compacted_messages_total").await;
        }
        alice.close().await;
        bob.close().await;
        server.shutdown().await;
        compacted
    }
    assert_eq!(compacted(Duration::ZERO).await, 1.0, "alice's message only");
    assert!(compacted(Duration::from_millis(50)).await >= 31.0);
}

//! The server's policies over real WebSockets on loopback: idle scenes unloaded and
//! recovered from disk (and never while connected), when acks leave under
//! `AckMode::Applied` and `AckMode::Durable`, and the `max_scenes` and
//! `max_conns_per_scene` refusals. Every test binds port 0, is bounded in time (each
//! receive and each wait has a timeout), stops its server and removes its directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as Ws};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use vuer_rtc::op::{Limits, Message, Op};
use vuer_rtc::protocol::{
    ClientFrame, Encoding, Framing, OwnedBody, ServerMessage, decode_server_frame,
    encode_client_frame,
};
use vuer_rtc::server::{self, AckMode, RunningServer, Storage};

/// The longest wait for any one frame, answer or condition.
use crate::server::{WAIT, config, http_get, metric, msg};
/// The idle time after which the tests' scenes are unloaded.
const IDLE: Duration = Duration::from_millis(300);

/// A directory under the system's temp dir, removed on drop (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("vuer-rtc-policies-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A raw WebSocket client speaking plain MessagePack frames.
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    async fn connect(server: &RunningServer, path_and_query: &str) -> Client {
        let url = format!("ws://{}{}", server.addr(), path_and_query);
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(&url))
            .await
            .expect("the upgrade in time")
            .unwrap_or_else(|e| panic!("{path_and_query}: {e}"));
        Client { ws }
    }

    async fn send(&mut self, f: &ClientFrame) {
        let bytes = encode_client_frame(f, Encoding::MessagePack, Framing::Plain);
        self.ws.send(Ws::Binary(bytes.into())).await.unwrap();
    }

    /// The next data frame.
    async fn recv(&mut self) -> ServerMessage {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            let frame = next
                .expect("the connection open")
                .expect("a readable frame");
            let bytes = match frame {
                Ws::Binary(b) => b.to_vec(),
                Ws::Text(t) => panic!("a text frame on a msgpack connection: {t}"),
                Ws::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            };
            let (m, _) =
                decode_server_frame(&bytes, Encoding::MessagePack, &Limits::default()).unwrap();
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

    /// Closes from this side and waits until the connection is gone.
    async fn leave(mut self) {
        let _ = self.ws.close(None).await;
        let _ = self.closed().await;
    }

    /// The `state` frame a joining connection gets first.
    async fn state(&mut self) -> ServerMessage {
        let m = self.recv().await;
        assert!(
            matches!(m, ServerMessage::State { .. }),
            "expected state, got {m:?}"
        );
        m
    }

    /// Sends `m` and returns the `serverSeq` of its ack.
    async fn write(&mut self, m: &Message) -> u64 {
        self.send(&ClientFrame::Crdt(m.clone())).await;
        match self.recv().await {
            ServerMessage::Ack { msg_id, server_seq } => {
                assert_eq!(msg_id, m.id);
                server_seq
            }
            other => panic!("expected the ack of {}, got {other:?}", m.id),
        }
    }

    /// The server's state hash, by `sync-check` (also a round trip: every frame sent
    /// before it has been handled).
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

/// The HTTP status and body of a WebSocket upgrade the server refuses.
async fn refused(server: &RunningServer, path: &str) -> (u16, String) {
    let url = format!("ws://{}{}", server.addr(), path);
    match tokio::time::timeout(WAIT, connect_async(&url))
        .await
        .expect("an answer in time")
    {
        Ok(_) => panic!("{path}: the upgrade was accepted"),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("{path}: expected an HTTP refusal, got {e}"),
    }
}

/// A node and a few edits of it by `client`, numbered from 1.
fn edits(client: &str, n: u64) -> Vec<Message> {
    let mut out = vec![msg(client, 1, 1, vec![Op::node_insert("", "n", "Mesh")])];
    for i in 2..=n {
        out.push(msg(
            client,
            i,
            i,
            vec![
                Op::number_add("n", "hp", 1.0),
                Op::string_set("n", format!("s{i}"), "v"),
            ],
        ));
    }
    out
}

fn model_json(msgs: &[Message]) -> String {
    let mut model = vuer_rtc::create_empty_graph();
    vuer_rtc::apply_messages(&mut model, msgs);
    model.to_json()
}

/// A scene as `GET /scenes` lists it: loaded, and its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listed {
    loaded: bool,
    connections: u64,
}

/// What `GET /scenes` says of `scene` (`None`: not listed).
async fn listed(server: &RunningServer, scene: &str) -> Option<Listed> {
    let (status, body) = http_get(server, "/scenes").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scene"] == scene)
        .map(|s| Listed {
            loaded: s["loaded"].as_bool().unwrap(),
            connections: s["connections"].as_u64().unwrap(),
        })
}

/// Polls `GET /scenes` until `scene` is listed as `want`; panics after [`WAIT`].
async fn wait_listed(server: &RunningServer, scene: &str, want: Option<Listed>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = listed(server, scene).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{scene}: listed as {now:?} after {WAIT:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` until it holds; panics after [`WAIT`].
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn snapshot_files(dir: &Path) -> usize {
    dir.join("snapshots")
        .read_dir()
        .map_or(0, |d| d.flatten().count())
}

/// A scene without connections is snapshotted and unloaded after `idle_unload` (it is
/// listed as on disk only, the scenes gauge drops), and the next connection finds it
/// again: the `state` a joiner gets, the state hash and the state JSON equal those
/// before the unload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_scene_is_unloaded_and_recovered_from_disk() {
    let tmp = TempDir::new("idle");
    let mut cfg = config();
    cfg.storage = Storage::Dir(tmp.path().to_owned());
    cfg.limits.idle_unload = IDLE;
    let server = server::start(cfg).await.unwrap();

    let mut w = Client::connect(&server, "/scenes/idle").await;
    w.state().await;
    let sent = edits("w", 6);
    for (k, m) in sent.iter().enumerate() {
        assert_eq!(w.write(m).await, k as u64 + 1);
    }
    // What a joiner gets while the scene is in memory.
    let mut j = Client::connect(&server, "/scenes/idle").await;
    let before = j.state().await;
    let hash = j.hash("before").await;
    assert_eq!(
        listed(&server, "idle").await,
        Some(Listed {
            loaded: true,
            connections: 2
        })
    );
    assert_eq!(metric(&server, "vuer_rtc_scenes").await, 1.0);
    assert_eq!(snapshot_files(&tmp.path().join("idle")), 0);

    w.leave().await;
    j.leave().await;
    wait_listed(
        &server,
        "idle",
        Some(Listed {
            loaded: false,
            connections: 0,
        }),
    )
    .await;
    assert_eq!(metric(&server, "vuer_rtc_scenes").await, 0.0);
    // Unloading writes a snapshot (the scene leaves the registry first, then its task
    // commits and snapshots: wait for the file).
    eventually("the unload's snapshot", || {
        snapshot_files(&tmp.path().join("idle")) > 0
    })
    .await;

    // Reconnecting opens it from its directory, as it was.
    let mut r = Client::connect(&server, "/scenes/idle").await;
    let after = r.state().await;
    assert_eq!(after, before);
    let ServerMessage::State { snapshot, journal } = &after else {
        unreachable!()
    };
    assert!(matches!(snapshot.body, OwnedBody::Graph(_)));
    assert_eq!(
        journal.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        sent.iter().map(|m| m.id.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(r.hash("after").await, hash);
    assert_eq!(
        listed(&server, "idle").await,
        Some(Listed {
            loaded: true,
            connections: 1
        })
    );
    let (status, body) = http_get(&server, "/scenes/idle").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), model_json(&sent));
    // It goes on from where it was: the next message gets the next position.
    let next = msg("w", 7, 7, vec![Op::number_set("n", "hp", 0.0)]);
    assert_eq!(r.write(&next).await, 7);
    server.shutdown().await;
}

/// A scene with a connection stays in memory however long it is quiet: while a
/// control scene that lost its connection at the same time is unloaded (and then
/// some), the connected one stays loaded, keeps its state and its connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_with_a_connection_is_not_unloaded() {
    // On disk (a scene in memory is never unloaded at all).
    let tmp = TempDir::new("held");
    let mut cfg = config();
    cfg.storage = Storage::Dir(tmp.path().to_owned());
    cfg.limits.idle_unload = IDLE;
    let server = server::start(cfg).await.unwrap();

    let mut held = Client::connect(&server, "/scenes/held?join=none").await;
    let first = msg("h", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    assert_eq!(held.write(&first).await, 1);
    let hash = held.hash("joined").await;
    let mut control = Client::connect(&server, "/scenes/control?join=none").await;
    control.hash("joined").await;
    control.leave().await;

    // Both scenes have been quiet since; the control one is unloaded...
    wait_listed(
        &server,
        "control",
        Some(Listed {
            loaded: false,
            connections: 0,
        }),
    )
    .await;
    // ...and the held one is still loaded well past its idle time.
    tokio::time::sleep(IDLE * 3).await;
    assert_eq!(
        listed(&server, "held").await,
        Some(Listed {
            loaded: true,
            connections: 1
        })
    );
    assert_eq!(metric(&server, "vuer_rtc_scenes").await, 1.0);
    // The connection was not closed, and the scene holds what it held.
    assert_eq!(held.hash("still").await, hash);
    let second = msg("h", 2, 2, vec![Op::number_set("n", "hp", 1.0)]);
    assert_eq!(held.write(&second).await, 2);
    let mut joiner = Client::connect(&server, "/scenes/held").await;
    let ServerMessage::State { journal, .. } = joiner.state().await else {
        unreachable!()
    };
    assert_eq!(journal, [first, second]);
    server.shutdown().await;
    assert_eq!(held.closed().await, Some(1001));
}

/// `Storage::Memory` promises that scenes live as long as the process: an idle scene
/// in memory is not unloaded (it could not be recovered), its messages stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_in_memory_outlives_its_idle_time() {
    let mut cfg = config();
    cfg.limits.idle_unload = IDLE;
    let server = server::start(cfg).await.unwrap();
    let mut w = Client::connect(&server, "/scenes/mem?join=none").await;
    let sent = edits("w", 3);
    for m in &sent {
        assert!(w.write(m).await > 0);
    }
    w.leave().await;
    // Well past the idle time (an unload happens within IDLE plus one 50 ms tick).
    tokio::time::sleep(IDLE * 4).await;
    let mut r = Client::connect(&server, "/scenes/mem").await;
    let ServerMessage::State { journal, .. } = r.state().await else {
        unreachable!()
    };
    assert_eq!(
        journal.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        sent.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        "the acknowledged messages of an in-memory scene are gone"
    );
    server.shutdown().await;
}

/// Under `AckMode::Applied` acks arrive without waiting for an fsync (with a long
/// `sync_every`, none has happened when they do), and after a graceful shutdown and a
/// restart on the same directory every acknowledged message is held: a joiner gets
/// all of them, the state is the model's, and resending one is acknowledged as a copy
/// (`serverSeq` 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_acks_survive_a_graceful_restart() {
    let tmp = TempDir::new("applied");
    let mut cfg = config();
    cfg.storage = Storage::Dir(tmp.path().to_owned());
    cfg.ack = AckMode::Applied;
    cfg.sync_every = Duration::from_secs(600);
    let server = server::start(cfg.clone()).await.unwrap();

    let mut w = Client::connect(&server, "/scenes/applied?join=none").await;
    let sent = edits("w", 40);
    // Pipelined: the scene merges them in batches of any size.
    for m in &sent {
        w.send(&ClientFrame::Crdt(m.clone())).await;
    }
    let mut acked = Vec::new();
    while acked.len() < sent.len() {
        match w.recv().await {
            ServerMessage::Ack { msg_id, server_seq } => {
                assert!(server_seq > 0, "{msg_id} acknowledged as a copy");
                acked.push(msg_id);
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    // Acks come in the order of the crdt frames.
    assert_eq!(acked, sent.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    assert_eq!(metric(&server, "vuer_rtc_acks_total").await, 40.0);
    // Not one of them waited for the journal's fsync.
    assert_eq!(metric(&server, "vuer_rtc_fsync_seconds_count").await, 0.0);

    server.shutdown().await;
    assert_eq!(w.closed().await, Some(1001));

    let server = server::start(cfg).await.unwrap();
    let mut r = Client::connect(&server, "/scenes/applied").await;
    let ServerMessage::State { journal, .. } = r.state().await else {
        unreachable!()
    };
    assert_eq!(journal.len(), sent.len());
    for id in &acked {
        assert!(
            journal.iter().any(|m| &m.id == id),
            "acknowledged {id} lost in the restart"
        );
    }
    let (status, body) = http_get(&server, "/scenes/applied").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), model_json(&sent));
    let mut w = Client::connect(&server, "/scenes/applied?join=none").await;
    assert_eq!(w.write(&sent[17]).await, 0, "a held message is a copy");
    server.shutdown().await;
}

/// Under `AckMode::Durable` an ack leaves only after the commit of its batch: sending
/// one message at a time, the k-th ack finds at least k group commits recorded (the
/// scene records the fsync before it queues the acks). The same check under
/// `AckMode::Applied` (with a long `sync_every`) finds none, so it tells the two apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_acks_follow_their_commit() {
    for ack in [AckMode::Durable, AckMode::Applied] {
        let tmp = TempDir::new(&format!("ack-{ack:?}"));
        let mut cfg = config();
        cfg.storage = Storage::Dir(tmp.path().to_owned());
        cfg.ack = ack;
        cfg.sync_every = Duration::from_secs(600);
        let server = server::start(cfg).await.unwrap();
        let mut w = Client::connect(&server, "/scenes/d?join=none").await;
        // Many acks: a commit racing its ack would be seen lagging behind at least once.
        for (k, m) in edits("w", 30).iter().enumerate() {
            let k = k as u64 + 1;
            assert_eq!(w.write(m).await, k);
            let fsyncs = metric(&server, "vuer_rtc_fsync_seconds_count").await;
            match ack {
                AckMode::Durable => assert!(
                    fsyncs >= k as f64,
                    "ack {k} arrived with only {fsyncs} commits recorded"
                ),
                AckMode::Applied => assert_eq!(fsyncs, 0.0, "ack {k}"),
            }
        }
        server.shutdown().await;
    }
}

/// With `max_scenes = 1`, a connection to a second scene is refused before the upgrade
/// (HTTP 503, so is an HTTP read of it) while the first scene keeps working; once the
/// first is unloaded the second opens, and then the first is the one refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_scenes_refuses_another_scene_and_the_first_goes_on() {
    // On disk, so that the first scene can be unloaded when idle.
    let tmp = TempDir::new("max-scenes");
    let mut cfg = config();
    cfg.storage = Storage::Dir(tmp.path().to_owned());
    cfg.limits.max_scenes = 1;
    cfg.limits.idle_unload = IDLE;
    let server = server::start(cfg).await.unwrap();

    let mut a = Client::connect(&server, "/scenes/a").await;
    a.state().await;
    let (status, body) = refused(&server, "/scenes/b").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("too many scenes in memory (limit 1)"),
        "{body}"
    );
    // The refusal created nothing: `b` is unknown, on disk too.
    assert_eq!(http_get(&server, "/scenes/b").await.0, 404);
    assert_eq!(listed(&server, "b").await, None);
    assert_eq!(metric(&server, "vuer_rtc_scenes").await, 1.0);

    // The first scene: writes, a second connection, broadcasts.
    let mut a2 = Client::connect(&server, "/scenes/a").await;
    a2.state().await;
    let m = msg("a", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    assert_eq!(a.write(&m).await, 1);
    assert_eq!(a2.recv().await, ServerMessage::Broadcast(m.clone()));
    assert_eq!(
        listed(&server, "a").await,
        Some(Listed {
            loaded: true,
            connections: 2
        })
    );
    assert_eq!(http_get(&server, "/scenes/a").await.0, 200);

    // The limit is on scenes in memory: after `a` is unloaded, `b` opens.
    a.leave().await;
    a2.leave().await;
    wait_listed(
        &server,
        "a",
        Some(Listed {
            loaded: false,
            connections: 0,
        }),
    )
    .await;
    let mut b = Client::connect(&server, "/scenes/b").await;
    b.state().await;
    assert_eq!(b.write(&msg("b", 1, 1, vec![])).await, 1);
    assert_eq!(refused(&server, "/scenes/a").await.0, 503);
    server.shutdown().await;
    assert_eq!(b.closed().await, Some(1001));
}

/// With `max_conns_per_scene = 2`, a third connection to the scene is refused before
/// the upgrade (HTTP 503, counted as a `scene_full` close); the two connected go on
/// as before, another scene still takes connections, and a freed place is taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conns_per_scene_refuses_the_one_over() {
    let mut cfg = config();
    cfg.limits.max_conns_per_scene = 2;
    let server = server::start(cfg).await.unwrap();

    let mut a = Client::connect(&server, "/scenes/s").await;
    a.state().await;
    let mut b = Client::connect(&server, "/scenes/s").await;
    b.state().await;
    let (status, body) = refused(&server, "/scenes/s").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("too many connections to scene \"s\" (limit 2)"),
        "{body}"
    );
    assert_eq!(
        metric(&server, "vuer_rtc_closes_total{reason=\"scene_full\"}").await,
        1.0
    );
    // The refused one is not counted.
    assert_eq!(
        listed(&server, "s").await,
        Some(Listed {
            loaded: true,
            connections: 2
        })
    );
    assert_eq!(metric(&server, "vuer_rtc_connections").await, 2.0);

    // The two connected are unaffected: their next frames are their own acks and the
    // other's broadcasts.
    let ma = msg("a", 1, 1, vec![Op::node_insert("", "n", "Mesh")]);
    assert_eq!(a.write(&ma).await, 1);
    assert_eq!(b.recv().await, ServerMessage::Broadcast(ma.clone()));
    let mb = msg("b", 1, 2, vec![Op::number_set("n", "hp", 5.0)]);
    assert_eq!(b.write(&mb).await, 2);
    assert_eq!(a.recv().await, ServerMessage::Broadcast(mb.clone()));
    assert_eq!(a.hash("a").await, b.hash("b").await);

    // The limit is per scene.
    let mut t = Client::connect(&server, "/scenes/t").await;
    t.state().await;
    // A place freed is taken again, and the newcomer gets the whole scene.
    b.leave().await;
    wait_listed(
        &server,
        "s",
        Some(Listed {
            loaded: true,
            connections: 1,
        }),
    )
    .await;
    let mut c = Client::connect(&server, "/scenes/s").await;
    let ServerMessage::State { journal, .. } = c.state().await else {
        unreachable!()
    };
    assert_eq!(journal, [ma, mb]);
    assert_eq!(refused(&server, "/scenes/s").await.0, 503);
    assert_eq!(
        metric(&server, "vuer_rtc_closes_total{reason=\"scene_full\"}").await,
        2.0
    );
    server.shutdown().await;
    assert_eq!(a.closed().await, Some(1001));
    assert_eq!(t.closed().await, Some(1001));
}

//! The network client (feature `client`): a [`GraphStore`] connected to a
//! `vuer-rtc serve` URL. Commits go out as `crdt` frames, broadcasts come in through
//! [`GraphStore::receive`], acks through [`GraphStore::ack`]; a dropped connection is
//! retried with exponential backoff and jitter.
//!
//! Joining, and joining again:
//! - the first join takes the engine's snapshot (`join=snapshot`,
//!   [`GraphStore::init_from_snapshot`]);
//! - a reconnect joins quietly (`join=none`) and catches up: `sync` with the store's
//!   clock and a `sync-check`, applying what the server sends until the check's
//!   answer; then it resends every unacknowledged message. Commits made meanwhile wait
//!   for the answer;
//! - when the server answers that `sync` with a full `state` (it compacted past what
//!   this store holds: the client was offline longer than the server's horizon), or
//!   refuses one of this client's unacknowledged messages as `compacted`, the client
//!   closes the connection and rejoins at once from the server's snapshot
//!   (`join=snapshot`, [`GraphStore::rejoin_from_snapshot`]), keeping its pending
//!   edits and its unacknowledged messages, then resends those. A message the server
//!   still takes keeps its id (a copy of it the server already holds is recognised);
//!   one older than the server's compacted base, which the server refuses for good,
//!   has its ops committed again as a new message.
//!
//! Invariants:
//! - the store is touched only under its lock, by the caller ([`SyncClient::with_store`])
//!   or by the connection task between frames: no frame is half-applied, and a rejoin
//!   replaces the store's state in one step;
//! - a message the store committed is sent on the connection it was committed on, or
//!   resent after the next catch-up or rejoin; it leaves the unacknowledged set only on
//!   an `ack` (of itself or, when the server refuses it for good as older than its
//!   compacted base, of the new message that carries its ops again);
//! - every join from a snapshot takes the engine's snapshot, so late messages, undo and
//!   compaction go on exactly as on the server.

pub mod blocking;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::op::{Limits, Message};
use crate::protocol::{
    self, ClientFrame, Encoding, Framing, OwnedBody, OwnedSyncStatus, ServerMessage,
};
use crate::store::GraphStore;

/// How a [`SyncClient`] connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The first wait before a reconnect (doubled after each failure).
    pub backoff_min: Duration,
    /// The longest wait before a reconnect.
    pub backoff_max: Duration,
    /// Limits on the frames the server sends.
    pub limits: Limits,
    /// How long [`SyncClient::connect`] waits for the first join; also how long a
    /// connection waits for the server's snapshot, and for the next frame of a
    /// reconnect's catch-up, before it gives up and reconnects.
    pub join_timeout: Duration,
    /// Compact the store ([`GraphStore::compact`]) after every this many received
    /// messages (0: never; the caller compacts). Compaction keeps memory and the cost
    /// of late messages bounded; it follows the replica's stability rule, so a message
    /// of a client silent longer than the horizon that arrives afterwards is refused
    /// here even if the server, which may not have compacted that far, took it.
    pub compact_every: u64,
    /// How often the client sends `heartbeat` with its clock (zero: never). The
    /// server's compaction waits for a connected session until a heartbeat says what it
    /// holds.
    pub heartbeat: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            limits: Limits::default(),
            join_timeout: Duration::from_secs(10),
            compact_every: 0,
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` URL of a scene.
    #[error("bad URL {0:?}: expected ws://HOST:PORT/scenes/SCENE")]
    Url(String),
    /// The first join did not complete in time.
    #[error("could not join {url}: {reason}")]
    Join {
        /// The URL.
        url: String,
        /// The last connection error.
        reason: String,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A wait ran out.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The blocking façade could not start its runtime.
    #[error("cannot start the client's runtime: {0}")]
    Runtime(String),
}

enum Ctl {
    Check(String, oneshot::Sender<OwnedSyncStatus>),
    Close,
}

struct Shared {
    store: Mutex<Option<GraphStore>>,
    // Bumped on every frame handled, so that waiters can re-check their condition.
    changed: watch::Sender<u64>,
    errors: Mutex<Vec<(Option<String>, String)>>,
    /// Messages received since the last compaction (under the store's lock).
    since_compact: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<GraphStore>> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A [`GraphStore`] kept in sync with a server (see the module doc).
pub struct SyncClient {
    shared: Arc<Shared>,
    ctl: mpsc::UnboundedSender<Ctl>,
    task: Option<tokio::task::JoinHandle<()>>,
    next_check: u64,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient").finish_non_exhaustive()
    }
}

impl SyncClient {
    /// Joins the scene at `url` (`ws://HOST:PORT/scenes/SCENE`, with `?token=…` if the
    /// server needs one) as `client`, starting from the server's snapshot; returns once
    /// joined. The connection is kept (and retried) in a background task on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::Url`], or [`ClientError::Join`] when no join succeeded within
    /// [`ClientOptions::join_timeout`].
    pub async fn connect(
        url: &str,
        client: &str,
        options: ClientOptions,
    ) -> Result<SyncClient, ClientError> {
        if !url.starts_with("ws://") || !url.contains("/scenes/") {
            return Err(ClientError::Url(url.to_owned()));
        }
        let (changed, mut seen) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(None),
            changed,
            errors: Mutex::new(Vec::new()),
            since_compact: std::sync::atomic::AtomicU64::new(0),
        });
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (last_error_tx, last_error) = watch::channel(String::new());
        let task = tokio::spawn(run(
            url.to_owned(),
            client.to_owned(),
            options.clone(),
            Arc::clone(&shared),
            ctl_rx,
            last_error_tx,
        ));
        let joined = tokio::time::timeout(options.join_timeout, async {
            while shared.lock().is_none() {
                if seen.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if joined.is_err() || shared.lock().is_none() {
            task.abort();
            return Err(ClientError::Join {
                url: url.to_owned(),
                reason: last_error.borrow().clone(),
            });
        }
        Ok(SyncClient {
            shared,
            ctl,
            task: Some(task),
            next_check: 0,
        })
    }

    /// Runs `f` on the store (edit, commit, undo, read): commits go out at once.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut GraphStore) -> T) -> T {
        let mut guard = self.shared.lock();
        match guard.as_mut() {
            Some(store) => f(store),
            // `connect` returns only once the store exists, and it is never removed.
            None => unreachable_store(),
        }
    }

    /// Waits until every message the store committed is acknowledged.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<(), ClientError> {
        let mut seen = self.shared.changed.subscribe();
        tokio::time::timeout(timeout, async {
            while self.with_store(|s| !s.unacked_messages().is_empty()) {
                if seen.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout)
    }

    /// A `sync-check` round trip: when it returns, every frame the server queued for
    /// this client before answering has been applied. Returns the server's status
    /// (clock, Lamport time, state hash).
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout` (e.g. while disconnected);
    /// [`ClientError::Closed`].
    pub async fn check(&mut self, timeout: Duration) -> Result<OwnedSyncStatus, ClientError> {
        self.next_check += 1;
        let id = format!("check-{}", self.next_check);
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::Check(id, tx))
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// The `error` frames received so far (message id, error text), oldest first.
    pub fn errors(&self) -> Vec<(Option<String>, String)> {
        self.shared
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes the connection and stops the task.
    pub async fn close(mut self) {
        let _ = self.ctl.send(Ctl::Close);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        let _ = self.ctl.send(Ctl::Close);
    }
}

#[allow(
    clippy::panic,
    reason = "an internal invariant: the store exists once connected"
)]
fn unreachable_store() -> ! {
    panic!("the store of a connected SyncClient is always present")
}

fn with_join(url: &str, join: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}join={join}")
}

/// A pseudo-random fraction from the clock, for backoff jitter.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a connection joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// No store yet: start one from the server's snapshot (`join=snapshot`).
    First,
    /// Reconnect with `join=none`: `sync`, then resend the unacknowledged.
    Sync,
    /// Behind the server's compacted base: rebuild the store from the server's
    /// snapshot (`join=snapshot`), keeping this client's work, then resend.
    Rejoin,
}

async fn run(
    url: String,
    client: String,
    options: ClientOptions,
    shared: Arc<Shared>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    last_error: watch::Sender<String>,
) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let mut backoff = options.backoff_min;
    let mut checks: HashMap<String, oneshot::Sender<OwnedSyncStatus>> = HashMap::new();
    let mut rejoin = false;
    loop {
        let join = if shared.lock().is_none() {
            Join::First
        } else if rejoin {
            Join::Rejoin
        } else {
            Join::Sync
        };
        let target = with_join(
            &url,
            if join == Join::Sync {
                "none"
            } else {
                "snapshot"
            },
        );
        match tokio_tungstenite::connect_async(&target).await {
            Ok((ws, _)) => {
                backoff = options.backoff_min;
                let end = session(
                    ws,
                    join,
                    &mut rejoin,
                    &client,
                    &options,
                    &shared,
                    &out_tx,
                    &mut out_rx,
                    &mut ctl,
                    &mut checks,
                )
                .await;
                match end {
                    Err(e) => {
                        let _ = last_error.send(e);
                    }
                    Ok(Stop::Closed) => return,
                    Ok(Stop::Lost) => {}
                    // Found behind on a sync: rejoin at once (a rejoin found behind
                    // again waits first, so that nothing spins).
                    Ok(Stop::Rejoin) => {
                        rejoin = true;
                        if join != Join::Rejoin {
                            continue;
                        }
                    }
                }
            }
            Err(e) => {
                let _ = last_error.send(e.to_string());
            }
        }
        // Wait (or stop, if asked) before the next attempt.
        let wait = backoff.mul_f64(0.5 + jitter());
        backoff = (backoff * 2).min(options.backoff_max);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            c = ctl.recv() => match c {
                None | Some(Ctl::Close) => return,
                // No connection to ask: the caller's wait times out.
                Some(Ctl::Check(..)) => {}
            },
        }
    }
}

enum Stop {
    Closed,
    Lost,
    /// The server has compacted past this store: rejoin from its snapshot.
    Rejoin,
}

/// The request id of the `sync-check` that closes a reconnect's catch-up (the
/// caller's checks are `check-N`).
const CAUGHT_UP: &str = "sync-caught-up";

fn encode(f: &ClientFrame) -> Ws {
    Ws::Binary(protocol::encode_client_frame(f, Encoding::MessagePack, Framing::Plain).into())
}

/// Reads the `state` a `join=snapshot` connection starts with: the snapshot bytes.
async fn read_snapshot(ws: &mut Socket, options: &ClientOptions) -> Result<Vec<u8>, String> {
    let read = async {
        loop {
            let frame = ws
                .next()
                .await
                .ok_or("closed before the state")?
                .map_err(|e| e.to_string())?;
            let Ws::Binary(b) = frame else { continue };
            let (m, _) = protocol::decode_server_frame(&b, Encoding::MessagePack, &options.limits)
                .map_err(|e| e.to_string())?;
            if let ServerMessage::State { snapshot, .. } = m {
                let OwnedBody::Bytes(bytes) = snapshot.body else {
                    return Err("the server sent a state without snapshot bytes".to_owned());
                };
                return Ok(bytes);
            }
        }
    };
    tokio::time::timeout(options.join_timeout, read)
        .await
        .map_err(|_| "timed out waiting for the state".to_owned())?
}

/// Sends every unacknowledged message of the store. What was queued for an earlier
/// connection is dropped first, under the store's lock, so nothing goes out twice.
async fn resend(
    ws: &mut Socket,
    shared: &Shared,
    out_rx: &mut mpsc::UnboundedReceiver<Message>,
) -> Result<(), String> {
    let unacked = {
        let guard = shared.lock();
        while out_rx.try_recv().is_ok() {}
        let Some(s) = guard.as_ref() else {
            return Err("no store".into());
        };
        s.unacked_messages()
    };
    for m in unacked {
        ws.send(encode(&ClientFrame::Crdt(m)))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A reconnect's catch-up: `sync` with the store's clock and a `sync-check`; applies
/// what the server sends until the check's answer (`Ok(None)`: caught up). Returns
/// [`Stop::Rejoin`] when the server answered with a full `state` instead (this store
/// is behind its compacted base). Nothing of this client is sent meanwhile: its
/// messages wait, so that none reaches the server with a stale Lamport time only to
/// be refused as compacted.
async fn catch_up(
    ws: &mut Socket,
    options: &ClientOptions,
    shared: &Shared,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    checks: &mut HashMap<String, oneshot::Sender<OwnedSyncStatus>>,
) -> Result<Option<Stop>, String> {
    let clock = {
        let guard = shared.lock();
        let Some(s) = guard.as_ref() else {
            return Err("no store".into());
        };
        s.state().clock.clone()
    };
    ws.send(encode(&ClientFrame::Sync {
        vector_clock: clock,
        filter: None,
    }))
    .await
    .map_err(|e| e.to_string())?;
    ws.send(encode(&ClientFrame::SyncCheck {
        request_id: CAUGHT_UP.to_owned(),
    }))
    .await
    .map_err(|e| e.to_string())?;
    let mut deadline = tokio::time::Instant::now() + options.join_timeout;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(frame) = frame else { return Ok(Some(Stop::Lost)) };
                deadline = tokio::time::Instant::now() + options.join_timeout;
                let bytes = match frame.map_err(|e| e.to_string())? {
                    Ws::Binary(b) => b,
                    Ws::Close(_) => return Ok(Some(Stop::Lost)),
                    _ => continue,
                };
                let (m, _) = protocol::decode_server_frame(&bytes, Encoding::MessagePack, &options.limits).map_err(|e| e.to_string())?;
                match m {
                    ServerMessage::State { .. } => {
                        let _ = ws.close(None).await;
                        return Ok(Some(Stop::Rejoin));
                    }
                    ServerMessage::SyncStatus { request_id, .. } if request_id == CAUGHT_UP => {
                        return Ok(None);
                    }
                    m => {
                        if handle(m, shared, checks, options.compact_every) {
                            let _ = ws.close(None).await;
                            return Ok(Some(Stop::Rejoin));
                        }
                        shared.bump();
                    }
                }
            }
            c = ctl.recv() => match c {
                None | Some(Ctl::Close) => {
                    let _ = ws.close(None).await;
                    return Ok(Some(Stop::Closed));
                }
                Some(Ctl::Check(id, tx)) => {
                    checks.insert(id.clone(), tx);
                    ws.send(encode(&ClientFrame::SyncCheck { request_id: id })).await.map_err(|e| e.to_string())?;
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                return Err("timed out waiting for the sync".into());
            }
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the session's state, passed once"
)]
async fn session(
    mut ws: Socket,
    join: Join,
    rejoin: &mut bool,
    client: &str,
    options: &ClientOptions,
    shared: &Shared,
    out_tx: &mpsc::UnboundedSender<Message>,
    out_rx: &mut mpsc::UnboundedReceiver<Message>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    checks: &mut HashMap<String, oneshot::Sender<OwnedSyncStatus>>,
) -> Result<Stop, String> {
    match join {
        Join::First => {
            // The first join: the engine's snapshot of the whole replica.
            let bytes = read_snapshot(&mut ws, options).await?;
            let tx = out_tx.clone();
            let store = GraphStore::init_from_snapshot(client, &bytes)
                .map_err(|e| e.to_string())?
                .with_sender(move |m| {
                    let _ = tx.send(m.clone());
                });
            *shared.lock() = Some(store);
            shared.bump();
        }
        Join::Sync => {
            if let Some(stop) = catch_up(&mut ws, options, shared, ctl, checks).await? {
                return Ok(stop);
            }
            resend(&mut ws, shared, out_rx).await?;
        }
        Join::Rejoin => {
            let bytes = read_snapshot(&mut ws, options).await?;
            {
                let mut guard = shared.lock();
                let Some(store) = guard.as_mut() else {
                    return Err("no store".into());
                };
                let report = store
                    .rejoin_from_snapshot(&bytes)
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    held = report.held,
                    kept = report.kept,
                    reissued = report.reissued.len(),
                    "rejoined from the server's snapshot"
                );
                shared
                    .since_compact
                    .store(0, std::sync::atomic::Ordering::Relaxed);
            }
            *rejoin = false;
            shared.bump();
            resend(&mut ws, shared, out_rx).await?;
        }
    }
    let period = options.heartbeat;
    let mut next_heartbeat = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_heartbeat), if !period.is_zero() => {
                next_heartbeat += period;
                let clock = {
                    let guard = shared.lock();
                    guard.as_ref().map(|s| s.state().clock.clone())
                };
                if let Some(clock) = clock {
                    let frame = ClientFrame::Heartbeat {
                        client: client.to_owned(),
                        vector_clock: clock,
                    };
                    ws.send(encode(&frame)).await.map_err(|e| e.to_string())?;
                }
            }
            frame = ws.next() => {
                let Some(frame) = frame else { return Ok(Stop::Lost) };
                let bytes = match frame.map_err(|e| e.to_string())? {
                    Ws::Binary(b) => b,
                    Ws::Close(_) => return Ok(Stop::Lost),
                    _ => continue,
                };
                let (m, _) = protocol::decode_server_frame(&bytes, Encoding::MessagePack, &options.limits).map_err(|e| e.to_string())?;
                let behind = handle(m, shared, checks, options.compact_every);
                shared.bump();
                if behind {
                    let _ = ws.close(None).await;
                    return Ok(Stop::Rejoin);
                }
            }
            m = out_rx.recv() => {
                let Some(m) = m else { return Ok(Stop::Closed) };
                ws.send(encode(&ClientFrame::Crdt(m))).await.map_err(|e| e.to_string())?;
            }
            c = ctl.recv() => match c {
                None | Some(Ctl::Close) => {
                    let _ = ws.close(None).await;
                    return Ok(Stop::Closed);
                }
                Some(Ctl::Check(id, tx)) => {
                    checks.insert(id.clone(), tx);
                    ws.send(encode(&ClientFrame::SyncCheck { request_id: id })).await.map_err(|e| e.to_string())?;
                }
            },
        }
    }
}

/// Applies one server frame to the store. True when the store must rejoin from the
/// server's snapshot: a full `state` (the answer to a `sync` from behind the compacted
/// base), or a `compacted` refusal of one of this client's unacknowledged messages
/// (the server will never take it under that id).
fn handle(
    m: ServerMessage,
    shared: &Shared,
    checks: &mut HashMap<String, oneshot::Sender<OwnedSyncStatus>>,
    compact_every: u64,
) -> bool {
    use std::sync::atomic::Ordering;
    let mut guard = shared.lock();
    let Some(store) = guard.as_mut() else {
        return false;
    };
    let received = match &m {
        ServerMessage::Broadcast(_) => 1,
        ServerMessage::BroadcastBatch(ms) => ms.len() as u64,
        _ => 0,
    };
    let mut behind = false;
    match m {
        ServerMessage::Broadcast(m) => {
            if let Err(e) = store.receive(m) {
                tracing::warn!(error = %e, "a broadcast the store rejected");
            }
        }
        ServerMessage::BroadcastBatch(ms) => {
            store.receive_batch(ms);
        }
        ServerMessage::Ack { msg_id, .. } => {
            store.ack(&msg_id);
        }
        ServerMessage::Error { msg_id, error } => {
            tracing::warn!(msg_id = ?msg_id, %error, "the server refused a frame");
            behind = error.starts_with("compacted:")
                && msg_id
                    .as_deref()
                    .is_some_and(|id| store.unacked_messages().iter().any(|m| m.id == id));
            shared
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((msg_id, error));
        }
        ServerMessage::SyncStatus { request_id, status } => {
            if let (Some(tx), Some(status)) = (checks.remove(&request_id), status) {
                let _ = tx.send(status);
            }
        }
        // A full state: this store lacks messages the server compacted.
        ServerMessage::State { .. } => behind = true,
        ServerMessage::Heartbeat { .. } => {}
    }
    if compact_every > 0 && received > 0 {
        let n = shared.since_compact.fetch_add(received, Ordering::Relaxed) + received;
        if n >= compact_every {
            shared.since_compact.store(0, Ordering::Relaxed);
            store.compact();
        }
    }
    behind
}

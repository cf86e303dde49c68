//! One scene's task: it owns the scene's replica and log, takes commands from the
//! connections in one inbox and answers them (see the module doc of [`super`]).
//!
//! Each turn drains the inbox (up to [`super::ServerLimits::max_batch`] messages):
//! the `crdt` messages of the turn are screened by the replica, appended to the log,
//! committed with one `fsync` (in the blocking pool, while the replica merges them),
//! then acknowledged and broadcast; the other commands follow in arrival order.
//!
//! Invariants:
//! - a message is acknowledged or broadcast only after its commit returned (under
//!   [`AckMode::Durable`]); a failed append or commit stops the scene;
//! - every broadcast frame is encoded once per (encoding, framing) in use and shared;
//! - frames reach each connection in the scene's order; a connection over its queue
//!   budget is dropped from the scene and closed ([`close::SLOW_CONSUMER`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::conn::{ConnId, Out, Outbox};
use super::metrics::Metrics;
use super::{AckMode, ServerConfig, close};
use crate::Replica;
use crate::error::RejectError;
use crate::op::Message;
use crate::persist::{PersistError, SceneLog, SnapshotWritten};
use crate::protocol::{
    self, BloomFilter, Clock, Encoding, Framing, ServerFrame, SnapshotBody, StateSnapshot,
    SyncStatus,
};
use crate::wire::{self, Format};

/// The encoding and framing a connection speaks (it answers in the framing of the
/// frame it last sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Codec {
    pub encoding: Encoding,
    pub framing: Framing,
}

impl Codec {
    fn slot(self) -> usize {
        let e = usize::from(self.encoding == Encoding::Json);
        let f = usize::from(self.framing == Framing::Vuer);
        e * 2 + f
    }
}

/// What a joining connection gets first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinMode {
    /// `state` with the compacted base as state JSON and the journal after it.
    State,
    /// `state` with the engine's snapshot bytes of the whole replica (fast join).
    Snapshot,
    /// Nothing: the client sends `sync`.
    Quiet,
}

/// What the HTTP API reads of a scene.
#[derive(Debug)]
pub(crate) enum ReadReply {
    /// The canonical state JSON.
    Json(String),
    /// The engine's snapshot bytes.
    Snapshot(Vec<u8>),
}

/// A command for the scene task.
#[derive(Debug)]
pub(crate) enum Cmd {
    Join {
        conn: ConnId,
        out: Outbox,
        mode: JoinMode,
        codec: Codec,
        batch: bool,
        joined: oneshot::Sender<()>,
    },
    Crdt {
        conn: ConnId,
        msg: Message,
        codec: Codec,
        at: Instant,
    },
    Sync {
        conn: ConnId,
        clock: Clock,
        filter: Option<BloomFilter>,
        codec: Codec,
    },
    Heartbeat {
        conn: ConnId,
        client: String,
        clock: Clock,
        codec: Codec,
    },
    SyncCheck {
        conn: ConnId,
        request_id: String,
        codec: Codec,
    },
    Leave {
        conn: ConnId,
    },
    Read {
        snapshot: bool,
        reply: oneshot::Sender<ReadReply>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A handle on a running scene.
#[derive(Clone, Debug)]
pub(crate) struct SceneHandle {
    pub tx: mpsc::Sender<Cmd>,
    pub conns: Arc<AtomicUsize>,
}

/// A frame encoded lazily, once per codec.
/// The most messages in one `broadcast-batch` frame (a merged batch of more goes out
/// as several frames, in order).
const BATCH_FRAME_MSGS: usize = 64;

struct Shared<'a> {
    frame: ServerFrame<'a>,
    bytes: [Option<Bytes>; 4],
}

impl<'a> Shared<'a> {
    fn new(frame: ServerFrame<'a>) -> Shared<'a> {
        Shared {
            frame,
            bytes: [None, None, None, None],
        }
    }

    fn get(&mut self, codec: Codec) -> Out {
        let slot = codec.slot();
        let bytes = self.bytes[slot]
            .get_or_insert_with(|| {
                Bytes::from(protocol::encode_server_frame(
                    &self.frame,
                    codec.encoding,
                    codec.framing,
                ))
            })
            .clone();
        Out::frame(codec.encoding, bytes)
    }
}

struct Peer {
    out: Outbox,
    codec: Codec,
    batch: bool,
    client: Option<String>,
}

/// The scene's state, owned by its task.
pub(crate) struct Scene {
    name: String,
    replica: Replica,
    log: Option<Box<dyn SceneLog>>,
    peers: HashMap<ConnId, Peer>,
    metrics: Arc<Metrics>,
    ack: AckMode,
    sync_every: Duration,
    max_batch: usize,
    compact_every: u64,
    since_compact: u64,
    unsynced: bool,
    last_sync: Instant,
    // The base graph's state JSON, for the Lamport time compacted through.
    base: Option<(u64, crate::op::Json)>,
    // Encoded `state` frames, for the log position they were made at.
    state_cache: Option<(u64, [Option<Bytes>; 4])>,
    // A snapshot being written in the blocking pool from a copy of the replica.
    snapshot_job: Option<tokio::task::JoinHandle<Result<SnapshotWritten, PersistError>>>,
    failed: bool,
}

/// Why a scene stopped.
#[derive(Debug)]
enum Stop {
    Shutdown(oneshot::Sender<()>),
    Failed,
    Idle,
}

impl Scene {
    pub(crate) fn new(
        name: String,
        mut replica: Replica,
        log: Box<dyn SceneLog>,
        metrics: Arc<Metrics>,
        config: &ServerConfig,
    ) -> Scene {
        replica.set_horizon(config.horizon);
        // The scene compacts on its own count (`compact_every`), with metrics.
        replica.set_auto_compact(None);
        Scene {
            name,
            replica,
            log: Some(log),
            peers: HashMap::new(),
            metrics,
            ack: config.ack,
            sync_every: config.sync_every,
            max_batch: config.limits.max_batch.max(1),
            compact_every: config.compact_every.max(1),
            since_compact: 0,
            unsynced: false,
            last_sync: Instant::now(),
            base: None,
            state_cache: None,
            snapshot_job: None,
            failed: false,
        }
    }

    /// Runs until shutdown, a storage failure, or (when `idle` says so) idleness.
    /// `unload` is asked, with the inbox empty and no connection left, whether the
    /// scene may stop now (it removes the scene from the registry when it says yes).
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        idle_after: Duration,
        unload: impl Fn() -> bool + Send,
    ) {
        let mut idle_since = Instant::now();
        let tick = Duration::from_millis(50).min(self.sync_every.max(Duration::from_millis(1)));
        let stop = loop {
            let first = tokio::select! {
                cmd = rx.recv() => cmd,
                () = tokio::time::sleep(tick) => {
                    if self.unsynced && self.last_sync.elapsed() >= self.sync_every {
                        self.commit().await;
                    }
                    if self.failed {
                        break Stop::Failed;
                    }
                    if self.peers.is_empty() && idle_since.elapsed() >= idle_after
                        && rx.is_empty() && unload()
                    {
                        break Stop::Idle;
                    }
                    continue;
                }
            };
            let Some(first) = first else {
                break Stop::Idle;
            };
            let mut cmds = vec![first];
            let mut msgs = usize::from(matches!(cmds[0], Cmd::Crdt { .. }));
            while msgs < self.max_batch {
                match rx.try_recv() {
                    Ok(cmd) => {
                        msgs += usize::from(matches!(cmd, Cmd::Crdt { .. }));
                        cmds.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            if let Some(stop) = self.turn(cmds).await {
                break stop;
            }
            if self.failed {
                break Stop::Failed;
            }
            if !self.peers.is_empty() {
                idle_since = Instant::now();
            }
        };
        self.stop(stop, rx).await;
    }

    async fn stop(mut self, stop: Stop, mut rx: mpsc::Receiver<Cmd>) {
        rx.close();
        let failed = matches!(stop, Stop::Failed) || self.failed;
        if !failed {
            self.commit().await;
            if let Some(job) = self.snapshot_job.take() {
                self.finish_snapshot(job.await);
            }
            self.snapshot().await;
        }
        let code = if failed {
            close::INTERNAL
        } else {
            close::GOING_AWAY
        };
        let reason = if failed {
            "storage error"
        } else {
            "server shutting down"
        };
        for (_, p) in self.peers.drain() {
            p.out.force(Out::Close(code, reason));
        }
        // Commands that raced the stop: joins are refused (their connections retry),
        // shutdown requests are answered.
        while let Some(cmd) = rx.recv().await {
            if let Cmd::Shutdown { done } = cmd {
                let _ = done.send(());
            }
        }
        tracing::info!(scene = %self.name, reason = ?stop_name(&stop), "scene stopped");
        if let Stop::Shutdown(done) = stop {
            let _ = done.send(());
        }
    }

    /// One turn: the batch of `crdt` messages, then the other commands in order.
    async fn turn(&mut self, cmds: Vec<Cmd>) -> Option<Stop> {
        let mut crdt = Vec::new();
        let mut rest = Vec::new();
        for cmd in cmds {
            match cmd {
                Cmd::Crdt {
                    conn,
                    msg,
                    codec,
                    at,
                } => crdt.push((conn, msg, codec, at)),
                other => rest.push(other),
            }
        }
        if !crdt.is_empty() {
            self.merge(crdt).await;
            if self.failed {
                return Some(Stop::Failed);
            }
        }
        for cmd in rest {
            if let Some(stop) = self.handle(cmd).await {
                return Some(stop);
            }
        }
        None
    }

    async fn handle(&mut self, cmd: Cmd) -> Option<Stop> {
        match cmd {
            Cmd::Crdt { .. } => {}
            Cmd::Join {
                conn,
                out,
                mode,
                codec,
                batch,
                joined,
            } => {
                let peer = Peer {
                    out,
                    codec,
                    batch,
                    client: None,
                };
                match mode {
                    JoinMode::State => {
                        let frame = self.state_frame(codec);
                        peer.out.push(frame).ok();
                    }
                    JoinMode::Snapshot => {
                        let frame = self.snapshot_frame(codec);
                        peer.out.push(frame).ok();
                    }
                    JoinMode::Quiet => {}
                }
                self.peers.insert(conn, peer);
                let _ = joined.send(());
            }
            Cmd::Sync {
                conn,
                clock,
                filter,
                codec,
            } => self.sync(conn, &clock, filter.as_ref(), codec),
            Cmd::Heartbeat {
                conn,
                client,
                clock,
                codec,
            } => {
                if self.bind(conn, &client, codec).is_ok() {
                    // What the session holds: compaction stops waiting for it below.
                    self.replica.note_heartbeat(&client, &clock);
                    let seen: Clock = [(client.clone(), self.replica.clock_of(&client))].into();
                    let frame = ServerFrame::Heartbeat {
                        client: "server",
                        vector_clock: &seen,
                    };
                    self.send_to(conn, &mut Shared::new(frame), codec);
                }
            }
            Cmd::SyncCheck {
                conn,
                request_id,
                codec,
            } => {
                let clock = self.replica.clock();
                let frame = ServerFrame::SyncStatus {
                    request_id: &request_id,
                    status: Some(SyncStatus {
                        vector_clock: &clock,
                        lt: self.replica.lt(),
                        hash: self.replica.state_hash(),
                    }),
                };
                self.send_to(conn, &mut Shared::new(frame), codec);
            }
            Cmd::Leave { conn } => {
                self.peers.remove(&conn);
            }
            Cmd::Read { snapshot, reply } => {
                let r = if snapshot {
                    ReadReply::Snapshot(self.replica.snapshot().as_bytes().to_vec())
                } else {
                    ReadReply::Json(self.replica.to_json())
                };
                let _ = reply.send(r);
            }
            Cmd::Shutdown { done } => return Some(Stop::Shutdown(done)),
        }
        None
    }

    /// Binds the connection to `client` (one client per connection) and registers it
    /// with the replica, so that compaction waits for it.
    fn bind(&mut self, conn: ConnId, client: &str, codec: Codec) -> Result<(), ()> {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return Err(());
        };
        peer.codec = codec;
        match &peer.client {
            Some(c) if c == client => Ok(()),
            Some(c) => {
                let error = format!(
                    "client_mismatch: this connection speaks for client {c:?}, not {client:?}"
                );
                let c = peer.codec;
                self.error_to(conn, None, &error, c, "client_mismatch");
                Err(())
            }
            None => {
                peer.client = Some(client.to_owned());
                self.replica.register_client(client);
                Ok(())
            }
        }
    }

    fn error_to(
        &mut self,
        conn: ConnId,
        msg_id: Option<&str>,
        error: &str,
        codec: Codec,
        reason: &str,
    ) {
        self.metrics.error(reason);
        let frame = ServerFrame::Error { msg_id, error };
        self.send_to(conn, &mut Shared::new(frame), codec);
    }

    /// Queues a frame for one connection; drops it from the scene when over budget.
    fn send_to(&mut self, conn: ConnId, frame: &mut Shared<'_>, codec: Codec) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let out = frame.get(codec);
        self.metrics.frames_out.inc();
        self.metrics.bytes_out.inc_by(out.len() as u64);
        if peer.out.push(out).is_err() {
            self.drop_slow(conn);
        }
    }

    fn drop_slow(&mut self, conn: ConnId) {
        if let Some(p) = self.peers.remove(&conn) {
            self.metrics.close("slow_consumer");
            tracing::warn!(scene = %self.name, conn, "closing a slow consumer");
            p.out
                .force(Out::Close(close::SLOW_CONSUMER, "send queue over budget"));
        }
    }

    /// Screens, logs, commits, merges, acknowledges and broadcasts one batch.
    async fn merge(&mut self, crdt: Vec<(ConnId, Message, Codec, Instant)>) {
        let mut senders = Vec::with_capacity(crdt.len());
        let mut msgs = Vec::with_capacity(crdt.len());
        for (conn, msg, codec, at) in crdt {
            if self.bind(conn, &msg.client, codec).is_err() {
                continue;
            }
            senders.push((conn, codec, at, msg.id.clone()));
            msgs.push(msg);
        }
        if msgs.is_empty() {
            return;
        }
        self.metrics.batch_size.observe(msgs.len() as f64);
        let (fresh, report) = self.replica.screen(msgs);
        let mut rejected = report.rejected;
        // Each sender's outcome: the index of its message in `fresh`, or a rejection,
        // or (neither) a copy of a held message.
        let mut outcomes: Vec<Result<Option<usize>, RejectError>> =
            Vec::with_capacity(senders.len());
        let mut next = 0;
        for (_, _, _, id) in &senders {
            if fresh.get(next).is_some_and(|m| &m.id == id) {
                outcomes.push(Ok(Some(next)));
                next += 1;
            } else if let Some(k) = rejected
                .iter()
                .position(|e| e.msg_id() == Some(id.as_str()))
            {
                outcomes.push(Err(rejected.swap_remove(k)));
            } else {
                outcomes.push(Ok(None));
            }
        }

        let Some(mut log) = self.log.take() else {
            self.failed = true;
            return;
        };
        // Each message encoded once: the journal's record and (MessagePack) the
        // message inside every broadcast frame are the same bytes.
        let wire_msgs: Vec<Vec<u8>> = fresh
            .iter()
            .map(|m| wire::encode_message(m, Format::MessagePack))
            .collect();
        let first = match log.append_encoded(&fresh, &wire_msgs) {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(scene = %self.name, error = %e, "journal append failed");
                self.log = Some(log);
                self.failed = true;
                return;
            }
        };
        // Encode the broadcasts before the replica takes the messages over.
        let mut frames: Vec<Shared<'_>> = fresh
            .iter()
            .map(|m| Shared::new(ServerFrame::Broadcast { msg: m }))
            .collect();
        let batch_refs: Vec<&Message> = fresh.iter().collect();
        // At most BATCH_FRAME_MSGS messages per `broadcast-batch` frame: every
        // connection's socket buffer holds a whole frame while it goes out.
        let mut batch_frames: Vec<Shared<'_>> = batch_refs
            .chunks(BATCH_FRAME_MSGS)
            .map(|msgs| Shared::new(ServerFrame::BroadcastBatch { msgs }))
            .collect();
        let mut encoded: Vec<[Option<Bytes>; 4]> = Vec::with_capacity(fresh.len());
        let codecs: Vec<Codec> = {
            let mut seen = [false; 4];
            let mut v = Vec::new();
            for p in self.peers.values() {
                if !p.batch && !seen[p.codec.slot()] {
                    seen[p.codec.slot()] = true;
                    v.push(p.codec);
                }
            }
            v
        };
        let mp: Vec<&[u8]> = wire_msgs.iter().map(Vec::as_slice).collect();
        for (f, m) in frames.iter_mut().zip(&mp) {
            for &c in &codecs {
                if c.encoding == Encoding::MessagePack {
                    f.bytes[c.slot()] = Some(Bytes::from(protocol::encode_broadcast_encoded(
                        m, c.framing,
                    )));
                } else {
                    let _ = f.get(c);
                }
            }
            encoded.push(std::mem::take(&mut f.bytes));
        }
        let mut batch_bytes: [Vec<Bytes>; 4] = Default::default();
        if !fresh.is_empty() {
            for p in self.peers.values().filter(|p| p.batch) {
                let slot = p.codec.slot();
                if batch_bytes[slot].is_empty() {
                    batch_bytes[slot] = if p.codec.encoding == Encoding::MessagePack {
                        mp.chunks(BATCH_FRAME_MSGS)
                            .map(|c| {
                                Bytes::from(protocol::encode_broadcast_batch_encoded(
                                    c,
                                    p.codec.framing,
                                ))
                            })
                            .collect()
                    } else {
                        batch_frames
                            .iter_mut()
                            .map(|f| f.get(p.codec).into_bytes())
                            .collect()
                    };
                }
            }
        }
        drop(frames);
        drop(batch_frames);
        drop(batch_refs);
        drop(mp);
        drop(wire_msgs);
        let n_fresh = fresh.len();

        let durable = self.ack == AckMode::Durable && n_fresh > 0;
        let commit = if durable {
            Some(tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                let r = log.commit();
                (log, r, t.elapsed())
            }))
        } else {
            self.log = Some(log);
            None
        };
        // Merge while the journal syncs.
        let _ = self.replica.apply_owned(fresh);
        self.since_compact += n_fresh as u64;
        match commit {
            Some(handle) => match handle.await {
                Ok((log, Ok(()), took)) => {
                    self.metrics.fsync_seconds.observe(took.as_secs_f64());
                    self.log = Some(log);
                    self.last_sync = Instant::now();
                    self.unsynced = false;
                }
                Ok((log, Err(e), _)) => {
                    tracing::error!(scene = %self.name, error = %e, "journal commit failed");
                    self.log = Some(log);
                    self.failed = true;
                    return;
                }
                Err(e) => {
                    tracing::error!(scene = %self.name, error = %e, "journal commit task failed");
                    self.failed = true;
                    return;
                }
            },
            None => self.unsynced |= n_fresh > 0,
        }

        // Acks and errors, then broadcasts.
        for ((conn, codec, at, id), outcome) in senders.iter().zip(&outcomes) {
            match outcome {
                Ok(k) => {
                    let seq = k.map_or(0, |k| first + k as u64 + 1);
                    let frame = ServerFrame::Ack {
                        msg_id: id,
                        server_seq: seq,
                    };
                    self.send_to(*conn, &mut Shared::new(frame), *codec);
                    self.metrics.acks.inc();
                    self.metrics.ack_seconds.observe(at.elapsed().as_secs_f64());
                }
                Err(e) => {
                    self.metrics.reject(e.code());
                    let error = format!("{}: {e}", e.code());
                    self.error_to(*conn, Some(id), &error, *codec, e.code());
                }
            }
        }
        if n_fresh > 0 {
            let mut slow = Vec::new();
            for (k, encoded) in encoded.iter().enumerate() {
                let Some(&(sender, ..)) = senders
                    .iter()
                    .zip(&outcomes)
                    .find(|(_, o)| matches!(o, Ok(Some(j)) if *j == k))
                    .map(|(s, _)| s)
                else {
                    continue;
                };
                for (&conn, p) in &self.peers {
                    if conn == sender || p.batch {
                        continue;
                    }
                    let Some(bytes) = &encoded[p.codec.slot()] else {
                        continue;
                    };
                    self.metrics.frames_out.inc();
                    self.metrics.bytes_out.inc_by(bytes.len() as u64);
                    if p.out
                        .push(Out::frame(p.codec.encoding, bytes.clone()))
                        .is_err()
                    {
                        slow.push(conn);
                    }
                }
            }
            for (&conn, p) in &self.peers {
                if !p.batch {
                    continue;
                }
                for bytes in &batch_bytes[p.codec.slot()] {
                    if p.out
                        .push(Out::frame(p.codec.encoding, bytes.clone()))
                        .is_err()
                    {
                        slow.push(conn);
                        break;
                    }
                }
            }
            slow.sort_unstable();
            slow.dedup();
            for conn in slow {
                self.drop_slow(conn);
            }
        }

        if self.since_compact >= self.compact_every {
            self.since_compact = 0;
            let r = self.replica.compact();
            self.metrics.compacted.inc_by(r.messages as u64);
        }
        if self.snapshot_job.as_ref().is_some_and(|j| j.is_finished())
            && let Some(job) = self.snapshot_job.take()
        {
            self.finish_snapshot(job.await);
        }
        if self.snapshot_job.is_none() && self.log.as_ref().is_some_and(|l| l.snapshot_due()) {
            self.begin_snapshot().await;
        }
    }

    /// Starts a snapshot written from a copy of the replica in the blocking pool, so
    /// the scene goes on merging (the copy costs far less than the encoding); a log
    /// that cannot snapshot in the background writes it here.
    async fn begin_snapshot(&mut self) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let writer = match log.begin_snapshot() {
            Ok(Some(writer)) => writer,
            Ok(None) => {
                self.snapshot().await;
                return;
            }
            Err(e) => {
                // Nothing is lost: the journal holds everything, the next one is due later.
                tracing::error!(scene = %self.name, error = %e, "snapshot failed");
                return;
            }
        };
        let replica = self.replica.clone();
        self.snapshot_job = Some(tokio::task::spawn_blocking(move || writer.write(&replica)));
    }

    /// Ends a background snapshot. A failed one loses nothing: the journal still holds
    /// everything, and the next one is due after another `snapshot_every` messages.
    fn finish_snapshot(
        &mut self,
        r: Result<Result<SnapshotWritten, PersistError>, tokio::task::JoinError>,
    ) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let r = match r {
            Ok(Ok(written)) => log.finish_snapshot(written),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(PersistError::io(
                std::path::Path::new("snapshot"),
                std::io::Error::other(e.to_string()),
            )),
        };
        self.metrics
            .journal_bytes
            .set(i64::try_from(log.stored_bytes()).unwrap_or(i64::MAX));
        if let Err(e) = r {
            tracing::error!(scene = %self.name, error = %e, "snapshot failed");
        }
    }

    /// Syncs the journal (under [`AckMode::Applied`], every `sync_every`; at stop).
    async fn commit(&mut self) {
        let Some(mut log) = self.log.take() else {
            return;
        };
        let r = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let r = log.commit();
            (log, r, t.elapsed())
        })
        .await;
        match r {
            Ok((log, Ok(()), took)) => {
                self.metrics.fsync_seconds.observe(took.as_secs_f64());
                self.log = Some(log);
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Ok((log, Err(e), _)) => {
                tracing::error!(scene = %self.name, error = %e, "journal commit failed");
                self.log = Some(log);
                self.failed = true;
            }
            Err(_) => self.failed = true,
        }
    }

    /// Writes a snapshot (and truncates the journal) in the blocking pool.
    async fn snapshot(&mut self) {
        let Some(mut log) = self.log.take() else {
            return;
        };
        let replica = std::mem::take(&mut self.replica);
        let r = tokio::task::spawn_blocking(move || {
            let r = log.snapshot(&replica);
            let bytes = log.stored_bytes();
            (log, replica, r, bytes)
        })
        .await;
        match r {
            Ok((log, replica, r, bytes)) => {
                self.log = Some(log);
                self.replica = replica;
                self.metrics
                    .journal_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                if let Err(e) = r {
                    // The journal still holds everything: a failed snapshot loses nothing.
                    tracing::error!(scene = %self.name, error = %e, "snapshot failed");
                }
            }
            Err(_) => self.failed = true,
        }
    }

    fn position(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.position())
    }

    /// The `state` frame of the join point, cached until the next accepted message.
    fn state_frame(&mut self, codec: Codec) -> Out {
        let pos = self.position();
        let through = self.replica.compacted_through().unwrap_or(0);
        if self.state_cache.as_ref().is_none_or(|(p, _)| *p != pos) {
            self.state_cache = Some((pos, [None, None, None, None]));
        }
        if let Some(bytes) = self
            .state_cache
            .as_ref()
            .and_then(|(_, b)| b[codec.slot()].clone())
        {
            return Out::frame(codec.encoding, bytes);
        }
        if self.base.as_ref().is_none_or(|(t, _)| *t != through) {
            self.base = Some((through, self.replica.base_graph().to_json_value()));
        }
        let tail = self.replica.join_tail();
        let graph = self
            .base
            .as_ref()
            .map(|(_, g)| g.clone())
            .unwrap_or_default();
        let frame = ServerFrame::State {
            snapshot: StateSnapshot {
                body: SnapshotBody::Graph(&graph),
                vector_clock: &tail.clock,
                lt: tail.through,
                journal_index: pos.saturating_sub(tail.tail.len() as u64),
            },
            journal: &tail.tail.iter().collect::<Vec<_>>(),
        };
        let bytes = Bytes::from(protocol::encode_server_frame(
            &frame,
            codec.encoding,
            codec.framing,
        ));
        if let Some((_, cache)) = self.state_cache.as_mut() {
            cache[codec.slot()] = Some(bytes.clone());
        }
        Out::frame(codec.encoding, bytes)
    }

    /// The fast-join `state` frame: the engine's snapshot of the whole replica.
    fn snapshot_frame(&self, codec: Codec) -> Out {
        let snap = self.replica.snapshot();
        let clock = self.replica.clock();
        let frame = ServerFrame::State {
            snapshot: StateSnapshot {
                body: SnapshotBody::Bytes(snap.as_bytes()),
                vector_clock: &clock,
                lt: self.replica.lt(),
                journal_index: self.position(),
            },
            journal: &[],
        };
        Out::frame(
            codec.encoding,
            Bytes::from(protocol::encode_server_frame(
                &frame,
                codec.encoding,
                codec.framing,
            )),
        )
    }

    /// Answers `sync`: the messages the client lacks (by its clock where messages
    /// carry counters, by its Bloom filter otherwise), or the whole `state` when it
    /// lacks compacted messages.
    fn sync(&mut self, conn: ConnId, clock: &Clock, filter: Option<&BloomFilter>, codec: Codec) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.codec = codec;
        let batch = peer.batch;
        let tail = self.replica.join_tail();
        let behind = tail
            .clock
            .iter()
            .any(|(c, &n)| clock.get(c).copied().unwrap_or(0) < n);
        if behind {
            drop(tail);
            let frame = self.state_frame(codec);
            if self
                .peers
                .get(&conn)
                .is_some_and(|p| p.out.push(frame).is_err())
            {
                self.drop_slow(conn);
            }
            return;
        }
        let missing: Vec<&Message> = tail
            .tail
            .iter()
            .filter(|m| match m.clock.get(&m.client).filter(|&&s| s > 0) {
                Some(&seq) => seq > clock.get(&m.client).copied().unwrap_or(0),
                None => filter.is_none_or(|f| !f.contains(&m.id)),
            })
            .collect();
        let mut outs = Vec::new();
        if batch {
            if !missing.is_empty() {
                outs.push(Shared::new(ServerFrame::BroadcastBatch { msgs: &missing }).get(codec));
            }
        } else {
            for m in &missing {
                outs.push(Shared::new(ServerFrame::Broadcast { msg: m }).get(codec));
            }
        }
        drop(missing);
        drop(tail);
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        let over = outs.into_iter().any(|o| peer.out.push(o).is_err());
        if over {
            self.drop_slow(conn);
        }
    }
}

fn stop_name(stop: &Stop) -> &'static str {
    match stop {
        Stop::Shutdown(_) => "shutdown",
        Stop::Failed => "storage failure",
        Stop::Idle => "idle",
    }
}

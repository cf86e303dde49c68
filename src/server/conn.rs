//! One WebSocket connection: a reader that decodes frames and hands them to the
//! scene, and a writer that drains the connection's [`Outbox`].
//!
//! Invariants:
//! - the outbox counts the bytes queued and not yet written; a push that would go
//!   over the budget fails (the scene then closes the connection as a slow consumer),
//!   so a connection's memory is bounded by its budget;
//! - frames the connection cannot use (undecodable, over a limit, a `crdt` on a
//!   read-only token, over the rate) get an `error` frame and change nothing;
//! - a frame over the frame limit closes the connection with 1009.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use governor::{Quota, RateLimiter};
use tokio::sync::{mpsc, oneshot, watch};

use super::auth::Access;
use super::close;
use super::http::AppState;
use super::scene::{Cmd, Codec, JoinMode, SceneHandle};
use crate::protocol::{self, ClientFrame, Encoding, Framing, ServerFrame};

/// A connection's number (unique in the process).
pub(crate) type ConnId = u64;

/// A frame (or close) queued for a connection.
#[derive(Debug)]
pub(crate) enum Out {
    Binary(Bytes),
    Text(Bytes),
    Close(u16, &'static str),
}

impl Out {
    pub fn frame(encoding: Encoding, bytes: Bytes) -> Out {
        match encoding {
            Encoding::MessagePack => Out::Binary(bytes),
            Encoding::Json => Out::Text(bytes),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Out::Binary(b) | Out::Text(b) => b.len(),
            Out::Close(..) => 0,
        }
    }

    pub fn into_bytes(self) -> Bytes {
        match self {
            Out::Binary(b) | Out::Text(b) => b,
            Out::Close(..) => Bytes::new(),
        }
    }
}

/// The sending side of a connection's queue, with its byte budget.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    budget: usize,
}

/// The outbox is over its budget (or the connection is gone).
#[derive(Debug)]
pub(crate) struct Full;

impl Outbox {
    /// Queues `out` unless it would take the queue over its budget.
    pub fn push(&self, out: Out) -> Result<(), Full> {
        let n = out.len();
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        if before + n > self.budget && before > 0 {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(Full);
        }
        self.tx.send(out).map_err(|_| Full)
    }

    /// Queues `out` whatever the budget (a close frame).
    pub fn force(&self, out: Out) {
        let _ = self.tx.send(out);
    }
}

/// How the connection asked to be served (the query of its URL).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnOptions {
    pub codec: Codec,
    pub join: JoinMode,
    pub batch: bool,
    pub access: Access,
}

/// Serves one upgraded socket until it closes.
pub(crate) async fn serve(
    socket: WebSocket,
    app: Arc<AppState>,
    scene: String,
    opts: ConnOptions,
    handle: SceneHandle,
) {
    let conn = app.next_conn();
    app.metrics.connections.inc();
    let budget = app.config.limits.send_queue_bytes;
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let out = Outbox {
        tx,
        queued: Arc::clone(&queued),
        budget,
    };
    let (sink, stream) = socket.split();
    let (closed_tx, closed_rx) = watch::channel(false);
    let writer = tokio::spawn(write_loop(sink, rx, queued, closed_tx));

    let mut handle = handle;
    let mut joined = false;
    for _ in 0..3 {
        let (jtx, jrx) = oneshot::channel();
        let cmd = Cmd::Join {
            conn,
            out: out.clone(),
            mode: opts.join,
            codec: opts.codec,
            batch: opts.batch,
            joined: jtx,
        };
        if handle.tx.send(cmd).await.is_ok() && jrx.await.is_ok() {
            joined = true;
            break;
        }
        // The scene was unloading: open it again.
        match app.scene(&scene).await {
            Ok(h) => handle = h,
            Err(_) => break,
        }
    }
    if joined {
        read_loop(stream, &app, conn, &handle, &out, opts, closed_rx).await;
        let _ = handle.tx.send(Cmd::Leave { conn }).await;
    } else {
        out.force(Out::Close(close::INTERNAL, "scene unavailable"));
    }
    drop(out);
    let _ = writer.await;
    handle.conns.fetch_sub(1, Ordering::Relaxed);
    app.release_conn();
    app.metrics.connections.dec();
}

/// Frames written before one flush at most, in bytes: what is queued goes out in one
/// write (one syscall) instead of one per frame.
const FLUSH_BYTES: usize = 256 << 10;

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
    closed: watch::Sender<bool>,
) {
    'frames: while let Some(first) = rx.recv().await {
        // Feed what is queued (up to FLUSH_BYTES), then flush once.
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(out) = next.take() {
            let n = out.len();
            let msg = match out {
                Out::Binary(b) => WsMessage::Binary(b),
                Out::Text(b) => match Utf8Bytes::try_from(b) {
                    Ok(t) => WsMessage::Text(t),
                    Err(_) => {
                        queued.fetch_sub(n, Ordering::Relaxed);
                        continue;
                    }
                },
                Out::Close(code, reason) => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(reason),
                        })))
                        .await;
                    break 'frames;
                }
            };
            let fed_ok = sink.feed(msg).await;
            queued.fetch_sub(n, Ordering::Relaxed);
            if fed_ok.is_err() {
                break 'frames;
            }
            fed += n;
            if fed < FLUSH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = closed.send(true);
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    app: &AppState,
    conn: ConnId,
    scene: &SceneHandle,
    out: &Outbox,
    opts: ConnOptions,
    mut closed: watch::Receiver<bool>,
) {
    let limits = &app.config.limits;
    let quota =
        Quota::per_second(NonZeroU32::new(limits.msgs_per_sec.max(1)).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(limits.burst.max(1)).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(quota);
    let mut framing = opts.codec.framing;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = closed.changed() => break,
        };
        let (bytes, encoding): (Bytes, Encoding) = match next {
            None => break,
            Some(Err(e)) => {
                // Over the frame limit, or a protocol violation.
                let too_big = e.to_string().to_ascii_lowercase().contains("too long")
                    || e.to_string().to_ascii_lowercase().contains("too big");
                let (code, reason) = if too_big {
                    (close::TOO_BIG, "frame over the size limit")
                } else {
                    (close::UNSUPPORTED, "unreadable frame")
                };
                app.metrics
                    .close(if too_big { "too_big" } else { "protocol" });
                out.force(Out::Close(code, reason));
                break;
            }
            Some(Ok(WsMessage::Binary(b))) => (b, Encoding::MessagePack),
            Some(Ok(WsMessage::Text(t))) => (Bytes::from(t), Encoding::Json),
            Some(Ok(WsMessage::Close(_))) => break,
            Some(Ok(_)) => continue,
        };
        app.metrics.frames_in.inc();
        let at = Instant::now();
        let decoded = protocol::decode_client_frame(&bytes, encoding, &limits.engine);
        let (frame, used) = match decoded {
            Ok(f) => f,
            Err(e) => {
                let codec = Codec { encoding, framing };
                reply_error(
                    app,
                    out,
                    codec,
                    e.msg_id.as_deref(),
                    &e.to_string(),
                    e.kind.code(),
                );
                continue;
            }
        };
        framing = used;
        let codec = Codec { encoding, framing };
        let cmd = match frame {
            ClientFrame::Crdt(msg) => {
                app.metrics.messages_in.inc();
                if opts.access == Access::Read {
                    let error = "read_only: this connection's token grants read access only";
                    reply_error(app, out, codec, Some(&msg.id), error, "read_only");
                    continue;
                }
                if limiter.check().is_err() {
                    let error = format!(
                        "rate_limited: over {} messages per second (burst {}); resend later",
                        limits.msgs_per_sec, limits.burst
                    );
                    reply_error(app, out, codec, Some(&msg.id), &error, "rate_limited");
                    continue;
                }
                Cmd::Crdt {
                    conn,
                    msg,
                    codec,
                    at,
                }
            }
            ClientFrame::Sync {
                vector_clock,
                filter,
            } => Cmd::Sync {
                conn,
                clock: vector_clock,
                filter,
                codec,
            },
            ClientFrame::Heartbeat {
                client,
                vector_clock,
            } => Cmd::Heartbeat {
                conn,
                client,
                clock: vector_clock,
                codec,
            },
            ClientFrame::SyncCheck { request_id } => Cmd::SyncCheck {
                conn,
                request_id,
                codec,
            },
        };
        if scene.tx.send(cmd).await.is_err() {
            break;
        }
    }
}

fn reply_error(
    app: &AppState,
    out: &Outbox,
    codec: Codec,
    msg_id: Option<&str>,
    error: &str,
    reason: &str,
) {
    app.metrics.error(reason);
    let frame = ServerFrame::Error { msg_id, error };
    let bytes = protocol::encode_server_frame(&frame, codec.encoding, codec.framing);
    let _ = out.push(Out::frame(codec.encoding, Bytes::from(bytes)));
}

/// Parses the connection options of a query (`encoding`, `framing`, `join`, `batch`).
pub(crate) fn options(
    query: &std::collections::HashMap<String, String>,
    access: Access,
) -> Result<ConnOptions, String> {
    let encoding = match query.get("encoding").map(String::as_str) {
        None | Some("msgpack") => Encoding::MessagePack,
        Some("json") => Encoding::Json,
        Some(other) => return Err(format!("unknown encoding {other:?} (msgpack or json)")),
    };
    let framing = match query.get("framing").map(String::as_str) {
        None | Some("plain") => Framing::Plain,
        Some("vuer") => Framing::Vuer,
        Some(other) => return Err(format!("unknown framing {other:?} (plain or vuer)")),
    };
    let join = match query.get("join").map(String::as_str) {
        None | Some("state") => JoinMode::State,
        Some("snapshot") => JoinMode::Snapshot,
        Some("none") => JoinMode::Quiet,
        Some(other) => return Err(format!("unknown join {other:?} (state, snapshot or none)")),
    };
    let batch = match query.get("batch").map(String::as_str) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(format!("unknown batch {other:?} (0 or 1)")),
    };
    Ok(ConnOptions {
        codec: Codec { encoding, framing },
        join,
        batch,
        access,
    })
}

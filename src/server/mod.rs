//! `vuer-rtc serve`: a WebSocket sync server for many clients per scene, speaking the
//! reference's wire protocol ([`crate::protocol`], `docs/protocol.md`).
//!
//! Data flows one way: a connection task ([`conn`]) reads frames, decodes them and
//! hands commands to the scene's task ([`scene`]); the scene task owns the scene's
//! [`Replica`](crate::Replica) and its [`SceneLog`](crate::persist::SceneLog), merges
//! each drained batch of messages, commits the batch to the log once, then acks and
//! broadcasts; every frame it produces is serialized once and shared by the
//! connections that get it. [`http`] routes the HTTP endpoints and upgrades.
//!
//! Invariants:
//! - one task owns a scene's replica: no lock is held across a merge, and the frames
//!   of a scene leave in one order, which every connection sees;
//! - under [`AckMode::Durable`] a message is acknowledged (and broadcast) only after
//!   the batch holding it is on stable storage; a failed commit stops the scene (its
//!   connections close with 1011) so that nothing unacknowledged is shown as held;
//! - a rejected message gets `error` and reaches no one else; a copy of a held
//!   message is acknowledged again and broadcast to no one;
//! - a slow connection never slows its scene: past its send-queue budget it is closed
//!   ([`close::SLOW_CONSUMER`]) and catches up with `sync` when it returns.

mod auth;
mod conn;
mod http;
mod metrics;
mod scene;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::op::Limits;
pub use auth::{Access, AuthConfig, Claims, make_token};

/// When the server acknowledges a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AckMode {
    /// After the batch holding it is on stable storage (`fsync` returned): an
    /// acknowledged message survives a crash of the process or the machine.
    #[default]
    Durable,
    /// After it is applied; the journal is synced at most [`ServerConfig::sync_every`]
    /// later. A crash of the process loses nothing written; a crash of the machine may
    /// lose the acknowledged messages of that window.
    Applied,
}

/// Where scenes are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// One directory per scene under this one (a journal and snapshots,
    /// [`crate::persist::LocalLog`]).
    Dir(PathBuf),
    /// Nothing kept: scenes live as long as the process.
    Memory,
}

/// The server's limits. The defaults suit a scene editor with thousands of clients.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLimits {
    /// Largest WebSocket frame (message) a client may send, in bytes.
    pub max_frame_bytes: usize,
    /// The engine's limits on each decoded message.
    pub engine: Limits,
    /// `crdt` messages per second per connection (token bucket refill rate).
    pub msgs_per_sec: u32,
    /// Burst of the token bucket.
    pub burst: u32,
    /// Connections per scene.
    pub max_conns_per_scene: usize,
    /// Connections in total.
    pub max_conns: usize,
    /// Scenes held in memory at once.
    pub max_scenes: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer.
    pub send_queue_bytes: usize,
    /// A scene without connections for this long is snapshotted and unloaded.
    pub idle_unload: Duration,
    /// Messages merged in one batch at most.
    pub max_batch: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_frame_bytes: 16 << 20,
            engine: Limits {
                max_message_bytes: 16 << 20,
                ..Limits::default()
            },
            msgs_per_sec: 200,
            burst: 400,
            max_conns_per_scene: 20_000,
            max_conns: 50_000,
            max_scenes: 10_000,
            send_queue_bytes: 8 << 20,
            idle_unload: Duration::from_secs(60),
            max_batch: 4096,
        }
    }
}

/// The server's default compaction horizon, in Lamport ticks: longer than a bare
/// replica's ([`crate::replica::DEFAULT_HORIZON`]), because a session that reconnects
/// after a few seconds still resends edits from before (with many writers, Lamport time
/// advances thousands of ticks a second) and connected sessions that heartbeat do not
/// hold compaction back anyway.
pub const DEFAULT_SESSION_HORIZON: u64 = 100_000;

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The address to listen on (port 0: a free port, see [`RunningServer::addr`]).
    pub listen: SocketAddr,
    /// Where scenes are kept.
    pub storage: Storage,
    /// When messages are acknowledged.
    pub ack: AckMode,
    /// Under [`AckMode::Applied`]: the longest time between journal syncs.
    pub sync_every: Duration,
    /// Limits.
    pub limits: ServerLimits,
    /// Signed-token auth; `None`: every connection may read and write.
    pub auth: Option<AuthConfig>,
    /// Write a scene snapshot (and truncate its journal) after this many messages.
    pub snapshot_every: u64,
    /// Compact a scene after this many accepted messages.
    pub compact_every: u64,
    /// The compaction horizon in Lamport ticks (clients silent longer are evicted).
    pub horizon: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8013)),
            storage: Storage::Dir(PathBuf::from("vuer-rtc-data")),
            ack: AckMode::Durable,
            sync_every: Duration::from_millis(100),
            limits: ServerLimits::default(),
            auth: None,
            snapshot_every: 10_000,
            compact_every: 1_000,
            horizon: DEFAULT_SESSION_HORIZON,
        }
    }
}

/// WebSocket close codes the server uses (also in `docs/protocol.md`).
pub mod close {
    /// The server is shutting down (RFC 6455 "going away"): reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame the server cannot read at all, e.g. a text frame that is not UTF-8.
    pub const UNSUPPORTED: u16 = 1003;
    /// A frame over [`super::ServerLimits::max_frame_bytes`].
    pub const TOO_BIG: u16 = 1009;
    /// The scene stopped on a storage error: reconnect, `sync`, resend.
    pub const INTERNAL: u16 = 1011;
    /// The connection's send queue went over its budget: reconnect and `sync`.
    pub const SLOW_CONSUMER: u16 = 4008;
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A server that is running: its address, and the handle that stops it.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on (the chosen port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops gracefully: no new connections; every scene drains its inbox, commits,
    /// writes a snapshot and closes its connections with 1001. Returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }

    /// Waits until the server stops (after [`RunningServer::shutdown`] from another
    /// task, or a signal under [`serve_until_signal`]).
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Binds the listen address and starts serving in the background (on the current
/// tokio runtime).
///
/// # Errors
/// [`ServeError`] when the address cannot be bound or the data directory created.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServeError> {
    if let Storage::Dir(dir) = &config.storage {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(http::AppState::new(config));
    let done = tokio::spawn(http::run(listener, state, stopped));
    tracing::info!(%addr, "listening");
    Ok(RunningServer { addr, stop, done })
}

/// [`start`], then runs until SIGTERM or Ctrl-C, and shuts down gracefully.
/// `on_listen` gets the bound address first (the CLI prints it).
///
/// # Errors
/// As [`start`].
pub async fn serve_until_signal(
    config: ServerConfig,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let server = start(config).await?;
    on_listen(server.addr());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A scene name that is safe as a directory name: 1 to 128 of `A-Z a-z 0-9 . _ -`,
/// not starting with `.`.
pub fn valid_scene_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

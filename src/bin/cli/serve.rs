//! `vuer-rtc serve`: the flags of the sync server (the server itself is
//! `vuer_rtc::server`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use vuer_rtc::server::{self, AckMode, AuthConfig, ServerConfig, ServerLimits, Storage};

#[derive(Clone, Copy, ValueEnum)]
pub enum Ack {
    /// Acknowledge after the message's batch is on stable storage (fsync).
    Durable,
    /// Acknowledge after applying; sync the journal every `--sync-ms`.
    Applied,
}

/// Run the sync server (WebSocket at `/scenes/{scene}`; see docs/protocol.md).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8013")]
    listen: SocketAddr,
    /// Directory holding one journal-and-snapshots directory per scene.
    #[arg(long, default_value = "vuer-rtc-data")]
    data_dir: PathBuf,
    /// Keep nothing on disk (scenes live as long as the process).
    #[arg(long, conflicts_with = "data_dir")]
    memory: bool,
    /// When messages are acknowledged.
    #[arg(long, value_enum, default_value = "durable")]
    ack: Ack,
    /// Under `--ack applied`: the longest time between journal syncs, in ms.
    #[arg(long, default_value_t = 100)]
    sync_ms: u64,
    /// Require signed tokens (JWT, HS256) made with this secret; or set
    /// VUER_RTC_JWT_SECRET.
    #[arg(long, env = "VUER_RTC_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Largest frame a client may send, in bytes.
    #[arg(long, default_value_t = ServerLimits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// `crdt` messages per second per connection (token bucket).
    #[arg(long, default_value_t = ServerLimits::default().msgs_per_sec)]
    rate: u32,
    /// Burst of the per-connection token bucket.
    #[arg(long, default_value_t = ServerLimits::default().burst)]
    burst: u32,
    /// Connections per scene.
    #[arg(long, default_value_t = ServerLimits::default().max_conns_per_scene)]
    max_conns_per_scene: usize,
    /// Connections in total.
    #[arg(long, default_value_t = ServerLimits::default().max_conns)]
    max_conns: usize,
    /// Scenes held in memory.
    #[arg(long, default_value_t = ServerLimits::default().max_scenes)]
    max_scenes: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer (4008).
    #[arg(long, default_value_t = ServerLimits::default().send_queue_bytes)]
    send_queue_bytes: usize,
    /// Seconds a scene without connections stays in memory.
    #[arg(long, default_value_t = ServerLimits::default().idle_unload.as_secs())]
    idle_unload_secs: u64,
    /// Snapshot a scene (and truncate its journal) every N messages.
    #[arg(long, default_value_t = ServerConfig::default().snapshot_every)]
    snapshot_every: u64,
    /// Compact a scene every N accepted messages.
    #[arg(long, default_value_t = ServerConfig::default().compact_every)]
    compact_every: u64,
    /// Compaction horizon in Lamport ticks (clients silent longer are evicted).
    #[arg(long, default_value_t = ServerConfig::default().horizon)]
    horizon: u64,
    /// Stop after this many seconds (a bounded run for demos and tests; default:
    /// until SIGTERM or Ctrl-C).
    #[arg(long)]
    for_secs: Option<u64>,
}

impl ServeArgs {
    fn config(self) -> ServerConfig {
        let defaults = ServerLimits::default();
        ServerConfig {
            listen: self.listen,
            storage: if self.memory {
                Storage::Memory
            } else {
                Storage::Dir(self.data_dir)
            },
            ack: match self.ack {
                Ack::Durable => AckMode::Durable,
                Ack::Applied => AckMode::Applied,
            },
            sync_every: Duration::from_millis(self.sync_ms.max(1)),
            limits: ServerLimits {
                max_frame_bytes: self.max_frame_bytes,
                engine: vuer_rtc::op::Limits {
                    max_message_bytes: self.max_frame_bytes,
                    ..defaults.engine
                },
                msgs_per_sec: self.rate,
                burst: self.burst,
                max_conns_per_scene: self.max_conns_per_scene,
                max_conns: self.max_conns,
                max_scenes: self.max_scenes,
                send_queue_bytes: self.send_queue_bytes,
                idle_unload: Duration::from_secs(self.idle_unload_secs),
                max_batch: defaults.max_batch,
            },
            auth: self.jwt_secret.map(AuthConfig::new),
            snapshot_every: self.snapshot_every,
            compact_every: self.compact_every,
            horizon: self.horizon,
        }
    }
}

/// Runs the server until a signal (or `--for-secs`).
pub fn run(args: ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let for_secs = args.for_secs;
    let memory = args.memory;
    let config = args.config();
    let dir = match &config.storage {
        Storage::Dir(d) => d.display().to_string(),
        Storage::Memory => String::new(),
    };
    let rt =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let running = server::start(config).await.map_err(|e| e.to_string())?;
        // The first line of stdout is the address (scripts read it for port 0). A
        // reader that went away after it must not stop the server: errors are ignored.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on ws://{}/scenes/{{scene}}", running.addr());
        let _ = if memory {
            writeln!(out, "storage: memory (nothing kept)")
        } else {
            writeln!(out, "storage: {dir}")
        };
        let _ = out.flush();
        drop(out);
        match for_secs {
            Some(s) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(s)) => {},
                    () = server::shutdown_signal() => {},
                }
            }
            None => server::shutdown_signal().await,
        }
        running.shutdown().await;
        let _ = writeln!(std::io::stdout(), "stopped");
        Ok(())
    })
}

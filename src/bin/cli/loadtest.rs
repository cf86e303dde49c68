//! `vuer-rtc loadtest`: the flags, the progress bar and the table of the load
//! generator (`vuer_rtc::loadtest`); `--spawn` starts a local server to measure.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vuer_rtc::loadtest::{self, LoadConfig, LoadReport, Phase, Progress};

/// Load a server: many connections to one scene, some writing, all receiving; then a
/// convergence check. Exits with status 1 when the run did not converge.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// `ws://HOST:PORT` (a fresh scene per run) or `ws://HOST:PORT/scenes/NAME`.
    #[arg(long, default_value = "ws://127.0.0.1:8013")]
    url: String,
    /// Start `vuer-rtc serve --listen 127.0.0.1:0` (durable, in a temporary directory)
    /// and load it; its memory and CPU go in the report. `--url` is ignored.
    #[arg(long)]
    spawn: bool,
    /// A flag for the spawned server (repeat for more), e.g. `--serve-arg=--rate=100000`.
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
    /// The server's process id, to report its memory and CPU (a local server).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connections.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// How many of them write.
    #[arg(long, default_value_t = 10)]
    writers: usize,
    /// Messages per second per writer (0: as fast as `--window` allows).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Unacknowledged messages per writer at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    window: usize,
    /// Ops per message.
    #[arg(long, default_value_t = 10)]
    ops: usize,
    /// Seconds of writing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Nodes created before the run (the ops' targets).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Connections per tokio task.
    #[arg(long, default_value_t = LoadConfig::default().conns_per_task)]
    conns_per_task: usize,
    /// Seconds between heartbeats of each connection.
    #[arg(long, default_value_t = 5.0)]
    heartbeat: f64,
    /// Seconds to wait for the last acks and deliveries.
    #[arg(long, default_value_t = 15.0)]
    drain: f64,
    /// Full replicas whose state is compared with the server's.
    #[arg(long, default_value_t = 2)]
    verify: usize,
    /// Connections that read every message's head (delivery latency, order per
    /// writer) besides the writers, which always do; the others only count.
    #[arg(long, default_value_t = LoadConfig::default().track)]
    track: usize,
    /// One `broadcast` frame per message instead of `broadcast-batch` frames.
    #[arg(long)]
    no_batch: bool,
    /// A token for a server that needs one.
    #[arg(long, env = "VUER_RTC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seed of the ops.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what}: {s} is not a duration"))
}

/// A spawned server, killed and its directory removed on drop.
struct Spawned {
    child: Child,
    dir: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(extra: &[String]) -> Result<(Spawned, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let dir = std::env::temp_dir().join(format!("vuer-rtc-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = std::fs::File::create(dir.join("server.log"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    if !extra
        .iter()
        .any(|a| a.starts_with("--memory") || a.starts_with("--data-dir"))
    {
        cmd.arg("--data-dir").arg(dir.join("data"));
    }
    cmd.args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let stdout = child.stdout.take();
    let spawned = Spawned { child, dir };
    let mut first = String::new();
    if let Some(out) = stdout {
        let _ = BufReader::new(out).read_line(&mut first);
    }
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|u| u.strip_suffix("/scenes/{scene}"))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "the server did not start (its log: {})",
                spawned.dir.join("server.log").display()
            )
        })?;
    Ok((spawned, url))
}

/// Runs the load test and prints the report.
pub fn run(args: LoadArgs) -> Result<bool, String> {
    let (spawned, url) = if args.spawn {
        let (s, url) = spawn(&args.serve_arg)?;
        (Some(s), url)
    } else {
        (None, args.url.clone())
    };
    let cfg = LoadConfig {
        url,
        clients: args.clients,
        writers: args.writers,
        rate: args.rate,
        window: args.window,
        ops: args.ops,
        duration: secs(args.duration, "duration")?,
        nodes: args.nodes,
        conns_per_task: args.conns_per_task,
        heartbeat: secs(args.heartbeat, "heartbeat")?,
        drain: secs(args.drain, "drain")?,
        verify: args.verify,
        track: args.track,
        batch: !args.no_batch,
        token: args.token.clone(),
        server_pid: args.server_pid.or(spawned.as_ref().map(|s| s.child.id())),
        seed: args.seed,
        ..LoadConfig::default()
    };
    let rt =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = rt.block_on(loadtest::run(&cfg, |p: &Progress| {
        bar.set_prefix(format!("{:?}", p.phase).to_lowercase());
        let frac = p.elapsed.as_secs_f64() / p.phase_length.as_secs_f64().max(1e-9);
        bar.set_position(if p.phase == Phase::Connecting {
            (p.connected * 1000 / cfg.clients.max(1)) as u64
        } else {
            (frac.min(1.0) * 1000.0) as u64
        });
        bar.set_message(format!(
            "{} conns, {} sent, {} acked, {} delivered, {} errors",
            p.connected, p.sent, p.acked, p.delivered, p.errors
        ));
    }));
    bar.finish_and_clear();
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(spawned);
    let report = report.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    } else {
        table(&report)
    };
    let _ = writeln!(out, "{text}");
    Ok(report.converged)
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn table(r: &LoadReport) -> String {
    let lat = |l: &loadtest::Latency| {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count
        )
    };
    let errors = if r.errors_by_kind.is_empty() {
        "none".to_owned()
    } else {
        r.errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = vec![
        ("scene", r.url.clone()),
        (
            "load",
            format!(
                "{} clients, {} writers x {} msg/s x {} ops, {:.1} s",
                r.clients, r.writers, r.rate, r.ops, r.duration_s
            ),
        ),
        (
            "connections",
            format!("{} open, {} dropped", r.connected, r.disconnected),
        ),
        (
            "messages",
            format!(
                "{} sent, {} acked ({:.0}/s), {} rejected, {} unacked",
                r.sent, r.acked, r.acked_per_s, r.rejected, r.unacked
            ),
        ),
        (
            "delivered",
            format!(
                "{} ({:.0}/s) of {} expected; lost {}, out of order {}",
                r.delivered, r.delivered_per_s, r.expected_deliveries, r.lost, r.out_of_order
            ),
        ),
        ("ack", lat(&r.ack)),
        ("delivery", lat(&r.delivery)),
        ("errors", errors),
    ];
    if let Some(s) = &r.server {
        rows.push((
            "server",
            format!(
                "RSS {} before, {} connected ({:.1} KB per connection), peak {}, end {}; CPU {:.2} cores",
                mb(s.rss_before),
                mb(s.rss_connected),
                s.rss_per_connection as f64 / 1e3,
                mb(s.rss_peak),
                mb(s.rss_end),
                s.cpu_cores
            ),
        ));
    }
    rows.push(("load CPU", format!("{:.2} cores", r.loadgen_cpu_cores)));
    rows.push((
        "converged",
        format!(
            "{} ({} of {} full replicas equal the server{})",
            if r.converged { "yes" } else { "NO" },
            r.verified_equal,
            r.verified,
            r.server_hash
                .as_deref()
                .map_or(String::new(), |h| format!(", hash {h}"))
        ),
    ));
    rows.iter()
        .map(|(k, v)| format!("{k:<12} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

//! The load generator (feature `loadtest`; `vuer-rtc loadtest`): many WebSocket
//! connections to one scene of a `vuer-rtc serve`, some of them writing at a fixed
//! rate, all of them receiving, then a check that everyone ended with everything.
//!
//! How it measures:
//! - a run creates its own nodes and client names (a fresh run id), so it can run
//!   against a scene that already holds data;
//! - connections join with `join=none` and are light: most only count the messages
//!   of each broadcast frame ([`crate::protocol::count_broadcast`], the array header);
//!   the writers, the first connection of each task and `track` more, spread evenly,
//!   read each message's head
//!   ([`crate::protocol::scan_broadcast`]), never its ops, and keep per writer how many
//!   of its messages arrived and that its counters only grew (writers also keep their
//!   Lamport clocks from what they read);
//! - a writer's message carries its send time in `ts`; delivery latency is the
//!   receiver's wall clock minus `ts` (one process, one clock); ack latency is the time
//!   from the send to the `ack` on the writer's connection;
//! - `verify` further clients are full replicas ([`crate::client::SyncClient`], joined
//!   from the engine snapshot); at the end each compares its state hash with the
//!   server's `sync-status`.
//!
//! Invariants of the report:
//! - `lost` counts messages the server acknowledged that some connection still open at
//!   the end had not received (per writer, the acked count minus the least received
//!   among the other tracked connections; for a counting connection, its total), after
//!   the drain;
//! - `converged` holds only when nothing is lost, nothing arrived out of order or
//!   twice, no connection dropped, no message was rejected, and every full replica's
//!   state hash equals the server's with the server's clock covering every ack.

mod proc;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::client::{ClientOptions, SyncClient};
use crate::op::{Json, Message, Op};
use crate::protocol::{ClientFrame, Encoding, Framing, ServerMessage};

/// What a load test does.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `ws://HOST:PORT` (a fresh scene `load-<run>`) or `ws://HOST:PORT/scenes/NAME`.
    pub url: String,
    /// Connections (writers included, full replicas not).
    pub clients: usize,
    /// How many of them write.
    pub writers: usize,
    /// Messages per second per writer; 0: as fast as the window allows.
    pub rate: f64,
    /// Unacknowledged messages a writer may have in flight (0: no limit).
    pub window: usize,
    /// Ops per message.
    pub ops: usize,
    /// How long the writers write.
    pub duration: Duration,
    /// Nodes created before the run (the ops' targets).
    pub nodes: usize,
    /// Connections driven by one tokio task.
    pub conns_per_task: usize,
    /// Heartbeat period of every connection.
    pub heartbeat: Duration,
    /// The longest wait, after the writers stop, for acks and deliveries.
    pub drain: Duration,
    /// Full replicas whose state hash is compared with the server's.
    pub verify: usize,
    /// Connections (spread evenly) that read the head of every message they receive,
    /// for delivery latency and per-writer order, besides the writers and the first
    /// connection of each task (which always do); the others only count messages and
    /// heartbeat what their task's tracked connections hold.
    pub track: usize,
    /// Ask for `broadcast-batch` frames.
    pub batch: bool,
    /// Connection handshakes in flight at once.
    pub connect_concurrency: usize,
    /// A token for servers that need one (`?token=`).
    pub token: Option<String>,
    /// The server's process id, when it runs on this machine: its memory and CPU go in
    /// the report.
    pub server_pid: Option<u32>,
    /// Seeds the ops and the run id.
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "ws://127.0.0.1:8013".into(),
            clients: 100,
            writers: 10,
            rate: 10.0,
            window: 0,
            ops: 10,
            duration: Duration::from_secs(10),
            nodes: 100,
            conns_per_task: 50,
            heartbeat: Duration::from_secs(5),
            drain: Duration::from_secs(15),
            verify: 2,
            track: 100,
            batch: true,
            connect_concurrency: 128,
            token: None,
            server_pid: None,
            seed: 1,
        }
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Opening connections.
    Connecting,
    /// Writers writing.
    Running,
    /// Waiting for the last acks and deliveries.
    Draining,
    /// Closing.
    Done,
}

/// Counters while a run goes on (for a progress bar).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Where the run is.
    pub phase: Phase,
    /// Open connections.
    pub connected: usize,
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages received by connections.
    pub delivered: u64,
    /// Errors so far.
    pub errors: u64,
    /// Time in this phase.
    pub elapsed: Duration,
    /// How long the phase lasts at most.
    pub phase_length: Duration,
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The server's memory and CPU (when [`LoadConfig::server_pid`] is set and readable).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerUsage {
    /// Resident memory before the connections opened, bytes.
    pub rss_before: u64,
    /// Resident memory with every connection open, before any write, bytes.
    pub rss_connected: u64,
    /// `(rss_connected - rss_before) / connections`, bytes.
    pub rss_per_connection: u64,
    /// Largest resident memory sampled during the run, bytes.
    pub rss_peak: u64,
    /// Resident memory at the end, bytes.
    pub rss_end: u64,
    /// CPU used while the writers wrote, as a share of one core (1.0 = one core busy).
    pub cpu_cores: f64,
}

/// What a run measured (`--json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// The scene URL.
    pub url: String,
    /// Connections asked for.
    pub clients: usize,
    /// Writers asked for.
    pub writers: usize,
    /// Connections that opened.
    pub connected: usize,
    /// Connections lost before the end.
    pub disconnected: usize,
    /// Messages per second per writer asked for (0: window-bound).
    pub rate: f64,
    /// Ops per message.
    pub ops: usize,
    /// How long the writers wrote, seconds.
    pub duration_s: f64,
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages rejected (`error` frames naming one of ours).
    pub rejected: u64,
    /// Messages sent but neither acknowledged nor rejected at the end.
    pub unacked: u64,
    /// Acknowledged messages per second while the writers wrote.
    pub acked_per_s: f64,
    /// Messages received by connections (with `broadcast-batch` frames, a writer
    /// receives its own messages too).
    pub delivered: u64,
    /// Messages the connections should have received (every ack to every connection;
    /// without batch frames, to every one but its author).
    pub expected_deliveries: u64,
    /// Deliveries per second while the writers wrote.
    pub delivered_per_s: f64,
    /// Acknowledged messages missing at a connection at the end.
    pub lost: u64,
    /// Messages that arrived out of order or twice.
    pub out_of_order: u64,
    /// Errors, all kinds.
    pub errors: u64,
    /// Errors by kind (the `error` frame's code, `close <code>`, `connect`, …).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Send to ack.
    pub ack: Latency,
    /// `ack.p99_ms`.
    pub ack_p99_ms: f64,
    /// Send to receipt at another connection.
    pub delivery: Latency,
    /// `delivery.p99_ms`.
    pub delivery_p99_ms: f64,
    /// Full replicas compared with the server.
    pub verified: usize,
    /// How many of them had the server's state hash.
    pub verified_equal: usize,
    /// The server's state hash at the end.
    pub server_hash: Option<String>,
    /// See the module doc.
    pub converged: bool,
    /// The server's memory and CPU.
    pub server: Option<ServerUsage>,
    /// This process's CPU while the writers wrote, in cores.
    pub loadgen_cpu_cores: f64,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The URL is not a `ws://` URL.
    #[error("bad URL {0:?}: expected ws://HOST:PORT or ws://HOST:PORT/scenes/SCENE")]
    Url(String),
    /// The configuration is inconsistent.
    #[error("bad configuration: {0}")]
    Config(String),
    /// Creating the scene's nodes failed.
    #[error("setting up the scene failed: {0}")]
    Setup(String),
}

/// Counters shared by the workers and the coordinator.
#[derive(Default)]
pub(crate) struct Counters {
    pub connected: AtomicUsize,
    pub ready: AtomicUsize,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub rejected: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    pub disconnected: AtomicUsize,
}

/// What every worker knows about the run.
pub(crate) struct Plan {
    pub url: String,
    pub run: String,
    /// The writers' client names, by writer index.
    pub writer_names: Vec<String>,
    pub writer_of: ahash::AHashMap<String, usize>,
    /// Per writer: its messages before the run (the setup message is writer 0's
    /// first, so that no silent client holds compaction back).
    pub base: Vec<u64>,
    pub nodes: Vec<String>,
    pub cfg: LoadConfig,
}

/// What one connection still open at the end received.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Its writer index, if it writes.
    pub writer: Option<usize>,
    /// Whether `got` was kept.
    pub tracked: bool,
    /// Per writer, how many of its messages of the run arrived (tracked connections).
    pub got: Vec<u64>,
    /// Messages received, all (with `batch=1` its own included).
    pub received: u64,
}

/// What a worker hands back at the end.
pub(crate) struct WorkerResult {
    /// The connections still open.
    pub conns: Vec<Tally>,
    /// Per writer of this worker: messages acknowledged.
    pub acked: Vec<(usize, u64)>,
    pub ack: Histogram<u64>,
    pub delivery: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    pub out_of_order: u64,
}

#[allow(
    clippy::expect_used,
    reason = "constant bounds, valid for hdrhistogram (1 <= low, high >= 2 low, 3 digits)"
)]
pub(crate) fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits (values are recorded saturating).
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Seconds since the epoch, as a message's `ts`.
pub(crate) fn now_ts() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The scene URL and the query every light connection adds.
fn scene_url(cfg: &LoadConfig, run: &str) -> Result<String, LoadError> {
    let url = cfg.url.trim_end_matches('/');
    let Some(rest) = url.strip_prefix("ws://") else {
        return Err(LoadError::Url(cfg.url.clone()));
    };
    if rest.is_empty() {
        return Err(LoadError::Url(cfg.url.clone()));
    }
    Ok(if rest.contains("/scenes/") {
        url.to_owned()
    } else if rest.contains('/') {
        return Err(LoadError::Url(cfg.url.clone()));
    } else {
        format!("{url}/scenes/load-{run}")
    })
}

fn with_query(url: &str, query: &str, token: Option<&str>) -> String {
    let token = token.map(|t| format!("token={t}"));
    let parts: Vec<&str> = [Some(query), token.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", parts.join("&"))
}

/// Creates the run's nodes in one message and waits for its ack: writer 0's first
/// message (its connection goes on from the second), or a setup client's without
/// writers.
async fn setup(plan: &Plan) -> Result<(), LoadError> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let url = with_query(&plan.url, "join=none", plan.cfg.token.as_deref());
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| LoadError::Setup(format!("connecting to {url}: {e}")))?;
    let client = plan
        .writer_names
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}-setup", plan.run));
    let props = |_: &str| -> BTreeMap<String, Json> {
        [
            ("position".to_owned(), serde_json::json!([0.0, 0.0, 0.0])),
            ("health".to_owned(), serde_json::json!(100.0)),
        ]
        .into()
    };
    let msg = Message {
        id: format!("{client}:1"),
        client: client.clone(),
        clock: [(client.clone(), 1)].into(),
        lt: 1,
        ts: now_ts(),
        ops: plan
            .nodes
            .iter()
            .map(|k| Op::node_insert_with("", k.as_str(), "Mesh", props(k)))
            .collect(),
    };
    let frame = crate::protocol::encode_client_frame(
        &ClientFrame::Crdt(msg),
        Encoding::MessagePack,
        Framing::Plain,
    );
    ws.send(Ws::Binary(frame.into()))
        .await
        .map_err(|e| LoadError::Setup(e.to_string()))?;
    let limits = crate::op::Limits::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| LoadError::Setup("no ack within 30 s".into()))?;
        let bytes = match next {
            Some(Ok(Ws::Binary(b))) => b,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(LoadError::Setup(e.to_string())),
            None => return Err(LoadError::Setup("the server closed the connection".into())),
        };
        match crate::protocol::decode_server_frame(&bytes, Encoding::MessagePack, &limits) {
            Ok((ServerMessage::Ack { .. }, _)) => break,
            Ok((ServerMessage::Error { error, .. }, _)) => return Err(LoadError::Setup(error)),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// Runs a load test; `progress` is called about five times a second.
///
/// # Errors
/// [`LoadError`] when the URL or configuration is bad or the scene cannot be set up;
/// everything that goes wrong later is counted in the report.
pub async fn run(
    cfg: &LoadConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<LoadReport, LoadError> {
    if cfg.clients == 0 || cfg.writers > cfg.clients {
        return Err(LoadError::Config(format!(
            "{} writers among {} clients",
            cfg.writers, cfg.clients
        )));
    }
    if cfg.ops == 0 || cfg.nodes == 0 || cfg.conns_per_task == 0 {
        return Err(LoadError::Config(
            "ops, nodes and conns per task must be > 0".into(),
        ));
    }
    if !(cfg.rate >= 0.0 && cfg.rate.is_finite()) || (cfg.rate == 0.0 && cfg.window == 0) {
        return Err(LoadError::Config(
            "rate must be >= 0, and a window is needed when rate is 0".into(),
        ));
    }
    let mut rng = crate::workload::SplitMix64::new(cfg.seed ^ now_ts().to_bits());
    let run = format!("{:08x}", rng.next_u64() as u32);
    let url = scene_url(cfg, &run)?;
    let writer_names: Vec<String> = (0..cfg.writers).map(|w| format!("{run}-w{w}")).collect();
    let plan = Arc::new(Plan {
        url: url.clone(),
        writer_of: writer_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
        base: (0..cfg.writers).map(|w| u64::from(w == 0)).collect(),
        writer_names,
        nodes: (0..cfg.nodes).map(|i| format!("{run}-n{i}")).collect(),
        run,
        cfg: cfg.clone(),
    });
    setup(&plan).await?;

    let counters = Arc::new(Counters::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let rss_before = cfg.server_pid.and_then(|p| proc::rss(Some(p)));
    let handshakes = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));

    // Connection i writes when it is the first of its share of clients / writers.
    let writer_at: Vec<Option<usize>> = {
        let mut v = vec![None; cfg.clients];
        for w in 0..cfg.writers {
            v[w * cfg.clients / cfg.writers] = Some(w);
        }
        v
    };
    let mut workers = Vec::new();
    for (t, chunk) in writer_at.chunks(cfg.conns_per_task).enumerate() {
        let first = t * cfg.conns_per_task;
        let roles: Vec<(usize, Option<usize>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, w)| (first + i, *w))
            .collect();
        workers.push(tokio::spawn(worker::run(
            plan.clone(),
            roles,
            counters.clone(),
            phase_rx.clone(),
            handshakes.clone(),
            rng.next_u64(),
        )));
    }
    let mut verifiers = Vec::new();
    for v in 0..cfg.verify {
        let url = with_query(&plan.url, "", cfg.token.as_deref());
        match SyncClient::connect(
            &url,
            &format!("{}-v{v}", plan.run),
            ClientOptions {
                compact_every: 1000,
                ..ClientOptions::default()
            },
        )
        .await
        {
            Ok(c) => verifiers.push(c),
            Err(e) => {
                tracing::warn!("verifier {v}: {e}");
            }
        }
    }

    // Connecting: until every worker has opened (or failed) all its connections.
    let tick = Duration::from_millis(200);
    let started = Instant::now();
    let report_progress = |phase, since: Instant, length, progress: &mut dyn FnMut(&Progress)| {
        progress(&Progress {
            phase,
            connected: counters.connected.load(Ordering::Relaxed),
            sent: counters.sent.load(Ordering::Relaxed),
            acked: counters.acked.load(Ordering::Relaxed),
            delivered: counters.delivered.load(Ordering::Relaxed),
            errors: counters.errors.load(Ordering::Relaxed),
            elapsed: since.elapsed(),
            phase_length: length,
        });
    };
    let connect_budget = Duration::from_secs(60 + cfg.clients as u64 / 100);
    while counters.ready.load(Ordering::Relaxed) < cfg.clients && started.elapsed() < connect_budget
    {
        report_progress(Phase::Connecting, started, connect_budget, &mut progress);
        tokio::time::sleep(tick).await;
    }
    // Let the server register the last connections before measuring its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = cfg.server_pid.and_then(|p| proc::rss(Some(p)));
    let mut rss_peak = rss_connected.map_or(0, |r| r.0);

    // Running.
    let cpu0 = (
        cfg.server_pid.and_then(|p| proc::cpu(Some(p))),
        proc::cpu(None),
    );
    let run_start = Instant::now();
    let _ = phase_tx.send(Phase::Running);
    while run_start.elapsed() < cfg.duration {
        report_progress(Phase::Running, run_start, cfg.duration, &mut progress);
        if let Some((r, _)) = cfg.server_pid.and_then(|p| proc::rss(Some(p))) {
            rss_peak = rss_peak.max(r);
        }
        tokio::time::sleep(tick.min(cfg.duration.saturating_sub(run_start.elapsed()))).await;
    }
    let ran = run_start.elapsed();
    let cpu1 = (
        cfg.server_pid.and_then(|p| proc::cpu(Some(p))),
        proc::cpu(None),
    );
    let sent_at_end = counters.sent.load(Ordering::Relaxed);
    let acked_at_end = counters.acked.load(Ordering::Relaxed);
    let delivered_at_end = counters.delivered.load(Ordering::Relaxed);

    // Draining: until every message is answered and every connection has it all.
    let _ = phase_tx.send(Phase::Draining);
    let drain_start = Instant::now();
    let light = counters.connected.load(Ordering::Relaxed) as u64;
    loop {
        let sent = counters.sent.load(Ordering::Relaxed);
        let acked = counters.acked.load(Ordering::Relaxed);
        let answered = acked + counters.rejected.load(Ordering::Relaxed);
        let alive = light.saturating_sub(counters.disconnected.load(Ordering::Relaxed) as u64);
        let all_delivered = counters.delivered.load(Ordering::Relaxed)
            >= expected_deliveries(acked, alive, cfg.batch);
        if (answered >= sent && all_delivered) || drain_start.elapsed() >= cfg.drain {
            break;
        }
        report_progress(Phase::Draining, drain_start, cfg.drain, &mut progress);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The full replicas: a sync-check round trip each, then the hashes.
    let mut server_hash = None;
    let mut server_clock = None;
    let mut verified_equal = 0;
    let verified = verifiers.len();
    for v in &mut verifiers {
        if let Ok(status) = v.check(Duration::from_secs(30)).await {
            let mine = v.with_store(|s| s.replica().state_hash());
            if mine == status.hash {
                verified_equal += 1;
            }
            server_hash = Some(format!("{:016x}", status.hash));
            server_clock = Some(status.vector_clock);
        }
    }
    for v in verifiers {
        v.close().await;
    }
    let _ = phase_tx.send(Phase::Done);
    report_progress(Phase::Done, drain_start, cfg.drain, &mut progress);

    let mut ack = histogram();
    let mut delivery = histogram();
    let mut errors_by_kind = BTreeMap::new();
    let mut out_of_order = 0;
    let mut conns = Vec::new();
    let mut acked_by = vec![0u64; cfg.writers];
    for w in workers {
        let Ok(r) = w.await else {
            *errors_by_kind
                .entry("worker panicked".to_owned())
                .or_insert(0) += 1;
            continue;
        };
        let _ = ack.add(&r.ack);
        let _ = delivery.add(&r.delivery);
        for (k, n) in r.errors {
            *errors_by_kind.entry(k).or_insert(0) += n;
        }
        out_of_order += r.out_of_order;
        for (w, n) in r.acked {
            acked_by[w] = n;
        }
        conns.extend(r.conns);
    }
    let (lost, extra) = tally(&acked_by, &conns, cfg.batch);
    out_of_order += extra;
    // The server holds every acked message: its clock covers each writer's acks.
    let clock_covers = server_clock.as_ref().is_some_and(|c| {
        plan.writer_names
            .iter()
            .zip(acked_by.iter().zip(&plan.base))
            .all(|(name, (&n, &base))| c.get(name).copied().unwrap_or(0) >= n + base)
    });
    let c = &counters;
    let sent = c.sent.load(Ordering::Relaxed);
    let acked = c.acked.load(Ordering::Relaxed);
    let rejected = c.rejected.load(Ordering::Relaxed);
    let disconnected = c.disconnected.load(Ordering::Relaxed);
    let connected = c.connected.load(Ordering::Relaxed);
    let errors = errors_by_kind.values().sum();
    let secs = ran.as_secs_f64().max(1e-9);
    let cores = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() / secs,
        _ => 0.0,
    };
    let server = cfg.server_pid.and_then(|pid| {
        let before = rss_before?.0;
        let connected_rss = rss_connected?.0;
        Some(ServerUsage {
            rss_before: before,
            rss_connected: connected_rss,
            rss_per_connection: connected_rss.saturating_sub(before) / connected.max(1) as u64,
            rss_peak,
            rss_end: proc::rss(Some(pid)).map_or(0, |r| r.0),
            cpu_cores: cores(cpu0.0, cpu1.0),
        })
    });
    let expected_deliveries = expected_deliveries(
        acked,
        connected.saturating_sub(disconnected) as u64,
        cfg.batch,
    );
    let delivered = c.delivered.load(Ordering::Relaxed);
    let _ = (sent_at_end, acked_at_end);
    Ok(LoadReport {
        url,
        clients: cfg.clients,
        writers: cfg.writers,
        connected,
        disconnected,
        rate: cfg.rate,
        ops: cfg.ops,
        duration_s: secs,
        sent,
        acked,
        rejected,
        unacked: sent.saturating_sub(acked + rejected),
        acked_per_s: acked_at_end as f64 / secs,
        delivered,
        expected_deliveries,
        delivered_per_s: delivered_at_end as f64 / secs,
        lost,
        out_of_order,
        errors,
        errors_by_kind,
        ack_p99_ms: Latency::of(&ack).p99_ms,
        ack: Latency::of(&ack),
        delivery_p99_ms: Latency::of(&delivery).p99_ms,
        delivery: Latency::of(&delivery),
        verified,
        verified_equal,
        server_hash,
        converged: lost == 0
            && out_of_order == 0
            && disconnected == 0
            && rejected == 0
            && connected == cfg.clients
            && sent == acked
            && delivered == expected_deliveries
            && verified > 0
            && verified_equal == verified
            && clock_covers,
        server,
        loadgen_cpu_cores: cores(cpu0.1, cpu1.1),
    })
}

/// Every acked message to every open connection (with `batch`, its author's too).
fn expected_deliveries(acked: u64, open: u64, batch: bool) -> u64 {
    if batch {
        acked * open
    } else {
        acked * open.saturating_sub(1)
    }
}

/// Acknowledged messages missing at the end (see the module doc), and messages
/// received more often than sent. A tracked connection is checked per writer (the
/// acked count minus the in-order count, summed over writers as the most any tracked
/// connection misses of each); a counting one by its total (every acked message, less
/// its own unless `batch`: a `broadcast-batch` holds the receiver's own messages).
fn tally(acked_by: &[u64], conns: &[Tally], batch: bool) -> (u64, u64) {
    let total: u64 = acked_by.iter().sum();
    let tracked_lost: u64 = acked_by
        .iter()
        .enumerate()
        .map(|(w, &acked)| {
            conns
                .iter()
                .filter(|c| c.tracked && c.writer != Some(w))
                .map(|c| acked.saturating_sub(c.got.get(w).copied().unwrap_or(0)))
                .max()
                .unwrap_or(0)
        })
        .sum();
    let (mut counted_lost, mut extra) = (0, 0);
    for c in conns {
        let own = match c.writer {
            Some(w) if !batch => acked_by.get(w).copied().unwrap_or(0),
            _ => 0,
        };
        let expected = total - own;
        counted_lost = counted_lost.max(expected.saturating_sub(c.received));
        extra += c.received.saturating_sub(expected);
    }
    (tracked_lost.max(counted_lost), extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(writer: Option<usize>, tracked: bool, got: Vec<u64>, received: u64) -> Tally {
        Tally {
            writer,
            tracked,
            got,
            received,
        }
    }

    #[test]
    fn lost_counts_acked_messages_missing_at_another_connection() {
        // Two writers (acked 5 and 3); writer 0, writer 1, a tracked and a counting
        // reader; without batch frames (a writer does not get its own messages).
        let acked = [5, 3];
        let all = vec![
            conn(Some(0), true, vec![0, 3], 3),
            conn(Some(1), false, vec![], 5),
            conn(None, true, vec![5, 3], 8),
            conn(None, false, vec![], 8),
        ];
        assert_eq!(tally(&acked, &all, false), (0, 0));
        // The tracked reader misses one of writer 0 and two of writer 1.
        let mut some = all.clone();
        some[2].got = vec![4, 1];
        assert_eq!(tally(&acked, &some, false).0, 3);
        // A writer's own count of its own messages does not matter.
        some = all.clone();
        some[0].got = vec![0, 3];
        some[0].received = 3;
        assert_eq!(tally(&acked, &some, false), (0, 0));
        // The counting reader misses two; another got one twice.
        some = all.clone();
        some[3].received = 6;
        some[1].received = 6;
        assert_eq!(tally(&acked, &some, false), (2, 1));
        // With batch frames everyone gets everything, their own included.
        let batch = vec![
            conn(Some(0), true, vec![0, 3], 8),
            conn(Some(1), false, vec![], 8),
            conn(None, false, vec![], 7),
        ];
        assert_eq!(tally(&acked, &batch, true), (1, 0));
    }

    #[test]
    fn urls_name_a_scene() {
        let cfg = |url: &str| LoadConfig {
            url: url.into(),
            ..LoadConfig::default()
        };
        assert_eq!(
            scene_url(&cfg("ws://h:1"), "r").unwrap(),
            "ws://h:1/scenes/load-r"
        );
        assert_eq!(
            scene_url(&cfg("ws://h:1/scenes/s/"), "r").unwrap(),
            "ws://h:1/scenes/s"
        );
        for bad in ["http://h:1", "ws://", "ws://h:1/other"] {
            assert!(scene_url(&cfg(bad), "r").is_err(), "{bad}");
        }
        assert_eq!(
            with_query("ws://h/scenes/s", "join=none", Some("t")),
            "ws://h/scenes/s?join=none&token=t"
        );
    }
}

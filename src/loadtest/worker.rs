//! One tokio task driving many light connections: it opens them, reads every frame of
//! all of them through one `SelectAll`, sends each writer's messages on schedule and
//! each connection's heartbeats, and hands back what it counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::{self, SplitSink, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Counters, Phase, Plan, Tally, WorkerResult, histogram, now_ts, with_query};
use crate::op::{Limits, Message, Op};
use crate::protocol::{self, ClientFrame, Clock, Encoding, Framing, ServerMessage};
use crate::workload::SplitMix64;

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Ws>;

/// The most messages one writer sends in one wake-up when it is behind schedule.
const BURST: u64 = 64;

struct Conn {
    sink: Sink,
    name: String,
    writer: Option<usize>,
    /// Reads the head of every message (order, latency); else counts them only.
    tracked: bool,
    /// Messages received (with `batch=1`, its own included).
    received: u64,
    open: bool,
    /// Per writer: how many of its messages of the run arrived.
    got: Vec<u64>,
    /// Per writer: the counter of its last message that arrived.
    last: Vec<u64>,
    /// The largest Lamport time seen.
    lt: u64,
    next_heartbeat: Instant,
    // A writer's side:
    /// Messages sent in the run.
    sent: u64,
    /// The counter of the last message sent (the run starts after [`Plan::base`]).
    seq: u64,
    acked: u64,
    rejected: u64,
    /// Send time of message `seq`, at `seq - 1`.
    sent_at: Vec<Instant>,
    /// When message 1 is due (the phase of this writer's schedule).
    first_due: Instant,
}

impl Conn {
    fn in_flight(&self) -> u64 {
        self.sent - self.acked - self.rejected
    }
}

struct Worker {
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    conns: Vec<Conn>,
    rng: SplitMix64,
    ack: Histogram<u64>,
    delivery: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    out_of_order: u64,
    running: bool,
    limits: Limits,
}

/// Runs the connections `roles` (global index, writer index) until the phase is
/// [`Phase::Done`].
pub(crate) async fn run(
    plan: Arc<Plan>,
    roles: Vec<(usize, Option<usize>)>,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
    handshakes: Arc<Semaphore>,
    seed: u64,
) -> WorkerResult {
    let cfg = &plan.cfg;
    let query = if cfg.batch {
        "join=none&batch=1"
    } else {
        "join=none"
    };
    let url = with_query(&plan.url, query, cfg.token.as_deref());
    let ws_config = WebSocketConfig::default().read_buffer_size(16 << 10);
    let mut w = Worker {
        plan: plan.clone(),
        counters: counters.clone(),
        conns: Vec::with_capacity(roles.len()),
        rng: SplitMix64::new(seed),
        ack: histogram(),
        delivery: histogram(),
        errors: BTreeMap::new(),
        out_of_order: 0,
        running: false,
        limits: Limits::default(),
    };
    let mut reads = stream::SelectAll::new();
    let stride = (cfg.clients / cfg.track.max(1)).max(1);
    let start = Instant::now();
    for (i, writer) in roles {
        let opened = {
            let _permit = handshakes.acquire().await;
            tokio_tungstenite::connect_async_with_config(&url, Some(ws_config), true).await
        };
        counters.ready.fetch_add(1, Ordering::Relaxed);
        let ws = match opened {
            Ok((ws, _)) => ws,
            Err(e) => {
                w.error(format!("connect: {}", short(&e.to_string())));
                continue;
            }
        };
        counters.connected.fetch_add(1, Ordering::Relaxed);
        let (sink, read) = ws.split();
        let k = w.conns.len();
        reads.push(
            read.map(move |m| (k, Some(m)))
                .chain(stream::once(std::future::ready((k, None)))),
        );
        let jitter = w.jitter(cfg.heartbeat);
        w.conns.push(Conn {
            sink,
            name: match writer {
                Some(wi) => plan.writer_names[wi].clone(),
                None => format!("{}-r{i}", plan.run),
            },
            writer,
            // Writers read heads to keep their Lamport clocks; the first connection of
            // each task does, so that the task's counting connections have a clock.
            tracked: writer.is_some() || w.conns.is_empty() || (cfg.track > 0 && i % stride == 0),
            received: 0,
            open: true,
            got: vec![0; plan.writer_names.len()],
            last: plan.base.clone(),
            lt: writer.map_or(0, |wi| plan.base[wi]),
            next_heartbeat: start + jitter,
            sent: 0,
            seq: writer.map_or(0, |wi| plan.base[wi]),
            acked: 0,
            rejected: 0,
            sent_at: Vec::new(),
            first_due: start,
        });
    }

    loop {
        let due = w.next_due();
        tokio::select! {
            biased;
            changed = phase.changed() => {
                let p = *phase.borrow_and_update();
                if changed.is_err() || p == Phase::Done {
                    break;
                }
                if p == Phase::Running && !w.running {
                    w.start_writing().await;
                } else if p != Phase::Running {
                    w.running = false;
                }
            }
            item = reads.next(), if !reads.is_empty() => {
                match item {
                    Some((k, Some(Ok(frame)))) => w.on_frame(k, frame).await,
                    Some((k, Some(Err(e)))) => {
                        w.close(k, format!("read: {}", short(&e.to_string())));
                    }
                    Some((k, None)) => w.close(k, "closed".into()),
                    None => {}
                }
            }
            () = tokio::time::sleep_until(due) => w.on_timer().await,
        }
    }
    for c in &mut w.conns {
        if c.open {
            let _ = c.sink.send(Ws::Close(None)).await;
        }
    }
    WorkerResult {
        acked: w
            .conns
            .iter()
            .filter_map(|c| c.writer.map(|wi| (wi, c.acked)))
            .collect(),
        conns: w
            .conns
            .iter()
            .filter(|c| c.open)
            .map(|c| Tally {
                writer: c.writer,
                tracked: c.tracked,
                got: c.got.clone(),
                received: c.received,
            })
            .collect(),
        ack: w.ack,
        delivery: w.delivery,
        errors: w.errors,
        out_of_order: w.out_of_order,
    }
}

/// The first line of an error text, at most 80 characters (error kinds stay few).
fn short(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(80).collect()
}

impl Worker {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_insert(0) += 1;
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&mut self, k: usize, why: String) {
        if self.conns[k].open {
            self.conns[k].open = false;
            self.counters.disconnected.fetch_add(1, Ordering::Relaxed);
            self.error(why);
        }
    }

    /// Uniform in `[0, period)`.
    fn jitter(&mut self, period: Duration) -> Duration {
        let micros = period.as_micros().max(1) as u64;
        Duration::from_micros(self.rng.next_u64() % micros)
    }

    /// When the next message or heartbeat of any connection is due.
    fn next_due(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let rate = self.plan.cfg.rate;
        self.conns
            .iter()
            .filter(|c| c.open)
            .map(|c| {
                let mut t = c.next_heartbeat;
                if self.running && c.writer.is_some() && rate > 0.0 && self.may_send(c) {
                    t = t.min(c.first_due + Duration::from_secs_f64(c.sent as f64 / rate));
                }
                t
            })
            .min()
            .unwrap_or(far)
    }

    fn may_send(&self, c: &Conn) -> bool {
        let window = self.plan.cfg.window as u64;
        window == 0 || c.in_flight() < window
    }

    async fn start_writing(&mut self) {
        self.running = true;
        let rate = self.plan.cfg.rate;
        let now = Instant::now();
        for k in 0..self.conns.len() {
            if self.conns[k].writer.is_none() {
                continue;
            }
            if rate > 0.0 {
                let offset = self.jitter(Duration::from_secs_f64(1.0 / rate));
                self.conns[k].first_due = now + offset;
            } else {
                // Window-bound: fill the window now, one more on each answer.
                for _ in 0..self.plan.cfg.window {
                    self.send_one(k).await;
                }
            }
        }
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        let rate = self.plan.cfg.rate;
        let period = self.plan.cfg.heartbeat;
        for k in 0..self.conns.len() {
            if !self.conns[k].open {
                continue;
            }
            if self.conns[k].next_heartbeat <= now {
                self.conns[k].next_heartbeat = now + period;
                self.heartbeat(k).await;
            }
            if !(self.running && rate > 0.0 && self.conns[k].writer.is_some()) {
                continue;
            }
            let c = &self.conns[k];
            let behind = now.saturating_duration_since(c.first_due).as_secs_f64() * rate;
            let due = if now >= c.first_due {
                behind as u64 + 1
            } else {
                0
            };
            let mut n = 0;
            while n < BURST
                && self.conns[k].open
                && self.conns[k].sent < due
                && self.may_send(&self.conns[k])
            {
                self.send_one(k).await;
                n += 1;
            }
        }
    }

    /// The connection's clock: per writer, how many of its messages it holds. A
    /// counting connection knows no writer, so it reports what the tracked connections
    /// of its task hold (they read the same stream from the same server; this only
    /// lets the server compact, as a real client's heartbeat would), or nothing.
    fn clock_of(&self, k: usize) -> Clock {
        let c = &self.conns[k];
        let held = |t: &Conn, w: usize| {
            if t.writer == Some(w) {
                t.seq
            } else {
                t.got[w] + self.plan.base[w]
            }
        };
        let mut clock = Clock::new();
        for (w, name) in self.plan.writer_names.iter().enumerate() {
            let n = if c.tracked {
                held(c, w)
            } else {
                self.conns
                    .iter()
                    .filter(|t| t.tracked && t.open)
                    .map(|t| held(t, w))
                    .min()
                    .unwrap_or(0)
            };
            if n > 0 {
                clock.insert(name.clone(), n);
            }
        }
        if c.seq > 0 {
            clock.insert(c.name.clone(), c.seq);
        }
        clock
    }

    async fn heartbeat(&mut self, k: usize) {
        let frame = ClientFrame::Heartbeat {
            client: self.conns[k].name.clone(),
            vector_clock: self.clock_of(k),
        };
        self.send_frame(k, &frame).await;
    }

    /// The next message of writer connection `k`.
    fn message(&mut self, k: usize) -> Message {
        let cfg = &self.plan.cfg;
        let nodes = &self.plan.nodes;
        let ops = (0..cfg.ops)
            .map(|i| {
                let key = nodes[self.rng.below(nodes.len())].as_str();
                if i % 2 == 0 {
                    let v = [
                        self.rng.unit_f32() * 10.0,
                        self.rng.unit_f32() * 10.0,
                        self.rng.unit_f32() * 10.0,
                    ];
                    Op::vector3_set(key, "position", v)
                } else {
                    Op::number_add(key, "health", f64::from(self.rng.unit_f32()))
                }
            })
            .collect();
        let c = &mut self.conns[k];
        c.sent += 1;
        c.seq += 1;
        c.lt += 1;
        Message {
            id: format!("{}:{}", c.name, c.seq),
            client: c.name.clone(),
            clock: [(c.name.clone(), c.seq)].into(),
            lt: c.lt,
            ts: now_ts(),
            ops,
        }
    }

    async fn send_one(&mut self, k: usize) {
        if !self.conns[k].open {
            return;
        }
        let msg = self.message(k);
        self.conns[k].sent_at.push(Instant::now());
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.send_frame(k, &ClientFrame::Crdt(msg)).await;
    }

    async fn send_frame(&mut self, k: usize, frame: &ClientFrame) {
        let bytes = protocol::encode_client_frame(frame, Encoding::MessagePack, Framing::Plain);
        if let Err(e) = self.conns[k].sink.send(Ws::Binary(bytes.into())).await {
            self.close(k, format!("send: {}", short(&e.to_string())));
        }
    }

    async fn on_frame(&mut self, k: usize, frame: Ws) {
        let bytes = match frame {
            Ws::Binary(b) => b,
            Ws::Close(c) => {
                let why = c.map_or("close".to_owned(), |c| {
                    format!("close {}", u16::from(c.code))
                });
                self.close(k, why);
                return;
            }
            Ws::Text(_) => {
                self.error("text frame".into());
                return;
            }
            _ => return,
        };
        if !self.conns[k].tracked {
            let counted = protocol::count_broadcast(&bytes, Encoding::MessagePack);
            if self.book(k, counted) {
                return;
            }
        }
        let now = now_ts();
        let plan = &self.plan;
        let conn = &mut self.conns[k];
        let delivery = &mut self.delivery;
        let mut disorder = 0;
        let scanned = protocol::scan_broadcast(&bytes, Encoding::MessagePack, |h| {
            conn.lt = conn.lt.max(h.lt);
            // (A `broadcast-batch` holds the receiver's own messages too.)
            let Some(&wi) = plan.writer_of.get(h.client) else {
                return;
            };
            if conn.writer == Some(wi) {
                return;
            }
            let seq =
                h.id.rsplit_once(':')
                    .and_then(|(_, s)| s.parse::<u64>().ok());
            // Counters only grow per writer; a gap is a rejected message (counted
            // as an error) or a lost one (found by the count at the end).
            match seq {
                Some(seq) if seq > conn.last[wi] => {
                    conn.last[wi] = seq;
                    conn.got[wi] += 1;
                }
                _ => disorder += 1,
            }
            let us = ((now - h.ts) * 1e6).max(0.0) as u64;
            delivery.saturating_record(us);
        });
        self.out_of_order += disorder;
        if self.book(k, scanned) {
            return;
        }
        match protocol::decode_server_frame(&bytes, Encoding::MessagePack, &self.limits) {
            Ok((ServerMessage::Ack { msg_id, .. }, _)) => {
                if let Some(n) = self.own_seq(k, &msg_id) {
                    let c = &mut self.conns[k];
                    let us = c.sent_at[n - 1].elapsed().as_micros() as u64;
                    self.ack.saturating_record(us);
                    c.acked += 1;
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                    self.refill(k).await;
                }
            }
            Ok((ServerMessage::Error { msg_id, error }, _)) => {
                let code = error.split(':').next().unwrap_or("error").to_owned();
                self.error(code);
                if let Some(_seq) = msg_id.as_deref().and_then(|id| self.own_seq(k, id)) {
                    self.conns[k].rejected += 1;
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    self.refill(k).await;
                }
            }
            Ok(_) => {}
            Err(e) => self.error(format!("bad frame: {}", e.kind.code())),
        }
    }

    /// Counts what a broadcast frame held (`read`: what `count_broadcast` or
    /// `scan_broadcast` said of it); false when the frame is not a broadcast.
    fn book(&mut self, k: usize, read: Option<Result<usize, protocol::FrameError>>) -> bool {
        match read {
            Some(Ok(n)) => {
                self.conns[k].received += n as u64;
                self.counters
                    .delivered
                    .fetch_add(n as u64, Ordering::Relaxed);
                true
            }
            Some(Err(e)) => {
                self.error(format!("bad broadcast: {}", short(&e.to_string())));
                true
            }
            None => false,
        }
    }

    /// Which of connection `k`'s messages of the run `id` is (1 for the first), if any.
    fn own_seq(&self, k: usize, id: &str) -> Option<usize> {
        let c = &self.conns[k];
        let (client, seq) = id.rsplit_once(':')?;
        let base = c.writer.map_or(0, |wi| self.plan.base[wi]);
        let n = usize::try_from(seq.parse::<u64>().ok()?.checked_sub(base)?).ok()?;
        (client == c.name && n >= 1 && n <= c.sent_at.len()).then_some(n)
    }

    /// In window-bound mode, one more message for each answer.
    async fn refill(&mut self, k: usize) {
        if self.running && self.plan.cfg.rate == 0.0 && self.may_send(&self.conns[k]) {
            self.send_one(k).await;
        }
    }
}

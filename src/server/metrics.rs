//! The server's Prometheus metrics (`GET /metrics`, text exposition format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label naming a reason (rejects, errors, closes).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub reason: String,
}

/// Every metric the server keeps.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub scenes: Gauge,
    pub frames_in: Counter,
    pub messages_in: Counter,
    pub frames_out: Counter,
    pub bytes_out: Counter,
    pub acks: Counter,
    pub compacted: Counter,
    pub rejects: Family<Reason, Counter>,
    pub errors: Family<Reason, Counter>,
    pub closes: Family<Reason, Counter>,
    pub batch_size: Histogram,
    pub fsync_seconds: Histogram,
    pub ack_seconds: Histogram,
    pub journal_bytes: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vuer_rtc");
        let m = Metrics {
            connections: Gauge::default(),
            scenes: Gauge::default(),
            frames_in: Counter::default(),
            messages_in: Counter::default(),
            frames_out: Counter::default(),
            bytes_out: Counter::default(),
            acks: Counter::default(),
            compacted: Counter::default(),
            rejects: Family::default(),
            errors: Family::default(),
            closes: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            fsync_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            ack_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            journal_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        registry.register("scenes", "Scenes held in memory", m.scenes.clone());
        registry.register("frames_in", "Frames received", m.frames_in.clone());
        registry.register(
            "messages_in",
            "CRDT messages received",
            m.messages_in.clone(),
        );
        registry.register(
            "frames_out",
            "Frames queued to connections",
            m.frames_out.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes queued to connections",
            m.bytes_out.clone(),
        );
        registry.register("acks", "Messages acknowledged", m.acks.clone());
        registry.register(
            "compacted_messages",
            "Messages folded into a scene's base by compaction",
            m.compacted.clone(),
        );
        registry.register("rejects", "Messages rejected, by reason", m.rejects.clone());
        registry.register("errors", "Error frames sent, by reason", m.errors.clone());
        registry.register(
            "closes",
            "Connections closed by the server, by reason",
            m.closes.clone(),
        );
        registry.register(
            "batch_size",
            "Messages per merged batch",
            m.batch_size.clone(),
        );
        registry.register(
            "fsync_seconds",
            "Time of one group commit (journal fsync)",
            m.fsync_seconds.clone(),
        );
        registry.register(
            "ack_seconds",
            "From a message's arrival to its ack being queued",
            m.ack_seconds.clone(),
        );
        registry.register(
            "journal_bytes",
            "Bytes of journals and snapshots of the scenes in memory (at their last snapshot)",
            m.journal_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn reject(&self, reason: &str) {
        self.rejects
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn close(&self, reason: &str) {
        self.closes
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }
}

//! [`Replica`]: a scene graph that takes batches of messages in any order, with any
//! duplicates, and always shows the state DESIGN.md §4 defines, without replaying the
//! whole journal.
//!
//! A replica is graph + journal + per-cell histories + structural log:
//!
//! - messages newer than everything held (the common case) are applied in order, op by
//!   op, exactly as the sequential model does, and indexed;
//! - a *late* message (older than something held) is placed where its stamp says: its
//!   node ops by undo-do-redo of the structural log (`structure.rs`), its property ops
//!   by recomputing just the cells they touch from their histories (`recompute.rs`);
//! - `meta.undo`/`meta.redo` flip a message's undo state, and the cells and node ops
//!   of that message are recomputed the same way;
//! - a node whose lifetime changes (a late insert makes waiting ops take effect, a late
//!   remove cuts later ops off) has all its cells recomputed.
//!
//! Invariant: for every set S of messages, `Replica` fed S in any order, in any batch
//! split, with any duplicates, has `to_json()` byte-identical to
//! [`crate::apply_messages`] of S on an empty graph (tested in
//! `tests/replica.rs` against that model).
//!
//! In-order messages go through the batched merge of `merge.rs` (structural pass, runs
//! sorted by `(path, row)`, rayon across columns). Warnings are reported for ops applied
//! in order; ops placed by recompute report none (the sequential model,
//! [`crate::apply_messages`], gives the complete, delivery-independent list).
//!
//! Compaction (`compact.rs`) folds the stable prefix of the journal into per-cell bases.
//! The journal keeps each op as a 32-byte record (`record.rs`): the ops with a small
//! fixed payload inline, with no string, everything else whole; a journaled message
//! is rebuilt from the records and the interned names when it leaves the replica.

pub(crate) mod bases;
mod compact;
mod encode;
mod index;
mod join;
pub mod journal;
mod merge;
pub(crate) mod parts;
mod recompute;
pub mod record;
mod structure;
mod writer;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ahash::{AHashMap, AHashSet};

use crate::error::{RejectError, Warning};
use crate::graph::SceneGraph;
use crate::ids::{ClientId, KeyId, MAX_SAFE_INT, PathId, Pos, Stamp};
use crate::op::{Limits, Message};
use crate::wire::{self, Format};
use index::CellIndex;
use journal::{Journal, OpRef};
use structure::Structure;

pub use compact::CompactReport;
pub use index::MARK_EVERY;
pub(crate) use index::touched;
pub use join::{JoinPoint, JoinTail};
pub use writer::{Committed, Writer};

/// What one [`Replica::apply_batch`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchReport {
    /// New messages accepted into the journal.
    pub accepted: usize,
    /// Messages ignored because their id was already held (or repeated in the batch).
    pub duplicates: usize,
    /// Messages rejected, with the reason; nothing of them was applied.
    pub rejected: Vec<RejectError>,
    /// Accepted messages that were older than something already held.
    pub late: usize,
    /// Held messages whose undo state flipped.
    pub toggled: usize,
    /// Cells recomputed from their histories.
    pub recomputed_cells: usize,
    /// Ops folded again to recompute those cells: what late ops, undo and redo cost. A
    /// late op refolds about the ops after its position plus at most
    /// [`MARK_EVERY`](crate::replica::MARK_EVERY), not its cell's whole history.
    pub refolded_ops: usize,
    /// Node ops undone and redone to place late node ops.
    pub replayed_node_ops: usize,
    /// Ops applied in order that did nothing, and why.
    pub warnings: Vec<Warning>,
    /// Messages folded into the base by the compaction this call ran by itself
    /// ([`Replica::set_auto_compact`]); 0 when it ran none.
    pub compacted: usize,
}

/// Sizes of a replica's parts, for memory reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Messages in the journal.
    pub messages: usize,
    /// Op references in the per-cell histories.
    pub indexed_ops: usize,
    /// Node ops in the structural log.
    pub node_ops: usize,
    /// Nodes in the graph (tombstones included).
    pub nodes: usize,
    /// Cells holding a compaction base.
    pub bases: usize,
}

/// A scene replica: accepts messages in any order and converges (DESIGN.md §4).
///
/// # Examples
/// ```
/// use vuer_rtc::replica::Replica;
/// use vuer_rtc::op::{Message, Op};
/// let m = |client: &str, lt, ops| Message {
///     id: format!("{client}:{lt}"), client: client.into(), clock: Default::default(), lt, ts: 0.0, ops,
/// };
/// let insert = m("a", 1, vec![Op::node_insert("", "obj", "Mesh"), Op::number_set("obj", "hp", 100.0)]);
/// let hit = m("b", 2, vec![Op::number_add("obj", "hp", -25.0)]);
/// let mut r = Replica::new();
/// r.apply_batch(&[hit.clone()]);         // waits: `obj` does not exist yet
/// let report = r.apply_batch(&[insert, hit]);
/// assert_eq!(report.duplicates, 1);
/// assert_eq!(r.graph().node("obj").unwrap().get("hp").and_then(|v| v.as_number()), Some(75.0));
/// ```
#[derive(Clone, Debug)]
pub struct Replica {
    graph: SceneGraph,
    journal: Journal,
    index: CellIndex,
    structure: Structure,
    frontier: Option<Stamp>,
    limits: Limits,
    // Clients silent for more than this many Lamport ticks do not hold compaction back.
    horizon: u64,
    // The Lamport time compacted through, if any.
    compacted_through: Option<u64>,
    // Compact by itself after this many accepted messages (`None`: only when asked),
    // and how many were accepted since the last compaction.
    auto_compact: Option<u64>,
    since_compact: u64,
    // `journal.ops_pushed` at the last automatic compaction.
    ops_at_compact: u64,
}

/// A hasher with fixed keys for transient sets of interned ids (never of strings from
/// the network): building it costs nothing, unlike a randomly seeded one.
pub(crate) type FixedState = std::hash::BuildHasherDefault<ahash::AHasher>;

/// A hash set of interned ids (see [`FixedState`]).
pub(crate) type IdSet<T> = std::collections::HashSet<T, FixedState>;

/// The default compaction horizon, in Lamport ticks: a client silent for longer no
/// longer holds compaction back (a departed scene author, say). Servers, whose
/// sessions report what they hold, use a longer one
/// ([`crate::server::ServerConfig`]'s 100,000).
pub const DEFAULT_HORIZON: u64 = 10_000;

/// How many accepted messages a [`Replica`] takes, by default, before it compacts by
/// itself ([`Replica::set_auto_compact`]).
pub const DEFAULT_AUTO_COMPACT: u64 = 10_000;

/// Automatic compaction also runs once the messages accepted since the last one hold
/// this many ops per message of the policy (1,000,000 ops at the default): a stream of
/// large messages (a [`Writer`] committing a whole scene per tick) stays bounded too.
pub const AUTO_COMPACT_OPS_PER_MESSAGE: u64 = 100;

impl Default for Replica {
    fn default() -> Self {
        Replica {
            graph: SceneGraph::default(),
            journal: Journal::default(),
            index: CellIndex::default(),
            structure: Structure::default(),
            frontier: None,
            limits: Limits::default(),
            horizon: DEFAULT_HORIZON,
            compacted_through: None,
            auto_compact: Some(DEFAULT_AUTO_COMPACT),
            since_compact: 0,
            ops_at_compact: 0,
        }
    }
}

impl Replica {
    /// An empty replica with default [`Limits`] and compaction horizon.
    pub fn new() -> Replica {
        Replica::default()
    }

    /// An empty replica that decodes bytes with these limits.
    pub fn with_limits(limits: Limits) -> Replica {
        Replica {
            limits,
            ..Replica::default()
        }
    }

    /// Sets the compaction horizon: clients whose newest message is more than `ticks`
    /// Lamport ticks behind the newest message held are evicted, so they no longer hold
    /// [`Replica::compact`] back (see `compact.rs`'s module doc for what their very late
    /// messages then get).
    pub fn set_horizon(&mut self, ticks: u64) {
        self.horizon = ticks;
    }

    /// Sets when the replica compacts by itself: after every `messages` accepted
    /// messages (counted across calls), or of messages holding `messages` ×
    /// [`AUTO_COMPACT_OPS_PER_MESSAGE`] ops, at the end of the call that reaches the
    /// count, it runs [`Replica::compact`] and reports the messages folded in
    /// [`BatchReport::compacted`]. `None`: only when [`Replica::compact`] is called
    /// (a [`crate::GraphStore`], which keeps its unacknowledged messages out of the
    /// base, and a server scene, which compacts on its own count, turn it off). The
    /// default, [`DEFAULT_AUTO_COMPACT`] with the [`DEFAULT_HORIZON`], keeps a replica
    /// fed a stream bounded even when a client (the scene's author) falls silent.
    ///
    /// What compaction gives up is in `compact.rs`'s module doc: a message older than
    /// the compacted base, from a client evicted by the horizon, is rejected
    /// ([`RejectError::Compacted`]), an undo of a compacted message does nothing, and
    /// [`Replica::journaled_messages`] holds only what is not compacted.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::replica::Replica;
    /// use vuer_rtc::op::{Message, Op};
    /// let m = |client: &str, n: u64, lt, ops| Message {
    ///     id: format!("{client}:{n}"), client: client.into(), lt, ts: 0.0, ops,
    ///     clock: [(client.to_string(), n)].into(),
    /// };
    /// let mut r = Replica::new();
    /// r.set_auto_compact(Some(2));
    /// r.apply_message(&m("a", 1, 1, vec![Op::node_insert("", "obj", "Mesh")]));
    /// let report = r.apply_message(&m("a", 2, 2, vec![Op::number_set("obj", "hp", 1.0)]));
    /// assert_eq!(report.compacted, 2); // one client, all of it received: all stable
    /// assert_eq!(r.stats().messages, 0);
    /// ```
    pub fn set_auto_compact(&mut self, messages: Option<u64>) {
        self.auto_compact = messages.map(|n| n.max(1));
        self.since_compact = 0;
        self.ops_at_compact = self.journal.ops_pushed;
    }

    /// After how many accepted messages the replica compacts by itself
    /// ([`Replica::set_auto_compact`]).
    pub fn auto_compact_every(&self) -> Option<u64> {
        self.auto_compact
    }

    /// Counts a call's accepted messages and compacts when the count is due.
    fn auto_compact(&mut self, report: &mut BatchReport) {
        self.auto_compact_through(report, u64::MAX);
    }

    /// [`Replica::auto_compact`], folding nothing newer than Lamport time `limit`.
    fn auto_compact_through(&mut self, report: &mut BatchReport, limit: u64) {
        let Some(every) = self.auto_compact else {
            return;
        };
        self.since_compact += report.accepted as u64;
        let ops = self.journal.ops_pushed - self.ops_at_compact;
        if self.since_compact >= every || ops >= every.saturating_mul(AUTO_COMPACT_OPS_PER_MESSAGE)
        {
            self.since_compact = 0;
            self.ops_at_compact = self.journal.ops_pushed;
            report.compacted += self.compact_through(limit).messages;
        }
    }

    /// Declares a client that takes part in the scene (e.g. a session that just
    /// connected), so compaction waits for its messages until it is evicted by the
    /// horizon. Clients named in a received message's `clock` are declared
    /// automatically.
    pub fn register_client(&mut self, name: &str) {
        let id = self.graph.clients.intern(name);
        let lt = self.frontier.map_or(0, |f| f.lt);
        self.journal.know_client(id, lt);
    }

    /// What a heartbeat of a registered `client` says (a server calls this): it holds
    /// the messages `clock` counts. When that includes every message the client sent
    /// (its own counter is no more than what arrived), everything it sends from now on
    /// comes after the newest message it holds that the replica can date (for each
    /// named client, its message at the clock's count, or the latest before it among
    /// the last few the replica received in order), so compaction stops
    /// waiting for it below that. A session that reports nothing keeps holding
    /// compaction back, as it may still send a message from Lamport time 0.
    pub fn note_heartbeat(&mut self, client: &str, clock: &BTreeMap<String, u64>) {
        let Some(id) = self.graph.clients.get(client) else {
            return;
        };
        let own = clock.get(client).copied().unwrap_or(0);
        if own > self.journal.prefix_of(id) {
            return;
        }
        let seen = clock
            .iter()
            .filter_map(|(name, &n)| {
                let w = self.graph.clients.get(name)?;
                self.journal.lt_of_seq(w, n)
            })
            .max()
            .unwrap_or(0);
        self.journal.note_seen(id, seen);
    }

    /// The Lamport time the replica compacted through, if it compacted.
    pub fn compacted_through(&self) -> Option<u64> {
        self.compacted_through
    }

    /// A replica that starts from `graph`, the state of every message with
    /// `lt ≤ through` (a snapshot a server sent), as if it had compacted through
    /// `through`: every cell of `graph` becomes a compaction base, messages with
    /// `lt ≤ through` are rejected ([`RejectError::Compacted`]) and copies of the
    /// messages `clock` counts (`clock[c]` = how many of client `c`'s messages the
    /// snapshot holds) are dropped as duplicates.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::replica::Replica;
    /// use vuer_rtc::op::{Message, Op};
    /// let msg = Message {
    ///     id: "a:1".into(), client: "a".into(), clock: [("a".to_string(), 1)].into(), lt: 1, ts: 0.0,
    ///     ops: vec![Op::node_insert("", "obj", "Mesh"), Op::number_set("obj", "hp", 100.0)],
    /// };
    /// let mut server = Replica::new();
    /// server.apply_message(&msg);
    /// let mut joined = Replica::from_base(server.graph().clone(), &server.clock(), server.lt());
    /// assert_eq!(joined.to_json(), server.to_json());
    /// assert_eq!(joined.apply_message(&msg).duplicates, 1);
    /// ```
    pub fn from_base(graph: SceneGraph, clock: &BTreeMap<String, u64>, through: u64) -> Replica {
        let mut r = Replica {
            graph,
            ..Replica::default()
        };
        let g = &r.graph;
        for n in g.nodes.values() {
            for (p, v) in g.props.row(n.row) {
                if matches!(v, crate::column::ValueRef::Text(_)) {
                    r.index.mark_text_path(p);
                }
                let base = Some((v.to_owned(), g.props.stamp(p, n.row)));
                r.index.set_base(n.kid, p, base);
            }
        }
        for (name, &seq) in clock {
            let id = r.graph.clients.intern(name);
            r.journal.assume_prefix(id, seq, through);
        }
        if through > 0 {
            r.compacted_through = Some(through);
        }
        r
    }

    /// The greatest Lamport time held (or compacted through): a client's next message
    /// takes `lt() + 1`.
    pub fn lt(&self) -> u64 {
        self.frontier
            .map_or(0, |f| f.lt)
            .max(self.compacted_through.unwrap_or(0))
    }

    /// The vector clock of what this replica holds: per client, how many of its
    /// messages (by their `clock` counters) arrived without a gap.
    pub fn clock(&self) -> BTreeMap<String, u64> {
        self.journal.clock(&self.graph.clients)
    }

    /// `clock()[client]` without building the whole clock: how many of `client`'s
    /// messages arrived without a gap (0 for a client never heard from).
    pub fn clock_of(&self, client: &str) -> u64 {
        self.graph
            .clients
            .get(client)
            .map_or(0, |id| self.journal.prefix_of(id))
    }

    /// The interned names journaled messages are rebuilt from.
    pub(crate) fn names(&self) -> journal::Names<'_> {
        journal::Names {
            keys: &self.graph.keys,
            paths: &self.graph.paths,
            clients: &self.graph.clients,
        }
    }

    /// Every journaled (uncompacted) message, rebuilt from the journal's records, in
    /// journal slot order.
    pub fn journaled_messages(&self) -> Vec<Message> {
        let names = self.names();
        self.journal
            .live()
            .map(|i| self.journal.message_at(i, names))
            .collect()
    }

    /// The journaled message with this id, rebuilt.
    pub fn journaled_message(&self, id: &str) -> Option<Message> {
        self.journal.message(id, self.names())
    }

    /// The visible scene.
    pub fn graph(&self) -> &SceneGraph {
        &self.graph
    }

    /// What changed in the scene since the last call (see [`crate::graph::Changes`]):
    /// a renderer's once-per-frame read of the cells to redraw.
    pub fn take_changes(&mut self) -> crate::graph::Changes {
        self.graph.take_changes()
    }

    /// The scene, for a layer that changes it and restores it before the replica next
    /// runs (the store's optimistic edits).
    pub(crate) fn graph_mut(&mut self) -> &mut SceneGraph {
        &mut self.graph
    }

    /// The journal of held messages.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Sizes of the journal, the indexes and the graph.
    pub fn stats(&self) -> ReplicaStats {
        ReplicaStats {
            messages: self.journal.len(),
            indexed_ops: self.index.len(),
            node_ops: self.structure.len(),
            nodes: self.graph.len(),
            bases: self.index.bases_len(),
        }
    }

    /// The canonical state JSON (see [`SceneGraph::to_json`]).
    pub fn to_json(&self) -> String {
        self.graph.to_json()
    }

    /// A 64-bit FNV-1a hash of [`Replica::to_json`]: equal on every replica with the
    /// same messages, stable across processes and platforms.
    pub fn state_hash(&self) -> u64 {
        state_hash(&self.to_json())
    }

    /// Decodes `bytes` (an array of messages, or one) and applies every valid message;
    /// each invalid one is reported in [`BatchReport::rejected`].
    pub fn apply_bytes(&mut self, bytes: &[u8], format: Format) -> BatchReport {
        // Messages of the common shape are read in place; one in order is journaled
        // straight from its view (no `Message`, no `String` per op).
        if format == Format::MessagePack
            && let Some(views) = wire::fast::read_messages(bytes, &self.limits)
        {
            if let [view] = views.as_slice() {
                let mut report = BatchReport::default();
                if self.try_apply_view(view, &mut report) {
                    self.auto_compact(&mut report);
                    return report;
                }
            }
            return self.apply_owned(
                views
                    .iter()
                    .map(wire::fast::MessageView::to_message)
                    .collect(),
            );
        }
        // The fast reader declined: straight to the general decoder (not a second try).
        let limits = self.limits.clone();
        report_decoded(
            wire::decode_messages_lenient_general(bytes, format, &limits),
            |msgs| self.apply_owned(msgs),
        )
    }

    /// Applies one message (see [`Replica::apply_batch`]).
    pub fn apply_message(&mut self, msg: &Message) -> BatchReport {
        self.apply_batch(std::slice::from_ref(msg))
    }

    /// Applies a batch of messages in any order (cloning the ones it keeps; see
    /// [`Replica::apply_owned`] to hand them over). Messages already held are ignored;
    /// a message reusing another's `(lt, client)` is rejected; the rest are journaled
    /// and the state becomes that of the sequential model over everything held.
    pub fn apply_batch(&mut self, msgs: &[Message]) -> BatchReport {
        let mut keep = Vec::with_capacity(msgs.len());
        let mut report = BatchReport::default();
        let mut seen: AHashMap<&str, &Message> = AHashMap::new();
        for m in msgs {
            // Copies are dropped here without a clone; conflicting copies are
            // rejected by `apply_owned`.
            let copy = match self.journal.slot(&m.id) {
                Some(i) => self.journal.holds(i, m, self.names()),
                None => seen.get(m.id.as_str()).is_some_and(|s| *s == m),
            };
            if copy {
                report.duplicates += 1;
            } else {
                seen.entry(m.id.as_str()).or_insert(m);
                keep.push(m.clone());
            }
        }
        let mut r = self.apply_owned(keep);
        r.duplicates += report.duplicates;
        r
    }

    /// Whether `m`, of client `client`, is new here, a copy of a message held (or
    /// compacted away), or must be rejected: another message's id with other content,
    /// its client counter or its stamp, or older than the compacted base.
    pub(crate) fn admit(&self, m: &Message, client: ClientId) -> Admit {
        // Decoded messages keep the wire's integer bound; one built in code is held
        // to it here, so no replica ever holds a time or counter past it.
        if let Some(what) = beyond_bound(m) {
            return Admit::Reject(RejectError::Invalid(crate::error::DecodeError::Message {
                index: 0,
                id: Some(m.id.clone()),
                reason: format!("{what} is beyond 2^53 − 1 (op::MAX_SAFE_INT)"),
            }));
        }
        if let Some(i) = self.journal.slot(&m.id) {
            if self.journal.holds(i, m, self.names()) {
                return Admit::Duplicate;
            }
            let held = self.journal.message_at(i, self.names());
            return Admit::Reject(conflict(m, held.id.clone(), differences(&held, m)));
        }
        let compacted = self.compacted_through.is_some_and(|t| m.lt <= t);
        if let Some(&seq) = m.clock.get(&m.client)
            && self.journal.seen_seq(client, seq)
        {
            // Compacted messages have `lt <= compacted_through`: only there can an
            // unknown id with a seen counter be a copy.
            if compacted {
                return Admit::Duplicate;
            }
            let other = self
                .journal
                .id_with_counter(client, seq)
                .unwrap_or("<compacted>")
                .to_owned();
            let what = format!(
                "client {:?}'s clock counter {seq} is already used",
                m.client
            );
            return Admit::Reject(conflict(m, other, what));
        }
        if let Some(through) = self.compacted_through
            && compacted
        {
            return Admit::Reject(RejectError::Compacted {
                msg_id: m.id.clone(),
                lt: m.lt,
                through,
            });
        }
        let stamp = Stamp { lt: m.lt, client };
        if let Some(other) = self.journal.id_at(stamp) {
            return Admit::Reject(RejectError::StampInUse {
                msg_id: m.id.clone(),
                lt: m.lt,
                client: m.client.clone(),
                other: other.to_owned(),
            });
        }
        Admit::Fresh
    }

    /// [`Replica::apply_batch`] for messages the caller hands over (no copies).
    pub fn apply_owned(&mut self, msgs: Vec<Message>) -> BatchReport {
        let mut report = self.merge_owned(msgs);
        self.auto_compact(&mut report);
        report
    }

    /// [`Replica::apply_owned`] without the automatic compaction.
    fn merge_owned(&mut self, mut msgs: Vec<Message>) -> BatchReport {
        let mut report = BatchReport::default();
        if msgs.len() == 1
            && let Some(m) = msgs.pop()
        {
            match self.try_apply_single(m, &mut report) {
                Ok(()) => return report,
                Err(m) => msgs.push(m),
            }
        }

        // 1. Dedupe and reject conflicts (borrowing, then moving the keepers).
        let keep = self.sort_out(&msgs, &mut report);
        let mut fresh: Vec<(Message, Stamp)> = msgs
            .into_iter()
            .zip(keep)
            .filter_map(|(m, k)| k.map(|stamp| (m, stamp)))
            .collect();

        // 2. Meta ops first, so new targets are journaled with their undo state.
        let mut toggled: Vec<u32> = Vec::new();
        for (m, stamp) in &fresh {
            toggled.extend(self.journal.note_meta(m, *stamp, &self.graph.clients));
        }
        toggled.sort_unstable();
        toggled.dedup();
        report.toggled = toggled.len();

        // 3. Journal in canonical order; split into late and in-order.
        let clients = &self.graph.clients;
        fresh.sort_by(|a, b| clients.cmp_stamps(a.1, b.1));
        let frontier = self.frontier;
        let mut late = Vec::new();
        let mut tail = Vec::new();
        let newest = fresh.last().map(|f| f.1);
        for (m, stamp) in fresh {
            for name in m.clock.keys() {
                if name != &m.client {
                    let id = self.graph.clients.intern(name);
                    self.journal.know_client(id, m.lt);
                }
            }
            let ids = m.ops.iter().map(|op| self.op_ids(op)).collect();
            let i = self.journal.push(m, stamp, ids);
            let clients = &self.graph.clients;
            if frontier.is_some_and(|f| clients.cmp_stamps(stamp, f) == Ordering::Less) {
                late.push(i);
            } else {
                tail.push(i);
            }
        }
        if let Some(newest) = newest {
            let clients = &self.graph.clients;
            if frontier.is_none_or(|f| clients.cmp_stamps(newest, f) == Ordering::Greater) {
                self.frontier = Some(newest);
            }
        }
        report.accepted = late.len() + tail.len();
        report.late = late.len();

        // 4. Late messages and undo flips: index, re-place node ops, recompute cells.
        if !late.is_empty() || !toggled.is_empty() {
            self.integrate_out_of_order(&late, &toggled, &mut report);
        }

        // 5. In-order messages: apply op by op, as the model does.
        if !tail.is_empty() {
            self.apply_tail(&tail, &mut report);
        }
        report
    }

    /// Decides, for each message of a batch, whether it is new (its stamp), a copy
    /// (counted in `report.duplicates`) or rejected (listed in `report.rejected`):
    /// [`Replica::admit`] against what is held, then the same rules against the
    /// batch's earlier messages. Changes nothing but the client table.
    fn sort_out(&mut self, msgs: &[Message], report: &mut BatchReport) -> Vec<Option<Stamp>> {
        let mut keep: Vec<Option<Stamp>> = vec![None; msgs.len()];
        {
            // Within-batch checks only matter for batches of several messages (a
            // single message, the store's common case, skips building the maps).
            let multi = msgs.len() > 1;
            let mut seen: Option<AHashMap<&str, &Message>> =
                multi.then(|| AHashMap::with_capacity(msgs.len()));
            let mut stamps: Option<AHashMap<Stamp, &str>> =
                multi.then(|| AHashMap::with_capacity(msgs.len()));
            let mut counters: Option<AHashMap<(ClientId, u64), &str>> = multi.then(AHashMap::new);
            for (slot, m) in keep.iter_mut().zip(msgs) {
                let client = self.graph.clients.intern(&m.client);
                let stamp = Stamp { lt: m.lt, client };
                match self.admit(m, client) {
                    Admit::Duplicate => {
                        report.duplicates += 1;
                        continue;
                    }
                    Admit::Reject(e) => {
                        report.rejected.push(e);
                        continue;
                    }
                    Admit::Fresh => {}
                }
                let (Some(seen), Some(stamps), Some(counters)) =
                    (&mut seen, &mut stamps, &mut counters)
                else {
                    *slot = Some(stamp);
                    continue;
                };
                // Earlier messages of this batch, by the same rules.
                if let Some(held) = seen.get(m.id.as_str()) {
                    if *held == m {
                        report.duplicates += 1;
                    } else {
                        let what = differences(held, m);
                        report.rejected.push(conflict(m, held.id.clone(), what));
                    }
                    continue;
                }
                if let Some(other) = stamps.get(&stamp) {
                    report.rejected.push(RejectError::StampInUse {
                        msg_id: m.id.clone(),
                        lt: m.lt,
                        client: m.client.clone(),
                        other: (*other).to_owned(),
                    });
                    continue;
                }
                // Counters start at 1 (a 0 counts nothing and is never compared).
                let counter = m
                    .clock
                    .get(&m.client)
                    .filter(|&&seq| seq > 0)
                    .map(|&seq| (client, seq));
                if let Some(c) = counter
                    && let Some(other) = counters.get(&c)
                {
                    let what = format!(
                        "client {:?}'s clock counter {} is already used",
                        m.client, c.1
                    );
                    report.rejected.push(conflict(m, (*other).to_owned(), what));
                    continue;
                }
                seen.insert(&m.id, m);
                stamps.insert(stamp, &m.id);
                if let Some(c) = counter {
                    counters.insert(c, &m.id);
                }
                *slot = Some(stamp);
            }
        }
        keep
    }

    /// The messages of `msgs` that [`Replica::apply_owned`] would accept now, in their
    /// order, and a report of the rest (duplicates and rejections): what a durable
    /// replica journals before it applies them. Applying exactly the returned messages
    /// next accepts every one of them.
    pub fn screen(&mut self, msgs: Vec<Message>) -> (Vec<Message>, BatchReport) {
        let mut report = BatchReport::default();
        let keep = self.sort_out(&msgs, &mut report);
        let fresh = msgs
            .into_iter()
            .zip(keep)
            .filter_map(|(m, k)| k.map(|_| m))
            .collect();
        (fresh, report)
    }

    /// The interned target key and path of an op (see [`journal::Entry::ids`]).
    fn op_ids(&mut self, op: &crate::op::Op) -> (KeyId, PathId) {
        parts::op_ids(&mut self.graph, op)
    }

    /// Every cell the ops of journal entry `i` touch, with the op.
    fn cells_of(&mut self, i: u32) -> Vec<(KeyId, PathId, OpRef)> {
        let mut cells = Vec::new();
        let n = self.journal.entry(i).len();
        for k in 0..n {
            let r = OpRef {
                msg: i,
                op: u32::try_from(k).unwrap_or(u32::MAX),
            };
            cells.extend(self.cells_of_op(r).0.map(|(kid, pid)| (kid, pid, r)));
        }
        cells
    }

    /// Lists each op of journal entry `i` in the cell index, adding its cells to `dirty`.
    fn index_message(&mut self, i: u32, dirty: &mut AHashSet<(KeyId, PathId)>) {
        for (kid, pid, r) in self.cells_of(i) {
            self.index
                .insert(kid, pid, r, &self.journal, &self.graph.clients);
            dirty.insert((kid, pid));
        }
    }

    /// Adds the cells the ops of journal entry `i` touch to `out`.
    fn cells_of_message(&mut self, i: u32, out: &mut AHashSet<(KeyId, PathId)>) {
        out.extend(self.cells_of(i).into_iter().map(|(k, p, _)| (k, p)));
    }

    fn integrate_out_of_order(&mut self, late: &[u32], toggled: &[u32], report: &mut BatchReport) {
        let mut dirty: AHashSet<(KeyId, PathId)> = AHashSet::new();
        let mut first_struct: Option<usize> = None;
        let note = |at: usize, first: &mut Option<usize>| {
            *first = Some(first.map_or(at, |f| f.min(at)));
        };
        for &i in late {
            self.index_message(i, &mut dirty);
            for k in 0..self.journal.entry(i).len() {
                let r = OpRef {
                    msg: i,
                    op: u32::try_from(k).unwrap_or(u32::MAX),
                };
                if self.journal.body(r).is_node() {
                    let r = OpRef {
                        msg: i,
                        op: u32::try_from(k).unwrap_or(u32::MAX),
                    };
                    let at = self.structure.insert(r, &self.journal, &self.graph);
                    // Entries inserted earlier in this loop may have shifted: keep the min.
                    note(at, &mut first_struct);
                }
            }
        }
        for &i in toggled {
            self.cells_of_message(i, &mut dirty);
            let stamp = self.journal.stamp(i);
            for k in 0..self.journal.entry(i).len() {
                let r = OpRef {
                    msg: i,
                    op: u32::try_from(k).unwrap_or(u32::MAX),
                };
                if self.journal.body(r).is_node() {
                    let at = self.structure.first_at_or_after(
                        Pos::new(stamp, k),
                        &self.journal,
                        &self.graph,
                    );
                    note(at, &mut first_struct);
                }
            }
        }
        if let Some(from) = first_struct {
            report.replayed_node_ops += self.structure.len() - from;
            let changed = self
                .structure
                .replay_from(from, &mut self.graph, &self.journal);
            // The root also answers for the root alias (`""`, `"."`): its cells
            // indexed there are its own when its lifetime is replayed.
            let root = self.graph.root().map(|r| r.key().to_owned());
            for key in &changed.dirty {
                let kid = self.graph.keys.intern(key);
                for p in self.index.paths(kid) {
                    dirty.insert((kid, p));
                }
                if root.as_ref() == Some(key) {
                    for p in self.index.paths(KeyId::ROOT) {
                        dirty.insert((kid, p));
                    }
                }
            }
            if let Some(old_root) = changed.old_root {
                let root_paths = self.index.paths(KeyId::ROOT);
                let new_root = self.graph.root().map(|r| r.key().to_owned());
                for key in [old_root, new_root].into_iter().flatten() {
                    let kid = self.graph.keys.intern(&key);
                    for &p in &root_paths {
                        dirty.insert((kid, p));
                    }
                }
            }
        }
        // Group by node and recompute.
        let mut by_key: AHashMap<KeyId, Vec<PathId>> = AHashMap::new();
        for (k, p) in dirty {
            by_key.entry(k).or_default().push(p);
        }
        let mut keys: Vec<_> = by_key.into_iter().collect();
        keys.sort_unstable_by_key(|(k, _)| *k);
        for (k, mut paths) in keys {
            paths.sort_unstable();
            let cost =
                recompute::recompute(&mut self.graph, &self.journal, &mut self.index, k, &paths);
            report.recomputed_cells += cost.cells;
            report.refolded_ops += cost.ops;
        }
    }
}

/// What [`Replica::admit`] decided about a message.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Not held: journal it.
    Fresh,
    /// A copy of a message held or compacted away: ignore it.
    Duplicate,
    /// Conflicts with what is held, or is too old: reject it.
    Reject(RejectError),
}

/// The first of `m`'s Lamport time and clock counters past `MAX_SAFE_INT`, named.
fn beyond_bound(m: &Message) -> Option<String> {
    if m.lt > MAX_SAFE_INT {
        return Some(format!("`lt` {}", m.lt));
    }
    m.clock
        .iter()
        .find(|&(_, &c)| c > MAX_SAFE_INT)
        .map(|(k, c)| format!("`clock.{k}` {c}"))
}

fn conflict(m: &Message, other: String, what: String) -> RejectError {
    RejectError::Conflict {
        msg_id: m.id.clone(),
        other,
        what,
    }
}

/// How two messages of one id differ, in words.
fn differences(held: &Message, m: &Message) -> String {
    let mut parts = Vec::new();
    if held.client != m.client {
        parts.push(format!("client {:?} vs {:?}", held.client, m.client));
    }
    if held.lt != m.lt {
        parts.push(format!("lt {} vs {}", held.lt, m.lt));
    }
    if held.clock != m.clock {
        parts.push("clock differs".to_string());
    }
    if held.ts.to_bits() != m.ts.to_bits() {
        parts.push(format!("ts {} vs {}", held.ts, m.ts));
    }
    if held.ops.len() != m.ops.len() {
        parts.push(format!("{} ops vs {}", held.ops.len(), m.ops.len()));
    } else if let Some(k) = held.ops.iter().zip(&m.ops).position(|(a, b)| a != b) {
        parts.push(format!("op #{k} differs"));
    }
    format!("the same id with other content ({})", parts.join(", "))
}

/// Decodes `bytes` leniently and hands the valid messages to `apply`; the messages that
/// did not decode (or the whole input, when it does not parse) are added to the report
/// as rejected.
pub(crate) fn decode_then(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    apply: impl FnOnce(Vec<Message>) -> BatchReport,
) -> BatchReport {
    report_decoded(wire::decode_messages_lenient(bytes, format, limits), apply)
}

/// Hands the valid messages of a lenient decode to `apply` and adds the rest to its
/// report as rejected (see [`decode_then`]).
fn report_decoded(
    decoded: Result<(Vec<Message>, Vec<crate::error::DecodeError>), crate::error::DecodeError>,
    apply: impl FnOnce(Vec<Message>) -> BatchReport,
) -> BatchReport {
    match decoded {
        Ok((msgs, errs)) => {
            let mut report = apply(msgs);
            report
                .rejected
                .extend(errs.into_iter().map(RejectError::from));
            report
        }
        Err(e) => BatchReport {
            rejected: vec![e.into()],
            ..BatchReport::default()
        },
    }
}

/// 64-bit FNV-1a of a string: a stable, dependency-free state fingerprint.
pub fn state_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

//! The client store of the seeds (`create_graph`, `edit`, `commit`, `receive`, `ack`,
//! `undo`, `redo`, `compact`, `get_state`, `get_unacked_messages`, `init_from_server`),
//! built on [`Replica`].
//!
//! A [`GraphStore`] is one client's view of the scene:
//!
//! - a [`Replica`] holds every committed message — this client's and everyone else's —
//!   and shows their state (DESIGN.md §4), whatever order they arrived in;
//! - the [`EditBuffer`] holds the uncommitted edits, merged per `key:path`;
//! - the *overlay* (`overlay.rs`) applies the buffer on top of the replica's graph at
//!   the stamp the next commit will get, `(lt + 1, client)`, and can lift it off again.
//!
//! Invariants:
//! - [`GraphStore::graph`] equals the state of the journaled messages plus the buffer
//!   committed as the next message: what every replica will show once the commit
//!   reaches it. Pending edits therefore keep winning against every remote write the
//!   store has seen, also while remote messages arrive (each receive lifts the overlay,
//!   lets the replica integrate the message, and puts the overlay back at the new
//!   `lt + 1`: O(buffer + message), never a rebuild of the graph);
//! - `lt` is the greatest Lamport time held; a commit takes `lt + 1`, so this client's
//!   messages have strictly increasing `lt` and ids `client:lt` never repeat;
//! - `clock[client]` counts this client's messages (1, 2, …): the replica's compaction
//!   relies on these counters;
//! - this store never compacts a message of this client before it is acknowledged
//!   ([`GraphStore::ack`]);
//! - a message of this client leaves the unacknowledged set only on its ack, also
//!   across [`GraphStore::rejoin_from_snapshot`]: held by the snapshot (in its journal,
//!   or compacted: then resent from a copy) or still acceptable, it is kept; past the
//!   snapshot's compacted base (its server refuses it for good), its ops are committed
//!   again as a new unacknowledged message, which replaces it.
//!
//! Differences from the reference client, on purpose:
//! - the reference rebuilds its graph from the snapshot on every received message and
//!   loses the optimistic edits doing so; here they stay applied;
//! - the reference applies each edit as it comes but sends the merged op, so its local
//!   view can differ (floats, or a `set` replaced by an `add`) from what peers compute;
//!   here the view is recomputed from the merged op;
//! - node ops are never merged in the buffer (see [`EditBuffer`]);
//! - `redo` re-applies the message this store undid most recently (the reference takes
//!   the newest undone message in journal order).

mod buffer;
mod overlay;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

pub use buffer::EditBuffer;

use crate::error::{OpError, RejectError};
use crate::graph::SceneGraph;
use crate::ids::Stamp;
use crate::op::{MAX_SAFE_INT, Message, Op};
use crate::replica::journal::Journal;
use crate::replica::{Admit, BatchReport, CompactReport, Replica};
use crate::wire::Format;
use overlay::Overlay;

/// A vector clock: per client, how many of its messages are accounted for.
///
/// # Examples
/// ```
/// use vuer_rtc::{op::Op, store::GraphStore};
/// let mut store = GraphStore::new("alice");
/// store.edit(Op::node_insert("", "n", "Mesh"))?;
/// store.commit("");
/// assert_eq!(store.state().clock.get("alice"), Some(&1));
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
pub type Clock = BTreeMap<String, u64>;

/// A server snapshot to start a store from (see [`GraphStore::init_from_server`]).
///
/// # Examples
/// ```
/// use vuer_rtc::store::{GraphStore, Snapshot};
/// let store = GraphStore::init_from_server("bob", Snapshot::default(), Vec::new()).unwrap();
/// assert!(store.graph().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The scene at `lt`.
    pub graph: SceneGraph,
    /// Per client, how many of its messages `graph` holds.
    pub clock: Clock,
    /// The greatest Lamport time baked into `graph`.
    pub lt: u64,
}

impl Snapshot {
    /// The current state of a replica (a server's), with its clock and Lamport time.
    ///
    /// Messages older than `lt` that the replica has not received yet will be rejected
    /// by a store started from this snapshot, so take it from a replica that holds
    /// everything up to its `lt` (a server that has compacted, or a quiet one).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::replica::Replica;
    /// use vuer_rtc::store::Snapshot;
    /// let snap = Snapshot::of(&Replica::new());
    /// assert_eq!(snap.lt, 0);
    /// ```
    pub fn of(replica: &Replica) -> Snapshot {
        Snapshot {
            graph: replica.graph().clone(),
            clock: replica.clock(),
            lt: replica.lt(),
        }
    }
}

/// What happened, as told to the listeners of [`GraphStore::subscribe`].
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// use vuer_rtc::{op::Op, store::{GraphStore, StoreEvent}};
/// let mut store = GraphStore::new("alice");
/// let last = Arc::new(Mutex::new(None));
/// let sink = Arc::clone(&last);
/// let _sub = store.subscribe(move |e| *sink.lock().unwrap() = Some(e.clone()));
/// store.edit(Op::node_insert("", "n", "Mesh"))?;
/// store.commit("");
/// assert_eq!(*last.lock().unwrap(), Some(StoreEvent::Committed { id: "alice:1".into() }));
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// An op went into the edit buffer.
    Edited,
    /// The edit buffer was committed as message `id`.
    Committed {
        /// The new message's id.
        id: String,
    },
    /// The edit buffer was discarded.
    Cancelled,
    /// Remote messages were integrated.
    Received {
        /// How many were new.
        accepted: usize,
    },
    /// One of this client's messages was acknowledged.
    Acked {
        /// Its id.
        id: String,
    },
    /// This client undid (`undo: true`) or redid one of its messages.
    UndoRedo {
        /// The targeted message.
        target: String,
        /// The `meta.undo`/`meta.redo` message sent.
        id: String,
        /// True for undo.
        undo: bool,
    },
    /// Stable, acknowledged messages were folded into the base.
    Compacted {
        /// How many.
        messages: usize,
    },
    /// The store restarted from a server's snapshot
    /// ([`GraphStore::rejoin_from_snapshot`]): everything may have changed.
    Rejoined {
        /// How many unacknowledged messages were committed again under new ids.
        reissued: usize,
    },
}

type Listener = Box<dyn FnMut(&StoreEvent) + Send>;
type Sender = Box<dyn FnMut(&Message) + Send>;

#[derive(Default)]
struct Listeners {
    next: u64,
    list: Vec<(u64, Listener)>,
}

/// A listener registration; dropping it (or calling [`Subscription::unsubscribe`])
/// removes the listener.
///
/// # Examples
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use vuer_rtc::{op::Op, store::GraphStore};
/// let mut store = GraphStore::new("alice");
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&seen);
/// let sub = store.subscribe(move |_event| {
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
/// store.edit(Op::node_insert("", "obj", "Mesh"))?;
/// sub.unsubscribe();
/// store.edit(Op::node_insert("", "other", "Mesh"))?;
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
#[must_use = "dropping a Subscription unsubscribes the listener"]
pub struct Subscription {
    id: u64,
    listeners: Weak<Mutex<Listeners>>,
}

impl Subscription {
    /// Removes the listener (the same as dropping the subscription).
    ///
    /// # Examples
    /// See [`Subscription`].
    pub fn unsubscribe(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(l) = self.listeners.upgrade() {
            let mut l = l.lock().unwrap_or_else(PoisonError::into_inner);
            l.list.retain(|(id, _)| *id != self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

/// How a received message was taken.
///
/// # Examples
/// ```
/// use vuer_rtc::{op::Op, store::{GraphStore, Receipt}};
/// let mut alice = GraphStore::new("alice");
/// alice.edit(Op::node_insert("", "n", "Mesh"))?;
/// let msg = alice.commit("").unwrap();
/// let mut bob = GraphStore::new("bob");
/// assert_eq!(bob.receive(msg.clone()), Ok(Receipt::Applied));
/// assert_eq!(bob.receive(msg), Ok(Receipt::Duplicate));
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// New: it is integrated.
    Applied,
    /// Already held (or compacted): ignored.
    Duplicate,
}

/// What [`GraphStore::rejoin_from_snapshot`] did with this client's unacknowledged
/// messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejoinReport {
    /// Held by the snapshot (in its journal, or folded into its compacted base): they
    /// stay unacknowledged until the server acknowledges the resent copy.
    pub held: usize,
    /// Not held and still acceptable: kept as they were (same ids, stamps and clock
    /// counters), unacknowledged, to be resent.
    pub kept: usize,
    /// Older than the snapshot's compacted base (the server refuses them for good,
    /// `compacted`), or after such a one: their ops committed again as new messages,
    /// unacknowledged, as `(old id, new id)` in order.
    pub reissued: Vec<(String, String)>,
}

/// One of this client's committed messages.
#[derive(Clone, Debug)]
struct Own {
    id: String,
    lt: u64,
    acked: bool,
    // False for meta.undo / meta.redo messages.
    data: bool,
    // The message itself, when the journal no longer holds it before its ack (a
    // snapshot this store rejoined from had compacted it): resent until acknowledged.
    copy: Option<Message>,
}

/// A read-only view of a store's state (the seeds' `get_state()`).
///
/// # Examples
/// ```
/// use vuer_rtc::{op::Op, store::GraphStore};
/// let mut store = GraphStore::new("alice");
/// store.edit(Op::node_insert("", "n", "Mesh"))?;
/// let state = store.state();
/// assert_eq!((state.client, state.lt, state.edits.len()), ("alice", 0, 1));
/// assert!(state.graph.node("n").is_some());
/// assert_eq!(state.journal.len(), 0);
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ClientState<'a> {
    /// The optimistic scene: committed messages plus the edit buffer.
    pub graph: &'a SceneGraph,
    /// The journal of uncompacted committed messages (this client's and others').
    pub journal: &'a Journal,
    /// The uncommitted edits.
    pub edits: &'a EditBuffer,
    /// This client's vector clock.
    pub clock: &'a Clock,
    /// The greatest Lamport time seen.
    pub lt: u64,
    /// This client's id.
    pub client: &'a str,
    own: &'a [Own],
    names: crate::replica::journal::Names<'a>,
}

impl<'a> ClientState<'a> {
    /// This client's messages the server has not acknowledged, oldest first (the seeds'
    /// `get_unacked_messages`): send them again after a reconnect.
    ///
    /// # Examples
    /// See [`get_unacked_messages`].
    pub fn unacked_messages(&self) -> Vec<Message> {
        let (journal, names) = (self.journal, self.names);
        self.own
            .iter()
            .filter(|o| !o.acked)
            .filter_map(|o| o.copy.clone().or_else(|| journal.message(&o.id, names)))
            .collect()
    }

    /// Number of unacknowledged messages of this client.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// let msg = store.commit("").unwrap();
    /// assert_eq!(store.state().pending_count(), 1);
    /// store.ack(&msg.id);
    /// assert_eq!(store.state().pending_count(), 0);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn pending_count(&self) -> usize {
        self.own.iter().filter(|o| !o.acked).count()
    }
}

/// The seeds' `get_unacked_messages(state)`.
///
/// # Examples
/// ```
/// use vuer_rtc::{op::Op, store::{GraphStore, get_unacked_messages}};
/// let mut store = GraphStore::new("alice");
/// store.edit(Op::node_insert("", "obj", "Mesh"))?;
/// let msg = store.commit("create").unwrap();
/// assert_eq!(get_unacked_messages(&store.state()), vec![msg.clone()]);
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
pub fn get_unacked_messages(state: &ClientState<'_>) -> Vec<Message> {
    state.unacked_messages()
}

/// A client's store: optimistic edits, commits, remote messages, undo/redo,
/// acknowledgements and compaction (see the module doc).
///
/// # Examples
/// The seeds' two-client example:
/// ```
/// use vuer_rtc::{op::Op, store::create_graph};
/// let mut alice = create_graph("alice", |_msg| { /* send to the server */ });
/// let mut bob = create_graph("bob", |_msg| {});
///
/// alice.edit(Op::from_json(&serde_json::json!({
///     "otype": "node.insert", "key": "", "path": "children",
///     "value": {"key": "obj", "tag": "Mesh", "health": 100}})).unwrap())?;
/// let msg = alice.commit("create obj").unwrap();
/// bob.receive(msg).unwrap();
///
/// alice.edit(Op::number_add("obj", "health", -25.0))?;
/// let msg_a = alice.commit("damage").unwrap();
/// bob.edit(Op::number_add("obj", "health", -10.0))?;
/// let msg_b = bob.commit("poison").unwrap();
///
/// alice.receive(msg_b).unwrap();
/// bob.receive(msg_a).unwrap();
/// let health = |s: &vuer_rtc::store::GraphStore| {
///     s.graph().node("obj").and_then(|n| n.get("health")).and_then(|v| v.as_number())
/// };
/// assert_eq!(health(&alice), Some(65.0));
/// assert_eq!(health(&bob), Some(65.0));
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
pub struct GraphStore {
    client: String,
    replica: Replica,
    buffer: EditBuffer,
    overlay: Overlay,
    lt: u64,
    clock: Clock,
    own: Vec<Own>,
    // Ids this store undid, most recent last (the redo stack).
    undone: Vec<String>,
    on_send: Option<Sender>,
    listeners: Arc<Mutex<Listeners>>,
    now: fn() -> f64,
}

impl std::fmt::Debug for GraphStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphStore")
            .field("client", &self.client)
            .field("lt", &self.lt)
            .field("clock", &self.clock)
            .field("edits", &self.buffer.len())
            .field("journal", &self.replica.journal().len())
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch (0 if the system clock is before it).
fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The seeds' `create_graph(client_id, on_send)`: a store for `client` that hands every
/// message it makes (commit, undo, redo) to `on_send`.
///
/// # Examples
/// ```
/// use std::sync::mpsc;
/// use vuer_rtc::{op::Op, store::create_graph};
/// let (tx, rx) = mpsc::channel();
/// let mut store = create_graph("client-1", move |msg| {
///     let _ = tx.send(msg.clone());
/// });
/// store.edit(Op::node_insert("", "scene", "Scene"))?;
/// store.commit("create scene");
/// assert_eq!(rx.try_recv().map(|m| m.id), Ok("client-1:1".to_string()));
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
pub fn create_graph(
    client: impl Into<String>,
    on_send: impl FnMut(&Message) + Send + 'static,
) -> GraphStore {
    GraphStore::new(client).with_sender(on_send)
}

impl GraphStore {
    /// A store for `client` on an empty scene, with no sender (messages are only
    /// returned by [`GraphStore::commit`], [`GraphStore::undo`], [`GraphStore::redo`]).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::store::GraphStore;
    /// let store = GraphStore::new("alice");
    /// assert_eq!(store.client(), "alice");
    /// assert!(store.graph().is_empty());
    /// ```
    pub fn new(client: impl Into<String>) -> GraphStore {
        GraphStore::on_replica(client.into(), Replica::new(), 0, Clock::new())
    }

    fn on_replica(client: String, mut replica: Replica, lt: u64, mut clock: Clock) -> GraphStore {
        // The store compacts itself, keeping its unacknowledged messages out.
        replica.set_auto_compact(None);
        replica.graph_mut().clients.intern(&client);
        clock.entry(client.clone()).or_insert(0);
        GraphStore {
            client,
            replica,
            buffer: EditBuffer::default(),
            overlay: Overlay::default(),
            lt,
            clock,
            own: Vec::new(),
            undone: Vec::new(),
            on_send: None,
            listeners: Arc::default(),
            now: wall_clock,
        }
    }

    /// The seeds' `init_from_server(snapshot, journal)`: a store for `client` that
    /// starts from a server's `snapshot` and the messages after it. Messages the
    /// snapshot already holds are dropped as duplicates; undo/redo in `journal` is
    /// honoured; clocks are merged.
    ///
    /// # Errors
    /// The first message of `journal` the replica rejected (e.g. older than the
    /// snapshot without being in it); the others are integrated.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, replica::Replica, store::{GraphStore, Snapshot}};
    /// let mut alice = GraphStore::new("alice");
    /// alice.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// let first = alice.commit("create").unwrap();
    /// alice.edit(Op::number_set("obj", "hp", 7.0))?;
    /// let second = alice.commit("hp").unwrap();
    ///
    /// let mut server = Replica::new();
    /// server.apply_message(&first);
    /// let snapshot = Snapshot::of(&server);
    /// let bob = GraphStore::init_from_server("bob", snapshot, vec![first, second]).unwrap();
    /// assert_eq!(bob.graph().to_json(), alice.graph().to_json());
    /// assert_eq!(bob.lt(), 2);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn init_from_server(
        client: impl Into<String>,
        snapshot: Snapshot,
        journal: Vec<Message>,
    ) -> Result<GraphStore, RejectError> {
        let replica = Replica::from_base(snapshot.graph, &snapshot.clock, snapshot.lt);
        let mut store = GraphStore::on_replica(client.into(), replica, snapshot.lt, snapshot.clock);
        let report = store.integrate(journal);
        match report.rejected.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(store),
        }
    }

    /// A store for `client` that starts from a server's snapshot bytes
    /// ([`Replica::snapshot`]): the whole replica, journal, undo state and compaction
    /// base included, so late messages, undo and compaction go on exactly as on the
    /// server (unlike [`GraphStore::init_from_server`], which starts from the state
    /// alone).
    ///
    /// # Errors
    /// [`SnapshotError`](crate::snapshot::SnapshotError) for bytes that are not a valid
    /// snapshot.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, replica::Replica, store::GraphStore};
    /// let mut alice = GraphStore::new("alice");
    /// alice.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// let first = alice.commit("create").unwrap();
    /// let mut server = Replica::new();
    /// server.apply_message(&first);
    ///
    /// let mut bob = GraphStore::init_from_snapshot("bob", &server.snapshot()).unwrap();
    /// assert_eq!(bob.graph().to_json(), alice.graph().to_json());
    /// // Bob edits on: his message comes after everything the snapshot holds.
    /// bob.edit(Op::number_set("obj", "hp", 1.0))?;
    /// let hp = bob.commit("hp").unwrap();
    /// assert_eq!(hp.lt, 2);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn init_from_snapshot(
        client: impl Into<String>,
        bytes: &[u8],
    ) -> Result<GraphStore, crate::snapshot::SnapshotError> {
        let replica = Replica::from_snapshot(bytes)?;
        let (lt, clock) = (replica.lt(), replica.clock());
        Ok(GraphStore::on_replica(client.into(), replica, lt, clock))
    }

    /// Restarts this store from a server's snapshot bytes ([`Replica::snapshot`]),
    /// keeping this client's work: a client that was offline while the server compacted
    /// past what it holds (the server answers its `sync` with a full `state`) rejoins
    /// this way. The replica becomes the snapshot's; the edit buffer, the sender, the
    /// listeners and the clock source stay. Each unacknowledged message, oldest first:
    ///
    /// - held by the snapshot (same id, or a copy of a compacted one): it stays
    ///   unacknowledged (resent; the server acknowledges a copy of a held message);
    /// - not held and still acceptable (newer than the compacted base): kept as it was,
    ///   so that a copy still on its way to the server is recognised by its id;
    /// - older than the compacted base (the server refuses it for good), and every one
    ///   after such a one (so that this client's clock counters stay in Lamport order
    ///   and without a gap): its ops committed again as a new message, after
    ///   everything held, with `meta.undo`/`meta.redo` targets renamed along.
    ///
    /// Nothing is handed to the sender: send [`GraphStore::unacked_messages`] next.
    ///
    /// # Errors
    /// [`SnapshotError`](crate::snapshot::SnapshotError) for bytes that are not a valid
    /// snapshot; the store is unchanged then.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, replica::Replica, store::GraphStore};
    /// let mut alice = GraphStore::new("alice");
    /// alice.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// let create = alice.commit("create").unwrap();
    /// alice.ack(&create.id);
    /// // Offline: an edit the server never gets, while it compacts far past it.
    /// alice.edit(Op::number_set("obj", "hp", 7.0))?;
    /// let offline = alice.commit("hp").unwrap();
    /// let mut server = Replica::new();
    /// server.set_horizon(2);
    /// server.apply_message(&create);
    /// let mut bob = GraphStore::init_from_snapshot("bob", &server.snapshot()).unwrap();
    /// for i in 0..5 {
    ///     bob.edit(Op::number_set("obj", "i", f64::from(i)))?;
    ///     server.apply_message(&bob.commit("").unwrap());
    /// }
    /// server.compact();
    /// assert!(server.compacted_through() >= Some(offline.lt));
    ///
    /// let report = alice.rejoin_from_snapshot(&server.snapshot()).unwrap();
    /// assert_eq!(report.reissued.len(), 1);
    /// let again = alice.unacked_messages()[0].clone();
    /// assert_eq!((again.ops.clone(), again.lt), (offline.ops, server.lt() + 1));
    /// server.apply_message(&again);
    /// assert_eq!(alice.graph().to_json(), server.to_json());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn rejoin_from_snapshot(
        &mut self,
        bytes: &[u8],
    ) -> Result<RejoinReport, crate::snapshot::SnapshotError> {
        let mut replica = Replica::from_snapshot(bytes)?;
        replica.set_auto_compact(None);
        let me = replica.graph_mut().clients.intern(&self.client);
        // The pending edits come off the old graph and go back on at the end.
        self.lift();
        let mut report = RejoinReport::default();
        let mut own = Vec::with_capacity(self.own.len());
        let mut kept = Vec::new();
        let mut again: Vec<(Message, bool)> = Vec::new();
        for o in std::mem::take(&mut self.own) {
            if o.acked {
                // Still undoable while the new journal holds it.
                if replica.journal().contains(&o.id) {
                    own.push(o);
                }
                continue;
            }
            let Some(m) = o
                .copy
                .clone()
                .or_else(|| self.replica.journal().message(&o.id, self.replica.names()))
            else {
                continue;
            };
            if !again.is_empty() {
                again.push((m, o.data));
                continue;
            }
            match replica.admit(&m, me) {
                Admit::Duplicate => {
                    report.held += 1;
                    // Compacted there: resent from a copy until the server acks it.
                    let copy = (!replica.journal().contains(&m.id)).then_some(m);
                    own.push(Own { copy, ..o });
                }
                Admit::Fresh if replica.apply_batch(std::slice::from_ref(&m)).accepted == 1 => {
                    report.kept += 1;
                    kept.push(o.id.clone());
                    own.push(Own { copy: None, ..o });
                }
                Admit::Fresh | Admit::Reject(_) => again.push((m, o.data)),
            }
        }
        // Lamport times only grow, so that this client's ids never repeat.
        let lt = self.lt;
        self.replica = replica;
        self.own = own;
        self.lt = lt.max(self.replica.lt());
        self.clock = self.replica.clock();
        self.clock.entry(self.client.clone()).or_insert(0);
        self.merge_clocks(&kept);
        // A new counter must not be one the server already holds a message for.
        if let Some(seq) = self.clock.get_mut(&self.client) {
            while self.replica.journal().seen_seq(me, seq.saturating_add(1)) {
                *seq = seq.saturating_add(1);
            }
        }
        let send = self.on_send.take();
        let mut renamed: BTreeMap<String, String> = BTreeMap::new();
        for (m, data) in again {
            if self.exhausted() {
                break;
            }
            let mut ops = m.ops;
            for op in &mut ops {
                if let crate::op::OpKind::MetaUndo { target }
                | crate::op::OpKind::MetaRedo { target } = &mut op.kind
                    && let Some(new) = renamed.get(target.as_str())
                {
                    target.clone_from(new);
                }
            }
            let msg = self.emit(ops, data, None);
            renamed.insert(m.id.clone(), msg.id.clone());
            report.reissued.push((m.id, msg.id));
        }
        self.on_send = send;
        let journal = self.replica.journal();
        let mut undone = std::mem::take(&mut self.undone);
        for t in &mut undone {
            if let Some(new) = renamed.get(t.as_str()) {
                t.clone_from(new);
            }
        }
        undone.retain(|t| journal.contains(t));
        self.undone = undone;
        self.relay();
        let reissued = report.reissued.len();
        self.notify(|| StoreEvent::Rejoined { reissued });
        Ok(report)
    }

    /// Hands every message this store makes to `on_send` (see [`create_graph`]).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::store::GraphStore;
    /// let store = GraphStore::new("alice").with_sender(|msg| println!("send {}", msg.id));
    /// # drop(store);
    /// ```
    #[must_use]
    pub fn with_sender(mut self, on_send: impl FnMut(&Message) + Send + 'static) -> GraphStore {
        self.on_send = Some(Box::new(on_send));
        self
    }

    /// Uses `now` (seconds) for the `ts` of the messages this store makes, instead of
    /// the system clock (tests, simulations).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice").with_time(|| 42.0);
    /// store.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// assert_eq!(store.commit("").unwrap().ts, 42.0);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    #[must_use]
    pub fn with_time(mut self, now: fn() -> f64) -> GraphStore {
        self.now = now;
        self
    }

    /// Declares a client taking part in the scene, so that [`GraphStore::compact`]
    /// waits for its messages (see [`Replica::register_client`]). A store only learns
    /// of other clients from the messages it receives: register the session list when
    /// clients that have not sent anything yet may still send.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.register_client("bob"); // bob may still send something older
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// let msg = store.commit("").unwrap();
    /// store.ack(&msg.id);
    /// assert_eq!(store.compact().messages, 0);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn register_client(&mut self, name: &str) {
        self.replica.register_client(name);
    }

    /// This client's id.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(vuer_rtc::store::GraphStore::new("bob").client(), "bob");
    /// ```
    pub fn client(&self) -> &str {
        &self.client
    }

    /// The optimistic scene: every committed message plus the edit buffer.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "cube", "Mesh"))?;
    /// assert!(store.graph().node("cube").is_some()); // before any commit
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn graph(&self) -> &SceneGraph {
        self.replica.graph()
    }

    /// The greatest Lamport time seen; the next message takes `lt() + 1`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(vuer_rtc::store::GraphStore::new("a").lt(), 0);
    /// ```
    pub fn lt(&self) -> u64 {
        self.lt
    }

    /// The replica under the store: its journal holds every committed message. While
    /// edits are pending, its graph shows them too (the overlay is applied to it), so
    /// read the committed-only state from a peer, not from here.
    ///
    /// # Examples
    /// ```
    /// let store = vuer_rtc::store::GraphStore::new("a");
    /// assert_eq!(store.replica().journal().len(), 0);
    /// ```
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The seeds' `get_state()`: graph, journal, edit buffer, clocks.
    ///
    /// # Examples
    /// The seeds' edit-buffer example:
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::vector3_add("n", "pos", [1.0, 0.0, 0.0]))?;
    /// store.edit(Op::vector3_add("n", "pos", [0.0, 1.0, 0.0]))?;
    /// store.edit(Op::vector3_add("n", "pos", [0.0, 0.0, 1.0]))?;
    /// assert_eq!(store.state().edits.ops(), &[Op::vector3_add("n", "pos", [1.0, 1.0, 1.0])]);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn state(&self) -> ClientState<'_> {
        ClientState {
            graph: self.replica.graph(),
            journal: self.replica.journal(),
            edits: &self.buffer,
            clock: &self.clock,
            lt: self.lt,
            client: &self.client,
            own: &self.own,
            names: self.replica.names(),
        }
    }

    /// This client's unacknowledged messages, oldest first: send them again after a
    /// reconnect (the server drops copies it already has).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// let msg = store.commit("").unwrap();
    /// assert_eq!(store.unacked_messages(), vec![msg.clone()]);
    /// store.ack(&msg.id);
    /// assert!(store.unacked_messages().is_empty());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn unacked_messages(&self) -> Vec<Message> {
        self.state().unacked_messages()
    }

    /// Registers a listener called after every change; it lives as long as the
    /// returned [`Subscription`]. Listeners run inside the store's call: they cannot
    /// call the store back (send what they need over a channel instead).
    ///
    /// # Examples
    /// ```
    /// use std::sync::mpsc;
    /// use vuer_rtc::{op::Op, store::{GraphStore, StoreEvent}};
    /// let (tx, rx) = mpsc::channel();
    /// let mut store = GraphStore::new("alice");
    /// let _sub = store.subscribe(move |e| { let _ = tx.send(e.clone()); });
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// store.cancel();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![StoreEvent::Edited, StoreEvent::Cancelled]);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn subscribe(
        &mut self,
        listener: impl FnMut(&StoreEvent) + Send + 'static,
    ) -> Subscription {
        let mut l = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        l.next += 1;
        let id = l.next;
        l.list.push((id, Box::new(listener)));
        Subscription {
            id,
            listeners: Arc::downgrade(&self.listeners),
        }
    }

    fn notify(&self, event: impl FnOnce() -> StoreEvent) {
        let mut l = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if l.list.is_empty() {
            return;
        }
        let event = event();
        for (_, f) in &mut l.list {
            f(&event);
        }
    }

    /// True when no message can follow: the next one's `lt` or this client's clock
    /// counter would pass [`MAX_SAFE_INT`], which no peer decodes (a hostile peer can
    /// push both there).
    fn exhausted(&self) -> bool {
        self.lt >= MAX_SAFE_INT
            || self
                .clock
                .get(&self.client)
                .is_some_and(|&c| c >= MAX_SAFE_INT)
    }

    /// The stamp the next commit gets: pending edits are applied at it.
    fn pending_stamp(&mut self) -> Stamp {
        let client = self.replica.graph_mut().clients.intern(&self.client);
        Stamp {
            // `edit` refuses to buffer once `lt` reached `MAX_SAFE_INT`.
            lt: self.lt.saturating_add(1),
            client,
        }
    }

    fn lift(&mut self) {
        if self.overlay.applied() > 0 {
            self.overlay.lift(self.replica.graph_mut());
        }
    }

    fn relay(&mut self) {
        if self.buffer.len() > self.overlay.applied() {
            let stamp = self.pending_stamp();
            let ts = (self.now)();
            self.overlay
                .apply(self.replica.graph_mut(), self.buffer.ops(), stamp, ts);
        }
    }

    /// Adds an op to the edit buffer and applies it to the view at once (the seeds'
    /// `edit`). Additive ops on a buffered `key:path` merge; other ops on it replace
    /// the buffered one (see [`EditBuffer`]).
    ///
    /// # Errors
    /// The op is invalid (a non-finite number), would merge into a non-finite value, or
    /// is a `meta.*` op. Nothing changes then.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "cube", "Mesh"))?;
    /// store.edit(Op::vector3_set("cube", "position", [3.0, 2.0, 1.0]))?;
    /// let pos = store.graph().node("cube").and_then(|n| n.get("position")).and_then(|v| v.as_vec3());
    /// assert_eq!(pos, Some([3.0, 2.0, 1.0]));
    /// assert!(store.edit(Op::number_set("cube", "x", f64::NAN)).is_err());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn edit(&mut self, op: Op) -> Result<(), OpError> {
        if self.exhausted() {
            return Err(OpError::Invalid {
                field: "lt",
                reason: format!(
                    "the scene's Lamport time or this client's clock counter reached \
                     {MAX_SAFE_INT} (2^53 − 1): no message can follow it"
                ),
            });
        }
        let before = self.buffer.len();
        let slot = self.buffer.push(op)?;
        if slot < before {
            // Merged into or replaced an earlier slot: the view is recomputed from the
            // merged op, as peers will compute it.
            self.lift();
        }
        self.relay();
        self.notify(|| StoreEvent::Edited);
        Ok(())
    }

    /// Discards the uncommitted edits, restoring the pre-edit view (the seeds'
    /// `cancel`).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "cube", "Mesh"))?;
    /// store.cancel();
    /// assert!(store.graph().is_empty());
    /// assert!(store.state().edits.is_empty());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn cancel(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        self.lift();
        self.buffer.take();
        self.notify(|| StoreEvent::Cancelled);
    }

    /// Makes a message at `lt + 1` from `ops` (with wall clock `ts`, or now), bumps the
    /// clock, journals it (unacked) and sends it. With `applied` (the overlay's per-op
    /// effects) the ops are already applied to the graph at that stamp and the replica
    /// adopts them as they are; otherwise the overlay must be lifted.
    fn emit(
        &mut self,
        ops: Vec<Op>,
        data: bool,
        applied: Option<(Vec<Vec<crate::apply::Effect>>, f64)>,
    ) -> Message {
        // Every caller checked `exhausted()`: both stay within `MAX_SAFE_INT`.
        self.lt = self.lt.saturating_add(1);
        let seq = self.clock.entry(self.client.clone()).or_insert(0);
        *seq = seq.saturating_add(1);
        let ts = applied.as_ref().map_or_else(|| (self.now)(), |(_, ts)| *ts);
        let msg = Message {
            id: format!("{}:{}", self.client, self.lt),
            client: self.client.clone(),
            clock: self.clock.clone(),
            lt: self.lt,
            ts,
            ops,
        };
        let adopted = match applied {
            Some((effects, _)) => match self.replica.adopt_applied(msg.clone(), effects) {
                Ok(()) => {
                    self.overlay.forget();
                    true
                }
                Err(_) => {
                    self.lift();
                    false
                }
            },
            None => false,
        };
        if !adopted {
            // Newer than everything held and of a fresh id: always accepted.
            let report = self.replica.apply_batch(std::slice::from_ref(&msg));
            debug_assert_eq!(report.accepted, 1, "{report:?}");
        }
        self.own.push(Own {
            id: msg.id.clone(),
            lt: msg.lt,
            acked: false,
            data,
            copy: None,
        });
        if let Some(send) = &mut self.on_send {
            send(&msg);
        }
        msg
    }

    /// Commits the edit buffer as one message (the seeds' `commit`): `lt = lt() + 1`,
    /// the clock bumped, journaled unacknowledged and handed to the sender. `None` when
    /// nothing is buffered. The description is for the caller's history UI; it is not
    /// part of the wire message.
    ///
    /// # Examples
    /// The seeds' quick start:
    /// ```
    /// use vuer_rtc::{op::Op, store::create_graph};
    /// let mut store = create_graph("client-1", |_msg| {});
    /// store.edit(Op::node_insert("", "scene", "Scene"))?;
    /// store.edit(Op::from_json(&serde_json::json!({"otype": "node.insert", "key": "scene",
    ///     "path": "children", "value": {"key": "cube", "tag": "Mesh", "position": [0, 1, 0], "opacity": 1.0}})).unwrap())?;
    /// store.commit("create scene");
    /// store.edit(Op::vector3_set("cube", "position", [3.0, 2.0, 1.0]))?;
    /// store.edit(Op::number_set("cube", "opacity", 0.5))?;
    /// let msg = store.commit("move and fade cube").unwrap();
    /// assert_eq!((msg.id.as_str(), msg.lt, msg.clock["client-1"]), ("client-1:2", 2, 2));
    /// let cube = store.graph().node("cube").unwrap();
    /// assert_eq!(cube.get("position").and_then(|v| v.as_vec3()), Some([3.0, 2.0, 1.0]));
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn commit(&mut self, description: &str) -> Option<Message> {
        let _ = description;
        if self.buffer.is_empty() || self.exhausted() {
            return None;
        }
        // The overlay applied the whole buffer at exactly the stamp this commit takes
        // (`lt + 1`): the replica adopts it instead of lifting and re-applying it.
        // It also sends the ops as the overlay applied them: text ops in CRDT form.
        let applied = (self.overlay.applied() == self.buffer.len())
            .then(|| (self.overlay.effects(), self.overlay.ts()));
        let ops = if applied.is_some() {
            let mut ops = self.buffer.take();
            self.overlay.take_resolved(&mut ops);
            ops
        } else {
            self.lift();
            self.buffer.take()
        };
        let msg = self.emit(ops, true, applied);
        self.notify(|| StoreEvent::Committed { id: msg.id.clone() });
        Some(msg)
    }

    /// Integrates one remote message (the seeds' `receive`): duplicates are ignored,
    /// its undo/redo ops are honoured, clocks are merged; pending edits stay applied
    /// on top.
    ///
    /// # Errors
    /// The replica rejected the message (a `(lt, client)` already used by another
    /// message, or older than the compacted base); nothing of it was applied.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::{GraphStore, Receipt}};
    /// let mut alice = GraphStore::new("alice");
    /// alice.edit(Op::node_insert("", "n", "Mesh"))?;
    /// let create = alice.commit("").unwrap();
    /// let mut bob = GraphStore::new("bob");
    /// bob.edit(Op::number_set("n", "x", 1.0))?;      // pending: `n` does not exist yet
    /// assert_eq!(bob.receive(create), Ok(Receipt::Applied));
    /// // The pending edit now applies on top of alice's node.
    /// assert_eq!(bob.graph().node("n").and_then(|n| n.get("x")).and_then(|v| v.as_number()), Some(1.0));
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn receive(&mut self, msg: Message) -> Result<Receipt, RejectError> {
        let client = self.replica.graph_mut().clients.intern(&msg.client);
        match self.replica.admit(&msg, client) {
            Admit::Duplicate => return Ok(Receipt::Duplicate),
            Admit::Reject(e) => return Err(e),
            Admit::Fresh => {}
        }
        let mut report = self.integrate(vec![msg]);
        if let Some(e) = report.rejected.pop() {
            return Err(e);
        }
        Ok(if report.accepted == 1 {
            Receipt::Applied
        } else {
            Receipt::Duplicate
        })
    }

    /// Integrates a batch of remote messages in one pass (cheaper than one
    /// [`GraphStore::receive`] each); the report says what was accepted or rejected.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut alice = GraphStore::new("alice");
    /// alice.edit(Op::node_insert("", "obj", "Mesh"))?;
    /// let m1 = alice.commit("").unwrap();
    /// alice.edit(Op::number_set("obj", "hp", 3.0))?;
    /// let m2 = alice.commit("").unwrap();
    /// let mut bob = GraphStore::new("bob");
    /// let report = bob.receive_batch(vec![m2, m1.clone(), m1]);
    /// assert_eq!((report.accepted, report.duplicates), (2, 1));
    /// assert_eq!(bob.graph().to_json(), alice.graph().to_json());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn receive_batch(&mut self, msgs: Vec<Message>) -> BatchReport {
        self.integrate(msgs)
    }

    /// Decodes `bytes` (one message or an array, JSON or MessagePack) and integrates
    /// every valid message; invalid ones are reported in [`BatchReport::rejected`].
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{store::GraphStore, wire::Format};
    /// let mut store = GraphStore::new("bob");
    /// let report = store.receive_bytes(br#"{"id": "a:1", "client": "a", "lt": 1, "ts": 0,
    ///     "ops": [{"ot": "node.insert", "key": "", "path": "children", "value": {"key": "o", "tag": "Mesh"}}]}"#,
    ///     Format::Json);
    /// assert_eq!(report.accepted, 1);
    /// assert_eq!(store.lt(), 1);
    /// ```
    pub fn receive_bytes(&mut self, bytes: &[u8], format: Format) -> BatchReport {
        let limits = crate::op::Limits::default();
        crate::replica::decode_then(bytes, format, &limits, |msgs| self.integrate(msgs))
    }

    fn integrate(&mut self, msgs: Vec<Message>) -> BatchReport {
        let (journal, names) = (self.replica.journal(), self.replica.names());
        let fresh: Vec<String> = msgs
            .iter()
            .filter(|m| {
                journal
                    .slot(&m.id)
                    .is_none_or(|i| !journal.holds(i, m, names))
            })
            .map(|m| m.id.clone())
            .collect();
        if fresh.is_empty() {
            return BatchReport {
                duplicates: msgs.len(),
                ..BatchReport::default()
            };
        }
        self.lift();
        let report = self.replica.apply_owned(msgs);
        self.merge_clocks(&fresh);
        self.relay();
        let accepted = report.accepted;
        self.notify(|| StoreEvent::Received { accepted });
        report
    }

    /// Advances `lt` and merges the clocks of the journaled messages among `ids` (a
    /// rejected message moves neither). This client's own entry only counts its own
    /// messages (including ones an earlier session under the same id sent): another
    /// client's clock never moves it.
    fn merge_clocks(&mut self, ids: &[String]) {
        self.lt = self.lt.max(self.replica.lt());
        let (journal, names) = (self.replica.journal(), self.replica.names());
        for id in ids {
            let Some(m) = journal.message(id, names) else {
                continue;
            };
            for (c, &n) in &m.clock {
                // Own counter: only from this client's own earlier messages (a store
                // restarted under the same id must continue the sequence, or peers
                // would drop its new messages as copies); never from others' clocks.
                if *c == self.client && m.client != self.client {
                    continue;
                }
                match self.clock.get_mut(c) {
                    Some(e) => *e = (*e).max(n),
                    None => {
                        self.clock.insert(c.clone(), n);
                    }
                }
            }
        }
    }

    /// Marks one of this client's messages as acknowledged by the server (the seeds'
    /// `ack`). Returns false for an id this store did not send (or already compacted).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// let msg = store.commit("").unwrap();
    /// assert!(store.ack(&msg.id));
    /// assert!(!store.ack("bob:1"));
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn ack(&mut self, msg_id: &str) -> bool {
        let Some(o) = self.own.iter_mut().rev().find(|o| o.id == msg_id) else {
            return false;
        };
        o.acked = true;
        o.copy = None;
        self.notify(|| StoreEvent::Acked {
            id: msg_id.to_owned(),
        });
        true
    }

    /// Undoes this client's newest data message that is not undone (the seeds'
    /// `undo`): sends a `meta.undo` for it. Pending edits are committed first and
    /// that commit is the one undone, as the reference does. `None` when there is
    /// nothing to undo.
    ///
    /// Works across concurrent edits of others: the undone message's ops drop out of
    /// the state wherever they sit in the order, and the cells it touched are
    /// recomputed from the remaining messages.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// store.edit(Op::number_set("n", "x", 1.0))?;
    /// store.commit("create");
    /// store.edit(Op::number_set("n", "x", 10.0))?;
    /// store.commit("set x");
    /// let x = |s: &GraphStore| s.graph().node("n").and_then(|n| n.get("x")).and_then(|v| v.as_number());
    /// store.undo().unwrap();
    /// assert_eq!(x(&store), Some(1.0));
    /// store.redo().unwrap();
    /// assert_eq!(x(&store), Some(10.0));
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn undo(&mut self) -> Option<Message> {
        if self.exhausted() {
            return None;
        }
        if !self.buffer.is_empty() {
            self.commit("");
        }
        let journal = self.replica.journal();
        let target = self
            .own
            .iter()
            .rev()
            .filter(|o| o.data)
            .find(|o| journal.contains(&o.id) && !journal.is_undone_id(&o.id))?
            .id
            .clone();
        let msg = self.emit(vec![Op::meta_undo(target.as_str())], false, None);
        self.undone.retain(|t| *t != target);
        self.undone.push(target.clone());
        self.relay();
        self.notify(|| StoreEvent::UndoRedo {
            target,
            id: msg.id.clone(),
            undo: true,
        });
        Some(msg)
    }

    /// Redoes the message this store undid most recently that is still undone (the
    /// seeds' `redo`): sends a `meta.redo` for it. `None` when there is nothing to
    /// redo.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// store.commit("");
    /// assert_eq!(store.redo(), None);                 // nothing undone yet
    /// store.undo().unwrap();
    /// assert!(store.graph().node("n").is_none());
    /// let redo = store.redo().unwrap();
    /// assert_eq!(redo.ops, vec![Op::meta_redo("alice:1")]);
    /// assert!(store.graph().node("n").is_some());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn redo(&mut self) -> Option<Message> {
        if self.exhausted() {
            return None;
        }
        let journal = self.replica.journal();
        while let Some(target) = self.undone.pop() {
            if !journal.is_undone_id(&target) {
                continue;
            }
            self.lift();
            let msg = self.emit(vec![Op::meta_redo(target.as_str())], false, None);
            self.relay();
            self.notify(|| StoreEvent::UndoRedo {
                target,
                id: msg.id.clone(),
                undo: false,
            });
            return Some(msg);
        }
        None
    }

    /// Folds stable, acknowledged messages into the base (the seeds' `compact`): the
    /// replica's compaction ([`Replica::compact`]), never past this client's oldest
    /// unacknowledged message. Compacted messages can no longer be undone.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::GraphStore};
    /// let mut store = GraphStore::new("alice");
    /// store.edit(Op::node_insert("", "n", "Mesh"))?;
    /// let msg = store.commit("").unwrap();
    /// assert_eq!(store.compact().messages, 0); // not acknowledged yet
    /// store.ack(&msg.id);
    /// assert_eq!(store.compact().messages, 1);
    /// assert!(store.graph().node("n").is_some());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn compact(&mut self) -> CompactReport {
        let limit = self
            .own
            .iter()
            .find(|o| !o.acked)
            .map_or(u64::MAX, |o| o.lt.saturating_sub(1));
        self.lift();
        let report = self.replica.compact_through(limit);
        let journal = self.replica.journal();
        self.own
            .retain(|o| journal.contains(&o.id) || (!o.acked && o.copy.is_some()));
        self.undone.retain(|t| journal.contains(t));
        self.relay();
        let messages = report.messages;
        if messages > 0 {
            self.notify(|| StoreEvent::Compacted { messages });
        }
        report
    }
}

#[cfg(test)]
mod rejoin_tests {
    use super::*;

    fn hp(s: &GraphStore) -> Option<f64> {
        s.graph()
            .node("n")
            .and_then(|n| n.get("hp"))
            .and_then(|v| v.as_number())
    }

    /// A server that holds alice's `n` (acked) and a store for alice on it.
    fn setup(horizon: u64) -> (Replica, GraphStore) {
        let mut alice = GraphStore::new("alice");
        alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
        alice.edit(Op::number_set("n", "hp", 10.0)).unwrap();
        let create = alice.commit("").unwrap();
        alice.ack(&create.id);
        let mut server = Replica::new();
        server.set_horizon(horizon);
        server.apply_message(&create);
        (server, alice)
    }

    /// Bob (a store joined from the server) writes `k` messages to the server.
    fn bob_writes(server: &mut Replica, k: u32) {
        let mut bob = GraphStore::init_from_snapshot("bob", &server.snapshot()).unwrap();
        for i in 0..k {
            bob.edit(Op::number_set("n", "i", f64::from(i))).unwrap();
            server.apply_message(&bob.commit("").unwrap());
        }
    }

    #[test]
    fn messages_the_server_holds_stay_unacknowledged_under_their_ids() {
        // Held in the snapshot's journal.
        let (mut server, mut alice) = setup(1_000);
        alice.edit(Op::number_add("n", "hp", 1.0)).unwrap();
        let sent = alice.commit("").unwrap();
        server.apply_message(&sent);
        bob_writes(&mut server, 2);
        let report = alice.rejoin_from_snapshot(&server.snapshot()).unwrap();
        assert_eq!((report.held, report.kept, report.reissued.len()), (1, 0, 0));
        assert_eq!(alice.unacked_messages(), vec![sent.clone()]);
        assert_eq!(alice.graph().to_json(), server.to_json());

        // Folded into the snapshot's compacted base: resent from a copy.
        let (mut server, mut alice) = setup(2);
        alice.edit(Op::number_add("n", "hp", 1.0)).unwrap();
        let sent = alice.commit("").unwrap();
        alice.edit(Op::number_add("n", "hp", 2.0)).unwrap();
        let compacted = alice.commit("").unwrap();
        // The server took both (the acks were lost); alice falls silent, is evicted,
        // and the server compacts past both.
        server.apply_batch(&[sent.clone(), compacted.clone()]);
        bob_writes(&mut server, 5);
        server.compact();
        assert!(server.compacted_through() >= Some(compacted.lt));
        let report = alice.rejoin_from_snapshot(&server.snapshot()).unwrap();
        assert_eq!((report.held, report.kept, report.reissued.len()), (2, 0, 0));
        // Both are resent as they were, and acknowledged as copies.
        assert_eq!(
            alice.unacked_messages(),
            vec![sent.clone(), compacted.clone()]
        );
        assert_eq!(
            server
                .apply_batch(&[sent.clone(), compacted.clone()])
                .duplicates,
            2
        );
        assert!(alice.ack(&sent.id) && alice.ack(&compacted.id));
        assert!(alice.unacked_messages().is_empty());
        alice.compact();
        assert_eq!(alice.graph().to_json(), server.to_json());
        assert_eq!(hp(&alice), Some(13.0));
    }

    #[test]
    fn acceptable_messages_keep_their_ids_and_refused_ones_are_committed_again() {
        // Not compacted past: kept as it was.
        let (mut server, mut alice) = setup(1_000);
        alice.edit(Op::number_add("n", "hp", 1.0)).unwrap();
        let offline = alice.commit("").unwrap();
        bob_writes(&mut server, 3);
        let report = alice.rejoin_from_snapshot(&server.snapshot()).unwrap();
        assert_eq!((report.held, report.kept, report.reissued.len()), (0, 1, 0));
        assert_eq!(alice.unacked_messages(), vec![offline.clone()]);
        server.apply_message(&offline);
        assert_eq!(alice.graph().to_json(), server.to_json());

        // Compacted past: an edit and its undo are committed again, the undo renamed.
        let (mut server, mut alice) = setup(2);
        alice.edit(Op::number_add("n", "hp", 1.0)).unwrap();
        let edit = alice.commit("").unwrap();
        let undo = alice.undo().unwrap();
        alice.edit(Op::number_add("n", "hp", 5.0)).unwrap();
        let last = alice.commit("").unwrap();
        // Pending (uncommitted) edits stay applied through the rejoin.
        alice.edit(Op::number_set("n", "pending", 1.0)).unwrap();
        bob_writes(&mut server, 6);
        server.compact();
        assert!(server.compacted_through() >= Some(last.lt));
        let report = alice.rejoin_from_snapshot(&server.snapshot()).unwrap();
        let old: Vec<&str> = report.reissued.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(old, [&edit.id, &undo.id, &last.id]);
        let again: Vec<Message> = alice.unacked_messages();
        assert_eq!(again.len(), 3);
        assert_eq!(again[0].ops, edit.ops);
        assert_eq!(again[1].ops, vec![Op::meta_undo(again[0].id.as_str())]);
        assert!(again[0].lt > server.lt());
        let counters: Vec<u64> = again.iter().map(|m| m.clock["alice"]).collect();
        assert_eq!(counters, [2, 3, 4]);
        assert_eq!(
            alice
                .graph()
                .node("n")
                .and_then(|n| n.get("pending"))
                .and_then(|v| v.as_number()),
            Some(1.0)
        );
        assert_eq!(server.apply_batch(&again).accepted, 3);
        alice.cancel();
        assert_eq!(alice.graph().to_json(), server.to_json());
        assert_eq!(hp(&alice), Some(15.0));
        // Undo still works on the new ids.
        alice.redo().unwrap();
        assert_eq!(hp(&alice), Some(16.0));
    }
}

//! The journal: every message a replica holds (uncompacted), and the undo state.
//!
//! Invariants:
//! - `entries[by_id[id]].id == id`; an id appears at most once;
//! - no two entries share a stamp `(lt, client)` (a second message with a used stamp is
//!   rejected: the total order would be ambiguous);
//! - `heads[i]` holds the stamp and undo state of `entries[i]` (a dense side array:
//!   ordering and undo checks touch 16 bytes per message, not the message);
//! - `heads[i].undone` ⇔ the newest meta op (by position) targeting `entries[i]` is a
//!   `meta.undo` (the undo rule of DESIGN.md §4), kept up to date by [`Journal::note_meta`];
//! - a slot is reused only after compaction removed its message *and* every [`OpRef`]
//!   to it: a live reference always names the message it was made for;
//! - per client, `prefix` is the longest run of sequence numbers `1..=prefix` (the
//!   client's own `clock` counter) received so far, and `prefix_lt` the Lamport time of
//!   message `prefix`: every message of that client not yet received has a greater
//!   Lamport time (a client's clock only grows). This is what makes a message stable.

use std::collections::BTreeMap;

use ahash::AHashMap;

use super::record::{Kind, Rec};
use crate::ids::{ClientId, ClientTable, KeyId, KeyTable, PathId, PathTable, Pos, Stamp};
use crate::op::{Message, OpKind};

/// A reference to one op of one journaled message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpRef {
    /// Index of the message in the journal.
    pub msg: u32,
    /// Index of the op inside the message.
    pub op: u32,
}

/// One journaled message: its fields and its ops as records (no owned [`Op`]s).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The message id.
    pub id: Box<str>,
    /// Lamport time.
    pub lt: u64,
    /// Wall-clock timestamp.
    pub ts: f64,
    /// `clock[client]`, the message's own counter, when its clock has one.
    pub seq: Option<u64>,
    /// The other entries of its `clock`, when there are any.
    pub others: Option<Box<BTreeMap<String, u64>>>,
    /// The ops, each with its interned target key (for property ops; [`KeyId::ROOT`]
    /// for the root keys, the new node's key for `node.insert`-likes) and path.
    pub ops: Box<[Rec]>,
}

/// The interned names a journaled message is rebuilt from.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    /// Node keys.
    pub keys: &'a KeyTable,
    /// Property paths.
    pub paths: &'a PathTable,
    /// Client names.
    pub clients: &'a ClientTable,
}

impl Entry {
    /// What a free slot holds: an empty message.
    pub(crate) fn placeholder() -> Entry {
        Entry {
            id: Box::from(""),
            lt: 0,
            ts: 0.0,
            seq: None,
            others: None,
            ops: Box::new([]),
        }
    }

    /// The entry of `msg`, whose ops have the interned `ids`.
    pub fn new(msg: Message, ids: Vec<(KeyId, PathId)>) -> Entry {
        let Message {
            id,
            client,
            mut clock,
            lt,
            ts,
            ops,
        } = msg;
        let seq = clock.remove(&client);
        Entry {
            id: id.into_boxed_str(),
            lt,
            ts,
            seq,
            others: (!clock.is_empty()).then(|| Box::new(clock)),
            ops: ops
                .into_iter()
                .zip(ids)
                .map(|(op, ids)| Rec::new(op, ids))
                .collect(),
        }
    }

    /// The number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True for a message without ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The message's clock.
    pub fn clock(&self, client: &str) -> BTreeMap<String, u64> {
        let mut clock = self.others.as_deref().cloned().unwrap_or_default();
        if let Some(seq) = self.seq {
            clock.insert(client.to_owned(), seq);
        }
        clock
    }

    /// The message, owned, exactly as it was journaled; `client` is its sender's name.
    pub fn to_message(&self, client: &str, names: Names<'_>) -> Message {
        Message {
            id: self.id.to_string(),
            client: client.to_owned(),
            clock: self.clock(client),
            lt: self.lt,
            ts: self.ts,
            ops: self
                .ops
                .iter()
                .map(|r| r.to_op(names.keys, names.paths))
                .collect(),
        }
    }

    /// True when `m` is this message (`client` its sender's name), compared field by
    /// field without building anything.
    pub fn is(&self, m: &Message, client: &str, names: Names<'_>) -> bool {
        let clock_eq = || {
            let others = self.others.as_deref();
            let n = others.map_or(0, BTreeMap::len) + usize::from(self.seq.is_some());
            m.clock.len() == n
                && m.clock.get(client) == self.seq.as_ref()
                && others.is_none_or(|o| o.iter().all(|(k, v)| m.clock.get(k) == Some(v)))
        };
        *self.id == *m.id
            && m.client == client
            && self.lt == m.lt
            && self.ts.to_bits() == m.ts.to_bits()
            && self.ops.len() == m.ops.len()
            && clock_eq()
            && self
                .ops
                .iter()
                .zip(&m.ops)
                .all(|(r, op)| r.is(op, names.keys, names.paths))
    }
}

/// The hot part of an entry: what ordering and undo checks read.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// The message's interned stamp.
    pub stamp: Stamp,
    /// True while the message is undone.
    pub undone: bool,
}

/// The newest meta op seen for one target id.
#[derive(Clone, Copy, Debug)]
pub(super) struct MetaState {
    pub(super) pos: Pos,
    pub(super) undo: bool,
}

/// How many of a client's latest prefix messages keep their Lamport time for dating
/// heartbeats.
pub const RECENT: usize = 64;

/// What the journal knows of one client's message sequence.
#[derive(Clone, Debug, Default)]
pub(super) struct ClientLog {
    // Sequence numbers 1..=prefix all received; prefix_lt is the lt of message `prefix`.
    pub(super) prefix: u64,
    pub(super) prefix_lt: u64,
    // Received sequence numbers beyond the prefix, with their Lamport times.
    pub(super) ahead: BTreeMap<u64, u64>,
    // Highest Lamport time received from the client.
    pub(super) last_lt: u64,
    // True once a message of the client came without its own `clock` counter.
    pub(super) untracked: bool,
    // The last few (seq, lt) pairs of the prefix, oldest first, to date what a
    // heartbeat's clock names ([`Journal::lt_of_seq`]). Not persisted.
    pub(super) recent: std::collections::VecDeque<(u64, u64)>,
    // A Lamport time the client is known to have seen while every message it had sent
    // was here (a heartbeat): its later messages come after it. Not persisted.
    pub(super) seen_lt: u64,
}

/// Every uncompacted message, by arrival, with an id index and the undo state.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub(crate) entries: Vec<Entry>,
    pub(super) heads: Vec<Head>,
    // Slots whose message was compacted away, ready for reuse.
    pub(super) free: Vec<u32>,
    pub(super) by_id: AHashMap<Box<str>, u32>,
    pub(super) by_stamp: AHashMap<Stamp, u32>,
    pub(super) meta: AHashMap<Box<str>, MetaState>,
    pub(super) clients: AHashMap<ClientId, ClientLog>,
    // Bumped whenever a held message's undo state flips: a cell value folded under an
    // older epoch may count ops that no longer count (see [`super::index::Marks`]).
    pub(super) undo_epoch: u64,
    // Ops of every message ever pushed (what automatic compaction counts).
    pub(super) ops_pushed: u64,
}

impl Journal {
    /// Number of journaled messages.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// True when the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slots of every journaled message.
    pub fn live(&self) -> impl Iterator<Item = u32> + '_ {
        let mut free = vec![false; self.entries.len()];
        for &i in &self.free {
            if let Some(f) = free.get_mut(i as usize) {
                *f = true;
            }
        }
        (0..u32::try_from(self.entries.len()).unwrap_or(u32::MAX))
            .filter(move |&i| !free.get(i as usize).copied().unwrap_or(true))
    }

    /// Records that `client` sent message number `seq` (its own `clock` counter, if the
    /// message carried one) at Lamport time `lt`.
    pub fn note_client(&mut self, client: ClientId, seq: Option<u64>, lt: u64) {
        let log = self.clients.entry(client).or_default();
        log.last_lt = log.last_lt.max(lt);
        let Some(seq) = seq else {
            log.untracked = true;
            return;
        };
        // The common case: the next counter, nothing ahead of it.
        if seq == log.prefix.saturating_add(1) && log.ahead.is_empty() {
            log.prefix = seq;
            log.prefix_lt = lt;
            if log.recent.len() == RECENT {
                log.recent.pop_front();
            }
            log.recent.push_back((seq, lt));
            return;
        }
        if seq > log.prefix {
            log.ahead.insert(seq, lt);
        }
        while let Some(lt) = log.ahead.remove(&log.prefix.saturating_add(1)) {
            log.prefix += 1;
            log.prefix_lt = lt;
            if log.recent.len() == RECENT {
                log.recent.pop_front();
            }
            log.recent.push_back((log.prefix, lt));
        }
    }

    /// Makes `client` known (with nothing received yet), so it holds compaction back
    /// until its messages arrive or it is evicted; `lt` counts as its last activity.
    pub fn know_client(&mut self, client: ClientId, lt: u64) {
        self.clients.entry(client).or_insert(ClientLog {
            last_lt: lt,
            ..ClientLog::default()
        });
    }

    /// Records that `client`, with every message it sent received, has seen Lamport
    /// time `lt` ([`Journal::stable_lt`] then waits for it only beyond `lt`).
    pub fn note_seen(&mut self, client: ClientId, lt: u64) {
        if let Some(log) = self.clients.get_mut(&client) {
            log.seen_lt = log.seen_lt.max(lt);
        }
    }

    /// A lower bound of the Lamport time of `client`'s message number `seq`, when the
    /// prefix reaches it and it is one of the last [`RECENT`] of the prefix (or later):
    /// the Lamport time of the latest such message at or before `seq`.
    pub fn lt_of_seq(&self, client: ClientId, seq: u64) -> Option<u64> {
        let log = self.clients.get(&client)?;
        if seq == 0 || log.prefix == 0 {
            return None;
        }
        if seq >= log.prefix {
            return Some(log.prefix_lt);
        }
        let i = log.recent.partition_point(|&(s, _)| s <= seq);
        i.checked_sub(1).map(|i| log.recent[i].1)
    }

    /// The greatest `clock` counter received from `client` (0 when none).
    pub fn last_seq(&self, client: ClientId) -> u64 {
        self.clients.get(&client).map_or(0, |l| {
            let ahead = l.ahead.last_key_value().map_or(0, |(&s, _)| s);
            l.prefix.max(ahead)
        })
    }

    /// True when `client`'s message number `seq` was received before (it may have been
    /// compacted away since).
    pub fn seen_seq(&self, client: ClientId, seq: u64) -> bool {
        // Counters start at 1: a 0 counts nothing, so it is never a copy's.
        seq > 0
            && self
                .clients
                .get(&client)
                .is_some_and(|l| seq <= l.prefix || l.ahead.contains_key(&seq))
    }

    /// The greatest Lamport time `s` such that no message with `lt ≤ s` can still arrive
    /// from a client heard from within `horizon` Lamport ticks of `frontier`: the least
    /// `prefix_lt` over those clients (or the later Lamport time a client is known to
    /// have seen with nothing of its own outstanding, [`Journal::note_seen`]). `None`
    /// while one of them sends no `clock` counter. Clients silent longer than the
    /// horizon are evicted: they no longer hold it back.
    pub fn stable_lt(&self, frontier: u64, horizon: u64) -> Option<u64> {
        let mut s = frontier;
        for log in self.clients.values() {
            if log.last_lt.saturating_add(horizon) < frontier {
                continue;
            }
            if log.untracked {
                return None;
            }
            // With a gap in its counters, messages between may still come.
            let hold = if log.ahead.is_empty() {
                log.prefix_lt.max(log.seen_lt)
            } else {
                log.prefix_lt
            };
            s = s.min(hold);
        }
        Some(s)
    }

    /// Removes the message in slot `i` (compaction); the caller has removed every
    /// reference to it. Its id is forgotten: [`Journal::seen_seq`] recognises copies.
    pub fn remove(&mut self, i: u32) {
        let e = std::mem::replace(&mut self.entries[i as usize], Entry::placeholder());
        let head = std::mem::replace(
            &mut self.heads[i as usize],
            Head {
                stamp: Stamp::ZERO,
                undone: true,
            },
        );
        self.by_id.remove(&*e.id);
        self.by_stamp.remove(&head.stamp);
        if !self.meta.is_empty() {
            self.meta.remove(&*e.id);
        }
        self.free.push(i);
    }

    /// The id of a journaled message of `client` that carries `seq` as its own
    /// `clock` counter (a linear scan: for error reports only).
    pub fn id_with_counter(&self, client: ClientId, seq: u64) -> Option<&str> {
        self.by_id.values().find_map(|&i| {
            let e = &self.entries[i as usize];
            (self.heads[i as usize].stamp.client == client && e.seq == Some(seq)).then_some(&*e.id)
        })
    }

    /// The slot of the journaled message with this id.
    pub fn slot(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The journaled message with this id, rebuilt.
    pub fn message(&self, id: &str, names: Names<'_>) -> Option<Message> {
        self.slot(id).map(|i| self.message_at(i, names))
    }

    /// The journaled message in slot `i`, rebuilt.
    pub fn message_at(&self, i: u32, names: Names<'_>) -> Message {
        let client = names.clients.name(self.heads[i as usize].stamp.client);
        self.entries[i as usize].to_message(client, names)
    }

    /// True when the message in slot `i` is `m`.
    pub fn holds(&self, i: u32, m: &Message, names: Names<'_>) -> bool {
        let client = names.clients.name(self.heads[i as usize].stamp.client);
        self.entries[i as usize].is(m, client, names)
    }

    /// True when a `meta.undo`/`meta.redo` targeting `id` was seen.
    pub fn has_meta(&self, id: &str) -> bool {
        !self.meta.is_empty() && self.meta.contains_key(id)
    }

    /// True when the journaled message with this id is undone (false for ids not held).
    pub fn is_undone_id(&self, id: &str) -> bool {
        self.slot(id).is_some_and(|i| self.heads[i as usize].undone)
    }

    /// The vector clock of what was received: per client, the length of the unbroken
    /// prefix of its `clock` counters (`1..=n` all held or compacted).
    pub fn clock(&self, clients: &ClientTable) -> BTreeMap<String, u64> {
        self.clients
            .iter()
            .filter(|(_, log)| log.prefix > 0)
            .map(|(&c, log)| (clients.name(c).to_owned(), log.prefix))
            .collect()
    }

    /// The length of the unbroken prefix of `client`'s counters (see [`Journal::clock`]).
    pub fn prefix_of(&self, client: ClientId) -> u64 {
        self.clients.get(&client).map_or(0, |l| l.prefix)
    }

    /// Records that `client`'s messages `1..=seq` are all accounted for (in a snapshot
    /// the replica starts from), the last of them at Lamport time `lt`.
    pub fn assume_prefix(&mut self, client: ClientId, seq: u64, lt: u64) {
        let log = self.clients.entry(client).or_default();
        if seq > log.prefix {
            log.prefix = seq;
            log.prefix_lt = lt;
            log.ahead.retain(|&s, _| s > seq);
            while let Some(lt) = log.ahead.remove(&log.prefix.saturating_add(1)) {
                log.prefix += 1;
                log.prefix_lt = lt;
            }
        }
        log.last_lt = log.last_lt.max(lt);
    }

    /// True when a message with this id is journaled.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The id of the journaled message with this stamp, if any.
    pub fn id_at(&self, stamp: Stamp) -> Option<&str> {
        self.by_stamp
            .get(&stamp)
            .map(|&i| &*self.entries[i as usize].id)
    }

    /// The entry at `i`.
    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }

    /// The stamp and undo state of the message at `i`.
    pub fn head(&self, i: u32) -> Head {
        self.heads[i as usize]
    }

    /// The stamp of the message at `i`.
    pub fn stamp(&self, i: u32) -> Stamp {
        self.heads[i as usize].stamp
    }

    /// The record behind a reference.
    pub fn rec(&self, r: OpRef) -> &Rec {
        &self.entries[r.msg as usize].ops[r.op as usize]
    }

    /// The body of the op behind a reference (its predicates need no kind).
    pub fn body(&self, r: OpRef) -> &super::record::Body {
        &self.rec(r).body
    }

    /// The kind of the op behind a reference.
    pub fn kind(&self, r: OpRef) -> Kind<'_> {
        self.rec(r).kind()
    }

    /// The position of a referenced op.
    pub fn pos(&self, r: OpRef) -> Pos {
        Pos {
            stamp: self.heads[r.msg as usize].stamp,
            op: r.op,
        }
    }

    /// Sets the undo state of the message in slot `i` (a copy of the replica that
    /// computes its base, [`super::Replica::join_point`]).
    pub(super) fn set_undone(&mut self, i: u32, undone: bool) {
        if self.heads[i as usize].undone != undone {
            self.heads[i as usize].undone = undone;
            self.undo_epoch += 1;
        }
    }

    /// A counter that changes whenever a held message's undo state flips.
    pub fn undo_epoch(&self) -> u64 {
        self.undo_epoch
    }

    /// True when the referenced op's message is undone.
    pub fn is_undone(&self, r: OpRef) -> bool {
        self.heads[r.msg as usize].undone
    }

    /// The interned target key and path of a referenced op.
    pub fn ids(&self, r: OpRef) -> (KeyId, PathId) {
        self.rec(r).ids
    }

    /// Appends a message (the caller checked id and stamp are new) with the interned
    /// ids of its ops. Its undo state comes from the meta ops seen so far.
    pub fn push(&mut self, msg: Message, stamp: Stamp, ids: Vec<(KeyId, PathId)>) -> u32 {
        self.push_entry(Entry::new(msg, ids), stamp)
    }

    /// [`Journal::push`] of a built entry.
    pub fn push_entry(&mut self, entry: Entry, stamp: Stamp) -> u32 {
        let undone = !self.meta.is_empty() && self.meta.get(&*entry.id).is_some_and(|m| m.undo);
        self.note_client(stamp.client, entry.seq, entry.lt);
        let head = Head { stamp, undone };
        self.ops_pushed = self.ops_pushed.saturating_add(entry.ops.len() as u64);
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                self.heads[i as usize] = head;
                i
            }
            None => {
                self.entries.push(entry);
                self.heads.push(head);
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(self.entries[i as usize].id.clone(), i);
        self.by_stamp.insert(stamp, i);
        i
    }

    /// Records the meta ops of a message at `stamp`. Returns the journaled targets whose
    /// undo state flipped (their entries are already updated).
    pub fn note_meta(&mut self, msg: &Message, stamp: Stamp, clients: &ClientTable) -> Vec<u32> {
        let mut flipped = Vec::new();
        for (i, op) in msg.ops.iter().enumerate() {
            let (target, undo) = match &op.kind {
                OpKind::MetaUndo { target } => (target, true),
                OpKind::MetaRedo { target } => (target, false),
                _ => continue,
            };
            let pos = Pos::new(stamp, i);
            let newer = self
                .meta
                .get(target.as_str())
                .is_none_or(|m| clients.cmp_pos(pos, m.pos).is_gt());
            if !newer {
                continue;
            }
            self.meta
                .insert(target.as_str().into(), MetaState { pos, undo });
            if let Some(&t) = self.by_id.get(target.as_str()) {
                let e = &mut self.heads[t as usize];
                if e.undone != undo {
                    e.undone = undo;
                    self.undo_epoch += 1;
                    if let Some(k) = flipped.iter().position(|&x| x == t) {
                        // Flipped back within the same message: no net change.
                        flipped.swap_remove(k);
                    } else {
                        flipped.push(t);
                    }
                }
            }
        }
        flipped
    }
}

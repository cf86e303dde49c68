//! [`Writer`]: the telemetry fast path — a producer embedded in the process writes typed
//! property updates into a [`Replica`] at kHz rates, with no JSON, no owned
//! [`crate::Op`] and no string per write, and every commit is still an ordinary
//! message: stamped, journaled, and what a peer receives
//! ([`Replica::journaled_message`], then any encoder).
//!
//! A writer is a buffer of 32-byte op records ([`Rec`]: interned key and path, an
//! inline payload). Its handles are the replica's interned ids ([`Replica::key_id`],
//! [`Replica::path_id`]), looked up once, not per write. It borrows nothing, so a
//! producer can fill it while the replica is read elsewhere and hand it over only to
//! commit ([`Replica::commit`]). A commit makes one message of the buffered writes: id
//! `client:lt`, Lamport time one past everything held, the client's next `clock`
//! counter; it is applied exactly as receiving that message would apply it (warnings
//! included, e.g. a write to a node that does not exist).
//!
//! Invariants:
//! - a commit is all or nothing: it is refused, with nothing applied and the buffer
//!   kept, when the client name is empty, a write names an id the replica never handed out, carries a value
//!   that is not finite, or when the message would exceed the replica's
//!   [`crate::op::Limits::max_ops_per_message`], its Lamport time the wire's bound, or
//!   reuse a held id or counter (another process writing as the same client);
//! - the state after a commit equals the state after receiving
//!   `journaled_message(id)` (tested in `tests/replica.rs`).
//!
//! A commit's message stays in the journal at least until the replica's next call
//! (automatic compaction never folds it in the commit that made it), so a producer
//! sends it with [`Replica::journaled_message`] right after the commit.
//!
//! One writer per client name: two writers (or a writer and a [`crate::GraphStore`]) of
//! one client in different processes would reuse counters.

use super::journal::Entry;
use super::record::{Body, Rec};
use super::{BatchReport, Replica};
use crate::error::{DecodeError, OpError, RejectError};
use crate::ids::{KeyId, MAX_SAFE_INT, PathId, Stamp};
use crate::op::body::Payload;
use crate::op::is_root_key;

/// A buffer of typed property writes of one client (see the module doc).
#[derive(Clone, Debug)]
pub struct Writer {
    client: Box<str>,
    ops: Vec<Rec>,
}

/// What one [`Replica::commit`] made.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The new message's id (`client:lt`).
    pub id: String,
    /// Its Lamport time.
    pub lt: u64,
    /// Its `clock[client]` counter.
    pub seq: u64,
    /// What applying it did (one accepted message; warnings of ops that did nothing;
    /// `compacted` when the commit triggered the replica's automatic compaction).
    pub report: BatchReport,
}

impl Writer {
    /// An empty writer for `client` (see [`Replica::writer`]).
    pub fn new(client: &str) -> Writer {
        Writer {
            client: client.into(),
            ops: Vec::new(),
        }
    }

    /// The client this writer writes as.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Number of writes buffered since the last commit.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Drops the buffered writes.
    pub fn clear(&mut self) {
        self.ops.clear();
    }

    /// Buffers an op with an inline payload on (`key`, `path`); hands a
    /// [`Body::Whole`] back (those ops take [`Replica::apply_message`]).
    pub fn push(&mut self, key: KeyId, path: PathId, body: Body) -> Result<(), Body> {
        if matches!(body, Body::Whole(_)) {
            return Err(body);
        }
        self.put(key, path, body);
        Ok(())
    }

    #[inline]
    fn put(&mut self, key: KeyId, path: PathId, body: Body) {
        self.ops.push(Rec {
            ids: (key, path),
            body,
        });
    }

    /// `vector3.set`.
    #[inline]
    pub fn set_vec3(&mut self, key: KeyId, path: PathId, v: [f32; 3]) {
        self.put(key, path, Body::Vector3Set(v));
    }

    /// `vector3.add`.
    #[inline]
    pub fn add_vec3(&mut self, key: KeyId, path: PathId, v: [f32; 3]) {
        self.put(key, path, Body::Vector3Add(v));
    }

    /// `quaternion.set` (`[x, y, z, w]`).
    #[inline]
    pub fn set_quat(&mut self, key: KeyId, path: PathId, q: [f32; 4]) {
        self.put(key, path, Body::QuaternionSet(q));
    }

    /// `quaternion.multiply` (current × `q`).
    #[inline]
    pub fn multiply_quat(&mut self, key: KeyId, path: PathId, q: [f32; 4]) {
        self.put(key, path, Body::QuaternionMultiply(q));
    }

    /// `euler.set` (radians).
    #[inline]
    pub fn set_euler(&mut self, key: KeyId, path: PathId, v: [f32; 3]) {
        self.put(key, path, Body::EulerSet(v));
    }

    /// `number.set`.
    #[inline]
    pub fn set_number(&mut self, key: KeyId, path: PathId, x: f64) {
        self.put(key, path, Body::NumberSet(x));
    }

    /// `number.add`.
    #[inline]
    pub fn add_number(&mut self, key: KeyId, path: PathId, x: f64) {
        self.put(key, path, Body::NumberAdd(x));
    }

    /// `boolean.set`.
    #[inline]
    pub fn set_bool(&mut self, key: KeyId, path: PathId, b: bool) {
        self.put(key, path, Body::BooleanSet(b));
    }
}

/// Why a buffered write cannot be sent: `None` when it can.
fn invalid(rec: &Rec, keys: usize, paths: usize) -> Option<OpError> {
    let (k, p) = rec.ids;
    if k.index() >= keys {
        return Some(OpError::Invalid {
            field: "key",
            reason: format!("key id {} was not handed out by this replica", k.index()),
        });
    }
    if p.index() >= paths {
        return Some(OpError::Invalid {
            field: "path",
            reason: format!("path id {} was not handed out by this replica", p.index()),
        });
    }
    let finite = match (&rec.body, rec.body.payload()) {
        (_, Some(Payload::Number(x))) => x.is_finite(),
        (_, Some(Payload::Floats(v))) => v.iter().all(|x| x.is_finite()),
        (Body::Vector3ApplyEuler { angles, .. }, _) => angles.iter().all(|x| x.is_finite()),
        _ => true,
    };
    (!finite).then(|| OpError::Invalid {
        field: "value",
        reason: "not a finite number".into(),
    })
}

impl Replica {
    /// A writer for `client` (see [`Writer`]); the same as [`Writer::new`], named here
    /// for discovery.
    pub fn writer(&self, client: &str) -> Writer {
        Writer::new(client)
    }

    /// The handle of a node key for a [`Writer`] (interned on first sight; the root
    /// keys `""` and `"."` give the root's). A write to a key with no node does
    /// nothing, with a warning, as a received op would.
    pub fn key_id(&mut self, key: &str) -> KeyId {
        if is_root_key(key) {
            KeyId::ROOT
        } else {
            self.graph.keys.intern(key)
        }
    }

    /// The handle of a property path for a [`Writer`] (interned on first sight).
    pub fn path_id(&mut self, path: &str) -> PathId {
        self.graph.path_id(path)
    }

    /// Commits the writer's buffered writes as one message (see [`Writer`]) and empties
    /// it; `ts` is the message's wall clock (seconds). `Ok(None)` when nothing was
    /// buffered. On an error nothing is applied and the buffer is kept.
    pub fn commit(&mut self, w: &mut Writer, ts: f64) -> Result<Option<Committed>, RejectError> {
        if w.ops.is_empty() {
            return Ok(None);
        }
        // The wire refuses a message without a client or with a wall clock that is not
        // a number: no peer could take it.
        if w.client.is_empty() || !ts.is_finite() {
            return Err(RejectError::Invalid(DecodeError::Message {
                index: 0,
                id: None,
                reason: if w.client.is_empty() {
                    "a writer needs a non-empty client name".into()
                } else {
                    format!("`ts` {ts} is not a finite number of seconds")
                },
            }));
        }
        let client = self.graph.clients.intern(&w.client);
        let lt = self.lt().saturating_add(1);
        let seq = self.journal.last_seq(client).saturating_add(1);
        let id = format!("{}:{lt}", w.client);
        let op_error = |op_index: usize, ot: &str, reason: OpError| {
            RejectError::Invalid(DecodeError::Op {
                msg_id: id.clone(),
                op_index,
                ot: Some(ot.to_owned()),
                reason,
            })
        };
        if w.ops.len() > self.limits.max_ops_per_message {
            return Err(op_error(
                self.limits.max_ops_per_message,
                w.ops[0].kind().ot(),
                OpError::TooLarge {
                    field: "ops",
                    what: "number of ops",
                    limit: self.limits.max_ops_per_message,
                },
            ));
        }
        let (keys, paths) = (self.graph.keys.len(), self.graph.paths.len());
        if let Some((i, e)) = w
            .ops
            .iter()
            .enumerate()
            .find_map(|(i, r)| invalid(r, keys, paths).map(|e| (i, e)))
        {
            return Err(op_error(i, w.ops[i].kind().ot(), e));
        }
        if lt > MAX_SAFE_INT || seq > MAX_SAFE_INT {
            return Err(RejectError::Invalid(DecodeError::Message {
                index: 0,
                id: Some(id),
                reason: format!("`lt` {lt} or `clock.{}` {seq} beyond 2^53 - 1", w.client),
            }));
        }
        let stamp = Stamp { lt, client };
        if !self.fresh_in_order(stamp, &id, Some(seq)) {
            let other = self
                .journal
                .slot(&id)
                .map_or_else(|| format!("counter {seq} of {}", w.client), |_| id.clone());
            return Err(RejectError::Conflict {
                msg_id: id,
                other,
                what: "another writer of this client used the id or the counter".into(),
            });
        }
        let entry = Entry {
            id: id.as_str().into(),
            lt,
            ts,
            seq: Some(seq),
            others: None,
            ops: w.ops.drain(..).collect(),
        };
        let i = self.journal.push_entry(entry, stamp);
        self.frontier = Some(stamp);
        let mut report = BatchReport::default();
        self.apply_entry(i, stamp, ts, &mut report);
        // The new message stays journaled at least until the next call, so the
        // producer can send it (`journaled_message`) whatever the compaction folds.
        self.auto_compact_through(&mut report, lt - 1);
        Ok(Some(Committed {
            id,
            lt,
            seq,
            report,
        }))
    }
}

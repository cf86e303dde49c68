//! The join point: what a client that joins a scene starts from when it cannot take
//! the whole replica ([`Replica::snapshot`]) — the compacted *base* as a plain state,
//! and the messages after it.
//!
//! After compacting through `S`, no message with `lt ≤ S` can be accepted any more
//! (it is rejected as compacted), so the base — the state of the compacted messages
//! alone — is a snapshot that no late message can reach under. A client that starts
//! from the base ([`crate::store::GraphStore::init_from_server`]) and receives the
//! journal tail holds exactly what the server holds, and integrates every later
//! message (late ones included) as the server does.
//!
//! Invariant (tested): for every replica `r`, a replica started with
//! [`Replica::from_base`] from `r.join_point()` and given its `tail` shows the state of
//! `r`.

use std::collections::BTreeMap;

use super::Replica;
use crate::graph::SceneGraph;
use crate::op::Message;

/// [`Replica::join_tail`]: the join point without its graph.
#[derive(Clone, Debug)]
pub struct JoinTail {
    /// Per client, how many of its messages (by `clock` counter) the base holds.
    pub clock: BTreeMap<String, u64>,
    /// The Lamport time compacted through (0: nothing compacted).
    pub through: u64,
    /// Every held message, in canonical `(lt, client)` order.
    pub tail: Vec<Message>,
}

/// A scene's base and the messages after it (see the module doc).
#[derive(Clone, Debug)]
pub struct JoinPoint {
    /// The state of every compacted message (empty when nothing was compacted).
    pub graph: SceneGraph,
    /// Per client, how many of its messages (by `clock` counter) the base holds.
    pub clock: BTreeMap<String, u64>,
    /// The Lamport time compacted through (0: nothing compacted).
    pub through: u64,
    /// Every held message, in canonical `(lt, client)` order.
    pub tail: Vec<Message>,
}

impl Replica {
    /// The base state and the journal after it (see the module doc). Costs a copy of
    /// the replica and a recompute of the cells the journal touches: cache it until
    /// the next compaction or message.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::replica::Replica;
    /// use vuer_rtc::op::{Message, Op};
    /// let msg = Message {
    ///     id: "a:1".into(), client: "a".into(), clock: [("a".to_string(), 1)].into(), lt: 1, ts: 0.0,
    ///     ops: vec![Op::node_insert("", "obj", "Mesh")],
    /// };
    /// let mut server = Replica::new();
    /// server.apply_message(&msg);
    /// let join = server.join_point();
    /// assert!(join.graph.is_empty()); // nothing compacted: the base is empty
    /// let tail: Vec<Message> = join.tail.iter().map(|m| (*m).clone()).collect();
    /// let mut client = Replica::from_base(join.graph, &join.clock, join.through);
    /// client.apply_owned(tail);
    /// assert_eq!(client.to_json(), server.to_json());
    /// ```
    pub fn join_point(&self) -> JoinPoint {
        let JoinTail {
            clock,
            through,
            tail,
        } = self.join_tail();
        JoinPoint {
            graph: self.base_graph(),
            clock,
            through,
            tail,
        }
    }

    /// [`Replica::join_point`] without the base graph (cheap: the journal in canonical
    /// order and the base clock); the base changes only when the replica compacts.
    pub fn join_tail(&self) -> JoinTail {
        let clients = &self.graph.clients;
        let mut tail: Vec<u32> = self.journal.live().collect();
        tail.sort_by(|&a, &b| clients.cmp_stamps(self.journal.stamp(a), self.journal.stamp(b)));

        // The base clock: a client's messages up to its unbroken prefix, less those
        // still in the journal (its counters grow with `lt`, so the journal holds a
        // suffix of them).
        let mut clock = self.clock();
        for &i in &tail {
            let client = clients.name(self.journal.stamp(i).client);
            if let Some(seq) = self.journal.entry(i).seq.filter(|&s| s > 0)
                && let Some(base) = clock.get_mut(client)
            {
                *base = (*base).min(seq - 1);
            }
        }
        clock.retain(|_, &mut seq| seq > 0);
        let names = self.names();
        JoinTail {
            clock,
            through: self.compacted_through.unwrap_or(0),
            tail: tail
                .into_iter()
                .map(|i| self.journal.message_at(i, names))
                .collect(),
        }
    }

    /// The base of [`Replica::join_point`]: the state of the compacted messages alone
    /// (empty when nothing was compacted). Costs a copy of the replica and a recompute
    /// of every cell the journal touches.
    pub fn base_graph(&self) -> SceneGraph {
        if self.compacted_through.is_none() {
            return SceneGraph::default();
        }
        // Undo every journaled message on a copy: what stays is the base.
        let mut base = self.clone();
        let toggled: Vec<u32> = base
            .journal
            .live()
            .filter(|&i| !base.journal.head(i).undone)
            .collect();
        for &i in &toggled {
            base.journal.set_undone(i, true);
        }
        let mut report = super::BatchReport::default();
        base.integrate_out_of_order(&[], &toggled, &mut report);
        base.graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn m(client: &str, seq: u64, lt: u64, ops: Vec<Op>) -> Message {
        Message {
            id: format!("{client}:{lt}"),
            client: client.into(),
            clock: [(client.to_string(), seq)].into(),
            lt,
            ts: lt as f64,
            ops,
        }
    }

    #[test]
    fn the_base_holds_the_compacted_messages_and_the_tail_the_rest() {
        let mut server = Replica::new();
        server.register_client("a");
        server.register_client("b");
        server.apply_owned(vec![
            m("a", 1, 1, vec![Op::node_insert("", "obj", "Mesh")]),
            m("a", 2, 2, vec![Op::number_set("obj", "hp", 100.0)]),
            m("b", 1, 3, vec![Op::number_add("obj", "hp", -10.0)]),
            m("b", 2, 5, vec![Op::number_add("obj", "hp", -1.0)]),
        ]);
        // `a` is stable through lt 2 (its last message), `b` through 5: S = 2.
        let rep = server.compact();
        assert_eq!(rep.through, Some(2));
        let join = server.join_point();
        assert_eq!(join.through, 2);
        assert_eq!(join.clock, [("a".to_string(), 2)].into());
        let hp = |g: &SceneGraph| g.node("obj").and_then(|n| n.get("hp")?.as_number());
        assert_eq!(hp(&join.graph), Some(100.0));
        let ids: Vec<&str> = join.tail.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["b:3", "b:5"]);

        let tail = join.tail.clone();
        let mut client = Replica::from_base(join.graph, &join.clock, join.through);
        assert!(client.apply_owned(tail).rejected.is_empty());
        assert_eq!(client.to_json(), server.to_json());
        // A message late against the tail (lt 4 < 5) but above the base lands on both.
        let late = m("a", 3, 4, vec![Op::number_set("obj", "hp", 50.0)]);
        assert_eq!(server.apply_message(&late).accepted, 1);
        assert_eq!(client.apply_message(&late).accepted, 1);
        assert_eq!(client.to_json(), server.to_json());
        assert_eq!(hp(server.graph()), Some(49.0));
    }
}

//! `GraphStore`: the guide's examples (run from `examples/`), the edit-buffer rules
//! through the store, and the convergence property of several stores editing
//! concurrently (random ops, undo/redo, random delivery and ack order, offline
//! periods, compaction) against a server `Replica` and the sequential model.
//!
//! Seeded; scale with `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (see `support::proptest_config`).

use proptest::prelude::*;
use vuer_rtc::op::{Message, Op};
use vuer_rtc::replica::Replica;
use vuer_rtc::store::{GraphStore, Receipt, Snapshot, StoreEvent};

use crate::convergence::{edit_op, state};

#[path = "../examples/edit_buffer.rs"]
mod ex_edit_buffer;
#[path = "../examples/low_level.rs"]
mod ex_low_level;
#[path = "../examples/quick_start.rs"]
mod ex_quick_start;
#[path = "../examples/replica.rs"]
mod ex_replica;
#[path = "../examples/retry_compaction.rs"]
mod ex_retry_compaction;
#[path = "../examples/two_clients.rs"]
mod ex_two_clients;
#[path = "../examples/undo_redo.rs"]
mod ex_undo_redo;

#[test]
fn the_guide_examples_run_as_written() {
    ex_quick_start::main().unwrap();
    ex_two_clients::main().unwrap();
    ex_edit_buffer::main().unwrap();
    ex_undo_redo::main().unwrap();
    ex_retry_compaction::main().unwrap();
    ex_low_level::main().unwrap();
    ex_replica::main();
}

fn number(store: &GraphStore, key: &str, path: &str) -> Option<f64> {
    store.graph().node(key)?.get(path)?.as_number()
}

fn fixed_time() -> f64 {
    1.0
}

fn store(client: &str) -> GraphStore {
    GraphStore::new(client).with_time(fixed_time)
}

#[test]
fn pending_edits_keep_winning_while_remote_messages_arrive() {
    let mut alice = store("alice");
    let mut bob = store("bob");
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    alice.edit(Op::number_set("n", "x", 1.0)).unwrap();
    bob.receive(alice.commit("").unwrap()).unwrap();

    alice.edit(Op::number_set("n", "x", 100.0)).unwrap();
    alice.edit(Op::number_add("n", "y", 1.0)).unwrap();
    // Bob writes x and y several times, each newer than what alice had seen when
    // she started editing.
    for i in 0..3 {
        bob.edit(Op::number_set("n", "x", f64::from(i))).unwrap();
        bob.edit(Op::number_set("n", "y", 10.0)).unwrap();
        let m = bob.commit("").unwrap();
        assert_eq!(alice.receive(m).unwrap(), Receipt::Applied);
        assert_eq!(number(&alice, "n", "x"), Some(100.0), "pending set wins");
        assert_eq!(
            number(&alice, "n", "y"),
            Some(11.0),
            "pending add applies on top"
        );
    }
    let m = alice.commit("").unwrap();
    assert_eq!(m.lt, 5, "newer than everything seen");
    bob.receive(m).unwrap();
    assert_eq!(alice.graph().to_json(), bob.graph().to_json());
    assert_eq!(number(&bob, "n", "x"), Some(100.0));
}

#[test]
fn replaced_and_merged_edits_show_what_peers_will_compute() {
    let mut alice = store("alice");
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    alice.commit("");
    // set then add on one cell: the add replaces the set in the buffer, so the view
    // must not show set + add (the reference does).
    alice
        .edit(Op::vector3_set("n", "p", [5.0, 5.0, 5.0]))
        .unwrap();
    alice
        .edit(Op::vector3_add("n", "p", [1.0, 0.0, 0.0]))
        .unwrap();
    let view = alice.graph().to_json();
    let msg = alice.commit("").unwrap();
    assert_eq!(msg.ops, vec![Op::vector3_add("n", "p", [1.0, 0.0, 0.0])]);
    assert_eq!(alice.graph().to_json(), view);
    let mut peer = Replica::new();
    peer.apply_batch(&alice.replica().journaled_messages());
    assert_eq!(peer.to_json(), view);
}

#[test]
fn cancel_restores_the_pre_edit_graph_exactly() {
    let mut alice = store("alice");
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    alice.edit(Op::number_set("n", "x", 1.0)).unwrap();
    alice.commit("");
    let before = alice.graph().to_json();
    alice.edit(Op::node_insert("n", "child", "Mesh")).unwrap();
    alice.edit(Op::number_set("n", "x", 2.0)).unwrap();
    alice.edit(Op::node_remove("", "n")).unwrap();
    alice.cancel();
    assert_eq!(alice.graph().to_json(), before);
    assert!(alice.state().edits.is_empty());
    assert_eq!(alice.commit(""), None);
}

#[test]
fn undo_commits_pending_edits_first_and_redo_follows_undo_order() {
    let mut alice = store("alice");
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    alice.commit("");
    alice.edit(Op::number_add("n", "x", 1.0)).unwrap();
    alice.commit("");
    alice.edit(Op::number_add("n", "x", 10.0)).unwrap();
    let undo = alice.undo().unwrap(); // commits the +10, then undoes it
    assert_eq!(undo.ops, vec![Op::meta_undo("alice:3")]);
    assert_eq!(number(&alice, "n", "x"), Some(1.0));
    alice.undo().unwrap(); // undoes the +1
    assert_eq!(number(&alice, "n", "x"), None);
    let redo = alice.redo().unwrap(); // the most recently undone: +1
    assert_eq!(redo.ops, vec![Op::meta_redo("alice:2")]);
    assert_eq!(number(&alice, "n", "x"), Some(1.0));
    alice.redo().unwrap();
    assert_eq!(number(&alice, "n", "x"), Some(11.0));
    assert_eq!(alice.redo(), None);
    // Undo and redo messages are unacked messages like any other.
    assert_eq!(alice.unacked_messages().len(), 7);
}

#[test]
fn receive_ignores_duplicates_and_reports_rejections_without_moving_lt() {
    let mut alice = store("alice");
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    let m = alice.commit("").unwrap();
    let mut bob = store("bob");
    assert_eq!(bob.receive(m.clone()).unwrap(), Receipt::Applied);
    assert_eq!(bob.receive(m.clone()).unwrap(), Receipt::Duplicate);
    // Another message at alice's (lt, client): rejected, nothing applied.
    let mut clash = m.clone();
    clash.id = "other".into();
    clash.clock.insert("alice".into(), 2);
    assert!(bob.receive(clash).is_err());
    assert_eq!(bob.lt(), 1);
    assert_eq!(bob.graph().to_json(), alice.graph().to_json());
    assert!(!bob.ack("alice:1"), "not bob's message");
}

#[test]
fn a_store_restarted_under_the_same_id_continues_its_sequence() {
    let mut server = Replica::new();
    let mut first = store("alice");
    first.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    server.apply_message(&first.commit("").unwrap());
    first.edit(Op::number_set("n", "x", 1.0)).unwrap();
    server.apply_message(&first.commit("").unwrap());
    // Bob claims to have seen far more of alice than she sent: ignored.
    let mut bob = store("bob");
    bob.edit(Op::number_set("n", "y", 1.0)).unwrap();
    let mut b = bob.commit("").unwrap();
    b.clock.insert("alice".into(), 99);
    assert_eq!(server.apply_message(&b).accepted, 1);

    let mut again = store("alice");
    let held: Vec<Message> = server.journaled_messages();
    again.receive_batch(held);
    again.edit(Op::number_set("n", "x", 2.0)).unwrap();
    let m = again.commit("").unwrap();
    assert_eq!(
        m.clock["alice"], 3,
        "continues after the earlier session's 2"
    );
    assert_eq!(
        server.apply_message(&m).accepted,
        1,
        "not dropped as a copy"
    );
    assert_eq!(server.to_json(), again.graph().to_json());
}

#[test]
fn stores_are_send() {
    fn send<T: Send>() {}
    send::<GraphStore>();
}

#[test]
fn listeners_hear_every_change_until_unsubscribed() {
    use std::sync::{Arc, Mutex};
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let mut alice = store("alice");
    let sub = alice.subscribe(move |e| sink.lock().unwrap().push(e.clone()));
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    let m = alice.commit("").unwrap();
    alice.ack(&m.id);
    alice.undo().unwrap();
    drop(sub);
    alice.redo().unwrap();
    let got = events.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            StoreEvent::Edited,
            StoreEvent::Committed {
                id: "alice:1".into()
            },
            StoreEvent::Acked {
                id: "alice:1".into()
            },
            StoreEvent::UndoRedo {
                target: "alice:1".into(),
                id: "alice:2".into(),
                undo: true
            },
        ]
    );
}

#[test]
fn init_from_server_joins_mid_session_and_keeps_editing() {
    let mut alice = store("alice");
    let mut server = Replica::new();
    alice.edit(Op::node_insert("", "n", "Mesh")).unwrap();
    alice.edit(Op::number_set("n", "hp", 100.0)).unwrap();
    let a1 = alice.commit("").unwrap();
    server.apply_message(&a1);
    alice.edit(Op::number_add("n", "hp", -5.0)).unwrap();
    let a2 = alice.commit("").unwrap();
    let snapshot = Snapshot::of(&server);
    server.apply_message(&a2);
    let mut carol = GraphStore::init_from_server("carol", snapshot, vec![a1.clone(), a2]).unwrap();
    assert_eq!(carol.graph().to_json(), server.to_json());
    assert_eq!(carol.lt(), 2);
    assert_eq!(carol.receive(a1).unwrap(), Receipt::Duplicate);
    carol.edit(Op::number_add("n", "hp", -10.0)).unwrap();
    let c = carol.commit("").unwrap();
    assert_eq!(c.lt, 3);
    assert_eq!(c.clock.get("alice"), Some(&2));
    server.apply_message(&c);
    alice.receive(c).unwrap();
    assert_eq!(number(&alice, "n", "hp"), Some(85.0));
    assert_eq!(carol.graph().to_json(), server.to_json());
}

// ---------------------------------------------------------------------------
// The multi-store property.

const CLIENTS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Clone, Debug)]
enum Action {
    Edit(usize, Op),
    Commit(usize),
    Cancel(usize),
    Undo(usize),
    Redo(usize),
    /// Deliver item `k` (mod length) of client `i`'s uplink to the server.
    Up(usize, usize),
    /// Deliver item `k` (mod length) of client `i`'s downlink to its store.
    Down(usize, usize),
    /// Go offline (both links drop what is in flight) or come back (resend unacked;
    /// the server resends its journal).
    Toggle(usize),
    Compact(usize),
}

fn action(undo: bool, compact: bool) -> impl Strategy<Value = Action> {
    let c = || 0..CLIENTS.len();
    let undo_w = if undo { 1 } else { 0 };
    let compact_w = if compact { 3 } else { 0 };
    prop_oneof![
        8 => (c(), edit_op()).prop_map(|(i, op)| Action::Edit(i, op)),
        6 => c().prop_map(Action::Commit),
        1 => c().prop_map(Action::Cancel),
        undo_w => c().prop_map(Action::Undo),
        undo_w => c().prop_map(Action::Redo),
        10 => (c(), any::<usize>()).prop_map(|(i, k)| Action::Up(i, k)),
        12 => (c(), any::<usize>()).prop_map(|(i, k)| Action::Down(i, k)),
        1 => c().prop_map(Action::Toggle),
        compact_w => c().prop_map(Action::Compact),
    ]
}

enum Down {
    Msg(Message),
    Ack(String),
}

struct Client {
    store: GraphStore,
    up: Vec<Message>,
    down: Vec<Down>,
    online: bool,
    // Every message the store holds (sent or accepted), for the model.
    held: Vec<Message>,
}

struct World {
    clients: Vec<Client>,
    server: Replica,
    server_msgs: Vec<Message>,
}

impl World {
    fn new(register: bool) -> World {
        let clients = CLIENTS
            .iter()
            .map(|c| {
                let mut store = store(c);
                if register {
                    for other in CLIENTS {
                        store.register_client(other);
                    }
                }
                Client {
                    store,
                    up: Vec::new(),
                    down: Vec::new(),
                    online: true,
                    held: Vec::new(),
                }
            })
            .collect();
        World {
            clients,
            server: Replica::new(),
            server_msgs: Vec::new(),
        }
    }

    fn sent(&mut self, i: usize, m: Option<Message>) {
        let Some(m) = m else { return };
        let c = &mut self.clients[i];
        c.held.push(m.clone());
        if c.online {
            c.up.push(m);
        }
    }

    fn up(&mut self, i: usize, k: usize) {
        let c = &mut self.clients[i];
        if !c.online || c.up.is_empty() {
            return;
        }
        let m = c.up.remove(k % c.up.len());
        let report = self.server.apply_message(&m);
        assert!(
            report.rejected.is_empty(),
            "server rejected {:?}",
            report.rejected
        );
        if report.accepted == 1 {
            self.server_msgs.push(m.clone());
            for (j, other) in self.clients.iter_mut().enumerate() {
                if j != i && other.online {
                    other.down.push(Down::Msg(m.clone()));
                }
            }
        }
        self.clients[i].down.push(Down::Ack(m.id));
    }

    fn down(&mut self, i: usize, k: usize) {
        let c = &mut self.clients[i];
        if !c.online || c.down.is_empty() {
            return;
        }
        match c.down.remove(k % c.down.len()) {
            Down::Msg(m) => {
                let r = c.store.receive(m.clone());
                assert!(r.is_ok(), "{} rejected {}: {r:?}", CLIENTS[i], m.id);
                if r == Ok(Receipt::Applied) {
                    c.held.push(m);
                }
            }
            Down::Ack(id) => {
                c.store.ack(&id);
            }
        }
    }

    fn toggle(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.online {
            c.online = false;
            c.up.clear();
            c.down.clear();
        } else {
            c.online = true;
            c.up = c.store.unacked_messages();
            c.down = self.server_msgs.iter().cloned().map(Down::Msg).collect();
        }
    }

    fn run(&mut self, a: Action) {
        match a {
            Action::Edit(i, op) => {
                let _ = self.clients[i].store.edit(op);
            }
            Action::Commit(i) => {
                let m = self.clients[i].store.commit("");
                self.sent(i, m);
            }
            Action::Cancel(i) => self.clients[i].store.cancel(),
            Action::Undo(i) => {
                let m = self.clients[i].store.undo();
                // An undo with pending edits commits them first.
                if let Some(m) = &m
                    && let Some(committed) = self.clients[i]
                        .store
                        .replica()
                        .journaled_message(&format!("{}:{}", CLIENTS[i], m.lt - 1))
                    && !self.clients[i].held.iter().any(|h| h.id == committed.id)
                {
                    let committed = committed.clone();
                    self.sent(i, Some(committed));
                }
                self.sent(i, m);
            }
            Action::Redo(i) => {
                let m = self.clients[i].store.redo();
                self.sent(i, m);
            }
            Action::Up(i, k) => self.up(i, k),
            Action::Down(i, k) => self.down(i, k),
            Action::Toggle(i) => self.toggle(i),
            Action::Compact(i) => {
                self.clients[i].store.compact();
            }
        }
    }

    /// The store's view equals the model of what it holds plus its pending edits
    /// committed as its next message.
    fn check_view(&self, i: usize) -> Result<(), TestCaseError> {
        let c = &self.clients[i];
        let mut msgs = c.held.clone();
        let ops = c.store.state().edits.ops().to_vec();
        if !ops.is_empty() {
            msgs.push(Message {
                id: format!("{}:pending", CLIENTS[i]),
                client: CLIENTS[i].to_owned(),
                clock: Default::default(),
                lt: c.store.lt() + 1,
                ts: fixed_time(),
                ops,
            });
        }
        prop_assert_eq!(
            c.store.graph().to_json(),
            state(&msgs),
            "view of {}",
            CLIENTS[i]
        );
        Ok(())
    }

    /// Everyone online, pending edits committed, unacked resent, all links drained.
    fn settle(&mut self) {
        for i in 0..self.clients.len() {
            if !self.clients[i].online {
                self.toggle(i);
            }
            let m = self.clients[i].store.commit("");
            self.sent(i, m);
        }
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while !self.clients[i].up.is_empty() {
                    self.up(i, 0);
                    moved = true;
                }
                while !self.clients[i].down.is_empty() {
                    self.down(i, 0);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
}

fn converge(actions: Vec<Action>, register: bool) -> Result<(), TestCaseError> {
    let mut w = World::new(register);
    for a in actions {
        let who = match &a {
            Action::Edit(i, _)
            | Action::Commit(i)
            | Action::Cancel(i)
            | Action::Undo(i)
            | Action::Redo(i)
            | Action::Up(i, _)
            | Action::Down(i, _)
            | Action::Toggle(i)
            | Action::Compact(i) => *i,
        };
        w.run(a);
        w.check_view(who)?;
    }
    w.settle();
    let model = state(&w.server_msgs);
    prop_assert_eq!(w.server.to_json(), model.clone(), "server");
    for (i, c) in w.clients.iter().enumerate() {
        prop_assert_eq!(
            c.store.graph().to_json(),
            model.clone(),
            "store {}",
            CLIENTS[i]
        );
        prop_assert!(c.store.unacked_messages().is_empty());
    }
    // Late joiners: from the server's journal (reversed), and from its snapshot.
    let mut journal = w.server_msgs.clone();
    journal.reverse();
    let joiner = GraphStore::init_from_server("dave", Snapshot::default(), journal);
    prop_assert!(joiner.is_ok());
    prop_assert_eq!(
        joiner.map(|j| j.graph().to_json()).unwrap_or_default(),
        model.clone()
    );
    let joiner =
        GraphStore::init_from_server("erin", Snapshot::of(&w.server), w.server_msgs.clone());
    prop_assert!(joiner.is_ok());
    prop_assert_eq!(
        joiner.map(|j| j.graph().to_json()).unwrap_or_default(),
        model
    );
    Ok(())
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn stores_converge_with_undo_redo_and_offline_periods(
        actions in prop::collection::vec(action(true, false), 1..160)
    ) {
        converge(actions, false)?;
    }

    #[test]
    fn stores_converge_while_compacting(
        actions in prop::collection::vec(action(false, true), 1..160)
    ) {
        converge(actions, true)?;
    }
}

#[test]
fn text_edits_are_committed_in_crdt_form_and_converge() {
    use vuer_rtc::op::{OpKind, TextEdit};
    let text = |s: &GraphStore| {
        s.graph()
            .node("doc")
            .and_then(|n| n.get("body"))
            .and_then(|v| v.as_str().map(|c| c.into_owned()))
    };
    let at = |position: u64, length: u64, value: &str| TextEdit::At {
        position,
        length,
        value: value.into(),
    };
    let mut alice = store("alice");
    let mut bob = store("bob");
    alice.edit(Op::node_insert("", "doc", "Doc")).unwrap();
    alice
        .edit(Op::new("doc", "body", OpKind::TextInit("Hello".into())))
        .unwrap();
    bob.receive(alice.commit("").unwrap()).unwrap();
    // Concurrent edits of one text: alice types at the end, bob replaces "Hello".
    alice
        .edit(Op::new(
            "doc",
            "body",
            OpKind::TextInsert(at(5, 0, " world")),
        ))
        .unwrap();
    bob.edit(Op::new(
        "doc",
        "body",
        OpKind::TextReplace(at(0, 5, "Howdy")),
    ))
    .unwrap();
    assert_eq!(text(&alice).as_deref(), Some("Hello world"));
    assert_eq!(text(&bob).as_deref(), Some("Howdy"));
    let a = alice.commit("").unwrap();
    let b = bob.commit("").unwrap();
    for m in [&a, &b] {
        assert!(
            matches!(
                &m.ops[0].kind,
                OpKind::TextInsert(TextEdit::Crdt { .. })
                    | OpKind::TextReplace(TextEdit::Crdt { .. })
            ),
            "sent in CRDT form: {:?}",
            m.ops[0]
        );
    }
    alice.receive(b).unwrap();
    bob.receive(a).unwrap();
    assert_eq!(text(&alice), text(&bob));
    assert_eq!(text(&alice).as_deref(), Some("Howdy world"));
}

#[test]
fn text_ids_never_repeat_after_an_undo() {
    use vuer_rtc::op::{OpKind, TextEdit};
    let ins = |p: u64, v: &str| {
        Op::new(
            "doc",
            "body",
            OpKind::TextInsert(TextEdit::At {
                position: p,
                length: 0,
                value: v.into(),
            }),
        )
    };
    let mut alice = store("alice");
    let mut bob = store("bob");
    alice.edit(Op::node_insert("", "doc", "Doc")).unwrap();
    let mut sent = vec![alice.commit("").unwrap()];
    alice.edit(ins(0, "abc")).unwrap();
    sent.push(alice.commit("").unwrap());
    sent.push(alice.undo().unwrap());
    alice.edit(ins(0, "xyz")).unwrap();
    sent.push(alice.commit("").unwrap());
    sent.push(alice.redo().unwrap());
    for m in sent {
        bob.receive(m).unwrap();
    }
    let text = |s: &GraphStore| {
        s.graph()
            .node("doc")
            .and_then(|n| n.get("body"))
            .and_then(|v| v.as_str().map(|c| c.into_owned()))
    };
    let t = text(&alice).unwrap();
    assert_eq!(t.len(), 6, "both inserts survive the redo: {t:?}");
    assert_eq!(text(&bob), Some(t));
}

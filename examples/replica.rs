//! The README's Replica section: a `Replica` takes messages in any order, in batches,
//! with duplicates, and ends in the sequential model's state. Replica `a` gets the
//! messages out of order in three batches, replica `b` all at once; both show the
//! same bytes.
//!
//! Run it with `cargo run --example replica`.

use vuer_rtc::{Message, Op, Replica};

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() {
    // `m(client, lt, ops)` builds a message with id "client:lt".
    let m = |client: &str, lt: u64, ops: Vec<Op>| Message {
        id: format!("{client}:{lt}"),
        client: client.into(),
        clock: Default::default(),
        lt,
        ts: lt as f64,
        ops,
    };
    let create = m(
        "alice",
        1,
        vec![
            Op::node_insert("", "obj", "Mesh"),
            Op::number_set("obj", "health", 100.0),
        ],
    );
    let hit = m("bob", 2, vec![Op::number_add("obj", "health", -25.0)]);
    let heal = m("alice", 3, vec![Op::number_set("obj", "health", 50.0)]);
    let undo = m("carol", 4, vec![Op::meta_undo("alice:3")]);

    // Replica `a` gets the messages out of order, in three batches, with a duplicate.
    let mut a = Replica::new();
    a.apply_batch(std::slice::from_ref(&heal)); // waits: `obj` does not exist yet
    let report = a.apply_batch(&[undo.clone(), create.clone()]);
    assert_eq!((report.late, report.toggled), (1, 1)); // `create` is late; `heal` is undone
    let report = a.apply_batch(&[hit.clone(), hit.clone()]);
    assert_eq!((report.accepted, report.late, report.duplicates), (1, 1, 1));

    // Replica `b` gets them all at once, in another order.
    let mut b = Replica::new();
    b.apply_batch(&[hit, undo, create, heal]);

    // Both show 100 − 25 = 75, with the heal undone, byte for byte.
    let health = |r: &Replica| r.graph().node("obj")?.get("health")?.as_number();
    assert_eq!(health(&a), Some(75.0));
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.state_hash(), b.state_hash());
    println!("health {:?} on both replicas", health(&a));
}

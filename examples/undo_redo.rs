//! The Python guide's Undo / Redo section, with a concurrent edit of another client in
//! between: undo drops alice's message wherever it sits in the order, and every
//! replica that gets the `meta.undo` message agrees.
//!
//! Run it with `cargo run --example undo_redo`.

use std::error::Error;

use vuer_rtc::Op;
use vuer_rtc::store::GraphStore;

fn x(store: &GraphStore) -> Option<f64> {
    store.graph().node("n")?.get("x")?.as_number()
}

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    let mut alice = GraphStore::new("alice");
    let mut bob = GraphStore::new("bob");

    alice.edit(Op::node_insert("", "n", "Mesh"))?;
    alice.edit(Op::number_set("n", "x", 1.0))?;
    bob.receive(alice.commit("create").ok_or("nothing committed")?)?;

    alice.edit(Op::number_set("n", "x", 10.0))?;
    let set_x = alice.commit("set x").ok_or("nothing committed")?;
    // Bob adds concurrently (same Lamport time as alice's set: "bob" > "alice", so his
    // add comes after it in the order).
    bob.edit(Op::number_add("n", "x", 5.0))?;
    let add = bob.commit("add").ok_or("nothing committed")?;
    alice.receive(add)?;
    bob.receive(set_x)?;
    assert_eq!((x(&alice), x(&bob)), (Some(15.0), Some(15.0)));

    let undo = alice.undo().ok_or("nothing to undo")?; // x reverts: 1 + 5
    bob.receive(undo)?;
    assert_eq!((x(&alice), x(&bob)), (Some(6.0), Some(6.0)));

    let redo = alice.redo().ok_or("nothing to redo")?; // x = 10 + 5 again
    bob.receive(redo)?;
    assert_eq!((x(&alice), x(&bob)), (Some(15.0), Some(15.0)));
    println!("x = {:?} on both", x(&alice));
    Ok(())
}

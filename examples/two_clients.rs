//! The Python guide's Two-Client example: alice and bob damage one object at the same
//! time and both converge to health 100 − 25 − 10 = 65.
//!
//! Run it with `cargo run --example two_clients`.

use std::error::Error;
use std::sync::mpsc;

use serde_json::json;
use vuer_rtc::store::{GraphStore, create_graph};
use vuer_rtc::{Message, Op};

fn health(store: &GraphStore) -> Option<f64> {
    store.state().graph.node("obj")?.get("health")?.as_number()
}

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    // Each store's `on_send` pushes into its outbox.
    let (to_a, outbox_a) = mpsc::channel::<Message>();
    let (to_b, outbox_b) = mpsc::channel::<Message>();
    let mut store_a = create_graph("alice", move |msg| {
        let _ = to_a.send(msg.clone());
    });
    let mut store_b = create_graph("bob", move |msg| {
        let _ = to_b.send(msg.clone());
    });

    // Alice creates a node.
    store_a.edit(Op::from_json(&json!({
        "otype": "node.insert",
        "key": "",
        "path": "children",
        "value": {"key": "obj", "tag": "Mesh", "health": 100},
    }))?)?;
    let msg = store_a.commit("create obj").ok_or("nothing committed")?;

    // Bob receives Alice's message.
    store_b.receive(msg)?;

    // Both edit concurrently.
    store_a.edit(Op::number_add("obj", "health", -25.0))?;
    store_a.commit("damage");
    store_b.edit(Op::number_add("obj", "health", -10.0))?;
    store_b.commit("poison");

    // Exchange messages (the create message is a duplicate for bob: ignored).
    for msg in outbox_b.try_iter() {
        store_a.receive(msg)?;
    }
    for msg in outbox_a.try_iter() {
        store_b.receive(msg)?;
    }

    // Both converge: 100 + (-25) + (-10) = 65.
    println!("alice: {:?}, bob: {:?}", health(&store_a), health(&store_b));
    assert_eq!(health(&store_a), Some(65.0));
    assert_eq!(health(&store_b), Some(65.0));
    Ok(())
}

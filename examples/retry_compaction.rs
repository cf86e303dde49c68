//! The Python guide's Retry and Compaction section: messages the server never
//! acknowledged are sent again after a reconnect (the server drops copies it has), and
//! acknowledged, stable messages are compacted into the base.
//!
//! Run it with `cargo run --example retry_compaction`.

use std::error::Error;

use vuer_rtc::replica::Replica;
use vuer_rtc::store::{GraphStore, get_unacked_messages};
use vuer_rtc::{Message, Op};

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    let mut server = Replica::new();
    let mut store = GraphStore::new("alice");

    store.edit(Op::node_insert("", "n", "Mesh"))?;
    let first = store.commit("create").ok_or("nothing committed")?;
    server.apply_message(&first);
    store.ack(&first.id);

    // This one is lost on the way: the connection dropped.
    store.edit(Op::number_add("n", "clicks", 1.0))?;
    store.commit("click");
    assert_eq!(server.journal().len(), 1);

    // Retry unacknowledged messages (e.g. after reconnect).
    let unacked: Vec<Message> = get_unacked_messages(&store.state());
    assert_eq!(unacked.len(), 1);
    for msg in unacked {
        let report = server.apply_message(&msg);
        assert_eq!(report.accepted, 1);
        store.ack(&msg.id);
    }
    assert!(store.unacked_messages().is_empty());
    assert_eq!(server.to_json(), store.graph().to_json());

    // Compact acknowledged journal entries into the base.
    let report = store.compact();
    println!(
        "compacted {} messages through lt {:?}",
        report.messages, report.through
    );
    assert_eq!(report.messages, 2);
    assert_eq!(store.state().journal.len(), 0);
    assert_eq!(server.to_json(), store.graph().to_json());
    Ok(())
}

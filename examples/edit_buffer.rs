//! The Python guide's Edit Buffer section: three `vector3.add` edits on one
//! `key:path` merge into one op, `[1, 1, 1]`; `cancel()` restores the pre-edit view.
//!
//! Run it with `cargo run --example edit_buffer`.

use std::error::Error;

use vuer_rtc::Op;
use vuer_rtc::store::GraphStore;

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    let mut store = GraphStore::new("alice");
    store.edit(Op::node_insert("", "n", "Mesh"))?;
    store.commit("create n");

    store.edit(Op::vector3_add("n", "pos", [1.0, 0.0, 0.0]))?;
    store.edit(Op::vector3_add("n", "pos", [0.0, 1.0, 0.0]))?;
    store.edit(Op::vector3_add("n", "pos", [0.0, 0.0, 1.0]))?;

    // Only one op in the buffer: value = [1, 1, 1]; the view shows it already.
    let edits = store.state().edits;
    assert_eq!(edits.len(), 1);
    assert_eq!(edits.ops(), &[Op::vector3_add("n", "pos", [1.0, 1.0, 1.0])]);
    let pos = |s: &GraphStore| {
        s.graph()
            .node("n")
            .and_then(|n| n.get("pos"))
            .and_then(|v| v.as_vec3())
    };
    assert_eq!(pos(&store), Some([1.0, 1.0, 1.0]));

    let msg = store.commit("combined move").ok_or("nothing committed")?;
    println!("committed {} with {} op", msg.id, msg.ops.len());
    assert_eq!(msg.ops.len(), 1);

    // Use cancel() to discard uncommitted edits and revert to the pre-edit graph.
    store.edit(Op::vector3_set("n", "pos", [9.0, 9.0, 9.0]))?;
    assert_eq!(pos(&store), Some([9.0, 9.0, 9.0]));
    store.cancel();
    assert_eq!(pos(&store), Some([1.0, 1.0, 1.0]));
    Ok(())
}

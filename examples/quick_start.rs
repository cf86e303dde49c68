//! The Python guide's Quick Start, in Rust: build a scene in a client store, edit it,
//! read it back.
//!
//! Run it with `cargo run --example quick_start`.

use std::error::Error;

use serde_json::json;
use vuer_rtc::Op;
use vuer_rtc::store::create_graph;

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    // Create a client store; `on_send` would hand each message to the network.
    let mut store = create_graph("client-1", |msg| {
        println!("send {} ({} ops)", msg.id, msg.ops.len());
    });

    // Build a scene (ops written as the guide writes them)...
    store.edit(Op::from_json(&json!({
        "otype": "node.insert",
        "key": "",            // parent key ("" = root)
        "path": "children",
        "value": {"key": "scene", "tag": "Scene", "name": "My Scene"},
    }))?)?;
    store.edit(Op::from_json(&json!({
        "otype": "node.insert",
        "key": "scene",
        "path": "children",
        "value": {"key": "cube", "tag": "Mesh", "position": [0, 1, 0], "opacity": 1.0},
    }))?)?;
    store.commit("create scene");

    // ...and edit properties (typed constructors).
    store.edit(Op::vector3_set("cube", "position", [3.0, 2.0, 1.0]))?;
    store.edit(Op::number_set("cube", "opacity", 0.5))?;
    store.commit("move and fade cube");

    // Read state.
    let graph = store.state().graph;
    let cube = graph.node("cube").ok_or("no cube")?;
    let position = cube.get("position").and_then(|v| v.as_vec3());
    println!("cube.position = {position:?}"); // Some([3.0, 2.0, 1.0])
    assert_eq!(position, Some([3.0, 2.0, 1.0]));
    assert_eq!(cube.get("opacity").and_then(|v| v.as_number()), Some(0.5));
    Ok(())
}

//! The Python guide's Quick Start and Two-Client example, written against the
//! low-level API (the guide's "Low-Level Operations": `apply_operation`,
//! `apply_message`, `apply_messages`, `create_empty_graph`) instead of the store.
//!
//! Run it with `cargo run --example low_level`.
//!
//! - Quick Start: build a scene with `apply_operation`, edit it with a `Message` and
//!   `apply_message`, and read a typed property back.
//! - Two clients: alice and bob each produce `Message`s. The messages travel as JSON
//!   bytes. Two replicas receive them in different orders, and both converge to
//!   health 100 − 25 − 10 = 65.

use std::collections::BTreeMap;
use std::error::Error;

use serde_json::json;
use vuer_rtc::column::ValueRef;
use vuer_rtc::op::Limits;
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{
    Message, Op, OpMeta, SceneGraph, apply_message, apply_messages, apply_operation,
    create_empty_graph,
};

/// Reads `cube.position`. `?` on `Option` keeps lookups short.
fn cube_position(graph: &SceneGraph) -> Option<ValueRef<'_>> {
    graph.node("cube")?.get("position")
}

/// Reads `obj.health` as a number.
fn health(graph: &SceneGraph) -> Option<f64> {
    graph.node("obj")?.get("health")?.as_number()
}

/// A message from `client` at Lamport time `lt`, with the id `client:lt`.
fn message(client: &str, lt: u64, ts: f64, ops: Vec<Op>) -> Message {
    Message {
        id: format!("{client}:{lt}"),
        client: client.to_owned(),
        clock: BTreeMap::from([(client.to_owned(), lt)]),
        lt,
        ts,
        ops,
    }
}

fn quick_start() -> Result<(), Box<dyn Error>> {
    let mut graph = create_empty_graph();

    // Build a scene: one op at a time, each stamped with its message's envelope.
    let meta = OpMeta {
        client: "client-1",
        lt: 1,
        ts: 1.0,
    };
    // `Op::from_json` takes the seed's dicts as they are, legacy `otype` included.
    let scene = Op::from_json(&json!({
        "otype": "node.insert",
        "key": "",
        "path": "children",
        "value": {"key": "scene", "tag": "Scene", "name": "My Scene"},
    }))?;
    // The typed constructors need no JSON for the op itself.
    let cube = Op::node_insert_with(
        "scene",
        "cube",
        "Mesh",
        BTreeMap::from([
            ("position".to_owned(), json!([0, 1, 0])),
            ("opacity".to_owned(), json!(1.0)),
        ]),
    );
    for op in [&scene, &cube] {
        if let Some(warning) = apply_operation(&mut graph, op, &meta) {
            return Err(format!("{} did nothing: {warning}", op.kind.ot()).into());
        }
    }

    // Edit properties: a whole message ("move and fade cube") at a later Lamport time.
    let edit = message(
        "client-1",
        2,
        2.0,
        vec![
            Op::vector3_set("cube", "position", [3.0, 2.0, 1.0]),
            Op::number_set("cube", "opacity", 0.5),
        ],
    );
    let report = apply_message(&mut graph, &edit);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // Read state: a typed value, not JSON.
    let position = cube_position(&graph).ok_or("cube has no position")?;
    assert_eq!(position, ValueRef::Vec3([3.0, 2.0, 1.0]));
    println!("cube.position = {}", position.to_json()); // [3,2,1]
    println!("scene = {}", graph.to_json());
    Ok(())
}

fn two_clients() -> Result<(), Box<dyn Error>> {
    // Alice creates a node.
    let create = message(
        "alice",
        1,
        10.0,
        vec![Op::node_insert_with(
            "",
            "obj",
            "Mesh",
            BTreeMap::from([("health".to_owned(), json!(100))]),
        )],
    );

    // Bob receives it (as bytes, the way a server would relay it).
    let bytes = wire::encode_message(&create, Format::Json);
    let received = wire::decode_message(&bytes, Format::Json, &Limits::default())?;
    assert_eq!(received, create);

    // Both edit concurrently: same Lamport time 2, neither has seen the other's edit.
    let damage = message(
        "alice",
        2,
        11.0,
        vec![Op::number_add("obj", "health", -25.0)],
    );
    let poison = message("bob", 2, 11.5, vec![Op::number_add("obj", "health", -10.0)]);

    // Exchange messages: each replica receives the same set in a different order
    // (replica B even gets the poison before the node exists, and a duplicate).
    let mut replica_a = create_empty_graph();
    apply_messages(
        &mut replica_a,
        &[create.clone(), damage.clone(), poison.clone()],
    );
    let mut replica_b = create_empty_graph();
    let report = apply_messages(&mut replica_b, &[poison.clone(), received, damage, poison]);
    assert_eq!(report.duplicates, 1);

    // Both converge: 100 + (−25) + (−10) = 65, and the whole scenes are identical.
    assert_eq!(health(&replica_a), Some(65.0));
    assert_eq!(health(&replica_b), Some(65.0));
    assert_eq!(replica_a.to_json(), replica_b.to_json());
    println!(
        "obj.health on both replicas = {}",
        health(&replica_a).unwrap_or(f64::NAN)
    );
    Ok(())
}

/// Runs the example (also run by `cargo test`, from `tests/store.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    quick_start()?;
    two_clients()
}

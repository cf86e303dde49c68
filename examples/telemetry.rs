//! The README's Telemetry section: a producer embedded in the process moves nodes
//! through a `Writer` (typed writes, no JSON, no owned ops), each commit is one
//! message a peer receives, and a renderer reads only the cells that changed.
//!
//! Run it with `cargo run --example telemetry`.

use std::error::Error;

use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Message, Op, Replica};

/// Runs the example (also run by `cargo test`, from `tests/writer.rs`).
pub fn main() -> Result<(), Box<dyn Error>> {
    let scene = Message {
        id: "robot:1".into(),
        client: "robot".into(),
        clock: [("robot".to_string(), 1)].into(),
        lt: 1,
        ts: 0.0,
        ops: vec![
            Op::node_insert("", "arm", "Mesh"),
            Op::node_insert("", "gripper", "Mesh"),
        ],
    };
    let mut robot = Replica::new();
    let mut viewer = Replica::new();
    robot.apply_message(&scene);
    viewer.apply_message(&scene);
    robot.take_changes(); // the renderer has drawn the scene once

    // Handles are looked up once, then every write is a 32-byte record.
    let (arm, gripper) = (robot.key_id("arm"), robot.key_id("gripper"));
    let (position, rotation) = (robot.path_id("position"), robot.path_id("rotation"));
    let mut w = robot.writer("robot");
    for tick in 1..=3u8 {
        let t = f32::from(tick);
        w.set_vec3(arm, position, [t, 0.0, 0.0]);
        w.set_quat(gripper, rotation, [0.0, 0.0, 0.0, 1.0]);
        // One message per tick: stamped, journaled, applied as a receiver would.
        let sent = robot
            .commit(&mut w, f64::from(tick))?
            .ok_or("nothing to commit")?;
        // A peer gets it as bytes, like any message.
        let msg = robot.journaled_message(&sent.id).ok_or("not journaled")?;
        viewer.apply_bytes(
            &wire::encode_message(&msg, Format::MessagePack),
            Format::MessagePack,
        );
    }

    // The renderer's frame: per column, the rows to redraw.
    let changes = robot.take_changes();
    let g = robot.graph();
    let arm_row = g.row_of("arm").ok_or("no arm")?;
    assert!(changes.contains(position, arm_row));
    assert_eq!(changes.cells(), 2); // arm.position and gripper.rotation
    let pos = g.node("arm").and_then(|n| n.get("position")?.as_vec3());
    assert_eq!(pos, Some([3.0, 0.0, 0.0]));
    assert!(robot.take_changes().is_empty()); // nothing since
    assert_eq!(robot.to_json(), viewer.to_json());
    Ok(())
}

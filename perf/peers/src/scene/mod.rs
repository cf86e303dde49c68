//! Workload A of the side-by-side comparison: a flat scene of 10,000 nodes, then
//! 100,000 messages × 10 property writes from 1,000 clients, through vuer-rtc, yrs,
//! loro and automerge, each in its own natural model of a scene and its own update
//! encoding ([`vuer_rtc::workload::SceneA`] gives every system identical writes).
//!
//! - `model.rs`: the [`model::Scene`] trait each system implements, the workload, the
//!   result records;
//! - `run.rs`: what one system's child process measures (untimed setup, timed rows,
//!   verification, memory, snapshot, client-count scaling);
//! - `driver.rs`: the command line, one child process per system, the tables;
//! - `vuer.rs`, `yrs.rs`, `loro.rs`, `automerge.rs`: the systems.
//!
//! Invariant: every timed row starts from a replica that holds the base scene and
//! nothing else, built outside the timer, and its final state is checked against
//! [`vuer_rtc::workload::SceneA::expected`] outside the timer.

mod automerge;
mod driver;
mod loro;
mod model;
mod run;
mod vuer;
mod yrs;

pub use driver::main;

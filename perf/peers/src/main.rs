//! A dev-only harness that runs vuer-rtc next to other Rust CRDT crates (diamond-types,
//! yrs, loro, automerge) in one process, on one machine, with one allocator.
//!
//! Two workloads:
//! - `text` (the default): public editing traces through each text CRDT (`text.rs`);
//! - `scene`: workload A, a 10,000-node scene graph with 1,000,000 property writes from
//!   1,000 clients, through vuer-rtc, yrs, loro and automerge (`scene/`).
//!
//! Usage:
//! - `cargo run --release -- [text] [--runs N] [--engine NAME ...] [trace-name ...]`
//! - `cargo run --release -- scene [--quick] [--messages N] [--runs R] [--system NAME ...]
//!   [--json FILE] [--charts DIR] [--no-scaling]`
//!
//! `alloc.rs` installs the counting allocator; `chart.rs` draws the PNG charts.

mod alloc;
mod chart;
mod scene;
mod text;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("scene") => {
            args.next();
            scene::main(args);
        }
        Some("text") => {
            args.next();
            text::main(args);
        }
        _ => text::main(args),
    }
}

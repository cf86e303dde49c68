//! The guide's Two-Client example over the network: a sync server in this process
//! (memory storage, a free port), and alice and bob as `SyncClient`s. Both damage one
//! object at the same time and both converge to health 100 − 25 − 10 = 65, with the
//! same state hash as the server.
//!
//! Run it with `cargo run --example serve_and_connect` (also run by `cargo test`, from
//! `tests/server.rs`). Against a running `vuer-rtc serve`, connect the clients to its
//! URL instead.

use std::error::Error;
use std::time::Duration;

use serde_json::json;
use vuer_rtc::Op;
use vuer_rtc::client::{ClientOptions, SyncClient};
use vuer_rtc::server::{self, ServerConfig, Storage};

const WAIT: Duration = Duration::from_secs(10);

fn health(c: &SyncClient) -> Option<f64> {
    c.with_store(|s| s.graph().node("obj")?.get("health")?.as_number())
}

/// Runs the example.
pub async fn run() -> Result<(), Box<dyn Error>> {
    let server = server::start(ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        storage: Storage::Memory,
        ..ServerConfig::default()
    })
    .await?;
    let url = format!("ws://{}/scenes/guide", server.addr());
    let mut alice = SyncClient::connect(&url, "alice", ClientOptions::default()).await?;
    let mut bob = SyncClient::connect(&url, "bob", ClientOptions::default()).await?;

    // Alice creates a node; the commit goes to the server, which broadcasts it.
    alice.with_store(|s| -> Result<(), Box<dyn Error>> {
        s.edit(Op::from_json(&json!({
            "ot": "node.insert", "key": "", "path": "children",
            "value": {"key": "obj", "tag": "Mesh", "health": 100},
        }))?)?;
        s.commit("create obj");
        Ok(())
    })?;
    alice.flush(WAIT).await?;
    bob.check(WAIT).await?; // bob has everything the server queued for him

    // Both damage it at the same time.
    alice.with_store(|s| {
        s.edit(Op::number_add("obj", "health", -25.0))
            .map(|()| s.commit("hit"))
    })?;
    bob.with_store(|s| {
        s.edit(Op::number_add("obj", "health", -10.0))
            .map(|()| s.commit("hit"))
    })?;
    alice.flush(WAIT).await?;
    bob.flush(WAIT).await?;
    let (a, b) = (alice.check(WAIT).await?, bob.check(WAIT).await?);

    println!("alice: health {:?}", health(&alice));
    println!("bob:   health {:?}", health(&bob));
    assert_eq!(health(&alice), Some(65.0));
    assert_eq!(health(&bob), Some(65.0));
    assert_eq!(a.hash, b.hash);
    assert_eq!(alice.with_store(|s| s.replica().state_hash()), a.hash);
    println!("server state hash {:016x}, on both clients", a.hash);
    alice.close().await;
    bob.close().await;
    server.shutdown().await;
    Ok(())
}

#[allow(dead_code, reason = "tests/server.rs calls `run`, not `main`")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await
}

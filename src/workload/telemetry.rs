//! The telemetry workload: a producer embedded in the process moves every node of a
//! scene every tick through a [`Writer`], and a renderer reads the change feed every
//! few ticks ([`Replica::take_changes`]).
//!
//! The scene is [`super::props_scene`] (`position` and a unit quaternion `rotation` per
//! node, typed columns, made by client `author`); the writer writes as `author` too,
//! the scene's own producer, so every tick is stable at once and automatic compaction
//! keeps the replica bounded. Tick *t* sets node *k*'s `position` to
//! `[k·0.01 + t·0.001, t·0.002, −t·0.001]` and its `rotation` to the rotation of angle
//! `t·0.001` about z: values that cost the producer a few adds per write, so the run
//! measures the replica, not the producer.
//!
//! Invariant: the same parameters give the same messages and the same final state.

use std::time::Instant;

use super::props_scene;
use crate::error::RejectError;
use crate::ids::{KeyId, PathId};
use crate::replica::{Replica, Writer};
use crate::wire::Format;

/// The telemetry workload's parameters (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Telemetry {
    /// Nodes in the scene.
    pub nodes: usize,
    /// Ticks (commits of one write of each property of every node).
    pub ticks: usize,
    /// The renderer takes the change feed every this many ticks (0: never).
    pub frame_every: usize,
    /// A peer replica receives every tick's message as MessagePack bytes
    /// ([`Replica::encode_journaled`], then [`Replica::apply_bytes`]; both timed apart
    /// from the ticks).
    pub peer: bool,
}

/// What one [`Telemetry::run`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryRun {
    /// Property writes committed.
    pub writes: u64,
    /// Wall time of the ticks: filling the writer, committing, and the renderer's
    /// takes of the change feed (not the peer's share).
    pub secs: f64,
    /// Of that, the commits alone.
    pub commit_secs: f64,
    /// Cells the renderer was told to redraw, summed over its frames.
    pub fed_cells: u64,
    /// Messages folded by automatic compaction.
    pub compacted: usize,
    /// Messages journaled at the end.
    pub journaled: usize,
    /// Wall time of the peer's `apply_bytes` calls (0 without a peer).
    pub peer_secs: f64,
    /// Wall time of encoding each tick for the peer ([`Replica::encode_journaled`]).
    pub encode_secs: f64,
    /// [`Replica::state_hash`] at the end.
    pub state_hash: u64,
    /// The peer's state hash at the end (equal to `state_hash` when it converged).
    pub peer_hash: Option<u64>,
}

impl Telemetry {
    /// 10,000 nodes, 1,000 ticks (one second at 1 kHz), a frame every 16 ticks.
    pub fn standard() -> Telemetry {
        Telemetry {
            nodes: 10_000,
            ticks: 1_000,
            frame_every: 16,
            peer: false,
        }
    }

    /// The replica holding the scene, ready for the first tick.
    pub fn replica(&self) -> Replica {
        let mut r = Replica::new();
        r.apply_owned(props_scene(self.nodes));
        r.take_changes();
        r
    }

    /// Node handles `n0 …`, and the `position` and `rotation` path handles, of `r`.
    pub fn handles(&self, r: &mut Replica) -> (Vec<KeyId>, PathId, PathId) {
        let keys = (0..self.nodes)
            .map(|k| r.key_id(&format!("n{k}")))
            .collect();
        (keys, r.path_id("position"), r.path_id("rotation"))
    }

    /// Fills `w` with tick `t` (see the module doc).
    pub fn fill(t: usize, keys: &[KeyId], pos: PathId, rot: PathId, w: &mut Writer) {
        #[expect(clippy::cast_precision_loss, reason = "tick and node counts are small")]
        let tf = t as f32;
        let half = tf * 0.0005;
        let q = [0.0, 0.0, half.sin(), half.cos()];
        let (y, z) = (tf * 0.002, -tf * 0.001);
        let mut x = tf * 0.001;
        for &k in keys {
            w.set_vec3(k, pos, [x, y, z]);
            w.set_quat(k, rot, q);
            x += 0.01;
        }
    }

    /// Runs the ticks on a fresh [`Telemetry::replica`] (building the scene is not
    /// timed).
    pub fn run(&self) -> Result<TelemetryRun, RejectError> {
        let mut r = self.replica();
        let (keys, pos, rot) = self.handles(&mut r);
        let mut w = r.writer("author");
        let mut peer = self.peer.then(|| self.replica());
        let (mut commit_secs, mut fed_cells, mut compacted, mut writes) = (0.0, 0u64, 0, 0u64);
        let (mut secs, mut peer_secs, mut encode_secs) = (0.0, 0.0, 0.0);
        for t in 1..=self.ticks {
            let start = Instant::now();
            Self::fill(t, &keys, pos, rot, &mut w);
            writes += w.len() as u64;
            let c = Instant::now();
            let done = r.commit(&mut w, t as f64 * 0.001)?;
            commit_secs += c.elapsed().as_secs_f64();
            if self.frame_every > 0 && t % self.frame_every == 0 {
                fed_cells += r.take_changes().cells() as u64;
            }
            secs += start.elapsed().as_secs_f64();
            if let (Some(p), Some(d)) = (&mut peer, &done) {
                // A commit's message stays journaled until the next call.
                let sent = Instant::now();
                let Some(bytes) = r.encode_journaled(&d.id, Format::MessagePack) else {
                    return Err(RejectError::Invalid(crate::error::DecodeError::Message {
                        index: 0,
                        id: Some(d.id.clone()),
                        reason: "the committed message is no longer journaled".into(),
                    }));
                };
                encode_secs += sent.elapsed().as_secs_f64();
                let got = Instant::now();
                let mut report = p.apply_bytes(&bytes, Format::MessagePack);
                peer_secs += got.elapsed().as_secs_f64();
                if let Some(e) = report.rejected.pop() {
                    return Err(e);
                }
            }
            compacted += done.map_or(0, |d| d.report.compacted);
        }

        Ok(TelemetryRun {
            writes,
            secs,
            commit_secs,
            fed_cells,
            compacted,
            journaled: r.stats().messages,
            peer_secs,
            encode_secs,
            state_hash: r.state_hash(),
            peer_hash: peer.as_ref().map(Replica::state_hash),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_moves_every_node_and_feeds_every_cell() {
        let t = Telemetry {
            nodes: 1_000,
            ticks: 20,
            frame_every: 4,
            peer: false,
        };
        // A peer receiving every tick lands on the same state.
        let with_peer = Telemetry { peer: true, ..t }.run().unwrap();
        assert_eq!(with_peer.state_hash, t.run().unwrap().state_hash);
        assert_eq!(with_peer.peer_hash, Some(with_peer.state_hash));
        assert!(with_peer.peer_secs > 0.0);
        let run = t.run().unwrap();
        assert_eq!(run.writes, 2 * 1_000 * 20);
        // Every frame sees both cells of every node.
        assert_eq!(run.fed_cells, 5 * 2 * 1_000);
        assert_eq!(run.state_hash, t.run().unwrap().state_hash);
        // The last tick's values are what the scene shows.
        let mut r = t.replica();
        let (keys, pos, rot) = t.handles(&mut r);
        let mut w = r.writer("author");
        for tick in 1..=t.ticks {
            Telemetry::fill(tick, &keys, pos, rot, &mut w);
            r.commit(&mut w, 0.0).unwrap();
        }
        let n = r.graph().node("n7").unwrap();
        let p = n.get("position").unwrap().to_json();
        assert_eq!(p[1].as_f64().unwrap() as f32, 20.0 * 0.002);
        // The writer is the scene's only client: everything it committed is stable.
        assert_eq!(r.compact().messages, t.ticks + 1);
        assert_eq!(r.stats().messages, 0);
    }
}

//! Persistence under a killed writer, and the durable replica.
//!
//! - `vuer-rtc journal append --fsync every` is killed at random points, again and
//!   again on the same directory; after each kill, recovery holds every message whose
//!   append had returned (printed `appended`), exactly as written and in order, and
//!   nothing that was not appended.
//! - `vuer-rtc durable apply --fsync every --snapshot-every N` (snapshots and journal
//!   truncation while it runs) is killed the same way; after each kill the recovered
//!   replica (newest valid snapshot + the journal after it) holds every acknowledged
//!   message, nothing else, and the state of exactly the messages it holds.
//! - In process: restarts at random points, a damaged newest snapshot (recovery falls
//!   back to the older one), a lost journal directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::collections::HashMap;

use vuer_rtc::Replica;
use vuer_rtc::op::{Limits, Message};
use vuer_rtc::persist::{
    DurableOptions, DurableReplica, FsyncPolicy, JournalOptions, read_journal,
};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::workload::{SplitMix64, Workload};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("vuer-rtc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts appending `msgs` to the journal in `dir`, kills the writer once `acks` of
/// them were acknowledged (or when it finishes), and returns the acknowledged ids.
fn append_then_kill(dir: &Path, file: &Path, acks: usize) -> Vec<String> {
    let args = [
        "journal",
        "append",
        "--fsync",
        "every",
        "--segment-bytes",
        "8192",
    ];
    run_then_kill(&args, dir, file, acks)
}

/// Runs `vuer-rtc ARGS DIR FILE`, whose stdout prints one line ending in a message id
/// per acknowledged message; kills it after `acks` of them (or when it finishes) and
/// returns the acknowledged ids.
fn run_then_kill(args: &[&str], dir: &Path, file: &Path, acks: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vuer-rtc"))
        .args(args)
        .arg(dir)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < acks {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let id = line.rsplit(' ').next().unwrap().to_owned();
                acked.push(id);
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // Lines already printed were acknowledged too.
    reader.join().unwrap();
    acked.extend(
        rx.try_iter()
            .map(|l| l.rsplit(' ').next().unwrap().to_owned()),
    );
    acked
}

#[test]
fn a_killed_writer_loses_no_acknowledged_message() {
    let all: Vec<Message> = {
        let mut w = Workload::standard().with_messages(600);
        w.nodes = 50;
        w.clients = 5;
        let mut m = w.scene();
        m.extend(w.edits());
        m
    };
    let tmp = TempDir::new("killed-writer");
    let dir = tmp.0.join("journal");
    let mut rng = SplitMix64::new(2026);
    let mut held = 0;
    for round in 0..6 {
        // Append what recovery does not hold yet, killed after a random number of acks.
        let rest = &all[held..];
        let file = tmp.0.join(format!("round{round}.json"));
        std::fs::write(&file, wire::encode_messages(rest, Format::Json)).unwrap();
        let acks = rng.below(rest.len() / 2 + 1);
        let acked = append_then_kill(&dir, &file, acks);
        let r = read_journal(&dir, &Limits::default()).unwrap();
        let got: Vec<&Message> = r.messages.iter().map(|(_, m)| m).collect();
        // A prefix of the input, message for message: nothing invented or changed.
        assert!(got.len() <= all.len());
        for (g, want) in got.iter().zip(&all) {
            assert_eq!(*g, want, "round {round}");
        }
        // Every acknowledged message is there.
        assert!(
            got.len() >= held + acked.len(),
            "round {round}: {} held, {} acked after {held}",
            got.len(),
            acked.len()
        );
        for (id, m) in acked.iter().zip(&all[held..]) {
            assert_eq!(id, &m.id);
        }
        // Indexes run on from 0 without gaps (a torn tail is cut on the next open).
        assert!(
            r.messages
                .iter()
                .enumerate()
                .all(|(k, (i, _))| *i == k as u64)
        );
        held = got.len();
    }
    assert!(held > 0);
}

fn workload_messages(messages: usize) -> Vec<Message> {
    let mut w = Workload::standard().with_messages(messages);
    w.nodes = 50;
    w.clients = 5;
    let mut m = w.scene();
    m.extend(w.edits());
    m
}

fn options(snapshot_every: u64) -> DurableOptions {
    DurableOptions {
        journal: JournalOptions {
            fsync: FsyncPolicy::Never,
            segment_bytes: 4096,
        },
        snapshot_every: Some(snapshot_every),
        keep_snapshots: 2,
    }
}

fn reference(msgs: &[Message]) -> String {
    let mut r = Replica::new();
    r.apply_batch(msgs);
    r.to_json()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == ext));
    v.sort();
    v
}

#[test]
fn a_killed_durable_writer_loses_no_acknowledged_message() {
    let all = workload_messages(400);
    let by_id: HashMap<&str, &Message> = all.iter().map(|m| (m.id.as_str(), m)).collect();
    let tmp = TempDir::new("killed-durable");
    let dir = tmp.0.join("replica");
    let mut rng = SplitMix64::new(6);
    let mut acked_all: Vec<String> = Vec::new();
    let mut held = 0;
    for round in 0..6 {
        let rest = &all[held..];
        let file = tmp.0.join(format!("round{round}.json"));
        std::fs::write(&file, wire::encode_messages(rest, Format::Json)).unwrap();
        let acks = rng.below(rest.len() / 2 + 1);
        let args = [
            "durable",
            "apply",
            "--fsync",
            "every",
            "--segment-bytes",
            "4096",
            "--snapshot-every",
            "40",
        ];
        acked_all.extend(run_then_kill(&args, &dir, &file, acks));
        let (d, report) = DurableReplica::open(&dir, options(1 << 40)).unwrap();
        let r = d.replica();
        // Every acknowledged message is held; everything held was sent.
        for id in &acked_all {
            assert!(
                r.journal().contains(id),
                "round {round}: acknowledged {id} lost ({report:?})"
            );
        }
        let held_msgs: Vec<Message> = r.journaled_messages();
        for m in &held_msgs {
            assert_eq!(
                Some(&m),
                by_id.get(m.id.as_str()),
                "round {round}: invented or changed"
            );
        }
        // The state is exactly that of the messages held.
        assert_eq!(r.to_json(), reference(&held_msgs), "round {round}");
        // The writer sends in order: what is held is a prefix of the input.
        held = held_msgs.len();
        assert!(
            all[..held].iter().all(|m| r.journal().contains(&m.id)),
            "round {round}"
        );
    }
    assert!(held > 0);
    assert!(
        !files(&dir.join("snapshots"), "snap").is_empty(),
        "snapshots were written"
    );
}

#[test]
fn durable_replica_restarts_anywhere_and_truncates_its_journal() {
    let all = workload_messages(300);
    let tmp = TempDir::new("durable-restarts");
    let dir = tmp.0.join("replica");
    let mut rng = SplitMix64::new(7);
    let (mut d, report) = DurableReplica::open(&dir, options(25)).unwrap();
    assert!(report.snapshot.is_none());
    let mut i = 0;
    while i < all.len() {
        let end = (i + 1 + rng.below(8)).min(all.len());
        d.apply(all[i..end].to_vec()).unwrap();
        i = end;
        if rng.below(5) == 0 {
            drop(d);
            let (again, report) = DurableReplica::open(&dir, options(25)).unwrap();
            assert!(report.damage.is_empty() && report.skipped.is_empty());
            assert_eq!(again.replica().to_json(), reference(&all[..i]), "after {i}");
            d = again;
        }
    }
    // Duplicates are not journaled again, and change nothing.
    d.apply(all[..10].to_vec()).unwrap();
    let state = d.replica().to_json();
    assert_eq!(state, reference(&all));
    drop(d);
    let snaps = files(&dir.join("snapshots"), "snap");
    assert_eq!(snaps.len(), 2, "two snapshots kept: {snaps:?}");
    // The journal was truncated: its first segment starts after message 0.
    let segs = files(&dir.join("journal"), "seg");
    assert!(!segs[0].ends_with("00000000000000000000.seg"), "{segs:?}");
    let (again, report) = DurableReplica::open(&dir, options(25)).unwrap();
    assert!(report.snapshot.is_some());
    assert!(
        report.replayed < 25 + 8 + 10,
        "only the journal after the snapshot: {}",
        report.replayed
    );
    assert_eq!(again.replica().to_json(), state);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one() {
    let all = workload_messages(200);
    let tmp = TempDir::new("durable-fallback");
    let dir = tmp.0.join("replica");
    let (mut d, _) = DurableReplica::open(&dir, options(30)).unwrap();
    for m in &all {
        d.apply(vec![m.clone()]).unwrap();
    }
    drop(d);
    let snaps = files(&dir.join("snapshots"), "snap");
    assert_eq!(snaps.len(), 2);
    let newest = snaps.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(newest, &bytes).unwrap();
    let (again, report) = DurableReplica::open(&dir, options(30)).unwrap();
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.snapshot.as_ref().map(|s| &s.0), Some(&snaps[0]));
    assert_eq!(again.replica().to_json(), reference(&all));
    // A snapshot cut short is skipped the same way.
    drop(again);
    std::fs::write(newest, &bytes[..mid]).unwrap();
    let (again, report) = DurableReplica::open(&dir, options(30)).unwrap();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(again.replica().to_json(), reference(&all));
}

#[test]
fn a_lost_journal_directory_keeps_numbering_after_the_snapshot() {
    let all = workload_messages(120);
    let tmp = TempDir::new("durable-lost-journal");
    let dir = tmp.0.join("replica");
    let (mut d, _) = DurableReplica::open(&dir, options(1 << 40)).unwrap();
    d.apply(all[..60].to_vec()).unwrap();
    d.checkpoint().unwrap();
    drop(d);
    std::fs::remove_dir_all(dir.join("journal")).unwrap();
    let (mut d, report) = DurableReplica::open(&dir, options(1 << 40)).unwrap();
    assert_eq!(report.replayed, 0);
    d.apply(all[60..].to_vec()).unwrap();
    drop(d);
    let (d, report) = DurableReplica::open(&dir, options(1 << 40)).unwrap();
    assert_eq!(
        report.replayed,
        all.len() - 60,
        "the new messages are numbered after the snapshot"
    );
    assert_eq!(d.replica().to_json(), reference(&all));
}

/// A snapshot written in the background (`begin_snapshot`, then the writer on a copy of
/// the replica while more messages are appended, then `finish_snapshot`) holds what was
/// appended before it began; recovery replays everything after, truncation keeps it, and
/// a writer whose snapshot never finished (a crash) leaves everything recoverable.
#[test]
fn a_background_snapshot_loses_nothing_appended_while_it_was_written() {
    use vuer_rtc::persist::{LocalLog, SceneLog};
    let all = workload_messages(400);
    let all = &all[..all.len() / 50 * 50];
    let tmp = TempDir::new("background-snapshot");
    let dir = tmp.0.join("scene");
    let (mut log, mut replica, _) = LocalLog::open(&dir, options(1 << 40)).unwrap();
    let mut begun_at = Vec::new();
    for (round, chunk) in all.chunks(50).enumerate() {
        let (before, during) = chunk.split_at(20);
        log.append(before).unwrap();
        replica.apply_batch(before);
        let writer = log
            .begin_snapshot()
            .unwrap()
            .expect("a local log writes in the background");
        begun_at.push(log.position());
        let copy = replica.clone();
        // Appends go on while the snapshot is written.
        log.append(during).unwrap();
        replica.apply_batch(during);
        log.commit().unwrap();
        let written = std::thread::spawn(move || writer.write(&copy))
            .join()
            .unwrap()
            .unwrap();
        // The last round's snapshot never finishes: as if the process died first.
        if round + 1 < all.len() / 50 {
            log.finish_snapshot(written).unwrap();
        }
    }
    assert_eq!(replica.to_json(), reference(all));
    drop(log);
    let snaps = files(&dir.join("snapshots"), "snap");
    assert!(snaps.len() >= 2, "{snaps:?}");
    let (_, again, report) = LocalLog::open(&dir, options(1 << 40)).unwrap();
    let (_, at) = report.snapshot.clone().expect("recovered from a snapshot");
    assert_eq!(at, *begun_at.last().unwrap(), "{report:?}");
    assert_eq!(
        report.replayed, 30,
        "the messages appended while it was written"
    );
    assert_eq!(again.to_json(), reference(all));
}

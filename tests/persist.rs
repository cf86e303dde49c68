//! The on-disk journal under a killed writer: `vuer-rtc journal append --fsync every`
//! is killed at random points, again and again on the same directory; after each kill,
//! recovery holds every message whose append had returned (printed `appended`), holds
//! them exactly as written and in order, and holds nothing that was not appended.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vuer_rtc::op::{Limits, Message};
use vuer_rtc::persist::read_journal;
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_vuer-rtc"))
        .args([
            "journal",
            "append",
            "--fsync",
            "every",
            "--segment-bytes",
            "8192",
        ])
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

//! `persist/journal_append/{never,every}` and `persist/journal_read/10k`: the on-disk
//! journal ([`vuer_rtc::persist`]) in a directory under the system temp dir.
//!
//! - `journal_append/never`: 10,000 relayed messages (10 `vector3.set` each, about 500
//!   bytes in MessagePack) appended with `FsyncPolicy::Never`: encoding, framing and one
//!   `write` per message.
//! - `journal_append/every`: 200 of them with `FsyncPolicy::EveryMessage`: what a
//!   durable acknowledgement costs on this disk (one `fdatasync` per message).
//! - `journal_read/10k`: recovery of the 10,000-message journal (`read_journal`: read,
//!   checksum, decode).
//!
//! Throughput is in messages. Setup (a fresh directory) is not timed.
//!
//! Reproduce: `cargo bench --bench main -- persist/`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::{Limits, Message};
use vuer_rtc::persist::{FsyncPolicy, Journal, JournalOptions, read_journal};

use crate::stages::store::workload;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vuer-rtc-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn append_all(d: &Path, msgs: &[Message], fsync: FsyncPolicy) -> Journal {
    let options = JournalOptions {
        fsync,
        ..JournalOptions::default()
    };
    let (mut j, _) = Journal::open(d, options).expect("a journal");
    for m in msgs {
        j.append(m).expect("append");
    }
    j
}

fn persist_benches(c: &mut Criterion) {
    let msgs = workload().relayed();
    let mut group = c.benchmark_group("persist");
    group.sample_size(10);
    for (name, fsync, n) in [
        ("never", FsyncPolicy::Never, msgs.len()),
        ("every", FsyncPolicy::EveryMessage, 200),
    ] {
        let d = dir(name);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("journal_append", name), |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_dir_all(&d);
                },
                |()| append_all(&d, black_box(&msgs[..n]), fsync),
                BatchSize::PerIteration,
            );
        });
        let _ = std::fs::remove_dir_all(&d);
    }
    let d = dir("read");
    drop(append_all(&d, &msgs, FsyncPolicy::Never));
    let held = read_journal(&d, &Limits::default()).expect("readable");
    assert_eq!(held.messages.len(), msgs.len());
    assert!(held.damage.is_empty());
    group.throughput(Throughput::Elements(msgs.len() as u64));
    group.bench_function(BenchmarkId::new("journal_read", "10k"), |b| {
        b.iter(|| read_journal(black_box(&d), &Limits::default()).expect("readable"));
    });
    let _ = std::fs::remove_dir_all(&d);
    group.finish();
}

criterion_group!(benches, persist_benches);

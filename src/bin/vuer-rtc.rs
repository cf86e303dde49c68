//! The `vuer-rtc` command line.
//!
//! - `vuer-rtc replay FILE` reads an array of messages (`-` = stdin), feeds them to a
//!   [`Replica`] (all at once, or `--batch N` at a time, in file order) and prints the
//!   canonical state JSON, which does not depend on the file's order or on N. Invalid input prints one
//!   error line naming the message and op, prints nothing on stdout, and exits 1.
//! - `vuer-rtc convert FILE --to msgpack|json` re-encodes messages (compressed spelling).
//! - `vuer-rtc snapshot create INPUT -o OUT` replays a messages file (as `replay` does)
//!   or a journal directory into a [`Replica`] and writes its snapshot; `snapshot
//!   inspect FILE` prints its sizes and columns, and `snapshot dump FILE` prints the
//!   state JSON exactly as `replay` prints it. A bad snapshot file prints one `error:`
//!   line and exits 1.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[path = "cli/alloc.rs"]
mod alloc;
#[path = "cli/loadtest.rs"]
mod loadtest;
#[path = "cli/serve.rs"]
mod serve;
use vuer_rtc::op::Limits;
use vuer_rtc::persist::{FsyncPolicy, Journal, JournalOptions, read_journal};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Message, Replica};

// The merge allocates small strings and vectors at a high rate; mimalloc serves them
// several times faster than the system allocator (see perf/README.md). `bench` turns
// on its count of live bytes to report the replica's own heap.
#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(
    name = "vuer-rtc",
    version,
    about = "A columnar CRDT engine for shared 3D scene graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Enc {
    Json,
    Msgpack,
}

impl From<Enc> for Format {
    fn from(e: Enc) -> Format {
        match e {
            Enc::Json => Format::Json,
            Enc::Msgpack => Format::MessagePack,
        }
    }
}

/// Size limits for untrusted input (defaults: `vuer_rtc::op::Limits::default()`).
#[derive(clap::Args)]
struct LimitArgs {
    /// Most ops accepted in one message.
    #[arg(long, default_value_t = Limits::default().max_ops_per_message)]
    max_ops_per_message: usize,
    /// Longest string accepted (key, path, id or value), in bytes.
    #[arg(long, default_value_t = Limits::default().max_string_bytes)]
    max_string_bytes: usize,
    /// Most elements in one array or entries in one object.
    #[arg(long, default_value_t = Limits::default().max_collection_len)]
    max_collection_len: usize,
    /// Deepest nesting of arrays/objects inside a value (the same in JSON and
    /// MessagePack).
    #[arg(long, default_value_t = Limits::default().max_depth,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=vuer_rtc::wire::MAX_DEPTH as u64))]
    max_depth: usize,
    /// Largest encoded message accepted, in bytes (checked before decoding it).
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
}

impl From<&LimitArgs> for Limits {
    fn from(a: &LimitArgs) -> Limits {
        Limits {
            max_ops_per_message: a.max_ops_per_message,
            max_string_bytes: a.max_string_bytes,
            max_collection_len: a.max_collection_len,
            max_depth: a.max_depth,
            max_message_bytes: a.max_message_bytes,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchMix {
    Standard,
    Vector3Set,
    /// Workload A of `perf/peers`: a flat 10,000-node scene, 10 LWW writes per message
    /// (`position`, `health`) from 1,000 authors, in relay order (`workload::SceneA`).
    SceneA,
}

impl BenchMix {
    /// The scene's messages and the edits, for `messages` edit messages (and for the
    /// standard mixes, `undo` and `clients`).
    fn build(
        self,
        messages: usize,
        undo: f64,
        nodes_clients: Option<(usize, usize)>,
    ) -> (Vec<Message>, Vec<Message>) {
        let (scene, edits) = self.stream(messages, undo, nodes_clients);
        (scene, edits.collect())
    }

    /// [`BenchMix::build`] with the edits made as they are taken.
    fn stream(
        self,
        messages: usize,
        undo: f64,
        nodes_clients: Option<(usize, usize)>,
    ) -> (Vec<Message>, Box<dyn Iterator<Item = Message>>) {
        use vuer_rtc::workload::{Mix, SceneA, Workload};
        let mix = match self {
            BenchMix::Standard => Mix::Standard,
            BenchMix::Vector3Set => Mix::Vector3Set,
            BenchMix::SceneA => {
                let mut a = SceneA::standard().with_messages(messages);
                if let Some((nodes, clients)) = nodes_clients {
                    a.nodes = nodes;
                    a.authors = clients;
                }
                return (a.scene(), Box::new(a.stream()));
            }
        };
        let mut w = Workload::standard().with_messages(messages);
        w.undo = undo;
        w.mix = mix;
        if let Some((nodes, clients)) = nodes_clients {
            w.nodes = nodes;
            w.clients = clients;
        }
        (w.scene(), Box::new(w.stream()))
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum BenchInput {
    None,
    Json,
    Msgpack,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a file of messages and print the resulting scene as canonical JSON.
    ///
    /// Duplicated ids are dropped, messages are applied in (lt, client) order and
    /// undone messages are skipped, so the output does not depend on the file's order.
    Replay {
        /// The messages file (a JSON or MessagePack array of messages); `-` reads stdin.
        file: PathBuf,
        /// Input encoding.
        #[arg(long, value_enum, default_value = "json")]
        format: Enc,
        /// Indent the output.
        #[arg(long)]
        pretty: bool,
        /// Print every op that did nothing (and why) on stderr, in canonical order.
        #[arg(long)]
        warnings: bool,
        /// Feed the messages to the replica in file order, in batches of N (default:
        /// all at once). The output is the same for every N.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        batch: Option<u64>,
        /// Worker threads for the merge (default: one per core). The output is the
        /// same for every N.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        threads: Option<u64>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run a reproducible merge workload through a replica and print its throughput.
    ///
    /// The default is the standard workload: a 10,000-node scene, 1,000 clients,
    /// 100,000 messages x 10 ops fed in batches of 1,000 in arrival order (~20% late).
    Bench {
        /// Edit messages (the standard workload has 100,000).
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Messages per batch.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Op mix.
        #[arg(long, value_enum, default_value = "standard")]
        mix: BenchMix,
        /// Fraction of edit messages followed by an undo (0 to 1).
        #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
        undo: f64,
        /// Feed pre-decoded messages (`none`) or encoded bytes.
        #[arg(long, value_enum, default_value = "none")]
        input: BenchInput,
        /// Worker threads for the merge (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        threads: Option<u64>,
        /// Compact after every N batches as well (0: never) and report the peak journal
        /// size.
        #[arg(long, value_name = "N", default_value_t = 0)]
        compact_every: u64,
        /// The replica compacts by itself after every N accepted messages (0: never;
        /// the default is the library's, `Replica::set_auto_compact`).
        #[arg(long, value_name = "N", default_value_t = vuer_rtc::replica::DEFAULT_AUTO_COMPACT)]
        auto_compact: u64,
        /// Compaction horizon in Lamport ticks (clients silent longer are evicted).
        #[arg(long, default_value_t = vuer_rtc::replica::DEFAULT_HORIZON)]
        horizon: u64,
        /// Editing clients (the standard workload and workload A have 1,000).
        #[arg(long, default_value_t = 1_000, value_parser = at_least_one)]
        clients: usize,
    },
    /// Run the telemetry workload: a writer moves every node of a scene each tick (a
    /// `vector3.set` of `position` and a `quaternion.set` of `rotation` per node, one
    /// message per tick) and a renderer takes the change feed every few ticks.
    Telemetry {
        /// Nodes in the scene.
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        nodes: usize,
        /// Ticks to run (1,000 is one second at 1 kHz).
        #[arg(long, default_value_t = 1_000, value_parser = at_least_one)]
        ticks: usize,
        /// The renderer takes the change feed every N ticks (0: never).
        #[arg(long, default_value_t = 16)]
        frame_every: usize,
        /// A peer replica also receives every tick as MessagePack bytes (encoding and
        /// receiving timed apart from the ticks) and must end on the same state.
        #[arg(long)]
        peer: bool,
    },
    /// Print a reproducible workload (the scene's messages, then the edits in arrival
    /// order) as one JSON array, e.g. to run the same workload through another engine.
    Workload {
        /// Edit messages (the standard workload has 100,000).
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Nodes in the scene (the standard workload has 10,000).
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
        nodes: usize,
        /// Op mix.
        #[arg(long, value_enum, default_value = "standard")]
        mix: BenchMix,
        /// Editing clients (the standard workload has 1,000).
        #[arg(long, default_value_t = 1_000, value_parser = at_least_one)]
        clients: usize,
        /// Print what a client store receives from a server instead (Lamport order, 10
        /// `vector3.set` per message; see `Workload::relayed`); `--mix` is ignored.
        #[arg(long)]
        relayed: bool,
    },
    /// Work with an on-disk journal directory (append-only, checksummed segments).
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Write, inspect and dump snapshot files (a whole replica in one checked file).
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// A replica persisted in a directory: snapshots plus the journal after them.
    #[command(subcommand)]
    Durable(DurableCmd),
    /// Run the sync server: WebSocket clients edit scenes at `/scenes/{scene}`.
    Serve(serve::ServeArgs),
    /// Load a server with many connections, then check that every client converged.
    Loadtest(loadtest::LoadArgs),
    /// Re-encode a messages file (validating it), e.g. JSON to MessagePack.
    Convert {
        /// The messages file; `-` reads stdin.
        file: PathBuf,
        /// Input encoding.
        #[arg(long, value_enum, default_value = "json")]
        from: Enc,
        /// Output encoding (written to stdout).
        #[arg(long, value_enum)]
        to: Enc,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// How a journal writes (`journal append`, `durable apply`).
#[derive(clap::Args)]
struct JournalArgs {
    /// When appends reach stable storage: `every` (each message), `never`, or a
    /// number of milliseconds.
    #[arg(long, default_value = "every", value_parser = parse_fsync)]
    fsync: FsyncPolicy,
    /// Start a new segment file once one reaches this many bytes.
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    segment_bytes: u64,
}

impl From<JournalArgs> for JournalOptions {
    fn from(a: JournalArgs) -> JournalOptions {
        JournalOptions {
            fsync: a.fsync,
            segment_bytes: a.segment_bytes,
        }
    }
}

#[derive(Subcommand)]
enum JournalCmd {
    /// Append every message of a file to the journal in DIR (created if needed),
    /// printing `appended <index> <id>` once each append has returned, i.e. under
    /// `--fsync every` once it is on stable storage.
    Append {
        /// The journal directory.
        dir: PathBuf,
        /// The messages file (JSON or MessagePack array); `-` reads stdin.
        file: PathBuf,
        /// Input encoding.
        #[arg(long, value_enum, default_value = "json")]
        format: Enc,
        #[command(flatten)]
        journal: JournalArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Recover the journal in DIR (without changing it): print its intact messages as
    /// a JSON array, and on stderr where a segment ended early and why.
    Read {
        /// The journal directory.
        dir: PathBuf,
        /// Output encoding.
        #[arg(long, value_enum, default_value = "json")]
        to: Enc,
    },
}

#[derive(Subcommand)]
enum DurableCmd {
    /// Open (or create) the durable replica in DIR, recovering it, then apply the
    /// messages of a file one at a time, printing `applied <id>` once each is journaled
    /// (under `--fsync every`, on stable storage) and applied.
    Apply {
        /// The directory (`journal/` and `snapshots/` inside).
        dir: PathBuf,
        /// The messages file (JSON or MessagePack array); `-` reads stdin.
        file: PathBuf,
        /// Input encoding.
        #[arg(long, value_enum, default_value = "json")]
        format: Enc,
        #[command(flatten)]
        journal: JournalArgs,
        /// Write a snapshot (and truncate the journal) every N journaled messages.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        snapshot_every: u64,
        /// Snapshots kept.
        #[arg(long, default_value_t = 2, value_parser = at_least_one)]
        keep: usize,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Recover the durable replica in DIR and print its state as canonical JSON (what
    /// recovery found goes to stderr).
    State {
        /// The directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Apply a messages file (as `replay` does) or the intact messages of a journal
    /// directory to a replica and write its snapshot to OUT (atomically).
    Create {
        /// A messages file (JSON or MessagePack array; `-` reads stdin) or a journal
        /// directory.
        input: PathBuf,
        /// The snapshot file to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Encoding of a messages file (ignored for a journal directory).
        #[arg(long, value_enum, default_value = "json")]
        format: Enc,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Check a snapshot file and print its format version, sizes and columns.
    Inspect {
        /// The snapshot file.
        file: PathBuf,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Check a snapshot file and print its state as canonical JSON, byte for byte what
    /// `replay` prints for the same messages.
    Dump {
        /// The snapshot file.
        file: PathBuf,
        /// Indent the output (as `replay --pretty`).
        #[arg(long)]
        pretty: bool,
    },
}

/// A count of at least one (`usize`).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A fraction: a finite number from 0 to 1.
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Ok(_) => Err("must be a fraction from 0 to 1".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    match s {
        "every" => Ok(FsyncPolicy::EveryMessage),
        "never" => Ok(FsyncPolicy::Never),
        ms => ms
            .parse::<u64>()
            .map(|ms| FsyncPolicy::Every(std::time::Duration::from_millis(ms)))
            .map_err(|_| format!("{ms:?}: expected `every`, `never` or milliseconds")),
    }
}

/// Why a command stopped early.
enum Failure {
    /// Printed as one `error:` line; exit status 1.
    Error(String),
    /// The reader of stdout went away (`vuer-rtc workload | head`): stop quietly, with
    /// status 0, as the output it wanted was written.
    ClosedStdout,
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Error(e)
    }
}

/// A failed write of the output: quiet when stdout was closed, an error otherwise.
fn output(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::ClosedStdout
    } else {
        Failure::Error(format!("cannot write output: {e}"))
    }
}

fn journal(cmd: JournalCmd) -> Result<(), Failure> {
    match cmd {
        JournalCmd::Append {
            dir,
            file,
            format,
            journal,
            limits,
        } => {
            let messages = read_messages(&file, format, &limits)?;
            let options = JournalOptions::from(journal);
            let (mut j, recovered) = Journal::open(&dir, options).map_err(|e| e.to_string())?;
            for d in &recovered.damage {
                eprintln!(
                    "warning: {} at byte {}: {} (cut off)",
                    d.segment.display(),
                    d.offset,
                    d.reason
                );
            }
            let mut stdout = std::io::stdout().lock();
            for m in &messages {
                let index = j.append(m).map_err(|e| e.to_string())?;
                // The lines are acknowledgements: with nobody to read them the rest is
                // not appended, and that is an error (even for a closed stdout).
                writeln!(stdout, "appended {index} {}", m.id)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            Ok(j.sync().map_err(|e| e.to_string())?)
        }
        JournalCmd::Read { dir, to } => {
            let r = read_journal(&dir, &Limits::default()).map_err(|e| e.to_string())?;
            for d in &r.damage {
                eprintln!(
                    "damage: {} at byte {}: {}",
                    d.segment.display(),
                    d.offset,
                    d.reason
                );
            }
            let messages: Vec<Message> = r.messages.into_iter().map(|(_, m)| m).collect();
            std::io::stdout()
                .lock()
                .write_all(&wire::encode_messages(&messages, to.into()))
                .map_err(output)
        }
    }
}

fn durable(cmd: DurableCmd) -> Result<(), Failure> {
    use vuer_rtc::persist::{DurableOptions, DurableReplica, StartReport};
    let report = |r: &StartReport| {
        for s in &r.skipped {
            eprintln!("skipped snapshot {}: {}", s.path.display(), s.error);
        }
        if let Some((path, index)) = &r.snapshot {
            eprintln!("snapshot {} (journal from {index})", path.display());
        }
        for d in &r.damage {
            eprintln!(
                "damage: {} at byte {}: {}",
                d.segment.display(),
                d.offset,
                d.reason
            );
        }
        eprintln!("replayed {} journaled messages", r.replayed);
    };
    match cmd {
        DurableCmd::Apply {
            dir,
            file,
            format,
            journal,
            snapshot_every,
            keep,
            limits,
        } => {
            let bytes = read_input(&file)?;
            let messages = wire::decode_each(&bytes, format.into(), &Limits::from(&limits))
                .map_err(|e| e.to_string())?;
            let options = DurableOptions {
                journal: journal.into(),
                snapshot_every: Some(snapshot_every),
                keep_snapshots: keep,
            };
            let (mut d, start) = DurableReplica::open(&dir, options).map_err(|e| e.to_string())?;
            report(&start);
            // One line per message, once its fate is settled (and, when applied,
            // journaled): `applied ID`, `duplicate ID` or `rejected ID: REASON`.
            let mut stdout = std::io::stdout().lock();
            let mut rejected = 0usize;
            for (i, m) in messages.into_iter().enumerate() {
                let line = match m {
                    Err(e) => {
                        rejected += 1;
                        format!("rejected #{i}: {e}")
                    }
                    Ok(m) => {
                        let id = m.id.clone();
                        let r = d.apply(vec![m]).map_err(|e| e.to_string())?;
                        match r.rejected.first() {
                            Some(e) => {
                                rejected += 1;
                                format!("rejected {id}: {e}")
                            }
                            None if r.accepted == 1 => format!("applied {id}"),
                            None => format!("duplicate {id}"),
                        }
                    }
                };
                writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            d.sync().map_err(|e| e.to_string())?;
            if rejected > 0 {
                return Err(format!("{rejected} message(s) rejected (listed above)").into());
            }
            Ok(())
        }
        DurableCmd::State { dir } => {
            if !dir.is_dir() {
                return Err(format!("{}: not a directory", dir.display()).into());
            }
            let options = DurableOptions {
                snapshot_every: None,
                ..DurableOptions::default()
            };
            let (d, start) = DurableReplica::open(&dir, options).map_err(|e| e.to_string())?;
            report(&start);
            writeln!(std::io::stdout().lock(), "{}", d.replica().to_json()).map_err(output)
        }
    }
}

fn snapshot(cmd: SnapshotCmd) -> Result<(), Failure> {
    use vuer_rtc::snapshot::{SnapshotBuf, SnapshotError, SnapshotView};
    let read = |file: &PathBuf| {
        SnapshotBuf::read(file).map_err(|e| match e {
            SnapshotError::Io(e) => format!("cannot read {}: {e}", file.display()),
            e => format!("cannot read {}: {e}", file.display()),
        })
    };
    let mut stdout = std::io::stdout().lock();
    match cmd {
        SnapshotCmd::Create {
            input,
            out,
            format,
            limits,
        } => {
            let messages = if input.as_os_str() != "-" && input.is_dir() {
                let r = read_journal(&input, &Limits::from(&limits)).map_err(|e| e.to_string())?;
                for d in &r.damage {
                    eprintln!(
                        "damage: {} at byte {}: {}",
                        d.segment.display(),
                        d.offset,
                        d.reason
                    );
                }
                r.messages.into_iter().map(|(_, m)| m).collect()
            } else {
                read_messages(&input, format, &limits)?
            };
            // As `replay` builds its state: one replica, every message in one batch.
            let mut replica = Replica::with_limits(Limits::from(&limits));
            let report = replica.apply_batch(&messages);
            if let Some(e) = report.rejected.first() {
                return Err(e.to_string().into());
            }
            let buf = replica.snapshot();
            let info = SnapshotView::open(&buf)
                .map_err(|e| format!("the snapshot just written does not open: {e}"))?
                .info();
            buf.write_atomic(&out).map_err(|e| match e {
                SnapshotError::Io(e) => format!("cannot write {}: {e}", out.display()),
                e => format!("cannot write {}: {e}", out.display()),
            })?;
            writeln!(
                stdout,
                "wrote {}: {} bytes, {} nodes, {} journaled messages",
                out.display(),
                info.bytes,
                info.nodes,
                info.messages
            )
        }
        SnapshotCmd::Inspect { file, json } => {
            let buf = read(&file)?;
            let info = SnapshotView::open(&buf).map_err(|e| e.to_string())?.info();
            if json {
                writeln!(stdout, "{}", info_json(&info))
            } else {
                write!(stdout, "{}", info_table(&info))
            }
        }
        SnapshotCmd::Dump { file, pretty } => {
            let buf = read(&file)?;
            let view = SnapshotView::open(&buf).map_err(|e| e.to_string())?;
            // The same text as `replay`: `SceneGraph::to_json` / `to_json_pretty`.
            let out = if pretty {
                serde_json::to_string_pretty(&view.to_json_value()).unwrap_or_default()
            } else {
                view.to_json()
            };
            writeln!(stdout, "{out}")
        }
    }
    .map_err(output)
}

/// Bytes per node, or `None` for an empty scene.
fn bytes_per_node(info: &vuer_rtc::snapshot::SnapshotInfo) -> Option<f64> {
    (info.nodes > 0).then(|| info.bytes as f64 / info.nodes as f64)
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `snapshot inspect` as a table.
fn info_table(info: &vuer_rtc::snapshot::SnapshotInfo) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let [keys, paths, clients] = info.tables;
    let per_node = bytes_per_node(info).map_or_else(|| "-".to_owned(), |b| format!("{b:.1}"));
    let _ = writeln!(s, "format version  {}", info.version);
    let _ = writeln!(s, "bytes           {}", info.bytes);
    let _ = writeln!(
        s,
        "nodes           {} ({} tombstones)",
        info.nodes, info.tombstones
    );
    let _ = writeln!(
        s,
        "tables          {keys} keys, {paths} paths, {clients} clients"
    );
    let _ = writeln!(s, "messages        {} journaled", info.messages);
    let _ = writeln!(s, "bytes per node  {per_node}");

    // Paths come from the file: escape control characters so they cannot mangle
    // the terminal.
    let rows: Vec<[String; 6]> = info
        .columns
        .iter()
        .map(|c| {
            [
                c.path.escape_debug().to_string(),
                c.kind.to_owned(),
                c.cells.to_string(),
                c.dynamic.to_string(),
                if c.same_stamp {
                    "same stamp"
                } else {
                    "stamps per cell"
                }
                .to_owned(),
                c.bytes.to_string(),
            ]
        })
        .collect();
    let head = ["path", "kind", "cells", "dynamic", "stamps", "bytes"];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in w.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let _ = writeln!(s, "\ncolumns ({})", rows.len());
    for r in std::iter::once(head.map(str::to_owned)).chain(rows) {
        let _ = writeln!(
            s,
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:<w4$}  {:>w5$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
        );
    }

    let sections = info.sections.clone();
    let name_w = sections.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let bytes_w = info.bytes.to_string().len();
    let _ = writeln!(s, "\nsections");
    for (name, bytes) in sections {
        let _ = writeln!(
            s,
            "  {name:<name_w$}  {bytes:>bytes_w$}  {:>5.1}%",
            percent(bytes, info.bytes)
        );
    }
    s
}

/// `snapshot inspect --json`.
fn info_json(info: &vuer_rtc::snapshot::SnapshotInfo) -> serde_json::Value {
    let [keys, paths, clients] = info.tables;
    serde_json::json!({
        "version": info.version,
        "bytes": info.bytes,
        "nodes": info.nodes,
        "tombstones": info.tombstones,
        "tables": { "keys": keys, "paths": paths, "clients": clients },
        "messages": info.messages,
        "bytes_per_node": bytes_per_node(info),
        "columns": info.columns.iter().map(|c| serde_json::json!({
            "path": c.path,
            "kind": c.kind,
            "cells": c.cells,
            "dynamic": c.dynamic,
            "same_stamp": c.same_stamp,
            "bytes": c.bytes,
        })).collect::<Vec<_>>(),
        "sections": info.sections.clone().into_iter().map(|(name, bytes)| serde_json::json!({
            "name": name,
            "bytes": bytes,
            "percent": percent(bytes, info.bytes),
        })).collect::<Vec<_>>(),
    })
}

fn read_input(file: &PathBuf) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
    } else {
        bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    }
    Ok(bytes)
}

/// Reads and validates a whole messages file: all of it, or one error line.
fn read_messages(file: &PathBuf, format: Enc, limits: &LimitArgs) -> Result<Vec<Message>, String> {
    let bytes = read_input(file)?;
    wire::decode_messages(&bytes, format.into(), &Limits::from(limits)).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Telemetry {
            nodes,
            ticks,
            frame_every,
            peer,
        } => {
            let t = vuer_rtc::workload::Telemetry {
                nodes,
                ticks,
                frame_every,
                peer,
            };
            let run = t.run().map_err(|e| e.to_string())?;
            if let Some(h) = run.peer_hash {
                if h != run.state_hash {
                    return Err(format!("the peer ended on state hash {h:016x}").into());
                }
                writeln!(
                    std::io::stdout().lock(),
                    "peer: encoding {:.0} writes/s (encode_journaled), receiving {:.0} writes/s (apply_bytes of each tick), same state",
                    run.writes as f64 / run.encode_secs,
                    run.writes as f64 / run.peer_secs
                )
                .map_err(output)?;
            }
            writeln!(
                std::io::stdout().lock(),
                "{ticks} ticks x {} writes: {:.3} s, {:.0} writes/s ({:.0} ticks/s; commits alone {:.0} writes/s); renderer fed {} cells; journal {} messages ({} compacted); state hash {:016x}",
                2 * nodes,
                run.secs,
                run.writes as f64 / run.secs,
                ticks as f64 / run.secs,
                run.writes as f64 / run.commit_secs,
                run.fed_cells,
                run.journaled,
                run.compacted,
                run.state_hash
            )
            .map_err(output)?;
        }
        Command::Replay {
            file,
            format,
            pretty,
            warnings,
            batch,
            threads,
            limits,
        } => with_threads(threads, || {
            let messages = read_messages(&file, format, &limits)?;
            let size = batch.map_or(messages.len(), |b| usize::try_from(b).unwrap_or(usize::MAX));
            let mut replica = Replica::with_limits(Limits::from(&limits));
            for chunk in messages.chunks(size.max(1)) {
                let report = replica.apply_batch(chunk);
                if let Some(e) = report.rejected.first() {
                    return Err(e.to_string().into());
                }
            }
            if warnings {
                // The sequential model lists every op that did nothing, whatever the
                // delivery order (the replica reports only ops it applied in order).
                let mut model = vuer_rtc::create_empty_graph();
                for w in vuer_rtc::apply_messages(&mut model, &messages).warnings {
                    eprintln!("warning: {w}");
                }
            }
            let graph = replica.graph();
            let out = if pretty {
                graph.to_json_pretty()
            } else {
                graph.to_json()
            };
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{out}").map_err(output)
        })?,
        Command::Bench {
            messages,
            batch,
            mix,
            undo,
            input,
            threads,
            compact_every,
            auto_compact,
            horizon,
            clients,
        } => with_threads(threads, || {
            let compaction = (compact_every, auto_compact, horizon);
            bench(messages, (batch, clients), mix, undo, input, compaction)
        })?,
        Command::Workload {
            messages,
            nodes,
            mix,
            clients,
            relayed,
        } => {
            let (mut all, edits) = if relayed {
                let mut w = vuer_rtc::workload::Workload::standard().with_messages(messages);
                w.nodes = nodes;
                w.clients = clients;
                (w.scene(), w.relayed())
            } else {
                mix.build(messages, 0.0, Some((nodes, clients)))
            };
            all.extend(edits);
            std::io::stdout()
                .lock()
                .write_all(&wire::encode_messages(&all, Format::Json))
                .map_err(output)?;
        }
        Command::Journal(cmd) => journal(cmd)?,
        Command::Snapshot(cmd) => snapshot(cmd)?,
        Command::Durable(cmd) => durable(cmd)?,
        Command::Serve(args) => serve::run(args)?,
        Command::Loadtest(args) => {
            if !loadtest::run(args)? {
                return Err(Failure::Error(
                    "the run did not converge (see the report)".into(),
                ));
            }
        }
        Command::Convert {
            file,
            from,
            to,
            limits,
        } => {
            let messages = read_messages(&file, from, &limits)?;
            let out = wire::encode_messages(&messages, to.into());
            std::io::stdout().lock().write_all(&out).map_err(output)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) | Err(Failure::ClosedStdout) => ExitCode::SUCCESS,
        Err(Failure::Error(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Messages the bench makes and encodes at a time (rounded to whole batches).
const BENCH_CHUNK: usize = 100_000;

/// One batch of the bench's input.
enum Input {
    Bytes(Vec<u8>, Format),
    Owned(Vec<Message>),
}

fn bench(
    messages: usize,
    (batch, clients): (u64, usize),
    mix: BenchMix,
    undo: f64,
    input: BenchInput,
    (compact_every, auto_compact, horizon): (u64, u64, u64),
) -> Result<(), Failure> {
    use std::time::Instant;

    alloc::start_counting();
    let (scene, mut edits) = mix.stream(messages, undo, Some((10_000, clients)));
    let mut replica = Replica::new();
    replica.set_horizon(horizon);
    replica.apply_batch(&scene);
    drop(scene);
    replica.set_auto_compact((auto_compact > 0).then_some(auto_compact));
    let size = usize::try_from(batch).unwrap_or(usize::MAX);
    let format = match input {
        BenchInput::Json => Some(Format::Json),
        BenchInput::Msgpack => Some(Format::MessagePack),
        BenchInput::None => None,
    };
    // The workload is made, split and encoded a chunk of whole batches at a time
    // (untimed), so the harness holds one chunk, not the whole stream.
    let chunk = (BENCH_CHUNK / size).max(1).saturating_mul(size);
    let (mut n, mut ops) = (0, 0);
    let (mut late, mut recomputed, mut peak, mut compacted) = (0, 0, 0, 0);
    let mut secs = 0.0;
    let mut i = 0u64;
    loop {
        let edits: Vec<Message> = edits.by_ref().take(chunk).collect();
        if edits.is_empty() {
            break;
        }
        n += edits.len();
        ops += edits.iter().map(|m| m.ops.len()).sum::<usize>();
        // Encoded input stays alive until the chunk is done (its drop is not timed);
        // pre-decoded input is handed over (moved), as a server hands over what it
        // decoded.
        let mut batches: Vec<Input> = match format {
            Some(f) => edits
                .chunks(size)
                .map(|b| Input::Bytes(wire::encode_messages(b, f), f))
                .collect(),
            None => {
                let mut it = edits.into_iter();
                std::iter::from_fn(|| {
                    let b: Vec<Message> = it.by_ref().take(size).collect();
                    (!b.is_empty()).then_some(Input::Owned(b))
                })
                .collect()
            }
        };
        let start = Instant::now();
        for b in &mut batches {
            let report = match b {
                Input::Bytes(bytes, f) => replica.apply_bytes(bytes, *f),
                Input::Owned(msgs) => replica.apply_owned(std::mem::take(msgs)),
            };
            if let Some(e) = report.rejected.first() {
                return Err(e.to_string().into());
            }
            late += report.late;
            recomputed += report.recomputed_cells;
            if report.compacted > 0 {
                // Counted before the call's compaction: the journal peaks there.
                peak = peak.max(replica.journal().len() + report.compacted);
                compacted += report.compacted;
            }
            i += 1;
            if compact_every > 0 && i.is_multiple_of(compact_every) {
                // The journal peaks right before a compaction (`stats` walks the
                // indexes, so it is not read after every batch).
                peak = peak.max(replica.stats().messages);
                compacted += replica.compact().messages;
            }
        }
        secs += start.elapsed().as_secs_f64();
    }
    let stats = replica.stats();
    let peak = peak.max(stats.messages);
    let hash = replica.state_hash();
    // The replica's own heap: what dropping it frees.
    let before = alloc::live_bytes();
    drop(replica);
    let heap = before - alloc::live_bytes();
    writeln!(
        std::io::stdout().lock(),
        "{} messages, {ops} ops in batches of {size}: {secs:.3} s, {:.0} ops/s ({} late messages, {recomputed} cells recomputed); journal {} messages (peak {peak}, {compacted} compacted), {} indexed ops; replica heap {:.1} MB ({:.0} B per node); state hash {:016x}",
        n,
        ops as f64 / secs,
        late,
        stats.messages,
        stats.indexed_ops,
        heap as f64 / 1e6,
        heap as f64 / stats.nodes.max(1) as f64,
        hash
    )
    .map_err(output)
}

/// Runs `f` on a rayon pool of `threads` workers (the global pool when `None`).
fn with_threads<T: Send, E: Send + From<String>>(
    threads: Option<u64>,
    f: impl FnOnce() -> Result<T, E> + Send,
) -> Result<T, E> {
    match threads {
        None => f(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(usize::try_from(n).unwrap_or(1))
            .build()
            .map_err(|e| format!("cannot start {n} threads: {e}"))?
            .install(f),
    }
}

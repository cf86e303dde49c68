//! The `vuer-rtc` command line.
//!
//! - `vuer-rtc replay FILE` reads an array of messages (`-` = stdin), feeds them to a
//!   [`Replica`] (all at once, or `--batch N` at a time, in file order) and prints the
//!   canonical state JSON, which does not depend on the file's order or on N. Invalid input prints one
//!   error line naming the message and op, prints nothing on stdout, and exits 1.
//! - `vuer-rtc convert FILE --to msgpack|json` re-encodes messages (compressed spelling).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use vuer_rtc::op::Limits;
use vuer_rtc::persist::{FsyncPolicy, Journal, JournalOptions, read_journal};
use vuer_rtc::wire::{self, Format};
use vuer_rtc::{Message, Replica};

// The merge allocates small strings and vectors at a high rate; mimalloc serves them
// several times faster than the system allocator (see perf/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Deepest nesting of arrays/objects inside a value.
    #[arg(long, default_value_t = Limits::default().max_depth)]
    max_depth: usize,
}

impl From<&LimitArgs> for Limits {
    fn from(a: &LimitArgs) -> Limits {
        Limits {
            max_ops_per_message: a.max_ops_per_message,
            max_string_bytes: a.max_string_bytes,
            max_collection_len: a.max_collection_len,
            max_depth: a.max_depth,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchMix {
    Standard,
    Vector3Set,
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
        /// Fraction of edit messages followed by an undo.
        #[arg(long, default_value_t = 0.0)]
        undo: f64,
        /// Feed pre-decoded messages (`none`) or encoded bytes.
        #[arg(long, value_enum, default_value = "none")]
        input: BenchInput,
        /// Worker threads for the merge (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        threads: Option<u64>,
        /// Compact after every N batches (0: never) and report the peak journal size.
        #[arg(long, value_name = "N", default_value_t = 0)]
        compact_every: u64,
        /// Compaction horizon in Lamport ticks (clients silent longer are evicted).
        #[arg(long, default_value_t = vuer_rtc::replica::DEFAULT_HORIZON)]
        horizon: u64,
    },
    /// Print a reproducible workload (the scene's messages, then the edits in arrival
    /// order) as one JSON array, e.g. to run the same workload through another engine.
    Workload {
        /// Edit messages (the standard workload has 100,000).
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Nodes in the scene (the standard workload has 10,000).
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Op mix.
        #[arg(long, value_enum, default_value = "standard")]
        mix: BenchMix,
        /// Editing clients (the standard workload has 1,000).
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Print what a client store receives from a server instead (Lamport order, 10
        /// `vector3.set` per message; see `Workload::relayed`); `--mix` is ignored.
        #[arg(long)]
        relayed: bool,
    },
    /// Work with an on-disk journal directory (append-only, checksummed segments).
    #[command(subcommand)]
    Journal(JournalCmd),
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
        /// When appends reach stable storage: `every` (each message), `never`, or a
        /// number of milliseconds.
        #[arg(long, default_value = "every", value_parser = parse_fsync)]
        fsync: FsyncPolicy,
        /// Start a new segment file once one reaches this many bytes.
        #[arg(long, default_value_t = 64 << 20)]
        segment_bytes: u64,
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

fn journal(cmd: JournalCmd) -> Result<(), String> {
    match cmd {
        JournalCmd::Append {
            dir,
            file,
            format,
            fsync,
            segment_bytes,
            limits,
        } => {
            let messages = read_messages(&file, format, &limits)?;
            let options = JournalOptions {
                fsync,
                segment_bytes,
            };
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
                writeln!(stdout, "appended {index} {}", m.id)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            j.sync().map_err(|e| e.to_string())
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
                .map_err(|e| format!("cannot write output: {e}"))
        }
    }
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

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
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
                    return Err(e.to_string());
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
            writeln!(stdout, "{out}").map_err(|e| format!("cannot write output: {e}"))
        })?,
        Command::Bench {
            messages,
            batch,
            mix,
            undo,
            input,
            threads,
            compact_every,
            horizon,
        } => with_threads(threads, || {
            bench(messages, batch, mix, undo, input, (compact_every, horizon))
        })?,
        Command::Workload {
            messages,
            nodes,
            mix,
            clients,
            relayed,
        } => {
            let mut w = vuer_rtc::workload::Workload::standard().with_messages(messages);
            w.nodes = nodes;
            w.clients = clients.max(1);
            w.mix = match mix {
                BenchMix::Standard => vuer_rtc::workload::Mix::Standard,
                BenchMix::Vector3Set => vuer_rtc::workload::Mix::Vector3Set,
            };
            let mut all = w.scene();
            all.extend(if relayed { w.relayed() } else { w.edits() });
            std::io::stdout()
                .lock()
                .write_all(&wire::encode_messages(&all, Format::Json))
                .map_err(|e| format!("cannot write output: {e}"))?;
        }
        Command::Journal(cmd) => journal(cmd)?,
        Command::Convert {
            file,
            from,
            to,
            limits,
        } => {
            let messages = read_messages(&file, from, &limits)?;
            let out = wire::encode_messages(&messages, to.into());
            std::io::stdout()
                .lock()
                .write_all(&out)
                .map_err(|e| format!("cannot write output: {e}"))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(
    messages: usize,
    batch: u64,
    mix: BenchMix,
    undo: f64,
    input: BenchInput,
    (compact_every, horizon): (u64, u64),
) -> Result<(), String> {
    use std::time::Instant;
    use vuer_rtc::workload::{Mix, Workload};

    let mut w = Workload::standard().with_messages(messages);
    w.undo = undo;
    w.mix = match mix {
        BenchMix::Standard => Mix::Standard,
        BenchMix::Vector3Set => Mix::Vector3Set,
    };
    let edits = w.edits();
    let mut replica = Replica::new();
    replica.set_horizon(horizon);
    replica.apply_batch(&w.scene());
    let size = usize::try_from(batch).unwrap_or(usize::MAX);
    let batches: Vec<&[Message]> = edits.chunks(size).collect();
    let format = match input {
        BenchInput::Json => Some(Format::Json),
        BenchInput::Msgpack => Some(Format::MessagePack),
        BenchInput::None => None,
    };
    let encoded: Vec<Vec<u8>> = match format {
        Some(f) => batches
            .iter()
            .map(|b| wire::encode_messages(b, f))
            .collect(),
        None => Vec::new(),
    };
    let ops: usize = edits.iter().map(|m| m.ops.len()).sum();
    // Pre-decoded input is handed over (moved), as a server hands over what it decoded.
    let mut owned: Vec<Option<Vec<Message>>> = match format {
        None => batches.iter().map(|b| Some(b.to_vec())).collect(),
        Some(_) => Vec::new(),
    };
    let (mut late, mut recomputed, mut peak, mut compacted) = (0, 0, 0, 0);
    let start = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        let report = match format {
            Some(f) => replica.apply_bytes(&encoded[i], f),
            None => replica.apply_owned(owned[i].take().unwrap_or_else(|| b.to_vec())),
        };
        if let Some(e) = report.rejected.first() {
            return Err(e.to_string());
        }
        late += report.late;
        recomputed += report.recomputed_cells;
        peak = peak.max(replica.stats().messages);
        if compact_every > 0 && (i as u64 + 1).is_multiple_of(compact_every) {
            compacted += replica.compact().messages;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = replica.stats();
    println!(
        "{} messages, {ops} ops in batches of {size}: {secs:.3} s, {:.0} ops/s ({} late messages, {recomputed} cells recomputed); journal {} messages (peak {peak}, {compacted} compacted), {} indexed ops; state hash {:016x}",
        edits.len(),
        ops as f64 / secs,
        late,
        stats.messages,
        stats.indexed_ops,
        replica.state_hash()
    );
    Ok(())
}

/// Runs `f` on a rayon pool of `threads` workers (the global pool when `None`).
fn with_threads<T: Send>(
    threads: Option<u64>,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    match threads {
        None => f(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(usize::try_from(n).unwrap_or(1))
            .build()
            .map_err(|e| format!("cannot start {n} threads: {e}"))?
            .install(f),
    }
}

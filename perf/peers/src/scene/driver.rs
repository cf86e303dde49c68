//! The `scene` command line: runs each system in its own child process (this binary
//! again, with the hidden `--child NAME`), so that one system's allocator state and
//! heap never reach another's numbers, then prints markdown tables (ratios relative to
//! vuer-rtc), and optionally writes JSON and PNG charts.
//!
//! `scene [--quick] [--messages N] [--runs R] [--system NAME ...] [--no-scaling]
//! [--json FILE] [--charts DIR]`: `--quick` is 10,000 messages; the default is the
//! standard 100,000. Charts go to `--charts DIR`, or to `perf/peers/charts/` for a run
//! of the standard size.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::automerge::Automerge;
use super::loro::Loro;
use super::model::{Report, Scene};
use super::run::{run, Config, AUTHORS};
use super::vuer::Vuer;
use super::yrs::Yrs;
use crate::chart::{self, Series};

/// Every system, in table order (vuer-rtc first: the ratios are relative to it).
const SYSTEMS: [&str; 4] = [Vuer::NAME, Yrs::NAME, Loro::NAME, Automerge::NAME];

/// The marker of the child's result line on its stdout.
const MARK: &str = "PEERS-JSON ";

struct Args {
    messages: usize,
    runs: usize,
    systems: Vec<String>,
    scaling: bool,
    json: Option<PathBuf>,
    charts: Option<PathBuf>,
    child: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}");
    eprintln!(
        "usage: peers scene [--quick] [--messages N] [--runs R] [--system NAME ...] \
         [--no-scaling] [--json FILE] [--charts DIR]"
    );
    std::process::exit(2);
}

fn parse(mut it: impl Iterator<Item = String>) -> Args {
    let standard = vuer_rtc::workload::SceneA::standard().messages;
    let mut a = Args {
        messages: standard,
        runs: 3,
        systems: Vec::new(),
        scaling: true,
        json: None,
        charts: None,
        child: None,
    };
    let mut charts_given = false;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match arg.as_str() {
            "--quick" => a.messages = 10_000,
            "--messages" => {
                a.messages = value("--messages")
                    .parse()
                    .unwrap_or_else(|_| usage("--messages needs a number"))
            }
            "--runs" => {
                a.runs = value("--runs")
                    .parse()
                    .unwrap_or_else(|_| usage("--runs needs a number"))
            }
            "--system" => a.systems.push(value("--system")),
            "--no-scaling" => a.scaling = false,
            "--json" => a.json = Some(value("--json").into()),
            "--charts" => {
                a.charts = Some(value("--charts").into());
                charts_given = true;
            }
            "--child" => a.child = Some(value("--child")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if !charts_given && a.messages == standard {
        a.charts = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("charts"));
    }
    for s in &a.systems {
        if !SYSTEMS.contains(&s.as_str()) {
            usage(&format!("unknown system {s} (one of {})", SYSTEMS.join(", ")));
        }
    }
    a
}

/// The `scene` subcommand.
pub fn main(args: impl Iterator<Item = String>) {
    let a = parse(args);
    let cfg = Config {
        messages: a.messages,
        runs: a.runs,
        scaling: a.scaling,
    };
    if let Some(name) = &a.child {
        let report = match name.as_str() {
            n if n == Vuer::NAME => run::<Vuer>(&cfg),
            n if n == Yrs::NAME => run::<Yrs>(&cfg),
            n if n == Loro::NAME => run::<Loro>(&cfg),
            n if n == Automerge::NAME => run::<Automerge>(&cfg),
            other => usage(&format!("unknown system {other}")),
        };
        let json = serde_json::to_string(&report).expect("report serializes");
        println!("{MARK}{json}");
        return;
    }

    let exe = std::env::current_exe().expect("path of this binary");
    let mut reports: Vec<Report> = Vec::new();
    for name in SYSTEMS {
        if !a.systems.is_empty() && !a.systems.iter().any(|s| s == name) {
            continue;
        }
        eprintln!("== {name}: child process");
        let mut cmd = Command::new(&exe);
        cmd.args(["scene", "--child", name])
            .args(["--messages", &a.messages.to_string()])
            .args(["--runs", &a.runs.to_string()]);
        if !a.scaling {
            cmd.arg("--no-scaling");
        }
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().find_map(|l| l.strip_prefix(MARK)) {
            Some(json) if out.status.success() => match serde_json::from_str(json) {
                Ok(r) => reports.push(r),
                Err(e) => eprintln!("== {name}: FAILED: bad report: {e}"),
            },
            _ => eprintln!("== {name}: FAILED: child exited with {}", out.status),
        }
    }
    if reports.is_empty() {
        std::process::exit(1);
    }
    print!("{}", tables(&reports, a.runs));
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&reports).expect("reports serialize");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("write {}: {e}", path.display());
        }
    }
    if let Some(dir) = &a.charts {
        if let Err(e) = charts(dir, &reports) {
            eprintln!("charts: {e}");
        } else {
            eprintln!("charts written to {}", dir.display());
        }
    }
}

// ---------------------------------------------------------------------------------
// Tables.

const ROWS: [(&str, &str); 6] = [
    ("a1", "A1 receive, 1 update per call"),
    ("a1b-all", "A1b receive, all updates in 1 call"),
    ("a1b-1000", "A1b receive, 1,000 updates per call"),
    ("a2", "A2 local edits, 1 commit per message"),
    ("decode", "vuer-rtc split of A1: decode only"),
    ("apply", "vuer-rtc split of A1: apply pre-decoded"),
];

fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else {
        format!("{:.0} k/s", per_sec / 1e3)
    }
}

fn mib(b: i64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn ratio(x: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "-".into(),
    }
}

/// `12345678` as `12,345,678`.
fn thousands(n: usize) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A check for a table cell: `ok`, or `MISMATCH (N nodes)` with the details kept for
/// a note under the tables.
fn cell(check: &str, notes: &mut Vec<String>) -> String {
    if check == "ok" || check == "-" {
        return check.to_owned();
    }
    if !notes.iter().any(|n| n == check) {
        notes.push(check.to_owned());
    }
    let count = check
        .strip_prefix("MISMATCH: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or("?");
    format!("MISMATCH ({count} nodes, note {})", notes.iter().position(|n| n == check).unwrap_or(0) + 1)
}

fn tables(reports: &[Report], runs: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut notes: Vec<String> = Vec::new();
    let r0 = &reports[0];
    let vuer = reports.iter().find(|r| r.system == Vuer::NAME);
    let _ = writeln!(
        s,
        "\nWorkload A: {} nodes, {} messages × {} writes = {} writes, {} authors; \
         best of up to {runs} runs (a row stops repeating after {} s).\n",
        thousands(r0.nodes),
        thousands(r0.messages),
        r0.writes_per_message,
        thousands(r0.messages * r0.writes_per_message),
        thousands(r0.authors),
        super::run::BUDGET.as_secs()
    );

    let _ = writeln!(s, "### Receive and edit\n");
    let _ = writeln!(s, "| row | system | time | writes/s | vs vuer-rtc | check |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|");
    for (id, label) in ROWS {
        let base = vuer.and_then(|v| v.rows.iter().find(|r| r.id == id)).map(|r| r.secs);
        for r in reports {
            let Some(row) = r.rows.iter().find(|x| x.id == id) else {
                continue;
            };
            let vs = if id == "decode" || id == "apply" {
                // The split rows compare with vuer-rtc's own A1.
                let a1 = r.rows.iter().find(|x| x.id == "a1").map(|x| x.secs);
                a1.map_or("-".into(), |a| format!("{:.0} % of A1", 100.0 * row.secs / a))
            } else {
                ratio(row.secs, base)
            };
            let _ = writeln!(
                s,
                "| {label} | {} | {:.0} ms | {} | {vs} | {} |",
                r.system,
                row.secs * 1e3,
                rate(row.writes as f64 / row.secs),
                cell(&row.check, &mut notes)
            );
        }
    }

    let _ = writeln!(s, "\n### Memory of a receiver (live heap, counting allocator)\n");
    let _ = writeln!(
        s,
        "| system | base scene | B/node | after the writes | B/node | vs vuer-rtc | check |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    let base_after = vuer.map(|v| v.memory.after as f64);
    for r in reports {
        let m = &r.memory;
        let per = |b: i64| format!("{:.0}", b as f64 / r.nodes as f64);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.system,
            mib(m.base),
            per(m.base),
            mib(m.after),
            per(m.after),
            ratio(m.after as f64, base_after),
            cell(&m.check, &mut notes)
        );
        if let Some(c) = m.compacted {
            let _ = writeln!(
                s,
                "| {} after `Replica::compact` | | | {} | {} | {} | {} |",
                r.system,
                mib(c),
                per(c),
                ratio(c as f64, base_after),
                cell(&m.check, &mut notes)
            );
        }
    }
    for r in reports {
        if let Some(n) = &r.memory.compact_note {
            let _ = writeln!(s, "\n{}: {n}.", r.system);
        }
    }

    let _ = writeln!(s, "\n### Snapshot of the final document\n");
    let _ = writeln!(
        s,
        "| system | bytes | B/node | encode | load | load + read every node | vs vuer-rtc (load + read) | check |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
    let base_lr = vuer.map(|v| v.snapshot.load_read_secs);
    for r in reports {
        let p = &r.snapshot;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |",
            r.system,
            p.bytes,
            p.bytes as f64 / r.nodes as f64,
            p.encode_secs * 1e3,
            p.load_secs * 1e3,
            p.load_read_secs * 1e3,
            ratio(p.load_read_secs, base_lr),
            cell(&p.check, &mut notes)
        );
    }

    if reports.iter().any(|r| !r.scaling.is_empty()) {
        let _ = writeln!(s, "\n### A1 by number of authors (writes/s; in brackets: time vs vuer-rtc)\n");
        let _ = write!(s, "| authors |");
        for r in reports {
            let _ = write!(s, " {} |", r.system);
        }
        let _ = write!(s, "\n|---:|");
        for _ in reports {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s);
        for n in AUTHORS {
            let base = vuer.and_then(|v| v.scaling.iter().find(|x| x.authors == n)).map(|x| x.secs);
            let _ = write!(s, "| {n} |");
            for r in reports {
                match r.scaling.iter().find(|x| x.authors == n) {
                    Some(x) => {
                        let bad = if x.check == "ok" {
                            String::new()
                        } else {
                            format!(" {}", cell(&x.check, &mut notes))
                        };
                        let _ = write!(
                            s,
                            " {} ({}){bad} |",
                            rate(x.writes as f64 / x.secs),
                            ratio(x.secs, base)
                        );
                    }
                    None => {
                        let _ = write!(s, " - |");
                    }
                }
            }
            let _ = writeln!(s);
        }
    }

    let _ = writeln!(s, "\n### Encodings (untimed setup)\n");
    let _ = writeln!(s, "| system | base scene bytes | update bytes, total | bytes/message | setup |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in reports {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.1} s |",
            r.system,
            r.base_bytes,
            r.update_bytes,
            r.update_bytes as f64 / r.messages.max(1) as f64,
            r.setup_secs
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\nNotes on the checks:\n");
        for (i, n) in notes.iter().enumerate() {
            let _ = writeln!(s, "{}. {n}", i + 1);
        }
    }
    let _ = writeln!(s, "\nModels:\n");
    for r in reports {
        let _ = writeln!(s, "- {}: {}.", r.system, r.model);
    }
    s
}

// ---------------------------------------------------------------------------------
// Charts.

fn charts(dir: &Path, reports: &[Report]) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let rows = &ROWS[..4];
    let groups: Vec<String> = ["A1 1/call", "A1b all in 1", "A1b 1,000/call", "A2 local"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let series: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            name: r.system.clone(),
            values: rows
                .iter()
                .map(|(id, _)| {
                    r.rows
                        .iter()
                        .find(|x| x.id == *id)
                        .map(|x| x.writes as f64 / x.secs)
                })
                .collect(),
        })
        .collect();
    let r0 = &reports[0];
    chart::bars(
        &dir.join("scene-throughput.png"),
        &format!(
            "Workload A: {} writes into a {}-node scene (writes/s, log scale)",
            thousands(r0.messages * r0.writes_per_message),
            thousands(r0.nodes)
        ),
        "writes/s",
        &groups,
        &series,
        true,
    )?;

    let groups = vec!["base scene".to_string(), "after the writes".to_string()];
    let mut series: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            name: r.system.clone(),
            values: vec![
                Some(r.memory.base as f64 / r.nodes as f64),
                Some(r.memory.after as f64 / r.nodes as f64),
            ],
        })
        .collect();
    if let Some(v) = reports.iter().find(|r| r.memory.compacted.is_some()) {
        series.push(Series {
            name: format!("{} compacted", v.system),
            values: vec![None, v.memory.compacted.map(|c| c as f64 / v.nodes as f64)],
        });
    }
    chart::bars(
        &dir.join("scene-memory.png"),
        "Workload A: live heap of a receiver, bytes per node (log scale)",
        "bytes/node",
        &groups,
        &series,
        true,
    )?;

    let groups = vec![
        "encode (ms)".to_string(),
        "load (ms)".to_string(),
        "load + read all (ms)".to_string(),
        "size (KiB)".to_string(),
    ];
    let series: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            name: r.system.clone(),
            values: vec![
                Some(r.snapshot.encode_secs * 1e3),
                Some(r.snapshot.load_secs * 1e3),
                Some(r.snapshot.load_read_secs * 1e3),
                Some(r.snapshot.bytes as f64 / 1024.0),
            ],
        })
        .collect();
    chart::bars(
        &dir.join("scene-snapshot.png"),
        "Workload A: snapshot of the final document (log scale)",
        "ms / KiB",
        &groups,
        &series,
        true,
    )?;

    if reports.iter().any(|r| !r.scaling.is_empty()) {
        let xs: Vec<f64> = AUTHORS.iter().map(|&n| n as f64).collect();
        let series: Vec<Series> = reports
            .iter()
            .map(|r| Series {
                name: r.system.clone(),
                values: AUTHORS
                    .iter()
                    .map(|&n| {
                        r.scaling
                            .iter()
                            .find(|x| x.authors == n)
                            .map(|x| x.writes as f64 / x.secs)
                    })
                    .collect(),
            })
            .collect();
        chart::lines(
            &dir.join("scene-authors.png"),
            "Workload A, row A1: receive throughput by number of authors",
            "authors",
            "writes/s",
            &xs,
            &series,
        )?;
    }
    Ok(())
}

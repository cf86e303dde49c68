//! The public editing traces in `benches/data/` (CC BY 4.0, see `benches/data/README.md`),
//! loaded for the text benchmarks (criterion's `text/*` and iai's `text_*`).

use std::io::Read;

use serde_json::Value;

/// One transaction of a trace.
pub struct Txn {
    /// Indexes of the transactions it was made on (concurrent traces).
    pub parents: Vec<usize>,
    /// The agent that made it (concurrent traces).
    pub agent: usize,
    /// `(position, deleted, inserted)` in code points.
    pub patches: Vec<(usize, usize, String)>,
}

/// An editing trace.
pub struct Trace {
    /// The text before the first transaction.
    pub start: String,
    /// The text after the last one.
    pub end: String,
    /// The transactions.
    pub txns: Vec<Txn>,
}

/// Loads `benches/data/{name}.json.gz`.
pub fn load(name: &str) -> Trace {
    let path = format!("{}/benches/data/{name}.json.gz", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).expect("the trace is in benches/data");
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .expect("gzipped JSON");
    let v: Value = serde_json::from_str(&json).expect("trace JSON");
    let txns = v["txns"]
        .as_array()
        .expect("txns")
        .iter()
        .map(|t| Txn {
            parents: t["parents"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as usize)
                        .collect()
                })
                .unwrap_or_default(),
            agent: t["agent"].as_u64().unwrap_or(0) as usize,
            patches: t["patches"]
                .as_array()
                .expect("patches")
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().expect("pos") as usize,
                        p[1].as_u64().expect("del") as usize,
                        p[2].as_str().expect("ins").to_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    Trace {
        start: v["startContent"].as_str().unwrap_or("").to_owned(),
        end: v["endContent"].as_str().expect("endContent").to_owned(),
        txns,
    }
}

//! `adl-bench`: events/s of the eight ADL benchmark queries on a generated NanoAOD-like
//! dataset with ALYX's local engine, and in the same run the same queries over the same events
//! with ROOT's RDataFrame and with awkward-array (`scripts/adl_peers.py`), as ratios.
//!
//! Run: `cargo run -p alyx-tests --bin adl-bench -- [--events N] [--dir DIR] [--python PY]`.
//! The dataset is generated once into DIR (default ~/.cache/alyx/bench/nano-N). The peers
//! need a Python with root==0.1a12, awkward, uproot and pyarrow (`--python`, default
//! $ALYX_PEERS_PYTHON); without one, only ALYX's figures are printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use alyx_datasets as datasets;
use alyx_query::{self as query, Engine, adl};
use alyx_sim::nano::NanoConfig;
use alyx_store::DataStore;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let events: u64 = arg("--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = arg("--dir").map(PathBuf::from).unwrap_or_else(|| {
        dirs::home_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(format!(".cache/alyx/bench/nano-{events}"))
    });
    let python = arg("--python").or_else(|| std::env::var("ALYX_PEERS_PYTHON").ok());
    println!(
        "adl-bench: {events} NanoAOD-like events, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let store = DataStore::open(&dir).expect("data directory");
    let dataset = match store.dataset("nano") {
        Ok(d) if d.manifest().event_count() == events => d,
        _ => {
            let _ = std::fs::remove_dir_all(dir.join("nano"));
            let t = Instant::now();
            let d =
                datasets::generate_nano(&store, "nano", NanoConfig::new(1), events, &mut |_| {})
                    .expect("generate");
            println!(
                "generated in {:.1} s into {}",
                t.elapsed().as_secs_f64(),
                d.dir().display()
            );
            d
        }
    };

    // Every engine is timed on files in the page cache: the peers read theirs just after
    // writing them, so ALYX's are read once first.
    let t = Instant::now();
    let mut bytes = 0u64;
    for entry in walk(dataset.dir()) {
        bytes += std::fs::read(&entry).map_or(0, |b| b.len() as u64);
    }
    println!(
        "  warmed the page cache: {:.1} GB of Parquet read in {:.1} s",
        bytes as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );

    let mut alyx = BTreeMap::new();
    for n in 1..=8u8 {
        let (title, spec, plots) = adl::query(n).expect("query");
        let checked = query::check(&spec.query().expect("builder"), Engine::Local).expect("valid");
        let kernel = query::kernel::recognize(checked.query()).is_some();
        let t = Instant::now();
        let plots: Vec<_> = plots
            .iter()
            .map(|p| (p.column.to_owned(), p.binning.clone()))
            .collect();
        let entries: Vec<u64> = query::histograms_local(&dataset, &checked, &plots)
            .expect("histograms")
            .iter()
            .map(|h| h.entries.iter().sum::<u64>())
            .collect();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  ALYX Q{n} {secs:7.2} s  {:>12.0} events/s  entries {entries:?}  ({title}){}",
            events as f64 / secs,
            if kernel { " [per-event kernel]" } else { "" }
        );
        alyx.insert(n, secs);
    }

    let Some(python) = python else {
        println!("no peers: pass --python PY (a Python with root, awkward, uproot, pyarrow)");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/adl_peers.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dataset.dir())
        .output()
        .expect("run the peers");
    if !out.status.success() {
        println!("peers failed:\n{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let mut peers: BTreeMap<(String, u8), (f64, Vec<u64>)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let peer = v["peer"].as_str().unwrap_or("").to_owned();
        if peer == "load" {
            println!(
                "  peers: loading the Parquet chunks into awkward arrays took {:.1} s",
                v["seconds"].as_f64().unwrap_or(0.0)
            );
            continue;
        }
        let q = v["query"].as_u64().unwrap_or(0) as u8;
        let entries = v["entries"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default();
        peers.insert(
            (peer, q),
            (v["seconds"].as_f64().unwrap_or(f64::NAN), entries),
        );
    }
    println!(
        "\n  query   ALYX ev/s   RDataFrame ev/s   awkward ev/s   ALYX÷RDF   ALYX÷awkward   RDF entries"
    );
    for n in 1..=8u8 {
        let rate = |s: f64| events as f64 / s;
        let a = alyx[&n];
        let r = peers.get(&("rdataframe".into(), n));
        let k = peers.get(&("awkward".into(), n));
        println!(
            "  Q{n}   {:>11.0}   {:>15.0}   {:>12.0}   {:>8.2}   {:>12.2}   {:?}",
            rate(a),
            r.map_or(f64::NAN, |r| rate(r.0)),
            k.map_or(f64::NAN, |k| rate(k.0)),
            r.map_or(f64::NAN, |r| r.0 / a),
            k.map_or(f64::NAN, |k| k.0 / a),
            r.map(|r| r.1.clone()).unwrap_or_default(),
        );
    }
}

/// The files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

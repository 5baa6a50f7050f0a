//! `alyx-bench`: throughput figures for the foundation, printed (not asserted).
//!
//! - generator events/s and hits/s, pp and central Pb–Pb (all cores);
//! - Parquet write and read, MB/s and events/s;
//! - ROOT import events/s on uproot-HZZ.root (a TTree), on CMS's 1000-event RNTuple and on an
//!   RNTuple 200 times its size written by uproot, and the same reads done by uproot in the
//!   same run (a venv at $ALYX_VENV, default ~/.cache/alyx/venv, made with pip on first use).
//!
//! Run: `cargo run -p alyx-tests --bin alyx-bench [-- --quick]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use alyx_core::CollisionEvent;
use alyx_core::DetectorGeometry;
use alyx_datasets as datasets;
use alyx_import::root;
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};
use alyx_store::{DataStore, Table};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 1 } else { 4 };
    println!(
        "alyx-bench on {} cores{}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if quick { " (quick)" } else { "" }
    );

    let pp = EventGenerator::new(GeneratorConfig::pp(1), DetectorGeometry::alice_barrel());
    let pbpb = EventGenerator::new(
        GeneratorConfig::pbpb(1, Centrality::Central),
        DetectorGeometry::alice_barrel(),
    );
    let pp_events = generate("pp", &pp, 5_000 * scale);
    let pbpb_events = generate("Pb-Pb central", &pbpb, scale);

    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    for (name, events, config) in [
        ("pp", &pp_events, pp.config()),
        ("Pb-Pb central", &pbpb_events, pbpb.config()),
    ] {
        let mut ds = store
            .create_dataset(&name.replace(' ', "-"), "bench")
            .expect("dataset");
        let start = Instant::now();
        // In chunks, as `alyxctl generate` writes them.
        for chunk in events.chunks(datasets::chunk_events(config) as usize) {
            ds.append(chunk).expect("append");
        }
        let secs = start.elapsed().as_secs_f64();
        let mb = ds.manifest().bytes() as f64 / 1e6;
        println!(
            "parquet write {name:<14} {:>9.0} events/s {:>7.1} MB/s  ({} events, {mb:.1} MB on disk)",
            events.len() as f64 / secs,
            mb / secs,
            events.len()
        );
        // Read back in a fresh handle: checksums verified, all tables decoded into events.
        let reopened = alyx_store::Dataset::open(ds.dir()).expect("reopen");
        let start = Instant::now();
        let back = reopened.read_events(0..u64::MAX).expect("read");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parquet read  {name:<14} {:>9.0} events/s {:>7.1} MB/s  (full events, all tables)",
            back.len() as f64 / secs,
            mb / secs
        );
        let start = Instant::now();
        let hits = reopened
            .scan(Table::Hits)
            .expect("scan")
            .collect()
            .expect("collect");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parquet scan  {name:<14} {:>9.2} M hits/s   (hits table, {} rows)",
            hits.height() as f64 / secs / 1e6,
            hits.height()
        );
    }

    let data = std::env::var_os("ALYX_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let hzz = data.join("root/uproot-HZZ.root");
    if !hzz.exists() {
        println!(
            "ROOT import: {} not found (set ALYX_TEST_DATA)",
            hzz.display()
        );
        return;
    }
    let python = match uproot_python() {
        Ok(python) => Some(python),
        Err(e) => {
            println!("uproot: not measured ({e})");
            None
        }
    };
    root_read(
        "uproot-HZZ.root (TTree)",
        &hzz,
        "events",
        5 * scale,
        python.as_deref(),
    );

    // RNTuple: the CMS open-data file, and one 200 times its size written by uproot.
    let rntuple = data.join("root/Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root");
    if !rntuple.exists() {
        println!("RNTuple: {} not found", rntuple.display());
        return;
    }
    root_read(
        "CMS dimuons, 1000 (RNTuple)",
        &rntuple,
        "Events",
        40 * scale,
        python.as_deref(),
    );
    let Some(python) = python else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("dimuons-200k-rntuple.root");
    let script = format!(
        "import uproot, awkward as ak\n\
         a = uproot.open({src:?})['Events'].arrays(['nMuon', 'Muon_pt', 'Muon_eta', 'Muon_phi', 'Muon_mass', 'Muon_charge'])\n\
         a = ak.concatenate([a] * 200)\n\
         with uproot.recreate({dst:?}) as f:\n    f.mkrntuple('Events', {{k: a[k] for k in a.fields}})",
        src = rntuple.display().to_string(),
        dst = big.display().to_string()
    );
    match Command::new(&python).args(["-c", &script]).output() {
        Ok(o) if o.status.success() => root_read(
            "CMS dimuons ×200, uproot-written (RNTuple)",
            &big,
            "Events",
            scale,
            Some(&python),
        ),
        Ok(o) => println!(
            "RNTuple ×200: uproot could not write it: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("RNTuple ×200: {e}"),
    }
}

/// ALYX's import of `file` (automatic mapping, into CollisionEvents) and, with `python`,
/// uproot's read of the same branches or fields into awkward arrays, `repeats` times each.
fn root_read(label: &str, file: &Path, object: &str, repeats: u64, python: Option<&Path>) {
    let start = Instant::now();
    let mut n = 0;
    let mut report = None;
    for _ in 0..repeats {
        let (events, r) = root::import(file, None, None).expect("import");
        n += events.len();
        report = Some(r);
    }
    let alyx_rate = n as f64 / start.elapsed().as_secs_f64();
    println!("ALYX   {label:<44} {alyx_rate:>9.0} events/s");
    let Some(python) = python else { return };
    // The branches the automatic mapping read ("… ← Muon_pt (float[]) …").
    let branches: Vec<String> = report
        .iter()
        .flat_map(|r| r.mapped.iter())
        .flat_map(|line| {
            line.split(", ")
                .filter_map(|f| f.split(" ← ").nth(1))
                .map(|b| b.split(' ').next().unwrap_or(b).to_owned())
        })
        .collect();
    match uproot_rate(python, file, object, &branches, repeats) {
        Ok(rate) => println!(
            "uproot {label:<44} {rate:>9.0} events/s  (same {} columns, awkward arrays) → ALYX/uproot = {:.2}",
            branches.len(),
            alyx_rate / rate
        ),
        Err(e) => println!("uproot {label:<44} not measured ({e})"),
    }
}

fn generate(name: &str, g: &EventGenerator, n: u64) -> Vec<CollisionEvent> {
    let start = Instant::now();
    let events = g.events(0..n);
    let secs = start.elapsed().as_secs_f64();
    let hits: usize = events.iter().map(|e| e.hits.len()).sum();
    let tracks: usize = events.iter().map(|e| e.tracks.len()).sum();
    println!(
        "generator     {name:<14} {:>9.1} events/s {:>7.2} M hits/s  ({n} events, {:.0} tracks and {:.0} hits per event)",
        n as f64 / secs,
        hits as f64 / secs / 1e6,
        tracks as f64 / n as f64,
        hits as f64 / n as f64
    );
    events
}

/// The venv's Python with uproot and awkward, made on first use.
fn uproot_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("ALYX_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/alyx/venv")
        });
    let python = venv.join("bin/python");
    let has_uproot = Command::new(&python)
        .args(["-c", "import uproot, awkward"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_uproot {
        eprintln!("setting up {} with uproot (one time)…", venv.display());
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "-q", "uproot", "awkward", "numpy"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            return Err("could not create a venv with uproot".into());
        }
    }
    Ok(python)
}

/// `branches` of `object` in `file` read `repeats` times by uproot, events/s.
fn uproot_rate(
    python: &Path,
    file: &Path,
    object: &str,
    branches: &[String],
    repeats: u64,
) -> Result<f64, String> {
    let script = format!(
        "import time, uproot\nbr = {branches:?}\nt = time.perf_counter()\nn = 0\n\
         for _ in range({repeats}):\n    a = uproot.open({file:?})[{object:?}].arrays(br)\n    n += len(a)\n\
         print(n / (time.perf_counter() - t))",
        file = file.display().to_string()
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("uproot failed")
            .to_owned());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map_err(|e| e.to_string())
}

//! `fit-bench`: the same binned fits with ALYX (`alyx_fit`) and with iminuit 2.33 (MINUIT2) in
//! the same run, on the same histograms: the opposite-charge dimuon mass of the real HZZ file
//! around the Z (Breit–Wigner ⊗ Gaussian + exponential, the Z width fixed), the K⁰s, Λ and J/ψ
//! peaks of the demo's generated pp events (Gaussian + Chebyshev), and a 10⁶-entry toy. Prints
//! both sets of parameters and errors, their differences in units of the error, and the times.
//!
//! Run: `cargo run --release -p alyx-tests --bin fit-bench -- [--events N] [--repeat R]`.
//! iminuit comes from PyPI into a venv the bench makes once (`$ALYX_FIT_VENV`, default
//! ~/.cache/alyx/fit-venv); both start from ALYX's automatic starting values and stop at the
//! same EDM (10⁻⁶).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use alyx_core::histogram::Binning;
use alyx_datasets as datasets;
use alyx_fit::shapes::Shape;
use alyx_fit::{FitOptions, FitResult, Histogram, Model, fit, starting_params};
use alyx_query as query;
use alyx_sim::generator::GeneratorConfig;
use alyx_store::DataStore;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A fit to run with both.
struct Case {
    name: String,
    histogram: Histogram,
    model: Model,
    options: FitOptions,
}

fn histogram(ds: &alyx_store::Dataset, sql: &str, binning: Binning) -> Histogram {
    let checked = query::prepare(sql, query::Engine::Local).expect("query");
    let h = query::histogram_local(ds, &checked, "m", None, binning).expect("histogram");
    Histogram::from_core(&h).expect("fit histogram")
}

fn shape_name(s: &Shape) -> String {
    match s {
        Shape::Gauss => "gauss".into(),
        Shape::BreitWigner => "bw".into(),
        Shape::Voigt => "voigt".into(),
        Shape::Exponential => "exp".into(),
        Shape::Chebyshev(k) => format!("cheb{k}"),
        other => panic!("{other:?} is not in the peer"),
    }
}

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("ALYX_FIT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::cache_dir().unwrap_or_default().join("alyx/fit-venv"));
    let python = venv.join("bin/python");
    let ready = |p: &PathBuf| {
        Command::new(p)
            .args([
                "-c",
                "import iminuit, scipy; assert iminuit.__version__ == '2.33.0'",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    eprintln!("making {} with iminuit 2.33 (once)…", venv.display());
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "iminuit==2.33.0",
                "scipy",
                "numpy",
            ])
            .status()
            .is_ok_and(|s| s.success());
    (made && ready(&python)).then_some(python)
}

fn main() {
    let events: u64 = arg("--events").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let repeat: usize = arg("--repeat").and_then(|v| v.parse().ok()).unwrap_or(3);
    println!(
        "fit-bench: {} cores; demo pp {events} events; best of {repeat}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut cases = Vec::new();

    match alyx_tests::data_file("root/uproot-HZZ.root") {
        Some(path) => {
            let (ds, _) = datasets::import_files(&store, "hzz", &[path], None, None, &mut |_| {})
                .expect("import HZZ");
            let sql = "SELECT SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
                       FROM muons a JOIN muons b ON a.event_id = b.event_id JOIN events ev ON ev.event_id = a.event_id \
                       WHERE ev.n_muons = 2 AND a.idx = 0 AND b.idx = 1 AND a.charge * b.charge < 0";
            cases.push(Case {
                name: "HZZ Z→μμ".into(),
                histogram: histogram(&ds, sql, Binning::fixed(40, 70.0, 110.0).expect("b")),
                model: Model::parse("bw*gauss+exp").expect("model"),
                options: FitOptions {
                    fix: vec![("width".into(), 2.4952)],
                    ..FitOptions::default()
                },
            });
        }
        None => println!("(no HZZ file: ALYX_TEST_DATA)"),
    }
    let t = Instant::now();
    let pp = datasets::generate(&store, "pp", GeneratorConfig::pp(42), events, &mut |_| {})
        .expect("generate");
    println!(
        "generated {events} pp events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for (name, pids, radius, (bins, lo, hi)) in [
        ("K0s→ππ", (211, -211), 0.0, (50, 0.45, 0.55)),
        ("Λ→pπ", (2212, -211), 0.0, (50, 1.09, 1.14)),
        ("J/ψ→μμ", (-13, 13), 0.0, (40, 2.9, 3.3)),
    ] {
        let sql = query::pair_mass_sql(pids.0, pids.1, radius);
        cases.push(Case {
            name: name.into(),
            histogram: histogram(&pp, &sql, Binning::fixed(bins, lo, hi).expect("b")),
            model: Model::parse("gauss+cheb1").expect("model"),
            options: FitOptions::default(),
        });
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let toy = (0..1_000_000).map(|_| {
        if rng.random::<f64>() < 0.3 {
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            5.0 + 0.5 * (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        } else {
            -((1.0 - rng.random::<f64>() * (1.0 - (-10.0f64 / 4.0).exp())).ln()) * 4.0
        }
    });
    cases.push(Case {
        name: "toy 10⁶".into(),
        histogram: Histogram::fill(0.0, 10.0, 100, toy).expect("toy"),
        model: Model::parse("gauss+exp").expect("model"),
        options: FitOptions::default(),
    });

    // ALYX.
    let mut ours: Vec<(f64, FitResult)> = Vec::new();
    let mut jobs = Vec::new();
    for c in &cases {
        let mut best = f64::INFINITY;
        let mut result = None;
        for _ in 0..repeat {
            let t = Instant::now();
            let r = fit(&c.histogram, &c.model, &c.options).expect("fit");
            best = best.min(t.elapsed().as_secs_f64());
            result = Some(r);
        }
        let r = result.expect("a fit");
        let start = starting_params(&c.histogram, &c.model, &c.options).expect("start");
        let mut edges: Vec<f64> = r.bins.iter().map(|b| b.lo).collect();
        edges.extend(r.bins.last().map(|b| b.hi));
        jobs.push(json!({
            "name": c.name,
            "edges": edges,
            "counts": r.bins.iter().map(|b| b.count).collect::<Vec<_>>(),
            "components": c.model.components.iter().map(|k| json!({
                "shape": shape_name(&k.shape),
                "params": k.params.iter().map(|&i| c.model.params[i].name.clone()).collect::<Vec<_>>(),
                "yield": c.model.params[k.yield_param].name,
            })).collect::<Vec<_>>(),
            "params": start.iter().map(|p| json!({
                "name": p.name, "value": p.value, "step": p.step,
                "lower": p.lower, "upper": p.upper, "fixed": p.fixed,
            })).collect::<Vec<_>>(),
        }));
        ours.push((best, r));
    }

    // iminuit.
    let theirs: Option<Vec<Value>> = venv_python().and_then(|python| {
        let mut child = Command::new(python)
            .arg(alyx_tests::peer_script("iminuit_fit.py"))
            .arg(repeat.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()?
            .write_all(serde_json::to_string(&jobs).ok()?.as_bytes())
            .ok()?;
        let out = child.wait_with_output().ok()?;
        serde_json::from_slice(&out.stdout).ok()
    });
    if theirs.is_none() {
        println!("(no iminuit: ALYX's figures only)");
    }

    let mut worst_value: f64 = 0.0;
    let mut worst_error: f64 = 0.0;
    for (k, (c, (seconds, r))) in cases.iter().zip(&ours).enumerate() {
        let peer = theirs.as_ref().and_then(|t| t.get(k));
        println!(
            "\n{} — {} in {}:{} ({} entries), χ²/ndf {:.1}/{}",
            c.name,
            r.model,
            r.range.0,
            r.range.1,
            c.histogram.entries(),
            r.chi2,
            r.ndf
        );
        println!(
            "  {:<10} {:>14} {:>12} {:>14} {:>12} {:>9} {:>9}",
            "parameter", "ALYX", "± error", "iminuit", "± error", "Δ/σ", "σ ratio"
        );
        for p in r.params.iter().filter(|p| !p.fixed) {
            let (v, e) = peer
                .map(|t| (t["values"][&p.name].as_f64(), t["errors"][&p.name].as_f64()))
                .unwrap_or((None, None));
            let (dv, de) = match (v, e) {
                (Some(v), Some(e)) => ((p.value - v) / p.error, p.error / e - 1.0),
                _ => (f64::NAN, f64::NAN),
            };
            if dv.is_finite() {
                worst_value = worst_value.max(dv.abs());
                worst_error = worst_error.max(de.abs());
            }
            println!(
                "  {:<10} {:>14.6} {:>12.6} {:>14.6} {:>12.6} {:>+9.4} {:>+8.3}%",
                p.name,
                p.value,
                p.error,
                v.unwrap_or(f64::NAN),
                e.unwrap_or(f64::NAN),
                dv,
                100.0 * de
            );
        }
        let peer_time = peer.and_then(|t| t["seconds"].as_f64()).unwrap_or(f64::NAN);
        println!(
            "  time: ALYX {:.2} ms ({} calls, EDM {:.1e}), iminuit {:.2} ms ({} calls, EDM {:.1e}); ALYX {:.1}× {}",
            seconds * 1e3,
            r.calls,
            r.edm,
            peer_time * 1e3,
            peer.and_then(|t| t["nfcn"].as_u64()).unwrap_or(0),
            peer.and_then(|t| t["edm"].as_f64()).unwrap_or(f64::NAN),
            if *seconds < peer_time {
                peer_time / seconds
            } else {
                seconds / peer_time
            },
            if *seconds < peer_time {
                "faster"
            } else {
                "slower"
            }
        );
    }
    if theirs.is_some() {
        println!(
            "\nworst |Δvalue| {:.4} σ, worst |Δerror| {:.3}% (goal: 1% of σ, 1%)",
            worst_value,
            100.0 * worst_error
        );
    }
}

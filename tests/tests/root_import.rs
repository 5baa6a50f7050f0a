//! ROOT TTree import on the CMS open-data files in shared/data/root. Reference numbers were
//! computed with uproot on the same files.

use alyx_datasets as datasets;
use alyx_import::root::{self, Mapping};
use alyx_query as query;
use alyx_store::{DataStore, Dataset};
use alyx_tests::data_file;
use oxyroot::{RootFile, Slice};

fn import(rel: &str) -> Option<(tempfile::TempDir, Dataset)> {
    let path = data_file(rel)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let (ds, _) =
        datasets::import_files(&store, "d", &[path], None, None, &mut |_| {}).expect("import");
    Some((dir, ds))
}

fn scalar(ds: &Dataset, sql: &str) -> f64 {
    let df = alyx_tests::sql(ds, sql).expect("query");
    let v = df.columns()[0].get(0).expect("one row");
    v.extract::<f64>()
        .unwrap_or_else(|| panic!("not a number: {v:?}"))
}

#[test]
fn hzz_values_come_out_identical_to_the_file() {
    let Some((_dir, ds)) = import("root/uproot-HZZ.root") else {
        return;
    };
    assert_eq!(ds.manifest().event_count(), 2421);
    assert_eq!(ds.manifest().rows(alyx_store::Table::Muons), 3825);
    assert_eq!(ds.manifest().rows(alyx_store::Table::Jets), 2773);
    // Spot values from uproot.
    assert_eq!(
        scalar(&ds, "SELECT px FROM muons WHERE event_id = 0 AND idx = 0"),
        -52.89945602416992
    );
    assert_eq!(
        scalar(&ds, "SELECT e FROM muons WHERE event_id = 0 AND idx = 0"),
        54.77949905395508
    );
    assert_eq!(
        scalar(&ds, "SELECT met_px FROM events WHERE event_id = 0"),
        5.912771224975586
    );
    assert_eq!(
        scalar(&ds, "SELECT weight FROM events WHERE event_id = 0"),
        0.009271008893847466
    );

    // Every muon Px and charge, value for value, against the file read directly.
    let path = data_file("root/uproot-HZZ.root").expect("present");
    let tree = RootFile::open(&path)
        .expect("open")
        .get_tree("events")
        .expect("tree");
    let px: Vec<f64> = tree
        .branch("Muon_Px")
        .expect("branch")
        .as_iter::<Slice<f32>>()
        .expect("floats")
        .flat_map(|s| s.into_vec())
        .map(f64::from)
        .collect();
    let q: Vec<i32> = tree
        .branch("Muon_Charge")
        .expect("branch")
        .as_iter::<Slice<i32>>()
        .expect("ints")
        .flat_map(|s| s.into_vec())
        .collect();
    let df =
        alyx_tests::sql(&ds, "SELECT px, charge FROM muons ORDER BY event_id, idx").expect("query");
    let stored: Vec<f64> = df
        .column("px")
        .expect("px")
        .f64()
        .expect("f64")
        .into_no_null_iter()
        .collect();
    // Every engine returns integers as Int64 (the checked query's type).
    let charges: Vec<i32> = df
        .column("charge")
        .expect("q")
        .i64()
        .expect("i64")
        .into_no_null_iter()
        .map(|q| i32::try_from(q).expect("a charge"))
        .collect();
    assert_eq!(stored, px);
    assert_eq!(charges, q);
}

#[test]
fn hzz_dimuon_count_and_mean_mass_match_uproot() {
    let Some((_dir, ds)) = import("root/uproot-HZZ.root") else {
        return;
    };
    let sql = "SELECT COUNT(*) AS n, AVG(SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2))) AS m \
               FROM muons a JOIN muons b ON a.event_id = b.event_id JOIN events ev ON ev.event_id = a.event_id \
               WHERE ev.n_muons = 2 AND a.idx = 0 AND b.idx = 1 AND a.charge * b.charge < 0";
    let df = alyx_tests::sql(&ds, sql).expect("query");
    let n = df
        .column("n")
        .expect("n")
        .get(0)
        .expect("row")
        .extract::<f64>()
        .expect("count");
    let m = df
        .column("m")
        .expect("m")
        .get(0)
        .expect("row")
        .extract::<f64>()
        .expect("mean");
    // uproot (and ROOT's RDataFrame): 1364 events with exactly two opposite-charge muons.
    assert_eq!(n, 1364.0);
    assert!((m - 90.571).abs() < 0.01, "mean dimuon mass {m}");
}

/// The Z peak of the real HZZ file, fitted with a Breit–Wigner ⊗ Gaussian (the Z width fixed
/// at the PDG's) over an exponential: the Z mass within 0.5 GeV of 91.19.
#[test]
fn hzz_z_peak_fits_at_the_z_mass() {
    let Some((_dir, ds)) = import("root/uproot-HZZ.root") else {
        return;
    };
    let sql = "SELECT SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
               FROM muons a JOIN muons b ON a.event_id = b.event_id JOIN events ev ON ev.event_id = a.event_id \
               WHERE ev.n_muons = 2 AND a.idx = 0 AND b.idx = 1 AND a.charge * b.charge < 0";
    let checked = alyx_query::prepare(sql, alyx_query::Engine::Local).expect("query");
    let binning = alyx_core::histogram::Binning::fixed(40, 70.0, 110.0).expect("binning");
    let h = alyx_query::histogram_local(&ds, &checked, "m", None, binning).expect("histogram");
    let options = alyx_fit::FitOptions {
        fix: vec![("width".into(), 2.4952)],
        minos: true,
        ..alyx_fit::FitOptions::default()
    };
    let r = alyx_fit::fit(
        &alyx_fit::Histogram::from_core(&h).expect("histogram"),
        &alyx_fit::Model::parse("bw*gauss+exp").expect("model"),
        &options,
    )
    .expect("fit");
    assert!(r.converged, "{:?}", r.message);
    let m = r.param("mean").expect("mean");
    println!(
        "Z mass {:.3} ± {:.3} GeV, MINOS {:?}",
        m.value, m.error, m.minos
    );
    assert!((m.value - 91.19).abs() < 0.5, "{m:?}");
    let (lo, hi) = m.minos.expect("minos");
    assert!(
        lo.is_some_and(|v| v < 0.0) && hi.is_some_and(|v| v > 0.0),
        "{m:?}"
    );
    // The yields account for the entries in the range.
    let total = r.param("n_voigt").expect("n").value + r.param("n_exp").expect("n").value;
    let entries: f64 = r.bins.iter().map(|b| b.count).sum();
    assert!(
        (total - entries).abs() < 0.01 * entries.sqrt(),
        "{total} vs {entries}"
    );
}

#[test]
fn lzma_lz4_and_zstd_variants_import_to_the_same_tables() {
    let Some((_a, zlib)) = import("root/uproot-HZZ.root") else {
        return;
    };
    for variant in [
        "root/uproot-HZZ-lzma.root",
        "root/uproot-HZZ-lz4.root",
        "root/uproot-HZZ-zstd.root",
    ] {
        let Some((_b, other)) = import(variant) else {
            return;
        };
        for table in ["muons", "jets", "electrons", "photons"] {
            let sql = format!("SELECT * FROM {table} ORDER BY event_id, idx");
            let a = alyx_tests::sql(&zlib, &sql).expect("zlib");
            let b = alyx_tests::sql(&other, &sql).expect("variant");
            assert!(a.equals_missing(&b), "{variant}: table {table} differs");
        }
    }
}

#[test]
fn zmumu_flat_muons_reproduce_the_files_dimuon_mass() {
    let Some((_dir, ds)) = import("root/uproot-Zmumu.root") else {
        return;
    };
    assert_eq!(ds.manifest().event_count(), 2304);
    assert_eq!(
        scalar(&ds, "SELECT px FROM muons WHERE event_id = 0 AND idx = 0"),
        -41.1952876442
    );
    assert_eq!(
        scalar(&ds, "SELECT e FROM muons WHERE event_id = 0 AND idx = 0"),
        82.2018663875
    );
    assert_eq!(
        scalar(&ds, "SELECT run FROM events WHERE event_id = 0"),
        148031.0
    );
    assert_eq!(
        scalar(&ds, "SELECT event_number FROM events WHERE event_id = 0"),
        10507008.0
    );
    let pairs = "SELECT SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
                 FROM muons a JOIN muons b ON a.event_id = b.event_id WHERE a.idx = 0 AND b.idx = 1";
    let mean = scalar(&ds, &format!("WITH p AS ({pairs}) SELECT AVG(m) FROM p"));
    assert!(
        (mean - 80.20593369).abs() < 1e-6,
        "mean of the file's M branch is 80.2059, got {mean}"
    );
    let z = scalar(
        &ds,
        &format!("WITH p AS ({pairs}) SELECT AVG(m) FROM p WHERE m > 60 AND m < 120"),
    );
    assert!((z - 89.1164579).abs() < 1e-5, "Z window mean {z}");
    assert_eq!(
        scalar(
            &ds,
            &format!("WITH p AS ({pairs}) SELECT COUNT(*) FROM p WHERE m > 60 AND m < 120")
        ),
        2008.0
    );
}

#[test]
fn small_dy_jagged_with_offsets_keeps_what_the_file_has_and_no_more() {
    let Some((_dir, ds)) = import("root/uproot-small-dy-withoffsets.root") else {
        return;
    };
    assert_eq!(ds.manifest().event_count(), 501);
    assert_eq!(ds.manifest().rows(alyx_store::Table::Muons), 302);
    assert_eq!(ds.manifest().rows(alyx_store::Table::Jets), 2165);
    assert_eq!(
        scalar(&ds, "SELECT pt FROM muons ORDER BY event_id, idx LIMIT 1"),
        31.20319366455078
    );
    assert!((scalar(&ds, "SELECT AVG(pt) FROM muons") - 33.42780480).abs() < 1e-6);
    assert_eq!(
        scalar(&ds, "SELECT event_number FROM events WHERE event_id = 0"),
        41602225.0
    );
    assert_eq!(
        scalar(&ds, "SELECT met_pt FROM events WHERE event_id = 0"),
        8.589953422546387
    );
    // The file has no muon η: it stays unmeasured (null), never invented.
    assert_eq!(scalar(&ds, "SELECT COUNT(eta) FROM muons"), 0.0);
}

/// The CMS NanoAOD muons of Run2012BC as an RNTuple (format 1.0, ZSTD pages with checksums).
const RNTUPLE: &str = "root/Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root";

#[test]
fn rntuple_events_and_dimuons_match_uproot() {
    let Some(path) = data_file(RNTUPLE) else {
        return;
    };
    let Some(python) = alyx_tests::python(&["uproot", "awkward"]) else {
        return;
    };
    let (events, report) = root::import(&path, None, None).expect("RNTuple imports");
    let mapping = report.mapping.expect("mapping");
    assert_eq!(mapping.tree.as_deref(), Some("Events"));
    assert_eq!(mapping.muons[0].pt.as_deref(), Some("Muon_pt"));
    let script = "import sys, uproot, awkward as ak\n\
        a = uproot.open(sys.argv[1])['Events'].arrays(['nMuon', 'Muon_charge'])\n\
        two = (a.nMuon == 2) & (ak.sum(a.Muon_charge, axis=1) == 0)\n\
        print(len(a), int(ak.sum(a.nMuon)), int(ak.sum(two)))";
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("run uproot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("count"))
        .collect();
    let muons: usize = events.iter().map(|e| e.muons.len()).sum();
    let dimuons = events
        .iter()
        .filter(|e| e.muons.len() == 2 && e.muons[0].charge + e.muons[1].charge == 0)
        .count();
    assert_eq!(vec![events.len(), muons, dimuons], peer);
    assert!(dimuons > 100, "{dimuons}");
}

#[test]
fn an_explicit_mapping_names_the_branches() {
    let Some(path) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let mapping = Mapping::from_toml(
        r#"
        tree = "events"
        [event]
        weight = "EventWeight"
        [[electrons]]
        px = "Muon_Px"
        py = "Muon_Py"
        pz = "Muon_Pz"
        e = "Muon_E"
        "#,
    )
    .expect("mapping");
    let (events, report) = root::import(&path, None, Some(&mapping)).expect("import");
    assert_eq!(
        events.iter().map(|e| e.electrons.len()).sum::<usize>(),
        3825,
        "muon branches read as electrons"
    );
    assert!(events.iter().all(|e| e.muons.is_empty()));
    assert!(report.skipped.iter().any(|s| s.starts_with("Jet_Px")));
    let bad = Mapping::from_toml("[[muons]]\npx = \"NoSuchBranch\"").expect("parses");
    let err = root::import(&path, None, Some(&bad)).expect_err("unknown branch");
    assert!(err.to_string().contains("NoSuchBranch"), "{err}");
    assert!(
        Mapping::from_toml("[[muons]]\nmomentum = \"x\"").is_err(),
        "unknown field rejected"
    );
}

#[test]
fn truncated_and_non_root_files_are_errors() {
    let Some(path) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(&path).expect("read");
    let cut = dir.path().join("cut.root");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert!(
        root::import(&cut, None, None).is_err(),
        "a truncated file must not import"
    );
    let fake = dir.path().join("fake.root");
    std::fs::write(&fake, b"not root at all").expect("write");
    let err = root::import(&fake, None, None).expect_err("not root");
    assert!(err.to_string().contains("not a ROOT file"), "{err}");
}

#[test]
fn batched_import_gives_the_same_events_in_bounded_chunks() {
    let Some(path) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let (all, _) = root::import(&path, None, None).expect("import");
    let mut sizes = Vec::new();
    let mut batched = Vec::new();
    root::import_batches(&path, None, None, 1000, &mut |batch| {
        sizes.push(batch.len());
        batched.extend(batch);
        Ok(())
    })
    .expect("batches");
    assert_eq!(sizes, [1000, 1000, 421]);
    assert_eq!(batched.len(), all.len());
    assert!(batched.iter().zip(&all).all(|(a, b)| a.same_as(b)));
}

#[test]
fn a_failing_file_leaves_no_half_made_dataset() {
    let Some(good) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The first half of a ROOT file: its keys list is gone.
    let bytes = std::fs::read(&good).expect("read");
    let bad = dir.path().join("truncated.root");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("write");
    let store = DataStore::open(dir.path()).expect("store");
    let err = datasets::import_files(&store, "mixed", &[good, bad], None, None, &mut |_| {})
        .expect_err("a truncated file fails");
    assert!(err.to_string().contains("truncated.root"), "{err}");
    assert!(
        store.dataset_names().expect("names").is_empty(),
        "no dataset left behind"
    );
    assert!(!dir.path().join("mixed").exists());
}

/// Branches of a TTree as uproot reads them (`tests/peers/uproot_dump.py`).
struct Uproot {
    entries: usize,
    branches: serde_json::Map<String, serde_json::Value>,
}

impl Uproot {
    fn read(
        python: &std::path::Path,
        file: &std::path::Path,
        tree: &str,
        branches: &[&str],
    ) -> Self {
        let out = std::process::Command::new(python)
            .arg(alyx_tests::peer_script("uproot_dump.py"))
            .arg(file)
            .arg(tree)
            .args(branches)
            .output()
            .expect("run uproot");
        assert!(
            out.status.success(),
            "uproot failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("uproot's JSON");
        Uproot {
            entries: v["entries"].as_u64().expect("entries") as usize,
            branches: v["branches"].as_object().expect("branches").clone(),
        }
    }

    /// Entry `i` of `branch`: one number, or a list for jagged branches (as f64, exactly as
    /// uproot's float64 of the value; integers as integers).
    fn values(&self, branch: &str, i: usize) -> Vec<Number> {
        let b = &self.branches[branch];
        let float = b["kind"] == "f";
        let one = |v: &serde_json::Value| {
            if float {
                Number::F(f64::from_bits(v.as_u64().expect("bits")))
            } else {
                Number::I(
                    v.as_i64()
                        .map_or_else(|| i128::from(v.as_u64().expect("integer")), i128::from),
                )
            }
        };
        match &b["values"][i] {
            serde_json::Value::Array(list) => list.iter().map(one).collect(),
            v => vec![one(v)],
        }
    }

    fn value(&self, branch: &str, i: usize) -> Number {
        let v = self.values(branch, i);
        assert_eq!(v.len(), 1, "{branch}[{i}] is not one value");
        v[0]
    }
}

#[derive(Clone, Copy, Debug)]
enum Number {
    F(f64),
    I(i128),
}

impl Number {
    fn f64(self) -> f64 {
        match self {
            Number::F(x) => x,
            Number::I(x) => x as f64,
        }
    }

    /// Equal to `x` bit for bit (NaN equals NaN), as an integer when uproot read one.
    fn is(self, x: f64) -> bool {
        match self {
            Number::F(v) => v.to_bits() == x.to_bits() || (v.is_nan() && x.is_nan()),
            Number::I(v) => (v as f64) == x,
        }
    }
}

fn object_field(o: &alyx_core::model::PhysicsObject, field: &str) -> f64 {
    match field {
        "px" => o.px_gev,
        "py" => o.py_gev,
        "pz" => o.pz_gev,
        "e" => o.e_gev,
        "pt" => o.pt_gev,
        "eta" => o.eta,
        "phi" => o.phi,
        "mass" => o.mass_gev,
        "charge" => f64::from(o.charge),
        "iso" => o.isolation,
        "btag" => o.btag,
        other => panic!("unknown field {other}"),
    }
}

/// Imports `file` (automatic mapping, `batch` entries at a time) and checks, event by event,
/// every value the mapping names against uproot's reading of the same branches; then that the
/// dataset stores exactly those events. Returns the events.
fn assert_imports_as_uproot_reads(
    python: &std::path::Path,
    file: &std::path::Path,
    batch: usize,
) -> Vec<alyx_core::model::CollisionEvent> {
    let mut events = Vec::new();
    let report = root::import_batches(file, None, None, batch, &mut |b| {
        events.extend(b);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mapping = report.mapping.expect("a ROOT import reports its mapping");
    let tree = mapping.tree.clone().expect("tree");
    let branches: Vec<&str> = mapping.branches().into_iter().collect();
    let peer = Uproot::read(python, file, &tree, &branches);
    let name = file.file_name().expect("name").to_string_lossy();
    assert_eq!(events.len(), peer.entries, "{name}: entries");
    let e = &mapping.event;
    for (i, ev) in events.iter().enumerate() {
        let at = |what: &str| format!("{name} entry {i}: {what}");
        let h = &ev.header;
        match &e.run {
            Some(b) => assert!(
                matches!(peer.value(b, i), Number::I(r) if r == i128::from(h.run)),
                "{}",
                at("run")
            ),
            None => assert_eq!(h.run, 0),
        }
        match &e.event_number {
            Some(b) => assert!(
                matches!(peer.value(b, i), Number::I(n) if n == i128::from(h.event_number)),
                "{} {} vs {:?}",
                at("event number"),
                h.event_number,
                peer.value(b, i)
            ),
            None => assert_eq!(h.event_number, i as u64, "{}", at("event number")),
        }
        match &e.weight {
            Some(b) => assert!(peer.value(b, i).is(h.weight), "{}", at("weight")),
            None => assert_eq!(h.weight, 1.0),
        }
        for (bit, b) in e.trigger.iter().enumerate() {
            let fired = peer.value(b, i).f64() != 0.0;
            assert_eq!(h.trigger_bits >> bit & 1 == 1, fired, "{}", at(b));
        }
        let met = ev.met.as_ref();
        for (field, branch) in [
            ("met_px", &e.met_px),
            ("met_py", &e.met_py),
            ("met_pt", &e.met_pt),
            ("met_phi", &e.met_phi),
        ] {
            let Some(b) = branch else { continue };
            let m = met.unwrap_or_else(|| panic!("{}", at("MET missing")));
            let got = match field {
                "met_px" => m.px_gev,
                "met_py" => m.py_gev,
                "met_pt" => m.pt_gev,
                _ => m.phi,
            };
            assert!(
                peer.value(b, i).is(got),
                "{}: {got} vs {:?}",
                at(field),
                peer.value(b, i)
            );
        }
        for (collection, sources) in mapping.collections() {
            let objects = match collection {
                "muons" => &ev.muons,
                "electrons" => &ev.electrons,
                "photons" => &ev.photons,
                _ => &ev.jets,
            };
            let mut offset = 0;
            for source in sources {
                let fields: Vec<(&str, &String)> = source
                    .fields()
                    .into_iter()
                    .filter_map(|(f, b)| Some((f, b.as_ref()?)))
                    .collect();
                let n = fields.first().map_or(0, |(_, b)| peer.values(b, i).len());
                if let Some(count) = &source.count {
                    assert!(
                        matches!(peer.value(count, i), Number::I(c) if c == n as i128),
                        "{}",
                        at(&format!("{collection}: {count}"))
                    );
                }
                assert!(
                    objects.len() >= offset + n,
                    "{}",
                    at(&format!(
                        "{collection}: {} objects, uproot {n}",
                        objects.len()
                    ))
                );
                for (field, branch) in &fields {
                    let want = peer.values(branch, i);
                    assert_eq!(want.len(), n, "{}", at(branch));
                    for (k, w) in want.iter().enumerate() {
                        let got = object_field(&objects[offset + k], field);
                        assert!(w.is(got), "{}: object {k} {got} vs {w:?}", at(branch));
                    }
                }
                offset += n;
            }
            assert_eq!(
                objects.len(),
                offset,
                "{}",
                at(&format!("{collection}: count"))
            );
        }
    }
    // The dataset stores exactly these events, each under its own id.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let (ds, _) =
        datasets::import_files(&store, "d", &[file.to_path_buf()], None, None, &mut |_| {})
            .expect("import");
    let stored = ds.read_events(0..events.len() as u64).expect("read back");
    assert_eq!(stored.len(), events.len());
    for ((id, s), (i, e)) in stored.iter().zip(events.iter().enumerate()) {
        assert_eq!(*id, i as u64);
        assert!(
            s.same_as(e),
            "{name}: stored event {id} differs from the imported one"
        );
    }
    events
}

#[test]
fn every_root_test_file_imports_value_for_value_as_uproot_reads_it() {
    let Some(dir) = data_file("root") else { return };
    let Some(python) = alyx_tests::python(&["uproot", "awkward"]) else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("root data")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "root"))
        .collect();
    files.sort();
    files.extend(extra_root_files());
    let mut compared = 0;
    for file in &files {
        match root::import(file, None, None) {
            Ok(_) => {
                assert_imports_as_uproot_reads(&python, file, 1000);
                compared += 1;
            }
            // Refused formats (ZSTD baskets, RNTuple) say so; they are never half-read.
            Err(e) => assert!(
                e.to_string().contains("ZSTD") || e.to_string().contains("RNTuple"),
                "{}: {e}",
                file.display()
            ),
        }
    }
    assert!(compared >= 5, "compared only {compared} files");
}

/// More ROOT files to compare with uproot (NanoAOD files of one's own, say a CMS open-data
/// file), from `ALYX_EXTRA_ROOT_FILES` (paths separated by `:`).
fn extra_root_files() -> Vec<std::path::PathBuf> {
    std::env::var_os("ALYX_EXTRA_ROOT_FILES")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default()
}

/// A NanoAOD file written by ROOT 6.36 itself (`tests/peers/write_nanoaod_root.py`, UInt_t
/// counters, ROOT's basket layout): oxyroot predates its streamer-info version.
#[test]
fn files_from_a_newer_root_are_refused_with_a_clear_reason() {
    let file =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nanoaod-root-written.root");
    let err = root::import(&file, None, None).expect_err("ROOT 6.36 streamers");
    assert!(
        matches!(err, alyx_import::Error::Unsupported(_)) && err.to_string().contains("newer ROOT"),
        "{err}"
    );
}

/// Writes a NanoAOD-shaped file with uproot (`tests/peers/write_nanoaod.py`).
fn write_nanoaod(python: &std::path::Path, out: &std::path::Path, events: usize, seed: u64) {
    let status = std::process::Command::new(python)
        .arg(alyx_tests::peer_script("write_nanoaod.py"))
        .arg(out)
        .arg(events.to_string())
        .arg(seed.to_string())
        .status()
        .expect("run uproot");
    assert!(status.success(), "write_nanoaod.py failed");
}

#[test]
fn nanoaod_files_import_per_event_as_uproot_reads_them() {
    let Some(python) = alyx_tests::python(&["uproot", "awkward"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nano.root");
    // Several baskets (997 entries each) and, at 1000 entries a batch, several import batches
    // that do not line up with them.
    write_nanoaod(&python, &file, 4321, 7);
    let events = assert_imports_as_uproot_reads(&python, &file, 1000);
    // NanoAOD's counters size the collections: empty events and crowded ones both present.
    assert!(events.iter().any(|e| e.jets.is_empty()));
    assert!(events.iter().any(|e| e.jets.len() >= 30));
    assert!(events.iter().filter(|e| !e.jets.is_empty()).count() > 4000);
    let (_, report) = root::import(&file, None, None).expect("import");
    let mapping = report.mapping.expect("mapping");
    assert_eq!(mapping.jets[0].count.as_deref(), Some("nJet"));
    assert_eq!(mapping.jets[0].btag.as_deref(), Some("Jet_btagDeepB"));
    assert_eq!(mapping.muons[0].count.as_deref(), Some("nMuon"));
    assert_eq!(mapping.event.event_number.as_deref(), Some("event"));
}

#[test]
fn adl_queries_on_imported_nanoaod_files_fill_what_awkward_fills() {
    let Some(python) = alyx_tests::python(&["uproot", "awkward"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let written = dir.path().join("nano.root");
    write_nanoaod(&python, &written, 3000, 11);
    adl_queries_agree_with_awkward(&python, &written, dir.path(), true);
    for file in extra_root_files() {
        adl_queries_agree_with_awkward(&python, &file, dir.path(), false);
    }
}

fn adl_queries_agree_with_awkward(
    python: &std::path::Path,
    file: &std::path::Path,
    dir: &std::path::Path,
    every_query_fills: bool,
) {
    let store = DataStore::open(dir.join(file.file_stem().expect("name"))).expect("store");
    let (ds, _) = datasets::import_files(
        &store,
        "nano",
        &[file.to_path_buf()],
        None,
        None,
        &mut |_| {},
    )
    .expect("import");
    let out = std::process::Command::new(python)
        .arg(alyx_tests::peer_script("adl_peers.py"))
        .arg("--nanoaod")
        .arg(file)
        .output()
        .expect("run awkward");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: Vec<Vec<u64>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|x| x.as_u64().expect("count"))
                .collect()
        })
        .collect();
    assert_eq!(peer.len(), 8);
    for n in 1..=8u8 {
        let (title, spec, plots) = query::adl::query(n).expect("query");
        let checked =
            query::check(&spec.query().expect("builder"), query::Engine::Local).expect("valid");
        let plots: Vec<_> = plots
            .iter()
            .map(|p| (p.column.to_owned(), p.binning.clone()))
            .collect();
        let entries: Vec<u64> = query::histograms_local(&ds, &checked, &plots)
            .expect("histograms")
            .iter()
            .map(|h| h.entries.iter().sum::<u64>())
            .collect();
        assert_eq!(
            entries,
            peer[usize::from(n) - 1],
            "{}: Q{n} ({title})",
            file.display()
        );
        assert!(
            !every_query_fills || entries.iter().all(|e| *e > 0),
            "Q{n} fills something"
        );
        eprintln!(
            "{}: Q{n} entries {entries:?} (awkward the same)",
            file.display()
        );
    }
}

/// A ROOT TGeo geometry (Phoenix's test geometry) as ALYX reads it equals uproot's reading of
/// the same file: every placement in the same order with its node path, volume, shape class,
/// world matrix and ROOT's visibility; and each drawn shape's mesh encloses the volume the peer
/// computes from the shape's own parameters (exact for boxes and 8-vertex solids, within the
/// polygon's shortfall for a tube segment drawn with 32 sides per half turn).
#[test]
fn a_tgeo_geometry_reads_as_uproot_reads_it() {
    let Some(path) = data_file("geometry/phoenix_rootgeom.root") else {
        return;
    };
    let Some(python) = alyx_tests::python(&["uproot"]) else {
        return;
    };
    let out = std::process::Command::new(python)
        .arg(alyx_tests::peer_script("tgeo_dump.py"))
        .arg(&path)
        .output()
        .expect("run the uproot peer");
    assert!(
        out.status.success(),
        "tgeo_dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the peer's JSON");
    let g = alyx_rootio::tgeo::read(&path).expect("ALYX reads the geometry");
    assert_eq!(g.name, peer["name"].as_str().expect("name"));
    let placements = peer["placements"].as_array().expect("placements");
    assert_eq!(g.placements.len(), placements.len());
    assert!(g.not_drawn.is_empty() && g.truncated.is_none(), "{g:?}");
    let mut drawn = 0;
    for (a, p) in g.placements.iter().zip(placements) {
        let v = &g.volumes[a.volume];
        assert_eq!(a.path, p["path"].as_str().expect("path"));
        assert_eq!(v.name, p["volume"].as_str().expect("volume"), "{}", a.path);
        assert_eq!(v.shape, p["shape"].as_str().expect("shape"), "{}", a.path);
        assert_eq!(
            a.drawn,
            p["visible"].as_bool().expect("visible"),
            "{}",
            a.path
        );
        for i in 0..3 {
            for j in 0..4 {
                let want = p["matrix"][i][j].as_f64().expect("matrix");
                assert!(
                    (a.matrix[i][j] - want).abs() < 1e-9,
                    "{} [{i}][{j}]: {} vs {want}",
                    a.path,
                    a.matrix[i][j]
                );
            }
        }
        if let (true, Some(capacity)) = (a.drawn, p["capacity"].as_f64()) {
            drawn += 1;
            let enclosed = alyx_rootio::tgeo::enclosed_volume(&v.mesh);
            let tolerance = if v.shape.contains("Tube") {
                0.002
            } else {
                1e-9
            };
            assert!(
                (enclosed - capacity).abs() <= tolerance * capacity,
                "{} ({}): mesh encloses {enclosed} cm³, the shape {capacity}",
                a.path,
                v.shape
            );
        }
    }
    assert!(drawn > 100, "{drawn} drawn placements checked");
}

/// A geometry file cut short, or holding no geometry, is an error that says so.
#[test]
fn a_broken_tgeo_file_is_an_error() {
    let Some(path) = data_file("geometry/phoenix_rootgeom.root") else {
        return;
    };
    let bytes = std::fs::read(&path).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    for cut in [100, bytes.len() / 2, bytes.len() - 200] {
        let short = dir.path().join(format!("cut{cut}.root"));
        std::fs::write(&short, &bytes[..cut]).expect("write");
        assert!(alyx_rootio::tgeo::read(&short).is_err(), "cut at {cut}");
    }
    let Some(hzz) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let e = alyx_rootio::tgeo::read(&hzz).expect_err("no geometry in a TTree file");
    assert!(e.to_string().contains("no TGeoManager"), "{e}");
}

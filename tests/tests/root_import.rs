//! ROOT TTree import on the CMS open-data files in shared/data/root. Reference numbers were
//! computed with uproot on the same files.

use alyx_shared::datasets;
use alyx_shared::import::root::{self, Mapping};
use alyx_shared::query;
use alyx_shared::store::{DataStore, Dataset};
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
    let df = query::sql(ds, sql).expect("query");
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
    assert_eq!(ds.manifest().rows(alyx_shared::store::Table::Muons), 3825);
    assert_eq!(ds.manifest().rows(alyx_shared::store::Table::Jets), 2773);
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
    let df = query::sql(&ds, "SELECT px, charge FROM muons ORDER BY event_id, idx").expect("query");
    let stored: Vec<f64> = df
        .column("px")
        .expect("px")
        .f64()
        .expect("f64")
        .into_no_null_iter()
        .collect();
    let charges: Vec<i32> = df
        .column("charge")
        .expect("q")
        .i32()
        .expect("i32")
        .into_no_null_iter()
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
    let df = query::sql(&ds, sql).expect("query");
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

#[test]
fn lzma_and_lz4_variants_import_to_the_same_tables() {
    let Some((_a, zlib)) = import("root/uproot-HZZ.root") else {
        return;
    };
    for variant in ["root/uproot-HZZ-lzma.root", "root/uproot-HZZ-lz4.root"] {
        let Some((_b, other)) = import(variant) else {
            return;
        };
        for table in ["muons", "jets", "electrons", "photons"] {
            let sql = format!("SELECT * FROM {table} ORDER BY event_id, idx");
            let a = query::sql(&zlib, &sql).expect("zlib");
            let b = query::sql(&other, &sql).expect("variant");
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
    let mean = scalar(&ds, &format!("SELECT AVG(m) FROM ({pairs})"));
    assert!(
        (mean - 80.20593369).abs() < 1e-6,
        "mean of the file's M branch is 80.2059, got {mean}"
    );
    let z = scalar(
        &ds,
        &format!("SELECT AVG(m) FROM ({pairs}) WHERE m > 60 AND m < 120"),
    );
    assert!((z - 89.1164579).abs() < 1e-5, "Z window mean {z}");
    assert_eq!(
        scalar(
            &ds,
            &format!("SELECT COUNT(*) FROM ({pairs}) WHERE m > 60 AND m < 120")
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
    assert_eq!(ds.manifest().rows(alyx_shared::store::Table::Muons), 302);
    assert_eq!(ds.manifest().rows(alyx_shared::store::Table::Jets), 2165);
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

#[test]
fn zstd_baskets_and_rntuples_fail_with_a_clear_error_not_a_crash() {
    for (rel, expected) in [
        ("root/uproot-HZZ-zstd.root", "ZSTD"),
        (
            "root/Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root",
            "RNTuple",
        ),
    ] {
        let Some(path) = data_file(rel) else { return };
        let err = root::import(&path, None, None).expect_err("unsupported");
        assert!(err.to_string().contains(expected), "{rel}: {err}");
    }
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
    let (Some(good), Some(bad)) = (
        data_file("root/uproot-HZZ.root"),
        data_file("root/uproot-HZZ-zstd.root"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let err = datasets::import_files(&store, "mixed", &[good, bad], None, None, &mut |_| {})
        .expect_err("zstd fails");
    assert!(err.to_string().contains("ZSTD"), "{err}");
    assert!(
        store.dataset_names().expect("names").is_empty(),
        "no dataset left behind"
    );
    assert!(!dir.path().join("mixed").exists());
}

//! The generator's physics, checked the way a physicist would: through SQL on a stored dataset,
//! the resonances appear at the PDG masses, and the spectra look like real data.

use alyx_core::physics::mass;
use alyx_datasets as datasets;
use alyx_query as query;
use alyx_sim::generator::GeneratorConfig;
use alyx_store::DataStore;

fn peak(
    ds: &alyx_store::Dataset,
    pids: (i32, i32),
    min_radius_cm: f64,
    window: (f64, f64),
) -> (f64, f64, f64) {
    let df = alyx_tests::sql(
        ds,
        &query::pair_mass_summary_sql(pids.0, pids.1, min_radius_cm, window),
    )
    .expect("query");
    let get = |c: &str| {
        df.column(c)
            .expect("col")
            .get(0)
            .expect("row")
            .extract::<f64>()
            .unwrap_or(f64::NAN)
    };
    (get("n"), get("mean"), get("sigma"))
}

#[test]
fn generated_pp_shows_k0s_lambda_and_jpsi_at_the_pdg_masses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let ds = datasets::generate(&store, "pp", GeneratorConfig::pp(42), 1500, &mut |_| {})
        .expect("generate");

    let (n, mean, sigma) = peak(&ds, (211, -211), 0.1, (0.45, 0.55));
    assert!(n > 300.0, "{n} K0s candidates");
    assert!((mean - mass::K0S).abs() < 0.003, "K0s peak at {mean}");
    assert!(sigma < 0.02, "K0s width {sigma}");

    let (n, mean, _) = peak(&ds, (2212, -211), 0.1, (1.09, 1.14));
    assert!(n > 50.0, "{n} Λ candidates");
    assert!((mean - mass::LAMBDA).abs() < 0.003, "Λ peak at {mean}");

    let (n, mean, _) = peak(&ds, (-13, 13), 0.0, (2.9, 3.3));
    assert!(n > 30.0, "{n} J/ψ candidates");
    assert!((mean - mass::JPSI).abs() < 0.02, "J/ψ peak at {mean}");

    // Fitted, as a physicist would: all same-vertex pairs (the combinatorial background from
    // the primary vertex under the displaced decays), a Gaussian over a linear background,
    // binned likelihood. The masses agree with the PDG's within two of their errors.
    for (name, pids, (bins, lo, hi), pdg) in [
        ("K0s", (211, -211), (50, 0.45, 0.55), mass::K0S),
        ("Λ", (2212, -211), (50, 1.09, 1.14), mass::LAMBDA),
    ] {
        let checked = query::prepare(
            &query::pair_mass_sql(pids.0, pids.1, 0.0),
            query::Engine::Local,
        )
        .expect("query");
        let binning = alyx_core::histogram::Binning::fixed(bins, lo, hi).expect("binning");
        let h = query::histogram_local(&ds, &checked, "m", None, binning).expect("histogram");
        let r = alyx_fit::fit(
            &alyx_fit::Histogram::from_core(&h).expect("histogram"),
            &alyx_fit::Model::parse("gauss+cheb1").expect("model"),
            &alyx_fit::FitOptions::default(),
        )
        .expect("fit");
        assert!(r.converged, "{name}: {:?}", r.message);
        let m = r.param("mean").expect("mean");
        println!(
            "{name}: fitted mass {:.5} ± {:.5} GeV (PDG {pdg})",
            m.value, m.error
        );
        assert!(
            (m.value - pdg).abs() < 2.0 * m.error,
            "{name}: {m:?} vs PDG {pdg}"
        );
        assert!(r.p_value > 1e-3, "{name}: χ² {}/{}", r.chi2, r.ndf);
    }

    armenteros_podolanski_separates_k0s_from_lambda(&ds);
}

/// The Armenteros–Podolanski plot of every displaced opposite-charge pair, as a notebook plot
/// cell fills it: the engine's 2-D histogram equals one filled by hand from the query's rows,
/// the K⁰s arc tops out at qT = p* = 0.206 GeV at α = 0 and the Λ arc at 0.101 GeV near
/// α = +0.69, and the histogram travels with the notebook.
fn armenteros_podolanski_separates_k0s_from_lambda(ds: &alyx_store::Dataset) {
    use alyx_analysis::notebook::{CellKind, CellOutput, Notebook, run};
    use alyx_core::histogram::{Binning, Histogram2};

    let sql = query::armenteros_sql(0.1);
    let mut nb = Notebook::new("V0s", "ada");
    let cell = nb
        .insert_cell(
            0,
            CellKind::Plot,
            &format!("-- histogram2d alpha:40:-1:1 qt:50:0:0.25\n{sql}"),
        )
        .expect("cell");
    let out = run::run_cell(ds, &nb.cell(&cell).expect("cell"));
    let CellOutput::Plots { maps, .. } = &out else {
        panic!("a 2-D plot cell gives plots: {out:?}");
    };
    let h = &maps[0].histogram;
    assert_eq!((maps[0].x.as_str(), maps[0].y.as_str()), ("alpha", "qt"));

    let rows = alyx_tests::sql(ds, &sql).expect("rows");
    let column = |c: &str| -> Vec<f64> {
        rows.column(c)
            .expect("column")
            .f64()
            .expect("floats")
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect()
    };
    let (alpha, qt) = (column("alpha"), column("qt"));
    let mut by_hand = Histogram2::new(
        Binning::fixed(40, -1.0, 1.0).expect("binning"),
        Binning::fixed(50, 0.0, 0.25).expect("binning"),
    )
    .expect("histogram");
    alpha
        .iter()
        .zip(&qt)
        .for_each(|(a, q)| by_hand.fill(*a, *q, 1.0));
    assert_eq!(h.entries, by_hand.entries);
    assert!(rows.height() > 300, "{} V0 candidates", rows.height());

    // The fullest qT row among α columns `xs` and qT rows below `below`, as its centre.
    let arc_top = |xs: std::ops::Range<usize>, below: f64| {
        let rows = (0..50).filter(|iy| (*iy as f64 + 1.0) * 0.005 <= below);
        let iy = rows
            .max_by(|a, b| {
                let n = |iy: usize| xs.clone().map(|ix| h.at(ix, iy)).sum::<f64>();
                n(*a).total_cmp(&n(*b))
            })
            .expect("rows");
        (iy as f64 + 0.5) * 0.005
    };
    let k0s = arc_top(19..21, 0.25);
    assert!((k0s - 0.206).abs() < 0.01, "K0s arc top at qT = {k0s} GeV");
    // Below the K⁰s arc, which at α ≈ 0.7 runs above 0.12 GeV.
    let lambda = arc_top(33..35, 0.12);
    assert!(
        (lambda - 0.101).abs() < 0.01,
        "Λ arc top at qT = {lambda} GeV"
    );

    nb.set_output(&cell, &out, "local", 1).expect("output");
    let back = Notebook::load(&nb.save(), "bob").expect("load");
    assert_eq!(back.cell(&cell).expect("cell").output, Some(out));
}

#[test]
fn generated_spectra_resemble_minimum_bias_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let ds = datasets::generate(&store, "pp", GeneratorConfig::pp(7), 800, &mut |_| {})
        .expect("generate");
    let one = |sql: &str| {
        let df = alyx_tests::sql(&ds, sql).expect("query");
        df.columns()[0]
            .get(0)
            .expect("row")
            .extract::<f64>()
            .expect("number")
    };
    // ⟨pT⟩ of charged hadrons at the LHC ≈ 0.5–0.7 GeV.
    let mean_pt = one("SELECT AVG(pt) FROM tracks WHERE ABS(pid) <> 13");
    assert!((0.4..0.8).contains(&mean_pt), "⟨pT⟩ = {mean_pt}");
    // η flat in the barrel: as many tracks at positive as at negative η (within 5 %).
    let asym = one(
        "SELECT (SUM(CASE WHEN eta > 0 THEN 1 ELSE 0 END) - SUM(CASE WHEN eta < 0 THEN 1 ELSE 0 END)) * 1.0 / COUNT(*) FROM tracks",
    );
    assert!(asym.abs() < 0.05, "η asymmetry {asym}");
    // Primaries fill the barrel acceptance |η| < 0.9; only decay daughters stray beyond it.
    let inside = one(
        "SELECT AVG(CASE WHEN ABS(t.eta) < 0.9 THEN 1.0 ELSE 0.0 END) FROM tracks t JOIN events e \
         ON t.event_id = e.event_id WHERE t.vx = e.vx AND t.vy = e.vy AND t.vz = e.vz",
    );
    assert!(
        inside > 0.99,
        "fraction of primaries inside |η| < 0.9: {inside}"
    );
    // Pions dominate, then kaons, then protons.
    let pions = one("SELECT COUNT(*) FROM tracks WHERE ABS(pid) = 211");
    let kaons = one("SELECT COUNT(*) FROM tracks WHERE ABS(pid) = 321");
    let protons = one("SELECT COUNT(*) FROM tracks WHERE ABS(pid) = 2212");
    assert!(
        pions > 4.0 * kaons && kaons > protons,
        "π {pions} K {kaons} p {protons}"
    );
    // Every event is minimum-bias triggered; multiplicity distribution is broad (NBD).
    assert_eq!(
        one("SELECT COUNT(*) FROM events WHERE trigger % 2 = 1"),
        800.0
    );
    let spread = one("SELECT STDDEV(n_tracks) / AVG(n_tracks) FROM events");
    assert!(spread > 0.5, "relative multiplicity spread {spread}");
}

//! The query engine on stored data: the ADL benchmark queries against plain Rust loops over the
//! same events, the builder's dimuon selection on the real HZZ file, and paging.

use alyx_core::histogram::{Binning, Histogram};
use alyx_datasets as datasets;
use alyx_query::ast::BinOp;
use alyx_query::builder::{Collection, Combine, Cut, Output, Spec};
use alyx_query::{self as query, Engine, adl, plan};
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::{DataStore, Dataset};
use alyx_tests::data_file;
use polars::prelude::*;

fn nano_dataset(
    events: u64,
) -> (
    tempfile::TempDir,
    Dataset,
    Vec<alyx_core::model::CollisionEvent>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    let config = NanoConfig::new(11);
    let all = nano::events(&config, 0..events);
    // Several chunks, as a real dataset has.
    for part in all.chunks(4000) {
        ds.append(part).expect("append");
    }
    (dir, ds, all)
}

/// Histograms agree bin by bin: identical counts, but for values a rounding step from an edge
/// (the loops use `physics`, the engines SQL arithmetic): at most one entry per bin, and a
/// handful in all.
fn assert_close(what: &str, engine: &Histogram, reference: &Histogram) {
    let moved: u64 = engine
        .entries
        .iter()
        .zip(&reference.entries)
        .map(|(a, b)| a.abs_diff(*b))
        .sum();
    assert!(
        engine
            .entries
            .iter()
            .zip(&reference.entries)
            .all(|(a, b)| a.abs_diff(*b) <= 1)
            && moved <= 4,
        "{what}: engine {:?}\nreference {:?}",
        engine.entries,
        reference.entries
    );
    let total = |h: &Histogram| h.entries.iter().sum::<u64>() as f64 + h.underflow + h.overflow;
    assert_eq!(total(engine), total(reference), "{what}: totals");
    assert!(total(reference) > 0.0, "{what}: empty");
}

#[test]
fn adl_queries_match_plain_loops_on_the_local_engine() {
    let (_dir, ds, events) = nano_dataset(12_000);
    for n in 1..=8 {
        let (title, spec, plots) = adl::query(n).expect("query");
        let q = spec.query().unwrap_or_else(|d| panic!("ADL {n}: {d}"));
        let checked = query::check(&q, Engine::Local).unwrap_or_else(|e| panic!("ADL {n}: {e:?}"));
        let reference = adl::reference(n, &events);
        for (plot, expected) in plots.iter().zip(&reference) {
            let h = query::histogram_local(&ds, &checked, plot.column, None, plot.binning.clone())
                .unwrap_or_else(|e| panic!("ADL {n} ({title}): {e}"));
            assert_close(&format!("ADL {n} {}", plot.column), &h, expected);
        }
    }
}

#[test]
fn builder_dimuon_selection_shows_the_z_peak_in_the_real_hzz_file() {
    let Some(path) = data_file("root/uproot-HZZ.root") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let (ds, _) =
        datasets::import_files(&store, "hzz", &[path], None, None, &mut |_| {}).expect("import");

    // "Opposite-charge dimuon mass in 60–120 GeV", as the builder makes it.
    let spec = Spec {
        combine: Some(Combine {
            n: 2,
            opposite_charge: true,
            same_flavour: false,
            mass: Some((60.0, 120.0)),
            closest_to: None,
        }),
        ..Spec::new(Collection::Muons, Output::Combinations)
    };
    let checked = query::check(&spec.query().expect("query"), Engine::Local).expect("valid");
    let h = query::histogram_local(
        &ds,
        &checked,
        "mass",
        None,
        Binning::Fixed {
            bins: 60,
            lo: 60.0,
            hi: 120.0,
        },
    )
    .expect("histogram");
    let peak = h.mode().expect("peak");
    assert!((89.0..93.0).contains(&peak), "Z peak at {peak}");
    assert!(h.integral() > 1000.0, "{} pairs", h.integral());

    // The reference selection: events with exactly two muons, of opposite charge.
    let spec = Spec {
        event_cuts: vec![Cut::new("n_muons", BinOp::Eq, 2.0)],
        combine: Some(Combine {
            n: 2,
            opposite_charge: true,
            same_flavour: false,
            mass: None,
            closest_to: None,
        }),
        ..Spec::new(Collection::Muons, Output::Combinations)
    };
    let checked = query::check(&spec.query().expect("query"), Engine::Local).expect("valid");
    let df = query::run_local(&ds, &checked).expect("run");
    assert_eq!(df.height(), 1364, "uproot and RDataFrame count 1364");
    let mean = df
        .column("mass")
        .expect("mass")
        .f64()
        .expect("f64")
        .mean()
        .expect("mean");
    assert!((mean - 90.571).abs() < 0.01, "mean dimuon mass {mean}");
}

/// Every page of `checked` by keyset cursors, `size` rows at a time, stacked.
fn all_pages(ds: &Dataset, checked: &query::Checked, size: u64) -> (DataFrame, usize) {
    let mut cursor = plan::Cursor::default();
    let mut joined: Option<DataFrame> = None;
    let mut pages = 0;
    loop {
        let q = plan::page(checked, &cursor, size).expect("page");
        let page = query::run_local(ds, &q).expect("page");
        let n = page.height() as u64;
        cursor = plan::next_cursor(checked, &cursor, &page).expect("cursor");
        assert_eq!(
            cursor.after.is_some(),
            n > 0,
            "a keyset cursor after every page"
        );
        pages += 1;
        match &mut joined {
            None => joined = Some(page),
            Some(j) => {
                j.vstack_mut(&page).expect("stack");
            }
        }
        if n < size {
            return (joined.expect("a page"), pages);
        }
    }
}

#[test]
fn pages_concatenated_equal_the_whole_result() {
    let (_dir, ds, _) = nano_dataset(3_000);
    let checked = query::prepare(
        "SELECT event_id, idx, pt, btag FROM jets WHERE pt > 20 ORDER BY pt DESC",
        Engine::Local,
    )
    .expect("valid");
    let whole = query::run_local(&ds, &checked).expect("run");
    assert!(whole.height() > 2_500, "{} rows", whole.height());
    let (joined, pages) = all_pages(&ds, &checked, 1000);
    assert!(pages >= 3);
    assert_eq!(joined.height(), whole.height());
    // Ordered by pt descending, then by every column: the same rows in the same order.
    let sorted = whole
        .sort(
            ["pt", "event_id", "idx", "btag"],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false, false]),
        )
        .expect("sort");
    assert!(joined.equals(&sorted), "pages differ from the whole result");

    let count = query::run_local(&ds, &plan::count(&checked)).expect("count");
    let n = count
        .column("n")
        .expect("n")
        .i64()
        .expect("i64")
        .get(0)
        .expect("row");
    assert_eq!(n as usize, whole.height());
}

#[test]
fn keyset_pages_keep_identical_rows_and_nulls() {
    let (_dir, ds, _) = nano_dataset(3_000);
    // Few distinct rows, each many times: pages must start inside runs of identical rows.
    let checked = query::prepare(
        "SELECT n_jets FROM events ORDER BY n_jets DESC",
        Engine::Local,
    )
    .expect("valid");
    let whole = query::run_local(&ds, &checked).expect("run");
    for size in [7, 250, 1000] {
        let (joined, _) = all_pages(&ds, &checked, size);
        assert!(
            joined.equals(&whole),
            "page size {size}: rows lost or repeated"
        );
    }
    // Nulls from a left join sort last (ascending) and first (descending), across pages.
    for order in ["ASC", "DESC"] {
        let checked = query::prepare(
            &format!(
                "SELECT e.event_id AS id, m.pt AS mu_pt FROM events e \
                 LEFT JOIN muons m ON m.event_id = e.event_id ORDER BY mu_pt {order}"
            ),
            Engine::Local,
        )
        .expect("valid");
        let whole = query::run_local(&ds, &checked).expect("run");
        let nulls = whole.column("mu_pt").expect("mu_pt").null_count();
        assert!(nulls > 100, "{nulls} events without muons");
        let (joined, pages) = all_pages(&ds, &checked, 400);
        assert!(pages > 5);
        let sorted = whole
            .sort(
                ["mu_pt", "id"],
                SortMultipleOptions::default()
                    .with_order_descending_multi([order == "DESC", false])
                    .with_nulls_last(order == "ASC"),
            )
            .expect("sort");
        assert!(
            joined.equals_missing(&sorted),
            "{order}: pages differ from the whole result"
        );
    }
}

/// The relational plan's histogram of `column` and the query's row count, bypassing the kernel.
fn relational(
    ds: &Dataset,
    checked: &query::Checked,
    column: &str,
    binning: &Binning,
) -> (Histogram, u64) {
    let q = plan::histogram(checked, column, None, binning).expect("histogram plan");
    let df = query::run_local(ds, &q).expect("relational");
    let h = plan::histogram_from_rows(&df, binning.clone()).expect("histogram");
    let n = query::run_local(ds, &plan::count(checked)).expect("count");
    (h, plan::count_from_rows(&n))
}

/// The kernel runs `spec`, and fills exactly the relational plan's bins with the same row count.
fn kernel_matches_relational(ds: &Dataset, spec: &Spec, plots: &[(String, Binning)]) {
    let sql = spec.sql().expect("builder");
    let checked = query::check(&spec.query().expect("builder"), Engine::Local).expect("valid");
    let found = query::kernel::recognize(checked.query())
        .unwrap_or_else(|| panic!("the kernel does not take {sql}"));
    assert_eq!(found.sql().expect("recognised"), sql);
    let (hs, rows) = query::kernel::histograms(ds, &found, None, plots).expect("kernel");
    for ((column, binning), h) in plots.iter().zip(&hs) {
        let (expected, n) = relational(ds, &checked, column, binning);
        assert_eq!(
            (&h.entries, h.underflow, h.overflow, h.missing),
            (
                &expected.entries,
                expected.underflow,
                expected.overflow,
                expected.missing
            ),
            "{column} of {sql}"
        );
        assert_eq!(rows, n, "rows of {sql}");
    }
}

fn fixed(bins: usize, lo: f64, hi: f64) -> Binning {
    Binning::Fixed { bins, lo, hi }
}

#[test]
fn the_per_event_kernel_fills_the_relational_plans_bins() {
    let (_dir, ds, _) = nano_dataset(8_000);
    for n in [5, 6, 8] {
        let (_, spec, plots) = adl::query(n).expect("query");
        let plots: Vec<_> = plots
            .iter()
            .map(|p| (p.column.to_owned(), p.binning.clone()))
            .collect();
        kernel_matches_relational(&ds, &spec, &plots);
    }
    // Not the builder's pair and triple selections: relational.
    let not_taken = [
        adl::query(7).expect("q7").1.sql().expect("q7"),
        adl::query(2).expect("q2").1.sql().expect("q2"),
        adl::query(6)
            .expect("q6")
            .1
            .sql()
            .expect("q6")
            .replace("a.idx < b.idx", "a.idx <= b.idx"),
        "SELECT INV_MASS(a.pt, a.eta, a.phi, a.mass, b.pt, b.eta, b.phi, b.mass) AS mass \
         FROM jets a JOIN jets b ON a.event_id = b.event_id AND a.idx < b.idx"
            .into(),
        Spec {
            event_cuts: vec![Cut::new("met_pt", BinOp::Gt, 20.0)],
            ..adl::query(6).expect("q6").1
        }
        .sql()
        .expect("event cut"),
    ];
    for sql in not_taken {
        let q = query::parse(&sql).expect("parses");
        assert!(query::kernel::recognize(&q).is_none(), "{sql}");
    }
}

mod kernel_properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn data() -> &'static (tempfile::TempDir, Dataset) {
        static DATA: OnceLock<(tempfile::TempDir, Dataset)> = OnceLock::new();
        DATA.get_or_init(|| {
            let (dir, ds, _) = nano_dataset(3_000);
            (dir, ds)
        })
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            prop_oneof![
                Just(Collection::Jets),
                Just(Collection::Muons),
                Just(Collection::Leptons)
            ],
            prop_oneof![Just(2usize), Just(3usize)],
            any::<(bool, bool)>(),
            proptest::option::of(50.0f64..120.0),
            proptest::option::of((0.0f64..80.0, 90.0f64..400.0)),
            (
                0u32..5,
                proptest::option::of(10.0f64..40.0),
                proptest::option::of(1.0f64..2.5),
            ),
            0u8..3,
        )
            .prop_map(
                |(collection, n, (charge, flavour), closest, mass, (min, pt, eta), out)| {
                    let mut cuts = Vec::new();
                    if let Some(pt) = pt {
                        cuts.push(Cut::new("pt", BinOp::Gt, pt.round()));
                    }
                    if let Some(eta) = eta {
                        cuts.push(Cut::abs("eta", BinOp::Lt, (eta * 10.0).round() / 10.0));
                    }
                    let combine = Combine {
                        n,
                        opposite_charge: charge && collection != Collection::Jets,
                        same_flavour: flavour && collection == Collection::Leptons,
                        mass: mass.map(|(lo, hi): (f64, f64)| (lo.round(), hi.round())),
                        closest_to: closest.map(|x: f64| x.round()),
                    };
                    let output = match out {
                        0 => Output::Combinations,
                        1 => Output::Events(vec!["met_pt".into()]),
                        _ if n == 2 && combine.closest_to.is_some() => Output::MtWithLeadingOther,
                        _ => Output::Combinations,
                    };
                    Spec {
                        object_cuts: cuts,
                        min_objects: (min > 0).then_some(min),
                        combine: Some(combine),
                        ..Spec::new(collection, output)
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn kernel_and_relational_plan_agree(spec in spec()) {
            let plots: Vec<(String, Binning)> = match &spec.output {
                Output::Combinations if spec.collection == Collection::Jets => vec![
                    ("mass".into(), fixed(40, 0.0, 600.0)),
                    ("max_btag".into(), fixed(10, 0.0, 1.0)),
                ],
                Output::Combinations => vec![("mass".into(), fixed(40, 0.0, 300.0)), ("pt".into(), fixed(20, 0.0, 200.0))],
                Output::Events(_) => vec![("met_pt".into(), fixed(20, 0.0, 200.0))],
                _ => vec![("mt".into(), fixed(20, 0.0, 200.0))],
            };
            kernel_matches_relational(&data().1, &spec, &plots);
        }
    }
}

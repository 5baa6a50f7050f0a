//! Notebook cells run on stored data: a plot cell written as a builder selection shows the Z
//! peak, a query cell keeps its first rows and the total, a bad cell reports why.

use alyx_analysis::notebook::run::{diagnostics, run_cell};
use alyx_analysis::notebook::{CellKind, CellOutput, Notebook};
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::DataStore;

#[test]
fn plot_and_query_cells_run_on_the_local_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    for part in nano::events(&NanoConfig::new(5), 0..6000).chunks(2000) {
        ds.append(part).expect("append");
    }
    let mut nb = Notebook::new("Z", "ada");
    let plot = nb
        .insert_cell(
            0,
            CellKind::Plot,
            "-- histogram mass:60:60:120\n{\"collection\": \"muons\", \"combine\": {\"n\": 2, \"opposite_charge\": true, \"mass\": [60, 120]}, \"output\": \"combinations\"}",
        )
        .expect("plot");
    let query = nb
        .insert_cell(
            1,
            CellKind::Query,
            "SELECT event_id, met_pt FROM events WHERE met_pt > 50",
        )
        .expect("query");
    let bad = nb
        .insert_cell(2, CellKind::Query, "SELECT nope FROM muons")
        .expect("bad");

    let cell = nb.cell(&plot).expect("cell");
    assert!(diagnostics(&cell).is_empty(), "{:?}", diagnostics(&cell));
    let CellOutput::Histograms(hs) = run_cell(&ds, &cell) else {
        panic!("a plot cell gives histograms");
    };
    let (column, h) = &hs[0];
    assert_eq!(column, "mass");
    let edges = h.binning.edges();
    let peak = (0..h.entries.len())
        .max_by_key(|i| h.entries[*i])
        .expect("bins");
    let centre = (edges[peak] + edges[peak + 1]) / 2.0;
    assert!((centre - 91.19).abs() < 2.0, "peak at {centre}");

    let CellOutput::Table {
        columns,
        rows,
        total,
    } = run_cell(&ds, &nb.cell(&query).expect("cell"))
    else {
        panic!("a query cell gives a table");
    };
    assert_eq!(columns, vec!["event_id", "met_pt"]);
    assert!(
        total > 50 && rows.len() == 50.min(total as usize),
        "{total} {}",
        rows.len()
    );
    assert!(
        rows.iter()
            .all(|r| r[1].parse::<f64>().is_ok_and(|v| v > 50.0)),
        "{rows:?}"
    );

    let bad = nb.cell(&bad).expect("cell");
    assert!(
        diagnostics(&bad)[0].message.contains("nope"),
        "{:?}",
        diagnostics(&bad)
    );
    assert!(matches!(run_cell(&ds, &bad), CellOutput::Error(_)));

    // The outputs travel with the notebook.
    nb.set_output(&plot, &CellOutput::Histograms(hs.clone()), "local", 1)
        .expect("output");
    let back = Notebook::load(&nb.save(), "bob").expect("load");
    assert_eq!(
        back.cell(&plot).expect("cell").output,
        Some(CellOutput::Histograms(hs))
    );
}

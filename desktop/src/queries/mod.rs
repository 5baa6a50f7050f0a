//! `QueryPlugin`: the "Query builder" window. A physicist picks a collection, clicks or drags
//! fields into cuts, adds a pair or triple selection and an output, and sees the ALYX SQL it
//! makes (highlighted) with validation as they edit — or types SQL directly. Run shows a
//! results table (virtual scrolling, pages of 10,000 rows, an estimated total then the exact
//! count); a numeric column can be histogrammed inside the engine, with a log scale and an
//! overlay of a second query. Results export as CSV or Parquet, the plot as PNG; a row with an
//! `event_id` opens in the 3D display. Queries run off the main thread on the local engine.

mod model;
mod panel;

use crate::Error;
use alyx_core::histogram::Binning;
use alyx_query::{self as query, OutputFormat};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::tasks::futures::check_ready;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

use crate::plot::crop_png;
use crate::{OpenDataset, Panels, PlotHistogram, ShowEvent, SubmitJob};
use alyx_analysis::jobs::AnalysisExt;
pub use model::{Mode, PAGE_ROWS, QueryAction, QueryState, QueryView, ResultsView};
pub use panel::{pretty, query_panel};

/// The query builder's systems (in `Update`).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuerySystems;

/// The "Query builder" window; needs the `OpenDataset` resource, sends `ShowEvent`.
pub struct QueryPlugin;

impl Plugin for QueryPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<QueryState>()
            .add_message::<ShowEvent>()
            .add_message::<SubmitJob>()
            .add_message::<PlotHistogram>()
            .add_systems(
                Update,
                (follow_dataset, show_plotted, run_actions, receive)
                    .chain()
                    .in_set(QuerySystems),
            );
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, window);
        }
    }
}

fn follow_dataset(dataset: Option<Res<OpenDataset>>, mut state: ResMut<QueryState>) {
    let Some(dataset) = dataset else { return };
    if dataset.is_changed() {
        state.dataset = Some(dataset.0.clone());
        state.view.results = None;
        state.view.histogram = None;
        state.view.selected_row = None;
    }
}

/// Histograms other windows send (a job's result) take the plot.
fn show_plotted(mut plotted: MessageReader<PlotHistogram>, mut state: ResMut<QueryState>) {
    for p in plotted.read() {
        state.view.fit.histogram_changed(Some(&p.histogram));
        state.view.histogram = Some((p.label.clone(), p.histogram.clone()));
        state.view.generation += 1;
    }
}

fn run_actions(
    mut commands: Commands,
    mut state: ResMut<QueryState>,
    mut show: MessageWriter<ShowEvent>,
    mut jobs: MessageWriter<SubmitJob>,
) {
    state.view.revalidate();
    for action in std::mem::take(&mut state.actions) {
        match action {
            QueryAction::Run => state.run_page(0, true),
            QueryAction::Page(first) => state.run_page(first, false),
            QueryAction::Histogram => state.fill_histogram(),
            QueryAction::KeepAsOverlay => {
                state.view.overlay = state.view.histogram.clone();
            }
            QueryAction::ClearOverlay => state.view.overlay = None,
            QueryAction::SubmitJob(target) => {
                let Some(checked) = state.view.checked.clone() else {
                    state.view.message = Some("write a valid query first".into());
                    continue;
                };
                let binning = match Binning::fixed(state.view.bins, state.view.lo, state.view.hi) {
                    Ok(b) => b,
                    Err(e) => {
                        state.view.message = Some(e.to_string());
                        continue;
                    }
                };
                let analysis = alyx_analysis::jobs::Analysis {
                    query: checked.query().clone(),
                    histograms: vec![alyx_analysis::jobs::HistogramSpec {
                        column: state.view.hist_column.clone(),
                        weight: None,
                        binning,
                    }],
                };
                if let Err(ds) = analysis.check() {
                    state.view.message = Some(query::invalid_query(&ds).to_string());
                    continue;
                }
                jobs.write(SubmitJob {
                    name: format!("{} histogram", state.view.hist_column),
                    analysis,
                    priority: 0,
                    target,
                });
                state.view.message = Some("submitted as a job: see the Jobs window".into());
            }
            QueryAction::Show(id) => {
                show.write(ShowEvent(id));
            }
            QueryAction::ExportCsv(path) | QueryAction::ExportParquet(path) => {
                let Some(r) = &state.view.results else {
                    continue;
                };
                let mut df = r.frame.clone();
                let format = if path.extension().is_some_and(|e| e == "csv") {
                    OutputFormat::Csv
                } else {
                    OutputFormat::Parquet
                };
                state.export(path, move |p| {
                    let mut file = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
                    Ok(query::write(&mut df, format, usize::MAX, &mut file)?)
                });
            }
            QueryAction::ExportFigure(path) => {
                let Some((label, h)) = state.view.histogram.clone() else {
                    continue;
                };
                let fitted = state.view.fit.fitted.clone();
                state.export(path, move |p| {
                    crate::fit::write_figure(p, &label, &h, fitted.as_ref())
                });
            }
            QueryAction::ExportPng(path) => {
                let Some(rect) = state.view.plot_rect_px else {
                    state.view.message = Some("show the plot before exporting it".into());
                    continue;
                };
                commands.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>, mut state: ResMut<QueryState>| {
                        let image = captured.image.clone();
                        state.export(path.clone(), move |p| crop_png(&image, rect, p));
                    },
                );
            }
        }
    }
}

fn receive(mut state: ResMut<QueryState>) {
    if let Some((first, result)) = state.page_task.as_mut().and_then(check_ready) {
        state.page_task = None;
        state.view.loading = false;
        match result {
            Ok((frame, estimate, exact, next)) => {
                let page = (next.first_row.div_ceil(PAGE_ROWS)) as usize;
                if first % PAGE_ROWS == 0 && page == state.cursors.len() {
                    state.cursors.push(next);
                }
                let known = state.view.results.as_ref().and_then(|r| r.exact);
                let estimate = if first == 0 {
                    estimate
                } else {
                    state.view.results.as_ref().map_or(estimate, |r| r.estimate)
                };
                state.view.results = Some(ResultsView {
                    frame,
                    first_row: first,
                    estimate,
                    exact: exact.or(known),
                });
                state.view.selected_row = None;
                state.view.message = None;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
    if let Some(result) = state.count_task.as_mut().and_then(check_ready) {
        state.count_task = None;
        match (result, &mut state.view.results) {
            (Ok(n), Some(r)) => r.exact = Some(n),
            (Err(e), _) => state.view.message = Some(e.to_string()),
            _ => {}
        }
    }
    if let Some((column, result)) = state.histogram_task.as_mut().and_then(check_ready) {
        state.histogram_task = None;
        state.view.loading = false;
        match result {
            Ok(h) => {
                state.view.fit.histogram_changed(Some(&h));
                state.view.histogram = Some((column, h));
                state.view.generation += 1;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
    if let Some(m) = state.export_task.as_mut().and_then(check_ready) {
        state.export_task = None;
        state.view.message = Some(m);
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<QueryState>,
    mut panels: ResMut<Panels>,
) -> Result {
    if !panels.queries {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Query builder")
        .open(&mut panels.queries)
        .default_pos([20.0, 150.0])
        .default_width(620.0)
        .vscroll(true)
        .show(ctx, |ui| actions = query_panel(ui, &mut state.view));
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// A result cell has a short spelling for every double (zeros, subnormals, ±∞, NaN).
        #[test]
        fn every_double_has_a_short_cell(x in proptest::num::f64::ANY) {
            let shown = cell(AnyValue::Float64(x));
            proptest::prop_assert!(!shown.is_empty() && shown.len() <= 13, "{x:e} → {shown}");
            proptest::prop_assert_eq!(shown, alyx_core::number::significant(x));
        }
    }

    use super::panel::cell;
    use super::*;
    use alyx_query as query;
    use alyx_sim::nano::{self, NanoConfig};
    use alyx_store::DataStore;
    use polars::prelude::AnyValue;

    #[test]
    fn pretty_sql_puts_clauses_on_their_own_lines() {
        let s = "WITH a AS (SELECT x FROM t WHERE x > 1) SELECT COUNT(*) AS n FROM a LEFT JOIN b ON a.x = b.x GROUP BY a.x";
        let p = pretty(s);
        assert!(p.contains("\n  SELECT x") || p.contains("(SELECT x"), "{p}");
        assert!(p.contains("\nLEFT JOIN b ON a.x = b.x"), "{p}");
        assert!(p.contains("COUNT(*)"), "{p}");
        // Formatting changes only whitespace: the query reads back the same.
        assert_eq!(
            query::parse(&p).expect("pretty parses"),
            query::parse(s).expect("parses")
        );
    }

    #[test]
    fn the_default_selection_is_the_dimuon_mass_window_and_validates() {
        let mut view = QueryView::default();
        view.revalidate();
        assert!(view.diagnostics.is_empty(), "{:?}", view.diagnostics);
        let cols: Vec<&str> = view
            .checked
            .as_ref()
            .expect("valid")
            .columns()
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        assert_eq!(cols, ["event_id", "mass", "pt"]);
        view.mode = Mode::Sql;
        view.sql = "SELECT pt FROM muons WHERE ptt > 3".into();
        view.revalidate();
        assert!(view.checked.is_none());
        assert_eq!(
            (view.diagnostics[0].line, view.diagnostics[0].column),
            (1, 28)
        );
    }

    #[test]
    fn the_panel_shows_sql_and_offers_run() {
        let ctx = egui::Context::default();
        let mut view = QueryView::default();
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = query_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        assert!(view.checked.is_some());
        assert!(actions.is_empty());
    }

    /// The plugin, headless: run the builder's query on a generated dataset, page, histogram,
    /// export CSV, and send a selected event to the 3D display.
    #[test]
    fn plugin_runs_pages_histograms_and_shows_an_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let mut ds = store.create_dataset("nano", "test").expect("dataset");
        ds.append(&nano::events(&NanoConfig::new(4), 0..4000))
            .expect("append");
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, QueryPlugin))
            .insert_resource(OpenDataset(ds));
        let update_until = |app: &mut App, done: &dyn Fn(&QueryState) -> bool| {
            for _ in 0..2000 {
                app.update();
                if done(app.world().resource::<QueryState>()) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            panic!(
                "timed out: {:?}",
                app.world().resource::<QueryState>().view.message
            );
        };
        app.update();
        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Run);
        update_until(&mut app, &|s| {
            s.view.results.as_ref().is_some_and(|r| r.exact.is_some())
        });
        let state = app.world().resource::<QueryState>();
        let r = state.view.results.as_ref().expect("results");
        assert!(r.frame.height() > 50, "{} Z candidates", r.frame.height());
        assert_eq!(r.exact, Some(r.frame.height() as u64));
        assert_eq!(state.view.history.len(), 1);

        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Histogram);
        update_until(&mut app, &|s| s.view.histogram.is_some());
        let peak = app
            .world()
            .resource::<QueryState>()
            .view
            .histogram
            .as_ref()
            .and_then(|(_, h)| h.mode())
            .expect("peak");
        assert!((86.0..96.0).contains(&peak), "Z peak at {peak}");

        let csv = dir.path().join("rows.csv");
        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::ExportCsv(csv.clone()));
        update_until(&mut app, &|s| {
            s.view
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("saved"))
        });
        let text = std::fs::read_to_string(&csv).expect("csv");
        assert!(text.starts_with("event_id,mass,pt"), "{text}");

        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Show(7));
        app.update();
        let shown: Vec<ShowEvent> = app
            .world_mut()
            .resource_mut::<Messages<ShowEvent>>()
            .drain()
            .collect();
        assert_eq!(shown, [ShowEvent(7)]);
    }
}

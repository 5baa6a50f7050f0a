//! `HistogramPlugin`: the "Histograms" window, a histogram of a track or event quantity over the
//! whole open dataset — track pT, η, φ, tracks per event, opposite-charge muon and track pair
//! masses — with editable binning, a log scale, √Σw² error bars, and CSV and PNG export; or a
//! 2-D map (track η–φ occupancy, the Armenteros–Podolanski plot) with its colour scale.
//!
//! Each quantity is one query, checked like any other, whose column `x` is histogrammed by the
//! engine (`alyx_query::histogram_local`), so only one row per bin leaves it. Filling runs on the
//! async pool. The PNG is the plot as drawn on screen: a window screenshot cropped to the plot.

mod data;
mod panel;

use crate::Error;
use crate::plot::crop_png;
use crate::{OpenDataset, Panels};
use alyx_core::histogram::{Binning, Histogram, Histogram2};
use alyx_store::Dataset;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
pub use data::*;
pub use panel::*;
use std::path::{Path, PathBuf};

/// The histogram panel's state: the view model, the dataset, the fill and export in flight.
#[derive(Resource, Default)]
pub struct HistogramState {
    pub view: HistogramView,
    dataset: Option<Dataset>,
    actions: Vec<HistogramAction>,
    fill_task: Option<Task<Result<Filled, Error>>>,
    /// Fit the next 1-D histogram filled (asked for on the command line).
    fit_next: bool,
    export_task: Option<Task<String>>,
}

impl HistogramState {
    /// Queues an action, as a click in the panel does.
    pub fn push(&mut self, action: HistogramAction) {
        self.actions.push(action);
    }

    /// Fills the chosen histogram off the main thread (replacing a fill in flight).
    fn fill(&mut self) {
        let Some(dataset) = self.dataset.clone() else {
            return;
        };
        let binnings = Binning::fixed(self.view.bins, self.view.lo, self.view.hi).and_then(|x| {
            let y = Binning::fixed(self.view.y_bins, self.view.y_lo, self.view.y_hi)?;
            Ok((x, y))
        });
        let (x, y) = match binnings {
            Ok(b) => b,
            Err(e) => {
                self.view.message = Some(e.to_string());
                return;
            }
        };
        let (quantity, map) = (self.view.quantity, self.view.map);
        self.fill_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            match map {
                Some(map) => fill_map(&dataset, map, x, y).map(|h| Filled::Two(map, h)),
                None => fill(&dataset, quantity, x).map(|h| Filled::One(quantity, h)),
            }
        }));
        self.view.loading = true;
    }

    /// Runs `export` off the main thread; its outcome becomes the panel's message.
    fn export(
        &mut self,
        path: PathBuf,
        export: impl FnOnce(&Path) -> Result<(), Error> + Send + 'static,
    ) {
        self.export_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            match export(&path) {
                Ok(()) => format!("saved {}", path.display()),
                Err(e) => e.to_string(),
            }
        }));
    }
}

/// What the command line asks the window to show first (`alyx --histogram dimuon-mass --fit
/// voigt+exp --fit-range 70:110`): the window opens on it, fills it and fits it, and a
/// `--screenshot` waits for both.
#[derive(Resource, Clone, Debug, Default)]
pub struct HistogramRequest {
    /// A short name of [`SHORT_NAMES`].
    pub name: String,
    pub fit: Option<String>,
    pub range: Option<(f64, f64)>,
}

impl HistogramRequest {
    fn apply(&self, view: &mut HistogramView) {
        if let Some(q) = Quantity::ALL
            .into_iter()
            .find(|q| q.short_name() == self.name)
        {
            (view.quantity, view.map) = (q, None);
            (view.bins, view.lo, view.hi) = q.default_range();
        }
        if let Some(m) = Map::ALL.into_iter().find(|m| m.short_name() == self.name) {
            view.map = Some(m);
            let [x, y] = m.default_ranges();
            (view.bins, view.lo, view.hi) = x;
            (view.y_bins, view.y_lo, view.y_hi) = y;
        }
        if let Some(model) = &self.fit {
            view.fit.typed = model.clone();
            view.fit.range = self.range;
        }
    }
}

/// A histogram or map, filled.
enum Filled {
    One(Quantity, Histogram),
    Two(Map, Histogram2),
}

/// The histogram panel's systems (in `Update`).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistogramSystems;

/// The histogram window; needs the `OpenDataset` resource.
pub struct HistogramPlugin;

impl Plugin for HistogramPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<HistogramState>()
            .add_systems(Startup, apply_request)
            .add_systems(
                Update,
                (follow_dataset, run_actions, receive, hold_screenshot)
                    .chain()
                    .in_set(HistogramSystems),
            );
    }

    // In `finish`, so that EguiPlugin may be added before or after this plugin.
    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, window);
        }
    }
}

/// Opens the window on what the command line asked for.
fn apply_request(
    request: Option<Res<HistogramRequest>>,
    mut state: ResMut<HistogramState>,
    panels: Option<ResMut<Panels>>,
) {
    let Some(request) = request else { return };
    request.apply(&mut state.view);
    state.fit_next = request.fit.is_some();
    if let Some(mut panels) = panels {
        panels.histograms = true;
    }
}

/// A screenshot waits while a histogram fills or a fit runs.
fn hold_screenshot(
    job: Option<ResMut<crate::display::model::ScreenshotJob>>,
    state: Res<HistogramState>,
) {
    if let Some(mut job) = job
        && state.dataset.is_some()
        && (state.view.loading || state.fit_next || state.view.fit.busy())
    {
        job.hold();
    }
}

/// A new dataset clears the plot and fills the chosen histogram again.
fn follow_dataset(dataset: Option<Res<OpenDataset>>, mut state: ResMut<HistogramState>) {
    let Some(dataset) = dataset else { return };
    if !dataset.is_changed() {
        return;
    }
    state.dataset = Some(dataset.0.clone());
    state.view.shown = None;
    state.view.shown_map = None;
    state.view.message = None;
    state.fill();
}

fn run_actions(mut commands: Commands, mut state: ResMut<HistogramState>) {
    for action in std::mem::take(&mut state.actions) {
        match action {
            HistogramAction::Fill => state.fill(),
            HistogramAction::ExportCsv(path) => match state.view.map {
                Some(_) => {
                    let Some((_, h)) = state.view.shown_map.clone() else {
                        continue;
                    };
                    state.export(path, move |path| write_map_csv(&h, path));
                }
                None => {
                    let Some((_, h)) = state.view.shown.clone() else {
                        continue;
                    };
                    state.export(path, move |path| write_csv(&h, path));
                }
            },
            HistogramAction::ExportFigure(path) => {
                if let Some(map) = state.view.map {
                    let Some((_, h)) = state.view.shown_map.clone() else {
                        continue;
                    };
                    let log_z = state.view.log_y;
                    state.export(path, move |path| {
                        let (x, y) = map.axis_labels();
                        crate::fit::write_map_figure(path, (x, y), &h, log_z)
                    });
                    continue;
                }
                let Some((quantity, h)) = state.view.shown.clone() else {
                    continue;
                };
                let fitted = state.view.fit.fitted.clone();
                state.export(path, move |path| {
                    crate::fit::write_figure(path, quantity.axis_label(), &h, fitted.as_ref())
                });
            }
            HistogramAction::ExportPng(path) => {
                let Some(rect) = state.view.plot_rect_px else {
                    state.view.message = Some("show the plot before exporting it".into());
                    continue;
                };
                commands.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>, mut state: ResMut<HistogramState>| {
                        let image = captured.image.clone();
                        state.export(path.clone(), move |path| crop_png(&image, rect, path));
                    },
                );
            }
        }
    }
}

fn receive(mut state: ResMut<HistogramState>) {
    if let Some(result) = state.fill_task.as_mut().and_then(check_ready) {
        state.fill_task = None;
        state.view.loading = false;
        match result {
            Ok(Filled::One(quantity, h)) => {
                state.view.fit.histogram_changed(Some(&h));
                if std::mem::take(&mut state.fit_next) {
                    state.view.fit.fit(&h);
                }
                state.view.shown = Some((quantity, h));
            }
            Ok(Filled::Two(map, h)) => {
                state.view.shown_map = Some((map, h));
                state.fit_next = false;
            }
            Err(e) => {
                state.view.message = Some(e.to_string());
                state.fit_next = false;
                return;
            }
        }
        state.view.generation += 1;
        state.view.message = None;
    }
    if let Some(message) = state.export_task.as_mut().and_then(check_ready) {
        state.export_task = None;
        state.view.message = Some(message);
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<HistogramState>,
    mut panels: ResMut<Panels>,
) -> Result {
    if !panels.histograms {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Histograms")
        .open(&mut panels.histograms)
        .default_pos([700.0, 40.0])
        .default_width(560.0)
        .show(ctx, |ui| actions = histogram_panel(ui, &mut state.view));
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::histogram::{Binning, Histogram};
    use alyx_datasets as datasets;

    use alyx_sim::generator::GeneratorConfig;
    use alyx_store::DataStore;

    #[test]
    fn the_imported_hzz_dimuon_mass_shows_the_z_peak() {
        let Some(path) = alyx_tests::data_file("root/uproot-HZZ.root") else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let dataset = crate::open(&path, &store).expect("imports");
        let (bins, lo, hi) = Quantity::DimuonMass.default_range();
        let binning = Binning::fixed(bins, lo, hi).expect("binning");
        let h = fill(&dataset, Quantity::DimuonMass, binning).expect("fill");
        let mode = h.mode().expect("bins");
        assert!((88.0..=94.0).contains(&mode), "Z peak at {mode} GeV");
        // At least the 1364 events with exactly two opposite-charge muons (uproot's count).
        let pairs: u64 = h.entries.iter().sum::<u64>() + h.missing;
        assert!(pairs >= 1364, "{pairs} opposite-charge pairs");
        let root_n: Vec<f64> = h.sum_w.iter().map(|n| n.sqrt()).collect();
        assert_eq!(h.errors(), root_n, "unit weights: √N errors");

        // What a new user does next: the Fit menu's Voigtian over an exponential, the range
        // dragged to 70–110 GeV, fit, save as SVG.
        let mut view = HistogramView {
            shown: Some((Quantity::DimuonMass, h.clone())),
            ..default()
        };
        view.fit.signal = 4;
        view.fit.range = Some((70.0, 110.0));
        assert_eq!(view.fit.model_spec(), "voigt+exp");
        view.fit.fit(&h);
        view.fit.settle();
        let (_, r) = view.fit.fitted.as_ref().expect("fitted");
        let mean = r.param("mean").expect("mean");
        assert!((mean.value - 91.19).abs() < 0.5, "{mean:?} {:?}", r.message);
        let ctx = egui::Context::default();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            histogram_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        let svg = dir.path().join("z.svg");
        crate::fit::write_figure(&svg, "m(μμ) [GeV]", &h, view.fit.fitted.as_ref()).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(
            text.contains("mean = 9") && text.contains("m(μμ) [GeV]"),
            "{text}"
        );
    }

    #[test]
    fn every_quantity_fills_from_a_generated_dataset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let dataset = datasets::generate(&store, "pp", GeneratorConfig::pp(3), 200, &mut |_| {})
            .expect("generate");
        let count = |sql: &str| {
            alyx_tests::sql(&dataset, sql).expect("count").columns()[0]
                .get(0)
                .expect("row")
                .extract::<f64>()
                .expect("number")
        };
        let everything = |h: &Histogram| h.integral() + h.underflow + h.overflow + h.missing as f64;
        for quantity in Quantity::ALL {
            let (bins, lo, hi) = quantity.default_range();
            let h = fill(
                &dataset,
                quantity,
                Binning::fixed(bins, lo, hi).expect("binning"),
            )
            .unwrap_or_else(|e| panic!("{quantity:?}: {e}"));
            assert!(h.integral() > 0.0, "{quantity:?} is empty");
            let expected = match quantity {
                Quantity::TrackPt | Quantity::TrackEta | Quantity::TrackPhi => {
                    count("SELECT COUNT(*) FROM tracks")
                }
                Quantity::Multiplicity => 200.0,
                Quantity::DimuonMass => count(
                    "SELECT COUNT(*) FROM muons a JOIN muons b ON a.event_id = b.event_id \
                     WHERE a.idx < b.idx AND a.charge * b.charge < 0",
                ),
                Quantity::TrackPairMass => count(
                    "SELECT COUNT(*) FROM tracks a JOIN tracks b ON a.event_id = b.event_id \
                     WHERE a.track_id < b.track_id AND a.charge * b.charge < 0",
                ),
            };
            assert_eq!(everything(&h), expected, "{quantity:?}");
        }
    }

    #[test]
    fn maps_fill_from_a_generated_dataset_draw_and_export() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let dataset = datasets::generate(&store, "pp", GeneratorConfig::pp(3), 200, &mut |_| {})
            .expect("generate");
        let fixed = |(n, lo, hi): (usize, f64, f64)| Binning::fixed(n, lo, hi).expect("binning");
        let [x, y] = Map::EtaPhi.default_ranges();
        let map = fill_map(&dataset, Map::EtaPhi, fixed(x), fixed(y)).expect("η–φ");
        let eta = fill(&dataset, Quantity::TrackEta, fixed(x)).expect("η");
        // φ's range is the whole circle: the map projected on η is the η histogram.
        assert_eq!(map.projection_x().entries, eta.entries);
        assert_eq!(map.integral(), eta.integral());
        let [ax, ay] = Map::Armenteros.default_ranges();
        let v0s = fill_map(&dataset, Map::Armenteros, fixed(ax), fixed(ay)).expect("V0s");
        assert!(v0s.integral() > 10.0, "{} V0 candidates", v0s.integral());

        let mut view = HistogramView {
            map: Some(Map::EtaPhi),
            shown_map: Some((Map::EtaPhi, map.clone())),
            log_y: true,
            ..default()
        };
        let ctx = egui::Context::default();
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = histogram_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        assert!(actions.is_empty(), "{actions:?}");
        let rect = view.plot_rect_px.expect("the map was drawn (for the PNG)");
        assert!(rect.height() >= 320, "{rect:?}");

        let csv = dir.path().join("map.csv");
        write_map_csv(&map, &csv).expect("csv");
        let text = std::fs::read_to_string(&csv).expect("csv");
        assert_eq!(text.lines().count(), 1 + x.0 * y.0);
        let counted: f64 = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(4)?.parse::<f64>().ok())
            .sum();
        assert_eq!(counted, map.integral());
        let svg = dir.path().join("map.svg");
        crate::fit::write_map_figure(&svg, Map::EtaPhi.axis_labels(), &map, true).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(text.contains("φ (rad)") && text.contains("entries (log)"));
    }

    #[test]
    fn csv_export_lists_every_bin_with_its_error() {
        let mut h = Histogram::new(Binning::fixed(2, 0.0, 1.0).expect("binning"));
        for (x, w) in [(0.1, 1.0), (0.2, 2.0), (0.7, 0.5), (3.0, 1.0)] {
            h.fill(x, w);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.csv");
        write_csv(&h, &path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!(
                "lo,hi,count,error\n0,0.5,3,{}\n0.5,1,0.5,0.5\n",
                5f64.sqrt()
            )
        );
        let missing_dir = dir.path().join("no/such/dir/h.csv");
        assert!(write_csv(&h, &missing_dir).is_err());
    }

    #[test]
    fn the_panel_draws_a_histogram_and_offers_exports() {
        let mut h = Histogram::new(Binning::fixed(10, 0.0, 10.0).expect("binning"));
        (0..50).for_each(|i| h.fill(f64::from(i % 10), 1.0));
        for log_y in [false, true] {
            let mut view = HistogramView {
                shown: Some((Quantity::TrackPt, h.clone())),
                log_y,
                ..default()
            };
            let ctx = egui::Context::default();
            let mut actions = Vec::new();
            ctx.run_ui(egui::RawInput::default(), |ui| {
                actions = histogram_panel(ui, &mut view);
            })
            .drop_without_applying_deltas();
            assert!(actions.is_empty(), "{actions:?}");
            let rect = view.plot_rect_px.expect("the plot was drawn");
            assert!(rect.width() > 100 && rect.height() >= 300, "{rect:?}");
        }
    }

    fn update_until(app: &mut App, done: impl Fn(&HistogramView) -> bool) {
        for _ in 0..1000 {
            app.update();
            if done(&app.world().resource::<HistogramState>().view) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out waiting for the histogram panel");
    }

    #[test]
    fn plugin_fills_headless_and_exports_csv() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let dataset = datasets::generate(&store, "pp", GeneratorConfig::pp(5), 40, &mut |_| {})
            .expect("generate");
        let tracks = dataset.manifest().rows(alyx_store::Table::Tracks) as f64;
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, HistogramPlugin))
            .insert_resource(OpenDataset(dataset));
        update_until(&mut app, |view| view.shown.is_some());
        let view = &app.world().resource::<HistogramState>().view;
        let Some((Quantity::TrackPt, h)) = &view.shown else {
            panic!("track pT first");
        };
        assert_eq!(
            h.integral() + h.overflow + h.underflow + h.missing as f64,
            tracks
        );
        assert!(!view.loading);

        let mut state = app.world_mut().resource_mut::<HistogramState>();
        state.view.quantity = Quantity::Multiplicity;
        (state.view.bins, state.view.lo, state.view.hi) = (10, 0.0, 1000.0);
        state.push(HistogramAction::Fill);
        update_until(&mut app, |view| {
            matches!(view.shown, Some((Quantity::Multiplicity, _)))
        });
        let csv = dir.path().join("multiplicity.csv");
        app.world_mut()
            .resource_mut::<HistogramState>()
            .push(HistogramAction::ExportCsv(csv.clone()));
        update_until(&mut app, |view| view.message.is_some());
        let text = std::fs::read_to_string(&csv).expect("exported");
        assert_eq!(text.lines().count(), 11, "{text}");
        let counted: f64 = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(2)?.parse::<f64>().ok())
            .sum();
        assert_eq!(counted, 40.0, "every event in a bin");

        // A bad binning is reported, not filled.
        let mut state = app.world_mut().resource_mut::<HistogramState>();
        state.view.hi = -1.0;
        state.push(HistogramAction::Fill);
        app.update();
        let view = &app.world().resource::<HistogramState>().view;
        assert!(!view.loading);
        assert!(
            view.message
                .as_deref()
                .is_some_and(|m| m.contains("invalid binning"))
        );
    }
}

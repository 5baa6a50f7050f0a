//! `HistogramPlugin`: the "Histograms" window, a histogram of a track or event quantity over the
//! whole open dataset — track pT, η, φ, tracks per event, opposite-charge muon and track pair
//! masses — with editable binning, a log scale, √Σw² error bars, and CSV and PNG export.
//!
//! Each quantity is one query, checked like any other, whose column `x` is histogrammed by the
//! engine (`alyx_query::histogram_local`), so only one row per bin leaves it. Filling runs on the
//! async pool. The PNG is the plot as drawn on screen: a window screenshot cropped to the plot.

mod data;
mod panel;

use crate::Error;
use crate::plot::crop_png;
use crate::{OpenDataset, Panels};
use alyx_core::histogram::{Binning, Histogram};
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
    fill_task: Option<Task<(Quantity, Result<Histogram, Error>)>>,
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
        let quantity = self.view.quantity;
        let binning = match Binning::fixed(self.view.bins, self.view.lo, self.view.hi) {
            Ok(b) => b,
            Err(e) => {
                self.view.message = Some(e.to_string());
                return;
            }
        };
        self.fill_task = Some(
            AsyncComputeTaskPool::get()
                .spawn(async move { (quantity, fill(&dataset, quantity, binning)) }),
        );
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

/// The histogram panel's systems (in `Update`).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistogramSystems;

/// The histogram window; needs the `OpenDataset` resource.
pub struct HistogramPlugin;

impl Plugin for HistogramPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<HistogramState>().add_systems(
            Update,
            (follow_dataset, run_actions, receive)
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

/// A new dataset clears the plot and fills the chosen histogram again.
fn follow_dataset(dataset: Option<Res<OpenDataset>>, mut state: ResMut<HistogramState>) {
    let Some(dataset) = dataset else { return };
    if !dataset.is_changed() {
        return;
    }
    state.dataset = Some(dataset.0.clone());
    state.view.shown = None;
    state.view.message = None;
    state.fill();
}

fn run_actions(mut commands: Commands, mut state: ResMut<HistogramState>) {
    for action in std::mem::take(&mut state.actions) {
        match action {
            HistogramAction::Fill => state.fill(),
            HistogramAction::ExportCsv(path) => {
                let Some((_, h)) = state.view.shown.clone() else {
                    continue;
                };
                state.export(path, move |path| write_csv(&h, path));
            }
            HistogramAction::ExportFigure(path) => {
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
    if let Some((quantity, result)) = state.fill_task.as_mut().and_then(check_ready) {
        state.fill_task = None;
        state.view.loading = false;
        match result {
            Ok(h) => {
                state.view.fit.histogram_changed(Some(&h));
                state.view.shown = Some((quantity, h));
                state.view.generation += 1;
                state.view.message = None;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
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

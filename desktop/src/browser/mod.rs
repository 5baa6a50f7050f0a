//! `EventBrowserPlugin`: the "Events" window, a paged table of the open dataset's events,
//! sortable by any shown column and filtered by run and track multiplicity; clicking a row (or
//! "go to" a run/event pair) sends `ShowEvent`.
//!
//! The view model (`BrowserQuery` → `browse` → `BrowserPage`) has no Bevy types and is tested on
//! its own. A page is one query over the `events` table, built as a query AST and checked like
//! any other, so sorting and slicing happen in the engine and only the page's rows are collected. Queries run on the
//! async pool; systems never wait for them.

mod data;
mod panel;

use crate::Error;
use crate::{OpenDataset, Panels, ShowEvent};
use alyx_store::Dataset;
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
pub use data::*;
pub use panel::*;

/// The browser's state: the view model, the dataset it browses and the queries in flight.
#[derive(Resource, Default)]
pub struct BrowserState {
    pub view: BrowserView,
    dataset: Option<Dataset>,
    actions: Vec<BrowserAction>,
    page_task: Option<Task<Result<BrowserPage, Error>>>,
    find_task: Option<Task<(u32, u64, Result<Option<u64>, Error>)>>,
}

impl BrowserState {
    /// Queues an action, as a click in the panel does.
    pub fn push(&mut self, action: BrowserAction) {
        self.actions.push(action);
    }

    /// Fetches the current query's page off the main thread (replacing one in flight).
    fn fetch(&mut self) {
        let Some(dataset) = self.dataset.clone() else {
            return;
        };
        let q = self.view.query.clone();
        self.page_task =
            Some(AsyncComputeTaskPool::get().spawn(async move { browse(&dataset, &q) }));
        self.view.loading = true;
    }
}

/// The browser's systems (in `Update`).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrowserSystems;

/// The event browser window; needs the `OpenDataset` resource, sends `ShowEvent`.
pub struct EventBrowserPlugin;

impl Plugin for EventBrowserPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<ShowEvent>()
            .init_resource::<BrowserState>()
            .add_systems(
                Update,
                (follow_dataset, run_actions, receive)
                    .chain()
                    .in_set(BrowserSystems),
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

/// A new dataset resets the browser and fetches its first page.
fn follow_dataset(dataset: Option<Res<OpenDataset>>, mut state: ResMut<BrowserState>) {
    let Some(dataset) = dataset else { return };
    if !dataset.is_changed() {
        return;
    }
    *state = BrowserState {
        dataset: Some(dataset.0.clone()),
        ..default()
    };
    state.fetch();
}

fn run_actions(mut state: ResMut<BrowserState>, mut show: MessageWriter<ShowEvent>) {
    for action in std::mem::take(&mut state.actions) {
        match action {
            BrowserAction::Query => state.fetch(),
            BrowserAction::Show(id) => {
                state.view.selected = Some(id);
                show.write(ShowEvent(id));
            }
            BrowserAction::Find { run, event_number } => {
                let Some(dataset) = state.dataset.clone() else {
                    continue;
                };
                state.find_task =
                    Some(AsyncComputeTaskPool::get().spawn(async move {
                        (run, event_number, find(&dataset, run, event_number))
                    }));
            }
        }
    }
}

fn receive(mut state: ResMut<BrowserState>, mut show: MessageWriter<ShowEvent>) {
    if let Some(result) = state.page_task.as_mut().and_then(check_ready) {
        state.page_task = None;
        state.view.loading = false;
        match result {
            Ok(page) => {
                state.view.page = Some(page);
                state.view.message = None;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
    if let Some((run, event_number, result)) = state.find_task.as_mut().and_then(check_ready) {
        state.find_task = None;
        match result {
            Ok(Some(id)) => {
                state.view.selected = Some(id);
                state.view.message = None;
                show.write(ShowEvent(id));
            }
            Ok(None) => {
                state.view.message = Some(format!("no event {event_number} in run {run}"));
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<BrowserState>,
    mut panels: ResMut<Panels>,
    dataset: Option<Res<OpenDataset>>,
) -> Result {
    // Without a local dataset (working with a backend) the Backend window lists events.
    if !panels.events || dataset.is_none() {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Events")
        .open(&mut panels.events)
        .default_pos([310.0, 420.0])
        .default_width(640.0)
        .show(ctx, |ui| actions = browser_panel(ui, &mut state.view));
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::DetectorGeometry;
    use alyx_sim::generator::{EventGenerator, GeneratorConfig};
    use alyx_store::DataStore;

    /// 20 events of run 1 then 10 of run 2 (numbered 0.. in each run).
    fn two_runs(dir: &std::path::Path) -> Dataset {
        let store = DataStore::open(dir).expect("store");
        let mut dataset = store.create_dataset("two-runs", "test").expect("create");
        for (run, n) in [(1, 20), (2, 10)] {
            let config = GeneratorConfig {
                run,
                ..GeneratorConfig::pp(u64::from(run))
            };
            let events = EventGenerator::new(config, DetectorGeometry::alice_barrel()).events(0..n);
            dataset.append(&events).expect("append");
        }
        dataset
    }

    #[test]
    fn browse_pages_sorts_and_filters_in_the_engine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dataset = two_runs(dir.path());
        let all: Vec<(u64, u32, u32)> = dataset
            .read_events(0..30)
            .expect("read")
            .iter()
            .map(|(id, e)| (*id, e.header.run, e.tracks.len() as u32))
            .collect();

        let first = browse(
            &dataset,
            &BrowserQuery {
                page_size: 12,
                ..default()
            },
        )
        .expect("page");
        assert_eq!(first.total, 30);
        assert_eq!(first.pages(12), 3);
        let ids: Vec<u64> = first.rows.iter().map(|r| r.event_id).collect();
        assert_eq!(ids, (0..12).collect::<Vec<_>>());
        let last = browse(
            &dataset,
            &BrowserQuery {
                page_size: 12,
                page: 2,
                ..default()
            },
        )
        .expect("page");
        assert_eq!(last.rows.len(), 6, "the last page holds the rest");
        assert_eq!(last.rows[0].event_id, 24);
        assert_eq!((last.rows[0].run, last.rows[0].event_number), (2, 4));
        assert_eq!(last.rows[0].system, "pp");

        // Sorted by multiplicity, largest first, ties by id, across pages.
        let mut expected = all.clone();
        expected.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let sorted: Vec<(u64, u32)> = (0..3)
            .flat_map(|page| {
                let q = BrowserQuery {
                    sort: Column::Tracks,
                    descending: true,
                    page,
                    page_size: 12,
                    ..default()
                };
                browse(&dataset, &q).expect("page").rows
            })
            .map(|r| (r.event_id, r.n_tracks))
            .collect();
        let want: Vec<(u64, u32)> = expected.iter().map(|e| (e.0, e.2)).collect();
        assert_eq!(sorted, want);

        // Run and multiplicity filters; the total counts all pages.
        let (lo, hi) = (want[20].1, want[5].1);
        let q = BrowserQuery {
            run: Some(1),
            min_tracks: Some(lo),
            max_tracks: Some(hi),
            page_size: 3,
            ..default()
        };
        let page = browse(&dataset, &q).expect("filtered");
        let passing = all
            .iter()
            .filter(|e| e.1 == 1 && (lo..=hi).contains(&e.2))
            .count() as u64;
        assert!(passing > 3, "the filter keeps several pages");
        assert_eq!(page.total, passing);
        assert_eq!(page.rows.len(), 3);
        assert!(
            page.rows
                .iter()
                .all(|r| r.run == 1 && (lo..=hi).contains(&r.n_tracks))
        );
        let none = browse(
            &dataset,
            &BrowserQuery {
                run: Some(7),
                ..default()
            },
        )
        .expect("empty");
        assert_eq!((none.total, none.rows.len(), none.pages(50)), (0, 0, 1));
        assert!(
            browse(
                &dataset,
                &BrowserQuery {
                    page_size: 0,
                    ..default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn find_tells_events_of_different_runs_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dataset = two_runs(dir.path());
        assert_eq!(find(&dataset, 1, 4).expect("find"), Some(4));
        assert_eq!(find(&dataset, 2, 4).expect("find"), Some(24));
        assert_eq!(find(&dataset, 2, 15).expect("find"), None);
        assert_eq!(find(&dataset, 3, 0).expect("find"), None);
    }

    #[test]
    fn the_panel_draws_a_page_and_bad_filters_do_not_query() {
        let page = BrowserPage {
            rows: vec![EventRow {
                event_id: 7,
                run: 1,
                event_number: 7,
                system: "pp".into(),
                n_tracks: 12,
                n_hits: 300,
                n_muons: 1,
                n_electrons: 0,
                n_jets: 0,
                met_pt_gev: None,
                flags: String::new(),
            }],
            total: 120,
        };
        let mut view = BrowserView {
            page: Some(page),
            run_text: "run one".into(),
            ..default()
        };
        let ctx = egui::Context::default();
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = browser_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(view.query, BrowserQuery::default());

        view.run_text = " 1 ".into();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = browser_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        assert_eq!(actions, [BrowserAction::Query]);
        assert_eq!(view.query.run, Some(1));
    }

    fn update_until(app: &mut App, done: impl Fn(&App) -> bool) {
        for _ in 0..500 {
            app.update();
            if done(app) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out waiting for the browser");
    }

    #[test]
    fn plugin_runs_headless_and_shows_a_found_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dataset = two_runs(dir.path());
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, EventBrowserPlugin))
            .insert_resource(OpenDataset(dataset));
        update_until(&mut app, |app| {
            app.world().resource::<BrowserState>().view.page.is_some()
        });
        let state = app.world().resource::<BrowserState>();
        let page = state.view.page.as_ref().expect("page");
        assert_eq!((page.total, page.rows.len()), (30, 30));
        assert!(!state.view.loading);

        app.world_mut()
            .resource_mut::<BrowserState>()
            .push(BrowserAction::Find {
                run: 2,
                event_number: 3,
            });
        let mut shown = Vec::new();
        update_until(&mut app, |app| {
            app.world()
                .resource::<BrowserState>()
                .view
                .selected
                .is_some()
        });
        shown.extend(
            app.world_mut()
                .resource_mut::<Messages<ShowEvent>>()
                .drain(),
        );
        assert_eq!(shown, [ShowEvent(23)]);

        // A new dataset resets the browser.
        let other = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(other.path()).expect("store");
        let empty = store.create_dataset("empty", "test").expect("create");
        app.insert_resource(OpenDataset(empty));
        update_until(&mut app, |app| {
            let view = &app.world().resource::<BrowserState>().view;
            view.page.as_ref().is_some_and(|p| p.total == 0)
        });
        assert_eq!(app.world().resource::<BrowserState>().view.selected, None);
    }
}

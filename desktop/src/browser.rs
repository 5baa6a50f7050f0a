//! `EventBrowserPlugin`: the "Events" window, a paged table of the open dataset's events,
//! sortable by any shown column and filtered by run and track multiplicity; clicking a row (or
//! "go to" a run/event pair) sends `ShowEvent`.
//!
//! The view model (`BrowserQuery` → `browse` → `BrowserPage`) has no Bevy types and is tested on
//! its own. A page is one SQL query over the `events` table, planned lazily by polars, so sorting
//! and slicing happen in the engine and only the page's rows are collected. Queries run on the
//! async pool; systems never wait for them.

use alyx_shared::store::Dataset;
use alyx_shared::{Error, query};
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

use crate::{OpenDataset, Panels, ShowEvent};

/// A column of the event table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Column {
    #[default]
    EventId,
    Run,
    EventNumber,
    System,
    Tracks,
    Hits,
    Muons,
    Electrons,
    Jets,
    MetPt,
    Flags,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::EventId,
        Column::Run,
        Column::EventNumber,
        Column::System,
        Column::Tracks,
        Column::Hits,
        Column::Muons,
        Column::Electrons,
        Column::Jets,
        Column::MetPt,
        Column::Flags,
    ];

    /// The column of the `events` table it shows.
    pub fn sql_name(self) -> &'static str {
        match self {
            Column::EventId => "event_id",
            Column::Run => "run",
            Column::EventNumber => "event_number",
            Column::System => "system",
            Column::Tracks => "n_tracks",
            Column::Hits => "n_hits",
            Column::Muons => "n_muons",
            Column::Electrons => "n_electrons",
            Column::Jets => "n_jets",
            Column::MetPt => "met_pt",
            Column::Flags => "flags",
        }
    }

    /// The column name quoted for SQL (`system` is an SQL keyword).
    fn quoted(self) -> String {
        format!("\"{}\"", self.sql_name())
    }

    pub fn title(self) -> &'static str {
        match self {
            Column::EventId => "id",
            Column::Run => "run",
            Column::EventNumber => "event",
            Column::System => "system",
            Column::Tracks => "tracks",
            Column::Hits => "hits",
            Column::Muons => "μ",
            Column::Electrons => "e",
            Column::Jets => "jets",
            Column::MetPt => "MET (GeV)",
            Column::Flags => "flags",
        }
    }
}

/// What the browser shows: filters, order and page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserQuery {
    pub run: Option<u32>,
    /// Inclusive bounds on `n_tracks`.
    pub min_tracks: Option<u32>,
    pub max_tracks: Option<u32>,
    pub sort: Column,
    pub descending: bool,
    /// Zero-based.
    pub page: usize,
    pub page_size: usize,
}

impl Default for BrowserQuery {
    fn default() -> Self {
        Self {
            run: None,
            min_tracks: None,
            max_tracks: None,
            sort: Column::EventId,
            descending: false,
            page: 0,
            page_size: 50,
        }
    }
}

impl BrowserQuery {
    fn where_clause(&self) -> String {
        let mut conditions = Vec::new();
        if let Some(run) = self.run {
            conditions.push(format!("run = {run}"));
        }
        if let Some(min) = self.min_tracks {
            conditions.push(format!("n_tracks >= {min}"));
        }
        if let Some(max) = self.max_tracks {
            conditions.push(format!("n_tracks <= {max}"));
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// Sorts by `sort`, then by event id so that pages never overlap.
    fn order_clause(&self) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        let sort = self.sort.quoted();
        if self.sort == Column::EventId {
            format!(" ORDER BY event_id {direction}")
        } else {
            format!(" ORDER BY {sort} {direction} NULLS LAST, event_id ASC")
        }
    }
}

/// One row of the event table.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub event_id: u64,
    pub run: u32,
    pub event_number: u64,
    pub system: String,
    pub n_tracks: u32,
    pub n_hits: u32,
    pub n_muons: u32,
    pub n_electrons: u32,
    pub n_jets: u32,
    /// `None` where the event has no missing-energy measurement.
    pub met_pt_gev: Option<f64>,
    /// Validation flags (empty for a valid event).
    pub flags: String,
}

impl EventRow {
    fn cell(&self, column: Column) -> String {
        match column {
            Column::EventId => self.event_id.to_string(),
            Column::Run => self.run.to_string(),
            Column::EventNumber => self.event_number.to_string(),
            Column::System => self.system.clone(),
            Column::Tracks => self.n_tracks.to_string(),
            Column::Hits => self.n_hits.to_string(),
            Column::Muons => self.n_muons.to_string(),
            Column::Electrons => self.n_electrons.to_string(),
            Column::Jets => self.n_jets.to_string(),
            Column::MetPt => self
                .met_pt_gev
                .map_or_else(String::new, |m| format!("{m:.1}")),
            Column::Flags => self.flags.clone(),
        }
    }
}

/// One page of the event table.
#[derive(Clone, Debug, PartialEq)]
pub struct BrowserPage {
    pub rows: Vec<EventRow>,
    /// Events passing the filters, on all pages.
    pub total: u64,
}

impl BrowserPage {
    /// Number of pages of `page_size` rows (at least one).
    pub fn pages(&self, page_size: usize) -> usize {
        (self.total as usize).div_ceil(page_size.max(1)).max(1)
    }
}

/// The page `q` asks for, and how many events pass its filters.
pub fn browse(dataset: &Dataset, q: &BrowserQuery) -> Result<BrowserPage, Error> {
    if q.page_size == 0 {
        return Err(Error::Invalid("page size must be at least 1".into()));
    }
    let filter = q.where_clause();
    let columns: Vec<String> = Column::ALL.iter().map(|c| c.quoted()).collect();
    let page_sql = format!(
        "SELECT {} FROM events{filter}{} LIMIT {} OFFSET {}",
        columns.join(", "),
        q.order_clause(),
        q.page_size,
        q.page * q.page_size
    );
    let df = query::sql(dataset, &page_sql)?;
    let number = |name: &str, i: usize| -> Result<Option<f64>, Error> {
        Ok(df.column(name)?.get(i)?.extract::<f64>())
    };
    let integer = |name: &str, i: usize| -> Result<u64, Error> {
        df.column(name)?
            .get(i)?
            .extract::<u64>()
            .ok_or_else(|| Error::Invalid(format!("events.{name} is null in row {i}")))
    };
    let text = |name: &str, i: usize| -> Result<String, Error> {
        Ok(df
            .column(name)?
            .str()?
            .get(i)
            .unwrap_or_default()
            .to_owned())
    };
    let count = |name: &str, i: usize| -> Result<u32, Error> {
        u32::try_from(integer(name, i)?)
            .map_err(|_| Error::Invalid(format!("events.{name} out of range in row {i}")))
    };
    let rows = (0..df.height())
        .map(|i| {
            Ok(EventRow {
                event_id: integer("event_id", i)?,
                run: count("run", i)?,
                event_number: integer("event_number", i)?,
                system: text("system", i)?,
                n_tracks: count("n_tracks", i)?,
                n_hits: count("n_hits", i)?,
                n_muons: count("n_muons", i)?,
                n_electrons: count("n_electrons", i)?,
                n_jets: count("n_jets", i)?,
                met_pt_gev: number("met_pt", i)?,
                flags: text("flags", i)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let counted = query::sql(
        dataset,
        &format!("SELECT COUNT(*) AS n FROM events{filter}"),
    )?;
    let total = counted.column("n")?.get(0)?.extract::<u64>().unwrap_or(0);
    Ok(BrowserPage { rows, total })
}

/// The id of the first event numbered `event_number` in `run`.
pub fn find(dataset: &Dataset, run: u32, event_number: u64) -> Result<Option<u64>, Error> {
    let df = query::sql(
        dataset,
        &format!(
            "SELECT event_id FROM events WHERE run = {run} AND event_number = {event_number} \
             ORDER BY event_id LIMIT 1"
        ),
    )?;
    if df.height() == 0 {
        return Ok(None);
    }
    Ok(df.column("event_id")?.get(0)?.extract::<u64>())
}

/// What the user asked for in the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrowserAction {
    /// The query changed: fetch its page.
    Query,
    /// Show this event.
    Show(u64),
    /// Find the event `event_number` of `run` and show it.
    Find { run: u32, event_number: u64 },
}

/// The panel's view model: the query, the form's text, and the last page.
#[derive(Clone, Debug, Default)]
pub struct BrowserView {
    pub query: BrowserQuery,
    pub run_text: String,
    pub min_tracks_text: String,
    pub max_tracks_text: String,
    pub goto_run_text: String,
    pub goto_event_text: String,
    pub page: Option<BrowserPage>,
    pub loading: bool,
    pub selected: Option<u64>,
    pub message: Option<String>,
}

/// An optional number typed in a field: empty is `None`.
fn parse_field<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what} must be a whole number, not `{text}`"))
}

/// The "Events" panel: filters, go-to, the table and paging.
pub fn browser_panel(ui: &mut egui::Ui, view: &mut BrowserView) -> Vec<BrowserAction> {
    let mut actions = Vec::new();
    let mut query = view.query.clone();
    let mut form_error = None;
    ui.horizontal(|ui| {
        let field = |ui: &mut egui::Ui, text: &mut String| {
            ui.add(egui::TextEdit::singleline(text).desired_width(70.0));
        };
        ui.label("run");
        field(ui, &mut view.run_text);
        ui.label("tracks from");
        field(ui, &mut view.min_tracks_text);
        ui.label("to");
        field(ui, &mut view.max_tracks_text);
    });
    match (
        parse_field(&view.run_text, "run"),
        parse_field(&view.min_tracks_text, "track count"),
        parse_field(&view.max_tracks_text, "track count"),
    ) {
        (Ok(run), Ok(min), Ok(max)) => {
            (query.run, query.min_tracks, query.max_tracks) = (run, min, max);
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => form_error = Some(e),
    }
    ui.horizontal(|ui| {
        ui.label("go to run");
        ui.add(egui::TextEdit::singleline(&mut view.goto_run_text).desired_width(70.0));
        ui.label("event");
        ui.add(egui::TextEdit::singleline(&mut view.goto_event_text).desired_width(90.0));
        if ui.button("go").clicked() {
            let run = parse_field::<u32>(&view.goto_run_text, "run");
            let event = parse_field::<u64>(&view.goto_event_text, "event");
            match (run, event) {
                (Ok(Some(run)), Ok(Some(event_number))) => {
                    actions.push(BrowserAction::Find { run, event_number })
                }
                (Err(e), _) | (_, Err(e)) => form_error = Some(e),
                _ => form_error = Some("type a run and an event number".into()),
            }
        }
    });
    if let Some(e) = &form_error {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    } else if let Some(message) = &view.message {
        ui.colored_label(egui::Color32::LIGHT_RED, message);
    }
    ui.separator();

    let page_size = query.page_size;
    let pages = view.page.as_ref().map_or(1, |p| p.pages(page_size));
    ui.horizontal(|ui| {
        if ui
            .add_enabled(query.page > 0, egui::Button::new("◀"))
            .clicked()
        {
            query.page -= 1;
        }
        ui.label(format!("page {} of {pages}", query.page + 1));
        if ui
            .add_enabled(query.page + 1 < pages, egui::Button::new("▶"))
            .clicked()
        {
            query.page += 1;
        }
        if let Some(page) = &view.page {
            ui.label(format!("{} events", page.total));
        }
        if view.loading {
            ui.spinner();
        }
    });

    egui::ScrollArea::both().max_height(420.0).show(ui, |ui| {
        egui::Grid::new("alyx-event-table")
            .striped(true)
            .num_columns(Column::ALL.len())
            .show(ui, |ui| {
                for column in Column::ALL {
                    let arrow = match (query.sort == column, query.descending) {
                        (false, _) => "",
                        (true, false) => " ⏶",
                        (true, true) => " ⏷",
                    };
                    if ui
                        .selectable_label(
                            query.sort == column,
                            format!("{}{arrow}", column.title()),
                        )
                        .clicked()
                    {
                        query.descending = query.sort == column && !query.descending;
                        query.sort = column;
                    }
                }
                ui.end_row();
                let Some(page) = &view.page else { return };
                for row in &page.rows {
                    let selected = view.selected == Some(row.event_id);
                    let mut clicked = false;
                    for column in Column::ALL {
                        clicked |= ui.selectable_label(selected, row.cell(column)).clicked();
                    }
                    ui.end_row();
                    if clicked {
                        actions.push(BrowserAction::Show(row.event_id));
                    }
                }
            });
    });

    // Filters and order start again from the first page.
    let same_but_page = BrowserQuery {
        page: view.query.page,
        ..query.clone()
    };
    if same_but_page != view.query {
        query.page = 0;
    }
    if query != view.query {
        view.query = query;
        actions.push(BrowserAction::Query);
    }
    actions
}

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
    use alyx_shared::DetectorGeometry;
    use alyx_shared::generator::{EventGenerator, GeneratorConfig};
    use alyx_shared::store::DataStore;

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

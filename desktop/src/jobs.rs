//! `JobsPlugin`: the "Jobs" window. Histogram jobs submitted from the query builder run on the
//! local pool when the desktop works alone — chunk by chunk on the async pool, the highest
//! priority first at every chunk, partial histograms merged as chunks finish — or in alyxd with
//! `--backend` (the window then lists the backend's jobs, own or everyone's, refreshed every
//! two seconds). Each row shows progress, the estimate, priority and cancel; a finished or
//! running job's histograms open in the query builder's plot and as a bin table here.

use std::time::{Duration, Instant};

use alyx_shared::Error;
use alyx_shared::histogram::Histogram;
use alyx_shared::jobs::{self, Analysis, JobState, TaskResult};
use alyx_shared::query::Checked;
use alyx_shared::store::Dataset;
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

use crate::Panels;
use crate::queries::QueryState;

/// A job as the window lists it, local or from the backend.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub dataset: String,
    pub state: String,
    pub reason: String,
    pub tasks_done: u32,
    pub tasks_total: u32,
    pub events_done: u64,
    pub seconds_left: f64,
    pub priority: i32,
    pub target: String,
    /// The histograms' columns, in order.
    pub columns: Vec<String>,
}

/// A job's merged histograms (partial until `complete`).
#[derive(Clone, Debug)]
pub struct JobResult {
    pub id: u64,
    pub histograms: Vec<(String, Histogram)>,
    pub complete: bool,
}

/// What the user asked for in the window (or the query builder, for Submit).
#[derive(Clone, Debug)]
pub enum JobsAction {
    Submit {
        name: String,
        analysis: Analysis,
        priority: i32,
        target: String,
    },
    Cancel(u64),
    Priority(u64, i32),
    Open(u64),
    Refresh,
}

/// The window's view model.
#[derive(Clone, Debug, Default)]
pub struct JobsView {
    pub rows: Vec<JobRow>,
    /// Everyone's jobs (backend) rather than one's own.
    pub show_all: bool,
    pub result: Option<JobResult>,
    pub message: Option<String>,
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The Jobs window: the job list with progress, and the opened result's bins.
pub fn jobs_panel(ui: &mut egui::Ui, view: &mut JobsView, remote: bool) -> Vec<JobsAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        if remote {
            if ui.checkbox(&mut view.show_all, "everyone's jobs").changed() {
                actions.push(JobsAction::Refresh);
            }
            if ui.button("⟳").clicked() {
                actions.push(JobsAction::Refresh);
            }
        } else {
            ui.label("local pool (submit from the query builder: \"run as job\")");
        }
    });
    if let Some(m) = &view.message {
        ui.colored_label(egui::Color32::from_rgb(230, 160, 60), m);
    }
    if view.rows.is_empty() {
        ui.label("no jobs");
    }
    egui::ScrollArea::vertical()
        .max_height(260.0)
        .id_salt("alyx-jobs-list")
        .show(ui, |ui| {
            for row in &view.rows {
                ui.horizontal(|ui| {
                    ui.monospace(format!("#{:<4}", row.id));
                    ui.label(format!("{} · {} · {}", row.owner, row.target, row.name));
                    let fraction = if row.tasks_total > 0 {
                        row.tasks_done as f32 / row.tasks_total as f32
                    } else {
                        0.0
                    };
                    let left = if JobState::parse(&row.state).is_some_and(JobState::is_final) {
                        row.state.clone()
                    } else {
                        format!("{} · about {} left", row.state, duration(row.seconds_left))
                    };
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(160.0)
                            .text(format!("{}/{} · {left}", row.tasks_done, row.tasks_total)),
                    );
                    let live = !JobState::parse(&row.state).is_some_and(JobState::is_final);
                    ui.label(format!("prio {}", row.priority));
                    if live && ui.small_button("+").clicked() {
                        actions.push(JobsAction::Priority(row.id, row.priority + 10));
                    }
                    if live && ui.small_button("−").clicked() {
                        actions.push(JobsAction::Priority(row.id, row.priority - 10));
                    }
                    if live && ui.small_button("cancel").clicked() {
                        actions.push(JobsAction::Cancel(row.id));
                    }
                    if row.tasks_done > 0 && ui.small_button("open").clicked() {
                        actions.push(JobsAction::Open(row.id));
                    }
                });
                if !row.reason.is_empty() {
                    ui.small(format!("    {}", row.reason));
                }
            }
        });
    if let Some(r) = &view.result {
        ui.separator();
        ui.label(format!(
            "job #{} result{}",
            r.id,
            if r.complete { "" } else { " (partial)" }
        ));
        for (column, h) in &r.histograms {
            ui.collapsing(
                format!("{column}: {} entries", h.entries.iter().sum::<u64>()),
                |ui| {
                    egui::Grid::new(("alyx-job-bins", column.as_str()))
                        .striped(true)
                        .show(ui, |ui| {
                            ui.strong("bin");
                            ui.strong("entries");
                            ui.strong("Σw ± √Σw²");
                            ui.end_row();
                            let edges = h.binning.edges();
                            for (i, e) in h.entries.iter().enumerate() {
                                ui.monospace(format!("{:.4}–{:.4}", edges[i], edges[i + 1]));
                                ui.monospace(e.to_string());
                                ui.monospace(format!(
                                    "{:.3} ± {:.3}",
                                    h.sum_w[i],
                                    h.sum_w2[i].sqrt()
                                ));
                                ui.end_row();
                            }
                        });
                },
            );
        }
    }
    actions
}

/// A job on the local pool.
struct LocalJob {
    row: JobRow,
    dataset: Dataset,
    analysis: Analysis,
    checked: Checked,
    /// Chunks not yet run, in order.
    pending: Vec<(u32, u64)>,
    parts: Vec<(u32, TaskResult)>,
    seconds: f64,
    events_run: u64,
}

impl LocalJob {
    fn state(&self) -> JobState {
        JobState::parse(&self.row.state).unwrap_or(JobState::Queued)
    }
}

/// The window's state: the view, the local jobs and the chunk in flight.
#[derive(Resource, Default)]
pub struct JobsState {
    pub view: JobsView,
    actions: Vec<JobsAction>,
    local: Vec<LocalJob>,
    running: Option<(u64, u32, Instant, Task<Result<TaskResult, Error>>)>,
    last_refresh: Option<Instant>,
}

impl JobsState {
    pub fn push(&mut self, action: JobsAction) {
        self.actions.push(action);
    }

    fn submit_local(
        &mut self,
        dataset: Option<Dataset>,
        name: String,
        analysis: Analysis,
        priority: i32,
    ) {
        let Some(dataset) = dataset else {
            self.view.message = Some("open a dataset first".into());
            return;
        };
        let checked = match analysis.check() {
            Ok(c) => c,
            Err(ds) => {
                self.view.message = Some(alyx_shared::query::invalid_query(&ds).to_string());
                return;
            }
        };
        let pending: Vec<(u32, u64)> = dataset
            .manifest()
            .chunks
            .iter()
            .map(|c| (c.id, c.event_count))
            .collect();
        let id = self.local.iter().map(|j| j.row.id).max().unwrap_or(0) + 1;
        self.local.push(LocalJob {
            row: JobRow {
                id,
                owner: "me".into(),
                name,
                dataset: dataset.name().to_owned(),
                state: JobState::Queued.name().into(),
                reason: String::new(),
                tasks_done: 0,
                tasks_total: pending.len() as u32,
                events_done: 0,
                seconds_left: 0.0,
                priority,
                target: "local".into(),
                columns: analysis
                    .histograms
                    .iter()
                    .map(|h| h.column.clone())
                    .collect(),
            },
            dataset,
            analysis,
            checked,
            pending,
            parts: Vec::new(),
            seconds: 0.0,
            events_run: 0,
        });
        self.view.message = None;
    }

    /// Starts the next chunk of the highest-priority live local job when none runs: a higher
    /// priority job submitted meanwhile goes first at the next chunk.
    fn schedule(&mut self) {
        if self.running.is_some() {
            return;
        }
        let next = self
            .local
            .iter_mut()
            .filter(|j| !j.state().is_final() && !j.pending.is_empty())
            .max_by_key(|j| (j.row.priority, std::cmp::Reverse(j.row.id)));
        let Some(job) = next else { return };
        let (chunk, _) = job.pending.remove(0);
        job.row.state = JobState::Running.name().into();
        let (ds, analysis, checked) = (
            job.dataset.clone(),
            job.analysis.clone(),
            job.checked.clone(),
        );
        let id = job.row.id;
        let task = AsyncComputeTaskPool::get()
            .spawn(async move { analysis.run_chunk(&ds, &checked, chunk) });
        self.running = Some((id, chunk, Instant::now(), task));
    }

    fn receive_local(&mut self) {
        let Some((id, chunk, started, task)) = &mut self.running else {
            return;
        };
        let Some(result) = check_ready(task) else {
            return;
        };
        let (id, chunk, seconds) = (*id, *chunk, started.elapsed().as_secs_f64());
        self.running = None;
        let Some(job) = self.local.iter_mut().find(|j| j.row.id == id) else {
            return;
        };
        if job.state().is_final() {
            return; // cancelled while the chunk ran: its result is dropped
        }
        match result {
            Ok(part) => {
                job.seconds += seconds;
                job.events_run += part.events;
                job.row.events_done += part.events;
                job.row.tasks_done += 1;
                job.parts.push((chunk, part));
                let per_event = job.seconds / job.events_run.max(1) as f64;
                let left: u64 = job.pending.iter().map(|(_, n)| n).sum();
                job.row.seconds_left = per_event * left as f64;
                if job.pending.is_empty() {
                    job.row.state = JobState::Succeeded.name().into();
                    job.row.reason = "every task done".into();
                }
            }
            Err(e) => {
                job.row.state = JobState::Failed.name().into();
                job.row.reason = format!("chunk {chunk}: {e}");
            }
        }
    }

    fn local_result(&self, id: u64) -> Option<JobResult> {
        let job = self.local.iter().find(|j| j.row.id == id)?;
        let merged = jobs::merge(&job.analysis, job.parts.clone()).ok()?;
        Some(JobResult {
            id,
            histograms: job
                .row
                .columns
                .iter()
                .cloned()
                .zip(merged.histograms)
                .collect(),
            complete: job.state() == JobState::Succeeded,
        })
    }

    /// The job list, newest first, and the opened result refreshed while its job runs.
    fn refresh_local(&mut self) {
        self.view.rows = self.local.iter().rev().map(|j| j.row.clone()).collect();
        if let Some(r) = &self.view.result
            && !r.complete
        {
            self.view.result = self.local_result(r.id);
        }
    }
}

fn run_actions(
    mut state: ResMut<JobsState>,
    queries: Option<ResMut<QueryState>>,
    backend: Option<Res<crate::remote::Backend>>,
    mut panels: ResMut<Panels>,
) {
    let mut queries = queries;
    for action in std::mem::take(&mut state.actions) {
        match (action, &backend) {
            (
                JobsAction::Submit {
                    name,
                    analysis,
                    priority,
                    target,
                },
                Some(b),
            ) => {
                b.send(crate::remote::Request::SubmitJob {
                    dataset: b.dataset.clone(),
                    name,
                    analysis,
                    priority,
                    target,
                });
                panels.jobs = true;
            }
            (
                JobsAction::Submit {
                    name,
                    analysis,
                    priority,
                    ..
                },
                None,
            ) => {
                let dataset = queries.as_ref().and_then(|q| q.dataset());
                state.submit_local(dataset, name, analysis, priority);
                panels.jobs = true;
            }
            (JobsAction::Cancel(id), Some(b)) => b.send(crate::remote::Request::CancelJob(id)),
            (JobsAction::Cancel(id), None) => {
                if let Some(j) = state.local.iter_mut().find(|j| j.row.id == id) {
                    j.row.state = JobState::Cancelled.name().into();
                    j.row.reason = "cancelled".into();
                    j.pending.clear();
                }
            }
            (JobsAction::Priority(id, p), Some(b)) => {
                b.send(crate::remote::Request::JobPriority(id, p.clamp(-100, 100)))
            }
            (JobsAction::Priority(id, p), None) => {
                if let Some(j) = state.local.iter_mut().find(|j| j.row.id == id) {
                    j.row.priority = p.clamp(-100, 100);
                }
            }
            (JobsAction::Open(id), Some(b)) => b.send(crate::remote::Request::JobResult(id)),
            (JobsAction::Open(id), None) => state.view.result = state.local_result(id),
            (JobsAction::Refresh, Some(b)) => b.send(crate::remote::Request::Jobs {
                all: state.view.show_all,
            }),
            (JobsAction::Refresh, None) => {}
        }
    }
    match &backend {
        Some(b) => {
            // Poll the backend's job list while the window is open.
            let due = state
                .last_refresh
                .is_none_or(|t| t.elapsed() > Duration::from_secs(2));
            if panels.jobs && due {
                b.send(crate::remote::Request::Jobs {
                    all: state.view.show_all,
                });
                if let Some(r) = &state.view.result
                    && !r.complete
                {
                    b.send(crate::remote::Request::JobResult(r.id));
                }
                state.last_refresh = Some(Instant::now());
            }
        }
        None => {
            state.receive_local();
            state.schedule();
            state.refresh_local();
        }
    }
    // An opened result shows in the query builder's plot too.
    if let (Some(r), Some(q)) = (&state.view.result, queries.as_mut()) {
        if let Some((column, h)) = r.histograms.first() {
            let label = format!("job #{} {column}", r.id);
            if q.view
                .histogram
                .as_ref()
                .is_none_or(|(l, old)| *l != label || old != h)
            {
                q.view.histogram = Some((label, h.clone()));
                q.view.generation += 1;
            }
        }
    }
}

/// The "Jobs" window; with a `Backend` resource it works with alyxd's JobService.
pub struct JobsPlugin;

impl Plugin for JobsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<JobsState>()
            .init_resource::<Panels>()
            .add_systems(Update, run_actions);
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.add_systems(EguiPrimaryContextPass, window);
        }
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<JobsState>,
    mut panels: ResMut<Panels>,
    backend: Option<Res<crate::remote::Backend>>,
) -> Result {
    if !panels.jobs {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Jobs")
        .open(&mut panels.jobs)
        .default_pos([760.0, 150.0])
        .default_width(560.0)
        .show(ctx, |ui| {
            actions = jobs_panel(ui, &mut state.view, backend.is_some())
        });
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_shared::histogram::Binning;
    use alyx_shared::jobs::HistogramSpec;
    use alyx_shared::nano::{self, NanoConfig};
    use alyx_shared::query;
    use alyx_shared::store::DataStore;

    use crate::OpenDataset;
    use crate::queries::QueryPlugin;

    fn analysis(column: &str, sql: &str) -> Analysis {
        Analysis {
            query: query::parse(sql).expect("sql"),
            histograms: vec![HistogramSpec {
                column: column.into(),
                weight: None,
                binning: Binning::fixed(50, 0.0, 250.0).expect("binning"),
            }],
        }
    }

    /// Local jobs, headless: the later high-priority job overtakes at a chunk boundary, both
    /// end with the local engine's histogram, a cancelled job stops, and an opened result
    /// fills the query builder's plot.
    #[test]
    fn local_jobs_run_by_priority_and_match_the_engine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let mut ds = store.create_dataset("nano", "test").expect("dataset");
        for part in nano::events(&NanoConfig::new(2), 0..3000).chunks(300) {
            ds.append(part).expect("append");
        }
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, QueryPlugin, JobsPlugin))
            .insert_resource(OpenDataset(ds.clone()));
        app.update();
        let jets = analysis("pt", "SELECT pt FROM jets WHERE ABS(eta) < 2.4");
        let push =
            |app: &mut App, a: JobsAction| app.world_mut().resource_mut::<JobsState>().push(a);
        push(
            &mut app,
            JobsAction::Submit {
                name: "low".into(),
                analysis: jets.clone(),
                priority: 0,
                target: "local".into(),
            },
        );
        app.update();
        push(
            &mut app,
            JobsAction::Submit {
                name: "high".into(),
                analysis: jets.clone(),
                priority: 50,
                target: "local".into(),
            },
        );
        push(
            &mut app,
            JobsAction::Submit {
                name: "doomed".into(),
                analysis: jets.clone(),
                priority: -5,
                target: "local".into(),
            },
        );
        push(&mut app, JobsAction::Cancel(3));
        let rows = |app: &App| app.world().resource::<JobsState>().view.rows.clone();
        let mut finished = Vec::new();
        for _ in 0..4000 {
            app.update();
            for r in rows(&app) {
                if r.state == "succeeded" && !finished.contains(&r.name) {
                    finished.push(r.name.clone());
                }
            }
            if finished.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(finished, ["high", "low"], "{:?}", rows(&app));
        let doomed = rows(&app)
            .into_iter()
            .find(|r| r.name == "doomed")
            .expect("row");
        assert_eq!((doomed.state.as_str(), doomed.tasks_done), ("cancelled", 0));

        let checked = jets.check().expect("valid");
        let whole = query::histogram_local(
            &ds,
            &checked,
            "pt",
            None,
            jets.histograms[0].binning.clone(),
        )
        .expect("engine");
        push(&mut app, JobsAction::Open(1));
        app.update();
        let state = app.world().resource::<JobsState>();
        let r = state.view.result.as_ref().expect("opened");
        assert!(r.complete);
        assert_eq!(r.histograms[0].1.entries, whole.entries);
        assert_eq!(
            rows(&app)[0].events_done,
            0,
            "the cancelled job is listed first (newest)"
        );
        let plotted = app.world().resource::<QueryState>().view.histogram.clone();
        assert_eq!(plotted.map(|(_, h)| h.entries), Some(whole.entries));
    }

    #[test]
    fn the_panel_lists_jobs_with_their_actions() {
        let ctx = egui::Context::default();
        let mut view = JobsView {
            rows: vec![JobRow {
                id: 4,
                owner: "ada".into(),
                name: "dimuon".into(),
                dataset: "nano".into(),
                state: "running".into(),
                reason: String::new(),
                tasks_done: 2,
                tasks_total: 8,
                events_done: 2000,
                seconds_left: 90.0,
                priority: 0,
                target: "slurm".into(),
                columns: vec!["mass".into()],
            }],
            ..JobsView::default()
        };
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = jobs_panel(ui, &mut view, true);
        })
        .drop_without_applying_deltas();
        assert!(actions.is_empty());
        assert_eq!(duration(90.0), "1 min");
    }
}

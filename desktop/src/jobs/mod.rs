//! `JobsPlugin`: the "Jobs" window. Histogram jobs submitted from the query builder run on the
//! local pool when the desktop works alone — chunk by chunk on the async pool, the highest
//! priority first at every chunk, partial histograms merged as chunks finish — or in alyxd with
//! `--backend` (the window then lists the backend's jobs, own or everyone's, refreshed every
//! two seconds). Each row shows progress, the estimate, priority and cancel; a finished or
//! running job's histograms open in the query builder's plot and as a bin table here.

mod model;
mod panel;
mod server;

use crate::Error;
use crate::remote::Remote;
use crate::{BackendDataset, OpenDataset, Panels, PlotHistogram, SubmitJob};
use alyx_analysis::jobs::{self, Analysis, AnalysisExt, JobState, Target, TaskResult};
use alyx_core::histogram::Histogram;
use alyx_core::jobs::JobInfo;
use alyx_query::Checked;
use alyx_store::Dataset;
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
pub use model::*;
pub use panel::*;
pub use server::JobsReply;
use std::time::{Duration, Instant};

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
    /// The result last sent to the query builder's plot.
    plotted: Option<(String, Histogram)>,
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
                self.view.message = Some(alyx_query::invalid_query(&ds).to_string());
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
            .spawn(async move { Ok(analysis.run_chunk(&ds, &checked, chunk)?) });
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

/// Jobs the query builder asks for become the window's actions.
fn take_submissions(mut submitted: MessageReader<SubmitJob>, mut state: ResMut<JobsState>) {
    for s in submitted.read() {
        state.push(JobsAction::Submit {
            name: s.name.clone(),
            analysis: s.analysis.clone(),
            priority: s.priority,
            target: s.target.clone(),
        });
    }
}

/// What alyxd answered.
fn receive(mut replies: MessageReader<JobsReply>, mut state: ResMut<JobsState>) {
    for reply in replies.read() {
        match reply {
            JobsReply::Jobs(Ok(jobs)) => {
                state.view.rows = jobs.iter().cloned().map(job_row).collect();
            }
            JobsReply::Result(Ok(o)) => {
                state.view.result = Some(JobResult {
                    id: o.job.id,
                    histograms: o.histograms.clone(),
                    complete: o.complete,
                });
            }
            JobsReply::Done(Ok(m))
            | JobsReply::Done(Err(m))
            | JobsReply::Jobs(Err(m))
            | JobsReply::Result(Err(m)) => state.view.message = Some(m.clone()),
        }
    }
}

fn job_row(j: JobInfo) -> JobRow {
    JobRow {
        id: j.id,
        owner: j.owner,
        name: j.name,
        dataset: j.dataset,
        state: j.state.name().into(),
        reason: j.reason,
        tasks_done: j.tasks_done,
        tasks_total: j.tasks_total,
        events_done: j.events_done,
        seconds_left: j.estimated_seconds_left,
        priority: j.priority,
        target: j.target.name().into(),
        columns: j.histograms.into_iter().map(|h| h.column).collect(),
    }
}

fn run_actions(
    mut state: ResMut<JobsState>,
    dataset: Option<Res<OpenDataset>>,
    remote: Option<Res<Remote>>,
    working_on: Option<Res<BackendDataset>>,
    mut panels: ResMut<Panels>,
    mut plot: MessageWriter<PlotHistogram>,
) {
    for action in std::mem::take(&mut state.actions) {
        match (action, &remote) {
            (
                JobsAction::Submit {
                    name,
                    analysis,
                    priority,
                    target,
                },
                Some(r),
            ) => {
                let dataset = working_on.as_ref().map(|d| d.0.clone()).unwrap_or_default();
                let target = Target::parse(&target).unwrap_or(Target::Auto);
                server::submit(r, dataset, name, analysis, priority, target);
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
                let dataset = dataset.as_ref().map(|d| d.0.clone());
                state.submit_local(dataset, name, analysis, priority);
                panels.jobs = true;
            }
            (JobsAction::Cancel(id), Some(r)) => server::cancel(r, id),
            (JobsAction::Cancel(id), None) => {
                if let Some(j) = state.local.iter_mut().find(|j| j.row.id == id) {
                    j.row.state = JobState::Cancelled.name().into();
                    j.row.reason = "cancelled".into();
                    j.pending.clear();
                }
            }
            (JobsAction::Priority(id, p), Some(r)) => {
                server::set_priority(r, id, p.clamp(-100, 100))
            }
            (JobsAction::Priority(id, p), None) => {
                if let Some(j) = state.local.iter_mut().find(|j| j.row.id == id) {
                    j.row.priority = p.clamp(-100, 100);
                }
            }
            (JobsAction::Open(id), Some(r)) => server::result(r, id),
            (JobsAction::Open(id), None) => state.view.result = state.local_result(id),
            (JobsAction::Refresh, Some(r)) => server::list(r, state.view.show_all),
            (JobsAction::Refresh, None) => {}
        }
    }
    match &remote {
        Some(r) => {
            // Poll the backend's job list while the window is open.
            let due = state
                .last_refresh
                .is_none_or(|t| t.elapsed() > Duration::from_secs(2));
            if panels.jobs && due {
                server::list(r, state.view.show_all);
                if let Some(open) = &state.view.result
                    && !open.complete
                {
                    server::result(r, open.id);
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
    // An opened result shows in the query builder's plot too (once per change).
    let shown = state.view.result.as_ref().and_then(|r| {
        let (column, h) = r.histograms.first()?;
        Some((format!("job #{} {column}", r.id), h.clone()))
    });
    if let Some(shown) = shown
        && state.plotted.as_ref() != Some(&shown)
    {
        state.plotted = Some(shown.clone());
        let (label, histogram) = shown;
        plot.write(PlotHistogram { label, histogram });
    }
}

/// The "Jobs" window; with a [`Remote`] it works with alyxd's JobService.
pub struct JobsPlugin;

impl Plugin for JobsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<JobsState>()
            .init_resource::<Panels>()
            .add_message::<SubmitJob>()
            .add_message::<PlotHistogram>()
            .add_message::<JobsReply>()
            .add_systems(Update, (take_submissions, receive, run_actions).chain());
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
    remote: Option<Res<Remote>>,
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
            actions = jobs_panel(ui, &mut state.view, remote.is_some())
        });
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_analysis::jobs::HistogramSpec;
    use alyx_core::histogram::Binning;
    use alyx_query as query;
    use alyx_sim::nano::{self, NanoConfig};
    use alyx_store::DataStore;

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
        // The result reaches the query builder as a message, read in the next frame at latest.
        app.update();
        let plotted = app
            .world()
            .resource::<crate::queries::QueryState>()
            .view
            .histogram
            .clone();
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

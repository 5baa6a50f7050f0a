//! `NotebookPlugin`: the "Notebook" window. A notebook is an Automerge document of cells —
//! Markdown, queries, plots (`-- histogram COL:BINS:LO:HI` lines over a query) and event views —
//! edited here and, with `--backend`, by colleagues at the same time.
//!
//! Standalone, notebooks are files in the local data directory (`notebooks/*.automerge`, saved
//! a second after each change) and cells run on the local engine. With `--backend` the window
//! lists alyxd's notebooks; an open one syncs through CollabService (`server` runs the
//! session): local edits go out as Automerge changes, colleagues' come in and merge, their
//! cursors show in the cells in their colours, and "follow" shows the event a colleague looks
//! at. A plot cell whose work (events × query size) exceeds the threshold is sent to the
//! cluster as a job; its histograms fill in when the job ends. Undo and redo work on this
//! user's own text edits and deletions, never on a colleague's.

use std::time::{Duration, Instant};

use alyx_analysis::notebook::run::{self, diagnostics, run_cell};
use alyx_analysis::notebook::{CellKind, CellOutput, Notebook};
use alyx_client::v1;
use bevy::prelude::*;
use bevy::tasks::AsyncComputeTaskPool;
use bevy::tasks::futures::check_ready;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

mod model;
mod panel;
mod server;

use crate::remote::Remote;
use crate::{BackendDataset, FollowView, OpenDataset, Panels, ShowEvent, Viewpoint};

use model::*;
pub use model::{Listed, NotebookAction, NotebookState, Peer};
pub use panel::notebook_panel;
pub use server::NotebookReply;
use server::{SessionInput, SyncSession};

/// Applies the window's actions.
fn run_actions(
    mut state: ResMut<NotebookState>,
    dataset: Option<Res<OpenDataset>>,
    remote: Option<Res<Remote>>,
    mut session: ResMut<SyncSession>,
    working_on: Res<BackendDataset>,
    mut show: MessageWriter<ShowEvent>,
    mut follow: MessageWriter<FollowView>,
    viewpoint: Res<Viewpoint>,
) {
    let dataset = dataset.map(|d| d.0.clone());
    let author = "me".to_owned();
    for action in std::mem::take(&mut state.actions) {
        state.message = None;
        match action {
            NotebookAction::New(title) => match &remote {
                Some(r) => server::create(r, title),
                None => {
                    let nb = Notebook::new(&title, &author);
                    let stem: String = title
                        .chars()
                        .map(|c| if c.is_alphanumeric() { c } else { '-' })
                        .collect();
                    let mut path = state.dir.join(format!("{stem}.automerge"));
                    let mut n = 1;
                    while path.exists() {
                        n += 1;
                        path = state.dir.join(format!("{stem}-{n}.automerge"));
                    }
                    state.open(nb, Some(path), None);
                    state.save_file();
                    state.list_files();
                }
            },
            NotebookAction::OpenFile(path) => state.spawn_io(move || {
                let read = std::fs::read(&path).map_err(|e| e.to_string());
                Io::Opened(path, read)
            }),
            NotebookAction::OpenRemote(id) => {
                if let Some(r) = &remote {
                    server::open(r, &mut session, id);
                }
            }
            NotebookAction::Refresh => match &remote {
                Some(r) => server::list(r),
                None => state.list_files(),
            },
            NotebookAction::Add(at, kind) => {
                let source = match kind {
                    CellKind::Markdown => "",
                    CellKind::Query => "SELECT event_id, met_pt FROM events WHERE met_pt > 50",
                    CellKind::Plot => "-- histogram met_pt:50:0:200\nSELECT met_pt FROM events",
                    CellKind::Event => "{\"event_id\": 0}",
                };
                state.edit(|nb| nb.insert_cell(at, kind, source).map(|_| ()));
            }
            NotebookAction::Delete(id) => {
                let at = state
                    .notebook
                    .as_ref()
                    .and_then(|nb| nb.order().iter().position(|c| *c == id));
                state.edit(|nb| nb.delete_cell(&id));
                if let Some(at) = at {
                    state.undo.push(Undo::Deleted(id, at));
                    state.redo.clear();
                }
            }
            NotebookAction::Move(id, by) => {
                let at = state
                    .notebook
                    .as_ref()
                    .and_then(|nb| nb.order().iter().position(|c| *c == id));
                if let Some(at) = at {
                    let to = (at as isize + by).max(0) as usize;
                    state.edit(|nb| nb.move_cell(&id, to));
                }
            }
            NotebookAction::Kind(id, kind) => state.edit(|nb| nb.set_kind(&id, kind)),
            NotebookAction::Edit(id, text) => {
                if let Some(before) = state.cell(&id).map(|c| c.source) {
                    // Keystrokes in a row in one cell undo together.
                    let coalesce = matches!(state.undo.last(), Some(Undo::Text(c, _)) if *c == id)
                        && state
                            .changed_at
                            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
                    if !coalesce {
                        state.undo.push(Undo::Text(id.clone(), before));
                    }
                    state.redo.clear();
                }
                state.edit(|nb| nb.set_source(&id, &text));
            }
            NotebookAction::Title(title) => state.edit(|nb| nb.set_title(&title)),
            NotebookAction::Undo | NotebookAction::Redo => {
                let undo = action == NotebookAction::Undo;
                let entry = if undo {
                    state.undo.pop()
                } else {
                    state.redo.pop()
                };
                let Some(entry) = entry else { continue };
                let back = match &entry {
                    Undo::Text(id, text) => {
                        let now = state.cell(id).map(|c| c.source).unwrap_or_default();
                        state.edit(|nb| nb.set_source(id, text));
                        Undo::Text(id.clone(), now)
                    }
                    Undo::Deleted(id, at) => {
                        let shown = state
                            .notebook
                            .as_ref()
                            .is_some_and(|nb| nb.order().contains(id));
                        if shown {
                            state.edit(|nb| nb.delete_cell(id));
                        } else {
                            state.edit(|nb| nb.undelete_cell(id, *at));
                        }
                        Undo::Deleted(id.clone(), *at)
                    }
                };
                if undo {
                    state.redo.push(back);
                } else {
                    state.undo.push(back);
                }
            }
            NotebookAction::Run(id) => start_run(
                &mut state,
                &id,
                dataset.as_ref(),
                remote.as_deref(),
                &working_on,
            ),
            NotebookAction::RunAll => {
                let ids: Vec<String> = state
                    .notebook
                    .as_ref()
                    .map(|nb| {
                        nb.cells()
                            .into_iter()
                            .filter(|c| matches!(c.kind, CellKind::Query | CellKind::Plot))
                            .map(|c| c.id)
                            .collect()
                    })
                    .unwrap_or_default();
                for id in ids {
                    start_run(
                        &mut state,
                        &id,
                        dataset.as_ref(),
                        remote.as_deref(),
                        &working_on,
                    );
                }
            }
            NotebookAction::Show(id) => {
                let event = state.cell(&id).and_then(|c| {
                    serde_json::from_str::<serde_json::Value>(&c.source)
                        .ok()?
                        .get("event_id")?
                        .as_u64()
                });
                match event {
                    Some(e) => {
                        show.write(ShowEvent(e));
                    }
                    None => state.message = Some("an event cell holds {\"event_id\": N}".into()),
                }
            }
            NotebookAction::Follow(session) => state.following = session,
            NotebookAction::Cursor(id, at) => state.last_cursor = Some((id, at)),
            NotebookAction::Export(format) => export(&mut state, format),
            NotebookAction::History(show) => {
                state.preview = None;
                state.history = if show {
                    state.notebook.as_mut().map(Notebook::history)
                } else {
                    None
                };
                // With a backend, the authors it authenticated replace what changes claim.
                if let (true, Some(r), Some(id)) = (show, &remote, state.remote) {
                    server::history(r, id);
                }
            }
            NotebookAction::Preview(version) => {
                state.preview = version.and_then(|h| {
                    let old = state.notebook.as_mut()?.at(std::slice::from_ref(&h)).ok()?;
                    Some((h, old.cells()))
                });
            }
            NotebookAction::Restore(version) => {
                state.edit(|nb| nb.restore(&[version]));
                state.preview = None;
                state.history = state.notebook.as_mut().map(Notebook::history);
                if let (Some(r), Some(id)) = (&remote, state.remote) {
                    server::history(r, id);
                }
            }
        }
    }
    // Follow a colleague: their event, camera, cuts and style (the shared workspace).
    let followed = state
        .following
        .as_ref()
        .and_then(|session| state.peers.iter().find(|p| &p.session == session).cloned());
    if let Some(p) = followed {
        if let Some((_, e)) = p.event {
            if state.followed_event != Some(e) {
                state.followed_event = Some(e);
                show.write(ShowEvent(e));
            }
        }
        // Every frame, as long as this user follows: their camera wins over this one's.
        follow.write(FollowView {
            camera: p.camera,
            cuts: p.cuts,
        });
    }
    // Tell colleagues where this user is: the cell and cursor, the event on display, the
    // camera and the cuts (at most ten times a second).
    if let (Some(_), Some(nb)) = (&remote, &state.notebook) {
        let (cell, at) = state.last_cursor.clone().unwrap_or_default();
        let shown = viewpoint.event_id;
        let camera = viewpoint.camera.clone();
        let cuts = viewpoint.cuts.clone();
        let now = (cell.clone(), at, shown, camera.clone(), cuts.clone());
        let due = state
            .presence_sent
            .as_ref()
            .is_none_or(|(t, last)| *last != now && t.elapsed() > Duration::from_millis(100));
        if due {
            let cursor = nb.cursor(&cell, at).unwrap_or_default();
            session.send(SessionInput::Presence(v1::Presence {
                cell,
                cursor,
                dataset: working_on.0.clone(),
                event_id: shown.unwrap_or(0),
                has_event: shown.is_some(),
                camera,
                cuts,
                ..Default::default()
            }));
            state.presence_sent = Some((Instant::now(), now));
        }
    }
    state.receive_io();
    // Outputs of local runs.
    let mut done = Vec::new();
    state
        .tasks
        .retain_mut(|(id, task)| match check_ready(task) {
            Some(out) => {
                done.push((id.clone(), out));
                false
            }
            None => true,
        });
    for (id, out) in done {
        state.running.retain(|c| *c != id);
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        state.edit(|nb| nb.set_output(&id, &out, "local", ms));
    }
    // Cells waiting for a job (whoever sent them): ask now and then; the first client to see
    // the job end fills the output in for everyone.
    if let Some(r) = &remote {
        let due = state
            .last_poll
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        if due {
            state.last_poll = Some(Instant::now());
            let waiting: Vec<(String, u64)> = state
                .notebook
                .as_ref()
                .map(|nb| {
                    nb.cells()
                        .into_iter()
                        .filter_map(|c| match c.output {
                            Some(CellOutput::Job { id, .. }) => Some((c.id, id)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (cell, job) in waiting {
                server::poll_job(r, cell, job);
            }
        }
        let changes = state.outgoing();
        if !changes.is_empty() {
            session.send(SessionInput::Edit(changes));
        }
    } else if state
        .changed_at
        .is_some_and(|t| t.elapsed() > Duration::from_millis(800))
    {
        state.changed_at = None;
        state.save_file();
    }
}

/// Runs a cell: on the local engine, or as a job when a backend is there and the work is large.
fn start_run(
    state: &mut NotebookState,
    id: &str,
    dataset: Option<&alyx_store::Dataset>,
    remote: Option<&Remote>,
    working_on: &BackendDataset,
) {
    let Some(cell) = state.cell(id) else { return };
    if let Some(d) = diagnostics(&cell).first() {
        state.message = Some(format!("cell not run: {d}"));
        return;
    }
    if let Some(r) = remote {
        // A job fills 1-D histograms only: a cell with 2-D ones runs here when it can.
        let big = match dataset {
            Some(_) if run::has_maps(&cell.source) => false,
            Some(ds) => run::work(ds, &cell) > state.threshold,
            None => true,
        };
        if cell.kind == CellKind::Plot && big {
            match run::analysis(&cell) {
                Ok(analysis) => {
                    server::submit(r, id.to_owned(), working_on.0.clone(), analysis);
                    state.running.push(id.to_owned());
                }
                Err(e) => state.message = Some(e.to_string()),
            }
            return;
        }
    }
    let Some(ds) = dataset.cloned() else {
        state.message = Some("open a dataset to run cells on".into());
        return;
    };
    let task = AsyncComputeTaskPool::get().spawn(async move { run_cell(&ds, &cell) });
    state.running.push(id.to_owned());
    state.tasks.push((id.to_owned(), task));
}

/// A cell's job was accepted (its id) or finished (its histograms).
/// What alyxd answered about notebooks.
fn receive(
    mut replies: MessageReader<NotebookReply>,
    mut state: ResMut<NotebookState>,
    remote: Option<Res<Remote>>,
    mut session: ResMut<SyncSession>,
) {
    for reply in replies.read() {
        match reply {
            NotebookReply::Listed(Ok(all)) => {
                state.listed = all.iter().cloned().map(listed).collect();
            }
            NotebookReply::Listed(Err(e)) | NotebookReply::Created(Err(e)) => {
                state.message = Some(e.clone());
            }
            NotebookReply::Created(Ok(id)) => {
                if let Some(r) = &remote {
                    server::open(r, &mut session, *id);
                    server::list(r);
                }
            }
            NotebookReply::Opened(r) => {
                match r.as_ref().map_err(Clone::clone).and_then(|(id, bytes)| {
                    Notebook::load(bytes, "me")
                        .map(|nb| (*id, nb))
                        .map_err(|e| e.to_string())
                }) {
                    Ok((id, nb)) => state.open(nb, None, Some(id)),
                    Err(e) => state.message = Some(e),
                }
            }
            NotebookReply::Changes(changes) => state.receive_changes(changes),
            NotebookReply::Presence(all) => state.receive_presence(all.clone()),
            NotebookReply::Job { cell, update } => job_update(&mut state, cell, update.clone()),
            NotebookReply::History(Ok(versions)) => {
                if state.history.is_some() {
                    state.history = Some(versions.clone());
                }
            }
            NotebookReply::History(Err(e)) => state.message = Some(e.clone()),
            NotebookReply::Status(m) => state.message = (!m.is_empty()).then(|| m.clone()),
        }
    }
}

/// A notebook of alyxd as the window lists it.
fn listed(n: v1::NotebookInfo) -> Listed {
    Listed {
        id: Some(n.id),
        path: None,
        title: n.title,
        owner: n.owner,
        access: match v1::Access::try_from(n.access) {
            Ok(v1::Access::Owner) => "owner",
            Ok(v1::Access::Write) => "write",
            Ok(v1::Access::Read) => "read",
            _ => "none",
        }
        .into(),
    }
}

fn job_update(
    state: &mut NotebookState,
    cell: &str,
    update: Result<(u64, String, Option<CellOutput>), String>,
) {
    match update {
        Ok((job, job_state, output)) => {
            let out = match output {
                // The cell's `-- fit` lines apply to the job's final histograms as to local
                // ones, fitted on the task pool (a Voigtian over many bins takes a while); the
                // output fills in when the fits end.
                Some(CellOutput::Histograms(hs)) => {
                    let source = state.cell(cell).map(|c| c.source).unwrap_or_default();
                    let fits = run::fit_specs(&source).is_ok_and(|f| !f.is_empty());
                    if fits && job_state == "succeeded" {
                        if !state.tasks.iter().any(|(id, _)| id == cell) {
                            let task = AsyncComputeTaskPool::get()
                                .spawn(async move { run::plot_output(&source, hs, Vec::new()) });
                            state.tasks.push((cell.to_owned(), task));
                        }
                        return;
                    }
                    CellOutput::Histograms(hs)
                }
                Some(other) => other,
                None => CellOutput::Job {
                    id: job,
                    state: job_state.clone(),
                },
            };
            if matches!(job_state.as_str(), "succeeded" | "failed" | "cancelled") {
                state.running.retain(|c| c != cell);
            }
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let changed = state
                .cell(cell)
                .is_none_or(|c| c.output.as_ref() != Some(&out));
            if changed {
                state.edit(|nb| nb.set_output(cell, &out, "cluster", ms));
            }
        }
        Err(e) => {
            state.running.retain(|c| c != cell);
            state.edit(|nb| nb.set_output(cell, &CellOutput::Error(e), "cluster", 0));
        }
    }
}

fn export(state: &mut NotebookState, format: &str) {
    let Some(nb) = &mut state.notebook else {
        return;
    };
    let stem: String = nb
        .title()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let (bytes, ext) = match format {
        "md" => (nb.to_markdown().into_bytes(), "md"),
        "ipynb" => (
            serde_json::to_vec_pretty(&nb.to_ipynb()).unwrap_or_default(),
            "ipynb",
        ),
        _ => (nb.save(), "automerge"),
    };
    let dir = state.dir.join("exports");
    state.spawn_io(move || {
        let path = dir.join(format!("{stem}.{ext}"));
        let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes));
        Io::Message(Some(match written {
            Ok(()) => format!("exported {}", path.display()),
            Err(e) => format!("cannot write {}: {e}", path.display()),
        }))
    });
}

/// The "Notebook" window (View ▸ Notebook).
pub struct NotebookPlugin;

impl Plugin for NotebookPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<NotebookState>()
            .init_resource::<Panels>()
            .init_resource::<SyncSession>()
            .init_resource::<BackendDataset>()
            .init_resource::<Viewpoint>()
            .add_message::<ShowEvent>()
            .add_message::<FollowView>()
            .add_message::<NotebookReply>()
            .add_systems(Update, (receive, run_actions).chain());
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.add_systems(EguiPrimaryContextPass, window);
        }
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<NotebookState>,
    mut panels: ResMut<Panels>,
    remote: Option<Res<Remote>>,
) -> Result {
    if !panels.notebook {
        return Ok(());
    }
    if !state.listed_once {
        state.listed_once = true;
        state.push(NotebookAction::Refresh);
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Notebook")
        .open(&mut panels.notebook)
        .default_pos([340.0, 60.0])
        .default_width(640.0)
        .vscroll(true)
        .show(ctx, |ui| {
            actions = notebook_panel(ui, &mut state, remote.is_some())
        });
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::histogram::{Binning, Histogram};
    use alyx_sim::nano::{self, NanoConfig};
    use alyx_store::DataStore;

    use crate::queries::QueryPlugin;

    /// Headless: a notebook made in the window, a plot cell run on the local engine, undo and
    /// redo of a deletion and of typing, autosave to the notebooks folder and reopening.
    #[test]
    fn cells_run_undo_and_the_notebook_is_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path().join("data")).expect("store");
        let mut ds = store.create_dataset("nano", "test").expect("dataset");
        for part in nano::events(&NanoConfig::new(3), 0..2000).chunks(1000) {
            ds.append(part).expect("append");
        }
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, QueryPlugin, NotebookPlugin))
            .insert_resource(OpenDataset(ds));
        app.world_mut().resource_mut::<NotebookState>().dir = dir.path().join("notebooks");
        let push = |app: &mut App, a: NotebookAction| {
            app.world_mut().resource_mut::<NotebookState>().push(a)
        };
        push(&mut app, NotebookAction::New("Z study".into()));
        app.update();
        push(&mut app, NotebookAction::Add(0, CellKind::Plot));
        push(&mut app, NotebookAction::Add(1, CellKind::Markdown));
        app.update();
        let ids = |app: &App| {
            app.world()
                .resource::<NotebookState>()
                .notebook
                .as_ref()
                .map(Notebook::order)
                .unwrap_or_default()
        };
        let [plot, md] = ids(&app).try_into().expect("two cells");
        push(&mut app, NotebookAction::Run(plot.clone()));
        push(
            &mut app,
            NotebookAction::Edit(md.clone(), "MET above 50 GeV".into()),
        );
        app.update();
        for _ in 0..2000 {
            app.update();
            if app.world().resource::<NotebookState>().running.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let state = app.world().resource::<NotebookState>();
        let nb = state.notebook.as_ref().expect("open");
        let Some(CellOutput::Histograms(hs)) = nb.cell(&plot).expect("plot").output else {
            panic!("the plot cell ran: {:?}", nb.cell(&plot));
        };
        assert_eq!(hs[0].0, "met_pt");
        assert_eq!(
            hs[0].1.entries.iter().sum::<u64>() as f64 + hs[0].1.overflow,
            2000.0
        );
        assert_eq!(nb.cell(&md).expect("md").source, "MET above 50 GeV");

        push(&mut app, NotebookAction::Delete(md.clone()));
        app.update();
        assert_eq!(ids(&app), vec![plot.clone()]);
        push(&mut app, NotebookAction::Undo);
        app.update();
        assert_eq!(ids(&app), vec![plot.clone(), md.clone()]);
        push(&mut app, NotebookAction::Undo); // the typing
        app.update();
        let source = |app: &App| {
            app.world()
                .resource::<NotebookState>()
                .cell(&md)
                .map(|c| c.source)
        };
        assert_eq!(source(&app).as_deref(), Some(""));
        push(&mut app, NotebookAction::Redo);
        app.update();
        assert_eq!(source(&app).as_deref(), Some("MET above 50 GeV"));

        // The history lists every change; a version is looked at, then restored.
        push(&mut app, NotebookAction::History(true));
        app.update();
        let history = app
            .world()
            .resource::<NotebookState>()
            .history
            .clone()
            .expect("shown");
        let added = history
            .iter()
            .find(|v| v.what.starts_with("added markdown cell"))
            .expect("the markdown cell's version")
            .hash
            .clone();
        push(&mut app, NotebookAction::Preview(Some(added.clone())));
        app.update();
        let preview = app
            .world()
            .resource::<NotebookState>()
            .preview
            .clone()
            .expect("preview");
        assert_eq!(preview.1.len(), 2);
        assert_eq!(preview.1[1].source, "");
        push(&mut app, NotebookAction::Restore(added));
        app.update();
        assert_eq!(source(&app).as_deref(), Some(""));
        let state = app.world().resource::<NotebookState>();
        assert!(
            state
                .history
                .as_ref()
                .is_some_and(|h| h.last().is_some_and(|v| v.what.starts_with("restored")))
        );

        // Saved a moment after the last change; it reopens as it was.
        std::thread::sleep(Duration::from_millis(900));
        app.update();
        // The write runs on the task pool.
        for _ in 0..500 {
            app.update();
            if app.world().resource::<NotebookState>().io.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let path = app
            .world()
            .resource::<NotebookState>()
            .path
            .clone()
            .expect("a file");
        let back = Notebook::load(&std::fs::read(&path).expect("saved"), "me").expect("loads");
        assert_eq!(back.title(), "Z study");
        assert_eq!(back.order(), vec![plot, md]);
    }

    /// A plot cell sent to the cluster: its partial histograms show as they come, and its
    /// `-- fit` lines are fitted once the job succeeds, off the UI thread.
    #[test]
    fn a_finished_job_is_fitted_on_the_task_pool() {
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, NotebookPlugin));
        let dir = tempfile::tempdir().expect("tempdir");
        app.world_mut().resource_mut::<NotebookState>().dir = dir.path().to_owned();
        let push = |app: &mut App, a: NotebookAction| {
            app.world_mut().resource_mut::<NotebookState>().push(a)
        };
        push(&mut app, NotebookAction::New("Z".into()));
        app.update();
        push(&mut app, NotebookAction::Add(0, CellKind::Plot));
        app.update();
        let cell = app
            .world()
            .resource::<NotebookState>()
            .notebook
            .as_ref()
            .expect("open")
            .order()[0]
            .clone();
        push(
            &mut app,
            NotebookAction::Edit(
                cell.clone(),
                "-- histogram m:40:80:100\n-- fit gauss+cheb0 on m\nSELECT 1 AS m".into(),
            ),
        );
        app.update();
        let mut h = Histogram::new(Binning::fixed(40, 80.0, 100.0).expect("binning"));
        for i in 0..40 {
            let x = 80.25 + 0.5 * f64::from(i);
            let n = (30.0 + 300.0 * (-0.5 * ((x - 91.0) / 2.0f64).powi(2)).exp()).round();
            (0..n as usize).for_each(|_| h.fill(x, 1.0));
        }
        let output = |app: &App| {
            app.world()
                .resource::<NotebookState>()
                .cell(&cell)
                .and_then(|c| c.output)
        };
        let update = |state: &str| {
            Ok((
                7,
                state.to_owned(),
                Some(CellOutput::Histograms(vec![("m".into(), h.clone())])),
            ))
        };
        job_update(
            &mut app.world_mut().resource_mut::<NotebookState>(),
            &cell,
            update("running"),
        );
        assert!(
            matches!(output(&app), Some(CellOutput::Histograms(_))),
            "partial: no fit yet"
        );
        job_update(
            &mut app.world_mut().resource_mut::<NotebookState>(),
            &cell,
            update("succeeded"),
        );
        job_update(
            &mut app.world_mut().resource_mut::<NotebookState>(),
            &cell,
            update("succeeded"),
        );
        assert_eq!(
            app.world().resource::<NotebookState>().tasks.len(),
            1,
            "one fit per job"
        );
        for _ in 0..2000 {
            app.update();
            if matches!(output(&app), Some(CellOutput::Plots { .. })) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let Some(CellOutput::Plots { fits, .. }) = output(&app) else {
            panic!("fitted: {:?}", output(&app));
        };
        let r = fits[0].result.as_ref().expect("fit");
        assert!(
            (r.param("mean").expect("mean").value - 91.0).abs() < 0.1,
            "{r:?}"
        );
    }

    #[test]
    fn the_panel_shows_cells_outputs_and_colleagues() {
        let ctx = egui::Context::default();
        let mut state = NotebookState::default();
        let mut nb = Notebook::new("Shared", "ada");
        let q = nb
            .insert_cell(0, CellKind::Query, "SELECT pt FROM muons")
            .expect("cell");
        nb.set_output(
            &q,
            &CellOutput::Table {
                columns: vec!["pt".into()],
                rows: vec![vec!["41.5".into()]],
                total: 1,
            },
            "local",
            0,
        )
        .expect("output");
        state.open(nb, None, Some(7));
        state.receive_presence(vec![v1::Presence {
            session: "s1".into(),
            user: "bob".into(),
            colour: "#3cb44b".into(),
            cell: q.clone(),
            has_event: true,
            dataset: "nano".into(),
            event_id: 12,
            ..Default::default()
        }]);
        assert_eq!(
            state.peers[0].colour,
            egui::Color32::from_rgb(0x3c, 0xb4, 0x4b)
        );
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = notebook_panel(ui, &mut state, true);
        })
        .drop_without_applying_deltas();
        assert!(actions.is_empty(), "{actions:?}");
    }
}

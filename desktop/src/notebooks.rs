//! `NotebookPlugin`: the "Notebook" window. A notebook is an Automerge document of cells —
//! Markdown, queries, plots (`-- histogram COL:BINS:LO:HI` lines over a query) and event views —
//! edited here and, with `--backend`, by colleagues at the same time.
//!
//! Standalone, notebooks are files in the local data directory (`notebooks/*.automerge`, saved
//! a second after each change) and cells run on the local engine. With `--backend` the window
//! lists alyxd's notebooks; an open one syncs through CollabService (`remote.rs` runs the
//! session): local edits go out as Automerge changes, colleagues' come in and merge, their
//! cursors show in the cells in their colours, and "follow" shows the event a colleague looks
//! at. A plot cell whose work (events × query size) exceeds the threshold is sent to the
//! cluster as a job; its histograms fill in when the job ends. Undo and redo work on this
//! user's own text edits and deletions, never on a colleague's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alyx_proto::v1;
use alyx_shared::notebook::run::{self, diagnostics, run_cell};
use alyx_shared::notebook::{Cell, CellKind, CellOutput, Notebook};
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

use crate::display::{Orbit, View, ViewOptions};
use crate::queries::{QueryState, highlighted};
use crate::{OpenDataset, Panels, ShowEvent};

/// What the user asked for in the window.
#[derive(Clone, Debug, PartialEq)]
pub enum NotebookAction {
    /// A new notebook with this title.
    New(String),
    OpenFile(PathBuf),
    OpenRemote(u64),
    Refresh,
    Add(usize, CellKind),
    Delete(String),
    /// Move a cell up (-1) or down (+1).
    Move(String, isize),
    Kind(String, CellKind),
    Edit(String, String),
    Title(String),
    Run(String),
    RunAll,
    Undo,
    Redo,
    /// Show an event cell's event in the 3D display.
    Show(String),
    /// Follow a colleague's view (their session), or stop.
    Follow(Option<String>),
    /// The cursor is at a character of a cell (sent to colleagues).
    Cursor(String, usize),
    Export(&'static str),
    /// Show the history (versions with author and time), or hide it.
    History(bool),
    /// Look at the notebook as it was at a version (None: now).
    Preview(Option<String>),
    /// Make the notebook as it was at a version again (a new change).
    Restore(String),
}

/// A colleague in the notebook, as the window shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub session: String,
    pub user: String,
    pub colour: egui::Color32,
    pub cell: String,
    /// Where their cursor is now in the cell's source.
    pub at: Option<usize>,
    pub event: Option<(String, u64)>,
    /// Their camera: yaw, pitch (rad), distance, focus x, y, z (cm), and (newer clients) the
    /// view (0 3D, 1 r-φ, 2 ρ-z) and 1 for an orthographic 3D view.
    pub camera: Vec<f32>,
    /// Their cuts and style (`ViewOptions` as JSON).
    pub cuts: String,
}

/// A notebook listed for opening: (id or file, title, owner, access).
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub id: Option<u64>,
    pub path: Option<PathBuf>,
    pub title: String,
    pub owner: String,
    pub access: String,
}

/// An undoable edit of this user's: a cell's text before, or a deleted cell and its place.
#[derive(Clone, Debug)]
enum Undo {
    Text(String, String),
    Deleted(String, usize),
}

#[derive(Resource)]
pub struct NotebookState {
    pub notebook: Option<Notebook>,
    /// Standalone: the file it lives in.
    pub path: Option<PathBuf>,
    /// With a backend: the open notebook's id.
    pub remote: Option<u64>,
    pub listed: Vec<Listed>,
    /// What each cell's editor shows.
    pub buffers: HashMap<String, String>,
    pub title: String,
    pub new_title: String,
    pub peers: Vec<Peer>,
    pub following: Option<String>,
    pub message: Option<String>,
    /// Work (events × query size) above which a plot cell goes to the cluster as a job.
    pub threshold: u64,
    /// Cells whose output is on its way: a local run, or a job.
    pub running: Vec<String>,
    /// The history shown (oldest first), and the version looked at with its cells.
    pub history: Option<Vec<alyx_shared::notebook::Version>>,
    pub preview: Option<(String, Vec<Cell>)>,
    /// The notebooks directory (standalone).
    pub dir: PathBuf,
    actions: Vec<NotebookAction>,
    undo: Vec<Undo>,
    redo: Vec<Undo>,
    tasks: Vec<(String, Task<CellOutput>)>,
    io: Vec<Task<Io>>,
    /// The heads whose changes the backend has been given.
    sent: Vec<String>,
    changed_at: Option<Instant>,
    last_cursor: Option<(String, usize)>,
    /// The presence last sent (and when): where this user is and what they look at.
    presence_sent: Option<(Instant, (String, usize, Option<u64>, Vec<f32>, String))>,
    followed_event: Option<u64>,
    last_poll: Option<Instant>,
    listed_once: bool,
}

impl Default for NotebookState {
    fn default() -> Self {
        Self {
            notebook: None,
            path: None,
            remote: None,
            listed: Vec::new(),
            buffers: HashMap::new(),
            title: String::new(),
            new_title: "Untitled analysis".into(),
            peers: Vec::new(),
            following: None,
            message: None,
            threshold: 200_000_000,
            running: Vec::new(),
            history: None,
            preview: None,
            dir: alyx_shared::default_data_dir().join("notebooks"),
            actions: Vec::new(),
            undo: Vec::new(),
            redo: Vec::new(),
            tasks: Vec::new(),
            io: Vec::new(),
            sent: Vec::new(),
            changed_at: None,
            last_cursor: None,
            presence_sent: None,
            followed_event: None,
            last_poll: None,
            listed_once: false,
        }
    }
}

fn colour(hex: &str) -> egui::Color32 {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0x888888);
    egui::Color32::from_rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

impl NotebookState {
    pub fn push(&mut self, action: NotebookAction) {
        self.actions.push(action);
    }

    /// Makes `nb` the open notebook.
    pub fn open(&mut self, mut nb: Notebook, path: Option<PathBuf>, remote: Option<u64>) {
        self.sent = nb.heads();
        self.notebook = Some(nb);
        self.path = path;
        self.remote = remote;
        self.undo.clear();
        self.redo.clear();
        self.peers.clear();
        self.following = None;
        self.refresh_buffers();
    }

    /// Editors show the document (after a change from anywhere).
    pub fn refresh_buffers(&mut self) {
        let Some(nb) = &self.notebook else { return };
        self.title = nb.title();
        self.buffers = nb.cells().into_iter().map(|c| (c.id, c.source)).collect();
    }

    /// Applies changes that came from the backend.
    pub fn receive_changes(&mut self, changes: &[Vec<u8>]) {
        let Some(nb) = &mut self.notebook else { return };
        match nb.apply_changes(changes) {
            Ok(()) => {
                // What came back includes our own: nothing left to send for those.
                self.sent = nb.heads();
                self.refresh_buffers();
                self.update_peers_positions();
            }
            Err(e) => self.message = Some(format!("a change from the backend: {e}")),
        }
    }

    /// Colleagues' presence from the backend.
    pub fn receive_presence(&mut self, all: Vec<v1::Presence>) {
        self.peers = all
            .into_iter()
            .map(|p| Peer {
                session: p.session,
                user: p.user,
                colour: colour(&p.colour),
                at: self
                    .notebook
                    .as_ref()
                    .and_then(|nb| nb.cursor_position(&p.cell, &p.cursor)),
                cell: p.cell,
                event: p.has_event.then_some((p.dataset, p.event_id)),
                camera: p.camera,
                cuts: p.cuts,
            })
            .collect();
        self.peers.sort_by(|a, b| a.user.cmp(&b.user));
    }

    fn update_peers_positions(&mut self) {
        // Positions follow the text; the cursors themselves are re-read on the next presence.
        let Some(nb) = &self.notebook else { return };
        for p in &mut self.peers {
            if let Some(at) = p.at {
                let len = nb.cell(&p.cell).map_or(0, |c| c.source.chars().count());
                p.at = Some(at.min(len));
            }
        }
    }

    /// Changes made here since the backend last got them.
    fn outgoing(&mut self) -> Vec<Vec<u8>> {
        let Some(nb) = &mut self.notebook else {
            return Vec::new();
        };
        let changes = nb
            .changes_since(&self.sent)
            .map(|c| c.into_iter().map(|(_, b)| b).collect())
            .unwrap_or_default();
        self.sent = nb.heads();
        changes
    }

    fn edit(&mut self, f: impl FnOnce(&mut Notebook) -> Result<(), alyx_shared::Error>) {
        let Some(nb) = &mut self.notebook else {
            self.message = Some("open or create a notebook first".into());
            return;
        };
        match f(nb) {
            Ok(()) => {
                self.changed_at = Some(Instant::now());
                self.refresh_buffers();
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    fn cell(&self, id: &str) -> Option<Cell> {
        self.notebook.as_ref()?.cell(id).ok()
    }

    /// Standalone: lists the notebook files in the directory (on the task pool).
    fn list_files(&mut self) {
        let dir = self.dir.clone();
        self.spawn_io(move || {
            let mut listed = Vec::new();
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "automerge") {
                    let title = std::fs::read(&path)
                        .ok()
                        .and_then(|b| Notebook::load(&b, "me").ok())
                        .map_or_else(|| "(unreadable)".into(), |nb| nb.title());
                    listed.push(Listed {
                        id: None,
                        path: Some(path),
                        title,
                        owner: "me".into(),
                        access: "owner".into(),
                    });
                }
            }
            listed.sort_by(|a, b| a.title.cmp(&b.title));
            Io::Listed(listed)
        });
    }

    /// Standalone: writes the notebook to its file (on the task pool; atomically).
    fn save_file(&mut self) {
        let (Some(nb), Some(path)) = (&mut self.notebook, self.path.clone()) else {
            return;
        };
        let bytes = nb.save();
        let dir = self.dir.clone();
        self.spawn_io(move || {
            let tmp = path.with_extension("automerge.tmp");
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&tmp, bytes))
                .and_then(|()| std::fs::rename(&tmp, &path));
            Io::Message(
                written
                    .err()
                    .map(|e| format!("cannot save {}: {e}", path.display())),
            )
        });
    }

    /// File work off the frame: its outcome is taken up by `run_actions`.
    fn spawn_io(&mut self, work: impl FnOnce() -> Io + Send + 'static) {
        self.io
            .push(AsyncComputeTaskPool::get().spawn(async move { work() }));
    }

    /// Takes up finished file work.
    fn receive_io(&mut self) {
        let mut done = Vec::new();
        self.io.retain_mut(|task| match check_ready(task) {
            Some(io) => {
                done.push(io);
                false
            }
            None => true,
        });
        for io in done {
            match io {
                Io::Listed(listed) => self.listed = listed,
                Io::Opened(path, read) => match read
                    .and_then(|b| Notebook::load(&b, "me").map_err(|e| e.to_string()))
                {
                    Ok(nb) => self.open(nb, Some(path), None),
                    Err(e) => self.message = Some(format!("cannot open {}: {e}", path.display())),
                },
                Io::Message(Some(m)) => self.message = Some(m),
                Io::Message(None) => {}
            }
        }
    }
}

/// File work done on the task pool for the window.
enum Io {
    Listed(Vec<Listed>),
    Opened(PathBuf, Result<Vec<u8>, String>),
    Message(Option<String>),
}

/// The window's contents; returns what the user asked for.
pub fn notebook_panel(
    ui: &mut egui::Ui,
    state: &mut NotebookState,
    remote: bool,
) -> Vec<NotebookAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut state.new_title).desired_width(160.0));
        if ui.button("new").clicked() {
            actions.push(NotebookAction::New(state.new_title.clone()));
        }
        egui::ComboBox::from_id_salt("alyx-notebook-open")
            .selected_text("open…")
            .show_ui(ui, |ui| {
                for l in &state.listed {
                    let text = format!("{} · {} ({})", l.title, l.owner, l.access);
                    if ui.selectable_label(false, text).clicked() {
                        actions.push(match (&l.id, &l.path) {
                            (Some(id), _) => NotebookAction::OpenRemote(*id),
                            (None, Some(p)) => NotebookAction::OpenFile(p.clone()),
                            _ => NotebookAction::Refresh,
                        });
                    }
                }
            });
        if ui
            .button("⟳")
            .on_hover_text("list notebooks again")
            .clicked()
        {
            actions.push(NotebookAction::Refresh);
        }
    });
    if let Some(m) = &state.message {
        ui.colored_label(egui::Color32::from_rgb(230, 160, 60), m);
    }
    if state.notebook.is_none() {
        ui.label(if remote {
            "no notebook open: create one, or open one shared with you"
        } else {
            "no notebook open: create one, or open one from the notebooks folder"
        });
        return actions;
    }
    ui.horizontal(|ui| {
        let mut title = state.title.clone();
        if ui
            .add(
                egui::TextEdit::singleline(&mut title)
                    .font(egui::TextStyle::Heading)
                    .desired_width(260.0),
            )
            .lost_focus()
            && title != state.title
        {
            actions.push(NotebookAction::Title(title));
        }
        if ui
            .add_enabled(!state.undo.is_empty(), egui::Button::new("undo"))
            .clicked()
        {
            actions.push(NotebookAction::Undo);
        }
        if ui
            .add_enabled(!state.redo.is_empty(), egui::Button::new("redo"))
            .clicked()
        {
            actions.push(NotebookAction::Redo);
        }
        if ui.button("▶▶ run all").clicked() {
            actions.push(NotebookAction::RunAll);
        }
        ui.menu_button("export", |ui| {
            for f in ["md", "ipynb", "automerge"] {
                if ui.button(f).clicked() {
                    actions.push(NotebookAction::Export(f));
                    ui.close();
                }
            }
        });
        let shown = state.history.is_some();
        if ui.selectable_label(shown, "history").clicked() {
            actions.push(NotebookAction::History(!shown));
        }
    });
    if let Some(versions) = &state.history {
        egui::ScrollArea::vertical()
            .id_salt("alyx-notebook-history")
            .max_height(140.0)
            .show(ui, |ui| {
                for v in versions.iter().rev() {
                    ui.horizontal(|ui| {
                        let previewing = state.preview.as_ref().is_some_and(|(h, _)| *h == v.hash);
                        let text = format!(
                            "{} · {} · {}",
                            alyx_shared::utc(v.time.saturating_mul(1_000_000_000)),
                            v.author,
                            v.what
                        );
                        if ui.selectable_label(previewing, text).clicked() {
                            actions.push(NotebookAction::Preview(
                                (!previewing).then(|| v.hash.clone()),
                            ));
                        }
                        if previewing && ui.small_button("restore").clicked() {
                            actions.push(NotebookAction::Restore(v.hash.clone()));
                        }
                    });
                }
            });
        if let Some((hash, cells)) = &state.preview {
            ui.label(format!(
                "as it was at {} (read only):",
                &hash[..hash.len().min(12)]
            ));
            for c in cells {
                ui.group(|ui| {
                    ui.weak(c.kind.name());
                    ui.monospace(&c.source);
                });
            }
            ui.separator();
        }
    }
    if remote {
        ui.horizontal_wrapped(|ui| {
            ui.label("here:");
            if state.peers.is_empty() {
                ui.label("only you");
            }
            for p in &state.peers {
                let following = state.following.as_deref() == Some(p.session.as_str());
                let text = match &p.event {
                    Some((ds, e)) => format!("● {} (event {ds}#{e})", p.user),
                    None => format!("● {}", p.user),
                };
                let label = egui::RichText::new(text).color(p.colour);
                if ui
                    .selectable_label(following, label)
                    .on_hover_text("follow: show the event they look at")
                    .clicked()
                {
                    actions.push(NotebookAction::Follow(
                        (!following).then(|| p.session.clone()),
                    ));
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("send plots to the cluster above");
            ui.add(
                egui::DragValue::new(&mut state.threshold)
                    .speed(1e6)
                    .suffix(" event·terms"),
            );
        });
    }
    ui.separator();
    let cells: Vec<Cell> = state
        .notebook
        .as_ref()
        .map(Notebook::cells)
        .unwrap_or_default();
    egui::ScrollArea::vertical()
        .id_salt("alyx-notebook-cells")
        .max_height(560.0)
        .show(ui, |ui| {
            for (i, cell) in cells.iter().enumerate() {
                cell_ui(ui, state, cell, i, cells.len(), &mut actions);
                ui.separator();
            }
            ui.horizontal(|ui| {
                ui.label("add");
                for kind in CellKind::ALL {
                    if ui.small_button(kind.name()).clicked() {
                        actions.push(NotebookAction::Add(cells.len(), kind));
                    }
                }
            });
        });
    actions
}

fn cell_ui(
    ui: &mut egui::Ui,
    state: &mut NotebookState,
    cell: &Cell,
    i: usize,
    n: usize,
    actions: &mut Vec<NotebookAction>,
) {
    let id = cell.id.clone();
    ui.horizontal(|ui| {
        let mut kind = cell.kind;
        egui::ComboBox::from_id_salt(("alyx-cell-kind", id.as_str()))
            .selected_text(kind.name())
            .width(90.0)
            .show_ui(ui, |ui| {
                for k in CellKind::ALL {
                    ui.selectable_value(&mut kind, k, k.name());
                }
            });
        if kind != cell.kind {
            actions.push(NotebookAction::Kind(id.clone(), kind));
        }
        if ui
            .add_enabled(i > 0, egui::Button::new("up").small())
            .clicked()
        {
            actions.push(NotebookAction::Move(id.clone(), -1));
        }
        if ui
            .add_enabled(i + 1 < n, egui::Button::new("down").small())
            .clicked()
        {
            actions.push(NotebookAction::Move(id.clone(), 1));
        }
        if ui
            .small_button("delete")
            .on_hover_text("undo brings it back")
            .clicked()
        {
            actions.push(NotebookAction::Delete(id.clone()));
        }
        match cell.kind {
            CellKind::Query | CellKind::Plot => {
                if ui.small_button("▶ run").clicked() {
                    actions.push(NotebookAction::Run(id.clone()));
                }
            }
            CellKind::Event => {
                if ui.small_button("show in 3D").clicked() {
                    actions.push(NotebookAction::Show(id.clone()));
                }
            }
            CellKind::Markdown => {}
        }
        if state.running.contains(&id) {
            ui.spinner();
        }
        for p in state.peers.iter().filter(|p| p.cell == id) {
            ui.colored_label(p.colour, format!("● {}", p.user));
        }
        if let Some(by) = (!cell.author.is_empty()).then_some(&cell.author) {
            ui.weak(format!(
                "by {by}{}",
                if cell.engine.is_empty() {
                    String::new()
                } else {
                    format!(" · ran on {}", cell.engine)
                }
            ));
        }
    });
    let mut text = state
        .buffers
        .get(&id)
        .cloned()
        .unwrap_or_else(|| cell.source.clone());
    let code = matches!(cell.kind, CellKind::Query | CellKind::Plot);
    let mut layouter = |ui: &egui::Ui, t: &dyn egui::TextBuffer, wrap: f32| {
        let mut job = if code {
            highlighted(t.as_str(), ui)
        } else {
            egui::text::LayoutJob::simple(
                t.as_str().to_owned(),
                egui::FontId::proportional(14.0),
                ui.visuals().text_color(),
                wrap,
            )
        };
        job.wrap.max_width = wrap;
        ui.fonts_mut(|f| f.layout_job(job))
    };
    let mut edit = egui::TextEdit::multiline(&mut text)
        .id_salt(("alyx-cell", id.as_str()))
        .desired_rows(if code { 4 } else { 2 })
        .desired_width(f32::INFINITY)
        .layouter(&mut layouter);
    if code || cell.kind == CellKind::Event {
        edit = edit.code_editor();
    }
    let output = edit.show(ui);
    if output.response.changed() {
        actions.push(NotebookAction::Edit(id.clone(), text.clone()));
        state.buffers.insert(id.clone(), text);
    }
    if let Some(range) = output.cursor_range {
        if output.response.has_focus() {
            actions.push(NotebookAction::Cursor(id.clone(), range.primary.index.0));
        }
    }
    // Colleagues' cursors, in their colours.
    for p in state.peers.iter().filter(|p| p.cell == id) {
        if let Some(at) = p.at {
            let r = output
                .galley
                .pos_from_cursor(egui::text::CCursor::new(at))
                .translate(output.galley_pos.to_vec2());
            let painter = ui.painter();
            painter.line_segment(
                [r.left_top(), r.left_bottom()],
                egui::Stroke::new(2.0, p.colour),
            );
            painter.text(
                r.left_top(),
                egui::Align2::LEFT_BOTTOM,
                &p.user,
                egui::FontId::proportional(10.0),
                p.colour,
            );
        }
    }
    for d in diagnostics(cell) {
        ui.colored_label(egui::Color32::from_rgb(240, 110, 100), d.to_string());
    }
    if let Some(o) = &cell.output {
        output_ui(ui, &id, o);
    }
}

fn output_ui(ui: &mut egui::Ui, id: &str, o: &CellOutput) {
    match o {
        CellOutput::Table {
            columns,
            rows,
            total,
        } => {
            egui::ScrollArea::both()
                .id_salt(("alyx-cell-table", id))
                .max_height(180.0)
                .show(ui, |ui| {
                    egui::Grid::new(("alyx-cell-grid", id))
                        .striped(true)
                        .show(ui, |ui| {
                            for c in columns {
                                ui.strong(c);
                            }
                            ui.end_row();
                            for r in rows {
                                for v in r {
                                    ui.monospace(v);
                                }
                                ui.end_row();
                            }
                        });
                });
            ui.weak(format!("{} of {total} rows", rows.len()));
        }
        CellOutput::Histograms(hs) => {
            for (column, h) in hs {
                let edges = h.binning.edges();
                let bars: Vec<egui_plot::Bar> = h
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        egui_plot::Bar::new(0.5 * (edges[i] + edges[i + 1]), h.sum_w[i])
                            .width(edges[i + 1] - edges[i])
                    })
                    .collect();
                egui_plot::Plot::new(("alyx-cell-plot", id, column.as_str()))
                    .height(160.0)
                    .x_axis_label(column.as_str())
                    .include_y(0.0)
                    .show(ui, |p| {
                        p.bar_chart(
                            egui_plot::BarChart::new(column.clone(), bars)
                                .color(egui::Color32::from_rgb(90, 150, 230)),
                        );
                    });
                ui.weak(format!(
                    "{column}: {} entries · underflow {} · overflow {}",
                    h.entries.iter().sum::<u64>(),
                    h.underflow,
                    h.overflow
                ));
            }
        }
        CellOutput::Job { id, state } => {
            ui.label(format!("sent to the cluster as job #{id}: {state}"));
        }
        CellOutput::Error(e) => {
            ui.colored_label(egui::Color32::from_rgb(240, 110, 100), e);
        }
    }
}

/// Applies the window's actions.
fn run_actions(
    mut state: ResMut<NotebookState>,
    dataset: Option<Res<OpenDataset>>,
    backend: Option<Res<crate::remote::Backend>>,
    mut show: MessageWriter<ShowEvent>,
    queries: Option<Res<QueryState>>,
    display: Option<Res<crate::display::Display>>,
    mut orbit: Option<ResMut<Orbit>>,
    mut options: Option<ResMut<ViewOptions>>,
) {
    let dataset = dataset
        .map(|d| d.0.clone())
        .or_else(|| queries.and_then(|q| q.dataset()));
    let author = "me".to_owned();
    for action in std::mem::take(&mut state.actions) {
        state.message = None;
        match action {
            NotebookAction::New(title) => match &backend {
                Some(b) => b.send(crate::remote::Request::NotebookCreate(title)),
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
                if let Some(b) = &backend {
                    b.send(crate::remote::Request::NotebookOpen(id));
                }
            }
            NotebookAction::Refresh => match &backend {
                Some(b) => b.send(crate::remote::Request::Notebooks),
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
            NotebookAction::Run(id) => {
                start_run(&mut state, &id, dataset.as_ref(), backend.as_deref())
            }
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
                    start_run(&mut state, &id, dataset.as_ref(), backend.as_deref());
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
        if let (Some(orbit), [yaw, pitch, distance, x, y, z, rest @ ..]) =
            (orbit.as_mut(), p.camera.as_slice())
        {
            // Older clients send six numbers; newer ones add the view and the orthographic flag.
            let view = rest
                .first()
                .and_then(|v| View::from_index(*v as u8))
                .unwrap_or(View::ThreeD);
            let theirs = Orbit {
                yaw: *yaw,
                pitch: *pitch,
                distance: *distance,
                focus: [*x, *y, *z],
                view,
                orthographic: rest.get(1).is_some_and(|o| *o != 0.0),
            };
            if **orbit != theirs {
                **orbit = theirs;
            }
        }
        if let (Some(options), Ok(theirs)) = (
            options.as_mut(),
            serde_json::from_str::<ViewOptions>(&p.cuts),
        ) {
            if **options != theirs {
                **options = theirs;
            }
        }
    }
    // Tell colleagues where this user is: the cell and cursor, the event on display, the
    // camera and the cuts (at most ten times a second).
    let shown = display.as_ref().map(|d| d.event_id);
    if let (Some(b), Some(nb)) = (&backend, &state.notebook) {
        let (cell, at) = state.last_cursor.clone().unwrap_or_default();
        let camera = orbit.as_ref().map_or_else(Vec::new, |o| {
            vec![
                o.yaw,
                o.pitch,
                o.distance,
                o.focus[0],
                o.focus[1],
                o.focus[2],
                f32::from(o.view.index()),
                f32::from(u8::from(o.orthographic)),
            ]
        });
        let cuts = options
            .as_ref()
            .and_then(|o| serde_json::to_string(&**o).ok())
            .unwrap_or_default();
        let now = (cell.clone(), at, shown, camera.clone(), cuts.clone());
        let due = state
            .presence_sent
            .as_ref()
            .is_none_or(|(t, last)| *last != now && t.elapsed() > Duration::from_millis(100));
        if due {
            let cursor = nb.cursor(&cell, at).unwrap_or_default();
            b.send(crate::remote::Request::NotebookPresence(v1::Presence {
                cell,
                cursor,
                dataset: b.dataset.clone(),
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
    if let Some(b) = &backend {
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
                b.send(crate::remote::Request::NotebookJob { cell, job });
            }
        }
        let changes = state.outgoing();
        if !changes.is_empty() {
            b.send(crate::remote::Request::NotebookEdit(changes));
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
    dataset: Option<&alyx_shared::store::Dataset>,
    backend: Option<&crate::remote::Backend>,
) {
    let Some(cell) = state.cell(id) else { return };
    if let Some(d) = diagnostics(&cell).first() {
        state.message = Some(format!("cell not run: {d}"));
        return;
    }
    if let Some(b) = backend {
        let big = dataset.is_none_or(|ds| run::work(ds, &cell) > state.threshold);
        if cell.kind == CellKind::Plot && big {
            match run::analysis(&cell) {
                Ok(analysis) => {
                    b.send(crate::remote::Request::NotebookSubmit {
                        cell: id.to_owned(),
                        dataset: b.dataset.clone(),
                        analysis,
                    });
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
pub fn job_update(
    state: &mut NotebookState,
    cell: &str,
    update: Result<(u64, String, Option<CellOutput>), String>,
) {
    match update {
        Ok((job, job_state, output)) => {
            let out = output.unwrap_or(CellOutput::Job {
                id: job,
                state: job_state.clone(),
            });
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
            .add_message::<ShowEvent>()
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
    mut state: ResMut<NotebookState>,
    mut panels: ResMut<Panels>,
    backend: Option<Res<crate::remote::Backend>>,
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
            actions = notebook_panel(ui, &mut state, backend.is_some())
        });
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_shared::nano::{self, NanoConfig};
    use alyx_shared::store::DataStore;

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

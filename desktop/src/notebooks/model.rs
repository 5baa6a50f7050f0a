//! The Notebook window's state: the open notebook, its cells' editors, colleagues, undo and
//! redo, what runs, and the file and backend work in flight.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use alyx_analysis::notebook::{Cell, CellKind, CellOutput, Notebook};
use alyx_client::v1;
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::egui;

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
pub(super) enum Undo {
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
    pub history: Option<Vec<alyx_analysis::notebook::Version>>,
    pub preview: Option<(String, Vec<Cell>)>,
    /// The notebooks directory (standalone).
    pub dir: PathBuf,
    pub(super) actions: Vec<NotebookAction>,
    pub(super) undo: Vec<Undo>,
    pub(super) redo: Vec<Undo>,
    pub(super) tasks: Vec<(String, Task<CellOutput>)>,
    pub(super) io: Vec<Task<Io>>,
    /// The heads whose changes the backend has been given.
    pub(super) sent: Vec<String>,
    pub(super) changed_at: Option<Instant>,
    pub(super) last_cursor: Option<(String, usize)>,
    /// The presence last sent (and when): where this user is and what they look at.
    pub(super) presence_sent: Option<(Instant, (String, usize, Option<u64>, Vec<f32>, String))>,
    pub(super) followed_event: Option<u64>,
    pub(super) last_poll: Option<Instant>,
    pub(super) listed_once: bool,
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
            dir: alyx_core::default_data_dir().join("notebooks"),
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

pub(super) fn colour(hex: &str) -> egui::Color32 {
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

    pub(super) fn update_peers_positions(&mut self) {
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
    pub(super) fn outgoing(&mut self) -> Vec<Vec<u8>> {
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

    pub(super) fn edit(
        &mut self,
        f: impl FnOnce(&mut Notebook) -> Result<(), alyx_analysis::Error>,
    ) {
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

    pub(super) fn cell(&self, id: &str) -> Option<Cell> {
        self.notebook.as_ref()?.cell(id).ok()
    }

    /// Standalone: lists the notebook files in the directory (on the task pool).
    pub(super) fn list_files(&mut self) {
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
    pub(super) fn save_file(&mut self) {
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
    pub(super) fn spawn_io(&mut self, work: impl FnOnce() -> Io + Send + 'static) {
        self.io
            .push(AsyncComputeTaskPool::get().spawn(async move { work() }));
    }

    /// Takes up finished file work.
    pub(super) fn receive_io(&mut self) {
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
pub(super) enum Io {
    Listed(Vec<Listed>),
    Opened(PathBuf, Result<Vec<u8>, String>),
    Message(Option<String>),
}

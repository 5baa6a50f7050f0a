//! What the app and the network side say to each other: requests, replies, and the replies
//! as Bevy messages for the features that asked.

use alyx_analysis::notebook::CellOutput;
use alyx_client::{JobOutcome, v1};
use alyx_core::model::CollisionEvent;
use alyx_core::summary::{DatasetInfo, EventSummary};
use bevy::prelude::*;

/// Where the backend is and who asks.
#[derive(Clone, Debug)]
pub struct Connection {
    pub url: String,
    pub token: String,
}

/// What systems ask the client for.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Datasets,
    Events {
        dataset: String,
        after: Option<u64>,
    },
    Event {
        dataset: String,
        id: u64,
    },
    /// Follow the newest stored event of the dataset (`None` stops following).
    Follow(Option<String>),
    /// The caller's jobs, or everyone's.
    Jobs {
        all: bool,
    },
    SubmitJob {
        dataset: String,
        name: String,
        analysis: alyx_analysis::jobs::Analysis,
        priority: i32,
        target: String,
    },
    CancelJob(u64),
    JobPriority(u64, i32),
    JobResult(u64),
    /// The notebooks the user may open.
    Notebooks,
    NotebookCreate(String),
    /// Open a notebook: a sync session follows it until another is opened.
    NotebookOpen(u64),
    /// Changes made in the open notebook (Automerge change bytes).
    NotebookEdit(Vec<Vec<u8>>),
    NotebookPresence(v1::Presence),
    /// Send a plot cell to the cluster as a job.
    NotebookSubmit {
        cell: String,
        dataset: String,
        analysis: alyx_analysis::jobs::Analysis,
    },
    /// How a cell's job is doing (its histograms once it ended).
    NotebookJob {
        cell: String,
        job: u64,
    },
}

/// What the client answers (errors as messages for the user).
#[derive(Debug)]
pub enum Reply {
    Datasets(Result<Vec<DatasetInfo>, String>),
    Events(Result<(Vec<EventSummary>, Option<u64>, u64), String>),
    Event(Result<(EventSummary, CollisionEvent), String>),
    /// The connection state of the live subscription, for the status line.
    Live(String),
    Jobs(Result<Vec<v1::Job>, String>),
    JobResult(Result<JobOutcome, String>),
    /// A job was submitted, cancelled or reprioritised (what happened), or why not.
    JobDone(Result<String, String>),
    Notebooks(Result<Vec<v1::NotebookInfo>, String>),
    NotebookCreated(Result<u64, String>),
    /// The notebook opened (id and the whole document), or why not.
    NotebookOpened(Result<(u64, Vec<u8>), String>),
    /// Colleagues' changes to the open notebook.
    NotebookChanges(Vec<Vec<u8>>),
    /// Everyone's presence in the open notebook now.
    NotebookPresence(Vec<v1::Presence>),
    /// A cell's job: (job id, state, output once it ended).
    NotebookJob {
        cell: String,
        update: Result<(u64, String, Option<CellOutput>), String>,
    },
    /// The sync session's state, for the window.
    NotebookStatus(String),
}

/// What JobService answered, for the Jobs window (errors as messages for the user).
#[derive(Message, Debug)]
pub enum JobsReply {
    Jobs(Result<Vec<v1::Job>, String>),
    Result(Result<JobOutcome, String>),
    /// A job was submitted, cancelled or reprioritised (what happened), or why not.
    Done(Result<String, String>),
}

/// What CollabService (and JobService, for cells sent as jobs) answered, for the Notebook
/// window.
#[derive(Message, Debug)]
pub enum NotebookReply {
    Listed(Result<Vec<v1::NotebookInfo>, String>),
    Created(Result<u64, String>),
    /// The notebook opened (id and the whole document), or why not.
    Opened(Result<(u64, Vec<u8>), String>),
    /// Colleagues' changes to the open notebook.
    Changes(Vec<Vec<u8>>),
    /// Everyone's presence in the open notebook now.
    Presence(Vec<v1::Presence>),
    /// A cell's job: (job id, state, output once it ended).
    Job {
        cell: String,
        update: Result<(u64, String, Option<CellOutput>), String>,
    },
    /// The sync session's state, for the window.
    Status(String),
}

//! The Jobs window's view model: rows, an opened result, the actions a click asks for.

use alyx_analysis::jobs::Analysis;
use alyx_core::histogram::Histogram;
use bevy::prelude::*;

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

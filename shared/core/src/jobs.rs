//! Analysis jobs as data: what a job computes (a per-event query and the histograms of its
//! outputs), where its tasks run and the states it goes through. `alyx_analysis::jobs` runs
//! them; the backend orchestrates them; `alyx-proto` carries them.

use serde::{Deserialize, Serialize};

use crate::ast::{Expr, Item, Query};
use crate::histogram::Binning;

/// One histogram of an analysis: an output column of its query, optionally weighted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramSpec {
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    pub binning: Binning,
}

/// What a job computes: histograms of a per-event query's outputs over a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub query: Query,
    pub histograms: Vec<HistogramSpec>,
}

/// A job's state. Tasks are pending, running, done or failed; the job's state follows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Preempted,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Preempted,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Preempted => "preempted",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Succeeded, failed or cancelled: nothing more happens to the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Where a job's tasks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The scheduler picks (the local pool unless the work is large and a cluster is up).
    Auto,
    Local,
    Spark,
    Slurm,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Auto, Target::Local, Target::Spark, Target::Slurm];

    pub fn name(self) -> &'static str {
        match self {
            Target::Auto => "auto",
            Target::Local => "local",
            Target::Spark => "spark",
            Target::Slurm => "slurm",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A job as alyxd reports it: what was asked, where it stands and how it got there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobInfo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub dataset: String,
    pub state: JobState,
    /// Why it failed or was cancelled, or what it waits for.
    pub reason: String,
    pub target: Target,
    pub priority: i32,
    pub cores: u32,
    pub memory_mb: u32,
    pub tasks_total: u32,
    pub tasks_done: u32,
    pub tasks_running: u32,
    pub tasks_failed: u32,
    pub events_total: u64,
    pub events_done: u64,
    /// 0 once it ended.
    pub estimated_seconds_left: f64,
    pub submitted_unix_ms: i64,
    pub started_unix_ms: Option<i64>,
    pub finished_unix_ms: Option<i64>,
    pub history: Vec<Transition>,
    /// The analysis query in ALYX SQL.
    pub sql: String,
    pub histograms: Vec<HistogramSpec>,
    /// Tasks running now, per executor.
    pub running_on: std::collections::BTreeMap<String, u32>,
    /// Users the owner shared the job with (they see it and its result).
    pub readers: Vec<String>,
}

/// A step in a job's life.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub at_unix_ms: i64,
    /// `None` for the submission.
    pub from: Option<JobState>,
    pub to: JobState,
    pub reason: String,
}

impl Analysis {
    /// A rough measure of the query's work per event (for run-time prediction): the number of
    /// expression nodes, joins and tables.
    pub fn complexity(&self) -> u32 {
        let mut n = 0;
        for s in self
            .query
            .body
            .iter()
            .chain(self.query.with.iter().flat_map(|c| c.query.body.iter()))
        {
            n += 1 + s.from.as_ref().map_or(0, |f| f.joins.len() as u32 * 4);
            for i in &s.items {
                n += match i {
                    Item::Expr { expr, .. } => nodes(expr),
                    Item::Wildcard { .. } => 1,
                };
            }
            n += s.filter.as_ref().map_or(0, nodes);
        }
        n + self.histograms.len() as u32
    }
}

fn nodes(e: &Expr) -> u32 {
    let mut n = 0;
    e.visit(&mut |_| n += 1);
    n
}

//! What the commands share: the async runtime for the ones that call alyxd, progress bars.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

// The closed choices of the command line, as types: clap lists their values in `--help`, shells
// complete them, and a command receives the choice, never a string to parse again.

/// `--format` of the listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

/// `--format` of rows and histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RowFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

impl From<RowFormat> for alyx_query::OutputFormat {
    fn from(f: RowFormat) -> Self {
        match f {
            RowFormat::Table => Self::Table,
            RowFormat::Csv => Self::Csv,
            RowFormat::Json => Self::Json,
            RowFormat::Parquet => Self::Parquet,
        }
    }
}

/// `--engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    /// polars over the local Parquet chunks.
    Local,
    /// The event catalogue in PostgreSQL.
    Postgres,
    /// Spark through Spark Connect.
    Spark,
}

impl From<EngineArg> for alyx_query::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Local => Self::Local,
            EngineArg::Postgres => Self::Postgres,
            EngineArg::Spark => Self::Spark,
        }
    }
}

/// `--target` of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    /// Where the data is, else any executor.
    Auto,
    Local,
    Spark,
    Slurm,
}

impl From<TargetArg> for alyx_core::jobs::Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Auto => Self::Auto,
            TargetArg::Local => Self::Local,
            TargetArg::Spark => Self::Spark,
            TargetArg::Slurm => Self::Slurm,
        }
    }
}

/// `--fit-method`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FitMethodArg {
    /// Binned Poisson likelihood, yields free.
    #[default]
    Extended,
    /// Binned multinomial likelihood: shapes and fractions.
    Likelihood,
    /// χ² with the data's errors.
    Neyman,
    /// χ² with the model's errors.
    Pearson,
}

impl From<FitMethodArg> for alyx_fit::Method {
    fn from(m: FitMethodArg) -> Self {
        match m {
            FitMethodArg::Extended => Self::ExtendedLikelihood,
            FitMethodArg::Likelihood => Self::Likelihood,
            FitMethodArg::Neyman => Self::Neyman,
            FitMethodArg::Pearson => Self::Pearson,
        }
    }
}

/// `--format` of a job's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultFormat {
    Table,
    Csv,
    Json,
}

impl From<ResultFormat> for alyx_query::OutputFormat {
    fn from(f: ResultFormat) -> Self {
        match f {
            ResultFormat::Table => Self::Table,
            ResultFormat::Csv => Self::Csv,
            ResultFormat::Json => Self::Json,
        }
    }
}

/// `--state` of `job list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum JobStateArg {
    Queued,
    Running,
    Preempted,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<JobStateArg> for alyx_core::jobs::JobState {
    fn from(s: JobStateArg) -> Self {
        match s {
            JobStateArg::Queued => Self::Queued,
            JobStateArg::Running => Self::Running,
            JobStateArg::Preempted => Self::Preempted,
            JobStateArg::Succeeded => Self::Succeeded,
            JobStateArg::Failed => Self::Failed,
            JobStateArg::Cancelled => Self::Cancelled,
        }
    }
}

/// `--system` of `generate`: pp or pbpb (the ALICE-like barrel), or nano (NanoAOD-like
/// analysis objects: jets, leptons, MET).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateSystem {
    Pp,
    Pbpb,
    Nano,
}

/// `--system` of `produce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProduceSystem {
    Pp,
    /// Central Pb–Pb.
    Pbpb,
}

/// `--centrality` of generated Pb–Pb events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CentralityArg {
    /// 0–5 %.
    Central,
    /// 70–80 %.
    Peripheral,
    /// 0–90 %.
    Minbias,
}

/// `--access` of `notebook share`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessArg {
    Read,
    Write,
    /// Take access away.
    None,
}

/// A notebook export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Markdown.
    #[value(alias = "markdown")]
    Md,
    /// Jupyter, with outputs.
    Ipynb,
    /// The Automerge document with its history.
    #[value(alias = "am")]
    Automerge,
}

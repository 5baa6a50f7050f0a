//! `alyxctl job …`: analysis jobs in alyxd over JobService.

use alyx_query::HistogramFrame;
use std::io::Write;
use std::path::PathBuf;

use alyx_client::{Client, JobSubmission, QuerySource};
use alyx_core::histogram::Binning;
use alyx_core::jobs::{HistogramSpec, JobInfo, JobState, Target};
use alyx_query::{self as query, OutputFormat};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{JobStateArg, ListFormat, ResultFormat, TargetArg};

#[derive(Subcommand)]
pub enum JobCommand {
    /// Validate and queue a job; prints its id and estimated time to completion.
    Submit {
        /// The dataset in alyxd's data directory.
        #[arg(long)]
        dataset: String,
        /// Per-event rows in ALYX SQL (no LIMIT, no aggregates across events).
        #[arg(long, conflicts_with_all = ["query_file", "adl"])]
        sql: Option<String>,
        /// A builder selection or a query AST as JSON.
        #[arg(long, conflicts_with = "adl")]
        query_file: Option<PathBuf>,
        /// One of the ADL benchmark queries, 1–8, with its histograms.
        #[arg(long)]
        adl: Option<u8>,
        /// COL:BINS:LO:HI (or COL:E1,E2,…), repeatable; COL@W weights by column W.
        #[arg(long = "histogram")]
        histograms: Vec<String>,
        /// Where the tasks run (auto: where the data is, else any executor).
        #[arg(long, value_enum, default_value_t = TargetArg::Auto)]
        target: TargetArg,
        /// -100..100; higher runs first and may preempt lower.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        #[arg(long, default_value_t = 1)]
        cores: u32,
        #[arg(long, default_value_t = 1024)]
        memory_mb: u32,
        #[arg(long, default_value = "")]
        name: String,
        /// Follow the job until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// A job's state, progress, estimate and history.
    Status {
        id: u64,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Follow a job with a progress bar until it ends.
    Watch { id: u64 },
    /// Cancel a job (its owner or an operator).
    Cancel {
        id: u64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Change a job's priority (its owner or an operator).
    Priority { id: u64, priority: i32 },
    /// Let a user see a job and its result (its owner or an operator).
    Share {
        id: u64,
        user: String,
        /// Take it back instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Jobs, newest first.
    List {
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, value_enum)]
        state: Option<JobStateArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// The merged histograms (partial while the job runs).
    Result {
        id: u64,
        #[arg(long, value_enum, default_value_t = ResultFormat::Table)]
        format: ResultFormat,
        /// Write to a file (the histograms one after the other).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `COL[@W]:BINS:LO:HI` or `COL[@W]:E1,E2,…`.
fn histogram_spec(spec: &str) -> Result<HistogramSpec> {
    let (column, binning) = spec
        .split_once(':')
        .with_context(|| format!("--histogram `{spec}`: expected COL:BINS:LO:HI"))?;
    let (column, weight) = column.split_once('@').unwrap_or((column, ""));
    Ok(HistogramSpec {
        column: column.into(),
        weight: (!weight.is_empty()).then(|| weight.to_owned()),
        binning: Binning::parse(binning)?,
    })
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// `ms` as seconds after the submission at `submitted`.
fn after(ms: i64, submitted: i64) -> String {
    format!("+{:.1} s", (ms - submitted).max(0) as f64 / 1000.0)
}

fn print_job(j: &JobInfo) {
    println!(
        "job {} {:?} by {} on {} — {}{}",
        j.id,
        j.name,
        j.owner,
        j.dataset,
        j.state,
        if j.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", j.reason)
        }
    );
    println!(
        "  target {}, priority {}, {} cores, {} MiB per task",
        j.target, j.priority, j.cores, j.memory_mb
    );
    if !j.readers.is_empty() {
        println!("  shared with {}", j.readers.join(", "));
    }
    println!(
        "  tasks {}/{} done, {} running, {} failed; events {}/{}; about {} left",
        j.tasks_done,
        j.tasks_total,
        j.tasks_running,
        j.tasks_failed,
        j.events_done,
        j.events_total,
        duration(j.estimated_seconds_left)
    );
    println!("  query: {}", j.sql);
    for h in &j.histograms {
        let edges = h.binning.edges();
        println!(
            "  histogram {}{}: {} bins {}..{}",
            h.column,
            h.weight
                .as_ref()
                .map(|w| format!(" weighted by {w}"))
                .unwrap_or_default(),
            h.binning.bins(),
            edges.first().copied().unwrap_or_default(),
            edges.last().copied().unwrap_or_default()
        );
    }
    for t in &j.history {
        println!(
            "  {:>9}  {} → {}  {}",
            after(t.at_unix_ms, j.submitted_unix_ms),
            t.from.map_or("·", JobState::name),
            t.to,
            t.reason
        );
    }
}

async fn watch(client: &Client, id: u64) -> Result<()> {
    let mut updates = client.watch(id).await?;
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tasks  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last = None;
    while let Some(update) = updates.next().await? {
        let j = update.job;
        bar.set_length(j.tasks_total as u64);
        bar.set_position(j.tasks_done as u64);
        let entries: u64 = update
            .histograms
            .first()
            .map_or(0, |(_, h)| h.entries.iter().sum());
        bar.set_message(format!(
            "{} · {} events · {} entries so far · about {} left",
            j.state,
            j.events_done,
            entries,
            duration(j.estimated_seconds_left)
        ));
        if !bar.is_hidden() {
            bar.tick();
        } else {
            eprintln!(
                "{} {}/{} tasks, {} events, {} entries",
                j.state, j.tasks_done, j.tasks_total, j.events_done, entries
            );
        }
        last = Some(j);
    }
    bar.finish_and_clear();
    match last {
        Some(j) => {
            eprintln!(
                "job {} {}{}",
                j.id,
                j.state,
                if j.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", j.reason)
                }
            );
            if matches!(j.state, JobState::Failed | JobState::Cancelled) {
                bail!("job {} {}", j.id, j.state);
            }
            Ok(())
        }
        None => bail!("the watch ended before any update"),
    }
}

pub async fn run(command: JobCommand, backend: &str, token: &str) -> Result<()> {
    let client = Client::connect(backend, token).await?;
    match command {
        JobCommand::Submit {
            dataset,
            sql,
            query_file,
            adl,
            histograms,
            target,
            priority,
            cores,
            memory_mb,
            name,
            watch: follow,
        } => {
            let mut specs = histograms
                .iter()
                .map(|h| histogram_spec(h))
                .collect::<Result<Vec<_>>>()?;
            if let Some(n) = adl {
                if specs.is_empty() {
                    let (_, _, plots) = query::adl::query(n)
                        .with_context(|| format!("--adl {n}: the ADL queries are 1–8"))?;
                    specs = plots
                        .iter()
                        .map(|p| HistogramSpec {
                            column: p.column.into(),
                            weight: None,
                            binning: p.binning.clone(),
                        })
                        .collect();
                }
            }
            let (text, ast) = crate::query::query_source(sql, query_file, adl)?;
            let query = match (text, ast) {
                (Some(t), _) => QuerySource::Sql(t),
                (None, Some(q)) => QuerySource::Ast(q),
                (None, None) => bail!("give --sql, --query-file or --adl"),
            };
            let target = Target::from(target);
            let (id, estimate) = client
                .submit(&JobSubmission {
                    name,
                    dataset,
                    query,
                    histograms: specs,
                    target,
                    priority,
                    cores,
                    memory_mb,
                })
                .await?;
            println!("{id}");
            eprintln!(
                "job {id} queued; estimated to finish in about {}",
                duration(estimate)
            );
            if follow {
                watch(&client, id).await?;
            }
        }
        JobCommand::Status { id, format } => {
            let job = client.job(id).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&job)?),
                ListFormat::Text => print_job(&job),
            }
        }
        JobCommand::Watch { id } => watch(&client, id).await?,
        JobCommand::Cancel { id, reason } => {
            let j = client.cancel(id, &reason).await?;
            println!("job {} {}: {}", j.id, j.state, j.reason);
        }
        JobCommand::Priority { id, priority } => {
            let j = client.set_priority(id, priority).await?;
            println!("job {} priority {}", j.id, j.priority);
        }
        JobCommand::Share { id, user, revoke } => {
            let j = client.share_job(id, &user, revoke).await?;
            match j.readers.as_slice() {
                [] => println!(
                    "job {} is visible to {} (and operators) only",
                    j.id, j.owner
                ),
                r => println!("job {} is shared with {}", j.id, r.join(", ")),
            }
        }
        JobCommand::List {
            owner,
            state,
            limit,
            format,
        } => {
            let jobs = client
                .jobs(
                    &owner.unwrap_or_default(),
                    state.map_or("", |s| JobState::from(s).name()),
                    limit,
                )
                .await?;
            if format == ListFormat::Json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
                return Ok(());
            }
            println!(
                "{:>6}  {:<12} {:<10} {:<10} {:>4} {:>11} {:>12}  {}",
                "id", "owner", "state", "target", "prio", "tasks", "left", "name"
            );
            for j in jobs {
                println!(
                    "{:>6}  {:<12} {:<10} {:<10} {:>4} {:>11} {:>12}  {}",
                    j.id,
                    j.owner,
                    j.state,
                    j.target,
                    j.priority,
                    format!("{}/{}", j.tasks_done, j.tasks_total),
                    duration(j.estimated_seconds_left),
                    j.name
                );
            }
        }
        JobCommand::Result { id, format, out } => {
            let format = OutputFormat::from(format);
            let r = client.job_result(id).await?;
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(
                    std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            eprintln!(
                "job {} {}: {} of {} tasks merged{}, {} events, {} rows",
                id,
                r.job.state,
                r.tasks_merged,
                r.job.tasks_total,
                if r.complete {
                    " (complete)"
                } else {
                    " (partial)"
                },
                r.events,
                r.rows
            );
            for (column, hist) in &r.histograms {
                crate::query::report_histogram(column, hist);
                let mut df = hist.to_frame()?;
                query::write(&mut df, format, usize::MAX, &mut sink)?;
            }
            sink.flush()?;
        }
    }
    Ok(())
}

//! Job orchestration benchmarks through alyxd's JobService, in a database of its own:
//!
//! - submissions/s: `--submissions` jobs submitted by 16 concurrent clients (to a target no
//!   executor serves, so they only queue);
//! - tasks dispatched/s: one job of `--tiny-chunks` tiny chunks on the local pool;
//! - time from submission to the first task running, per executor (local; Spark with
//!   `ALYX_SPARK_URL`; Slurm with `--slurm`);
//! - run-time prediction: varied jobs (chunk sizes, queries) on the local pool, then the
//!   model's MAPE on the newest 20 % of the recorded tasks against the per-event baseline.
//!
//!   cargo run --bin job-bench -- [--submissions 2000] [--slurm]

use std::time::{Duration, Instant};

use alyx_backend::Config;
use alyx_backend::auth::{Role, create_user};
use alyx_backend::jobs::predict;
use alyx_client::{Client, JobSubmission, QuerySource};
use alyx_core::histogram::Binning;
use alyx_core::jobs::{HistogramSpec, JobInfo, JobState, Target};
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::DataStore;
use anyhow::Result;
use clap::Parser;

mod support;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    submissions: usize,
    #[arg(long, default_value_t = 400)]
    tiny_chunks: usize,
    /// Also measure the Slurm executor (sbatch on this host).
    #[arg(long)]
    slurm: bool,
    #[arg(long, env = "ALYX_SPARK_URL")]
    spark_url: Option<String>,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://alyx@127.0.0.1:5432/alyx"
    )]
    database_url: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    support::with_scratch_database(&args.database_url, "alyx_jbench", async |db| {
        run(&args, db).await
    })
    .await
}

fn request(dataset: &str, query: &str, column: &str, target: Target) -> JobSubmission {
    JobSubmission {
        name: "bench".into(),
        dataset: dataset.into(),
        query: QuerySource::Sql(query.into()),
        histograms: vec![HistogramSpec {
            column: column.into(),
            weight: None,
            binning: Binning::Fixed {
                bins: 100,
                lo: 0.0,
                hi: 500.0,
            },
        }],
        target,
        priority: 0,
        cores: 1,
        memory_mb: 512,
    }
}

async fn wait_done(c: &Client, id: u64) -> Result<JobInfo> {
    loop {
        let j = c.job(id).await?;
        if j.state.is_final() {
            anyhow::ensure!(
                j.state == JobState::Succeeded,
                "job {id} {}: {}",
                j.state,
                j.reason
            );
            return Ok(j);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn store_nano(
    store: &DataStore,
    name: &str,
    events: u64,
    per_chunk: usize,
    seed: u64,
) -> Result<()> {
    let mut ds = store.create_dataset(name, "job-bench")?;
    let all = nano::events(&NanoConfig::new(seed), 0..events);
    for part in all.chunks(per_chunk) {
        ds.append(part)?;
    }
    Ok(())
}

const QUERIES: [(&str, &str); 4] = [
    ("SELECT pt FROM jets WHERE ABS(eta) < 2.4", "pt"),
    ("SELECT m.pt AS pt FROM muons m WHERE m.pt > 5", "pt"),
    (
        "SELECT INV_MASS(a.pt, a.eta, a.phi, a.mass, b.pt, b.eta, b.phi, b.mass) AS m \
         FROM jets a JOIN jets b ON a.event_id = b.event_id AND a.idx < b.idx",
        "m",
    ),
    (
        "SELECT event_id, SUM(pt) AS ht FROM jets WHERE pt > 30 GROUP BY event_id",
        "ht",
    ),
];

async fn run(args: &Args, db: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = DataStore::open(dir.path())?;
    store_nano(&store, "tiny", args.tiny_chunks as u64 * 5, 5, 1)?;
    for (name, events, per_chunk) in [
        ("small", 4_000, 200),
        ("mid", 20_000, 1_000),
        ("large", 40_000, 4_000),
    ] {
        store_nano(&store, name, events, per_chunk, 2)?;
    }
    let mut config = Config::default();
    config.database_url = support::database_url(&args.database_url, db);
    config.database_pool = 32;
    config.listen = "127.0.0.1:0".parse()?;
    config.metrics_listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.ingest.enabled = false;
    config.job_queue_limit = 10_000_000;
    config.spark_url = args.spark_url.clone().unwrap_or_default();
    config.slurm = args.slurm;
    if args.slurm {
        config.slurm_worker = std::env::current_exe()?
            .with_file_name("alyxd")
            .display()
            .to_string();
    }
    let alyxd = support::Alyxd::spawn(&config).await?;
    let url = alyxd.url.clone();
    let pool = alyxd.ready(&config).await?;
    let token = create_user(&pool, "bench", Role::Operator).await?;
    let client = Client::connect(&url, &token).await?;

    // Submissions/s: jobs for a target no executor serves here, so they only queue.
    let idle = if args.spark_url.is_none() {
        (Target::Spark, "spark")
    } else if !args.slurm {
        (Target::Slurm, "slurm")
    } else {
        anyhow::bail!("leave out Spark or Slurm: submissions are measured on an idle target");
    };
    let t = Instant::now();
    let mut tasks = Vec::new();
    let per_client = args.submissions / 16;
    for _ in 0..16 {
        let (url, token) = (url.clone(), token.clone());
        let idle = idle;
        tasks.push(tokio::spawn(async move {
            let c = Client::connect(&url, &token).await?;
            let mut ids = Vec::new();
            for _ in 0..per_client {
                let mut r = request("small", QUERIES[0].0, "pt", idle.0);
                r.priority = -100;
                ids.push(c.submit(&r).await?.0);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut queued = Vec::new();
    for t in tasks {
        queued.extend(t.await??);
    }
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "submissions: {} jobs ({} tasks each) by 16 clients in {seconds:.2} s: {:.0} submissions/s",
        queued.len(),
        20,
        queued.len() as f64 / seconds
    );
    sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = now() WHERE target = $1")
        .bind(idle.1)
        .execute(&pool)
        .await?;

    // Tasks dispatched/s on the local pool: tiny chunks, so the scheduler is the bottleneck.
    let t = Instant::now();
    let (id, _) = client
        .submit(&request("tiny", QUERIES[0].0, "pt", Target::Local))
        .await?;
    let job = wait_done(&client, id).await?;
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "dispatch: {} tasks of 5 events on the local pool in {seconds:.2} s: {:.0} tasks/s",
        job.tasks_total,
        job.tasks_total as f64 / seconds
    );

    // Submission → first task running, per executor.
    let mut targets = vec![(Target::Local, "local")];
    if args.spark_url.is_some() {
        targets.push((Target::Spark, "spark"));
    }
    if args.slurm {
        targets.push((Target::Slurm, "slurm"));
    }
    for (target, name) in targets {
        let t = Instant::now();
        let (id, _) = client
            .submit(&request("mid", QUERIES[0].0, "pt", target))
            .await?;
        let first = loop {
            let j = client.job(id).await?;
            if j.tasks_running > 0 || j.tasks_done > 0 {
                break t.elapsed().as_secs_f64();
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(300),
                "{name}: nothing ran"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let job = wait_done(&client, id).await?;
        println!(
            "{name}: first task running {:.0} ms after submission; {} tasks, {} events done in {:.2} s",
            first * 1e3,
            job.tasks_total,
            job.events_done,
            t.elapsed().as_secs_f64()
        );
    }

    // Run-time prediction: varied tasks recorded, then held-out error.
    for round in 0..3 {
        for dataset in ["small", "mid", "large"] {
            for (q, column) in QUERIES {
                let (id, _) = client
                    .submit(&request(dataset, q, column, Target::Local))
                    .await?;
                wait_done(&client, id).await?;
            }
        }
        eprintln!("prediction history: round {} of 3", round + 1);
    }
    let mut history = predict::history(&pool, "local", 100_000).await?;
    // The tiny dispatch tasks are scheduler overhead, not analysis: leave them out.
    history.retain(|s| s.events > 5.0);
    let (model, baseline) = predict::evaluate(&history);
    println!(
        "prediction: {} recorded tasks, trained on the oldest 80 %, MAPE on the newest 20 %: model {model:.1} %, per-event baseline {baseline:.1} %",
        history.len()
    );
    alyxd.stop().await?;
    Ok(())
}

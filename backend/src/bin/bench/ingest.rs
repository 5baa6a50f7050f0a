//! End-to-end ingest benchmark: produce → Kafka → alyxd → Parquet + PostgreSQL, queryable.
//!
//! Needs the broker and PostgreSQL that the test command starts (`ALYX_KAFKA_BROKERS`,
//! `DATABASE_URL`; the benchmark makes and drops a database of its own). Two phases:
//! throughput (a backlog of `--events` pp events, produced before alyxd starts, drained) and
//! latency (`--latency-events` produced at `--rate` while alyxd runs; produce → queryable
//! percentiles from the catalogue's produced_at/stored_at). Prints where the time went.
//!
//!   cargo run --bin ingest-bench -- [--events 20000] [--latency-events 2000] [--rate 500]

use std::time::{Duration, Instant};

use alyx_backend::Config;
use alyx_backend::produce::{ProduceOptions, create_topic, produce};
use alyx_core::CollisionSystem;
use anyhow::Result;
use clap::Parser;

mod support;
use sqlx::PgPool;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    #[arg(long, default_value_t = 2_000)]
    latency_events: u64,
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value_t = 2000)]
    batch_events: usize,
    #[arg(long, env = "ALYX_KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
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
    support::with_scratch_database(&args.database_url, "alyx_bench", async |db| {
        run(&args, db).await
    })
    .await
}

async fn run(args: &Args, db: &str) -> Result<()> {
    let topic = format!("bench-{}", std::process::id());
    create_topic(&args.brokers, &topic, args.partitions).await?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database_url = support::database_url(&args.database_url, db);
    config.listen = "127.0.0.1:0".parse()?;
    config.metrics_listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.ingest.brokers = args.brokers.clone();
    config.ingest.topic = topic.clone();
    config.ingest.batch_events = args.batch_events;
    let options = |first, events, rate| ProduceOptions {
        brokers: args.brokers.clone(),
        topic: topic.clone(),
        system: CollisionSystem::Pp,
        events,
        first,
        seed: 1,
        rate,
    };

    println!(
        "ingest-bench: {} pp events, {} partitions, batches of {}",
        args.events, args.partitions, args.batch_events
    );
    let produced = produce(&options(0, args.events, None)).await?;
    println!(
        "  produce (backlog)   {:>9.0} events/s {:>7.1} MB/s  ({:.1} MB, {:.0} B/event)",
        produced.events as f64 / produced.seconds,
        produced.bytes as f64 / 1e6 / produced.seconds,
        produced.bytes as f64 / 1e6,
        produced.bytes as f64 / produced.events as f64
    );

    let started = Instant::now();
    let alyxd = support::Alyxd::spawn(&config).await?;
    let metrics_addr = alyxd.metrics;
    let pool = loop {
        if let Ok(p) = PgPool::connect(&config.database_url).await {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    wait_for(&pool, args.events as i64).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  ingest (backlog)    {:>9.0} events/s {:>7.1} MB/s  ({} events queryable after {:.1} s, start-up included)",
        args.events as f64 / seconds,
        produced.bytes as f64 / 1e6 / seconds,
        args.events,
        seconds
    );
    let stages = scrape(metrics_addr).await?;

    // Latency at a steady rate.
    let latency_started = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    produce(&options(args.events, args.latency_events, Some(args.rate))).await?;
    wait_for(&pool, latency_started + args.latency_events as i64).await?;
    let (p50, p99, max): (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.99) WITHIN GROUP (ORDER BY l), max(l)
         FROM (SELECT extract(epoch FROM stored_at - produced_at)::float8 * 1000 AS l FROM events
               WHERE event_id >= $1) s",
    )
    .bind(args.events as i64)
    .fetch_one(&pool)
    .await?;
    println!(
        "  latency at {:.0} events/s: produce → queryable p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        args.rate
    );
    println!("  where the backlog's time went (sum over batches, all partitions in parallel):");
    let total: f64 = stages.iter().map(|s| s.1).sum();
    for (stage, secs, count) in &stages {
        println!(
            "    {stage:<8} {secs:>7.2} s  {:>5.1} %  {:>6.1} ms/batch over {count} batches",
            100.0 * secs / total.max(1e-9),
            1000.0 * secs / (*count).max(1.0)
        );
    }
    alyxd.stop().await?;
    pool.close().await;
    Ok(())
}

async fn wait_for(pool: &PgPool, n: i64) -> Result<()> {
    let started = Instant::now();
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .unwrap_or(0);
        if rows >= n {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "ingest stalled at {rows} of {n} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Per-stage (seconds, batches) from alyxd's metrics endpoint.
async fn scrape(addr: std::net::SocketAddr) -> Result<Vec<(String, f64, f64)>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: alyxd\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let value = |name: &str, stage: &str| -> f64 {
        let prefix = format!("alyxd_ingest_stage_seconds_{name}{{stage=\"{stage}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    Ok(["decode", "dedup", "write", "copy", "commit"]
        .iter()
        .map(|s| (s.to_string(), value("sum", s), value("count", s)))
        .collect())
}

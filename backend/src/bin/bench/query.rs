//! Query benchmarks through alyxd's QueryService:
//!
//! - catalogue queries (PostgreSQL engine) from `--clients` concurrent gRPC clients over a
//!   catalogue of `--rows` events (generated with SQL in a database of the benchmark's own, in
//!   daily partitions as ingest makes them): p50/p99 latency and queries/s;
//! - GetEvent of `--hot-events` recent events (whole pp events from the Parquet store), the
//!   same clients asking for them at random: p50/p99;
//! - both against `--instances` alyxd instances (clients spread over them), sharing the Redis
//!   at `--redis` when given;
//! - with `ALYX_SPARK_URL` (the test command's Spark Connect server): time to the first page and
//!   to a histogram on the Spark engine, next to the local engine, over a NanoAOD-like dataset.
//!
//!   cargo run --bin query-bench -- [--clients 400] [--rows 1000000] [--queries 10] [--cache-ttl-ms 0]
//!       [--instances 2] [--redis redis://127.0.0.1:6379] [--hot-events 200]

use std::time::{Duration, Instant};

use alyx_backend::Config;
use alyx_backend::auth::{Role, create_user};
use alyx_client::{Client, QuerySource, QuerySpec};
use alyx_core::ast::Engine;
use alyx_core::histogram::Binning;
use alyx_datasets as datasets;
use alyx_sim::generator::GeneratorConfig;
use alyx_sim::nano::NanoConfig;
use alyx_store::DataStore;
use anyhow::{Context, Result};
use clap::Parser;

mod support;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 400)]
    clients: usize,
    /// Queries each client sends, one after the other.
    #[arg(long, default_value_t = 10)]
    queries: usize,
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// alyxd's catalogue result cache (ALYXD_QUERY_CACHE_TTL_MS); 0: every query runs.
    #[arg(long, default_value_t = 10_000)]
    cache_ttl_ms: u64,
    /// alyxd instances serving the clients (in this process, one database).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    instances: u8,
    /// The Redis the instances share as their cache (ALYXD_REDIS_URL); none: each caches in
    /// its own memory.
    #[arg(long)]
    redis: Option<String>,
    /// Recent events the clients fetch with GetEvent.
    #[arg(long, default_value_t = 200)]
    hot_events: u64,
    /// Events of the NanoAOD-like dataset for the Spark figures.
    #[arg(long, default_value_t = 100_000)]
    spark_events: u64,
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
    support::with_scratch_database(&args.database_url, "alyx_qbench", async |db| {
        run(&args, db).await
    })
    .await
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn request(dataset: &str, engine: Engine, sql: &str) -> QuerySpec {
    QuerySpec {
        dataset: dataset.into(),
        engine,
        query: QuerySource::Sql(sql.into()),
        catalogue_filter: None,
    }
}

async fn run(args: &Args, db: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database_url = support::database_url(&args.database_url, db);
    config.database_pool = 32;
    config.listen = "127.0.0.1:0".parse()?;
    config.metrics_listen = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.ingest.enabled = false;
    config.query_cache_ttl_ms = args.cache_ttl_ms;
    // Every client is the one bench user: its limit of open calls must not be what is measured.
    config.user_calls = args.clients + 8;
    config.spark_url = args.spark_url.clone().unwrap_or_default();
    if let Some(redis) = &args.redis {
        config.redis_url = redis.clone();
        config.redis_prefix = format!("qbench:{}:", std::process::id());
    }

    let alyxd = support::Alyxd::spawn(&config).await?;
    let pool = alyxd.ready(&config).await?;
    let mut others = Vec::new();
    for _ in 1..args.instances {
        let other = support::Alyxd::spawn(&config).await?;
        other.ready(&config).await?;
        others.push(other);
    }
    let urls: Vec<String> = std::iter::once(&alyxd)
        .chain(&others)
        .map(|a| a.url.clone())
        .collect();
    let url = urls[0].clone();
    let setup = match &args.redis {
        Some(r) => format!("{} instance(s), shared cache in Redis {r}", args.instances),
        None => format!("{} instance(s), no Redis", args.instances),
    };
    let token = create_user(&pool, "bench", Role::Physicist).await?;
    let client = Client::connect(&url, &token).await?;

    // The catalogue: `rows` events over 30 days and 300 runs, in daily partitions.
    let t = Instant::now();
    sqlx::query("INSERT INTO datasets (name, source) VALUES ('catalogue', 'query-bench')")
        .execute(&pool)
        .await?;
    sqlx::query("SELECT alyx_ensure_event_partitions(DATE '2026-07-01', DATE '2026-07-31')")
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO events (event_time, run, event_number, time_ns, dataset_id, event_id, chunk_id, system, sqrt_s_gev,
                             vertex_x_cm, vertex_y_cm, vertex_z_cm, n_tracks, n_hits, n_muons, n_electrons, n_jets, trigger_bits, flags)
         SELECT to_timestamp(t / 1e9::float8), 545000 + (i % 300)::int, i, t, 1, i, (i / 10000)::int, 'pp', 13600,
                0, 0, (random() - 0.5) * 10, (random() * 100)::int, (random() * 5000)::int, (random() * 3)::int,
                (random() * 2)::int, (random() * 8)::int, 1, ''
         FROM (SELECT i, 1782864000000000000 + i * (2592000000000000 / $1) AS t FROM generate_series(0, $1 - 1) AS i) s",
    )
    .bind(args.rows as i64)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE events").execute(&pool).await?;
    println!(
        "catalogue: {} events in {:.1} s",
        args.rows,
        t.elapsed().as_secs_f64()
    );

    let queries = [
        "SELECT run, COUNT(*) AS n FROM events WHERE n_muons >= 2 GROUP BY run ORDER BY run",
        "SELECT event_id, run, event_number, n_tracks FROM events WHERE run = 545123 AND n_tracks > 90 ORDER BY event_id LIMIT 100",
        "SELECT COUNT(*) AS n, AVG(n_tracks) AS mean FROM events WHERE timestamp_ns BETWEEN 1782950400000000000 AND 1782954000000000000",
    ];
    // Warm up (plans, connections).
    for q in queries {
        let mut pages = client
            .execute(&request("catalogue", Engine::Postgres, q), 0, 1, None)
            .await?;
        while pages.next().await?.is_some() {}
    }
    let report = |what: &str, (mut all, failures, wall): Outcome| {
        all.sort();
        println!(
            "{what} ({setup}, result cache {} ms), {} concurrent clients × {}: p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms, {:.0} calls/s answered, {} failed",
            args.cache_ttl_ms,
            args.clients,
            args.queries,
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            percentile(&all, 1.0),
            all.len() as f64 / wall,
            failures.values().sum::<u64>()
        );
        for (e, n) in &failures {
            println!("  {n} failed: {e}");
        }
    };
    let outcome = clients(
        &urls,
        &token,
        args.clients,
        args.queries,
        move |client, c, k| {
            let q = queries[(c + k) % queries.len()];
            async move {
                let mut pages = client
                    .execute(&request("catalogue", Engine::Postgres, q), 0, 1, None)
                    .await?;
                while pages.next().await?.is_some() {}
                anyhow::Ok(())
            }
        },
    )
    .await?;
    report("catalogue queries", outcome);

    // Hot events: the last `hot_events` of a dataset of whole pp events, with their catalogue
    // rows, fetched at random by every client.
    let store = DataStore::open(dir.path())?;
    let hot = args.hot_events.max(1);
    datasets::generate(&store, "hot", GeneratorConfig::pp(4), hot, &mut |_| {})?;
    sqlx::query("INSERT INTO datasets (name, source) VALUES ('hot', 'query-bench')")
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO events (event_time, run, event_number, time_ns, dataset_id, event_id, chunk_id, system, sqrt_s_gev,
                             vertex_x_cm, vertex_y_cm, vertex_z_cm, n_tracks, n_hits, n_muons, n_electrons, n_jets, trigger_bits, flags)
         SELECT to_timestamp(1782864000 + i), 999999, i, (1782864000 + i) * 1000000000, d.id, i, 0, 'pp', 13600,
                0, 0, 0, 50, 2000, 0, 0, 0, 1, ''
         FROM generate_series(0, $1 - 1) AS i, datasets d WHERE d.name = 'hot'",
    )
    .bind(hot as i64)
    .execute(&pool)
    .await?;
    let outcome = clients(
        &urls,
        &token,
        args.clients,
        args.queries,
        move |client, c, k| {
            let id = ((c * 7919 + k * 104_729) as u64) % hot;
            async move {
                client.event("hot", id).await?;
                anyhow::Ok(())
            }
        },
    )
    .await?;
    report(&format!("GetEvent of {hot} hot events"), outcome);

    // Spark next to the local engine: first page and a histogram.
    datasets::generate_nano(
        &store,
        "nano",
        NanoConfig::new(2),
        args.spark_events,
        &mut |_| {},
    )?;
    let sql = "SELECT event_id, idx, pt, eta FROM jets WHERE pt > 30 ORDER BY pt DESC";
    let mut engines = vec![Engine::Local];
    if args.spark_url.is_some() {
        engines.push(Engine::Spark);
    } else {
        println!("no ALYX_SPARK_URL: Spark figures skipped");
    }
    for engine in engines {
        let name = engine.name();
        let t = Instant::now();
        let mut pages = client
            .execute(&request("nano", engine, sql), 10_000, 1, None)
            .await?;
        let first = pages.next().await?.context("a page")?;
        let first_page = t.elapsed().as_secs_f64();
        while pages.next().await?.is_some() {}
        let t = Instant::now();
        let h = client
            .histogram(
                &request("nano", engine, "SELECT pt FROM jets WHERE ABS(eta) < 2.4"),
                "pt",
                None,
                Binning::fixed(100, 0.0, 500.0)?,
            )
            .await?;
        println!(
            "{name}: first page ({} rows of ≈ {}) in {first_page:.2} s; jet pT histogram ({} entries, {} events) in {:.2} s",
            first.rows.height(),
            first.estimated_total.unwrap_or(0),
            h.entries.iter().sum::<u64>(),
            args.spark_events,
            t.elapsed().as_secs_f64()
        );
    }
    for other in others {
        other.stop().await?;
    }
    alyxd.stop().await?;
    Ok(())
}

/// Latencies of the answered calls, failures by kind, and the wall time.
type Outcome = (Vec<Duration>, std::collections::BTreeMap<String, u64>, f64);

/// `n` clients, each on its own connection to one of `urls` in turn, each making `calls`
/// calls one after the other (`call(client, c, k)`).
async fn clients<F, Fut>(
    urls: &[String],
    token: &str,
    n: usize,
    calls: usize,
    call: F,
) -> Result<Outcome>
where
    F: Fn(Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..n {
        let (url, token, call) = (urls[c % urls.len()].clone(), token.to_owned(), call.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&url, &token).await?;
            // Answered calls' latencies; failed calls by their error, counted, not fatal.
            let mut latencies = Vec::new();
            let mut failures = std::collections::BTreeMap::<String, u64>::new();
            for k in 0..calls {
                let started = Instant::now();
                match call(client.clone(), c, k).await {
                    Ok(()) => latencies.push(started.elapsed()),
                    Err(e) => {
                        // The kind of failure, without the per-call request id.
                        let text = e.to_string();
                        let kind = text.split(" (request").next().unwrap_or(&text).to_owned();
                        *failures.entry(kind).or_default() += 1;
                    }
                }
            }
            anyhow::Ok((latencies, failures))
        }));
    }
    let mut all = Vec::new();
    let mut failures = std::collections::BTreeMap::<String, u64>::new();
    for t in tasks {
        let (latencies, failed) = t.await??;
        all.extend(latencies);
        for (e, n) in failed {
            *failures.entry(e).or_default() += n;
        }
    }
    Ok((all, failures, t.elapsed().as_secs_f64()))
}

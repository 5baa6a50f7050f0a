//! alyxd as a process, killed and restarted: `kill -9` mid-ingest loses nothing and stores
//! nothing twice; a second instance takes a dead one's partitions over; a backlog larger than
//! memory passes through with resident memory bounded; a scan its client abandons stops using
//! the CPU; a query and a job are traced end to end over OTLP.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alyx_backend::produce::{ProduceOptions, produce};
use alyx_core::CollisionSystem;
use alyx_store::DataStore;
use alyx_store::Table;
use polars::prelude::*;
use sqlx::PgPool;
use support::*;

struct Alyxd {
    child: Child,
}

impl Alyxd {
    fn spawn(
        pool: &PgPool,
        dir: &std::path::Path,
        brokers: &str,
        topic: &str,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_alyxd"));
        command
            .arg("serve")
            .env("ALYXD_DATABASE_URL", database_url(pool))
            .env("ALYXD_DATABASE_POOL", "4")
            .env("ALYXD_LISTEN", "127.0.0.1:0")
            .env("ALYXD_METRICS_LISTEN", "127.0.0.1:0")
            .env("ALYXD_DATA_DIR", dir)
            .env("ALYXD_KAFKA_BROKERS", brokers)
            .env("ALYXD_KAFKA_TOPIC", topic)
            .env("ALYXD_INSTANCE", name)
            .env("ALYXD_BATCH_EVENTS", "100")
            .env("ALYXD_BATCH_LINGER_MS", "50")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            command.env(k, v);
        }
        Self {
            child: command.spawn().expect("alyxd starts"),
        }
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, and a clean exit within 30 s.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "alyxd exited with {status} after SIGTERM");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "alyxd did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CPU time used so far (user and system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // After the command name in parentheses: state is field 3, utime and stime 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        ticks / 100.0 // USER_HZ
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Alyxd {
    /// A failing test leaves no alyxd behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pp(brokers: &str, topic: &str, events: u64) -> ProduceOptions {
    ProduceOptions {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        system: CollisionSystem::Pp,
        events,
        first: 0,
        seed: 11,
        rate: None,
    }
}

/// Produces `events` at `rate` per second in the background, as a detector would.
fn produce_in_background(
    brokers: &str,
    topic: &str,
    events: u64,
    rate: f64,
) -> tokio::task::JoinHandle<()> {
    let options = ProduceOptions {
        rate: Some(rate),
        ..pp(brokers, topic, events)
    };
    tokio::spawn(async move {
        produce(&options).await.expect("produce");
    })
}

/// Exactly `n` events in the catalogue and in the Parquet chunks, each once, every checksum valid.
async fn assert_stored_exactly_once(pool: &PgPool, dir: &std::path::Path, n: i64) {
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (run, event_number)) FROM events")
            .fetch_one(pool)
            .await
            .expect("count");
    assert_eq!(catalogue_rows(pool).await, n, "catalogue rows");
    assert_eq!(distinct, n, "distinct events in the catalogue");
    let chunk_events: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(event_count), 0)::bigint FROM chunks")
            .fetch_one(pool)
            .await
            .expect("chunks");
    assert_eq!(chunk_events, n, "events in catalogued chunks");
    // polars blocks on its own runtime: not on this test's async thread.
    let dir = dir.to_path_buf();
    let (rows, unique) = tokio::task::spawn_blocking(move || {
        let dataset = DataStore::open(&dir)
            .expect("store")
            .dataset("live")
            .expect("dataset");
        let report = dataset.verify();
        assert!(report.is_ok(), "{:?}", report.problems);
        let events = dataset
            .scan(Table::Events)
            .expect("scan")
            .select([col("run"), col("event_number")])
            .collect()
            .expect("events table");
        let unique = events
            .unique::<String, String>(None, UniqueKeepStrategy::First, None)
            .expect("unique");
        (events.height() as i64, unique.height() as i64)
    })
    .await
    .expect("parquet check");
    assert_eq!(rows, n, "rows in the Parquet events table");
    assert_eq!(unique, n, "distinct events in Parquet");
}

#[sqlx::test(migrations = false)]
async fn kill_9_mid_ingest_then_restart_stores_every_event_exactly_once(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("crash");
    create_topic(&brokers, &topic, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 2000;
    let producer = produce_in_background(&brokers, &topic, n, 400.0);

    let mut first = Alyxd::spawn(&pool, dir.path(), &brokers, &topic, "a", &[]);
    eventually(Duration::from_secs(120), "ingest under way", || async {
        (catalogue_rows(&pool).await >= 300).then_some(())
    })
    .await;
    first.kill_9();
    let at_kill = catalogue_rows(&pool).await;
    assert!(
        at_kill < n as i64,
        "the kill came mid-ingest ({at_kill} of {n} stored)"
    );

    let mut second = Alyxd::spawn(&pool, dir.path(), &brokers, &topic, "a-restarted", &[]);
    eventually(
        Duration::from_secs(180),
        "every event after the restart",
        || async { (catalogue_rows(&pool).await >= n as i64).then_some(()) },
    )
    .await;
    producer.await.expect("producer");
    second.terminate();
    assert_stored_exactly_once(&pool, dir.path(), n as i64).await;
}

#[sqlx::test(migrations = false)]
async fn a_second_instance_takes_over_when_the_first_dies(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("failover");
    create_topic(&brokers, &topic, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 3000;
    let producer = produce_in_background(&brokers, &topic, n, 300.0);

    let mut a = Alyxd::spawn(&pool, dir.path(), &brokers, &topic, "a", &[]);
    let mut b = Alyxd::spawn(&pool, dir.path(), &brokers, &topic, "b", &[]);
    // Both instances own partitions (they share the four) and are storing.
    eventually(
        Duration::from_secs(120),
        "both instances ingesting",
        || async {
            let owners: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT owner FROM ingest_offsets WHERE next_offset > 0",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            (owners.len() == 2).then_some(())
        },
    )
    .await;
    a.kill_9();
    assert!(catalogue_rows(&pool).await < n as i64, "a died mid-ingest");
    eventually(
        Duration::from_secs(180),
        "b storing every event",
        || async { (catalogue_rows(&pool).await >= n as i64).then_some(()) },
    )
    .await;
    let owners: Vec<String> = sqlx::query_scalar("SELECT DISTINCT owner FROM ingest_offsets")
        .fetch_all(&pool)
        .await
        .expect("owners");
    assert_eq!(owners, ["b"], "b took every partition over");
    producer.await.expect("producer");
    b.terminate();
    assert_stored_exactly_once(&pool, dir.path(), n as i64).await;
}

#[sqlx::test(migrations = false)]
async fn a_backlog_passes_with_bounded_memory_and_nothing_lost(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("overload");
    create_topic(&brokers, &topic, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A backlog produced faster than storage writes: ingest has to pause consumption.
    let n = 6000;
    let produced = produce(&pp(&brokers, &topic, n)).await.expect("produce");
    let backlog_mib = produced.bytes as f64 / (1024.0 * 1024.0);
    let mut alyxd = Alyxd::spawn(
        &pool,
        dir.path(),
        &brokers,
        &topic,
        "small",
        &[
            ("ALYXD_QUEUE_BATCHES", "1"),
            ("ALYXD_FETCH_BUFFER_KB", "4096"),
            ("ALYXD_BATCH_EVENTS", "200"),
        ],
    );
    let mut peak = 0.0f64;
    eventually(Duration::from_secs(300), "the whole backlog stored", || {
        peak = peak.max(alyxd.peak_rss_mib());
        let pool = pool.clone();
        async move { (catalogue_rows(&pool).await >= n as i64).then_some(()) }
    })
    .await;
    peak = peak.max(alyxd.peak_rss_mib());
    eprintln!("backlog {backlog_mib:.0} MiB of messages; alyxd peak resident memory {peak:.0} MiB");
    assert!(peak > 0.0, "peak memory was read");
    assert!(
        backlog_mib > 300.0,
        "the backlog is larger than alyxd's memory should be"
    );
    assert!(
        peak < backlog_mib / 2.0,
        "resident memory ({peak:.0} MiB) grew with the backlog ({backlog_mib:.0} MiB)"
    );
    alyxd.terminate();
    assert_stored_exactly_once(&pool, dir.path(), n as i64).await;
}

#[sqlx::test(migrations = false)]
async fn a_scan_abandoned_by_its_client_stops_using_the_cpu(pool: PgPool) {
    use alyx_client::{Client, QuerySource, QuerySpec};
    use alyx_sim::nano::{self, NanoConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    for part in nano::events(&NanoConfig::new(5), 0..50_000).chunks(10_000) {
        ds.append(part).expect("append");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let alyxd = Alyxd::spawn(
        &pool,
        dir.path(),
        "127.0.0.1:1",
        "unused",
        "scan",
        &[("ALYXD_INGEST", "false"), ("ALYXD_LISTEN", &listen)],
    );
    let token = eventually(Duration::from_secs(60), "alyxd migrated", || async {
        alyx_backend::auth::create_user(&pool, "ada", alyx_backend::auth::Role::Physicist)
            .await
            .ok()
    })
    .await;
    let client = Client::new(&format!("http://{listen}"), &token).expect("url");
    eventually(Duration::from_secs(60), "alyxd answers", || async {
        client.datasets().await.ok()
    })
    .await;

    // Jet triplets, a page of one row at a time (alyxd makes it 100): every page runs the join.
    let q = QuerySpec {
        dataset: "nano".into(),
        engine: alyx_query::Engine::Local,
        query: QuerySource::Sql(
            "SELECT a.event_id, a.idx, b.idx AS idx2, c.idx AS idx3, a.pt * b.pt * c.pt AS w \
             FROM jets AS a JOIN jets AS b ON b.event_id = a.event_id \
             JOIN jets AS c ON c.event_id = a.event_id ORDER BY w DESC"
                .into(),
        ),
        catalogue_filter: None,
    };
    let before = alyxd.cpu_seconds();
    let mut pages = client.execute(&q, 1, 0, None).await.expect("execute");
    pages.next().await.expect("a page").expect("the first page");
    let busy = alyxd.cpu_seconds() - before;
    drop(pages);
    // What was running when the client left finishes; nothing after it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_from = alyxd.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = alyxd.cpu_seconds() - idle_from;
    println!("CPU: {busy:.2} s for the first page; {idle:.2} s in 2 s after the client left");
    assert!(busy > 0.2, "the first page took work ({busy:.2} s of CPU)");
    assert!(
        idle < 0.2,
        "alyxd still works for a gone client: {idle:.2} s of CPU in 2 s"
    );
    // And it serves the next caller.
    client.datasets().await.expect("alyxd answers");
}

/// An OpenTelemetry collector in the test: the spans alyxd exports over OTLP/gRPC.
#[derive(Clone, Default)]
struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<(String, otlp::trace::v1::Span)>>>,
}

use opentelemetry_proto::tonic as otlp;

#[async_trait::async_trait]
impl otlp::collector::trace::v1::trace_service_server::TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<otlp::collector::trace::v1::ExportTraceServiceRequest>,
    ) -> Result<
        tonic::Response<otlp::collector::trace::v1::ExportTraceServiceResponse>,
        tonic::Status,
    > {
        let mut spans = self.spans.lock().expect("spans");
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.clone()?.value)
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

impl Collector {
    fn named(&self, name: &str) -> Vec<otlp::trace::v1::Span> {
        let spans = self.spans.lock().expect("spans");
        spans
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[sqlx::test(migrations = false)]
async fn a_query_and_a_job_are_traced_end_to_end_over_otlp(pool: PgPool) {
    use alyx_client::{Client, JobSubmission, QuerySource, QuerySpec};
    use alyx_core::histogram::Binning;
    use alyx_core::jobs::{Analysis, HistogramSpec, JobState, Target};
    use alyx_sim::nano::{self, NanoConfig};

    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let collector = Collector::default();
    let otlp_port = free_port();
    let service = otlp::collector::trace::v1::trace_service_server::TraceServiceServer::new(
        collector.clone(),
    );
    // On a runtime of its own: the test's thread blocks while alyxd flushes at SIGTERM.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _ = runtime.block_on(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve(([127, 0, 0, 1], otlp_port).into()),
        );
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    for part in nano::events(&NanoConfig::new(5), 0..3_000).chunks(1_000) {
        ds.append(part).expect("append");
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let mut alyxd = Alyxd::spawn(
        &pool,
        dir.path(),
        "127.0.0.1:1",
        "unused",
        "traced",
        &[
            ("ALYXD_INGEST", "false"),
            ("ALYXD_LISTEN", &listen),
            ("ALYXD_OTLP_ENDPOINT", &endpoint),
            ("RUST_LOG", "warn,alyx_backend=info"),
        ],
    );
    let token = eventually(Duration::from_secs(60), "alyxd migrated", || async {
        alyx_backend::auth::create_user(&pool, "ada", alyx_backend::auth::Role::Physicist)
            .await
            .ok()
    })
    .await;
    // The caller's own trace (as a script's span or a CI system's TRACEPARENT would give).
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = Client::new(&format!("http://{listen}"), &token)
        .expect("url")
        .traced(&format!("00-{trace}-{caller_span}-01"));
    eventually(Duration::from_secs(60), "alyxd answers", || async {
        client.datasets().await.ok()
    })
    .await;

    let q = QuerySpec {
        dataset: "nano".into(),
        engine: alyx_query::Engine::Local,
        query: QuerySource::Sql("SELECT pt FROM jets".into()),
        catalogue_filter: None,
    };
    let binning = Binning::fixed(10, 0.0, 100.0).expect("binning");
    client
        .histogram(&q, "pt", None, binning.clone())
        .await
        .expect("histogram");
    let job = JobSubmission {
        target: Target::Local,
        ..JobSubmission::new(
            "traced",
            "nano",
            Analysis {
                query: alyx_query::parse("SELECT pt FROM jets").expect("sql"),
                histograms: vec![HistogramSpec {
                    column: "pt".into(),
                    weight: None,
                    binning,
                }],
            },
        )
    };
    let (id, _) = client.submit(&job).await.expect("submit");
    let done = eventually(Duration::from_secs(60), "the job ends", || async {
        let j = client.job(id).await.ok()?;
        j.state.is_final().then_some(j)
    })
    .await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    // SIGTERM flushes the exporter. The client's connection closes first (alyxd's graceful
    // stop waits for it, and this thread blocks while it waits).
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    alyxd.terminate();

    let histogram = collector.named("alyx.v1.QueryService/Histogram");
    assert_eq!(histogram.len(), 1, "one server span per call");
    let call = &histogram[0];
    assert_eq!(
        hex(&call.trace_id),
        trace,
        "the call continues the caller's trace"
    );
    assert_eq!(hex(&call.parent_span_id), caller_span);
    let queries = collector.named("query");
    let query = queries
        .iter()
        .find(|s| s.parent_span_id == call.span_id)
        .expect("the engine's run is a child of the call");
    let attribute = |s: &otlp::trace::v1::Span, key: &str| {
        s.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone()?.value)
            .map(|v| format!("{v:?}"))
            .unwrap_or_default()
    };
    assert!(attribute(query, "engine").contains("local"), "{query:?}");
    assert!(attribute(query, "rows").contains("IntValue("), "{query:?}");

    let submit = collector.named("alyx.v1.JobService/Submit");
    assert_eq!(submit.len(), 1);
    assert_eq!(hex(&submit[0].trace_id), trace);
    let tasks = collector.named("job.task");
    assert_eq!(tasks.len(), 3, "one span per chunk: {tasks:?}");
    for t in &tasks {
        assert_eq!(
            hex(&t.trace_id),
            trace,
            "a task continues the submitting trace"
        );
        assert_eq!(t.parent_span_id, submit[0].span_id);
        assert!(attribute(t, "executor").contains("local"), "{t:?}");
    }
    let services: std::collections::BTreeSet<String> = collector
        .spans
        .lock()
        .expect("spans")
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    assert!(
        services.iter().all(|s| s.contains("alyxd")),
        "service.name: {services:?}"
    );
}

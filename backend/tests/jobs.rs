//! JobService end to end on the local executor: submit → run → result equal to the local
//! engine's histogram, invalid submissions queue nothing, a full queue answers
//! RESOURCE_EXHAUSTED, only owners and operators cancel or reprioritise, a high-priority job
//! preempts a running low-priority one, and alyxd killed with -9 mid-job resumes from the
//! finished tasks' checkpoints with a result identical to an uninterrupted run. Part of the
//! wire contract (unknown targets, missing queries, status codes), so it speaks the generated
//! stubs directly, as any gRPC client could.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alyx_analysis::jobs::{Analysis, HistogramSpec, Target};
use alyx_backend::auth::{Caller, Role};
use alyx_backend::jobs::store::{JobStore, NewJob};
use alyx_core::histogram::Binning;
use alyx_proto::v1;
use alyx_proto::v1::job_service_client::JobServiceClient;
use alyx_proto::v1::query_service_client::QueryServiceClient;
use alyx_query as query;
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::DataStore;
use sqlx::PgPool;
use support::*;
use tonic::transport::Channel;

/// Jet pairs' mass: enough work per chunk (a join) that tasks take a while.
const DIJET: &str = "SELECT INV_MASS(a.pt, a.eta, a.phi, a.mass, b.pt, b.eta, b.phi, b.mass) AS mjj \
                     FROM jets a JOIN jets b ON a.event_id = b.event_id AND a.idx < b.idx";

/// Jet triplets' mass: a heavy query.
const TRIJET: &str = "SELECT INV_MASS(a.pt, a.eta, a.phi, a.mass, b.pt, b.eta, b.phi, b.mass, c.pt, c.eta, c.phi, c.mass) AS mjjj \
                      FROM jets a JOIN jets b ON a.event_id = b.event_id AND a.idx < b.idx \
                      JOIN jets c ON a.event_id = c.event_id AND b.idx < c.idx";

fn nano_store(dir: &std::path::Path, events: u64, per_chunk: usize) {
    let store = DataStore::open(dir).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    let all = nano::events(&NanoConfig::new(11), 0..events);
    for part in all.chunks(per_chunk) {
        ds.append(part).expect("append");
    }
}

fn sql(text: &str) -> Option<v1::QueryText> {
    Some(v1::QueryText {
        kind: Some(v1::query_text::Kind::Sql(text.into())),
    })
}

fn fixed(column: &str, bins: u32, lo: f64, hi: f64) -> v1::HistogramSpec {
    v1::HistogramSpec {
        column: column.into(),
        weight: String::new(),
        binning: Some(v1::Binning {
            bins,
            lo,
            hi,
            edges: vec![],
        }),
    }
}

fn submit_request(
    query: &str,
    priority: i32,
    histograms: Vec<v1::HistogramSpec>,
) -> v1::SubmitJobRequest {
    v1::SubmitJobRequest {
        name: "test".into(),
        dataset: "nano".into(),
        query: sql(query),
        histograms,
        target: v1::JobTarget::Local as i32,
        priority,
        cores: 1,
        memory_mb: 512,
    }
}

async fn jobs_client(server: &Server) -> JobServiceClient<Channel> {
    JobServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect")
}

async fn wait_final(c: &mut JobServiceClient<Channel>, token: &str, id: u64) -> v1::Job {
    eventually(Duration::from_secs(120), "the job ends", || {
        let mut c = c.clone();
        async move {
            let j = c
                .get(authorized(token, v1::GetJobRequest { id }))
                .await
                .expect("get")
                .into_inner();
            matches!(j.state.as_str(), "succeeded" | "failed" | "cancelled").then_some(j)
        }
    })
    .await
}

async fn result(c: &mut JobServiceClient<Channel>, token: &str, id: u64) -> v1::JobResult {
    c.get_result(authorized(token, v1::GetJobRequest { id }))
        .await
        .expect("result")
        .into_inner()
}

/// The local engine's histogram of `column` over the whole dataset, through QueryService.
async fn engine_histogram(
    server: &Server,
    token: &str,
    query: &str,
    spec: &v1::HistogramSpec,
) -> v1::HistogramResponse {
    let mut q = QueryServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect");
    q.histogram(authorized(
        token,
        v1::HistogramRequest {
            query: Some(v1::QueryRequest {
                dataset: "nano".into(),
                engine: v1::Engine::Local as i32,
                query: sql(query),
                catalogue_filter: String::new(),
            }),
            column: spec.column.clone(),
            weight: spec.weight.clone(),
            binning: spec.binning.clone(),
        },
    ))
    .await
    .expect("histogram")
    .into_inner()
}

#[sqlx::test(migrations = false)]
async fn a_job_runs_to_the_local_engines_histogram_with_partial_results(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 3000, 500);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    // Two tasks at a time: completions race, and the last one still ends the job.
    cfg.job_slots = 2;
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&server).await;

    let query = "SELECT j.pt AS pt, j.eta AS eta FROM jets j WHERE j.pt > 25";
    let specs = vec![fixed("pt", 40, 0.0, 400.0), fixed("eta", 24, -3.0, 3.0)];
    let submitted = c
        .submit(authorized(&ada, submit_request(query, 0, specs.clone())))
        .await
        .expect("submit")
        .into_inner();
    assert!(submitted.id > 0);
    assert!(
        submitted.estimated_seconds > 0.0,
        "an estimate at submission"
    );

    // Watch: the job's progress and partial results grow until it succeeds.
    let mut stream = c
        .watch(authorized(&ada, v1::GetJobRequest { id: submitted.id }))
        .await
        .expect("watch")
        .into_inner();
    let mut merged = Vec::new();
    let mut last = None;
    while let Some(u) = stream.message().await.expect("update") {
        let partial = u.partial.expect("partial");
        merged.push(partial.tasks_merged);
        last = u.job;
    }
    let job = last.expect("updates");
    assert_eq!(job.state, "succeeded", "{job:?}");
    assert_eq!((job.tasks_total, job.tasks_done), (6, 6));
    assert_eq!(job.events_done, 3000);
    assert!(merged.windows(2).all(|w| w[0] <= w[1]), "{merged:?}");
    assert!(
        merged.len() >= 2,
        "partial results along the way: {merged:?}"
    );
    let states: Vec<&str> = job.history.iter().map(|t| t.to.as_str()).collect();
    assert_eq!(states, ["queued", "running", "succeeded"]);

    let r = result(&mut c, &ada, submitted.id).await;
    assert!(r.complete);
    assert_eq!((r.tasks_merged, r.events), (6, 3000));
    for (spec, h) in specs.iter().zip(&r.histograms) {
        let whole = engine_histogram(&server, &ada, query, spec).await;
        assert_eq!(h.entries, whole.entries, "{}", spec.column);
        assert_eq!((h.underflow, h.overflow), (whole.underflow, whole.overflow));
        assert!(h.entries.iter().sum::<u64>() > 1000);
    }

    // Listing: by owner and state.
    let list = |owner: &str, state: &str| {
        let mut c = c.clone();
        let (owner, state, ada) = (owner.to_owned(), state.to_owned(), ada.clone());
        async move {
            c.list(authorized(
                &ada,
                v1::ListJobsRequest {
                    owner,
                    state,
                    limit: 0,
                },
            ))
            .await
            .expect("list")
            .into_inner()
            .jobs
            .len()
        }
    };
    assert_eq!(list("ada", "").await, 1);
    assert_eq!(list("ada", "succeeded").await, 1);
    assert_eq!(list("", "running").await, 0);
    // Another user's jobs are theirs (and operators') to list: Ada sees only those Bob shared
    // with her, none here.
    let bobs = c
        .list(authorized(
            &ada,
            v1::ListJobsRequest {
                owner: "bob".into(),
                state: String::new(),
                limit: 0,
            },
        ))
        .await
        .expect("bob's jobs")
        .into_inner()
        .jobs;
    assert!(bobs.is_empty(), "{bobs:?}");
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn invalid_submissions_queue_nothing_and_a_full_queue_says_how_long(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 600, 100);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.job_queue_limit = 8;
    cfg.job_slots = 1;
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&server).await;
    let pt = || vec![fixed("pt", 10, 0.0, 100.0)];
    let cases = [
        (
            submit_request("SELECT pt FROM jetz", 0, pt()),
            "unknown table",
        ),
        (
            submit_request("SELECT COUNT(*) AS pt FROM jets", 0, pt()),
            "aggregates across events",
        ),
        (
            submit_request("SELECT pt FROM jets LIMIT 5", 0, pt()),
            "LIMIT",
        ),
        (
            submit_request("SELECT pt FROM jets", 0, vec![]),
            "at least one histogram",
        ),
        (
            submit_request("SELECT pt FROM jets", 0, vec![fixed("eta", 10, 0.0, 1.0)]),
            "eta",
        ),
        (
            submit_request("SELECT pt FROM jets", 0, vec![fixed("pt", 0, 0.0, 1.0)]),
            "bin",
        ),
        (
            submit_request("SELECT pt FROM jets", 1000, pt()),
            "priority 1000",
        ),
        (
            v1::SubmitJobRequest {
                dataset: "nope".into(),
                ..submit_request("SELECT pt FROM jets", 0, pt())
            },
            "no dataset `nope`",
        ),
        (
            v1::SubmitJobRequest {
                target: 42,
                ..submit_request("SELECT pt FROM jets", 0, pt())
            },
            "unknown target",
        ),
        (
            v1::SubmitJobRequest {
                query: None,
                ..submit_request("SELECT pt FROM jets", 0, pt())
            },
            "no query",
        ),
    ];
    for (request, why) in cases {
        let err = c.submit(authorized(&ada, request)).await.expect_err(why);
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{why}: {}",
            err.message()
        );
        assert!(err.message().contains(why), "{why}: {}", err.message());
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(jobs, 0, "nothing queued");
    let err = c
        .submit(v1::SubmitJobRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // Six tasks fit under the limit of eight; six more do not, until the first job is done.
    let first = c
        .submit(authorized(
            &ada,
            submit_request(DIJET, 0, vec![fixed("mjj", 10, 0.0, 1000.0)]),
        ))
        .await
        .expect("fits")
        .into_inner();
    let err = c
        .submit(authorized(
            &ada,
            submit_request("SELECT pt FROM jets", 0, pt()),
        ))
        .await
        .expect_err("queue full");
    assert_eq!(
        err.code(),
        tonic::Code::ResourceExhausted,
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("try again in about"),
        "{}",
        err.message()
    );
    wait_final(&mut c, &ada, first.id).await;
    // alyxd's view of the queue is at most a second old.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.submit(authorized(
        &ada,
        submit_request("SELECT pt FROM jets", 0, pt()),
    ))
    .await
    .expect("room again");
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn only_owners_and_operators_cancel_or_reprioritise(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 4000, 500);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.job_slots = 1;
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let ops = token(&pool, "olga", Role::Operator).await;
    let mut c = jobs_client(&server).await;
    let mjj = || vec![fixed("mjj", 50, 0.0, 1000.0)];
    let id = c
        .submit(authorized(&ada, submit_request(DIJET, 0, mjj())))
        .await
        .expect("submit")
        .into_inner()
        .id;
    let err = c
        .cancel(authorized(
            &bob,
            v1::CancelJobRequest {
                id,
                reason: String::new(),
            },
        ))
        .await
        .expect_err("bob may not cancel");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("ada"), "{}", err.message());
    let err = c
        .set_priority(authorized(
            &bob,
            v1::SetPriorityRequest { id, priority: 10 },
        ))
        .await
        .expect_err("bob may not reprioritise");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let j = c
        .set_priority(authorized(
            &ada,
            v1::SetPriorityRequest { id, priority: 50 },
        ))
        .await
        .expect_err("above a physicist's ceiling");
    assert_eq!(j.code(), tonic::Code::PermissionDenied);
    assert!(j.message().contains("(10)"), "{}", j.message());
    let j = c
        .set_priority(authorized(
            &ada,
            v1::SetPriorityRequest { id, priority: 10 },
        ))
        .await
        .expect("the owner may")
        .into_inner();
    assert_eq!(j.priority, 10);
    let j = c
        .cancel(authorized(
            &ops,
            v1::CancelJobRequest {
                id,
                reason: "maintenance".into(),
            },
        ))
        .await
        .expect("an operator may")
        .into_inner();
    assert_eq!(j.state, "cancelled");
    assert!(
        j.reason.contains("olga") && j.reason.contains("maintenance"),
        "{}",
        j.reason
    );
    let err = c
        .cancel(authorized(
            &ada,
            v1::CancelJobRequest {
                id,
                reason: String::new(),
            },
        ))
        .await
        .expect_err("already cancelled");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    // Nothing of a cancelled job runs any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM job_tasks WHERE state = 'running'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(running, 0);
    let err = c
        .get(authorized(&ada, v1::GetJobRequest { id: 999 }))
        .await
        .expect_err("no job 999");
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_high_priority_job_preempts_a_running_low_priority_one(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Few large chunks and a heavy query: each task runs long enough (about two seconds here)
    // that the high-priority job arrives while one runs, not between two (at 40,000 events a
    // chunk a task sometimes ended before the scheduler looked, and nothing was preempted).
    const EVENTS: u64 = 320_000;
    nano_store(dir.path(), EVENTS, 80_000);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.job_slots = 1;
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let bob = token(&pool, "bob", Role::Physicist).await;
    let mut c = jobs_client(&server).await;
    let mjjj = vec![fixed("mjjj", 50, 0.0, 1500.0)];
    let low = c
        .submit(authorized(&ada, submit_request(TRIJET, -10, mjjj.clone())))
        .await
        .expect("low")
        .into_inner()
        .id;
    eventually(Duration::from_secs(30), "the low-priority job runs", || {
        let mut c = c.clone();
        let ada = ada.clone();
        async move {
            let j = c
                .get(authorized(&ada, v1::GetJobRequest { id: low }))
                .await
                .ok()?
                .into_inner();
            (j.tasks_running > 0).then_some(())
        }
    })
    .await;
    let high = c
        .submit(authorized(&bob, submit_request(TRIJET, 10, mjjj.clone())))
        .await
        .expect("high")
        .into_inner()
        .id;
    let high_job = wait_final(&mut c, &bob, high).await;
    let low_job = wait_final(&mut c, &ada, low).await;
    assert_eq!(
        (high_job.state.as_str(), low_job.state.as_str()),
        ("succeeded", "succeeded")
    );
    assert!(
        high_job.finished_unix_ms <= low_job.finished_unix_ms,
        "the high-priority job ends first"
    );
    let states: Vec<&str> = low_job.history.iter().map(|t| t.to.as_str()).collect();
    assert!(
        states.windows(2).any(|w| w == ["running", "preempted"]),
        "low job history {states:?}"
    );
    assert!(
        low_job
            .history
            .iter()
            .any(|t| t.reason.contains(&format!("job {high}"))),
        "{:?}",
        low_job.history
    );
    // Preempted work is redone, never lost: both results are the whole dataset's.
    let a = result(&mut c, &ada, low).await;
    let b = result(&mut c, &bob, high).await;
    assert_eq!(a.histograms, b.histograms);
    assert_eq!((a.events, b.events), (EVENTS, EVENTS));
    server.stop().await;
}

struct Alyxd(Child);

impl Drop for Alyxd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test(migrations = false)]
async fn alyxd_killed_mid_job_resumes_from_checkpoints_with_an_identical_result(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Tasks of ~100 ms, so that the 100 ms poll sees two done well before all ten are (at
    // 1,000 events a chunk the whole job sometimes finished between two polls).
    const EVENTS: u64 = 80_000;
    nano_store(dir.path(), EVENTS, 8000);
    // Migrations and the job, through the library, before any alyxd runs.
    alyx_backend::catalogue::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    let store = JobStore {
        pool: pool.clone(),
        store: DataStore::open(dir.path()).expect("store"),
        queue_limit: 1000,
        user_queue_limit: 1000,
    };
    let analysis = Analysis {
        query: query::parse(DIJET).expect("sql"),
        histograms: vec![HistogramSpec {
            column: "mjj".into(),
            weight: None,
            binning: Binning::fixed(100, 0.0, 1000.0).expect("binning"),
        }],
    };
    let new_job = NewJob {
        name: "resumed".into(),
        dataset: "nano".into(),
        analysis: analysis.clone(),
        target: Target::Local,
        priority: 0,
        cores: 1,
        memory_mb: 512,
    };
    let ada = Caller {
        name: "ada".into(),
        role: Role::Physicist,
    };
    let id = store
        .submit(&ada, new_job.clone(), 1.0, 0)
        .await
        .expect("submit");

    // A real alyxd process takes the tasks one at a time; kill -9 it after two are done.
    let mut alyxd = Alyxd(
        Command::new(env!("CARGO_BIN_EXE_alyxd"))
            .arg("serve")
            .env("ALYXD_DATABASE_URL", database_url(&pool))
            .env("ALYXD_DATABASE_POOL", "4")
            .env("ALYXD_LISTEN", "127.0.0.1:0")
            .env("ALYXD_METRICS_LISTEN", "127.0.0.1:0")
            .env("ALYXD_DATA_DIR", dir.path())
            .env("ALYXD_INGEST", "false")
            .env("ALYXD_JOB_SLOTS", "1")
            .env("ALYXD_JOB_LEASE_SECS", "3")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("alyxd starts"),
    );
    let done = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM job_tasks WHERE job_id = $1 AND state = 'done'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("count")
    };
    eventually(Duration::from_secs(120), "two tasks done", || {
        let pool = pool.clone();
        async move { (done(pool).await >= 2).then_some(()) }
    })
    .await;
    alyxd.0.kill().expect("SIGKILL");
    let _ = alyxd.0.wait();
    let at_kill = done(pool.clone()).await;
    assert!(at_kill < 10, "killed mid-job ({at_kill} of 10 tasks done)");
    let finished_before: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT chunk_id, attempts FROM job_tasks WHERE job_id = $1 AND state = 'done' ORDER BY chunk_id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .expect("done tasks");

    // Another alyxd: the dead one's running task comes back when its lease expires; only
    // unfinished tasks run again.
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.job_slots = 1;
    let server = Server::start(cfg).await;
    let token = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&server).await;
    let job = wait_final(&mut c, &token, id as u64).await;
    assert_eq!(job.state, "succeeded", "{}", job.reason);
    for (chunk, attempts) in &finished_before {
        let now: (String, i32) = sqlx::query_as(
            "SELECT state, attempts FROM job_tasks WHERE job_id = $1 AND chunk_id = $2",
        )
        .bind(id)
        .bind(chunk)
        .fetch_one(&pool)
        .await
        .expect("task");
        assert_eq!(
            now,
            ("done".to_owned(), *attempts),
            "chunk {chunk} ran once"
        );
    }
    // The same analysis uninterrupted: the identical result, bit for bit.
    let again = store.submit(&ada, new_job, 1.0, 0).await.expect("submit");
    wait_final(&mut c, &token, again as u64).await;
    let resumed = result(&mut c, &token, id as u64).await;
    let uninterrupted = result(&mut c, &token, again as u64).await;
    assert!(resumed.complete && uninterrupted.complete);
    assert_eq!(resumed, uninterrupted);
    assert_eq!(resumed.events, EVENTS);
    server.stop().await;
}

fn cluster_request(
    target: v1::JobTarget,
    query: &str,
    specs: Vec<v1::HistogramSpec>,
) -> v1::SubmitJobRequest {
    v1::SubmitJobRequest {
        target: target as i32,
        ..submit_request(query, 0, specs)
    }
}

#[sqlx::test(migrations = false)]
async fn jobs_on_spark_and_slurm_give_the_local_result(pool: PgPool) {
    let spark = alyx_tests::spark_url();
    let slurm = alyx_tests::slurm_base();
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 2000, 500);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.spark_url = spark.clone().unwrap_or_default();
    cfg.slurm = slurm.is_some();
    cfg.slurm_worker = env!("CARGO_BIN_EXE_alyxd").into();
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let ops = token(&pool, "olga", Role::Operator).await;
    let mut c = jobs_client(&server).await;
    let query = "SELECT m.pt AS pt, m.eta AS eta FROM muons m WHERE ABS(m.eta) < 2.4";
    let specs = vec![fixed("pt", 30, 0.0, 150.0), fixed("eta", 12, -2.4, 2.4)];
    let local = c
        .submit(authorized(
            &ada,
            cluster_request(v1::JobTarget::Local, query, specs.clone()),
        ))
        .await
        .expect("local")
        .into_inner()
        .id;
    assert_eq!(wait_final(&mut c, &ada, local).await.state, "succeeded");
    let expected = result(&mut c, &ada, local).await;
    assert!(expected.histograms[0].entries.iter().sum::<u64>() > 100);

    let mut targets = Vec::new();
    if spark.is_some() {
        targets.push((v1::JobTarget::Spark, "spark"));
    }
    if slurm.is_some() {
        targets.push((v1::JobTarget::Slurm, "slurm"));
    }
    for (target, name) in targets {
        let id = c
            .submit(authorized(
                &ada,
                cluster_request(target, query, specs.clone()),
            ))
            .await
            .expect("submit")
            .into_inner()
            .id;
        let job = wait_final(&mut c, &ada, id).await;
        assert_eq!(job.state, "succeeded", "{name}: {}", job.reason);
        assert!(
            job.history
                .iter()
                .any(|t| t.reason == format!("running on {name}")),
            "{name}: {:?}",
            job.history
        );
        let r = result(&mut c, &ada, id).await;
        assert_eq!(
            r.histograms, expected.histograms,
            "{name} differs from local"
        );
        if name == "slurm" {
            // The four tasks claimed together went to Slurm as one job array: their logs are
            // `array-<job>-<stamp>-<element>.<array job id>.log`.
            let logs: Vec<String> = std::fs::read_dir(dir.path().join(".slurm"))
                .expect("spool")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".log"))
                .collect();
            let arrays: std::collections::BTreeSet<&str> = logs
                .iter()
                .filter(|n| n.starts_with(&format!("array-{id}-")))
                .filter_map(|n| n.rsplit('.').nth(1))
                .collect();
            assert_eq!(logs.len(), 4, "{logs:?}");
            assert_eq!(arrays.len(), 1, "one job array: {logs:?}");
        }
        assert_eq!((r.rows, r.events), (expected.rows, expected.events));
    }

    // Executor health in the admin API.
    let executors = server
        .client(&ops)
        .executor_status()
        .await
        .expect("executor status")
        .executors;
    let up: Vec<(&str, bool)> = executors.iter().map(|e| (e.name.as_str(), e.up)).collect();
    assert!(up.contains(&("local", true)), "{up:?}");
    if spark.is_some() {
        assert!(up.contains(&("spark", true)), "{up:?}");
    }
    if slurm.is_some() {
        assert!(up.contains(&("slurm", true)), "{up:?}");
    }
    server.stop().await;
}

/// Where each task of job `id` ran: (chunk, worker), the worker being `instance/…`.
async fn placement(pool: &PgPool, id: u64) -> Vec<(i32, String)> {
    sqlx::query_as("SELECT chunk_id, worker FROM job_tasks WHERE job_id = $1 ORDER BY chunk_id")
        .bind(id as i64)
        .fetch_all(pool)
        .await
        .expect("tasks")
}

#[sqlx::test(migrations = false)]
async fn auto_jobs_run_at_the_sites_holding_their_chunks(pool: PgPool) {
    use alyx_backend::jobs::store::add_replicas;
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 4000, 500); // 8 chunks
    let site = |name: &str, wait_ms: u64| {
        let mut cfg = config(&pool, dir.path(), None, "unused");
        cfg.site = name.into();
        cfg.ingest.instance = Some(name.into());
        cfg.job_locality_wait_ms = wait_ms;
        cfg.job_slots = 1;
        cfg
    };
    // Two sites, each an alyxd instance with its local pool, sharing one job store.
    let cern = Server::start(site("cern", 600_000)).await;
    let fnal = Server::start(site("fnal", 600_000)).await;
    add_replicas(&pool, "nano", &[0, 1, 2, 3, 7], "cern")
        .await
        .expect("replicas");
    add_replicas(&pool, "nano", &[4, 5, 6, 7], "fnal")
        .await
        .expect("replicas");
    let ada = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&cern).await;
    let specs = vec![fixed("mjj", 50, 0.0, 1000.0)];
    let auto = |specs: Vec<v1::HistogramSpec>| cluster_request(v1::JobTarget::Auto, DIJET, specs);
    let id = c
        .submit(authorized(&ada, auto(specs.clone())))
        .await
        .expect("submit")
        .into_inner()
        .id;
    let job = wait_final(&mut c, &ada, id).await;
    assert_eq!(job.state, "succeeded", "{}", job.reason);
    for (chunk, worker) in placement(&pool, id).await {
        match chunk {
            0..=3 => assert!(worker.starts_with("cern/"), "chunk {chunk} ran on {worker}"),
            4..=6 => assert!(worker.starts_with("fnal/"), "chunk {chunk} ran on {worker}"),
            _ => assert!(worker.starts_with("cern/") || worker.starts_with("fnal/")),
        }
    }
    let whole = engine_histogram(&cern, &ada, DIJET, &specs[0]).await;
    assert_eq!(
        result(&mut c, &ada, id).await.histograms[0].entries,
        whole.entries
    );
    fnal.stop().await;
    cern.stop().await;

    // FNAL is gone: its chunks wait for it for the locality wait, then CERN runs them.
    let cern = Server::start(site("cern", 1_500)).await;
    let mut c = jobs_client(&cern).await;
    let id = c
        .submit(authorized(&ada, auto(specs.clone())))
        .await
        .expect("submit")
        .into_inner()
        .id;
    let job = wait_final(&mut c, &ada, id).await;
    assert_eq!(job.state, "succeeded", "{}", job.reason);
    assert!(
        placement(&pool, id)
            .await
            .iter()
            .all(|(_, w)| w.starts_with("cern/"))
    );
    let waited: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM min(t.started_at - j.submitted_at))::float8 \
         FROM job_tasks t JOIN jobs j ON j.id = t.job_id WHERE t.job_id = $1 AND t.chunk_id BETWEEN 4 AND 6",
    )
    .bind(id as i64)
    .fetch_one(&pool)
    .await
    .expect("waited");
    assert!(waited >= 1.4, "FNAL's chunks started after {waited} s");
    assert_eq!(
        result(&mut c, &ada, id).await.histograms[0].entries,
        whole.entries
    );
    cern.stop().await;
}

/// slurmctld's pid as the test command's Slurm start recorded it.
fn slurmctld_pid(base: &std::path::Path) -> String {
    std::fs::read_to_string(base.join("run/slurmctld.pid"))
        .expect("slurmctld pid file")
        .trim()
        .to_owned()
}

#[sqlx::test(migrations = false)]
async fn a_job_waits_while_slurm_is_down_and_completes_when_it_returns(pool: PgPool) {
    let Some(base) = alyx_tests::slurm_base() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 3000, 500);
    let mut cfg = config(&pool, dir.path(), None, "unused");
    cfg.slurm = true;
    cfg.slurm_slots = 1;
    cfg.slurm_worker = env!("CARGO_BIN_EXE_alyxd").into();
    let server = Server::start(cfg).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&server).await;
    let specs = vec![fixed("mjj", 50, 0.0, 1000.0)];
    let id = c
        .submit(authorized(
            &ada,
            cluster_request(v1::JobTarget::Slurm, DIJET, specs.clone()),
        ))
        .await
        .expect("submit")
        .into_inner()
        .id;
    eventually(Duration::from_secs(60), "a batch task done", || {
        let mut c = c.clone();
        let ada = ada.clone();
        async move {
            let j = c
                .get(authorized(&ada, v1::GetJobRequest { id }))
                .await
                .ok()?
                .into_inner();
            (j.tasks_done >= 1).then_some(())
        }
    })
    .await;

    // Slurm's controller goes away: the job waits and says why; nothing is lost.
    let pid = slurmctld_pid(&base);
    let killed = Command::new("kill").arg(&pid).status().expect("kill");
    assert!(killed.success());
    let waiting = eventually(Duration::from_secs(60), "the job waits for slurm", || {
        let mut c = c.clone();
        let ada = ada.clone();
        async move {
            let j = c
                .get(authorized(&ada, v1::GetJobRequest { id }))
                .await
                .ok()?
                .into_inner();
            j.reason.contains("slurm is down").then_some(j)
        }
    })
    .await;
    assert!(
        !matches!(waiting.state.as_str(), "failed" | "cancelled"),
        "{waiting:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = c
        .get(authorized(&ada, v1::GetJobRequest { id }))
        .await
        .expect("get")
        .into_inner();
    assert_ne!(still.state, "failed", "{}", still.reason);

    // It comes back: the job completes with the local engine's histogram.
    let ctld = Command::new("/usr/sbin/slurmctld")
        .args(["-D", "-i"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slurmctld restarts");
    std::fs::write(base.join("run/slurmctld.pid"), ctld.id().to_string()).expect("pid file");
    std::mem::forget(ctld); // the test command's stop ends it
    let job = wait_final(&mut c, &ada, id).await;
    assert_eq!(job.state, "succeeded", "{}", job.reason);
    assert!(
        job.reason.is_empty() || !job.reason.contains("down"),
        "{}",
        job.reason
    );
    let r = result(&mut c, &ada, id).await;
    let whole = engine_histogram(&server, &ada, DIJET, &specs[0]).await;
    assert_eq!(r.histograms[0].entries, whole.entries);
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_task_that_keeps_failing_is_retried_then_fails_the_job_with_the_reason(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 1500, 500);
    // The last chunk's jets file no longer matches its checksum.
    let ds = DataStore::open(dir.path())
        .expect("store")
        .dataset("nano")
        .expect("dataset");
    let last = ds.manifest().chunks.last().expect("chunks").clone();
    let jets = ds.dir().join(&last.files["jets"].path);
    std::fs::write(&jets, b"not parquet any more").expect("corrupt");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let ada = token(&pool, "ada", Role::Physicist).await;
    let mut c = jobs_client(&server).await;
    let id = c
        .submit(authorized(
            &ada,
            submit_request("SELECT pt FROM jets", 0, vec![fixed("pt", 10, 0.0, 100.0)]),
        ))
        .await
        .expect("submit")
        .into_inner()
        .id;
    let job = wait_final(&mut c, &ada, id).await;
    assert_eq!(job.state, "failed");
    assert!(
        job.reason
            .contains(&format!("chunk {} failed 4 times", last.id)),
        "{}",
        job.reason
    );
    assert_eq!((job.tasks_done, job.tasks_failed), (2, 1));
    // The attempts waited longer each time (1 s, 2 s, 4 s ± 25 %).
    let (first, last_start): (f64, f64) = sqlx::query_as(
        "SELECT extract(epoch FROM min(at))::float8, extract(epoch FROM max(at))::float8 \
         FROM job_transitions WHERE job_id = $1",
    )
    .bind(id as i64)
    .fetch_one(&pool)
    .await
    .expect("times");
    assert!(
        last_start - first > 5.0,
        "{:.1} s from submission to failure",
        last_start - first
    );
    server.stop().await;
}

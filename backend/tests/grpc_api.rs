//! The gRPC surface without ingest: authentication on every call, roles, users, health and
//! reflection, against the real PostgreSQL. This is the wire contract any gRPC client sees
//! (status codes, requests the typed client cannot even express), so it speaks the generated
//! stubs and tonic directly, as `grpcurl` or a Python client would.

mod support;

use alyx_backend::auth::Role;
use alyx_proto::v1;
use alyx_proto::v1::admin_service_client::AdminServiceClient;
use alyx_proto::v1::event_service_client::EventServiceClient;
use sqlx::PgPool;
use std::time::Duration;

use support::{Server, authorized, config, eventually, token};
use tonic::Code;
use tonic::transport::Channel;

async fn events(server: &Server) -> EventServiceClient<Channel> {
    EventServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect")
}

async fn admin(server: &Server) -> AdminServiceClient<Channel> {
    AdminServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect")
}

#[sqlx::test(migrations = false)]
async fn calls_without_a_valid_token_are_unauthenticated(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let mut events = events(&server).await;

    let missing = events
        .list_datasets(v1::ListDatasetsRequest {})
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("Bearer"),
        "{}",
        missing.message()
    );

    let wrong = events
        .list_datasets(authorized("alyx_not-a-token", v1::ListDatasetsRequest {}))
        .await
        .expect_err("wrong token");
    assert_eq!(wrong.code(), Code::Unauthenticated);

    // Every reply, refusals included, carries the call's request id (the one in its log lines).
    let id = |m: &tonic::metadata::MetadataMap| {
        m.get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let first = id(wrong.metadata()).expect("an id on a refusal");
    assert_ne!(id(missing.metadata()), Some(first), "one id per call");

    let physicist = token(&pool, "ada", Role::Physicist).await;
    let mut traced = authorized(&physicist, v1::ListDatasetsRequest {});
    traced
        .metadata_mut()
        .insert("x-request-id", "shift-check-7".parse().expect("value"));
    let datasets = events
        .list_datasets(traced)
        .await
        .expect("a physicist lists datasets");
    assert_eq!(
        id(datasets.metadata()).as_deref(),
        Some("shift-check-7"),
        "a client's own id is kept"
    );
    let datasets = datasets.into_inner();
    assert!(datasets.datasets.is_empty());

    let missing_dataset = events
        .list_events(authorized(
            &physicist,
            v1::ListEventsRequest {
                dataset: "nope".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("unknown dataset");
    assert_eq!(missing_dataset.code(), Code::NotFound);
    assert!(missing_dataset.message().contains("nope"));
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn only_operators_administer_and_revoked_tokens_stop_working(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let mut admin = admin(&server).await;
    let shift = token(&pool, "crew", Role::Shift).await;
    let operator = token(&pool, "ops", Role::Operator).await;

    let denied = admin
        .list_users(authorized(&shift, v1::ListUsersRequest {}))
        .await
        .expect_err("shift is not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("operator"),
        "{}",
        denied.message()
    );

    let created = admin
        .create_user(authorized(
            &operator,
            v1::CreateUserRequest {
                name: "grace".into(),
                role: v1::Role::Physicist.into(),
                expires_seconds: 3600,
            },
        ))
        .await
        .expect("operator creates a user")
        .into_inner();
    assert!(created.token.starts_with("alyx_"));
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM tokens")
        .fetch_all(&pool)
        .await
        .expect("tokens");
    assert!(!stored.contains(&created.token), "tokens are stored hashed");

    let bad_role = admin
        .create_user(authorized(
            &operator,
            v1::CreateUserRequest {
                name: "x".into(),
                role: 0,
                expires_seconds: 0,
            },
        ))
        .await
        .expect_err("no role");
    assert_eq!(bad_role.code(), Code::InvalidArgument);

    let users = admin
        .list_users(authorized(&operator, v1::ListUsersRequest {}))
        .await
        .expect("list")
        .into_inner()
        .users;
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["crew", "grace", "ops"]);

    let revoked = admin
        .revoke_user(authorized(
            &operator,
            v1::RevokeUserRequest {
                name: "grace".into(),
            },
        ))
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(revoked.tokens_revoked, 1);
    let mut events = events(&server).await;
    let after = events
        .list_datasets(authorized(&created.token, v1::ListDatasetsRequest {}))
        .await
        .expect_err("revoked");
    assert_eq!(after.code(), Code::Unauthenticated);

    let status = admin
        .get_ingest_status(authorized(&operator, v1::GetIngestStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.state, "disabled");
    let storage = admin
        .get_storage_status(authorized(&operator, v1::GetStorageStatusRequest {}))
        .await
        .expect("storage")
        .into_inner();
    assert!(
        storage.catalogue_partitions >= 9,
        "default + a day back + a week ahead: {}",
        storage.catalogue_partitions
    );
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn health_and_reflection_need_no_token(pool: PgPool) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let events = health
        .check(HealthCheckRequest {
            service: "alyx.v1.EventService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(events.status(), ServingStatus::Serving);

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "alyx.v1.EventService",
        "alyx.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }
    server.stop().await;
}

/// The operator's probes: `/healthz` while the process answers, `/readyz` and gRPC health
/// only while PostgreSQL does. Cutting alyxd off its database (the database refuses
/// connections and its sessions end) turns both to not ready within a few seconds, saying why;
/// letting it back turns them ready again. Process metrics are exported.
#[sqlx::test(migrations = false)]
async fn readiness_and_grpc_health_follow_postgres(pool: PgPool) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    assert_eq!(server.http_get("/healthz").await, (200, "ok\n".into()));
    let (status, body) = server.http_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("postgres: ok") && body.contains("migrations: ok"),
        "{body}"
    );
    assert_eq!(server.http_get("/nothing").await.0, 404);
    let metrics = server.metrics_text().await;
    for name in [
        "process_resident_memory_bytes",
        "alyxd_ready 1",
        "alyxd_executor_slots{executor=\"local\"}",
    ] {
        eventually(Duration::from_secs(15), name, || async {
            server.metrics_text().await.contains(name).then_some(())
        })
        .await;
    }
    assert!(metrics.contains("process_cpu_seconds_total"), "{metrics}");

    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let health = HealthClient::new(channel);
    let status = move || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: "alyx.v1.QueryService".into(),
                })
                .await
                .expect("health")
                .into_inner()
                .status()
        }
    };
    assert_eq!(status().await, ServingStatus::Serving);

    // Another connection, to another database, cuts this test's database off.
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .expect("name");
    let admin = PgPool::connect(&std::env::var("DATABASE_URL").expect("DATABASE_URL"))
        .await
        .expect("admin connection");
    let cut = |limit: i32| {
        let (admin, database) = (admin.clone(), database.clone());
        async move {
            sqlx::query(&format!(
                "ALTER DATABASE \"{database}\" CONNECTION LIMIT {limit}"
            ))
            .execute(&admin)
            .await
            .expect("connection limit");
            if limit == 0 {
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&database)
                .execute(&admin)
                .await
                .expect("terminate");
            }
        }
    };
    cut(0).await;
    eventually(Duration::from_secs(30), "not ready", || async {
        let (code, body) = server.http_get("/readyz").await;
        // Refused at once, or (the pool waiting for a connection) no answer within 2 s.
        (code == 503 && body.contains("postgres: ") && !body.contains("postgres: ok")).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "NOT_SERVING", || async {
        (status().await == ServingStatus::NotServing).then_some(())
    })
    .await;
    assert_eq!(
        server.http_get("/healthz").await.0,
        200,
        "alive all the same"
    );
    cut(-1).await;
    eventually(Duration::from_secs(30), "ready again", || async {
        (server.http_get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "SERVING again", || async {
        (status().await == ServingStatus::Serving).then_some(())
    })
    .await;
    server.stop().await;
}

// Attacks: what a hostile (or unlucky) authenticated user can send, against the real alyxd and
// PostgreSQL. Each asserts that the call is refused with the right code, quickly, without
// internals in the message, and that alyxd keeps serving everyone else.

mod attacks {
    use std::time::{Duration, Instant};

    use alyx_backend::auth::{self, Role};
    use alyx_client::{Client, ClientError, JobSubmission, QuerySource, QuerySpec, Validation};
    use alyx_core::ast::Expr;
    use alyx_core::ast::dsl::*;
    use alyx_core::histogram::Binning;
    use alyx_core::jobs::{HistogramSpec, Target};
    use alyx_query::{Engine, plan};
    use alyx_sim::nano::{self, NanoConfig};
    use alyx_store::DataStore;
    use sqlx::PgPool;

    use super::support::{Server, config, token};

    fn nano_store(dir: &std::path::Path, name: &str, events: u64) {
        let store = DataStore::open(dir).expect("store");
        let mut ds = store.create_dataset(name, "test").expect("dataset");
        let all = nano::events(&NanoConfig::new(5), 0..events);
        for part in all.chunks(1000) {
            ds.append(part).expect("append");
        }
    }

    fn spec(dataset: &str, engine: Engine, sql: &str) -> QuerySpec {
        QuerySpec {
            dataset: dataset.into(),
            engine,
            query: QuerySource::Sql(sql.into()),
            catalogue_filter: None,
        }
    }

    /// A job analysis: the jets' pT in ten bins.
    fn jet_pt() -> alyx_core::jobs::Analysis {
        alyx_core::jobs::Analysis {
            query: alyx_query::parse("SELECT pt FROM jets").expect("sql"),
            histograms: vec![HistogramSpec {
                column: "pt".into(),
                weight: None,
                binning: Binning::fixed(10, 0.0, 100.0).expect("binning"),
            }],
        }
    }

    fn cursor(after: Vec<Expr>) -> Option<String> {
        let c = plan::Cursor {
            first_row: 100,
            after: Some(after),
            skip: 0,
        };
        Some(serde_json::to_string(&c).expect("json"))
    }

    /// What an Execute call ends with: its first error, or the number of rows.
    async fn first_error(
        client: &Client,
        q: &QuerySpec,
        cursor: Option<String>,
    ) -> Result<usize, ClientError> {
        let mut pages = client.execute(q, 0, 0, cursor).await?;
        let mut rows = 0;
        while let Some(page) = pages.next().await? {
            rows += page.rows.height();
        }
        Ok(rows)
    }

    fn assert_no_internals(message: &str) {
        for secret in ["pg_", "postgres://", "super", "/tmp", "syntax for type"] {
            assert!(!message.contains(secret), "leaks `{secret}`: {message}");
        }
    }

    #[sqlx::test(migrations = false)]
    async fn injection_traversal_and_huge_queries_are_refused(pool: PgPool) {
        let dir = tempfile::tempdir().expect("tempdir");
        nano_store(dir.path(), "nano", 2000);
        let outside = tempfile::tempdir().expect("outside");
        nano_store(outside.path(), "secret", 1000);
        let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
        let ada = server.client(&token(&pool, "ada", Role::Physicist).await);

        // 1. The page cursor: a function name carrying SQL, and a text value where the column
        // is an integer (PostgreSQL's error would quote it back), on every engine.
        let sleep = call("(SELECT 1 FROM pg_sleep(3)) + ABS", vec![int(1)]);
        for (engine, dataset, sql) in [
            (
                Engine::Postgres,
                "live",
                "SELECT run, event_number FROM events",
            ),
            (Engine::Local, "nano", "SELECT event_id, idx FROM jets"),
        ] {
            for after in [
                vec![sleep.clone(), int(1)],
                vec![Expr::Text("x' OR 1=1 --".into()), int(1)],
                vec![int(1), col("run")],
            ] {
                let started = Instant::now();
                let e = first_error(&ada, &spec(dataset, engine, sql), cursor(after))
                    .await
                    .expect_err("a forged cursor is refused");
                assert!(matches!(e, ClientError::Invalid(_)), "{e:?}");
                assert!(e.to_string().contains("not a cursor"), "{e}");
                assert_no_internals(&e.to_string());
                assert!(started.elapsed() < Duration::from_secs(2), "no sleep ran");
            }
        }

        // 2. Dataset names that are paths: refused, never opened.
        let escape = format!(
            "../{}/secret",
            outside.path().file_name().unwrap().to_string_lossy()
        );
        let absolute = outside.path().join("secret").display().to_string();
        for name in [escape.as_str(), absolute.as_str(), "..", "nano/../nano"] {
            let e = first_error(
                &ada,
                &spec(name, Engine::Local, "SELECT pt FROM jets"),
                None,
            )
            .await
            .expect_err(name);
            assert!(matches!(e, ClientError::Invalid(_)), "{name}: {e:?}");
            assert!(e.to_string().contains("invalid dataset name"), "{e}");
            let job = JobSubmission::new("escape", name, jet_pt());
            let e = ada.submit(&job).await.expect_err(name);
            assert!(matches!(e, ClientError::Invalid(_)), "{name}: {e:?}");
        }

        // 3. A 200,000-term expression (it used to overflow alyxd's stack and abort it).
        // It is refused for its length; one as deep but short enough is refused for its
        // operators.
        let huge = format!("SELECT {} AS x FROM jets", vec!["pt"; 200_000].join(" + "));
        let deep = format!("SELECT {} AS x FROM jets", vec!["1"; 50_000].join("+"));
        for (query, why) in [(&huge, "KiB"), (&deep, "operators")] {
            let started = Instant::now();
            match ada.validate(&spec("nano", Engine::Local, query)).await {
                Ok(Validation::Invalid(d)) => {
                    assert!(d[0].message.contains(why), "{d:?}")
                }
                other => panic!("the huge query: {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        let e = first_error(&ada, &spec("nano", Engine::Local, &huge), None)
            .await
            .expect_err("not run");
        assert!(matches!(e, ClientError::Invalid(_)), "{e:?}");
        assert!(server.serving().await, "alyxd is still up");
        let rows = first_error(
            &ada,
            &spec("nano", Engine::Local, "SELECT pt FROM jets"),
            None,
        )
        .await
        .expect("an honest query still runs");
        assert!(rows > 1000, "{rows}");
        server.stop().await;
    }

    #[sqlx::test(migrations = false)]
    async fn one_user_cannot_crowd_out_the_others(pool: PgPool) {
        let dir = tempfile::tempdir().expect("tempdir");
        nano_store(dir.path(), "nano", 3000);
        let mut cfg = config(&pool, dir.path(), None, "unused");
        cfg.user_calls = 4;
        cfg.job_user_queue_limit = 4;
        let server = Server::start(cfg).await;
        let ada = server.client(&token(&pool, "ada", Role::Physicist).await);
        let bob = server.client(&token(&pool, "bob", Role::Physicist).await);

        // Open queries and streams: the fifth of one user is refused, others still get in.
        let q = spec("nano", Engine::Local, "SELECT event_id, idx, pt FROM jets");
        let mut open = Vec::new();
        for _ in 0..4 {
            open.push(
                ada.execute(&q, 100, 0, None)
                    .await
                    .expect("within the limit"),
            );
        }
        let e = ada
            .execute(&q, 100, 0, None)
            .await
            .err()
            .expect("over the limit");
        assert!(matches!(e, ClientError::Busy(_)), "{e:?}");
        assert!(e.to_string().contains("open"), "{e}");
        let started = Instant::now();
        bob.datasets().await.expect("bob lists the datasets");
        let rows = first_error(&bob, &q, None).await.expect("bob queries");
        assert!(rows > 0);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        drop(open);
        super::support::eventually(Duration::from_secs(10), "ada's calls close", || {
            let (ada, q) = (ada.clone(), q.clone());
            async move { ada.execute(&q, 100, 1, None).await.ok().map(|_| ()) }
        })
        .await;

        // The job queue: three tasks each (three chunks); no executor runs Spark jobs here, so
        // they stay queued. Ada's second job would pass her limit of four; Bob still gets in.
        let job = JobSubmission {
            target: Target::Spark,
            ..JobSubmission::new("fill", "nano", jet_pt())
        };
        ada.submit(&job).await.expect("ada's first job");
        let e = ada.submit(&job).await.expect_err("ada's second job");
        assert!(matches!(e, ClientError::Busy(_)), "{e:?}");
        assert!(e.to_string().contains("one user may"), "{e}");
        let (bobs, _) = bob.submit(&job).await.expect("bob's job");
        // And a physicist cannot jump the queue, nor read another's job.
        let e = bob
            .submit(&JobSubmission {
                priority: 100,
                ..job.clone()
            })
            .await
            .expect_err("priority 100");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        let e = ada.job(bobs).await.expect_err("bob's job");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        let e = ada.job_result(bobs).await.expect_err("bob's result");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        assert!(
            !ada.jobs("", "", 100)
                .await
                .expect("list")
                .iter()
                .any(|j| j.id == bobs)
        );

        // Until Bob shares it: then Ada sees the job, its result and it in her list, but may
        // neither cancel it nor share it on. Taken back, it is Bob's alone again.
        let e = bob
            .share_job(bobs, "nobody", false)
            .await
            .expect_err("no such user");
        assert!(matches!(e, ClientError::NotFound(_)), "{e:?}");
        let shared = bob.share_job(bobs, "ada", false).await.expect("share");
        assert_eq!(shared.readers, ["ada"]);
        assert_eq!(ada.job(bobs).await.expect("shared job").owner, "bob");
        ada.job_result(bobs).await.expect("shared result");
        assert!(
            ada.jobs("", "", 100)
                .await
                .expect("list")
                .iter()
                .any(|j| j.id == bobs)
        );
        assert!(
            !ada.jobs("@me", "", 100)
                .await
                .expect("list")
                .iter()
                .any(|j| j.id == bobs)
        );
        let e = ada
            .cancel(bobs, "mine now")
            .await
            .expect_err("cancel a shared job");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        let e = ada
            .share_job(bobs, "carol", false)
            .await
            .expect_err("share on");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        let unshared = bob.share_job(bobs, "ada", true).await.expect("revoke");
        assert!(unshared.readers.is_empty());
        let e = ada.job(bobs).await.expect_err("no longer shared");
        assert!(matches!(e, ClientError::PermissionDenied(_)), "{e:?}");
        server.stop().await;
    }

    #[sqlx::test(migrations = false)]
    async fn a_revoked_users_open_streams_end_within_seconds(pool: PgPool) {
        let dir = tempfile::tempdir().expect("tempdir");
        nano_store(dir.path(), "nano", 3000);
        let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
        let ada = server.client(&token(&pool, "ada", Role::Physicist).await);

        // Jet pairs: a result of megabytes, more than the connection's flow-control windows
        // hold, so the server is still producing pages when the token is revoked.
        let pairs = "SELECT a.event_id, a.idx, a.pt, a.eta, a.phi, b.idx AS idx2, b.pt AS pt2, \
                     b.eta AS eta2, b.phi AS phi2 FROM jets AS a JOIN jets AS b ON b.event_id = a.event_id";
        let q = spec("nano", Engine::Local, pairs);
        let mut pages = ada.execute(&q, 100, 0, None).await.expect("execute");
        pages.next().await.expect("first page").expect("a page");
        let mut live = ada.subscribe("", false).await.expect("subscribe");
        let job = JobSubmission {
            target: Target::Spark,
            ..JobSubmission::new("watched", "nano", jet_pt())
        };
        let (id, _) = ada.submit(&job).await.expect("job");
        let mut watch = ada.watch(id).await.expect("watch");
        watch
            .next()
            .await
            .expect("first update")
            .expect("an update");
        let nb = ada.create_notebook("secret plans").await.expect("notebook");
        let mut sync = ada
            .open_notebook(nb.id, alyx_analysis::notebook::Notebook::empty("ada"))
            .await
            .expect("sync");

        let revoked = Instant::now();
        auth::revoke_user(&pool, "ada").await.expect("revoke");
        let limit = Duration::from_secs(15);
        let ended = |r: Result<(), ClientError>, what: &str| match r {
            Err(ClientError::Unauthenticated { .. }) => {
                assert!(
                    revoked.elapsed() < limit,
                    "{what} took {:?}",
                    revoked.elapsed()
                )
            }
            other => panic!("{what} ended with {other:?}, not UNAUTHENTICATED"),
        };
        let live_end = tokio::time::timeout(limit, async {
            loop {
                if live.next().await?.is_none() {
                    return Ok(());
                }
            }
        });
        ended(live_end.await.expect("subscribe ends in time"), "subscribe");
        let watch_end = tokio::time::timeout(limit, async {
            loop {
                if watch.next().await?.is_none() {
                    return Ok(());
                }
            }
        });
        ended(watch_end.await.expect("watch ends in time"), "watch");
        let sync_end = tokio::time::timeout(limit, async {
            loop {
                if sync.next().await?.is_none() {
                    return Ok(());
                }
            }
        });
        ended(sync_end.await.expect("sync ends in time"), "sync");
        // Pages already in flight may still arrive; the stream must not finish normally.
        let mut read = 0;
        let execute_end = tokio::time::timeout(limit, async {
            loop {
                match pages.next().await? {
                    Some(_) => read += 1,
                    None => return Ok(()),
                }
            }
        });
        ended(execute_end.await.expect("execute ends in time"), "execute");
        eprintln!("{read} pages were in flight when the token was revoked");
        server.stop().await;
    }

    #[sqlx::test(migrations = false)]
    async fn a_tls_alyxd_refuses_plain_text_and_serves_tls(pool: PgPool) {
        let Some(tls) = alyx_tests::tls_dir() else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&pool, dir.path(), None, "unused");
        cfg.tls_cert = tls.join("server.pem");
        cfg.tls_key = tls.join("server.key");
        let ca = std::fs::read(tls.join("ca.pem")).expect("ca");
        let server = Server::start_with_ca(cfg, Some(ca)).await;
        let token = token(&pool, "ada", Role::Physicist).await;
        assert!(
            server
                .client(&token)
                .datasets()
                .await
                .expect("over TLS")
                .is_empty()
        );

        // The same port in plain text: a TLS-only alyxd takes nothing but a TLS handshake, so
        // the call fails at the transport, before any service sees it.
        let port = server.grpc.rsplit(':').next().expect("port");
        let plain = Client::new(&format!("http://127.0.0.1:{port}"), &token).expect("client");
        let e = plain.datasets().await.expect_err("plain text");
        assert!(
            matches!(&e, ClientError::Unreachable { .. })
                || matches!(&e, ClientError::Server(m) if m.contains("transport")),
            "{e:?}"
        );
        // TLS without trusting the CA: refused by the client.
        let untrusted = Client::new(&server.grpc, &token).expect("client");
        assert!(untrusted.datasets().await.is_err());
        server.stop().await;
    }
}

/// A thousand users' clients at once, each on its own connection, calling for a few seconds
/// (the specification's 1,000 concurrent users): none is refused, none starves (every client's
/// calls succeed, and the slowest client still gets answers), and the latencies are printed.
#[sqlx::test(migrations = false)]
async fn a_thousand_concurrent_clients_are_all_served(pool: PgPool) {
    const CLIENTS: usize = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let mut tokens = Vec::new();
    for u in 0..20 {
        tokens.push(token(&pool, &format!("user{u}"), Role::Physicist).await);
    }
    let mut channels = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        channels.push(
            Channel::from_shared(server.grpc.clone())
                .expect("url")
                .connect()
                .await
                .expect("a connection for every client"),
        );
    }
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = channels
        .into_iter()
        .enumerate()
        .map(|(i, channel)| {
            let token = tokens[i % tokens.len()].clone();
            tokio::spawn(async move {
                let mut client = EventServiceClient::new(channel);
                let mut latencies = Vec::new();
                let mut failures = Vec::new();
                while std::time::Instant::now() < until || latencies.is_empty() {
                    let started = std::time::Instant::now();
                    match client
                        .list_datasets(authorized(&token, v1::ListDatasetsRequest {}))
                        .await
                    {
                        Ok(_) => latencies.push(started.elapsed()),
                        Err(s) => failures.push(s.code()),
                    }
                    if failures.len() > 3 {
                        break;
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut fewest = usize::MAX;
    for task in tasks {
        let (latencies, failures) = task.await.expect("client task");
        assert!(failures.is_empty(), "a client was refused: {failures:?}");
        fewest = fewest.min(latencies.len());
        all.extend(latencies);
    }
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    println!(
        "{CLIENTS} clients, {} calls in ~3 s: p50 {:?}, p99 {:?}, max {:?}; the least served client made {fewest}",
        all.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    // Fair shares: the least served client gets at least a quarter of the average.
    let average = all.len() / CLIENTS;
    assert!(
        fewest >= 1 && fewest * 4 >= average,
        "a client starved: {fewest} calls against an average of {average}"
    );
    server.stop().await;
}

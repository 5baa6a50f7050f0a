//! QueryService end to end, in process: validation with positions, paged execution with an
//! estimate then the exact count, and the same answers from the local engine, Spark (the real
//! Spark Connect server the test command starts) and the PostgreSQL catalogue.

mod support;

use std::time::Duration;

use alyx_backend::auth::Role;
use alyx_backend::produce::{ProduceOptions, produce};
use alyx_client::{Client, ClientError, Page, QuerySource, QuerySpec, Validation};
use alyx_core::CollisionSystem;
use alyx_query::{Engine, adl};
use alyx_sim::nano::{self, NanoConfig};
use alyx_store::DataStore;
use polars::prelude::*;
use sqlx::PgPool;
use support::*;

fn request(dataset: &str, engine: Engine, sql: &str) -> QuerySpec {
    QuerySpec {
        dataset: dataset.into(),
        engine,
        query: QuerySource::Sql(sql.into()),
        catalogue_filter: None,
    }
}

/// Every page of an Execute call from `cursor`, stacked, and the pages.
async fn execute_from(
    client: &Client,
    q: &QuerySpec,
    page_size: u32,
    cursor: Option<String>,
) -> (Option<DataFrame>, Vec<Page>) {
    let mut stream = client
        .execute(q, page_size, 0, cursor)
        .await
        .expect("execute");
    let mut pages = Vec::new();
    let mut all: Option<DataFrame> = None;
    while let Some(page) = stream.next().await.expect("page") {
        match &mut all {
            None => all = Some(page.rows.clone()),
            Some(a) => {
                a.vstack_mut(&page.rows).expect("stack");
            }
        }
        pages.push(page);
    }
    (all, pages)
}

/// Every page of an Execute call, and the pages.
async fn execute(client: &Client, q: &QuerySpec, page_size: u32) -> (DataFrame, Vec<Page>) {
    let (all, pages) = execute_from(client, q, page_size, None).await;
    (all.expect("at least one page"), pages)
}

fn nano_store(dir: &std::path::Path, events: u64) {
    let store = DataStore::open(dir).expect("store");
    let mut ds = store.create_dataset("nano", "test").expect("dataset");
    let all = nano::events(&NanoConfig::new(3), 0..events);
    for part in all.chunks(1000) {
        ds.append(part).expect("append");
    }
}

#[sqlx::test(migrations = false)]
async fn queries_validate_page_and_agree_on_local_and_spark(pool: PgPool) {
    let spark = alyx_tests::spark_url();
    let dir = tempfile::tempdir().expect("tempdir");
    nano_store(dir.path(), 3000);
    let mut config = config(&pool, dir.path(), None, "unused");
    config.spark_url = spark.clone().unwrap_or_default();
    let server = Server::start(config).await;
    let token = token(&pool, "ada", Role::Physicist).await;
    let q = server.client(&token);

    // Validation: positions, and nothing runs.
    let v = q
        .validate(&request(
            "nano",
            Engine::Local,
            "SELECT pt FROM jets\nWHERE btagg > 0.5",
        ))
        .await
        .expect("validate");
    let Validation::Invalid(diagnostics) = v else {
        panic!("valid: {v:?}")
    };
    assert_eq!(
        (diagnostics[0].line, diagnostics[0].column),
        (2, 7),
        "{diagnostics:?}"
    );
    assert!(
        diagnostics[0].message.contains("did you mean `btag`"),
        "{diagnostics:?}"
    );
    let err = q
        .execute(
            &request("nano", Engine::Local, "SELECT nonsense FROM jets"),
            0,
            0,
            None,
        )
        .await
        .err()
        .expect("invalid query fails");
    assert!(matches!(err, ClientError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("unknown column `nonsense`"),
        "{err}"
    );
    // Programs get the same diagnostics as gRPC's standard BadRequest details, with positions.
    {
        use alyx_proto::v1;
        use tonic_types::StatusExt;
        let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut raw = v1::query_service_client::QueryServiceClient::new(channel);
        let query = v1::QueryRequest {
            dataset: "nano".into(),
            engine: v1::Engine::Local as i32,
            query: Some(v1::QueryText {
                kind: Some(v1::query_text::Kind::Sql(
                    "SELECT pt\nFROM jets WHERE nonsense > 1".into(),
                )),
            }),
            catalogue_filter: String::new(),
        };
        let status = raw
            .execute(authorized(
                &token,
                v1::ExecuteRequest {
                    query: Some(query),
                    ..Default::default()
                },
            ))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let bad = status
            .get_details_bad_request()
            .expect("BadRequest details");
        assert_eq!(bad.field_violations.len(), 1, "{bad:?}");
        assert_eq!(bad.field_violations[0].field, "query");
        assert!(
            bad.field_violations[0]
                .description
                .starts_with("2:17: unknown column `nonsense`"),
            "{bad:?}"
        );
    }
    let err = server
        .client("")
        .validate(&request("nano", Engine::Local, "SELECT 1"))
        .await
        .err()
        .expect("no token");
    assert!(
        matches!(err, ClientError::Unauthenticated { .. }),
        "{err:?}"
    );

    // Paging: an estimate first, the exact count last, every row once in a stable order.
    let sql = "SELECT event_id, idx, pt FROM jets WHERE pt > 20 ORDER BY pt DESC";
    let (whole, pages) = execute(&q, &request("nano", Engine::Local, sql), 1000).await;
    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(pages[0].estimated_total.is_some());
    let last = pages.last().expect("last");
    assert!(last.last);
    assert_eq!(last.exact_total, Some(whole.height() as u64));
    let pt = whole.column("pt").expect("pt").f64().expect("f64");
    assert!(
        pt.iter()
            .flatten()
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0] >= w[1])
    );
    // A later call goes on from a page's cursor: the rest of the result, nothing twice.
    let (rest, _) = execute_from(
        &q,
        &request("nano", Engine::Local, sql),
        1000,
        pages[0].next_cursor.clone(),
    )
    .await;
    let mut resumed = whole.head(Some(pages[0].rows.height()));
    resumed.vstack_mut(&rest.expect("the rest")).expect("stack");
    assert!(resumed.equals(&whole), "resumed pages differ");
    assert!(last.next_cursor.is_none());
    let estimate = pages[0].estimated_total.expect("estimate") as f64;
    let exact = whole.height() as f64;
    assert!(
        (estimate - exact).abs() < 0.2 * exact,
        "estimate {estimate} vs {exact}"
    );

    let Some(_) = spark else { return };
    // The same rows from Spark.
    let (from_spark, _) = execute(&q, &request("nano", Engine::Spark, sql), 100_000).await;
    assert!(
        from_spark.equals(&whole),
        "spark rows differ:\n{from_spark}\n{whole}"
    );

    // The ADL histograms, identical on both engines.
    for n in 1..=8 {
        let (_, spec, plots) = adl::query(n).expect("adl");
        let query = spec.query().expect("query");
        for plot in plots {
            let spec = |engine| QuerySpec {
                dataset: "nano".into(),
                engine,
                query: QuerySource::Ast(query.clone()),
                catalogue_filter: None,
            };
            let hist = |engine| {
                let q = q.clone();
                let spec = spec(engine);
                let binning = plot.binning.clone();
                async move {
                    q.histogram(&spec, plot.column, None, binning)
                        .await
                        .expect("histogram")
                }
            };
            let local = hist(Engine::Local).await;
            let spark = hist(Engine::Spark).await;
            assert_eq!(local.entries, spark.entries, "ADL {n} {}", plot.column);
            assert_eq!(
                (local.underflow, local.overflow),
                (spark.underflow, spark.overflow),
                "ADL {n}"
            );
            assert!(
                local.entries.iter().sum::<u64>() > 0,
                "ADL {n} {} is empty",
                plot.column
            );
        }
    }
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn postgres_engine_answers_catalogue_queries_like_the_local_engine(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("query");
    create_topic(&brokers, &topic, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    produce(&ProduceOptions {
        brokers: brokers.clone(),
        topic: topic.clone(),
        system: CollisionSystem::Pp,
        events: 400,
        first: 0,
        seed: 5,
        rate: None,
    })
    .await
    .expect("produce");
    let mut cfg = config(&pool, dir.path(), Some(&brokers), &topic);
    // Results stay cached far longer than the test: only ingest's notification can refresh them.
    cfg.query_cache_ttl_ms = 3_600_000;
    let server = Server::start(cfg).await;
    eventually(Duration::from_secs(60), "400 catalogue rows", || async {
        (catalogue_rows(&pool).await == 400).then_some(())
    })
    .await;
    let token = token(&pool, "ada", Role::Physicist).await;
    let q = server.client(&token);

    let sql = "SELECT run, n_muons, COUNT(*) AS n, SUM(n_tracks) AS tracks, AVG(vz) AS mean_vz \
               FROM events WHERE n_tracks > 5 GROUP BY run, n_muons ORDER BY run, n_muons";
    let (pg, pages) = execute(&q, &request("live", Engine::Postgres, sql), 0).await;
    let (local, _) = execute(&q, &request("live", Engine::Local, sql), 0).await;
    assert!(pg.height() >= 2, "{pg}");
    assert!(pages[0].estimated_total.is_some());
    let mean = |df: &DataFrame| {
        df.column("mean_vz")
            .expect("c")
            .f64()
            .expect("f")
            .iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    assert!(
        pg.drop("mean_vz")
            .expect("d")
            .equals(&local.drop("mean_vz").expect("d")),
        "{pg}\n{local}"
    );
    for (a, b) in mean(&pg).iter().zip(mean(&local)) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    // A catalogue selection restricts the chunks a payload query scans.
    let payload = "SELECT COUNT(*) AS n FROM tracks";
    let count = |df: &DataFrame| {
        df.column("n")
            .expect("n")
            .i64()
            .expect("i64")
            .get(0)
            .expect("row")
    };
    let (all_tracks, _) = execute(&q, &request("live", Engine::Local, payload), 0).await;
    let mut filtered = request("live", Engine::Local, payload);
    filtered.catalogue_filter = Some("run >= 0".into());
    let (same, _) = execute(&q, &filtered, 0).await;
    assert_eq!(count(&same), count(&all_tracks));
    assert!(count(&all_tracks) > 0);
    filtered.catalogue_filter = Some("run = 1".into());
    let (none, _) = execute(&q, &filtered, 0).await;
    assert_eq!(count(&none), 0, "no chunk holds run 1");
    filtered.catalogue_filter = Some("nonsense > 1".into());
    let err = q
        .execute(&filtered, 0, 0, None)
        .await
        .err()
        .expect("bad filter");
    let message = err.to_string();
    assert!(
        message.contains("catalogue filter") && message.contains("nonsense"),
        "{message}"
    );

    // Time bounds prune the catalogue's daily partitions (events are from 2026-07-01).
    let plan = |sql: &'static str| {
        let q = q.clone();
        async move {
            q.explain(&request("live", Engine::Postgres, sql))
                .await
                .expect("explain")
                .plan
        }
    };
    let bounded = plan("SELECT COUNT(*) AS n FROM events WHERE timestamp_ns BETWEEN 1782864000000000000 AND 1782864100000000000").await;
    assert!(
        bounded.contains("events_20260701") && !bounded.contains("events_default"),
        "{bounded}"
    );
    let all = plan("SELECT COUNT(*) AS n FROM events").await;
    assert!(all.contains("events_default"), "{all}");

    // Cached catalogue results are dropped when ingest stores more events for the dataset.
    let total = "SELECT COUNT(*) AS n FROM events";
    let (before, _) = execute(&q, &request("live", Engine::Postgres, total), 0).await;
    assert_eq!(count(&before), 400);
    produce(&ProduceOptions {
        brokers: brokers.clone(),
        topic: topic.clone(),
        system: CollisionSystem::Pp,
        events: 50,
        first: 400,
        seed: 5,
        rate: None,
    })
    .await
    .expect("produce");
    eventually(
        Duration::from_secs(60),
        "450 events in the cached query",
        || {
            let q = q.clone();
            async move {
                let (after, _) = execute(&q, &request("live", Engine::Postgres, total), 0).await;
                (count(&after) == 450).then_some(())
            }
        },
    )
    .await;

    // The catalogue holds events only.
    let v = q
        .validate(&request("live", Engine::Postgres, "SELECT pt FROM muons"))
        .await
        .expect("validate");
    assert!(
        matches!(&v, Validation::Invalid(d) if d[0].message.contains("not available on the postgres engine")),
        "{v:?}"
    );
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_catalogue_query_abandoned_by_its_client_is_cancelled_on_postgres(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let token = token(&pool, "ada", Role::Physicist).await;
    // 3,000 events of one run: a triple self-join is 2.7e10 rows, minutes of work.
    sqlx::query(
        "WITH d AS (INSERT INTO datasets (name, source) VALUES ('cat', 'test') RETURNING id)
         INSERT INTO events (event_time, run, event_number, time_ns, dataset_id, event_id, chunk_id,
             system, sqrt_s_gev, vertex_x_cm, vertex_y_cm, vertex_z_cm, n_tracks, n_hits, n_muons,
             n_electrons, n_jets, trigger_bits, flags)
         SELECT '2026-07-01', 1, i, 0, d.id, i, 0, 'pp', 13600, 0, 0, 0, 10, 100, 0, 0, 0, 0, ''
         FROM d, generate_series(1, 3000) AS i",
    )
    .execute(&pool)
    .await
    .expect("catalogue rows");
    let client = server.client(&token);
    let sql = "SELECT COUNT(*) AS n FROM events AS a JOIN events AS b ON b.run = a.run \
               JOIN events AS c ON c.run = a.run";
    let call =
        tokio::spawn(
            async move { execute(&client, &request("cat", Engine::Postgres, sql), 0).await },
        );
    let running = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND state = 'active' AND query LIKE '%COUNT(*)%JOIN%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity")
    };
    eventually(Duration::from_secs(30), "the join running", || async {
        (running().await == 1).then_some(())
    })
    .await;
    // The client leaves (its call is dropped: the HTTP/2 stream is reset).
    call.abort();
    let _ = call.await;
    let left = std::time::Instant::now();
    eventually(Duration::from_secs(5), "the join cancelled", || async {
        (running().await == 0).then_some(())
    })
    .await;
    println!(
        "the abandoned statement ended {:.2} s after its client left",
        left.elapsed().as_secs_f64()
    );
    // The pool's connections are all usable afterwards.
    let q = server.client(&token);
    for _ in 0..10 {
        let (n, _) = execute(
            &q,
            &request("cat", Engine::Postgres, "SELECT COUNT(*) AS n FROM events"),
            0,
        )
        .await;
        assert_eq!(
            n.column("n").expect("n").i64().expect("i64").get(0),
            Some(3000)
        );
    }
}

/// A TCP proxy to `upstream` that can be cut (every connection dropped, new ones refused) and
/// restored: Redis becoming unreachable to one alyxd while it keeps its data.
struct Cuttable {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Cuttable {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, _) = tokio::sync::watch::channel(false);
        let watch = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = watch.subscribe();
                if *cut.borrow() {
                    continue; // dropped: refused
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[sqlx::test(migrations = false)]
async fn instances_share_results_in_redis_and_never_serve_one_an_invalidation_missed(pool: PgPool) {
    let (Some(brokers), Some(redis)) = (brokers(), alyx_tests::redis_url()) else {
        return;
    };
    let topic = unique_topic("shared-cache");
    create_topic(&brokers, &topic, 2).await;
    let produce_range = |first: u64, events: u64| ProduceOptions {
        brokers: brokers.clone(),
        topic: topic.clone(),
        system: CollisionSystem::Pp,
        events,
        first,
        seed: 5,
        rate: None,
    };
    produce(&produce_range(0, 300)).await.expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    // The ingesting instance caches in its own memory only; b and c share Redis, b through a
    // proxy the test cuts.
    let ingesting = Server::start(config(&pool, dir.path(), Some(&brokers), &topic)).await;
    eventually(Duration::from_secs(60), "300 catalogue rows", || async {
        (catalogue_rows(&pool).await == 300).then_some(())
    })
    .await;
    let upstream = redis.trim_start_matches("redis://").trim_end_matches('/');
    let proxy = Cuttable::start(upstream.to_owned()).await;
    let prefix = format!("alyxtest:{topic}:");
    let sharing = |url: String| {
        let mut cfg = config(&pool, dir.path(), None, "unused");
        cfg.query_cache_ttl_ms = 3_600_000;
        cfg.redis_url = url;
        cfg.redis_prefix = prefix.clone();
        cfg
    };
    let b = Server::start(sharing(format!("redis://{}", proxy.addr))).await;
    // b2 shares b's path to Redis but asks nothing until Redis is back: no result of its own
    // memory shields it from what Redis holds.
    let b2 = Server::start(sharing(format!("redis://{}", proxy.addr))).await;
    let c = Server::start(sharing(redis.clone())).await;
    // Each instance forgets everything (bumps the epoch) once it listens for changes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let token = token(&pool, "ada", Role::Physicist).await;
    let count = |server: &Server| {
        let client = server.client(&token);
        async move {
            let q = request("live", Engine::Postgres, "SELECT COUNT(*) AS n FROM events");
            let (df, _) = execute(&client, &q, 0).await;
            df.column("n")
                .expect("n")
                .i64()
                .expect("i64")
                .get(0)
                .expect("a count")
        }
    };

    // What b made, c serves from Redis: a catalogue result and an event.
    assert_eq!(count(&b).await, 300);
    let c_before = metric(&c.metrics_text().await, "alyxd_cache_redis_hits_total");
    assert_eq!(count(&c).await, 300);
    let (_, event) = b.client(&token).event("live", 7).await.expect("event");
    let (_, again) = c.client(&token).event("live", 7).await.expect("event");
    assert_eq!(event, again);
    let c_hits = metric(&c.metrics_text().await, "alyxd_cache_redis_hits_total") - c_before;
    assert!(
        c_hits >= 3.0,
        "c served the result, its estimate and the event from Redis: {c_hits}"
    );
    c.stop().await;

    // b loses Redis; the dataset changes; b hears of it but cannot tell Redis.
    proxy.set_cut(true);
    produce(&produce_range(300, 100)).await.expect("produce");
    eventually(Duration::from_secs(60), "400 catalogue rows", || async {
        (catalogue_rows(&pool).await == 400).then_some(())
    })
    .await;
    let served_without = eventually(Duration::from_secs(20), "b's fresh count", || async {
        let n = count(&b).await;
        (n == 400).then_some(n)
    })
    .await;
    assert_eq!(served_without, 400, "from PostgreSQL while Redis is away");
    let (_, ready) = b.http_get("/readyz").await;
    assert!(ready.contains("cache: degraded"), "{ready}");
    assert_eq!(metric(&b.metrics_text().await, "alyxd_cache_redis_up"), 0.0);

    // Redis is back with b's old result (300) still in it: b2 heard of the change while it
    // could not tell Redis, and delivers that invalidation before it reads Redis again, so it
    // never answers 300.
    proxy.set_cut(false);
    eventually(
        Duration::from_secs(20),
        "b2 reaches Redis again",
        || async {
            let (_, ready) = b2.http_get("/readyz").await;
            ready.contains("cache: ok").then_some(())
        },
    )
    .await;
    assert_eq!(
        count(&b2).await,
        400,
        "never the result the dataset's change hid"
    );
    b2.stop().await;
    eventually(Duration::from_secs(20), "b's cache back to ok", || async {
        assert_eq!(
            count(&b).await,
            400,
            "never the result the dataset's change hid"
        );
        let (_, ready) = b.http_get("/readyz").await;
        ready.contains("cache: ok").then_some(())
    })
    .await;
    let misses = metric(&b.metrics_text().await, "alyxd_cache_redis_misses_total");
    assert_eq!(count(&b).await, 400);
    // A new instance on the same Redis sees the same.
    let d = Server::start(sharing(redis.clone())).await;
    assert_eq!(count(&d).await, 400);
    assert!(metric(&b.metrics_text().await, "alyxd_cache_redis_misses_total") >= misses);
    d.stop().await;
    b.stop().await;
    ingesting.stop().await;
}

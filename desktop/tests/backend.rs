//! The desktop against a running alyxd (real PostgreSQL and broker): live mode shows the newest
//! stored event and picks the stream up again by itself after the backend restarts.

use std::time::{Duration, Instant};

use alyx_backend::auth::{self, Role};
use alyx_backend::produce::{ProduceOptions, create_topic, produce};
use alyx_core::CollisionSystem;
use alyx_core::DetectorGeometry;
use alyx_desktop::catalogue::{Catalogue, CataloguePlugin};
use alyx_desktop::display::{Display, EventDisplayPlugin};
use alyx_desktop::remote::{Connection, Remote, RemotePlugin};
use alyx_sim::generator::{EventGenerator, GeneratorConfig};
use bevy::prelude::*;
use sqlx::PgPool;

fn config(
    pool: &PgPool,
    dir: &std::path::Path,
    brokers: &str,
    topic: &str,
    port: u16,
) -> alyx_backend::Config {
    let db = pool
        .connect_options()
        .get_database()
        .expect("db name")
        .to_owned();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let base = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(b, _)| b)
        .to_owned();
    let mut c = alyx_backend::Config::default();
    c.database_url = format!("{base}/{db}");
    c.database_pool = 4;
    c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    c.metrics_listen = "127.0.0.1:0".parse().expect("addr");
    c.data_dir = dir.to_path_buf();
    c.ingest.brokers = brokers.to_owned();
    c.ingest.topic = topic.to_owned();
    c.ingest.partitions = 1;
    c.ingest.batch_events = 5;
    c.ingest.batch_linger_ms = 50;
    c
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<alyx_backend::Result<()>>,
}

async fn start(config: alyx_backend::Config) -> Running {
    let (grpc, metrics) = alyx_backend::server::bind(&config).await.expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(alyx_backend::server::run(
        config,
        grpc,
        metrics,
        async move {
            let _ = stopped.await;
        },
    ));
    Running { stop, task }
}

async fn produce_events(brokers: &str, topic: &str, first: u64, events: u64) {
    produce(&ProduceOptions {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        system: CollisionSystem::Pp,
        events,
        first,
        seed: 5,
        rate: None,
    })
    .await
    .expect("produce");
}

/// Runs the app (yielding to the in-process backend between frames) until the event on display
/// has an event number of the generated events `range`.
async fn shows_one_of(app: &mut App, range: std::ops::Range<u64>, what: &str) -> u64 {
    let generator = EventGenerator::new(GeneratorConfig::pp(5), DetectorGeometry::alice_barrel());
    let numbers: Vec<u64> = range
        .map(|i| generator.event(i).header.event_number)
        .collect();
    let started = Instant::now();
    loop {
        app.update();
        let display = app.world().resource::<Display>();
        if numbers.contains(&display.event.header.event_number) && !display.event.hits.is_empty() {
            return display.event.header.event_number;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn live_mode_follows_new_events_and_reconnects_after_a_backend_restart(pool: PgPool) {
    let Some(brokers) = alyx_tests::kafka_brokers() else {
        return;
    };
    let topic = format!("desktop-live-{}", std::process::id());
    create_topic(&brokers, &topic, 1).await.expect("topic");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    produce_events(&brokers, &topic, 0, 5).await;
    let server = start(config(&pool, dir.path(), &brokers, &topic, port)).await;
    // The schema exists once the server answers; then a user can be made.
    let token = loop {
        if let Ok(t) = auth::create_user(&pool, "shift-crew", Role::Shift).await {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let connection = Connection {
        url: format!("http://127.0.0.1:{port}"),
        token,
    };
    let remote = Remote::connect(&connection).expect("client");
    let blank =
        EventGenerator::new(GeneratorConfig::pp(99), DetectorGeometry::alice_barrel()).event(0);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Display::new(0, blank))
        .add_plugins(EventDisplayPlugin)
        .insert_resource(remote)
        .insert_resource(Catalogue::new("live".into(), true))
        .add_plugins((RemotePlugin, CataloguePlugin));

    // Let the subscription start, then new events arrive and are shown.
    for _ in 0..50 {
        app.update();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    produce_events(&brokers, &topic, 5, 5).await;
    shows_one_of(&mut app, 5..10, "a live event").await;

    // The backend restarts; the desktop reconnects and follows again.
    let _ = server.stop.send(());
    server.task.await.expect("task").expect("clean stop");
    let restarted = start(config(&pool, dir.path(), &brokers, &topic, port)).await;
    for _ in 0..100 {
        app.update();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    produce_events(&brokers, &topic, 10, 5).await;
    shows_one_of(&mut app, 10..15, "a live event after the restart").await;
    let status = app.world().resource::<Catalogue>().status.clone();
    assert!(status.starts_with("live: following"), "{status}");
    let _ = restarted.stop.send(());
    restarted.task.await.expect("task").expect("clean stop");
}

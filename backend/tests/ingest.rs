//! Kafka ingest end to end, in process, against the real broker and PostgreSQL: events produced
//! to the topic become Parquet chunks and catalogue rows exactly once, are served by the
//! EventService and pushed to live subscribers; bad messages end up as dead letters.

mod support;

use std::time::Duration;

use alyx_backend::auth::Role;
use alyx_backend::produce::{ProduceOptions, produce, produce_raw};
use alyx_client::ClientError;
use alyx_core::CollisionEvent;
use alyx_core::CollisionSystem;
use alyx_core::DetectorGeometry;
use alyx_proto::v1;
use alyx_sim::generator::{EventGenerator, GeneratorConfig};
use alyx_store::DataStore;
use prost::Message as _;
use sqlx::PgPool;
use support::*;

fn options(brokers: &str, topic: &str, first: u64, events: u64) -> ProduceOptions {
    ProduceOptions {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        system: CollisionSystem::Pp,
        events,
        first,
        seed: 7,
        rate: None,
    }
}

#[sqlx::test(migrations = false)]
async fn produced_events_are_stored_once_listed_fetched_and_streamed(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("ingest");
    create_topic(&brokers, &topic, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    produce(&options(&brokers, &topic, 0, 300))
        .await
        .expect("produce");

    let server = Server::start(config(&pool, dir.path(), Some(&brokers), &topic)).await;
    eventually(Duration::from_secs(60), "300 catalogue rows", || async {
        (catalogue_rows(&pool).await == 300).then_some(())
    })
    .await;

    let reader = token(&pool, "ada", Role::Physicist).await;
    let events = server.client(&reader);
    let datasets = events.datasets().await.expect("datasets");
    assert_eq!(datasets.len(), 1);
    assert_eq!(datasets[0].name, "live");
    assert_eq!(datasets[0].event_count, 300);
    assert_eq!(datasets[0].source, format!("kafka:{topic}"));

    // Paging: 128 + 128 + 44, every event once.
    let mut seen = Vec::new();
    let mut page_token = None;
    loop {
        let page = events
            .events("live", None, 128, page_token)
            .await
            .expect("page");
        assert_eq!(page.total, 300);
        seen.extend(page.events.iter().map(|e| (e.run, e.event_number)));
        match page.next {
            Some(next) => page_token = Some(next),
            None => break,
        }
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 300, "every event listed exactly once");
    let bad_token = events
        .events("live", None, 0, Some("x".into()))
        .await
        .expect_err("bad page token");
    assert!(
        matches!(bad_token, ClientError::Invalid(_)),
        "{bad_token:?}"
    );

    // A fetched event is the generated one, unchanged.
    let first = events
        .events("live", None, 1, None)
        .await
        .expect("page")
        .events
        .remove(0);
    let (summary, event) = events.event("live", first.event_id).await.expect("event");
    let generator = EventGenerator::new(GeneratorConfig::pp(7), DetectorGeometry::alice_barrel());
    let original = (0..300)
        .map(|i| generator.event(i))
        .find(|e| e.header.event_number == first.event_number && e.header.run == first.run)
        .expect("the stored event was produced");
    assert!(
        event.same_as(&original),
        "stored event differs from the produced one"
    );
    assert_eq!(summary.n_tracks as usize, original.tracks.len());

    // Live: a subscriber sees events produced after it subscribed, with payloads on request.
    let mut live = events.subscribe("live", true).await.expect("subscribe");
    produce(&options(&brokers, &topic, 300, 50))
        .await
        .expect("produce more");
    let message = tokio::time::timeout(Duration::from_secs(30), live.next())
        .await
        .expect("a live event within 30 s")
        .expect("stream open")
        .expect("live event");
    let summary = message.summary;
    assert!(summary.event_id >= 300, "a new event: {}", summary.event_id);
    let payload = message.event.expect("payload asked for");
    assert_eq!(payload.header.event_number, summary.event_number);

    // Re-sent events (a producer replaying) are recognised by identity and stored once.
    produce(&options(&brokers, &topic, 0, 100))
        .await
        .expect("produce duplicates");
    // ... also when a re-send carries another time (a day later, in another batch and another
    // day's partition of the catalogue): an event is its run and event number.
    let late: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            let mut e = generator.event(i);
            e.header.timestamp_ns += 86_400_000_000_000;
            v1::CollisionEvent::from(&e).encode_to_vec()
        })
        .collect();
    produce_raw(&brokers, &topic, &late)
        .await
        .expect("produce late duplicates");
    eventually(
        Duration::from_secs(60),
        "350 rows and the duplicates consumed",
        || async {
            let offsets = committed_offsets(&pool).await;
            (offsets == 460).then_some(())
        },
    )
    .await;
    assert_eq!(catalogue_rows(&pool).await, 350);
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("alyxd_ingest_events_total 350"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alyxd_ingest_duplicates_total 110"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"GetEvent\",grpc_service=\"alyx.v1.EventService\"} 1"
        ),
        "{metrics}"
    );
    server.stop().await;

    // The Parquet side agrees: 350 events, every checksum valid.
    let dataset = DataStore::open(dir.path())
        .expect("store")
        .dataset("live")
        .expect("dataset");
    assert!(dataset.verify().is_ok(), "{:?}", dataset.verify());
    assert_eq!(dataset.manifest().event_count(), 350);
}

#[sqlx::test(migrations = false)]
async fn garbage_truncated_and_invalid_messages_become_dead_letters(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("dead");
    create_topic(&brokers, &topic, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let generator = EventGenerator::new(GeneratorConfig::pp(3), DetectorGeometry::alice_barrel());
    let good: Vec<Vec<u8>> = (0..4)
        .map(|i| v1::CollisionEvent::from(&generator.event(i)).encode_to_vec())
        .collect();
    let mut invalid = v1::CollisionEvent::decode(good[3].as_slice()).expect("decodes");
    invalid.tracks[0].pz_gev = f64::NAN;
    // Poison pills: headers the catalogue's columns cannot hold (they used to fail their whole
    // batch, again and again, and stall the partition).
    let mut big_run = v1::CollisionEvent::decode(good[1].as_slice()).expect("decodes");
    big_run.header.as_mut().expect("header").run = 3_000_000_000;
    let mut big_number = v1::CollisionEvent::decode(good[1].as_slice()).expect("decodes");
    big_number.header.as_mut().expect("header").event_number = u64::MAX;
    let payloads = vec![
        good[0].clone(),
        b"definitely not protobuf \xff\xff".to_vec(),
        good[1][..good[1].len() / 3].to_vec(),
        invalid.encode_to_vec(),
        big_run.encode_to_vec(),
        big_number.encode_to_vec(),
        good[2].clone(),
    ];
    produce_raw(&brokers, &topic, &payloads)
        .await
        .expect("produce");
    let server = Server::start(config(&pool, dir.path(), Some(&brokers), &topic)).await;
    eventually(
        Duration::from_secs(60),
        "2 events and 5 dead letters",
        || async {
            let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            (catalogue_rows(&pool).await == 2 && dead == 5).then_some(())
        },
    )
    .await;
    let letters: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT kafka_offset, reason, payload FROM dead_letters ORDER BY kafka_offset",
    )
    .fetch_all(&pool)
    .await
    .expect("dead letters");
    assert_eq!(
        letters.iter().map(|l| l.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(letters[3].1.contains("run 3000000000"), "{}", letters[3].1);
    assert!(letters[4].1.contains("event number"), "{}", letters[4].1);
    assert_eq!(letters[0].2, payloads[1], "raw bytes are kept");
    assert_eq!(letters[1].2, payloads[2]);
    assert!(
        letters[0].1.contains("not an alyx.v1.CollisionEvent"),
        "{}",
        letters[0].1
    );
    assert!(letters[2].1.contains("invalid event"), "{}", letters[2].1);

    // Ingest carries on after them, and a producer clock far in the future is ignored.
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("producer");
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("future")
                    .payload(&good[3])
                    .timestamp(i64::MAX / 4),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }
    eventually(
        Duration::from_secs(30),
        "the event after the dead letters",
        || async { (catalogue_rows(&pool).await == 3).then_some(()) },
    )
    .await;
    let operator = token(&pool, "ops", Role::Operator).await;
    let status = server
        .client(&operator)
        .ingest_status()
        .await
        .expect("status");
    assert_eq!(status.state, "up");
    assert_eq!(status.dead_letters, 5);
    assert_eq!(status.partitions.len(), 1);
    let client = server.client(&operator);
    eventually(
        Duration::from_secs(20),
        "the partition's lag back to 0",
        || {
            let client = client.clone();
            async move {
                let s = client.ingest_status().await.ok()?;
                (s.partitions.first()?.lag == 0).then_some(())
            }
        },
    )
    .await;
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn with_the_broker_unreachable_alyxd_serves_and_reports_ingest_down(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(&pool, dir.path(), Some("127.0.0.1:1"), "raw-events");
    c.ingest.enabled = true;
    let server = Server::start(c).await;
    let operator = token(&pool, "ops", Role::Operator).await;
    let admin = server.client(&operator);
    let status = eventually(Duration::from_secs(30), "ingest reported down", || {
        let admin = admin.clone();
        async move {
            let s = admin.ingest_status().await.ok()?;
            (s.state == "down" && !s.detail.is_empty() && s.detail != "starting").then_some(s)
        }
    })
    .await;
    assert!(status.detail.contains("127.0.0.1:1"), "{}", status.detail);
    let datasets = admin
        .datasets()
        .await
        .expect("serves while the broker is down");
    assert_eq!(datasets.len(), 1, "the ingest dataset exists, empty");
    let _ = admin.storage_status().await.expect("storage status");
    assert!(server.metrics_text().await.contains("alyxd_ingest_up 0"));
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_chunk_written_but_never_committed_is_removed_before_its_partition_is_read(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("orphan");
    create_topic(&brokers, &topic, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // What a crash between the chunk write and the commit leaves: a chunk the manifest lists,
    // from partition 0, that the catalogue never recorded.
    let generator = EventGenerator::new(GeneratorConfig::pp(7), DetectorGeometry::alice_barrel());
    let orphan: Vec<CollisionEvent> = (0..20).map(|i| generator.event(i)).collect();
    let store = DataStore::open(dir.path()).expect("store");
    let mut dataset = store
        .create_dataset("live", &format!("kafka:{topic}"))
        .expect("dataset");
    dataset
        .append_from(&orphan, Some(&format!("kafka:{topic}/0@0-19")))
        .expect("orphan chunk");
    produce(&options(&brokers, &topic, 0, 20))
        .await
        .expect("produce");

    let server = Server::start(config(&pool, dir.path(), Some(&brokers), &topic)).await;
    eventually(Duration::from_secs(60), "20 catalogue rows", || async {
        (catalogue_rows(&pool).await == 20).then_some(())
    })
    .await;
    server.stop().await;
    let dataset = store.dataset("live").expect("dataset");
    assert_eq!(
        dataset.manifest().event_count(),
        20,
        "the orphan chunk is gone, the events stored once"
    );
    let manifest_chunks: Vec<i32> = dataset
        .manifest()
        .chunks
        .iter()
        .map(|c| c.id as i32)
        .collect();
    let catalogued: Vec<i32> = sqlx::query_scalar("SELECT chunk_id FROM chunks ORDER BY chunk_id")
        .fetch_all(&pool)
        .await
        .expect("chunks");
    assert_eq!(
        manifest_chunks, catalogued,
        "the manifest lists exactly the catalogued chunks"
    );
}

/// A TCP proxy in front of PostgreSQL that, once, lets through the COMMIT of a transaction that
/// stored a chunk and then cuts the connection before PostgreSQL's answer gets back: the commit
/// lands, and alyxd sees only a broken connection. Returns the proxy's address and whether the
/// cut happened.
async fn cut_after_a_chunk_commit(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let cut = Arc::new(AtomicBool::new(false));
    let done = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            let muted = Arc::new(AtomicBool::new(false));
            let (cut, mute) = (done.clone(), muted.clone());
            tokio::spawn(async move {
                let (mut buf, mut chunk_sent) = (vec![0u8; 64 * 1024], false);
                while let Ok(n) = from_client.read(&mut buf).await {
                    let bytes = &buf[..n];
                    if n == 0 {
                        break;
                    }
                    let has = |s: &[u8]| bytes.windows(s.len()).any(|w| w == s);
                    chunk_sent |= has(b"INSERT INTO chunks");
                    let commit = chunk_sent && has(b"COMMIT\0");
                    if commit && !cut.swap(true, Ordering::SeqCst) {
                        mute.store(true, Ordering::SeqCst);
                        let _ = to_server.write_all(bytes).await;
                        // PostgreSQL reads the COMMIT and commits; its answer goes nowhere.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                    if to_server.write_all(bytes).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_server.read(&mut buf).await {
                    if n == 0 || muted.load(Ordering::SeqCst) {
                        break;
                    }
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (address, cut)
}

#[sqlx::test(migrations = false)]
async fn a_commit_that_fails_after_landing_loses_nothing_and_stores_nothing_twice(pool: PgPool) {
    let Some(brokers) = brokers() else { return };
    let topic = unique_topic("ambiguous");
    create_topic(&brokers, &topic, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    produce(&options(&brokers, &topic, 0, 150))
        .await
        .expect("produce");

    // alyxd talks to PostgreSQL through the proxy.
    let url = database_url(&pool);
    let (scheme_user, rest) = url.split_once('@').expect("user@host in DATABASE_URL");
    let (host, database) = rest.split_once('/').expect("/database in DATABASE_URL");
    let (proxy, cut) = cut_after_a_chunk_commit(host.to_owned()).await;
    let mut cfg = config(&pool, dir.path(), Some(&brokers), &topic);
    cfg.database_url = format!("{scheme_user}@{proxy}/{database}");
    let server = Server::start(cfg).await;
    eventually(
        Duration::from_secs(60),
        "150 rows, the offset at 150",
        || async {
            let offset = committed_offsets(&pool).await;
            (catalogue_rows(&pool).await == 150 && offset == 150).then_some(())
        },
    )
    .await;
    // More events after the cut: the partition is owned again and goes on.
    produce(&options(&brokers, &topic, 150, 50))
        .await
        .expect("produce more");
    eventually(Duration::from_secs(60), "200 rows", || async {
        (catalogue_rows(&pool).await == 200).then_some(())
    })
    .await;
    assert!(
        cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy cut a commit"
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("alyxd_ingest_errors_total{kind=\"commit\"} 1"),
        "{metrics}"
    );
    server.stop().await;

    let dataset = DataStore::open(dir.path())
        .expect("store")
        .dataset("live")
        .expect("dataset");
    assert!(dataset.verify().is_ok(), "{:?}", dataset.verify());
    assert_eq!(
        dataset.manifest().event_count(),
        200,
        "every event in Parquet exactly once"
    );
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (run, event_number)) FROM events")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!((rows, distinct), (200, 200));
}

//! Playing the detector: generated events encoded as `alyx.v1.CollisionEvent` and produced to
//! the raw-events topic, keyed by run and event number (so a partition holds whole runs' events
//! in order). Used by `alyxctl produce`, the ingest tests and the ingest benchmark.

use std::time::{Duration, Instant};

use alyx_core::CollisionSystem;
use alyx_core::DetectorGeometry;
use alyx_proto::v1;
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};
use prost::Message as _;
use rayon::prelude::*;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct ProduceOptions {
    pub brokers: String,
    pub topic: String,
    pub system: CollisionSystem,
    pub events: u64,
    /// Index of the first generated event (events are deterministic in seed and index).
    pub first: u64,
    pub seed: u64,
    /// Events per second; `None` for as fast as possible.
    pub rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Produced {
    pub events: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// A producer with idempotence (no duplicates from retries) and lz4 batches.
pub fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("log_level", "3")
        .create()?)
}

fn generator(options: &ProduceOptions) -> EventGenerator {
    let config = match options.system {
        CollisionSystem::PbPb => GeneratorConfig::pbpb(options.seed, Centrality::Central),
        _ => GeneratorConfig::pp(options.seed),
    };
    EventGenerator::new(config, DetectorGeometry::alice_barrel())
}

/// Writes the messages `produce` would send as files `RUN-EVENT.pb` in `dir` (inputs for
/// tests, replays and the ingest fuzzer's seeds); `brokers`, `topic` and `rate` are unused.
pub fn write_files(options: &ProduceOptions, dir: &std::path::Path) -> Result<Produced> {
    let generator = generator(options);
    let started = Instant::now();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", dir.display())))?;
    let mut bytes = 0u64;
    for i in options.first..options.first + options.events {
        let event = generator.event(i);
        let payload = v1::CollisionEvent::from(&event).encode_to_vec();
        bytes += payload.len() as u64;
        let path = dir.join(format!(
            "{}-{}.pb",
            event.header.run, event.header.event_number
        ));
        std::fs::write(&path, payload)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    }
    Ok(Produced {
        events: options.events,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Generates and produces `options.events` events; returns when the broker has them all.
pub async fn produce(options: &ProduceOptions) -> Result<Produced> {
    let generator = generator(options);
    let producer = producer(&options.brokers)?;
    let started = Instant::now();
    let mut bytes = 0u64;
    let chunk = 256u64;
    let end = options.first + options.events;
    let mut next = options.first;
    let mut pending = Vec::new();
    while next < end {
        let upto = (next + chunk).min(end);
        let encoded: Vec<(String, Vec<u8>)> = (next..upto)
            .into_par_iter()
            .map(|i| {
                let event = generator.event(i);
                let key = format!("{}:{}", event.header.run, event.header.event_number);
                (key, v1::CollisionEvent::from(&event).encode_to_vec())
            })
            .collect();
        for (key, payload) in &encoded {
            bytes += payload.len() as u64;
            let record = FutureRecord::to(&options.topic).key(key).payload(payload);
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| Error::Unavailable(format!("cannot produce: {e}")))?;
            pending.push(delivery);
        }
        next = upto;
        if pending.len() >= 4096 {
            wait(&mut pending).await?;
        }
        if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
            let due = Duration::from_secs_f64((next - options.first) as f64 / rate);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(ahead).await;
            }
        }
    }
    wait(&mut pending).await?;
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| Error::Unavailable(format!("cannot flush to the broker: {e}")))?;
    Ok(Produced {
        events: options.events,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn wait(pending: &mut Vec<rdkafka::producer::DeliveryFuture>) -> Result<()> {
    for delivery in pending.drain(..) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                return Err(Error::Unavailable(format!(
                    "the broker refused an event: {e}"
                )));
            }
            Err(_) => return Err(Error::Unavailable("delivery was cancelled".into())),
        }
    }
    Ok(())
}

/// Produces raw payloads (any bytes) to `topic`, e.g. garbage for the dead-letter path.
pub async fn produce_raw(brokers: &str, topic: &str, payloads: &[Vec<u8>]) -> Result<()> {
    let producer = producer(brokers)?;
    let mut pending = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let key = format!("raw:{i}");
        let record = FutureRecord::to(topic).key(&key).payload(payload);
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| Error::Unavailable(format!("cannot produce: {e}")))?,
        );
    }
    wait(&mut pending).await
}

/// Creates `topic` with `partitions` partitions (replication 1).
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in results {
        r.map_err(|(t, e)| Error::Unavailable(format!("cannot create topic `{t}`: {e}")))?;
    }
    Ok(())
}

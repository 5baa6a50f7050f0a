//! Kafka ingest: raw events from the detector's data acquisition, decoded, validated, stored
//! as Parquet chunks and catalogued in PostgreSQL, exactly once.
//!
//! Partitions are owned through PostgreSQL, not through the broker's consumer groups: an
//! instance owns a partition while it holds a session advisory lock on a dedicated connection,
//! takes at most its fair share (partitions / live instances), and reads it by explicit
//! assignment from the offset stored in `ingest_offsets`. Each batch's catalogue rows, dead
//! letters and next offset are committed in one transaction on that same connection, after the
//! batch's Parquet chunk is durable. A crash between the chunk write and the commit leaves a chunk
//! the catalogue does not know; the next owner removes it before reading the partition again
//! (`partition::recover`). When an instance dies, PostgreSQL closes its connections, the locks
//! go, and the others take its partitions over from the committed offsets.
//!
//! Backpressure: each owned partition has a reader task (consume, decode on all cores) and a
//! store task joined by a channel of `queue_batches` batches. When storage falls behind the
//! reader waits on the channel and stops polling, librdkafka's prefetch buffer
//! (`fetch_buffer_kb`) fills and fetching pauses: memory stays bounded.

pub mod decode;
mod partition;
mod state;
mod store;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alyx_store::DataStore;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use state::{INSTANCE_TIMEOUT_S, Shared, Snapshot, TICK};
pub use state::{IngestState, IngestStatus, PartitionStatus};

/// The running ingest of one alyxd instance.
pub struct Ingest {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl Ingest {
    /// Opens (creating) the ingest dataset and starts the supervisor, which owns partitions and
    /// runs their workers. Returns at once: a broker that is down is retried in the background.
    pub async fn start(
        config: IngestConfig,
        instance: String,
        pool: PgPool,
        db_options: PgConnectOptions,
        store: &DataStore,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let source = format!("kafka:{}", config.topic);
        let dataset = match store.dataset(&config.dataset) {
            Ok(d) => d,
            // Another instance may create it at the same moment: then open theirs.
            Err(_) => store
                .create_dataset(&config.dataset, &source)
                .or_else(|_| store.dataset(&config.dataset))?,
        };
        let dataset_id = crate::catalogue::dataset_id(&pool, &config.dataset, &source).await?;
        // Ids are reserved in PostgreSQL from here on: start above what the store already has.
        let max_chunk = dataset
            .manifest()
            .chunks
            .iter()
            .map(|c| c.id)
            .max()
            .unwrap_or(0);
        sqlx::query(
            "UPDATE datasets SET next_event_id = greatest(next_event_id, $2),
                 next_chunk_id = greatest(next_chunk_id, $3) WHERE id = $1",
        )
        .bind(dataset_id)
        .bind(dataset.manifest().next_event_id as i64)
        .bind(max_chunk as i32 + 1)
        .execute(&pool)
        .await?;
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Snapshot {
                state: IngestState::Down,
                detail: "starting".into(),
                partitions: Vec::new(),
            }),
            config,
            instance,
            pool,
            db_options,
            metrics,
            dataset: Mutex::new(dataset),
            dataset_id,
            queued: AtomicI64::new(0),
            events_stored: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            known_days: Mutex::new(HashSet::new()),
        });
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(shared.clone(), stopped));
        Ok(Self {
            shared,
            stop,
            supervisor: Mutex::new(Some(supervisor)),
        })
    }

    /// Stops consuming, lets every partition finish and commit its in-flight batches, and
    /// gives the partitions up.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = Shared::locked(&self.supervisor).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    pub async fn status(&self) -> Result<IngestStatus> {
        let s = &self.shared;
        let snapshot = Shared::locked(&s.snapshot).clone();
        let dead_letters: i64 =
            sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE topic = $1")
                .bind(&s.config.topic)
                .fetch_one(&s.pool)
                .await?;
        let rate = s.rate();
        let lag: i64 = snapshot.partitions.iter().map(|p| p.lag.max(0)).sum();
        let linger = s.config.batch_linger_ms as f64 / 1000.0;
        Ok(IngestStatus {
            state: snapshot.state,
            detail: snapshot.detail,
            brokers: s.config.brokers.clone(),
            topic: s.config.topic.clone(),
            instance: s.instance.clone(),
            events_per_second: rate,
            partitions: snapshot.partitions,
            queue_depth: s.queued.load(Ordering::Relaxed).max(0) as u32,
            dead_letters: dead_letters.max(0) as u64,
            estimated_delay_s: estimated_delay(lag, rate, linger),
            events_stored: s.events_stored.load(Ordering::Relaxed),
        })
    }
}

/// Time until an event produced now is queryable: the backlog ahead of it at the current rate,
/// plus one batch linger.
fn estimated_delay(lag: i64, rate: f64, linger_s: f64) -> f64 {
    if lag <= 0 {
        linger_s
    } else {
        lag as f64 / rate.max(1.0) + linger_s
    }
}

/// A partition worker this instance runs.
struct Worker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Result<()>>,
}

async fn supervise(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let meta: Option<Arc<BaseConsumer>> = match shared.consumer_config().create() {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            shared.set_state(IngestState::Down, format!("invalid Kafka settings: {e}"));
            None
        }
    };
    let admin: Option<AdminClient<DefaultClientContext>> = shared.consumer_config().create().ok();
    let mut workers: BTreeMap<i32, Worker> = BTreeMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `Instant::now() - 1 h` would panic on a machine up for less than an hour.
    let mut last_partition_check: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        if last_partition_check.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            match crate::catalogue::ensure_partitions_ahead(&shared.pool).await {
                Ok(_) => last_partition_check = Some(Instant::now()),
                Err(e) => tracing::warn!(error = %e, "cannot create catalogue partitions ahead"),
            }
        }
        reap(&shared, &mut workers).await;
        let alive = match heartbeat(&shared).await {
            Ok(n) => n.max(1),
            Err(e) => {
                tracing::warn!(error = %e, "ingest heartbeat failed");
                continue;
            }
        };
        let Some(meta) = meta.clone() else { continue };
        let partitions = match topic_partitions(&shared, meta.clone(), admin.as_ref()).await {
            Ok(n) => {
                shared.set_state(IngestState::Up, String::new());
                n
            }
            Err(detail) => {
                shared.set_state(IngestState::Down, detail);
                continue;
            }
        };
        let share = partitions.div_ceil(alive as usize);
        // Give up the partitions beyond the fair share (highest first) so newcomers get theirs.
        while workers.len() > share {
            let Some((&p, _)) = workers.iter().next_back() else {
                break;
            };
            if let Some(w) = workers.remove(&p) {
                tracing::info!(partition = p, "releasing partition to rebalance");
                let _ = w.stop.send(true);
                log_exit(p, w.handle.await);
            }
        }
        for p in 0..partitions as i32 {
            if workers.len() >= share {
                break;
            }
            if workers.contains_key(&p) {
                continue;
            }
            match try_own(&shared, p).await {
                Ok(Some(conn)) => {
                    tracing::info!(partition = p, "owning partition");
                    let (wstop, wstopped) = watch::channel(false);
                    let handle = tokio::spawn(partition::run(shared.clone(), p, conn, wstopped));
                    workers.insert(
                        p,
                        Worker {
                            stop: wstop,
                            handle,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = p, error = %e, "cannot claim partition"),
            }
        }
        shared.metrics.owned_partitions.set(workers.len() as i64);
        if let Err(e) = update_lag(&shared, meta, partitions).await {
            tracing::debug!(error = %e, "lag update failed");
        }
    }
    // Shutdown: every worker finishes and commits what it has read, then lets its partition go.
    for w in workers.values() {
        let _ = w.stop.send(true);
    }
    for (p, w) in workers {
        log_exit(p, w.handle.await);
    }
    let _ = sqlx::query("DELETE FROM ingest_instances WHERE id = $1")
        .bind(&shared.instance)
        .execute(&shared.pool)
        .await;
    shared.metrics.owned_partitions.set(0);
    tracing::info!("ingest stopped");
}

fn log_exit(partition: i32, result: std::result::Result<Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => tracing::info!(partition, "partition worker stopped"),
        Ok(Err(e)) => tracing::error!(partition, error = %e, "partition worker failed"),
        Err(e) => tracing::error!(partition, error = %e, "partition worker panicked"),
    }
}

/// Removes workers that ended by themselves (an error); their partitions are claimed again on a
/// later tick, from the committed offset.
async fn reap(shared: &Shared, workers: &mut BTreeMap<i32, Worker>) {
    let done: Vec<i32> = workers
        .iter()
        .filter(|(_, w)| w.handle.is_finished())
        .map(|(&p, _)| p)
        .collect();
    for p in done {
        if let Some(w) = workers.remove(&p) {
            shared.metrics.errors.with_label_values(&["worker"]).inc();
            log_exit(p, w.handle.await);
        }
    }
}

/// Records this instance as alive; returns how many instances are.
async fn heartbeat(shared: &Shared) -> Result<i64> {
    sqlx::query(
        "INSERT INTO ingest_instances (id) VALUES ($1)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(&shared.instance)
    .execute(&shared.pool)
    .await?;
    sqlx::query("DELETE FROM ingest_instances WHERE heartbeat_at < now() - interval '1 hour'")
        .execute(&shared.pool)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM ingest_instances WHERE heartbeat_at > now() - make_interval(secs => $1)",
    )
    .bind(INSTANCE_TIMEOUT_S)
    .fetch_one(&shared.pool)
    .await?)
}

/// The topic's partition count, creating the topic if the broker does not have it.
async fn topic_partitions(
    shared: &Shared,
    meta: Arc<BaseConsumer>,
    admin: Option<&AdminClient<DefaultClientContext>>,
) -> std::result::Result<usize, String> {
    let topic = shared.config.topic.clone();
    let brokers = shared.config.brokers.clone();
    let lookup = {
        let topic = topic.clone();
        move || -> std::result::Result<Option<usize>, String> {
            let md = meta
                .fetch_metadata(Some(&topic), Duration::from_secs(3))
                .map_err(|e| format!("broker {brokers} unreachable: {e}"))?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                return Ok(None);
            };
            if t.error().is_some() || t.partitions().is_empty() {
                return Ok(None);
            }
            Ok(Some(t.partitions().len()))
        }
    };
    let found = tokio::task::spawn_blocking(lookup.clone())
        .await
        .map_err(|e| e.to_string())??;
    if let Some(n) = found {
        return Ok(n);
    }
    let Some(admin) = admin else {
        return Err(format!("topic `{topic}` does not exist"));
    };
    tracing::info!(
        topic,
        partitions = shared.config.partitions,
        "creating topic"
    );
    let new = NewTopic::new(
        &topic,
        shared.config.partitions as i32,
        TopicReplication::Fixed(1),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    if let Err(e) = admin.create_topics([&new], &options).await {
        return Err(format!(
            "topic `{topic}` does not exist and cannot be created: {e}"
        ));
    }
    tokio::task::spawn_blocking(lookup)
        .await
        .map_err(|e| e.to_string())??
        .ok_or_else(|| format!("topic `{topic}` does not exist yet"))
}

/// Claims partition `p` if no other instance holds it: a session advisory lock on a connection
/// of its own, held for as long as this instance ingests the partition.
async fn try_own(shared: &Shared, p: i32) -> Result<Option<PgConnection>> {
    let mut conn = PgConnection::connect_with(&shared.db_options).await?;
    let key = format!("alyx-ingest:{}:{p}", shared.config.topic);
    let owned: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .fetch_one(&mut conn)
        .await?;
    if owned {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

async fn update_lag(shared: &Shared, meta: Arc<BaseConsumer>, partitions: usize) -> Result<()> {
    let topic = shared.config.topic.clone();
    let highs: Vec<i64> = tokio::task::spawn_blocking(move || {
        (0..partitions as i32)
            .map(|p| {
                meta.fetch_watermarks(&topic, p, Duration::from_secs(1))
                    .map_or(-1, |(_, high)| high)
            })
            .collect()
    })
    .await?;
    let rows: Vec<(i32, i64, String)> =
        sqlx::query_as("SELECT partition, next_offset, owner FROM ingest_offsets WHERE topic = $1")
            .bind(&shared.config.topic)
            .fetch_all(&shared.pool)
            .await?;
    let status: Vec<PartitionStatus> = (0..partitions)
        .map(|p| {
            let row = rows.iter().find(|r| r.0 == p as i32);
            let committed = row.map_or(-1, |r| r.1);
            let high = highs.get(p).copied().unwrap_or(-1);
            let lag = if high < 0 {
                -1
            } else {
                (high - committed.max(0)).max(0)
            };
            shared
                .metrics
                .lag
                .with_label_values(&[&p.to_string()])
                .set(lag.max(0));
            PartitionStatus {
                partition: p as u32,
                owner: row.map(|r| r.2.clone()).unwrap_or_default(),
                committed_offset: committed,
                high_watermark: high,
                lag,
            }
        })
        .collect();
    let total_lag: i64 = status.iter().map(|p| p.lag.max(0)).sum();
    shared.metrics.delay_seconds.set(estimated_delay(
        total_lag,
        shared.rate(),
        shared.config.batch_linger_ms as f64 / 1000.0,
    ));
    Shared::locked(&shared.snapshot).partitions = status;
    Ok(())
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Error::Unavailable(format!("kafka: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_backlog_over_rate_plus_linger() {
        assert_eq!(estimated_delay(0, 0.0, 0.2), 0.2);
        assert_eq!(estimated_delay(1000, 500.0, 0.2), 2.2);
        assert_eq!(
            estimated_delay(10, 0.0, 0.0),
            10.0,
            "no rate yet counts as 1 event/s"
        );
    }
}

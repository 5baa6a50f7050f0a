//! One owned partition: recovery of uncommitted chunks, then a reader task (consume, decode)
//! feeding the store loop through a bounded channel.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, watch};

use super::decode::{self, Batch, RawMessage};
use super::state::Shared;
use super::store;
use crate::error::Result;

pub(super) async fn run(
    shared: Arc<Shared>,
    partition: i32,
    mut conn: PgConnection,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    recover(&shared, partition, &mut conn).await?;
    store::prepare(&mut conn).await?;
    let start: i64 = sqlx::query_scalar(
        "INSERT INTO ingest_offsets (topic, partition, next_offset, owner) VALUES ($1, $2, 0, $3)
         ON CONFLICT (topic, partition) DO UPDATE SET owner = excluded.owner
         RETURNING next_offset",
    )
    .bind(&shared.config.topic)
    .bind(partition)
    .bind(&shared.instance)
    .fetch_one(&mut conn)
    .await?;
    let consumer: StreamConsumer = shared.consumer_config().create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&shared.config.topic, partition, Offset::Offset(start))?;
    consumer.assign(&assignment)?;
    tracing::info!(partition, offset = start, "reading partition");

    let (tx, mut rx) = mpsc::channel::<Batch>(shared.config.queue_batches);
    let reader = tokio::spawn(read(shared.clone(), consumer, partition, tx, stop));
    let mut next = start;
    let mut result = Ok(());
    while let Some(batch) = rx.recv().await {
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        shared
            .metrics
            .queue_depth
            .set(shared.queued.load(Ordering::Relaxed));
        match store::commit(&shared, partition, &mut conn, next, batch).await {
            Ok(n) => next = n,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Batches still queued were not committed: they are read again by the next owner.
    let dropped = rx.len() as i64;
    rx.close();
    shared.queued.fetch_sub(dropped, Ordering::Relaxed);
    let _ = reader.await;
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

/// Reads messages into batches (up to `batch_events`, or what arrived within `batch_linger_ms`
/// of the first), decodes them on all cores and queues them for storage, waiting when the queue
/// is full. Ends when told to stop (after queueing what it read) or when the store loop ends
/// (at once, even with nothing left to read: the worker waits for this task before it gives
/// the partition up).
async fn read(
    shared: Arc<Shared>,
    consumer: StreamConsumer,
    partition: i32,
    tx: mpsc::Sender<Batch>,
    mut stop: watch::Receiver<bool>,
) {
    let linger = Duration::from_millis(shared.config.batch_linger_ms);
    let max = shared.config.batch_events;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut messages = Vec::new();
        let first = tokio::select! {
            _ = stop.changed() => return,
            () = tx.closed() => return,
            m = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => m,
        };
        match first {
            Err(_) => continue,
            Ok(Err(e)) => {
                shared.metrics.errors.with_label_values(&["consume"]).inc();
                tracing::warn!(partition, error = %e, "consume failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Ok(Ok(m)) => messages.push(raw(&m)),
        }
        let deadline = tokio::time::Instant::now() + linger;
        while messages.len() < max {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => messages.push(raw(&m)),
                Ok(Err(e)) => {
                    tracing::warn!(partition, error = %e, "consume failed mid-batch");
                    break;
                }
                Err(_) => break,
            }
        }
        let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
        shared.metrics.bytes_consumed.inc_by(bytes as u64);
        let next_offset = messages.last().map_or(0, |m| m.offset + 1);
        let started = Instant::now();
        let Ok((events, dead)) =
            tokio::task::spawn_blocking(move || decode::decode_batch(messages)).await
        else {
            tracing::error!(partition, "decoder panicked; the batch will be read again");
            return;
        };
        shared
            .metrics
            .stage_seconds
            .with_label_values(&["decode"])
            .observe(started.elapsed().as_secs_f64());
        shared.queued.fetch_add(1, Ordering::Relaxed);
        shared
            .metrics
            .queue_depth
            .set(shared.queued.load(Ordering::Relaxed));
        let batch = Batch {
            next_offset,
            events,
            dead,
        };
        if tx.send(batch).await.is_err() {
            shared.queued.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    }
}

fn raw(m: &rdkafka::message::BorrowedMessage<'_>) -> RawMessage {
    RawMessage {
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

/// Removes chunks this partition wrote to the dataset but never committed to the catalogue (a
/// crash between the two), so that reading the partition again stores each event once.
async fn recover(shared: &Arc<Shared>, partition: i32, conn: &mut PgConnection) -> Result<()> {
    let prefix = store::origin_prefix(&shared.config.topic, partition);
    let written: Vec<i32> = {
        let dataset = Shared::locked(&shared.dataset);
        let fresh = alyx_store::Dataset::open(dataset.dir())?;
        fresh
            .manifest()
            .chunks
            .iter()
            .filter(|c| c.origin.as_deref().is_some_and(|o| o.starts_with(&prefix)))
            .map(|c| c.id as i32)
            .collect()
    };
    if written.is_empty() {
        return Ok(());
    }
    let committed: Vec<i32> = sqlx::query_scalar(
        "SELECT chunk_id FROM chunks WHERE dataset_id = $1 AND chunk_id = ANY($2)",
    )
    .bind(shared.dataset_id)
    .bind(&written)
    .fetch_all(&mut *conn)
    .await?;
    let orphans: Vec<u32> = written
        .iter()
        .filter(|id| !committed.contains(id))
        .map(|&id| id as u32)
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    let shared2 = shared.clone();
    let removed = tokio::task::spawn_blocking(move || {
        store::with_dataset(&shared2, |d| d.remove_chunks(&orphans))
    })
    .await??;
    tracing::warn!(
        partition,
        chunks = removed,
        "removed chunks written but never committed (crash recovery)"
    );
    Ok(())
}

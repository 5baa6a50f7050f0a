//! Storing a decoded batch: skip events the catalogue already has, write the Parquet chunk
//! (durable when this returns), then in one transaction on the partition's own connection:
//! the chunk's row, the catalogue rows (COPY), the runs, the dead letters and the next offset
//! (fenced: it must still be the offset this owner read from), and a notification for live
//! subscribers.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alyx_store::Dataset;
use alyx_store::Error as StoreError;
use sqlx::{Connection, PgConnection};

use super::decode::Batch;
use super::state::Shared;
use crate::error::{Error, Result};

/// The `origin` of the chunks a partition writes starts with this.
pub(super) fn origin_prefix(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}@")
}

/// Per-connection set-up: the staging table COPY writes into.
pub(super) async fn prepare(conn: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
             time_ns bigint, run integer, event_number bigint, dataset_id integer,
             event_id bigint, chunk_id integer, system text, sqrt_s_gev double precision,
             vertex_x_cm double precision, vertex_y_cm double precision,
             vertex_z_cm double precision, n_tracks integer, n_hits integer, n_muons integer,
             n_electrons integer, n_jets integer, trigger_bits bigint, flags text,
             produced_ms bigint
         ) ON COMMIT DELETE ROWS",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `f` on the ingest dataset, serialised with this process's other writers and waiting
/// (up to a minute) while another process holds the dataset's lock.
pub(super) fn with_dataset<T>(
    shared: &Shared,
    mut f: impl FnMut(&mut Dataset) -> alyx_store::Result<T>,
) -> Result<T> {
    let mut dataset = Shared::locked(&shared.dataset);
    let mut wait = Duration::from_millis(20);
    let started = Instant::now();
    loop {
        match f(&mut dataset) {
            Err(StoreError::Locked { .. }) if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            other => return other.map_err(Error::from),
        }
    }
}

/// What the blocking part of a commit prepares: the chunk written and the rows to COPY.
struct Written {
    chunk_id: i32,
    first_event_id: i64,
    last_event_id: i64,
    event_count: i32,
    run_min: i32,
    run_max: i32,
    time_min_ns: i64,
    time_max_ns: i64,
    bytes: i64,
    files_json: String,
    origin: String,
    copy_rows: String,
    runs: BTreeMap<u32, RunRow>,
    produced_ms: Vec<i64>,
}

struct RunRow {
    system: String,
    sqrt_s_gev: f64,
    first_ns: i64,
    last_ns: i64,
    count: i64,
}

/// Stores `batch`; returns the partition's next offset.
pub(super) async fn commit(
    shared: &Arc<Shared>,
    partition: i32,
    conn: &mut PgConnection,
    expected_next: i64,
    batch: Batch,
) -> Result<i64> {
    let Batch {
        next_offset,
        mut events,
        dead,
    } = batch;
    let m = &shared.metrics;
    let stage = |name: &str, since: Instant| {
        m.stage_seconds
            .with_label_values(&[name])
            .observe(since.elapsed().as_secs_f64());
    };

    // 1. Events the catalogue (or this batch) already has are replays or re-sends: skip them.
    // An event is (run, event_number), whatever time a re-send carries: the catalogue is
    // searched over the batch's times and everything its runs already span (an event of a run
    // lies between the run's first and last time, which are kept in the same transaction).
    let started = Instant::now();
    if !events.is_empty() {
        let runs: Vec<i32> = events.iter().map(|d| d.event.header.run as i32).collect();
        let numbers: Vec<i64> = events
            .iter()
            .map(|d| d.event.header.event_number as i64)
            .collect();
        let times = events.iter().map(|d| d.event.header.timestamp_ns);
        let (lo, hi) = (times.clone().min().unwrap_or(0), times.max().unwrap_or(0));
        ensure_days(shared, conn, lo, hi).await;
        let existing: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT run, event_number FROM events
             WHERE event_time BETWEEN
                   (SELECT least(min(first_time), to_timestamp($3 / 1e9::float8)) FROM runs
                    WHERE run = ANY($1))
               AND (SELECT greatest(max(last_time), to_timestamp($4 / 1e9::float8)) FROM runs
                    WHERE run = ANY($1))
               AND (run, event_number) IN (SELECT * FROM unnest($1::integer[], $2::bigint[]))",
        )
        .bind(&runs)
        .bind(&numbers)
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *conn)
        .await?;
        let mut seen: HashSet<(i32, i64)> = existing.into_iter().collect();
        let before = events.len();
        events.retain(|d| {
            seen.insert((
                d.event.header.run as i32,
                d.event.header.event_number as i64,
            ))
        });
        m.duplicates.inc_by((before - events.len()) as u64);
    }
    stage("dedup", started);

    // 2. The Parquet chunk, durable before anything refers to it.
    let started = Instant::now();
    let written = if events.is_empty() {
        None
    } else {
        let first_offset = events.first().map_or(0, |d| d.offset);
        let origin = format!(
            "{}{first_offset}-{}",
            origin_prefix(&shared.config.topic, partition),
            next_offset - 1
        );
        // Ids come from PostgreSQL, so partitions encode their chunks in parallel.
        let (first_id, chunk_id): (i64, i32) = sqlx::query_as(
            "UPDATE datasets SET next_event_id = next_event_id + $2,
                 next_chunk_id = next_chunk_id + 1
             WHERE id = $1 RETURNING next_event_id - $2, next_chunk_id - 1",
        )
        .bind(shared.dataset_id)
        .bind(events.len() as i64)
        .fetch_one(&mut *conn)
        .await?;
        let shared2 = shared.clone();
        Some(
            tokio::task::spawn_blocking(move || {
                write_chunk(&shared2, events, origin, first_id as u64, chunk_id as u32)
            })
            .await??,
        )
    };
    stage("write", started);

    // 3. One transaction: chunk row, catalogue rows, runs, dead letters, offset, notification.
    let started = Instant::now();
    let result = async {
        let mut tx = conn.begin().await?;
        if let Some(w) = &written {
            let copying = Instant::now();
            sqlx::query(
                "INSERT INTO chunks (dataset_id, chunk_id, first_event_id, event_count, run_min,
                     run_max, time_min, time_max, bytes, files, origin)
                 VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7 / 1e9::float8),
                     to_timestamp($8 / 1e9::float8), $9, $10::jsonb, $11)",
            )
            .bind(shared.dataset_id)
            .bind(w.chunk_id)
            .bind(w.first_event_id)
            .bind(w.event_count)
            .bind(w.run_min)
            .bind(w.run_max)
            .bind(w.time_min_ns)
            .bind(w.time_max_ns)
            .bind(w.bytes)
            .bind(&w.files_json)
            .bind(&w.origin)
            .execute(&mut *tx)
            .await?;
            let mut copy = tx
                .copy_in_raw(
                    "COPY ingest_staging (time_ns, run, event_number, dataset_id, event_id,
                         chunk_id, system, sqrt_s_gev, vertex_x_cm, vertex_y_cm, vertex_z_cm,
                         n_tracks, n_hits, n_muons, n_electrons, n_jets, trigger_bits, flags,
                         produced_ms) FROM STDIN",
                )
                .await?;
            copy.send(w.copy_rows.as_bytes()).await?;
            copy.finish().await?;
            sqlx::query(
                "INSERT INTO events (event_time, run, event_number, time_ns, dataset_id, event_id,
                     chunk_id, system, sqrt_s_gev, vertex_x_cm, vertex_y_cm, vertex_z_cm,
                     n_tracks, n_hits, n_muons, n_electrons, n_jets, trigger_bits, flags,
                     produced_at)
                 SELECT to_timestamp(time_ns / 1e9::float8), run, event_number, time_ns,
                     dataset_id, event_id, chunk_id, system, sqrt_s_gev, vertex_x_cm,
                     vertex_y_cm, vertex_z_cm, n_tracks, n_hits, n_muons, n_electrons, n_jets,
                     trigger_bits, flags, to_timestamp(produced_ms / 1e3::float8)
                 FROM ingest_staging
                 ON CONFLICT DO NOTHING",
            )
            .execute(&mut *tx)
            .await?;
            let runs: Vec<i32> = w.runs.keys().map(|&r| r as i32).collect();
            let systems: Vec<String> = w.runs.values().map(|r| r.system.clone()).collect();
            let sqrt_s: Vec<f64> = w.runs.values().map(|r| r.sqrt_s_gev).collect();
            let firsts: Vec<i64> = w.runs.values().map(|r| r.first_ns).collect();
            let lasts: Vec<i64> = w.runs.values().map(|r| r.last_ns).collect();
            let counts: Vec<i64> = w.runs.values().map(|r| r.count).collect();
            sqlx::query(
                "INSERT INTO runs (run, system, sqrt_s_gev, first_time, last_time, event_count)
                 SELECT r, s, e, to_timestamp(f / 1e9::float8), to_timestamp(l / 1e9::float8), n
                 FROM unnest($1::integer[], $2::text[], $3::float8[], $4::bigint[], $5::bigint[],
                             $6::bigint[]) AS u(r, s, e, f, l, n)
                 ON CONFLICT (run) DO UPDATE SET
                     first_time = least(runs.first_time, excluded.first_time),
                     last_time = greatest(runs.last_time, excluded.last_time),
                     event_count = runs.event_count + excluded.event_count",
            )
            .bind(&runs)
            .bind(&systems)
            .bind(&sqrt_s)
            .bind(&firsts)
            .bind(&lasts)
            .bind(&counts)
            .execute(&mut *tx)
            .await?;
            stage("copy", copying);
        }
        if !dead.is_empty() {
            let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
            let reasons: Vec<String> = dead.iter().map(|d| d.reason.clone()).collect();
            let payloads: Vec<Vec<u8>> = dead.iter().map(|d| d.payload.clone()).collect();
            sqlx::query(
                "INSERT INTO dead_letters (topic, partition, kafka_offset, reason, payload)
                 SELECT $1, $2, o, r, p FROM unnest($3::bigint[], $4::text[], $5::bytea[]) AS u(o, r, p)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&shared.config.topic)
            .bind(partition)
            .bind(&offsets)
            .bind(&reasons)
            .bind(&payloads)
            .execute(&mut *tx)
            .await?;
        }
        let fenced = sqlx::query(
            "UPDATE ingest_offsets SET next_offset = $3, owner = $4, updated_at = now()
             WHERE topic = $1 AND partition = $2 AND next_offset = $5",
        )
        .bind(&shared.config.topic)
        .bind(partition)
        .bind(next_offset)
        .bind(&shared.instance)
        .bind(expected_next)
        .execute(&mut *tx)
        .await?;
        if fenced.rows_affected() != 1 {
            return Err(Error::Internal(format!(
                "partition {partition}: the committed offset moved under this instance (another owner); giving the partition up"
            )));
        }
        if let Some(w) = &written {
            sqlx::query("SELECT pg_notify('alyx_events', $1)")
                .bind(format!("{} {} {}", shared.dataset_id, w.first_event_id, w.last_event_id))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = result {
        m.errors.with_label_values(&["commit"]).inc();
        // A commit can fail after PostgreSQL committed it (the connection dropped before the
        // answer came): ask the catalogue, on another connection, before touching the chunk.
        let Some(w) = &written else {
            return Err(e);
        };
        match chunk_committed(shared, w.chunk_id).await {
            Some(true) => {
                tracing::warn!(partition, chunk = w.chunk_id, error = %e,
                    "the commit reported an error but landed; the chunk is kept");
            }
            Some(false) => {
                // Not in the catalogue: take it out of the dataset again (recovery would do
                // it when the partition is next owned; doing it now keeps the store tidy).
                let shared2 = shared.clone();
                let id = w.chunk_id as u32;
                let _ = tokio::task::spawn_blocking(move || {
                    with_dataset(&shared2, |d| d.remove_chunks(&[id]))
                })
                .await;
                return Err(e);
            }
            None => {
                tracing::warn!(
                    partition,
                    chunk = w.chunk_id,
                    "cannot tell whether the commit landed; recovery decides when the partition is next owned"
                );
                return Err(e);
            }
        }
    }
    stage("commit", started);

    m.batches.inc();
    m.dead_letters.inc_by(dead.len() as u64);
    if let Some(w) = &written {
        m.events_stored.inc_by(w.event_count as u64);
        shared.record_stored(w.event_count as u64);
        let now_ms = now_ms();
        for &p in &w.produced_ms {
            m.latency_seconds
                .observe((now_ms - p).max(0) as f64 / 1000.0);
        }
    }
    for d in &dead {
        tracing::warn!(partition, offset = d.offset, reason = %d.reason, "dead letter");
    }
    Ok(next_offset)
}

/// Whether the catalogue lists chunk `chunk_id` (so its transaction committed); None when the
/// catalogue cannot be asked.
async fn chunk_committed(shared: &Shared, chunk_id: i32) -> Option<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM chunks WHERE dataset_id = $1 AND chunk_id = $2)",
    )
    .bind(shared.dataset_id)
    .bind(chunk_id)
    .fetch_one(&shared.pool)
    .await
    .ok()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Makes sure the catalogue has daily partitions for `[lo_ns, hi_ns]`. Failures only log: rows
/// then land in the default partition, which is still correct.
async fn ensure_days(shared: &Shared, conn: &mut PgConnection, lo_ns: i64, hi_ns: i64) {
    const DAY_NS: i64 = 86_400_000_000_000;
    let (lo, hi) = (lo_ns.div_euclid(DAY_NS), hi_ns.div_euclid(DAY_NS));
    if lo_ns <= 0 || hi - lo > 62 {
        return;
    }
    {
        let known = Shared::locked(&shared.known_days);
        if (lo..=hi).all(|d| known.contains(&d)) {
            return;
        }
    }
    let created = sqlx::query_scalar::<_, i32>(
        "SELECT alyx_ensure_event_partitions(
             (to_timestamp($1 / 1e9::float8) AT TIME ZONE 'UTC')::date,
             (to_timestamp($2 / 1e9::float8) AT TIME ZONE 'UTC')::date)",
    )
    .bind(lo_ns)
    .bind(hi_ns)
    .fetch_one(&mut *conn)
    .await;
    match created {
        Ok(n) => {
            if n > 0 {
                tracing::info!(partitions = n, "created catalogue partitions");
            }
            Shared::locked(&shared.known_days).extend(lo..=hi);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot create catalogue partitions; rows go to events_default")
        }
    }
}

/// Writes the events as chunk `chunk_id` (ids from `first_id`), lists it in the manifest and
/// prepares its catalogue rows.
fn write_chunk(
    shared: &Shared,
    decoded: Vec<super::decode::Decoded>,
    origin: String,
    first_id: u64,
    chunk_id: u32,
) -> Result<Written> {
    let produced_ms: Vec<i64> = decoded.iter().filter_map(|d| d.timestamp_ms).collect();
    let stamps: Vec<Option<i64>> = decoded.iter().map(|d| d.timestamp_ms).collect();
    let events: Vec<alyx_core::CollisionEvent> = decoded.into_iter().map(|d| d.event).collect();
    let dataset = Shared::locked(&shared.dataset).clone();
    let written = dataset.write_chunk(&events, first_id, chunk_id, Some(&origin))?;
    let chunk = with_dataset(shared, |d| d.publish(written.clone()).cloned())?;
    let mut copy_rows = String::with_capacity(events.len() * 160);
    let mut runs: BTreeMap<u32, RunRow> = BTreeMap::new();
    for (i, (event, produced)) in events.iter().zip(&stamps).enumerate() {
        let h = &event.header;
        let _ = writeln!(
            copy_rows,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            h.timestamp_ns,
            h.run,
            h.event_number as i64,
            shared.dataset_id,
            chunk.first_event_id + i as u64,
            chunk.id,
            h.system.as_str(),
            float(h.sqrt_s_gev),
            float(h.vertex_cm[0]),
            float(h.vertex_cm[1]),
            float(h.vertex_cm[2]),
            event.tracks.len(),
            event.hits.len(),
            event.muons.len(),
            event.electrons.len(),
            event.jets.len(),
            h.trigger_bits as i64,
            // Events that break a rule are dead letters: stored ones have no flags.
            "",
            produced.map_or_else(|| "\\N".to_owned(), |p| p.to_string()),
        );
        let run = runs.entry(h.run).or_insert_with(|| RunRow {
            system: h.system.as_str().to_owned(),
            sqrt_s_gev: h.sqrt_s_gev,
            first_ns: h.timestamp_ns,
            last_ns: h.timestamp_ns,
            count: 0,
        });
        run.first_ns = run.first_ns.min(h.timestamp_ns);
        run.last_ns = run.last_ns.max(h.timestamp_ns);
        run.count += 1;
    }
    let files_json = serde_json::to_string(&chunk.files)
        .map_err(|e| Error::Internal(format!("cannot encode chunk files: {e}")))?;
    Ok(Written {
        chunk_id: chunk.id as i32,
        first_event_id: chunk.first_event_id as i64,
        last_event_id: (chunk.first_event_id + chunk.event_count) as i64 - 1,
        event_count: chunk.event_count as i32,
        run_min: chunk.run_min as i32,
        run_max: chunk.run_max as i32,
        time_min_ns: chunk.time_min_ns,
        time_max_ns: chunk.time_max_ns,
        bytes: chunk.files.values().map(|f| f.bytes).sum::<u64>() as i64,
        files_json,
        origin,
        copy_rows,
        runs,
        produced_ms,
    })
}

/// A float in COPY's text format (PostgreSQL reads NaN and Infinity).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_in_copy_text_format() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(-f64::INFINITY), "-Infinity");
        assert_eq!(float(13600.0), "13600");
    }
}

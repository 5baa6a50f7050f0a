//! The PostgreSQL side of alyxd: the pool, migrations, and the catalogue's reads (datasets,
//! event pages, storage status). Ingest's writes live with ingest (`ingest::store`).

use std::str::FromStr;
use std::time::Duration;

use alyx_core::CollisionSystem;
use alyx_core::summary::{DatasetInfo, EventSummary};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;
use crate::error::{Error, Result};

/// The schema, from `migrations/` at the repository root.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connection options from the configuration (URL and statement timeout).
pub fn connect_options(config: &Config) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(&config.database_url).map_err(|e| {
        Error::InvalidArgument(format!(
            "invalid database URL `{}`: {e}",
            config.database_url
        ))
    })?;
    Ok(if config.statement_timeout_ms > 0 {
        options.options([("statement_timeout", config.statement_timeout_ms.to_string())])
    } else {
        options
    })
}

/// Opens the pool (waiting up to 10 s for the server) and brings the schema up to date.
pub async fn connect(config: &Config) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(config.database_pool.max(2))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(connect_options(config)?)
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact(&config.database_url)
            ))
        })?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Opens the pool users' PostgreSQL-engine queries run on: read-only transactions, the
/// statement timeout, and (when configured) the query role, which reads the catalogue only.
/// Queries are checked ASTs that can only SELECT; this is the second wall, should the first
/// ever have a hole.
pub async fn connect_queries(config: &Config) -> Result<PgPool> {
    let options = connect_options(config)?.options([("default_transaction_read_only", "on")]);
    let role = config.query_role.clone();
    let pool = PgPoolOptions::new()
        .max_connections(config.query_pool.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let role = role.clone();
            Box::pin(async move {
                if !role.is_empty() {
                    // The name is checked when the configuration loads (lower case, digits,
                    // `_`), and quoted as an identifier here.
                    sqlx::query(&format!("SET ROLE \"{role}\""))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot open the query pool on PostgreSQL at {} as role `{}`: {e}; create the role (see migrations/README.md) or set query_role",
                redact(&config.database_url),
                config.query_role
            ))
        })?;
    Ok(pool)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The id of dataset `name`, creating its row with `source` if needed.
pub async fn dataset_id(pool: &PgPool, name: &str, source: &str) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "INSERT INTO datasets (name, source) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
    )
    .bind(name)
    .bind(source)
    .fetch_one(pool)
    .await?)
}

pub async fn find_dataset(pool: &PgPool, name: &str) -> Result<i32> {
    sqlx::query_scalar("SELECT id FROM datasets WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no dataset named `{name}` on this backend")))
}

#[derive(sqlx::FromRow)]
struct DatasetRow {
    name: String,
    source: String,
    events: i64,
    chunks: i64,
    bytes: i64,
    run_min: Option<i32>,
    run_max: Option<i32>,
    time_min_ns: Option<i64>,
    time_max_ns: Option<i64>,
}

pub async fn list_datasets(pool: &PgPool) -> Result<Vec<DatasetInfo>> {
    let rows: Vec<DatasetRow> = sqlx::query_as(
        "SELECT d.name, d.source,
                coalesce(sum(c.event_count), 0)::bigint AS events,
                count(c.chunk_id) AS chunks,
                coalesce(sum(c.bytes), 0)::bigint AS bytes,
                min(c.run_min) AS run_min, max(c.run_max) AS run_max,
                (extract(epoch FROM min(c.time_min)) * 1e9)::bigint AS time_min_ns,
                (extract(epoch FROM max(c.time_max)) * 1e9)::bigint AS time_max_ns
         FROM datasets d LEFT JOIN chunks c ON c.dataset_id = d.id
         GROUP BY d.id ORDER BY d.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DatasetInfo {
            name: r.name,
            source: r.source,
            event_count: r.events.max(0) as u64,
            chunk_count: u32::try_from(r.chunks).unwrap_or(u32::MAX),
            bytes: r.bytes.max(0) as u64,
            run_range: r.run_min.zip(r.run_max).map(|(a, b)| (a as u32, b as u32)),
            time_range_ns: r.time_min_ns.zip(r.time_max_ns),
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    event_id: i64,
    run: i32,
    event_number: i64,
    time_ns: i64,
    system: String,
    sqrt_s_gev: f64,
    vertex_x_cm: f64,
    vertex_y_cm: f64,
    vertex_z_cm: f64,
    n_tracks: i32,
    n_hits: i32,
    n_muons: i32,
    n_electrons: i32,
    n_jets: i32,
    trigger_bits: i64,
    chunk_id: i32,
    flags: String,
}

/// The catalogue's per-event columns that queries read: (as PostgreSQL's `events` table holds
/// it, as queries name it — the columnar store's name). The one list the PostgreSQL engine's
/// `events` view and the event pages are made from; tests hold it to the migration and to the
/// query checker's `CATALOGUE_COLUMNS`.
pub const COLUMNS: [(&str, &str); 16] = [
    ("event_id", "event_id"),
    ("run", "run"),
    ("event_number", "event_number"),
    ("time_ns", "timestamp_ns"),
    ("system", "system"),
    ("sqrt_s_gev", "sqrt_s_gev"),
    ("vertex_x_cm", "vx"),
    ("vertex_y_cm", "vy"),
    ("vertex_z_cm", "vz"),
    ("trigger_bits", "trigger"),
    ("n_tracks", "n_tracks"),
    ("n_hits", "n_hits"),
    ("n_muons", "n_muons"),
    ("n_electrons", "n_electrons"),
    ("n_jets", "n_jets"),
    ("flags", "flags"),
];

/// `COLUMNS` as PostgreSQL names them, and the chunk that holds the event: a page's rows.
fn summary_columns() -> String {
    let mut list: Vec<&str> = COLUMNS.iter().map(|(pg, _)| *pg).collect();
    list.push("chunk_id");
    list.join(", ")
}

impl SummaryRow {
    fn into_summary(self, dataset: &str) -> EventSummary {
        EventSummary {
            dataset: dataset.to_owned(),
            event_id: self.event_id as u64,
            run: self.run as u32,
            event_number: self.event_number as u64,
            timestamp_ns: self.time_ns,
            system: CollisionSystem::parse(&self.system).unwrap_or(CollisionSystem::Unknown),
            sqrt_s_gev: self.sqrt_s_gev,
            vertex_cm: [self.vertex_x_cm, self.vertex_y_cm, self.vertex_z_cm],
            n_tracks: self.n_tracks as u32,
            n_hits: self.n_hits as u32,
            n_muons: self.n_muons as u32,
            n_electrons: self.n_electrons as u32,
            n_jets: self.n_jets as u32,
            trigger_bits: self.trigger_bits as u64,
            chunk: self.chunk_id as u32,
            flags: self.flags,
        }
    }
}

/// A page of a dataset's catalogue.
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// The event id to continue after; `None` on the last page.
    pub next_after: Option<u64>,
    pub total: u64,
}

/// Events of `dataset` (of `run`, if given) with ids after `after`, in id order.
pub async fn list_events(
    pool: &PgPool,
    dataset: &str,
    run: Option<u32>,
    after: Option<u64>,
    limit: u32,
) -> Result<EventPage> {
    let id = find_dataset(pool, dataset).await?;
    let run = run.map(|r| r as i32);
    // No event id is above i64::MAX: a token beyond it pages past the end, never back to 0.
    let after = after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {} FROM events
         WHERE dataset_id = $1 AND event_id > $2 AND ($3::integer IS NULL OR run = $3)
         ORDER BY event_id LIMIT $4",
        summary_columns()
    ))
    .bind(id)
    .bind(after)
    .bind(run)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE dataset_id = $1 AND ($2::integer IS NULL OR run = $2)",
    )
    .bind(id)
    .bind(run)
    .fetch_one(pool)
    .await?;
    let mut events: Vec<EventSummary> = rows.into_iter().map(|r| r.into_summary(dataset)).collect();
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    Ok(EventPage {
        next_after: if more {
            events.last().map(|e| e.event_id)
        } else {
            None
        },
        events,
        total: total.max(0) as u64,
    })
}

/// The catalogue rows of `dataset`'s events with ids in `first..=last`.
pub async fn summaries(
    pool: &PgPool,
    dataset_id: i32,
    first: u64,
    last: u64,
) -> Result<Vec<EventSummary>> {
    let name: String = sqlx::query_scalar("SELECT name FROM datasets WHERE id = $1")
        .bind(dataset_id)
        .fetch_one(pool)
        .await?;
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "SELECT {} FROM events
         WHERE dataset_id = $1 AND event_id BETWEEN $2 AND $3 ORDER BY event_id",
        summary_columns()
    ))
    .bind(dataset_id)
    .bind(first as i64)
    .bind(last as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_summary(&name)).collect())
}

/// One event's catalogue row.
pub async fn summary(pool: &PgPool, dataset: &str, event_id: u64) -> Result<EventSummary> {
    let id = find_dataset(pool, dataset).await?;
    summaries(pool, id, event_id, event_id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(format!("no event {event_id} in dataset `{dataset}`")))
}

/// Storage totals per dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetStorage {
    pub name: String,
    pub chunks: u32,
    pub bytes: u64,
    pub catalogue_rows: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StorageStatus {
    pub datasets: Vec<DatasetStorage>,
    pub catalogue_rows: u64,
    pub catalogue_partitions: u32,
}

pub async fn storage_status(pool: &PgPool) -> Result<StorageStatus> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT d.name,
                (SELECT count(*) FROM chunks c WHERE c.dataset_id = d.id),
                (SELECT coalesce(sum(bytes), 0)::bigint FROM chunks c WHERE c.dataset_id = d.id),
                (SELECT count(*) FROM events e WHERE e.dataset_id = d.id)
         FROM datasets d ORDER BY d.name",
    )
    .fetch_all(pool)
    .await?;
    let partitions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
            .fetch_one(pool)
            .await?;
    let datasets: Vec<DatasetStorage> = rows
        .into_iter()
        .map(|(name, chunks, bytes, rows)| DatasetStorage {
            name,
            chunks: chunks as u32,
            bytes: bytes as u64,
            catalogue_rows: rows as u64,
        })
        .collect();
    Ok(StorageStatus {
        catalogue_rows: datasets.iter().map(|d| d.catalogue_rows).sum(),
        datasets,
        catalogue_partitions: partitions as u32,
    })
}

/// Creates the catalogue's daily partitions from yesterday to a week ahead; returns how many
/// were new.
pub async fn ensure_partitions_ahead(pool: &PgPool) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "SELECT alyx_ensure_event_partitions(
             (now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7)",
    )
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://alyx:secret@db:5432/alyx"),
            "postgres://alyx:***@db:5432/alyx"
        );
        assert_eq!(redact("postgres://db/alyx"), "postgres://db/alyx");
    }

    #[test]
    fn the_columns_queries_read_are_the_ones_the_checker_knows() {
        let names = COLUMNS.map(|(_, name)| name);
        assert_eq!(names, alyx_query::check::CATALOGUE_COLUMNS);
    }

    /// The list agrees with the migrated schema: every column exists in `events`.
    #[sqlx::test(migrations = false)]
    async fn the_columns_queries_read_exist_in_the_migrated_schema(pool: PgPool) {
        MIGRATOR.run(&pool).await.expect("migrate");
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'events'",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        for (pg, _) in COLUMNS
            .iter()
            .chain(&[("chunk_id", ""), ("event_time", "")])
        {
            assert!(
                present.iter().any(|c| c == pg),
                "no column `{pg}` in {present:?}"
            );
        }
    }
}

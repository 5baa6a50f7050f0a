//! The three query engines behind QueryService: local (polars over the Parquet chunks in the
//! data directory), PostgreSQL (the event catalogue) and Spark (Spark Connect, over the same
//! chunks). Each takes a query that passed `check` for it, runs it with every result column cast
//! to its ALYX type, and returns a polars frame — the same frame for the same query on every
//! engine.

use alyx_query::{self as query, Checked, Engine, Query, Type, plan, print};
use alyx_store::{DataStore, Dataset, Table};
use polars::prelude::*;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::cache::ResultCache;
use crate::catalogue;
use crate::error::{Error, Result};
use crate::grpc::spark::SparkSession;

/// Where the engines find their data and services.
#[derive(Clone)]
pub struct Engines {
    pub store: DataStore,
    /// The catalogue (the PostgreSQL engine); `None` without a database.
    pub pool: Option<PgPool>,
    /// Where users' queries on the PostgreSQL engine run: read-only connections as a role that
    /// reads the catalogue only (`catalogue::connect_queries`); `None`: on `pool`.
    pub queries: Option<PgPool>,
    /// Spark Connect (`sc://host:port`); `None` when no cluster is configured.
    pub spark_url: Option<String>,
    /// Catalogue (PostgreSQL) results, shared by concurrent and repeated identical queries.
    pub cache: Arc<ResultCache>,
    /// Catalogue ids of dataset names (a name keeps its id).
    dataset_ids: Arc<Mutex<HashMap<String, i32>>>,
}

impl Engines {
    pub fn new(
        store: DataStore,
        pool: Option<PgPool>,
        spark_url: Option<String>,
        cache: Arc<ResultCache>,
    ) -> Self {
        Self {
            store,
            pool,
            queries: None,
            spark_url,
            cache,
            dataset_ids: Arc::default(),
        }
    }

    fn pool(&self) -> Result<&PgPool> {
        self.pool.as_ref().ok_or_else(|| {
            Error::Unavailable("the PostgreSQL engine needs alyxd's database".into())
        })
    }

    /// The pool users' queries run on.
    fn query_pool(&self) -> Result<&PgPool> {
        match &self.queries {
            Some(queries) => Ok(queries),
            None => self.pool(),
        }
    }

    /// Runs a user's `sql` on the query pool; should the caller stop waiting (its client left),
    /// the statement is cancelled on PostgreSQL rather than left running to the statement
    /// timeout, holding one of the pool's few connections.
    async fn fetch_cancellable(&self, sql: &str) -> Result<Vec<PgRow>> {
        let mut conn = self.query_pool()?.acquire().await?;
        let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?;
        let mut running = Running {
            conn: Some(conn),
            pid,
            admin: self.pool()?.clone(),
        };
        let rows = match running.conn.as_deref_mut() {
            Some(conn) => sqlx::query(sql).fetch_all(conn).await,
            None => return Err(Error::Internal("the query's connection is gone".into())),
        };
        // Done: the connection goes back to the pool with nothing to cancel.
        drop(running.conn.take());
        rows.map_err(|e| match e {
            sqlx::Error::Database(db) => {
                Error::InvalidArgument(format!("postgres: {}", db.message()))
            }
            other => Error::Database(other),
        })
    }

    /// The catalogue id of `dataset`.
    async fn dataset_id(&self, pool: &PgPool, dataset: &str) -> Result<i32> {
        let known = self
            .dataset_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(dataset)
            .copied();
        if let Some(id) = known {
            return Ok(id);
        }
        let id: Option<i32> = sqlx::query_scalar("SELECT id FROM datasets WHERE name = $1")
            .bind(dataset)
            .fetch_optional(pool)
            .await?;
        let id =
            id.ok_or_else(|| Error::NotFound(format!("no dataset `{dataset}` in the catalogue")))?;
        self.dataset_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dataset.to_owned(), id);
        Ok(id)
    }

    fn dataset(&self, name: &str) -> Result<Dataset> {
        self.store.dataset(name).map_err(|e| match e {
            alyx_store::Error::NotFound(_) | alyx_store::Error::NotADataset { .. } => {
                Error::NotFound(format!("no dataset `{name}`"))
            }
            other => Error::Store(other),
        })
    }

    /// The chunks of `dataset` holding catalogue events that match `filter` (a condition on
    /// the catalogue's `events` columns, built into a query and checked like any other).
    pub async fn chunks_matching(
        &self,
        dataset: &str,
        filter: &CatalogueFilter,
    ) -> Result<Vec<u32>> {
        let pool = self.pool.as_ref().ok_or_else(|| {
            Error::Unavailable("a catalogue filter needs alyxd's database".into())
        })?;
        let sql = postgres_sql(self.dataset_id(pool, dataset).await?, &filter.0);
        let rows = self.fetch_cancellable(&sql).await?;
        Ok(rows
            .iter()
            .filter_map(|r| u32::try_from(r.try_get::<i32, _>(0).ok()?).ok())
            .collect())
    }

    /// Runs `checked` (a checked query, or a plan around one) on the engine it was checked for,
    /// over the chunks `chunks` only when given (local and Spark).
    pub async fn run(
        &self,
        dataset: &str,
        checked: &Checked,
        user: &str,
        chunks: Option<&[u32]>,
    ) -> Result<DataFrame> {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "query",
            engine = checked.engine().name(),
            dataset,
            chunks = chunks.map_or(-1, |c| c.len() as i64),
            rows = tracing::field::Empty,
        );
        let df = self
            .run_traced(dataset, checked, user, chunks)
            .instrument(span.clone())
            .await?;
        span.record("rows", df.height() as i64);
        Ok(df)
    }

    async fn run_traced(
        &self,
        dataset: &str,
        checked: &Checked,
        user: &str,
        chunks: Option<&[u32]>,
    ) -> Result<DataFrame> {
        let chunks_owned = chunks.map(<[u32]>::to_vec);
        // No chunk to read: Spark cannot make a view of no files, and the answer over empty
        // tables is the same anywhere.
        let local;
        let checked = if checked.engine() == Engine::Spark && chunks.is_some_and(<[u32]>::is_empty)
        {
            local = checked
                .recheck(Engine::Local)
                .map_err(|d| Error::InvalidArgument(query::invalid_query(&d).to_string()))?;
            &local
        } else {
            checked
        };
        let typed = plan::typed(checked);
        match checked.engine() {
            Engine::Local => {
                let ds = self.dataset(dataset)?;
                tokio::task::spawn_blocking(move || {
                    Ok(query::run_local_chunks(
                        &ds,
                        &typed,
                        chunks_owned.as_deref(),
                    )?)
                })
                .await?
            }
            Engine::Spark => {
                let ds = self.dataset(dataset)?;
                let url = self.spark_url.as_deref().ok_or_else(|| {
                    Error::Unavailable("no Spark cluster is configured (ALYXD_SPARK_URL)".into())
                })?;
                let mut session = SparkSession::connect(url, user).await?;
                let _release = session.release_on_drop();
                spark_run(&mut session, &ds, &typed, chunks, None).await
            }
            Engine::Postgres => {
                let pool = self.pool()?;
                let id = self.dataset_id(pool, dataset).await?;
                let sql = postgres_sql(id, &typed);
                let columns = typed.columns();
                let key = format!("{sql}\n{columns:?}");
                self.cache
                    .get_or_run(id, &key, async {
                        frame_of(&self.fetch_cancellable(&sql).await?, columns)
                    })
                    .await
            }
        }
    }

    /// An estimate of the number of rows `checked` returns: the planner's for PostgreSQL, a
    /// one-chunk sample scaled by event counts for the Parquet engines.
    pub async fn estimate(&self, dataset: &str, checked: &Checked) -> Result<u64> {
        match checked.engine() {
            Engine::Postgres => {
                let pool = self.pool()?;
                let id = self.dataset_id(pool, dataset).await?;
                let explain = format!("EXPLAIN {}", postgres_sql(id, checked));
                let estimate = self
                    .cache
                    .get_or_run(id, &explain, async {
                        let row = sqlx::query(&explain).fetch_one(self.query_pool()?).await?;
                        let top: String = row.try_get(0)?;
                        let rows = planner_rows(&top).unwrap_or(0);
                        DataFrame::new_infer_height(vec![Column::new("n".into(), [rows])])
                            .map_err(|e| Error::Store(e.into()))
                    })
                    .await?;
                Ok(estimate
                    .column("n")
                    .ok()
                    .and_then(|c| c.u64().ok()?.get(0))
                    .unwrap_or(0))
            }
            Engine::Local | Engine::Spark => {
                let ds = self.dataset(dataset)?;
                let checked = checked.clone();
                tokio::task::spawn_blocking(move || Ok(query::estimate_rows(&ds, &checked)?))
                    .await?
            }
        }
    }

    /// The SQL the engine runs for `checked`, and (local, PostgreSQL) the engine's plan.
    pub async fn explain(&self, dataset: &str, checked: &Checked) -> Result<(String, String)> {
        match checked.engine() {
            Engine::Local => {
                let ds = self.dataset(dataset)?;
                let c = checked.clone();
                let plan = tokio::task::spawn_blocking(move || -> Result<String> {
                    let lf = query::local_lazy(&ds, &c, None)?;
                    lf.describe_optimized_plan()
                        .map_err(|e| Error::Store(e.into()))
                })
                .await??;
                Ok((checked.engine_sql(), plan))
            }
            Engine::Postgres => {
                let pool = self.pool()?;
                let sql = postgres_sql(self.dataset_id(pool, dataset).await?, checked);
                let rows = sqlx::query(&format!("EXPLAIN {sql}"))
                    .fetch_all(self.query_pool()?)
                    .await?;
                let plan: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.try_get::<String, _>(0).ok())
                    .collect();
                Ok((sql, plan.join("\n")))
            }
            Engine::Spark => Ok((checked.engine_sql(), String::new())),
        }
    }
}

/// A condition on the catalogue's `events` columns (`n_muons >= 2 AND run = 1`), made into
/// `SELECT DISTINCT chunk_id FROM events WHERE …` and checked for PostgreSQL: the only way a
/// job's catalogue filter reaches the database.
#[derive(Clone, Debug)]
pub struct CatalogueFilter(Checked);

impl CatalogueFilter {
    pub fn new(condition: &str) -> Result<Self> {
        use alyx_query::ast::{From, Item, Query, Select, TableRef, dsl::col};
        let invalid = |ds: &[query::Diagnostic]| {
            Error::InvalidArgument(format!("catalogue filter: {}", query::invalid_query(ds)))
        };
        let filter = query::parse::condition(condition).map_err(|d| invalid(&[d]))?;
        let q = Query::select(Select {
            distinct: true,
            items: vec![Item::expr(col("chunk_id"), Some("chunk_id"))],
            from: Some(From {
                table: TableRef::new("events", None),
                joins: Vec::new(),
            }),
            filter: Some(filter),
            ..Select::default()
        });
        query::check(&q, Engine::Postgres)
            .map(Self)
            .map_err(|ds| invalid(&ds))
    }
}

/// Runs `checked` (cast to its columns' types) on Spark in `session` over `chunks` of `ds`,
/// tagged `tag` for [`SparkSession::interrupt`].
pub(crate) async fn spark_query(
    session: &mut SparkSession,
    ds: &Dataset,
    checked: &Checked,
    chunks: Option<&[u32]>,
    tag: Option<&str>,
) -> Result<DataFrame> {
    spark_run(session, ds, &plan::typed(checked), chunks, tag).await
}

async fn spark_run(
    session: &mut SparkSession,
    ds: &Dataset,
    checked: &Checked,
    chunks: Option<&[u32]>,
    tag: Option<&str>,
) -> Result<DataFrame> {
    for name in plan::tables_read(checked.query()) {
        let Some(table) = Table::ALL.into_iter().find(|t| t.name() == name) else {
            continue;
        };
        let paths: Vec<String> = ds
            .table_files_of(table, chunks)?
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        session.create_view(&name, paths).await?;
    }
    let df = session.sql(checked, tag).await?;
    if df.width() == 0 {
        return Ok(empty(checked.columns()));
    }
    Ok(query::conform(df, checked.columns())?)
}

/// An empty frame with `columns`.
pub fn empty(columns: &[(String, Type)]) -> DataFrame {
    let cols: Vec<Column> = columns
        .iter()
        .map(|(n, t)| Column::new_empty(n.as_str().into(), &dtype(*t)))
        .collect();
    DataFrame::new_infer_height(cols).unwrap_or_default()
}

fn dtype(t: Type) -> DataType {
    match t {
        Type::Int => DataType::Int64,
        Type::Float => DataType::Float64,
        Type::Bool => DataType::Boolean,
        Type::Text => DataType::String,
    }
}

/// `query` in PostgreSQL's SQL, with `events` standing for the dataset's catalogue rows under
/// the store's column names.
fn postgres_sql(id: i32, checked: &Checked) -> String {
    let columns: Vec<String> = catalogue::COLUMNS
        .iter()
        .map(|(pg, name)| match pg == name {
            true => pg.to_string(),
            false => format!("{pg} AS {name}"),
        })
        .collect();
    // `event_time` for partition pruning, `chunk_id` for catalogue filters.
    let events = format!(
        "SELECT {}, event_time, chunk_id FROM events WHERE dataset_id = {id}",
        columns.join(", ")
    );
    let mut query = checked.query().clone();
    prune_by_time(&mut query);
    print::to_sql_with(
        &query,
        query::Dialect::Postgres,
        &[("events".into(), events)],
    )
}

/// Adds the `event_time` bounds that `timestamp_ns` bounds on `events` imply, so that
/// PostgreSQL prunes the catalogue's daily partitions (it is partitioned by `event_time`, which
/// ingest derives from the event's ns timestamp). The query's own condition still applies.
fn prune_by_time(q: &mut Query) {
    use alyx_query::ast::{BinOp, Expr};
    for cte in &mut q.with {
        prune_by_time(&mut cte.query);
    }
    for s in &mut q.body {
        let Some(from) = &s.from else { continue };
        let events: Vec<String> = std::iter::once(&from.table)
            .chain(from.joins.iter().map(|j| &j.table))
            .filter(|t| t.name == "events")
            .map(|t| t.qualifier().to_owned())
            .collect();
        let Some(filter) = &s.filter else { continue };
        let mut conjuncts = Vec::new();
        fn flatten<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
            match e {
                Expr::Binary {
                    op: BinOp::And,
                    left,
                    right,
                } => {
                    flatten(left, out);
                    flatten(right, out);
                }
                other => out.push(other),
            }
        }
        flatten(filter, &mut conjuncts);
        let ts = |e: &Expr| match e {
            Expr::Column {
                table: Some(t),
                name,
                ..
            } if name == "timestamp_ns" && events.contains(t) => Some(t.clone()),
            _ => None,
        };
        let mut bounds: Vec<(String, BinOp, i64)> = Vec::new();
        for c in conjuncts {
            match c {
                Expr::Binary { op, left, right } => {
                    match (ts(left), right.as_ref(), ts(right), left.as_ref()) {
                        (Some(t), Expr::Int(x), _, _) => bounds.push((t, *op, *x)),
                        (_, _, Some(t), Expr::Int(x)) => {
                            let flipped = match op {
                                BinOp::Lt => BinOp::Gt,
                                BinOp::LtEq => BinOp::GtEq,
                                BinOp::Gt => BinOp::Lt,
                                BinOp::GtEq => BinOp::LtEq,
                                other => *other,
                            };
                            bounds.push((t, flipped, *x));
                        }
                        _ => {}
                    }
                }
                Expr::Between {
                    expr,
                    lo,
                    hi,
                    negated: false,
                } => {
                    if let (Some(t), Expr::Int(a), Expr::Int(b)) =
                        (ts(expr), lo.as_ref(), hi.as_ref())
                    {
                        bounds.push((t.clone(), BinOp::GtEq, *a));
                        bounds.push((t, BinOp::LtEq, *b));
                    }
                }
                _ => {}
            }
        }
        let mut extra = Vec::new();
        for (t, op, x) in bounds {
            // Computed as ingest computes event_time (the ns count as a double, over 1e9);
            // to_timestamp is monotonic, so the bound admits every row the condition does.
            let seconds = x as f64 / 1e9;
            let op = match op {
                BinOp::Gt | BinOp::GtEq => BinOp::GtEq,
                BinOp::Lt | BinOp::LtEq => BinOp::LtEq,
                BinOp::Eq => {
                    extra.push(time_bound(&t, BinOp::GtEq, seconds));
                    BinOp::LtEq
                }
                _ => continue,
            };
            extra.push(time_bound(&t, op, seconds));
        }
        if !extra.is_empty() {
            let all = std::iter::once(filter.clone()).chain(extra);
            s.filter = all.reduce(|a, b| Expr::Binary {
                op: BinOp::And,
                left: Box::new(a),
                right: Box::new(b),
            });
        }
    }
}

fn time_bound(table: &str, op: alyx_query::ast::BinOp, seconds: f64) -> alyx_query::ast::Expr {
    use alyx_query::ast::{At, Expr};
    Expr::Binary {
        op,
        left: Box::new(Expr::Column {
            table: Some(table.to_owned()),
            name: "event_time".into(),
            at: At::NONE,
        }),
        right: Box::new(Expr::Call {
            func: "TO_TIMESTAMP".into(),
            args: vec![Expr::Float(seconds)],
            at: At::NONE,
        }),
    }
}

/// A user's statement in flight on a connection of the query pool. Dropped with the connection
/// still in it (the caller's future was dropped mid-statement), it asks PostgreSQL to cancel
/// the statement (`pg_cancel_backend`, from alyxd's own pool: the same login role) and holds
/// the connection until the cancel is delivered, so that it cannot reach a later statement on
/// the same connection (PostgreSQL ignores a cancel that arrives while the session is idle).
struct Running {
    conn: Option<PoolConnection<Postgres>>,
    pid: i32,
    admin: PgPool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let (Some(conn), Ok(runtime)) = (self.conn.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (pid, admin) = (self.pid, self.admin.clone());
        runtime.spawn(async move {
            let cancelled = sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(pid)
                .execute(&admin)
                .await;
            if let Err(e) = cancelled {
                tracing::warn!(pid, "cannot cancel an abandoned query: {e}");
            }
            drop(conn);
        });
    }
}

/// The rows of a user's query as a frame with the query's columns and types.
fn frame_of(rows: &[PgRow], columns: &[(String, Type)]) -> Result<DataFrame> {
    let mut cols = Vec::new();
    for (i, (name, t)) in columns.iter().enumerate() {
        let name = name.as_str().into();
        let col = match t {
            Type::Int => {
                let v: Vec<Option<i64>> = rows
                    .iter()
                    .map(|r| r.try_get(i))
                    .collect::<Result<_, _>>()?;
                Column::new(name, v)
            }
            Type::Float => {
                let v: Vec<Option<f64>> = rows
                    .iter()
                    .map(|r| r.try_get(i))
                    .collect::<Result<_, _>>()?;
                Column::new(name, v)
            }
            Type::Bool => {
                let v: Vec<Option<bool>> = rows
                    .iter()
                    .map(|r| r.try_get(i))
                    .collect::<Result<_, _>>()?;
                Column::new(name, v)
            }
            Type::Text => {
                let v: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| r.try_get(i))
                    .collect::<Result<_, _>>()?;
                Column::new(name, v)
            }
        };
        cols.push(col);
    }
    if cols.is_empty() {
        return Ok(DataFrame::empty());
    }
    DataFrame::new_infer_height(cols).map_err(|e| Error::Store(e.into()))
}

/// The planner's row estimate in the top line of PostgreSQL's EXPLAIN (`… rows=2550 width=4)`).
fn planner_rows(line: &str) -> Option<u64> {
    let rest = &line[line.find("rows=")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_bounds_on_events_add_partition_bounds() {
        use alyx_query::{self as query, Dialect, Engine};
        let c = query::prepare(
            "SELECT COUNT(*) AS n FROM events WHERE timestamp_ns >= 1782864000000000000 AND n_muons > 0 AND 1782950400000000000 > timestamp_ns",
            Engine::Postgres,
        )
        .expect("valid");
        let mut q = c.query().clone();
        super::prune_by_time(&mut q);
        let sql = query::to_sql(&q, Dialect::Postgres);
        assert!(
            sql.contains("events.event_time >= TO_TIMESTAMP(1782864000.0)"),
            "{sql}"
        );
        assert!(
            sql.contains("events.event_time <= TO_TIMESTAMP(1782950400.0)"),
            "{sql}"
        );
        let c = query::prepare(
            "SELECT COUNT(*) AS n FROM events WHERE n_muons > 0",
            Engine::Postgres,
        )
        .expect("valid");
        let mut q = c.query().clone();
        super::prune_by_time(&mut q);
        assert_eq!(&q, c.query());
    }

    #[test]
    fn a_catalogue_filter_is_a_checked_condition_not_spliced_text() {
        use super::CatalogueFilter;
        let f = CatalogueFilter::new("run = 545100 AND n_muons >= 2").expect("valid");
        let sql = f.0.engine_sql();
        assert!(sql.contains("SELECT DISTINCT"), "{sql}");
        assert!(sql.contains("n_muons"), "{sql}");
        for hostile in [
            "1 = 1) UNION SELECT chunk_id FROM events WHERE (1 = 1",
            "n_muons > 0; DROP TABLE events",
            "n_muons > 0 ORDER BY chunk_id",
            "pg_sleep(10) IS NULL",
            "no_such_column > 1",
            "",
        ] {
            assert!(
                CatalogueFilter::new(hostile).is_err(),
                "accepted {hostile:?}"
            );
        }
    }

    #[test]
    fn planner_rows_come_from_explains_top_line() {
        let line = "Hash Join  (cost=1.09..2.20 rows=1364 width=16)";
        assert_eq!(super::planner_rows(line), Some(1364));
        assert_eq!(super::planner_rows("Result"), None);
    }
}

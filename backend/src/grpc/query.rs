//! `alyx.v1.QueryService` over the engines: every query is parsed and checked first, and
//! nothing runs when it is invalid.

use std::pin::Pin;

use alyx_proto::v1;
use alyx_proto::v1::query_service_server::QueryService;
use alyx_shared::histogram::Binning;
use alyx_shared::query::{self, Checked, Diagnostic, Dialect, Engine, Type, plan, print};
use polars::prelude::*;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Context, status};
use crate::engines::Engines;
use crate::error::Error;

pub struct QueryApi {
    pub ctx: Context,
    pub engines: Engines,
}

const DEFAULT_PAGE: u32 = 10_000;
const MAX_PAGE: u32 = 100_000;

fn engine(e: i32) -> Result<Engine, Status> {
    match v1::Engine::try_from(e) {
        Ok(v1::Engine::Local) => Ok(Engine::Local),
        Ok(v1::Engine::Postgres) => Ok(Engine::Postgres),
        Ok(v1::Engine::Spark) => Ok(Engine::Spark),
        Err(_) => Err(Status::invalid_argument(format!("unknown engine {e}"))),
    }
}

fn column_type(t: Type) -> i32 {
    (match t {
        Type::Int => v1::ColumnType::Int,
        Type::Float => v1::ColumnType::Float,
        Type::Bool => v1::ColumnType::Bool,
        Type::Text => v1::ColumnType::Text,
    }) as i32
}

fn columns(cols: &[(String, Type)]) -> Vec<v1::ResultColumn> {
    cols.iter()
        .map(|(name, t)| v1::ResultColumn {
            name: name.clone(),
            r#type: column_type(*t),
        })
        .collect()
}

fn diagnostics(ds: &[Diagnostic]) -> Vec<v1::Diagnostic> {
    ds.iter()
        .map(|d| v1::Diagnostic {
            message: d.message.clone(),
            line: d.line,
            column: d.column,
        })
        .collect()
}

/// A parsed request: dataset, engine, catalogue filter, and the query checked (or its
/// diagnostics).
struct Prepared {
    dataset: String,
    engine: Engine,
    filter: String,
    checked: Result<Checked, Vec<Diagnostic>>,
}

impl Prepared {
    /// The chunks the catalogue filter selects (None: all).
    async fn chunks(&self, engines: &Engines) -> Result<Option<Vec<u32>>, Error> {
        if self.filter.trim().is_empty() {
            return Ok(None);
        }
        if self.engine == Engine::Postgres {
            return Err(Error::InvalidArgument(
                "a catalogue filter selects Parquet chunks for the local and Spark engines; on postgres, put it in the query".into(),
            ));
        }
        engines
            .chunks_matching(&self.dataset, &self.filter)
            .await
            .map(Some)
    }
}

/// ALYX SQL or a query AST as JSON, parsed (the diagnostics when it does not parse).
pub(super) fn parse_text(
    text: Option<v1::QueryText>,
) -> Result<Result<query::Query, Vec<Diagnostic>>, Status> {
    Ok(match text.and_then(|q| q.kind) {
        Some(v1::query_text::Kind::Sql(sql)) => query::parse(&sql).map_err(|d| vec![d]),
        Some(v1::query_text::Kind::QueryJson(json)) => serde_json::from_str::<query::Query>(&json)
            .map_err(|e| {
                vec![Diagnostic::new(
                    format!("the query JSON is not a query: {e}"),
                    query::At::NONE,
                )]
            }),
        None => return Err(Status::invalid_argument("the request has no query text")),
    })
}

/// The histogram message of `h`.
pub(super) fn histogram_response(h: &alyx_shared::histogram::Histogram) -> v1::HistogramResponse {
    v1::HistogramResponse {
        edges: h.binning.edges(),
        sum_w: h.sum_w.clone(),
        sum_w2: h.sum_w2.clone(),
        entries: h.entries.clone(),
        underflow: h.underflow,
        overflow: h.overflow,
        missing: h.missing,
    }
}

/// The binning a request names: fixed bins, or explicit edges.
pub(super) fn binning(b: Option<v1::Binning>) -> Result<Binning, Status> {
    let b = b.unwrap_or_default();
    if b.edges.is_empty() {
        Binning::fixed(b.bins as usize, b.lo, b.hi)
    } else {
        Binning::variable(b.edges)
    }
    .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The request's dataset, engine and query, parsed and checked (the diagnostics on failure).
fn prepare(r: Option<v1::QueryRequest>) -> Result<Prepared, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("the request has no query"))?;
    let engine = engine(r.engine)?;
    let parsed = parse_text(r.query)?;
    let checked = parsed.and_then(|q| query::check(&q, engine));
    Ok(Prepared {
        dataset: r.dataset,
        engine,
        filter: r.catalogue_filter,
        checked,
    })
}

/// The query checked, or INVALID_ARGUMENT with every diagnostic.
fn checked_or_invalid(c: Result<Checked, Vec<Diagnostic>>) -> Result<Checked, Status> {
    c.map_err(|ds| {
        let lines: Vec<String> = ds.iter().map(ToString::to_string).collect();
        Status::invalid_argument(format!("invalid query: {}", lines.join("; ")))
    })
}

fn ipc(df: &mut DataFrame) -> Result<Vec<u8>, Status> {
    let mut buf = Vec::new();
    IpcStreamWriter::new(&mut buf)
        .finish(df)
        .map_err(|e| Status::internal(format!("cannot encode the page: {e}")))?;
    Ok(buf)
}

type PageStream = Pin<Box<dyn Stream<Item = Result<v1::ResultPage, Status>> + Send>>;

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn validate(
        &self,
        request: Request<v1::ValidateRequest>,
    ) -> Result<Response<v1::ValidateResponse>, Status> {
        self.ctx
            .observe("Validate", async {
                self.ctx.caller(&request).await?;
                let p = prepare(request.into_inner().query)?;
                let engine = p.engine;
                Ok(Response::new(match p.checked {
                    Ok(c) => v1::ValidateResponse {
                        ok: true,
                        diagnostics: Vec::new(),
                        columns: columns(&c.columns),
                        sql: print::to_sql(&c.query, Dialect::Alyx),
                        engine_sql: print::to_sql(&c.query, engine.dialect()),
                    },
                    Err(ds) => v1::ValidateResponse {
                        ok: false,
                        diagnostics: diagnostics(&ds),
                        ..Default::default()
                    },
                }))
            })
            .await
    }

    type ExecuteStream = PageStream;

    async fn execute(
        &self,
        request: Request<v1::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        self.ctx
            .observe("Execute", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let size = match r.page_size {
                    0 => DEFAULT_PAGE,
                    n => n.min(MAX_PAGE),
                } as u64;
                let max_pages = r.max_pages;
                let mut p = prepare(r.query)?;
                let checked =
                    checked_or_invalid(std::mem::replace(&mut p.checked, Err(Vec::new())))?;
                let start: plan::Cursor = if r.cursor.is_empty() {
                    plan::Cursor::default()
                } else {
                    serde_json::from_str(&r.cursor).map_err(|e| {
                        Status::invalid_argument(format!("not a cursor from a result page: {e}"))
                    })?
                };
                // Ordering is checked before the first page, so a bad ORDER BY fails the call.
                plan::page(&checked, &start, size)
                    .map_err(|d| Status::invalid_argument(d.to_string()))?;
                let chunks = p.chunks(&self.engines).await.map_err(status)?;
                let engines = self.engines.clone();
                let (tx, rx) = mpsc::channel(2);
                tokio::spawn(async move {
                    let target = Target {
                        engines: &engines,
                        dataset: &p.dataset,
                        engine: p.engine,
                        user: &caller.name,
                        chunks: chunks.as_deref(),
                    };
                    let result = stream_pages(&target, &checked, start, size, max_pages, &tx).await;
                    if let Err(e) = result {
                        let _ = tx.send(Err(status(e))).await;
                    }
                });
                Ok(Response::new(
                    Box::pin(ReceiverStream::new(rx)) as PageStream
                ))
            })
            .await
    }

    async fn histogram(
        &self,
        request: Request<v1::HistogramRequest>,
    ) -> Result<Response<v1::HistogramResponse>, Status> {
        self.ctx
            .observe("Histogram", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let binning = binning(r.binning)?;
                let mut p = prepare(r.query)?;
                let checked =
                    checked_or_invalid(std::mem::replace(&mut p.checked, Err(Vec::new())))?;
                let weight = (!r.weight.is_empty()).then_some(r.weight.as_str());
                let q = plan::histogram(&checked, &r.column, weight, &binning)
                    .map_err(|d| Status::invalid_argument(d.to_string()))?;
                let chunks = p.chunks(&self.engines).await.map_err(status)?;
                let df = self
                    .engines
                    .run(
                        p.engine,
                        &p.dataset,
                        &q,
                        &plan::histogram_columns(),
                        &caller.name,
                        chunks.as_deref(),
                    )
                    .await
                    .map_err(status)?;
                let h =
                    plan::histogram_from_rows(&df, binning).map_err(|e| status(Error::Store(e)))?;
                Ok(Response::new(histogram_response(&h)))
            })
            .await
    }

    async fn explain(
        &self,
        request: Request<v1::ExplainRequest>,
    ) -> Result<Response<v1::ExplainResponse>, Status> {
        self.ctx
            .observe("Explain", async {
                self.ctx.caller(&request).await?;
                let p = prepare(request.into_inner().query)?;
                let checked = checked_or_invalid(p.checked)?;
                let (engine_sql, plan) = self
                    .engines
                    .explain(p.engine, &p.dataset, &checked.query)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::ExplainResponse {
                    sql: print::to_sql(&checked.query, Dialect::Alyx),
                    engine_sql,
                    plan,
                }))
            })
            .await
    }
}

/// Where a query runs.
struct Target<'a> {
    engines: &'a Engines,
    dataset: &'a str,
    engine: Engine,
    user: &'a str,
    chunks: Option<&'a [u32]>,
}

impl Target<'_> {
    async fn run(&self, q: &query::Query, columns: &[(String, Type)]) -> Result<DataFrame, Error> {
        self.engines
            .run(
                self.engine,
                self.dataset,
                q,
                columns,
                self.user,
                self.chunks,
            )
            .await
    }
}

/// Sends pages of `checked` until the result or `max_pages` ends; the first carries the
/// estimate, the last the exact count.
async fn stream_pages(
    t: &Target<'_>,
    checked: &Checked,
    start: plan::Cursor,
    size: u64,
    max_pages: u32,
    tx: &mpsc::Sender<Result<v1::ResultPage, Status>>,
) -> Result<(), Error> {
    let estimate = t.engines.estimate(t.engine, t.dataset, checked).await.ok();
    let mut cursor = start;
    let mut sent = 0u32;
    loop {
        let q = plan::page(checked, &cursor, size)
            .map_err(|d| Error::InvalidArgument(d.to_string()))?;
        let mut df = t.run(&q, &checked.columns).await?;
        let rows = df.height() as u64;
        let first = cursor.first_row;
        let last = rows < size || (max_pages > 0 && sent + 1 >= max_pages);
        let exact = if rows < size {
            Some(first.checked_add(rows).ok_or_else(|| {
                Error::InvalidArgument("not a cursor from a result page: row beyond the end".into())
            })?)
        } else if last {
            let n = t.run(&plan::count(checked), &plan::count_columns()).await?;
            Some(plan::count_from_rows(&n))
        } else {
            None
        };
        cursor = plan::next_cursor(checked, &cursor, &df)
            .map_err(|d| Error::InvalidArgument(d.to_string()))?;
        let more = exact.is_none_or(|n| n > cursor.first_row);
        let page = v1::ResultPage {
            columns: columns(&checked.columns),
            arrow_ipc: ipc(&mut df).map_err(|s| Error::Internal(s.message().to_owned()))?,
            first_row: first,
            rows: rows as u32,
            estimated_total: (sent == 0).then_some(estimate.unwrap_or(rows)),
            exact_total: exact,
            last,
            next_cursor: if more {
                serde_json::to_string(&cursor).map_err(|e| Error::Internal(e.to_string()))?
            } else {
                String::new()
            },
        };
        if tx.send(Ok(page)).await.is_err() {
            return Ok(()); // the client went away
        }
        sent += 1;
        if last {
            return Ok(());
        }
    }
}

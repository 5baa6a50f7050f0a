//! `alyx.v1.QueryService` over the engines: every query is parsed and checked first, and
//! nothing runs when it is invalid.

use std::pin::Pin;

use alyx_core::histogram::Binning;
use alyx_proto::v1::query_service_server::{QueryService, SERVICE_NAME};
use alyx_proto::{analysis, v1};
use alyx_query::{self as query, Checked, Diagnostic, Engine, plan};
use polars::prelude::*;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{Context, status};
use crate::engines::{CatalogueFilter, Engines};
use crate::error::Error;
use crate::paging::{Page, Pages};

pub struct QueryApi {
    pub ctx: Context,
    pub engines: Engines,
}

const DEFAULT_PAGE: u32 = 10_000;
const MAX_PAGE: u32 = 100_000;
/// The smallest page: each page runs the query again.
const MIN_PAGE: u32 = 100;

fn diagnostics(ds: &[Diagnostic]) -> Vec<v1::Diagnostic> {
    ds.iter().map(v1::Diagnostic::from).collect()
}

/// A parsed request: dataset, catalogue filter, and the query checked for its engine (or its
/// diagnostics).
struct Prepared {
    dataset: String,
    filter: String,
    checked: Result<Checked, Vec<Diagnostic>>,
}

impl Prepared {
    /// The chunks the catalogue filter selects (None: all).
    async fn chunks(&self, engines: &Engines, engine: Engine) -> Result<Option<Vec<u32>>, Error> {
        if self.filter.trim().is_empty() {
            return Ok(None);
        }
        if engine == Engine::Postgres {
            return Err(Error::InvalidArgument(
                "a catalogue filter selects Parquet chunks for the local and Spark engines; on postgres, put it in the query".into(),
            ));
        }
        let filter = CatalogueFilter::new(&self.filter)?;
        engines
            .chunks_matching(&self.dataset, &filter)
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

/// The binning a request names: fixed bins, or explicit edges.
pub(super) fn binning(b: Option<v1::Binning>) -> Result<Binning, Status> {
    Binning::try_from(b.unwrap_or_default()).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The request's dataset, engine and query, parsed and checked (the diagnostics on failure).
fn prepare(r: Option<v1::QueryRequest>) -> Result<Prepared, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("the request has no query"))?;
    alyx_store::check_name(&r.dataset).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let engine = analysis::engine(r.engine).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let parsed = parse_text(r.query)?;
    let checked = parsed.and_then(|q| query::check(&q, engine));
    Ok(Prepared {
        dataset: r.dataset,
        filter: r.catalogue_filter,
        checked,
    })
}

/// The query checked, or INVALID_ARGUMENT with every diagnostic: in the message for people,
/// and as gRPC's standard `BadRequest` details for programs, one field violation per
/// diagnostic (field `query`, described as `LINE:COLUMN: message`, or the message alone when
/// the problem has no single place).
fn checked_or_invalid(c: Result<Checked, Vec<Diagnostic>>) -> Result<Checked, Status> {
    use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
    c.map_err(|ds| {
        let lines: Vec<String> = ds.iter().map(ToString::to_string).collect();
        let violations = ds
            .iter()
            .map(|d| {
                let v = v1::Diagnostic::from(d);
                let description = match v.line {
                    0 => v.message,
                    line => format!("{line}:{}: {}", v.column, v.message),
                };
                FieldViolation::new("query", description)
            })
            .collect::<Vec<_>>();
        Status::with_error_details(
            tonic::Code::InvalidArgument,
            format!("invalid query: {}", lines.join("; ")),
            ErrorDetails::with_bad_request(violations),
        )
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
            .observe(SERVICE_NAME, "Validate", async {
                self.ctx.caller(&request).await?;
                let p = prepare(request.into_inner().query)?;
                Ok(Response::new(match p.checked {
                    Ok(c) => v1::ValidateResponse {
                        ok: true,
                        diagnostics: Vec::new(),
                        columns: analysis::columns(c.columns()),
                        sql: c.alyx_sql(),
                        engine_sql: c.engine_sql(),
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
            .observe(SERVICE_NAME, "Execute", async {
                let caller = self.ctx.caller(&request).await?;
                let admission = self.ctx.admit(&caller)?;
                let authorization = super::authorization(&request);
                let r = request.into_inner();
                // Each page re-runs the query: a page of one row would cost a full query per
                // row, so pages are at least MIN_PAGE rows.
                let size = match r.page_size {
                    0 => DEFAULT_PAGE,
                    n => n.clamp(MIN_PAGE, MAX_PAGE),
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
                let chunks = p
                    .chunks(&self.engines, checked.engine())
                    .await
                    .map_err(status)?;
                let pages = Pages {
                    engines: self.engines.clone(),
                    dataset: p.dataset,
                    checked,
                    user: caller.name,
                    chunks,
                    size,
                    max_pages,
                };
                let rx = pages.spawn(start);
                let stream = ReceiverStream::new(rx).map(|page| match page {
                    Ok(page) => result_page(page),
                    Err(e) => Err(status(e)),
                });
                Ok(Response::new(self.ctx.until_revoked(
                    authorization,
                    admission,
                    stream,
                )))
            })
            .await
    }

    async fn histogram(
        &self,
        request: Request<v1::HistogramRequest>,
    ) -> Result<Response<v1::HistogramResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "Histogram", async {
                let caller = self.ctx.caller(&request).await?;
                let _admission = self.ctx.admit(&caller)?;
                let r = request.into_inner();
                let binning = binning(r.binning)?;
                let mut p = prepare(r.query)?;
                let checked =
                    checked_or_invalid(std::mem::replace(&mut p.checked, Err(Vec::new())))?;
                let weight = (!r.weight.is_empty()).then_some(r.weight.as_str());
                let q = plan::histogram(&checked, &r.column, weight, &binning)
                    .map_err(|d| Status::invalid_argument(d.to_string()))?;
                let chunks = p
                    .chunks(&self.engines, checked.engine())
                    .await
                    .map_err(status)?;
                let df = self
                    .engines
                    .run(&p.dataset, &q, &caller.name, chunks.as_deref())
                    .await
                    .map_err(status)?;
                let h = plan::histogram_from_rows(&df, binning).map_err(|e| status(e.into()))?;
                Ok(Response::new(v1::HistogramResponse::from(&h)))
            })
            .await
    }

    async fn explain(
        &self,
        request: Request<v1::ExplainRequest>,
    ) -> Result<Response<v1::ExplainResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "Explain", async {
                self.ctx.caller(&request).await?;
                let p = prepare(request.into_inner().query)?;
                let checked = checked_or_invalid(p.checked)?;
                let (engine_sql, plan) = self
                    .engines
                    .explain(&p.dataset, &checked)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::ExplainResponse {
                    sql: checked.alyx_sql(),
                    engine_sql,
                    plan,
                }))
            })
            .await
    }
}

/// A page of results on the wire: the rows as Arrow IPC.
fn result_page(page: Page) -> Result<v1::ResultPage, Status> {
    let Page {
        mut rows,
        columns: cols,
        first_row,
        estimated_total,
        exact_total,
        last,
        next_cursor,
    } = page;
    Ok(v1::ResultPage {
        columns: analysis::columns(&cols),
        rows: rows.height() as u32,
        arrow_ipc: ipc(&mut rows)?,
        first_row,
        estimated_total,
        exact_total,
        last,
        next_cursor: match next_cursor {
            Some(c) => serde_json::to_string(&c)
                .map_err(|e| Status::internal(format!("cannot encode the cursor: {e}")))?,
            None => String::new(),
        },
    })
}

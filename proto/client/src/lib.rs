//! `alyx-client`: the typed client of alyxd that alyxctl, the desktop, the benchmarks and the
//! tests use. The model goes in and the model comes out — events, queries, histograms,
//! analyses — converted by `alyx-proto`; records that exist only on the wire (a job's status,
//! a notebook's listing, the ingest and storage reports) come out as their plain `v1` messages.
//! Every failure is one [`ClientError`] with one message per case.
//!
//! A [`Client`] is cheap to clone: the connection is made on first use and shared.

pub mod collab;
mod error;

use std::io::Cursor;
use std::time::Duration;

use alyx_analysis::notebook::Version;
use alyx_core::ast::{Diagnostic, Engine, Query, Type};
use alyx_core::histogram::{Binning, Histogram};
use alyx_core::jobs::{Analysis, HistogramSpec, JobInfo, Target};
use alyx_core::model::CollisionEvent;
use alyx_core::summary::{DatasetInfo, EventSummary};
use alyx_proto::analysis;
use alyx_proto::v1::admin_service_client::AdminServiceClient;
use alyx_proto::v1::collab_service_client::CollabServiceClient;
use alyx_proto::v1::event_service_client::EventServiceClient;
use alyx_proto::v1::job_service_client::JobServiceClient;
use alyx_proto::v1::query_service_client::QueryServiceClient;
use polars::prelude::{DataFrame, IpcStreamReader, SerReader};
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

pub use alyx_proto::v1;
pub use error::{ClientError, Result};

/// The largest message accepted from alyxd (whole Pb–Pb events, notebooks with outputs).
const MAX_MESSAGE: usize = 256 << 20;

/// A connection to alyxd on behalf of one token.
#[derive(Clone)]
pub struct Client {
    url: String,
    token: String,
    channel: Channel,
    /// A W3C `traceparent` every call carries (see [`Client::traced`]).
    traceparent: Option<tonic::metadata::AsciiMetadataValue>,
}

/// A query to run in alyxd: its text or AST, the engine, the dataset and a catalogue filter.
#[derive(Clone, Debug)]
pub struct QuerySpec {
    pub dataset: String,
    pub engine: Engine,
    pub query: QuerySource,
    /// A condition on the catalogue's `events` columns selecting the chunks to read (local and
    /// Spark engines).
    pub catalogue_filter: Option<String>,
}

#[derive(Clone, Debug)]
pub enum QuerySource {
    Sql(String),
    Ast(Query),
}

/// What `validate` says about a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Validation {
    Valid {
        columns: Vec<(String, Type)>,
        /// The query as checked, in ALYX SQL.
        sql: String,
        /// What the engine runs.
        engine_sql: String,
    },
    Invalid(Vec<Diagnostic>),
}

/// One page of a query's result.
#[derive(Clone, Debug)]
pub struct Page {
    pub rows: DataFrame,
    pub first_row: u64,
    pub estimated_total: Option<u64>,
    pub exact_total: Option<u64>,
    pub last: bool,
    /// Where the next page starts (pass it back to continue); `None` at the end.
    pub next_cursor: Option<String>,
}

/// A page of a dataset's catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// The token of the next page; `None` on the last.
    pub next: Option<String>,
    pub total: u64,
}

/// A job to submit: histograms of a per-event query's outputs over a dataset.
#[derive(Clone, Debug)]
pub struct JobSubmission {
    pub name: String,
    pub dataset: String,
    pub query: QuerySource,
    pub histograms: Vec<HistogramSpec>,
    pub target: Target,
    pub priority: i32,
    pub cores: u32,
    pub memory_mb: u32,
}

impl JobSubmission {
    /// `analysis` over `dataset` at normal priority, on the target the scheduler picks, with
    /// one core and 1 GiB per task.
    pub fn new(name: impl Into<String>, dataset: impl Into<String>, analysis: Analysis) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            query: QuerySource::Ast(analysis.query),
            histograms: analysis.histograms,
            target: Target::Auto,
            priority: 0,
            cores: 1,
            memory_mb: 1024,
        }
    }
}

/// A job and its histograms merged so far, in the order of the job's histograms.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    pub job: JobInfo,
    pub histograms: Vec<(String, Histogram)>,
    pub rows: u64,
    pub events: u64,
    pub tasks_merged: u32,
    /// Every task is done and merged.
    pub complete: bool,
}

impl Client {
    /// A client of alyxd at `url` (`http://host:port`); connects on first use, within five
    /// seconds. Made inside a tokio runtime, which serves the connection.
    ///
    /// An `https://` URL speaks TLS, trusting the system's certificate authorities and the one
    /// in the PEM file `ALYX_CA_CERT` names, if set.
    pub fn new(url: &str, token: &str) -> Result<Self> {
        Ok(Self::with(url, token, endpoint(url, None)?.connect_lazy()))
    }

    /// [`Client::new`] over TLS trusting `ca_pem` (a PEM certificate authority) too.
    pub fn with_ca(url: &str, token: &str, ca_pem: &[u8]) -> Result<Self> {
        Ok(Self::with(
            url,
            token,
            endpoint(url, Some(ca_pem.to_vec()))?.connect_lazy(),
        ))
    }

    /// [`Client::new`], connected now: an unreachable alyxd is an error here, not at the first
    /// call.
    pub async fn connect(url: &str, token: &str) -> Result<Self> {
        let channel =
            endpoint(url, None)?
                .connect()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: url.to_owned(),
                    detail: e.to_string(),
                })?;
        Ok(Self::with(url, token, channel))
    }

    fn with(url: &str, token: &str, channel: Channel) -> Self {
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            channel,
            traceparent: None,
        }
    }

    /// This client's calls continue the trace `traceparent` (W3C trace context, e.g. from a
    /// script's own span or a CI system's `TRACEPARENT`): alyxd's spans of them, its queries
    /// and its jobs' tasks join that trace when alyxd exports traces. A value that is not a
    /// short printable header is ignored.
    pub fn traced(mut self, traceparent: &str) -> Self {
        self.traceparent = (traceparent.len() <= 64)
            .then(|| traceparent.parse().ok())
            .flatten();
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = alyx_proto::authorized(&self.token, message);
        if let Some(t) = &self.traceparent {
            request.metadata_mut().insert("traceparent", t.clone());
        }
        request
    }

    fn error(&self, s: Status) -> ClientError {
        ClientError::from_status(&self.url, s)
    }

    fn events_api(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    fn query_api(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    fn jobs_api(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    fn admin_api(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    fn collab_api(&self) -> CollabServiceClient<Channel> {
        CollabServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    /// Whether alyxd says it is serving (the standard gRPC health check, with a one-second
    /// limit): false while it starts, stops or cannot be reached.
    pub async fn serving(&self) -> bool {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let check = async {
            HealthClient::new(self.channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), check).await,
            Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
        )
    }

    // EventService

    /// The datasets in alyxd's catalogue.
    pub async fn datasets(&self) -> Result<Vec<DatasetInfo>> {
        let r = self
            .events_api()
            .list_datasets(self.request(v1::ListDatasetsRequest {}))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner()
            .datasets
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A page of `dataset`'s events (`page_token` from the page before; `None` for the first).
    pub async fn events(
        &self,
        dataset: &str,
        run: Option<u32>,
        page_size: u32,
        page_token: Option<String>,
    ) -> Result<EventPage> {
        let r = self
            .events_api()
            .list_events(self.request(v1::ListEventsRequest {
                dataset: dataset.to_owned(),
                run,
                page_size,
                page_token: page_token.unwrap_or_default(),
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(EventPage {
            events: r.events.into_iter().map(Into::into).collect(),
            next: (!r.next_page_token.is_empty()).then_some(r.next_page_token),
            total: r.total,
        })
    }

    /// One whole event with its catalogue row.
    pub async fn event(&self, dataset: &str, id: u64) -> Result<(EventSummary, CollisionEvent)> {
        let r = self
            .events_api()
            .get_event(self.request(v1::GetEventRequest {
                dataset: dataset.to_owned(),
                event_id: id,
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let summary = r
            .summary
            .ok_or_else(|| ClientError::Malformed("an event without its summary".into()))?;
        let event = r
            .event
            .ok_or_else(|| ClientError::Malformed("a summary without its event".into()))?;
        Ok((summary.into(), CollisionEvent::try_from(event)?))
    }

    /// The events stored from now on (in `dataset`; every dataset when empty), with the whole
    /// event when `include_event`.
    pub async fn subscribe(&self, dataset: &str, include_event: bool) -> Result<Live> {
        let stream = self
            .events_api()
            .subscribe(self.request(v1::SubscribeRequest {
                dataset: dataset.to_owned(),
                include_event,
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(Live {
            stream,
            url: self.url.clone(),
        })
    }

    // QueryService

    fn query_request(&self, q: &QuerySpec) -> Result<v1::QueryRequest> {
        Ok(v1::QueryRequest {
            dataset: q.dataset.clone(),
            engine: v1::Engine::from(q.engine) as i32,
            query: Some(query_text(&q.query)?),
            catalogue_filter: q.catalogue_filter.clone().unwrap_or_default(),
        })
    }

    /// Checks a query without running it.
    pub async fn validate(&self, q: &QuerySpec) -> Result<Validation> {
        let r = self
            .query_api()
            .validate(self.request(v1::ValidateRequest {
                query: Some(self.query_request(q)?),
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(if r.ok {
            Validation::Valid {
                columns: analysis::columns_from(&r.columns)?,
                sql: r.sql,
                engine_sql: r.engine_sql,
            }
        } else {
            Validation::Invalid(r.diagnostics.into_iter().map(Into::into).collect())
        })
    }

    /// The histogram of output column `column` (weighted by `weight`) of a query, filled by
    /// the engine.
    pub async fn histogram(
        &self,
        q: &QuerySpec,
        column: &str,
        weight: Option<&str>,
        binning: Binning,
    ) -> Result<Histogram> {
        let r = self
            .query_api()
            .histogram(self.request(v1::HistogramRequest {
                query: Some(self.query_request(q)?),
                column: column.to_owned(),
                weight: weight.unwrap_or_default().to_owned(),
                binning: Some((&binning).into()),
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(analysis::histogram(binning, r)?)
    }

    /// The query as checked, the SQL its engine runs, and the engine's plan.
    pub async fn explain(&self, q: &QuerySpec) -> Result<v1::ExplainResponse> {
        let r = self
            .query_api()
            .explain(self.request(v1::ExplainRequest {
                query: Some(self.query_request(q)?),
            }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    /// The result's pages of at most `page_size` rows (0: alyxd's default), `max_pages` of
    /// them (0: all), from `cursor` (a page's `next_cursor`; `None` from the start).
    pub async fn execute(
        &self,
        q: &QuerySpec,
        page_size: u32,
        max_pages: u32,
        cursor: Option<String>,
    ) -> Result<Pages> {
        let stream = self
            .query_api()
            .execute(self.request(v1::ExecuteRequest {
                query: Some(self.query_request(q)?),
                page_size,
                max_pages,
                cursor: cursor.unwrap_or_default(),
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(Pages {
            stream,
            url: self.url.clone(),
        })
    }

    // JobService

    /// Submits a job; its id and the estimated seconds to its end.
    pub async fn submit(&self, job: &JobSubmission) -> Result<(u64, f64)> {
        let r = self
            .jobs_api()
            .submit(self.request(v1::SubmitJobRequest {
                name: job.name.clone(),
                dataset: job.dataset.clone(),
                query: Some(query_text(&job.query)?),
                histograms: job.histograms.iter().map(Into::into).collect(),
                target: v1::JobTarget::from(job.target) as i32,
                priority: job.priority,
                cores: job.cores,
                memory_mb: job.memory_mb,
            }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok((r.id, r.estimated_seconds))
    }

    pub async fn job(&self, id: u64) -> Result<JobInfo> {
        let r = self
            .jobs_api()
            .get(self.request(v1::GetJobRequest { id }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner().try_into()?)
    }

    /// Jobs, newest first: of `owner` ("@me" for the caller; empty for every one the caller
    /// may see), in `state` (empty for all).
    pub async fn jobs(&self, owner: &str, state: &str, limit: u32) -> Result<Vec<JobInfo>> {
        let r = self
            .jobs_api()
            .list(self.request(v1::ListJobsRequest {
                owner: owner.to_owned(),
                state: state.to_owned(),
                limit,
            }))
            .await
            .map_err(|s| self.error(s))?;
        r.into_inner()
            .jobs
            .into_iter()
            .map(|j| Ok(j.try_into()?))
            .collect()
    }

    pub async fn cancel(&self, id: u64, reason: &str) -> Result<JobInfo> {
        let r = self
            .jobs_api()
            .cancel(self.request(v1::CancelJobRequest {
                id,
                reason: reason.to_owned(),
            }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner().try_into()?)
    }

    /// Lets `user` see job `id` and its result, or no longer (`revoke`).
    pub async fn share_job(&self, id: u64, user: &str, revoke: bool) -> Result<JobInfo> {
        let r = self
            .jobs_api()
            .share(self.request(v1::ShareJobRequest {
                id,
                user: user.to_owned(),
                revoke,
            }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner().try_into()?)
    }

    pub async fn set_priority(&self, id: u64, priority: i32) -> Result<JobInfo> {
        let r = self
            .jobs_api()
            .set_priority(self.request(v1::SetPriorityRequest { id, priority }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner().try_into()?)
    }

    /// The job's state each time it changes, until it ends.
    pub async fn watch(&self, id: u64) -> Result<Updates> {
        let stream = self
            .jobs_api()
            .watch(self.request(v1::GetJobRequest { id }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(Updates {
            stream,
            url: self.url.clone(),
        })
    }

    /// The job and its histograms merged so far.
    pub async fn job_result(&self, id: u64) -> Result<JobOutcome> {
        let job = self
            .jobs_api()
            .get(self.request(v1::GetJobRequest { id }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let r = self
            .jobs_api()
            .get_result(self.request(v1::GetJobRequest { id }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        outcome(job, r)
    }

    // AdminService

    pub async fn ingest_status(&self) -> Result<v1::IngestStatus> {
        let r = self
            .admin_api()
            .get_ingest_status(self.request(v1::GetIngestStatusRequest {}))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    pub async fn storage_status(&self) -> Result<v1::StorageStatus> {
        let r = self
            .admin_api()
            .get_storage_status(self.request(v1::GetStorageStatusRequest {}))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    pub async fn executor_status(&self) -> Result<v1::ExecutorStatusList> {
        let r = self
            .admin_api()
            .get_executor_status(self.request(v1::GetExecutorStatusRequest {}))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    // CollabService

    pub async fn notebooks(&self) -> Result<Vec<v1::NotebookInfo>> {
        let r = self
            .collab_api()
            .list_notebooks(self.request(v1::ListNotebooksRequest {}))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner().notebooks)
    }

    pub async fn create_notebook(&self, title: &str) -> Result<v1::NotebookInfo> {
        let r = self
            .collab_api()
            .create_notebook(self.request(v1::CreateNotebookRequest {
                title: title.to_owned(),
            }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    /// A notebook as alyxd stores it: its listing and its Automerge document.
    pub async fn notebook(&self, id: u64) -> Result<(v1::NotebookInfo, Vec<u8>)> {
        let r = self
            .collab_api()
            .get_notebook(self.request(v1::GetNotebookRequest { id }))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let info = r
            .info
            .ok_or_else(|| ClientError::Malformed("a notebook without its listing".into()))?;
        Ok((info, r.document))
    }

    /// Gives `user` `access` to notebook `id` (`Access::None` takes it away).
    pub async fn share(&self, id: u64, user: &str, access: v1::Access) -> Result<v1::NotebookInfo> {
        let r = self
            .collab_api()
            .share(self.request(v1::ShareRequest {
                id,
                user: user.to_owned(),
                access: access as i32,
            }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner())
    }

    /// Notebook `id`'s changes, oldest first, with the authors alyxd authenticated.
    pub async fn notebook_history(&self, id: u64) -> Result<Vec<Version>> {
        let r = self
            .collab_api()
            .history(self.request(v1::GetNotebookRequest { id }))
            .await
            .map_err(|s| self.error(s))?;
        Ok(r.into_inner()
            .versions
            .into_iter()
            .map(|v| Version {
                hash: v.hash,
                author: v.author,
                what: v.what,
                time: v.time_unix_s,
                attested: v.attested,
            })
            .collect())
    }

    /// Opens notebook `id` for editing together, with `local` as this side's copy.
    pub async fn open_notebook(
        &self,
        id: u64,
        local: alyx_analysis::notebook::Notebook,
    ) -> Result<collab::Session> {
        collab::Session::open(self.channel.clone(), &self.url, &self.token, id, local).await
    }
}

/// `url` as an endpoint, given five seconds to connect; over TLS for `https://`, trusting the
/// system's roots, `ca` and the CA file `ALYX_CA_CERT` names.
fn endpoint(url: &str, ca: Option<Vec<u8>>) -> Result<Endpoint> {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let bad = |reason: String| ClientError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map(|e| e.connect_timeout(Duration::from_secs(5)))
        .map_err(|e| bad(e.to_string()))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let mut tls = ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = ca {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let Some(path) = std::env::var_os("ALYX_CA_CERT").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| {
            bad(format!(
                "cannot read the CA certificate ALYX_CA_CERT={}: {e}",
                std::path::Path::new(&path).display()
            ))
        })?;
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))
}

fn query_text(q: &QuerySource) -> Result<v1::QueryText> {
    Ok(match q {
        QuerySource::Sql(text) => analysis::sql(text),
        QuerySource::Ast(ast) => v1::QueryText::try_from(ast)?,
    })
}

fn outcome(job: v1::Job, r: v1::JobResult) -> Result<JobOutcome> {
    let job = JobInfo::try_from(job)?;
    if r.histograms.len() != job.histograms.len() {
        return Err(ClientError::Malformed(format!(
            "job {} has {} histograms and its result {}",
            job.id,
            job.histograms.len(),
            r.histograms.len()
        )));
    }
    let histograms = job
        .histograms
        .iter()
        .zip(r.histograms)
        .map(|(spec, h)| {
            let h = analysis::histogram(spec.binning.clone(), h)?;
            Ok((spec.column.clone(), h))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(JobOutcome {
        job,
        histograms,
        rows: r.rows,
        events: r.events,
        tasks_merged: r.tasks_merged,
        complete: r.complete,
    })
}

/// A query's pages as they arrive.
pub struct Pages {
    stream: Streaming<v1::ResultPage>,
    url: String,
}

impl Pages {
    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Page>> {
        let Some(p) = self
            .stream
            .message()
            .await
            .map_err(|s| ClientError::from_status(&self.url, s))?
        else {
            return Ok(None);
        };
        let rows = IpcStreamReader::new(Cursor::new(p.arrow_ipc))
            .finish()
            .map_err(|e| ClientError::Malformed(format!("a result page: {e}")))?;
        Ok(Some(Page {
            rows,
            first_row: p.first_row,
            estimated_total: p.estimated_total,
            exact_total: p.exact_total,
            last: p.last,
            next_cursor: (!p.next_cursor.is_empty()).then_some(p.next_cursor),
        }))
    }
}

/// A job's updates as they arrive.
pub struct Updates {
    stream: Streaming<v1::JobUpdate>,
    url: String,
}

impl Updates {
    /// The job as it is now and its result so far; `None` once the stream ends.
    pub async fn next(&mut self) -> Result<Option<JobOutcome>> {
        let Some(u) = self
            .stream
            .message()
            .await
            .map_err(|s| ClientError::from_status(&self.url, s))?
        else {
            return Ok(None);
        };
        let job = u
            .job
            .ok_or_else(|| ClientError::Malformed("an update without its job".into()))?;
        outcome(job, u.partial.unwrap_or_default()).map(Some)
    }
}

/// Newly stored events as they arrive.
pub struct Live {
    stream: Streaming<v1::LiveEvent>,
    url: String,
}

/// A newly stored event.
#[derive(Clone, Debug)]
pub struct LiveEvent {
    pub summary: EventSummary,
    /// The whole event, when the subscription asked for it.
    pub event: Option<CollisionEvent>,
    /// Events this subscriber missed before this one (it fell behind).
    pub skipped: u64,
}

impl Live {
    /// The next stored event; `None` when alyxd ends the stream.
    pub async fn next(&mut self) -> Result<Option<LiveEvent>> {
        let Some(e) = self
            .stream
            .message()
            .await
            .map_err(|s| ClientError::from_status(&self.url, s))?
        else {
            return Ok(None);
        };
        let summary = e
            .summary
            .ok_or_else(|| ClientError::Malformed("a live event without its summary".into()))?;
        Ok(Some(LiveEvent {
            summary: summary.into(),
            event: e.event.map(CollisionEvent::try_from).transpose()?,
            skipped: e.skipped,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_url_or_a_closed_port_is_said_as_such() {
        assert!(matches!(
            Client::new("not a url", "t"),
            Err(ClientError::BadUrl { .. })
        ));
        // Nothing listens on port 1.
        let e = Client::connect("http://127.0.0.1:1", "t")
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|m| m.starts_with("cannot reach alyxd at http://127.0.0.1:1")),
            "{e:?}"
        );
        let lazy = Client::new("http://127.0.0.1:1", "t").expect("url");
        assert!(matches!(
            lazy.datasets().await,
            Err(ClientError::Unreachable { .. })
        ));
    }
}

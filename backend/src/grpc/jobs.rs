//! `alyx.v1.JobService` over the job store and scheduler.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alyx_analysis::jobs::{Analysis, HistogramSpec, JobState, TaskResult};
use alyx_proto::v1::job_service_server::{JobService, SERVICE_NAME};
use alyx_proto::{analysis, v1};
use alyx_query::{Dialect, print};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::query::parse_text;
use super::{Context, status};
use crate::auth::{Caller, Role};
use crate::jobs::Jobs;
use crate::jobs::store::{JobInfo, NewJob};

pub struct JobsApi {
    pub ctx: Context,
    pub jobs: Arc<Jobs>,
    /// Becomes true when alyxd shuts down: watch streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// How often a watch stream looks again without being told the job changed (estimates move,
/// a notification may be missed while PostgreSQL reconnects).
const WATCH_POLL: Duration = Duration::from_secs(2);

fn job_id(id: u64) -> Result<i64, Status> {
    i64::try_from(id).map_err(|_| Status::not_found(format!("no job {id}")))
}

fn result_to(r: &TaskResult, merged: u32, complete: bool) -> v1::JobResult {
    v1::JobResult {
        histograms: r
            .histograms
            .iter()
            .map(v1::HistogramResponse::from)
            .collect(),
        rows: r.rows,
        events: r.events,
        tasks_merged: merged,
        complete,
    }
}

impl JobsApi {
    async fn job(&self, job: &JobInfo) -> Result<v1::Job, Status> {
        let history = self.jobs.store.history(job.id).await.map_err(status)?;
        let left = self.jobs.seconds_left(job).await.map_err(status)?;
        Ok(v1::Job {
            id: job.id as u64,
            owner: job.owner.clone(),
            name: job.name.clone(),
            dataset: job.dataset.clone(),
            state: job.state.name().into(),
            reason: job.reason.clone(),
            target: v1::JobTarget::from(job.target) as i32,
            priority: job.priority,
            cores: job.cores as u32,
            memory_mb: job.memory_mb as u32,
            tasks_total: job.tasks_total as u32,
            tasks_done: job.tasks_done as u32,
            tasks_running: job.tasks_running as u32,
            tasks_failed: job.tasks_failed as u32,
            events_total: job.events_total as u64,
            events_done: job.events_done as u64,
            estimated_seconds_left: left,
            submitted_unix_ms: job.submitted_ms,
            started_unix_ms: job.started_ms.unwrap_or(0),
            finished_unix_ms: job.finished_ms.unwrap_or(0),
            history: history
                .into_iter()
                .map(|t| v1::Transition {
                    at_unix_ms: t.at_ms,
                    from: t.from.unwrap_or_default(),
                    to: t.to,
                    reason: t.reason,
                })
                .collect(),
            sql: print::to_sql(&job.analysis.query, Dialect::Alyx),
            histograms: job
                .analysis
                .histograms
                .iter()
                .map(v1::HistogramSpec::from)
                .collect(),
            running_on: job
                .running_on
                .iter()
                .map(|(k, v)| (k.clone(), *v as u32))
                .collect(),
            readers: job.readers.clone(),
        })
    }

    async fn result(&self, job: &JobInfo) -> Result<v1::JobResult, Status> {
        let (r, merged) = self.jobs.store.result(job).await.map_err(status)?;
        Ok(result_to(
            &r,
            merged,
            merged as i32 == job.tasks_total && job.state == JobState::Succeeded,
        ))
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<v1::JobUpdate, Status>> + Send>>;

/// A job, its progress and its results are visible to its owner, those it is shared with,
/// and operators.
fn may_see(caller: &Caller, job: &JobInfo) -> Result<(), Status> {
    if job.visible_to(caller) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "job {} belongs to another user who has not shared it with you",
            job.id
        )))
    }
}

#[tonic::async_trait]
impl JobService for JobsApi {
    async fn submit(
        &self,
        request: Request<v1::SubmitJobRequest>,
    ) -> Result<Response<v1::SubmitJobResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "SubmitJob", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let query = parse_text(r.query)?.map_err(|ds| {
                    let lines: Vec<String> = ds.iter().map(ToString::to_string).collect();
                    Status::invalid_argument(format!("job not submitted: {}", lines.join("; ")))
                })?;
                let histograms = r
                    .histograms
                    .into_iter()
                    .map(HistogramSpec::try_from)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let job = NewJob {
                    name: r.name,
                    dataset: r.dataset,
                    analysis: Analysis { query, histograms },
                    target: analysis::target(r.target)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?,
                    priority: r.priority,
                    cores: if r.cores == 0 { 1 } else { r.cores },
                    memory_mb: if r.memory_mb == 0 { 1024 } else { r.memory_mb },
                };
                let (id, estimate) = self.jobs.submit(&caller, job).await.map_err(status)?;
                Ok(Response::new(v1::SubmitJobResponse {
                    id: id as u64,
                    estimated_seconds: estimate,
                }))
            })
            .await
    }

    async fn get(&self, request: Request<v1::GetJobRequest>) -> Result<Response<v1::Job>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetJob", async {
                let caller = self.ctx.caller(&request).await?;
                let id = job_id(request.into_inner().id)?;
                let job = self.jobs.store.get(id).await.map_err(status)?;
                may_see(&caller, &job)?;
                Ok(Response::new(self.job(&job).await?))
            })
            .await
    }

    async fn list(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ListJobs", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let state = match r.state.as_str() {
                    "" => None,
                    s => Some(JobState::parse(s).ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "unknown state `{s}` (queued, running, preempted, succeeded, failed, cancelled)"
                        ))
                    })?),
                };
                let limit = match r.limit {
                    0 => 100,
                    n => n.min(1000),
                };
                // Operators list anyone's jobs; others those they own or were shared.
                let owner = match r.owner.as_str() {
                    "" => None,
                    "@me" => Some(caller.name.as_str()),
                    name => Some(name),
                };
                let reader = (caller.role != Role::Operator).then_some(caller.name.as_str());
                let found = self
                    .jobs
                    .store
                    .list(owner, reader, state, limit as i64)
                    .await
                    .map_err(status)?;
                let mut jobs = Vec::with_capacity(found.len());
                for j in &found {
                    jobs.push(self.job(j).await?);
                }
                Ok(Response::new(v1::ListJobsResponse { jobs }))
            })
            .await
    }

    async fn cancel(
        &self,
        request: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "CancelJob", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let id = job_id(r.id)?;
                let running = self.jobs.store.running_chunks(id).await.map_err(status)?;
                let job = self
                    .jobs
                    .store
                    .cancel(&caller, id, &r.reason)
                    .await
                    .map_err(status)?;
                for e in &self.jobs.executors {
                    for chunk in &running {
                        e.cancel(id, *chunk).await;
                    }
                }
                Ok(Response::new(self.job(&job).await?))
            })
            .await
    }

    async fn set_priority(
        &self,
        request: Request<v1::SetPriorityRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "SetJobPriority", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let job = self
                    .jobs
                    .store
                    .set_priority(&caller, job_id(r.id)?, r.priority)
                    .await
                    .map_err(status)?;
                self.jobs.scheduler.wake.notify_one();
                Ok(Response::new(self.job(&job).await?))
            })
            .await
    }

    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "WatchJob", async {
                let caller = self.ctx.caller(&request).await?;
                let admission = self.ctx.admit(&caller)?;
                let authorization = super::authorization(&request);
                let id = job_id(request.into_inner().id)?;
                let job = self.jobs.store.get(id).await.map_err(status)?;
                may_see(&caller, &job)?;
                let (tx, rx) = mpsc::channel(4);
                let api = JobsApi {
                    ctx: self.ctx.clone(),
                    jobs: self.jobs.clone(),
                    shutdown: self.shutdown.clone(),
                };
                let mut changes = self.jobs.changes.subscribe();
                super::request_id::spawn(async move {
                    let mut shutdown = api.shutdown.clone();
                    let mut last = None;
                    loop {
                        let update = async {
                            let job = api.jobs.store.get(id).await.map_err(status)?;
                            let seen = (job.state, job.tasks_done, job.tasks_running, job.priority);
                            if last == Some(seen) {
                                return Ok::<_, Status>(None);
                            }
                            last = Some(seen);
                            let partial = api.result(&job).await?;
                            let done = job.state.is_final();
                            Ok(Some((
                                v1::JobUpdate {
                                    job: Some(api.job(&job).await?),
                                    partial: Some(partial),
                                },
                                done,
                            )))
                        };
                        match update.await {
                            Ok(Some((u, done))) => {
                                if tx.send(Ok(u)).await.is_err() || done {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                        // Until this job changes (or the stream fell behind: look anyway).
                        let changed = async {
                            loop {
                                match changes.recv().await {
                                    Ok(changed) if changed != id => continue,
                                    Err(broadcast::error::RecvError::Closed) => {
                                        std::future::pending::<()>().await;
                                    }
                                    _ => return,
                                }
                            }
                        };
                        tokio::select! {
                            () = changed => {}
                            _ = tokio::time::sleep(WATCH_POLL) => {}
                            _ = shutdown.changed() => return,
                            // The client went away: nothing to watch for.
                            () = tx.closed() => return,
                        }
                    }
                });
                Ok(Response::new(self.ctx.until_revoked(
                    authorization,
                    admission,
                    ReceiverStream::new(rx),
                )))
            })
            .await
    }

    async fn get_result(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::JobResult>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetJobResult", async {
                let caller = self.ctx.caller(&request).await?;
                let id = job_id(request.into_inner().id)?;
                let job = self.jobs.store.get(id).await.map_err(status)?;
                may_see(&caller, &job)?;
                Ok(Response::new(self.result(&job).await?))
            })
            .await
    }

    async fn share(
        &self,
        request: Request<v1::ShareJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ShareJob", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                if r.user.is_empty() || r.user.len() > 64 {
                    return Err(Status::invalid_argument(
                        "share with a user name (1 to 64 bytes)",
                    ));
                }
                let job = self
                    .jobs
                    .store
                    .share(&caller, job_id(r.id)?, &r.user, r.revoke)
                    .await
                    .map_err(status)?;
                Ok(Response::new(self.job(&job).await?))
            })
            .await
    }
}

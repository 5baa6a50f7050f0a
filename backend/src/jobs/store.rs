//! The job store in PostgreSQL: submission (validated, all or nothing), state with its history,
//! the task queue taken with `FOR UPDATE SKIP LOCKED` under renewable leases, checkpoints (a
//! finished task's partial result), retries with backoff, and the merged result.

use std::time::Duration;

use alyx_analysis::jobs::{self, Analysis, AnalysisExt, JobState, Target, TaskResult};
use alyx_store::DataStore;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::predict::Sums;
use crate::auth::{Caller, Role};
use crate::error::{Error, Result};

/// Attempts of a task before the job fails.
pub const MAX_ATTEMPTS: i32 = 4;
/// Unfinished tasks in the whole queue beyond which submissions are refused.
pub const DEFAULT_QUEUE_LIMIT: i64 = 100_000;

/// A job to submit.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub name: String,
    pub dataset: String,
    pub analysis: Analysis,
    pub target: Target,
    pub priority: i32,
    pub cores: u32,
    pub memory_mb: u32,
}

/// A job as the store holds it, with its tasks counted.
#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub dataset: String,
    pub analysis: Analysis,
    pub target: Target,
    pub priority: i32,
    pub cores: i32,
    pub memory_mb: i32,
    pub state: JobState,
    pub reason: String,
    pub tasks_total: i32,
    pub tasks_done: i32,
    pub tasks_running: i32,
    pub tasks_failed: i32,
    pub events_total: i64,
    pub events_done: i64,
    pub estimated_seconds: Option<f64>,
    pub submitted_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Running tasks by executor.
    pub running_on: Vec<(String, i32)>,
    /// Users the owner shared the job with.
    pub readers: Vec<String>,
}

impl JobInfo {
    /// A job, its progress and its results are visible to its owner, the users it is shared
    /// with, and operators.
    pub fn visible_to(&self, caller: &Caller) -> bool {
        self.owner == caller.name
            || caller.role == Role::Operator
            || self.readers.contains(&caller.name)
    }
}

#[derive(Clone, Debug)]
pub struct TransitionInfo {
    pub at_ms: i64,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
}

/// A task handed to an executor.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub job_id: i64,
    pub chunk_id: i32,
    pub dataset: String,
    pub analysis: Analysis,
    pub priority: i32,
    pub cores: i32,
    pub memory_mb: i32,
    pub events: i64,
    pub bytes: i64,
    pub attempt: i32,
    /// The W3C `traceparent` of the call that submitted the job ("" without traces): its
    /// tasks' spans continue that trace.
    pub traceparent: String,
}

/// What a claim is for: an executor, where it is, and the scheduler's limits.
#[derive(Clone, Debug)]
pub struct ClaimFor<'a> {
    /// `local`, `spark`, `slurm`.
    pub name: &'a str,
    /// The job targets it serves.
    pub targets: &'a [&'a str],
    /// The site whose replicas it reads locally.
    pub site: &'a str,
    /// Running tasks per owner at most.
    pub quota: i64,
    pub lease: Duration,
    /// How long a job with target auto waits for an executor at its chunks' sites.
    pub locality_wait: Duration,
}

/// A chunk replica at a site.
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    pub dataset: String,
    pub chunk_id: i32,
    pub site: String,
}

/// Records that `chunks` of `dataset` have replicas at `site`; how many were new.
pub async fn add_replicas(pool: &PgPool, dataset: &str, chunks: &[i32], site: &str) -> Result<u64> {
    if site.trim().is_empty() {
        return Err(Error::InvalidArgument("a site needs a name".into()));
    }
    Ok(sqlx::query(
        "INSERT INTO chunk_replicas (dataset, chunk_id, site) SELECT $1, c, $3 FROM unnest($2::int[]) c \
         ON CONFLICT DO NOTHING",
    )
    .bind(dataset)
    .bind(chunks)
    .bind(site)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Forgets the replicas of `chunks` (all chunks when empty) of `dataset` at `site`.
pub async fn remove_replicas(
    pool: &PgPool,
    dataset: &str,
    chunks: &[i32],
    site: &str,
) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM chunk_replicas WHERE dataset = $1 AND site = $3 \
         AND (cardinality($2::int[]) = 0 OR chunk_id = ANY($2))",
    )
    .bind(dataset)
    .bind(chunks)
    .bind(site)
    .execute(pool)
    .await?
    .rows_affected())
}

/// The replicas recorded, of `dataset` when given.
pub async fn replicas(pool: &PgPool, dataset: Option<&str>) -> Result<Vec<Replica>> {
    let rows = sqlx::query(
        "SELECT dataset, chunk_id, site FROM chunk_replicas WHERE $1::text IS NULL OR dataset = $1 \
         ORDER BY dataset, site, chunk_id",
    )
    .bind(dataset)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Replica {
                dataset: r.try_get("dataset")?,
                chunk_id: r.try_get("chunk_id")?,
                site: r.try_get("site")?,
            })
        })
        .collect()
}

#[derive(Clone)]
pub struct JobStore {
    pub pool: PgPool,
    pub store: DataStore,
    /// Unfinished tasks in the whole queue at most.
    pub queue_limit: i64,
    /// Unfinished tasks of one user at most.
    pub user_queue_limit: i64,
}

/// Refuses a priority above what the caller's role may ask for.
fn ceiling(caller: &Caller, priority: i32) -> Result<()> {
    let most = caller.role.max_priority();
    if priority > most {
        return Err(Error::PermissionDenied(format!(
            "priority {priority} is above what role {} may ask for ({most})",
            caller.role.as_str()
        )));
    }
    Ok(())
}

const JOB_COLUMNS: &str = "j.id, j.owner, j.name, j.dataset, j.analysis, j.target, j.priority, j.cores, \
     j.memory_mb, j.state, j.reason, j.tasks_total, j.events_total, j.estimated_seconds, \
     (extract(epoch FROM j.submitted_at) * 1000)::bigint AS submitted_ms, \
     (extract(epoch FROM j.started_at) * 1000)::bigint AS started_ms, \
     (extract(epoch FROM j.finished_at) * 1000)::bigint AS finished_ms, \
     (SELECT count(*) FILTER (WHERE state = 'done') FROM job_tasks t WHERE t.job_id = j.id)::int AS done, \
     (SELECT count(*) FILTER (WHERE state = 'running') FROM job_tasks t WHERE t.job_id = j.id)::int AS running, \
     (SELECT count(*) FILTER (WHERE state = 'failed') FROM job_tasks t WHERE t.job_id = j.id)::int AS failed, \
     (SELECT coalesce(sum(events) FILTER (WHERE state = 'done'), 0) FROM job_tasks t WHERE t.job_id = j.id)::bigint AS events_done, \
     (SELECT coalesce(jsonb_object_agg(executor, n), '{}') FROM (SELECT executor, count(*) AS n FROM job_tasks t \
        WHERE t.job_id = j.id AND state = 'running' AND executor IS NOT NULL GROUP BY executor) e)::text AS running_on, \
     (SELECT coalesce(array_agg(user_name ORDER BY user_name), '{}') FROM job_readers r WHERE r.job_id = j.id) AS readers";

fn job_from_row(row: &sqlx::postgres::PgRow) -> Result<JobInfo> {
    let analysis: serde_json::Value = row.try_get("analysis")?;
    let analysis: Analysis = serde_json::from_value(analysis)
        .map_err(|e| Error::Internal(format!("stored analysis does not read back: {e}")))?;
    let state: String = row.try_get("state")?;
    let target: String = row.try_get("target")?;
    let running_on: String = row.try_get("running_on")?;
    let running_on: std::collections::BTreeMap<String, i32> =
        serde_json::from_str(&running_on).unwrap_or_default();
    Ok(JobInfo {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        dataset: row.try_get("dataset")?,
        analysis,
        target: Target::parse(&target)
            .ok_or_else(|| Error::Internal(format!("stored target `{target}`")))?,
        priority: row.try_get("priority")?,
        cores: row.try_get("cores")?,
        memory_mb: row.try_get("memory_mb")?,
        state: JobState::parse(&state)
            .ok_or_else(|| Error::Internal(format!("stored state `{state}`")))?,
        reason: row.try_get("reason")?,
        tasks_total: row.try_get("tasks_total")?,
        tasks_done: row.try_get("done")?,
        tasks_running: row.try_get("running")?,
        tasks_failed: row.try_get("failed")?,
        events_total: row.try_get("events_total")?,
        events_done: row.try_get("events_done")?,
        estimated_seconds: row.try_get("estimated_seconds")?,
        submitted_ms: row.try_get("submitted_ms")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        running_on: running_on.into_iter().collect(),
        readers: row.try_get("readers")?,
    })
}

async fn transition(
    tx: &mut Transaction<'_, Postgres>,
    job: i64,
    from: Option<JobState>,
    to: JobState,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO job_transitions (job_id, from_state, to_state, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(job)
    .bind(from.map(JobState::name))
    .bind(to.name())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves job `job` to `to` when it is in one of `from`; false when it was not.
async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    job: i64,
    from: &[JobState],
    to: JobState,
    reason: &str,
) -> Result<bool> {
    let from_names: Vec<&str> = from.iter().map(|s| s.name()).collect();
    let old: Option<String> = sqlx::query_scalar(
        "UPDATE jobs j SET state = $2, reason = $3, \
            started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END, \
            finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() ELSE NULL END \
         FROM (SELECT state FROM jobs WHERE id = $1 FOR UPDATE) old \
         WHERE j.id = $1 AND j.state = ANY($4) RETURNING old.state",
    )
    .bind(job)
    .bind(to.name())
    .bind(reason)
    .bind(&from_names)
    .fetch_optional(&mut **tx)
    .await?;
    match old {
        Some(old) => {
            transition(tx, job, JobState::parse(&old), to, reason).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Locks job `job`'s row: whatever changes a job's tasks and then its state takes the job first,
/// so such transactions take turns and never deadlock.
async fn lock_job(tx: &mut Transaction<'_, Postgres>, job: i64) -> Result<()> {
    sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(job)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Backoff before attempt `attempt + 1`: 1 s, 2 s, 4 s … (at most a minute), ±25 % jitter.
pub fn backoff(attempt: i32) -> Duration {
    let base = 2f64.powi(attempt.clamp(1, 7) - 1).min(60.0);
    let jitter = 0.75 + 0.5 * rand::random::<f64>();
    Duration::from_secs_f64(base * jitter)
}

impl JobStore {
    /// Validates `job` and queues it with one task per chunk; nothing is stored on error.
    /// `queued` is the number of unfinished tasks in the queue (recent, not exact: the limit is
    /// a bound on the queue's growth, not a count to the task).
    pub async fn submit(
        &self,
        owner: &Caller,
        job: NewJob,
        estimated_seconds: f64,
        queued: i64,
    ) -> Result<i64> {
        let mut problems = Vec::new();
        if let Err(ds) = job.analysis.check() {
            problems.extend(ds.iter().map(ToString::to_string));
        }
        if !(-100..=100).contains(&job.priority) {
            problems.push(format!("priority {} is outside -100..100", job.priority));
        }
        if !(1..=256).contains(&job.cores) {
            problems.push(format!("cores {} is outside 1..256", job.cores));
        }
        if !(64..=1 << 20).contains(&job.memory_mb) {
            problems.push(format!(
                "memory {} MiB is outside 64 MiB..1 TiB",
                job.memory_mb
            ));
        }
        if job.name.len() > 200 {
            problems.push("the name is longer than 200 characters".into());
        }
        let chunks = match self.store.dataset(&job.dataset) {
            Ok(ds) => ds.manifest().chunks.clone(),
            Err(_) => {
                problems.push(format!("no dataset `{}`", job.dataset));
                Vec::new()
            }
        };
        if problems.is_empty() && chunks.is_empty() {
            problems.push(format!("dataset `{}` holds no events", job.dataset));
        }
        if !problems.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "job not submitted: {}",
                problems.join("; ")
            )));
        }
        ceiling(owner, job.priority)?;
        let own: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_tasks t JOIN jobs j ON j.id = t.job_id
             WHERE j.owner = $1 AND t.state IN ('pending', 'running')",
        )
        .bind(&owner.name)
        .fetch_one(&self.pool)
        .await?;
        if own + chunks.len() as i64 > self.user_queue_limit {
            return Err(Error::ResourceExhausted(format!(
                "user `{}` has {own} tasks waiting or running; one user may have {} \
                 (this job adds {}): wait for some to finish",
                owner.name,
                self.user_queue_limit,
                chunks.len()
            )));
        }
        if queued + chunks.len() as i64 > self.queue_limit {
            return Err(Error::ResourceExhausted(format!(
                "the job queue is full ({queued} tasks waiting or running, limit {}): \
                 try again in about {:.0} s",
                self.queue_limit,
                estimated_seconds.max(1.0)
            )));
        }
        let events: i64 = chunks.iter().map(|c| c.event_count as i64).sum();
        let bytes =
            |c: &alyx_store::Chunk| -> i64 { c.files.values().map(|f| f.bytes as i64).sum() };
        let analysis = serde_json::to_value(&job.analysis)
            .map_err(|e| Error::Internal(format!("analysis to JSON: {e}")))?;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (owner, name, dataset, analysis, target, priority, cores, memory_mb, state, \
                               tasks_total, events_total, bytes_total, complexity, histograms, estimated_seconds, traceparent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(&owner.name)
        .bind(&job.name)
        .bind(&job.dataset)
        .bind(&analysis)
        .bind(job.target.name())
        .bind(job.priority)
        .bind(job.cores as i32)
        .bind(job.memory_mb as i32)
        .bind(chunks.len() as i32)
        .bind(events)
        .bind(chunks.iter().map(bytes).sum::<i64>())
        .bind(job.analysis.complexity() as i32)
        .bind(job.analysis.histograms.len() as i32)
        .bind(estimated_seconds)
        .bind(crate::telemetry::traceparent())
        .fetch_one(&mut *tx)
        .await?;
        let ids: Vec<i32> = chunks.iter().map(|c| c.id as i32).collect();
        let counts: Vec<i64> = chunks.iter().map(|c| c.event_count as i64).collect();
        let sizes: Vec<i64> = chunks.iter().map(bytes).collect();
        // Each task records the sites holding its chunk now (data locality for target auto).
        sqlx::query(
            "INSERT INTO job_tasks (job_id, chunk_id, events, bytes, sites) \
             SELECT $1, c.id, c.events, c.bytes, \
                    (SELECT array_agg(r.site ORDER BY r.site) FROM chunk_replicas r \
                     WHERE r.dataset = $5 AND r.chunk_id = c.id) \
             FROM unnest($2::int[], $3::bigint[], $4::bigint[]) AS c (id, events, bytes)",
        )
        .bind(id)
        .bind(&ids)
        .bind(&counts)
        .bind(&sizes)
        .bind(&job.dataset)
        .execute(&mut *tx)
        .await?;
        transition(&mut tx, id, None, JobState::Queued, "submitted").await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn get(&self, id: i64) -> Result<JobInfo> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no job {id}")))?;
        job_from_row(&row)
    }

    pub async fn history(&self, id: i64) -> Result<Vec<TransitionInfo>> {
        let rows = sqlx::query(
            "SELECT (extract(epoch FROM at) * 1000)::bigint AS at_ms, from_state, to_state, reason \
             FROM job_transitions WHERE job_id = $1 ORDER BY at, to_state",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TransitionInfo {
                    at_ms: r.try_get("at_ms")?,
                    from: r.try_get("from_state")?,
                    to: r.try_get("to_state")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Jobs, newest first, of `owner` and in `state` when given, that `reader` (when given)
    /// owns or was shared.
    pub async fn list(
        &self,
        owner: Option<&str>,
        reader: Option<&str>,
        state: Option<JobState>,
        limit: i64,
    ) -> Result<Vec<JobInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j \
             WHERE ($1::text IS NULL OR j.owner = $1) AND ($2::text IS NULL OR j.state = $2) \
               AND ($4::text IS NULL OR j.owner = $4 OR EXISTS \
                    (SELECT 1 FROM job_readers r WHERE r.job_id = j.id AND r.user_name = $4)) \
             ORDER BY j.id DESC LIMIT $3"
        ))
        .bind(owner)
        .bind(state.map(JobState::name))
        .bind(limit)
        .bind(reader)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn owned(&self, caller: &Caller, id: i64, what: &str) -> Result<JobInfo> {
        let job = self.get(id).await?;
        if job.owner != caller.name && caller.role != Role::Operator {
            return Err(Error::PermissionDenied(format!(
                "only {} (the owner) or an operator may {what} job {id}",
                job.owner
            )));
        }
        Ok(job)
    }

    /// Lets `user` see job `id` and its result (or no longer, `revoke`); the owner's or an
    /// operator's call.
    pub async fn share(
        &self,
        caller: &Caller,
        id: i64,
        user: &str,
        revoke: bool,
    ) -> Result<JobInfo> {
        let job = self.owned(caller, id, "share").await?;
        if revoke {
            sqlx::query("DELETE FROM job_readers WHERE job_id = $1 AND user_name = $2")
                .bind(id)
                .bind(user)
                .execute(&self.pool)
                .await?;
        } else if user != job.owner {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)")
                    .bind(user)
                    .fetch_one(&self.pool)
                    .await?;
            if !known {
                return Err(Error::NotFound(format!(
                    "no user `{user}` to share job {id} with"
                )));
            }
            sqlx::query("INSERT INTO job_readers (job_id, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(user)
                .execute(&self.pool)
                .await?;
        }
        self.get(id).await
    }

    /// Cancels a job that has not ended; its unfinished tasks never run.
    pub async fn cancel(&self, caller: &Caller, id: i64, reason: &str) -> Result<JobInfo> {
        let job = self.owned(caller, id, "cancel").await?;
        if job.state.is_final() {
            return Err(Error::FailedPrecondition(format!(
                "job {id} has already {}",
                job.state.name()
            )));
        }
        let reason = if reason.is_empty() {
            format!("cancelled by {}", caller.name)
        } else {
            format!("cancelled by {}: {reason}", caller.name)
        };
        let mut tx = self.pool.begin().await?;
        let live = [JobState::Queued, JobState::Running, JobState::Preempted];
        set_state(&mut tx, id, &live, JobState::Cancelled, &reason).await?;
        sqlx::query(
            "UPDATE job_tasks SET state = 'pending', worker = NULL, lease_until = NULL \
             WHERE job_id = $1 AND state = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get(id).await
    }

    pub async fn set_priority(&self, caller: &Caller, id: i64, priority: i32) -> Result<JobInfo> {
        if !(-100..=100).contains(&priority) {
            return Err(Error::InvalidArgument(format!(
                "priority {priority} is outside -100..100"
            )));
        }
        ceiling(caller, priority)?;
        self.owned(caller, id, "change the priority of").await?;
        sqlx::query("UPDATE jobs SET priority = $2 WHERE id = $1")
            .bind(id)
            .bind(priority)
            .execute(&self.pool)
            .await?;
        self.get(id).await
    }

    /// Takes up to `n` runnable tasks for `executor` (jobs with target `targets`) under a lease
    /// held by `worker`: highest priority first, then the owner with the fewest running tasks
    /// (fair share), then the oldest job; owners at `quota` running tasks wait.
    ///
    /// Data locality (delay scheduling): a task of a job with target auto whose chunk has
    /// replicas goes to an executor at one of their sites (`site`), or to any executor once the
    /// job has waited `locality_wait`; within a priority, tasks local to `site` come first.
    pub async fn claim(
        &self,
        worker: &str,
        executor: &ClaimFor<'_>,
        n: i64,
    ) -> Result<Vec<Claimed>> {
        if n <= 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "WITH running AS (SELECT j.owner, count(*) AS n FROM job_tasks t JOIN jobs j ON j.id = t.job_id \
                              WHERE t.state = 'running' GROUP BY j.owner), \
             picked AS (SELECT t.job_id, t.chunk_id FROM jobs j \
                          JOIN job_tasks t ON t.job_id = j.id AND t.state = 'pending' \
                          LEFT JOIN running r ON r.owner = j.owner \
                        WHERE j.state IN ('queued', 'running', 'preempted') \
                          AND (t.not_before IS NULL OR t.not_before <= now()) \
                          AND j.target = ANY($3) AND coalesce(r.n, 0) < $5 \
                          AND (j.target <> 'auto' OR t.sites IS NULL OR $7 = ANY(t.sites) \
                               OR j.submitted_at <= now() - make_interval(secs => $8)) \
                        ORDER BY j.priority DESC, (t.sites IS NOT NULL AND NOT $7 = ANY(t.sites)), \
                                 coalesce(r.n, 0), j.id, t.chunk_id \
                        LIMIT $4 FOR UPDATE OF t SKIP LOCKED) \
             UPDATE job_tasks t SET state = 'running', worker = $1, executor = $2, attempts = attempts + 1, \
                    lease_until = now() + make_interval(secs => $6), started_at = now(), error = NULL \
             FROM picked p, jobs j WHERE t.job_id = p.job_id AND t.chunk_id = p.chunk_id AND j.id = t.job_id \
             RETURNING t.job_id, t.chunk_id, j.dataset, j.analysis, j.priority, j.cores, j.memory_mb, t.events, t.bytes, t.attempts, j.traceparent",
        )
        .bind(worker)
        .bind(executor.name)
        .bind(executor.targets)
        .bind(n)
        .bind(executor.quota)
        .bind(executor.lease.as_secs_f64())
        .bind(executor.site)
        .bind(executor.locality_wait.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let analysis: serde_json::Value = r.try_get("analysis")?;
            claimed.push(Claimed {
                job_id: r.try_get("job_id")?,
                chunk_id: r.try_get("chunk_id")?,
                dataset: r.try_get("dataset")?,
                analysis: serde_json::from_value(analysis)
                    .map_err(|e| Error::Internal(format!("stored analysis: {e}")))?,
                priority: r.try_get("priority")?,
                cores: r.try_get("cores")?,
                memory_mb: r.try_get("memory_mb")?,
                events: r.try_get("events")?,
                bytes: r.try_get("bytes")?,
                attempt: r.try_get("attempts")?,
                traceparent: r.try_get("traceparent")?,
            });
        }
        let mut jobs: Vec<i64> = claimed.iter().map(|c| c.job_id).collect();
        jobs.dedup();
        for job in jobs {
            set_state(
                &mut tx,
                job,
                &[JobState::Queued, JobState::Preempted],
                JobState::Running,
                &format!("running on {}", executor.name),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Extends the leases of the tasks `worker` runs.
    pub async fn renew(&self, worker: &str, lease: Duration) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE job_tasks SET lease_until = now() + make_interval(secs => $2) \
             WHERE worker = $1 AND state = 'running'",
        )
        .bind(worker)
        .bind(lease.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Puts tasks whose lease ran out (their instance or worker is gone) back in the queue.
    /// Each claim counted an attempt: a task whose run keeps killing its worker fails its job
    /// after `MAX_ATTEMPTS` instead of coming back forever.
    pub async fn requeue_expired(&self) -> Result<u64> {
        // Job row first, then its tasks: the order every other writer locks them in.
        let jobs: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT job_id FROM job_tasks \
             WHERE state = 'running' AND lease_until < now() AND attempts >= $1",
        )
        .bind(MAX_ATTEMPTS)
        .fetch_all(&self.pool)
        .await?;
        for job in jobs {
            let mut tx = self.pool.begin().await?;
            lock_job(&mut tx, job).await?;
            let doomed: Vec<(i32, String)> = sqlx::query_as(
                "UPDATE job_tasks SET state = 'failed', lease_until = NULL, finished_at = now(), \
                        error = 'lease expired on ' || coalesce(worker, '?') || ' at every attempt' \
                 WHERE job_id = $1 AND state = 'running' AND lease_until < now() AND attempts >= $2 \
                 RETURNING chunk_id, coalesce(worker, '?')",
            )
            .bind(job)
            .bind(MAX_ATTEMPTS)
            .fetch_all(&mut *tx)
            .await?;
            if let Some((chunk, worker)) = doomed.first() {
                let reason = format!(
                    "chunk {chunk} ran {MAX_ATTEMPTS} times and its worker ({worker}) stopped answering each time (crashed or killed?)"
                );
                set_state(
                    &mut tx,
                    job,
                    &[JobState::Queued, JobState::Running, JobState::Preempted],
                    JobState::Failed,
                    &reason,
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(sqlx::query(
            "UPDATE job_tasks SET state = 'pending', error = 'lease expired on ' || coalesce(worker, '?'), \
                    worker = NULL, lease_until = NULL \
             WHERE state = 'running' AND lease_until < now()",
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Stores a finished task's partial result (the checkpoint) if `worker` still holds it;
    /// the job succeeds with its last task. False when the task was taken away (preempted,
    /// cancelled, lease lost): the result is dropped.
    pub async fn complete(
        &self,
        task: &Claimed,
        worker: &str,
        result: &TaskResult,
        seconds: f64,
    ) -> Result<bool> {
        let value = serde_json::to_value(result)
            .map_err(|e| Error::Internal(format!("task result to JSON: {e}")))?;
        let mut tx = self.pool.begin().await?;
        // Completions of one job take turns: the last one must see every other as done.
        lock_job(&mut tx, task.job_id).await?;
        let executor: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE job_tasks SET state = 'done', result = $4, seconds = $5, finished_at = now(), \
                    lease_until = NULL \
             WHERE job_id = $1 AND chunk_id = $2 AND worker = $3 AND state = 'running' RETURNING executor",
        )
        .bind(task.job_id)
        .bind(task.chunk_id)
        .bind(worker)
        .bind(&value)
        .bind(seconds)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(executor) = executor else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO task_history (executor, events, bytes, complexity, histograms, cores, seconds) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(executor.unwrap_or_default())
        .bind(task.events)
        .bind(task.bytes)
        .bind(task.analysis.complexity() as i32)
        .bind(task.analysis.histograms.len() as i32)
        .bind(task.cores)
        .bind(seconds)
        .execute(&mut *tx)
        .await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_tasks WHERE job_id = $1 AND state <> 'done'",
        )
        .bind(task.job_id)
        .fetch_one(&mut *tx)
        .await?;
        if left == 0 {
            set_state(
                &mut tx,
                task.job_id,
                &[JobState::Running, JobState::Queued, JobState::Preempted],
                JobState::Succeeded,
                "every task done",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a failed attempt: the task waits (exponential backoff with jitter) and runs
    /// again, or after `MAX_ATTEMPTS` the job fails with the reason.
    pub async fn fail(&self, task: &Claimed, worker: &str, error: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_job(&mut tx, task.job_id).await?;
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempts FROM job_tasks WHERE job_id = $1 AND chunk_id = $2 AND worker = $3 \
             AND state = 'running' FOR UPDATE",
        )
        .bind(task.job_id)
        .bind(task.chunk_id)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(attempts) = attempts else {
            return Ok(());
        };
        if attempts >= MAX_ATTEMPTS {
            sqlx::query(
                "UPDATE job_tasks SET state = 'failed', error = $3, lease_until = NULL, finished_at = now() \
                 WHERE job_id = $1 AND chunk_id = $2",
            )
            .bind(task.job_id)
            .bind(task.chunk_id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            let reason = format!(
                "chunk {} failed {attempts} times; last: {error}",
                task.chunk_id
            );
            set_state(
                &mut tx,
                task.job_id,
                &[JobState::Queued, JobState::Running, JobState::Preempted],
                JobState::Failed,
                &reason,
            )
            .await?;
        } else {
            sqlx::query(
                "UPDATE job_tasks SET state = 'pending', error = $3, worker = NULL, lease_until = NULL, \
                        not_before = now() + make_interval(secs => $4) \
                 WHERE job_id = $1 AND chunk_id = $2",
            )
            .bind(task.job_id)
            .bind(task.chunk_id)
            .bind(error)
            .bind(backoff(attempts).as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives running tasks back to the queue without counting an attempt (preemption); jobs
    /// left with nothing running become preempted.
    pub async fn preempt(&self, tasks: &[(i64, i32)], worker: &str, by: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for (job, chunk) in tasks {
            lock_job(&mut tx, *job).await?;
            n += sqlx::query(
                "UPDATE job_tasks SET state = 'pending', worker = NULL, lease_until = NULL, \
                        attempts = greatest(attempts - 1, 0), error = $4 \
                 WHERE job_id = $1 AND chunk_id = $2 AND worker = $3 AND state = 'running'",
            )
            .bind(job)
            .bind(chunk)
            .bind(worker)
            .bind(format!("preempted by {by}"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM job_tasks WHERE job_id = $1 AND state = 'running'",
            )
            .bind(job)
            .fetch_one(&mut *tx)
            .await?;
            if running == 0 {
                set_state(
                    &mut tx,
                    *job,
                    &[JobState::Running],
                    JobState::Preempted,
                    &format!("preempted by {by}"),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Gives a task back to the queue without counting the attempt: its executor became
    /// unavailable (the circuit breaker then holds its tasks until it returns).
    pub async fn release(&self, task: &Claimed, worker: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE job_tasks SET state = 'pending', worker = NULL, lease_until = NULL, \
                    attempts = greatest(attempts - 1, 0), error = $4 \
             WHERE job_id = $1 AND chunk_id = $2 AND worker = $3 AND state = 'running'",
        )
        .bind(task.job_id)
        .bind(task.chunk_id)
        .bind(worker)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Says why live jobs for `targets` wait (their executor is down), or clears that.
    pub async fn note_waiting(&self, targets: &[&str], reason: Option<&str>) -> Result<()> {
        match reason {
            Some(reason) => {
                sqlx::query(
                    "UPDATE jobs SET reason = $2 WHERE target = ANY($1) \
                     AND state IN ('queued', 'running', 'preempted') AND reason <> $2",
                )
                .bind(targets)
                .bind(format!("waiting: {reason}"))
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE jobs SET reason = '' WHERE target = ANY($1) \
                     AND state IN ('queued', 'running', 'preempted') AND reason LIKE 'waiting: %'",
                )
                .bind(targets)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The unfinished tasks of live jobs, summed per priority (for estimates and the queue
    /// limit), highest priority first.
    pub async fn queue_summary(&self) -> Result<Vec<(i32, Sums)>> {
        let rows: Vec<(i32, i64, f64, f64, f64, f64)> = sqlx::query_as(
            "SELECT j.priority, count(*), sum(t.events)::float8, sum(t.bytes)::float8, \
                    sum(t.events * j.complexity)::float8, sum(t.events * j.histograms)::float8 \
             FROM jobs j JOIN job_tasks t ON t.job_id = j.id \
             WHERE j.state IN ('queued', 'running', 'preempted') AND t.state IN ('pending', 'running') \
             GROUP BY j.priority ORDER BY j.priority DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, n, events, bytes, ec, eh)| {
                (
                    p,
                    Sums {
                        tasks: n as f64,
                        events,
                        bytes,
                        events_complexity: ec,
                        events_histograms: eh,
                    },
                )
            })
            .collect())
    }

    /// The unfinished tasks of `job`, summed.
    pub async fn job_sums(&self, job: &JobInfo) -> Result<Sums> {
        let (n, events, bytes): (i64, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT count(*), sum(events)::float8, sum(bytes)::float8 FROM job_tasks \
             WHERE job_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(job.id)
        .fetch_one(&self.pool)
        .await?;
        let events = events.unwrap_or(0.0);
        Ok(Sums {
            tasks: n as f64,
            events,
            bytes: bytes.unwrap_or(0.0),
            events_complexity: events * job.analysis.complexity() as f64,
            events_histograms: events * job.analysis.histograms.len() as f64,
        })
    }

    /// The chunks of `job` that run now.
    pub async fn running_chunks(&self, job: i64) -> Result<Vec<i32>> {
        Ok(sqlx::query_scalar(
            "SELECT chunk_id FROM job_tasks WHERE job_id = $1 AND state = 'running'",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The highest priority among runnable pending tasks of jobs with target `targets`.
    pub async fn top_waiting_priority(&self, targets: &[&str]) -> Result<Option<(i32, i64)>> {
        let row = sqlx::query(
            "SELECT j.priority, j.id FROM jobs j JOIN job_tasks t ON t.job_id = j.id AND t.state = 'pending' \
             WHERE j.state IN ('queued', 'running', 'preempted') \
               AND (t.not_before IS NULL OR t.not_before <= now()) AND j.target = ANY($1) \
             ORDER BY j.priority DESC, j.id LIMIT 1",
        )
        .bind(targets)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// The job's result from the tasks done so far, merged in chunk order; the number merged.
    pub async fn result(&self, job: &JobInfo) -> Result<(TaskResult, u32)> {
        let rows = sqlx::query(
            "SELECT chunk_id, result FROM job_tasks WHERE job_id = $1 AND state = 'done' ORDER BY chunk_id",
        )
        .bind(job.id)
        .fetch_all(&self.pool)
        .await?;
        let mut parts = Vec::with_capacity(rows.len());
        for r in &rows {
            let chunk: i32 = r.try_get("chunk_id")?;
            let value: serde_json::Value = r.try_get("result")?;
            let part: TaskResult = serde_json::from_value(value).map_err(|e| {
                Error::Internal(format!(
                    "checkpoint of chunk {chunk} does not read back: {e}"
                ))
            })?;
            parts.push((chunk as u32, part));
        }
        let n = parts.len() as u32;
        Ok((jobs::merge(&job.analysis, parts)?, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_minute() {
        for attempt in 1..=10 {
            let base = 2f64.powi(attempt.min(7) - 1).min(60.0);
            for _ in 0..50 {
                let b = backoff(attempt).as_secs_f64();
                assert!(
                    (0.75 * base..=1.25 * base).contains(&b),
                    "attempt {attempt}: {b}"
                );
            }
        }
        let spread: std::collections::HashSet<u64> =
            (0..20).map(|_| backoff(3).as_millis() as u64).collect();
        assert!(spread.len() > 5, "jitter varies the wait");
    }
}

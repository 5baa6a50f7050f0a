//! Analysis jobs: the job store (`store`), the scheduler loop (`scheduler`), executors
//! (`executor`) and run-time prediction (`predict`). `Jobs` ties them together for the gRPC
//! service: submission with an estimate, and estimates of what is left.

pub mod executor;
pub mod predict;
pub mod scheduler;
pub mod store;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::error::Result;
use crate::notify::{Notice, Notifications};
use executor::Executor;
use predict::{Model, Sample, Sums};
use store::{JobInfo, JobStore, NewJob};

/// How often the run-time models are refitted from the history.
const REFIT: Duration = Duration::from_secs(30);
/// Finished tasks each model learns from (the newest).
const HISTORY: i64 = 5_000;
/// How old the queue summary behind estimates and the queue limit may be.
const SUMMARY_AGE: Duration = Duration::from_secs(1);

pub struct Jobs {
    pub store: JobStore,
    pub scheduler: Arc<scheduler::Scheduler>,
    pub executors: Vec<Arc<dyn Executor>>,
    /// Ids of jobs that changed, on any instance (`alyx_jobs` notifications): watch streams
    /// follow them.
    pub changes: broadcast::Sender<i64>,
    models: Mutex<Option<(Instant, Arc<Model>)>>,
    summary: Mutex<Option<(Instant, Arc<Vec<(i32, Sums)>>)>>,
}

/// Follows the `alyx_jobs` channel (every task state change, job transition and priority change
/// on every instance) until `shutdown`: wakes the scheduler, so work submitted or released on
/// another instance is claimed at once, and tells watchers which job changed. Reconnects when
/// PostgreSQL goes; watchers also look again every few seconds, so a missed notification only
/// delays them.
pub async fn follow(
    pool: sqlx::PgPool,
    changes: broadcast::Sender<i64>,
    wake: Arc<tokio::sync::Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut notifications = Notifications::new(pool, &["alyx_jobs"], "job changes");
    loop {
        let notice = tokio::select! {
            _ = &mut shutdown => return,
            n = notifications.next() => n,
        };
        // Listening again: whatever changed meanwhile is claimable now.
        wake.notify_one();
        let Notice::Message(n) = notice else {
            continue;
        };
        match n.payload().parse::<i64>() {
            Ok(id) => {
                let _ = changes.send(id);
            }
            Err(_) => tracing::warn!(payload = n.payload(), "malformed alyx_jobs notification"),
        }
    }
}

impl Jobs {
    pub fn new(
        store: JobStore,
        scheduler: Arc<scheduler::Scheduler>,
        executors: Vec<Arc<dyn Executor>>,
    ) -> Self {
        Self {
            store,
            scheduler,
            executors,
            changes: broadcast::channel(1024).0,
            models: Mutex::new(None),
            summary: Mutex::new(None),
        }
    }

    /// The local executor's model, refitted when older than `REFIT`.
    async fn model(&self) -> Result<Arc<Model>> {
        let cached = self
            .models
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < REFIT)
            .map(|(_, m)| m.clone());
        if let Some(m) = cached {
            return Ok(m);
        }
        let history = predict::history(&self.store.pool, "local", HISTORY).await?;
        let model = Arc::new(Model::fit(&history));
        *self.models.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), model.clone()));
        Ok(model)
    }

    fn slots(&self) -> usize {
        self.executors
            .iter()
            .map(|e| e.slots())
            .sum::<usize>()
            .max(1)
    }

    /// The queue's unfinished work per priority, at most `SUMMARY_AGE` old: submissions in a
    /// burst share one scan of the queue.
    async fn queue(&self) -> Result<Arc<Vec<(i32, Sums)>>> {
        let cached = self
            .summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SUMMARY_AGE)
            .map(|(_, s)| s.clone());
        if let Some(s) = cached {
            return Ok(s);
        }
        let summary = Arc::new(self.store.queue_summary().await?);
        *self.summary.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), summary.clone()));
        Ok(summary)
    }

    /// Seconds of the work in `sums`, spread over the slots it can use.
    async fn seconds(&self, sums: &Sums) -> Result<f64> {
        if sums.tasks == 0.0 {
            return Ok(0.0);
        }
        let model = self.model().await?;
        let slots = (self.slots() as f64).min(sums.tasks);
        Ok(model.predict_sum(sums) / slots)
    }

    /// Validates and queues `job`; its id and the estimated seconds to its end (the work queued
    /// ahead of it at its priority or above, then its own).
    pub async fn submit(&self, owner: &Caller, job: NewJob) -> Result<(i64, f64)> {
        let queue = self.queue().await?;
        let mut ahead = Sums::default();
        for (_, sums) in queue.iter().filter(|(p, _)| *p >= job.priority) {
            ahead += *sums;
        }
        let queued: f64 = queue.iter().map(|(_, s)| s.tasks).sum();
        let mut own = Sums::default();
        if let Ok(ds) = self.store.store.dataset(&job.dataset) {
            for c in &ds.manifest().chunks {
                own.add(&Sample {
                    events: c.event_count as f64,
                    bytes: c.files.values().map(|f| f.bytes as f64).sum(),
                    complexity: job.analysis.complexity() as f64,
                    histograms: job.analysis.histograms.len() as f64,
                    seconds: 0.0,
                });
            }
        } // else submit() reports the missing dataset
        let estimate = self.seconds(&ahead).await? + self.seconds(&own).await?;
        let priority = job.priority;
        let id = self
            .store
            .submit(owner, job, estimate, queued as i64)
            .await?;
        // The cached summary counts the new tasks at once, so a burst of submissions meets
        // the queue limit without rescanning the queue for each.
        if let Some((_, summary)) = self
            .summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            let mut updated = (**summary).clone();
            match updated.iter_mut().find(|(p, _)| *p == priority) {
                Some((_, sums)) => *sums += own,
                None => updated.push((priority, own)),
            }
            *summary = Arc::new(updated);
        }
        self.scheduler.wake.notify_one();
        Ok((id, estimate))
    }

    /// Seconds left for `job`: its unfinished tasks.
    pub async fn seconds_left(&self, job: &JobInfo) -> Result<f64> {
        if job.state.is_final() {
            return Ok(0.0);
        }
        let sums = self.store.job_sums(job).await?;
        self.seconds(&sums).await
    }
}

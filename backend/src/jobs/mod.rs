//! Analysis jobs: the job store (`store`), the scheduler loop (`scheduler`), executors
//! (`executor`) and run-time prediction (`predict`). `Jobs` ties them together for the gRPC
//! service: submission with an estimate, and estimates of what is left.

pub mod executor;
pub mod predict;
pub mod scheduler;
pub mod store;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::error::Result;
use executor::Executor;
use predict::{Model, Sample};
use store::{JobInfo, JobStore, NewJob};

/// How often the run-time models are refitted from the history.
const REFIT: Duration = Duration::from_secs(30);
/// Finished tasks each model learns from (the newest).
const HISTORY: i64 = 5_000;

pub struct Jobs {
    pub store: JobStore,
    pub scheduler: Arc<scheduler::Scheduler>,
    pub executors: Vec<Arc<dyn Executor>>,
    models: Mutex<Option<(Instant, Arc<Model>)>>,
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
            models: Mutex::new(None),
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

    /// Seconds of work in `tasks` spread over the slots.
    async fn seconds(&self, tasks: &[Sample]) -> Result<f64> {
        let model = self.model().await?;
        let total: f64 = tasks.iter().map(|s| model.predict(s)).sum();
        Ok(total / self.slots().min(tasks.len().max(1)) as f64)
    }

    /// Validates and queues `job`; its id and the estimated seconds to its end (the work queued
    /// ahead of it at its priority or above, then its own).
    pub async fn submit(&self, owner: &Caller, job: NewJob) -> Result<(i64, f64)> {
        let ahead = self.waiting_work(job.priority).await?;
        let own = match self.store.store.dataset(&job.dataset) {
            Ok(ds) => {
                let samples: Vec<Sample> = ds
                    .manifest()
                    .chunks
                    .iter()
                    .map(|c| Sample {
                        events: c.event_count as f64,
                        bytes: c.files.values().map(|f| f.bytes as f64).sum(),
                        complexity: job.analysis.complexity() as f64,
                        histograms: job.analysis.histograms.len() as f64,
                        seconds: 0.0,
                    })
                    .collect();
                self.seconds(&samples).await?
            }
            Err(_) => 0.0, // submit() reports the missing dataset
        };
        let estimate = ahead + own;
        let id = self.store.submit(owner, job, estimate).await?;
        self.scheduler.wake.notify_one();
        Ok((id, estimate))
    }

    /// Predicted seconds of the unfinished tasks of live jobs at `priority` or above.
    async fn waiting_work(&self, priority: i32) -> Result<f64> {
        let rows: Vec<(i64, i64, i32, i32)> = sqlx::query_as(
            "SELECT t.events, t.bytes, j.complexity, jsonb_array_length(j.analysis->'histograms') \
             FROM job_tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE t.state IN ('pending', 'running') AND j.state IN ('queued', 'running', 'preempted') \
               AND j.priority >= $1",
        )
        .bind(priority)
        .fetch_all(&self.store.pool)
        .await?;
        let samples: Vec<Sample> = rows
            .into_iter()
            .map(|(events, bytes, complexity, histograms)| Sample {
                events: events as f64,
                bytes: bytes as f64,
                complexity: complexity as f64,
                histograms: histograms as f64,
                seconds: 0.0,
            })
            .collect();
        if samples.is_empty() {
            return Ok(0.0);
        }
        self.seconds(&samples).await
    }

    /// Seconds left for `job`: its unfinished tasks (and what waits ahead of it if queued).
    pub async fn seconds_left(&self, job: &JobInfo) -> Result<f64> {
        if job.state.is_final() {
            return Ok(0.0);
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT events, bytes FROM job_tasks WHERE job_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(job.id)
        .fetch_all(&self.store.pool)
        .await?;
        let samples: Vec<Sample> = rows
            .into_iter()
            .map(|(events, bytes)| Sample {
                events: events as f64,
                bytes: bytes as f64,
                complexity: job.analysis.complexity() as f64,
                histograms: job.analysis.histograms.len() as f64,
                seconds: 0.0,
            })
            .collect();
        self.seconds(&samples).await
    }
}

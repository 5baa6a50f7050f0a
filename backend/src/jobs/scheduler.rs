//! The scheduler loop of one alyxd instance: it gives tasks whose lease ran out back to the
//! queue, renews the leases of its own tasks, preempts lower-priority tasks when a
//! higher-priority job waits and no slot is free, and claims runnable tasks for each executor's
//! free slots. Several instances run it against one job store safely: claims take rows with
//! `FOR UPDATE SKIP LOCKED`, and a task's result is stored only by the worker holding it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::Instrument;

use super::executor::{Executor, Health};
use super::store::{ClaimFor, Claimed, JobStore};

#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How long a claimed task stays ours without renewal.
    pub lease: Duration,
    /// Running tasks per owner at most (fair share beyond priority).
    pub quota: i64,
    /// Longest sleep between scheduling rounds (submissions and finished tasks wake it early).
    pub poll: Duration,
    /// How long a job with target auto waits for an executor at its chunks' sites before any
    /// executor takes its tasks.
    pub locality_wait: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            quota: 1_000,
            poll: Duration::from_millis(500),
            locality_wait: Duration::from_secs(3),
        }
    }
}

/// How long an executor's health check stands (the breaker is checked no more often).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

struct Running {
    executor: &'static str,
    priority: i32,
}

pub struct Scheduler {
    store: JobStore,
    worker: String,
    config: SchedulerConfig,
    executors: Vec<Arc<dyn Executor>>,
    running: Mutex<HashMap<(i64, i32), Running>>,
    /// Each executor's last health and when it was seen (the breaker's state; the admin API).
    healths: Mutex<HashMap<&'static str, (Instant, Health)>>,
    /// Wakes the loop: a submission, a finished task.
    pub wake: Arc<Notify>,
}

impl Scheduler {
    pub fn new(
        store: JobStore,
        worker: String,
        config: SchedulerConfig,
        executors: Vec<Arc<dyn Executor>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            worker,
            config,
            executors,
            running: Mutex::default(),
            healths: Mutex::default(),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Records `executor`'s health; whether it was up before (true the first time).
    fn record_health(&self, executor: &'static str, health: &Health) -> bool {
        let mut h = self.healths.lock().unwrap_or_else(PoisonError::into_inner);
        h.insert(executor, (Instant::now(), health.clone()))
            .is_none_or(|(_, old)| old.up)
    }

    /// `executor`'s health, checked again when the last check is older than `HEALTH_EVERY`;
    /// and whether it was up before.
    async fn health(&self, executor: &dyn Executor) -> (Health, bool) {
        let recent = self
            .healths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(executor.name())
            .filter(|(at, _)| at.elapsed() < HEALTH_EVERY)
            .map(|(_, h)| h.clone());
        match recent {
            Some(h) => (h, true),
            None => {
                let h = executor.health().await;
                let was_up = self.record_health(executor.name(), &h);
                (h, was_up)
            }
        }
    }

    /// Each executor's health as last seen, with its slots and running tasks.
    pub fn executor_status(&self) -> Vec<(&'static str, Health, usize, usize)> {
        let healths = self
            .healths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let running = self.running();
        self.executors
            .iter()
            .map(|e| {
                let health = healths
                    .get(e.name())
                    .map(|(_, h)| h.clone())
                    .unwrap_or(Health {
                        up: false,
                        detail: "not checked yet".into(),
                    });
                let busy = running.values().filter(|r| r.executor == e.name()).count();
                (e.name(), health, e.slots(), busy)
            })
            .collect()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i32), Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Schedules until `shutdown` resolves. Tasks still running then keep their lease until it
    /// expires, and another instance (or this one, restarted) runs them again.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut renewed = Instant::now();
        loop {
            if let Err(e) = self.round(&mut renewed).await {
                tracing::warn!(error = %e, "scheduling round failed; retrying");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    async fn round(self: &Arc<Self>, renewed: &mut Instant) -> crate::error::Result<()> {
        self.store.requeue_expired().await?;
        if renewed.elapsed() > self.config.lease / 3 {
            self.store.renew(&self.worker, self.config.lease).await?;
            *renewed = Instant::now();
        }
        for executor in &self.executors {
            // The circuit breaker: a down executor takes no tasks; its jobs say why they wait,
            // and work resumes when it is back.
            let (health, was_up) = self.health(executor.as_ref()).await;
            if !health.up {
                self.store
                    .note_waiting(
                        &[executor.name()],
                        Some(&format!("{} is down: {}", executor.name(), health.detail)),
                    )
                    .await?;
                continue;
            }
            if !was_up {
                self.store.note_waiting(&[executor.name()], None).await?;
            }
            let busy = self
                .running()
                .values()
                .filter(|r| r.executor == executor.name())
                .count();
            let free = executor.slots().saturating_sub(busy);
            if free == 0 {
                self.preempt_for_waiting(executor.as_ref()).await?;
                continue;
            }
            let tasks = self
                .store
                .claim(
                    &self.worker,
                    &ClaimFor {
                        name: executor.name(),
                        targets: executor.targets(),
                        site: executor.site(),
                        quota: self.config.quota,
                        lease: self.config.lease,
                        locality_wait: self.config.locality_wait,
                    },
                    free as i64,
                )
                .await?;
            executor.prepare(&tasks).await;
            for task in tasks {
                self.start(executor.clone(), task);
            }
        }
        Ok(())
    }

    /// When a job of higher priority than the lowest running task waits for `executor`, that
    /// task goes back to the queue (its chunk runs again later; finished chunks are kept).
    async fn preempt_for_waiting(&self, executor: &dyn Executor) -> crate::error::Result<()> {
        let Some((waiting, job)) = self.store.top_waiting_priority(executor.targets()).await?
        else {
            return Ok(());
        };
        let victim = self
            .running()
            .iter()
            .filter(|(_, r)| r.executor == executor.name() && r.priority < waiting)
            .min_by_key(|(k, r)| (r.priority, std::cmp::Reverse(**k)))
            .map(|(k, _)| *k);
        if let Some(task) = victim {
            let n = self
                .store
                .preempt(
                    &[task],
                    &self.worker,
                    &format!("job {job} (priority {waiting})"),
                )
                .await?;
            if n > 0 {
                self.running().remove(&task);
                executor.cancel(task.0, task.1).await;
                tracing::info!(job = task.0, chunk = task.1, by = job, "task preempted");
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    fn start(self: &Arc<Self>, executor: Arc<dyn Executor>, task: Claimed) {
        let key = (task.job_id, task.chunk_id);
        self.running().insert(
            key,
            Running {
                executor: executor.name(),
                priority: task.priority,
            },
        );
        let this = self.clone();
        let span = tracing::info_span!(
            "job.task",
            job = task.job_id,
            chunk = task.chunk_id,
            executor = executor.name(),
            attempt = task.attempt,
            events = task.events,
        );
        crate::telemetry::continue_trace(&span, &task.traceparent);
        let run = async move {
            let started = Instant::now();
            let outcome = executor.run(&task).await;
            let seconds = started.elapsed().as_secs_f64();
            // A preempted task was removed from `running`: its slot is taken already.
            this.running().remove(&key);
            let stored = match outcome {
                Ok(result) => this
                    .store
                    .complete(&task, &this.worker, &result, seconds)
                    .await
                    .map(|_| ()),
                // The executor went away mid-task: not the task's fault, so no attempt is
                // counted; the breaker holds the task until the executor returns.
                Err(crate::error::Error::Unavailable(why)) => {
                    tracing::warn!(job = task.job_id, chunk = task.chunk_id, error = %why, "executor unavailable");
                    this.record_health(
                        executor.name(),
                        &Health {
                            up: false,
                            detail: why.clone(),
                        },
                    );
                    this.store.release(&task, &this.worker, &why).await
                }
                Err(e) => {
                    tracing::warn!(job = task.job_id, chunk = task.chunk_id, error = %e, "task failed");
                    this.store.fail(&task, &this.worker, &e.to_string()).await
                }
            };
            if let Err(e) = stored {
                // The lease runs out and the task runs again elsewhere.
                tracing::warn!(job = task.job_id, chunk = task.chunk_id, error = %e, "cannot record the task");
            }
            this.wake.notify_one();
        };
        tokio::spawn(run.instrument(span));
    }
}

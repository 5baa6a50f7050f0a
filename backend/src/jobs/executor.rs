//! Executors: where a task (one chunk of a job) runs. One trait; the local pool is the embedded
//! default, Spark and Slurm the clusters.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use alyx_shared::jobs::TaskResult;
use alyx_shared::query::plan;
use alyx_shared::store::DataStore;

use super::store::Claimed;
use crate::engines::spark_query;
use crate::error::{Error, Result};
use crate::spark::SparkSession;

/// Whether an executor takes work now, and why not.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub up: bool,
    pub detail: String,
}

#[tonic::async_trait]
pub trait Executor: Send + Sync {
    /// `local`, `spark`, `slurm`: recorded with each task and in the run-time history.
    fn name(&self) -> &'static str;
    /// The job targets it serves.
    fn targets(&self) -> &[&'static str];
    /// Tasks it runs at once.
    fn slots(&self) -> usize;
    /// Runs one task to its partial result.
    async fn run(&self, task: &Claimed) -> Result<TaskResult>;
    /// Stops a running task early (preemption, cancellation); its result is dropped anyway.
    async fn cancel(&self, job: i64, chunk: i32);
    async fn health(&self) -> Health;
}

/// The in-process pool: tasks run on blocking threads over the Parquet chunks of alyxd's data
/// directory, each on all the cores polars is given.
pub struct LocalExecutor {
    pub store: DataStore,
    pub slots: usize,
    /// Tasks told to stop; they end at their next histogram.
    cancelled: Arc<Mutex<HashSet<(i64, i32)>>>,
}

impl LocalExecutor {
    pub fn new(store: DataStore, slots: usize) -> Self {
        Self {
            store,
            slots: slots.max(1),
            cancelled: Arc::default(),
        }
    }
}

#[tonic::async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn targets(&self) -> &[&'static str] {
        &["local", "auto"]
    }

    fn slots(&self) -> usize {
        self.slots
    }

    async fn run(&self, task: &Claimed) -> Result<TaskResult> {
        let store = self.store.clone();
        let task = task.clone();
        let cancelled = self.cancelled.clone();
        tokio::task::spawn_blocking(move || {
            let key = (task.job_id, task.chunk_id);
            let ds = store.dataset(&task.dataset)?;
            let checked = task.analysis.check().map_err(|ds| {
                Error::InvalidArgument(alyx_shared::query::invalid_query(&ds).to_string())
            })?;
            let chunk = u32::try_from(task.chunk_id)
                .map_err(|_| Error::Internal(format!("chunk id {}", task.chunk_id)))?;
            let result = task.analysis.run_chunk(&ds, &checked, chunk)?;
            if cancelled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key)
            {
                return Err(Error::Unavailable("task stopped".into()));
            }
            Ok(result)
        })
        .await?
    }

    async fn cancel(&self, job: i64, chunk: i32) {
        self.cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((job, chunk));
    }

    async fn health(&self) -> Health {
        Health {
            up: true,
            detail: format!("{} slots in process", self.slots),
        }
    }
}

/// Spark through Spark Connect: each task runs its histogram and count queries in a Spark
/// session of its own over the task's chunk, tagged with the job so that cancelling
/// interrupts them on the cluster.
pub struct SparkExecutor {
    pub store: DataStore,
    pub url: String,
    pub slots: usize,
    sessions: Arc<Mutex<HashMap<(i64, i32), SparkSession>>>,
}

impl SparkExecutor {
    pub fn new(store: DataStore, url: String, slots: usize) -> Self {
        Self {
            store,
            url,
            slots: slots.max(1),
            sessions: Arc::default(),
        }
    }

    fn tag(job: i64) -> String {
        format!("alyx-job-{job}")
    }
}

#[tonic::async_trait]
impl Executor for SparkExecutor {
    fn name(&self) -> &'static str {
        "spark"
    }

    fn targets(&self) -> &[&'static str] {
        &["spark"]
    }

    fn slots(&self) -> usize {
        self.slots
    }

    async fn run(&self, task: &Claimed) -> Result<TaskResult> {
        let key = (task.job_id, task.chunk_id);
        let ds = self.store.dataset(&task.dataset)?;
        let checked = task.analysis.check().map_err(|ds| {
            Error::InvalidArgument(alyx_shared::query::invalid_query(&ds).to_string())
        })?;
        let chunk = u32::try_from(task.chunk_id)
            .map_err(|_| Error::Internal(format!("chunk id {}", task.chunk_id)))?;
        let events = ds
            .manifest()
            .chunks
            .iter()
            .find(|c| c.id == chunk)
            .map(|c| c.event_count)
            .ok_or_else(|| Error::NotFound(format!("no chunk {chunk} in `{}`", task.dataset)))?;
        let mut session = SparkSession::connect(&self.url, "alyx-jobs").await?;
        self.lock().insert(key, session.clone());
        let tag = Self::tag(task.job_id);
        let result = async {
            let mut histograms = Vec::new();
            for h in &task.analysis.histograms {
                let q = plan::histogram(&checked, &h.column, h.weight.as_deref(), &h.binning)
                    .map_err(|d| Error::InvalidArgument(d.to_string()))?;
                let df = spark_query(
                    &mut session,
                    &ds,
                    &q,
                    &plan::histogram_columns(),
                    Some(&[chunk]),
                    Some(&tag),
                )
                .await?;
                histograms.push(plan::histogram_from_rows(&df, h.binning.clone())?);
            }
            let n = spark_query(
                &mut session,
                &ds,
                &plan::count(&checked),
                &plan::count_columns(),
                Some(&[chunk]),
                Some(&tag),
            )
            .await?;
            let rows = plan::count_from_rows(&n);
            Ok(TaskResult {
                histograms,
                rows,
                events,
            })
        }
        .await;
        self.lock().remove(&key);
        session.release().await;
        result
    }

    async fn cancel(&self, job: i64, chunk: i32) {
        let session = self.lock().get(&(job, chunk)).cloned();
        if let Some(mut s) = session {
            if let Err(e) = s.interrupt(&Self::tag(job)).await {
                tracing::warn!(job, chunk, error = %e, "cannot interrupt the Spark task");
            }
        }
    }

    async fn health(&self) -> Health {
        match SparkSession::connect(&self.url, "alyx-health").await {
            Ok(_) => Health {
                up: true,
                detail: format!("Spark Connect at {}", self.url),
            },
            Err(e) => Health {
                up: false,
                detail: e.to_string(),
            },
        }
    }
}

impl SparkExecutor {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i32), SparkSession>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What `alyxd worker` reads: one task, self-contained, so a batch node needs only the data
/// directory (no database, no alyxd).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WorkerTask {
    pub data_dir: std::path::PathBuf,
    pub dataset: String,
    pub chunk: u32,
    pub analysis: alyx_shared::jobs::Analysis,
}

/// Runs a worker task (the body of `alyxd worker`): reads `spec`, writes the partial result
/// to `out` atomically (a temporary file renamed), so alyxd never reads half a result.
pub fn run_worker(spec: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(spec)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", spec.display())))?;
    let task: WorkerTask = serde_json::from_str(&text).map_err(|e| {
        Error::InvalidArgument(format!("{}: not a worker task: {e}", spec.display()))
    })?;
    let store = DataStore::open(&task.data_dir)?;
    let ds = store.dataset(&task.dataset)?;
    let checked = task
        .analysis
        .check()
        .map_err(|ds| Error::InvalidArgument(alyx_shared::query::invalid_query(&ds).to_string()))?;
    let result = task.analysis.run_chunk(&ds, &checked, task.chunk)?;
    let json = serde_json::to_vec(&result).map_err(|e| Error::Internal(e.to_string()))?;
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| Error::Internal(format!("{}: {e}", out.display())))?;
    Ok(())
}

/// Slurm, standing for a GRID site: each task becomes a batch job (`sbatch --parsable`) that
/// runs `alyxd worker` on the task's spec file in the spool directory (on a real cluster, a
/// shared file system) and writes its partial result beside it; alyxd follows the batch job
/// with `squeue --json` (finished jobs stay listed for MinJobAge) and reads the result when it
/// completed; `scancel` stops it. Batch jobs are submitted with `--requeue`, so Slurm reruns
/// them after a node failure.
pub struct SlurmExecutor {
    pub data_dir: std::path::PathBuf,
    pub spool: std::path::PathBuf,
    /// The `alyxd` binary the batch jobs run.
    pub worker_binary: std::path::PathBuf,
    pub slots: usize,
    pub poll: std::time::Duration,
    batch_jobs: Arc<Mutex<HashMap<(i64, i32), String>>>,
}

impl SlurmExecutor {
    pub fn new(
        data_dir: std::path::PathBuf,
        worker_binary: std::path::PathBuf,
        slots: usize,
    ) -> Self {
        Self {
            spool: data_dir.join(".slurm"),
            data_dir,
            worker_binary,
            slots: slots.max(1),
            poll: std::time::Duration::from_millis(500),
            batch_jobs: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i32), String>> {
        self.batch_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs a Slurm command; a command that cannot run or fails means Slurm is unavailable.
async fn slurm(program: &str, args: &[&str]) -> Result<String> {
    let (program, args) = (
        program.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
    );
    let out = tokio::task::spawn_blocking({
        let program = program.clone();
        move || std::process::Command::new(&program).args(&args).output()
    })
    .await?
    .map_err(|e| Error::Unavailable(format!("slurm: cannot run {program}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Unavailable(format!(
            "slurm: {program} failed: {}",
            err.lines().next().unwrap_or("").trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The state of batch job `id` in `squeue --json` output: `job_state` is a string in Slurm
/// 22.05 and a list of strings in later versions.
pub fn squeue_state(json: &str, id: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let job = v.get("jobs")?.as_array()?.iter().find(|j| {
        j.get("job_id")
            .map(|x| x.to_string().trim_matches('"') == id)
            == Some(true)
    })?;
    match job.get("job_state")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[tonic::async_trait]
impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn targets(&self) -> &[&'static str] {
        &["slurm"]
    }

    fn slots(&self) -> usize {
        self.slots
    }

    async fn run(&self, task: &Claimed) -> Result<TaskResult> {
        let key = (task.job_id, task.chunk_id);
        let chunk = u32::try_from(task.chunk_id)
            .map_err(|_| Error::Internal(format!("chunk id {}", task.chunk_id)))?;
        std::fs::create_dir_all(&self.spool)
            .map_err(|e| Error::Internal(format!("{}: {e}", self.spool.display())))?;
        let stem = format!("task-{}-{}", task.job_id, task.chunk_id);
        let spec = self.spool.join(format!("{stem}.json"));
        let out = self.spool.join(format!("{stem}.result.json"));
        let _ = std::fs::remove_file(&out);
        let worker_task = WorkerTask {
            data_dir: self.data_dir.clone(),
            dataset: task.dataset.clone(),
            chunk,
            analysis: task.analysis.clone(),
        };
        let json = serde_json::to_vec(&worker_task).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&spec, json)
            .map_err(|e| Error::Internal(format!("{}: {e}", spec.display())))?;
        let wrap = format!(
            "exec {} worker --spec {} --out {}",
            self.worker_binary.display(),
            spec.display(),
            out.display()
        );
        let log = self.spool.join(format!("{stem}.%j.log"));
        let (cores, log) = (task.cores.max(1).to_string(), log.display().to_string());
        let memory = format!("{}M", task.memory_mb.max(64));
        let id = slurm(
            "sbatch",
            &[
                "--parsable",
                "--requeue",
                "--job-name",
                &stem,
                "--cpus-per-task",
                &cores,
                "--mem",
                &memory,
                "--output",
                &log,
                "--wrap",
                &wrap,
            ],
        )
        .await?;
        let id = id.trim().split(';').next().unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(Error::Unavailable("slurm: sbatch printed no job id".into()));
        }
        self.lock().insert(key, id.clone());
        let result = loop {
            tokio::time::sleep(self.poll).await;
            let json = match slurm("squeue", &["--json", "--states=all", "--jobs", &id]).await {
                Ok(j) => j,
                Err(e) => break Err(e),
            };
            match squeue_state(&json, &id).as_deref() {
                Some(
                    "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED"
                    | "REQUEUE_HOLD" | "SUSPENDED" | "RESIZING",
                ) => continue,
                Some("COMPLETED") => {
                    let text = std::fs::read(&out).map_err(|e| {
                        Error::Internal(format!("batch job {id} completed without a result: {e}"))
                    });
                    break text.and_then(|t| {
                        serde_json::from_slice::<TaskResult>(&t).map_err(|e| {
                            Error::Internal(format!("batch job {id}'s result does not read: {e}"))
                        })
                    });
                }
                Some(other) => {
                    let log = std::fs::read_to_string(self.spool.join(format!("{stem}.{id}.log")))
                        .unwrap_or_default();
                    let last = log.lines().last().unwrap_or("").to_owned();
                    break Err(Error::Internal(format!(
                        "batch job {id} ended {other}: {last}"
                    )));
                }
                None => {
                    break Err(Error::Internal(format!(
                        "batch job {id} vanished from squeue"
                    )));
                }
            }
        };
        self.lock().remove(&key);
        if result.is_ok() {
            let _ = std::fs::remove_file(&spec);
            let _ = std::fs::remove_file(&out);
        }
        result
    }

    async fn cancel(&self, job: i64, chunk: i32) {
        let id = self.lock().get(&(job, chunk)).cloned();
        if let Some(id) = id {
            if let Err(e) = slurm("scancel", &[&id]).await {
                tracing::warn!(job, chunk, error = %e, "cannot scancel");
            }
        }
    }

    async fn health(&self) -> Health {
        match slurm("sinfo", &["-h", "-o", "%a %D %t"]).await {
            Ok(out) if out.split_whitespace().next() == Some("up") => Health {
                up: true,
                detail: format!("partition {}", out.trim()),
            },
            Ok(out) => Health {
                up: false,
                detail: format!("slurm: no partition up ({})", out.trim()),
            },
            Err(e) => Health {
                up: false,
                detail: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::squeue_state;

    #[test]
    fn squeue_json_states_old_and_new() {
        let old = r#"{"jobs":[{"job_id":12,"job_state":"RUNNING"},{"job_id":13,"job_state":"COMPLETED"}]}"#;
        assert_eq!(squeue_state(old, "13").as_deref(), Some("COMPLETED"));
        let new = r#"{"jobs":[{"job_id":7,"job_state":["PENDING"]}]}"#;
        assert_eq!(squeue_state(new, "7").as_deref(), Some("PENDING"));
        assert_eq!(squeue_state(new, "8"), None);
        assert_eq!(squeue_state("not json", "7"), None);
    }
}

//! Executors: where a task (one chunk of a job) runs. One trait; the local pool is the embedded
//! default, Spark and Slurm the clusters.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use alyx_analysis::jobs::{AnalysisExt, TaskResult};
use alyx_query::plan;
use alyx_store::DataStore;

use super::store::Claimed;
use crate::engines::spark_query;
use crate::error::{Error, Result};
use crate::grpc::spark::SparkSession;

/// Whether an executor takes work now, and why not.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub up: bool,
    pub detail: String,
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// `local`, `spark`, `slurm`: recorded with each task and in the run-time history.
    fn name(&self) -> &'static str;
    /// The job targets it serves: its own name and `auto`.
    fn targets(&self) -> &[&'static str];
    /// The site whose chunk replicas it reads locally (data locality for target auto).
    fn site(&self) -> &str;
    /// Tasks it runs at once.
    fn slots(&self) -> usize;
    /// Called with the tasks of one scheduling round before each is `run`: an executor may
    /// submit them together (Slurm: one job array per job).
    async fn prepare(&self, _tasks: &[Claimed]) {}
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
    pub site: String,
    /// Tasks told to stop; they end at their next histogram.
    cancelled: Arc<Mutex<HashSet<(i64, i32)>>>,
}

impl LocalExecutor {
    pub fn new(store: DataStore, slots: usize, site: String) -> Self {
        Self {
            store,
            slots: slots.max(1),
            site,
            cancelled: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn targets(&self) -> &[&'static str] {
        &["local", "auto"]
    }

    fn site(&self) -> &str {
        &self.site
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
            let checked = task
                .analysis
                .check()
                .map_err(|ds| Error::InvalidArgument(alyx_query::invalid_query(&ds).to_string()))?;
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
    pub site: String,
    sessions: Arc<Mutex<HashMap<(i64, i32), SparkSession>>>,
}

impl SparkExecutor {
    pub fn new(store: DataStore, url: String, slots: usize, site: String) -> Self {
        Self {
            store,
            url,
            slots: slots.max(1),
            site,
            sessions: Arc::default(),
        }
    }

    fn tag(job: i64) -> String {
        format!("alyx-job-{job}")
    }
}

#[async_trait::async_trait]
impl Executor for SparkExecutor {
    fn name(&self) -> &'static str {
        "spark"
    }

    fn targets(&self) -> &[&'static str] {
        &["spark", "auto"]
    }

    fn site(&self) -> &str {
        &self.site
    }

    fn slots(&self) -> usize {
        self.slots
    }

    async fn run(&self, task: &Claimed) -> Result<TaskResult> {
        let key = (task.job_id, task.chunk_id);
        let ds = self.store.dataset(&task.dataset)?;
        let checked = task
            .analysis
            .check_for(alyx_query::Engine::Spark)
            .map_err(|ds| Error::InvalidArgument(alyx_query::invalid_query(&ds).to_string()))?;
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
                let df = spark_query(&mut session, &ds, &q, Some(&[chunk]), Some(&tag)).await?;
                histograms.push(plan::histogram_from_rows(&df, h.binning.clone())?);
            }
            let n = spark_query(
                &mut session,
                &ds,
                &plan::count(&checked),
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
    pub analysis: alyx_analysis::jobs::Analysis,
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
        .map_err(|ds| Error::InvalidArgument(alyx_query::invalid_query(&ds).to_string()))?;
    let result = task.analysis.run_chunk(&ds, &checked, task.chunk)?;
    let json = serde_json::to_vec(&result).map_err(|e| Error::Internal(e.to_string()))?;
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| Error::Internal(format!("{}: {e}", out.display())))?;
    Ok(())
}

/// Slurm, standing for a GRID site. The tasks of one job claimed in one scheduling round go in
/// one job array (`sbatch --array=0-N`), a single task in a batch job of its own; each array
/// element runs `alyxd worker` on its task's spec file in the spool directory (on a real
/// cluster, a shared file system) and writes its partial result beside it. alyxd follows the
/// elements with `squeue -r --states=all` (one line per element; finished ones stay listed for
/// MinJobAge; one call per batch job and poll, shared by its elements), reads each result when
/// its element completed, and `scancel`s an element to stop it. Batch jobs are submitted with
/// `--requeue`, so Slurm reruns them after a node failure.
pub struct SlurmExecutor {
    pub data_dir: std::path::PathBuf,
    pub spool: std::path::PathBuf,
    /// The `alyxd` binary the batch jobs run.
    pub worker_binary: std::path::PathBuf,
    pub slots: usize,
    pub site: String,
    pub poll: std::time::Duration,
    /// Each submitted task's batch job element.
    batch_jobs: Arc<Mutex<HashMap<(i64, i32), Element>>>,
    /// The last `squeue` answer per batch job: element id → state.
    states: Arc<Mutex<HashMap<String, (std::time::Instant, Arc<HashMap<String, String>>)>>>,
}

/// One task's place in Slurm: `id` is `A_i` for element `i` of job array `A`, else the job id.
#[derive(Clone, Debug)]
struct Element {
    id: String,
    spec: std::path::PathBuf,
    out: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Element {
    /// The batch job `squeue -j` is asked about.
    fn batch(&self) -> &str {
        self.id.split('_').next().unwrap_or(&self.id)
    }
}

impl SlurmExecutor {
    pub fn new(
        data_dir: std::path::PathBuf,
        worker_binary: std::path::PathBuf,
        slots: usize,
        site: String,
    ) -> Self {
        Self {
            spool: data_dir.join(".slurm"),
            data_dir,
            worker_binary,
            slots: slots.max(1),
            site,
            poll: std::time::Duration::from_millis(500),
            batch_jobs: Arc::default(),
            states: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i32), Element>> {
        self.batch_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `task`'s spec file as `{stem}.json`.
    fn write_spec(&self, task: &Claimed, stem: &str) -> Result<Element> {
        let chunk = u32::try_from(task.chunk_id)
            .map_err(|_| Error::Internal(format!("chunk id {}", task.chunk_id)))?;
        std::fs::create_dir_all(&self.spool)
            .map_err(|e| Error::Internal(format!("{}: {e}", self.spool.display())))?;
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
        Ok(Element {
            id: String::new(),
            spec,
            out,
            log: std::path::PathBuf::new(),
        })
    }

    /// `sbatch` of `alyxd worker` on the spec `{stem}.json` (`stem` may name
    /// `$SLURM_ARRAY_TASK_ID`), with `task`'s resources and `extra` arguments; the job id.
    async fn sbatch(
        &self,
        task: &Claimed,
        name: &str,
        stem: &str,
        log: &str,
        extra: &[&str],
    ) -> Result<String> {
        let spool = self.spool.display();
        let wrap = format!(
            "exec {} worker --spec {spool}/{stem}.json --out {spool}/{stem}.result.json",
            self.worker_binary.display(),
        );
        let log = format!("{spool}/{log}");
        let (cores, memory) = (
            task.cores.max(1).to_string(),
            format!("{}M", task.memory_mb.max(64)),
        );
        let mut args = vec![
            "--parsable",
            "--requeue",
            "--job-name",
            name,
            "--cpus-per-task",
            &cores,
            "--mem",
            &memory,
            "--output",
            &log,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--wrap", &wrap]);
        let id = slurm("sbatch", &args).await?;
        let id = id.trim().split(';').next().unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(Error::Unavailable("slurm: sbatch printed no job id".into()));
        }
        Ok(id)
    }

    /// Submits `tasks` (of one job) as one job array.
    async fn submit_array(&self, tasks: &[Claimed]) -> Result<()> {
        let Some(first) = tasks.first() else {
            return Ok(());
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!("array-{}-{stamp:x}", first.job_id);
        let mut elements = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            elements.push(self.write_spec(task, &format!("{prefix}-{i}"))?);
        }
        let range = format!("--array=0-{}", tasks.len() - 1);
        let id = self
            .sbatch(
                first,
                &format!("alyx-job-{}", first.job_id),
                &format!("{prefix}-$SLURM_ARRAY_TASK_ID"),
                &format!("{prefix}-%a.%A.log"),
                &[&range],
            )
            .await?;
        let mut jobs = self.lock();
        for (i, (task, mut e)) in tasks.iter().zip(elements).enumerate() {
            e.id = format!("{id}_{i}");
            e.log = self.spool.join(format!("{prefix}-{i}.{id}.log"));
            jobs.insert((task.job_id, task.chunk_id), e);
        }
        Ok(())
    }

    /// Submits `task` as a batch job of its own.
    async fn submit_one(&self, task: &Claimed) -> Result<Element> {
        let stem = format!("task-{}-{}", task.job_id, task.chunk_id);
        let mut e = self.write_spec(task, &stem)?;
        e.id = self
            .sbatch(
                task,
                &format!("alyx-job-{}", task.job_id),
                &stem,
                &format!("{stem}.%j.log"),
                &[],
            )
            .await?;
        e.log = self.spool.join(format!("{stem}.{}.log", e.id));
        Ok(e)
    }

    /// The state of element `e`, from an `squeue` answer at most one poll old.
    async fn state(&self, e: &Element) -> Result<Option<String>> {
        let batch = e.batch().to_owned();
        let recent = self
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&batch)
            .filter(|(at, _)| at.elapsed() < self.poll)
            .map(|(_, s)| s.clone());
        let states = match recent {
            Some(s) => s,
            None => {
                let text = slurm(
                    "squeue",
                    &["-h", "-r", "--states=all", "-j", &batch, "-o", "%i|%T"],
                )
                .await?;
                let s = Arc::new(squeue_states(&text));
                let mut all = self.states.lock().unwrap_or_else(PoisonError::into_inner);
                all.retain(|_, (at, _)| at.elapsed() < self.poll * 10);
                all.insert(batch, (std::time::Instant::now(), s.clone()));
                s
            }
        };
        Ok(states.get(&e.id).cloned())
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

/// Element id → state from `squeue -h -r -o '%i|%T'` (lines like `12_3|RUNNING`, `14|COMPLETED`).
pub fn squeue_states(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('|'))
        .map(|(id, state)| (id.trim().to_owned(), state.trim().to_owned()))
        .collect()
}

#[async_trait::async_trait]
impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn targets(&self) -> &[&'static str] {
        &["slurm", "auto"]
    }

    fn site(&self) -> &str {
        &self.site
    }

    fn slots(&self) -> usize {
        self.slots
    }

    async fn prepare(&self, tasks: &[Claimed]) {
        let mut jobs: Vec<i64> = tasks.iter().map(|t| t.job_id).collect();
        jobs.dedup();
        for job in jobs {
            let group: Vec<Claimed> = tasks.iter().filter(|t| t.job_id == job).cloned().collect();
            if group.len() < 2 {
                continue;
            }
            // On failure each task tries a batch job of its own (and meets the same error).
            if let Err(e) = self.submit_array(&group).await {
                tracing::warn!(job, error = %e, "cannot submit the job array");
            }
        }
    }

    async fn run(&self, task: &Claimed) -> Result<TaskResult> {
        let key = (task.job_id, task.chunk_id);
        let submitted = self.lock().get(&key).cloned();
        let e = match submitted {
            Some(e) => e,
            None => {
                let e = self.submit_one(task).await?;
                self.lock().insert(key, e.clone());
                e
            }
        };
        let id = &e.id;
        let result = loop {
            tokio::time::sleep(self.poll).await;
            match self.state(&e).await {
                Err(err) => break Err(err),
                Ok(Some(state)) => match state.as_str() {
                    "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED"
                    | "REQUEUE_HOLD" | "REQUEUE_FED" | "SUSPENDED" | "RESIZING" | "SIGNALING"
                    | "STAGE_OUT" => continue,
                    "COMPLETED" => {
                        let text = std::fs::read(&e.out).map_err(|err| {
                            Error::Internal(format!(
                                "batch job {id} completed without a result: {err}"
                            ))
                        });
                        break text.and_then(|t| {
                            serde_json::from_slice::<TaskResult>(&t).map_err(|err| {
                                Error::Internal(format!(
                                    "batch job {id}'s result does not read: {err}"
                                ))
                            })
                        });
                    }
                    other => {
                        let log = std::fs::read_to_string(&e.log).unwrap_or_default();
                        let last = log.lines().last().unwrap_or("").to_owned();
                        break Err(Error::Internal(format!(
                            "batch job {id} ended {other}: {last}"
                        )));
                    }
                },
                Ok(None) => {
                    break Err(Error::Internal(format!(
                        "batch job {id} vanished from squeue"
                    )));
                }
            }
        };
        self.lock().remove(&key);
        if result.is_ok() {
            let _ = std::fs::remove_file(&e.spec);
            let _ = std::fs::remove_file(&e.out);
        }
        result
    }

    async fn cancel(&self, job: i64, chunk: i32) {
        let id = self.lock().get(&(job, chunk)).map(|e| e.id.clone());
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
    use super::squeue_states;

    #[test]
    fn squeue_lines_give_each_element_its_state() {
        let text = "12_0|COMPLETED\n12_1|RUNNING\n 12_2|PENDING \n14|FAILED\ngarbage\n";
        let s = squeue_states(text);
        assert_eq!(s.get("12_0").map(String::as_str), Some("COMPLETED"));
        assert_eq!(s.get("12_1").map(String::as_str), Some("RUNNING"));
        assert_eq!(s.get("12_2").map(String::as_str), Some("PENDING"));
        assert_eq!(s.get("14").map(String::as_str), Some("FAILED"));
        assert_eq!(s.len(), 4);
        assert!(squeue_states("").is_empty());
    }
}

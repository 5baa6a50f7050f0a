//! alyxd's settings: defaults, then `alyxd.toml` (see `alyxd.example.toml` at the repository
//! root), then `ALYXD_*` environment variables, each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL connection URL (`ALYXD_DATABASE_URL`).
    pub database_url: String,
    /// Largest number of pooled PostgreSQL connections (`ALYXD_DATABASE_POOL`).
    pub database_pool: u32,
    /// Statement timeout of pooled connections, in ms; 0 for none (`ALYXD_STATEMENT_TIMEOUT_MS`).
    pub statement_timeout_ms: u64,
    /// The PostgreSQL role users' catalogue (PostgreSQL-engine) queries run as, on a pool of
    /// their own with read-only transactions (`ALYXD_QUERY_ROLE`). It must be able to read the
    /// catalogue's `events` only; the migrations create `alyx_query` so when alyxd's own role
    /// may create roles. Empty: queries run as alyxd's role (still read-only).
    pub query_role: String,
    /// Connections of that pool at most (`ALYXD_QUERY_POOL`).
    pub query_pool: u32,
    /// Queries and streams (Execute, Histogram, Subscribe, Watch, Sync) one user may have open
    /// at once; beyond that calls get RESOURCE_EXHAUSTED (`ALYXD_USER_CALLS`).
    pub user_calls: usize,
    /// Seconds alyxd works on one call before answering DEADLINE_EXCEEDED (a stream: before
    /// its first message) (`ALYXD_CALL_TIMEOUT_SECS`).
    pub call_timeout_secs: u64,
    /// PEM certificate chain of the gRPC listener (`ALYXD_TLS_CERT`); with `tls_key`, alyxd
    /// speaks TLS only. Empty: plain text (for loopback and tests).
    pub tls_cert: PathBuf,
    /// PEM private key of that certificate (`ALYXD_TLS_KEY`).
    pub tls_key: PathBuf,
    /// gRPC listen address (`ALYXD_LISTEN`).
    pub listen: SocketAddr,
    /// Prometheus metrics listen address (`ALYXD_METRICS_LISTEN`); GET /metrics.
    pub metrics_listen: SocketAddr,
    /// Where Parquet chunks are written (`ALYXD_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Log as JSON lines instead of text (`ALYXD_LOG_JSON`); the level comes from `RUST_LOG`.
    pub log_json: bool,
    /// OpenTelemetry collector to send traces to over OTLP/gRPC, e.g. `http://127.0.0.1:4317`
    /// (`ALYXD_OTLP_ENDPOINT`); empty: no traces.
    pub otlp_endpoint: String,
    /// Spark Connect server of the Spark engine, `sc://host:15002` (`ALYXD_SPARK_URL`);
    /// empty: no Spark engine.
    pub spark_url: String,
    /// How long a catalogue (PostgreSQL engine) query result may be served again, in ms; results
    /// are dropped at once when ingest changes the dataset. 0: no cache
    /// (`ALYXD_QUERY_CACHE_TTL_MS`).
    pub query_cache_ttl_ms: u64,
    /// Redis holding the cache every instance shares (`ALYXD_REDIS_URL`, e.g.
    /// `redis://127.0.0.1:6379`); empty: each instance caches in its own memory only. Set
    /// Redis's `maxmemory` and `maxmemory-policy volatile-lru`.
    pub redis_url: String,
    /// Prefix of alyxd's keys in that Redis (`ALYXD_REDIS_PREFIX`): instances sharing a
    /// catalogue share a prefix.
    pub redis_prefix: String,
    /// Tasks of analysis jobs the local executor runs at once (`ALYXD_JOB_SLOTS`); 0: one per
    /// core.
    pub job_slots: usize,
    /// Unfinished tasks in the job queue beyond which submissions get RESOURCE_EXHAUSTED
    /// (`ALYXD_JOB_QUEUE_LIMIT`).
    pub job_queue_limit: i64,
    /// Unfinished tasks one user may have in the job queue; beyond that that user's submissions
    /// get RESOURCE_EXHAUSTED while others still get in (`ALYXD_JOB_USER_QUEUE_LIMIT`).
    pub job_user_queue_limit: i64,
    /// Running tasks per user at most (`ALYXD_JOB_QUOTA`).
    pub job_quota: i64,
    /// Seconds a claimed task stays with this instance without renewal; after that (a dead
    /// instance) it runs again elsewhere (`ALYXD_JOB_LEASE_SECS`).
    pub job_lease_secs: u64,
    /// Job tasks running on Spark at once (with `spark_url`) (`ALYXD_SPARK_JOB_SLOTS`).
    pub spark_job_slots: usize,
    /// Run jobs with target slurm as batch jobs on the Slurm cluster this host submits to
    /// (`ALYXD_SLURM`).
    pub slurm: bool,
    /// Batch jobs in flight at once (`ALYXD_SLURM_SLOTS`).
    pub slurm_slots: usize,
    /// The `alyxd` binary batch jobs run as `alyxd worker` (`ALYXD_SLURM_WORKER`); empty: this
    /// alyxd's own path.
    pub slurm_worker: String,
    /// The site whose chunk replicas the local executor reads locally (`ALYXD_SITE`).
    pub site: String,
    /// The Spark cluster's site (`ALYXD_SPARK_SITE`).
    pub spark_site: String,
    /// The Slurm cluster's site (`ALYXD_SLURM_SITE`).
    pub slurm_site: String,
    /// How long a job with target auto waits for an executor at the sites of its chunks'
    /// replicas before any executor takes its tasks, in ms (`ALYXD_JOB_LOCALITY_WAIT_MS`).
    pub job_locality_wait_ms: u64,
    pub ingest: IngestConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Consume from Kafka at all (`ALYXD_INGEST`).
    pub enabled: bool,
    /// Bootstrap brokers, comma-separated (`ALYXD_KAFKA_BROKERS`).
    pub brokers: String,
    /// The raw-events topic (`ALYXD_KAFKA_TOPIC`).
    pub topic: String,
    /// Partitions of the topic when alyxd has to create it (`ALYXD_KAFKA_PARTITIONS`).
    pub partitions: u32,
    /// The dataset ingested events are stored in (`ALYXD_INGEST_DATASET`).
    pub dataset: String,
    /// Most events per batch, i.e. per Parquet chunk (`ALYXD_BATCH_EVENTS`).
    pub batch_events: usize,
    /// Longest wait for a batch to fill before it is stored anyway, in ms (`ALYXD_BATCH_LINGER_MS`).
    pub batch_linger_ms: u64,
    /// Decoded batches that may wait for storage per partition; beyond that consumption pauses
    /// (`ALYXD_QUEUE_BATCHES`).
    pub queue_batches: usize,
    /// librdkafka's prefetch buffer per partition, in KiB (`ALYXD_FETCH_BUFFER_KB`).
    pub fetch_buffer_kb: u32,
    /// This instance's name in ownership and status (`ALYXD_INSTANCE`); default host:pid.
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "postgres://alyx@127.0.0.1:5432/alyx".into(),
            database_pool: 16,
            statement_timeout_ms: 30_000,
            query_role: "alyx_query".into(),
            query_pool: 8,
            user_calls: 16,
            call_timeout_secs: 300,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            data_dir: alyx_core::default_data_dir().join("alyxd"),
            log_json: false,
            otlp_endpoint: String::new(),
            spark_url: String::new(),
            query_cache_ttl_ms: 10_000,
            redis_url: String::new(),
            redis_prefix: "alyx:".into(),
            job_slots: 0,
            job_queue_limit: 100_000,
            job_user_queue_limit: 25_000,
            job_quota: 1_000,
            job_lease_secs: 30,
            spark_job_slots: 2,
            slurm: false,
            slurm_slots: 4,
            slurm_worker: String::new(),
            site: "local".into(),
            spark_site: "spark".into(),
            slurm_site: "slurm".into(),
            job_locality_wait_ms: 3_000,
            ingest: IngestConfig::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            brokers: "127.0.0.1:9092".into(),
            topic: "raw-events".into(),
            partitions: 4,
            dataset: "live".into(),
            batch_events: 2000,
            batch_linger_ms: 200,
            queue_batches: 2,
            fetch_buffer_kb: 16 * 1024,
            instance: None,
        }
    }
}

impl Config {
    /// Where alyxd looks for its configuration when neither `--config` nor `$ALYXD_CONFIG`
    /// names one: `/etc/alyx/alyxd.toml` (a service), then `~/.config/alyx/alyxd.toml` (a
    /// user's own alyxd); the first that exists.
    pub fn default_path() -> Option<PathBuf> {
        let user = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".config/alyx/alyxd.toml"));
        first_existing([Some(PathBuf::from("/etc/alyx/alyxd.toml")), user])
    }

    /// Defaults, overridden by the file at `path` (when given), overridden by the environment.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::InvalidArgument(format!("cannot read {}: {e}", path.display()))
                })?;
                toml::from_str(&text)
                    .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    /// Applies `ALYXD_*` variables as `lookup` reports them.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, value: String) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value
                .parse()
                .map_err(|e| Error::InvalidArgument(format!("{key}={value}: {e}")))
        }
        let ingest = &mut self.ingest;
        macro_rules! env {
            ($key:literal => $field:expr) => {
                if let Some(v) = lookup($key) {
                    $field = parse($key, v)?;
                }
            };
        }
        env!("ALYXD_DATABASE_URL" => self.database_url);
        env!("ALYXD_DATABASE_POOL" => self.database_pool);
        env!("ALYXD_STATEMENT_TIMEOUT_MS" => self.statement_timeout_ms);
        env!("ALYXD_QUERY_ROLE" => self.query_role);
        env!("ALYXD_QUERY_POOL" => self.query_pool);
        env!("ALYXD_USER_CALLS" => self.user_calls);
        env!("ALYXD_CALL_TIMEOUT_SECS" => self.call_timeout_secs);
        env!("ALYXD_TLS_CERT" => self.tls_cert);
        env!("ALYXD_TLS_KEY" => self.tls_key);
        env!("ALYXD_LISTEN" => self.listen);
        env!("ALYXD_METRICS_LISTEN" => self.metrics_listen);
        env!("ALYXD_DATA_DIR" => self.data_dir);
        env!("ALYXD_LOG_JSON" => self.log_json);
        env!("ALYXD_OTLP_ENDPOINT" => self.otlp_endpoint);
        env!("ALYXD_SPARK_URL" => self.spark_url);
        env!("ALYXD_QUERY_CACHE_TTL_MS" => self.query_cache_ttl_ms);
        env!("ALYXD_REDIS_URL" => self.redis_url);
        env!("ALYXD_REDIS_PREFIX" => self.redis_prefix);
        env!("ALYXD_JOB_SLOTS" => self.job_slots);
        env!("ALYXD_JOB_QUEUE_LIMIT" => self.job_queue_limit);
        env!("ALYXD_JOB_USER_QUEUE_LIMIT" => self.job_user_queue_limit);
        env!("ALYXD_JOB_QUOTA" => self.job_quota);
        env!("ALYXD_JOB_LEASE_SECS" => self.job_lease_secs);
        env!("ALYXD_SPARK_JOB_SLOTS" => self.spark_job_slots);
        env!("ALYXD_SLURM" => self.slurm);
        env!("ALYXD_SLURM_SLOTS" => self.slurm_slots);
        env!("ALYXD_SLURM_WORKER" => self.slurm_worker);
        env!("ALYXD_SITE" => self.site);
        env!("ALYXD_SPARK_SITE" => self.spark_site);
        env!("ALYXD_SLURM_SITE" => self.slurm_site);
        env!("ALYXD_JOB_LOCALITY_WAIT_MS" => self.job_locality_wait_ms);
        env!("ALYXD_INGEST" => ingest.enabled);
        env!("ALYXD_KAFKA_BROKERS" => ingest.brokers);
        env!("ALYXD_KAFKA_TOPIC" => ingest.topic);
        env!("ALYXD_KAFKA_PARTITIONS" => ingest.partitions);
        env!("ALYXD_INGEST_DATASET" => ingest.dataset);
        env!("ALYXD_BATCH_EVENTS" => ingest.batch_events);
        env!("ALYXD_BATCH_LINGER_MS" => ingest.batch_linger_ms);
        env!("ALYXD_QUEUE_BATCHES" => ingest.queue_batches);
        env!("ALYXD_FETCH_BUFFER_KB" => ingest.fetch_buffer_kb);
        if let Some(v) = lookup("ALYXD_INSTANCE") {
            ingest.instance = Some(v);
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(
                "tls_cert and tls_key go together: set both for TLS, or neither".into(),
            ));
        }
        if self.user_calls == 0 || self.query_pool == 0 {
            return Err(Error::InvalidArgument(
                "user_calls and query_pool must be at least 1".into(),
            ));
        }
        if !self
            .query_role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::InvalidArgument(format!(
                "query_role `{}`: use lower-case letters, digits and `_`",
                self.query_role
            )));
        }
        if ingest.batch_events == 0 || ingest.queue_batches == 0 {
            return Err(Error::InvalidArgument(
                "ingest.batch_events and ingest.queue_batches must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// This instance's name: the configured one, else host:pid.
    pub fn instance(&self) -> String {
        self.ingest.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "alyxd".into());
            format!("{host}:{}", std::process::id())
        })
    }
}

fn first_existing(candidates: impl IntoIterator<Item = Option<PathBuf>>) -> Option<PathBuf> {
    candidates.into_iter().flatten().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_and_defaults() {
        let mut config: Config =
            toml::from_str("listen = \"0.0.0.0:6000\"\n[ingest]\ntopic = \"from-file\"\n")
                .expect("valid toml");
        config
            .apply_env(|k| match k {
                "ALYXD_KAFKA_TOPIC" => Some("from-env".into()),
                "ALYXD_BATCH_EVENTS" => Some("500".into()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.ingest.topic, "from-env");
        assert_eq!(config.ingest.batch_events, 500);
        assert_eq!(config.ingest.partitions, 4);
    }

    #[test]
    fn bad_values_say_which_variable() {
        let mut config = Config::default();
        let err = config
            .apply_env(|k| (k == "ALYXD_LISTEN").then(|| "nowhere".to_owned()))
            .expect_err("not an address");
        assert!(err.to_string().contains("ALYXD_LISTEN=nowhere"), "{err}");
        assert!(
            toml::from_str::<Config>("colour = 3").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../alyxd.example.toml");
        let text = std::fs::read_to_string(path).expect("example config");
        toml::from_str::<Config>(&text).expect("example config is valid");
        // The two-instance layout in deploy/: both valid, sharing all but ports and names.
        let instance = |n: u8| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../deploy/examples/alyxd-{n}.toml"));
            let text = std::fs::read_to_string(&path).expect("deploy example");
            toml::from_str::<Config>(&text).expect("deploy example is valid")
        };
        let (a, b) = (instance(1), instance(2));
        assert_ne!((a.listen, a.metrics_listen), (b.listen, b.metrics_listen));
        assert_ne!(a.ingest.instance, b.ingest.instance);
        assert_eq!(
            (&a.database_url, &a.data_dir, &a.ingest.topic),
            (&b.database_url, &b.data_dir, &b.ingest.topic)
        );
    }

    #[test]
    fn the_first_configuration_file_that_exists_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (etc, user) = (dir.path().join("etc.toml"), dir.path().join("user.toml"));
        let candidates = || [Some(etc.clone()), None, Some(user.clone())];
        assert_eq!(first_existing(candidates()), None);
        std::fs::write(&user, "").expect("write");
        assert_eq!(first_existing(candidates()), Some(user.clone()));
        std::fs::write(&etc, "").expect("write");
        assert_eq!(first_existing(candidates()), Some(etc.clone()));
        // A directory by that name is not a configuration.
        assert_eq!(first_existing([Some(dir.path().to_owned())]), None);
    }
}

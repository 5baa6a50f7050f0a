//! What the supervisor, the partition workers and the status calls share: the ingest's state
//! and its counters.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alyx_store::Dataset;
use rdkafka::ClientConfig;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::config::IngestConfig;
use crate::metrics::Metrics;

/// Whether ingest is working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestState {
    Up,
    /// The broker does not answer (or the topic is unusable); alyxd keeps retrying.
    Down,
    Disabled,
}

impl IngestState {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestState::Up => "up",
            IngestState::Down => "down",
            IngestState::Disabled => "disabled",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartitionStatus {
    pub partition: u32,
    pub owner: String,
    /// Next offset to store; -1 before anything was.
    pub committed_offset: i64,
    /// -1 when unknown.
    pub high_watermark: i64,
    /// -1 when unknown.
    pub lag: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IngestStatus {
    pub state: IngestState,
    pub detail: String,
    pub brokers: String,
    pub topic: String,
    pub instance: String,
    pub events_per_second: f64,
    pub partitions: Vec<PartitionStatus>,
    pub queue_depth: u32,
    pub dead_letters: u64,
    pub estimated_delay_s: f64,
    pub events_stored: u64,
}

/// What the supervisor, the partition workers and the status calls share.
pub(super) struct Shared {
    pub(super) config: IngestConfig,
    pub(super) instance: String,
    pub(super) pool: PgPool,
    pub(super) db_options: PgConnectOptions,
    pub(super) metrics: Arc<Metrics>,
    /// The dataset ingested events go to. Chunks are encoded outside this mutex; it serialises
    /// this process's manifest updates (the store's lock file serialises processes).
    pub(super) dataset: Mutex<Dataset>,
    pub(super) dataset_id: i32,
    /// Decoded batches waiting for storage, over all partitions.
    pub(super) queued: AtomicI64,
    pub(super) events_stored: AtomicU64,
    pub(super) recent: Mutex<VecDeque<(Instant, u64)>>,
    /// Catalogue days known to have a partition.
    pub(super) known_days: Mutex<HashSet<i64>>,
    pub(super) snapshot: Mutex<Snapshot>,
}

#[derive(Clone)]
pub(super) struct Snapshot {
    pub(super) state: IngestState,
    pub(super) detail: String,
    pub(super) partitions: Vec<PartitionStatus>,
}

const RATE_WINDOW: Duration = Duration::from_secs(10);
/// An instance whose heartbeat is older than this counts as gone.
pub(super) const INSTANCE_TIMEOUT_S: i32 = 6;
pub(super) const TICK: Duration = Duration::from_secs(1);

impl Shared {
    pub(super) fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.config.brokers)
            .set("group.id", format!("alyxd-{}", self.config.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "queued.max.messages.kbytes",
                self.config.fetch_buffer_kb.max(1024).to_string(),
            )
            .set("socket.timeout.ms", "10000")
            .set("reconnect.backoff.max.ms", "2000")
            .set("log_level", "3");
        c
    }

    pub(super) fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn record_stored(&self, n: u64) {
        self.events_stored.fetch_add(n, Ordering::Relaxed);
        let mut recent = Self::locked(&self.recent);
        let now = Instant::now();
        recent.push_back((now, n));
        while recent.front().is_some_and(|(t, _)| now - *t > RATE_WINDOW) {
            recent.pop_front();
        }
    }

    pub(super) fn rate(&self) -> f64 {
        let recent = Self::locked(&self.recent);
        let now = Instant::now();
        let n: u64 = recent
            .iter()
            .filter(|(t, _)| now - *t <= RATE_WINDOW)
            .map(|(_, n)| n)
            .sum();
        n as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub(super) fn set_state(&self, state: IngestState, detail: String) {
        let mut s = Self::locked(&self.snapshot);
        if s.state != state {
            match state {
                IngestState::Down => tracing::warn!(%detail, "ingest down; retrying"),
                _ => tracing::info!(state = state.as_str(), "ingest state"),
            }
        }
        s.state = state;
        s.detail = detail;
        self.metrics.up.set(i64::from(state == IngestState::Up));
    }
}

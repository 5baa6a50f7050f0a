//! The cache tier every alyxd instance shares: Redis. What one instance made (a catalogue
//! query's result, an event for a display) another serves without asking PostgreSQL or the
//! Parquet store again.
//!
//! Invalidation never relies on deleting entries. Every key names two versions kept in Redis:
//! the epoch (everything) and the dataset's generation. A dataset that changes gets its
//! generation incremented by every instance that hears of it (ingest NOTIFYs `alyx_events`,
//! every instance LISTENs), so its old entries can no longer be found and expire by their
//! TTL. An instance that cannot deliver an increment (Redis unreachable) keeps it pending and
//! bypasses Redis until it has delivered it: it never serves what an invalidation it missed
//! would have hidden. One that may have missed notifications (its LISTEN reconnected) bumps
//! the epoch. Versions have no TTL, entries do: Redis must evict only keys with a TTL
//! (`maxmemory-policy volatile-lru`, checked at start), or an evicted generation would bring
//! old entries back.
//!
//! Redis down or slow: each call waits at most [`CALL_TIMEOUT`]; a failure opens a circuit
//! breaker for [`OPEN_FOR`], during which every call goes straight to PostgreSQL or Parquet;
//! then one call probes Redis (half-open) and closes the breaker when it answers.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest alyxd waits for one Redis call before serving without it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How long the breaker stays open after a failure before one call probes Redis again.
pub const OPEN_FOR: Duration = Duration::from_secs(2);
/// Values larger than this are served but not shared.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

pub struct SharedCache {
    redis: redis::aio::ConnectionManager,
    prefix: String,
    ttl: Duration,
    breaker: Breaker,
    /// Invalidations not yet delivered; while any is, Redis is bypassed.
    pending: Mutex<Pending>,
    /// 1 while Redis answers and every invalidation is delivered (alyxd registers these).
    pub up: prometheus::IntGauge,
    pub hits: prometheus::IntCounter,
    pub misses: prometheus::IntCounter,
    /// Calls that failed or timed out (each served without Redis).
    pub errors: prometheus::IntCounter,
}

#[derive(Default)]
struct Pending {
    everything: bool,
    datasets: BTreeSet<i32>,
}

/// What a value is, which says what makes it stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A query's result over a dataset's catalogue: stale once the dataset changes.
    Query,
    /// A stored event: events do not change once stored, so only the epoch (everything
    /// forgotten) and the TTL end it, not ingest into its dataset.
    Event,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Query => "q",
            Kind::Event => "ev",
        }
    }
}

/// Where a value of one dataset lives in Redis, at the versions read before it was made: a
/// value made from data that changed meanwhile lands under versions nobody reads any more.
pub struct Slot {
    key: String,
}

impl SharedCache {
    /// A cache in the Redis at `url` (connected lazily: an unreachable Redis is a degraded
    /// cache, not an error), its keys under `prefix`, its entries living `ttl`.
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::InvalidArgument(format!("redis_url `{url}`: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let redis = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::Unavailable(format!("redis: {e}")))?;
        let gauge = |name: &str, help: &str| {
            prometheus::IntGauge::new(name, help).expect("a static, valid metric definition")
        };
        let counter = |name: &str, help: &str| {
            prometheus::IntCounter::new(name, help).expect("a static, valid metric definition")
        };
        Ok(Self {
            redis,
            prefix: prefix.to_owned(),
            ttl,
            breaker: Breaker::default(),
            pending: Mutex::new(Pending::default()),
            up: gauge(
                "alyxd_cache_redis_up",
                "1 while the shared cache (Redis) answers and is consistent",
            ),
            hits: counter(
                "alyxd_cache_redis_hits_total",
                "values served from the shared cache",
            ),
            misses: counter(
                "alyxd_cache_redis_misses_total",
                "values looked for in the shared cache and not found",
            ),
            errors: counter(
                "alyxd_cache_redis_errors_total",
                "shared cache calls that failed or timed out (served without it)",
            ),
        })
    }

    /// Warns when Redis may evict the version keys (see the module's documentation).
    pub async fn check_eviction_policy(&self) {
        let mut redis = self.redis.clone();
        let answer: Option<redis::RedisResult<Vec<String>>> = tokio::time::timeout(
            CALL_TIMEOUT,
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async(&mut redis),
        )
        .await
        .ok();
        if let Some(Ok(policy)) = answer
            && let Some(p) = policy.get(1)
            && !p.starts_with("volatile-")
            && p != "noeviction"
        {
            tracing::warn!(
                policy = %p,
                "Redis may evict keys without a TTL: set maxmemory-policy volatile-lru, or the shared cache could serve invalidated results after an eviction"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => {
                self.breaker.success();
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(&e.to_string());
                None
            }
            Err(_) => {
                self.fail("timed out");
                None
            }
        }
    }

    fn fail(&self, why: &str) {
        if self.breaker.failure() {
            tracing::warn!(
                error = why,
                "the shared cache (Redis) failed: serving without it"
            );
        }
        self.errors.inc();
        self.up.set(0);
    }

    /// Whether Redis may be used now: the breaker lets the call through and every
    /// invalidation has been delivered (delivering the pending ones first).
    async fn usable(&self) -> bool {
        if !self.breaker.allow() {
            return false;
        }
        let (everything, datasets) = {
            let p = self.lock();
            (p.everything, p.datasets.iter().copied().collect::<Vec<_>>())
        };
        if everything || !datasets.is_empty() {
            let mut pipe = redis::pipe();
            if everything {
                pipe.incr(self.epoch_key(), 1).ignore();
            }
            for d in &datasets {
                pipe.incr(self.generation_key(*d), 1).ignore();
            }
            let mut redis = self.redis.clone();
            if self
                .call(pipe.query_async::<()>(&mut redis))
                .await
                .is_none()
            {
                return false;
            }
            let mut p = self.lock();
            p.everything &= !everything;
            for d in &datasets {
                p.datasets.remove(d);
            }
            tracing::info!(everything, datasets = ?datasets, "shared cache invalidations delivered");
        }
        self.up.set(1);
        true
    }

    fn epoch_key(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    fn generation_key(&self, dataset: i32) -> String {
        format!("{}gen:{dataset}", self.prefix)
    }

    /// The value of `kind` stored as `key` of `dataset`, and the slot to store it in when there
    /// is none. `None`: Redis is not to be used now.
    pub async fn get(
        &self,
        kind: Kind,
        dataset: i32,
        key: &str,
    ) -> Option<(Slot, Option<Vec<u8>>)> {
        if !self.usable().await {
            return None;
        }
        let mut redis = self.redis.clone();
        let versions: Vec<Option<u64>> = self
            .call(redis.mget(&[self.epoch_key(), self.generation_key(dataset)]))
            .await?;
        let epoch = versions.first().copied().flatten().unwrap_or(0);
        let generation = match kind {
            Kind::Query => versions.get(1).copied().flatten().unwrap_or(0),
            Kind::Event => 0,
        };
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let slot = Slot {
            key: format!(
                "{}{}:{epoch}:{dataset}:{generation}:{hex}",
                self.prefix,
                kind.name()
            ),
        };
        let value: Option<Vec<u8>> = self.call(redis.get(&slot.key)).await?;
        match &value {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        }
        Some((slot, value))
    }

    /// Stores `value` in `slot` for the cache's TTL (not when it is larger than
    /// [`MAX_VALUE_BYTES`]).
    pub async fn put(&self, slot: Slot, value: Vec<u8>) {
        if value.len() > MAX_VALUE_BYTES || !self.usable().await {
            return;
        }
        let mut redis = self.redis.clone();
        let ttl = self.ttl.as_millis().max(1) as u64;
        let _: Option<()> = self
            .call(
                redis::cmd("SET")
                    .arg(&slot.key)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut redis),
            )
            .await;
    }

    /// `dataset` changed: its values can no longer be found once this is delivered; until
    /// then this instance bypasses Redis.
    pub async fn invalidate(&self, dataset: i32) {
        self.lock().datasets.insert(dataset);
        self.usable().await;
    }

    /// Anything may have changed (notifications may have been missed).
    pub async fn invalidate_all(&self) {
        self.lock().everything = true;
        self.usable().await;
    }

    /// Delivers pending invalidations and probes Redis when the breaker allows (readiness
    /// calls it every few seconds, so an instance that serves only from its own memory still
    /// catches up).
    pub async fn probe(&self) {
        if self.usable().await {
            let mut redis = self.redis.clone();
            let _: Option<String> = self.call(redis::cmd("PING").query_async(&mut redis)).await;
        }
    }

    /// Why the cache is degraded, when it is (for readiness and status).
    pub fn degraded(&self) -> Option<String> {
        let p = self.lock();
        if p.everything || !p.datasets.is_empty() {
            return Some("invalidations not yet delivered; bypassed".into());
        }
        self.breaker
            .is_open()
            .then(|| "unreachable; bypassed".to_owned())
    }
}

/// A circuit breaker: closed (calls go through), open for [`OPEN_FOR`] after a failure (calls
/// skip Redis), then half-open (one call probes; its outcome closes or reopens it).
#[derive(Default)]
struct Breaker {
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum State {
    #[default]
    Closed,
    Open(Instant),
    Probing,
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may go to Redis now.
    fn allow(&self) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed => true,
            State::Open(until) if Instant::now() >= until => {
                *state = State::Probing;
                true
            }
            State::Open(_) | State::Probing => false,
        }
    }

    fn success(&self) {
        *self.lock() = State::Closed;
    }

    /// Opens the breaker; true when it was closed (the failure is news).
    fn failure(&self) -> bool {
        let mut state = self.lock();
        let news = *state == State::Closed;
        *state = State::Open(Instant::now() + OPEN_FOR);
        news
    }

    fn is_open(&self) -> bool {
        *self.lock() != State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_on_failure_and_lets_one_probe_through_later() {
        let b = Breaker::default();
        assert!(b.allow() && b.allow(), "closed: every call");
        assert!(b.failure(), "the first failure is news");
        assert!(!b.allow(), "open: no call");
        assert!(b.is_open());
        *b.lock() = State::Open(Instant::now());
        assert!(b.allow(), "after OPEN_FOR: one probe");
        assert!(!b.allow(), "and only one");
        assert!(!b.failure(), "a failed probe is not news");
        assert!(!b.allow());
        *b.lock() = State::Open(Instant::now());
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow() && !b.is_open(), "closed again");
    }
}

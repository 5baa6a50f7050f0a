//! A cache of catalogue query results. Catalogue dashboards send the same few queries from
//! many clients at once: the first caller runs a query, callers that come while it runs wait
//! for its answer instead of running it again, and later callers get the stored answer until
//! the dataset's catalogue changes (every ingest commit NOTIFYs `alyx_events`, which every
//! instance LISTENs to) or the entry is `ttl` old — the bound on staleness for catalogue
//! writes that do not notify. Below this instance's memory sits, when configured, the tier all
//! instances share ([`SharedCache`], Redis): a result one instance made, another serves.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polars::prelude::DataFrame;
use tokio::sync::OnceCell;

use crate::error::Result;
use crate::shared_cache::{Kind, SharedCache};

/// Entries kept; the oldest go first.
const CAPACITY: usize = 1024;
/// Bytes of results kept at most (as polars estimates them); the oldest go first. A result
/// larger than this is served but not kept.
const BUDGET_BYTES: usize = 256 << 20;

pub struct ResultCache {
    ttl: Duration,
    inner: Mutex<Inner>,
    shared: Option<Arc<SharedCache>>,
    /// Results served from the cache (alyxd registers these with its metrics).
    pub hits: prometheus::IntCounter,
    /// Results made because none was fresh.
    pub misses: prometheus::IntCounter,
}

/// The bytes kept, for tests.
#[cfg(test)]
impl ResultCache {
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Keys, oldest first.
    order: VecDeque<String>,
    /// The sizes of the entries' results (those made so far).
    bytes: usize,
}

struct Entry {
    dataset: i32,
    made: Instant,
    result: Arc<OnceCell<DataFrame>>,
    /// The result's size once made; 0 before.
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.bytes;
        }
    }

    /// Drops the oldest entries until at most `CAPACITY` entries and `BUDGET_BYTES` remain.
    fn shrink(&mut self) {
        while self.entries.len() > CAPACITY || self.bytes > BUDGET_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
    }
}

impl ResultCache {
    /// A cache whose entries live `ttl` at most; a zero `ttl` stores nothing (each call runs).
    pub fn new(ttl: Duration) -> Self {
        let counter = |name: &str, help: &str| {
            prometheus::IntCounter::new(name, help).expect("a static, valid metric definition")
        };
        Self {
            ttl,
            inner: Mutex::new(Inner::default()),
            shared: None,
            hits: counter(
                "alyxd_query_cache_hits_total",
                "catalogue results served from the cache",
            ),
            misses: counter(
                "alyxd_query_cache_misses_total",
                "catalogue results made because none was fresh",
            ),
        }
    }

    /// This cache over `shared`, the tier every instance reads and fills.
    pub fn with_shared(mut self, shared: Arc<SharedCache>) -> Self {
        self.shared = Some(shared);
        self
    }

    pub fn shared(&self) -> Option<&Arc<SharedCache>> {
        self.shared.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The result of `key` (a query on the catalogue of dataset `dataset`): stored, being made
    /// by another caller, or made by `run` now. Errors are not stored.
    pub async fn get_or_run<F>(&self, dataset: i32, key: &str, run: F) -> Result<DataFrame>
    where
        F: Future<Output = Result<DataFrame>>,
    {
        if self.ttl.is_zero() {
            return run.await;
        }
        let cell = {
            let mut inner = self.lock();
            let fresh = inner
                .entries
                .get(key)
                .filter(|e| e.made.elapsed() < self.ttl)
                .map(|e| e.result.clone());
            match fresh {
                Some(cell) => {
                    self.hits.inc();
                    cell
                }
                None => {
                    self.misses.inc();
                    let cell = Arc::new(OnceCell::new());
                    let entry = Entry {
                        dataset,
                        made: Instant::now(),
                        result: cell.clone(),
                        bytes: 0,
                    };
                    // A stale entry keeps its place in the order.
                    let stale = inner.entries.contains_key(key);
                    inner.remove(key);
                    inner.entries.insert(key.to_owned(), entry);
                    if !stale {
                        inner.order.push_back(key.to_owned());
                    }
                    inner.shrink();
                    cell
                }
            }
        };
        let result = cell
            .get_or_try_init(|| self.shared_or_run(dataset, key, run))
            .await
            .cloned()?;
        // Count the result's bytes once, against the entry that holds this very cell.
        let size = result.estimated_size().max(1);
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get_mut(key)
            && Arc::ptr_eq(&e.result, &cell)
            && e.bytes == 0
        {
            e.bytes = size;
            inner.bytes += size;
            if size > BUDGET_BYTES {
                inner.remove(key);
            }
            inner.shrink();
        }
        Ok(result)
    }

    /// The result from the shared tier, else made by `run` (and shared).
    async fn shared_or_run<F>(&self, dataset: i32, key: &str, run: F) -> Result<DataFrame>
    where
        F: Future<Output = Result<DataFrame>>,
    {
        let Some(shared) = &self.shared else {
            return run.await;
        };
        let Some((slot, stored)) = shared.get(Kind::Query, dataset, key).await else {
            return run.await;
        };
        if let Some(df) = stored.as_deref().and_then(decode) {
            return Ok(df);
        }
        let mut result = run.await?;
        if let Some(bytes) = encode(&mut result) {
            shared.put(slot, bytes).await;
        }
        Ok(result)
    }

    /// Forgets the results over `dataset`'s catalogue (it changed), here and in the shared
    /// tier.
    pub async fn invalidate(&self, dataset: i32) {
        {
            let mut inner = self.lock();
            inner.entries.retain(|_, e| e.dataset != dataset);
            inner.bytes = inner.entries.values().map(|e| e.bytes).sum();
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|k| entries.contains_key(k));
        }
        if let Some(shared) = &self.shared {
            shared.invalidate(dataset).await;
        }
    }

    /// Forgets everything (changes may have been missed), here and in the shared tier.
    pub async fn clear(&self) {
        {
            let mut inner = self.lock();
            inner.entries.clear();
            inner.order.clear();
            inner.bytes = 0;
        }
        if let Some(shared) = &self.shared {
            shared.invalidate_all().await;
        }
    }
}

fn encode(df: &mut DataFrame) -> Option<Vec<u8>> {
    use polars::prelude::IpcStreamWriter;
    use polars::prelude::SerWriter;
    let mut bytes = Vec::new();
    IpcStreamWriter::new(&mut bytes).finish(df).ok()?;
    Some(bytes)
}

/// A result from the shared tier; anything that does not read back as Arrow IPC is a miss.
fn decode(bytes: &[u8]) -> Option<DataFrame> {
    use polars::prelude::{IpcStreamReader, SerReader};
    IpcStreamReader::new(std::io::Cursor::new(bytes))
        .finish()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn frame(n: i64) -> DataFrame {
        df!("n" => [n]).expect("frame")
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_run_until_the_dataset_changes() {
        let cache = Arc::new(ResultCache::new(Duration::from_secs(60)));
        let runs = Arc::new(AtomicUsize::new(0));
        let call = |cache: Arc<ResultCache>, runs: Arc<AtomicUsize>, dataset, key: &'static str| async move {
            cache
                .get_or_run(dataset, key, async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(frame(7))
                })
                .await
        };
        let calls: Vec<_> = (0..20)
            .map(|_| tokio::spawn(call(cache.clone(), runs.clone(), 1, "q")))
            .collect();
        for c in calls {
            assert!(c.await.expect("task").expect("result").equals(&frame(7)));
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one run for 20 concurrent callers"
        );
        call(cache.clone(), runs.clone(), 2, "other")
            .await
            .expect("other");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Dataset 1 changes: its query runs again, dataset 2's stays.
        cache.invalidate(1).await;
        call(cache.clone(), runs.clone(), 1, "q")
            .await
            .expect("again");
        call(cache.clone(), runs.clone(), 2, "other")
            .await
            .expect("stored");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        cache.clear().await;
        call(cache.clone(), runs.clone(), 2, "other")
            .await
            .expect("after clear");
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn errors_are_not_stored_and_entries_expire() {
        let cache = ResultCache::new(Duration::from_millis(100));
        let failed = cache
            .get_or_run(1, "q", async {
                Err(crate::error::Error::Unavailable("down".into()))
            })
            .await;
        assert!(failed.is_err());
        let ok = cache.get_or_run(1, "q", async { Ok(frame(1)) }).await;
        assert!(ok.expect("retried").equals(&frame(1)));
        let stored = cache.get_or_run(1, "q", async { Ok(frame(2)) }).await;
        assert!(stored.expect("stored").equals(&frame(1)));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let expired = cache.get_or_run(1, "q", async { Ok(frame(3)) }).await;
        assert!(expired.expect("expired").equals(&frame(3)));
        let off = ResultCache::new(Duration::ZERO);
        off.get_or_run(1, "q", async { Ok(frame(1)) })
            .await
            .expect("run");
        let again = off.get_or_run(1, "q", async { Ok(frame(2)) }).await;
        assert!(again.expect("run").equals(&frame(2)));
    }

    #[tokio::test]
    async fn kept_bytes_are_counted_and_given_back() {
        let cache = ResultCache::new(Duration::from_secs(60));
        let big = DataFrame::new_infer_height(vec![Column::new("x".into(), vec![1.5f64; 10_000])])
            .expect("frame");
        cache
            .get_or_run(1, "a", async { Ok(big.clone()) })
            .await
            .expect("a");
        cache
            .get_or_run(2, "b", async { Ok(frame(1)) })
            .await
            .expect("b");
        let both = cache.bytes();
        assert!(both >= 80_000, "{both}");
        // A stale or repeated key does not count twice.
        cache
            .get_or_run(1, "a", async { Ok(frame(9)) })
            .await
            .expect("stored");
        assert_eq!(cache.bytes(), both);
        cache.invalidate(1).await;
        assert!(cache.bytes() < 1_000, "{}", cache.bytes());
        cache.clear().await;
        assert_eq!(cache.bytes(), 0);
    }
}

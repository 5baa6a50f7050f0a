//! Prometheus metrics and probes: what alyxd measures, and the small HTTP router (axum) that
//! serves `GET /metrics` (the text exposition, through the `prometheus` crate's encoder),
//! `GET /healthz` (liveness: the process answers) and `GET /readyz` (readiness: PostgreSQL
//! answers and every migration this alyxd knows is applied; the broker's state is reported).
//!
//! gRPC calls are counted under the names every gRPC dashboard expects
//! (`grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`,
//! `grpc_server_handling_seconds`); the process's own (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, open files …) come from the crate's process collector.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;

/// Every metric of one alyxd process.
pub struct Metrics {
    pub registry: Registry,
    pub events_stored: IntCounter,
    pub bytes_consumed: IntCounter,
    pub batches: IntCounter,
    pub duplicates: IntCounter,
    pub dead_letters: IntCounter,
    pub errors: IntCounterVec,
    /// Seconds per batch in each pipeline stage: decode (with validation), dedup, write
    /// (Parquet chunk), copy (catalogue rows, runs), commit (the whole transaction).
    pub stage_seconds: HistogramVec,
    /// Seconds from a message's production to its event being queryable.
    pub latency_seconds: Histogram,
    pub lag: IntGaugeVec,
    pub queue_depth: IntGauge,
    pub delay_seconds: prometheus::Gauge,
    pub up: IntGauge,
    pub owned_partitions: IntGauge,
    /// gRPC: seconds per call, by service and method.
    pub rpc_seconds: HistogramVec,
    /// gRPC: calls ended, by service, method and status code.
    pub rpc_handled: IntCounterVec,
    /// 1 when `/readyz` last said ready.
    pub ready: IntGauge,
    /// Jobs by state, across the cluster (from the catalogue).
    pub jobs: IntGaugeVec,
    /// Per executor: 1 when its health check passes, its slots, its running tasks.
    pub executor_up: IntGaugeVec,
    pub executor_slots: IntGaugeVec,
    pub executor_running: IntGaugeVec,
    /// Notebooks open for collaboration on this instance.
    pub collab_notebooks: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let buckets = prometheus::exponential_buckets(0.0005, 2.0, 18).unwrap_or_default();
        macro_rules! reg {
            ($metric:expr) => {{
                let m = $metric.expect("metric definitions are static and valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("metric names are unique");
                m
            }};
        }
        Self {
            events_stored: reg!(IntCounter::new(
                "alyxd_ingest_events_total",
                "events stored"
            )),
            bytes_consumed: reg!(IntCounter::new(
                "alyxd_ingest_bytes_total",
                "message bytes consumed"
            )),
            batches: reg!(IntCounter::new(
                "alyxd_ingest_batches_total",
                "batches committed"
            )),
            duplicates: reg!(IntCounter::new(
                "alyxd_ingest_duplicates_total",
                "events skipped because the catalogue already had them"
            )),
            dead_letters: reg!(IntCounter::new(
                "alyxd_ingest_dead_letters_total",
                "messages stored as dead letters"
            )),
            errors: reg!(IntCounterVec::new(
                Opts::new("alyxd_ingest_errors_total", "ingest errors by kind"),
                &["kind"]
            )),
            stage_seconds: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "alyxd_ingest_stage_seconds",
                    "seconds per batch in each stage"
                )
                .buckets(buckets.clone()),
                &["stage"]
            )),
            latency_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "alyxd_ingest_latency_seconds",
                    "from a message's production to its event being queryable"
                )
                .buckets(buckets.clone())
            )),
            lag: reg!(IntGaugeVec::new(
                Opts::new(
                    "alyxd_ingest_lag_messages",
                    "messages produced but not yet stored"
                ),
                &["partition"]
            )),
            queue_depth: reg!(IntGauge::new(
                "alyxd_ingest_queue_depth",
                "decoded batches waiting for storage"
            )),
            delay_seconds: reg!(prometheus::Gauge::new(
                "alyxd_ingest_estimated_delay_seconds",
                "estimated time until an event produced now is queryable"
            )),
            up: reg!(IntGauge::new(
                "alyxd_ingest_up",
                "1 when the broker answers, else 0"
            )),
            owned_partitions: reg!(IntGauge::new(
                "alyxd_ingest_owned_partitions",
                "topic partitions this instance ingests"
            )),
            rpc_seconds: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "grpc_server_handling_seconds",
                    "seconds to handle a gRPC call (a stream: until it starts)"
                )
                .buckets(buckets),
                &["grpc_service", "grpc_method"]
            )),
            rpc_handled: reg!(IntCounterVec::new(
                Opts::new(
                    "grpc_server_handled_total",
                    "gRPC calls ended, by status code"
                ),
                &["grpc_service", "grpc_method", "grpc_code"]
            )),
            ready: reg!(IntGauge::new(
                "alyxd_ready",
                "1 when PostgreSQL answers and the schema is up to date"
            )),
            jobs: reg!(IntGaugeVec::new(
                Opts::new("alyxd_jobs", "jobs by state"),
                &["state"]
            )),
            executor_up: reg!(IntGaugeVec::new(
                Opts::new(
                    "alyxd_executor_up",
                    "1 when the executor's health check passes"
                ),
                &["executor"]
            )),
            executor_slots: reg!(IntGaugeVec::new(
                Opts::new("alyxd_executor_slots", "tasks the executor runs at once"),
                &["executor"]
            )),
            executor_running: reg!(IntGaugeVec::new(
                Opts::new(
                    "alyxd_executor_running_tasks",
                    "tasks running on the executor"
                ),
                &["executor"]
            )),
            collab_notebooks: reg!(IntGauge::new(
                "alyxd_collab_open_notebooks",
                "notebooks open for collaboration on this instance"
            )),
            registry: {
                #[cfg(target_os = "linux")]
                {
                    let process = prometheus::process_collector::ProcessCollector::for_self();
                    if let Err(e) = registry.register(Box::new(process)) {
                        tracing::warn!(error = %e, "no process metrics");
                    }
                }
                registry
            },
        }
    }

    /// Adds metrics another part of alyxd owns (the query cache's counters).
    pub fn register(&self, metric: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(metric) {
            tracing::warn!(error = %e, "metric not registered");
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pub pool: sqlx::PgPool,
    pub metrics: Arc<Metrics>,
    /// Whether this alyxd ingests (then the broker's state is reported).
    pub ingest: bool,
    /// The shared cache, when there is one (its state is reported; degraded is still ready:
    /// alyxd serves without it).
    pub cache: Option<Arc<crate::shared_cache::SharedCache>>,
}

/// The outcome of the readiness checks: each check's name and what it found.
#[derive(Clone, Debug, PartialEq)]
pub struct Checks {
    pub ready: bool,
    pub lines: Vec<(&'static str, String)>,
}

impl Readiness {
    /// Checks PostgreSQL (within two seconds) and the schema; reports the broker.
    pub async fn check(&self) -> Checks {
        let mut lines = Vec::new();
        let latest = crate::catalogue::MIGRATOR
            .migrations
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let applied = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&self.pool),
        )
        .await;
        let ready = match applied {
            Ok(Ok(version)) => {
                lines.push(("postgres", "ok".to_owned()));
                let version = version.unwrap_or(0);
                let current = version >= latest;
                lines.push((
                    "migrations",
                    if current {
                        format!("ok ({version})")
                    } else {
                        format!("behind: {version} applied, {latest} needed (run alyxd migrate)")
                    },
                ));
                current
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: PostgreSQL");
                lines.push(("postgres", "unreachable (the log has the error)".to_owned()));
                false
            }
            Err(_) => {
                lines.push(("postgres", "no answer within 2 s".to_owned()));
                false
            }
        };
        if self.ingest {
            let up = self.metrics.up.get() == 1;
            lines.push(("broker", if up { "ok" } else { "unreachable" }.to_owned()));
        }
        if let Some(cache) = &self.cache {
            cache.probe().await;
            let state = cache
                .degraded()
                .map_or_else(|| "ok".to_owned(), |why| format!("degraded: {why}"));
            lines.push(("cache", state));
        }
        self.metrics.ready.set(i64::from(ready));
        Checks { ready, lines }
    }
}

/// The metrics and probe routes.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((metrics, _)): State<(Arc<Metrics>, Readiness)>| async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                },
            ),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(
                |State((_, readiness)): State<(Arc<Metrics>, Readiness)>| async move {
                    let checks = readiness.check().await;
                    let body: String = checks
                        .lines
                        .iter()
                        .map(|(name, state)| format!("{name}: {state}\n"))
                        .collect();
                    let status = match checks.ready {
                        true => StatusCode::OK,
                        false => StatusCode::SERVICE_UNAVAILABLE,
                    };
                    (status, body)
                },
            ),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "try /metrics, /healthz or /readyz\n") })
        .with_state((metrics, readiness))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "metrics server stopped");
    }
}

/// Binds the metrics listener, with a message that names the address on failure.
pub async fn bind(addr: SocketAddr) -> crate::error::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        crate::error::Error::Unavailable(format!("cannot listen for metrics on {addr}: {e}"))
    })
}

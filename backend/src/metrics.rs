//! Prometheus metrics: what alyxd measures, and the HTTP endpoint (`GET /metrics`) that serves
//! them in the text exposition format.

use std::net::SocketAddr;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    pub rpc_seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("alyxd".into()), None).unwrap_or_else(|_| Registry::new());
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
            events_stored: reg!(IntCounter::new("ingest_events_total", "events stored")),
            bytes_consumed: reg!(IntCounter::new(
                "ingest_bytes_total",
                "message bytes consumed"
            )),
            batches: reg!(IntCounter::new("ingest_batches_total", "batches committed")),
            duplicates: reg!(IntCounter::new(
                "ingest_duplicates_total",
                "events skipped because the catalogue already had them"
            )),
            dead_letters: reg!(IntCounter::new(
                "ingest_dead_letters_total",
                "messages stored as dead letters"
            )),
            errors: reg!(IntCounterVec::new(
                Opts::new("ingest_errors_total", "ingest errors by kind"),
                &["kind"]
            )),
            stage_seconds: reg!(HistogramVec::new(
                HistogramOpts::new("ingest_stage_seconds", "seconds per batch in each stage")
                    .buckets(buckets.clone()),
                &["stage"]
            )),
            latency_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "ingest_latency_seconds",
                    "from a message's production to its event being queryable"
                )
                .buckets(buckets.clone())
            )),
            lag: reg!(IntGaugeVec::new(
                Opts::new(
                    "ingest_lag_messages",
                    "messages produced but not yet stored"
                ),
                &["partition"]
            )),
            queue_depth: reg!(IntGauge::new(
                "ingest_queue_depth",
                "decoded batches waiting for storage"
            )),
            delay_seconds: reg!(prometheus::Gauge::new(
                "ingest_estimated_delay_seconds",
                "estimated time until an event produced now is queryable"
            )),
            up: reg!(IntGauge::new(
                "ingest_up",
                "1 when the broker answers, else 0"
            )),
            owned_partitions: reg!(IntGauge::new(
                "ingest_owned_partitions",
                "topic partitions this instance ingests"
            )),
            rpc_seconds: reg!(HistogramVec::new(
                HistogramOpts::new("rpc_seconds", "gRPC call latency").buckets(buckets),
                &["method", "code"]
            )),
            registry,
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

/// Serves `GET /metrics` (and `GET /healthz`) on `listener` until `shutdown` resolves. A
/// minimal HTTP/1.0 responder: one request per connection, which is what scrapers send.
pub async fn serve(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (mut socket, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                socket.read(&mut buf),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.render()),
                "/healthz" => ("200 OK", "ok\n".to_owned()),
                _ => ("404 Not Found", "try /metrics\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Binds the metrics listener, with a message that names the address on failure.
pub async fn bind(addr: SocketAddr) -> crate::error::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        crate::error::Error::Unavailable(format!("cannot listen for metrics on {addr}: {e}"))
    })
}

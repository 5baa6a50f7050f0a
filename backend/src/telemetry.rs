//! Logs, and OpenTelemetry traces when an operator asks for them.
//!
//! alyxd logs through `tracing` to stderr (text or JSON lines). With `otlp_endpoint` set, the
//! same spans also go to an OpenTelemetry collector over OTLP/gRPC: each call is a server span
//! named by its gRPC method (continuing the caller's trace when it sent a W3C `traceparent`),
//! a query is a child span per engine run, and a job's tasks are children of the call that
//! submitted it, on whichever instance runs them (the job row keeps the trace's
//! `traceparent`).

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{Error, Result};

/// Flushes and stops the trace exporter when dropped: drop it while the tokio runtime that
/// built it still runs, after the server has stopped.
#[must_use = "dropping it stops the trace exporter"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("alyxd: traces not all sent at exit: {e}");
            }
        }
    }
}

/// Starts logging (the level from `RUST_LOG`, else info) and, when `otlp_endpoint` is not
/// empty, trace export to it as `service.name` alyxd, `service.instance.id` `instance`. Call it
/// inside a tokio runtime (the exporter's channel lives there).
pub fn init(log_json: bool, otlp_endpoint: &str, instance: &str) -> Result<Telemetry> {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn,h2=warn,tower=warn"));
    let text = (!log_json).then(|| fmt::layer().with_writer(std::io::stderr));
    let json = log_json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    let (provider, otel) = if otlp_endpoint.is_empty() {
        (None, None)
    } else {
        let provider = provider(otlp_endpoint, instance)?;
        use opentelemetry::trace::TracerProvider as _;
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("alyxd"));
        (Some(provider), Some(layer))
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init()
        .map_err(|e| Error::Internal(format!("cannot start logging: {e}")))?;
    Ok(Telemetry { provider })
}

fn provider(endpoint: &str, instance: &str) -> Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| Error::Internal(format!("OTLP endpoint `{endpoint}`: {e}")))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("alyxd")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance.to_owned(),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The W3C `traceparent` of the current span ("" when traces are off): what a job row keeps so
/// that its tasks continue the trace that submitted it.
pub fn traceparent() -> String {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

/// Makes `span` (not yet entered) a child of the trace `traceparent` names. A malformed value
/// (it comes from a client or from a row) is ignored: the span starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    // Fails only without the OpenTelemetry layer (traces off), where there is nothing to join.
    let _ = span.set_parent(cx);
}

/// Makes `span` (not yet entered) continue the trace of a call's `traceparent` header.
pub fn continue_call(span: &tracing::Span, headers: &http::HeaderMap) {
    struct Headers<'a>(&'a http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key)?.to_str().ok()
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }
    if headers.contains_key("traceparent") {
        let _ = span.set_parent(TraceContextPropagator::new().extract(&Headers(headers)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_back_as_written_and_nonsense_starts_afresh() {
        use opentelemetry::trace::TracerProvider as _;
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let span = tracing::info_span!("job.task");
            continue_trace(&span, parent);
            let inner = span.in_scope(traceparent);
            assert!(
                inner.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
                "the child keeps the trace id: {inner}"
            );
            assert_ne!(inner, parent, "and has a span id of its own");

            for hostile in ["nonsense", "00-zz-yy-01", &"0".repeat(10_000)] {
                let span = tracing::info_span!("job.task");
                continue_trace(&span, hostile);
                let own = span.in_scope(traceparent);
                assert!(!own.contains("0af7651916cd43dd"), "{own}");
                assert_eq!(own.len(), 55, "a fresh trace: {own}");
            }
        });
        assert_eq!(traceparent(), "", "no trace outside a span");
    }
}

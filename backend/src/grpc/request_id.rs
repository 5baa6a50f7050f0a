//! Every gRPC call gets a request id: the client's `x-request-id` when it sent a short, plain
//! one, else a new one. The call runs in a tracing span carrying it (so every log line of the
//! call names it, as do the tasks it spawns through [`spawn`]), an error reply that hides
//! internals quotes it, and the reply's headers return it as `x-request-id`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the call this task serves, if it serves one (streams' spawned tasks do not).
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Spawns a task that keeps the calling request's id and span: a stream's task logs under the
/// id of the call that opened it, as the call itself does.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let future = future.instrument(tracing::Span::current());
    match current() {
        Some(id) => tokio::spawn(CURRENT.scope(id, future)),
        None => tokio::spawn(future),
    }
}

/// A new id: unique within this alyxd (its start time, a counter).
pub fn new_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: OnceLock<u64> = OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{start:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A client's id, kept only when it is at most 64 letters, digits, `-` or `_` (it lands in
/// logs and headers).
fn from_client(value: Option<&http::HeaderValue>) -> Option<String> {
    let v = value?.to_str().ok()?;
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain.then(|| v.to_owned())
}

/// The tower layer for tonic's server.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;

    fn layer(&self, inner: S) -> RequestIds<S> {
        RequestIds { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestIds<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let id = from_client(request.headers().get("x-request-id")).unwrap_or_else(new_id);
        // Traces name the span by its method, "alyx.v1.QueryService/Execute", as OpenTelemetry's
        // conventions for gRPC servers do; logs name it "rpc".
        let method = request.uri().path().trim_start_matches('/');
        let span = tracing::info_span!(
            "rpc",
            request_id = %id,
            path = %method,
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        crate::telemetry::continue_call(&span, request.headers());
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut response = CURRENT
                .scope(id.clone(), call.instrument(span.clone()))
                .await?;
            // A call that fails at once answers with its status in the headers (trailers-only).
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
                .unwrap_or(0);
            span.record("rpc.grpc.status_code", code);
            if code != 0 {
                span.record("otel.status_code", "ERROR");
            }
            if let Ok(value) = http::HeaderValue::from_str(&id) {
                response.headers_mut().insert("x-request-id", value);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spawned_task_keeps_the_request_id() {
        let inner = CURRENT
            .scope("call-7".into(), async { spawn(async { current() }).await })
            .await
            .expect("task");
        assert_eq!(inner.as_deref(), Some("call-7"));
        assert_eq!(spawn(async { current() }).await.expect("task"), None);
    }

    #[test]
    fn only_plain_short_client_ids_are_kept() {
        let h = |s: &str| http::HeaderValue::from_str(s).expect("header");
        assert_eq!(from_client(Some(&h("job-42_a"))), Some("job-42_a".into()));
        assert_eq!(from_client(Some(&h("a b"))), None);
        assert_eq!(from_client(Some(&h(&"x".repeat(65)))), None);
        assert_eq!(from_client(Some(&h(""))), None);
        assert_eq!(from_client(None), None);
        assert_ne!(new_id(), new_id());
    }
}

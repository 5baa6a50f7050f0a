//! The gRPC adapters: thin services that authenticate, convert requests with the `alyx-proto`
//! conversions, call the domain (catalogue, ingest, auth, store) and convert back. The one
//! mapping from domain errors to status codes is `status`.

pub mod admin;
pub mod collab;
pub mod events;
pub mod jobs;
pub mod query;
pub mod request_id;
pub mod server;
pub mod spark;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Status};

use crate::auth::{Authenticator, Caller};
use crate::error::Error;
use crate::metrics::Metrics;

/// The status a domain error is reported with: one code per variant, the error's message.
pub fn status(e: Error) -> Status {
    let code = match &e {
        Error::NotFound(_) => Code::NotFound,
        Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::AlreadyExists(_) => Code::AlreadyExists,
        Error::Unauthenticated(_) => Code::Unauthenticated,
        Error::PermissionDenied(_) => Code::PermissionDenied,
        Error::Unavailable(_) => Code::Unavailable,
        Error::FailedPrecondition(_) => Code::FailedPrecondition,
        Error::ResourceExhausted(_) => Code::ResourceExhausted,
        Error::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => Code::Unavailable,
        Error::Database(_) => Code::Internal,
        Error::Store(e) => store_code(e),
        Error::Query(e) => query_code(e),
        Error::Analysis(alyx_analysis::Error::Invalid(_)) => Code::InvalidArgument,
        Error::Analysis(alyx_analysis::Error::NotFound(_)) => Code::NotFound,
        Error::Analysis(alyx_analysis::Error::Query(e)) => query_code(e),
        Error::Analysis(alyx_analysis::Error::Store(e)) => store_code(e),
        Error::Internal(_) => Code::Internal,
    };
    // What failed inside (SQL, file paths, the database's address, an engine's message with the
    // caller's data in it) goes to the log; the caller gets an id to quote that finds it there.
    let hidden = matches!(code, Code::Internal | Code::DataLoss)
        || matches!(e, Error::Database(_) | Error::Unavailable(_));
    if hidden {
        let id = request_id();
        tracing::error!(request_id = %id, code = ?code, error = %e, "error answering an RPC");
        let what = match code {
            Code::Unavailable => "a service alyxd needs is unavailable; try again shortly",
            Code::DataLoss => "stored data failed its integrity check; an operator has been told",
            _ => "alyxd failed to answer",
        };
        return Status::new(
            code,
            format!("{what} (request {id}; the server log has the details)"),
        );
    }
    Status::new(code, e.to_string())
}

/// The id of the call being answered (see `request_id.rs`), or a new one.
fn request_id() -> String {
    request_id::current().unwrap_or_else(request_id::new_id)
}

fn store_code(e: &alyx_store::Error) -> Code {
    use alyx_store::Error as E;
    match e {
        E::NoSuchEvent(_) | E::NotFound(_) => Code::NotFound,
        E::Invalid(_) => Code::InvalidArgument,
        E::Locked { .. } => Code::Unavailable,
        E::Corrupt { .. } => Code::DataLoss,
        E::Io { .. } | E::NotADataset { .. } | E::Manifest { .. } | E::Engine(_) => Code::Internal,
    }
}

fn query_code(e: &alyx_query::Error) -> Code {
    match e {
        alyx_query::Error::Invalid(_) => Code::InvalidArgument,
        alyx_query::Error::Store(e) => store_code(e),
        alyx_query::Error::Io { .. } | alyx_query::Error::Engine(_) => Code::Internal,
    }
}

/// The request's `authorization` metadata, kept for re-checking an open stream.
pub fn authorization<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What every service needs: the token check, the per-user limit on open calls and the RPC
/// latency histogram.
#[derive(Clone)]
pub struct Context {
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub calls: Arc<CallLimit>,
}

/// How often an open stream checks that its caller's token is still valid: a revoked or
/// expired token ends the stream within this (plus the token cache's few seconds).
pub const RECHECK: Duration = Duration::from_secs(2);

/// Queries and streams each user has open, and how many one user may have.
pub struct CallLimit {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

impl CallLimit {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open query or stream of a user: counted until dropped.
pub struct Admission {
    limit: Arc<CallLimit>,
    user: String,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.limit.lock();
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Context {
    /// Authenticates the request's bearer token.
    pub async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.auth
            .authenticate(authorization(request).as_deref())
            .await
            .map_err(status)
    }

    /// Counts one more open query or stream of `caller`, or RESOURCE_EXHAUSTED when the caller
    /// has as many as one user may (others are not slowed by one user's load).
    pub fn admit(&self, caller: &Caller) -> Result<Admission, Status> {
        let mut open = self.calls.lock();
        let n = open.entry(caller.name.clone()).or_default();
        if *n >= self.calls.limit {
            return Err(Status::resource_exhausted(format!(
                "user `{}` has {} queries and streams open, the most one user may; wait for one to finish",
                caller.name, n
            )));
        }
        *n += 1;
        Ok(Admission {
            limit: self.calls.clone(),
            user: caller.name.clone(),
        })
    }

    /// `stream` as the caller sees it: it holds `admission` while open, and ends with
    /// UNAUTHENTICATED once the token of `request` stops being valid (revoked, expired),
    /// checked every [`RECHECK`] and before each item after a wait. Dropping it (the client
    /// went away) drops `stream`, which stops whatever feeds it.
    pub fn until_revoked<T, S>(
        &self,
        authorization: Option<String>,
        admission: Admission,
        stream: S,
    ) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T, Status>> + Send + 'static,
    {
        let auth = self.auth.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        request_id::spawn(async move {
            let _admission = admission;
            let mut stream = std::pin::pin!(stream);
            let mut tick = tokio::time::interval(RECHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    biased;
                    _ = tx.closed() => return,
                    _ = tick.tick() => {
                        // Only a token found invalid ends the stream; a database hiccup
                        // during the check does not cut off every open stream.
                        match auth.authenticate(authorization.as_deref()).await {
                            Err(e @ Error::Unauthenticated(_)) => {
                                let _ = tx.send(Err(status(e))).await;
                                return;
                            }
                            Err(e) => tracing::warn!(error = %e, "could not re-check a stream's token"),
                            Ok(_) => {}
                        }
                    }
                    item = stream.next() => match item {
                        Some(item) => {
                            if tx.send(item).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    },
                }
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    /// Runs an RPC body of `service`'s `method`, recording its latency and status code under
    /// gRPC's conventional names (`grpc_service`, `grpc_method`, `grpc_code`).
    pub async fn observe<T>(
        &self,
        service: &str,
        method: &str,
        body: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let result = body.await;
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        self.metrics
            .rpc_seconds
            .with_label_values(&[service, method])
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .rpc_handled
            .with_label_values(&[service, method, code_name(code)])
            .inc();
        result
    }
}

/// A status code as gRPC spells it (`NOT_FOUND`), the label value every gRPC dashboard expects.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_message() {
        let cases = [
            (Error::NotFound("no dataset `x`".into()), Code::NotFound),
            (Error::InvalidArgument("bad".into()), Code::InvalidArgument),
            (Error::AlreadyExists("dup".into()), Code::AlreadyExists),
            (Error::Unauthenticated("who".into()), Code::Unauthenticated),
            (Error::PermissionDenied("no".into()), Code::PermissionDenied),
            (Error::Unavailable("down".into()), Code::Unavailable),
            (
                Error::FailedPrecondition("ended".into()),
                Code::FailedPrecondition,
            ),
            (
                Error::ResourceExhausted("full".into()),
                Code::ResourceExhausted,
            ),
            (
                Error::Store(alyx_store::Error::NoSuchEvent(7)),
                Code::NotFound,
            ),
            (
                Error::Database(sqlx::Error::PoolTimedOut),
                Code::Unavailable,
            ),
            (Error::Internal("bug".into()), Code::Internal),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            let hidden = matches!(
                error,
                Error::Internal(_) | Error::Database(_) | Error::Unavailable(_)
            );
            let s = status(error);
            assert_eq!(s.code(), code, "{message}");
            if hidden {
                assert!(!s.message().contains(&message), "{}", s.message());
                assert!(s.message().contains("request "), "{}", s.message());
            } else {
                assert_eq!(s.message(), message);
            }
        }
    }

    #[test]
    fn internals_never_reach_the_caller() {
        let leaks = [
            Error::Internal("postgres://alyx:secret@db/alyx".into()),
            Error::Database(sqlx::Error::Protocol(
                "invalid input syntax for type integer: \"postgres super=true\"".into(),
            )),
            Error::Store(alyx_store::Error::Corrupt {
                path: "/srv/alyx/data/pp/events/chunk-000001.parquet".into(),
                reason: "sha256 mismatch".into(),
            }),
        ];
        let mut ids = std::collections::HashSet::new();
        for e in leaks {
            let s = status(e);
            for secret in ["secret", "postgres", "/srv", "sha256"] {
                assert!(!s.message().contains(secret), "{}", s.message());
            }
            let id = s
                .message()
                .split("request ")
                .nth(1)
                .expect("an id")
                .to_owned();
            assert!(ids.insert(id), "ids are unique");
        }
    }
}

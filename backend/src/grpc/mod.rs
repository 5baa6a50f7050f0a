//! The gRPC adapters: thin services that authenticate, convert requests with the `alyx-proto`
//! conversions, call the domain (catalogue, ingest, auth, store) and convert back. The one
//! mapping from domain errors to status codes is `status`.

pub mod admin;
pub mod collab;
pub mod events;
pub mod jobs;
pub mod query;
pub mod server;
pub mod spark;

use std::sync::Arc;
use std::time::Instant;

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
    if code == Code::Internal {
        tracing::error!(error = %e, "internal error answering an RPC");
    }
    Status::new(code, e.to_string())
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

/// What every service needs: the token check and the RPC latency histogram.
#[derive(Clone)]
pub struct Context {
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// Authenticates the request's bearer token.
    pub async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.authenticate(header).await.map_err(status)
    }

    /// Runs an RPC body, recording its latency and status code.
    pub async fn observe<T>(
        &self,
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
            .with_label_values(&[method, &format!("{code:?}")])
            .observe(started.elapsed().as_secs_f64());
        result
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
            let s = status(error);
            assert_eq!(s.code(), code, "{message}");
            assert_eq!(s.message(), message);
        }
    }
}

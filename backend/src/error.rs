//! The backend's one error type. Each variant maps to exactly one gRPC status code
//! (`grpc::status`); messages are lowercase and say what was wrong.

/// What a backend operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request names something that does not exist (a dataset, an event, a user).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or out of range (a bad page token, an unknown role).
    #[error("{0}")]
    InvalidArgument(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// No valid bearer token came with the request.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow the call.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request cannot be served in the current state (cancelling a finished job).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A queue or quota is full; the message says how long to wait.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A service the backend needs (PostgreSQL, the broker) cannot be reached; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The event store (Parquet chunks) failed.
    #[error(transparent)]
    Store(#[from] alyx_store::Error),
    /// A query was invalid, or the engine under it failed.
    #[error(transparent)]
    Query(#[from] alyx_query::Error),
    /// A job's analysis or a notebook operation was invalid, or what it ran failed.
    #[error(transparent)]
    Analysis(#[from] alyx_analysis::Error),
    /// A task of the backend itself failed (a bug, or a panic in a worker).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Database(sqlx::Error::Migrate(Box::new(e)))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(format!("worker task failed: {e}"))
    }
}

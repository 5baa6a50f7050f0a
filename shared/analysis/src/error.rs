//! The error type of `alyx-analysis`: a job or notebook the caller asked for is invalid or
//! names something that does not exist, or the query or store under it failed.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job, cell, binning or notebook operation is invalid.
    #[error("{0}")]
    Invalid(String),

    /// A cell, version or histogram that does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The query under a job or cell failed.
    #[error(transparent)]
    Query(#[from] alyx_query::Error),

    /// The dataset under a job or cell failed.
    #[error(transparent)]
    Store(#[from] alyx_store::Error),
}

/// A bad binning or merge is the caller's mistake.
impl From<alyx_core::Error> for Error {
    fn from(e: alyx_core::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

impl From<polars::error::PolarsError> for Error {
    fn from(e: polars::error::PolarsError) -> Self {
        Self::Query(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

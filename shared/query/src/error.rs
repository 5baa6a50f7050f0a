//! The error type of `alyx-query`: a query or an output the caller asked for is invalid, or the
//! store or the engine under it failed. A query's own mistakes are `Diagnostic`s with places;
//! this type carries what remains.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written. The I/O error is part of the message
    /// and not also a `source`, so that a printed error chain says it once.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// A query, binning or output the caller asked for is invalid.
    #[error("{0}")]
    Invalid(String),

    /// The dataset under the query failed.
    #[error(transparent)]
    Store(#[from] alyx_store::Error),

    /// The columnar engine failed.
    #[error(transparent)]
    Engine(#[from] polars::error::PolarsError),
}

impl Error {
    pub fn io(path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// A bad binning or merge is the caller's mistake.
impl From<alyx_core::Error> for Error {
    fn from(e: alyx_core::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

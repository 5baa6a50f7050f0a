//! The error type of `alyx-core`: a geometry description that cannot be used, or a histogram
//! that cannot be made or merged. Messages are lowercase, say what was wrong and, where there is
//! one, what to do about it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read. The I/O error is part of the message and not also a `source`,
    /// so that a printed error chain says it once.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// The geometry description is malformed.
    #[error("{0}")]
    Geometry(String),

    /// A binning or a histogram merge the caller asked for is invalid.
    #[error("{0}")]
    Histogram(String),
}

impl Error {
    pub fn io(path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

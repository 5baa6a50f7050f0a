//! The error type of `alyx-import`. Messages are lowercase and name the file and what in it
//! could not be read.

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

    /// A named tree or branch does not exist in the file.
    #[error("{0}")]
    NotFound(String),

    /// The file's format is not supported (ZSTD baskets, RNTuple, a newer ROOT, unknown format).
    #[error("{0}")]
    Unsupported(String),

    /// The file is malformed.
    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },

    /// A user-supplied mapping is invalid.
    #[error("{0}")]
    Invalid(String),

    /// Whatever the caller did with a batch of imported events failed (writing it to a
    /// dataset); the import stopped there.
    #[error(transparent)]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub fn io(path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

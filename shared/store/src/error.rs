//! The error type of `alyx-store`. Messages are lowercase, say what was wrong and, where there
//! is one, what to do about it.

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

    /// A path that should hold a dataset or a data directory does not.
    #[error("{}: {reason}", path.display())]
    NotADataset { path: PathBuf, reason: String },

    /// A dataset's manifest is unreadable or inconsistent.
    #[error("{}: corrupt manifest: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },

    /// A data file's content does not match the checksum the manifest recorded for it.
    #[error("{}: {reason}; run `alyxctl verify` on the dataset and restore the file from a backup or re-import it", path.display())]
    Corrupt { path: PathBuf, reason: String },

    /// Another process holds the dataset's write lock.
    #[error("{}: the dataset is being written by another process (lock file present); wait for it or remove the stale lock", path.display())]
    Locked { path: PathBuf },

    /// No event with this id in the dataset.
    #[error("no event with id {0} in the dataset")]
    NoSuchEvent(u64),

    /// A named thing (dataset, table, column) does not exist.
    #[error("{0}")]
    NotFound(String),

    /// A dataset name, an append or a table's content is invalid.
    #[error("{0}")]
    Invalid(String),

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

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The desktop's error type: what a feature's background work can fail with, from its own
//! files or from the layer it called. Shown to the user as its message.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the user chose could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// What the user asked for cannot be done (a page size of 0, an unreadable screenshot).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] alyx_store::Error),
    #[error(transparent)]
    Import(#[from] alyx_import::Error),
    #[error(transparent)]
    Datasets(#[from] alyx_datasets::Error),
    #[error(transparent)]
    Query(#[from] alyx_query::Error),
    #[error(transparent)]
    Analysis(#[from] alyx_analysis::Error),
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

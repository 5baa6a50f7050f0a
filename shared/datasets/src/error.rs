//! The error type of `alyx-datasets`: the store or an importer failed.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory or the new dataset failed.
    #[error(transparent)]
    Store(#[from] alyx_store::Error),

    /// A file could not be imported.
    #[error(transparent)]
    Import(#[from] alyx_import::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

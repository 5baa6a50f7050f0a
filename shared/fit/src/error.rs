//! The fit crate's error.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model: {0}")]
    Model(String),
    #[error("histogram: {0}")]
    Data(String),
    #[error("fit: {0}")]
    Fit(String),
    #[error("figure: {0}")]
    Figure(String),
}

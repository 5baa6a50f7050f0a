//! What an import tells its caller.

use crate::mapping::Mapping;

/// What an import produced and what it could not use.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// Human-readable lines: which source fields went where.
    pub mapped: Vec<String>,
    /// Source fields left out, with the reason.
    pub skipped: Vec<String>,
    /// For a ROOT file: the branches read, as a mapping naming its tree (a starting point for
    /// a `--mapping` file).
    pub mapping: Option<Mapping>,
}

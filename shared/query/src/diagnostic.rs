//! Diagnostics as one error, for the CLI and the engines' callers.

use crate::error::Error;
pub use alyx_core::ast::Diagnostic;

/// Diagnostics as one error (for the CLI and the engines' callers).
pub fn invalid_query(diagnostics: &[Diagnostic]) -> Error {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    Error::Invalid(format!("invalid query: {}", lines.join("; ")))
}

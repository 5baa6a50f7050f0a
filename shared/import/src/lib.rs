//! The one way in for files written by others: ROOT TTrees (`root`), Phoenix event-display
//! JSON (`phoenix`) and CMS iSpy archives (`ispy`, `.ig`). Each importer turns a file into
//! `CollisionEvent`s and a short report of what it mapped and what it skipped; the caller
//! appends them to a dataset.

mod columns;
pub mod error;
pub mod ispy;
pub mod mapping;
pub mod phoenix;
pub mod report;
mod rntuple;
pub mod root;

use std::path::Path;

pub use crate::error::Error;
use crate::error::Result;
pub use crate::report::ImportReport;
use alyx_core::model::CollisionEvent;

/// The formats ALYX reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Root,
    PhoenixJson,
    /// A zip archive, read as CMS iSpy (`.ig`: one event document per member).
    Ispy,
}

/// Recognises a file by its first bytes (not its name).
pub fn detect_format(path: &Path) -> Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let n = file.read(&mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"root") {
        return Ok(Format::Root);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Format::PhoenixJson);
    }
    if head.starts_with(b"PK") {
        return Ok(Format::Ispy);
    }
    Err(Error::Unsupported(format!(
        "{}: not a ROOT file or Phoenix JSON, nor a CMS iSpy (.ig) zip archive (unrecognised \
         first bytes)",
        path.display()
    )))
}

/// Imports any supported file (ROOT: `tree` picks the TTree, `mapping` names the branches;
/// automatic when `None`).
pub fn import_file(
    path: &Path,
    tree: Option<&str>,
    mapping: Option<&root::Mapping>,
) -> Result<(Vec<CollisionEvent>, ImportReport)> {
    let mut events = Vec::new();
    let report = import_file_batches(path, tree, mapping, usize::MAX, &mut |batch| {
        events.extend(batch);
        Ok(())
    })?;
    Ok((events, report))
}

/// Imports any supported file, handing events to `sink` at most `batch` at a time (ROOT and
/// iSpy files are read a batch at a time; a Phoenix file is one JSON document, read whole).
pub fn import_file_batches(
    path: &Path,
    tree: Option<&str>,
    mapping: Option<&root::Mapping>,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    match detect_format(path)? {
        Format::Root => root::import_batches(path, tree, mapping, batch, sink),
        Format::Ispy => ispy::import_batches(path, batch, sink),
        Format::PhoenixJson => {
            let (events, report) = phoenix::import(path)?;
            for chunk in events.chunks(batch.max(1)) {
                sink(chunk.to_vec())?;
            }
            Ok(report)
        }
    }
}

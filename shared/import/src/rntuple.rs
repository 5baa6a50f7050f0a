//! RNTuple import: fields read by `alyx-rootio`, mapped into the event model by the same
//! automatic or TOML mapping as TTree branches. Fields are presented under the type names the
//! TTree mapping knows — `std::uint32_t` as `uint32_t`, `ROOT::VecOps::RVec<float>` as
//! `vector<float>` — so NanoAOD's `nMuon`, `Muon_pt`... map as they do from a TTree.

use std::collections::BTreeMap;
use std::path::Path;

use alyx_rootio::{Entry, FieldReader, RNTuple, Shape, Value};

use crate::columns::{Values, build_event, describe};
use crate::error::{Error, Result};
use crate::mapping::Mapping;
use crate::report::ImportReport;
use alyx_core::model::CollisionEvent;

fn error(e: alyx_rootio::Error) -> Error {
    match e {
        alyx_rootio::Error::Io { path, source } => Error::io(&path, source),
        alyx_rootio::Error::Malformed { path, what } => Error::malformed(&path, what),
        alyx_rootio::Error::Unsupported { path, what } => {
            Error::Unsupported(format!("{}: {what}", path.display()))
        }
        alyx_rootio::Error::NotFound { path, what } => {
            Error::NotFound(format!("{}: {what}", path.display()))
        }
    }
}

/// The TTree spelling of an RNTuple number type.
fn tree_type(ty: &str) -> String {
    ty.strip_prefix("std::").unwrap_or(ty).to_owned()
}

fn wide(ty: &str) -> bool {
    matches!(ty, "std::int64_t" | "std::uint64_t")
}

/// Imports the RNTuple `name` (the only one when `None`), `batch` entries at a time.
pub(crate) fn import_batches(
    path: &Path,
    name: Option<&str>,
    mapping: Option<&Mapping>,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    let mut ntuple = RNTuple::open(path, name).map_err(error)?;
    let fields = ntuple.fields();
    let mut report = ImportReport::default();
    let mut types = Vec::new();
    for f in &fields {
        match &f.shape {
            Shape::Number(t) => types.push((f.name.clone(), tree_type(t))),
            Shape::List(t) => types.push((f.name.clone(), format!("vector<{}>", tree_type(t)))),
            Shape::Unsupported(why) => report.skipped.push(format!("{} : {why}", f.name)),
        }
    }
    let auto;
    let mapping = match mapping {
        Some(m) => m,
        None => {
            auto = Mapping::automatic(&types);
            &auto
        }
    };
    let used = mapping.branches();
    let mut readers: BTreeMap<&str, (FieldReader, bool)> = BTreeMap::new();
    for name in &used {
        let Some(field) = fields.iter().find(|f| f.name == *name) else {
            return Err(Error::NotFound(format!(
                "{}: RNTuple `{}` has no field `{name}` (named in the mapping)",
                path.display(),
                ntuple.name()
            )));
        };
        if let Shape::Unsupported(why) = &field.shape {
            return Err(Error::Unsupported(format!("{}: {why}", path.display())));
        }
        let wide = matches!(&field.shape, Shape::Number(t) if wide(t));
        readers.insert(name, (ntuple.reader(name).map_err(error)?, wide));
    }
    if readers.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: RNTuple `{}` has no field ALYX can map; name its fields in a --mapping file",
            path.display(),
            ntuple.name()
        )));
    }
    for (name, ty) in &types {
        if !used.contains(name.as_str()) {
            report.skipped.push(format!(
                "{name} ({ty}): no ALYX field; name it in a --mapping file to import it"
            ));
        }
    }
    describe(mapping, &types, &mut report);
    report.mapping = Some(Mapping {
        tree: Some(ntuple.name().to_owned()),
        ..mapping.clone()
    });

    let entries = usize::try_from(ntuple.entries()).unwrap_or(usize::MAX);
    let batch = batch.max(1);
    let mut first = 0;
    while first < entries {
        let n = batch.min(entries - first);
        let mut values: BTreeMap<&str, Values> = BTreeMap::new();
        for (name, (reader, wide)) in &mut readers {
            values.insert(name, take(&mut ntuple, reader, n, *wide).map_err(error)?);
        }
        let events = (0..n)
            .map(|i| build_event(path, mapping, &values, i, (first + i) as u64))
            .collect::<Result<_>>()?;
        sink(events)?;
        first += n;
    }
    Ok(report)
}

/// The next `n` entries of a field as the mapping's values.
fn take(
    ntuple: &mut RNTuple,
    reader: &mut FieldReader,
    n: usize,
    wide: bool,
) -> alyx_rootio::Result<Values> {
    let mut scalars = Vec::new();
    let mut integers = Vec::new();
    let mut lists = Vec::new();
    for _ in 0..n {
        // The reader stops at the RNTuple's entry count, which bounds `n`.
        let Some(entry) = reader.next_entry(ntuple)? else {
            break;
        };
        match entry {
            Entry::One(v) if wide => integers.push(v.as_i128().unwrap_or_default()),
            Entry::One(v) => scalars.push(v.as_f64()),
            Entry::Many(items) => lists.push(items.into_iter().map(Value::as_f64).collect()),
        }
    }
    Ok(if !lists.is_empty() {
        Values::Jagged(lists)
    } else if wide {
        Values::Wide(integers)
    } else {
        Values::Scalar(scalars)
    })
}

//! ROOT TTree import through the `oxyroot` crate (RNTuples go to `crate::rntuple`).
//!
//! Branches map into the event model automatically where their names follow the common
//! conventions — `Muon_Px`/`Muon_pt`... jagged collections (CMS NanoAOD and similar), `MET_px`,
//! `Run`/`Event`, `EventWeight`, `trigger*`/`HLT_*` booleans, and flat numbered objects such as
//! `px1`, `eta2`, `Q1` (taken as muons) — or through an explicit [`Mapping`] (a TOML file).
//! Values are copied unchanged (f32 widened to f64 exactly, 64-bit header integers kept
//! exact); quantities the file lacks are derived when the others determine them, else left
//! unmeasured (NaN / null).
//!
//! A C array (`Jet_pt[nJet]`) is split into events by its counter branch (`nJet`, or `NJet`,
//! or the mapping's `count`), as ROOT and uproot split it: oxyroot's own per-entry slices of
//! such a branch are not trusted, because it puts every value of a basket it holds in memory
//! (ROOT's last, unflushed basket) into that basket's first entry.
//!
//! oxyroot panics on what it cannot read (RNTuple anchors, unexpected streamers),
//! so unsupported features are detected from the file header before it is opened, and every
//! call into it runs under `catch_unwind`: a bad file is an error, never a crash.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use oxyroot::{Named, RootFile, Slice};

use crate::columns::{Values, build_event, describe};
use crate::error::{Error, Result};
pub use crate::mapping::{EventMapping, Mapping, ObjectMapping};
use crate::report::ImportReport;
use alyx_core::model::CollisionEvent;

/// A branch being read lazily, basket by basket.
enum Column<'a> {
    Scalar(Box<dyn Iterator<Item = f64> + 'a>),
    Wide(Box<dyn Iterator<Item = i128> + 'a>),
    /// A list per entry, delimited by the file (`std::vector`, or a C array without a counter).
    Jagged(Box<dyn Iterator<Item = Vec<f64>> + 'a>),
    /// A C array sized by a counter branch: its values in order, split into entries by the
    /// counter's values (as ROOT and uproot do), not by the reader's per-entry slices.
    Counted(Box<dyn Iterator<Item = f64> + 'a>),
}

impl Column<'_> {
    /// The next `n` entries (fewer if the branch ends) of a branch read entry by entry.
    fn take(&mut self, n: usize) -> Option<Values> {
        Some(match self {
            Column::Scalar(it) => Values::Scalar(it.by_ref().take(n).collect()),
            Column::Wide(it) => Values::Wide(it.by_ref().take(n).collect()),
            Column::Jagged(it) => Values::Jagged(it.by_ref().take(n).collect()),
            Column::Counted(_) => return None,
        })
    }
}

/// The most objects one entry's counter may announce: far above any real collection (NanoAOD's
/// largest hold a few hundred), low enough that a corrupt counter is caught, not believed.
const MAX_OBJECTS_PER_ENTRY: i128 = 1 << 20;

/// Splits the next values of a counted branch into the entries of this batch, `counts[i]`
/// values for entry `first + i`.
fn split_counted(
    path: &Path,
    (name, counter): (&str, &str),
    values: &mut dyn Iterator<Item = f64>,
    counts: &Values,
    first: usize,
) -> Result<Values> {
    let mut lists = Vec::with_capacity(counts.len());
    for i in 0..counts.len() {
        let entry = first + i;
        let count = counts
            .integer(i)
            .filter(|c| (0..=MAX_OBJECTS_PER_ENTRY).contains(c))
            .ok_or_else(|| {
                Error::malformed(
                    path,
                    format!(
                        "entry {entry}: counter `{counter}` is {}, not a count of objects",
                        counts.number(i).unwrap_or(f64::NAN)
                    ),
                )
            })?;
        // The bound above makes the count fit any usize.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let list: Vec<f64> = values.take(count).collect();
        if list.len() != count {
            return Err(Error::malformed(
                path,
                format!(
                    "entry {entry}: `{counter}` says {count} values of `{name}`, the branch has only {} left",
                    list.len()
                ),
            ));
        }
        lists.push(list);
    }
    Ok(Values::Jagged(lists))
}

/// Reads the file header's compression setting without oxyroot, checking the magic.
fn header_compression(path: &Path, bytes: &[u8]) -> Result<i32> {
    let be_i32 = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if !bytes.starts_with(b"root") {
        return Err(Error::malformed(path, "not a ROOT file (no `root` magic)"));
    }
    let version = be_i32(4).ok_or_else(|| Error::malformed(path, "truncated ROOT header"))?;
    // Large files (version ≥ 1 000 000) store 64-bit seek pointers.
    let at = if version >= 1_000_000 { 41 } else { 33 };
    be_i32(at).ok_or_else(|| Error::malformed(path, "truncated ROOT header"))
}

/// The first and last 4 MiB of a file (the whole file when it is smaller), without reading
/// the middle of a multi-GB file.
fn head_and_tail(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    const SPAN: u64 = 4 << 20;
    let io = |e| Error::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut head = Vec::new();
    (&mut file).take(SPAN).read_to_end(&mut head).map_err(io)?;
    let mut tail = Vec::new();
    if len > SPAN {
        file.seek(SeekFrom::Start(len.saturating_sub(SPAN).max(SPAN)))
            .map_err(io)?;
        file.read_to_end(&mut tail).map_err(io)?;
    }
    Ok((head, tail))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown failure".into())
}

/// Runs `f` (which calls into oxyroot), turning a panic into an error about `what`.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(Error::Unsupported(format!(
            "{}: the ROOT reader cannot read {what}: {} (a compression codec or streamer it does not support)",
            path.display(),
            panic_message(payload)
        )))
    })
}

/// Imports every entry of a TTree at once (see `import_batches` for large files).
pub fn import(
    path: &Path,
    tree: Option<&str>,
    mapping: Option<&Mapping>,
) -> Result<(Vec<CollisionEvent>, ImportReport)> {
    let mut events = Vec::new();
    let report = import_batches(path, tree, mapping, usize::MAX, &mut |batch| {
        events.extend(batch);
        Ok(())
    })?;
    Ok((events, report))
}

/// Imports a TTree `batch` entries at a time, handing each batch to `sink`: memory stays
/// bounded by the batch, however large the file.
pub fn import_batches(
    path: &Path,
    tree: Option<&str>,
    mapping: Option<&Mapping>,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    let (head, tail) = head_and_tail(path)?;
    header_compression(path, &head)?;
    // Key headers are never compressed; the keys list sits near the end of the file.
    let is_rntuple = [&head, &tail]
        .iter()
        .any(|b| contains(b, b"ROOT::RNTuple") || contains(b, b"ROOT::Experimental::RNTuple"));
    if is_rntuple {
        let keys = alyx_rootio::keys(path).map_err(|e| Error::malformed(path, e.to_string()))?;
        let anchor = |class: &str| class.starts_with("ROOT::") && class.ends_with("RNTuple");
        let wanted = tree.or(mapping.and_then(|m| m.tree.as_deref()));
        let read_rntuple = match wanted {
            Some(name) => keys.iter().any(|k| k.name == name && anchor(&k.class)),
            None => !keys.iter().any(|k| k.class == "TTree"),
        };
        if read_rntuple {
            return crate::rntuple::import_batches(path, wanted, mapping, batch, sink);
        }
    }
    guarded(path, "the file", || {
        import_tree(path, tree, mapping, batch.max(1), sink)
    })
}

fn import_tree(
    path: &Path,
    tree: Option<&str>,
    mapping: Option<&Mapping>,
    batch: usize,
    sink: &mut dyn FnMut(Vec<CollisionEvent>) -> Result<()>,
) -> Result<ImportReport> {
    let mut file = RootFile::open(path).map_err(|e| {
        let e = e.to_string();
        if e.contains("VersionTooHigh") {
            // ROOT 6.36 and later write TStreamerInfo version 10, which oxyroot predates.
            Error::Unsupported(format!(
                "{}: written by a newer ROOT than the ROOT reader knows ({e}); rewrite it with \
                 ROOT 6.34 or older, or with uproot",
                path.display()
            ))
        } else {
            Error::malformed(path, format!("cannot open: {e}"))
        }
    })?;
    let keys: Vec<(String, String)> = file
        .keys()
        .iter()
        .map(|k| (k.name().to_owned(), k.class_name().to_owned()))
        .collect();
    let wanted = tree.or(mapping.and_then(|m| m.tree.as_deref()));
    let tree_name = match wanted {
        Some(name) => {
            let Some((_, class)) = keys.iter().find(|(n, _)| n == name) else {
                let names: Vec<_> = keys.iter().map(|(n, c)| format!("{n} ({c})")).collect();
                return Err(Error::NotFound(format!(
                    "{}: no object `{name}`; the file holds: {}",
                    path.display(),
                    names.join(", ")
                )));
            };
            if class != "TTree" {
                return Err(Error::Unsupported(format!(
                    "{}: `{name}` is a {class}, not a TTree; ALYX imports TTrees only",
                    path.display()
                )));
            }
            name.to_owned()
        }
        None => {
            let trees: Vec<&String> = keys
                .iter()
                .filter(|(_, c)| c == "TTree")
                .map(|(n, _)| n)
                .collect();
            match trees.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(Error::NotFound(format!(
                        "{}: holds no TTree",
                        path.display()
                    )));
                }
                many => {
                    let preferred = many
                        .iter()
                        .find(|n| ["events", "Events", "tree"].contains(&n.as_str()));
                    match preferred {
                        Some(n) => (*n).clone(),
                        None => {
                            let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                            return Err(Error::Invalid(format!(
                                "{}: several TTrees ({}); pick one with --tree NAME",
                                path.display(),
                                list.join(", ")
                            )));
                        }
                    }
                }
            }
        }
    };
    let tree = file
        .get_tree(&tree_name)
        .map_err(|e| Error::malformed(path, format!("cannot read tree `{tree_name}`: {e}")))?;
    let entries = usize::try_from(tree.entries()).unwrap_or(0);
    let branch_types: Vec<(String, String)> = tree
        .branches()
        .map(|b| (b.name().to_owned(), b.item_type_name()))
        .collect();
    let auto;
    let mapping = match mapping {
        Some(m) => m,
        None => {
            auto = Mapping::automatic(&branch_types);
            &auto
        }
    };

    let mut report = ImportReport::default();
    let used = mapping.branches();
    let counters = mapping.counters();
    let mut columns: BTreeMap<&str, Column> = BTreeMap::new();
    for name in &used {
        let Some(branch) = tree.branch(name) else {
            return Err(Error::NotFound(format!(
                "{}: tree `{tree_name}` has no branch `{name}` (named in the mapping)",
                path.display()
            )));
        };
        let counted = counters.contains_key(name);
        columns.insert(
            name,
            open_branch(path, branch, &branch.item_type_name(), counted)?,
        );
    }
    if columns.is_empty() {
        // Nothing would bound the entry count the header claims but the branches' own ends.
        return Err(Error::Invalid(format!(
            "{}: tree `{tree_name}` has no branch ALYX can map; name its branches in a --mapping file",
            path.display()
        )));
    }
    for counter in counters.values() {
        if matches!(
            columns.get(counter),
            Some(Column::Jagged(_) | Column::Counted(_))
        ) {
            return Err(Error::Invalid(format!(
                "{}: counter `{counter}` is an array branch, not a count per entry",
                path.display()
            )));
        }
    }
    for (name, ty) in &branch_types {
        if !used.contains(name.as_str()) {
            report.skipped.push(format!(
                "{name} ({ty}): no ALYX field; name it in a --mapping file to import it"
            ));
        }
    }
    describe(mapping, &branch_types, &mut report);
    report.mapping = Some(Mapping {
        tree: Some(tree_name.clone()),
        ..mapping.clone()
    });

    let mut first = 0;
    while first < entries {
        let n = batch.min(entries - first);
        let mut values: BTreeMap<&str, Values> = BTreeMap::new();
        // Branches read entry by entry first: the counters are among them.
        for (name, column) in &mut columns {
            let Some(v) = column.take(n) else { continue };
            if v.len() != n {
                return Err(Error::malformed(
                    path,
                    format!(
                        "branch `{name}` ends after {} entries, the tree has {entries}",
                        first + v.len()
                    ),
                ));
            }
            values.insert(name, v);
        }
        for (name, column) in &mut columns {
            let Column::Counted(it) = column else {
                continue;
            };
            let counter = counters.get(name).copied().unwrap_or_default();
            let Some(counts) = values.get(counter) else {
                continue;
            };
            let lists = split_counted(path, (name, counter), it, counts, first)?;
            values.insert(name, lists);
        }
        let events = (0..n)
            .map(|i| build_event(path, mapping, &values, i, (first + i) as u64))
            .collect::<Result<_>>()?;
        sink(events)?;
        first += n;
    }
    for (name, column) in &mut columns {
        if let Column::Counted(it) = column
            && it.next().is_some()
        {
            return Err(Error::malformed(
                path,
                format!(
                    "branch `{name}` holds more values than its counter `{}` announces",
                    counters.get(name).copied().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(report)
}

fn open_branch<'a>(
    path: &Path,
    branch: &'a oxyroot::Branch,
    ty: &str,
    counted: bool,
) -> Result<Column<'a>> {
    fn scalar<'a, T: oxyroot::UnmarshalerInto<Item = T> + Into<f64> + 'a>(
        b: &'a oxyroot::Branch,
    ) -> oxyroot::Result<Column<'a>> {
        Ok(Column::Scalar(Box::new(b.as_iter::<T>()?.map(Into::into))))
    }
    fn sliced<'a, T>(b: &'a oxyroot::Branch, counted: bool) -> oxyroot::Result<Column<'a>>
    where
        T: oxyroot::UnmarshalerInto<Item = T> + Into<f64> + std::fmt::Debug + 'a,
        Slice<T>: oxyroot::UnmarshalerInto<Item = Slice<T>>,
    {
        let slices = b.as_iter::<Slice<T>>()?;
        Ok(if counted {
            Column::Counted(Box::new(
                slices.flat_map(|s| s.into_vec().into_iter().map(Into::into)),
            ))
        } else {
            Column::Jagged(Box::new(
                slices.map(|s| s.into_vec().into_iter().map(Into::into).collect()),
            ))
        })
    }
    fn vector<'a, T>(b: &'a oxyroot::Branch) -> oxyroot::Result<Column<'a>>
    where
        T: Into<f64> + 'a,
        Vec<T>: oxyroot::UnmarshalerInto<Item = Vec<T>>,
    {
        Ok(Column::Jagged(Box::new(
            b.as_iter::<Vec<T>>()?
                .map(|v| v.into_iter().map(Into::into).collect()),
        )))
    }
    let result = match ty {
        "float" => scalar::<f32>(branch),
        "double" => scalar::<f64>(branch),
        "int32_t" => scalar::<i32>(branch),
        "uint32_t" => scalar::<u32>(branch),
        "int16_t" => scalar::<i16>(branch),
        "uint16_t" => scalar::<u16>(branch),
        "int8_t" => scalar::<i8>(branch),
        "uint8_t" => scalar::<u8>(branch),
        "int64_t" => branch
            .as_iter::<i64>()
            .map(|it| Column::Wide(Box::new(it.map(i128::from)))),
        "uint64_t" => branch
            .as_iter::<u64>()
            .map(|it| Column::Wide(Box::new(it.map(i128::from)))),
        "bool" => branch
            .as_iter::<bool>()
            .map(|it| Column::Scalar(Box::new(it.map(|v| if v { 1.0 } else { 0.0 })))),
        "float[]" => sliced::<f32>(branch, counted),
        "double[]" => sliced::<f64>(branch, counted),
        "int32_t[]" => sliced::<i32>(branch, counted),
        "uint32_t[]" => sliced::<u32>(branch, counted),
        "int16_t[]" => sliced::<i16>(branch, counted),
        "vector<float>" => vector::<f32>(branch),
        "vector<double>" => vector::<f64>(branch),
        "vector<int32_t>" => vector::<i32>(branch),
        other => {
            return Err(Error::Unsupported(format!(
                "{}: branch `{}` has type `{other}`, which ALYX cannot map to a number",
                path.display(),
                branch.name()
            )));
        }
    };
    result.map_err(|e| Error::malformed(path, format!("branch `{}`: {e}", branch.name())))
}

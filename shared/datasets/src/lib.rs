//! Making datasets: from the generator (in parallel, appended chunk by chunk), from real files
//! (through the importers), and the demo data the embedded default starts with.

pub mod error;

use std::path::{Path, PathBuf};

pub use crate::error::{Error, Result};
use alyx_core::geometry::DetectorGeometry;
use alyx_core::model::CollisionSystem;
use alyx_import::{self as import, ImportReport, root::Mapping};
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};
use alyx_store::{DataStore, Dataset};

/// Events per chunk: about a million hits, so a chunk stays a few tens of MB in memory.
pub fn chunk_events(config: &GeneratorConfig) -> u64 {
    match (config.system, config.centrality) {
        (CollisionSystem::PbPb, Centrality::Central) => 2,
        (CollisionSystem::PbPb, Centrality::MinimumBias) => 10,
        (CollisionSystem::PbPb, Centrality::Peripheral) => 200,
        _ => 2_000,
    }
}

/// Generates `n_events` into a new dataset `name`, calling `progress(done)` after each chunk.
pub fn generate(
    store: &DataStore,
    name: &str,
    config: GeneratorConfig,
    n_events: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Dataset> {
    let source = format!(
        "alyx generator: system={} centrality={:?} seed={} rates={:?}",
        config.system.as_str(),
        config.centrality,
        config.seed,
        config.rates
    );
    let per_chunk = chunk_events(&config);
    let generator = EventGenerator::new(config, DetectorGeometry::alice_barrel());
    let mut dataset = store.create_dataset(name, &source)?;
    let mut done = 0;
    while done < n_events {
        let n = per_chunk.min(n_events - done);
        let events = generator.events(done..done + n);
        dataset.append(&events)?;
        done += n;
        progress(done);
    }
    Ok(dataset)
}

/// Generates `n_events` NanoAOD-like events (`nano`) into a new dataset `name`, in chunks of
/// 100,000 events.
pub fn generate_nano(
    store: &DataStore,
    name: &str,
    config: alyx_sim::nano::NanoConfig,
    n_events: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Dataset> {
    let source = format!("alyx nanoaod-like generator: seed={}", config.seed);
    let mut dataset = store.create_dataset(name, &source)?;
    let mut done = 0;
    while done < n_events {
        let n = 100_000.min(n_events - done);
        dataset.append(&alyx_sim::nano::events(&config, done..done + n))?;
        done += n;
        progress(done);
    }
    Ok(dataset)
}

/// Entries per chunk when importing: bounds memory for files of any size.
pub const IMPORT_BATCH: usize = 100_000;

/// Imports `files` into a new dataset `name`, in chunks of at most `IMPORT_BATCH` events,
/// calling `progress(file)` as each file starts. If any file fails, the new dataset is removed:
/// nothing half-made is left behind, and nothing that existed is touched.
pub fn import_files(
    store: &DataStore,
    name: &str,
    files: &[PathBuf],
    tree: Option<&str>,
    mapping: Option<&Mapping>,
    progress: &mut dyn FnMut(&Path),
) -> Result<(Dataset, Vec<ImportReport>)> {
    // Catch what can be caught before creating anything.
    for file in files {
        import::detect_format(file)?;
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut dataset = store.create_dataset(name, &format!("imported from {}", names.join(", ")))?;
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        progress(file);
        let result =
            import::import_file_batches(file, tree, mapping, IMPORT_BATCH, &mut |events| {
                dataset
                    .append(&events)
                    .map(|_| ())
                    .map_err(|e| alyx_import::Error::Sink(Box::new(e)))
            });
        match result {
            Ok(report) => reports.push(report),
            Err(e) => {
                let _ = std::fs::remove_dir_all(dataset.dir());
                return Err(match e {
                    alyx_import::Error::Sink(sink) => match sink.downcast::<alyx_store::Error>() {
                        Ok(store) => Error::Store(*store),
                        Err(other) => Error::Import(alyx_import::Error::Sink(other)),
                    },
                    e => Error::Import(e),
                });
            }
        }
    }
    Ok((dataset, reports))
}

/// A dataset name from a file name (`uproot-HZZ.root` → `uproot-HZZ`), one that
/// [`alyx_store::check_name`] accepts.
pub fn name_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned());
    alyx_store::name_from(&stem.replace('.', "_"))
}

pub const DEMO_PP: &str = "demo-pp";
pub const DEMO_PBPB: &str = "demo-pbpb";

/// The embedded default's demo data, generated on first use: 500 pp events with resonances
/// and 3 central Pb–Pb events.
pub fn ensure_demo(
    store: &DataStore,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Vec<Dataset>> {
    let specs = [
        (DEMO_PP, GeneratorConfig::pp(2026), 500),
        (
            DEMO_PBPB,
            GeneratorConfig::pbpb(2026, Centrality::Central),
            3,
        ),
    ];
    let mut out = Vec::new();
    for (name, config, n) in specs {
        let existing = store.dataset(name);
        let dataset = match existing {
            Ok(d) => d,
            Err(alyx_store::Error::NotADataset { .. }) => {
                generate(store, name, config, n, &mut |done| progress(name, done, n))?
            }
            Err(e) => return Err(e.into()),
        };
        out.push(dataset);
    }
    Ok(out)
}

//! The columnar event store: a data directory of datasets, each a set of Parquet chunks (one
//! file per table per chunk, see `tables`) described by a `manifest.json`.
//!
//! ```text
//! DATA_DIR/
//!   <dataset>/manifest.json          schema version, chunks, per-file SHA-256, counts, ranges
//!   <dataset>/<table>/chunk-000001.parquet
//! ```
//!
//! Writes are atomic: chunk files are written under temporary names, synced and renamed, and
//! only then is the manifest replaced (write, sync, rename). A crash at any point leaves the
//! previous manifest — and so the previous dataset — intact; files it does not list are ignored
//! and reported by `verify`. Reads check each file's SHA-256 against the manifest (once per
//! process while the file's size and mtime are unchanged), so a truncated or altered file is
//! reported as corrupt, never read as data.

pub mod error;
pub mod tables;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::error::Error;
pub use crate::error::Result;
use alyx_core::model::CollisionEvent;
pub use tables::Table;

/// Version of the table layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const LOCK: &str = ".lock";
/// Rows per Parquet row group: small enough that reading one event skips most of a chunk,
/// large enough to compress well.
const ROW_GROUP_ROWS: usize = 128 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schema_version: u32,
    pub name: String,
    /// Where the events came from (generator settings, imported file names).
    pub source: String,
    pub created_ns: i64,
    pub next_event_id: u64,
    pub chunks: Vec<Chunk>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    pub id: u32,
    pub first_event_id: u64,
    pub event_count: u64,
    pub run_min: u32,
    pub run_max: u32,
    pub time_min_ns: i64,
    pub time_max_ns: i64,
    /// Events that broke a validation rule (kept, with reasons in `events.flags`).
    pub flagged_events: u64,
    pub files: BTreeMap<String, FileEntry>,
    /// Where the chunk's events came from, when a writer records it (alyxd: the Kafka topic,
    /// partition and offsets), so that it can find chunks it wrote but never committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Relative to the dataset directory.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
}

impl Manifest {
    pub fn event_count(&self) -> u64 {
        self.chunks.iter().map(|c| c.event_count).sum()
    }

    pub fn flagged_count(&self) -> u64 {
        self.chunks.iter().map(|c| c.flagged_events).sum()
    }

    pub fn rows(&self, table: Table) -> u64 {
        self.chunks
            .iter()
            .filter_map(|c| c.files.get(table.name()))
            .map(|f| f.rows)
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.chunks
            .iter()
            .flat_map(|c| c.files.values())
            .map(|f| f.bytes)
            .sum()
    }

    pub fn run_range(&self) -> Option<(u32, u32)> {
        let min = self.chunks.iter().map(|c| c.run_min).min()?;
        let max = self.chunks.iter().map(|c| c.run_max).max()?;
        Some((min, max))
    }

    pub fn time_range_ns(&self) -> Option<(i64, i64)> {
        let min = self.chunks.iter().map(|c| c.time_min_ns).min()?;
        let max = self.chunks.iter().map(|c| c.time_max_ns).max()?;
        Some((min, max))
    }
}

/// A data directory holding datasets.
#[derive(Clone, Debug)]
pub struct DataStore {
    root: PathBuf,
}

impl DataStore {
    /// Opens (creating if needed) the data directory at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Names of the datasets in the directory, sorted.
    pub fn dataset_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            if entry.path().join(MANIFEST).is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The dataset called `name`, a name [`check_name`] accepts: never a path, so that no
    /// caller can open a directory outside the data directory.
    pub fn dataset(&self, name: &str) -> Result<Dataset> {
        check_name(name)?;
        Dataset::open(self.root.join(name))
    }

    /// Creates an empty dataset; fails if one of that name exists.
    pub fn create_dataset(&self, name: &str, source: &str) -> Result<Dataset> {
        check_name(name)?;
        let dir = self.root.join(name);
        if dir.join(MANIFEST).exists() {
            return Err(Error::Invalid(format!(
                "dataset `{name}` already exists in {}; choose another --name or remove it",
                self.root.display()
            )));
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            name: name.to_owned(),
            source: source.to_owned(),
            created_ns: now_ns(),
            next_event_id: 0,
            chunks: Vec::new(),
        };
        // Create-if-absent in one step (a hard link fails if the name exists), so that two
        // processes creating the same dataset cannot replace each other's manifest.
        let path = dir.join(MANIFEST);
        let tmp = path.with_extension(format!("new-{}", std::process::id()));
        write_atomically(&tmp, &manifest_bytes(&manifest)?)?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Dataset { dir, manifest }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Invalid(
                format!("dataset `{name}` already exists in {}", self.root.display()),
            )),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

/// The longest dataset name, in bytes.
pub const MAX_NAME: usize = 200;

/// Checks that `name` can name a dataset: 1 to [`MAX_NAME`] bytes of ASCII letters, digits, `-`,
/// `_` and `.`, not starting with `.` or `-`. A name is one directory below the data
/// directory, never a path (`..`, `/etc`, `a/b`) nor a hidden file.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(40).collect();
        Err(Error::Invalid(format!(
            "invalid dataset name `{}`: use 1 to {MAX_NAME} letters, digits, `-`, `_` and `.`, not starting with `.` or `-`",
            shown.escape_debug()
        )))
    }
}

/// A dataset name made from `stem` (a file name, say): characters a name may not hold become
/// `_`, and it is cut to [`MAX_NAME`] bytes.
pub fn name_from(stem: &str) -> String {
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    while name.starts_with(['.', '-']) {
        name.replace_range(..1, "_");
    }
    if name.is_empty() {
        name.push_str("dataset");
    }
    name
}

/// Checks that a manifest's file path stays inside its dataset: relative, and made of plain
/// names only (no `..`, no root, no prefix).
fn check_relative(manifest: &Path, rel: &str) -> Result<()> {
    use std::path::Component;
    let path = Path::new(rel);
    let inside = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if inside {
        Ok(())
    } else {
        Err(Error::Manifest {
            path: manifest.into(),
            reason: format!(
                "file path `{}` leaves the dataset directory",
                rel.escape_debug()
            ),
        })
    }
}

/// One dataset: its directory and manifest.
#[derive(Clone, Debug)]
pub struct Dataset {
    dir: PathBuf,
    manifest: Manifest,
}

/// Where a `verify` found something wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub path: PathBuf,
    pub what: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    pub files_checked: usize,
    pub bytes_checked: u64,
    /// Missing, truncated or altered files: the dataset is damaged.
    pub problems: Vec<Problem>,
    /// Files the manifest does not list (left by an interrupted write): harmless.
    pub unreferenced: Vec<PathBuf>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Dataset {
    /// Opens the dataset in `dir` (a directory holding `manifest.json`).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let path = dir.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotADataset {
                    path: dir,
                    reason: "no manifest.json: not an ALYX dataset".into(),
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(Error::Manifest {
                path,
                reason: format!(
                    "schema version {} but this ALYX reads version {SCHEMA_VERSION}",
                    manifest.schema_version
                ),
            });
        }
        // Every path read, written or removed later is one of these: checked once, here.
        for chunk in &manifest.chunks {
            for entry in chunk.files.values() {
                check_relative(&path, &entry.path)?;
            }
        }
        Ok(Self { dir, manifest })
    }

    /// Opens `path` as a dataset, or as a data directory holding exactly one dataset (or the
    /// one called `name`).
    pub fn resolve(path: &Path, name: Option<&str>) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotADataset {
                path: path.into(),
                reason: "no such file or directory".into(),
            });
        }
        if let Some(name) = name {
            return DataStore {
                root: path.to_path_buf(),
            }
            .dataset(name);
        }
        if path.join(MANIFEST).is_file() {
            return Self::open(path);
        }
        let store = DataStore {
            root: path.to_path_buf(),
        };
        match store.dataset_names()?.as_slice() {
            [one] => store.dataset(one),
            [] => Err(Error::NotADataset {
                path: path.into(),
                reason: "holds no dataset".into(),
            }),
            many => Err(Error::Invalid(format!(
                "{} holds several datasets ({}); pick one with --dataset NAME",
                path.display(),
                many.join(", ")
            ))),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Appends `events` as one new chunk, assigning them the next event ids. Atomic: on any
    /// error (or a crash) the dataset is as it was before.
    pub fn append(&mut self, events: &[CollisionEvent]) -> Result<&Chunk> {
        self.append_from(events, None)
    }

    /// As [`Dataset::append`], recording where the events came from in the chunk's `origin`.
    pub fn append_from(
        &mut self,
        events: &[CollisionEvent],
        origin: Option<&str>,
    ) -> Result<&Chunk> {
        let _lock = WriteLock::acquire(&self.dir)?;
        // Another writer may have appended since we opened: start from the manifest on disk.
        *self = Self::open(&self.dir)?;
        let first_id = self.manifest.next_event_id;
        let id = self
            .manifest
            .chunks
            .iter()
            .map(|c| c.id)
            .max()
            .map_or(1, |m| m + 1);
        let chunk = self.write_chunk(events, first_id, id, origin)?;
        self.publish_locked(chunk)
    }

    /// Writes the files of chunk `id` holding `events` with ids from `first_id`, without
    /// taking the dataset's lock and without listing the chunk: several writers can encode at
    /// once, each with ids and a chunk id reserved elsewhere (alyxd reserves them in
    /// PostgreSQL); [`Dataset::publish`] then lists it. Files never published are ignored.
    pub fn write_chunk(
        &self,
        events: &[CollisionEvent],
        first_id: u64,
        id: u32,
        origin: Option<&str>,
    ) -> Result<Chunk> {
        let frames = tables::events_to_frames(events, first_id)?;
        let mut files = BTreeMap::new();
        let mut flagged_events = 0;
        for (table, mut df) in frames {
            if table == Table::Events {
                let flags = df
                    .column("flags")?
                    .str()?
                    .iter()
                    .filter(|f| f.is_some_and(|f| !f.is_empty()))
                    .count();
                flagged_events = flags as u64;
            }
            let rel = format!("{}/chunk-{id:06}.parquet", table.name());
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf)
                .with_compression(ParquetCompression::Zstd(None))
                .with_row_group_size(Some(ROW_GROUP_ROWS))
                .with_statistics(StatisticsOptions::full())
                .finish(&mut df)?;
            let path = self.dir.join(&rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            write_atomically(&path, &buf)?;
            let sha256 = hex(&Sha256::digest(&buf));
            remember_verified(&path, &sha256);
            files.insert(
                table.name().to_owned(),
                FileEntry {
                    path: rel,
                    sha256,
                    bytes: buf.len() as u64,
                    rows: df.height() as u64,
                },
            );
        }
        let headers = events.iter().map(|e| &e.header);
        let chunk = Chunk {
            id,
            first_event_id: first_id,
            event_count: events.len() as u64,
            run_min: headers.clone().map(|h| h.run).min().unwrap_or(0),
            run_max: headers.clone().map(|h| h.run).max().unwrap_or(0),
            time_min_ns: headers.clone().map(|h| h.timestamp_ns).min().unwrap_or(0),
            time_max_ns: headers.map(|h| h.timestamp_ns).max().unwrap_or(0),
            flagged_events,
            files,
            origin: origin.map(str::to_owned),
        };
        Ok(chunk)
    }

    /// Lists a chunk written by [`Dataset::write_chunk`] in the manifest (atomically, under the
    /// dataset's lock), keeping chunks in event-id order.
    pub fn publish(&mut self, chunk: Chunk) -> Result<&Chunk> {
        let _lock = WriteLock::acquire(&self.dir)?;
        *self = Self::open(&self.dir)?;
        self.publish_locked(chunk)
    }

    fn publish_locked(&mut self, chunk: Chunk) -> Result<&Chunk> {
        if self.manifest.chunks.iter().any(|c| c.id == chunk.id) {
            return Err(Error::Invalid(format!(
                "chunk {} is already in dataset `{}`",
                chunk.id, self.manifest.name
            )));
        }
        let id = chunk.id;
        let mut manifest = self.manifest.clone();
        manifest.next_event_id = manifest
            .next_event_id
            .max(chunk.first_event_id + chunk.event_count);
        let at = manifest
            .chunks
            .partition_point(|c| c.first_event_id <= chunk.first_event_id);
        manifest.chunks.insert(at, chunk);
        write_atomically(&self.dir.join(MANIFEST), &manifest_bytes(&manifest)?)?;
        self.manifest = manifest;
        self.manifest
            .chunks
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::Invalid("no chunk after append".into()))
    }

    /// Removes the chunks with ids in `ids` (and their files) from the dataset; returns how
    /// many there were. Event ids are not reused. Atomic like `append`.
    pub fn remove_chunks(&mut self, ids: &[u32]) -> Result<usize> {
        let _lock = WriteLock::acquire(&self.dir)?;
        *self = Self::open(&self.dir)?;
        let (removed, kept): (Vec<Chunk>, Vec<Chunk>) = self
            .manifest
            .chunks
            .iter()
            .cloned()
            .partition(|c| ids.contains(&c.id));
        if removed.is_empty() {
            return Ok(0);
        }
        let mut manifest = self.manifest.clone();
        manifest.chunks = kept;
        write_atomically(&self.dir.join(MANIFEST), &manifest_bytes(&manifest)?)?;
        self.manifest = manifest;
        for entry in removed.iter().flat_map(|c| c.files.values()) {
            // The manifest no longer lists it; a file left behind is only reported by `verify`.
            let _ = fs::remove_file(self.file_path(entry));
        }
        Ok(removed.len())
    }

    fn file_path(&self, entry: &FileEntry) -> PathBuf {
        self.dir.join(&entry.path)
    }

    fn entry(&self, chunk: &Chunk, table: Table) -> Result<PathBuf> {
        let entry = chunk
            .files
            .get(table.name())
            .ok_or_else(|| Error::Manifest {
                path: self.dir.join(MANIFEST),
                reason: format!("chunk {} lists no `{}` file", chunk.id, table.name()),
            })?;
        let path = self.file_path(entry);
        ensure_verified(&path, entry)?;
        Ok(path)
    }

    /// The checksum-verified Parquet files of `table`, in event-id order.
    pub fn table_files(&self, table: Table) -> Result<Vec<PathBuf>> {
        self.table_files_of(table, None)
    }

    /// [`Dataset::table_files`] of the chunks with ids in `chunks` (all when `None`).
    pub fn table_files_of(&self, table: Table, chunks: Option<&[u32]>) -> Result<Vec<PathBuf>> {
        self.manifest
            .chunks
            .iter()
            .filter(|c| chunks.is_none_or(|ids| ids.contains(&c.id)))
            .map(|c| self.entry(c, table))
            .collect()
    }

    /// A lazy scan of `table` over all chunks, with predicate and projection pushdown.
    pub fn scan(&self, table: Table) -> Result<LazyFrame> {
        self.scan_chunks(table, None)
    }

    /// A lazy scan of `table` over the chunks with ids in `chunks` (all when `None`): a
    /// catalogue selection or a sample restricts what a query reads this way.
    pub fn scan_chunks(&self, table: Table, chunks: Option<&[u32]>) -> Result<LazyFrame> {
        let files = self.table_files_of(table, chunks)?;
        if files.is_empty() {
            // An empty dataset: an empty frame with the table's schema.
            let frames = tables::events_to_frames(&[], 0)?;
            let df = frames
                .into_iter()
                .find(|(t, _)| *t == table)
                .map(|(_, df)| df)
                .unwrap_or_default();
            return Ok(df.lazy());
        }
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|p| PlRefPath::try_from_path(p))
            .collect::<PolarsResult<_>>()?;
        Ok(LazyFrame::scan_parquet_files(
            paths.into_iter().collect(),
            ScanArgsParquet::default(),
        )?)
    }

    fn read_chunk(
        &self,
        chunk: &Chunk,
        ids: std::ops::Range<u64>,
    ) -> Result<Vec<(u64, CollisionEvent)>> {
        let whole = ids.start <= chunk.first_event_id
            && ids.end >= chunk.first_event_id + chunk.event_count;
        let mut frames = HashMap::new();
        for table in Table::ALL {
            let path = self.entry(chunk, table)?;
            let df = if whole {
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                ParquetReader::new(file).finish()?
            } else {
                // Rows are sorted by event_id: row-group statistics skip what is out of range.
                let in_range = col("event_id")
                    .gt_eq(lit(ids.start))
                    .and(col("event_id").lt(lit(ids.end)));
                let scan = LazyFrame::scan_parquet(
                    PlRefPath::try_from_path(&path)?,
                    ScanArgsParquet::default(),
                )?;
                scan.filter(in_range).collect()?
            };
            frames.insert(table, df);
        }
        tables::frames_to_events(&frames)
    }

    /// Events with ids in `ids`, in id order.
    pub fn read_events(&self, ids: std::ops::Range<u64>) -> Result<Vec<(u64, CollisionEvent)>> {
        let mut out = Vec::new();
        for chunk in &self.manifest.chunks {
            let end = chunk.first_event_id + chunk.event_count;
            if chunk.first_event_id < ids.end && ids.start < end {
                out.extend(self.read_chunk(chunk, ids.clone())?);
            }
        }
        Ok(out)
    }

    pub fn read_event(&self, id: u64) -> Result<CollisionEvent> {
        let end = id.checked_add(1).ok_or(Error::NoSuchEvent(id))?;
        self.read_events(id..end)?
            .into_iter()
            .next()
            .map(|(_, e)| e)
            .ok_or(Error::NoSuchEvent(id))
    }

    /// Recomputes every file's checksum (ignoring the per-process cache) and reports any
    /// missing, truncated or altered file, and files the manifest does not list.
    pub fn verify(&self) -> VerifyReport {
        let mut report = VerifyReport::default();
        let mut listed = std::collections::HashSet::new();
        for chunk in &self.manifest.chunks {
            for entry in chunk.files.values() {
                let path = self.file_path(entry);
                listed.insert(path.clone());
                report.files_checked += 1;
                match check_file(&path, entry) {
                    Ok(()) => report.bytes_checked += entry.bytes,
                    Err(what) => report.problems.push(Problem { path, what }),
                }
            }
        }
        for table in Table::ALL {
            let Ok(dir) = fs::read_dir(self.dir.join(table.name())) else {
                continue;
            };
            for entry in dir.flatten() {
                let path = entry.path();
                if !listed.contains(&path) {
                    report.unreferenced.push(path);
                }
            }
        }
        report.unreferenced.sort();
        report
    }
}

/// Why `path` does not match its manifest entry, if it does not.
fn check_file(path: &Path, entry: &FileEntry) -> std::result::Result<(), String> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let size = file
        .metadata()
        .map(|m| m.len())
        .map_err(|e| format!("unreadable: {e}"))?;
    if size != entry.bytes {
        let how = if size < entry.bytes {
            "truncated"
        } else {
            "grown"
        };
        return Err(format!(
            "{how}: {size} bytes, manifest says {}",
            entry.bytes
        ));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("unreadable: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sha = hex(&hasher.finalize());
    if sha != entry.sha256 {
        return Err(format!(
            "checksum mismatch: content altered (sha256 {sha}, manifest says {})",
            entry.sha256
        ));
    }
    Ok(())
}

/// Files verified in this process, with the size and mtime they had then.
fn verified_cache() -> &'static Mutex<HashMap<PathBuf, (u64, Option<SystemTime>, String)>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, (u64, Option<SystemTime>, String)>>> =
        OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn file_stamp(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let meta = fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

fn remember_verified(path: &Path, sha: &str) {
    if let (Some((len, mtime)), Ok(mut cache)) = (file_stamp(path), verified_cache().lock()) {
        cache.insert(path.to_path_buf(), (len, mtime, sha.to_owned()));
    }
}

fn ensure_verified(path: &Path, entry: &FileEntry) -> Result<()> {
    let stamp = file_stamp(path);
    if let (Some((len, mtime)), Ok(cache)) = (stamp, verified_cache().lock())
        && cache
            .get(path)
            .is_some_and(|(l, m, s)| *l == len && *m == mtime && *s == entry.sha256)
    {
        return Ok(());
    }
    check_file(path, entry).map_err(|reason| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    remember_verified(path, &entry.sha256);
    Ok(())
}

fn manifest_bytes(manifest: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Invalid(format!("cannot encode manifest: {e}")))
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            // Make the rename itself durable.
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// An exclusive write lock on a dataset: a lock file holding the writer's pid. A lock whose
/// process is gone (a crashed writer) is taken over.
struct WriteLock {
    path: PathBuf,
}

impl WriteLock {
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    let alive =
                        owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if alive || !cfg!(target_os = "linux") {
                        return Err(Error::Locked {
                            path: dir.to_path_buf(),
                        });
                    }
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Locked {
            path: dir.to_path_buf(),
        })
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests;

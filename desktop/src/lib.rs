//! The ALYX desktop workstation: one folder per feature (`display`, `browser`, `histograms`,
//! `queries`, `jobs`, `notebooks`, `catalogue` — the Backend window), each a Bevy plugin with
//! its model and panel, and `remote`, the transport to alyxd that features call with their own
//! typed requests (answers come back as each feature's own messages). This root holds the
//! embedded default's data access — what `alyx --open PATH` and File ▸ Open do —, the resources
//! every feature shares, and the messages features send each other (no feature names another's
//! state).
//!
//! A dataset directory opens in place. A ROOT or Phoenix file is imported once into the local
//! data directory, under a name derived from its content hash, so reopening it is instant and
//! a changed file is imported afresh.

pub mod app;
pub mod browser;
pub mod catalogue;
pub mod display;
pub mod error;
pub mod fit;
pub mod heatmap;
pub mod histograms;
pub mod jobs;
pub mod notebooks;
pub mod plot;
pub mod queries;
pub mod remote;
pub mod settings;
pub mod sql_text;
pub mod synthetic;

use std::io::Read;
use std::path::Path;

pub use crate::error::Error;
use alyx_datasets as datasets;
use alyx_import as import;
use alyx_store::{DataStore, Dataset};
use sha2::{Digest, Sha256};

/// The dataset open in the workstation. Every panel reads it; File ▸ Open replaces it, and a
/// panel refreshes when it changes (`Res::is_changed`).
#[derive(bevy::prelude::Resource, Clone)]
pub struct OpenDataset(pub Dataset);

impl OpenDataset {
    /// The first and last event ids (ids are contiguous across chunks).
    pub fn id_range(&self) -> Option<(u64, u64)> {
        let chunks = &self.0.manifest().chunks;
        let first = chunks.first()?.first_event_id;
        let last = chunks.last()?;
        (last.event_count > 0).then(|| (first, last.first_event_id + last.event_count - 1))
    }
}

/// The alyxd dataset the desktop works on with `--backend` (chosen in the Backend window):
/// jobs and notebook cells sent to the cluster run over it.
#[derive(bevy::prelude::Resource, Clone, Debug, Default, PartialEq)]
pub struct BackendDataset(pub String);

/// Where the event display looks — its event, camera and cuts — as colleagues in a notebook
/// see it. The display keeps it current; [`FollowView`] asks the display to take a colleague's.
#[derive(bevy::prelude::Resource, Clone, Debug, Default, PartialEq)]
pub struct Viewpoint {
    pub event_id: Option<u64>,
    /// Yaw, pitch (rad), distance, focus x, y, z (cm), the view's index and 1 when
    /// orthographic (older clients send only the first six).
    pub camera: Vec<f32>,
    /// The cuts and style, as JSON.
    pub cuts: String,
}

/// Asks the event display to take a colleague's camera and cuts (a [`Viewpoint`]'s encoding;
/// what does not parse is left as it is).
#[derive(bevy::prelude::Message, Clone, Debug, PartialEq)]
pub struct FollowView {
    pub camera: Vec<f32>,
    pub cuts: String,
}

/// The local data directory, where File ▸ Open imports files.
#[derive(bevy::prelude::Resource, Clone)]
pub struct LocalStore(pub DataStore);

/// Which windows are open.
#[derive(
    bevy::prelude::Resource, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize,
)]
#[serde(default)]
pub struct Panels {
    /// The side panel: event, navigation, animation, cuts and style.
    pub side: bool,
    pub events: bool,
    pub histograms: bool,
    /// The query builder.
    pub queries: bool,
    /// Analysis jobs (local or alyxd's).
    pub jobs: bool,
    /// The notebook editor.
    pub notebook: bool,
}

impl Default for Panels {
    fn default() -> Self {
        Self {
            side: true,
            events: true,
            histograms: false,
            queries: false,
            jobs: false,
            notebook: false,
        }
    }
}

/// Asks the event display to show an event of the open dataset (sent by the event browser and
/// the navigation controls).
#[derive(bevy::prelude::Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShowEvent(pub u64);

/// Asks the event display to show an event fetched from elsewhere (alyxd), as it is.
#[derive(bevy::prelude::Message, Debug)]
pub struct ShowFetched {
    pub id: u64,
    pub event: alyx_core::CollisionEvent,
}

/// A line for the event display's status bar (an event that could not be fetched).
#[derive(bevy::prelude::Message, Clone, Debug)]
pub struct DisplayNotice(pub String);

/// Asks the Jobs window to run an analysis as a job (sent by the query builder).
#[derive(bevy::prelude::Message, Clone, Debug)]
pub struct SubmitJob {
    pub name: String,
    pub analysis: alyx_core::jobs::Analysis,
    pub priority: i32,
    /// auto, local, spark or slurm.
    pub target: String,
}

/// A histogram to show in the query builder's plot (a job's result opened in the Jobs window).
#[derive(bevy::prelude::Message, Clone, Debug)]
pub struct PlotHistogram {
    pub label: String,
    pub histogram: alyx_core::histogram::Histogram,
}

/// Opens `path` — a dataset, a data directory with one dataset, a ROOT file or a Phoenix JSON
/// file — importing files into `store` the first time they are seen.
pub fn open(path: &Path, store: &DataStore) -> Result<Dataset, Error> {
    if path.is_dir() {
        return Ok(Dataset::resolve(path, None)?);
    }
    import::detect_format(path)?;
    let name = format!(
        "{}-{}",
        datasets::name_from_path(path),
        &content_hash(path)?[..12]
    );
    match store.dataset(&name) {
        Ok(d) => Ok(d),
        Err(alyx_store::Error::NotADataset { .. }) => {
            let (d, _) = datasets::import_files(
                store,
                &name,
                &[path.to_path_buf()],
                None,
                None,
                &mut |_| {},
            )?;
            Ok(d)
        }
        Err(e) => Err(e.into()),
    }
}

fn content_hash(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phoenix_file_is_imported_once_then_reopened_in_place() {
        let Some(path) = alyx_tests::data_file("phoenix/ATLAS_atlaseventdump2.json") else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let first = open(&path, &store).expect("imports");
        assert_eq!(first.manifest().event_count(), 4);
        let again = open(&path, &store).expect("reopens");
        assert_eq!(again.dir(), first.dir());
        assert_eq!(
            store.dataset_names().expect("names").len(),
            1,
            "not imported twice"
        );
        // A dataset directory opens in place.
        assert_eq!(
            open(first.dir(), &store).expect("dataset").name(),
            first.name()
        );
    }

    #[test]
    fn a_file_of_unknown_format_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("notes.txt");
        std::fs::write(&junk, "hello").expect("write");
        let store = DataStore::open(dir.path().join("store")).expect("store");
        let err = open(&junk, &store).expect_err("unknown format");
        assert!(
            err.to_string().contains("not a ROOT file or Phoenix JSON"),
            "{err}"
        );
    }
}

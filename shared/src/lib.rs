//! `alyx-shared`: the domain library every part of ALYX stands on — the collision-event model,
//! kinematics and helix physics, the detector geometry, the event generator, validation rules,
//! the columnar event store, the importers for real files (ROOT, Phoenix) and SQL over a dataset.
//!
//! It is deliberately free of async runtimes, RPC, databases and rendering (no tokio, tonic, sqlx
//! or bevy): the desktop, the backend and the cluster workers all link it.

pub mod datasets;
pub mod error;
pub mod generator;
pub mod geometry;
pub mod helix;
pub mod histogram;
pub mod import;
pub mod model;
pub mod physics;
pub mod query;
pub mod store;
pub mod validate;

pub use error::Error;
pub use geometry::DetectorGeometry;
pub use model::{CollisionEvent, CollisionSystem, Detector};
pub use store::{DataStore, Dataset};

/// Where an interactive user's data lives when nothing else is said: `$ALYX_DATA_DIR`, else the
/// platform's per-user data directory (`~/.local/share/alyx` on Linux).
pub fn default_data_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("ALYX_DATA_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("alyx")
}

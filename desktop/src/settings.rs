//! `SettingsPlugin`: what the user set up — visibility, colours, cuts, the camera, open panels,
//! recent files — is saved to a TOML file shortly after it changes and on exit, and restored at
//! the next start. A settings file that cannot be read is set aside (never overwritten) and the
//! defaults are used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Panels;
use crate::display::geometry::{GeometryByDataset, GeometryFile};
use crate::display::panels::RecentFiles;
use crate::display::{Orbit, ViewOptions};

/// Everything persisted, as written to `settings.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub view: ViewOptions,
    pub camera: Orbit,
    pub panels: Panels,
    pub recent: Vec<PathBuf>,
    /// The detector geometry chosen for each dataset.
    pub geometry: BTreeMap<String, Vec<GeometryFile>>,
}

impl Settings {
    /// Reads `path`; `Ok(None)` when there is no file yet.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes `path` atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string_pretty(self).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn from_world(world: &World) -> Self {
        Self {
            view: world
                .get_resource::<ViewOptions>()
                .cloned()
                .unwrap_or_default(),
            camera: world.get_resource::<Orbit>().copied().unwrap_or_default(),
            panels: world.get_resource::<Panels>().cloned().unwrap_or_default(),
            recent: world
                .get_resource::<RecentFiles>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            geometry: world
                .get_resource::<GeometryByDataset>()
                .map(|g| g.0.clone())
                .unwrap_or_default(),
        }
    }

    fn insert_into(self, app: &mut App) {
        app.insert_resource(self.view)
            .insert_resource(self.camera)
            .insert_resource(self.panels)
            .insert_resource(RecentFiles(self.recent))
            .insert_resource(GeometryByDataset(self.geometry));
    }
}

/// `$ALYX_CONFIG_DIR`, else `$XDG_CONFIG_HOME/alyx`, else `~/.config/alyx`.
pub fn default_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ALYX_CONFIG_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return PathBuf::from(dir).join("alyx");
    }
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join(".config/alyx")
}

/// Loads the settings at `path` into the app at build time and keeps the file up to date.
/// Add it after the plugins whose resources it restores (the event display, its panels).
pub struct SettingsPlugin {
    pub path: PathBuf,
    /// How long a change must settle before it is written.
    pub debounce: Duration,
}

impl SettingsPlugin {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            debounce: Duration::from_millis(500),
        }
    }
}

#[derive(Resource)]
struct SettingsFile {
    path: PathBuf,
    debounce: Duration,
    saved: Settings,
    changed_at: Option<Instant>,
}

impl Plugin for SettingsPlugin {
    fn build(&self, app: &mut App) {
        let loaded = match Settings::load(&self.path) {
            Ok(settings) => settings,
            Err(e) => {
                // Keep the unreadable file for the user; start from the defaults.
                let aside = self.path.with_extension("toml.invalid");
                let _ = std::fs::rename(&self.path, &aside);
                warn!(
                    "settings not restored ({e}); the file was moved to {}",
                    aside.display()
                );
                None
            }
        };
        if let Some(settings) = loaded.clone() {
            settings.insert_into(app);
        }
        app.insert_resource(SettingsFile {
            path: self.path.clone(),
            debounce: self.debounce,
            saved: loaded.unwrap_or_else(|| Settings::from_world(app.world())),
            changed_at: None,
        })
        .add_systems(Last, save_settings);
    }
}

fn save_settings(world: &mut World) {
    let current = Settings::from_world(world);
    let exiting = world
        .get_resource::<Messages<AppExit>>()
        .is_some_and(|m| !m.is_empty());
    let Some(mut file) = world.get_resource_mut::<SettingsFile>() else {
        return;
    };
    if current == file.saved {
        file.changed_at = None;
        return;
    }
    let changed_at = *file.changed_at.get_or_insert_with(Instant::now);
    if !exiting && changed_at.elapsed() < file.debounce {
        return;
    }
    match current.save(&file.path) {
        Ok(()) => {
            file.saved = current;
            file.changed_at = None;
        }
        Err(e) => {
            warn!("settings not saved: {e}");
            // Try again after another debounce rather than every frame.
            file.changed_at = Some(Instant::now());
        }
    }
}

//! Assembles the `alyx` app: Bevy with a window, or rendering into an image (screenshots,
//! benchmarks); egui; one plugin per feature (event display, event browser, histograms,
//! settings).

use std::path::PathBuf;
use std::time::Duration;

use alyx_core::model::CollisionEvent;
use alyx_store::{DataStore, Dataset};
use bevy::asset::io::AssetSourceBuilder;
use bevy::prelude::*;
use bevy::window::{ExitCondition, WindowResolution};
use bevy::winit::{UpdateMode, WinitPlugin, WinitSettings};
use bevy_egui::EguiPlugin;

use crate::browser::EventBrowserPlugin;
use crate::display::model::ScreenshotJob;
use crate::display::visuals::Offscreen;
use crate::display::{Display, EventDisplayPlugin, View};
use crate::histograms::HistogramPlugin;
use crate::jobs::JobsPlugin;
use crate::queries::QueryPlugin;
use crate::settings::SettingsPlugin;
use crate::{LocalStore, OpenDataset, Panels};

/// Where frames go.
pub enum Output {
    /// A window on the desktop.
    Window { title: String },
    /// An image, saved to this PNG once everything is drawn; then the app exits.
    Screenshot(PathBuf),
    /// An image nobody saves: the caller drives `App::update` (benchmarks).
    Offscreen,
}

pub struct Launch {
    pub output: Output,
    pub size: (u32, u32),
    /// The first camera view; `None` restores the saved camera.
    pub view: Option<View>,
    /// The settings file; `None` neither restores nor saves settings.
    pub settings: Option<PathBuf>,
    pub store: Option<DataStore>,
    pub dataset: Option<Dataset>,
    pub event_id: u64,
    pub event: CollisionEvent,
    /// The connection to alyxd and the Backend window's first state, when the desktop works
    /// with a backend (`--backend`).
    pub backend: Option<(crate::remote::Remote, crate::catalogue::Catalogue)>,
}

pub fn build(launch: Launch) -> App {
    let mut app = App::new();
    let (w, h) = launch.size;
    // Detector geometries load through Bevy's asset server from wherever the user keeps them.
    app.register_asset_source(
        crate::display::geometry::ASSET_SOURCE,
        AssetSourceBuilder::platform_default("/", None),
    );
    match &launch.output {
        Output::Window { title } => {
            app.add_plugins(DefaultPlugins.set(WindowPlugin {
                primary_window: Some(Window {
                    title: title.clone(),
                    resolution: WindowResolution::new(w, h),
                    ..default()
                }),
                ..default()
            }))
            .insert_resource(WinitSettings {
                focused_mode: UpdateMode::Continuous,
                unfocused_mode: UpdateMode::reactive_low_power(Duration::from_millis(250)),
            });
        }
        Output::Screenshot(_) | Output::Offscreen => {
            app.add_plugins(
                DefaultPlugins
                    .set(WindowPlugin {
                        primary_window: None,
                        exit_condition: ExitCondition::DontExit,
                        ..default()
                    })
                    .disable::<WinitPlugin>(),
            )
            .insert_resource(Offscreen {
                size: launch.size,
                image: None,
            })
            // Images show the event and its info overlay, not the controls.
            .insert_resource(Panels {
                side: false,
                events: false,
                histograms: false,
                queries: false,
                jobs: false,
                notebook: false,
            });
        }
    }
    if let Output::Screenshot(path) = &launch.output {
        app.add_plugins(bevy::app::ScheduleRunnerPlugin::run_loop(Duration::ZERO))
            .insert_resource(ScreenshotJob::new(path.clone()));
    }
    if let Some(store) = launch.store {
        app.insert_resource(LocalStore(store));
    }
    if let Some(dataset) = launch.dataset {
        app.insert_resource(OpenDataset(dataset));
    }
    app.add_plugins(EguiPlugin::default())
        .insert_resource(Display::new(launch.event_id, launch.event))
        .add_plugins((
            EventDisplayPlugin,
            EventBrowserPlugin,
            HistogramPlugin,
            QueryPlugin,
            JobsPlugin,
            crate::notebooks::NotebookPlugin,
        ));
    if let Some((remote, catalogue)) = launch.backend {
        app.insert_resource(remote)
            .insert_resource(catalogue)
            .add_plugins((
                crate::remote::RemotePlugin,
                crate::catalogue::CataloguePlugin,
            ));
    }
    if let Some(path) = launch.settings {
        app.add_plugins(SettingsPlugin::new(path));
    }
    // An explicit view wins over the saved camera.
    if let Some(view) = launch.view {
        app.insert_resource(crate::display::Orbit::view(view));
    }
    app
}

//! `alyx`, the desktop workstation. With no arguments it opens the embedded default (the demo
//! datasets in the local data directory, generated on first start); `--open PATH` opens a
//! dataset, a ROOT file or a Phoenix file; `--screenshot` renders one event to a PNG and exits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alyx_desktop::display::{Display, EventDisplayPlugin, ScreenshotJob, View};
use alyx_shared::store::DataStore;
use alyx_shared::{datasets, default_data_dir};
use anyhow::{Context, Result, bail};
use bevy::prelude::*;
use bevy::window::{ExitCondition, WindowResolution};
use bevy::winit::{UpdateMode, WinitPlugin, WinitSettings};
use bevy_egui::EguiPlugin;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "alyx",
    version,
    about = "ALYX desktop workstation: look at collision events"
)]
struct Args {
    /// A dataset directory, a ROOT file or a Phoenix JSON file (default: the demo data).
    #[arg(long)]
    open: Option<PathBuf>,
    /// The event id to show first (default: the first).
    #[arg(long)]
    event: Option<u64>,
    /// Render the event to this PNG and exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Camera: 3d, rphi (end view) or rz (side view).
    #[arg(long, default_value = "3d")]
    view: String,
    /// Image or window size, WxH.
    #[arg(long, default_value = "1280x800")]
    size: String,
    /// Local data directory (default: $ALYX_DATA_DIR or ~/.local/share/alyx).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A backend URL (alyxd); the desktop works standalone until the backend lands.
    #[arg(long)]
    backend: Option<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn parse_size(size: &str) -> Result<(u32, u32)> {
    let (w, h) = size
        .split_once('x')
        .with_context(|| format!("--size `{size}`: expected WxH, e.g. 1280x800"))?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        bail!("--size `{size}`: width and height must be between 16 and 8192");
    }
    Ok((w, h))
}

fn run(args: Args) -> Result<ExitCode> {
    if let Some(url) = &args.backend {
        bail!(
            "--backend {url}: this build has no backend client yet; run without --backend to use local data"
        );
    }
    let view = View::parse(&args.view)
        .with_context(|| format!("--view `{}`: use 3d, rphi or rz", args.view))?;
    let size = parse_size(&args.size)?;
    let store = DataStore::open(args.data_dir.unwrap_or_else(default_data_dir))?;
    let dataset = match &args.open {
        Some(path) => alyx_desktop::open(path, &store)
            .with_context(|| format!("cannot open {}", path.display()))?,
        None => {
            let mut made = datasets::ensure_demo(&store, &mut |name, done, n| {
                if done == n {
                    eprintln!("generated demo dataset {name} ({n} events)");
                }
            })?;
            made.remove(0)
        }
    };
    let first = dataset
        .manifest()
        .chunks
        .first()
        .map_or(0, |c| c.first_event_id);
    let event_id = args.event.unwrap_or(first);
    let event = dataset.read_event(event_id)?;

    let mut app = App::new();
    match &args.screenshot {
        Some(path) => {
            app.add_plugins(
                DefaultPlugins
                    .set(WindowPlugin {
                        primary_window: None,
                        exit_condition: ExitCondition::DontExit,
                        ..default()
                    })
                    .disable::<WinitPlugin>(),
            )
            .add_plugins(bevy::app::ScheduleRunnerPlugin::run_loop(Duration::ZERO))
            .insert_resource(ScreenshotJob::new(path.clone(), size));
        }
        None => {
            app.add_plugins(DefaultPlugins.set(WindowPlugin {
                primary_window: Some(Window {
                    title: format!("ALYX — {}", dataset.name()),
                    resolution: WindowResolution::new(size.0, size.1),
                    ..default()
                }),
                ..default()
            }))
            .insert_resource(WinitSettings {
                focused_mode: UpdateMode::Continuous,
                unfocused_mode: UpdateMode::Continuous,
            });
        }
    }
    app.add_plugins(EguiPlugin::default())
        .insert_resource(Display::new(dataset, event_id, event))
        .add_plugins(EventDisplayPlugin { view });
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(_) => ExitCode::FAILURE,
    })
}

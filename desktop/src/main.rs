//! `alyx`, the desktop workstation. With no arguments it opens the embedded default (the demo
//! datasets in the local data directory, generated on first start); `--open PATH` opens a
//! dataset, a ROOT file or a Phoenix file; `--screenshot` renders one event to a PNG and exits.

use std::path::PathBuf;
use std::process::ExitCode;

use alyx_desktop::app::{self, Launch, Output};
use alyx_desktop::display::{Orbit, View};
use alyx_desktop::settings::default_config_dir;
use alyx_shared::store::DataStore;
use alyx_shared::{datasets, default_data_dir};
use anyhow::{Context, Result, bail};
use bevy::prelude::AppExit;
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
    /// Camera: 3d, rphi (end view) or rz (side view) (default: as last time; 3d for screenshots).
    #[arg(long)]
    view: Option<String>,
    /// Camera as YAW,PITCH,DISTANCE (radians, radians, cm), instead of a preset view.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    camera: Option<Vec<f32>>,
    /// Image or window size, WxH.
    #[arg(long, default_value = "1280x800")]
    size: String,
    /// Local data directory (default: $ALYX_DATA_DIR or ~/.local/share/alyx).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A backend URL (alyxd); the desktop works standalone until the backend lands.
    #[arg(long)]
    backend: Option<String>,
    /// Start with the default settings and do not save them.
    #[arg(long)]
    no_settings: bool,
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
    let view = match &args.view {
        Some(v) => {
            Some(View::parse(v).with_context(|| format!("--view `{v}`: use 3d, rphi or rz"))?)
        }
        None => args.screenshot.as_ref().map(|_| View::ThreeD),
    };
    let size = parse_size(&args.size)?;
    let store = DataStore::open(args.data_dir.unwrap_or_else(default_data_dir))?;
    let dataset = match &args.open {
        Some(path) => alyx_desktop::open(path, &store)
            .with_context(|| format!("cannot open {}", path.display()))?,
        None => {
            let made = datasets::ensure_demo(&store, &mut |name, done, n| {
                if done == n {
                    eprintln!("generated demo dataset {name} ({n} events)");
                }
            })?;
            made.into_iter().next().context("no demo dataset")?
        }
    };
    let first = dataset
        .manifest()
        .chunks
        .first()
        .map_or(0, |c| c.first_event_id);
    let event_id = args.event.unwrap_or(first);
    let event = dataset
        .read_event(event_id)
        .with_context(|| format!("event {event_id} of {}", dataset.name()))?;
    let output = match args.screenshot {
        Some(path) => Output::Screenshot(path),
        None => Output::Window {
            title: format!("ALYX — {}", dataset.name()),
        },
    };
    let settings = (!args.no_settings && matches!(output, Output::Window { .. }))
        .then(|| default_config_dir().join("settings.toml"));
    let camera = match args.camera.as_deref() {
        None => None,
        Some(&[yaw, pitch, distance]) => Some(Orbit {
            yaw,
            pitch,
            distance,
            focus: [0.0; 3],
        }),
        Some(_) => bail!("--camera: expected YAW,PITCH,DISTANCE, e.g. 0.75,0.45,1300"),
    };
    let mut app = app::build(Launch {
        output,
        size,
        view,
        settings,
        store: Some(store),
        dataset: Some(dataset),
        event_id,
        event,
    });
    if let Some(camera) = camera {
        app.insert_resource(camera);
    }
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(_) => ExitCode::FAILURE,
    })
}

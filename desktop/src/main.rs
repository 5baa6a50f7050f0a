//! `alyx`, the desktop workstation. With no arguments it opens the embedded default (the demo
//! datasets in the local data directory, generated on first start); `--open PATH` opens a
//! dataset, a ROOT file or a Phoenix file; `--screenshot` renders one event to a PNG and exits;
//! `--histogram NAME [--fit MODEL]` opens the Histograms window on a quantity (and fits it).

use std::path::PathBuf;
use std::process::ExitCode;

use alyx_core::CollisionEvent;
use alyx_core::default_data_dir;
use alyx_datasets as datasets;
use alyx_desktop::app::{self, Launch, Output};
use alyx_desktop::catalogue::Catalogue;
use alyx_desktop::display::geometry::{Geometry, GeometryFile, HiddenVolumes};
use alyx_desktop::display::{Orbit, View};
use alyx_desktop::remote::{Connection, Remote};
use alyx_desktop::settings::default_config_dir;
use alyx_store::DataStore;
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
    /// View: 3d, rphi (end view, the r-φ projection) or rz (side view, the ρ-z projection)
    /// (default: as last time; 3d for screenshots).
    #[arg(long, value_enum)]
    view: Option<ViewArg>,
    /// Draw the 3D view without perspective (the r-φ and ρ-z views always are).
    #[arg(long)]
    orthographic: bool,
    /// Camera as YAW,PITCH,DISTANCE (radians, radians, cm), instead of a preset view.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    camera: Option<Vec<f32>>,
    /// Image or window size, WxH.
    #[arg(long, default_value = "1280x800")]
    size: String,
    /// Local data directory (default: $ALYX_DATA_DIR or ~/.local/share/alyx).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Work with an alyxd backend at this URL (e.g. http://127.0.0.1:50051) instead of local
    /// data: its datasets and events, fetched over gRPC.
    #[arg(long, env = "ALYX_BACKEND")]
    backend: Option<String>,
    /// The bearer token for --backend (from `alyxctl admin create-user`).
    #[arg(long, env = "ALYX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --backend: the dataset to show (default: the backend's first).
    #[arg(long)]
    dataset: Option<String>,
    /// With --backend: follow the live stream, showing each newly stored event.
    #[arg(long)]
    live: bool,
    /// Open the Histograms window on this quantity or 2-D map of the dataset.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(alyx_desktop::histograms::SHORT_NAMES))]
    histogram: Option<String>,
    /// Fit the --histogram with this model (e.g. voigt+exp, gauss+cheb1, bw*gauss+exp).
    #[arg(long, requires = "histogram")]
    fit: Option<String>,
    /// The fit's range, LO:HI (default: the whole histogram).
    #[arg(long, requires = "fit", value_parser = parse_range, allow_hyphen_values = true)]
    fit_range: Option<(f64, f64)>,
    /// Draw the detector from these geometry files instead of the built-in barrel: glTF
    /// (lengths in metres), Wavefront OBJ (millimetres) or a ROOT TGeo file (centimetres),
    /// each as PATH or PATH@UNIT (mm, cm, m). Remembered for the dataset.
    #[arg(long, value_delimiter = ',', value_parser = parse_geometry)]
    geometry: Vec<GeometryFile>,
    /// Hide this volume of the --geometry (e.g. CSC3D_V1 for CMS's end-cap chambers).
    #[arg(long, requires = "geometry")]
    hide_volume: Vec<String>,
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

/// `--view`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ViewArg {
    /// Oblique 3D.
    #[value(name = "3d")]
    ThreeD,
    /// End view, the r-φ projection.
    Rphi,
    /// Side view, the ρ-z projection.
    Rz,
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

/// What the app opens with: a local dataset, or a backend's.
struct Source {
    dataset: Option<alyx_store::Dataset>,
    backend: Option<(Remote, Catalogue)>,
    title: String,
    event_id: u64,
    event: CollisionEvent,
}

/// Connects to the backend and fetches the event to show first (`--event`, else the dataset's
/// first; in live mode the stream replaces it with the newest).
fn backend_source(args: &Args, url: &str) -> Result<Source> {
    let token = args
        .token
        .clone()
        .context("--backend needs --token (or ALYX_TOKEN); an operator makes one with `alyxctl admin create-user`")?;
    let connection = Connection {
        url: url.to_owned(),
        token,
    };
    let remote = Remote::connect(&connection).map_err(anyhow::Error::msg)?;
    let datasets = remote
        .blocking(|c| async move { c.datasets().await })
        .map_err(anyhow::Error::msg)??;
    let name = match &args.dataset {
        Some(name) => name.clone(),
        None => datasets
            .first()
            .map(|d| d.name.clone())
            .context("the backend has no datasets yet")?,
    };
    let first = match args.event {
        Some(id) => Some(id),
        None => {
            let dataset = name.clone();
            remote
                .blocking(|c| async move { c.events(&dataset, None, 1, None).await })
                .map_err(anyhow::Error::msg)??
                .events
                .first()
                .map(|e| e.event_id)
        }
    };
    let (event_id, event) = match first {
        Some(id) => {
            let dataset = name.clone();
            let (summary, event) = remote
                .blocking(|c| async move { c.event(&dataset, id).await })
                .map_err(anyhow::Error::msg)?
                .with_context(|| format!("event {id} of {name}"))?;
            (summary.event_id, event)
        }
        // An empty dataset: an empty scene until the live stream brings events.
        None => (
            0,
            CollisionEvent::new(alyx_core::model::EventHeader {
                run: 0,
                event_number: 0,
                timestamp_ns: 0,
                system: alyx_core::CollisionSystem::Unknown,
                sqrt_s_gev: f64::NAN,
                vertex_cm: [0.0; 3],
                trigger_bits: 0,
                weight: 1.0,
                hit_collections: Vec::new(),
            }),
        ),
    };
    Ok(Source {
        dataset: None,
        backend: Some((remote, Catalogue::new(name.clone(), args.live))),
        title: format!("ALYX — {name} on {url}"),
        event_id,
        event,
    })
}

fn local_source(args: &Args, store: &DataStore) -> Result<Source> {
    let dataset = match &args.open {
        Some(path) => alyx_desktop::open(path, store)
            .with_context(|| format!("cannot open {}", path.display()))?,
        None => {
            let made = datasets::ensure_demo(store, &mut |name, done, n| {
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
    Ok(Source {
        title: format!("ALYX — {}", dataset.name()),
        dataset: Some(dataset),
        backend: None,
        event_id,
        event,
    })
}

fn parse_geometry(s: &str) -> Result<GeometryFile, String> {
    GeometryFile::parse(s)
}

fn parse_range(s: &str) -> Result<(f64, f64), String> {
    alyx_fit::parse_range(s).map_err(|e| e.to_string())
}

fn run(args: Args) -> Result<ExitCode> {
    let view = match args.view {
        Some(ViewArg::ThreeD) => Some(View::ThreeD),
        Some(ViewArg::Rphi) => Some(View::RPhi),
        Some(ViewArg::Rz) => Some(View::RZ),
        None => args.screenshot.as_ref().map(|_| View::ThreeD),
    };
    let size = parse_size(&args.size)?;
    let store = DataStore::open(args.data_dir.clone().unwrap_or_else(default_data_dir))?;
    let source = match &args.backend {
        Some(url) => backend_source(&args, url)?,
        None => local_source(&args, &store)?,
    };
    let output = match args.screenshot {
        Some(path) => Output::Screenshot(path),
        None => Output::Window {
            title: source.title,
        },
    };
    if matches!(output, Output::Window { .. })
        && ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .all(|v| std::env::var_os(v).is_none_or(|d| d.is_empty()))
    {
        bail!(
            "no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set): \
             run alyx in a desktop session, or render an image with --screenshot out.png"
        );
    }
    let settings = (!args.no_settings && matches!(output, Output::Window { .. }))
        .then(|| default_config_dir().join("settings.toml"));
    let camera = match args.camera.as_deref() {
        None => None,
        Some(&[yaw, pitch, distance]) => Some(Orbit {
            yaw,
            pitch,
            distance,
            ..Orbit::view(view.unwrap_or_default())
        }),
        Some(_) => bail!("--camera: expected YAW,PITCH,DISTANCE, e.g. 0.75,0.45,1300"),
    };
    let mut app = app::build(Launch {
        output,
        size,
        view,
        settings,
        store: Some(store),
        dataset: source.dataset,
        event_id: source.event_id,
        event: source.event,
        backend: source.backend,
    });
    if let Some(name) = args.histogram {
        app.insert_resource(alyx_desktop::histograms::HistogramRequest {
            name,
            fit: args.fit,
            range: args.fit_range,
        });
    }
    if let Some(camera) = camera {
        app.insert_resource(camera);
    }
    if !args.geometry.is_empty() {
        app.insert_resource(Geometry {
            files: args.geometry,
        })
        .insert_resource(HiddenVolumes(args.hide_volume));
    }
    if args.orthographic {
        let mut orbit = app
            .world()
            .get_resource::<Orbit>()
            .copied()
            .unwrap_or_else(|| Orbit::view(view.unwrap_or_default()));
        orbit.orthographic = true;
        app.insert_resource(orbit);
    }
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(_) => ExitCode::FAILURE,
    })
}

//! `EventDisplayPlugin`: the 3D event display in Bevy, drawing the `scene::Scene` of the current
//! event — hits as instances of one mesh and one material per detector, all tracks in one line
//! mesh, the barrel's layers as outlines — with an orbit camera, preset views, event stepping,
//! live cuts in an egui panel, and screenshots (interactive or headless for `--screenshot`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alyx_shared::DetectorGeometry;
use alyx_shared::model::{CollisionEvent, Detector};
use alyx_shared::store::Dataset;
use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::PrimitiveTopology;
use bevy::prelude::*;
use bevy::render::render_resource::{TextureFormat, TextureUsages};
use bevy::render::view::Msaa;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::scene::{self, Cuts, Style};

/// Preset camera views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Oblique 3D.
    ThreeD,
    /// End view along the beam: the r-φ plane.
    RPhi,
    /// Side view: the r-z plane.
    RZ,
}

impl View {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "3d" => Some(Self::ThreeD),
            "rphi" => Some(Self::RPhi),
            "rz" => Some(Self::RZ),
            _ => None,
        }
    }

    /// (yaw, pitch) of the orbit camera around the origin.
    fn angles(self) -> (f32, f32) {
        match self {
            Self::ThreeD => (0.75, 0.45),
            Self::RPhi => (0.0, 0.0),
            Self::RZ => (std::f32::consts::FRAC_PI_2, 0.0),
        }
    }
}

/// The event on display and how it is shown.
#[derive(Resource)]
pub struct Display {
    pub dataset: Dataset,
    pub event_id: u64,
    pub event: CollisionEvent,
    pub geometry: DetectorGeometry,
    pub cuts: Cuts,
    pub style: Style,
    /// Most hits drawn at once.
    pub hit_budget: usize,
    dirty: bool,
    /// An event being read from the store off the main thread: (id, read).
    loading: Option<(u64, Task<alyx_shared::error::Result<CollisionEvent>>)>,
    shown_hits: usize,
    passing_hits: usize,
    shown_tracks: usize,
    message: Option<String>,
}

impl Display {
    pub fn new(dataset: Dataset, event_id: u64, event: CollisionEvent) -> Self {
        Self {
            dataset,
            event_id,
            event,
            geometry: DetectorGeometry::alice_barrel(),
            cuts: Cuts::default(),
            style: Style::default(),
            hit_budget: 600_000,
            dirty: true,
            loading: None,
            shown_hits: 0,
            passing_hits: 0,
            shown_tracks: 0,
            message: None,
        }
    }

    /// Starts moving to another event of the dataset: it is read from the local store on the
    /// async pool (systems never block on I/O) and shown when `receive_event` finds it ready.
    fn go_to(&mut self, id: u64) {
        let dataset = self.dataset.clone();
        let task = AsyncComputeTaskPool::get().spawn(async move { dataset.read_event(id) });
        self.loading = Some((id, task));
    }
}

fn receive_event(mut display: ResMut<Display>) {
    let Some((id, task)) = display.loading.as_mut() else {
        return;
    };
    let id = *id;
    let Some(result) = check_ready(task) else {
        return;
    };
    display.loading = None;
    match result {
        Ok(event) => {
            display.event = event;
            display.event_id = id;
            display.dirty = true;
            display.message = None;
        }
        Err(e) => display.message = Some(e.to_string()),
    }
}

/// Headless screenshot: render into an image, save it once the pipelines are ready, exit.
#[derive(Resource)]
pub struct ScreenshotJob {
    pub path: PathBuf,
    pub size: (u32, u32),
    ready_frames: u32,
    requested: bool,
    target: Option<Handle<Image>>,
}

impl ScreenshotJob {
    pub fn new(path: PathBuf, size: (u32, u32)) -> Self {
        Self {
            path,
            size,
            ready_frames: 0,
            requested: false,
            target: None,
        }
    }
}

pub struct EventDisplayPlugin {
    pub view: View,
}

#[derive(Resource)]
struct Orbit {
    yaw: f32,
    pitch: f32,
    distance: f32,
    focus: Vec3,
}

#[derive(Component)]
struct SceneItem;

/// Pipelines still compiling, seen from the main world (shaders compile in the background; a
/// screenshot taken before they are done misses whatever they draw).
#[derive(Resource, Clone, Default)]
struct PipelineStatus(Arc<(AtomicUsize, AtomicUsize)>);

fn pipeline_status(
    cache: Res<bevy::render::render_resource::PipelineCache>,
    status: Res<PipelineStatus>,
) {
    status
        .0
        .0
        .store(cache.waiting_pipelines().count(), Ordering::Relaxed);
    status
        .0
        .1
        .store(cache.pipelines().count(), Ordering::Relaxed);
}

impl Plugin for EventDisplayPlugin {
    fn build(&self, app: &mut App) {
        let (yaw, pitch) = self.view.angles();
        let status = PipelineStatus::default();
        app.insert_resource(Orbit {
            yaw,
            pitch,
            distance: 1300.0,
            focus: Vec3::ZERO,
        })
        .insert_resource(ClearColor(Color::srgb(0.02, 0.02, 0.04)))
        .insert_resource(status.clone())
        .add_systems(Startup, setup)
        .add_systems(
            Update,
            (
                (receive_event, rebuild_scene).chain(),
                camera_controls,
                keyboard,
                draw_geometry,
                screenshot,
            ),
        )
        .add_systems(EguiPrimaryContextPass, panel);
        if let Some(render) = app.get_sub_app_mut(bevy::render::RenderApp) {
            render
                .insert_resource(status)
                .add_systems(bevy::render::Render, pipeline_status);
        }
    }
}

fn setup(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    job: Option<ResMut<ScreenshotJob>>,
) {
    let camera = (
        Camera3d::default(),
        Tonemapping::Reinhard,
        // Multisampling costs 3–6× in the software renderer; lines stay crisp without it.
        Msaa::Off,
        Projection::Perspective(PerspectiveProjection {
            far: 20_000.0,
            near: 1.0,
            ..default()
        }),
        Transform::default(),
    );
    match job {
        Some(mut job) => {
            let (w, h) = job.size;
            let mut image = Image::new_target_texture(w, h, TextureFormat::Rgba8UnormSrgb, None);
            image.texture_descriptor.usage |= TextureUsages::COPY_SRC;
            let handle = images.add(image);
            job.target = Some(handle.clone());
            commands.spawn((camera, RenderTarget::Image(handle.into())));
        }
        None => {
            commands.spawn(camera);
        }
    }
}

fn rebuild_scene(
    mut commands: Commands,
    mut display: ResMut<Display>,
    old: Query<Entity, With<SceneItem>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    if !display.dirty {
        return;
    }
    display.dirty = false;
    for entity in &old {
        commands.entity(entity).despawn();
    }
    let scene = scene::build_scene(
        &display.event,
        &display.geometry,
        &display.cuts,
        &display.style,
        display.hit_budget,
    );
    display.shown_hits = scene.hits.len();
    display.passing_hits = scene.hits_passing;
    display.shown_tracks = scene.tracks.len();

    // One mesh and one material per detector: Bevy batches their instances into one draw.
    for detector in [Detector::Its, Detector::Tpc, Detector::Tof, Detector::Other] {
        // Radii in cm: a couple of pixels when the whole barrel fills the view.
        let size = match detector {
            Detector::Its => 0.5,
            Detector::Tof => 2.5,
            _ => 1.2,
        };
        let [r, g, b, a] = scene::detector_colour(detector);
        let Ok(mesh) = Sphere::new(size).mesh().ico(0) else {
            continue;
        };
        let mesh = meshes.add(mesh);
        let material = materials.add(StandardMaterial {
            base_color: Color::linear_rgba(r, g, b, a),
            unlit: true,
            ..default()
        });
        let batch: Vec<_> = scene
            .hits
            .iter()
            .filter(|h| h.detector == detector)
            .map(|h| {
                let [x, y, z] = h.position_cm;
                (
                    Mesh3d(mesh.clone()),
                    MeshMaterial3d(material.clone()),
                    Transform::from_xyz(x, y, z),
                    SceneItem,
                )
            })
            .collect();
        commands.spawn_batch(batch);
    }

    // All tracks in one line mesh with per-vertex colours.
    let mut positions: Vec<[f32; 3]> = Vec::new();
    let mut colours: Vec<[f32; 4]> = Vec::new();
    for line in &scene.tracks {
        for w in line.points_cm.windows(2) {
            positions.extend([w[0], w[1]]);
            colours.extend([line.colour, line.colour]);
        }
    }
    if !positions.is_empty() {
        let mut mesh = Mesh::new(PrimitiveTopology::LineList, RenderAssetUsages::RENDER_WORLD);
        mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
        mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, colours);
        commands.spawn((
            Mesh3d(meshes.add(mesh)),
            MeshMaterial3d(materials.add(StandardMaterial {
                base_color: Color::WHITE,
                unlit: true,
                ..default()
            })),
            Transform::default(),
            SceneItem,
        ));
    }
}

/// The barrel's layers as outlines: rings at both ends and at z = 0, and a few staves.
fn draw_geometry(mut gizmos: Gizmos, display: Res<Display>) {
    let g = &display.geometry;
    let mut cylinders: Vec<(f32, f32, Color)> = g
        .its
        .layers
        .iter()
        .map(|l| {
            (
                l.radius_cm as f32,
                l.half_length_cm as f32,
                Color::srgba(1.0, 0.6, 0.2, 0.35),
            )
        })
        .collect();
    cylinders.push((
        g.tpc.inner_radius_cm as f32,
        g.tpc.half_length_cm as f32,
        Color::srgba(0.3, 0.7, 1.0, 0.25),
    ));
    cylinders.push((
        g.tpc.outer_radius_cm as f32,
        g.tpc.half_length_cm as f32,
        Color::srgba(0.3, 0.7, 1.0, 0.25),
    ));
    cylinders.push((
        g.tof.inner_radius_cm as f32,
        g.tof.half_length_cm as f32,
        Color::srgba(0.9, 0.3, 0.8, 0.25),
    ));
    for (r, half, colour) in cylinders {
        for z in [-half, 0.0, half] {
            gizmos
                .circle(Isometry3d::from_translation(Vec3::Z * z), r, colour)
                .resolution(96);
        }
        for k in 0..8 {
            let phi = k as f32 * std::f32::consts::TAU / 8.0;
            let (x, y) = (r * phi.cos(), r * phi.sin());
            gizmos.line(Vec3::new(x, y, -half), Vec3::new(x, y, half), colour);
        }
    }
    // TOF sector boundaries in the end view.
    for k in 0..g.tof.sectors {
        let phi = k as f32 * std::f32::consts::TAU / g.tof.sectors as f32;
        let (c, s) = (phi.cos(), phi.sin());
        let (r0, r1) = (g.tof.inner_radius_cm as f32, g.tof.outer_radius_cm as f32);
        gizmos.line(
            Vec3::new(r0 * c, r0 * s, 0.0),
            Vec3::new(r1 * c, r1 * s, 0.0),
            Color::srgba(0.9, 0.3, 0.8, 0.4),
        );
    }
}

fn camera_controls(
    mut orbit: ResMut<Orbit>,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut camera: Query<&mut Transform, With<Camera3d>>,
    mut egui: EguiContexts,
) {
    let over_panel = egui
        .ctx_mut()
        .is_ok_and(|ctx| ctx.egui_wants_pointer_input());
    if !over_panel {
        if buttons.pressed(MouseButton::Left) {
            orbit.yaw -= motion.delta.x * 0.005;
            orbit.pitch = (orbit.pitch + motion.delta.y * 0.005).clamp(-1.5, 1.5);
        }
        if buttons.pressed(MouseButton::Right) {
            let rotation = Quat::from_euler(EulerRot::YXZ, orbit.yaw, -orbit.pitch, 0.0);
            let pan = rotation
                * Vec3::new(-motion.delta.x, motion.delta.y, 0.0)
                * orbit.distance
                * 0.0015;
            orbit.focus += pan;
        }
        orbit.distance = (orbit.distance * (1.0 - scroll.delta.y * 0.1)).clamp(5.0, 10_000.0);
    }
    let rotation = Quat::from_euler(EulerRot::YXZ, orbit.yaw, -orbit.pitch, 0.0);
    for mut transform in &mut camera {
        transform.translation = orbit.focus + rotation * Vec3::Z * orbit.distance;
        transform.look_at(orbit.focus, Vec3::Y);
    }
}

fn keyboard(
    keys: Res<ButtonInput<KeyCode>>,
    mut display: ResMut<Display>,
    mut orbit: ResMut<Orbit>,
    mut commands: Commands,
) {
    if keys.just_pressed(KeyCode::KeyN) || keys.just_pressed(KeyCode::ArrowRight) {
        let next = display.event_id + 1;
        display.go_to(next);
    }
    if keys.just_pressed(KeyCode::KeyP) || keys.just_pressed(KeyCode::ArrowLeft) {
        let previous = display.event_id.saturating_sub(1);
        display.go_to(previous);
    }
    for (key, view) in [
        (KeyCode::Digit1, View::ThreeD),
        (KeyCode::Digit2, View::RPhi),
        (KeyCode::Digit3, View::RZ),
    ] {
        if keys.just_pressed(key) {
            (orbit.yaw, orbit.pitch) = view.angles();
            orbit.focus = Vec3::ZERO;
        }
    }
    if keys.just_pressed(KeyCode::F12) {
        let path = format!(
            "alyx-run{}-event{}.png",
            display.event.header.run, display.event.header.event_number
        );
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(path));
    }
}

fn panel(mut contexts: EguiContexts, mut display: ResMut<Display>) -> Result {
    let ctx = contexts.ctx_mut()?;
    egui::Window::new("ALYX")
        .default_pos([10.0, 10.0])
        .default_width(260.0)
        .show(ctx, |ui| {
            let h = &display.event.header;
            ui.heading(format!("run {} · event {}", h.run, h.event_number));
            if h.sqrt_s_gev.is_finite() {
                ui.label(format!("{} · √s = {} GeV", h.system.as_str(), h.sqrt_s_gev));
            }
            ui.label(format!(
                "{} tracks · {} hits · {} muons",
                display.event.tracks.len(),
                display.event.hits.len(),
                display.event.muons.len()
            ));
            ui.label(format!(
                "drawn: {} tracks, {} of {} hits",
                display.shown_tracks, display.shown_hits, display.passing_hits
            ));
            ui.separator();
            let before = display.cuts.clone();
            ui.add(egui::Slider::new(&mut display.cuts.pt_min_gev, 0.0..=5.0).text("pT min (GeV)"));
            let mut eta = display.cuts.eta_max.min(2.0);
            ui.add(egui::Slider::new(&mut eta, 0.1..=2.0).text("|η| max"));
            display.cuts.eta_max = if eta >= 2.0 { f64::INFINITY } else { eta };
            ui.horizontal(|ui| {
                for (i, name) in ["ITS", "TPC", "TOF", "other"].iter().enumerate() {
                    ui.checkbox(&mut display.cuts.detectors[i], *name);
                }
            });
            if display.cuts != before {
                display.dirty = true;
            }
            ui.separator();
            ui.horizontal(|ui| {
                if ui.button("◀ previous").clicked() {
                    let id = display.event_id.saturating_sub(1);
                    display.go_to(id);
                }
                if ui.button("next ▶").clicked() {
                    let id = display.event_id + 1;
                    display.go_to(id);
                }
            });
            if let Some(message) = &display.message {
                ui.colored_label(egui::Color32::LIGHT_RED, message);
            }
        });
    Ok(())
}

fn screenshot(
    mut commands: Commands,
    job: Option<ResMut<ScreenshotJob>>,
    status: Res<PipelineStatus>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(mut job) = job else { return };
    if job.requested {
        return;
    }
    let waiting = status.0.0.load(Ordering::Relaxed);
    let total = status.0.1.load(Ordering::Relaxed);
    job.ready_frames = if waiting == 0 && total > 0 {
        job.ready_frames + 1
    } else {
        0
    };
    if job.ready_frames < 5 {
        return;
    }
    let Some(target) = job.target.clone() else {
        exit.write(AppExit::error());
        return;
    };
    job.requested = true;
    let path = job.path.clone();
    commands
        .spawn(Screenshot::image(target))
        .observe(save_to_disk(path))
        .observe(
            |_: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                exit.write(AppExit::Success);
            },
        );
}

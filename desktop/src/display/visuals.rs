//! What the event display draws and how the user moves around it: the camera (on a window or,
//! headless, into an image), hit batches given the mesh of their level of detail, all tracks in
//! one line mesh (growing during the animation), the detector as semi-transparent shells with
//! outlines, physics objects (jets as cones, calorimeter towers, missing energy, vertices,
//! leptons), the picked item's highlight, mouse and keyboard controls, and screenshots.

use std::f32::consts::{PI, TAU};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alyx_core::physics::FourMomentum;
use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::render_resource::{PipelineCache, TextureFormat, TextureUsages};
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::render::view::{Msaa, NoIndirectDrawing};
use bevy::window::PrimaryWindow;

use crate::display::instancing::HitBatch;
use crate::display::model::{
    Animation, Display, DisplaySystems, Orbit, PickRay, ScreenshotJob, View, ViewOptions, Viewport,
};
use crate::display::scene::{HitLod, Picked};

/// Render the 3D view into an image of this size instead of a window (screenshots, benchmarks).
#[derive(Resource, Clone, Debug)]
pub struct Offscreen {
    pub size: (u32, u32),
    pub image: Option<Handle<Image>>,
}

/// Pipelines still compiling, seen from the main world (shaders compile in the background; a
/// frame drawn before they are done misses whatever they draw).
#[derive(Resource, Clone, Default)]
pub struct PipelineStatus(Arc<(AtomicUsize, AtomicUsize)>);

impl PipelineStatus {
    /// Every pipeline asked for so far is compiled.
    pub fn ready(&self) -> bool {
        self.0.0.load(Ordering::Relaxed) == 0 && self.0.1.load(Ordering::Relaxed) > 0
    }
}

fn pipeline_status(cache: Res<PipelineCache>, status: Res<PipelineStatus>) {
    status
        .0
        .0
        .store(cache.waiting_pipelines().count(), Ordering::Relaxed);
    status
        .0
        .1
        .store(cache.pipelines().count(), Ordering::Relaxed);
}

pub struct VisualsPlugin;

impl Plugin for VisualsPlugin {
    fn build(&self, app: &mut App) {
        let status = PipelineStatus::default();
        app.insert_resource(ClearColor(Color::srgb(0.02, 0.02, 0.04)))
            .insert_resource(status.clone())
            .add_systems(Startup, (setup_camera, setup_assets))
            .add_systems(
                Update,
                (
                    (camera_controls, camera_projection, click_to_pick)
                        .chain()
                        .before(DisplaySystems::Logic),
                    (
                        viewport_size,
                        hit_meshes,
                        track_mesh,
                        geometry,
                        objects,
                        draw_outlines,
                        draw_objects,
                        draw_picked,
                        draw_scale,
                        screenshot,
                    )
                        .after(DisplaySystems::Logic),
                ),
            );
        if let Some(render) = app.get_sub_app_mut(bevy::render::RenderApp) {
            render
                .insert_resource(status)
                .add_systems(bevy::render::Render, pipeline_status);
        }
    }
}

/// Meshes and materials shared by every frame.
#[derive(Resource)]
struct Assets3d {
    /// Per level of detail: point sprite, low-poly, icosphere (unit radius).
    hit_meshes: [Handle<Mesh>; 3],
    shells: [Handle<StandardMaterial>; 3],
    jets: Handle<StandardMaterial>,
    towers: Handle<StandardMaterial>,
    track_mesh: Handle<Mesh>,
}

fn setup_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let mesh = |m: Result<Mesh, _>, fallback: Mesh| m.unwrap_or(fallback);
    let point = Rectangle::new(2.0, 2.0).mesh().build();
    let hit_meshes = [
        meshes.add(point.clone()),
        meshes.add(mesh(Sphere::new(1.0).mesh().ico(0), point.clone())),
        meshes.add(mesh(Sphere::new(1.0).mesh().ico(2), point)),
    ];
    let unlit = |colour: Color, blend: bool| StandardMaterial {
        base_color: colour,
        unlit: true,
        alpha_mode: if blend {
            AlphaMode::Blend
        } else {
            AlphaMode::Opaque
        },
        double_sided: blend,
        cull_mode: if blend {
            None
        } else {
            Some(bevy::render::render_resource::Face::Back)
        },
        ..default()
    };
    let shells = [
        materials.add(unlit(Color::srgba(1.0, 0.6, 0.2, 0.05), true)),
        materials.add(unlit(Color::srgba(0.3, 0.7, 1.0, 0.025), true)),
        materials.add(unlit(Color::srgba(0.9, 0.3, 0.8, 0.02), true)),
    ];
    let track_mesh = meshes.add(Mesh::new(
        PrimitiveTopology::LineList,
        RenderAssetUsages::default(),
    ));
    let lines = materials.add(unlit(Color::WHITE, false));
    commands.spawn((
        Mesh3d(track_mesh.clone()),
        MeshMaterial3d(lines.clone()),
        Transform::default(),
        bevy::camera::visibility::NoFrustumCulling,
    ));
    commands.insert_resource(Assets3d {
        hit_meshes,
        shells,
        jets: materials.add(unlit(Color::srgba(1.0, 0.85, 0.2, 0.22), true)),
        towers: materials.add(unlit(Color::srgba(0.2, 1.0, 0.5, 0.55), true)),
        track_mesh,
    });
}

fn setup_camera(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    offscreen: Option<ResMut<Offscreen>>,
    orbit: Res<Orbit>,
) {
    let camera = (
        Camera3d::default(),
        Tonemapping::Reinhard,
        // Multisampling costs 3–6× in the software renderer; lines stay crisp without it.
        Msaa::Off,
        // Hit batches are drawn with direct (instanced) draw calls.
        NoIndirectDrawing,
        projection(&orbit, Viewport::default().fov_y),
        orbit.transform(),
    );
    match offscreen {
        Some(mut offscreen) => {
            let (w, h) = offscreen.size;
            let mut image = Image::new_target_texture(w, h, TextureFormat::Rgba8UnormSrgb, None);
            image.texture_descriptor.usage |= TextureUsages::COPY_SRC;
            let handle = images.add(image);
            offscreen.image = Some(handle.clone());
            commands.spawn((camera, RenderTarget::Image(handle.into())));
        }
        None => {
            commands.spawn(camera);
        }
    }
}

/// The camera's projection for `orbit`: perspective in the 3D view, orthographic in the
/// projections (and in 3D when asked), as tall as the perspective view is at the focus.
fn projection(orbit: &Orbit, fov_y: f32) -> Projection {
    if orbit.is_orthographic() {
        Projection::Orthographic(OrthographicProjection {
            near: -20_000.0,
            far: 20_000.0,
            scaling_mode: bevy::camera::ScalingMode::FixedVertical {
                viewport_height: orbit.view_height_cm(fov_y),
            },
            ..OrthographicProjection::default_3d()
        })
    } else {
        Projection::Perspective(PerspectiveProjection {
            fov: fov_y,
            far: 20_000.0,
            near: 1.0,
            ..default()
        })
    }
}

/// Keeps the camera's projection in step with the orbit (the view, the zoom).
fn camera_projection(
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    mut cameras: Query<&mut Projection, With<Camera3d>>,
) {
    if !orbit.is_changed() {
        return;
    }
    for mut p in &mut cameras {
        *p = projection(&orbit, viewport.fov_y);
    }
}

fn viewport_size(cameras: Query<(&Camera, &Projection)>, mut viewport: ResMut<Viewport>) {
    for (camera, projection) in &cameras {
        let Some(size) = camera.logical_viewport_size() else {
            continue;
        };
        let fov_y = match projection {
            Projection::Perspective(p) => p.fov,
            _ => viewport.fov_y,
        };
        let new = Viewport {
            height_px: size.y.max(1.0),
            fov_y,
        };
        if *viewport != new {
            *viewport = new;
        }
    }
}

/// Gives each hit batch the mesh of the current level of detail.
fn hit_meshes(
    mut commands: Commands,
    display: Res<Display>,
    assets: Option<Res<Assets3d>>,
    batches: Query<(Entity, Option<&Mesh3d>), With<HitBatch>>,
) {
    let Some(assets) = assets else { return };
    let wanted = &assets.hit_meshes[match display.lod {
        HitLod::Point => 0,
        HitLod::LowPoly => 1,
        HitLod::Icosphere => 2,
    }];
    for (entity, mesh) in &batches {
        if mesh.is_none_or(|m| m.0 != *wanted) {
            commands.entity(entity).insert(Mesh3d(wanted.clone()));
        }
    }
}

/// All tracks as one line mesh with per-vertex colours; during the animation each track is
/// drawn up to where the particle has got to.
fn track_mesh(
    display: Res<Display>,
    animation: Res<Animation>,
    assets: Option<Res<Assets3d>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut last: Local<Option<(u64, Option<f32>)>>,
) {
    let Some(assets) = assets else { return };
    let key = (display.generation, animation.t_ns);
    if *last == Some(key) {
        return;
    }
    *last = Some(key);
    let mut positions: Vec<[f32; 3]> = Vec::new();
    let mut colours: Vec<[f32; 4]> = Vec::new();
    for line in &display.scene.tracks {
        let points = match animation.t_ns {
            Some(t) => line.until(t),
            None => line.points_cm.clone(),
        };
        for w in points.windows(2) {
            positions.extend([w[0], w[1]]);
            colours.extend([line.colour, line.colour]);
        }
    }
    if let Some(mut mesh) = meshes.get_mut(&assets.track_mesh) {
        mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
        mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, colours);
    }
}

#[derive(Component)]
struct Shell;

/// The φ range drawn: all of it, or the lower half when the detector is cut away.
fn phi_range(cut_away: bool) -> (f32, f32) {
    if cut_away { (PI, TAU) } else { (0.0, TAU) }
}

/// Whether the upper half of the shells is cut away: in the 3D view only (a projection
/// shows the whole detector, flat).
fn cut_away(options: &ViewOptions, orbit: &Orbit) -> bool {
    options.cut_away && !orbit.view.is_projection()
}

/// Where a point of the event is drawn: as it is, or folded into the ρ-z plane.
fn placed(orbit: &Orbit, p: Vec3) -> Vec3 {
    if orbit.view == View::RZ {
        Vec3::from(crate::display::scene::fold_rho_z(p.to_array()))
    } else {
        p
    }
}

/// The detector as semi-transparent shells, rebuilt when visibility or the cut-away changes.
fn geometry(
    mut commands: Commands,
    display: Res<Display>,
    options: Res<ViewOptions>,
    assets: Option<Res<Assets3d>>,
    shells: Query<Entity, With<Shell>>,
    orbit: Res<Orbit>,
    files: Option<Res<crate::display::geometry::Geometry>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut last: Local<Option<([bool; 3], bool, View)>>,
) {
    let Some(assets) = assets else { return };
    // A detector from a geometry file replaces the built-in barrel.
    let built_in = files.is_none_or(|f| f.files.is_empty());
    let key = (
        options.geometry.map(|g| g && built_in),
        options.cut_away,
        orbit.view,
    );
    if *last == Some(key) {
        return;
    }
    *last = Some(key);
    for entity in &shells {
        commands.entity(entity).despawn();
    }
    // The side view folds space into a plane, where a shell is no surface: its outline shows.
    if orbit.view == View::RZ || !built_in {
        return;
    }
    let (phi0, phi1) = phi_range(cut_away(&options, &orbit));
    // One shell per detector (its outer layer): every layer filled costs ~4× the frame time in
    // a software renderer and clutters the view; the outlines show each layer.
    let mut outer: [Option<(f32, f32)>; 3] = [None; 3];
    for (i, layer) in layers(&display) {
        if outer[i].is_none_or(|(r, _)| layer.0 > r) {
            outer[i] = Some(layer);
        }
    }
    for (i, (r, half)) in outer
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l?)))
    {
        if !options.geometry[i] {
            continue;
        }
        commands.spawn((
            Mesh3d(meshes.add(tube(r, half, phi0, phi1))),
            MeshMaterial3d(assets.shells[i].clone()),
            Transform::default(),
            Shell,
        ));
    }
}

/// (detector index: 0 ITS, 1 TPC, 2 TOF; (radius, half length) in cm) of every drawn layer.
fn layers(display: &Display) -> Vec<(usize, (f32, f32))> {
    let g = &display.geometry;
    let mut out: Vec<(usize, (f32, f32))> = g
        .its
        .layers
        .iter()
        .map(|l| (0, (l.radius_cm as f32, l.half_length_cm as f32)))
        .collect();
    let tpc = g.tpc.half_length_cm as f32;
    out.push((1, (g.tpc.inner_radius_cm as f32, tpc)));
    out.push((1, (g.tpc.outer_radius_cm as f32, tpc)));
    let tof = g.tof.half_length_cm as f32;
    out.push((2, (g.tof.inner_radius_cm as f32, tof)));
    out.push((2, (g.tof.outer_radius_cm as f32, tof)));
    out
}

/// The side of a cylinder of radius `r` along z from −`half` to `half`, between `phi0` and
/// `phi1`.
fn tube(r: f32, half: f32, phi0: f32, phi1: f32) -> Mesh {
    let segments = 96u32;
    let mut positions = Vec::new();
    let mut normals = Vec::new();
    for k in 0..=segments {
        let phi = phi0 + (phi1 - phi0) * k as f32 / segments as f32;
        let (s, c) = phi.sin_cos();
        for z in [-half, half] {
            positions.push([r * c, r * s, z]);
            normals.push([c, s, 0.0]);
        }
    }
    let mut indices = Vec::new();
    for k in 0..segments {
        let a = 2 * k;
        indices.extend([a, a + 2, a + 1, a + 1, a + 2, a + 3]);
    }
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, normals)
    .with_inserted_indices(Indices::U32(indices))
}

fn draw_outlines(
    mut gizmos: Gizmos,
    display: Res<Display>,
    options: Res<ViewOptions>,
    orbit: Res<Orbit>,
    files: Option<Res<crate::display::geometry::Geometry>>,
) {
    if files.is_some_and(|f| !f.files.is_empty()) {
        return;
    }
    let colours = [
        Color::srgba(1.0, 0.6, 0.2, 0.35),
        Color::srgba(0.3, 0.7, 1.0, 0.25),
        Color::srgba(0.9, 0.3, 0.8, 0.25),
    ];
    let g = &display.geometry;
    if orbit.view == View::RZ {
        // Each layer as the lines z = −half…half at ±r, each detector closed at its ends.
        for (i, (r, half)) in layers(&display) {
            if options.geometry[i] {
                for sign in [1.0, -1.0] {
                    let y = sign * r;
                    gizmos.line(
                        Vec3::new(0.0, y, -half),
                        Vec3::new(0.0, y, half),
                        colours[i],
                    );
                }
            }
        }
        let ends = [
            (
                1,
                g.tpc.inner_radius_cm,
                g.tpc.outer_radius_cm,
                g.tpc.half_length_cm,
            ),
            (
                2,
                g.tof.inner_radius_cm,
                g.tof.outer_radius_cm,
                g.tof.half_length_cm,
            ),
        ];
        for (i, r0, r1, half) in ends {
            if !options.geometry[i] {
                continue;
            }
            let (r0, r1, half) = (r0 as f32, r1 as f32, half as f32);
            for (sign, z) in [(1.0, half), (1.0, -half), (-1.0, half), (-1.0, -half)] {
                gizmos.line(
                    Vec3::new(0.0, sign * r0, z),
                    Vec3::new(0.0, sign * r1, z),
                    colours[i],
                );
            }
        }
        // The beam axis.
        gizmos.line(
            Vec3::new(0.0, 0.0, -g.tof.half_length_cm as f32),
            Vec3::new(0.0, 0.0, g.tof.half_length_cm as f32),
            Color::srgba(0.6, 0.6, 0.6, 0.3),
        );
        return;
    }
    let cut = cut_away(&options, &orbit);
    let (phi0, phi1) = phi_range(cut);
    for (i, (r, half)) in layers(&display) {
        if !options.geometry[i] {
            continue;
        }
        // The end view sees the three rings of a layer as one.
        let rings: &[f32] = if orbit.view == View::RPhi {
            &[0.0]
        } else {
            &[-half, 0.0, half]
        };
        for &z in rings {
            gizmos.linestrip(
                (0..=96).map(|k| {
                    let phi = phi0 + (phi1 - phi0) * k as f32 / 96.0;
                    Vec3::new(r * phi.cos(), r * phi.sin(), z)
                }),
                colours[i],
            );
        }
        if orbit.view == View::RPhi {
            continue;
        }
        for k in 0..=8 {
            let phi = phi0 + (phi1 - phi0) * k as f32 / 8.0;
            let (x, y) = (r * phi.cos(), r * phi.sin());
            gizmos.line(Vec3::new(x, y, -half), Vec3::new(x, y, half), colours[i]);
        }
    }
    if options.geometry[2] {
        // TOF sector boundaries in the end view.
        for k in 0..g.tof.sectors {
            let phi = k as f32 * TAU / g.tof.sectors as f32;
            if cut && phi < PI && phi > 0.0 {
                continue;
            }
            let (s, c) = phi.sin_cos();
            let (r0, r1) = (g.tof.inner_radius_cm as f32, g.tof.outer_radius_cm as f32);
            gizmos.line(
                Vec3::new(r0 * c, r0 * s, 0.0),
                Vec3::new(r1 * c, r1 * s, 0.0),
                Color::srgba(0.9, 0.3, 0.8, 0.4),
            );
        }
    }
}

/// The scale bar of the projections: a bar of a round length in cm, in the lower left
/// corner, with its length written above it.
fn draw_scale(
    mut gizmos: Gizmos,
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    cameras: Query<(&Camera, &GlobalTransform), With<Camera3d>>,
) {
    if !orbit.view.is_projection() {
        return;
    }
    let Ok((camera, transform)) = cameras.single() else {
        return;
    };
    let Some(size) = camera.logical_viewport_size() else {
        return;
    };
    let height = orbit.view_height_cm(viewport.fov_y);
    let width = height * size.x / size.y.max(1.0);
    let (right, up) = (transform.right().as_vec3(), transform.up().as_vec3());
    let length = round_length(0.2 * width);
    let colour = Color::srgb(0.85, 0.85, 0.85);
    let start = Vec3::from(orbit.focus) + right * (-0.45 * width) + up * (-0.44 * height);
    let end = start + right * length;
    let tick = up * (0.012 * height);
    gizmos.line(start, end, colour);
    gizmos.line(start - tick, start + tick, colour);
    gizmos.line(end - tick, end + tick, colour);
    let label = format!("{} cm", alyx_core::number::significant(f64::from(length)));
    let glyph = 0.024 * height;
    let mut at = start + up * (0.025 * height);
    for c in label.chars() {
        for &((x0, y0), (x1, y1)) in strokes(c) {
            gizmos.line(
                at + (right * x0 + up * y0) * glyph,
                at + (right * x1 + up * y1) * glyph,
                colour,
            );
        }
        at += right * (0.85 * glyph);
    }
}

/// The largest 1, 2 or 5 × 10ᵏ cm not above `most`.
fn round_length(most: f32) -> f32 {
    let decade = 10f32.powf(most.max(1e-3).log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|l| *l <= most)
        .unwrap_or(decade)
}

/// A character of the scale's label as strokes in a box 0.6 wide and 1 tall: seven-segment
/// digits, `c`, `m` and `.` (what a length in cm needs; no font is loaded for the 3D view).
fn strokes(c: char) -> &'static [((f32, f32), (f32, f32))] {
    const A: ((f32, f32), (f32, f32)) = ((0.0, 1.0), (0.6, 1.0));
    const B: ((f32, f32), (f32, f32)) = ((0.6, 1.0), (0.6, 0.5));
    const C: ((f32, f32), (f32, f32)) = ((0.6, 0.5), (0.6, 0.0));
    const D: ((f32, f32), (f32, f32)) = ((0.0, 0.0), (0.6, 0.0));
    const E: ((f32, f32), (f32, f32)) = ((0.0, 0.0), (0.0, 0.5));
    const F: ((f32, f32), (f32, f32)) = ((0.0, 0.5), (0.0, 1.0));
    const G: ((f32, f32), (f32, f32)) = ((0.0, 0.5), (0.6, 0.5));
    match c {
        '0' => &[A, B, C, D, E, F],
        '1' => &[B, C],
        '2' => &[A, B, G, E, D],
        '3' => &[A, B, G, C, D],
        '4' => &[F, G, B, C],
        '5' => &[A, F, G, C, D],
        '6' => &[A, F, G, E, D, C],
        '7' => &[A, B, C],
        '8' => &[A, B, C, D, E, F, G],
        '9' => &[A, B, C, D, F, G],
        'c' => &[G, E, D],
        'm' => &[G, E, C, ((0.3, 0.0), (0.3, 0.5))],
        '.' => &[((0.25, 0.0), (0.35, 0.0))],
        _ => &[],
    }
}

#[derive(Component)]
struct ObjectItem;

/// Radius of the (notional) calorimeter the cluster towers stand on, cm.
const CALO_RADIUS_CM: f32 = 420.0;

/// The event's primary vertex (the origin where it was not measured).
fn primary_vertex(event: &alyx_core::model::CollisionEvent) -> Vec3 {
    Vec3::from(
        event
            .header
            .vertex_cm
            .map(|v| if v.is_finite() { v as f32 } else { 0.0 }),
    )
}

fn unit_direction(eta: f64, phi: f64) -> Option<Vec3> {
    let theta = 2.0 * (-eta).exp().atan();
    let d = Vec3::new(
        (theta.sin() * phi.cos()) as f32,
        (theta.sin() * phi.sin()) as f32,
        theta.cos() as f32,
    );
    d.is_finite().then_some(d)
}

/// Jets as cones (length from the energy, opening from the cone size) and clusters as towers,
/// respawned when the scene changes.
fn objects(
    mut commands: Commands,
    display: Res<Display>,
    options: Res<ViewOptions>,
    assets: Option<Res<Assets3d>>,
    items: Query<Entity, With<ObjectItem>>,
    orbit: Res<Orbit>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut last: Local<Option<(u64, bool, View)>>,
) {
    let Some(assets) = assets else { return };
    let key = (display.generation, options.objects, orbit.view);
    if *last == Some(key) {
        return;
    }
    *last = Some(key);
    for entity in &items {
        commands.entity(entity).despawn();
    }
    if !options.objects {
        return;
    }
    let event = &display.event;
    let vertex = placed(&orbit, primary_vertex(event));
    for jet in &event.jets {
        let Some(d) = unit_direction(jet.eta, jet.phi) else {
            continue;
        };
        let d = placed(&orbit, d);
        let energy = if jet.e_gev.is_finite() {
            jet.e_gev
        } else {
            jet.pt_gev
        } as f32;
        let length = (energy * 3.0).clamp(60.0, 450.0);
        let r = if jet.cone_r.is_finite() && jet.cone_r > 0.0 {
            jet.cone_r as f32
        } else {
            0.4
        };
        // Bevy's cone points along +y with its tip at +height/2: turn the tip to the vertex.
        commands.spawn((
            Mesh3d(meshes.add(Cone {
                radius: length * r.tan(),
                height: length,
            })),
            MeshMaterial3d(assets.jets.clone()),
            Transform::from_translation(vertex + d * length / 2.0)
                .with_rotation(Quat::from_rotation_arc(Vec3::Y, -d)),
            ObjectItem,
        ));
    }
    for cluster in &event.clusters {
        // At the cell the file places it in, else at η, φ on a nominal calorimeter radius.
        let position = Vec3::from(cluster.position_cm.map(|c| c as f32));
        let (d, base) = if position.is_finite() && position.length() > 1.0 {
            (position.normalize(), position.length())
        } else if let Some(d) = unit_direction(cluster.eta, cluster.phi) {
            (d, CALO_RADIUS_CM)
        } else {
            continue;
        };
        let d = placed(&orbit, d);
        let height = ((cluster.energy_gev as f32).max(0.0) * 4.0).clamp(2.0, 250.0);
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(8.0, 8.0, height))),
            MeshMaterial3d(assets.towers.clone()),
            Transform::from_translation(d * (base + height / 2.0))
                .with_rotation(Quat::from_rotation_arc(Vec3::Z, d)),
            ObjectItem,
        ));
    }
}

/// Leptons and photons as straight lines from the vertex, vertices as markers, missing
/// transverse energy as an arrow in the transverse plane.
fn draw_objects(
    mut gizmos: Gizmos,
    display: Res<Display>,
    options: Res<ViewOptions>,
    orbit: Res<Orbit>,
) {
    if !options.objects {
        return;
    }
    let event = &display.event;
    let vertex = placed(&orbit, primary_vertex(event));
    let kinds = [
        (&event.muons, 700.0, Color::srgb(1.0, 0.55, 0.0)),
        (&event.electrons, 400.0, Color::srgb(0.2, 1.0, 0.4)),
        (&event.photons, 400.0, Color::srgb(1.0, 1.0, 0.3)),
    ];
    for (objects, length, colour) in kinds {
        for o in objects {
            let direction = if o.px_gev.is_finite() && o.py_gev.is_finite() && o.pz_gev.is_finite()
            {
                let p = FourMomentum::from_p3_mass(o.px_gev, o.py_gev, o.pz_gev, 0.0);
                unit_direction(p.eta(), p.phi())
            } else {
                unit_direction(o.eta, o.phi)
            };
            if let Some(d) = direction {
                gizmos.line(vertex, vertex + placed(&orbit, d) * length, colour);
            }
        }
    }
    for v in &event.vertices {
        let p = placed(&orbit, Vec3::from(v.position_cm.map(|x| x as f32)));
        if p.is_finite() {
            gizmos.sphere(Isometry3d::from_translation(p), 1.5, Color::WHITE);
        }
    }
    // Missing energy is transverse: the side view has no direction for it.
    if let Some(met) = &event.met
        && orbit.view != View::RZ
        && met.pt_gev.is_finite()
        && met.phi.is_finite()
    {
        let length = (met.pt_gev as f32 * 4.0).clamp(30.0, 500.0);
        let d = Vec3::new(met.phi.cos() as f32, met.phi.sin() as f32, 0.0);
        gizmos
            .arrow(vertex, vertex + d * length, Color::srgb(1.0, 0.2, 0.2))
            .with_tip_length(length * 0.12);
    }
}

fn draw_picked(mut gizmos: Gizmos, display: Res<Display>) {
    let highlight = Color::srgb(1.0, 1.0, 0.2);
    match display.picked {
        Some(Picked::Track(t)) => {
            if let Some(line) = display.scene.tracks.iter().find(|l| l.track == t) {
                gizmos.linestrip(line.points_cm.iter().map(|p| Vec3::from(*p)), highlight);
                for p in line.points_cm.iter().step_by(6) {
                    gizmos.sphere(Isometry3d::from_translation(Vec3::from(*p)), 0.8, highlight);
                }
            }
        }
        Some(Picked::Hit(h)) => {
            // Where the scene drew it (folded in the side view).
            if let Some(hit) = display.scene.hits.iter().find(|x| x.hit == h) {
                let p = Vec3::from(hit.position_cm);
                let r = crate::display::model::hit_radius_cm(hit.detector) * 3.0;
                gizmos.sphere(Isometry3d::from_translation(p), r, highlight);
            }
        }
        None => {}
    }
}

/// Left drag orbits, right drag pans, the wheel zooms; arrows orbit, +/− zoom, Home resets.
fn camera_controls(
    mut orbit: ResMut<Orbit>,
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    keys: Option<Res<ButtonInput<KeyCode>>>,
    motion: Option<Res<AccumulatedMouseMotion>>,
    scroll: Option<Res<AccumulatedMouseScroll>>,
    time: Res<Time>,
    mut camera: Query<&mut Transform, With<Camera3d>>,
    pointer: Option<Res<crate::display::model::PointerOverUi>>,
) {
    let over_ui = pointer.is_some_and(|p| p.0);
    let mut o = *orbit;
    if let (Some(buttons), Some(motion), Some(scroll)) = (buttons, motion, scroll)
        && !over_ui
    {
        // A projection is flat: a left drag pans it instead of turning it.
        let flat = o.view.is_projection();
        if buttons.pressed(MouseButton::Left) && !flat {
            o.yaw -= motion.delta.x * 0.005;
            o.pitch = (o.pitch + motion.delta.y * 0.005).clamp(-1.5, 1.5);
        }
        if buttons.pressed(MouseButton::Right) || (flat && buttons.pressed(MouseButton::Left)) {
            let pan = o.rotation()
                * Vec3::new(-motion.delta.x, motion.delta.y, 0.0)
                * o.distance
                * 0.0015;
            o.focus = (Vec3::from(o.focus) + pan).to_array();
        }
        o.distance *= 1.0 - scroll.delta.y * 0.1;
    }
    if let Some(keys) = keys {
        let dt = time.delta_secs();
        let axis = |neg: KeyCode, pos: KeyCode| {
            f32::from(u8::from(keys.pressed(pos))) - f32::from(u8::from(keys.pressed(neg)))
        };
        if !o.view.is_projection() {
            o.yaw += axis(KeyCode::ArrowRight, KeyCode::ArrowLeft) * 1.5 * dt;
            o.pitch =
                (o.pitch + axis(KeyCode::ArrowDown, KeyCode::ArrowUp) * 1.5 * dt).clamp(-1.5, 1.5);
        }
        o.distance *= 1.0 - axis(KeyCode::Minus, KeyCode::Equal) * 1.5 * dt;
        if keys.just_pressed(KeyCode::Home) {
            o = Orbit {
                orthographic: o.orthographic,
                ..Orbit::view(o.view)
            };
        }
    }
    o.distance = o.distance.clamp(5.0, 10_000.0);
    if o != *orbit {
        *orbit = o;
    }
    for mut transform in &mut camera {
        *transform = orbit.transform();
    }
}

/// A left click that did not drag picks along the ray under the cursor.
fn click_to_pick(
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    pointer: Option<Res<crate::display::model::PointerOverUi>>,
    mut pressed_at: Local<Option<Vec2>>,
    mut rays: MessageWriter<PickRay>,
) {
    let Some(buttons) = buttons else { return };
    let Ok(window) = windows.single() else { return };
    let cursor = window.cursor_position();
    if buttons.just_pressed(MouseButton::Left) {
        *pressed_at = if pointer.is_some_and(|p| p.0) {
            None
        } else {
            cursor
        };
    }
    if !buttons.just_released(MouseButton::Left) {
        return;
    }
    let (Some(start), Some(end)) = (pressed_at.take(), cursor) else {
        return;
    };
    if start.distance(end) > 4.0 {
        return;
    }
    let Ok((camera, transform)) = cameras.single() else {
        return;
    };
    if let Ok(ray) = camera.viewport_to_world(transform, end) {
        rays.write(PickRay {
            origin: ray.origin,
            direction: *ray.direction,
            tolerance_cm: 8.0 / viewport.pixels_per_cm(orbit.distance),
        });
    }
}

/// Saves the window to a PNG named after the event (the UI's Save screenshot, F12).
pub fn save_window_screenshot(commands: &mut Commands, display: &mut Display) {
    let h = &display.event.header;
    let name = format!("alyx-run{}-event{}.png", h.run, h.event_number);
    let path = std::env::current_dir().map_or_else(|_| PathBuf::from(&name), |d| d.join(&name));
    display.notice = Some(format!("screenshot saved to {}", path.display()));
    commands
        .spawn(Screenshot::primary_window())
        .observe(save_to_disk(path));
}

fn screenshot(
    mut commands: Commands,
    job: Option<ResMut<ScreenshotJob>>,
    offscreen: Option<Res<Offscreen>>,
    status: Res<PipelineStatus>,
    display: Res<Display>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(mut job) = job else { return };
    if !job.frame(status.ready() && !display.is_loading()) {
        return;
    }
    let Some(target) = offscreen.and_then(|o| o.image.clone()) else {
        error!("--screenshot needs an offscreen target");
        exit.write(AppExit::error());
        return;
    };
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

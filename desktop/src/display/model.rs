//! The display's state — the event on display and its scene, the camera's orbit and view, the
//! options, the animation clock — and the systems that keep it: reading `ShowEvent`s, level of
//! detail from the zoom, scene rebuilds, the animation, picking.

use std::path::PathBuf;
use std::sync::Arc;

use alyx_core::DetectorGeometry;
use alyx_core::model::{CollisionEvent, Detector};
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use serde::{Deserialize, Serialize};

use crate::display::instancing::{HitBatch, HitInstanceData};
use crate::display::scene::{self, Cuts, HitLod, Picked, Scene, Style};
use crate::{DisplayNotice, FollowView, OpenDataset, ShowEvent, ShowFetched, Viewpoint};

/// Headless screenshot: once the pipelines are compiled, save the offscreen image and exit.
#[derive(Resource, Clone, Debug)]
pub struct ScreenshotJob {
    pub path: PathBuf,
    ready_frames: u32,
    requested: bool,
}

impl ScreenshotJob {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            ready_frames: 0,
            requested: false,
        }
    }

    /// Puts the picture off: something it should show is still on its way (a histogram
    /// filling, a fit running).
    pub fn hold(&mut self) {
        self.ready_frames = 0;
    }

    /// Counts a frame drawn, `ready` when nothing it should show is still on its way: true,
    /// once, after five ready frames in a row — the moment to take the picture.
    pub fn frame(&mut self, ready: bool) -> bool {
        if self.requested {
            return false;
        }
        self.ready_frames = if ready { self.ready_frames + 1 } else { 0 };
        self.requested = self.ready_frames >= 5;
        self.requested
    }
}

/// Whether the pointer is over a panel (then the camera ignores the mouse).
#[derive(Resource, Default)]
pub struct PointerOverUi(pub bool);

/// The views of the display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    /// Oblique 3D, in perspective (or orthographic, with `Orbit::orthographic`).
    #[default]
    ThreeD,
    /// End view: the r-φ projection, orthographic along the beam axis, so that a hit's
    /// distance from the centre on screen is its radius.
    RPhi,
    /// Side view: the ρ-z projection, each hit and track point drawn at (z, ±r) with the sign
    /// of its hemisphere (y ≥ 0 up), orthographic.
    RZ,
}

impl View {
    /// (yaw, pitch) of the orbit camera around the origin. The side view looks along +x at
    /// the folded plane x = 0, with z to the right and +r up.
    pub fn angles(self) -> (f32, f32) {
        match self {
            Self::ThreeD => (0.75, 0.45),
            Self::RPhi => (0.0, 0.0),
            Self::RZ => (-std::f32::consts::FRAC_PI_2, 0.0),
        }
    }

    /// A flat projection: no orbiting, orthographic, the scale bar shown.
    pub fn is_projection(self) -> bool {
        self != Self::ThreeD
    }

    /// As a number, for the shared workspace's camera list.
    pub fn index(self) -> u8 {
        match self {
            Self::ThreeD => 0,
            Self::RPhi => 1,
            Self::RZ => 2,
        }
    }

    pub fn from_index(i: u8) -> Option<Self> {
        [Self::ThreeD, Self::RPhi, Self::RZ]
            .get(usize::from(i))
            .copied()
    }
}

/// The orbit camera: it looks at `focus` from `distance` cm away, turned by `yaw` about the
/// vertical and tilted by `pitch`. In an orthographic view the distance sets the zoom: the
/// view is as tall as a perspective view's field of view is at that distance.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Orbit {
    pub yaw: f32,
    pub pitch: f32,
    pub distance: f32,
    pub focus: [f32; 3],
    pub view: View,
    /// The 3D view without perspective (the projections are always orthographic).
    pub orthographic: bool,
}

impl Default for Orbit {
    fn default() -> Self {
        Self::view(View::ThreeD)
    }
}

impl Orbit {
    pub fn view(view: View) -> Self {
        let (yaw, pitch) = view.angles();
        Self {
            yaw,
            pitch,
            distance: 1300.0,
            focus: [0.0; 3],
            view,
            orthographic: false,
        }
    }

    /// Whether the camera projects orthographically.
    pub fn is_orthographic(&self) -> bool {
        self.orthographic || self.view.is_projection()
    }

    /// The height of the orthographic view, cm: what a perspective camera with a vertical field
    /// of view `fov_y` sees at the focus.
    pub fn view_height_cm(&self, fov_y: f32) -> f32 {
        2.0 * (fov_y / 2.0).tan() * self.distance
    }

    pub fn rotation(&self) -> Quat {
        Quat::from_euler(EulerRot::YXZ, self.yaw, -self.pitch, 0.0)
    }

    /// The camera as notebook colleagues share it (a [`Viewpoint`]'s encoding).
    pub fn shared(&self) -> Vec<f32> {
        vec![
            self.yaw,
            self.pitch,
            self.distance,
            self.focus[0],
            self.focus[1],
            self.focus[2],
            f32::from(self.view.index()),
            f32::from(u8::from(self.orthographic)),
        ]
    }

    /// A colleague's camera; `None` unless it holds at least six finite numbers and a positive
    /// distance. Older clients send six: a 3D view in perspective.
    pub fn from_shared(camera: &[f32]) -> Option<Self> {
        let [yaw, pitch, distance, x, y, z, rest @ ..] = camera else {
            return None;
        };
        let all_finite = camera.iter().all(|v| v.is_finite());
        if !all_finite || *distance <= 0.0 {
            return None;
        }
        let view = rest
            .first()
            .and_then(|v| View::from_index(*v as u8))
            .unwrap_or(View::ThreeD);
        Some(Self {
            yaw: *yaw,
            pitch: *pitch,
            distance: *distance,
            focus: [*x, *y, *z],
            view,
            orthographic: rest.get(1).is_some_and(|o| *o != 0.0),
        })
    }

    pub fn transform(&self) -> Transform {
        let focus = Vec3::from(self.focus);
        Transform::from_translation(focus + self.rotation() * Vec3::Z * self.distance)
            .looking_at(focus, Vec3::Y)
    }
}

/// How the event is shown; persisted between runs by the settings plugin.
#[derive(Resource, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewOptions {
    pub cuts: Cuts,
    pub style: Style,
    /// Geometry shown: ITS, TPC, TOF.
    pub geometry: [bool; 3],
    /// Cut away the upper half (y > 0) of the detector shells so that the inside shows.
    pub cut_away: bool,
    /// Jets, missing energy, vertices, calorimeter clusters, leptons and photons.
    pub objects: bool,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            cuts: Cuts::default(),
            style: Style::default(),
            geometry: [true; 3],
            cut_away: true,
            objects: true,
        }
    }
}

/// The unfolding animation: hits appear and tracks grow up to `t_ns` after the collision.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct Animation {
    pub playing: bool,
    /// `None`: the whole event.
    pub t_ns: Option<f32>,
    /// How long playing the whole event takes, seconds.
    pub length_s: f32,
}

impl Default for Animation {
    fn default() -> Self {
        Self {
            playing: false,
            t_ns: None,
            length_s: 4.0,
        }
    }
}

/// The size of the 3D view, for turning the zoom into a hit size on screen.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct Viewport {
    pub height_px: f32,
    /// Vertical field of view, radians.
    pub fov_y: f32,
}

impl Default for Viewport {
    fn default() -> Self {
        Self {
            height_px: 800.0,
            fov_y: std::f32::consts::FRAC_PI_4,
        }
    }
}

impl Viewport {
    /// Pixels per cm at `distance` cm from the camera.
    pub fn pixels_per_cm(&self, distance: f32) -> f32 {
        self.height_px / (2.0 * (self.fov_y / 2.0).tan() * distance.max(1e-3))
    }
}

/// A ray to pick along (from a click, or a test).
#[derive(Message, Clone, Copy, Debug)]
pub struct PickRay {
    pub origin: Vec3,
    pub direction: Vec3,
    /// How far from the ray a hit or track may be, cm.
    pub tolerance_cm: f32,
}

/// Radius of a hit's dot per detector, cm: a couple of pixels when the barrel fills the view.
pub fn hit_radius_cm(detector: Detector) -> f32 {
    match detector {
        Detector::Its => 0.5,
        Detector::Tof => 2.5,
        Detector::Tpc | Detector::Other => 1.2,
    }
}

/// Fewest hits the budget draws, however far the camera is.
pub const HIT_BUDGET_FLOOR: usize = 50_000;

/// The event on display and what was built from it.
#[derive(Resource)]
pub struct Display {
    pub event_id: u64,
    pub event: CollisionEvent,
    pub geometry: DetectorGeometry,
    /// The event's named collections (tracks' and foreign hits'), sorted: what the
    /// collection cuts offer.
    pub collections: Vec<String>,
    /// The scene last built (what is drawn and what picking sees).
    pub scene: Arc<Scene>,
    /// Bumped on every rebuild.
    pub generation: u64,
    pub lod: HitLod,
    /// The hit budget in force: every passing hit up close, fewer when zoomed out.
    pub hit_budget: usize,
    pub picked: Option<Picked>,
    /// A problem to show the user (an event that failed to load, a file that did not open).
    pub message: Option<String>,
    /// Something done that the user should know about (where a screenshot went).
    pub notice: Option<String>,
    /// What the scene was built from: cuts, style, hit budget, folded into ρ-z.
    built: Option<(Cuts, Style, usize, bool)>,
    /// An event being read from the store off the main thread: (id, read).
    loading: Option<(u64, Task<crate::error::Result<CollisionEvent>>)>,
}

impl Display {
    pub fn new(event_id: u64, event: CollisionEvent) -> Self {
        Self {
            event_id,
            collections: collections(&event),
            event,
            geometry: DetectorGeometry::alice_barrel(),
            scene: Arc::default(),
            generation: 0,
            lod: HitLod::Point,
            hit_budget: usize::MAX,
            picked: None,
            message: None,
            notice: None,
            built: None,
            loading: None,
        }
    }

    /// Shows another event: the next frame rebuilds the scene.
    pub fn set_event(&mut self, event_id: u64, event: CollisionEvent) {
        self.event_id = event_id;
        self.collections = collections(&event);
        self.event = event;
        self.built = None;
        self.picked = None;
        self.message = None;
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }
}

fn collections(event: &CollisionEvent) -> Vec<String> {
    let mut names: Vec<String> = event
        .tracks
        .iter()
        .map(|t| t.collection.clone())
        .chain(event.header.hit_collections.iter().cloned())
        .filter(|c| !c.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The display's logic runs before its visuals each frame.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DisplaySystems {
    Logic,
}

/// Starts reading an asked-for event from the local store, on the async pool (systems never
/// block on I/O); `receive_event` shows it when it is ready.
pub(super) fn show_event(
    mut requests: MessageReader<ShowEvent>,
    mut display: ResMut<Display>,
    dataset: Option<Res<OpenDataset>>,
) {
    let Some(&ShowEvent(id)) = requests.read().last() else {
        return;
    };
    let Some(dataset) = dataset else {
        display.message = Some("no dataset is open".into());
        return;
    };
    let dataset = dataset.0.clone();
    let task = AsyncComputeTaskPool::get().spawn(async move { Ok(dataset.read_event(id)?) });
    display.loading = Some((id, task));
}

/// Events fetched elsewhere (alyxd) are shown as they are; a failed fetch is a status line.
pub(super) fn show_fetched(
    mut fetched: ResMut<Messages<ShowFetched>>,
    mut notices: MessageReader<DisplayNotice>,
    mut display: ResMut<Display>,
) {
    for n in notices.read() {
        display.message = Some(n.0.clone());
    }
    // Taken, not copied: a Pb–Pb event is tens of MB.
    for f in fetched.drain() {
        display.set_event(f.id, f.event);
    }
}

/// Takes a colleague's camera and cuts (a notebook's "follow").
pub(super) fn follow_view(
    mut follow: MessageReader<FollowView>,
    mut orbit: ResMut<Orbit>,
    mut options: ResMut<ViewOptions>,
) {
    for f in follow.read() {
        if let Some(theirs) = Orbit::from_shared(&f.camera) {
            orbit.set_if_neq(theirs);
        }
        if let Ok(theirs) = serde_json::from_str::<ViewOptions>(&f.cuts) {
            options.set_if_neq(theirs);
        }
    }
}

/// Keeps the shared [`Viewpoint`] current: what notebook colleagues see of this display.
pub(super) fn publish_viewpoint(
    display: Res<Display>,
    orbit: Res<Orbit>,
    options: Res<ViewOptions>,
    mut viewpoint: ResMut<Viewpoint>,
) {
    viewpoint.set_if_neq(Viewpoint {
        event_id: Some(display.event_id),
        camera: orbit.shared(),
        cuts: serde_json::to_string(&*options).unwrap_or_default(),
    });
}

pub(super) fn receive_event(mut display: ResMut<Display>) {
    let Some((id, task)) = display.loading.as_mut() else {
        return;
    };
    let id = *id;
    let Some(result) = check_ready(task) else {
        return;
    };
    display.loading = None;
    match result {
        Ok(event) => display.set_event(id, event),
        Err(e) => display.message = Some(e.to_string()),
    }
}

/// Picks the hit mesh detail and the hit budget from how big a hit looks at the camera's
/// distance. The budget moves in steps (a rebuild costs a few ms per 100k hits), so a zoom
/// rebuilds the scene a handful of times, not every frame.
pub(super) fn level_of_detail(
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    mut display: ResMut<Display>,
) {
    let pixels = 2.0 * hit_radius_cm(Detector::Tpc) * viewport.pixels_per_cm(orbit.distance);
    let lod = scene::hit_lod(pixels);
    // Quarter steps of log2(pixels) below full detail.
    let stepped = if pixels >= 3.0 {
        3.0
    } else {
        ((pixels.max(1e-3).log2() * 4.0).round() / 4.0).exp2()
    };
    let budget = scene::hit_budget(stepped, display.event.hits.len(), HIT_BUDGET_FLOOR);
    if display.lod != lod {
        display.lod = lod;
    }
    if display.hit_budget != budget {
        display.hit_budget = budget;
    }
}

pub(super) fn rebuild_scene(
    mut commands: Commands,
    mut display: ResMut<Display>,
    options: Res<ViewOptions>,
    orbit: Res<Orbit>,
    batches: Query<Entity, With<HitBatch>>,
) {
    let folded = orbit.view == View::RZ;
    let unchanged = display
        .built
        .as_ref()
        .is_some_and(|(cuts, style, budget, was_folded)| {
            *cuts == options.cuts
                && *style == options.style
                && *budget == display.hit_budget
                && *was_folded == folded
        });
    if unchanged {
        return;
    }
    let key = (
        options.cuts.clone(),
        options.style,
        display.hit_budget,
        folded,
    );
    let mut scene = scene::build_scene(
        &display.event,
        &display.geometry,
        &options.cuts,
        &options.style,
        display.hit_budget,
    );
    if folded {
        scene.fold_rho_z();
    }
    display.generation += 1;
    for entity in &batches {
        commands.entity(entity).despawn();
    }
    if let Some(batch) = hit_batch(&scene, display.generation) {
        commands.spawn((
            batch,
            Transform::default(),
            Visibility::default(),
            bevy::camera::visibility::NoFrustumCulling,
        ));
    }
    // A picked hit or track that no longer passes the cuts is let go.
    if let Some(picked) = display.picked {
        let drawn = match picked {
            Picked::Hit(h) => scene.hits.iter().any(|x| x.hit == h),
            Picked::Track(t) => scene.tracks.iter().any(|x| x.track == t),
        };
        if !drawn {
            display.picked = None;
        }
    }
    display.scene = Arc::new(scene);
    display.built = Some(key);
}

/// The scene's hits as one instance batch, sorted by time (a hit without a time counts as the
/// collision's). One batch, not one per detector: Bevy merges consecutive sorted-phase items
/// that share a mesh into one draw, which would drop all but the first batch's instances.
pub fn hit_batch(scene: &Scene, generation: u64) -> Option<HitBatch> {
    let mut hits: Vec<(f32, HitInstanceData)> = scene
        .hits
        .iter()
        .map(|h| {
            let t = if h.time_ns.is_finite() {
                h.time_ns
            } else {
                0.0
            };
            let instance = HitInstanceData {
                position_cm: h.position_cm,
                radius_cm: hit_radius_cm(h.detector),
                colour: h.colour,
            };
            (t, instance)
        })
        .collect();
    if hits.is_empty() {
        return None;
    }
    hits.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (times, instances): (Vec<f32>, Vec<HitInstanceData>) = hits.into_iter().unzip();
    Some(HitBatch {
        visible: instances.len(),
        instances: Arc::new(instances),
        times_ns: Arc::new(times),
        generation,
    })
}

/// Advances the animation clock and shows the hits it has reached.
pub(super) fn animate(
    time: Res<Time>,
    mut animation: ResMut<Animation>,
    display: Res<Display>,
    mut batches: Query<&mut HitBatch>,
) {
    let duration = display.scene.duration_ns.max(1e-3);
    if animation.playing {
        let step = time.delta_secs() * duration / animation.length_s.max(0.1);
        let t = animation.t_ns.unwrap_or(0.0) + step;
        if t >= duration {
            // The end of the event: the whole event stays on screen.
            animation.playing = false;
            animation.t_ns = None;
        } else {
            animation.t_ns = Some(t);
        }
    }
    let t = animation.t_ns;
    for mut batch in &mut batches {
        let before = batch.visible;
        batch.bypass_change_detection().show_until(t);
        if batch.visible != before {
            batch.set_changed();
        }
    }
}

pub(super) fn pick(mut rays: MessageReader<PickRay>, mut display: ResMut<Display>) {
    for ray in rays.read() {
        let picked = scene::pick(
            &display.scene,
            ray.origin.to_array(),
            ray.direction.to_array(),
            ray.tolerance_cm,
        );
        display.picked = picked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_look_smaller_further_away() {
        let v = Viewport::default();
        assert!(v.pixels_per_cm(100.0) > 4.0 * v.pixels_per_cm(500.0) * 0.99);
    }
}

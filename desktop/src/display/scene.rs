//! The event display's scene, built from one event without any rendering: which hits are drawn
//! (after the live cuts and the hit budget) in which colour, the track polylines with their
//! times (for the unfolding animation), the level of detail for hit meshes, and picking.
//!
//! The Bevy side turns a `Scene` into instanced draws (one mesh and material per hit class, a
//! transform and colour per instance) and a few line meshes. Keeping the scene pure keeps it
//! testable without a GPU and cheap enough to rebuild whenever a cut moves.

use std::collections::BTreeSet;

use alyx_core::DetectorGeometry;
use alyx_core::helix::{C_CM_PER_NS, Helix};
use alyx_core::model::{CollisionEvent, Detector, ParticleTrack};
use alyx_core::physics::FourMomentum;

/// Linear RGBA.
pub type Rgba = [f32; 4];

/// Which charges pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChargeFilter {
    #[default]
    All,
    Positive,
    Negative,
}

/// The live cuts: applied to the loaded event, never by reloading it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cuts {
    pub pt_min_gev: f64,
    pub eta_max: f64,
    pub charge: ChargeFilter,
    /// Shown detectors, indexed by `detector_index`.
    pub detectors: [bool; 4],
    /// Collection names (tracks, foreign hit collections) that are hidden.
    pub hidden_collections: BTreeSet<String>,
}

impl Default for Cuts {
    fn default() -> Self {
        Self {
            pt_min_gev: 0.0,
            eta_max: f64::INFINITY,
            charge: ChargeFilter::All,
            detectors: [true; 4],
            hidden_collections: BTreeSet::new(),
        }
    }
}

pub fn detector_index(d: Detector) -> usize {
    match d {
        Detector::Its => 0,
        Detector::Tpc => 1,
        Detector::Tof => 2,
        Detector::Other => 3,
    }
}

impl Cuts {
    /// Whether a track passes (its hits follow it).
    pub fn track_passes(&self, t: &ParticleTrack) -> bool {
        let p = FourMomentum::from_p3_mass(t.momentum[0], t.momentum[1], t.momentum[2], 0.0);
        let charge_ok = match self.charge {
            ChargeFilter::All => true,
            ChargeFilter::Positive => t.charge > 0,
            ChargeFilter::Negative => t.charge < 0,
        };
        // A track without a measured momentum (NaN) is not cut on it.
        let pt_ok = !(p.pt() < self.pt_min_gev);
        let eta_ok = !(p.eta().abs() > self.eta_max);
        charge_ok && pt_ok && eta_ok && !self.hidden_collections.contains(&t.collection)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HitColouring {
    #[default]
    Detector,
    Energy,
    Time,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TrackColouring {
    #[default]
    Charge,
    Pt,
    Pid,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Style {
    pub hits: HitColouring,
    pub tracks: TrackColouring,
}

/// One drawn hit: an instance of its detector's hit mesh.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HitInstance {
    pub position_cm: [f32; 3],
    pub colour: Rgba,
    /// Index into `CollisionEvent::hits`.
    pub hit: u32,
    pub detector: Detector,
    /// ns after the collision; NaN when the source gave none.
    pub time_ns: f32,
}

/// One drawn track: a polyline with the time at each point (ns after the collision).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackLine {
    /// Index into `CollisionEvent::tracks`.
    pub track: u32,
    pub points_cm: Vec<[f32; 3]>,
    pub times_ns: Vec<f32>,
    pub colour: Rgba,
}

impl TrackLine {
    /// The part of the track the particle has travelled by `t_ns` (the animation): the points
    /// reached, and a last point interpolated between the two around `t_ns`.
    pub fn until(&self, t_ns: f32) -> Vec<[f32; 3]> {
        let reached = self.times_ns.partition_point(|t| *t <= t_ns);
        let mut out: Vec<[f32; 3]> = self.points_cm[..reached].to_vec();
        if reached > 0 && reached < self.points_cm.len() {
            let (t0, t1) = (self.times_ns[reached - 1], self.times_ns[reached]);
            let f = if t1 > t0 {
                (t_ns - t0) / (t1 - t0)
            } else {
                0.0
            };
            let (a, b) = (self.points_cm[reached - 1], self.points_cm[reached]);
            out.push([
                a[0] + f * (b[0] - a[0]),
                a[1] + f * (b[1] - a[1]),
                a[2] + f * (b[2] - a[2]),
            ]);
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scene {
    pub hits: Vec<HitInstance>,
    /// Hits that passed the cuts before the budget decimated them.
    pub hits_passing: usize,
    pub tracks: Vec<TrackLine>,
    /// The time of the last point of any track: the end of the animation.
    pub duration_ns: f32,
}

/// A point of the ρ-z projection: (0, ±r, z), the sign + where y ≥ 0.
pub fn fold_rho_z(p: [f32; 3]) -> [f32; 3] {
    let r = p[0].hypot(p[1]);
    [0.0, if p[1] < 0.0 { -r } else { r }, p[2]]
}

impl Scene {
    /// Folds the scene into the ρ-z plane (x = 0): each hit to (z, ±r) by its own
    /// hemisphere, each track's points by the hemisphere of its outermost point, so that a
    /// track never jumps across the beam axis.
    pub fn fold_rho_z(&mut self) {
        for h in &mut self.hits {
            h.position_cm = fold_rho_z(h.position_cm);
        }
        for t in &mut self.tracks {
            let outermost = t
                .points_cm
                .iter()
                .max_by(|a, b| a[0].hypot(a[1]).total_cmp(&b[0].hypot(b[1])));
            let sign = if outermost.is_some_and(|p| p[1] < 0.0) {
                -1.0
            } else {
                1.0
            };
            for p in &mut t.points_cm {
                *p = [0.0, sign * p[0].hypot(p[1]), p[2]];
            }
        }
    }
}

/// Level of detail of a hit's mesh, from its size on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HitLod {
    /// A camera-facing square: hits a couple of pixels across.
    Point,
    /// An octahedron.
    LowPoly,
    /// A subdivided icosphere: hits seen from close by.
    Icosphere,
}

/// The mesh detail for a hit that covers `pixels` across on screen.
pub fn hit_lod(pixels: f32) -> HitLod {
    if pixels < 3.0 {
        HitLod::Point
    } else if pixels < 12.0 {
        HitLod::LowPoly
    } else {
        HitLod::Icosphere
    }
}

/// How many hits to draw when hits appear `pixels` across: all of them when zoomed in, a
/// budget that shrinks as they get smaller (they overlap anyway), never below `floor`.
pub fn hit_budget(pixels: f32, total: usize, floor: usize) -> usize {
    if pixels >= 3.0 {
        return total;
    }
    let scale = (pixels / 3.0).clamp(0.0, 1.0);
    ((total as f32 * scale * scale) as usize)
        .max(floor)
        .min(total)
}

/// Deterministic decimation: hit `index` is kept under a budget of `keep` out of `passing` iff
/// its hash falls below the fraction. Keeping is monotone in the budget, so zooming in only ever
/// adds hits, and the same hits are chosen every time.
fn kept(index: u32, keep: usize, passing: usize) -> bool {
    if keep >= passing {
        return true;
    }
    let mut x = u64::from(index).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x as f64) < (keep as f64 / passing as f64) * u64::MAX as f64
}

/// Builds the scene of `event` under `cuts`, drawing at most about `hit_budget` hits.
pub fn build_scene(
    event: &CollisionEvent,
    geometry: &DetectorGeometry,
    cuts: &Cuts,
    style: &Style,
    hit_budget: usize,
) -> Scene {
    let track_ok: Vec<bool> = event.tracks.iter().map(|t| cuts.track_passes(t)).collect();
    let hit_passes = |h: &alyx_core::model::DetectorHit| {
        let detector_ok = cuts.detectors[detector_index(h.detector)];
        let collection_ok = event
            .hit_collection(h)
            .is_none_or(|c| !cuts.hidden_collections.contains(c));
        let track_ok = h
            .track
            .is_none_or(|t| track_ok.get(t as usize).copied().unwrap_or(true));
        detector_ok && collection_ok && track_ok
    };
    let passing: Vec<u32> = event
        .hits
        .iter()
        .enumerate()
        .filter(|(_, h)| hit_passes(h))
        .map(|(i, _)| i as u32)
        .collect();
    let (e_range, t_range) = ranges(event, &passing);
    let hits: Vec<HitInstance> = passing
        .iter()
        .filter(|&&i| kept(i, hit_budget, passing.len()))
        .map(|&i| {
            let h = &event.hits[i as usize];
            let colour = match style.hits {
                HitColouring::Detector => detector_colour(h.detector),
                HitColouring::Energy => {
                    colormap(normalise(f64::from(h.edep_kev).max(1e-3).ln(), e_range))
                }
                HitColouring::Time => colormap(normalise(f64::from(h.time_ns), t_range)),
            };
            HitInstance {
                position_cm: h.position_cm,
                colour,
                hit: i,
                detector: h.detector,
                time_ns: h.time_ns,
            }
        })
        .collect();

    let by_track = event.hits_by_track();
    let mut tracks = Vec::new();
    for (i, t) in event.tracks.iter().enumerate() {
        if !track_ok[i] {
            continue;
        }
        let Some((points_cm, times_ns)) = track_path(event, geometry, i, &by_track[i]) else {
            continue;
        };
        tracks.push(TrackLine {
            track: i as u32,
            points_cm,
            times_ns,
            colour: track_colour(t, style.tracks),
        });
    }
    let duration_ns = tracks
        .iter()
        .filter_map(|t| t.times_ns.last().copied())
        .fold(0.0, f32::max);
    Scene {
        hits,
        hits_passing: passing.len(),
        tracks,
        duration_ns,
    }
}

/// Log-energy and time ranges of the passing hits, for the colour maps.
fn ranges(event: &CollisionEvent, passing: &[u32]) -> ((f64, f64), (f64, f64)) {
    let mut e = (f64::INFINITY, f64::NEG_INFINITY);
    let mut t = (f64::INFINITY, f64::NEG_INFINITY);
    for &i in passing {
        let h = &event.hits[i as usize];
        let le = f64::from(h.edep_kev).max(1e-3).ln();
        let ht = f64::from(h.time_ns);
        if le.is_finite() {
            e = (e.0.min(le), e.1.max(le));
        }
        if ht.is_finite() {
            t = (t.0.min(ht), t.1.max(ht));
        }
    }
    (e, t)
}

fn normalise(v: f64, (lo, hi): (f64, f64)) -> f32 {
    if !v.is_finite() || hi <= lo {
        return 0.5;
    }
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0) as f32
}

/// Points of the track's trajectory, innermost first, with times: the file's own polyline if it
/// has one, else the helix from the production point out to its last hit (or to the TOF).
fn track_path(
    event: &CollisionEvent,
    geometry: &DetectorGeometry,
    index: usize,
    hits: &[u32],
) -> Option<(Vec<[f32; 3]>, Vec<f32>)> {
    let t = &event.tracks[index];
    if !t.polyline_cm.is_empty() {
        // A foreign polyline has no times: spread it over the light travel time along it.
        let mut times = Vec::with_capacity(t.polyline_cm.len());
        let mut length = 0.0f32;
        for (k, p) in t.polyline_cm.iter().enumerate() {
            if k > 0 {
                length += distance(t.polyline_cm[k - 1], *p);
            }
            times.push(length / C_CM_PER_NS as f32);
        }
        return Some((t.polyline_cm.clone(), times));
    }
    if !t.momentum.iter().all(|v| v.is_finite()) {
        return None;
    }
    let helix = Helix::new(t.origin_cm, t.momentum, t.charge, geometry.field_tesla);
    let outer = hits
        .iter()
        .map(|&h| {
            let p = event.hits[h as usize].position_cm;
            f64::from(p[0]).hypot(f64::from(p[1]))
        })
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
        .unwrap_or(geometry.tof.sensitive_radius_cm);
    // End at that radius, at the barrel's end, or after half a turn for a looper.
    let s_radius = helix.intersect_cylinder(outer);
    let s_z = helix.reach_z_cm(geometry.tpc.half_length_cm);
    let s_turn = if helix.radius_cm.is_finite() {
        std::f64::consts::PI * helix.radius_cm
    } else {
        f64::INFINITY
    };
    let s_end = [s_radius, s_z, Some(s_turn)]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
    if !(s_end.is_finite() && s_end > 0.0) {
        return None;
    }
    let p4 = t.p4();
    let beta = (p4.p() / p4.e).max(1e-6);
    const SEGMENTS: usize = 48;
    let mut points = Vec::with_capacity(SEGMENTS + 1);
    let mut times = Vec::with_capacity(SEGMENTS + 1);
    for k in 0..=SEGMENTS {
        let s = s_end * k as f64 / SEGMENTS as f64;
        let p = helix.at(s);
        points.push([p[0] as f32, p[1] as f32, p[2] as f32]);
        times.push((helix.path_length_cm(s) / (beta * C_CM_PER_NS)) as f32);
    }
    Some((points, times))
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

pub fn detector_colour(d: Detector) -> Rgba {
    match d {
        Detector::Its => [1.0, 0.55, 0.1, 1.0],
        Detector::Tpc => [0.15, 0.75, 1.0, 1.0],
        Detector::Tof => [0.95, 0.25, 0.85, 1.0],
        Detector::Other => [0.85, 0.85, 0.85, 1.0],
    }
}

fn track_colour(t: &ParticleTrack, by: TrackColouring) -> Rgba {
    match by {
        TrackColouring::Charge if t.charge > 0 => [1.0, 0.3, 0.25, 1.0],
        TrackColouring::Charge if t.charge < 0 => [0.3, 0.5, 1.0, 1.0],
        TrackColouring::Charge => [0.7, 0.7, 0.7, 1.0],
        // log pT from 0.1 to 10 GeV.
        TrackColouring::Pt => colormap(normalise(t.pt().max(1e-3).log10(), (-1.0, 1.0))),
        TrackColouring::Pid => match t.pid.abs() {
            211 => [0.3, 0.85, 0.3, 1.0],
            321 => [0.95, 0.85, 0.2, 1.0],
            2212 => [0.65, 0.35, 0.95, 1.0],
            13 => [1.0, 0.5, 0.0, 1.0],
            11 => [0.2, 0.9, 0.9, 1.0],
            _ => [0.7, 0.7, 0.7, 1.0],
        },
    }
}

/// A perceptually ordered map (viridis, five stops) from 0..1 to colour.
pub fn colormap(x: f32) -> Rgba {
    const STOPS: [[f32; 3]; 5] = [
        [0.267, 0.005, 0.329],
        [0.229, 0.322, 0.546],
        [0.128, 0.567, 0.551],
        [0.369, 0.789, 0.383],
        [0.993, 0.906, 0.144],
    ];
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.5
    } * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [
        a[0] + f * (b[0] - a[0]),
        a[1] + f * (b[1] - a[1]),
        a[2] + f * (b[2] - a[2]),
        1.0,
    ]
}

/// What a click selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picked {
    Hit(u32),
    Track(u32),
}

/// The drawn hit or track nearest to the ray from `origin` along `direction` (any length),
/// within `tolerance_cm` of it; ties go to what is nearer the camera.
pub fn pick(
    scene: &Scene,
    origin: [f32; 3],
    direction: [f32; 3],
    tolerance_cm: f32,
) -> Option<Picked> {
    let norm = (direction[0].powi(2) + direction[1].powi(2) + direction[2].powi(2)).sqrt();
    if !(norm > 0.0) {
        return None;
    }
    let d = direction.map(|v| v / norm);
    let mut best: Option<(f32, f32, Picked)> = None;
    let mut consider = |dist: f32, depth: f32, what: Picked| {
        if dist <= tolerance_cm
            && depth >= 0.0
            && best.is_none_or(|(bd, bz, _)| (dist, depth) < (bd, bz))
        {
            best = Some((dist, depth, what));
        }
    };
    for h in &scene.hits {
        let (dist, depth) = point_to_ray(h.position_cm, origin, d);
        consider(dist, depth, Picked::Hit(h.hit));
    }
    for t in &scene.tracks {
        for w in t.points_cm.windows(2) {
            let (dist, depth) = segment_to_ray(w[0], w[1], origin, d);
            consider(dist, depth, Picked::Track(t.track));
        }
    }
    best.map(|(_, _, what)| what)
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Distance of `p` from the ray (unit direction `d`), and its depth along the ray.
fn point_to_ray(p: [f32; 3], o: [f32; 3], d: [f32; 3]) -> (f32, f32) {
    let v = sub(p, o);
    let depth = dot(v, d);
    let closest = [
        o[0] + depth * d[0],
        o[1] + depth * d[1],
        o[2] + depth * d[2],
    ];
    (distance(p, closest), depth)
}

/// Closest distance between segment `a`–`b` and the ray, and the depth along the ray there.
fn segment_to_ray(a: [f32; 3], b: [f32; 3], o: [f32; 3], d: [f32; 3]) -> (f32, f32) {
    let u = sub(b, a);
    let w = sub(a, o);
    let (uu, ud, uw, dw) = (dot(u, u), dot(u, d), dot(u, w), dot(d, w));
    let denom = uu - ud * ud;
    // Parameter along the segment of the closest approach (clamped to the segment).
    let s = if denom.abs() < 1e-12 {
        0.0
    } else {
        ((ud * dw - uw) / denom).clamp(0.0, 1.0)
    };
    let p = [a[0] + s * u[0], a[1] + s * u[1], a[2] + s * u[2]];
    point_to_ray(p, o, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ρ-z fold keeps each point's radius and z, on its own hemisphere's side.
        #[test]
        fn folding_keeps_radius_z_and_hemisphere(
            x in -500f32..500.0, y in -500f32..500.0, z in -500f32..500.0,
        ) {
            let [fx, fy, fz] = fold_rho_z([x, y, z]);
            proptest::prop_assert_eq!(fx, 0.0);
            proptest::prop_assert_eq!(fz, z);
            proptest::prop_assert_eq!(fy.abs(), x.hypot(y));
            proptest::prop_assert_eq!(fy < 0.0, y < 0.0 && x.hypot(y) > 0.0);
        }
    }

    use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};

    #[test]
    fn the_folded_scene_puts_tpc_hits_in_their_band_on_both_sides() {
        let g = EventGenerator::new(GeneratorConfig::pbpb(3, Centrality::Central), geometry());
        let e = g.event(0);
        let mut scene = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            usize::MAX,
        );
        scene.fold_rho_z();
        let tpc: Vec<f32> = scene
            .hits
            .iter()
            .filter(|h| h.detector == Detector::Tpc)
            .map(|h| h.position_cm[1])
            .collect();
        let (inner, outer) = (
            geometry().tpc.inner_radius_cm as f32,
            geometry().tpc.outer_radius_cm as f32,
        );
        assert!(
            tpc.iter()
                .all(|y| (inner - 1.0..=outer + 1.0).contains(&y.abs()))
        );
        assert!(tpc.iter().filter(|y| **y > 0.0).count() > tpc.len() / 3);
        assert!(tpc.iter().filter(|y| **y < 0.0).count() > tpc.len() / 3);
        assert!(scene.hits.iter().all(|h| h.position_cm[0] == 0.0));
        assert!(scene.tracks.iter().all(|t| {
            let up = t.points_cm.iter().filter(|p| p[1] > 0.0).count();
            up == 0 || t.points_cm.iter().all(|p| p[1] >= 0.0)
        }));
    }

    fn pp_event(i: u64) -> CollisionEvent {
        EventGenerator::new(GeneratorConfig::pp(4), DetectorGeometry::alice_barrel()).event(i)
    }

    fn geometry() -> DetectorGeometry {
        DetectorGeometry::alice_barrel()
    }

    #[test]
    fn instances_are_exactly_the_hits_that_pass_the_cuts() {
        let e = pp_event(2);
        let cuts = Cuts {
            pt_min_gev: 0.5,
            detectors: [true, true, false, true],
            ..Cuts::default()
        };
        let scene = build_scene(&e, &geometry(), &cuts, &Style::default(), usize::MAX);
        let expected = e
            .hits
            .iter()
            .filter(|h| {
                h.detector != Detector::Tof
                    && h.track.is_none_or(|t| e.tracks[t as usize].pt() >= 0.5)
            })
            .count();
        assert_eq!(scene.hits.len(), expected);
        assert_eq!(scene.hits_passing, expected);
        assert!(scene.hits.iter().all(|h| h.detector != Detector::Tof));
        let tracks = e.tracks.iter().filter(|t| t.pt() >= 0.5).count();
        assert_eq!(scene.tracks.len(), tracks);
        // Charge cut: only negative tracks remain.
        let neg = Cuts {
            charge: ChargeFilter::Negative,
            ..Cuts::default()
        };
        let scene = build_scene(&e, &geometry(), &neg, &Style::default(), usize::MAX);
        assert!(
            scene
                .tracks
                .iter()
                .all(|t| e.tracks[t.track as usize].charge < 0)
        );
    }

    #[test]
    fn the_budget_decimates_deterministically_and_zooming_in_only_adds_hits() {
        let g = EventGenerator::new(GeneratorConfig::pbpb(1, Centrality::Peripheral), geometry());
        let e = g.event(0);
        let all = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            usize::MAX,
        );
        let total = all.hits.len();
        assert!(total > 5_000, "{total}");
        let small = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            total / 10,
        );
        let larger = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            total / 4,
        );
        let n = small.hits.len() as f64;
        assert!(
            (n / (total as f64 / 10.0) - 1.0).abs() < 0.15,
            "{n} for a budget of {}",
            total / 10
        );
        let kept_large: BTreeSet<u32> = larger.hits.iter().map(|h| h.hit).collect();
        assert!(
            small.hits.iter().all(|h| kept_large.contains(&h.hit)),
            "monotone in the budget"
        );
        let again = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            total / 10,
        );
        assert_eq!(again.hits, small.hits, "deterministic");
        assert_eq!(small.hits_passing, total);
    }

    #[test]
    fn lod_and_budget_follow_screen_size() {
        assert_eq!(hit_lod(1.0), HitLod::Point);
        assert_eq!(hit_lod(6.0), HitLod::LowPoly);
        assert_eq!(hit_lod(40.0), HitLod::Icosphere);
        assert_eq!(
            hit_budget(5.0, 500_000, 10_000),
            500_000,
            "zoomed in: everything"
        );
        assert!(hit_budget(1.0, 500_000, 10_000) < 100_000);
        assert_eq!(
            hit_budget(0.01, 500_000, 10_000),
            10_000,
            "never below the floor"
        );
    }

    #[test]
    fn generated_track_lines_follow_their_helix_to_the_last_hit() {
        let e = pp_event(5);
        let scene = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            usize::MAX,
        );
        for line in &scene.tracks {
            let t = &e.tracks[line.track as usize];
            let helix = Helix::new(t.origin_cm, t.momentum, t.charge, 0.5);
            let c = helix.center_cm();
            for p in &line.points_cm {
                let r = (f64::from(p[0]) - c[0]).hypot(f64::from(p[1]) - c[1]);
                assert!(
                    (r - helix.radius_cm).abs() < 1e-3 * helix.radius_cm,
                    "off the helix"
                );
            }
            assert!(
                line.times_ns.windows(2).all(|w| w[0] <= w[1]),
                "time increases along the track"
            );
            let last_hit_r = e
                .track_hits(line.track)
                .map(|h| h.position_cm[0].hypot(h.position_cm[1]))
                .fold(0.0f32, f32::max);
            let end = line.points_cm.last().expect("points");
            let end_r = end[0].hypot(end[1]);
            if last_hit_r > 0.0 && (end[2].abs() as f64) < 249.0 {
                assert!(
                    (end_r - last_hit_r).abs() < 1.0,
                    "ends at its last hit: {end_r} vs {last_hit_r}"
                );
            }
        }
    }

    #[test]
    fn animation_grows_a_track_along_its_points_in_time() {
        let line = TrackLine {
            track: 0,
            points_cm: vec![[0.0; 3], [10.0, 0.0, 0.0], [20.0, 0.0, 0.0]],
            times_ns: vec![0.0, 1.0, 2.0],
            colour: [1.0; 4],
        };
        assert_eq!(line.until(-1.0), Vec::<[f32; 3]>::new());
        assert_eq!(line.until(0.5), vec![[0.0; 3], [5.0, 0.0, 0.0]]);
        assert_eq!(line.until(5.0), line.points_cm);
    }

    #[test]
    fn picking_selects_the_hit_or_track_under_the_ray() {
        let e = pp_event(3);
        let scene = build_scene(
            &e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            usize::MAX,
        );
        // A ray from far out along z onto a hit picks that hit.
        let target = scene.hits[scene.hits.len() / 2];
        let p = target.position_cm;
        let origin = [p[0], p[1], p[2] + 1000.0];
        match pick(&scene, origin, [0.0, 0.0, -1.0], 0.01) {
            Some(Picked::Hit(i)) => assert_eq!(e.hits[i as usize].position_cm, p),
            other => panic!("expected the hit, got {other:?}"),
        }
        // A ray through the middle of a track segment, away from any hit, picks the track.
        let line = &scene.tracks[0];
        let (a, b) = (line.points_cm[2], line.points_cm[3]);
        let mid = [
            (a[0] + b[0]) / 2.0,
            (a[1] + b[1]) / 2.0,
            (a[2] + b[2]) / 2.0,
        ];
        let scene_tracks_only = Scene {
            hits: Vec::new(),
            ..scene.clone()
        };
        let picked = pick(
            &scene_tracks_only,
            [mid[0], mid[1], mid[2] + 500.0],
            [0.0, 0.0, -1.0],
            0.05,
        );
        assert_eq!(picked, Some(Picked::Track(line.track)));
        // Nothing within tolerance: nothing picked.
        assert_eq!(
            pick(&scene, [5000.0, 5000.0, 5000.0], [1.0, 0.0, 0.0], 0.1),
            None
        );
    }

    #[test]
    fn hidden_collections_and_foreign_polylines() {
        let Some(path) = alyx_tests::data_file("phoenix/ATLAS_atlaseventdump2.json") else {
            return;
        };
        let (events, _) = alyx_import::phoenix::import(&path).expect("import");
        let e = events
            .iter()
            .find(|e| e.tracks.len() == 151)
            .expect("event 234");
        let scene = build_scene(
            e,
            &geometry(),
            &Cuts::default(),
            &Style::default(),
            usize::MAX,
        );
        assert_eq!(scene.tracks.len(), 151);
        assert_eq!(
            scene.tracks[0].points_cm, e.tracks[0].polyline_cm,
            "the file's own polyline"
        );
        let mut hide = Cuts::default();
        hide.hidden_collections.insert("InDetTrackParticles".into());
        hide.hidden_collections.insert("Some Hits".into());
        let scene = build_scene(e, &geometry(), &hide, &Style::default(), usize::MAX);
        assert_eq!(scene.tracks.len(), 1);
        assert!(scene.hits.is_empty());
    }

    #[test]
    fn colour_maps_stay_in_range() {
        for x in [-1.0, 0.0, 0.3, 1.0, 2.0, f32::NAN] {
            assert!(colormap(x).iter().all(|c| (0.0..=1.0).contains(c)));
        }
        let e = pp_event(1);
        for style in [
            Style {
                hits: HitColouring::Energy,
                tracks: TrackColouring::Pt,
            },
            Style {
                hits: HitColouring::Time,
                tracks: TrackColouring::Pid,
            },
        ] {
            let scene = build_scene(&e, &geometry(), &Cuts::default(), &style, usize::MAX);
            assert!(
                scene
                    .hits
                    .iter()
                    .all(|h| h.colour.iter().all(|c| (0.0..=1.0).contains(c)))
            );
            let distinct: BTreeSet<[u32; 4]> = scene
                .hits
                .iter()
                .map(|h| h.colour.map(f32::to_bits))
                .collect();
            assert!(distinct.len() > 10, "a gradient, not one colour");
        }
    }
}

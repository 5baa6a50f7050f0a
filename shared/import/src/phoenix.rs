//! Phoenix event-data JSON (the HSF event display's format): import and export.
//!
//! A file maps event names to events; an event has `run number`, `event number` and, per object
//! type (Tracks, Hits, CaloClusters, Jets, Vertices, MissingEnergy, Muons, Electrons, Photons),
//! a map from collection name to a list of objects. Phoenix files are in mm and MeV; ALYX is in
//! cm and GeV, so lengths are divided by 10 and energies by 1000 on the way in (and multiplied
//! back on the way out). Track parameters are `dparams` = [d0, z0, φ, θ, q/p].

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::report::ImportReport;
use alyx_core::helix::HelixParams;
use alyx_core::model::{
    CaloCluster, CollisionEvent, CollisionSystem, Detector, DetectorHit, EventHeader,
    MissingEnergy, ParticleTrack, PhysicsObject, Vertex,
};

const MM_PER_CM: f64 = 10.0;
const MEV_PER_GEV: f64 = 1000.0;

/// Object types Phoenix draws, as keys of an event.
const OBJECT_TYPES: [&str; 9] = [
    "Tracks",
    "Hits",
    "CaloClusters",
    "Jets",
    "Vertices",
    "MissingEnergy",
    "Muons",
    "Electrons",
    "Photons",
];

/// The header keys Phoenix writes: a top-level object holding one is a single event.
const NUMBER_KEYS: [&str; 4] = ["run number", "event number", "runNumber", "eventNumber"];

/// Header keys of an event (Phoenix's and ALYX's own export's).
const HEADER_KEYS: [&str; 17] = [
    "run number",
    "event number",
    "runNumber",
    "eventNumber",
    "run",
    "event",
    "time",
    "ls",
    "lumiBlock",
    "timestamp_ns",
    "system",
    "sqrt_s_gev",
    "vx_cm",
    "vy_cm",
    "vz_cm",
    "trigger_bits",
    "weight",
];

/// Whether a JSON object reads as one event rather than a map of named events: it has a
/// header key (`runNumber`, `event number`...) or an object type mapping collection names to
/// lists, as Phoenix's own loader decides.
fn is_event(o: &Map<String, Value>) -> bool {
    o.keys().any(|k| {
        NUMBER_KEYS.contains(&k.as_str())
            || (OBJECT_TYPES.contains(&k.as_str()) && o[k].is_object())
    })
}

/// Whether a JSON object is a three.js scene (`Object3D.toJSON`, what Phoenix saves as `.phnx`).
fn is_threejs_scene(o: &Map<String, Value>) -> bool {
    o.get("metadata")
        .and_then(|m| m.get("generator"))
        .and_then(Value::as_str)
        .is_some_and(|g| g.starts_with("Object3D"))
        || (o.contains_key("object") && o.contains_key("geometries"))
}

pub fn import(path: &Path) -> Result<(Vec<CollisionEvent>, ImportReport)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(path, format!("invalid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(Error::malformed(
            path,
            "a Phoenix file is a JSON object: one event, or event names mapped to events",
        ));
    };
    if is_threejs_scene(&root) {
        return Err(Error::Unsupported(format!(
            "{}: a three.js scene (Phoenix's .phnx export), not event data; export the event \
             data from Phoenix as JSON instead",
            path.display()
        )));
    }
    let mut report = ImportReport::default();
    let mut out = Vec::new();
    if is_event(&root) {
        out.push(import_event(path, "event", &root, &mut report)?);
        return Ok((out, report));
    }
    for (name, event) in &root {
        match event {
            Value::Object(event) => {
                out.push(import_event(path, name, event, &mut report)?);
            }
            // Phoenix skips null events.
            Value::Null => report.skipped.push(format!("event `{name}`: null")),
            _ => {
                return Err(Error::malformed(
                    path,
                    format!(
                        "`{name}` is not an event: a file is one event (run and event numbers, \
                         Tracks, Hits...) or a map of named events"
                    ),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::malformed(path, "holds no Phoenix events"));
    }
    Ok((out, report))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A field looked up case-insensitively (Phoenix writers disagree: `eta`/`Eta`).
fn field<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn fnum(o: &Map<String, Value>, name: &str) -> f64 {
    field(o, name).and_then(num).unwrap_or(f64::NAN)
}

fn point(v: &Value) -> Option<[f64; 3]> {
    let a = v.as_array()?;
    match a.as_slice() {
        [x, y, z, ..] => Some([num(x)?, num(y)?, num(z)?]),
        _ => None,
    }
}

fn collections<'a>(event: &'a Map<String, Value>, kind: &str) -> Vec<(&'a String, &'a Vec<Value>)> {
    match event.get(kind) {
        Some(Value::Object(cols)) => cols
            .iter()
            .filter_map(|(n, v)| v.as_array().map(|a| (n, a)))
            .collect(),
        _ => Vec::new(),
    }
}

fn import_event(
    path: &Path,
    name: &str,
    ev: &Map<String, Value>,
    report: &mut ImportReport,
) -> Result<CollisionEvent> {
    let int = |keys: &[&str]| keys.iter().find_map(|k| ev.get(*k).and_then(Value::as_u64));
    // ALYX's own exports carry the rest of the header as plain scalars, which Phoenix ignores.
    let mut event = CollisionEvent::new(EventHeader {
        run: match int(&["run number", "runNumber", "run"]).map(u32::try_from) {
            None => 0,
            Some(Ok(run)) => run,
            Some(Err(_)) => {
                return Err(Error::malformed(
                    path,
                    format!("event `{name}`: the run number does not fit 32 bits"),
                ));
            }
        },
        event_number: int(&["event number", "eventNumber", "event"]).unwrap_or(0),
        timestamp_ns: ev.get("timestamp_ns").and_then(Value::as_i64).unwrap_or(0),
        system: ev
            .get("system")
            .and_then(Value::as_str)
            .and_then(CollisionSystem::parse)
            .unwrap_or(CollisionSystem::Unknown),
        sqrt_s_gev: fnum(ev, "sqrt_s_gev"),
        vertex_cm: [fnum(ev, "vx_cm"), fnum(ev, "vy_cm"), fnum(ev, "vz_cm")],
        trigger_bits: int(&["trigger_bits"]).unwrap_or(0),
        weight: ev.get("weight").and_then(num).unwrap_or(1.0),
        hit_collections: Vec::new(),
    });
    for key in ev.keys() {
        if !OBJECT_TYPES.contains(&key.as_str()) && !HEADER_KEYS.contains(&key.as_str()) {
            report.skipped.push(format!(
                "event `{name}`: object type `{key}` has no ALYX collection"
            ));
        }
    }

    // Tracks first: muons and electrons may link to them as "Collection:index".
    let mut track_offsets: Vec<(String, u32)> = Vec::new();
    for (coll, tracks) in collections(ev, "Tracks") {
        track_offsets.push((coll.clone(), event.tracks.len() as u32));
        for (i, t) in tracks.iter().enumerate() {
            let Value::Object(t) = t else {
                return Err(Error::malformed(
                    path,
                    format!("event `{name}`: track {i} of `{coll}` is not an object"),
                ));
            };
            event.tracks.push(track_from_phoenix(t, coll));
        }
    }
    let linked_track = |o: &Map<String, Value>| -> Option<u32> {
        let link = field(o, "LinkedTracks")?.as_array()?.first()?.as_str()?;
        let (coll, index) = link.rsplit_once(':')?;
        let (_, offset) = track_offsets.iter().find(|(c, _)| c == coll)?;
        offset.checked_add(index.parse::<u32>().ok()?)
    };

    for (coll, hits) in collections(ev, "Hits") {
        // ALYX's own detectors come back as themselves; any other collection is `Other`, its
        // name kept in the header and its index in `layer`.
        let detector = Detector::parse(coll).filter(|d| *d != Detector::Other);
        let index = event.header.hit_collections.len() as u32;
        if detector.is_none() {
            event.header.hit_collections.push(coll.clone());
        }
        let n_tracks = event.tracks.len();
        let mut push = |p: [f64; 3], o: Option<&Map<String, Value>>| {
            let time = o.map_or(f64::NAN, |o| fnum(o, "time"));
            let energy = o.map_or(f64::NAN, |o| fnum(o, "energy"));
            let layer = o.and_then(|o| field(o, "layer")).and_then(Value::as_u64);
            let track = o
                .and_then(|o| field(o, "track"))
                .and_then(Value::as_u64)
                .filter(|t| (*t as usize) < n_tracks);
            event.hits.push(DetectorHit {
                detector: detector.unwrap_or(Detector::Other),
                layer: if detector.is_some() {
                    layer.map_or(0, |l| u32::try_from(l).unwrap_or(u32::MAX))
                } else {
                    index
                },
                position_cm: p.map(|v| (v / MM_PER_CM) as f32),
                time_ns: time as f32,
                edep_kev: (energy * 1000.0) as f32,
                track: track.map(|t| t as u32),
            });
        };
        for h in hits {
            match h {
                Value::Object(o) => match field(o, "pos").and_then(point) {
                    Some(p) => push(p, Some(o)),
                    None => report
                        .skipped
                        .push(format!("event `{name}`: a hit of `{coll}` without `pos`")),
                },
                Value::Array(a) if a.first().is_some_and(Value::is_array) => {
                    // A group of points (a hit "line" in Phoenix terms).
                    a.iter().filter_map(point).for_each(|p| push(p, None));
                }
                other => match point(other) {
                    Some(p) => push(p, None),
                    None => report
                        .skipped
                        .push(format!("event `{name}`: unreadable hit in `{coll}`")),
                },
            }
        }
    }

    for (i, hits) in event.hits_by_track().into_iter().enumerate() {
        let track = &mut event.tracks[i];
        track.n_hits = hits.len() as u32;
        // A polyline that just repeats the track's own hits (ALYX's export) is redundant.
        let same = track.polyline_cm.len() == hits.len()
            && track
                .polyline_cm
                .iter()
                .zip(&hits)
                .all(|(p, &h)| *p == event.hits[h as usize].position_cm);
        if same && !hits.is_empty() {
            track.polyline_cm.clear();
        }
    }

    for (coll, clusters) in collections(ev, "CaloClusters") {
        for c in clusters.iter().filter_map(Value::as_object) {
            event.clusters.push(CaloCluster {
                energy_gev: fnum(c, "energy") / MEV_PER_GEV,
                eta: fnum(c, "eta"),
                phi: fnum(c, "phi"),
                position_cm: [f64::NAN; 3],
                collection: coll.clone(),
            });
        }
    }
    for (coll, jets) in collections(ev, "Jets") {
        for j in jets.iter().filter_map(Value::as_object) {
            // Phoenix gives a jet's energy and direction; it is treated as massless.
            let (e, eta, phi) = (
                fnum(j, "energy") / MEV_PER_GEV,
                fnum(j, "eta"),
                fnum(j, "phi"),
            );
            let mut jet = PhysicsObject::from_pt_eta_phi_m(e / eta.cosh(), eta, phi, 0.0, 0);
            // The file's energy as it is, not the one recomputed from pT (a rounding away).
            jet.e_gev = e;
            jet.cone_r = fnum(j, "coneR");
            jet.collection = coll.clone();
            event.jets.push(jet);
        }
    }
    for (coll, vertices) in collections(ev, "Vertices") {
        for v in vertices.iter().filter_map(Value::as_object) {
            let p = field(v, "pos").and_then(point).unwrap_or([
                fnum(v, "x"),
                fnum(v, "y"),
                fnum(v, "z"),
            ]);
            event.vertices.push(Vertex {
                position_cm: p.map(|c| c / MM_PER_CM),
                n_tracks: field(v, "nTracks")
                    .and_then(Value::as_u64)
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                collection: coll.clone(),
            });
        }
    }
    if let Some((_, list)) = collections(ev, "MissingEnergy").into_iter().next()
        && let Some(m) = list.first().and_then(Value::as_object)
    {
        event.met = Some(MissingEnergy::from_xy(
            fnum(m, "etx") / MEV_PER_GEV,
            fnum(m, "ety") / MEV_PER_GEV,
        ));
    }
    for (kind, mass_gev) in [
        ("Muons", alyx_core::physics::mass::MUON),
        ("Electrons", alyx_core::physics::mass::ELECTRON),
        ("Photons", 0.0),
    ] {
        for (coll, objects) in collections(ev, kind) {
            for o in objects.iter().filter_map(Value::as_object) {
                let track = linked_track(o);
                let (eta, phi) = (fnum(o, "eta"), fnum(o, "phi"));
                let mut pt = fnum(o, "pt") / MEV_PER_GEV;
                let mut charge = field(o, "charge").and_then(num).map_or(0, |q| q as i32);
                if let Some(t) = track.and_then(|t| event.tracks.get(t as usize)) {
                    // ATLAS muons carry only a direction; momentum and charge come from the track.
                    if pt.is_nan() {
                        pt = t.pt();
                    }
                    if charge == 0 {
                        charge = t.charge;
                    }
                }
                if pt.is_nan() {
                    let e = fnum(o, "energy") / MEV_PER_GEV;
                    pt = e / eta.cosh();
                }
                let mut obj = PhysicsObject::from_pt_eta_phi_m(pt, eta, phi, mass_gev, charge);
                obj.isolation = fnum(o, "iso");
                obj.track = track;
                obj.collection = coll.clone();
                match kind {
                    "Muons" => event.muons.push(obj),
                    "Electrons" => event.electrons.push(obj),
                    _ => event.photons.push(obj),
                }
            }
        }
    }
    Ok(event)
}

fn track_from_phoenix(t: &Map<String, Value>, collection: &str) -> ParticleTrack {
    let polyline_cm: Vec<[f32; 3]> = field(t, "pos")
        .and_then(Value::as_array)
        .map(|pts| {
            pts.iter()
                .filter_map(point)
                .map(|p| p.map(|v| (v / MM_PER_CM) as f32))
                .collect()
        })
        .unwrap_or_default();
    let dof = fnum(t, "dof");
    let chi2_ndf = if dof > 0.0 {
        fnum(t, "chi2") / dof
    } else {
        f64::NAN
    };
    let dparams: Option<Vec<f64>> = field(t, "dparams")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| num(v).unwrap_or(f64::NAN)).collect());
    let (charge, momentum, helix) = match dparams.as_deref() {
        Some([d0, z0, phi, theta, qop, ..]) => {
            let charge = if *qop > 0.0 {
                1
            } else if *qop < 0.0 {
                -1
            } else {
                0
            };
            // q/p = 0 means infinite momentum (a straight calibration track): kept as ∞ and
            // flagged by validation, never invented.
            let p_gev = 1.0 / qop.abs() / MEV_PER_GEV;
            let momentum = [
                p_gev * theta.sin() * phi.cos(),
                p_gev * theta.sin() * phi.sin(),
                p_gev * theta.cos(),
            ];
            let pt = p_gev * theta.sin();
            let helix = HelixParams {
                d0_cm: d0 / MM_PER_CM,
                z0_cm: z0 / MM_PER_CM,
                phi0: *phi,
                tan_lambda: 1.0 / theta.tan(),
                q_over_pt: if pt.is_finite() && pt > 0.0 {
                    f64::from(charge) / pt
                } else {
                    0.0
                },
            };
            (charge, momentum, helix)
        }
        _ => (0, [f64::NAN; 3], HelixParams::default()),
    };
    // The perigee is the production point unless the file says otherwise (ALYX's exports carry
    // the momentum at the production point, `p` in MeV, and the point, `origin` in mm).
    let mut origin_cm = [
        -helix.d0_cm * helix.phi0.sin(),
        helix.d0_cm * helix.phi0.cos(),
        helix.z0_cm,
    ];
    let mut momentum = momentum;
    if let (Some(p), Some(o)) = (
        field(t, "p").and_then(point),
        field(t, "origin").and_then(point),
    ) {
        momentum = p.map(|v| v / MEV_PER_GEV);
        origin_cm = o.map(|v| v / MM_PER_CM);
    }
    ParticleTrack {
        charge,
        momentum,
        origin_cm,
        helix,
        pid: field(t, "pid")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0),
        chi2_ndf,
        n_hits: 0,
        polyline_cm,
        collection: collection.to_owned(),
    }
}

/// Writes events as a Phoenix JSON document (mm, MeV), one entry per event named
/// `run R event E`. Importing it gives back the same events, with hits grouped by collection
/// (each track's hits keep their order) and unnamed collections under Phoenix's default names
/// (`Tracks`, `Jets`, …). MC truth has no place in Phoenix and is not written.
pub fn export(events: &[CollisionEvent]) -> Value {
    let mut doc = Map::new();
    for (i, e) in events.iter().enumerate() {
        let mut name = format!("run {} event {}", e.header.run, e.header.event_number);
        if doc.contains_key(&name) {
            name = format!("{name} #{i}");
        }
        doc.insert(name, export_event(e));
    }
    Value::Object(doc)
}

fn coll_name(name: &str, default: &str) -> String {
    if name.is_empty() {
        default.to_owned()
    } else {
        name.to_owned()
    }
}

fn group<T>(
    items: &[T],
    key: impl Fn(&T) -> String,
    to_json: impl Fn(usize, &T) -> Value,
) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (i, item) in items.iter().enumerate() {
        if let Value::Array(list) = out
            .entry(key(item))
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(to_json(i, item));
        }
    }
    out
}

/// JSON has no NaN or ∞: those become null.
fn j(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn export_event(e: &CollisionEvent) -> Value {
    let mut ev = Map::new();
    ev.insert("run number".into(), json!(e.header.run));
    ev.insert("event number".into(), json!(e.header.event_number));
    let h = &e.header;
    ev.insert("timestamp_ns".into(), json!(h.timestamp_ns));
    ev.insert("system".into(), json!(h.system.as_str()));
    for (key, v) in [
        ("sqrt_s_gev", h.sqrt_s_gev),
        ("vx_cm", h.vertex_cm[0]),
        ("vy_cm", h.vertex_cm[1]),
        ("vz_cm", h.vertex_cm[2]),
    ] {
        ev.insert(key.into(), j(v));
    }
    ev.insert("trigger_bits".into(), json!(h.trigger_bits));
    ev.insert("weight".into(), j(h.weight));
    let by_track = e.hits_by_track();
    // Track links are "Collection:index within collection".
    let mut link_of = Vec::with_capacity(e.tracks.len());
    let mut counts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for t in &e.tracks {
        let name = coll_name(&t.collection, "Tracks");
        let count = counts.entry(name.clone()).or_default();
        link_of.push(format!("{name}:{count}"));
        *count += 1;
    }
    let tracks = group(
        &e.tracks,
        |t| coll_name(&t.collection, "Tracks"),
        |i, t| {
            let h = &t.helix;
            let theta = (1.0 / h.tan_lambda).atan().rem_euclid(std::f64::consts::PI);
            let p_mev = (t.momentum[0].powi(2) + t.momentum[1].powi(2) + t.momentum[2].powi(2))
                .sqrt()
                * MEV_PER_GEV;
            let qop = if t.charge == 0 {
                0.0
            } else {
                f64::from(t.charge) / p_mev
            };
            let pos: Vec<Value> = if t.polyline_cm.is_empty() {
                by_track[i]
                    .iter()
                    .map(|&k| {
                        let p = e.hits[k as usize].position_cm;
                        json!([
                            f64::from(p[0]) * MM_PER_CM,
                            f64::from(p[1]) * MM_PER_CM,
                            f64::from(p[2]) * MM_PER_CM
                        ])
                    })
                    .collect()
            } else {
                t.polyline_cm
                    .iter()
                    .map(|p| {
                        json!([
                            f64::from(p[0]) * MM_PER_CM,
                            f64::from(p[1]) * MM_PER_CM,
                            f64::from(p[2]) * MM_PER_CM
                        ])
                    })
                    .collect()
            };
            let (chi2, dof) = if t.chi2_ndf.is_nan() {
                (Value::Null, json!(0))
            } else {
                (j(t.chi2_ndf), json!(1))
            };
            json!({
                "dparams": [j(h.d0_cm * MM_PER_CM), j(h.z0_cm * MM_PER_CM), j(h.phi0), j(theta), j(qop)],
                "pos": pos, "chi2": chi2, "dof": dof, "pT": j(t.pt() * MEV_PER_GEV), "charge": t.charge, "pid": t.pid,
                "p": t.momentum.map(|v| j(v * MEV_PER_GEV)), "origin": t.origin_cm.map(|v| j(v * MM_PER_CM)),
            })
        },
    );
    if !tracks.is_empty() {
        ev.insert("Tracks".into(), Value::Object(tracks));
    }
    let mut hits: Map<String, Value> = Map::new();
    for h in &e.hits {
        let name = match h.detector {
            Detector::Other => e.hit_collection(h).unwrap_or("Hits").to_owned(),
            d => d.as_str().to_owned(),
        };
        let p = h.position_cm.map(|v| f64::from(v) * MM_PER_CM);
        let mut o = json!({ "pos": p, "time": j(f64::from(h.time_ns)), "energy": j(f64::from(h.edep_kev) / 1000.0) });
        if let Value::Object(m) = &mut o {
            if h.detector != Detector::Other {
                m.insert("layer".into(), json!(h.layer));
            }
            if let Some(t) = h.track {
                m.insert("track".into(), json!(t));
            }
        }
        if let Value::Array(list) = hits.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(o);
        }
    }
    if !hits.is_empty() {
        ev.insert("Hits".into(), Value::Object(hits));
    }
    let clusters = group(
        &e.clusters,
        |c| coll_name(&c.collection, "CaloClusters"),
        |_, c| json!({ "energy": j(c.energy_gev * MEV_PER_GEV), "eta": j(c.eta), "phi": j(c.phi) }),
    );
    if !clusters.is_empty() {
        ev.insert("CaloClusters".into(), Value::Object(clusters));
    }
    let jets = group(
        &e.jets,
        |o| coll_name(&o.collection, "Jets"),
        |_, o| json!({ "energy": j(o.e_gev * MEV_PER_GEV), "eta": j(o.eta), "phi": j(o.phi), "coneR": j(o.cone_r) }),
    );
    if !jets.is_empty() {
        ev.insert("Jets".into(), Value::Object(jets));
    }
    let vertices = group(
        &e.vertices,
        |v| coll_name(&v.collection, "Vertices"),
        |_, v| {
            let p = v.position_cm.map(|c| c * MM_PER_CM);
            json!({ "x": j(p[0]), "y": j(p[1]), "z": j(p[2]), "nTracks": v.n_tracks })
        },
    );
    if !vertices.is_empty() {
        ev.insert("Vertices".into(), Value::Object(vertices));
    }
    if let Some(m) = e.met {
        ev.insert(
            "MissingEnergy".into(),
            json!({ "MET": [{ "etx": j(m.px_gev * MEV_PER_GEV), "ety": j(m.py_gev * MEV_PER_GEV) }] }),
        );
    }
    for (kind, list) in [
        ("Muons", &e.muons),
        ("Electrons", &e.electrons),
        ("Photons", &e.photons),
    ] {
        let objects = group(
            list,
            |o| coll_name(&o.collection, kind),
            |_, o| {
                let mut v = json!({ "pt": j(o.pt_gev * MEV_PER_GEV), "eta": j(o.eta), "phi": j(o.phi), "charge": o.charge,
                                "energy": j(o.e_gev * MEV_PER_GEV), "iso": j(o.isolation) });
                if let (Some(t), Value::Object(m)) = (o.track, &mut v)
                    && let Some(link) = link_of.get(t as usize)
                {
                    m.insert("LinkedTracks".into(), json!([link]));
                }
                v
            },
        );
        if !objects.is_empty() {
            ev.insert(kind.into(), Value::Object(objects));
        }
    }
    Value::Object(ev)
}

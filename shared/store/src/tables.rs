//! The columnar layout: one flat table per collection, every row keyed by `event_id` (plus the
//! object's index within its event). Per-event queries read `events`; per-object queries read
//! one collection; pair combinatorics are a self-join of a collection on `event_id`.
//!
//! This module is the one place that knows the column names and types, and converts between
//! `CollisionEvent`s and polars `DataFrame`s in both directions. A NaN (not measured) field
//! becomes a null and comes back as NaN.

use std::collections::HashMap;

use polars::prelude::*;

use crate::error::{Error, Result};
use alyx_core::helix::HelixParams;
use alyx_core::model::{
    CaloCluster, CollisionEvent, CollisionSystem, Detector, DetectorHit, EventHeader,
    MissingEnergy, ParticleTrack, PhysicsObject, TruthParticle, Vertex,
};
use alyx_core::physics::FourMomentum;
use alyx_core::validate;

/// The tables of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Events,
    Tracks,
    Hits,
    Muons,
    Electrons,
    Photons,
    Jets,
    Clusters,
    Vertices,
    Truth,
    TrackPoints,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Events,
        Table::Tracks,
        Table::Hits,
        Table::Muons,
        Table::Electrons,
        Table::Photons,
        Table::Jets,
        Table::Clusters,
        Table::Vertices,
        Table::Truth,
        Table::TrackPoints,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Tracks => "tracks",
            Table::Hits => "hits",
            Table::Muons => "muons",
            Table::Electrons => "electrons",
            Table::Photons => "photons",
            Table::Jets => "jets",
            Table::Clusters => "clusters",
            Table::Vertices => "vertices",
            Table::Truth => "truth",
            Table::TrackPoints => "track_points",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Table::Events => {
                "one row per collision: ids, run, time, system, vertex, trigger, multiplicities, MET, flags"
            }
            Table::Tracks => {
                "reconstructed charged tracks: momentum, production point, helix, PID, fit quality"
            }
            Table::Hits => {
                "detector hits: detector, layer/pad row/sector, position, time, energy, owning track"
            }
            Table::Muons => "muon candidates",
            Table::Electrons => "electron candidates",
            Table::Photons => "photon candidates",
            Table::Jets => "jets (with b-tag and cone size)",
            Table::Clusters => "calorimeter clusters",
            Table::Vertices => "secondary and pile-up vertices",
            Table::Truth => "Monte Carlo truth of resonances and their decay products",
            Table::TrackPoints => "track polylines given by the source file (Phoenix `pos`)",
        }
    }
}

/// The frames of one batch of events, one per table (every table present, possibly empty).
pub type Frames = Vec<(Table, DataFrame)>;

fn nan_to_null(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn col<T, P: ?Sized>(name: &str, values: T) -> Column
where
    Series: NamedFrom<T, P>,
{
    Column::new(name.into(), values)
}

macro_rules! frame {
    ($height:expr; $($name:literal => $values:expr),+ $(,)?) => {
        DataFrame::new($height, vec![$(col($name, $values)),+])
    };
}

/// Object tables share one schema (`iso`, `btag`, `cone_r` are null where they do not apply).
fn objects_frame<'a>(
    rows: impl Iterator<Item = (u64, u32, &'a PhysicsObject)>,
) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = rows.collect();
    let f = |g: fn(&PhysicsObject) -> f64| {
        rows.iter()
            .map(|(_, _, o)| nan_to_null(g(o)))
            .collect::<Vec<_>>()
    };
    frame!(rows.len();
        "event_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "idx" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "pt" => f(|o| o.pt_gev),
        "eta" => f(|o| o.eta),
        "phi" => f(|o| o.phi),
        "mass" => f(|o| o.mass_gev),
        "px" => f(|o| o.px_gev),
        "py" => f(|o| o.py_gev),
        "pz" => f(|o| o.pz_gev),
        "e" => f(|o| o.e_gev),
        "charge" => rows.iter().map(|r| r.2.charge).collect::<Vec<_>>(),
        "iso" => f(|o| o.isolation),
        "btag" => f(|o| o.btag),
        "cone_r" => f(|o| o.cone_r),
        "track_id" => rows.iter().map(|r| r.2.track).collect::<Vec<_>>(),
        "collection" => rows.iter().map(|r| r.2.collection.as_str()).collect::<Vec<_>>(),
    )
}

/// Converts events (given dataset ids `first_id..`) into one frame per table, validating each
/// event and recording the reasons in `events.flags`.
pub fn events_to_frames(events: &[CollisionEvent], first_id: u64) -> Result<Frames> {
    let ids = || (first_id..).zip(events);
    let headers: Vec<_> = ids().map(|(id, e)| (id, e)).collect();
    let flags: Vec<String> = events
        .iter()
        .map(|e| validate::flags(&validate::validate(e)))
        .collect();
    let h = |g: fn(&CollisionEvent) -> f64| headers.iter().map(|(_, e)| g(e)).collect::<Vec<_>>();
    let count = |g: fn(&CollisionEvent) -> usize| {
        headers.iter().map(|(_, e)| g(e) as u32).collect::<Vec<_>>()
    };
    let met = |g: fn(&MissingEnergy) -> f64| {
        headers
            .iter()
            .map(|(_, e)| e.met.and_then(|m| nan_to_null(g(&m))))
            .collect::<Vec<_>>()
    };
    let has_met = headers
        .iter()
        .map(|(_, e)| e.met.is_some())
        .collect::<Vec<_>>();
    let hit_collections = headers
        .iter()
        .map(|(_, e)| {
            if e.header.hit_collections.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&e.header.hit_collections).unwrap_or_default()
            }
        })
        .collect::<Vec<_>>();
    let events_df = frame!(events.len();
        "event_id" => headers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "run" => headers.iter().map(|(_, e)| e.header.run).collect::<Vec<_>>(),
        "event_number" => headers.iter().map(|(_, e)| e.header.event_number).collect::<Vec<_>>(),
        "timestamp_ns" => headers.iter().map(|(_, e)| e.header.timestamp_ns).collect::<Vec<_>>(),
        "system" => headers.iter().map(|(_, e)| e.header.system.as_str()).collect::<Vec<_>>(),
        "sqrt_s_gev" => headers.iter().map(|(_, e)| nan_to_null(e.header.sqrt_s_gev)).collect::<Vec<_>>(),
        "vx" => h(|e| e.header.vertex_cm[0]),
        "vy" => h(|e| e.header.vertex_cm[1]),
        "vz" => h(|e| e.header.vertex_cm[2]),
        "trigger" => headers.iter().map(|(_, e)| e.header.trigger_bits).collect::<Vec<_>>(),
        "weight" => h(|e| e.header.weight),
        "n_tracks" => count(|e| e.tracks.len()),
        "n_hits" => count(|e| e.hits.len()),
        "n_muons" => count(|e| e.muons.len()),
        "n_electrons" => count(|e| e.electrons.len()),
        "n_photons" => count(|e| e.photons.len()),
        "n_jets" => count(|e| e.jets.len()),
        "met_px" => met(|m| m.px_gev),
        "met_py" => met(|m| m.py_gev),
        "met_pt" => met(|m| m.pt_gev),
        "met_phi" => met(|m| m.phi),
        "has_met" => has_met,
        "hit_collections" => hit_collections,
        "flags" => flags,
    )?;

    let tracks: Vec<(u64, u32, &ParticleTrack)> = ids()
        .flat_map(|(id, e)| {
            e.tracks
                .iter()
                .enumerate()
                .map(move |(i, t)| (id, i as u32, t))
        })
        .collect();
    let t = |g: fn(&ParticleTrack) -> f64| tracks.iter().map(|r| g(r.2)).collect::<Vec<_>>();
    let tracks_df = frame!(tracks.len();
        "event_id" => tracks.iter().map(|r| r.0).collect::<Vec<_>>(),
        "track_id" => tracks.iter().map(|r| r.1).collect::<Vec<_>>(),
        "charge" => tracks.iter().map(|r| r.2.charge).collect::<Vec<_>>(),
        "px" => t(|t| t.momentum[0]),
        "py" => t(|t| t.momentum[1]),
        "pz" => t(|t| t.momentum[2]),
        "pt" => t(|t| t.pt()),
        "eta" => t(|t| FourMomentum::from_p3_mass(t.momentum[0], t.momentum[1], t.momentum[2], 0.0).eta()),
        "phi" => t(|t| t.momentum[1].atan2(t.momentum[0])),
        "vx" => t(|t| t.origin_cm[0]),
        "vy" => t(|t| t.origin_cm[1]),
        "vz" => t(|t| t.origin_cm[2]),
        "d0" => t(|t| t.helix.d0_cm),
        "z0" => t(|t| t.helix.z0_cm),
        "phi0" => t(|t| t.helix.phi0),
        "tan_lambda" => t(|t| t.helix.tan_lambda),
        "q_over_pt" => t(|t| t.helix.q_over_pt),
        "pid" => tracks.iter().map(|r| r.2.pid).collect::<Vec<_>>(),
        "chi2_ndf" => tracks.iter().map(|r| nan_to_null(r.2.chi2_ndf)).collect::<Vec<_>>(),
        "n_hits" => tracks.iter().map(|r| r.2.n_hits).collect::<Vec<_>>(),
        "collection" => tracks.iter().map(|r| r.2.collection.as_str()).collect::<Vec<_>>(),
    )?;

    let n_hits: usize = events.iter().map(|e| e.hits.len()).sum();
    let mut hit_cols = HitColumns::with_capacity(n_hits);
    for (id, e) in ids() {
        for (i, hit) in e.hits.iter().enumerate() {
            hit_cols.push(id, i as u32, hit);
        }
    }
    let hits_df = hit_cols.finish()?;

    let objects =
        |g: fn(&CollisionEvent) -> &Vec<PhysicsObject>| {
            objects_frame(ids().flat_map(move |(id, e)| {
                g(e).iter().enumerate().map(move |(i, o)| (id, i as u32, o))
            }))
        };

    let clusters: Vec<(u64, u32, &CaloCluster)> = ids()
        .flat_map(|(id, e)| {
            e.clusters
                .iter()
                .enumerate()
                .map(move |(i, c)| (id, i as u32, c))
        })
        .collect();
    let clusters_df = frame!(clusters.len();
        "event_id" => clusters.iter().map(|r| r.0).collect::<Vec<_>>(),
        "idx" => clusters.iter().map(|r| r.1).collect::<Vec<_>>(),
        "energy" => clusters.iter().map(|r| r.2.energy_gev).collect::<Vec<_>>(),
        "eta" => clusters.iter().map(|r| r.2.eta).collect::<Vec<_>>(),
        "phi" => clusters.iter().map(|r| r.2.phi).collect::<Vec<_>>(),
        "x" => clusters.iter().map(|r| r.2.position_cm[0]).collect::<Vec<_>>(),
        "y" => clusters.iter().map(|r| r.2.position_cm[1]).collect::<Vec<_>>(),
        "z" => clusters.iter().map(|r| r.2.position_cm[2]).collect::<Vec<_>>(),
        "collection" => clusters.iter().map(|r| r.2.collection.as_str()).collect::<Vec<_>>(),
    )?;

    let vertices: Vec<(u64, u32, &Vertex)> = ids()
        .flat_map(|(id, e)| {
            e.vertices
                .iter()
                .enumerate()
                .map(move |(i, v)| (id, i as u32, v))
        })
        .collect();
    let vertices_df = frame!(vertices.len();
        "event_id" => vertices.iter().map(|r| r.0).collect::<Vec<_>>(),
        "idx" => vertices.iter().map(|r| r.1).collect::<Vec<_>>(),
        "x" => vertices.iter().map(|r| r.2.position_cm[0]).collect::<Vec<_>>(),
        "y" => vertices.iter().map(|r| r.2.position_cm[1]).collect::<Vec<_>>(),
        "z" => vertices.iter().map(|r| r.2.position_cm[2]).collect::<Vec<_>>(),
        "n_tracks" => vertices.iter().map(|r| r.2.n_tracks).collect::<Vec<_>>(),
        "collection" => vertices.iter().map(|r| r.2.collection.as_str()).collect::<Vec<_>>(),
    )?;

    let truth: Vec<(u64, u32, &TruthParticle)> = ids()
        .flat_map(|(id, e)| {
            e.truth
                .iter()
                .enumerate()
                .map(move |(i, p)| (id, i as u32, p))
        })
        .collect();
    let tr = |g: fn(&TruthParticle) -> f64| truth.iter().map(|r| g(r.2)).collect::<Vec<_>>();
    let truth_df = frame!(truth.len();
        "event_id" => truth.iter().map(|r| r.0).collect::<Vec<_>>(),
        "idx" => truth.iter().map(|r| r.1).collect::<Vec<_>>(),
        "pdg" => truth.iter().map(|r| r.2.pdg).collect::<Vec<_>>(),
        "px" => tr(|p| p.p4.px),
        "py" => tr(|p| p.p4.py),
        "pz" => tr(|p| p.p4.pz),
        "e" => tr(|p| p.p4.e),
        "mass" => tr(|p| p.p4.mass()),
        "vx" => tr(|p| p.vertex_cm[0]),
        "vy" => tr(|p| p.vertex_cm[1]),
        "vz" => tr(|p| p.vertex_cm[2]),
        "mother" => truth.iter().map(|r| r.2.mother).collect::<Vec<_>>(),
        "track_id" => truth.iter().map(|r| r.2.track).collect::<Vec<_>>(),
    )?;

    let points: Vec<(u64, u32, u32, [f32; 3])> = ids()
        .flat_map(|(id, e)| {
            e.tracks.iter().enumerate().flat_map(move |(ti, t)| {
                t.polyline_cm
                    .iter()
                    .enumerate()
                    .map(move |(k, p)| (id, ti as u32, k as u32, *p))
            })
        })
        .collect();
    let points_df = frame!(points.len();
        "event_id" => points.iter().map(|r| r.0).collect::<Vec<_>>(),
        "track_id" => points.iter().map(|r| r.1).collect::<Vec<_>>(),
        "seq" => points.iter().map(|r| r.2).collect::<Vec<_>>(),
        "x" => points.iter().map(|r| r.3[0]).collect::<Vec<_>>(),
        "y" => points.iter().map(|r| r.3[1]).collect::<Vec<_>>(),
        "z" => points.iter().map(|r| r.3[2]).collect::<Vec<_>>(),
    )?;

    Ok(vec![
        (Table::Events, events_df),
        (Table::Tracks, tracks_df),
        (Table::Hits, hits_df),
        (Table::Muons, objects(|e| &e.muons)?),
        (Table::Electrons, objects(|e| &e.electrons)?),
        (Table::Photons, objects(|e| &e.photons)?),
        (Table::Jets, objects(|e| &e.jets)?),
        (Table::Clusters, clusters_df),
        (Table::Vertices, vertices_df),
        (Table::Truth, truth_df),
        (Table::TrackPoints, points_df),
    ])
}

/// Hits are the largest table (hundreds of thousands of rows per Pb–Pb event): built column
/// by column without intermediate tuples.
struct HitColumns {
    event_id: Vec<u64>,
    hit_id: Vec<u32>,
    track_id: Vec<Option<u32>>,
    detector: Vec<&'static str>,
    layer: Vec<u32>,
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    t: Vec<f32>,
    edep: Vec<f32>,
}

impl HitColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            event_id: Vec::with_capacity(n),
            hit_id: Vec::with_capacity(n),
            track_id: Vec::with_capacity(n),
            detector: Vec::with_capacity(n),
            layer: Vec::with_capacity(n),
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            t: Vec::with_capacity(n),
            edep: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, event_id: u64, hit_id: u32, h: &DetectorHit) {
        self.event_id.push(event_id);
        self.hit_id.push(hit_id);
        self.track_id.push(h.track);
        self.detector.push(h.detector.as_str());
        self.layer.push(h.layer);
        self.x.push(h.position_cm[0]);
        self.y.push(h.position_cm[1]);
        self.z.push(h.position_cm[2]);
        self.t.push(h.time_ns);
        self.edep.push(h.edep_kev);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        frame!(self.event_id.len();
            "event_id" => self.event_id,
            "hit_id" => self.hit_id,
            "track_id" => self.track_id,
            "detector" => self.detector,
            "layer" => self.layer,
            "x" => self.x,
            "y" => self.y,
            "z" => self.z,
            "t_ns" => self.t,
            "edep_kev" => self.edep,
        )
    }
}

// ---- reading back -------------------------------------------------------------------------

fn column<'a>(df: &'a DataFrame, table: Table, name: &str) -> Result<&'a Series> {
    df.column(name)
        .map(|c| c.as_materialized_series())
        .map_err(|_| Error::NotFound(format!("table `{}` has no column `{name}`", table.name())))
}

fn f64s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<f64>> {
    let s = column(df, table, name)?.cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn f32s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<f32>> {
    let s = column(df, table, name)?.cast(&DataType::Float32)?;
    Ok(s.f32()?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

fn opt_u32s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<Option<u32>>> {
    let s = column(df, table, name)?.cast(&DataType::UInt32)?;
    Ok(s.u32()?.iter().collect())
}

fn u32s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<u32>> {
    Ok(opt_u32s(df, table, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

fn i32s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<i32>> {
    let s = column(df, table, name)?.cast(&DataType::Int32)?;
    Ok(s.i32()?.iter().map(Option::unwrap_or_default).collect())
}

fn u64s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<u64>> {
    let s = column(df, table, name)?.cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(Option::unwrap_or_default).collect())
}

fn i64s(df: &DataFrame, table: Table, name: &str) -> Result<Vec<i64>> {
    let s = column(df, table, name)?.cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().map(Option::unwrap_or_default).collect())
}

fn strings(df: &DataFrame, table: Table, name: &str) -> Result<Vec<String>> {
    let s = column(df, table, name)?;
    Ok(s.str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect())
}

fn corrupt(table: Table, what: impl Into<String>) -> Error {
    Error::Invalid(format!("table `{}`: {}", table.name(), what.into()))
}

/// Rebuilds events from their frames (the frames may hold any subset of a chunk's events, as
/// long as each table holds the rows of the same events). Returns `(event_id, event)` in
/// `events` table order.
pub fn frames_to_events(frames: &HashMap<Table, DataFrame>) -> Result<Vec<(u64, CollisionEvent)>> {
    let get = |t: Table| {
        frames
            .get(&t)
            .ok_or_else(|| Error::NotFound(format!("table `{}` missing", t.name())))
    };
    let ev = get(Table::Events)?;
    let e = Table::Events;
    let ids = u64s(ev, e, "event_id")?;
    let (runs, numbers, times) = (
        u32s(ev, e, "run")?,
        u64s(ev, e, "event_number")?,
        i64s(ev, e, "timestamp_ns")?,
    );
    let (systems, sqrt_s) = (strings(ev, e, "system")?, f64s(ev, e, "sqrt_s_gev")?);
    let (vx, vy, vz) = (f64s(ev, e, "vx")?, f64s(ev, e, "vy")?, f64s(ev, e, "vz")?);
    let (trigger, weight) = (u64s(ev, e, "trigger")?, f64s(ev, e, "weight")?);
    let met: Vec<Vec<f64>> = ["met_px", "met_py", "met_pt", "met_phi"]
        .iter()
        .map(|c| f64s(ev, e, c))
        .collect::<Result<_>>()?;
    let has_met: Vec<bool> = column(ev, e, "has_met")?
        .bool()?
        .iter()
        .map(|v| v == Some(true))
        .collect();
    let hit_collections = strings(ev, e, "hit_collections")?;

    let mut out: Vec<(u64, CollisionEvent)> = Vec::with_capacity(ids.len());
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(ids.len());
    for i in 0..ids.len() {
        let mut event = CollisionEvent::new(EventHeader {
            run: runs[i],
            event_number: numbers[i],
            timestamp_ns: times[i],
            system: CollisionSystem::parse(&systems[i]).unwrap_or(CollisionSystem::Unknown),
            sqrt_s_gev: sqrt_s[i],
            vertex_cm: [vx[i], vy[i], vz[i]],
            trigger_bits: trigger[i],
            weight: weight[i],
            hit_collections: if hit_collections[i].is_empty() {
                Vec::new()
            } else {
                serde_json::from_str(&hit_collections[i]).map_err(|err| {
                    corrupt(e, format!("bad hit_collections of event {}: {err}", ids[i]))
                })?
            },
        });
        if has_met[i] {
            event.met = Some(MissingEnergy {
                px_gev: met[0][i],
                py_gev: met[1][i],
                pt_gev: met[2][i],
                phi: met[3][i],
            });
        }
        index.insert(ids[i], i);
        out.push((ids[i], event));
    }
    let slot = |table: Table, id: u64| -> Result<usize> {
        index
            .get(&id)
            .copied()
            .ok_or_else(|| corrupt(table, format!("row for event {id} missing from `events`")))
    };

    let t = Table::Tracks;
    let df = get(t)?;
    let (eid, charge, pid, n_hits) = (
        u64s(df, t, "event_id")?,
        i32s(df, t, "charge")?,
        i32s(df, t, "pid")?,
        u32s(df, t, "n_hits")?,
    );
    let collection = strings(df, t, "collection")?;
    let cols: Vec<Vec<f64>> = [
        "px",
        "py",
        "pz",
        "vx",
        "vy",
        "vz",
        "d0",
        "z0",
        "phi0",
        "tan_lambda",
        "q_over_pt",
        "chi2_ndf",
    ]
    .iter()
    .map(|c| f64s(df, t, c))
    .collect::<Result<_>>()?;
    for i in 0..eid.len() {
        let ev = &mut out[slot(t, eid[i])?].1;
        ev.tracks.push(ParticleTrack {
            charge: charge[i],
            momentum: [cols[0][i], cols[1][i], cols[2][i]],
            origin_cm: [cols[3][i], cols[4][i], cols[5][i]],
            helix: HelixParams {
                d0_cm: cols[6][i],
                z0_cm: cols[7][i],
                phi0: cols[8][i],
                tan_lambda: cols[9][i],
                q_over_pt: cols[10][i],
            },
            pid: pid[i],
            chi2_ndf: cols[11][i],
            n_hits: n_hits[i],
            polyline_cm: Vec::new(),
            collection: collection[i].clone(),
        });
    }

    let t = Table::Hits;
    let df = get(t)?;
    let (eid, track, layer) = (
        u64s(df, t, "event_id")?,
        opt_u32s(df, t, "track_id")?,
        u32s(df, t, "layer")?,
    );
    let det: Vec<Detector> = column(df, t, "detector")?
        .str()?
        .iter()
        .map(|d| {
            Detector::parse(d.unwrap_or_default())
                .ok_or_else(|| corrupt(t, format!("unknown detector `{d:?}`")))
        })
        .collect::<Result<_>>()?;
    let (x, y, z, time, edep) = (
        f32s(df, t, "x")?,
        f32s(df, t, "y")?,
        f32s(df, t, "z")?,
        f32s(df, t, "t_ns")?,
        f32s(df, t, "edep_kev")?,
    );
    for i in 0..eid.len() {
        let ev = &mut out[slot(t, eid[i])?].1;
        ev.hits.push(DetectorHit {
            detector: det[i],
            layer: layer[i],
            position_cm: [x[i], y[i], z[i]],
            time_ns: time[i],
            edep_kev: edep[i],
            track: track[i],
        });
    }

    for t in [Table::Muons, Table::Electrons, Table::Photons, Table::Jets] {
        let df = get(t)?;
        let eid = u64s(df, t, "event_id")?;
        let (charge, track) = (i32s(df, t, "charge")?, opt_u32s(df, t, "track_id")?);
        let collection = strings(df, t, "collection")?;
        let c: Vec<Vec<f64>> = [
            "pt", "eta", "phi", "mass", "px", "py", "pz", "e", "iso", "btag", "cone_r",
        ]
        .iter()
        .map(|n| f64s(df, t, n))
        .collect::<Result<_>>()?;
        for i in 0..eid.len() {
            let ev = &mut out[slot(t, eid[i])?].1;
            let list = match t {
                Table::Muons => &mut ev.muons,
                Table::Electrons => &mut ev.electrons,
                Table::Photons => &mut ev.photons,
                _ => &mut ev.jets,
            };
            list.push(PhysicsObject {
                pt_gev: c[0][i],
                eta: c[1][i],
                phi: c[2][i],
                mass_gev: c[3][i],
                px_gev: c[4][i],
                py_gev: c[5][i],
                pz_gev: c[6][i],
                e_gev: c[7][i],
                charge: charge[i],
                isolation: c[8][i],
                btag: c[9][i],
                cone_r: c[10][i],
                track: track[i],
                collection: collection[i].clone(),
            });
        }
    }

    let t = Table::Clusters;
    let df = get(t)?;
    let (eid, energy, eta, phi) = (
        u64s(df, t, "event_id")?,
        f64s(df, t, "energy")?,
        f64s(df, t, "eta")?,
        f64s(df, t, "phi")?,
    );
    // Datasets written before clusters had positions lack x, y, z.
    let [x, y, z] =
        ["x", "y", "z"].map(|c| f64s(df, t, c).unwrap_or_else(|_| vec![f64::NAN; eid.len()]));
    let collection = strings(df, t, "collection")?;
    for i in 0..eid.len() {
        let cluster = CaloCluster {
            energy_gev: energy[i],
            eta: eta[i],
            phi: phi[i],
            position_cm: [x[i], y[i], z[i]],
            collection: collection[i].clone(),
        };
        out[slot(t, eid[i])?].1.clusters.push(cluster);
    }

    let t = Table::Vertices;
    let df = get(t)?;
    let (eid, x, y, z, n) = (
        u64s(df, t, "event_id")?,
        f64s(df, t, "x")?,
        f64s(df, t, "y")?,
        f64s(df, t, "z")?,
        u32s(df, t, "n_tracks")?,
    );
    let collection = strings(df, t, "collection")?;
    for i in 0..eid.len() {
        let vertex = Vertex {
            position_cm: [x[i], y[i], z[i]],
            n_tracks: n[i],
            collection: collection[i].clone(),
        };
        out[slot(t, eid[i])?].1.vertices.push(vertex);
    }

    let t = Table::Truth;
    let df = get(t)?;
    let (eid, pdg, mother, track) = (
        u64s(df, t, "event_id")?,
        i32s(df, t, "pdg")?,
        opt_u32s(df, t, "mother")?,
        opt_u32s(df, t, "track_id")?,
    );
    let c: Vec<Vec<f64>> = ["px", "py", "pz", "e", "vx", "vy", "vz"]
        .iter()
        .map(|n| f64s(df, t, n))
        .collect::<Result<_>>()?;
    for i in 0..eid.len() {
        out[slot(t, eid[i])?].1.truth.push(TruthParticle {
            pdg: pdg[i],
            p4: FourMomentum::new(c[0][i], c[1][i], c[2][i], c[3][i]),
            vertex_cm: [c[4][i], c[5][i], c[6][i]],
            mother: mother[i],
            track: track[i],
        });
    }

    let t = Table::TrackPoints;
    let df = get(t)?;
    let (eid, track, x, y, z) = (
        u64s(df, t, "event_id")?,
        u32s(df, t, "track_id")?,
        f32s(df, t, "x")?,
        f32s(df, t, "y")?,
        f32s(df, t, "z")?,
    );
    for i in 0..eid.len() {
        let ev = &mut out[slot(t, eid[i])?].1;
        let Some(tr) = ev.tracks.get_mut(track[i] as usize) else {
            return Err(corrupt(
                t,
                format!(
                    "point refers to missing track {} of event {}",
                    track[i], eid[i]
                ),
            ));
        };
        tr.polyline_cm.push([x[i], y[i], z[i]]);
    }
    Ok(out)
}

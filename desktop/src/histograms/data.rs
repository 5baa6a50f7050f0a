//! Histograms of the open dataset as data: the quantities, filling them in the engine, CSV
//! export.

use crate::Error;
use alyx_core::histogram::{Binning, Histogram, Histogram2};
use alyx_core::model::pid_mass;
use alyx_query as query;
use alyx_store::Dataset;
use bevy::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// What can be histogrammed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Quantity {
    #[default]
    TrackPt,
    TrackEta,
    TrackPhi,
    /// Tracks per event.
    Multiplicity,
    /// Invariant mass of every opposite-charge pair of muon candidates in an event.
    DimuonMass,
    /// Invariant mass of every opposite-charge track pair in an event, each track with the
    /// mass of its particle identification (the pion's where unidentified).
    TrackPairMass,
}

impl Quantity {
    pub const ALL: [Quantity; 6] = [
        Quantity::TrackPt,
        Quantity::TrackEta,
        Quantity::TrackPhi,
        Quantity::Multiplicity,
        Quantity::DimuonMass,
        Quantity::TrackPairMass,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Quantity::TrackPt => "track pT",
            Quantity::TrackEta => "track η",
            Quantity::TrackPhi => "track φ",
            Quantity::Multiplicity => "tracks per event",
            Quantity::DimuonMass => "μ+μ- pair mass",
            Quantity::TrackPairMass => "h+h- pair mass",
        }
    }

    /// The name on the command line (`alyx --histogram`).
    pub fn short_name(self) -> &'static str {
        match self {
            Quantity::TrackPt => "pt",
            Quantity::TrackEta => "eta",
            Quantity::TrackPhi => "phi",
            Quantity::Multiplicity => "multiplicity",
            Quantity::DimuonMass => "dimuon-mass",
            Quantity::TrackPairMass => "pair-mass",
        }
    }

    /// The x axis title, with units.
    pub fn axis_label(self) -> &'static str {
        match self {
            Quantity::TrackPt => "pT (GeV)",
            Quantity::TrackEta => "η",
            Quantity::TrackPhi => "φ (rad)",
            Quantity::Multiplicity => "tracks per event",
            Quantity::DimuonMass => "m(μ+μ-) (GeV)",
            Quantity::TrackPairMass => "m(h+h-) (GeV)",
        }
    }

    /// The query whose column `x` is histogrammed (one row per track, event or pair).
    pub fn sql(self) -> String {
        let pair_mass = "SQRT(POW(a.e + b.e, 2) - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) \
                         - POW(a.pz + b.pz, 2)) AS x";
        // Each opposite-charge pair of an event once: the positive one as `a`.
        let pairs = |t: &str| {
            format!(
                "{t} a JOIN {t} b ON a.event_id = b.event_id WHERE a.charge > 0 AND b.charge < 0"
            )
        };
        match self {
            Quantity::TrackPt => "SELECT pt AS x FROM tracks".into(),
            Quantity::TrackEta => "SELECT eta AS x FROM tracks".into(),
            Quantity::TrackPhi => "SELECT phi AS x FROM tracks".into(),
            Quantity::Multiplicity => "SELECT n_tracks AS x FROM events".into(),
            Quantity::DimuonMass => format!("SELECT {pair_mass} FROM {}", pairs("muons")),
            Quantity::TrackPairMass => {
                let m2 = |pid: i32| pid_mass(pid).powi(2);
                format!(
                    "WITH t AS (SELECT event_id, charge, px, py, pz, SQRT(px * px + py * py + pz * pz + \
                     CASE WHEN ABS(pid) = 11 THEN {} WHEN ABS(pid) = 13 THEN {} \
                     WHEN ABS(pid) = 321 THEN {} WHEN ABS(pid) = 2212 THEN {} ELSE {} END) AS e \
                     FROM tracks) SELECT {pair_mass} FROM {}",
                    m2(11),
                    m2(13),
                    m2(321),
                    m2(2212),
                    m2(211),
                    pairs("t")
                )
            }
        }
    }

    /// (bins, lo, hi) a histogram of it starts with.
    pub fn default_range(self) -> (usize, f64, f64) {
        use std::f64::consts::PI;
        match self {
            Quantity::TrackPt => (100, 0.0, 10.0),
            Quantity::TrackEta => (50, -2.5, 2.5),
            Quantity::TrackPhi => (64, -PI, PI),
            Quantity::Multiplicity => (100, 0.0, 100.0),
            Quantity::DimuonMass => (100, 0.0, 200.0),
            Quantity::TrackPairMass => (200, 0.0, 4.0),
        }
    }
}

/// What can be mapped in two dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Map {
    /// Where the tracks go: η against φ (a hole is a dead sector).
    EtaPhi,
    /// The Armenteros–Podolanski plot of displaced V0 candidates: K⁰s and Λ apart without
    /// particle identification.
    Armenteros,
}

impl Map {
    pub const ALL: [Map; 2] = [Map::EtaPhi, Map::Armenteros];

    pub fn name(self) -> &'static str {
        match self {
            Map::EtaPhi => "track η–φ occupancy (2-D)",
            Map::Armenteros => "Armenteros–Podolanski, V0s (2-D)",
        }
    }

    /// The name on the command line (`alyx --histogram`).
    pub fn short_name(self) -> &'static str {
        match self {
            Map::EtaPhi => "eta-phi",
            Map::Armenteros => "armenteros",
        }
    }

    /// The x and y axis titles.
    pub fn axis_labels(self) -> (&'static str, &'static str) {
        match self {
            Map::EtaPhi => ("η", "φ (rad)"),
            Map::Armenteros => ("α = (pL+ − pL−)/(pL+ + pL−)", "qT (GeV)"),
        }
    }

    /// The query whose columns `x` and `y` are histogrammed, and their names.
    pub fn sql(self) -> (String, (&'static str, &'static str)) {
        match self {
            Map::EtaPhi => ("SELECT eta AS x, phi AS y FROM tracks".into(), ("x", "y")),
            // Decays at least a millimetre from the beam: the primary vertex's pairs stay out.
            Map::Armenteros => (query::armenteros_sql(0.1), ("alpha", "qt")),
        }
    }

    /// (bins, lo, hi) of x and of y a map of it starts with.
    pub fn default_ranges(self) -> [(usize, f64, f64); 2] {
        use std::f64::consts::PI;
        match self {
            Map::EtaPhi => [(50, -2.5, 2.5), (64, -PI, PI)],
            Map::Armenteros => [(80, -1.0, 1.0), (60, 0.0, 0.3)],
        }
    }
}

/// What `alyx --histogram NAME` opens, by the short names of [`Quantity`] and [`Map`].
pub const SHORT_NAMES: [&str; 8] = [
    "pt",
    "eta",
    "phi",
    "multiplicity",
    "dimuon-mass",
    "pair-mass",
    "eta-phi",
    "armenteros",
];

/// The 2-D histogram of `map` over all of `dataset`.
pub fn fill_map(dataset: &Dataset, map: Map, x: Binning, y: Binning) -> Result<Histogram2, Error> {
    let (sql, (cx, cy)) = map.sql();
    let checked =
        query::prepare(&sql, query::Engine::Local).map_err(|d| query::invalid_query(&d))?;
    Ok(query::histogram2_local(
        dataset,
        &checked,
        (cx, x),
        (cy, y),
    )?)
}

/// Writes the cells as CSV: `x_lo,x_hi,y_lo,y_hi,count,error`, row by row.
pub fn write_map_csv(h: &Histogram2, path: &Path) -> Result<(), Error> {
    let (ex, ey) = (h.x.edges(), h.y.edges());
    let mut out = String::from("x_lo,x_hi,y_lo,y_hi,count,error\n");
    for iy in 0..h.y.bins() {
        for ix in 0..h.x.bins() {
            let i = iy * h.x.bins() + ix;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                ex[ix],
                ex[ix + 1],
                ey[iy],
                ey[iy + 1],
                h.sum_w[i],
                h.sum_w2[i].sqrt()
            );
        }
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// Histograms `quantity` over all of `dataset` (unweighted).
pub fn fill(dataset: &Dataset, quantity: Quantity, binning: Binning) -> Result<Histogram, Error> {
    let checked = query::prepare(&quantity.sql(), query::Engine::Local)
        .map_err(|d| query::invalid_query(&d))?;
    Ok(query::histogram_local(
        dataset, &checked, "x", None, binning,
    )?)
}

/// Writes the bins as CSV: `lo,hi,count,error` (count Σw, error √Σw²).
pub fn write_csv(h: &Histogram, path: &Path) -> Result<(), Error> {
    let edges = h.binning.edges();
    let mut out = String::from("lo,hi,count,error\n");
    for (i, (count, error)) in h.sum_w.iter().zip(h.errors()).enumerate() {
        let _ = writeln!(out, "{},{},{count},{error}", edges[i], edges[i + 1]);
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

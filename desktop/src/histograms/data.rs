//! Histograms of the open dataset as data: the quantities, filling them in the engine, CSV and PNG export, the bars and log-scale grid a plot draws.

use crate::Error;
use alyx_core::histogram::{Binning, Histogram};
use alyx_core::model::pid_mass;
use alyx_query as query;
use alyx_store::Dataset;
use bevy::math::URect;
use bevy::prelude::*;
use bevy_egui::egui;
use egui_plot::{GridInput, GridMark};
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

/// The pixels of `rect` (egui points) on a screen of `pixels_per_point`, rounded outwards.
pub fn pixel_rect(rect: egui::Rect, pixels_per_point: f32) -> URect {
    let px = |v: f32, round: fn(f32) -> f32| round(v * pixels_per_point).max(0.0) as u32;
    URect::new(
        px(rect.min.x, f32::floor),
        px(rect.min.y, f32::floor),
        px(rect.max.x, f32::ceil),
        px(rect.max.y, f32::ceil),
    )
}

/// Saves the part `rect_px` of `image` (a screenshot) as an RGB PNG at `path`.
pub fn crop_png(image: &Image, rect_px: URect, path: &Path) -> Result<(), Error> {
    let full = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| Error::Invalid(format!("cannot read the screenshot: {e}")))?;
    let (w, h) = (full.width(), full.height());
    let (x0, y0) = (rect_px.min.x.min(w), rect_px.min.y.min(h));
    let (x1, y1) = (rect_px.max.x.min(w), rect_px.max.y.min(h));
    if x1 <= x0 || y1 <= y0 {
        return Err(Error::Invalid(format!(
            "the plot ({rect_px:?}) is outside the {w}×{h} screenshot"
        )));
    }
    // The alpha channel of a screenshot is not opacity (it holds brightness with HDR).
    full.crop_imm(x0, y0, x1 - x0, y1 - y0)
        .to_rgb8()
        .save(path)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// A bin as drawn: its bar from `base` to `top` and its error bar from `error_lo` to
/// `error_hi`, on the plotted y scale (log10 of the count on a log scale).
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnBin {
    pub lo: f64,
    pub hi: f64,
    pub count: f64,
    pub error: f64,
    pub base: f64,
    pub top: f64,
    pub error_lo: f64,
    pub error_hi: f64,
}

/// The bins to draw. On a log scale empty bins are left out and bars start half a decade
/// below the smallest count, rounded down to a power of ten.
pub fn drawn_bins(h: &Histogram, log_y: bool) -> Vec<DrawnBin> {
    let edges = h.binning.edges();
    let errors = h.errors();
    let bins = h
        .sum_w
        .iter()
        .zip(&errors)
        .enumerate()
        .map(|(i, (&count, &error))| DrawnBin {
            lo: edges[i],
            hi: edges[i + 1],
            count,
            error,
            base: 0.0,
            top: count,
            error_lo: count - error,
            error_hi: count + error,
        });
    if !log_y {
        return bins.collect();
    }
    let filled: Vec<DrawnBin> = bins.filter(|b| b.count > 0.0).collect();
    let smallest = filled
        .iter()
        .map(|b| b.count.log10())
        .fold(f64::INFINITY, f64::min);
    let floor = (smallest - 0.5).floor();
    filled
        .into_iter()
        .map(|b| DrawnBin {
            base: floor,
            top: b.count.log10(),
            error_lo: if b.count > b.error {
                (b.count - b.error).log10()
            } else {
                floor
            },
            error_hi: (b.count + b.error).log10(),
            ..b
        })
        .collect()
}

/// A log axis label: `10^k` written out, for whole decades only.
pub(crate) fn decade_label(k: f64) -> String {
    // Beyond 10^±308 no count exists (a wild zoom gets there): no label.
    if !((k - k.round()).abs() <= 1e-6 && k.abs() <= 308.0) {
        return String::new();
    }
    match k.round() as i32 {
        k @ -3..=5 => format!("{}", 10f64.powi(k)),
        k => format!("1e{k}"),
    }
}

/// Grid lines at whole decades (enough of them to stay readable).
pub(crate) fn decade_grid(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let step = ((hi - lo) / 8.0).ceil().max(1.0);
    let first = (lo / step).floor() * step;
    // At most nine steps cover the range; the count also ends the walk where `k + step == k`
    // (bounds near 1e17 and beyond, after a wild zoom).
    (0..10)
        .map(|i| first + f64::from(i) * step)
        .take_while(|k| *k <= hi)
        .map(|value| GridMark {
            value,
            step_size: step,
        })
        .collect()
}

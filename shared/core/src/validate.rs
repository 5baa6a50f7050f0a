//! Physics validation rules. An event that breaks one is *flagged* with the reason (the store
//! keeps it, with the reasons in the `flags` column of the `events` table): never dropped, never
//! "fixed". NaN means "not measured" for optional quantities and is allowed there; infinities
//! never are.

use std::fmt;

use crate::model::{CollisionEvent, PhysicsObject};
use crate::physics::FourMomentum;

/// Which rule an event broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A quantity that must be a finite number is NaN or infinite.
    NonFinite,
    /// A quantity lies outside its physical range (negative energy, |charge| > 2, E < |p|...).
    OutOfRange,
    /// A decay's daughters do not add up to the mother's four-momentum.
    MomentumConservation,
    /// An index to another object points nowhere.
    DanglingReference,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The reasons joined into the one-line form stored in the `flags` column ("" when valid).
pub fn flags(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Relative tolerance on four-momentum conservation (floating-point rounding of a boost).
const CONSERVATION_TOLERANCE: f64 = 1e-6;
/// Largest energy any particle at the LHC can carry, GeV.
const MAX_ENERGY_GEV: f64 = 14_000.0;

struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn push(&mut self, rule: Rule, message: String) {
        self.out.push(Violation { rule, message });
    }

    fn finite(&mut self, what: &str, values: &[f64]) {
        if values.iter().any(|v| !v.is_finite()) {
            self.push(
                Rule::NonFinite,
                format!("{what}: non-finite value in {values:?}"),
            );
        }
    }

    /// NaN (not measured) is fine, infinity is not.
    fn not_infinite(&mut self, what: &str, values: &[f64]) {
        if values.iter().any(|v| v.is_infinite()) {
            self.push(
                Rule::NonFinite,
                format!("{what}: infinite value in {values:?}"),
            );
        }
    }

    fn charge(&mut self, what: &str, q: i32) {
        if q.abs() > 2 {
            self.push(
                Rule::OutOfRange,
                format!("{what}: charge {q} outside [-2, 2]"),
            );
        }
    }

    fn reference(&mut self, what: &str, index: Option<u32>, len: usize) {
        if let Some(i) = index.filter(|i| *i as usize >= len) {
            self.push(
                Rule::DanglingReference,
                format!("{what}: refers to track {i} of {len}"),
            );
        }
    }

    fn four_momentum(&mut self, what: &str, p: FourMomentum) {
        self.finite(what, &[p.px, p.py, p.pz, p.e]);
        if p.e.is_finite() && p.e > MAX_ENERGY_GEV {
            self.push(
                Rule::OutOfRange,
                format!("{what}: energy {:.1} GeV above the LHC's reach", p.e),
            );
        }
        let pm = p.p();
        if p.e < pm * (1.0 - 1e-6) - 1e-9 {
            self.push(
                Rule::OutOfRange,
                format!("{what}: energy {:.6} GeV below momentum {pm:.6} GeV", p.e),
            );
        }
    }

    fn object(&mut self, what: &str, o: &PhysicsObject, n_tracks: usize) {
        let measured = [
            o.pt_gev, o.eta, o.phi, o.mass_gev, o.px_gev, o.py_gev, o.pz_gev, o.e_gev,
        ];
        self.not_infinite(what, &measured);
        self.finite(&format!("{what} pT"), &[o.pt_gev]);
        if o.pt_gev < 0.0 || o.e_gev < 0.0 {
            self.push(Rule::OutOfRange, format!("{what}: negative pT or energy"));
        }
        if [o.px_gev, o.py_gev, o.pz_gev, o.e_gev]
            .iter()
            .all(|v| v.is_finite())
        {
            let p = FourMomentum::new(o.px_gev, o.py_gev, o.pz_gev, o.e_gev);
            let pm = p.p();
            // Reconstructed objects carry resolution: allow a slightly negative m².
            if p.e < pm * (1.0 - 1e-4) - 1e-6 {
                self.push(
                    Rule::OutOfRange,
                    format!("{what}: energy {:.4} GeV below momentum {pm:.4} GeV", p.e),
                );
            }
        }
        self.charge(what, o.charge);
        self.reference(what, o.track, n_tracks);
    }
}

/// Every rule the event breaks (empty when it is valid).
pub fn validate(event: &CollisionEvent) -> Vec<Violation> {
    let mut c = Checker { out: Vec::new() };
    let h = &event.header;
    c.not_infinite("primary vertex", &h.vertex_cm);
    c.finite("event weight", &[h.weight]);
    c.not_infinite("√s", &[h.sqrt_s_gev]);
    if h.sqrt_s_gev <= 0.0 {
        c.push(
            Rule::OutOfRange,
            format!("√s = {} GeV is not positive", h.sqrt_s_gev),
        );
    }

    let n_tracks = event.tracks.len();
    for (i, t) in event.tracks.iter().enumerate() {
        let what = format!("track {i}");
        c.finite(&what, &t.momentum);
        c.finite(&what, &t.origin_cm);
        c.not_infinite(&what, &[t.chi2_ndf]);
        c.charge(&what, t.charge);
        if t.chi2_ndf < 0.0 {
            c.push(
                Rule::OutOfRange,
                format!("{what}: negative χ²/ndf {}", t.chi2_ndf),
            );
        }
        let p = t.p4();
        if p.e > MAX_ENERGY_GEV {
            c.push(
                Rule::OutOfRange,
                format!("{what}: momentum {:.1} GeV above the LHC's reach", p.p()),
            );
        }
    }
    for (i, hit) in event.hits.iter().enumerate() {
        // Hits are the bulk of an event: check cheaply, describe only what fails.
        let fine = hit.position_cm.iter().all(|v| v.is_finite())
            && !hit.time_ns.is_infinite()
            && hit.edep_kev.is_finite() | hit.edep_kev.is_nan()
            && !(hit.edep_kev < 0.0)
            && hit.track.is_none_or(|t| (t as usize) < n_tracks);
        if fine {
            continue;
        }
        let what = format!("hit {i}");
        let [x, y, z] = hit.position_cm.map(f64::from);
        c.finite(&what, &[x, y, z]);
        c.not_infinite(&what, &[f64::from(hit.time_ns), f64::from(hit.edep_kev)]);
        if hit.edep_kev < 0.0 {
            c.push(
                Rule::OutOfRange,
                format!("{what}: negative deposited energy {}", hit.edep_kev),
            );
        }
        c.reference(&what, hit.track, n_tracks);
    }
    for (name, list) in [
        ("muon", &event.muons),
        ("electron", &event.electrons),
        ("photon", &event.photons),
        ("jet", &event.jets),
    ] {
        for (i, o) in list.iter().enumerate() {
            c.object(&format!("{name} {i}"), o, n_tracks);
        }
    }
    for (i, cl) in event.clusters.iter().enumerate() {
        c.finite(&format!("cluster {i}"), &[cl.energy_gev, cl.eta, cl.phi]);
    }
    for (i, v) in event.vertices.iter().enumerate() {
        c.finite(&format!("vertex {i}"), &v.position_cm);
    }
    if let Some(met) = event.met {
        c.not_infinite(
            "missing energy",
            &[met.px_gev, met.py_gev, met.pt_gev, met.phi],
        );
        c.finite("missing energy pT", &[met.pt_gev]);
    }

    let mut daughters_sum = vec![None::<FourMomentum>; event.truth.len()];
    for (i, p) in event.truth.iter().enumerate() {
        let what = format!("truth particle {i} (pdg {})", p.pdg);
        c.four_momentum(&what, p.p4);
        c.finite(&what, &p.vertex_cm);
        c.reference(&what, p.track, n_tracks);
        match p.mother {
            Some(m) if m as usize >= event.truth.len() || m as usize == i => {
                c.push(
                    Rule::DanglingReference,
                    format!("{what}: mother {m} does not exist"),
                );
            }
            Some(m) => {
                let slot = &mut daughters_sum[m as usize];
                *slot = Some(slot.unwrap_or_default() + p.p4);
            }
            None => {}
        }
    }
    for (i, sum) in daughters_sum.iter().enumerate() {
        let (Some(sum), Some(mother)) = (sum, event.truth.get(i)) else {
            continue;
        };
        let m = mother.p4;
        let scale = CONSERVATION_TOLERANCE * m.e.abs().max(1e-3);
        let diff = [sum.px - m.px, sum.py - m.py, sum.pz - m.pz, sum.e - m.e];
        if diff.iter().any(|d| !(d.abs() <= scale)) {
            c.push(
                Rule::MomentumConservation,
                format!(
                    "decay of truth particle {i} (pdg {}): daughters' four-momentum differs from the mother's by up to {:.3e} GeV",
                    mother.pdg,
                    diff.iter().fold(0.0f64, |a, d| a.max(d.abs()))
                ),
            );
        }
    }
    c.out
}

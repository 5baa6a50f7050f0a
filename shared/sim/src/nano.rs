//! A NanoAOD-like generator: analysis-level pp events at √s = 13.6 TeV with jets (and b-tags),
//! muons, electrons and missing transverse energy, but no tracks or hits — the shape of the
//! CMS open data the ADL benchmark queries run on, in any quantity.
//!
//! Processes per event: QCD multijet (most), Z → μμ / ee with jets, and tt̄-like events where one
//! top decays t → bW → bqq′ (a three-jet resonance at 172.5 GeV with a b-tagged jet) and the
//! other t → bW → bℓν (a lepton and MET). Jets follow a falling pT spectrum with
//! resolution smearing; b-tag discriminants peak near 1 for b jets and near 0 otherwise.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::generator::{gauss, poisson, splitmix};
use alyx_core::model::{
    CollisionEvent, CollisionSystem, EventHeader, MissingEnergy, PhysicsObject,
};
use alyx_core::physics::{FourMomentum, two_body_decay};

pub const Z_MASS: f64 = 91.1876;
pub const Z_WIDTH: f64 = 2.4952;
pub const TOP_MASS: f64 = 172.5;
pub const TOP_WIDTH: f64 = 1.42;
pub const W_MASS: f64 = 80.377;
pub const W_WIDTH: f64 = 2.085;
const B_MASS: f64 = 4.8;
const MUON_MASS: f64 = 0.105_658;
const ELECTRON_MASS: f64 = 0.000_511;
/// Jets below this pT are not recorded (NanoAOD keeps jets above 15 GeV).
pub const JET_PT_MIN: f64 = 15.0;
/// 2026-07-01T00:00:00Z.
const FIRST_TIMESTAMP_NS: i64 = 1_782_864_000_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NanoConfig {
    pub seed: u64,
    pub run: u32,
    /// Fractions of Z → ℓℓ and tt̄-like events (the rest is QCD multijet).
    pub z_fraction: f64,
    pub ttbar_fraction: f64,
}

impl NanoConfig {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            run: 1,
            z_fraction: 0.10,
            ttbar_fraction: 0.08,
        }
    }
}

/// Events `range` of the sequence for `config`, generated in parallel.
pub fn events(config: &NanoConfig, range: std::ops::Range<u64>) -> Vec<CollisionEvent> {
    range.into_par_iter().map(|i| event(config, i)).collect()
}

/// Event `index`: the same for the same seed, whatever else was generated.
pub fn event(config: &NanoConfig, index: u64) -> CollisionEvent {
    let mut rng = Pcg64Mcg::seed_from_u64(splitmix(config.seed ^ splitmix(index.wrapping_add(7))));
    let header = EventHeader {
        run: config.run,
        event_number: index + 1,
        timestamp_ns: FIRST_TIMESTAMP_NS + index as i64 * 1_000_000,
        system: CollisionSystem::Pp,
        sqrt_s_gev: 13_600.0,
        vertex_cm: [
            gauss(&mut rng, 0.002),
            gauss(&mut rng, 0.002),
            gauss(&mut rng, 4.0),
        ],
        trigger_bits: 1,
        weight: 1.0,
        hit_collections: Vec::new(),
    };
    let mut ev = CollisionEvent::new(header);
    // Invisible transverse momentum (neutrinos), then detector resolution.
    let mut nu = (0.0, 0.0);

    let process = rng.random::<f64>();
    if process < config.z_fraction {
        let flavour_mass = if rng.random::<bool>() {
            MUON_MASS
        } else {
            ELECTRON_MASS
        };
        let z = resonance(&mut rng, Z_MASS, Z_WIDTH, 15.0, 1.6);
        if let Some((l1, l2)) = decay(&mut rng, z, flavour_mass, flavour_mass) {
            let charge = if rng.random::<bool>() { 1 } else { -1 };
            lepton(&mut rng, &mut ev, l1, charge, flavour_mass);
            lepton(&mut rng, &mut ev, l2, -charge, flavour_mass);
        }
    } else if process < config.z_fraction + config.ttbar_fraction {
        // Hadronic top: three jets, one of them b.
        let t1 = resonance(&mut rng, TOP_MASS, TOP_WIDTH, 90.0, 1.3);
        if let Some((b, w)) = decay_w(&mut rng, t1) {
            jet(&mut rng, &mut ev, b, true);
            if let Some((q1, q2)) = decay(&mut rng, w, 0.0, 0.0) {
                jet(&mut rng, &mut ev, q1, false);
                jet(&mut rng, &mut ev, q2, false);
            }
        }
        // Leptonic top: a b jet, a lepton and a neutrino.
        let t2 = resonance(&mut rng, TOP_MASS, TOP_WIDTH, 90.0, 1.3);
        if let Some((b, w)) = decay_w(&mut rng, t2) {
            jet(&mut rng, &mut ev, b, true);
            let m = if rng.random::<bool>() {
                MUON_MASS
            } else {
                ELECTRON_MASS
            };
            if let Some((l, n)) = decay(&mut rng, w, m, 0.0) {
                let charge = if rng.random::<bool>() { 1 } else { -1 };
                lepton(&mut rng, &mut ev, l, charge, m);
                nu.0 += n.px;
                nu.1 += n.py;
            }
        }
    }
    // Underlying QCD jets (all events): a falling spectrum, mostly light, some b.
    let n_jets = poisson(&mut rng, if ev.jets.is_empty() { 4.5 } else { 2.0 });
    for _ in 0..n_jets {
        let pt = JET_PT_MIN * 0.8 * rng.random::<f64>().max(1e-9).powf(-1.0 / 3.2);
        let pt = pt.min(3000.0);
        let eta = gauss(&mut rng, 2.0).clamp(-4.7, 4.7);
        let phi = uniform_phi(&mut rng);
        let m = pt * rng.random_range(0.04..0.18);
        let is_b = rng.random::<f64>() < 0.04;
        jet(
            &mut rng,
            &mut ev,
            FourMomentum::from_pt_eta_phi_m(pt, eta, phi, m),
            is_b,
        );
    }
    // Non-prompt leptons from heavy-flavour decays and fakes.
    for (mean, m) in [(0.25, MUON_MASS), (0.15, ELECTRON_MASS)] {
        for _ in 0..poisson(&mut rng, mean) {
            let pt = 3.0 + exp(&mut rng, 7.0);
            let p = FourMomentum::from_pt_eta_phi_m(
                pt,
                rng.random_range(-2.4..2.4),
                uniform_phi(&mut rng),
                m,
            );
            let charge = if rng.random::<bool>() { 1 } else { -1 };
            lepton(&mut rng, &mut ev, p, charge, m);
        }
    }
    // MET: neutrinos plus resolution that grows with the hadronic activity.
    let ht: f64 = ev.jets.iter().map(|j| j.pt_gev).sum();
    let sigma = (25.0 + 0.25 * ht).sqrt() * 1.6;
    let met = MissingEnergy::from_xy(nu.0 + gauss(&mut rng, sigma), nu.1 + gauss(&mut rng, sigma));
    ev.met = Some(met);
    for list in [&mut ev.jets, &mut ev.muons, &mut ev.electrons] {
        list.sort_by(|a, b| b.pt_gev.total_cmp(&a.pt_gev));
    }
    ev
}

/// A resonance of mass ~ Breit–Wigner(`mass`, `width`), pT ~ exponential, rapidity ~ Gaussian.
fn resonance(
    rng: &mut Pcg64Mcg,
    mass: f64,
    width: f64,
    mean_pt: f64,
    sigma_y: f64,
) -> FourMomentum {
    let m = loop {
        let u: f64 = rng.random_range(-1.4..1.4); // ±~ 6 widths, arctan-distributed
        let m = mass + 0.5 * width * u.tan();
        if m > 0.5 * mass {
            break m;
        }
    };
    let pt = exp(rng, mean_pt);
    let y = gauss(rng, sigma_y);
    let phi = uniform_phi(rng);
    let mt = (m * m + pt * pt).sqrt();
    FourMomentum {
        px: pt * phi.cos(),
        py: pt * phi.sin(),
        pz: mt * y.sinh(),
        e: mt * y.cosh(),
    }
}

fn decay(
    rng: &mut Pcg64Mcg,
    parent: FourMomentum,
    m1: f64,
    m2: f64,
) -> Option<(FourMomentum, FourMomentum)> {
    let cos_theta = rng.random_range(-1.0..1.0);
    two_body_decay(parent, m1, m2, cos_theta, uniform_phi(rng))
}

/// t → b W, with the W's mass drawn around its pole.
fn decay_w(rng: &mut Pcg64Mcg, top: FourMomentum) -> Option<(FourMomentum, FourMomentum)> {
    let mw = (W_MASS + 0.5 * W_WIDTH * rng.random_range(-1.2f64..1.2).tan()).clamp(60.0, 100.0);
    decay(rng, top, B_MASS, mw)
}

fn jet(rng: &mut Pcg64Mcg, ev: &mut CollisionEvent, p: FourMomentum, is_b: bool) {
    // Jet energy resolution ~ 100 %/√E ⊕ 5 %.
    let e = p.e.max(1e-3);
    let resolution = (1.0 / e + 0.0025).sqrt();
    let scale = (1.0 + gauss(rng, resolution)).max(0.3);
    let (pt, eta, phi) = (p.pt() * scale, p.eta(), p.phi());
    if pt < JET_PT_MIN || !eta.is_finite() || eta.abs() > 4.7 {
        return;
    }
    let m = p.mass().max(0.0) * scale;
    let mut j = PhysicsObject::from_p4(FourMomentum::from_pt_eta_phi_m(pt, eta, phi, m), 0);
    let u: f64 = rng.random();
    j.btag = if is_b {
        1.0 - 0.35 * u * u
    } else {
        0.3 * u * u * u
    };
    j.cone_r = 0.4;
    j.collection = "Jet".into();
    ev.jets.push(j);
}

fn lepton(rng: &mut Pcg64Mcg, ev: &mut CollisionEvent, p: FourMomentum, charge: i32, m: f64) {
    let pt = p.pt() * (1.0 + gauss(rng, 0.01));
    let eta = p.eta();
    if pt < 3.0 || !eta.is_finite() || eta.abs() > 2.5 {
        return;
    }
    let mut l =
        PhysicsObject::from_p4(FourMomentum::from_pt_eta_phi_m(pt, eta, p.phi(), m), charge);
    l.isolation = exp(rng, 0.05);
    let is_muon = m == MUON_MASS;
    l.collection = if is_muon { "Muon" } else { "Electron" }.into();
    if is_muon {
        ev.muons.push(l)
    } else {
        ev.electrons.push(l)
    }
}

fn uniform_phi(rng: &mut Pcg64Mcg) -> f64 {
    rng.random_range(-std::f64::consts::PI..std::f64::consts::PI)
}

fn exp(rng: &mut Pcg64Mcg, mean: f64) -> f64 {
    Exp::new(1.0 / mean).map_or(0.0, |d| d.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::physics::invariant_mass;

    fn p4(o: &PhysicsObject) -> FourMomentum {
        FourMomentum::from_pt_eta_phi_m(o.pt_gev, o.eta, o.phi, o.mass_gev)
    }

    #[test]
    fn deterministic_per_index() {
        // Debug text: leptons carry no b-tag (NaN), and NaN ≠ NaN.
        let c = NanoConfig::new(5);
        let text = |e: &CollisionEvent| format!("{e:?}");
        assert_eq!(text(&event(&c, 17)), text(&event(&c, 17)));
        assert_ne!(text(&event(&c, 17)), text(&event(&c, 18)));
        let pair: Vec<String> = events(&c, 10..12).iter().map(text).collect();
        assert_eq!(pair, vec![text(&event(&c, 10)), text(&event(&c, 11))]);
    }

    #[test]
    fn z_peak_and_jet_content() {
        let c = NanoConfig::new(1);
        let evs = events(&c, 0..20_000);
        let mut masses = Vec::new();
        for e in &evs {
            for list in [&e.muons, &e.electrons] {
                if list.len() == 2 && list[0].charge != list[1].charge {
                    masses.push(invariant_mass(&[p4(&list[0]), p4(&list[1])]));
                }
            }
        }
        let window: Vec<f64> = masses
            .iter()
            .copied()
            .filter(|m| (80.0..100.0).contains(m))
            .collect();
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        assert!(window.len() > 1000, "{} Z candidates", window.len());
        assert!((mean - Z_MASS).abs() < 0.5, "Z peak at {mean}");
        let jets: usize = evs.iter().map(|e| e.jets.len()).sum();
        let per_event = jets as f64 / evs.len() as f64;
        assert!(
            (2.0..6.0).contains(&per_event),
            "{per_event} jets per event"
        );
        assert!(evs.iter().all(|e| {
            e.jets
                .iter()
                .all(|j| j.pt_gev >= JET_PT_MIN && (0.0..=1.0).contains(&j.btag))
        }));
        assert!(
            evs.iter()
                .all(|e| e.jets.windows(2).all(|w| w[0].pt_gev >= w[1].pt_gev))
        );
        let met: f64 = evs
            .iter()
            .filter_map(|e| e.met.map(|m| m.pt_gev))
            .sum::<f64>()
            / evs.len() as f64;
        assert!((5.0..60.0).contains(&met), "mean MET {met}");
    }

    #[test]
    fn top_like_trijets_peak_near_the_top_mass() {
        let c = NanoConfig {
            ttbar_fraction: 1.0,
            z_fraction: 0.0,
            ..NanoConfig::new(2)
        };
        let mut best = Vec::new();
        for e in events(&c, 0..3000) {
            let j = &e.jets;
            let mut closest: Option<f64> = None;
            for a in 0..j.len() {
                for b in a + 1..j.len() {
                    for k in b + 1..j.len() {
                        let m = invariant_mass(&[p4(&j[a]), p4(&j[b]), p4(&j[k])]);
                        if closest.is_none_or(|c| (m - TOP_MASS).abs() < (c - TOP_MASS).abs()) {
                            closest = Some(m);
                        }
                    }
                }
            }
            best.extend(closest);
        }
        let near = best.iter().filter(|m| (150.0..195.0).contains(*m)).count();
        assert!(
            near as f64 > 0.5 * best.len() as f64,
            "{near} of {} trijets near the top",
            best.len()
        );
    }
}

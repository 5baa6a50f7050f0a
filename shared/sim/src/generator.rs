//! A fast, deterministic collision generator for the ALICE-like barrel.
//!
//! Each event is a pure function of `(seed, index)`, so any range can be generated in parallel
//! and regenerated bit for bit. What it models, and how:
//! - charged multiplicity: negative binomial for pp (⟨dNch/dη⟩ ≈ 6.9 at 13.6 TeV), Poisson around
//!   dNch/dη ≈ 2100·e^(−5.2·c) for Pb–Pb at centrality c (≈ 1900 at 0–5 %, ≈ 40 at 70–80 %);
//! - species π/K/p in 80/12/8 %, η flat in the barrel, φ flat, pT from a Tsallis (Lévy) spectrum;
//! - resonances injected at configurable mean rates per event with exact two-body decay
//!   kinematics: K⁰s → π⁺π⁻ and Λ → pπ⁻ decaying at a displaced vertex (cτ = 2.68 cm, 7.89 cm),
//!   J/ψ → μ⁺μ⁻ and Z → μ⁺μ⁻ (Breit–Wigner, Γ = 2.495 GeV) at the primary vertex;
//! - tracks propagated as helices through every sensitive layer of the geometry, with hits
//!   smeared by each detector's position and time resolution and a deposited energy ∝ 1/β²;
//! - reconstructed momenta smeared with σ(pT)/pT = 1 % ⊕ 0.08 %·pT and 1 mrad in angle, so mass
//!   peaks come out at the PDG masses with a realistic width.
//! PID is perfect (the hypothesis is the true species) and only resonances and their daughters
//! are kept as MC truth, to keep Pb–Pb events small.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma, Normal, Poisson, StandardNormal};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use alyx_core::geometry::{DetectorGeometry, SensitiveLayer};
use alyx_core::helix::{C_CM_PER_NS, Helix};
use alyx_core::model::{
    CollisionEvent, CollisionSystem, Detector, DetectorHit, EventHeader, ParticleTrack, PdgCode,
    PhysicsObject, TruthParticle, pid_mass, trigger,
};
use alyx_core::physics::{FourMomentum, delta_r, mass, two_body_decay};

/// Centrality class of a Pb–Pb collision (fraction of the hadronic cross-section).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Centrality {
    /// 0–5 %: head-on, thousands of tracks.
    Central,
    /// 70–80 %: grazing, tens of tracks.
    Peripheral,
    /// 0–90 %, uniformly.
    MinimumBias,
}

impl Centrality {
    fn range(self) -> (f64, f64) {
        match self {
            Self::Central => (0.0, 0.05),
            Self::Peripheral => (0.70, 0.80),
            Self::MinimumBias => (0.0, 0.90),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "central" => Some(Self::Central),
            "peripheral" => Some(Self::Peripheral),
            "minbias" | "minimum-bias" => Some(Self::MinimumBias),
            _ => None,
        }
    }
}

/// Mean number of each resonance injected per event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResonanceRates {
    pub k0s: f64,
    pub lambda: f64,
    pub jpsi: f64,
    pub z: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    pub system: CollisionSystem,
    pub centrality: Centrality,
    pub seed: u64,
    pub run: u32,
    pub sqrt_s_gev: f64,
    /// Timestamp of event 0, ns since the Unix epoch.
    pub first_timestamp_ns: i64,
    /// Mean recorded event rate, used to space timestamps.
    pub event_rate_hz: f64,
    pub rates: ResonanceRates,
    /// Mean number of non-resonant muons (heavy-flavour decays) per event.
    pub background_muons: f64,
}

/// 2026-07-01T00:00:00Z, a day of Run 3.
const DEFAULT_FIRST_TIMESTAMP_NS: i64 = 1_782_864_000_000_000_000;

impl GeneratorConfig {
    /// Proton–proton at √s = 13.6 TeV, with resonances enriched so a few hundred events show them.
    pub fn pp(seed: u64) -> Self {
        Self {
            system: CollisionSystem::Pp,
            centrality: Centrality::MinimumBias,
            seed,
            run: 545_100,
            sqrt_s_gev: 13_600.0,
            first_timestamp_ns: DEFAULT_FIRST_TIMESTAMP_NS,
            event_rate_hz: 1_000.0,
            rates: ResonanceRates {
                k0s: 1.0,
                lambda: 0.5,
                jpsi: 0.1,
                z: 0.02,
            },
            background_muons: 0.3,
        }
    }

    /// Lead–lead at √sNN = 5.36 TeV.
    pub fn pbpb(seed: u64, centrality: Centrality) -> Self {
        Self {
            system: CollisionSystem::PbPb,
            centrality,
            run: 545_300,
            sqrt_s_gev: 5_360.0,
            event_rate_hz: 50.0,
            rates: ResonanceRates {
                k0s: 20.0,
                lambda: 8.0,
                jpsi: 0.2,
                z: 0.01,
            },
            background_muons: 3.0,
            ..Self::pp(seed)
        }
    }
}

/// Inverse-CDF sampler of a tabulated pT spectrum.
#[derive(Clone, Debug)]
struct Spectrum {
    pt: Vec<f64>,
    cdf: Vec<f64>,
}

impl Spectrum {
    /// Tsallis (Lévy): dN/dpT ∝ pT · (1 + (mT − m)/(nT))^(−n), between 0.05 and 100 GeV.
    fn tsallis(mass_gev: f64, temperature: f64, n: f64) -> Self {
        Self::tabulate(|pt| {
            let mt = (pt * pt + mass_gev * mass_gev).sqrt();
            pt * (1.0 + (mt - mass_gev) / (n * temperature)).powf(-n)
        })
    }

    fn tabulate(density: impl Fn(f64) -> f64) -> Self {
        const N: usize = 4000;
        let (lo, hi) = (0.05f64.ln(), 100f64.ln());
        let pt: Vec<f64> = (0..N)
            .map(|i| (lo + (hi - lo) * i as f64 / (N - 1) as f64).exp())
            .collect();
        let mut cdf = Vec::with_capacity(N);
        let mut acc = 0.0;
        cdf.push(0.0);
        for w in pt.windows(2) {
            acc += 0.5 * (density(w[0]) + density(w[1])) * (w[1] - w[0]);
            cdf.push(acc);
        }
        cdf.iter_mut().for_each(|c| *c /= acc);
        Self { pt, cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> f64 {
        let u: f64 = rng.random();
        let i = self
            .cdf
            .partition_point(|c| *c < u)
            .clamp(1, self.cdf.len() - 1);
        let (c0, c1) = (self.cdf[i - 1], self.cdf[i]);
        let t = if c1 > c0 { (u - c0) / (c1 - c0) } else { 0.0 };
        self.pt[i - 1] + t * (self.pt[i] - self.pt[i - 1])
    }
}

/// A particle leaving the collision (or a decay vertex) that the detector may see.
struct Emitted {
    pdg: PdgCode,
    p4: FourMomentum,
    origin_cm: [f64; 3],
    time_ns: f64,
    truth_index: Option<usize>,
}

pub struct EventGenerator {
    config: GeneratorConfig,
    field_tesla: f64,
    eta_max: f64,
    layers: Vec<SensitiveLayer>,
    geometry: DetectorGeometry,
    pion: Spectrum,
    kaon: Spectrum,
    proton: Spectrum,
    k0s: Spectrum,
    lambda: Spectrum,
    jpsi: Spectrum,
}

/// Fewest hits a track needs to be reconstructed.
const MIN_HITS: usize = 4;

impl EventGenerator {
    pub fn new(config: GeneratorConfig, geometry: DetectorGeometry) -> Self {
        let temperature = if config.system == CollisionSystem::PbPb {
            0.18
        } else {
            0.145
        };
        Self {
            field_tesla: geometry.field_tesla,
            eta_max: geometry.acceptance_eta,
            layers: geometry.sensitive_layers(),
            pion: Spectrum::tsallis(mass::PION, temperature, 7.0),
            kaon: Spectrum::tsallis(mass::KAON, temperature, 7.0),
            proton: Spectrum::tsallis(mass::PROTON, temperature, 7.0),
            k0s: Spectrum::tsallis(mass::K0S, temperature, 7.0),
            lambda: Spectrum::tsallis(mass::LAMBDA, temperature, 7.0),
            // J/ψ: dN/dpT ∝ pT / (1 + (pT/4)²)^3.5, the shape measured at the LHC.
            jpsi: Spectrum::tabulate(|pt| pt / (1.0 + (pt / 4.0).powi(2)).powf(3.5)),
            geometry,
            config,
        }
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    pub fn geometry(&self) -> &DetectorGeometry {
        &self.geometry
    }

    /// Events `range`, generated in parallel on all cores.
    pub fn events(&self, range: std::ops::Range<u64>) -> Vec<CollisionEvent> {
        range.into_par_iter().map(|i| self.event(i)).collect()
    }

    /// Event number `index`: the same for the same seed, whatever else was generated.
    pub fn event(&self, index: u64) -> CollisionEvent {
        let mut rng =
            Pcg64Mcg::seed_from_u64(splitmix(self.config.seed ^ splitmix(index.wrapping_add(1))));
        let cfg = &self.config;
        let spacing = 1e9 / cfg.event_rate_hz;
        let timestamp_ns =
            cfg.first_timestamp_ns + ((index as f64 + rng.random::<f64>()) * spacing) as i64;
        let vertex = [
            gauss(&mut rng, 0.005),
            gauss(&mut rng, 0.005),
            gauss(&mut rng, 5.0),
        ];

        let mut truth = Vec::new();
        let mut emitted = Vec::new();
        let n_primary = self.multiplicity(&mut rng);
        for _ in 0..n_primary {
            let (pdg, spectrum) = match rng.random::<f64>() {
                u if u < 0.80 => (211, &self.pion),
                u if u < 0.92 => (321, &self.kaon),
                _ => (2212, &self.proton),
            };
            let pdg = if rng.random_bool(0.5) { pdg } else { -pdg };
            let pt = spectrum.sample(&mut rng);
            let p4 = self.random_direction(&mut rng, pt, pid_mass(pdg));
            emitted.push(Emitted {
                pdg,
                p4,
                origin_cm: vertex,
                time_ns: 0.0,
                truth_index: None,
            });
        }
        for _ in 0..poisson(&mut rng, cfg.background_muons) {
            let pt = 0.5 + Exp::new(1.0 / 1.5).map_or(1.5, |d| d.sample(&mut rng));
            let pdg = if rng.random_bool(0.5) { 13 } else { -13 };
            let p4 = self.random_direction(&mut rng, pt, mass::MUON);
            emitted.push(Emitted {
                pdg,
                p4,
                origin_cm: vertex,
                time_ns: 0.0,
                truth_index: None,
            });
        }
        self.inject_resonances(&mut rng, vertex, &mut truth, &mut emitted);

        let mut event = CollisionEvent::new(EventHeader {
            run: cfg.run,
            event_number: index,
            timestamp_ns,
            system: cfg.system,
            sqrt_s_gev: cfg.sqrt_s_gev,
            vertex_cm: vertex,
            trigger_bits: 0,
            weight: 1.0,
            hit_collections: Vec::new(),
        });
        for particle in &emitted {
            self.reconstruct(&mut rng, particle, &mut event, &mut truth);
        }
        event.truth = truth;
        self.fill_muons(&mut event);

        let mut bits = trigger::MINIMUM_BIAS;
        let high_mult = if cfg.system == CollisionSystem::PbPb {
            1500
        } else {
            50
        };
        if event.tracks.len() > high_mult {
            bits |= trigger::HIGH_MULTIPLICITY;
        }
        if event.muons.len() >= 2 {
            bits |= trigger::DIMUON;
        }
        if event.muons.iter().any(|m| m.pt_gev > 10.0) {
            bits |= trigger::SINGLE_MUON_HIGH_PT;
        }
        event.header.trigger_bits = bits;
        event
    }

    fn multiplicity(&self, rng: &mut Pcg64Mcg) -> u64 {
        let eta_width = 2.0 * self.eta_max;
        match self.config.system {
            CollisionSystem::PbPb => {
                let (lo, hi) = self.config.centrality.range();
                let c = lo + (hi - lo) * rng.random::<f64>();
                poisson(rng, 2100.0 * (-5.2 * c).exp() * eta_width)
            }
            _ => {
                // Negative binomial = Poisson with a Gamma-distributed mean (k = 1.6).
                let mean = 6.9 * eta_width;
                let k = 1.6;
                let lambda = Gamma::new(k, mean / k).map_or(mean, |g| g.sample(rng));
                poisson(rng, lambda)
            }
        }
    }

    fn random_direction(&self, rng: &mut Pcg64Mcg, pt: f64, m: f64) -> FourMomentum {
        let eta = rng.random_range(-self.eta_max..self.eta_max);
        FourMomentum::from_pt_eta_phi_m(pt, eta, rng.random_range(-PI..PI), m)
    }

    /// A parent of mass `m` with pT from `pt`, flat in rapidity within the barrel.
    fn parent(&self, rng: &mut Pcg64Mcg, pt: f64, m: f64) -> FourMomentum {
        let y: f64 = rng.random_range(-0.8..0.8);
        let phi: f64 = rng.random_range(-PI..PI);
        let mt = (pt * pt + m * m).sqrt();
        FourMomentum::new(pt * phi.cos(), pt * phi.sin(), mt * y.sinh(), mt * y.cosh())
    }

    fn inject_resonances(
        &self,
        rng: &mut Pcg64Mcg,
        vertex: [f64; 3],
        truth: &mut Vec<TruthParticle>,
        emitted: &mut Vec<Emitted>,
    ) {
        let rates = self.config.rates;
        let mut decays: Vec<(PdgCode, FourMomentum, f64, PdgCode, PdgCode)> = Vec::new();
        for _ in 0..poisson(rng, rates.k0s) {
            let pt = self.k0s.sample(rng);
            let p = self.parent(rng, pt, mass::K0S);
            decays.push((310, p, 2.6844, 211, -211));
        }
        for _ in 0..poisson(rng, rates.lambda) {
            let pt = self.lambda.sample(rng);
            let p = self.parent(rng, pt, mass::LAMBDA);
            if rng.random_bool(0.5) {
                decays.push((3122, p, 7.89, 2212, -211));
            } else {
                decays.push((-3122, p, 7.89, -2212, 211));
            }
        }
        for _ in 0..poisson(rng, rates.jpsi) {
            let pt = self.jpsi.sample(rng);
            let p = self.parent(rng, pt, mass::JPSI);
            decays.push((443, p, 0.0, -13, 13));
        }
        for _ in 0..poisson(rng, rates.z) {
            // Breit–Wigner line shape, truncated to the usual 60–120 GeV window.
            let m = loop {
                let u: f64 = rng.random_range(-PI / 2.0..PI / 2.0);
                let m = mass::Z + 0.5 * 2.4952 * u.tan();
                if (60.0..120.0).contains(&m) {
                    break m;
                }
            };
            let pt = Exp::new(1.0 / 8.0).map_or(8.0, |d| d.sample(rng));
            decays.push((23, self.parent(rng, pt, m), 0.0, -13, 13));
        }

        for (pdg, parent, c_tau_cm, d1, d2) in decays {
            let (decay_vertex, decay_time) = if c_tau_cm > 0.0 {
                let beta_gamma = parent.p() / parent.mass();
                let length = beta_gamma * c_tau_cm * Exp::new(1.0).map_or(1.0, |d| d.sample(rng));
                let dir = [
                    parent.px / parent.p(),
                    parent.py / parent.p(),
                    parent.pz / parent.p(),
                ];
                let v = [
                    vertex[0] + length * dir[0],
                    vertex[1] + length * dir[1],
                    vertex[2] + length * dir[2],
                ];
                (v, length / (parent.beta() * C_CM_PER_NS))
            } else {
                (vertex, 0.0)
            };
            let cos_theta: f64 = rng.random_range(-1.0..1.0);
            let phi: f64 = rng.random_range(-PI..PI);
            let Some((p1, p2)) = two_body_decay(parent, pid_mass(d1), pid_mass(d2), cos_theta, phi)
            else {
                continue;
            };
            let mother = truth.len();
            truth.push(TruthParticle {
                pdg,
                p4: parent,
                vertex_cm: vertex,
                mother: None,
                track: None,
            });
            for (d, p) in [(d1, p1), (d2, p2)] {
                let index = truth.len();
                truth.push(TruthParticle {
                    pdg: d,
                    p4: p,
                    vertex_cm: decay_vertex,
                    mother: Some(mother as u32),
                    track: None,
                });
                emitted.push(Emitted {
                    pdg: d,
                    p4: p,
                    origin_cm: decay_vertex,
                    time_ns: decay_time,
                    truth_index: Some(index),
                });
            }
        }
    }

    /// Propagates one charged particle through the barrel; if it leaves enough hits it becomes
    /// a reconstructed track with smeared momentum.
    fn reconstruct(
        &self,
        rng: &mut Pcg64Mcg,
        particle: &Emitted,
        event: &mut CollisionEvent,
        truth: &mut [TruthParticle],
    ) {
        let charge = pdg_charge(particle.pdg);
        let p = particle.p4;
        let helix = Helix::new(
            particle.origin_cm,
            [p.px, p.py, p.pz],
            charge,
            self.field_tesla,
        );
        let track_index = event.tracks.len() as u32;
        let first_hit = event.hits.len();
        let start_radius = particle.origin_cm[0].hypot(particle.origin_cm[1]);
        let beta = p.beta();
        let beta_factor = (1.0 / (beta * beta)).min(20.0);
        for layer in &self.layers {
            if layer.radius_cm <= start_radius {
                continue;
            }
            let Some(s) = helix.intersect_cylinder(layer.radius_cm) else {
                break;
            };
            let [x, y, z] = helix.at(s);
            if z.abs() > layer.half_length_cm {
                break;
            }
            let time = particle.time_ns + helix.path_length_cm(s) / (beta * C_CM_PER_NS);
            let phi = y.atan2(x);
            let phi_m = phi + gauss(rng, layer.sigma_rphi_cm) / layer.radius_cm;
            let landau = (0.25 * rng.sample::<f64, _>(StandardNormal)).exp();
            event.hits.push(DetectorHit {
                detector: layer.detector,
                layer: if layer.detector == Detector::Tof {
                    self.geometry.tof_sector(phi)
                } else {
                    layer.layer
                },
                position_cm: [
                    (layer.radius_cm * phi_m.cos()) as f32,
                    (layer.radius_cm * phi_m.sin()) as f32,
                    (z + gauss(rng, layer.sigma_z_cm)) as f32,
                ],
                time_ns: (time + gauss(rng, layer.sigma_t_ns)) as f32,
                edep_kev: (layer.edep_mpv_kev * beta_factor * landau) as f32,
                track: Some(track_index),
            });
        }
        let n_hits = event.hits.len() - first_hit;
        if n_hits < MIN_HITS {
            event.hits.truncate(first_hit);
            return;
        }

        // Reconstructed momentum: resolution σ(pT)/pT = 1 % ⊕ 0.08 %·pT, 1 mrad in angles.
        let pt = p.pt();
        let rel = 0.01f64.hypot(0.0008 * pt);
        let pt_reco = pt * (1.0 + gauss(rng, rel)).max(0.05);
        let phi = p.phi() + gauss(rng, 0.001);
        let theta = (p.theta() + gauss(rng, 0.001)).clamp(1e-3, PI - 1e-3);
        let momentum = [
            pt_reco * phi.cos(),
            pt_reco * phi.sin(),
            pt_reco / theta.tan(),
        ];
        let reco_helix = Helix::new(particle.origin_cm, momentum, charge, self.field_tesla);
        let ndf = (2 * n_hits).saturating_sub(5).max(1) as f64;
        let chi2 = Gamma::new(ndf / 2.0, 2.0).map_or(ndf, |g| g.sample(rng));
        event.tracks.push(ParticleTrack {
            charge,
            momentum,
            origin_cm: particle.origin_cm,
            helix: reco_helix.perigee(charge, pt_reco),
            pid: particle.pdg,
            chi2_ndf: chi2 / ndf,
            n_hits: n_hits as u32,
            polyline_cm: Vec::new(),
            collection: String::new(),
        });
        if let Some(t) = particle.truth_index.and_then(|i| truth.get_mut(i)) {
            t.track = Some(track_index);
        }
    }

    /// Muon tracks become muon objects, with isolation = ΣpT of other tracks within ΔR < 0.3 / pT.
    fn fill_muons(&self, event: &mut CollisionEvent) {
        let kin: Vec<(f64, f64, f64)> = event
            .tracks
            .iter()
            .map(|t| {
                let p = t.p4();
                (p.pt(), p.eta(), p.phi())
            })
            .collect();
        for (i, t) in event.tracks.iter().enumerate() {
            if t.pid.abs() != 13 {
                continue;
            }
            let (pt, eta, phi) = kin[i];
            let cone: f64 = kin
                .iter()
                .enumerate()
                .filter(|(j, (_, e, f))| *j != i && delta_r(eta, phi, *e, *f) < 0.3)
                // fold from +0.0: an empty `sum()` of floats is −0.0.
                .fold(0.0, |acc, (_, (p, _, _))| acc + p);
            let mut muon = PhysicsObject::from_p4(t.p4(), t.charge);
            muon.isolation = cone / pt;
            muon.track = Some(i as u32);
            event.muons.push(muon);
        }
    }
}

/// Electric charge of a PDG species, in units of e.
pub fn pdg_charge(pdg: PdgCode) -> i32 {
    let sign = pdg.signum();
    match pdg.abs() {
        // Leptons are negative as particles (e⁻ = 11, μ⁻ = 13).
        11 | 13 | 15 => -sign,
        211 | 321 | 2212 => sign,
        _ => 0,
    }
}

pub(crate) fn gauss(rng: &mut Pcg64Mcg, sigma: f64) -> f64 {
    Normal::new(0.0, sigma).map_or(0.0, |n| n.sample(rng))
}

pub(crate) fn poisson(rng: &mut Pcg64Mcg, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

/// SplitMix64 finaliser: decorrelates per-event seeds.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::validate::validate;
    use proptest::prelude::*;

    fn pp() -> EventGenerator {
        EventGenerator::new(GeneratorConfig::pp(7), DetectorGeometry::alice_barrel())
    }

    #[test]
    fn same_seed_same_event_whatever_else_was_generated() {
        let g = pp();
        let batch = g.events(0..20);
        assert!(batch[13].same_as(&g.event(13)));
        let other = EventGenerator::new(GeneratorConfig::pp(8), DetectorGeometry::alice_barrel());
        assert!(!other.event(13).same_as(&g.event(13)));
    }

    #[test]
    fn pp_events_have_tens_of_tracks_with_hits_on_every_detector() {
        let events = pp().events(0..200);
        let mean = events.iter().map(|e| e.tracks.len()).sum::<usize>() as f64 / 200.0;
        assert!((8.0..30.0).contains(&mean), "mean pp multiplicity {mean}");
        let all_hits = events.iter().flat_map(|e| &e.hits);
        let mut seen = std::collections::HashSet::new();
        for h in all_hits {
            seen.insert(h.detector);
            let r = f64::from(h.position_cm[0]).hypot(f64::from(h.position_cm[1]));
            assert!((2.0..=380.0).contains(&r), "hit at r = {r}");
        }
        assert_eq!(seen.len(), 3, "ITS, TPC and TOF hits: {seen:?}");
        for e in &events {
            assert!(validate(e).is_empty(), "{:?}", validate(e));
            assert!(e.header.trigger_bits & trigger::MINIMUM_BIAS != 0);
        }
    }

    #[test]
    fn central_pbpb_has_thousands_of_tracks_and_hundreds_of_thousands_of_hits() {
        let g = EventGenerator::new(
            GeneratorConfig::pbpb(1, Centrality::Central),
            DetectorGeometry::alice_barrel(),
        );
        let e = g.event(0);
        assert!(e.tracks.len() > 2000, "{} tracks", e.tracks.len());
        assert!(e.hits.len() > 200_000, "{} hits", e.hits.len());
        let peripheral = EventGenerator::new(
            GeneratorConfig::pbpb(1, Centrality::Peripheral),
            DetectorGeometry::alice_barrel(),
        );
        let p = peripheral.event(0);
        assert!(
            (10..400).contains(&p.tracks.len()),
            "{} peripheral tracks",
            p.tracks.len()
        );
    }

    #[test]
    fn hits_of_a_track_are_in_time_order_from_the_inside_out() {
        let e = pp().event(3);
        for (i, _) in e.tracks.iter().enumerate() {
            let radii: Vec<f32> = e
                .track_hits(i as u32)
                .map(|h| h.position_cm[0].hypot(h.position_cm[1]))
                .collect();
            assert!(
                radii.windows(2).all(|w| w[0] < w[1]),
                "track {i}: {radii:?}"
            );
        }
    }

    #[test]
    fn every_resonance_decay_conserves_four_momentum_and_a_broken_one_is_flagged() {
        let events = pp().events(0..100);
        let decays = events
            .iter()
            .flat_map(|e| &e.truth)
            .filter(|t| t.mother.is_some())
            .count();
        assert!(decays > 100, "{decays} daughters");
        let mut broken = events
            .into_iter()
            .find(|e| !e.truth.is_empty())
            .expect("a resonance");
        assert!(validate(&broken).is_empty());
        broken.truth[1].p4.px += 0.01;
        let v = validate(&broken);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, alyx_core::validate::Rule::MomentumConservation);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn generated_hits_lie_on_the_layer_they_name(seed in 0u64..1000, index in 0u64..1000) {
            let g = EventGenerator::new(GeneratorConfig::pp(seed), DetectorGeometry::alice_barrel());
            let e = g.event(index);
            prop_assert!(validate(&e).is_empty());
            for h in &e.hits {
                let r = f64::from(h.position_cm[0]).hypot(f64::from(h.position_cm[1]));
                let expected = match h.detector {
                    Detector::Its => g.geometry.its.layers[h.layer as usize].radius_cm,
                    Detector::Tpc => g.geometry.tpc_row_radius_cm(h.layer),
                    _ => g.geometry.tof.sensitive_radius_cm,
                };
                prop_assert!((r - expected).abs() < 1e-3 * expected, "{h:?}");
            }
            // Daughters' masses add up to the parent mass in truth.
            for (i, m) in e.truth.iter().enumerate().filter(|(_, t)| t.mother.is_none()) {
                let sum: FourMomentum = e.truth.iter().filter(|t| t.mother == Some(i as u32)).map(|t| t.p4).sum();
                prop_assert!((sum.mass() - m.p4.mass()).abs() < 1e-6 * m.p4.mass().max(1.0));
            }
        }
    }
}

//! Relativistic kinematics: four-momenta, pT/η/φ/rapidity, invariant and transverse masses, ΔR.
//!
//! Units are GeV (natural units, c = 1) and radians throughout. Every function is total: a
//! degenerate input (a particle along the beam axis, a zero vector) gives ±∞ or NaN as the
//! mathematics does, never a panic, so that `validate` can flag it with a reason.

use std::f64::consts::PI;
use std::ops::{Add, AddAssign, Sub};

/// PDG masses in GeV used by the generator and by mass hypotheses in queries.
pub mod mass {
    pub const ELECTRON: f64 = 0.000_510_998_95;
    pub const MUON: f64 = 0.105_658_375_5;
    pub const PION: f64 = 0.139_570_39;
    pub const KAON: f64 = 0.493_677;
    pub const PROTON: f64 = 0.938_272_088;
    pub const K0S: f64 = 0.497_611;
    pub const LAMBDA: f64 = 1.115_683;
    pub const JPSI: f64 = 3.096_900;
    pub const Z: f64 = 91.1876;
}

/// A four-momentum (px, py, pz, E) in GeV.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FourMomentum {
    pub px: f64,
    pub py: f64,
    pub pz: f64,
    pub e: f64,
}

impl FourMomentum {
    pub const fn new(px: f64, py: f64, pz: f64, e: f64) -> Self {
        Self { px, py, pz, e }
    }

    /// From a three-momentum and a mass hypothesis.
    pub fn from_p3_mass(px: f64, py: f64, pz: f64, mass_gev: f64) -> Self {
        let e = (px * px + py * py + pz * pz + mass_gev * mass_gev).sqrt();
        Self { px, py, pz, e }
    }

    /// From the collider coordinates (pT, η, φ, m).
    pub fn from_pt_eta_phi_m(pt: f64, eta: f64, phi: f64, mass_gev: f64) -> Self {
        let (px, py, pz) = (pt * phi.cos(), pt * phi.sin(), pt * eta.sinh());
        Self::from_p3_mass(px, py, pz, mass_gev)
    }

    /// From (pT, η, φ, E), as calorimeter objects and jets are often given.
    pub fn from_pt_eta_phi_e(pt: f64, eta: f64, phi: f64, e: f64) -> Self {
        Self {
            px: pt * phi.cos(),
            py: pt * phi.sin(),
            pz: pt * eta.sinh(),
            e,
        }
    }

    pub fn pt(&self) -> f64 {
        self.px.hypot(self.py)
    }

    pub fn p(&self) -> f64 {
        (self.px * self.px + self.py * self.py + self.pz * self.pz).sqrt()
    }

    /// Azimuth in (-π, π].
    pub fn phi(&self) -> f64 {
        self.py.atan2(self.px)
    }

    /// Pseudorapidity η = asinh(pz / pT); ±∞ along the beam axis.
    pub fn eta(&self) -> f64 {
        let pt = self.pt();
        if pt == 0.0 {
            return if self.pz >= 0.0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
        }
        (self.pz / pt).asinh()
    }

    /// Polar angle θ from the +z axis.
    pub fn theta(&self) -> f64 {
        self.pt().atan2(self.pz)
    }

    /// Rapidity y = ½ ln((E + pz) / (E − pz)).
    pub fn rapidity(&self) -> f64 {
        0.5 * ((self.e + self.pz) / (self.e - self.pz)).ln()
    }

    /// m² = E² − |p|², which may be slightly negative from rounding.
    pub fn mass_squared(&self) -> f64 {
        // (E − p)(E + p) loses less precision than E² − p² for light, fast particles.
        let p = self.p();
        (self.e - p) * (self.e + p)
    }

    /// Invariant mass; a negative m² (unphysical) gives −√|m²| so it stays visible.
    pub fn mass(&self) -> f64 {
        let m2 = self.mass_squared();
        if m2 >= 0.0 { m2.sqrt() } else { -(-m2).sqrt() }
    }

    /// Transverse mass mT = √(m² + pT²).
    pub fn mt(&self) -> f64 {
        (self.mass_squared() + self.pt().powi(2)).max(0.0).sqrt()
    }

    /// Velocity β = p / E.
    pub fn beta(&self) -> f64 {
        self.p() / self.e
    }

    /// The velocity vector β = p / E, used to boost into this particle's rest frame.
    pub fn boost_vector(&self) -> [f64; 3] {
        [self.px / self.e, self.py / self.e, self.pz / self.e]
    }

    /// Lorentz boost by velocity β (|β| < 1): the four-momentum seen by an observer moving
    /// with velocity −β. `p.boost(p.boost_vector() * -1)` brings `p` to rest.
    pub fn boost(&self, beta: [f64; 3]) -> Self {
        let b2 = beta[0] * beta[0] + beta[1] * beta[1] + beta[2] * beta[2];
        self.boost_with_gamma(beta, 1.0 / (1.0 - b2).sqrt())
    }

    /// `boost` with γ given: for a boost into the lab frame of a particle of energy E and mass
    /// M, γ = E/M keeps the precision that 1/√(1 − β²) loses when γ is large.
    fn boost_with_gamma(&self, beta: [f64; 3], gamma: f64) -> Self {
        let b2 = beta[0] * beta[0] + beta[1] * beta[1] + beta[2] * beta[2];
        if b2 == 0.0 {
            return *self;
        }
        let bp = beta[0] * self.px + beta[1] * self.py + beta[2] * self.pz;
        let gamma2 = (gamma - 1.0) / b2;
        let k = gamma2 * bp + gamma * self.e;
        Self {
            px: self.px + k * beta[0],
            py: self.py + k * beta[1],
            pz: self.pz + k * beta[2],
            e: gamma * (self.e + bp),
        }
    }
}

impl Add for FourMomentum {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.px + o.px, self.py + o.py, self.pz + o.pz, self.e + o.e)
    }
}

impl AddAssign for FourMomentum {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl Sub for FourMomentum {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.px - o.px, self.py - o.py, self.pz - o.pz, self.e - o.e)
    }
}

impl std::iter::Sum for FourMomentum {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| a + b)
    }
}

/// Invariant mass of any number of objects: the mass of their summed four-momentum.
pub fn invariant_mass(objects: &[FourMomentum]) -> f64 {
    objects.iter().copied().sum::<FourMomentum>().mass()
}

/// Δφ wrapped into [−π, π].
pub fn delta_phi(phi1: f64, phi2: f64) -> f64 {
    let d = (phi1 - phi2).rem_euclid(2.0 * PI);
    if d > PI { d - 2.0 * PI } else { d }
}

/// ΔR = √(Δη² + Δφ²), the angular distance used for isolation and jet matching.
pub fn delta_r(eta1: f64, phi1: f64, eta2: f64, phi2: f64) -> f64 {
    (eta1 - eta2).hypot(delta_phi(phi1, phi2))
}

/// Transverse mass of a visible object and missing transverse momentum (e.g. W → ℓν):
/// mT = √(2 pT,ℓ · MET · (1 − cos Δφ)).
pub fn transverse_mass(pt1: f64, phi1: f64, pt2: f64, phi2: f64) -> f64 {
    (2.0 * pt1 * pt2 * (1.0 - delta_phi(phi1, phi2).cos()))
        .max(0.0)
        .sqrt()
}

/// Two-body decay of `parent` (mass M) into daughters of masses `m1`, `m2`, emitted along the
/// rest-frame direction (cos θ*, φ*). Returns the daughters in the lab frame. The momentum in
/// the rest frame is p* = √[(M² − (m1 + m2)²)(M² − (m1 − m2)²)] / 2M; `None` if below threshold.
pub fn two_body_decay(
    parent: FourMomentum,
    m1: f64,
    m2: f64,
    cos_theta: f64,
    phi: f64,
) -> Option<(FourMomentum, FourMomentum)> {
    let big_m = parent.mass();
    let a = (big_m * big_m - (m1 + m2).powi(2)) * (big_m * big_m - (m1 - m2).powi(2));
    if !(big_m > 0.0) || a < 0.0 {
        return None;
    }
    let p_star = a.sqrt() / (2.0 * big_m);
    let sin_theta = (1.0 - cos_theta * cos_theta).max(0.0).sqrt();
    let (dx, dy, dz) = (sin_theta * phi.cos(), sin_theta * phi.sin(), cos_theta);
    let d1 = FourMomentum::from_p3_mass(p_star * dx, p_star * dy, p_star * dz, m1);
    let d2 = FourMomentum::from_p3_mass(-p_star * dx, -p_star * dy, -p_star * dz, m2);
    let (beta, gamma) = (parent.boost_vector(), parent.e / big_m);
    Some((
        d1.boost_with_gamma(beta, gamma),
        d2.boost_with_gamma(beta, gamma),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
        (a - b).abs() <= abs + rel * a.abs().max(b.abs())
    }

    prop_compose! {
        fn particle()(pt in 0.01f64..500.0, eta in -4.0f64..4.0, phi in -PI..PI, m in 0.0f64..100.0)
            -> FourMomentum {
            FourMomentum::from_pt_eta_phi_m(pt, eta, phi, m)
        }
    }

    prop_compose! {
        fn velocity()(bx in -0.6f64..0.6, by in -0.6f64..0.6, bz in -0.55f64..0.55) -> [f64; 3] {
            [bx, by, bz]
        }
    }

    #[test]
    fn z_boson_at_rest_decays_back_to_back_muons_of_half_its_mass() {
        let z = FourMomentum::new(0.0, 0.0, 0.0, mass::Z);
        let (m1, m2) =
            two_body_decay(z, mass::MUON, mass::MUON, 0.0, 0.3).expect("above threshold");
        assert!(close(m1.e, mass::Z / 2.0, 1e-12, 0.0));
        assert!(close(m1.pt(), m2.pt(), 1e-12, 0.0));
        assert!(close(invariant_mass(&[m1, m2]), mass::Z, 1e-12, 0.0));
        assert!(close(delta_phi(m1.phi(), m2.phi()).abs(), PI, 1e-12, 0.0));
    }

    #[test]
    fn decay_below_threshold_is_refused() {
        let k = FourMomentum::new(0.0, 0.0, 0.0, 0.2);
        assert!(two_body_decay(k, mass::PION, mass::PION, 0.0, 0.0).is_none());
    }

    #[test]
    fn kinematics_of_a_known_vector() {
        let p = FourMomentum::from_p3_mass(3.0, 4.0, 0.0, 0.0);
        assert_eq!(p.pt(), 5.0);
        assert_eq!(p.eta(), 0.0);
        assert!(close(p.phi(), (4.0f64).atan2(3.0), 1e-15, 0.0));
        assert_eq!(FourMomentum::new(0.0, 0.0, 1.0, 2.0).eta(), f64::INFINITY);
        assert!(close(
            transverse_mass(40.0, 0.0, 40.0, PI),
            80.0,
            1e-12,
            0.0
        ));
        assert!(close(
            delta_r(0.0, 3.0, 0.0, -3.0),
            2.0 * PI - 6.0,
            1e-12,
            0.0
        ));
    }

    proptest! {
        #[test]
        fn pt_eta_phi_round_trip(pt in 0.01f64..1000.0, eta in -5.0f64..5.0, phi in -3.14f64..3.14, m in 0.0f64..10.0) {
            let p = FourMomentum::from_pt_eta_phi_m(pt, eta, phi, m);
            prop_assert!(close(p.pt(), pt, 1e-12, 0.0));
            prop_assert!(close(p.eta(), eta, 1e-9, 1e-9));
            prop_assert!(close(p.phi(), phi, 1e-12, 1e-12));
            // m² = E² − p² cancels for light, fast particles: its error is relative to E².
            prop_assert!((p.mass_squared() - m * m).abs() <= 1e-12 * p.e * p.e + 1e-12);
        }

        #[test]
        fn invariant_mass_of_n_objects_is_lorentz_invariant(objects in prop::collection::vec(particle(), 1..6), beta in velocity()) {
            let m = invariant_mass(&objects);
            let boosted: Vec<FourMomentum> = objects.iter().map(|p| p.boost(beta)).collect();
            let mb = invariant_mass(&boosted);
            let e: f64 = objects.iter().map(|p| p.e).sum();
            // m² is invariant to rounding relative to the total energy squared.
            prop_assert!((m * m.abs() - mb * mb.abs()).abs() <= 1e-9 * e * e, "{m} vs {mb}");
            // And it does not depend on the order of the objects.
            let reversed: Vec<FourMomentum> = objects.iter().rev().copied().collect();
            prop_assert!(close(invariant_mass(&reversed), m, 1e-9, 1e-9));
        }

        #[test]
        fn rapidity_shifts_additively_under_longitudinal_boost(p in particle(), bz in -0.9f64..0.9) {
            prop_assume!(p.mass() > 0.01);
            let y = p.rapidity();
            let boosted = p.boost([0.0, 0.0, bz]).rapidity();
            prop_assert!(close(boosted - y, bz.atanh(), 1e-6, 1e-6));
        }

        #[test]
        fn decay_daughters_reconstruct_the_parent(parent in particle(), ct in -1.0f64..1.0, ph in -PI..PI) {
            prop_assume!(parent.mass() > 2.0 * mass::PION + 0.01);
            let (d1, d2) = two_body_decay(parent, mass::PION, mass::PION, ct, ph).expect("above threshold");
            let sum = d1 + d2;
            prop_assert!(close(sum.mass(), parent.mass(), 1e-7, 1e-7));
            for (x, y) in [(sum.px, parent.px), (sum.py, parent.py), (sum.pz, parent.pz), (sum.e, parent.e)] {
                prop_assert!(close(x, y, 1e-9, 1e-9), "{sum:?} vs {parent:?}");
            }
            prop_assert!(close(d1.mass(), mass::PION, 1e-4, 1e-6));
        }

        #[test]
        fn delta_r_is_symmetric_and_phi_periodic(e1 in -3.0f64..3.0, p1 in -PI..PI, e2 in -3.0f64..3.0, p2 in -PI..PI) {
            let d = delta_r(e1, p1, e2, p2);
            prop_assert!(close(d, delta_r(e2, p2, e1, p1), 1e-12, 1e-12));
            prop_assert!(close(d, delta_r(e1, p1 + 2.0 * PI, e2, p2), 1e-9, 1e-9));
            prop_assert!(delta_phi(p1, p2).abs() <= PI);
        }

        #[test]
        fn transverse_mass_never_exceeds_invariant_mass_bound(pt1 in 0.0f64..200.0, f1 in -PI..PI, pt2 in 0.0f64..200.0, f2 in -PI..PI) {
            let mt = transverse_mass(pt1, f1, pt2, f2);
            prop_assert!(mt >= 0.0);
            prop_assert!(mt <= 2.0 * (pt1 * pt2).sqrt() + 1e-9);
        }
    }
}

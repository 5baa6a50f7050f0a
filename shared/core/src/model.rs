//! The collision-event model shared by every part of ALYX: the generator and the importers
//! produce it, the store writes it as columnar tables, the display and the backend read it.
//!
//! Units: lengths in cm, momenta and energies in GeV, times in ns (event timestamps in ns since
//! the Unix epoch), deposited energy in keV. A field the source did not measure is `NaN` here
//! and null in the tables (for example η of the muons in a file that only stores pT).

use serde::{Deserialize, Serialize};

use crate::helix::HelixParams;
use crate::physics::FourMomentum;

/// Beam particles and energy class of a collision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CollisionSystem {
    /// Proton–proton.
    Pp,
    /// Lead–lead.
    PbPb,
    /// A source that does not say (imported files).
    Unknown,
}

impl CollisionSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pp => "pp",
            Self::PbPb => "PbPb",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "pp" => Some(Self::Pp),
            "pbpb" => Some(Self::PbPb),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// The sub-detector a hit was measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Detector {
    /// Inner Tracking System (silicon pixels, 7 layers).
    Its,
    /// Time Projection Chamber (159 pad rows).
    Tpc,
    /// Time Of Flight (18 sectors).
    Tof,
    /// A measurement from another experiment's file (e.g. Phoenix "Hits").
    Other,
}

impl Detector {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Its => "ITS",
            Self::Tpc => "TPC",
            Self::Tof => "TOF",
            Self::Other => "OTHER",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ITS" => Some(Self::Its),
            "TPC" => Some(Self::Tpc),
            "TOF" => Some(Self::Tof),
            "OTHER" => Some(Self::Other),
            _ => None,
        }
    }
}

/// Trigger bits set by the generator (imported files keep their own meaning).
pub mod trigger {
    /// Minimum bias: every recorded collision.
    pub const MINIMUM_BIAS: u64 = 1 << 0;
    /// High multiplicity: more than 50 (pp) or 1500 (Pb–Pb) reconstructed tracks.
    pub const HIGH_MULTIPLICITY: u64 = 1 << 1;
    /// At least two muon tracks.
    pub const DIMUON: u64 = 1 << 2;
    /// A muon with pT above 10 GeV.
    pub const SINGLE_MUON_HIGH_PT: u64 = 1 << 3;
}

/// Event-level information.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventHeader {
    pub run: u32,
    /// The number the source gave the event (DAQ or file); unique within a run.
    pub event_number: u64,
    /// ns since the Unix epoch (0 when the source has none).
    pub timestamp_ns: i64,
    pub system: CollisionSystem,
    /// Centre-of-mass energy per nucleon pair; NaN when unknown.
    pub sqrt_s_gev: f64,
    pub vertex_cm: [f64; 3],
    pub trigger_bits: u64,
    /// Event weight (1 for data, the generator weight for simulation).
    pub weight: f64,
    /// Names of the hit collections of a foreign file (Phoenix); a hit from one has detector
    /// `Other` and its `layer` is the index into this list.
    pub hit_collections: Vec<String>,
}

/// A measured space point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorHit {
    pub detector: Detector,
    /// ITS layer, TPC pad row or TOF sector.
    pub layer: u32,
    pub position_cm: [f32; 3],
    pub time_ns: f32,
    pub edep_kev: f32,
    /// Index of the owning track in `CollisionEvent::tracks`; `None` for noise.
    pub track: Option<u32>,
}

/// Particle-identification hypothesis, as a PDG code with sign (211 = π⁺, −13 = μ⁺, ...).
pub type PdgCode = i32;

/// A reconstructed charged-particle track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticleTrack {
    pub charge: i32,
    /// Momentum at the production point, GeV.
    pub momentum: [f64; 3],
    /// Production point (the primary vertex, or a displaced decay vertex), cm.
    pub origin_cm: [f64; 3],
    pub helix: HelixParams,
    /// PID hypothesis (PDG code); 0 when unidentified.
    pub pid: PdgCode,
    pub chi2_ndf: f64,
    /// Number of hits; the hits themselves point to the track (`DetectorHit::track`).
    pub n_hits: u32,
    /// A polyline the source file drew for the track (Phoenix `pos`), cm; empty when the
    /// trajectory follows from the helix.
    pub polyline_cm: Vec<[f32; 3]>,
    /// The source's collection name (e.g. `InDetTrackParticles`); empty for ALYX's own.
    pub collection: String,
}

impl ParticleTrack {
    pub fn pt(&self) -> f64 {
        self.momentum[0].hypot(self.momentum[1])
    }

    /// The four-momentum under this track's PID mass hypothesis (pion when unidentified).
    pub fn p4(&self) -> FourMomentum {
        let [px, py, pz] = self.momentum;
        FourMomentum::from_p3_mass(px, py, pz, pid_mass(self.pid))
    }
}

/// Mass in GeV of a PDG species (pion for unknown codes).
pub fn pid_mass(pid: PdgCode) -> f64 {
    use crate::physics::mass;
    match pid.abs() {
        11 => mass::ELECTRON,
        13 => mass::MUON,
        321 => mass::KAON,
        2212 => mass::PROTON,
        310 => mass::K0S,
        3122 => mass::LAMBDA,
        443 => mass::JPSI,
        23 => mass::Z,
        22 => 0.0,
        _ => mass::PION,
    }
}

/// An analysis-level object: a muon, electron, photon or jet. The source's own quantities are
/// kept as they were: cartesian (px, py, pz, E) and collider (pT, η, φ, m) coordinates are both
/// stored, and whichever the source lacked is derived from the other (or NaN if it can't be).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhysicsObject {
    pub pt_gev: f64,
    pub eta: f64,
    pub phi: f64,
    pub mass_gev: f64,
    pub px_gev: f64,
    pub py_gev: f64,
    pub pz_gev: f64,
    pub e_gev: f64,
    pub charge: i32,
    /// Relative isolation (leptons and photons).
    pub isolation: f64,
    /// b-tagging discriminant (jets).
    pub btag: f64,
    /// Cone size ΔR (jets).
    pub cone_r: f64,
    /// Index of the matched track, if the source links one.
    pub track: Option<u32>,
    /// The source's collection name (e.g. `AntiKt4EMTopoJets`); empty for ALYX's own.
    pub collection: String,
}

impl PhysicsObject {
    fn empty() -> Self {
        let nan = f64::NAN;
        Self {
            pt_gev: nan,
            eta: nan,
            phi: nan,
            mass_gev: nan,
            px_gev: nan,
            py_gev: nan,
            pz_gev: nan,
            e_gev: nan,
            charge: 0,
            isolation: nan,
            btag: nan,
            cone_r: nan,
            track: None,
            collection: String::new(),
        }
    }

    /// From a four-momentum: collider coordinates derived.
    pub fn from_p4(p: FourMomentum, charge: i32) -> Self {
        Self {
            pt_gev: p.pt(),
            eta: p.eta(),
            phi: p.phi(),
            mass_gev: p.mass(),
            px_gev: p.px,
            py_gev: p.py,
            pz_gev: p.pz,
            e_gev: p.e,
            charge,
            ..Self::empty()
        }
    }

    /// From collider coordinates: cartesian ones derived where η and φ are known.
    pub fn from_pt_eta_phi_m(pt: f64, eta: f64, phi: f64, mass_gev: f64, charge: i32) -> Self {
        let mut o = Self {
            pt_gev: pt,
            eta,
            phi,
            mass_gev,
            charge,
            ..Self::empty()
        };
        if eta.is_finite() && phi.is_finite() {
            let p = FourMomentum::from_pt_eta_phi_m(
                pt,
                eta,
                phi,
                if mass_gev.is_nan() { 0.0 } else { mass_gev },
            );
            (o.px_gev, o.py_gev, o.pz_gev, o.e_gev) = (p.px, p.py, p.pz, p.e);
        }
        o
    }

    /// The four-momentum, from the cartesian fields if the source gave them.
    pub fn p4(&self) -> FourMomentum {
        if self.px_gev.is_finite() && self.e_gev.is_finite() {
            FourMomentum::new(self.px_gev, self.py_gev, self.pz_gev, self.e_gev)
        } else {
            let m = if self.mass_gev.is_nan() {
                0.0
            } else {
                self.mass_gev
            };
            FourMomentum::from_pt_eta_phi_m(self.pt_gev, self.eta, self.phi, m)
        }
    }
}

/// A calorimeter energy deposit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaloCluster {
    pub energy_gev: f64,
    pub eta: f64,
    pub phi: f64,
    /// Where the deposit sits (the centre of its cell's front face), cm; NaN where the file
    /// gives only η and φ.
    #[serde(default = "unknown_position")]
    pub position_cm: [f64; 3],
    pub collection: String,
}

fn unknown_position() -> [f64; 3] {
    [f64::NAN; 3]
}

/// A reconstructed vertex other than the primary one (secondary, pile-up).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vertex {
    pub position_cm: [f64; 3],
    pub n_tracks: u32,
    pub collection: String,
}

/// Missing transverse momentum. Files give it as (px, py) or as (pT, φ); both forms are kept
/// as given and the other derived (NaN where it cannot be, e.g. a file with only MET pT).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MissingEnergy {
    pub px_gev: f64,
    pub py_gev: f64,
    pub pt_gev: f64,
    pub phi: f64,
}

impl MissingEnergy {
    pub fn from_xy(px_gev: f64, py_gev: f64) -> Self {
        Self {
            px_gev,
            py_gev,
            pt_gev: px_gev.hypot(py_gev),
            phi: py_gev.atan2(px_gev),
        }
    }

    pub fn from_pt_phi(pt_gev: f64, phi: f64) -> Self {
        Self {
            px_gev: pt_gev * phi.cos(),
            py_gev: pt_gev * phi.sin(),
            pt_gev,
            phi,
        }
    }
}

/// A generator-level particle (Monte Carlo truth): resonances and their decay products.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthParticle {
    pub pdg: PdgCode,
    pub p4: FourMomentum,
    /// Production vertex, cm.
    pub vertex_cm: [f64; 3],
    /// Index of the mother in `CollisionEvent::truth`.
    pub mother: Option<u32>,
    /// Index of the reconstructed track it produced, if any.
    pub track: Option<u32>,
}

/// One collision with everything measured in it. Collections are indexed by position: a hit's
/// `track` and an object's `track` are indices into `tracks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollisionEvent {
    pub header: EventHeader,
    pub tracks: Vec<ParticleTrack>,
    pub hits: Vec<DetectorHit>,
    pub muons: Vec<PhysicsObject>,
    pub electrons: Vec<PhysicsObject>,
    pub photons: Vec<PhysicsObject>,
    pub jets: Vec<PhysicsObject>,
    pub clusters: Vec<CaloCluster>,
    pub vertices: Vec<Vertex>,
    pub met: Option<MissingEnergy>,
    pub truth: Vec<TruthParticle>,
}

impl CollisionEvent {
    pub fn new(header: EventHeader) -> Self {
        Self {
            header,
            tracks: Vec::new(),
            hits: Vec::new(),
            muons: Vec::new(),
            electrons: Vec::new(),
            photons: Vec::new(),
            jets: Vec::new(),
            clusters: Vec::new(),
            vertices: Vec::new(),
            met: None,
            truth: Vec::new(),
        }
    }

    /// The hits of track `index`, in the order they are stored (the generator stores them
    /// from the inside out, which is also their time order).
    pub fn track_hits(&self, index: u32) -> impl Iterator<Item = &DetectorHit> {
        self.hits.iter().filter(move |h| h.track == Some(index))
    }

    /// The name of the foreign collection `hit` came from (a hit of detector `Other`), if known.
    pub fn hit_collection(&self, hit: &DetectorHit) -> Option<&str> {
        (hit.detector == Detector::Other)
            .then(|| self.header.hit_collections.get(hit.layer as usize))
            .flatten()
            .map(String::as_str)
    }

    /// Equality that holds NaN (not measured) equal to NaN: for checking that a round trip
    /// (store, wire, Phoenix) gave back exactly the same event.
    pub fn same_as(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }

    /// The hit indices of every track at once (the track–hit association), built in one pass.
    pub fn hits_by_track(&self) -> Vec<Vec<u32>> {
        let mut by_track = vec![Vec::new(); self.tracks.len()];
        for (i, hit) in self.hits.iter().enumerate() {
            if let Some(list) = hit.track.and_then(|t| by_track.get_mut(t as usize)) {
                list.push(i as u32);
            }
        }
        by_track
    }
}

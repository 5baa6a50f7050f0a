//! The eight IRIS-HEP ADL benchmark queries, as builder selections (and so as SQL), with the
//! histograms they fill and a straightforward Rust loop for each that computes the same
//! histograms from the events directly (the independent check).

use super::builder::{Cleaning, Collection, Combine, Cut, Output, Spec};
use alyx_core::ast::BinOp;
use alyx_core::histogram::{Binning, Histogram};
use alyx_core::model::{CollisionEvent, PhysicsObject};
use alyx_core::physics::{FourMomentum, delta_r, invariant_mass, transverse_mass};

/// One histogram an ADL query fills: an output column and its binning.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub column: &'static str,
    pub binning: Binning,
}

fn plot(column: &'static str, bins: usize, lo: f64, hi: f64) -> Plot {
    Plot {
        column,
        binning: Binning::Fixed { bins, lo, hi },
    }
}

/// ADL query `n` (1–8): what it asks, its selection and its histograms.
pub fn query(n: u8) -> Option<(&'static str, Spec, Vec<Plot>)> {
    let met = || Output::Events(vec!["met_pt".into()]);
    Some(match n {
        1 => (
            "MET of all events",
            Spec::new(Collection::Events, met()),
            vec![plot("met_pt", 100, 0.0, 200.0)],
        ),
        2 => (
            "pT of all jets",
            Spec::new(Collection::Jets, Output::Objects(vec!["pt".into()])),
            vec![plot("pt", 100, 15.0, 215.0)],
        ),
        3 => (
            "pT of jets with |η| < 1",
            Spec {
                object_cuts: vec![Cut::abs("eta", BinOp::Lt, 1.0)],
                ..Spec::new(Collection::Jets, Output::Objects(vec!["pt".into()]))
            },
            vec![plot("pt", 100, 15.0, 215.0)],
        ),
        4 => (
            "MET of events with at least two jets of pT > 40 GeV",
            Spec {
                object_cuts: vec![Cut::new("pt", BinOp::Gt, 40.0)],
                min_objects: Some(2),
                ..Spec::new(Collection::Jets, met())
            },
            vec![plot("met_pt", 100, 0.0, 200.0)],
        ),
        5 => (
            "MET of events with an opposite-charge muon pair of mass 60–120 GeV",
            Spec {
                combine: Some(Combine {
                    n: 2,
                    opposite_charge: true,
                    same_flavour: false,
                    mass: Some((60.0, 120.0)),
                    closest_to: None,
                }),
                ..Spec::new(Collection::Muons, met())
            },
            vec![plot("met_pt", 100, 0.0, 200.0)],
        ),
        6 => (
            "pT of the trijet with mass closest to 172.5 GeV, and its largest b-tag",
            Spec {
                combine: Some(Combine {
                    n: 3,
                    opposite_charge: false,
                    same_flavour: false,
                    mass: None,
                    closest_to: Some(172.5),
                }),
                ..Spec::new(Collection::Jets, Output::Combinations)
            },
            vec![plot("pt", 100, 0.0, 400.0), plot("max_btag", 100, 0.0, 1.0)],
        ),
        7 => (
            "scalar sum of pT of jets with pT > 30 GeV away (ΔR ≥ 0.4) from leptons with pT > 10 GeV",
            Spec {
                object_cuts: vec![Cut::new("pt", BinOp::Gt, 30.0)],
                clean: Some(Cleaning {
                    against: Collection::Leptons,
                    pt_min: 10.0,
                    delta_r: 0.4,
                }),
                ..Spec::new(Collection::Jets, Output::Sum("pt".into()))
            },
            vec![plot("sum_pt", 100, 0.0, 500.0)],
        ),
        8 => (
            "transverse mass of MET and the leading lepton not in the same-flavour opposite-charge pair closest to 91.2 GeV, in events with ≥ 3 leptons",
            Spec {
                min_objects: Some(3),
                combine: Some(Combine {
                    n: 2,
                    opposite_charge: true,
                    same_flavour: true,
                    mass: None,
                    closest_to: Some(91.2),
                }),
                ..Spec::new(Collection::Leptons, Output::MtWithLeadingOther)
            },
            vec![plot("mt", 100, 0.0, 200.0)],
        ),
        _ => return None,
    })
}

fn p4(o: &PhysicsObject) -> FourMomentum {
    FourMomentum::from_pt_eta_phi_m(o.pt_gev, o.eta, o.phi, o.mass_gev)
}

/// The histograms of ADL query `n` over `events`, by plain loops over the event model.
pub fn reference(n: u8, events: &[CollisionEvent]) -> Vec<Histogram> {
    let Some((_, _, plots)) = query(n) else {
        return Vec::new();
    };
    let mut hs: Vec<Histogram> = plots
        .into_iter()
        .map(|p| Histogram::new(p.binning))
        .collect();
    let met = |e: &CollisionEvent| e.met.map_or(f64::NAN, |m| m.pt_gev);
    for e in events {
        match n {
            1 => hs[0].fill(met(e), 1.0),
            2 => e.jets.iter().for_each(|j| hs[0].fill(j.pt_gev, 1.0)),
            3 => e
                .jets
                .iter()
                .filter(|j| j.eta.abs() < 1.0)
                .for_each(|j| hs[0].fill(j.pt_gev, 1.0)),
            4 => {
                if e.jets.iter().filter(|j| j.pt_gev > 40.0).count() >= 2 {
                    hs[0].fill(met(e), 1.0);
                }
            }
            5 => {
                let mu = &e.muons;
                let found = (0..mu.len()).any(|a| {
                    (a + 1..mu.len()).any(|b| {
                        let m = invariant_mass(&[p4(&mu[a]), p4(&mu[b])]);
                        mu[a].charge != mu[b].charge && (60.0..=120.0).contains(&m)
                    })
                });
                if found {
                    hs[0].fill(met(e), 1.0);
                }
            }
            6 => {
                let j = &e.jets;
                let mut best: Option<(f64, usize, usize, usize)> = None;
                for a in 0..j.len() {
                    for b in a + 1..j.len() {
                        for c in b + 1..j.len() {
                            let d =
                                (invariant_mass(&[p4(&j[a]), p4(&j[b]), p4(&j[c])]) - 172.5).abs();
                            if best.is_none_or(|(bd, ..)| d < bd) {
                                best = Some((d, a, b, c));
                            }
                        }
                    }
                }
                if let Some((_, a, b, c)) = best {
                    let sum: FourMomentum = [p4(&j[a]), p4(&j[b]), p4(&j[c])].into_iter().sum();
                    hs[0].fill(sum.pt(), 1.0);
                    hs[1].fill(j[a].btag.max(j[b].btag).max(j[c].btag), 1.0);
                }
            }
            7 => {
                let leptons: Vec<&PhysicsObject> = e
                    .muons
                    .iter()
                    .chain(&e.electrons)
                    .filter(|l| l.pt_gev > 10.0)
                    .collect();
                let ht: f64 = e
                    .jets
                    .iter()
                    .filter(|j| j.pt_gev > 30.0)
                    .filter(|j| {
                        leptons
                            .iter()
                            .all(|l| delta_r(j.eta, j.phi, l.eta, l.phi) >= 0.4)
                    })
                    .map(|j| j.pt_gev)
                    .sum();
                hs[0].fill(ht, 1.0);
            }
            8 => {
                let leptons: Vec<(u32, &PhysicsObject)> = e
                    .muons
                    .iter()
                    .map(|m| (13, m))
                    .chain(e.electrons.iter().map(|el| (11, el)))
                    .collect();
                if leptons.len() < 3 {
                    continue;
                }
                let mut best: Option<(f64, usize, usize)> = None;
                for a in 0..leptons.len() {
                    for b in a + 1..leptons.len() {
                        let (la, lb) = (leptons[a], leptons[b]);
                        if la.0 != lb.0 || la.1.charge == lb.1.charge {
                            continue;
                        }
                        let d = (invariant_mass(&[p4(la.1), p4(lb.1)]) - 91.2).abs();
                        if best.is_none_or(|(bd, ..)| d < bd) {
                            best = Some((d, a, b));
                        }
                    }
                }
                let Some((_, a, b)) = best else { continue };
                let lead = leptons
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != a && *i != b)
                    .map(|(_, l)| l.1)
                    .max_by(|x, y| x.pt_gev.total_cmp(&y.pt_gev));
                if let (Some(l), Some(m)) = (lead, e.met) {
                    hs[0].fill(transverse_mass(l.pt_gev, l.phi, m.pt_gev, m.phi), 1.0);
                }
            }
            _ => {}
        }
    }
    hs
}

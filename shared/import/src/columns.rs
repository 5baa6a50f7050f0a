//! Columns of a mapped file — TTree branches or RNTuple fields, read a batch of entries at a
//! time — turned into events: header integers read exactly, objects built per collection,
//! quantities the file lacks derived from those it gave.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::mapping::{Mapping, ObjectMapping};
use crate::report::ImportReport;
use alyx_core::model::{
    CollisionEvent, CollisionSystem, EventHeader, MissingEnergy, PhysicsObject,
};
use alyx_core::physics::FourMomentum;

/// A batch of a branch's values: one number per entry, or a list per entry. Numbers are
/// widened to f64, which is exact for the 32-bit types; 64-bit integers stay exact as `Wide`.
pub(crate) enum Values {
    Scalar(Vec<f64>),
    Wide(Vec<i128>),
    Jagged(Vec<Vec<f64>>),
}

impl Values {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Scalar(v) => v.len(),
            Values::Wide(v) => v.len(),
            Values::Jagged(v) => v.len(),
        }
    }

    /// Entry `i` as an exact integer, when it is one.
    pub(crate) fn integer(&self, i: usize) -> Option<i128> {
        match self {
            Values::Wide(v) => v.get(i).copied(),
            // Whole and well inside i128: the cast is exact.
            _ => self
                .number(i)
                .filter(|x| x.fract() == 0.0 && x.abs() < 2f64.powi(100))
                .map(|x| x as i128),
        }
    }

    /// Entry `i` as a number.
    pub(crate) fn number(&self, i: usize) -> Option<f64> {
        match self {
            Values::Scalar(v) => v.get(i).copied(),
            Values::Wide(v) => v.get(i).map(|x| *x as f64),
            Values::Jagged(v) => v.get(i).and_then(|l| l.first().copied()),
        }
    }
}

/// Entry `i` of a header branch as an exact integer of its field's type (`None` when the
/// field is unmapped), or an error naming the entry when it is no such integer.
fn header_int<T: TryFrom<i128>>(
    path: &Path,
    (entry, i): (u64, usize),
    field: &str,
    values: Option<&Values>,
) -> Result<Option<T>> {
    let Some(v) = values else { return Ok(None) };
    v.integer(i)
        .and_then(|x| T::try_from(x).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::malformed(
                path,
                format!(
                    "entry {entry}: {field} {} is not an integer in range",
                    v.number(i).unwrap_or(f64::NAN)
                ),
            )
        })
}

/// Entry `i` of a batch (entry `entry` of the tree) as an event.
pub(crate) fn build_event(
    path: &Path,
    mapping: &Mapping,
    values: &BTreeMap<&str, Values>,
    i: usize,
    entry: u64,
) -> Result<CollisionEvent> {
    let branch = |name: &Option<String>| values.get(name.as_deref()?);
    let scalar = |name: &Option<String>| branch(name)?.number(i);
    let e = &mapping.event;
    let mut trigger_bits = 0u64;
    for (bit, name) in e.trigger.iter().enumerate().take(64) {
        if scalar(&Some(name.clone())).is_some_and(|v| v != 0.0) {
            trigger_bits |= 1 << bit;
        }
    }
    // Header numbers are integers, read exactly (64-bit event numbers do not fit an f64).
    let at = (entry, i);
    let run = header_int::<u32>(path, at, "run", branch(&e.run))?.unwrap_or(0);
    let event_number =
        header_int::<u64>(path, at, "event number", branch(&e.event_number))?.unwrap_or(entry);
    let timestamp_ns =
        header_int::<i64>(path, at, "timestamp", branch(&e.timestamp_ns))?.unwrap_or(0);
    let mut event = CollisionEvent::new(EventHeader {
        run,
        event_number,
        timestamp_ns,
        system: CollisionSystem::Unknown,
        sqrt_s_gev: f64::NAN,
        vertex_cm: [f64::NAN; 3],
        trigger_bits,
        weight: scalar(&e.weight).unwrap_or(1.0),
        hit_collections: Vec::new(),
    });
    event.met = match (
        scalar(&e.met_px),
        scalar(&e.met_py),
        scalar(&e.met_pt),
        scalar(&e.met_phi),
    ) {
        (Some(x), Some(y), pt, phi) => {
            let mut m = MissingEnergy::from_xy(x, y);
            m.pt_gev = pt.unwrap_or(m.pt_gev);
            m.phi = phi.unwrap_or(m.phi);
            Some(m)
        }
        (_, _, Some(pt), Some(phi)) => Some(MissingEnergy::from_pt_phi(pt, phi)),
        (_, _, Some(pt), None) => Some(MissingEnergy {
            px_gev: f64::NAN,
            py_gev: f64::NAN,
            pt_gev: pt,
            phi: f64::NAN,
        }),
        _ => None,
    };
    for (collection, list) in mapping.collections() {
        for om in list {
            let objects = build_objects(path, om, values, i, entry)?;
            match collection {
                "muons" => event.muons.extend(objects),
                "electrons" => event.electrons.extend(objects),
                "photons" => event.photons.extend(objects),
                _ => event.jets.extend(objects),
            }
        }
    }
    Ok(event)
}

pub(crate) fn describe(mapping: &Mapping, types: &[(String, String)], report: &mut ImportReport) {
    let ty = |b: &str| {
        types
            .iter()
            .find(|(n, _)| n == b)
            .map_or("?", |(_, t)| t.as_str())
            .to_owned()
    };
    let e = &mapping.event;
    for (field, b) in [
        ("run", &e.run),
        ("event_number", &e.event_number),
        ("timestamp_ns", &e.timestamp_ns),
        ("weight", &e.weight),
        ("met_px", &e.met_px),
        ("met_py", &e.met_py),
        ("met_pt", &e.met_pt),
        ("met_phi", &e.met_phi),
    ] {
        if let Some(b) = b {
            report
                .mapped
                .push(format!("events.{field} ← {b} ({})", ty(b)));
        }
    }
    for (bit, b) in e.trigger.iter().enumerate() {
        report
            .mapped
            .push(format!("events.trigger bit {bit} ← {b} ({})", ty(b)));
    }
    for (collection, list) in mapping.collections() {
        for om in list {
            let fields: Vec<String> = [("count", &om.count)]
                .iter()
                .chain(om.fields().iter())
                .filter_map(|(f, b)| b.as_ref().map(|b| format!("{f} ← {b}")))
                .collect();
            report
                .mapped
                .push(format!("{collection}: {}", fields.join(", ")));
        }
    }
}

/// The objects one mapping entry gives in entry `i` of the batch, with missing quantities derived.
fn build_objects(
    path: &Path,
    om: &ObjectMapping,
    values: &BTreeMap<&str, Values>,
    i: usize,
    entry: u64,
) -> Result<Vec<PhysicsObject>> {
    let mut columns: Vec<(&str, Vec<f64>)> = Vec::new();
    for (field, branch) in om.fields() {
        let Some(branch) = branch else { continue };
        let Some(v) = values.get(branch.as_str()) else {
            continue;
        };
        let list = match v {
            Values::Jagged(x) => x.get(i).cloned().unwrap_or_default(),
            scalar => scalar.number(i).into_iter().collect(),
        };
        columns.push((field, list));
    }
    let n = columns.first().map_or(0, |(_, l)| l.len());
    if let Some((field, l)) = columns.iter().find(|(_, l)| l.len() != n) {
        return Err(Error::malformed(
            path,
            format!(
                "entry {entry}: `{field}` has {} values but the first field has {n}; the branches are not one collection",
                l.len()
            ),
        ));
    }
    let get = |name: &str, k: usize| {
        columns
            .iter()
            .find(|(f, _)| *f == name)
            .map_or(f64::NAN, |(_, l)| l[k])
    };
    Ok((0..n)
        .map(|k| {
            let mut o = PhysicsObject::from_pt_eta_phi_m(f64::NAN, f64::NAN, f64::NAN, f64::NAN, 0);
            (o.px_gev, o.py_gev, o.pz_gev, o.e_gev) =
                (get("px", k), get("py", k), get("pz", k), get("e", k));
            (o.pt_gev, o.eta, o.phi, o.mass_gev) =
                (get("pt", k), get("eta", k), get("phi", k), get("mass", k));
            let charge = get("charge", k);
            o.charge = if charge.is_nan() { 0 } else { charge as i32 };
            (o.isolation, o.btag) = (get("iso", k), get("btag", k));
            complete(&mut o);
            o
        })
        .collect())
}

/// Derives the coordinates a file left out from those it gave: never overwrites a value.
fn complete(o: &mut PhysicsObject) {
    let cartesian = [o.px_gev, o.py_gev, o.pz_gev, o.e_gev]
        .iter()
        .all(|v| v.is_finite());
    if cartesian {
        let p = FourMomentum::new(o.px_gev, o.py_gev, o.pz_gev, o.e_gev);
        for (slot, v) in [
            (&mut o.pt_gev, p.pt()),
            (&mut o.eta, p.eta()),
            (&mut o.phi, p.phi()),
            (&mut o.mass_gev, p.mass()),
        ] {
            if slot.is_nan() {
                *slot = v;
            }
        }
    } else if [o.pt_gev, o.eta, o.phi].iter().all(|v| v.is_finite()) {
        let m = if o.mass_gev.is_nan() { 0.0 } else { o.mass_gev };
        let p = FourMomentum::from_pt_eta_phi_m(o.pt_gev, o.eta, o.phi, m);
        for (slot, v) in [
            (&mut o.px_gev, p.px),
            (&mut o.py_gev, p.py),
            (&mut o.pz_gev, p.pz),
            (&mut o.e_gev, p.e),
        ] {
            if slot.is_nan() {
                *slot = v;
            }
        }
    }
}

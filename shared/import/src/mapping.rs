//! Which ROOT branches feed which fields of the event model: the automatic mapping found from
//! branch names, or an explicit one (a TOML file), with the counters that split C arrays.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which branches feed which fields. Every entry names a branch; absent entries are unmapped.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The TTree to read (default: the only one, or `events`/`Events`/`tree`).
    pub tree: Option<String>,
    #[serde(default)]
    pub event: EventMapping,
    /// Each entry is one source of objects: jagged branches give a list per event, scalar
    /// branches give one object per event (e.g. `px1`, `px2` as two entries).
    #[serde(default)]
    pub muons: Vec<ObjectMapping>,
    #[serde(default)]
    pub electrons: Vec<ObjectMapping>,
    #[serde(default)]
    pub photons: Vec<ObjectMapping>,
    #[serde(default)]
    pub jets: Vec<ObjectMapping>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventMapping {
    pub run: Option<String>,
    pub event_number: Option<String>,
    pub timestamp_ns: Option<String>,
    pub weight: Option<String>,
    pub met_px: Option<String>,
    pub met_py: Option<String>,
    pub met_pt: Option<String>,
    pub met_phi: Option<String>,
    /// Boolean branches that become trigger bits 0, 1, 2... in this order.
    #[serde(default)]
    pub trigger: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObjectMapping {
    /// The counter branch of the jagged fields (`nJet` for NanoAOD's `Jet_pt[nJet]`): the
    /// number of objects in each entry, which splits the fields' values into events.
    pub count: Option<String>,
    pub px: Option<String>,
    pub py: Option<String>,
    pub pz: Option<String>,
    pub e: Option<String>,
    pub pt: Option<String>,
    pub eta: Option<String>,
    pub phi: Option<String>,
    pub mass: Option<String>,
    pub charge: Option<String>,
    pub iso: Option<String>,
    pub btag: Option<String>,
}

impl ObjectMapping {
    /// Each object field with the branch that feeds it (`None`: unmapped).
    pub fn fields(&self) -> [(&'static str, &Option<String>); 11] {
        [
            ("px", &self.px),
            ("py", &self.py),
            ("pz", &self.pz),
            ("e", &self.e),
            ("pt", &self.pt),
            ("eta", &self.eta),
            ("phi", &self.phi),
            ("mass", &self.mass),
            ("charge", &self.charge),
            ("iso", &self.iso),
            ("btag", &self.btag),
        ]
    }

    pub(crate) fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "px" => &mut self.px,
            "py" => &mut self.py,
            "pz" => &mut self.pz,
            "e" => &mut self.e,
            "pt" => &mut self.pt,
            "eta" => &mut self.eta,
            "phi" => &mut self.phi,
            "mass" => &mut self.mass,
            "charge" => &mut self.charge,
            "iso" => &mut self.iso,
            "btag" => &mut self.btag,
            _ => return None,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, b)| b.is_none())
    }
}

impl Mapping {
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Invalid(format!("invalid mapping file: {e}")))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The object collections (muons, electrons, photons, jets) with their sources.
    pub fn collections(&self) -> [(&'static str, &Vec<ObjectMapping>); 4] {
        [
            ("muons", &self.muons),
            ("electrons", &self.electrons),
            ("photons", &self.photons),
            ("jets", &self.jets),
        ]
    }

    /// Every branch the mapping reads.
    pub fn branches(&self) -> BTreeSet<&str> {
        let e = &self.event;
        let mut out: BTreeSet<&str> = [
            &e.run,
            &e.event_number,
            &e.timestamp_ns,
            &e.weight,
            &e.met_px,
            &e.met_py,
            &e.met_pt,
            &e.met_phi,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        out.extend(e.trigger.iter().map(String::as_str));
        for (_, list) in self.collections() {
            for m in list {
                out.extend(m.fields().into_iter().filter_map(|(_, b)| b.as_deref()));
                out.extend(m.count.as_deref());
            }
        }
        out
    }

    /// Each jagged field branch with the counter branch that sizes it.
    pub(crate) fn counters(&self) -> BTreeMap<&str, &str> {
        let mut out = BTreeMap::new();
        for (_, list) in self.collections() {
            for m in list {
                let Some(count) = m.count.as_deref() else {
                    continue;
                };
                for (_, branch) in m.fields() {
                    if let Some(b) = branch.as_deref() {
                        out.insert(b, count);
                    }
                }
            }
        }
        out
    }

    /// The mapping the naming conventions give for these branch names.
    pub fn automatic(branches: &[(String, String)]) -> Self {
        let find = |candidates: &[&str]| {
            branches
                .iter()
                .find(|(n, _)| candidates.iter().any(|c| n.eq_ignore_ascii_case(c)))
                .map(|(n, _)| n.clone())
        };
        let mut m = Mapping {
            event: EventMapping {
                run: find(&["run", "runNumber", "run_number"]),
                event_number: find(&["event", "eventNumber", "event_number", "evt"]),
                timestamp_ns: find(&["timestamp_ns"]),
                weight: find(&["EventWeight", "genWeight", "weight"]),
                met_px: find(&["MET_px", "met_px", "MET_x"]),
                met_py: find(&["MET_py", "met_py", "MET_y"]),
                met_pt: find(&["MET_pt", "met_pt", "MET_et"]),
                met_phi: find(&["MET_phi", "met_phi"]),
                trigger: branches
                    .iter()
                    .filter(|(n, ty)| {
                        ty == "bool" && (n.starts_with("trigger") || n.starts_with("HLT_"))
                    })
                    .map(|(n, _)| n.clone())
                    .take(64)
                    .collect(),
            },
            ..Default::default()
        };
        let field_of = |suffix: &str| -> Option<&'static str> {
            Some(match suffix.to_ascii_lowercase().as_str() {
                "px" => "px",
                "py" => "py",
                "pz" => "pz",
                "e" | "energy" => "e",
                "pt" => "pt",
                "eta" => "eta",
                "phi" => "phi",
                "mass" | "m" => "mass",
                "charge" | "q" => "charge",
                "iso" | "reliso" | "pfreliso03_all" => "iso",
                "btag" | "btagdeepb" | "btagcsvv2" => "btag",
                _ => return None,
            })
        };
        let integer = |ty: &str| {
            [
                "int32_t", "uint32_t", "int16_t", "uint16_t", "int8_t", "uint8_t", "int64_t",
                "uint64_t",
            ]
            .contains(&ty)
        };
        for (collection, prefixes) in [
            ("muons", ["muon_", "muons_"]),
            ("electrons", ["electron_", "electrons_"]),
            ("photons", ["photon_", "photons_"]),
            ("jets", ["jet_", "jets_"]),
        ] {
            let mut om = ObjectMapping::default();
            let mut stems = BTreeSet::new();
            for (name, ty) in branches {
                let lower = name.to_ascii_lowercase();
                let Some(suffix) = prefixes.iter().find_map(|p| lower.strip_prefix(p)) else {
                    continue;
                };
                let jagged = ty.ends_with("[]") || ty.starts_with("vector<");
                if let (true, Some(field)) = (jagged, field_of(suffix))
                    && let Some(slot) = om.field_mut(field)
                    && slot.is_none()
                {
                    *slot = Some(name.clone());
                    if ty.ends_with("[]") {
                        // `Jet` of `Jet_pt`, as the file spells it.
                        stems.insert(name[..name.len() - suffix.len() - 1].to_owned());
                    }
                }
            }
            // C-style arrays are sized by a counter branch: NanoAOD's `nJet`, or `NJet`.
            om.count = stems.iter().find_map(|stem| {
                branches
                    .iter()
                    .find(|(n, ty)| {
                        integer(ty) && (*n == format!("n{stem}") || *n == format!("N{stem}"))
                    })
                    .map(|(n, _)| n.clone())
            });
            if !om.is_empty() {
                m.collection_mut(collection).push(om);
            }
        }
        // Flat numbered objects (px1, eta2, Q1...): one object per event per number.
        let mut numbered: BTreeMap<char, ObjectMapping> = BTreeMap::new();
        for (name, ty) in branches {
            let Some(digit) = name.chars().last().filter(char::is_ascii_digit) else {
                continue;
            };
            let stem = &name[..name.len() - 1];
            if ty.ends_with("[]") || stem.contains('_') {
                continue;
            }
            if let Some(slot) =
                field_of(stem).and_then(|f| numbered.entry(digit).or_default().field_mut(f))
            {
                *slot = Some(name.clone());
            }
        }
        m.muons.extend(
            numbered
                .into_values()
                .filter(|o| o.pt.is_some() || o.px.is_some()),
        );
        m
    }

    pub(crate) fn collection_mut(&mut self, name: &str) -> &mut Vec<ObjectMapping> {
        match name {
            "electrons" => &mut self.electrons,
            "photons" => &mut self.photons,
            "jets" => &mut self.jets,
            _ => &mut self.muons,
        }
    }
}

//! The query builder's model: a physics selection made of parts a physicist picks — a
//! collection, cuts on its objects and on events, a minimum multiplicity, ΔR cleaning against
//! another collection, pairs or triples (opposite charge, same flavour, a mass window, the one
//! closest to a mass) and what to output. `Spec::query` turns it into the query AST (by way of
//! ALYX SQL, which the builder previews and which reads back into the same AST).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::parse::parse;
use alyx_core::ast::{BinOp, Query};

/// What the selection is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    Events,
    Muons,
    Electrons,
    Photons,
    Jets,
    /// Muons and electrons together, with `flavour` 13 or 11.
    Leptons,
}

impl Collection {
    pub const ALL: [Collection; 6] = [
        Collection::Events,
        Collection::Muons,
        Collection::Electrons,
        Collection::Photons,
        Collection::Jets,
        Collection::Leptons,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Events => "events",
            Collection::Muons => "muons",
            Collection::Electrons => "electrons",
            Collection::Photons => "photons",
            Collection::Jets => "jets",
            Collection::Leptons => "leptons",
        }
    }

    /// Fields a cut or an output may use.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Collection::Events => &[
                "met_pt",
                "met_phi",
                "run",
                "event_number",
                "n_tracks",
                "n_muons",
                "n_electrons",
                "n_jets",
                "weight",
                "vz",
            ],
            Collection::Jets => &["pt", "eta", "phi", "mass", "btag"],
            Collection::Leptons => &["pt", "eta", "phi", "mass", "charge", "iso", "flavour"],
            _ => &["pt", "eta", "phi", "mass", "charge", "iso"],
        }
    }
}

/// `field op value`, on `|field|` when `abs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    pub field: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abs: bool,
    pub op: BinOp,
    pub value: f64,
}

impl Cut {
    pub fn new(field: &str, op: BinOp, value: f64) -> Self {
        Self {
            field: field.into(),
            abs: false,
            op,
            value,
        }
    }

    pub fn abs(field: &str, op: BinOp, value: f64) -> Self {
        Self {
            abs: true,
            ..Self::new(field, op, value)
        }
    }

    fn sql(&self, q: &str) -> String {
        let f = if q.is_empty() {
            self.field.clone()
        } else {
            format!("{q}.{}", self.field)
        };
        let f = if self.abs { format!("ABS({f})") } else { f };
        format!("{f} {} {:?}", self.op.symbol(), self.value)
    }
}

/// Remove objects within ΔR < `delta_r` of any object of `against` with pT > `pt_min`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cleaning {
    pub against: Collection,
    pub pt_min: f64,
    pub delta_r: f64,
}

/// Pairs or triples of selected objects in the same event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combine {
    /// 2 or 3.
    pub n: usize,
    #[serde(default)]
    pub opposite_charge: bool,
    #[serde(default)]
    pub same_flavour: bool,
    /// Keep combinations with mass in [lo, hi].
    #[serde(default)]
    pub mass: Option<(f64, f64)>,
    /// Keep, per event, the combination whose mass is closest to this.
    #[serde(default)]
    pub closest_to: Option<f64>,
}

/// What a row of the result is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// One row per selected object, with these fields.
    Objects(Vec<String>),
    /// One row per selected event, with these event fields.
    Events(Vec<String>),
    /// One row per event (every event that passes the event cuts): the sum of a field over its
    /// selected objects, 0 when it has none.
    Sum(String),
    /// One row per kept combination: `mass`, `pt` (and `max_btag` for jets).
    Combinations,
    /// Per event with a kept pair: the transverse mass of MET and the highest-pT selected object
    /// not in the pair.
    MtWithLeadingOther,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub collection: Collection,
    #[serde(default)]
    pub object_cuts: Vec<Cut>,
    #[serde(default)]
    pub event_cuts: Vec<Cut>,
    /// Events need at least this many selected objects.
    #[serde(default)]
    pub min_objects: Option<u32>,
    #[serde(default)]
    pub clean: Option<Cleaning>,
    #[serde(default)]
    pub combine: Option<Combine>,
    pub output: Output,
}

impl Spec {
    pub fn new(collection: Collection, output: Output) -> Self {
        Self {
            collection,
            object_cuts: Vec::new(),
            event_cuts: Vec::new(),
            min_objects: None,
            clean: None,
            combine: None,
            output,
        }
    }

    /// The selection as a query.
    pub fn query(&self) -> Result<Query, Diagnostic> {
        parse(&self.sql()?)
    }

    /// The selection as ALYX SQL.
    pub fn sql(&self) -> Result<String, Diagnostic> {
        let bad = |m: String| Err(Diagnostic::new(m, alyx_core::ast::At::NONE));
        let c = self.collection;
        for cut in self.object_cuts.iter().chain(&self.event_cuts) {
            if !cut.op.is_comparison() || !cut.value.is_finite() {
                return bad(format!(
                    "a cut compares a field with a finite number: {}",
                    cut.sql("")
                ));
            }
        }
        if let Some(k) = &self.combine {
            if !(k.n == 2 || k.n == 3) {
                return bad("combinations are pairs or triples".into());
            }
            if matches!(c, Collection::Events) {
                return bad("pick an object collection to combine".into());
            }
            if k.opposite_charge && c == Collection::Jets {
                return bad("jets carry no charge: opposite charge needs leptons".into());
            }
        }
        let needs_pair = matches!(
            self.output,
            Output::Combinations | Output::MtWithLeadingOther
        );
        if needs_pair && self.combine.is_none() {
            return bad("this output needs a pair or triple selection".into());
        }
        if matches!(self.output, Output::MtWithLeadingOther)
            && self
                .combine
                .as_ref()
                .is_some_and(|k| k.n != 2 || k.closest_to.is_none())
        {
            return bad(
                "transverse mass with the leading other object needs the pair closest to a mass"
                    .into(),
            );
        }

        let mut with: Vec<(String, String)> = Vec::new();
        let where_ = |cuts: &[Cut], q: &str| -> String {
            if cuts.is_empty() {
                String::new()
            } else {
                let terms: Vec<String> = cuts.iter().map(|x| x.sql(q)).collect();
                format!(" WHERE {}", terms.join(" AND "))
            }
        };
        let event_where = where_(&self.event_cuts, "e");

        if c == Collection::Events {
            let Output::Events(fields) = &self.output else {
                return bad("events give event fields: choose an event output".into());
            };
            let mut s = String::from("SELECT e.event_id");
            for f in fields {
                let _ = write!(s, ", e.{f}");
            }
            let _ = write!(s, " FROM events AS e{event_where}");
            return Ok(s);
        }

        // The selected objects.
        with.push(("sel".into(), objects(c, &self.object_cuts)));
        let flavoured = c == Collection::Leptons;
        let key = |q: &str| {
            if flavoured {
                format!("{q}.flavour, {q}.idx")
            } else {
                format!("{q}.idx")
            }
        };
        if let Some(cl) = &self.clean {
            if flavoured {
                return bad("ΔR cleaning applies to one collection, not leptons".into());
            }
            let against = objects(cl.against, &[Cut::new("pt", BinOp::Gt, cl.pt_min)]);
            with.push(("against".into(), against));
            with.push((
                "near".into(),
                format!(
                    "SELECT DISTINCT s.event_id, s.idx, 1 AS flag FROM sel AS s JOIN against AS o ON o.event_id = s.event_id WHERE DELTA_R(s.eta, s.phi, o.eta, o.phi) < {:?}",
                    cl.delta_r
                ),
            ));
            with.push((
                "kept".into(),
                // Tested on a column that is not a join key: engines may merge key columns.
                "SELECT s.* FROM sel AS s LEFT JOIN near AS n ON n.event_id = s.event_id AND n.idx = s.idx WHERE n.flag IS NULL".into(),
            ));
        }
        let objs = if self.clean.is_some() { "kept" } else { "sel" };
        let min = self.min_objects.unwrap_or(0);
        if min > 1 || (min == 1 && self.combine.is_none()) {
            with.push((
                "counted".into(),
                format!("SELECT event_id FROM {objs} GROUP BY event_id HAVING COUNT(*) >= {min}"),
            ));
        }
        let counted = with.iter().any(|(n, _)| n == "counted");
        // Joins that restrict to counted events and to events passing the event cuts.
        let restrict = |q: &str| {
            let mut s = String::new();
            if counted {
                let _ = write!(s, " JOIN counted ON counted.event_id = {q}.event_id");
            }
            if !self.event_cuts.is_empty() {
                let _ = write!(s, " JOIN events AS e ON e.event_id = {q}.event_id");
            }
            s
        };

        if let Some(k) = &self.combine {
            let names = ["a", "b", "c"];
            let qs = &names[..k.n];
            let args: Vec<String> = qs
                .iter()
                .map(|q| format!("{q}.pt, {q}.eta, {q}.phi, {q}.mass"))
                .collect();
            let mut s = format!(
                "SELECT a.event_id, INV_MASS({0}) AS mass, SUM_PT({0}) AS pt",
                args.join(", ")
            );
            if c == Collection::Jets {
                let tags: Vec<String> = qs.iter().map(|q| format!("{q}.btag")).collect();
                let _ = write!(s, ", GREATEST({}) AS max_btag", tags.join(", "));
            }
            for (i, q) in qs.iter().enumerate() {
                let _ = write!(s, ", {q}.idx AS i{}", i + 1);
            }
            if flavoured {
                let _ = write!(s, ", a.flavour AS flavour");
            }
            if let Some(x) = k.closest_to {
                let _ = write!(
                    s,
                    ", ABS(INV_MASS({}) - {x:?}) AS distance",
                    args.join(", ")
                );
            }
            let _ = write!(s, " FROM {objs} AS a");
            let mut conds = Vec::new();
            for (i, q) in qs.iter().enumerate().skip(1) {
                let prev = qs[i - 1];
                let mut on = format!("{q}.event_id = a.event_id");
                if k.same_flavour && flavoured {
                    let _ = write!(on, " AND {q}.flavour = a.flavour");
                }
                let _ = write!(s, " JOIN {objs} AS {q} ON {on}");
                conds.push(if flavoured && !k.same_flavour {
                    format!(
                        "({prev}.flavour < {q}.flavour OR ({prev}.flavour = {q}.flavour AND {prev}.idx < {q}.idx))"
                    )
                } else {
                    format!("{prev}.idx < {q}.idx")
                });
            }
            s.push_str(&restrict("a"));
            if k.opposite_charge {
                conds.push("a.charge <> b.charge".into());
            }
            conds.extend(self.event_cuts.iter().map(|x| x.sql("e")));
            let window = k
                .mass
                .map(|(lo, hi)| format!("mass BETWEEN {lo:?} AND {hi:?}"));
            if k.closest_to.is_none() {
                if let Some((lo, hi)) = k.mass {
                    conds.push(format!(
                        "INV_MASS({}) BETWEEN {lo:?} AND {hi:?}",
                        args.join(", ")
                    ));
                }
            }
            let _ = write!(s, " WHERE {}", conds.join(" AND "));
            with.push(("combos".into(), s));
            let mut chosen = "combos";
            if k.closest_to.is_some() {
                with.push((
                    "best".into(),
                    "SELECT event_id, MIN(distance) AS distance FROM combos GROUP BY event_id"
                        .into(),
                ));
                let filter = window.map(|w| format!(" WHERE c.{w}")).unwrap_or_default();
                with.push((
                    "chosen".into(),
                    format!(
                        "SELECT c.* FROM combos AS c JOIN best ON best.event_id = c.event_id AND best.distance = c.distance{filter}"
                    ),
                ));
                chosen = "chosen";
            }
            let body = match &self.output {
                Output::Combinations => {
                    let btag = if c == Collection::Jets {
                        ", max_btag"
                    } else {
                        ""
                    };
                    format!("SELECT event_id, mass, pt{btag} FROM {chosen}")
                }
                Output::Events(fields) => {
                    with.push((
                        "passing".into(),
                        format!("SELECT DISTINCT event_id FROM {chosen}"),
                    ));
                    let mut s = String::from("SELECT e.event_id");
                    for f in fields {
                        let _ = write!(s, ", e.{f}");
                    }
                    let _ = write!(
                        s,
                        " FROM events AS e JOIN passing ON passing.event_id = e.event_id"
                    );
                    s
                }
                Output::MtWithLeadingOther => {
                    let not_in_pair = if flavoured {
                        "NOT (s.flavour = p.flavour AND (s.idx = p.i1 OR s.idx = p.i2))"
                    } else {
                        "NOT (s.idx = p.i1 OR s.idx = p.i2)"
                    };
                    with.push((
                        "other".into(),
                        format!(
                            "SELECT s.event_id, s.pt, s.phi FROM {objs} AS s JOIN {chosen} AS p ON p.event_id = s.event_id WHERE {not_in_pair}"
                        ),
                    ));
                    with.push((
                        "lead".into(),
                        "SELECT event_id, MAX(pt) AS pt FROM other GROUP BY event_id".into(),
                    ));
                    with.push((
                        "leading".into(),
                        "SELECT o.event_id, o.pt, o.phi FROM other AS o JOIN lead ON lead.event_id = o.event_id AND lead.pt = o.pt".into(),
                    ));
                    "SELECT l.event_id, MT(l.pt, l.phi, e.met_pt, e.met_phi) AS mt FROM leading AS l JOIN events AS e ON e.event_id = l.event_id".into()
                }
                Output::Objects(_) | Output::Sum(_) => {
                    return bad("with a pair or triple selection, output the combinations, their events or the transverse mass".into());
                }
            };
            return Ok(render(&with, &body));
        }

        let body = match &self.output {
            Output::Objects(fields) => {
                let mut s = format!("SELECT s.event_id, {}", key("s"));
                for f in fields
                    .iter()
                    .filter(|f| !matches!(f.as_str(), "idx" | "flavour"))
                {
                    let _ = write!(s, ", s.{f}");
                }
                let _ = write!(
                    s,
                    " FROM {objs} AS s{}{}",
                    restrict("s"),
                    where_(&self.event_cuts, "e")
                );
                s
            }
            Output::Events(fields) => {
                let source = if counted {
                    "counted".to_owned()
                } else {
                    with.push((
                        "passing".into(),
                        format!("SELECT DISTINCT event_id FROM {objs}"),
                    ));
                    "passing".to_owned()
                };
                let mut s = String::from("SELECT e.event_id");
                for f in fields {
                    let _ = write!(s, ", e.{f}");
                }
                let _ = write!(
                    s,
                    " FROM events AS e JOIN {source} ON {source}.event_id = e.event_id{event_where}"
                );
                s
            }
            Output::Sum(field) => {
                with.push((
                    "total".into(),
                    format!("SELECT event_id, SUM({field}) AS total FROM {objs} GROUP BY event_id"),
                ));
                let mut s = format!(
                    "SELECT e.event_id, COALESCE(t.total, 0.0) AS sum_{field} FROM events AS e LEFT JOIN total AS t ON t.event_id = e.event_id"
                );
                if counted {
                    let _ = write!(s, " JOIN counted ON counted.event_id = e.event_id");
                }
                s.push_str(&event_where);
                s
            }
            Output::Combinations | Output::MtWithLeadingOther => {
                return bad("this output needs a pair or triple selection".into());
            }
        };
        Ok(render(&with, &body))
    }
}

/// The objects of `c` passing `cuts` (leptons: muons and electrons with their flavour).
fn objects(c: Collection, cuts: &[Cut]) -> String {
    let filter = |_: &str| {
        if cuts.is_empty() {
            String::new()
        } else {
            let terms: Vec<String> = cuts.iter().map(|x| x.sql("")).collect();
            format!(" WHERE {}", terms.join(" AND "))
        }
    };
    match c {
        Collection::Leptons => {
            let lep = |table: &str, pdg: u32| {
                // `flavour` is not a column of the tables: cut on it after the union.
                let own: Vec<Cut> = cuts
                    .iter()
                    .filter(|x| x.field != "flavour")
                    .cloned()
                    .collect();
                let flavour_ok = cuts.iter().filter(|x| x.field == "flavour").all(|x| {
                    let v = f64::from(pdg);
                    let v = if x.abs { v.abs() } else { v };
                    match x.op {
                        BinOp::Eq => v == x.value,
                        BinOp::NotEq => v != x.value,
                        BinOp::Lt => v < x.value,
                        BinOp::LtEq => v <= x.value,
                        BinOp::Gt => v > x.value,
                        BinOp::GtEq => v >= x.value,
                        _ => true,
                    }
                });
                let mut terms: Vec<String> = own.iter().map(|x| x.sql("")).collect();
                if !flavour_ok {
                    terms.push("FALSE".into());
                }
                let filter = if terms.is_empty() {
                    String::new()
                } else {
                    format!(" WHERE {}", terms.join(" AND "))
                };
                format!(
                    "SELECT event_id, idx, {pdg} AS flavour, pt, eta, phi, mass, charge, iso FROM {table}{filter}"
                )
            };
            format!("{} UNION ALL {}", lep("muons", 13), lep("electrons", 11))
        }
        other => format!("SELECT * FROM {}{}", other.name(), filter("")),
    }
}

fn render(with: &[(String, String)], body: &str) -> String {
    if with.is_empty() {
        return body.to_owned();
    }
    let ctes: Vec<String> = with.iter().map(|(n, s)| format!("{n} AS ({s})")).collect();
    format!("WITH {} {body}", ctes.join(", "))
}

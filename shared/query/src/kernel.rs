//! The local engine's per-event kernel for the builder's pair and triple selections.
//!
//! As SQL, "the trijet closest to 172.5 GeV" is a three-way self-join of the jets of each event
//! and a minimum per event joined back: every combination is materialised (20 rows for an event
//! of six jets, hundreds of millions for ten million events) before most are thrown away. The
//! kernel reads the same Parquet columns and forms the combinations inside one event at a time,
//! filling the histograms directly, as RDataFrame's or a hand-written loop would.
//!
//! It applies only to queries that are exactly what the builder writes for a [`Spec`] with
//! pairs or triples (no ΔR cleaning, no event cuts): [`recognize`] reads the parameters off the
//! query's text and accepts them only when the builder, given them, prints the same query. The
//! arithmetic is the SQL lowering's (`print::lower_call`), term by term in the same order, so
//! both paths fill the same bins (tested). Anything else runs relationally.

use std::fs::File;

use polars::prelude::*;

use super::builder::{Collection, Combine, Cut, Output, Spec};
use super::print::{Dialect, to_sql};
use crate::error::{Error, Result};
use alyx_core::ast::BinOp;
use alyx_core::ast::Query;
use alyx_core::histogram::{Binning, Histogram};
use alyx_store::{Dataset, Table};

/// The canonical text of `query`: checked for the local engine (names qualified, `*`
/// expanded), printed as ALYX SQL.
fn canonical(query: &Query) -> Option<String> {
    let checked = crate::check::check(query, alyx_core::ast::Engine::Local).ok()?;
    Some(to_sql(checked.query(), Dialect::Alyx))
}

/// The builder selection `query` was made from, when the kernel runs it.
pub fn recognize(query: &Query) -> Option<Spec> {
    let text = canonical(query)?;
    if !text.contains("combos AS (")
        || text.contains("near AS (")
        || text.contains("JOIN events AS e ON e.event_id = a.event_id")
    {
        return None;
    }
    let leptons = text.contains("13 AS flavour") && text.contains("11 AS flavour");
    let (collection, table) = if leptons {
        (Collection::Leptons, "muons")
    } else {
        let body = text.split("sel AS (SELECT ").nth(1)?;
        let after = body.split(" FROM ").nth(1)?;
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let c = *Collection::ALL.iter().find(|c| c.name() == name)?;
        (c, c.name())
    };
    let object_cuts = match after_word(&text, &format!("FROM {table} WHERE "), "sel AS (") {
        Some(terms) => cuts(&terms.replace(&format!("{table}."), ""))?,
        None => Vec::new(),
    };
    let min_objects = text
        .split("HAVING COUNT(*) >= ")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .map_or(Some(None), |n| n.map(Some))?;
    let number = |s: &str| -> Option<f64> {
        let t: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            .collect();
        t.parse().ok()
    };
    let closest_to = match text.find(") AS distance") {
        Some(end) => {
            let head = &text[..end];
            Some(number(&head[head.rfind(" - ")? + 3..])?)
        }
        None => None,
    };
    let mass = match text.find(" BETWEEN ") {
        Some(at) => {
            let rest = &text[at + 9..];
            let lo = number(rest)?;
            let hi = number(rest.split_once(" AND ")?.1)?;
            Some((lo, hi))
        }
        None => None,
    };
    let output = if text.contains("MT(") {
        Output::MtWithLeadingOther
    } else if text.contains("\"passing\" AS (") || text.contains("passing AS (") {
        let last = text.rsplit("SELECT ").next()?;
        let fields = last.split(" FROM ").next()?;
        Output::Events(
            fields
                .split(", ")
                .filter_map(|f| f.trim().strip_prefix("e."))
                .map(|f| f.split(" AS ").next().unwrap_or(f).to_owned())
                .filter(|f| f != "event_id")
                .collect(),
        )
    } else {
        Output::Combinations
    };
    let spec = Spec {
        collection,
        object_cuts,
        event_cuts: Vec::new(),
        min_objects,
        clean: None,
        combine: Some(Combine {
            n: if text.contains(" AS c ON ") { 3 } else { 2 },
            opposite_charge: text.contains("a.charge <> b.charge"),
            same_flavour: text.contains("b.flavour = a.flavour"),
            mass,
            closest_to,
        }),
        output,
    };
    let again = spec.query().ok()?;
    (canonical(&again)? == text).then_some(spec)
}

/// The text after `word` inside the first `(…)` that follows `cte`, up to its closing
/// parenthesis or a top-level `)`.
fn after_word(text: &str, word: &str, cte: &str) -> Option<String> {
    let start = text.find(cte)? + cte.len();
    let body = &text[start..];
    // The CTE's own text: up to the parenthesis that closes it.
    let mut depth = 1;
    let mut end = body.len();
    for (i, ch) in body.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = &body[..end];
    let at = body.find(word)? + word.len();
    let rest = &body[at..];
    Some(rest.split(" UNION ALL ").next().unwrap_or(rest).to_owned())
}

/// Cuts from `pt > 40.0 AND ABS(eta) < 2.4`.
fn cuts(terms: &str) -> Option<Vec<Cut>> {
    let ops = [
        BinOp::LtEq,
        BinOp::GtEq,
        BinOp::NotEq,
        BinOp::Lt,
        BinOp::Gt,
        BinOp::Eq,
    ];
    terms
        .split(" AND ")
        .map(|t| {
            let t = t.trim().trim_start_matches('(').trim_end_matches(')');
            let (op, (lhs, rhs)) = ops
                .iter()
                .find_map(|op| Some((*op, t.split_once(&format!(" {} ", op.symbol()))?)))?;
            let value: f64 = rhs.trim().trim_end_matches(')').parse().ok()?;
            let lhs = lhs.trim();
            Some(match lhs.strip_prefix("ABS(") {
                Some(f) => Cut::abs(f.trim_end_matches(')'), op, value),
                None => Cut::new(lhs, op, value),
            })
        })
        .collect()
}

/// Whether the kernel fills a histogram of `column` for `spec`.
pub fn has_column(spec: &Spec, column: &str) -> bool {
    match &spec.output {
        Output::Combinations => {
            matches!(column, "mass" | "pt")
                || (column == "max_btag" && spec.collection == Collection::Jets)
        }
        Output::Events(fields) => fields.iter().any(|f| f == column),
        Output::MtWithLeadingOther => column == "mt",
        _ => false,
    }
}

/// Histograms of `plots` (column, binning) for `spec` over `chunks` (all when `None`), and the
/// number of rows the query returns; chunks in parallel on all cores, merged in chunk order.
pub fn histograms(
    dataset: &Dataset,
    spec: &Spec,
    chunks: Option<&[u32]>,
    plots: &[(String, Binning)],
) -> Result<(Vec<Histogram>, u64)> {
    if let Some((c, _)) = plots.iter().find(|(c, _)| !has_column(spec, c)) {
        return Err(Error::Invalid(format!("the kernel has no column `{c}`")));
    }
    let ids: Vec<u32> = dataset
        .manifest()
        .chunks
        .iter()
        .map(|c| c.id)
        .filter(|id| chunks.is_none_or(|cs| cs.contains(id)))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(ids.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<(usize, Result<(Vec<Histogram>, u64)>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(id) = ids.get(i) else { break };
                        done.push((i, chunk_histograms(dataset, spec, *id, plots)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(0, Err(Error::Invalid("kernel thread panicked".into())))]
                })
            })
            .collect()
    });
    parts.sort_by_key(|(i, _)| *i);
    let mut total: Vec<Histogram> = plots
        .iter()
        .map(|(_, b)| Histogram::new(b.clone()))
        .collect();
    let mut rows = 0;
    for (_, part) in parts {
        let (hs, n) = part?;
        for (t, h) in total.iter_mut().zip(hs) {
            t.merge(&h)?;
        }
        rows += n;
    }
    Ok((total, rows))
}

/// The selected objects of one chunk, sorted by event, then flavour, then index (the order of
/// the SQL's combinations), with each object's four-momentum terms as the SQL lowering computes
/// them.
#[derive(Default)]
struct Objects {
    event: Vec<u64>,
    flavour: Vec<i64>,
    idx: Vec<i64>,
    charge: Vec<i64>,
    pt: Vec<f64>,
    phi: Vec<f64>,
    btag: Vec<f64>,
    e: Vec<f64>,
    px: Vec<f64>,
    py: Vec<f64>,
    pz: Vec<f64>,
}

fn read(dataset: &Dataset, table: Table, chunk: u32, columns: &[&str]) -> Result<DataFrame> {
    let files = dataset.table_files_of(table, Some(&[chunk]))?;
    let mut frames = Vec::new();
    for path in files {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let cols: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        frames.push(ParquetReader::new(file).with_columns(Some(cols)).finish()?);
    }
    let mut frames = frames.into_iter();
    let mut out = frames.next().unwrap_or_default();
    for f in frames {
        out.vstack_mut(&f)?;
    }
    Ok(out)
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn ints(df: &DataFrame, name: &str) -> Result<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().map(|v| v.unwrap_or(i64::MIN)).collect())
}

/// SQL's comparison of a (possibly null, read as NaN) value: null is never true.
fn passes(cut: &Cut, v: f64) -> bool {
    let v = if cut.abs { v.abs() } else { v };
    if v.is_nan() {
        return false;
    }
    match cut.op {
        BinOp::Eq => v == cut.value,
        BinOp::NotEq => v != cut.value,
        BinOp::Lt => v < cut.value,
        BinOp::LtEq => v <= cut.value,
        BinOp::Gt => v > cut.value,
        BinOp::GtEq => v >= cut.value,
        _ => false,
    }
}

fn cosh(x: f64) -> f64 {
    ((x).exp() + (-x).exp()) / 2.0
}

fn sinh(x: f64) -> f64 {
    ((x).exp() - (-x).exp()) / 2.0
}

fn objects(dataset: &Dataset, spec: &Spec, chunk: u32) -> Result<Objects> {
    let tables: &[(Table, i64)] = match spec.collection {
        Collection::Leptons => &[(Table::Muons, 13), (Table::Electrons, 11)],
        Collection::Jets => &[(Table::Jets, 0)],
        Collection::Muons => &[(Table::Muons, 0)],
        Collection::Electrons => &[(Table::Electrons, 0)],
        Collection::Photons => &[(Table::Photons, 0)],
        Collection::Events => return Err(Error::Invalid("events are not objects".into())),
    };
    let mut columns = vec!["event_id", "idx", "pt", "eta", "phi", "mass", "charge"];
    if spec.collection == Collection::Jets {
        columns.push("btag");
    }
    for cut in &spec.object_cuts {
        if !columns.contains(&cut.field.as_str()) {
            columns.push(&cut.field);
        }
    }
    // (event, flavour, idx, row in its table, table)
    let mut order = Vec::new();
    let mut frames = Vec::new();
    for (t, (table, flavour)) in tables.iter().enumerate() {
        let df = read(dataset, *table, chunk, &columns)?;
        let cut_values: Vec<Vec<f64>> = spec
            .object_cuts
            .iter()
            .map(|c| floats(&df, &c.field))
            .collect::<Result<_>>()?;
        let event = df.column("event_id")?.cast(&DataType::UInt64)?;
        let event: Vec<u64> = event.u64()?.iter().map(|v| v.unwrap_or(u64::MAX)).collect();
        let idx = ints(&df, "idx")?;
        for row in 0..df.height() {
            if spec
                .object_cuts
                .iter()
                .zip(&cut_values)
                .all(|(c, v)| passes(c, v[row]))
            {
                order.push((event[row], *flavour, idx[row], row, t));
            }
        }
        frames.push(df);
    }
    if !order.is_sorted() {
        order.sort_unstable();
    }
    let mut o = Objects::default();
    let columns: Vec<_> = frames
        .iter()
        .map(|df| {
            Ok((
                floats(df, "pt")?,
                floats(df, "eta")?,
                floats(df, "phi")?,
                floats(df, "mass")?,
                ints(df, "charge")?,
                if spec.collection == Collection::Jets {
                    floats(df, "btag")?
                } else {
                    Vec::new()
                },
            ))
        })
        .collect::<Result<_>>()?;
    for (event, flavour, idx, row, t) in order {
        let (pt, eta, phi, mass, charge, btag) = &columns[t];
        let (pt, eta, phi, m) = (pt[row], eta[row], phi[row], mass[row]);
        o.event.push(event);
        o.flavour.push(flavour);
        o.idx.push(idx);
        o.charge.push(charge[row]);
        o.pt.push(pt);
        o.phi.push(phi);
        o.btag.push(btag.get(row).copied().unwrap_or(f64::NAN));
        let pc = pt * cosh(eta);
        o.e.push((pc * pc + m * m).sqrt());
        o.px.push(pt * phi.cos());
        o.py.push(pt * phi.sin());
        o.pz.push(pt * sinh(eta));
    }
    Ok(o)
}

/// A kept combination: its objects (rows of `Objects`), mass, pT and largest b-tag.
#[derive(Clone, Copy)]
struct Combo {
    rows: [usize; 3],
    mass: f64,
    pt: f64,
    max_btag: f64,
}

fn combo(o: &Objects, rows: &[usize]) -> Combo {
    let sum = |v: &[f64]| rows.iter().skip(1).fold(v[rows[0]], |s, r| s + v[*r]);
    let (e, px, py, pz) = (sum(&o.e), sum(&o.px), sum(&o.py), sum(&o.pz));
    let m2 = e * e - px * px - py * py - pz * pz;
    let mass = greatest(m2, 0.0).sqrt();
    let btag = rows.iter().map(|r| o.btag[*r]).fold(f64::NAN, greatest);
    let mut all = [usize::MAX; 3];
    all[..rows.len()].copy_from_slice(rows);
    Combo {
        rows: all,
        mass,
        pt: (px * px + py * py).sqrt(),
        max_btag: btag,
    }
}

/// SQL's GREATEST: nulls (NaN) ignored.
fn greatest(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() || a >= b {
        a
    } else {
        b
    }
}

fn chunk_histograms(
    dataset: &Dataset,
    spec: &Spec,
    chunk: u32,
    plots: &[(String, Binning)],
) -> Result<(Vec<Histogram>, u64)> {
    let k = spec
        .combine
        .as_ref()
        .ok_or_else(|| Error::Invalid("no combination".into()))?;
    let o = objects(dataset, spec, chunk)?;
    let mut hs: Vec<Histogram> = plots
        .iter()
        .map(|(_, b)| Histogram::new(b.clone()))
        .collect();
    // Event fields, by event id (rows are sorted by it).
    let event_fields: Vec<String> = match &spec.output {
        Output::Events(f) => f.clone(),
        Output::MtWithLeadingOther => vec!["met_pt".into(), "met_phi".into()],
        _ => Vec::new(),
    };
    let (event_ids, fields): (Vec<u64>, Vec<Vec<f64>>) = if event_fields.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let mut cols: Vec<&str> = vec!["event_id"];
        cols.extend(event_fields.iter().map(String::as_str));
        let df = read(dataset, Table::Events, chunk, &cols)?;
        let ids = df.column("event_id")?.cast(&DataType::UInt64)?;
        let ids = ids.u64()?.iter().map(|v| v.unwrap_or(u64::MAX)).collect();
        (
            ids,
            event_fields
                .iter()
                .map(|f| floats(&df, f))
                .collect::<Result<_>>()?,
        )
    };
    let field = |event: u64, i: usize| -> Option<f64> {
        let row = event_ids.binary_search(&event).ok()?;
        Some(fields[i][row])
    };
    let flavoured = spec.collection == Collection::Leptons;
    let min = spec.min_objects.unwrap_or(0) as usize;
    let mut combos: Vec<Combo> = Vec::new();
    let mut rows = 0u64;
    let mut start = 0;
    while start < o.event.len() {
        let event = o.event[start];
        let mut end = start + 1;
        while end < o.event.len() && o.event[end] == event {
            end += 1;
        }
        let group = start..end;
        start = end;
        if min > 1 && group.len() < min {
            continue;
        }
        combos.clear();
        let pair_ok = |a: usize, b: usize| {
            (!k.same_flavour || !flavoured || o.flavour[a] == o.flavour[b])
                && (!k.opposite_charge || o.charge[a] != o.charge[b])
        };
        let window = |c: &Combo| k.mass.is_none_or(|(lo, hi)| c.mass >= lo && c.mass <= hi);
        for a in group.clone() {
            for b in a + 1..group.end {
                if !pair_ok(a, b) {
                    continue;
                }
                if k.n == 2 {
                    combos.push(combo(&o, &[a, b]));
                    continue;
                }
                for c in b + 1..group.end {
                    if !k.same_flavour || !flavoured || o.flavour[c] == o.flavour[a] {
                        combos.push(combo(&o, &[a, b, c]));
                    }
                }
            }
        }
        match k.closest_to {
            Some(x) => {
                let best = combos
                    .iter()
                    .map(|c| (c.mass - x).abs())
                    .filter(|d| !d.is_nan())
                    .fold(f64::INFINITY, f64::min);
                combos.retain(|c| (c.mass - x).abs() == best && window(c));
            }
            None => combos.retain(window),
        }
        if combos.is_empty() {
            continue;
        }
        match &spec.output {
            Output::Combinations => {
                rows += combos.len() as u64;
                for c in &combos {
                    for (h, (col, _)) in hs.iter_mut().zip(plots) {
                        let v = match col.as_str() {
                            "mass" => c.mass,
                            "pt" => c.pt,
                            _ => c.max_btag,
                        };
                        h.fill(v, 1.0);
                    }
                }
            }
            Output::Events(names) => {
                rows += 1;
                for (h, (col, _)) in hs.iter_mut().zip(plots) {
                    let i = names.iter().position(|n| n == col).unwrap_or(0);
                    h.fill(field(event, i).unwrap_or(f64::NAN), 1.0);
                }
            }
            Output::MtWithLeadingOther => {
                // Every selected object outside a chosen pair (as the SQL excludes it: same
                // flavour as the pair's first object and one of the pair's indices).
                let mut others: Vec<(f64, f64)> = Vec::new();
                for c in &combos {
                    let [a, b, _] = c.rows;
                    for s in group.clone() {
                        let in_pair = (!flavoured || o.flavour[s] == o.flavour[a])
                            && (o.idx[s] == o.idx[a] || o.idx[s] == o.idx[b]);
                        if !in_pair {
                            others.push((o.pt[s], o.phi[s]));
                        }
                    }
                }
                let lead = others
                    .iter()
                    .map(|(pt, _)| *pt)
                    .filter(|p| !p.is_nan())
                    .fold(f64::NEG_INFINITY, f64::max);
                let (met, met_phi) = (
                    field(event, 0).unwrap_or(f64::NAN),
                    field(event, 1).unwrap_or(f64::NAN),
                );
                for (pt, phi) in others.iter().filter(|(pt, _)| *pt == lead) {
                    rows += 1;
                    let mt = greatest(2.0 * pt * met * (1.0 - (phi - met_phi).cos()), 0.0).sqrt();
                    for h in &mut hs {
                        h.fill(mt, 1.0);
                    }
                }
            }
            _ => {}
        }
    }
    Ok((hs, rows))
}

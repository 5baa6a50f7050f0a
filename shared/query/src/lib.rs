//! Queries: the AST the builder edits (`ast`), SQL text in and out (`parse`, `print`),
//! validation with positions (`check`), histograms, pages and counts around a query (`plan`),
//! physics selections as building blocks (`builder`) and the ADL benchmark set (`adl`).
//!
//! This module also holds the local engine: every table of `store::tables` registered under its
//! name as a lazy Parquet scan in a polars SQL context, so filters and projections are pushed
//! down to the files. The PostgreSQL and Spark engines live in the backend.

pub mod adl;
pub mod builder;
pub mod check;
pub mod diagnostic;
pub mod error;
pub mod fill;
pub mod kernel;
pub mod parse;
pub mod plan;
pub mod print;

use std::io::Write;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::Result;
use alyx_store::{Dataset, Table};

pub use alyx_core::ast::{self, Engine};
pub use ast::{At, Query, Type};
pub use check::{Checked, Schema, check};
pub use diagnostic::{Diagnostic, invalid_query};
pub use error::Error;
pub use fill::HistogramFrame;
pub use parse::parse;
pub use print::{Dialect, to_sql};

/// Parses and validates `text` for `engine`.
pub fn prepare(text: &str, engine: Engine) -> std::result::Result<Checked, Vec<Diagnostic>> {
    let q = parse(text).map_err(|d| vec![d])?;
    check(&q, engine)
}

/// Casts each column of `df` to the ALYX type validation gave it, so that every engine returns
/// the same table (names and types) for the same query.
pub fn conform(df: DataFrame, columns: &[(String, Type)]) -> Result<DataFrame> {
    if df.width() != columns.len() {
        return Err(Error::Invalid(format!(
            "the engine returned {} columns, the query has {}",
            df.width(),
            columns.len()
        )));
    }
    let cols = df
        .columns()
        .iter()
        .zip(columns)
        .map(|(c, (name, t))| {
            let dtype = match t {
                Type::Int => DataType::Int64,
                Type::Float => DataType::Float64,
                Type::Bool => DataType::Boolean,
                Type::Text => DataType::String,
            };
            Ok(c.cast(&dtype)?.with_name(name.as_str().into()))
        })
        .collect::<Result<Vec<Column>>>()?;
    Ok(DataFrame::new_infer_height(cols)?)
}

/// The local engine's plan of `checked` over `dataset`'s Parquet chunks (all when `chunks` is
/// `None`). Refuses a query checked for another engine.
pub fn local_lazy(
    dataset: &Dataset,
    checked: &Checked,
    chunks: Option<&[u32]>,
) -> Result<LazyFrame> {
    if checked.engine() != Engine::Local {
        return Err(Error::Invalid(format!(
            "the query was checked for the {} engine, not the local one",
            checked.engine().name()
        )));
    }
    context_chunks(dataset, chunks)?
        .execute(&checked.engine_sql())
        .map_err(invalid)
}

/// An estimate of how many rows `checked` returns, from its first chunk scaled by the
/// events in all chunks (the count of a small sample; exact for a one-chunk dataset).
pub fn estimate_rows(dataset: &Dataset, checked: &Checked) -> Result<u64> {
    let m = dataset.manifest();
    let Some(first) = m.chunks.first() else {
        return Ok(0);
    };
    let q = plan::count(
        &checked
            .recheck(Engine::Local)
            .map_err(|d| invalid_query(&d))?,
    );
    let df = collect(local_lazy(dataset, &q, Some(&[first.id]))?)?;
    let n = df
        .column("n")?
        .cast(&DataType::Float64)?
        .f64()?
        .get(0)
        .unwrap_or(0.0);
    let scale = m.event_count() as f64 / first.event_count.max(1) as f64;
    Ok((n * scale).round() as u64)
}

/// Runs a checked query (or a plan around one) on the local engine, streaming through the
/// chunks; each result column has the type the check gave it.
pub fn run_local(dataset: &Dataset, checked: &Checked) -> Result<DataFrame> {
    run_local_chunks(dataset, checked, None)
}

/// [`run_local`] over the chunks `chunks` only (all when `None`).
pub fn run_local_chunks(
    dataset: &Dataset,
    checked: &Checked,
    chunks: Option<&[u32]>,
) -> Result<DataFrame> {
    conform(
        collect(local_lazy(dataset, checked, chunks)?)?,
        checked.columns(),
    )
}

/// Collects with polars' streaming engine: chunk by chunk, so results larger than memory's
/// share for the inputs still complete.
fn collect(lf: LazyFrame) -> Result<DataFrame> {
    lf.with_streaming(true).collect().map_err(invalid)
}

/// Why `checked`'s rows do not each belong to one event — what keeps it from running chunk by
/// chunk (an event's rows are all in one chunk): LIMIT/OFFSET, aggregates or grouping across
/// events (GROUP BY without `event_id`), DISTINCT across events. Empty when it splits.
pub fn per_event_problems(checked: &Checked) -> Vec<Diagnostic> {
    use ast::{Expr, Item};
    let q = checked.query();
    let whole = |what: &str| {
        Diagnostic::new(
            format!(
                "a job splits its query by data chunk, so it cannot use {what}: \
                 select per-event rows and histogram them"
            ),
            At::NONE,
        )
    };
    let mut problems = Vec::new();
    let limited = std::iter::once(q)
        .chain(q.with.iter().map(|c| &c.query))
        .any(|q| q.limit.is_some() || q.offset.is_some());
    if limited {
        problems.push(whole("LIMIT or OFFSET"));
    }
    let is_event_id = |e: &Expr| matches!(e, Expr::Column { name, .. } if name == "event_id");
    for s in q
        .body
        .iter()
        .chain(q.with.iter().flat_map(|c| c.query.body.iter()))
    {
        let aggregates = s.having.is_some()
            || s.items.iter().any(|i| match i {
                Item::Expr { expr, .. } => expr.has_aggregate(),
                Item::Wildcard { .. } => false,
            });
        if (aggregates || !s.group_by.is_empty()) && !s.group_by.iter().any(is_event_id) {
            problems.push(whole(
                "aggregates across events (GROUP BY without event_id)",
            ));
        }
        let selects_event_id = s.items.iter().any(|i| match i {
            Item::Expr { expr, .. } => is_event_id(expr),
            Item::Wildcard { .. } => true,
        });
        if s.distinct && !selects_event_id {
            problems.push(whole("DISTINCT across events (without event_id)"));
        }
    }
    problems
}

/// Events per pass of a chunked histogram: bounds the memory of per-event queries whose
/// intermediate rows grow fast (jet triplets), which polars' streaming engine does not bound.
const EVENTS_PER_PASS: u64 = 1_000_000;

/// A histogram computed by the local engine (one row per bin leaves polars). A per-event query
/// over more than `EVENTS_PER_PASS` events runs on groups of chunks, one after the other, and
/// the partial histograms are merged in chunk order.
pub fn histogram_local(
    dataset: &Dataset,
    checked: &Checked,
    value: &str,
    weight: Option<&str>,
    binning: alyx_core::histogram::Binning,
) -> Result<alyx_core::histogram::Histogram> {
    if weight.is_none() {
        if let Some(spec) =
            kernel::recognize(checked.query()).filter(|s| kernel::has_column(s, value))
        {
            let (mut hs, _) =
                kernel::histograms(dataset, &spec, None, &[(value.to_owned(), binning)])?;
            return hs
                .pop()
                .ok_or_else(|| Error::Invalid("the kernel filled no histogram".into()));
        }
    }
    let q = plan::histogram(checked, value, weight, &binning).map_err(|d| invalid_query(&[d]))?;
    let mut total = alyx_core::histogram::Histogram::new(binning.clone());
    in_passes(dataset, checked, &q, |df| {
        total.merge(&plan::histogram_from_rows(df, binning.clone())?)?;
        Ok(())
    })?;
    Ok(total)
}

/// The 2-D histogram of output columns `x` against `y` of a query, computed by the local
/// engine in passes as [`histogram_local`] is (one row per filled cell leaves polars).
pub fn histogram2_local(
    dataset: &Dataset,
    checked: &Checked,
    (x, bx): (&str, alyx_core::histogram::Binning),
    (y, by): (&str, alyx_core::histogram::Binning),
) -> Result<alyx_core::histogram::Histogram2> {
    let q = plan::histogram2(checked, (x, &bx), (y, &by)).map_err(|d| invalid_query(&[d]))?;
    let mut total = alyx_core::histogram::Histogram2::new(bx.clone(), by.clone())?;
    in_passes(dataset, checked, &q, |df| {
        total.merge(&plan::histogram2_from_rows(df, bx.clone(), by.clone())?)?;
        Ok(())
    })?;
    Ok(total)
}

/// Runs `q` (a reduction wrapped around `checked`) on the whole dataset, or, for a per-event
/// query over more than `EVENTS_PER_PASS` events, on groups of chunks one after the other,
/// handing each result to `take` in chunk order.
fn in_passes(
    dataset: &Dataset,
    checked: &Checked,
    q: &Checked,
    mut take: impl FnMut(&DataFrame) -> Result<()>,
) -> Result<()> {
    let chunks = &dataset.manifest().chunks;
    let events: u64 = chunks.iter().map(|c| c.event_count).sum();
    if events <= EVENTS_PER_PASS || !per_event_problems(checked).is_empty() {
        return take(&run_local(dataset, q)?);
    }
    let mut group: Vec<u32> = Vec::new();
    let mut in_group = 0;
    for (i, c) in chunks.iter().enumerate() {
        group.push(c.id);
        in_group += c.event_count;
        if in_group >= EVENTS_PER_PASS || i + 1 == chunks.len() {
            take(&run_local_chunks(dataset, q, Some(&group))?)?;
            group.clear();
            in_group = 0;
        }
    }
    Ok(())
}

/// Histograms of several unweighted columns of one query (the ADL plots): the per-event kernel
/// fills them all in one pass when it runs the query, else one engine histogram each.
pub fn histograms_local(
    dataset: &Dataset,
    checked: &Checked,
    plots: &[(String, alyx_core::histogram::Binning)],
) -> Result<Vec<alyx_core::histogram::Histogram>> {
    if let Some(spec) = kernel::recognize(checked.query())
        .filter(|s| plots.iter().all(|(c, _)| kernel::has_column(s, c)))
    {
        return Ok(kernel::histograms(dataset, &spec, None, plots)?.0);
    }
    plots
        .iter()
        .map(|(c, b)| histogram_local(dataset, checked, c, None, b.clone()))
        .collect()
}

/// SQL for a two-body resonance search: the invariant mass of track pairs (`pid_a`, `pid_b`,
/// with their PDG masses) that share a production vertex at least `min_radius_cm` from the beam
/// line (a perfect vertex finder; 0 for prompt decays), summarised in `lo..hi` GeV as `n`,
/// `mean` and `sigma`.
pub fn pair_mass_summary_sql(
    pid_a: i32,
    pid_b: i32,
    min_radius_cm: f64,
    (lo, hi): (f64, f64),
) -> String {
    format!(
        "WITH p AS ({}) SELECT COUNT(*) AS n, AVG(m) AS mean, STDDEV(m) AS sigma FROM p WHERE m BETWEEN {lo} AND {hi}",
        pair_mass_sql(pid_a, pid_b, min_radius_cm)
    )
}

/// The invariant mass `m` of every pair of tracks of species `pid_a` and `pid_b` from one
/// vertex at least `min_radius_cm` from the beam (K⁰s → π⁺π⁻ with 211, −211 and 0.1 cm).
pub fn pair_mass_sql(pid_a: i32, pid_b: i32, min_radius_cm: f64) -> String {
    let (ma2, mb2) = (
        alyx_core::model::pid_mass(pid_a).powi(2),
        alyx_core::model::pid_mass(pid_b).powi(2),
    );
    let r2 = min_radius_cm * min_radius_cm;
    format!(
        "SELECT SQRT(POW(SQRT(a.px*a.px + a.py*a.py + a.pz*a.pz + {ma2}) + SQRT(b.px*b.px + b.py*b.py + b.pz*b.pz + {mb2}), 2) \
           - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
         FROM tracks a JOIN tracks b ON a.event_id = b.event_id AND a.vx = b.vx AND a.vy = b.vy AND a.vz = b.vz \
         WHERE a.pid = {pid_a} AND b.pid = {pid_b} AND a.track_id <> b.track_id AND a.vx * a.vx + a.vy * a.vy >= {r2}"
    )
}

/// The Armenteros–Podolanski variables of every V0 candidate (an opposite-charge track pair
/// from one vertex at least `min_radius_cm` from the beam, the positive track as `a`): `alpha`,
/// the asymmetry of the daughters' longitudinal momenta along the pair's, and `qt`, the
/// daughters' momentum transverse to it (GeV). K⁰s lie on an arc centred at α = 0 reaching
/// qT = 0.206 GeV, Λ (Λ̄) on one centred at α ≈ +0.69 (−0.69) reaching 0.101 GeV: the plot
/// separates them without particle identification.
pub fn armenteros_sql(min_radius_cm: f64) -> String {
    let r2 = min_radius_cm * min_radius_cm;
    let sum = |c: &str| format!("(a.{c} + b.{c})");
    let dot = |t: &str| {
        ["px", "py", "pz"]
            .map(|c| format!("{t}.{c} * {}", sum(c)))
            .join(" + ")
    };
    let p2 = ["px", "py", "pz"]
        .map(|c| format!("POW({}, 2)", sum(c)))
        .join(" + ");
    let (ap, bp) = (dot("a"), dot("b"));
    format!(
        "SELECT (({ap}) - ({bp})) / ({p2}) AS alpha, \
           SQRT(GREATEST(a.px * a.px + a.py * a.py + a.pz * a.pz - POW({ap}, 2) / ({p2}), 0.0)) AS qt \
         FROM tracks a JOIN tracks b ON a.event_id = b.event_id AND a.vx = b.vx AND a.vy = b.vy AND a.vz = b.vz \
         WHERE a.charge > 0 AND b.charge < 0 AND a.vx * a.vx + a.vy * a.vy >= {r2}"
    )
}

/// How results are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "table" => Some(Self::Table),
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// A SQL context over the chunks `chunks` of `dataset` (all when `None`).
fn context_chunks(dataset: &Dataset, chunks: Option<&[u32]>) -> Result<SQLContext> {
    let ctx = SQLContext::new();
    for table in Table::ALL {
        ctx.register(table.name(), dataset.scan_chunks(table, chunks)?);
    }
    Ok(ctx)
}

fn invalid(e: PolarsError) -> Error {
    Error::Invalid(format!("invalid query: {}", one_line(&e.to_string())))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes `df` in `format`. `Table` shows at most `max_rows` rows.
pub fn write(
    df: &mut DataFrame,
    format: OutputFormat,
    max_rows: usize,
    out: &mut dyn Write,
) -> Result<()> {
    let io = |e: std::io::Error| Error::Invalid(format!("cannot write output: {e}"));
    match format {
        OutputFormat::Table => write_table(df, max_rows, out).map_err(io)?,
        OutputFormat::Csv => CsvWriter::new(out).finish(df)?,
        OutputFormat::Json => {
            refuse_infinities_in_json(df)?;
            JsonWriter::new(out)
                .with_json_format(JsonFormat::Json)
                .finish(df)?
        }
        OutputFormat::Parquet => {
            ParquetWriter::new(out).finish(df)?;
        }
    }
    Ok(())
}

/// JSON has no NaN or infinity: NaN is written as null (ALYX's "not measured", as in the
/// store), but an infinity would turn into a null that means something else, so a result
/// holding one is refused rather than written wrong.
fn refuse_infinities_in_json(df: &DataFrame) -> Result<()> {
    for c in df.columns() {
        let infinite = match c.dtype() {
            DataType::Float64 => c.f64()?.iter().flatten().any(f64::is_infinite),
            DataType::Float32 => c.f32()?.iter().flatten().any(f32::is_infinite),
            _ => false,
        };
        if infinite {
            return Err(Error::Invalid(format!(
                "column `{}` holds infinite values, which JSON cannot write; use --format csv or parquet",
                c.name()
            )));
        }
    }
    Ok(())
}

fn cell(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => "null".into(),
        AnyValue::Float64(x) => alyx_core::number::significant(x),
        AnyValue::Float32(x) => alyx_core::number::significant(f64::from(x)),
        AnyValue::String(s) => s.to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn write_table(df: &DataFrame, max_rows: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let columns = df.columns();
    let shown = df.height().min(max_rows);
    let mut grid: Vec<Vec<String>> = vec![columns.iter().map(|c| c.name().to_string()).collect()];
    for row in 0..shown {
        grid.push(
            columns
                .iter()
                .map(|c| c.get(row).map(cell).unwrap_or_default())
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let numeric: Vec<bool> = columns
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    for (r, row) in grid.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if numeric[i] && r > 0 {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
        if r == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            writeln!(out, "{}", rule.join("  "))?;
        }
    }
    let more = df.height() - shown;
    if more > 0 {
        writeln!(
            out,
            "… {more} more rows ({} in all); use --format csv or --limit to see them",
            df.height()
        )?;
    } else {
        writeln!(out, "({} rows)", df.height())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! SQL over a dataset's tables, executed by polars: every table of `store::tables` is registered
//! under its name as a lazy Parquet scan, so filters and projections are pushed down to the
//! files. (The full query engine — builder, validation, other engines — is built on this.)

use std::io::Write;

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};
use crate::store::{Dataset, Table};

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
    let (ma2, mb2) = (
        crate::model::pid_mass(pid_a).powi(2),
        crate::model::pid_mass(pid_b).powi(2),
    );
    let r2 = min_radius_cm * min_radius_cm;
    format!(
        "WITH p AS (SELECT SQRT(POW(SQRT(a.px*a.px + a.py*a.py + a.pz*a.pz + {ma2}) + SQRT(b.px*b.px + b.py*b.py + b.pz*b.pz + {mb2}), 2) \
           - POW(a.px + b.px, 2) - POW(a.py + b.py, 2) - POW(a.pz + b.pz, 2)) AS m \
         FROM tracks a JOIN tracks b ON a.event_id = b.event_id AND a.vx = b.vx AND a.vy = b.vy AND a.vz = b.vz \
         WHERE a.pid = {pid_a} AND b.pid = {pid_b} AND a.track_id <> b.track_id AND a.vx * a.vx + a.vy * a.vy >= {r2}) \
         SELECT COUNT(*) AS n, AVG(m) AS mean, STDDEV(m) AS sigma FROM p WHERE m BETWEEN {lo} AND {hi}"
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

/// A SQL context with every table of `dataset` registered.
pub fn context(dataset: &Dataset) -> Result<SQLContext> {
    let ctx = SQLContext::new();
    for table in Table::ALL {
        ctx.register(table.name(), dataset.scan(table)?);
    }
    Ok(ctx)
}

fn invalid(e: PolarsError) -> Error {
    Error::Invalid(format!("invalid query: {}", one_line(&e.to_string())))
}

/// Plans `query` without running it (for histograms and paging on top of it).
pub fn lazy(dataset: &Dataset, query: &str) -> Result<LazyFrame> {
    context(dataset)?.execute(query).map_err(invalid)
}

/// Runs `query` and collects the result.
pub fn sql(dataset: &Dataset, query: &str) -> Result<DataFrame> {
    lazy(dataset, query)?.collect().map_err(invalid)
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
        OutputFormat::Json => JsonWriter::new(out)
            .with_json_format(JsonFormat::Json)
            .finish(df)?,
        OutputFormat::Parquet => {
            ParquetWriter::new(out).finish(df)?;
        }
    }
    Ok(())
}

fn cell(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => "null".into(),
        AnyValue::Float64(x) => float(x),
        AnyValue::Float32(x) => float(f64::from(x)),
        AnyValue::String(s) => s.to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Six significant digits, like a physicist's printout; plain for integers-valued floats.
fn float(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x != 0.0 && (x.abs() >= 1e7 || x.abs() < 1e-4) {
        return format!("{x:.5e}");
    }
    let digits = (5 - x.abs().log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
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

//! `alyxctl query`: SQL, a query file or an ADL query over a local dataset (the local engine)
//! or in alyxd (`--backend`: local, postgres or spark), as rows or an engine histogram.

use std::io::Write;
use std::path::PathBuf;

use alyx_client::{Client, QuerySource, QuerySpec};
use alyx_core::histogram::{Binning, Histogram};
use alyx_query::{self as query, Engine, HistogramFrame, OutputFormat};
use alyx_store::Dataset;
use anyhow::{Context, Result, bail};
use clap::Args;
use polars::prelude::*;

use crate::cli::{EngineArg, RowFormat, runtime};

#[derive(Args)]
pub struct QueryArgs {
    /// A data directory (the local engine), or none with --backend.
    pub dir: Option<PathBuf>,
    /// ALYX SQL.
    #[arg(long, conflicts_with_all = ["query_file", "adl"])]
    pub sql: Option<String>,
    /// A query as JSON: a builder selection or a query AST.
    #[arg(long, conflicts_with = "adl")]
    pub query_file: Option<PathBuf>,
    /// One of the ADL benchmark queries, 1–8.
    #[arg(long)]
    pub adl: Option<u8>,
    /// local (polars on the Parquet chunks), postgres (the catalogue) or spark.
    #[arg(long, value_enum, default_value_t = EngineArg::Local)]
    pub engine: EngineArg,
    /// alyxd's gRPC URL: run the query there (needed for postgres and spark).
    #[arg(long, env = "ALYX_BACKEND")]
    pub backend: Option<String>,
    #[arg(long, env = "ALYX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the SQL the engine runs (and its plan) instead of running it.
    #[arg(long)]
    pub explain: bool,
    /// With --backend: scan only the Parquet chunks whose catalogue events match this
    /// condition (e.g. "run = 545100 AND n_muons >= 2").
    #[arg(long)]
    pub catalogue_filter: Option<String>,
    #[arg(long, value_enum, default_value_t = RowFormat::Table)]
    pub format: RowFormat,
    /// Write to a file instead of stdout (required for parquet).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Rows shown in table format.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Histogram a column of the result instead of listing rows: COL:BINS:LO:HI, computed
    /// inside the engine (with --weight COL for weighted entries).
    #[arg(long)]
    pub histogram: Option<String>,
    #[arg(long)]
    pub weight: Option<String>,
    #[arg(long)]
    pub dataset: Option<String>,
    #[command(flatten)]
    pub fit: crate::fit::FitArgs,
}

pub fn query(args: QueryArgs) -> Result<()> {
    let QueryArgs {
        dir,
        sql,
        query_file,
        adl,
        engine,
        backend,
        token,
        explain,
        catalogue_filter,
        format,
        out,
        limit,
        histogram,
        weight,
        dataset,
        fit,
    } = args;
    let format = OutputFormat::from(format);
    let engine = query::Engine::from(engine);
    let (text, ast) = query_source(sql, query_file, adl)?;
    let histogram = histogram
        .map(|spec| -> Result<(String, Binning)> {
            let (column, binning) = spec
                .split_once(':')
                .with_context(|| format!("--histogram `{spec}`: expected COL:BINS:LO:HI"))?;
            Ok((column.to_owned(), Binning::parse(binning)?))
        })
        .transpose()?;
    let (mut df, hist) = match backend {
        Some(url) => {
            let dataset = dataset.context("--backend needs --dataset NAME")?;
            let request = Remote {
                url,
                token,
                dataset,
                engine,
                text,
                ast,
                weight,
                catalogue_filter,
            };
            runtime()?.block_on(run_remote(request, histogram, explain))?
        }
        None => {
            if catalogue_filter.is_some() {
                bail!("--catalogue-filter needs the catalogue: add --backend URL");
            }
            if engine != query::Engine::Local {
                bail!(
                    "the {} engine runs in alyxd: add --backend URL",
                    engine.name()
                );
            }
            let dir = dir.context("give a data directory, or --backend URL")?;
            let q = match (text, ast) {
                (Some(t), _) => query::parse(&t).map_err(|d| query::invalid_query(&[d]))?,
                (None, Some(q)) => q,
                (None, None) => bail!("give --sql, --query-file or --adl"),
            };
            let checked = query::check(&q, engine).map_err(|ds| query::invalid_query(&ds))?;
            let dataset = Dataset::resolve(&dir, dataset.as_deref())?;
            if explain {
                let lf = query::local_lazy(&dataset, &checked, None)?;
                println!("{}", checked.engine_sql());
                println!("{}", lf.describe_optimized_plan()?);
                return Ok(());
            }
            match histogram {
                None => (query::run_local(&dataset, &checked)?, None),
                Some((column, binning)) => {
                    let h = query::histogram_local(
                        &dataset,
                        &checked,
                        &column,
                        weight.as_deref(),
                        binning,
                    )?;
                    report_histogram(&column, &h);
                    (h.to_frame()?, Some((column, h)))
                }
            }
        }
    };
    if let Some((column, h)) = &hist {
        let mut fit = fit;
        if fit.plot_label.is_empty() {
            fit.plot_label.clone_from(column);
        }
        if let Some(result) = crate::fit::fit(&fit, h)? {
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(
                    std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            return crate::fit::write(column, &result, format, &mut sink);
        }
    }
    match out {
        Some(path) => {
            let mut file =
                std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
            query::write(&mut df, format, limit, &mut file)?;
            eprintln!("wrote {} rows to {}", df.height(), path.display());
        }
        None if format == OutputFormat::Parquet => {
            bail!("--format parquet needs --out FILE")
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let written =
                query::write(&mut df, format, limit, &mut stdout).map_err(anyhow::Error::from);
            if let Err(e) = written.and_then(|()| Ok(stdout.flush()?)) {
                if e.to_string().contains("Broken pipe") {
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The query the user gave: SQL text, or an AST from a query file (a builder selection or a
/// query) or the ADL set.
pub fn query_source(
    sql: Option<String>,
    file: Option<PathBuf>,
    adl: Option<u8>,
) -> Result<(Option<String>, Option<query::Query>)> {
    if let Some(n) = adl {
        let (_, spec, _) =
            query::adl::query(n).with_context(|| format!("--adl {n}: the ADL queries are 1–8"))?;
        let q = spec.query().map_err(|d| anyhow::anyhow!("{d}"))?;
        return Ok((None, Some(q)));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        if let Ok(spec) = serde_json::from_str::<query::builder::Spec>(&text) {
            let q = spec
                .query()
                .map_err(|d| anyhow::anyhow!("{}: {d}", path.display()))?;
            return Ok((None, Some(q)));
        }
        let q: query::Query = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: neither a builder selection nor a query AST",
                path.display()
            )
        })?;
        return Ok((None, Some(q)));
    }
    Ok((sql, None))
}

pub fn report_histogram(column: &str, h: &Histogram) {
    eprintln!(
        "{column}: {} entries in range (Σw {:.6}), underflow {}, overflow {}, missing {}",
        h.entries.iter().sum::<u64>(),
        h.integral(),
        h.underflow,
        h.overflow,
        h.missing
    );
}

/// A query to run in alyxd (`alyxctl query --backend`): pages come back as Arrow.
pub struct Remote {
    pub url: String,
    pub token: Option<String>,
    pub dataset: String,
    pub engine: Engine,
    pub text: Option<String>,
    pub ast: Option<query::Query>,
    pub weight: Option<String>,
    pub catalogue_filter: Option<String>,
}

/// The rows, or the histogram and its column.
type Answer = (DataFrame, Option<(String, Histogram)>);

async fn run_remote(
    r: Remote,
    histogram: Option<(String, Binning)>,
    explain: bool,
) -> Result<Answer> {
    let token = r
        .token
        .clone()
        .context("--backend needs --token (or ALYX_TOKEN)")?;
    let client = Client::connect(&r.url, &token).await?;
    let query = match (r.text, r.ast) {
        (Some(t), _) => QuerySource::Sql(t),
        (None, Some(q)) => QuerySource::Ast(q),
        (None, None) => bail!("give --sql, --query-file or --adl"),
    };
    let spec = QuerySpec {
        dataset: r.dataset,
        engine: r.engine,
        query,
        catalogue_filter: r.catalogue_filter,
    };
    if explain {
        let e = client.explain(&spec).await?;
        println!("{}\n\n{}\n\n{}", e.sql, e.engine_sql, e.plan);
        return Ok((DataFrame::empty(), None));
    }
    if let Some((column, binning)) = histogram {
        let hist = client
            .histogram(&spec, &column, r.weight.as_deref(), binning)
            .await?;
        report_histogram(&column, &hist);
        return Ok((hist.to_frame()?, Some((column, hist))));
    }
    let mut pages = client.execute(&spec, 0, 0, None).await?;
    let mut all: Option<DataFrame> = None;
    while let Some(page) = pages.next().await? {
        if let Some(n) = page.estimated_total {
            eprintln!("≈ {n} rows");
        }
        match &mut all {
            None => all = Some(page.rows),
            Some(a) => {
                a.vstack_mut(&page.rows)?;
            }
        }
        if let Some(n) = page.exact_total {
            eprintln!("{n} rows");
        }
    }
    Ok((all.unwrap_or_default(), None))
}

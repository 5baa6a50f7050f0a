//! `alyxctl query … --histogram COL:BINS:LO:HI --fit MODEL`: a fit of the histogram the query
//! made, printed as a parameter table or as JSON.

use std::io::Write;

use alyx_core::histogram::Histogram;
use alyx_fit::{FitOptions, FitResult, Method, Model};
use alyx_query::OutputFormat;
use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cli::FitMethodArg;

#[derive(Args, Default)]
pub struct FitArgs {
    /// Fit the histogram: a sum of shapes (gauss, bw, rbw, voigt or bw*gauss, cb, dcb, exp,
    /// cheb0…cheb5, expr(…)), e.g. gauss+exp, voigt+cheb2, cb+exp, bw*gauss+exp.
    #[arg(long, requires = "histogram", value_name = "MODEL")]
    pub fit: Option<String>,
    /// The fit range (default: the histogram's).
    #[arg(long, value_name = "LO:HI", requires = "fit")]
    pub range: Option<String>,
    /// The cost: extended (binned Poisson likelihood, yields free), likelihood (shapes and
    /// fractions), neyman or pearson (χ²).
    #[arg(long, value_enum, default_value_t = FitMethodArg::Extended, requires = "fit")]
    pub fit_method: FitMethodArg,
    /// Asymmetric errors by profiling the likelihood (MINOS).
    #[arg(long, requires = "fit")]
    pub minos: bool,
    /// Hold a parameter at a value: NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE", requires = "fit")]
    pub fix: Vec<String>,
    /// Start a parameter at a value instead of the automatic guess: NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE", requires = "fit")]
    pub start: Vec<String>,
    /// Also draw the histogram and the fit to a vector figure: FILE.svg or FILE.pdf.
    #[arg(long, value_name = "FILE", requires = "fit")]
    pub plot: Option<std::path::PathBuf>,
    /// The figure's x axis label (default: the histogrammed column).
    #[arg(long, default_value = "", requires = "plot")]
    pub plot_label: String,
}

fn assignment(text: &str, flag: &str) -> Result<(String, f64)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--{flag} `{text}`: expected NAME=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .with_context(|| format!("--{flag} `{text}`: `{value}` is not a number"))?;
    Ok((name.trim().to_owned(), value))
}

/// Fits `h` as `args` say, when they ask for a fit.
pub fn fit(args: &FitArgs, h: &Histogram) -> Result<Option<FitResult>> {
    let Some(spec) = &args.fit else {
        return Ok(None);
    };
    let model = Model::parse(spec)?;
    let method = Method::from(args.fit_method);
    let options = FitOptions {
        method,
        range: args
            .range
            .as_deref()
            .map(alyx_fit::parse_range)
            .transpose()?,
        minos: args.minos,
        fix: args
            .fix
            .iter()
            .map(|f| assignment(f, "fix"))
            .collect::<Result<_>>()?,
        start: args
            .start
            .iter()
            .map(|f| assignment(f, "start"))
            .collect::<Result<_>>()?,
        limits: Vec::new(),
    };
    let data = alyx_fit::Histogram::from_core(h)?;
    let result = alyx_fit::fit(&data, &model, &options)?;
    if let Some(path) = &args.plot {
        let (edges, errors) = (h.binning.edges(), h.errors());
        let figure = alyx_fit::figure::Figure {
            x_label: &args.plot_label,
            edges: &edges,
            counts: &h.sum_w,
            errors: &errors,
            fit: Some((&model, &result)),
        };
        let bytes = figure.for_path(path).context("--plot")?;
        std::fs::write(path, bytes).with_context(|| format!("{}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Some(result))
}

/// The fit as a table (parameters, quality, correlations) or as JSON.
pub fn write(column: &str, r: &FitResult, format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(r)?;
            value["column"] = column.into();
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        OutputFormat::Table => write_table(column, r, out)?,
        other => bail!("a fit prints as table or json, not {other:?}"),
    }
    Ok(())
}

fn write_table(column: &str, r: &FitResult, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "fit of {column} in {}:{} to {} ({}, {} bins): {}",
        r.range.0,
        r.range.1,
        r.model,
        r.method.name(),
        r.bins.len(),
        match &r.message {
            None => "converged".to_owned(),
            Some(m) => format!("NOT CONVERGED: {m}"),
        }
    )?;
    let width = r
        .params
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(9);
    writeln!(
        out,
        "  {:width$}  {:>14}  {:>12}  minos",
        "parameter", "value", "error"
    )?;
    for p in &r.params {
        let minos = match p.minos {
            Some((lo, hi)) => format!(
                "{} {}",
                lo.map_or("(limit)".into(), |v| format!("{}", sig(v))),
                hi.map_or("(limit)".into(), |v| format!("+{}", sig(v)))
            ),
            None if p.fixed => "fixed".into(),
            None => String::new(),
        };
        writeln!(
            out,
            "  {:width$}  {:>14}  {:>12}  {minos}",
            p.name,
            sig(p.value),
            if p.fixed {
                "-".into()
            } else {
                format!("±{}", sig(p.error))
            },
        )?;
    }
    writeln!(
        out,
        "  chi2/ndf = {:.2}/{} (p = {:.3}), EDM {:.1e}, {} calls",
        r.chi2, r.ndf, r.p_value, r.edm, r.calls
    )?;
    if r.free.len() > 1 {
        writeln!(out, "correlations:")?;
        write!(out, "  {:width$}", "")?;
        for name in &r.free {
            write!(out, " {:>8.8}", name)?;
        }
        writeln!(out)?;
        for (name, row) in r.free.iter().zip(&r.correlation) {
            write!(out, "  {:width$}", name)?;
            for c in row {
                write!(out, " {c:>8.3}")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A number with six significant digits, without trailing noise.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (5 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{v:.digits$}")
}

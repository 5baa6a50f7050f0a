//! Running notebook cells: a query cell's first rows, a plot cell's histograms (one per
//! `-- histogram COL:BINS:LO:HI` line, one 2-D histogram per
//! `-- histogram2d X:BINS:LO:HI Y:BINS:LO:HI` line) and fits (`-- fit` lines), and the
//! analysis a plot cell becomes when it is sent to the cluster as a job.

use crate::error::{Error, Result};
use crate::jobs::{Analysis, HistogramSpec};
use alyx_core::histogram::Binning;
use alyx_query::{self as query, Engine, Query, plan};
use alyx_store::Dataset;

use super::{Cell, CellFit, CellKind, CellMap, CellOutput};
use alyx_core::histogram::Histogram;

/// Rows a query cell keeps as its output.
pub const OUTPUT_ROWS: usize = 50;

/// A cell's query: ALYX SQL, or a builder selection as JSON (`{"collection": …}`).
pub fn cell_query(source: &str) -> Result<Query> {
    let text = source.trim();
    let json: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    let json = json.join("\n");
    if json.trim_start().starts_with('{') {
        let spec: query::builder::Spec = serde_json::from_str(&json)
            .map_err(|e| Error::Invalid(format!("not a builder selection: {e}")))?;
        return spec.query().map_err(|d| query::invalid_query(&[d]).into());
    }
    query::parse(text).map_err(|d| query::invalid_query(&[d]).into())
}

/// The histograms a plot cell asks for: its `-- histogram COL:BINS:LO:HI` (or
/// `COL:E1,E2,…`) lines. A plot cell names at least one histogram, of one or two dimensions.
pub fn plot_specs(source: &str) -> Result<Vec<HistogramSpec>> {
    let mut specs = Vec::new();
    for line in source.lines() {
        let Some(spec) = line.trim().strip_prefix("-- histogram ") else {
            continue;
        };
        let (column, binning) = column_binning(spec)?;
        specs.push(HistogramSpec {
            column,
            weight: None,
            binning,
        });
    }
    if specs.is_empty() && map_specs(source)?.is_empty() {
        return Err(Error::Invalid(
            "a plot cell names its histograms: `-- histogram COL:BINS:LO:HI` or `-- histogram2d X:BINS:LO:HI Y:BINS:LO:HI`".into(),
        ));
    }
    Ok(specs)
}

fn column_binning(spec: &str) -> Result<(String, Binning)> {
    let (column, binning) = spec
        .trim()
        .split_once(':')
        .ok_or_else(|| Error::Invalid(format!("`{spec}`: a histogram is COL:BINS:LO:HI")))?;
    Ok((column.trim().to_owned(), Binning::parse(binning)?))
}

/// A 2-D histogram a plot cell asks for: `-- histogram2d X:BINS:LO:HI Y:BINS:LO:HI`.
#[derive(Clone, Debug, PartialEq)]
pub struct MapSpec {
    pub x: (String, Binning),
    pub y: (String, Binning),
}

/// The 2-D histograms a plot cell asks for, each checked (two binnings of at most
/// [`alyx_core::histogram::MAX_BINS`] cells together).
pub fn map_specs(source: &str) -> Result<Vec<MapSpec>> {
    let mut maps = Vec::new();
    for line in source.lines() {
        let Some(spec) = line.trim().strip_prefix("-- histogram2d ") else {
            continue;
        };
        let [x, y] = spec.split_whitespace().collect::<Vec<_>>()[..] else {
            return Err(Error::Invalid(format!(
                "`-- histogram2d {spec}`: a 2-D histogram is `-- histogram2d X:BINS:LO:HI Y:BINS:LO:HI`"
            )));
        };
        let (x, y) = (column_binning(x)?, column_binning(y)?);
        alyx_core::histogram::Histogram2::new(x.1.clone(), y.1.clone())?;
        maps.push(MapSpec { x, y });
    }
    Ok(maps)
}

/// A fit a plot cell asks for: `-- fit MODEL on COL [in LO:HI] [extended|likelihood|neyman|pearson]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FitLine {
    pub model: String,
    pub column: String,
    pub options: alyx_fit::FitOptions,
}

/// The fits a plot cell asks for, each checked (its model parses, its column is histogrammed).
pub fn fit_specs(source: &str) -> Result<Vec<FitLine>> {
    let columns: Vec<String> = plot_specs(source)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.column)
        .collect();
    let mut fits = Vec::new();
    for line in source.lines() {
        let Some(spec) = line.trim().strip_prefix("-- fit ") else {
            continue;
        };
        let usage = || {
            Error::Invalid(format!(
                "`-- fit {spec}`: a fit is `-- fit MODEL on COL [in LO:HI] [extended|likelihood|neyman|pearson]`"
            ))
        };
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (model, rest) = match words.iter().position(|w| *w == "on") {
            Some(i) if i > 0 => (words[..i].join(""), &words[i + 1..]),
            _ => return Err(usage()),
        };
        let (column, rest) = rest.split_first().ok_or_else(usage)?;
        if !columns.iter().any(|c| c == column) {
            return Err(Error::Invalid(format!(
                "`-- fit {spec}`: no `-- histogram {column}:…` line in this cell"
            )));
        }
        alyx_fit::Model::parse(&model)
            .map_err(|e| Error::Invalid(format!("`-- fit {spec}`: {e}")))?;
        let mut options = alyx_fit::FitOptions::default();
        let mut rest = rest.iter();
        while let Some(word) = rest.next() {
            if *word == "in" {
                let range = rest.next().ok_or_else(usage)?;
                options.range = Some(
                    alyx_fit::parse_range(range)
                        .map_err(|e| Error::Invalid(format!("`-- fit {spec}`: {e}")))?,
                );
            } else if let Some((_, m)) = alyx_fit::Method::ALL.iter().find(|(n, _)| n == word) {
                options.method = *m;
            } else {
                return Err(usage());
            }
        }
        fits.push(FitLine {
            model,
            column: (*column).to_owned(),
            options,
        });
    }
    Ok(fits)
}

/// A plot cell's output from its histograms and 2-D histograms: with the fits its `-- fit`
/// lines ask for, when it has any (a fit that fails says why in its place).
pub fn plot_output(
    source: &str,
    histograms: Vec<(String, Histogram)>,
    maps: Vec<CellMap>,
) -> CellOutput {
    let lines = match fit_specs(source) {
        Ok(lines) if lines.is_empty() && maps.is_empty() => {
            return CellOutput::Histograms(histograms);
        }
        Ok(lines) => lines,
        Err(e) => return CellOutput::Error(e.to_string()),
    };
    let fits = lines
        .into_iter()
        .map(|line| {
            let result = histograms
                .iter()
                .find(|(c, _)| *c == line.column)
                .ok_or_else(|| format!("no histogram of {}", line.column))
                .and_then(|(_, h)| {
                    let data = alyx_fit::Histogram::from_core(h).map_err(|e| e.to_string())?;
                    let model = alyx_fit::Model::parse(&line.model).map_err(|e| e.to_string())?;
                    alyx_fit::fit(&data, &model, &line.options).map_err(|e| e.to_string())
                });
            CellFit {
                column: line.column,
                model: line.model,
                result,
            }
        })
        .collect();
    CellOutput::Plots {
        histograms,
        maps,
        fits,
    }
}

/// Whether a plot cell has 2-D histograms: those fill on the local engine only (a job's
/// analysis carries 1-D histograms), so such a cell runs locally when a dataset is open.
pub fn has_maps(source: &str) -> bool {
    source
        .lines()
        .any(|l| l.trim().starts_with("-- histogram2d "))
}

/// A plot cell as an analysis job.
pub fn analysis(cell: &Cell) -> Result<Analysis> {
    Ok(Analysis {
        query: cell_query(&cell.source)?,
        histograms: plot_specs(&cell.source)?,
    })
}

/// The problems with a cell's text, for inline messages (none for markdown and event cells).
pub fn diagnostics(cell: &Cell) -> Vec<query::Diagnostic> {
    if !matches!(cell.kind, CellKind::Query | CellKind::Plot) {
        return Vec::new();
    }
    let text = cell.source.trim();
    let q = if text.lines().any(|l| l.trim_start().starts_with('{')) {
        match cell_query(text) {
            Ok(q) => q,
            Err(e) => return vec![query::Diagnostic::new(e.to_string(), query::At::NONE)],
        }
    } else {
        match query::parse(text) {
            Ok(q) => q,
            Err(d) => return vec![d],
        }
    };
    let mut ds = query::check(&q, Engine::Local).err().unwrap_or_default();
    if cell.kind == CellKind::Plot {
        if let Err(e) = plot_specs(text).and_then(|_| fit_specs(text)) {
            ds.push(query::Diagnostic::new(e.to_string(), query::At::NONE));
        }
    }
    ds
}

/// The work a cell asks for, in events × query size: what decides whether it goes to the
/// cluster.
pub fn work(ds: &Dataset, cell: &Cell) -> u64 {
    let events = ds.manifest().event_count();
    match cell.kind {
        CellKind::Plot | CellKind::Query => cell_query(&cell.source)
            .map(|q| {
                events
                    * Analysis {
                        query: q,
                        histograms: Vec::new(),
                    }
                    .complexity() as u64
            })
            .unwrap_or(0),
        _ => 0,
    }
}

/// Runs a query or plot cell on the local engine.
pub fn run_cell(ds: &Dataset, cell: &Cell) -> CellOutput {
    match try_run(ds, cell) {
        Ok(o) => o,
        Err(e) => CellOutput::Error(e.to_string()),
    }
}

fn try_run(ds: &Dataset, cell: &Cell) -> Result<CellOutput> {
    let q = cell_query(&cell.source)?;
    let checked = query::check(&q, Engine::Local).map_err(|d| query::invalid_query(&d))?;
    match cell.kind {
        CellKind::Plot => {
            let specs = plot_specs(&cell.source)?;
            let plots: Vec<(String, Binning)> = specs
                .iter()
                .map(|s| (s.column.clone(), s.binning.clone()))
                .collect();
            let hs = query::histograms_local(ds, &checked, &plots)?;
            let maps = map_specs(&cell.source)?
                .into_iter()
                .map(|m| {
                    let histogram =
                        query::histogram2_local(ds, &checked, (&m.x.0, m.x.1), (&m.y.0, m.y.1))?;
                    Ok(CellMap {
                        x: m.x.0,
                        y: m.y.0,
                        histogram,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(plot_output(
                &cell.source,
                plots.into_iter().map(|(c, _)| c).zip(hs).collect(),
                maps,
            ))
        }
        CellKind::Query => {
            let page = plan::page(&checked, &plan::Cursor::default(), OUTPUT_ROWS as u64)
                .map_err(|d| query::invalid_query(&[d]))?;
            let df = query::run_local(ds, &page)?;
            let count = query::run_local(ds, &plan::count(&checked))?;
            let columns: Vec<String> = checked.columns().iter().map(|(n, _)| n.clone()).collect();
            let mut rows = Vec::with_capacity(df.height());
            for i in 0..df.height() {
                let row = df.columns().iter().map(|c| {
                    c.get(i).map_or_else(
                        |_| String::new(),
                        |v| v.to_string().trim_matches('"').to_owned(),
                    )
                });
                rows.push(row.collect());
            }
            Ok(CellOutput::Table {
                columns,
                rows,
                total: plan::count_from_rows(&count),
            })
        }
        _ => Err(Error::Invalid("only query and plot cells run".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_lines_and_builder_json_read() {
        let specs = plot_specs("-- histogram mass:60:60:120\n-- histogram pt:0,10,20,50\nSELECT 1")
            .expect("specs");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].column, "mass");
        assert_eq!(
            specs[0].binning,
            Binning::Fixed {
                bins: 60,
                lo: 60.0,
                hi: 120.0
            }
        );
        assert!(plot_specs("SELECT 1").is_err());
        let cell = "-- histogram2d alpha:40:-1:1 qt:50:0:0.25\nSELECT 1";
        assert_eq!(plot_specs(cell).expect("a 2-D histogram is a plot"), []);
        let maps = map_specs(cell).expect("maps");
        assert_eq!((maps[0].x.0.as_str(), maps[0].y.1.bins()), ("alpha", 50));
        assert!(has_maps(cell) && !has_maps("-- histogram m:1:0:1"));
        for bad in [
            "-- histogram2d alpha:40:-1:1",
            "-- histogram2d a:2000:0:1 b:2000:0:1",
            "-- histogram2d a:10:1:0 b:10:0:1",
        ] {
            assert!(map_specs(bad).is_err(), "{bad}");
        }
        assert!(plot_specs("-- histogram mass").is_err());
        let q = cell_query(
            r#"{"collection": "muons", "combine": {"n": 2, "opposite_charge": true, "mass": [60, 120]}, "output": "combinations"}"#,
        );
        assert!(q.is_ok(), "{q:?}");
        assert!(cell_query("SELEC pt FROM muons").is_err());
    }

    #[test]
    fn fit_lines_read_and_refuse() {
        let cell = "-- histogram m:60:60:120\n-- fit gauss + exp on m in 80:100 neyman\nSELECT 1";
        let fits = fit_specs(cell).expect("fits");
        assert_eq!(fits[0].model, "gauss+exp");
        assert_eq!(fits[0].column, "m");
        assert_eq!(fits[0].options.range, Some((80.0, 100.0)));
        assert_eq!(fits[0].options.method, alyx_fit::Method::Neyman);
        for (bad, says) in [
            (
                "-- histogram m:60:60:120\n-- fit gauss on pt",
                "no `-- histogram pt",
            ),
            (
                "-- histogram m:60:60:120\n-- fit landau on m",
                "unknown shape",
            ),
            (
                "-- histogram m:60:60:120\n-- fit gauss on m in 9:1",
                "LO:HI",
            ),
            ("-- histogram m:60:60:120\n-- fit gauss", "a fit is"),
            (
                "-- histogram m:60:60:120\n-- fit gauss on m sideways",
                "a fit is",
            ),
        ] {
            let err = fit_specs(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

//! Analysis jobs as data: what a job computes (a per-event query and the histograms of its
//! outputs), how it splits into tasks (one per data chunk), what a task produces (partial
//! histograms, the checkpoint) and how partial results merge. The orchestration (job store,
//! scheduling, executors) lives in the backend; this is what every executor runs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use alyx_core::histogram::Histogram;
pub use alyx_core::jobs::{Analysis, HistogramSpec, JobState, Target};
use alyx_query::{self as query, Checked, Diagnostic, Engine, plan};
use alyx_store::Dataset;

/// The partial result of one task (one chunk): the checkpoint that survives failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// One per `Analysis::histograms`, in order.
    pub histograms: Vec<Histogram>,
    /// Rows of the query in the chunk.
    pub rows: u64,
    /// Events in the chunk.
    pub events: u64,
}

/// What an analysis does with the engines: checked for one, run over one chunk.
pub trait AnalysisExt {
    fn check(&self) -> std::result::Result<Checked, Vec<Diagnostic>>;
    fn check_for(&self, engine: Engine) -> std::result::Result<Checked, Vec<Diagnostic>>;
    fn run_chunk(&self, dataset: &Dataset, checked: &Checked, chunk: u32) -> Result<TaskResult>;
}

/// The most histograms one job fills (each is one more pass over every chunk's rows).
pub const MAX_HISTOGRAMS: usize = 64;

impl AnalysisExt for Analysis {
    /// Checks the analysis: a valid query for the local engine whose rows belong to single
    /// events, so that it splits by chunk (aggregates and DISTINCT only per event, no limits),
    /// and histograms of its numeric outputs with valid binnings.
    fn check(&self) -> std::result::Result<Checked, Vec<Diagnostic>> {
        self.check_for(Engine::Local)
    }

    /// [`Analysis::check`] for `engine`: what an executor running the tasks there runs.
    fn check_for(&self, engine: Engine) -> std::result::Result<Checked, Vec<Diagnostic>> {
        let checked = query::check(&self.query, engine)?;
        let mut problems = query::per_event_problems(&checked);
        if self.histograms.is_empty() {
            problems.push(Diagnostic::new(
                "a job needs at least one histogram",
                query::At::NONE,
            ));
        }
        if self.histograms.len() > MAX_HISTOGRAMS {
            problems.push(Diagnostic::new(
                format!(
                    "a job fills at most {MAX_HISTOGRAMS} histograms, not {}",
                    self.histograms.len()
                ),
                query::At::NONE,
            ));
            return Err(problems);
        }
        for h in &self.histograms {
            let b = plan::histogram(&checked, &h.column, h.weight.as_deref(), &h.binning);
            if let Err(d) = b {
                problems.push(d);
            }
        }
        problems.dedup();
        if problems.is_empty() {
            Ok(checked)
        } else {
            Err(problems)
        }
    }

    /// Runs the analysis over one chunk of `dataset`: the task's partial result.
    fn run_chunk(&self, dataset: &Dataset, checked: &Checked, chunk: u32) -> Result<TaskResult> {
        let events = dataset
            .manifest()
            .chunks
            .iter()
            .find(|c| c.id == chunk)
            .map(|c| c.event_count)
            .ok_or_else(|| Error::NotFound(format!("no chunk {chunk} in the dataset")))?;
        // The builder's pair and triple selections run on the per-event kernel.
        let plots: Vec<(String, alyx_core::histogram::Binning)> = self
            .histograms
            .iter()
            .filter(|h| h.weight.is_none())
            .map(|h| (h.column.clone(), h.binning.clone()))
            .collect();
        if let Some(spec) = query::kernel::recognize(checked.query()).filter(|s| {
            plots.len() == self.histograms.len()
                && plots.iter().all(|(c, _)| query::kernel::has_column(s, c))
        }) {
            let (histograms, rows) =
                query::kernel::histograms(dataset, &spec, Some(&[chunk]), &plots)?;
            return Ok(TaskResult {
                histograms,
                rows,
                events,
            });
        }
        let mut histograms = Vec::with_capacity(self.histograms.len());
        for h in &self.histograms {
            let q = plan::histogram(checked, &h.column, h.weight.as_deref(), &h.binning)
                .map_err(|d| query::invalid_query(&[d]))?;
            let df = query::run_local_chunks(dataset, &q, Some(&[chunk]))?;
            histograms.push(plan::histogram_from_rows(&df, h.binning.clone())?);
        }
        let count = query::run_local_chunks(dataset, &plan::count(checked), Some(&[chunk]))?;
        let rows = plan::count_from_rows(&count);
        Ok(TaskResult {
            histograms,
            rows,
            events,
        })
    }
}

/// The job's result from its tasks' partial results, merged in chunk order so that the same
/// tasks give the same bits whatever order they finished in (floating-point sums depend on
/// the order of addition).
pub fn merge(analysis: &Analysis, mut parts: Vec<(u32, TaskResult)>) -> Result<TaskResult> {
    parts.sort_by_key(|(chunk, _)| *chunk);
    let mut total = TaskResult {
        histograms: analysis
            .histograms
            .iter()
            .map(|h| Histogram::new(h.binning.clone()))
            .collect(),
        rows: 0,
        events: 0,
    };
    for (chunk, part) in parts {
        if part.histograms.len() != total.histograms.len() {
            return Err(Error::Invalid(format!(
                "chunk {chunk}'s result has {} histograms, the analysis {}",
                part.histograms.len(),
                total.histograms.len()
            )));
        }
        for (t, p) in total.histograms.iter_mut().zip(&part.histograms) {
            t.merge(p)?;
        }
        total.rows += part.rows;
        total.events += part.events;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::histogram::Binning;
    use alyx_sim::nano::{self, NanoConfig};
    use alyx_store::DataStore;
    use proptest::prelude::*;

    fn analysis(sql: &str, histograms: Vec<HistogramSpec>) -> Analysis {
        Analysis {
            query: query::parse(sql).expect("parses"),
            histograms,
        }
    }

    fn fixed(column: &str, bins: usize, lo: f64, hi: f64) -> HistogramSpec {
        HistogramSpec {
            column: column.into(),
            weight: None,
            binning: Binning::fixed(bins, lo, hi).expect("binning"),
        }
    }

    #[test]
    fn chunk_results_merge_into_the_whole_datasets_histogram() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let mut ds = store.create_dataset("nano", "test").expect("dataset");
        let events = nano::events(&NanoConfig::new(4), 0..2400);
        for part in events.chunks(500) {
            ds.append(part).expect("append");
        }
        let a = analysis(
            "SELECT j.pt AS pt, j.pt * 0.5 AS w FROM jets j WHERE ABS(j.eta) < 2.4",
            vec![
                fixed("pt", 50, 0.0, 250.0),
                HistogramSpec {
                    weight: Some("w".into()),
                    ..fixed("pt", 10, 0.0, 500.0)
                },
            ],
        );
        let checked = a.check().expect("valid");
        let chunks: Vec<u32> = ds.manifest().chunks.iter().map(|c| c.id).collect();
        assert_eq!(chunks.len(), 5);
        let parts: Vec<(u32, TaskResult)> = chunks
            .iter()
            .map(|c| (*c, a.run_chunk(&ds, &checked, *c).expect("task")))
            .collect();
        let merged = merge(&a, parts.clone()).expect("merge");
        assert_eq!(merged.events, 2400);
        for (h, spec) in merged.histograms.iter().zip(&a.histograms) {
            let whole = query::histogram_local(
                &ds,
                &checked,
                &spec.column,
                spec.weight.as_deref(),
                spec.binning.clone(),
            )
            .expect("whole");
            assert_eq!(h.entries, whole.entries);
            assert_eq!((h.underflow, h.overflow), (whole.underflow, whole.overflow));
            for (x, y) in h.sum_w.iter().zip(&whole.sum_w) {
                assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
        assert_eq!(
            merged.rows,
            merged.histograms[0].entries.iter().sum::<u64>()
                + merged.histograms[0].underflow as u64
                + merged.histograms[0].overflow as u64
        );
        // Any finishing order gives the same bits.
        let mut reversed = parts;
        reversed.reverse();
        assert_eq!(merge(&a, reversed).expect("merge"), merged);
        assert!(a.run_chunk(&ds, &checked, 99).is_err(), "no chunk 99");
    }

    #[test]
    fn analyses_that_do_not_split_by_chunk_are_refused() {
        let bad = [
            ("SELECT COUNT(*) AS n FROM jets", "aggregates across events"),
            (
                "SELECT run, COUNT(*) AS n FROM events GROUP BY run",
                "aggregates across events",
            ),
            ("SELECT pt FROM jets LIMIT 10", "LIMIT"),
            ("SELECT DISTINCT run AS pt FROM events", "DISTINCT"),
            ("SELECT nonsense FROM jets", "unknown column"),
        ];
        for (sql, why) in bad {
            let a = analysis(sql, vec![fixed("pt", 10, 0.0, 100.0)]);
            let problems = a.check().expect_err(sql);
            assert!(
                problems.iter().any(|d| d.message.contains(why)),
                "{sql}: {problems:?}"
            );
        }
        let per_event = analysis(
            "SELECT event_id, SUM(pt) AS ht FROM jets GROUP BY event_id",
            vec![fixed("ht", 10, 0.0, 1000.0)],
        );
        assert!(per_event.check().is_ok(), "per-event sums split by chunk");
        let no_hist = analysis("SELECT pt FROM jets", vec![]);
        assert!(no_hist.check().is_err());
        let wrong_column = analysis("SELECT pt FROM jets", vec![fixed("eta", 10, 0.0, 1.0)]);
        assert!(wrong_column.check().is_err());
    }

    proptest! {
        /// Histograms filled from any split of the values, merged, count what one histogram
        /// of all values counts.
        #[test]
        fn merged_partial_histograms_equal_one_fill(
            values in prop::collection::vec(-10.0f64..110.0, 0..300),
            cuts in prop::collection::vec(0usize..300, 0..6),
        ) {
            let spec = fixed("x", 20, 0.0, 100.0);
            let a = Analysis { query: query::parse("SELECT pt AS x FROM jets").expect("sql"), histograms: vec![spec.clone()] };
            let mut whole = Histogram::new(spec.binning.clone());
            values.iter().for_each(|v| whole.fill(*v, 1.0));
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(values.len())).collect();
            bounds.extend([0, values.len()]);
            bounds.sort_unstable();
            let parts: Vec<(u32, TaskResult)> = bounds.windows(2).enumerate().map(|(i, w)| {
                let mut h = Histogram::new(spec.binning.clone());
                values[w[0]..w[1]].iter().for_each(|v| h.fill(*v, 1.0));
                (i as u32, TaskResult { histograms: vec![h], rows: (w[1] - w[0]) as u64, events: 0 })
            }).collect();
            let merged = merge(&a, parts).expect("merge");
            prop_assert_eq!(&merged.histograms[0], &whole);
            prop_assert_eq!(merged.rows, values.len() as u64);
        }
    }
}

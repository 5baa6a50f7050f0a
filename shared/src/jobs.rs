//! Analysis jobs as data: what a job computes (a per-event query and the histograms of its
//! outputs), how it splits into tasks (one per data chunk), what a task produces (partial
//! histograms, the checkpoint) and how partial results merge. The orchestration (job store,
//! scheduling, executors) lives in the backend; this is what every executor runs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::histogram::{Binning, Histogram};
use crate::query::ast::{Expr, Item, Query};
use crate::query::{self, Checked, Diagnostic, Engine, plan};
use crate::store::Dataset;

/// One histogram of an analysis: an output column of its query, optionally weighted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramSpec {
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    pub binning: Binning,
}

/// What a job computes: histograms of a per-event query's outputs over a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub query: Query,
    pub histograms: Vec<HistogramSpec>,
}

/// A job's state. Tasks are pending, running, done or failed; the job's state follows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Preempted,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Preempted,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Preempted => "preempted",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Succeeded, failed or cancelled: nothing more happens to the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// Where a job's tasks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The scheduler picks (the local pool unless the work is large and a cluster is up).
    Auto,
    Local,
    Spark,
    Slurm,
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Auto, Target::Local, Target::Spark, Target::Slurm];

    pub fn name(self) -> &'static str {
        match self {
            Target::Auto => "auto",
            Target::Local => "local",
            Target::Spark => "spark",
            Target::Slurm => "slurm",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|k| k.name() == s)
    }
}

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

impl Analysis {
    /// Checks the analysis: a valid query for the local engine whose rows belong to single
    /// events, so that it splits by chunk (aggregates and DISTINCT only per event, no limits),
    /// and histograms of its numeric outputs with valid binnings.
    pub fn check(&self) -> std::result::Result<Checked, Vec<Diagnostic>> {
        let checked = query::check(&self.query, Engine::Local)?;
        let mut problems = query::per_event_problems(&checked);
        if self.histograms.is_empty() {
            problems.push(Diagnostic::new(
                "a job needs at least one histogram",
                query::At::NONE,
            ));
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

    /// A rough measure of the query's work per event (for run-time prediction): the number of
    /// expression nodes, joins and tables.
    pub fn complexity(&self) -> u32 {
        let mut n = 0;
        for s in self
            .query
            .body
            .iter()
            .chain(self.query.with.iter().flat_map(|c| c.query.body.iter()))
        {
            n += 1 + s.from.as_ref().map_or(0, |f| f.joins.len() as u32 * 4);
            for i in &s.items {
                n += match i {
                    Item::Expr { expr, .. } => nodes(expr),
                    Item::Wildcard { .. } => 1,
                };
            }
            n += s.filter.as_ref().map_or(0, nodes);
        }
        n + self.histograms.len() as u32
    }

    /// Runs the analysis over one chunk of `dataset`: the task's partial result.
    pub fn run_chunk(
        &self,
        dataset: &Dataset,
        checked: &Checked,
        chunk: u32,
    ) -> Result<TaskResult> {
        let events = dataset
            .manifest()
            .chunks
            .iter()
            .find(|c| c.id == chunk)
            .map(|c| c.event_count)
            .ok_or_else(|| Error::NotFound(format!("no chunk {chunk} in the dataset")))?;
        // The builder's pair and triple selections run on the per-event kernel.
        let plots: Vec<(String, crate::histogram::Binning)> = self
            .histograms
            .iter()
            .filter(|h| h.weight.is_none())
            .map(|h| (h.column.clone(), h.binning.clone()))
            .collect();
        if let Some(spec) = query::kernel::recognize(&checked.query).filter(|s| {
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
            let df =
                query::run_local_chunks(dataset, &q, &plan::histogram_columns(), Some(&[chunk]))?;
            histograms.push(plan::histogram_from_rows(&df, h.binning.clone())?);
        }
        let count = query::run_local_chunks(
            dataset,
            &plan::count(checked),
            &plan::count_columns(),
            Some(&[chunk]),
        )?;
        let rows = plan::count_from_rows(&count);
        Ok(TaskResult {
            histograms,
            rows,
            events,
        })
    }
}

fn nodes(e: &Expr) -> u32 {
    let mut n = 0;
    e.visit(&mut |_| n += 1);
    n
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
    use crate::nano::{self, NanoConfig};
    use crate::store::DataStore;
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

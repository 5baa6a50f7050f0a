//! Run-time prediction learned from finished tasks. Per executor, a task's seconds are modelled
//! as a linear function of its features —
//!
//!   seconds ≈ β₀ + β₁·events + β₂·MB + β₃·events·complexity + β₄·events·histograms
//!
//! (β₀ is the per-task overhead: opening files, planning, scheduling) fitted by least squares
//! with a small ridge term, weighted by 1/seconds² so that the fit minimises relative error
//! (what MAPE measures). The naive baseline is the mean time per event times the events.
//! Models are refitted from `task_history` as it grows.

use sqlx::{PgPool, Row};

use crate::error::Result;

/// One finished task.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub events: f64,
    pub bytes: f64,
    pub complexity: f64,
    pub histograms: f64,
    pub seconds: f64,
}

const FEATURES: usize = 5;

fn features(s: &Sample) -> [f64; FEATURES] {
    [
        1.0,
        s.events,
        s.bytes / 1e6,
        s.events * s.complexity,
        s.events * s.histograms,
    ]
}

/// The sums of many tasks' features: a linear model's predictions add up, so the time of a
/// whole queue is one dot product.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    pub tasks: f64,
    pub events: f64,
    pub bytes: f64,
    pub events_complexity: f64,
    pub events_histograms: f64,
}

impl Sums {
    pub fn add(&mut self, s: &Sample) {
        self.tasks += 1.0;
        self.events += s.events;
        self.bytes += s.bytes;
        self.events_complexity += s.events * s.complexity;
        self.events_histograms += s.events * s.histograms;
    }

    fn features(&self) -> [f64; FEATURES] {
        [
            self.tasks,
            self.events,
            self.bytes / 1e6,
            self.events_complexity,
            self.events_histograms,
        ]
    }
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, o: Sums) {
        self.tasks += o.tasks;
        self.events += o.events;
        self.bytes += o.bytes;
        self.events_complexity += o.events_complexity;
        self.events_histograms += o.events_histograms;
    }
}

/// A fitted model, or the baseline when there is too little history.
#[derive(Clone, Debug)]
pub struct Model {
    beta: Option<[f64; FEATURES]>,
    seconds_per_event: f64,
}

impl Model {
    /// Fits `samples`; with fewer than 8 the model is the baseline.
    pub fn fit(samples: &[Sample]) -> Model {
        let seconds_per_event = baseline_rate(samples);
        if samples.len() < 8 {
            return Model {
                beta: None,
                seconds_per_event,
            };
        }
        // Weighted normal equations (XᵀWX + λI) β = XᵀWy, features scaled to unit size first.
        let scale: Vec<f64> = (0..FEATURES)
            .map(|k| {
                samples
                    .iter()
                    .map(|s| features(s)[k].abs())
                    .fold(0.0, f64::max)
                    .max(1e-12)
            })
            .collect();
        let mut a = [[0.0; FEATURES]; FEATURES];
        let mut b = [0.0; FEATURES];
        for s in samples {
            let x: Vec<f64> = features(s).iter().zip(&scale).map(|(v, k)| v / k).collect();
            let w = 1.0 / s.seconds.max(1e-6).powi(2);
            for i in 0..FEATURES {
                for j in 0..FEATURES {
                    a[i][j] += w * x[i] * x[j];
                }
                b[i] += w * x[i] * s.seconds;
            }
        }
        let trace: f64 = (0..FEATURES).map(|i| a[i][i]).sum();
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1e-6 * trace / FEATURES as f64;
        }
        let beta = solve(a, b).map(|beta| {
            let mut out = [0.0; FEATURES];
            for k in 0..FEATURES {
                out[k] = beta[k] / scale[k];
            }
            out
        });
        Model {
            beta,
            seconds_per_event,
        }
    }

    pub fn predict(&self, s: &Sample) -> f64 {
        match self.beta {
            Some(beta) => features(s)
                .iter()
                .zip(beta)
                .map(|(x, b)| x * b)
                .sum::<f64>()
                .max(1e-3),
            None => self.baseline(s),
        }
    }

    /// The total predicted seconds of the tasks summed in `sums`.
    pub fn predict_sum(&self, sums: &Sums) -> f64 {
        match self.beta {
            Some(beta) => sums
                .features()
                .iter()
                .zip(beta)
                .map(|(x, b)| x * b)
                .sum::<f64>()
                .max(1e-3 * sums.tasks),
            None => self.seconds_per_event * sums.events,
        }
    }

    pub fn baseline(&self, s: &Sample) -> f64 {
        self.seconds_per_event * s.events
    }
}

fn baseline_rate(samples: &[Sample]) -> f64 {
    let (t, n) = samples
        .iter()
        .fold((0.0, 0.0), |(t, n), s| (t + s.seconds, n + s.events));
    if n > 0.0 { t / n } else { 1e-5 }
}

/// Gaussian elimination with partial pivoting; None when singular.
fn solve(mut a: [[f64; FEATURES]; FEATURES], mut b: [f64; FEATURES]) -> Option<[f64; FEATURES]> {
    for col in 0..FEATURES {
        let pivot = (col..FEATURES).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..FEATURES {
            let f = a[row][col] / a[col][col];
            for k in col..FEATURES {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; FEATURES];
    for row in (0..FEATURES).rev() {
        let tail: f64 = (row + 1..FEATURES).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Mean absolute percentage error of `predict` on `samples`.
pub fn mape(samples: &[Sample], predict: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len().max(1) as f64;
    100.0
        * samples
            .iter()
            .map(|s| ((predict(s) - s.seconds) / s.seconds.max(1e-9)).abs())
            .sum::<f64>()
        / n
}

/// Fits on the older 80 % of `history` (in time order) and measures the newer 20 %: the
/// model's MAPE and the baseline's.
pub fn evaluate(history: &[Sample]) -> (f64, f64) {
    let cut = history.len() * 4 / 5;
    let (train, test) = history.split_at(cut);
    let model = Model::fit(train);
    (
        mape(test, |s| model.predict(s)),
        mape(test, |s| model.baseline(s)),
    )
}

/// The recorded history of `executor`, oldest first (the newest `limit` tasks).
pub async fn history(pool: &PgPool, executor: &str, limit: i64) -> Result<Vec<Sample>> {
    let rows = sqlx::query(
        "SELECT events, bytes, complexity, histograms, seconds FROM \
           (SELECT * FROM task_history WHERE executor = $1 ORDER BY id DESC LIMIT $2) h ORDER BY id",
    )
    .bind(executor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Sample {
                events: r.try_get::<i64, _>("events")? as f64,
                bytes: r.try_get::<i64, _>("bytes")? as f64,
                complexity: r.try_get::<i32, _>("complexity")? as f64,
                histograms: r.try_get::<i32, _>("histograms")? as f64,
                seconds: r.try_get("seconds")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks with a fixed overhead and a cost per event that grows with the query's size: the
    /// shape real task times have, which a pure per-event rate cannot follow.
    fn recorded(n: usize, seed: u64) -> Vec<Sample> {
        let mut x = seed;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let events = 1000.0 + 99_000.0 * next();
                let complexity = (5.0 + 40.0 * next()).round();
                let histograms = (1.0 + 4.0 * next()).round();
                let bytes = events * 900.0;
                let seconds = (0.35 + 2e-7 * events * complexity + 1e-6 * events * histograms)
                    * (0.9 + 0.2 * next());
                Sample {
                    events,
                    bytes,
                    complexity,
                    histograms,
                    seconds,
                }
            })
            .collect()
    }

    #[test]
    fn the_model_beats_the_per_event_baseline_on_held_out_history() {
        let history = recorded(400, 7);
        let (model, baseline) = evaluate(&history);
        assert!(model < 8.0, "model MAPE {model:.1} %");
        assert!(
            model < baseline / 3.0,
            "model {model:.1} % vs baseline {baseline:.1} %"
        );
    }

    #[test]
    fn summed_predictions_equal_the_sum_of_predictions() {
        let history = recorded(200, 3);
        let m = Model::fit(&history);
        let queue = recorded(50, 9);
        let mut sums = Sums::default();
        queue.iter().for_each(|s| sums.add(s));
        let each: f64 = queue.iter().map(|s| m.predict(s)).sum();
        assert!((m.predict_sum(&sums) - each).abs() < 1e-6 * each, "{each}");
    }

    #[test]
    fn little_history_falls_back_to_the_baseline() {
        let history = recorded(5, 1);
        let m = Model::fit(&history);
        let s = &history[0];
        assert_eq!(m.predict(s), m.baseline(s));
        let empty = Model::fit(&[]);
        assert!(empty.predict(s) > 0.0);
    }

    #[test]
    fn an_exact_linear_history_is_recovered() {
        let history: Vec<Sample> = (1..40)
            .map(|i| {
                let events = 1000.0 * i as f64;
                let complexity = (i % 7 + 1) as f64;
                let histograms = (i % 3 + 1) as f64;
                Sample {
                    events,
                    bytes: events * 500.0 + (i % 5) as f64 * 1e6,
                    complexity,
                    histograms,
                    seconds: 0.5 + 1e-6 * events * complexity + 2e-6 * events * histograms,
                }
            })
            .collect();
        let m = Model::fit(&history);
        for s in &history {
            assert!((m.predict(s) - s.seconds).abs() < 1e-3 * s.seconds, "{s:?}");
        }
    }
}

//! Fitting a model to a histogram: the cost (binned likelihood or χ²), automatic starting
//! values from the histogram, the minimisation, and the result.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::histogram::Histogram;
use crate::minuit::{self, Minimum};
use crate::model::Model;

/// What the fit minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Binned Poisson likelihood with the yields free: they fit the number of entries.
    #[default]
    ExtendedLikelihood,
    /// Binned multinomial likelihood: the shapes and the components' fractions only.
    Likelihood,
    /// χ² with the data's errors (√Σw²); empty bins are left out.
    Neyman,
    /// χ² with the model's errors (√ν).
    Pearson,
}

impl Method {
    pub const ALL: [(&'static str, Method); 4] = [
        ("extended", Method::ExtendedLikelihood),
        ("likelihood", Method::Likelihood),
        ("neyman", Method::Neyman),
        ("pearson", Method::Pearson),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("extended", |(n, _)| n)
    }
}

/// How to fit: the cost, the range, and the user's changes to the model's parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitOptions {
    pub method: Method,
    /// The fit range (the bins whose centres lie inside); `None`: the whole histogram.
    pub range: Option<(f64, f64)>,
    /// Asymmetric errors by profiling (MINOS) for every free parameter.
    pub minos: bool,
    /// Starting values replacing the automatic ones.
    pub start: Vec<(String, f64)>,
    /// Parameters held at a value.
    pub fix: Vec<(String, f64)>,
    /// Limits replacing the model's.
    pub limits: Vec<(String, Option<f64>, Option<f64>)>,
}

/// One parameter of a fit result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamResult {
    pub name: String,
    pub value: f64,
    /// From the Hessian (0 for a fixed parameter).
    pub error: f64,
    /// From profiling, when asked: the lower error (negative) and the upper one; `None` on a
    /// side where the profile does not rise by one unit within the parameter's limits.
    pub minos: Option<(Option<f64>, Option<f64>)>,
    pub fixed: bool,
}

/// A fit's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitResult {
    pub model: String,
    pub method: Method,
    /// The fit range: the outer edges of the bins used.
    pub range: (f64, f64),
    pub params: Vec<ParamResult>,
    /// The free parameters' names, the rows and columns of `correlation`.
    pub free: Vec<String>,
    pub correlation: Vec<Vec<f64>>,
    /// The cost at the minimum: −2 ln L (as a likelihood ratio to the saturated model) or χ².
    pub cost: f64,
    /// χ² of the fit: the cost itself (for likelihoods the Baker–Cousins χ²).
    pub chi2: f64,
    pub ndf: i64,
    /// The probability of a χ² at least this large with `ndf` degrees of freedom.
    pub p_value: f64,
    pub edm: f64,
    pub calls: usize,
    pub converged: bool,
    /// Why the fit is not to be trusted, when it is not.
    pub message: Option<String>,
    /// The bins used: their edges, contents, errors and the model's expectation.
    pub bins: Vec<FitBin>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitBin {
    pub lo: f64,
    pub hi: f64,
    pub count: f64,
    pub error: f64,
    pub expected: f64,
}

impl FitBin {
    /// (data − model) / error; 0 for an empty bin without error.
    pub fn pull(&self) -> f64 {
        if self.error > 0.0 {
            (self.count - self.expected) / self.error
        } else {
            0.0
        }
    }
}

impl FitResult {
    pub fn param(&self, name: &str) -> Option<&ParamResult> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The fitted values in the model's order (for `Model::curve`).
    pub fn values(&self, model: &Model) -> Vec<f64> {
        model
            .params
            .iter()
            .map(|p| self.param(&p.name).map_or(0.0, |r| r.value))
            .collect()
    }
}

/// The bins of `h` in the fit range.
struct Selected {
    edges: Vec<f64>,
    counts: Vec<f64>,
    sumw2: Vec<f64>,
}

fn select(h: &Histogram, range: Option<(f64, f64)>) -> Result<Selected, Error> {
    let (lo, hi) = range.unwrap_or((h.edges()[0], h.edges()[h.edges().len() - 1]));
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(Error::Fit(format!("the range {lo}:{hi} is empty")));
    }
    let inside: Vec<usize> = (0..h.counts().len())
        .filter(|&i| {
            let centre = 0.5 * (h.edges()[i] + h.edges()[i + 1]);
            centre >= lo && centre <= hi
        })
        .collect();
    let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
        return Err(Error::Fit(format!("no bin has its centre in {lo}:{hi}")));
    };
    Ok(Selected {
        edges: h.edges()[first..=last + 1].to_vec(),
        counts: h.counts()[first..=last].to_vec(),
        sumw2: h.sumw2()[first..=last].to_vec(),
    })
}

/// The parameters as a fit of `model` to `h` starts them: the automatic guesses from the
/// histogram, with the options' starting values, limits and fixed parameters.
pub fn starting_params(
    h: &Histogram,
    model: &Model,
    options: &FitOptions,
) -> Result<Vec<crate::model::Param>, Error> {
    Ok(prepare(&select(h, options.range)?, model, options)?.params)
}

fn prepare(data: &Selected, model: &Model, options: &FitOptions) -> Result<Model, Error> {
    let mut model = model.clone();
    let extended = options.method != Method::Likelihood;
    auto_start(&mut model, data);
    let k = model.components.len();
    // Non-extended: a fraction for each component but the last, which takes the rest.
    if !extended {
        let total: f64 = model
            .components
            .iter()
            .map(|c| model.params[c.yield_param].value)
            .sum::<f64>()
            .max(1e-300);
        for (i, c) in model.components.clone().iter().enumerate() {
            let p = &mut model.params[c.yield_param];
            if i + 1 == k {
                p.fixed = true;
            } else {
                p.name = format!("frac_{}", c.name);
                p.value = (p.value / total).clamp(0.01, 0.99);
                p.step = 0.05;
                p.lower = Some(0.0);
                p.upper = Some(1.0);
            }
        }
    }
    for (name, v) in &options.start {
        model.param_mut(name)?.value = *v;
    }
    for (name, lo, hi) in &options.limits {
        let p = model.param_mut(name)?;
        (p.lower, p.upper) = (*lo, *hi);
    }
    for (name, v) in &options.fix {
        let p = model.param_mut(name)?;
        p.value = *v;
        p.fixed = true;
    }
    Ok(model)
}

/// Fits `model` to `h`.
pub fn fit(h: &Histogram, model: &Model, options: &FitOptions) -> Result<FitResult, Error> {
    let data = select(h, options.range)?;
    let model = prepare(&data, model, options)?;
    let extended = options.method != Method::Likelihood;
    let k = model.components.len();
    let free = model.params.iter().filter(|p| !p.fixed).count();
    let bins = data.counts.len();
    if bins <= free {
        return Err(Error::Fit(format!(
            "{bins} bins in the range for {free} free parameters"
        )));
    }

    let n_total: f64 = data.counts.iter().sum();
    // Weighted histograms in likelihood fits: each bin scaled to its effective count
    // (Bohm and Zech, as iminuit does): n → n·s, ν → ν·s with s = |n| / Σw²; a bin without
    // entries takes the median scale of those with (1 for plain counts).
    let mut filled: Vec<f64> = data
        .counts
        .iter()
        .zip(&data.sumw2)
        .filter(|(_, w2)| **w2 > 0.0)
        .map(|(n, w2)| n.abs() / w2)
        .collect();
    filled.sort_by(f64::total_cmp);
    let median = match filled.len() {
        0 => 1.0,
        k if k % 2 == 1 => filled[k / 2],
        k => 0.5 * (filled[k / 2 - 1] + filled[k / 2]),
    };
    let scale: Vec<f64> = data
        .counts
        .iter()
        .zip(&data.sumw2)
        .map(|(n, w2)| if *w2 > 0.0 { n.abs() / w2 } else { median })
        .collect();
    let shares = RefCell::new(vec![vec![0.0; bins]; k]);
    let expected = |values: &[f64], out: &mut Vec<f64>| -> bool {
        let mut s = shares.borrow_mut();
        if !model.shares(values, &data.edges, &mut s) {
            return false;
        }
        out.clear();
        out.resize(bins, 0.0);
        for (c, row) in model.components.iter().zip(s.iter()) {
            let weight = if extended {
                values[c.yield_param]
            } else if c.yield_param == model.components[k - 1].yield_param {
                let others: f64 = model.components[..k - 1]
                    .iter()
                    .map(|c| values[c.yield_param])
                    .sum();
                n_total * (1.0 - others)
            } else {
                n_total * values[c.yield_param]
            };
            for (o, share) in out.iter_mut().zip(row) {
                *o += weight * share;
            }
        }
        true
    };
    let nu = RefCell::new(Vec::with_capacity(bins));
    let method = options.method;
    let cost = |values: &[f64]| -> f64 {
        let mut nu = nu.borrow_mut();
        if !expected(values, &mut nu) {
            return f64::INFINITY;
        }
        let mut sum = 0.0;
        for i in 0..bins {
            let (n, v) = (data.counts[i], nu[i]);
            sum += match method {
                Method::ExtendedLikelihood | Method::Likelihood => {
                    let s = scale[i];
                    let (n, v) = (n * s, v.max(1e-300) * s);
                    if n > 0.0 {
                        2.0 * (v - n + n * (n / v).ln())
                    } else {
                        2.0 * v
                    }
                }
                Method::Neyman if data.sumw2[i] > 0.0 => (n - v).powi(2) / data.sumw2[i],
                Method::Neyman => 0.0,
                Method::Pearson => (n - v).powi(2) / v.max(1e-300),
            };
        }
        sum
    };

    let min = minuit::minimize(&cost, &model.params);
    let used_bins = match method {
        Method::Neyman => data.sumw2.iter().filter(|w| **w > 0.0).count(),
        _ => bins,
    };
    let ndf = used_bins as i64 - min.free.len() as i64 - i64::from(!extended);
    let params = model
        .params
        .iter()
        .enumerate()
        .filter(|(i, p)| extended || !(p.fixed && model.components[k - 1].yield_param == *i))
        .map(|(i, p)| ParamResult {
            name: p.name.clone(),
            value: min.values[i],
            error: min.error(i),
            minos: (options.minos && !p.fixed).then(|| {
                let (lo, hi) = minuit::minos(&cost, &with_values(&model, &min), &min, i);
                (lo, hi)
            }),
            fixed: p.fixed,
        })
        .collect();
    let mut fitted = Vec::new();
    expected(&min.values, &mut fitted);
    let bins_out = (0..bins)
        .map(|i| FitBin {
            lo: data.edges[i],
            hi: data.edges[i + 1],
            count: data.counts[i],
            error: data.sumw2[i].sqrt(),
            expected: fitted.get(i).copied().unwrap_or(f64::NAN),
        })
        .collect();
    let chi2 = min.fval;
    let p_value = if ndf > 0 && chi2.is_finite() {
        statrs::function::gamma::checked_gamma_ur(ndf as f64 / 2.0, chi2.max(0.0) / 2.0)
            .unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    Ok(FitResult {
        model: model.spec().to_owned(),
        method,
        range: (data.edges[0], data.edges[bins]),
        params,
        free: min
            .free
            .iter()
            .map(|&i| model.params[i].name.clone())
            .collect(),
        correlation: correlation(&min),
        cost: min.fval,
        chi2,
        ndf,
        p_value,
        edm: min.edm,
        calls: min.calls,
        converged: min.problem.is_none(),
        message: min.problem.clone(),
        bins: bins_out,
    })
}

/// The model's parameters starting at the minimum (MINOS starts there).
fn with_values(model: &Model, min: &Minimum) -> Vec<crate::model::Param> {
    let mut params = model.params.clone();
    for (i, p) in params.iter_mut().enumerate() {
        p.value = min.values[i];
        if let Some(j) = min.free.iter().position(|&f| f == i) {
            p.step = min.covariance[j][j].max(0.0).sqrt().max(1e-12);
        }
    }
    params
}

fn correlation(min: &Minimum) -> Vec<Vec<f64>> {
    let c = &min.covariance;
    (0..c.len())
        .map(|i| {
            (0..c.len())
                .map(|j| {
                    let d = (c[i][i] * c[j][j]).sqrt();
                    if d > 0.0 { c[i][j] / d } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

/// Starting values and limits from the histogram: a straight-line background through the
/// range's outer tenths, the peak where the data rise most above it, its width from the
/// half-maximum crossings, and the entries shared between peaks and backgrounds.
fn auto_start(model: &mut Model, data: &Selected) {
    use crate::shapes::Shape;
    let bins = data.counts.len();
    let (lo, hi) = (data.edges[0], data.edges[bins]);
    let centre = |i: usize| 0.5 * (data.edges[i] + data.edges[i + 1]);
    let width = |i: usize| data.edges[i + 1] - data.edges[i];
    let density: Vec<f64> = (0..bins).map(|i| data.counts[i] / width(i)).collect();
    let tenth = (bins / 10).max(1);
    let mean_of = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        let (x, y) = r.fold((0.0, 0.0), |(x, y), i| (x + centre(i), y + density[i]));
        (x / n, y / n)
    };
    let (x1, y1) = mean_of(0..tenth);
    let (x2, y2) = mean_of(bins - tenth..bins);
    let background = |x: f64| (y1 + (y2 - y1) * (x - x1) / (x2 - x1).max(1e-300)).max(0.0);
    let excess: Vec<f64> = (0..bins)
        .map(|i| density[i] - background(centre(i)))
        .collect();
    let peak = (0..bins)
        .max_by(|&a, &b| excess[a].total_cmp(&excess[b]))
        .unwrap_or(0);
    let half = excess[peak] / 2.0;
    let mut left = peak;
    while left > 0 && excess[left] > half {
        left -= 1;
    }
    let mut right = peak;
    while right + 1 < bins && excess[right] > half {
        right += 1;
    }
    let min_width = (0..bins).map(width).fold(f64::INFINITY, f64::min);
    let sigma = ((centre(right) - centre(left)) / 2.355)
        .max(0.5 * min_width)
        .min(0.5 * (hi - lo));
    let mean = centre(peak);
    let total: f64 = data.counts.iter().sum::<f64>().max(1.0);
    let signal: f64 = (0..bins)
        .map(|i| excess[i].max(0.0) * width(i))
        .sum::<f64>()
        .clamp(0.05 * total, 0.95 * total);
    let peaks = model
        .components
        .iter()
        .filter(|c| c.shape.is_peak())
        .count();
    let others = model.components.len() - peaks;
    let (peak_yield, other_yield) = match (peaks, others) {
        (0, o) => (0.0, total / o as f64),
        (p, 0) => (total / p as f64, 0.0),
        (p, o) => (signal / p as f64, (total - signal) / o as f64),
    };
    let span = hi - lo;
    let mut nth_peak = 0;
    for c in model.components.clone() {
        let set = |model: &mut Model,
                   k: usize,
                   value: f64,
                   step: f64,
                   lower: Option<f64>,
                   upper: Option<f64>| {
            let p = &mut model.params[c.params[k]];
            (p.value, p.step, p.lower, p.upper) = (value, step, lower, upper);
        };
        // A second peak starts wider than the first.
        let s = sigma * if nth_peak == 0 { 1.0 } else { 2.0 };
        let positive = (Some(1e-6 * span), Some(span));
        match &c.shape {
            Shape::Gauss => {
                set(model, 0, mean, 0.1 * s, Some(lo), Some(hi));
                set(model, 1, s, 0.1 * s, positive.0, positive.1);
            }
            Shape::BreitWigner | Shape::RelBreitWigner => {
                set(model, 0, mean, 0.1 * s, Some(lo), Some(hi));
                set(model, 1, 2.355 * s, 0.2 * s, positive.0, positive.1);
            }
            Shape::Voigt => {
                set(model, 0, mean, 0.1 * s, Some(lo), Some(hi));
                set(model, 1, s, 0.2 * s, positive.0, positive.1);
                set(model, 2, s, 0.2 * s, positive.0, positive.1);
            }
            Shape::CrystalBall | Shape::DoubleCrystalBall => {
                set(model, 0, mean, 0.1 * s, Some(lo), Some(hi));
                set(model, 1, s, 0.1 * s, positive.0, positive.1);
                for tail in 0..(c.params.len() - 2) / 2 {
                    set(model, 2 + 2 * tail, 1.5, 0.2, Some(0.05), Some(10.0));
                    set(model, 3 + 2 * tail, 5.0, 1.0, Some(1.01), Some(200.0));
                }
            }
            Shape::Exponential => {
                let slope = if y1 > 0.0 && y2 > 0.0 {
                    (y2 / y1).ln() / (x2 - x1).max(1e-300)
                } else {
                    0.0
                };
                set(model, 0, slope, 0.1 / span, None, None);
            }
            Shape::Chebyshev(order) => {
                for j in 0..usize::from(*order) {
                    let c1 = if j == 0 && y1 + y2 > 0.0 {
                        (y2 - y1) / (y2 + y1)
                    } else {
                        0.0
                    };
                    set(model, j, c1, 0.1, None, None);
                }
            }
            Shape::Expr(_) => {
                for j in 0..c.params.len() {
                    set(model, j, 1.0, 0.1, None, None);
                }
            }
        }
        let y = &mut model.params[c.yield_param];
        y.value = if c.shape.is_peak() {
            peak_yield
        } else {
            other_yield
        }
        .max(1.0);
        y.step = y.value.sqrt().max(1.0);
        y.lower = Some(0.0);
        if c.shape.is_peak() {
            nth_peak += 1;
        }
    }
}

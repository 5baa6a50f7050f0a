//! What a fit reads: a histogram's edges, contents and squared weights, checked.

use crate::error::Error;

/// A range written `LO:HI` (`80:100`).
pub fn parse_range(text: &str) -> Result<(f64, f64), Error> {
    let bad = || Error::Fit(format!("`{text}`: a range is LO:HI with LO < HI"));
    let (lo, hi) = text.split_once(':').ok_or_else(bad)?;
    let (lo, hi): (f64, f64) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(bad())
    }
}

/// The most bins a fitted histogram may have.
pub const MAX_BINS: usize = 1 << 20;

/// A histogram to fit: bin edges, contents (sums of weights) and sums of squared weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    edges: Vec<f64>,
    counts: Vec<f64>,
    sumw2: Option<Vec<f64>>,
}

impl Histogram {
    /// A histogram of counts (unweighted entries: the variance of a bin is its count).
    pub fn uniform(lo: f64, hi: f64, counts: Vec<f64>) -> Result<Self, Error> {
        let n = counts.len();
        if n == 0 || n > MAX_BINS {
            return Err(Error::Data(format!(
                "{n} bins: a histogram has 1 to {MAX_BINS}"
            )));
        }
        let edges = (0..=n)
            .map(|i| lo + (hi - lo) * i as f64 / n as f64)
            .collect();
        Self::new(edges, counts, None)
    }

    /// A histogram with any edges; `sumw2` for weighted entries.
    pub fn new(edges: Vec<f64>, counts: Vec<f64>, sumw2: Option<Vec<f64>>) -> Result<Self, Error> {
        if counts.is_empty() || counts.len() > MAX_BINS || edges.len() != counts.len() + 1 {
            return Err(Error::Data(format!(
                "{} edges for {} bins",
                edges.len(),
                counts.len()
            )));
        }
        if !edges.iter().all(|e| e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Data(
                "the edges must be finite and increasing".into(),
            ));
        }
        if !counts.iter().all(|c| c.is_finite()) {
            return Err(Error::Data("a bin's content is not a number".into()));
        }
        match &sumw2 {
            Some(w) if w.len() != counts.len() || !w.iter().all(|w| w.is_finite() && *w >= 0.0) => {
                return Err(Error::Data(
                    "the sums of squared weights must be one per bin, finite and not negative"
                        .into(),
                ));
            }
            None if counts.iter().any(|c| *c < 0.0) => {
                return Err(Error::Data(
                    "a histogram of counts has no negative bin (give the squared weights)".into(),
                ));
            }
            _ => {}
        }
        Ok(Self {
            edges,
            counts,
            sumw2,
        })
    }

    /// Fills `bins` uniform bins over [lo, hi) with `values` (unit weights).
    pub fn fill(
        lo: f64,
        hi: f64,
        bins: usize,
        values: impl IntoIterator<Item = f64>,
    ) -> Result<Self, Error> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::Data(format!("the range {lo}:{hi} is empty")));
        }
        let mut counts = vec![0.0; bins.clamp(1, MAX_BINS)];
        let n = counts.len();
        for v in values {
            if v >= lo && v < hi {
                let i = (((v - lo) / (hi - lo)) * n as f64) as usize;
                counts[i.min(n - 1)] += 1.0;
            }
        }
        Self::uniform(lo, hi, counts)
    }

    /// ALYX's histogram (from a query, a job or a notebook cell), its in-range bins.
    pub fn from_core(h: &alyx_core::histogram::Histogram) -> Result<Self, Error> {
        Self::new(h.binning.edges(), h.sum_w.clone(), Some(h.sum_w2.clone()))
    }

    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    /// Each bin's variance: Σw² when weighted, else its count.
    pub fn sumw2(&self) -> &[f64] {
        self.sumw2.as_deref().unwrap_or(&self.counts)
    }

    pub fn entries(&self) -> f64 {
        self.counts.iter().sum()
    }
}

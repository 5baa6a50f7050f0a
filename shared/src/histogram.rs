//! Weighted 1-D histograms: fixed or variable bins, underflow and overflow, Σw and Σw² per bin
//! (errors √Σw²), and merging of partial histograms (chunks, tasks, workers).
//!
//! `Histogram::from_lazy` fills one inside the polars engine — the rows are reduced to one row
//! per bin there, never shipped out — so it works the same on a laptop's dataset and on a
//! cluster's chunk.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Bin edges: `n` equal bins between `lo` and `hi`, or explicit increasing edges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Binning {
    Fixed { bins: usize, lo: f64, hi: f64 },
    Variable(Vec<f64>),
}

impl Binning {
    pub fn fixed(bins: usize, lo: f64, hi: f64) -> Result<Self> {
        // A finite width too: from −1e308 to 1e308 every value would fall in the first bin.
        if bins == 0 || bins > 1_000_000 || !(lo < hi) || !(hi - lo).is_finite() {
            return Err(Error::Invalid(format!(
                "invalid binning {bins} bins from {lo} to {hi}: need 1–1000000 bins and finite lo < hi"
            )));
        }
        Ok(Self::Fixed { bins, lo, hi })
    }

    pub fn variable(edges: Vec<f64>) -> Result<Self> {
        let increasing = edges.windows(2).all(|w| w[0] < w[1]);
        if edges.len() < 2
            || edges.len() > 1_000_001
            || !increasing
            || edges.iter().any(|e| !e.is_finite())
        {
            return Err(Error::Invalid(
                "bin edges must be at least two finite, strictly increasing numbers".into(),
            ));
        }
        Ok(Self::Variable(edges))
    }

    /// Parses `BINS:LO:HI` (as in `--histogram pt:50:0:10`, after the column).
    /// `BINS:LO:HI`, or variable bins as their edges `E1,E2,…`.
    pub fn parse(spec: &str) -> Result<Self> {
        if !spec.contains(':') && spec.contains(',') {
            let edges = spec
                .split(',')
                .map(|e| {
                    e.trim().parse::<f64>().map_err(|_| {
                        Error::Invalid(format!("histogram edges `{spec}`: `{e}` is not a number"))
                    })
                })
                .collect::<Result<Vec<f64>>>()?;
            return Self::variable(edges);
        }
        let parts: Vec<&str> = spec.split(':').collect();
        let [bins, lo, hi] = parts.as_slice() else {
            return Err(Error::Invalid(format!(
                "histogram binning `{spec}`: expected BINS:LO:HI"
            )));
        };
        let num = |s: &str| {
            s.trim().parse::<f64>().map_err(|_| {
                Error::Invalid(format!("histogram binning `{spec}`: `{s}` is not a number"))
            })
        };
        let bins = bins.trim().parse::<usize>().map_err(|_| {
            Error::Invalid(format!(
                "histogram binning `{spec}`: `{bins}` is not a bin count"
            ))
        })?;
        Self::fixed(bins, num(lo)?, num(hi)?)
    }

    pub fn bins(&self) -> usize {
        match self {
            Self::Fixed { bins, .. } => *bins,
            Self::Variable(edges) => edges.len() - 1,
        }
    }

    pub fn edges(&self) -> Vec<f64> {
        match self {
            Self::Fixed { bins, lo, hi } => (0..=*bins)
                .map(|i| lo + (hi - lo) * i as f64 / *bins as f64)
                .collect(),
            Self::Variable(edges) => edges.clone(),
        }
    }

    /// Bin of `x`: `None` for NaN, `Some(-1)` underflow, `Some(bins)` overflow.
    pub fn index(&self, x: f64) -> Option<i64> {
        if x.is_nan() {
            return None;
        }
        Some(match self {
            Self::Fixed { bins, lo, hi } => {
                if x < *lo {
                    -1
                } else if x >= *hi {
                    *bins as i64
                } else {
                    (((x - lo) / (hi - lo) * *bins as f64) as i64).min(*bins as i64 - 1)
                }
            }
            Self::Variable(edges) => edges.partition_point(|e| *e <= x) as i64 - 1,
        })
    }

    /// The same rule as `index`, as a polars expression on `x`.
    fn index_expr(&self, x: Expr) -> Expr {
        match self {
            Self::Fixed { bins, lo, hi } => {
                let last = *bins as i64 - 1;
                let scaled = ((x.clone() - lit(*lo)) / lit(hi - lo) * lit(*bins as f64))
                    .cast(DataType::Int64);
                when(x.clone().lt(lit(*lo)))
                    .then(lit(-1i64))
                    .when(x.gt_eq(lit(*hi)))
                    .then(lit(*bins as i64))
                    // Rounding can put a value just below `hi` one bin too far.
                    .when(scaled.clone().gt(lit(last)))
                    .then(lit(last))
                    .otherwise(scaled)
            }
            Self::Variable(edges) => {
                let above: Vec<Expr> = edges
                    .iter()
                    .map(|e| x.clone().gt_eq(lit(*e)).cast(DataType::Int64))
                    .collect();
                let count = above
                    .into_iter()
                    .reduce(|a, b| a + b)
                    .unwrap_or_else(|| lit(0i64));
                count - lit(1i64)
            }
        }
    }
}

/// The bin index polars gives a null or NaN value.
const MISSING: i64 = -2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub binning: Binning,
    /// Σw per bin.
    pub sum_w: Vec<f64>,
    /// Σw² per bin (the error of a bin is √Σw²).
    pub sum_w2: Vec<f64>,
    /// Entries (unweighted) per bin.
    pub entries: Vec<u64>,
    pub underflow: f64,
    pub overflow: f64,
    /// Entries whose value was missing (null or NaN).
    pub missing: u64,
}

impl Histogram {
    pub fn new(binning: Binning) -> Self {
        let n = binning.bins();
        Self {
            binning,
            sum_w: vec![0.0; n],
            sum_w2: vec![0.0; n],
            entries: vec![0; n],
            underflow: 0.0,
            overflow: 0.0,
            missing: 0,
        }
    }

    pub fn fill(&mut self, x: f64, w: f64) {
        match self.binning.index(x) {
            None => self.missing += 1,
            Some(-1) => self.underflow += w,
            Some(i) if i as usize >= self.sum_w.len() => self.overflow += w,
            Some(i) => {
                let i = i as usize;
                self.sum_w[i] += w;
                self.sum_w2[i] += w * w;
                self.entries[i] += 1;
            }
        }
    }

    /// √Σw² per bin.
    pub fn errors(&self) -> Vec<f64> {
        self.sum_w2.iter().map(|v| v.sqrt()).collect()
    }

    /// Adds another histogram of the same binning (a partial result).
    pub fn merge(&mut self, other: &Histogram) -> Result<()> {
        let n = self.sum_w.len();
        if self.binning != other.binning
            || [other.sum_w.len(), other.sum_w2.len(), other.entries.len()] != [n; 3]
            || [self.sum_w2.len(), self.entries.len()] != [n; 2]
        {
            return Err(Error::Invalid(
                "cannot merge histograms with different binnings".into(),
            ));
        }
        for i in 0..n {
            self.sum_w[i] += other.sum_w[i];
            self.sum_w2[i] += other.sum_w2[i];
            self.entries[i] = self.entries[i].saturating_add(other.entries[i]);
        }
        self.underflow += other.underflow;
        self.overflow += other.overflow;
        self.missing = self.missing.saturating_add(other.missing);
        Ok(())
    }

    /// Σw inside the bins.
    pub fn integral(&self) -> f64 {
        self.sum_w.iter().sum()
    }

    /// Centre of the fullest bin.
    pub fn mode(&self) -> Option<f64> {
        let edges = self.binning.edges();
        let (i, _) = self
            .sum_w
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        Some(0.5 * (edges[i] + edges[i + 1]))
    }

    /// Adds a reduced bin: `count` entries with Σw `s` and Σw² `s2` in bin `bin` (as
    /// [`Binning::index`] numbers them; `None` or -2 for missing values).
    pub fn add_bin(&mut self, bin: Option<i64>, count: u64, s: f64, s2: f64) {
        match bin {
            None | Some(MISSING) => self.missing += count,
            Some(i) if i < 0 => self.underflow += s,
            Some(i) if i as usize >= self.sum_w.len() => self.overflow += s,
            Some(i) => {
                let i = i as usize;
                self.sum_w[i] += s;
                self.sum_w2[i] += s2;
                self.entries[i] += count;
            }
        }
    }

    /// Fills from column `value` (and optional `weight`) of `lf`, reduced inside polars.
    pub fn from_lazy(
        lf: LazyFrame,
        value: &str,
        weight: Option<&str>,
        binning: Binning,
    ) -> Result<Self> {
        let x = col(value).cast(DataType::Float64);
        let w = weight.map_or(lit(1.0f64), |w| col(w).cast(DataType::Float64));
        let valid = col("x").is_not_null().and(col("x").is_not_nan());
        let df = lf
            .select([x.alias("x"), w.alias("w")])
            .with_column(
                when(valid)
                    .then(binning.index_expr(col("x")))
                    .otherwise(lit(MISSING))
                    .alias("bin"),
            )
            .group_by([col("bin")])
            .agg([
                len().alias("n"),
                col("w").sum().alias("sw"),
                (col("w") * col("w")).sum().alias("sw2"),
            ])
            .collect()
            .map_err(|e| Error::Invalid(format!("cannot histogram `{value}`: {e}")))?;
        let mut h = Self::new(binning);
        let bins = df.column("bin")?.i64()?.clone();
        let n = df.column("n")?.cast(&DataType::UInt64)?;
        let n = n.u64()?;
        let sw = df.column("sw")?.f64()?.clone();
        let sw2 = df.column("sw2")?.f64()?.clone();
        for k in 0..df.height() {
            let (count, s, s2) = (
                n.get(k).unwrap_or(0),
                sw.get(k).unwrap_or(0.0),
                sw2.get(k).unwrap_or(0.0),
            );
            h.add_bin(bins.get(k), count, s, s2);
        }
        Ok(h)
    }

    /// The histogram as a table: bin edges, Σw, error, entries (CSV/Parquet export, plots).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let edges = self.binning.edges();
        let n = self.sum_w.len();
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("lo".into(), edges[..n].to_vec()),
                Column::new("hi".into(), edges[1..].to_vec()),
                Column::new("sum_w".into(), self.sum_w.clone()),
                Column::new("error".into(), self.errors()),
                Column::new("entries".into(), self.entries.clone()),
            ],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(xs: &[f64], ws: &[f64]) -> LazyFrame {
        DataFrame::new(
            xs.len(),
            vec![
                Column::new("value".into(), xs.to_vec()),
                Column::new("weight".into(), ws.to_vec()),
            ],
        )
        .expect("frame")
        .lazy()
    }

    #[test]
    fn known_values_land_in_their_bins() {
        let mut h = Histogram::new(Binning::fixed(4, 0.0, 4.0).expect("binning"));
        for (x, w) in [
            (-1.0, 1.0),
            (0.0, 1.0),
            (0.5, 2.0),
            (3.999, 1.0),
            (4.0, 3.0),
            (f64::NAN, 1.0),
        ] {
            h.fill(x, w);
        }
        assert_eq!(h.sum_w, [3.0, 0.0, 0.0, 1.0]);
        assert_eq!(h.errors()[0], 5.0f64.sqrt());
        assert_eq!((h.underflow, h.overflow, h.missing), (1.0, 3.0, 1));
        let v = Binning::variable(vec![0.0, 1.0, 10.0]).expect("edges");
        assert_eq!(v.index(0.999), Some(0));
        assert_eq!(v.index(1.0), Some(1));
        assert_eq!(v.index(10.0), Some(2));
        assert_eq!(v.index(-0.1), Some(-1));
    }

    #[test]
    fn bad_binnings_are_refused_with_a_reason() {
        assert!(Binning::fixed(0, 0.0, 1.0).is_err());
        assert!(Binning::fixed(10, 1.0, 1.0).is_err());
        assert!(Binning::variable(vec![0.0, 2.0, 1.0]).is_err());
        let err = Binning::parse("50:0").expect_err("two fields");
        assert!(err.to_string().contains("BINS:LO:HI"), "{err}");
        assert!(Binning::parse("x:0:1").is_err());
        assert_eq!(
            Binning::parse("50:0:10").expect("ok"),
            Binning::Fixed {
                bins: 50,
                lo: 0.0,
                hi: 10.0
            }
        );
    }

    fn binning() -> impl Strategy<Value = Binning> {
        prop_oneof![
            (1usize..40, -50.0f64..0.0, 0.1f64..50.0).prop_map(|(n, lo, width)| Binning::Fixed {
                bins: n,
                lo,
                hi: lo + width
            }),
            prop::collection::vec(0.01f64..5.0, 1..12).prop_map(|steps| {
                let mut e = vec![-10.0];
                for s in steps {
                    let last = *e.last().unwrap_or(&0.0);
                    e.push(last + s);
                }
                Binning::Variable(e)
            }),
        ]
    }

    proptest! {
        #[test]
        fn engine_histogram_equals_filling_one_by_one(
            b in binning(),
            data in prop::collection::vec((-60.0f64..60.0, 0.0f64..3.0), 0..300),
        ) {
            let (xs, ws): (Vec<f64>, Vec<f64>) = data.iter().copied().unzip();
            let mut direct = Histogram::new(b.clone());
            for (x, w) in &data {
                direct.fill(*x, *w);
            }
            let engine = Histogram::from_lazy(frame(&xs, &ws), "value", Some("weight"), b).expect("engine");
            prop_assert_eq!(&engine.entries, &direct.entries);
            for i in 0..direct.sum_w.len() {
                prop_assert!((engine.sum_w[i] - direct.sum_w[i]).abs() < 1e-9);
                prop_assert!((engine.sum_w2[i] - direct.sum_w2[i]).abs() < 1e-9);
            }
            prop_assert!((engine.underflow - direct.underflow).abs() < 1e-9);
            prop_assert!((engine.overflow - direct.overflow).abs() < 1e-9);
            // Nothing is lost: Σw in bins + under + overflow = Σw of everything.
            let total: f64 = ws.iter().sum();
            prop_assert!((engine.integral() + engine.underflow + engine.overflow - total).abs() < 1e-6);
        }

        #[test]
        fn merging_partial_histograms_equals_one_histogram_of_everything(
            b in binning(),
            a in prop::collection::vec(-20.0f64..20.0, 0..100),
            c in prop::collection::vec(-20.0f64..20.0, 0..100),
        ) {
            let fill = |xs: &[f64]| {
                let mut h = Histogram::new(b.clone());
                xs.iter().for_each(|x| h.fill(*x, 1.0));
                h
            };
            let mut merged = fill(&a);
            merged.merge(&fill(&c)).expect("same binning");
            let all: Vec<f64> = a.iter().chain(&c).copied().collect();
            prop_assert_eq!(merged, fill(&all));
        }
    }
}

//! Weighted 1-D and 2-D histograms: fixed or variable bins, underflow and overflow, Σw and Σw²
//! per bin (errors √Σw²), and merging of partial histograms (chunks, tasks, workers).
//!
//! `alyx_query::HistogramFrame` fills one inside the polars engine, where the rows are reduced
//! to one row per bin.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most bins a histogram may have.
pub const MAX_BINS: usize = 1_000_000;

/// Bin edges: `n` equal bins between `lo` and `hi`, or explicit increasing edges. Read from
/// JSON (a notebook's outputs, a job's results) through the same checks as [`Binning::fixed`]
/// and [`Binning::variable`]: a peer cannot hand over a binning of 10¹² bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BinningFields")]
pub enum Binning {
    Fixed { bins: usize, lo: f64, hi: f64 },
    Variable(Vec<f64>),
}

/// A binning as written, before its checks.
#[derive(Deserialize)]
enum BinningFields {
    Fixed { bins: usize, lo: f64, hi: f64 },
    Variable(Vec<f64>),
}

impl TryFrom<BinningFields> for Binning {
    type Error = Error;

    fn try_from(b: BinningFields) -> Result<Self> {
        match b {
            BinningFields::Fixed { bins, lo, hi } => Self::fixed(bins, lo, hi),
            BinningFields::Variable(edges) => Self::variable(edges),
        }
    }
}

impl Binning {
    pub fn fixed(bins: usize, lo: f64, hi: f64) -> Result<Self> {
        // A finite width too: from −1e308 to 1e308 every value would fall in the first bin.
        if bins == 0 || bins > MAX_BINS || !(lo < hi) || !(hi - lo).is_finite() {
            return Err(Error::Histogram(format!(
                "invalid binning {bins} bins from {lo} to {hi}: need 1–{MAX_BINS} bins and finite lo < hi"
            )));
        }
        Ok(Self::Fixed { bins, lo, hi })
    }

    pub fn variable(edges: Vec<f64>) -> Result<Self> {
        let increasing = edges.windows(2).all(|w| w[0] < w[1]);
        if edges.len() < 2
            || edges.len() > MAX_BINS + 1
            || !increasing
            || edges.iter().any(|e| !e.is_finite())
        {
            return Err(Error::Histogram(
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
                        Error::Histogram(format!("histogram edges `{spec}`: `{e}` is not a number"))
                    })
                })
                .collect::<Result<Vec<f64>>>()?;
            return Self::variable(edges);
        }
        let parts: Vec<&str> = spec.split(':').collect();
        let [bins, lo, hi] = parts.as_slice() else {
            return Err(Error::Histogram(format!(
                "histogram binning `{spec}`: expected BINS:LO:HI"
            )));
        };
        let num = |s: &str| {
            s.trim().parse::<f64>().map_err(|_| {
                Error::Histogram(format!("histogram binning `{spec}`: `{s}` is not a number"))
            })
        };
        let bins = bins.trim().parse::<usize>().map_err(|_| {
            Error::Histogram(format!(
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
}

/// The bin index polars gives a null or NaN value.
const MISSING: i64 = -2;

/// A histogram's arrays hold one value per bin of its binning; one read from JSON is checked
/// for that (see [`Histogram::from_parts`]), so code may index them by bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HistogramFields")]
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

/// A histogram as written, before its checks.
#[derive(Deserialize)]
struct HistogramFields {
    binning: Binning,
    sum_w: Vec<f64>,
    sum_w2: Vec<f64>,
    entries: Vec<u64>,
    underflow: f64,
    overflow: f64,
    missing: u64,
}

impl TryFrom<HistogramFields> for Histogram {
    type Error = Error;

    fn try_from(h: HistogramFields) -> Result<Self> {
        Histogram::from_parts(h.binning, h.sum_w, h.sum_w2, h.entries).map(|mut made| {
            made.underflow = h.underflow;
            made.overflow = h.overflow;
            made.missing = h.missing;
            made
        })
    }
}

impl Histogram {
    /// A histogram of `binning` with these per-bin sums (no under- or overflow), refused
    /// unless each array holds one value per bin.
    pub fn from_parts(
        binning: Binning,
        sum_w: Vec<f64>,
        sum_w2: Vec<f64>,
        entries: Vec<u64>,
    ) -> Result<Self> {
        let n = binning.bins();
        if [sum_w.len(), sum_w2.len(), entries.len()] != [n; 3] {
            return Err(Error::Histogram(format!(
                "a histogram of {n} bins came with {} sums, {} squared sums and {} counts",
                sum_w.len(),
                sum_w2.len(),
                entries.len()
            )));
        }
        Ok(Self {
            binning,
            sum_w,
            sum_w2,
            entries,
            underflow: 0.0,
            overflow: 0.0,
            missing: 0,
        })
    }

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
            return Err(Error::Histogram(
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
}

/// A weighted 2-D histogram (an η–φ occupancy map, the Armenteros–Podolanski plot): Σw, Σw²
/// and entries per cell, row by row (`y` outer, `x` inner). Like [`Histogram`], one read from
/// JSON is checked against its binnings, and the cells of both binnings together are at most
/// [`MAX_BINS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Histogram2Fields")]
pub struct Histogram2 {
    pub x: Binning,
    pub y: Binning,
    /// Σw per cell, index `iy * nx + ix`.
    pub sum_w: Vec<f64>,
    pub sum_w2: Vec<f64>,
    pub entries: Vec<u64>,
    /// Σw of entries outside either range.
    pub outside: f64,
    /// Entries with either value missing.
    pub missing: u64,
}

/// A 2-D histogram as written, before its checks.
#[derive(Deserialize)]
struct Histogram2Fields {
    x: Binning,
    y: Binning,
    sum_w: Vec<f64>,
    sum_w2: Vec<f64>,
    entries: Vec<u64>,
    outside: f64,
    missing: u64,
}

impl TryFrom<Histogram2Fields> for Histogram2 {
    type Error = Error;

    fn try_from(h: Histogram2Fields) -> Result<Self> {
        let mut made = Histogram2::new(h.x, h.y)?;
        let n = made.sum_w.len();
        if [h.sum_w.len(), h.sum_w2.len(), h.entries.len()] != [n; 3] {
            return Err(Error::Histogram(format!(
                "a 2-D histogram of {n} cells came with {} sums, {} squared sums and {} counts",
                h.sum_w.len(),
                h.sum_w2.len(),
                h.entries.len()
            )));
        }
        (made.sum_w, made.sum_w2, made.entries) = (h.sum_w, h.sum_w2, h.entries);
        (made.outside, made.missing) = (h.outside, h.missing);
        Ok(made)
    }
}

impl Histogram2 {
    /// An empty histogram, refused when its cells would exceed [`MAX_BINS`].
    pub fn new(x: Binning, y: Binning) -> Result<Self> {
        let n = x
            .bins()
            .checked_mul(y.bins())
            .filter(|n| *n <= MAX_BINS)
            .ok_or_else(|| {
                Error::Histogram(format!(
                    "{} × {} cells: a 2-D histogram has at most {MAX_BINS}",
                    x.bins(),
                    y.bins()
                ))
            })?;
        Ok(Self {
            x,
            y,
            sum_w: vec![0.0; n],
            sum_w2: vec![0.0; n],
            entries: vec![0; n],
            outside: 0.0,
            missing: 0,
        })
    }

    pub fn fill(&mut self, x: f64, y: f64, w: f64) {
        let (ix, iy) = (self.x.index(x), self.y.index(y));
        self.add_bin(ix, iy, 1, w, w * w);
    }

    /// Adds a reduced cell: `count` entries with Σw `s` and Σw² `s2` in bins `ix`, `iy` (as
    /// [`Binning::index`] numbers them; `None` or -2 for missing values).
    pub fn add_bin(&mut self, ix: Option<i64>, iy: Option<i64>, count: u64, s: f64, s2: f64) {
        let (nx, ny) = (self.x.bins() as i64, self.y.bins() as i64);
        match (ix, iy) {
            (None | Some(MISSING), _) | (_, None | Some(MISSING)) => {
                self.missing = self.missing.saturating_add(count)
            }
            (Some(ix), Some(iy)) if (0..nx).contains(&ix) && (0..ny).contains(&iy) => {
                let i = (iy * nx + ix) as usize;
                self.sum_w[i] += s;
                self.sum_w2[i] += s2;
                self.entries[i] = self.entries[i].saturating_add(count);
            }
            _ => self.outside += s,
        }
    }

    /// Adds another histogram of the same binnings (a partial result).
    pub fn merge(&mut self, other: &Histogram2) -> Result<()> {
        if self.x != other.x || self.y != other.y || self.sum_w.len() != other.sum_w.len() {
            return Err(Error::Histogram(
                "cannot merge 2-D histograms with different binnings".into(),
            ));
        }
        for i in 0..self.sum_w.len() {
            self.sum_w[i] += other.sum_w[i];
            self.sum_w2[i] += other.sum_w2[i];
            self.entries[i] = self.entries[i].saturating_add(other.entries[i]);
        }
        self.outside += other.outside;
        self.missing = self.missing.saturating_add(other.missing);
        Ok(())
    }

    /// Σw of cell (`ix`, `iy`); 0 outside.
    pub fn at(&self, ix: usize, iy: usize) -> f64 {
        if ix >= self.x.bins() {
            return 0.0;
        }
        self.sum_w
            .get(iy * self.x.bins() + ix)
            .copied()
            .unwrap_or(0.0)
    }

    /// Σw inside the cells.
    pub fn integral(&self) -> f64 {
        self.sum_w.iter().sum()
    }

    /// The fullest cell's Σw (0 when empty).
    pub fn max(&self) -> f64 {
        self.sum_w.iter().copied().fold(0.0, f64::max)
    }

    /// The projection on x: a 1-D histogram of the entries inside the y range (those below or
    /// above it are not in the projection, as ROOT's `ProjectionX` over the y range).
    pub fn projection_x(&self) -> Histogram {
        let nx = self.x.bins();
        let mut h = Histogram::new(self.x.clone());
        for (i, ((s, s2), n)) in self
            .sum_w
            .iter()
            .zip(&self.sum_w2)
            .zip(&self.entries)
            .enumerate()
        {
            h.add_bin(Some((i % nx) as i64), *n, *s, *s2);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn histograms_read_from_json_are_checked_like_built_ones() {
        let mut h = Histogram::new(Binning::fixed(3, 0.0, 3.0).expect("binning"));
        h.fill(1.5, 2.0);
        h.fill(-1.0, 1.0);
        let json = serde_json::to_string(&h).expect("json");
        let back: Histogram = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, h);
        let bad = [
            json.replace("\"bins\":3", "\"bins\":1000000000000"),
            json.replace("\"bins\":3", "\"bins\":0"),
            json.replace("\"sum_w\":[0.0,2.0,0.0]", "\"sum_w\":[0.0]"),
            json.replace("\"entries\":[0,1,0]", "\"entries\":[0,1,0,4]"),
            r#"{"binning":{"Variable":[1.0,0.0]},"sum_w":[1.0],"sum_w2":[1.0],"entries":[1],"underflow":0,"overflow":0,"missing":0}"#.into(),
        ];
        for text in bad {
            assert_ne!(text, json, "the test's replacement must hit");
            serde_json::from_str::<Histogram>(&text).expect_err(&text);
        }
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

    #[test]
    fn a_2d_histogram_is_bounded_and_checked_when_read() {
        let b = |n| Binning::fixed(n, 0.0, 1.0).expect("binning");
        let err = Histogram2::new(b(1001), b(1000)).expect_err("too many cells");
        assert!(err.to_string().contains("at most"), "{err}");
        Histogram2::new(b(MAX_BINS), b(MAX_BINS)).expect_err("no overflow either");
        let mut h = Histogram2::new(b(2), b(3)).expect("fits");
        h.fill(0.75, 0.5, 2.0);
        h.fill(0.75, 1.5, 1.0);
        h.fill(f64::NAN, 0.5, 1.0);
        assert_eq!(h.at(1, 1), 2.0);
        assert_eq!((h.outside, h.missing, h.max()), (1.0, 1, 2.0));
        let json = serde_json::to_string(&h).expect("json");
        assert_eq!(serde_json::from_str::<Histogram2>(&json).expect("reads"), h);
        let bad = [
            json.replacen("\"bins\":2", "\"bins\":2000000", 1),
            json.replacen("\"entries\":[", "\"entries\":[7,", 1),
        ];
        for text in bad {
            assert_ne!(text, json, "the test's replacement must hit");
            serde_json::from_str::<Histogram2>(&text).expect_err(&text);
        }
    }

    proptest! {
        #[test]
        fn a_2d_histogram_projects_onto_the_1d_histogram_of_its_x_inside_y(
            bx in binning(),
            by in binning(),
            points in prop::collection::vec((-20.0f64..20.0, -20.0f64..20.0, 0.1f64..3.0), 0..200),
        ) {
            let mut h2 = Histogram2::new(bx.clone(), by.clone()).expect("small");
            let mut h1 = Histogram::new(bx.clone());
            let mut halves = [Histogram2::new(bx.clone(), by.clone()).expect("small"), Histogram2::new(bx, by.clone()).expect("small")];
            for (k, (x, y, w)) in points.iter().enumerate() {
                h2.fill(*x, *y, *w);
                halves[k % 2].fill(*x, *y, *w);
                if matches!(by.index(*y), Some(i) if i >= 0 && (i as usize) < by.bins()) {
                    h1.fill(*x, *w);
                }
            }
            let p = h2.projection_x();
            prop_assert_eq!(&p.entries, &h1.entries);
            for (a, b) in p.sum_w.iter().zip(&h1.sum_w) {
                prop_assert!((a - b).abs() < 1e-9);
            }
            let total: f64 = points.iter().map(|p| p.2).sum();
            prop_assert!((h2.integral() + h2.outside - total).abs() < 1e-9);
            let [mut a, b] = halves;
            a.merge(&b).expect("same binnings");
            prop_assert_eq!(a.entries, h2.entries);
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

//! A histogram as a table, for CSV and Parquet export and plots.

use alyx_core::histogram::Histogram;
use polars::prelude::*;

use crate::error::Result;

/// A histogram's polars side.
pub trait HistogramFrame {
    /// The histogram as a table: bin edges, Σw, error, entries.
    fn to_frame(&self) -> Result<DataFrame>;
}

impl HistogramFrame for Histogram {
    fn to_frame(&self) -> Result<DataFrame> {
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

//! Fits of histograms, as physicists make them with ROOT or iminuit: binned likelihood
//! (extended or not, weighted histograms scaled to their effective counts) and χ² (Neyman,
//! Pearson), models summed from peak and background shapes with yields, parameters free, fixed
//! or bounded, errors from the Hessian and from profiling (MINOS), and the fit's quality.
//!
//! ```
//! use alyx_fit::{fit, FitOptions, Histogram, Model};
//! // Entries of a peak at 91 over a flat background, in 40 bins from 81 to 101.
//! let counts = (0..40).map(|i| {
//!     let x = 81.25 + 0.5 * i as f64;
//!     (20.0 + 400.0 * (-0.5 * ((x - 91.0) / 2.0f64).powi(2)).exp()).round()
//! });
//! let h = Histogram::uniform(81.0, 101.0, counts.collect()).unwrap();
//! let r = fit(&h, &Model::parse("gauss+cheb0").unwrap(), &FitOptions::default()).unwrap();
//! assert!((r.param("mean").unwrap().value - 91.0).abs() < 0.05);
//! ```

mod error;
pub mod expr;
pub mod figure;
mod fit;
mod histogram;
mod minuit;
pub mod model;
pub mod shapes;
#[cfg(test)]
mod tests;

pub use error::Error;
pub use fit::{FitBin, FitOptions, FitResult, Method, ParamResult, fit, starting_params};
pub use histogram::{Histogram, MAX_BINS, parse_range};
pub use model::Model;

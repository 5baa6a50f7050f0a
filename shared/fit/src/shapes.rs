//! The shapes a model sums, each as its integral over bins: analytic where one exists
//! (Gaussian, Breit–Wigner, Crystal Ball, exponential, Chebyshev), Gauss–Legendre quadrature
//! elsewhere (relativistic Breit–Wigner, Voigtian, user expressions). Shapes are unnormalised;
//! the model normalises each over the fit range.

use std::f64::consts::{PI, SQRT_2};

use errorfunctions::ComplexErrorFunctions;
use num_complex::Complex64;
use statrs::function::erf::erf;

use crate::expr::Expr;

#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// mean, sigma
    Gauss,
    /// Non-relativistic (Cauchy): mass, width (FWHM)
    BreitWigner,
    /// 1 / ((x² − M²)² + M²Γ²): mass, width
    RelBreitWigner,
    /// Breit–Wigner ⊗ Gaussian: mean, width (the Breit–Wigner's FWHM), sigma
    Voigt,
    /// Gaussian core, power-law tail on the low side: mean, sigma, alpha, n
    CrystalBall,
    /// Power-law tails on both sides: mean, sigma, alpha_lo, n_lo, alpha_hi, n_hi
    DoubleCrystalBall,
    /// exp(slope · x)
    Exponential,
    /// 1 + Σ c_k T_k(t), t the range mapped to [−1, 1]: order 0 to 5
    Chebyshev(u8),
    /// A user's expression of x
    Expr(Expr),
}

impl Shape {
    /// The shape's parameters' base names.
    pub fn params(&self) -> Vec<String> {
        let names: &[&str] = match self {
            Shape::Gauss => &["mean", "sigma"],
            Shape::BreitWigner | Shape::RelBreitWigner => &["mass", "width"],
            Shape::Voigt => &["mean", "width", "sigma"],
            Shape::CrystalBall => &["mean", "sigma", "alpha", "n"],
            Shape::DoubleCrystalBall => &["mean", "sigma", "alpha_lo", "n_lo", "alpha_hi", "n_hi"],
            Shape::Exponential => &["slope"],
            Shape::Chebyshev(order) => {
                return (1..=*order).map(|k| format!("c{k}")).collect();
            }
            Shape::Expr(e) => return e.params().to_vec(),
        };
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether the shape is a peak (a signal) rather than a background.
    pub fn is_peak(&self) -> bool {
        !matches!(
            self,
            Shape::Exponential | Shape::Chebyshev(_) | Shape::Expr(_)
        )
    }

    /// The density at `x` (unnormalised) over the fit range `range`.
    pub fn density(&self, p: &[f64], x: f64, range: (f64, f64)) -> f64 {
        match self {
            Shape::Gauss => (-0.5 * ((x - p[0]) / p[1]).powi(2)).exp(),
            Shape::BreitWigner => 1.0 / ((x - p[0]).powi(2) + 0.25 * p[1] * p[1]),
            Shape::RelBreitWigner => {
                let (m2, mg) = (p[0] * p[0], p[0] * p[1]);
                1.0 / ((x * x - m2).powi(2) + mg * mg)
            }
            Shape::Voigt => voigt(x - p[0], p[2], 0.5 * p[1]),
            Shape::CrystalBall => crystal_ball(x, p[0], p[1], (p[2], p[3]), None),
            Shape::DoubleCrystalBall => {
                crystal_ball(x, p[0], p[1], (p[2], p[3]), Some((p[4], p[5])))
            }
            Shape::Exponential => (p[0] * (x - range.0)).exp(),
            Shape::Chebyshev(order) => {
                let t = to_unit(x, range);
                let (mut t0, mut t1) = (1.0, t);
                let mut sum = 1.0;
                for k in 1..=usize::from(*order) {
                    sum += p[k - 1] * t1;
                    (t0, t1) = (t1, 2.0 * t * t1 - t0);
                }
                sum
            }
            Shape::Expr(e) => e.eval(x, p),
        }
    }

    /// The integral of the density over [a, b].
    pub fn integral(&self, p: &[f64], a: f64, b: f64, range: (f64, f64)) -> f64 {
        match self {
            Shape::Gauss => {
                let (m, s) = (p[0], p[1]);
                s * (PI / 2.0).sqrt() * (erf((b - m) / (SQRT_2 * s)) - erf((a - m) / (SQRT_2 * s)))
            }
            Shape::BreitWigner => {
                let (m, half) = (p[0], 0.5 * p[1]);
                (((b - m) / half).atan() - ((a - m) / half).atan()) / half
            }
            Shape::CrystalBall => cb_integral(a, b, p[0], p[1], (p[2], p[3]), None),
            Shape::DoubleCrystalBall => {
                cb_integral(a, b, p[0], p[1], (p[2], p[3]), Some((p[4], p[5])))
            }
            Shape::Exponential => {
                let c = p[0];
                let (ea, eb) = (c * (a - range.0), c * (b - range.0));
                if (c * (b - a)).abs() < 1e-8 {
                    (b - a) * (0.5 * (ea + eb)).exp()
                } else {
                    (eb.exp() - ea.exp()) / c
                }
            }
            Shape::Chebyshev(order) => {
                let (ta, tb) = (to_unit(a, range), to_unit(b, range));
                let half = 0.5 * (range.1 - range.0);
                let mut sum = tb - ta;
                for k in 1..=usize::from(*order) {
                    sum += p[k - 1] * (cheb_antiderivative(k, tb) - cheb_antiderivative(k, ta));
                }
                sum * half
            }
            Shape::RelBreitWigner | Shape::Voigt | Shape::Expr(_) => {
                let scale = self.scale(p).unwrap_or(b - a);
                let pieces = ((4.0 * (b - a) / scale).ceil() as usize).clamp(1, 32);
                let h = (b - a) / pieces as f64;
                (0..pieces)
                    .map(|i| {
                        let lo = a + h * i as f64;
                        gauss_legendre(|x| self.density(p, x, range), lo, lo + h)
                    })
                    .sum()
            }
        }
    }

    /// The width of the shape's features, for quadrature.
    fn scale(&self, p: &[f64]) -> Option<f64> {
        match self {
            Shape::RelBreitWigner => Some(p[1].abs()),
            Shape::Voigt => Some(p[1].abs().max(p[2].abs())),
            _ => None,
        }
        .filter(|s| *s > 0.0)
    }
}

fn to_unit(x: f64, (lo, hi): (f64, f64)) -> f64 {
    (2.0 * x - lo - hi) / (hi - lo)
}

/// ∫ T_k(t) dt.
fn cheb_antiderivative(k: usize, t: f64) -> f64 {
    let tn = |n: usize| (n as f64 * t.clamp(-1.0, 1.0).acos()).cos();
    match k {
        0 => t,
        1 => 0.5 * t * t,
        _ => 0.5 * (tn(k + 1) / (k + 1) as f64 - tn(k - 1) / (k - 1) as f64),
    }
}

/// The Voigt profile: a Gaussian of `sigma` convolved with a Cauchy of half width `gamma`,
/// normalised to one.
pub fn voigt(dx: f64, sigma: f64, gamma: f64) -> f64 {
    if sigma <= 0.0 {
        return gamma / PI / (dx * dx + gamma * gamma);
    }
    let z = Complex64::new(dx, gamma.max(0.0)) / (sigma * SQRT_2);
    z.w().re / (sigma * (2.0 * PI).sqrt())
}

fn crystal_ball(x: f64, m: f64, s: f64, lo: (f64, f64), hi: Option<(f64, f64)>) -> f64 {
    let t = (x - m) / s;
    let tail = |t: f64, (alpha, n): (f64, f64)| {
        let alpha = alpha.abs();
        let a = (n / alpha).powf(n) * (-0.5 * alpha * alpha).exp();
        a * (n / alpha - alpha - t).powf(-n)
    };
    if t < -lo.0.abs() {
        tail(t, lo)
    } else if let Some(hi) = hi.filter(|h| t > h.0.abs()) {
        tail(-t, hi)
    } else {
        (-0.5 * t * t).exp()
    }
}

/// ∫ of a Crystal Ball over [a, b]: the power-law tails and the Gaussian core analytically.
fn cb_integral(a: f64, b: f64, m: f64, s: f64, lo: (f64, f64), hi: Option<(f64, f64)>) -> f64 {
    let (ta, tb) = ((a - m) / s, (b - m) / s);
    let t_lo = -lo.0.abs();
    let t_hi = hi.map_or(f64::INFINITY, |h| h.0.abs());
    // ∫ over t of the low tail from u to v (both ≤ t_lo).
    let tail = |u: f64, v: f64, (alpha, n): (f64, f64)| {
        let alpha = alpha.abs();
        let a = (n / alpha).powf(n) * (-0.5 * alpha * alpha).exp();
        let b = n / alpha - alpha;
        if (n - 1.0).abs() < 1e-9 {
            a * ((b - u).ln() - (b - v).ln())
        } else {
            a / (n - 1.0) * ((b - v).powf(1.0 - n) - (b - u).powf(1.0 - n))
        }
    };
    let gauss = |u: f64, v: f64| (PI / 2.0).sqrt() * (erf(v / SQRT_2) - erf(u / SQRT_2));
    let mut sum = 0.0;
    if ta < t_lo {
        sum += tail(ta, tb.min(t_lo), lo);
    }
    let (ga, gb) = (ta.max(t_lo), tb.min(t_hi));
    if gb > ga {
        sum += gauss(ga, gb);
    }
    if let Some(hi) = hi
        && tb > t_hi
    {
        // The high tail mirrors the low one: t → −t.
        sum += tail(-tb, -(ta.max(t_hi)), hi);
    }
    sum * s
}

/// 10-point Gauss–Legendre quadrature over [a, b].
fn gauss_legendre(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const NODES: [(f64, f64); 5] = [
        (0.148_874_338_981_631_2, 0.295_524_224_714_752_9),
        (0.433_395_394_129_247_2, 0.269_266_719_309_996_4),
        (0.679_409_568_299_024_4, 0.219_086_362_515_982_04),
        (0.865_063_366_688_984_5, 0.149_451_349_150_580_6),
        (0.973_906_528_517_171_7, 0.066_671_344_308_688_14),
    ];
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    half * NODES
        .iter()
        .map(|(x, w)| w * (f(mid - half * x) + f(mid + half * x)))
        .sum::<f64>()
}

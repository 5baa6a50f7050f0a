//! Minimisation with MINUIT's error analysis: parameters bounded by MINUIT's transformations,
//! a quasi-Newton search (argmin's BFGS with a Moré–Thuente line search), a Newton polish on a
//! finite-difference Hessian until the estimated distance to the minimum (EDM) is negligible,
//! the covariance from that Hessian (HESSE), and asymmetric errors from profiling (MINOS).
//!
//! argmin does the search; the Hessian is computed here, with MINUIT's choice of steps (a
//! fraction of each parameter's error, found by a first pass), because finite differences with
//! machine-epsilon steps (what generic crates use) lose the digits of a cost of 10⁶.

use std::cell::{Cell, RefCell};

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::BFGS;

use crate::model::Param;

/// The cost change that defines one standard deviation: 1 for χ² and −2 ln L.
pub const UP: f64 = 1.0;
/// The EDM below which a minimum is converged.
pub const EDM_GOAL: f64 = 1e-6;

/// How a free parameter's internal value maps to its external value.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Free,
    Lower(f64),
    Upper(f64),
    Both(f64, f64),
}

impl Bound {
    fn of(p: &Param) -> Self {
        match (p.lower, p.upper) {
            (Some(a), Some(b)) => Bound::Both(a, b),
            (Some(a), None) => Bound::Lower(a),
            (None, Some(b)) => Bound::Upper(b),
            (None, None) => Bound::Free,
        }
    }

    fn external(self, q: f64) -> f64 {
        match self {
            Bound::Free => q,
            Bound::Lower(a) => a - 1.0 + (q * q + 1.0).sqrt(),
            Bound::Upper(b) => b + 1.0 - (q * q + 1.0).sqrt(),
            Bound::Both(a, b) => a + 0.5 * (b - a) * (q.sin() + 1.0),
        }
    }

    fn internal(self, p: f64) -> f64 {
        match self {
            Bound::Free => p,
            Bound::Lower(a) => ((p - a + 1.0).powi(2) - 1.0).max(0.0).sqrt(),
            Bound::Upper(b) => ((b - p + 1.0).powi(2) - 1.0).max(0.0).sqrt(),
            Bound::Both(a, b) => (2.0 * (p - a) / (b - a) - 1.0).clamp(-1.0, 1.0).asin(),
        }
    }

    /// d external / d internal.
    fn slope(self, q: f64) -> f64 {
        match self {
            Bound::Free => 1.0,
            Bound::Lower(_) => q / (q * q + 1.0).sqrt(),
            Bound::Upper(_) => -q / (q * q + 1.0).sqrt(),
            Bound::Both(a, b) => 0.5 * (b - a) * q.cos(),
        }
    }

    /// A starting value strictly inside the bounds (a transformation is flat at a bound).
    fn inside(self, p: f64, step: f64) -> f64 {
        let room = |a: f64, b: f64| (b - a).abs() * 0.01;
        match self {
            Bound::Free => p,
            Bound::Lower(a) => p.max(a + step.abs().max(1e-9)),
            Bound::Upper(b) => p.min(b - step.abs().max(1e-9)),
            Bound::Both(a, b) => p.clamp(a + room(a, b), b - room(a, b)),
        }
    }
}

/// The free parameters in scaled internal coordinates: `u = (q − q₀) / d`, with `d` the
/// internal size of the parameter's expected error, so that every coordinate is about one
/// standard deviation per unit.
struct Coordinates {
    /// All parameters' external values; the free ones are overwritten from `u`.
    base: Vec<f64>,
    free: Vec<usize>,
    bounds: Vec<Bound>,
    q0: Vec<f64>,
    d: Vec<f64>,
}

impl Coordinates {
    fn new(params: &[Param]) -> Self {
        let free: Vec<usize> = (0..params.len()).filter(|&i| !params[i].fixed).collect();
        let base = params.iter().map(|p| p.value).collect();
        let mut c = Self {
            base,
            bounds: Vec::new(),
            q0: Vec::new(),
            d: Vec::new(),
            free,
        };
        for &i in &c.free {
            let p = &params[i];
            let bound = Bound::of(p);
            let step = if p.step.is_finite() && p.step > 0.0 {
                p.step
            } else {
                0.1 * p.value.abs().max(1.0)
            };
            let q = bound.internal(bound.inside(p.value, step));
            let slope = bound.slope(q).abs();
            let d = if slope > 1e-8 { step / slope } else { step };
            c.bounds.push(bound);
            c.q0.push(q);
            c.d.push(d.max(1e-12));
        }
        c
    }

    fn external(&self, u: &[f64]) -> Vec<f64> {
        let mut p = self.base.clone();
        for (j, &i) in self.free.iter().enumerate() {
            p[i] = self.bounds[j].external(self.q0[j] + self.d[j] * u[j]);
        }
        p
    }

    /// d external / d u of each free parameter at `u`.
    fn jacobian(&self, u: &[f64]) -> Vec<f64> {
        (0..self.free.len())
            .map(|j| self.bounds[j].slope(self.q0[j] + self.d[j] * u[j]) * self.d[j])
            .collect()
    }
}

/// The cost in scaled internal coordinates, counting calls.
struct Scaled<'a, F> {
    f: &'a F,
    coords: &'a Coordinates,
    calls: Cell<usize>,
    /// The lowest cost seen and where: the line search gives up on a cost that is not finite
    /// (a polynomial background gone negative), and the Newton steps go on from here.
    best: RefCell<(f64, Vec<f64>)>,
}

impl<F: Fn(&[f64]) -> f64> Scaled<'_, F> {
    fn value(&self, u: &[f64]) -> f64 {
        self.calls.set(self.calls.get() + 1);
        let v = (self.f)(&self.coords.external(u));
        let v = if v.is_nan() { f64::INFINITY } else { v };
        let mut best = self.best.borrow_mut();
        if v < best.0 {
            *best = (v, u.to_vec());
        }
        v
    }

    fn gradient_at(&self, u: &[f64], h: &[f64]) -> Vec<f64> {
        let mut x = u.to_vec();
        (0..u.len())
            .map(|j| {
                x[j] = u[j] + h[j];
                let up = self.value(&x);
                x[j] = u[j] - h[j];
                let down = self.value(&x);
                x[j] = u[j];
                (up - down) / (2.0 * h[j])
            })
            .collect()
    }

    /// The Hessian by central differences with steps `h`.
    fn hessian_at(&self, u: &[f64], f0: f64, h: &[f64]) -> Vec<Vec<f64>> {
        let n = u.len();
        let mut hess = vec![vec![0.0; n]; n];
        let mut x = u.to_vec();
        for i in 0..n {
            x[i] = u[i] + h[i];
            let up = self.value(&x);
            x[i] = u[i] - h[i];
            let down = self.value(&x);
            x[i] = u[i];
            hess[i][i] = (up - 2.0 * f0 + down) / (h[i] * h[i]);
            for j in 0..i {
                let mut corner = |si: f64, sj: f64| {
                    x[i] = u[i] + si * h[i];
                    x[j] = u[j] + sj * h[j];
                    let v = self.value(&x);
                    x[i] = u[i];
                    x[j] = u[j];
                    v
                };
                let v = (corner(1.0, 1.0) - corner(1.0, -1.0) - corner(-1.0, 1.0)
                    + corner(-1.0, -1.0))
                    / (4.0 * h[i] * h[j]);
                hess[i][j] = v;
                hess[j][i] = v;
            }
        }
        hess
    }
}

/// The cost as argmin's problem (argmin owns its problem; this borrows ours).
struct Search<'a, 'b, F>(&'a Scaled<'b, F>);

impl<F: Fn(&[f64]) -> f64> CostFunction for Search<'_, '_, F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.0.value(u))
    }
}

impl<F: Fn(&[f64]) -> f64> Gradient for Search<'_, '_, F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, u: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.0.gradient_at(u, &vec![1e-3; u.len()]))
    }
}

/// A minimum: every parameter's value, the cost, and the free parameters' covariance.
#[derive(Clone, Debug)]
pub struct Minimum {
    pub values: Vec<f64>,
    pub fval: f64,
    pub edm: f64,
    /// Indices of the free parameters, the rows of `covariance`.
    pub free: Vec<usize>,
    pub covariance: Vec<Vec<f64>>,
    pub calls: usize,
    /// `None` when converged with a positive-definite Hessian; otherwise why not.
    pub problem: Option<String>,
}

impl Minimum {
    /// The symmetric error of parameter `i` (0 when fixed).
    pub fn error(&self, i: usize) -> f64 {
        self.free
            .iter()
            .position(|&f| f == i)
            .map_or(0.0, |j| self.covariance[j][j].max(0.0).sqrt())
    }
}

/// Minimises `f` over `params` (their values the starting point).
pub fn minimize<F: Fn(&[f64]) -> f64>(f: &F, params: &[Param]) -> Minimum {
    let coords = Coordinates::new(params);
    let scaled = Scaled {
        f,
        coords: &coords,
        calls: Cell::new(0),
        best: RefCell::new((f64::INFINITY, Vec::new())),
    };
    let n = coords.free.len();
    let mut u = vec![0.0; n];
    let problem = None;
    if n == 0 {
        let fval = scaled.value(&u);
        return Minimum {
            values: coords.external(&u),
            fval,
            edm: 0.0,
            free: Vec::new(),
            covariance: Vec::new(),
            calls: scaled.calls.get(),
            problem: None,
        };
    }
    // Coordinates are in units of the expected errors, where a χ²'s Hessian is about 2.
    let inverse: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 0.5 } else { 0.0 }).collect())
        .collect();
    // The search only has to get near the minimum: the Newton steps below finish it, and a
    // finite-difference gradient is noisy below ~10⁻⁴ (in units of the errors).
    let search = BFGS::new(MoreThuenteLineSearch::new())
        .with_tolerance_grad(1e-3)
        .and_then(|s| s.with_tolerance_cost(1e-10));
    let run = match search {
        Ok(search) => Executor::new(Search(&scaled), search)
            .configure(|state| state.param(u.clone()).inv_hessian(inverse).max_iters(200))
            .run()
            .ok(),
        Err(_) => None,
    };
    // Where the search stopped, or (when it gave up) the best point it saw: convergence is
    // judged after the Newton steps, by the EDM.
    match run.and_then(|r| r.state().get_best_param().cloned()) {
        Some(best) => u = best,
        None => {
            let best = scaled.best.borrow();
            if best.0.is_finite() {
                u.clone_from(&best.1);
            }
        }
    }
    let mut problem = problem;

    // Newton steps on a finite-difference Hessian until the EDM is negligible.
    let mut fval = scaled.value(&u);
    let mut steps = vec![0.1; n];
    let mut hess = scaled.hessian_at(&u, fval, &steps);
    let mut edm = f64::INFINITY;
    for round in 0..30 {
        // Hessian steps a twentieth of each parameter's current error.
        if let Some(inv) = inverse_pd(&hess) {
            for j in 0..n {
                steps[j] = (0.05 * (2.0 * UP * inv[j][j]).sqrt()).clamp(1e-6, 1.0);
            }
        }
        let grad = scaled.gradient_at(&u, &steps.iter().map(|h| h * 0.02).collect::<Vec<_>>());
        let (inv, forced) = match inverse_pd(&hess) {
            Some(inv) => (inv, false),
            None => (force_pd_inverse(&hess), true),
        };
        let step: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| inv[i][j] * grad[j]).sum::<f64>())
            .collect();
        edm = 0.5 * -(0..n).map(|i| step[i] * grad[i]).sum::<f64>();
        if edm < EDM_GOAL * UP && !forced {
            break;
        }
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..20 {
            let trial: Vec<f64> = (0..n).map(|i| u[i] + t * step[i]).collect();
            let v = scaled.value(&trial);
            if v < fval {
                u = trial;
                fval = v;
                moved = true;
                break;
            }
            t *= 0.5;
        }
        hess = scaled.hessian_at(&u, fval, &steps);
        if !moved && round > 0 {
            break;
        }
    }
    if edm >= EDM_GOAL * UP * 10.0 && problem.is_none() {
        problem = Some(format!("did not converge: EDM {edm:.2e}"));
    }
    // HESSE at the minimum, with steps from the final errors.
    let covariance_u = match inverse_pd(&hess) {
        Some(inv) => inv,
        None => {
            problem.get_or_insert_with(|| {
                "the Hessian is not positive definite at the minimum (a parameter is not constrained by the data, or sits at a limit)".into()
            });
            force_pd_inverse(&hess)
        }
    };
    let jac = coords.jacobian(&u);
    let covariance = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| 2.0 * UP * covariance_u[i][j] * jac[i] * jac[j])
                .collect()
        })
        .collect();
    Minimum {
        values: coords.external(&u),
        fval,
        edm,
        free: coords.free.clone(),
        covariance,
        calls: scaled.calls.get(),
        problem,
    }
}

/// MINOS: where the profile of the cost in parameter `i` rises by `UP` below and above the
/// minimum; `None` on a side where it does not within the parameter's limits.
pub fn minos<F: Fn(&[f64]) -> f64>(
    f: &F,
    params: &[Param],
    min: &Minimum,
    i: usize,
) -> (Option<f64>, Option<f64>) {
    let Some(j) = min.free.iter().position(|&k| k == i) else {
        return (None, None);
    };
    let sigma = min.covariance[j][j].max(0.0).sqrt();
    if sigma == 0.0 || !sigma.is_finite() {
        return (None, None);
    }
    let side = |sign: f64| -> Option<f64> {
        // The parabola's σ, corrected from each profile point.
        let mut scale = sigma;
        for _ in 0..12 {
            let delta = sign * scale;
            let target = min.values[i] + delta;
            if params[i].lower.is_some_and(|a| target <= a)
                || params[i].upper.is_some_and(|b| target >= b)
            {
                return None;
            }
            let mut fixed = params.to_vec();
            for (k, &m) in min.free.iter().enumerate() {
                fixed[m].value = min.values[m] + min.covariance[k][j] / (sigma * sigma) * delta;
                fixed[m].step = min.covariance[k][k].max(0.0).sqrt().max(1e-12);
            }
            fixed[i].value = target;
            fixed[i].fixed = true;
            let profile = minimize(f, &fixed);
            let rise = profile.fval - min.fval;
            if !(rise.is_finite() && rise > 0.0) {
                return None;
            }
            if (rise - UP).abs() < 1e-3 * UP {
                return Some(delta.abs());
            }
            scale = delta.abs() * (UP / rise).sqrt();
        }
        None
    };
    (side(-1.0).map(|d| -d), side(1.0))
}

/// The inverse of a symmetric positive-definite matrix (Cholesky), `None` if it is not one.
pub fn inverse_pd(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // inv(L), lower triangular; then inv(A) = inv(L)ᵀ inv(L).
    let mut li = vec![vec![0.0; n]; n];
    for i in 0..n {
        li[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let s: f64 = (j..i).map(|k| l[i][k] * li[k][j]).sum();
            li[i][j] = -s / l[i][i];
        }
    }
    Some(
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (i.max(j)..n).map(|k| li[k][i] * li[k][j]).sum())
                    .collect()
            })
            .collect(),
    )
}

/// The inverse of `a` made positive definite by adding to its diagonal, as MINUIT does when
/// the Hessian is not.
fn force_pd_inverse(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let scale = (0..n).map(|i| a[i][i].abs()).fold(1e-8, f64::max);
    let mut shift = 1e-6 * scale;
    loop {
        let shifted: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| a[i][j] + if i == j { shift } else { 0.0 })
                    .collect()
            })
            .collect();
        if let Some(inv) = inverse_pd(&shifted) {
            return inv;
        }
        if !shift.is_finite() || shift > 1e30 {
            return (0..n)
                .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
                .collect();
        }
        shift *= 10.0;
    }
}

//! A model: a sum of shapes with yields (`gauss+exp`, `bw*gauss+cheb2`, `cb+expr(a*x^2+x)`),
//! its named parameters, and the expected content of each bin.

use crate::error::Error;
use crate::expr::Expr;
use crate::shapes::Shape;

/// The most components a model sums.
pub const MAX_COMPONENTS: usize = 8;

/// One term of the sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// Its name in the model (`gauss`, `exp`, `gauss_2` for a second Gaussian).
    pub name: String,
    pub shape: Shape,
    /// Indices of its shape parameters in the model's parameters.
    pub params: Vec<usize>,
    /// Index of its yield (extended fits) in the model's parameters.
    pub yield_param: usize,
}

/// A parameter's definition: its name, starting value and step, limits, and whether it floats.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub value: f64,
    /// The expected error: the minimiser's first step.
    pub step: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub fixed: bool,
}

impl Param {
    fn new(name: String) -> Self {
        Self {
            name,
            value: 0.0,
            step: 0.1,
            lower: None,
            upper: None,
            fixed: false,
        }
    }
}

/// A sum of shapes with a yield each.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub components: Vec<Component>,
    pub params: Vec<Param>,
    spec: String,
}

impl Model {
    /// Parses a model: shapes joined by `+`, each one of `gauss`, `bw`, `rbw`, `voigt` (or
    /// `bw*gauss`, the same convolution), `cb`, `dcb`, `exp`, `cheb0`…`cheb5` (`pol0`…`pol5`
    /// alike), or `expr(…)` with an expression of x and named parameters.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        if spec.len() > crate::expr::MAX_LEN + 100 {
            return Err(Error::Model("the model is too long".into()));
        }
        let mut shapes = Vec::new();
        for term in split_terms(spec)? {
            let term = term.trim();
            let shape = match term.to_ascii_lowercase().as_str() {
                "gauss" | "gaus" | "gaussian" => Shape::Gauss,
                "bw" | "breitwigner" => Shape::BreitWigner,
                "rbw" | "relbw" => Shape::RelBreitWigner,
                "voigt" | "voigtian" | "bw*gauss" | "gauss*bw" => Shape::Voigt,
                "cb" | "crystalball" => Shape::CrystalBall,
                "dcb" => Shape::DoubleCrystalBall,
                "exp" | "expo" => Shape::Exponential,
                t if t.starts_with("cheb") || t.starts_with("pol") => {
                    let order = t.trim_start_matches("cheb").trim_start_matches("pol");
                    match order.parse::<u8>() {
                        Ok(k) if k <= 5 => Shape::Chebyshev(k),
                        _ => {
                            return Err(Error::Model(format!(
                                "`{term}`: Chebyshev polynomials go from order 0 to 5"
                            )));
                        }
                    }
                }
                t if t.starts_with("expr(") && t.ends_with(')') => {
                    Shape::Expr(Expr::parse(&term[5..term.len() - 1])?)
                }
                t if t.contains('*') => {
                    return Err(Error::Model(format!(
                        "`{term}`: the one convolution is bw*gauss (the Voigtian)"
                    )));
                }
                _ => {
                    return Err(Error::Model(format!(
                        "unknown shape `{term}` (known: gauss, bw, rbw, voigt, bw*gauss, cb, dcb, exp, cheb0…cheb5, expr(…))"
                    )));
                }
            };
            shapes.push(shape);
        }
        if shapes.is_empty() {
            return Err(Error::Model("the model is empty".into()));
        }
        if shapes.len() > MAX_COMPONENTS {
            return Err(Error::Model(format!(
                "a model sums at most {MAX_COMPONENTS} shapes"
            )));
        }
        Ok(Self::from_shapes(spec.trim(), shapes))
    }

    fn from_shapes(spec: &str, shapes: Vec<Shape>) -> Self {
        let mut params: Vec<Param> = Vec::new();
        let mut components = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for shape in shapes {
            let base = short_name(&shape);
            let count = seen.iter().filter(|s| **s == base).count();
            seen.push(base.clone());
            let suffix = if count == 0 {
                String::new()
            } else {
                format!("_{}", count + 1)
            };
            let mut indices = Vec::new();
            for p in shape.params() {
                let mut name = format!("{p}{suffix}");
                // Parameters of different shapes never share a name (two `mean`s of a Gaussian
                // and a Crystal Ball, say).
                while params.iter().any(|q| q.name == name) {
                    name = format!("{name}_{base}");
                }
                indices.push(params.len());
                params.push(Param::new(name));
            }
            let yield_param = params.len();
            params.push(Param {
                lower: Some(0.0),
                ..Param::new(format!("n_{base}{suffix}"))
            });
            components.push(Component {
                name: format!("{base}{suffix}"),
                shape,
                params: indices,
                yield_param,
            });
        }
        Self {
            components,
            params,
            spec: spec.to_owned(),
        }
    }

    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The model's parameter called `name`, to fix, bound or start elsewhere.
    pub fn param_mut(&mut self, name: &str) -> Result<&mut Param, Error> {
        let known: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        self.params
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::Model(format!(
                    "no parameter `{name}` in this model (its parameters: {})",
                    known.join(", ")
                ))
            })
    }

    /// Each component's integral over each bin of `edges`, normalised over those bins (the
    /// fit range), into `out[component][bin]`.
    pub(crate) fn shares(&self, values: &[f64], edges: &[f64], out: &mut [Vec<f64>]) -> bool {
        let range = (edges[0], edges[edges.len() - 1]);
        let mut p = Vec::with_capacity(8);
        for (c, row) in self.components.iter().zip(out.iter_mut()) {
            p.clear();
            p.extend(c.params.iter().map(|&i| values[i]));
            let mut total = 0.0;
            for (bin, w) in row.iter_mut().zip(edges.windows(2)) {
                *bin = c.shape.integral(&p, w[0], w[1], range);
                total += *bin;
            }
            if !(total.is_finite() && total > 0.0) {
                return false;
            }
            for bin in row.iter_mut() {
                *bin /= total;
            }
        }
        true
    }

    /// The value of component `c` (`None`: the sum) at `x`, scaled to events per unit of x,
    /// for drawing over the data.
    pub fn curve(&self, values: &[f64], range: (f64, f64), c: Option<usize>, x: f64) -> f64 {
        let mut sum = 0.0;
        for (i, comp) in self.components.iter().enumerate() {
            if c.is_some_and(|c| c != i) {
                continue;
            }
            let p: Vec<f64> = comp.params.iter().map(|&i| values[i]).collect();
            let norm = comp.shape.integral(&p, range.0, range.1, range);
            if norm > 0.0 {
                sum += values[comp.yield_param] * comp.shape.density(&p, x, range) / norm;
            }
        }
        sum
    }
}

fn short_name(shape: &Shape) -> String {
    match shape {
        Shape::Gauss => "gauss".into(),
        Shape::BreitWigner => "bw".into(),
        Shape::RelBreitWigner => "rbw".into(),
        Shape::Voigt => "voigt".into(),
        Shape::CrystalBall => "cb".into(),
        Shape::DoubleCrystalBall => "dcb".into(),
        Shape::Exponential => "exp".into(),
        Shape::Chebyshev(k) => format!("cheb{k}"),
        Shape::Expr(_) => "expr".into(),
    }
}

/// The `+`-separated terms of a model, keeping `+` inside `expr(…)`.
fn split_terms(spec: &str) -> Result<Vec<&str>, Error> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in spec.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Error::Model("unbalanced `)` in the model".into()))?;
            }
            '+' if depth == 0 => {
                terms.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(Error::Model("unbalanced `(` in the model".into()));
    }
    terms.push(&spec[start..]);
    if terms.iter().any(|t| t.trim().is_empty()) {
        return Err(Error::Model(format!("an empty term in the model `{spec}`")));
    }
    Ok(terms)
}

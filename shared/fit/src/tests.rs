use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::expr::Expr;
use crate::fit::{FitOptions, Method, fit};
use crate::histogram::Histogram;
use crate::model::Model;
use crate::shapes::Shape;

/// `n` entries (Poisson-fluctuated when `poisson`) drawn from `model` with parameter values
/// `truth` (yields as fractions of `n`), by accept–reject over [lo, hi).
fn sample(model: &Model, truth: &[(&str, f64)], lo: f64, hi: f64, n: u64, seed: u64) -> Vec<f64> {
    let mut values: Vec<f64> = model.params.iter().map(|p| p.value).collect();
    for (name, v) in truth {
        values[model.param_index(name).expect(name)] = *v;
    }
    let ceiling = (0..=2000)
        .map(|i| {
            model.curve(
                &values,
                (lo, hi),
                None,
                lo + (hi - lo) * f64::from(i) / 2000.0,
            )
        })
        .fold(0.0, f64::max)
        * 1.2;
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n as usize);
    while (out.len() as u64) < n {
        let x = rng.random_range(lo..hi);
        if rng.random::<f64>() * ceiling < model.curve(&values, (lo, hi), None, x) {
            out.push(x);
        }
    }
    out
}

fn poisson(mean: f64, rng: &mut Pcg64) -> u64 {
    use rand_distr::Distribution;
    rand_distr::Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

#[test]
fn expressions_parse_evaluate_and_refuse() {
    let e = Expr::parse("a * exp(-x / b) + c * x^2").expect("parses");
    assert_eq!(e.params(), ["a", "b", "c"]);
    let v = e.eval(2.0, &[3.0, 4.0, 0.5]);
    assert!((v - (3.0 * (-0.5f64).exp() + 2.0)).abs() < 1e-12, "{v}");
    assert_eq!(Expr::parse("-x^2").expect("parses").eval(3.0, &[]), -9.0);
    assert_eq!(
        Expr::parse("2^3^2 + x*0").expect("parses").eval(0.0, &[]),
        512.0
    );
    for (bad, says) in [
        ("a * b", "does not depend on x"),
        ("system(x)", "unknown function `system`"),
        ("x +", "unexpected end"),
        ("(x", "expected `)`"),
        ("x $ 2", "expected an operator"),
        ("1e999 * x", "not a number"),
    ] {
        let err = Expr::parse(bad).expect_err(bad).to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    let deep = format!("{}x{}", "(".repeat(200), ")".repeat(200));
    assert!(
        Expr::parse(&deep)
            .expect_err("deep")
            .to_string()
            .contains("nested deeper")
    );
    let long = format!("x{}", "+x".repeat(600));
    assert!(
        Expr::parse(&long)
            .expect_err("long")
            .to_string()
            .contains("longer than")
    );
    let many: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let text = format!("x*({})", many.join("+"));
    assert!(
        Expr::parse(&text)
            .expect_err("params")
            .to_string()
            .contains("more than 16")
    );
}

#[test]
fn models_name_their_parameters() {
    let names = |spec: &str| -> Vec<String> {
        Model::parse(spec)
            .expect(spec)
            .params
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(
        names("gauss+exp"),
        ["mean", "sigma", "n_gauss", "slope", "n_exp"]
    );
    assert_eq!(
        names("bw*gauss+cheb2"),
        ["mean", "width", "sigma", "n_voigt", "c1", "c2", "n_cheb2"]
    );
    assert_eq!(
        names("gauss+gauss+cb"),
        [
            "mean",
            "sigma",
            "n_gauss",
            "mean_2",
            "sigma_2",
            "n_gauss_2",
            "mean_cb",
            "sigma_cb",
            "alpha",
            "n",
            "n_cb"
        ]
    );
    assert_eq!(names("expr(a*x+x^2)"), ["a", "n_expr"]);
    for (bad, says) in [
        ("", "empty term"),
        ("gauss+", "empty term"),
        ("cheb7", "order 0 to 5"),
        ("cb*gauss", "one convolution"),
        ("landau", "unknown shape `landau`"),
        ("expr(x))", "unbalanced"),
    ] {
        let err = Model::parse(bad).expect_err(bad).to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// Integrates `shape` over [a, b] with a fine midpoint rule.
fn numeric(shape: &Shape, p: &[f64], a: f64, b: f64, range: (f64, f64)) -> f64 {
    let n = 20_000;
    let h = (b - a) / f64::from(n);
    (0..n)
        .map(|i| shape.density(p, a + h * (f64::from(i) + 0.5), range))
        .sum::<f64>()
        * h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every shape's bin integral (analytic or by quadrature) equals its density integrated.
    #[test]
    fn bin_integrals_integrate_the_density(
        mean in 85.0..95.0f64, sigma in 0.3..4.0f64, width in 0.3..4.0f64,
        alpha in 0.3..3.0f64, n in 1.2..20.0f64, slope in -0.3..0.3f64,
        c1 in -0.5..0.5f64, c2 in -0.3..0.3f64, a in 80.0..99.0f64, len in 0.05..3.0f64,
    ) {
        let range = (80.0, 102.0);
        let b = (a + len).min(range.1);
        let cases: [(Shape, Vec<f64>); 8] = [
            (Shape::Gauss, vec![mean, sigma]),
            (Shape::BreitWigner, vec![mean, width]),
            (Shape::RelBreitWigner, vec![mean, width]),
            (Shape::Voigt, vec![mean, width, sigma]),
            (Shape::CrystalBall, vec![mean, sigma, alpha, n]),
            (Shape::DoubleCrystalBall, vec![mean, sigma, alpha, n, alpha * 1.3, n + 1.0]),
            (Shape::Exponential, vec![slope]),
            (Shape::Chebyshev(2), vec![c1, c2]),
        ];
        for (shape, p) in cases {
            let exact = shape.integral(&p, a, b, range);
            let reference = numeric(&shape, &p, a, b, range);
            prop_assert!(
                (exact - reference).abs() <= 1e-6 * reference.abs().max(1e-3 * (b - a)),
                "{shape:?} {p:?} over [{a}, {b}]: {exact} vs {reference}"
            );
        }
    }

    /// In an extended likelihood fit with every yield free, the yields add up to the
    /// entries in the range (a property of the Poisson likelihood at its maximum).
    #[test]
    fn extended_yields_add_up_to_the_entries(seed in 0u64..1000, signal in 200u64..2000, bkg in 100u64..3000) {
        let model = Model::parse("gauss+exp").expect("model");
        let mut xs = sample(&model, &[("mean", 91.0), ("sigma", 2.5), ("n_gauss", 1.0), ("n_exp", 0.0)], 70.0, 110.0, signal, seed);
        xs.extend(sample(&model, &[("slope", -0.04), ("n_gauss", 0.0), ("n_exp", 1.0)], 70.0, 110.0, bkg, seed + 1));
        let h = Histogram::fill(70.0, 110.0, 80, xs).expect("histogram");
        let r = fit(&h, &model, &FitOptions::default()).expect("fit");
        prop_assert!(r.converged, "{:?}", r.message);
        let total = r.param("n_gauss").expect("n").value + r.param("n_exp").expect("n").value;
        let entries = (signal + bkg) as f64;
        prop_assert!((total - entries).abs() < 1e-3 * entries.sqrt(), "{total} vs {entries}");
    }
}

/// Toys: fits of histograms sampled from the model recover the truth within their errors at
/// the expected rate — the pulls have mean 0 and width 1.
#[test]
fn pulls_of_toy_fits_are_standard_normal() {
    let model = Model::parse("gauss+cheb1").expect("model");
    let truth = [("mean", 0.4976), ("sigma", 0.004), ("c1", -0.3)];
    let (lo, hi) = (0.47, 0.53);
    let toys = 300;
    let mut rng = Pcg64::seed_from_u64(7);
    let mut pulls: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let names = ["mean", "sigma", "n_gauss", "n_cheb1"];
    for toy in 0..toys {
        let (ns, nb) = (poisson(800.0, &mut rng), poisson(1500.0, &mut rng));
        let mut xs = sample(
            &model,
            &[truth[0], truth[1], ("n_gauss", 1.0), ("n_cheb1", 0.0)],
            lo,
            hi,
            ns,
            2 * toy,
        );
        xs.extend(sample(
            &model,
            &[truth[2], ("n_gauss", 0.0), ("n_cheb1", 1.0)],
            lo,
            hi,
            nb,
            2 * toy + 1,
        ));
        let h = Histogram::fill(lo, hi, 60, xs).expect("histogram");
        let r = fit(&h, &model, &FitOptions::default()).expect("fit");
        assert!(r.converged, "toy {toy}: {:?}", r.message);
        for (k, (name, t)) in names.iter().zip([0.4976, 0.004, 800.0, 1500.0]).enumerate() {
            let p = r.param(name).expect(name);
            pulls[k].push((p.value - t) / p.error);
        }
    }
    for (name, p) in names.iter().zip(&pulls) {
        let n = p.len() as f64;
        let mean = p.iter().sum::<f64>() / n;
        let width = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        println!("{name}: pull mean {mean:+.3}, width {width:.3}");
        // 300 toys: the mean's own error is 0.058, the width's 0.041.
        assert!(mean.abs() < 0.2, "{name}: pull mean {mean}");
        assert!((width - 1.0).abs() < 0.13, "{name}: pull width {width}");
    }
}

#[test]
fn methods_agree_on_a_large_sample_and_minos_matches_hesse_for_a_parabola() {
    let model = Model::parse("gauss+cheb0").expect("model");
    let mut xs = sample(
        &model,
        &[
            ("mean", 3.097),
            ("sigma", 0.03),
            ("n_gauss", 1.0),
            ("n_cheb0", 0.0),
        ],
        2.9,
        3.3,
        20_000,
        1,
    );
    xs.extend(sample(
        &model,
        &[("n_gauss", 0.0), ("n_cheb0", 1.0)],
        2.9,
        3.3,
        20_000,
        2,
    ));
    let h = Histogram::fill(2.9, 3.3, 80, xs).expect("histogram");
    let mut results = Vec::new();
    for (_, method) in Method::ALL {
        let options = FitOptions {
            method,
            minos: true,
            ..FitOptions::default()
        };
        let r = fit(&h, &model, &options).expect("fit");
        assert!(r.converged, "{method:?}: {:?}", r.message);
        let mean = r.param("mean").expect("mean");
        assert!(
            (mean.value - 3.097).abs() < 3.0 * mean.error,
            "{method:?}: {mean:?}"
        );
        // With 20,000 signal entries the likelihood is a parabola: MINOS = HESSE.
        let (lo, hi) = mean.minos.expect("minos");
        let (lo, hi) = (lo.expect("lower"), hi.expect("upper"));
        assert!(
            (lo + mean.error).abs() < 0.03 * mean.error,
            "{method:?}: {lo} vs {}",
            mean.error
        );
        assert!(
            (hi - mean.error).abs() < 0.03 * mean.error,
            "{method:?}: {hi} vs {}",
            mean.error
        );
        assert!(r.p_value > 1e-3, "{method:?}: χ² {} / {}", r.chi2, r.ndf);
        results.push(r);
    }
    let m = |i: usize| results[i].param("mean").expect("mean").value;
    for i in 1..results.len() {
        assert!((m(i) - m(0)).abs() < 0.2 * results[0].param("mean").expect("m").error);
    }
    // The non-extended fit has a fraction, not yields.
    assert!(results[1].param("frac_gauss").is_some());
    assert!(results[1].param("n_cheb0").is_none());
}

#[test]
fn weighted_histograms_have_the_errors_of_their_effective_entries() {
    let model = Model::parse("gauss").expect("model");
    let xs = sample(
        &model,
        &[("mean", 1.0), ("sigma", 0.1), ("n_gauss", 1.0)],
        0.5,
        1.5,
        5_000,
        3,
    );
    let plain = Histogram::fill(0.5, 1.5, 50, xs).expect("histogram");
    // Every entry of weight 2: twice the contents, four times the squared weights.
    let counts: Vec<f64> = plain.counts().iter().map(|c| 2.0 * c).collect();
    let sumw2: Vec<f64> = plain.counts().iter().map(|c| 4.0 * c).collect();
    let weighted = Histogram::new(plain.edges().to_vec(), counts, Some(sumw2)).expect("weighted");
    let a = fit(&plain, &model, &FitOptions::default()).expect("plain");
    let b = fit(&weighted, &model, &FitOptions::default()).expect("weighted");
    let (pa, pb) = (a.param("sigma").expect("s"), b.param("sigma").expect("s"));
    assert!(
        (pa.value - pb.value).abs() < 1e-4 * pa.error,
        "{pa:?} {pb:?}"
    );
    assert!(
        (pa.error - pb.error).abs() < 1e-3 * pa.error,
        "{pa:?} {pb:?}"
    );
    let (na, nb) = (
        a.param("n_gauss").expect("n"),
        b.param("n_gauss").expect("n"),
    );
    assert!((nb.value - 2.0 * na.value).abs() < 1e-3 * na.error);
    assert!((nb.error - 2.0 * na.error).abs() < 1e-3 * na.error);
}

#[test]
fn fixed_and_bounded_parameters_and_honest_failures() {
    let model = Model::parse("bw*gauss+exp").expect("model");
    let mut xs = sample(
        &model,
        &[
            ("mean", 91.19),
            ("width", 2.5),
            ("sigma", 1.0),
            ("n_voigt", 1.0),
            ("n_exp", 0.0),
        ],
        70.0,
        110.0,
        8_000,
        4,
    );
    xs.extend(sample(
        &model,
        &[("slope", -0.05), ("n_voigt", 0.0), ("n_exp", 1.0)],
        70.0,
        110.0,
        2_000,
        5,
    ));
    let h = Histogram::fill(70.0, 110.0, 80, xs).expect("histogram");
    let options = FitOptions {
        fix: vec![("width".into(), 2.4952)],
        range: Some((75.0, 105.0)),
        ..FitOptions::default()
    };
    let r = fit(&h, &model, &options).expect("fit");
    assert!(r.converged, "{:?}", r.message);
    let width = r.param("width").expect("width");
    assert_eq!((width.value, width.error, width.fixed), (2.4952, 0.0, true));
    assert!(!r.free.contains(&"width".to_owned()));
    let mean = r.param("mean").expect("mean");
    assert!((mean.value - 91.19).abs() < 3.0 * mean.error, "{mean:?}");
    assert_eq!(r.range, (75.0, 105.0));
    assert_eq!(r.bins.len(), 60);
    for row in &r.correlation {
        for c in row {
            assert!(c.abs() <= 1.0 + 1e-9);
        }
    }
    // Unknown names and hopeless setups are errors that say what is wrong.
    let bad = FitOptions {
        fix: vec![("mass".into(), 1.0)],
        ..FitOptions::default()
    };
    let err = fit(&h, &model, &bad).expect_err("unknown").to_string();
    assert!(
        err.contains("no parameter `mass`") && err.contains("width"),
        "{err}"
    );
    let narrow = FitOptions {
        range: Some((90.0, 91.0)),
        ..FitOptions::default()
    };
    let err = fit(&h, &model, &narrow).expect_err("two bins").to_string();
    assert!(err.contains("bins in the range"), "{err}");
    // An empty histogram fits, and says the fit is not to be trusted rather than panicking.
    let empty = Histogram::uniform(0.0, 1.0, vec![0.0; 20]).expect("empty");
    let r = fit(
        &empty,
        &Model::parse("gauss+exp").expect("m"),
        &FitOptions::default(),
    );
    if let Ok(r) = r {
        assert!(r.params.iter().all(|p| p.value.is_finite()));
    }
}

#[test]
fn hostile_histograms_are_refused() {
    assert!(Histogram::new(vec![0.0, 1.0], vec![f64::NAN], None).is_err());
    assert!(Histogram::new(vec![1.0, 0.0], vec![1.0], None).is_err());
    assert!(Histogram::new(vec![0.0, 1.0, 2.0], vec![1.0], None).is_err());
    assert!(Histogram::new(vec![0.0, 1.0], vec![-1.0], None).is_err());
    assert!(Histogram::new(vec![0.0, 1.0], vec![-1.0], Some(vec![1.0])).is_ok());
    assert!(Histogram::uniform(0.0, 1.0, Vec::new()).is_err());
    assert!(Histogram::fill(1.0, 1.0, 10, [1.0]).is_err());
}

//! The Fit menu of every histogram view (the Histograms window, the query builder and the job
//! results it shows): a model picked as signal + background (or typed), a range dragged on the
//! plot, parameters fixed or floating; the curve and its components drawn over the data, a
//! pulls panel below and a parameter box. Fits run with `alyx_fit`, refitted as the histogram
//! changes when asked.

use alyx_core::histogram::Histogram;
use alyx_fit::{FitOptions, FitResult, Method, Model};
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task, TaskPool};
use bevy_egui::egui;
use egui_plot::{Bar, BarChart, Line, Plot, PlotUi, VLine};

/// Signal shapes offered in the menu.
const SIGNALS: [(&str, &str); 7] = [
    ("none", ""),
    ("Gaussian", "gauss"),
    ("Breit–Wigner", "bw"),
    ("relativistic Breit–Wigner", "rbw"),
    ("Voigtian (BW ⊗ Gaussian)", "voigt"),
    ("Crystal Ball", "cb"),
    ("double-sided Crystal Ball", "dcb"),
];
/// Background shapes offered in the menu.
const BACKGROUNDS: [(&str, &str); 8] = [
    ("none", ""),
    ("exponential", "exp"),
    ("constant", "cheb0"),
    ("Chebyshev 1", "cheb1"),
    ("Chebyshev 2", "cheb2"),
    ("Chebyshev 3", "cheb3"),
    ("Chebyshev 4", "cheb4"),
    ("Chebyshev 5", "cheb5"),
];

const CURVE: egui::Color32 = egui::Color32::from_rgb(240, 150, 60);
const COMPONENT: egui::Color32 = egui::Color32::from_rgb(120, 200, 120);

/// A parameter the user holds at a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub name: String,
    pub value: f64,
}

/// One histogram view's fit: the choices, and the last result.
#[derive(Clone, Debug)]
pub struct FitState {
    pub signal: usize,
    pub background: usize,
    /// A model typed by hand (`bw*gauss+exp`); used instead of the menus when not empty.
    pub typed: String,
    pub method: Method,
    pub range: Option<(f64, f64)>,
    pub held: Vec<Held>,
    /// Refit whenever the histogram changes (cuts moved, more data).
    pub follow: bool,
    /// Dragging on the plot sets the range (instead of panning).
    pub picking_range: bool,
    drag_from: Option<f64>,
    pub fitted: Option<(Model, FitResult)>,
    pub message: Option<String>,
    /// The fit running off the main thread (a large histogram or a Voigtian takes a while).
    running: Running,
}

type Fitted = Result<(Model, FitResult), alyx_fit::Error>;

/// A fit in flight; a copy of the state does not share it.
#[derive(Default)]
struct Running(Option<Task<Fitted>>);

impl Clone for Running {
    fn clone(&self) -> Self {
        Self(None)
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "running" } else { "idle" })
    }
}

impl Default for FitState {
    fn default() -> Self {
        Self {
            signal: 1,
            background: 1,
            typed: String::new(),
            method: Method::ExtendedLikelihood,
            range: None,
            held: Vec::new(),
            follow: true,
            picking_range: false,
            drag_from: None,
            fitted: None,
            message: None,
            running: Running::default(),
        }
    }
}

impl FitState {
    /// The model the choices make.
    pub fn model_spec(&self) -> String {
        if !self.typed.trim().is_empty() {
            return self.typed.trim().to_owned();
        }
        let parts: Vec<&str> = [SIGNALS[self.signal].1, BACKGROUNDS[self.background].1]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        parts.join("+")
    }

    /// Fits `h` with the current choices, off the main thread (replacing a fit in flight);
    /// `poll` takes the result.
    pub fn fit(&mut self, h: &Histogram) {
        let (spec, method, range) = (self.model_spec(), self.method, self.range);
        let held: Vec<(String, f64)> = self
            .held
            .iter()
            .map(|p| (p.name.clone(), p.value))
            .collect();
        let h = h.clone();
        let pool = AsyncComputeTaskPool::get_or_init(TaskPool::default);
        self.running = Running(Some(pool.spawn(async move {
            let model = Model::parse(&spec)?;
            let data = alyx_fit::Histogram::from_core(&h)?;
            let options = FitOptions {
                method,
                range,
                fix: held
                    .into_iter()
                    .filter(|(name, _)| model.param_index(name).is_some())
                    .collect(),
                ..FitOptions::default()
            };
            let result = alyx_fit::fit(&data, &model, &options)?;
            Ok((model, result))
        })));
    }

    /// Whether a fit is running.
    pub fn busy(&self) -> bool {
        self.running.0.is_some()
    }

    /// Takes the result of the fit in flight when it has ended.
    pub fn poll(&mut self) {
        if let Some(result) = self.running.0.as_mut().and_then(check_ready) {
            self.running = Running(None);
            self.take(result);
        }
    }

    /// Waits for the fit in flight (tests).
    #[cfg(test)]
    pub(crate) fn settle(&mut self) {
        if let Some(task) = self.running.0.take() {
            let result = bevy::tasks::block_on(task);
            self.take(result);
        }
    }

    fn take(&mut self, result: Fitted) {
        match result {
            Ok(fitted) => {
                self.message = fitted
                    .1
                    .message
                    .clone()
                    .map(|m| format!("not converged: {m}"));
                self.fitted = Some(fitted);
            }
            Err(e) => {
                self.message = Some(e.to_string());
                self.fitted = None;
            }
        }
    }

    /// Forgets the result (the histogram is gone or new); refits it when following.
    pub fn histogram_changed(&mut self, h: Option<&Histogram>) {
        match h {
            Some(h) if self.follow && self.fitted.is_some() => self.fit(h),
            _ => self.fitted = None,
        }
    }

    /// The Fit menu and its row of controls; fits `h` when asked.
    pub fn controls(&mut self, ui: &mut egui::Ui, salt: &str, h: &Histogram) {
        self.poll();
        if self.busy() {
            ui.ctx().request_repaint();
        }
        ui.push_id(("alyx-fit-controls", salt), |ui| self.control_row(ui, h));
        if let Some(m) = &self.message {
            ui.colored_label(egui::Color32::from_rgb(240, 110, 100), m);
        }
    }

    fn control_row(&mut self, ui: &mut egui::Ui, h: &Histogram) {
        ui.horizontal(|ui| {
            ui.menu_button("Fit ▾", |ui| {
                ui.label("signal");
                for (i, (name, _)) in SIGNALS.iter().enumerate() {
                    ui.radio_value(&mut self.signal, i, *name);
                }
                ui.separator();
                ui.label("background");
                for (i, (name, _)) in BACKGROUNDS.iter().enumerate() {
                    ui.radio_value(&mut self.background, i, *name);
                }
                ui.separator();
                ui.label("cost");
                for (name, m) in Method::ALL {
                    ui.radio_value(&mut self.method, m, name);
                }
                ui.separator();
                ui.horizontal(|ui| {
                    ui.label("or type a model");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.typed)
                            .hint_text("bw*gauss+exp")
                            .desired_width(140.0),
                    );
                });
            });
            ui.label(egui::RichText::new(self.model_spec()).monospace());
            if ui.button("fit").clicked() {
                self.fit(h);
            }
            if self.busy() {
                ui.spinner();
            }
            ui.toggle_value(&mut self.picking_range, "⟷ range")
                .on_hover_text("drag on the plot to set the fit range");
            if let Some((lo, hi)) = self.range {
                ui.weak(format!("{lo:.4}…{hi:.4}"));
                if ui.small_button("whole").clicked() {
                    self.range = None;
                }
            }
            ui.checkbox(&mut self.follow, "refit on change");
            if self.fitted.is_some() && ui.small_button("clear").clicked() {
                self.fitted = None;
            }
        });
    }

    /// Whether the plot should pan with a drag (not while a range is picked).
    pub fn plot_drags(&self) -> bool {
        !self.picking_range
    }

    /// Draws the range, the fitted curve and its components into the plot, and takes a drag
    /// as the new range while picking one.
    pub fn draw(&mut self, p: &mut PlotUi, log_y: bool) {
        if self.picking_range {
            let r = p.response().clone();
            if r.drag_started() {
                self.drag_from = p.pointer_coordinate().map(|c| c.x);
            }
            if let (Some(from), Some(now)) = (self.drag_from, p.pointer_coordinate())
                && r.dragged()
                && (now.x - from).abs() > 0.0
            {
                self.range = Some((from.min(now.x), from.max(now.x)));
            }
            if r.drag_stopped() {
                self.drag_from = None;
                self.picking_range = false;
            }
        }
        if let Some((lo, hi)) = self.range {
            for x in [lo, hi] {
                p.vline(VLine::new("fit range", x).color(egui::Color32::GRAY));
            }
        }
        let Some((model, r)) = &self.fitted else {
            return;
        };
        let values = r.values(model);
        let y = |v: f64| if log_y { v.max(1e-300).log10() } else { v };
        let width = |x: f64| {
            r.bins
                .iter()
                .find(|b| b.lo <= x && x <= b.hi)
                .map_or(0.0, |b| b.hi - b.lo)
        };
        let n = 400;
        let xs: Vec<f64> = (0..=n)
            .map(|i| r.range.0 + (r.range.1 - r.range.0) * f64::from(i) / f64::from(n))
            .collect();
        // Events per bin: the density times the bin's width.
        let curve = |c: Option<usize>| -> Vec<[f64; 2]> {
            xs.iter()
                .map(|&x| [x, y(model.curve(&values, r.range, c, x) * width(x))])
                .collect()
        };
        if r.method != Method::Likelihood && model.components.len() > 1 {
            for (i, c) in model.components.iter().enumerate() {
                p.line(
                    Line::new(c.name.clone(), curve(Some(i)))
                        .color(COMPONENT)
                        .style(egui_plot::LineStyle::dashed_dense()),
                );
            }
        }
        if r.method == Method::Likelihood {
            // Fractions, not yields: the expectation per bin is the curve.
            let points: Vec<[f64; 2]> = r
                .bins
                .iter()
                .map(|b| [0.5 * (b.lo + b.hi), y(b.expected)])
                .collect();
            p.line(Line::new(r.model.clone(), points).color(CURVE).width(2.0));
        } else {
            p.line(
                Line::new(r.model.clone(), curve(None))
                    .color(CURVE)
                    .width(2.0),
            );
        }
    }

    /// The pulls below the plot and the parameter box (values ± errors, fix, χ²/ndf).
    pub fn results(&mut self, ui: &mut egui::Ui, salt: &str, link: egui::Id) {
        let Some((_, r)) = &self.fitted else {
            return;
        };
        let bars: Vec<Bar> = r
            .bins
            .iter()
            .map(|b| Bar::new(0.5 * (b.lo + b.hi), b.pull()).width(b.hi - b.lo))
            .collect();
        Plot::new(("alyx-fit-pulls", salt))
            .height(70.0)
            .y_axis_label("pull")
            .include_y(-3.0)
            .include_y(3.0)
            .link_axis(link, [true, false])
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new("pulls", bars).color(egui::Color32::from_rgb(150, 150, 200)),
                );
            });
        let mut hold: Option<Held> = None;
        let mut release: Option<String> = None;
        egui::Grid::new(("alyx-fit-params", salt))
            .striped(true)
            .show(ui, |ui| {
                ui.strong("parameter");
                ui.strong("value");
                ui.strong("error");
                ui.strong("fixed");
                ui.end_row();
                for p in &r.params {
                    ui.monospace(&p.name);
                    ui.monospace(format!("{:.6}", p.value));
                    ui.monospace(if p.fixed {
                        "—".into()
                    } else {
                        format!("± {:.6}", p.error)
                    });
                    let mut fixed = p.fixed;
                    if ui.checkbox(&mut fixed, "").changed() {
                        if fixed {
                            hold = Some(Held {
                                name: p.name.clone(),
                                value: p.value,
                            });
                        } else {
                            release = Some(p.name.clone());
                        }
                    }
                    ui.end_row();
                }
            });
        ui.label(format!(
            "χ²/ndf = {:.2}/{} · p = {:.3} · EDM {:.1e} · {}",
            r.chi2,
            r.ndf,
            r.p_value,
            r.edm,
            if r.converged {
                "converged"
            } else {
                "NOT converged"
            }
        ));
        if let Some(h) = hold {
            self.held.retain(|p| p.name != h.name);
            self.held.push(h);
        }
        if let Some(name) = release {
            self.held.retain(|p| p.name != name);
        }
    }
}

/// Writes `h` and its fit (when there is one) as a vector figure: SVG or PDF by the path's
/// extension.
pub fn write_figure(
    path: &std::path::Path,
    x_label: &str,
    h: &Histogram,
    fitted: Option<&(Model, FitResult)>,
) -> Result<(), crate::Error> {
    let edges = h.binning.edges();
    let errors = h.errors();
    let figure = alyx_fit::figure::Figure {
        x_label,
        edges: &edges,
        counts: &h.sum_w,
        errors: &errors,
        fit: fitted.map(|(m, r)| (m, r)),
    };
    let bytes = figure
        .for_path(path)
        .map_err(|e| crate::Error::Invalid(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| crate::Error::io(path, e))
}

/// Writes a 2-D histogram as a vector figure (SVG or PDF, by `path`'s extension) with its
/// colour scale.
pub fn write_map_figure(
    path: &std::path::Path,
    (x_label, y_label): (&str, &str),
    h: &alyx_core::histogram::Histogram2,
    log_z: bool,
) -> Result<(), crate::Error> {
    let (x_edges, y_edges) = (h.x.edges(), h.y.edges());
    let figure = alyx_fit::figure::MapFigure {
        x_label,
        y_label,
        x_edges: &x_edges,
        y_edges: &y_edges,
        cells: &h.sum_w,
        log_z,
    };
    let bytes = figure
        .for_path(path)
        .map_err(|e| crate::Error::Invalid(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| crate::Error::io(path, e))
}

/// A plot of `h` whose x axis the pulls panel shares.
pub fn linked<'a>(plot: Plot<'a>, link: egui::Id, fit: &FitState) -> Plot<'a> {
    plot.link_axis(link, [true, false])
        .allow_drag(fit.plot_drags())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::histogram::Binning;

    #[test]
    fn the_menu_makes_models_and_fits_follow_the_histogram() {
        let mut h = Histogram::new(Binning::fixed(40, 80.0, 100.0).expect("binning"));
        // A peak at 91 (σ = 2) over a flat floor, each bin filled with its expected count.
        for i in 0..40 {
            let x = 80.25 + 0.5 * f64::from(i);
            let count = 50.0 + 400.0 * (-0.5 * ((x - 91.0) / 2.0f64).powi(2)).exp();
            for _ in 0..count.round() as usize {
                h.fill(x, 1.0);
            }
        }
        let mut fit = FitState::default();
        assert_eq!(fit.model_spec(), "gauss+exp");
        fit.background = 2;
        assert_eq!(fit.model_spec(), "gauss+cheb0");
        fit.fit(&h);
        fit.settle();
        let (_, r) = fit.fitted.as_ref().expect("fitted");
        let mean = r.param("mean").expect("mean");
        assert!((mean.value - 91.0).abs() < 0.05, "{mean:?}");
        // Holding a parameter: the next fit keeps it.
        fit.held.push(Held {
            name: "sigma".into(),
            value: 2.5,
        });
        fit.range = Some((85.0, 97.0));
        fit.histogram_changed(Some(&h));
        fit.settle();
        let (_, r) = fit.fitted.as_ref().expect("refitted");
        assert_eq!(r.param("sigma").expect("s").value, 2.5);
        assert!(r.range.0 >= 85.0 && r.range.1 <= 97.0, "{:?}", r.range);
        // A model that does not parse says why and leaves no stale curve.
        fit.typed = "landau".into();
        fit.fit(&h);
        fit.settle();
        assert!(fit.fitted.is_none());
        assert!(
            fit.message
                .as_deref()
                .is_some_and(|m| m.contains("unknown shape"))
        );
    }

    /// What a user does with "⟷ range": press on the plot, drag across, let go. The range
    /// follows the drag in plot coordinates, and picking ends with the release.
    #[test]
    fn dragging_on_the_plot_picks_the_fit_range() {
        let ctx = egui::Context::default();
        let mut fit = FitState {
            picking_range: true,
            ..FitState::default()
        };
        let mut time = 0.0;
        let mut frame = |events: Vec<egui::Event>, fit: &mut FitState| -> egui::Rect {
            time += 0.05;
            let input = egui::RawInput {
                events,
                time: Some(time),
                screen_rect: Some(egui::Rect::from_min_size(
                    egui::Pos2::ZERO,
                    egui::vec2(800.0, 600.0),
                )),
                ..Default::default()
            };
            let mut rect = egui::Rect::NOTHING;
            ctx.run_ui(input, |ui| {
                let plot = Plot::new("range")
                    .width(400.0)
                    .height(300.0)
                    .include_x(0.0)
                    .include_x(100.0)
                    .include_y(0.0)
                    .include_y(1.0)
                    .allow_drag(fit.plot_drags());
                rect = plot.show(ui, |p| fit.draw(p, false)).response.rect;
            })
            .drop_without_applying_deltas();
            rect
        };
        let rect = frame(Vec::new(), &mut fit);
        let at = |f: f32| egui::pos2(rect.left() + f * rect.width(), rect.center().y);
        let button = |pos, pressed| egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        };
        frame(vec![egui::Event::PointerMoved(at(0.25))], &mut fit);
        frame(vec![button(at(0.25), true)], &mut fit);
        for k in 1..=10 {
            let f = 0.25 + 0.05 * k as f32;
            frame(vec![egui::Event::PointerMoved(at(f))], &mut fit);
        }
        assert!(fit.picking_range, "still picking while the button is down");
        frame(vec![button(at(0.75), false)], &mut fit);
        frame(Vec::new(), &mut fit);
        let (lo, hi) = fit.range.expect("a range from the drag");
        assert!(
            (15.0..35.0).contains(&lo) && (65.0..85.0).contains(&hi),
            "{lo}..{hi}"
        );
        assert!(!fit.picking_range, "the release ends picking");
        assert!(fit.plot_drags(), "the plot pans again");
    }
}

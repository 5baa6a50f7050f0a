//! A histogram and its fit as a vector figure for papers: SVG and PDF, with error bars, the
//! fitted curve and its components, a pulls panel and the parameter box; and a 2-D histogram
//! as cells coloured on a scale (viridis) with its colour bar.
//!
//! Written here rather than through a plotting crate: the figure is a few dozen lines and
//! rectangles, and both formats are plain text around them (PDF with its standard Helvetica,
//! which every reader has), where plotters or svg2pdf would bring font loading and rasterisers.

use std::fmt::Write as _;

use crate::fit::{FitResult, Method};
use crate::model::Model;

const W: f64 = 640.0;
const H: f64 = 480.0;
/// The plot area: left, top, right, bottom (y down, in points).
const MAIN: (f64, f64, f64, f64) = (70.0, 30.0, 620.0, 330.0);
const PULLS: (f64, f64, f64, f64) = (70.0, 345.0, 620.0, 430.0);

#[derive(Clone, Copy, Debug, PartialEq)]
struct Rgb(u8, u8, u8);

const BLACK: Rgb = Rgb(0, 0, 0);
const DATA: Rgb = Rgb(40, 90, 170);
const CURVE: Rgb = Rgb(220, 60, 30);
const PART: Rgb = Rgb(40, 150, 60);
const GREY: Rgb = Rgb(150, 150, 150);

#[derive(Clone, Debug)]
enum Prim {
    Line {
        points: Vec<(f64, f64)>,
        colour: Rgb,
        width: f64,
        dashed: bool,
    },
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Rgb,
    },
    Text {
        x: f64,
        y: f64,
        size: f64,
        /// 0 left, 0.5 centred, 1 right.
        anchor: f64,
        text: String,
    },
}

/// What the figure shows.
pub struct Figure<'a> {
    pub x_label: &'a str,
    pub edges: &'a [f64],
    pub counts: &'a [f64],
    /// Each bin's error (√Σw²).
    pub errors: &'a [f64],
    pub fit: Option<(&'a Model, &'a FitResult)>,
}

impl Figure<'_> {
    fn prims(&self) -> Vec<Prim> {
        let mut out = Vec::new();
        let n = self.counts.len().min(self.edges.len().saturating_sub(1));
        if n == 0 {
            return out;
        }
        let (x0, x1) = (self.edges[0], self.edges[n]);
        let top = (0..n)
            .map(|i| self.counts[i] + self.errors.get(i).copied().unwrap_or(0.0))
            .fold(0.0, f64::max)
            .max(1e-300)
            * 1.15;
        let (l, t, r, b) = MAIN;
        let sx = |x: f64| l + (x - x0) / (x1 - x0) * (r - l);
        let sy = |y: f64| b - (y / top).clamp(-0.05, 1.05) * (b - t);
        axes(
            &mut out,
            MAIN,
            (x0, x1),
            (0.0, top),
            Some("entries per bin"),
            None,
        );
        // Data: points with error bars, and the bin's width as a horizontal bar.
        for i in 0..n {
            let (lo, hi, c) = (self.edges[i], self.edges[i + 1], self.counts[i]);
            let e = self.errors.get(i).copied().unwrap_or(0.0);
            let xm = sx(0.5 * (lo + hi));
            out.push(Prim::Line {
                points: vec![(xm, sy(c - e)), (xm, sy(c + e))],
                colour: DATA,
                width: 1.0,
                dashed: false,
            });
            out.push(Prim::Line {
                points: vec![(sx(lo), sy(c)), (sx(hi), sy(c))],
                colour: DATA,
                width: 1.0,
                dashed: false,
            });
            out.push(Prim::Rect {
                x: xm - 1.5,
                y: sy(c) - 1.5,
                w: 3.0,
                h: 3.0,
                fill: DATA,
            });
        }
        let Some((model, fit)) = self.fit else {
            out.push(label(self.x_label, 0.5 * (l + r), b + 30.0, 12.0, 0.5));
            return out;
        };
        let values = fit.values(model);
        let width = |x: f64| {
            fit.bins
                .iter()
                .find(|b| b.lo <= x && x <= b.hi)
                .map_or(0.0, |b| b.hi - b.lo)
        };
        let xs: Vec<f64> = (0..=300)
            .map(|i| fit.range.0 + (fit.range.1 - fit.range.0) * f64::from(i) / 300.0)
            .collect();
        let curve = |c: Option<usize>| -> Vec<(f64, f64)> {
            xs.iter()
                .map(|&x| (sx(x), sy(model.curve(&values, fit.range, c, x) * width(x))))
                .collect()
        };
        if fit.method != Method::Likelihood {
            if model.components.len() > 1 {
                for i in 0..model.components.len() {
                    out.push(Prim::Line {
                        points: curve(Some(i)),
                        colour: PART,
                        width: 1.2,
                        dashed: true,
                    });
                }
            }
            out.push(Prim::Line {
                points: curve(None),
                colour: CURVE,
                width: 2.0,
                dashed: false,
            });
        } else {
            out.push(Prim::Line {
                points: fit
                    .bins
                    .iter()
                    .map(|b| (sx(0.5 * (b.lo + b.hi)), sy(b.expected)))
                    .collect(),
                colour: CURVE,
                width: 2.0,
                dashed: false,
            });
        }
        // The parameter box, top right.
        let mut lines = vec![format!("{} ({})", fit.model, fit.method.name())];
        for p in &fit.params {
            lines.push(match p.fixed {
                true => format!("{} = {} (fixed)", p.name, short(p.value)),
                false => format!("{} = {} ± {}", p.name, short(p.value), short(p.error)),
            });
        }
        lines.push(format!("χ²/ndf = {:.1}/{}", fit.chi2, fit.ndf));
        let box_w = lines.iter().map(|s| s.chars().count()).max().unwrap_or(10) as f64 * 5.6 + 12.0;
        let (bx, by) = (r - box_w - 6.0, t + 6.0);
        out.push(Prim::Line {
            points: vec![
                (bx, by),
                (bx + box_w, by),
                (bx + box_w, by + 13.0 * lines.len() as f64 + 8.0),
                (bx, by + 13.0 * lines.len() as f64 + 8.0),
                (bx, by),
            ],
            colour: GREY,
            width: 0.8,
            dashed: false,
        });
        for (k, line) in lines.into_iter().enumerate() {
            out.push(label(
                &line,
                bx + 6.0,
                by + 16.0 + 13.0 * k as f64,
                10.0,
                0.0,
            ));
        }
        // Pulls.
        let (pl, pt, pr, pb) = PULLS;
        let pmax = fit
            .bins
            .iter()
            .map(|b| b.pull().abs())
            .fold(3.0, f64::max)
            .min(10.0);
        axes(
            &mut out,
            PULLS,
            (x0, x1),
            (-pmax, pmax),
            Some("pull"),
            Some(self.x_label),
        );
        let py = |v: f64| pb - ((v + pmax) / (2.0 * pmax)).clamp(0.0, 1.0) * (pb - pt);
        out.push(Prim::Line {
            points: vec![(pl, py(0.0)), (pr, py(0.0))],
            colour: GREY,
            width: 0.5,
            dashed: false,
        });
        for bin in &fit.bins {
            let (a, z) = (py(0.0), py(bin.pull()));
            out.push(Prim::Rect {
                x: sx(bin.lo),
                y: a.min(z),
                w: sx(bin.hi) - sx(bin.lo),
                h: (a - z).abs(),
                fill: Rgb(150, 150, 200),
            });
        }
        out
    }

    /// The figure in the format `path`'s extension names: `.svg` or `.pdf`.
    pub fn for_path(&self, path: &std::path::Path) -> Result<Vec<u8>, crate::error::Error> {
        for_path(path, &self.prims())
    }

    /// The figure as SVG.
    pub fn svg(&self) -> String {
        svg(&self.prims())
    }

    /// The figure as a one-page PDF (vector, standard Helvetica).
    pub fn pdf(&self) -> Vec<u8> {
        pdf(&self.prims())
    }
}

/// What a 2-D figure shows: cells row by row (`y` outer), as `alyx_core`'s `Histogram2` holds
/// them.
pub struct MapFigure<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_edges: &'a [f64],
    pub y_edges: &'a [f64],
    pub cells: &'a [f64],
    pub log_z: bool,
}

impl MapFigure<'_> {
    fn prims(&self) -> Vec<Prim> {
        let mut out = Vec::new();
        let (nx, ny) = (
            self.x_edges.len().saturating_sub(1),
            self.y_edges.len().saturating_sub(1),
        );
        if nx == 0 || ny == 0 || self.cells.len() < nx * ny {
            return out;
        }
        let area = (70.0, 30.0, 540.0, 420.0);
        let (l, t, r, b) = area;
        let (x0, x1) = (self.x_edges[0], self.x_edges[nx]);
        let (y0, y1) = (self.y_edges[0], self.y_edges[ny]);
        let sx = |x: f64| l + (x - x0) / (x1 - x0) * (r - l);
        let sy = |y: f64| b - (y - y0) / (y1 - y0) * (b - t);
        let scale = Scale::of(self.cells, self.log_z);
        for iy in 0..ny {
            for ix in 0..nx {
                let Some(z) = scale.position(self.cells[iy * nx + ix]) else {
                    continue;
                };
                let (px, py) = (sx(self.x_edges[ix]), sy(self.y_edges[iy + 1]));
                out.push(Prim::Rect {
                    x: px,
                    y: py,
                    // A hair wider, so that neighbours leave no seam.
                    w: sx(self.x_edges[ix + 1]) - px + 0.3,
                    h: sy(self.y_edges[iy]) - py + 0.3,
                    fill: Rgb::from(viridis(z)),
                });
            }
        }
        axes(
            &mut out,
            area,
            (x0, x1),
            (y0, y1),
            Some(self.y_label),
            Some(self.x_label),
        );
        // The colour bar, right of the plot.
        let (cl, cr) = (r + 20.0, r + 34.0);
        let steps = 64;
        for k in 0..steps {
            let (t0, t1) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            out.push(Prim::Rect {
                x: cl,
                y: b - t1 * (b - t),
                w: cr - cl,
                h: (t1 - t0) * (b - t) + 0.3,
                fill: Rgb::from(viridis(0.5 * (t0 + t1))),
            });
        }
        for z in [0.0, 0.25, 0.5, 0.75, 1.0] {
            out.push(label(
                &short(scale.value(z)),
                cr + 4.0,
                b - z * (b - t) + 3.0,
                9.0,
                0.0,
            ));
        }
        out.push(label(
            if self.log_z {
                "entries (log)"
            } else {
                "entries"
            },
            cl,
            t - 8.0,
            10.0,
            0.0,
        ));
        out
    }

    /// The figure in the format `path`'s extension names: `.svg` or `.pdf`.
    pub fn for_path(&self, path: &std::path::Path) -> Result<Vec<u8>, crate::error::Error> {
        for_path(path, &self.prims())
    }

    pub fn svg(&self) -> String {
        svg(&self.prims())
    }

    pub fn pdf(&self) -> Vec<u8> {
        pdf(&self.prims())
    }
}

/// A colour scale: a cell's content → a position 0–1, between the smallest filled cell and the
/// fullest (log) or 0 and the fullest (linear).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Scale {
    pub fn of(cells: &[f64], log: bool) -> Scale {
        let hi = cells.iter().copied().fold(0.0, f64::max);
        let lo = if log {
            cells
                .iter()
                .copied()
                .filter(|w| *w > 0.0)
                .fold(hi, f64::min)
        } else {
            0.0
        };
        Scale { lo, hi, log }
    }

    /// Where `w` lies on the scale, 0–1; `None` for an empty cell (or a negative one).
    pub fn position(&self, w: f64) -> Option<f64> {
        if !(w > 0.0) || !(self.hi > 0.0) {
            return None;
        }
        let t = if self.log {
            let span = (self.hi / self.lo).ln();
            if span > 0.0 {
                (w / self.lo).ln() / span
            } else {
                1.0
            }
        } else {
            w / self.hi
        };
        Some(t.clamp(0.0, 1.0))
    }

    /// The content at position `t` (for a colour bar's labels).
    pub fn value(&self, t: f64) -> f64 {
        if self.log {
            self.lo * (self.hi / self.lo).powf(t)
        } else {
            self.hi * t
        }
    }
}

/// Viridis, from dark violet (0) to yellow (1), interpolated between nine of its colours:
/// readable in grey and by the colour-blind.
pub fn viridis(t: f64) -> (u8, u8, u8) {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let x = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) } * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl From<(u8, u8, u8)> for Rgb {
    fn from((r, g, b): (u8, u8, u8)) -> Self {
        Rgb(r, g, b)
    }
}

/// `prims` in the format `path`'s extension names: `.svg` or `.pdf`.
fn for_path(path: &std::path::Path, prims: &[Prim]) -> Result<Vec<u8>, crate::error::Error> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => Ok(svg(prims).into_bytes()),
        Some("pdf") => Ok(pdf(prims)),
        _ => Err(crate::error::Error::Figure(format!(
            "{}: a figure is .svg or .pdf",
            path.display()
        ))),
    }
}

/// `prims` as SVG.
fn svg(prims: &[Prim]) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    );
    for p in prims.iter().cloned() {
        match p {
            Prim::Line {
                points,
                colour,
                width,
                dashed,
            } => {
                let pts: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{x:.2},{y:.2}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"{}/>",
                    pts.join(" "),
                    css(colour),
                    if dashed {
                        " stroke-dasharray=\"5,3\""
                    } else {
                        ""
                    }
                );
            }
            Prim::Rect { x, y, w, h, fill } => {
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" fill=\"{}\"/>",
                    css(fill)
                );
            }
            Prim::Text {
                x,
                y,
                size,
                anchor,
                text,
            } => {
                let anchor = match anchor {
                    a if a < 0.25 => "start",
                    a if a > 0.75 => "end",
                    _ => "middle",
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{x:.2}\" y=\"{y:.2}\" font-size=\"{size}\" text-anchor=\"{anchor}\">{}</text>",
                    escape_xml(&text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// `prims` as a one-page PDF (vector, standard Helvetica).
fn pdf(prims: &[Prim]) -> Vec<u8> {
    let mut c = String::new();
    let y = |v: f64| H - v;
    for p in prims.iter().cloned() {
        match p {
            Prim::Line {
                points,
                colour,
                width,
                dashed,
            } => {
                let _ = write!(
                    c,
                    "{} RG {width} w {} d ",
                    rgb(colour),
                    if dashed { "[5 3] 0" } else { "[] 0" }
                );
                for (k, (px, py)) in points.iter().enumerate() {
                    let _ = write!(
                        c,
                        "{px:.2} {:.2} {} ",
                        y(*py),
                        if k == 0 { "m" } else { "l" }
                    );
                }
                c.push_str("S\n");
            }
            Prim::Rect {
                x,
                y: ry,
                w,
                h,
                fill,
            } => {
                let _ = writeln!(
                    c,
                    "{} rg {x:.2} {:.2} {w:.2} {h:.2} re f",
                    rgb(fill),
                    y(ry + h)
                );
            }
            Prim::Text {
                x,
                y: ty,
                size,
                anchor,
                text,
            } => {
                let encoded = pdf_text(&text);
                // Helvetica's average advance is about half the size.
                let shift = anchor * 0.5 * size * text.chars().count() as f64;
                let _ = writeln!(
                    c,
                    "0 0 0 rg BT /F1 {size} Tf {:.2} {:.2} Td ({encoded}) Tj ET",
                    x - shift,
                    y(ty)
                );
            }
        }
    }
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {W} {H}] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{c}endstream", c.len()),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = pdf.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = write!(tail, "{o:010} 00000 n \n");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    pdf.extend(tail.bytes());
    pdf
}

fn label(text: &str, x: f64, y: f64, size: f64, anchor: f64) -> Prim {
    Prim::Text {
        x,
        y,
        size,
        anchor,
        text: text.to_owned(),
    }
}

/// A frame with ticks and numbers on both axes.
fn axes(
    out: &mut Vec<Prim>,
    (l, t, r, b): (f64, f64, f64, f64),
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    y_label: Option<&str>,
    x_label: Option<&str>,
) {
    out.push(Prim::Line {
        points: vec![(l, t), (r, t), (r, b), (l, b), (l, t)],
        colour: BLACK,
        width: 1.0,
        dashed: false,
    });
    for x in ticks(x0, x1) {
        let px = l + (x - x0) / (x1 - x0) * (r - l);
        out.push(Prim::Line {
            points: vec![(px, b), (px, b - 5.0)],
            colour: BLACK,
            width: 0.8,
            dashed: false,
        });
        out.push(label(&short(x), px, b + 12.0, 9.0, 0.5));
    }
    for y in ticks(y0, y1) {
        let py = b - (y - y0) / (y1 - y0) * (b - t);
        out.push(Prim::Line {
            points: vec![(l, py), (l + 5.0, py)],
            colour: BLACK,
            width: 0.8,
            dashed: false,
        });
        out.push(label(&short(y), l - 4.0, py + 3.0, 9.0, 1.0));
    }
    if let Some(y_label) = y_label {
        out.push(label(y_label, l - 60.0, t - 8.0, 10.0, 0.0));
    }
    if let Some(x_label) = x_label {
        out.push(label(x_label, 0.5 * (l + r), b + 28.0, 12.0, 0.5));
    }
}

/// Round numbers across [lo, hi]: steps of 1, 2 or 5 times a power of ten, at most ~8.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    (0..20)
        .map(|k| (first + k) as f64 * step)
        .take_while(|v| *v <= hi + 1e-9 * span)
        .collect()
}

/// Up to five significant digits.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (4 - v.abs().log10().floor() as i32).clamp(0, 10) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn css(c: Rgb) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

fn rgb(c: Rgb) -> String {
    format!(
        "{:.3} {:.3} {:.3}",
        f64::from(c.0) / 255.0,
        f64::from(c.1) / 255.0,
        f64::from(c.2) / 255.0
    )
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a PDF string in WinAnsi: ±, ² and ⊗ … as their codes or spelled out, parentheses
/// and backslashes escaped, anything else outside ASCII as `?`.
fn pdf_text(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        match ch {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            '±' => out.push_str("\\261"),
            '²' => out.push_str("\\262"),
            'χ' => out.push_str("chi"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FitOptions, Histogram, fit};

    #[test]
    fn figures_hold_the_data_the_curve_and_the_parameters() {
        let counts: Vec<f64> = (0..40)
            .map(|i| {
                let x = 80.25 + 0.5 * f64::from(i);
                (30.0 + 300.0 * (-0.5 * ((x - 91.0) / 2.0f64).powi(2)).exp()).round()
            })
            .collect();
        let h = Histogram::uniform(80.0, 100.0, counts.clone()).expect("h");
        let model = Model::parse("gauss+cheb0").expect("model");
        let r = fit(&h, &model, &FitOptions::default()).expect("fit");
        let errors: Vec<f64> = counts.iter().map(|c| c.sqrt()).collect();
        let figure = Figure {
            x_label: "m(μμ) [GeV]",
            edges: h.edges(),
            counts: &counts,
            errors: &errors,
            fit: Some((&model, &r)),
        };
        let svg = figure.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("mean = 91"), "the parameter box");
        assert!(svg.contains("χ²/ndf"));
        assert!(svg.contains("m(μμ) [GeV]"));
        // 40 bins × (error bar, bin line) + frame, ticks, curve, components…
        assert!(svg.matches("<polyline").count() > 80);
        let pdf = figure.pdf();
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4") && text.trim_end().ends_with("%%EOF"));
        assert!(text.contains("(mean = 91"));
        assert!(text.contains("chi\\262/ndf"));
        // The cross-reference table points at each object.
        let xref: usize = text
            .split("startxref\n")
            .nth(1)
            .and_then(|s| s.lines().next())
            .and_then(|s| s.parse().ok())
            .expect("startxref");
        assert!(text[xref..].starts_with("xref"));
        for line in text[xref..].lines().skip(3).take(5) {
            let offset: usize = line[..10].parse().expect("offset");
            assert!(text[offset..].starts_with(char::is_numeric), "{line}");
        }
        assert_eq!(ticks(80.0, 100.0), [80.0, 85.0, 90.0, 95.0, 100.0]);
        assert_eq!(pdf_text("a(b)±\\"), "a\\(b\\)\\261\\\\");
    }

    #[test]
    fn a_map_figure_colours_its_filled_cells_and_labels_its_scale() {
        let cells = [0.0, 1.0, 10.0, 100.0, 0.0, 5.0];
        let figure = MapFigure {
            x_label: "η",
            y_label: "φ (rad)",
            x_edges: &[0.0, 1.0, 2.0, 3.0],
            y_edges: &[0.0, 1.0, 2.0],
            cells: &cells,
            log_z: true,
        };
        let svg = figure.svg();
        // The background, four filled cells and the colour bar's 64 strips.
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 64);
        assert!(
            svg.contains(">100</text>") && svg.contains(">10</text>"),
            "{svg}"
        );
        assert!(svg.contains(&css(Rgb::from(viridis(1.0)))));
        assert!(svg.contains("φ (rad)"));
        assert!(figure.pdf().starts_with(b"%PDF-1.4"));
        // Fewer cells than the edges need: an empty figure, not a panic.
        let short = MapFigure {
            cells: &cells[..2],
            ..figure
        };
        assert_eq!(short.svg().matches("<rect").count(), 1);

        let log = Scale::of(&cells, true);
        assert_eq!((log.lo, log.hi), (1.0, 100.0));
        assert!((log.position(10.0).expect("filled") - 0.5).abs() < 1e-12);
        assert_eq!(log.position(0.0), None);
        assert_eq!(Scale::of(&cells, false).position(50.0), Some(0.5));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }
}

//! How every window draws a 2-D histogram (an η–φ occupancy map, the Armenteros–Podolanski
//! plot): each cell coloured by its content on a linear or log scale (viridis, readable in
//! grey and by the colour-blind), empty cells left out, a colour bar beside the plot and the
//! hovered cell's content below it. Used by the Histograms window and notebook plot cells.
//!
//! Equal-width binnings are drawn as one texture of one texel per cell (a million cells cost
//! one image); variable binnings as one rectangle per filled cell.

use std::hash::{Hash, Hasher};

use alyx_core::histogram::{Binning, Histogram2};
use alyx_fit::figure::{Scale, viridis};
use bevy_egui::egui::{self, Color32};
use egui_plot::{Plot, PlotImage, PlotPoint, Polygon};

/// What to draw.
pub struct Heatmap<'a> {
    pub histogram: &'a Histogram2,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_z: bool,
    pub height: f32,
}

/// Viridis as egui's colour.
fn colour(t: f64) -> Color32 {
    let (r, g, b) = viridis(t);
    Color32::from_rgb(r, g, b)
}

/// The cell of `h` under the point (`x`, `y`), if inside.
pub fn cell_at(h: &Histogram2, x: f64, y: f64) -> Option<(usize, usize)> {
    let inside = |b: &Binning, v: f64| {
        b.index(v)
            .filter(|i| (0..b.bins() as i64).contains(i))
            .map(|i| i as usize)
    };
    Some((inside(&h.x, x)?, inside(&h.y, y)?))
}

/// Draws the heat map with its colour bar; returns their row's response (its rect is what a
/// PNG export cuts out: axes and colour bar included).
pub fn show(
    ui: &mut egui::Ui,
    id: impl Hash + Copy + std::fmt::Debug,
    map: &Heatmap,
) -> egui::Response {
    let h = map.histogram;
    let scale = Scale::of(&h.sum_w, map.log_z);
    let (ex, ey) = (h.x.edges(), h.y.edges());
    let (nx, ny) = (h.x.bins(), h.y.bins());
    let texture = match (&h.x, &h.y) {
        (Binning::Fixed { .. }, Binning::Fixed { .. }) => Some(texture(ui.ctx(), id, h, scale)),
        _ => None,
    };
    let mut hovered = None;
    let bar_width = 64.0;
    let response = ui
        .horizontal(|ui| {
            let plot = Plot::new(("alyx-heatmap", id))
                .height(map.height)
                .width((ui.available_width() - bar_width).max(120.0))
                .x_axis_label(map.x_label)
                .y_axis_label(map.y_label)
                .include_x(ex[0])
                .include_x(ex[nx])
                .include_y(ey[0])
                .include_y(ey[ny]);
            plot.show(ui, |p| {
                if let Some(texture) = &texture {
                    let centre = PlotPoint::new(0.5 * (ex[0] + ex[nx]), 0.5 * (ey[0] + ey[ny]));
                    let size = [(ex[nx] - ex[0]) as f32, (ey[ny] - ey[0]) as f32];
                    p.image(PlotImage::new("cells", texture.id(), centre, size));
                } else {
                    for iy in 0..ny {
                        for ix in 0..nx {
                            let Some(t) = scale.position(h.at(ix, iy)) else {
                                continue;
                            };
                            let (x0, x1, y0, y1) = (ex[ix], ex[ix + 1], ey[iy], ey[iy + 1]);
                            p.polygon(
                                Polygon::new("cells", vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                                    .fill_color(colour(t))
                                    .stroke(egui::Stroke::NONE),
                            );
                        }
                    }
                }
                hovered = p
                    .pointer_coordinate()
                    .and_then(|at| Some((at, cell_at(h, at.x, at.y)?)));
            });
            colour_bar(ui, scale, map.height, bar_width);
        })
        .response;
    let entries: u64 = h.entries.iter().sum();
    ui.weak(match hovered {
        Some((_, (ix, iy))) => format!(
            "{} [{:.4}, {:.4}) · {} [{:.4}, {:.4}): {} entries",
            map.x_label,
            ex[ix],
            ex[ix + 1],
            map.y_label,
            ey[iy],
            ey[iy + 1],
            h.at(ix, iy)
        ),
        None => format!(
            "{entries} entries in {nx} × {ny} cells · {} outside · {} missing",
            h.outside, h.missing
        ),
    });
    response
}

/// The cells as a texture of one texel per cell (row 0 at the top, so the highest y first),
/// made again only when the histogram or the scale changes.
fn texture(
    ctx: &egui::Context,
    id: impl Hash + std::fmt::Debug,
    h: &Histogram2,
    scale: Scale,
) -> egui::TextureHandle {
    let mut hasher = std::hash::DefaultHasher::new();
    h.sum_w.iter().for_each(|w| w.to_bits().hash(&mut hasher));
    (h.x.bins(), h.y.bins(), scale.log).hash(&mut hasher);
    let key = hasher.finish();
    let slot = egui::Id::new(("alyx-heatmap-texture", id));
    if let Some((k, t)) = ctx.data(|d| d.get_temp::<(u64, egui::TextureHandle)>(slot))
        && k == key
    {
        return t;
    }
    let (nx, ny) = (h.x.bins(), h.y.bins());
    let mut pixels = Vec::with_capacity(nx * ny);
    for iy in (0..ny).rev() {
        for ix in 0..nx {
            pixels.push(
                scale
                    .position(h.at(ix, iy))
                    .map_or(Color32::TRANSPARENT, colour),
            );
        }
    }
    let image = egui::ColorImage::new([nx, ny], pixels);
    let t = ctx.load_texture("alyx-heatmap", image, egui::TextureOptions::NEAREST);
    ctx.data_mut(|d| d.insert_temp(slot, (key, t.clone())));
    t
}

/// A vertical bar of the scale's colours, labelled at its ends and middle.
fn colour_bar(ui: &mut egui::Ui, scale: Scale, height: f32, width: f32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, height), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let bar = egui::Rect::from_min_max(
        rect.min + egui::vec2(4.0, 8.0),
        egui::pos2(rect.min.x + 18.0, rect.max.y - 8.0),
    );
    let steps = 48;
    for k in 0..steps {
        let t0 = k as f32 / steps as f32;
        let t1 = (k + 1) as f32 / steps as f32;
        let strip = egui::Rect::from_x_y_ranges(
            bar.x_range(),
            egui::Rangef::new(
                bar.bottom() - t1 * bar.height(),
                bar.bottom() - t0 * bar.height(),
            ),
        );
        painter.rect_filled(strip, 0.0, colour(f64::from(t0 + t1) / 2.0));
    }
    let text = ui.visuals().text_color();
    for t in [0.0, 0.5, 1.0] {
        let y = bar.bottom() - t as f32 * bar.height();
        painter.text(
            egui::pos2(bar.right() + 4.0, y),
            egui::Align2::LEFT_CENTER,
            bar_label(scale.value(t)),
            egui::FontId::proportional(11.0),
            text,
        );
    }
}

/// A colour-bar label: whole numbers from 10 up, two decimals below.
fn bar_label(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> Histogram2 {
        let b = |n| Binning::fixed(n, 0.0, 1.0).expect("binning");
        let mut h = Histogram2::new(b(4), b(3)).expect("histogram");
        for (x, y, w) in [(0.1, 0.1, 1.0), (0.6, 0.9, 100.0), (0.6, 0.5, 10.0)] {
            h.fill(x, y, w);
        }
        h
    }

    #[test]
    fn cells_are_found_under_the_pointer_and_coloured_by_viridis() {
        let h = map();
        assert_eq!(cell_at(&h, 0.6, 0.9), Some((2, 2)));
        assert_eq!(cell_at(&h, 1.2, 0.5), None);
        assert_ne!(colour(0.0), colour(1.0));
        assert_eq!(colour(-1.0), colour(0.0));
        assert_eq!(bar_label(31.6), "32");
        assert_eq!(bar_label(3.162), "3.16");
    }

    #[test]
    fn a_map_draws_with_its_texture_and_colour_bar() {
        let h = map();
        let variable = {
            let mut v = Histogram2::new(
                Binning::variable(vec![0.0, 0.1, 1.0]).expect("edges"),
                Binning::fixed(2, 0.0, 1.0).expect("binning"),
            )
            .expect("histogram");
            v.fill(0.05, 0.2, 1.0);
            v
        };
        let ctx = egui::Context::default();
        for log_z in [false, true] {
            let mut sizes = Vec::new();
            ctx.run_ui(egui::RawInput::default(), |ui| {
                for (k, h) in [&h, &variable].into_iter().enumerate() {
                    let map = Heatmap {
                        histogram: h,
                        x_label: "η",
                        y_label: "φ",
                        log_z,
                        height: 200.0,
                    };
                    sizes.push(show(ui, k, &map).rect.height());
                }
            })
            .drop_without_applying_deltas();
            assert!(sizes.iter().all(|s| *s >= 200.0), "{sizes:?}");
        }
        let cached = ctx.data(|d| {
            d.get_temp::<(u64, egui::TextureHandle)>(egui::Id::new((
                "alyx-heatmap-texture",
                0usize,
            )))
        });
        assert_eq!(cached.expect("the texture is kept").1.size(), [4, 3]);
    }
}

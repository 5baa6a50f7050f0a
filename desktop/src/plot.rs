//! How every window draws and exports a histogram: the bars and error bars on a linear or log
//! scale, the log axis's decades, and the plot's pixels cut out of a screenshot as a PNG. Used
//! by the Histograms window and the query builder alike.

use std::path::Path;

use alyx_core::histogram::Histogram;
use bevy::math::URect;
use bevy::prelude::*;
use bevy_egui::egui;
use egui_plot::{GridInput, GridMark};

use crate::Error;

/// The pixels of `rect` (egui points) on a screen of `pixels_per_point`, rounded outwards.
pub fn pixel_rect(rect: egui::Rect, pixels_per_point: f32) -> URect {
    let px = |v: f32, round: fn(f32) -> f32| round(v * pixels_per_point).max(0.0) as u32;
    URect::new(
        px(rect.min.x, f32::floor),
        px(rect.min.y, f32::floor),
        px(rect.max.x, f32::ceil),
        px(rect.max.y, f32::ceil),
    )
}

/// Saves the part `rect_px` of `image` (a screenshot) as an RGB PNG at `path`.
pub fn crop_png(image: &Image, rect_px: URect, path: &Path) -> Result<(), Error> {
    let full = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| Error::Invalid(format!("cannot read the screenshot: {e}")))?;
    let (w, h) = (full.width(), full.height());
    let (x0, y0) = (rect_px.min.x.min(w), rect_px.min.y.min(h));
    let (x1, y1) = (rect_px.max.x.min(w), rect_px.max.y.min(h));
    if x1 <= x0 || y1 <= y0 {
        return Err(Error::Invalid(format!(
            "the plot ({rect_px:?}) is outside the {w}×{h} screenshot"
        )));
    }
    // The alpha channel of a screenshot is not opacity (it holds brightness with HDR).
    full.crop_imm(x0, y0, x1 - x0, y1 - y0)
        .to_rgb8()
        .save(path)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// A bin as drawn: its bar from `base` to `top` and its error bar from `error_lo` to
/// `error_hi`, on the plotted y scale (log10 of the count on a log scale).
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnBin {
    pub lo: f64,
    pub hi: f64,
    pub count: f64,
    pub error: f64,
    pub base: f64,
    pub top: f64,
    pub error_lo: f64,
    pub error_hi: f64,
}

/// The bins to draw. On a log scale empty bins are left out and bars start half a decade
/// below the smallest count, rounded down to a power of ten.
pub fn drawn_bins(h: &Histogram, log_y: bool) -> Vec<DrawnBin> {
    let edges = h.binning.edges();
    let errors = h.errors();
    let bins = h
        .sum_w
        .iter()
        .zip(&errors)
        .enumerate()
        .map(|(i, (&count, &error))| DrawnBin {
            lo: edges[i],
            hi: edges[i + 1],
            count,
            error,
            base: 0.0,
            top: count,
            error_lo: count - error,
            error_hi: count + error,
        });
    if !log_y {
        return bins.collect();
    }
    let filled: Vec<DrawnBin> = bins.filter(|b| b.count > 0.0).collect();
    let smallest = filled
        .iter()
        .map(|b| b.count.log10())
        .fold(f64::INFINITY, f64::min);
    let floor = (smallest - 0.5).floor();
    filled
        .into_iter()
        .map(|b| DrawnBin {
            base: floor,
            top: b.count.log10(),
            error_lo: if b.count > b.error {
                (b.count - b.error).log10()
            } else {
                floor
            },
            error_hi: (b.count + b.error).log10(),
            ..b
        })
        .collect()
}

/// A log axis label: `10^k` written out, for whole decades only.
pub fn decade_label(k: f64) -> String {
    // Beyond 10^±308 no count exists (a wild zoom gets there): no label.
    if !((k - k.round()).abs() <= 1e-6 && k.abs() <= 308.0) {
        return String::new();
    }
    match k.round() as i32 {
        k @ -3..=5 => format!("{}", 10f64.powi(k)),
        k => format!("1e{k}"),
    }
}

/// Grid lines at whole decades (enough of them to stay readable).
pub fn decade_grid(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let step = ((hi - lo) / 8.0).ceil().max(1.0);
    let first = (lo / step).floor() * step;
    // At most nine steps cover the range; the count also ends the walk where `k + step == k`
    // (bounds near 1e17 and beyond, after a wild zoom).
    (0..10)
        .map(|i| first + f64::from(i) * step)
        .take_while(|k| *k <= hi)
        .map(|value| GridMark {
            value,
            step_size: step,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_core::histogram::Binning;
    use bevy::asset::RenderAssetUsages;
    use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};

    proptest::proptest! {
        /// The log axis's labels and grid hold for any bounds egui may hand over (a zoom can
        /// reach 1e300, an empty plot gives infinities or NaN): a short label, a few marks.
        #[test]
        fn log_axis_labels_and_grid_hold_for_any_doubles(
            a in proptest::num::f64::ANY, b in proptest::num::f64::ANY,
        ) {
            proptest::prop_assert!(decade_label(a).len() <= 8);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let marks = decade_grid(GridInput { bounds: (lo, hi), base_step_size: 1.0 });
            proptest::prop_assert!(marks.len() <= 10);
            proptest::prop_assert!(marks.iter().all(|m| m.value <= hi));
        }
    }

    /// A 4×3 RGBA image whose pixel (x, y) is (10x, 10y, 7, 255).
    fn gradient(format: TextureFormat) -> Image {
        let mut data = Vec::new();
        for y in 0..3u8 {
            for x in 0..4u8 {
                data.extend([10 * x, 10 * y, 7, 255]);
            }
        }
        if format == TextureFormat::Bgra8UnormSrgb {
            data.chunks_mut(4).for_each(|p| p.swap(0, 2));
        }
        Image::new(
            Extent3d {
                width: 4,
                height: 3,
                depth_or_array_layers: 1,
            },
            TextureDimension::D2,
            data,
            format,
            RenderAssetUsages::default(),
        )
    }

    fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("open"),
        ));
        let mut reader = decoder.read_info().expect("png");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn crop_png_keeps_exactly_the_plot_rectangle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plot.png");
        // Window screenshots are BGRA: the crop must come out in the right colours.
        for format in [TextureFormat::Rgba8UnormSrgb, TextureFormat::Bgra8UnormSrgb] {
            crop_png(&gradient(format), URect::new(1, 1, 3, 3), &path).expect("crop");
            let (w, h, rgb) = read_png(&path);
            assert_eq!((w, h), (2, 2));
            assert_eq!(rgb, [10, 10, 7, 20, 10, 7, 10, 20, 7, 20, 20, 7]);
        }
        // A rectangle reaching past the edge is clipped; one outside the image is refused.
        crop_png(
            &gradient(TextureFormat::Rgba8UnormSrgb),
            URect::new(2, 0, 99, 99),
            &path,
        )
        .expect("clipped");
        assert_eq!(read_png(&path).0, 2);
        let err = crop_png(
            &gradient(TextureFormat::Rgba8UnormSrgb),
            URect::new(5, 0, 9, 2),
            &path,
        )
        .expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
        // egui points to pixels, rounded outwards.
        let rect = egui::Rect::from_min_max(egui::pos2(10.2, 5.0), egui::pos2(20.5, 7.9));
        assert_eq!(pixel_rect(rect, 2.0), URect::new(20, 10, 41, 16));
    }

    #[test]
    fn log_scale_skips_empty_bins_and_clips_error_bars_at_the_floor() {
        let mut h = Histogram::new(Binning::fixed(3, 0.0, 3.0).expect("binning"));
        h.fill(0.5, 1.0);
        (0..100).for_each(|_| h.fill(2.5, 1.0));
        let linear = drawn_bins(&h, false);
        assert_eq!(linear.len(), 3);
        assert_eq!(
            (linear[2].top, linear[2].error_lo, linear[2].error_hi),
            (100.0, 90.0, 110.0)
        );
        let log = drawn_bins(&h, true);
        assert_eq!(log.len(), 2, "the empty bin is not drawn");
        assert_eq!(
            (log[0].base, log[0].top, log[0].error_lo),
            (-1.0, 0.0, -1.0)
        );
        assert_eq!(log[1].top, 2.0);
        assert!((log[1].error_lo - 90f64.log10()).abs() < 1e-12);
        assert_eq!(
            (decade_label(2.0), decade_label(-1.0), decade_label(0.5)),
            ("100".into(), "0.1".into(), String::new())
        );
        assert_eq!(decade_label(7.0), "1e7");
    }
}

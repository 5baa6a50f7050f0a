//! The Histograms window's contents: quantity (or 2-D map), binning, log scale, the plot,
//! export.

use super::data::*;
use crate::plot::{decade_grid, decade_label, drawn_bins, pixel_rect};
use alyx_core::histogram::{Histogram, Histogram2};
use bevy::math::URect;
use bevy::prelude::*;
use bevy_egui::egui;
use egui_plot::{Bar, BarChart, Line, Plot};
use std::path::PathBuf;

/// What the user asked for in the panel.
#[derive(Clone, Debug, PartialEq)]
pub enum HistogramAction {
    /// Fill the histogram of the chosen quantity and binning.
    Fill,
    ExportCsv(PathBuf),
    ExportPng(PathBuf),
    /// The plot and its fit as a vector figure (SVG or PDF, by extension).
    ExportFigure(PathBuf),
}

/// The panel's view model.
#[derive(Clone, Debug)]
pub struct HistogramView {
    pub quantity: Quantity,
    /// A 2-D map chosen instead of the quantity.
    pub map: Option<Map>,
    pub bins: usize,
    pub lo: f64,
    pub hi: f64,
    /// The y binning of a map.
    pub y_bins: usize,
    pub y_lo: f64,
    pub y_hi: f64,
    pub log_y: bool,
    pub error_bars: bool,
    /// The last histogram filled, and of what.
    pub shown: Option<(Quantity, Histogram)>,
    /// The last map filled, and of what.
    pub shown_map: Option<(Map, Histogram2)>,
    /// Counts histograms filled, so the plot's zoom resets for each.
    pub generation: u64,
    pub loading: bool,
    /// Where exports go (the extension is set by the format).
    pub export_path: String,
    pub message: Option<String>,
    /// Where the plot was drawn last, in screen pixels (for the PNG export).
    pub plot_rect_px: Option<URect>,
    pub fit: crate::fit::FitState,
}

impl Default for HistogramView {
    fn default() -> Self {
        let quantity = Quantity::default();
        let (bins, lo, hi) = quantity.default_range();
        let [_, (y_bins, y_lo, y_hi)] = Map::EtaPhi.default_ranges();
        Self {
            quantity,
            map: None,
            bins,
            lo,
            hi,
            y_bins,
            y_lo,
            y_hi,
            log_y: false,
            error_bars: true,
            shown: None,
            shown_map: None,
            generation: 0,
            loading: false,
            export_path: "alyx-histogram".into(),
            message: None,
            plot_rect_px: None,
            fit: crate::fit::FitState::default(),
        }
    }
}

/// The "Histograms" panel: quantity and binning, the plot, statistics and export.
pub fn histogram_panel(ui: &mut egui::Ui, view: &mut HistogramView) -> Vec<HistogramAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let selected = view.map.map_or(view.quantity.name(), Map::name);
        egui::ComboBox::from_id_salt("alyx-histogram-quantity")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                for q in Quantity::ALL {
                    if ui
                        .selectable_label(view.map.is_none() && view.quantity == q, q.name())
                        .clicked()
                    {
                        (view.quantity, view.map) = (q, None);
                        (view.bins, view.lo, view.hi) = q.default_range();
                        actions.push(HistogramAction::Fill);
                    }
                }
                ui.separator();
                for m in Map::ALL {
                    if ui.selectable_label(view.map == Some(m), m.name()).clicked() {
                        view.map = Some(m);
                        let [x, y] = m.default_ranges();
                        (view.bins, view.lo, view.hi) = x;
                        (view.y_bins, view.y_lo, view.y_hi) = y;
                        actions.push(HistogramAction::Fill);
                    }
                }
            });
        if view.map.is_some() {
            ui.label("x");
        }
        binning(ui, &mut view.bins, &mut view.lo, &mut view.hi);
        if ui.button("fill").clicked() {
            actions.push(HistogramAction::Fill);
        }
        if view.loading {
            ui.spinner();
        }
    });
    if view.map.is_some() {
        ui.horizontal(|ui| {
            ui.label("y");
            binning(ui, &mut view.y_bins, &mut view.y_lo, &mut view.y_hi);
        });
    }
    ui.horizontal(|ui| {
        ui.checkbox(&mut view.log_y, "log scale");
        if view.map.is_none() {
            ui.checkbox(&mut view.error_bars, "error bars");
        }
    });

    if let Some(map) = view.map {
        match &view.shown_map {
            Some((shown, h)) if *shown == map => {
                let (x_label, y_label) = map.axis_labels();
                let heatmap = crate::heatmap::Heatmap {
                    histogram: h,
                    x_label,
                    y_label,
                    log_z: view.log_y,
                    height: 320.0,
                };
                let drawn = crate::heatmap::show(ui, ("histograms", view.generation), &heatmap);
                view.plot_rect_px = Some(pixel_rect(drawn.rect, ui.ctx().pixels_per_point()));
            }
            _ => view.plot_rect_px = None,
        }
        let shown = view.shown_map.is_some();
        export_row(ui, view, shown, &mut actions);
        return actions;
    }
    if let Some((_, h)) = &view.shown {
        view.fit.controls(ui, "histograms", h);
    }
    if let Some((quantity, h)) = &view.shown {
        let log_y = view.log_y;
        let link = egui::Id::new(("alyx-histogram-x", view.generation));
        let mut plot = Plot::new(("alyx-histogram", view.generation, log_y))
            .height(300.0)
            .x_axis_label(quantity.axis_label())
            .y_axis_label("entries per bin");
        plot = if log_y {
            plot.y_grid_spacer(decade_grid)
                .y_axis_formatter(|mark, _| decade_label(mark.value))
        } else {
            plot.include_y(0.0)
        };
        let plot = crate::fit::linked(plot, link, &view.fit);
        let bins = drawn_bins(h, log_y);
        let error_bars = view.error_bars;
        let fit = &mut view.fit;
        let drawn = ui.scope(|ui| {
            plot.show(ui, |plot_ui| {
                let bars = bins
                    .iter()
                    .map(|b| {
                        Bar::new(0.5 * (b.lo + b.hi), b.top - b.base)
                            .base_offset(b.base)
                            .width(b.hi - b.lo)
                            .name(format!(
                                "[{:.4}, {:.4}): {} ± {:.1}",
                                b.lo, b.hi, b.count, b.error
                            ))
                    })
                    .collect();
                plot_ui.bar_chart(
                    BarChart::new("counts", bars)
                        .color(egui::Color32::from_rgb(90, 150, 230))
                        .element_formatter(Box::new(|bar: &Bar, _: &BarChart| bar.name.clone())),
                );
                if error_bars {
                    for b in &bins {
                        let x = 0.5 * (b.lo + b.hi);
                        plot_ui.line(
                            Line::new("√Σw²", vec![[x, b.error_lo], [x, b.error_hi]])
                                .color(egui::Color32::WHITE)
                                .width(1.0),
                        );
                    }
                }
                fit.draw(plot_ui, log_y);
            });
        });
        view.plot_rect_px = Some(pixel_rect(drawn.response.rect, ui.ctx().pixels_per_point()));
        view.fit.results(ui, "histograms", link);
        let entries: u64 = h.entries.iter().sum();
        let mode = h
            .mode()
            .filter(|_| entries > 0)
            .map_or_else(String::new, |m| format!(" · fullest bin at {m:.4}"));
        ui.label(format!(
            "{entries} entries · underflow {} · overflow {} · missing {}{mode}",
            h.underflow, h.overflow, h.missing
        ));
    } else {
        view.plot_rect_px = None;
    }

    let shown = view.shown.is_some();
    export_row(ui, view, shown, &mut actions);
    actions
}

/// Bins, from, to.
fn binning(ui: &mut egui::Ui, bins: &mut usize, lo: &mut f64, hi: &mut f64) {
    ui.label("bins");
    ui.add(egui::DragValue::new(bins).range(1..=10_000));
    ui.label("from");
    ui.add(egui::DragValue::new(lo).speed(0.1));
    ui.label("to");
    ui.add(egui::DragValue::new(hi).speed(0.1));
}

/// The export path and buttons (CSV, PNG, and the vector formats), and the panel's message.
fn export_row(
    ui: &mut egui::Ui,
    view: &mut HistogramView,
    shown: bool,
    actions: &mut Vec<HistogramAction>,
) {
    ui.horizontal(|ui| {
        ui.label("export to");
        ui.add(egui::TextEdit::singleline(&mut view.export_path).desired_width(180.0));
        let path = PathBuf::from(view.export_path.trim());
        let ready = shown && !view.export_path.trim().is_empty();
        if ui.add_enabled(ready, egui::Button::new("CSV")).clicked() {
            actions.push(HistogramAction::ExportCsv(path.with_extension("csv")));
        }
        if ui.add_enabled(ready, egui::Button::new("PNG")).clicked() {
            actions.push(HistogramAction::ExportPng(path.with_extension("png")));
        }
        for ext in ["svg", "pdf"] {
            if ui
                .add_enabled(ready, egui::Button::new(ext.to_uppercase()))
                .clicked()
            {
                actions.push(HistogramAction::ExportFigure(path.with_extension(ext)));
            }
        }
    });
    if let Some(message) = &view.message {
        ui.label(message);
    }
}

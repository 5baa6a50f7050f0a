//! The query builder window's contents: the builder (collections, cuts dragged from fields,
//! pairs and triples, outputs), the SQL editor with highlighting and diagnostics, the results
//! table and the histogram with its controls. Functions of the view; they return actions.

use std::path::PathBuf;

use alyx_query::ast::BinOp;
use alyx_query::builder::{Cleaning, Collection, Combine, Cut, Output, Spec};
use bevy::prelude::*;
use bevy_egui::egui;
use egui_plot::{Bar, BarChart, Line, Plot};
use polars::prelude::{AnyValue, DataType};

use super::model::*;
use crate::plot::{decade_grid, decade_label, drawn_bins, pixel_rect};
use crate::sql_text::{highlighted, tokens};

/// Payload of a field dragged from the palette onto a cut list.
#[derive(Clone, Debug)]
pub(super) struct DraggedField(String);

pub(super) fn cuts_editor(
    ui: &mut egui::Ui,
    id: &str,
    title: &str,
    fields: &[&'static str],
    cuts: &mut Vec<Cut>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("{title} fields:"));
        for f in fields {
            let chip = ui
                .dnd_drag_source(
                    egui::Id::new((id, *f)),
                    DraggedField((*f).to_owned()),
                    |ui| ui.add(egui::Button::new(*f).small()),
                )
                .inner;
            if chip.clicked() {
                cuts.push(Cut::new(f, BinOp::Gt, 0.0));
            }
        }
    });
    let frame = egui::Frame::group(ui.style()).inner_margin(4.0);
    let (_, dropped) = ui.dnd_drop_zone::<DraggedField, _>(frame, |ui| {
        ui.set_min_width(ui.available_width());
        if cuts.is_empty() {
            ui.weak(format!("click or drag a field here to cut on {title}"));
        }
        let mut remove = None;
        for (i, cut) in cuts.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                ui.checkbox(&mut cut.abs, "|x|");
                egui::ComboBox::from_id_salt((id, "field", i))
                    .selected_text(cut.field.as_str())
                    .width(90.0)
                    .show_ui(ui, |ui| {
                        for f in fields {
                            ui.selectable_value(&mut cut.field, (*f).to_owned(), *f);
                        }
                    });
                egui::ComboBox::from_id_salt((id, "op", i))
                    .selected_text(cut.op.symbol())
                    .width(40.0)
                    .show_ui(ui, |ui| {
                        for op in BinOp::ALL.into_iter().filter(|o| o.is_comparison()) {
                            ui.selectable_value(&mut cut.op, op, op.symbol());
                        }
                    });
                ui.add(egui::DragValue::new(&mut cut.value).speed(0.1));
                if ui
                    .small_button("✕")
                    .on_hover_text("remove this cut")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            cuts.remove(i);
        }
    });
    if let Some(field) = dropped {
        cuts.push(Cut::new(&field.0, BinOp::Gt, 0.0));
    }
}

pub(super) fn builder(ui: &mut egui::Ui, spec: &mut Spec) {
    ui.horizontal(|ui| {
        ui.label("select");
        egui::ComboBox::from_id_salt("alyx-query-collection")
            .selected_text(spec.collection.name())
            .show_ui(ui, |ui| {
                for c in Collection::ALL {
                    ui.selectable_value(&mut spec.collection, c, c.name());
                }
            });
    });
    let objects = spec.collection != Collection::Events;
    if objects {
        cuts_editor(
            ui,
            "object",
            spec.collection.name(),
            spec.collection.fields(),
            &mut spec.object_cuts,
        );
    }
    cuts_editor(
        ui,
        "event",
        "events",
        Collection::Events.fields(),
        &mut spec.event_cuts,
    );
    if !objects {
        if !matches!(spec.output, Output::Events(_)) {
            spec.output = Output::Events(vec!["met_pt".into()]);
        }
    } else {
        ui.horizontal(|ui| {
            let mut on = spec.min_objects.is_some();
            ui.checkbox(&mut on, "events with at least");
            let mut n = spec.min_objects.unwrap_or(2);
            ui.add_enabled(on, egui::DragValue::new(&mut n).range(1..=20));
            ui.label(format!("selected {}", spec.collection.name()));
            spec.min_objects = on.then_some(n);
        });
        ui.horizontal(|ui| {
            let mut on = spec.clean.is_some();
            ui.checkbox(&mut on, "away from");
            let mut c = spec.clean.clone().unwrap_or(Cleaning {
                against: Collection::Leptons,
                pt_min: 10.0,
                delta_r: 0.4,
            });
            ui.add_enabled_ui(on, |ui| {
                egui::ComboBox::from_id_salt("alyx-query-clean")
                    .selected_text(c.against.name())
                    .show_ui(ui, |ui| {
                        for x in Collection::ALL
                            .into_iter()
                            .filter(|x| *x != Collection::Events)
                        {
                            ui.selectable_value(&mut c.against, x, x.name());
                        }
                    });
                ui.label("with pT >");
                ui.add(egui::DragValue::new(&mut c.pt_min).speed(0.5));
                ui.label("by ΔR ≥");
                ui.add(
                    egui::DragValue::new(&mut c.delta_r)
                        .speed(0.01)
                        .range(0.0..=5.0),
                );
            });
            spec.clean = on.then_some(c);
        });
        ui.horizontal(|ui| {
            let mut on = spec.combine.is_some();
            ui.checkbox(&mut on, "combine");
            let mut k = spec.combine.clone().unwrap_or(Combine {
                n: 2,
                opposite_charge: false,
                same_flavour: false,
                mass: None,
                closest_to: None,
            });
            ui.add_enabled_ui(on, |ui| {
                ui.radio_value(&mut k.n, 2, "pairs");
                ui.radio_value(&mut k.n, 3, "triples");
                ui.checkbox(&mut k.opposite_charge, "opposite charge");
                ui.checkbox(&mut k.same_flavour, "same flavour");
            });
            spec.combine = on.then_some(k);
        });
        if let Some(k) = &mut spec.combine {
            ui.horizontal(|ui| {
                let mut window = k.mass.is_some();
                let (mut lo, mut hi) = k.mass.unwrap_or((60.0, 120.0));
                ui.checkbox(&mut window, "mass from");
                ui.add_enabled(window, egui::DragValue::new(&mut lo).speed(0.5));
                ui.label("to");
                ui.add_enabled(window, egui::DragValue::new(&mut hi).speed(0.5));
                ui.label("GeV");
                k.mass = window.then_some((lo, hi));
                let mut closest = k.closest_to.is_some();
                let mut x = k.closest_to.unwrap_or(91.2);
                ui.checkbox(&mut closest, "closest to");
                ui.add_enabled(closest, egui::DragValue::new(&mut x).speed(0.1));
                k.closest_to = closest.then_some(x);
            });
        }
        ui.horizontal(|ui| {
            ui.label("output");
            let current = match &spec.output {
                Output::Objects(_) => "objects",
                Output::Events(_) => "events",
                Output::Sum(_) => "sum per event",
                Output::Combinations => "combinations",
                Output::MtWithLeadingOther => "mT(MET, leading other)",
            };
            egui::ComboBox::from_id_salt("alyx-query-output")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    let fields = || {
                        spec.collection
                            .fields()
                            .iter()
                            .map(|f| (*f).to_owned())
                            .collect()
                    };
                    let choices = [
                        Output::Objects(fields()),
                        Output::Events(vec!["met_pt".into()]),
                        Output::Sum("pt".into()),
                        Output::Combinations,
                        Output::MtWithLeadingOther,
                    ];
                    let names = [
                        "objects",
                        "events",
                        "sum per event",
                        "combinations",
                        "mT(MET, leading other)",
                    ];
                    for (choice, name) in choices.into_iter().zip(names) {
                        if ui.selectable_label(current == name, name).clicked() {
                            spec.output = choice;
                        }
                    }
                });
        });
    }
}

/// SQL laid out one clause per line, indented by nesting.
pub fn pretty(sql: &str) -> String {
    const BREAK_BEFORE: [&str; 10] = [
        "SELECT", "FROM", "JOIN", "LEFT", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION",
    ];
    let mut out = String::new();
    let mut depth = 0usize;
    let mut previous = "";
    for token in tokens(sql) {
        let upper = token.to_ascii_uppercase();
        let clause = BREAK_BEFORE.contains(&upper.as_str())
            && !(upper == "JOIN" && previous.eq_ignore_ascii_case("LEFT"));
        if clause && !out.is_empty() {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        } else if !out.is_empty()
            && !matches!(token, ")" | "," | ".")
            && !out.ends_with(['(', '.'])
            && !(token == "(" && previous.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            out.push(' ');
        }
        if token == "(" {
            depth += 1;
        } else if token == ")" {
            depth = depth.saturating_sub(1);
        }
        out.push_str(token);
        previous = token;
    }
    out
}

pub(super) fn cell(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => "null".into(),
        AnyValue::Float64(x) => alyx_core::number::significant(x),
        AnyValue::Float32(x) => alyx_core::number::significant(f64::from(x)),
        AnyValue::String(s) => s.to_owned(),
        other => other.to_string(),
    }
}

/// The "Query builder" window's contents.
pub fn query_panel(ui: &mut egui::Ui, view: &mut QueryView) -> Vec<QueryAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let before = view.mode;
        ui.selectable_value(&mut view.mode, Mode::Builder, "Builder");
        ui.selectable_value(&mut view.mode, Mode::Sql, "SQL");
        if before == Mode::Builder && view.mode == Mode::Sql && view.sql.trim().is_empty() {
            view.sql = view.spec.sql().map(|s| pretty(&s)).unwrap_or_default();
        }
    });
    ui.separator();
    match view.mode {
        Mode::Builder => {
            egui::ScrollArea::vertical()
                .id_salt("alyx-query-builder")
                .max_height(260.0)
                .show(ui, |ui| builder(ui, &mut view.spec));
        }
        Mode::Sql => {
            let mut layouter = |ui: &egui::Ui, text: &dyn egui::TextBuffer, wrap: f32| {
                let mut job = highlighted(text.as_str(), ui);
                job.wrap.max_width = wrap;
                ui.fonts_mut(|f| f.layout_job(job))
            };
            ui.add(
                egui::TextEdit::multiline(&mut view.sql)
                    .code_editor()
                    .desired_rows(8)
                    .desired_width(f32::INFINITY)
                    .layouter(&mut layouter),
            );
        }
    }
    view.revalidate();
    if view.mode == Mode::Builder {
        if let Ok(text) = view.text() {
            egui::CollapsingHeader::new("SQL")
                .default_open(true)
                .show(ui, |ui| {
                    let job = highlighted(&pretty(&text), ui);
                    ui.label(job);
                });
        }
    }
    for d in &view.diagnostics {
        ui.colored_label(egui::Color32::from_rgb(240, 110, 100), d.to_string());
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                view.checked.is_some() && !view.loading,
                egui::Button::new("▶ Run"),
            )
            .clicked()
        {
            actions.push(QueryAction::Run);
        }
        if view.loading {
            ui.spinner();
        }
        if let Some(r) = &view.results {
            let total = match r.exact {
                Some(n) => format!("{n} rows"),
                None => format!("≈ {} rows", r.estimate),
            };
            let last = r.first_row + r.frame.height() as u64;
            if last > r.first_row {
                ui.label(format!("rows {}–{last} of {total}", r.first_row + 1));
            } else {
                ui.label(format!("no rows ({total})"));
            }
            if ui
                .add_enabled(r.first_row > 0, egui::Button::new("◀"))
                .clicked()
            {
                actions.push(QueryAction::Page(r.first_row.saturating_sub(PAGE_ROWS)));
            }
            let more = r
                .exact
                .map_or(r.frame.height() as u64 == PAGE_ROWS, |n| last < n);
            if ui.add_enabled(more, egui::Button::new("▶")).clicked() {
                actions.push(QueryAction::Page(last));
            }
        }
    });
    results_table(ui, view, &mut actions);
    histogram_controls(ui, view, &mut actions);
    ui.horizontal(|ui| {
        ui.label("export to");
        ui.add(egui::TextEdit::singleline(&mut view.export_path).desired_width(160.0));
        let path = PathBuf::from(view.export_path.trim());
        let rows = view.results.is_some();
        if ui.add_enabled(rows, egui::Button::new("CSV")).clicked() {
            actions.push(QueryAction::ExportCsv(path.with_extension("csv")));
        }
        if ui.add_enabled(rows, egui::Button::new("Parquet")).clicked() {
            actions.push(QueryAction::ExportParquet(path.with_extension("parquet")));
        }
        if ui
            .add_enabled(view.histogram.is_some(), egui::Button::new("PNG"))
            .clicked()
        {
            actions.push(QueryAction::ExportPng(path.with_extension("png")));
        }
        for ext in ["svg", "pdf"] {
            if ui
                .add_enabled(
                    view.histogram.is_some(),
                    egui::Button::new(ext.to_uppercase()),
                )
                .clicked()
            {
                actions.push(QueryAction::ExportFigure(path.with_extension(ext)));
            }
        }
    });
    if let Some(m) = &view.message {
        ui.label(m);
    }
    if !view.history.is_empty() {
        egui::CollapsingHeader::new(format!("History ({})", view.history.len())).show(ui, |ui| {
            let mut chosen = None;
            for (i, h) in view.history.iter().enumerate().rev() {
                let first_line: String = h.chars().take(90).collect();
                if ui
                    .selectable_label(false, first_line)
                    .on_hover_text(h)
                    .clicked()
                {
                    chosen = Some(i);
                }
            }
            if let Some(i) = chosen {
                view.sql = view.history[i].clone();
                view.mode = Mode::Sql;
            }
        });
    }
    actions
}

pub(super) fn results_table(
    ui: &mut egui::Ui,
    view: &mut QueryView,
    actions: &mut Vec<QueryAction>,
) {
    let Some(r) = &view.results else { return };
    let df = &r.frame;
    let columns = df.columns();
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    let event_col = df
        .column("event_id")
        .ok()
        .and_then(|c| c.cast(&DataType::Int64).ok());
    egui::ScrollArea::both()
        .id_salt("alyx-query-results")
        .max_height(220.0)
        .show_rows(ui, row_height, df.height() + 1, |ui, range| {
            egui::Grid::new("alyx-query-grid")
                .striped(true)
                .num_columns(columns.len())
                .show(ui, |ui| {
                    for row in range {
                        if row == 0 {
                            for c in columns {
                                ui.strong(c.name().as_str());
                            }
                            ui.end_row();
                            continue;
                        }
                        let i = row - 1;
                        let selected = view.selected_row == Some(i);
                        let mut clicked = false;
                        for c in columns {
                            let text = c.get(i).map(cell).unwrap_or_default();
                            clicked |= ui
                                .selectable_label(selected, egui::RichText::new(text).monospace())
                                .clicked();
                        }
                        ui.end_row();
                        if clicked {
                            view.selected_row = Some(i);
                        }
                    }
                });
        });
    if let (Some(i), Some(ids)) = (view.selected_row, &event_col) {
        if let Some(id) = ids.i64().ok().and_then(|c| c.get(i)) {
            if ui.button(format!("show event {id} in 3D")).clicked() {
                actions.push(QueryAction::Show(id.max(0) as u64));
            }
        }
    }
}

pub(super) fn histogram_controls(
    ui: &mut egui::Ui,
    view: &mut QueryView,
    actions: &mut Vec<QueryAction>,
) {
    let numeric = view.numeric_columns();
    if numeric.is_empty() {
        return;
    }
    if !numeric.contains(&view.hist_column) {
        view.hist_column = numeric[0].clone();
    }
    ui.horizontal(|ui| {
        ui.label("histogram");
        egui::ComboBox::from_id_salt("alyx-query-hist-column")
            .selected_text(view.hist_column.as_str())
            .show_ui(ui, |ui| {
                for c in &numeric {
                    ui.selectable_value(&mut view.hist_column, c.clone(), c.as_str());
                }
            });
        ui.add(egui::DragValue::new(&mut view.bins).range(1..=10_000));
        ui.label("bins from");
        ui.add(egui::DragValue::new(&mut view.lo).speed(0.1));
        ui.label("to");
        ui.add(egui::DragValue::new(&mut view.hi).speed(0.1));
        if ui
            .add_enabled(
                view.checked.is_some() && !view.loading,
                egui::Button::new("fill"),
            )
            .clicked()
        {
            actions.push(QueryAction::Histogram);
        }
        ui.checkbox(&mut view.log_y, "log");
        if ui
            .add_enabled(
                view.histogram.is_some(),
                egui::Button::new("keep as overlay"),
            )
            .clicked()
        {
            actions.push(QueryAction::KeepAsOverlay);
        }
        if view.overlay.is_some() && ui.button("clear overlay").clicked() {
            actions.push(QueryAction::ClearOverlay);
        }
        ui.menu_button("run as job…", |ui| {
            for target in ["auto", "local", "spark", "slurm"] {
                if ui
                    .add_enabled(view.checked.is_some(), egui::Button::new(target))
                    .clicked()
                {
                    actions.push(QueryAction::SubmitJob(target.into()));
                    ui.close();
                }
            }
        });
    });
    let Some((label, h)) = &view.histogram else {
        view.plot_rect_px = None;
        return;
    };
    view.fit.controls(ui, "query", h);
    let log_y = view.log_y;
    let link = egui::Id::new(("alyx-query-x", view.generation));
    let mut plot = Plot::new(("alyx-query-plot", view.generation, log_y))
        .height(240.0)
        .x_axis_label(label.as_str())
        .y_axis_label("entries per bin")
        .legend(egui_plot::Legend::default());
    plot = if log_y {
        plot.y_grid_spacer(decade_grid)
            .y_axis_formatter(|mark, _| decade_label(mark.value))
    } else {
        plot.include_y(0.0)
    };
    let plot = crate::fit::linked(plot, link, &view.fit);
    let bins = drawn_bins(h, log_y);
    let fit = &mut view.fit;
    let overlay = view
        .overlay
        .as_ref()
        .map(|(l, o)| (l.clone(), drawn_bins(o, log_y)));
    let drawn = ui.scope(|ui| {
        plot.show(ui, |p| {
            let bars = bins
                .iter()
                .map(|b| {
                    Bar::new(0.5 * (b.lo + b.hi), b.top - b.base)
                        .base_offset(b.base)
                        .width(b.hi - b.lo)
                })
                .collect();
            p.bar_chart(
                BarChart::new(label.clone(), bars).color(egui::Color32::from_rgb(90, 150, 230)),
            );
            for b in &bins {
                let x = 0.5 * (b.lo + b.hi);
                p.line(
                    Line::new("√Σw²", vec![[x, b.error_lo], [x, b.error_hi]])
                        .color(egui::Color32::WHITE),
                );
            }
            if let Some((l, o)) = &overlay {
                let steps: Vec<[f64; 2]> = o
                    .iter()
                    .flat_map(|b| [[b.lo, b.top], [b.hi, b.top]])
                    .collect();
                p.line(
                    Line::new(l.clone(), steps)
                        .color(egui::Color32::from_rgb(240, 140, 60))
                        .width(2.0),
                );
            }
            fit.draw(p, log_y);
        });
    });
    view.plot_rect_px = Some(pixel_rect(drawn.response.rect, ui.ctx().pixels_per_point()));
    view.fit.results(ui, "query", link);
    let entries: u64 = h.entries.iter().sum();
    ui.label(format!(
        "{entries} entries · underflow {} · overflow {} · missing {}{}",
        h.underflow,
        h.overflow,
        h.missing,
        h.mode()
            .filter(|_| entries > 0)
            .map_or_else(String::new, |m| format!(" · fullest bin at {m:.4}"))
    ));
}

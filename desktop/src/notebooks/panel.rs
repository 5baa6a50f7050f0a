//! The Notebook window's contents: the list, the cells with their editors, outputs and
//! colleagues' cursors, history and preview. Functions of the state; they return what the user
//! asked for.

use alyx_analysis::notebook::run::diagnostics;
use alyx_analysis::notebook::{Cell, CellKind, CellOutput, Notebook};
use bevy::prelude::*;
use bevy_egui::egui;

use super::model::*;
use crate::sql_text::highlighted;

/// The window's contents; returns what the user asked for.
pub fn notebook_panel(
    ui: &mut egui::Ui,
    state: &mut NotebookState,
    remote: bool,
) -> Vec<NotebookAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut state.new_title).desired_width(160.0));
        if ui.button("new").clicked() {
            actions.push(NotebookAction::New(state.new_title.clone()));
        }
        egui::ComboBox::from_id_salt("alyx-notebook-open")
            .selected_text("open…")
            .show_ui(ui, |ui| {
                for l in &state.listed {
                    let text = format!("{} · {} ({})", l.title, l.owner, l.access);
                    if ui.selectable_label(false, text).clicked() {
                        actions.push(match (&l.id, &l.path) {
                            (Some(id), _) => NotebookAction::OpenRemote(*id),
                            (None, Some(p)) => NotebookAction::OpenFile(p.clone()),
                            _ => NotebookAction::Refresh,
                        });
                    }
                }
            });
        if ui
            .button("⟳")
            .on_hover_text("list notebooks again")
            .clicked()
        {
            actions.push(NotebookAction::Refresh);
        }
    });
    if let Some(m) = &state.message {
        ui.colored_label(egui::Color32::from_rgb(230, 160, 60), m);
    }
    if state.notebook.is_none() {
        ui.label(if remote {
            "no notebook open: create one, or open one shared with you"
        } else {
            "no notebook open: create one, or open one from the notebooks folder"
        });
        return actions;
    }
    ui.horizontal(|ui| {
        let mut title = state.title.clone();
        if ui
            .add(
                egui::TextEdit::singleline(&mut title)
                    .font(egui::TextStyle::Heading)
                    .desired_width(260.0),
            )
            .lost_focus()
            && title != state.title
        {
            actions.push(NotebookAction::Title(title));
        }
        if ui
            .add_enabled(!state.undo.is_empty(), egui::Button::new("undo"))
            .clicked()
        {
            actions.push(NotebookAction::Undo);
        }
        if ui
            .add_enabled(!state.redo.is_empty(), egui::Button::new("redo"))
            .clicked()
        {
            actions.push(NotebookAction::Redo);
        }
        if ui.button("▶▶ run all").clicked() {
            actions.push(NotebookAction::RunAll);
        }
        ui.menu_button("export", |ui| {
            for f in ["md", "ipynb", "automerge"] {
                if ui.button(f).clicked() {
                    actions.push(NotebookAction::Export(f));
                    ui.close();
                }
            }
        });
        let shown = state.history.is_some();
        if ui.selectable_label(shown, "history").clicked() {
            actions.push(NotebookAction::History(!shown));
        }
    });
    if let Some(versions) = &state.history {
        egui::ScrollArea::vertical()
            .id_salt("alyx-notebook-history")
            .max_height(140.0)
            .show(ui, |ui| {
                for v in versions.iter().rev() {
                    ui.horizontal(|ui| {
                        let previewing = state.preview.as_ref().is_some_and(|(h, _)| *h == v.hash);
                        // A backend's history vouches for its authors; one it has no record
                        // of shows what the change claims, marked so.
                        let unverified = if state.remote.is_some() && !v.attested {
                            " (unverified)"
                        } else {
                            ""
                        };
                        let text = format!(
                            "{} · {}{unverified} · {}",
                            alyx_core::utc(v.time.saturating_mul(1_000_000_000)),
                            v.author,
                            v.what
                        );
                        if ui.selectable_label(previewing, text).clicked() {
                            actions.push(NotebookAction::Preview(
                                (!previewing).then(|| v.hash.clone()),
                            ));
                        }
                        if previewing && ui.small_button("restore").clicked() {
                            actions.push(NotebookAction::Restore(v.hash.clone()));
                        }
                    });
                }
            });
        if let Some((hash, cells)) = &state.preview {
            ui.label(format!(
                "as it was at {} (read only):",
                &hash[..hash.len().min(12)]
            ));
            for c in cells {
                ui.group(|ui| {
                    ui.weak(c.kind.name());
                    ui.monospace(&c.source);
                });
            }
            ui.separator();
        }
    }
    if remote {
        ui.horizontal_wrapped(|ui| {
            ui.label("here:");
            if state.peers.is_empty() {
                ui.label("only you");
            }
            for p in &state.peers {
                let following = state.following.as_deref() == Some(p.session.as_str());
                let text = match &p.event {
                    Some((ds, e)) => format!("● {} (event {ds}#{e})", p.user),
                    None => format!("● {}", p.user),
                };
                let label = egui::RichText::new(text).color(p.colour);
                if ui
                    .selectable_label(following, label)
                    .on_hover_text("follow: show the event they look at")
                    .clicked()
                {
                    actions.push(NotebookAction::Follow(
                        (!following).then(|| p.session.clone()),
                    ));
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("send plots to the cluster above");
            ui.add(
                egui::DragValue::new(&mut state.threshold)
                    .speed(1e6)
                    .suffix(" event·terms"),
            );
        });
    }
    ui.separator();
    let cells: Vec<Cell> = state
        .notebook
        .as_ref()
        .map(Notebook::cells)
        .unwrap_or_default();
    egui::ScrollArea::vertical()
        .id_salt("alyx-notebook-cells")
        .max_height(560.0)
        .show(ui, |ui| {
            for (i, cell) in cells.iter().enumerate() {
                cell_ui(ui, state, cell, i, cells.len(), &mut actions);
                ui.separator();
            }
            ui.horizontal(|ui| {
                ui.label("add");
                for kind in CellKind::ALL {
                    if ui.small_button(kind.name()).clicked() {
                        actions.push(NotebookAction::Add(cells.len(), kind));
                    }
                }
            });
        });
    actions
}

pub(super) fn cell_ui(
    ui: &mut egui::Ui,
    state: &mut NotebookState,
    cell: &Cell,
    i: usize,
    n: usize,
    actions: &mut Vec<NotebookAction>,
) {
    let id = cell.id.clone();
    ui.horizontal(|ui| {
        let mut kind = cell.kind;
        egui::ComboBox::from_id_salt(("alyx-cell-kind", id.as_str()))
            .selected_text(kind.name())
            .width(90.0)
            .show_ui(ui, |ui| {
                for k in CellKind::ALL {
                    ui.selectable_value(&mut kind, k, k.name());
                }
            });
        if kind != cell.kind {
            actions.push(NotebookAction::Kind(id.clone(), kind));
        }
        if ui
            .add_enabled(i > 0, egui::Button::new("up").small())
            .clicked()
        {
            actions.push(NotebookAction::Move(id.clone(), -1));
        }
        if ui
            .add_enabled(i + 1 < n, egui::Button::new("down").small())
            .clicked()
        {
            actions.push(NotebookAction::Move(id.clone(), 1));
        }
        if ui
            .small_button("delete")
            .on_hover_text("undo brings it back")
            .clicked()
        {
            actions.push(NotebookAction::Delete(id.clone()));
        }
        match cell.kind {
            CellKind::Query | CellKind::Plot => {
                if ui.small_button("▶ run").clicked() {
                    actions.push(NotebookAction::Run(id.clone()));
                }
            }
            CellKind::Event => {
                if ui.small_button("show in 3D").clicked() {
                    actions.push(NotebookAction::Show(id.clone()));
                }
            }
            CellKind::Markdown => {}
        }
        if state.running.contains(&id) {
            ui.spinner();
        }
        for p in state.peers.iter().filter(|p| p.cell == id) {
            ui.colored_label(p.colour, format!("● {}", p.user));
        }
        if let Some(by) = (!cell.author.is_empty()).then_some(&cell.author) {
            ui.weak(format!(
                "by {by}{}",
                if cell.engine.is_empty() {
                    String::new()
                } else {
                    format!(" · ran on {}", cell.engine)
                }
            ));
        }
    });
    let mut text = state
        .buffers
        .get(&id)
        .cloned()
        .unwrap_or_else(|| cell.source.clone());
    let code = matches!(cell.kind, CellKind::Query | CellKind::Plot);
    let mut layouter = |ui: &egui::Ui, t: &dyn egui::TextBuffer, wrap: f32| {
        let mut job = if code {
            highlighted(t.as_str(), ui)
        } else {
            egui::text::LayoutJob::simple(
                t.as_str().to_owned(),
                egui::FontId::proportional(14.0),
                ui.visuals().text_color(),
                wrap,
            )
        };
        job.wrap.max_width = wrap;
        ui.fonts_mut(|f| f.layout_job(job))
    };
    let mut edit = egui::TextEdit::multiline(&mut text)
        .id_salt(("alyx-cell", id.as_str()))
        .desired_rows(if code { 4 } else { 2 })
        .desired_width(f32::INFINITY)
        .layouter(&mut layouter);
    if code || cell.kind == CellKind::Event {
        edit = edit.code_editor();
    }
    let output = edit.show(ui);
    if output.response.changed() {
        actions.push(NotebookAction::Edit(id.clone(), text.clone()));
        state.buffers.insert(id.clone(), text);
    }
    if let Some(range) = output.cursor_range {
        if output.response.has_focus() {
            actions.push(NotebookAction::Cursor(id.clone(), range.primary.index.0));
        }
    }
    // Colleagues' cursors, in their colours.
    for p in state.peers.iter().filter(|p| p.cell == id) {
        if let Some(at) = p.at {
            let r = output
                .galley
                .pos_from_cursor(egui::text::CCursor::new(at))
                .translate(output.galley_pos.to_vec2());
            let painter = ui.painter();
            painter.line_segment(
                [r.left_top(), r.left_bottom()],
                egui::Stroke::new(2.0, p.colour),
            );
            painter.text(
                r.left_top(),
                egui::Align2::LEFT_BOTTOM,
                &p.user,
                egui::FontId::proportional(10.0),
                p.colour,
            );
        }
    }
    for d in diagnostics(cell) {
        ui.colored_label(egui::Color32::from_rgb(240, 110, 100), d.to_string());
    }
    if let Some(o) = &cell.output {
        output_ui(ui, &id, o);
    }
}

pub(super) fn output_ui(ui: &mut egui::Ui, id: &str, o: &CellOutput) {
    match o {
        CellOutput::Table {
            columns,
            rows,
            total,
        } => {
            egui::ScrollArea::both()
                .id_salt(("alyx-cell-table", id))
                .max_height(180.0)
                .show(ui, |ui| {
                    egui::Grid::new(("alyx-cell-grid", id))
                        .striped(true)
                        .show(ui, |ui| {
                            for c in columns {
                                ui.strong(c);
                            }
                            ui.end_row();
                            for r in rows {
                                for v in r {
                                    ui.monospace(v);
                                }
                                ui.end_row();
                            }
                        });
                });
            ui.weak(format!("{} of {total} rows", rows.len()));
        }
        CellOutput::Histograms(hs) => histogram_outputs(ui, id, hs, &[]),
        CellOutput::Plots {
            histograms,
            maps,
            fits,
        } => {
            histogram_outputs(ui, id, histograms, fits);
            for m in maps {
                let heatmap = crate::heatmap::Heatmap {
                    histogram: &m.histogram,
                    x_label: &m.x,
                    y_label: &m.y,
                    log_z: false,
                    height: 200.0,
                };
                crate::heatmap::show(ui, (id, m.x.as_str(), m.y.as_str()), &heatmap);
            }
        }
        CellOutput::Job { id, state } => {
            ui.label(format!("sent to the cluster as job #{id}: {state}"));
        }
        CellOutput::Error(e) => {
            ui.colored_label(egui::Color32::from_rgb(240, 110, 100), e);
        }
    }
}

/// A plot cell's histograms, each with the fits of it drawn over it (the model's expectation
/// per bin) and their parameters below.
fn histogram_outputs(
    ui: &mut egui::Ui,
    id: &str,
    hs: &[(String, alyx_core::histogram::Histogram)],
    fits: &[alyx_analysis::notebook::CellFit],
) {
    for (column, h) in hs {
        let edges = h.binning.edges();
        let bars: Vec<egui_plot::Bar> = h
            .sum_w
            .iter()
            .enumerate()
            .map(|(i, w)| {
                egui_plot::Bar::new(0.5 * (edges[i] + edges[i + 1]), *w)
                    .width(edges[i + 1] - edges[i])
            })
            .collect();
        let mine: Vec<_> = fits.iter().filter(|f| f.column == *column).collect();
        egui_plot::Plot::new(("alyx-cell-plot", id, column.as_str()))
            .height(160.0)
            .x_axis_label(column.as_str())
            .include_y(0.0)
            .show(ui, |p| {
                p.bar_chart(
                    egui_plot::BarChart::new(column.clone(), bars)
                        .color(egui::Color32::from_rgb(90, 150, 230)),
                );
                for f in &mine {
                    if let Ok(r) = &f.result {
                        let points: Vec<[f64; 2]> = r
                            .bins
                            .iter()
                            .map(|b| [0.5 * (b.lo + b.hi), b.expected])
                            .collect();
                        p.line(
                            egui_plot::Line::new(f.model.clone(), points)
                                .color(egui::Color32::from_rgb(240, 150, 60))
                                .width(2.0),
                        );
                    }
                }
            });
        ui.weak(format!(
            "{column}: {} entries · underflow {} · overflow {}",
            h.entries.iter().sum::<u64>(),
            h.underflow,
            h.overflow
        ));
        for f in mine {
            match &f.result {
                Ok(r) => {
                    let params: Vec<String> = r
                        .params
                        .iter()
                        .map(|p| match p.fixed {
                            true => format!("{} = {:.5} (fixed)", p.name, p.value),
                            false => format!("{} = {:.5} ± {:.5}", p.name, p.value, p.error),
                        })
                        .collect();
                    ui.monospace(format!(
                        "fit {}: {} · χ²/ndf {:.1}/{}{}",
                        f.model,
                        params.join(" · "),
                        r.chi2,
                        r.ndf,
                        r.message
                            .as_ref()
                            .map_or(String::new(), |m| format!(" · NOT CONVERGED: {m}"))
                    ));
                }
                Err(e) => {
                    ui.colored_label(
                        egui::Color32::from_rgb(240, 110, 100),
                        format!("fit {}: {e}", f.model),
                    );
                }
            }
        }
    }
}

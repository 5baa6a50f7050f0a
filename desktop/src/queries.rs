//! `QueryPlugin`: the "Query builder" window. A physicist picks a collection, clicks or drags
//! fields into cuts, adds a pair or triple selection and an output, and sees the ALYX SQL it
//! makes (highlighted) with validation as they edit — or types SQL directly. Run shows a
//! results table (virtual scrolling, pages of 10,000 rows, an estimated total then the exact
//! count); a numeric column can be histogrammed inside the engine, with a log scale and an
//! overlay of a second query. Results export as CSV or Parquet, the plot as PNG; a row with an
//! `event_id` opens in the 3D display. Queries run off the main thread on the local engine.

use std::path::PathBuf;

use alyx_shared::Error;
use alyx_shared::histogram::{Binning, Histogram};
use alyx_shared::query::ast::BinOp;
use alyx_shared::query::builder::{Cleaning, Collection, Combine, Cut, Output, Spec};
use alyx_shared::query::{self, Checked, Diagnostic, Engine, OutputFormat, plan};
use alyx_shared::store::Dataset;
use bevy::math::URect;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use egui_plot::{Bar, BarChart, Line, Plot};
use polars::prelude::{AnyValue, DataFrame, DataType};

use crate::histograms::{crop_png, decade_grid, decade_label, drawn_bins, pixel_rect};
use crate::{OpenDataset, Panels, ShowEvent};

/// Rows per page of results.
pub const PAGE_ROWS: u64 = 10_000;
const HISTORY: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Builder,
    Sql,
}

/// A page of results and what is known of the total.
#[derive(Clone, Debug)]
pub struct ResultsView {
    pub frame: DataFrame,
    pub first_row: u64,
    /// "≈ N": from a one-chunk sample.
    pub estimate: u64,
    pub exact: Option<u64>,
}

/// The window's view model.
#[derive(Clone, Debug)]
pub struct QueryView {
    pub mode: Mode,
    pub spec: Spec,
    pub sql: String,
    /// The query text last checked, its diagnostics, and the checked query when valid.
    checked_text: String,
    pub diagnostics: Vec<Diagnostic>,
    pub checked: Option<Checked>,
    pub results: Option<ResultsView>,
    pub selected_row: Option<usize>,
    pub hist_column: String,
    pub bins: usize,
    pub lo: f64,
    pub hi: f64,
    pub log_y: bool,
    /// The histogram shown, and an overlaid one kept from an earlier query.
    pub histogram: Option<(String, Histogram)>,
    pub overlay: Option<(String, Histogram)>,
    pub history: Vec<String>,
    pub export_path: String,
    pub message: Option<String>,
    pub loading: bool,
    pub generation: u64,
    pub plot_rect_px: Option<URect>,
}

impl Default for QueryView {
    fn default() -> Self {
        Self {
            mode: Mode::Builder,
            spec: Spec {
                combine: Some(Combine {
                    n: 2,
                    opposite_charge: true,
                    same_flavour: false,
                    mass: Some((60.0, 120.0)),
                    closest_to: None,
                }),
                ..Spec::new(Collection::Muons, Output::Combinations)
            },
            sql: String::new(),
            checked_text: String::new(),
            diagnostics: Vec::new(),
            checked: None,
            results: None,
            selected_row: None,
            hist_column: "mass".into(),
            bins: 60,
            lo: 60.0,
            hi: 120.0,
            log_y: false,
            histogram: None,
            overlay: None,
            history: Vec::new(),
            export_path: "alyx-query".into(),
            message: None,
            loading: false,
            generation: 0,
            plot_rect_px: None,
        }
    }
}

impl QueryView {
    /// The query's SQL text as it stands (the builder's, or what was typed).
    pub fn text(&self) -> Result<String, Diagnostic> {
        match self.mode {
            Mode::Builder => self.spec.sql(),
            Mode::Sql => Ok(self.sql.clone()),
        }
    }

    /// Checks the query again when its text changed.
    pub fn revalidate(&mut self) {
        let text = match self.text() {
            Ok(t) => t,
            Err(d) => {
                self.checked_text.clear();
                self.diagnostics = vec![d];
                self.checked = None;
                return;
            }
        };
        if text == self.checked_text {
            return;
        }
        self.checked_text = text.clone();
        match query::prepare(&text, Engine::Local) {
            Ok(c) => {
                self.diagnostics.clear();
                self.checked = Some(c);
            }
            Err(ds) => {
                self.diagnostics = ds;
                self.checked = None;
            }
        }
    }

    fn numeric_columns(&self) -> Vec<String> {
        self.checked
            .iter()
            .flat_map(|c| c.columns.iter())
            .filter(|(_, t)| t.is_numeric())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// What the user asked for in the window.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryAction {
    Run,
    Page(u64),
    Histogram,
    KeepAsOverlay,
    ClearOverlay,
    Show(u64),
    ExportCsv(PathBuf),
    ExportParquet(PathBuf),
    ExportPng(PathBuf),
    /// Run the histogram as a job (the local pool, or alyxd with `--backend`) on `target`.
    SubmitJob(String),
}

/// Payload of a field dragged from the palette onto a cut list.
#[derive(Clone, Debug)]
struct DraggedField(String);

fn cuts_editor(
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

fn builder(ui: &mut egui::Ui, spec: &mut Spec) {
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

/// Words, numbers, quoted strings and identifiers, and single punctuation.
fn tokens(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' || c == b'`' {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == c {
                    if bytes.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
        } else if (c == b'<' || c == b'>')
            && bytes.get(i + 1).is_some_and(|n| *n == b'=' || *n == b'>')
        {
            i += 2;
        } else {
            i += 1;
        }
        if let Some(t) = sql.get(start..i) {
            out.push(t);
        }
    }
    out
}

/// `sql` with keywords, functions, numbers and strings coloured.
pub fn highlighted(sql: &str, ui: &egui::Ui) -> egui::text::LayoutJob {
    let mut job = egui::text::LayoutJob::default();
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let plain = ui.visuals().text_color();
    let mut rest = sql;
    while !rest.is_empty() {
        let (token, gap_len) = match tokens(rest).first() {
            Some(t) => {
                let at = rest.find(t).unwrap_or(0);
                (*t, at)
            }
            None => ("", rest.len()),
        };
        if gap_len > 0 {
            job.append(
                &rest[..gap_len],
                0.0,
                egui::TextFormat::simple(font.clone(), plain),
            );
        }
        if token.is_empty() {
            break;
        }
        let after = &rest[gap_len + token.len()..];
        let upper = token.to_ascii_uppercase();
        let color = if token.starts_with('\'') {
            egui::Color32::from_rgb(230, 160, 90)
        } else if token.starts_with(|c: char| c.is_ascii_digit()) {
            egui::Color32::from_rgb(140, 200, 120)
        } else if after.trim_start().starts_with('(')
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            egui::Color32::from_rgb(220, 200, 110)
        } else if KEYWORDS.contains(&upper.as_str()) {
            egui::Color32::from_rgb(110, 160, 240)
        } else {
            plain
        };
        job.append(token, 0.0, egui::TextFormat::simple(font.clone(), color));
        rest = after;
    }
    job
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "JOIN", "LEFT", "ON", "AS", "AND", "OR", "NOT", "GROUP", "BY",
    "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET", "WITH", "UNION", "ALL", "DISTINCT",
    "BETWEEN", "IN", "IS", "NULL", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "TRUE", "FALSE",
];

fn cell(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => "null".into(),
        AnyValue::Float64(x) => alyx_shared::number::significant(x),
        AnyValue::Float32(x) => alyx_shared::number::significant(f64::from(x)),
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

fn results_table(ui: &mut egui::Ui, view: &mut QueryView, actions: &mut Vec<QueryAction>) {
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

fn histogram_controls(ui: &mut egui::Ui, view: &mut QueryView, actions: &mut Vec<QueryAction>) {
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
    let log_y = view.log_y;
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
    let bins = drawn_bins(h, log_y);
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
        });
    });
    view.plot_rect_px = Some(pixel_rect(drawn.response.rect, ui.ctx().pixels_per_point()));
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

/// A page, the estimate (first page), the exact total when known, and the next page's cursor.
type PageResult = Result<(DataFrame, u64, Option<u64>, plan::Cursor), Error>;

/// The window's state: the view model, the dataset, work in flight.
#[derive(Resource, Default)]
pub struct QueryState {
    pub view: QueryView,
    dataset: Option<Dataset>,
    actions: Vec<QueryAction>,
    page_task: Option<Task<(u64, PageResult)>>,
    /// Keyset cursors of the pages reached so far, by page number.
    cursors: Vec<plan::Cursor>,
    count_task: Option<Task<Result<u64, Error>>>,
    histogram_task: Option<Task<(String, Result<Histogram, Error>)>>,
    export_task: Option<Task<String>>,
}

impl QueryState {
    /// The dataset queries run on (the open one).
    pub fn dataset(&self) -> Option<Dataset> {
        self.dataset.clone()
    }

    /// Queues an action, as a click in the window does.
    pub fn push(&mut self, action: QueryAction) {
        self.actions.push(action);
    }

    fn run_page(&mut self, first: u64, fresh: bool) {
        let (Some(ds), Some(checked)) = (self.dataset.clone(), self.view.checked.clone()) else {
            self.view.message = Some("open a dataset and write a valid query first".into());
            return;
        };
        if fresh {
            let text = self.view.checked_text.clone();
            self.view.history.retain(|h| h != &text);
            self.view.history.push(text);
            if self.view.history.len() > HISTORY {
                self.view.history.remove(0);
            }
            let (ds2, c2) = (ds.clone(), checked.clone());
            self.count_task = Some(AsyncComputeTaskPool::get().spawn(async move {
                let df = query::run_local_plan(&ds2, &plan::count(&c2), &plan::count_columns())?;
                Ok(plan::count_from_rows(&df))
            }));
        }
        if fresh {
            self.cursors = vec![plan::Cursor::default()];
        }
        // A page reached before (or the one after it) starts from its keyset cursor.
        let cursor = self
            .cursors
            .get((first / PAGE_ROWS) as usize)
            .filter(|c| c.first_row == first)
            .cloned()
            .unwrap_or_else(|| plan::Cursor::at(first));
        self.view.loading = true;
        self.page_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let result = (|| {
                let q = plan::page(&checked, &cursor, PAGE_ROWS)
                    .map_err(|d| query::invalid_query(&[d]))?;
                let df = query::run_local_plan(&ds, &q, &checked.columns)?;
                let estimate = if fresh {
                    query::estimate_rows(&ds, &checked)?
                } else {
                    0
                };
                let exact = (df.height() as u64) < PAGE_ROWS;
                let exact = exact.then(|| first + df.height() as u64);
                let next = plan::next_cursor(&checked, &cursor, &df)
                    .map_err(|d| query::invalid_query(&[d]))?;
                Ok((df, estimate, exact, next))
            })();
            (first, result)
        }));
    }

    fn fill_histogram(&mut self) {
        let (Some(ds), Some(checked)) = (self.dataset.clone(), self.view.checked.clone()) else {
            return;
        };
        let binning = match Binning::fixed(self.view.bins, self.view.lo, self.view.hi) {
            Ok(b) => b,
            Err(e) => {
                self.view.message = Some(e.to_string());
                return;
            }
        };
        let column = self.view.hist_column.clone();
        self.view.loading = true;
        self.histogram_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            let h = query::histogram_local(&ds, &checked, &column, None, binning);
            (column, h)
        }));
    }

    fn export(
        &mut self,
        path: PathBuf,
        export: impl FnOnce(&std::path::Path) -> Result<(), Error> + Send + 'static,
    ) {
        self.export_task = Some(AsyncComputeTaskPool::get().spawn(async move {
            match export(&path) {
                Ok(()) => format!("saved {}", path.display()),
                Err(e) => e.to_string(),
            }
        }));
    }
}

/// The query builder's systems (in `Update`).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuerySystems;

/// The "Query builder" window; needs the `OpenDataset` resource, sends `ShowEvent`.
pub struct QueryPlugin;

impl Plugin for QueryPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<QueryState>()
            .add_message::<ShowEvent>()
            .add_systems(
                Update,
                (follow_dataset, run_actions, receive)
                    .chain()
                    .in_set(QuerySystems),
            );
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, window);
        }
    }
}

fn follow_dataset(dataset: Option<Res<OpenDataset>>, mut state: ResMut<QueryState>) {
    let Some(dataset) = dataset else { return };
    if dataset.is_changed() {
        state.dataset = Some(dataset.0.clone());
        state.view.results = None;
        state.view.histogram = None;
        state.view.selected_row = None;
    }
}

fn run_actions(
    mut commands: Commands,
    mut state: ResMut<QueryState>,
    mut show: MessageWriter<ShowEvent>,
    jobs: Option<ResMut<crate::jobs::JobsState>>,
) {
    let mut jobs = jobs;
    state.view.revalidate();
    for action in std::mem::take(&mut state.actions) {
        match action {
            QueryAction::Run => state.run_page(0, true),
            QueryAction::Page(first) => state.run_page(first, false),
            QueryAction::Histogram => state.fill_histogram(),
            QueryAction::KeepAsOverlay => {
                state.view.overlay = state.view.histogram.clone();
            }
            QueryAction::ClearOverlay => state.view.overlay = None,
            QueryAction::SubmitJob(target) => {
                let (Some(checked), Some(jobs)) = (state.view.checked.clone(), jobs.as_mut())
                else {
                    state.view.message = Some("write a valid query first".into());
                    continue;
                };
                let binning = match Binning::fixed(state.view.bins, state.view.lo, state.view.hi) {
                    Ok(b) => b,
                    Err(e) => {
                        state.view.message = Some(e.to_string());
                        continue;
                    }
                };
                let analysis = alyx_shared::jobs::Analysis {
                    query: checked.query,
                    histograms: vec![alyx_shared::jobs::HistogramSpec {
                        column: state.view.hist_column.clone(),
                        weight: None,
                        binning,
                    }],
                };
                if let Err(ds) = analysis.check() {
                    state.view.message = Some(query::invalid_query(&ds).to_string());
                    continue;
                }
                jobs.push(crate::jobs::JobsAction::Submit {
                    name: format!("{} histogram", state.view.hist_column),
                    analysis,
                    priority: 0,
                    target,
                });
                state.view.message = Some("submitted as a job: see the Jobs window".into());
            }
            QueryAction::Show(id) => {
                show.write(ShowEvent(id));
            }
            QueryAction::ExportCsv(path) | QueryAction::ExportParquet(path) => {
                let Some(r) = &state.view.results else {
                    continue;
                };
                let mut df = r.frame.clone();
                let format = if path.extension().is_some_and(|e| e == "csv") {
                    OutputFormat::Csv
                } else {
                    OutputFormat::Parquet
                };
                state.export(path, move |p| {
                    let mut file = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
                    query::write(&mut df, format, usize::MAX, &mut file)
                });
            }
            QueryAction::ExportPng(path) => {
                let Some(rect) = state.view.plot_rect_px else {
                    state.view.message = Some("show the plot before exporting it".into());
                    continue;
                };
                commands.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>, mut state: ResMut<QueryState>| {
                        let image = captured.image.clone();
                        state.export(path.clone(), move |p| crop_png(&image, rect, p));
                    },
                );
            }
        }
    }
}

fn receive(mut state: ResMut<QueryState>) {
    if let Some((first, result)) = state.page_task.as_mut().and_then(check_ready) {
        state.page_task = None;
        state.view.loading = false;
        match result {
            Ok((frame, estimate, exact, next)) => {
                let page = (next.first_row.div_ceil(PAGE_ROWS)) as usize;
                if first % PAGE_ROWS == 0 && page == state.cursors.len() {
                    state.cursors.push(next);
                }
                let known = state.view.results.as_ref().and_then(|r| r.exact);
                let estimate = if first == 0 {
                    estimate
                } else {
                    state.view.results.as_ref().map_or(estimate, |r| r.estimate)
                };
                state.view.results = Some(ResultsView {
                    frame,
                    first_row: first,
                    estimate,
                    exact: exact.or(known),
                });
                state.view.selected_row = None;
                state.view.message = None;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
    if let Some(result) = state.count_task.as_mut().and_then(check_ready) {
        state.count_task = None;
        match (result, &mut state.view.results) {
            (Ok(n), Some(r)) => r.exact = Some(n),
            (Err(e), _) => state.view.message = Some(e.to_string()),
            _ => {}
        }
    }
    if let Some((column, result)) = state.histogram_task.as_mut().and_then(check_ready) {
        state.histogram_task = None;
        state.view.loading = false;
        match result {
            Ok(h) => {
                state.view.histogram = Some((column, h));
                state.view.generation += 1;
            }
            Err(e) => state.view.message = Some(e.to_string()),
        }
    }
    if let Some(m) = state.export_task.as_mut().and_then(check_ready) {
        state.export_task = None;
        state.view.message = Some(m);
    }
}

fn window(
    mut contexts: EguiContexts,
    mut state: ResMut<QueryState>,
    mut panels: ResMut<Panels>,
) -> Result {
    if !panels.queries {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut actions = Vec::new();
    egui::Window::new("Query builder")
        .open(&mut panels.queries)
        .default_pos([20.0, 150.0])
        .default_width(620.0)
        .vscroll(true)
        .show(ctx, |ui| actions = query_panel(ui, &mut state.view));
    state.actions.extend(actions);
    Ok(())
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// A result cell has a short spelling for every double (zeros, subnormals, ±∞, NaN).
        #[test]
        fn every_double_has_a_short_cell(x in proptest::num::f64::ANY) {
            let shown = cell(AnyValue::Float64(x));
            proptest::prop_assert!(!shown.is_empty() && shown.len() <= 13, "{x:e} → {shown}");
            proptest::prop_assert_eq!(shown, alyx_shared::number::significant(x));
        }
    }

    use super::*;
    use alyx_shared::nano::{self, NanoConfig};
    use alyx_shared::store::DataStore;

    #[test]
    fn pretty_sql_puts_clauses_on_their_own_lines() {
        let s = "WITH a AS (SELECT x FROM t WHERE x > 1) SELECT COUNT(*) AS n FROM a LEFT JOIN b ON a.x = b.x GROUP BY a.x";
        let p = pretty(s);
        assert!(p.contains("\n  SELECT x") || p.contains("(SELECT x"), "{p}");
        assert!(p.contains("\nLEFT JOIN b ON a.x = b.x"), "{p}");
        assert!(p.contains("COUNT(*)"), "{p}");
        // Formatting changes only whitespace: the query reads back the same.
        assert_eq!(
            query::parse(&p).expect("pretty parses"),
            query::parse(s).expect("parses")
        );
    }

    #[test]
    fn the_default_selection_is_the_dimuon_mass_window_and_validates() {
        let mut view = QueryView::default();
        view.revalidate();
        assert!(view.diagnostics.is_empty(), "{:?}", view.diagnostics);
        let cols: Vec<&str> = view
            .checked
            .as_ref()
            .expect("valid")
            .columns
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        assert_eq!(cols, ["event_id", "mass", "pt"]);
        view.mode = Mode::Sql;
        view.sql = "SELECT pt FROM muons WHERE ptt > 3".into();
        view.revalidate();
        assert!(view.checked.is_none());
        assert_eq!(
            (view.diagnostics[0].line, view.diagnostics[0].column),
            (1, 28)
        );
    }

    #[test]
    fn the_panel_shows_sql_and_offers_run() {
        let ctx = egui::Context::default();
        let mut view = QueryView::default();
        let mut actions = Vec::new();
        ctx.run_ui(egui::RawInput::default(), |ui| {
            actions = query_panel(ui, &mut view);
        })
        .drop_without_applying_deltas();
        assert!(view.checked.is_some());
        assert!(actions.is_empty());
    }

    /// The plugin, headless: run the builder's query on a generated dataset, page, histogram,
    /// export CSV, and send a selected event to the 3D display.
    #[test]
    fn plugin_runs_pages_histograms_and_shows_an_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DataStore::open(dir.path()).expect("store");
        let mut ds = store.create_dataset("nano", "test").expect("dataset");
        ds.append(&nano::events(&NanoConfig::new(4), 0..4000))
            .expect("append");
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, QueryPlugin))
            .insert_resource(OpenDataset(ds));
        let update_until = |app: &mut App, done: &dyn Fn(&QueryState) -> bool| {
            for _ in 0..2000 {
                app.update();
                if done(app.world().resource::<QueryState>()) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            panic!(
                "timed out: {:?}",
                app.world().resource::<QueryState>().view.message
            );
        };
        app.update();
        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Run);
        update_until(&mut app, &|s| {
            s.view.results.as_ref().is_some_and(|r| r.exact.is_some())
        });
        let state = app.world().resource::<QueryState>();
        let r = state.view.results.as_ref().expect("results");
        assert!(r.frame.height() > 50, "{} Z candidates", r.frame.height());
        assert_eq!(r.exact, Some(r.frame.height() as u64));
        assert_eq!(state.view.history.len(), 1);

        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Histogram);
        update_until(&mut app, &|s| s.view.histogram.is_some());
        let peak = app
            .world()
            .resource::<QueryState>()
            .view
            .histogram
            .as_ref()
            .and_then(|(_, h)| h.mode())
            .expect("peak");
        assert!((86.0..96.0).contains(&peak), "Z peak at {peak}");

        let csv = dir.path().join("rows.csv");
        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::ExportCsv(csv.clone()));
        update_until(&mut app, &|s| {
            s.view
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("saved"))
        });
        let text = std::fs::read_to_string(&csv).expect("csv");
        assert!(text.starts_with("event_id,mass,pt"), "{text}");

        app.world_mut()
            .resource_mut::<QueryState>()
            .push(QueryAction::Show(7));
        app.update();
        let shown: Vec<ShowEvent> = app
            .world_mut()
            .resource_mut::<Messages<ShowEvent>>()
            .drain()
            .collect();
        assert_eq!(shown, [ShowEvent(7)]);
    }
}

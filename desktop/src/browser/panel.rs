//! The Events window's contents: the filter form, the sortable table, go to run/event.

use super::data::*;
use bevy::prelude::*;
use bevy_egui::egui;

/// What the user asked for in the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrowserAction {
    /// The query changed: fetch its page.
    Query,
    /// Show this event.
    Show(u64),
    /// Find the event `event_number` of `run` and show it.
    Find { run: u32, event_number: u64 },
}

/// The panel's view model: the query, the form's text, and the last page.
#[derive(Clone, Debug, Default)]
pub struct BrowserView {
    pub query: BrowserQuery,
    pub run_text: String,
    pub min_tracks_text: String,
    pub max_tracks_text: String,
    pub goto_run_text: String,
    pub goto_event_text: String,
    pub page: Option<BrowserPage>,
    pub loading: bool,
    pub selected: Option<u64>,
    pub message: Option<String>,
}

/// An optional number typed in a field: empty is `None`.
pub(super) fn parse_field<T: std::str::FromStr>(
    text: &str,
    what: &str,
) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what} must be a whole number, not `{text}`"))
}

/// The "Events" panel: filters, go-to, the table and paging.
pub fn browser_panel(ui: &mut egui::Ui, view: &mut BrowserView) -> Vec<BrowserAction> {
    let mut actions = Vec::new();
    let mut query = view.query.clone();
    let mut form_error = None;
    ui.horizontal(|ui| {
        let field = |ui: &mut egui::Ui, text: &mut String| {
            ui.add(egui::TextEdit::singleline(text).desired_width(70.0));
        };
        ui.label("run");
        field(ui, &mut view.run_text);
        ui.label("tracks from");
        field(ui, &mut view.min_tracks_text);
        ui.label("to");
        field(ui, &mut view.max_tracks_text);
    });
    match (
        parse_field(&view.run_text, "run"),
        parse_field(&view.min_tracks_text, "track count"),
        parse_field(&view.max_tracks_text, "track count"),
    ) {
        (Ok(run), Ok(min), Ok(max)) => {
            (query.run, query.min_tracks, query.max_tracks) = (run, min, max);
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => form_error = Some(e),
    }
    ui.horizontal(|ui| {
        ui.label("go to run");
        ui.add(egui::TextEdit::singleline(&mut view.goto_run_text).desired_width(70.0));
        ui.label("event");
        ui.add(egui::TextEdit::singleline(&mut view.goto_event_text).desired_width(90.0));
        if ui.button("go").clicked() {
            let run = parse_field::<u32>(&view.goto_run_text, "run");
            let event = parse_field::<u64>(&view.goto_event_text, "event");
            match (run, event) {
                (Ok(Some(run)), Ok(Some(event_number))) => {
                    actions.push(BrowserAction::Find { run, event_number })
                }
                (Err(e), _) | (_, Err(e)) => form_error = Some(e),
                _ => form_error = Some("type a run and an event number".into()),
            }
        }
    });
    if let Some(e) = &form_error {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    } else if let Some(message) = &view.message {
        ui.colored_label(egui::Color32::LIGHT_RED, message);
    }
    ui.separator();

    let page_size = query.page_size;
    let pages = view.page.as_ref().map_or(1, |p| p.pages(page_size));
    ui.horizontal(|ui| {
        if ui
            .add_enabled(query.page > 0, egui::Button::new("◀"))
            .clicked()
        {
            query.page -= 1;
        }
        ui.label(format!("page {} of {pages}", query.page + 1));
        if ui
            .add_enabled(query.page + 1 < pages, egui::Button::new("▶"))
            .clicked()
        {
            query.page += 1;
        }
        if let Some(page) = &view.page {
            ui.label(format!("{} events", page.total));
        }
        if view.loading {
            ui.spinner();
        }
    });

    egui::ScrollArea::both().max_height(420.0).show(ui, |ui| {
        egui::Grid::new("alyx-event-table")
            .striped(true)
            .num_columns(Column::ALL.len())
            .show(ui, |ui| {
                for column in Column::ALL {
                    let arrow = match (query.sort == column, query.descending) {
                        (false, _) => "",
                        (true, false) => " ⏶",
                        (true, true) => " ⏷",
                    };
                    if ui
                        .selectable_label(
                            query.sort == column,
                            format!("{}{arrow}", column.title()),
                        )
                        .clicked()
                    {
                        query.descending = query.sort == column && !query.descending;
                        query.sort = column;
                    }
                }
                ui.end_row();
                let Some(page) = &view.page else { return };
                for row in &page.rows {
                    let selected = view.selected == Some(row.event_id);
                    let mut clicked = false;
                    for column in Column::ALL {
                        clicked |= ui.selectable_label(selected, row.cell(column)).clicked();
                    }
                    ui.end_row();
                    if clicked {
                        actions.push(BrowserAction::Show(row.event_id));
                    }
                }
            });
    });

    // Filters and order start again from the first page.
    let same_but_page = BrowserQuery {
        page: view.query.page,
        ..query.clone()
    };
    if same_but_page != view.query {
        query.page = 0;
    }
    if query != view.query {
        view.query = query;
        actions.push(BrowserAction::Query);
    }
    actions
}

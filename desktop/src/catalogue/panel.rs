//! The Backend window: the server, its datasets, a page of events, live mode.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};

use super::model::{Catalogue, CatalogueAction, apply};
use crate::remote::Remote;
use crate::{BackendDataset, Panels};

/// The Backend window's contents; what the user asked for, if anything.
pub fn catalogue_panel(
    ui: &mut egui::Ui,
    url: &str,
    catalogue: &Catalogue,
) -> Option<CatalogueAction> {
    let mut action = None;
    ui.label(format!("backend {url}"));
    let mut live = catalogue.live;
    if ui
        .checkbox(&mut live, "Live: follow the newest event")
        .changed()
    {
        action = Some(CatalogueAction::Live(live));
    }
    if !catalogue.status.is_empty() {
        ui.label(&catalogue.status);
    }
    if let Some(s) = &catalogue.shown {
        ui.label(format!(
            "showing {} #{}: run {} event {}, {}",
            s.dataset,
            s.event_id,
            s.run,
            s.event_number,
            alyx_core::utc(s.timestamp_ns)
        ));
    }
    ui.separator();
    egui::ComboBox::from_label("dataset")
        .selected_text(&catalogue.dataset)
        .show_ui(ui, |ui| {
            for d in &catalogue.datasets {
                let text = format!("{} ({} events)", d.name, d.event_count);
                if ui
                    .selectable_label(d.name == catalogue.dataset, text)
                    .clicked()
                {
                    action = Some(CatalogueAction::Events {
                        dataset: d.name.clone(),
                        after: None,
                    });
                }
            }
        });
    ui.horizontal(|ui| {
        ui.label(format!("{} events", catalogue.total));
        if ui.button("⟳ refresh").clicked() {
            action = Some(CatalogueAction::Events {
                dataset: catalogue.dataset.clone(),
                after: None,
            });
        }
        if let Some(next) = &catalogue.next_page
            && ui.button("next page ▶").clicked()
        {
            action = Some(CatalogueAction::Events {
                dataset: catalogue.dataset.clone(),
                after: Some(next.clone()),
            });
        }
    });
    egui::ScrollArea::vertical()
        .max_height(300.0)
        .show(ui, |ui| {
            for e in &catalogue.events {
                let text = format!(
                    "#{:<7} run {:<6} event {:<9} {:>4} tracks {:>6} hits",
                    e.event_id, e.run, e.event_number, e.n_tracks, e.n_hits
                );
                let selected = catalogue
                    .shown
                    .as_ref()
                    .is_some_and(|s| s.event_id == e.event_id);
                if ui
                    .selectable_label(selected, egui::RichText::new(text).monospace())
                    .clicked()
                {
                    action = Some(CatalogueAction::Event(e.event_id));
                }
            }
        });
    action
}

pub(super) fn window(
    mut contexts: EguiContexts,
    remote: Option<Res<Remote>>,
    mut catalogue: ResMut<Catalogue>,
    mut working_on: ResMut<BackendDataset>,
    panels: Res<Panels>,
) {
    let Some(remote) = remote else { return };
    if !panels.events {
        return;
    }
    let Ok(ctx) = contexts.ctx_mut() else { return };
    let mut action = None;
    egui::Window::new("Backend")
        .default_pos([310.0, 420.0])
        .default_width(520.0)
        .show(ctx, |ui| {
            action = catalogue_panel(ui, remote.url(), &catalogue)
        });
    if let Some(action) = action {
        apply(&remote, &mut catalogue, &mut working_on, action);
    }
}

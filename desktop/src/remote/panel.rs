//! The Backend window: the server, its datasets, a page of events, live mode.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};

use super::messages::*;
use super::state::Backend;
use crate::Panels;

/// The Backend window: the server, its datasets, a page of events, live mode.
pub fn backend_panel(ui: &mut egui::Ui, backend: &mut Backend) -> Option<Request> {
    let mut request = None;
    ui.label(format!("backend {}", backend.url));
    let mut live = backend.live;
    if ui
        .checkbox(&mut live, "Live: follow the newest event")
        .changed()
    {
        backend.set_live(live);
    }
    if !backend.status.is_empty() {
        ui.label(&backend.status);
    }
    if let Some(s) = &backend.shown {
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
        .selected_text(&backend.dataset)
        .show_ui(ui, |ui| {
            for d in &backend.datasets {
                let text = format!("{} ({} events)", d.name, d.event_count);
                if ui
                    .selectable_label(d.name == backend.dataset, text)
                    .clicked()
                {
                    request = Some(Request::Events {
                        dataset: d.name.clone(),
                        after: None,
                    });
                }
            }
        });
    ui.horizontal(|ui| {
        ui.label(format!("{} events", backend.total));
        if ui.button("⟳ refresh").clicked() {
            request = Some(Request::Events {
                dataset: backend.dataset.clone(),
                after: None,
            });
        }
        if let Some(next) = backend.next_page
            && ui.button("next page ▶").clicked()
        {
            request = Some(Request::Events {
                dataset: backend.dataset.clone(),
                after: Some(next),
            });
        }
    });
    egui::ScrollArea::vertical()
        .max_height(300.0)
        .show(ui, |ui| {
            for e in &backend.events {
                let text = format!(
                    "#{:<7} run {:<6} event {:<9} {:>4} tracks {:>6} hits",
                    e.event_id, e.run, e.event_number, e.n_tracks, e.n_hits
                );
                let selected = backend
                    .shown
                    .as_ref()
                    .is_some_and(|s| s.event_id == e.event_id);
                if ui
                    .selectable_label(selected, egui::RichText::new(text).monospace())
                    .clicked()
                {
                    request = Some(Request::Event {
                        dataset: backend.dataset.clone(),
                        id: e.event_id,
                    });
                }
            }
        });
    request
}

pub(super) fn backend_window(
    mut contexts: EguiContexts,
    backend: Option<ResMut<Backend>>,
    panels: Res<Panels>,
) {
    let Some(mut backend) = backend else { return };
    if !panels.events {
        return;
    }
    let Ok(ctx) = contexts.ctx_mut() else { return };
    let mut request = None;
    egui::Window::new("Backend")
        .default_pos([310.0, 420.0])
        .default_width(520.0)
        .show(ctx, |ui| request = backend_panel(ui, &mut backend));
    if let Some(request) = request {
        if let Request::Events { dataset, .. } = &request
            && *dataset != backend.dataset
        {
            backend.dataset = dataset.clone();
            if backend.live {
                backend.set_live(true);
            }
        }
        if let Request::Event { .. } = request {
            // Picking an event by hand stops following the stream.
            if backend.live {
                backend.set_live(false);
            }
        }
        backend.send(request);
    }
}

//! The Jobs window's contents: the job table with progress, estimate, priority and cancel, the opened result.

use super::model::*;
use alyx_analysis::jobs::JobState;
use bevy::prelude::*;
use bevy_egui::egui;

pub(super) fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The Jobs window: the job list with progress, and the opened result's bins.
pub fn jobs_panel(ui: &mut egui::Ui, view: &mut JobsView, remote: bool) -> Vec<JobsAction> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        if remote {
            if ui.checkbox(&mut view.show_all, "everyone's jobs").changed() {
                actions.push(JobsAction::Refresh);
            }
            if ui.button("⟳").clicked() {
                actions.push(JobsAction::Refresh);
            }
        } else {
            ui.label("local pool (submit from the query builder: \"run as job\")");
        }
    });
    if let Some(m) = &view.message {
        ui.colored_label(egui::Color32::from_rgb(230, 160, 60), m);
    }
    if view.rows.is_empty() {
        ui.label("no jobs");
    }
    egui::ScrollArea::vertical()
        .max_height(260.0)
        .id_salt("alyx-jobs-list")
        .show(ui, |ui| {
            for row in &view.rows {
                ui.horizontal(|ui| {
                    ui.monospace(format!("#{:<4}", row.id));
                    ui.label(format!("{} · {} · {}", row.owner, row.target, row.name));
                    let fraction = if row.tasks_total > 0 {
                        row.tasks_done as f32 / row.tasks_total as f32
                    } else {
                        0.0
                    };
                    let left = if JobState::parse(&row.state).is_some_and(JobState::is_final) {
                        row.state.clone()
                    } else {
                        format!("{} · about {} left", row.state, duration(row.seconds_left))
                    };
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(160.0)
                            .text(format!("{}/{} · {left}", row.tasks_done, row.tasks_total)),
                    );
                    let live = !JobState::parse(&row.state).is_some_and(JobState::is_final);
                    ui.label(format!("prio {}", row.priority));
                    if live && ui.small_button("+").clicked() {
                        actions.push(JobsAction::Priority(row.id, row.priority + 10));
                    }
                    if live && ui.small_button("−").clicked() {
                        actions.push(JobsAction::Priority(row.id, row.priority - 10));
                    }
                    if live && ui.small_button("cancel").clicked() {
                        actions.push(JobsAction::Cancel(row.id));
                    }
                    if row.tasks_done > 0 && ui.small_button("open").clicked() {
                        actions.push(JobsAction::Open(row.id));
                    }
                });
                if !row.reason.is_empty() {
                    ui.small(format!("    {}", row.reason));
                }
            }
        });
    if let Some(r) = &view.result {
        ui.separator();
        ui.label(format!(
            "job #{} result{}",
            r.id,
            if r.complete { "" } else { " (partial)" }
        ));
        for (column, h) in &r.histograms {
            ui.collapsing(
                format!("{column}: {} entries", h.entries.iter().sum::<u64>()),
                |ui| {
                    egui::Grid::new(("alyx-job-bins", column.as_str()))
                        .striped(true)
                        .show(ui, |ui| {
                            ui.strong("bin");
                            ui.strong("entries");
                            ui.strong("Σw ± √Σw²");
                            ui.end_row();
                            let edges = h.binning.edges();
                            for (i, e) in h.entries.iter().enumerate() {
                                ui.monospace(format!("{:.4}–{:.4}", edges[i], edges[i + 1]));
                                ui.monospace(e.to_string());
                                ui.monospace(format!(
                                    "{:.3} ± {:.3}",
                                    h.sum_w[i],
                                    h.sum_w2[i].sqrt()
                                ));
                                ui.end_row();
                            }
                        });
                },
            );
        }
    }
    actions
}

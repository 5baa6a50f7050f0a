//! The event display's egui panels: the menu bar (File ▸ Open, screenshots, panels, views),
//! the side panel (event info, navigation, animation, picked item, cuts and style), the info
//! overlay drawn into screenshots, and the keyboard shortcuts. Each section is a function of
//! the state it shows and edits.

use std::path::PathBuf;

use crate::error::Result as AlyxResult;
use alyx_core::model::{CollisionEvent, Detector};
use alyx_store::Dataset;
use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::display::geometry::{Geometry, GeometryByDataset, GeometryFile, Volumes};
use crate::display::model::{Animation, Display, Orbit, PointerOverUi, View, ViewOptions};
use crate::display::scene::{ChargeFilter, HitColouring, Picked, TrackColouring};
use crate::{LocalStore, OpenDataset, Panels, ShowEvent};

/// Recently opened paths, newest first (persisted).
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct RecentFiles(pub Vec<PathBuf>);

impl RecentFiles {
    pub fn add(&mut self, path: PathBuf) {
        self.0.retain(|p| *p != path);
        self.0.insert(0, path);
        self.0.truncate(10);
    }
}

/// File ▸ Open and "go to run/event": the text typed and the work in flight.
#[derive(Resource, Default)]
struct Navigation {
    open_dialog: bool,
    open_path: String,
    /// The local data directory's datasets, listed once each time the dialog opens.
    local_datasets: Option<Vec<String>>,
    opening: Option<(PathBuf, Task<AlyxResult<(Dataset, u64, CollisionEvent)>>)>,
    goto_id: String,
    /// A geometry file typed in, `PATH[@UNIT]`.
    geometry_path: String,
    /// The geometry chosen in the Open dialog for the dataset being opened.
    open_geometry: Option<GeometryFile>,
    geometry_error: Option<String>,
}

pub struct DisplayPanelsPlugin;

impl Plugin for DisplayPanelsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PointerOverUi>()
            .init_resource::<RecentFiles>()
            .init_resource::<Panels>()
            .init_resource::<Navigation>()
            .add_systems(Update, (keyboard, finish_open))
            .add_systems(EguiPrimaryContextPass, ui);
    }
}

#[allow(clippy::too_many_arguments)]
fn ui(
    mut contexts: EguiContexts,
    mut commands: Commands,
    mut display: ResMut<Display>,
    mut options: ResMut<ViewOptions>,
    mut animation: ResMut<Animation>,
    mut orbit: ResMut<Orbit>,
    mut panels: ResMut<Panels>,
    mut nav: ResMut<Navigation>,
    mut recent: ResMut<RecentFiles>,
    mut pointer: ResMut<PointerOverUi>,
    dataset: Option<Res<OpenDataset>>,
    store: Option<Res<LocalStore>>,
    mut show: MessageWriter<ShowEvent>,
    mut exit: MessageWriter<AppExit>,
    (mut geometry, mut volumes): (Option<ResMut<Geometry>>, Option<ResMut<Volumes>>),
) -> Result {
    let ctx = contexts.ctx_mut()?.clone();
    let mut root = egui::Ui::new(
        ctx.clone(),
        "alyx-root".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );
    if !panels.side {
        // Screenshots: the info overlay only.
        egui::Area::new("overlay".into())
            .fixed_pos([8.0, 8.0])
            .show(&ctx, |ui| {
                egui::Frame::popup(ui.style())
                    .show(ui, |ui| event_info(ui, &display, dataset.as_deref()));
            });
        return Ok(());
    }
    let menu = egui::Panel::top("menu").show(&mut root, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open…  (Ctrl+O)").clicked() {
                    nav.open_dialog = true;
                    ui.close();
                }
                if ui.button("Save screenshot  (F12)").clicked() {
                    crate::display::visuals::save_window_screenshot(&mut commands, &mut display);
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    exit.write(AppExit::Success);
                }
            });
            ui.menu_button("View", |ui| {
                for (label, view) in [
                    ("3D  (1)", View::ThreeD),
                    ("End view r-φ  (2)", View::RPhi),
                    ("Side view r-z  (3)", View::RZ),
                ] {
                    if ui.button(label).clicked() {
                        *orbit = Orbit {
                            orthographic: orbit.orthographic,
                            ..Orbit::view(view)
                        };
                        ui.close();
                    }
                }
                ui.add_enabled_ui(orbit.view == View::ThreeD, |ui| {
                    let mut flat = orbit.orthographic;
                    if ui.checkbox(&mut flat, "Orthographic 3D  (5)").changed() {
                        orbit.orthographic = flat;
                    }
                });
                ui.separator();
                ui.checkbox(&mut panels.events, "Event browser");
                ui.checkbox(&mut panels.histograms, "Histograms");
                ui.checkbox(&mut panels.queries, "Query builder");
                ui.checkbox(&mut panels.jobs, "Jobs");
                ui.checkbox(&mut panels.notebook, "Notebook");
            });
            if let Some(d) = &dataset {
                ui.separator();
                ui.label(format!(
                    "{} · {} events",
                    d.0.name(),
                    d.0.manifest().event_count()
                ));
            }
        });
    });
    let side = egui::Panel::left("side")
        .resizable(true)
        .default_size(290.0)
        .show(&mut root, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                event_info(ui, &display, dataset.as_deref());
                if let Some(notice) = &display.notice {
                    ui.label(notice);
                }
                if let Some(message) = &display.message {
                    ui.colored_label(egui::Color32::LIGHT_RED, message);
                }
                ui.separator();
                navigation(ui, &mut nav, &display, dataset.as_deref(), &mut show);
                ui.separator();
                animation_controls(ui, &mut animation, display.scene.duration_ns);
                ui.separator();
                picked(ui, &display);
                ui.separator();
                cuts_and_style(ui, &mut options, &display);
                if let (Some(geometry), Some(volumes)) = (geometry.as_mut(), volumes.as_mut()) {
                    ui.separator();
                    detector_geometry(ui, &mut nav, geometry, volumes);
                }
            });
        });
    if nav.open_dialog {
        open_dialog(&ctx, &mut nav, &mut recent, store.as_deref());
    }
    // The panels live on the background layer, which egui counts as "over egui" everywhere;
    // what the 3D view must not take is a pointer over a panel or a window, or one egui is using.
    let over_ui = ctx.input(|i| i.pointer.interact_pos()).is_some_and(|pos| {
        menu.response.rect.contains(pos)
            || side.response.rect.contains(pos)
            || ctx
                .layer_id_at(pos)
                .is_some_and(|layer| layer.order != egui::Order::Background)
    });
    pointer.0 = over_ui || ctx.egui_is_using_pointer();
    Ok(())
}

fn event_info(ui: &mut egui::Ui, display: &Display, dataset: Option<&OpenDataset>) {
    let e = &display.event;
    let h = &e.header;
    ui.heading(format!("run {} · event {}", h.run, h.event_number));
    if let Some(d) = dataset {
        ui.label(format!("{} · id {}", d.0.name(), display.event_id));
    }
    if h.timestamp_ns != 0 {
        ui.label(alyx_core::utc(h.timestamp_ns));
    }
    if h.sqrt_s_gev.is_finite() {
        ui.label(format!("{} · √s = {} GeV", h.system.as_str(), h.sqrt_s_gev));
    }
    let mut counts = vec![
        format!("{} tracks", e.tracks.len()),
        format!("{} hits", e.hits.len()),
    ];
    for (n, name) in [
        (e.muons.len(), "muons"),
        (e.electrons.len(), "electrons"),
        (e.photons.len(), "photons"),
        (e.jets.len(), "jets"),
        (e.clusters.len(), "clusters"),
        (e.vertices.len(), "vertices"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {name}"));
        }
    }
    ui.label(counts.join(" · "));
    if let Some(met) = &e.met
        && met.pt_gev.is_finite()
    {
        ui.label(format!("missing ET {:.1} GeV", met.pt_gev));
    }
    ui.small(format!(
        "drawn: {} tracks, {} of {} hits ({:?} hits)",
        display.scene.tracks.len(),
        display.scene.hits.len(),
        display.scene.hits_passing,
        display.lod
    ));
}

fn navigation(
    ui: &mut egui::Ui,
    nav: &mut Navigation,
    display: &Display,
    dataset: Option<&OpenDataset>,
    show: &mut MessageWriter<ShowEvent>,
) {
    let Some(dataset) = dataset else { return };
    let Some((first, last)) = dataset.id_range() else {
        ui.label("the dataset has no events");
        return;
    };
    ui.horizontal(|ui| {
        let id = display.event_id;
        if ui
            .add_enabled(id > first, egui::Button::new("◀ previous"))
            .clicked()
        {
            show.write(ShowEvent(id - 1));
        }
        if ui
            .add_enabled(id < last, egui::Button::new("next ▶"))
            .clicked()
        {
            show.write(ShowEvent(id + 1));
        }
        if display.is_loading() {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| {
        ui.label("id");
        ui.add(egui::TextEdit::singleline(&mut nav.goto_id).desired_width(70.0));
        if ui.button("go").clicked() {
            match nav.goto_id.trim().parse::<u64>() {
                Ok(id) if (first..=last).contains(&id) => {
                    show.write(ShowEvent(id));
                }
                _ => {
                    nav.goto_id = format!("{first}–{last}");
                }
            }
        }
    });
}

fn animation_controls(ui: &mut egui::Ui, animation: &mut Animation, duration_ns: f32) {
    ui.horizontal(|ui| {
        let label = if animation.playing {
            "⏸ pause"
        } else {
            "▶ play"
        };
        if ui.button(label).on_hover_text("Space").clicked() {
            toggle_play(animation);
        }
        if ui.button("whole event").clicked() {
            *animation = Animation {
                length_s: animation.length_s,
                ..Animation::default()
            };
        }
    });
    let mut t = animation.t_ns.unwrap_or(duration_ns);
    let slider = egui::Slider::new(&mut t, 0.0..=duration_ns.max(0.01))
        .text("ns")
        .fixed_decimals(2);
    if ui.add(slider).changed() {
        animation.t_ns = Some(t);
        animation.playing = false;
    }
}

fn toggle_play(animation: &mut Animation) {
    animation.playing = !animation.playing;
    if animation.playing && animation.t_ns.is_none() {
        animation.t_ns = Some(0.0);
    }
}

fn picked(ui: &mut egui::Ui, display: &Display) {
    let e = &display.event;
    match display.picked {
        None => {
            ui.weak("click a track or hit to see its details");
        }
        Some(Picked::Track(i)) => {
            let Some(t) = e.tracks.get(i as usize) else {
                return;
            };
            let p = t.p4();
            ui.strong(format!(
                "track {i}{}",
                if t.collection.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.collection)
                }
            ));
            egui::Grid::new("picked").num_columns(2).show(ui, |ui| {
                for (k, v) in [
                    ("pT", format!("{:.3} GeV", t.pt())),
                    ("η", format!("{:.3}", p.eta())),
                    ("φ", format!("{:.3}", p.phi())),
                    ("charge", format!("{:+}", t.charge)),
                    ("χ²/ndf", format!("{:.2}", t.chi2_ndf)),
                    ("hits", t.n_hits.to_string()),
                    ("PID", t.pid.to_string()),
                    (
                        "origin",
                        format!(
                            "({:.2}, {:.2}, {:.2}) cm",
                            t.origin_cm[0], t.origin_cm[1], t.origin_cm[2]
                        ),
                    ),
                ] {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                }
            });
        }
        Some(Picked::Hit(i)) => {
            let Some(h) = e.hits.get(i as usize) else {
                return;
            };
            let [x, y, z] = h.position_cm;
            let detector = match h.detector {
                Detector::Other => e.hit_collection(h).unwrap_or("other").to_owned(),
                d => format!("{d:?} layer {}", h.layer),
            };
            ui.strong(format!("hit {i}"));
            egui::Grid::new("picked").num_columns(2).show(ui, |ui| {
                for (k, v) in [
                    ("detector", detector),
                    (
                        "r, φ, z",
                        format!("{:.2} cm, {:.3}, {:.2} cm", x.hypot(y), y.atan2(x), z),
                    ),
                    ("time", format!("{:.3} ns", h.time_ns)),
                    ("energy", format!("{:.2} keV", h.edep_kev)),
                    ("track", h.track.map_or("—".into(), |t| t.to_string())),
                ] {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                }
            });
        }
    }
}

fn cuts_and_style(ui: &mut egui::Ui, options: &mut ViewOptions, display: &Display) {
    let mut o = options.clone();
    egui::CollapsingHeader::new("Cuts")
        .default_open(true)
        .show(ui, |ui| {
            ui.add(egui::Slider::new(&mut o.cuts.pt_min_gev, 0.0..=5.0).text("pT min (GeV)"));
            let mut eta = o.cuts.eta_max.min(2.5);
            ui.add(egui::Slider::new(&mut eta, 0.1..=2.5).text("|η| max"));
            o.cuts.eta_max = if eta >= 2.5 { f64::INFINITY } else { eta };
            ui.horizontal(|ui| {
                for (value, label) in [
                    (ChargeFilter::All, "all"),
                    (ChargeFilter::Positive, "+"),
                    (ChargeFilter::Negative, "−"),
                ] {
                    ui.radio_value(&mut o.cuts.charge, value, label);
                }
                ui.label("charge");
            });
            ui.horizontal(|ui| {
                for (i, name) in ["ITS", "TPC", "TOF", "other"].iter().enumerate() {
                    ui.checkbox(&mut o.cuts.detectors[i], *name);
                }
            });
            for c in &display.collections {
                let mut shown = !o.cuts.hidden_collections.contains(c);
                if ui.checkbox(&mut shown, c).changed() {
                    if shown {
                        o.cuts.hidden_collections.remove(c);
                    } else {
                        o.cuts.hidden_collections.insert(c.clone());
                    }
                }
            }
        });
    egui::CollapsingHeader::new("Style")
        .default_open(true)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("hits by");
                for (value, label) in [
                    (HitColouring::Detector, "detector"),
                    (HitColouring::Energy, "energy"),
                    (HitColouring::Time, "time"),
                ] {
                    ui.radio_value(&mut o.style.hits, value, label);
                }
            });
            ui.horizontal(|ui| {
                ui.label("tracks by");
                for (value, label) in [
                    (TrackColouring::Charge, "charge"),
                    (TrackColouring::Pt, "pT"),
                    (TrackColouring::Pid, "PID"),
                ] {
                    ui.radio_value(&mut o.style.tracks, value, label);
                }
            });
            ui.horizontal(|ui| {
                ui.label("geometry");
                for (i, name) in ["ITS", "TPC", "TOF"].iter().enumerate() {
                    ui.checkbox(&mut o.geometry[i], *name);
                }
            });
            ui.checkbox(&mut o.cut_away, "cut away the upper half");
            ui.checkbox(&mut o.objects, "jets, clusters, MET, vertices, leptons");
        });
    if o != *options {
        *options = o;
    }
}

/// The detector drawn: a geometry file to load (or the built-in barrel), and its volumes.
fn detector_geometry(
    ui: &mut egui::Ui,
    nav: &mut Navigation,
    geometry: &mut ResMut<Geometry>,
    volumes: &mut ResMut<Volumes>,
) {
    egui::CollapsingHeader::new("Detector geometry")
        .default_open(true)
        .show(ui, |ui| {
            if let Some(file) = geometry_field(ui, nav, "Load") {
                nav.geometry_error = None;
                match file {
                    Ok(file) if !geometry.files.contains(&file) => geometry.files.push(file),
                    Ok(_) => {}
                    Err(e) => nav.geometry_error = Some(e),
                }
            }
            if let Some(e) = &nav.geometry_error {
                ui.colored_label(egui::Color32::LIGHT_RED, e);
            }
            if !geometry.files.is_empty() && ui.button("Built-in barrel").clicked() {
                geometry.files.clear();
            }
            if volumes.loading() || !volumes.list.is_empty() || !volumes.errors.is_empty() {
                for (i, visible, opacity) in crate::display::geometry::volumes_ui(ui, volumes) {
                    volumes.list[i].visible = visible;
                    volumes.list[i].opacity = opacity;
                }
            }
        });
}

/// A text field for `PATH[@UNIT]` and a button; the parsed file once the button is pressed.
fn geometry_field(
    ui: &mut egui::Ui,
    nav: &mut Navigation,
    button: &str,
) -> Option<Result<GeometryFile, String>> {
    let mut chosen = None;
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut nav.geometry_path)
                .hint_text("geometry .gltf / .obj / .root [@mm|cm|m]")
                .desired_width(220.0),
        );
        if ui.button(button).clicked() && !nav.geometry_path.trim().is_empty() {
            chosen = Some(GeometryFile::parse(&nav.geometry_path));
        }
    });
    chosen
}

fn open_dialog(
    ctx: &egui::Context,
    nav: &mut Navigation,
    recent: &mut RecentFiles,
    store: Option<&LocalStore>,
) {
    let mut open = true;
    let mut chosen: Option<PathBuf> = None;
    let local = nav
        .local_datasets
        .get_or_insert_with(|| {
            store
                .and_then(|s| s.0.dataset_names().ok())
                .unwrap_or_default()
        })
        .clone();
    egui::Window::new("Open")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label("A dataset directory, a ROOT file or a Phoenix JSON file:");
            let response =
                ui.add(egui::TextEdit::singleline(&mut nav.open_path).desired_width(380.0));
            let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.label(
                "Detector geometry for it (optional): glTF, OBJ or ROOT TGeo, PATH[@mm|cm|m]:",
            );
            ui.add(
                egui::TextEdit::singleline(&mut nav.geometry_path)
                    .hint_text("e.g. CMS_cms.gltf")
                    .desired_width(380.0),
            );
            ui.horizontal(|ui| {
                if (ui.button("Open").clicked() || enter) && !nav.open_path.trim().is_empty() {
                    nav.open_geometry = None;
                    let geometry = nav.geometry_path.trim();
                    match (!geometry.is_empty()).then(|| GeometryFile::parse(geometry)) {
                        Some(Err(e)) => nav.geometry_error = Some(e),
                        other => {
                            nav.geometry_error = None;
                            nav.open_geometry = other.and_then(Result::ok);
                            chosen = Some(PathBuf::from(nav.open_path.trim()));
                        }
                    }
                }
                if nav.opening.is_some() {
                    ui.spinner();
                    ui.label("importing…");
                }
            });
            if let Some(e) = &nav.geometry_error {
                ui.colored_label(egui::Color32::LIGHT_RED, e);
            }
            if !local.is_empty() {
                ui.separator();
                ui.label("In the local data directory");
                for name in local {
                    if ui.link(&name).clicked() {
                        chosen = store.map(|s| s.0.root().join(&name));
                    }
                }
            }
            if !recent.0.is_empty() {
                ui.separator();
                ui.label("Recent");
                for path in &recent.0 {
                    if ui.link(path.display().to_string()).clicked() {
                        chosen = Some(path.clone());
                    }
                }
            }
        });
    if !open {
        nav.open_dialog = false;
        nav.local_datasets = None;
    }
    if let (Some(path), Some(store)) = (chosen, store)
        && nav.opening.is_none()
    {
        recent.add(path.clone());
        let store = store.0.clone();
        let task_path = path.clone();
        nav.opening = Some((
            path,
            AsyncComputeTaskPool::get().spawn(async move { open_first_event(&task_path, &store) }),
        ));
    }
}

/// Opens (importing if need be) `path` and reads its first event.
fn open_first_event(
    path: &std::path::Path,
    store: &alyx_store::DataStore,
) -> AlyxResult<(Dataset, u64, CollisionEvent)> {
    let dataset = crate::open(path, store)?;
    let first = OpenDataset(dataset.clone())
        .id_range()
        .map_or(0, |(first, _)| first);
    let event = dataset.read_event(first)?;
    Ok((dataset, first, event))
}

fn finish_open(
    mut commands: Commands,
    mut nav: ResMut<Navigation>,
    mut display: ResMut<Display>,
    by_dataset: Option<ResMut<GeometryByDataset>>,
) {
    let Some((path, task)) = nav.opening.as_mut() else {
        return;
    };
    let Some(result) = check_ready(task) else {
        return;
    };
    let path = path.clone();
    nav.opening = None;
    match result {
        Ok((dataset, id, event)) => {
            if let (Some(file), Some(mut by_dataset)) = (nav.open_geometry.take(), by_dataset) {
                by_dataset.0.insert(dataset.name().to_owned(), vec![file]);
            }
            commands.insert_resource(OpenDataset(dataset));
            display.set_event(id, event);
            nav.open_dialog = false;
            nav.local_datasets = None;
        }
        Err(e) => display.message = Some(format!("cannot open {}: {e}", path.display())),
    }
}

/// N/P next and previous event, Space play/pause, 1/2/3 views, F12 screenshot, Ctrl+O open.
#[allow(clippy::too_many_arguments)]
fn keyboard(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    mut contexts: EguiContexts,
    mut commands: Commands,
    mut display: ResMut<Display>,
    mut orbit: ResMut<Orbit>,
    mut animation: ResMut<Animation>,
    mut nav: ResMut<Navigation>,
    dataset: Option<Res<OpenDataset>>,
    mut show: MessageWriter<ShowEvent>,
) {
    let Some(keys) = keys else { return };
    // Typing into a text field is not a shortcut.
    if contexts
        .ctx_mut()
        .is_ok_and(|ctx| ctx.egui_wants_keyboard_input())
    {
        return;
    }
    if let Some((first, last)) = dataset.as_ref().and_then(|d| d.id_range()) {
        let id = display.event_id;
        if keys.just_pressed(KeyCode::KeyN) && id < last {
            show.write(ShowEvent(id + 1));
        }
        if keys.just_pressed(KeyCode::KeyP) && id > first {
            show.write(ShowEvent(id - 1));
        }
    }
    for (key, view) in [
        (KeyCode::Digit1, View::ThreeD),
        (KeyCode::Digit2, View::RPhi),
        (KeyCode::Digit3, View::RZ),
    ] {
        if keys.just_pressed(key) {
            *orbit = Orbit {
                orthographic: orbit.orthographic,
                ..Orbit::view(view)
            };
        }
    }
    if keys.just_pressed(KeyCode::Digit5) {
        orbit.orthographic = !orbit.orthographic;
    }
    if keys.just_pressed(KeyCode::Space) {
        toggle_play(&mut animation);
    }
    if keys.just_pressed(KeyCode::F12) {
        crate::display::visuals::save_window_screenshot(&mut commands, &mut display);
    }
    if keys.just_pressed(KeyCode::KeyO)
        && keys.any_pressed([KeyCode::ControlLeft, KeyCode::ControlRight])
    {
        nav.open_dialog = true;
    }
}

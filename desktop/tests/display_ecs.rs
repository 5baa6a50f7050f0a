//! The event display's logic in a headless Bevy app (`MinimalPlugins` + the plugin under test):
//! instances against the cuts, level of detail and hit budget, picking, navigation, settings.

use std::time::Duration;

use alyx_core::DetectorGeometry;
use alyx_core::model::{CollisionEvent, Detector};
use alyx_core::physics::FourMomentum;
use alyx_datasets as datasets;
use alyx_desktop::display::instancing::HitBatch;
use alyx_desktop::display::scene::{HitLod, Picked};
use alyx_desktop::display::{Display, EventDisplayPlugin, Orbit, PickRay, ViewOptions};
use alyx_desktop::settings::{Settings, SettingsPlugin};
use alyx_desktop::{OpenDataset, ShowEvent};
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};
use alyx_store::DataStore;
use bevy::prelude::*;

fn pp_event(index: u64) -> CollisionEvent {
    EventGenerator::new(GeneratorConfig::pp(7), DetectorGeometry::alice_barrel()).event(index)
}

fn app_with(event: CollisionEvent) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Display::new(0, event))
        .add_plugins(EventDisplayPlugin);
    app.update();
    app
}

fn instances(app: &mut App) -> Vec<HitBatch> {
    let world = app.world_mut();
    world.query::<&HitBatch>().iter(world).cloned().collect()
}

fn instance_count(app: &mut App) -> usize {
    instances(app).iter().map(|b| b.instances.len()).sum()
}

#[test]
fn one_instance_batch_holds_every_hit_that_passes_the_cuts() {
    let event = pp_event(1);
    let total = event.hits.len();
    assert!(total > 100, "a pp event has hits ({total})");
    let mut app = app_with(event.clone());
    let batches = instances(&mut app);
    assert_eq!(instance_count(&mut app), total);
    assert_eq!(batches.len(), 1, "one entity draws every hit");
    for b in &batches {
        assert!(b.times_ns.windows(2).all(|w| w[0] <= w[1]), "time ordered");
        assert_eq!(b.visible, b.instances.len(), "all drawn when not animating");
    }

    // A pT cut, applied without reloading: the hits of tracks below it go.
    app.world_mut()
        .resource_mut::<ViewOptions>()
        .cuts
        .pt_min_gev = 1.0;
    app.update();
    let expected = event
        .hits
        .iter()
        .filter(|h| {
            h.track.is_none_or(|t| {
                let m = event.tracks[t as usize].momentum;
                FourMomentum::from_p3_mass(m[0], m[1], m[2], 0.0).pt() >= 1.0
            })
        })
        .count();
    assert!(expected < total);
    assert_eq!(instance_count(&mut app), expected);

    // Hiding the TPC removes exactly its hits.
    app.world_mut().resource_mut::<ViewOptions>().cuts.detectors[1] = false;
    app.update();
    let tpc = event
        .hits
        .iter()
        .filter(|h| h.detector == Detector::Tpc)
        .filter(|h| {
            h.track.is_none_or(|t| {
                let m = event.tracks[t as usize].momentum;
                FourMomentum::from_p3_mass(m[0], m[1], m[2], 0.0).pt() >= 1.0
            })
        })
        .count();
    assert_eq!(instance_count(&mut app), expected - tpc);
    let tpc_radius = alyx_desktop::display::hit_radius_cm(Detector::Tpc);
    let its_radius = alyx_desktop::display::hit_radius_cm(Detector::Its);
    assert!(
        instances(&mut app)[0]
            .instances
            .iter()
            .any(|i| i.radius_cm == its_radius)
    );
    assert!(
        instances(&mut app)[0]
            .instances
            .iter()
            .all(|i| i.radius_cm != tpc_radius || i.position_cm[0].hypot(i.position_cm[1]) > 300.0),
        "no TPC hits left (other hits of that size sit outside the TPC)"
    );
}

#[test]
fn zooming_out_decimates_hits_and_coarsens_meshes_and_zooming_in_restores_them() {
    let event = EventGenerator::new(
        GeneratorConfig::pbpb(11, Centrality::Central),
        DetectorGeometry::alice_barrel(),
    )
    .event(0);
    let total = event.hits.len();
    assert!(total > 200_000, "central Pb–Pb: {total} hits");
    let mut app = app_with(event);

    app.world_mut().resource_mut::<Orbit>().distance = 150.0;
    app.update();
    assert_eq!(app.world().resource::<Display>().lod, HitLod::Icosphere);
    assert_eq!(instance_count(&mut app), total, "full detail up close");

    app.world_mut().resource_mut::<Orbit>().distance = 1300.0;
    app.update();
    assert_eq!(app.world().resource::<Display>().lod, HitLod::Point);
    let mid = instances(&mut app);
    let mid_count: usize = mid.iter().map(|b| b.instances.len()).sum();
    assert!(
        mid_count < total && mid_count >= 50_000,
        "{mid_count} of {total}"
    );

    app.world_mut().resource_mut::<Orbit>().distance = 8000.0;
    app.update();
    let far = instances(&mut app);
    let far_count: usize = far.iter().map(|b| b.instances.len()).sum();
    assert!(far_count < mid_count, "{far_count} < {mid_count}");
    // Deterministic and monotone: what is drawn far away is drawn closer too.
    for b in &far {
        let closer: std::collections::HashSet<[u32; 3]> = mid[0]
            .instances
            .iter()
            .map(|i| i.position_cm.map(f32::to_bits))
            .collect();
        assert!(
            b.instances
                .iter()
                .all(|i| closer.contains(&i.position_cm.map(f32::to_bits)))
        );
    }

    app.world_mut().resource_mut::<Orbit>().distance = 150.0;
    app.update();
    assert_eq!(
        instance_count(&mut app),
        total,
        "zooming in restores every hit"
    );
}

#[test]
fn a_ray_picks_the_hit_or_track_it_passes_through() {
    let mut app = app_with(pp_event(2));
    let scene = app.world().resource::<Display>().scene.clone();
    let hit = scene.hits[scene.hits.len() / 2];
    let [x, y, z] = hit.position_cm;
    // Along the beam axis, straight through the hit.
    app.world_mut().write_message(PickRay {
        origin: Vec3::new(x, y, z + 2000.0),
        direction: Vec3::NEG_Z,
        tolerance_cm: 0.3,
    });
    app.update();
    assert_eq!(
        app.world().resource::<Display>().picked,
        Some(Picked::Hit(hit.hit))
    );

    // Through the middle of a track's first segment (inside the beam pipe: no hits there).
    let track = &scene.tracks[0];
    let (a, b) = (
        Vec3::from(track.points_cm[0]),
        Vec3::from(track.points_cm[1]),
    );
    let mid = (a + b) / 2.0;
    let side = (b - a).any_orthogonal_vector().normalize();
    app.world_mut().write_message(PickRay {
        origin: mid + side * 500.0,
        direction: -side,
        tolerance_cm: 0.05,
    });
    app.update();
    assert_eq!(
        app.world().resource::<Display>().picked,
        Some(Picked::Track(track.track))
    );

    // Nothing there.
    app.world_mut().write_message(PickRay {
        origin: Vec3::new(5000.0, 5000.0, 5000.0),
        direction: Vec3::X,
        tolerance_cm: 1.0,
    });
    app.update();
    assert_eq!(app.world().resource::<Display>().picked, None);
}

#[test]
fn the_animation_shows_hits_in_time_order_then_the_whole_event() {
    let mut app = app_with(pp_event(3));
    let total = instance_count(&mut app);
    app.world_mut()
        .resource_mut::<alyx_desktop::display::Animation>()
        .t_ns = Some(0.3);
    app.update();
    let shown: usize = instances(&mut app).iter().map(|b| b.visible).sum();
    let expected: usize = instances(&mut app)
        .iter()
        .map(|b| b.times_ns.iter().filter(|t| **t <= 0.3).count())
        .sum();
    assert_eq!(shown, expected);
    assert!(shown > 0 && shown < total, "{shown} of {total} by 0.3 ns");
    app.world_mut()
        .resource_mut::<alyx_desktop::display::Animation>()
        .t_ns = None;
    app.update();
    let shown: usize = instances(&mut app).iter().map(|b| b.visible).sum();
    assert_eq!(shown, total);
}

#[test]
fn show_event_reads_the_event_from_the_open_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::open(dir.path()).expect("store");
    let dataset =
        datasets::generate(&store, "pp", GeneratorConfig::pp(5), 6, &mut |_| {}).expect("generate");
    let expected = dataset.read_event(4).expect("event 4");
    let first = dataset.read_event(0).expect("event 0");
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Display::new(0, first))
        .insert_resource(OpenDataset(dataset))
        .add_plugins(EventDisplayPlugin);
    app.update();
    app.world_mut().write_message(ShowEvent(4));
    for _ in 0..500 {
        app.update();
        if app.world().resource::<Display>().event_id == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let display = app.world().resource::<Display>();
    assert_eq!(display.event_id, 4);
    assert_eq!(display.event.header, expected.header);
    assert_eq!(display.event.hits.len(), expected.hits.len());

    // An event that does not exist leaves the display as it was, with a message.
    app.world_mut().write_message(ShowEvent(99));
    for _ in 0..500 {
        app.update();
        if app.world().resource::<Display>().message.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let display = app.world().resource::<Display>();
    assert_eq!(display.event_id, 4);
    assert!(display.message.is_some());
}

fn settings_app(path: &std::path::Path) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Display::new(0, pp_event(0)))
        .add_plugins(EventDisplayPlugin)
        .add_plugins(SettingsPlugin {
            path: path.to_path_buf(),
            debounce: Duration::ZERO,
        });
    app.update();
    app
}

#[test]
fn settings_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("alyx/settings.toml");
    let mut app = settings_app(&path);
    assert_eq!(
        *app.world().resource::<ViewOptions>(),
        ViewOptions::default()
    );
    {
        let mut options = app.world_mut().resource_mut::<ViewOptions>();
        options.cuts.pt_min_gev = 1.5;
        options.cuts.eta_max = 0.9;
        options.cuts.detectors[2] = false;
        options
            .cuts
            .hidden_collections
            .insert("InDetTrackParticles".into());
        options.style.hits = alyx_desktop::display::scene::HitColouring::Energy;
        options.cut_away = true;
        options.geometry = [true, false, true];
    }
    app.world_mut().resource_mut::<Orbit>().distance = 420.0;
    app.update();
    let written = Settings::load(&path).expect("readable").expect("written");
    assert_eq!(written.view.cuts.pt_min_gev, 1.5);
    assert_eq!(written.camera.distance, 420.0);

    let saved_view = app.world().resource::<ViewOptions>().clone();
    let restarted = settings_app(&path);
    assert_eq!(*restarted.world().resource::<ViewOptions>(), saved_view);
    assert_eq!(restarted.world().resource::<Orbit>().distance, 420.0);

    // The defaults (|η| unbounded) round-trip too.
    Settings::default().save(&path).expect("save");
    assert_eq!(
        Settings::load(&path).expect("load").expect("some"),
        Settings::default()
    );
}

#[test]
fn an_unreadable_settings_file_is_set_aside_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, "view = [[[ not toml").expect("write");
    let app = settings_app(&path);
    assert_eq!(
        *app.world().resource::<ViewOptions>(),
        ViewOptions::default()
    );
    let aside = std::fs::read_to_string(dir.path().join("settings.toml.invalid")).expect("kept");
    assert!(aside.contains("not toml"));
}

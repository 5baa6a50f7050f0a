//! Scene build time (event → hit instances and track lines) for 10k to 1M hits, printed.
//! Run: `cargo run -p alyx-desktop --bin scene-bench`.

use std::time::Instant;

use alyx_desktop::scene::{Cuts, Style, build_scene};
use alyx_shared::generator::{Centrality, EventGenerator, GeneratorConfig};
use alyx_shared::{CollisionEvent, DetectorGeometry};

/// `first` with the tracks and hits of `rest` added (track indices shifted).
fn merge(mut first: CollisionEvent, rest: Vec<CollisionEvent>) -> CollisionEvent {
    for e in rest {
        let offset = first.tracks.len() as u32;
        first.tracks.extend(e.tracks);
        first.hits.extend(e.hits.into_iter().map(|mut h| {
            h.track = h.track.map(|t| t + offset);
            h
        }));
    }
    first
}

fn main() {
    let geometry = DetectorGeometry::alice_barrel();
    let central = EventGenerator::new(
        GeneratorConfig::pbpb(3, Centrality::Central),
        geometry.clone(),
    );
    let peripheral = EventGenerator::new(
        GeneratorConfig::pbpb(3, Centrality::Peripheral),
        geometry.clone(),
    );
    println!(
        "scene-bench on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for target in [10_000usize, 100_000, 500_000, 1_000_000] {
        let first = peripheral.event(0);
        let mut hits = first.hits.len();
        let mut events = Vec::new();
        let mut i = 1;
        while hits < target {
            let e = if target - hits > 200_000 {
                central.event(i)
            } else {
                peripheral.event(i)
            };
            hits += e.hits.len();
            events.push(e);
            i += 1;
        }
        let mut event = merge(first, events);
        event.hits.truncate(target);
        let runs = 5;
        let start = Instant::now();
        let mut scene = None;
        for _ in 0..runs {
            scene = Some(build_scene(
                &event,
                &geometry,
                &Cuts::default(),
                &Style::default(),
                usize::MAX,
            ));
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        let scene = scene.unwrap_or_default();
        let cut = Cuts {
            pt_min_gev: 1.0,
            ..Cuts::default()
        };
        let start = Instant::now();
        let after_cut = build_scene(&event, &geometry, &cut, &Style::default(), 200_000);
        let cut_ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "scene build {:>8} hits {:>6} tracks: {ms:>7.1} ms ({} instances, {} track lines); with pT > 1 GeV and a 200k budget: {cut_ms:.1} ms ({} instances)",
            event.hits.len(),
            event.tracks.len(),
            scene.hits.len(),
            scene.tracks.len(),
            after_cut.hits.len()
        );
    }
}

//! Scene build time (event → hit instances and track lines) for 10k to 1M hits, printed.
//! Run: `cargo run -p alyx-desktop --bin scene-bench`.

use std::time::Instant;

use alyx_core::DetectorGeometry;
use alyx_desktop::display::scene::{Cuts, Style, build_scene};
use alyx_desktop::synthetic::event_with_hits;

fn main() {
    let geometry = DetectorGeometry::alice_barrel();
    println!(
        "scene-bench on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for target in [10_000usize, 100_000, 500_000, 1_000_000] {
        let event = event_with_hits(target, &geometry);
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

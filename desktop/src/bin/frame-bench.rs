//! Frame time of the event display for events of 10k to 1M hits, rendered offscreen at
//! 1280×800 in the default 3D view, printed: the time from a new event to its first complete
//! frame, and the mean time per frame after it. On a machine without a GPU this measures
//! Mesa's software renderer (lavapipe: `WGPU_BACKEND=vulkan`).
//!
//! Usage: `frame-bench [--no-geometry] [HITS...]` (default 10000 100000 500000 1000000);
//! `--no-geometry` hides the detector shells and outlines, to see what the hits cost alone.

use std::time::{Duration, Instant};

use alyx_core::DetectorGeometry;
use alyx_desktop::app::{self, Launch, Output};
use alyx_desktop::display::visuals::PipelineStatus;
use alyx_desktop::display::{Display, View, ViewOptions};
use alyx_desktop::synthetic::event_with_hits;
use bevy::prelude::*;

fn main() {
    let no_geometry = std::env::args().any(|a| a == "--no-geometry");
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 500_000, 1_000_000]
    } else {
        sizes
    };
    let geometry = DetectorGeometry::alice_barrel();
    let warmup = event_with_hits(1_000, &geometry);
    let mut app = app::build(Launch {
        output: Output::Offscreen,
        size: (1280, 800),
        view: Some(View::ThreeD),
        settings: None,
        store: None,
        dataset: None,
        event_id: 0,
        event: warmup,
        backend: None,
    });
    if no_geometry {
        app.world_mut().resource_mut::<ViewOptions>().geometry = [false; 3];
    }
    app.finish();
    app.cleanup();
    // Compile every pipeline first: that happens once per run, not per event.
    let start = Instant::now();
    let mut ready = 0;
    while ready < 10 && start.elapsed() < Duration::from_secs(300) {
        app.update();
        let status = app.world().resource::<PipelineStatus>().clone();
        ready = if status.ready() { ready + 1 } else { 0 };
    }
    println!(
        "frame-bench: 1280x800, 3D view{}, pipelines ready after {:.1} s",
        if no_geometry { ", no geometry" } else { "" },
        start.elapsed().as_secs_f64()
    );
    for hits in sizes {
        let event = event_with_hits(hits, &geometry);
        let tracks = event.tracks.len();
        let start = Instant::now();
        app.world_mut()
            .resource_mut::<Display>()
            .set_event(0, event);
        // The scene is built in the first update and drawn (pipelined) by the second.
        app.update();
        app.update();
        let first = start.elapsed();
        let frames = 10;
        let start = Instant::now();
        for _ in 0..frames {
            app.update();
        }
        let per_frame = start.elapsed() / frames;
        let display = app.world().resource::<Display>();
        println!(
            "{hits:>8} hits {tracks:>6} tracks: first frame {:>7.1} ms, then {:>7.1} ms/frame ({:.1} fps), {} hits drawn as {:?}",
            first.as_secs_f64() * 1e3,
            per_frame.as_secs_f64() * 1e3,
            1.0 / per_frame.as_secs_f64(),
            display.scene.hits.len(),
            display.lod,
        );
    }
}

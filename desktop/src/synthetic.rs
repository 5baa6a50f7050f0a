//! Events of a chosen size for the benchmarks: generated Pb–Pb collisions merged into one
//! event until it holds the wanted number of hits.

use alyx_core::CollisionEvent;
use alyx_core::DetectorGeometry;
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};

/// `first` with the tracks and hits of `rest` added (track indices shifted).
pub fn merge(mut first: CollisionEvent, rest: Vec<CollisionEvent>) -> CollisionEvent {
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

/// One event with exactly `hits` hits (central and peripheral Pb–Pb events merged, then cut).
pub fn event_with_hits(hits: usize, geometry: &DetectorGeometry) -> CollisionEvent {
    let central = EventGenerator::new(
        GeneratorConfig::pbpb(3, Centrality::Central),
        geometry.clone(),
    );
    let peripheral = EventGenerator::new(
        GeneratorConfig::pbpb(3, Centrality::Peripheral),
        geometry.clone(),
    );
    let first = peripheral.event(0);
    let mut n = first.hits.len();
    let mut events = Vec::new();
    let mut i = 1;
    while n < hits {
        let e = if hits - n > 200_000 {
            central.event(i)
        } else {
            peripheral.event(i)
        };
        n += e.hits.len();
        events.push(e);
        i += 1;
    }
    let mut event = merge(first, events);
    event.hits.truncate(hits);
    event
}

//! What a catalogue knows of an event and a dataset without reading payloads: the rows alyxd
//! keeps in PostgreSQL and sends over gRPC, and that the desktop lists.

use crate::model::{CollisionEvent, CollisionSystem};

/// One event's catalogue row.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSummary {
    pub dataset: String,
    /// The event's id in its dataset's store.
    pub event_id: u64,
    pub run: u32,
    pub event_number: u64,
    pub timestamp_ns: i64,
    pub system: CollisionSystem,
    pub sqrt_s_gev: f64,
    pub vertex_cm: [f64; 3],
    pub n_tracks: u32,
    pub n_hits: u32,
    pub n_muons: u32,
    pub n_electrons: u32,
    pub n_jets: u32,
    pub trigger_bits: u64,
    /// The store chunk holding the payload.
    pub chunk: u32,
    /// Validation rules the event broke ("" when none).
    pub flags: String,
}

impl EventSummary {
    pub fn of(
        dataset: &str,
        event_id: u64,
        chunk: u32,
        event: &CollisionEvent,
        flags: String,
    ) -> Self {
        let h = &event.header;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            dataset: dataset.to_owned(),
            event_id,
            run: h.run,
            event_number: h.event_number,
            timestamp_ns: h.timestamp_ns,
            system: h.system,
            sqrt_s_gev: h.sqrt_s_gev,
            vertex_cm: h.vertex_cm,
            n_tracks: count(event.tracks.len()),
            n_hits: count(event.hits.len()),
            n_muons: count(event.muons.len()),
            n_electrons: count(event.electrons.len()),
            n_jets: count(event.jets.len()),
            trigger_bits: h.trigger_bits,
            chunk,
            flags,
        }
    }
}

/// A dataset as a catalogue lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    pub source: String,
    pub event_count: u64,
    pub chunk_count: u32,
    pub bytes: u64,
    pub run_range: Option<(u32, u32)>,
    pub time_range_ns: Option<(i64, i64)>,
}

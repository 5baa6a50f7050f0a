//! Turning Kafka messages into events: protobuf decoding, conversion to the model and the
//! physics validation rules. A message that fails any step becomes a dead letter with the
//! reason; nothing is dropped.

use alyx_core::CollisionEvent;
use alyx_proto::v1;
use prost::Message as _;
use rayon::prelude::*;

/// A decoded batch of consecutive messages of one partition.
pub(super) struct Batch {
    /// The offset after the batch's last message.
    pub next_offset: i64,
    pub events: Vec<Decoded>,
    pub dead: Vec<DeadLetter>,
}

/// A message as read from the broker.
#[derive(Clone, Debug)]
pub struct RawMessage {
    pub offset: i64,
    /// The message's timestamp (producer create time), ms since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
    pub payload: Vec<u8>,
}

/// A message that decoded into a valid event.
#[derive(Debug)]
pub struct Decoded {
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub event: CollisionEvent,
}

/// A message that could not be stored, kept with why.
#[derive(Debug)]
pub struct DeadLetter {
    pub offset: i64,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// Decodes and validates one message.
pub fn decode(payload: &[u8]) -> Result<CollisionEvent, String> {
    if payload.is_empty() {
        return Err("empty message".into());
    }
    let message = v1::CollisionEvent::decode(payload)
        .map_err(|e| format!("not an alyx.v1.CollisionEvent: {e}"))?;
    let event = CollisionEvent::try_from(message).map_err(|e| e.to_string())?;
    fits_catalogue(&event)?;
    let violations = alyx_core::validate::validate(&event);
    if !violations.is_empty() {
        return Err(format!(
            "invalid event (run {}, event {}): {}",
            event.header.run,
            event.header.event_number,
            alyx_core::validate::flags(&violations)
        ));
    }
    Ok(event)
}

/// Checks that the event's header fits the catalogue's columns (`run integer`, `event_number
/// bigint`): one that does not would fail its whole batch's transaction, again and again.
fn fits_catalogue(event: &CollisionEvent) -> Result<(), String> {
    let h = &event.header;
    if i32::try_from(h.run).is_err() {
        return Err(format!(
            "run {} is beyond the catalogue's range (at most {})",
            h.run,
            i32::MAX
        ));
    }
    if i64::try_from(h.event_number).is_err() {
        return Err(format!(
            "event number {} is beyond the catalogue's range (at most {})",
            h.event_number,
            i64::MAX
        ));
    }
    Ok(())
}

/// The producer's timestamp if it is a plausible time for a message (2000-01-01 to a year from
/// now): clocks go wrong, and a broker passes any number on.
fn plausible(timestamp_ms: Option<i64>) -> Option<i64> {
    const Y2000_MS: i64 = 946_684_800_000;
    const YEAR_MS: i64 = 366 * 86_400_000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    timestamp_ms.filter(|t| (Y2000_MS..=now_ms.saturating_add(YEAR_MS)).contains(t))
}

/// Decodes a batch on all cores, keeping message order.
pub fn decode_batch(messages: Vec<RawMessage>) -> (Vec<Decoded>, Vec<DeadLetter>) {
    let results: Vec<_> = messages
        .into_par_iter()
        .map(|m| match decode(&m.payload) {
            Ok(event) => Ok(Decoded {
                offset: m.offset,
                timestamp_ms: plausible(m.timestamp_ms),
                event,
            }),
            Err(reason) => Err(DeadLetter {
                offset: m.offset,
                reason,
                payload: m.payload,
            }),
        })
        .collect();
    let mut good = Vec::with_capacity(results.len());
    let mut dead = Vec::new();
    for r in results {
        match r {
            Ok(d) => good.push(d),
            Err(d) => dead.push(d),
        }
    }
    (good, dead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_sim::generator::{EventGenerator, GeneratorConfig};

    fn encoded(n: u64) -> Vec<Vec<u8>> {
        let g = EventGenerator::new(
            GeneratorConfig::pp(9),
            alyx_core::DetectorGeometry::alice_barrel(),
        );
        (0..n)
            .map(|i| v1::CollisionEvent::from(&g.event(i)).encode_to_vec())
            .collect()
    }

    #[test]
    fn garbage_truncated_and_invalid_messages_become_dead_letters_in_order() {
        let good = encoded(3);
        let truncated = good[1][..good[1].len() / 2].to_vec();
        let mut bad_physics = v1::CollisionEvent::decode(good[2].as_slice()).expect("decodes");
        bad_physics.tracks[0].px_gev = f64::INFINITY;
        let payloads = vec![
            good[0].clone(),
            b"\xff\xfe garbage".to_vec(),
            truncated,
            Vec::new(),
            bad_physics.encode_to_vec(),
            good[2].clone(),
        ];
        let messages = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| RawMessage {
                offset: i as i64,
                timestamp_ms: None,
                payload,
            })
            .collect();
        let (ok, dead) = decode_batch(messages);
        assert_eq!(ok.iter().map(|d| d.offset).collect::<Vec<_>>(), [0, 5]);
        assert_eq!(
            dead.iter().map(|d| d.offset).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(
            dead[0].reason.contains("not an alyx.v1.CollisionEvent"),
            "{}",
            dead[0].reason
        );
        assert!(dead[2].reason.contains("empty"), "{}", dead[2].reason);
        assert!(
            dead[3].reason.contains("invalid event"),
            "{}",
            dead[3].reason
        );
        assert_eq!(dead[0].payload, b"\xff\xfe garbage", "raw bytes are kept");
    }

    #[test]
    fn headers_beyond_the_catalogue_are_dead_letters_and_wild_clocks_are_ignored() {
        let good = encoded(1);
        let mut big_run = v1::CollisionEvent::decode(good[0].as_slice()).expect("decodes");
        big_run.header.as_mut().expect("header").run = 3_000_000_000;
        let mut big_number = v1::CollisionEvent::decode(good[0].as_slice()).expect("decodes");
        big_number.header.as_mut().expect("header").event_number = u64::MAX;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let messages = [
            (big_run.encode_to_vec(), Some(now_ms)),
            (big_number.encode_to_vec(), Some(now_ms)),
            (good[0].clone(), Some(i64::MAX)),
            (good[0].clone(), Some(-5)),
            (good[0].clone(), Some(now_ms)),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (payload, timestamp_ms))| RawMessage {
            offset: i as i64,
            timestamp_ms,
            payload,
        })
        .collect();
        let (ok, dead) = decode_batch(messages);
        assert_eq!(dead.iter().map(|d| d.offset).collect::<Vec<_>>(), [0, 1]);
        assert!(
            dead[0].reason.contains("run 3000000000"),
            "{}",
            dead[0].reason
        );
        assert!(
            dead[1].reason.contains("event number"),
            "{}",
            dead[1].reason
        );
        let stamps: Vec<Option<i64>> = ok.iter().map(|d| d.timestamp_ms).collect();
        assert_eq!(stamps, [None, None, Some(now_ms)]);
    }
}

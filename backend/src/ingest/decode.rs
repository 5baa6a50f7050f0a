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

/// Decodes a batch on all cores, keeping message order.
pub fn decode_batch(messages: Vec<RawMessage>) -> (Vec<Decoded>, Vec<DeadLetter>) {
    let results: Vec<_> = messages
        .into_par_iter()
        .map(|m| match decode(&m.payload) {
            Ok(event) => Ok(Decoded {
                offset: m.offset,
                timestamp_ms: m.timestamp_ms,
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
}

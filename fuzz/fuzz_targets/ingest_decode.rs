//! What ingest does with a message from the broker: protobuf decoding, conversion to the model,
//! the validation rules. A bad message is an error (a dead letter), never a panic.
#![no_main]

use alyx_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = v1::CollisionEvent::decode(data) else {
        return;
    };
    if let Ok(event) = alyx_core::CollisionEvent::try_from(message) {
        let _ = alyx_core::validate::validate(&event);
        // What the live stream and the desktop do with it next.
        let _ = v1::CollisionEvent::from(&event).encode_to_vec();
    }
});

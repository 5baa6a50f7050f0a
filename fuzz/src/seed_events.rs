//! Writes pp and Pb–Pb events from the generators as `alyx.v1.CollisionEvent` protobufs, one
//! file each, into the directory named by the first argument: the seeds of `ingest_decode`.

use alyx_core::DetectorGeometry;
use alyx_proto::v1;
use alyx_sim::generator::{Centrality, EventGenerator, GeneratorConfig};
use prost::Message as _;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/ingest_decode".into());
    std::fs::create_dir_all(&dir)?;
    for (name, config) in [
        ("pp", GeneratorConfig::pp(1)),
        ("pbpb", GeneratorConfig::pbpb(1, Centrality::Peripheral)),
    ] {
        let g = EventGenerator::new(config, DetectorGeometry::alice_barrel());
        for i in 0..4 {
            let bytes = v1::CollisionEvent::from(&g.event(i)).encode_to_vec();
            std::fs::write(format!("{dir}/{name}-{i}.pb"), bytes)?;
        }
    }
    Ok(())
}

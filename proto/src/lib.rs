//! `alyx-proto`: the generated protobuf types of package `alyx.v1` and their conversions to and
//! from the domain model in `alyx-core`. Nothing else in ALYX names generated types: code
//! converts at the edge with `From` / `TryFrom` and works with the model.

pub mod analysis;

use alyx_core::helix::HelixParams;
use alyx_core::model as m;
use alyx_core::physics::FourMomentum;

/// Generated code for `alyx.v1`.
#[allow(clippy::all, clippy::unwrap_used)]
pub mod v1 {
    tonic::include_proto!("alyx.v1");

    /// The encoded descriptors of `alyx.v1`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("alyx_v1_descriptor");
}

/// Generated client of Spark Connect (package `spark.connect`, from pyspark 4.3.0's descriptors).
#[allow(clippy::all, clippy::unwrap_used, clippy::doc_lazy_continuation)]
pub mod spark {
    tonic::include_proto!("spark.connect");
}

/// A message that does not describe a valid event, query, histogram or job.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    /// A required sub-message is absent.
    #[error("malformed event message: `{0}` is missing")]
    Missing(&'static str),
    /// A repeated field has the wrong shape.
    #[error("malformed event message: {0}")]
    Shape(String),
    /// A query, histogram or job field holds what it cannot (an unknown target, a histogram
    /// whose arrays do not fit its binning).
    #[error("{0}")]
    Invalid(String),
}

fn system_to(s: m::CollisionSystem) -> v1::CollisionSystem {
    match s {
        m::CollisionSystem::Pp => v1::CollisionSystem::Pp,
        m::CollisionSystem::PbPb => v1::CollisionSystem::Pbpb,
        m::CollisionSystem::Unknown => v1::CollisionSystem::Unspecified,
    }
}

fn system_from(s: i32) -> m::CollisionSystem {
    match v1::CollisionSystem::try_from(s) {
        Ok(v1::CollisionSystem::Pp) => m::CollisionSystem::Pp,
        Ok(v1::CollisionSystem::Pbpb) => m::CollisionSystem::PbPb,
        _ => m::CollisionSystem::Unknown,
    }
}

fn detector_to(d: m::Detector) -> v1::Detector {
    match d {
        m::Detector::Its => v1::Detector::Its,
        m::Detector::Tpc => v1::Detector::Tpc,
        m::Detector::Tof => v1::Detector::Tof,
        m::Detector::Other => v1::Detector::Unspecified,
    }
}

fn detector_from(d: i32) -> m::Detector {
    match v1::Detector::try_from(d) {
        Ok(v1::Detector::Its) => m::Detector::Its,
        Ok(v1::Detector::Tpc) => m::Detector::Tpc,
        Ok(v1::Detector::Tof) => m::Detector::Tof,
        _ => m::Detector::Other,
    }
}

fn object_to(o: &m::PhysicsObject) -> v1::PhysicsObject {
    v1::PhysicsObject {
        pt_gev: o.pt_gev,
        eta: o.eta,
        phi: o.phi,
        mass_gev: o.mass_gev,
        px_gev: o.px_gev,
        py_gev: o.py_gev,
        pz_gev: o.pz_gev,
        e_gev: o.e_gev,
        charge: o.charge,
        isolation: o.isolation,
        btag: o.btag,
        cone_r: o.cone_r,
        track: o.track,
        collection: o.collection.clone(),
    }
}

fn object_from(o: v1::PhysicsObject) -> m::PhysicsObject {
    m::PhysicsObject {
        pt_gev: o.pt_gev,
        eta: o.eta,
        phi: o.phi,
        mass_gev: o.mass_gev,
        px_gev: o.px_gev,
        py_gev: o.py_gev,
        pz_gev: o.pz_gev,
        e_gev: o.e_gev,
        charge: o.charge,
        isolation: o.isolation,
        btag: o.btag,
        cone_r: o.cone_r,
        track: o.track,
        collection: o.collection,
    }
}

impl From<&m::CollisionEvent> for v1::CollisionEvent {
    fn from(e: &m::CollisionEvent) -> Self {
        let h = &e.header;
        v1::CollisionEvent {
            header: Some(v1::EventHeader {
                run: h.run,
                event_number: h.event_number,
                timestamp_ns: h.timestamp_ns,
                system: system_to(h.system).into(),
                sqrt_s_gev: h.sqrt_s_gev,
                vertex_x_cm: h.vertex_cm[0],
                vertex_y_cm: h.vertex_cm[1],
                vertex_z_cm: h.vertex_cm[2],
                trigger_bits: h.trigger_bits,
                weight: h.weight,
                hit_collections: h.hit_collections.clone(),
            }),
            tracks: e
                .tracks
                .iter()
                .map(|t| v1::Track {
                    charge: t.charge,
                    px_gev: t.momentum[0],
                    py_gev: t.momentum[1],
                    pz_gev: t.momentum[2],
                    origin_x_cm: t.origin_cm[0],
                    origin_y_cm: t.origin_cm[1],
                    origin_z_cm: t.origin_cm[2],
                    helix: Some(v1::HelixParams {
                        d0_cm: t.helix.d0_cm,
                        z0_cm: t.helix.z0_cm,
                        phi0: t.helix.phi0,
                        tan_lambda: t.helix.tan_lambda,
                        q_over_pt: t.helix.q_over_pt,
                    }),
                    pid: t.pid,
                    chi2_ndf: t.chi2_ndf,
                    n_hits: t.n_hits,
                    polyline_cm: t.polyline_cm.iter().flatten().copied().collect(),
                    collection: t.collection.clone(),
                })
                .collect(),
            hits: e
                .hits
                .iter()
                .map(|h| v1::Hit {
                    detector: detector_to(h.detector).into(),
                    layer: h.layer,
                    x_cm: h.position_cm[0],
                    y_cm: h.position_cm[1],
                    z_cm: h.position_cm[2],
                    time_ns: h.time_ns,
                    edep_kev: h.edep_kev,
                    track: h.track,
                })
                .collect(),
            muons: e.muons.iter().map(object_to).collect(),
            electrons: e.electrons.iter().map(object_to).collect(),
            photons: e.photons.iter().map(object_to).collect(),
            jets: e.jets.iter().map(object_to).collect(),
            clusters: e
                .clusters
                .iter()
                .map(|c| v1::CaloCluster {
                    energy_gev: c.energy_gev,
                    eta: c.eta,
                    phi: c.phi,
                    collection: c.collection.clone(),
                    x_cm: c.position_cm[0].is_finite().then_some(c.position_cm[0]),
                    y_cm: c.position_cm[1].is_finite().then_some(c.position_cm[1]),
                    z_cm: c.position_cm[2].is_finite().then_some(c.position_cm[2]),
                })
                .collect(),
            vertices: e
                .vertices
                .iter()
                .map(|v| v1::Vertex {
                    x_cm: v.position_cm[0],
                    y_cm: v.position_cm[1],
                    z_cm: v.position_cm[2],
                    n_tracks: v.n_tracks,
                    collection: v.collection.clone(),
                })
                .collect(),
            met: e.met.map(|x| v1::MissingEnergy {
                px_gev: x.px_gev,
                py_gev: x.py_gev,
                pt_gev: x.pt_gev,
                phi: x.phi,
            }),
            truth: e
                .truth
                .iter()
                .map(|p| v1::TruthParticle {
                    pdg: p.pdg,
                    px_gev: p.p4.px,
                    py_gev: p.p4.py,
                    pz_gev: p.p4.pz,
                    e_gev: p.p4.e,
                    vertex_x_cm: p.vertex_cm[0],
                    vertex_y_cm: p.vertex_cm[1],
                    vertex_z_cm: p.vertex_cm[2],
                    mother: p.mother,
                    track: p.track,
                })
                .collect(),
        }
    }
}

impl TryFrom<v1::CollisionEvent> for m::CollisionEvent {
    type Error = ConversionError;

    fn try_from(e: v1::CollisionEvent) -> Result<Self, ConversionError> {
        let h = e.header.ok_or(ConversionError::Missing("header"))?;
        let mut out = m::CollisionEvent::new(m::EventHeader {
            run: h.run,
            event_number: h.event_number,
            timestamp_ns: h.timestamp_ns,
            system: system_from(h.system),
            sqrt_s_gev: h.sqrt_s_gev,
            vertex_cm: [h.vertex_x_cm, h.vertex_y_cm, h.vertex_z_cm],
            trigger_bits: h.trigger_bits,
            weight: h.weight,
            hit_collections: h.hit_collections,
        });
        for (i, t) in e.tracks.into_iter().enumerate() {
            if t.polyline_cm.len() % 3 != 0 {
                return Err(ConversionError::Shape(format!(
                    "track {i}: polyline has {} floats, not x,y,z triplets",
                    t.polyline_cm.len()
                )));
            }
            let helix = t.helix.ok_or(ConversionError::Missing("track.helix"))?;
            out.tracks.push(m::ParticleTrack {
                charge: t.charge,
                momentum: [t.px_gev, t.py_gev, t.pz_gev],
                origin_cm: [t.origin_x_cm, t.origin_y_cm, t.origin_z_cm],
                helix: HelixParams {
                    d0_cm: helix.d0_cm,
                    z0_cm: helix.z0_cm,
                    phi0: helix.phi0,
                    tan_lambda: helix.tan_lambda,
                    q_over_pt: helix.q_over_pt,
                },
                pid: t.pid,
                chi2_ndf: t.chi2_ndf,
                n_hits: t.n_hits,
                polyline_cm: t
                    .polyline_cm
                    .chunks_exact(3)
                    .map(|c| [c[0], c[1], c[2]])
                    .collect(),
                collection: t.collection,
            });
        }
        out.hits = e
            .hits
            .into_iter()
            .map(|h| m::DetectorHit {
                detector: detector_from(h.detector),
                layer: h.layer,
                position_cm: [h.x_cm, h.y_cm, h.z_cm],
                time_ns: h.time_ns,
                edep_kev: h.edep_kev,
                track: h.track,
            })
            .collect();
        out.muons = e.muons.into_iter().map(object_from).collect();
        out.electrons = e.electrons.into_iter().map(object_from).collect();
        out.photons = e.photons.into_iter().map(object_from).collect();
        out.jets = e.jets.into_iter().map(object_from).collect();
        out.clusters = e
            .clusters
            .into_iter()
            .map(|c| m::CaloCluster {
                energy_gev: c.energy_gev,
                eta: c.eta,
                phi: c.phi,
                position_cm: [c.x_cm, c.y_cm, c.z_cm].map(|v| v.unwrap_or(f64::NAN)),
                collection: c.collection,
            })
            .collect();
        out.vertices = e
            .vertices
            .into_iter()
            .map(|v| m::Vertex {
                position_cm: [v.x_cm, v.y_cm, v.z_cm],
                n_tracks: v.n_tracks,
                collection: v.collection,
            })
            .collect();
        out.met = e.met.map(|x| m::MissingEnergy {
            px_gev: x.px_gev,
            py_gev: x.py_gev,
            pt_gev: x.pt_gev,
            phi: x.phi,
        });
        out.truth = e
            .truth
            .into_iter()
            .map(|p| m::TruthParticle {
                pdg: p.pdg,
                p4: FourMomentum::new(p.px_gev, p.py_gev, p.pz_gev, p.e_gev),
                vertex_cm: [p.vertex_x_cm, p.vertex_y_cm, p.vertex_z_cm],
                mother: p.mother,
                track: p.track,
            })
            .collect();
        Ok(out)
    }
}

impl From<&alyx_core::summary::EventSummary> for v1::EventSummary {
    fn from(s: &alyx_core::summary::EventSummary) -> Self {
        Self {
            dataset: s.dataset.clone(),
            event_id: s.event_id,
            run: s.run,
            event_number: s.event_number,
            timestamp_ns: s.timestamp_ns,
            system: system_to(s.system).into(),
            sqrt_s_gev: s.sqrt_s_gev,
            vertex_x_cm: s.vertex_cm[0],
            vertex_y_cm: s.vertex_cm[1],
            vertex_z_cm: s.vertex_cm[2],
            n_tracks: s.n_tracks,
            n_hits: s.n_hits,
            n_muons: s.n_muons,
            n_electrons: s.n_electrons,
            n_jets: s.n_jets,
            trigger_bits: s.trigger_bits,
            chunk: s.chunk,
            flags: s.flags.clone(),
        }
    }
}

impl From<v1::EventSummary> for alyx_core::summary::EventSummary {
    fn from(s: v1::EventSummary) -> Self {
        Self {
            system: system_from(s.system),
            dataset: s.dataset,
            event_id: s.event_id,
            run: s.run,
            event_number: s.event_number,
            timestamp_ns: s.timestamp_ns,
            sqrt_s_gev: s.sqrt_s_gev,
            vertex_cm: [s.vertex_x_cm, s.vertex_y_cm, s.vertex_z_cm],
            n_tracks: s.n_tracks,
            n_hits: s.n_hits,
            n_muons: s.n_muons,
            n_electrons: s.n_electrons,
            n_jets: s.n_jets,
            trigger_bits: s.trigger_bits,
            chunk: s.chunk,
            flags: s.flags,
        }
    }
}

impl From<&alyx_core::summary::DatasetInfo> for v1::DatasetInfo {
    fn from(d: &alyx_core::summary::DatasetInfo) -> Self {
        let (run_min, run_max) = d.run_range.unwrap_or_default();
        let (time_min_ns, time_max_ns) = d.time_range_ns.unwrap_or_default();
        Self {
            name: d.name.clone(),
            source: d.source.clone(),
            event_count: d.event_count,
            chunk_count: d.chunk_count,
            bytes: d.bytes,
            run_min,
            run_max,
            time_min_ns,
            time_max_ns,
        }
    }
}

impl From<v1::DatasetInfo> for alyx_core::summary::DatasetInfo {
    fn from(d: v1::DatasetInfo) -> Self {
        let any = d.chunk_count > 0;
        Self {
            name: d.name,
            source: d.source,
            event_count: d.event_count,
            chunk_count: d.chunk_count,
            bytes: d.bytes,
            run_range: any.then_some((d.run_min, d.run_max)),
            time_range_ns: any.then_some((d.time_min_ns, d.time_max_ns)),
        }
    }
}

/// `message` with the `authorization: Bearer <token>` metadata that every ALYX RPC except
/// health and reflection needs. A token that is not valid metadata is left out (the server then
/// answers UNAUTHENTICATED).
pub fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use alyx_sim::generator::{EventGenerator, GeneratorConfig};
    use prost::Message;

    #[test]
    fn generated_event_survives_the_wire_unchanged() {
        let g = EventGenerator::new(
            GeneratorConfig::pp(3),
            alyx_core::DetectorGeometry::alice_barrel(),
        );
        for i in 0..20 {
            let event = g.event(i);
            let bytes = v1::CollisionEvent::from(&event).encode_to_vec();
            let decoded = v1::CollisionEvent::decode(bytes.as_slice()).expect("decodes");
            let back = m::CollisionEvent::try_from(decoded).expect("valid");
            assert!(
                back.same_as(&event),
                "round trip changed event {i}:\n{back:?}\n{event:?}"
            );
        }
    }

    #[test]
    fn message_without_header_is_refused_with_a_reason() {
        let err =
            m::CollisionEvent::try_from(v1::CollisionEvent::default()).expect_err("no header");
        assert!(err.to_string().contains("header"), "{err}");
        let bad = v1::CollisionEvent {
            header: Some(v1::EventHeader::default()),
            tracks: vec![v1::Track {
                helix: Some(v1::HelixParams::default()),
                polyline_cm: vec![1.0, 2.0],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(m::CollisionEvent::try_from(bad).is_err());
    }
}

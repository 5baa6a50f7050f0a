//! `alyx-sim`: event generators, deterministic per `(seed, event index)` and parallel with
//! rayon — `generator`, the ALICE-like barrel simulation (pp and Pb–Pb, propagated through
//! `alyx_core::geometry`), and `nano`, NanoAOD-like events (jets with b-tags, leptons, MET, Z and
//! top-like resonances) for the ADL queries.

pub mod generator;
pub mod nano;

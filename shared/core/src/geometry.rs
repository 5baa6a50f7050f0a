//! The detector geometry, read from a data file in `assets/geometry/` (the ALICE-like barrel is
//! embedded as the default). The generator propagates tracks through its sensitive layers and
//! the event display draws it; both read this one description.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::Detector;

/// The embedded default geometry file.
pub const ALICE_BARREL_TOML: &str = include_str!("../../../assets/geometry/alice-barrel.toml");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectorGeometry {
    pub name: String,
    /// Solenoid field along +z.
    pub field_tesla: f64,
    /// |η| of the central barrel.
    pub acceptance_eta: f64,
    pub beam_pipe: BeamPipe,
    pub its: Its,
    pub tpc: Tpc,
    pub tof: Tof,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BeamPipe {
    pub radius_cm: f64,
    pub half_length_cm: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Its {
    pub sigma_rphi_cm: f64,
    pub sigma_z_cm: f64,
    pub sigma_t_ns: f64,
    pub edep_mpv_kev: f64,
    pub layers: Vec<Cylinder>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cylinder {
    pub radius_cm: f64,
    pub half_length_cm: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tpc {
    pub inner_radius_cm: f64,
    pub outer_radius_cm: f64,
    pub pad_rows: u32,
    pub half_length_cm: f64,
    pub sigma_rphi_cm: f64,
    pub sigma_z_cm: f64,
    pub sigma_t_ns: f64,
    pub edep_mpv_kev: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tof {
    pub inner_radius_cm: f64,
    pub outer_radius_cm: f64,
    pub sensitive_radius_cm: f64,
    pub sectors: u32,
    pub half_length_cm: f64,
    pub sigma_rphi_cm: f64,
    pub sigma_z_cm: f64,
    pub sigma_t_ns: f64,
    pub edep_mpv_kev: f64,
}

/// One measuring surface: a cylinder where a crossing track leaves a hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SensitiveLayer {
    pub detector: Detector,
    /// ITS layer (0–6) or TPC pad row (0–158); TOF hits carry their sector instead.
    pub layer: u32,
    pub radius_cm: f64,
    pub half_length_cm: f64,
    pub sigma_rphi_cm: f64,
    pub sigma_z_cm: f64,
    pub sigma_t_ns: f64,
    pub edep_mpv_kev: f64,
}

impl Default for DetectorGeometry {
    fn default() -> Self {
        Self::alice_barrel()
    }
}

impl DetectorGeometry {
    /// The embedded ALICE-like barrel.
    pub fn alice_barrel() -> Self {
        #[allow(clippy::expect_used)] // the embedded file is checked by a unit test
        Self::from_toml(ALICE_BARREL_TOML).expect("embedded geometry parses")
    }

    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let geometry: Self = toml::from_str(text)
            .map_err(|e| Error::Geometry(format!("invalid geometry file: {e}")))?;
        geometry.check()?;
        Ok(geometry)
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text)
    }

    fn check(&self) -> Result<(), Error> {
        let layers = self.sensitive_layers();
        let sorted = layers.windows(2).all(|w| w[0].radius_cm < w[1].radius_cm);
        let positive = layers
            .iter()
            .all(|l| l.radius_cm > 0.0 && l.half_length_cm > 0.0);
        if !(sorted && positive && self.tpc.pad_rows >= 2 && self.tof.sectors > 0) {
            return Err(Error::Geometry(
                "layers must have positive sizes and increase in radius from the ITS to the TOF"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Radius of TPC pad row `row` (rows are evenly spaced from the inner to the outer radius).
    pub fn tpc_row_radius_cm(&self, row: u32) -> f64 {
        let t = &self.tpc;
        t.inner_radius_cm
            + (t.outer_radius_cm - t.inner_radius_cm) * f64::from(row) / f64::from(t.pad_rows - 1)
    }

    /// The TOF sector (0–17) at azimuth `phi`.
    pub fn tof_sector(&self, phi: f64) -> u32 {
        let sectors = self.tof.sectors;
        let frac = phi.rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU;
        ((frac * f64::from(sectors)) as u32).min(sectors - 1)
    }

    /// Every sensitive surface, innermost first: 7 ITS layers, the TPC pad rows, the TOF.
    pub fn sensitive_layers(&self) -> Vec<SensitiveLayer> {
        let its = self
            .its
            .layers
            .iter()
            .enumerate()
            .map(|(i, c)| SensitiveLayer {
                detector: Detector::Its,
                layer: i as u32,
                radius_cm: c.radius_cm,
                half_length_cm: c.half_length_cm,
                sigma_rphi_cm: self.its.sigma_rphi_cm,
                sigma_z_cm: self.its.sigma_z_cm,
                sigma_t_ns: self.its.sigma_t_ns,
                edep_mpv_kev: self.its.edep_mpv_kev,
            });
        let tpc = (0..self.tpc.pad_rows).map(|row| SensitiveLayer {
            detector: Detector::Tpc,
            layer: row,
            radius_cm: self.tpc_row_radius_cm(row),
            half_length_cm: self.tpc.half_length_cm,
            sigma_rphi_cm: self.tpc.sigma_rphi_cm,
            sigma_z_cm: self.tpc.sigma_z_cm,
            sigma_t_ns: self.tpc.sigma_t_ns,
            edep_mpv_kev: self.tpc.edep_mpv_kev,
        });
        let tof = std::iter::once(SensitiveLayer {
            detector: Detector::Tof,
            layer: 0,
            radius_cm: self.tof.sensitive_radius_cm,
            half_length_cm: self.tof.half_length_cm,
            sigma_rphi_cm: self.tof.sigma_rphi_cm,
            sigma_z_cm: self.tof.sigma_z_cm,
            sigma_t_ns: self.tof.sigma_t_ns,
            edep_mpv_kev: self.tof.edep_mpv_kev,
        });
        its.chain(tpc).chain(tof).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_barrel_has_the_alice_dimensions() {
        let g = DetectorGeometry::alice_barrel();
        assert_eq!(g.field_tesla, 0.5);
        let radii: Vec<f64> = g.its.layers.iter().map(|l| l.radius_cm).collect();
        assert_eq!(radii, [2.24, 3.01, 3.78, 19.6, 24.55, 34.39, 39.34]);
        let layers = g.sensitive_layers();
        assert_eq!(layers.len(), 7 + 159 + 1);
        let rows: Vec<_> = layers
            .iter()
            .filter(|l| l.detector == Detector::Tpc)
            .collect();
        assert_eq!(rows.first().map(|l| l.radius_cm), Some(85.2));
        assert!(
            rows.last()
                .is_some_and(|l| (l.radius_cm - 245.7).abs() < 1e-9)
        );
        assert_eq!(g.tof.sectors, 18);
        assert!(g.tof.inner_radius_cm == 371.0 && g.tof.outer_radius_cm == 400.0);
    }

    #[test]
    fn tof_sectors_cover_the_full_azimuth() {
        let g = DetectorGeometry::alice_barrel();
        assert_eq!(g.tof_sector(0.0), 0);
        assert_eq!(g.tof_sector(-1e-9), 17);
        assert_eq!(g.tof_sector(std::f64::consts::PI), 9);
    }

    #[test]
    fn malformed_geometry_is_rejected_with_a_reason() {
        let err = DetectorGeometry::from_toml("name = 3").expect_err("must fail");
        assert!(err.to_string().contains("invalid geometry file"), "{err}");
        let swapped = ALICE_BARREL_TOML.replace("inner_radius_cm = 85.2", "inner_radius_cm = 1.0");
        assert!(DetectorGeometry::from_toml(&swapped).is_err());
    }
}

//! `alyx-core`: what every part of ALYX means by an event — the collision-event model,
//! kinematics and helix physics, the detector geometry, the validation rules, weighted
//! histograms, and how numbers and times are written for people.
//!
//! It is the bottom layer: no columnar engine, async runtime, RPC, database or renderer (no
//! polars, tokio, tonic, sqlx or bevy), so the wire types in `alyx-proto` and every crate above
//! link it cheaply.

pub mod ast;
pub mod error;
pub mod geometry;
pub mod helix;
pub mod histogram;
pub mod jobs;
pub mod model;
pub mod number;
pub mod physics;
pub mod summary;
pub mod validate;

pub use error::Error;
pub use geometry::DetectorGeometry;
pub use model::{CollisionEvent, CollisionSystem, Detector};

/// Where an interactive user's data lives when nothing else is said: `$ALYX_DATA_DIR`, else the
/// platform's per-user data directory (`~/.local/share/alyx` on Linux).
pub fn default_data_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("ALYX_DATA_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("alyx")
}

/// A UTC timestamp from ns since the Unix epoch: `YYYY-MM-DD hh:mm:ss.mmm UTC`.
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod utc_tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            super::utc(951_782_400_000_000_000),
            "2000-02-29 00:00:00.000 UTC"
        );
        assert_eq!(
            super::utc(1_700_000_000_123_000_000),
            "2023-11-14 22:13:20.123 UTC"
        );
        assert_eq!(super::utc(-1_000_000_000), "1969-12-31 23:59:59.000 UTC");
    }
}

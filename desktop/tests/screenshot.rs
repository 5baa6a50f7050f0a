//! What a person sees: `alyx --screenshot` renders an event with Mesa's software Vulkan
//! (lavapipe) and the PNG is checked — not blank, and hits and tracks drawn where the
//! geometry says they must be.

use std::path::{Path, PathBuf};
use std::process::Command;

use alyx_datasets as datasets;
use alyx_sim::generator::GeneratorConfig;
use alyx_store::DataStore;

/// Whether a Vulkan driver is installed (lavapipe on machines without a GPU).
fn vulkan_available() -> bool {
    let dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    let found = dirs
        .iter()
        .any(|d| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()));
    if !found {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "no Vulkan driver under CI: install mesa-vulkan-drivers (scripts/test.sh does)"
        );
        eprintln!("skipping: no Vulkan driver (apt-get install mesa-vulkan-drivers)");
    }
    found
}

struct Png {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Png {
    fn read(path: &Path) -> Png {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("png written"),
        ));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png data");
        let channels = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        Png {
            width: info.width as usize,
            height: info.height as usize,
            channels,
            data: buf,
        }
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = self.channels * (y * self.width + x);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Pixels that differ from the background (the top-left corner's colour).
    fn drawn(&self) -> usize {
        let background = self.pixel(2, 2);
        (0..self.height)
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .filter(|&(x, y)| self.pixel(x, y) != background)
            .count()
    }

    /// Pixel positions (relative to the centre) whose colour is near `target`.
    fn find(&self, target: [u8; 3], tolerance: i32) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for y in 0..self.height {
            for x in 0..self.width {
                let p = self.pixel(x, y);
                if (0..3).all(|c| (i32::from(p[c]) - i32::from(target[c])).abs() <= tolerance) {
                    out.push((
                        x as f32 - self.width as f32 / 2.0,
                        y as f32 - self.height as f32 / 2.0,
                    ));
                }
            }
        }
        out
    }
}

/// Compares `png` with the reference image `name` in tests/reference: the same size, and at
/// most 0.5% of pixels differing by more than 40 in a channel (rasterisation details may move a
/// few edges). `ALYX_UPDATE_REFERENCE=1` rewrites the reference from `out`.
fn compare_with_reference(png: &Png, out: &Path, name: &str) {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name);
    if std::env::var_os("ALYX_UPDATE_REFERENCE").is_some() {
        std::fs::create_dir_all(reference.parent().expect("parent")).expect("mkdir");
        std::fs::copy(out, &reference).expect("reference written");
        eprintln!("reference {} updated", reference.display());
        return;
    }
    assert!(
        reference.exists(),
        "no reference image {} (run with ALYX_UPDATE_REFERENCE=1 and look at it)",
        reference.display()
    );
    let expected = Png::read(&reference);
    assert_eq!((png.width, png.height), (expected.width, expected.height));
    let differing = (0..png.height)
        .flat_map(|y| (0..png.width).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let (a, b) = (png.pixel(x, y), expected.pixel(x, y));
            (0..3).any(|c| (i32::from(a[c]) - i32::from(b[c])).abs() > 40)
        })
        .count();
    let fraction = differing as f64 / (png.width * png.height) as f64;
    assert!(
        fraction < 0.005,
        "{:.2}% of pixels differ from {} (see {})",
        fraction * 100.0,
        reference.display(),
        out.display()
    );
}

fn render(open: &Path, extra: &[&str], out: &Path) -> Png {
    let status = Command::new(env!("CARGO_BIN_EXE_alyx"))
        .arg("--open")
        .arg(open)
        .args(extra)
        .arg("--screenshot")
        .arg(out)
        .env("WGPU_BACKEND", "vulkan")
        .env("ALYX_DATA_DIR", out.with_extension("data"))
        .status()
        .expect("alyx runs");
    assert!(status.success(), "alyx --screenshot failed");
    Png::read(out)
}

fn generated(dir: &Path) -> PathBuf {
    let store = DataStore::open(dir.join("store")).expect("store");
    let ds = datasets::generate(&store, "pp", GeneratorConfig::pp(99), 5, &mut |_| {})
        .expect("generate");
    ds.dir().to_path_buf()
}

#[test]
fn end_view_of_a_generated_event_shows_hits_on_their_layers() {
    if !vulkan_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rphi.png");
    let png = render(
        &generated(dir.path()),
        &["--view", "rphi", "--size", "800x600", "--event", "2"],
        &out,
    );
    assert_eq!((png.width, png.height), (800, 600));
    let drawn = png.drawn();
    assert!(drawn > 2_000, "only {drawn} pixels drawn: blank image?");
    // Colours after the camera's Reinhard tone mapping (measured once, see the PNG).
    // Tracks: positive red, negative blue.
    let tracks = png.find([187, 132, 124], 15).len() + png.find([132, 156, 187], 15).len();
    assert!(tracks > 50, "{tracks} track-coloured pixels");
    // TPC hits (cyan, drawn by the instancing shader without tone mapping: linear
    // (0.15, 0.75, 1.0) in sRGB) lie on a ring between the TPC's inner and outer radius.
    let tpc = png.find([108, 225, 255], 15);
    assert!(tpc.len() > 50, "{} TPC-coloured pixels", tpc.len());
    let radii: Vec<f32> = tpc.iter().map(|(x, y)| x.hypot(*y)).collect();
    let inner = radii.iter().copied().fold(f32::INFINITY, f32::min);
    let outer = radii.iter().copied().fold(0.0, f32::max);
    assert!(
        inner > 0.25 * outer,
        "TPC hits start well outside the ITS: {inner} vs {outer}"
    );
    eprintln!(
        "screenshot {}: {drawn} pixels drawn, TPC ring {inner:.0}–{outer:.0} px",
        out.display()
    );
    compare_with_reference(&png, &out, "pp-rphi.png");
}

#[test]
fn atlas_phoenix_event_renders() {
    if !vulkan_available() {
        return;
    }
    let Some(atlas) = alyx_tests::data_file("phoenix/ATLAS_atlaseventdump2.json") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("atlas.png");
    let png = render(&atlas, &["--size", "640x400"], &out);
    let drawn = png.drawn();
    assert!(drawn > 1_000, "only {drawn} pixels drawn");
    compare_with_reference(&png, &out, "atlas-3d.png");
}

/// A linear colour as the 8-bit sRGB the hit shader writes.
fn srgb(linear: [f32; 4]) -> [u8; 3] {
    let encode = |c: f32| {
        let s = if c <= 0.003_130_8 {
            12.92 * c
        } else {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        };
        (s.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [encode(linear[0]), encode(linear[1]), encode(linear[2])]
}

/// One central Pb–Pb event: hits in every detector, densely.
fn central_pbpb(dir: &Path) -> PathBuf {
    use alyx_sim::generator::Centrality;
    let store = DataStore::open(dir.join("store")).expect("store");
    let ds = datasets::generate(
        &store,
        "pbpb",
        GeneratorConfig::pbpb(5, Centrality::Central),
        1,
        &mut |_| {},
    )
    .expect("generate");
    ds.dir().to_path_buf()
}

/// Pixels per cm of a projection rendered `height` pixels tall at the preset zoom.
fn pixels_per_cm(view: alyx_desktop::display::View, height: usize) -> f32 {
    let fov = alyx_desktop::display::Viewport::default().fov_y;
    height as f32 / alyx_desktop::display::Orbit::view(view).view_height_cm(fov)
}

fn hit_pixels(png: &Png, detector: alyx_core::Detector) -> Vec<(f32, f32)> {
    // Pixel centres, relative to the image centre (the beam axis).
    png.find(
        srgb(alyx_desktop::display::scene::detector_colour(detector)),
        10,
    )
    .into_iter()
    .map(|(x, y)| (x + 0.5, y + 0.5))
    .collect()
}

#[test]
fn the_end_view_is_a_true_r_phi_projection() {
    use alyx_core::Detector;
    if !vulkan_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rphi.png");
    let png = render(
        &central_pbpb(dir.path()),
        &["--view", "rphi", "--size", "800x600"],
        &out,
    );
    let g = alyx_core::DetectorGeometry::alice_barrel();
    let s = pixels_per_cm(alyx_desktop::display::View::RPhi, png.height);
    // A dot is drawn around its hit: at most its radius (2.5 cm, at least 1.25 px) plus a
    // pixel of rasterisation beyond the hit's own radius.
    let slack = (2.5 * s).max(1.25) + 1.0;
    let radius = |(x, y): &(f32, f32)| x.hypot(*y);
    let tof = hit_pixels(&png, Detector::Tof);
    assert!(tof.len() > 500, "{} TOF pixels", tof.len());
    let (lo, hi) = (
        g.tof.inner_radius_cm as f32 * s,
        g.tof.outer_radius_cm as f32 * s,
    );
    let outside: Vec<f32> = tof
        .iter()
        .map(radius)
        .filter(|r| *r < lo - slack || *r > hi + slack)
        .collect();
    assert!(
        outside.is_empty(),
        "{} of {} TOF pixels off the TOF ring {lo:.1}–{hi:.1} px, e.g. {:?} (see {})",
        outside.len(),
        tof.len(),
        &outside[..outside.len().min(5)],
        out.display()
    );
    let its = hit_pixels(&png, Detector::Its);
    assert!(its.len() > 50, "{} ITS pixels", its.len());
    let tpc_inner = g.tpc.inner_radius_cm as f32 * s;
    assert!(
        its.iter().all(|p| radius(p) <= tpc_inner),
        "ITS pixels beyond the TPC's inner radius {tpc_inner:.1} px (see {})",
        out.display()
    );
    eprintln!(
        "r-φ {}: {} TOF pixels within {lo:.1}–{hi:.1} px, {} ITS pixels inside {tpc_inner:.1} px",
        out.display(),
        tof.len(),
        its.len()
    );
}

#[test]
fn the_side_view_is_a_rho_z_projection() {
    use alyx_core::Detector;
    if !vulkan_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rz.png");
    let png = render(
        &central_pbpb(dir.path()),
        &["--view", "rz", "--size", "800x600"],
        &out,
    );
    let g = alyx_core::DetectorGeometry::alice_barrel();
    let s = pixels_per_cm(alyx_desktop::display::View::RZ, png.height);
    let slack = (1.2 * s).max(1.25) + 1.0;
    let tpc = hit_pixels(&png, Detector::Tpc);
    assert!(tpc.len() > 2_000, "{} TPC pixels", tpc.len());
    let (inner, outer) = (g.tpc.inner_radius_cm as f32, g.tpc.outer_radius_cm as f32);
    let half = g.tpc.half_length_cm as f32 * s;
    for (x, y) in &tpc {
        let r = y.abs() / s;
        assert!(
            r >= inner - slack / s && r <= outer + slack / s && x.abs() <= half + slack,
            "a TPC pixel at z {:.0} cm, ρ {r:.0} cm: outside the band {inner}–{outer} cm (see {})",
            x / s,
            out.display()
        );
    }
    // The band is filled on both sides of the beam: every 10 cm of radius holds TPC pixels
    // above and below.
    let mut rows = inner as i32 / 10 + 1;
    while rows * 10 + 10 <= outer as i32 {
        for sign in [1.0f32, -1.0] {
            let n = tpc
                .iter()
                .filter(|(_, y)| {
                    let r = -y / s * sign;
                    r >= (rows * 10) as f32 && r < (rows * 10 + 10) as f32
                })
                .count();
            assert!(
                n > 0,
                "no TPC pixels at ρ {}–{} cm on the {} side (see {})",
                rows * 10,
                rows * 10 + 10,
                if sign > 0.0 { "upper" } else { "lower" },
                out.display()
            );
        }
        rows += 1;
    }
    eprintln!(
        "ρ-z {}: {} TPC pixels in the band {inner}–{outer} cm",
        out.display(),
        tpc.len()
    );
}

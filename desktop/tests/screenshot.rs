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
        self.matching(|p| {
            (0..3).all(|c| (i32::from(p[c]) - i32::from(target[c])).abs() <= tolerance)
        })
    }

    /// Pixel positions (relative to the centre) whose colour passes `test`.
    fn matching(&self, test: impl Fn([i32; 3]) -> bool) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for y in 0..self.height {
            for x in 0..self.width {
                if test(self.pixel(x, y).map(i32::from)) {
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

/// Each mesh node's (ρ min, ρ max, |z| min, |z| max) in cm, as `tests/peers/gltf_extent.py`
/// reads them from the glTF with the standard library.
fn gltf_extents(path: &Path) -> std::collections::BTreeMap<String, [f32; 4]> {
    let out = Command::new("python3")
        .arg(alyx_tests::peer_script("gltf_extent.py"))
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "gltf_extent.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("extents")
}

/// The calorimeter front faces' (ρ min, ρ max) over all collections of the event with this
/// number, cm, and its index in the archive, as `tests/peers/ispy_dump.py` reads them.
fn ispy_calorimeter(path: &Path, event: u64) -> (usize, f32, f32) {
    let out = Command::new("python3")
        .arg(alyx_tests::peer_script("ispy_dump.py"))
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "ispy_dump.py failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let events = v["events"].as_array().expect("events");
    let index = events
        .iter()
        .position(|e| e["event"].as_u64() == Some(event))
        .expect("the event is in the file");
    let (mut lo, mut hi) = (f32::INFINITY, 0.0f32);
    for range in events[index]["calo_rho_cm"]
        .as_object()
        .expect("calo_rho_cm")
        .values()
    {
        lo = lo.min(range[0].as_f64().expect("min") as f32);
        hi = hi.max(range[1].as_f64().expect("max") as f32);
    }
    (index, lo, hi)
}

/// A CMS event (iSpy, the J/ψ → μμ candidate 876295434) inside CMS's muon system as Phoenix
/// publishes it (glTF, metres): the barrel chambers drawn where the glTF's vertices put them,
/// the calorimeter towers standing on the cells the file places them at, and the forward
/// global muon's track reaching the end-cap chambers.
#[test]
fn a_cms_event_is_drawn_inside_the_cms_detector() {
    use alyx_desktop::display::{Orbit, View, Viewport};
    if !vulkan_available() {
        return;
    }
    let (Some(ig), Some(gltf)) = (
        alyx_tests::data_file("phoenix/CMS_EventData_test.ig"),
        alyx_tests::data_file("geometry/CMS_cms.gltf"),
    ) else {
        return;
    };
    let extents = gltf_extents(&gltf);
    let (dt, csc) = (extents["DTs3D_V1"], extents["CSC3D_V1"]);
    let (index, calo_lo, calo_hi) = ispy_calorimeter(&ig, 876_295_434);
    let dir = tempfile::tempdir().expect("tempdir");
    let fov = Viewport::default().fov_y;
    // Zoomed out until the view is 2 × 1150 cm tall: all of CMS.
    let camera = |view: View| {
        let preset = Orbit::view(view);
        let distance = preset.distance * 2300.0 / preset.view_height_cm(fov);
        let orbit = Orbit { distance, ..preset };
        // `--camera=…`: a negative yaw must not read as a flag.
        let arg = format!("--camera={},{},{}", orbit.yaw, orbit.pitch, orbit.distance);
        (arg, 800.0 / orbit.view_height_cm(fov))
    };
    let geometry = gltf.to_str().expect("utf8");
    let event = index.to_string();

    // End view, end caps hidden: the barrel chambers' ring and the towers.
    let (arg, s) = camera(View::RPhi);
    let out = dir.path().join("cms-rphi.png");
    let png = render(
        &ig,
        &[
            "--event",
            &event,
            "--geometry",
            geometry,
            "--hide-volume",
            "CSC3D_V1",
            "--view",
            "rphi",
            &arg,
            "--size",
            "800x800",
        ],
        &out,
    );
    let radius = |(x, y): &(f32, f32)| x.hypot(*y) / s;
    let slack = 2.0 / s;
    // The chambers: orange (0.8, 0.4, 0), translucent over the dark background.
    let chambers = png.matching(|[r, g, b]| r > 40 && r > g + 15 && g > b + 15 && b < 40);
    assert!(
        chambers.len() > 5_000,
        "{} chamber pixels (see {})",
        chambers.len(),
        out.display()
    );
    let off: Vec<f32> = chambers
        .iter()
        .map(radius)
        .filter(|r| *r < dt[0] - slack || *r > dt[1] + slack)
        .collect();
    assert!(
        off.len() * 100 < chambers.len(),
        "{} of {} chamber pixels outside ρ {:.0}–{:.0} cm, e.g. {:?} (see {})",
        off.len(),
        chambers.len(),
        dt[0],
        dt[1],
        &off[..off.len().min(5)],
        out.display()
    );
    // Towers: green (0.2, 1.0, 0.5); each stands on its cell's front face, at most 250 cm tall.
    let towers = png.matching(|[r, g, b]| g > 90 && g > r + 40 && g > b + 20);
    assert!(
        towers.len() > 50,
        "{} tower pixels (see {})",
        towers.len(),
        out.display()
    );
    let innermost = towers.iter().map(radius).fold(f32::INFINITY, f32::min);
    let outermost = towers.iter().map(radius).fold(0.0, f32::max);
    assert!(
        (innermost - calo_lo).abs() < 8.0 + slack && outermost <= calo_hi + 250.0 + 8.0 + slack,
        "towers from ρ {innermost:.0} to {outermost:.0} cm; the cells' front faces are at \
         {calo_lo:.0}–{calo_hi:.0} cm (see {})",
        out.display()
    );

    // Side view, barrel hidden: the muon's track (red or blue by charge) reaches the end caps.
    let (arg, s) = camera(View::RZ);
    let out = dir.path().join("cms-rz.png");
    let png = render(
        &ig,
        &[
            "--event",
            &event,
            "--geometry",
            geometry,
            "--hide-volume",
            "DTs3D_V1",
            "--view",
            "rz",
            &arg,
            "--size",
            "800x800",
        ],
        &out,
    );
    // Tracks by charge, as drawn after tone mapping: orange (255, 140, 0) and steel blue
    // (132, 156, 188); the chambers here are olive, the towers green-grey.
    let tracks = png.matching(|[r, g, b]| {
        (r > 200 && (100..180).contains(&g) && b < 50) || (b > 150 && b > r + 40 && b > g + 20)
    });
    let reach = tracks.iter().map(|(x, _)| x.abs() / s).fold(0.0, f32::max);
    assert!(
        reach > csc[2],
        "tracks reach |z| = {reach:.0} cm, short of the end-cap chambers at {:.0} cm (see {})",
        csc[2],
        out.display()
    );
    eprintln!(
        "CMS: chambers at ρ {:.0}–{:.0} cm ({} pixels), towers {innermost:.0}–{outermost:.0} cm, \
         the muon to |z| = {reach:.0} cm (end caps from {:.0} cm); see {}",
        dt[0],
        dt[1],
        chambers.len(),
        csc[2],
        dir.path().display()
    );
    if std::env::var_os("ALYX_KEEP_SCREENSHOTS").is_some() {
        let _ = dir.keep();
    }
}

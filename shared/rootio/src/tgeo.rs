//! Detector geometry from a ROOT TGeo file (a `TGeoManager` written with `gGeoManager->Export`
//! or `Write`), read without ROOT: the objects by the file's own streamer infos, the volume
//! hierarchy from the master volume down, each placement's matrix composed into the world frame,
//! and each shape tessellated into triangles in its volume's frame (centimetres, TGeo's unit).
//!
//! Shapes drawn: boxes, tubes and tube segments, cones and cone segments, polycones, polygons,
//! trapezoids (`TGeoTrd1/2`, `TGeoTrap`, `TGeoGtra`), arbitrary 8-vertex solids and
//! parallelepipeds. Others (spheres, tori, boolean composites, extrusions…) are counted in
//! [`Geometry::not_drawn`], by class. Visibility follows ROOT: a volume is drawn when its
//! `kVisThis` bit is set, its daughters when its `kVisDaughters` bit is; the master volume is
//! never drawn. The walk is bounded in depth and placements, whatever the file says.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::PI;
use std::path::Path;

use crate::error::{Fault, Result};
use crate::streamed::{Id, Obj, Reader, Streamers};
use crate::tfile::{self, Source};

/// The deepest placement followed (real detectors nest ~15 levels).
const MAX_DEPTH: usize = 64;
/// The most placements walked.
const MAX_PLACEMENTS: usize = 1_000_000;
/// The largest geometry object read, decompressed.
const MAX_OBJECT_BYTES: u32 = 1 << 29;
/// The most triangles one shape's surface may have (a polycone of many sections, a polygon of
/// many sides): beyond, the shape is not drawn rather than allocated.
const MAX_SHAPE_TRIANGLES: usize = 1 << 20;
/// The longest node name kept in a placement's path.
const MAX_NAME: usize = 256;
/// Segments of a full circle (a multiple of 4: the extremes along x and y are vertices).
const CIRCLE_SEGMENTS: f64 = 64.0;

/// `TGeoAtt` visibility bits.
const VIS_THIS: u32 = 1 << 2;
const VIS_DAUGHTERS: u32 = 1 << 3;

/// A triangle, three vertices (cm).
pub type Triangle = [[f64; 3]; 3];

/// A geometry as read: its logical volumes (each with its shape's mesh, in its own frame) and
/// every placement of them in the world.
#[derive(Debug, Default)]
pub struct Geometry {
    pub name: String,
    pub volumes: Vec<Volume>,
    pub placements: Vec<Placement>,
    /// Shape classes not drawn, with the number of drawn placements each would have had.
    pub not_drawn: BTreeMap<String, usize>,
    /// Why the walk stopped before the end of the hierarchy, if it did.
    pub truncated: Option<String>,
}

/// A logical volume: a shape with a name and a colour, placed any number of times.
#[derive(Debug)]
pub struct Volume {
    pub name: String,
    /// The shape's class (`TGeoTube`…).
    pub shape: String,
    /// The volume's line colour (ROOT's colour index mapped to RGB); `None`: ROOT's default.
    pub colour: Option<[f32; 3]>,
    /// The shape's surface in the volume's frame (cm); empty for shapes not drawn.
    pub mesh: Vec<Triangle>,
}

/// One placement of a volume in the world.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Node names from the master volume down, `/`-separated (`TOP/ROOT_1/R_1`).
    pub path: String,
    pub volume: usize,
    /// Volume frame → world: `[R | t]` row by row (cm).
    pub matrix: [[f64; 4]; 3],
    /// Drawn, by ROOT's visibility rules (not the master, visible itself and all the way up).
    pub drawn: bool,
}

/// The volume a closed, outward-facing mesh encloses (cm³, by the divergence theorem): a
/// check that a tessellation is closed, faces outwards and has the shape's size.
pub fn enclosed_volume(mesh: &[Triangle]) -> f64 {
    mesh.iter()
        .map(|[a, b, c]| {
            (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                + a[2] * (b[0] * c[1] - b[1] * c[0]))
                / 6.0
        })
        .sum()
}

impl Placement {
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.matrix;
        std::array::from_fn(|i| m[i][0] * p[0] + m[i][1] * p[1] + m[i][2] * p[2] + m[i][3])
    }
}

/// Reads the (newest) `TGeoManager` of a ROOT file.
pub fn read(path: &Path) -> Result<Geometry> {
    read_inner(path).map_err(|f| f.at(path))
}

fn read_inner(path: &Path) -> Result<Geometry, Fault> {
    let file = std::fs::File::open(path)?;
    let mut src = Source::new(file)?;
    let keys = tfile::keys(&mut src)?;
    let Some(key) = keys
        .iter()
        .filter(|k| k.class == "TGeoManager")
        .max_by_key(|k| k.cycle)
    else {
        let found: Vec<String> = keys
            .iter()
            .take(20)
            .map(|k| format!("{} ({})", k.name, k.class))
            .collect();
        return Err(Fault::NotFound(format!(
            "no TGeoManager in the file (it holds: {})",
            if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            }
        )));
    };
    let Some(info_key) = tfile::streamer_key(&mut src)? else {
        return Err(Fault::Malformed(
            "the file has no streamer infos to read its geometry by".into(),
        ));
    };
    let info = tfile::payload(&mut src, &info_key, MAX_OBJECT_BYTES, "streamer infos")?;
    let streamers = Streamers::read(&info, info_key.header_length())?;
    let bytes = tfile::payload(&mut src, key, MAX_OBJECT_BYTES, "geometry")?;
    let mut reader = Reader::new(&bytes, key.header_length(), &streamers);
    let manager = reader.top("TGeoManager")?;
    let mut geometry = walk(&reader.arena, manager)?;
    geometry.name = key.name.clone();
    Ok(geometry)
}

/// `[R | t]`, row by row.
type Affine = [[f64; 4]; 3];

const IDENTITY: Affine = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
];

/// `a ∘ b`: b first, then a.
fn compose(a: &Affine, b: &Affine) -> Affine {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            let r = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
            if j == 3 { r + a[i][3] } else { r }
        })
    })
}

/// A placement's matrix, from whichever of TGeo's matrix classes it is.
fn matrix(arena: &[Obj], id: Option<Id>) -> Affine {
    let Some(m) = id.map(|id| &arena[id]) else {
        return IDENTITY;
    };
    let mut out = IDENTITY;
    if let Some(t) = m.nums("fTranslation").filter(|t| t.len() == 3) {
        for i in 0..3 {
            out[i][3] = t[i];
        }
    }
    let rotation = m
        .nums("fRotationMatrix")
        .or_else(|| {
            m.obj("fRotation")
                .and_then(|r| arena[r].nums("fRotationMatrix"))
        })
        .filter(|r| r.len() == 9);
    if let Some(r) = rotation {
        for i in 0..3 {
            for j in 0..3 {
                out[i][j] = r[3 * i + j];
            }
        }
    } else if m.class == "TGeoScale" {
        if let Some(s) = m.nums("fScale").filter(|s| s.len() == 3) {
            for i in 0..3 {
                out[i][i] = s[i];
            }
        }
    }
    out
}

fn walk(arena: &[Obj], manager: Id) -> Result<Geometry, Fault> {
    let m = &arena[manager];
    let Some(master) = m.obj("fMasterVolume").or_else(|| {
        m.obj("fVolumes")
            .and_then(|l| arena[l].list("items").first().copied().flatten())
    }) else {
        return Err(Fault::Malformed(
            "the TGeoManager has no master volume".into(),
        ));
    };
    let mut g = Geometry::default();
    let mut volume_index: HashMap<Id, usize> = HashMap::new();
    // Depth first, in the file's order: (volume, node name path, world matrix, depth, drawn).
    let name_of = |id: Id| short(arena[id].text("fName").unwrap_or("")).to_owned();
    let mut stack = vec![(master, name_of(master), IDENTITY, 0usize, true)];
    while let Some((vol, path, world, depth, shown)) = stack.pop() {
        if g.placements.len() >= MAX_PLACEMENTS {
            g.truncated = Some(format!("more than {MAX_PLACEMENTS} placements"));
            break;
        }
        let v = &arena[vol];
        let index = match volume_index.get(&vol) {
            Some(i) => *i,
            None => {
                let shape = v.obj("fShape").map(|s| &arena[s]);
                let mesh = shape.map(tessellate).unwrap_or(Some(Vec::new()));
                let shape_class = shape.map_or_else(String::new, |s| s.class.clone());
                g.volumes.push(Volume {
                    name: name_of(vol),
                    colour: v.num("fLineColor").and_then(|c| root_colour(c as i32)),
                    shape: shape_class,
                    mesh: mesh.unwrap_or_default(),
                });
                volume_index.insert(vol, g.volumes.len() - 1);
                g.volumes.len() - 1
            }
        };
        let att = v.num("fGeoAtt").unwrap_or(0.0) as u32;
        let drawn = shown && depth > 0 && att & VIS_THIS != 0;
        let volume = &g.volumes[index];
        let drawable = !volume.mesh.is_empty();
        if drawn && !drawable && !volume.shape.is_empty() && !volume.shape.contains("Assembly") {
            *g.not_drawn.entry(volume.shape.clone()).or_default() += 1;
        }
        g.placements.push(Placement {
            path: path.clone(),
            volume: index,
            matrix: world,
            drawn: drawn && drawable,
        });
        let nodes = v.obj("fNodes").map_or(&[][..], |l| arena[l].list("items"));
        if nodes.is_empty() {
            continue;
        }
        if depth + 1 > MAX_DEPTH {
            g.truncated = Some(format!("volumes nested more than {MAX_DEPTH} deep"));
            continue;
        }
        let children_shown = shown && att & VIS_DAUGHTERS != 0;
        // Pushed in reverse: popped in the file's order.
        for node in nodes.iter().rev().flatten() {
            let n = &arena[*node];
            let Some(child) = n.obj("fVolume") else {
                continue;
            };
            if n.class == "TGeoNodeOffset" {
                // Divisions place their cells through pattern finders, not matrices.
                *g.not_drawn
                    .entry("TGeoNodeOffset (division)".into())
                    .or_default() += 1;
                continue;
            }
            let local = matrix(arena, n.obj("fMatrix"));
            stack.push((
                child,
                format!("{path}/{}", short(n.text("fName").unwrap_or(""))),
                compose(&world, &local),
                depth + 1,
                children_shown,
            ));
        }
    }
    Ok(g)
}

/// A name cut to `MAX_NAME` bytes (at a character boundary).
fn short(name: &str) -> &str {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A shape's surface in its own frame, or `None` for a shape class not drawn.
fn tessellate(s: &Obj) -> Option<Vec<Triangle>> {
    let n = |name: &str| s.num(name).unwrap_or(0.0);
    let class = s.class.as_str();
    let full = (0.0, 360.0);
    let mesh = match class {
        "TGeoBBox" => {
            let o = s
                .nums("fOrigin")
                .filter(|o| o.len() == 3)
                .unwrap_or(&[0.0; 3]);
            let (dx, dy, dz) = (n("fDX"), n("fDY"), n("fDZ"));
            let corners: [[f64; 2]; 4] = [[-dx, -dy], [-dx, dy], [dx, dy], [dx, -dy]];
            let mut v = [[0.0; 3]; 8];
            for (i, c) in corners.iter().enumerate() {
                v[i] = [o[0] + c[0], o[1] + c[1], o[2] - dz];
                v[i + 4] = [o[0] + c[0], o[1] + c[1], o[2] + dz];
            }
            hexahedron(&v)
        }
        "TGeoTube" | "TGeoTubeSeg" | "TGeoCtub" => {
            let phi = if class == "TGeoTube" {
                full
            } else {
                (n("fPhi1"), n("fPhi2"))
            };
            let dz = n("fDz");
            revolve(
                &[(-dz, n("fRmin"), n("fRmax")), (dz, n("fRmin"), n("fRmax"))],
                phi,
                None,
            )
        }
        "TGeoCone" | "TGeoConeSeg" => {
            let phi = if class == "TGeoCone" {
                full
            } else {
                (n("fPhi1"), n("fPhi2"))
            };
            let dz = n("fDz");
            revolve(
                &[
                    (-dz, n("fRmin1"), n("fRmax1")),
                    (dz, n("fRmin2"), n("fRmax2")),
                ],
                phi,
                None,
            )
        }
        "TGeoPcon" | "TGeoPgon" => {
            let (z, rmin, rmax) = (s.nums("fZ")?, s.nums("fRmin")?, s.nums("fRmax")?);
            if z.len() != rmin.len() || z.len() != rmax.len() || z.len() < 2 {
                return None;
            }
            let sections: Vec<(f64, f64, f64)> =
                (0..z.len()).map(|i| (z[i], rmin[i], rmax[i])).collect();
            let phi1 = n("fPhi1");
            let edges = (class == "TGeoPgon").then(|| n("fNedges") as usize);
            revolve(&sections, (phi1, phi1 + n("fDphi")), edges)
        }
        "TGeoTrd1" | "TGeoTrd2" => {
            let (dx1, dx2, dz) = (n("fDx1"), n("fDx2"), n("fDz"));
            let (dy1, dy2) = if class == "TGeoTrd1" {
                (n("fDy"), n("fDy"))
            } else {
                (n("fDy1"), n("fDy2"))
            };
            let face =
                |dx: f64, dy: f64, z: f64| [[-dx, -dy, z], [-dx, dy, z], [dx, dy, z], [dx, -dy, z]];
            let (b, t) = (face(dx1, dy1, -dz), face(dx2, dy2, dz));
            hexahedron(&[b[0], b[1], b[2], b[3], t[0], t[1], t[2], t[3]])
        }
        "TGeoArb8" | "TGeoTrap" | "TGeoGtra" => {
            let xy = s.nums("fXY").filter(|xy| xy.len() == 16)?;
            let dz = n("fDz");
            let v: [[f64; 3]; 8] =
                std::array::from_fn(|i| [xy[2 * i], xy[2 * i + 1], if i < 4 { -dz } else { dz }]);
            hexahedron(&v)
        }
        "TGeoPara" => {
            let (x, y, z) = (n("fX"), n("fY"), n("fZ"));
            let deg = PI / 180.0;
            let txy = (n("fAlpha") * deg).tan();
            let (txz, tyz) = {
                let t = (n("fTheta") * deg).tan();
                (t * (n("fPhi") * deg).cos(), t * (n("fPhi") * deg).sin())
            };
            let p = |sx: f64, sy: f64, sz: f64| {
                let (a, b, c) = (sx * x, sy * y, sz * z);
                [a + b * txy + c * txz, b + c * tyz, c]
            };
            hexahedron(&[
                p(-1.0, -1.0, -1.0),
                p(-1.0, 1.0, -1.0),
                p(1.0, 1.0, -1.0),
                p(1.0, -1.0, -1.0),
                p(-1.0, -1.0, 1.0),
                p(-1.0, 1.0, 1.0),
                p(1.0, 1.0, 1.0),
                p(1.0, -1.0, 1.0),
            ])
        }
        _ => return None,
    };
    // A shape with non-finite parameters, or none at all, is not drawn.
    let finite = mesh.iter().flatten().flatten().all(|x| x.is_finite());
    (finite && !mesh.is_empty()).then_some(mesh)
}

/// Triangles of a quadrilateral `a b c d` (counter-clockwise seen from where it faces).
fn quad(out: &mut Vec<Triangle>, a: [f64; 3], b: [f64; 3], c: [f64; 3], d: [f64; 3]) {
    for t in [[a, b, c], [a, c, d]] {
        let n = normal(&t);
        if n.iter().map(|x| x * x).sum::<f64>() > 1e-18 {
            out.push(t);
        }
    }
}

fn normal(t: &Triangle) -> [f64; 3] {
    let u = [t[1][0] - t[0][0], t[1][1] - t[0][1], t[1][2] - t[0][2]];
    let v = [t[2][0] - t[0][0], t[2][1] - t[0][1], t[2][2] - t[0][2]];
    [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ]
}

/// The six faces of a solid given by its four vertices at −dz then the four above them, each
/// triangle turned to face away from the solid's centre.
fn hexahedron(v: &[[f64; 3]; 8]) -> Vec<Triangle> {
    let centre: [f64; 3] = std::array::from_fn(|k| v.iter().map(|p| p[k]).sum::<f64>() / 8.0);
    let mut out = Vec::with_capacity(12);
    for f in [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [0, 1, 5, 4],
        [1, 2, 6, 5],
        [2, 3, 7, 6],
        [3, 0, 4, 7],
    ] {
        let mut tris = Vec::new();
        quad(&mut tris, v[f[0]], v[f[1]], v[f[2]], v[f[3]]);
        let face: [f64; 3] = std::array::from_fn(|k| f.iter().map(|&i| v[i][k]).sum::<f64>() / 4.0);
        for mut t in tris {
            let n = normal(&t);
            let out_dir: f64 = (0..3).map(|k| n[k] * (face[k] - centre[k])).sum();
            if out_dir < 0.0 {
                t.swap(1, 2);
            }
            out.push(t);
        }
    }
    out
}

/// A solid of revolution: sections `(z, rmin, rmax)` in increasing z, over `phi` (degrees,
/// from, to), round or, for a polygon, with `edges` flat sides (ROOT's radii of a polygon are
/// to the middle of its sides).
fn revolve(sections: &[(f64, f64, f64)], phi: (f64, f64), edges: Option<usize>) -> Vec<Triangle> {
    // ROOT keeps phi2 > phi1; a range given the other way round wraps, as ROOT would make it.
    let d = (phi.1 - phi.0).rem_euclid(360.0);
    let dphi = if d == 0.0 && phi.1 != phi.0 { 360.0 } else { d };
    let closed = dphi >= 360.0 - 1e-9;
    let segments = match edges {
        Some(e) => e.clamp(1, 4096),
        None => ((CIRCLE_SEGMENTS * dphi / 360.0).ceil() as usize).clamp(1, 4096),
    };
    if sections.len().saturating_mul(segments) > MAX_SHAPE_TRIANGLES / 8 {
        return Vec::new();
    }
    let step = dphi / segments as f64;
    let scale = if edges.is_some() {
        1.0 / (step.to_radians() / 2.0).cos()
    } else {
        1.0
    };
    let angles: Vec<(f64, f64)> = (0..=segments)
        .map(|k| {
            let a = (phi.0 + step * k as f64).to_radians();
            (a.cos(), a.sin())
        })
        .collect();
    let p = |r: f64, k: usize, z: f64| [r * scale * angles[k].0, r * scale * angles[k].1, z];
    let mut out = Vec::new();
    for w in sections.windows(2) {
        let ((z0, rmin0, rmax0), (z1, rmin1, rmax1)) = (w[0], w[1]);
        for k in 0..segments {
            quad(
                &mut out,
                p(rmax0, k, z0),
                p(rmax0, k + 1, z0),
                p(rmax1, k + 1, z1),
                p(rmax1, k, z1),
            );
            quad(
                &mut out,
                p(rmin0, k, z0),
                p(rmin1, k, z1),
                p(rmin1, k + 1, z1),
                p(rmin0, k + 1, z0),
            );
        }
        if !closed {
            let (a, b) = (0, segments);
            quad(
                &mut out,
                p(rmin0, a, z0),
                p(rmax0, a, z0),
                p(rmax1, a, z1),
                p(rmin1, a, z1),
            );
            quad(
                &mut out,
                p(rmin0, b, z0),
                p(rmin1, b, z1),
                p(rmax1, b, z1),
                p(rmax0, b, z0),
            );
        }
    }
    if let (Some(&(z0, rmin0, rmax0)), Some(&(z1, rmin1, rmax1))) =
        (sections.first(), sections.last())
    {
        for k in 0..segments {
            quad(
                &mut out,
                p(rmin0, k, z0),
                p(rmin0, k + 1, z0),
                p(rmax0, k + 1, z0),
                p(rmax0, k, z0),
            );
            quad(
                &mut out,
                p(rmin1, k, z1),
                p(rmax1, k, z1),
                p(rmax1, k + 1, z1),
                p(rmin1, k + 1, z1),
            );
        }
    }
    out
}

/// ROOT's colour index as RGB: the basic colours 2–9 and the named wheels (`kRed`, `kAzure`…)
/// with their offsets (−10 lighter … +4 darker). White, black and the rest: `None`.
fn root_colour(index: i32) -> Option<[f32; 3]> {
    let basic = match index {
        2 => Some([1.0, 0.0, 0.0]),
        3 => Some([0.0, 1.0, 0.0]),
        4 => Some([0.0, 0.0, 1.0]),
        5 => Some([1.0, 1.0, 0.0]),
        6 => Some([1.0, 0.0, 1.0]),
        7 => Some([0.0, 1.0, 1.0]),
        8 => Some([0.35, 0.83, 0.33]),
        9 => Some([0.35, 0.33, 0.85]),
        _ => None,
    };
    if basic.is_some() {
        return basic;
    }
    const WHEEL: [(i32, [f32; 3]); 13] = [
        (400, [1.0, 1.0, 0.0]),
        (416, [0.0, 1.0, 0.0]),
        (432, [0.0, 1.0, 1.0]),
        (600, [0.0, 0.0, 1.0]),
        (616, [1.0, 0.0, 1.0]),
        (632, [1.0, 0.0, 0.0]),
        (800, [1.0, 0.6, 0.0]),
        (820, [0.6, 1.0, 0.0]),
        (840, [0.0, 1.0, 0.6]),
        (860, [0.0, 0.6, 1.0]),
        (880, [0.6, 0.0, 1.0]),
        (900, [1.0, 0.0, 0.6]),
        (920, [0.8, 0.8, 0.8]),
    ];
    let (base, rgb) = WHEEL
        .iter()
        .find(|(base, _)| (base - 10..=base + 4).contains(&index))?;
    let offset = (index - base) as f32;
    Some(rgb.map(|c| {
        if offset < 0.0 {
            c + (1.0 - c) * (-offset / 12.0)
        } else {
            c * (1.0 - offset / 8.0)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use super::enclosed_volume as enclosed;

    /// A polygon of `n` sides over the full circle, inscribed in radius `r` (as the mesh is).
    fn inscribed_area(r: f64, n: f64) -> f64 {
        0.5 * n * r * r * (2.0 * PI / n).sin()
    }

    proptest! {
        #[test]
        fn a_tube_segment_encloses_its_volume(
            rmin in 0.0f64..50.0, dr in 0.1f64..50.0, dz in 0.1f64..100.0,
            phi1 in -180.0f64..180.0, dphi in 1.0f64..360.0,
        ) {
            let rmax = rmin + dr;
            let mesh = revolve(&[(-dz, rmin, rmax), (dz, rmin, rmax)], (phi1, phi1 + dphi), None);
            let n = (CIRCLE_SEGMENTS * dphi / 360.0).ceil();
            let step = (dphi / n).to_radians();
            // Exact for the polygon the mesh is: n triangular wedges.
            let area = 0.5 * n * step.sin() * (rmax * rmax - rmin * rmin);
            let v = enclosed(&mesh);
            prop_assert!((v - area * 2.0 * dz).abs() <= 1e-9 * v.abs().max(1.0), "{v} vs {}", area * 2.0 * dz);
        }

        #[test]
        fn a_cone_and_a_polycone_enclose_their_frusta(
            r1 in 1.0f64..50.0, r2 in 1.0f64..50.0, r3 in 1.0f64..50.0, dz in 0.1f64..100.0,
        ) {
            let n = CIRCLE_SEGMENTS;
            // A frustum of polygons: h/3 (A1 + A2 + √(A1 A2)).
            let frustum = |a: f64, b: f64, h: f64| {
                let (a1, a2) = (inscribed_area(a, n), inscribed_area(b, n));
                h / 3.0 * (a1 + a2 + (a1 * a2).sqrt())
            };
            let cone = revolve(&[(-dz, 0.0, r1), (dz, 0.0, r2)], (0.0, 360.0), None);
            let want = frustum(r1, r2, 2.0 * dz);
            prop_assert!((enclosed(&cone) - want).abs() <= 1e-9 * want);
            let pcon = revolve(&[(-dz, 0.0, r1), (0.0, 0.0, r2), (dz, 0.0, r3)], (0.0, 360.0), None);
            let want = frustum(r1, r2, dz) + frustum(r2, r3, dz);
            prop_assert!((enclosed(&pcon) - want).abs() <= 1e-9 * want);
        }

        #[test]
        fn a_polygon_has_its_sides_at_the_radius(r in 1.0f64..100.0, edges in 3usize..24, dz in 0.1f64..10.0) {
            let mesh = revolve(&[(-dz, 0.0, r), (dz, 0.0, r)], (0.0, 360.0), Some(edges));
            // A regular polygon with apothem r: area n r² tan(π/n).
            let want = edges as f64 * r * r * (PI / edges as f64).tan() * 2.0 * dz;
            prop_assert!((enclosed(&mesh) - want).abs() <= 1e-9 * want);
        }

        #[test]
        fn hexahedra_face_outwards(dx1 in 0.1f64..10.0, dx2 in 0.1f64..10.0, dy in 0.1f64..10.0, dz in 0.1f64..10.0) {
            let face = |dx: f64, z: f64| [[-dx, -dy, z], [-dx, dy, z], [dx, dy, z], [dx, -dy, z]];
            let (b, t) = (face(dx1, -dz), face(dx2, dz));
            let mesh = hexahedron(&[b[0], b[1], b[2], b[3], t[0], t[1], t[2], t[3]]);
            // A trapezoidal prism: mean width × depth × height.
            let want = (dx1 + dx2) * 2.0 * dy * 2.0 * dz;
            prop_assert!((enclosed(&mesh) - want).abs() <= 1e-9 * want);
        }
    }

    fn data(rel: &str) -> Option<std::path::PathBuf> {
        let root = std::env::var_os("ALYX_TEST_DATA").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
            std::path::PathBuf::from,
        );
        let path = root.join(rel);
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            path.exists() || !ci,
            "{} is missing (CI=true)",
            path.display()
        );
        path.exists().then_some(path)
    }

    /// Bytes of a real geometry and of its streamer infos, changed at random places (and cut
    /// short): every result is a geometry or an error, never a panic or a runaway allocation.
    #[test]
    fn mutated_objects_are_errors_never_panics() {
        let Some(path) = data("geometry/phoenix_rootgeom.root") else {
            return;
        };
        let mut src = Source::new(std::fs::File::open(&path).expect("open")).expect("source");
        let keys = tfile::keys(&mut src).expect("keys");
        let key = keys
            .iter()
            .find(|k| k.class == "TGeoManager")
            .expect("geometry");
        let info_key = tfile::streamer_key(&mut src).expect("ok").expect("infos");
        let info = tfile::payload(&mut src, &info_key, MAX_OBJECT_BYTES, "infos").expect("infos");
        let streamers = Streamers::read(&info, info_key.header_length()).expect("streamers");
        let bytes = tfile::payload(&mut src, key, MAX_OBJECT_BYTES, "geometry").expect("bytes");
        let mut reader = Reader::new(&bytes, key.header_length(), &streamers);
        let manager = reader.top("TGeoManager").expect("the original reads");
        assert!(
            walk(&reader.arena, manager)
                .expect("walks")
                .placements
                .len()
                > 100
        );
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..3000 {
            let original = if case % 3 == 0 { &info } else { &bytes };
            let mut b = original.clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            if case % 7 == 0 {
                b.truncate((next() % b.len() as u64) as usize);
            }
            if case % 3 == 0 {
                if let Ok(s) = Streamers::read(&b, info_key.header_length()) {
                    let mut r = Reader::new(&bytes, key.header_length(), &s);
                    if let Ok(m) = r.top("TGeoManager") {
                        let _ = walk(&r.arena, m);
                    }
                }
            } else {
                let mut r = Reader::new(&b, key.header_length(), &streamers);
                if let Ok(m) = r.top("TGeoManager") {
                    let _ = walk(&r.arena, m);
                }
            }
        }
    }

    #[test]
    fn colours_follow_roots_wheel() {
        assert_eq!(root_colour(632), Some([1.0, 0.0, 0.0]));
        assert_eq!(root_colour(2), Some([1.0, 0.0, 0.0]));
        assert_eq!(root_colour(1), None);
        let darker = root_colour(632 + 2).expect("kRed+2");
        let lighter = root_colour(632 - 7).expect("kRed-7");
        assert!(darker[0] < 1.0 && lighter[1] > 0.0);
    }

    #[test]
    fn composition_applies_the_inner_matrix_first() {
        let shift: Affine = [
            [1.0, 0.0, 0.0, 5.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ];
        let quarter: Affine = [
            [0.0, -1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ];
        let p = Placement {
            path: String::new(),
            volume: 0,
            matrix: compose(&quarter, &shift),
            drawn: true,
        };
        // Shifted to (5,0,0), then turned a quarter: (0,5,0).
        let q = p.apply([0.0, 0.0, 0.0]);
        assert!((q[0]).abs() < 1e-12 && (q[1] - 5.0).abs() < 1e-12);
    }
}

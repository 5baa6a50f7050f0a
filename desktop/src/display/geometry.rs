//! Detector geometry from the files experiments publish, drawn around the event instead of the
//! built-in barrel: glTF through Bevy's own loader (glTF's unit is the metre, by its
//! specification), Wavefront OBJ through `tobj` (the format has no unit: millimetres unless
//! the user says otherwise, as TrackML, ACTS and Phoenix write them) and ROOT TGeo geometries
//! through `alyx_rootio::tgeo` (centimetres, TGeo's unit; each logical volume one mesh with all
//! its placements, drawn as ROOT's visibility bits say). Each mesh node or logical volume is a
//! volume the user can hide or make more or less transparent; a volume's extent (ρ and |z|,
//! cm) is measured from its vertices as placed, so the panel and the tests can check what is
//! drawn against the physics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bevy::asset::{LoadState, RenderAssetUsages};
use bevy::gltf::{Gltf, GltfMaterial, GltfMesh, GltfNode};
use bevy::mesh::{Indices, PrimitiveTopology, VertexAttributeValues};
use bevy::prelude::*;
use bevy_egui::egui;
use serde::{Deserialize, Serialize};

use crate::display::model::DisplaySystems;
use crate::display::model::ScreenshotJob;

/// The asset source glTF files load through: the file system from its root, so that a geometry
/// can be anywhere the user keeps it (registered in `app::build`, before the asset plugin).
pub const ASSET_SOURCE: &str = "geometry";

/// The biggest OBJ file read (a detector's simplified geometry is a few MB).
const MAX_OBJ_BYTES: u64 = 512 << 20;

/// The most triangles drawn from one TGeo file (each placement of a volume is its own copy).
const MAX_TGEO_TRIANGLES: usize = 4 << 20;

/// How deep glTF node hierarchies are followed.
const MAX_NODE_DEPTH: usize = 64;

/// Opacity a volume starts with, at most: the event must show through the detector.
const DEFAULT_OPACITY: f32 = 0.25;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthUnit {
    Mm,
    Cm,
    M,
}

impl LengthUnit {
    pub fn in_cm(self) -> f32 {
        match self {
            Self::Mm => 0.1,
            Self::Cm => 1.0,
            Self::M => 100.0,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "mm" => Some(Self::Mm),
            "cm" => Some(Self::Cm),
            "m" => Some(Self::M),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryFormat {
    Gltf,
    Obj,
    Root,
}

/// A geometry file and the unit of its lengths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeometryFile {
    pub path: PathBuf,
    pub unit: LengthUnit,
}

impl GeometryFile {
    /// `PATH` or `PATH@UNIT` (mm, cm or m); checks that the format is one ALYX reads and that
    /// the file is there.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let (path, unit) = match spec.rsplit_once('@') {
            Some((path, unit)) if LengthUnit::parse(unit).is_some() => {
                (Path::new(path), LengthUnit::parse(unit))
            }
            _ => (Path::new(spec), None),
        };
        let format = format_of(path)?;
        let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let unit = unit.unwrap_or(match format {
            GeometryFormat::Gltf => LengthUnit::M,
            GeometryFormat::Obj => LengthUnit::Mm,
            GeometryFormat::Root => LengthUnit::Cm,
        });
        Ok(Self { path, unit })
    }

    pub fn format(&self) -> Result<GeometryFormat, String> {
        format_of(&self.path)
    }
}

fn format_of(path: &Path) -> Result<GeometryFormat, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("gltf" | "glb") => Ok(GeometryFormat::Gltf),
        Some("obj") => Ok(GeometryFormat::Obj),
        Some("root") => Ok(GeometryFormat::Root),
        _ => Err(format!(
            "{}: not a geometry file ALYX reads (glTF .gltf/.glb, Wavefront .obj or a ROOT \
             TGeo .root)",
            path.display()
        )),
    }
}

/// The geometry files drawn around the event; none: the built-in barrel.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct Geometry {
    pub files: Vec<GeometryFile>,
}

/// Where a volume reaches, cm, as drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extent {
    pub rho_min: f32,
    pub rho_max: f32,
    pub z_max: f32,
}

impl Extent {
    const EMPTY: Self = Self {
        rho_min: f32::INFINITY,
        rho_max: 0.0,
        z_max: 0.0,
    };

    fn add(&mut self, p: Vec3) {
        if !p.is_finite() {
            return;
        }
        let rho = p.x.hypot(p.y);
        self.rho_min = self.rho_min.min(rho);
        self.rho_max = self.rho_max.max(rho);
        self.z_max = self.z_max.max(p.z.abs());
    }

    fn union(self, other: Self) -> Self {
        Self {
            rho_min: self.rho_min.min(other.rho_min),
            rho_max: self.rho_max.max(other.rho_max),
            z_max: self.z_max.max(other.z_max),
        }
    }
}

/// One named part of the detector, as the user sees it in the panel.
#[derive(Clone, Debug)]
pub struct Volume {
    pub name: String,
    pub file: PathBuf,
    pub visible: bool,
    pub opacity: f32,
    pub colour: [f32; 3],
    pub extent: Extent,
    material: Handle<StandardMaterial>,
    entities: Vec<Entity>,
}

/// The volumes drawn and the files still loading or that failed.
#[derive(Resource, Default)]
pub struct Volumes {
    pub list: Vec<Volume>,
    pub errors: Vec<String>,
    pending: Vec<(GeometryFile, Handle<Gltf>)>,
    shown: Vec<GeometryFile>,
}

impl Volumes {
    pub fn loading(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Volume> {
        self.list.iter().find(|v| v.name == name)
    }

    /// Shows or hides every volume called `name`; false when there is none.
    pub fn set_visible(&mut self, name: &str, visible: bool) -> bool {
        let mut found = false;
        for v in self.list.iter_mut().filter(|v| v.name == name) {
            v.visible = visible;
            found = true;
        }
        found
    }
}

/// The geometry chosen for each dataset, by dataset name (saved with the settings): opening a
/// dataset brings its geometry back.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct GeometryByDataset(pub BTreeMap<String, Vec<GeometryFile>>);

/// Volumes to hide once loaded (`alyx --hide-volume`).
#[derive(Resource, Clone, Debug, Default)]
pub struct HiddenVolumes(pub Vec<String>);

#[derive(Component)]
struct GeometryMesh;

pub struct GeometryPlugin;

impl Plugin for GeometryPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Geometry>()
            .init_resource::<Volumes>()
            .init_resource::<HiddenVolumes>()
            .init_resource::<GeometryByDataset>()
            .add_systems(
                Update,
                (per_dataset, load_geometry, finish_gltf, style_volumes)
                    .chain()
                    .after(DisplaySystems::Logic),
            );
    }
}

fn volume_material(colour: [f32; 3], opacity: f32) -> StandardMaterial {
    StandardMaterial {
        base_color: Color::srgba(colour[0], colour[1], colour[2], opacity),
        unlit: true,
        alpha_mode: AlphaMode::Blend,
        double_sided: true,
        cull_mode: None,
        ..default()
    }
}

/// Keeps each dataset's geometry: a dataset opened brings back the geometry last chosen for it
/// (none: the built-in barrel); a geometry chosen is remembered for the dataset on display. At
/// start, a geometry given on the command line wins.
fn per_dataset(
    dataset: Option<Res<crate::OpenDataset>>,
    mut geometry: ResMut<Geometry>,
    mut by_dataset: ResMut<GeometryByDataset>,
    mut last: Local<Option<String>>,
) {
    let Some(dataset) = dataset else { return };
    let name = dataset.0.name().to_owned();
    if last.as_deref() != Some(name.as_str()) {
        let first = last.is_none();
        *last = Some(name.clone());
        if first && !geometry.files.is_empty() {
            by_dataset.0.insert(name, geometry.files.clone());
        } else {
            let files = by_dataset.0.get(&name).cloned().unwrap_or_default();
            if geometry.files != files {
                geometry.files = files;
            }
        }
    } else if geometry.is_changed() && by_dataset.0.get(&name) != Some(&geometry.files) {
        if geometry.files.is_empty() {
            by_dataset.0.remove(&name);
        } else {
            by_dataset.0.insert(name, geometry.files.clone());
        }
    }
}

/// Starts loading what `Geometry` names when it changes, dropping what was drawn before.
fn load_geometry(
    mut commands: Commands,
    geometry: Res<Geometry>,
    mut volumes: ResMut<Volumes>,
    server: Res<AssetServer>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    hidden: Res<HiddenVolumes>,
) {
    if volumes.shown == geometry.files {
        return;
    }
    for v in volumes.list.drain(..) {
        for e in v.entities {
            commands.entity(e).despawn();
        }
    }
    volumes.errors.clear();
    volumes.pending.clear();
    volumes.shown = geometry.files.clone();
    for file in &geometry.files {
        match file.format() {
            Ok(GeometryFormat::Gltf) => {
                let path = format!(
                    "{ASSET_SOURCE}://{}",
                    file.path.to_string_lossy().trim_start_matches('/')
                );
                volumes.pending.push((file.clone(), server.load(path)));
            }
            Ok(format @ (GeometryFormat::Obj | GeometryFormat::Root)) => {
                match read_meshes(format, &file.path) {
                    Ok((models, notes)) => {
                        volumes.errors.extend(notes);
                        for (name, colour, mesh) in models {
                            let transform = Transform::from_scale(Vec3::splat(file.unit.in_cm()));
                            let extent = mesh_extent(&mesh, &transform);
                            let material = materials.add(volume_material(colour, DEFAULT_OPACITY));
                            let entity = commands
                                .spawn((
                                    Mesh3d(meshes.add(mesh)),
                                    MeshMaterial3d(material.clone()),
                                    transform,
                                    GeometryMesh,
                                ))
                                .id();
                            volumes.list.push(Volume {
                                visible: !hidden.0.contains(&name),
                                name,
                                file: file.path.clone(),
                                opacity: DEFAULT_OPACITY,
                                colour,
                                extent,
                                material,
                                entities: vec![entity],
                            });
                        }
                    }
                    Err(e) => volumes.errors.push(e),
                }
            }
            Err(e) => volumes.errors.push(e),
        }
    }
    for e in &volumes.errors {
        warn!("geometry: {e}");
    }
}

/// A mesh the file names, its colour, and its triangles.
type NamedMesh = (String, [f32; 3], Mesh);

/// The grey of volumes whose file gives no colour.
const DEFAULT_COLOUR: [f32; 3] = [0.6, 0.6, 0.7];

/// The meshes of an OBJ or TGeo file, and what was left out of them.
fn read_meshes(
    format: GeometryFormat,
    path: &Path,
) -> Result<(Vec<NamedMesh>, Vec<String>), String> {
    match format {
        GeometryFormat::Root => read_tgeo(path),
        _ => Ok((
            read_obj(path)?
                .into_iter()
                .map(|(name, mesh)| (name, DEFAULT_COLOUR, mesh))
                .collect(),
            Vec::new(),
        )),
    }
}

/// Reads a ROOT TGeo geometry into one mesh per logical volume, its drawn placements baked in.
fn read_tgeo(path: &Path) -> Result<(Vec<NamedMesh>, Vec<String>), String> {
    let g = alyx_rootio::tgeo::read(path).map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let mut by_volume: Vec<Vec<&alyx_rootio::tgeo::Placement>> = vec![Vec::new(); g.volumes.len()];
    for p in g.placements.iter().filter(|p| p.drawn) {
        by_volume[p.volume].push(p);
    }
    let mut budget = MAX_TGEO_TRIANGLES;
    let mut out = Vec::new();
    for (volume, placements) in g.volumes.iter().zip(by_volume) {
        if placements.is_empty() {
            continue;
        }
        let wanted = volume.mesh.len().saturating_mul(placements.len());
        if wanted > budget {
            notes.push(format!(
                "{}: more than {MAX_TGEO_TRIANGLES} triangles; `{}` and the volumes after it \
                 are not drawn",
                path.display(),
                volume.name
            ));
            break;
        }
        budget -= wanted;
        let mut positions = Vec::with_capacity(wanted * 3);
        let mut normals = Vec::with_capacity(wanted * 3);
        for p in placements {
            for t in &volume.mesh {
                let [a, b, c] = t.map(|v| Vec3::from(p.apply(v).map(|x| x as f32)));
                let n = (b - a).cross(c - a).normalize_or_zero();
                positions.extend([a, b, c].map(|v| v.to_array()));
                normals.extend([n.to_array(); 3]);
            }
        }
        let mesh = Mesh::new(
            PrimitiveTopology::TriangleList,
            RenderAssetUsages::default(),
        )
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
        .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, normals);
        out.push((
            volume.name.clone(),
            volume.colour.unwrap_or(DEFAULT_COLOUR),
            mesh,
        ));
    }
    for (shape, n) in &g.not_drawn {
        notes.push(format!(
            "{}: {n} placement(s) of {shape} not drawn (a shape ALYX does not tessellate)",
            path.display()
        ));
    }
    if let Some(why) = &g.truncated {
        notes.push(format!("{}: geometry cut short: {why}", path.display()));
    }
    if out.is_empty() {
        return Err(format!("{}: no visible volume to draw", path.display()));
    }
    Ok((out, notes))
}

/// Reads an OBJ file into one mesh per object, each index checked against its vertices.
fn read_obj(path: &Path) -> Result<Vec<(String, Mesh)>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let size = std::fs::metadata(path).map_err(|e| at(&e))?.len();
    if size > MAX_OBJ_BYTES {
        return Err(at(&format!(
            "{size} bytes, more than the {MAX_OBJ_BYTES} an OBJ geometry may have"
        )));
    }
    let options = tobj::LoadOptions {
        triangulate: true,
        single_index: true,
        ignore_points: true,
        ignore_lines: true,
        ..Default::default()
    };
    let file = std::fs::File::open(path).map_err(|e| at(&e))?;
    // Materials (`mtllib`) are not followed: volumes take the panel's colours.
    let (models, _) = tobj::load_obj_buf(&mut std::io::BufReader::new(file), &options, |_| {
        Err(tobj::LoadError::OpenFileFailed)
    })
    .map_err(|e| at(&e))?;
    let stem = path
        .file_stem()
        .map_or_else(|| "obj".into(), |s| s.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for (i, model) in models.into_iter().enumerate() {
        let m = model.mesh;
        let vertices = m.positions.len() / 3;
        if m.indices.is_empty() || m.indices.iter().any(|&i| i as usize >= vertices) {
            return Err(at(&format!(
                "object `{}` has a face with a vertex it does not define",
                model.name
            )));
        }
        let positions: Vec<[f32; 3]> = m
            .positions
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        let mut mesh = Mesh::new(
            PrimitiveTopology::TriangleList,
            RenderAssetUsages::default(),
        )
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
        .with_inserted_indices(Indices::U32(m.indices));
        if m.normals.len() == m.positions.len() {
            let normals: Vec<[f32; 3]> = m
                .normals
                .chunks_exact(3)
                .map(|n| [n[0], n[1], n[2]])
                .collect();
            mesh.insert_attribute(Mesh::ATTRIBUTE_NORMAL, normals);
        } else {
            mesh.compute_normals();
        }
        let name = if model.name.is_empty() || model.name == "unnamed_object" {
            if i == 0 {
                stem.clone()
            } else {
                format!("{stem} {i}")
            }
        } else {
            model.name
        };
        out.push((name, mesh));
    }
    if out.is_empty() {
        return Err(at(&"no faces"));
    }
    Ok(out)
}

fn mesh_extent(mesh: &Mesh, transform: &Transform) -> Extent {
    let mut extent = Extent::EMPTY;
    if let Some(VertexAttributeValues::Float32x3(positions)) =
        mesh.attribute(Mesh::ATTRIBUTE_POSITION)
    {
        for p in positions {
            extent.add(transform.transform_point(Vec3::from(*p)));
        }
    }
    extent
}

/// Spawns each loaded glTF's mesh nodes as volumes, where they sit in its node hierarchy.
#[allow(clippy::too_many_arguments)]
fn finish_gltf(
    mut commands: Commands,
    mut volumes: ResMut<Volumes>,
    server: Res<AssetServer>,
    gltfs: Res<Assets<Gltf>>,
    nodes: Res<Assets<GltfNode>>,
    gltf_meshes: Res<Assets<GltfMesh>>,
    gltf_materials: Res<Assets<GltfMaterial>>,
    meshes: Res<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    hidden: Res<HiddenVolumes>,
    job: Option<ResMut<ScreenshotJob>>,
) {
    if volumes.pending.is_empty() {
        return;
    }
    if let Some(mut job) = job {
        job.hold();
    }
    let pending = std::mem::take(&mut volumes.pending);
    for (file, handle) in pending {
        if let LoadState::Failed(e) = server.load_state(&handle) {
            let e = format!("{}: {e}", file.path.display());
            warn!("geometry: {e}");
            volumes.errors.push(e);
            continue;
        }
        let Some(gltf) = gltfs
            .get(&handle)
            .filter(|_| server.is_loaded_with_dependencies(&handle))
        else {
            volumes.pending.push((file, handle));
            continue;
        };
        let children: std::collections::HashSet<AssetId<GltfNode>> = gltf
            .nodes
            .iter()
            .filter_map(|h| nodes.get(h))
            .flat_map(|n| n.children.iter().map(Handle::id))
            .collect();
        let scale = Transform::from_scale(Vec3::splat(file.unit.in_cm()));
        // Depth-first from the roots, each node's transform on its parent's.
        let mut stack: Vec<(Handle<GltfNode>, Transform, usize)> = gltf
            .nodes
            .iter()
            .filter(|h| !children.contains(&h.id()))
            .map(|h| (h.clone(), scale, 0))
            .collect();
        let mut visits = 0usize;
        while let Some((handle, parent, depth)) = stack.pop() {
            visits += 1;
            let Some(node) = nodes.get(&handle) else {
                continue;
            };
            if depth > MAX_NODE_DEPTH || visits > gltf.nodes.len().saturating_mul(4) {
                volumes.errors.push(format!(
                    "{}: its node hierarchy is deeper than {MAX_NODE_DEPTH} or cyclic; \
                     the rest is not drawn",
                    file.path.display()
                ));
                break;
            }
            let placed = parent.mul_transform(node.transform);
            for child in &node.children {
                stack.push((child.clone(), placed, depth + 1));
            }
            let Some(mesh) = node.mesh.as_ref().and_then(|m| gltf_meshes.get(m)) else {
                continue;
            };
            let colour = mesh
                .primitives
                .iter()
                .find_map(|p| gltf_materials.get(p.material.as_ref()?))
                .map(|m| m.base_color.to_srgba());
            let (colour, alpha) = colour.map_or(([0.7, 0.7, 0.8], 1.0), |c| {
                ([c.red, c.green, c.blue], c.alpha)
            });
            let opacity = alpha.min(DEFAULT_OPACITY);
            let material = materials.add(volume_material(colour, opacity));
            let mut extent = Extent::EMPTY;
            let mut entities = Vec::new();
            for primitive in &mesh.primitives {
                if let Some(m) = meshes.get(&primitive.mesh) {
                    extent = extent.union(mesh_extent(m, &placed));
                }
                entities.push(
                    commands
                        .spawn((
                            Mesh3d(primitive.mesh.clone()),
                            MeshMaterial3d(material.clone()),
                            placed,
                            GeometryMesh,
                        ))
                        .id(),
                );
            }
            volumes.list.push(Volume {
                name: node.name.clone(),
                file: file.path.clone(),
                visible: !hidden.0.contains(&node.name),
                opacity,
                colour,
                extent,
                material,
                entities,
            });
        }
    }
    if volumes.pending.is_empty() {
        for name in &hidden.0 {
            if volumes.get(name).is_none() {
                let e = format!("no volume `{name}` to hide");
                warn!("geometry: {e}");
                volumes.errors.push(e);
            }
        }
    }
}

/// Applies the panel's visibility and opacity to what is drawn.
fn style_volumes(
    volumes: Res<Volumes>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut drawn: Query<&mut Visibility, With<GeometryMesh>>,
) {
    if !volumes.is_changed() {
        return;
    }
    for v in &volumes.list {
        let opacity = v.opacity.clamp(0.0, 1.0);
        let stale = materials
            .get(&v.material)
            .is_some_and(|m| m.base_color.alpha() != opacity);
        if stale && let Some(mut m) = materials.get_mut(&v.material) {
            m.base_color.set_alpha(opacity);
        }
        let wanted = if v.visible && v.opacity > 0.0 {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        };
        for e in &v.entities {
            if let Ok(mut visibility) = drawn.get_mut(*e)
                && *visibility != wanted
            {
                *visibility = wanted;
            }
        }
    }
}

/// The side panel's part: each volume with its visibility, opacity and extent; what the user
/// changed, as (volume index, visible, opacity).
pub fn volumes_ui(ui: &mut egui::Ui, volumes: &Volumes) -> Vec<(usize, bool, f32)> {
    if volumes.loading() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("loading geometry…");
        });
    }
    for e in &volumes.errors {
        ui.colored_label(egui::Color32::from_rgb(255, 120, 100), e);
    }
    let mut changed = Vec::new();
    for (i, v) in volumes.list.iter().enumerate() {
        let (mut visible, mut opacity) = (v.visible, v.opacity);
        ui.horizontal(|ui| {
            ui.checkbox(&mut visible, &v.name).on_hover_text(format!(
                "{}\nρ {:.0}–{:.0} cm, |z| ≤ {:.0} cm",
                v.file.display(),
                v.extent.rho_min,
                v.extent.rho_max,
                v.extent.z_max
            ));
            ui.add(egui::Slider::new(&mut opacity, 0.0..=1.0).text("opacity"));
        });
        if visible != v.visible || opacity != v.opacity {
            changed.push((i, visible, opacity));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rel: &str) -> Option<PathBuf> {
        let root = std::env::var_os("ALYX_TEST_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let path = root.join(rel);
        if path.exists() {
            Some(path)
        } else {
            assert!(
                std::env::var("CI").is_err(),
                "{} is missing (CI=true)",
                path.display()
            );
            None
        }
    }

    #[test]
    fn formats_and_units_follow_the_file() {
        let Some(obj) = data("geometry/TrackML_beampipe_simplified.obj") else {
            return;
        };
        let f = GeometryFile::parse(obj.to_str().expect("utf8")).expect("obj");
        assert_eq!(f.unit, LengthUnit::Mm);
        let f = GeometryFile::parse(&format!("{}@cm", obj.display())).expect("obj in cm");
        assert_eq!(f.unit, LengthUnit::Cm);
        let gltf = data("geometry/CMS_cms.gltf").expect("with the OBJ");
        assert_eq!(
            GeometryFile::parse(gltf.to_str().expect("utf8"))
                .expect("gltf")
                .unit,
            LengthUnit::M
        );
        let root = data("geometry/phoenix_rootgeom.root").expect("with the OBJ");
        let f = GeometryFile::parse(root.to_str().expect("utf8")).expect("TGeo");
        assert_eq!(f.unit, LengthUnit::Cm);
        let e = GeometryFile::parse("/tmp/event.json").expect_err("not geometry");
        assert!(e.contains("TGeo"), "{e}");
        let e = GeometryFile::parse("/nowhere/cms.gltf").expect_err("missing");
        assert!(e.contains("/nowhere/cms.gltf"), "{e}");
    }

    /// The TrackML beam pipe: a tube from 18.5 to 19.5 mm in radius (as its vertices say), 6 m
    /// long.
    #[test]
    fn an_obj_beam_pipe_is_a_tube_in_cm() {
        let Some(obj) = data("geometry/TrackML_beampipe_simplified.obj") else {
            return;
        };
        let models = read_obj(&obj).expect("reads");
        assert_eq!(models.len(), 1);
        let extent = mesh_extent(&models[0].1, &Transform::from_scale(Vec3::splat(0.1)));
        assert!((extent.rho_min - 1.85).abs() < 0.01, "{extent:?}");
        assert!((extent.rho_max - 1.95).abs() < 0.01, "{extent:?}");
        assert!((extent.z_max - 300.0).abs() < 0.01, "{extent:?}");
    }

    /// Phoenix's TGeo test geometry: its visible volumes, one mesh each with every drawn
    /// placement, spanning what the placements say — layers 10 cm thick up to z = 105 cm
    /// (`ROOT_5`), so the drawn geometry ends at |z| = 110 cm, as uproot's reading of the
    /// placements and shapes gives.
    #[test]
    fn a_tgeo_geometry_is_one_mesh_per_visible_volume() {
        let Some(root) = data("geometry/phoenix_rootgeom.root") else {
            return;
        };
        let (meshes, notes) = read_tgeo(&root).expect("reads");
        assert!(notes.is_empty(), "{notes:?}");
        let names: Vec<&str> = meshes.iter().map(|(n, _, _)| n.as_str()).collect();
        for name in ["bar1", "bar2", "tub1", "bar3", "bar4", "bar5", "bar6"] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        // Containers (TOP, REPLICA, ROOT, R, O, T) are invisible in the file.
        assert!(
            !names.contains(&"TOP") && !names.contains(&"REPLICA"),
            "{names:?}"
        );
        let extent = meshes
            .iter()
            .map(|(_, _, m)| mesh_extent(m, &Transform::IDENTITY))
            .fold(Extent::EMPTY, Extent::union);
        assert!((extent.z_max - 110.0).abs() < 1e-3, "{extent:?}");
        // Red (kRed, 632) bars as the file colours them.
        let bar1 = meshes.iter().find(|(n, _, _)| n == "bar1").expect("bar1");
        assert_eq!(bar1.1, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn an_obj_face_beyond_its_vertices_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.obj");
        std::fs::write(&path, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n").expect("write");
        let e = read_obj(&path).expect_err("bad face");
        assert!(e.contains("bad.obj"), "{e}");
    }
}

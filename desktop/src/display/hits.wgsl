// Hit instances: one mesh (icosphere, octahedron or point sprite) drawn once per hit, placed and
// coloured by a per-instance attribute. The mesh is billboarded (its local axes are the view's),
// so every level of detail reads as a round dot, shaded brighter towards the viewer.

#import bevy_pbr::mesh_view_bindings::view
#import bevy_pbr::view_transformations::{position_world_to_view, position_view_to_clip}

// The smallest a dot gets on screen, in pixels (radius), however far the camera is.
const MIN_RADIUS_PX: f32 = 1.25;

struct Vertex {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    // xyz: the hit's position (cm); w: the radius the mesh is scaled to.
    @location(3) i_pos_scale: vec4<f32>,
    @location(4) i_color: vec4<f32>,
};

struct VertexOutput {
    @builtin(position) clip_position: vec4<f32>,
    @location(0) color: vec4<f32>,
};

@vertex
fn vertex(vertex: Vertex) -> VertexOutput {
    let centre = position_world_to_view(vertex.i_pos_scale.xyz);
    // Pixels per cm at this depth: half the viewport height times the focal scale, over depth
    // in perspective; the same everywhere in an orthographic view (w does not follow depth).
    let orthographic = view.clip_from_view[3][3] == 1.0;
    let depth = select(max(-centre.z, 1e-3), 1.0, orthographic);
    let px_per_cm = 0.5 * view.viewport.w * view.clip_from_view[1][1] / depth;
    let radius = max(vertex.i_pos_scale.w, MIN_RADIUS_PX / px_per_cm);
    let view_position = centre + vertex.position * radius;
    var out: VertexOutput;
    out.clip_position = position_view_to_clip(view_position);
    let shade = 0.55 + 0.45 * max(vertex.normal.z, 0.0);
    out.color = vec4<f32>(vertex.i_color.rgb * shade, vertex.i_color.a);
    return out;
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    return in.color;
}

//! GPU instancing of hits: one entity carries all drawn hits as one instance buffer (position,
//! size, colour per instance) and is drawn with one mesh (the level of detail's) in one draw
//! call — never one entity, mesh or material per hit. Hits are sorted by time, so the unfolding
//! animation draws a prefix of the buffer (`HitBatch::visible`) without touching it.
//!
//! `HitBatch` is plain data and lives in the main world (the event display's logic and its
//! headless tests use it); `HitInstancingPlugin` adds the render side: a pipeline specialised
//! from Bevy's mesh pipeline with `hits.wgsl`, a vertex buffer per batch (re-uploaded only when
//! the batch changes) and an instanced draw.

use std::sync::Arc;

use bevy::core_pipeline::core_3d::{Transparent3d, TransparentSortingInfo3d};
use bevy::ecs::query::QueryItem;
use bevy::ecs::system::SystemParamItem;
use bevy::ecs::system::lifetimeless::{Read, SRes};
use bevy::mesh::{MeshVertexBufferLayoutRef, VertexBufferLayout};
use bevy::pbr::{
    MeshPipeline, MeshPipelineKey, MeshPipelineSystems, RenderMeshInstances, SetMeshBindGroup,
    SetMeshViewBindGroup, SetMeshViewBindingArrayBindGroup, ViewKeyCache,
};
use bevy::prelude::*;
use bevy::render::extract_component::{ExtractComponent, ExtractComponentPlugin};
use bevy::render::mesh::allocator::MeshAllocator;
use bevy::render::mesh::{RenderMesh, RenderMeshBufferInfo};
use bevy::render::render_asset::RenderAssets;
use bevy::render::render_phase::{
    AddRenderCommand, DrawFunctions, PhaseItem, PhaseItemExtraIndex, RenderCommand,
    RenderCommandResult, SetItemPipeline, TrackedRenderPass, ViewSortedRenderPhases,
};
use bevy::render::render_resource::{
    BufferInitDescriptor, BufferUsages, PipelineCache, RenderPipelineDescriptor,
    SpecializedMeshPipeline, SpecializedMeshPipelineError, SpecializedMeshPipelines,
    VertexAttribute, VertexFormat, VertexStepMode,
};
use bevy::render::renderer::RenderDevice;
use bevy::render::sync_component::SyncComponent;
use bevy::render::sync_world::MainEntity;
use bevy::render::view::ExtractedView;
use bevy::render::{Render, RenderApp, RenderStartup, RenderSystems};

/// One hit as the GPU sees it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct HitInstanceData {
    pub position_cm: [f32; 3],
    /// Radius of the drawn dot, cm.
    pub radius_cm: f32,
    /// Linear RGBA.
    pub colour: [f32; 4],
}

/// All drawn hits, in time order: one entity, one mesh, one draw.
#[derive(Component, Clone, Debug)]
pub struct HitBatch {
    pub instances: Arc<Vec<HitInstanceData>>,
    /// Each instance's time (ns after the collision), ascending.
    pub times_ns: Arc<Vec<f32>>,
    /// How many instances are drawn: all of them, or those reached by the animation.
    pub visible: usize,
    /// Changes whenever `instances` does, so the GPU buffer is rebuilt only then.
    pub generation: u64,
}

impl HitBatch {
    /// Draws the hits whose time is at most `t_ns` (all of them for `None`).
    pub fn show_until(&mut self, t_ns: Option<f32>) {
        self.visible = match t_ns {
            Some(t) => self.times_ns.partition_point(|x| *x <= t),
            None => self.instances.len(),
        };
    }
}

impl SyncComponent for HitBatch {
    type Target = Self;
}

impl ExtractComponent for HitBatch {
    type QueryData = &'static HitBatch;
    type QueryFilter = ();
    type Out = Self;

    fn extract_component(item: QueryItem<'_, '_, Self::QueryData>) -> Option<Self> {
        // Cheap: the instances are shared, not copied.
        Some(item.clone())
    }
}

pub struct HitInstancingPlugin;

impl Plugin for HitInstancingPlugin {
    fn build(&self, app: &mut App) {
        bevy::asset::embedded_asset!(app, "hits.wgsl");
        app.add_plugins(ExtractComponentPlugin::<HitBatch>::default());
        let Some(render) = app.get_sub_app_mut(RenderApp) else {
            return;
        };
        render
            .add_render_command::<Transparent3d, DrawHits>()
            .init_resource::<SpecializedMeshPipelines<HitPipeline>>()
            .add_systems(RenderStartup, init_pipeline.after(MeshPipelineSystems))
            .add_systems(
                Render,
                (
                    queue_hits.in_set(RenderSystems::QueueMeshes),
                    prepare_buffers.in_set(RenderSystems::PrepareResources),
                ),
            );
    }
}

#[derive(Resource)]
struct HitPipeline {
    shader: Handle<Shader>,
    mesh_pipeline: MeshPipeline,
}

fn init_pipeline(
    mut commands: Commands,
    asset_server: Res<AssetServer>,
    mesh_pipeline: Res<MeshPipeline>,
) {
    commands.insert_resource(HitPipeline {
        shader: bevy::asset::load_embedded_asset!(asset_server.as_ref(), "hits.wgsl"),
        mesh_pipeline: mesh_pipeline.clone(),
    });
}

impl SpecializedMeshPipeline for HitPipeline {
    type Key = MeshPipelineKey;

    fn specialize(
        &self,
        key: Self::Key,
        layout: &MeshVertexBufferLayoutRef,
    ) -> Result<RenderPipelineDescriptor, SpecializedMeshPipelineError> {
        let mut descriptor = self.mesh_pipeline.specialize(key, layout)?;
        descriptor.vertex.shader = self.shader.clone();
        descriptor.vertex.buffers.push(VertexBufferLayout {
            array_stride: size_of::<HitInstanceData>() as u64,
            step_mode: VertexStepMode::Instance,
            attributes: vec![
                // Locations 0–2 are the mesh's position, normal and uv.
                VertexAttribute {
                    format: VertexFormat::Float32x4,
                    offset: 0,
                    shader_location: 3,
                },
                VertexAttribute {
                    format: VertexFormat::Float32x4,
                    offset: VertexFormat::Float32x4.size(),
                    shader_location: 4,
                },
            ],
        });
        if let Some(fragment) = descriptor.fragment.as_mut() {
            fragment.shader = self.shader.clone();
        }
        Ok(descriptor)
    }
}

#[allow(clippy::too_many_arguments)]
fn queue_hits(
    draw_functions: Res<DrawFunctions<Transparent3d>>,
    hit_pipeline: Option<Res<HitPipeline>>,
    mut pipelines: ResMut<SpecializedMeshPipelines<HitPipeline>>,
    pipeline_cache: Res<PipelineCache>,
    meshes: Res<RenderAssets<RenderMesh>>,
    render_mesh_instances: Res<RenderMeshInstances>,
    batches: Query<(Entity, &MainEntity), With<HitBatch>>,
    mut phases: ResMut<ViewSortedRenderPhases<Transparent3d>>,
    views: Query<&ExtractedView>,
    view_key_cache: Res<ViewKeyCache>,
) {
    let Some(hit_pipeline) = hit_pipeline else {
        return;
    };
    let draw = draw_functions.read().id::<DrawHits>();
    for view in &views {
        let Some(phase) = phases.get_mut(&view.retained_view_entity) else {
            continue;
        };
        let Some(&view_key) = view_key_cache.get(&view.retained_view_entity) else {
            continue;
        };
        for (entity, main_entity) in &batches {
            let Some(mesh_instance) = render_mesh_instances.render_mesh_queue_data(*main_entity)
            else {
                continue;
            };
            let Some(mesh) = meshes.get(mesh_instance.mesh_asset_id()) else {
                continue;
            };
            let key = view_key
                | MeshPipelineKey::from_primitive_topology_and_strip_index(
                    mesh.primitive_topology(),
                    mesh.index_format(),
                );
            let pipeline =
                match pipelines.specialize(&pipeline_cache, &hit_pipeline, key, &mesh.layout) {
                    Ok(pipeline) => pipeline,
                    Err(e) => {
                        error!("hit pipeline: {e}");
                        continue;
                    }
                };
            phase.add_transient(Transparent3d {
                sorting_info: TransparentSortingInfo3d::Sorted {
                    mesh_center: Vec3::ZERO,
                    depth_bias: 0.0,
                },
                entity: (entity, *main_entity),
                pipeline,
                draw_function: draw,
                distance: 0.0,
                batch_range: 0..1,
                extra_index: PhaseItemExtraIndex::None,
                indexed: true,
            });
        }
    }
}

/// The GPU copy of a batch's instances.
#[derive(Component)]
struct InstanceBuffer {
    buffer: bevy::render::render_resource::Buffer,
    generation: u64,
    visible: u32,
}

fn prepare_buffers(
    mut commands: Commands,
    mut batches: Query<(Entity, &HitBatch, Option<&mut InstanceBuffer>)>,
    device: Res<RenderDevice>,
) {
    for (entity, batch, buffer) in &mut batches {
        let visible = batch.visible.min(batch.instances.len()) as u32;
        match buffer {
            Some(mut buffer) if buffer.generation == batch.generation => buffer.visible = visible,
            _ => {
                let buffer = device.create_buffer_with_data(&BufferInitDescriptor {
                    label: Some("alyx hit instances"),
                    contents: bytemuck::cast_slice(batch.instances.as_slice()),
                    usage: BufferUsages::VERTEX | BufferUsages::COPY_DST,
                });
                commands.entity(entity).insert(InstanceBuffer {
                    buffer,
                    generation: batch.generation,
                    visible,
                });
            }
        }
    }
}

type DrawHits = (
    SetItemPipeline,
    SetMeshViewBindGroup<0>,
    SetMeshViewBindingArrayBindGroup<1>,
    SetMeshBindGroup<2>,
    DrawInstanced,
);

struct DrawInstanced;

impl<P: PhaseItem> RenderCommand<P> for DrawInstanced {
    type Param = (
        SRes<RenderAssets<RenderMesh>>,
        SRes<RenderMeshInstances>,
        SRes<MeshAllocator>,
    );
    type ViewQuery = ();
    type ItemQuery = Read<InstanceBuffer>;

    fn render<'w>(
        item: &P,
        _view: (),
        instances: Option<&'w InstanceBuffer>,
        (meshes, render_mesh_instances, mesh_allocator): SystemParamItem<'w, '_, Self::Param>,
        pass: &mut TrackedRenderPass<'w>,
    ) -> RenderCommandResult {
        let mesh_allocator = mesh_allocator.into_inner();
        let Some(mesh_instance) = render_mesh_instances.render_mesh_queue_data(item.main_entity())
        else {
            return RenderCommandResult::Skip;
        };
        let Some(gpu_mesh) = meshes.into_inner().get(mesh_instance.mesh_asset_id()) else {
            return RenderCommandResult::Skip;
        };
        let Some(instances) = instances.filter(|i| i.visible > 0) else {
            return RenderCommandResult::Skip;
        };
        let Some(vertices) = mesh_allocator.mesh_vertex_slice(&mesh_instance.mesh_asset_id())
        else {
            return RenderCommandResult::Skip;
        };
        pass.set_vertex_buffer(0, vertices.buffer.slice(..));
        pass.set_vertex_buffer(1, instances.buffer.slice(..));
        match &gpu_mesh.buffer_info {
            RenderMeshBufferInfo::Indexed {
                index_format,
                count,
            } => {
                let Some(indices) = mesh_allocator.mesh_index_slice(&mesh_instance.mesh_asset_id())
                else {
                    return RenderCommandResult::Skip;
                };
                pass.set_index_buffer(indices.buffer.slice(..), *index_format);
                pass.draw_indexed(
                    indices.range.start..(indices.range.start + count),
                    vertices.range.start as i32,
                    0..instances.visible,
                );
            }
            RenderMeshBufferInfo::NonIndexed => {
                pass.draw(vertices.range, 0..instances.visible);
            }
        }
        RenderCommandResult::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_animation_draws_the_hits_reached_so_far() {
        let instance = HitInstanceData {
            position_cm: [0.0; 3],
            radius_cm: 1.0,
            colour: [1.0; 4],
        };
        let mut batch = HitBatch {
            instances: Arc::new(vec![instance; 4]),
            times_ns: Arc::new(vec![0.5, 1.0, 2.0, 8.0]),
            visible: 0,
            generation: 1,
        };
        batch.show_until(Some(1.5));
        assert_eq!(batch.visible, 2);
        batch.show_until(Some(0.0));
        assert_eq!(batch.visible, 0);
        batch.show_until(None);
        assert_eq!(batch.visible, 4);
        assert_eq!(
            size_of::<HitInstanceData>(),
            32,
            "matches the vertex layout"
        );
    }
}

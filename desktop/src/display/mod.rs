//! `EventDisplayPlugin`: the 3D event display. Its logic — the event on display, the scene
//! built from it under the live cuts, level of detail and hit budget from the zoom, the
//! unfolding animation, picking — runs in any Bevy app, including a headless `MinimalPlugins`
//! one in tests. Where the app renders, the plugin also adds the visuals (`visuals`: instanced
//! hits, track and geometry meshes, the camera and its controls) and, with egui, the panels.

pub mod geometry;
pub mod instancing;
pub mod model;
pub mod panels;
pub mod scene;
pub mod visuals;

use bevy::prelude::*;

use crate::{DisplayNotice, FollowView, ShowEvent, ShowFetched, Viewpoint};
pub use model::*;

pub struct EventDisplayPlugin;

impl Plugin for EventDisplayPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<ShowEvent>()
            .add_message::<ShowFetched>()
            .add_message::<DisplayNotice>()
            .add_message::<PickRay>()
            .add_message::<FollowView>()
            .init_resource::<Viewpoint>()
            .init_resource::<ViewOptions>()
            .init_resource::<Orbit>()
            .init_resource::<Animation>()
            .init_resource::<Viewport>()
            .add_systems(
                Update,
                (
                    model::follow_view,
                    model::show_event,
                    model::show_fetched,
                    model::receive_event,
                    model::level_of_detail,
                    model::rebuild_scene,
                    model::animate,
                    model::pick,
                    model::publish_viewpoint,
                )
                    .chain()
                    .in_set(DisplaySystems::Logic),
            );
        if app.get_sub_app(bevy::render::RenderApp).is_some() {
            app.add_plugins((
                instancing::HitInstancingPlugin,
                visuals::VisualsPlugin,
                geometry::GeometryPlugin,
            ));
        }
        if app.is_plugin_added::<bevy_egui::EguiPlugin>() {
            app.add_plugins(panels::DisplayPanelsPlugin);
        }
    }
}

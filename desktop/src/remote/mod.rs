//! The desktop's one network module: the alyxd client (`alyx --backend URL --token T`). It runs
//! on a tokio runtime of its own, on its own thread, and talks to Bevy through channels:
//! systems send [`Request`]s and drain [`Reply`]s each frame; nothing in a system blocks.
//!
//! The backend's datasets and event pages fill the Backend window; an event picked there (or
//! reached with N/P) is fetched over gRPC and shown. In live mode a subscription follows the
//! newest stored event and reconnects by itself when the backend goes away and comes back.

mod client;
mod messages;
mod panel;
mod state;

use bevy::prelude::*;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};

use crate::{DisplayNotice, Panels, ShowFetched};
pub use client::Blocking;
pub use messages::{Connection, JobsReply, NotebookReply, Reply, Request};
pub use panel::backend_panel;
pub use state::Backend;

/// Lists the backend's datasets and events, fetches events over gRPC and follows the live
/// stream. Added by the app when it runs with `--backend`.
pub struct BackendPlugin;

impl Plugin for BackendPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<ShowFetched>()
            .add_message::<DisplayNotice>()
            .add_message::<JobsReply>()
            .add_message::<NotebookReply>()
            .add_systems(Update, state::receive);
    }

    // In `finish`, so that EguiPlugin may be added before or after this plugin.
    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, panel::backend_window);
        }
    }
}

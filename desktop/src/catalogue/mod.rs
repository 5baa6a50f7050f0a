//! `CataloguePlugin`: the Backend window — alyxd's datasets, a page of the chosen dataset's
//! events, live mode. An event picked there is fetched over gRPC and shown; in live mode a
//! subscription follows the newest stored event and reconnects by itself when the backend goes
//! away and comes back. Added with [`crate::remote::RemotePlugin`] when the desktop runs with
//! `--backend`.

mod model;
mod panel;

use bevy::prelude::*;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};

use crate::remote::Remote;
use crate::{BackendDataset, DisplayNotice, Panels, ShowFetched};
use model::apply;
pub use model::{Catalogue, CatalogueAction, CatalogueReply};
pub use panel::catalogue_panel;

/// The Backend window (with `--backend`).
pub struct CataloguePlugin;

impl Plugin for CataloguePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Catalogue>()
            .init_resource::<BackendDataset>()
            .add_message::<CatalogueReply>()
            .add_message::<ShowFetched>()
            .add_message::<DisplayNotice>()
            .add_systems(Update, (start, receive).chain());
    }

    // In `finish`, so that EguiPlugin may be added before or after this plugin.
    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, panel::window);
        }
    }
}

/// Lists the datasets and the first page once, and starts following if asked to.
fn start(
    remote: Option<Res<Remote>>,
    mut catalogue: ResMut<Catalogue>,
    mut working_on: ResMut<BackendDataset>,
) {
    let Some(remote) = remote else { return };
    if catalogue.started {
        return;
    }
    catalogue.started = true;
    remote.call(|c| async move {
        CatalogueReply::Datasets(c.datasets().await.map_err(|e| e.to_string()))
    });
    let dataset = catalogue.dataset.clone();
    let live = catalogue.live;
    apply(
        &remote,
        &mut catalogue,
        &mut working_on,
        CatalogueAction::Events {
            dataset,
            after: None,
        },
    );
    apply(
        &remote,
        &mut catalogue,
        &mut working_on,
        CatalogueAction::Live(live),
    );
}

/// Takes in what alyxd answered; a fetched event goes to the display.
fn receive(
    mut replies: ResMut<Messages<CatalogueReply>>,
    mut catalogue: ResMut<Catalogue>,
    mut shown: MessageWriter<ShowFetched>,
    mut notice: MessageWriter<DisplayNotice>,
) {
    // Only this window reads these: drained, so that events are moved, not copied.
    for reply in replies.drain() {
        match reply {
            CatalogueReply::Datasets(Ok(d)) => catalogue.datasets = d,
            CatalogueReply::Events(Ok(page)) => {
                catalogue.events = page.events;
                catalogue.next_page = page.next;
                catalogue.total = page.total;
            }
            CatalogueReply::Event(Ok((summary, event))) => {
                shown.write(ShowFetched {
                    id: summary.event_id,
                    event,
                });
                catalogue.shown = Some(summary);
            }
            CatalogueReply::Datasets(Err(e))
            | CatalogueReply::Events(Err(e))
            | CatalogueReply::Event(Err(e)) => {
                notice.write(DisplayNotice(e));
            }
            CatalogueReply::Live(status) => {
                if catalogue.live {
                    catalogue.status = status;
                }
            }
        }
    }
}

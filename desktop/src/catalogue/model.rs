//! The Backend window's state and what it does: the page on show, the live subscription, the
//! calls to alyxd's EventService and their answers.

use std::time::Duration;

use alyx_client::{Client, EventPage};
use alyx_core::model::CollisionEvent;
use alyx_core::summary::{DatasetInfo, EventSummary};
use bevy::prelude::*;

use crate::BackendDataset;
use crate::remote::{Remote, Replies, Task};

/// What the Backend window shows, and the live subscription while it follows one.
#[derive(Resource, Default)]
pub struct Catalogue {
    pub datasets: Vec<DatasetInfo>,
    pub dataset: String,
    pub events: Vec<EventSummary>,
    /// The token of the next page of events.
    pub next_page: Option<String>,
    pub total: u64,
    /// Following the newest stored event.
    pub live: bool,
    /// The live subscription's state, for the status line.
    pub status: String,
    /// The catalogue row of the event on display.
    pub shown: Option<EventSummary>,
    following: Option<Task>,
    pub(super) started: bool,
}

impl Catalogue {
    /// The window for `dataset`, following its live stream from the start if `live`.
    pub fn new(dataset: String, live: bool) -> Self {
        Self {
            dataset,
            live,
            ..default()
        }
    }
}

/// What alyxd answered, for this window.
#[derive(Message, Debug)]
pub enum CatalogueReply {
    Datasets(Result<Vec<DatasetInfo>, String>),
    /// A page of `dataset`'s events.
    Events(Result<EventPage, String>),
    Event(Result<(EventSummary, CollisionEvent), String>),
    /// The live subscription's state.
    Live(String),
}

/// What the window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum CatalogueAction {
    /// A page of `dataset`'s events (switching to it), from the start or after a page token.
    Events {
        dataset: String,
        after: Option<String>,
    },
    Event(u64),
    Live(bool),
}

/// Does what the window asked.
pub(super) fn apply(
    remote: &Remote,
    catalogue: &mut Catalogue,
    working_on: &mut BackendDataset,
    action: CatalogueAction,
) {
    match action {
        CatalogueAction::Events { dataset, after } => {
            let switched = dataset != catalogue.dataset;
            catalogue.dataset = dataset.clone();
            working_on.0 = dataset.clone();
            if switched && catalogue.live {
                follow(remote, catalogue, true);
            }
            remote.call(move |c| async move {
                CatalogueReply::Events(
                    c.events(&dataset, None, 200, after)
                        .await
                        .map_err(|e| e.to_string()),
                )
            });
        }
        CatalogueAction::Event(id) => {
            // Picking an event by hand stops following the stream.
            if catalogue.live {
                follow(remote, catalogue, false);
            }
            let dataset = catalogue.dataset.clone();
            remote.call(move |c| async move {
                CatalogueReply::Event(c.event(&dataset, id).await.map_err(|e| e.to_string()))
            });
        }
        CatalogueAction::Live(live) => follow(remote, catalogue, live),
    }
}

/// Starts (again) or stops following the dataset's newest event.
fn follow(remote: &Remote, catalogue: &mut Catalogue, live: bool) {
    catalogue.live = live;
    catalogue.following = None;
    if live {
        let dataset = catalogue.dataset.clone();
        catalogue.following = Some(remote.spawn(|c, replies| follow_stream(c, dataset, replies)));
    } else {
        catalogue.status.clear();
    }
}

/// Follows `dataset`'s live stream, sending each newest event, reconnecting a second after the
/// stream breaks, until the task is dropped.
async fn follow_stream(client: Client, dataset: String, replies: Replies) {
    loop {
        match client.subscribe(&dataset, true).await {
            Ok(mut stream) => {
                replies.send(CatalogueReply::Live(format!("live: following {dataset}")));
                loop {
                    match stream.next().await {
                        Ok(Some(live)) => {
                            let Some(event) = live.event else { continue };
                            if !replies.send(CatalogueReply::Event(Ok((live.summary, event)))) {
                                return;
                            }
                        }
                        Err(e) => {
                            replies.send(CatalogueReply::Live(format!("live: reconnecting ({e})")));
                            break;
                        }
                        Ok(None) => {
                            replies.send(CatalogueReply::Live(
                                "live: the backend closed the stream; reconnecting".into(),
                            ));
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                replies.send(CatalogueReply::Live(format!("live: reconnecting ({e})")));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

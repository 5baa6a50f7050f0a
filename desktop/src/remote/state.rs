//! The `Backend` resource (the connection, and what the Backend window shows) and the system
//! that hands the network side's replies to the features as messages.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender};

use alyx_core::summary::{DatasetInfo, EventSummary};
use bevy::prelude::*;

use super::client::spawn_client;
use super::messages::*;
use crate::{DisplayNotice, ShowFetched};

/// The backend the desktop works with, and what the Backend window shows.
#[derive(Resource)]
pub struct Backend {
    pub url: String,
    pub(super) requests: Sender<Request>,
    pub(super) replies: Mutex<Receiver<Reply>>,
    pub datasets: Vec<DatasetInfo>,
    pub dataset: String,
    pub events: Vec<EventSummary>,
    pub next_page: Option<u64>,
    pub total: u64,
    /// Following the newest stored event.
    pub live: bool,
    pub status: String,
    /// The catalogue row of the event on display.
    pub shown: Option<EventSummary>,
}

impl Backend {
    /// Starts the client thread for `connection`, showing `dataset`.
    pub fn connect(connection: Connection, dataset: String, live: bool) -> Result<Self, String> {
        let url = connection.url.clone();
        let (requests, replies) = spawn_client(connection)?;
        let backend = Self {
            url,
            requests,
            replies: Mutex::new(replies),
            datasets: Vec::new(),
            dataset,
            events: Vec::new(),
            next_page: None,
            total: 0,
            live: false,
            status: String::new(),
            shown: None,
        };
        backend.send(Request::Datasets);
        backend.send(Request::Events {
            dataset: backend.dataset.clone(),
            after: None,
        });
        let mut backend = backend;
        backend.set_live(live);
        Ok(backend)
    }

    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    pub fn set_live(&mut self, live: bool) {
        self.live = live;
        self.send(Request::Follow(live.then(|| self.dataset.clone())));
    }

    pub(super) fn drain(&self) -> Vec<Reply> {
        let replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        replies.try_iter().collect()
    }
}

pub(super) fn receive(
    backend: Option<ResMut<Backend>>,
    mut shown: MessageWriter<ShowFetched>,
    mut notice: MessageWriter<DisplayNotice>,
    mut jobs: MessageWriter<JobsReply>,
    mut notebooks: MessageWriter<NotebookReply>,
) {
    let Some(mut backend) = backend else { return };
    for reply in backend.drain() {
        match reply {
            Reply::Notebooks(r) => {
                notebooks.write(NotebookReply::Listed(r));
            }
            Reply::NotebookCreated(r) => {
                notebooks.write(NotebookReply::Created(r));
            }
            Reply::NotebookOpened(r) => {
                notebooks.write(NotebookReply::Opened(r));
            }
            Reply::NotebookChanges(changes) => {
                notebooks.write(NotebookReply::Changes(changes));
            }
            Reply::NotebookPresence(all) => {
                notebooks.write(NotebookReply::Presence(all));
            }
            Reply::NotebookJob { cell, update } => {
                notebooks.write(NotebookReply::Job { cell, update });
            }
            Reply::NotebookStatus(m) => {
                notebooks.write(NotebookReply::Status(m));
            }
            Reply::Jobs(r) => {
                jobs.write(JobsReply::Jobs(r));
            }
            Reply::JobResult(r) => {
                jobs.write(JobsReply::Result(r));
            }
            Reply::JobDone(r) => {
                jobs.write(JobsReply::Done(r));
            }
            Reply::Datasets(Ok(d)) => backend.datasets = d,
            Reply::Events(Ok((events, next, total))) => {
                backend.events = events;
                backend.next_page = next;
                backend.total = total;
            }
            Reply::Event(Ok((summary, event))) => {
                shown.write(ShowFetched {
                    id: summary.event_id,
                    event,
                });
                backend.shown = Some(summary);
            }
            Reply::Datasets(Err(e)) | Reply::Events(Err(e)) | Reply::Event(Err(e)) => {
                notice.write(DisplayNotice(e));
            }
            Reply::Live(status) => backend.status = status,
        }
    }
}

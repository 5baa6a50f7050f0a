//! The Notebook window's calls to alyxd: CollabService for the listing and the open notebook's
//! sync session, JobService for plot cells sent to the cluster. The answers come back as
//! [`NotebookReply`] messages.

use std::time::Duration;

use alyx_analysis::jobs::{Analysis, JobState};
use alyx_analysis::notebook::{CellOutput, Notebook, Version};
use alyx_client::collab::Update;
use alyx_client::{Client, ClientError, JobSubmission, v1};
use bevy::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::remote::{Remote, Replies, Task};

/// What alyxd answered about notebooks (errors as messages for the user).
#[derive(Message, Debug)]
pub enum NotebookReply {
    Listed(Result<Vec<v1::NotebookInfo>, String>),
    Created(Result<u64, String>),
    /// The notebook opened (id and the whole document), or why not.
    Opened(Result<(u64, Vec<u8>), String>),
    /// Colleagues' changes to the open notebook.
    Changes(Vec<Vec<u8>>),
    /// Everyone's presence in the open notebook now.
    Presence(Vec<v1::Presence>),
    /// A cell's job: (job id, state, output once it ended).
    Job {
        cell: String,
        update: Result<(u64, String, Option<CellOutput>), String>,
    },
    /// The open notebook's history with the authors alyxd vouches for.
    History(Result<Vec<Version>, String>),
    /// The sync session's state, for the window.
    Status(String),
}

/// The open notebook's sync session: the way to it, and the task (dropped to stop it).
#[derive(Resource, Default)]
pub(super) struct SyncSession(Option<(Task, UnboundedSender<SessionInput>)>);

/// What the sync session takes from the window.
pub(super) enum SessionInput {
    Edit(Vec<Vec<u8>>),
    Presence(v1::Presence),
}

pub(super) fn list(remote: &Remote) {
    remote.call(|c| async move { NotebookReply::Listed(c.notebooks().await.map_err(describe)) });
}

pub(super) fn create(remote: &Remote, title: String) {
    remote.call(move |c| async move {
        NotebookReply::Created(
            c.create_notebook(&title)
                .await
                .map(|info| info.id)
                .map_err(describe),
        )
    });
}

/// Notebook `id`'s history as alyxd attests it.
pub(super) fn history(remote: &Remote, id: u64) {
    remote.call(move |c| async move {
        NotebookReply::History(c.notebook_history(id).await.map_err(describe))
    });
}

/// Opens notebook `id`, closing the one open before: a session follows it from now on.
pub(super) fn open(remote: &Remote, session: &mut SyncSession, id: u64) {
    let (input, taken) = unbounded_channel();
    let task = remote.spawn(move |c, replies| sync(c, id, replies, taken));
    session.0 = Some((task, input));
}

impl SyncSession {
    pub(super) fn send(&self, input: SessionInput) {
        if let Some((_, session)) = &self.0 {
            let _ = session.send(input);
        }
    }
}

/// Sends a plot cell's analysis to the cluster as a job.
pub(super) fn submit(remote: &Remote, cell: String, dataset: String, analysis: Analysis) {
    let job = JobSubmission::new(format!("notebook cell {cell}"), dataset, analysis);
    remote.call(move |c| async move {
        let update = c
            .submit(&job)
            .await
            .map(|(id, _)| (id, "queued".to_owned(), None))
            .map_err(describe);
        NotebookReply::Job { cell, update }
    });
}

/// How a cell's job is doing; its histograms once it ended.
pub(super) fn poll_job(remote: &Remote, cell: String, job: u64) {
    remote.call(move |c| async move {
        let update = c
            .job_result(job)
            .await
            .map(|o| {
                let output = match o.job.state {
                    JobState::Succeeded => Some(CellOutput::Histograms(o.histograms)),
                    JobState::Failed | JobState::Cancelled => Some(CellOutput::Error(format!(
                        "job #{job} {}: {}",
                        o.job.state, o.job.reason
                    ))),
                    _ => None,
                };
                (job, o.job.state.name().to_owned(), output)
            })
            .map_err(describe);
        NotebookReply::Job { cell, update }
    });
}

fn describe(e: ClientError) -> String {
    e.to_string()
}

/// Keeps notebook `id` in sync with alyxd until the task is dropped: the window's changes go
/// out, colleagues' come back as `Changes`, presence both ways. A dropped connection is retried
/// every second with the session's copy, so edits made meanwhile merge when it is back.
async fn sync(
    client: Client,
    id: u64,
    replies: Replies,
    mut input: UnboundedReceiver<SessionInput>,
) {
    let mut local = Notebook::empty("desktop");
    let mut opened = false;
    loop {
        let saved = local.save();
        match client.open_notebook(id, local).await {
            Ok(mut s) => {
                let arrived = s
                    .until(Duration::from_secs(30), |s| !s.notebook.title().is_empty())
                    .await;
                if !matches!(arrived, Ok(true)) {
                    local = s.into_notebook();
                    continue;
                }
                if !opened {
                    opened = true;
                    replies.send(NotebookReply::Opened(Ok((id, s.notebook.save()))));
                } else {
                    let all = s.notebook.changes_since(&[]).unwrap_or_default();
                    replies.send(NotebookReply::Changes(
                        all.into_iter().map(|(_, b)| b).collect(),
                    ));
                }
                replies.send(NotebookReply::Status(String::new()));
                let mut heads = s.notebook.heads();
                loop {
                    tokio::select! {
                        i = input.recv() => match i {
                            Some(SessionInput::Edit(changes)) => {
                                if let Err(e) = s.notebook.apply_changes(&changes) {
                                    replies.send(NotebookReply::Status(e.to_string()));
                                }
                                heads = s.notebook.heads();
                                if s.flush().await.is_err() {
                                    break;
                                }
                            }
                            Some(SessionInput::Presence(p)) => {
                                if s.send_presence(p).await.is_err() {
                                    break;
                                }
                            }
                            None => return,
                        },
                        u = s.next() => match u {
                            Ok(Some(Update::Synced)) => {
                                let new = s.notebook.changes_since(&heads).unwrap_or_default();
                                heads = s.notebook.heads();
                                if !new.is_empty() {
                                    replies.send(NotebookReply::Changes(new.into_iter().map(|(_, b)| b).collect()));
                                }
                            }
                            Ok(Some(_)) => {
                                replies.send(NotebookReply::Presence(s.presence.values().cloned().collect()));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                replies.send(NotebookReply::Status(describe(e)));
                                break;
                            }
                        },
                    }
                }
                local = s.into_notebook();
                replies.send(NotebookReply::Status(
                    "notebook: reconnecting (edits are kept)".into(),
                ));
            }
            Err(
                e @ (ClientError::PermissionDenied(_)
                | ClientError::NotFound(_)
                | ClientError::Unauthenticated { .. }
                | ClientError::BadUrl { .. }),
            ) => {
                replies.send(NotebookReply::Opened(Err(describe(e))));
                return;
            }
            Err(e) => {
                replies.send(NotebookReply::Status(format!(
                    "notebook: {}; retrying",
                    describe(e)
                )));
                local = Notebook::load(&saved, "desktop")
                    .unwrap_or_else(|_| Notebook::empty("desktop"));
            }
        }
        // Edits made while away are applied to the copy before reconnecting.
        while let Ok(i) = input.try_recv() {
            if let SessionInput::Edit(changes) = i {
                let _ = local.apply_changes(&changes);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

//! The network side: a tokio runtime on a thread of its own answers requests with
//! `alyx-client`, follows the live stream and keeps the open notebook in sync.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use alyx_analysis::notebook::{CellOutput, Notebook};
use alyx_client::collab::Update;
use alyx_client::{Client, ClientError, JobSubmission, QuerySource, v1};
use bevy::prelude::*;

use super::messages::*;

/// A client error as the user should read it.
pub(super) fn describe(e: ClientError) -> String {
    e.to_string()
}

/// The blocking client that `main` uses before the app starts (first dataset and event).
pub struct Blocking {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) client: Client,
}

impl Blocking {
    pub fn new(connection: Connection) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the network runtime: {e}"))?;
        let client = client(&runtime, &connection)?;
        Ok(Self { runtime, client })
    }

    pub fn call(&self, request: Request) -> Reply {
        self.runtime.block_on(answer(&self.client, request))
    }
}

/// The one client of `connection`, made inside `runtime` (whose tasks serve its connection):
/// every request shares it.
fn client(runtime: &tokio::runtime::Runtime, c: &Connection) -> Result<Client, String> {
    let _inside = runtime.enter();
    Client::new(&c.url, &c.token).map_err(describe)
}

/// Answers the job requests over JobService.
pub(super) async fn answer_jobs(jobs: &Client, request: Request) -> Reply {
    match request {
        Request::Jobs { all } => {
            // "@me": the caller, whoever the token belongs to.
            let me = if all { "" } else { "@me" };
            Reply::Jobs(jobs.jobs(me, "", 100).await.map_err(describe))
        }
        Request::SubmitJob {
            dataset,
            name,
            analysis,
            priority,
            target,
        } => Reply::JobDone(
            jobs.submit(&submission(dataset, name, analysis, priority, &target))
                .await
                .map(|(id, seconds)| format!("job #{id} submitted; about {seconds:.0} s"))
                .map_err(describe),
        ),
        Request::CancelJob(id) => Reply::JobDone(
            jobs.cancel(id, "from the desktop")
                .await
                .map(|j| format!("job #{id} {}", j.state))
                .map_err(describe),
        ),
        Request::JobPriority(id, priority) => Reply::JobDone(
            jobs.set_priority(id, priority)
                .await
                .map(|j| format!("job #{id} priority {}", j.priority))
                .map_err(describe),
        ),
        Request::JobResult(id) => Reply::JobResult(jobs.job_result(id).await.map_err(describe)),
        _ => Reply::JobDone(Err("not a job request".into())),
    }
}

/// The job that runs `analysis` over `dataset`.
pub(super) fn submission(
    dataset: String,
    name: String,
    analysis: alyx_analysis::jobs::Analysis,
    priority: i32,
    target: &str,
) -> JobSubmission {
    JobSubmission {
        name,
        dataset,
        query: QuerySource::Ast(analysis.query),
        histograms: analysis.histograms,
        target: alyx_core::jobs::Target::parse(target).unwrap_or(alyx_core::jobs::Target::Auto),
        priority,
        cores: 1,
        memory_mb: 1024,
    }
}

/// Answers the notebook requests over CollabService (and JobService for cells sent as jobs).
pub(super) async fn answer_notebooks(client: &Client, request: Request) -> Reply {
    match request {
        Request::Notebooks => Reply::Notebooks(client.notebooks().await.map_err(describe)),
        Request::NotebookCreate(title) => Reply::NotebookCreated(
            client
                .create_notebook(&title)
                .await
                .map(|info| info.id)
                .map_err(describe),
        ),
        Request::NotebookSubmit {
            cell,
            dataset,
            analysis,
        } => {
            let job = submission(
                dataset,
                format!("notebook cell {cell}"),
                analysis,
                0,
                "auto",
            );
            let update = client
                .submit(&job)
                .await
                .map(|(id, _)| (id, "queued".to_owned(), None))
                .map_err(describe);
            Reply::NotebookJob { cell, update }
        }
        Request::NotebookJob { cell, job } => {
            let update = client
                .job_result(job)
                .await
                .map(|o| {
                    let output = match o.job.state.as_str() {
                        "succeeded" => Some(CellOutput::Histograms(o.histograms)),
                        "failed" | "cancelled" => Some(CellOutput::Error(format!(
                            "job #{job} {}: {}",
                            o.job.state, o.job.reason
                        ))),
                        _ => None,
                    };
                    (job, o.job.state, output)
                })
                .map_err(describe);
            Reply::NotebookJob { cell, update }
        }
        _ => Reply::NotebookStatus("not a notebook request".into()),
    }
}

/// What the sync session takes from the app.
pub(super) enum NotebookInput {
    Edit(Vec<Vec<u8>>),
    Presence(v1::Presence),
}

/// Keeps notebook `id` in sync with alyxd until `stop`: the app's changes go out, colleagues'
/// come back as `NotebookChanges`, presence both ways. A dropped connection is retried every
/// second with the session's copy, so edits made meanwhile merge when it is back.
pub(super) async fn collab_session(
    client: Client,
    id: u64,
    replies: Sender<Reply>,
    mut input: tokio::sync::mpsc::UnboundedReceiver<NotebookInput>,
    mut stop: tokio::sync::watch::Receiver<bool>,
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
                    let _ = replies.send(Reply::NotebookOpened(Ok((id, s.notebook.save()))));
                } else {
                    let all = s.notebook.changes_since(&[]).unwrap_or_default();
                    let _ = replies.send(Reply::NotebookChanges(
                        all.into_iter().map(|(_, b)| b).collect(),
                    ));
                }
                let _ = replies.send(Reply::NotebookStatus(String::new()));
                let mut heads = s.notebook.heads();
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        i = input.recv() => match i {
                            Some(NotebookInput::Edit(changes)) => {
                                if let Err(e) = s.notebook.apply_changes(&changes) {
                                    let _ = replies.send(Reply::NotebookStatus(e.to_string()));
                                }
                                heads = s.notebook.heads();
                                if s.flush().await.is_err() {
                                    break;
                                }
                            }
                            Some(NotebookInput::Presence(p)) => {
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
                                    let _ = replies.send(Reply::NotebookChanges(new.into_iter().map(|(_, b)| b).collect()));
                                }
                            }
                            Ok(Some(_)) => {
                                let _ = replies.send(Reply::NotebookPresence(s.presence.values().cloned().collect()));
                            }
                            Ok(None) => break,
                            Err(e) => {
                                let _ = replies.send(Reply::NotebookStatus(describe(e)));
                                break;
                            }
                        },
                    }
                }
                local = s.into_notebook();
                let _ = replies.send(Reply::NotebookStatus(
                    "notebook: reconnecting (edits are kept)".into(),
                ));
            }
            Err(
                e @ (ClientError::PermissionDenied(_)
                | ClientError::NotFound(_)
                | ClientError::Unauthenticated { .. }
                | ClientError::BadUrl { .. }),
            ) => {
                let _ = replies.send(Reply::NotebookOpened(Err(describe(e))));
                return;
            }
            Err(e) => {
                let _ = replies.send(Reply::NotebookStatus(format!(
                    "notebook: {}; retrying",
                    describe(e)
                )));
                local = Notebook::load(&saved, "desktop")
                    .unwrap_or_else(|_| Notebook::empty("desktop"));
            }
        }
        // Edits made while away are applied to the copy before reconnecting.
        while let Ok(i) = input.try_recv() {
            if let NotebookInput::Edit(changes) = i {
                let _ = local.apply_changes(&changes);
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

pub(super) async fn answer(events: &Client, request: Request) -> Reply {
    if matches!(
        request,
        Request::Notebooks
            | Request::NotebookCreate(_)
            | Request::NotebookSubmit { .. }
            | Request::NotebookJob { .. }
    ) {
        return answer_notebooks(events, request).await;
    }
    if matches!(
        request,
        Request::Jobs { .. }
            | Request::SubmitJob { .. }
            | Request::CancelJob(_)
            | Request::JobPriority(..)
            | Request::JobResult(_)
    ) {
        return answer_jobs(events, request).await;
    }
    match request {
        Request::Datasets => Reply::Datasets(events.datasets().await.map_err(describe)),
        Request::Events { dataset, after } => Reply::Events(
            events
                .events(&dataset, None, 200, after.map(|a| a.to_string()))
                .await
                .map(|page| {
                    (
                        page.events,
                        page.next.and_then(|t| t.parse().ok()),
                        page.total,
                    )
                })
                .map_err(describe),
        ),
        Request::Event { dataset, id } => {
            Reply::Event(events.event(&dataset, id).await.map_err(describe))
        }
        Request::Follow(_) => Reply::Live(String::new()),
        _ => Reply::Live(String::new()),
    }
}

/// Follows `dataset`'s live stream, sending each newest event, reconnecting after a second
/// whenever the stream breaks, until `stop` says otherwise.
pub(super) async fn follow(
    client: Client,
    dataset: String,
    replies: Sender<Reply>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match client.subscribe(&dataset, true).await.map_err(describe) {
            Ok(mut stream) => {
                let _ = replies.send(Reply::Live(format!("live: following {dataset}")));
                loop {
                    let next = tokio::select! {
                        _ = stop.changed() => return,
                        n = stream.next() => n,
                    };
                    match next {
                        Ok(Some(live)) => {
                            let Some(event) = live.event else {
                                continue;
                            };
                            if replies
                                .send(Reply::Event(Ok((live.summary, event))))
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = replies
                                .send(Reply::Live(format!("live: reconnecting ({})", describe(e))));
                            break;
                        }
                        Ok(None) => {
                            let _ = replies.send(Reply::Live(
                                "live: the backend closed the stream; reconnecting".into(),
                            ));
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                let _ = replies.send(Reply::Live(format!("live: reconnecting ({e})")));
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The client thread: answers requests one by one and runs at most one live subscription.
pub(super) fn spawn_client(
    connection: Connection,
) -> Result<(Sender<Request>, Receiver<Reply>), String> {
    let (request_tx, request_rx) = channel::<Request>();
    let (reply_tx, reply_rx) = channel::<Reply>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))?;
    let client = client(&runtime, &connection)?;
    std::thread::Builder::new()
        .name("alyx-backend-client".into())
        .spawn(move || {
            let mut following: Option<tokio::sync::watch::Sender<bool>> = None;
            let mut notebook: Option<(
                tokio::sync::watch::Sender<bool>,
                tokio::sync::mpsc::UnboundedSender<NotebookInput>,
            )> = None;
            while let Ok(request) = request_rx.recv() {
                match request {
                    Request::NotebookOpen(id) => {
                        if let Some((stop, _)) = notebook.take() {
                            let _ = stop.send(true);
                        }
                        let (stop, stopped) = tokio::sync::watch::channel(false);
                        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                        runtime.spawn(collab_session(
                            client.clone(),
                            id,
                            reply_tx.clone(),
                            rx,
                            stopped,
                        ));
                        notebook = Some((stop, tx));
                    }
                    Request::NotebookEdit(changes) => {
                        if let Some((_, tx)) = &notebook {
                            let _ = tx.send(NotebookInput::Edit(changes));
                        }
                    }
                    Request::NotebookPresence(p) => {
                        if let Some((_, tx)) = &notebook {
                            let _ = tx.send(NotebookInput::Presence(p));
                        }
                    }
                    Request::Follow(dataset) => {
                        if let Some(stop) = following.take() {
                            let _ = stop.send(true);
                        }
                        if let Some(dataset) = dataset {
                            let (stop, stopped) = tokio::sync::watch::channel(false);
                            runtime.spawn(follow(
                                client.clone(),
                                dataset,
                                reply_tx.clone(),
                                stopped,
                            ));
                            following = Some(stop);
                        } else {
                            let _ = reply_tx.send(Reply::Live(String::new()));
                        }
                    }
                    other => {
                        let reply = runtime.block_on(answer(&client, other));
                        if reply_tx.send(reply).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the network thread: {e}"))?;
    Ok((request_tx, reply_rx))
}

//! The desktop's one network module: the alyxd client (`alyx --backend URL --token T`). It runs
//! on a tokio runtime of its own, on its own thread, and talks to Bevy through channels:
//! systems send [`Request`]s and drain [`Reply`]s each frame; nothing in a system blocks.
//!
//! The backend's datasets and event pages fill the Backend window; an event picked there (or
//! reached with N/P) is fetched over gRPC and shown. In live mode a subscription follows the
//! newest stored event and reconnects by itself when the backend goes away and comes back.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use alyx_proto::v1::event_service_client::EventServiceClient;
use alyx_proto::v1::job_service_client::JobServiceClient;
use alyx_proto::{authorized, v1};
use alyx_shared::model::CollisionEvent;
use alyx_shared::summary::{DatasetInfo, EventSummary};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::Panels;
use crate::display::Display;
use crate::jobs::{JobResult, JobRow, JobsState};
use crate::notebooks::{Listed, NotebookState};
use alyx_proto::collab::{Session, Update};
use alyx_proto::v1::collab_service_client::CollabServiceClient;
use alyx_shared::notebook::{CellOutput, Notebook};

/// Where the backend is and who asks.
#[derive(Clone, Debug)]
pub struct Connection {
    pub url: String,
    pub token: String,
}

/// What systems ask the client for.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Datasets,
    Events {
        dataset: String,
        after: Option<u64>,
    },
    Event {
        dataset: String,
        id: u64,
    },
    /// Follow the newest stored event of the dataset (`None` stops following).
    Follow(Option<String>),
    /// The caller's jobs, or everyone's.
    Jobs {
        all: bool,
    },
    SubmitJob {
        dataset: String,
        name: String,
        analysis: alyx_shared::jobs::Analysis,
        priority: i32,
        target: String,
    },
    CancelJob(u64),
    JobPriority(u64, i32),
    JobResult(u64),
    /// The notebooks the user may open.
    Notebooks,
    NotebookCreate(String),
    /// Open a notebook: a sync session follows it until another is opened.
    NotebookOpen(u64),
    /// Changes made in the open notebook (Automerge change bytes).
    NotebookEdit(Vec<Vec<u8>>),
    NotebookPresence(v1::Presence),
    /// Send a plot cell to the cluster as a job.
    NotebookSubmit {
        cell: String,
        dataset: String,
        analysis: alyx_shared::jobs::Analysis,
    },
    /// How a cell's job is doing (its histograms once it ended).
    NotebookJob {
        cell: String,
        job: u64,
    },
}

/// What the client answers (errors as messages for the user).
#[derive(Debug)]
pub enum Reply {
    Datasets(Result<Vec<DatasetInfo>, String>),
    Events(Result<(Vec<EventSummary>, Option<u64>, u64), String>),
    Event(Result<(EventSummary, CollisionEvent), String>),
    /// The connection state of the live subscription, for the status line.
    Live(String),
    Jobs(Result<Vec<JobRow>, String>),
    JobResult(Result<JobResult, String>),
    /// A job was submitted, cancelled or reprioritised (what happened), or why not.
    JobDone(Result<String, String>),
    Notebooks(Result<Vec<Listed>, String>),
    NotebookCreated(Result<u64, String>),
    /// The notebook opened (id and the whole document), or why not.
    NotebookOpened(Result<(u64, Vec<u8>), String>),
    /// Colleagues' changes to the open notebook.
    NotebookChanges(Vec<Vec<u8>>),
    /// Everyone's presence in the open notebook now.
    NotebookPresence(Vec<v1::Presence>),
    /// A cell's job: (job id, state, output once it ended).
    NotebookJob {
        cell: String,
        update: Result<(u64, String, Option<CellOutput>), String>,
    },
    /// The sync session's state, for the window.
    NotebookStatus(String),
}

/// A gRPC error as the user should read it.
fn describe(url: &str, e: tonic::Status) -> String {
    match e.code() {
        tonic::Code::Unavailable => format!("{url} is unreachable: {}", e.message()),
        tonic::Code::Unauthenticated => format!("{url} refused the token: {}", e.message()),
        _ => e.message().to_owned(),
    }
}

/// The blocking client that `main` uses before the app starts (first dataset and event).
pub struct Blocking {
    runtime: tokio::runtime::Runtime,
    connection: Connection,
}

impl Blocking {
    pub fn new(connection: Connection) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the network runtime: {e}"))?;
        Ok(Self {
            runtime,
            connection,
        })
    }

    pub fn call(&self, request: Request) -> Reply {
        self.runtime.block_on(answer(&self.connection, request))
    }
}

fn client(url: &str) -> Result<EventServiceClient<Channel>, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid backend URL `{url}`: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    Ok(EventServiceClient::new(endpoint.connect_lazy()))
}

fn job_row(j: v1::Job) -> JobRow {
    let target = match v1::JobTarget::try_from(j.target) {
        Ok(v1::JobTarget::Local) => "local",
        Ok(v1::JobTarget::Spark) => "spark",
        Ok(v1::JobTarget::Slurm) => "slurm",
        _ => "auto",
    };
    JobRow {
        id: j.id,
        owner: j.owner,
        name: j.name,
        dataset: j.dataset,
        state: j.state,
        reason: j.reason,
        tasks_done: j.tasks_done,
        tasks_total: j.tasks_total,
        events_done: j.events_done,
        seconds_left: j.estimated_seconds_left,
        priority: j.priority,
        target: target.into(),
        columns: j.histograms.into_iter().map(|h| h.column).collect(),
    }
}

/// Answers the job requests over JobService.
async fn answer_jobs(c: &Connection, request: Request) -> Reply {
    let url = c.url.as_str();
    let endpoint = match Endpoint::from_shared(c.url.clone()) {
        Ok(e) => e.connect_timeout(Duration::from_secs(5)),
        Err(e) => return Reply::JobDone(Err(format!("invalid backend URL `{url}`: {e}"))),
    };
    let mut jobs = JobServiceClient::new(endpoint.connect_lazy());
    let t = &c.token;
    match request {
        Request::Jobs { all } => {
            // "@me": the caller, whoever the token belongs to.
            let me = if all { String::new() } else { "@me".to_owned() };
            Reply::Jobs(
                jobs.list(authorized(
                    t,
                    v1::ListJobsRequest {
                        owner: me,
                        state: String::new(),
                        limit: 100,
                    },
                ))
                .await
                .map(|r| r.into_inner().jobs.into_iter().map(job_row).collect())
                .map_err(|e| describe(url, e)),
            )
        }
        Request::SubmitJob {
            dataset,
            name,
            analysis,
            priority,
            target,
        } => {
            let request = match submit_request(dataset, name, &analysis, priority, &target) {
                Ok(r) => r,
                Err(e) => return Reply::JobDone(Err(e)),
            };
            Reply::JobDone(
                jobs.submit(authorized(t, request))
                    .await
                    .map(|r| {
                        let r = r.into_inner();
                        format!(
                            "job #{} submitted; about {:.0} s",
                            r.id, r.estimated_seconds
                        )
                    })
                    .map_err(|e| describe(url, e)),
            )
        }
        Request::CancelJob(id) => Reply::JobDone(
            jobs.cancel(authorized(
                t,
                v1::CancelJobRequest {
                    id,
                    reason: "from the desktop".into(),
                },
            ))
            .await
            .map(|r| format!("job #{id} {}", r.into_inner().state))
            .map_err(|e| describe(url, e)),
        ),
        Request::JobPriority(id, priority) => Reply::JobDone(
            jobs.set_priority(authorized(t, v1::SetPriorityRequest { id, priority }))
                .await
                .map(|r| format!("job #{id} priority {}", r.into_inner().priority))
                .map_err(|e| describe(url, e)),
        ),
        Request::JobResult(id) => Reply::JobResult(
            job_result(&mut jobs, t, id)
                .await
                .map(|(_, r)| r)
                .map_err(|e| describe(url, e)),
        ),
        _ => Reply::JobDone(Err("not a job request".into())),
    }
}

/// The JobService request for `analysis` over `dataset`.
fn submit_request(
    dataset: String,
    name: String,
    analysis: &alyx_shared::jobs::Analysis,
    priority: i32,
    target: &str,
) -> Result<v1::SubmitJobRequest, String> {
    let json = serde_json::to_string(&analysis.query).map_err(|e| e.to_string())?;
    let target = match target {
        "local" => v1::JobTarget::Local,
        "spark" => v1::JobTarget::Spark,
        "slurm" => v1::JobTarget::Slurm,
        _ => v1::JobTarget::Auto,
    };
    Ok(v1::SubmitJobRequest {
        name,
        dataset,
        query: Some(v1::QueryText {
            kind: Some(v1::query_text::Kind::QueryJson(json)),
        }),
        histograms: analysis
            .histograms
            .iter()
            .map(|h| v1::HistogramSpec {
                column: h.column.clone(),
                weight: h.weight.clone().unwrap_or_default(),
                binning: Some((&h.binning).into()),
            })
            .collect(),
        target: target as i32,
        priority,
        cores: 1,
        memory_mb: 1024,
    })
}

/// A job and its merged histograms so far.
async fn job_result(
    jobs: &mut JobServiceClient<Channel>,
    t: &str,
    id: u64,
) -> Result<(v1::Job, JobResult), tonic::Status> {
    let job = jobs
        .get(authorized(t, v1::GetJobRequest { id }))
        .await?
        .into_inner();
    let r = jobs
        .get_result(authorized(t, v1::GetJobRequest { id }))
        .await?
        .into_inner();
    let histograms = job
        .histograms
        .iter()
        .zip(r.histograms)
        .filter_map(|(spec, h)| {
            let b = spec.binning.clone().unwrap_or_default();
            let binning = if b.edges.is_empty() {
                alyx_shared::histogram::Binning::fixed(b.bins as usize, b.lo, b.hi)
            } else {
                alyx_shared::histogram::Binning::variable(b.edges)
            }
            .ok()?;
            Some((
                spec.column.clone(),
                alyx_shared::histogram::Histogram {
                    binning,
                    sum_w: h.sum_w,
                    sum_w2: h.sum_w2,
                    entries: h.entries,
                    underflow: h.underflow,
                    overflow: h.overflow,
                    missing: h.missing,
                },
            ))
        })
        .collect();
    Ok((
        job,
        JobResult {
            id,
            histograms,
            complete: r.complete,
        },
    ))
}

/// Answers the notebook requests over CollabService (and JobService for cells sent as jobs).
async fn answer_notebooks(c: &Connection, request: Request) -> Reply {
    let url = c.url.as_str();
    let channel = match Endpoint::from_shared(c.url.clone()) {
        Ok(e) => e.connect_timeout(Duration::from_secs(5)).connect_lazy(),
        Err(e) => return Reply::NotebookStatus(format!("invalid backend URL `{url}`: {e}")),
    };
    let mut collab = CollabServiceClient::new(channel.clone());
    let t = &c.token;
    let listed = |n: v1::NotebookInfo| Listed {
        id: Some(n.id),
        path: None,
        title: n.title,
        owner: n.owner,
        access: match v1::Access::try_from(n.access) {
            Ok(v1::Access::Owner) => "owner",
            Ok(v1::Access::Write) => "write",
            Ok(v1::Access::Read) => "read",
            _ => "none",
        }
        .into(),
    };
    match request {
        Request::Notebooks => Reply::Notebooks(
            collab
                .list_notebooks(authorized(t, v1::ListNotebooksRequest {}))
                .await
                .map(|r| r.into_inner().notebooks.into_iter().map(listed).collect())
                .map_err(|e| describe(url, e)),
        ),
        Request::NotebookCreate(title) => Reply::NotebookCreated(
            collab
                .create_notebook(authorized(t, v1::CreateNotebookRequest { title }))
                .await
                .map(|info| info.into_inner().id)
                .map_err(|e| describe(url, e)),
        ),
        Request::NotebookSubmit {
            cell,
            dataset,
            analysis,
        } => {
            let mut jobs = JobServiceClient::new(channel);
            let update = match submit_request(
                dataset,
                format!("notebook cell {cell}"),
                &analysis,
                0,
                "auto",
            ) {
                Ok(r) => jobs
                    .submit(authorized(t, r))
                    .await
                    .map(|r| (r.into_inner().id, "queued".to_owned(), None))
                    .map_err(|e| describe(url, e)),
                Err(e) => Err(e),
            };
            Reply::NotebookJob { cell, update }
        }
        Request::NotebookJob { cell, job } => {
            let mut jobs = JobServiceClient::new(channel);
            let update = job_result(&mut jobs, t, job)
                .await
                .map(|(j, r)| {
                    let output = match j.state.as_str() {
                        "succeeded" => Some(CellOutput::Histograms(r.histograms)),
                        "failed" | "cancelled" => Some(CellOutput::Error(format!(
                            "job #{job} {}: {}",
                            j.state, j.reason
                        ))),
                        _ => None,
                    };
                    (job, j.state, output)
                })
                .map_err(|e| describe(url, e));
            Reply::NotebookJob { cell, update }
        }
        _ => Reply::NotebookStatus("not a notebook request".into()),
    }
}

/// What the sync session takes from the app.
enum NotebookInput {
    Edit(Vec<Vec<u8>>),
    Presence(v1::Presence),
}

/// Keeps notebook `id` in sync with alyxd until `stop`: the app's changes go out, colleagues'
/// come back as `NotebookChanges`, presence both ways. A dropped connection is retried every
/// second with the session's copy, so edits made meanwhile merge when it is back.
async fn collab_session(
    c: Connection,
    id: u64,
    replies: Sender<Reply>,
    mut input: tokio::sync::mpsc::UnboundedReceiver<NotebookInput>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut local = Notebook::empty("desktop");
    let mut opened = false;
    loop {
        let saved = local.save();
        let channel = match Endpoint::from_shared(c.url.clone()) {
            Ok(e) => e.connect_timeout(Duration::from_secs(5)).connect_lazy(),
            Err(e) => {
                let _ = replies.send(Reply::NotebookOpened(Err(e.to_string())));
                return;
            }
        };
        match Session::open(channel, &c.token, id, local).await {
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
                                let _ = replies.send(Reply::NotebookStatus(describe(&c.url, e)));
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
            Err(e)
                if matches!(
                    e.code(),
                    tonic::Code::PermissionDenied
                        | tonic::Code::NotFound
                        | tonic::Code::Unauthenticated
                ) =>
            {
                let _ = replies.send(Reply::NotebookOpened(Err(describe(&c.url, e))));
                return;
            }
            Err(e) => {
                let _ = replies.send(Reply::NotebookStatus(format!(
                    "notebook: {}; retrying",
                    describe(&c.url, e)
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

async fn answer(c: &Connection, request: Request) -> Reply {
    if matches!(
        request,
        Request::Notebooks
            | Request::NotebookCreate(_)
            | Request::NotebookSubmit { .. }
            | Request::NotebookJob { .. }
    ) {
        return answer_notebooks(c, request).await;
    }
    if matches!(
        request,
        Request::Jobs { .. }
            | Request::SubmitJob { .. }
            | Request::CancelJob(_)
            | Request::JobPriority(..)
            | Request::JobResult(_)
    ) {
        return answer_jobs(c, request).await;
    }
    let mut events = match client(&c.url) {
        Ok(e) => e,
        Err(e) => {
            return match request {
                Request::Datasets => Reply::Datasets(Err(e)),
                Request::Events { .. } => Reply::Events(Err(e)),
                _ => Reply::Event(Err(e)),
            };
        }
    };
    let url = c.url.as_str();
    match request {
        Request::Datasets => Reply::Datasets(
            events
                .list_datasets(authorized(&c.token, v1::ListDatasetsRequest {}))
                .await
                .map(|r| {
                    r.into_inner()
                        .datasets
                        .into_iter()
                        .map(Into::into)
                        .collect()
                })
                .map_err(|e| describe(url, e)),
        ),
        Request::Events { dataset, after } => Reply::Events(
            events
                .list_events(authorized(
                    &c.token,
                    v1::ListEventsRequest {
                        dataset,
                        run: None,
                        page_size: 200,
                        page_token: after.map(|a| a.to_string()).unwrap_or_default(),
                    },
                ))
                .await
                .map(|r| {
                    let r = r.into_inner();
                    (
                        r.events.into_iter().map(Into::into).collect(),
                        r.next_page_token.parse().ok(),
                        r.total,
                    )
                })
                .map_err(|e| describe(url, e)),
        ),
        Request::Event { dataset, id } => Reply::Event(
            match events
                .get_event(authorized(
                    &c.token,
                    v1::GetEventRequest {
                        dataset,
                        event_id: id,
                    },
                ))
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    match (r.summary, r.event.map(CollisionEvent::try_from)) {
                        (Some(s), Some(Ok(e))) => Ok((s.into(), e)),
                        (_, Some(Err(e))) => Err(e.to_string()),
                        _ => Err("the backend sent an incomplete event".into()),
                    }
                }
                Err(e) => Err(describe(url, e)),
            },
        ),
        Request::Follow(_) => Reply::Live(String::new()),
        _ => Reply::Live(String::new()),
    }
}

/// Follows `dataset`'s live stream, sending each newest event, reconnecting after a second
/// whenever the stream breaks, until `stop` says otherwise.
async fn follow(
    c: Connection,
    dataset: String,
    replies: Sender<Reply>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let stream = async {
            let mut events = client(&c.url)?;
            events
                .subscribe(authorized(
                    &c.token,
                    v1::SubscribeRequest {
                        dataset: dataset.clone(),
                        include_event: true,
                    },
                ))
                .await
                .map(tonic::Response::into_inner)
                .map_err(|e| describe(&c.url, e))
        };
        match stream.await {
            Ok(mut stream) => {
                let _ = replies.send(Reply::Live(format!("live: following {dataset}")));
                loop {
                    let next = tokio::select! {
                        _ = stop.changed() => return,
                        n = stream.next() => n,
                    };
                    match next {
                        Some(Ok(live)) => {
                            let (Some(summary), Some(event)) = (live.summary, live.event) else {
                                continue;
                            };
                            match CollisionEvent::try_from(event) {
                                Ok(e) => {
                                    if replies.send(Reply::Event(Ok((summary.into(), e)))).is_err()
                                    {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    let _ = replies.send(Reply::Event(Err(e.to_string())));
                                }
                            }
                        }
                        Some(Err(e)) => {
                            let _ = replies.send(Reply::Live(format!(
                                "live: reconnecting ({})",
                                describe(&c.url, e)
                            )));
                            break;
                        }
                        None => {
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
fn spawn_client(connection: Connection) -> Result<(Sender<Request>, Receiver<Reply>), String> {
    let (request_tx, request_rx) = channel::<Request>();
    let (reply_tx, reply_rx) = channel::<Reply>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))?;
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
                            connection.clone(),
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
                                connection.clone(),
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
                        let reply = runtime.block_on(answer(&connection, other));
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

/// The backend the desktop works with, and what the Backend window shows.
#[derive(Resource)]
pub struct Backend {
    pub url: String,
    requests: Sender<Request>,
    replies: Mutex<Receiver<Reply>>,
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

    fn drain(&self) -> Vec<Reply> {
        let replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        replies.try_iter().collect()
    }
}

/// Lists the backend's datasets and events, fetches events over gRPC and follows the live
/// stream. Added by the app when it runs with `--backend`.
pub struct BackendPlugin;

impl Plugin for BackendPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, receive);
    }

    // In `finish`, so that EguiPlugin may be added before or after this plugin.
    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<EguiPlugin>() {
            app.init_resource::<Panels>()
                .add_systems(EguiPrimaryContextPass, backend_window);
        }
    }
}

fn receive(
    backend: Option<ResMut<Backend>>,
    mut display: ResMut<Display>,
    jobs: Option<ResMut<JobsState>>,
    notebooks: Option<ResMut<NotebookState>>,
) {
    let Some(mut backend) = backend else { return };
    let mut jobs = jobs;
    let mut notebooks = notebooks;
    for reply in backend.drain() {
        match reply {
            Reply::Notebooks(r) => {
                if let Some(n) = notebooks.as_mut() {
                    match r {
                        Ok(list) => n.listed = list,
                        Err(e) => n.message = Some(e),
                    }
                }
            }
            Reply::NotebookCreated(r) => match r {
                Ok(id) => {
                    backend.send(Request::NotebookOpen(id));
                    backend.send(Request::Notebooks);
                }
                Err(e) => {
                    if let Some(n) = notebooks.as_mut() {
                        n.message = Some(e);
                    }
                }
            },
            Reply::NotebookOpened(r) => {
                if let Some(n) = notebooks.as_mut() {
                    match r.and_then(|(id, bytes)| {
                        Notebook::load(&bytes, "me")
                            .map(|nb| (id, nb))
                            .map_err(|e| e.to_string())
                    }) {
                        Ok((id, nb)) => n.open(nb, None, Some(id)),
                        Err(e) => n.message = Some(e),
                    }
                }
            }
            Reply::NotebookChanges(changes) => {
                if let Some(n) = notebooks.as_mut() {
                    n.receive_changes(&changes);
                }
            }
            Reply::NotebookPresence(all) => {
                if let Some(n) = notebooks.as_mut() {
                    n.receive_presence(all);
                }
            }
            Reply::NotebookJob { cell, update } => {
                if let Some(n) = notebooks.as_mut() {
                    crate::notebooks::job_update(n, &cell, update);
                }
            }
            Reply::NotebookStatus(m) => {
                if let Some(n) = notebooks.as_mut() {
                    n.message = (!m.is_empty()).then_some(m);
                }
            }
            Reply::Jobs(Ok(rows)) => {
                if let Some(j) = jobs.as_mut() {
                    j.view.rows = rows;
                }
            }
            Reply::JobResult(Ok(r)) => {
                if let Some(j) = jobs.as_mut() {
                    j.view.result = Some(r);
                }
            }
            Reply::JobDone(Ok(m))
            | Reply::JobDone(Err(m))
            | Reply::Jobs(Err(m))
            | Reply::JobResult(Err(m)) => {
                if let Some(j) = jobs.as_mut() {
                    j.view.message = Some(m);
                }
            }
            Reply::Datasets(Ok(d)) => backend.datasets = d,
            Reply::Events(Ok((events, next, total))) => {
                backend.events = events;
                backend.next_page = next;
                backend.total = total;
            }
            Reply::Event(Ok((summary, event))) => {
                display.set_event(summary.event_id, event);
                backend.shown = Some(summary);
            }
            Reply::Datasets(Err(e)) | Reply::Events(Err(e)) | Reply::Event(Err(e)) => {
                display.message = Some(e);
            }
            Reply::Live(status) => backend.status = status,
        }
    }
}

/// The Backend window: the server, its datasets, a page of events, live mode.
pub fn backend_panel(ui: &mut egui::Ui, backend: &mut Backend) -> Option<Request> {
    let mut request = None;
    ui.label(format!("backend {}", backend.url));
    let mut live = backend.live;
    if ui
        .checkbox(&mut live, "Live: follow the newest event")
        .changed()
    {
        backend.set_live(live);
    }
    if !backend.status.is_empty() {
        ui.label(&backend.status);
    }
    if let Some(s) = &backend.shown {
        ui.label(format!(
            "showing {} #{}: run {} event {}, {}",
            s.dataset,
            s.event_id,
            s.run,
            s.event_number,
            alyx_shared::utc(s.timestamp_ns)
        ));
    }
    ui.separator();
    egui::ComboBox::from_label("dataset")
        .selected_text(&backend.dataset)
        .show_ui(ui, |ui| {
            for d in &backend.datasets {
                let text = format!("{} ({} events)", d.name, d.event_count);
                if ui
                    .selectable_label(d.name == backend.dataset, text)
                    .clicked()
                {
                    request = Some(Request::Events {
                        dataset: d.name.clone(),
                        after: None,
                    });
                }
            }
        });
    ui.horizontal(|ui| {
        ui.label(format!("{} events", backend.total));
        if ui.button("⟳ refresh").clicked() {
            request = Some(Request::Events {
                dataset: backend.dataset.clone(),
                after: None,
            });
        }
        if let Some(next) = backend.next_page
            && ui.button("next page ▶").clicked()
        {
            request = Some(Request::Events {
                dataset: backend.dataset.clone(),
                after: Some(next),
            });
        }
    });
    egui::ScrollArea::vertical()
        .max_height(300.0)
        .show(ui, |ui| {
            for e in &backend.events {
                let text = format!(
                    "#{:<7} run {:<6} event {:<9} {:>4} tracks {:>6} hits",
                    e.event_id, e.run, e.event_number, e.n_tracks, e.n_hits
                );
                let selected = backend
                    .shown
                    .as_ref()
                    .is_some_and(|s| s.event_id == e.event_id);
                if ui
                    .selectable_label(selected, egui::RichText::new(text).monospace())
                    .clicked()
                {
                    request = Some(Request::Event {
                        dataset: backend.dataset.clone(),
                        id: e.event_id,
                    });
                }
            }
        });
    request
}

fn backend_window(
    mut contexts: EguiContexts,
    backend: Option<ResMut<Backend>>,
    panels: Res<Panels>,
) {
    let Some(mut backend) = backend else { return };
    if !panels.events {
        return;
    }
    let Ok(ctx) = contexts.ctx_mut() else { return };
    let mut request = None;
    egui::Window::new("Backend")
        .default_pos([310.0, 420.0])
        .default_width(520.0)
        .show(ctx, |ui| request = backend_panel(ui, &mut backend));
    if let Some(request) = request {
        if let Request::Events { dataset, .. } = &request
            && *dataset != backend.dataset
        {
            backend.dataset = dataset.clone();
            if backend.live {
                backend.set_live(true);
            }
        }
        if let Request::Event { .. } = request {
            // Picking an event by hand stops following the stream.
            if backend.live {
                backend.set_live(false);
            }
        }
        backend.send(request);
    }
}

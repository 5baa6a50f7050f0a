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

fn binning_to(b: &alyx_shared::histogram::Binning) -> v1::Binning {
    match b {
        alyx_shared::histogram::Binning::Fixed { bins, lo, hi } => v1::Binning {
            bins: *bins as u32,
            lo: *lo,
            hi: *hi,
            edges: vec![],
        },
        other => v1::Binning {
            edges: other.edges(),
            ..Default::default()
        },
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
            let json = match serde_json::to_string(&analysis.query) {
                Ok(j) => j,
                Err(e) => return Reply::JobDone(Err(e.to_string())),
            };
            let target = match target.as_str() {
                "local" => v1::JobTarget::Local,
                "spark" => v1::JobTarget::Spark,
                "slurm" => v1::JobTarget::Slurm,
                _ => v1::JobTarget::Auto,
            };
            Reply::JobDone(
                jobs.submit(authorized(
                    t,
                    v1::SubmitJobRequest {
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
                                binning: Some(binning_to(&h.binning)),
                            })
                            .collect(),
                        target: target as i32,
                        priority,
                        cores: 1,
                        memory_mb: 1024,
                    },
                ))
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
        Request::JobResult(id) => {
            let job = jobs.get(authorized(t, v1::GetJobRequest { id })).await;
            let result = jobs
                .get_result(authorized(t, v1::GetJobRequest { id }))
                .await;
            Reply::JobResult(match (job, result) {
                (Ok(job), Ok(r)) => {
                    let (job, r) = (job.into_inner(), r.into_inner());
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
                    Ok(JobResult {
                        id,
                        histograms,
                        complete: r.complete,
                    })
                }
                (Err(e), _) | (_, Err(e)) => Err(describe(url, e)),
            })
        }
        _ => Reply::JobDone(Err("not a job request".into())),
    }
}

async fn answer(c: &Connection, request: Request) -> Reply {
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
            while let Ok(request) = request_rx.recv() {
                match request {
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
) {
    let Some(mut backend) = backend else { return };
    let mut jobs = jobs;
    for reply in backend.drain() {
        match reply {
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

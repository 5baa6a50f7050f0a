//! `alyx.v1.EventService` over the catalogue, the store and the live stream.

use std::pin::Pin;
use std::sync::Arc;

use alyx_core::summary::EventSummary;
use alyx_proto::v1;
use alyx_proto::v1::event_service_server::{EventService, SERVICE_NAME};
use alyx_store::DataStore;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Context, status};
use crate::catalogue;
use crate::error::Error;
use crate::live::LiveSender;
use crate::shared_cache::{Kind, SharedCache};

pub struct EventsApi {
    pub ctx: Context,
    pub pool: PgPool,
    pub store: DataStore,
    pub live: LiveSender,
    /// The cache every instance shares: displays ask for the same recent events again and
    /// again.
    pub shared: Option<Arc<SharedCache>>,
    /// Becomes true when alyxd shuts down: live streams end so connections can close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

impl EventsApi {
    /// An event with its catalogue summary, from PostgreSQL and the Parquet store.
    async fn event(&self, dataset: &str, id: u64) -> Result<v1::GetEventResponse, Status> {
        let summary = catalogue::summary(&self.pool, dataset, id)
            .await
            .map_err(status)?;
        let store = self.store.clone();
        let name = dataset.to_owned();
        let event = tokio::task::spawn_blocking(move || read_event(&store, &name, id))
            .await
            .map_err(|e| status(e.into()))?
            .map_err(status)?;
        Ok(v1::GetEventResponse {
            summary: Some((&summary).into()),
            event: Some((&event).into()),
        })
    }
}

fn read_event(
    store: &DataStore,
    dataset: &str,
    id: u64,
) -> Result<alyx_core::CollisionEvent, Error> {
    Ok(store.dataset(dataset)?.read_event(id)?)
}

#[tonic::async_trait]
impl EventService for EventsApi {
    async fn list_datasets(
        &self,
        request: Request<v1::ListDatasetsRequest>,
    ) -> Result<Response<v1::ListDatasetsResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ListDatasets", async {
                self.ctx.caller(&request).await?;
                let datasets = catalogue::list_datasets(&self.pool).await.map_err(status)?;
                Ok(Response::new(v1::ListDatasetsResponse {
                    datasets: datasets.iter().map(Into::into).collect(),
                }))
            })
            .await
    }

    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ListEvents", async {
                self.ctx.caller(&request).await?;
                let r = request.get_ref();
                let limit = match r.page_size {
                    0 => DEFAULT_PAGE,
                    n if n <= MAX_PAGE => n,
                    n => {
                        return Err(status(Error::InvalidArgument(format!(
                            "page_size {n} is too large: at most {MAX_PAGE}"
                        ))));
                    }
                };
                let after = if r.page_token.is_empty() {
                    None
                } else {
                    Some(r.page_token.parse::<u64>().map_err(|_| {
                        status(Error::InvalidArgument(format!(
                            "invalid page_token `{}`: pass the next_page_token of the previous page",
                            r.page_token
                        )))
                    })?)
                };
                let page = catalogue::list_events(&self.pool, &r.dataset, r.run, after, limit)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::ListEventsResponse {
                    events: page.events.iter().map(Into::into).collect(),
                    next_page_token: page.next_after.map(|a| a.to_string()).unwrap_or_default(),
                    total: page.total,
                }))
            })
            .await
    }

    async fn get_event(
        &self,
        request: Request<v1::GetEventRequest>,
    ) -> Result<Response<v1::GetEventResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetEvent", async {
                self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let Some(shared) = &self.shared else {
                    return Ok(Response::new(self.event(&r.dataset, r.event_id).await?));
                };
                let dataset = catalogue::find_dataset(&self.pool, &r.dataset)
                    .await
                    .map_err(status)?;
                let key = r.event_id.to_string();
                let Some((slot, stored)) = shared.get(Kind::Event, dataset, &key).await else {
                    return Ok(Response::new(self.event(&r.dataset, r.event_id).await?));
                };
                // What does not decode is a miss (the bytes came over the network).
                if let Some(answer) = stored.and_then(|b| prost::Message::decode(b.as_slice()).ok())
                {
                    return Ok(Response::new(answer));
                }
                let answer = self.event(&r.dataset, r.event_id).await?;
                shared
                    .put(slot, prost::Message::encode_to_vec(&answer))
                    .await;
                Ok(Response::new(answer))
            })
            .await
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<v1::LiveEvent, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "Subscribe", async {
                let caller = self.ctx.caller(&request).await?;
                let admission = self.ctx.admit(&caller)?;
                let authorization = super::authorization(&request);
                let r = request.into_inner();
                let rx = self.live.subscribe();
                let (tx, out) = mpsc::channel(16);
                super::request_id::spawn(forward(
                    rx,
                    tx,
                    r,
                    self.store.clone(),
                    self.shutdown.clone(),
                ));
                Ok(Response::new(self.ctx.until_revoked(
                    authorization,
                    admission,
                    ReceiverStream::new(out),
                )))
            })
            .await
    }
}

/// Sends one subscriber the live events it asked for. When it falls behind (the broadcast
/// buffer overflows) it jumps to the newest event and is told how many it skipped; ingest never
/// waits for it.
async fn forward(
    mut rx: broadcast::Receiver<Arc<EventSummary>>,
    tx: mpsc::Sender<Result<v1::LiveEvent, Status>>,
    request: v1::SubscribeRequest,
    store: DataStore,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut skipped = 0u64;
    loop {
        let next = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            n = rx.recv() => n,
        };
        let mut summary = match next {
            Ok(s) => s,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                skipped += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // Skip to the newest event already waiting.
        while let Ok(newer) = rx.try_recv() {
            skipped += 1;
            summary = newer;
        }
        if !request.dataset.is_empty() && summary.dataset != request.dataset {
            continue;
        }
        let event = if request.include_event {
            let store = store.clone();
            let s = summary.clone();
            match tokio::task::spawn_blocking(move || read_event(&store, &s.dataset, s.event_id))
                .await
            {
                Ok(Ok(e)) => Some(v1::CollisionEvent::from(&e)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "live stream cannot read an event");
                    None
                }
                Err(_) => None,
            }
        } else {
            None
        };
        let message = v1::LiveEvent {
            summary: Some(summary.as_ref().into()),
            event,
            skipped,
        };
        if tx.send(Ok(message)).await.is_err() {
            return; // the subscriber went away
        }
        skipped = 0;
    }
}

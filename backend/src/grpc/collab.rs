//! `alyx.v1.CollabService`: notebooks, their sharing, and the sync stream.

use std::pin::Pin;
use std::sync::Arc;

use alyx_analysis::notebook::Notebook;
use alyx_proto::v1;
use alyx_proto::v1::collab_client_message::Kind as ClientKind;
use alyx_proto::v1::collab_server_message::Kind as ServerKind;
use alyx_proto::v1::collab_service_server::{CollabService, SERVICE_NAME};
use automerge::sync;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Context, status};
use crate::collab::store::{self, Access};
use crate::collab::{Collab, Event, Hub, colour};
use crate::error::Error;

pub struct CollabApi {
    pub ctx: Context,
    pub collab: Arc<Collab>,
    /// Becomes true when alyxd shuts down: sync streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

fn access_to(a: Access) -> v1::Access {
    match a {
        Access::None => v1::Access::None,
        Access::Read => v1::Access::Read,
        Access::Write => v1::Access::Write,
        Access::Owner => v1::Access::Owner,
    }
}

fn info_to(i: &store::Info) -> v1::NotebookInfo {
    v1::NotebookInfo {
        id: i.id as u64,
        title: i.title.clone(),
        owner: i.owner.clone(),
        access: access_to(i.access) as i32,
        updated_ms: i.updated_ms,
        grants: i
            .grants
            .iter()
            .map(|(user, a)| v1::Grant {
                user: user.clone(),
                access: access_to(*a) as i32,
            })
            .collect(),
    }
}

fn notebook_id(id: u64) -> Result<i64, Status> {
    i64::try_from(id).map_err(|_| Status::invalid_argument(format!("no notebook {id}")))
}

type ServerStream = Pin<Box<dyn Stream<Item = Result<v1::CollabServerMessage, Status>> + Send>>;

fn server(kind: ServerKind) -> Result<v1::CollabServerMessage, Status> {
    Ok(v1::CollabServerMessage { kind: Some(kind) })
}

#[tonic::async_trait]
impl CollabService for CollabApi {
    async fn create_notebook(
        &self,
        request: Request<v1::CreateNotebookRequest>,
    ) -> Result<Response<v1::NotebookInfo>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "CreateNotebook", async {
                let caller = self.ctx.caller(&request).await?;
                let pool = &self.collab.pool;
                let id = store::create(pool, &caller.name, &request.get_ref().title)
                    .await
                    .map_err(status)?;
                let info = store::info(pool, id, &caller.name).await.map_err(status)?;
                Ok(Response::new(info_to(&info)))
            })
            .await
    }

    async fn list_notebooks(
        &self,
        request: Request<v1::ListNotebooksRequest>,
    ) -> Result<Response<v1::ListNotebooksResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ListNotebooks", async {
                let caller = self.ctx.caller(&request).await?;
                let all = store::list(&self.collab.pool, &caller.name)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::ListNotebooksResponse {
                    notebooks: all.iter().map(info_to).collect(),
                }))
            })
            .await
    }

    async fn get_notebook(
        &self,
        request: Request<v1::GetNotebookRequest>,
    ) -> Result<Response<v1::NotebookDocument>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetNotebook", async {
                let caller = self.ctx.caller(&request).await?;
                let id = notebook_id(request.get_ref().id)?;
                let pool = &self.collab.pool;
                store::require(pool, id, &caller.name, Access::Read)
                    .await
                    .map_err(status)?;
                let info = store::info(pool, id, &caller.name).await.map_err(status)?;
                // The open hub is the newest; else what is stored.
                let document = match self.collab.open(id).await {
                    Ok(hub) => hub.doc.lock().await.save(),
                    Err(e) => return Err(status(e)),
                };
                Ok(Response::new(v1::NotebookDocument {
                    info: Some(info_to(&info)),
                    document,
                }))
            })
            .await
    }

    async fn share(
        &self,
        request: Request<v1::ShareRequest>,
    ) -> Result<Response<v1::NotebookInfo>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "Share", async {
                let caller = self.ctx.caller(&request).await?;
                let r = request.into_inner();
                let access = match v1::Access::try_from(r.access) {
                    Ok(v1::Access::None) => Access::None,
                    Ok(v1::Access::Read) => Access::Read,
                    Ok(v1::Access::Write) => Access::Write,
                    _ => {
                        return Err(Status::invalid_argument(
                            "share read, write or none (to take access away)",
                        ));
                    }
                };
                let info = store::share(
                    &self.collab.pool,
                    notebook_id(r.id)?,
                    &caller.name,
                    &r.user,
                    access,
                )
                .await
                .map_err(status)?;
                Ok(Response::new(info_to(&info)))
            })
            .await
    }

    async fn history(
        &self,
        request: Request<v1::GetNotebookRequest>,
    ) -> Result<Response<v1::NotebookHistory>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "NotebookHistory", async {
                let caller = self.ctx.caller(&request).await?;
                let id = notebook_id(request.get_ref().id)?;
                let pool = &self.collab.pool;
                store::require(pool, id, &caller.name, Access::Read)
                    .await
                    .map_err(status)?;
                let hub = self.collab.open(id).await.map_err(status)?;
                let mut history = hub.doc.lock().await.history();
                let keep = history.len().saturating_sub(MAX_HISTORY);
                history.drain(..keep);
                let authors = store::authors(pool, id).await.map_err(status)?;
                let versions = history
                    .into_iter()
                    .map(|v| {
                        let attested = authors.get(&v.hash);
                        v1::NotebookVersion {
                            author: attested.cloned().unwrap_or(v.author),
                            attested: attested.is_some(),
                            hash: v.hash,
                            what: v.what,
                            time_unix_s: v.time,
                        }
                    })
                    .collect();
                Ok(Response::new(v1::NotebookHistory { versions }))
            })
            .await
    }

    type SyncStream = ServerStream;

    async fn sync(
        &self,
        request: Request<Streaming<v1::CollabClientMessage>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "Sync", async {
                let caller = self.ctx.caller(&request).await?;
                let admission = self.ctx.admit(&caller)?;
                let authorization = super::authorization(&request);
                let mut inbound = request.into_inner();
                let id = match inbound.message().await? {
                    Some(v1::CollabClientMessage {
                        kind: Some(ClientKind::Open(o)),
                    }) => notebook_id(o.id)?,
                    _ => {
                        return Err(Status::invalid_argument("a sync stream starts with `open`"));
                    }
                };
                let pool = &self.collab.pool;
                let access = store::require(pool, id, &caller.name, Access::Read)
                    .await
                    .map_err(status)?;
                let info = store::info(pool, id, &caller.name).await.map_err(status)?;
                let hub = self.collab.open(id).await.map_err(status)?;
                let (tx, rx) = mpsc::channel(64);
                let session = Session {
                    collab: self.collab.clone(),
                    hub,
                    user: caller.name.clone(),
                    access,
                    id: format!("{:016x}", rand::random::<u64>()),
                    state: sync::State::new(),
                    tx,
                };
                let shutdown = self.shutdown.clone();
                super::request_id::spawn(session.run(inbound, info_to(&info), shutdown));
                Ok(Response::new(self.ctx.until_revoked(
                    authorization,
                    admission,
                    ReceiverStream::new(rx),
                )))
            })
            .await
    }
}

/// The most versions a History call returns (the newest).
const MAX_HISTORY: usize = 10_000;

/// The largest presence message (cursor, selection, name) a session may send.
const MAX_PRESENCE: usize = 4 * 1024;

/// One client's sync stream.
struct Session {
    collab: Arc<Collab>,
    hub: Arc<Hub>,
    user: String,
    access: Access,
    id: String,
    state: sync::State,
    tx: mpsc::Sender<Result<v1::CollabServerMessage, Status>>,
}

impl Session {
    async fn send(&self, kind: ServerKind) -> bool {
        self.tx.send(server(kind)).await.is_ok()
    }

    /// Sends the client what it lacks (one sync message; the protocol asks again as needed).
    async fn push(&mut self) -> bool {
        let message = self.hub.doc.lock().await.sync_message(&mut self.state);
        match message {
            Some(m) => self.send(ServerKind::Sync(m)).await,
            None => true,
        }
    }

    /// Applies a client's sync message; its changes are stored before anyone else sees them.
    async fn receive(&mut self, message: &[u8]) -> Result<(), Status> {
        if !self.access.can_write() && Notebook::message_has_changes(message) {
            return Err(Status::permission_denied(format!(
                "notebook {} is shared with {} for reading only",
                self.hub.id, self.user
            )));
        }
        let mut doc = self.hub.doc.lock().await;
        let before = doc.heads();
        doc.receive_sync(&mut self.state, message)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let stored = self
            .collab
            .stored(&self.hub, &mut doc, &before, &self.user)
            .await;
        if let Err(e) = stored {
            // Not stored: this hub must not serve what PostgreSQL lacks. The client keeps its
            // changes and sends them again when it reconnects.
            drop(doc);
            self.collab.forget(self.hub.id);
            return Err(status(Error::Unavailable(format!(
                "the change could not be stored: {e}"
            ))));
        }
        Ok(())
    }

    async fn run(
        mut self,
        mut inbound: Streaming<v1::CollabClientMessage>,
        info: v1::NotebookInfo,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut events = self.hub.events.subscribe();
        if !self.send(ServerKind::Opened(info)).await {
            return;
        }
        for p in self.hub.presences() {
            if !self.send(ServerKind::Presence(p)).await {
                return;
            }
        }
        if !self.push().await {
            return;
        }
        let outcome: Result<(), Status> = loop {
            tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(v1::CollabClientMessage { kind: Some(ClientKind::Sync(bytes)) })) => {
                        if let Err(e) = self.receive(&bytes).await {
                            break Err(e);
                        }
                        if !self.push().await {
                            break Ok(());
                        }
                    }
                    Ok(Some(v1::CollabClientMessage { kind: Some(ClientKind::Presence(mut p)) })) => {
                        // Presence goes to every session of the notebook: small, or refused.
                        if prost::Message::encoded_len(&p) > MAX_PRESENCE {
                            break Err(Status::invalid_argument(format!(
                                "a presence message is at most {MAX_PRESENCE} bytes"
                            )));
                        }
                        p.session = self.id.clone();
                        p.user = self.user.clone();
                        p.colour = colour(&self.user);
                        self.collab.presence(&self.hub, Event::Presence(p)).await;
                    }
                    Ok(Some(_)) => break Err(Status::invalid_argument("the stream is open already")),
                    Ok(None) | Err(_) => break Ok(()),
                },
                e = events.recv() => match e {
                    Ok(Event::Changed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.push().await {
                            break Ok(());
                        }
                    }
                    Ok(Event::Presence(p)) if p.session != self.id => {
                        if !self.send(ServerKind::Presence(p)).await {
                            break Ok(());
                        }
                    }
                    Ok(Event::Left(s)) if s != self.id => {
                        if !self.send(ServerKind::Left(s)).await {
                            break Ok(());
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                },
                _ = shutdown.changed() => break Err(Status::unavailable("alyxd is shutting down")),
                // The stream ended (the client left, or its token was revoked): stop taking
                // its changes.
                () = self.tx.closed() => break Ok(()),
            }
        };
        if let Err(e) = outcome {
            let _ = self.tx.send(Err(e)).await;
        }
        self.collab
            .presence(&self.hub, Event::Left(self.id.clone()))
            .await;
    }
}

//! The client side of `CollabService.Sync`: a local notebook kept in sync with alyxd (the
//! desktop, alyxctl, the tests and the benchmark use it). Edit `session.notebook`, then `flush`;
//! `next` applies what the server sends and answers it as the protocol needs.

use std::collections::HashMap;
use std::time::Duration;

use alyx_analysis::notebook::{Notebook, SyncState};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use alyx_proto::v1;

use crate::error::{ClientError, Result};
use alyx_proto::v1::collab_client_message::Kind as ClientKind;
use alyx_proto::v1::collab_server_message::Kind as ServerKind;
use alyx_proto::v1::collab_service_client::CollabServiceClient;

/// What a server message did.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The notebook may have changed.
    Synced,
    Presence(v1::Presence),
    Left(String),
}

pub struct Session {
    pub notebook: Notebook,
    pub info: v1::NotebookInfo,
    /// Everyone else's presence, by session.
    pub presence: HashMap<String, v1::Presence>,
    state: SyncState,
    out: mpsc::Sender<v1::CollabClientMessage>,
    inbound: Streaming<v1::CollabServerMessage>,
    url: String,
}

fn client(kind: ClientKind) -> v1::CollabClientMessage {
    v1::CollabClientMessage { kind: Some(kind) }
}

impl Session {
    /// Opens notebook `id` with `notebook` as the local copy: `Notebook::empty` the first time,
    /// the copy kept from before (offline edits included) after that.
    pub(crate) async fn open(
        channel: Channel,
        url: &str,
        token: &str,
        id: u64,
        notebook: Notebook,
    ) -> Result<Self> {
        Self::opened(channel, url, token, id, notebook)
            .await
            .map_err(|s| ClientError::from_status(url, s))
    }

    async fn opened(
        channel: Channel,
        url: &str,
        token: &str,
        id: u64,
        notebook: Notebook,
    ) -> Result<Self, Status> {
        let (out, rx) = mpsc::channel(64);
        out.send(client(ClientKind::Open(v1::OpenNotebook { id })))
            .await
            .map_err(|_| Status::internal("the stream closed"))?;
        let mut inbound = CollabServiceClient::new(channel)
            .sync(alyx_proto::authorized(token, ReceiverStream::new(rx)))
            .await?
            .into_inner();
        let info = match inbound.message().await? {
            Some(v1::CollabServerMessage {
                kind: Some(ServerKind::Opened(info)),
            }) => info,
            _ => return Err(Status::internal("the server did not open the notebook")),
        };
        let mut session = Self {
            notebook,
            info,
            presence: HashMap::new(),
            state: SyncState::new(),
            out,
            inbound,
            url: url.to_owned(),
        };
        session
            .flush()
            .await
            .map_err(|_| Status::unavailable("the sync stream closed"))?;
        Ok(session)
    }

    /// Sends what the server lacks of the local notebook (nothing when it is up to date).
    pub async fn flush(&mut self) -> Result<()> {
        if let Some(m) = self.notebook.sync_message(&mut self.state) {
            self.out
                .send(client(ClientKind::Sync(m)))
                .await
                .map_err(|_| self.closed())?;
        }
        Ok(())
    }

    fn closed(&self) -> ClientError {
        ClientError::Unreachable {
            url: self.url.clone(),
            detail: "the notebook's sync stream closed".into(),
        }
    }

    /// Tells the others where this user is.
    pub async fn send_presence(&mut self, p: v1::Presence) -> Result<()> {
        self.out
            .send(client(ClientKind::Presence(p)))
            .await
            .map_err(|_| self.closed())
    }

    /// Waits for the server's next message and applies it; None when the stream ended.
    pub async fn next(&mut self) -> Result<Option<Update>> {
        let message = self.inbound.message().await;
        let Some(m) = message.map_err(|s| ClientError::from_status(&self.url, s))? else {
            return Ok(None);
        };
        Ok(match m.kind {
            Some(ServerKind::Sync(bytes)) => {
                self.notebook
                    .receive_sync(&mut self.state, &bytes)
                    .map_err(|e| ClientError::Malformed(format!("a sync message: {e}")))?;
                self.flush().await?;
                Some(Update::Synced)
            }
            Some(ServerKind::Presence(p)) => {
                self.presence.insert(p.session.clone(), p.clone());
                Some(Update::Presence(p))
            }
            Some(ServerKind::Left(s)) => {
                self.presence.remove(&s);
                Some(Update::Left(s))
            }
            Some(ServerKind::Opened(_)) | None => Some(Update::Synced),
        })
    }

    /// Applies server messages until `done` holds for this session or `timeout` passes;
    /// whether it held.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.flush().await?;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Err(_) => return Ok(false),
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => return Ok(done(self)),
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Gives the local copy back (to keep working offline, or to reconnect with later).
    pub fn into_notebook(self) -> Notebook {
        self.notebook
    }
}

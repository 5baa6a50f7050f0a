//! Collaboration: notebooks open on this instance, each a hub that holds the document, stores
//! every change its sessions send before anyone else sees it, and tells its sessions when the
//! document changed or someone's presence did. Instances share notebooks through PostgreSQL:
//! a stored change is announced on `alyx_notebooks`, presence on `alyx_presence`, and every
//! instance with the notebook open applies or forwards it (`follow`). The gRPC stream is in
//! `grpc/collab.rs`.

pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use alyx_analysis::notebook::Notebook;
use alyx_proto::v1;
use sqlx::PgPool;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::notify::{Notice, Notifications};

/// Changes stored since the last snapshot after which the notebook is compacted.
pub const COMPACT_EVERY: usize = 500;

/// What a hub tells its sessions.
#[derive(Clone, Debug)]
pub enum Event {
    /// The document has new changes.
    Changed,
    Presence(v1::Presence),
    /// A session ended.
    Left(String),
}

/// One open notebook.
pub struct Hub {
    pub id: i64,
    pub doc: tokio::sync::Mutex<Notebook>,
    pub events: broadcast::Sender<Event>,
    /// Everyone's presence now, by session (for those who join).
    pub present: Mutex<HashMap<String, v1::Presence>>,
    /// Changes stored since the snapshot the document was loaded from or last compacted to.
    pub since_snapshot: std::sync::atomic::AtomicUsize,
}

impl Hub {
    /// Records a presence change in `present` and tells this instance's sessions.
    pub fn announce(&self, event: Event) {
        {
            let mut present = self.present.lock().unwrap_or_else(PoisonError::into_inner);
            match &event {
                Event::Presence(p) => {
                    present.insert(p.session.clone(), p.clone());
                }
                Event::Left(session) => {
                    present.remove(session);
                }
                Event::Changed => {}
            }
        }
        let _ = self.events.send(event);
    }

    pub fn presences(&self) -> Vec<v1::Presence> {
        self.present
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

pub struct Collab {
    pub pool: PgPool,
    /// This instance's name in notifications (its own are skipped).
    pub instance: String,
    hubs: Mutex<HashMap<i64, Weak<Hub>>>,
    /// Serialises loading, so that two sessions opening a notebook share one hub.
    loading: tokio::sync::Mutex<()>,
}

impl Collab {
    pub fn new(pool: PgPool, instance: String) -> Arc<Self> {
        Arc::new(Self {
            pool,
            instance,
            hubs: Mutex::default(),
            loading: tokio::sync::Mutex::new(()),
        })
    }

    fn live(&self, id: i64) -> Option<Arc<Hub>> {
        let mut hubs = self.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        hubs.retain(|_, h| h.strong_count() > 0);
        hubs.get(&id).and_then(Weak::upgrade)
    }

    /// Drops the hub of notebook `id` (its document is not all stored): the next session loads
    /// it again from PostgreSQL.
    pub fn forget(&self, id: i64) {
        self.hubs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Notebooks open on this instance.
    pub fn open_count(&self) -> usize {
        let mut hubs = self.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        hubs.retain(|_, h| h.strong_count() > 0);
        hubs.len()
    }

    /// The hub of notebook `id`, loaded from PostgreSQL when no session has it open here. It
    /// stays while a session holds it.
    pub async fn open(&self, id: i64) -> Result<Arc<Hub>> {
        if let Some(h) = self.live(id) {
            return Ok(h);
        }
        let _one = self.loading.lock().await;
        if let Some(h) = self.live(id) {
            return Ok(h);
        }
        let (doc, stored) = store::load(&self.pool, id, "alyxd").await?;
        let hub = Arc::new(Hub {
            id,
            doc: tokio::sync::Mutex::new(doc),
            events: broadcast::channel(256).0,
            present: Mutex::default(),
            since_snapshot: stored.into(),
        });
        self.hubs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::downgrade(&hub));
        Ok(hub)
    }

    /// Stores what a session's sync message added to the document (`doc` holds it, `before`
    /// were the heads before) and tells the other sessions; compacts now and then.
    pub async fn stored(
        &self,
        hub: &Hub,
        doc: &mut Notebook,
        before: &[String],
        author: &str,
    ) -> Result<usize> {
        let new = doc
            .changes_since(before)
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        if new.is_empty() {
            return Ok(0);
        }
        store::append(
            &self.pool,
            hub.id,
            &self.instance,
            author,
            &doc.title(),
            &new,
        )
        .await?;
        let n = new.len();
        let total = hub
            .since_snapshot
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
            + n;
        if total >= COMPACT_EVERY {
            match store::compact(&self.pool, hub.id, doc).await {
                Ok(_) => hub
                    .since_snapshot
                    .store(0, std::sync::atomic::Ordering::Relaxed),
                Err(e) => tracing::warn!(notebook = hub.id, error = %e, "cannot compact"),
            }
        }
        let _ = hub.events.send(Event::Changed);
        Ok(n)
    }

    /// Presence of a session in notebook `hub`: to this instance's sessions and the others'.
    pub async fn presence(&self, hub: &Hub, event: Event) {
        if matches!(event, Event::Changed) {
            return;
        }
        let encoded = encode_event(&event);
        hub.announce(event);
        if let Err(e) = store::publish_presence(&self.pool, hub.id, &self.instance, &encoded).await
        {
            tracing::warn!(notebook = hub.id, error = %e, "cannot publish presence");
        }
    }
}

/// Presence as notification bytes: a Presence message, or a session id after a 0 byte (left).
fn encode_event(e: &Event) -> Vec<u8> {
    match e {
        Event::Presence(p) => prost::Message::encode_to_vec(p),
        Event::Left(s) => [&[0u8][..], s.as_bytes()].concat(),
        Event::Changed => Vec::new(),
    }
}

fn decode_event(bytes: &[u8]) -> Option<Event> {
    match bytes.split_first() {
        Some((0, s)) => Some(Event::Left(String::from_utf8_lossy(s).into_owned())),
        Some(_) => Some(Event::Presence(prost::Message::decode(bytes).ok()?)),
        None => None,
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Follows the other instances' notebook changes and presence until `shutdown`: changes of a
/// notebook open here are read from PostgreSQL and applied, presence is forwarded. After a lost
/// connection every open notebook is reloaded (a notification may have been missed).
pub async fn follow(collab: Arc<Collab>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut notifications = Notifications::new(
        collab.pool.clone(),
        &["alyx_notebooks", "alyx_presence"],
        "notebook changes",
    );
    loop {
        let notice = tokio::select! {
            _ = &mut shutdown => return,
            n = notifications.next() => n,
        };
        let n = match notice {
            Notice::Listening => {
                catch_up(&collab).await;
                continue;
            }
            Notice::Message(n) => n,
        };
        let parts: Vec<&str> = n.payload().split(' ').collect();
        let (Some(id), Some(instance)) = (
            parts.first().and_then(|p| p.parse::<i64>().ok()),
            parts.get(1),
        ) else {
            continue;
        };
        if *instance == collab.instance {
            continue;
        }
        let Some(hub) = collab.live(id) else {
            continue;
        };
        match n.channel() {
            "alyx_notebooks" => {
                let (Some(lo), Some(hi)) = (
                    parts.get(2).and_then(|p| p.parse().ok()),
                    parts.get(3).and_then(|p| p.parse().ok()),
                ) else {
                    continue;
                };
                match store::changes_between(&collab.pool, id, lo, hi).await {
                    Ok(changes) => {
                        let applied = hub.doc.lock().await.apply_changes(&changes);
                        match applied {
                            Ok(()) => {
                                let _ = hub.events.send(Event::Changed);
                            }
                            Err(e) => {
                                tracing::warn!(notebook = id, error = %e, "cannot apply stored changes")
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(notebook = id, error = %e, "cannot read stored changes")
                    }
                }
            }
            _ => {
                if let Some(event) = parts
                    .get(2)
                    .and_then(|h| unhex(h))
                    .and_then(|b| decode_event(&b))
                {
                    hub.announce(event);
                }
            }
        }
    }
}

/// Applies whatever was stored for the open notebooks while not listening.
async fn catch_up(collab: &Collab) {
    let open: Vec<Arc<Hub>> = {
        let hubs = collab.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        hubs.values().filter_map(Weak::upgrade).collect()
    };
    for hub in open {
        match store::load(&collab.pool, hub.id, "alyxd").await {
            Ok((mut stored, _)) => {
                let mut doc = hub.doc.lock().await;
                if let Err(e) = doc.merge(&mut stored) {
                    tracing::warn!(notebook = hub.id, error = %e, "cannot merge the stored notebook");
                    continue;
                }
                let _ = hub.events.send(Event::Changed);
            }
            Err(e) => tracing::warn!(notebook = hub.id, error = %e, "cannot reload a notebook"),
        }
    }
}

/// A user's colour: the same on every screen.
pub fn colour(user: &str) -> String {
    const PALETTE: [&str; 8] = [
        "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    ];
    let h = user.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    PALETTE[h as usize % PALETTE.len()].to_owned()
}

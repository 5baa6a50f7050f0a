//! The live stream: every instance LISTENs on PostgreSQL's `alyx_events` channel, to which each
//! ingest commit sends "dataset first_id last_id", reads the new catalogue rows and broadcasts
//! them to its subscribers — so a subscriber sees events stored by every instance. The same
//! notifications invalidate the dataset's cached catalogue query results.

use std::sync::Arc;

use alyx_core::summary::EventSummary;
use sqlx::PgPool;
use tokio::sync::broadcast;

use crate::cache::ResultCache;
use crate::notify::{Notice, Notifications};

/// Newly stored events, newest last. Subscribers that fall more than this far behind skip.
pub const BUFFER: usize = 1024;

pub type LiveSender = broadcast::Sender<Arc<EventSummary>>;

pub fn channel() -> LiveSender {
    broadcast::channel(BUFFER).0
}

/// Forwards notifications to `tx` until `shutdown` resolves, reconnecting when PostgreSQL goes.
pub async fn run(
    pool: PgPool,
    tx: LiveSender,
    cache: Arc<ResultCache>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut notifications = Notifications::new(pool.clone(), &["alyx_events"], "the live stream");
    loop {
        let notice = tokio::select! {
            _ = &mut shutdown => return,
            n = notifications.next() => n,
        };
        let payload = match notice {
            Notice::Listening => {
                cache.clear().await;
                continue;
            }
            Notice::Message(n) => n.payload().to_owned(),
        };
        let Some((dataset, first, last)) = parse(&payload) else {
            tracing::warn!(payload, "ignoring malformed alyx_events notification");
            cache.clear().await;
            continue;
        };
        cache.invalidate(dataset).await;
        if tx.receiver_count() == 0 {
            continue;
        }
        match crate::catalogue::summaries(&pool, dataset, first, last).await {
            Ok(rows) => {
                for row in rows {
                    let _ = tx.send(Arc::new(row));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read new events for the live stream"),
        }
    }
}

fn parse(payload: &str) -> Option<(i32, u64, u64)> {
    let mut parts = payload.split(' ');
    let dataset = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    (first <= last && parts.next().is_none()).then_some((dataset, first, last))
}

#[cfg(test)]
mod tests {
    #[test]
    fn notification_payloads() {
        assert_eq!(super::parse("3 10 19"), Some((3, 10, 19)));
        assert_eq!(super::parse("3 19 10"), None);
        assert_eq!(super::parse("3 10"), None);
        assert_eq!(super::parse("x 1 2"), None);
    }
}
